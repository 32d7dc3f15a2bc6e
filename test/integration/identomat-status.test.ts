import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { QUEUE } from '../../functions/core/pipeline-definition.ts';
import type { QueueMessage } from '../../functions/core/queue-message.ts';
import { processRecheck } from '../../functions/core/recheck.ts';
import { createSecretCache } from '../../functions/core/secrets.ts';
import { processMessage } from '../../functions/core/worker.ts';
import { ConfigurationError, DependencyError } from '../../functions/shared/errors.ts';
import type { StatusSimulator } from '../../local/status-simulator.ts';
import { identomatKit } from '../providers/identomat.ts';
import {
  queueMessageFor,
  sampleJson,
  startWorkerEnvironment,
  storedEvents,
  storedObservations,
  storedState,
  uniqueId,
  type WorkerEnvironment,
} from '../support/integration-worker.ts';
import { suiteResource } from '../support/suite-resource.ts';

/**
 * Identomat sessions confirmed by result/: the real worker on DynamoDB Local, callbacks made by the
 * real ingest core, and the kit's simulated result/ endpoint (company_key and HMAC checked), which
 * the environment's Identomat secret points at.
 */

let env: WorkerEnvironment;
let endpoint: StatusSimulator;
suiteResource(
  async () => {
    env = await startWorkerEnvironment();
    endpoint = env.simulators.identomat;
    assert.ok(endpoint, 'the environment runs the kit simulation of result/');
  },
  async () => {
    await env?.stop();
  },
);

const sessionChange = (sessionId: string, result: string) => ({ ...sampleJson('identomat', 'session-change-approved'), sessionId, result });

/** Tell the simulated result/ what it answers about a session (the kit's answer for that callback). */
function endpointSays(sessionId: string, result: string) {
  endpoint.report(identomatKit.statusAnswer!({ body: Buffer.from(JSON.stringify(sessionChange(sessionId, 'APPROVED'))) }, result));
}

function message(body: unknown, receivedAt?: string): Promise<QueueMessage> {
  return queueMessageFor(env.secrets, 'identomat', body, receivedAt ? { receivedAt } : {});
}

const requestsAbout = (sessionId: string) => endpoint.requests.filter((request) => request.subjectId === sessionId);
const answersOf = async (sessionId: string) => (await storedObservations(env, 'identomat', sessionId)).filter((item) => item.source === 'status-endpoint');

/** The worker's dependencies with another Identomat secret (a missing or wrong credential). */
function depsWithIdentomatSecret(secret: Record<string, unknown>) {
  return env.deps({ secrets: createSecretCache(async (provider) => JSON.stringify(provider.id === 'identomat' ? secret : env.secrets[provider.id])) });
}

describe('Identomat callbacks judged by result/', () => {
  test('a callback the endpoint agrees with is confirmed; the answer is stored as an event of its own, without personal data', async () => {
    // prepare
    const sessionId = uniqueId('idm-confirmed');
    endpointSays(sessionId, 'approved');
    // act
    const result = await processMessage(await message(sessionChange(sessionId, 'APPROVED')), env.deps());
    // assess
    assert.deepEqual(result, { kind: 'stored', subjectId: sessionId, stateChanged: true, confirmation: 'confirmed' });
    const state = await storedState(env, 'identomat', sessionId);
    assert.equal(state?.status, 'APPROVED');
    assert.equal(state?.outcome, 'succeeded');
    assert.equal(state?.confirmation, 'confirmed');
    assert.equal(state?.source, 'status-endpoint', 'the answer is what the state believes');
    assert.equal(state?.eventCount, 1, 'the answer is not counted as a callback');
    assert.equal(state?.changes, 1, 'nor numbered as a change');
    const [claim] = await storedEvents(env, 'identomat', sessionId);
    assert.equal(claim.eventKey, 'session-change|APPROVED|#1');
    assert.equal(claim.confirmation, 'confirmed');
    const [answer, ...more] = await answersOf(sessionId);
    assert.deepEqual(more, []);
    assert.match(String(answer.eventKey), /^answer\|result\|APPROVED\|[0-9a-f-]{36}$/);
    assert.equal(answer.status, 'APPROVED');
    assert.deepEqual(Object.keys(answer.payload as object).sort(), ['result', 'resultLookupId', 'sessionId', 'type']);
    assert.equal((answer.payload as Record<string, unknown>).result, 'approved', 'kept as Identomat spells it');
    const calls = requestsAbout(sessionId);
    assert.equal(calls.length, 1);
    assert.ok(calls.every((call) => call.authorized && call.status === 200), 'company_key and HMAC signature accepted');
  });

  test('a claim the endpoint contradicts is a mismatch, never believed over the answer (callbackTrust token)', async () => {
    // prepare: a forged APPROVED for a session Identomat rejected, and one for a session still in manual check
    const rejected = uniqueId('idm-mismatch');
    const pending = uniqueId('idm-forged');
    endpointSays(rejected, 'rejected');
    endpointSays(pending, 'manual_check');
    const deps = env.deps();
    // act
    const results = [await processMessage(await message(sessionChange(rejected, 'APPROVED')), deps), await processMessage(await message(sessionChange(pending, 'APPROVED')), deps)];
    // assess
    assert.deepEqual(results.map((result) => result.kind === 'stored' && result.confirmation), ['mismatch', 'mismatch'], 'judged at once: result/ is always current');
    const first = await storedState(env, 'identomat', rejected);
    assert.equal(first?.status, 'REJECTED');
    assert.equal(first?.outcome, 'failed');
    assert.equal(first?.confirmation, 'mismatch');
    assert.equal(first?.confirmedStatus, 'REJECTED');
    assert.deepEqual(first?.differences, ['result']);
    const second = await storedState(env, 'identomat', pending);
    assert.equal(second?.status, 'MANUAL_CHECK');
    assert.equal(second?.outcome, 'pending', 'the forged APPROVED is never success');
    assert.equal(second?.terminal, false);
    const [claim] = await storedEvents(env, 'identomat', pending);
    assert.equal(claim.status, 'APPROVED', 'the claim is kept as it came');
    assert.equal(claim.confirmation, 'mismatch');
    assert.ok(second?.recheckAt, 'and the session is asked about again');
  });

  test('a session result/ has no result for: not_found, nothing believed, asked again', async () => {
    // prepare
    const early = uniqueId('idm-unknown');
    const late = uniqueId('idm-unknown');
    const deps = env.deps();
    // act: a first receive is retried (the callback may have overtaken the endpoint); the last one allowed stands
    const first = await processMessage(await message(sessionChange(early, 'APPROVED')), deps).then(
      () => undefined,
      (error: unknown) => error,
    );
    const last = await processMessage(await message(sessionChange(late, 'APPROVED')), deps, QUEUE.settleAttempts);
    // assess
    assert.ok(first instanceof DependencyError && first.dependency === 'identomat', `expected a retry, got ${String(first)}`);
    assert.deepEqual(last, { kind: 'stored', subjectId: late, stateChanged: true, confirmation: 'not_found' });
    for (const sessionId of [early, late]) {
      const state = await storedState(env, 'identomat', sessionId);
      assert.equal(state?.status, undefined, 'a claim result/ does not know is never applied');
      assert.equal(state?.outcome, 'pending');
      assert.equal(state?.confirmation, 'not_found');
      assert.equal(state?.eventCount, 1);
      assert.ok(state?.recheckAt, 'asked again later');
      assert.equal((await storedEvents(env, 'identomat', sessionId)).length, 1, 'the claim is kept');
      assert.deepEqual(await answersOf(sessionId), []);
      assert.deepEqual(requestsAbout(sessionId).map((call) => [call.authorized, call.status]), [[true, 200]]);
    }
  });

  test('APPROVED, MANUAL_CHECK, APPROVED again: each answer is an observation of its own, the last one is the status', async () => {
    // prepare
    const sessionId = uniqueId('idm-moves');
    const deps = env.deps();
    // act
    for (const [result, callback] of [
      ['approved', 'APPROVED'],
      ['manual_check', 'MANUAL_CHECK'],
      ['approved', 'APPROVED'],
    ]) {
      endpointSays(sessionId, result);
      await processMessage(await message(sessionChange(sessionId, callback)), deps);
    }
    // assess
    const state = await storedState(env, 'identomat', sessionId);
    assert.equal(state?.status, 'APPROVED', 'not stuck at MANUAL_CHECK: a later answer equal to an earlier one is applied');
    assert.equal(state?.confirmation, 'confirmed');
    assert.equal(state?.eventCount, 3);
    assert.equal(state?.changes, 3);
    assert.deepEqual((await storedEvents(env, 'identomat', sessionId)).map((event) => event.eventKey).sort(), [
      'session-change|APPROVED|#1',
      'session-change|APPROVED|#3',
      'session-change|MANUAL_CHECK|#2',
    ]);
    const answers = await answersOf(sessionId);
    assert.equal(answers.length, 3);
    assert.deepEqual(answers.map((answer) => answer.status).sort(), ['APPROVED', 'APPROVED', 'MANUAL_CHECK']);
  });

  test('a report our queue delivers again after a later change of its session is stored once, under its first key, and counted once', async () => {
    const session = uniqueId('idm-redeliver');
    const a = await queueMessageFor(env.secrets, 'identomat', sessionChange(session, 'MANUAL_CHECK'), { receivedAt: new Date(Date.now() - 10_000).toISOString() });
    const b = await queueMessageFor(env.secrets, 'identomat', sessionChange(session, 'APPROVED'), { receivedAt: new Date(Date.now() - 5_000).toISOString() });
    const deps = env.deps({ asking: true });

    // A: result/ does not know the session yet, so A is stored and handed back for a retry.
    await assert.rejects(processMessage(a, deps, 1), /does not know this subject/);
    // B, a later change, is stored while A waits; result/ now knows the session.
    endpoint.report(identomatKit.statusAnswer!({ body: Buffer.from(JSON.stringify(sessionChange(session, 'APPROVED'))) }, 'approved'));
    await processMessage(b, deps, 1);
    // A again: the same queue message, received a second time.
    const again = await processMessage(a, deps, 2);

    assert.equal(again.kind, 'duplicate');
    const events = await storedEvents(env, 'identomat', session);
    assert.deepEqual(events.filter((event) => event.requestId === a.requestId).map((event) => event.eventKey), ['session-change|MANUAL_CHECK|#1']);
    const state = await storedState(env, 'identomat', session);
    assert.equal(state?.eventCount, 2, 'two callbacks, each counted once');
    assert.equal(state?.status, 'APPROVED');
  });

  test('re-checks ask again and apply the answer forward; an answer seen before is not taken for a repeat', async () => {
    // prepare: a session in manual check, asked for more information, back in manual check, then approved, with one callback only
    const sessionId = uniqueId('idm-recheck');
    const deps = env.deps();
    endpointSays(sessionId, 'manual_check');
    await processMessage(await message(sessionChange(sessionId, 'MANUAL_CHECK')), deps);
    const recheck = { v: 1 as const, kind: 'recheck' as const, provider: 'identomat', subjectId: sessionId, at: new Date().toISOString() };
    const seen: unknown[] = [];
    // act
    for (const result of ['additional_information_requested', 'manual_check', 'approved']) {
      endpointSays(sessionId, result);
      const rechecked = await processRecheck(recheck, deps);
      seen.push([rechecked.kind === 'rechecked' && rechecked.asked, (await storedState(env, 'identomat', sessionId))?.status]);
    }
    // assess
    assert.deepEqual(seen, [
      ['found', 'ADDITIONAL_INFORMATION_REQUESTED'],
      ['found', 'MANUAL_CHECK'],
      ['found', 'APPROVED'],
    ]);
    const state = await storedState(env, 'identomat', sessionId);
    assert.equal(state?.confirmation, 'confirmed');
    assert.equal(state?.recheckAt, undefined, 'settled: approved and confirmed');
    assert.equal(state?.eventCount, 1, 'answers are not callbacks');
    assert.equal(state?.changes, 1, 'nor changes');
    assert.equal((await answersOf(sessionId)).length, 4);
  });

  test("a result that spells a phone number is masked in the re-check's line", async () => {
    // prepare: result/ answers a result no document lists, written as a number
    const sessionId = uniqueId('idm-phone-result');
    const deps = env.deps();
    endpointSays(sessionId, 'manual_check');
    await processMessage(await message(sessionChange(sessionId, 'MANUAL_CHECK')), deps);
    endpointSays(sessionId, 'sms_995512345678');
    // act
    const rechecked = await processRecheck({ v: 1, kind: 'recheck', provider: 'identomat', subjectId: sessionId, at: new Date().toISOString() }, deps);
    // assess
    assert.equal(rechecked.kind === 'rechecked' && rechecked.asked, 'found');
    assert.equal((await storedState(env, 'identomat', sessionId))?.status, 'SMS_995512345678', 'the table keeps the status whole');
    const line = deps.log.lines.find((each) => each.message === 'rechecked');
    assert.ok(line, JSON.stringify(deps.log.lines));
    assert.equal(line.fields?.status, 'SMS_*********678');
    const logged = JSON.stringify(deps.log.lines);
    assert.ok(!logged.includes('995512345678'), logged);
  });

  test('without companyKey the endpoint is not asked: callbacks are believed as they come, unconfirmed', async () => {
    // prepare
    const sessionId = uniqueId('idm-unasked');
    const { companyKey: _key, ...withoutKey } = env.secrets.identomat;
    endpointSays(sessionId, 'rejected');
    // act
    const result = await processMessage(await message(sessionChange(sessionId, 'APPROVED')), depsWithIdentomatSecret(withoutKey));
    // assess
    assert.deepEqual(result, { kind: 'stored', subjectId: sessionId, stateChanged: true });
    const state = await storedState(env, 'identomat', sessionId);
    assert.equal(state?.status, 'APPROVED');
    assert.equal(state?.source, 'callback');
    assert.equal(state?.confirmation, undefined);
    assert.deepEqual(requestsAbout(sessionId), []);
  });

  test('a refused company key is a ConfigurationError: the record is retried and nothing is believed', async () => {
    // prepare
    const sessionId = uniqueId('idm-refused');
    endpointSays(sessionId, 'approved');
    const deps = depsWithIdentomatSecret({ ...env.secrets.identomat, companyKey: 'it-wrong-company-key' });
    // act
    const error = await processMessage(await message(sessionChange(sessionId, 'APPROVED')), deps).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    // assess
    assert.ok(error instanceof ConfigurationError, `expected a ConfigurationError, got ${String(error)}`);
    assert.match(error.message, /companyKey/);
    assert.ok(!error.message.includes('it-wrong-company-key'), 'the key is never shown');
    assert.deepEqual(requestsAbout(sessionId).map((call) => [call.authorized, call.status]), [[false, 401]]);
    assert.equal(await storedState(env, 'identomat', sessionId), undefined);
  });

  test('result/ down: the record is retried, then the callback is stored unconfirmed and a re-check confirms it later', async () => {
    // prepare
    const sessionId = uniqueId('idm-outage');
    endpointSays(sessionId, 'approved');
    const queued = await message(sessionChange(sessionId, 'APPROVED'));
    const deps = env.deps();
    endpoint.setFault({ status: 503 });
    try {
      // act
      const retried = [];
      for (let receive = 1; receive < QUEUE.askFaultAttempts; receive++) {
        retried.push(await processMessage(queued, deps, receive).then(() => 'stored', (error: unknown) => (error instanceof DependencyError ? error.dependency : String(error))));
      }
      const stored = await processMessage(queued, deps, QUEUE.askFaultAttempts);
      const duringOutage = await storedState(env, 'identomat', sessionId);
      endpoint.setFault(undefined);
      const rechecked = await processRecheck({ v: 1, kind: 'recheck', provider: 'identomat', subjectId: sessionId, at: new Date().toISOString() }, deps);
      // assess
      assert.deepEqual(retried, Array(QUEUE.askFaultAttempts - 1).fill('identomat'));
      assert.equal(stored.kind, 'stored');
      assert.equal(duringOutage?.status, undefined, 'the claim is not believed while result/ cannot say');
      assert.ok(duringOutage?.recheckAt);
      const [claim] = await storedEvents(env, 'identomat', sessionId);
      assert.match(String(claim.askFault), /503/);
      assert.equal(rechecked.kind === 'rechecked' && rechecked.asked, 'found');
      const state = await storedState(env, 'identomat', sessionId);
      assert.equal(state?.status, 'APPROVED');
      assert.equal(state?.confirmation, 'confirmed');
    } finally {
      endpoint.setFault(undefined);
    }
  });
});
