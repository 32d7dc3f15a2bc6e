import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { CfnElement } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { QUEUE } from '../../functions/core/pipeline-definition.ts';
import { providers } from '../../functions/providers/index.ts';
import type { CallbackGatewayStack } from '../../lib/callback-gateway-stack.ts';
import { createGatewayApp, STACK_ID } from '../../lib/gateway-app.ts';
import { REPO_ROOT } from '../../lib/gateway-function.ts';
import { SETTING_NAMES } from '../../lib/settings.ts';
import { checkSchedule, NUMERIC_SETTINGS, type NumericSetting, SETTING_DEFAULTS } from '../../lib/validate.ts';

/**
 * Settings persist in cdk.json and are what a plain deploy deploys; a one-off `-c` is refused or
 * reported, never silently reverted by the next deploy; stages are independent stacks with their
 * own names. Built without esbuild (nothing here is about a bundle).
 */

type Json = Record<string, any>;

const CDK_JSON = JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Json };
const CDK_CONTEXT = CDK_JSON.context;
const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

/** The app as `cdk synth` builds it from cdk.json, with `-c` values on top (as the CLI merges them). */
function synth(commandLine: Json = {}, committed: Json = {}) {
  const { stack } = createGatewayApp({ context: { ...CDK_CONTEXT, ...committed, ...NO_BUNDLING, ...commandLine } });
  return { stack, template: Template.fromStack(stack), json: Template.fromStack(stack).toJSON() as Json };
}

/** cdk.json's context with some committed settings changed. */
function committing(settings: Json, stages?: Json): Json {
  return { settings: { ...CDK_CONTEXT.settings, ...settings }, ...(stages ? { stages: { ...CDK_CONTEXT.stages, ...stages } } : {}) };
}

function resourceOf(stack: CallbackGatewayStack, json: Json, construct: { node: { defaultChild?: unknown } }): Json {
  return json.Resources[stack.getLogicalId(construct.node.defaultChild as CfnElement)];
}

describe('a mistyped -c', () => {
  test('a context key that looks like a setting is refused, naming the setting; the CDK\'s own keys pass; any other is ignored with a warning', () => {
    assert.throws(() => synth({ identomatSmsRelay: 'telesign' }), /context key identomatSmsRelay \(from -c, cdk\.json, cdk\.context\.json or ~\/\.cdk\.json\) is not a setting: did you mean smsRelay\? Settings are alarmEmail, .*smsRelay/);
    assert.throws(() => synth({ maxRecieveCount: '7' }), /context key maxRecieveCount .*did you mean maxReceiveCount\?/);
    assert.throws(() => synth({ relaymaxageseconds: '60' }), /did you mean relayMaxAgeSeconds\?/);
    // cdk acknowledge writes this one to cdk.context.json; the others are feature flags and cached lookups
    const { stack, json } = synth({
      'acknowledged-issue-numbers': [34892],
      '@aws-cdk/core:newStyleStackSynthesis': true,
      'aws:cdk:version-reporting': false,
      'availability-zones:account=123456789012:region=eu-west-1': ['eu-west-1a'],
      myTeamOwner: 'payments',
    });
    assert.equal(stack.stackName, 'CallbackGateway');
    assert.ok(json.Resources, 'synthesized');
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('Context keys that are not settings, ignored: myTeamOwner'));
    assert.equal(warnings.length, 1);
  });
});

describe('the committed place: cdk.json', () => {
  test('cdk.json commits every setting that has a default, at its default, and nothing unknown', () => {
    // act
    const committed = CDK_CONTEXT.settings as Json;

    // assess
    for (const [name, value] of Object.entries(SETTING_DEFAULTS)) assert.deepEqual(committed[name], value, name);
    for (const name of Object.keys(committed)) assert.ok((SETTING_NAMES as readonly string[]).includes(name), `unknown setting ${name}`);
    assert.deepEqual(committed.silenceAlarmHours, {}, 'silence alarms are off unless set');
    assert.deepEqual(committed.staleAlarmThresholds, {}, 'every provider at staleAlarmThreshold unless set');
    assert.deepEqual(Object.keys(CDK_CONTEXT.stages).sort(), ['dev', 'prod', 'staging']);
  });

  test('a committed setting is deployed by a plain synth, and a stage\'s own value applies to that stage only', () => {
    // prepare
    const context = committing({ maxReceiveCount: 7 }, { prod: { maxReceiveCount: 9 } });

    // act
    const plain = synth({}, context);
    const prod = synth({ stage: 'prod' }, context);
    const dev = synth({ stage: 'dev' }, context);

    // assess
    const receives = ({ stack, json }: ReturnType<typeof synth>) => resourceOf(stack, json, stack.pipeline.queue).Properties.RedrivePolicy.maxReceiveCount;
    assert.deepEqual([receives(plain), receives(prod), receives(dev)], [7, 9, 7]);
    // The worker is told the same limit: a record failing on its last receive goes straight to the DLQ.
    const told = ({ stack, json }: ReturnType<typeof synth>) => resourceOf(stack, json, stack.pipeline.worker).Properties.Environment.Variables.MAX_RECEIVE_COUNT;
    assert.deepEqual([told(plain), told(prod), told(dev)], ['7', '9', '7']);
  });

  test('workerMaxConcurrency bounds the SQS event source (ScalingConfig.MaximumConcurrency)', () => {
    // act
    const { json } = synth({}, committing({ workerMaxConcurrency: 3 }));

    // assess
    // The queue's mapping; the table stream's (the event publisher) is one shard's records at a time, in order.
    const mappings = Object.values(json.Resources as Record<string, Json>).filter((r) => r.Type === 'AWS::Lambda::EventSourceMapping');
    const fromQueue = mappings.filter((mapping) => !JSON.stringify(mapping.Properties.EventSourceArn).includes('StreamArn'));
    assert.deepEqual(fromQueue.map((mapping) => mapping.Properties.ScalingConfig), [{ MaximumConcurrency: 3 }]);
    assert.deepEqual(mappings.filter((mapping) => !fromQueue.includes(mapping)).map((mapping) => mapping.Properties.ScalingConfig), [undefined]);
  });

  test('applicationLogLevel and systemLogLevel set every function\'s advanced logging controls (JSON format)', () => {
    // act
    const { json } = synth({}, committing({ applicationLogLevel: 'DEBUG', systemLogLevel: 'INFO' }));

    // assess
    const functions = Object.values(json.Resources as Record<string, Json>).filter((r) => r.Type === 'AWS::Lambda::Function');
    assert.equal(functions.length, providers.length + 3, 'the ingest functions, the worker, the sweep and the event publisher');
    for (const fn of functions) {
      const { LogFormat, ApplicationLogLevel, SystemLogLevel } = fn.Properties.LoggingConfig;
      assert.deepEqual({ LogFormat, ApplicationLogLevel, SystemLogLevel }, { LogFormat: 'JSON', ApplicationLogLevel: 'DEBUG', SystemLogLevel: 'INFO' });
    }
  });

  test('an unknown setting in cdk.json (a typo) fails the synth, naming where it is', () => {
    assert.throws(() => synth({}, committing({ maxRecieveCount: 8 })), /cdk\.json context "settings" has an unknown setting "maxRecieveCount"; settings are alarmEmail, providers, maxReceiveCount/);
    assert.throws(() => synth({ stage: 'prod' }, committing({}, { prod: { alarmMail: 'a@b.c' } })), /context "stages"\.prod has an unknown setting "alarmMail"/);
  });
});

describe('one-off -c settings', () => {
  test('a -c value that differs from cdk.json is refused: the next plain deploy would quietly set it back', () => {
    assert.throws(
      () => synth({ maxReceiveCount: '8' }),
      /-c maxReceiveCount=8 \(committed: 5\) differs from what cdk\.json commits, and the next plain deploy would quietly set it back\. Commit it in cdk\.json context "settings" instead, or add -c oneOff=true/,
    );
    assert.throws(() => synth({ stage: 'prod', alarmEmail: 'ops@example.com' }), /-c alarmEmail="ops@example\.com" \(committed: not set\).*context "stages"\.prod/);
  });

  test('a -c value equal to the committed one changes nothing and is not reported', () => {
    // act
    const { template } = synth({ maxReceiveCount: '5', systemLogLevel: 'WARN' });

    // assess
    assert.deepEqual(Object.keys(template.toJSON().Outputs).filter((name) => name === 'OneOffSettings'), []);
  });

  test('with -c oneOff=true it is deployed, warned about at synth, and named on the stack with the value the next deploy restores', () => {
    // act
    const { stack, template, json } = synth({ oneOff: 'true', maxReceiveCount: '8', alarmEmail: 'ops@example.com' });

    // assess
    assert.equal(resourceOf(stack, json, stack.pipeline.queue).Properties.RedrivePolicy.maxReceiveCount, 8);
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    const output = json.Outputs.OneOffSettings.Value as string;
    assert.match(output, /alarmEmail="ops@example\.com" \(the next deploy without -c restores not set\)/);
    assert.match(output, /maxReceiveCount=8 \(the next deploy without -c restores 5\)/);
    Annotations.fromStack(stack).hasWarning('*', Match.stringLikeRegexp('One-off settings, not in cdk.json: .*maxReceiveCount=8'));
  });
});

describe('log retention', () => {
  test('every log group of the stack keeps its lines logRetentionDays (30 unless committed)', () => {
    for (const [committed, days] of [[{}, 30], [{ logRetentionDays: 365 }, 365]] as const) {
      // act
      const { json } = synth({}, committing(committed));
      const groups = Object.values(json.Resources as Record<string, Json>).filter((resource) => resource.Type === 'AWS::Logs::LogGroup');
      // assess
      assert.ok(groups.length >= 8, `${groups.length} log groups`);
      assert.deepEqual([...new Set(groups.map((group) => group.Properties.RetentionInDays))], [days]);
    }
  });

  test("a retention shorter than the dead-letter queue's is warned about at synth: a failed callback would outlive the lines that say why", () => {
    // act
    const short = synth({}, committing({ logRetentionDays: 7 })).stack;
    const asLong = synth({}, committing({ logRetentionDays: QUEUE.dlqRetentionDays })).stack;
    // assess
    Annotations.fromStack(short).hasWarning('*', Match.stringLikeRegexp(`logRetentionDays 7 is shorter than the dead-letter queue's ${QUEUE.dlqRetentionDays} days`));
    assert.deepEqual(Annotations.fromStack(asLong).findWarning('*', Match.stringLikeRegexp('logRetentionDays')), []);
  });
});

describe('each setting is checked at synth, naming the setting and the allowed range', () => {
  // name, -c value, the same value as committed in cdk.json (undefined: not expressible there), message
  const cases: [string, string, unknown, RegExp][] = [
    ['maxReceiveCount', 'abc', undefined, /maxReceiveCount must be a number, got "abc"/],
    ['maxReceiveCount', '4', 4, new RegExp(`maxReceiveCount must be an integer from 5 to 284 \\(more than the worker's ${QUEUE.settleAttempts} settle attempts and ${QUEUE.askFaultAttempts} attempts on a failing status endpoint.*never sent to the DLQ.*\\), got 4`)],
    // Past it, a callback failing every receive would outlive the queue's retention: deleted, never in the DLQ.
    ['maxReceiveCount', '285', 285, /maxReceiveCount must be an integer from 5 to 284 \(.*reaches the DLQ within the queue's 4-day retention.*\), got 285/],
    ['throttleBurstLimit', '2.5', 2.5, /throttleBurstLimit must be an integer from 1 to 100000, got 2\.5/],
    ['eventRetentionDays', '-1', -1, /eventRetentionDays must be an integer from 1 to 36500, got -1/],
    ['sensitiveRetentionHours', '', '', /sensitiveRetentionHours must be a number, got ""/],
    ['alarmEmail', 'ops at example', 'ops at example', /alarmEmail must be one e-mail address, got "ops at example"/],
    ['workerMaxConcurrency', '1', 1, /workerMaxConcurrency must be an integer from 2 to 1000 \(the SQS event source maximum concurrency AWS accepts\), got 1/],
    ['maxMessageAgeSeconds', String(4 * 86_400), 4 * 86_400, /maxMessageAgeSeconds must be an integer from 60 to 342000 \(at least an hour below the queue's 4-day retention.*\), got 345600/],
    ['manyReceivesAlarmCount', '3', 3, /manyReceivesAlarmCount must be an integer from 4 to 1000 \(at least the worker's 4 planned attempts \(settle and status-endpoint faults\).*\), got 3/],
    ['apiThrottledAlarmThreshold', '0', 0, /apiThrottledAlarmThreshold must be an integer from 1 to 1000000, got 0/],
    ['silenceAlarmHours', '{"temboplus":0}', { temboplus: 0 }, /silenceAlarmHours\.temboplus must be an integer from 1 to 168 \(hours; CloudWatch evaluates at most 7 days\), got 0/],
    ['silenceAlarmHours', '{"tembo":6}', { tembo: 6 }, /silenceAlarmHours names an unknown provider "tembo"; providers are telesign, esms/],
    ['silenceAlarmHours', '6', 6, /silenceAlarmHours must be an object of hours per provider/],
    ['applicationLogLevel', 'WARN', 'WARN', /applicationLogLevel must be one of TRACE, DEBUG, INFO \(the metrics and alarms count INFO lines; WARN or above would silence them\), got "WARN"/],
    ['systemLogLevel', 'ERROR', 'ERROR', /systemLogLevel must be one of DEBUG, INFO, WARN, got "ERROR"/],
    // CloudWatch Logs accepts only its own periods: 10 would fail the deploy, not the synth.
    ['logRetentionDays', '10', 10, /logRetentionDays must be \(one of CloudWatch Logs' periods: 1, 3, 5, 7, 14, 30, .*3653\), got 10/],
    ['logRetentionDays', '0', 0, /logRetentionDays must be an integer from 1 to 3653/],
    ['relayMaxPerNumberPerHour', '-1', -1, /relayMaxPerNumberPerHour must be an integer from 0 to 1000 \(0 for no cap\), got -1/],
    ['relayMaxPerNumberPerHour', '1.5', 1.5, /relayMaxPerNumberPerHour must be an integer from 0 to 1000 \(0 for no cap\), got 1\.5/],
    ['relayMaxPerNumberPerHour', 'none', undefined, /relayMaxPerNumberPerHour must be a number, got "none"/],
    ['relaySentAlarmPerHour', '1000001', 1_000_001, /relaySentAlarmPerHour must be an integer from 0 to 1000000 \(0 for no alarm\), got 1000001/],
  ];
  for (const [name, value, committed, message] of cases) {
    test(`-c ${name}=${value} fails the synth, and so does the same value in cdk.json`, () => {
      // act + assess
      assert.throws(() => synth({ oneOff: 'true', [name]: value }), message);
      if (committed !== undefined) {
        assert.throws(() => synth({}, committing({ [name]: committed })), (error: Error) => error.message.startsWith(`settings.${name}`), `${name} in cdk.json`);
      }
    });
  }

  test('cdk synth with a wrong setting prints what is wrong, without a stack trace, and exits 1', () => {
    // prepare: the app as the CDK CLI runs it, with the context it passes (-c maxReceiveCount=4 -c oneOff=true)
    const outdir = mkdtempSync(join(tmpdir(), 'callback-gateway-synth-'));
    try {
      // act
      const run = spawnSync(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'bin/app.ts')], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify({ ...CDK_CONTEXT, maxReceiveCount: '4', oneOff: 'true' }), CDK_OUTDIR: outdir },
        timeout: 120_000,
      });

      // assess
      assert.equal(run.status, 1, run.stderr);
      assert.match(run.stderr, /^Error: maxReceiveCount must be an integer from 5 to 284 \(.*\), got 4\n$/);
      assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });

  test('settings that depend on each other are checked together, as a setting error (its message, no stack trace)', () => {
    // A SettingsError is what bin/app.ts prints as its message alone; any other error is thrown on with its stack.
    const settingsError = (pattern: RegExp) => (error: Error) => error.name === 'SettingsError' && pattern.test(error.message);
    assert.throws(
      () => synth({}, committing({ maxReceiveCount: 6, manyReceivesAlarmCount: 7 })),
      settingsError(/manyReceivesAlarmCount \(7\) must not exceed maxReceiveCount \(6\): a record is never received more often than that/),
    );
    assert.throws(
      () => synth({}, committing({ eventRetentionDays: 1, sensitiveRetentionHours: 48 })),
      settingsError(/sensitiveRetentionHours \(48\) must not exceed eventRetentionDays × 24 \(24\)/),
    );
    // A stage's own value, or a one-off, is checked against the others as well.
    assert.throws(
      () => synth({ stage: 'prod' }, committing({}, { prod: { eventRetentionDays: 1, sensitiveRetentionHours: 48 } })),
      settingsError(/sensitiveRetentionHours \(48\) must not exceed eventRetentionDays × 24 \(24\)/),
    );
    assert.throws(
      () => synth({ sensitiveRetentionHours: '48', oneOff: 'true' }, committing({ eventRetentionDays: 1 })),
      settingsError(/sensitiveRetentionHours \(48\) must not exceed eventRetentionDays × 24 \(24\)/),
    );
  });
});

/** Every name a stack gives a resource itself (CloudFormation generates the others, unique per stack). */
function chosenNames(json: Json): string[] {
  const names: string[] = [];
  const text = (value: unknown) => JSON.stringify(value);
  for (const resource of Object.values(json.Resources as Record<string, Json>)) {
    const p = resource.Properties ?? {};
    for (const key of ['DashboardName', 'AlarmName', 'Name', 'QueueName', 'TableName', 'LogGroupName', 'TopicName', 'FunctionName', 'RoleName']) {
      const value = p[key];
      // A reference names another resource; only a written name (a string, or one joined from parts) is chosen here.
      if (value === undefined || (typeof value === 'object' && !('Fn::Join' in value))) continue;
      names.push(`${resource.Type}:${text(value)}`);
    }
  }
  for (const output of Object.values((json.Outputs ?? {}) as Record<string, Json>)) if (output.Export) names.push(`Export:${text(output.Export.Name)}`);
  return names;
}

describe('stages', () => {
  test('without -c stage the stack keeps its name, CallbackGateway, and CloudFormation-generated secret names', () => {
    // act
    const { stack, json } = synth();

    // assess
    assert.equal(stack.stackName, STACK_ID);
    assert.equal(STACK_ID, 'CallbackGateway');
    for (const ingress of stack.ingresses) assert.equal(resourceOf(stack, json, ingress.secret).Properties.Name, undefined, 'a new name would replace the secret');
  });

  test('-c stage=prod is its own stack: its name, dashboard, alarms, secrets and metrics carry the stage', () => {
    // act
    const { stack, json } = synth({ stage: 'prod' });

    // assess
    assert.equal(stack.stackName, 'CallbackGateway-prod');
    for (const ingress of stack.ingresses) {
      assert.equal(resourceOf(stack, json, ingress.secret).Properties.Name, `CallbackGateway-prod/${ingress.provider.id}`);
    }
    const alarms = Object.values(json.Resources as Record<string, Json>).filter((r) => r.Type === 'AWS::CloudWatch::Alarm');
    assert.ok(alarms.length > 0 && alarms.every((alarm) => String(alarm.Properties.AlarmName).startsWith('CallbackGateway-prod-')));
    const filters = Object.values(json.Resources as Record<string, Json>).filter((r) => r.Type === 'AWS::Logs::MetricFilter');
    assert.ok(filters.every((filter) => filter.Properties.MetricTransformations[0].MetricNamespace === 'CallbackGateway-prod'));
  });

  test('the dashboard name carries the region (dashboards are global to an account): a second region gets its own', () => {
    for (const commandLine of [{}, { stage: 'prod' }]) {
      // act
      const { json } = synth(commandLine);

      // assess
      const [dashboard] = Object.values(json.Resources as Record<string, Json>).filter((r) => r.Type === 'AWS::CloudWatch::Dashboard');
      assert.deepEqual(dashboard.Properties.DashboardName, { 'Fn::Join': ['', [`${commandLine.stage ? 'CallbackGateway-prod' : 'CallbackGateway'}-`, { Ref: 'AWS::Region' }]] });
    }
  });

  test('no name chosen by one stage is chosen by another, and every chosen name is the stage\'s or per region', () => {
    // act
    const stacks = [synth(), synth({ stage: 'dev' }), synth({ stage: 'prod' })];

    // assess
    const seen = new Map<string, number>();
    for (const { json } of stacks) for (const name of new Set(chosenNames(json))) seen.set(name, (seen.get(name) ?? 0) + 1);
    assert.deepEqual([...seen].filter(([, count]) => count > 1), [], 'a name two stages share');
    stacks.forEach(({ stack, json }) => {
      for (const name of chosenNames(json)) assert.ok(name.includes(stack.stackName), `${name} does not carry ${stack.stackName}`);
    });
  });

  test('a stage must be declared in cdk.json (a typo never deploys a second gateway), and be a plain name', () => {
    assert.throws(() => synth({ stage: 'prdo' }), /stage "prdo" is not declared in cdk\.json context "stages" \(declared: dev, staging, prod\)\. Add it there, even as \{\}/);
    assert.throws(() => synth({ stage: 'Prod_1' }), /stage must be 1 to 20 lower-case letters, digits or hyphens, starting with a letter, got "Prod_1"/);
    assert.ok(synth({ stage: 'qa' }, { stages: { qa: {} } }).stack.stackName === 'CallbackGateway-qa');
  });

  test('an empty or mistyped stage selector is refused, never read as the default stage', () => {
    // `-c stage=$STAGE` with STAGE unset reaches the app as "": deploying (or destroying) the stack
    // CallbackGateway instead of the stage meant.
    assert.throws(() => synth({ stage: '' }), /stage must be 1 to 20 lower-case letters, digits or hyphens, starting with a letter, got ""; leave out -c stage for the default stage/);
    // A selector spelled otherwise was ignored with a warning: the default stage again.
    assert.throws(() => synth({ Stage: 'prod' }), /context key Stage .*is not a setting: did you mean stage\?/);
    assert.throws(() => synth({ stgae: 'prod' }), /context key stgae .*did you mean stage\?/);
    assert.throws(() => synth({ oneoff: 'true' }), /context key oneoff .*did you mean oneOff\?/);
    assert.throws(() => synth({ 'one-off': 'true' }), /context key one-off .*did you mean oneOff\?/);
    // A letter left out or doubled, as often as a swap: `-c stag=prod` deployed the default stage.
    for (const key of ['stag', 'stge', 'stagee']) assert.throws(() => synth({ [key]: 'prod' }), new RegExp(`context key ${key} .*did you mean stage\\?`));
    assert.throws(() => synth({ oneof: 'true' }), /context key oneof .*did you mean oneOff\?/);
  });

  test("another tool's short context keys that merely resemble a selector are left alone (warned, not refused)", () => {
    // `state`, `tags`, `page`, `stack` in a shared ~/.cdk.json must not break this app's synth.
    for (const key of ['state', 'tags', 'page', 'stack', 'tag', 'gates']) {
      // act
      const { stack } = synth({ [key]: 'x' });
      // assess
      assert.equal(stack.stackName, 'CallbackGateway', key);
    }
  });

  test('stack outputs export nothing, so no two stacks can fight over an export name', () => {
    for (const commandLine of [{}, { stage: 'prod' }]) {
      // act
      const { json } = synth(commandLine);

      // assess
      assert.deepEqual(Object.entries(json.Outputs as Record<string, Json>).filter(([, output]) => output.Export), []);
    }
  });

  test('the registry providers each get a secret in every stage', () => {
    assert.equal(synth({ stage: 'dev' }).stack.ingresses.length, providers.length);
  });
});

describe("the README's settings table", () => {
  const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  /** Each row of the table under "### Settings": the setting names, default, allowed values. */
  const rows = README.slice(README.indexOf('### Settings'), README.indexOf('### Stages'))
    .split('\n')
    .filter((line) => /^\| `[a-zA-Z]+`/.test(line))
    .map((line) => {
      const [names, defaults, allowed] = line.split(' | ').map((cell) => cell.replace(/^\| /, ''));
      return { names: [...names.matchAll(/`([a-zA-Z]+)`/g)].map((match) => match[1]), defaults, allowed };
    });

  test('every numeric setting\'s range is the one the synth checks, and its default the one it applies', () => {
    const numeric = rows.filter((row) => /^\d+–\d+/.test(row.allowed));
    assert.ok(numeric.length > 10, 'the table was found');
    for (const row of numeric) {
      const [min, max] = /^(\d+)–(\d+)/.exec(row.allowed)!.slice(1).map(Number);
      const defaults = row.defaults.split(' / ').map(Number);
      row.names.forEach((name, index) => {
        const range = NUMERIC_SETTINGS[name as NumericSetting];
        assert.ok(range, `${name} is a numeric setting`);
        assert.deepEqual([min, max], [range.min, range.max], `${name}'s range`);
        assert.equal(defaults[index] ?? defaults[0], SETTING_DEFAULTS[name as NumericSetting], `${name}'s default`);
      });
    }
  });

  test('every reconcileSchedule the table gives as an example synthesizes', () => {
    const row = rows.find((each) => each.names.includes('reconcileSchedule'))!;
    const examples = [row.defaults, row.allowed].flatMap((cell) => [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1]));
    assert.ok(examples.length > 1, 'examples found');
    for (const example of examples) assert.doesNotThrow(() => checkSchedule('reconcileSchedule', example), example);
  });
});
