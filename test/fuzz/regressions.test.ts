import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { QueueMessageSchema, rawBodyOf, type QueueMessage } from '../../functions/core/queue-message.ts';
import { UNSTORABLE_KEYS } from '../../functions/core/storable.ts';
import { getProvider } from '../../functions/providers/index.ts';
import { listSamples } from '../../local/samples.ts';
import { authenticFuzzRequest } from '../support/fuzz-arbitraries.ts';
import { capturedLogger, runWorker, startFuzzPipeline, toEvent, type FuzzPipeline, type WorkerVerdict } from '../support/fuzz-harness.ts';

/**
 * What the hostile-input fuzzer found, pinned one request each: every one of these was answered
 * 5xx, crashed the handler, or was answered 200 and then could never be stored (retried into the
 * DLQ: a callback lost after we promised to keep it). Each runs the real handler, the queue
 * stand-in with SQS's rules, and the real worker on DynamoDB Local.
 */

let pipeline: FuzzPipeline;
before(async () => {
  pipeline = await startFuzzPipeline();
});
after(async () => {
  await pipeline?.stop();
});

function sample(providerId: string, name: string): Record<string, unknown> {
  const found = listSamples(providerId).find((candidate) => candidate.name === name);
  if (!found?.body) throw new Error(`no sample ${providerId}/${name}`);
  return JSON.parse(found.body.toString('utf8')) as Record<string, unknown>;
}

/** A JSON body from a sample, a fresh subject, and raw JSON members appended as written. */
function body(providerId: string, name: string, changes: Record<string, unknown>, rawMembers = ''): Buffer {
  const text = JSON.stringify({ ...sample(providerId, name), ...changes });
  return Buffer.from(rawMembers ? `${text.slice(0, -1)},${rawMembers}}` : text);
}

interface Delivered {
  readonly status: number;
  readonly answer: Record<string, unknown>;
  readonly queued: readonly string[];
  readonly message?: QueueMessage;
  readonly requestId: string;
}

/** One authentic request through the real ingest handler, as API Gateway delivers it. */
async function deliver(providerId: string, content: { body?: Buffer; query?: string }): Promise<Delivered> {
  const provider = getProvider(providerId);
  const { handler, queue } = pipeline.ingest(provider);
  const request = authenticFuzzRequest({ provider, secrets: pipeline.secrets }, content);
  const event = toEvent(provider, request);
  const result = await handler(event);
  const queued = [...queue.bodies];
  return {
    status: result.statusCode ?? 0,
    answer: JSON.parse(result.body ?? '{}') as Record<string, unknown>,
    queued,
    ...(queued.length === 1 ? { message: QueueMessageSchema.parse(JSON.parse(queued[0])) } : {}),
    requestId: event.requestContext.requestId,
  };
}

async function store(delivered: Delivered): Promise<WorkerVerdict> {
  assert.equal(delivered.queued.length, 1, 'one message queued');
  return runWorker(pipeline, delivered.queued[0], capturedLogger());
}

function assertStored(verdict: WorkerVerdict, kind: 'stored' | 'quarantined') {
  assert.equal(verdict.kind, 'result', verdict.kind === 'result' ? '' : verdict.error.message);
  assert.equal(verdict.kind === 'result' && verdict.result.kind, kind);
}

describe('ingest: every authentic callback is queued, whatever its characters, size or depth (was 5xx)', () => {
  test('U+FFFE and U+FFFF in a valid body: escaped in the message, since SQS refuses them as they are (was 503)', async () => {
    // prepare
    const reference = 'ref-\ufffe-\uffff';
    // act
    const delivered = await deliver('telesign', { body: body('telesign', 'sms-dlr-success', { reference_id: reference }) });
    const verdict = await store(delivered);
    // assess
    assert.equal(delivered.status, 200);
    assert.deepEqual(delivered.answer, { received: true });
    assert.doesNotMatch(delivered.queued[0], /[\ufffe\uffff]/);
    assert.equal((delivered.message?.payload as { reference_id: string }).reference_id, reference);
    assertStored(verdict, 'stored');
    const [item] = await pipeline.itemsOf(delivered.requestId);
    assert.equal(item.subjectId, reference);
  });

  test('a 200 KB body of NUL bytes: queued with its body in base64, under SQS 1 MiB (was 503: 1.2 MB once JSON-escaped)', async () => {
    // prepare
    const nul = Buffer.alloc(200_000, 0);
    // act
    const delivered = await deliver('relid', { body: nul });
    const verdict = await store(delivered);
    // assess
    assert.equal(delivered.status, 200);
    assert.deepEqual(delivered.answer, { received: true, quarantined: true });
    assert.ok(Buffer.byteLength(delivered.queued[0]) <= 1_048_576);
    assert.ok(rawBodyOf(delivered.message!).equals(nul), 'the exact bytes are queued');
    assertStored(verdict, 'quarantined');
    const [item] = await pipeline.itemsOf(delivered.requestId);
    // Kept for `reprocess`: the stored message still gives back the exact bytes.
    assert.ok(rawBodyOf(QueueMessageSchema.parse(JSON.parse(String(item.message)))).equals(nul));
  });

  test('a field nested 5,000 deep: queued without the parsed copy, then stored (was 500: JSON.stringify overflowed)', async () => {
    // prepare
    const deep = `"x_deep":${'['.repeat(5_000)}${']'.repeat(5_000)}`;
    // act
    const delivered = await deliver('telesign', { body: body('telesign', 'sms-dlr-success', { reference_id: 'deep-5000' }, deep) });
    const verdict = await store(delivered);
    // assess
    assert.equal(delivered.status, 200);
    assert.deepEqual(delivered.answer, { received: true });
    assert.equal(delivered.message?.payload, undefined, 'the worker re-parses the raw body');
    assertStored(verdict, 'stored');
    const [item] = await pipeline.itemsOf(delivered.requestId);
    const payload = item.payload as Record<string, unknown>;
    assert.equal(payload.reference_id, 'deep-5000');
    // Lists down to DynamoDB's nesting limit, then the rest as JSON text.
    let node: unknown = payload.x_deep;
    let level = 1;
    while (Array.isArray(node)) [node, level] = [node[0], level + 1];
    assert.equal(typeof node, 'string', 'the part DynamoDB cannot nest is kept as text');
    assert.ok(level <= 32, `text at level ${level}`);
  });
});

describe('describe: fields the schema does not check cannot break it (was 500 at ingest, TypeError in the worker)', () => {
  const cases = [
    { providerId: 'identomat', name: 'one-time-password', field: 'sessionLink', changes: { sessionId: 'otp-tostring' } },
    { providerId: 'telesign', name: 'voice-call_completed', field: 'data', changes: { reference_id: 'voice-tostring' } },
  ];
  for (const { providerId, name, field, changes } of cases) {
    test(`${providerId}: ${field} holding {"toString":1} (String() throws on it)`, async () => {
      // prepare
      const value = field === 'data' ? '{"ended_on_utc":{"toString":1}}' : '{"toString":1}';
      const json = sample(providerId, name);
      delete json[field];
      const raw = Buffer.from(`${JSON.stringify({ ...json, ...changes }).slice(0, -1)},"${field}":${value}}`);
      // act
      const delivered = await deliver(providerId, { body: raw });
      const verdict = await store(delivered);
      // assess
      assert.equal(delivered.status, 200, JSON.stringify(delivered.answer));
      assert.deepEqual(delivered.answer, { received: true });
      assertStored(verdict, 'stored');
      assert.equal((await pipeline.itemsOf(delivered.requestId)).length, 1);
    });
  }
});

describe('worker: JSON DynamoDB cannot hold is stored as text, not retried into the DLQ', () => {
  test('numbers past 2^53 or out of DynamoDB range, empty/constructor/__proto__/lone-surrogate keys, 33 levels', async () => {
    // prepare
    const hostile = [
      '"x_big":1e300',
      '"x_long_int":12345678901234567890',
      '"x_tiny":1e-200',
      '"":1',
      '"constructor":{"prototype":1}',
      '"__proto__":{"polluted":true}',
      '"\\ud800":1',
      `"x_33":${'['.repeat(33)}${']'.repeat(33)}`,
    ].join(',');
    // act
    const delivered = await deliver('relid', { body: body('relid', 'callback-two-way', { notification_uuid: 'hostile-json' }, hostile) });
    const verdict = await store(delivered);
    // assess
    assert.equal(delivered.status, 200);
    assertStored(verdict, 'stored');
    const [item] = await pipeline.itemsOf(delivered.requestId);
    const payload = item.payload as Record<string, unknown>;
    assert.equal(payload.notification_uuid, 'hostile-json', 'the rest stays a readable map');
    assert.equal(payload.x_big, '1e+300');
    assert.equal(payload.x_long_int, '12345678901234567000');
    assert.equal(payload.x_tiny, '1e-200');
    assert.equal(typeof payload.x_33, 'object');
    // (`__proto__` never reaches the worker: zod's copy of the object drops it at ingest; the raw body keeps it.)
    const refused = JSON.parse(String(payload[UNSTORABLE_KEYS])) as Record<string, unknown>;
    assert.deepEqual(Object.keys(refused).sort(), ['', 'constructor', '\ud800']);
    assert.equal(Object.getPrototypeOf(payload), Object.prototype, 'no prototype taken from the payload');
  });

  test('a 215 KB TemboPlus callback confirmed by an identical answer: stored once, whole (was over the 400 KB DynamoDB item limit)', async () => {
    // prepare
    const reference = 'tembo-large-1';
    // act
    const delivered = await deliver('temboplus', { body: body('temboplus', 'remittance-completed', { partnerReference: reference, x_pad: 'p'.repeat(215_000) }) });
    const verdict = await store(delivered);
    // assess
    assert.equal(delivered.status, 200);
    assertStored(verdict, 'stored');
    const [item] = await pipeline.itemsOf(delivered.requestId);
    assert.equal(item.confirmation, 'confirmed');
    assert.equal(item.answerIsClaim, true, "TemboPlus's answer is the callback's own body: kept once");
    assert.equal((item.payload as { partnerReference: string }).partnerReference, reference);
  });
});

describe('schemas: values that become keys or URL segments are refused at ingest, so they are quarantined and kept', () => {
  const cases = [
    { what: 'TeleSign Verify state of 2,000 characters (sort key over 1 KB)', providerId: 'telesign', content: () => ({ body: body('telesign', 'verify-api-dlr', { state: 'S'.repeat(2_000) }) }) },
    { what: 'TeleSign updated_on of 2,000 characters (sort key)', providerId: 'telesign', content: () => ({ body: body('telesign', 'verify-api-dlr', { updated_on: '2'.repeat(2_000) }) }) },
    { what: 'eSMS SendStatus of 5,000 digits (sort key)', providerId: 'esms', content: () => ({ query: `SMSID=long-status&SendStatus=${'5'.repeat(5_000)}` }) },
    { what: 'eSMS phonenumber of 3,000 characters (partition key over 2 KB)', providerId: 'esms', content: () => ({ query: `SMSID=long-phone&SendStatus=5&phonenumber=${'9'.repeat(3_000)}` }) },
    { what: 'REL-ID update_ts of 2,000 characters (sort key)', providerId: 'relid', content: () => ({ body: body('relid', 'callback-two-way', { update_ts: 'u'.repeat(2_000) }) }) },
    { what: 'TemboPlus partnerReference with a lone surrogate (encodeURIComponent threw in confirm)', providerId: 'temboplus', content: () => ({ body: body('temboplus', 'remittance-completed', { partnerReference: 'ref-\ud800' }) }) },
    { what: 'TemboPlus partnerReference ".." (the status URL would resolve to another path)', providerId: 'temboplus', content: () => ({ body: body('temboplus', 'remittance-completed', { partnerReference: '..' }) }) },
  ];
  for (const { what, providerId, content } of cases) {
    test(what, async () => {
      // act
      const delivered = await deliver(providerId, content());
      const verdict = await store(delivered);
      // assess
      assert.equal(delivered.status, 200);
      assert.deepEqual(delivered.answer, { received: true, quarantined: true });
      assertStored(verdict, 'quarantined');
      assert.equal((await pipeline.itemsOf(delivered.requestId)).length, 1);
    });
  }
});
