import { Duration, SecretValue } from 'aws-cdk-lib';
import { HttpMethod, type HttpRoute } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { Secret, type SecretProps } from 'aws-cdk-lib/aws-secretsmanager';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { secretEnvName } from '../functions/core/secrets.ts';
import type { AnyProvider } from '../functions/providers/index.ts';
import type { CallbackApi } from './callback-api.ts';
import { GatewayFunction, handlerEntry } from './gateway-function.ts';

export interface ProviderIngressProps {
  /** The provider from the registry in functions/providers/index.ts. */
  readonly provider: AnyProvider;
  /** The API the provider's route is added to. */
  readonly api: CallbackApi;
  /** Where accepted callbacks go; the function may only send to it. */
  readonly queue: IQueue;
}

/** Length of generated path tokens (letters and digits: about 238 bits). */
const TOKEN_LENGTH = 40;

/**
 * One provider's way in: its Secrets Manager secret, its ingest function (which can read that
 * secret and send to the queue, nothing else), and its route on the API.
 */
export class ProviderIngress extends Construct {
  public readonly provider: AnyProvider;
  public readonly secret: Secret;
  public readonly function: NodejsFunction;
  public readonly route: HttpRoute;

  constructor(scope: Construct, id: string, props: ProviderIngressProps) {
    super(scope, id);
    const { provider } = props;
    this.provider = provider;

    this.secret = new Secret(this, 'Secret', {
      description: secretDescription(provider),
      ...secretContent(provider),
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
      },
    });
    this.function = ingest.function;
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
  ]
    .filter(Boolean)
    .join(' ');
}

/**
 * The secret's first value: the provider's placeholder JSON, with a generated random value for the
 * field the stack can make itself (path tokens). The placeholder holds no secret: the
 * provider-issued values are filled in by the user after the first deploy.
 *
 * Changing a provider's `secretPlaceholder` or `generatedSecretField` changes this property, and
 * CloudFormation would then overwrite the values the user filled in.
 */
function secretContent(provider: AnyProvider): Pick<SecretProps, 'generateSecretString' | 'secretStringValue'> {
  const field = provider.generatedSecretField;
  if (!field) return { secretStringValue: SecretValue.unsafePlainText(JSON.stringify(provider.secretPlaceholder)) };
  if (!(field in provider.secretPlaceholder)) {
    throw new Error(`provider ${provider.id}: generatedSecretField "${field}" is not a key of its secretPlaceholder`);
  }
  const { [field]: _generated, ...rest } = provider.secretPlaceholder;
  return {
    generateSecretString: {
      secretStringTemplate: JSON.stringify(rest),
      generateStringKey: field,
      // Letters and digits only: the token goes into a URL path unescaped.
      excludePunctuation: true,
      passwordLength: TOKEN_LENGTH,
    },
  };
}
