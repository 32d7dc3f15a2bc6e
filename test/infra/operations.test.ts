import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { App, type CfnElement, Stack } from 'aws-cdk-lib';
import { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import { Template } from 'aws-cdk-lib/assertions';
import { Code, Function as LambdaFunction, Runtime } from 'aws-cdk-lib/aws-lambda';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import type { IConstruct } from 'constructs';
import { ingest } from '../../functions/core/ingest.ts';
import { createLogger } from '../../functions/shared/log.ts';
import { MAX_BODY_BYTES, keys } from '../../functions/core/pipeline-definition.ts';
import { createSecretCache } from '../../functions/core/secrets.ts';
import type { StateItem } from '../../functions/core/state.ts';
import type { CallbackStore, Item } from '../../functions/core/store.ts';
import { createWorkerHandler } from '../../functions/handlers/worker.ts';
import { getProvider, providers } from '../../functions/providers/index.ts';
import { CallbackApi } from '../../lib/callback-api.ts';
import type { CallbackGatewayStack } from '../../lib/callback-gateway-stack.ts';
import { createGatewayApp, STACK_ID } from '../../lib/gateway-app.ts';
import { REPO_ROOT } from '../../lib/gateway-function.ts';
import { LogMetrics } from '../../lib/log-metrics.ts';
import { PipelineAlarms, type PipelineAlarmsProps } from '../../lib/pipeline-alarms.ts';
import { ProviderIngress } from '../../lib/provider-ingress.ts';
import { listSamples } from '../../local/samples.ts';
import { authentic, contentOf, fixedSecretSource, runIngest, UNIT_SECRETS } from '../support/unit-ingest.ts';
import { pascal } from '../../lib/names.ts';

/**
 * Operations on the template `cdk synth` produces: alarms and the metric filters behind them, the
 * dashboard, the queue's message size, the body limit and secret cache each function is given.
 * The app is built once, exactly as bin/app.ts builds it but without esbuild (nothing here is about
 * a bundle; stack.test.ts checks the bundled app and cdk-nag). The filters are also run against the
 * log lines the real ingest and worker code write, so a renamed field breaks a test, not an alarm.
 */

type Json = Record<string, any>;

const CDK_CONTEXT = (JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Json }).context;
const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };
const NAMESPACE = 'CallbackGateway';

/** The patterns the deployed filters use, spelled out: changing one is a reviewed decision. */
const PATTERNS = {
  Unauthorized: '{ ($.message = "callback") && ($.statusCode = 401) }',
  Quarantined: '{ ($.message = "callback") && ($.result = "quarantined") }',
  ConfirmationConfirmed: '{ ($.message = "stored") && ($.confirmation = "confirmed") }',
  ConfirmationMismatch: '{ ($.message = "stored") && ($.confirmation = "mismatch") }',
  ConfirmationNotFound: '{ ($.message = "stored") && ($.confirmation = "not_found") }',
  WorkerConfigurationErrors: '{ ($.level = "ERROR") && ($.message = "record failed: configuration") }',
  WorkerRetries: '{ $.message = "record failed, will retry" }',
} as const;
type FilteredMetric = keyof typeof PATTERNS;

let stack: CallbackGatewayStack;
let resources: Record<string, Json>;
let outputs: Record<string, Json>;

before(() => {
  ({ stack } = createGatewayApp({ context: { ...CDK_CONTEXT, ...NO_BUNDLING } }));
  const template = Template.fromStack(stack).toJSON();
  resources = template.Resources as Record<string, Json>;
  outputs = template.Outputs as Record<string, Json>;
});

function logicalId(construct: IConstruct): string {
  return stack.getLogicalId(construct.node.defaultChild as CfnElement);
}

function ofType(type: string): [string, Json][] {
  return Object.entries(resources).filter(([, resource]) => resource.Type === type);
}

const ref = (id: string) => ({ Ref: id });

/** The metric filters on one log group, by metric name. */
function filtersOn(logGroupId: string): Map<string, Json> {
  const filters = ofType('AWS::Logs::MetricFilter')
    .map(([, filter]) => filter.Properties)
    .filter((filter) => filter.LogGroupName.Ref === logGroupId);
  return new Map(filters.map((filter) => [filter.MetricTransformations[0].MetricName as string, filter]));
}

/**
 * Whether a CloudWatch Logs JSON filter pattern matches one log line, for the syntax these filters
 * use: `{ $.field = "text" }`, `{ $.field = 401 }`, terms joined by `&&`. Anything else fails the
 * test, so a new kind of pattern gets a matcher before it is trusted.
 */
function matches(pattern: string, line: string): boolean {
  const body = /^\{\s*(.*?)\s*\}$/.exec(pattern)?.[1];
  assert.ok(body, `not a JSON filter pattern: ${pattern}`);
  const event = JSON.parse(line) as Json;
  return body.split('&&').every((term) => {
    const parts = /^\(?\s*\$\.(\w+)\s*=\s*("(?:[^"\\]|\\.)*"|-?\d+)\s*\)?$/.exec(term.trim());
    assert.ok(parts, `unsupported term "${term}" in ${pattern}`);
    const [, field, literal] = parts;
    return literal.startsWith('"') ? event[field] === JSON.parse(literal) : event[field] === Number(literal);
  });
}

/** Which of the given filters' patterns a line matches. */
function matchedBy(filters: Map<string, Json>, line: string): string[] {
  return [...filters].filter(([, filter]) => matches(filter.FilterPattern, line)).map(([name]) => name);
}

/** PipelineAlarms alone in a small stack (one provider, no bundling): for what the props change. */
function alarmsOnly(props: Partial<PipelineAlarmsProps> = {}): Template {
  const small = new Stack(new App(), 'AlarmsOnly');
  const telesign = getProvider('telesign');
  new PipelineAlarms(small, 'Alarms', {
    queue: new Queue(small, 'Queue'),
    deadLetterQueue: new Queue(small, 'Dlq'),
    api: new HttpApi(small, 'Api'),
    worker: new LambdaFunction(small, 'Worker', {
      runtime: Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: Code.fromInline('exports.handler = async () => ({});'),
    }),
    logMetrics: new LogMetrics(small, 'LogMetrics', {
      ingestLogs: [{ providerId: telesign.id, logGroup: new LogGroup(small, 'IngestLogs') }],
      workerLogs: new LogGroup(small, 'WorkerLogs'),
      confirmingProviderIds: [],
    }),
    providers: [telesign],
    ...props,
  });
  return Template.fromStack(small);
}

describe('alarm topic', () => {
  test('the alarms publish to one encrypted-in-transit SNS topic that this account\'s CloudWatch may publish to', () => {
    // act
    const topics = ofType('AWS::SNS::Topic');
    const policy = ofType('AWS::SNS::TopicPolicy')[0][1].Properties;

    // assess
    assert.equal(topics.length, 1);
    assert.deepEqual(policy.Topics, [ref(logicalId(stack.alarms.topic))]);
    const statements = policy.PolicyDocument.Statement as Json[];
    const cloudwatch = statements.find((s) => s.Effect === 'Allow' && s.Principal?.Service === 'cloudwatch.amazonaws.com');
    assert.deepEqual(cloudwatch?.Condition, { StringEquals: { 'aws:SourceAccount': ref('AWS::AccountId') } });
    assert.ok(statements.some((s) => s.Effect === 'Deny' && JSON.stringify(s.Condition).includes('aws:SecureTransport')));
    assert.equal(outputs.AlarmTopicArn.Value.Ref, logicalId(stack.alarms.topic));
  });

  test('an e-mail subscription exists only when alarmEmail is given, for exactly that address', () => {
    // act
    const without = alarmsOnly();
    const withEmail = alarmsOnly({ alarmEmail: 'oncall@example.com' });

    // assess
    without.resourceCountIs('AWS::SNS::Subscription', 0);
    withEmail.resourceCountIs('AWS::SNS::Subscription', 1);
    withEmail.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'oncall@example.com' });
    assert.equal(ofType('AWS::SNS::Subscription').length, 0, 'the default app subscribes nobody');
  });
});
describe('alarms', () => {
  interface ExpectedAlarm {
    readonly namespace: string;
    readonly metricName: string;
    readonly dimensions: Json[];
    readonly statistic: string;
    readonly threshold: number;
    readonly comparison: 'GreaterThanOrEqualToThreshold' | 'GreaterThanThreshold';
    /** What the description must tell the on-call person. */
    readonly tells: RegExp;
  }

  function expectedAlarms(): Map<string, ExpectedAlarm> {
    const queueName = (queue: IConstruct) => [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(queue), 'QueueName'] } }];
    const perProvider = (id: string) => [{ Name: 'Provider', Value: id }];
    const atLeast = 'GreaterThanOrEqualToThreshold' as const;
    const expected = new Map<string, ExpectedAlarm>([
      ['DeadLetterQueueNotEmpty', {
        namespace: 'AWS/SQS', metricName: 'ApproximateNumberOfMessagesVisible', dimensions: queueName(stack.pipeline.deadLetterQueue),
        statistic: 'Maximum', threshold: 1, comparison: atLeast, tells: /fix it, then .*npm run redrive/,
      }],
      ['OldestMessageTooOld', {
        namespace: 'AWS/SQS', metricName: 'ApproximateAgeOfOldestMessage', dimensions: queueName(stack.pipeline.queue),
        statistic: 'Maximum', threshold: 900, comparison: atLeast, tells: /worker is failing or falling behind/,
      }],
      ['Api5xx', {
        namespace: 'AWS/ApiGateway', metricName: '5xx', dimensions: [{ Name: 'ApiId', Value: ref(logicalId(stack.api.httpApi)) }],
        statistic: 'Sum', threshold: 1, comparison: atLeast, tells: /REPLACE_ME/,
      }],
      ['WorkerErrors', {
        namespace: 'AWS/Lambda', metricName: 'Errors', dimensions: [{ Name: 'FunctionName', Value: ref(logicalId(stack.pipeline.worker)) }],
        statistic: 'Sum', threshold: 1, comparison: atLeast, tells: /dead-letter queue/,
      }],
      ['WorkerConfigurationErrors', {
        namespace: NAMESPACE, metricName: 'WorkerConfigurationErrors', dimensions: [],
        statistic: 'Sum', threshold: 1, comparison: atLeast, tells: /403 from TemboPlus means its apiToken is wrong.*npm run redrive/,
      }],
    ]);
    for (const provider of providers) {
      const name = pascal(provider.id);
      expected.set(`${name}Unauthorized`, {
        namespace: NAMESPACE, metricName: 'Unauthorized', dimensions: perProvider(provider.id),
        statistic: 'Sum', threshold: 20, comparison: 'GreaterThanThreshold', tells: /forging callbacks.*"previous"/,
      });
      expected.set(`${name}Quarantined`, {
        namespace: NAMESPACE, metricName: 'Quarantined', dimensions: perProvider(provider.id),
        statistic: 'Sum', threshold: 1, comparison: atLeast, tells: new RegExp(`functions/providers/${provider.id}\\.ts.*npm run reprocess .*--provider ${provider.id}`),
      });
      if (!provider.lookup) continue;
      expected.set(`${name}ConfirmationMismatch`, {
        namespace: NAMESPACE, metricName: 'ConfirmationMismatch', dimensions: perProvider(provider.id),
        statistic: 'Sum', threshold: 1, comparison: atLeast, tells: /contradicts a callback.*rotate the token/,
      });
      expected.set(`${name}ConfirmationNotFound`, {
        namespace: NAMESPACE, metricName: 'ConfirmationNotFound', dimensions: perProvider(provider.id),
        statistic: 'Sum', threshold: 1, comparison: atLeast, tells: /does not know a transfer.*baseUrl/,
      });
    }
    return expected;
  }

  test('exactly the expected alarms exist, each on its metric and threshold, notifying the topic on alarm and recovery', () => {
    // prepare
    const expected = expectedAlarms();
    const topic = ref(logicalId(stack.alarms.topic));

    // act
    const alarms = new Map(ofType('AWS::CloudWatch::Alarm').map(([, alarm]) => [alarm.Properties.AlarmName as string, alarm.Properties]));

    // assess
    assert.deepEqual([...alarms.keys()].sort(), [...expected.keys()].map((name) => `${STACK_ID}-${name}`).sort());
    assert.ok(expected.has('TemboplusConfirmationMismatch') && expected.has('TemboplusConfirmationNotFound'), 'TemboPlus confirms');
    for (const [name, want] of expected) {
      const alarm = alarms.get(`${STACK_ID}-${name}`)!;
      assert.equal(alarm.Namespace, want.namespace, name);
      assert.equal(alarm.MetricName, want.metricName, name);
      assert.deepEqual(alarm.Dimensions ?? [], want.dimensions, name);
      assert.equal(alarm.Statistic, want.statistic, name);
      assert.equal(alarm.Period, 300, name);
      assert.equal(alarm.EvaluationPeriods, 1, name);
      assert.equal(alarm.Threshold, want.threshold, name);
      assert.equal(alarm.ComparisonOperator, want.comparison, name);
      assert.equal(alarm.TreatMissingData, 'notBreaching', `${name}: no data means nothing happened`);
      assert.deepEqual(alarm.AlarmActions, [topic], name);
      assert.deepEqual(alarm.OKActions, [topic], name);
      assert.match(alarm.AlarmDescription, want.tells, name);
      assert.ok(alarm.AlarmDescription.length <= 1024, `${name}: CloudWatch's description limit`);
    }
  });

  test('every alarm on a custom metric has a metric filter producing it, with the dimension it alarms on', () => {
    // prepare
    const filters = ofType('AWS::Logs::MetricFilter').map(([, filter]) => filter.Properties.MetricTransformations[0] as Json);

    // act
    const custom = ofType('AWS::CloudWatch::Alarm')
      .map(([, alarm]) => alarm.Properties)
      .filter((alarm) => alarm.Namespace === NAMESPACE);

    // assess
    assert.equal(custom.length, 1 + 2 * providers.length + 2);
    for (const alarm of custom) {
      const producers = filters.filter((t) => t.MetricNamespace === alarm.Namespace && t.MetricName === alarm.MetricName);
      assert.ok(producers.length > 0, `${alarm.AlarmName}: some filter emits ${alarm.MetricName}`);
      const alarmKeys = ((alarm.Dimensions ?? []) as Json[]).map((d) => d.Name);
      for (const producer of producers) {
        assert.deepEqual(((producer.Dimensions ?? []) as Json[]).map((d) => d.Key), alarmKeys, alarm.AlarmName);
      }
    }
  });

  test('the thresholds are settings: a committed unauthorizedAlarmThreshold of 5 moves the 401 alarms, a bad value is refused', () => {
    // act
    const { stack: changed } = createGatewayApp({
      context: { ...CDK_CONTEXT, ...NO_BUNDLING, settings: { ...CDK_CONTEXT.settings, unauthorizedAlarmThreshold: 5, notFoundAlarmThreshold: 3 } },
    });
    const template = Template.fromStack(changed);

    // assess
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Unauthorized', Threshold: 5, ComparisonOperator: 'GreaterThanThreshold' });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ConfirmationNotFound', Threshold: 3 });
    assert.throws(
      () => createGatewayApp({ context: { ...NO_BUNDLING, oneOff: 'true', unauthorizedAlarmThreshold: '0' } }),
      /unauthorizedAlarmThreshold must be an integer from 1 to 1000000, got 0/,
    );
    assert.throws(
      () => createGatewayApp({ context: { ...NO_BUNDLING, oneOff: 'true', mismatchAlarmThreshold: 'x' } }),
      /mismatchAlarmThreshold must be a number, got "x"/,
    );
  });
});

describe('metric filters', () => {
  test('each ingest log group counts its 401s and quarantines per provider', () => {
    for (const ingress of stack.ingresses) {
      // act
      const filters = filtersOn(logicalId(ingress.logGroup));

      // assess
      assert.deepEqual([...filters.keys()].sort(), ['Quarantined', 'Unauthorized'], ingress.provider.id);
      for (const [metricName, filter] of filters) {
        assert.equal(filter.FilterPattern, PATTERNS[metricName as FilteredMetric]);
        assert.deepEqual(filter.MetricTransformations, [
          { MetricName: metricName, MetricNamespace: NAMESPACE, MetricValue: '1', Unit: 'Count', Dimensions: [{ Key: 'Provider', Value: '$.provider' }] },
        ]);
      }
    }
  });

  test('the worker log group counts configuration errors, retries and each confirmation verdict', () => {
    // act
    const filters = filtersOn(logicalId(stack.pipeline.workerLogs));

    // assess
    assert.deepEqual(
      [...filters.keys()].sort(),
      ['ConfirmationConfirmed', 'ConfirmationMismatch', 'ConfirmationNotFound', 'WorkerConfigurationErrors', 'WorkerRetries'],
    );
    for (const [metricName, filter] of filters) {
      assert.equal(filter.FilterPattern, PATTERNS[metricName as FilteredMetric]);
      const perProvider = metricName.startsWith('Confirmation');
      assert.deepEqual(filter.MetricTransformations, [
        {
          MetricName: metricName,
          MetricNamespace: NAMESPACE,
          MetricValue: '1',
          Unit: 'Count',
          ...(perProvider ? { Dimensions: [{ Key: 'Provider', Value: '$.provider' }] } : {}),
        },
      ]);
    }
  });
});

/** An in-memory CallbackStore with the DynamoDB store's conditional semantics. */
function memoryStore(): CallbackStore {
  const items = new Map<string, Item>();
  const keyOf = (key: { pk: string; sk: string }) => `${key.pk}\u0000${key.sk}`;
  return {
    async putOnce(item) {
      const key = keyOf(item as { pk: string; sk: string });
      if (items.has(key)) return 'exists';
      items.set(key, item);
      return 'created';
    },
    async getItem(key) {
      return items.get(keyOf(key));
    },
    async getState(provider, subjectId, part) {
      return items.get(keyOf(keys.state(provider, subjectId, part))) as StateItem | undefined;
    },
    async putState(state, expectedVersion) {
      const key = keyOf(keys.state(state.provider, state.subjectId, state.part));
      if ((items.get(key) as StateItem | undefined)?.version !== expectedVersion) return 'conflict';
      items.set(key, { ...state });
      return 'written';
    },
    async recordVerdict(key, verdict) {
      const item = items.get(keyOf(key));
      if (item) items.set(keyOf(key), { ...item, confirmation: verdict.kind, asks: Number(item.asks ?? 0) + 1 });
    },
    // This test's worker never sweeps: nothing is due, nothing is claimed.
    dueRechecks: async () => [],
    claimRecheck: async () => false,
  };
}

describe('the filters match the lines the functions write', () => {
  const temboplus = getProvider('temboplus');

  test('ingest: a 401 counts as Unauthorized, a quarantine as Quarantined, an accepted callback as neither', async () => {
    // prepare
    const filters = filtersOn(logicalId(stack.ingresses.find((ingress) => ingress.provider.id === 'temboplus')!.logGroup));
    const sample = contentOf(listSamples('temboplus')[0]);
    const invalid = contentOf(listSamples('temboplus', 'invalid')[0]);
    const forged = authentic(temboplus, sample, { ...UNIT_SECRETS.temboplus, token: 'forged-token-0000' });

    // act
    const [accepted, unauthorized, quarantined] = await Promise.all([
      runIngest(temboplus, authentic(temboplus, sample)),
      runIngest(temboplus, forged),
      runIngest(temboplus, authentic(temboplus, invalid)),
    ]);

    // assess
    assert.equal(unauthorized.response.statusCode, 401);
    assert.equal(quarantined.response.body.quarantined, true);
    assert.equal(accepted.response.statusCode, 200);
    assert.deepEqual(unauthorized.lines.map((line) => matchedBy(filters, line)), [['Unauthorized']]);
    assert.deepEqual(quarantined.lines.map((line) => matchedBy(filters, line)), [['Quarantined']]);
    assert.deepEqual(accepted.lines.map((line) => matchedBy(filters, line)), [[]]);
  });

  /** One TemboPlus callback through the real worker handler, TemboPlus's status endpoint answering `answer`. */
  async function runWorker(answer: (callback: Json) => Response): Promise<string[]> {
    const sample = listSamples('temboplus')[0];
    const queued = await runIngest(temboplus, authentic(temboplus, contentOf(sample)));
    const callback = JSON.parse(sample.body!.toString('utf8')) as Json;
    const lines: string[] = [];
    const handler = createWorkerHandler({
      deps: {
        store: memoryStore(),
        secrets: createSecretCache(fixedSecretSource({ temboplus: UNIT_SECRETS.temboplus })),
        lookup: { fetch: async () => answer(callback), timeoutMs: 1000, newRequestId: () => 'request-id' },
        now: () => new Date('2025-01-01T10:00:01.000Z'),
        log: createLogger({ service: 'worker', write: (line) => lines.push(line) }),
        retention: { eventDays: 90, sensitiveHours: 24 },
        settleAttempts: 1,
      },
    });
    const record = { messageId: 'm-1', receiptHandle: 'r-1', body: queued.sent[0], attributes: { ApproximateReceiveCount: '1' } };
    await handler({ Records: [record as unknown as SQSRecord] } as SQSEvent);
    return lines;
  }

  const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  for (const [verdict, answer, metric] of [
    ['agrees', (callback: Json) => json(callback), 'ConfirmationConfirmed'],
    ['reports another status', (callback: Json) => json({ ...callback, status: callback.status === 'FAILED' ? 'COMPLETED' : 'FAILED' }), 'ConfirmationMismatch'],
    ['answers 404', () => json({ message: 'not found' }, 404), 'ConfirmationNotFound'],
    ['answers 403 (wrong apiToken)', () => json({ message: 'forbidden' }, 403), 'WorkerConfigurationErrors'],
    ['answers 500', () => json({ message: 'oops' }, 500), 'WorkerRetries'],
  ] as const) {
    test(`worker: when TemboPlus ${verdict}, the line counts as ${metric} and nothing else`, async () => {
      // prepare
      const filters = filtersOn(logicalId(stack.pipeline.workerLogs));

      // act
      const lines = await runWorker(answer);

      // assess
      assert.deepEqual(lines.flatMap((line) => matchedBy(filters, line)), [metric], lines.join('\n'));
    });
  }
});

/** The dashboard body with each CloudFormation reference written as `@LogicalId` / `@LogicalId.Attribute`. */
function dashboardBody(): { widgets: Json[] } {
  const [, dashboard] = ofType('AWS::CloudWatch::Dashboard')[0];
  const parts = dashboard.Properties.DashboardBody['Fn::Join'][1] as unknown[];
  const text = parts
    .map((part) => {
      if (typeof part === 'string') return part;
      const token = part as Json;
      return token.Ref ? `@${token.Ref}` : `@${token['Fn::GetAtt'].join('.')}`;
    })
    .join('');
  return JSON.parse(text) as { widgets: Json[] };
}

describe('dashboard', () => {
  test('one dashboard named after the stack and the region, its URL an output', () => {
    // act
    const dashboards = ofType('AWS::CloudWatch::Dashboard');

    // assess
    assert.equal(dashboards.length, 1);
    const [id, dashboard] = dashboards[0];
    assert.deepEqual(dashboard.Properties.DashboardName, { 'Fn::Join': ['', [`${STACK_ID}-`, ref('AWS::Region')]] });
    const url = outputs.DashboardUrl.Value['Fn::Join'][1] as unknown[];
    assert.deepEqual(url.at(-1), ref(id));
    assert.match(url.filter((part) => typeof part === 'string').join(''), /console\.aws\.amazon\.com\/cloudwatch\/home\?region=.*#dashboards/);
  });

  test('it reads left to right like the pipeline and shows the DLQ, the worker, every ingest, TemboPlus verdicts and the table', () => {
    // prepare
    const workerId = logicalId(stack.pipeline.worker);
    const dlqName = `@${logicalId(stack.pipeline.deadLetterQueue)}.QueueName`;

    // act
    const { widgets } = dashboardBody();
    const graphs = widgets.filter((widget) => widget.type === 'metric');
    const metricsOf = (widget: Json) => widget.properties.metrics as unknown[][];
    const column = (title: RegExp) => {
      const found = graphs.filter((widget) => title.test(widget.properties.title));
      assert.ok(found.length > 0, `a graph titled ${title}`);
      return Math.min(...found.map((widget) => widget.x as number));
    };

    // assess
    const stages = [/^API/, /^Ingest/, /^(Queue|Dead-letter)/, /^Worker/, /^TemboPlus/, /^Table/].map(column);
    assert.deepEqual(stages, [...stages].sort((a, b) => a - b), 'API, ingest, queue, worker, confirmation, table from left to right');
    assert.equal(new Set(stages).size, stages.length, 'one column per stage');
    assert.ok(widgets.some((widget) => widget.type === 'alarm' && widget.properties.alarms.length === ofType('AWS::CloudWatch::Alarm').length));

    const all = graphs.flatMap(metricsOf).map((metric) => metric.filter((part) => typeof part === 'string').join(' '));
    const has = (what: string) => assert.ok(all.some((metric) => metric.includes(what)), `the dashboard shows ${what}`);
    has(`AWS/SQS ApproximateNumberOfMessagesVisible QueueName ${dlqName}`);
    for (const metric of ['Invocations', 'Errors', 'Duration', 'ConcurrentExecutions']) has(`AWS/Lambda ${metric} FunctionName @${workerId}`);
    for (const ingress of stack.ingresses) {
      for (const metric of ['Invocations', 'Errors', 'Duration']) has(`AWS/Lambda ${metric} FunctionName @${logicalId(ingress.function)}`);
      for (const metric of ['Unauthorized', 'Quarantined']) has(`${NAMESPACE} ${metric} Provider ${ingress.provider.id}`);
    }
    for (const metric of ['ConfirmationConfirmed', 'ConfirmationMismatch', 'ConfirmationNotFound']) has(`${NAMESPACE} ${metric} Provider temboplus`);
    for (const metric of ['Count', '4xx', '5xx', 'Latency']) has(`AWS/ApiGateway ${metric} ApiId @${logicalId(stack.api.httpApi)}`);
    for (const metric of ['NumberOfMessagesSent', 'NumberOfMessagesReceived', 'ApproximateAgeOfOldestMessage']) has(`AWS/SQS ${metric}`);
    for (const metric of ['ConsumedWriteCapacityUnits', 'ConsumedReadCapacityUnits', 'WriteThrottleEvents', 'ReadThrottleEvents']) {
      has(`AWS/DynamoDB ${metric} TableName @${logicalId(stack.table.table)}`);
    }
  });
});

describe('queue message size', () => {
  test('the queue and the DLQ take 1 MiB messages (a 256 KiB body plus its parsed copy fits, and a redrive can move it back)', () => {
    for (const queue of [stack.pipeline.queue, stack.pipeline.deadLetterQueue]) {
      // act
      const props = resources[logicalId(queue)].Properties;

      // assess
      assert.equal(props.MaximumMessageSize, 1_048_576, queue.node.path);
    }
  });
});

describe('body size limit and throttling', () => {
  test('every ingest function is told MAX_BODY_BYTES = 262144 and the secret cache time; the worker the same cache time', () => {
    // act
    const worker = resources[logicalId(stack.pipeline.worker)].Properties.Environment.Variables;

    // assess
    assert.equal(MAX_BODY_BYTES, 262_144);
    assert.equal(stack.ingresses.length, providers.length);
    for (const ingress of stack.ingresses) {
      const env = resources[logicalId(ingress.function)].Properties.Environment.Variables;
      assert.equal(env.MAX_BODY_BYTES, '262144', ingress.provider.id);
      assert.equal(env.SECRET_CACHE_SECONDS, '300', ingress.provider.id);
    }
    assert.equal(worker.SECRET_CACHE_SECONDS, '300');
  });

  test('the ingest enforces the limit it is given: one byte over is 413, the limit itself passes', async () => {
    // prepare
    const telesign = getProvider('telesign');
    const limit = 2048;
    const deps = (lines: string[]) => ({
      secrets: createSecretCache(fixedSecretSource({ telesign: UNIT_SECRETS.telesign })),
      send: async () => undefined,
      log: createLogger({ service: 'unit', write: (line: string) => lines.push(line) }),
      maxBodyBytes: limit,
    });
    const lines: string[] = [];
    const body = (size: number) => Buffer.from(`{"pad":"${'x'.repeat(size - 10)}"}`);

    // act
    const over = await ingest(telesign, authentic(telesign, { body: body(limit + 1) }), deps(lines));
    const at = await ingest(telesign, authentic(telesign, { body: body(limit) }), deps(lines));

    // assess
    assert.equal(body(limit).length, limit);
    assert.equal(over.statusCode, 413);
    assert.match(String(over.body.message), /limited to 2048 bytes/);
    assert.notEqual(at.statusCode, 413, 'a body at the limit is read (and judged on its content)');
  });

  test('maxBodyBytes and secretCacheSeconds are construct settings; the limit cannot be raised past 256 KiB', () => {
    // prepare
    const small = new Stack(new App({ context: NO_BUNDLING }), 'IngressOnly');
    const api = new CallbackApi(small, 'Api');
    const queue = new Queue(small, 'Queue');

    // act
    const ingress = new ProviderIngress(small, 'Ingress', { provider: getProvider('relid'), api, queue, maxBodyBytes: 65_536, secretCacheSeconds: 60 });
    const env = Template.fromStack(small).toJSON().Resources[small.getLogicalId(ingress.function.node.defaultChild as CfnElement)].Properties.Environment.Variables;

    // assess
    assert.equal(env.MAX_BODY_BYTES, '65536');
    assert.equal(env.SECRET_CACHE_SECONDS, '60');
    assert.throws(
      () => createGatewayApp({ context: { ...NO_BUNDLING, maxBodyBytes: String(MAX_BODY_BYTES + 1) } }),
      /maxBodyBytes must be an integer from 1024 to 262144, got 262145/,
    );
  });

  test('each provider route has its own throttling, as does the stage default', () => {
    // act
    const [, stage] = ofType('AWS::ApiGatewayV2::Stage')[0];

    // assess
    const settings = stage.Properties.RouteSettings as Record<string, Json>;
    assert.equal(Object.keys(settings).length, providers.length);
    for (const provider of providers) {
      const route = settings[`${provider.route.method} ${provider.route.path}`];
      assert.deepEqual(route, { ThrottlingRateLimit: 200, ThrottlingBurstLimit: 400 }, provider.id);
    }
    assert.deepEqual(stage.Properties.DefaultRouteSettings, { ThrottlingRateLimit: 200, ThrottlingBurstLimit: 400 });
  });
});

describe('secret rotation, stack side', () => {
  test('each secret says how to rotate, and the functions reload it within the cache time', () => {
    for (const ingress of stack.ingresses) {
      // act
      const secret = resources[logicalId(ingress.secret)].Properties;
      const env = resources[logicalId(ingress.function)].Properties.Environment.Variables;

      // assess
      assert.match(secret.Description, /"previous".*both are accepted until you remove/, ingress.provider.id);
      assert.ok(Number(env.SECRET_CACHE_SECONDS) <= 300, 'a rotation waits at most five minutes for the new values to load');
    }
  });
});
