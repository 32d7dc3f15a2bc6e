import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startFaultRig, waitForDrain, type FaultRig } from '../support/faults-rig.ts';
import { assessStore, mixedTraffic, sendAll, statusCounts } from '../support/faults-traffic.ts';

/**
 * The queue is unreachable at ingest: no callback may be answered 200, since nothing durable holds
 * it; the provider's retries after recovery are stored, once each.
 */

let rig: FaultRig;

describe('fault: queue unreachable at ingest', { timeout: 180_000 }, () => {
  before(async () => {
    rig = await startFaultRig();
    // A receive the blackhole held is delivered when it clears, to a poller that gave up on it: its
    // message stays in flight until the visibility timeout, so keep that short here.
    await rig.startPipeline(['--visibility-timeout', '5']);
  });

  after(async () => {
    const left = await rig?.stop();
    assert.deepEqual(left, [], 'processes or ports left behind');
  });

  test('refused or blackholed queue → 503, never 200; the retries after recovery are stored once each', async () => {
    // prepare: 30 callbacks across every provider; 25 meet a refusing queue, 5 a blackhole.
    const traffic = mixedTraffic(30, rig.secrets, { tag: 'queue-outage', seed: 4, shuffled: false });
    rig.teach(traffic.answers);
    const refusedPart = traffic.sends.slice(0, 25);
    const blackholedPart = traffic.sends.slice(25);
    const base = rig.pipeline!.info.baseUrl;

    // act
    rig.sqsProxy.setMode({ kind: 'refuse' });
    const refused = await sendAll(base, refusedPart, 8);
    rig.sqsProxy.setMode({ kind: 'blackhole' });
    const blackholed = await sendAll(base, blackholedPart, 5);
    rig.sqsProxy.setMode({ kind: 'pass' });
    // A request the blackhole held still reaches SQS once it clears (TCP delivers what it buffered)
    // although ingest already answered 503: at-least-once, absorbed as a duplicate below.
    await waitForDrain(rig, 30_000);
    const storedBeforeRetries = [...(await rig.readSubjects()).values()].reduce((n, subject) => n + subject.events.length, 0);
    const logsBefore = rig.pipeline!.logs().length;
    // The provider retries every callback that was not answered 200.
    const retried = await sendAll(base, [...refused, ...blackholed].filter((r) => r.status !== 200).map((r) => r.callback), 8);
    await waitForDrain(rig, 60_000);
    const stored = await rig.readSubjects();

    // assess
    const slowest = (results: typeof refused) => Math.max(...results.map((r) => r.ms));
    const assessment = await assessStore(stored, traffic.distinct, traffic.answers);
    const depth = await rig.queueDepth();
    const duplicates = rig.pipeline!.logs().slice(logsBefore).filter((line) => line.message === 'stored' && line.result === 'duplicate').length;
    console.log(
      `[faults] queue outage: refused ${refused.length} sent → ${JSON.stringify(statusCounts(refused))} (slowest ${slowest(refused).toFixed(0)} ms); ` +
        `blackholed ${blackholed.length} sent → ${JSON.stringify(statusCounts(blackholed))} (slowest ${(slowest(blackholed) / 1000).toFixed(1)} s); ` +
        `stored although answered 503 ${storedBeforeRetries}; retried ${retried.length} → ${JSON.stringify(statusCounts(retried))}, ${duplicates} absorbed as duplicates; ` +
        `stored ${assessment.stored}/${assessment.promised} events in ${assessment.subjects} subjects, lost ${assessment.lost.length}, ` +
        `miscounted ${assessment.miscounted.length}, DLQ ${depth.dlq}`,
    );
    for (const result of [...refused, ...blackholed]) {
      assert.equal(result.status, 503, `answered ${result.status} while the queue was unreachable`);
      assert.equal(result.error, 'queue_unavailable');
    }
    // Bounded by the SQS client's request timeout (2.5 s, up to 3 attempts), not a hang the provider times out on.
    assert.ok(slowest(blackholed) < 10_000, `a blackholed queue took ${slowest(blackholed)} ms to answer`);
    assert.ok(storedBeforeRetries <= blackholed.length, 'only blackholed (held) requests can arrive late');
    assert.equal(duplicates, storedBeforeRetries, 'each late arrival is absorbed when its retry comes');
    assert.deepEqual(statusCounts(retried), { 200: traffic.sends.length });
    assert.equal(assessment.stored, traffic.distinct.length);
    assert.deepEqual(assessment.lost, []);
    assert.deepEqual(assessment.unpromised, []);
    assert.deepEqual(assessment.miscounted, []);
    assert.deepEqual(assessment.wrongState, []);
    assert.equal(depth.dlq, 0);
  });
});
