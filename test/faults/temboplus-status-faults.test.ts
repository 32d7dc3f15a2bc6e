import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { QUEUE } from '../../functions/core/pipeline-definition.ts';
import { waitFor } from '../../local/engines.ts';
import type { TemboPlusFault, TemboPlusSimulator } from '../../local/temboplus-simulator.ts';
import { temboplusKit } from '../providers/temboplus.ts';
import { startFaultRig, waitForDrain, type FaultRig, type LogLine, type StoredSubject } from '../support/faults-rig.ts';
import { sendCallback, subjectLife, type Callback } from '../support/faults-traffic.ts';

/**
 * TemboPlus's status endpoint misbehaves (the simulator's setFault): each failure is retried with
 * a growing delay and the callback is confirmed once the endpoint recovers. A 404 is retried too
 * (the callback may have overtaken the endpoint's view of a new transfer); only on the last of
 * QUEUE.settleAttempts receives is it taken as the verdict, `not_found`: recorded, never applied.
 */

const RETRY_BASE_SECONDS = 1;
const CONFIRM_TIMEOUT_MS = 2500;

let rig: FaultRig;
/** The rig's simulated TemboPlus status endpoint (the kit's `statusSimulation`). */
let simulator: TemboPlusSimulator;

/** A transfer's life (the kit's): its callbacks, oldest first, and the transfer as TemboPlus knows it at the end. */
function transferLife(name: string) {
  const life = subjectLife(temboplusKit, rig.secrets, name);
  return { callbacks: life.callbacks, transfer: life.answer!.answer as Record<string, unknown> };
}

/** When each status request reached the simulator (its own log has no times). */
function watchStatusRequests(): { times: number[]; stop(): void } {
  const times: number[] = [];
  const timer = setInterval(() => {
    while (times.length < simulator.requests.length) times.push(Date.now());
  }, 5);
  return { times, stop: () => clearInterval(timer) };
}

async function waitForSubject(callback: Callback, until: (subject: StoredSubject) => boolean, timeoutMs = 45_000): Promise<StoredSubject> {
  let subject: StoredSubject | undefined;
  await waitFor(`${callback.subjectId} to settle`, async () => until((subject = await rig.readSubject('temboplus', callback.subjectId))), timeoutMs, 100);
  return subject!;
}

/** How a status request ended for the worker: a status it acted on, or a timeout. */
const outcomeOf = (status: number | undefined, failed: boolean) =>
  status === undefined ? 'timed out' : failed && status === 200 ? 'timed out (its 200 came late)' : String(status);

const failuresSince = (since: number): LogLine[] =>
  rig.pipeline!.logs().filter((line) => line.message.startsWith('record failed') && Date.parse(line.timestamp) >= since);

describe('fault: TemboPlus status endpoint', { timeout: 240_000 }, () => {
  let watcher: ReturnType<typeof watchStatusRequests>;

  before(async () => {
    rig = await startFaultRig();
    simulator = rig.simulators.get(temboplusKit.provider.id)!;
    await rig.startPipeline(['--retry-base-seconds', String(RETRY_BASE_SECONDS), '--confirm-timeout-ms', String(CONFIRM_TIMEOUT_MS)]);
    watcher = watchStatusRequests();
  });

  after(async () => {
    watcher?.stop();
    const left = await rig?.stop();
    assert.deepEqual(left, [], 'processes or ports left behind');
  });

  const scenarios: { name: string; fault: TemboPlusFault; failures: number }[] = [
    { name: '500 ×3', fault: { status: 500, times: 3 }, failures: 3 },
    { name: '429 ×2', fault: { status: 429, times: 2 }, failures: 2 },
    { name: 'no answer', fault: { hang: true, times: 1 }, failures: 1 },
    { name: `slow 5 s (timeout ${CONFIRM_TIMEOUT_MS / 1000} s)`, fault: { delayMs: 5000, times: 1 }, failures: 1 },
    { name: 'slow 1 s (within the timeout)', fault: { delayMs: 1000, times: 1 }, failures: 0 },
    { name: '404 ×2 (not known yet)', fault: { status: 404, times: 2 }, failures: 2 },
  ];

  scenarios.forEach((scenario, index) => {
    test(`${scenario.name} → ${scenario.failures > 0 ? 'retried with back-off, then confirmed' : 'confirmed at once'}`, async () => {
      // prepare: a transfer TemboPlus knows, and a fault on its status endpoint
      const { callbacks, transfer } = transferLife(`tembo-fault-${index}`);
      const callback = callbacks.at(-1)!;
      simulator.report(transfer);
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
        `[faults] TemboPlus ${scenario.name}: answered ${answer.status}; status requests ${attempts.length} ` +
          `(${attempts.map((a, n) => `#${n + 1} +${((times[n] - times[0]) / 1000).toFixed(1)}s ${outcomeOf(a.status, n < failures.length)}`).join(', ')}); ` +
          `failed receives ${JSON.stringify(failures.map((f) => f.receiveCount))}, back-off ${delays.map((d) => `${d.toFixed(1)}s`).join(' → ') || 'none'}; ` +
          `stored ${subject.state?.status}/${subject.state?.confirmation}, events ${subject.events.length}`,
      );
      assert.equal(answer.status, 200);
      assert.equal(attempts.length, scenario.failures + 1, 'one status request per receive');
      assert.deepEqual(failures.map((f) => f.receiveCount), Array.from({ length: scenario.failures }, (_, n) => n + 1));
      delays.forEach((delay, n) => {
        const backOff = RETRY_BASE_SECONDS * 2 ** n;
        assert.ok(delay >= backOff - 0.25, `retry ${n + 1} came after ${delay} s, before its ${backOff} s back-off`);
        assert.ok(delay < backOff + 3, `retry ${n + 1} came after ${delay} s, long after its ${backOff} s back-off`);
      });
      assert.equal(subject.state?.confirmation, 'confirmed');
      assert.equal(subject.state?.status, transfer.status);
      assert.equal(subject.state?.eventCount, 1);
      assert.equal(subject.events.length, 1);
      assert.equal((await rig.queueDepth()).dlq, 0);
    });
  });

  test(`404 on all ${QUEUE.settleAttempts} receives → not_found recorded, never applied; confirmed once TemboPlus knows the transfer`, async () => {
    // prepare: a transfer TemboPlus does not know
    const { callbacks: [, submitted, final], transfer } = transferLife('tembo-fault-404');
    const firstRequest = simulator.requests.length;
    const since = Date.now();

    // act: the SUBMITTED callback meets 404s; then TemboPlus learns the transfer, sends its final
    // status, and retries the SUBMITTED callback once more
    const first = await sendCallback(rig.pipeline!.info.baseUrl, submitted);
    // The state records the not_found at once; the claim is asked once per receive until it stands.
    const afterNotFound = await waitForSubject(submitted, (s) => Number(s.events[0]?.asks) >= QUEUE.settleAttempts);
    const failures = failuresSince(since);
    simulator.report(transfer);
    const second = await sendCallback(rig.pipeline!.info.baseUrl, final);
    await waitForSubject(final, (s) => s.state?.confirmation === 'confirmed');
    const retry = await sendCallback(rig.pipeline!.info.baseUrl, submitted);
    await waitForDrain(rig, 20_000);
    const settled = await rig.readSubject('temboplus', submitted.subjectId);

    // assess
    const attempts = simulator.requests.slice(firstRequest).filter((r) => r.subjectId === submitted.subjectId);
    const times = watcher.times.slice(firstRequest);
    console.log(
      `[faults] TemboPlus 404 always: answered ${first.status}/${second.status}/${retry.status}; ` +
        `status requests ${attempts.map((a, n) => `#${n + 1} +${((times[n] - times[0]) / 1000).toFixed(1)}s ${a.status}`).join(', ')}; ` +
        `failed receives ${JSON.stringify(failures.map((f) => f.receiveCount))}; after the 404s status=${String(afterNotFound.state?.status)} ` +
        `confirmation=${String(afterNotFound.state?.confirmation)} outcome=${String(afterNotFound.state?.outcome)}; ` +
        `finally ${String(settled.state?.status)}/${String(settled.state?.confirmation)}, events ${settled.events.length}, eventCount ${String(settled.state?.eventCount)}, DLQ ${(await rig.queueDepth()).dlq}`,
    );
    assert.deepEqual([first.status, second.status, retry.status], [200, 200, 200]);
    assert.deepEqual(failures.map((f) => f.receiveCount), Array.from({ length: QUEUE.settleAttempts - 1 }, (_, n) => n + 1), 'retried before believing a 404');
    assert.deepEqual(attempts.slice(0, QUEUE.settleAttempts).map((a) => a.status), Array(QUEUE.settleAttempts).fill(404));
    assert.equal(afterNotFound.state?.confirmation, 'not_found');
    assert.equal(afterNotFound.state?.status, undefined, 'a claim TemboPlus does not know is never applied');
    assert.equal(afterNotFound.state?.outcome, 'pending');
    assert.equal(settled.state?.status, transfer.status, 'the SUBMITTED claim was never applied, not even on its retry');
    assert.equal(settled.state?.confirmation, 'confirmed');
    assert.equal(settled.state?.eventCount, 2);
    assert.equal(settled.events.length, 2);
    assert.equal((await rig.queueDepth()).dlq, 0, 'a verdict, not a poison message');
  });
});
