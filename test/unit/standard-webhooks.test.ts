import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { keys } from '../../functions/core/pipeline-definition.ts';
import type { QueueMessage } from '../../functions/core/queue-message.ts';
import { quarantineIdentity } from '../../functions/core/worker.ts';
import { getProvider } from '../../functions/providers/index.ts';
import { standardWebhooks, StandardWebhooksSecretSchema, standardWebhooksSignature, type StandardWebhooksCallback } from '../../functions/providers/standard-webhooks.ts';
import type { CallbackRequest } from '../../functions/providers/provider.ts';

/**
 * Standard Webhooks serves any number of senders on one route (`/callbacks/standard-webhooks/{source}`),
 * each naming its own objects and events: what one sender says must never land on another's subject,
 * and two of its objects must never read as one.
 */

const KEY_A = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;
const KEY_B = `whsec_${Buffer.alloc(32, 2).toString('base64')}`;
const KEY_C = `whsec_${Buffer.alloc(32, 3).toString('base64')}`;
const KEY_D = `whsec_${Buffer.alloc(32, 4).toString('base64')}`;
const OUTCOMES = { 'invoice.paid': 'succeeded', 'invoice.payment_failed': 'failed', 'order.paid': 'succeeded', 'order.failed': 'failed' } as const;
const secret = StandardWebhooksSecretSchema.parse({
  sources: {
    alpha: { secret: KEY_A, subjectField: 'data.id', outcomes: OUTCOMES },
    beta: { secret: KEY_B, subjectField: 'data.id', outcomes: OUTCOMES },
    gamma: { secret: KEY_C },
    delta: { secret: KEY_D },
  },
});

function callback(source: string, webhookId: string, event: Record<string, unknown>): StandardWebhooksCallback {
  return { webhookId, attemptedAt: '1767225600', source, event };
}

const subjectKey = (payload: StandardWebhooksCallback) => keys.subject('standard-webhooks', standardWebhooks.describe(payload, secret).subjectId);

describe('Standard Webhooks: subjects are per source', () => {
  test('the same data.id from two sources is two subjects: one cannot overwrite the other', () => {
    // act
    const alpha = standardWebhooks.describe(callback('alpha', 'msg_1', { type: 'invoice.payment_failed', data: { id: 'inv_X' } }), secret);
    const beta = standardWebhooks.describe(callback('beta', 'msg_2', { type: 'invoice.paid', data: { id: 'inv_X' } }), secret);

    // assess
    assert.equal(alpha.subjectId, 'alpha/inv_X');
    assert.equal(beta.subjectId, 'beta/inv_X');
    assert.equal(alpha.outcome, 'failed');
  });

  test('the same webhook-id from two sources (no subject field) is two subjects, so neither is taken for a retry of the other', () => {
    // act
    const gamma = callback('gamma', 'msg_1', { type: 'ping' });
    const delta = callback('delta', 'msg_1', { type: 'ping' });

    // assess
    assert.notEqual(subjectKey(gamma), subjectKey(delta));
    assert.equal(standardWebhooks.describe(gamma, secret).subjectId, 'gamma/msg_1');
  });

  test('an id JSON cannot keep exactly (past 2^53) names no subject: quarantined, never merged with its neighbour', () => {
    // prepare: JSON.parse reads both as 9007199255340720
    const [first, second] = ['{"id":9007199255340720}', '{"id":9007199255340721}'].map((text) => JSON.parse(text) as Record<string, unknown>);
    assert.equal(first.id, second.id, 'the premise: JSON.parse already rounded them');

    // act / assess
    for (const data of [first, second]) {
      assert.throws(() => standardWebhooks.describe(callback('alpha', 'msg_3', { type: 'order.paid', data }), secret), /subject field "data.id"/);
    }
    assert.equal(standardWebhooks.describe(callback('alpha', 'msg_4', { type: 'order.paid', data: { id: Number.MAX_SAFE_INTEGER } }), secret).subjectId, `alpha/${Number.MAX_SAFE_INTEGER}`);
    assert.equal(standardWebhooks.describe(callback('alpha', 'msg_5', { type: 'order.paid', data: { id: 42 } }), secret).subjectId, 'alpha/42');
  });
});

describe('quarantine: one item per delivery, however often it is retried', () => {
  const message = (changes: { source?: string; webhookId?: string; timestamp?: string; body?: string } = {}): QueueMessage => ({
    v: 1,
    provider: 'standard-webhooks',
    receivedAt: '2026-01-01T00:00:00.000Z',
    requestId: 'r',
    sourceIp: '203.0.113.1',
    method: 'POST',
    headers: { 'content-type': 'application/json', 'webhook-id': changes.webhookId ?? 'msg_1', 'webhook-timestamp': changes.timestamp ?? '1767225600' },
    pathParameters: { source: changes.source ?? 'alpha' },
    raw: { body: changes.body ?? '{"type":"ping","data":{}}', query: '' },
  });
  const identity = (value: QueueMessage) => quarantineIdentity(getProvider('standard-webhooks'), value);

  test('the same bytes under another webhook-id, or from another source, are other callbacks: each kept', () => {
    assert.notEqual(identity(message()), identity(message({ webhookId: 'msg_2' })));
    assert.notEqual(identity(message()), identity(message({ source: 'beta' })));
    assert.notEqual(identity(message()), identity(message({ body: '{"type":"ping","data":{"x":1}}' })));
  });

  test('a retry (a new webhook-timestamp, the same id) is the same callback: kept once', () => {
    assert.equal(identity(message()), identity(message({ timestamp: '1767225660' })));
  });

  test('a provider with neither route parameters nor delivery ids keys by the bytes alone', () => {
    const telesign: QueueMessage = { ...message(), provider: 'telesign', headers: { 'content-type': 'application/json', 'webhook-id': 'msg_1' }, pathParameters: undefined };
    const other: QueueMessage = { ...telesign, headers: { 'content-type': 'application/json', 'webhook-id': 'msg_2' } };
    assert.equal(quarantineIdentity(getProvider('telesign'), telesign), quarantineIdentity(getProvider('telesign'), other));
  });

  test('two different bytes never share an identity: a ? in the body, or text spelling another body in base64', () => {
    const telesign = (raw: QueueMessage['raw']): string => quarantineIdentity(getProvider('telesign'), { ...message(), provider: 'telesign', pathParameters: undefined, raw });
    assert.notEqual(telesign({ body: 'X?Y', query: '' }), telesign({ body: 'X', query: 'Y?' }));
    assert.notEqual(telesign({ body: '/w==', query: '' }), telesign({ bodyBase64: '/w==', query: '' }));
  });
});

describe('Standard Webhooks: a status declared final', () => {
  const secret = StandardWebhooksSecretSchema.parse({
    sources: { alpha: { secret: KEY_A, subjectField: 'data.id', outcomes: { 'invoice.paid': 'succeeded', 'invoice.opened': 'pending' }, terminal: ['invoice.paid', 'invoice.voided', 'invoice.opened'] } },
  });
  const describeType = (type: string) => standardWebhooks.describe(callback('alpha', 'msg_final', { type, data: { id: 'in_1' } }), secret);

  test('with no outcome declared is final and unknown (was: a final pending, never re-checked and never listed for review)', () => {
    // act
    const facts = describeType('invoice.voided');
    // assess
    assert.deepEqual([facts.outcome, facts.terminal, facts.detail?.outcomeDeclared], ['unknown', true, false]);
  });

  test('with its outcome declared reads as declared, pending included; a status neither final nor declared stays pending', () => {
    // act / assess
    assert.deepEqual([describeType('invoice.paid').outcome, describeType('invoice.paid').terminal], ['succeeded', true]);
    assert.deepEqual([describeType('invoice.opened').outcome, describeType('invoice.opened').terminal], ['pending', true]);
    assert.deepEqual([describeType('invoice.created').outcome, describeType('invoice.created').terminal], ['pending', false]);
  });
});

describe('Standard Webhooks: statuses longer than a declared one', () => {
  const declared = `order.${'x'.repeat(58)}`; // 64 characters, the longest a declared status may be
  const longSecret = StandardWebhooksSecretSchema.parse({
    sources: { alpha: { secret: KEY_A, subjectField: 'data.id', outcomes: { [declared]: 'succeeded' }, terminal: [declared] } },
  });
  const describeType = (type: string) => standardWebhooks.describe(callback('alpha', 'msg_long', { type, data: { id: 'o_1' } }), longSecret);
  const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

  test('the declared status itself (64 characters) reads as declared', () => {
    // act
    const facts = describeType(declared);
    // assess
    assert.deepEqual([facts.status, facts.outcome, facts.terminal], [declared, 'succeeded', true]);
  });

  test('an undeclared status that starts with a declared one is not that one: pending, and stored so it cannot read as it', () => {
    // act
    const facts = describeType(`${declared}.reversed`); // 73 characters
    // assess
    assert.deepEqual([facts.outcome, facts.terminal], ['pending', false]);
    assert.equal(facts.detail?.outcomeDeclared, false);
    assert.notEqual(facts.status, declared);
    assert.ok(facts.status.length > 64 && facts.status.length <= 73, `bounded, and longer than any declared status: ${facts.status.length}`);
    assert.ok(facts.status.startsWith('order.'), 'readable: it starts as the sender wrote it');
  });

  test('two long statuses that differ only past the cut are two statuses; the same one is always stored alike', () => {
    // act
    const [a, b, again] = [`${declared}.reversed`, `${declared}.refunded`, `${declared}.reversed`].map((type) => describeType(type).status);
    // assess
    assert.notEqual(a, b);
    assert.equal(a, again);
  });

  test('a long status is never cut inside a surrogate pair', () => {
    // prepare: an emoji (two UTF-16 units) straddling every possible cut position
    for (let before = 40; before < 70; before++) {
      const type = `${'a'.repeat(before)}😀${'b'.repeat(30)}`;
      // act
      const { status } = describeType(type);
      // assess
      assert.ok(!LONE_SURROGATE.test(status), `a lone surrogate at ${before}: ${JSON.stringify(status)}`);
    }
  });
});

describe('Standard Webhooks: a status that cannot be read is no declared status', () => {
  // A sender whose own statuses include `received`, declared as a success and final.
  const declaring = StandardWebhooksSecretSchema.parse({
    sources: { sigma: { secret: KEY_A, subjectField: 'data.id', statusField: 'data.status', outcomes: { received: 'succeeded', failed: 'failed' }, terminal: ['received', 'failed'] } },
  });
  const describeStatus = (status: unknown) =>
    standardWebhooks.describe(callback('sigma', 'msg_s', { type: 'order.updated', data: { id: 'o_1', ...(status === undefined ? {} : { status }) } }), declaring);

  test('the declared status itself reads as declared', () => {
    // act
    const facts = describeStatus('received');
    // assess
    assert.deepEqual([facts.status, facts.outcome, facts.terminal], ['received', 'succeeded', true]);
    assert.equal(facts.detail?.statusRead, undefined);
  });

  test('a missing, empty, null, non-text or over-long status is pending and not final, whatever is declared', () => {
    for (const status of [undefined, null, '', 2.5, true, { code: 'received' }, ['received'], 'r'.repeat(257)]) {
      // act
      const facts = describeStatus(status);
      // assess
      assert.deepEqual([facts.outcome, facts.terminal], ['pending', false], `data.status ${JSON.stringify(status)?.slice(0, 40)}`);
      assert.equal(facts.detail?.outcomeDeclared, false);
      assert.equal(facts.detail?.statusRead, false, 'the state says no status was read');
    }
  });
});

describe('Standard Webhooks: the 5-minute tolerance counts whole seconds, as the reference libraries do', () => {
  // The reference library compares the attempt's seconds with `Math.floor(Date.now() / 1000)`:
  // https://github.com/standard-webhooks/standard-webhooks/blob/main/libraries/javascript/src/index.ts (verifyTimestamp)
  const now = Date.UTC(2026, 0, 1, 10, 0, 0);
  const body = Buffer.from('{"type":"ping"}');
  function signedAt(timestamp: number, receivedMs: number): CallbackRequest {
    const attempt = String(timestamp);
    return {
      method: 'POST',
      headers: { 'webhook-id': 'msg_edge', 'webhook-timestamp': attempt, 'webhook-signature': `v1,${standardWebhooksSignature(KEY_C, 'msg_edge', attempt, body)}` },
      body,
      rawQuery: '',
      pathParameters: { source: 'gamma' },
      sourceIp: '198.51.100.7',
      requestId: 'edge',
      receivedAt: new Date(receivedMs).toISOString(),
    };
  }

  test('an attempt exactly 300 s old is taken whenever in that second it arrives (was refused past .000)', () => {
    for (const ms of [0, 1, 500, 999]) {
      // act
      const auth = standardWebhooks.authenticate(signedAt(now / 1000 - 300, now + ms), secret);
      // assess
      assert.deepEqual(auth, { ok: true }, `received at +${ms} ms`);
    }
  });

  test('an attempt 301 s old, or 301 s ahead, is refused', () => {
    for (const [timestamp, ms] of [
      [now / 1000 - 301, 0],
      [now / 1000 + 301, 999],
    ]) {
      // act
      const auth = standardWebhooks.authenticate(signedAt(timestamp, now + ms), secret);
      // assess
      assert.equal(auth.ok, false, `attempt ${timestamp - now / 1000} s, received at +${ms} ms`);
    }
  });

  test('an attempt exactly 300 s ahead is taken', () => {
    // act / assess
    assert.deepEqual(standardWebhooks.authenticate(signedAt(now / 1000 + 300, now + 999), secret), { ok: true });
  });
});

describe('Standard Webhooks secret: each source signs with a key of its own', () => {
  // The signed content is id.timestamp.body, not the URL: with one key for two sources, what one
  // sender signs is as authentic at the other's URL, and stored as the other's.
  const refusals = [
    { name: 'two sources with one key', value: { sources: { alpha: { secret: KEY_A }, beta: { secret: KEY_A } } } },
    { name: 'the same bytes written with and without whsec_', value: { sources: { alpha: { secret: KEY_A }, beta: { secret: KEY_A.slice('whsec_'.length) } } } },
    { name: "one source's previous key, another's current one", value: { sources: { alpha: { secret: KEY_A }, beta: { secret: KEY_B } }, previous: { sources: { alpha: { secret: KEY_B } } } } },
  ];
  for (const { name, value } of refusals) {
    test(`refused: ${name}, naming both sources`, () => {
      // act
      const parsed = StandardWebhooksSecretSchema.safeParse(value);
      // assess
      assert.equal(parsed.success, false);
      assert.match(parsed.error!.message, /sources (alpha and beta|beta and alpha) share a signing key/);
    });
  }

  test("the refusal names where the shared key is: a source's previous key, not its current one", () => {
    // act
    const parsed = StandardWebhooksSecretSchema.safeParse({ sources: { alpha: { secret: KEY_B }, beta: { secret: KEY_A } }, previous: { sources: { alpha: { secret: KEY_A } } } });
    // assess
    assert.equal(parsed.success, false);
    assert.deepEqual(parsed.error!.issues.map((issue) => issue.path), [['previous', 'sources', 'alpha']]);
  });

  test('accepted: keys of their own, and a rotation that keeps a source its key', () => {
    assert.equal(StandardWebhooksSecretSchema.safeParse({ sources: { alpha: { secret: KEY_A }, beta: { secret: KEY_B } } }).success, true);
    assert.equal(StandardWebhooksSecretSchema.safeParse({ sources: { alpha: { secret: KEY_A } }, previous: { sources: { alpha: { secret: KEY_A } } } }).success, true);
  });
});
