import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { toStreamRecord } from '../../functions/adapters/dynamo-stream.ts';
import { QUEUE } from '../../functions/core/pipeline-definition.ts';
import { createSecretCache } from '../../functions/core/secrets.ts';
import { DETAIL_TYPES, eventsFromChange, type StatusChangedDetail } from '../../functions/core/publish.ts';
import { processRecheck } from '../../functions/core/recheck.ts';
import { processMessage } from '../../functions/core/worker.ts';
import { readTableStream } from '../support/dynamodb-local-stream.ts';
import { queueMessageFor, sampleJson, startWorkerEnvironment, storedEvents, storedState, uniqueId, type WorkerEnvironment } from '../support/integration-worker.ts';
import { suiteResource } from '../support/suite-resource.ts';

/**
 * Hostile orderings behind the queue, on the real engines: callbacks of one subject processed
 * concurrently (one batch, or two workers), and what the table's stream then publishes.
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

function teleSignReport(referenceId: string, code: number, updatedOn: string): Record<string, unknown> {
  return { ...sampleJson('telesign', 'sms-dlr-success'), reference_id: referenceId, status: { code, updated_on: updatedOn, description: `code ${code}` } };
}

/** The status events the stream of one subject's partition publishes, in stream order. */
async function statusEvents(pk: string): Promise<StatusChangedDetail[]> {
  const records = (await readTableStream(env.dynamo.endpoint, env.tableName)).filter((record) => record.dynamodb?.Keys?.pk?.S === pk).map(toStreamRecord);
  return records
    .flatMap((record) => eventsFromChange(record.change))
    .filter((event) => event.detailType === DETAIL_TYPES.statusChanged)
    .map((event) => event.detail as StatusChangedDetail);
}

/** The events chain: each names the one before as `previous`, ids are distinct, the last is the state. */
function assertChain(events: readonly StatusChangedDetail[], state: Record<string, unknown> | undefined) {
  assert.ok(events.length > 0, 'at least one event');
  assert.equal(new Set(events.map((event) => event.eventId)).size, events.length, 'one eventId per change');
  assert.equal(events[0].previous, null);
  for (let i = 1; i < events.length; i++) {
    assert.deepEqual(events[i].previous, { status: events[i - 1].status, outcome: events[i - 1].outcome }, `event ${i} names the one before it`);
    assert.ok(events[i].version > events[i - 1].version, 'versions rise');
  }
  const last = events.at(-1)!;
  assert.deepEqual({ status: last.status, outcome: last.outcome, terminal: last.terminal }, { status: state?.status, outcome: state?.outcome, terminal: state?.terminal });
}

describe('one batch, one subject: concurrent callbacks', () => {
  test('TeleSign 203, 200, 207, 203 processed all at once: the state ends where the order says, each counted once, and the events chain', async () => {
    // prepare
    const ref = uniqueId('TS-RACE');
    const bodies = [
      teleSignReport(ref, 203, '2026-06-01T10:00:01Z'),
      teleSignReport(ref, 200, '2026-06-01T10:00:05Z'),
      teleSignReport(ref, 207, '2026-06-01T10:00:03Z'),
      teleSignReport(ref, 203, '2026-06-01T10:00:02Z'),
    ];
    const messages = await Promise.all(bodies.map((body) => queueMessageFor(env.secrets, 'telesign', body)));
    // act: the same batch twice over (a redelivery of every record while the first is in flight)
    const results = await Promise.all([...messages, ...messages].map((message) => processMessage(message, env.deps())));
    // assess
    assert.equal(results.filter((result) => result.kind === 'stored').length, 4);
    const state = await storedState(env, 'telesign', ref);
    assert.equal(state?.status, '200');
    assert.equal(state?.outcome, 'succeeded');
    assert.equal(state?.eventCount, 4);
    assert.equal((await storedEvents(env, 'telesign', ref)).length, 4);
    assertChain(await statusEvents(String(state?.pk)), state);
  });

  test('Identomat REJECTED → APPROVED → REJECTED, received in that order, processed all at once in every arrangement: REJECTED', async () => {
    // prepare
    const { companyKey: _companyKey, ...identomat } = env.secrets.identomat;
    const secrets: Record<string, Record<string, unknown>> = { ...env.secrets, identomat };
    const deps = () => env.deps({ secrets: createSecretCache(async (provider) => JSON.stringify(secrets[provider.id])) });
    const start = Date.now() - 60_000;
    const sessions = Array.from({ length: 6 }, () => uniqueId('idm-race'));
    const queued = await Promise.all(
      sessions.map((sessionId) =>
        Promise.all(
          ['REJECTED', 'APPROVED', 'REJECTED'].map((result, index) =>
            queueMessageFor(env.secrets, 'identomat', { ...sampleJson('identomat', 'session-change-approved'), sessionId, result }, { receivedAt: new Date(start + index * 1000).toISOString() }),
          ),
        ),
      ),
    );
    const orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    // act
    await Promise.all(sessions.map((_, index) => Promise.all(orders[index].map((position) => processMessage(queued[index][position], deps())))));
    // assess
    for (const [index, sessionId] of sessions.entries()) {
      const state = await storedState(env, 'identomat', sessionId);
      assert.deepEqual({ status: state?.status, outcome: state?.outcome }, { status: 'REJECTED', outcome: 'failed' }, `started in the order ${orders[index].join(', ')}`);
      assertChain(await statusEvents(String(state?.pk)), state);
    }
  });
});

describe('a claim the endpoint has not caught up with, delivered several times', () => {
  const CODES: Record<string, string> = { COMPLETED: 'PAYMENT_SUCCESS', REVERSED: 'PAYMENT_REVERSED' };
  const transfer = (ref: string, status: string, updatedAt: string) => ({
    ...sampleJson('temboplus', 'remittance-completed'),
    partnerReference: ref,
    status,
    statusCode: CODES[status],
    updatedAt,
    completedAt: updatedAt,
  });

  test('TemboPlus resends a REVERSED three times while its endpoint still says COMPLETED: the reversal is still asked about, and taken once the endpoint says so', async () => {
    // prepare: a transfer COMPLETED and confirmed (settled); then TemboPlus reverses it and sends
    // the REVERSED callback three times (each a new request), its status endpoint not caught up yet
    const ref = uniqueId('tp-resent');
    env.simulator.report(transfer(ref, 'COMPLETED', '2025-01-01T10:00:00Z'));
    await processMessage(await queueMessageFor(env.secrets, 'temboplus', transfer(ref, 'COMPLETED', '2025-01-01T10:00:00Z')), env.deps());
    const reversed = transfer(ref, 'REVERSED', '2025-01-02T08:00:00Z');
    const copies = await Promise.all([1, 2, 3].map(() => queueMessageFor(env.secrets, 'temboplus', reversed)));
    // act: each copy's receives fail while the endpoint is behind, interleaved as SQS hands them back
    const outcomes: string[] = [];
    for (let receive = 1; receive <= 3; receive++) {
      for (const copy of copies) {
        try {
          outcomes.push((await processMessage(copy, env.deps(), receive)).kind);
        } catch (error) {
          outcomes.push(`retry: ${(error as Error).message.slice(0, 40)}`);
        }
      }
    }
    // a re-check comes while TemboPlus still says COMPLETED (too soon to take the claim for false);
    // then TemboPlus catches up, and the next re-check comes
    const recheck = () => processRecheck({ v: 1, kind: 'recheck', provider: 'temboplus', subjectId: ref, at: new Date().toISOString() }, env.deps());
    const early = await recheck();
    env.simulator.report(reversed);
    const caughtUp = await recheck();
    // assess
    assert.equal(outcomes.filter((outcome) => outcome.startsWith('retry')).length, QUEUE.maxAsksPerClaim, JSON.stringify(outcomes));
    assert.equal(early.kind === 'rechecked' && early.asked, 'found');
    assert.equal(caughtUp.kind === 'rechecked' && caughtUp.asked, 'found', 'the reversal is still asked about');
    const state = await storedState(env, 'temboplus', ref);
    assert.deepEqual({ status: state?.status, outcome: state?.outcome }, { status: 'REVERSED', outcome: 'failed' });
  });
});

describe('a claim the status in place is already past, delivered more often than it may be asked about', () => {
  test('a late SUBMITTED resent past the bound leaves a settled COMPLETED settled', async () => {
    // prepare
    const ref = uniqueId('tp-late');
    const transfer = (status: string, updatedAt: string) => ({ ...sampleJson('temboplus', 'remittance-completed'), partnerReference: ref, status, statusCode: status === 'COMPLETED' ? 'PAYMENT_SUCCESS' : status, updatedAt, completedAt: status === 'COMPLETED' ? updatedAt : null });
    env.simulator.report(transfer('COMPLETED', '2025-01-01T10:00:05Z'));
    await processMessage(await queueMessageFor(env.secrets, 'temboplus', transfer('COMPLETED', '2025-01-01T10:00:05Z')), env.deps());
    const late = await queueMessageFor(env.secrets, 'temboplus', transfer('SUBMITTED', '2025-01-01T10:00:01Z'));
    // act: delivered past the bound, each on its last settle attempt
    for (let i = 0; i < QUEUE.maxAsksPerClaim + 2; i++) await processMessage(late, env.deps(), QUEUE.settleAttempts);
    // assess
    const state = await storedState(env, 'temboplus', ref);
    assert.deepEqual(
      { status: state?.status, confirmation: state?.confirmation, recheckAt: state?.recheckAt, unansweredClaimAt: state?.unansweredClaimAt },
      { status: 'COMPLETED', confirmation: 'confirmed', recheckAt: undefined, unansweredClaimAt: undefined },
    );
  });
});

describe('a crash between the state write and the event item, then a later change, then the redelivery', () => {
  test('Identomat REJECTED applied as change #1, its item lost to a crash; APPROVED #2; REJECTED redelivered: stored under its change, counted once', async () => {
    // prepare
    const { companyKey: _companyKey, ...identomat } = env.secrets.identomat;
    const secrets: Record<string, Record<string, unknown>> = { ...env.secrets, identomat };
    const cache = createSecretCache(async (provider) => JSON.stringify(secrets[provider.id]));
    const sessionId = uniqueId('idm-crash');
    const start = Date.now() - 60_000;
    const body = (result: string) => ({ ...sampleJson('identomat', 'session-change-approved'), sessionId, result });
    const rejected = await queueMessageFor(env.secrets, 'identomat', body('REJECTED'), { receivedAt: new Date(start).toISOString() });
    const approved = await queueMessageFor(env.secrets, 'identomat', body('APPROVED'), { receivedAt: new Date(start + 1000).toISOString() });
    const crashing = { ...env.store, putOnce: async () => Promise.reject(new Error('crash after the state write')) };
    // act
    await assert.rejects(processMessage(rejected, env.deps({ secrets: cache, store: crashing }), 1), /crash/);
    await processMessage(approved, env.deps({ secrets: cache }), 1);
    await processMessage(rejected, env.deps({ secrets: cache }), 2);
    // assess
    const state = await storedState(env, 'identomat', sessionId);
    const events = await storedEvents(env, 'identomat', sessionId);
    assert.deepEqual(
      { status: state?.status, eventCount: state?.eventCount, keys: events.map((event) => event.eventKey).sort() },
      { status: 'APPROVED', eventCount: 2, keys: ['session-change|APPROVED|#2', 'session-change|REJECTED|#1'] },
    );
  });

  test('Identomat APPROVED applied as change #1, its item lost to a crash; REJECTED #2; APPROVED #3; the first APPROVED redelivered: stored under change #1, not taken for a retry of #3', async () => {
    // prepare
    const { companyKey: _companyKey, ...identomat } = env.secrets.identomat;
    const secrets: Record<string, Record<string, unknown>> = { ...env.secrets, identomat };
    const cache = createSecretCache(async (provider) => JSON.stringify(secrets[provider.id]));
    const sessionId = uniqueId('idm-crash-same');
    const start = Date.now() - 60_000;
    const body = (result: string) => ({ ...sampleJson('identomat', 'session-change-approved'), sessionId, result });
    const [first, rejected, again] = await Promise.all(
      ['APPROVED', 'REJECTED', 'APPROVED'].map((result, index) => queueMessageFor(env.secrets, 'identomat', body(result), { receivedAt: new Date(start + index * 1000).toISOString() })),
    );
    const crashing = { ...env.store, putOnce: async () => Promise.reject(new Error('crash after the state write')) };
    // act
    await assert.rejects(processMessage(first, env.deps({ secrets: cache, store: crashing }), 1), /crash/);
    await processMessage(rejected, env.deps({ secrets: cache }), 1);
    await processMessage(again, env.deps({ secrets: cache }), 1);
    const redelivered = await processMessage(first, env.deps({ secrets: cache }), 2);
    // assess
    const state = await storedState(env, 'identomat', sessionId);
    const events = await storedEvents(env, 'identomat', sessionId);
    assert.equal(redelivered.kind, 'stored');
    assert.deepEqual(
      { status: state?.status, eventCount: state?.eventCount, keys: events.map((event) => event.eventKey).sort() },
      { status: 'APPROVED', eventCount: 3, keys: ['session-change|APPROVED|#1', 'session-change|APPROVED|#3', 'session-change|REJECTED|#2'] },
    );
    assert.equal(events.find((event) => event.eventKey === 'session-change|APPROVED|#1')?.requestId, first.requestId);
  });

  test('Identomat APPROVED received before REJECTED #1, kept as late, its item lost to a crash; MANUAL_CHECK #2; the APPROVED redelivered: stored under the key it was counted as, counted once', async () => {
    // prepare
    const { companyKey: _companyKey, ...identomat } = env.secrets.identomat;
    const secrets: Record<string, Record<string, unknown>> = { ...env.secrets, identomat };
    const cache = createSecretCache(async (provider) => JSON.stringify(secrets[provider.id]));
    const sessionId = uniqueId('idm-crash-late');
    const start = Date.now() - 60_000;
    const body = (result: string) => ({ ...sampleJson('identomat', 'session-change-approved'), sessionId, result });
    const [approved, rejected, manual] = await Promise.all(
      ['APPROVED', 'REJECTED', 'MANUAL_CHECK'].map((result, index) => queueMessageFor(env.secrets, 'identomat', body(result), { receivedAt: new Date(start + index * 1000).toISOString() })),
    );
    const crashing = { ...env.store, putOnce: async () => Promise.reject(new Error('crash after the state write')) };
    // act: the APPROVED's first receive failed before the state write, so REJECTED went first
    await processMessage(rejected, env.deps({ secrets: cache }), 1);
    await assert.rejects(processMessage(approved, env.deps({ secrets: cache, store: crashing }), 2), /crash/);
    await processMessage(manual, env.deps({ secrets: cache }), 1);
    const redelivered = await processMessage(approved, env.deps({ secrets: cache }), 3);
    // assess
    const state = await storedState(env, 'identomat', sessionId);
    const events = await storedEvents(env, 'identomat', sessionId);
    assert.equal(redelivered.kind, 'stored');
    assert.deepEqual(
      { status: state?.status, eventCount: state?.eventCount, keys: events.map((event) => event.eventKey).sort() },
      { status: 'MANUAL_CHECK', eventCount: 3, keys: ['session-change|APPROVED|before#1', 'session-change|MANUAL_CHECK|#2', 'session-change|REJECTED|#1'] },
    );
  });
});
