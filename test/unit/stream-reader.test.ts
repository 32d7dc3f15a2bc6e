import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  TrimmedDataAccessException,
  type DynamoDBStreamsClient,
  type _Record,
} from '@aws-sdk/client-dynamodb-streams';
import type { StreamRecord } from '../../functions/core/publisher.ts';
import { createLogger } from '../../functions/shared/log.ts';
import { waitFor } from '../../local/engines.ts';
import { startStreamReader, toStreamRecord, type StreamPosition } from '../../local/stream-reader.ts';

/**
 * The local stream reader over a scripted DynamoDB Streams API. DynamoDB Local serves one shard and
 * never rolls it over on demand, so shard splits are played here, with the API's documented
 * behaviour: a closed shard's last page has no NextShardIterator, and its children name it as
 * ParentShardId (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetRecords.html).
 * The reader on DynamoDB Local itself is covered end to end (test/e2e/events.test.ts).
 */

interface ScriptedShard {
  readonly id: string;
  readonly parent?: string;
  readonly closed: boolean;
  readonly sequences: string[];
}

const ARN = 'arn:aws:dynamodb:ddblocal:000000000000:table/t/stream/1';

function record(sequence: string): _Record {
  return {
    eventName: 'MODIFY',
    dynamodb: {
      SequenceNumber: sequence,
      Keys: { pk: { S: 'telesign#REF' }, sk: { S: 'STATE' } },
      NewImage: { pk: { S: 'telesign#REF' }, sk: { S: 'STATE' }, version: { N: sequence } },
    },
  };
}

/** The Streams API of a stream made of these shards; `trimmedBefore` makes older positions unreadable. */
function scriptedStreams(shards: ScriptedShard[], options: { trimmedBefore?: number; pageSize?: number } = {}) {
  const calls: string[] = [];
  const client = {
    async send(command: unknown) {
      if (command instanceof DescribeStreamCommand) {
        calls.push('DescribeStream');
        // One shard per page, as DescribeStream pages its shard list.
        const start = command.input.ExclusiveStartShardId;
        const index = start === undefined ? 0 : shards.findIndex((shard) => shard.id === start) + 1;
        const shard = shards[index];
        return {
          StreamDescription: {
            Shards: shard ? [{ ShardId: shard.id, ...(shard.parent ? { ParentShardId: shard.parent } : {}) }] : [],
            ...(index + 1 < shards.length ? { LastEvaluatedShardId: shard.id } : {}),
          },
        };
      }
      if (command instanceof GetShardIteratorCommand) {
        const { ShardId, ShardIteratorType, SequenceNumber } = command.input;
        calls.push(`GetShardIterator ${ShardId} ${ShardIteratorType}${SequenceNumber ? ` ${SequenceNumber}` : ''}`);
        const shard = shards.find((candidate) => candidate.id === ShardId)!;
        if (ShardIteratorType === 'AFTER_SEQUENCE_NUMBER') {
          if (options.trimmedBefore !== undefined && Number(SequenceNumber) < options.trimmedBefore) {
            throw new TrimmedDataAccessException({ message: 'trimmed', $metadata: {} });
          }
          return { ShardIterator: `${ShardId}|${shard.sequences.indexOf(SequenceNumber!) + 1}` };
        }
        const first = options.trimmedBefore === undefined ? 0 : shard.sequences.findIndex((sequence) => Number(sequence) >= options.trimmedBefore!);
        return { ShardIterator: `${ShardId}|${Math.max(0, first)}` };
      }
      if (command instanceof GetRecordsCommand) {
        const [id, from] = command.input.ShardIterator!.split('|');
        const shard = shards.find((candidate) => candidate.id === id)!;
        const start = Number(from);
        const page = shard.sequences.slice(start, start + (options.pageSize ?? 1000));
        const end = start + page.length;
        const last = shard.closed && end >= shard.sequences.length;
        return { Records: page.map(record), ...(last ? {} : { NextShardIterator: `${id}|${end}` }) };
      }
      throw new Error(`unexpected command ${String(command)}`);
    },
  };
  return { client: client as unknown as DynamoDBStreamsClient, calls };
}

/** Run a reader until `done` holds; what it processed and the positions it saved. */
async function read(
  client: DynamoDBStreamsClient,
  done: (processed: string[]) => boolean,
  options: { position?: StreamPosition; fail?: (sequence: string, attempt: number) => boolean } = {},
) {
  const processed: string[] = [];
  const saved: StreamPosition[] = [];
  const attempts = new Map<string, number>();
  const warnings: string[] = [];
  const log = createLogger({ service: 'test', write: (line, level) => level === 'WARN' && warnings.push(line) });
  const reader = startStreamReader({
    client,
    streamArn: ARN,
    ...(options.position ? { position: options.position } : {}),
    log,
    pollMs: 5,
    retry: { baseMs: 5, maxMs: 20 },
    batchSize: 2,
    async process(records: readonly StreamRecord[]) {
      for (let index = 0; index < records.length; index++) {
        const sequence = records[index].sequenceNumber;
        const attempt = (attempts.get(sequence) ?? 0) + 1;
        attempts.set(sequence, attempt);
        if (options.fail?.(sequence, attempt)) return { failed: records.slice(index).map((r) => r.sequenceNumber) };
        processed.push(sequence);
      }
      return { failed: [] };
    },
    async save(position) {
      saved.push(structuredClone(position) as StreamPosition);
    },
  });
  try {
    await waitFor('the reader', async () => done(processed), 5_000, 5);
  } finally {
    await reader.stop();
  }
  return { processed, saved, last: saved.at(-1), warnings };
}

describe('stream reader', () => {
  test('a child shard is read only after its parent is read to its end, wherever the stream lists it', async () => {
    // prepare: the child listed first; the parent closed, the child open
    const { client } = scriptedStreams([
      { id: 'child', parent: 'parent', closed: false, sequences: ['4', '5'] },
      { id: 'parent', closed: true, sequences: ['1', '2', '3'] },
    ]);

    // act
    const { processed, last } = await read(client, (seen) => seen.length >= 5);

    // assess
    assert.deepEqual(processed, ['1', '2', '3', '4', '5']);
    assert.deepEqual(last, { streamArn: ARN, shards: { parent: { done: true }, child: { after: '5' } } });
  });

  test('a shard that closes while being read: its children are found and read after it', async () => {
    // prepare: three generations, two children of the first shard, pages of one record
    const { client } = scriptedStreams(
      [
        { id: 'a', closed: true, sequences: ['1', '2'] },
        { id: 'b', parent: 'a', closed: true, sequences: ['3'] },
        { id: 'c', parent: 'a', closed: false, sequences: ['4'] },
        { id: 'd', parent: 'b', closed: false, sequences: ['5'] },
      ],
      { pageSize: 1 },
    );

    // act
    const { processed } = await read(client, (seen) => seen.length >= 5);

    // assess: each record once; every parent's records before its children's
    assert.deepEqual([...processed].sort(), ['1', '2', '3', '4', '5']);
    const at = (sequence: string) => processed.indexOf(sequence);
    assert.ok(at('2') < at('3') && at('2') < at('4'), processed.join());
    assert.ok(at('3') < at('5'), processed.join());
  });

  test('a failed record is handed over again, with every later one, and the position never passes it', async () => {
    // prepare
    const { client, calls } = scriptedStreams([{ id: 'only', closed: false, sequences: ['1', '2', '3', '4'] }]);

    // act: record 2 fails twice
    const { processed, saved } = await read(client, (seen) => seen.includes('4'), { fail: (sequence, attempt) => sequence === '2' && attempt <= 2 });

    // assess
    assert.deepEqual(processed, ['1', '2', '3', '4']);
    // batches of two: [1, 2✗] saves 1; [2✗, 3] saves nothing; [2, 3] saves 3; [4] saves 4
    assert.deepEqual(saved.map((position) => position.shards.only?.after), ['1', '3', '4']);
    assert.equal(calls.filter((call) => call === 'GetShardIterator only AFTER_SEQUENCE_NUMBER 1').length, 2, calls.join('\n'));
  });

  test('a restart resumes after the saved position: finished shards are not read again', async () => {
    // prepare
    const { client, calls } = scriptedStreams([
      { id: 'parent', closed: true, sequences: ['1', '2'] },
      { id: 'child', parent: 'parent', closed: false, sequences: ['3', '4', '5'] },
    ]);

    // act
    const { processed } = await read(client, (seen) => seen.includes('5'), {
      position: { streamArn: ARN, shards: { parent: { done: true }, child: { after: '3' } } },
    });

    // assess
    assert.deepEqual(processed, ['4', '5']);
    assert.ok(!calls.some((call) => call.startsWith('GetShardIterator parent')), calls.join('\n'));
  });

  test('a position of another stream (the table made anew) is not used: the new stream is read from its oldest record', async () => {
    const { client } = scriptedStreams([{ id: 'only', closed: false, sequences: ['1', '2'] }]);
    const { processed } = await read(client, (seen) => seen.length >= 2, {
      position: { streamArn: `${ARN}-old`, shards: { only: { after: '2' } } },
    });
    assert.deepEqual(processed, ['1', '2']);
  });

  test('a position older than the stream keeps: a warning, and reading goes on from the oldest record kept', async () => {
    const { client } = scriptedStreams([{ id: 'only', closed: false, sequences: ['5', '6'] }], { trimmedBefore: 5 });
    const { processed, warnings } = await read(client, (seen) => seen.length >= 2, { position: { streamArn: ARN, shards: { only: { after: '2' } } } });
    assert.deepEqual(processed, ['5', '6']);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /never published/);
  });

  test('records become changes with their images unmarshalled', () => {
    const change = toStreamRecord({
      eventName: 'MODIFY',
      dynamodb: {
        SequenceNumber: '7',
        OldImage: { pk: { S: 'p' }, sk: { S: 'STATE' }, version: { N: '1' } },
        NewImage: { pk: { S: 'p' }, sk: { S: 'STATE' }, version: { N: '2' }, terminal: { BOOL: true } },
      },
    });
    assert.deepEqual(change, {
      sequenceNumber: '7',
      change: { eventName: 'MODIFY', oldImage: { pk: 'p', sk: 'STATE', version: 1 }, newImage: { pk: 'p', sk: 'STATE', version: 2, terminal: true } },
    });
  });

  test('a number JavaScript cannot hold (an item written by hand: past 2^53, a fraction) is read as the nearest one, not refused for ever', () => {
    const change = toStreamRecord({
      eventName: 'INSERT',
      dynamodb: { SequenceNumber: '9', NewImage: { pk: { S: 'p' }, sk: { S: 'STATE' }, eventCount: { N: '99999999999999999999' }, version: { N: '123456789012345678901.5' } } },
    });
    assert.deepEqual(change.change.newImage, { pk: 'p', sk: 'STATE', eventCount: Number('99999999999999999999'), version: Number('123456789012345678901.5') });
  });

  test("an empty map as DynamoDB Local's GetRecords writes it ({}, no M) is read as an empty map, at any depth", () => {
    const change = toStreamRecord({
      eventName: 'INSERT',
      dynamodb: {
        SequenceNumber: '8',
        NewImage: { pk: { S: 'p' }, sk: { S: 'EVENT#1' }, headers: {}, payload: { M: { meta: {}, list: { L: [{}, { S: 'x' }] } } }, empty: { S: '' } },
      },
    } as never);
    assert.deepEqual(change.change.newImage, { pk: 'p', sk: 'EVENT#1', headers: {}, payload: { meta: {}, list: [{}, 'x'] }, empty: '' });
  });
});
