import { Duration, RemovalPolicy, SecretValue } from 'aws-cdk-lib';
import { HttpMethod, type HttpRoute } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { ILogGroup } from 'aws-cdk-lib/aws-logs';
import { Secret, type SecretProps } from 'aws-cdk-lib/aws-secretsmanager';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { MAX_BODY_BYTES } from '../functions/core/pipeline-definition.ts';
import { secretEnvName } from '../functions/core/secrets.ts';
import type { AnyProvider } from '../functions/providers/index.ts';
import type { CallbackApi } from './callback-api.ts';
import { DEFAULT_SECRET_CACHE_SECONDS, GatewayFunction, handlerEntry } from './gateway-function.ts';
import { initialSecretOf } from './secret-templates.ts';
import { checkSetting } from './validate.ts';

export interface ProviderIngressProps {
  /** The provider from the registry in functions/providers/index.ts. */
  readonly provider: AnyProvider;
  /** The API the provider's route is added to. */
  readonly api: CallbackApi;
  /** Where accepted callbacks go; the function may only send to it. */
  readonly queue: IQueue;
  /**
   * Largest body (or query string) accepted; larger ones are answered 413 and never queued.
   * @default MAX_BODY_BYTES (256 KiB)
   */
  readonly maxBodyBytes?: number;
  /**
   * Seconds the function keeps using the secret it read: after a secret changes, the old values
   * are still used for up to this long (a rotation waits this long before the provider switches).
   * @default 300
   */
  readonly secretCacheSeconds?: number;
}

/**
 * One provider's way in: its Secrets Manager secret, its ingest function (which can read that
 * secret and send to the queue, nothing else), and its route on the API.
 */
export class ProviderIngress extends Construct {
  public readonly provider: AnyProvider;
  public readonly secret: Secret;
  public readonly function: NodejsFunction;
  public readonly route: HttpRoute;
  /** The ingest function's log group (the metric filters read it). */
  public readonly logGroup: ILogGroup;

  constructor(scope: Construct, id: string, props: ProviderIngressProps) {
    super(scope, id);
    const { provider } = props;
    this.provider = provider;
    const maxBodyBytes = checkSetting('maxBodyBytes', props.maxBodyBytes ?? MAX_BODY_BYTES);
    const secretCacheSeconds = checkSetting('secretCacheSeconds', props.secretCacheSeconds ?? DEFAULT_SECRET_CACHE_SECONDS);

    this.secret = new Secret(this, 'Secret', {
      description: secretDescription(provider),
      ...secretContent(provider),
      // Filled-in credentials and the path tokens providers were told outlive the stack:
      // `cdk destroy` leaves the secret (README, "Tear down").
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const ingest = new GatewayFunction(this, 'Ingest', {
      entry: handlerEntry('ingest'),
      description: `Callback gateway ingest for ${provider.displayName}: authenticate, validate, queue`,
      // One HMAC or constant-time compare, a zod parse and one SQS send: 256 MB is plenty, and
      // still gives enough CPU for a quick cold start (the provider is waiting for the answer).
      memorySize: 256,
      timeout: Duration.seconds(10),
      environment: {
        PROVIDER_ID: provider.id,
        QUEUE_URL: props.queue.queueUrl,
        // The ARN rather than the name: unambiguous, and the grant below is on exactly this ARN.
        [secretEnvName(provider)]: this.secret.secretArn,
        // Set here rather than left to the handlers' defaults, so the template shows the limits.
        MAX_BODY_BYTES: String(maxBodyBytes),
        SECRET_CACHE_SECONDS: String(secretCacheSeconds),
      },
    });
    this.function = ingest.function;
    this.logGroup = ingest.logGroup;
    this.secret.grantRead(this.function);
    props.queue.grantSendMessages(this.function);

    this.route = props.api.addRoute(
      this,
      HttpMethod[provider.route.method],
      provider.route.path,
      new HttpLambdaIntegration('Integration', this.function),
    );
  }
}

/** What the secret holds and what the user has to do with it (shown in the console and outputs). */
export function secretDescription(provider: AnyProvider): string {
  const fields = Object.keys(provider.secretPlaceholder);
  const generated = provider.generatedSecretField;
  const toFill = fields.filter((field) => field !== generated && provider.secretPlaceholder[field] === 'REPLACE_ME');
  return [
    `${provider.displayName} callback secret, JSON {${fields.join(', ')}}.`,
    toFill.length > 0 ? `Fill ${toFill.join(', ')} from the provider console.` : '',
    generated ? `${generated} is generated: it replaces {${generated}} in the callback URL.` : '',
    // Rotation without downtime: functions/providers/secret-schema.ts accepts the old values here.
    'To rotate, put the old values under "previous" beside the new ones; both are accepted until you remove "previous".',
  ]
    .filter(Boolean)
    .join(' ');
}

/**
 * The secret's first value, from the frozen table in lib/secret-templates.ts and never from the
 * provider's current `secretPlaceholder`: CloudFormation rewrites (or regenerates) the value when
 * this property changes, which would reset the credentials the user filled in and the path tokens
 * the providers were told. Path tokens are 40 letters and digits (about 238 bits).
 */
function secretContent(provider: AnyProvider): Pick<SecretProps, 'generateSecretString' | 'secretStringValue'> {
  const initial = initialSecretOf(provider);
  if ('secretString' in initial) return { secretStringValue: SecretValue.unsafePlainText(initial.secretString) };
  const { template, key, length } = initial.generate;
  return {
    generateSecretString: {
      secretStringTemplate: template,
      generateStringKey: key,
      excludePunctuation: true,
      passwordLength: length,
    },
  };
}
