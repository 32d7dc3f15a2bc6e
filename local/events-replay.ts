import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  ResourceNotFoundException,
  TrimmedDataAccessException,
  type DynamoDBStreamsClient,
} from '@aws-sdk/client-dynamodb-streams';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { ChangeMessageVisibilityCommand, DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import { DETAIL_TYPES, eventsFromChange, type GatewayEvent } from '../functions/core/publish.ts';
import { eventName, publishRecords, PUBLISH_FAILED, type EventName, type StreamRecord } from '../functions/core/publisher.ts';
import { publisherHandlerOptions } from '../functions/handlers/dependencies.ts';
import { findProvider } from '../functions/providers/index.ts';
import { maskSubjectId } from '../functions/providers/provider.ts';
import type { Logger } from '../functions/shared/log.ts';
import { listShards, toStreamRecord } from './stream-reader.ts';

/**
 * Replays what the publisher gave up on: the changes named by the events dead-letter queue's
 * `DDBStreamBatchInfo` messages, read again from the table's stream and published through the
 * publisher's own core and adapter (functions/core/publisher.ts, functions/adapters/eventbridge.ts),
 * so each change makes the event, and the `eventId`, it would have made: a subscriber that saw some
 * of them already dedupes them. An event the bus refuses for what it holds is set aside in the same
 * DLQ, as the publisher sets it aside.
 *
 * The message Lambda's DynamoDB event source sends its on-failure destination names the batch, never
 * its records (https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html, "Example
 * invocation record"): `{requestContext: {requestId, functionArn, condition, approximateInvokeCount},
 * responseContext: {statusCode, executedVersion, functionError}, version: "1.0", timestamp,
 * DDBStreamBatchInfo: {shardId, startSequenceNumber, endSequenceNumber, approximateArrivalOfFirstRecord,
 * approximateArrivalOfLastRecord, batchSize, streamArn}}`. The records are read with the DynamoDB
 * Streams API: GetShardIterator `AT_SEQUENCE_NUMBER` ("start reading exactly from the position
 * denoted by a specific sequence number",
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetShardIterator.html),
 * then GetRecords pages until a record past `endSequenceNumber`, or no `NextShardIterator` (a closed
 * shard read to its end; https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetRecords.html).
 * A stream keeps a record 24 hours: past them, GetShardIterator and GetRecords answer
 * `TrimmedDataAccessException`, and a shard or stream no longer there `ResourceNotFoundException`.
 * Sequence numbers are numeric strings of varying length, compared as numbers.
 *
 * The range holds every record of the shard between the two, those Lambda's stream filter kept from
 * the publisher (lib/event-outlet.ts `streamFilterPatterns`) too: they make no event here either.
 * The filter is cut to what the core publishes, not the other way round: every change the core
 * makes an event of passes it (test/integration/events-out.test.ts, test/infra), and the core makes
 * none of a record it kept out (a removal, a bookkeeping write, another provider's event item). So
 * the core alone decides, as it does in the publisher, and there is no second copy of the filter.
 */

/** What Lambda's on-failure message names: one batch of one shard. */
export interface StreamBatchInfo {
  readonly shardId: string;
  readonly startSequenceNumber: string;
  readonly endSequenceNumber: string;
  readonly approximateArrivalOfFirstRecord?: string;
  readonly approximateArrivalOfLastRecord?: string;
  readonly batchSize?: number;
  readonly streamArn: string;
}

/**
 * What Lambda writes, as the DynamoDB Streams API documents it: a shard id of 28 to 65 characters
 * (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_Shard.html), sequence
 * numbers of 21 to 40 digits (API_streams_SequenceNumberRange.html), a stream ARN
 * `arn:<partition>:dynamodb:<region>:<account>:table/<TableName>/stream/<label>`, and ISO 8601 times.
 * Anyone allowed to send to the DLQ can write a message: one that names anything else (a phone
 * number in a shard id, a range of a million digits) is not a batch, and is neither read nor echoed.
 */
const SHARD_ID = /^[A-Za-z0-9_.-]{28,65}$/;
const SEQUENCE_NUMBER = /^\d{21,40}$/;
const STREAM_ARN = /^arn:aws[a-z-]*:dynamodb:[a-z0-9-]{1,32}:(\d{12}):table\/([A-Za-z0-9_.-]{3,255})\/stream\/[0-9A-Za-z:._-]{1,64}$/;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

/** The batch a DLQ message names, or undefined when it names none. */
export function streamBatchInfo(body: unknown): StreamBatchInfo | undefined {
  const info = (body as { DDBStreamBatchInfo?: Record<string, unknown> } | null)?.DDBStreamBatchInfo;
  if (!info || typeof info !== 'object') return undefined;
  const { shardId, startSequenceNumber, endSequenceNumber, streamArn } = info;
  const matches = (value: unknown, pattern: RegExp): value is string => typeof value === 'string' && pattern.test(value);
  if (!matches(shardId, SHARD_ID) || !matches(streamArn, STREAM_ARN) || !matches(startSequenceNumber, SEQUENCE_NUMBER) || !matches(endSequenceNumber, SEQUENCE_NUMBER)) return undefined;
  if (BigInt(startSequenceNumber) > BigInt(endSequenceNumber)) return undefined;
  const time = (value: unknown) => (matches(value, TIME) ? value : undefined);
  const [first, last] = [time(info.approximateArrivalOfFirstRecord), time(info.approximateArrivalOfLastRecord)];
  return {
    shardId,
    startSequenceNumber,
    endSequenceNumber,
    ...(first ? { approximateArrivalOfFirstRecord: first } : {}),
    ...(last ? { approximateArrivalOfLastRecord: last } : {}),
    ...(Number.isInteger(info.batchSize) && (info.batchSize as number) > 0 ? { batchSize: info.batchSize as number } : {}),
    streamArn,
  };
}

/** The table and account a stream ARN names (a valid StreamBatchInfo's). */
export function streamOwner(streamArn: string): { account: string; table: string } | undefined {
  const match = STREAM_ARN.exec(streamArn);
  return match ? { account: match[1], table: match[2] } : undefined;
}

/** The account of a queue URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`), when it names one. */
function queueAccount(queueUrl: string): string | undefined {
  try {
    const account = new URL(queueUrl).pathname.split('/')[1];
    return /^\d{12}$/.test(account) ? account : undefined;
  } catch {
    return undefined;
  }
}

/** The records of the batch are no longer in the stream (past its 24 hours, or the shard or stream gone). */
export class PastStreamError extends Error {
  override readonly name = 'PastStreamError';
}

/**
 * Empty GetRecords pages in a row after which the read of an open shard gives up. "It might take
 * multiple calls to get to a portion of the shard that contains stream records" (API_streams_GetRecords):
 * an open shard still holding the range's end may answer empty pages before it, so giving up here is
 * a read that failed (try again), not records the stream no longer holds (delete the message).
 */
const MAX_EMPTY_PAGES = 20;

/** The records of `info`'s shard from its start to its end sequence number, both included, in order. */
export async function readBatch(client: DynamoDBStreamsClient, info: StreamBatchInfo): Promise<StreamRecord[]> {
  const start = BigInt(info.startSequenceNumber);
  const end = BigInt(info.endSequenceNumber);
  const past = (error: unknown): unknown =>
    error instanceof TrimmedDataAccessException || error instanceof ResourceNotFoundException
      ? new PastStreamError(`${(error as Error).name}: the stream no longer holds these records`, { cause: error })
      : error;
  let iterator: string | undefined;
  try {
    ({ ShardIterator: iterator } = await client.send(
      new GetShardIteratorCommand({ StreamArn: info.streamArn, ShardId: info.shardId, ShardIteratorType: 'AT_SEQUENCE_NUMBER', SequenceNumber: info.startSequenceNumber }),
    ));
  } catch (error) {
    throw past(error);
  }
  const records: StreamRecord[] = [];
  let empty = 0;
  while (iterator) {
    let page;
    try {
      page = await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
    } catch (error) {
      throw past(error);
    }
    for (const record of page.Records ?? []) {
      const sequence = BigInt(record.dynamodb?.SequenceNumber ?? '0');
      if (sequence > end) return records;
      if (sequence >= start) records.push(toStreamRecord(record));
      if (sequence === end) return records;
    }
    empty = (page.Records ?? []).length === 0 ? empty + 1 : 0;
    // An open shard hands out an iterator for ever, empty pages past its last record included.
    if (empty >= MAX_EMPTY_PAGES) {
      throw new Error(`the open shard gave ${MAX_EMPTY_PAGES} empty pages in a row before ${info.endSequenceNumber} (read ${records.length} record(s) of the range): run again`);
    }
    iterator = page.NextShardIterator;
  }
  // A closed shard read to its end: what it did not hold up to the end, it never will.
  throw new PastStreamError(`the closed shard holds no record up to ${info.endSequenceNumber} (read ${records.length})`);
}

/** A batch message, as the replay names it: what it is and what became of it, never an event's detail. */
export interface ReplayedBatch extends StreamBatchInfo {
  readonly dlqMessageId: string;
  readonly kind: 'batch';
  /**
   * replayed (published, deleted), would-replay (dry run); else left in the DLQ: past-stream,
   * other-table (its stream is not --table's: never read), bus-failed, read-failed, hold-lost (the
   * run's hold on the message ended before its turn: never read), not-reached (after a bus or read
   * failure or a lost hold, or once interrupted).
   */
  result: 'replayed' | 'would-replay' | 'past-stream' | 'other-table' | 'bus-failed' | 'read-failed' | 'hold-lost' | 'not-reached';
  /** Records of the stream in the range. */
  records?: number;
  /** Of those, records an earlier message of this run replayed (overlapping ranges): not published again. */
  alreadyReplayed?: number;
  /** Events they make (published, or, in a dry run, that would be). */
  events?: number;
  published?: number;
  setAside?: number;
  /** Dry run: each event the range makes, named by its ids (subject ids masked as log lines mask them). */
  wouldPublish?: EventName[];
  error?: string;
}

/** One DLQ message, as the replay names it. */
export type ReplayedMessage =
  | ReplayedBatch
  | { readonly dlqMessageId: string; readonly kind: 'setAside'; readonly result: 'left'; readonly eventId?: string; readonly detailType?: string; readonly provider?: string; readonly subjectId?: string; readonly errorCode?: string }
  | { readonly dlqMessageId: string; readonly kind: 'unknown'; readonly result: 'left' };

/** What `redrive --events --json` prints. */
export interface EventsReplayReport {
  readonly target: 'aws';
  readonly dryRun: boolean;
  readonly bus: string;
  dlq?: { visible: number; inFlight: number };
  /** Batch messages whose changes were all published (or set aside), deleted from the DLQ. */
  replayed: number;
  /** Events published, and set aside, over every message. */
  published: number;
  setAside: number;
  /** Messages left in the DLQ: set-aside events, unknown messages, and batches not replayed. */
  left: number;
  /** Stopped by Ctrl-C before every batch was tried. */
  interrupted?: true;
  messages: ReplayedMessage[];
  error?: string;
}

export interface EventsReplayOptions {
  readonly sqs: SQSClient;
  readonly streams: DynamoDBStreamsClient;
  readonly eventBridge: EventBridgeClient;
  readonly dlqUrl: string;
  readonly eventBusName: string;
  /** The table whose stream the DLQ's batches must name (the stack output TableName). */
  readonly tableName: string;
  readonly dryRun: boolean;
  /** Aborted (Ctrl-C): the message under way is finished, the others left (not-reached) and made visible again. */
  readonly signal?: AbortSignal;
  /** A line said along the way (stderr): the publisher's own log lines go there too. */
  readonly say: (line: string) => void;
}

/** How long a message received here stays hidden from others while the replay works on it. */
const VISIBILITY_SECONDS = 900;

/** Every message of the DLQ, each received once (hidden until the replay ends). */
async function receiveAll(sqs: SQSClient, dlqUrl: string): Promise<Message[]> {
  const messages: Message[] = [];
  const seen = new Set<string>();
  for (;;) {
    // A long poll (WaitTimeSeconds > 0) asks every SQS server: an empty answer is an empty queue
    // (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-short-and-long-polling.html).
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlqUrl, MaxNumberOfMessages: 10, VisibilityTimeout: VISIBILITY_SECONDS, WaitTimeSeconds: 1 }));
    const fresh = Messages.filter((message) => !seen.has(message.MessageId ?? ''));
    if (fresh.length === 0) return messages;
    for (const message of fresh) seen.add(message.MessageId ?? '');
    messages.push(...fresh);
  }
}

const parsed = (message: Message): unknown => {
  try {
    return JSON.parse(message.Body ?? '');
  } catch {
    return undefined;
  }
};

/**
 * Each shard of the stream and its parent, as DescribeStream lists them (listShards). A stream no
 * longer there lists none.
 */
export async function shardParents(client: DynamoDBStreamsClient, streamArn: string): Promise<Map<string, string | undefined>> {
  try {
    return new Map((await listShards(client, streamArn)).flatMap((shard) => (shard.ShardId ? [[shard.ShardId, shard.ParentShardId] as const] : [])));
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return new Map();
    throw error;
  }
}

/**
 * The batches in stream order: a shard's after its parent's (and every ancestor's the stream still
 * lists), then by shard id, then by sequence number. A shard id is only "system-generated", 28 to 65
 * characters (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_Shard.html):
 * nothing documented says a child's sorts after its parent's, so the parents are asked for.
 */
export function inStreamOrder<T extends { readonly info: StreamBatchInfo }>(batches: readonly T[], parents: ReadonlyMap<string, string | undefined>): T[] {
  const depth = (shardId: string): number => {
    const seen = new Set([shardId]);
    let count = 0;
    for (let parent = parents.get(shardId); parent !== undefined && parents.has(parent) && !seen.has(parent); parent = parents.get(parent)) {
      seen.add(parent);
      count += 1;
    }
    return count;
  };
  return [...batches].sort(({ info: a }, { info: b }) => {
    if (a.shardId !== b.shardId) {
      const [x, y] = [depth(a.shardId), depth(b.shardId)];
      if (x !== y) return x - y;
      return a.shardId < b.shardId ? -1 : 1;
    }
    const [x, y] = [BigInt(a.startSequenceNumber), BigInt(b.startSequenceNumber)];
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

export async function replayEventsDlq(options: EventsReplayOptions): Promise<EventsReplayReport> {
  const { sqs, dlqUrl, say } = options;
  const report: EventsReplayReport = { target: 'aws', dryRun: options.dryRun, bus: options.eventBusName, replayed: 0, published: 0, setAside: 0, left: 0, messages: [] };
  const { Attributes = {} } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
  report.dlq = { visible: Number(Attributes.ApproximateNumberOfMessages ?? 0), inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0) };

  const received = await receiveAll(sqs, dlqUrl);
  const batches: { message: Message; info: StreamBatchInfo }[] = [];
  for (const message of received) {
    const body = parsed(message);
    const info = streamBatchInfo(body);
    const dlqMessageId = message.MessageId ?? '';
    if (info) {
      batches.push({ message, info });
    } else if (typeof (body as { setAside?: unknown } | undefined)?.setAside === 'string') {
      // Named as the publisher named it (its ids, masked when it was set aside; masked again here,
      // whoever wrote the message), never more.
      const named = body as Record<string, unknown>;
      const pick = (key: string, valid: (value: string) => boolean) => (typeof named[key] === 'string' && valid(named[key]) ? { [key]: named[key] } : {});
      const matching = (pattern: RegExp) => (value: string) => pattern.test(value);
      const subjectId = typeof named.subjectId === 'string' ? { subjectId: maskSubjectId(named.subjectId, findProvider(String(named.provider))) } : {};
      report.messages.push({ dlqMessageId, kind: 'setAside', result: 'left', ...pick('eventId', matching(/^[0-9a-f]{32}$/)),
        ...pick('detailType', (value) => (Object.values(DETAIL_TYPES) as string[]).includes(value)),
        ...pick('provider', (value) => findProvider(value) !== undefined),
        ...subjectId,
        ...pick('errorCode', matching(/^[A-Za-z]{1,64}$/)) });
    } else {
      report.messages.push({ dlqMessageId, kind: 'unknown', result: 'left' });
    }
  }

  const publisher = publisherHandlerOptions({
    eventBridge: options.eventBridge,
    eventBusName: options.eventBusName,
    setAside: { sqs, queueUrl: dlqUrl },
    write: (line) => say(line),
  }).deps;
  // The publisher's own lines, but for the one that says the stream retries: here nothing retries
  // by itself, the message stays in the DLQ for the next run.
  const log: Logger = {
    ...publisher.log,
    warn: (message, fields) => publisher.log.warn(message === PUBLISH_FAILED ? 'publish failed; the DLQ message stays for the next run' : message, fields),
  };
  const deps = { ...publisher, log };
  let busError: string | undefined;
  const publish = async (events: readonly GatewayEvent[]) => {
    try {
      return await deps.publish(events);
    } catch (error) {
      busError = (error as Error).message;
      throw error;
    }
  };
  const deleted = new Set<Message>();
  const dlqAccount = queueAccount(dlqUrl);
  /** `<shardId>/<sequenceNumber>` of each record replayed (or, in a dry run, listed) so far. */
  const replayedRecords = new Set<string>();
  let stopped = false;
  try {
    // The shards of this table's stream(s) named (a table made anew has a new stream).
    const parents = new Map<string, string | undefined>();
    const streamArns = new Set(batches.map(({ info }) => info.streamArn).filter((arn) => streamOwner(arn)?.table === options.tableName));
    for (const arn of streamArns) for (const [shard, parent] of await shardParents(options.streams, arn)) parents.set(shard, parent);
    for (const { message, info } of inStreamOrder(batches, parents)) {
      const entry: ReplayedBatch = { dlqMessageId: message.MessageId ?? '', kind: 'batch', result: 'not-reached', ...info };
      report.messages.push(entry);
      if (options.signal?.aborted) report.interrupted = true;
      if (stopped || report.interrupted) continue;
      // Another table's stream (or another account's) is not this gateway's changes: published, they
      // would be events no write of this table made. Only a message someone wrote names one.
      const owner = streamOwner(info.streamArn);
      if (owner?.table !== options.tableName || (dlqAccount !== undefined && owner.account !== dlqAccount)) {
        entry.result = 'other-table';
        entry.error = `the stream is table ${owner?.table ?? '?'}'s (account ${owner?.account ?? '?'}), not ${options.tableName}'s${dlqAccount ? ` (account ${dlqAccount})` : ''}: not read`;
        continue;
      }
      // Every message was received (and hidden) at the start: a long run can outlast that hold,
      // and another run may then have received this message. Its hold is renewed before it is
      // worked on; SQS refuses that once the hold is gone (MessageNotInflight,
      // ReceiptHandleIsInvalid: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html),
      // and then this run stops: publishing it too would race the other run, out of order, and
      // delete with a handle no longer its own.
      if (!options.dryRun) {
        try {
          await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: dlqUrl, ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: VISIBILITY_SECONDS }));
        } catch (error) {
          entry.result = 'hold-lost';
          entry.error = `this run's hold on the message ended (${(error as Error).name}; the run outlasted ${VISIBILITY_SECONDS} s, or another run received it): not read; run again once no other run is under way`;
          stopped = true;
          continue;
        }
      }
      let records: StreamRecord[];
      try {
        records = await readBatch(options.streams, info);
      } catch (error) {
        entry.result = error instanceof PastStreamError ? 'past-stream' : 'read-failed';
        entry.error = (error as Error).message;
        // Records the stream no longer holds are gone for good; a read that failed (throttled,
        // refused) may work next run, and the shard's later batches must not overtake it: stop, as
        // for a bus failure.
        if (entry.result === 'read-failed') stopped = true;
        continue;
      }
      // Lambda's retries split a failing batch in two and retry each half (BisectBatchOnFunctionError):
      // the DLQ can hold a batch and a part of it. A record an earlier batch of this run replayed is
      // not published again, behind its subject's later changes.
      const fresh = records.filter((record) => !replayedRecords.has(`${info.shardId}/${record.sequenceNumber}`));
      const events = fresh.flatMap((record) => eventsFromChange(record.change));
      entry.records = records.length;
      if (fresh.length < records.length) entry.alreadyReplayed = records.length - fresh.length;
      entry.events = events.length;
      const replayed = () => fresh.forEach((record) => replayedRecords.add(`${info.shardId}/${record.sequenceNumber}`));
      if (options.dryRun) {
        entry.result = 'would-replay';
        entry.wouldPublish = events.map(eventName);
        replayed();
        continue;
      }
      busError = undefined;
      const result = await publishRecords(fresh, { ...deps, publish });
      entry.published = result.published;
      entry.setAside = result.setAside;
      report.published += result.published;
      report.setAside += result.setAside;
      if (result.failed.length > 0) {
        // Later batches of the shard must not overtake this one: stop here, as the publisher would.
        entry.result = 'bus-failed';
        entry.error = busError ?? `${result.failed.length} record(s) not published`;
        stopped = true;
        continue;
      }
      replayed();
      await sqs.send(new DeleteMessageCommand({ QueueUrl: dlqUrl, ReceiptHandle: message.ReceiptHandle }));
      deleted.add(message);
      entry.result = 'replayed';
      report.replayed += 1;
    }
  } finally {
    // What stays in the DLQ is visible again at once, a failure's and an interrupted run's too: for
    // the next run, and for the alarm, which counts visible messages.
    for (const message of received) {
      if (deleted.has(message)) continue;
      await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: dlqUrl, ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: 0 })).catch(() => undefined);
    }
  }
  report.left = received.length - deleted.size;
  return report;
}
