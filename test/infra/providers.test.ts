import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { secretEnvName } from '../../functions/core/secrets.ts';
import { getProvider, providers } from '../../functions/providers/index.ts';
import { workerReadsSecret } from '../../functions/providers/provider.ts';
import { createGatewayApp } from '../../lib/gateway-app.ts';
import { REPO_ROOT } from '../../lib/gateway-function.ts';
import { pascal } from '../../lib/names.ts';

/**
 * The `providers` setting: a stack deploys the route, ingest function, secret, alarms, metrics,
 * widgets and outputs of the providers it names, and nothing of the others; without it, every
 * provider, exactly as before the setting existed. Built without esbuild (nothing here is about a bundle).
 */

type Json = Record<string, any>;

const CDK_CONTEXT = (JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Json }).context;
const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };
const ALL = providers.map((provider) => provider.id);

function synth(commandLine: Json = {}, settings: Json = CDK_CONTEXT.settings) {
  const { stack } = createGatewayApp({ context: { ...CDK_CONTEXT, settings, ...NO_BUNDLING, ...commandLine } });
  return { stack, json: Template.fromStack(stack).toJSON() as Json };
}

const resourcesOf = (json: Json, type: string): [string, Json][] => Object.entries(json.Resources as Record<string, Json>).filter(([, r]) => r.Type === type);

function countsByType(json: Json): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const resource of Object.values(json.Resources as Record<string, Json>)) counts[resource.Type] = (counts[resource.Type] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
}

/** What the stack deployed before the setting existed (every provider): a plain upgrade must change none of it. */
const BEFORE_THE_SETTING = {
  'AWS::ApiGatewayV2::Api': 1,
  'AWS::ApiGatewayV2::Integration': 6,
  'AWS::ApiGatewayV2::Route': 6,
  'AWS::ApiGatewayV2::Stage': 1,
  'AWS::CloudWatch::Alarm': 44,
  'AWS::CloudWatch::Dashboard': 1,
  'AWS::DynamoDB::Table': 1,
  'AWS::Events::EventBus': 1,
  'AWS::Events::Rule': 1,
  'AWS::IAM::Policy': 9,
  'AWS::IAM::Role': 9,
  'AWS::Lambda::EventInvokeConfig': 1,
  'AWS::Lambda::EventSourceMapping': 2,
  'AWS::Lambda::Function': 9,
  'AWS::Lambda::Permission': 7,
  'AWS::Logs::LogGroup': 10,
  'AWS::Logs::MetricFilter': 29,
  'AWS::Logs::QueryDefinition': 15,
  'AWS::SNS::Topic': 1,
  'AWS::SNS::TopicPolicy': 1,
  'AWS::SQS::Queue': 3,
  'AWS::SQS::QueuePolicy': 3,
  'AWS::SecretsManager::Secret': 6,
};

/** cdk.json's settings as a stack deployed before the setting has them: no `providers` key. */
function withoutProvidersKey(): Json {
  const { providers: _providers, ...rest } = CDK_CONTEXT.settings as Json;
  return rest;
}

const settingsError = (pattern: RegExp) => (error: Error) => error.name === 'SettingsError' && pattern.test(error.message);

describe('providers: the default deploys every provider, as before the setting', () => {
  test('cdk.json commits every provider; the stack is the same with the key left out, in another order, or without it', () => {
    // act
    const committed = synth();
    const keyLeftOut = synth({}, withoutProvidersKey());
    const reordered = synth({ providers: [...ALL].reverse().join(', ') });

    // assess
    assert.equal(CDK_CONTEXT.settings.providers, ALL.join(','));
    assert.deepEqual(countsByType(committed.json), BEFORE_THE_SETTING);
    assert.deepEqual(keyLeftOut.json, committed.json, 'a cdk.json from before the setting deploys the same stack');
    // The same providers in another order are the committed value, not a one-off (no oneOff=true needed, no output).
    assert.deepEqual(reordered.json, committed.json);
    assert.equal(committed.stack.ingresses.length, providers.length);
    // Neither the sweep nor the worker is told a list: they handle every provider, as before.
    for (const [, fn] of resourcesOf(committed.json, 'AWS::Lambda::Function')) assert.equal(fn.Properties.Environment?.Variables?.PROVIDERS, undefined);
  });
});

describe("the README's providers row", () => {
  test('its default and allowed ids are every provider of the registry', () => {
    const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const row = README.split('\n').find((line) => line.startsWith('| `providers` |'));
    assert.ok(row, 'the Settings table has a providers row');
    const [, defaults, allowed] = row.split(' | ');
    assert.match(defaults, new RegExp(`\`${ALL.join(',')}\``));
    assert.deepEqual([...allowed.matchAll(/`([a-z-]+)`/g)].map((match) => match[1]), ALL);
  });
});

describe('providers=telesign,identomat: only those are deployed', () => {
  const deployed = ['telesign', 'identomat'];
  const leftOut = ALL.filter((id) => !deployed.includes(id));
  const { stack, json } = synth({ providers: 'identomat,telesign', oneOff: 'true' });
  const logicalId = (construct: { node: { defaultChild?: unknown } }) => stack.getLogicalId(construct.node.defaultChild as CfnElement);
  const functionWith = (variable: string, value?: string) =>
    resourcesOf(json, 'AWS::Lambda::Function').filter(([, fn]) => (value === undefined ? fn.Properties.Environment?.Variables?.[variable] !== undefined : fn.Properties.Environment?.Variables?.[variable] === value));
  const worker = json.Resources[logicalId(stack.pipeline.worker)];
  const sweep = json.Resources[logicalId(stack.reconciliation.sweep)];

  test('their routes, ingest functions and secrets, none of the others\'', () => {
    assert.deepEqual(
      resourcesOf(json, 'AWS::ApiGatewayV2::Route').map(([, route]) => route.Properties.RouteKey).sort(),
      deployed.map((id) => `${getProvider(id).route.method} ${getProvider(id).route.path}`).sort(),
    );
    assert.deepEqual(functionWith('PROVIDER_ID').map(([, fn]) => fn.Properties.Environment.Variables.PROVIDER_ID).sort(), [...deployed].sort());
    // Retained, as every secret of the stack: taking a provider out of the list later leaves its secret (and its values) in place.
    for (const [id, secret] of resourcesOf(json, 'AWS::SecretsManager::Secret')) assert.deepEqual([secret.DeletionPolicy, secret.UpdateReplacePolicy], ['Retain', 'Retain'], id);
    const secrets = resourcesOf(json, 'AWS::SecretsManager::Secret').map(([, secret]) => secret.Properties.Description as string);
    assert.equal(secrets.length, 2);
    for (const id of deployed) assert.ok(secrets.some((description) => description.startsWith(`${getProvider(id).displayName} callback secret`)), id);
    // Each left-out provider took exactly one route, integration, function, role, policy, log group and secret.
    const counts = countsByType(json);
    for (const type of ['AWS::ApiGatewayV2::Route', 'AWS::ApiGatewayV2::Integration', 'AWS::Lambda::Function', 'AWS::Logs::LogGroup', 'AWS::IAM::Role', 'AWS::Lambda::Permission']) {
      assert.equal(counts[type], BEFORE_THE_SETTING[type as keyof typeof BEFORE_THE_SETTING] - leftOut.length, type);
    }
  });

  test('outputs print their URLs and secret names only', () => {
    const perProvider = Object.keys(json.Outputs as Json).filter((name) => /(CallbackUrl|SecretName)$/.test(name));
    assert.deepEqual(perProvider.sort(), deployed.flatMap((id) => [`${pascal(id)}CallbackUrl`, `${pascal(id)}SecretName`]).sort());
  });

  test('alarms, metric filters, dashboard widgets and saved queries name no provider left out', () => {
    const alarmNames = resourcesOf(json, 'AWS::CloudWatch::Alarm').map(([, alarm]) => String(alarm.Properties.AlarmName));
    for (const id of deployed) assert.ok(alarmNames.includes(`CallbackGateway-${pascal(id)}Unauthorized`), `${id} keeps its alarms`);
    for (const id of leftOut) assert.deepEqual(alarmNames.filter((name) => name.startsWith(`CallbackGateway-${pascal(id)}`)), [], `no alarm of ${id}`);
    const filters = resourcesOf(json, 'AWS::Logs::MetricFilter').map(([, filter]) => JSON.stringify(filter.Properties));
    for (const id of leftOut) assert.ok(!filters.some((filter) => filter.includes(`"${id}"`)), `no metric of ${id}`);
    const dashboard = JSON.stringify(resourcesOf(json, 'AWS::CloudWatch::Dashboard')[0][1].Properties.DashboardBody);
    for (const id of deployed) assert.ok(dashboard.includes(`\\"Provider\\",\\"${id}\\"`), `${id} has its widgets`);
    for (const id of leftOut) {
      assert.ok(!dashboard.includes(`\\"Provider\\",\\"${id}\\"`), `no widget line of ${id}`);
      assert.ok(!dashboard.includes(getProvider(id).displayName), `no label naming ${getProvider(id).displayName}`);
    }
    // Saved queries read the deployed ingest functions' log groups, and every group they name exists.
    const logGroups = new Set(resourcesOf(json, 'AWS::Logs::LogGroup').map(([id]) => id));
    for (const [, query] of resourcesOf(json, 'AWS::Logs::QueryDefinition')) {
      for (const group of query.Properties.LogGroupNames ?? []) assert.ok(logGroups.has(group.Ref), `${query.Properties.Name} reads ${JSON.stringify(group)}`);
    }
  });

  test('the sweep and the worker are told the providers; the worker may read, and is told, only their secrets', () => {
    assert.equal(sweep.Properties.Environment.Variables.PROVIDERS, 'telesign,identomat');
    assert.equal(worker.Properties.Environment.Variables.PROVIDERS, 'telesign,identomat');
    const secretVariables = Object.keys(worker.Properties.Environment.Variables as Json).filter((name) => name.endsWith('_SECRET_ID'));
    assert.deepEqual(secretVariables.sort(), deployed.map(getProvider).filter(workerReadsSecret).map(secretEnvName).sort());
    const policy = JSON.stringify(resourcesOf(json, 'AWS::IAM::Policy').find(([, p]) => p.Properties.Roles.some((role: Json) => role.Ref === worker.Properties.Role['Fn::GetAtt'][0]))![1]);
    const readable = stack.ingresses.filter((ingress) => workerReadsSecret(ingress.provider)).map((ingress) => logicalId(ingress.secret));
    for (const id of readable) assert.ok(policy.includes(id), `the worker reads ${id}`);
    assert.equal((policy.match(/secretsmanager:GetSecretValue/g) ?? []).length > 0, readable.length > 0);
  });

  test('a stage names its secrets after it, for the deployed providers only', () => {
    const staged = synth({ stage: 'prod', providers: 'telesign,identomat', oneOff: 'true' }).json;
    assert.deepEqual(resourcesOf(staged, 'AWS::SecretsManager::Secret').map(([, secret]) => secret.Properties.Name).sort(), ['CallbackGateway-prod/identomat', 'CallbackGateway-prod/telesign']);
  });

  test('with the SMS relay on, the relay sends through TeleSign and reads and writes Identomat\'s partitions', () => {
    const relayed = synth({ providers: 'telesign,identomat', smsRelay: 'telesign', oneOff: 'true' });
    assert.ok(relayed.stack.smsRelay, 'the relay is deployed');
    const leadingKeys = JSON.stringify(
      resourcesOf(relayed.json, 'AWS::IAM::Policy').map(([, p]) => p.Properties.PolicyDocument.Statement.map((s: Json) => s.Condition?.['ForAllValues:StringLike']?.['dynamodb:LeadingKeys'])),
    );
    assert.match(leadingKeys, /identomat#\*/);
  });
});

describe('providers: wrong values and settings that name a provider not deployed are refused at synth', () => {
  const cases: [string, Json, RegExp][] = [
    ['an unknown id', { providers: 'telesign,tembo' }, /(^|\.)providers names an unknown provider "tembo"; providers are telesign, esms, temboplus, relid, identomat, standard-webhooks$/],
    ['a case the registry does not use', { providers: 'TeleSign' }, /providers names an unknown provider "TeleSign"/],
    ['nothing', { providers: ' ' }, /providers must name at least one provider \(provider ids separated by commas, e\.g\. "telesign,identomat"; providers are telesign, esms/],
    ['an empty entry', { providers: 'telesign,,identomat' }, /providers has an empty entry \(two commas in a row, or one at an end\)/],
    ['an id twice', { providers: 'telesign,identomat,telesign' }, /providers names "telesign" twice/],
    [
      'a silence alarm of a provider not deployed',
      { providers: 'telesign,identomat', silenceAlarmHours: '{"temboplus":6}' },
      /silenceAlarmHours names "temboplus", not deployed \(providers is "telesign,identomat"\): a provider not deployed sends no callbacks, so its silence alarm would always fire\. Remove it from silenceAlarmHours, or add it to providers/,
    ],
    [
      'a stale threshold of a provider not deployed',
      { providers: 'telesign,identomat', staleAlarmThresholds: '{"esms":5,"relid":3}' },
      /staleAlarmThresholds names "esms", "relid", not deployed \(providers is "telesign,identomat"\): a provider not deployed has no Stale alarm\. Remove them/,
    ],
    [
      'the relay without the provider whose instructions it sends',
      { providers: 'telesign,esms', smsRelay: 'telesign' },
      /^smsRelay=telesign needs identomat \(the provider whose SMS instructions it sends\) among the providers, but providers is "telesign,esms": add it to providers, or set smsRelay to off$/,
    ],
    [
      'the relay without its sender',
      { providers: 'identomat', smsRelay: 'telesign' },
      /^smsRelay=telesign needs telesign \(the relay sends with the credentials of its secret\) among the providers/,
    ],
    ['the relay with neither', { providers: 'esms', smsRelay: 'telesign' }, /smsRelay=telesign needs telesign \(.*\) and identomat \(.*\) among the providers.*add them to providers/],
  ];
  for (const [what, values, message] of cases) {
    test(`${what}: refused as a setting error, given with -c or committed in cdk.json`, () => {
      assert.throws(() => synth({ ...values, oneOff: 'true' }), settingsError(message));
      const committed = Object.fromEntries(Object.entries(values).map(([name, value]) => [name, /^\{/.test(value as string) ? JSON.parse(value as string) : value]));
      assert.throws(() => synth({}, { ...CDK_CONTEXT.settings, ...committed }), settingsError(message), 'committed');
    });
  }

  test('a stage that leaves out a provider the shared settings alarm on is refused, naming both', () => {
    const context = { stages: { ...CDK_CONTEXT.stages, dev: { providers: 'telesign' } } };
    assert.throws(
      () => createGatewayApp({ context: { ...CDK_CONTEXT, ...context, settings: { ...CDK_CONTEXT.settings, silenceAlarmHours: { identomat: 12 } }, ...NO_BUNDLING, stage: 'dev' } }),
      settingsError(/silenceAlarmHours names "identomat", not deployed \(providers is "telesign"\)/),
    );
  });

  test('a one-off providers list is refused without oneOff=true, like any other one-off', () => {
    assert.throws(() => synth({ providers: 'telesign' }), settingsError(/-c providers="telesign" \(committed: "telesign,esms,temboplus,relid,identomat,standard-webhooks"\) differs from what cdk\.json commits/));
  });

  test('a mistyped key is refused, naming the setting', () => {
    assert.throws(() => synth({ provider: 'telesign' }), settingsError(/context key provider .*did you mean providers\?/));
  });
});

describe('providers: odd values an operator may write', () => {
  const committedWith = (values: Json) => ({ ...CDK_CONTEXT.settings, ...values });

  test('a JSON array, committed or given with -c, is refused naming the form, not read as ids', () => {
    assert.throws(() => synth({}, committedWith({ providers: ['telesign', 'identomat'] })), settingsError(/^settings\.providers must be provider ids separated by commas, e\.g\. "telesign,identomat"; .* got \["telesign","identomat"\]$/));
    assert.throws(() => synth({ providers: '["telesign","identomat"]', oneOff: 'true' }), settingsError(/providers names an unknown provider "\[\\"telesign\\"/));
  });

  test('upper case, a trailing comma and an id twice with spaces are refused, each naming what is wrong', () => {
    assert.throws(() => synth({}, committedWith({ providers: 'TELESIGN, identomat' })), settingsError(/settings\.providers names an unknown provider "TELESIGN"; providers are telesign, esms/));
    assert.throws(() => synth({}, committedWith({ providers: 'telesign,identomat,' })), settingsError(/settings\.providers has an empty entry \(two commas in a row, or one at an end\)/));
    assert.throws(() => synth({}, committedWith({ providers: ' telesign , identomat , telesign ' })), settingsError(/settings\.providers names "telesign" twice/));
  });

  test('spaces around ids are ignored: the same providers with spaces and in another order are the same stack, and no one-off', () => {
    const spaced = synth({}, committedWith({ providers: ' identomat ,telesign  ' }));
    const plain = synth({}, committedWith({ providers: 'telesign,identomat' }));
    const again = synth({ providers: 'telesign , identomat' }, committedWith({ providers: 'identomat,telesign' }));
    assert.deepEqual(spaced.json, plain.json);
    assert.deepEqual(again.json, plain.json, 'the same list given with -c is the committed value: no oneOff=true needed');
    assert.equal(again.json.Outputs.OneOffSettings, undefined);
  });

  test("a stage's providers override the shared ones for that stage only; -c of the stage's own list is no one-off there", () => {
    const context = { ...CDK_CONTEXT, ...NO_BUNDLING, stages: { ...CDK_CONTEXT.stages, dev: { providers: 'esms' } } };
    const dev = createGatewayApp({ context: { ...context, stage: 'dev', providers: ' esms' } }).stack;
    const main = createGatewayApp({ context }).stack;
    assert.deepEqual(dev.ingresses.map((ingress) => ingress.provider.id), ['esms']);
    assert.deepEqual(main.ingresses.map((ingress) => ingress.provider.id), ALL);
    assert.throws(() => createGatewayApp({ context: { ...context, stage: 'dev', providers: 'telesign' } }), settingsError(/committed: "esms"\) differs .* context "stages"\.dev/));
  });

  test('the relay on in the shared settings and telesign left out by a stage is refused for that stage, naming the sender', () => {
    const context = { ...CDK_CONTEXT, ...NO_BUNDLING, settings: committedWith({ smsRelay: 'telesign' }), stages: { ...CDK_CONTEXT.stages, dev: { providers: 'identomat,esms' } } };
    assert.throws(() => createGatewayApp({ context: { ...context, stage: 'dev' } }), settingsError(/^smsRelay=telesign needs telesign \(the relay sends with the credentials of its secret\) among the providers, but providers is "esms,identomat"/));
    assert.ok(createGatewayApp({ context }).stack.smsRelay, 'the default stage keeps its relay');
  });

  test('removing providers then adding them back: the kept and the re-added resources keep their logical ids, and nothing else of the stack is replaced', () => {
    const full = synth({ smsRelay: 'telesign', oneOff: 'true' }).json;
    const some = synth({ providers: 'identomat,telesign', smsRelay: 'telesign', oneOff: 'true' }).json;
    const back = synth({ smsRelay: 'telesign', oneOff: 'true' }).json;
    assert.deepEqual(back, full, 'adding them back is the stack as it was');
    for (const [id, resource] of Object.entries(some.Resources as Record<string, Json>)) {
      assert.equal(full.Resources[id]?.Type, resource.Type, `${id} (${resource.Type}) keeps its logical id: no replacement`);
    }
    // What does change in place lists the deployed providers: the worker (their secrets), the sweep (PROVIDERS),
    // the saved queries and the ingest alarm (their log groups and functions), the dashboard and the API stage.
    const changed = Object.keys(some.Resources as Json).filter((id) => JSON.stringify(some.Resources[id]) !== JSON.stringify(full.Resources[id]));
    const types = [...new Set(changed.map((id) => some.Resources[id].Type as string))].sort();
    assert.deepEqual(types, ['AWS::ApiGatewayV2::Stage', 'AWS::CloudWatch::Alarm', 'AWS::CloudWatch::Dashboard', 'AWS::IAM::Policy', 'AWS::Lambda::Function', 'AWS::Logs::QueryDefinition']);
    const table = Object.keys(some.Resources as Json).find((id) => some.Resources[id].Type === 'AWS::DynamoDB::Table')!;
    assert.ok(!changed.includes(table), 'the table is untouched');
    const relayPolicy = JSON.stringify(Object.entries(some.Resources as Record<string, Json>).filter(([id, r]) => r.Type === 'AWS::IAM::Policy' && /SmsRelay/.test(id)));
    assert.equal(relayPolicy, JSON.stringify(Object.entries(full.Resources as Record<string, Json>).filter(([id, r]) => r.Type === 'AWS::IAM::Policy' && /SmsRelay/.test(id))), "the relay's grants do not depend on the other providers");
  });

  test('with telesign and identomat left out: no relay, no event filter for instructions, nothing names them or the relay', () => {
    const { json } = synth({ providers: 'esms,temboplus', oneOff: 'true' });
    const text = JSON.stringify({ ...json.Resources, ...Object.fromEntries(Object.entries(json.Outputs as Json).filter(([name]) => name !== 'OneOffSettings')) });
    for (const word of ['telesign', 'TeleSign', 'identomat', 'Identomat', 'Relay', 'TELESIGN_SECRET_ID', 'IDENTOMAT_SECRET_ID']) assert.ok(!text.includes(word), word);
    const mappings = resourcesOf(json, 'AWS::Lambda::EventSourceMapping').map(([, m]) => JSON.stringify(m.Properties.FilterCriteria ?? {}));
    assert.ok(mappings.every((filter) => !filter.includes('EVENT#')), 'the publisher is not invoked for event items no deployed provider writes');
  });
});
