import { Annotations, Aws, type CfnElement, CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { IEventBus } from 'aws-cdk-lib/aws-events';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { QUEUE } from '../functions/core/pipeline-definition.ts';
import { secretEnvName } from '../functions/core/secrets.ts';
import { getProvider, providers } from '../functions/providers/index.ts';
import { workerReadsSecret } from '../functions/providers/provider.ts';
import { CallbackApi } from './callback-api.ts';
import { CallbackQueue } from './callback-queue.ts';
import { CallbackTable } from './callback-table.ts';
import { EventOutlet } from './event-outlet.ts';
import { LogMetrics } from './log-metrics.ts';
import { LogQueries } from './log-queries.ts';
import { acknowledgeNagFindings } from './nag-acknowledgements.ts';
import { PipelineAlarms } from './pipeline-alarms.ts';
import { PipelineDashboard } from './pipeline-dashboard.ts';
import { Reconciliation } from './reconciliation.ts';
import { ProviderIngress, secretDescription } from './provider-ingress.ts';
import {
  type ApplicationLogLevelSetting,
  checkChoice,
  checkDeployedProviders,
  checkEmail,
  checkCountryCodes,
  checkProviders,
  checkSchedule,
  checkSetting,
  checkSettingPairs,
  checkBoolean,
  checkCertificateArn,
  checkCustomDomain,
  checkDomainName,
  checkHostedZoneId,
  NUMERIC_SETTINGS,
  type NumericSetting,
  providerIdsOf,
  SETTING_DEFAULTS,
  SMS_RELAYS,
  type SmsRelaySetting,
  type SystemLogLevelSetting,
} from './validate.ts';
import { pascal } from './names.ts';
import type { FunctionLogging } from './gateway-function.ts';
import { SmsRelay } from './sms-relay.ts';

export interface CallbackGatewayStackProps extends StackProps {
  /**
   * The stage this stack is (`-c stage=prod`): names that people look up (the dashboard, secrets,
   * saved queries) carry it, so two stages in one account never collide.
   * @default - the default stage (stack `CallbackGateway`, names as they always were)
   */
  readonly stage?: string;
  /**
   * E-mail address subscribed to the alarm topic.
   * @default - no subscription
   */
  readonly alarmEmail?: string;
  /**
   * The providers deployed, ids separated by commas (`telesign,identomat`): each gets its route,
   * ingest function, secret, alarms and dashboard widgets; the others get nothing.
   * @default - every provider of the registry
   */
  readonly providers?: string;
  /**
   * Receives of a queued callback before it moves to the dead-letter queue.
   * @default 5 (QUEUE.maxReceiveCount)
   */
  readonly maxReceiveCount?: number;
  /**
   * Days event items are kept.
   * @default 90 (RETENTION.eventDays)
   */
  readonly eventRetentionDays?: number;
  /**
   * Hours events carrying live codes or links (instructions: one-time codes, links) are kept.
   * @default 24 (RETENTION.sensitiveHours)
   */
  readonly sensitiveRetentionHours?: number;
  /**
   * Steady-state requests per second allowed on each route.
   * @default 200
   */
  readonly throttleRateLimit?: number;
  /**
   * Burst of requests allowed on each route.
   * @default 400
   */
  readonly throttleBurstLimit?: number;
  /**
   * Largest callback body (or query string) accepted; larger ones get 413. Can only be lowered.
   * @default 262144 (MAX_BODY_BYTES)
   */
  readonly maxBodyBytes?: number;
  /**
   * Seconds a function keeps using a secret it read. A rotation waits this long after adding the
   * new values before switching the provider to them.
   * @default 300
   */
  readonly secretCacheSeconds?: number;
  /**
   * Days every log group of the stack keeps its lines (one of CloudWatch Logs' periods).
   * @default 30
   */
  readonly logRetentionDays?: number;
  /**
   * Age in seconds of the oldest queued callback that raises the OldestMessageTooOld alarm.
   * @default 900
   */
  readonly maxMessageAgeSeconds?: number;
  /**
   * 401 answers per provider in 5 minutes above which its Unauthorized alarm fires.
   * @default 20
   */
  readonly unauthorizedAlarmThreshold?: number;
  /**
   * Callbacks contradicted by the provider's status endpoint in 5 minutes that raise the alarm.
   * @default 1
   */
  readonly mismatchAlarmThreshold?: number;
  /**
   * Callbacks unknown to the provider's status endpoint in 5 minutes that raise the alarm.
   * @default 1
   */
  readonly notFoundAlarmThreshold?: number;
  /**
   * Worker functions the SQS event source runs at once (2–1000).
   * @default 5
   */
  readonly workerMaxConcurrency?: number;
  /**
   * Requests answered 429 by API Gateway's throttling in 5 minutes that raise the alarm.
   * @default 1
   */
  readonly apiThrottledAlarmThreshold?: number;
  /**
   * Throttled Lambda invocations (all ingest functions together, or the worker) in 5 minutes that raise the alarm.
   * @default 1
   */
  readonly lambdaThrottleAlarmThreshold?: number;
  /**
   * Throttled table and index requests in 5 minutes that raise the alarm.
   * @default 1
   */
  readonly tableThrottleAlarmThreshold?: number;
  /**
   * The receive count at which a record that failed again raises the alarm.
   * @default 4: the first receive on which the worker plans no retry (SETTING_DEFAULTS.manyReceivesAlarmCount)
   */
  readonly manyReceivesAlarmCount?: number;
  /**
   * Hours without an accepted callback after which a provider's silence alarm fires, per provider id.
   * @default - no silence alarm
   */
  readonly silenceAlarmHours?: Readonly<Record<string, number>>;
  /**
   * Per provider id, the stale subjects in 5 minutes that raise its Stale alarm, where
   * `staleAlarmThreshold` does not suit it (Identomat: sessions people abandon go stale too).
   * @default - every provider: staleAlarmThreshold
   */
  readonly staleAlarmThresholds?: Readonly<Record<string, number>>;
  /**
   * Delays before each re-check of a subject that is not settled (each at least 1m).
   * @default '1m,5m,30m,2h,12h,1d,2d'
   */
  readonly reconcileSchedule?: string;
  /**
   * Longest a subject is reconciled before it is stale (a provider's own horizon may be shorter).
   * @default 168
   */
  readonly reconcileHorizonHours?: number;
  /**
   * Subjects of one provider gone stale in 5 minutes that raise its Stale alarm.
   * @default 1
   */
  readonly staleAlarmThreshold?: number;
  /**
   * Lambda's application log level (advanced logging controls); the logger drops lines below it.
   * @default INFO
   */
  readonly applicationLogLevel?: ApplicationLogLevelSetting;
  /**
   * Lambda's system log level: WARN drops the START and REPORT lines of every invocation.
   * @default WARN
   */
  readonly systemLogLevel?: SystemLogLevelSetting;
  /**
   * Who sends the SMS instructions providers give (a verification code to text): `off` (they are
   * only published as events), or the id of a provider that sends messages, with its secret's
   * credentials.
   * @default 'off'
   */
  readonly smsRelay?: SmsRelaySetting;
  /**
   * Seconds after receipt past which the SMS relay does not send a one-time code (recorded expired).
   * @default 300
   */
  readonly relayMaxAgeSeconds?: number;
  /**
   * The countries the SMS relay sends to: `any`, or country calling codes separated by commas
   * (`995,255`); a number elsewhere is recorded refused and not sent.
   * @default 'any'
   */
  readonly relayAllowedCountryCodes?: string;
  /**
   * SMS the relay sends to one number in one clock hour (UTC); past it an instruction is recorded
   * refused and not sent. 0: no cap.
   * @default 5
   */
  readonly relayMaxPerNumberPerHour?: number;
  /**
   * SMS the relay sent in an hour at which its RelaySentVolume alarm fires. 0: no alarm.
   * @default 0
   */
  readonly relaySentAlarmPerHour?: number;
  /**
   * A custom domain for the callback URLs (`callbacks.example.com`), with `certificateArn`: the
   * `<Provider>CallbackUrl` outputs are then on it, and survive a new API, stage, account or region.
   * @default - the API's own execute-api URL
   */
  readonly domainName?: string;
  /** An ACM certificate covering `domainName`, in the stack's region (with `domainName`). */
  readonly certificateArn?: string;
  /**
   * The Route 53 hosted zone (with `hostedZoneName`) in which the stack creates the alias record of
   * `domainName`.
   * @default - no record: the user points the name at the `CustomDomainTarget` output
   */
  readonly hostedZoneId?: string;
  /** The name of the `hostedZoneId` zone (`example.com`). */
  readonly hostedZoneName?: string;
  /**
   * Whether the API's own execute-api URL stops answering (only with `domainName`): every provider
   * must already use the custom domain's URL.
   * @default false
   */
  readonly disableExecuteApiEndpoint?: boolean;
}

/**
 * The callback gateway: HTTP API → one ingest function per provider → SQS → worker → DynamoDB,
 * whose change stream is published as events on an EventBridge bus, with alarms. Everything provider-specific comes from the registry in functions/providers/,
 * for the providers the `providers` setting deploys (every one by default).
 */
export class CallbackGatewayStack extends Stack {
  public readonly api: CallbackApi;
  public readonly table: CallbackTable;
  public readonly pipeline: CallbackQueue;
  public readonly ingresses: readonly ProviderIngress[];
  public readonly logMetrics: LogMetrics;
  public readonly logQueries: LogQueries;
  public readonly alarms: PipelineAlarms;
  public readonly dashboard: PipelineDashboard;
  public readonly reconciliation: Reconciliation;
  public readonly events: EventOutlet;
  /** The stage (undefined: the default stage). */
  public readonly stage?: string;
  /** The SMS relay, when `smsRelay` names a sender (undefined with `off`). */
  public readonly smsRelay?: SmsRelay;

  constructor(scope: Construct, id: string, props: CallbackGatewayStackProps = {}) {
    super(scope, id, props);
    this.stage = props.stage;
    // Checked before anything is built (bundling takes seconds): a bad value fails at once.
    validateStackProps(props);

    const logRetention = (props.logRetentionDays ?? SETTING_DEFAULTS.logRetentionDays) as RetentionDays;
    // A callback the worker gave up on waits in the DLQ up to its retention; the worker's lines that
    // say why it failed should be there for as long (DeadLetterQueueExpiring sends a person to them).
    if (logRetention < QUEUE.dlqRetentionDays) {
      Annotations.of(this).addWarningV2(
        'callback-gateway:log-retention-short',
        `logRetentionDays ${logRetention} is shorter than the dead-letter queue's ${QUEUE.dlqRetentionDays} days: a callback still waiting there ` +
          `may outlive the worker's log lines that say why it failed. ${QUEUE.dlqRetentionDays} or more keeps them as long as the callbacks.`,
      );
    }
    // In the registry's order, whatever order the setting names them in.
    const deployed = providerIdsOf(props.providers ?? SETTING_DEFAULTS.providers).map((id) => getProvider(id));
    const logging = { applicationLogLevel: props.applicationLogLevel, systemLogLevel: props.systemLogLevel, logRetention };
    this.table = new CallbackTable(this, 'Table');
    this.pipeline = new CallbackQueue(this, 'Pipeline', {
      table: this.table.table,
      maxReceiveCount: props.maxReceiveCount,
      eventRetentionDays: props.eventRetentionDays,
      sensitiveRetentionHours: props.sensitiveRetentionHours,
      secretCacheSeconds: props.secretCacheSeconds,
      workerMaxConcurrency: props.workerMaxConcurrency,
      smsRelay: props.smsRelay,
      logging,
    });
    this.api = new CallbackApi(this, 'Api', {
      accessLogRetention: logRetention,
      throttleRateLimit: props.throttleRateLimit,
      throttleBurstLimit: props.throttleBurstLimit,
      ...(props.domainName === undefined
        ? {}
        : {
            customDomain: {
              domainName: props.domainName,
              // Checked with domainName (validateStackProps): one is never given without the other.
              certificateArn: props.certificateArn!,
              ...(props.hostedZoneId === undefined ? {} : { hostedZone: { id: props.hostedZoneId, name: props.hostedZoneName! } }),
            },
          }),
      disableExecuteApiEndpoint: props.disableExecuteApiEndpoint,
    });

    this.ingresses = deployed.map(
      (provider) =>
        new ProviderIngress(this, `${pascal(provider.id)}Ingress`, {
          provider,
          api: this.api,
          queue: this.pipeline.queue,
          maxBodyBytes: props.maxBodyBytes,
          secretCacheSeconds: props.secretCacheSeconds,
          logging,
          // A stage's secrets are named after it; the default stage keeps the names CloudFormation
          // generated when it was first deployed (a new name would replace the secret, and a new
          // secret starts with a new token and none of the filled-in credentials).
          ...(props.stage === undefined ? {} : { secretName: `${this.stackName}/${provider.id}` }),
        }),
    );

    // The worker reads the secrets of providers it asks (TemboPlus's status endpoint) or whose
    // secret holds settings that decide what a status means (REL-ID's action labels), and only those.
    for (const ingress of this.ingresses) {
      if (!workerReadsSecret(ingress.provider)) continue;
      ingress.secret.grantRead(this.pipeline.worker);
      this.pipeline.worker.addEnvironment(secretEnvName(ingress.provider), ingress.secret.secretArn);
    }

    this.reconciliation = new Reconciliation(this, 'Reconciliation', {
      table: this.table.table,
      queue: this.pipeline.queue,
      worker: this.pipeline.worker,
      reconcileSchedule: props.reconcileSchedule,
      reconcileHorizonHours: props.reconcileHorizonHours,
      // Only with some providers left out: the sweep (and the worker's re-checks) then leave the
      // others' subjects alone, whose secrets the worker has no access to.
      ...(deployed.length < providers.length ? { providers: deployed.map((provider) => provider.id) } : {}),
      logging,
    });

    // Every change of a subject's state (and every instruction) as an event on the stack's own bus.
    this.events = new EventOutlet(this, 'Events', {
      table: this.table.table,
      eventBusName: this.stackName,
      providers: deployed,
      logging,
    });

    this.logMetrics = new LogMetrics(this, 'LogMetrics', {
      ingestLogs: this.ingresses.map((ingress) => ({ providerId: ingress.provider.id, logGroup: ingress.logGroup })),
      workerLogs: this.pipeline.workerLogs,
      accessLogs: this.api.accessLogs,
      publisherLogs: this.events.publisherLogs,
      confirmingProviderIds: this.ingresses.filter((ingress) => ingress.provider.lookup).map((ingress) => ingress.provider.id),
      // The stack's name (the stage's): a second gateway in the account counts apart.
      namespace: this.stackName,
      manyReceivesAlarmCount: props.manyReceivesAlarmCount,
    });
    this.logQueries = new LogQueries(this, 'LogQueries', {
      ingestLogs: this.ingresses.map((ingress) => ingress.logGroup),
      workerLogs: this.pipeline.workerLogs,
      accessLogs: this.api.accessLogs,
      manyReceivesAlarmCount: props.manyReceivesAlarmCount,
    });
    this.alarms = new PipelineAlarms(this, 'Alarms', {
      queue: this.pipeline.queue,
      deadLetterQueue: this.pipeline.deadLetterQueue,
      api: this.api.httpApi,
      worker: this.pipeline.worker,
      logMetrics: this.logMetrics,
      providers: this.ingresses.map((ingress) => ingress.provider),
      alarmEmail: props.alarmEmail,
      maxMessageAgeSeconds: props.maxMessageAgeSeconds,
      unauthorizedAlarmThreshold: props.unauthorizedAlarmThreshold,
      mismatchAlarmThreshold: props.mismatchAlarmThreshold,
      notFoundAlarmThreshold: props.notFoundAlarmThreshold,
      ingestFunctions: this.ingresses.map((ingress) => ingress.function),
      table: this.table.table,
      apiThrottledAlarmThreshold: props.apiThrottledAlarmThreshold,
      lambdaThrottleAlarmThreshold: props.lambdaThrottleAlarmThreshold,
      tableThrottleAlarmThreshold: props.tableThrottleAlarmThreshold,
      silenceAlarmHours: props.silenceAlarmHours,
      staleAlarmThresholds: props.staleAlarmThresholds,
      staleAlarmThreshold: props.staleAlarmThreshold,
      sweep: this.reconciliation.sweep,
      events: {
        deadLetterQueue: this.events.deadLetterQueue,
        publisher: this.events.publisher,
        publishFailures: this.logMetrics.publishFailures!,
        stateChanges: this.logMetrics.stateChanges!,
      },
    });
    // SMS instructions sent by the provider `smsRelay` names (nothing with `off`); built before the
    // dashboard, which shows its alarms with the others.
    this.smsRelay = this.addSmsRelay(props, this.events.bus, logging);
    this.dashboard = new PipelineDashboard(this, 'Dashboard', {
      // Dashboards are global to the account, not regional: the region is part of the name, so the
      // same stage deployed in a second region gets its own dashboard instead of failing.
      dashboardName: `${this.stackName}-${Aws.REGION}`,
      api: this.api.httpApi,
      ingests: this.ingresses,
      queue: this.pipeline.queue,
      deadLetterQueue: this.pipeline.deadLetterQueue,
      worker: this.pipeline.worker,
      table: this.table.table,
      logMetrics: this.logMetrics,
      logQueries: this.logQueries,
      alarms: [...this.alarms.alarms, ...(this.smsRelay?.alarms ?? [])],
      events: { publisher: this.events.publisher, deadLetterQueue: this.events.deadLetterQueue },
      ...(this.smsRelay ? { relay: { metrics: this.smsRelay.metrics, function: this.smsRelay.function, deadLetterQueue: this.smsRelay.deadLetterQueue } } : {}),
    });

    this.addOutputs();
    acknowledgeNagFindings(this);
  }

  /**
   * The SMS relay on the gateway's event bus, when `smsRelay` names a sender (`off`: nothing is
   * added): a rule taking SMS instructions to the relay queue and function, which sends
   * them with the sender's secret; its alarms go to the gateway's alarm topic; its queues are stack
   * outputs.
   */
  private addSmsRelay(settings: CallbackGatewayStackProps, eventBus: IEventBus, logging: FunctionLogging): SmsRelay | undefined {
    const { smsRelay } = settings;
    if (smsRelay === undefined || smsRelay === 'off') return undefined;
    const sender = this.ingresses.find((ingress) => ingress.provider.id === smsRelay);
    if (!sender?.provider.sendMessage) throw new Error(`smsRelay names "${smsRelay}", which is not a provider that sends messages`);
    const relay = new SmsRelay(this, 'SmsRelay', {
      eventBus,
      table: this.table.table,
      sender: sender.provider,
      senderSecret: sender.secret,
      providers: this.ingresses.map((ingress) => ingress.provider),
      relayMaxAgeSeconds: settings.relayMaxAgeSeconds,
      relayAllowedCountryCodes: settings.relayAllowedCountryCodes,
      relayMaxPerNumberPerHour: settings.relayMaxPerNumberPerHour,
      relaySentAlarmPerHour: settings.relaySentAlarmPerHour,
      eventRetentionDays: settings.eventRetentionDays,
      secretCacheSeconds: settings.secretCacheSeconds,
      alarmTopic: this.alarms.topic,
      namespace: this.stackName,
      logging,
    });
    // On an upgrade the relay takes its new code before the publisher: the new relay reads the
    // instructions of the publisher's last version too (legacy eventIds), while the last relay,
    // given a new version's event, skipped it as not stored and its code was never sent.
    this.events.updateAfter(relay.function.node.defaultChild as CfnElement);
    new CfnOutput(this, 'RelayQueueUrl', { description: `SMS instructions waiting for the relay (sent through ${sender.provider.displayName})`, value: relay.queue.queueUrl });
    new CfnOutput(this, 'RelayDeadLetterQueueUrl', {
      description: 'SMS instructions the relay gave up on (redrive after fixing the cause: old codes are then recorded expired, not sent)',
      value: relay.deadLetterQueue.queueUrl,
    });
    return relay;
  }

  private addOutputs() {
    for (const { provider, secret } of this.ingresses) {
      const name = pascal(provider.id);
      const field = provider.generatedSecretField;
      const token = provider.route.tokenParameter;
      const tokenHint = field && token ? ` Replace {${token}} with the "${field}" field of the secret named in ${name}SecretName.` : '';
      const otherHints = Object.entries(provider.routeParameterHelp ?? {}).map(([parameter, help]) => ` Replace {${parameter}} with ${help}.`).join('');
      new CfnOutput(this, `${name}CallbackUrl`, {
        description: `${provider.displayName} callback URL (${provider.route.method}).${tokenHint}${otherHints}`,
        value: this.api.urlFor(provider.route.path),
      });
      new CfnOutput(this, `${name}SecretName`, {
        description: secretDescription(provider),
        value: secret.secretName,
      });
    }
    const customDomain = this.api.customDomain;
    if (customDomain && !customDomain.record) {
      new CfnOutput(this, 'CustomDomainTarget', {
        description: `Where the DNS record of ${customDomain.name} must point (a CNAME to it; or, in Route 53, an alias to this API Gateway domain): the callback URLs answer on ${customDomain.name} once it does`,
        value: customDomain.target,
      });
    }
    new CfnOutput(this, 'TableName', { description: 'DynamoDB table with state and event items', value: this.table.table.tableName });
    new CfnOutput(this, 'QueueUrl', { description: 'Queue between ingest and worker', value: this.pipeline.queue.queueUrl });
    new CfnOutput(this, 'DeadLetterQueueUrl', {
      description: 'Callbacks the worker gave up on (redrive after fixing the cause)',
      value: this.pipeline.deadLetterQueue.queueUrl,
    });
    new CfnOutput(this, 'EventBusName', {
      description: 'EventBridge bus the gateway publishes "Callback Status Changed" and "Callback Instruction" to (source callback-gateway); add your rules here',
      value: this.events.bus.eventBusName,
    });
    new CfnOutput(this, 'EventBusArn', { description: 'ARN of the event bus (for rules and permissions in other stacks or accounts)', value: this.events.bus.eventBusArn });
    new CfnOutput(this, 'EventsDeadLetterQueueUrl', {
      description: 'What names the changes the publisher gave up on (stream shard and sequence numbers) and the events the bus refused for what they hold; see the EventsDeadLetterQueueNotEmpty alarm',
      value: this.events.deadLetterQueue.queueUrl,
    });
    new CfnOutput(this, 'AlarmTopicArn', { description: 'SNS topic the alarms publish to', value: this.alarms.topic.topicArn });
    new CfnOutput(this, 'DashboardUrl', { description: 'CloudWatch dashboard of the pipeline, API to table', value: this.dashboard.url });
  }
}

/** The stack's numeric settings (the constructs check them again; checking here fails sooner). */
export const NUMERIC_STACK_SETTINGS = Object.keys(NUMERIC_SETTINGS) as NumericSetting[];

function validateStackProps(props: CallbackGatewayStackProps) {
  if (props.alarmEmail !== undefined) checkEmail('alarmEmail', props.alarmEmail);
  if (props.providers !== undefined) checkProviders('providers', props.providers);
  if (props.smsRelay !== undefined) checkChoice('smsRelay', props.smsRelay, SMS_RELAYS);
  if (props.reconcileSchedule !== undefined) checkSchedule('reconcileSchedule', props.reconcileSchedule);
  if (props.relayAllowedCountryCodes !== undefined) checkCountryCodes('relayAllowedCountryCodes', props.relayAllowedCountryCodes);
  for (const name of NUMERIC_STACK_SETTINGS) {
    const value = props[name];
    if (value !== undefined) checkSetting(name, value);
  }
  const value = (name: NumericSetting) => props[name] ?? SETTING_DEFAULTS[name];
  checkSettingPairs({
    maxReceiveCount: value('maxReceiveCount'),
    manyReceivesAlarmCount: value('manyReceivesAlarmCount'),
    eventRetentionDays: value('eventRetentionDays'),
    sensitiveRetentionHours: value('sensitiveRetentionHours'),
  });
  checkDeployedProviders({
    providers: props.providers ?? SETTING_DEFAULTS.providers,
    silenceAlarmHours: props.silenceAlarmHours,
    staleAlarmThresholds: props.staleAlarmThresholds,
    smsRelay: props.smsRelay,
  });
  if (props.domainName !== undefined) checkDomainName('domainName', props.domainName);
  if (props.certificateArn !== undefined) checkCertificateArn('certificateArn', props.certificateArn);
  if (props.hostedZoneId !== undefined) checkHostedZoneId('hostedZoneId', props.hostedZoneId);
  if (props.hostedZoneName !== undefined) checkDomainName('hostedZoneName', props.hostedZoneName);
  if (props.disableExecuteApiEndpoint !== undefined) checkBoolean('disableExecuteApiEndpoint', props.disableExecuteApiEndpoint);
  checkCustomDomain(props);
}
