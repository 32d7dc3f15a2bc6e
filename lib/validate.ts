/**
 * Every setting's allowed values and default, and the checks the stack and its constructs run at
 * synth. Each error names the setting, the allowed range and the bad value, so a typo in cdk.json or
 * in `-c …` is found at synth time, not after a deploy.
 */
import { QUEUE, RETENTION, MAX_BODY_BYTES } from '../functions/core/pipeline-definition.ts';
import { DEFAULT_RECONCILE, parseSchedule } from '../functions/core/reconcile.ts';
import { parseCountryCodes, RELAY } from '../functions/core/relay.ts';
import { retryDelaySeconds } from '../functions/handlers/back-off.ts';
import { providers } from '../functions/providers/index.ts';

/**
 * Receives on which the worker fails a record on purpose, to ask a provider's status endpoint again
 * (a verdict not settled yet, or the endpoint failing); past them it stores the callback.
 */
const PLANNED_RETRIES = Math.max(QUEUE.settleAttempts, QUEUE.askFaultAttempts);

/**
 * The most receives a failing callback can go through and still reach the DLQ before the queue's
 * retention deletes it, a day to spare: each failed receive waits the worker's back-off (with its
 * jitter, at most 15 minutes) plus, at worst, the worker's whole timeout. 284 with the defaults.
 */
export function maxReceivesWithinRetention(): number {
  const budgetSeconds = QUEUE.retentionDays * 86_400 - 86_400;
  let spent = 0;
  for (let receive = 1; ; receive++) {
    spent += retryDelaySeconds(receive, QUEUE.retryBaseSeconds, () => 1) + QUEUE.workerTimeoutSeconds;
    if (spent > budgetSeconds) return receive;
  }
}

/** Hours in the longest evaluation range a CloudWatch alarm accepts (Period × EvaluationPeriods). */
const MAX_ALARM_RANGE_HOURS = 7 * 24;

interface NumericRange {
  readonly min: number;
  readonly max: number;
  readonly integer: boolean;
  /** Why the range is what it is, when that is not obvious (appended to the error). */
  readonly why?: string;
  /** The only values within the range that are accepted, when not all are. */
  readonly allowed?: readonly number[];
}

/** The retention periods CloudWatch Logs accepts, in days (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html). */
export const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;

/** Allowed range of every numeric setting, and whether it must be whole. */
export const NUMERIC_SETTINGS = {
  maxReceiveCount: {
    min: PLANNED_RETRIES + 1,
    max: maxReceivesWithinRetention(),
    integer: true,
    why:
      `more than the worker's ${QUEUE.settleAttempts} settle attempts and ${QUEUE.askFaultAttempts} attempts on a failing status endpoint ` +
      "(functions/core/pipeline-definition.ts), so a callback the provider's endpoint does not know yet, or cannot answer, is " +
      `retried and then stored, never sent to the DLQ; and few enough that a callback failing every receive reaches the DLQ ` +
      `within the queue's ${QUEUE.retentionDays}-day retention, a day to spare (with the worker's back-off), instead of being deleted`,
  },
  eventRetentionDays: { min: 1, max: 36_500, integer: true },
  sensitiveRetentionHours: { min: 1, max: 24 * 365, integer: true },
  throttleRateLimit: { min: 1, max: 100_000, integer: false },
  throttleBurstLimit: { min: 1, max: 100_000, integer: true },
  maxMessageAgeSeconds: {
    min: 60,
    max: QUEUE.retentionDays * 86_400 - 3600,
    integer: true,
    why: `at least an hour below the queue's ${QUEUE.retentionDays}-day retention, so the alarm fires before a queued callback expires`,
  },
  /**
   * The ingest's limit can only be lowered: a quarantined callback is stored whole in one DynamoDB
   * item (400 KB), its body in base64 when JSON escaping would make it larger, and 256 KiB of
   * base64 is about 342 KB.
   */
  maxBodyBytes: { min: 1024, max: MAX_BODY_BYTES, integer: true },
  /** How long a function uses a secret it read; also how long a rotation waits before the provider switches. */
  secretCacheSeconds: { min: 1, max: 3600, integer: true },
  /** 401 answers per provider in 5 minutes above which the 401 alarm fires. */
  unauthorizedAlarmThreshold: { min: 1, max: 1_000_000, integer: true },
  /** Confirmation mismatches / not-founds in 5 minutes at which their alarm fires. */
  mismatchAlarmThreshold: { min: 1, max: 100_000, integer: true },
  notFoundAlarmThreshold: { min: 1, max: 100_000, integer: true },
  /**
   * Worker functions the SQS event source runs at once. AWS accepts 2 to 1000:
   * https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-lambda-eventsourcemapping-scalingconfig.html
   */
  workerMaxConcurrency: { min: 2, max: 1000, integer: true, why: 'the SQS event source maximum concurrency AWS accepts' },
  /** Requests answered 429 (throttled by API Gateway) in 5 minutes at which the alarm fires. */
  apiThrottledAlarmThreshold: { min: 1, max: 1_000_000, integer: true },
  /** Throttled invocations (ingest functions together, or the worker) in 5 minutes at which the alarm fires. */
  lambdaThrottleAlarmThreshold: { min: 1, max: 1_000_000, integer: true },
  /** Throttled table or index reads and writes in 5 minutes at which the alarm fires. */
  tableThrottleAlarmThreshold: { min: 1, max: 1_000_000, integer: true },
  /** The receive count at which a record that failed again raises the alarm. */
  manyReceivesAlarmCount: {
    min: PLANNED_RETRIES,
    max: 1000,
    integer: true,
    why: `at least the worker's ${PLANNED_RETRIES} planned attempts (settle and status-endpoint faults), whose retries are not a fault`,
  },
  /** Longest a subject is reconciled (asked about again) before it is stale; a provider's own horizon may be shorter. */
  reconcileHorizonHours: { min: 1, max: 24 * 30, integer: true },
  /** Subjects gone stale per provider in 5 minutes at which the stale alarm fires. */
  staleAlarmThreshold: { min: 1, max: 100_000, integer: true },
  /** How long every log group of the stack (the functions' and the API's access log) keeps its lines. */
  logRetentionDays: { min: 1, max: 3653, integer: true, allowed: LOG_RETENTION_DAYS, why: `one of CloudWatch Logs' periods: ${LOG_RETENTION_DAYS.join(', ')}` },
  /**
   * Seconds after the gateway received a one-time code past which the SMS relay no longer sends it
   * (recorded `expired`): a code the person has given up on, or that no longer works, is not sent.
   */
  relayMaxAgeSeconds: {
    min: 30,
    max: 3600,
    integer: true,
    why: 'a one-time code is useless minutes after it was issued; an hour is the most any code is sent late',
  },
  /**
   * SMS the relay sends to one number in one clock hour (UTC); past it, an instruction is recorded
   * refused and not sent (SMS pumping, floods). 0: no cap.
   */
  relayMaxPerNumberPerHour: { min: 0, max: 1000, integer: true, why: '0 for no cap' },
  /** SMS the relay sent in an hour at which the RelaySentVolume alarm fires. 0: no alarm. */
  relaySentAlarmPerHour: { min: 0, max: 1_000_000, integer: true, why: '0 for no alarm' },
} as const satisfies Record<string, NumericRange>;

export type NumericSetting = keyof typeof NUMERIC_SETTINGS;

/** Levels our logger writes; WARN and above would drop the INFO lines the metrics and alarms count. */
export const APPLICATION_LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO'] as const;
export type ApplicationLogLevelSetting = (typeof APPLICATION_LOG_LEVELS)[number];
/**
 * The SMS relay: `off`, or the provider that sends SMS instructions (one with `sendMessage`, with
 * the credentials its secret already holds).
 */
export const SMS_RELAYS = ['off', ...providers.filter((provider) => provider.sendMessage).map((provider) => provider.id)] as const;
export type SmsRelaySetting = string;

/** Every provider's id, in the registry's order (functions/providers/index.ts): what `providers` deploys by default. */
export const PROVIDER_IDS: readonly string[] = providers.map((provider) => provider.id);

/** Lambda's own (platform) log levels: https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html */
export const SYSTEM_LOG_LEVELS = ['DEBUG', 'INFO', 'WARN'] as const;
export type SystemLogLevelSetting = (typeof SYSTEM_LOG_LEVELS)[number];

/** The default of every setting that has one (alarmEmail and silenceAlarmHours are off unless given). */
export const SETTING_DEFAULTS = {
  /** Every provider of the registry: a stack deployed before the setting existed keeps them all. */
  providers: PROVIDER_IDS.join(','),
  maxReceiveCount: QUEUE.maxReceiveCount,
  eventRetentionDays: RETENTION.eventDays,
  sensitiveRetentionHours: RETENTION.sensitiveHours,
  throttleRateLimit: 200,
  throttleBurstLimit: 400,
  maxMessageAgeSeconds: 900,
  maxBodyBytes: MAX_BODY_BYTES,
  secretCacheSeconds: 300,
  logRetentionDays: 30,
  unauthorizedAlarmThreshold: 20,
  mismatchAlarmThreshold: 1,
  notFoundAlarmThreshold: 1,
  /**
   * Five workers of ten records: at most 50 callbacks in flight, so at most 50 concurrent calls to a
   * provider's status endpoint, while the account's other concurrency stays free for ingest.
   */
  workerMaxConcurrency: 5,
  apiThrottledAlarmThreshold: 1,
  lambdaThrottleAlarmThreshold: 1,
  tableThrottleAlarmThreshold: 1,
  /** The first receive on which no failure is planned: a record failing then fails for a reason. */
  manyReceivesAlarmCount: PLANNED_RETRIES,
  reconcileHorizonHours: DEFAULT_RECONCILE.horizonHours,
  staleAlarmThreshold: 1,
  /** 1 min, 5 min, 30 min, 2 h, 12 h, 24 h, 48 h (DEFAULT_RECONCILE). */
  reconcileSchedule: '1m,5m,30m,2h,12h,1d,2d',
  applicationLogLevel: 'INFO' as ApplicationLogLevelSetting,
  systemLogLevel: 'WARN' as SystemLogLevelSetting,
  /** Off: SMS instructions are published as events, and sent by nobody unless a rule of yours does. */
  smsRelay: 'off' as SmsRelaySetting,
  relayMaxAgeSeconds: RELAY.codeMaxAgeSeconds,
  /** Any country: set the calling codes of the countries your people are in (e.g. "995,255"). */
  relayAllowedCountryCodes: 'any',
  relayMaxPerNumberPerHour: RELAY.maxPerNumberPerHour,
  /** Off: how many SMS an hour is too many depends on the traffic each deployment serves. */
  relaySentAlarmPerHour: 0,
  /** The API's own URL keeps answering; only with a custom domain (domainName) may it be turned off. */
  disableExecuteApiEndpoint: false,
} as const satisfies Record<NumericSetting, number> & Record<string, unknown>;

/**
 * The value, if it is within the setting's range; otherwise an error naming the setting (as `label`:
 * where it was written), the range and the value.
 */
export function checkSetting(name: NumericSetting, value: number, label: string = name): number {
  const { min, max, integer, allowed, ...rest } = NUMERIC_SETTINGS[name] as NumericRange;
  const ok = integer ? Number.isInteger(value) : Number.isFinite(value);
  const why = rest.why ? ` (${rest.why})` : '';
  if (!ok || value < min || value > max) {
    throw new Error(`${label} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}${why}, got ${JSON.stringify(value)}`);
  }
  if (allowed && !allowed.includes(value)) throw new Error(`${label} must be${why}, got ${JSON.stringify(value)}`);
  return value;
}

/**
 * `relayAllowedCountryCodes`: `any`, or country calling codes separated by commas (`995,255,+1`);
 * the value as written, once it parses.
 */
export function checkCountryCodes(name: string, value: unknown): string {
  if (typeof value !== 'string') throw new Error(`${name} must be "any" or country calling codes separated by commas (e.g. "995,255"), got ${JSON.stringify(value)}`);
  try {
    parseCountryCodes(value);
  } catch (error) {
    throw new Error(`${name}: ${(error as Error).message}, got ${JSON.stringify(value)}`, { cause: error });
  }
  return value;
}

/** One e-mail address (an SNS e-mail subscription takes exactly one). */
export function checkEmail(name: string, value: string): string {
  if (!/^[^\s@,;]+@[^\s@,;]+\.[^\s@,;]+$/.test(value)) {
    throw new Error(`${name} must be one e-mail address, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** One of the allowed values, compared as written (upper case). */
export function checkChoice<T extends string>(name: string, value: unknown, allowed: readonly T[], why?: string): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new Error(`${name} must be one of ${allowed.join(', ')}${why ? ` (${why})` : ''}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

/**
 * An object of values per provider id (`{"temboplus": 6}`): each key a known provider, each value
 * checked by `checkOne`. `what` names the values in the error (`hours`, `thresholds`).
 */
function perProvider(name: string, value: unknown, providerIds: readonly string[], what: string, example: string, checkOne: (raw: unknown, label: string) => number): Readonly<Record<string, number>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${name} must be an object of ${what} per provider, e.g. ${example}, got ${JSON.stringify(value)}`);
  }
  const values: Record<string, number> = {};
  for (const [provider, raw] of Object.entries(value)) {
    if (!providerIds.includes(provider)) {
      throw new Error(`${name} names an unknown provider ${JSON.stringify(provider)}; providers are ${providerIds.join(', ')}`);
    }
    values[provider] = checkOne(raw, `${name}.${provider}`);
  }
  return values;
}

/**
 * `providers`: the providers the stack deploys (a route, an ingest function, a secret, alarms and
 * widgets each), ids separated by commas (`telesign,identomat`). Returned in the registry's order,
 * so the same providers written in another order are the same value (not a one-off).
 */
export function checkProviders(name: string, value: unknown): string {
  const allowed = `provider ids separated by commas, e.g. "telesign,identomat"; providers are ${PROVIDER_IDS.join(', ')}`;
  if (typeof value !== 'string') throw new Error(`${name} must be ${allowed}, got ${JSON.stringify(value)}`);
  if (value.trim() === '') throw new Error(`${name} must name at least one provider (${allowed}), got ${JSON.stringify(value)}`);
  const ids = value.split(',').map((id) => id.trim());
  if (ids.includes('')) throw new Error(`${name} has an empty entry (two commas in a row, or one at an end): ${allowed}, got ${JSON.stringify(value)}`);
  const unknown = ids.find((id) => !PROVIDER_IDS.includes(id));
  if (unknown !== undefined) throw new Error(`${name} names an unknown provider ${JSON.stringify(unknown)}; providers are ${PROVIDER_IDS.join(', ')}`);
  const twice = ids.find((id, index) => ids.indexOf(id) !== index);
  if (twice !== undefined) throw new Error(`${name} names ${JSON.stringify(twice)} twice, got ${JSON.stringify(value)}`);
  return PROVIDER_IDS.filter((id) => ids.includes(id)).join(',');
}

/** The ids a checked `providers` value names, in the registry's order. */
export function providerIdsOf(value: string): string[] {
  return checkProviders('providers', value).split(',');
}

/**
 * The settings that name providers, against the providers deployed: a silence alarm or a stale
 * threshold of a provider that is not deployed would be an alarm on nothing (and a typo of intent),
 * and the SMS relay needs its sender's secret and a provider whose instructions it sends.
 */
export function checkDeployedProviders(values: {
  readonly providers: string;
  readonly silenceAlarmHours?: Readonly<Record<string, number>>;
  readonly staleAlarmThresholds?: Readonly<Record<string, number>>;
  readonly smsRelay?: string;
}): void {
  const deployed = providerIdsOf(values.providers);
  const listed = `providers is ${JSON.stringify(values.providers)}`;
  for (const [name, why] of [
    ['silenceAlarmHours', 'a provider not deployed sends no callbacks, so its silence alarm would always fire'],
    ['staleAlarmThresholds', 'a provider not deployed has no Stale alarm'],
  ] as const) {
    const notDeployed = Object.keys(values[name] ?? {}).filter((id) => !deployed.includes(id));
    if (notDeployed.length > 0) {
      throw new Error(
        `${name} names ${notDeployed.map((id) => JSON.stringify(id)).join(', ')}, not deployed (${listed}): ${why}. ` +
          `Remove ${notDeployed.length > 1 ? 'them' : 'it'} from ${name}, or add ${notDeployed.length > 1 ? 'them' : 'it'} to providers`,
      );
    }
  }
  const relay = values.smsRelay;
  if (relay === undefined || relay === 'off') return;
  const instructing = providers.filter((provider) => provider.instruction).map((provider) => provider.id);
  const missing: string[] = [];
  if (!deployed.includes(relay)) missing.push(`${relay} (the relay sends with the credentials of its secret)`);
  if (!instructing.some((id) => deployed.includes(id))) missing.push(`${instructing.join(' or ')} (the provider whose SMS instructions it sends)`);
  if (missing.length > 0) {
    throw new Error(`smsRelay=${relay} needs ${missing.join(' and ')} among the providers, but ${listed}: add ${missing.length > 1 ? 'them' : 'it'} to providers, or set smsRelay to off`);
  }
}

/**
 * Hours without a callback after which a provider's silence alarm fires, per provider id. Each
 * value is whole hours from 1 to 168: the alarm looks at one-hour periods, and CloudWatch accepts
 * at most seven days of them (Period × EvaluationPeriods ≤ 604,800 s,
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html).
 */
export function checkSilenceHours(name: string, value: unknown, providerIds: readonly string[]): Readonly<Record<string, number>> {
  return perProvider(name, value, providerIds, 'hours', '{"temboplus": 6}', (raw, label) => {
    if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 1 || raw > MAX_ALARM_RANGE_HOURS) {
      throw new Error(`${label} must be an integer from 1 to ${MAX_ALARM_RANGE_HOURS} (hours; CloudWatch evaluates at most 7 days), got ${JSON.stringify(raw)}`);
    }
    return raw;
  });
}

/**
 * `staleAlarmThresholds`: per provider id, the stale subjects in 5 minutes that raise its Stale
 * alarm, in `staleAlarmThreshold`'s range; a provider not named keeps `staleAlarmThreshold`.
 */
export function checkStaleThresholds(name: string, value: unknown, providerIds: readonly string[]): Readonly<Record<string, number>> {
  return perProvider(name, value, providerIds, 'thresholds', '{"identomat": 25}', (raw, label) => {
    if (typeof raw !== 'number') throw new Error(`${label} must be a number, got ${JSON.stringify(raw)}`);
    return checkSetting('staleAlarmThreshold', raw, label);
  });
}

/** The checks that involve two settings (each value already in its own range). */
export function checkSettingPairs(values: {
  readonly maxReceiveCount: number;
  readonly manyReceivesAlarmCount: number;
  readonly eventRetentionDays: number;
  readonly sensitiveRetentionHours: number;
}): void {
  if (values.manyReceivesAlarmCount > values.maxReceiveCount) {
    throw new Error(
      `manyReceivesAlarmCount (${values.manyReceivesAlarmCount}) must not exceed maxReceiveCount (${values.maxReceiveCount}): ` +
        'a record is never received more often than that before it moves to the DLQ, so the alarm could never fire',
    );
  }
  if (values.sensitiveRetentionHours > values.eventRetentionDays * 24) {
    throw new Error(
      `sensitiveRetentionHours (${values.sensitiveRetentionHours}) must not exceed eventRetentionDays × 24 (${values.eventRetentionDays * 24}): ` +
        'events carrying live codes or contacts are never kept longer than ordinary ones',
    );
  }
}

/** Most re-checks a schedule lists. */
const MAX_SCHEDULE_ENTRIES = 20;

/**
 * A reconcile schedule (`1m,5m,30m,2h,12h,1d,2d`): delays of at least a minute (the sweep runs every
 * minute), at most 7 days each, at most 20 of them.
 */
export function checkSchedule(name: string, value: unknown): string {
  const fail = (why: string): never => {
    throw new Error(`${name} must be delays such as 1m,5m,30m,2h,12h,1d,2d (each from 1m to 7d, at most ${MAX_SCHEDULE_ENTRIES}): ${why}, got ${JSON.stringify(value)}`);
  };
  if (typeof value !== 'string') return fail('not text');
  let delays: number[] = [];
  try {
    delays = parseSchedule(value);
  } catch (error) {
    fail((error as Error).message);
  }
  if (delays.length > MAX_SCHEDULE_ENTRIES) fail(`${delays.length} delays`);
  const bad = delays.find((seconds) => seconds < 60 || seconds > 7 * 86_400);
  if (bad !== undefined) fail(`${bad} s is outside 1m–7d`);
  return value;
}

/**
 * A host name as API Gateway takes one for a custom domain, and as the certificate and DNS name it:
 * lower case, two labels or more of 1 to 63 letters, digits or hyphens (none first or last), 253
 * characters at most, no trailing dot, a top-level label that is not all digits (an IP address is
 * no domain). A wildcard (`*.example.com`) is refused: the stack maps one name to its API.
 */
export function checkDomainName(name: string, value: unknown): string {
  const allowed = 'a lower-case domain name such as "callbacks.example.com" (labels of 1 to 63 letters, digits or hyphens, not starting or ending with a hyphen, at least two, 253 characters at most, no trailing dot)';
  const fail = (why: string): never => {
    throw new Error(`${name} must be ${allowed}: ${why}, got ${JSON.stringify(value)}`);
  };
  if (typeof value !== 'string') return fail('not text');
  // `-c domainName=` with an unset variable: said as such, not as a name of one (empty) label.
  if (value.trim() === '') fail('empty');
  if (value.length > 253) fail(`${value.length} characters`);
  if (value !== value.toLowerCase()) fail('upper-case letters (DNS names are written in lower case here, as API Gateway stores them)');
  if (value.endsWith('.')) fail('a trailing dot');
  if (value.startsWith('*')) fail('a wildcard (the stack maps one name to its API)');
  const labels = value.split('.');
  if (labels.length < 2) fail('a single label');
  const bad = labels.find((label) => !/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(label));
  if (bad !== undefined) fail(bad === '' ? 'an empty label (two dots in a row, or one at the start)' : `the label ${JSON.stringify(bad)}`);
  if (/^\d+$/.test(labels[labels.length - 1])) fail('an IP address, not a name');
  return value;
}

/** An ACM certificate's ARN: arn:<partition>:acm:<region>:<account>:certificate/<id>; its parts. */
const CERTIFICATE_ARN = /^arn:(aws|aws-cn|aws-us-gov):acm:([a-z]{2}(?:-[a-z]+)+-\d):(\d{12}):certificate\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/**
 * `certificateArn`: an ACM certificate's ARN (`arn:aws:acm:eu-west-1:123456789012:certificate/<uuid>`).
 * A certificate of the regional custom domain must be in the API's region:
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-regional-api-custom-domain-create.html
 */
export function checkCertificateArn(name: string, value: unknown): string {
  const parts = typeof value === 'string' ? CERTIFICATE_ARN.exec(value) : null;
  if (typeof value !== 'string' || !parts) {
    throw new Error(
      `${name} must be the ARN of an ACM certificate in the stack's region, such as "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-…" ` +
        `(ACM's ARN: partition, acm, region, 12-digit account, certificate/ and the certificate's id), got ${JSON.stringify(value)}`,
    );
  }
  // A partition holds its own regions only: such an ARN names no certificate at all, and would
  // otherwise fail only at deploy, once API Gateway looks it up.
  const [, partition, region] = parts;
  const regionPartition = region.startsWith('cn-') ? 'aws-cn' : region.startsWith('us-gov-') ? 'aws-us-gov' : 'aws';
  if (partition !== regionPartition) {
    throw new Error(`${name} names the region ${region} in the partition ${partition}, which does not hold it (${region} is in ${regionPartition}: "arn:${regionPartition}:acm:${region}:…"), got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * A certificate from another region than the one the stack deploys to, refused with the reason:
 * API Gateway takes a regional custom domain's certificate from the API's own region only.
 */
export function checkCertificateRegion(certificateArn: string, region: string, domainName: string, where: string): void {
  const certificateIn = certificateRegion(certificateArn);
  if (certificateIn === region) return;
  throw new Error(
    `certificateArn names a certificate in ${certificateIn}, but ${where} ${region}: a regional custom domain takes a certificate ` +
      `from its own region only. Request or import the certificate for ${domainName} in ACM in ${region}`,
  );
}

/** The region an ACM certificate ARN names (checked by checkCertificateArn). */
export function certificateRegion(arn: string): string {
  return CERTIFICATE_ARN.exec(arn)?.[2] ?? '';
}

/**
 * `hostedZoneId`: a Route 53 hosted zone's id as the console and `aws route53 list-hosted-zones`
 * show it without its `/hostedzone/` prefix: Z and up to 31 upper-case letters or digits.
 * https://docs.aws.amazon.com/Route53/latest/APIReference/API_HostedZone.html
 */
export function checkHostedZoneId(name: string, value: unknown): string {
  if (typeof value !== 'string' || !/^Z[A-Z0-9]{1,31}$/.test(value)) {
    const hint = typeof value === 'string' && value.startsWith('/hostedzone/') ? ` (leave out "/hostedzone/": ${JSON.stringify(value.slice('/hostedzone/'.length))})` : '';
    throw new Error(`${name} must be a Route 53 hosted zone id such as "Z0123456789ABCDEFGHIJ" (Z and up to 31 upper-case letters or digits)${hint}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** `disableExecuteApiEndpoint`: true or false (`-c` gives it as text). */
export function checkBoolean(name: string, value: unknown): boolean {
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new Error(`${name} must be true or false, got ${JSON.stringify(value)}`);
}

/** The settings of the custom domain, as given (each already checked on its own). */
export interface CustomDomainSettings {
  readonly domainName?: string;
  readonly certificateArn?: string;
  readonly hostedZoneId?: string;
  readonly hostedZoneName?: string;
  readonly disableExecuteApiEndpoint?: boolean;
}

/**
 * The custom domain's settings together: a name needs its certificate and a certificate its name; a
 * hosted zone is given by its id and its name together, and must hold the domain (Route 53 refuses
 * a record outside its zone, but only at deploy, once the custom domain exists: the zone's name
 * lets the synth say so first); the default endpoint is disabled only where a custom domain answers
 * instead (otherwise the API would answer nothing at all).
 */
export function checkCustomDomain(values: CustomDomainSettings): void {
  const { domainName, certificateArn, hostedZoneId, hostedZoneName, disableExecuteApiEndpoint } = values;
  if (domainName !== undefined && certificateArn === undefined) {
    throw new Error(`domainName=${domainName} needs certificateArn: the ARN of an ACM certificate for ${domainName} in the stack's region (API Gateway serves the domain with it)`);
  }
  if (certificateArn !== undefined && domainName === undefined) {
    throw new Error('certificateArn is set without domainName: set domainName to the name the certificate covers (e.g. "callbacks.example.com"), or remove certificateArn');
  }
  if ((hostedZoneId === undefined) !== (hostedZoneName === undefined)) {
    const [given, missing] = hostedZoneId === undefined ? ['hostedZoneName', 'hostedZoneId'] : ['hostedZoneId', 'hostedZoneName'];
    throw new Error(`${given} is set without ${missing}: the stack creates the DNS record only with both (the zone's id, and its name, e.g. "example.com"), or neither`);
  }
  if (hostedZoneId !== undefined && domainName === undefined) {
    throw new Error('hostedZoneId and hostedZoneName are set without domainName: they say where to create the DNS record of domainName; set domainName and certificateArn, or remove them');
  }
  if (domainName !== undefined && hostedZoneName !== undefined && domainName !== hostedZoneName && !domainName.endsWith(`.${hostedZoneName}`)) {
    throw new Error(`domainName ${domainName} is not in the hosted zone ${hostedZoneName} (hostedZoneName): Route 53 takes only records of names in the zone; name the zone that holds ${domainName}`);
  }
  if (disableExecuteApiEndpoint === true && domainName === undefined) {
    throw new Error('disableExecuteApiEndpoint=true needs domainName: without a custom domain the API would answer no URL at all, and every callback would be lost');
  }
}
