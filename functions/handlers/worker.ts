import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { secretsManagerSource } from '../adapters/secrets-manager.ts';
import { QUEUE, RETENTION } from '../core/pipeline-definition.ts';
import { QueueMessageSchema, RecheckMessageSchema } from '../core/queue-message.ts';
import { processRecheck } from '../core/recheck.ts';
import { processMessage, type WorkerDependencies } from '../core/worker.ts';
import { ConfigurationError, errorMessage } from '../shared/errors.ts';
import type { Logger } from '../shared/log.ts';
import { DEFAULT_LOOKUP_TIMEOUT_MS, DEFAULT_SECRET_CACHE_SECONDS, workerHandlerOptions } from './dependencies.ts';
import { numberEnv, reconcileEnv, requireEnv } from './environment.ts';
import { retryDelaySeconds } from './back-off.ts';
import { withInvocationLogFields } from './invocation-log.ts';

export { retryDelaySeconds };

export type WorkerHandler = (event: SQSEvent) => Promise<SQSBatchResponse>;

export interface WorkerHandlerOptions {
  readonly deps: WorkerDependencies;
  /**
   * Delays a failed record's next delivery (exponential back-off through the visibility timeout).
   * Best effort: if it fails, SQS still redelivers after the queue's visibility timeout.
   */
  readonly delayRetry?: (record: SQSRecord, seconds: number) => Promise<void>;
  readonly retryBaseSeconds?: number;
  /** Jitter of the back-off, from 0 to 1 (tests pass a fixed one). @default Math.random */
  readonly random?: () => number;
}

async function processRecord(record: SQSRecord, deps: WorkerDependencies) {
  let json: unknown;
  try {
    json = JSON.parse(record.body);
  } catch {
    throw new Error('queue message is not JSON');
  }
  if ((json as { kind?: unknown } | null)?.kind === 'recheck') return processRecheck(RecheckMessageSchema.parse(json), deps);
  const message = QueueMessageSchema.parse(json);
  return processMessage(message, deps, Number(record.attributes.ApproximateReceiveCount) || 1);
}

function logFailure(log: Logger, record: SQSRecord, error: unknown) {
  const fields = {
    messageId: record.messageId,
    receiveCount: Number(record.attributes.ApproximateReceiveCount),
    error: errorMessage(error),
  };
  // A configuration fault needs a person; a dependency fault usually clears by itself.
  if (error instanceof ConfigurationError) log.error('record failed: configuration', fields);
  else log.warn('record failed, will retry', fields);
}

/**
 * SQS batch handler with partial batch failures: records are processed concurrently, and only the
 * failed ones are returned for redelivery (and, past the receive limit, the DLQ).
 */
export function createWorkerHandler(options: WorkerHandlerOptions): WorkerHandler {
  const { deps } = options;
  const base = options.retryBaseSeconds ?? QUEUE.retryBaseSeconds;
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

function fromEnvironment(): WorkerHandler {
  return createWorkerHandler(
    workerHandlerOptions({
      dynamo: new DynamoDBClient({}),
      tableName: requireEnv('TABLE_NAME'),
      sqs: new SQSClient({}),
      queueUrl: requireEnv('QUEUE_URL'),
      secretSource: secretsManagerSource(),
      secretCacheSeconds: numberEnv('SECRET_CACHE_SECONDS', DEFAULT_SECRET_CACHE_SECONDS),
      lookupTimeoutMs: numberEnv('CONFIRM_TIMEOUT_MS', DEFAULT_LOOKUP_TIMEOUT_MS),
      retention: {
        eventDays: numberEnv('EVENT_RETENTION_DAYS', RETENTION.eventDays),
        sensitiveHours: numberEnv('SENSITIVE_RETENTION_HOURS', RETENTION.sensitiveHours),
      },
      retryBaseSeconds: numberEnv('RETRY_BASE_SECONDS', QUEUE.retryBaseSeconds),
      reconcile: reconcileEnv(),
    }),
  );
}

let configured: WorkerHandler | undefined;

/** Lambda entry point for the SQS event source; its lines name the invocation. */
export const handler = withInvocationLogFields<SQSEvent, SQSBatchResponse>((event) => {
  configured ??= fromEnvironment();
  return configured(event);
});
