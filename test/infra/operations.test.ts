import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { App, type CfnElement, Stack } from 'aws-cdk-lib';
import { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Code, Function as LambdaFunction, Runtime } from 'aws-cdk-lib/aws-lambda';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import type { IConstruct } from 'constructs';
import { ingest } from '../../functions/core/ingest.ts';
import { createLogger } from '../../functions/shared/log.ts';
import { DependencyError } from '../../functions/shared/errors.ts';
import { MAX_BODY_BYTES, QUEUE, TABLE, keys } from '../../functions/core/pipeline-definition.ts';
import { processRecheck } from '../../functions/core/recheck.ts';
import { DEFAULT_RECONCILE } from '../../functions/core/reconcile.ts';
import { createSecretCache } from '../../functions/core/secrets.ts';
import type { StateItem } from '../../functions/core/state.ts';
import type { CallbackStore, Item } from '../../functions/core/store.ts';
import { withInvocationLogFields } from '../../functions/handlers/invocation-log.ts';
import { createPublisherHandler } from '../../functions/handlers/publisher.ts';
import { createWorkerHandler } from '../../functions/handlers/worker.ts';
import { getProvider, providers } from '../../functions/providers/index.ts';
import { ACCESS_LOG_FIELDS, CallbackApi } from '../../lib/callback-api.ts';
import { SETTING_DEFAULTS } from '../../lib/validate.ts';
import type { CallbackGatewayStack } from '../../lib/callback-gateway-stack.ts';
import { createGatewayApp, STACK_ID } from '../../lib/gateway-app.ts';
import { REPO_ROOT } from '../../lib/gateway-function.ts';
import { LogMetrics } from '../../lib/log-metrics.ts';
import { PipelineAlarms, type PipelineAlarmsProps } from '../../lib/pipeline-alarms.ts';
import { ProviderIngress } from '../../lib/provider-ingress.ts';
import { listSamples } from '../../local/samples.ts';
import { authentic, contentOf, fixedSecretSource, runIngest, UNIT_SECRETS } from '../support/unit-ingest.ts';
import { matchesFilterPattern as matches } from '../support/filter-pattern.ts';
import { passesInsightsFilters } from '../support/insights-filter.ts';
import { passesFilters } from '../support/lambda-filter.ts';
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
  /** The worker's own quarantines, into the same Quarantined metric (on the worker's log group). */
  WorkerQuarantined: '{ ($.message = "quarantined") && ($.duplicate IS FALSE) && ($.atIngest IS FALSE) }',
  ConfirmationConfirmed: '{ (($.message = "stored") || ($.message = "rechecked")) && ($.confirmation = "confirmed") }',
  ConfirmationMismatch: '{ (($.message = "stored") || ($.message = "rechecked")) && ($.confirmation = "mismatch") }',
  ConfirmationNotFound: '{ (($.message = "stored") || ($.message = "rechecked")) && ($.confirmation = "not_found") }',
  WorkerConfigurationErrors: '{ ($.level = "ERROR") && (($.message = "record failed: configuration") || ($.message = "recheck: configuration")) }',
  Rechecks:
    '{ ($.message = "rechecked") || ($.message = "recheck: stale") || ($.message = "recheck: status endpoint fault, asking again later") || ($.message = "recheck: configuration") }',
  RecheckFaults: '{ ($.message = "recheck: status endpoint fault, asking again later") || ($.message = "recheck: configuration") }',
  Stale: '{ $.message = "recheck: stale" }',
  WorkerRetries: '{ $.message = "record failed, will retry" }',
  Accepted: '{ ($.message = "stored") && ($.result != "redelivered") }',
  Stored: '{ ($.message = "stored") && ($.result = "stored") }',
  StoreLag: '{ ($.message = "stored") && ($.result = "stored") }',
  Duplicates: '{ ($.message = "stored") && ($.result = "duplicate") }',
  ReceivedManyTimes: '{ ($.receiveCount >= 4) && (($.message = "record failed, will retry") || ($.message = "record failed: configuration")) }',
  ApiThrottled: '{ $.status = "429" }',
  PublishFailures: '{ ($.message = "stream batch") && ($.failed > 0) }',
  StateChanged: '{ ($.message = "stored") && ($.stateChanged IS TRUE) }',
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

/** Which of the given filters' patterns a line matches. */
function matchedBy(filters: Map<string, Json>, line: string): string[] {
  return [...filters].filter(([, filter]) => matches(filter.FilterPattern, line)).map(([name]) => name);
}

/**
 * PipelineAlarms alone in a small stack (one provider, no bundling): for what the props change
 * (given as a function of the stack when they hold constructs of their own).
 */
function alarmsOnly(props: Partial<PipelineAlarmsProps> | ((small: Stack) => Partial<PipelineAlarmsProps>) = {}): Template {
  const small = new Stack(new App(), 'AlarmsOnly');
  const telesign = getProvider('telesign');
  new PipelineAlarms(small, 'Alarms', {
    queue: new Queue(small, 'Queue'),
    deadLetterQueue: new Queue(small, 'Dlq'),
    api: new HttpApi(small, 'Api'),
    worker: new LambdaFunction(small, 'Worker', {
      runtime: Runtime.NODEJS_24_X,
      handler: 'index.handler',
      code: Code.fromInline('exports.handler = async () => ({});'),
    }),
    logMetrics: new LogMetrics(small, 'LogMetrics', {
      ingestLogs: [{ providerId: telesign.id, logGroup: new LogGroup(small, 'IngestLogs') }],
      workerLogs: new LogGroup(small, 'WorkerLogs'),
      accessLogs: new LogGroup(small, 'AccessLogs'),
      confirmingProviderIds: [],
    }),
    providers: [telesign],
    ...(typeof props === 'function' ? props(small) : props),
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
    /** Undefined for a metric-math alarm: then `sums` names the metrics it adds up. */
    readonly namespace?: string;
    readonly metricName?: string;
    readonly dimensions: Json[];
    readonly statistic?: string;
    /** A math alarm's metrics, each `namespace metric dimension value …` (values as `@LogicalId` or text). */
    readonly sums?: string[];
    readonly threshold: number;
    readonly comparison: 'GreaterThanOrEqualToThreshold' | 'GreaterThanThreshold';
    /** What the description must tell the on-call person. */
    readonly tells: RegExp;
  }

  /** A math alarm's summed metrics, each as `namespace metric name value …`, and its expression. */
  function summed(alarm: Json): { expression: string; metrics: string[] } {
    const entries = alarm.Metrics as Json[];
    const [expression] = entries.filter((entry) => entry.Expression);
    const value = (v: unknown) => (typeof v === 'string' ? v : `@${(v as Json).Ref}`);
    const metrics = entries
      .filter((entry) => entry.MetricStat)
      .map(({ MetricStat: { Metric: metric, Stat, Period } }) => {
        assert.deepEqual([Stat, Period], ['Sum', 300]);
        const dimensions = [...((metric.Dimensions ?? []) as Json[])].sort((a, b) => String(a.Name).localeCompare(String(b.Name)));
        return [metric.Namespace, metric.MetricName, ...dimensions.flatMap((d) => [d.Name, value(d.Value)])].join(' ');
      });
    return { expression: expression.Expression, metrics };
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
      ['DeadLetterQueueExpiring', {
        namespace: 'AWS/SQS', metricName: 'ApproximateAgeOfOldestMessage', dimensions: queueName(stack.pipeline.deadLetterQueue),
        statistic: 'Maximum', threshold: 8 * 86_400, comparison: atLeast, tells: /for 8 days: SQS may delete it 2 days from now.*up to 4 days in the queue before.*answered 200.*npm run redrive/,
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
        statistic: 'Sum', threshold: 1, comparison: atLeast, tells: /refuses our credentials at a re-check.*403 from TemboPlus means its apiToken is wrong.*npm run redrive/,
      }],
      ['ReceivedManyTimes', {
        namespace: NAMESPACE, metricName: 'ReceivedManyTimes', dimensions: [],
        statistic: 'Sum', threshold: 1, comparison: atLeast, tells: /failed again on its 4th receive.*oldest-message age leaves such messages out.*saved query "CallbackGateway\/Records received 4 times or more"/,
      }],
      ['ApiThrottled', {
        namespace: NAMESPACE, metricName: 'ApiThrottled', dimensions: [],
        statistic: 'Sum', threshold: 1, comparison: atLeast, tells: /429.*a lost one for providers that retry.*saved query "CallbackGateway\/Throttled requests \(429\) by route and source".*throttleRateLimit/,
      }],
      ['WorkerThrottles', {
        namespace: 'AWS/Lambda', metricName: 'Throttles', dimensions: [{ Name: 'FunctionName', Value: ref(logicalId(stack.pipeline.worker)) }],
        statistic: 'Sum', threshold: 1, comparison: atLeast, tells: /refused to run the worker.*wait in the queue/,
      }],
      ['IngestThrottles', {
        dimensions: [], threshold: 1, comparison: atLeast, tells: /refused to run an ingest function.*workerMaxConcurrency.*Service Quotas/,
        sums: stack.ingresses.map((ingress) => `AWS/Lambda Throttles FunctionName @${logicalId(ingress.function)}`),
      }],
      ['EventsDeadLetterQueueNotEmpty', {
        namespace: 'AWS/SQS', metricName: 'ApproximateNumberOfMessagesVisible', dimensions: queueName(stack.events.deadLetterQueue),
        statistic: 'Maximum', threshold: 1, comparison: atLeast, tells: /never published as events.*DDBStreamBatchInfo.*npm run redrive -- --events --dlq-url <EventsDeadLetterQueueUrl> --bus <EventBusName> --table <TableName> --region <region>.*setAside: one event the bus refused for what it holds.*ValidationException etc.: its call refused whole.*never its detail.*re-read those states/,
      }],
      ['PublisherErrors', {
        dimensions: [], threshold: 1, comparison: atLeast, tells: /Nothing is lost yet.*"publish failed" names the events.*AccessDeniedException.*ThrottlingException/,
        sums: [`AWS/Lambda Errors FunctionName @${logicalId(stack.events.publisher)}`, `AWS/Lambda Throttles FunctionName @${logicalId(stack.events.publisher)}`, `${NAMESPACE} PublishFailures`],
      }],
      ['EventsDelayed', {
        namespace: 'AWS/Lambda', metricName: 'IteratorAge', dimensions: [{ Name: 'FunctionName', Value: ref(logicalId(stack.events.publisher)) }],
        statistic: 'Maximum', threshold: 120_000, comparison: atLeast, tells: /over 120 s old.*one-time code can expire.*dead-letter queue/,
      }],
      ['TableThrottles', {
        dimensions: [], threshold: 1, comparison: atLeast, tells: /DynamoDB throttled reads or writes of the table or an index \(byOutcome, byRecheck;.*retries them with back-off/,
        sums: ['', 'GlobalSecondaryIndexName byOutcome ', 'GlobalSecondaryIndexName byRecheck '].flatMap((index) => [
          `AWS/DynamoDB ReadThrottleEvents ${index}TableName @${logicalId(stack.table.table)}`,
          `AWS/DynamoDB WriteThrottleEvents ${index}TableName @${logicalId(stack.table.table)}`,
        ]),
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
      expected.set(`${name}Stale`, {
        namespace: NAMESPACE, metricName: 'Stale', dimensions: perProvider(provider.id),
        statistic: 'Sum', threshold: 1, comparison: atLeast, tells: new RegExp(`stale.*npm run inspect -- --stale --provider ${provider.id}.*Subjects gone stale`),
      });
      if (!provider.lookup) continue;
      expected.set(`${name}ConfirmationMismatch`, {
        namespace: NAMESPACE, metricName: 'ConfirmationMismatch', dimensions: perProvider(provider.id),
        statistic: 'Sum', threshold: 1, comparison: atLeast,
        tells: provider.callbackTrust === 'signed' ? /contradicts what a callback claimed.*signed.*replaced by/ : /contradicts what a callback claimed.*never the callback's.*rotate it/,
      });
      expected.set(`${name}ConfirmationNotFound`, {
        namespace: NAMESPACE, metricName: 'ConfirmationNotFound', dimensions: perProvider(provider.id),
        statistic: 'Sum', threshold: 1, comparison: atLeast, tells: /does not know a subject a callback reported.*baseUrl.*re-checks keep asking/,
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

    // assess (SweepNotRunning, which breaches on silence, and EventsNotPublished, over two periods, have tests of their own below)
    const ownTests = new Set(['SweepNotRunning', 'EventsNotPublished'].map((name) => `${STACK_ID}-${name}`));
    assert.deepEqual([...alarms.keys()].filter((name) => !ownTests.has(name)).sort(), [...expected.keys()].map((name) => `${STACK_ID}-${name}`).sort());
    assert.ok(expected.has('TemboplusConfirmationMismatch') && expected.has('TemboplusConfirmationNotFound'), 'TemboPlus confirms');
    for (const [name, want] of expected) {
      const alarm = alarms.get(`${STACK_ID}-${name}`)!;
      if (want.sums) {
        // Any of the summed metrics may have no data; FILL counts it as 0 rather than dropping the sum.
        assert.deepEqual(summed(alarm), { expression: 'SUM(FILL(METRICS(), 0))', metrics: want.sums }, name);
      } else {
        assert.equal(alarm.Namespace, want.namespace, name);
        assert.equal(alarm.MetricName, want.metricName, name);
        assert.deepEqual(alarm.Dimensions ?? [], want.dimensions, name);
        assert.equal(alarm.Statistic, want.statistic, name);
        assert.equal(alarm.Period, 300, name);
      }
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

  test('SweepNotRunning: no successful sweep in 10 minutes (none run, throttled, or all failing) alarms, silence included; a sweep is never replayed late', () => {
    // prepare
    const sweep = logicalId(stack.reconciliation.sweep);

    // act
    const alarm = ofType('AWS::CloudWatch::Alarm').map(([, each]) => each.Properties).find((each) => each.AlarmName === `${STACK_ID}-SweepNotRunning`)!;
    const config = ofType('AWS::Lambda::EventInvokeConfig').map(([, each]) => each.Properties).find((each) => JSON.stringify(each.FunctionName).includes(sweep));

    // assess
    assert.ok(alarm, 'the alarm exists');
    const entries = alarm.Metrics as Json[];
    const expression = entries.find((entry) => entry.Expression)!;
    assert.equal(expression.Expression, 'FILL(invocations, 0) - FILL(errors, 0)');
    const stats = entries.filter((entry) => entry.MetricStat).map((entry) => [entry.Id, entry.MetricStat.Metric.MetricName, entry.MetricStat.Metric.Dimensions[0].Value.Ref, entry.MetricStat.Stat, entry.MetricStat.Period]);
    assert.deepEqual(stats.sort(), [['errors', 'Errors', sweep, 'Sum', 600], ['invocations', 'Invocations', sweep, 'Sum', 600]]);
    assert.deepEqual([alarm.Threshold, alarm.ComparisonOperator, alarm.EvaluationPeriods, alarm.TreatMissingData], [1, 'LessThanThreshold', 1, 'breaching']);
    assert.match(alarm.AlarmDescription, /no re-check is queued.*Stale alarms stay quiet.*throttled/);
    // A sweep failing part of the way still queues the rest: the lines that say which part failed.
    assert.match(alarm.AlarmDescription, /sweep: lease not taken.*sweep: due re-checks not read.*sweep: re-checks not queued.*the rest was queued/);
    assert.ok(alarm.AlarmDescription.length <= 1024, "CloudWatch's description limit");
    assert.deepEqual(alarm.AlarmActions, [ref(logicalId(stack.alarms.topic))]);
    assert.deepEqual([config?.MaximumRetryAttempts, config?.MaximumEventAgeInSeconds], [0, 60], 'a missed sweep is made up by the next one, not replayed');
  });

  test('EventsNotPublished: state changes and not one publisher invocation in each of 2 periods of 5 minutes in a row alarm; a change published in the next period does not', () => {
    // prepare
    const publisher = logicalId(stack.events.publisher);

    // act
    const alarm = ofType('AWS::CloudWatch::Alarm').map(([, each]) => each.Properties).find((each) => each.AlarmName === `${STACK_ID}-EventsNotPublished`)!;

    // assess
    assert.ok(alarm, 'the alarm exists');
    const entries = alarm.Metrics as Json[];
    const expression = entries.find((entry) => entry.Expression)!;
    // Missing invocations are none (a disabled trigger leaves no data); a period without a change is 0, never breaching.
    assert.equal(expression.Expression, 'IF(FILL(changes, 0) > 0 AND FILL(invocations, 0) == 0, 1, 0)');
    assert.equal(expression.ReturnData, true, 'the expression is what is alarmed on');
    const stats = entries
      .filter((entry) => entry.MetricStat)
      .map(({ Id, ReturnData, MetricStat: { Metric: metric, Stat, Period } }) => [Id, ReturnData, metric.Namespace, metric.MetricName, JSON.stringify(metric.Dimensions ?? []), Stat, Period]);
    assert.deepEqual(stats.sort(), [
      ['changes', false, NAMESPACE, 'StateChanged', '[]', 'Sum', 300],
      ['invocations', false, 'AWS/Lambda', 'Invocations', JSON.stringify([{ Name: 'FunctionName', Value: ref(publisher) }]), 'Sum', 300],
    ]);
    // Two periods in a row, both breaching: a change late in one period is published early in the
    // next, which has invocations; only a publisher not invoked across both fires it.
    assert.deepEqual([alarm.Threshold, alarm.ComparisonOperator, alarm.EvaluationPeriods, alarm.DatapointsToAlarm, alarm.TreatMissingData], [1, 'GreaterThanOrEqualToThreshold', 2, 2, 'notBreaching']);
    assert.deepEqual([alarm.AlarmActions, alarm.OKActions], [[ref(logicalId(stack.alarms.topic))], [ref(logicalId(stack.alarms.topic))]]);

    // The expression over periods of (changes, invocations), each absent when it has no data, read as
    // CloudWatch does (IF, AND, FILL); the alarm fires when EvaluationPeriods values in a row reach the threshold.
    const js = String(expression.Expression).replace(/FILL\((\w+), 0\)/g, '($1 ?? 0)').replace(/ AND /g, ' && ').replace(/^IF\(/, 'when(');
    assert.match(js, /^when\(\(changes \?\? 0\) > 0 && \(invocations \?\? 0\) == 0, 1, 0\)$/);
    const value = new Function('when', 'changes', 'invocations', `return ${js};`) as (when: unknown, changes?: number, invocations?: number) => number;
    type Period = { changes?: number; invocations?: number };
    const fires = (periods: Period[]) => {
      const values = periods.map((period) => value((c: boolean, a: number, b: number) => (c ? a : b), period.changes, period.invocations));
      return values.some((_, n) => n + alarm.EvaluationPeriods <= values.length && values.slice(n, n + alarm.EvaluationPeriods).every((v) => v >= alarm.Threshold));
    };
    assert.equal(fires([{ changes: 4, invocations: 3 }, { changes: 2, invocations: 2 }]), false, 'a working publisher');
    assert.equal(fires([{ changes: 1 }, { invocations: 1 }]), false, 'a change at the end of a period, published early in the next');
    assert.equal(fires([{ changes: 1 }, { changes: 1, invocations: 1 }, { changes: 1 }]), false, 'each period ending on a change, published in the next');
    assert.equal(fires([{}, {}, {}]), false, 'no traffic');
    assert.equal(fires([{ changes: 3 }, { changes: 1 }]), true, 'the trigger disabled (no invocation, so no data)');
    assert.equal(fires([{ changes: 1 }, {}, { changes: 1 }]), false, 'at low traffic, changes in two periods in a row are needed');

    // The description names the publisher, so the command runs as written.
    const [separator, parts] = alarm.AlarmDescription['Fn::Join'] as [string, unknown[]];
    assert.equal(separator, '');
    assert.ok(parts.some((part) => JSON.stringify(part) === JSON.stringify(ref(publisher))), 'names the publisher function');
    const text = parts.map((part) => (typeof part === 'string' ? part : '<publisher>')).join('');
    assert.match(
      text,
      /last 2 periods of 5 minutes.*not invoked once.*event source mapping.*disabled.*list-event-source-mappings --function-name <publisher> \(State, StateTransitionReason, LastProcessingResult\).*--enabled.*dynamodb:DescribeStream, GetRecords, GetShardIterator and ListStreams.*24 hours.*re-read the states.*version/,
    );
    assert.ok(text.length - '<publisher>'.length + 64 <= 1024, "CloudWatch's description limit, with the longest function name");
  });

  test('EventsNotPublished and the StateChanged filter exist only with events out', () => {
    // prepare: the event outlet's parts, as the stack passes them
    const events = (small: Stack): Partial<PipelineAlarmsProps> => {
      const logMetrics = new LogMetrics(small, 'EventsLogMetrics', {
        ingestLogs: [],
        workerLogs: new LogGroup(small, 'EventsWorkerLogs'),
        accessLogs: new LogGroup(small, 'EventsAccessLogs'),
        publisherLogs: new LogGroup(small, 'PublisherLogs'),
        confirmingProviderIds: [],
      });
      const publisher = new LambdaFunction(small, 'Publisher', { runtime: Runtime.NODEJS_24_X, handler: 'index.handler', code: Code.fromInline('exports.handler = async () => ({});') });
      return { events: { deadLetterQueue: new Queue(small, 'EventsDlq'), publisher, publishFailures: logMetrics.publishFailures!, stateChanges: logMetrics.stateChanges! } };
    };
    const alarmNames = (template: Template) => Object.values(template.findResources('AWS::CloudWatch::Alarm')).map((alarm) => String(alarm.Properties.AlarmName));
    const metricNames = (template: Template) => Object.values(template.findResources('AWS::Logs::MetricFilter')).map((filter) => String(filter.Properties.MetricTransformations[0].MetricName));

    // act
    const without = alarmsOnly();
    const withEvents = alarmsOnly(events);

    // assess
    assert.ok(!alarmNames(without).some((name) => name.endsWith('-EventsNotPublished')));
    assert.ok(!metricNames(without).includes('StateChanged'), 'no publisher logs, no state change filter');
    assert.ok(alarmNames(withEvents).some((name) => name.endsWith('-EventsNotPublished')));
    assert.equal(metricNames(withEvents).filter((name) => name === 'StateChanged').length, 1);
  });

  test('every alarm on a custom metric has a metric filter producing it, with the dimension it alarms on', () => {
    // prepare
    const filters = ofType('AWS::Logs::MetricFilter').map(([, filter]) => filter.Properties.MetricTransformations[0] as Json);

    // act
    const custom = ofType('AWS::CloudWatch::Alarm')
      .map(([, alarm]) => alarm.Properties)
      .filter((alarm) => alarm.Namespace === NAMESPACE);

    // assess
    assert.equal(custom.length, 1 + 3 * providers.length + 2 * providers.filter((provider) => provider.lookup).length + 2);
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
  /** A filter's transformation, as the tests expect it: a count of 1, or a measured field. */
  const transformation = (metricName: string, dimensions: Record<string, string>, value = '1', unit = 'Count') => [
    {
      MetricName: metricName,
      MetricNamespace: NAMESPACE,
      MetricValue: value,
      Unit: unit,
      ...(Object.keys(dimensions).length > 0 ? { Dimensions: Object.entries(dimensions).map(([Key, Value]) => ({ Key, Value })) } : {}),
    },
  ];
  const perProvider = { Provider: '$.provider' };

  test('each ingest log group counts its 401s and quarantines per provider', () => {
    for (const ingress of stack.ingresses) {
      // act
      const filters = filtersOn(logicalId(ingress.logGroup));

      // assess
      assert.deepEqual([...filters.keys()].sort(), ['Quarantined', 'Unauthorized'], ingress.provider.id);
      for (const [metricName, filter] of filters) {
        assert.equal(filter.FilterPattern, PATTERNS[metricName as FilteredMetric]);
        assert.deepEqual(filter.MetricTransformations, transformation(metricName, perProvider));
      }
    }
  });

  test('the worker log group counts accepted callbacks, its own quarantines, configuration errors, retries, confirmation verdicts, stored callbacks by outcome, repeats, lag, many receives and state changes', () => {
    // act
    const filters = filtersOn(logicalId(stack.pipeline.workerLogs));

    // assess
    const expected: Record<string, Json[]> = {
      Accepted: transformation('Accepted', perProvider),
      Quarantined: transformation('Quarantined', perProvider),
      ConfirmationConfirmed: transformation('ConfirmationConfirmed', perProvider),
      ConfirmationMismatch: transformation('ConfirmationMismatch', perProvider),
      ConfirmationNotFound: transformation('ConfirmationNotFound', perProvider),
      WorkerConfigurationErrors: transformation('WorkerConfigurationErrors', {}),
      WorkerRetries: transformation('WorkerRetries', {}),
      Stored: transformation('Stored', { ...perProvider, Outcome: '$.outcome' }),
      Duplicates: transformation('Duplicates', perProvider),
      StoreLag: transformation('StoreLag', perProvider, '$.lagMs', 'Milliseconds'),
      ReceivedManyTimes: transformation('ReceivedManyTimes', {}),
      Rechecks: transformation('Rechecks', perProvider),
      RecheckFaults: transformation('RecheckFaults', perProvider),
      Stale: transformation('Stale', perProvider),
      // No dimensions, so a default: 0 for the worker's other lines (EventsNotPublished reads it).
      StateChanged: [{ ...transformation('StateChanged', {})[0], DefaultValue: 0 }],
    };
    assert.deepEqual([...filters.keys()].sort(), Object.keys(expected).sort());
    for (const [metricName, filter] of filters) {
      assert.equal(filter.FilterPattern, PATTERNS[metricName === 'Quarantined' ? 'WorkerQuarantined' : (metricName as FilteredMetric)], metricName);
      assert.deepEqual(filter.MetricTransformations, expected[metricName], metricName);
    }
  });

  test('the API access log counts 429s (throttled requests)', () => {
    // act
    const filters = filtersOn(logicalId(stack.api.accessLogs));

    // assess
    assert.deepEqual([...filters.keys()], ['ApiThrottled']);
    assert.equal(filters.get('ApiThrottled')!.FilterPattern, PATTERNS.ApiThrottled);
    assert.deepEqual(filters.get('ApiThrottled')!.MetricTransformations, transformation('ApiThrottled', {}));
  });

  test('the event publisher\'s log group counts the stream batches it could not publish whole', () => {
    // act
    const filters = filtersOn(logicalId(stack.events.publisherLogs));

    // assess
    assert.deepEqual([...filters.keys()], ['PublishFailures']);
    assert.equal(filters.get('PublishFailures')!.FilterPattern, PATTERNS.PublishFailures);
    assert.deepEqual(filters.get('PublishFailures')!.MetricTransformations, transformation('PublishFailures', {}));
  });

  test('the many-receives count is the setting manyReceivesAlarmCount', () => {
    // act
    const { stack: changed } = createGatewayApp({ context: { ...CDK_CONTEXT, ...NO_BUNDLING, settings: { ...CDK_CONTEXT.settings, manyReceivesAlarmCount: 5 } } });
    const template = Template.fromStack(changed);

    // assess
    template.hasResourceProperties('AWS::Logs::MetricFilter', {
      FilterPattern: PATTERNS.ReceivedManyTimes.replace('>= 4', '>= 5'),
      MetricTransformations: [Match.objectLike({ MetricName: 'ReceivedManyTimes' })],
    });
  });
});

/** A store whose every write is throttled, as DynamoDB reports it to the worker. */
function throttledStore(): CallbackStore {
  const store = memoryStore();
  const throttled = () => Promise.reject(new DependencyError('dynamodb', 'ProvisionedThroughputExceededException: throttled'));
  return { ...store, putOnce: throttled, putState: throttled };
}

/** `store` whose first event item put is carried out, then answered with a fault (a timeout after the write). */
function landedThenFaulted(store: CallbackStore): CallbackStore {
  let faulted = false;
  return {
    ...store,
    async putOnce(item) {
      const result = await store.putOnce(item);
      if (!faulted && String(item.sk).startsWith('EVENT#')) {
        faulted = true;
        throw new DependencyError('dynamodb', 'TimeoutError: the put was carried out, its answer lost');
      }
      return result;
    },
  };
}

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
    async eventStoredBy(prefix, requestId) {
      const found = [...items.values()].find((item) => item.pk === prefix.pk && String(item.sk).startsWith(prefix.sk) && item.requestId === requestId);
      return found ? { pk: String(found.pk), sk: String(found.sk) } : undefined;
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
    farRechecks: async () => [],
    claimRecheck: async () => false,
    dropRecheck: async () => false,
  };
}

/**
 * The lines of one invalid TemboPlus callback: ingest quarantines it (and counts it), the worker
 * stores that quarantine; then the same callback as `npm run reprocess` queues it (no quarantine
 * flag, no parse), which the worker reads and quarantines itself, and that again.
 */
async function quarantineRuns() {
  const temboplus = getProvider('temboplus');
  const queued = await runIngest(temboplus, authentic(temboplus, contentOf(listSamples('temboplus', 'invalid')[0])));
  const { quarantine, payload: _payload, ...reprocessed } = JSON.parse(queued.sent[0]) as Json;
  assert.ok(quarantine, 'ingest quarantined it');
  /** The worker over a table of its own: reprocess removes the quarantine item before it queues the callback again. */
  const workerOverTable = (store: CallbackStore) => async (body: string) => {
    const lines: string[] = [];
    const handler = createWorkerHandler({
      deps: {
        store,
        secrets: createSecretCache(fixedSecretSource({ temboplus: UNIT_SECRETS.temboplus })),
        // Never asked: a callback that does not parse names no subject to ask about.
        lookup: { fetch: async () => new Response('{}', { status: 500 }), timeoutMs: 1000, newRequestId: () => 'request-id' },
        now: () => new Date('2025-01-01T10:00:01.000Z'),
        log: createLogger({ service: 'worker', write: (line) => lines.push(line) }),
        retention: { eventDays: 90, sensitiveHours: 24 },
      },
    });
    const record = { messageId: 'm-1', receiptHandle: 'r-1', body, attributes: { ApproximateReceiveCount: '1' } };
    await withInvocationLogFields(handler)({ Records: [record as unknown as SQSRecord] } as SQSEvent, { awsRequestId: 'lambda-request' });
    assert.deepEqual(lines.map((line) => (JSON.parse(line) as Json).message), ['quarantined']);
    return lines;
  };
  const afterReprocess = workerOverTable(memoryStore());
  return {
    ingest: queued.lines,
    flaggedAtIngest: await workerOverTable(memoryStore())(queued.sent[0]),
    reprocessed: await afterReprocess(JSON.stringify(reprocessed)),
    again: await afterReprocess(JSON.stringify({ ...reprocessed, requestId: 'again' })),
  };
}

describe('the filters match the lines the functions write', () => {
  const temboplus = getProvider('temboplus');

  test('ingest: a 401 counts as Unauthorized, a quarantine as Quarantined; an accepted callback writes nothing at the default level', async () => {
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
    assert.deepEqual(accepted.lines.map((line) => JSON.parse(line).level), ['DEBUG'], 'an accepted callback is a DEBUG line');
    assert.deepEqual(accepted.lines.map((line) => matchedBy(filters, line)), [[]]);
    const asDeployed = await runIngest(temboplus, authentic(temboplus, sample), { logLevel: SETTING_DEFAULTS.applicationLogLevel });
    assert.equal(asDeployed.response.statusCode, 200);
    assert.deepEqual(asDeployed.lines, [], 'at the stack\'s default level (INFO) it writes nothing: the access log and the worker say it');
  });

  /** One TemboPlus callback through the real worker handler, TemboPlus's status endpoint answering `answer`. */
  async function runWorker(
    answer: (callback: Json) => Response,
    receiveCount = 1,
    faults: { readonly table?: boolean; readonly secret?: unknown } = {},
  ): Promise<{ lines: string[]; receivedAt: string }> {
    const sample = listSamples('temboplus')[0];
    const queued = await runIngest(temboplus, authentic(temboplus, contentOf(sample)));
    const callback = JSON.parse(sample.body!.toString('utf8')) as Json;
    const lines: string[] = [];
    const handler = createWorkerHandler({
      deps: {
        store: faults.table ? throttledStore() : memoryStore(),
        secrets: createSecretCache(fixedSecretSource({ temboplus: faults.secret ?? UNIT_SECRETS.temboplus })),
        lookup: { fetch: async () => answer(callback), timeoutMs: 1000, newRequestId: () => 'request-id' },
        now: () => new Date('2025-01-01T10:00:01.000Z'),
        log: createLogger({ service: 'worker', write: (line) => lines.push(line) }),
        retention: { eventDays: 90, sensitiveHours: 24 },
      },
    });
    const record = { messageId: 'm-1', receiptHandle: 'r-1', body: queued.sent[0], attributes: { ApproximateReceiveCount: String(receiveCount) } };
    // As deployed: the Lambda entry point names the invocation on every line.
    await withInvocationLogFields(handler)({ Records: [record as unknown as SQSRecord] } as SQSEvent, { awsRequestId: 'lambda-request' });
    return { lines, receivedAt: (JSON.parse(queued.sent[0]) as Json).receivedAt as string };
  }

  const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

  /**
   * One TemboPlus callback received `answers.length` times by the real worker handler, as deployed
   * (QUEUE.settleAttempts), its status endpoint answering the n-th receive with `answers[n]`.
   */
  async function runReceives(answers: readonly ((callback: Json) => Response)[], store: CallbackStore = memoryStore()): Promise<string[]> {
    const sample = listSamples('temboplus')[0];
    const queued = await runIngest(temboplus, authentic(temboplus, contentOf(sample)));
    const callback = JSON.parse(sample.body!.toString('utf8')) as Json;
    const lines: string[] = [];
    let receive = 0;
    const handler = createWorkerHandler({
      deps: {
        store,
        secrets: createSecretCache(fixedSecretSource({ temboplus: UNIT_SECRETS.temboplus })),
        lookup: { fetch: async () => answers[receive - 1](callback), timeoutMs: 1000, newRequestId: () => 'request-id' },
        now: () => new Date('2025-01-01T10:00:01.000Z'),
        log: createLogger({ service: 'worker', write: (line) => lines.push(line) }),
        retention: { eventDays: 90, sensitiveHours: 24 },
      },
    });
    for (receive = 1; receive <= answers.length; receive++) {
      const record = { messageId: 'm-1', receiptHandle: 'r-1', body: queued.sent[0], attributes: { ApproximateReceiveCount: String(receive) } };
      await withInvocationLogFields(handler)({ Records: [record as unknown as SQSRecord] } as SQSEvent, { awsRequestId: 'lambda-request' });
    }
    return lines;
  }

  /**
   * A re-check of a TemboPlus subject a callback reported (the sample's status, claimed), with the
   * endpoint answering `answer`: the worker's real re-check lines.
   */
  async function runRecheck(answer: (callback: Json) => Response, state: Partial<StateItem> = {}): Promise<string[]> {
    const sample = listSamples('temboplus')[0];
    const callback = JSON.parse(sample.body!.toString('utf8')) as Json;
    const store = memoryStore();
    const now = new Date('2025-01-01T10:00:01.000Z');
    await store.putState(
      {
        provider: 'temboplus', subjectId: String(callback.partnerReference), outcome: 'pending', terminal: false,
        createdAt: now.toISOString(), updatedAt: now.toISOString(), changedAt: now.toISOString(),
        eventCount: 1, recent: [], seen: 1, version: 1, recheckAt: now.toISOString(), recheckShard: 'temboplus#0', rechecks: 0, ...state,
      },
      undefined,
    );
    const lines: string[] = [];
    await processRecheck(
      { v: 1, kind: 'recheck', provider: 'temboplus', subjectId: String(callback.partnerReference), ...(state.part === undefined ? {} : { part: state.part }), at: now.toISOString() },
      {
        store,
        secrets: createSecretCache(fixedSecretSource({ temboplus: UNIT_SECRETS.temboplus })),
        lookup: { fetch: async () => answer(callback), timeoutMs: 1000, newRequestId: () => 'request-id' },
        now: () => now,
        log: createLogger({ service: 'worker', write: (line) => lines.push(line) }),
        retention: { eventDays: 90, sensitiveHours: 24 },
      },
    );
    return lines;
  }

  const lastRecheck = DEFAULT_RECONCILE.intervalsSeconds.length - 1;
  for (const [what, answer, state, metrics] of [
    ['agrees', (callback: Json) => json(callback), {}, ['Rechecks', 'ConfirmationConfirmed']],
    ['answers 404 about a subject a callback reported', () => json({ message: 'not found' }, 404), {}, ['Rechecks', 'ConfirmationNotFound']],
    ['answers 404 about an expected subject nothing reported yet', () => json({ message: 'not found' }, 404), { eventCount: 0, expectedAt: '2025-01-01T10:00:00.000Z' }, ['Rechecks']],
    ['answers 500', () => json({ message: 'oops' }, 500), {}, ['Rechecks', 'RecheckFaults']],
    ['answers 403 (wrong apiToken)', () => json({ message: 'forbidden' }, 403), {}, ['Rechecks', 'RecheckFaults', 'WorkerConfigurationErrors']],
    ['still does not know it at the last re-check', () => json({ message: 'not found' }, 404), { rechecks: lastRecheck }, ['Rechecks', 'Stale']],
  ] as const) {
    test(`re-check: when TemboPlus ${what}, the line counts as ${metrics.join(', ')} and nothing else`, async () => {
      // prepare
      const filters = filtersOn(logicalId(stack.pipeline.workerLogs));

      // act
      const lines = await runRecheck(answer, state);

      // assess
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.deepEqual(lines.flatMap((line) => matchedBy(filters, line)).sort(), [...metrics].sort(), lines.join('\n'));
    });
  }
  // A stored callback also counts as Accepted and Stored (by outcome), and gives its lag; here each is
  // the subject's first, so its state is written too (StateChanged).
  const STORED = ['Accepted', 'Stored', 'StoreLag', 'StateChanged'];
  for (const [verdict, answer, receiveCount, metrics, faults] of [
    ['agrees', (callback: Json) => json(callback), 1, ['ConfirmationConfirmed', ...STORED], {}],
    ['reports another status', (callback: Json) => json({ ...callback, status: callback.status === 'FAILED' ? 'COMPLETED' : 'FAILED' }), 1, ['ConfirmationMismatch', ...STORED], {}],
    ['answers 404 on the first receive (asked again later)', () => json({ message: 'not found' }, 404), 1, ['WorkerRetries', ...STORED], {}],
    [`answers 404 on the last settle attempt (receive ${QUEUE.settleAttempts})`, () => json({ message: 'not found' }, 404), QUEUE.settleAttempts, ['ConfirmationNotFound', ...STORED], {}],
    ['answers 403 (wrong apiToken)', () => json({ message: 'forbidden' }, 403), 1, ['WorkerConfigurationErrors'], {}],
    ['answers 500', () => json({ message: 'oops' }, 500), 1, ['WorkerRetries'], {}],
    ['agrees but the table throttles, on the 3rd receive', (callback: Json) => json(callback), 3, ['WorkerRetries'], { table: true }],
    ['agrees but the table throttles, on the 4th receive', (callback: Json) => json(callback), 4, ['WorkerRetries', 'ReceivedManyTimes'], { table: true }],
    ['is not asked: the secret still holds placeholders, on the 9th receive', (callback: Json) => json(callback), 9, ['WorkerConfigurationErrors', 'ReceivedManyTimes'], { secret: temboplus.secretPlaceholder }],
  ] as const) {
    test(`worker: when TemboPlus ${verdict}, the lines count as ${metrics.join(', ')} and nothing else`, async () => {
      // prepare
      const filters = filtersOn(logicalId(stack.pipeline.workerLogs));

      // act
      const { lines } = await runWorker(answer, receiveCount, faults);

      // assess
      assert.deepEqual(lines.flatMap((line) => matchedBy(filters, line)).sort(), [...metrics].sort(), lines.join('\n'));
    });
  }

  for (const [what, first] of [
    ['does not know the subject yet (404)', () => json({ message: 'not found' }, 404)],
    ['is still behind the callback (SUBMITTED)', (callback: Json) => json({ ...callback, status: 'SUBMITTED' })],
  ] as const) {
    test(`worker: when TemboPlus ${what} on the first receive and agrees on the second, one callback counts once: Accepted, Stored, confirmed`, async () => {
      // prepare
      const filters = filtersOn(logicalId(stack.pipeline.workerLogs));

      // act
      const lines = await runReceives([first, (callback) => json(callback)]);

      // assess: the retry is our own, not a verdict to alarm on nor a provider's repeat; each receive
      // wrote the state with a change (the status, then the confirmation)
      const counted = lines.flatMap((line) => matchedBy(filters, line)).sort();
      assert.deepEqual(counted, ['Accepted', 'ConfirmationConfirmed', 'StateChanged', 'StateChanged', 'StoreLag', 'Stored', 'WorkerRetries'], lines.join('\n'));
    });
  }

  test('worker: a callback whose event put lands but answers with a fault is counted once when the message comes again: Accepted, Stored', async () => {
    // prepare: the first receive stops before its line (the put landed, its answer was lost)
    const filters = filtersOn(logicalId(stack.pipeline.workerLogs));
    const agree = (callback: Json) => json(callback);

    // act
    const lines = await runReceives([agree, agree], landedThenFaulted(memoryStore()));

    // assess: the second receive is the first to log it, so it counts it (the claim, confirmed on the
    // first receive, is not asked about again)
    const counted = lines.flatMap((line) => matchedBy(filters, line)).sort();
    assert.deepEqual(counted, ['Accepted', 'StoreLag', 'Stored', 'WorkerRetries'], lines.join('\n'));
  });

  test('worker: when TemboPlus still does not know the subject on the last settle attempt, that attempt alone counts as ConfirmationNotFound', async () => {
    // prepare
    const filters = filtersOn(logicalId(stack.pipeline.workerLogs));
    const notFound = () => json({ message: 'not found' }, 404);

    // act
    const lines = await runReceives(Array(QUEUE.settleAttempts).fill(notFound));

    // assess
    const counted = lines.flatMap((line) => matchedBy(filters, line)).sort();
    const retries = Array(QUEUE.settleAttempts - 1).fill('WorkerRetries');
    assert.deepEqual(counted, ['Accepted', 'ConfirmationNotFound', 'StateChanged', 'StoreLag', 'Stored', ...retries].sort(), lines.join('\n'));
  });

  test('worker: each line counted as StateChanged wrote a state item with a change, a record the publisher\'s stream filter lets through', async () => {
    // prepare: the deployed trigger's filter, and a table that notes each state written as its stream record
    const filters = filtersOn(logicalId(stack.pipeline.workerLogs));
    const [mapping] = ofType('AWS::Lambda::EventSourceMapping').filter(([, each]) => each.Properties.FunctionName.Ref === logicalId(stack.events.publisher));
    const patterns = (mapping[1].Properties.FilterCriteria.Filters as Json[]).map((filter) => JSON.parse(filter.Pattern as string) as unknown);
    const written: { record: Json; changed: boolean }[] = [];
    const recording = (): CallbackStore => {
      const store = memoryStore();
      return {
        ...store,
        async putState(state, expectedVersion) {
          const before = await store.getState(state.provider, state.subjectId, state.part);
          const result = await store.putState(state, expectedVersion);
          if (result === 'written') {
            const key = keys.state(state.provider, state.subjectId, state.part);
            written.push({
              record: { eventName: before ? 'MODIFY' : 'INSERT', dynamodb: { Keys: marshall(key), NewImage: marshall({ ...state, ...key }, { removeUndefinedValues: true }) } },
              changed: (['status', 'outcome', 'confirmation', 'confirmedStatus'] as const).some((field) => before?.[field] !== state[field]),
            });
          }
          return result;
        },
      };
    };
    const agree = (callback: Json) => json(callback);
    const notFound = () => json({ message: 'not found' }, 404);
    const other = (callback: Json) => json({ ...callback, status: callback.status === 'FAILED' ? 'COMPLETED' : 'FAILED' });

    // act: new subjects, a verdict on a later receive, the same callback again
    const lines: string[] = [];
    for (const answers of [[agree], [other], [notFound, agree], Array(QUEUE.settleAttempts).fill(notFound)]) lines.push(...(await runReceives(answers, recording())));
    const store = recording();
    lines.push(...(await runReceives([agree], store)), ...(await runReceives([agree], store)));

    // assess
    const counted = lines.filter((line) => matchedBy(filters, line).includes('StateChanged'));
    assert.ok(counted.length >= 6, lines.join('\n'));
    assert.equal(counted.length, written.filter((write) => write.changed).length, 'one state written with a change per line counted');
    assert.deepEqual(written.filter((write) => !passesFilters(patterns, write.record)), [], 'every state write invokes the publisher');
  });

  test('worker: a callback the worker quarantines counts as that provider\'s Quarantined once; one ingest quarantined (and counted) already does not', async () => {
    // prepare
    const filters = filtersOn(logicalId(stack.pipeline.workerLogs));

    // act: each time the worker writes its "quarantined" line
    const runs = await quarantineRuns();

    // assess
    const counted = (lines: string[]) => lines.flatMap((line) => matchedBy(filters, line));
    assert.deepEqual(counted(runs.flaggedAtIngest), [], 'flagged at ingest: counted there');
    assert.deepEqual(counted(runs.reprocessed), ['Quarantined'], runs.reprocessed.join('\n'));
    assert.deepEqual(counted(runs.again), [], 'the same callback again is a duplicate');
    assert.deepEqual(filters.get('Quarantined')!.MetricTransformations[0].Dimensions, [{ Key: 'Provider', Value: '$.provider' }], 'the metric the <Provider>Quarantined alarms watch');
  });

  test('worker: the "stored" line carries the outcome the callback reported and its lag from receipt, in ms', async () => {
    // act
    const { lines, receivedAt } = await runWorker((callback) => json(callback));

    // assess
    const stored = lines.map((line) => JSON.parse(line) as Json).find((line) => line.message === 'stored')!;
    assert.ok(['pending', 'succeeded', 'failed', 'unknown'].includes(stored.outcome), stored.outcome);
    assert.equal(stored.lagMs, Date.parse('2025-01-01T10:00:01.000Z') - Date.parse(receivedAt));
    assert.equal(typeof stored.lagMs, 'number');
  });

  test('a repeated callback counts as Duplicates and Accepted, not as Stored again', async () => {
    // prepare
    const filters = filtersOn(logicalId(stack.pipeline.workerLogs));
    const line = JSON.stringify({ level: 'INFO', message: 'stored', provider: 'esms', outcome: 'pending', result: 'duplicate', lagMs: 5 });

    // act + assess: it still shows the provider's callbacks get through
    assert.deepEqual(matchedBy(filters, line).sort(), ['Accepted', 'Duplicates']);
  });

  test('every field a saved query reads is on the lines of the log group it reads', async () => {
    // prepare: real lines of every kind the queries look at
    const sample = contentOf(listSamples('temboplus')[0]);
    const ingestRuns = await Promise.all([
      runIngest(temboplus, authentic(temboplus, sample)),
      runIngest(temboplus, authentic(temboplus, sample, { ...UNIT_SECRETS.temboplus, token: 'forged-token-0000' })),
      runIngest(temboplus, authentic(temboplus, contentOf(listSamples('temboplus', 'invalid')[0]))),
      runIngest(temboplus, authentic(temboplus, sample), { send: () => Promise.reject(new Error('queue down')) }),
    ]);
    const workerRuns = await Promise.all([
      runWorker((callback) => json(callback)),
      runWorker((callback) => json({ ...callback, status: callback.status === 'FAILED' ? 'COMPLETED' : 'FAILED' })),
      runWorker(() => json({}, 500), 4),
      runWorker(() => json({}, 403)),
    ]);
    const recheckRuns = await Promise.all([
      runRecheck(() => json({ message: 'not found' }, 404), { rechecks: DEFAULT_RECONCILE.intervalsSeconds.length - 1, part: '255700000001' }),
      runRecheck(() => json({}, 500)),
    ]);
    const fieldsOf = (lines: string[]) => new Set(lines.flatMap((line) => Object.keys(JSON.parse(line) as Json)));
    const available = {
      ingest: fieldsOf(ingestRuns.flatMap((run) => run.lines)),
      worker: fieldsOf([...workerRuns.flatMap((run) => run.lines), ...recheckRuns.flat()]),
      access: new Set(Object.keys(ACCESS_LOG_FIELDS)),
      ingestAndWorker: new Set<string>(),
    };
    // A query reading both reads fields that one of them carries (workerQuarantine: the worker's own quarantine line).
    const quarantines = await quarantineRuns();
    available.ingestAndWorker = new Set([...available.ingest, ...available.worker, ...fieldsOf([...quarantines.reprocessed, ...quarantines.again])]);
    const KEYWORDS = new Set(['fields', 'filter', 'stats', 'sort', 'limit', 'by', 'as', 'and', 'or', 'not', 'like', 'desc', 'asc', 'in']);

    for (const query of Object.values(stack.logQueries.queries)) {
      // act: the names it reads (not quoted text, regular expressions, functions, numbers or its own aliases)
      const text = query.query.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\/(?:[^/\\]|\\.)+\//g, '//');
      const aliases = new Set([...text.matchAll(/\bas (\w+)/g)].map((match) => match[1]));
      const names = [...text.matchAll(/@?\b[A-Za-z_]\w*\b(?!\s*\()/g)]
        .map((match) => match[0])
        .filter((name) => !name.startsWith('@') && !KEYWORDS.has(name) && !aliases.has(name) && !/^(count|max|min|avg|sum|pct)$/.test(name));

      // assess
      for (const name of names) assert.ok(available[query.logs].has(name), `"${query.title}" reads ${name}, which ${query.logs} lines do not carry`);
    }
  });

  test('the query the confirmation alarms point to finds every line they count, re-checks included, and no confirmed one', async () => {
    // prepare: real lines the ConfirmationMismatch / ConfirmationNotFound filters count, on arrival and at re-checks
    const filters = filtersOn(logicalId(stack.pipeline.workerLogs));
    const other = (callback: Json) => json({ ...callback, status: callback.status === 'FAILED' ? 'COMPLETED' : 'FAILED' });
    const notFound = () => json({ message: 'not found' }, 404);
    const lines = [
      ...(await runReceives(Array(QUEUE.settleAttempts).fill(notFound))),
      ...(await runWorker(other)).lines,
      ...(await runRecheck(notFound)),
      ...(await runRecheck((callback) => json(callback))),
    ];
    const { query } = stack.logQueries.queries.confirmations;

    // act
    const alarmed = lines.filter((line) => matchedBy(filters, line).some((metric) => metric === 'ConfirmationMismatch' || metric === 'ConfirmationNotFound'));
    const found = lines.filter((line) => passesInsightsFilters(query, line));

    // assess
    const messages = alarmed.map((line) => (JSON.parse(line) as Json).message as string);
    assert.deepEqual(messages.sort(), ['rechecked', 'stored', 'stored'], lines.join('\n'));
    assert.deepEqual(found, alarmed);
  });

  test('publisher: a batch the bus refused counts as PublishFailures once; a published batch counts nothing', async () => {
    // prepare: the real handler over a bus that accepts, then one that is down
    const filters = filtersOn(logicalId(stack.events.publisherLogs));
    const lines: string[] = [];
    const change = {
      Records: [{
        eventName: 'INSERT' as const,
        dynamodb: {
          SequenceNumber: '100',
          ApproximateCreationDateTime: Date.now() / 1000,
          NewImage: marshall({ pk: 'temboplus#REF-1', sk: 'STATE', provider: 'temboplus', subjectId: 'REF-1', status: 'SUBMITTED', outcome: 'pending', terminal: false, statusAt: '2026-12-01T10:00:00.000Z', changedAt: '2026-12-01T10:00:00.000Z', version: 1 }) as never,
        },
      }],
    };
    const handlerOver = (publish: () => Promise<void>) =>
      createPublisherHandler({ deps: { publish, log: createLogger({ service: 'publisher', write: (line) => void lines.push(line) }) }, sleep: async () => undefined });

    // act
    const published = await handlerOver(async () => undefined)(change);
    const publishedLines = lines.splice(0);
    const refused = await handlerOver(() => Promise.reject(new DependencyError('eventbridge', 'PutEvents failed (ServiceUnavailable, HTTP 503)')))(change);

    // assess
    assert.deepEqual([published.batchItemFailures, refused.batchItemFailures], [[], [{ itemIdentifier: '100' }]]);
    assert.deepEqual(publishedLines.flatMap((line) => matchedBy(filters, line)), []);
    assert.deepEqual(lines.flatMap((line) => matchedBy(filters, line)), ['PublishFailures']);
  });

  test('publisher: an event the bus refuses for what it holds goes to the queue EventsDeadLetterQueueNotEmpty watches; nothing is given back, no PublishFailures', async () => {
    // prepare: the real handler; the bus refuses the one event for good
    const filters = filtersOn(logicalId(stack.events.publisherLogs));
    const lines: string[] = [];
    const setAside: string[] = [];
    const change = {
      Records: [{
        eventName: 'INSERT' as const,
        dynamodb: {
          SequenceNumber: '100',
          ApproximateCreationDateTime: Date.now() / 1000,
          NewImage: marshall({ pk: 'temboplus#REF-1', sk: 'STATE', provider: 'temboplus', subjectId: 'REF-1', status: 'SUBMITTED', outcome: 'pending', terminal: false, statusAt: '2026-12-01T10:00:00.000Z', changedAt: '2026-12-01T10:00:00.000Z', version: 1 }) as never,
        },
      }],
    };
    const handler = createPublisherHandler({
      deps: {
        publish: async (events) => events.map((event) => ({ event, errorCode: 'MalformedDetail' })),
        setAside: async (event) => void setAside.push(event.sequenceNumber),
        log: createLogger({ service: 'publisher', write: (line) => void lines.push(line) }),
      },
      sleep: async () => undefined,
    });

    // act
    const response = await handler(change);

    // assess: set aside, not retried, and the queue it goes to is the one the alarm watches
    assert.deepEqual([response.batchItemFailures, setAside], [[], ['100']]);
    assert.deepEqual(lines.flatMap((line) => matchedBy(filters, line)), []);
    const publisher = resources[logicalId(stack.events.publisher)].Properties;
    const alarm = ofType('AWS::CloudWatch::Alarm').map(([, each]) => each.Properties).find((each) => each.AlarmName === `${STACK_ID}-EventsDeadLetterQueueNotEmpty`)!;
    assert.deepEqual(publisher.Environment.Variables.EVENTS_DLQ_URL, ref(logicalId(stack.events.deadLetterQueue)));
    assert.deepEqual(alarm.Dimensions, [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(stack.events.deadLetterQueue), 'QueueName'] } }]);
  });

  test('the access log line of a throttled request counts as ApiThrottled; other statuses do not', () => {
    // prepare
    const filters = filtersOn(logicalId(stack.api.accessLogs));
    // The line API Gateway writes from the stage's format: each $context variable replaced by its value, as text.
    const accessLine = (status: string) =>
      JSON.stringify(Object.fromEntries(Object.entries(ACCESS_LOG_FIELDS).map(([field, variable]) => [field, variable === '$context.status' ? status : '-'])));

    // act + assess
    assert.deepEqual(matchedBy(filters, accessLine('429')), ['ApiThrottled']);
    for (const status of ['200', '401', '503']) assert.deepEqual(matchedBy(filters, accessLine(status)), [], status);
  });
});

describe('saved Logs Insights queries', () => {
  test('each saved query is in the stack\'s folder and reads the log groups it is about', () => {
    // prepare
    const groups = {
      ingest: stack.ingresses.map((ingress) => ref(logicalId(ingress.logGroup))),
      worker: [ref(logicalId(stack.pipeline.workerLogs))],
      access: [ref(logicalId(stack.api.accessLogs))],
      ingestAndWorker: [...stack.ingresses.map((ingress) => ref(logicalId(ingress.logGroup))), ref(logicalId(stack.pipeline.workerLogs))],
    };

    // act
    const definitions = new Map(ofType('AWS::Logs::QueryDefinition').map(([, definition]) => [definition.Properties.Name as string, definition.Properties]));

    // assess
    const queries = Object.values(stack.logQueries.queries);
    assert.deepEqual([...definitions.keys()].sort(), queries.map((query) => `${STACK_ID}/${query.title}`).sort());
    for (const query of queries) {
      const definition = definitions.get(`${STACK_ID}/${query.title}`)!;
      assert.equal(definition.QueryString, query.query);
      assert.deepEqual(definition.LogGroupNames, groups[query.logs], query.title);
    }
    for (const title of ['Records that failed, and why', '401s by provider and reason', 'Quarantined callbacks by provider and reason']) {
      assert.ok(definitions.has(`${STACK_ID}/${title}`), title);
    }
  });

  test('the query the Quarantined alarms point to finds each quarantined callback once, the worker\'s own included', async () => {
    // prepare: ingest quarantines one callback (its line counts it); the worker stores that one, then
    // quarantines the same callback reprocessed, then meets it again
    const runs = await quarantineRuns();
    const { query, logs } = stack.logQueries.queries.quarantined;

    // act
    const found = (lines: string[]) => lines.filter((line) => passesInsightsFilters(query, line)).length;

    // assess
    assert.equal(found(runs.ingest), 1, runs.ingest.join('\n'));
    assert.equal(found(runs.flaggedAtIngest), 0, 'counted in the ingest line already');
    assert.equal(found(runs.reprocessed), 1, runs.reprocessed.join('\n'));
    assert.equal(found(runs.again), 0, 'a duplicate');
    assert.equal(logs, 'ingestAndWorker');
  });

  test('Api5xx points at a query of the access log, which finds a 5xx API Gateway answered itself (an ingest that crashed, timed out or was throttled writes no line of its own)', () => {
    // prepare: the access log line of such an answer, and of answers that are no 5xx
    const accessLine = (status: string, integrationError = '-') =>
      JSON.stringify(
        Object.fromEntries(
          Object.entries(ACCESS_LOG_FIELDS).map(([field, variable]) => [
            field,
            variable === '$context.status' ? status : variable === '$context.routeKey' ? 'POST /callbacks/telesign' : field === 'integrationError' ? integrationError : '-',
          ]),
        ),
      );
    const alarm = ofType('AWS::CloudWatch::Alarm').find(([, each]) => each.Properties.AlarmName === `${STACK_ID}-Api5xx`)![1];

    // act
    const named = [...String(alarm.Properties.AlarmDescription).matchAll(/saved query "([^"]+)"/g)].map((m) => m[1]);
    const onAccessLog = Object.values(stack.logQueries.queries).filter((query) => query.logs === 'access' && named.includes(`${STACK_ID}/${query.title}`));

    // assess
    assert.equal(onAccessLog.length, 1, `Api5xx names ${named.join(', ')}: none reads the access log, where every 5xx is`);
    const [{ query }] = onAccessLog;
    for (const status of ['500', '502', '503', '504']) assert.ok(passesInsightsFilters(query, accessLine(status, 'The Lambda function returned the following error')), status);
    for (const status of ['200', '401', '413', '429']) assert.ok(!passesInsightsFilters(query, accessLine(status)), status);
    assert.match(query, /by routeKey, status, integrationStatus, integrationError, error/);
  });

  test('every saved query an alarm text names exists', () => {
    // prepare
    const names = new Set(ofType('AWS::Logs::QueryDefinition').map(([, definition]) => definition.Properties.Name as string));

    // act
    const named = ofType('AWS::CloudWatch::Alarm').flatMap(([, alarm]) => [...String(alarm.Properties.AlarmDescription).matchAll(/saved query "([^"]+)"/g)].map((m) => m[1]));

    // assess
    assert.ok(named.length >= 10, 'the alarm texts point at the queries');
    for (const name of named) assert.ok(names.has(name), `an alarm names the missing saved query "${name}"`);
  });
});

describe('silence alarms', () => {
  test('none unless silenceAlarmHours names a provider', () => {
    assert.deepEqual(ofType('AWS::CloudWatch::Alarm').filter(([, alarm]) => String(alarm.Properties.AlarmName).endsWith('Silent')), []);
  });

  test('silenceAlarmHours {temboplus: 6} alarms after 6 hours without an accepted TemboPlus callback, missing data breaching', () => {
    // act
    const { stack: changed } = createGatewayApp({
      context: { ...CDK_CONTEXT, ...NO_BUNDLING, settings: { ...CDK_CONTEXT.settings, silenceAlarmHours: { temboplus: 6, esms: 24 } } },
    });
    const alarms = Object.values(Template.fromStack(changed).toJSON().Resources as Record<string, Json>)
      .filter((resource) => resource.Type === 'AWS::CloudWatch::Alarm' && String(resource.Properties.AlarmName).endsWith('Silent'))
      .map((resource) => resource.Properties);

    // assess
    assert.deepEqual(alarms.map((alarm) => alarm.AlarmName).sort(), [`${STACK_ID}-EsmsSilent`, `${STACK_ID}-TemboplusSilent`]);
    const tembo = alarms.find((alarm) => alarm.AlarmName === `${STACK_ID}-TemboplusSilent`)!;
    assert.deepEqual(
      {
        namespace: tembo.Namespace, metric: tembo.MetricName, dimensions: tembo.Dimensions, statistic: tembo.Statistic, period: tembo.Period,
        evaluationPeriods: tembo.EvaluationPeriods, threshold: tembo.Threshold, comparison: tembo.ComparisonOperator, missing: tembo.TreatMissingData,
      },
      {
        namespace: NAMESPACE, metric: 'Accepted', dimensions: [{ Name: 'Provider', Value: 'temboplus' }], statistic: 'Sum', period: 3600,
        evaluationPeriods: 6, threshold: 1, comparison: 'LessThanThreshold', missing: 'breaching',
      },
    );
    assert.match(tembo.AlarmDescription, /No TemboPlus callback was accepted for 6 hours.*saved query "CallbackGateway\/Last accepted callback per provider"/);
    assert.equal(alarms.find((alarm) => alarm.AlarmName === `${STACK_ID}-EsmsSilent`)!.EvaluationPeriods, 24);
  });
});

describe('stale alarms', () => {
  const staleThresholds = (settings: Json) => {
    const { stack: changed } = createGatewayApp({ context: { ...CDK_CONTEXT, ...NO_BUNDLING, settings: { ...CDK_CONTEXT.settings, ...settings } } });
    return Object.fromEntries(
      Object.values(Template.fromStack(changed).toJSON().Resources as Record<string, Json>)
        .filter((resource) => resource.Type === 'AWS::CloudWatch::Alarm' && String(resource.Properties.AlarmName).endsWith('Stale'))
        .map((resource) => [String(resource.Properties.AlarmName).replace(`${STACK_ID}-`, ''), resource.Properties.Threshold]),
    );
  };

  test('staleAlarmThresholds {identomat: 25} raises only IdentomatStale\'s threshold; the others keep staleAlarmThreshold', () => {
    // act
    const plain = staleThresholds({});
    const tuned = staleThresholds({ staleAlarmThreshold: 2, staleAlarmThresholds: { identomat: 25 } });
    // assess
    assert.ok(Object.keys(plain).length >= 6, JSON.stringify(plain));
    assert.ok(Object.values(plain).every((threshold) => threshold === 1), JSON.stringify(plain));
    assert.equal(tuned.IdentomatStale, 25);
    for (const [name, threshold] of Object.entries(tuned)) if (name !== 'IdentomatStale') assert.equal(threshold, 2, name);
  });

  test('an unknown provider or a threshold out of range fails the synth, naming it', () => {
    assert.throws(() => staleThresholds({ staleAlarmThresholds: { twilio: 5 } }), /staleAlarmThresholds names an unknown provider "twilio"/);
    assert.throws(() => staleThresholds({ staleAlarmThresholds: { identomat: 0 } }), /staleAlarmThresholds\.identomat must be an integer from 1 to 100000/);
    assert.throws(() => staleThresholds({ staleAlarmThresholds: [25] }), /staleAlarmThresholds must be an object of thresholds per provider/);
  });
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
    // Each index's throttles, its reads (the sweep's, inspect's) as well as its writes.
    for (const index of [TABLE.outcomeIndex.name, TABLE.recheckIndex.name]) {
      for (const metric of ['WriteThrottleEvents', 'ReadThrottleEvents']) has(`AWS/DynamoDB ${metric} GlobalSecondaryIndexName ${index} TableName @${logicalId(stack.table.table)}`);
    }
  });
  test('under the pipeline, per provider: accepted, stored by outcome, repeats, lag, throttles, re-checks, events out, and Logs Insights queries', () => {
    // act
    const { widgets } = dashboardBody();
    const graphs = widgets.filter((widget) => widget.type === 'metric');
    const all = graphs.flatMap((widget) => widget.properties.metrics as unknown[][]).map((metric) => metric.filter((part) => typeof part === 'string').join(' '));
    const logs = widgets.filter((widget) => widget.type === 'log');

    // assess
    const has = (what: string) => assert.ok(all.some((metric) => metric.includes(what)), `the dashboard shows ${what}`);
    for (const provider of providers) {
      has(`${NAMESPACE} Accepted Provider ${provider.id}`);
      for (const outcome of ['pending', 'succeeded', 'failed', 'unknown']) has(`${NAMESPACE} Stored Outcome ${outcome} Provider ${provider.id}`);
      has(`${NAMESPACE} Duplicates Provider ${provider.id}`);
      has(`${NAMESPACE} StoreLag Provider ${provider.id}`);
    }
    has(`${NAMESPACE} ApiThrottled`);
    has(`${NAMESPACE} ReceivedManyTimes`);
    has(`AWS/Lambda Throttles FunctionName @${logicalId(stack.pipeline.worker)}`);
    const business = graphs.filter((widget) => /^(Accepted|Stored|Duplicates|Lag|Throttled|Records failing)/.test(widget.properties.title));
    const pipelineBottom = Math.max(...graphs.filter((widget) => /^(API|Ingest|Queue|Dead-letter|Worker|TemboPlus|Table)/.test(widget.properties.title)).map((widget) => widget.y + widget.height));
    assert.ok(business.every((widget) => widget.y >= pipelineBottom), 'the business view is under the pipeline');

    for (const provider of providers.filter((each) => each.lookup)) {
      for (const metric of ['Rechecks', 'RecheckFaults']) has(`${NAMESPACE} ${metric} Provider ${provider.id}`);
    }
    for (const provider of providers) has(`${NAMESPACE} Stale Provider ${provider.id}`);
    const publisher = `@${logicalId(stack.events.publisher)}`;
    for (const metric of ['Invocations', 'Errors', 'Throttles', 'IteratorAge']) has(`AWS/Lambda ${metric} FunctionName ${publisher}`);
    has(`${NAMESPACE} PublishFailures`);
    has(`${NAMESPACE} StateChanged`);
    has(`AWS/SQS ApproximateNumberOfMessagesVisible QueueName @${logicalId(stack.events.deadLetterQueue)}.QueueName`);
    assert.deepEqual(logs.map((widget) => widget.properties.title).sort(), [
      'Callbacks not accepted, by provider, status and reason',
      'Lag from receipt to stored state, per provider',
      'Worker failures by error',
    ]);
    for (const widget of logs) {
      const query = widget.properties.query as string;
      const saved = Object.values(stack.logQueries.queries).find((each) => each.title === widget.properties.title)!;
      assert.ok(query.endsWith(saved.query), `${widget.properties.title} runs the saved query`);
      assert.match(query, /^SOURCE '@\w+'/, 'it names its log groups');
    }
  });
});

describe('dashboard words', () => {
  test('PublishFailures is labelled as batches given back to retry, and Accepted as counted from the worker, not at ingest', () => {
    // act
    const { widgets } = dashboardBody();
    const labels = widgets
      .filter((widget) => widget.type === 'metric')
      .flatMap((widget) => widget.properties.metrics as unknown[][])
      .filter((metric) => metric.includes('PublishFailures'))
      .map((metric) => (metric.at(-1) as Json).label);
    const texts = widgets.filter((widget) => widget.type === 'text').map((widget) => widget.properties.markdown as string);

    // assess
    assert.deepEqual(labels, ['batches given back to retry']);
    const callbacks = texts.find((text) => text.startsWith('## Callbacks, per provider'))!;
    assert.doesNotMatch(callbacks, /at ingest/);
    assert.match(callbacks, /Accepted \(reached the table, new or repeated: counted from the worker's lines\)/);
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
