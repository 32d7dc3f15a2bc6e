import { boundedDynamoClient } from '../adapters/dynamo-store.ts';
import { boundedSqsClient } from '../adapters/sqs.ts';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { secretsManagerSource } from '../adapters/secrets-manager.ts';
import { RETENTION } from '../core/pipeline-definition.ts';
import { DETAIL_TYPES, EVENT_SOURCE } from '../core/publish.ts';
import { RELAY, relayInstruction, type RelayDependencies, type RelayResult, SKIPPED } from '../core/relay.ts';
import { DEFAULT_SECRET_CACHE_SECONDS, relayHandlerOptions } from './dependencies.ts';
import { countEnv, numberEnv, requireEnv } from './environment.ts';
import { withInvocationLogFields } from './invocation-log.ts';
import { sqsBatchHandler, type RetryOptions, type SqsBatchHandler } from './sqs-batch.ts';

export type RelayHandler = SqsBatchHandler;

export interface RelayHandlerOptions extends RetryOptions {
  readonly deps: RelayDependencies;
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
    deps.log.warn('relay', { outcome: 'skipped', reason: SKIPPED.notAnInstruction, messageId: record.messageId });
    return Promise.resolve({ outcome: 'skipped', reason: SKIPPED.notAnInstruction });
  }
  return relayInstruction(detail, deps, { receiveCount: Number(record.attributes.ApproximateReceiveCount) || 1, maxReceiveCount: RELAY.maxReceiveCount });
}

/**
 * SQS batch handler for the relay queue (the EventBridge rule's target), with partial batch
 * failures: a record that sent nothing and may succeed later is given back, with back-off, until
 * the queue's receive limit moves it to the DLQ (or it is too old and recorded `expired`).
 */
export function createRelayHandler(options: RelayHandlerOptions): RelayHandler {
  const { deps } = options;
  return sqsBatchHandler((record) => processRecord(record, deps), deps.log, {
    ...options,
    retryBaseSeconds: options.retryBaseSeconds ?? RELAY.retryBaseSeconds,
    maxReceiveCount: options.maxReceiveCount ?? RELAY.maxReceiveCount,
  });
}

function fromEnvironment(): RelayHandler {
  return createRelayHandler(
    relayHandlerOptions({
      dynamo: boundedDynamoClient(),
      tableName: requireEnv('TABLE_NAME'),
      sqs: boundedSqsClient(),
      queueUrl: requireEnv('QUEUE_URL'),
      sender: requireEnv('SMS_RELAY'),
      secretSource: secretsManagerSource(),
      secretCacheSeconds: numberEnv('SECRET_CACHE_SECONDS', DEFAULT_SECRET_CACHE_SECONDS),
      codeMaxAgeSeconds: numberEnv('RELAY_MAX_AGE_SECONDS', RELAY.codeMaxAgeSeconds),
      allowedCountryCodes: process.env.RELAY_ALLOWED_COUNTRY_CODES ?? 'any',
      maxPerNumberPerHour: countEnv('RELAY_MAX_PER_NUMBER_PER_HOUR', RELAY.maxPerNumberPerHour),
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
