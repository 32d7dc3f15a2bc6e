import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { QUEUE } from '../../functions/core/pipeline-definition.ts';
import { retryDelaySeconds } from '../../functions/handlers/back-off.ts';
import { believesCallbacks } from '../../functions/providers/provider.ts';
import { waitFor } from '../../local/engines.ts';
import type { StatusFault, StatusSimulator } from '../../local/status-simulator.ts';
import { allKits } from '../providers/index.ts';
import type { ProviderKit } from '../providers/kit.ts';
import { envNumber, startFaultRig, waitForDrain, type FaultRig, type LogLine, type StoredSubject } from '../support/faults-rig.ts';
import { readRequest, sendAll, sendCallback, subjectLife, type Callback } from '../support/faults-traffic.ts';
import { suiteResource } from '../support/suite-resource.ts';

/**
 * Every status endpoint the worker asks misbehaves in turn (the simulator's setFault): each failure
 * is retried with a growing delay and the callback is confirmed once the endpoint recovers. A
 * "not known" answer is retried too (the callback may have overtaken the endpoint's view of a new
 * transaction); only on the last of QUEUE.settleAttempts receives is it taken as the verdict,
 * `not_found`: recorded, and applied only for a provider whose callbacks are signed. An endpoint
 * that stays down past QUEUE.askFaultAttempts receives leaves the callback stored unconfirmed, never
 * in the DLQ, and a re-check confirms it once the endpoint is back. Under load, an outage loses nothing.
 */

const RETRY_BASE_SECONDS = 1;
const CONFIRM_TIMEOUT_MS = 2500;
/** Re-checks within seconds, so an outage's end is seen quickly. */
const RECONCILE_SCHEDULE = '2s,4s,8s,16s,32s,64s';
/** Subjects per provider sent into an outage, and how long it lasts. */
const OUTAGE_LIVES = Math.round(envNumber('FAULT_STATUS_LIVES', 30));
const OUTAGE_SECONDS = envNumber('FAULT_STATUS_OUTAGE_SECONDS', 12);

let rig: FaultRig;
const askedKits = allKits().filter((kit) => kit.provider.lookup && kit.statusSimulation);

/** A subject's life (the kit's): its last callback that reports a status, and what the endpoint answers at the end. */
function lifeOf(kit: ProviderKit, name: string) {
  const life = subjectLife(kit, rig.secrets, `${name}-${process.pid}`);
  const reporting = life.callbacks.filter((callback) => readRequest(kit.provider, callback.request, callback.secret).facts.placesStatus !== false);
  const last = reporting.at(-1)!;
  return { callbacks: reporting, last, answer: life.answer!.answer };
}

/** When each status request reached the simulator (its own log has no times). */
function watchStatusRequests(simulator: StatusSimulator): { times: number[]; stop(): void } {
  const times: number[] = [];
  const timer = setInterval(() => {
    while (times.length < simulator.requests.length) times.push(Date.now());
  }, 5);
  return { times, stop: () => clearInterval(timer) };
}

async function waitForSubject(callback: Callback, until: (subject: StoredSubject) => boolean, timeoutMs = 45_000): Promise<StoredSubject> {
  let subject: StoredSubject | undefined;
  await waitFor(`${callback.subjectId} to settle`, async () => until((subject = await rig.readSubject(callback.provider, callback.subjectId))), timeoutMs, 100);
  return subject!;
}

/** How a status request ended for the worker: a status it acted on, or a timeout. */
const outcomeOf = (status: number | undefined, failed: boolean) =>
  status === undefined ? 'timed out' : failed && status === 200 ? 'timed out (its 200 came late)' : String(status);

const failuresSince = (since: number): LogLine[] =>
  rig.pipeline!.logs().filter((line) => line.message.startsWith('record failed') && Date.parse(line.timestamp) >= since);

suiteResource(
  async () => {
    rig = await startFaultRig();
    await rig.startPipeline([
      '--retry-base-seconds', String(RETRY_BASE_SECONDS),
      '--confirm-timeout-ms', String(CONFIRM_TIMEOUT_MS),
      '--reconcile-schedule', RECONCILE_SCHEDULE,
    ]);
  },
  async () => {
    const left = await rig?.stop();
    assert.deepEqual(left, [], 'processes or ports left behind');
  },
);

for (const kit of askedKits) {
describe(`fault: ${kit.provider.displayName} status endpoint`, { timeout: 600_000 }, () => {
  const id = kit.provider.id;
  const name = kit.provider.displayName;
  let watcher: ReturnType<typeof watchStatusRequests>;
  /** The rig's simulated status endpoint of this provider (the kit's `statusSimulation`). */
  let simulator: StatusSimulator;

  before(() => {
    simulator = rig.simulators.get(id)!;
    watcher = watchStatusRequests(simulator);
  });

  after(() => {
    simulator?.setFault(undefined);
    watcher?.stop();
  });

  const scenarios: { name: string; fault: StatusFault; failures: number }[] = [
    { name: '500 ×3', fault: { status: 500, times: 3 }, failures: 3 },
    { name: '429 ×2', fault: { status: 429, times: 2 }, failures: 2 },
    { name: 'no answer', fault: { hang: true, times: 1 }, failures: 1 },
    { name: `slow 5 s (timeout ${CONFIRM_TIMEOUT_MS / 1000} s)`, fault: { delayMs: 5000, times: 1 }, failures: 1 },
    { name: 'slow 1 s (within the timeout)', fault: { delayMs: 1000, times: 1 }, failures: 0 },
    { name: '404 ×2 (not known yet)', fault: { status: 404, times: 2 }, failures: 2 },
  ];

  scenarios.forEach((scenario, index) => {
    test(`${scenario.name} → ${scenario.failures > 0 ? 'retried with back-off, then confirmed' : 'confirmed at once'}`, async () => {
      // prepare: a subject the provider knows, and a fault on its status endpoint
      const { last: callback, answer: known } = lifeOf(kit, `${id}-fault-${index}`);
      simulator.report(known);
      const firstRequest = simulator.requests.length;
      const since = Date.now();
      simulator.setFault(scenario.fault);

      // act
      const answer = await sendCallback(rig.pipeline!.info.baseUrl, callback);
      const subject = await waitForSubject(callback, (s) => s.state?.confirmation === 'confirmed' && s.events[0]?.confirmation === 'confirmed');
      simulator.setFault(undefined);

      // assess
      const attempts = simulator.requests.slice(firstRequest).filter((r) => r.subjectId === callback.subjectId);
      const times = watcher.times.slice(firstRequest, firstRequest + attempts.length);
      const failures = failuresSince(since);
      // Back-off actually waited: from a failure's log line to the next status request.
      const delays = failures.map((failure, n) => ((times[n + 1] ?? Number.NaN) - Date.parse(failure.timestamp)) / 1000);
      console.log(
        `[faults] ${name} ${scenario.name}: answered ${answer.status}; status requests ${attempts.length} ` +
          `(${attempts.map((a, n) => `#${n + 1} +${((times[n] - times[0]) / 1000).toFixed(1)}s ${outcomeOf(a.status, n < failures.length)}`).join(', ')}); ` +
          `failed receives ${JSON.stringify(failures.map((f) => f.receiveCount))}, back-off ${delays.map((d) => `${d.toFixed(1)}s`).join(' → ') || 'none'}; ` +
          `stored ${subject.state?.status}/${subject.state?.confirmation}, events ${subject.events.length}`,
      );
      assert.equal(answer.status, 200);
      if (scenario.fault.status === 404) {
        // "Not known" may be asked of several endpoints in one receive (TeleSign: messaging, then
        // verify), so two 404s may be one receive or two; never more failures than 404s.
        assert.ok(failures.length >= 1 && failures.length <= scenario.failures, `${failures.length} failed receives`);
      } else {
        assert.equal(attempts.length, scenario.failures + 1, 'one status request per receive');
        assert.deepEqual(failures.map((f) => f.receiveCount), Array.from({ length: scenario.failures }, (_, n) => n + 1));
      }
      // (measured request to request: only where each receive makes one request)
      if (scenario.fault.status !== 404) delays.forEach((delay, n) => {
        const backOff = RETRY_BASE_SECONDS * 2 ** n;
        // The worker adds up to a quarter more (jitter, rounded to whole seconds: the third back-off
        // of 4 s is 5 s one time in two), then the redelivered record is received and processed.
        const jittered = retryDelaySeconds(n + 1, RETRY_BASE_SECONDS, () => 1 - 2 ** -53); // Math.random() < 1
        assert.ok(delay >= backOff - 0.25, `retry ${n + 1} came after ${delay} s, before its ${backOff} s back-off`);
        assert.ok(delay < jittered + 3, `retry ${n + 1} came after ${delay} s, long after its ${backOff} s back-off (${jittered} s at most with jitter)`);
      });
      assert.equal(subject.state?.confirmation, 'confirmed');
      assert.equal(subject.state?.status, readRequest(kit.provider, callback.request, callback.secret).facts.status);
      assert.equal(subject.state?.eventCount, 1);
      assert.equal(subject.events.length, 1);
      assert.equal((await rig.queueDepth()).dlq, 0);
    });
  });

  const believed = believesCallbacks(kit.provider, true);
  test(`not known on all ${QUEUE.settleAttempts} receives → not_found recorded, ${believed ? 'the signed callback applied' : 'never applied'}; confirmed once ${name} knows it`, async () => {
    // prepare: a subject the provider does not know (yet), with an earlier and a final callback
    const { callbacks, answer: transfer } = lifeOf(kit, `${id}-fault-404`);
      const submitted = callbacks.length >= 2 ? callbacks.at(-2)! : callbacks[0];
    const final = callbacks.at(-1)!;
    simulator.forget(final.subjectId);
    const firstRequest = simulator.requests.length;
    const since = Date.now();

    // act: the earlier callback meets "not known"; then the provider learns the subject, sends its
    // final status, and retries the earlier callback once more
    const first = await sendCallback(rig.pipeline!.info.baseUrl, submitted);
    // The state records the not_found at once; the claim is asked once per receive until it stands.
    const afterNotFound = await waitForSubject(submitted, (s) => Number(s.events[0]?.asks) >= QUEUE.settleAttempts);
    const failures = failuresSince(since);
    simulator.report(transfer);
    const second = await sendCallback(rig.pipeline!.info.baseUrl, final);
    await waitForSubject(final, (s) => s.state?.confirmation === 'confirmed');
    const retry = await sendCallback(rig.pipeline!.info.baseUrl, submitted);
    await waitForDrain(rig, 20_000);
    const settled = await rig.readSubject(id, submitted.subjectId);

    // assess
    const attempts = simulator.requests.slice(firstRequest).filter((r) => r.subjectId === submitted.subjectId);
    const times = watcher.times.slice(firstRequest);
    console.log(
      `[faults] ${name} not known always: answered ${first.status}/${second.status}/${retry.status}; ` +
        `status requests ${attempts.map((a, n) => `#${n + 1} +${((times[n] - times[0]) / 1000).toFixed(1)}s ${a.status}`).join(', ')}; ` +
        `failed receives ${JSON.stringify(failures.map((f) => f.receiveCount))}; after the 404s status=${String(afterNotFound.state?.status)} ` +
        `confirmation=${String(afterNotFound.state?.confirmation)} outcome=${String(afterNotFound.state?.outcome)}; ` +
        `finally ${String(settled.state?.status)}/${String(settled.state?.confirmation)}, events ${settled.events.length}, eventCount ${String(settled.state?.eventCount)}, DLQ ${(await rig.queueDepth()).dlq}`,
    );
    assert.deepEqual([first.status, second.status, retry.status], [200, 200, 200]);
    assert.deepEqual(failures.map((f) => f.receiveCount), Array.from({ length: QUEUE.settleAttempts - 1 }, (_, n) => n + 1), 'retried before believing a 404');
    assert.ok(attempts.length >= QUEUE.settleAttempts, 'asked on every receive');
    assert.equal(afterNotFound.state?.confirmation, 'not_found');
    const claimed = readRequest(kit.provider, submitted.request, submitted.secret).facts;
    if (believed) assert.equal(afterNotFound.state?.status, claimed.status, 'a signed callback is believed; its not_found is flagged');
    else {
      assert.equal(afterNotFound.state?.status, undefined, 'a claim the provider does not know is never applied');
      assert.equal(afterNotFound.state?.outcome, 'pending');
    }
    assert.equal(settled.state?.status, readRequest(kit.provider, final.request, final.secret).facts.status, 'the final status, confirmed');
    assert.equal(settled.state?.confirmation, 'confirmed');
    const distinct = submitted === final ? 1 : 2;
    assert.equal(settled.state?.eventCount, distinct);
    assert.equal(settled.events.length, distinct);
    assert.equal((await rig.queueDepth()).dlq, 0, 'a verdict, not a poison message');
  });

  test(`down through every receive → stored unconfirmed, never in the DLQ; a re-check confirms it once ${name} is back`, async () => {
    // prepare
    const { last: callback, answer: known } = lifeOf(kit, `${id}-fault-down`);
    simulator.report(known);
    simulator.setFault({ status: 503 });

    // act: the endpoint fails every receive, then comes back
    const answer = await sendCallback(rig.pipeline!.info.baseUrl, callback);
    const unconfirmed = await waitForSubject(callback, (s) => s.events[0]?.askFault !== undefined, 60_000).catch(async (error: unknown) => {
      const lines = rig.pipeline!.logs().filter((line) => JSON.stringify(line).includes(callback.subjectId) || String(line.message).startsWith('record failed'));
      console.log(JSON.stringify(await rig.readSubject(id, callback.subjectId)), lines.slice(-20).map((line) => JSON.stringify(line)).join('\n'));
      throw error;
    });
    simulator.setFault(undefined);
    const confirmed = await waitForSubject(callback, (s) => s.state?.confirmation === 'confirmed', 60_000);

    // assess
    console.log(
      `[faults] ${name} down past ${QUEUE.askFaultAttempts} receives: answered ${answer.status}; stored unconfirmed (${String(unconfirmed.events[0]?.askFault)}), ` +
        `confirmed by re-check ${String(confirmed.state?.rechecks ?? 0)} as ${String(confirmed.state?.status)}; DLQ ${(await rig.queueDepth()).dlq}`,
    );
    assert.equal(answer.status, 200);
    assert.equal(unconfirmed.events.length, 1, 'the callback is stored');
    assert.equal(confirmed.state?.status, readRequest(kit.provider, callback.request, callback.secret).facts.status);
    assert.equal(confirmed.state?.eventCount, 1);
    assert.equal((await rig.queueDepth()).dlq, 0);
  });

  test(`an outage of ${OUTAGE_SECONDS} s under ${OUTAGE_LIVES} subjects loses nothing: every one stored once and confirmed after`, async () => {
    // prepare: subjects the provider knows, sent while its endpoint is down
    const lives = Array.from({ length: OUTAGE_LIVES }, (_, n) => lifeOf(kit, `${id}-outage-${n}`));
    for (const life of lives) simulator.report(life.answer);
    simulator.setFault({ status: 503 });
    const started = Date.now();

    // act
    const answers = await sendAll(rig.pipeline!.info.baseUrl, lives.map((life) => life.last), 8);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, OUTAGE_SECONDS * 1000 - (Date.now() - started))));
    simulator.setFault(undefined);
    const recovered = Date.now();
    const subjects = new Map<string, StoredSubject>();
    await waitFor(
      'every subject confirmed',
      async () => {
        for (const life of lives) {
          if (subjects.get(life.last.subjectId)?.state?.confirmation === 'confirmed') continue;
          subjects.set(life.last.subjectId, await rig.readSubject(id, life.last.subjectId));
        }
        return [...subjects.values()].filter((s) => s.state?.confirmation === 'confirmed').length === lives.length;
      },
      180_000,
      500,
    ).catch(() => undefined);
    await waitForDrain(rig, 60_000);
    // Read again once drained: the worker writes a state before its event item, so a subject read
    // the moment it showed confirmed may not show the item yet.
    for (const life of lives) subjects.set(life.last.subjectId, await rig.readSubject(id, life.last.subjectId));

    // assess
    // The callback's own event item (a status-endpoint answer that is not the callback's body, as
    // eSMS's, is an event item of its own, source status-endpoint).
    const stored = lives.filter((life) => subjects.get(life.last.subjectId)?.events.filter((event) => event.source !== 'status-endpoint').length === 1).length;
    const confirmed = [...subjects.values()].filter((s) => s.state?.confirmation === 'confirmed').length;
    const counted = [...subjects.values()].filter((s) => s.state?.eventCount !== 1).length;
    const dlq = (await rig.queueDepth()).dlq;
    console.log(
      `[faults] ${name} outage ${OUTAGE_SECONDS} s, ${lives.length} subjects: answered ${answers.filter((a) => a.status === 200).length}×200; ` +
        `lost ${lives.length - stored}, counted twice ${counted}, confirmed ${confirmed} (all within ${((Date.now() - recovered) / 1000).toFixed(1)} s of recovery), DLQ ${dlq}`,
    );
    assert.ok(answers.every((a) => a.status === 200), 'every callback answered 200 during the outage');
    const notOnce = lives
      .map((life) => ({ id: life.last.subjectId, events: subjects.get(life.last.subjectId)?.events ?? [] }))
      .filter(({ events }) => events.filter((event) => event.source !== 'status-endpoint').length !== 1)
      .map(({ id, events }) => `${id}: ${JSON.stringify(events.map((event) => ({ eventKey: event.eventKey, source: event.source })))}`);
    assert.equal(lives.length - stored, 0, `lost: ${notOnce.join('; ')}`);
    assert.equal(counted, 0, 'counted twice');
    assert.equal(confirmed, lives.length, 'confirmed after the outage');
    assert.equal(dlq, 0);
  });
});
}
