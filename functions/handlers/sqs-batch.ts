import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { ConfigurationError, DependencyError, errorMessage } from '../shared/errors.ts';
import type { Logger } from '../shared/log.ts';
import { MAX_RETRY_DELAY_SECONDS, retryDelaySeconds } from './back-off.ts';

export type SqsBatchHandler = (event: SQSEvent) => Promise<SQSBatchResponse>;

/** How a failed record comes back: the queue consumers' (worker, relay) shared retry options. */
export interface RetryOptions {
  /**
   * Delays a failed record's next delivery (exponential back-off through the visibility timeout).
   * Best effort: if it fails, SQS still redelivers after the queue's visibility timeout.
   */
  readonly delayRetry?: (record: SQSRecord, seconds: number) => Promise<void>;
  readonly retryBaseSeconds?: number;
  /** Jitter of the back-off, from 0 to 1 (tests pass a fixed one). @default Math.random */
  readonly random?: () => number;
  /**
   * The queue's receive limit: a record that fails on it is given back at once, not after a
   * back-off, so SQS moves it to the DLQ on the next receive rather than up to 15 minutes later.
   * @default none: every failed record backs off
   */
  readonly maxReceiveCount?: number;
}

/**
 * The failure line: the error's own message (ours: ids, codes and statuses, never a destination or
 * text). Its text is what the retry metrics and alarms match, so on the last receive it stays the
 * same and `next` says where the record goes: SQS moves it to the dead-letter queue.
 */
function logFailure(log: Logger, record: SQSRecord, error: unknown, last: boolean) {
  const fields = { messageId: record.messageId, receiveCount: Number(record.attributes.ApproximateReceiveCount), next: last ? 'dead-letter queue' : 'retry', error: errorMessage(error) };
  // A configuration fault needs a person; a dependency fault usually clears by itself.
  if (error instanceof ConfigurationError) log.error('record failed: configuration', fields);
  else log.warn('record failed, will retry', fields);
}

/**
 * The back-off before a failed record's next receive: never sooner than a busy dependency's
 * `Retry-After` (a 429 or 503 that said when to try again), up to the back-off's own cap.
 */
function retryDelay(reason: unknown, receiveCount: number, options: RetryOptions & { readonly retryBaseSeconds: number }): number {
  const backoff = retryDelaySeconds(receiveCount, options.retryBaseSeconds, options.random ?? Math.random);
  const asked = reason instanceof DependencyError ? reason.retryAfterSeconds : undefined;
  return asked === undefined ? backoff : Math.max(backoff, Math.min(MAX_RETRY_DELAY_SECONDS, Math.ceil(asked)));
}

/**
 * SQS batch handler with partial batch failures: records are processed concurrently, and only the
 * failed ones are returned for redelivery, each delayed by its own back-off (and, past the receive
 * limit, moved to the DLQ by SQS).
 */
export function sqsBatchHandler(processRecord: (record: SQSRecord) => Promise<unknown>, log: Logger, options: RetryOptions & { readonly retryBaseSeconds: number }): SqsBatchHandler {
  return async (event) => {
    const outcomes = await Promise.allSettled(event.Records.map((record) => processRecord(record)));
    const failures: SQSBatchResponse['batchItemFailures'] = [];
    await Promise.all(
      outcomes.map(async (outcome, index) => {
        if (outcome.status === 'fulfilled') return;
        const record = event.Records[index];
        const receiveCount = Number(record.attributes.ApproximateReceiveCount) || 1;
        const last = options.maxReceiveCount !== undefined && receiveCount >= options.maxReceiveCount;
        logFailure(log, record, outcome.reason, last);
        failures.push({ itemIdentifier: record.messageId });
        await options.delayRetry?.(record, last ? 0 : retryDelay(outcome.reason, receiveCount, options)).catch(() => undefined);
      }),
    );
    return { batchItemFailures: failures };
  };
}
