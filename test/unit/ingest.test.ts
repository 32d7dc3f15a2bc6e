import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ingest } from '../../functions/core/ingest.ts';
import { createLogger } from '../../functions/shared/log.ts';
import { MAX_BODY_BYTES } from '../../functions/core/pipeline-definition.ts';
import { KEPT_HEADERS, QueueMessageSchema, rawBodyOf, requestOf } from '../../functions/core/queue-message.ts';
import { createSecretCache } from '../../functions/core/secrets.ts';
import { toCallbackRequest, toResult } from '../../functions/handlers/api-gateway.ts';
import { createIngestHandler } from '../../functions/handlers/ingest.ts';
import { getProvider, providers } from '../../functions/providers/index.ts';
import type { AnyProvider, CallbackRequest } from '../../functions/providers/provider.ts';
import { FIXTURES_DIR, listSamples, type Sample } from '../../local/samples.ts';
import { kitOf } from '../providers/index.ts';
import {
  apiGatewayEvent,
  authentic,
  contentOf,
  fixedSecretSource,
  runIngest,
  UNIT_SECRETS,
  type IngestRun,
} from '../support/unit-ingest.ts';
import { leaks } from '../support/log-leaks.ts';

const telesign = getProvider('telesign');
const identomat = getProvider('identomat');
const esms = getProvider('esms');

function firstSample(provider: AnyProvider): Sample {
  return listSamples(provider.id)[0];
}

function allSamples(provider: AnyProvider): Sample[] {
  const invalidDir = join(FIXTURES_DIR, provider.id, 'invalid');
  return [...listSamples(provider.id), ...(existsSync(invalidDir) ? listSamples(provider.id, 'invalid') : [])];
}

/** A promise whose settling the test decides. */
function deferred() {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

function assertJsonError(run: Pick<IngestRun, 'response'>, statusCode: number, error: string) {
  assert.equal(run.response.statusCode, statusCode, JSON.stringify(run.response.body));
  assert.equal(run.response.body.error, error);
  assert.equal(typeof run.response.body.message, 'string');
  assert.ok((run.response.body.message as string).length > 0);
}

describe('ingest answers 200 only once the queue accepted the message', () => {
  for (const provider of providers) {
    test(`${provider.id}: the answer waits for the send`, async () => {
      // prepare
      const queue = deferred();
      const sent: string[] = [];
      const request = authentic(provider, contentOf(firstSample(provider)));
      let answered = false;
      // act
      const answer = ingest(provider, request, {
        secrets: createSecretCache(fixedSecretSource(UNIT_SECRETS)),
        send: async (body) => {
          sent.push(body);
          await queue.promise;
        },
        log: createLogger({ service: 'unit', write: () => {} }),
      }).then((response) => ((answered = true), response));
      await new Promise((resolve) => setTimeout(resolve, 20));
      const answeredBeforeSend = answered;
      queue.resolve();
      const response = await answer;
      // assess
      assert.equal(sent.length, 1, 'the message was handed to the queue');
      assert.equal(answeredBeforeSend, false, 'ingest answered before the queue accepted the message');
      assert.deepEqual(response, { statusCode: 200, body: { received: true } });
    });

    test(`${provider.id}: a send that rejects is answered 503 queue_unavailable, never 200`, async () => {
      // prepare
      const request = authentic(provider, contentOf(firstSample(provider)));
      // act
      const run = await runIngest(provider, request, {
        send: () => Promise.reject(new Error('AWS.SimpleQueueService.NonExistentQueue')),
      });
      // assess
      assertJsonError(run, 503, 'queue_unavailable');
      assert.deepEqual(run.sent, []);
    });
  }

  test('a quarantined callback whose send rejects is answered 503 too', async () => {
    // prepare
    const request = authentic(getProvider('temboplus'), contentOf(listSamples('temboplus', 'invalid')[0]));
    // act
    const run = await runIngest(getProvider('temboplus'), request, { send: () => Promise.reject(new Error('throttled')) });
    // assess
    assertJsonError(run, 503, 'queue_unavailable');
  });
});

describe('ingest fails closed on secrets', () => {
  test('a secret source that fails is answered 503 secret_unavailable and queues nothing', async () => {
    // prepare
    const request = authentic(telesign, contentOf(firstSample(telesign)));
    const source = async () => {
      throw new Error('AccessDeniedException: not authorized to perform secretsmanager:GetSecretValue');
    };
    // act
    const run = await runIngest(telesign, request, { source });
    // assess
    assertJsonError(run, 503, 'secret_unavailable');
    assert.deepEqual(run.sent, []);
  });

  for (const provider of providers) {
    test(`${provider.id}: the stack's placeholder secret is answered 503 secret_invalid, even to a request made with it`, async () => {
      // prepare: the placeholder is public (it is in the template); a request built from it must not pass
      const placeholder = provider.secretPlaceholder;
      const request = authentic(provider, contentOf(firstSample(provider)), placeholder);
      // act
      const run = await runIngest(provider, request, { secret: placeholder });
      // assess
      assertJsonError(run, 503, 'secret_invalid');
      assert.deepEqual(run.sent, []);
    });
  }

  const malformed = [
    { name: 'not JSON', secret: 'customerId=abc' },
    { name: 'JSON without apiKey', secret: JSON.stringify({ customerId: 'UNIT-CUSTOMER-7731' }) },
    { name: 'an empty apiKey', secret: JSON.stringify({ customerId: 'UNIT-CUSTOMER-7731', apiKey: '' }) },
    { name: 'a placeholder only in previous', secret: JSON.stringify({ ...UNIT_SECRETS.telesign, previous: { apiKey: 'REPLACE_ME' } }) },
  ];
  for (const { name, secret } of malformed) {
    test(`a secret that is ${name} is answered 503 secret_invalid`, async () => {
      // prepare
      const request = authentic(telesign, contentOf(firstSample(telesign)));
      // act
      const run = await runIngest(telesign, request, { secret });
      // assess
      assertJsonError(run, 503, 'secret_invalid');
      assert.deepEqual(run.sent, []);
    });
  }
});

describe('ingest limits', () => {
  function paddedTeleSignBody(size: number): Buffer {
    const head = '{"reference_id":"0123456789ABCDEF0123456789ABCDEF","status":{"code":200},"padding":"';
    const tail = '"}';
    return Buffer.from(head + 'x'.repeat(size - head.length - tail.length) + tail);
  }

  test(`a body of exactly ${MAX_BODY_BYTES} bytes is accepted`, async () => {
    // prepare
    const body = paddedTeleSignBody(MAX_BODY_BYTES);
    // act
    const run = await runIngest(telesign, authentic(telesign, { body }));
    // assess
    assert.equal(body.length, MAX_BODY_BYTES);
    assert.deepEqual(run.response, { statusCode: 200, body: { received: true } });
    assert.ok(Buffer.byteLength(run.sent[0]) <= 1024 * 1024, 'the message fits the SQS limit (1 MiB)');
  });

  test(`a status code written as 200.000…001, its zeros filling ${MAX_BODY_BYTES} bytes, is answered at once and kept as quarantined`, async () => {
    // prepare: JSON.parse reads it as 200; telling that it is not written whole must take one pass
    // over its digits, not one per digit (the ingest function stops at 10 s: the provider would be
    // answered 5xx on every retry and the callback never stored)
    const head = '{"reference_id":"0123456789ABCDEF0123456789ABCDEF","status":{"code":200.';
    const tail = '1}}';
    const body = Buffer.from(head + '0'.repeat(MAX_BODY_BYTES - head.length - tail.length) + tail);
    // act
    const started = performance.now();
    const run = await runIngest(telesign, authentic(telesign, { body }));
    const elapsedMs = performance.now() - started;
    // assess
    assert.deepEqual(run.response, { statusCode: 200, body: { received: true, quarantined: true } });
    assert.match(QueueMessageSchema.parse(JSON.parse(run.sent[0])).quarantine?.reason ?? '', /a number is read as another than the one written/);
    assert.ok(elapsedMs < 2_000, `answered in ${Math.round(elapsedMs)} ms`);
  });

  test('a body one byte over 256 KiB is answered 413 with a JSON error, before authentication', async () => {
    // prepare: unsigned, so a 413 can only come from the size check
    const request: CallbackRequest = { ...authentic(telesign, { body: Buffer.from('{}') }), body: paddedTeleSignBody(MAX_BODY_BYTES + 1) };
    // act
    const run = await runIngest(telesign, request);
    // assess
    assertJsonError(run, 413, 'payload_too_large');
    assert.deepEqual(run.sent, []);
  });

  test('a query string over 256 KiB is answered 413', async () => {
    // prepare
    const query = `SMSID=m1&SendStatus=5&padding=${'x'.repeat(MAX_BODY_BYTES)}`;
    // act
    const run = await runIngest(esms, authentic(esms, { query }));
    // assess
    assertJsonError(run, 413, 'payload_too_large');
  });

  for (const provider of providers) {
    const wrong = provider.route.method === 'GET' ? 'POST' : 'GET';
    test(`${provider.id}: ${wrong} instead of ${provider.route.method} is answered as API Gateway answers a route it lacks, 404 Not Found`, async () => {
      // prepare
      const request = { ...authentic(provider, contentOf(firstSample(provider))), method: wrong };
      // act
      const run = await runIngest(provider, request);
      // assess
      assert.deepEqual(run.response, { statusCode: 404, body: { message: 'Not Found' } });
      assert.deepEqual(run.sent, []);
    });
  }
});

// A wrong method is API Gateway's refusal, not ours: its own body, {"message":"Not Found"} (above).
describe('every refusal is a JSON body with error and message', () => {
  const sample = firstSample(telesign);
  const genuine = () => authentic(telesign, contentOf(sample));
  const scenarios: { name: string; request: () => CallbackRequest; options?: Parameters<typeof runIngest>[2]; status: number }[] = [
    { name: 'too large', request: () => ({ ...genuine(), body: Buffer.alloc(MAX_BODY_BYTES + 1, 0x20) }), status: 413 },
    { name: 'unauthenticated', request: () => ({ ...genuine(), headers: {} }), status: 401 },
    { name: 'secret unavailable', request: genuine, options: { source: () => Promise.reject(new Error('timeout')) }, status: 503 },
    { name: 'secret invalid', request: genuine, options: { secret: telesign.secretPlaceholder }, status: 503 },
    { name: 'queue unavailable', request: genuine, options: { send: () => Promise.reject(new Error('down')) }, status: 503 },
  ];
  for (const { name, request, options, status } of scenarios) {
    test(`${name}: ${status} as application/json with error and message`, async () => {
      // act
      const run = await runIngest(telesign, request(), options);
      const result = toResult(run.response);
      // assess
      assert.equal(result.statusCode, status);
      assert.equal(result.headers?.['content-type'], 'application/json');
      const body = JSON.parse(String(result.body)) as Record<string, unknown>;
      assert.equal(typeof body.error, 'string');
      assert.equal(typeof body.message, 'string');
      assert.equal('received' in body, false, 'a refusal never says received');
    });
  }
});

/** The shortest run of a key's characters that counts as part of it in a queued message. */
const MIN_KEY_PART = 8;

describe('what the queued message carries', () => {
  const identomatKeys = ['unit-identomat-key-Jf5n0c', 'old-identomat-key-Pq2w'];
  const rotating = { callbackApiKey: identomatKeys[0], previous: { callbackApiKey: identomatKeys[1] } };

  for (const sample of listSamples('identomat')) {
    for (const key of identomatKeys) {
      test(`identomat ${sample.name}: the callbackApiKey (${key === identomatKeys[0] ? 'current' : 'previous'}) never reaches the queue`, async () => {
        // prepare
        const request = authentic(identomat, contentOf(sample), { callbackApiKey: key });
        // act
        const run = await runIngest(identomat, request, { secret: rotating });
        // assess
        assert.deepEqual(run.response, { statusCode: 200, body: { received: true } });
        for (const value of identomatKeys) assert.ok(!run.sent[0].includes(value), 'a key is in the queued message');
        const message = run.messages[0];
        assert.equal((message.payload as Record<string, unknown>).callbackApiKey, undefined);
        assert.match(message.raw.body!, /"callbackApiKey":"\[REDACTED\]"/);
        // Apart from the key, the raw body is the body received.
        assert.equal(message.raw.body, request.body.toString('utf8').split(key).join('[REDACTED]'));
      });
    }
  }

  test('identomat: a quarantined callback has its key scrubbed too', async () => {
    // prepare
    const body = Buffer.from(JSON.stringify({ callbackApiKey: 'x', type: 'session-change' }));
    const request = authentic(identomat, { body });
    // act
    const run = await runIngest(identomat, request);
    // assess
    assert.deepEqual(run.response.body, { received: true, quarantined: true });
    assert.ok(!run.sent[0].includes(String(UNIT_SECRETS.identomat.callbackApiKey)));
  });

  const copies = [
    { name: 'nested', copy: (key: string) => ({ meta: { callbackApiKey: key } }) },
    { name: 'under another spelling of the name', copy: (key: string) => ({ CallbackApiKey: key }) },
    { name: "in an SMS instruction's text", copy: (key: string) => ({ type: 'one-time-password', phoneNumber: '+15551234567', text: `code 123456 ${key}` }) },
  ];
  for (const { name, copy } of copies) {
    test(`identomat: a second copy of the key, ${name}, is quarantined, and no copy reaches the queue`, async () => {
      // prepare
      const key = String(UNIT_SECRETS.identomat.callbackApiKey);
      const body = Buffer.from(JSON.stringify({ callbackApiKey: key, type: 'session-change', sessionId: 's1', result: 'APPROVED', ...copy(key) }));
      const request = authentic(identomat, { body });
      // act
      const run = await runIngest(identomat, request);
      // assess
      assert.deepEqual(run.response.body, { received: true, quarantined: true });
      assert.match(String(run.messages[0].quarantine?.reason), /secret outside the member/);
      assert.equal(run.messages[0].payload, undefined);
      assert.ok(!run.sent[0].includes(key), `the key is in the queued message: ${run.sent[0]}`);
    });
  }

  const outside = [
    { name: 'in the query string', change: (request: CallbackRequest, key: string) => ({ ...request, rawQuery: `debug=${encodeURIComponent(key)}` }) },
    { name: 'in a header the message keeps (user-agent)', change: (request: CallbackRequest, key: string) => ({ ...request, headers: { ...request.headers, 'user-agent': `sender ${key}` } }) },
    {
      name: 'in the query string, each character percent-encoded, beside a % that is no escape',
      change: (request: CallbackRequest, key: string) => ({ ...request, rawQuery: `debug=${[...Buffer.from(key)].map((byte) => `%${byte.toString(16)}`).join('')}&discount=100%` }),
    },
  ];
  for (const { name, change } of outside) {
    test(`identomat: the key ${name} is quarantined, and no copy reaches the queue`, async () => {
      // prepare
      const key = String(UNIT_SECRETS.identomat.callbackApiKey);
      const body = Buffer.from(JSON.stringify({ callbackApiKey: key, type: 'session-change', sessionId: 's1', result: 'APPROVED' }));
      const request = change(authentic(identomat, { body }), key);
      // act
      const run = await runIngest(identomat, request);
      // assess
      assert.deepEqual(run.response.body, { received: true, quarantined: true });
      assert.match(String(run.messages[0].quarantine?.reason), /holds the secret outside the member/);
      assert.ok(!run.sent[0].includes(key) && !run.sent[0].includes(encodeURIComponent(key)), `the key is in the queued message: ${run.sent[0]}`);
    });
  }

  test('identomat: the key in a kept header where the message\'s 256-character bound cuts it is quarantined, and no part of it reaches the queue', async () => {
    // prepare: a user-agent whose last characters are the key, so that the kept 256 end inside it
    const key = String(UNIT_SECRETS.identomat.callbackApiKey);
    const body = Buffer.from(JSON.stringify({ callbackApiKey: key, type: 'session-change', sessionId: 's1', result: 'APPROVED' }));
    const sent = authentic(identomat, { body });
    const request = { ...sent, headers: { ...sent.headers, 'user-agent': `${'x'.repeat(256 - key.length + 1)}${key}` } };
    // act
    const run = await runIngest(identomat, request);
    // assess
    assert.deepEqual(run.response.body, { received: true, quarantined: true });
    assert.equal(run.messages[0].quarantine?.reason, 'a header holds the secret outside the member it is checked in');
    assert.ok(!run.sent[0].includes(key.slice(0, MIN_KEY_PART)), `part of the key is in the queued message: ${run.sent[0]}`);
  });

  // Every character as a %XX escape: what an encoder that escapes every byte writes (and, %25 for the
  // % of each, what encoding it again writes). Read back, it is the key.
  const everyByte = (key: string) => [...Buffer.from(key)].map((byte) => `%${byte.toString(16).toUpperCase()}`).join('');
  /** Text with up to two rounds of %XX escapes read: whatever spells the key in escapes spells it plainly then. */
  const unescaped = (text: string) => {
    let read = text;
    for (let round = 0; round < 2; round++) read = read.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    return read;
  };
  const escaped = [
    { name: 'in a kept header, each character percent-encoded', place: 'a header', change: (request: CallbackRequest, key: string) => ({ ...request, headers: { ...request.headers, 'user-agent': `sender ${everyByte(key)}` } }) },
    { name: 'in the query string, percent-encoded twice', place: 'the query string', change: (request: CallbackRequest, key: string) => ({ ...request, rawQuery: `debug=${encodeURIComponent(everyByte(key))}` }) },
    {
      name: 'in a text of the body, each character percent-encoded (a link holding it)',
      place: 'the body',
      change: (request: CallbackRequest, key: string) => {
        const body = JSON.parse(request.body.toString('utf8')) as Record<string, unknown>;
        return { ...request, body: Buffer.from(JSON.stringify({ ...body, link: `https://example.com/next?k=${everyByte(key)}` })) };
      },
    },
  ];
  for (const { name, place, change } of escaped) {
    test(`identomat: the key ${name} is quarantined, and no spelling of it reaches the queue`, async () => {
      // prepare
      const key = String(UNIT_SECRETS.identomat.callbackApiKey);
      const body = Buffer.from(JSON.stringify({ callbackApiKey: key, type: 'session-change', sessionId: 's1', result: 'APPROVED' }));
      const request = change(authentic(identomat, { body }), key);
      // act
      const run = await runIngest(identomat, request);
      // assess
      assert.deepEqual(run.response.body, { received: true, quarantined: true });
      assert.equal(run.messages[0].quarantine?.reason, `${place} holds the secret outside the member it is checked in`);
      assert.ok(!unescaped(run.sent[0]).includes(key), `the key is in the queued message: ${run.sent[0]}`);
    });
  }

  const together = [
    { name: 'nested in the body and in the query string', body: (key: string) => ({ meta: { copy: key } }), query: true, header: false, reason: 'the body and the query string hold' },
    { name: 'nested in the body and in a kept header', body: (key: string) => ({ meta: { copy: key } }), query: false, header: true, reason: 'the body and a header hold' },
    { name: 'in the query string and in a kept header', body: () => ({}), query: true, header: true, reason: 'the query string and a header hold' },
  ];
  for (const { name, body: extra, query, header, reason } of together) {
    test(`identomat: the key ${name} at once is quarantined, and no copy in either place reaches the queue`, async () => {
      // prepare
      const key = String(UNIT_SECRETS.identomat.callbackApiKey);
      const body = Buffer.from(JSON.stringify({ callbackApiKey: key, type: 'session-change', sessionId: 's1', result: 'APPROVED', ...extra(key) }));
      const sent = authentic(identomat, { body });
      const request = {
        ...sent,
        ...(query ? { rawQuery: `debug=${encodeURIComponent(key)}` } : {}),
        ...(header ? { headers: { ...sent.headers, 'user-agent': `sender ${key}` } } : {}),
      };
      // act
      const run = await runIngest(identomat, request);
      // assess
      assert.deepEqual(run.response.body, { received: true, quarantined: true });
      assert.equal(run.messages[0].quarantine?.reason, `${reason} the secret outside the member it is checked in`);
      assert.ok(!run.sent[0].includes(key) && !run.sent[0].includes(encodeURIComponent(key)), `the key is in the queued message: ${run.sent[0]}`);
    });
  }

  test('identomat: a key too short to be looked for elsewhere (it would match ordinary text) does not quarantine a link that contains it', async () => {
    // prepare: the key "identomat", and a session link on widget.identomat.com
    const sample = listSamples('identomat').find((each) => each.name === 'share-session-link-via-sms')!;
    const body = Buffer.from(JSON.stringify({ ...(JSON.parse(sample.body!.toString('utf8')) as Record<string, unknown>), callbackApiKey: 'identomat' }));
    const request = authentic(identomat, { body }, { callbackApiKey: 'identomat' });
    // act
    const run = await runIngest(identomat, request, { secret: { callbackApiKey: 'identomat' } });
    // assess
    assert.deepEqual(run.response, { statusCode: 200, body: { received: true } });
    assert.equal(run.messages[0].quarantine, undefined);
  });

  test('identomat: a key too short to be looked for elsewhere is scrubbed from its own member only: the body read again (reprocess, a payload too large to queue) says what was sent', async () => {
    // prepare: Identomat's own sample key is nine characters ("apikey123"); here the key "identomat"
    // is part of the session link, and "j1je" of the session id and the link; a member is named
    // after the key, too.
    const sample = listSamples('identomat').find((each) => each.name === 'share-session-link-via-sms')!;
    const sent = JSON.parse(sample.body!.toString('utf8')) as Record<string, unknown>;
    for (const key of ['identomat', 'j1je']) {
      const body = Buffer.from(JSON.stringify({ ...sent, callbackApiKey: key, x_extra: { [key]: `"${key}"`, list: ['a', key.slice(1)] } }));
      const request = authentic(identomat, { body }, { callbackApiKey: key });
      // act
      const run = await runIngest(identomat, request, { secret: { callbackApiKey: key } });
      // assess
      assert.deepEqual(run.response, { statusCode: 200, body: { received: true } }, key);
      const message = run.messages[0];
      assert.equal(message.raw.body, body.toString('utf8').replace(`"callbackApiKey":"${key}"`, '"callbackApiKey":"[REDACTED]"'), `${key}: only the key's member is scrubbed`);
      // What the worker reads when the message carries no parsed copy: the same callback.
      const reread = identomat.parse(requestOf(message));
      assert.ok(reread.ok, key);
      assert.deepEqual(reread.payload, message.payload, key);
      assert.deepEqual(identomat.describe(reread.payload), identomat.describe(message.payload as never), key);
    }
  });

  const escapedKey = 'unit/identomat+key/Jf5n0c';
  const spellings = [
    { name: 'with escaped slashes (PHP json_encode)', json: escapedKey.replaceAll('/', '\\/') },
    { name: 'with \\u escapes', json: [...escapedKey].map((char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`).join('') },
    { name: 'with upper-case \\u escapes for some characters', json: escapedKey.replace('u', '\\u0075').replace('J', '\\u004A') },
  ];
  for (const { name, json } of spellings) {
    test(`identomat: a key the sender spelled ${name} is accepted and still scrubbed`, async () => {
      // prepare
      const body = Buffer.from(`{"callbackApiKey":"${json}","type":"session-change","sessionId":"s1","result":"APPROVED"}`);
      const request = authentic(identomat, { body }, { callbackApiKey: escapedKey });
      const bare = { ...request, body };
      // act
      const run = await runIngest(identomat, bare, { secret: { callbackApiKey: escapedKey } });
      // assess
      assert.deepEqual(run.response, { statusCode: 200, body: { received: true } });
      const rawBody = run.messages[0].raw.body!;
      assert.equal(JSON.parse(rawBody).callbackApiKey, '[REDACTED]', `the key survives in the raw body: ${rawBody}`);
      assert.ok(!JSON.stringify(JSON.parse(rawBody)).includes(escapedKey), 'the key, unescaped, is nowhere in the raw body');
    });
  }

  test('identomat: the key in JSON written inside a text of the body (its escapes escaped again) is quarantined, and no spelling of it reaches the queue', async () => {
    // prepare: a text member holding JSON as PHP json_encode writes it, encoded once more with the body
    const inner = JSON.stringify({ k: escapedKey }).replaceAll('/', '\\/');
    const outer = JSON.stringify(inner).replaceAll('/', '\\/');
    const body = Buffer.from(`{"callbackApiKey":"${escapedKey}","type":"session-change","sessionId":"s1","result":"APPROVED","note":${outer}}`);
    assert.equal(JSON.parse(JSON.parse(body.toString('utf8')).note).k, escapedKey, 'the note spells the key');
    const request = { ...authentic(identomat, { body }, { callbackApiKey: escapedKey }), body };
    // act
    const run = await runIngest(identomat, request, { secret: { callbackApiKey: escapedKey } });
    // assess
    assert.deepEqual(run.response.body, { received: true, quarantined: true });
    assert.equal(run.messages[0].quarantine?.reason, 'the body holds the secret outside the member it is checked in');
    const note = JSON.parse(run.messages[0].raw.body!).note as string;
    assert.ok(!note.includes(escapedKey) && !JSON.stringify(JSON.parse(note)).includes(escapedKey), `the key is in the queued message: ${note}`);
  });

  for (const provider of providers) {
    test(`${provider.id}: no Authorization header (or any header not listed) is queued`, async () => {
      // prepare
      const base = authentic(provider, contentOf(firstSample(provider)));
      const request = {
        ...base,
        headers: {
          ...base.headers,
          authorization: base.headers.authorization ?? 'Bearer something',
          'x-ts-authorization': 'TSA x:y',
          cookie: 'session=1',
          'user-agent': 'TeleSign-Callback/1.0',
          'x-request-id': '3f1c9a52-8d0e-4b7a-9f11-5a2c6e7d8b90',
        },
      };
      // act
      const run = await runIngest(provider, request);
      // assess
      assert.equal(run.response.statusCode, 200);
      const message = run.messages[0];
      const kept: readonly string[] = [...KEPT_HEADERS, ...(provider.keptHeaders ?? [])];
      assert.deepEqual(Object.keys(message.headers).sort(), Object.keys(message.headers).filter((name) => kept.includes(name)).sort());
      assert.equal(message.headers.authorization, undefined);
      assert.equal(message.headers['user-agent'], 'TeleSign-Callback/1.0');
      assert.equal(message.headers['x-request-id'], '3f1c9a52-8d0e-4b7a-9f11-5a2c6e7d8b90');
      assert.ok(!/authorization/i.test(run.sent[0]), 'no authorization header anywhere in the message');
    });
  }

  for (const provider of providers) {
    for (const sample of allSamples(provider)) {
      test(`${provider.id} ${sample.name}: the message round-trips through QueueMessageSchema and keeps the exact callback`, async () => {
        // prepare
        const request = authentic(provider, contentOf(sample));
        // act
        const run = await runIngest(provider, request);
        // assess
        const asSent = JSON.parse(run.sent[0]);
        const reparsed = QueueMessageSchema.parse(asSent);
        assert.deepEqual(reparsed, asSent, 'the schema neither drops nor adds fields');
        assert.equal(reparsed.v, 1);
        assert.equal(reparsed.method, provider.route.method);
        assert.equal(reparsed.raw.query, request.rawQuery);
        if (!provider.bodySecrets) assert.ok(rawBodyOf(reparsed).equals(request.body), 'the raw body is byte for byte what was received');
        assert.equal(reparsed.payload === undefined, reparsed.quarantine !== undefined, 'exactly one of payload and quarantine');
      });
    }
  }
});

describe('log lines never carry secrets, codes or phone numbers', () => {
  const forbidden = [
    ...providers.flatMap((provider) => kitOf(provider).credentials(UNIT_SECRETS[provider.id])),
    '6867',
    'Your code is',
    '+995512345678',
    '995512345678',
    '0901888484',
    '5308693166941955879',
    '312158068343230',
    '11234567890',
    'session_token=',
  ];

  function assertClean(lines: readonly string[], context: string) {
    assert.ok(lines.length > 0, `${context}: nothing was logged`);
    for (const line of lines) {
      assert.doesNotThrow(() => JSON.parse(line), `${context}: a log line is not JSON`);
      for (const value of forbidden) assert.ok(!leaks(line, value), `${context}: a log line contains "${value}": ${line}`);
    }
  }

  for (const provider of providers) {
    for (const sample of allSamples(provider)) {
      test(`${provider.id} ${sample.name}: accepted, refused, failed and quarantined runs log cleanly`, async () => {
        // prepare
        const content = contentOf(sample);
        const genuine = authentic(provider, content);
        const secret = UNIT_SECRETS[provider.id];
        const forged = authentic(provider, content, Object.fromEntries(Object.entries(secret).map(([k, v]) => [k, `forged-${String(v)}`])));
        // act
        const runs = [
          await runIngest(provider, genuine),
          await runIngest(provider, forged),
          await runIngest(provider, genuine, { send: () => Promise.reject(new Error('queue down')) }),
          await runIngest(provider, genuine, { secret: { ...secret, previous: { [Object.keys(secret)[0]]: 'REPLACE_ME' } } }),
          await runIngest(provider, { ...genuine, body: Buffer.from('{"not":"theirs"') }),
        ];
        // assess
        assert.equal(runs[0].response.statusCode, 200);
        assert.equal(runs[1].response.statusCode, 401);
        assert.equal(runs[2].response.statusCode, 503);
        assert.equal(runs[3].response.statusCode, 503);
        runs.forEach((run, index) => assertClean(run.lines, `run ${index}`));
      });
    }
  }

  test('the accepted eSMS line names the message and the recipient, with the phone number masked', async () => {
    // act
    const run = await runIngest(esms, authentic(esms, { query: listSamples('esms').find((s) => s.name === 'customer-care')!.query! }));
    // assess
    const line = JSON.parse(run.lines[0]) as Record<string, unknown>;
    assert.equal(line.result, 'accepted');
    assert.equal(line.subjectId, 'dc712784-9c5f-4c69-b9a8-ea69d56adc9a87');
    assert.equal(line.part, '*******484');
  });

  test("an eSMS recipient written with + between its groups (form encoding's space; eSMS keeps a + as sent) is masked in the accepted line", async () => {
    // prepare
    const query = listSamples('esms').find((s) => s.name === 'customer-care')!.query!;
    for (const spelled of ['0901+888+484', '0901%2B888%2B484', '%2B84+901+888+484']) {
      // act
      const run = await runIngest(esms, authentic(esms, { query: query.replace('phonenumber=0901888484', `phonenumber=${spelled}`) }));
      // assess
      const line = JSON.parse(run.lines[0]) as Record<string, unknown>;
      assert.equal(line.result, 'accepted', spelled);
      assert.match(String(line.part), /^\*+484$/, spelled);
    }
  });

  test('a status that spells a phone number is masked in the accepted line, as a subject would be', async () => {
    // prepare: a Standard Webhooks sender names its status (`type`) freely
    const webhooks = getProvider('standard-webhooks');
    const event = JSON.parse(listSamples('standard-webhooks').find((s) => s.name === 'invoice-paid')!.body!.toString()) as Record<string, unknown>;
    for (const status of ['+995512345678', 'sms.to.995512345678', 'REF995512345678']) {
      // act
      const run = await runIngest(webhooks, authentic(webhooks, { body: Buffer.from(JSON.stringify({ ...event, type: status })) }));
      // assess
      const line = JSON.parse(run.lines[0]) as Record<string, unknown>;
      assert.equal(line.result, 'accepted');
      assert.ok(!leaks(run.lines[0], '995512345678'), run.lines[0]);
      assert.match(String(line.status), /\*{9}678/);
    }
  });

  test('a reference or status typed in full width, full-width hyphens between its groups, is masked in the accepted line', async () => {
    // prepare: `０９０－１２３４－５６７８`, as a Japanese input method in full-width mode writes a number
    const temboplus = getProvider('temboplus');
    const webhooks = getProvider('standard-webhooks');
    const remittance = JSON.parse(listSamples('temboplus').find((s) => s.name === 'remittance-completed')!.body!.toString()) as Record<string, unknown>;
    const event = JSON.parse(listSamples('standard-webhooks').find((s) => s.name === 'invoice-paid')!.body!.toString()) as Record<string, unknown>;
    const number = '\uff10\uff19\uff10\uff0d\uff11\uff12\uff13\uff14\uff0d\uff15\uff16\uff17\uff18';
    // act
    const runs: Array<[IngestRun, string]> = [
      [await runIngest(temboplus, authentic(temboplus, { body: Buffer.from(JSON.stringify({ ...remittance, partnerReference: `PAY-${number}` })) })), 'subjectId'],
      [await runIngest(webhooks, authentic(webhooks, { body: Buffer.from(JSON.stringify({ ...event, type: `sms.to.${number}` })) })), 'status'],
    ];
    // assess
    for (const [run, field] of runs) {
      const line = JSON.parse(run.lines[0]) as Record<string, unknown>;
      assert.equal(line.result, 'accepted', run.lines[0]);
      assert.ok(!String(line[field]).normalize('NFKC').includes('1234'), run.lines[0]);
      assert.match(String(line[field]), /\*{8}/, run.lines[0]);
    }
  });

  test('a reference with a number in groups glued to its letters (INV0712-345-678) is masked in the accepted line', async () => {
    // prepare
    const temboplus = getProvider('temboplus');
    const remittance = JSON.parse(listSamples('temboplus').find((s) => s.name === 'remittance-completed')!.body!.toString()) as Record<string, unknown>;
    for (const reference of ['INV0712-345-678', 'REF0712 345 678', 'TX0712.345.678']) {
      // act
      const run = await runIngest(temboplus, authentic(temboplus, { body: Buffer.from(JSON.stringify({ ...remittance, partnerReference: reference })) }));
      // assess
      const line = JSON.parse(run.lines[0]) as Record<string, unknown>;
      assert.equal(line.result, 'accepted', run.lines[0]);
      assert.ok(!String(line.subjectId).includes('0712'), run.lines[0]);
      assert.match(String(line.subjectId), /^[A-Z]+\*{7}678$/, run.lines[0]);
    }
  });

  test('an id or status the sender chose is masked whatever its shape: a hex run or a UUID can carry a number', async () => {
    // prepare: a TemboPlus partnerReference is the partner's own reference, a Standard Webhooks
    // subject and type the sender's own words; either may be a number glued to hex digits
    const temboplus = getProvider('temboplus');
    const webhooks = getProvider('standard-webhooks');
    const remittance = JSON.parse(listSamples('temboplus').find((s) => s.name === 'remittance-completed')!.body!.toString()) as Record<string, unknown>;
    const event = JSON.parse(listSamples('standard-webhooks').find((s) => s.name === 'invoice-paid')!.body!.toString()) as Record<string, unknown>;
    for (const id of ['995512345678abcdef012345', 'abcdef995512345678abcdef', '99551234-5678-4abc-8def-0123456789ab', '9955-1234-5678-4abc-8def01234567']) {
      // act
      const runs: Array<[IngestRun, string]> = [
        [await runIngest(temboplus, authentic(temboplus, { body: Buffer.from(JSON.stringify({ ...remittance, partnerReference: id })) })), 'subjectId'],
        [await runIngest(webhooks, authentic(webhooks, { body: Buffer.from(JSON.stringify({ ...event, type: id })) })), 'status'],
      ];
      // assess
      for (const [run, field] of runs) {
        const line = JSON.parse(run.lines[0]) as Record<string, unknown>;
        assert.equal(line.result, 'accepted', run.lines[0]);
        assert.ok(!String(line[field]).replace(/\D/g, '').includes('995512345678'), `${id}: ${run.lines[0]}`);
        assert.match(String(line[field]), /\*{5}/, `${id}: ${run.lines[0]}`);
      }
    }
  });
});

describe('API Gateway adapter', () => {
  test('a v2 event maps to the request the core expects', () => {
    // prepare
    const body = Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0xe2, 0x9c, 0x93, 0x7d, 0x0a, 0xff]);
    const event = apiGatewayEvent({
      method: 'post',
      rawPath: '/callbacks/relid/tok%2Fen',
      rawQueryString: 'a=1&b=%20two&a=3',
      headers: { 'Content-Type': 'application/json', 'X-Request-Id': 'abc', 'User-Agent': 'relid' },
      body: body.toString('base64'),
      isBase64Encoded: true,
      pathParameters: { token: 'tok/en' },
      sourceIp: '2001:db8::7',
      requestId: 'req-1',
      timeEpoch: Date.UTC(2025, 5, 1, 12, 30, 45, 123),
    });
    // act
    const request = toCallbackRequest(event, 'token');
    // assess
    assert.deepEqual(request, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'abc', 'user-agent': 'relid' },
      body,
      rawQuery: 'a=1&b=%20two&a=3',
      pathToken: 'tok/en',
      pathParameters: { token: 'tok/en' },
      sourceIp: '2001:db8::7',
      requestId: 'req-1',
      receivedAt: '2025-06-01T12:30:45.123Z',
    });
  });

  test('the token is read from the parameter the route names, whatever it is called', () => {
    // prepare
    const event = apiGatewayEvent({ method: 'POST', rawPath: '/callbacks/x/abc/def', pathParameters: { source: 'abc', secret: 'def' } });
    // act
    const named = toCallbackRequest(event, 'secret');
    const none = toCallbackRequest(event);
    // assess
    assert.equal(named.pathToken, 'def');
    assert.deepEqual(named.pathParameters, { source: 'abc', secret: 'def' });
    assert.equal(none.pathToken, undefined, 'no token parameter, no token: a parameter named "token" is not special');
  });

  test('an event without body, query or path parameters maps to empty values', () => {
    // prepare
    const event = apiGatewayEvent({ method: 'GET', rawPath: '/callbacks/telesign' });
    // act
    const request = toCallbackRequest(event);
    // assess
    assert.equal(request.body.length, 0);
    assert.equal(request.rawQuery, '');
    assert.equal(request.pathToken, undefined);
  });

  const responses = [
    { statusCode: 200, body: { received: true } },
    { statusCode: 200, body: { received: true, quarantined: true } },
    { statusCode: 401, body: { error: 'unauthorized', message: 'wrong path token' } },
  ];
  for (const response of responses) {
    test(`toResult answers ${response.statusCode} ${JSON.stringify(response.body)} as application/json`, () => {
      // act
      const result = toResult(response);
      // assess
      assert.equal(result.statusCode, response.statusCode);
      assert.deepEqual(result.headers, { 'content-type': 'application/json' });
      assert.deepEqual(JSON.parse(String(result.body)), response.body);
    });
  }

  test('the handler factory takes an eSMS event through the core to a queued message', async () => {
    // prepare
    const sent: string[] = [];
    const handler = createIngestHandler(esms, {
      secrets: createSecretCache(fixedSecretSource(UNIT_SECRETS)),
      send: async (body) => void sent.push(body),
      log: createLogger({ service: 'unit', write: () => {} }),
    });
    const query = listSamples('esms').find((s) => s.name === 'viber')!.query!;
    const event = apiGatewayEvent({
      method: 'GET',
      rawPath: `/callbacks/esms/${String(UNIT_SECRETS.esms.token)}`,
      rawQueryString: query,
      pathParameters: { token: String(UNIT_SECRETS.esms.token) },
    });
    // act
    const result = await handler(event);
    // assess
    assert.deepEqual({ ...result, body: JSON.parse(String(result.body)) }, {
      statusCode: 200,
      headers: { 'content-type': 'application/json' },
      body: { received: true },
    });
    assert.equal(JSON.parse(sent[0]).raw.query, query);
    assert.ok(!sent[0].includes(String(UNIT_SECRETS.esms.token)), 'the path token is not queued');
  });
});

describe('401 answers tell a prober nothing', () => {
  const relid = getProvider('relid');
  const telesignSample = contentOf(listSamples('telesign')[0]);
  const relidSample = contentOf(listSamples('relid')[0]);
  const relidSecret = { ...UNIT_SECRETS.relid, allowedIps: ['203.0.113.0/24'] };
  const cases: { name: string; provider: AnyProvider; request: () => CallbackRequest; secret?: unknown }[] = [
    {
      name: 'TeleSign: the right customer id with a wrong signature',
      provider: telesign,
      request: () => authentic(telesign, telesignSample, { ...UNIT_SECRETS.telesign, apiKey: Buffer.from('another-key-of-32-bytes-length!!').toString('base64') }),
    },
    {
      name: 'TeleSign: a wrong customer id',
      provider: telesign,
      request: () => authentic(telesign, telesignSample, { ...UNIT_SECRETS.telesign, customerId: 'SOMEONE-ELSE' }),
    },
    {
      name: 'REL-ID: the live token from outside the allow-list',
      provider: relid,
      request: () => authentic(relid, relidSample, relidSecret, { sourceIp: '198.51.100.9' }),
      secret: relidSecret,
    },
    {
      name: 'REL-ID: a wrong token from inside the allow-list',
      provider: relid,
      request: () => authentic(relid, relidSample, { ...relidSecret, token: 'not-the-token' }, { sourceIp: '203.0.113.9' }),
      secret: relidSecret,
    },
  ];
  for (const { name, provider, request, secret } of cases) {
    test(`${name}: one generic body; the reason only in the log`, async () => {
      // act
      const run = await runIngest(provider, request(), secret === undefined ? {} : { secret });
      // assess
      assert.deepEqual(run.response, { statusCode: 401, body: { error: 'unauthorized', message: 'the request could not be authenticated' } });
      const line = JSON.parse(run.lines[0]) as Record<string, unknown>;
      assert.equal(typeof line.reason, 'string');
      assert.notEqual(line.reason, run.response.body.message, 'the log keeps the specific reason');
    });
  }
});

describe('the queued raw body is the exact bytes received', () => {
  test('a TeleSign body with a leading byte-order mark is queued with the BOM, so it still matches its signature', async () => {
    // prepare
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), telesignSampleBody()]);
    const request = authentic(telesign, { body });
    // act
    const run = await runIngest(telesign, request);
    // assess
    assert.equal(run.response.statusCode, 200);
    const raw = rawBodyOf(run.messages[0]);
    assert.ok(raw.equals(body), 'the queued bytes are the received bytes');
    const { teleSignSignature } = await import('../../functions/providers/telesign.ts');
    const signature = /^TSA [^:]+:(.+)$/.exec(request.headers.authorization ?? '')?.[1];
    assert.equal(teleSignSignature(String(UNIT_SECRETS.telesign.apiKey), raw), signature);
  });
});

function telesignSampleBody(): Buffer {
  return listSamples('telesign').find((sample) => sample.name === 'sms-dlr-success')!.body!;
}

describe('a member named __proto__ is kept as it came, never read away', () => {
  // JSON.parse keeps `"__proto__"` as an ordinary member, but zod's object schemas leave it out of
  // what they return: read, the callback would be stored without it (and two callbacks differing
  // only in it would read as one). No provider documents such a member: it is quarantined, bytes kept.
  const withMember = (content: { body?: Buffer; query?: string }, member: string) =>
    content.query !== undefined ? { query: `${content.query}&${member}=x` } : { body: Buffer.from(content.body!.toString('utf8').replace('{', `{"${member}":{"x":1},`)) };
  const spellings = [
    { name: 'a top-level __proto__', member: '__proto__' },
    { name: 'a __proto__ spelled with JSON escapes', member: '\\u005f_pr\\u006fto__', jsonOnly: true },
    { name: 'a __proto__ spelled with percent escapes', member: '%5F%5Fproto%5F%5F', queryOnly: true },
  ];
  for (const provider of providers) {
    for (const { name, member, jsonOnly, queryOnly } of spellings) {
      const content = contentOf(firstSample(provider));
      if ((jsonOnly && content.query !== undefined) || (queryOnly && content.query === undefined)) continue;
      test(`${provider.id}: ${name} is quarantined with its reason, not read without it`, async () => {
        // prepare
        const request = authentic(provider, withMember(content, member));
        // act
        const run = await runIngest(provider, request);
        // assess
        assert.equal(run.response.statusCode, 200, JSON.stringify(run.response.body));
        const message = run.messages[0];
        assert.equal(message.payload, undefined, 'not read');
        assert.match(message.quarantine?.reason ?? '', /__proto__/);
        if (!provider.bodySecrets) assert.ok(rawBodyOf(message).equals(request.body), 'the raw body is byte for byte what was received');
        assert.equal(message.raw.query, request.rawQuery);
      });
    }
  }

  test('telesign: a __proto__ inside a nested member is quarantined too', async () => {
    // prepare
    const body = Buffer.from(firstSample(telesign).body!.toString('utf8').replace('"status": {', '"status": {"__proto__":{"x":1},').replace('"status":{', '"status":{"__proto__":{"x":1},'));
    assert.match(body.toString('utf8'), /"status": ?\{"__proto__"/, 'the sample has a status object');
    // act
    const run = await runIngest(telesign, authentic(telesign, { body }));
    // assess
    assert.equal(run.messages[0].payload, undefined);
    assert.match(run.messages[0].quarantine?.reason ?? '', /__proto__/);
  });
});

describe('a member named twice in one object is kept as it came, never read as its last value', () => {
  // JSON.parse keeps the last of two members with one name and says nothing: a TemboPlus body that
  // says FAILED and then COMPLETED read as a success. Which one the sender meant is not said.
  test('temboplus: FAILED then COMPLETED in one body is quarantined, not read as a success', async () => {
    // prepare
    const temboplus = getProvider('temboplus');
    const body = Buffer.from('{"partnerReference":"R-DUP","status":"FAILED","statusCode":"PAYMENT_FAILED","status":"COMPLETED","statusCode":"PAYMENT_SUCCESS"}');
    const request = authentic(temboplus, { body });
    // act
    const run = await runIngest(temboplus, request);
    // assess: answered 200 (it is authentic and kept), not read
    assert.equal(run.response.statusCode, 200, JSON.stringify(run.response.body));
    const message = run.messages[0];
    assert.equal(message.payload, undefined, 'not read');
    assert.equal(message.quarantine?.reason, 'a member is given more than once; which value is true is not said');
    assert.deepEqual(message.quarantine?.issues, ['"status": given more than once in one object; kept as received, not read']);
    assert.ok(rawBodyOf(message).equals(body), 'the raw body is byte for byte what was received');
  });

  for (const provider of providers) {
    const content = contentOf(firstSample(provider));
    if (content.query !== undefined) continue;
    test(`${provider.id}: the sample's first member given again (spelled with a JSON escape) is quarantined`, async () => {
      // prepare: the first member named again before it, its first letter written as \u00XX
      const text = content.body!.toString('utf8');
      // (not Identomat's key member: ingest takes every copy of it out before the body is read)
      const first = Object.keys(JSON.parse(text) as Record<string, unknown>).filter((name) => name !== 'callbackApiKey')[0];
      const escaped = `\\u${first.charCodeAt(0).toString(16).padStart(4, '0')}${first.slice(1)}`;
      const repeat = (body: Buffer) => Buffer.from(body.toString('utf8').replace('{', `{"${escaped}":"other",`));
      // Identomat's key is written into the body as it is sent (the body is rewritten): repeat after.
      const dressed = provider.bodySecrets ? authentic(provider, content) : authentic(provider, { body: repeat(content.body!) });
      const request = provider.bodySecrets ? { ...dressed, body: repeat(dressed.body) } : dressed;
      assert.ok(request.body.includes('"other"'), 'the repetition is sent');
      // act
      const run = await runIngest(provider, request);
      // assess
      assert.equal(run.response.statusCode, 200, JSON.stringify(run.response.body));
      assert.equal(run.messages[0].payload, undefined, 'not read');
      assert.match(run.messages[0].quarantine?.reason ?? '', /given more than once/);
    });
  }

  test('a name given twice that is a phone number (a map keyed by recipient) is masked in the issue and the log line', async () => {
    // prepare: a Standard Webhooks sender keys its event's data as it likes, by recipient say
    const webhooks = getProvider('standard-webhooks');
    const event = listSamples('standard-webhooks').find((s) => s.name === 'invoice-paid')!.body!.toString();
    const body = Buffer.from(event.replace('{', '{"x_recipients":{"+995512345678":"delivered","+995512345678":"failed"},'));
    // act
    const run = await runIngest(webhooks, authentic(webhooks, { body }));
    // assess: quarantined, the name said with its last three digits only
    assert.deepEqual(run.response.body, { received: true, quarantined: true });
    assert.deepEqual(run.messages[0].quarantine?.issues, ['"*********678": given more than once in one object; kept as received, not read']);
    assert.ok(!leaks(run.lines[0], '995512345678'), run.lines[0]);
    assert.ok(rawBodyOf(run.messages[0]).equals(body), 'the raw body is byte for byte what was received');
  });

  test('the same name in two objects, in a string or in an array is no repetition', async () => {
    // prepare: a TeleSign sample with the same names in other objects and texts
    const base = firstSample(telesign).body!.toString('utf8');
    const body = Buffer.from(base.replace('{', '{"x_a":{"status":1,"k":[{"k":1},{"k":2}]},"x_b":{"status":2},"x_c":"\\"status\\":3, \\"status\\":4",'));
    // act
    const run = await runIngest(telesign, authentic(telesign, { body }));
    // assess
    assert.equal(run.response.statusCode, 200, JSON.stringify(run.response.body));
    assert.equal(run.messages[0].quarantine, undefined, 'read');
    assert.ok(run.messages[0].payload, 'read');
  });
});

describe('a payload too deep for JSON.stringify', () => {
  test('identomat: an authentic callback with a 20,000-deep array in an extra member is taken (was a thrown RangeError: no answer, retried until the provider gave up)', async () => {
    // prepare: the key is hunted outside its member in the parsed payload's text
    const depth = 20_000;
    const keyed = authentic(identomat, contentOf(firstSample(identomat)));
    const request = { ...keyed, body: Buffer.from(keyed.body.toString('utf8').replace('{', `{"x_deep":${'['.repeat(depth)}${']'.repeat(depth)},`)) };
    // act
    const run = await runIngest(identomat, request);
    // assess
    assert.equal(run.response.statusCode, 200, JSON.stringify(run.response.body));
    assert.equal(run.messages.length, 1);
    assert.equal(run.messages[0].quarantine, undefined, 'read, not quarantined');
    assert.ok(rawBodyOf(run.messages[0]).length > 2 * depth, 'the raw body is queued');
  });
});
