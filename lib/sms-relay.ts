import { Annotations, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, type IMetric, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { type IEventBus, Rule } from 'aws-cdk-lib/aws-events';
import { SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { FilterPattern, type ILogGroup, MetricFilter } from 'aws-cdk-lib/aws-logs';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { keys, RETENTION } from '../functions/core/pipeline-definition.ts';
import { DETAIL_TYPES, EVENT_SOURCE } from '../functions/core/publish.ts';
import { parseCountryCodes, RELAY, sharedCodeWarnings, SKIPPED } from '../functions/core/relay.ts';
import { secretEnvName } from '../functions/core/secrets.ts';
import { type AnyProvider, providers } from '../functions/providers/index.ts';
import { DEFAULT_SECRET_CACHE_SECONDS, type FunctionLogging, GatewayFunction, handlerEntry } from './gateway-function.ts';
import { DEFAULT_METRIC_NAMESPACE } from './log-metrics.ts';
import { checkCountryCodes, checkSetting, SETTING_DEFAULTS } from './validate.ts';

export interface SmsRelayProps {
  /** The bus the gateway publishes its events to: the relay's rule listens there. */
  readonly eventBus: IEventBus;
  /** The gateway's table: the relay reads the stored instructions (GetItem) and writes its relay and link items there (PutItem, UpdateItem). */
  readonly table: ITable;
  /** The provider that sends (one with `sendMessage`). */
  readonly sender: AnyProvider;
  /** The sender's secret (its credentials send the SMS): read access is granted, nothing else. */
  readonly senderSecret: ISecret;
  /**
   * The providers deployed: the relay reads and writes the partitions of those among them that send instructions.
   * @default - every provider of the registry
   */
  readonly providers?: readonly AnyProvider[];
  /**
   * Seconds after receipt past which a one-time code is not sent.
   * @default RELAY.codeMaxAgeSeconds (300)
   */
  readonly relayMaxAgeSeconds?: number;
  /**
   * The countries it sends to: `any`, or country calling codes separated by commas (`995,255`).
   * @default 'any'
   */
  readonly relayAllowedCountryCodes?: string;
  /**
   * SMS to one number in one clock hour (UTC) past which an instruction is refused and not sent; 0: no cap.
   * @default RELAY.maxPerNumberPerHour (5)
   */
  readonly relayMaxPerNumberPerHour?: number;
  /**
   * SMS sent in an hour at which the RelaySentVolume alarm fires; 0: no such alarm.
   * @default 0
   */
  readonly relaySentAlarmPerHour?: number;
  /**
   * Days the relay's items are kept (DynamoDB TTL), like event items.
   * @default RETENTION.eventDays (90)
   */
  readonly eventRetentionDays?: number;
  /**
   * Seconds the relay keeps using the sender's secret.
   * @default 300
   */
  readonly secretCacheSeconds?: number;
  /** Where the relay's alarms go (the gateway's alarm topic). @default - no alarm actions */
  readonly alarmTopic?: ITopic;
  /** Namespace of the relay's log metrics (the stack's name). @default DEFAULT_METRIC_NAMESPACE */
  readonly namespace?: string;
  readonly logging?: FunctionLogging;
}

const PERIOD = Duration.minutes(5);
/**
 * Longest relayAllowedCountryCodes text written whole into the RelayNotSent alarm's description,
 * which CloudWatch limits to 1024 characters
 * (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html).
 */
const MAX_COUNTRIES_IN_DESCRIPTION = 100;
/** Days the relay's DLQ keeps an instruction it gave up on. */
export const RELAY_DLQ_RETENTION_DAYS = RELAY.dlqRetentionDays;
const relayLine = (outcome: string) => FilterPattern.all(FilterPattern.stringValue('$.message', '=', 'relay'), FilterPattern.stringValue('$.outcome', '=', outcome));

/**
 * The relay's log lines that become metrics (functions/core/relay.ts writes one "relay" line per
 * delivery, with its outcome; functions/handlers/relay.ts the failure lines).
 */
export const RELAY_LOG_PATTERNS = {
  /** A request left and no answer came: the message may have gone out, and is never sent again. */
  uncertain: relayLine('uncertain'),
  /**
   * Not sent, for good: too old (expired), refused by the provider, an event the relay cannot read
   * (or a message that is no Callback Instruction at all), or one that names no instruction the
   * gateway stored (someone else put it on the bus).
   */
  notSent: FilterPattern.any(
    relayLine('expired'),
    relayLine('refused'),
    FilterPattern.all(
      relayLine('skipped'),
      FilterPattern.any(...Object.values(SKIPPED).map((reason) => FilterPattern.stringValue('$.reason', '=', reason))),
    ),
  ),
  /** A delivery that cannot go on until a person fixes the sender's secret (a refused key). */
  configurationError: FilterPattern.all(FilterPattern.stringValue('$.level', '=', 'ERROR'), FilterPattern.stringValue('$.message', '=', 'record failed: configuration')),
  /** Sent. */
  sent: relayLine('sent'),
} as const;

/**
 * SMS instructions (a provider's one-time code to text) delivered through the gateway's own SMS provider (the `smsRelay`
 * setting): an EventBridge rule on the gateway's bus takes each "Callback Instruction" whose channel
 * is `sms` to the relay queue (SSE, TLS only, DLQ after RELAY.maxReceiveCount receives; the rule
 * sends what it cannot deliver to the same DLQ), and the relay function sends each once
 * (functions/handlers/relay.ts). Least privilege: the function reads the sender's secret, reads
 * items in the instruction providers' partitions only (GetItem: the stored instruction it sends,
 * its own relay items) and writes the table with PutItem and UpdateItem; no one but the rule may
 * send to its queue. Alarms: the DLQ not empty, a message that may have been sent without an answer
 * (uncertain), an instruction not sent (expired, refused), the function failing or refused its
 * credentials.
 */
export class SmsRelay extends Construct {
  public readonly queue: Queue;
  public readonly deadLetterQueue: Queue;
  public readonly function: NodejsFunction;
  public readonly logGroup: ILogGroup;
  public readonly rule: Rule;
  public readonly alarms: readonly Alarm[];
  /** What the dashboard shows of the relay: SMS sent, not sent, uncertain (counted from its lines). */
  public readonly metrics: { readonly sent: IMetric; readonly notSent: IMetric; readonly uncertain: IMetric };

  constructor(scope: Construct, id: string, props: SmsRelayProps) {
    super(scope, id);
    if (!props.sender.sendMessage) throw new Error(`smsRelay names "${props.sender.id}", which cannot send messages`);
    const maxAge = checkSetting('relayMaxAgeSeconds', props.relayMaxAgeSeconds ?? SETTING_DEFAULTS.relayMaxAgeSeconds);
    const countries = checkCountryCodes('relayAllowedCountryCodes', props.relayAllowedCountryCodes ?? SETTING_DEFAULTS.relayAllowedCountryCodes);
    const allowedCodes = parseCountryCodes(countries);
    for (const warning of sharedCodeWarnings(allowedCodes)) Annotations.of(this).addWarningV2('callback-gateway:relay-shared-country-code', `relayAllowedCountryCodes: ${warning}`);
    // Wider than a whole +1, which already warns: every number an instruction names is sent to.
    if (allowedCodes === undefined) {
      Annotations.of(this).addWarningV2(
        'callback-gateway:relay-any-country',
        'relayAllowedCountryCodes: any, so the relay sends an SMS to whatever number an instruction names, in every country, ' +
          'the destinations SMS pumping favours included. List the countries you serve (e.g. 995,255, or +1 area codes such as 1201,1212).',
      );
    }
    const perNumber = checkSetting('relayMaxPerNumberPerHour', props.relayMaxPerNumberPerHour ?? SETTING_DEFAULTS.relayMaxPerNumberPerHour);
    const sentAlarm = checkSetting('relaySentAlarmPerHour', props.relaySentAlarmPerHour ?? SETTING_DEFAULTS.relaySentAlarmPerHour);
    const retentionDays = checkSetting('eventRetentionDays', props.eventRetentionDays ?? RETENTION.eventDays);
    const secretCacheSeconds = checkSetting('secretCacheSeconds', props.secretCacheSeconds ?? DEFAULT_SECRET_CACHE_SECONDS);
    const namespace = props.namespace ?? DEFAULT_METRIC_NAMESPACE;

    // Both queues hold instructions (live codes, phone numbers) that are worthless within a day: they
    // go with the stack rather than linger (the callback queues are kept: they hold callbacks answered
    // 200 and not yet stored), and the DLQ keeps them 4 days, time to find the cause over a long
    // weekend; a redrive then records an old code expired rather than sending it.
    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      removalPolicy: RemovalPolicy.DESTROY,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(RELAY_DLQ_RETENTION_DAYS),
    });
    this.queue = new Queue(this, 'Queue', {
      removalPolicy: RemovalPolicy.DESTROY,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // A code is useless after relayMaxAgeSeconds and a link after a day: nothing is worth keeping longer.
      retentionPeriod: Duration.days(RELAY.retentionDays),
      visibilityTimeout: Duration.seconds(RELAY.visibilityTimeoutSeconds),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: RELAY.maxReceiveCount },
    });

    const relay = new GatewayFunction(this, 'Relay', {
      entry: handlerEntry('relay'),
      description: `Callback gateway SMS relay: sends SMS instructions once through ${props.sender.displayName}`,
      memorySize: 256,
      timeout: Duration.seconds(RELAY.timeoutSeconds),
      ...props.logging,
      environment: {
        TABLE_NAME: props.table.tableName,
        QUEUE_URL: this.queue.queueUrl,
        SMS_RELAY: props.sender.id,
        [secretEnvName(props.sender)]: props.senderSecret.secretArn,
        RELAY_MAX_AGE_SECONDS: String(maxAge),
        RELAY_ALLOWED_COUNTRY_CODES: countries,
        RELAY_MAX_PER_NUMBER_PER_HOUR: String(perNumber),
        // No send outlives the function: a `sending` item older than its timeout was left by a crash.
        RELAY_IN_FLIGHT_SECONDS: String(RELAY.timeoutSeconds),
        EVENT_RETENTION_DAYS: String(retentionDays),
        SECRET_CACHE_SECONDS: String(secretCacheSeconds),
      },
    });
    this.function = relay.function;
    this.logGroup = relay.logGroup;
    props.senderSecret.grantRead(this.function);
    // The partitions of the providers that send instructions (a session's relay items and markers).
    const instructing = (props.providers ?? providers).filter((provider) => provider.instruction).map((provider) => keys.subject(provider.id, '*'));
    // Conditional puts and updates of its own items, in one table (no delete, no index): beside the
    // instructions, the sender's `<reference>` / RELAYED items that join its delivery reports, the
    // meeting items where a send that got no answer waits for its report (`<sender>!external#<eventId>`),
    // and each number's hourly count (`<sender>!relay-count#<number hash>`, relayMaxPerNumberPerHour).
    // https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html
    relay.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['dynamodb:PutItem', 'dynamodb:UpdateItem'],
        resources: [props.table.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [...instructing, keys.subject(props.sender.id, '*'), keys.external(props.sender.id, '*').pk, keys.relayCountPartition(props.sender.id, '*')] } },
      }),
    );
    // It sends what the gateway stored, never what an event says: it reads the stored instruction,
    // in the partitions of the providers that send instructions only; and, on a retry, what the
    // sender's delivery report said of an earlier attempt (the sender's `<reference>` STATE item).
    relay.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['dynamodb:GetItem'],
        resources: [props.table.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [...instructing, keys.subject(props.sender.id, '*')] } },
      }),
    );

    this.function.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: RELAY.batchSize,
        reportBatchItemFailures: true,
        // Instructions are few; two relays at once (each sending its batch of up to ten together: at most
        // twenty requests in flight) keep the sender's rate limit far away.
        maxConcurrency: 2,
      }),
    );

    this.rule = new Rule(this, 'Rule', {
      eventBus: props.eventBus,
      description: `SMS instructions to the relay, which sends them through ${props.sender.displayName}`,
      eventPattern: { source: [EVENT_SOURCE], detailType: [DETAIL_TYPES.instruction], detail: { channel: ['sms'] } },
      // EventBridge retries a target that refuses an event, then hands it to the DLQ; past a day a link is stale too.
      targets: [new SqsQueue(this.queue, { deadLetterQueue: this.deadLetterQueue, maxEventAge: Duration.hours(24), retryAttempts: 185 })],
    });

    const metric = (metricName: string, pattern: ReturnType<typeof relayLine>) =>
      new MetricFilter(this, `${metricName}Filter`, { logGroup: this.logGroup, metricNamespace: namespace, metricName, filterPattern: pattern, metricValue: '1', defaultValue: 0 }).metric({
        statistic: 'Sum',
        period: PERIOD,
      });
    const uncertain = metric('RelayUncertain', RELAY_LOG_PATTERNS.uncertain);
    const notSent = metric('RelayNotSent', RELAY_LOG_PATTERNS.notSent);
    const configuration = metric('RelayConfigurationErrors', RELAY_LOG_PATTERNS.configurationError);
    const sent = metric('RelaySent', RELAY_LOG_PATTERNS.sent);
    this.metrics = { sent, notSent, uncertain };

    const stackName = Stack.of(this).stackName;
    const via = props.sender.displayName;
    // The allowed codes are named in RelayNotSent's description, which CloudWatch limits to 1024
    // characters: a long list (a few dozen +1 area codes) would fail the deploy, so past a short
    // one the description says how many there are and where the whole list is.
    const allowed = parseCountryCodes(countries);
    const allowedText =
      allowed === undefined || countries.length <= MAX_COUNTRIES_IN_DESCRIPTION ? countries : `${allowed.length} calling codes, listed in the relay function's RELAY_ALLOWED_COUNTRY_CODES`;
    const alarms: Alarm[] = [];
    const alarm = (alarmId: string, source: IMetric, description: string, threshold = 1) => {
      alarms.push(
        new Alarm(this, alarmId, {
          alarmName: `${stackName}-${alarmId}`,
          metric: source,
          threshold,
          evaluationPeriods: 1,
          comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          treatMissingData: TreatMissingData.NOT_BREACHING,
          alarmDescription: description,
        }),
      );
    };
    alarm(
      'RelayDeadLetterQueueNotEmpty',
      this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: 'Maximum' }),
      `SMS instructions the relay gave up on (${RELAY.maxReceiveCount} receives, or the rule could not deliver them) are in the relay's dead-letter queue. ` +
        `The relay logs say why ("record failed"): ${via} down, its secret refused, the table failing. Fix it, then move them back: ` +
        `npm run redrive -- --dlq-url <RelayDeadLetterQueueUrl> --region <region> (try --dry-run first). Nothing is sent twice; ` +
        `a code older than ${maxAge} s is recorded expired instead of sent, a link is sent within a day.`,
    );
    // A relay that takes nothing from its queue (its event source disabled or failing to poll) fails
    // no invocation and moves nothing to the DLQ: the instructions wait until SQS deletes them a day
    // later. The oldest one's age says so once a code has waited longer than it is of use. (SQS
    // leaves a message received three times or more out of this age, so retries back off unseen:
    // the DLQ alarm watches those.)
    alarm(
      'RelayQueueDelayed',
      this.queue.metricApproximateAgeOfOldestMessage({ period: PERIOD, statistic: 'Maximum' }),
      `An SMS instruction has waited in the relay queue over ${maxAge} s (relayMaxAgeSeconds) without being taken: a code that ` +
        'old is recorded expired, not sent. Usually the relay is not receiving: check that its SQS event source is enabled and ' +
        "healthy (aws lambda list-event-source-mappings on the relay function: State, LastProcessingResult), the function's " +
        "throttles (the account's Lambda concurrency) and RelayErrors. Instructions are deleted a day after they were queued, " +
        'without reaching the DLQ.',
      maxAge,
    );
    alarm(
      'RelayUncertain',
      uncertain,
      `A message to a person may have been sent by ${via} without the relay knowing: the request left and no answer came (a timeout, ` +
        `a connection lost, a 504). ${via} has no idempotency key, so it is never sent again. Find the eventId in the relay's "relay" ` +
        `lines (outcome uncertain) or with npm run inspect -- identomat <sessionId> --table <TableName> --region <region>, and look it up in ${via}'s portal by external_id; ` +
        'if it was not sent, the person asks for a new code.',
    );
    alarm(
      'RelayNotSent',
      notSent,
      `An SMS instruction was not sent: too old (a code older than relayMaxAgeSeconds, ${maxAge} s, when the relay got to it: ` +
        `check EventsDelayed and the relay queue's age), refused by ${via} (an invalid number, a trial account's unverified number: the ` +
        `"relay" line's reason names ${via}'s code), to a number outside relayAllowedCountryCodes (${allowedText}: many at once may be ` +
        `someone with the callbackApiKey pumping SMS; rotate it) or past relayMaxPerNumberPerHour (${perNumber || 'no cap'} to one number in an hour), ` +
        'unreadable, or not stored by the gateway (reason "not stored": an ' +
        'instruction event that names nothing the gateway stored, sent nowhere: someone else put it on the bus (find who called ' +
        'events:PutEvents in CloudTrail), or a DLQ message redriven after its instruction\'s retention that the relay never began). ' +
        'Nothing is retried; the person asks for a new code.',
    );
    alarm(
      'RelayErrors',
      this.function.metricErrors({ period: PERIOD, statistic: 'Sum' }),
      'The relay crashed or timed out on a whole batch: read its logs. A crash mid-send leaves that instruction uncertain (never resent); the others are redelivered.',
    );
    alarm(
      'RelayConfigurationErrors',
      configuration,
      `${via} refused the relay's credentials (or the SMS API is not enabled for the account): "record failed: configuration" in the relay ` +
        `logs names the field. Fix the ${props.sender.id} secret (put-secret-value; the relay reloads it within the secret cache time); ` +
        `instructions are retried meanwhile, codes until they are older than ${maxAge} s.`,
    );
    // SMS pumping spread over many numbers passes the per-number cap: the volume says it.
    if (sentAlarm > 0) {
      alarm(
        'RelaySentVolume',
        sent.with({ period: Duration.hours(1) }),
        `The relay sent ${sentAlarm} SMS or more through ${via} in an hour (relaySentAlarmPerHour): more than this deployment expects. ` +
          `Many to one country or number range is SMS pumping: narrow relayAllowedCountryCodes, lower relayMaxPerNumberPerHour, ` +
          `rotate the callbackApiKey, and check ${via}'s portal for the numbers sent to. Raise the setting if the traffic is real.`,
        sentAlarm,
      );
    }
    this.alarms = alarms;
    if (props.alarmTopic) {
      const action = new SnsAction(props.alarmTopic);
      for (const each of alarms) {
        each.addAlarmAction(action);
        each.addOkAction(action);
      }
    }
  }
}
