import { Duration } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { ILogGroup } from 'aws-cdk-lib/aws-logs';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { TABLE } from '../functions/core/pipeline-definition.ts';
import { DEFAULT_RECONCILE } from '../functions/core/reconcile.ts';
import { type FunctionLogging, GatewayFunction, handlerEntry } from './gateway-function.ts';
import { checkSchedule, checkSetting, SETTING_DEFAULTS } from './validate.ts';

export interface ReconciliationProps {
  readonly table: ITable;
  /** The queue the worker drains: re-checks share it (and its DLQ) with callbacks. */
  readonly queue: IQueue;
  /** The worker, which asks the providers: it gets the same schedule. */
  readonly worker: NodejsFunction;
  /**
   * Delays before the 1st, 2nd, … re-check, e.g. `1m,5m,30m,2h,12h,1d,2d`; each at least a minute
   * (the sweep runs every minute).
   * @default SETTING_DEFAULTS.reconcileSchedule
   */
  readonly reconcileSchedule?: string;
  /**
   * Longest a subject is reconciled (a provider's own shorter horizon wins).
   * @default SETTING_DEFAULTS.reconcileHorizonHours
   */
  readonly reconcileHorizonHours?: number;
  /**
   * The ids of the providers deployed, when not every provider is: the sweep queues re-checks of
   * their subjects only, and the worker skips a re-check of any other (it holds no secret of a
   * provider not deployed). Given to both as PROVIDERS.
   * @default - every provider of the registry (no PROVIDERS variable)
   */
  readonly providers?: readonly string[];
  readonly logging?: FunctionLogging;
}

/** Minutes between sweeps: the smallest period a schedule rule has. */
const SWEEP_PERIOD = Duration.minutes(1);

/**
 * Reconciliation on engines AWS runs: an EventBridge rule invokes the sweep every minute; the sweep
 * reads the sparse `byRecheck` index for subjects due, leases each, and queues a re-check message on
 * the worker's queue (spread over the minute with SQS delays); the worker asks the provider. No
 * process of ours runs between sweeps. The sweep reads the index and writes only `recheckAt` (a
 * lease, or a re-check set too far ahead moved back to the schedule): it holds no provider secret.
 */
export class Reconciliation extends Construct {
  public readonly sweep: NodejsFunction;
  public readonly sweepLogs: ILogGroup;
  public readonly rule: Rule;

  constructor(scope: Construct, id: string, props: ReconciliationProps) {
    super(scope, id);
    const schedule = checkSchedule('reconcileSchedule', props.reconcileSchedule ?? SETTING_DEFAULTS.reconcileSchedule);
    const horizonHours = checkSetting('reconcileHorizonHours', props.reconcileHorizonHours ?? SETTING_DEFAULTS.reconcileHorizonHours);
    const environment = {
      RECONCILE_SCHEDULE: schedule,
      RECONCILE_SHARDS: String(DEFAULT_RECONCILE.shards),
      RECONCILE_HORIZON_HOURS: String(horizonHours),
      ...(props.providers === undefined ? {} : { PROVIDERS: props.providers.join(',') }),
    };

    const sweep = new GatewayFunction(this, 'Sweep', {
      entry: handlerEntry('sweep'),
      description: 'Callback gateway sweep: queues a re-check for each subject whose re-check is due',
      memorySize: 256,
      // Within the minute, so two sweeps rarely overlap (the leases make an overlap harmless).
      timeout: Duration.seconds(50),
      ...props.logging,
      environment: {
        ...environment,
        TABLE_NAME: props.table.tableName,
        QUEUE_URL: props.queue.queueUrl,
        SWEEP_PERIOD_SECONDS: String(SWEEP_PERIOD.toSeconds()),
      },
    });
    this.sweep = sweep.function;
    this.sweepLogs = sweep.logGroup;
    // A sweep that could not run (throttled, failed) is not replayed later: Lambda's own async
    // retries (2, over up to 6 hours) would run stale sweeps; the next minute's sweep makes it up.
    this.sweep.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.seconds(60) });
    // Least privilege: query the re-check index, and lease a due subject (one conditional UpdateItem).
    sweep.role.addToPrincipalPolicy(
      new PolicyStatement({ actions: ['dynamodb:Query'], resources: [`${props.table.tableArn}/index/${TABLE.recheckIndex.name}`] }),
    );
    sweep.role.addToPrincipalPolicy(new PolicyStatement({ actions: ['dynamodb:UpdateItem'], resources: [props.table.tableArn] }));
    // It sends re-checks to the worker's queue, nothing else (a KMS key of the queue's own: that too).
    sweep.role.addToPrincipalPolicy(new PolicyStatement({ actions: ['sqs:SendMessage'], resources: [props.queue.queueArn] }));
    props.queue.encryptionMasterKey?.grantEncryptDecrypt(this.sweep);

    for (const [name, value] of Object.entries(environment)) props.worker.addEnvironment(name, value);

    this.rule = new Rule(this, 'Every minute', {
      description: 'Runs the callback gateway sweep (re-checks due)',
      schedule: Schedule.rate(SWEEP_PERIOD),
      // A missed sweep is made up by the next one: every due subject stays due until leased.
      targets: [new LambdaFunction(this.sweep, { retryAttempts: 0 })],
    });
  }
}
