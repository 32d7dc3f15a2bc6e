import assert from 'node:assert/strict';
import { DeleteItemCommand, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigurationError, DependencyError } from '../../functions/shared/errors.ts';
import { maskPhoneNumbers } from '../../functions/shared/log.ts';
import { QUEUE, RETENTION, TABLE } from '../../functions/core/pipeline-definition.ts';
import { requeuedFromQuarantine, type QueueMessage } from '../../functions/core/queue-message.ts';
import type { CallbackStore } from '../../functions/core/store.ts';
import { createSecretCache } from '../../functions/core/secrets.ts';
import { processMessage, type WorkerDependencies } from '../../functions/core/worker.ts';
import { processRecheck } from '../../functions/core/recheck.ts';
import { createWorkerHandler, retryDelaySeconds } from '../../functions/handlers/worker.ts';
import { listSamples } from '../../local/samples.ts';
import { kitOf } from '../providers/index.ts';
import {
  byOutcome,
  queueMessageFor,
  queueMessageForQuery,
  sampleJson,
  sqsEvent,
  sqsRecord,
  startWorkerEnvironment,
  storedEvents,
  storedObservations,
  storedPartition,
  storedState,
  storedSubject,
  uniqueId,
  type WorkerEnvironment,
} from '../support/integration-worker.ts';
import { leaks } from '../support/log-leaks.ts';
import { suiteResource } from '../support/suite-resource.ts';

/**
 * The worker against the real DynamoDB engine (DynamoDB Local, in memory) and a simulated
 * TemboPlus status endpoint, fed with messages made by the real ingest core.
 */

let env: WorkerEnvironment;
suiteResource(
  async () => {
    env = await startWorkerEnvironment();
  },
  async () => {
    await env?.stop();
  },
);

/**
 * `npm run inspect` as a user on this machine runs it: against this environment's table, named in a
 * local runtime file of its own (a temporary folder, removed when the test ends).
 */
function inspectCommand(t: TestContext, folderPrefix: string): (...args: string[]) => SpawnSyncReturns<string> {
  const dataDir = mkdtempSync(join(tmpdir(), folderPrefix));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  writeFileSync(join(dataDir, 'runtime.json'), JSON.stringify({ pid: process.pid, dynamodbEndpoint: env.dynamo.endpoint, tableName: env.tableName, region: 'us-east-1' }));
  const root = fileURLToPath(new URL('../../', import.meta.url));
  return (...args) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'local/inspect.ts', ...args, '--data-dir', dataDir], { cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env, NODE_NO_WARNINGS: '1' } });
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A TeleSign SMS delivery report for `referenceId`. */
function teleSignReport(referenceId: string, code: number, updatedOn: string): Record<string, unknown> {
  return { ...sampleJson('telesign', 'sms-dlr-success'), reference_id: referenceId, status: { code, updated_on: updatedOn, description: `code ${code}` } };
}

const TEMBO_STATUS_CODES: Record<string, string> = {
  SUBMITTED: 'SUBMITTED',
  COMPLETED: 'PAYMENT_SUCCESS',
  FAILED: 'PAYMENT_FAILED',
  REVERSED: 'PAYMENT_REVERSED',
};

/** A TemboPlus transfer (callback body = status answer) for `partnerReference`. */
function transfer(partnerReference: string, status: string, updatedAt = '2025-01-01T10:00:05Z'): Record<string, unknown> {
  return {
    ...sampleJson('temboplus', 'remittance-completed'),
    partnerReference,
    status,
    statusCode: TEMBO_STATUS_CODES[status],
    updatedAt,
    completedAt: status === 'SUBMITTED' ? null : updatedAt,
  };
}

function message(providerId: string, body: unknown, request?: { requestId?: string; receivedAt?: string }): Promise<QueueMessage> {
  return queueMessageFor(env.secrets, providerId, body, request);
}

/**
 * Worker dependencies whose Identomat secret has no companyKey: Identomat is not asked, its
 * callbacks are believed as they come (the path the Identomat tests here cover; asking result/ is
 * covered by test/integration/identomat-status.test.ts).
 */
function unaskedIdentomat(overrides: Parameters<WorkerEnvironment['deps']>[0] = {}) {
  const { companyKey: _companyKey, ...identomat } = env.secrets.identomat;
  const secrets: Record<string, Record<string, unknown>> = { ...env.secrets, identomat };
  return env.deps({ secrets: createSecretCache(async (provider) => JSON.stringify(secrets[provider.id])), ...overrides });
}

/**
 * Worker dependencies whose REL-ID secret has no baseUrl: REL-ID is not asked, its callbacks are
 * believed as they come (the path the label tests here cover; asking getRVNStatus is covered by
 * test/integration/relid-status.test.ts).
 */
function unaskedRelId(overrides: Parameters<WorkerEnvironment['deps']>[0] = {}) {
  const { baseUrl: _baseUrl, ...relid } = env.secrets.relid;
  const secrets: Record<string, Record<string, unknown>> = { ...env.secrets, relid };
  return env.deps({ secrets: createSecretCache(async (provider) => JSON.stringify(secrets[provider.id])), ...overrides });
}

function simulatorCalls(partnerReference: string) {
  return env.simulator.requests.filter((request) => request.subjectId === partnerReference);
}

/** Every ordering of `items`. */
function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, index) => permutations([...items.slice(0, index), ...items.slice(index + 1)]).map((rest) => [item, ...rest]));
}

/** The parts of a state item that must not depend on arrival order. */
function finalState(state: Record<string, unknown> | undefined) {
  assert.ok(state, 'state item stored');
  const { status, outcome, terminal, statusAt, eventCount, confirmation, confirmedStatus } = state;
  return { status, outcome, terminal, statusAt, eventCount, confirmation, confirmedStatus };
}

/** A store whose putState fails `times` times, as if the worker died between the event write and the state write. */
/** The store, failing the first event-item write after the state was written (a crash between the two). */
function crashingBeforeEventWrite(store: CallbackStore, times = 1): CallbackStore & { crashes: number } {
  let remaining = times;
  return {
    ...store,
    crashes: 0,
    async putOnce(item) {
      if (remaining > 0 && String(item.sk).startsWith('EVENT#')) {
        remaining -= 1;
        this.crashes += 1;
        throw new DependencyError('dynamodb', 'simulated crash before the event write');
      }
      return store.putOnce(item);
    },
  };
}

function crashingBeforeStateWrite(store: CallbackStore, times = 1): CallbackStore & { crashes: number } {
  let remaining = times;
  return {
    ...store,
    crashes: 0,
    async putState(state, expectedVersion) {
      if (remaining > 0) {
        remaining -= 1;
        this.crashes += 1;
        throw new DependencyError('dynamodb', 'simulated crash before the state write');
      }
      return store.putState(state, expectedVersion);
    },
  };
}

describe('dedupe under redelivery', () => {
  test('the same message processed 5 times in a row is stored once', async () => {
    // prepare
    const ref = uniqueId('TS-SEQ');
    const queued = await message('telesign', teleSignReport(ref, 200, 'Thu, 23 Jun 2022 19:03:44 GMT'));
    const deps = env.deps();
    // act
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await processMessage(queued, deps));
    // assess
    assert.deepEqual(
      results.map((result) => result.kind),
      ['stored', 'duplicate', 'duplicate', 'duplicate', 'duplicate'],
    );
    assert.equal((await storedEvents(env, 'telesign', ref)).length, 1);
    const state = await storedState(env, 'telesign', ref);
    assert.equal(state?.status, '200');
    assert.equal(state?.outcome, 'succeeded');
    assert.equal(state?.eventCount, 1);
    assert.equal(state?.version, 1, 'state written once');
  });

  test('the same message processed 5 times concurrently is stored once', async () => {
    // prepare
    const ref = uniqueId('TS-PAR');
    const queued = await message('telesign', teleSignReport(ref, 200, 'Thu, 23 Jun 2022 19:03:44 GMT'));
    const deps = env.deps();
    // act
    const results = await Promise.all(Array.from({ length: 5 }, () => processMessage(queued, deps)));
    // assess
    assert.equal(results.filter((result) => result.kind === 'stored').length, 1);
    assert.equal(results.filter((result) => result.kind === 'duplicate').length, 4);
    assert.equal((await storedEvents(env, 'telesign', ref)).length, 1);
    const state = await storedState(env, 'telesign', ref);
    assert.equal(state?.status, '200');
    assert.equal(state?.eventCount, 1);
    assert.equal(state?.version, 1, 'state written once');
  });

  test('a TemboPlus message processed 5 times concurrently is stored and confirmed once', async () => {
    // prepare
    const ref = uniqueId('TP-PAR');
    env.simulator.report(transfer(ref, 'COMPLETED'));
    const queued = await message('temboplus', transfer(ref, 'COMPLETED'));
    const deps = env.deps();
    // act
    const results = await Promise.all(Array.from({ length: 5 }, () => processMessage(queued, deps)));
    // assess
    assert.equal(results.filter((result) => result.kind === 'stored').length, 1);
    assert.equal((await storedEvents(env, 'temboplus', ref)).length, 1);
    const state = await storedState(env, 'temboplus', ref);
    assert.equal(state?.status, 'COMPLETED');
    assert.equal(state?.confirmation, 'confirmed');
    assert.equal(state?.eventCount, 1);
    assert.equal(state?.version, 1);
  });

  test('the provider re-sending a callback (new request id and receive time) adds no event', async () => {
    // prepare
    const ref = uniqueId('TS-RESENT');
    const body = teleSignReport(ref, 200, 'Thu, 23 Jun 2022 19:03:44 GMT');
    const first = await message('telesign', body, { requestId: 'req-first', receivedAt: '2025-03-01T10:00:00.000Z' });
    const again = await message('telesign', body, { requestId: 'req-again', receivedAt: '2025-03-01T10:00:10.000Z' });
    const deps = env.deps();
    // act
    const results = [await processMessage(first, deps), await processMessage(again, deps)];
    // assess
    assert.deepEqual(
      results.map((result) => result.kind),
      ['stored', 'duplicate'],
    );
    const events = await storedEvents(env, 'telesign', ref);
    assert.equal(events.length, 1);
    assert.equal(events[0].requestId, 'req-first', 'the first delivery is the one kept');
    assert.equal((await storedState(env, 'telesign', ref))?.eventCount, 1);
  });
});

describe('forward-only state under reordering', () => {
  test('TeleSign 203 (earlier) arriving after 200 leaves 200', async () => {
    // prepare
    const ref = uniqueId('TS-203');
    const delivered = await message('telesign', teleSignReport(ref, 200, '2025-02-01T10:00:05Z'));
    const atGateway = await message('telesign', teleSignReport(ref, 203, '2025-02-01T10:00:01Z'));
    const deps = env.deps();
    // act
    await processMessage(delivered, deps);
    const late = await processMessage(atGateway, deps);
    // assess
    assert.equal(late.kind, 'stored');
    assert.equal(late.kind === 'stored' && late.stateChanged, false);
    const state = await storedState(env, 'telesign', ref);
    assert.equal(state?.status, '200');
    assert.equal(state?.outcome, 'succeeded');
    assert.equal(state?.terminal, true);
    assert.equal(state?.statusAt, '2025-02-01T10:00:05.000Z');
    assert.equal(state?.eventCount, 2);
    assert.equal((await storedEvents(env, 'telesign', ref)).length, 2, 'both callbacks kept in the timeline');
  });

  test('every order of TeleSign [203, 200] ends in the same state', async () => {
    // prepare
    const codes = [
      { code: 203, updatedOn: '2025-02-01T10:00:01Z' },
      { code: 200, updatedOn: '2025-02-01T10:00:05Z' },
    ];
    const deps = env.deps();
    // act
    const finals = [];
    for (const order of permutations(codes)) {
      const ref = uniqueId('TS-PERM');
      for (const { code, updatedOn } of order) await processMessage(await message('telesign', teleSignReport(ref, code, updatedOn)), deps);
      finals.push(finalState(await storedState(env, 'telesign', ref)));
    }
    // assess
    assert.equal(finals.length, 2);
    for (const state of finals) {
      assert.deepEqual(state, {
        status: '200',
        outcome: 'succeeded',
        terminal: true,
        statusAt: '2025-02-01T10:00:05.000Z',
        eventCount: 2,
        confirmation: undefined,
        confirmedStatus: undefined,
      });
    }
  });

  test('every order of TemboPlus SUBMITTED, COMPLETED, REVERSED (each confirmed) ends REVERSED', async () => {
    // prepare
    const steps = [
      { status: 'SUBMITTED', updatedAt: '2025-01-01T10:00:02Z' },
      { status: 'COMPLETED', updatedAt: '2025-01-01T10:00:05Z' },
      { status: 'REVERSED', updatedAt: '2025-01-02T08:00:00Z' },
    ];
    const deps = env.deps();
    // act
    const finals = [];
    for (const order of permutations(steps)) {
      const ref = uniqueId('TP-PERM');
      for (const { status, updatedAt } of order) {
        // The simulator agrees with each callback as it arrives.
        env.simulator.report(transfer(ref, status, updatedAt));
        const result = await processMessage(await message('temboplus', transfer(ref, status, updatedAt)), deps);
        assert.equal(result.kind === 'stored' && result.confirmation, 'confirmed');
      }
      finals.push(finalState(await storedState(env, 'temboplus', ref)));
    }
    // assess
    assert.equal(finals.length, 6);
    for (const state of finals) {
      assert.deepEqual(state, {
        status: 'REVERSED',
        outcome: 'failed',
        terminal: true,
        statusAt: '2025-01-02T08:00:00.000Z',
        eventCount: 3,
        confirmation: 'confirmed',
        confirmedStatus: 'REVERSED',
      });
    }
  });
  test('distinct callbacks for one transfer processed concurrently all count, and the state ends right', async () => {
    // prepare
    const ref = uniqueId('TP-RACE');
    env.simulator.report(transfer(ref, 'REVERSED', '2025-01-02T08:00:00Z'));
    const queued = await Promise.all(
      [
        ['SUBMITTED', '2025-01-01T10:00:02Z'],
        ['COMPLETED', '2025-01-01T10:00:05Z'],
        ['REVERSED', '2025-01-02T08:00:00Z'],
      ].map(([status, updatedAt]) => message('temboplus', transfer(ref, status, updatedAt))),
    );
    const deps = env.deps();
    // act
    await Promise.all(queued.map((one) => processMessage(one, deps)));
    // assess
    assert.equal((await storedEvents(env, 'temboplus', ref)).length, 3);
    const state = await storedState(env, 'temboplus', ref);
    assert.equal(state?.eventCount, 3, 'no event lost to the optimistic-locking race');
    assert.equal(state?.status, 'REVERSED');
  });

  test('40 distinct callbacks for one subject in 4 batches at once: nearly all stored on their first receive, each once', async () => {
    // prepare: four worker invocations take a batch of 10 each, as the SQS event source runs them
    const ref = uniqueId('TS-BURST');
    const queued = await Promise.all(Array.from({ length: 40 }, (_, i) => message('telesign', teleSignReport(ref, 200, new Date(Date.UTC(2022, 5, 23, 19, 0, i)).toUTCString()))));
    const deps = env.deps();
    // Four workers (Lambda instances), each with its own batch: they race for the subject's state.
    const workers = [0, 1, 2, 3].map(() => createWorkerHandler({ deps, retryBaseSeconds: 10, maxReceiveCount: QUEUE.maxReceiveCount, delayRetry: async () => undefined }));
    const handler = workers[0];
    const records = queued.map((one) => sqsRecord(one));
    const failedOn = (responses: { batchItemFailures: { itemIdentifier: string }[] }[]) => new Set(responses.flatMap((response) => response.batchItemFailures.map((failure) => failure.itemIdentifier)));
    // act
    const failedFirst = failedOn(await Promise.all([0, 10, 20, 30].map((start, index) => workers[index](sqsEvent(records.slice(start, start + 10))))));
    // What failed comes back on later receives, as SQS redelivers it.
    let failed = failedFirst;
    for (let receive = 2; failed.size > 0 && receive <= QUEUE.maxReceiveCount; receive++) {
      const again = queued.map((one, i) => ({ one, id: records[i].messageId })).filter(({ id }) => failed.has(id));
      failed = failedOn([await handler(sqsEvent(again.map(({ one, id }) => sqsRecord(one, { messageId: id, receiveCount: receive }))))]);
    }
    // assess
    // Retried at once, the losers of each race met again: 11 to 22 of the 40 used up their
    // attempts on the first receive. With a pause at random between attempts, 0 or 1 did (on
    // a loaded machine too).
    assert.ok(failedFirst.size <= 9, `${failedFirst.size} of 40 callbacks failed their first receive`);
    assert.equal(failed.size, 0, 'every callback stored before its receives ran out');
    const events = await storedEvents(env, 'telesign', ref);
    assert.equal(events.length, 40, 'each callback stored');
    assert.equal(new Set(events.map((event) => event.requestId)).size, 40, 'each callback stored once');
    const stored = deps.log.lines.filter((line) => line.message === 'stored' && line.fields?.result === 'stored');
    assert.equal(stored.length, 40, 'each callback counted once');
    const state = await storedState(env, 'telesign', ref);
    assert.equal(state?.eventCount, 40);
    assert.equal(state?.version, 40, 'the state written once per callback');
  });

  test('10 distinct callbacks for one subject in one batch: written one after another, no write lost to a race', async () => {
    // prepare
    const ref = uniqueId('TS-BATCH');
    const queued = await Promise.all(Array.from({ length: 10 }, (_, i) => message('telesign', teleSignReport(ref, i === 9 ? 200 : 203, new Date(Date.UTC(2022, 5, 23, 19, 0, i)).toUTCString()))));
    const healthy = env.deps();
    const writes = { written: 0, conflict: 0 };
    const store: CallbackStore = {
      ...healthy.store,
      async putState(state, expectedVersion) {
        const result = await healthy.store.putState(state, expectedVersion);
        writes[result]++;
        return result;
      },
    };
    const deps = { ...healthy, store };
    const handler = createWorkerHandler({ deps, retryBaseSeconds: 10, maxReceiveCount: QUEUE.maxReceiveCount, delayRetry: async () => undefined });
    // act
    const response = await handler(sqsEvent(queued.map((one) => sqsRecord(one))));
    // assess
    assert.deepEqual(response.batchItemFailures, [], 'every record stored on its first receive');
    // Before, the ten raced each other's conditional puts: each lost race a write paid for and a pause.
    assert.deepEqual(writes, { written: 10, conflict: 0 });
    const events = await storedEvents(env, 'telesign', ref);
    assert.equal(new Set(events.map((event) => event.requestId)).size, 10, 'each callback stored once');
    const state = await storedState(env, 'telesign', ref);
    assert.equal(state?.eventCount, 10);
    assert.equal(state?.version, 10);
    assert.equal(state?.status, '200', 'the latest report is the status');
  });

  test('a record that read the state before another of its batch wrote, and reaches its turn after that write is done, reads again: no write lost', async () => {
    // prepare: two reports of one message; the second record's read of the state answers only once
    // the first record's write is done (as on a loaded machine), so its turn is free when it comes.
    const ref = uniqueId('TS-LATE-TURN');
    const queued = await Promise.all([203, 200].map((code, i) => message('telesign', teleSignReport(ref, code, new Date(Date.UTC(2022, 5, 23, 19, 0, i)).toUTCString()))));
    const healthy = env.deps();
    const writes = { written: 0, conflict: 0 };
    let firstWrite!: () => void;
    const firstWriteDone = new Promise<void>((resolve) => (firstWrite = resolve));
    let reads = 0;
    const store: CallbackStore = {
      ...healthy.store,
      async getState(...args) {
        const read = ++reads;
        const state = await healthy.store.getState(...args);
        if (read === 2) await firstWriteDone;
        return state;
      },
      async putState(state, expectedVersion) {
        const result = await healthy.store.putState(state, expectedVersion);
        writes[result]++;
        firstWrite();
        return result;
      },
    };
    const handler = createWorkerHandler({ deps: { ...healthy, store }, retryBaseSeconds: 10, maxReceiveCount: QUEUE.maxReceiveCount, delayRetry: async () => undefined });
    // act
    const response = await handler(sqsEvent(queued.map((one) => sqsRecord(one))));
    // assess
    assert.deepEqual(response.batchItemFailures, []);
    // Before, the turn was forgotten on release: the second record wrote from its stale read and lost.
    assert.deepEqual(writes, { written: 2, conflict: 0 });
    const state = await storedState(env, 'telesign', ref);
    assert.equal(state?.eventCount, 2);
    assert.equal(state?.version, 2);
  });

  test('an expectation an application wrote with numbers JavaScript cannot hold: its callbacks are stored, and those numbers written back exactly', async () => {
    // prepare: an expectation with fields of its own, one a fraction past 2^53 (which unmarshall threw on)
    const ref = uniqueId('TS-NUMBERS');
    const key = { pk: { S: `telesign#${ref}` }, sk: { S: 'STATE' } };
    const numbers = { fraction: { N: '12345678901234567890.5' }, exponent: { N: '1.5E+100' }, integer: { N: '123456789012345678901234567890' }, small: { N: '0.25' } };
    await env.client.send(new PutItemCommand({ TableName: env.tableName, Item: { ...key, provider: { S: 'telesign' }, subjectId: { S: ref }, expectedAt: { S: new Date().toISOString() }, ...numbers } }));
    const before = (await env.client.send(new GetItemCommand({ TableName: env.tableName, Key: key, ConsistentRead: true }))).Item!;
    // act
    const result = await processMessage(await message('telesign', teleSignReport(ref, 200, 'Thu, 23 Jun 2022 19:00:00 GMT')), env.deps());
    // assess
    // Before, every read of this state threw: the callback failed each receive, into the DLQ.
    assert.equal(result.kind, 'stored');
    const after = (await env.client.send(new GetItemCommand({ TableName: env.tableName, Key: key, ConsistentRead: true }))).Item!;
    assert.equal(after.status?.S, '200');
    for (const name of Object.keys(numbers)) assert.deepEqual(after[name], before[name], `${name} written back as it was`);
  });

  test('TemboPlus moved on: a late SUBMITTED callback is a mismatch on its own item, older news for the state TemboPlus\'s answer confirms; the agreeing COMPLETED callback confirms it too', async () => {
    // prepare
    const ref = uniqueId('TP-MOVED-ON');
    env.simulator.report(transfer(ref, 'COMPLETED', '2025-01-01T10:00:05Z'));
    const submitted = await message('temboplus', transfer(ref, 'SUBMITTED', '2025-01-01T10:00:02Z'));
    const completed = await message('temboplus', transfer(ref, 'COMPLETED', '2025-01-01T10:00:05Z'));
    const deps = env.deps();
    // act
    const first = await processMessage(submitted, deps);
    const afterFirst = await storedState(env, 'temboplus', ref);
    const second = await processMessage(completed, deps);
    // assess
    assert.equal(first.kind === 'stored' && first.confirmation, 'mismatch');
    assert.equal(afterFirst?.status, 'COMPLETED', "TemboPlus's answer is believed at once");
    // The status in place is TemboPlus's own answer: confirmed, whatever the late SUBMITTED said (its
    // item keeps its mismatch). Flagged, the state's verdict hung on which of two reports wrote first.
    assert.equal(afterFirst?.confirmation, 'confirmed');
    assert.equal(afterFirst?.confirmedStatus, 'COMPLETED');
    const [late] = (await storedEvents(env, 'temboplus', ref)).filter((event) => event.status === 'SUBMITTED');
    assert.deepEqual([late?.confirmation, late?.differences], ['mismatch', ['status', 'statusCode']]);
    assert.equal(second.kind === 'stored' && second.confirmation, 'confirmed');
    const state = await storedState(env, 'temboplus', ref);
    assert.equal(state?.status, 'COMPLETED');
    assert.equal(state?.eventCount, 2);
    assert.equal(state?.confirmation, 'confirmed', 'the current status has now been claimed and confirmed');
    assert.equal(state?.confirmedStatus, 'COMPLETED');
  });
});

describe('crash between the state write and the event write', () => {
  test('a crash before the state write leaves nothing, and the retry stores the event once', async () => {
    // prepare
    const ref = uniqueId('TS-CRASH');
    const queued = await message('telesign', teleSignReport(ref, 200, '2025-02-01T10:00:05Z'));
    const store = crashingBeforeStateWrite(env.store);
    const deps = env.deps({ store });
    // act
    await assert.rejects(processMessage(queued, deps), DependencyError);
    const afterCrash = { events: (await storedEvents(env, 'telesign', ref)).length, state: await storedState(env, 'telesign', ref) };
    const redelivered = await processMessage(queued, deps);
    // assess
    assert.equal(store.crashes, 1);
    assert.deepEqual(afterCrash, { events: 0, state: undefined });
    assert.equal(redelivered.kind, 'stored');
    assert.equal((await storedEvents(env, 'telesign', ref)).length, 1);
    const state = await storedState(env, 'telesign', ref);
    assert.equal(state?.status, '200');
    assert.equal(state?.eventCount, 1);
  });

  test('a crash after the state write: the redelivery stores the event item and counts nothing twice', async () => {
    // prepare
    const ref = uniqueId('TS-CRASH2');
    const queued = await message('telesign', teleSignReport(ref, 200, '2025-02-01T10:00:05Z'));
    const store = crashingBeforeEventWrite(env.store);
    const deps = env.deps({ store });
    // act
    await assert.rejects(processMessage(queued, deps), DependencyError);
    const afterCrash = { events: (await storedEvents(env, 'telesign', ref)).length, count: (await storedState(env, 'telesign', ref))?.eventCount };
    const redelivered = await processMessage(queued, deps);
    const again = await processMessage(queued, deps);
    // assess
    assert.equal(store.crashes, 1);
    assert.deepEqual(afterCrash, { events: 0, count: 1 }, 'the state moved first; the event item is missing');
    assert.equal(redelivered.kind, 'stored', 'the redelivery writes the missing event item');
    assert.equal(again.kind, 'duplicate');
    assert.equal((await storedEvents(env, 'telesign', ref)).length, 1);
    const state = await storedState(env, 'telesign', ref);
    assert.equal(state?.status, '200');
    assert.equal(state?.eventCount, 1, 'counted once');
  });

  test("a new claim costs one read (the state); the claim's item is read only once the state may hold it", async () => {
    // prepare: a TemboPlus transfer, whose claim decides whether to ask again (TemboPlus is asked)
    const ref = uniqueId('TP-READS');
    env.simulator.report(transfer(ref, 'COMPLETED'));
    const queued = await message('temboplus', transfer(ref, 'COMPLETED'));
    const reads: string[] = [];
    const counting: CallbackStore = {
      ...env.store,
      getState: (...args) => (reads.push('state'), env.store.getState(...args)),
      getItem: (key, options) => (reads.push(`item ${key.sk.startsWith('EVENT#') ? 'claim' : key.sk}`), env.store.getItem(key, options)),
    };
    const store = crashingBeforeEventWrite(counting);
    const deps = env.deps({ store });
    // act: the first delivery dies after its state write; the redelivery finds the state remembering the claim
    await assert.rejects(processMessage(queued, deps), DependencyError);
    const firstDelivery = reads.splice(0);
    const redelivered = await processMessage(queued, deps);
    const secondDelivery = reads.splice(0);
    const again = await processMessage(queued, deps);
    const thirdDelivery = reads.splice(0);
    // assess
    assert.deepEqual(firstDelivery, ['state'], 'no claim can be stored without a state: not read');
    assert.deepEqual(secondDelivery, ['state', 'item claim'], 'the state remembers the claim: its item is read (not there yet)');
    assert.deepEqual(thirdDelivery, ['state', 'item claim'], 'read again: it holds the verdict, so no second ask');
    assert.equal(redelivered.kind, 'stored');
    assert.equal(again.kind, 'duplicate');
    assert.equal(simulatorCalls(ref).length, 2, 'asked on the first two deliveries (no claim item yet), not on the third');
    assert.equal((await storedEvents(env, 'temboplus', ref)).length, 1);
    const state = await storedState(env, 'temboplus', ref);
    assert.equal(state?.confirmation, 'confirmed');
    assert.equal(state?.eventCount, 1);
  });

  test('TemboPlus: a confirmed claim is not asked again on redelivery', async () => {
    // prepare
    const ref = uniqueId('TP-CRASH');
    env.simulator.report(transfer(ref, 'COMPLETED'));
    const queued = await message('temboplus', transfer(ref, 'COMPLETED'));
    const deps = env.deps();
    // act
    await processMessage(queued, deps);
    const result = await processMessage(queued, deps);
    // assess
    assert.equal(result.kind, 'duplicate');
    assert.equal(simulatorCalls(ref).length, 1, 'one status call for one confirmed callback');
    const state = await storedState(env, 'temboplus', ref);
    assert.equal(state?.confirmation, 'confirmed');
    assert.equal(state?.eventCount, 1);
  });
});

describe('TemboPlus verdicts are never frozen', () => {
  test('a mismatch is asked again on redelivery: once the status endpoint caught up, the claim is confirmed', async () => {
    // prepare: the callback says COMPLETED while the endpoint still says SUBMITTED
    const ref = uniqueId('TP-LAG');
    env.simulator.report(transfer(ref, 'SUBMITTED', '2025-01-01T10:00:02Z'));
    const queued = await message('temboplus', transfer(ref, 'COMPLETED'));
    const deps = env.deps();
    // act
    await assert.rejects(processMessage(queued, deps, 1), DependencyError, 'a claim ahead of the answer is retried');
    const lagging = await storedState(env, 'temboplus', ref);
    env.simulator.report(transfer(ref, 'COMPLETED'));
    const result = await processMessage(queued, deps, 2);
    // assess
    assert.equal(lagging?.status, 'SUBMITTED', "the endpoint's answer is what is believed");
    assert.equal(lagging?.confirmation, 'mismatch');
    assert.equal(result.kind === 'duplicate' && result.confirmation, 'confirmed');
    const state = await storedState(env, 'temboplus', ref);
    assert.equal(state?.status, 'COMPLETED');
    assert.equal(state?.confirmation, 'confirmed');
    assert.equal(state?.eventCount, 1);
    const [claim] = await storedEvents(env, 'temboplus', ref);
    assert.equal(claim.confirmation, 'confirmed');
    assert.equal(claim.asks, 2);
    assert.equal(simulatorCalls(ref).length, 2);
  });

  test('asking is bounded: a claim is put to the endpoint at most maxAsksPerClaim times', async () => {
    // prepare
    const ref = uniqueId('TP-BOUND');
    env.simulator.report(transfer(ref, 'FAILED'));
    const queued = await message('temboplus', transfer(ref, 'COMPLETED'));
    const deps = env.deps();
    // act: redelivered far more often than the bound, each on its last attempt so nothing retries
    for (let i = 0; i < QUEUE.maxAsksPerClaim + 3; i++) await processMessage(queued, deps, QUEUE.settleAttempts);
    // assess
    assert.equal(simulatorCalls(ref).length, QUEUE.maxAsksPerClaim);
    const state = await storedState(env, 'temboplus', ref);
    assert.equal(state?.status, 'FAILED');
    assert.equal(state?.confirmation, 'mismatch');
    assert.equal(state?.eventCount, 1);
  });

  test('same status, different amount: a mismatch naming the field, never confirmed', async () => {
    // prepare
    const ref = uniqueId('TP-AMOUNT');
    const truth = transfer(ref, 'COMPLETED');
    env.simulator.report(truth);
    const queued = await message('temboplus', { ...truth, receiverAmount: Number(truth.receiverAmount ?? 0) + 1000, receiverAccount: '255700000999' });
    // act
    const result = await processMessage(queued, env.deps(), QUEUE.settleAttempts);
    // assess
    assert.equal(result.kind === 'stored' && result.confirmation, 'mismatch');
    const state = await storedState(env, 'temboplus', ref);
    assert.equal(state?.status, 'COMPLETED', "TemboPlus's answer is the status");
    assert.equal(state?.confirmation, 'mismatch');
    assert.deepEqual(state?.differences, ['receiverAmount', 'receiverAccount']);
  });

  test("a forged early callback cannot take the genuine one's event, nor block a genuine REVERSED", async () => {
    // prepare: someone with the URL token claims REVERSED before anything happened
    const ref = uniqueId('TP-FORGED');
    env.simulator.report(transfer(ref, 'COMPLETED'));
    const forged = await message('temboplus', { ...transfer(ref, 'REVERSED', '2025-01-01T10:00:06Z'), receiverAccount: '255799999999' });
    const deps = env.deps();
    await processMessage(forged, deps, QUEUE.settleAttempts);
    const afterForgery = await storedState(env, 'temboplus', ref);
    // act: the transfer really is reversed later, and TemboPlus sends the genuine callback
    const genuineReversal = transfer(ref, 'REVERSED', '2025-01-02T08:00:00Z');
    env.simulator.report(genuineReversal);
    const genuine = await processMessage(await message('temboplus', genuineReversal), deps);
    // assess
    assert.equal(afterForgery?.status, 'COMPLETED', 'the forged claim was not believed');
    assert.equal(afterForgery?.confirmation, 'mismatch');
    assert.equal(genuine.kind, 'stored', 'the genuine callback is an event of its own');
    assert.equal(genuine.kind === 'stored' && genuine.confirmation, 'confirmed');
    const state = await storedState(env, 'temboplus', ref);
    assert.equal(state?.status, 'REVERSED');
    assert.equal(state?.confirmation, 'confirmed');
    assert.equal((await storedEvents(env, 'temboplus', ref)).length, 2);
  });

  test('two callbacks that differ only in a nested field are two events, each kept', async () => {
    // prepare: the same transfer's fields, and a member holding an object (no documented field
    // does; a field TemboPlus adds, or a forger's) that differs between the two
    const ref = uniqueId('TP-NESTED');
    env.simulator.report(transfer(ref, 'COMPLETED'));
    const first = { ...transfer(ref, 'COMPLETED'), fees: { charged: '100' } };
    const second = { ...transfer(ref, 'COMPLETED'), fees: { charged: '200' } };
    const deps = env.deps();
    // act
    const results = [await processMessage(await message('temboplus', first), deps), await processMessage(await message('temboplus', second), deps)];
    // assess
    assert.deepEqual(results.map((result) => result.kind), ['stored', 'stored']);
    const kept = (await storedEvents(env, 'temboplus', ref)).map((event) => (event.payload as { fees?: { charged?: string } }).fees?.charged).sort();
    assert.deepEqual(kept, ['100', '200']);
  });
});

describe('TemboPlus confirmation through the simulated status endpoint', () => {
  test('confirmed: the simulator agrees', async () => {
    // prepare
    const ref = uniqueId('TP-OK');
    env.simulator.report(transfer(ref, 'COMPLETED'));
    const queued = await message('temboplus', transfer(ref, 'COMPLETED'));
    const started = Date.now();
    // act
    const result = await processMessage(queued, env.deps());
    // assess
    assert.deepEqual(result, { kind: 'stored', subjectId: ref, stateChanged: true, confirmation: 'confirmed' });
    const state = await storedState(env, 'temboplus', ref);
    assert.equal(state?.status, 'COMPLETED');
    assert.equal(state?.outcome, 'succeeded');
    assert.equal(state?.confirmation, 'confirmed');
    assert.equal(state?.confirmedStatus, 'COMPLETED');
    assert.ok(Date.parse(String(state?.confirmedAt)) >= started - 1000, `confirmedAt ${String(state?.confirmedAt)}`);
    const [event] = await storedEvents(env, 'temboplus', ref);
    assert.equal(event.confirmation, 'confirmed');
    assert.equal(event.confirmedStatus, 'COMPLETED');
    const calls = simulatorCalls(ref);
    assert.equal(calls.length, 1);
    assert.equal(calls[0].authorized, true);
    assert.match(String(calls[0].requestId), UUID);
    assert.equal(calls[0].status, 200);
  });

  test('mismatch: TemboPlus says FAILED where the callback says COMPLETED, and TemboPlus is believed', async () => {
    // prepare
    const ref = uniqueId('TP-MISMATCH');
    env.simulator.report(transfer(ref, 'FAILED'));
    const queued = await message('temboplus', transfer(ref, 'COMPLETED'));
    // act
    const result = await processMessage(queued, env.deps());
    // assess
    assert.equal(result.kind === 'stored' && result.confirmation, 'mismatch');
    const state = await storedState(env, 'temboplus', ref);
    assert.equal(state?.status, 'FAILED');
    assert.equal(state?.outcome, 'failed');
    assert.equal(state?.confirmation, 'mismatch');
    assert.equal(state?.confirmedStatus, 'FAILED');
    assert.equal(state?.[TABLE.outcomeIndex.partitionKey], 'temboplus#failed');
    const events = await storedEvents(env, 'temboplus', ref);
    assert.equal(events.length, 1);
    assert.equal(events[0].status, 'COMPLETED', 'the event keeps what the callback claimed');
    assert.equal(events[0].confirmation, 'mismatch');
    assert.equal(events[0].confirmedStatus, 'FAILED');
    const answers = (await storedObservations(env, 'temboplus', ref)).filter((item) => item.source === 'status-endpoint');
    assert.deepEqual(answers.map((answer) => answer.status), ['FAILED'], "TemboPlus's answer is kept beside the claim");
  });

  test('not_found: retried as "not known yet", then recorded but never applied', async () => {
    // prepare
    const ref = uniqueId('TP-UNKNOWN');
    env.simulator.forget(ref);
    const queued = await message('temboplus', transfer(ref, 'COMPLETED'));
    // act: the first receives fail (SQS retries with back-off); the last one takes the verdict
    await assert.rejects(processMessage(queued, env.deps(), 1), DependencyError);
    await assert.rejects(processMessage(queued, env.deps(), QUEUE.settleAttempts - 1), DependencyError);
    const stateWhileRetrying = await storedState(env, 'temboplus', ref);
    const result = await processMessage(queued, env.deps(), QUEUE.settleAttempts);
    // assess
    assert.equal(stateWhileRetrying?.status, undefined, 'nothing believed while the endpoint may still catch up');
    assert.equal(stateWhileRetrying?.confirmation, 'not_found');
    assert.equal(result.kind === 'duplicate' && result.confirmation, 'not_found');
    const state = await storedState(env, 'temboplus', ref);
    assert.equal(state?.status, undefined, 'no status believed');
    assert.equal(state?.outcome, 'pending');
    assert.equal(state?.terminal, false);
    assert.equal(state?.confirmation, 'not_found');
    assert.equal(state?.eventCount, 1);
    const [event] = await storedEvents(env, 'temboplus', ref);
    assert.equal(event.status, 'COMPLETED');
    assert.equal(event.confirmation, 'not_found');
    assert.deepEqual(simulatorCalls(ref).map((call) => call.status), [404, 404, 404]);
  });

  test('not_found, then the transfer becomes known: the retry confirms it', async () => {
    // prepare
    const ref = uniqueId('TP-LATE');
    env.simulator.forget(ref);
    const queued = await message('temboplus', transfer(ref, 'COMPLETED'));
    await assert.rejects(processMessage(queued, env.deps(), 1), DependencyError);
    env.simulator.report(transfer(ref, 'COMPLETED'));
    // act
    const result = await processMessage(queued, env.deps(), 2);
    // assess
    assert.equal(result.kind === 'duplicate' && result.confirmation, 'confirmed', 'the claim was recorded at the first try');
    const state = await storedState(env, 'temboplus', ref);
    assert.equal(state?.status, 'COMPLETED');
    assert.equal(state?.confirmation, 'confirmed');
  });

  test('500: the record fails with nothing applied, and a redelivery after recovery confirms it', async () => {
    // prepare
    const ref = uniqueId('TP-500');
    env.simulator.report(transfer(ref, 'COMPLETED'));
    const queued = await message('temboplus', transfer(ref, 'COMPLETED'));
    const deps = env.deps();
    env.simulator.setFault({ status: 500 });
    // act
    const failures = [];
    for (let attempt = 0; attempt < 2; attempt++) failures.push(await processMessage(queued, deps).catch((error: unknown) => error));
    const duringOutage = { events: (await storedEvents(env, 'temboplus', ref)).length, state: await storedState(env, 'temboplus', ref) };
    env.simulator.setFault(undefined);
    const recovered = await processMessage(queued, deps);
    // assess
    for (const failure of failures) assert.ok(failure instanceof DependencyError, String(failure));
    assert.deepEqual(duringOutage, { events: 0, state: undefined });
    assert.equal(recovered.kind === 'stored' && recovered.confirmation, 'confirmed');
    const state = await storedState(env, 'temboplus', ref);
    assert.equal(state?.status, 'COMPLETED');
    assert.equal(state?.confirmation, 'confirmed');
    assert.deepEqual(
      simulatorCalls(ref).map((call) => call.status),
      [500, 500, 200],
    );
  });

  test('429, a timeout and a hang fail the record as a dependency fault, nothing stored', async () => {
    // prepare
    const ref = uniqueId('TP-SLOW');
    env.simulator.report(transfer(ref, 'COMPLETED'));
    const queued = await message('temboplus', transfer(ref, 'COMPLETED'));
    const deps = env.deps({ timeoutMs: 300 });
    // act
    // The 429 is asked with the usual timeout: it is about reading the answer, and on a busy machine
    // an answer from the simulator can take longer than 300 ms (then it read as a timeout, not a 429).
    env.simulator.setFault({ status: 429, times: 1 });
    const tooMany = await processMessage(queued, env.deps()).catch((error: unknown) => error);
    // Far slower than the 300 ms timeout.
    env.simulator.setFault({ delayMs: 5_000, times: 1 });
    const slow = await processMessage(queued, deps).catch((error: unknown) => error);
    env.simulator.setFault({ hang: true, times: 1 });
    const hung = await processMessage(queued, deps).catch((error: unknown) => error);
    // assess
    for (const failure of [tooMany, slow, hung]) assert.ok(failure instanceof DependencyError, String(failure));
    assert.match((tooMany as Error).message, /429/);
    // Given up at the timeout, before the simulator answered: said by the fault, not by a stopwatch.
    for (const failure of [slow, hung]) assert.match((failure as Error).message, /no answer within 300 ms/);
    assert.equal((await storedEvents(env, 'temboplus', ref)).length, 0);
    assert.equal(await storedState(env, 'temboplus', ref), undefined);
  });

  test('429 with Retry-After: the callback is stored at once, unconfirmed, and the endpoint is not asked again before the Retry-After, on arrival or by a re-check', async () => {
    // prepare
    const ref = uniqueId('TP-BUSY');
    env.simulator.report(transfer(ref, 'COMPLETED'));
    const queued = await message('temboplus', transfer(ref, 'COMPLETED'));
    const deps = env.deps();
    // act: the first receive meets 429 "come back in 15 minutes"
    env.simulator.setFault({ status: 429, retryAfter: '900', times: 1 });
    const arrivedAt = Date.now();
    const result = await processMessage(queued, deps);
    // assess: stored (not handed back for a redelivery to ask again), with no verdict, re-checked no earlier than asked
    assert.equal(result.kind, 'stored');
    assert.equal(result.kind === 'stored' ? result.confirmation : 'none', undefined);
    const [event] = await storedEvents(env, 'temboplus', ref);
    assert.equal(event.status, 'COMPLETED');
    assert.equal(event.confirmation, undefined);
    assert.match(String(event.askFault), /answered 429 \(busy, retry after 900 s\)/);
    const state = await storedState(env, 'temboplus', ref);
    // TemboPlus's unauthenticated claim is not believed unconfirmed: held for the re-check to judge.
    assert.equal(state?.status, undefined);
    assert.equal(state?.unansweredClaimStatus, 'COMPLETED');
    assert.ok(Date.parse(String(state?.recheckAt)) >= arrivedAt + 900_000, `recheckAt ${String(state?.recheckAt)}`);
    assert.deepEqual(simulatorCalls(ref).map((call) => call.status), [429]);
    const stored = deps.log.lines.find((line) => line.message === 'stored');
    assert.equal(stored?.fields?.retryAfterSeconds, 900);

    // act: the re-check, when due, meets 503 with a date an hour ahead
    const dueAt = new Date(Date.parse(String(state?.recheckAt)) + 1_000);
    const recheckDeps = env.deps({ now: () => dueAt });
    env.simulator.setFault({ status: 503, retryAfter: new Date(dueAt.getTime() + 3_600_000).toUTCString(), times: 1 });
    const rechecked = await processRecheck(
      { v: 1, kind: 'recheck', provider: 'temboplus', subjectId: ref, at: dueAt.toISOString(), lease: String(state?.recheckAt), rechecks: Number(state?.rechecks ?? 0) },
      recheckDeps,
    );
    // assess: busy, not a configuration fault; asked again no earlier than the date it gave
    assert.equal(rechecked.kind === 'rechecked' ? rechecked.asked : rechecked.kind, 'fault');
    const after = await storedState(env, 'temboplus', ref);
    assert.ok(Date.parse(String(after?.recheckAt)) >= dueAt.getTime() + 3_600_000 - 1_000, `recheckAt ${String(after?.recheckAt)}`);
    assert.match(String(after?.recheckFault), /answered 503 \(busy, retry after \d+ s\)/);
    assert.equal(after?.stale, undefined);
    const line = recheckDeps.log.lines.find((each) => each.message.startsWith('recheck'));
    assert.equal(line?.message, 'recheck: status endpoint fault, asking again later');
    assert.equal(line?.level, 'WARN');
    assert.ok(Number(line?.fields?.retryAfterSeconds) >= 3_599, String(line?.fields?.retryAfterSeconds));
    assert.deepEqual(simulatorCalls(ref).map((call) => call.status), [429, 503]);
  });

  test('429 with Retry-After: 0 asks for no wait: the record fails as without one, and a redelivery confirms it', async () => {
    // prepare
    const ref = uniqueId('TP-BUSY-0');
    env.simulator.report(transfer(ref, 'COMPLETED'));
    const queued = await message('temboplus', transfer(ref, 'COMPLETED'));
    const deps = env.deps();
    env.simulator.setFault({ status: 429, retryAfter: '0', times: 1 });
    // act
    const failure = await processMessage(queued, deps).then(
      () => undefined,
      (error: unknown) => error,
    );
    const afterBusy = { events: (await storedEvents(env, 'temboplus', ref)).length, state: await storedState(env, 'temboplus', ref) };
    const redelivered = await processMessage(queued, deps);
    // assess
    assert.ok(failure instanceof DependencyError, String(failure));
    assert.equal(failure.retryAfterSeconds, 0);
    assert.deepEqual(afterBusy, { events: 0, state: undefined });
    assert.equal(redelivered.kind === 'stored' && redelivered.confirmation, 'confirmed');
    assert.deepEqual(simulatorCalls(ref).map((call) => call.status), [429, 200]);
  });

  test('403 (wrong apiToken) is a configuration fault, nothing stored', async () => {
    // prepare
    const ref = uniqueId('TP-403');
    env.simulator.report(transfer(ref, 'COMPLETED'));
    const queued = await message('temboplus', transfer(ref, 'COMPLETED'));
    // act
    const failure = await processMessage(queued, env.deps({ apiToken: 'not-the-api-token' })).catch((error: unknown) => error);
    // assess
    assert.ok(failure instanceof ConfigurationError, String(failure));
    assert.match(failure.message, /403/);
    assert.deepEqual(
      simulatorCalls(ref).map(({ authorized, status }) => ({ authorized, status })),
      [{ authorized: false, status: 403 }],
    );
    assert.equal(await storedState(env, 'temboplus', ref), undefined);
  });

  test('every status call carried the Bearer token and a fresh x-request-id', () => {
    // prepare: the calls made by every test above (tests in a file run in order); the 403 cases used a wrong token on purpose
    const calls = env.simulator.requests.filter((call) => !call.subjectId.startsWith('TP-403'));
    // act
    const ids = calls.map((call) => call.requestId);
    // assess
    assert.ok(calls.length >= 20, `only ${calls.length} status calls seen`);
    assert.ok(
      calls.every((call) => call.authorized),
      'Bearer token on every call',
    );
    for (const id of ids) assert.match(String(id), UUID);
    assert.equal(new Set(ids).size, ids.length, 'no x-request-id reused');
  });
});

describe('worker handler: partial batch failures', () => {
  test('one failing record is reported alone, retried with growing back-off, and stored once TemboPlus recovers', async () => {
    // prepare
    const teleSignRef = uniqueId('TS-BATCH');
    const sessionId = uniqueId('idm-batch');
    const temboRef = uniqueId('TP-BATCH');
    env.simulator.report(transfer(temboRef, 'COMPLETED'));
    const records = [
      sqsRecord(await message('telesign', teleSignReport(teleSignRef, 200, '2025-02-01T10:00:05Z'))),
      sqsRecord(await message('temboplus', transfer(temboRef, 'COMPLETED'))),
      sqsRecord(await message('identomat', { ...sampleJson('identomat', 'session-change-approved'), sessionId })),
    ];
    const failing = records[1];
    const delays: { messageId: string; seconds: number }[] = [];
    const deps = unaskedIdentomat();
    const handler = createWorkerHandler({
      deps,
      retryBaseSeconds: 10,
      delayRetry: async (record, seconds) => void delays.push({ messageId: record.messageId, seconds }),
      // The jitter at its largest: a quarter more than the back-off.
      random: () => 1,
    });
    env.simulator.setFault({ status: 500 });
    // act
    const first = await handler(sqsEvent(records));
    const retries = [];
    for (const receiveCount of [2, 3]) retries.push(await handler(sqsEvent([{ ...failing, attributes: { ...failing.attributes, ApproximateReceiveCount: String(receiveCount) } }])));
    const storedDuringOutage = await storedState(env, 'temboplus', temboRef);
    env.simulator.setFault(undefined);
    const recovered = await handler(sqsEvent([{ ...failing, attributes: { ...failing.attributes, ApproximateReceiveCount: '4' } }]));
    // assess
    assert.deepEqual(first, { batchItemFailures: [{ itemIdentifier: failing.messageId }] });
    assert.deepEqual(retries, [first, first]);
    assert.equal((await storedState(env, 'telesign', teleSignRef))?.status, '200');
    assert.equal((await storedState(env, 'identomat', sessionId))?.status, 'APPROVED');
    assert.equal(storedDuringOutage, undefined);
    assert.deepEqual(delays, [
      { messageId: failing.messageId, seconds: 13 },
      { messageId: failing.messageId, seconds: 25 },
      { messageId: failing.messageId, seconds: 50 },
    ]);
    assert.equal(retryDelaySeconds(20, 10), 900, 'back-off capped at 15 minutes');
    assert.deepEqual(recovered, { batchItemFailures: [] });
    assert.equal((await storedState(env, 'temboplus', temboRef))?.confirmation, 'confirmed');
    const failed = deps.log.lines.filter((line) => line.message === 'record failed, will retry');
    assert.equal(failed.length, 3);
    assert.deepEqual(failed.map((line) => line.fields?.next), ['retry', 'retry', 'retry']);
  });

  test("the last receive's failure line says the record goes to the dead-letter queue, not that it will be retried", async () => {
    // prepare
    const ref = uniqueId('TP-LAST');
    const record = sqsRecord(await message('temboplus', transfer(ref, 'COMPLETED')));
    // the table failing on every receive (a status endpoint's fault is stored unconfirmed on the last one)
    const healthy = unaskedIdentomat();
    const deps = { ...healthy, store: { ...healthy.store, getState: async () => Promise.reject(new DependencyError('dynamodb', 'GetItem (state): unreachable')) } };
    const delays: number[] = [];
    const handler = createWorkerHandler({ deps, retryBaseSeconds: 10, maxReceiveCount: QUEUE.maxReceiveCount, delayRetry: async (_, seconds) => void delays.push(seconds) });
    // act
    const result = await handler(sqsEvent([{ ...record, attributes: { ...record.attributes, ApproximateReceiveCount: String(QUEUE.maxReceiveCount) } }]));
    // assess
    assert.deepEqual(result, { batchItemFailures: [{ itemIdentifier: record.messageId }] });
    const [line] = deps.log.lines.filter((each) => each.message === 'record failed, will retry');
    assert.equal(line?.fields?.next, 'dead-letter queue');
    assert.deepEqual(delays, [0], 'given back at once, for SQS to move');
  });

  test('a configuration fault (403) fails the record and is logged as an error', async () => {
    // prepare
    const ref = uniqueId('TP-403-BATCH');
    env.simulator.report(transfer(ref, 'COMPLETED'));
    const record = sqsRecord(await message('temboplus', transfer(ref, 'COMPLETED')));
    const deps = env.deps({ apiToken: 'not-the-api-token' });
    const handler = createWorkerHandler({ deps, retryBaseSeconds: 10 });
    // act
    const response = await handler(sqsEvent([record]));
    // assess
    assert.deepEqual(response, { batchItemFailures: [{ itemIdentifier: record.messageId }] });
    const errors = deps.log.lines.filter((line) => line.level === 'ERROR');
    assert.equal(errors.length, 1);
    assert.equal(errors[0].message, 'record failed: configuration');
    assert.ok(!JSON.stringify(deps.log.lines).includes('not-the-api-token'), 'the token is never logged');
  });
});

describe('quarantine', () => {
  test('an authentic but invalid TemboPlus body is stored once under temboplus!quarantine and listed as quarantined', async () => {
    // prepare
    const [invalid] = listSamples('temboplus', 'invalid');
    const body = { ...(JSON.parse(invalid.body!.toString('utf8')) as Record<string, unknown>), transactionRef: uniqueId('SAL') };
    const queued = await message('temboplus', body, { requestId: uniqueId('req-q1') });
    const resent = await message('temboplus', body, { requestId: uniqueId('req-q2') });
    const deps = env.deps();
    // act
    const results = [await processMessage(queued, deps), await processMessage(queued, deps), await processMessage(resent, deps)];
    // assess
    assert.ok(queued.quarantine, 'ingest flagged the message');
    assert.deepEqual(
      results.map((result) => result.kind),
      ['quarantined', 'quarantine_duplicate', 'quarantine_duplicate'],
    );
    const mine = (await storedPartition(env, 'temboplus!quarantine')).filter((item) => item.requestId === queued.requestId);
    assert.equal(mine.length, 1);
    const [item] = mine;
    assert.match(String(item.sk), /^QUARANTINE#/);
    assert.equal(item.reason, queued.quarantine.reason);
    assert.ok(Array.isArray(item.issues) && item.issues.length > 0, 'issues name the missing fields');
    assert.deepEqual(item.issues, queued.quarantine.issues);
    assert.deepEqual(JSON.parse(String(item.message)), queued, 'the full message, for reprocessing');
    const listed = await byOutcome(env, 'temboplus', 'quarantined');
    assert.equal(listed.filter((entry) => entry.sk === item.sk).length, 1);
    assert.equal(simulatorCalls(String(body.transactionRef)).length, 0, 'nothing to confirm');
  });

  test("two different quarantined callbacks are both kept, whatever their bytes spell: a '?' in one body, another's base64 in the other", async () => {
    // prepare: pairs the quarantine key once wrote as the same string (`<body>?<query>`)
    const marker = uniqueId('q');
    const quarantined = (raw: QueueMessage['raw'], n: number): QueueMessage => ({
      v: 1, provider: 'temboplus', receivedAt: new Date().toISOString(), requestId: `${marker}-${n}`, sourceIp: '203.0.113.9', method: 'POST',
      headers: { 'content-type': 'application/json' }, raw, quarantine: { reason: 'not valid JSON', issues: [] },
    });
    const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x41]);
    const messages = [
      quarantined({ body: `${marker}?x`, query: '' }, 1),
      quarantined({ body: marker, query: 'x?' }, 2),
      quarantined({ bodyBase64: bytes.toString('base64'), query: marker }, 3),
      quarantined({ body: bytes.toString('base64'), query: marker }, 4),
    ];
    const deps = env.deps();
    // act
    const results = [];
    for (const queued of messages) results.push(await processMessage(queued, deps));
    // assess
    assert.deepEqual(results.map((result) => result.kind), ['quarantined', 'quarantined', 'quarantined', 'quarantined']);
    const mine = (await storedPartition(env, 'temboplus!quarantine')).filter((item) => String(item.requestId).startsWith(`${marker}-`));
    assert.deepEqual(mine.map((item) => item.requestId).sort(), messages.map((queued) => queued.requestId).sort(), 'each kept');
  });
});

describe('reprocess', () => {
  test('a callback reprocess puts back that the worker quarantines again stays quarantined once reprocess removes the old item', async () => {
    // prepare: a quarantined callback, and the message reprocess requeues from its item
    const [invalid] = listSamples('temboplus', 'invalid');
    const body = { ...(JSON.parse(invalid.body!.toString('utf8')) as Record<string, unknown>), transactionRef: uniqueId('REPRO') };
    const queued = await message('temboplus', body, { requestId: uniqueId('req-repro') });
    const deps = env.deps();
    await processMessage(queued, deps);
    const [old] = (await storedPartition(env, 'temboplus!quarantine')).filter((item) => item.requestId === queued.requestId);
    const requeued = requeuedFromQuarantine(JSON.parse(String(old.message)) as QueueMessage, String(old.sk));

    // act: the worker takes the requeued message before reprocess deletes the old item (as it does
    // once the queue accepted the message), and the queue delivers it a second time
    const results = [await processMessage(requeued, deps), await processMessage(requeued, deps)];
    await env.client.send(new DeleteItemCommand({ TableName: env.tableName, Key: marshall({ pk: old.pk, sk: old.sk }) }));

    // assess: the callback is still kept, once
    assert.deepEqual(results.map((result) => result.kind), ['quarantined', 'quarantine_duplicate']);
    const kept = (await storedPartition(env, 'temboplus!quarantine')).filter((item) => item.requestId === queued.requestId);
    assert.equal(kept.length, 1);
    assert.deepEqual(JSON.parse(String(kept[0].message)), requeued, 'the message as requeued, to reprocess again');
    assert.equal((await byOutcome(env, 'temboplus', 'quarantined')).filter((entry) => entry.sk === kept[0].sk).length, 1);
  });

  test('a quarantined callback reprocess puts back and the worker quarantines again is kept no longer than the item it came from', async () => {
    // prepare: an OTP instruction (a live code: kept 24 h) whose session id holds U+FFFF: it parses,
    // so reprocess puts it back, and the worker can never store it under that id
    const otp = { ...sampleJson('identomat', 'one-time-password'), sessionId: `${uniqueId('idm-repro')}\uffff`, text: `Your code is 6867 (${uniqueId('q')})` };
    const deps = unaskedIdentomat();
    const queued = await message('identomat', otp);
    assert.equal((await processMessage(queued, deps)).kind, 'quarantined');
    const [old] = (await storedPartition(env, 'identomat!quarantine')).filter((item) => item.requestId === queued.requestId);
    assert.equal(old.sensitive, true);
    const requeued = requeuedFromQuarantine(JSON.parse(String(old.message)) as QueueMessage, String(old.sk), Number(old[TABLE.ttlAttribute]));

    // act: reprocess runs 20 hours later
    const result = await processMessage(requeued, { ...deps, now: () => new Date(Date.now() + 20 * 3600_000) });

    // assess: the copy is kept, and expires when the original did, not 24 h after the reprocess
    assert.equal(result.kind, 'quarantined');
    const [copy] = (await storedPartition(env, 'identomat!quarantine')).filter((item) => item.requestId === queued.requestId && item.sk !== old.sk);
    assert.equal(copy?.sensitive, true);
    assert.equal(copy?.[TABLE.ttlAttribute], old[TABLE.ttlAttribute]);
  });
});

describe('byOutcome index', () => {
  test('lists subjects by provider and outcome, newest first, and follows the state as it moves', async () => {
    // prepare
    const older = uniqueId('TS-GSI-OLD');
    const newer = uniqueId('TS-GSI-NEW');
    const failed = uniqueId('TS-GSI-FAIL');
    const deps = env.deps();
    // act
    await processMessage(await message('telesign', teleSignReport(older, 203, '2025-02-01T10:00:01Z')), deps);
    const pendingBefore = (await byOutcome(env, 'telesign', 'pending')).map((item) => item.subjectId);
    await processMessage(await message('telesign', teleSignReport(older, 200, '2025-02-01T10:00:05Z')), deps);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await processMessage(await message('telesign', teleSignReport(newer, 200, '2025-02-01T10:00:05Z')), deps);
    await processMessage(await message('telesign', teleSignReport(failed, 207, '2025-02-01T10:00:05Z')), deps);
    const succeeded = await byOutcome(env, 'telesign', 'succeeded');
    const pendingAfter = (await byOutcome(env, 'telesign', 'pending')).map((item) => item.subjectId);
    const failedList = (await byOutcome(env, 'telesign', 'failed')).map((item) => item.subjectId);
    // assess
    const ids = succeeded.map((item) => item.subjectId);
    assert.ok(pendingBefore.includes(older));
    assert.ok(!pendingAfter.includes(older), 'moved out of pending');
    assert.ok(ids.includes(older) && ids.includes(newer));
    assert.ok(ids.indexOf(newer) < ids.indexOf(older), 'newest first');
    const times = succeeded.map((item) => String(item.updatedAt));
    assert.deepEqual(times, [...times].sort().reverse(), 'ordered by updatedAt, descending');
    assert.ok(!ids.includes(failed));
    assert.ok(failedList.includes(failed));
    assert.equal(succeeded.find((item) => item.subjectId === newer)?.status, '200');
  });
});

describe('retention (TTL)', () => {
  const DAY = 86_400;

  test('events expire after 90 days; Identomat OTP instructions after 24 hours', async () => {
    // prepare
    const ref = uniqueId('TS-TTL');
    const sessionId = uniqueId('idm-otp');
    const otp = { ...sampleJson('identomat', 'one-time-password'), sessionId };
    const deps: WorkerDependencies & { log: { lines: unknown[] } } = unaskedIdentomat();
    const nowSeconds = Math.floor(Date.now() / 1000);
    // act
    await processMessage(await message('telesign', teleSignReport(ref, 200, '2025-02-01T10:00:05Z')), deps);
    await processMessage(await message('identomat', otp), deps);
    const [teleSignEvent] = await storedEvents(env, 'telesign', ref);
    const [otpEvent] = await storedEvents(env, 'identomat', sessionId);
    // assess
    assert.equal(RETENTION.eventDays, 90);
    const near = (actual: unknown, expected: number) =>
      assert.ok(typeof actual === 'number' && Math.abs(actual - expected) <= 120, `expiresAt ${String(actual)}, expected ≈ ${expected}`);
    near(teleSignEvent[TABLE.ttlAttribute], nowSeconds + 90 * DAY);
    near(otpEvent[TABLE.ttlAttribute], nowSeconds + 24 * 3600);
    assert.equal((otpEvent.payload as Record<string, unknown>).text, 'Your code is 6867', 'kept, briefly, so the code can be sent');
    assert.equal((await storedState(env, 'identomat', sessionId))?.[TABLE.ttlAttribute], undefined, 'state items are kept');
    const logged = JSON.stringify(deps.log.lines);
    assert.ok(!leaks(logged, '6867') && !leaks(logged, '995512345678'), 'no OTP or phone number in the logs');
  });
});

describe('log lines', () => {
  test('a status that spells a phone number is stored as it is and masked in the stored line', async () => {
    // prepare: a Standard Webhooks sender names its status (`type`) freely
    const invoice = sampleJson('standard-webhooks', 'invoice-paid');
    const id = uniqueId('in');
    const body = { ...invoice, type: 'sms.to.995512345678', data: { ...(invoice.data as Record<string, unknown>), id } };
    const deps = env.deps();
    // act
    const result = await processMessage(await message('standard-webhooks', body), deps);
    // assess
    assert.equal(result.kind, 'stored');
    const subjectId = (result as { subjectId: string }).subjectId;
    assert.equal((await storedState(env, 'standard-webhooks', subjectId))?.status, 'sms.to.995512345678', 'the table keeps the status whole');
    assert.deepEqual((await storedEvents(env, 'standard-webhooks', subjectId)).map((event) => event.status), ['sms.to.995512345678'], 'in the event too');
    const stored = deps.log.lines.find((line) => line.message === 'stored');
    assert.ok(stored, JSON.stringify(deps.log.lines));
    assert.equal(stored.fields?.status, 'sms.to.*********678');
    const logged = JSON.stringify(deps.log.lines);
    assert.ok(!leaks(logged, '995512345678'), logged);
  });
});

describe('REL-ID: only a declared approve label with a verified signature is an approval', () => {
  /** The docs' TWO-WAY sample for a fresh notification, with fields changed (`undefined` removes one). */
  function notification(changes: Record<string, unknown>): Record<string, unknown> {
    const body: Record<string, unknown> = { ...sampleJson('relid', 'callback-two-way'), notification_uuid: uniqueId('relid'), ...changes };
    for (const [key, value] of Object.entries(changes)) if (value === undefined) delete body[key];
    return body;
  }

  test('an undeclared label is stored as it came, outcome unknown, and listed by the byOutcome index', async () => {
    // prepare
    const body = notification({ action_response: 'Not me' });
    const id = String(body.notification_uuid);
    // act
    const result = await processMessage(await message('relid', body), unaskedRelId());
    const state = await storedState(env, 'relid', id);
    const [event] = await storedEvents(env, 'relid', id);
    const unknown = (await byOutcome(env, 'relid', 'unknown')).map((item) => item.subjectId);
    const succeeded = (await byOutcome(env, 'relid', 'succeeded')).map((item) => item.subjectId);
    // assess
    assert.equal(result.kind, 'stored');
    assert.equal(state?.status, 'UPDATED');
    assert.equal(state?.outcome, 'unknown');
    assert.equal(state?.terminal, true);
    assert.equal(state?.[TABLE.outcomeIndex.partitionKey], 'relid#unknown');
    assert.deepEqual(
      { action: (state?.detail as Record<string, unknown>).action, actionMeaning: (state?.detail as Record<string, unknown>).actionMeaning },
      { action: 'Not me', actionMeaning: 'undeclared' },
    );
    assert.equal(event.outcome, 'unknown');
    assert.equal((event.payload as Record<string, unknown>).action_response, 'Not me', 'the callback is kept as it came');
    assert.ok(unknown.includes(id), 'listed under relid#unknown for review');
    assert.ok(!succeeded.includes(id));
  });

  test('a declared approve label whose digital signature did not verify is not succeeded', async () => {
    // prepare
    const body = notification({ action_response: 'Approved', is_ds_verified: false });
    const id = String(body.notification_uuid);
    // act
    await processMessage(await message('relid', body), unaskedRelId());
    const state = await storedState(env, 'relid', id);
    const succeeded = (await byOutcome(env, 'relid', 'succeeded')).map((item) => item.subjectId);
    const failed = (await byOutcome(env, 'relid', 'failed')).map((item) => item.subjectId);
    // assess
    assert.notEqual(state?.outcome, 'succeeded');
    assert.equal(state?.outcome, 'failed');
    assert.equal((state?.detail as Record<string, unknown>).dsVerified, false);
    assert.ok(!succeeded.includes(id));
    assert.ok(failed.includes(id));
  });

  test('the same label with a verified signature is succeeded: the worker read the declared labels', async () => {
    // prepare
    const body = notification({ action_response: ' approved ' });
    const id = String(body.notification_uuid);
    // act
    await processMessage(await message('relid', body), unaskedRelId());
    const state = await storedState(env, 'relid', id);
    // assess
    assert.equal(state?.outcome, 'succeeded');
    assert.equal(state?.[TABLE.outcomeIndex.partitionKey], 'relid#succeeded');
  });

  test('a worker whose REL-ID secret declares no labels approves nothing', async () => {
    // prepare
    const body = notification({});
    const id = String(body.notification_uuid);
    const noLabels = { get: async () => ({ token: 'it-relid-token-3e2f' }) };
    // act
    await processMessage(await message('relid', body), env.deps({ secrets: noLabels }));
    const state = await storedState(env, 'relid', id);
    // assess
    assert.equal(state?.outcome, 'unknown');
  });

  test('an error report without status is stored (ERROR, failed), not quarantined', async () => {
    // prepare
    const id = uniqueId('relid-error');
    const body = { notification_uuid: id, response_code: 1, error_code: 3558, delivery_status: 'FAILED_TO_NOTIFY' };
    // act
    const result = await processMessage(await message('relid', body), unaskedRelId());
    const state = await storedState(env, 'relid', id);
    // assess
    assert.equal(result.kind, 'stored');
    assert.equal(state?.status, 'ERROR');
    assert.equal(state?.outcome, 'failed');
    assert.equal(state?.terminal, true);
    assert.deepEqual(
      { deliveryStatus: (state?.detail as Record<string, unknown>).deliveryStatus, errorCode: (state?.detail as Record<string, unknown>).errorCode },
      { deliveryStatus: 'FAILED_TO_NOTIFY', errorCode: 3558 },
    );
  });

  test('a result stamped before an error report still decides the notification, in either order', async () => {
    // prepare: the push failed (an error report, no update_ts: placed when received), then the
    // user approved in the app; REL-ID's result is stamped before the error report was received.
    const receivedAt = new Date().toISOString();
    const approvedAt = new Date(Date.parse(receivedAt) - 60_000).toISOString();
    const outcomes: Record<string, unknown>[] = [];
    for (const errorFirst of [true, false]) {
      const result = notification({ action_response: 'Approved', update_ts: approvedAt });
      const id = String(result.notification_uuid);
      const error = { notification_uuid: id, response_code: 1, error_code: 3558, delivery_status: 'FAILED_TO_NOTIFY' };
      const sent = errorFirst ? [error, result] : [result, error];
      // act
      for (const body of sent) await processMessage(await message('relid', body, { receivedAt }), unaskedRelId());
      const state = await storedState(env, 'relid', id);
      const events = await storedEvents(env, 'relid', id);
      outcomes.push({ errorFirst, status: state?.status, outcome: state?.outcome, terminal: state?.terminal, events: events.length });
    }
    // assess: the result decides; the error report is kept as an event either way
    assert.deepEqual(outcomes, [
      { errorFirst: true, status: 'UPDATED', outcome: 'succeeded', terminal: true, events: 2 },
      { errorFirst: false, status: 'UPDATED', outcome: 'succeeded', terminal: true, events: 2 },
    ]);
  });

  test('an error report naming a status that is no result (ACTIVE, an unlisted one) ranks below a result stamped before it', async () => {
    // prepare
    const receivedAt = new Date().toISOString();
    const approvedAt = new Date(Date.parse(receivedAt) - 60_000).toISOString();
    const outcomes: unknown[] = [];
    for (const status of ['ACTIVE', 'FAILED', 'UPDATED']) {
      const result = notification({ action_response: 'Approved', update_ts: approvedAt });
      const id = String(result.notification_uuid);
      const error = { notification_uuid: id, status, response_code: 1, error_code: 3558 };
      // act
      for (const body of [error, result]) await processMessage(await message('relid', body, { receivedAt }), unaskedRelId());
      const state = await storedState(env, 'relid', id);
      outcomes.push([status, state?.status, state?.outcome]);
    }
    // assess: an UPDATED that is itself an error (response_code 1) is a result, ordered by time: the later one stands
    assert.deepEqual(outcomes, [
      ['ACTIVE', 'UPDATED', 'succeeded'],
      ['FAILED', 'UPDATED', 'succeeded'],
      ['UPDATED', 'UPDATED', 'failed'],
    ]);
  });

  test('an error report still decides a notification that has no result: failed, above ACTIVE', async () => {
    // prepare
    const active = notification({ status: 'ACTIVE', action_response: undefined, update_ts: new Date().toISOString() });
    const id = String(active.notification_uuid);
    const error = { notification_uuid: id, response_code: 1, error_code: 3558 };
    // act
    await processMessage(await message('relid', error), unaskedRelId());
    await processMessage(await message('relid', active), unaskedRelId());
    const state = await storedState(env, 'relid', id);
    // assess
    assert.deepEqual([state?.status, state?.outcome, state?.terminal], ['ERROR', 'failed', true]);
  });
});

describe('Identomat sessions follow the docs: the result is the current status', () => {
  /** Receive times one second apart, in the order the callbacks are sent. */
  function clock() {
    const start = Date.now() - 60_000;
    let step = 0;
    return () => new Date(start + 1000 * step++).toISOString();
  }

  const sessionChange = (sessionId: string, result: string) => ({ ...sampleJson('identomat', 'session-change-approved'), sessionId, result });

  async function receiveAll(bodies: readonly Record<string, unknown>[], deps = unaskedIdentomat()) {
    const at = clock();
    const results = [];
    for (const body of bodies) results.push(await processMessage(await message('identomat', body, { receivedAt: at() }), deps));
    return results;
  }

  test('APPROVED → REJECTED → APPROVED ends APPROVED, with three events', async () => {
    // prepare
    const sessionId = uniqueId('idm-back');
    // act
    const results = await receiveAll(['APPROVED', 'REJECTED', 'APPROVED'].map((result) => sessionChange(sessionId, result)));
    // assess
    assert.deepEqual(results.map((result) => result.kind), ['stored', 'stored', 'stored']);
    const state = await storedState(env, 'identomat', sessionId);
    assert.equal(state?.status, 'APPROVED');
    assert.equal(state?.outcome, 'succeeded');
    assert.equal(state?.eventCount, 3);
    const events = await storedEvents(env, 'identomat', sessionId);
    assert.deepEqual(events.map((event) => event.eventKey).sort(), ['session-change|APPROVED|#1', 'session-change|APPROVED|#3', 'session-change|REJECTED|#2']);
  });

  test('REJECTED → ADDITIONAL_INFORMATION_REQUESTED ends ADDITIONAL_INFORMATION_REQUESTED (pending)', async () => {
    // prepare
    const sessionId = uniqueId('idm-info');
    // act
    await receiveAll([sessionChange(sessionId, 'REJECTED'), sessionChange(sessionId, 'ADDITIONAL_INFORMATION_REQUESTED')]);
    // assess
    const state = await storedState(env, 'identomat', sessionId);
    assert.equal(state?.status, 'ADDITIONAL_INFORMATION_REQUESTED');
    assert.equal(state?.outcome, 'pending');
    assert.equal(state?.terminal, false);
    assert.equal(state?.eventCount, 2);
  });

  test('a retry adds no event: the same message redelivered, and the provider resending it later with a new request id', async () => {
    // prepare: a session sent back from REJECTED to MANUAL_CHECK, that change delivered three times
    const sessionId = uniqueId('idm-retry');
    const at = clock();
    const deps = unaskedIdentomat();
    const rejected = await message('identomat', sessionChange(sessionId, 'REJECTED'), { receivedAt: at() });
    const manual = await message('identomat', sessionChange(sessionId, 'MANUAL_CHECK'), { receivedAt: at(), requestId: uniqueId('req-first') });
    const resent = await message('identomat', sessionChange(sessionId, 'MANUAL_CHECK'), { receivedAt: at(), requestId: uniqueId('req-resent') });
    // act
    const results = [];
    for (const queued of [rejected, manual, manual, resent]) results.push(await processMessage(queued, deps));
    // assess
    assert.deepEqual(results.map((result) => result.kind), ['stored', 'stored', 'duplicate', 'duplicate']);
    const state = await storedState(env, 'identomat', sessionId);
    assert.equal(state?.status, 'MANUAL_CHECK');
    assert.equal(state?.eventCount, 2);
    const events = await storedEvents(env, 'identomat', sessionId);
    assert.equal(events.length, 2);
    assert.equal(events.find((event) => event.status === 'MANUAL_CHECK')?.requestId, manual.requestId, 'the change is stored as first received');
  });

  test('REJECTED → APPROVED → REJECTED processed in any order (a receive failed, the queue reordered them) ends REJECTED, as received', async () => {
    // prepare: the session sent back to REJECTED; the APPROVED between may come out of the queue
    // last (its first receive failed), after the REJECTED received after it
    const at = clock();
    const results = ['REJECTED', 'APPROVED', 'REJECTED'];
    const orders = permutations([0, 1, 2]);
    const sessions = orders.map(() => uniqueId('idm-order'));
    const queued = await Promise.all(sessions.map(async (sessionId) => {
      const times = results.map(() => at());
      return Promise.all(results.map((result, index) => message('identomat', sessionChange(sessionId, result), { receivedAt: times[index] })));
    }));
    const deps = unaskedIdentomat();
    // act
    for (const [index, order] of orders.entries()) for (const position of order) await processMessage(queued[index][position], deps);
    // assess: the latest report received is the status, whatever order they were processed in
    for (const [index, order] of orders.entries()) {
      const state = await storedState(env, 'identomat', sessions[index]);
      assert.deepEqual({ status: state?.status, outcome: state?.outcome }, { status: 'REJECTED', outcome: 'failed' }, `processed in the order ${order.join(', ')}`);
    }
  });

  test('two video updates with different videoFileId are two events, each file id kept', async () => {
    // prepare
    const sessionId = uniqueId('idm-video');
    const video = (videoFileId: string) => ({ ...sampleJson('identomat', 'video-call-status-update'), sessionId, videoFileId });
    // act
    const results = await receiveAll([video('vf-first'), video('vf-second'), video('vf-second')]);
    // assess
    assert.deepEqual(results.map((result) => result.kind), ['stored', 'stored', 'duplicate']);
    const events = await storedEvents(env, 'identomat', sessionId);
    assert.deepEqual(events.map((event) => (event.payload as Record<string, unknown>).videoFileId).sort(), ['vf-first', 'vf-second']);
    const state = await storedState(env, 'identomat', sessionId);
    assert.equal(state?.eventCount, 2);
    assert.equal(state?.status, undefined, 'a video update places no session status');
  });

  test('the same OTP text to two numbers is two events', async () => {
    // prepare
    const sessionId = uniqueId('idm-otp2');
    const otp = (phoneNumber: string) => ({ ...sampleJson('identomat', 'one-time-password'), sessionId, phoneNumber });
    // act
    const results = await receiveAll([otp('+995512345678'), otp('+995599000111'), otp('+995512345678')]);
    // assess
    assert.deepEqual(results.map((result) => result.kind), ['stored', 'stored', 'duplicate']);
    const events = await storedEvents(env, 'identomat', sessionId);
    assert.deepEqual(events.map((event) => (event.payload as Record<string, unknown>).phoneNumber).sort(), ['+995512345678', '+995599000111']);
    // The whole number, not a fragment such as '995', which a random hex id holds now and then.
    for (const event of events) for (const number of ['995512345678', '995599000111']) assert.ok(!String(event.sk).includes(number), `the key shows the number: ${String(event.sk)}`);
  });

  test('an OTP instruction never changes the session status, before or after a session change', async () => {
    // prepare
    const sessionId = uniqueId('idm-otp-status');
    const otp = { ...sampleJson('identomat', 'one-time-password'), sessionId };
    const deps = unaskedIdentomat();
    // act
    await receiveAll([otp], deps);
    const afterOtp = await storedState(env, 'identomat', sessionId);
    await receiveAll([sessionChange(sessionId, 'REJECTED'), { ...otp, text: 'Your code is 1234' }, sessionChange(sessionId, 'REJECTED')], deps);
    // assess
    assert.equal(afterOtp?.status, undefined);
    assert.equal(afterOtp?.outcome, 'pending');
    const state = await storedState(env, 'identomat', sessionId);
    assert.equal(state?.status, 'REJECTED');
    assert.equal(state?.outcome, 'failed');
    assert.equal(state?.eventCount, 3, 'two instructions and one change; the second REJECTED is its retry');
  });

  test('a quarantined OTP instruction expires after the sensitive retention; a quarantined session-change does not', async () => {
    // prepare
    const otp = { ...sampleJson('identomat', 'one-time-password'), sessionId: undefined, text: `Your code is 6867 (${uniqueId('q')})` };
    const change = { ...sampleJson('identomat', 'session-change-approved'), sessionId: uniqueId('idm-q'), result: 'R'.repeat(80) };
    const deps = unaskedIdentomat();
    const nowSeconds = Math.floor(Date.now() / 1000);
    // act
    const queuedOtp = await message('identomat', otp);
    const queuedChange = await message('identomat', change);
    const results = [await processMessage(queuedOtp, deps), await processMessage(queuedChange, deps)];
    // assess
    assert.deepEqual(results.map((result) => result.kind), ['quarantined', 'quarantined']);
    const items = await storedPartition(env, 'identomat!quarantine');
    const otpItem = items.find((item) => item.requestId === queuedOtp.requestId);
    const changeItem = items.find((item) => item.requestId === queuedChange.requestId);
    const near = (actual: unknown, expected: number) =>
      assert.ok(typeof actual === 'number' && Math.abs(actual - expected) <= 120, `expiresAt ${String(actual)}, expected ≈ ${expected}`);
    near(otpItem?.[TABLE.ttlAttribute], nowSeconds + RETENTION.sensitiveHours * 3600);
    assert.equal(otpItem?.sensitive, true);
    near(changeItem?.[TABLE.ttlAttribute], nowSeconds + RETENTION.eventDays * 86_400);
    assert.equal(changeItem?.sensitive, undefined);
  });
});

describe('eSMS: a message and its recipients, found by the SMSID', () => {
  const MIXED = 'SendStatus=5&SendSuccess=1&SendFailed=1&TotalReceiver=2&TypeId=2';

  async function deliver(query: string) {
    // eSMS is asked (the kit's secret holds API keys): its simulated endpoint answers as the callback reads.
    env.simulators.esms.report(kitOf('esms').statusAnswer!({ query }));
    return processMessage(await queueMessageForQuery(env.secrets, 'esms', query), env.deps());
  }

  /** Two recipients (one first sent to the telco) and the message as a whole, all with mixed counters. */
  async function batchOfTwo(smsId: string) {
    const queries = [
      `SMSID=${smsId}&SendStatus=7&phonenumber=0901000001`,
      `SMSID=${smsId}&${MIXED}&phonenumber=0901000001`,
      `SMSID=${smsId}&${MIXED}&phonenumber=0901000002`,
      `SMSID=${smsId}&${MIXED}`,
    ];
    const results = [];
    for (const query of queries) results.push(await deliver(query));
    return { queries, results };
  }

  test('two recipients and the message as a whole: one Query on esms#<SMSID> returns every state and event', async () => {
    // prepare
    const smsId = uniqueId('esms-batch');
    // act
    const { queries, results } = await batchOfTwo(smsId);
    const retry = await deliver(queries[1]);
    const stored = await storedSubject(env, 'esms', smsId);
    // assess
    assert.deepEqual(results.map((result) => result.kind), ['stored', 'stored', 'stored', 'stored']);
    assert.equal(retry.kind, 'duplicate', 'a byte-identical retry collapses');
    const counters = { SendSuccess: '1', SendFailed: '1', TotalReceiver: '2' };
    assert.equal(stored.state?.subjectId, smsId);
    assert.equal(stored.state?.part, undefined);
    assert.equal(stored.state?.outcome, 'unknown', 'the message partly failed: not success');
    assert.deepEqual(stored.state?.detail, { inference: 'mixed', ...counters });
    assert.deepEqual([...stored.parts.keys()].sort(), ['0901000001', '0901000002']);
    for (const [phone, part] of stored.parts) {
      assert.equal(part.subjectId, smsId);
      assert.equal(part.part, phone);
      assert.equal(part.status, '5');
      assert.equal(part.outcome, 'unknown', `${phone}: the counters cannot say which recipient failed`);
      assert.equal(part.terminal, true);
      assert.deepEqual(part.detail, { inference: 'mixed', ...counters });
    }
    assert.equal(stored.parts.get('0901000001')?.eventCount, 2);
    assert.equal(stored.parts.get('0901000002')?.eventCount, 1);
    assert.equal(stored.state?.eventCount, 1);
    const claims = stored.events.filter((event) => event.source !== 'status-endpoint');
    assert.equal(claims.length, 4);
    assert.deepEqual(claims.map((event) => event.part ?? '(message)').sort(), ['(message)', '0901000001', '0901000001', '0901000002']);
    assert.equal(stored.events.length - claims.length, 4, "eSMS's answer to each callback is kept beside it");
    assert.ok(![stored.state, ...stored.parts.values(), ...stored.events].some((item) => item?.outcome === 'succeeded'), 'nothing is marked succeeded');
  });

  test('the customer-care sample (TotalReceiver 2, SendFailed 2): its recipient failed, listed under esms#failed with its part', async () => {
    // prepare
    const smsId = uniqueId('esms-cc');
    const query = listSamples('esms').find((sample) => sample.name === 'customer-care')!.query!.replace(/SMSID=[^&]+/, `SMSID=${smsId}`);
    // act
    const result = await deliver(query);
    const stored = await storedSubject(env, 'esms', smsId);
    const failed = await byOutcome(env, 'esms', 'failed');
    // assess
    assert.equal(result.kind, 'stored');
    assert.equal(stored.state, undefined, 'no callback was about the message as a whole');
    assert.equal(stored.parts.get('0901888484')?.outcome, 'failed');
    assert.equal(stored.parts.get('0901888484')?.sk, 'STATE#0901888484');
    const listed = failed.find((item) => item.subjectId === smsId);
    assert.equal(listed?.part, '0901888484', 'the index names the recipient');
  });

  test('SMSID=A:B and SMSID=A with recipient B stay apart through the worker', async () => {
    // prepare
    const a = uniqueId('esms-a');
    // act
    await deliver(`SMSID=${a}%3AB&SendStatus=5&SendSuccess=1&SendFailed=0`);
    await deliver(`SMSID=${a}&SendStatus=5&SendSuccess=0&SendFailed=1&phonenumber=B`);
    const colon = await storedSubject(env, 'esms', `${a}:B`);
    const recipient = await storedSubject(env, 'esms', a);
    // assess
    assert.equal(colon.state?.outcome, 'succeeded');
    assert.equal(colon.parts.size, 0);
    assert.equal(recipient.state, undefined);
    assert.equal(recipient.parts.get('B')?.outcome, 'failed');
  });

  test('npm run inspect -- esms <SMSID> shows the message, each recipient and the timeline', async (t) => {
    // prepare: inspect reads the table named in a local runtime file
    const smsId = uniqueId('esms-inspect');
    await batchOfTwo(smsId);
    const inspect = inspectCommand(t, 'inspect-esms-');
    // act
    // As stored (the recipients' numbers are masked without --show-sensitive: the next test)
    const json = inspect('esms', smsId, '--json', '--show-sensitive');
    const text = inspect('esms', smsId, '--show-sensitive');
    const missing = inspect('esms', `${smsId}-missing`);
    // assess
    assert.equal(json.status, 0, json.stderr);
    const view = JSON.parse(json.stdout) as { state: Record<string, unknown> | null; parts: Record<string, unknown>[]; events: Record<string, unknown>[] };
    assert.equal(view.state?.subjectId, smsId);
    assert.deepEqual(view.parts.map((part) => part.part), ['0901000001', '0901000002'], 'what is stored');
    assert.deepEqual(view.parts.map((part) => part.outcome), ['unknown', 'unknown']);
    assert.equal(view.events.length, 8, 'four callbacks and the four answers eSMS gave to them');
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /parts \(2\):/);
    assert.match(text.stdout, /0901000001[\s\S]*outcome unknown, terminal[\s\S]*inference=mixed/);
    assert.match(text.stdout, /0901000002/);
    assert.equal((text.stdout.match(/request=/g) ?? []).length, 4, 'every callback on the timeline');
    assert.equal(missing.status, 1);
    assert.match(missing.stdout, /nothing stored/);
  });

  test("npm run inspect masks each eSMS recipient's phone number, in every view and in --json, unless --show-sensitive", async (t) => {
    // prepare
    const smsId = uniqueId('esms-masked');
    await batchOfTwo(smsId);
    // and one the worker quarantines (SMSID and smsid both, as test/fixtures/esms/invalid/smsid-twice.query), its query kept whole
    const invalid = `SMSID=${smsId}-q&SendStatus=5&phonenumber=0901000003&smsid=82b0bb8aed914a0aab8deba567c9b8c2`;
    assert.equal((await processMessage(await queueMessageForQuery(env.secrets, 'esms', invalid), env.deps())).kind, 'quarantined');
    const inspect = inspectCommand(t, 'inspect-esms-');
    const recipients = ['0901000001', '0901000002', '0901000003'];
    // act
    const views = {
      text: inspect('esms', smsId),
      json: inspect('esms', smsId, '--json'),
      recent: inspect('--recent', '50', '--provider', 'esms'),
      recentJson: inspect('--recent', '50', '--provider', 'esms', '--json'),
      quarantined: inspect('--recent', '50', '--provider', 'esms', '--outcome', 'quarantined', '--json'),
    };
    const shown = inspect('esms', smsId, '--json', '--show-sensitive');
    const shownText = inspect('esms', smsId, '--show-sensitive');

    // assess: the recipients as a log line shows them, their last three digits
    for (const [view, result] of Object.entries(views)) {
      assert.equal(result.status, 0, `${view}: ${result.stderr}`);
      for (const recipient of recipients) assert.ok(!leaks(result.stdout, recipient), `${view} prints ${recipient}:\n${result.stdout}`);
    }
    assert.match(views.text.stdout, /parts \(2\):\n {4}\*{7}001\n[\s\S]*\n {4}\*{7}002\n/);
    assert.match(views.text.stdout, /part=\*{7}001/);
    assert.match(views.recent.stdout, new RegExp(`${smsId} part \\*{7}002`));
    const view = JSON.parse(views.json.stdout) as { parts: Record<string, unknown>[]; events: { part?: string; payload?: Record<string, unknown>; status?: string }[] };
    assert.deepEqual(view.parts.map((part) => part.part), ['*******001', '*******002']);
    assert.ok(view.events.some((event) => event.payload?.phonenumber === '*******001' && event.payload.SMSID === smsId), 'the payload is kept, its number masked');
    const quarantined = (JSON.parse(views.quarantined.stdout) as { items: { requestId?: string; message?: string }[] }).items.find((item) => item.message?.includes(`${smsId}-q`));
    assert.ok(quarantined?.message?.includes('phonenumber=*******003'), JSON.stringify(quarantined));
    // --show-sensitive: as stored
    assert.deepEqual((JSON.parse(shown.stdout) as { parts: Record<string, unknown>[] }).parts.map((part) => part.part), recipients.slice(0, 2));
    assert.match(shownText.stdout, /parts \(2\):\n {4}0901000001\n/);
  });
});

describe('npm run inspect --recent', () => {
  test('line their columns up after the longest value in each, "standard-webhooks" among them', async (t) => {
    // prepare: a Standard Webhooks invoice (the longest provider id) and a TeleSign report
    const invoice = sampleJson('standard-webhooks', 'invoice-paid');
    const invoiceId = uniqueId('in');
    await processMessage(await message('standard-webhooks', { ...invoice, type: 'invoice.payment_failed', data: { ...(invoice.data as Record<string, unknown>), id: invoiceId } }), env.deps());
    const referenceId = randomUUID().replaceAll('-', '').toUpperCase();
    await processMessage(await message('telesign', teleSignReport(referenceId, 200, '2025-01-01T10:00:00Z')), env.deps());
    const inspect = inspectCommand(t, 'inspect-columns-');
    // act
    const run = inspect('--recent', '50');
    // assess: changedAt, provider, outcome, status, subject: each column starts where it does on every line
    assert.equal(run.status, 0, run.stderr);
    const lines = run.stdout.trimEnd().split('\n');
    // The invoice id is the sender's own: listed masked as a log line masks it (in-12345630 is in-*****630).
    const invoiceLine = lines.find((line) => line.endsWith(maskPhoneNumbers(invoiceId))) ?? assert.fail(run.stdout);
    const reportLine = lines.find((line) => line.endsWith(referenceId)) ?? assert.fail(run.stdout);
    const starts = (line: string, cells: readonly string[]) => cells.map((cell) => line.indexOf(` ${cell}`) + 1);
    const columns = [starts(invoiceLine, ['standard-webhooks', 'failed', 'invoice.payment_failed']), starts(reportLine, ['telesign', 'succeeded', '200'])];
    assert.deepEqual(columns[0], columns[1], `columns out of line:\n${run.stdout}`);
    // (the subject: the last word of each line)
    assert.equal(invoiceLine.lastIndexOf(' '), reportLine.lastIndexOf(' '), `subjects out of line:\n${run.stdout}`);
  });
});

describe('npm run inspect: phone numbers in any provider\'s callbacks', () => {
  test('a status that spells a phone number (a Standard Webhooks type) is masked in the listing, the timeline and --json', async (t) => {
    // prepare: a sender names its status (`type`) freely, as in 'log lines' above
    const invoice = sampleJson('standard-webhooks', 'invoice-paid');
    const number = '995512345678';
    const result = await processMessage(await message('standard-webhooks', { ...invoice, type: `sms.to.${number}`, data: { ...(invoice.data as Record<string, unknown>), id: uniqueId('in') } }), env.deps());
    const subjectId = (result as { subjectId: string }).subjectId;
    const inspect = inspectCommand(t, 'inspect-status-');
    // act
    const views = { text: inspect('standard-webhooks', subjectId), json: inspect('standard-webhooks', subjectId, '--json'), recent: inspect('--recent', '50', '--provider', 'standard-webhooks') };
    // assess
    for (const [view, run] of Object.entries(views)) {
      assert.equal(run.status, 0, `${view}: ${run.stderr}`);
      assert.ok(!leaks(run.stdout, number), `${view} prints ${number}:\n${run.stdout}`);
      assert.ok(run.stdout.includes('sms.to.*********678'), `${view}:\n${run.stdout}`);
    }
  });

  test('are masked in every view and in --json unless --show-sensitive, while ids the provider made up stay readable', async (t) => {
    // prepare: a TeleSign inbound SMS (its sender in user_response.phone_number) whose reference id
    // holds a run of digits, and a TemboPlus transfer paid to a mobile number (receiverAccount)
    const referenceId = `0123456789ABCDEF${randomUUID().replaceAll('-', '').slice(0, 16).toUpperCase()}`;
    const inbound = sampleJson('telesign', 'inbound-mo-sms');
    const sender = '11234567890';
    await processMessage(await message('telesign', { ...inbound, reference_id: referenceId, user_response: { ...(inbound.user_response as object), phone_number: sender } }), env.deps());
    const ref = uniqueId('TP-MASKED');
    const account = '255712345678';
    env.simulator.report({ ...transfer(ref, 'COMPLETED'), receiverAccount: account });
    await processMessage(await message('temboplus', { ...transfer(ref, 'COMPLETED'), receiverAccount: account }), env.deps());
    const inspect = inspectCommand(t, 'inspect-masked-');
    // act
    const views = {
      text: inspect('telesign', referenceId),
      json: inspect('telesign', referenceId, '--json'),
      temboplus: inspect('temboplus', ref, '--json'),
      recent: inspect('--recent', '50'),
      recentJson: inspect('--recent', '50', '--json'),
    };
    const shown = inspect('telesign', referenceId, '--json', '--show-sensitive');

    // assess
    for (const [view, result] of Object.entries(views)) {
      assert.equal(result.status, 0, `${view}: ${result.stderr}`);
      for (const number of [sender, account]) assert.ok(!leaks(result.stdout, number), `${view} prints ${number}:\n${result.stdout}`);
    }
    type View = { state: Record<string, unknown> | null; events: { payload?: Record<string, Record<string, unknown>>; rawGzip?: unknown }[] };
    const view = JSON.parse(views.json.stdout) as View;
    assert.equal(view.state?.subjectId, referenceId, 'the reference id, made up by TeleSign, stays readable');
    assert.equal(view.events[0].payload?.user_response.phone_number, '********890', 'the sender as in a log line');
    assert.equal(String(view.events[0].payload?.reference_id), referenceId);
    const tembo = JSON.parse(views.temboplus.stdout) as View;
    assert.equal(tembo.state?.subjectId, ref);
    assert.equal(String(tembo.events[0].payload?.receiverAccount), '*********678');
    assert.match(views.recent.stdout, new RegExp(`telesign .* ${referenceId}\\n`));
    assert.equal((JSON.parse(shown.stdout) as View).events[0].payload?.user_response.phone_number, sender, '--show-sensitive: as stored');
  });
});
