import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { inStreamOrder, streamBatchInfo, streamOwner, type StreamBatchInfo } from '../../local/events-replay.ts';

/**
 * The pure parts of `redrive --events` (local/events-replay.ts): which DLQ messages are batches, the
 * table a batch's stream belongs to, and the order batches are replayed in. The replay itself runs
 * against real engines in test/e2e/events-replay.test.ts.
 */

const ARN = 'arn:aws:dynamodb:eu-west-1:123456789012:table/CallbackGateway-Table/stream/2026-01-01T00:00:00.000';

const batch = (shardId: string, start: string): { info: StreamBatchInfo } => ({ info: { shardId, startSequenceNumber: start, endSequenceNumber: start, streamArn: ARN } });

describe('redrive --events: the batches a DLQ message names', () => {
  test("a child shard's batches come after its parent's, whatever their ids say", () => {
    // prepare: a shard id is "system-generated", 28 to 65 characters: nothing makes a child's sort
    // after its parent's; here the child's sorts first, and the grandchild's between them
    const [parent, child, grandchild, other] = ['shardId-00000001800000000000-aaaaaaaa', 'shardId-00000001700000000000-bbbbbbbb', 'shardId-00000001750000000000-cccccccc', 'shardId-00000001600000000000-dddddddd'];
    const parents = new Map<string, string | undefined>([
      [parent, undefined],
      [child, parent],
      [grandchild, child],
      [other, undefined],
    ]);
    const batches = [batch(grandchild, '300000000000000000001'), batch(child, '200000000000000000002'), batch(child, '200000000000000000001'), batch(parent, '100000000000000000009'), batch(other, '100000000000000000001')];

    // act
    const ordered = inStreamOrder(batches, parents);

    // assess: ancestors first; one shard's batches by sequence number (as numbers)
    assert.deepEqual(
      ordered.map(({ info }) => `${info.shardId} ${info.startSequenceNumber}`),
      [`${other} 100000000000000000001`, `${parent} 100000000000000000009`, `${child} 200000000000000000001`, `${child} 200000000000000000002`, `${grandchild} 300000000000000000001`],
    );
  });

  test('sequence numbers of different lengths are ordered as numbers', () => {
    const shard = 'shardId-00000001800000000000-aaaaaaaa';
    const ordered = inStreamOrder([batch(shard, '1000000000000000000000'), batch(shard, '999999999999999999999')], new Map([[shard, undefined]]));
    assert.deepEqual(
      ordered.map(({ info }) => info.startSequenceNumber),
      ['999999999999999999999', '1000000000000000000000'],
    );
  });

  test('only what Lambda writes is a batch; the stream ARN names its table and account', () => {
    const good = { shardId: 'shardId-00000001800000000000-aaaaaaaa', startSequenceNumber: '100000000000000000001', endSequenceNumber: '100000000000000000009', streamArn: ARN, approximateArrivalOfFirstRecord: '2026-01-01T00:00:01.000Z', batchSize: 3 };
    assert.deepEqual(streamBatchInfo({ DDBStreamBatchInfo: good }), good);
    for (const bad of [
      { shardId: 'shardId-+255712345678' },
      { startSequenceNumber: '12' },
      { endSequenceNumber: '9'.repeat(41) },
      { startSequenceNumber: '100000000000000000010' },
      { streamArn: 'arn:aws:dynamodb:eu-west-1:123456789012:table/CallbackGateway-Table' },
      { streamArn: 'arn:aws:sqs:eu-west-1:123456789012:table/CallbackGateway-Table/stream/x' },
    ]) {
      assert.equal(streamBatchInfo({ DDBStreamBatchInfo: { ...good, ...bad } }), undefined, JSON.stringify(bad));
    }
    assert.deepEqual(streamBatchInfo({ DDBStreamBatchInfo: { ...good, approximateArrivalOfFirstRecord: 'call +255712345678' } }), {
      shardId: good.shardId,
      startSequenceNumber: good.startSequenceNumber,
      endSequenceNumber: good.endSequenceNumber,
      batchSize: 3,
      streamArn: ARN,
    });
    assert.deepEqual(streamOwner(ARN), { account: '123456789012', table: 'CallbackGateway-Table' });
  });
});
