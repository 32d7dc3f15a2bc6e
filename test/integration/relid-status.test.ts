import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { QUEUE, TABLE } from '../../functions/core/pipeline-definition.ts';
import { createSecretCache } from '../../functions/core/secrets.ts';
import { processRecheck } from '../../functions/core/recheck.ts';
import { processMessage } from '../../functions/core/worker.ts';
import { ConfigurationError, DependencyError } from '../../functions/shared/errors.ts';
import { startStatusSimulator, type StatusSimulator } from '../../local/status-simulator.ts';
import { RELID_TOKEN_REQUEST, relidSecret, relidStatusAnswer, relidStatusSimulation } from '../providers/relid.ts';
import {
  byOutcome,
  queueMessageFor,
  sampleJson,
  startWorkerEnvironment,
  storedEvents,
  storedObservations,
  storedState,
  type WorkerEnvironment,
} from '../support/integration-worker.ts';
import { suiteResource } from '../support/suite-resource.ts';

/**
 * REL-IDverify callbacks through the real worker on DynamoDB Local, with getRVNStatus simulated
 * from the kit: a callback carries only a URL token, so once REL-ID can be asked, its answer is
 * what the state believes and the callback is the claim it judges.
 */

let env: WorkerEnvironment;
let relId: StatusSimulator;
suiteResource(
  async () => {
    env = await startWorkerEnvironment();
    relId = env.simulators.relid;
    assert.ok(relId, 'the harness runs a simulated getRVNStatus for REL-ID');
  },
  async () => {
    await env?.stop();
  },
);

/** The docs' TWO-WAY callback (UPDATED, "Approved", signature verified) for a notification of its own. */
function approval(changes: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...sampleJson('relid', 'callback-two-way'), notification_uuid: randomUUID(), ...changes };
}

/** What getRVNStatus answers for `callback`'s notification: the same, or in `status`, or with changes. */
function answerFor(callback: Record<string, unknown>, status?: string, changes: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...relidStatusAnswer({ body: Buffer.from(JSON.stringify(callback)) }, status), ...changes };
}

const message = (body: Record<string, unknown>) => queueMessageFor(env.secrets, 'relid', body);
const callsFor = (simulator: StatusSimulator, id: string) => simulator.requests.filter((request) => request.subjectId === id);

describe('REL-ID callbacks judged by getRVNStatus', () => {
  test('confirmed: REL-ID says what the callback says, and the approval stands', async () => {
    // prepare
    const callback = approval();
    const id = String(callback.notification_uuid);
    relId.report(answerFor(callback));
    // act
    const result = await processMessage(await message(callback), env.deps());
    // assess
    assert.deepEqual(result, { kind: 'stored', subjectId: id, stateChanged: true, confirmation: 'confirmed' });
    const state = await storedState(env, 'relid', id);
    assert.deepEqual([state?.status, state?.outcome, state?.terminal], ['UPDATED', 'succeeded', true]);
    assert.equal(state?.confirmation, 'confirmed');
    assert.equal(state?.confirmedStatus, 'UPDATED');
    const [event] = await storedEvents(env, 'relid', id);
    assert.equal(event.confirmation, 'confirmed');
    const calls = callsFor(relId, id);
    assert.deepEqual(calls.map((call) => [call.authorized, call.status]), [[true, 200]]);
  });

  test('mismatch: the callback says Approved, REL-ID says Rejected; REL-ID is believed, never the claim', async () => {
    // prepare
    const callback = approval();
    const id = String(callback.notification_uuid);
    relId.report(answerFor(callback, undefined, { action_response: 'Rejected' }));
    // act
    const result = await processMessage(await message(callback), env.deps());
    // assess
    assert.equal(result.kind === 'stored' && result.confirmation, 'mismatch');
    const state = await storedState(env, 'relid', id);
    assert.deepEqual([state?.status, state?.outcome, state?.terminal], ['UPDATED', 'failed', true]);
    assert.equal((state?.detail as Record<string, unknown>).action, 'Rejected', "the state holds REL-ID's label");
    assert.equal(state?.confirmation, 'mismatch');
    assert.deepEqual(state?.differences, ['action_response']);
    assert.equal(state?.[TABLE.outcomeIndex.partitionKey], 'relid#failed');
    assert.ok(!(await byOutcome(env, 'relid', 'succeeded')).some((item) => item.subjectId === id), 'never listed as approved');
    const [event] = await storedEvents(env, 'relid', id);
    assert.equal((event.payload as Record<string, unknown>).action_response, 'Approved', 'the claim is kept as it came');
    assert.equal(event.confirmation, 'mismatch');
    const answers = (await storedObservations(env, 'relid', id)).filter((item) => item.source === 'status-endpoint');
    assert.deepEqual(answers.map((answer) => [answer.status, answer.outcome]), [['UPDATED', 'failed']], "REL-ID's answer is kept beside the claim");
  });

  test('mismatch: an approval of a notification REL-ID has as EXPIRED is never believed, however often it is redelivered', async () => {
    // prepare
    const callback = approval();
    const id = String(callback.notification_uuid);
    relId.report(answerFor(callback, 'EXPIRED'));
    const queued = await message(callback);
    // act: the answer is as recent as the claim (one update_ts) and not a success, and a tie never
    // goes to success: the verdict stands at once; then the same callback redelivered
    const result = await processMessage(queued, env.deps(), 1);
    const afterFirst = await storedState(env, 'relid', id);
    const again = await processMessage(queued, env.deps(), QUEUE.settleAttempts);
    // assess
    assert.deepEqual([afterFirst?.status, afterFirst?.outcome], ['EXPIRED', 'failed']);
    assert.equal('confirmation' in result && result.confirmation, 'mismatch');
    assert.notEqual(again.kind, 'stored', 'the redelivery is a duplicate');
    const state = await storedState(env, 'relid', id);
    assert.deepEqual([state?.status, state?.outcome], ['EXPIRED', 'failed']);
    assert.deepEqual(state?.differences, ['status', 'action_response']);
    assert.ok(!(await byOutcome(env, 'relid', 'succeeded')).some((item) => item.subjectId === id));
  });

  test('a re-check that finds UPDATED with a rejection where the state holds UPDATED approved: not confirmed by the status text, REL-ID believed', async () => {
    // prepare: approved and confirmed; then a rejection claim nobody could judge (getRVNStatus down)
    const callback = approval();
    const id = String(callback.notification_uuid);
    relId.report(answerFor(callback));
    await processMessage(await message(callback), env.deps());
    const rejection = { ...callback, action_response: 'Rejected', update_ts: '2024-10-11T13:00:20Z' };
    relId.setFault({ status: 503 });
    try {
      await processMessage(await message(rejection), env.deps(), QUEUE.askFaultAttempts);
    } finally {
      relId.setFault(undefined);
    }
    // getRVNStatus now says UPDATED with the rejection, stamped earlier than the approval in place
    relId.report(answerFor(callback, undefined, { action_response: 'Rejected', update_ts: '2024-10-11T13:00:10Z' }));

    // act
    const result = await processRecheck({ v: 1, kind: 'recheck', provider: 'relid', subjectId: id, at: new Date().toISOString() }, env.deps());

    // assess
    assert.equal(result.kind === 'rechecked' && result.verdict, 'mismatch');
    const state = await storedState(env, 'relid', id);
    assert.deepEqual([state?.status, state?.outcome, state?.confirmation, state?.differences], ['UPDATED', 'failed', 'mismatch', ['outcome']]);
  });

  test('a callback that overtook getRVNStatus (still ACTIVE there) ends confirmed once REL-ID catches up', async () => {
    // prepare
    const callback = approval();
    const id = String(callback.notification_uuid);
    relId.report(answerFor(callback, 'ACTIVE'));
    const queued = await message(callback);
    // act
    await assert.rejects(processMessage(queued, env.deps(), 1), DependencyError);
    const behind = await storedState(env, 'relid', id);
    relId.report(answerFor(callback));
    const result = await processMessage(queued, env.deps(), 2);
    // assess
    assert.deepEqual([behind?.status, behind?.outcome, behind?.terminal], ['ACTIVE', 'pending', false], 'only what REL-ID said is believed');
    assert.equal('confirmation' in result && result.confirmation, 'confirmed');
    const state = await storedState(env, 'relid', id);
    assert.deepEqual([state?.status, state?.outcome, state?.confirmation], ['UPDATED', 'succeeded', 'confirmed']);
  });

  test('not_found (error_code 3558, answered 200): retried as "not known yet", then recorded but never applied', async () => {
    // prepare
    const callback = approval();
    const id = String(callback.notification_uuid);
    const queued = await message(callback);
    // act
    await assert.rejects(processMessage(queued, env.deps(), 1), DependencyError);
    const result = await processMessage(queued, env.deps(), QUEUE.settleAttempts);
    // assess
    assert.equal('confirmation' in result && result.confirmation, 'not_found');
    const state = await storedState(env, 'relid', id);
    assert.equal(state?.status, undefined, 'no status believed');
    assert.equal(state?.outcome, 'pending');
    assert.equal(state?.confirmation, 'not_found');
    const [event] = await storedEvents(env, 'relid', id);
    assert.equal(event.status, 'UPDATED');
    assert.equal(event.confirmation, 'not_found');
    assert.deepEqual(callsFor(relId, id).map((call) => call.status), [200, 200], 'REL-ID answers "not found" in the body of a 200');
  });

  test('a refused credential fails the record as a ConfigurationError, and nothing is believed', async () => {
    // prepare
    const callback = approval();
    const id = String(callback.notification_uuid);
    relId.report(answerFor(callback));
    const queued = await message(callback);
    const wrong: Record<string, Record<string, unknown>> = { ...env.secrets, relid: { ...env.secrets.relid, password: 'it-not-the-password' } };
    const secrets = createSecretCache(async (provider) => JSON.stringify(wrong[provider.id]));
    // act
    const error = await processMessage(queued, env.deps({ secrets })).then(
      () => assert.fail('expected the record to fail'),
      (thrown: unknown) => thrown as Error,
    );
    // assess
    assert.ok(error instanceof ConfigurationError, `${error.name}: ${error.message}`);
    assert.match(error.message, /username and password/);
    assert.ok(!error.message.includes('it-not-the-password'));
    assert.equal((await storedState(env, 'relid', id))?.outcome, undefined);
  });
});

describe('REL-ID callbacks judged by getRVNStatus, with an OAuth2 access token', () => {
  let oauth: StatusSimulator;
  let secrets: Record<string, Record<string, unknown>>;
  before(async () => {
    oauth = await startStatusSimulator(relidStatusSimulation(relidSecret('it', { auth: 'both' })));
    secrets = { ...env.secrets, relid: relidSecret('it', { auth: 'oauth', statusEndpoint: oauth.baseUrl }) };
  });
  after(() => oauth?.stop());

  test('confirmed and mismatch through one access token, fetched once for the worker instance', async () => {
    // prepare
    const agreeing = approval();
    const forged = approval();
    oauth.report(answerFor(agreeing));
    oauth.report(answerFor(forged, undefined, { is_ds_verified: false }));
    const deps = env.deps({ secrets: createSecretCache(async (provider) => JSON.stringify(secrets[provider.id])) });
    // act
    const first = await processMessage(await queueMessageFor(secrets, 'relid', agreeing), deps);
    const second = await processMessage(await queueMessageFor(secrets, 'relid', forged), deps);
    // assess
    assert.equal(first.kind === 'stored' && first.confirmation, 'confirmed');
    assert.equal(second.kind === 'stored' && second.confirmation, 'mismatch');
    const state = await storedState(env, 'relid', String(forged.notification_uuid));
    assert.deepEqual([state?.outcome, state?.differences], ['failed', ['is_ds_verified']], 'an unverified signature is not an approval');
    assert.equal(oauth.requests.filter((request) => request.subjectId === RELID_TOKEN_REQUEST).length, 1);
    assert.ok(oauth.requests.every((request) => request.authorized));
  });
});
