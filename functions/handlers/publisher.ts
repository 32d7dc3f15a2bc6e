import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { boundedEventBridgeClient } from '../adapters/eventbridge.ts';
import { boundedSqsClient } from '../adapters/sqs.ts';
import { recordCreatedAtMs, toStreamRecord } from '../adapters/dynamo-stream.ts';
import { STREAM } from '../core/pipeline-definition.ts';
import { DETAIL_TYPES, type GatewayEvent } from '../core/publish.ts';
import { publishRecords, type PublisherDependencies } from '../core/publisher.ts';
import { publisherHandlerOptions } from './dependencies.ts';
import { requireEnv } from './environment.ts';
import { type InvocationContext, withInvocationLogFields } from './invocation-log.ts';

/**
 * The table's stream → the event bus. Lambda's DynamoDB event source hands over a batch of one
 * shard's records in order; the events they make are published in that order, and a failure gives
 * back its record and every later one (partial batch failure), so nothing of the shard overtakes it.
 *
 * One log line per batch (`stream batch`), with counts only: an instruction's destination, text or
 * link never reaches a log line (the events carry them; the errors name events by eventId). An
 * event the bus refuses for what it holds is set aside in the events dead-letter queue
 * (EVENTS_DLQ_URL), named, never its detail, and the batch goes on past it.
 */
export type PublisherHandler = (event: DynamoDBStreamEvent, context?: Pick<InvocationContext, 'getRemainingTimeInMillis'>) => Promise<DynamoDBBatchResponse>;

/**
 * Time kept back from Lambda's timeout after a failed batch's pause, to answer. A pause that ran
 * into the timeout turned the reported failure into a crash: Lambda then splits the batch and
 * publishes its records before the failed one again, and retries at once, without the pause.
 */
const ANSWER_MARGIN_MS = 1_000;

export interface PublisherHandlerOptions {
  readonly deps: PublisherDependencies;
  /** Longest pause before a failed batch is reported. @default STREAM.maxRetryPauseSeconds × 1000 */
  readonly maxRetryPauseMs?: number;
  /** @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  /** @default Date.now */
  readonly now?: () => number;
}

/**
 * How long a failed batch waits before it is reported: Lambda retries a stream batch at once, so
 * without a pause a bus outage would use up the retries in minutes. A twentieth of the failed
 * record's age (at least a second, at most `maxMs`): quick retries for a passing fault, slow ones
 * for a long outage, which STREAM.maxRecordAgeSeconds then bounds.
 */
export function retryPauseMs(recordAgeMs: number, maxMs: number): number {
  return Math.min(maxMs, Math.max(1_000, Math.round(recordAgeMs / 20)));
}

const sleepFor = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function createPublisherHandler(options: PublisherHandlerOptions): PublisherHandler {
  const { deps } = options;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? sleepFor;
  const maxPauseMs = options.maxRetryPauseMs ?? STREAM.maxRetryPauseSeconds * 1000;
  return async (event, context) => {
    const records = event.Records.map(toStreamRecord);
    const published = { statusChanged: 0, instructions: 0 };
    const publish = async (events: readonly GatewayEvent[]) => {
      const refused = (await deps.publish(events)) ?? [];
      for (const each of events) {
        if (refused.some((one) => one.event === each)) continue;
        if (each.detailType === DETAIL_TYPES.instruction) published.instructions++;
        else published.statusChanged++;
      }
      return refused;
    };
    const result = await publishRecords(records, { ...deps, publish });
    const fields = { records: records.length, events: result.published, ...published, setAside: result.setAside, failed: result.failed.length };
    if (result.failed.length === 0) {
      deps.log.info('stream batch', fields);
      return { batchItemFailures: [] };
    }
    const firstFailed = event.Records[records.findIndex((record) => record.sequenceNumber === result.failed[0])];
    const createdAt = firstFailed ? recordCreatedAtMs(firstFailed) : undefined;
    const ageMs = createdAt === undefined ? 0 : Math.max(0, now() - createdAt);
    const remainingMs = context?.getRemainingTimeInMillis?.();
    const pauseMs = Math.min(retryPauseMs(ageMs, maxPauseMs), remainingMs === undefined ? Infinity : Math.max(0, remainingMs - ANSWER_MARGIN_MS));
    deps.log.warn('stream batch', { ...fields, retryFrom: result.failed[0], oldestUnpublishedAgeMs: ageMs, pauseMs });
    await sleep(pauseMs);
    return { batchItemFailures: result.failed.map((sequenceNumber) => ({ itemIdentifier: sequenceNumber })) };
  };
}

let configured: PublisherHandler | undefined;

/** Lambda entry point for the table's stream; its lines name the invocation. */
export const handler = withInvocationLogFields<DynamoDBStreamEvent, DynamoDBBatchResponse>((event, context) => {
  configured ??= createPublisherHandler(
    publisherHandlerOptions({
      eventBridge: boundedEventBridgeClient(),
      eventBusName: requireEnv('EVENT_BUS_NAME'),
      setAside: { sqs: boundedSqsClient(), queueUrl: requireEnv('EVENTS_DLQ_URL') },
    }),
  );
  return configured(event, context);
});
