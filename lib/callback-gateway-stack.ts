import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { secretEnvName } from '../functions/core/secrets.ts';
import { providers } from '../functions/providers/index.ts';
import { CallbackApi } from './callback-api.ts';
import { CallbackQueue } from './callback-queue.ts';
import { CallbackTable } from './callback-table.ts';
import { acknowledgeNagFindings } from './nag-acknowledgements.ts';
import { PipelineAlarms } from './pipeline-alarms.ts';
import { ProviderIngress, secretDescription } from './provider-ingress.ts';
import { checkEmail, checkSetting, type NumericSetting } from './validate.ts';

export interface CallbackGatewayStackProps extends StackProps {
  /**
   * E-mail address subscribed to the alarm topic.
   * @default - no subscription
   */
  readonly alarmEmail?: string;
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
   * Hours events carrying live codes or links (Identomat OTP/link instructions) are kept.
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
}

/**
 * The callback gateway: HTTP API → one ingest function per provider → SQS → worker → DynamoDB,
 * with alarms. Everything provider-specific comes from the registry in functions/providers/.
 */
export class CallbackGatewayStack extends Stack {
  public readonly api: CallbackApi;
  public readonly table: CallbackTable;
  public readonly pipeline: CallbackQueue;
  public readonly ingresses: readonly ProviderIngress[];
  public readonly alarms: PipelineAlarms;

  constructor(scope: Construct, id: string, props: CallbackGatewayStackProps = {}) {
    super(scope, id, props);
    // Checked before anything is built (bundling takes seconds): a bad value fails at once.
    validateStackProps(props);

    this.table = new CallbackTable(this, 'Table');
    this.pipeline = new CallbackQueue(this, 'Pipeline', {
      table: this.table.table,
      maxReceiveCount: props.maxReceiveCount,
      eventRetentionDays: props.eventRetentionDays,
      sensitiveRetentionHours: props.sensitiveRetentionHours,
    });
    this.api = new CallbackApi(this, 'Api', {
      throttleRateLimit: props.throttleRateLimit,
      throttleBurstLimit: props.throttleBurstLimit,
    });

    this.ingresses = providers.map(
      (provider) => new ProviderIngress(this, `${pascal(provider.id)}Ingress`, { provider, api: this.api, queue: this.pipeline.queue }),
    );

    // Providers with a status endpoint (TemboPlus) are asked before a callback is believed: the
    // worker needs their secret, and only theirs.
    for (const ingress of this.ingresses) {
      if (!ingress.provider.confirm) continue;
      ingress.secret.grantRead(this.pipeline.worker);
      this.pipeline.worker.addEnvironment(secretEnvName(ingress.provider), ingress.secret.secretArn);
    }

    this.alarms = new PipelineAlarms(this, 'Alarms', {
      queue: this.pipeline.queue,
      deadLetterQueue: this.pipeline.deadLetterQueue,
      api: this.api.httpApi,
      worker: this.pipeline.worker,
      alarmEmail: props.alarmEmail,
    });

    this.addOutputs();
    acknowledgeNagFindings(this);
  }

  private addOutputs() {
    for (const { provider, secret } of this.ingresses) {
      const name = pascal(provider.id);
      const field = provider.generatedSecretField;
      const tokenHint =
        field && provider.route.path.includes(`{${field}}`)
          ? ` Replace {${field}} with the "${field}" field of the secret named in ${name}SecretName.`
          : '';
      new CfnOutput(this, `${name}CallbackUrl`, {
        description: `${provider.displayName} callback URL (${provider.route.method}).${tokenHint}`,
        value: this.api.urlFor(provider.route.path),
      });
      new CfnOutput(this, `${name}SecretName`, {
        description: secretDescription(provider),
        value: secret.secretName,
      });
    }
    new CfnOutput(this, 'TableName', { description: 'DynamoDB table with state and event items', value: this.table.table.tableName });
    new CfnOutput(this, 'QueueUrl', { description: 'Queue between ingest and worker', value: this.pipeline.queue.queueUrl });
    new CfnOutput(this, 'DeadLetterQueueUrl', {
      description: 'Callbacks the worker gave up on (redrive after fixing the cause)',
      value: this.pipeline.deadLetterQueue.queueUrl,
    });
    new CfnOutput(this, 'AlarmTopicArn', { description: 'SNS topic the alarms publish to', value: this.alarms.topic.topicArn });
  }
}

/** The stack's numeric settings (the constructs check them again; checking here fails sooner). */
export const NUMERIC_STACK_SETTINGS = [
  'maxReceiveCount',
  'eventRetentionDays',
  'sensitiveRetentionHours',
  'throttleRateLimit',
  'throttleBurstLimit',
] as const satisfies readonly (NumericSetting & keyof CallbackGatewayStackProps)[];

function validateStackProps(props: CallbackGatewayStackProps) {
  if (props.alarmEmail !== undefined) checkEmail('alarmEmail', props.alarmEmail);
  for (const name of NUMERIC_STACK_SETTINGS) {
    const value = props[name];
    if (value !== undefined) checkSetting(name, value);
  }
}

/** `temboplus` → `Temboplus`: construct ids and output names. */
function pascal(id: string): string {
  return id.charAt(0).toUpperCase() + id.slice(1);
}
