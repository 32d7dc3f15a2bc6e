import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ChangeMessageVisibilityCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { ConfigurationError, errorMessage } from '../core/errors.ts';
import { createLogger, type Logger } from '../core/log.ts';
import { QUEUE, RETENTION } from '../core/pipeline-definition.ts';
import { QueueMessageSchema } from '../core/queue-message.ts';
import { createSecretCache } from '../core/secrets.ts';
import { createDynamoStore } from '../core/store.ts';
import { processMessage, type WorkerDependencies } from '../core/worker.ts';
import { secretsManagerSource } from './aws-secrets.ts';
import { numberEnv, requireEnv } from './environment.ts';

export type WorkerHandler = (event: SQSEvent) => Promise<SQSBatchResponse>;

export interface WorkerHandlerOptions {
  readonly deps: WorkerDependencies;
  /**
   * Delays a failed record's next delivery (exponential back-off through the visibility timeout).
   * Best effort: if it fails, SQS still redelivers after the queue's visibility timeout.
   */
  readonly delayRetry?: (record: SQSRecord, seconds: number) => Promise<void>;
  readonly retryBaseSeconds?: number;
}

/** Back-off for the n-th receive: base × 2^(n-1), at most 15 minutes. */
export function retryDelaySeconds(receiveCount: number, baseSeconds: number): number {
  return Math.min(900, Math.round(baseSeconds * 2 ** Math.max(0, receiveCount - 1)));
}

async function processRecord(record: SQSRecord, deps: WorkerDependencies) {
  let json: unknown;
  try {
    json = JSON.parse(record.body);
  } catch {
    throw new Error('queue message is not JSON');
  }
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
        await options.delayRetry?.(record, retryDelaySeconds(receiveCount, base)).catch(() => undefined);
      }),
    );
    return { batchItemFailures: failures };
  };
}

function fromEnvironment(): WorkerHandler {
  const tableName = requireEnv('TABLE_NAME');
  const queueUrl = requireEnv('QUEUE_URL');
  const sqs = new SQSClient({});
  const log = createLogger({ service: 'worker' });
  return createWorkerHandler({
    deps: {
      store: createDynamoStore(new DynamoDBClient({}), tableName),
      secrets: createSecretCache(secretsManagerSource(), { ttlMs: numberEnv('SECRET_CACHE_SECONDS', 300) * 1000 }),
      lookup: { fetch, timeoutMs: numberEnv('CONFIRM_TIMEOUT_MS', 5000), newRequestId: randomUUID },
      now: () => new Date(),
      log,
      retention: {
        eventDays: numberEnv('EVENT_RETENTION_DAYS', RETENTION.eventDays),
        sensitiveHours: numberEnv('SENSITIVE_RETENTION_HOURS', RETENTION.sensitiveHours),
      },
    },
    retryBaseSeconds: numberEnv('RETRY_BASE_SECONDS', QUEUE.retryBaseSeconds),
    delayRetry: async (record, seconds) => {
      await sqs.send(
        new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: record.receiptHandle, VisibilityTimeout: seconds }),
      );
    },
  });
}

let configured: WorkerHandler | undefined;

/** Lambda entry point for the SQS event source. */
export const handler: WorkerHandler = (event) => {
  configured ??= fromEnvironment();
  return configured(event);
};
