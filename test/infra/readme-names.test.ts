import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { Template } from 'aws-cdk-lib/assertions';
import { createGatewayApp } from '../../lib/gateway-app.ts';
import { REPO_ROOT } from '../../lib/gateway-function.ts';
import { pascal } from '../../lib/names.ts';
import { providers } from '../../functions/providers/index.ts';

/**
 * The names an operator copies from the README into a console or a command line (stack outputs,
 * alarm names, saved queries, index keys) are the names the stack creates: checked against the
 * template `cdk synth` produces, with every optional part on (the SMS relay, silence and relay
 * volume alarms, a custom domain), so no alarm the stack can create is missing from the README's alarm table. The
 * alarm descriptions and output descriptions (the runbook a page links to) and the commands' usage
 * texts are held to the same names.
 */

type Json = Record<string, any>;

const CDK_CONTEXT = (JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Json }).context;
const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };
/** Every optional alarm and output on: a one-off synth, as `-c oneOff=true` deploys it (a custom domain without a zone: its target output). */
const EVERYTHING_ON = {
  oneOff: 'true',
  domainName: 'callbacks.example.com',
  certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/0e2c8d1e-1b8e-4a6e-9f3a-5d2f7c9b1a00',
  smsRelay: 'telesign',
  silenceAlarmHours: '{"temboplus":6}',
  relaySentAlarmPerHour: '100',
};

const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
const BENCH_README = readFileSync(join(REPO_ROOT, 'bench/README.md'), 'utf8');
const USAGE_TEXTS = readdirSync(join(REPO_ROOT, 'local'))
  .filter((name) => name.endsWith('.ts'))
  .map((name) => ({ name: `local/${name}`, text: readFileSync(join(REPO_ROOT, 'local', name), 'utf8') }));

let stackName: string;
/** Every provider is deployed: cdk.json commits them all. */
const providerNames = providers.map((provider) => pascal(provider.id));
let outputs: Set<string>;
let outputDescriptions: Map<string, string>;
/** Alarm names without the `<stack>-` prefix, and their descriptions. */
let alarms: Map<string, string>;
let metrics: Set<string>;
let queryTitles: Set<string>;
let indexes: Map<string, { partition: string; sort: string; projected: string[] }>;
let exported: string[];

before(() => {
  const { stack } = createGatewayApp({ context: { ...CDK_CONTEXT, ...NO_BUNDLING, ...EVERYTHING_ON } });
  stackName = stack.stackName;
  const template = Template.fromStack(stack).toJSON() as Json;
  const resources = Object.values(template.Resources as Record<string, Json>);
  outputs = new Set(Object.keys(template.Outputs as Json));
  exported = Object.entries(template.Outputs as Record<string, Json>).filter(([, output]) => output.Export !== undefined).map(([name]) => name);
  outputDescriptions = new Map(Object.entries(template.Outputs as Record<string, Json>).map(([name, output]) => [name, flatten(output.Description)]));
  alarms = new Map();
  metrics = new Set();
  queryTitles = new Set();
  indexes = new Map();
  for (const resource of resources) {
    const properties = resource.Properties as Json;
    if (resource.Type === 'AWS::CloudWatch::Alarm') {
      const name = properties.AlarmName as string;
      assert.ok(name.startsWith(`${stackName}-`), name);
      alarms.set(name.slice(stackName.length + 1), flatten(properties.AlarmDescription));
      if (typeof properties.MetricName === 'string') metrics.add(properties.MetricName);
      for (const metric of (properties.Metrics ?? []) as Json[]) {
        if (metric.MetricStat !== undefined) metrics.add(metric.MetricStat.Metric.MetricName as string);
      }
    } else if (resource.Type === 'AWS::Logs::MetricFilter') {
      for (const transformation of properties.MetricTransformations as Json[]) metrics.add(transformation.MetricName as string);
    } else if (resource.Type === 'AWS::Logs::QueryDefinition') {
      const name = properties.Name as string;
      assert.ok(name.startsWith(`${stackName}/`), name);
      queryTitles.add(name.slice(stackName.length + 1));
    } else if (resource.Type === 'AWS::DynamoDB::Table') {
      for (const index of properties.GlobalSecondaryIndexes as Json[]) {
        const key = (type: string) => (index.KeySchema as Json[]).find((part) => part.KeyType === type)?.AttributeName as string;
        indexes.set(index.IndexName as string, { partition: key('HASH'), sort: key('RANGE'), projected: (index.Projection.NonKeyAttributes ?? []) as string[] });
      }
    }
  }
});

/** A CloudFormation string, `Fn::Join`s flattened (a reference reads as `<ref>`). */
function flatten(value: unknown): string {
  if (typeof value === 'string') return value;
  const join = (value as Json | undefined)?.['Fn::Join'] as [string, unknown[]] | undefined;
  return join === undefined ? '<ref>' : join[1].map(flatten).join(join[0]);
}

/** `<Provider>Stale` stands for one name per deployed provider; other names for themselves. */
function expand(name: string): string[] {
  return /<(?:Provider|P)>/.test(name) ? providerNames.map((provider) => name.replace(/<(?:Provider|P)>/, provider)) : [name];
}

/** A name the stack creates: an output, an alarm or a metric (`<Provider>…`: for some provider). */
function known(name: string): boolean {
  return expand(name).some((one) => outputs.has(one) || alarms.has(one) || metrics.has(one));
}

/**
 * Names of the stack's own families in a text: two words or more, starting as our outputs, alarms and
 * metrics do (`QueueUrl`, `TelesignStale`, `RelayNotSent`, `<Provider>SecretName`), not AWS's own
 * (`ApproximateNumberOfMessages`, `ThrottlingException`).
 */
const FAMILY = new RegExp(
  String.raw`(?<![\w>#!./-])((?:<Provider>|<P>|Telesign|Esms|Temboplus|Relid|Identomat|StandardWebhooks|Relay|Events|EventBus|DeadLetter|Worker|Api|Sweep|Table|Ingest|Publisher|Publish|Oldest|Received|Alarm|Dashboard|Queue|OneOff|Recheck|StateChanged)[A-Za-z0-9]*)(?![\w-])`,
  'g',
);

/** Names shaped as outputs are (`…Url`, `…Arn`, `…SecretName`) that are the providers' own, not the stack's. */
const PROVIDER_FIELDS = new Set(['CallbackUrl']); // eSMS's send request field

function familyNames(text: string): string[] {
  const family = [...text.matchAll(FAMILY)].map((match) => match[1]).filter((name) => /^<\w+>[A-Z]|^[A-Z][a-z0-9]+[A-Z0-9]/.test(name));
  const outputShaped = [...text.matchAll(/(?<![\w>#!./-])((?:<\w+>)?[A-Z][A-Za-z0-9]*(?:Url|Arn|SecretName|TableName|BusName))(?![\w-])/g)]
    .map((match) => match[1])
    .filter((name) => !PROVIDER_FIELDS.has(name));
  return [...new Set([...family, ...outputShaped])];
}

function section(heading: string, next: string): string {
  const start = README.indexOf(heading);
  const end = README.indexOf(next, start + heading.length);
  assert.ok(start >= 0 && end > start, `README: no section ${heading}`);
  return README.slice(start, end);
}

const ALARM_TABLE = () =>
  section('### Alarms', '### Metrics, dashboard and saved queries')
    .split('\n')
    .filter((line) => line.startsWith('| `'));

/** The alarm names of the table's first column: `A` / `…B` is A and A with B for its last word. */
function alarmTableNames(): string[] {
  const names: string[] = [];
  for (const row of ALARM_TABLE()) {
    let previous = '';
    // The names come before any parenthesis (`RelaySentVolume` (relay on, only when `relaySentAlarmPerHour` is set)).
    for (const [, name] of row.split('|')[1].split('(')[0].matchAll(/`([^`]+)`/g)) {
      const full = name.startsWith('…') ? previous.replace(/[A-Z][a-z]*$/, '') + name.slice(1) : name;
      names.push(full);
      previous = full;
    }
  }
  return names;
}

/** `npm run <cmd> -- …` command lines in a text, up to the first parenthesis, comma, semicolon or sentence end. */
function npmCommands(text: string): string[] {
  return [...text.matchAll(/npm run (?:-s )?(inspect|expect|redrive|reprocess)\b([^`(),;|]*?)(?=[`(),;|]|\.(?:\s|$)|$)/gm)].map((match) => `${match[1]}${match[2]}`.trim());
}

/** A command names a deployed stack: its table or a DLQ (`--dlq-url`, or another DLQ's flag ending so), and a region. */
function namesDeployedStack(command: string): boolean {
  return /--[\w-]*(?:table|dlq-url)\b/.test(command) && /--region\b/.test(command);
}

describe("the README's alarm table", () => {
  test('lists every alarm the stack can create', () => {
    const listed = alarmTableNames().flatMap(expand);
    const missing = [...alarms.keys()].filter((name) => !listed.includes(name));
    assert.deepEqual(missing, []);
  });

  test('names no alarm the stack does not create', () => {
    const unknown = alarmTableNames().filter((name) => !expand(name).some((one) => alarms.has(one)));
    assert.deepEqual(unknown, []);
  });

  test('gives every command line for the deployed stack it is about (its table or DLQ, and a region)', () => {
    const local = ALARM_TABLE().flatMap((row) => npmCommands(row.split('|').slice(3).join('|'))).filter((command) => !namesDeployedStack(command));
    assert.deepEqual(local, []);
  });

  test('names saved queries the stack saves', () => {
    const referenced = ALARM_TABLE().flatMap((row) => [...row.matchAll(/quer(?:y|ies) \*([^*]+)\*(?: and \*([^*]+)\*)?/g)].flatMap((match) => match.slice(1).filter(Boolean)));
    assert.ok(referenced.length > 5, 'the table names saved queries');
    const unknown = referenced.filter((title) => ![...queryTitles].some((saved) => (title.endsWith('…') ? saved.startsWith(title.slice(0, -1)) : saved === title)));
    assert.deepEqual(unknown, []);
  });
});

describe('stack names in the docs', () => {
  test('every output, alarm and metric name the READMEs and the usage texts mention exists, spelled the same', () => {
    const unknown: string[] = [];
    for (const [file, text] of [['README.md', README], ['bench/README.md', BENCH_README]] as const) {
      for (const span of text.match(/`[^`\n]+`/g) ?? []) {
        for (const name of familyNames(span)) if (!known(name)) unknown.push(`${file}: ${name}`);
      }
    }
    for (const { name: file, text } of USAGE_TEXTS) {
      // "its output TableName", "stack outputs TableName and QueueUrl", "output <P>SecretName".
      for (const match of text.matchAll(/outputs? (<?\w+>?\w*)(?: and ([A-Z]\w*))?/g)) {
        for (const name of match.slice(1).filter((one) => one !== undefined && /^[A-Z<]/.test(one))) {
          if (!known(name)) unknown.push(`${file}: ${name}`);
        }
      }
    }
    assert.deepEqual(unknown, []);
  });

  test("the Deploy section lists every output the stack prints", () => {
    const deploy = section('## Deploy to AWS', '### Settings');
    const settings = section('### Settings', '### Stages');
    const missing = [...outputs].filter((name) => {
      const generic = name.replace(new RegExp(`^(?:${providerNames.join('|')})(?=CallbackUrl$|SecretName$)`), '<Provider>');
      return !deploy.includes(`\`${name}\``) && !deploy.includes(`\`${generic}\``) && !settings.includes(`\`${name}\``);
    });
    assert.deepEqual(missing, []);
  });

  test('outputs are not exported (stacks never compete for an export name)', () => {
    assert.ok(README.includes('Outputs are not exported'));
    assert.deepEqual(exported, []);
  });

  test("the saved queries listed are the stack's", () => {
    const list = section('Saved queries (`', '### Logs')
      .split('\n')
      .filter((line) => line.startsWith('- *'))
      .map((line) => line.slice(3, line.lastIndexOf('*')));
    assert.deepEqual([...list].sort(), [...queryTitles].sort());
  });

  test("the indexes' names and keys are the table's", () => {
    const described = [...README.matchAll(/Global secondary index `(\w+)`: partition `(\w+)`[^]*?sort `(\w+)`/g)].map(([, index, partition, sort]) => ({ index, partition, sort }));
    assert.deepEqual(
      described.map(({ index }) => index).sort(),
      [...indexes.keys()].sort(),
    );
    for (const { index, partition, sort } of described) {
      const { partition: tablePartition, sort: tableSort } = indexes.get(index)!;
      assert.deepEqual({ partition, sort }, { partition: tablePartition, sort: tableSort }, index);
    }
    // "It holds the keys and `provider`, `subjectId`, …": the attributes byOutcome projects.
    const holds = /`byOutcome`[^]*?It holds the keys and ([^:]+):/.exec(README)?.[1] ?? '';
    assert.deepEqual([...holds.matchAll(/`(\w+)`/g)].map(([, name]) => name), indexes.get('byOutcome')!.projected);
    for (const [, index] of README.matchAll(/--index-name (\w+)/g)) assert.ok(indexes.has(index), index);
  });
});

describe('alarm and output descriptions (the runbook an alarm links to)', () => {
  test('name alarms, outputs and metrics the stack creates', () => {
    const unknown: string[] = [];
    for (const [alarm, description] of alarms) for (const name of familyNames(description)) if (!known(name)) unknown.push(`${alarm}: ${name}`);
    for (const [output, description] of outputDescriptions) for (const name of familyNames(description)) if (!known(name)) unknown.push(`${output}: ${name}`);
    assert.deepEqual(unknown, []);
  });

  test('name saved queries the stack saves', () => {
    const unknown: string[] = [];
    for (const [alarm, description] of alarms) {
      for (const [, name] of description.matchAll(/saved query "([^"]+)"/g)) {
        if (!name.startsWith(`${stackName}/`) || !queryTitles.has(name.slice(stackName.length + 1))) unknown.push(`${alarm}: ${name}`);
      }
    }
    assert.deepEqual(unknown, []);
  });

  test('give every command line for the deployed stack (its table or DLQ, and a region)', () => {
    const local = [...alarms].flatMap(([alarm, description]) => npmCommands(description).filter((command) => !namesDeployedStack(command)).map((command) => `${alarm}: ${command}`));
    assert.deepEqual(local, []);
  });
});
