import { boundedDynamoClient } from '../adapters/dynamo-store.ts';
import { boundedSqsClient } from '../adapters/sqs.ts';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { secretsManagerSource } from '../adapters/secrets-manager.ts';
import { QUEUE, RETENTION } from '../core/pipeline-definition.ts';
import { QueueMessageSchema, RecheckMessageSchema } from '../core/queue-message.ts';
import { setLookupDeadline } from '../core/ask.ts';
import { processRecheck } from '../core/recheck.ts';
import { processMessage, type WorkerDependencies } from '../core/worker.ts';
import { subjectTurns } from '../core/state-write.ts';
import { DEFAULT_LOOKUP_TIMEOUT_MS, DEFAULT_SECRET_CACHE_SECONDS, workerHandlerOptions } from './dependencies.ts';
import { integerEnv, numberEnv, reconcileEnv, requireEnv } from './environment.ts';
import { retryDelaySeconds } from './back-off.ts';
import { withInvocationLogFields } from './invocation-log.ts';
import { deployedProvidersEnv } from './deployed-providers.ts';
import { sqsBatchHandler, type RetryOptions, type SqsBatchHandler } from './sqs-batch.ts';

export { retryDelaySeconds };

export type WorkerHandler = SqsBatchHandler;

export interface WorkerHandlerOptions extends RetryOptions {
  readonly deps: WorkerDependencies;
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

/**
 * SQS batch handler with partial batch failures: records are processed concurrently, and only the
 * failed ones are returned for redelivery (and, past the receive limit, the DLQ).
 */
export function createWorkerHandler(options: WorkerHandlerOptions): WorkerHandler {
  const retry = { ...options, retryBaseSeconds: options.retryBaseSeconds ?? QUEUE.retryBaseSeconds };
  return (event) => {
    // A batch's records take turns at each subject's state, the turns made afresh for each batch.
    const deps = { ...options.deps, subjectTurn: options.deps.subjectTurn ?? subjectTurns() };
    return sqsBatchHandler((record) => processRecord(record, deps), deps.log, retry)(event);
  };
}

function fromEnvironment(): WorkerHandler {
  return createWorkerHandler(
    workerHandlerOptions({
      dynamo: boundedDynamoClient(),
      tableName: requireEnv('TABLE_NAME'),
      sqs: boundedSqsClient(),
      queueUrl: requireEnv('QUEUE_URL'),
      secretSource: secretsManagerSource(),
      secretCacheSeconds: numberEnv('SECRET_CACHE_SECONDS', DEFAULT_SECRET_CACHE_SECONDS),
      lookupTimeoutMs: numberEnv('CONFIRM_TIMEOUT_MS', DEFAULT_LOOKUP_TIMEOUT_MS),
      retention: {
        eventDays: numberEnv('EVENT_RETENTION_DAYS', RETENTION.eventDays),
        sensitiveHours: numberEnv('SENSITIVE_RETENTION_HOURS', RETENTION.sensitiveHours),
      },
      retryBaseSeconds: numberEnv('RETRY_BASE_SECONDS', QUEUE.retryBaseSeconds),
      // The queue's maxReceiveCount setting (lib/callback-queue.ts sets it from cdk.json).
      maxReceiveCount: integerEnv('MAX_RECEIVE_COUNT', QUEUE.maxReceiveCount),
      reconcile: reconcileEnv(),
      // Set only with the SMS relay on (lib/callback-queue.ts).
      ...(process.env.SMS_RELAY ? { smsRelay: process.env.SMS_RELAY } : {}),
      // Set only when the stack deploys some providers (lib/reconciliation.ts).
      ...(process.env.PROVIDERS ? { deployedProviders: deployedProvidersEnv().map((provider) => provider.id) } : {}),
    }),
  );
}

let configured: WorkerHandler | undefined;

/** Time kept back from Lambda's timeout for what follows the last answer: the state and event writes, the batch's answer. */
const DEADLINE_MARGIN_MS = 3_000;

/**
 * Lambda entry point for the SQS event source; its lines name the invocation. No status request
 * starts that could not end before the function's timeout (see setLookupDeadline).
 */
export const handler = withInvocationLogFields<SQSEvent, SQSBatchResponse>(async (event, context) => {
  configured ??= fromEnvironment();
  const remaining = context?.getRemainingTimeInMillis?.();
  setLookupDeadline(remaining === undefined ? undefined : Date.now() + remaining - DEADLINE_MARGIN_MS);
  try {
    return await configured(event);
  } finally {
    setLookupDeadline(undefined);
  }
});
