import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { QUEUE } from '../../functions/core/pipeline-definition.ts';
import { envNumber, sleep, startFaultRig, waitForDrain, type FaultRig } from '../support/faults-rig.ts';
import { acknowledged, assessStore, mixedTraffic, percentileMs, sendSpread, statusCounts } from '../support/faults-traffic.ts';

/**
 * The table is unreachable while callbacks keep coming. Ingest only needs the queue, so every
 * callback is answered 200; once the table is back, every one of them is stored exactly once.
 * Two kinds of outage: DynamoDB Local frozen (SIGSTOP: connections hang), and connections refused
 * (the proxy cuts them: requests fail at once and records go through the retry back-off).
 */

/** `npm run test:faults` sets 30 s; the CI slice keeps it short. */
const OUTAGE_SECONDS = envNumber('FAULT_OUTAGE_SECONDS', 8);
const CALLBACKS = Math.round(envNumber('FAULT_OUTAGE_CALLBACKS', 200));
/**
 * Records that fail are retried after base × 1, 2, 4, 8 s before the last receive sends them to
 * the DLQ: 15 × base must outlast the outage (the stack's 10 s base gives 150 s).
 */
const RETRY_BASE_SECONDS = Math.max(1, Math.ceil(OUTAGE_SECONDS / 10));

let rig: FaultRig;

describe(`fault: table unreachable for ${OUTAGE_SECONDS} s while callbacks keep coming`, { timeout: (OUTAGE_SECONDS * 2 + 240) * 1000 }, () => {
  before(async () => {
    rig = await startFaultRig();
    await rig.startPipeline(['--retry-base-seconds', String(RETRY_BASE_SECONDS)]);
  });

  after(async () => {
    const left = await rig?.stop();
    assert.deepEqual(left, [], 'processes or ports left behind');
  });

  const outages = [
    {
      name: 'DynamoDB Local frozen (SIGSTOP)',
      tag: 'table-frozen',
      begin: () => rig.pauseTable(),
      end: () => rig.resumeTable(),
    },
    {
      name: 'connections to DynamoDB refused',
      tag: 'table-refused',
      begin: () => rig.dynamoProxy.setMode({ kind: 'refuse' }),
      end: () => rig.dynamoProxy.setMode({ kind: 'pass' }),
    },
  ];

  outages.forEach((outage, index) => {
    test(`${outage.name}: every callback answered 200, and stored exactly once after recovery`, async () => {
      // prepare: callbacks across every provider, 10 % of them sent twice
      const traffic = mixedTraffic(CALLBACKS, rig.secrets, { tag: outage.tag, seed: 20 + index, duplicateRate: 0.1 });
      rig.teach(traffic.answers);
      const logsBefore = rig.pipeline!.logs().length;

      // act: the table goes away; callbacks arrive during the whole outage; the table comes back
      const began = Date.now();
      outage.begin();
      let results;
      try {
        results = await sendSpread(rig.pipeline!.info.baseUrl, traffic.sends, OUTAGE_SECONDS * 900);
        await sleep(began + OUTAGE_SECONDS * 1000 - Date.now());
      } finally {
        outage.end();
      }
      const recovered = Date.now();
      await waitForDrain(rig, 30_000 + RETRY_BASE_SECONDS * 16_000);
      const drainedAfter = (Date.now() - recovered) / 1000;
      const stored = await rig.readSubjects();

      // assess
      const promised = acknowledged(results);
      const assessment = await assessStore(stored, promised, traffic.answers);
      const failures = rig.pipeline!.logs().slice(logsBefore).filter((line) => line.message.startsWith('record failed'));
      const maxReceive = Math.max(0, ...failures.map((line) => Number(line.receiveCount)));
      const depth = await rig.queueDepth();
      console.log(
        `[faults] table outage, ${outage.name}, ${OUTAGE_SECONDS} s: sent ${results.length} → ${JSON.stringify(statusCounts(results))} ` +
          `(p99 ${percentileMs(results, 99).toFixed(0)} ms); worker failures during it ${failures.length} (highest receive ${maxReceive} of ${QUEUE.maxReceiveCount}, ` +
          `retry base ${RETRY_BASE_SECONDS} s); all stored ${drainedAfter.toFixed(1)} s after recovery: ${assessment.stored}/${assessment.promised} distinct events ` +
          `in ${assessment.subjects} subjects, duplicates absorbed ${results.length - assessment.promised}, lost ${assessment.lost.length}, ` +
          `counted twice ${assessment.miscounted.length}, wrong state ${assessment.wrongState.length}, DLQ ${depth.dlq}`,
      );
      assert.deepEqual(statusCounts(results), { 200: traffic.sends.length }, 'the queue was up: every callback is accepted');
      assert.equal(assessment.promised, traffic.distinct.length);
      assert.deepEqual(assessment.lost, []);
      assert.deepEqual(assessment.unpromised, []);
      assert.deepEqual(assessment.miscounted, []);
      assert.deepEqual(assessment.wrongState, []);
      assert.equal(assessment.stored, traffic.distinct.length);
      assert.equal(depth.dlq, 0);
    });
  });
});
