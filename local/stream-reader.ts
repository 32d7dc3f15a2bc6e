import {
  DescribeStreamCommand,
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ResourceNotFoundException,
  TrimmedDataAccessException,
  type DynamoDBStreamsClient,
  type Shard,
  type _Record,
} from '@aws-sdk/client-dynamodb-streams';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { nearestNumber } from '../functions/adapters/dynamo-stream.ts';
import type { TableChange } from '../functions/core/publish.ts';
import type { StreamRecord } from '../functions/core/publisher.ts';
import { errorMessage } from '../functions/shared/errors.ts';
import type { Logger } from '../functions/shared/log.ts';

/**
 * Reads the table's change stream through the DynamoDB Streams API (DescribeStream, GetShardIterator,
 * GetRecords), as Lambda's DynamoDB event source does on AWS, and hands each shard's records, in
 * order, to `process` (the publisher). DynamoDB Local serves the Streams API on its own endpoint.
 *
 * - Shards: a stream is made of shards that close and are followed by child shards (DynamoDB rolls
 *   them over); a child is read only once its parent has been read to its end, so per item the
 *   changes are handed over in the order they were written.
 * - Position: after each batch, the last sequence number processed per shard (and which shards are
 *   finished) is saved through `save`; a restart resumes after it, so nothing is read twice unless
 *   a crash falls between a batch and its save (then that batch is handed over again, whose events
 *   have the same eventIds).
 * - Failures: when `process` gives records back (the bus failed), the position stays before the
 *   first of them and the same records are handed over again after a back-off, for as long as it
 *   takes. Nothing is skipped: on AWS a bounded retry ends in the DLQ; here there is no one to read
 *   a DLQ, and the stream keeps records 24 hours.
 */

/** Where reading resumes: per shard, the last sequence number processed, or that it was read to its end. */
export interface StreamPosition {
  readonly streamArn: string;
  readonly shards: Readonly<Record<string, ShardPosition>>;
}
export interface ShardPosition {
  readonly after?: string;
  readonly done?: true;
}

export interface StreamReaderOptions {
  readonly client: DynamoDBStreamsClient;
  readonly streamArn: string;
  /** Where the last run stopped; absent (or of another stream): from the oldest record the stream holds. */
  readonly position?: StreamPosition;
  /** One shard's records, in order; gives back the sequence numbers to retry (the first failure and every later one). */
  readonly process: (records: readonly StreamRecord[]) => Promise<{ readonly failed: readonly string[] }>;
  /** Persist the position; called after every batch that moved it, before the next batch is read. */
  readonly save: (position: StreamPosition) => Promise<void>;
  readonly log: Logger;
  /** Wait between polls when no shard had anything new. @default 200 */
  readonly pollMs?: number;
  /** Records per `process` call (Lambda's default batch size for a stream is 100). @default 100 */
  readonly batchSize?: number;
  /** Back-off after a failure, doubling up to `maxMs`. @default { baseMs: 500, maxMs: 10_000 } */
  readonly retry?: { readonly baseMs: number; readonly maxMs: number };
  /** How often the shard list is read again even when no shard closed. @default 30_000 */
  readonly describeEveryMs?: number;
}

export interface StreamReader {
  /** Finish the batch under way (processed and saved), then stop reading. */
  stop(): Promise<void>;
}

/** GetRecords' largest page. */
const MAX_RECORDS_PER_CALL = 1000;

/**
 * Every shard the stream lists (its last 24 hours), DescribeStream's pages followed by
 * `LastEvaluatedShardId` (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_DescribeStream.html).
 */
export async function listShards(client: DynamoDBStreamsClient, streamArn: string, abortSignal?: AbortSignal): Promise<Shard[]> {
  const found: Shard[] = [];
  let start: string | undefined;
  do {
    const { StreamDescription } = await client.send(new DescribeStreamCommand({ StreamArn: streamArn, ExclusiveStartShardId: start }), { abortSignal });
    found.push(...(StreamDescription?.Shards ?? []));
    start = StreamDescription?.LastEvaluatedShardId;
  } while (start);
  return found;
}

/** A Streams API record as the publisher takes it: its sequence number and the change, images unmarshalled. */
export function toStreamRecord(record: _Record): StreamRecord {
  const data = record.dynamodb ?? {};
  const image = (value: Record<string, unknown> | undefined) => (value ? unmarshall(withEmptyMaps(value) as Record<string, AttributeValue>, { wrapNumbers: nearestNumber }) : undefined);
  const oldImage = image(data.OldImage);
  const newImage = image(data.NewImage);
  const change: TableChange = {
    eventName: record.eventName as TableChange['eventName'],
    ...(oldImage ? { oldImage } : {}),
    ...(newImage ? { newImage } : {}),
  };
  return { sequenceNumber: data.SequenceNumber ?? '', change };
}

/**
 * DynamoDB Local's GetRecords writes an empty map attribute as `{}` (no `M`), where DynamoDB and
 * Lambda write `{"M":{}}`; unmarshall refuses `{}` ("No value defined"), and one such record (a
 * callback stored with no headers) would stop the reader for good. No AttributeValue is empty
 * otherwise, so `{}` is taken as the empty map it was written as, at any depth.
 */
function withEmptyMaps(image: Record<string, unknown>): Record<string, unknown> {
  const repair = (value: unknown): unknown => {
    if (!value || typeof value !== 'object') return value;
    const attribute = value as { M?: Record<string, unknown>; L?: unknown[] };
    if (Object.keys(attribute).length === 0) return { M: {} };
    if (attribute.M) return { M: withEmptyMaps(attribute.M) };
    if (Array.isArray(attribute.L)) return { L: attribute.L.map(repair) };
    return value;
  };
  return Object.fromEntries(Object.entries(image).map(([name, value]) => [name, repair(value)]));
}

export function startStreamReader(options: StreamReaderOptions): StreamReader {
  const { client, streamArn, log } = options;
  const pollMs = options.pollMs ?? 200;
  const batchSize = options.batchSize ?? 100;
  const retry = options.retry ?? { baseMs: 500, maxMs: 10_000 };
  const describeEveryMs = options.describeEveryMs ?? 30_000;

  const resumed = options.position?.streamArn === streamArn;
  if (options.position && !resumed) log.info('the table has a new stream: reading it from its oldest record', { previous: options.position.streamArn });
  const positions = new Map<string, ShardPosition>(resumed ? Object.entries(options.position!.shards) : []);
  const iterators = new Map<string, string>();
  let shards: Shard[] = [];
  let describedAt = 0;
  let mustDescribe = true;
  let failures = 0;
  let running = true;
  const abort = new AbortController();
  let wake: (() => void) | undefined;

  const snapshot = (): StreamPosition => ({ streamArn, shards: Object.fromEntries(positions) });
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });
  const backOff = () => sleep(Math.min(retry.maxMs, retry.baseMs * 2 ** Math.min(failures++, 16)));

  async function describeShards(): Promise<void> {
    const found = await listShards(client, streamArn, abort.signal);
    shards = found;
    describedAt = Date.now();
    mustDescribe = false;
    // Shards the stream no longer lists (trimmed after 24 h) need no position.
    const listed = new Set(found.map((shard) => shard.ShardId!));
    let pruned = false;
    for (const id of positions.keys()) {
      if (!listed.has(id)) pruned = positions.delete(id) || pruned;
    }
    if (pruned) await options.save(snapshot());
  }

  /** Shards to read now: not finished, and whose parent (if the stream still lists it) is finished. */
  function readable(): Shard[] {
    const listed = new Set(shards.map((shard) => shard.ShardId!));
    return shards.filter((shard) => {
      if (positions.get(shard.ShardId!)?.done) return false;
      const parent = shard.ParentShardId;
      return !parent || !listed.has(parent) || positions.get(parent)?.done === true;
    });
  }

  async function iteratorFor(shardId: string): Promise<string | undefined> {
    const known = iterators.get(shardId);
    if (known) return known;
    const after = positions.get(shardId)?.after;
    const request = (type: 'AFTER_SEQUENCE_NUMBER' | 'TRIM_HORIZON') =>
      client.send(
        new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shardId, ShardIteratorType: type, ...(type === 'AFTER_SEQUENCE_NUMBER' ? { SequenceNumber: after } : {}) }),
        { abortSignal: abort.signal },
      );
    try {
      return (await request(after ? 'AFTER_SEQUENCE_NUMBER' : 'TRIM_HORIZON')).ShardIterator;
    } catch (error) {
      if (!(error instanceof TrimmedDataAccessException)) throw error;
      // The stream keeps records 24 hours: what was written longer ago while nothing read it is gone.
      log.warn('stream records older than the stream keeps were never published; resuming at the oldest one kept', { shard: shardId });
      return (await request('TRIM_HORIZON')).ShardIterator;
    }
  }

  async function finishShard(shardId: string): Promise<void> {
    positions.set(shardId, { done: true });
    iterators.delete(shardId);
    mustDescribe = true; // its children are listed now
    await options.save(snapshot());
  }

  /** One GetRecords on one shard, its records processed and the position saved. Whether it found records. */
  async function readShard(shardId: string): Promise<boolean> {
    let response;
    try {
      const iterator = await iteratorFor(shardId);
      if (!iterator) {
        await finishShard(shardId);
        return false;
      }
      response = await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: MAX_RECORDS_PER_CALL }), { abortSignal: abort.signal });
    } catch (error) {
      iterators.delete(shardId);
      if (error instanceof ExpiredIteratorException) return false; // a new one from the position
      if (error instanceof ResourceNotFoundException) {
        await finishShard(shardId);
        return false;
      }
      throw error;
    }
    const records = response.Records ?? [];
    for (let start = 0; start < records.length; start += batchSize) {
      const batch = records.slice(start, start + batchSize).map(toStreamRecord);
      const { failed } = await options.process(batch);
      const firstFailed = failed.length === 0 ? batch.length : batch.findIndex((record) => record.sequenceNumber === failed[0]);
      const lastDone = (firstFailed < 0 ? 0 : firstFailed) - 1;
      if (lastDone >= 0) {
        positions.set(shardId, { after: batch[lastDone].sequenceNumber });
        await options.save(snapshot());
      }
      if (failed.length > 0) {
        // Read again from the position: the failed record and every later one.
        iterators.delete(shardId);
        throw new RetryLater();
      }
    }
    if (response.NextShardIterator) iterators.set(shardId, response.NextShardIterator);
    else await finishShard(shardId); // closed, and read to its end
    return records.length > 0;
  }

  async function loop(): Promise<void> {
    while (running) {
      try {
        if (mustDescribe || Date.now() - describedAt > describeEveryMs) await describeShards();
        let found = false;
        for (const shard of readable()) {
          if (!running) break;
          found = (await readShard(shard.ShardId!)) || found;
        }
        failures = 0;
        if (!found && running && !mustDescribe) await sleep(pollMs);
      } catch (error) {
        if (!running) break;
        if (!(error instanceof RetryLater)) log.warn('stream read failed, retrying', { error: errorMessage(error) });
        await backOff();
      }
    }
  }

  const done = loop();
  return {
    async stop() {
      running = false;
      wake?.();
      // A batch being processed finishes and is saved; a read still waiting is abandoned (its
      // records are read again from the saved position next time).
      let timer: NodeJS.Timeout | undefined;
      const settled = await Promise.race([done.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 2_000)))]);
      clearTimeout(timer);
      if (!settled) abort.abort();
      await done;
    },
  };
}

/** `process` gave records back: read them again after the back-off (the publisher already logged why). */
class RetryLater extends Error {}
