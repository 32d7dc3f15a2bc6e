import assert from 'node:assert/strict';
import { type AttributeValue, GetItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { marshall } from '@aws-sdk/util-dynamodb';
import { describe, test } from 'node:test';
import { batchSender } from '../../functions/adapters/sqs.ts';
import { expectSubject } from '../../functions/core/expect.ts';
import { keys, QUEUE } from '../../functions/core/pipeline-definition.ts';
import { eventsFromChange } from '../../functions/core/publish.ts';
import { RecheckMessageSchema, type RecheckMessage } from '../../functions/core/queue-message.ts';
import { processRecheck, type RecheckResult } from '../../functions/core/recheck.ts';
import { DEFAULT_RECONCILE, recheckShard, staleShard, type ReconcilePolicy } from '../../functions/core/reconcile.ts';
import { sweep, type SweepDependencies } from '../../functions/core/sweep.ts';
import { processMessage } from '../../functions/core/worker.ts';
import { getProvider } from '../../functions/providers/index.ts';
import { deployedProvidersEnv } from '../../functions/handlers/deployed-providers.ts';
import { createSweepHandler } from '../../functions/handlers/sweep.ts';
import { captureLogger, queueMessageFor, sampleJson, startWorkerEnvironment, storedState, uniqueId, type WorkerEnvironment } from '../support/integration-worker.ts';
import { suiteResource } from '../support/suite-resource.ts';

/**
 * The sweep on DynamoDB Local, with its own table (nothing else due in it), on a simulated clock:
 * what it leases and queues, and what the worker makes of the re-checks it queued.
 */

let env: WorkerEnvironment;
let clock = Date.parse('2026-06-01T10:00:00.000Z');
const now = () => new Date(clock);

suiteResource(
  async () => {
    env = await startWorkerEnvironment();
  },
  async () => {
    await env?.stop();
  },
);

/** One sweep of `providerId` at the clock's time: the re-check messages it queued. */
async function sweepOnce(providerId: string, limitPerProvider?: number): Promise<RecheckMessage[]> {
  const queued: string[] = [];
  await sweep([getProvider(providerId)], {
    store: env.store,
    enqueue: async (messages) => void queued.push(...messages.map((message) => message.body)),
    now,
    log: captureLogger(),
    reconcile: DEFAULT_RECONCILE,
    ...(limitPerProvider === undefined ? {} : { limitPerProvider }),
  });
  return queued.map((body) => RecheckMessageSchema.parse(JSON.parse(body)));
}

const recheck = (message: RecheckMessage): Promise<RecheckResult> => processRecheck(message, env.deps({ now, asking: true }));

describe('the sweep', () => {
  test('copies of one re-check queued again behind a worker backlog are asked and counted once, and the subject stays on the schedule', async () => {
    // prepare: an expected TemboPlus transfer the endpoint has never heard of
    const subjectId = uniqueId('SWEEP-BACKLOG');
    await expectSubject(env.store, getProvider('temboplus'), { subjectId }, { now: now(), policy: DEFAULT_RECONCILE });
    // act: 40 one-minute sweeps while the worker is held back, then the worker catches up
    const queued: RecheckMessage[] = [];
    for (let minute = 0; minute < 40; minute++) {
      clock += 60_000;
      queued.push(...(await sweepOnce('temboplus')).filter((message) => message.subjectId === subjectId));
    }
    const results = [];
    for (const message of queued) results.push(await recheck(message));
    // assess
    assert.ok(queued.length >= 5, `the lease ran out and the sweep queued it again: ${queued.length} copies`);
    assert.equal(results.filter((result) => result.kind === 'rechecked').length, 1, JSON.stringify(results));
    assert.ok(results.slice(0, -1).every((result) => result.kind === 'skipped' && result.reason === 'lease taken over'));
    const state = await env.store.getState('temboplus', subjectId);
    assert.equal(state?.rechecks, 1, 'one step of the schedule spent');
    assert.notEqual(state?.stale, true);
    assert.ok(state?.recheckAt, 'still on the schedule');
  });

  test("a flood of due subjects in one shard never keeps the other shards' subjects from being leased", async () => {
    // prepare: 40 REL-ID subjects due in shard 0, and 2 in each other shard
    const inShard = (shard: number, count: number) => {
      const found: string[] = [];
      for (let n = 0; found.length < count; n++) {
        const subjectId = uniqueId(`SWEEP-SHARD-${n}`);
        if (recheckShard('relid', subjectId, undefined, DEFAULT_RECONCILE.shards) === `relid#${shard}`) found.push(subjectId);
      }
      return found;
    };
    const flood = inShard(0, 40);
    const others = [1, 2, 3].flatMap((shard) => inShard(shard, 2));
    for (const subjectId of [...flood, ...others]) await expectSubject(env.store, getProvider('relid'), { subjectId }, { now: now(), policy: DEFAULT_RECONCILE });
    clock += 3_600_000;
    // act: one sweep with room for 12
    const leased = (await sweepOnce('relid', 12)).map((message) => message.subjectId);
    // assess
    assert.equal(leased.length, 12);
    assert.deepEqual(others.filter((subjectId) => !leased.includes(subjectId)), [], 'every other shard had its share');
  });

  test('an expectation written by hand as the README shows, for one part and without a part attribute, is asked about at its own key', async () => {
    // prepare: the README's item for one eSMS recipient; the key names the part, no attribute does
    const subjectId = uniqueId('SWEEP-HAND');
    const part = '84901234567';
    const due = new Date(clock + 60_000).toISOString();
    await env.client.send(
      new PutItemCommand({
        TableName: env.tableName,
        Item: marshall({ ...keys.state('esms', subjectId, part), provider: 'esms', subjectId, expectedAt: now().toISOString(), recheckShard: 'esms#0', recheckAt: due }),
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
    clock += 120_000;
    // act
    const mine = (await sweepOnce('esms')).filter((message) => message.subjectId === subjectId);
    const results = await Promise.all(mine.map(recheck));
    // assess
    assert.deepEqual(mine.map((message) => message.part), [part], 'the part read from the key');
    assert.equal(results[0]?.kind, 'rechecked');
    const state = await env.store.getState('esms', subjectId, part);
    assert.equal(state?.rechecks, 1);
    assert.equal(state?.part, part);
    assert.equal(await env.store.getState('esms', subjectId), undefined, "no message-level state written beside it");
  });

  test('two deliveries of one re-check message at once (SQS delivers at least once) count one step of the schedule', async () => {
    // prepare: one leased re-check, delivered twice; each ask held until both have read the state
    const subjectId = uniqueId('SWEEP-TWICE');
    await expectSubject(env.store, getProvider('temboplus'), { subjectId }, { now: now(), policy: DEFAULT_RECONCILE });
    clock += 120_000;
    const [message] = (await sweepOnce('temboplus')).filter((queued) => queued.subjectId === subjectId);
    let started = 0;
    let release!: () => void;
    const bothStarted = new Promise<void>((resolve) => (release = resolve));
    const held: typeof fetch = async (input, init) => {
      if (++started === 2) release();
      await bothStarted;
      return fetch(input, init);
    };
    const deps = () => {
      const base = env.deps({ now, asking: true });
      return { ...base, lookup: { ...base.lookup, fetch: held } };
    };
    // act
    const results = await Promise.all([processRecheck(message, deps()), processRecheck(message, deps())]);
    // assess
    assert.deepEqual(results.map((result) => result.kind).sort(), ['rechecked', 'skipped']);
    assert.equal((await env.store.getState('temboplus', subjectId))?.rechecks, 1);
  });
});

describe('no longer stale', () => {
  const transfer = (ref: string, status: 'SUBMITTED' | 'COMPLETED', updatedAt: string) => ({
    ...sampleJson('temboplus', 'remittance-completed'),
    partnerReference: ref,
    status,
    statusCode: status === 'COMPLETED' ? 'PAYMENT_SUCCESS' : 'SUBMITTED',
    updatedAt,
    completedAt: status === 'SUBMITTED' ? null : updatedAt,
  });

  test('a claim received before the subject went stale, stored after it (a redrive), dates "no longer stale" when it is written', async () => {
    // prepare: a stale transfer
    const ref = uniqueId('SWEEP-STALE');
    env.simulator.report(transfer(ref, 'SUBMITTED', '2025-01-01T10:00:00Z'));
    await processMessage(await queueMessageFor(env.secrets, 'temboplus', transfer(ref, 'SUBMITTED', '2025-01-01T10:00:00Z')), env.deps());
    const staleAt = new Date().toISOString();
    await env.client.send(
      new UpdateItemCommand({
        TableName: env.tableName,
        Key: marshall(keys.state('temboplus', ref)),
        UpdateExpression: 'SET stale = :yes, staleAt = :at, changedAt = :at, recheckShard = :shard, recheckAt = :at, rechecks = :n',
        ExpressionAttributeValues: marshall({ ':yes': true, ':at': staleAt, ':shard': staleShard('temboplus'), ':n': 7 }),
      }),
    );
    const stale = await storedState(env, 'temboplus', ref);
    // act: a COMPLETED claim received a day before, redriven now, the endpoint down on every receive
    const message = await queueMessageFor(env.secrets, 'temboplus', transfer(ref, 'COMPLETED', '2025-01-09T10:00:00Z'), { receivedAt: new Date(Date.now() - 86_400_000).toISOString() });
    env.simulator.setFault({ status: 503 });
    try {
      for (let receive = 1; receive <= QUEUE.maxReceiveCount; receive++) {
        const stored = await processMessage(message, env.deps(), receive).then(() => true, () => false);
        if (stored) break;
      }
    } finally {
      env.simulator.setFault(undefined);
    }
    // assess
    const resumed = await storedState(env, 'temboplus', ref);
    assert.equal(resumed?.stale, undefined, 'no longer stale');
    assert.equal(eventsFromChange({ eventName: 'MODIFY', oldImage: stale, newImage: resumed }).length, 1, 'published');
    assert.ok(String(resumed?.changedAt) >= staleAt, `changedAt ${String(resumed?.changedAt)} before the stale event's ${staleAt}`);
  });
});

describe('an expectation written by hand, its status endpoint failing on every re-check', () => {
  // An application may leave `expectedAt` out, write it as epoch milliseconds (`Date.now()`), or
  // far ahead: the horizon still counts from when the subject was first asked about, never from its
  // last write nor from a time that has not come.
  for (const [name, expectedAt] of [
    ['without expectedAt', undefined],
    ['with expectedAt in epoch milliseconds', 'epoch'],
    ['with expectedAt years ahead (a wrong clock, a typo)', 'future'],
  ] as const) {
    test(`${name}: stale by the horizon, not asked every half hour for ever`, async () => {
      // prepare: TemboPlus's endpoint answers 503 to everything
      const subjectId = uniqueId('SWEEP-HAND-FAULT');
      const start = clock;
      await env.client.send(
        new PutItemCommand({
          TableName: env.tableName,
          Item: marshall({
            ...keys.state('temboplus', subjectId),
            provider: 'temboplus',
            subjectId,
            ...(expectedAt === 'epoch' ? { expectedAt: clock } : expectedAt === 'future' ? { expectedAt: '2099-12-01T10:00:00.000Z' } : {}),
            recheckShard: 'temboplus#0',
            recheckAt: new Date(clock + 60_000).toISOString(),
          }),
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      env.simulators.temboplus.setFault({ status: 503 });
      try {
        // act: every re-check due over twice the horizon, on the simulated clock
        let state = await env.store.getState('temboplus', subjectId);
        while (state?.recheckAt && !state.stale && clock - start < 2 * DEFAULT_RECONCILE.horizonHours * 3_600_000) {
          clock = Math.max(clock, Date.parse(state.recheckAt)) + 1000;
          for (const message of (await sweepOnce('temboplus')).filter((each) => each.subjectId === subjectId)) await recheck(message);
          state = await env.store.getState('temboplus', subjectId);
        }
        // assess
        assert.equal(state?.stale, true, `still asked after ${((clock - start) / 3_600_000).toFixed(0)} h, ${state?.recheckFaults} faults`);
        const span = (Date.parse(state!.staleAt!) - start) / 3_600_000;
        assert.ok(span <= DEFAULT_RECONCILE.horizonHours + 1, `stale after ${span.toFixed(1)} h`);
        assert.match(String(state?.recheckFault), /503/, 'the state says why');
      } finally {
        env.simulators.temboplus.setFault(undefined);
      }
    });
  }
});

describe('an item the lease cannot be written to', () => {
  /** A telesign subject written by hand, due in shard telesign#0 (`version` as given), and a well-formed one expected now; both due 10 minutes on. */
  async function badAndGood(version: unknown) {
    const bad = uniqueId('SWEEP-BAD-VERSION');
    const good = uniqueId('SWEEP-GOOD');
    const due = new Date(clock + 60_000).toISOString();
    await env.client.send(
      new PutItemCommand({
        TableName: env.tableName,
        Item: marshall({ ...keys.state('telesign', bad), provider: 'telesign', subjectId: bad, expectedAt: now().toISOString(), version, recheckShard: 'telesign#0', recheckAt: due }),
      }),
    );
    await expectSubject(env.store, getProvider('telesign'), { subjectId: good }, { now: now(), policy: { ...DEFAULT_RECONCILE, providerFirstDelays: false } });
    clock += 10 * 60_000;
    return { bad, good };
  }

  /** One telesign sweep with `store`: what it queued, its log, and the error it failed with. */
  async function sweepTelesign(store: SweepDependencies['store']) {
    const queued: RecheckMessage[] = [];
    const log = captureLogger();
    const outcome = await sweep([getProvider('telesign')], {
      store,
      enqueue: async (messages) => void queued.push(...messages.map((message) => RecheckMessageSchema.parse(JSON.parse(message.body)))),
      now,
      log,
      reconcile: DEFAULT_RECONCILE,
    }).then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    return { queued, log, outcome };
  }

  test('a lease the table fails for one subject does not keep the sweep from queuing every other subject', async () => {
    // prepare: a subject whose lease write fails, due before a well-formed one
    const { bad, good } = await badAndGood(1);
    const failing = { ...env.store, claimRecheck: async (key: { pk: string; sk: string }, seen: string, leaseUntil: string) => (key.pk === keys.state('telesign', bad).pk ? Promise.reject(new Error('UpdateItem (recheck lease) failed: throttled')) : env.store.claimRecheck(key, seen, leaseUntil)) };
    // act
    const { queued, log, outcome } = await sweepTelesign(failing);
    // assess
    assert.ok(queued.some((message) => message.subjectId === good), `the well-formed subject is queued (${outcome?.message ?? 'no error'})`);
    assert.ok(!queued.some((message) => message.subjectId === bad));
    assert.match(String(outcome?.message), /recheck lease/, 'the invocation still fails, for the alarm');
    assert.equal(log.lines.filter((line) => line.message === 'sweep: lease not taken').length, 1);
  });

  test('an expectation written with a version as text DynamoDB cannot add to is leased, its version the next integer as a number', async () => {
    // prepare: an expectation written by hand with `version` as text, due before a well-formed one
    const { bad, good } = await badAndGood('1');
    // act
    const { queued, outcome } = await sweepTelesign(env.store);
    // assess
    assert.equal(outcome, undefined, `was: the lease failed, every sweep (${outcome?.message})`);
    assert.deepEqual(queued.map((message) => message.subjectId).filter((subjectId) => subjectId === bad || subjectId === good).sort(), [bad, good].sort());
    const item = (await env.client.send(new GetItemCommand({ TableName: env.tableName, Key: marshall(keys.state('telesign', bad)), ConsistentRead: true }))).Item;
    assert.deepEqual(item?.version, { N: '2' });
  });
});

describe('the sweep when the table or the queue fails part of the way', () => {
  /** Subjects of `providerId` expected now, due once the clock moves on 10 minutes (it does). */
  async function dueSubjects(providerId: string, ids: readonly string[]): Promise<void> {
    for (const subjectId of ids) await expectSubject(env.store, getProvider(providerId), { subjectId }, { now: now(), policy: { ...DEFAULT_RECONCILE, providerFirstDelays: false } });
    clock += 10 * 60_000;
  }

  /** One sweep at the clock's time with these parts changed: its log, and the error it failed with. */
  async function sweepFailing(providerIds: readonly string[], parts: Partial<Pick<SweepDependencies, 'store' | 'enqueue'>>) {
    const log = captureLogger();
    const error = await sweep(providerIds.map(getProvider), { store: env.store, enqueue: async () => undefined, now, log, reconcile: DEFAULT_RECONCILE, ...parts }).then(
      () => undefined,
      (failure: unknown) => failure as Error,
    );
    return { log, error };
  }

  /** A queue that takes every message it is sent into `queued`. */
  const into = (queued: RecheckMessage[]) => async (messages: readonly { readonly body: string }[]) => void queued.push(...messages.map((message) => RecheckMessageSchema.parse(JSON.parse(message.body))));

  /** The table, its index query failing for the shards `fails` names. */
  const tableFailing = (fails: (shard: string) => boolean) => ({
    ...env.store,
    dueRechecks: async (shard: string, at: string, limit: number) => (fails(shard) ? Promise.reject(new Error('Query failed: throttled')) : env.store.dueRechecks(shard, at, limit)),
  });

  test("one provider's due subjects that cannot be read do not keep the others' from being queued", async () => {
    // prepare: a due subject of TemboPlus, and a table that fails TeleSign's index query
    const tembo = uniqueId('SWEEP-TEMBO');
    await dueSubjects('temboplus', [tembo]);
    const queued: RecheckMessage[] = [];
    // act
    const { log, error } = await sweepFailing(['telesign', 'temboplus'], { store: tableFailing((shard) => shard.startsWith('telesign#')), enqueue: into(queued) });
    // assess
    // Before, the first provider's failed query ended the sweep: nothing queued for any provider.
    assert.ok(queued.some((message) => message.subjectId === tembo), 'the other provider\'s subject is queued');
    assert.match(String(error?.message), /throttled/, 'the invocation still fails, for the alarm');
    assert.deepEqual(log.lines.filter((line) => line.message === 'sweep: due re-checks not read').map((line) => line.fields?.provider), ['telesign']);
  });

  test("the far end's query failing does not keep the due subjects from being queued", async () => {
    // prepare: a due subject of eSMS, and a table whose query of the index's far end fails
    const due = uniqueId('SWEEP-FAR-FAILS');
    await dueSubjects('esms', [due]);
    const queued: RecheckMessage[] = [];
    const store = { ...env.store, farRechecks: async () => Promise.reject(new Error('Query failed: throttled')) };
    // act
    const { log, error } = await sweepFailing(['esms'], { store, enqueue: into(queued) });
    // assess
    assert.ok(queued.some((message) => message.subjectId === due), 'the due subject is queued');
    assert.match(String(error?.message), /throttled/, 'the invocation still fails, for the alarm');
    assert.deepEqual(log.lines.filter((line) => line.message === 'sweep: far-off re-checks not read').map((line) => line.fields?.shards), [DEFAULT_RECONCILE.shards]);
  });

  test("one shard's query failing leaves the provider's other shards to be queued", async () => {
    // prepare: two due TeleSign subjects in different shards, and a table that fails the first one's shard
    const shardOf = (subjectId: string) => recheckShard('telesign', subjectId, undefined, DEFAULT_RECONCILE.shards);
    const first = uniqueId('SWEEP-SHARD-A');
    let second = uniqueId('SWEEP-SHARD-B');
    while (shardOf(second) === shardOf(first)) second = uniqueId('SWEEP-SHARD-B');
    await dueSubjects('telesign', [first, second]);
    const queued: RecheckMessage[] = [];
    // act
    const { log, error } = await sweepFailing(['telesign'], { store: tableFailing((shard) => shard === shardOf(first)), enqueue: into(queued) });
    // assess
    assert.ok(queued.some((message) => message.subjectId === second), 'the other shard\'s subject is queued');
    assert.ok(!queued.some((message) => message.subjectId === first));
    assert.match(String(error?.message), /throttled/);
    assert.deepEqual(log.lines.filter((line) => line.message === 'sweep: due re-checks not read').map((line) => line.fields?.shards), [1]);
  });

  test('a queue that refuses two whole batches in a row is not sent the rest: they wait out their lease', async () => {
    // prepare: 35 due subjects (four batches), and a queue that refuses everything
    await dueSubjects('identomat', Array.from({ length: 35 }, (_, n) => uniqueId(`SWEEP-DOWN-${n}`)));
    let calls = 0;
    const refusing = async () => {
      calls++;
      throw new Error('SendMessageBatch failed: unreachable');
    };
    // act
    const { log, error } = await sweepFailing(['identomat'], { enqueue: refusing });
    // assess
    assert.match(String(error?.message), /unreachable/);
    assert.equal(calls, 2, 'two batches tried, not every one');
    const counts = log.lines.filter((line) => line.message === 'sweep: re-checks not queued').map((line) => line.fields?.count as number);
    assert.ok(counts.reduce((sum, count) => sum + count, 0) >= 35, `every leased subject counted as not queued (${counts.join(' + ')})`);
    assert.equal(log.lines.find((line) => line.message === 'sweep')?.fields?.queued, 0);
  });

  test('a batch the queue refuses does not keep the next batches from being queued', async () => {
    // prepare: 12 due subjects (two batches of messages), and a queue that refuses the first batch
    const ids = Array.from({ length: 12 }, (_, n) => uniqueId(`SWEEP-BATCH-${n}`));
    await dueSubjects('esms', ids);
    const queued: RecheckMessage[] = [];
    let batches = 0;
    const refusingFirst = async (messages: readonly { readonly body: string }[]) => {
      if (batches++ === 0) throw new Error('SendMessageBatch failed: unreachable');
      await into(queued)(messages);
    };
    // act
    const { log, error } = await sweepFailing(['esms'], { enqueue: refusingFirst });
    // assess
    const mine = queued.filter((message) => ids.includes(message.subjectId));
    assert.ok(mine.length >= 2, `${mine.length} of the 12 queued after the refused batch`);
    assert.match(String(error?.message), /unreachable/);
    const refused = log.lines.filter((line) => line.message === 'sweep: re-checks not queued');
    assert.equal(refused.length, 1);
    assert.equal(refused[0].fields?.count, 10);
    assert.equal(log.lines.find((line) => line.message === 'sweep')?.fields?.queued, queued.length, 'the sweep line counts what was queued');
  });

  test('a batch the queue took in part: the lines count what was queued and what was not', async () => {
    // prepare: 12 due subjects (two batches), and a queue whose first SendMessageBatch accepts all
    // but three of its entries (the call succeeds; `Failed` names them)
    await dueSubjects('esms', Array.from({ length: 12 }, (_, n) => uniqueId(`SWEEP-PART-${n}`)));
    const queued: RecheckMessage[] = [];
    let calls = 0;
    const sqs = {
      send: async (command: SendMessageBatchCommand) => {
        const entries = command.input.Entries ?? [];
        const failed = calls++ === 0 ? entries.slice(0, 3) : [];
        for (const entry of entries) if (!failed.includes(entry)) queued.push(RecheckMessageSchema.parse(JSON.parse(entry.MessageBody!)));
        return { Successful: [], Failed: failed.map((entry) => ({ Id: entry.Id, Code: 'InternalError', SenderFault: false })) };
      },
    } as unknown as SQSClient;
    // act
    const { log, error } = await sweepFailing(['esms'], { enqueue: batchSender(sqs, 'queue-url') });
    // assess
    assert.match(String(error?.message), /3 of 10 messages not queued/, 'the invocation still fails');
    const refused = log.lines.filter((line) => line.message === 'sweep: re-checks not queued');
    // Before, the line said all 10 of the batch were not queued, and the sweep line left out the 7 that were.
    assert.equal(refused[0]?.fields?.count, 3);
    assert.equal(log.lines.find((line) => line.message === 'sweep')?.fields?.queued, queued.length, 'the sweep line counts what was queued');
  });
});

describe('an expectation written by another program, its fields not as the gateway writes them', () => {
  /** A sweep of TeleSign's subjects: what it queued, whether or not it failed (an item above is still unleasable, for good). */
  async function sweepQueued(): Promise<RecheckMessage[]> {
    const queued: RecheckMessage[] = [];
    await sweep([getProvider('telesign')], {
      store: env.store,
      enqueue: async (messages) => void queued.push(...messages.map((message) => RecheckMessageSchema.parse(JSON.parse(message.body)))),
      now,
      log: captureLogger(),
      reconcile: DEFAULT_RECONCILE,
    }).catch((error: unknown) => assert.match((error as Error).message, /recheck lease/, 'only the unleasable item fails the sweep'));
    return queued;
  }

  test('a count of re-checks held as text ("0") is asked about and moves on the schedule, not skipped as a lease taken over for ever', async () => {
    // prepare: an expectation put with the SDK by a program that writes every number as text
    const subjectId = uniqueId('SWEEP-TEXT-COUNT');
    await env.client.send(
      new PutItemCommand({
        TableName: env.tableName,
        Item: marshall({ ...keys.state('telesign', subjectId), provider: 'telesign', subjectId, expectedAt: now().toISOString(), rechecks: '0', recheckShard: 'telesign#0', recheckAt: new Date(clock + 60_000).toISOString() }),
      }),
    );
    clock += 10 * 60_000;
    // act
    const [message, ...more] = (await sweepQueued()).filter((queued) => queued.subjectId === subjectId);
    assert.ok(message, 'leased and queued');
    assert.equal(more.length, 0);
    const result = await recheck(message);
    // assess
    assert.equal(result.kind, 'rechecked', `asked about, not skipped (${result.kind === 'skipped' ? result.reason : ''})`);
    const state = await storedState(env, 'telesign', subjectId);
    assert.equal(state?.rechecks, 1, 'one step of the schedule counted, as a number');
    assert.ok(String(state?.recheckAt) > now().toISOString(), 'a next re-check is scheduled');
    assert.equal(state?.recheckShard, recheckShard('telesign', subjectId, undefined, DEFAULT_RECONCILE.shards));
  });

  test('a number in a projected field that JavaScript cannot hold (more digits than a double keeps) does not keep the sweep from queuing every other subject', async () => {
    // prepare: an expectation whose `expectedAt` another program wrote as a huge number, due first in its shard
    const bad = uniqueId('SWEEP-HUGE-NUMBER');
    const good = uniqueId('SWEEP-GOOD');
    await env.client.send(
      new PutItemCommand({
        TableName: env.tableName,
        Item: {
          ...marshall({ ...keys.state('telesign', bad), provider: 'telesign', subjectId: bad, recheckShard: recheckShard('telesign', good, undefined, DEFAULT_RECONCILE.shards), recheckAt: new Date(clock + 1_000).toISOString() }),
          expectedAt: { N: '12345678901234567890.5' },
        },
      }),
    );
    await expectSubject(env.store, getProvider('telesign'), { subjectId: good }, { now: now(), policy: { ...DEFAULT_RECONCILE, providerFirstDelays: false } });
    clock += 10 * 60_000;
    // act
    const queued = await sweepQueued();
    // assess
    assert.ok(queued.some((message) => message.subjectId === good), 'the well-formed subject in the same shard is queued');
  });
  test('a state marked stale but left in a schedule\'s shard is listed as stale after one re-check, not asked about at every sweep for ever', async () => {
    // prepare: an expectation another program marked stale (to stop it) without moving it to the stale list
    const subjectId = uniqueId('SWEEP-STALE-IN-SHARD');
    await env.client.send(
      new PutItemCommand({
        TableName: env.tableName,
        Item: marshall({
          ...keys.state('temboplus', subjectId),
          provider: 'temboplus',
          subjectId,
          expectedAt: now().toISOString(),
          stale: true,
          staleAt: now().toISOString(),
          recheckShard: recheckShard('temboplus', subjectId, undefined, DEFAULT_RECONCILE.shards),
          recheckAt: new Date(clock + 60_000).toISOString(),
        }),
      }),
    );
    // act: a sweep and its re-check, then the sweeps of the next hour
    const asked: RecheckResult[] = [];
    for (let sweeps = 0; sweeps < 6; sweeps++) {
      clock += 10 * 60_000;
      for (const message of (await sweepOnce('temboplus')).filter((queued) => queued.subjectId === subjectId)) asked.push(await recheck(message));
    }
    // assess
    assert.equal(asked.length, 1, 'asked about once, then no more');
    const state = await storedState(env, 'temboplus', subjectId);
    assert.equal(state?.stale, true);
    assert.equal(state?.recheckShard, staleShard('temboplus'), 'listed with the stale subjects (npm run inspect -- --stale)');
  });
});

describe('an item in a schedule\'s shard that is no subject the worker can find', () => {
  // An application that mistyped its expectation's key: a provider the gateway does not know, or no
  // `<provider>#` in front of the subject id. The re-check reads the state at the subject's own key,
  // finds nothing (or no provider), and skips it: left on the schedule, the item was leased and
  // skipped again every 5 minutes for ever, a warning each time.
  for (const [name, item] of [
    ['a key naming no known provider', (id: string) => ({ pk: `tembo#${id}`, sk: 'STATE', provider: 'tembo', subjectId: id })],
    ['a key without "<provider>#"', (id: string) => ({ pk: id, sk: 'STATE', provider: 'temboplus', subjectId: id })],
    ['a sort key that is no state\'s', (id: string) => ({ ...keys.state('temboplus', id), sk: 'EXPECTED', provider: 'temboplus', subjectId: id })],
  ] as const) {
    test(`${name}: taken off the schedule once, with a line saying why, not leased again every 5 minutes`, async () => {
      // prepare
      const subjectId = uniqueId('SWEEP-NO-SUBJECT');
      const written = item(subjectId);
      await env.client.send(
        new PutItemCommand({
          TableName: env.tableName,
          Item: marshall({ ...written, expectedAt: now().toISOString(), recheckShard: 'temboplus#0', recheckAt: new Date(clock + 60_000).toISOString() }),
        }),
      );
      // act: the sweeps of an hour, each re-check they queue processed
      const log = captureLogger();
      const skipped: RecheckResult[] = [];
      for (let sweeps = 0; sweeps < 6; sweeps++) {
        clock += 10 * 60_000;
        const queued: RecheckMessage[] = [];
        await sweep([getProvider('temboplus')], {
          store: env.store,
          enqueue: async (messages) => void queued.push(...messages.map((message) => RecheckMessageSchema.parse(JSON.parse(message.body)))),
          now,
          log,
          reconcile: DEFAULT_RECONCILE,
        });
        for (const message of queued.filter((each) => each.subjectId === subjectId)) skipped.push(await recheck(message));
      }
      // assess
      assert.ok(skipped.length <= 1, `queued ${skipped.length} times in an hour`);
      const stored = await env.store.getItem({ pk: written.pk, sk: written.sk });
      assert.equal(stored?.recheckAt, undefined, 'off the byRecheck index');
      assert.equal(stored?.recheckShard, undefined);
      assert.equal(stored?.expectedAt !== undefined, true, 'the item itself is left as it was written');
      const lines = log.lines.filter((line) => line.message === 'sweep: not a subject, taken off the schedule');
      assert.equal(lines.length, 1, 'one line says so');
    });
  }
});

describe('an expectation written with its first re-check years ahead', () => {
  test('a TemboPlus claim the endpoint does not know yet is asked about on the schedule, not at that time', async () => {
    // prepare: the expectation, due in ten years (a typo, a wrong clock)
    const ref = uniqueId('SWEEP-FAR-RECHECK');
    clock = Math.max(clock, Date.now());
    await env.client.send(
      new PutItemCommand({
        TableName: env.tableName,
        Item: marshall({ ...keys.state('temboplus', ref), provider: 'temboplus', subjectId: ref, expectedAt: now().toISOString(), recheckShard: 'temboplus#0', recheckAt: new Date(clock + 10 * 365 * 86_400_000).toISOString() }),
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
    // act: its callback, which the endpoint does not know yet; then the endpoint knows it, and the sweeps of the next ten minutes run
    const completed = { ...sampleJson('temboplus', 'remittance-completed'), partnerReference: ref };
    const message = await queueMessageFor(env.secrets, 'temboplus', completed);
    // (The endpoint not knowing it, the record is handed back for a few receives before it is stored so.)
    for (let receive = 1; receive <= QUEUE.maxReceiveCount; receive++) {
      if (await processMessage(message, env.deps({ now }), receive).then(() => true, () => false)) break;
    }
    const claimed = await storedState(env, 'temboplus', ref);
    env.simulator.report(completed);
    const results: RecheckResult[] = [];
    for (let minute = 0; minute < 10; minute++) {
      clock += 60_000;
      for (const message of (await sweepOnce('temboplus')).filter((queued) => queued.subjectId === ref)) results.push(await recheck(message));
    }
    // assess
    assert.equal(claimed?.confirmation, 'not_found', 'the endpoint did not know it on arrival');
    assert.ok(Date.parse(String(claimed?.recheckAt)) <= clock, `next asked at ${String(claimed?.recheckAt)}`);
    assert.equal(results.length, 1, 'asked once within ten minutes');
    const state = await storedState(env, 'temboplus', ref);
    assert.deepEqual([state?.status, state?.outcome, state?.confirmation], ['COMPLETED', 'succeeded', 'confirmed']);
  });
});

describe('an expectation written with a version past 2^53', () => {
  test('its callbacks and re-checks are stored, each write one version on, as DynamoDB holds it exactly', async () => {
    // prepare: a program that counts its own writes wrote `version` beyond what a double holds (read back as a BigInt)
    const ref = uniqueId('SWEEP-HUGE-VERSION');
    clock = Math.max(clock, Date.now());
    await env.client.send(
      new PutItemCommand({
        TableName: env.tableName,
        Item: {
          ...marshall({ ...keys.state('temboplus', ref), provider: 'temboplus', subjectId: ref, expectedAt: now().toISOString(), recheckShard: 'temboplus#0', recheckAt: new Date(clock + 60_000).toISOString() }),
          version: { N: '9007199254740993' },
        },
      }),
    );
    const versionStored = async () => (await env.client.send(new GetItemCommand({ TableName: env.tableName, Key: marshall(keys.state('temboplus', ref)) }))).Item?.version?.N;
    // act: its SUBMITTED callback (the endpoint knows it), then the re-check the sweep queues
    const submitted = { ...sampleJson('temboplus', 'remittance-completed'), partnerReference: ref, status: 'SUBMITTED', statusCode: 'SUBMITTED', completedAt: null };
    env.simulator.report(submitted);
    const stored = await processMessage(await queueMessageFor(env.secrets, 'temboplus', submitted), env.deps({ now })).then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    const afterCallback = await versionStored();
    clock += 2 * 60 * 60_000;
    const results: RecheckResult[] = [];
    for (const message of (await sweepOnce('temboplus')).filter((queued) => queued.subjectId === ref)) results.push(await recheck(message));
    // assess
    assert.equal(stored, undefined, `the callback is stored (${stored?.message})`);
    assert.equal(afterCallback, '9007199254740994');
    assert.deepEqual(results.map((result) => result.kind), ['rechecked']);
    assert.equal(await versionStored(), '9007199254740996', 'the lease and the re-check each one on');
    const state = await storedState(env, 'temboplus', ref);
    assert.deepEqual([state?.status, state?.confirmation, state?.rechecks], ['SUBMITTED', 'confirmed', 1]);
  });
});

describe('an expectation written with a version no integer a double holds: a fraction past 2^53, or text', () => {
  for (const [label, written, afterCallback, afterRecheck] of [
    ['a fraction past 2^53', { N: '123456789012345678901.5' }, '123456789012345678902', '123456789012345678904'],
    ['text', { S: '7' }, '8', '10'],
  ] as const) {
    test(`${label}: its callback writes the next integer as a number, so the sweep can lease it and its re-check is asked`, async () => {
      // prepare: a program wrote `version` read back as its digits (a NumberValue) or as text
      const ref = uniqueId('SWEEP-ODD-VERSION');
      clock = Math.max(clock, Date.now());
      await env.client.send(
        new PutItemCommand({
          TableName: env.tableName,
          Item: {
            ...marshall({ ...keys.state('temboplus', ref), provider: 'temboplus', subjectId: ref, expectedAt: now().toISOString(), recheckShard: 'temboplus#0', recheckAt: new Date(clock + 60_000).toISOString() }),
            version: written,
          },
        }),
      );
      const versionStored = async () => (await env.client.send(new GetItemCommand({ TableName: env.tableName, Key: marshall(keys.state('temboplus', ref)) }))).Item?.version;
      // act: its SUBMITTED callback (the endpoint knows it), then the re-check the sweep queues
      const submitted = { ...sampleJson('temboplus', 'remittance-completed'), partnerReference: ref, status: 'SUBMITTED', statusCode: 'SUBMITTED', completedAt: null };
      env.simulator.report(submitted);
      await processMessage(await queueMessageFor(env.secrets, 'temboplus', submitted), env.deps({ now }));
      const afterTheCallback = await versionStored();
      clock += 2 * 60 * 60_000;
      const results: RecheckResult[] = [];
      for (const message of (await sweepOnce('temboplus')).filter((queued) => queued.subjectId === ref)) results.push(await recheck(message));
      // assess
      assert.deepEqual(afterTheCallback, { N: afterCallback }, 'was: the text of the version with "1" put after it');
      assert.deepEqual(results.map((result) => result.kind), ['rechecked'], 'was: the sweep could not lease it (a number added to text), never asked again');
      assert.deepEqual(await versionStored(), { N: afterRecheck });
      const state = await storedState(env, 'temboplus', ref);
      assert.deepEqual([state?.status, state?.confirmation, state?.rechecks], ['SUBMITTED', 'confirmed', 1]);
    });
  }
});

describe('a stack that deploys some providers (the providers setting, PROVIDERS on the sweep and the worker)', () => {
  test("the sweep queues the deployed providers' re-checks only; a re-check of another provider is skipped unasked, its secret never read, and its subject stays due", async () => {
    // prepare: due subjects of eSMS (deployed) and of TemboPlus (left out, its secret not deployed).
    // (TeleSign is left out too: another test leaves an item in its shard no lease can be written to.)
    const esms = uniqueId('DEPLOYED-ESMS');
    const tembo = uniqueId('LEFT-OUT-TEMBO');
    await expectSubject(env.store, getProvider('esms'), { subjectId: esms }, { now: now(), policy: DEFAULT_RECONCILE });
    await expectSubject(env.store, getProvider('temboplus'), { subjectId: tembo }, { now: now(), policy: DEFAULT_RECONCILE });
    clock += 3_600_000;
    const deployed = deployedProvidersEnv({ PROVIDERS: 'esms,identomat' });
    const queued: string[] = [];
    const sweepLog = captureLogger();
    const secretsRead: string[] = [];
    const base = env.deps({ now, asking: true });
    const deps = { ...base, deployedProviders: deployed.map((provider) => provider.id), secrets: { get: (provider: { id: string }) => (secretsRead.push(provider.id), base.secrets.get(provider as never)) } };
    // act: a sweep as the Lambda runs it, then the worker given the sweep's messages and one
    // TemboPlus re-check queued before the provider was left out
    const result = await createSweepHandler({ store: env.store, enqueue: async (messages) => void queued.push(...messages.map((m) => m.body)), now, log: sweepLog, reconcile: DEFAULT_RECONCILE }, deployed)();
    const messages = queued.map((body) => RecheckMessageSchema.parse(JSON.parse(body)));
    const before = await env.store.getState('temboplus', tembo);
    const leftOver: RecheckMessage = { v: 1, kind: 'recheck', provider: 'temboplus', subjectId: tembo, at: now().toISOString(), rechecks: 0 };
    const skippedResult = await processRecheck(leftOver, deps);
    const asked = await Promise.all(messages.filter((m) => m.subjectId === esms).map((m) => processRecheck(m, deps)));
    // assess
    assert.deepEqual(Object.keys(result.providers), ['esms', 'identomat'], 'only the deployed providers are swept');
    assert.ok(messages.some((m) => m.subjectId === esms), "the deployed provider's subject is queued");
    assert.ok(!messages.some((m) => m.provider === 'temboplus'), 'no re-check of the provider left out');
    assert.deepEqual(skippedResult, { kind: 'skipped', reason: 'provider not deployed (the providers setting)' });
    assert.ok(!secretsRead.includes('temboplus'), 'its secret was never read');
    assert.deepEqual(await env.store.getState('temboplus', tembo), before, 'its subject is untouched, still due, for when it is deployed again');
    assert.equal(asked[0]?.kind, 'rechecked');
    assert.equal((await env.store.getState('esms', esms))?.rechecks, 1);
  });

  test('PROVIDERS unset means every provider; an id the registry does not know fails the start, naming it', () => {
    assert.equal(deployedProvidersEnv({}).length, deployedProvidersEnv({ PROVIDERS: 'telesign,esms,temboplus,relid,identomat,standard-webhooks' }).length);
    assert.throws(() => deployedProvidersEnv({ PROVIDERS: 'telesign,tembo' }), /PROVIDERS names an unknown provider "tembo"; known: telesign, esms/);
  });
});

describe('a re-check further ahead than any wait the gateway sets, and no callback to replace it', () => {
  /** One sweep of TemboPlus at the clock's time under `policy`: the re-checks it queued for `subjectIds`, and its log. */
  async function sweepWith(policy: ReconcilePolicy, subjectIds: readonly string[]) {
    const log = captureLogger();
    const queued: RecheckMessage[] = [];
    await sweep([getProvider('temboplus')], {
      store: env.store,
      enqueue: async (messages) => void queued.push(...messages.map((message) => RecheckMessageSchema.parse(JSON.parse(message.body)))),
      now,
      log,
      reconcile: policy,
    });
    return { queued: queued.filter((message) => subjectIds.includes(message.subjectId)), log };
  }

  /** A TemboPlus state written by another program (or under another schedule), pending at `recheckAt`. */
  async function pending(subjectId: string, recheckAt: string, fields: Record<string, unknown> = {}): Promise<void> {
    await env.client.send(
      new PutItemCommand({
        TableName: env.tableName,
        Item: marshall({
          ...keys.state('temboplus', subjectId),
          provider: 'temboplus',
          subjectId,
          expectedAt: now().toISOString(),
          recheckShard: recheckShard('temboplus', subjectId, undefined, DEFAULT_RECONCILE.shards),
          recheckAt,
          ...fields,
        }),
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  /** The stored item's `recheckAt` and `version`, as DynamoDB holds them. */
  const stored = async (subjectId: string) => {
    const item = (await env.client.send(new GetItemCommand({ TableName: env.tableName, Key: marshall(keys.state('temboplus', subjectId)), ConsistentRead: true }))).Item;
    return { recheckAt: item?.recheckAt?.S, version: item?.version?.N };
  };

  test("an expectation 5 years ahead, or as text that sorts after any time, is asked about within the schedule's first step; one the schedule set is left as it is", async () => {
    // prepare: expectations an application wrote with a first re-check 5 years ahead, as a time not
    // as toISOString() writes it, and as words; and subjects pending at times the gateway sets (the
    // schedule's longest step, 2 days; a fault's longest back-off; an hour's Retry-After; a lease)
    clock = Math.max(clock, Date.now());
    const far = {
      [uniqueId('SWEEP-FAR-5Y')]: new Date(clock + 5 * 365 * 86_400_000).toISOString(),
      [uniqueId('SWEEP-FAR-Y9999')]: '9999-12-31T23:59:59Z',
      [uniqueId('SWEEP-FAR-TEXT')]: 'when the transfer settles',
    };
    for (const [subjectId, recheckAt] of Object.entries(far)) await pending(subjectId, recheckAt);
    const near: Record<string, string> = {};
    for (const seconds of [172_800, DEFAULT_RECONCILE.faultBackoffCapSeconds * 1.25, 3_600, DEFAULT_RECONCILE.leaseSeconds]) {
      const subjectId = uniqueId(`SWEEP-NEAR-${seconds}`);
      near[subjectId] = new Date(clock + seconds * 1000).toISOString();
      await pending(subjectId, near[subjectId], { rechecks: 6, version: 3 });
    }
    const ids = [...Object.keys(far), ...Object.keys(near)];
    // act: a sweep, then the sweep a minute later, and the re-checks it queues
    const swept = clock;
    const first = await sweepWith(DEFAULT_RECONCILE, ids);
    const moved = Object.fromEntries(await Promise.all(Object.keys(far).map(async (subjectId) => [subjectId, (await stored(subjectId)).recheckAt])));
    clock += DEFAULT_RECONCILE.intervalsSeconds[0] * 1000;
    const second = await sweepWith(DEFAULT_RECONCILE, ids);
    const results = await Promise.all(second.queued.map(recheck));
    // assess
    assert.deepEqual(first.queued, [], 'nothing due yet');
    for (const subjectId of Object.keys(far)) {
      assert.equal(moved[subjectId], new Date(swept + DEFAULT_RECONCILE.intervalsSeconds[0] * 1000).toISOString(), `${far[subjectId]}: moved to the schedule's first step`);
    }
    assert.deepEqual(second.queued.map((message) => message.subjectId).sort(), Object.keys(far).sort(), 'each asked about a minute after the sweep, no other');
    assert.ok(results.every((result) => result.kind === 'rechecked' && result.asked === 'not_found'), JSON.stringify(results));
    for (const subjectId of Object.keys(far)) {
      const state = await storedState(env, 'temboplus', subjectId);
      assert.equal(state?.rechecks, 1, 'on the schedule from its first step');
      assert.ok(Date.parse(String(state?.recheckAt)) <= clock + DEFAULT_RECONCILE.intervalsSeconds[1] * 1000, `next at ${String(state?.recheckAt)}`);
    }
    for (const [subjectId, recheckAt] of Object.entries(near)) {
      assert.deepEqual(await stored(subjectId), { recheckAt, version: '3' }, 'a time the gateway sets is not touched');
    }
    const lines = first.log.lines.filter((line) => line.message === 'sweep: re-check further ahead than the schedule sets, moved to its next step');
    for (const recheckAt of Object.values(far)) assert.equal(lines.filter((line) => line.fields?.recheckAt === recheckAt).length, 1, `one line naming ${recheckAt}`);
    const counted = first.log.lines.find((line) => line.message === 'sweep')?.fields?.providers as Record<string, { moved: number }> | undefined;
    assert.ok((counted?.temboplus.moved ?? 0) >= 3, `the sweep line counts them: ${JSON.stringify(counted)}`);
  });

  test('after a deploy that shortens the schedule, a re-check set under the longer one moves to the new next step, or is asked once more and goes stale', async () => {
    // prepare: subjects pending under the default schedule (1m … 1d, 2d), and the schedule shortened to 1m,5m,30m,1h,2h,4h,8h
    clock = Math.max(clock, Date.now());
    const shortened: ReconcilePolicy = { ...DEFAULT_RECONCILE, intervalsSeconds: [60, 300, 1_800, 3_600, 7_200, 14_400, 28_800] };
    const [sixth, past, kept] = [uniqueId('SWEEP-SHORT-SIXTH'), uniqueId('SWEEP-SHORT-PAST'), uniqueId('SWEEP-SHORT-KEPT')];
    const expectedAt = new Date(clock - 3 * 86_400_000).toISOString();
    // Its 6th re-check a day ahead (the old schedule's step); under the new one, 4 hours.
    await pending(sixth, new Date(clock + 86_400_000).toISOString(), { expectedAt, rechecks: 5, version: 9 });
    // Its 8th two days ahead: the new schedule has no 8th step.
    await pending(past, new Date(clock + 2 * 86_400_000).toISOString(), { expectedAt, rechecks: 7, version: 9 });
    // Its 5th five hours ahead: within the new schedule's longest step (8 hours).
    const keptAt = new Date(clock + 5 * 3_600_000).toISOString();
    await pending(kept, keptAt, { expectedAt, rechecks: 4, version: 9 });
    const ids = [sixth, past, kept];
    // act: a sweep under the new schedule, and the sweep a minute later with the re-checks it queues
    const swept = clock;
    const first = await sweepWith(shortened, ids);
    const after = { sixth: await stored(sixth), past: await stored(past), kept: await stored(kept) };
    clock += 60_000;
    const second = await sweepWith(shortened, ids);
    const results = await Promise.all(second.queued.map((message) => processRecheck(message, env.deps({ now, asking: true, reconcile: shortened }))));
    // assess
    assert.deepEqual(first.queued, []);
    assert.equal(after.sixth.recheckAt, new Date(swept + 14_400_000).toISOString(), "the new schedule's 6th step from now");
    assert.equal(after.past.recheckAt, new Date(swept).toISOString(), 'due now: no step left');
    assert.deepEqual(after.kept, { recheckAt: keptAt, version: '9' }, 'a time the new schedule could set is not touched');
    assert.deepEqual(second.queued.map((message) => message.subjectId), [past], 'the one past the schedule is asked once more');
    assert.deepEqual(results.map((result) => result.kind === 'rechecked' && result.stale), [true], 'then stale, listed for a person');
    assert.equal((await storedState(env, 'temboplus', past))?.recheckShard, staleShard('temboplus'));
    assert.equal((await stored(sixth)).recheckAt, after.sixth.recheckAt, 'the moved one waits for its step');
  });

  test('ten expectations with the version as text at the far end of a shard are moved too, and do not keep the next one from moving', async () => {
    // prepare: ten expectations written with `version` as text and `recheckAt` as words (the far end
    // of shard temboplus#0), and one written 5 years ahead in the same shard
    clock = Math.max(clock, Date.now());
    const textual = Array.from({ length: 10 }, (_, n) => uniqueId(`SWEEP-FAR-TEXT-VERSION-${n}`));
    for (const subjectId of textual) {
      await pending(subjectId, `zzz when ${subjectId} settles`, { recheckShard: 'temboplus#0' });
      await env.client.send(new UpdateItemCommand({ TableName: env.tableName, Key: marshall(keys.state('temboplus', subjectId)), UpdateExpression: 'SET version = :text', ExpressionAttributeValues: { ':text': { S: '7' } } }));
    }
    const next = uniqueId('SWEEP-FAR-AFTER-TEXT-VERSIONS');
    await pending(next, new Date(clock + 5 * 365 * 86_400_000).toISOString(), { recheckShard: 'temboplus#0', version: 2 });
    // act: a sweep, and the next one (a page of ten a shard each)
    const swept = clock;
    const outcomes: (Error | undefined)[] = [];
    for (let round = 0; round < 2; round++) {
      outcomes.push(
        await sweepWith(DEFAULT_RECONCILE, [...textual, next]).then(
          () => undefined,
          (error: unknown) => error as Error,
        ),
      );
    }
    // assess
    const firstStep = new Date(swept + DEFAULT_RECONCILE.intervalsSeconds[0] * 1000).toISOString();
    assert.deepEqual(outcomes.map((outcome) => outcome?.message), [undefined, undefined], 'each sweep succeeds (was: the lease failed on each of the ten, every sweep)');
    assert.deepEqual(await stored(next), { recheckAt: firstStep, version: '3' }, 'was: never moved, behind ten items no sweep could move');
    for (const subjectId of textual) assert.deepEqual(await stored(subjectId), { recheckAt: firstStep, version: '8' }, 'moved, its version the next integer as a number');
  });

  for (const [label, written] of [
    ['a number past 10^125', { N: '9.9999999999999999999999999999999999999E+125' }],
    ['38 nines', { N: '99999999999999999999999999999999999999' }],
    ['38 digits as text', { S: '12345678901234567890123456789012345678' }],
    ['null', { NULL: true }],
    ['a boolean', { BOOL: true }],
    ['a list', { L: [{ N: '1' }] }],
    ['words', { S: 'seven' }],
  ] as [string, AttributeValue][]) {
    test(`an expectation 5 years ahead with its version written as ${label} is moved to the schedule`, async () => {
      // prepare: an expectation 5 years ahead whose version DynamoDB cannot add one to
      clock = Math.max(clock, Date.now());
      const subjectId = uniqueId('SWEEP-FAR-ODD-VERSION');
      await pending(subjectId, new Date(clock + 5 * 365 * 86_400_000).toISOString());
      await env.client.send(new UpdateItemCommand({ TableName: env.tableName, Key: marshall(keys.state('temboplus', subjectId)), UpdateExpression: 'SET version = :odd', ExpressionAttributeValues: { ':odd': written } }));
      // act
      const swept = clock;
      const outcome = await sweepWith(DEFAULT_RECONCILE, [subjectId]).then(
        () => undefined,
        (error: unknown) => error as Error,
      );
      // assess
      assert.equal(outcome, undefined, `the sweep succeeds (was: ${outcome?.message})`);
      assert.equal((await stored(subjectId)).recheckAt, new Date(swept + DEFAULT_RECONCILE.intervalsSeconds[0] * 1000).toISOString(), 'was: left where it was, every sweep failing');
      assert.ok((await stored(subjectId)).version !== undefined, 'its version now a number');
    });
  }

  test('an item under a key that is no subject\'s, 5 years ahead, is taken off the schedule at once, not moved onto it', async () => {
    // prepare: an expectation written under a mistyped provider, its first re-check years ahead
    clock = Math.max(clock, Date.now());
    const subjectId = uniqueId('SWEEP-FAR-NO-SUBJECT');
    const key = { pk: `tembo#${subjectId}`, sk: 'STATE' };
    await env.client.send(
      new PutItemCommand({
        TableName: env.tableName,
        Item: marshall({ ...key, provider: 'tembo', subjectId, expectedAt: now().toISOString(), recheckShard: 'temboplus#0', recheckAt: new Date(clock + 5 * 365 * 86_400_000).toISOString() }),
      }),
    );
    // act
    const { log } = await sweepWith(DEFAULT_RECONCILE, [subjectId]);
    // assess
    const item = await env.store.getItem(key);
    assert.equal(item?.recheckAt, undefined, 'off the byRecheck index');
    assert.equal(item?.recheckShard, undefined);
    assert.equal(item?.expectedAt !== undefined, true, 'the item itself is left as it was written');
    assert.equal(log.lines.filter((line) => line.message === 'sweep: not a subject, taken off the schedule').length, 1);
  });
});
