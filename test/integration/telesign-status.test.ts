import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { QUEUE } from '../../functions/core/pipeline-definition.ts';
import { eventsFromChange, type StatusChangedDetail } from '../../functions/core/publish.ts';
import { processRecheck } from '../../functions/core/recheck.ts';
import { createSecretCache } from '../../functions/core/secrets.ts';
import { processMessage, type WorkerDependencies, type WorkerResult } from '../../functions/core/worker.ts';
import { ConfigurationError, DependencyError } from '../../functions/shared/errors.ts';
import { listSamples } from '../../local/samples.ts';
import type { StatusSimulator } from '../../local/status-simulator.ts';
import type { Content } from '../providers/kit.ts';
import { telesignKit } from '../providers/telesign.ts';
import {
  queueMessageFor,
  startWorkerEnvironment,
  storedEvents,
  storedObservations,
  storedState,
  uniqueId,
  type WorkerEnvironment,
} from '../support/integration-worker.ts';
import { suiteResource } from '../support/suite-resource.ts';

/**
 * TeleSign's Get Status through the real worker, on DynamoDB Local, against the kit's simulated
 * Get Status endpoints (`env.simulators.telesign`). TeleSign's callbacks are signed
 * (`callbackTrust: 'signed'`): each is believed as it comes, and the answer is applied too,
 * forward-only; a disagreement is flagged (`mismatch`), never hidden.
 */

let env: WorkerEnvironment;
let simulator: StatusSimulator;
suiteResource(
  async () => {
    env = await startWorkerEnvironment();
    simulator = env.simulators.telesign;
  },
  async () => {
    await env?.stop();
  },
);

/** Worker dependencies whose TeleSign secret turns Get Status on (it is off by default), with `changes` applied. */
function askingDeps(changes: Record<string, unknown> = {}, overrides: Partial<WorkerDependencies> = {}) {
  const secrets: Record<string, Record<string, unknown>> = { ...env.secrets, telesign: { ...env.secrets.telesign, statusLookup: true, ...changes } };
  return env.deps({ secrets: createSecretCache(async (provider) => JSON.stringify(secrets[provider.id])), ...overrides });
}

/** A sample's callback about `referenceId`, with `status.updated_on` set when given. */
function callback(sample: string, referenceId: string, updatedOn?: string): Content {
  const found = listSamples('telesign').find((candidate) => candidate.name === sample)!;
  const json = JSON.parse(telesignKit.withSubject(found, referenceId).body!.toString('utf8')) as Record<string, any>;
  if (updatedOn !== undefined) json.status.updated_on = updatedOn;
  return { body: Buffer.from(JSON.stringify(json)) };
}

/** The Get Status answer about a callback's transaction (its status, or `status`), at `updatedOn` when given. */
function answer(content: Content, status?: string, updatedOn?: string): Record<string, any> {
  const json = telesignKit.statusAnswer!(content, status) as Record<string, any>;
  if (updatedOn !== undefined) json.status = { ...json.status, updated_on: updatedOn };
  return json;
}

/** What a re-check asked and whether it settled the subject. */
const result = (recheck: Awaited<ReturnType<typeof processRecheck>>) => (recheck.kind === 'rechecked' ? { asked: recheck.asked, settled: recheck.settled } : { kind: recheck.kind });

/** The verdict a stored (or duplicate) result carries. */
const confirmationOf = (result: WorkerResult) => (result.kind === 'stored' || result.kind === 'duplicate' ? result.confirmation : undefined);

const queued = (content: Content) => queueMessageFor(env.secrets, 'telesign', content.body!);
const callsFor = (referenceId: string) => simulator.requests.filter((request) => request.subjectId === referenceId);

describe('TeleSign Get Status, off by default', () => {
  test('without statusLookup a callback is believed as it comes, and TeleSign is not asked', async () => {
    // prepare
    const ref = uniqueId('TS-OFF');
    const content = callback('sms-dlr-success', ref);
    simulator.report(answer(content));
    // act
    const result = await processMessage(await queued(content), env.deps());
    // assess
    assert.equal(result.kind, 'stored');
    assert.equal(callsFor(ref).length, 0);
    const state = await storedState(env, 'telesign', ref);
    assert.equal(state?.status, '200');
    assert.equal(state?.confirmation, undefined);
    assert.equal(state?.recheckAt, undefined, 'nothing to re-check when the provider is not asked');
  });
});

describe('TeleSign Get Status on arrival', () => {
  test('an SMS delivery report is confirmed by GET /v1/messaging/{reference_id}, and needs no re-check', async () => {
    // prepare
    const ref = uniqueId('TS-OK');
    const content = callback('sms-dlr-success', ref);
    simulator.report(answer(content));
    // act
    const result = await processMessage(await queued(content), askingDeps());
    // assess
    assert.equal(result.kind === 'stored' && result.confirmation, 'confirmed');
    assert.deepEqual(callsFor(ref).map((call) => [call.authorized, call.status]), [[true, 200]]);
    const state = await storedState(env, 'telesign', ref);
    assert.equal(state?.status, '200');
    assert.equal(state?.outcome, 'succeeded');
    assert.equal(state?.confirmation, 'confirmed');
    assert.equal(state?.confirmedStatus, '200');
    assert.equal(state?.recheckAt, undefined, 'terminal and confirmed: settled');
    const [claim, ...others] = await storedObservations(env, 'telesign', ref);
    assert.equal(claim.confirmation, 'confirmed');
    assert.equal(claim.answerIsClaim, true, 'the answer says what the callback says: kept once');
    assert.deepEqual(others, []);
  });

  test('an SMS Verify report is confirmed by GET /v1/verify/{reference_id} after messaging answers 404, and the answer adds its code state', async () => {
    // prepare
    const ref = uniqueId('TS-VFY');
    const content = callback('sms-verify-dlr', ref);
    simulator.report(answer(content, '200 VALID'));
    // act
    const result = await processMessage(await queued(content), askingDeps());
    // assess
    assert.equal(result.kind === 'stored' && result.confirmation, 'confirmed', "the callback's UNKNOWN code state claims nothing");
    assert.deepEqual(callsFor(ref).map((call) => call.status), [404, 200]);
    const state = await storedState(env, 'telesign', ref);
    assert.equal(state?.status, '200 VALID');
    assert.equal(state?.source, 'status-endpoint');
    assert.deepEqual(state?.detail, { codeState: 'VALID' });
    assert.equal(state?.confirmedStatus, '200 VALID');
  });

  test('mismatch, answer ahead: the endpoint says 207 after the signed 200; the answer is applied forward-only, the disagreement flagged', async () => {
    // prepare
    const ref = uniqueId('TS-AHEAD');
    const content = callback('sms-dlr-success', ref, '2026-03-01T10:00:00.000Z');
    simulator.report(answer(content, '207', '2026-03-01T10:00:30.000Z'));
    // act
    const result = await processMessage(await queued(content), askingDeps());
    // assess
    assert.equal(result.kind === 'stored' && result.confirmation, 'mismatch');
    const state = await storedState(env, 'telesign', ref);
    assert.equal(state?.status, '207', "the provider's later status");
    assert.equal(state?.outcome, 'failed');
    assert.equal(state?.confirmation, 'mismatch');
    assert.equal(state?.confirmedStatus, '207');
    assert.deepEqual(state?.differences, ['status']);
    const [claim] = await storedEvents(env, 'telesign', ref);
    assert.equal(claim.status, '200', 'the claim is kept as it came');
    assert.equal(claim.confirmation, 'mismatch');
  });

  test('mismatch, answer behind: the endpoint still says 203; the signed 200 stays, the worker asks again, then the verdict stands', async () => {
    // prepare
    const ref = uniqueId('TS-BEHIND');
    const content = callback('sms-dlr-success', ref, '2026-03-01T10:00:30.000Z');
    simulator.report(answer(content, '203', '2026-03-01T10:00:00.000Z'));
    const message = await queued(content);
    const deps = askingDeps();
    // act
    const first = processMessage(message, deps);
    // assess
    await assert.rejects(first, DependencyError, 'the endpoint may not have caught up: retried');
    const believed = await storedState(env, 'telesign', ref);
    assert.equal(believed?.status, '200', 'believed at once: a signed callback');
    const last = await processMessage(message, deps, QUEUE.settleAttempts);
    assert.equal(confirmationOf(last), 'mismatch');
    const state = await storedState(env, 'telesign', ref);
    assert.equal(state?.status, '200', 'an older answer never moves the state back');
    assert.equal(state?.confirmation, undefined, 'an answer older than the status in place is not news to the state');
    assert.ok(state?.recheckAt, 'not confirmed: asked again later');
    const [claim] = await storedEvents(env, 'telesign', ref);
    assert.equal(claim.confirmation, 'mismatch', 'the claim carries the verdict');
    assert.equal(claim.confirmedStatus, '203');
    assert.deepEqual(callsFor(ref).map((call) => call.status), [200, 200]);
  });

  test('not_found: the callback is believed, marked not_found, and re-checked no sooner than TeleSign advises (5 minutes)', async () => {
    // prepare
    const ref = uniqueId('TS-NONE');
    const message = await queued(callback('sms-dlr-success', ref));
    const deps = askingDeps();
    // act
    await assert.rejects(processMessage(message, deps), DependencyError, 'retried while TeleSign may not know it yet');
    const asked = Date.now();
    const result = await processMessage(message, deps, QUEUE.settleAttempts);
    // assess
    assert.equal(confirmationOf(result), 'not_found');
    assert.deepEqual(callsFor(ref).map((call) => call.status), [404, 404, 404, 404], 'both endpoints, each time');
    const state = await storedState(env, 'telesign', ref);
    assert.equal(state?.status, '200');
    assert.equal(state?.confirmation, 'not_found');
    assert.ok(Date.parse(String(state?.recheckAt)) >= asked + 300_000 - 5_000, `re-check at ${String(state?.recheckAt)}`);
    assert.match(String(state?.recheckShard), /^telesign#\d+$/);
  });
});

describe('TeleSign callbacks Get Status does not serve', () => {
  for (const sample of ['voice-call_completed', 'verify-api-dlr', 'bulk-sms-success', 'inbound-mo-sms']) {
    test(`${sample}: not asked about, believed as it comes, off the re-check schedule`, async () => {
      // prepare
      const ref = uniqueId('TS-NOGET');
      const found = listSamples('telesign').find((candidate) => candidate.name === sample)!;
      const content = { body: telesignKit.withSubject(found, ref).body };
      // act
      const result = await processMessage(await queued(content), askingDeps());
      // assess
      assert.equal(result.kind, 'stored');
      assert.equal(callsFor(ref).length, 0);
      const state = await storedState(env, 'telesign', ref);
      assert.equal(state?.confirmation, undefined);
      assert.equal(state?.recheckAt, undefined);
    });
  }
});

describe('TeleSign Get Status on re-check', () => {
  test('a report TeleSign did not know on arrival is confirmed by the re-check, once Get Status has it', async () => {
    // prepare: the callback came before TeleSign's Get Status had the transaction
    const ref = uniqueId('TS-LATE');
    const content = callback('sms-verify-dlr', ref);
    const message = await queued(content);
    const deps = askingDeps();
    await assert.rejects(processMessage(message, deps), DependencyError);
    await processMessage(message, deps, QUEUE.settleAttempts);
    const before = await storedState(env, 'telesign', ref);
    simulator.report(answer(content, '200 VALID'));
    // act: the sweep found it due (no sooner than 5 minutes later) and queued the re-check
    const result = await processRecheck({ v: 1, kind: 'recheck', provider: 'telesign', subjectId: ref, at: new Date().toISOString() }, deps);
    // assess
    assert.equal(before?.confirmation, 'not_found');
    assert.deepEqual(result, { kind: 'rechecked', asked: 'found', verdict: 'confirmed', stateChanged: true, settled: true, stale: false });
    const state = await storedState(env, 'telesign', ref);
    assert.equal(state?.status, '200 VALID', 'the answer adds the code state, forward only');
    assert.equal(state?.confirmation, 'confirmed');
    assert.equal(state?.recheckAt, undefined, 'settled: off the schedule');
  });

  test('a wrong code (INVALID) is failed but stays on the schedule; the VALID Get Status later says replaces it, and an older INVALID never takes it back', async () => {
    // prepare: delivered; by the time TeleSign is asked, the user has typed a wrong code
    const ref = uniqueId('TS-RETRY');
    const content = callback('sms-verify-dlr', ref, '2026-03-01T10:00:00.000Z');
    simulator.report(answer(content, '200 INVALID', '2026-03-01T10:01:00.000Z'));
    const deps = askingDeps();
    // act: arrival, then the user tries again and gets it right; the re-check asks Get Status
    await processMessage(await queued(content), deps, QUEUE.settleAttempts);
    const invalid = await storedState(env, 'telesign', ref);
    simulator.report(answer(content, '200 VALID', '2026-03-01T10:02:00.000Z'));
    const recheck = await processRecheck({ v: 1, kind: 'recheck', provider: 'telesign', subjectId: ref, at: new Date().toISOString() }, deps);
    const valid = await storedState(env, 'telesign', ref);
    // then a signed callback carrying the earlier INVALID arrives late
    const lateJson = JSON.parse(content.body!.toString('utf8')) as Record<string, any>;
    lateJson.status.updated_on = '2026-03-01T10:01:00.000Z';
    lateJson.verify = { ...lateJson.verify, code_state: 'INVALID' };
    await processMessage(await queued({ body: Buffer.from(JSON.stringify(lateJson)) }), deps, QUEUE.settleAttempts);
    const after = await storedState(env, 'telesign', ref);
    // assess
    assert.deepEqual([invalid?.status, invalid?.outcome, invalid?.terminal], ['200 INVALID', 'failed', false]);
    assert.ok(invalid?.recheckAt, 'a wrong code is not the end: TeleSign is asked again');
    assert.deepEqual(result(recheck), { asked: 'found', settled: true });
    assert.deepEqual([valid?.status, valid?.outcome, valid?.terminal, valid?.confirmation], ['200 VALID', 'succeeded', true, 'confirmed']);
    assert.equal(valid?.recheckAt, undefined, 'settled once VALID');
    assert.deepEqual([after?.status, after?.outcome, after?.terminal], ['200 VALID', 'succeeded', true], 'an older INVALID never moves it back');
  });

  test('still in progress (203), a wrong code, then the right one: 203 VALID replaces 203 INVALID, succeeded and settled', async () => {
    // prepare: sent to the carrier, no final delivery code yet; the user typed a wrong code first
    const ref = uniqueId('TS-203');
    const json = JSON.parse(callback('sms-verify-dlr', ref, '2026-03-01T10:00:00.000Z').body!.toString('utf8')) as Record<string, any>;
    json.status.code = 203;
    const content = { body: Buffer.from(JSON.stringify(json)) };
    simulator.report(answer(content, '203 INVALID', '2026-03-01T10:01:00.000Z'));
    const deps = askingDeps();
    // act
    await processMessage(await queued(content), deps, QUEUE.settleAttempts);
    const invalid = await storedState(env, 'telesign', ref);
    simulator.report(answer(content, '203 VALID', '2026-03-01T10:02:00.000Z'));
    const recheck = await processRecheck({ v: 1, kind: 'recheck', provider: 'telesign', subjectId: ref, at: new Date().toISOString() }, deps);
    const valid = await storedState(env, 'telesign', ref);
    // assess
    assert.deepEqual([invalid?.status, invalid?.outcome, invalid?.terminal], ['203 INVALID', 'failed', false]);
    assert.deepEqual(result(recheck), { asked: 'found', settled: true });
    assert.deepEqual([valid?.status, valid?.outcome, valid?.terminal], ['203 VALID', 'succeeded', true]);
    assert.equal(valid?.recheckAt, undefined, 'settled once VALID');
  });

  /** A signed callback with `code` at `callbackAt`, Get Status answering `answered` at `answeredAt`: the state after arrival and after one re-check. */
  async function contradicted(prefix: string, code: number, callbackAt: string, answered: string, answeredAt: string) {
    const ref = uniqueId(prefix);
    const content = callback('sms-dlr-success', ref, callbackAt);
    const json = JSON.parse(content.body!.toString('utf8')) as Record<string, any>;
    json.status.code = code;
    const signed: Content = { body: Buffer.from(JSON.stringify(json)) };
    simulator.report(answer(signed, answered, answeredAt));
    const deps = askingDeps();
    await processMessage(await queued(signed), deps, QUEUE.settleAttempts);
    const arrived = await storedState(env, 'telesign', ref);
    const result = await processRecheck({ v: 1, kind: 'recheck', provider: 'telesign', subjectId: ref, at: new Date().toISOString() }, deps);
    return { arrived, result, state: await storedState(env, 'telesign', ref) };
  }

  for (const [code, outcome] of [[207, 'failed'], [250, 'unknown']] as const) {
    test(`a lagging Get Status never turns a newer signed ${code} into a success: its older 200 is flagged, not applied`, async () => {
      // act: signed at 10:05; Get Status still says delivered, as of 10:00
      const { arrived, result, state } = await contradicted('TS-LAG', code, '2026-03-01T10:05:00.000Z', '200', '2026-03-01T10:00:00.000Z');
      // assess
      assert.deepEqual([arrived?.status, arrived?.outcome], [String(code), outcome]);
      assert.equal(result.kind === 'rechecked' && result.verdict, 'mismatch');
      assert.deepEqual([state?.status, state?.outcome, state?.statusAt], [String(code), outcome, '2026-03-01T10:05:00.000Z'], 'the newer status stays');
      assert.deepEqual([state?.confirmation, state?.confirmedStatus], ['mismatch', '200'], 'the disagreement is flagged for a person');
      assert.ok(state?.recheckAt, 'asked again');
    });
  }

  test('an older final answer still takes a success away: a signed 200, Get Status says 207 as of before it', async () => {
    // act: signed delivered at 10:05; Get Status says failed, as of 10:00
    const { arrived, state } = await contradicted('TS-FAILS', 200, '2026-03-01T10:05:00.000Z', '207', '2026-03-01T10:00:00.000Z');
    // assess: fail closed, as the README's "the answer wins" says
    assert.deepEqual([arrived?.status, arrived?.outcome], ['200', 'succeeded']);
    assert.deepEqual([state?.status, state?.outcome, state?.source], ['207', 'failed', 'status-endpoint']);
    assert.equal(state?.confirmation, 'mismatch');
  });
});

describe('TeleSign Get Status faults', () => {
  test('a refused API key fails the record with a ConfigurationError naming apiKey, never its value; in the end the callback is stored unconfirmed', async () => {
    // prepare
    const ref = uniqueId('TS-KEY');
    const content = callback('sms-dlr-success', ref);
    simulator.report(answer(content));
    const wrongKey = Buffer.from('a-wrong-key-of-the-right-length!').toString('base64');
    const message = await queued(content);
    const deps = askingDeps({ apiKey: wrongKey });
    // act
    const error = await processMessage(message, deps).then(
      () => assert.fail('expected a ConfigurationError'),
      (thrown: unknown) => thrown as Error,
    );
    const last = await processMessage(message, deps, QUEUE.askFaultAttempts);
    // assess
    assert.ok(error instanceof ConfigurationError, String(error));
    assert.match(error.message, /apiKey/);
    assert.ok(!error.message.includes(wrongKey));
    assert.deepEqual(callsFor(ref).map((call) => [call.authorized, call.status]), [[false, 401], [false, 401]]);
    assert.equal(last.kind, 'stored', 'a signed callback never waits for the DLQ on our credential');
    const state = await storedState(env, 'telesign', ref);
    assert.equal(state?.status, '200');
    assert.equal(state?.confirmation, undefined);
    const [claim] = await storedEvents(env, 'telesign', ref);
    assert.match(String(claim.askFault), /apiKey/);
    assert.ok(!String(claim.askFault).includes(wrongKey));
  });

  test('Get Status down (503): DependencyError, retried; once it answers, the callback is confirmed', async () => {
    // prepare
    const ref = uniqueId('TS-DOWN');
    const content = callback('sms-dlr-success', ref);
    simulator.report(answer(content));
    const message = await queued(content);
    const deps = askingDeps();
    simulator.setFault({ status: 503, times: 1 });
    // act
    await assert.rejects(processMessage(message, deps), DependencyError);
    const result = await processMessage(message, deps, 2);
    // assess
    assert.equal(result.kind === 'stored' && result.confirmation, 'confirmed');
    assert.equal((await storedState(env, 'telesign', ref))?.confirmation, 'confirmed');
  });

  test("a 203 confirmed, then the 200 while Get Status is down: neither the state nor its event calls the 200 confirmed", async () => {
    // prepare: the 203 confirmed on arrival
    const ref = uniqueId('TS-CONF-DOWN');
    const sent = callback('sms-dlr-success', ref, '2026-03-01T10:00:00Z');
    const sentJson = JSON.parse(sent.body!.toString('utf8')) as Record<string, any>;
    sentJson.status = { ...sentJson.status, code: 203, description: 'Delivered to gateway' };
    const first = { body: Buffer.from(JSON.stringify(sentJson)) };
    simulator.report(answer(first));
    const deps = askingDeps();
    assert.equal((await processMessage(await queued(first), deps)).kind, 'stored');
    const before = await storedState(env, 'telesign', ref);
    assert.deepEqual([before?.status, before?.confirmation], ['203', 'confirmed'], 'the premise');
    // act: the delivery report; Get Status fails on every receive allowed for it
    simulator.setFault({ status: 503, times: 100 });
    await processMessage(await queued(callback('sms-dlr-success', ref, '2026-03-01T10:00:30Z')), deps, QUEUE.askFaultAttempts);
    simulator.setFault(undefined);
    const after = await storedState(env, 'telesign', ref);
    const [event] = eventsFromChange({ eventName: 'MODIFY', oldImage: before, newImage: after });
    // assess
    assert.equal(after?.status, '200');
    assert.deepEqual([after?.confirmation, after?.confirmedStatus, after?.differences], [undefined, undefined, undefined], 'the 200 is unconfirmed');
    assert.ok(after?.unansweredClaimAt, 're-checks will ask about it');
    const detail = event.detail as StatusChangedDetail;
    assert.deepEqual([detail.status, detail.confirmation, detail.confirmedStatus], ['200', undefined, undefined]);
  });
});
