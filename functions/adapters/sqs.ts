import { ChangeMessageVisibilityCommand, SendMessageBatchCommand, SendMessageCommand, SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { DependencyError } from '../shared/errors.ts';

/**
 * Bounds of one SendMessage as ingest makes it. A stalled queue must become a 503 the provider
 * retries, well inside the function's 10 s timeout, never a hung request. The overall deadline is
 * an AbortSignal passed to `send`, which every v3 SDK honours; the per-attempt timeouts
 * (`requestTimeout` only warns unless `throwOnRequestTimeout` is set, on SDK versions that have it)
 * make a retry happen sooner.
 */
export const SQS_BOUNDS = { connectionTimeoutMs: 1_000, requestTimeoutMs: 2_500, maxAttempts: 3, deadlineMs: 6_000 } as const;

/** An SQS client whose calls are bounded as above (`config` adds the endpoint or region, for the local runtime). */
export function boundedSqsClient(config: SQSClientConfig = {}): SQSClient {
  return new SQSClient({
    ...config,
    maxAttempts: SQS_BOUNDS.maxAttempts,
    requestHandler: {
      connectionTimeout: SQS_BOUNDS.connectionTimeoutMs,
      requestTimeout: SQS_BOUNDS.requestTimeoutMs,
      throwOnRequestTimeout: true,
    },
  });
}

/** Resolves once the queue has durably accepted the message; throws (or aborts at the deadline) otherwise. */
export function queueSender(sqs: SQSClient, queueUrl: string, deadlineMs: number = SQS_BOUNDS.deadlineMs): (body: string) => Promise<void> {
  return async (body) => {
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }), { abortSignal: AbortSignal.timeout(deadlineMs) });
  };
}

/** Delays a failed record's next delivery by changing its visibility timeout. */
export function visibilityDelayer(sqs: SQSClient, queueUrl: string): (record: SQSRecord, seconds: number) => Promise<void> {
  return async (record, seconds) => {
    await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: record.receiptHandle, VisibilityTimeout: seconds }));
  };
}

/** Queues up to 10 messages in one call, each with its own delay; throws unless every one was accepted (saying how many were not). */
export function batchSender(sqs: SQSClient, queueUrl: string): (messages: readonly { readonly body: string; readonly delaySeconds: number }[]) => Promise<void> {
  return async (messages) => {
    if (messages.length === 0) return;
    const result = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: messages.map((message, n) => ({ Id: String(n), MessageBody: message.body, DelaySeconds: Math.max(0, Math.min(900, Math.round(message.delaySeconds))) })),
      }),
    );
    if (result.Failed?.length) {
      throw new DependencyError('sqs', `${result.Failed.length} of ${messages.length} messages not queued: ${result.Failed.map((failure) => failure.Code).join(', ')}`, {
        notQueued: result.Failed.length,
      });
    }
  };
}
