import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { QUEUE } from '../../functions/core/pipeline-definition.ts';
import { DependencyError } from '../../functions/shared/errors.ts';
import { claimJudgedAfterMs, processRecheck } from '../../functions/core/recheck.ts';
import { DEFAULT_RECONCILE, staleShard } from '../../functions/core/reconcile.ts';
import { sweep } from '../../functions/core/sweep.ts';
import { processMessage } from '../../functions/core/worker.ts';
import type { QueueMessage } from '../../functions/core/queue-message.ts';
import type { CallbackStore } from '../../functions/core/store.ts';
import { findProvider } from '../../functions/providers/index.ts';
import { identomatKit } from '../providers/identomat.ts';
import { queueMessageFor, sampleJson, startWorkerEnvironment, storedEvents, storedState, uniqueId, type WorkerEnvironment } from '../support/integration-worker.ts';
import { suiteResource } from '../support/suite-resource.ts';

/**
 * Re-checks and callbacks about one subject, in the orders a real deployment can give them: a
 * status endpoint's answer that lands after a newer callback, and a new claim on a settled subject
 * while the endpoint is down. Run on DynamoDB Local with the simulated status endpoints.
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

const CODES: Record<string, string> = { COMPLETED: 'PAYMENT_SUCCESS', SUBMITTED: 'SUBMITTED', REVERSED: 'PAYMENT_REVERSED' };
function transfer(ref: string, status: string, updatedAt: string) {
  return { ...sampleJson('temboplus', 'remittance-completed'), partnerReference: ref, status, statusCode: CODES[status], updatedAt, completedAt: status === 'SUBMITTED' ? null : updatedAt };
}

/**
 * Worker dependencies whose first status answer is read at once and handed over only once the test
 * calls `release()` (later ones at once), and a promise that resolves once that first answer was
 * read. Held by the test, not for a fixed time: on a busy machine what the test does meanwhile (a
 * callback delivered and stored) can take longer than any pause, and the answer would then land
 * first, the order under test never made.
 */
function slowFirstAnswer() {
  let calls = 0;
  let answered!: () => void;
  const read = new Promise<void>((resolve) => (answered = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const fetchSlow: typeof fetch = async (input, init) => {
    const first = ++calls === 1;
    const response = await fetch(input, init);
    const text = await response.text();
    if (first) {
      answered();
      await released;
    }
    return new Response(text, { status: response.status, headers: response.headers });
  };
  return { read, release, deps: env.deps({ lookup: { fetch: fetchSlow, timeoutMs: 5000, newRequestId: () => randomUUID() } }) };
}

/** A re-check of a TemboPlus transfer whose answer, once read, is handed over when the test releases it. */
function slowRecheck(ref: string) {
  const slow = slowFirstAnswer();
  const done = processRecheck({ v: 1, kind: 'recheck', provider: 'temboplus', subjectId: ref, at: new Date().toISOString() }, slow.deps);
  return { read: slow.read, release: slow.release, done };
}

async function deliver(providerId: string, body: Record<string, unknown>) {
  return processMessage(await queueMessageFor(env.secrets, providerId, body), env.deps());
}

describe('a re-check answer that lands after a newer callback is old news', () => {
  test('TemboPlus: asked while SUBMITTED; COMPLETED is called back and confirmed meanwhile; the late SUBMITTED answer leaves it confirmed', async () => {
    // prepare
    const ref = uniqueId('tp-overlap');
    env.simulator.report(transfer(ref, 'SUBMITTED', '2025-01-01T10:00:00Z'));
    await deliver('temboplus', transfer(ref, 'SUBMITTED', '2025-01-01T10:00:00Z'));

    // act
    const recheck = slowRecheck(ref);
    await recheck.read;
    env.simulator.report(transfer(ref, 'COMPLETED', '2025-01-01T10:05:00Z'));
    await deliver('temboplus', transfer(ref, 'COMPLETED', '2025-01-01T10:05:00Z'));
    const confirmed = await storedState(env, 'temboplus', ref);
    recheck.release();
    const result = await recheck.done;

    // assess
    const state = await storedState(env, 'temboplus', ref);
    assert.deepEqual([confirmed?.status, confirmed?.confirmation], ['COMPLETED', 'confirmed']);
    assert.deepEqual([state?.status, state?.outcome, state?.confirmation, state?.confirmedStatus], ['COMPLETED', 'succeeded', 'confirmed', 'COMPLETED']);
    assert.equal(state?.changedAt, confirmed?.changedAt, 'no change, so no event');
    assert.equal(result.kind === 'rechecked' && result.stateChanged, false);
  });

  test('TemboPlus: asked while COMPLETED; REVERSED is called back and confirmed meanwhile; the late COMPLETED answer never moves it back', async () => {
    // prepare
    const ref = uniqueId('tp-overrule');
    env.simulator.report(transfer(ref, 'SUBMITTED', '2025-01-01T10:00:00Z'));
    await deliver('temboplus', transfer(ref, 'SUBMITTED', '2025-01-01T10:00:00Z'));
    env.simulator.report(transfer(ref, 'COMPLETED', '2025-01-01T10:05:00Z'));

    // act
    const recheck = slowRecheck(ref);
    await recheck.read;
    env.simulator.report(transfer(ref, 'REVERSED', '2025-01-01T10:06:00Z'));
    await deliver('temboplus', transfer(ref, 'REVERSED', '2025-01-01T10:06:00Z'));
    const reversed = await storedState(env, 'temboplus', ref);
    recheck.release();
    await recheck.done;

    // assess
    const state = await storedState(env, 'temboplus', ref);
    assert.deepEqual([reversed?.status, reversed?.outcome], ['REVERSED', 'failed']);
    assert.deepEqual([state?.status, state?.outcome, state?.confirmation], ['REVERSED', 'failed', 'confirmed']);
  });
});

describe('a new claim on a settled subject, the status endpoint down on every receive', () => {
  /** Deliver until stored, as SQS redelivers a failing record. */
  async function deliverUntilStored(providerId: string, body: Record<string, unknown> | QueueMessage) {
    const message = 'receivedAt' in body ? (body as QueueMessage) : await queueMessageFor(env.secrets, providerId, body);
    for (let receive = 1; ; receive++) {
      try {
        return await processMessage(message, env.deps(), receive);
      } catch (error) {
        if (receive >= QUEUE.maxReceiveCount) throw error;
      }
    }
  }

  /** What a sweep a day later queues about a subject. */
  async function sweptLater(providerId: string, subjectId: string): Promise<number> {
    const queued: string[] = [];
    await sweep([findProvider(providerId)!], {
      store: env.store,
      enqueue: async (messages) => void queued.push(...messages.map((message) => message.body)),
      now: () => new Date(Date.now() + 86_400_000),
      log: env.deps().log,
    });
    return queued.filter((body) => body.includes(subjectId)).length;
  }

  test('TemboPlus: COMPLETED (confirmed), then a REVERSED claim no answer could judge: it stays succeeded, but is asked about again, and the re-check believes REVERSED', async () => {
    // prepare
    const ref = uniqueId('tp-reversed');
    env.simulator.report(transfer(ref, 'COMPLETED', '2025-01-01T10:00:05Z'));
    await deliver('temboplus', transfer(ref, 'COMPLETED', '2025-01-01T10:00:05Z'));
    env.simulator.report(transfer(ref, 'REVERSED', '2025-01-02T08:00:00Z'));

    // act
    env.simulator.setFault({ status: 503 });
    try {
      await deliverUntilStored('temboplus', transfer(ref, 'REVERSED', '2025-01-02T08:00:00Z'));
    } finally {
      env.simulator.setFault(undefined);
    }
    const waiting = await storedState(env, 'temboplus', ref);
    const queued = await sweptLater('temboplus', ref);
    await processRecheck({ v: 1, kind: 'recheck', provider: 'temboplus', subjectId: ref, at: new Date().toISOString() }, env.deps());

    // assess
    assert.deepEqual([waiting?.status, waiting?.confirmation], ['COMPLETED', 'confirmed'], 'an unjudged claim is not believed');
    assert.ok(waiting?.recheckAt !== undefined && waiting?.unansweredClaimAt !== undefined, 'but it is due to be asked about');
    assert.equal(queued, 1, 'the sweep queues a re-check');
    const state = await storedState(env, 'temboplus', ref);
    assert.deepEqual([state?.status, state?.outcome, state?.confirmation], ['REVERSED', 'failed', 'confirmed']);
    assert.equal(state?.unansweredClaimAt, undefined, 'answered');
    assert.equal(state?.recheckAt, undefined, 'settled again');
  });

  test('Identomat: APPROVED (confirmed), then a REJECTED claim while result/ is down: asked about again', async () => {
    // prepare
    const sessionId = uniqueId('idm-settled');
    const change = (result: string) => ({ ...sampleJson('identomat', 'session-change-approved'), sessionId, result });
    const says = (result: string) => env.simulators.identomat.report(identomatKit.statusAnswer!({ body: Buffer.from(JSON.stringify(change('APPROVED'))) }, result));
    says('approved');
    await deliver('identomat', change('APPROVED'));
    says('rejected');

    // act
    env.simulators.identomat.setFault({ status: 503 });
    try {
      await deliverUntilStored('identomat', change('REJECTED'));
    } finally {
      env.simulators.identomat.setFault(undefined);
    }
    const waiting = await storedState(env, 'identomat', sessionId);
    await processRecheck({ v: 1, kind: 'recheck', provider: 'identomat', subjectId: sessionId, at: new Date().toISOString() }, env.deps());

    // assess
    assert.ok(waiting?.recheckAt !== undefined, 'the REJECTED claim is asked about again');
    const state = await storedState(env, 'identomat', sessionId);
    assert.deepEqual([state?.outcome, state?.confirmation], ['failed', 'confirmed']);
  });

  test('Identomat: REJECTED claimed while result/ is down, then an APPROVED report received before it comes out of the queue late: REJECTED is still asked about', async () => {
    // prepare: APPROVED, confirmed; another APPROVED report is received, then REJECTED, while result/ is down
    const sessionId = uniqueId('idm-late-report');
    const change = (result: string) => ({ ...sampleJson('identomat', 'session-change-approved'), sessionId, result });
    const says = (result: string) => env.simulators.identomat.report(identomatKit.statusAnswer!({ body: Buffer.from(JSON.stringify(change('APPROVED'))) }, result));
    says('approved');
    await deliver('identomat', change('APPROVED'));
    const approvedAgain = await queueMessageFor(env.secrets, 'identomat', change('APPROVED'));
    const rejected = { ...(await queueMessageFor(env.secrets, 'identomat', change('REJECTED'))), receivedAt: new Date(Date.parse(approvedAgain.receivedAt) + 1000).toISOString() };

    // act: REJECTED is stored first, the earlier APPROVED report after it (its receives failed longer)
    env.simulators.identomat.setFault({ status: 503 });
    try {
      await deliverUntilStored('identomat', rejected);
      await deliverUntilStored('identomat', approvedAgain);
    } finally {
      env.simulators.identomat.setFault(undefined);
    }
    // result/ has not caught up with REJECTED yet
    await processRecheck({ v: 1, kind: 'recheck', provider: 'identomat', subjectId: sessionId, at: new Date().toISOString() }, env.deps());

    // assess
    const state = await storedState(env, 'identomat', sessionId);
    assert.equal(state?.unansweredClaimStatus, 'REJECTED', 'REJECTED is still to be asked about');
    assert.ok(state?.recheckAt !== undefined, 'due');
  });
});

describe('Identomat: answers are as of the question, and a lagging result/ is asked again', () => {
  const change = (sessionId: string, result: string) => ({ ...sampleJson('identomat', 'session-change-approved'), sessionId, result });
  const endpointSays = (sessionId: string, result: string) =>
    env.simulators.identomat.report(identomatKit.statusAnswer!({ body: Buffer.from(JSON.stringify(change(sessionId, 'APPROVED'))) }, result));

  test('a slow "approved" asked before the session was rejected does not outrank the quicker "rejected" asked after it', async () => {
    // prepare
    const sessionId = uniqueId('idm-slow');
    endpointSays(sessionId, 'approved');
    const slow = slowFirstAnswer();

    // act
    const approving = processMessage(await queueMessageFor(env.secrets, 'identomat', change(sessionId, 'APPROVED')), slow.deps);
    await slow.read;
    endpointSays(sessionId, 'rejected');
    await processMessage(await queueMessageFor(env.secrets, 'identomat', change(sessionId, 'REJECTED')), slow.deps);
    slow.release();
    await approving;

    // assess
    const state = await storedState(env, 'identomat', sessionId);
    assert.deepEqual([state?.status, state?.outcome], ['REJECTED', 'failed']);
  });

  test('a slow re-check answer asked before a rejection does not outrank it', async () => {
    // prepare
    const sessionId = uniqueId('idm-slow-recheck');
    endpointSays(sessionId, 'manual_check');
    await deliver('identomat', change(sessionId, 'MANUAL_CHECK'));
    endpointSays(sessionId, 'approved');
    const slow = slowFirstAnswer();

    // act
    const recheck = processRecheck({ v: 1, kind: 'recheck', provider: 'identomat', subjectId: sessionId, at: new Date().toISOString() }, slow.deps);
    await slow.read;
    endpointSays(sessionId, 'rejected');
    await deliver('identomat', change(sessionId, 'REJECTED'));
    slow.release();
    await recheck;

    // assess
    const state = await storedState(env, 'identomat', sessionId);
    assert.deepEqual([state?.status, state?.outcome], ['REJECTED', 'failed']);
  });

  test('APPROVED (confirmed), then a REJECTED callback result/ has not caught up with: recorded as a mismatch, re-checked, then believed', async () => {
    // prepare
    const sessionId = uniqueId('idm-lag');
    endpointSays(sessionId, 'approved');
    await deliver('identomat', change(sessionId, 'APPROVED'));

    // act: result/ still says approved when the callback comes, then catches up before the re-check
    const result = await deliver('identomat', change(sessionId, 'REJECTED'));
    const waiting = await storedState(env, 'identomat', sessionId);
    endpointSays(sessionId, 'rejected');
    await processRecheck({ v: 1, kind: 'recheck', provider: 'identomat', subjectId: sessionId, at: new Date().toISOString() }, env.deps());

    // assess
    assert.equal('confirmation' in result && result.confirmation, 'mismatch');
    assert.equal(waiting?.confirmation, 'mismatch', 'approved is no longer confirmed');
    assert.ok(waiting?.recheckAt !== undefined && waiting.unansweredClaimAt !== undefined, 'a re-check is due');
    const state = await storedState(env, 'identomat', sessionId);
    assert.deepEqual([state?.status, state?.outcome, state?.confirmation], ['REJECTED', 'failed', 'confirmed']);
    assert.equal(state?.recheckAt, undefined, 'settled');
  });

  test('a REJECTED callback result/ keeps contradicting (a late or forged one): still due while result/ may lag, then the re-check believes result/, and the subject settles', async () => {
    // prepare
    const sessionId = uniqueId('idm-lag-never');
    endpointSays(sessionId, 'approved');
    await deliver('identomat', change(sessionId, 'APPROVED'));

    // act: re-checks a minute after the claim, then past the schedule's first three steps
    await deliver('identomat', change(sessionId, 'REJECTED'));
    await processRecheck({ v: 1, kind: 'recheck', provider: 'identomat', subjectId: sessionId, at: new Date().toISOString() }, env.deps());
    const soon = await storedState(env, 'identomat', sessionId);
    const later = () => new Date(Date.now() + claimJudgedAfterMs(DEFAULT_RECONCILE) + 60_000);
    await processRecheck({ v: 1, kind: 'recheck', provider: 'identomat', subjectId: sessionId, at: later().toISOString() }, env.deps({ now: later }));

    // assess
    assert.ok(soon?.unansweredClaimAt !== undefined && soon.recheckAt !== undefined, 'a minute on, result/ may still be behind its callback: asked again');
    assert.equal(soon?.unansweredClaimStatus, 'REJECTED');
    const state = await storedState(env, 'identomat', sessionId);
    assert.deepEqual([state?.status, state?.outcome, state?.confirmation], ['APPROVED', 'succeeded', 'confirmed']);
    assert.deepEqual([state?.recheckAt, state?.unansweredClaimAt, state?.unansweredClaimStatus], [undefined, undefined, undefined]);
  });

});

describe("the sweep's lease holds against a callback written at the same moment", () => {
  test('a callback whose worker read the state before the lease does not write the old re-check time back: the subject is queued once', async () => {
    // prepare: a transfer under way, due for a re-check
    const ref = uniqueId('tp-lease');
    const t0 = Date.now();
    const pending = (status: string, ago: number) => transfer(ref, status, new Date(t0 - ago).toISOString());
    env.simulator.report(pending('SUBMITTED', 10_000));
    await deliver('temboplus', pending('SUBMITTED', 10_000));
    const due = new Date(Date.parse(String((await storedState(env, 'temboplus', ref))?.recheckAt)) + 1000);
    const queued: string[] = [];
    const runSweep = (at: Date) =>
      sweep([findProvider('temboplus')!], {
        store: env.store,
        enqueue: async (messages) => void queued.push(...messages.map((message) => message.body).filter((body) => body.includes(ref))),
        now: () => at,
        log: env.deps().log,
      });
    // The sweep leases the subject after the worker read the state and before it writes it.
    let swept = false;
    const racing: CallbackStore = {
      ...env.store,
      async putState(state, expected) {
        if (!swept) {
          swept = true;
          await runSweep(due);
        }
        return env.store.putState(state, expected);
      },
    };
    env.simulator.report(pending('WAITING_ACK', 5_000));

    // act: the racing callback, then the next sweep a minute later, inside the lease
    await processMessage(await queueMessageFor(env.secrets, 'temboplus', pending('WAITING_ACK', 5_000)), { ...env.deps(), store: racing });
    const leased = await storedState(env, 'temboplus', ref);
    await runSweep(new Date(due.getTime() + 60_000));

    // assess
    assert.equal(leased?.status, 'WAITING_ACK', 'the callback is applied');
    assert.ok(Date.parse(String(leased?.recheckAt)) > due.getTime() + 60_000, `the lease stands: recheckAt ${String(leased?.recheckAt)}`);
    assert.equal(queued.length, 1, 'queued once for one due time');
  });
});

describe('a subject the sweep leases, written by hand as the README shows', () => {
  test('an expectation put with the SDK (no version attribute) is leased and queued', async () => {
    // prepare
    const ref = uniqueId('tp-sdk-expect');
    const now = new Date();
    await env.client.send(
      new PutItemCommand({
        TableName: env.tableName,
        Item: marshall({
          pk: `temboplus#${ref}`,
          sk: 'STATE',
          provider: 'temboplus',
          subjectId: ref,
          expectedAt: new Date(now.getTime() - 120_000).toISOString(),
          recheckShard: 'temboplus#0',
          recheckAt: new Date(now.getTime() - 60_000).toISOString(),
        }),
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
    const queued: string[] = [];

    // act
    await sweep([findProvider('temboplus')!], { store: env.store, enqueue: async (messages) => void queued.push(...messages.map((message) => message.body)), now: () => now, log: env.deps().log });

    // assess
    assert.equal(queued.filter((body) => body.includes(ref)).length, 1);
    assert.equal((await storedState(env, 'temboplus', ref))?.version, 1);
  });

  test("an expectation written with the gateway's bookkeeping in other forms (recent null, counts as text or past 2^53, rechecks among them) is re-checked, and its callback stored", async () => {
    // prepare: an application's program wrote every attribute of the state item it knew of
    const ref = uniqueId('tp-sdk-bookkeeping');
    const now = Date.now();
    await env.client.send(
      new PutItemCommand({
        TableName: env.tableName,
        Item: marshall({
          pk: `temboplus#${ref}`,
          sk: 'STATE',
          provider: 'temboplus',
          subjectId: ref,
          expectedAt: new Date(now - 120_000).toISOString(),
          recheckShard: 'temboplus#0',
          recheckAt: new Date(now - 60_000).toISOString(),
          recent: null,
          seen: 2n ** 60n,
          eventCount: '0',
          changes: 2n ** 60n,
          rechecks: 2n ** 60n,
        }),
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
    env.simulator.report(transfer(ref, 'SUBMITTED', '2025-01-01T10:00:00Z'));

    // act: its re-check, then the transfer's final callback
    const rechecked = await processRecheck({ v: 1, kind: 'recheck', provider: 'temboplus', subjectId: ref, at: new Date().toISOString() }, env.deps());
    env.simulator.report(transfer(ref, 'COMPLETED', '2025-01-01T10:05:00Z'));
    const stored = await deliver('temboplus', transfer(ref, 'COMPLETED', '2025-01-01T10:05:00Z'));

    // assess
    assert.equal(rechecked.kind, 'rechecked');
    assert.equal(stored.kind, 'stored');
    const state = await storedState(env, 'temboplus', ref);
    assert.deepEqual([state?.status, state?.outcome, state?.confirmation, state?.eventCount], ['COMPLETED', 'succeeded', 'confirmed', 1]);
    assert.equal((await storedEvents(env, 'temboplus', ref)).filter((event) => event.source === 'callback').length, 1);
  });
});

describe('a claim nobody could judge stays due until an answer asked after it', () => {
  const recheckNow = (ref: string) => processRecheck({ v: 1, kind: 'recheck', provider: 'temboplus', subjectId: ref, at: new Date().toISOString() }, env.deps());

  /** COMPLETED, confirmed by a re-check's answer (the state's source is the status endpoint). */
  async function settledByRecheck(ref: string) {
    env.simulator.report(transfer(ref, 'SUBMITTED', '2025-01-01T10:00:00Z'));
    await deliver('temboplus', transfer(ref, 'SUBMITTED', '2025-01-01T10:00:00Z'));
    env.simulator.report(transfer(ref, 'COMPLETED', '2025-01-01T10:05:00Z'));
    await recheckNow(ref);
    const state = await storedState(env, 'temboplus', ref);
    assert.deepEqual([state?.status, state?.source, state?.confirmation, state?.recheckAt], ['COMPLETED', 'status-endpoint', 'confirmed', undefined], 'the premise');
  }

  async function deliverUntilStored(body: Record<string, unknown>) {
    const message = await queueMessageFor(env.secrets, 'temboplus', body);
    for (let receive = 1; ; receive++) {
      try {
        return await processMessage(message, env.deps(), receive);
      } catch (error) {
        if (receive >= QUEUE.maxReceiveCount) throw error;
      }
    }
  }

  /** Delivers a TemboPlus callback while TemboPlus's status endpoint answers 503, so the claim is stored unjudged. */
  async function deliverWhileEndpointDown(body: Record<string, unknown>) {
    env.simulator.setFault({ status: 503 });
    try {
      await deliverUntilStored(body);
    } finally {
      env.simulator.setFault(undefined);
    }
  }

  test('a re-check whose question left before the claim came does not count as its answer', async () => {
    // prepare
    const ref = uniqueId('tp-clear-race');
    env.simulator.report(transfer(ref, 'SUBMITTED', '2025-01-01T10:00:00Z'));
    await deliver('temboplus', transfer(ref, 'SUBMITTED', '2025-01-01T10:00:00Z'));
    env.simulator.report(transfer(ref, 'COMPLETED', '2025-01-01T10:05:00Z'));

    // act: the re-check's question leaves; COMPLETED is called back; REVERSED comes while the endpoint is down
    const slow = slowRecheck(ref);
    await slow.read;
    await deliver('temboplus', transfer(ref, 'COMPLETED', '2025-01-01T10:05:00Z'));
    env.simulator.report(transfer(ref, 'REVERSED', '2025-01-01T10:06:00Z'));
    env.simulator.setFault({ status: 503 });
    try {
      await processMessage(await queueMessageFor(env.secrets, 'temboplus', transfer(ref, 'REVERSED', '2025-01-01T10:06:00Z')), env.deps(), QUEUE.askFaultAttempts);
    } finally {
      env.simulator.setFault(undefined);
    }
    slow.release();
    await slow.done;

    // assess
    const state = await storedState(env, 'temboplus', ref);
    assert.ok(state?.unansweredClaimAt !== undefined && state.recheckAt !== undefined, `REVERSED is still to be asked about: ${JSON.stringify([state?.status, state?.recheckAt])}`);
  });

  test('a 404 at the re-check (the endpoint glitching about a subject it knew) does not count as an answer', async () => {
    // prepare
    const ref = uniqueId('tp-404-clear');
    await settledByRecheck(ref);
    await deliverWhileEndpointDown(transfer(ref, 'REVERSED', '2025-01-02T08:00:00Z'));

    // act
    env.simulator.forget(ref);
    await recheckNow(ref);

    // assess
    const state = await storedState(env, 'temboplus', ref);
    assert.ok(state?.recheckAt !== undefined && state.unansweredClaimAt !== undefined, `still due: ${JSON.stringify([state?.status, state?.confirmation])}`);
  });

  test('an unjudged claim on a subject that had gone stale starts a schedule of its own: no longer stale, due for a re-check', async () => {
    // prepare: a transfer whose re-checks ran out while it was SUBMITTED
    const ref = uniqueId('tp-stale-claim');
    env.simulator.report(transfer(ref, 'SUBMITTED', '2025-01-01T10:00:00Z'));
    await deliver('temboplus', transfer(ref, 'SUBMITTED', '2025-01-01T10:00:00Z'));
    await env.client.send(
      new UpdateItemCommand({
        TableName: env.tableName,
        Key: marshall({ pk: `temboplus#${ref}`, sk: 'STATE' }),
        UpdateExpression: 'SET stale = :yes, staleAt = :at, recheckShard = :shard, recheckAt = :at, rechecks = :n',
        ExpressionAttributeValues: marshall({ ':yes': true, ':at': new Date().toISOString(), ':shard': staleShard('temboplus'), ':n': 7 }),
      }),
    );
    env.simulator.report(transfer(ref, 'COMPLETED', '2025-01-09T10:00:00Z'));

    // act: the COMPLETED callback comes while the endpoint is down
    await deliverWhileEndpointDown(transfer(ref, 'COMPLETED', '2025-01-09T10:00:00Z'));

    // assess
    const state = await storedState(env, 'temboplus', ref);
    assert.equal(state?.stale, undefined, 'no longer stale');
    assert.ok(state?.unansweredClaimAt !== undefined && state.recheckAt !== undefined && state.recheckShard !== staleShard('temboplus'), JSON.stringify([state?.recheckShard, state?.recheckAt]));
    assert.equal(state?.rechecks, 0);
  });

  test('a claim the endpoint could not judge on arrival is judged on every material field by the re-check: a wrong account is flagged, not confirmed', async () => {
    // prepare: a COMPLETED claim naming another account comes while the endpoint is down
    const ref = uniqueId('tp-unjudged-account');
    const truth = transfer(ref, 'COMPLETED', '2025-01-01T10:05:00Z');
    await deliverWhileEndpointDown({ ...truth, receiverAccount: '255799999999' });
    env.simulator.report(truth);

    // act
    const result = await recheckNow(ref);

    // assess
    assert.equal(result.kind === 'rechecked' && result.verdict, 'mismatch');
    const state = await storedState(env, 'temboplus', ref);
    assert.deepEqual([state?.status, state?.source], ['COMPLETED', 'status-endpoint'], "TemboPlus's answer is the status");
    assert.deepEqual([state?.confirmation, state?.differences], ['mismatch', ['receiverAccount']]);
    const [claim] = await storedEvents(env, 'temboplus', ref);
    assert.deepEqual([claim.confirmation, claim.differences], ['mismatch', ['receiverAccount']], 'the claim is flagged');
  });

  test('a COMPLETED naming another account, dated before the genuine one, that no answer could judge on arrival: flagged all the same, a final claim is no older news', async () => {
    // prepare
    const ref = uniqueId('tp-unjudged-account-older');
    const truth = transfer(ref, 'COMPLETED', '2025-01-01T10:05:00Z');
    await deliverWhileEndpointDown({ ...truth, receiverAccount: '255799999999', updatedAt: '2025-01-01T10:04:00Z', completedAt: '2025-01-01T10:04:00Z' });
    env.simulator.report(truth);

    // act
    const result = await recheckNow(ref);

    // assess
    assert.equal(result.kind === 'rechecked' && result.verdict, 'mismatch');
    const state = await storedState(env, 'temboplus', ref);
    assert.deepEqual([state?.confirmation, state?.differences], ['mismatch', ['receiverAccount']]);
  });

  test('a re-check that runs between the unjudged claim\'s state write and its event item does not take it as judged: a later re-check flags it', async () => {
    // prepare: a COMPLETED naming another account comes while the endpoint is down; the endpoint is
    // back, and a re-check runs, just before the worker puts the claim's event item
    const ref = uniqueId('tp-unjudged-item-late');
    const truth = transfer(ref, 'COMPLETED', '2025-01-01T10:05:00Z');
    const message = await queueMessageFor(env.secrets, 'temboplus', { ...truth, receiverAccount: '255799999999' });
    let between: Promise<unknown> | undefined;
    const store: CallbackStore = {
      ...env.store,
      async putOnce(item) {
        if (item.source === 'callback' && between === undefined) {
          env.simulator.setFault(undefined);
          env.simulator.report(truth);
          between = recheckNow(ref);
          await between;
        }
        return env.store.putOnce(item);
      },
    };
    env.simulator.setFault({ status: 503 });
    try {
      await processMessage(message, env.deps({ store }), QUEUE.askFaultAttempts);
    } finally {
      env.simulator.setFault(undefined);
    }

    // act
    await recheckNow(ref);

    // assess
    const state = await storedState(env, 'temboplus', ref);
    assert.deepEqual([state?.confirmation, state?.differences], ['mismatch', ['receiverAccount']]);
    const [claim] = await storedEvents(env, 'temboplus', ref);
    assert.deepEqual([claim.confirmation, claim.differences], ['mismatch', ['receiverAccount']], 'the claim is flagged');
  });

  test('a re-check whose verdict on the claim\'s item fails is retried whole: the claim is flagged and the mismatch logged, not lost with the fault', async () => {
    // prepare: a COMPLETED naming another account comes while the endpoint is down
    const ref = uniqueId('tp-unjudged-verdict-fault');
    const truth = transfer(ref, 'COMPLETED', '2025-01-01T10:05:00Z');
    await deliverWhileEndpointDown({ ...truth, receiverAccount: '255799999999' });
    env.simulator.report(truth);
    let failed = false;
    const store: CallbackStore = {
      ...env.store,
      async recordVerdict(key, verdict) {
        if (!failed) {
          failed = true;
          throw new DependencyError('dynamodb', 'UpdateItem (verdict) failed');
        }
        return env.store.recordVerdict(key, verdict);
      },
    };
    const sweptAt = String((await storedState(env, 'temboplus', ref))?.recheckAt);
    const message = { v: 1 as const, kind: 'recheck' as const, provider: 'temboplus', subjectId: ref, at: new Date().toISOString(), lease: sweptAt, rechecks: 0 };

    // act: the re-check fails on the claim's item; SQS delivers the same message again
    const first = await processRecheck(message, env.deps({ store })).then(() => undefined, (error: unknown) => error);
    const deps = env.deps();
    const again = await processRecheck(message, deps);

    // assess
    assert.ok(first instanceof DependencyError, String(first));
    assert.equal(again.kind === 'rechecked' && again.verdict, 'mismatch');
    assert.ok(deps.log.lines.some((line) => line.message === 'rechecked' && line.fields?.confirmation === 'mismatch'), 'the mismatch is logged (its alarm counts these lines)');
    const state = await storedState(env, 'temboplus', ref);
    assert.deepEqual([state?.confirmation, state?.differences], ['mismatch', ['receiverAccount']]);
    const [claim] = await storedEvents(env, 'temboplus', ref);
    assert.deepEqual([claim.confirmation, claim.differences], ['mismatch', ['receiverAccount']], 'the claim is flagged');
  });

  test('an unjudged COMPLETED naming another account, answered by a COMPLETED a confirmed REVERSED has overtaken meanwhile: the claim is flagged, the REVERSED stays confirmed', async () => {
    // prepare
    const ref = uniqueId('tp-unjudged-overtaken');
    const truth = transfer(ref, 'COMPLETED', '2025-01-01T10:05:00Z');
    await deliverWhileEndpointDown({ ...truth, receiverAccount: '255799999999' });
    env.simulator.report(truth);

    // act: the re-check's COMPLETED is read; REVERSED is called back and confirmed before it lands
    const recheck = slowRecheck(ref);
    await recheck.read;
    env.simulator.report(transfer(ref, 'REVERSED', '2025-01-01T10:06:00Z'));
    await deliver('temboplus', transfer(ref, 'REVERSED', '2025-01-01T10:06:00Z'));
    recheck.release();
    const result = await recheck.done;

    // assess
    const state = await storedState(env, 'temboplus', ref);
    assert.deepEqual([state?.status, state?.confirmation, state?.confirmedStatus, state?.differences], ['REVERSED', 'confirmed', 'REVERSED', undefined], 'an older answer is no news about REVERSED');
    assert.equal(result.kind === 'rechecked' && result.verdict, 'mismatch', 'the forged claim is logged as a mismatch all the same');
    const claim = (await storedEvents(env, 'temboplus', ref)).find((event) => (event.payload as Record<string, unknown>).receiverAccount === '255799999999');
    assert.deepEqual([claim?.confirmation, claim?.differences], ['mismatch', ['receiverAccount']], 'the claim is flagged');
  });

  test('two claims no answer could judge in one outage: the first, naming another account, is judged too, not hidden by the second', async () => {
    // prepare: a COMPLETED naming another account, then the genuine COMPLETED, both while the endpoint is down
    const ref = uniqueId('tp-unjudged-two');
    const truth = transfer(ref, 'COMPLETED', '2025-01-01T10:05:00Z');
    await deliverWhileEndpointDown({ ...truth, receiverAccount: '255799999999' });
    await deliverWhileEndpointDown(truth);
    env.simulator.report(truth);

    // act
    const result = await recheckNow(ref);

    // assess
    assert.equal(result.kind === 'rechecked' && result.verdict, 'mismatch');
    const state = await storedState(env, 'temboplus', ref);
    assert.deepEqual([state?.status, state?.confirmation, state?.differences], ['COMPLETED', 'mismatch', ['receiverAccount']]);
    const claims = await storedEvents(env, 'temboplus', ref);
    const verdicts = claims.map((claim) => [(claim.payload as Record<string, unknown>).receiverAccount === '255799999999' ? 'other account' : 'genuine', claim.confirmation, claim.differences]).sort();
    assert.deepEqual(verdicts, [['genuine', 'confirmed', undefined], ['other account', 'mismatch', ['receiverAccount']]], 'each claim carries its verdict');
  });

  test('a REVERSED claim, then a late COMPLETED, both in one outage: the endpoint lagging behind REVERSED does not settle the subject by answering COMPLETED', async () => {
    // prepare
    const ref = uniqueId('tp-unjudged-reversed-then-late');
    await settledByRecheck(ref);
    await deliverWhileEndpointDown(transfer(ref, 'REVERSED', '2025-01-02T08:00:00Z'));
    await deliverWhileEndpointDown(transfer(ref, 'COMPLETED', '2025-01-01T10:05:00Z'));

    // act: TemboPlus still answers COMPLETED
    await recheckNow(ref);

    // assess
    const state = await storedState(env, 'temboplus', ref);
    assert.deepEqual([state?.status, state?.unansweredClaimStatus], ['COMPLETED', 'REVERSED'], 'REVERSED is still to be asked about');
    assert.ok(state?.recheckAt !== undefined, 'due');
  });

  test('a claim the endpoint could not judge on arrival, of a status the transfer has since moved on from: not flagged on the state', async () => {
    // prepare: SUBMITTED is called back while the endpoint is down; by the re-check the transfer awaits acknowledgment
    const ref = uniqueId('tp-unjudged-moved-on');
    await deliverWhileEndpointDown(transfer(ref, 'SUBMITTED', '2025-01-01T10:00:00Z'));
    env.simulator.report({ ...transfer(ref, 'WAITING_ACK', '2025-01-01T10:01:00Z'), statusCode: 'WAITING_ACK', completedAt: null });

    // act
    const result = await recheckNow(ref);

    // assess
    assert.equal(result.kind === 'rechecked' && result.verdict, 'confirmed', 'the status in place is what TemboPlus says');
    const state = await storedState(env, 'temboplus', ref);
    assert.deepEqual([state?.status, state?.confirmation, state?.differences], ['WAITING_ACK', 'confirmed', undefined]);
  });

  test('a claim the endpoint could not judge on arrival, and the re-check finds every material field agreeing: the claim is confirmed', async () => {
    // prepare
    const ref = uniqueId('tp-unjudged-agrees');
    const truth = transfer(ref, 'COMPLETED', '2025-01-01T10:05:00Z');
    await deliverWhileEndpointDown(truth);
    env.simulator.report(truth);

    // act
    const result = await recheckNow(ref);

    // assess
    assert.equal(result.kind === 'rechecked' && result.verdict, 'confirmed');
    const state = await storedState(env, 'temboplus', ref);
    assert.deepEqual([state?.status, state?.confirmation, state?.recheckAt, state?.unansweredClaimAt], ['COMPLETED', 'confirmed', undefined, undefined]);
    const [claim] = await storedEvents(env, 'temboplus', ref);
    assert.equal(claim.confirmation, 'confirmed');
  });

  test('a REVERSED claim the endpoint does not know on any settle attempt leaves the settled subject due for a re-check', async () => {
    // prepare
    const ref = uniqueId('tp-404-arrival');
    await settledByRecheck(ref);
    env.simulator.forget(ref);

    // act
    await deliverUntilStored(transfer(ref, 'REVERSED', '2025-01-02T08:00:00Z'));

    // assess
    const state = await storedState(env, 'temboplus', ref);
    assert.deepEqual([state?.status, state?.outcome], ['COMPLETED', 'succeeded'], 'not believed');
    assert.ok(state?.recheckAt !== undefined, 'but asked about again');
  });
});

describe('Identomat: a retry of a session-change already judged changes nothing', () => {
  test('REJECTED contradicted, then settled APPROVED by a re-check; Identomat sends the same REJECTED again: a duplicate, no event, no re-check', async () => {
    // prepare
    const sessionId = uniqueId('idm-replay');
    const change = (result: string) => ({ ...sampleJson('identomat', 'session-change-approved'), sessionId, result });
    env.simulators.identomat.report(identomatKit.statusAnswer!({ body: Buffer.from(JSON.stringify(change('APPROVED'))) }, 'approved'));
    await deliver('identomat', change('APPROVED'));
    await deliver('identomat', change('REJECTED'));
    const later = () => new Date(Date.now() + claimJudgedAfterMs(DEFAULT_RECONCILE) + 60_000);
    await processRecheck({ v: 1, kind: 'recheck', provider: 'identomat', subjectId: sessionId, at: later().toISOString() }, env.deps({ now: later }));
    const settled = await storedState(env, 'identomat', sessionId);
    assert.deepEqual([settled?.status, settled?.confirmation, settled?.recheckAt], ['APPROVED', 'confirmed', undefined], 'the premise');

    // act
    const result = await deliver('identomat', change('REJECTED'));

    // assess
    const state = await storedState(env, 'identomat', sessionId);
    assert.equal(result.kind, 'duplicate');
    assert.deepEqual([state?.confirmation, state?.changedAt, state?.unansweredClaimAt, state?.recheckAt], [settled?.confirmation, settled?.changedAt, undefined, undefined]);
  });
});

describe('a status endpoint lagging behind its own callback', () => {
  test('a REVERSED claim TemboPlus\'s endpoint catches up with twenty minutes later is believed, not settled away by the first re-check', async () => {
    // prepare: a confirmed COMPLETED transfer; a REVERSED claim the endpoint does not show yet
    const ref = uniqueId('tp-reversal-lag');
    env.simulator.report(transfer(ref, 'COMPLETED', '2025-01-01T10:00:05Z'));
    await processMessage(await queueMessageFor(env.secrets, 'temboplus', transfer(ref, 'COMPLETED', '2025-01-01T10:00:05Z')), env.deps(), QUEUE.settleAttempts);
    // (the endpoint behind on every settling receive: stored as a claim not judged yet)
    await processMessage(await queueMessageFor(env.secrets, 'temboplus', transfer(ref, 'REVERSED', '2025-01-01T11:00:00Z')), env.deps(), QUEUE.settleAttempts);
    // act: a re-check a minute on (still COMPLETED), then twenty minutes on (REVERSED)
    await processRecheck({ v: 1, kind: 'recheck', provider: 'temboplus', subjectId: ref, at: new Date().toISOString() }, env.deps());
    const minuteOn = await storedState(env, 'temboplus', ref);
    env.simulator.report(transfer(ref, 'REVERSED', '2025-01-01T11:00:00Z'));
    const twentyOn = () => new Date(Date.now() + 20 * 60_000);
    await processRecheck({ v: 1, kind: 'recheck', provider: 'temboplus', subjectId: ref, at: twentyOn().toISOString() }, env.deps({ now: twentyOn }));
    // assess
    assert.deepEqual([minuteOn?.status, minuteOn?.outcome], ['COMPLETED', 'succeeded'], 'a claim alone is not believed');
    assert.ok(minuteOn?.unansweredClaimAt !== undefined && minuteOn.recheckAt !== undefined, 'still due');
    const state = await storedState(env, 'temboplus', ref);
    assert.deepEqual([state?.status, state?.outcome, state?.confirmation], ['REVERSED', 'failed', 'confirmed']);
    assert.equal(state?.unansweredClaimAt, undefined);
  });
});
