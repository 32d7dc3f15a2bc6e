import { Duration } from 'aws-cdk-lib';
import { Metric, Unit } from 'aws-cdk-lib/aws-cloudwatch';
import { FilterPattern, type ILogGroup, type JsonPattern, MetricFilter } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { ConfirmationKind } from '../functions/providers/provider.ts';
import { pascal } from './names.ts';

/** The custom metrics' namespace when none is given (the stack passes its own name, which is this by default). */
export const DEFAULT_METRIC_NAMESPACE = 'CallbackGateway';

const PERIOD = Duration.minutes(5);

const message = (text: string) => FilterPattern.stringValue('$.message', '=', text);

/**
 * The log lines that become metrics. Both functions write one JSON object per line straight to
 * stdout, so CloudWatch Logs reads the fields as they are:
 * - functions/core/ingest.ts: "callback" with provider, statusCode, result (accepted | quarantined | rejected | failed);
 * - functions/core/worker.ts: "stored" with provider, result, confirmation (confirmed | mismatch | not_found);
 * - functions/handlers/worker.ts: "record failed: configuration" (ERROR), "record failed, will retry" (WARN).
 */
export const LOG_PATTERNS = {
  /** A callback answered 401: a forged request, or a provider signing with a key we no longer (or not yet) hold. */
  unauthorized: FilterPattern.all(message('callback'), FilterPattern.numberValue('$.statusCode', '=', 401)),
  /** Authentic but not what our schema expects: queued, answered 200, and set aside for `npm run reprocess`. */
  quarantined: FilterPattern.all(message('callback'), FilterPattern.stringValue('$.result', '=', 'quarantined')),
  /** A record the worker cannot process until a person fixes configuration (e.g. TemboPlus answered 403 to our apiToken). */
  configurationError: FilterPattern.all(FilterPattern.stringValue('$.level', '=', 'ERROR'), message('record failed: configuration')),
  /** A record left for redelivery after a passing fault (table throttled, status endpoint down). */
  retry: message('record failed, will retry'),
  /** The provider's status endpoint's verdict on a callback, one per processed callback (redeliveries included). */
  confirmation: (verdict: ConfirmationKind): JsonPattern =>
    FilterPattern.all(message('stored'), FilterPattern.stringValue('$.confirmation', '=', verdict)),
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
  /** Providers whose callbacks the worker confirms with the provider's status endpoint (TemboPlus). */
  readonly confirmingProviderIds: readonly string[];
  /**
   * Namespace of the custom metrics.
   * @default DEFAULT_METRIC_NAMESPACE
   */
  readonly namespace?: string;
}

/**
 * Metric filters that count what the functions log: 401s and quarantines per provider at ingest,
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

  constructor(scope: Construct, id: string, props: LogMetricsProps) {
    super(scope, id);
    this.namespace = props.namespace ?? DEFAULT_METRIC_NAMESPACE;

    const perProvider = { Provider: '$.provider' };
    for (const { providerId, logGroup } of props.ingestLogs) {
      const name = pascal(providerId);
      this.filter(`${name}Unauthorized`, logGroup, LOG_PATTERNS.unauthorized, 'Unauthorized', perProvider);
      this.filter(`${name}Quarantined`, logGroup, LOG_PATTERNS.quarantined, 'Quarantined', perProvider);
    }
    if (props.confirmingProviderIds.length > 0) {
      // The worker handles every provider, so one filter per verdict covers all confirming providers.
      for (const [verdict, metricName] of Object.entries(CONFIRMATION_METRICS) as [ConfirmationKind, string][]) {
        this.filter(metricName, props.workerLogs, LOG_PATTERNS.confirmation(verdict), metricName, perProvider);
      }
    }
    this.filter('WorkerConfigurationErrors', props.workerLogs, LOG_PATTERNS.configurationError, 'WorkerConfigurationErrors');
    this.filter('WorkerRetries', props.workerLogs, LOG_PATTERNS.retry, 'WorkerRetries');

    this.workerConfigurationErrors = this.metric('WorkerConfigurationErrors');
    this.workerRetries = this.metric('WorkerRetries');
  }

  /** 401 answers to one provider's route (sum per 5 minutes). */
  public unauthorized(providerId: string): Metric {
    return this.metric('Unauthorized', providerId);
  }

  /** Callbacks of one provider quarantined at ingest (sum per 5 minutes). */
  public quarantined(providerId: string): Metric {
    return this.metric('Quarantined', providerId);
  }

  /** One verdict of a provider's status endpoint (sum per 5 minutes). */
  public confirmations(providerId: string, verdict: ConfirmationKind): Metric {
    return this.metric(CONFIRMATION_METRICS[verdict], providerId);
  }

  private metric(metricName: string, providerId?: string): Metric {
    return new Metric({
      namespace: this.namespace,
      metricName,
      ...(providerId ? { dimensionsMap: { Provider: providerId } } : {}),
      statistic: 'Sum',
      period: PERIOD,
    });
  }

  private filter(id: string, logGroup: ILogGroup, filterPattern: JsonPattern, metricName: string, dimensions?: Record<string, string>) {
    // No default value: with dimensions CloudWatch allows none, and "no data" reads as zero anyway.
    new MetricFilter(this, id, {
      logGroup,
      filterPattern,
      metricNamespace: this.namespace,
      metricName,
      metricValue: '1',
      unit: Unit.COUNT,
      ...(dimensions ? { dimensions } : {}),
    });
  }
}

/** `temboplus` → `Temboplus`. */
