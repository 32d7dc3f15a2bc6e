import { Duration, Stack } from 'aws-cdk-lib';
import type { IHttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import { Alarm, ComparisonOperator, type IMetric, MathExpression, Metric, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { keys, QUEUE, STREAM, TABLE } from '../functions/core/pipeline-definition.ts';
import type { AnyProvider } from '../functions/providers/index.ts';
import type { LogMetrics } from './log-metrics.ts';
import { type SavedQueryId, savedQueries, savedQueryName } from './log-queries.ts';
import { checkEmail, checkSetting, checkSilenceHours, checkStaleThresholds, SETTING_DEFAULTS } from './validate.ts';
import { pascal } from './names.ts';

export interface PipelineAlarmsProps {
  readonly queue: IQueue;
  readonly deadLetterQueue: IQueue;
  readonly api: IHttpApi;
  readonly worker: IFunction;
  /** The metrics counted from the functions' log lines. */
  readonly logMetrics: LogMetrics;
  /** The providers from the registry: one 401 and one quarantine alarm each, confirmation alarms for those that confirm. */
  readonly providers: readonly AnyProvider[];
  /**
   * Where alarm e-mails go (SNS asks the address to confirm first).
   * @default - no subscription; subscribe to the topic yourself
   */
  readonly alarmEmail?: string;
  /**
   * Age of the oldest queued message that counts as "the worker is not keeping up". The default
   * sits well above a full default retry cycle (about 2.5 minutes of back-off over 5 receives).
   * @default 900 (15 minutes)
   */
  readonly maxMessageAgeSeconds?: number;
  /**
   * 401 answers to one provider's route in 5 minutes above which its alarm fires. A few are normal
   * (scanners find public URLs); a flood is a forger, or the provider signing with a key we lack.
   * @default 20
   */
  readonly unauthorizedAlarmThreshold?: number;
  /**
   * Callbacks in 5 minutes the provider's status endpoint contradicts at which the alarm fires.
   * @default 1
   */
  readonly mismatchAlarmThreshold?: number;
  /**
   * Callbacks in 5 minutes the provider's status endpoint does not know (after the worker's
   * retries) at which the alarm fires.
   * @default 1
   */
  readonly notFoundAlarmThreshold?: number;
  /**
   * Subjects of one provider gone stale in 5 minutes that raise its Stale alarm.
   * @default SETTING_DEFAULTS.staleAlarmThreshold
   */
  readonly staleAlarmThreshold?: number;
  /**
   * The ingest functions: their throttles are alarmed together.
   * @default - no ingest throttle alarm
   */
  readonly ingestFunctions?: readonly IFunction[];
  /**
   * The table: its (and its index's) throttled requests are alarmed.
   * @default - no table throttle alarm
   */
  readonly table?: ITable;
  /**
   * Requests answered 429 in 5 minutes at which the API throttling alarm fires.
   * @default 1
   */
  readonly apiThrottledAlarmThreshold?: number;
  /**
   * Throttled invocations in 5 minutes (all ingest functions together, or the worker) at which their alarm fires.
   * @default 1
   */
  readonly lambdaThrottleAlarmThreshold?: number;
  /**
   * Throttled table and index read and write events in 5 minutes at which the alarm fires.
   * @default 1
   */
  readonly tableThrottleAlarmThreshold?: number;
  /**
   * Hours without an accepted callback after which a provider's silence alarm fires, per provider
   * id; a provider not named has no silence alarm.
   * @default - none
   */
  readonly silenceAlarmHours?: Readonly<Record<string, number>>;
  /**
   * Per provider id, the stale subjects in 5 minutes that raise its Stale alarm instead of
   * `staleAlarmThreshold`.
   * @default - every provider: staleAlarmThreshold
   */
  readonly staleAlarmThresholds?: Readonly<Record<string, number>>;
  /**
   * The reconciliation sweep, run every minute: alarmed when no sweep succeeded for a while.
   * @default - no sweep alarm
   */
  readonly sweep?: IFunction;
  /**
   * The event outlet (lib/event-outlet.ts): its dead-letter queue, its publisher, the batches the
   * publisher gave back (LogMetrics.publishFailures), and the state changes the worker wrote
   * (LogMetrics.stateChanges), each of which invokes a working publisher.
   * @default - no event alarms
   */
  readonly events?: {
    readonly deadLetterQueue: IQueue;
    readonly publisher: IFunction;
    readonly publishFailures: IMetric;
    readonly stateChanges: IMetric;
  };
}

const PERIOD = Duration.minutes(5);
/** Days before the dead-letter queue's retention deletes a callback that DeadLetterQueueExpiring warns. */
const DLQ_EXPIRY_WARNING_DAYS = 2;
/** Periods in a row with state changes and no publisher invocation that raise EventsNotPublished. */
const EVENTS_NOT_PUBLISHED_PERIODS = 2;
/** The sweep runs every minute: this long without a successful one is an outage, not a blip. */
const SWEEP_ALARM_PERIOD = Duration.minutes(10);

/** The table's global secondary indexes: each is throttled apart from the table. */
const TABLE_INDEXES = [TABLE.outcomeIndex.name, TABLE.recheckIndex.name];

/** The stack outputs an on-call person copies into the operations commands. */
const REDRIVE = 'npm run redrive -- --dlq-url <DeadLetterQueueUrl> --region <region> (try --dry-run first)';
const REPROCESS = (provider: string) => `npm run reprocess -- --table <TableName> --queue-url <QueueUrl> --region <region> --provider ${provider}`;

interface AlarmOptions {
  readonly comparisonOperator?: ComparisonOperator;
  readonly evaluationPeriods?: number;
  /** @default evaluationPeriods (all of them breaching) */
  readonly datapointsToAlarm?: number;
  /** @default NOT_BREACHING: no data means no messages, no requests, no matching log line, so nothing is wrong */
  readonly treatMissingData?: TreatMissingData;
}

/** The sum, per period, of metrics any of which may have no data (a missing one counts as 0). */
function sumOf(label: string, metrics: readonly IMetric[]): MathExpression {
  return new MathExpression({
    expression: 'SUM(FILL(METRICS(), 0))',
    usingMetrics: Object.fromEntries(metrics.map((metric, index) => [`m${index}`, metric])),
    label,
    period: PERIOD,
  });
}

/**
 * The alarms that mean a callback is stuck, refused, set aside or not believed, all sent (alarm and
 * recovery) to one SNS topic. Each description says what happened and what to do about it: it is the
 * body of the e-mail the on-call person reads.
 */
export class PipelineAlarms extends Construct {
  public readonly topic: Topic;
  public readonly alarms: readonly Alarm[];

  constructor(scope: Construct, id: string, props: PipelineAlarmsProps) {
    super(scope, id);
    const maxAge = checkSetting('maxMessageAgeSeconds', props.maxMessageAgeSeconds ?? SETTING_DEFAULTS.maxMessageAgeSeconds);
    const unauthorizedThreshold = checkSetting('unauthorizedAlarmThreshold', props.unauthorizedAlarmThreshold ?? SETTING_DEFAULTS.unauthorizedAlarmThreshold);
    const mismatchThreshold = checkSetting('mismatchAlarmThreshold', props.mismatchAlarmThreshold ?? SETTING_DEFAULTS.mismatchAlarmThreshold);
    const notFoundThreshold = checkSetting('notFoundAlarmThreshold', props.notFoundAlarmThreshold ?? SETTING_DEFAULTS.notFoundAlarmThreshold);
    const throttledThreshold = checkSetting('apiThrottledAlarmThreshold', props.apiThrottledAlarmThreshold ?? SETTING_DEFAULTS.apiThrottledAlarmThreshold);
    const lambdaThrottleThreshold = checkSetting('lambdaThrottleAlarmThreshold', props.lambdaThrottleAlarmThreshold ?? SETTING_DEFAULTS.lambdaThrottleAlarmThreshold);
    const tableThrottleThreshold = checkSetting('tableThrottleAlarmThreshold', props.tableThrottleAlarmThreshold ?? SETTING_DEFAULTS.tableThrottleAlarmThreshold);
    const staleThreshold = checkSetting('staleAlarmThreshold', props.staleAlarmThreshold ?? SETTING_DEFAULTS.staleAlarmThreshold);
    const silenceHours = checkSilenceHours('silenceAlarmHours', props.silenceAlarmHours ?? {}, props.providers.map((provider) => provider.id));
    const staleThresholds = checkStaleThresholds('staleAlarmThresholds', props.staleAlarmThresholds ?? {}, props.providers.map((provider) => provider.id));
    const { logMetrics } = props;

    this.topic = new Topic(this, 'Topic', { displayName: 'Callback gateway alarms', enforceSSL: true });
    // enforceSSL gives the topic a resource policy, which replaces SNS's default one (the one that
    // lets this account's CloudWatch alarms publish), so the alarms are allowed back explicitly.
    this.topic.grantPublish(
      new ServicePrincipal('cloudwatch.amazonaws.com').withConditions({
        StringEquals: { 'aws:SourceAccount': Stack.of(this).account },
      }),
    );
    if (props.alarmEmail !== undefined) {
      this.topic.addSubscription(new EmailSubscription(checkEmail('alarmEmail', props.alarmEmail)));
    }

    // Named after the stack (the e-mail subject shows the name), so a second gateway in the same
    // account gets its own alarms.
    const stackName = Stack.of(this).stackName;
    // The saved Logs Insights queries (lib/log-queries.ts) that answer what each alarm asks.
    const titles = savedQueries(logMetrics.manyReceivesAlarmCount);
    const query = (id: SavedQueryId) => `Logs Insights saved query "${savedQueryName(stackName, titles[id].title)}"`;
    const alarms: Alarm[] = [];
    const alarm = (alarmId: string, metric: IMetric, threshold: number, description: string, options: AlarmOptions = {}) => {
      alarms.push(
        new Alarm(this, alarmId, {
          alarmName: `${stackName}-${alarmId}`,
          metric,
          threshold,
          evaluationPeriods: options.evaluationPeriods ?? 1,
          ...(options.datapointsToAlarm === undefined ? {} : { datapointsToAlarm: options.datapointsToAlarm }),
          comparisonOperator: options.comparisonOperator ?? ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          treatMissingData: options.treatMissingData ?? TreatMissingData.NOT_BREACHING,
          alarmDescription: description,
        }),
      );
    };

    alarm(
      'DeadLetterQueueNotEmpty',
      props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: 'Maximum' }),
      1,
      `Callbacks the worker gave up on are in the dead-letter queue (kept ${QUEUE.dlqRetentionDays} days from when each was first queued, ` +
        `so at least ${QUEUE.dlqRetentionDays - QUEUE.retentionDays} days there; nothing is lost yet). ` +
        `Find the cause in the worker logs (${query('failuresByError')}), fix it, then move them back: ` +
        `${REDRIVE}. The worker stores each callback once, so a redrive never duplicates.`,
    );
    // The alarm above fires once, when the first callback lands; this one before SQS deletes any. A
    // standard queue's retention counts from when the message was first queued, while the DLQ's age
    // counts from when it moved there: a callback that waited the queue's whole retention first is
    // deleted that much sooner, so the warning allows for it.
    // (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/setting-up-dead-letter-queue-retention.html)
    const expiringDays = QUEUE.dlqRetentionDays - QUEUE.retentionDays - DLQ_EXPIRY_WARNING_DAYS;
    alarm(
      'DeadLetterQueueExpiring',
      props.deadLetterQueue.metricApproximateAgeOfOldestMessage({ period: PERIOD, statistic: 'Maximum' }),
      expiringDays * 86_400,
      `A callback has been in the dead-letter queue for ${expiringDays} days: SQS may delete it ${DLQ_EXPIRY_WARNING_DAYS} days from now ` +
        `(${QUEUE.dlqRetentionDays}-day retention, counted from when it was first queued, and it may have waited up to ${QUEUE.retentionDays} days ` +
        `in the queue before), and with it a callback that was answered 200. Fix the cause (${query('failuresByError')}) and ${REDRIVE}, ` +
        'or copy the messages out before then.',
    );
    alarm(
      'OldestMessageTooOld',
      props.queue.metricApproximateAgeOfOldestMessage({ period: PERIOD, statistic: 'Maximum' }),
      maxAge,
      `A queued callback has waited over ${maxAge} s: the worker is failing or falling behind. Check the WorkerErrors, ` +
        `WorkerConfigurationErrors and WorkerThrottles alarms and the worker logs (${query('failuresByError')}: the error ` +
        'names the dependency, table or status endpoint). Messages older than the queue retention are lost, so fix the ' +
        'cause before then. SQS leaves messages received several times out of this age: ReceivedManyTimes watches those.',
    );
    alarm(
      'Api5xx',
      props.api.metricServerError({ period: PERIOD, statistic: 'Sum' }),
      1,
      `The API answered a provider with 5xx. ${query('serverErrors')} gives the ingest's reason: ` +
        'a secret missing or still REPLACE_ME (fill it with put-secret-value), or the queue refusing messages. An ingest ' +
        'function that crashed, timed out, could not start or was throttled (also see IngestThrottles) writes no line: ' +
        `${query('apiServerErrors')} lists every 5xx by route, integrationError naming the cause. Providers retry, but not forever.`,
    );
    alarm(
      'WorkerErrors',
      props.worker.metricErrors({ period: PERIOD, statistic: 'Sum' }),
      1,
      'The worker crashed or timed out on a whole batch (single failed records are retried without counting here). ' +
        `Read the worker logs (${query('failedRecords')}); the batch is redelivered and, past the receive limit, lands in ` +
        'the dead-letter queue.',
    );
    alarm(
      'WorkerConfigurationErrors',
      logMetrics.workerConfigurationErrors,
      1,
      'The worker cannot process callbacks until a person fixes its configuration ("record failed: configuration" in the ' +
        'worker logs), or a status endpoint refuses our credentials at a re-check ("recheck: configuration"). Usually a ' +
        "provider's secret: a 401/403 from its status endpoint means a credential is wrong or missing (e.g. a 403 from " +
        `TemboPlus means its apiToken is wrong). Fix the secret (put-secret-value; functions reload it within the secret cache ` +
        `time); records retry by themselves, and any that reached the dead-letter queue: ${REDRIVE}. A callback still queued ` +
        'for a provider taken out of the providers setting fails too (its secret is no longer granted): add it back to store it.',
    );

    alarm(
      'ReceivedManyTimes',
      logMetrics.receivedManyTimes,
      1,
      `A callback failed again on its ${logMetrics.manyReceivesAlarmCount}th receive or later, past the worker's planned retries. SQS's oldest-message age leaves ` +
        'such messages out, so OldestMessageTooOld does not see them; past the receive limit they go to the dead-letter ' +
        `queue. ${query('receivedManyTimes')} lists them with the error: fix the cause (a provider's status endpoint ` +
        'down, a bad secret, the table throttled); they are retried with back-off meanwhile.',
    );
    alarm(
      'ApiThrottled',
      logMetrics.apiThrottled,
      throttledThreshold,
      'API Gateway answered 429 (throttled) to callbacks. A throttled callback is a lost one for providers that retry ' +
        `only a few times. ${query('throttled')} says which route and source. A provider's real volume: raise ` +
        'throttleRateLimit / throttleBurstLimit in cdk.json and deploy. One source flooding a route: a prober; the limits ' +
        "protect the other routes. The account's own API Gateway quota (per region) also throttles.",
    );
    if (props.ingestFunctions && props.ingestFunctions.length > 0) {
      alarm(
        'IngestThrottles',
        sumOf('ingest throttles', props.ingestFunctions.map((fn) => fn.metricThrottles({ period: PERIOD, statistic: 'Sum' }))),
        lambdaThrottleThreshold,
        "Lambda refused to run an ingest function (throttled): the account's concurrency is used up, so the provider got " +
          'an error and must retry. Check ConcurrentExecutions on the dashboard: the worker takes at most ' +
          'workerMaxConcurrency (cdk.json); other functions in the account may take the rest. Lower workerMaxConcurrency, ' +
          "or raise the account's Lambda concurrency quota (Service Quotas).",
      );
    }
    alarm(
      'WorkerThrottles',
      props.worker.metricThrottles({ period: PERIOD, statistic: 'Sum' }),
      lambdaThrottleThreshold,
      "Lambda refused to run the worker (throttled): the account's concurrency is used up by other functions (the " +
        'event source itself never asks for more than workerMaxConcurrency). Callbacks wait in the queue, safely, until it ' +
        "frees up; watch OldestMessageTooOld. Find what takes the account's concurrency, or raise its quota.",
    );
    if (props.table) {
      const table = props.table.tableName;
      const throttles = (metricName: string, index?: string) =>
        new Metric({
          namespace: 'AWS/DynamoDB',
          metricName,
          dimensionsMap: { TableName: table, ...(index ? { GlobalSecondaryIndexName: index } : {}) },
          statistic: 'Sum',
          period: PERIOD,
        });
      // Throttled events of the table and of its index, each read and write; the index's count apart
      // from the table's (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TroubleshootingThrottling-cloudwatch.html).
      alarm(
        'TableThrottles',
        sumOf(
          'table throttles',
          [undefined, ...TABLE_INDEXES].flatMap((index) => [throttles('ReadThrottleEvents', index), throttles('WriteThrottleEvents', index)]),
        ),
        tableThrottleThreshold,
        `DynamoDB throttled reads or writes of the table or an index (${TABLE_INDEXES.join(', ')}; on demand: a hot partition, or the ` +
          "table's or account's throughput limit). The worker gives those records back and retries them with back-off " +
          `(${query('failuresByError')}: errors naming dynamodb); nothing is lost unless it lasts past the receive limit, ` +
          'then see DeadLetterQueueNotEmpty. Sustained: lower workerMaxConcurrency, or raise the limit.',
      );
    }

    if (props.sweep) {
      // Runs every minute: no successful run in 10 minutes (none invoked, throttled, or every one
      // failing) breaches, missing data included. One failed sweep among many does not.
      const sweepMetric = (metricName: 'Invocations' | 'Errors') => props.sweep!.metric(metricName, { period: SWEEP_ALARM_PERIOD, statistic: 'Sum' });
      alarm(
        'SweepNotRunning',
        new MathExpression({
          label: 'successful sweeps',
          expression: 'FILL(invocations, 0) - FILL(errors, 0)',
          usingMetrics: { invocations: sweepMetric('Invocations'), errors: sweepMetric('Errors') },
          period: SWEEP_ALARM_PERIOD,
        }),
        1,
        `No reconciliation sweep succeeded in ${SWEEP_ALARM_PERIOD.toMinutes()} minutes (it runs every minute). Until it does, no ` +
          're-check is queued (or only some, below): a lost callback is not found, and no subject is marked stale (the Stale alarms stay quiet). ' +
          `Read the sweep's log group (errors name the table, its byRecheck index or the queue), check its rule is enabled and ` +
          "the function is not throttled (the account's concurrency). Due re-checks stay due: the next sweep that runs catches up. " +
          "A line 'sweep: lease not taken' (or 'far-off re-check not moved') names one item the sweep cannot update (the table refused the write; its error says why): " +
          'the others are queued, that one fails every sweep until it is fixed or deleted. ' +
          "'sweep: due re-checks not read' (or 'far-off re-checks not read': one provider's index query failed) and 'sweep: re-checks not queued' (refused by the queue, " +
          'asked once their 5-minute lease ends) name a table or queue fault: the rest was queued.',
        { comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD, treatMissingData: TreatMissingData.BREACHING },
      );
    }

    if (props.events) {
      const { events } = props;
      const hours = STREAM.maxRecordAgeSeconds / 3600;
      alarm(
        'EventsDeadLetterQueueNotEmpty',
        events.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: 'Maximum' }),
        1,
        'Changes of the table were never published as events. The states in the table are right; subscribers missed ' +
          `these changes. A message with DDBStreamBatchInfo: the publisher gave up after ${hours} hours of retries; it names the ` +
          'stream shard and the sequence numbers skipped, not the events. Fix the cause first (PublisherErrors; the ' +
          'publisher logs name the events and the bus error). The stream keeps a change 24 hours after it was written: ' +
          'replay them: npm run redrive -- --events --dlq-url <EventsDeadLetterQueueUrl> --bus <EventBusName> --table <TableName> --region <region>. A message with setAside: one event the bus refused for what it holds (errorCode InvalidArgument, ' +
          'MalformedDetail, RedactionFailure, EntryTooLarge; ValidationException etc.: its call refused whole), not retried, ' +
          'later changes published; it names the event ' +
          '(eventId, provider, subjectId, version or eventKey), never its detail. For it, or past 24 hours, have subscribers re-read those ' +
          'states from the table (GetItem: the version says what they missed).',
      );
      alarm(
        'PublisherErrors',
        sumOf('publisher errors', [
          events.publisher.metricErrors({ period: PERIOD, statistic: 'Sum' }),
          events.publisher.metricThrottles({ period: PERIOD, statistic: 'Sum' }),
          events.publishFailures,
        ]),
        1,
        'The event publisher could not put changes on the bus, crashed, or was throttled (the account\'s Lambda concurrency). Nothing is lost yet: the stream keeps them and ' +
          `Lambda retries, pausing longer as they age, for up to ${hours} hours; later changes of the same shard wait behind ` +
          '(EventsDelayed). The publisher log line "publish failed" names the events and the bus error code: ' +
          'AccessDeniedException or ResourceNotFoundException, the bus or its permission was changed (deploy the stack again); ' +
          "ThrottlingException, the account's PutEvents quota (Service Quotas); InternalFailure or HTTP 5xx, EventBridge itself, " +
          'which clears by itself. A crash (Errors, no such line): read its log and fix the publisher.',
      );
      alarm(
        'EventsDelayed',
        events.publisher.metric('IteratorAge', { period: PERIOD, statistic: 'Maximum' }),
        STREAM.iteratorAgeAlarmSeconds * 1000,
        `The oldest change not yet published as an event is over ${STREAM.iteratorAgeAlarmSeconds} s old (the publisher's ` +
          'IteratorAge): subscribers get events late, and a one-time code can expire before it is sent. Usually the ' +
          'publisher failing (see PublisherErrors) or throttled (the account\'s Lambda concurrency). Nothing is lost before ' +
          `${hours} hours; then the changes go to the events dead-letter queue (EventsDeadLetterQueueNotEmpty).`,
      );
      // The alarms above all need the publisher to run: with its stream trigger disabled (by hand,
      // or by Lambda when it can no longer read the stream) it is never invoked, IteratorAge has no
      // data and nothing errs, while the stream drops the changes after 24 hours. Every state change
      // the worker logs is a record the trigger's filter lets through (lib/event-outlet.ts), and a
      // working publisher is invoked within seconds of it: a change late in one period is published
      // early in the next, which then has invocations and does not breach. Two periods in a row
      // with changes and no invocation at all cannot be that. Periods without a change never breach,
      // so at low traffic it takes changes in two consecutive periods to fire.
      alarm(
        'EventsNotPublished',
        new MathExpression({
          label: 'state changes with no publisher invocation',
          expression: 'IF(FILL(changes, 0) > 0 AND FILL(invocations, 0) == 0, 1, 0)',
          usingMetrics: {
            changes: events.stateChanges,
            invocations: events.publisher.metricInvocations({ period: PERIOD, statistic: 'Sum' }),
          },
          period: PERIOD,
        }),
        1,
        `Subjects' states changed in each of the last ${EVENTS_NOT_PUBLISHED_PERIODS} periods of ${PERIOD.toMinutes()} minutes and the event ` +
          'publisher was not invoked once: no event went out. Usually its stream trigger (event source mapping) is disabled, ' +
          'by hand or by Lambda when it can no longer read the stream, which EventsDelayed and PublisherErrors cannot see (a ' +
          'throttled publisher fires PublisherErrors too). Check the trigger: aws lambda list-event-source-mappings ' +
          `--function-name ${events.publisher.functionName} (State, StateTransitionReason, LastProcessingResult); enable it ` +
          "(aws lambda update-event-source-mapping --uuid <UUID> --enabled), and check that the publisher's role still allows " +
          "dynamodb:DescribeStream, GetRecords, GetShardIterator and ListStreams on the table's stream. The stream keeps each " +
          'change 24 hours; for what they missed, subscribers re-read the states from the table (GetItem: the version says what changed).',
        { evaluationPeriods: EVENTS_NOT_PUBLISHED_PERIODS, datapointsToAlarm: EVENTS_NOT_PUBLISHED_PERIODS },
      );
    }

    for (const provider of props.providers) {
      const name = pascal(provider.id);
      const hours = silenceHours[provider.id];
      if (hours !== undefined) {
        // One-hour periods, alarmed when all of the last `hours` had no accepted callback: missing
        // data is that silence, so it breaches (the alarm only exists when the setting names the provider).
        alarm(
          `${name}Silent`,
          logMetrics.accepted(provider.id, Duration.hours(1)),
          1,
          `No ${provider.displayName} callback was accepted for ${hours} hours (silenceAlarmHours in cdk.json). Check that ` +
            `${provider.displayName} still sends to the URL in the stack outputs (its console; a changed token or URL), ` +
            `that callbacks are not refused (${query('refusals')}), and when the last one came (${query('lastAccepted')}).`,
          { comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD, evaluationPeriods: hours, treatMissingData: TreatMissingData.BREACHING },
        );
      }
      alarm(
        `${name}Unauthorized`,
        logMetrics.unauthorized(provider.id),
        unauthorizedThreshold,
        `More than ${unauthorizedThreshold} requests to the ${provider.displayName} route were answered 401 in 5 minutes ` +
          `(${query('unauthorized')} gives the reasons). Either someone is forging callbacks (route throttling limits them; ` +
          `see ip in the API access logs), or ${provider.displayName} signs with values the secret does not hold: after ` +
          'a rotation, put the old values back under "previous" in the secret until the provider uses the new ones.',
        { comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD },
      );
      alarm(
        `${name}Quarantined`,
        logMetrics.quarantined(provider.id),
        1,
        `An authentic ${provider.displayName} callback did not match our schema and was quarantined (answered 200, kept ` +
          `in the table under "${keys.quarantinePartition(provider.id)}" with the reason; ${query('quarantined')}). ` +
          `${provider.displayName} changed its payload or our schema is too strict: fix functions/providers/${provider.id}.ts, ` +
          `deploy, then ${REPROCESS(provider.id)}.`,
      );
      alarm(
        `${name}Stale`,
        logMetrics.stale(provider.id),
        staleThresholds[provider.id] ?? staleThreshold,
        `A ${provider.displayName} subject is stale: still not final${provider.lookup ? ' or not confirmed' : ''} when its re-checks ran out ` +
          `(the reconcile schedule, or ${provider.displayName}'s own horizon)${provider.lookup ? '' : `, or expected and no callback ever came (${provider.displayName} has no status endpoint)`}. ` +
          `List them with npm run inspect -- --stale --provider ${provider.id} --table <TableName> --region <region> (${query('stale')}), and check each ` +
          `with ${provider.displayName}: its callbacks may have been lost, or its status endpoint may not know the reference${provider.lookup ? ` (${query('recheckFaults')})` : ''}.`,
      );
      if (!provider.lookup) continue;
      const signed = provider.callbackTrust === 'signed';
      alarm(
        `${name}ConfirmationMismatch`,
        logMetrics.confirmations(provider.id, 'mismatch'),
        mismatchThreshold,
        `${provider.displayName}'s status endpoint contradicts what a callback claimed (on arrival or at a re-check). ` +
          (signed
            ? `The callback is signed, so it was believed; a final status the answer contradicts is replaced by ${provider.displayName}'s own. `
            : `The state keeps ${provider.displayName}'s own status, never the callback's. `) +
          `Find the event (${query('confirmations')}, or confirmation "mismatch" in the table) and check it with ${provider.displayName}` +
          (signed ? '.' : '; repeated mismatches can mean forged callbacks with a leaked token: rotate it.'),
      );
      alarm(
        `${name}ConfirmationNotFound`,
        logMetrics.confirmations(provider.id, 'not_found'),
        notFoundThreshold,
        `${provider.displayName}'s status endpoint does not know a subject a callback reported, even after ` +
          `${QUEUE.settleAttempts} attempts (${query('confirmations')}). ` +
          (signed ? 'The signed callback is stored and believed, flagged not_found. ' : 'The callback is stored but not believed. ') +
          `Check the reference with ${provider.displayName} and that the secret's baseUrl points at the right environment ` +
          '(sandbox or production); re-checks keep asking' +
          (signed ? '.' : ', and if the subject is not theirs the callback was forged: rotate the token.'),
      );
    }

    this.alarms = alarms;
    const action = new SnsAction(this.topic);
    for (const each of this.alarms) {
      each.addAlarmAction(action);
      each.addOkAction(action);
    }
  }
}

/** `temboplus` → `Temboplus`. */
