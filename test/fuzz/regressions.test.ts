import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { QueueMessageSchema, rawBodyOf, type QueueMessage } from '../../functions/core/queue-message.ts';
import { MAX_MESSAGE_BYTES } from '../../functions/core/ingest.ts';
import { MAX_BODY_BYTES } from '../../functions/core/pipeline-definition.ts';
import { UNSTORABLE_KEYS } from '../../functions/core/storable.ts';
import type { AnyProvider } from '../../functions/providers/provider.ts';
import { findSample } from '../../local/samples.ts';
import { allKits, type ProviderKit } from '../providers/index.ts';
import { storedSubjectOf, type Content, type FuzzRegression, type Json } from '../providers/kit.ts';
import { authenticFuzzRequest } from '../support/fuzz-arbitraries.ts';
import { capturedLogger, fuzzSecrets, runWorker, startFuzzPipeline, toEvent, type FuzzPipeline, type WorkerVerdict } from '../support/fuzz-harness.ts';
import { suiteResource } from '../support/suite-resource.ts';

/**
 * What the hostile-input fuzzer found, pinned one request each: every one of these was answered
 * 5xx, crashed the handler, or was answered 200 and then could never be stored (retried into the
 * DLQ: a callback lost after we promised to keep it). Each runs the real handler, the queue
 * stand-in with SQS's rules, and the real worker on DynamoDB Local.
 *
 * The general ones run for every provider they apply to (built from its kit's sample); the ones
 * about one provider's fields are its kit's `fuzz.regressions`.
 */

let pipeline: FuzzPipeline;
suiteResource(
  async () => {
    pipeline = await startFuzzPipeline();
  },
  async () => {
    await pipeline?.stop();
  },
);

interface Delivered {
  readonly status: number;
  readonly answer: Record<string, unknown>;
  readonly queued: readonly string[];
  readonly message?: QueueMessage;
  readonly requestId: string;
}

/** One authentic request through the real ingest handler, as API Gateway delivers it. */
async function deliver(provider: AnyProvider, content: Content): Promise<Delivered> {
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

/** Every member of `expected` is in `actual` (objects compared member by member). */
function assertHas(actual: unknown, expected: Json, where: string) {
  for (const [key, value] of Object.entries(expected)) {
    const found = (actual as Json | undefined)?.[key];
    if (value && typeof value === 'object' && !Array.isArray(value)) assertHas(found, value as Json, `${where}.${key}`);
    else assert.deepEqual(found, value, `${where}.${key}`);
  }
}

/** The kit's sample about another subject. */
function sampleAbout(kit: ProviderKit, subjectId: string): Content {
  return kit.withSubject(findSample(kit.provider.id, kit.sample), subjectId);
}

/** The kit's sample about another subject, with raw JSON members appended as written. */
function jsonSampleAbout(kit: ProviderKit, subjectId: string, rawMembers: string): Buffer {
  const text = sampleAbout(kit, subjectId).body!.toString('utf8').trimEnd();
  return Buffer.from(`${text.slice(0, -1)},${rawMembers}}`);
}

/** The object holding `key`, wherever it is in a stored payload (the body's members may sit under an envelope). */
function holderOf(value: unknown, key: string): Json | undefined {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  if (Object.hasOwn(value, key)) return value as Json;
  for (const child of Object.values(value)) {
    const found = holderOf(child, key);
    if (found) return found;
  }
  return undefined;
}

const jsonKits = allKits().filter((kit) => kit.fuzz.content.kind === 'json');
const postKits = allKits().filter((kit) => kit.provider.route.method === 'POST');
const NUL_BODY = Buffer.alloc(200_000, 0);
/** Whether a body of NUL bytes can be sent authentic at all (not when the credential travels inside a JSON body). */
const carriesCredential = (kit: ProviderKit) => authenticFuzzRequest({ provider: kit.provider, secrets: fuzzSecrets() }, { body: NUL_BODY }).authentic;

describe('ingest: every authentic callback is queued, whatever its characters, size or depth (was 5xx)', () => {
  for (const kit of allKits()) {
    test(`${kit.provider.id}: U+FFFE and U+FFFF in the subject: escaped in the message, since SQS refuses them as they are (was 503), and quarantined, since no event could name the subject exactly`, async () => {
      // prepare
      const reference = 'ref-\ufffe-\uffff';
      // act
      const delivered = await deliver(kit.provider, sampleAbout(kit, reference));
      const verdict = await store(delivered);
      // assess
      assert.equal(delivered.status, 200, JSON.stringify(delivered.answer));
      assert.deepEqual(delivered.answer, { received: true, quarantined: true });
      assert.doesNotMatch(delivered.queued[0], /[\ufffe\uffff]/);
      assert.match(String(delivered.message?.quarantine?.reason), /U\+FFFE or U\+FFFF/);
      assertStored(verdict, 'quarantined');
      const [item] = await pipeline.itemsOf(delivered.requestId);
      // Kept whole: the stored message gives back the exact body, characters and all.
      assert.ok(rawBodyOf(QueueMessageSchema.parse(JSON.parse(String(item.message)))).equals(rawBodyOf(delivered.message!)));
      assert.match(rawBodyOf(delivered.message!).toString('utf8') + decodeURIComponent(delivered.message?.raw.query ?? ''), /ref-\ufffe-\uffff/);
    });
  }

  for (const kit of postKits.filter(carriesCredential)) {
    test(`${kit.provider.id}: a 200 KB body of NUL bytes: queued with its body in base64, under SQS 1 MiB (was 503: 1.2 MB once JSON-escaped)`, async () => {
      // act
      const delivered = await deliver(kit.provider, { body: NUL_BODY });
      const verdict = await store(delivered);
      // assess
      assert.equal(delivered.status, 200);
      assert.deepEqual(delivered.answer, { received: true, quarantined: true });
      assert.ok(Buffer.byteLength(delivered.queued[0]) <= 1_048_576);
      assert.ok(rawBodyOf(delivered.message!).equals(NUL_BODY), 'the exact bytes are queued');
      assertStored(verdict, 'quarantined');
      const [item] = await pipeline.itemsOf(delivered.requestId);
      // Kept for `reprocess`: the stored message still gives back the exact bytes.
      assert.ok(rawBodyOf(QueueMessageSchema.parse(JSON.parse(String(item.message)))).equals(NUL_BODY));
    });
  }
  for (const kit of postKits.filter((candidate) => !carriesCredential(candidate))) {
    test(`${kit.provider.id}: a 200 KB body of NUL bytes cannot carry the credential: refused as forged, nothing queued`, async () => {
      // act
      const delivered = await deliver(kit.provider, { body: NUL_BODY });
      // assess
      assert.equal(delivered.status, 401);
      assert.equal(delivered.queued.length, 0);
    });
  }

  for (const kit of jsonKits.filter((candidate) => candidate.provider.route.method === 'POST')) {
    test(`${kit.provider.id}: a body at the size limit, nearly all U+FFFF: measured as SQS will take it, escaped (was 503 on every retry: 1 MiB once escaped)`, async () => {
      // prepare: each U+FFFF is 3 bytes in the body and 6 once escaped, in the raw body and in the parsed copy
      const head = jsonSampleAbout(kit, 'ffff-limit', '"x_fill":""');
      const count = Math.floor((MAX_BODY_BYTES - head.length - 64) / 3);
      const body = jsonSampleAbout(kit, 'ffff-limit', `"x_fill":"${'\uffff'.repeat(count)}"`);
      assert.ok(body.length <= MAX_BODY_BYTES && body.length > MAX_BODY_BYTES - 256, `${body.length} bytes`);
      // act
      const delivered = await deliver(kit.provider, { body });
      const verdict = await store(delivered);
      // assess
      assert.equal(delivered.status, 200, JSON.stringify(delivered.answer));
      // within ingest's own budget, which leaves SQS's 1 MiB room for the message's attributes
      assert.ok(Buffer.byteLength(delivered.queued[0]) <= MAX_MESSAGE_BYTES, `${Buffer.byteLength(delivered.queued[0])} bytes queued`);
      assert.doesNotMatch(delivered.queued[0], /[\ufffe\uffff]/);
      // (the bytes as queued: Identomat's key is scrubbed from its body)
      assert.equal(rawBodyOf(delivered.message!).toString('utf8').split('\uffff').length - 1, count, 'every U+FFFF is queued');
      assertStored(verdict, 'stored');
    });
  }

  // (Not for a provider the worker confirms with a status endpoint: the local stand-in cannot
  // answer a body nested this deep, its own JSON.stringify overflows, so the worker waits for a retry.)
  for (const kit of jsonKits.filter((candidate) => !candidate.statusSimulation)) {
    test(`${kit.provider.id}: a field nested 5,000 deep: queued without the parsed copy, then stored (was 500: JSON.stringify overflowed)`, async () => {
      // prepare
      const deep = `"x_deep":${'['.repeat(5_000)}${']'.repeat(5_000)}`;
      // act
      const delivered = await deliver(kit.provider, { body: jsonSampleAbout(kit, 'deep-5000', deep) });
      const verdict = await store(delivered);
      // assess
      assert.equal(delivered.status, 200);
      assert.deepEqual(delivered.answer, { received: true });
      assert.equal(delivered.message?.payload, undefined, 'the worker re-parses the raw body');
      assertStored(verdict, 'stored');
      const [item] = await pipeline.itemsOf(delivered.requestId);
      assert.equal(item.subjectId, storedSubjectOf(kit, 'deep-5000', pipeline.secrets[kit.provider.id]));
      // Lists down to DynamoDB's nesting limit, then the rest as JSON text.
      let node: unknown = holderOf(item.payload, 'x_deep')?.x_deep;
      let level = 1;
      while (Array.isArray(node)) [node, level] = [node[0], level + 1];
      assert.equal(typeof node, 'string', 'the part DynamoDB cannot nest is kept as text');
      assert.ok(level <= 32, `text at level ${level}`);
    });
  }
  for (const kit of jsonKits.filter((candidate) => !candidate.statusSimulation)) {
    test(`${kit.provider.id}: a field nested 20,000 deep: what lies below DynamoDB's nesting limit is stored as its JSON text, not replaced by a note (was lost: too deep for JSON.stringify)`, async () => {
      // prepare
      const deep = `"x_deep":${'['.repeat(20_000)}"kept-at-the-bottom"${']'.repeat(20_000)}`;
      // act
      const delivered = await deliver(kit.provider, { body: jsonSampleAbout(kit, 'deep-20000', deep) });
      const verdict = await store(delivered);
      // assess
      assert.equal(delivered.status, 200);
      assert.deepEqual(delivered.answer, { received: true });
      assertStored(verdict, 'stored');
      const [item] = await pipeline.itemsOf(delivered.requestId);
      let node: unknown = holderOf(item.payload, 'x_deep')?.x_deep;
      let level = 1;
      while (Array.isArray(node)) [node, level] = [node[0], level + 1];
      assert.equal(typeof node, 'string', 'the part DynamoDB cannot nest is kept as text');
      // The text is the rest of the field, every level and the value at the bottom.
      let rest: unknown = JSON.parse(String(node));
      while (Array.isArray(rest)) [rest, level] = [rest[0], level + 1];
      assert.equal(rest, 'kept-at-the-bottom');
      assert.equal(level, 20_001, 'every level is kept');
    });
  }
});

/** A kit's pinned regression: sent authentic, answered 200, and stored as it expects. */
function regressionTests(layer: FuzzRegression['layer']) {
  for (const kit of allKits()) {
    for (const regression of (kit.fuzz.regressions ?? []).filter((candidate) => candidate.layer === layer)) {
      test(`${kit.provider.displayName}: ${regression.what}`, async () => {
        // act
        const delivered = await deliver(kit.provider, regression.content());
        const verdict = await store(delivered);
        // assess
        assert.equal(delivered.status, 200, JSON.stringify(delivered.answer));
        assert.deepEqual(delivered.answer, regression.expect === 'quarantined' ? { received: true, quarantined: true } : { received: true });
        assertStored(verdict, regression.expect);
        const items = await pipeline.itemsOf(delivered.requestId);
        assert.equal(items.length, 1);
        if (regression.item) assertHas(items[0], regression.item, 'item');
      });
    }
  }
}

describe('describe: fields the schema does not check cannot break it (was 500 at ingest, TypeError in the worker)', () => {
  regressionTests('describe');
});

describe('worker: JSON DynamoDB cannot hold is stored as text, not retried into the DLQ', () => {
  for (const kit of jsonKits) {
    test(`${kit.provider.id}: numbers past 2^53 or out of DynamoDB range, empty/constructor/lone-surrogate keys, 33 levels`, async () => {
      // prepare
      const hostile = [
        '"x_big":1e300',
        // 2^64, which a double holds exactly (one it cannot, 12345678901234567890, is quarantined: misreadNumber)
        '"x_long_int":18446744073709551616',
        '"x_tiny":1e-200',
        '"":1',
        '"constructor":{"prototype":1}',
        '"\\ud800":1',
        `"x_33":${'['.repeat(33)}${']'.repeat(33)}`,
      ].join(',');
      // act
      const delivered = await deliver(kit.provider, { body: jsonSampleAbout(kit, 'hostile-json', hostile) });
      const verdict = await store(delivered);
      // assess
      assert.equal(delivered.status, 200);
      assertStored(verdict, 'stored');
      const [item] = await pipeline.itemsOf(delivered.requestId);
      assert.equal(item.subjectId, storedSubjectOf(kit, 'hostile-json', pipeline.secrets[kit.provider.id]));
      // The body's object, wherever the payload keeps it: the rest stays a readable map.
      const payload = holderOf(item.payload, 'x_big');
      assert.ok(payload, 'the body is stored as a map');
      assert.equal(payload.x_big, '1e+300');
      assert.equal(payload.x_long_int, '18446744073709552000');
      assert.equal(payload.x_tiny, '1e-200');
      assert.equal(typeof payload.x_33, 'object');
      // (A `__proto__` member is never read: the callback is quarantined as it came, test/unit/ingest.test.ts.)
      const refused = JSON.parse(String(payload[UNSTORABLE_KEYS])) as Json;
      assert.deepEqual(Object.keys(refused).sort(), ['', 'constructor', '\ud800']);
      assert.equal(Object.getPrototypeOf(payload), Object.prototype, 'no prototype taken from the payload');
    });
  }
  for (const kit of jsonKits) {
    test(`${kit.provider.id}: a member name of 60,000 characters: kept as text, the callback stored once (was 200, then the event item refused on every receive, into the DLQ)`, async () => {
      // prepare
      const longName = `x_${'n'.repeat(60_000)}`;
      // act
      const delivered = await deliver(kit.provider, { body: jsonSampleAbout(kit, 'long-member-name', `"x_short":1,"${longName}":"kept"`) });
      const verdict = await store(delivered);
      // assess
      assert.equal(delivered.status, 200, JSON.stringify(delivered.answer));
      assertStored(verdict, 'stored');
      const items = await pipeline.itemsOf(delivered.requestId);
      assert.equal(items.length, 1, 'one event item');
      const payload = holderOf(items[0].payload, 'x_short');
      assert.ok(payload, 'the body is stored as a map');
      assert.equal(Object.hasOwn(payload, longName), false, 'not as a map key');
      assert.deepEqual(JSON.parse(String(payload[UNSTORABLE_KEYS])), { [longName]: 'kept' }, 'the member kept whole, as text');
    });
  }
  regressionTests('worker');
});

describe('schemas: values that become keys or URL segments are refused at ingest, so they are quarantined and kept', () => {
  regressionTests('schema');
});
