import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { waitFor } from '../../local/engines.ts';
import { queueMessageFor } from '../support/integration-worker.ts';
import { startFaultRig, waitForDrain, type FaultRig } from '../support/faults-rig.ts';
import { assessStore, subjectLife, type Callback } from '../support/faults-traffic.ts';

/**
 * A record that can never succeed must not block or take down its batch: it fails alone (partial
 * batch failure), is retried until the receive limit, then moves to the DLQ, where redrive can
 * bring it back; the other records of its batch are stored.
 */

const MAX_RECEIVES = 3;

let rig: FaultRig;

/** The nine good records of a batch: whole lives of TeleSign, REL-ID and Identomat subjects. */
function goodRecords(tag: string): Callback[] {
  return [
    ...subjectLife('telesign', rig.secrets, `${tag}-a`),
    ...subjectLife('relid', rig.secrets, `${tag}-b`),
    ...subjectLife('identomat', rig.secrets, `${tag}-c`),
    ...subjectLife('telesign', rig.secrets, `${tag}-d`).slice(0, 1),
  ];
}

describe('fault: poison message', { timeout: 180_000 }, () => {
  before(async () => {
    rig = await startFaultRig();
    await rig.startPipeline(['--max-receives', String(MAX_RECEIVES), '--retry-base-seconds', '1']);
  });

  after(async () => {
    rig?.simulator.setFault(undefined);
    const left = await rig?.stop();
    assert.deepEqual(left, [], 'processes or ports left behind');
  });

  test(`a malformed message and a TemboPlus callback whose status check always fails → DLQ after ${MAX_RECEIVES} receives; their batch-mates stored`, async () => {
    // prepare: two batches of ten queue messages, made by the real ingest core, each with one
    // poison record: a body that is not a queue message at all, and a TemboPlus callback while the
    // status endpoint answers 500 to everything
    const tembo = subjectLife('temboplus', rig.secrets, 'poison-tembo').at(-1)!;
    rig.simulator.report(tembo.body);
    const malformed = '{"v":1,"provider":"telesign", this is not JSON';
    const batches = [
      { poison: malformed, good: goodRecords('poison-1') },
      { poison: JSON.stringify(await queueMessageFor(rig.secrets, 'temboplus', tembo.body)), good: goodRecords('poison-2') },
    ];
    const entries = await Promise.all(
      batches.map(async ({ poison, good }) => [
        poison,
        ...(await Promise.all(good.map(async (callback) => JSON.stringify(await queueMessageFor(rig.secrets, callback.provider, callback.body))))),
      ]),
    );
    rig.simulator.setFault({ status: 500 });

    // act: each batch goes in with one SendMessageBatch, so the poller receives it whole
    const poisonIds: string[] = [];
    for (const bodies of entries) {
      const sent = await rig.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: rig.pipeline!.info.queueUrl,
          Entries: bodies.map((body, index) => ({ Id: String(index), MessageBody: body })),
        }),
      );
      assert.equal(sent.Successful?.length, bodies.length);
      poisonIds.push(sent.Successful!.find((entry) => entry.Id === '0')!.MessageId!);
    }
    await waitFor('both poison messages in the DLQ', async () => rig.sqsServer.messageBodies('callbacks-dlq').length >= 2, 60_000, 100);
    await waitForDrain(rig, 30_000);
    rig.simulator.setFault(undefined);
    const stored = await rig.readSubjects();

    // assess
    const good = batches.flatMap((batch) => batch.good);
    const assessment = assessStore(stored, good);
    const dlq = rig.sqsServer.messageBodies('callbacks-dlq');
    const failures = rig.pipeline!.logs().filter((line) => line.message.startsWith('record failed'));
    const receivesOf = (id: string) => failures.filter((line) => line.messageId === id).map((line) => line.receiveCount);
    const failedLine = (id: string) => failures.find((line) => line.messageId === id);
    const statusCalls = rig.simulator.requests.filter((request) => request.subjectId === tembo.subjectId).map((request) => request.status);
    const temboStored = await rig.readSubject('temboplus', tembo.subjectId);
    console.log(
      `[faults] poison: malformed → failed receives ${JSON.stringify(receivesOf(poisonIds[0]))} (${String(failedLine(poisonIds[0])?.error)}); ` +
        `TemboPlus → failed receives ${JSON.stringify(receivesOf(poisonIds[1]))}, status calls ${JSON.stringify(statusCalls)}; ` +
        `DLQ ${dlq.length} (${dlq.map((body) => (body === malformed ? 'the malformed one' : 'the TemboPlus one')).join(', ')}); ` +
        `batch-mates stored ${assessment.stored}/${assessment.promised}, lost ${assessment.lost.length}; TemboPlus event items ${temboStored.events.length}`,
    );
    assert.deepEqual(receivesOf(poisonIds[0]), [1, 2, 3]);
    assert.deepEqual(receivesOf(poisonIds[1]), [1, 2, 3]);
    assert.deepEqual(statusCalls, [500, 500, 500]);
    assert.equal(dlq.length, 2);
    assert.ok(dlq.includes(malformed), 'the malformed message is in the DLQ, byte for byte');
    assert.ok(dlq.some((body) => body !== malformed && JSON.parse(body).provider === 'temboplus'), 'the TemboPlus callback is in the DLQ, for redrive');
    assert.equal(temboStored.events.length, 0, 'an unconfirmed TemboPlus claim is not stored as an event');
    assert.equal(assessment.stored, good.length);
    assert.deepEqual(assessment.lost, []);
    assert.deepEqual(assessment.miscounted, []);
    assert.deepEqual(assessment.wrongState, []);
  });
});
