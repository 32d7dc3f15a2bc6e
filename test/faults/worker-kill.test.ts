import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../../local/engines.ts';
import { startFaultRig, waitForDrain, type FaultRig } from '../support/faults-rig.ts';
import { assessStore, mixedTraffic, sendAll, statusCounts } from '../support/faults-traffic.ts';

/**
 * The worker dies mid-batch (SIGKILL of the whole pipeline process, as a crash or an OOM kill
 * would). The queue lives outside that process, so the records it had received come back after
 * their visibility timeout and the restarted pipeline finishes them: nothing lost, nothing counted
 * twice, although some records were stored and not yet deleted when it died.
 */

const CALLBACKS = 200;
/** Seconds a received record stays hidden: how long the dead worker's records wait before redelivery. */
const VISIBILITY_TIMEOUT_SECONDS = 5;
const PIPELINE_FLAGS = ['--visibility-timeout', String(VISIBILITY_TIMEOUT_SECONDS), '--retry-base-seconds', '1'];

let rig: FaultRig;

describe('fault: worker killed mid-batch', { timeout: 180_000 }, () => {
  before(async () => {
    rig = await startFaultRig();
    await rig.startPipeline(PIPELINE_FLAGS);
  });

  after(async () => {
    const left = await rig?.stop();
    assert.deepEqual(left, [], 'processes or ports left behind');
  });

  test(`SIGKILL while ${CALLBACKS} callbacks are being processed → restart → no loss, no double-store`, async () => {
    // prepare: callbacks across every provider; DynamoDB answers 20 ms late, so batches are
    // still in flight when the kill comes
    const traffic = mixedTraffic(CALLBACKS, rig.secrets, { tag: 'worker-kill', seed: 31 });
    rig.teach(traffic.answers);
    rig.dynamoProxy.setMode({ kind: 'delay', ms: 20 });
    const first = rig.pipeline!;

    // act: kill once a fifth of them are stored, then start the pipeline again on the same engines
    const sending = sendAll(first.info.baseUrl, traffic.sends, 16);
    await waitFor('the worker to be busy', async () => first.logs().filter((line) => line.message === 'stored').length >= CALLBACKS / 5, 60_000, 5);
    await first.kill();
    const atKill = await rig.queueDepth();
    const storedAtKill = first.logs().filter((line) => line.message === 'stored').length;
    const results = await sending;
    rig.dynamoProxy.setMode({ kind: 'pass' });
    const second = await rig.startPipeline(PIPELINE_FLAGS);
    await waitForDrain(rig, 60_000);
    const stored = await rig.readSubjects();

    // assess
    const answered = statusCounts(results);
    const assessment = await assessStore(stored, traffic.distinct, traffic.answers);
    const redelivered = second.logs().filter((line) => line.message === 'stored' && line.result === 'duplicate').length;
    const depth = await rig.queueDepth();
    console.log(
      `[faults] worker killed: sent ${results.length} → ${JSON.stringify(answered)}; killed after ${storedAtKill} stored, ` +
        `${atKill.inFlight} records in flight (received, not deleted) and ${atKill.visible} waiting; restarted: ` +
        `${redelivered} redelivered records found already stored; stored ${assessment.stored}/${assessment.promised} distinct events in ` +
        `${assessment.subjects} subjects, lost ${assessment.lost.length}, counted twice ${assessment.miscounted.length}, ` +
        `wrong state ${assessment.wrongState.length}, DLQ ${depth.dlq}`,
    );
    // Requests cut off by the kill were never answered 200: the provider would retry them.
    const promised = results.filter((result) => result.status === 200).length;
    assert.ok(promised > CALLBACKS / 5, `only ${promised} callbacks were accepted before the kill`);
    assert.ok(atKill.inFlight > 0, 'the kill came mid-batch: records were in flight');
    assert.ok(storedAtKill < CALLBACKS, 'work was left for the restarted pipeline');
    for (const result of results) assert.ok(result.status === 200 || result.status === 0, `answered ${result.status}`);
    const notAnswered = results.filter((result) => result.status !== 200).map((result) => result.callback);
    if (notAnswered.length > 0) {
      // The provider retries what was not answered 200, now to the restarted pipeline.
      const retried = await sendAll(second.info.baseUrl, notAnswered, 16);
      assert.deepEqual(statusCounts(retried), { 200: notAnswered.length });
      await waitForDrain(rig, 60_000);
    }
    const final = notAnswered.length > 0 ? await assessStore(await rig.readSubjects(), traffic.distinct, traffic.answers) : assessment;
    assert.deepEqual(final.lost, []);
    assert.deepEqual(final.unpromised, []);
    assert.deepEqual(final.miscounted, []);
    assert.deepEqual(final.wrongState, []);
    assert.equal(final.stored, traffic.distinct.length);
    assert.equal(depth.dlq, 0);
  });
});
