import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { secretsManagerSource } from '../adapters/secrets-manager.ts';
import { RETENTION } from '../core/pipeline-definition.ts';
import { DETAIL_TYPES, EVENT_SOURCE } from '../core/publish.ts';
import { RELAY, relayInstruction, type RelayDependencies, type RelayResult } from '../core/relay.ts';
import { ConfigurationError, errorMessage } from '../shared/errors.ts';
import type { Logger } from '../shared/log.ts';
import { retryDelaySeconds } from './back-off.ts';
import { DEFAULT_SECRET_CACHE_SECONDS, relayHandlerOptions } from './dependencies.ts';
import { numberEnv, requireEnv } from './environment.ts';
import { withInvocationLogFields } from './invocation-log.ts';

export type RelayHandler = (event: SQSEvent) => Promise<SQSBatchResponse>;

export interface RelayHandlerOptions {
  readonly deps: RelayDependencies;
  /** Delays a failed record's next delivery (back-off through the visibility timeout); best effort. */
  readonly delayRetry?: (record: SQSRecord, seconds: number) => Promise<void>;
  /** @default RELAY.retryBaseSeconds */
  readonly retryBaseSeconds?: number;
  /** Jitter of the back-off, from 0 to 1. @default Math.random */
  readonly random?: () => number;
}

/**
 * The instruction a queued message carries: the event as an EventBridge rule hands it to its SQS
 * target (the whole event, `detail` inside) or as the local bus delivers it. A message that is not a
 * "Callback Instruction" of the gateway gives undefined: nothing to send.
 */
export function instructionOf(body: string): unknown {
  let event: unknown;
  try {
    event = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (!event || typeof event !== 'object') return undefined;
  const { source, 'detail-type': detailType, detail } = event as Record<string, unknown>;
  return source === EVENT_SOURCE && detailType === DETAIL_TYPES.instruction ? detail : undefined;
}

function processRecord(record: SQSRecord, deps: RelayDependencies): Promise<RelayResult> {
  const detail = instructionOf(record.body);
  if (detail === undefined) {
    deps.log.warn('relay', { outcome: 'skipped', reason: 'not a Callback Instruction event', messageId: record.messageId });
    return Promise.resolve({ outcome: 'skipped', reason: 'not a Callback Instruction event' });
  }
  return relayInstruction(detail, deps);
}

/** The failure line: the error's own message (ours: ids, codes and statuses, never a destination or text). */
function logFailure(log: Logger, record: SQSRecord, error: unknown) {
  const fields = { messageId: record.messageId, receiveCount: Number(record.attributes.ApproximateReceiveCount), error: errorMessage(error) };
  if (error instanceof ConfigurationError) log.error('record failed: configuration', fields);
  else log.warn('record failed, will retry', fields);
}

/**
 * SQS batch handler for the relay queue (the EventBridge rule's target), with partial batch
 * failures: a record that sent nothing and may succeed later is given back, with back-off, until
 * the queue's receive limit moves it to the DLQ (or it is too old and recorded `expired`).
 */
export function createRelayHandler(options: RelayHandlerOptions): RelayHandler {
  const { deps } = options;
  const base = options.retryBaseSeconds ?? RELAY.retryBaseSeconds;
  return async (event) => {
    const outcomes = await Promise.allSettled(event.Records.map((record) => processRecord(record, deps)));
    const failures: SQSBatchResponse['batchItemFailures'] = [];
    await Promise.all(
      outcomes.map(async (outcome, index) => {
        if (outcome.status === 'fulfilled') return;
        const record = event.Records[index];
        logFailure(deps.log, record, outcome.reason);
        failures.push({ itemIdentifier: record.messageId });
        const receiveCount = Number(record.attributes.ApproximateReceiveCount) || 1;
        await options.delayRetry?.(record, retryDelaySeconds(receiveCount, base, options.random ?? Math.random)).catch(() => undefined);
      }),
    );
    return { batchItemFailures: failures };
  };
}

function fromEnvironment(): RelayHandler {
  return createRelayHandler(
    relayHandlerOptions({
      dynamo: new DynamoDBClient({}),
      tableName: requireEnv('TABLE_NAME'),
      sqs: new SQSClient({}),
      queueUrl: requireEnv('QUEUE_URL'),
      sender: requireEnv('SMS_RELAY'),
      secretSource: secretsManagerSource(),
      secretCacheSeconds: numberEnv('SECRET_CACHE_SECONDS', DEFAULT_SECRET_CACHE_SECONDS),
      codeMaxAgeSeconds: numberEnv('RELAY_MAX_AGE_SECONDS', RELAY.codeMaxAgeSeconds),
      retentionDays: numberEnv('EVENT_RETENTION_DAYS', RETENTION.eventDays),
      inFlightSeconds: numberEnv('RELAY_IN_FLIGHT_SECONDS', RELAY.timeoutSeconds),
    }),
  );
}

let configured: RelayHandler | undefined;

/** Lambda entry point for the relay queue; its lines name the invocation. */
export const handler = withInvocationLogFields<SQSEvent, SQSBatchResponse>((event) => {
  configured ??= fromEnvironment();
  return configured(event);
});
