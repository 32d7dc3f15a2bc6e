import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createLogger } from '../../functions/shared/log.ts';
import { ingest } from '../../functions/core/ingest.ts';
import { createSecretCache } from '../../functions/core/secrets.ts';
import { placeStatus, unstorableKeyReason } from '../../functions/core/events.ts';
import { applyObservations, type StateItem } from '../../functions/core/state.ts';
import { toCallbackRequest } from '../../functions/handlers/api-gateway.ts';
import type { CallbackRequest, EventFacts } from '../../functions/providers/provider.ts';
import { telesign, teleSignSignature, TeleSignSecretSchema, type TeleSignCallback, type TeleSignSecret } from '../../functions/providers/telesign.ts';
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
  }

  test(`${vectors[0].name}: authenticate accepts the published header and refuses it for another body`, () => {
    // prepare: a 61-byte key, real key material
    const vector = vectors[0];
    const vectorSecret = TeleSignSecretSchema.parse({ customerId: vector.customerId, apiKey: vector.apiKey });
    const header = `TSA ${vector.customerId}:${vector.signature}`;
    // act
    const genuine = telesign.authenticate(request(vector.body, header), vectorSecret);
    const otherBody = telesign.authenticate(request(`${vector.body} `, header), vectorSecret);
    // assess
    assert.deepEqual(genuine, { ok: true });
    assert.equal(otherBody.ok, false);
  });

  test(`${vectors[1].name}: its 14-byte key signs as published, but no secret may hold it (503 secret_invalid)`, async () => {
    // prepare
    const vector = vectors[1];
    const vectorSecret = { customerId: vector.customerId, apiKey: vector.apiKey };
    const header = `TSA ${vector.customerId}:${vector.signature}`;
    // act
    const parsed = TeleSignSecretSchema.safeParse(vectorSecret);
    const run = await runIngest(telesign, request(vector.body, header), { secret: vectorSecret });
    // assess
    assert.equal(Buffer.from(vector.apiKey, 'base64').length, 14);
    assert.equal(parsed.success, false);
    assert.deepEqual(run.response, { statusCode: 503, body: { error: 'secret_invalid', message: run.response.body.message } });
    assert.deepEqual(run.sent, []);
  });

  test('the first vector does not reproduce when the key is decoded without stripping (guards the strip)', () => {
    // Node reads '-' as URL-safe base64: a different key, a different signature.
    const naive = createHmac('sha256', Buffer.from(vectors[0].apiKey, 'base64')).update(vectors[0].body).digest('base64');
    assert.notEqual(naive, vectors[0].signature);
  });

  test('an authentic body that is not JSON (the GitLab vector\'s body) is quarantined, not refused', async () => {
    // prepare: the vector's body, signed with a real key
    const body = vectors[1].body;
    // act
    const run = await runIngest(telesign, request(body, `TSA ${secret.customerId}:${teleSignSignature(secret.apiKey, body)}`));
    // assess
    assert.deepEqual(run.response, { statusCode: 200, body: { received: true, quarantined: true } });
    assert.equal(run.messages[0].raw.body, body);
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
    // Codes TeleSign lists as failures stay failures.
    { code: 221, outcome: 'failed', terminal: true },
    { code: 230, outcome: 'failed', terminal: true },
    { code: 503, outcome: 'failed', terminal: true },
    { code: 521, outcome: 'failed', terminal: true },
    { code: 107, outcome: 'failed', terminal: true },
    { code: 10031, outcome: 'failed', terminal: true },
    // "Final status unknown", "no handset DLR within 12 hours", "status not available": never a failure we made up.
    { code: 250, outcome: 'unknown', terminal: true },
    { code: 251, outcome: 'unknown', terminal: true },
    { code: 599, outcome: 'unknown', terminal: true },
    // "Status delayed: temporarily unavailable": a later status is expected.
    { code: 295, outcome: 'pending', terminal: false },
    { code: 292, outcome: 'pending', terminal: false },
    { code: 103, outcome: 'pending', terminal: false },
    // In no TeleSign table (293/294 were once guessed "in progress"; 516 is the gap in 500–521).
    { code: 293, outcome: 'unknown', terminal: true },
    { code: 294, outcome: 'unknown', terminal: true },
    { code: 516, outcome: 'unknown', terminal: true },
    { code: 0, outcome: 'unknown', terminal: true },
    { code: 999, outcome: 'unknown', terminal: true },
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

/** Parse a body as ingest does and describe it as the worker does (after the queue's JSON round trip). */
function factsOf(json: object | string) {
  const parsed = telesign.parse(request(typeof json === 'string' ? json : JSON.stringify(json), undefined));
  if (!parsed.ok) assert.fail(`${parsed.reason}: ${parsed.issues.join('; ')}`);
  const facts = telesign.describe(parsed.payload);
  let queued: string | undefined;
  try {
    queued = JSON.stringify(parsed.payload);
  } catch {
    // Too deep for JSON.stringify: ingest leaves the payload out and the worker re-parses the raw body.
  }
  if (queued !== undefined) assert.deepEqual(telesign.describe(JSON.parse(queued) as TeleSignCallback), facts, 'the queued payload describes the same event');
  return facts;
}

/** The state after applying callbacks in this order, each as a distinct callback. */
function stateAfter(order: readonly EventFacts[]): StateItem | undefined {
  const now = '2025-01-01T00:00:00.000Z';
  return order.reduce<StateItem | undefined>(
    (state, facts) =>
      applyObservations(
        state,
        { provider: 'telesign', subjectId: facts.subjectId },
        state?.recent.includes(facts.eventKey) ? [] : [{ hash: facts.eventKey, counts: true, source: 'callback', placed: placeStatus(facts, '2025-01-01T00:00:00Z') }],
        undefined,
        now,
      ) ?? state,
    undefined,
  );
}

describe('TeleSign SMS Verify code_state (status "<code> <CODE_STATE>")', () => {
  const verifyReport = (code: number, codeState: unknown, updated_on = '2016-10-21T14:05:36.181346Z') => ({
    reference_id: 'B56259E45884010488343BAA15FB0002',
    status: { code, description: 'Delivered to handset', updated_on },
    errors: [],
    verify: { code_state: codeState, code_entered: null },
    sub_resource: 'sms',
  });

  const cases = [
    { code: 200, codeState: 'VALID', status: '200 VALID', outcome: 'succeeded', terminal: true, detail: { codeState: 'VALID' } },
    { code: 200, codeState: 'INVALID', status: '200 INVALID', outcome: 'failed', terminal: true, detail: { codeState: 'INVALID' } },
    { code: 200, codeState: 'EXPIRED', status: '200 EXPIRED', outcome: 'failed', terminal: true, detail: { codeState: 'EXPIRED' } },
    { code: 200, codeState: 'MAX_ATTEMPTS_EXCEEDED', status: '200 MAX_ATTEMPTS_EXCEEDED', outcome: 'failed', terminal: true, detail: { codeState: 'MAX_ATTEMPTS_EXCEEDED' } },
    // UNKNOWN ("any other state"), absent or empty: the delivery code alone, as before.
    { code: 200, codeState: 'UNKNOWN', status: '200', outcome: 'succeeded', terminal: true, detail: { codeState: 'UNKNOWN' } },
    { code: 200, codeState: null, status: '200', outcome: 'succeeded', terminal: true, detail: undefined },
    { code: 200, codeState: '', status: '200', outcome: 'succeeded', terminal: true, detail: undefined },
    { code: 230, codeState: 'UNKNOWN', status: '230', outcome: 'failed', terminal: true, detail: { codeState: 'UNKNOWN' } },
    // VALID follows the delivery code; the failing states fail whatever the delivery code says.
    { code: 203, codeState: 'VALID', status: '203 VALID', outcome: 'pending', terminal: false, detail: { codeState: 'VALID' } },
    { code: 250, codeState: 'VALID', status: '250 VALID', outcome: 'unknown', terminal: true, detail: { codeState: 'VALID' } },
    { code: 203, codeState: 'INVALID', status: '203 INVALID', outcome: 'failed', terminal: true, detail: { codeState: 'INVALID' } },
    // Spelled in lower case: the same state.
    { code: 200, codeState: 'valid', status: '200 VALID', outcome: 'succeeded', terminal: true, detail: { codeState: 'VALID' } },
    // Not a documented state: never success (fail closed).
    { code: 200, codeState: 'VERIFIED', status: '200 VERIFIED', outcome: 'unknown', terminal: true, detail: { codeState: 'VERIFIED' } },
    { code: 200, codeState: 'VALID ', status: '200 VALID ', outcome: 'unknown', terminal: true, detail: { codeState: 'VALID ' } },
  ];
  for (const { code, codeState, status, outcome, terminal, detail } of cases) {
    test(`${code} with code_state ${JSON.stringify(codeState)} is "${status}", ${terminal ? 'terminal' : 'non-terminal'} ${outcome}`, () => {
      // act
      const facts = factsOf(verifyReport(code, codeState));
      // assess
      assert.equal(facts.status, status);
      assert.equal(facts.outcome, outcome);
      assert.equal(facts.terminal, terminal);
      assert.deepEqual(facts.detail, detail);
      assert.equal(facts.eventKey, `${status}|2016-10-21T14:05:36.181346Z`);
    });
  }

  test('VALID and INVALID at the same code and time are two events, not a retry of one', () => {
    // act
    const valid = factsOf(verifyReport(200, 'VALID'));
    const invalid = factsOf(verifyReport(200, 'INVALID'));
    // assess
    assert.notEqual(valid.eventKey, invalid.eventKey);
    assert.notEqual(valid.status, invalid.status);
    assert.notEqual(valid.outcome, invalid.outcome);
  });

  test('the general callback page example (code_state VALID) is "200 VALID", succeeded', () => {
    // prepare
    const body = listSamples('telesign').find((sample) => sample.name === 'sms-verify-dlr-valid')!.body!;
    // act
    const facts = factsOf(body.toString('utf8'));
    // assess
    assert.deepEqual(
      { status: facts.status, outcome: facts.outcome, terminal: facts.terminal, detail: facts.detail },
      { status: '200 VALID', outcome: 'succeeded', terminal: true, detail: { codeState: 'VALID' } },
    );
  });

  const sequences = [
    { name: 'delivered, a wrong code, then the right one', order: ['UNKNOWN', 'INVALID', 'VALID'], status: '200 VALID', outcome: 'succeeded' },
    { name: 'the same, received in reverse', order: ['VALID', 'INVALID', 'UNKNOWN'], status: '200 VALID', outcome: 'succeeded' },
    { name: 'delivered, then a wrong code', order: ['UNKNOWN', 'INVALID'], status: '200 INVALID', outcome: 'failed' },
    { name: 'delivered (received last), after a wrong code', order: ['INVALID', 'UNKNOWN'], status: '200 INVALID', outcome: 'failed' },
    { name: 'wrong codes until the attempts run out', order: ['INVALID', 'MAX_ATTEMPTS_EXCEEDED', 'INVALID'], status: '200 MAX_ATTEMPTS_EXCEEDED', outcome: 'failed' },
    { name: 'a code entered too late', order: ['EXPIRED', 'UNKNOWN'], status: '200 EXPIRED', outcome: 'failed' },
    { name: 'a check after the verification succeeded', order: ['VALID', 'EXPIRED'], status: '200 VALID', outcome: 'succeeded' },
  ];
  for (const { name, order, status, outcome } of sequences) {
    test(`${name} (${order.join(' → ')}) ends at "${status}", ${outcome}`, () => {
      // prepare: one message, the same delivery time on every report
      const reports = order.map((codeState) => factsOf(verifyReport(200, codeState)));
      // act
      const state = stateAfter(reports);
      // assess
      assert.equal(state?.status, status);
      assert.equal(state?.outcome, outcome);
      // Each code state is its own event; a second INVALID at the same time is a retry of the first.
      assert.equal(state?.eventCount, new Set(order).size);
    });
  }

  const refused = [
    { name: 'a number', verify: { code_state: 1 } },
    { name: 'an object', verify: { code_state: { toString: 1 } } },
    { name: 'longer than 64 characters', verify: { code_state: 'V'.repeat(65) } },
    { name: 'verify not an object', verify: 'VALID' },
  ];
  for (const { name, verify } of refused) {
    test(`a code_state that is ${name} is quarantined, never read as a delivery report alone`, async () => {
      // prepare
      const body = Buffer.from(JSON.stringify({ ...verifyReport(200, 'UNKNOWN'), verify }));
      // act
      const run = await runIngest(telesign, authentic(telesign, { body }));
      // assess
      assert.deepEqual(run.response.body, { received: true, quarantined: true });
      assert.match(run.messages[0].quarantine!.issues.join('\n'), /verify/);
    });
  }
});

describe('TeleSign status codes whose final status is unknown', () => {
  const report = (code: number, updated_on: string) => ({ reference_id: 'AB12', status: { code, updated_on } });

  test('250 then a later 200 ends at 200; 250 alone stays unknown, never failed', () => {
    // act
    const unknownOnly = stateAfter([factsOf(report(250, '2016-10-21T14:05:30Z'))]);
    const resolved = stateAfter([factsOf(report(250, '2016-10-21T14:05:30Z')), factsOf(report(200, '2016-10-21T14:06:00Z'))]);
    // assess
    assert.deepEqual({ status: unknownOnly?.status, outcome: unknownOnly?.outcome }, { status: '250', outcome: 'unknown' });
    assert.deepEqual({ status: resolved?.status, outcome: resolved?.outcome }, { status: '200', outcome: 'succeeded' });
  });

  test('295 (status delayed) is replaced by the status that follows', () => {
    // act
    const state = stateAfter([factsOf(report(295, '2016-10-21T14:05:30Z')), factsOf(report(251, '2016-10-21T14:05:00Z'))]);
    // assess
    assert.deepEqual({ status: state?.status, outcome: state?.outcome, terminal: state?.terminal }, { status: '251', outcome: 'unknown', terminal: true });
  });
});

describe('TeleSign Verify API state', () => {
  const cases = [
    { state: 'CREATED', outcome: 'pending', terminal: false },
    { state: 'ONGOING', outcome: 'pending', terminal: false },
    { state: 'VERIFIED', outcome: 'succeeded', terminal: true },
    { state: 'REJECTED', outcome: 'failed', terminal: true },
    { state: 'FAILED', outcome: 'failed', terminal: true },
    { state: 'CANCELED', outcome: 'failed', terminal: true },
    // Not in TeleSign's enum: never a failure we made up.
    { state: 'EXPIRED', outcome: 'unknown', terminal: true },
    { state: 'SKIPPED', outcome: 'unknown', terminal: true },
  ];
  for (const { state, outcome, terminal } of cases) {
    test(`${state} is ${terminal ? 'terminal' : 'non-terminal'} ${outcome}`, () => {
      // act
      const facts = factsOf({ reference_id: '0123456789ABCDEF0123456789ABCDEF', state, updated_on: '2022-03-31T14:51:28Z' });
      // assess
      assert.deepEqual({ status: facts.status, outcome: facts.outcome, terminal: facts.terminal }, { status: state, outcome, terminal });
    });
  }
});

describe('TeleSign Voice events', () => {
  const session = '534e1848-235f-482d-983d-e3e11a04f58a';
  const voice = (event: string, data: unknown) => ({ event, reference_id: session, data });
  const completed = (data: Record<string, unknown>) =>
    voice('call_completed', {
      duration: 6,
      created_on_utc: '2019-03-15T06:48:22.151',
      answered_on_utc: '2019-03-15T06:48:24.151',
      ended_on_utc: '2019-03-15T06:48:28.151',
      status: 'hangup',
      to: 'DESTINATION_NUMBER',
      from: 'VIRTUAL_NUMBER',
      direction: 'outbound',
      ...data,
    });

  const callCompleted = [
    { name: 'hung up after being answered (TeleSign sample)', data: {}, status: 'call_completed hangup', outcome: 'succeeded' },
    { name: 'hung up, never answered (answered_on_utc null)', data: { answered_on_utc: null, duration: 0 }, status: 'call_completed hangup', outcome: 'failed' },
    { name: 'hung up, no answered_on_utc at all', data: { answered_on_utc: undefined }, status: 'call_completed hangup', outcome: 'failed' },
    { name: 'hung up, answered_on_utc not a time', data: { answered_on_utc: 'soon' }, status: 'call_completed hangup', outcome: 'unknown' },
    { name: 'no-answer', data: { status: 'no-answer', answered_on_utc: null }, status: 'call_completed no-answer', outcome: 'failed' },
    { name: 'busy', data: { status: 'busy', answered_on_utc: null }, status: 'call_completed busy', outcome: 'failed' },
    { name: 'failed', data: { status: 'failed', answered_on_utc: null }, status: 'call_completed failed', outcome: 'failed' },
    { name: 'NO_ANSWER spelled otherwise', data: { status: 'NO_ANSWER', answered_on_utc: null }, status: 'call_completed NO_ANSWER', outcome: 'failed' },
    // Values TeleSign never documented: not known to mean an answered call, not known to fail.
    { name: 'busy, with an answer time (the answer time does not make it a success)', data: { status: 'busy' }, status: 'call_completed busy', outcome: 'failed' },
    { name: 'completed', data: { status: 'completed' }, status: 'call_completed completed', outcome: 'unknown' },
    { name: 'answered', data: { status: 'answered' }, status: 'call_completed answered', outcome: 'unknown' },
    { name: 'no status', data: { status: undefined }, status: 'call_completed', outcome: 'unknown' },
    { name: 'a status that is not a string', data: { status: { toString: 1 } }, status: 'call_completed ?', outcome: 'unknown' },
    { name: 'a status of 1,000 characters', data: { status: 'h'.repeat(1_000) }, status: 'call_completed ?', outcome: 'unknown' },
  ];
  for (const { name, data, status, outcome } of callCompleted) {
    test(`call_completed ${name}: "${status}", terminal ${outcome}`, () => {
      // act
      const facts = factsOf(completed(data));
      // assess
      assert.deepEqual({ status: facts.status, outcome: facts.outcome, terminal: facts.terminal }, { status, outcome, terminal: true });
    });
  }

  test('call_completed keeps data.status and whether it was answered in the detail', () => {
    // act
    const answered = factsOf(completed({}));
    const unanswered = factsOf(completed({ status: 'no-answer', answered_on_utc: null }));
    // assess
    assert.deepEqual(answered.detail, { callStatus: 'hangup', answered: true });
    assert.deepEqual(unanswered.detail, { callStatus: 'no-answer', answered: false });
  });

  test('ended_on_utc carries no zone: it is read as UTC whatever the machine\'s zone', () => {
    // prepare
    const zone = process.env.TZ;
    process.env.TZ = 'Asia/Kolkata';
    try {
      // act
      const facts = factsOf(completed({}));
      // assess
      assert.equal(facts.statusAt, '2019-03-15T06:48:28.151Z');
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });

  const dialCompleted = [
    { data: { to: 'A', from: 'B', status: 'answered' }, status: 'dial_completed answered', outcome: 'pending' },
    { data: { to: 'A', from: 'B', status: 'busy' }, status: 'dial_completed busy', outcome: 'failed' },
    { data: { to: 'A', from: 'B', status: 'no-answer' }, status: 'dial_completed no-answer', outcome: 'failed' },
    // "sent when the call is answered or fails": any value but answered is a failed dial.
    { data: { to: 'A', from: 'B', status: 'something-new' }, status: 'dial_completed something-new', outcome: 'failed' },
    { data: { to: 'A', from: 'B' }, status: 'dial_completed', outcome: 'unknown' },
    { data: { to: 'A', from: 'B', status: 42 }, status: 'dial_completed ?', outcome: 'unknown' },
  ];
  for (const { data, status, outcome } of dialCompleted) {
    test(`dial_completed with data.status ${JSON.stringify(data.status)}: "${status}", ${outcome}, never terminal`, () => {
      // act
      const facts = factsOf(voice('dial_completed', data));
      // assess
      assert.deepEqual({ status: facts.status, outcome: facts.outcome, terminal: facts.terminal }, { status, outcome, terminal: false });
    });
  }

  test('two dial_completed legs of one session are two events; a retry of one is the same event', () => {
    // prepare
    const legA = voice('dial_completed', { to: '15558675309', from: '15555551212', status: 'answered' });
    const legB = voice('dial_completed', { to: '15558675310', from: '15555551212', status: 'answered' });
    // act
    const a = factsOf(legA);
    const b = factsOf(legB);
    const retry = factsOf(JSON.stringify(legA));
    // assess
    assert.equal(a.subjectId, b.subjectId);
    assert.notEqual(a.eventKey, b.eventKey);
    assert.equal(retry.eventKey, a.eventKey);
    assert.match(a.eventKey, /^dial_completed\|[0-9a-f]{16}$/, 'no phone number in the key');
  });

  test('the key does not depend on the order of data\'s fields', () => {
    // act
    const ordered = factsOf('{"event":"dial_completed","reference_id":"S","data":{"to":"A","from":"B","status":"answered"}}');
    const reordered = factsOf('{"reference_id":"S","data":{"status":"answered","from":"B","to":"A"},"event":"dial_completed"}');
    // assess
    assert.equal(reordered.eventKey, ordered.eventKey);
  });

  test('two legs, one busy, then the call completes answered: three events, the call succeeded', () => {
    // prepare
    const events = [
      factsOf(voice('dial_completed', { to: 'A1', from: 'B', status: 'answered' })),
      factsOf(voice('dial_completed', { to: 'A2', from: 'B', status: 'busy' })),
      factsOf(completed({})),
    ];
    // act
    const inOrder = stateAfter(events);
    const completedFirst = stateAfter([events[2], events[0], events[1]]);
    // assess
    for (const state of [inOrder, completedFirst]) {
      assert.equal(state?.eventCount, 3);
      assert.deepEqual({ status: state?.status, outcome: state?.outcome, terminal: state?.terminal }, { status: 'call_completed hangup', outcome: 'succeeded', terminal: true });
    }
  });

  test('a call that completes busy is failed, not succeeded, whatever came before', () => {
    // act
    const state = stateAfter([
      factsOf(voice('dial_completed', { to: 'A1', from: 'B', status: 'busy' })),
      factsOf(completed({ status: 'busy', answered_on_utc: null, duration: 0 })),
    ]);
    // assess
    assert.deepEqual({ outcome: state?.outcome, terminal: state?.terminal }, { outcome: 'failed', terminal: true });
  });

  const hostileData = [
    { name: 'null', data: 'null' },
    { name: 'an array', data: '[1,2]' },
    { name: 'a number', data: '1e999' },
    { name: 'a string', data: '"hangup"' },
    { name: 'an object whose toString is not a function', data: '{"toString":1,"valueOf":{}}' },
    { name: 'status and times whose toString is not a function', data: '{"status":{"toString":1},"answered_on_utc":{"toString":1},"ended_on_utc":{"toString":1}}' },
    { name: 'a __proto__ key', data: '{"__proto__":{"status":"hangup"},"constructor":{"prototype":1}}' },
    { name: 'status inherited through an own __proto__ object', data: '{"__proto__":{"status":"hangup","answered_on_utc":"2019-03-15T06:48:24"}}' },
    { name: 'nested 20,000 levels deep', data: `${'['.repeat(20_000)}${']'.repeat(20_000)}` },
    { name: 'an object nested 5,000 levels deep', data: `${'{"a":'.repeat(5_000)}0${'}'.repeat(5_000)}` },
    { name: 'a lone surrogate key', data: '{"\\ud800":"x","status":"\\udfff"}' },
    { name: '5,000 keys', data: `{${Array.from({ length: 5_000 }, (_, i) => `"k${i}":${i}`).join(',')}}` },
  ];
  for (const event of ['call_completed', 'dial_completed', 'incoming_call', 'x_new_event']) {
    for (const { name, data } of hostileData) {
      test(`${event} with data ${name}: described, a storable key, never succeeded`, () => {
        // prepare
        const body = `{"event":"${event}","reference_id":"hostile-voice","data":${data}}`;
        // act
        const facts = factsOf(body);
        // assess
        assert.notEqual(facts.outcome, 'succeeded');
        assert.equal(unstorableKeyReason(facts), undefined);
        assert.match(facts.eventKey, new RegExp(`^${event}\\|[0-9a-f]{16}$`));
      });
    }
  }
});

describe('TeleSign API key material', () => {
  const customerId = 'KEY-CUSTOMER-1';
  const keys = [
    { name: 'a masked key (********)', apiKey: '********', ok: false },
    { name: 'a masked key with a few characters shown', apiKey: 'EXAM********', ok: false },
    { name: 'base64 of 14 bytes (the GitLab vector)', apiKey: 'c2VjcmV0X2FwaV9rZXk=', ok: false },
    { name: 'base64 of 15 bytes', apiKey: Buffer.alloc(15, 7).toString('base64'), ok: false },
    { name: 'base64 of 16 bytes', apiKey: Buffer.alloc(16, 7).toString('base64'), ok: true },
    { name: 'TeleSign\'s SDK vector (61 bytes once the "-" are dropped)', apiKey: 'EXAMPLE----TE8sTgg45yusumoN6BYsBVkh+yRJ5czgsnCehZaOYldPJdmFh6NeX8kunZ2zU1YWaUw/0wV6xfw==', ok: true },
  ];
  for (const { name, apiKey, ok } of keys) {
    test(`${ok ? 'accepts' : 'refuses'} ${name} as apiKey, and as previous.apiKey`, () => {
      // prepare
      const good = Buffer.alloc(32, 1).toString('base64');
      // act
      const current = TeleSignSecretSchema.safeParse({ customerId, apiKey });
      const previous = TeleSignSecretSchema.safeParse({ customerId, apiKey: good, previous: { apiKey } });
      // assess
      assert.equal(current.success, ok);
      assert.equal(previous.success, ok);
      if (!current.success) assert.match(JSON.stringify(current.error.issues), /fewer than 16 bytes/);
    });
  }

  test('a masked key makes the secret invalid: 503 secret_invalid, never a request checked with an empty HMAC key', async () => {
    // prepare: a request "signed" with what the masked key decodes to (nothing)
    const masked = { customerId, apiKey: '********' };
    const body = Buffer.from('{"reference_id":"ABC","status":{"code":200}}');
    const callback = request(body, `TSA ${customerId}:${createHmac('sha256', Buffer.alloc(0)).update(body).digest('base64')}`);
    const lines: string[] = [];
    // act
    const response = await ingest(telesign, callback, {
      secrets: createSecretCache(fixedSecretSource({ telesign: masked })),
      send: async () => assert.fail('nothing may be queued'),
      log: createLogger({ service: 'unit', write: (line) => lines.push(line) }),
    });
    // assess
    assert.equal(response.statusCode, 503);
    assert.equal(response.body.error, 'secret_invalid');
    assert.ok(lines.some((line) => /apiKey/.test(line) && /16 bytes/.test(line)), lines.join('\n'));
  });

  test('should a short key get past the schema, authenticate still refuses what it signs', () => {
    // prepare
    const unchecked = { customerId, apiKey: '********' } as TeleSignSecret;
    const body = Buffer.from('{"reference_id":"ABC","status":{"code":200}}');
    // act
    const result = telesign.authenticate(request(body, `TSA ${customerId}:${teleSignSignature(unchecked.apiKey, body)}`), unchecked);
    // assess
    assert.equal(result.ok, false);
  });
});

describe('TeleSign text that names a stored item', () => {
  const cases = [
    { field: 'reference_id', body: '{"reference_id":"AB\\ud800","status":{"code":200}}' },
    { field: 'status.updated_on', body: '{"reference_id":"AB","status":{"code":200,"updated_on":"2016-10-21\\udc00"}}' },
    { field: 'verify.code_state', body: '{"reference_id":"AB","status":{"code":200},"verify":{"code_state":"VALID\\ud83d"}}' },
    { field: 'state', body: '{"reference_id":"AB","state":"\\udfffVERIFIED"}' },
    { field: 'event', body: '{"reference_id":"AB","event":"call_completed\\ud800","data":{}}' },
  ];
  for (const { field, body } of cases) {
    test(`a lone UTF-16 surrogate in ${field} is quarantined as it arrives, never stored under a key DynamoDB would alter`, async () => {
      // act
      const run = await runIngest(telesign, authentic(telesign, { body: Buffer.from(body) }));
      // assess
      assert.deepEqual(run.response.body, { received: true, quarantined: true });
      assert.match(run.messages[0].quarantine!.reason, /surrogate/);
    });
  }
});
