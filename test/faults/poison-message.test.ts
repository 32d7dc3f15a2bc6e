import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { waitFor } from '../../local/engines.ts';
import { allKits } from '../providers/index.ts';
import type { ProviderKit } from '../providers/kit.ts';
import { queueMessageFor, queueMessageForQuery } from '../support/integration-worker.ts';
import { startFaultRig, waitForDrain, type FaultRig } from '../support/faults-rig.ts';
import { assessStore, subjectLife, type Callback } from '../support/faults-traffic.ts';

/**
 * A record that can never succeed must not block or take down its batch: it fails alone (partial
 * batch failure), is retried until the receive limit, then moves to the DLQ, where redrive can
 * bring it back; the other records of its batch are stored.
 */

const MAX_RECEIVES = 3;
/** Records of a batch beside its poison one (an SQS batch holds ten). */
const BATCH_MATES = 9;

let rig: FaultRig;

/** Kits of the providers whose status endpoint the worker asks: their simulated endpoints are made to fail. */
const askedKits = (): ProviderKit[] => allKits().filter((kit) => rig.simulators.has(kit.provider.id));

/** The good records of a batch: whole lives of subjects of the providers the worker does not ask, in turn. */
function goodRecords(tag: string): Callback[] {
  const kits = allKits().filter((kit) => !rig.simulators.has(kit.provider.id));
  const records: Callback[] = [];
  for (let index = 0; records.length < BATCH_MATES; index += 1) {
    records.push(...subjectLife(kits[index % kits.length], rig.secrets, `${tag}-${index}`).callbacks.slice(0, BATCH_MATES - records.length));
  }
  return records;
}

/** The queue message ingest makes of a callback (the real ingest core). */
async function queueBody(callback: Callback): Promise<string> {
  const { body, query } = callback.content;
  const message = body ? await queueMessageFor(rig.secrets, callback.provider, body) : await queueMessageForQuery(rig.secrets, callback.provider, query ?? '');
  return JSON.stringify(message);
}

/** Every simulated status endpoint answers this HTTP status to everything, until `undefined` clears it. */
const failStatusEndpoints = (status: number | undefined) => {
  for (const simulator of rig?.simulators.values() ?? []) simulator.setFault(status === undefined ? undefined : { status });
};

describe('fault: poison message', { timeout: 180_000 }, () => {
  before(async () => {
    rig = await startFaultRig();
    await rig.startPipeline(['--max-receives', String(MAX_RECEIVES), '--retry-base-seconds', '1']);
  });

  after(async () => {
    failStatusEndpoints(undefined);
    const left = await rig?.stop();
    assert.deepEqual(left, [], 'processes or ports left behind');
  });

  test(`a malformed message, and a callback whose status check always fails (each provider the worker asks) → DLQ after ${MAX_RECEIVES} receives; their batch-mates stored`, async () => {
    // prepare: batches of ten queue messages, made by the real ingest core, each with one poison
    // record: a body that is not a queue message at all, and for each provider the worker asks, a
    // callback while its status endpoint answers 500 to everything
    const asked = askedKits().map((kit) => {
      const life = subjectLife(kit, rig.secrets, `poison-${kit.provider.id}`);
      rig.teach([life.answer!]);
      return { kit, callback: life.callbacks.at(-1)! };
    });
    const malformed = `{"v":1,"provider":"${allKits()[0].provider.id}", this is not JSON`;
    const poisons = [malformed, ...(await Promise.all(asked.map(({ callback }) => queueBody(callback))))];
    const batches = poisons.map((poison, index) => ({ poison, good: goodRecords(`poison-${index + 1}`) }));
    const entries = await Promise.all(batches.map(async ({ poison, good }) => [poison, ...(await Promise.all(good.map(queueBody)))]));
    failStatusEndpoints(500);

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
    await waitFor(`all ${poisons.length} poison messages in the DLQ`, async () => rig.sqsServer.messageBodies('callbacks-dlq').length >= poisons.length, 60_000, 100);
    await waitForDrain(rig, 30_000);
    failStatusEndpoints(undefined);
    const stored = await rig.readSubjects();

    // assess
    const good = batches.flatMap((batch) => batch.good);
    const assessment = await assessStore(stored, good);
    const dlq = rig.sqsServer.messageBodies('callbacks-dlq');
    const failures = rig.pipeline!.logs().filter((line) => line.message.startsWith('record failed'));
    const receivesOf = (id: string) => failures.filter((line) => line.messageId === id).map((line) => line.receiveCount);
    const failedLine = (id: string) => failures.find((line) => line.messageId === id);
    const checks = await Promise.all(
      asked.map(async ({ kit, callback }, index) => ({
        name: kit.provider.displayName,
        id: kit.provider.id,
        receives: receivesOf(poisonIds[index + 1]),
        statusCalls: rig.simulators
          .get(kit.provider.id)!
          .requests.filter((request) => request.subjectId === callback.subjectId)
          .map((request) => request.status),
        events: (await rig.readSubject(kit.provider.id, callback.subjectId)).events.length,
      })),
    );
    const dlqNames = dlq.map((body) => (body === malformed ? 'the malformed one' : `the ${String(checks.find((check) => check.id === JSON.parse(body).provider)?.name)} one`));
    console.log(
      `[faults] poison: malformed → failed receives ${JSON.stringify(receivesOf(poisonIds[0]))} (${String(failedLine(poisonIds[0])?.error)}); ` +
        checks.map((check) => `${check.name} → failed receives ${JSON.stringify(check.receives)}, status calls ${JSON.stringify(check.statusCalls)}; `).join('') +
        `DLQ ${dlq.length} (${dlqNames.join(', ')}); ` +
        `batch-mates stored ${assessment.stored}/${assessment.promised}, lost ${assessment.lost.length}; ` +
        checks.map((check) => `${check.name} event items ${check.events}`).join(', '),
    );
    assert.deepEqual(receivesOf(poisonIds[0]), [1, 2, 3]);
    // The last receive is given back at once and says where it goes (the worker knows --max-receives).
    assert.deepEqual(failures.filter((line) => line.messageId === poisonIds[0]).map((line) => line.next), ['retry', 'retry', 'dead-letter queue']);
    assert.equal(dlq.length, poisons.length);
    assert.ok(dlq.includes(malformed), 'the malformed message is in the DLQ, byte for byte');
    for (const check of checks) {
      assert.deepEqual(check.receives, [1, 2, 3], check.id);
      assert.deepEqual(check.statusCalls, [500, 500, 500], check.id);
      assert.ok(dlq.some((body) => body !== malformed && JSON.parse(body).provider === check.id), `the ${check.id} callback is in the DLQ, for redrive`);
      assert.equal(check.events, 0, `an unconfirmed ${check.id} claim is not stored as an event`);
    }
    assert.equal(assessment.stored, good.length);
    assert.deepEqual(assessment.lost, []);
    assert.deepEqual(assessment.miscounted, []);
    assert.deepEqual(assessment.wrongState, []);
  });
});
