import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createLogger } from '../../functions/core/log.ts';
import { ingest } from '../../functions/core/ingest.ts';
import { createSecretCache } from '../../functions/core/secrets.ts';
import { placeStatus } from '../../functions/core/events.ts';
import { applyObservations, type StateItem } from '../../functions/core/state.ts';
import { toCallbackRequest } from '../../functions/handlers/api-gateway.ts';
import type { CallbackRequest } from '../../functions/providers/provider.ts';
import { telesign, teleSignSignature, TeleSignSecretSchema, type TeleSignCallback } from '../../functions/providers/telesign.ts';
import { FIXTURES_DIR, listSamples } from '../../local/samples.ts';
import { apiGatewayEvent, authentic, fixedSecretSource, runIngest, toRequest, UNIT_SECRETS } from '../support/unit-ingest.ts';

const secret = TeleSignSecretSchema.parse(UNIT_SECRETS.telesign);

/** A value from signature-test-vector.txt: the text after the last ` = ` on the labelled line. */
function vectorValue(text: string, label: RegExp): string {
  const line = text.split('\n').find((candidate) => label.test(candidate));
  assert.ok(line, `signature-test-vector.txt has no line matching ${label}`);
  return line.split(' = ').at(-1)!.trim();
}

function request(body: Buffer | string, authorization: string | undefined): CallbackRequest {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) },
    body: Buffer.from(body),
    rawQuery: '',
    sourceIp: '203.0.113.10',
    requestId: 'unit',
    receivedAt: '2025-01-01T10:00:00.000Z',
  };
}

describe('TeleSign known-answer vectors (test/fixtures/telesign/signature-test-vector.txt)', () => {
  const text = readFileSync(join(FIXTURES_DIR, 'telesign', 'signature-test-vector.txt'), 'utf8');
  const [sdkPart, gitlabPart] = text.split('Second vector');

  const vectors = [
    {
      name: "TeleSign SDK vector (key with '-' characters the SDKs drop)",
      apiKey: vectorValue(sdkPart, /api_key \(base64, as given\)/),
      customerId: 'sdk-vector-customer',
      body: vectorValue(sdkPart, /raw body \(string-to-sign\)/),
      signature: vectorValue(sdkPart, /expected signature/),
    },
    {
      name: 'GitLab spec vector (clean base64 key)',
      apiKey: vectorValue(gitlabPart, /api_key \(base64\)/),
      customerId: vectorValue(gitlabPart, /customer_id/),
      body: vectorValue(gitlabPart, /raw body/),
      signature: vectorValue(gitlabPart, /signature {2,}=/),
    },
  ];

  test('the vectors read from the file are the published ones', () => {
    // Guards the file parsing above: a silently wrong read would make the vector tests vacuous.
    assert.deepEqual(
      vectors.map(({ apiKey, body, signature }) => ({ apiKey, body, signature })),
      [
        {
          apiKey: 'EXAMPLE----TE8sTgg45yusumoN6BYsBVkh+yRJ5czgsnCehZaOYldPJdmFh6NeX8kunZ2zU1YWaUw/0wV6xfw==',
          body: "{'test': 123}",
          signature: 'B97g3N9lPdVaptvifxRau7bzVAC5hhRBZ6HKXABN744=',
        },
        { apiKey: 'c2VjcmV0X2FwaV9rZXk=', body: '{:ref_id=>"ref_id"}', signature: 'PJRdTwXX+/+nksJwXkEDLslxkX2rwUyyCHnlGslCsto=' },
      ],
    );
    assert.equal(vectors[1].customerId, 'secret_customer_id');
  });

  for (const vector of vectors) {
    test(`${vector.name}: teleSignSignature reproduces the signature`, () => {
      // act
      const signature = teleSignSignature(vector.apiKey, Buffer.from(vector.body, 'utf8'));
      // assess
      assert.equal(signature, vector.signature);
    });

    test(`${vector.name}: authenticate accepts the published header and refuses it for another body`, () => {
      // prepare
      const vectorSecret = TeleSignSecretSchema.parse({ customerId: vector.customerId, apiKey: vector.apiKey });
      const header = `TSA ${vector.customerId}:${vector.signature}`;
      // act
      const genuine = telesign.authenticate(request(vector.body, header), vectorSecret);
      const otherBody = telesign.authenticate(request(`${vector.body} `, header), vectorSecret);
      // assess
      assert.deepEqual(genuine, { ok: true });
      assert.equal(otherBody.ok, false);
    });
  }

  test('the first vector does not reproduce when the key is decoded without stripping (guards the strip)', () => {
    // Node reads '-' as URL-safe base64: a different key, a different signature.
    const naive = createHmac('sha256', Buffer.from(vectors[0].apiKey, 'base64')).update(vectors[0].body).digest('base64');
    assert.notEqual(naive, vectors[0].signature);
  });

  test('an authentic body that is not JSON (the GitLab vector) is quarantined, not refused', async () => {
    // prepare
    const vector = vectors[1];
    const vectorSecret = { customerId: vector.customerId, apiKey: vector.apiKey };
    // act
    const run = await runIngest(telesign, request(vector.body, `TSA ${vector.customerId}:${vector.signature}`), { secret: vectorSecret });
    // assess
    assert.deepEqual(run.response, { statusCode: 200, body: { received: true, quarantined: true } });
    assert.equal(run.messages[0].raw.body, vector.body);
    assert.equal(run.messages[0].quarantine?.reason, 'body is not valid JSON');
  });
});

describe('TeleSign Authorization header', () => {
  const body = listSamples('telesign').find((sample) => sample.name === 'sms-dlr-success')!.body!;
  const signature = teleSignSignature(secret.apiKey, body);
  const oneByteChanged = Buffer.from(body);
  oneByteChanged[oneByteChanged.indexOf('"code": 200') + 9] = '1'.charCodeAt(0); // 200 -> 210

  const cases: { name: string; header: string | undefined; body?: Buffer; ok: boolean; reason?: RegExp }[] = [
    { name: 'the genuine header', header: `TSA ${secret.customerId}:${signature}`, ok: true },
    { name: 'the genuine header with surrounding whitespace', header: `  TSA ${secret.customerId}:${signature} `, ok: true },
    { name: 'no header', header: undefined, ok: false, reason: /missing Authorization/ },
    { name: 'an empty header', header: '', ok: false, reason: /missing Authorization/ },
    { name: 'a Bearer scheme', header: `Bearer ${secret.customerId}:${signature}`, ok: false, reason: /TSA/ },
    { name: 'a Basic scheme', header: `Basic ${Buffer.from(`${secret.customerId}:${signature}`).toString('base64')}`, ok: false, reason: /TSA/ },
    { name: 'no scheme', header: `${secret.customerId}:${signature}`, ok: false, reason: /TSA/ },
    { name: 'no colon', header: `TSA ${secret.customerId}${signature}`, ok: false, reason: /TSA/ },
    { name: 'an empty signature', header: `TSA ${secret.customerId}:`, ok: false, reason: /TSA/ },
    { name: 'an empty customer id', header: `TSA :${signature}`, ok: false, reason: /TSA/ },
    { name: 'a wrong customer id with the right signature', header: `TSA OTHER-CUSTOMER:${signature}`, ok: false, reason: /unknown customer/ },
    { name: 'a truncated signature', header: `TSA ${secret.customerId}:${signature.slice(0, -4)}`, ok: false, reason: /signature/ },
    { name: 'a signature without its padding', header: `TSA ${secret.customerId}:${signature.replace(/=+$/, '')}`, ok: false, reason: /signature/ },
    { name: 'a signature in hex instead of base64', header: `TSA ${secret.customerId}:${Buffer.from(signature, 'base64').toString('hex')}`, ok: false, reason: /signature/ },
    {
      name: 'the signature of a body with one byte changed',
      header: `TSA ${secret.customerId}:${teleSignSignature(secret.apiKey, oneByteChanged)}`,
      ok: false,
      reason: /signature/,
    },
    { name: 'the genuine header on a body with one byte changed', header: `TSA ${secret.customerId}:${signature}`, body: oneByteChanged, ok: false, reason: /signature/ },
    {
      name: 'a signature made with the key bytes instead of the base64-decoded key',
      header: `TSA ${secret.customerId}:${createHmac('sha256', secret.apiKey).update(body).digest('base64')}`,
      ok: false,
      reason: /signature/,
    },
  ];

  for (const { name, header, body: sentBody, ok, reason } of cases) {
    test(`${ok ? 'accepts' : 'refuses'} ${name}`, async () => {
      // prepare
      const callback = request(sentBody ?? body, header);
      // act
      const result = telesign.authenticate(callback, secret);
      const run = await runIngest(telesign, callback);
      // assess
      assert.equal(result.ok, ok, JSON.stringify(result));
      if (!result.ok && reason) assert.match(result.reason, reason);
      assert.equal(run.response.statusCode, ok ? 200 : 401);
      assert.equal(run.sent.length, ok ? 1 : 0);
    });
  }

  test('the one-byte change really is one byte', () => {
    const differing = [...body].filter((byte, index) => byte !== oneByteChanged[index]).length;
    assert.equal(differing, 1);
  });

  test('X-TS-Authorization alone is not accepted in place of Authorization', async () => {
    // prepare
    const callback = { ...request(body, undefined), headers: { 'x-ts-authorization': `TSA ${secret.customerId}:${signature}` } };
    // act
    const run = await runIngest(telesign, callback);
    // assess
    assert.equal(run.response.statusCode, 401);
  });
});

describe('TeleSign body delivered base64-encoded by API Gateway', () => {
  // Non-ASCII text, a BOM-less UTF-8 body with CRLF line ends: anything re-encoded would not verify.
  const body = Buffer.from(
    '{"reference_id":"0123456789ABCDEF0123456789ABCDEF",\r\n"status":{"code":200,"description":"Délivré — ✓","updated_on":"2016-10-21T14:05:36.181346Z"}}',
    'utf8',
  );
  const authorization = `TSA ${secret.customerId}:${teleSignSignature(secret.apiKey, body)}`;

  const cases = [
    { name: 'base64-encoded (isBase64Encoded true)', eventBody: body.toString('base64'), isBase64Encoded: true, status: 200 },
    { name: 'as text (isBase64Encoded false)', eventBody: body.toString('utf8'), isBase64Encoded: false, status: 200 },
    // The control: treating the base64 text as the body must not verify.
    { name: 'base64 text mistaken for the body', eventBody: body.toString('base64'), isBase64Encoded: false, status: 401 },
  ];

  for (const { name, eventBody, isBase64Encoded, status } of cases) {
    test(`${name}: answers ${status}`, async () => {
      // prepare
      const event = apiGatewayEvent({
        method: 'POST',
        rawPath: '/callbacks/telesign',
        headers: { 'Content-Type': 'application/json', Authorization: authorization },
        body: eventBody,
        isBase64Encoded,
      });
      const callback = toCallbackRequest(event);
      // act
      const run = await runIngest(telesign, callback);
      // assess
      assert.equal(run.response.statusCode, status, JSON.stringify(run.response.body));
      if (status === 200) {
        assert.ok(callback.body.equals(body), 'the core sees the exact bytes sent');
        assert.equal(run.messages[0].raw.body, body.toString('utf8'), 'the queued raw body is the exact text');
        assert.equal((run.messages[0].payload as TeleSignCallback).status?.description, 'Délivré — ✓');
      }
    });
  }

  test('a non-UTF-8 body is verified on its bytes and queued as base64', async () => {
    // prepare
    const latin1 = Buffer.from('{"reference_id":"ABC","status":{"code":200,"description":"D\xe9livr\xe9"}}', 'latin1');
    const event = apiGatewayEvent({
      method: 'POST',
      rawPath: '/callbacks/telesign',
      headers: { authorization: `TSA ${secret.customerId}:${teleSignSignature(secret.apiKey, latin1)}` },
      body: latin1.toString('base64'),
      isBase64Encoded: true,
    });
    // act
    const run = await runIngest(telesign, toCallbackRequest(event));
    // assess: authentic, unreadable as UTF-8, so quarantined with its exact bytes
    assert.deepEqual(run.response.body, { received: true, quarantined: true });
    assert.equal(run.messages[0].raw.bodyBase64, latin1.toString('base64'));
    assert.equal(run.messages[0].raw.body, undefined);
  });
});

describe('TeleSign payload variants', () => {
  function describeBody(json: object) {
    const parsed = telesign.parse(request(JSON.stringify(json), undefined));
    assert.ok(parsed.ok, JSON.stringify(parsed));
    return { payload: parsed.payload, facts: telesign.describe(parsed.payload) };
  }
  const base = { reference_id: '0123456789ABCDEF0123456789ABCDEF', errors: [], sub_resource: 'sms' };

  test('a status code sent as a string is the same event as the number', () => {
    // prepare
    const updated_on = '2016-10-21T14:05:36.181346Z';
    // act
    const asNumber = describeBody({ ...base, status: { code: 200, updated_on } });
    const asString = describeBody({ ...base, status: { code: '200', updated_on } });
    // assess
    assert.equal(asString.payload.status?.code, 200);
    assert.deepEqual(asString.facts, asNumber.facts);
    assert.equal(asString.facts.eventKey, asNumber.facts.eventKey);
  });

  test('a status code that is not a number is quarantined', async () => {
    // prepare
    const body = Buffer.from(JSON.stringify({ ...base, status: { code: 'OK' } }));
    // act
    const run = await runIngest(telesign, authentic(telesign, { body }));
    // assess
    assert.deepEqual(run.response.body, { received: true, quarantined: true });
    assert.match(run.messages[0].quarantine!.issues.join('\n'), /status\.code/);
  });

  test('message_parts_count as a string or a number is kept as sent', () => {
    const asString = describeBody({ ...base, status: { code: 200 }, additional_info: { message_parts_count: '2' } });
    const asNumber = describeBody({ ...base, status: { code: 200 }, additional_info: { message_parts_count: 2 } });
    assert.equal((asString.payload.additional_info as { message_parts_count: unknown }).message_parts_count, '2');
    assert.equal((asNumber.payload.additional_info as { message_parts_count: unknown }).message_parts_count, 2);
  });

  const times = [
    { name: 'an HTTP date', updated_on: 'Thu, 23 Jun 2022 19:03:44 GMT', statusAt: '2022-06-23T19:03:44.000Z' },
    { name: 'RFC 3339 with microseconds', updated_on: '2016-10-21T14:05:36.181346Z', statusAt: '2016-10-21T14:05:36.181Z' },
    { name: 'RFC 3339 with an offset', updated_on: '2016-10-21T16:05:36+02:00', statusAt: '2016-10-21T14:05:36.000Z' },
    { name: 'a date with month 31 (Verify API sample)', updated_on: '2022-31-03T14:51:28.709526Z', statusAt: undefined },
    { name: 'an empty string', updated_on: '', statusAt: undefined },
  ];
  for (const { name, updated_on, statusAt } of times) {
    test(`updated_on as ${name} gives statusAt ${statusAt ?? '(none)'}`, () => {
      const { facts } = describeBody({ ...base, status: { code: 200, updated_on } });
      assert.equal(facts.statusAt, statusAt);
    });
  }

  test('the same instant written as HTTP date and RFC 3339 places the same statusAt', () => {
    const http = describeBody({ ...base, status: { code: 200, updated_on: 'Thu, 23 Jun 2022 19:03:44 GMT' } });
    const rfc = describeBody({ ...base, status: { code: 200, updated_on: '2022-06-23T19:03:44Z' } });
    assert.equal(http.facts.statusAt, rfc.facts.statusAt);
  });

  const classifications = [
    { code: 203, outcome: 'pending', terminal: false },
    { code: 290, outcome: 'pending', terminal: false },
    { code: 200, outcome: 'succeeded', terminal: true },
    { code: 1500, outcome: 'succeeded', terminal: true },
    { code: 207, outcome: 'failed', terminal: true },
    { code: 210, outcome: 'failed', terminal: true },
    { code: 500, outcome: 'failed', terminal: true },
  ];
  for (const { code, outcome, terminal } of classifications) {
    test(`status ${code} is ${terminal ? 'terminal' : 'non-terminal'} ${outcome}`, () => {
      const { facts } = describeBody({ ...base, status: { code, updated_on: '2016-10-21T14:05:36Z' } });
      assert.equal(facts.status, String(code));
      assert.equal(facts.outcome, outcome);
      assert.equal(facts.terminal, terminal);
    });
  }

  test('203 then 200 ends at 200, and so does 200 then a late 203', () => {
    // prepare: 203 (delivered to gateway) and 200 (delivered to handset) of one message
    const at203 = describeBody({ ...base, status: { code: 203, updated_on: '2016-10-21T14:05:30Z' } }).facts;
    const at200 = describeBody({ ...base, status: { code: 200, updated_on: '2016-10-21T14:05:36Z' } }).facts;
    const now = '2025-01-01T00:00:00.000Z';
    const apply = (order: (typeof at200)[]) =>
      order.reduce<StateItem | undefined>(
        (state, facts) =>
          applyObservations(state, { provider: 'telesign', subjectId: facts.subjectId }, [{ hash: facts.eventKey, counts: true, source: 'callback', placed: placeStatus(facts, '2016-10-21T14:06:00Z') }], undefined, now) ?? state,
        undefined,
      );
    // act
    const inOrder = apply([at203, at200]);
    const reversed = apply([at200, at203]);
    // assess
    assert.equal(at203.subjectId, at200.subjectId);
    assert.notEqual(at203.eventKey, at200.eventKey);
    for (const state of [inOrder, reversed]) {
      assert.equal(state?.status, '200');
      assert.equal(state?.outcome, 'succeeded');
      assert.equal(state?.terminal, true);
      assert.equal(state?.eventCount, 2);
    }
  });
});

describe('TeleSign through the real secret cache and logger', () => {
  test('a placeholder secret fails closed with 503 even for a request signed with the placeholder', async () => {
    // prepare: someone signs with the placeholder key the stack writes before the user fills it in
    const placeholder = { customerId: 'REPLACE_ME', apiKey: 'REPLACE_ME' };
    const callback = toRequest(telesign, {
      method: 'POST',
      path: '/callbacks/telesign',
      headers: { authorization: `TSA REPLACE_ME:${teleSignSignature('REPLACE_ME', Buffer.from('{}'))}` },
      body: Buffer.from('{}'),
    });
    const lines: string[] = [];
    // act
    const response = await ingest(telesign, callback, {
      secrets: createSecretCache(fixedSecretSource({ telesign: placeholder })),
      send: async () => assert.fail('nothing may be queued'),
      log: createLogger({ service: 'unit', write: (line) => lines.push(line) }),
    });
    // assess
    assert.equal(response.statusCode, 503);
    assert.equal(response.body.error, 'secret_invalid');
    assert.equal(lines.length, 1);
  });
});

describe('TeleSign Authorization scheme', () => {
  test('the scheme name is matched case-insensitively, as HTTP auth schemes are', () => {
    // prepare
    const secret = TeleSignSecretSchema.parse(UNIT_SECRETS.telesign);
    const body = Buffer.from('{"reference_id":"ABC","status":{"code":200}}');
    const signature = teleSignSignature(secret.apiKey, body);
    const request = (authorization: string): CallbackRequest => ({
      method: 'POST', headers: { authorization }, body, rawQuery: '', sourceIp: '127.0.0.1', requestId: 'r', receivedAt: new Date().toISOString(),
    });
    // act / assess
    assert.deepEqual(telesign.authenticate(request(`tsa ${secret.customerId}:${signature}`), secret), { ok: true });
    assert.equal(telesign.authenticate(request(`Basic ${secret.customerId}:${signature}`), secret).ok, false);
  });
});
