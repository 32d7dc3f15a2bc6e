import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';

/**
 * Plays the Lambda SQS event source: long-polls the queue, hands its function (the worker, the SMS
 * relay) real SQS event batches, deletes the records it did not report in `batchItemFailures`, and
 * leaves the failed ones for SQS to redeliver (and, past the receive limit, move to the DLQ). A
 * handler that throws fails the whole batch, as in Lambda.
 */
export interface PollerOptions {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly queueArn: string;
  /** The function's handler, with partial batch failures. */
  readonly handler: (event: SQSEvent) => Promise<SQSBatchResponse>;
  /** Concurrent receive loops (Lambda scales pollers the same way). */
  readonly concurrency?: number;
  readonly batchSize?: number;
  readonly onError?: (error: unknown) => void;
}

export interface Poller {
  /** Stop receiving; resolves once in-flight batches are done. */
  stop(): Promise<void>;
}

function toRecord(message: Message, queueArn: string, region: string): SQSRecord {
  const attributes = message.Attributes ?? {};
  return {
    messageId: message.MessageId!,
    receiptHandle: message.ReceiptHandle!,
    body: message.Body ?? '',
    attributes: {
      ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? '1',
      SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
      SenderId: attributes.SenderId ?? 'local',
      ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: message.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

export function startPoller(options: PollerOptions): Poller {
  const { sqs, queueUrl, queueArn, handler } = options;
  const region = queueArn.split(':')[3] ?? 'us-east-1';
  let running = true;
  const abort = new AbortController();

  async function loop() {
    while (running) {
      let messages: Message[];
      try {
        const result = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: options.batchSize ?? 10,
            WaitTimeSeconds: 1,
            MessageSystemAttributeNames: ['All'],
          }),
          { abortSignal: abort.signal },
        );
        messages = result.Messages ?? [];
      } catch (error) {
        if (!running) return;
        options.onError?.(error);
        await new Promise((resolve) => setTimeout(resolve, 500));
        continue;
      }
      if (messages.length === 0) continue;
      const event: SQSEvent = { Records: messages.map((message) => toRecord(message, queueArn, region)) };
      let failed: Set<string>;
      try {
        const response = await handler(event);
        failed = new Set(response.batchItemFailures.map((failure) => failure.itemIdentifier));
      } catch (error) {
        options.onError?.(error);
        continue; // whole batch becomes visible again after the visibility timeout
      }
      const done = event.Records.filter((record) => !failed.has(record.messageId));
      if (done.length === 0) continue;
      try {
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: done.map((record, index) => ({ Id: String(index), ReceiptHandle: record.receiptHandle })),
          }),
        );
      } catch (error) {
        // Not deleted means redelivered: the worker is idempotent, so this costs a repeat, not a loss.
        options.onError?.(error);
      }
    }
  }

  const loops = Array.from({ length: options.concurrency ?? 2 }, () => loop());
  return {
    async stop() {
      running = false;
      await Promise.race([Promise.allSettled(loops), new Promise((resolve) => setTimeout(resolve, 1500))]);
      abort.abort();
      await Promise.allSettled(loops);
    },
  };
}
