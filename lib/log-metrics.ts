import { Duration } from 'aws-cdk-lib';
import { Metric, Unit } from 'aws-cdk-lib/aws-cloudwatch';
import { FilterPattern, type ILogGroup, type JsonPattern, MetricFilter } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { type ConfirmationKind, OUTCOMES, type Outcome } from '../functions/providers/provider.ts';
import { pascal } from './names.ts';
import { checkSetting, SETTING_DEFAULTS } from './validate.ts';

/** The custom metrics' namespace when none is given (the stack passes its own name, which is this by default). */
export const DEFAULT_METRIC_NAMESPACE = 'CallbackGateway';

const PERIOD = Duration.minutes(5);

const message = (text: string) => FilterPattern.stringValue('$.message', '=', text);

/**
 * The log lines that become metrics. Both functions write one JSON object per line straight to
 * stdout, so CloudWatch Logs reads the fields as they are:
 * - functions/core/ingest.ts: "callback" with provider, statusCode, result (quarantined | rejected | failed; an accepted
 *   callback's line is DEBUG, not written at the default level);
 * - functions/core/worker.ts: "quarantined" (WARN) with provider, reason, duplicate and atIngest (booleans), and result (quarantined | duplicate |
 *   quarantinedAtIngest: the same as text, for the saved query); "stored" with provider, outcome, result (stored | duplicate | redelivered: this same
 *   message again, e.g. retried until the status endpoint catches up), stateChanged (the subject's state item was
 *   written with a new status, outcome or confirmation), lagMs, confirmation (confirmed | mismatch |
 *   not_found; `pendingVerdict` instead while the message is retried for the endpoint to catch up);
 * - functions/handlers/worker.ts: "record failed: configuration" (ERROR), "record failed, will retry" (WARN), with receiveCount;
 * - functions/handlers/publisher.ts: "stream batch" with records, events, setAside (events the bus refused for what they hold,
 *   recorded in the events DLQ) and failed (records given back to the stream);
 * - the API's access log (lib/callback-api.ts): status, as a string.
 * Filter syntax: https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html
 */
export const LOG_PATTERNS = {
  /** A callback answered 401: a forged request, or a provider signing with a key we no longer (or not yet) hold. */
  unauthorized: FilterPattern.all(message('callback'), FilterPattern.numberValue('$.statusCode', '=', 401)),
  /** Authentic but not what our schema expects: queued, answered 200, and set aside for `npm run reprocess`. */
  quarantined: FilterPattern.all(message('callback'), FilterPattern.stringValue('$.result', '=', 'quarantined')),
  /**
   * A callback the worker quarantined itself (it read what ingest took: e.g. a Standard Webhooks
   * subject field changed in the secret, a reprocessed callback that still does not fit), counted
   * once: not one ingest flagged (and counted), nor one already quarantined.
   */
  workerQuarantined: FilterPattern.all(message('quarantined'), FilterPattern.booleanValue('$.duplicate', false), FilterPattern.booleanValue('$.atIngest', false)),
  /** A record the worker cannot process until a person fixes configuration (e.g. TemboPlus answered 403 to our apiToken). */
  configurationError: FilterPattern.all(
    FilterPattern.stringValue('$.level', '=', 'ERROR'),
    FilterPattern.any(message('record failed: configuration'), message('recheck: configuration')),
  ),
  /** A record left for redelivery after a passing fault (table throttled, status endpoint down). */
  retry: message('record failed, will retry'),
  /**
   * An authentic callback of the provider that reached the table (stored, or recognised as a
   * repeat): the provider is alive and its callbacks get through. Counted from the worker's line,
   * since ingest writes an accepted callback's line at DEBUG only. A message of ours received
   * again (result redelivered) is not another callback.
   */
  accepted: FilterPattern.all(message('stored'), FilterPattern.stringValue('$.result', '!=', 'redelivered')),
  /** A callback stored for the first time (with its outcome and its lag from receipt). */
  stored: FilterPattern.all(message('stored'), FilterPattern.stringValue('$.result', '=', 'stored')),
  /** A callback the provider sent again, which the worker recognised and did not count again (not our own redelivery). */
  duplicate: FilterPattern.all(message('stored'), FilterPattern.stringValue('$.result', '=', 'duplicate')),
  /**
   * A record that failed again on its `count`-th receive or later. SQS's age-of-oldest-message
   * metric stops seeing a message once it has been received several times (it is moved to the back
   * of the queue: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html),
   * so these are counted from the worker's own failure lines, which carry SQS's ApproximateReceiveCount.
   */
  receivedManyTimes: (count: number): JsonPattern =>
    FilterPattern.all(
      FilterPattern.numberValue('$.receiveCount', '>=', count),
      FilterPattern.any(message('record failed, will retry'), message('record failed: configuration')),
    ),
  /** A request API Gateway throttled (429): its access log line. */
  throttled: FilterPattern.stringValue('$.status', '=', '429'),
  /**
   * The provider's status endpoint's verdict on what callbacks claimed: on arrival (one per processed
   * callback, redeliveries included) and at each re-check of a subject a callback reported.
   */
  confirmation: (verdict: ConfirmationKind): JsonPattern =>
    FilterPattern.all(FilterPattern.any(message('stored'), message('rechecked')), FilterPattern.stringValue('$.confirmation', '=', verdict)),
  /** A re-check: the provider asked again about a subject that is not settled (functions/core/recheck.ts). */
  recheck: FilterPattern.any(message('rechecked'), message('recheck: stale'), message('recheck: status endpoint fault, asking again later'), message('recheck: configuration')),
  /** A re-check the status endpoint did not answer (5xx, 429, timeout, refused). */
  recheckFault: FilterPattern.any(message('recheck: status endpoint fault, asking again later'), message('recheck: configuration')),
  /** A subject still not final (or not confirmed) when re-checks ran out: listed by `inspect --stale`. */
  stale: message('recheck: stale'),
  /**
   * A state item the worker wrote with a new status, outcome or confirmation: an INSERT or MODIFY of
   * a `STATE` item, which the publisher's stream filter always lets through (lib/event-outlet.ts),
   * so a working publisher is invoked for it (whether or not it then publishes an event).
   */
  stateChanged: FilterPattern.all(message('stored'), FilterPattern.booleanValue('$.stateChanged', true)),
  /** A stream batch the publisher could not put on the bus whole: it gave records back to the stream. */
  publishFailed: FilterPattern.all(message('stream batch'), FilterPattern.numberValue('$.failed', '>', 0)),
} as const;

/** Metric names per confirmation verdict. */
export const CONFIRMATION_METRICS: Readonly<Record<ConfirmationKind, string>> = {
  confirmed: 'ConfirmationConfirmed',
  mismatch: 'ConfirmationMismatch',
  not_found: 'ConfirmationNotFound',
};

export interface IngestLogs {
  /** The provider id, as the ingest writes it in its `provider` field. */
  readonly providerId: string;
  readonly logGroup: ILogGroup;
}

export interface LogMetricsProps {
  /** Each provider's ingest log group. */
  readonly ingestLogs: readonly IngestLogs[];
  /** The worker's log group. */
  readonly workerLogs: ILogGroup;
  /** The API's access log group (429s). */
  readonly accessLogs: ILogGroup;
  /**
   * The event publisher's log group (batches it could not publish).
   * @default - no publisher metric
   */
  readonly publisherLogs?: ILogGroup;
  /**
   * The receive count from which a failing record is counted as received many times.
   * @default SETTING_DEFAULTS.manyReceivesAlarmCount
   */
  readonly manyReceivesAlarmCount?: number;
  /** Providers whose callbacks the worker confirms with the provider's status endpoint (TemboPlus). */
  readonly confirmingProviderIds: readonly string[];
  /**
   * Namespace of the custom metrics.
   * @default DEFAULT_METRIC_NAMESPACE
   */
  readonly namespace?: string;
}

/**
 * Metric filters that count what the functions log: 401s and quarantines per provider at ingest (and the worker's own quarantines),
 * and the worker's configuration errors, retries and confirmation verdicts. A metric only exists
 * once a line matched, so "no data" means "none happened".
 *
 * The Provider dimension is taken from the line's `provider` field, which comes from the registry,
 * never from the request: at most one metric per provider and name (custom metrics are billed each).
 */
export class LogMetrics extends Construct {
  public readonly namespace: string;
  /** Records the worker gave back because configuration is wrong (alarmed). */
  public readonly workerConfigurationErrors: Metric;
  /** Records the worker gave back to retry later (dashboard only: these usually clear by themselves). */
  public readonly workerRetries: Metric;
  /** Records that failed again on their manyReceivesAlarmCount-th receive or later (alarmed). */
  public readonly receivedManyTimes: Metric;
  /** Requests API Gateway answered 429 (alarmed: a throttled callback may be a lost one). */
  public readonly apiThrottled: Metric;
  /** Stream batches the publisher gave back, the bus refusing or failing (alarmed); undefined without publisherLogs. */
  public readonly publishFailures?: Metric;
  /**
   * State items the worker wrote with a change, each one a stream record the publisher is invoked
   * for (alarmed with the publisher's invocations: EventsNotPublished); undefined without publisherLogs.
   */
  public readonly stateChanges?: Metric;
  /** The receive count from which receivedManyTimes counts. */
  public readonly manyReceivesAlarmCount: number;

  constructor(scope: Construct, id: string, props: LogMetricsProps) {
    super(scope, id);
    this.namespace = props.namespace ?? DEFAULT_METRIC_NAMESPACE;

    this.manyReceivesAlarmCount = checkSetting('manyReceivesAlarmCount', props.manyReceivesAlarmCount ?? SETTING_DEFAULTS.manyReceivesAlarmCount);

    const perProvider = { Provider: '$.provider' };
    for (const { providerId, logGroup } of props.ingestLogs) {
      const name = pascal(providerId);
      this.filter(`${name}Unauthorized`, logGroup, LOG_PATTERNS.unauthorized, 'Unauthorized', perProvider);
      this.filter(`${name}Quarantined`, logGroup, LOG_PATTERNS.quarantined, 'Quarantined', perProvider);
    }
    // The same Quarantined metric (and <Provider>Quarantined alarm) for callbacks the worker quarantines.
    this.filter('WorkerQuarantined', props.workerLogs, LOG_PATTERNS.workerQuarantined, 'Quarantined', perProvider);
    this.filter('Accepted', props.workerLogs, LOG_PATTERNS.accepted, 'Accepted', perProvider);
    // The business side of the worker's "stored" line: what each provider's callbacks said, how
    // many were repeats, and how long from API Gateway's receipt to the stored state.
    this.filter('Stored', props.workerLogs, LOG_PATTERNS.stored, 'Stored', { ...perProvider, Outcome: '$.outcome' });
    this.filter('Duplicates', props.workerLogs, LOG_PATTERNS.duplicate, 'Duplicates', perProvider);
    this.filter('StoreLag', props.workerLogs, LOG_PATTERNS.stored, 'StoreLag', perProvider, { value: '$.lagMs', unit: Unit.MILLISECONDS });
    this.filter('ReceivedManyTimes', props.workerLogs, LOG_PATTERNS.receivedManyTimes(this.manyReceivesAlarmCount), 'ReceivedManyTimes');
    this.filter('ApiThrottled', props.accessLogs, LOG_PATTERNS.throttled, 'ApiThrottled');
    if (props.confirmingProviderIds.length > 0) {
      // The worker handles every provider, so one filter per verdict covers all confirming providers.
      for (const [verdict, metricName] of Object.entries(CONFIRMATION_METRICS) as [ConfirmationKind, string][]) {
        this.filter(metricName, props.workerLogs, LOG_PATTERNS.confirmation(verdict), metricName, perProvider);
      }
    }
    // Reconciliation: re-checks and their faults per provider, and subjects that went stale.
    this.filter('Rechecks', props.workerLogs, LOG_PATTERNS.recheck, 'Rechecks', perProvider);
    this.filter('RecheckFaults', props.workerLogs, LOG_PATTERNS.recheckFault, 'RecheckFaults', perProvider);
    this.filter('Stale', props.workerLogs, LOG_PATTERNS.stale, 'Stale', perProvider);
    this.filter('WorkerConfigurationErrors', props.workerLogs, LOG_PATTERNS.configurationError, 'WorkerConfigurationErrors');
    this.filter('WorkerRetries', props.workerLogs, LOG_PATTERNS.retry, 'WorkerRetries');
    if (props.publisherLogs) {
      this.filter('PublishFailures', props.publisherLogs, LOG_PATTERNS.publishFailed, 'PublishFailures');
      this.publishFailures = this.metric('PublishFailures');
      // On the worker's log group, only with events out: 0 for its other lines, so the metric has
      // data whenever the worker logs anything.
      this.filter('StateChanged', props.workerLogs, LOG_PATTERNS.stateChanged, 'StateChanged', undefined, undefined, 0);
      this.stateChanges = this.metric('StateChanged');
    }

    this.workerConfigurationErrors = this.metric('WorkerConfigurationErrors');
    this.workerRetries = this.metric('WorkerRetries');
    this.receivedManyTimes = this.metric('ReceivedManyTimes');
    this.apiThrottled = this.metric('ApiThrottled');
  }

  /** Callbacks of one provider that reached the table, new or repeated (sum per period, 5 minutes unless given). */
  public accepted(providerId: string, period: Duration = PERIOD): Metric {
    return this.metric('Accepted', { Provider: providerId }).with({ period });
  }

  /** Callbacks of one provider stored for the first time that reported `outcome` (sum per 5 minutes). */
  public stored(providerId: string, outcome: Outcome): Metric {
    return this.metric('Stored', { Provider: providerId, Outcome: outcome });
  }

  /** Every outcome's stored metric of one provider, in OUTCOMES order. */
  public storedByOutcome(providerId: string): Metric[] {
    return OUTCOMES.map((outcome) => this.stored(providerId, outcome));
  }

  /** Repeated callbacks of one provider the worker recognised (sum per 5 minutes). */
  public duplicates(providerId: string): Metric {
    return this.metric('Duplicates', { Provider: providerId });
  }

  /** Milliseconds from API Gateway's receipt to the stored state, one provider (`statistic` per 5 minutes). */
  public storeLag(providerId: string, statistic: 'Average' | 'Maximum'): Metric {
    return this.metric('StoreLag', { Provider: providerId }).with({ statistic });
  }

  /** 401 answers to one provider's route (sum per 5 minutes). */
  public unauthorized(providerId: string): Metric {
    return this.metric('Unauthorized', { Provider: providerId });
  }

  /** Re-checks of one provider's subjects (sum per 5 minutes). */
  public rechecks(providerId: string): Metric {
    return this.metric('Rechecks', { Provider: providerId });
  }

  /** Re-checks of one provider the status endpoint did not answer (sum per 5 minutes). */
  public recheckFaults(providerId: string): Metric {
    return this.metric('RecheckFaults', { Provider: providerId });
  }

  /** Subjects of one provider that went stale (sum per 5 minutes). */
  public stale(providerId: string, period: Duration = PERIOD): Metric {
    return this.metric('Stale', { Provider: providerId }).with({ period });
  }

  /** Callbacks of one provider quarantined, at ingest or by the worker (sum per 5 minutes). */
  public quarantined(providerId: string): Metric {
    return this.metric('Quarantined', { Provider: providerId });
  }

  /** One verdict of a provider's status endpoint (sum per 5 minutes). */
  public confirmations(providerId: string, verdict: ConfirmationKind): Metric {
    return this.metric(CONFIRMATION_METRICS[verdict], { Provider: providerId });
  }

  private metric(metricName: string, dimensionsMap?: Record<string, string>): Metric {
    return new Metric({
      namespace: this.namespace,
      metricName,
      ...(dimensionsMap ? { dimensionsMap } : {}),
      statistic: 'Sum',
      period: PERIOD,
    });
  }

  private filter(
    id: string,
    logGroup: ILogGroup,
    filterPattern: JsonPattern,
    metricName: string,
    dimensions?: Record<string, string>,
    measure: { readonly value: string; readonly unit: Unit } = { value: '1', unit: Unit.COUNT },
    /** The value of a line the pattern does not match; only without dimensions (CloudWatch allows none with them). */
    defaultValue?: number,
  ) {
    // Usually no default value: with dimensions CloudWatch allows none, and "no data" reads as zero anyway.
    new MetricFilter(this, id, {
      logGroup,
      filterPattern,
      metricNamespace: this.namespace,
      metricName,
      metricValue: measure.value,
      unit: measure.unit,
      ...(dimensions ? { dimensions } : {}),
      ...(defaultValue === undefined ? {} : { defaultValue }),
    });
  }
}

/** `temboplus` → `Temboplus`. */
