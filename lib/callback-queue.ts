import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { ILogGroup } from 'aws-cdk-lib/aws-logs';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { QUEUE, RETENTION } from '../functions/core/pipeline-definition.ts';
import { DEFAULT_SECRET_CACHE_SECONDS, type FunctionLogging, GatewayFunction, handlerEntry } from './gateway-function.ts';
import { checkSetting, SETTING_DEFAULTS } from './validate.ts';

export interface CallbackQueueProps {
  /** Where the worker stores events and state (read/write is granted here). */
  readonly table: ITable;
  /**
   * Receives of one message before it moves to the dead-letter queue.
   * @default QUEUE.maxReceiveCount (5)
   */
  readonly maxReceiveCount?: number;
  /**
   * Days an event item is kept (DynamoDB TTL).
   * @default RETENTION.eventDays (90)
   */
  readonly eventRetentionDays?: number;
  /**
   * Hours an event item carrying live codes or links (instructions: one-time codes, links) is kept.
   * @default RETENTION.sensitiveHours (24)
   */
  readonly sensitiveRetentionHours?: number;
  /**
   * Seconds the worker keeps using a provider secret it read (TemboPlus's apiToken).
   * @default 300
   */
  readonly secretCacheSeconds?: number;
  /**
   * Worker functions the SQS event source runs at once (2–1000).
   * @default 5 (SETTING_DEFAULTS.workerMaxConcurrency)
   */
  readonly workerMaxConcurrency?: number;
  /**
   * The SMS relay's sender (the `smsRelay` setting): with it, the worker joins that provider's delivery
   * reports to relayed instructions whose send got no answer (`SMS_RELAY` in its environment).
   * @default 'off': nothing is joined, and no report costs a read for it
   */
  readonly smsRelay?: string;
  /**
   * What Lambda keeps of the worker's log lines.
   * @default INFO application lines, WARN system lines
   */
  readonly logging?: FunctionLogging;
}

/**
 * Largest message either queue accepts: SQS's maximum, 1 MiB. The ingest sends a body of up to
 * 256 KiB plus its parsed copy (and JSON escaping can grow both); it keeps every message under
 * 900 KiB (functions/core/ingest.ts), which the old 256 KiB SQS default would refuse. The DLQ takes
 * the same size, or a redrive could not move a message back.
 */
export const MAX_MESSAGE_SIZE_BYTES = 1024 * 1024;

/**
 * The durable middle of the pipeline: the queue the ingest functions write to, its dead-letter
 * queue, and the worker that drains it into the table with partial batch failures.
 */
export class CallbackQueue extends Construct {
  public readonly queue: Queue;
  public readonly deadLetterQueue: Queue;
  public readonly worker: NodejsFunction;
  /** The worker's log group (the metric filters read it). */
  public readonly workerLogs: ILogGroup;

  constructor(scope: Construct, id: string, props: CallbackQueueProps) {
    super(scope, id);
    const maxReceiveCount = checkSetting('maxReceiveCount', props.maxReceiveCount ?? QUEUE.maxReceiveCount);
    const eventRetentionDays = checkSetting('eventRetentionDays', props.eventRetentionDays ?? RETENTION.eventDays);
    const sensitiveRetentionHours = checkSetting('sensitiveRetentionHours', props.sensitiveRetentionHours ?? RETENTION.sensitiveHours);
    const secretCacheSeconds = checkSetting('secretCacheSeconds', props.secretCacheSeconds ?? DEFAULT_SECRET_CACHE_SECONDS);
    const maxConcurrency = checkSetting('workerMaxConcurrency', props.workerMaxConcurrency ?? SETTING_DEFAULTS.workerMaxConcurrency);

    // Both queues outlive the stack, like the table: `cdk destroy` must never drop callbacks that
    // were answered 200 and not stored yet (README, "Tear down", says how to drain them).
    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      removalPolicy: RemovalPolicy.RETAIN,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(QUEUE.dlqRetentionDays),
      maxMessageSizeBytes: MAX_MESSAGE_SIZE_BYTES,
    });
    this.queue = new Queue(this, 'Queue', {
      removalPolicy: RemovalPolicy.RETAIN,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(QUEUE.retentionDays),
      visibilityTimeout: Duration.seconds(QUEUE.visibilityTimeoutSeconds),
      maxMessageSizeBytes: MAX_MESSAGE_SIZE_BYTES,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount },
    });

    const worker = new GatewayFunction(this, 'Worker', {
      entry: handlerEntry('worker'),
      description: 'Callback gateway worker: stores queued callbacks once, moves state forward, confirms with providers that offer it',
      // Up to a batch of records run concurrently, mostly waiting (DynamoDB, status endpoints):
      // QUEUE.workerMemoryMb says why 256 MB.
      memorySize: QUEUE.workerMemoryMb,
      timeout: Duration.seconds(QUEUE.workerTimeoutSeconds),
      ...props.logging,
      environment: {
        TABLE_NAME: props.table.tableName,
        // For ChangeMessageVisibility: the worker backs off a failed record itself.
        QUEUE_URL: this.queue.queueUrl,
        // The redrive policy's receive limit: a record failing on its last receive is given back at
        // once (no back-off: SQS moves it to the DLQ on the next receive) and logged as going there.
        MAX_RECEIVE_COUNT: String(maxReceiveCount),
        EVENT_RETENTION_DAYS: String(eventRetentionDays),
        SENSITIVE_RETENTION_HOURS: String(sensitiveRetentionHours),
        SECRET_CACHE_SECONDS: String(secretCacheSeconds),
        ...(props.smsRelay === undefined || props.smsRelay === 'off' ? {} : { SMS_RELAY: props.smsRelay }),
      },
    });
    this.worker = worker.function;
    this.workerLogs = worker.logGroup;
    // Least privilege: the worker reads a state or an event item, puts them (conditionally),
    // records a verdict, and queries a subject's event items for the one a redelivered Identomat
    // report was first stored under; with the SMS relay on, it also updates the relay's meeting and
    // relay items, adds a message the relay's count did not hold to the number's hourly count, and
    // puts a link item (functions/core/relay.ts), with the same three actions. It
    // never scans, deletes, reads an index or the stream. It
    // parses untrusted payloads and calls providers' endpoints, so it is the last function to grant
    // the whole table.
    worker.role.addToPrincipalPolicy(
      new PolicyStatement({ actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'], resources: [props.table.tableArn] }),
    );

    this.worker.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: QUEUE.batchSize,
        maxBatchingWindow: Duration.seconds(QUEUE.maxBatchingWindowSeconds),
        // Only the failed records return to the queue; the rest of the batch is done.
        reportBatchItemFailures: true,
        // A burst of callbacks must not take the account's concurrency from the ingest functions
        // (which answer the providers) nor flood a provider's status endpoint: at most this many
        // workers of a batch each. Past it, messages wait in the queue instead of being invoked
        // and throttled. 2–1000:
        // https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html ("Configuring maximum concurrency").
        maxConcurrency,
      }),
    );
  }
}
