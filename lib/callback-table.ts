import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, ProjectionType, StreamViewType, Table } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { STREAM, TABLE } from '../functions/core/pipeline-definition.ts';

export interface CallbackTableProps {
  /**
   * What happens to the table when it leaves the stack. It holds every transaction's status, which
   * users read directly, so by default it outlives the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The one table of state and event items, laid out by `TABLE` in
 * functions/core/pipeline-definition.ts (the local runtime creates the same layout from there),
 * with its change stream (old and new images).
 */
export class CallbackTable extends Construct {
  public readonly table: Table;

  constructor(scope: Construct, id: string, props: CallbackTableProps = {}) {
    super(scope, id);
    const { partitionKey, sortKey, ttlAttribute, outcomeIndex, recheckIndex } = TABLE;

    this.table = new Table(this, 'Table', {
      partitionKey: { name: partitionKey, type: AttributeType.STRING },
      sortKey: { name: sortKey, type: AttributeType.STRING },
      // Callback traffic is bursty and mostly idle: pay per request, no capacity to tune.
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: ttlAttribute,
      // The change stream the publisher turns into events (lib/event-outlet.ts): driven by the table
      // itself, so a crash between a write and its publish cannot drop an event. Turning it on for a
      // deployed table is an in-place update.
      stream: StreamViewType[STREAM.viewType],
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      // Retain only covers CloudFormation: a console or CLI delete (a teardown step copied too
      // early) would still take the system of record. Turned off by hand before a deliberate delete.
      deletionProtection: (props.removalPolicy ?? RemovalPolicy.RETAIN) !== RemovalPolicy.DESTROY,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: outcomeIndex.name,
      partitionKey: { name: outcomeIndex.partitionKey, type: AttributeType.STRING },
      sortKey: { name: outcomeIndex.sortKey, type: AttributeType.STRING },
      // Only what people list by: an item write that changes none of these leaves the index alone.
      projectionType: ProjectionType.INCLUDE,
      nonKeyAttributes: [...outcomeIndex.projected],
    });
    // Sparse: only subjects still being reconciled (or stale) are in it; the sweep reads it.
    this.table.addGlobalSecondaryIndex({
      indexName: recheckIndex.name,
      partitionKey: { name: recheckIndex.partitionKey, type: AttributeType.STRING },
      sortKey: { name: recheckIndex.sortKey, type: AttributeType.STRING },
      projectionType: ProjectionType.INCLUDE,
      nonKeyAttributes: [...recheckIndex.projected],
    });
  }
}
