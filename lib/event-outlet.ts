import { type CfnElement, Duration, RemovalPolicy } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { EventBus } from 'aws-cdk-lib/aws-events';
import { FilterCriteria, StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { ILogGroup } from 'aws-cdk-lib/aws-logs';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { STREAM } from '../functions/core/pipeline-definition.ts';
import type { AnyProvider } from '../functions/providers/provider.ts';
import { type FunctionLogging, GatewayFunction, handlerEntry } from './gateway-function.ts';

export interface EventOutletProps {
  /** The table whose change stream is published; it must have one (lib/callback-table.ts). */
  readonly table: ITable;
  /** The bus's name: the stack's name, so two stages in one account get two buses. */
  readonly eventBusName: string;
  /** The registry: providers that can ask for an instruction have their event items published. */
  readonly providers: readonly AnyProvider[];
  readonly logging?: FunctionLogging;
}

/**
 * Lambda event filtering on the stream (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html#filtering-ddb):
 * the publisher is invoked only for records that can make an event (functions/core/publish.ts),
 * so the other writes (a counter, a chunk, a quarantined callback, a TTL expiry) cost no invocation.
 * Patterns in a list are ORed:
 * - a state item (sk `STATE` or `STATE#<part>`) written or changed;
 * - an event item (sk `EVENT#…`) first written, of a provider that gives instructions (one-time codes, links).
 * A pattern that let fewer records through would silently drop events: the infrastructure tests
 * check that every change the core publishes passes them.
 */
export function streamFilterPatterns(providers: readonly AnyProvider[]): Record<string, unknown>[] {
  const instructing = providers.filter((provider) => provider.instruction).map((provider) => provider.id);
  return [
    { eventName: ['INSERT', 'MODIFY'], dynamodb: { Keys: { sk: { S: [{ prefix: 'STATE' }] } } } },
    ...(instructing.length === 0 ? [] : [{ eventName: ['INSERT'], dynamodb: { Keys: { sk: { S: [{ prefix: 'EVENT#' }] } }, NewImage: { provider: { S: instructing } } } }]),
  ];
}

/**
 * Events out: the table's change stream → the publisher → a custom EventBridge bus. The stream
 * keeps each change until the publisher has put its event on the bus (it checkpoints only past
 * records it published), so a crash between a write and its publish drops nothing. A batch is one
 * shard's records in order; a failed publish gives back its record and every later one, retried
 * (with the publisher's own pause) until published or older than STREAM.maxRecordAgeSeconds, when
 * the dead-letter queue gets what names them. An event the bus refuses for what it holds (sent
 * again, it is refused again) is not retried: the publisher puts what names it in the same queue
 * and goes on. Consumers add their own rules on the bus.
 */
export class EventOutlet extends Construct {
  public readonly bus: EventBus;
  public readonly publisher: NodejsFunction;
  public readonly publisherLogs: ILogGroup;
  /**
   * Where the stream event source puts what names a batch it gave up on (shard, sequence numbers),
   * and the publisher what names an event the bus refused for what it holds (SetAsideEvent).
   */
  public readonly deadLetterQueue: Queue;
  private readonly publisherHost: GatewayFunction;

  constructor(scope: Construct, id: string, props: EventOutletProps) {
    super(scope, id);
    if (!props.table.tableStreamArn) throw new Error('EventOutlet: the table has no stream (lib/callback-table.ts turns it on)');

    this.bus = new EventBus(this, 'Bus', {
      eventBusName: props.eventBusName,
      description: 'Callback gateway events: Callback Status Changed, Callback Instruction (schemas/ in the repository)',
    });

    // Retained like the pipeline's queues: it names changes whose events are not on the bus.
    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      removalPolicy: RemovalPolicy.RETAIN,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(STREAM.dlqRetentionDays),
    });

    const publisher = new GatewayFunction(this, 'Publisher', {
      entry: handlerEntry('publisher'),
      description: "Callback gateway publisher: the table's changes as events on the gateway's event bus",
      memorySize: 256,
      timeout: Duration.seconds(STREAM.publisherTimeoutSeconds),
      ...props.logging,
      // EVENTS_DLQ_URL: where an event the bus refuses for what it holds is set aside (named, never
      // its detail), so it does not hold its shard (functions/core/publisher.ts).
      environment: { EVENT_BUS_NAME: this.bus.eventBusName, EVENTS_DLQ_URL: this.deadLetterQueue.queueUrl },
    });
    this.publisherHost = publisher;
    this.publisher = publisher.function;
    this.publisherLogs = publisher.logGroup;
    // events:PutEvents on this bus only. Reading the stream is granted by the event source
    // (DescribeStream, GetRecords, GetShardIterator on the stream; ListStreams, which has no resource).
    this.bus.grantPutEventsTo(this.publisher);
    // sqs:SendMessage on the DLQ alone, for the events it sets aside (the on-failure destination
    // below grants it too, with GetQueueAttributes and GetQueueUrl, which the publisher never calls).
    this.deadLetterQueue.grant(this.publisher, 'sqs:SendMessage');

    this.publisher.addEventSource(
      new DynamoEventSource(props.table, {
        // From the oldest record the stream holds: a publisher created (or re-created) after writes
        // have happened still publishes them.
        startingPosition: StartingPosition.TRIM_HORIZON,
        batchSize: STREAM.batchSize,
        maxBatchingWindow: Duration.seconds(STREAM.maxBatchingWindowSeconds),
        // The handler names the first record it could not publish; Lambda retries from there.
        reportBatchItemFailures: true,
        // A crash (not a reported failure) splits the batch, so one bad record is found without
        // holding up the records before it.
        bisectBatchOnError: true,
        retryAttempts: STREAM.retryAttempts,
        maxRecordAge: Duration.seconds(STREAM.maxRecordAgeSeconds),
        onFailure: new SqsDlq(this.deadLetterQueue),
        filters: streamFilterPatterns(props.providers).map((pattern) => FilterCriteria.filter(pattern)),
      }),
    );
  }

  /**
   * Update the publisher's code only after `reader` (a consumer of its events, the SMS relay's
   * function): a reader upgraded first reads the events of both versions, while an old reader
   * given a new version's events may skip them (an instruction's eventId changed form).
   */
  public updateAfter(reader: CfnElement): void {
    this.publisherHost.dependOn(reader);
  }
}
