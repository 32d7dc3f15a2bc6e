import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { App, type CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import type { IConstruct } from 'constructs';
import { getProvider, providers, type AnyProvider } from '../../functions/providers/index.ts';
import { CallbackApi } from '../../lib/callback-api.ts';
import type { CallbackGatewayStack } from '../../lib/callback-gateway-stack.ts';
import { createGatewayApp } from '../../lib/gateway-app.ts';
import { REPO_ROOT } from '../../lib/gateway-function.ts';
import { ProviderIngress } from '../../lib/provider-ingress.ts';

/**
 * What survives: a secret's value survives every template change, and the secrets, the queues and
 * the table survive `cdk destroy`. Built without esbuild (nothing here is about a bundle).
 */

type Json = Record<string, any>;

const CDK_CONTEXT = (JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Json }).context;
const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

/**
 * Each deployed secret's first value, spelled out. These are what CloudFormation was given when
 * each secret was created; a different value here would make CloudFormation write the secret
 * again (or generate a new token), wiping what the user filled in. This list never changes; a new
 * provider adds its line.
 */
const FROZEN: Readonly<Record<string, Json>> = {
  telesign: { SecretString: '{"customerId":"REPLACE_ME","apiKey":"REPLACE_ME"}' },
  esms: { GenerateSecretString: { SecretStringTemplate: '{}', GenerateStringKey: 'token', ExcludePunctuation: true, PasswordLength: 40 } },
  temboplus: {
    GenerateSecretString: {
      SecretStringTemplate: '{"apiToken":"REPLACE_ME","baseUrl":"https://sandbox.temboplus.com"}',
      GenerateStringKey: 'token',
      ExcludePunctuation: true,
      PasswordLength: 40,
    },
  },
  relid: { GenerateSecretString: { SecretStringTemplate: '{}', GenerateStringKey: 'token', ExcludePunctuation: true, PasswordLength: 40 } },
  identomat: { SecretString: '{"callbackApiKey":"REPLACE_ME"}' },
  'standard-webhooks': { SecretString: '{"sources":"REPLACE_ME"}' },
};

let stack: CallbackGatewayStack;
let resources: Record<string, Json>;

before(() => {
  ({ stack } = createGatewayApp({ context: { ...CDK_CONTEXT, ...NO_BUNDLING } }));
  resources = Template.fromStack(stack).toJSON().Resources as Record<string, Json>;
});

function logicalId(construct: IConstruct): string {
  return stack.getLogicalId(construct.node.defaultChild as CfnElement);
}

/** How a secret's value is made: the two properties CloudFormation writes the value from. */
function valueSource(properties: Json): Json {
  const { SecretString, GenerateSecretString } = properties;
  return { ...(SecretString === undefined ? {} : { SecretString }), ...(GenerateSecretString === undefined ? {} : { GenerateSecretString }) };
}

/** One provider's ingress alone in a small stack, its secret's properties. */
function secretOf(provider: AnyProvider): Json {
  const small = new Stack(new App({ context: NO_BUNDLING }), 'IngressOnly');
  const ingress = new ProviderIngress(small, 'Ingress', { provider, api: new CallbackApi(small, 'Api'), queue: new Queue(small, 'Queue') });
  return Template.fromStack(small).toJSON().Resources[small.getLogicalId(ingress.secret.node.defaultChild as CfnElement)].Properties;
}

describe('a secret keeps its value whatever the template change', () => {
  test('each provider secret is made exactly as when it was first deployed (this list never changes)', () => {
    // act
    const secrets = Object.fromEntries(stack.ingresses.map((ingress) => [ingress.provider.id, valueSource(resources[logicalId(ingress.secret)].Properties)]));

    // assess
    assert.deepEqual(Object.keys(secrets).sort(), providers.map((provider) => provider.id).sort());
    for (const [id, source] of Object.entries(secrets)) {
      assert.deepEqual(source, FROZEN[id], `${id}: a different value source makes CloudFormation reset the deployed secret`);
    }
  });

  test('changing a provider\'s placeholder (fields, defaults) leaves its secret\'s value source as it was', () => {
    // prepare
    const temboplus = getProvider('temboplus');
    const telesign = getProvider('telesign');
    const changedTemboplus = { ...temboplus, secretPlaceholder: { ...temboplus.secretPlaceholder, baseUrl: 'https://api.temboplus.com', region: 'REPLACE_ME' } } as AnyProvider;
    const changedTelesign = { ...telesign, secretPlaceholder: { customerId: 'FILL_ME', apiKey: 'FILL_ME', extra: 'x' } } as AnyProvider;

    // act
    const before = [secretOf(temboplus), secretOf(telesign)].map(valueSource);
    const after = [secretOf(changedTemboplus), secretOf(changedTelesign)].map(valueSource);

    // assess
    assert.deepEqual(after, before);
    assert.deepEqual(after, [FROZEN.temboplus, FROZEN.telesign]);
  });

  test('a provider without a frozen first value fails the synth with the line to add', () => {
    // prepare
    const newcomer = { ...getProvider('relid'), id: 'newcomer', secretPlaceholder: { token: 'REPLACE_ME', label: 'REPLACE_ME' } } as AnyProvider;

    // act + assess
    assert.throws(
      () => secretOf(newcomer),
      (error: Error) =>
        error.message.includes('provider newcomer has no initial secret in lib/secret-templates.ts') &&
        error.message.includes('"newcomer": {"generate":{"template":"{\\"label\\":\\"REPLACE_ME\\"}","key":"token","length":40}}') &&
        error.message.includes('never edited afterwards'),
    );
  });

  test('a provider whose generated field changed fails the synth instead of regenerating its secret', () => {
    // prepare
    const esms = getProvider('esms');
    const renamed = { ...esms, generatedSecretField: 'pathToken', secretPlaceholder: { pathToken: 'REPLACE_ME' } } as AnyProvider;

    // act + assess
    assert.throws(() => secretOf(renamed), /provider esms now generates "pathToken", but its secret was created generating "token"/);
  });
});

describe('what holds data keeps its logical id', () => {
  /**
   * CloudFormation knows a resource by its logical id: a construct renamed or moved gets a new one,
   * and a deploy then creates a new, empty table, queue or secret (a secret with a new path token,
   * so every provider that calls with the old one is refused) while Retain orphans the old one. These
   * ids are what deployed stacks hold. This list never changes; a new provider adds its secret's line.
   */
  const DEPLOYED: Readonly<Record<string, string>> = {
    Table710B521B: 'AWS::DynamoDB::Table',
    PipelineQueueC13966F5: 'AWS::SQS::Queue',
    PipelineDeadLetterQueueF08023D6: 'AWS::SQS::Queue',
    EventsDeadLetterQueueC3DB07E1: 'AWS::SQS::Queue',
    TelesignIngressSecretE6680ABC: 'AWS::SecretsManager::Secret',
    EsmsIngressSecretFECBC19D: 'AWS::SecretsManager::Secret',
    TemboplusIngressSecret2955A6C7: 'AWS::SecretsManager::Secret',
    RelidIngressSecretC71251C5: 'AWS::SecretsManager::Secret',
    IdentomatIngressSecret941A6D37: 'AWS::SecretsManager::Secret',
    StandardWebhooksIngressSecret7C580881: 'AWS::SecretsManager::Secret',
  };

  test('the table, the retained queues and every provider secret have the logical ids deployed stacks know', () => {
    // act
    const retained = Object.fromEntries(
      Object.entries(resources)
        .filter(([, resource]) => resource.DeletionPolicy === 'Retain' && resource.Type !== 'AWS::Logs::LogGroup')
        .map(([id, resource]) => [id, resource.Type as string]),
    );

    // assess
    assert.deepEqual(retained, DEPLOYED);
    assert.equal(logicalId(stack.table.table), 'Table710B521B');
    assert.equal(logicalId(stack.pipeline.queue), 'PipelineQueueC13966F5');
  });
});

describe('cdk destroy', () => {
  test('the secrets, the queue, the dead-letter queues and the table are retained (deletion and replacement)', () => {
    // prepare
    const kept = [
      ...stack.ingresses.map((ingress) => ingress.secret),
      stack.pipeline.queue,
      stack.pipeline.deadLetterQueue,
      // It names the changes whose events the publisher gave up on.
      stack.events.deadLetterQueue,
      stack.table.table,
    ];

    for (const construct of kept) {
      // act
      const resource = resources[logicalId(construct)];

      // assess
      assert.equal(resource.DeletionPolicy, 'Retain', construct.node.path);
      assert.equal(resource.UpdateReplacePolicy, 'Retain', construct.node.path);
    }
  });

  test('nothing else holds data that a destroy would lose: every other retained resource is a log group', () => {
    // act
    const retained = Object.entries(resources)
      .filter(([, resource]) => resource.DeletionPolicy === 'Retain')
      .map(([, resource]) => resource.Type as string);

    // assess
    const expected = new Set(['AWS::SecretsManager::Secret', 'AWS::SQS::Queue', 'AWS::DynamoDB::Table', 'AWS::Logs::LogGroup']);
    assert.deepEqual([...new Set(retained)].filter((type) => !expected.has(type)), []);
    assert.equal(retained.filter((type) => type === 'AWS::SecretsManager::Secret').length, providers.length);
    assert.equal(retained.filter((type) => type === 'AWS::SQS::Queue').length, 3);
  });
});
