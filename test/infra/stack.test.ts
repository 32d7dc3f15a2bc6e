import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CfnElement } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { marshall } from '@aws-sdk/util-dynamodb';
import { QUEUE, STREAM, TABLE, createTableInput } from '../../functions/core/pipeline-definition.ts';
import { eventsFromChange, type TableChange } from '../../functions/core/publish.ts';
import { secretEnvName } from '../../functions/core/secrets.ts';
import { workerReadsSecret } from '../../functions/providers/provider.ts';
import { allKits } from '../providers/index.ts';
import { passesFilters } from '../support/lambda-filter.ts';
import { listSamples } from '../../local/samples.ts';
import { pascal } from '../../lib/names.ts';
import { providers } from '../../functions/providers/index.ts';
import type { CallbackGatewayStack } from '../../lib/callback-gateway-stack.ts';
import { createGatewayApp } from '../../lib/gateway-app.ts';
import { ingest, UNDEFINED_ROUTE_ANSWER } from '../../functions/core/ingest.ts';
import { createLogger } from '../../functions/shared/log.ts';
import type { CallbackRequest } from '../../functions/providers/provider.ts';
import { REPO_ROOT } from '../../lib/gateway-function.ts';
import { accessLogExample } from '../../bench/cost.ts';

/**
 * Assertions on the template `cdk synth` produces: the app is built once (bundling takes seconds),
 * exactly as bin/app.ts builds it, with cdk.json's context and the cdk-nag plugin.
 */

type Json = Record<string, any>;
interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Principal?: unknown;
  Condition?: unknown;
}

/** The public contract, pinned by each provider's test kit: providers are told these routes, so they never change by accident. */
const EXPECTED_ROUTE_KEYS = allKits().map((kit) => kit.route);

/** Findings this stack keeps on purpose; adding one here is a reviewed decision. */
const EXPECTED_ACKNOWLEDGED_RULES = ['AwsSolutions-APIG4', 'AwsSolutions-IAM5[Resource::*]', 'AwsSolutions-SMG4', 'AwsSolutions-SQS3'];

const CDK_CONTEXT = (JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Json }).context;
/** Synth without bundling (tests that only read the template). */
const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };
const outdirs: string[] = [];

function synthesize(context: Json = {}) {
  const outdir = mkdtempSync(join(tmpdir(), 'callback-gateway-synth-'));
  outdirs.push(outdir);
  return withoutBundlingNotices(() => {
    const { app, stack } = createGatewayApp({ outdir, context: { ...CDK_CONTEXT, ...context } });
    const assembly = app.synth();
    return { stack, template: Template.fromStack(stack), assemblyDir: assembly.directory };
  });
}

/** CDK announces each bundling on stderr; the test output stays about results. */
function withoutBundlingNotices<T>(build: () => T): T {
  const write = process.stderr.write;
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) =>
    String(chunk).startsWith('Bundling asset ')
      ? true
      : (write as (...args: unknown[]) => boolean).call(process.stderr, chunk, ...rest)) as typeof process.stderr.write;
  try {
    return build();
  } finally {
    process.stderr.write = write;
  }
}

let stack: CallbackGatewayStack;
let template: Template;
let resources: Record<string, Json>;
let assemblyDir: string;

before(() => {
  ({ stack, template, assemblyDir } = synthesize());
  resources = template.toJSON().Resources as Record<string, Json>;
});

after(() => {
  for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
});

function logicalId(construct: IConstruct): string {
  return stack.getLogicalId(construct.node.defaultChild as CfnElement);
}

function ofType(type: string): [string, Json][] {
  return Object.entries(resources).filter(([, resource]) => resource.Type === type);
}

function actionsOf(statement: Statement): string[] {
  return ([] as string[]).concat(statement.Action);
}

/** Every statement of every policy attached to a role, and the role's own policies. */
function roleStatements(roleId: string): Statement[] {
  const role = resources[roleId];
  assert.equal(role.Properties.ManagedPolicyArns, undefined, `${roleId} has managed policies`);
  assert.equal(role.Properties.Policies, undefined, `${roleId} has inline policies`);
  return ofType('AWS::IAM::Policy')
    .filter(([, policy]) => (policy.Properties.Roles as Json[]).some((ref) => ref.Ref === roleId))
    .flatMap(([, policy]) => policy.Properties.PolicyDocument.Statement as Statement[]);
}

function roleOfFunction(functionId: string): string {
  return resources[functionId].Properties.Role['Fn::GetAtt'][0];
}

const ref = (id: string) => ({ Ref: id });

/** A bare request to a route path (tokens left as placeholders): enough for what is decided before any secret is read. */
function toCallbackRequest(method: string, _path: string): CallbackRequest {
  return { method, headers: {}, body: Buffer.alloc(0), rawQuery: '', sourceIp: '203.0.113.9', requestId: 'req-1', receivedAt: '2025-01-01T00:00:00.000Z' };
}
const arnOf = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });

describe('routes', () => {
  test('the API has exactly the provider routes, each with its own ingest function', () => {
    // act
    const routes = ofType('AWS::ApiGatewayV2::Route').map(([, route]) => route.Properties);

    // assess
    assert.deepEqual(routes.map((route) => route.RouteKey).sort(), [...EXPECTED_ROUTE_KEYS].sort());
    assert.deepEqual(
      providers.map((provider) => `${provider.route.method} ${provider.route.path}`).sort(),
      [...EXPECTED_ROUTE_KEYS].sort(),
      'the registry and the deployed routes agree',
    );
    for (const ingress of stack.ingresses) {
      const route = resources[logicalId(ingress.route)].Properties;
      const integrationId = route.Target['Fn::Join'][1][1].Ref as string;
      const integration = resources[integrationId].Properties;
      assert.equal(integration.IntegrationType, 'AWS_PROXY');
      assert.deepEqual(integration.IntegrationUri, arnOf(logicalId(ingress.function)), `${route.RouteKey} → its own function`);
    }
  });

  test('a wrong method matches no route, so API Gateway answers 404 {"message":"Not Found"}; the ingest core answers it the same way', async () => {
    // prepare
    // Every route names one method and no route catches the rest (no ANY, no $default): API Gateway
    // answers a request no route matches itself, 404 {"message":"Not Found"}, and no function runs.
    // https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html
    const keys = ofType('AWS::ApiGatewayV2::Route').map(([, route]) => route.Properties.RouteKey as string);
    assert.deepEqual(keys.filter((key) => key === '$default' || key.startsWith('ANY ')), []);

    for (const provider of providers) {
      // act: the core reached with another method (only the local runtime or a test can do that)
      const wrong = provider.route.method === 'GET' ? 'POST' : 'GET';
      const answer = await ingest(provider, { ...toCallbackRequest(wrong, provider.route.path), method: wrong }, {
        secrets: { get: () => Promise.reject(new Error('not read for a wrong method')) } as unknown as Parameters<typeof ingest>[2]['secrets'],
        send: () => Promise.reject(new Error('nothing is queued')),
        log: createLogger({ service: 'unit', write: () => undefined }),
      });

      // assess
      assert.deepEqual(answer, UNDEFINED_ROUTE_ANSWER, provider.id);
    }
    assert.deepEqual(UNDEFINED_ROUTE_ANSWER, { statusCode: 404, body: { message: 'Not Found' } });
  });

  test('API Gateway may invoke each ingest function from its route only', () => {
    // act
    const permissions = ofType('AWS::Lambda::Permission')
      .map(([, permission]) => permission.Properties)
      .filter((permission) => permission.Principal === 'apigateway.amazonaws.com');

    // assess
    assert.equal(permissions.length, providers.length);
    for (const ingress of stack.ingresses) {
      const [permission, ...others] = permissions.filter((p) => p.FunctionName['Fn::GetAtt'][0] === logicalId(ingress.function));
      assert.equal(others.length, 0);
      assert.equal(permission.Principal, 'apigateway.amazonaws.com');
      const sourceArn = permission.SourceArn['Fn::Join'][1] as unknown[];
      assert.equal(sourceArn.at(-1), `/*/*${ingress.provider.route.path}`);
    }
  });
});

describe('reconciliation', () => {
  test('an EventBridge rule runs the sweep every minute; the sweep may invoke only from it, and holds no provider secret', () => {
    // act
    const sweepId = logicalId(stack.reconciliation.sweep);
    const sweep = resources[sweepId].Properties;
    const rules = ofType('AWS::Events::Rule').map(([, rule]) => rule.Properties);
    const permissions = ofType('AWS::Lambda::Permission').map(([, permission]) => permission.Properties).filter((p) => p.Principal === 'events.amazonaws.com');

    // assess
    assert.equal(rules.length, 1);
    assert.equal(rules[0].ScheduleExpression, 'rate(1 minute)');
    assert.deepEqual(rules[0].Targets.map((target: Json) => target.Arn), [{ 'Fn::GetAtt': [sweepId, 'Arn'] }]);
    assert.equal(permissions.length, 1);
    assert.deepEqual(permissions[0].FunctionName, { 'Fn::GetAtt': [sweepId, 'Arn'] });
    assert.equal(sweep.Runtime, 'nodejs24.x');
    assert.ok(sweep.Timeout < 60, 'a sweep ends within its minute');
    assert.deepEqual(sweep.Environment.Variables, {
      TABLE_NAME: ref(logicalId(stack.table.table)),
      QUEUE_URL: ref(logicalId(stack.pipeline.queue)),
      RECONCILE_SCHEDULE: '1m,5m,30m,2h,12h,1d,2d',
      RECONCILE_SHARDS: '4',
      RECONCILE_HORIZON_HOURS: '168',
      SWEEP_PERIOD_SECONDS: '60',
      NODE_OPTIONS: '--enable-source-maps',
    });
  });

  test('the sweep may query the byRecheck index, lease with UpdateItem, and send to the queue; nothing else', () => {
    // act
    const roleId = stack.getLogicalId(stack.reconciliation.sweep.role!.node.defaultChild as CfnElement);
    const policies = ofType('AWS::IAM::Policy').filter(([, policy]) => policy.Properties.Roles.some((role: Json) => role.Ref === roleId));
    const statements = policies.flatMap(([, policy]) => policy.Properties.PolicyDocument.Statement as Json[]);
    const actions = statements.flatMap((statement) => [statement.Action].flat()).sort();

    // assess
    assert.ok(!actions.some((action) => action.startsWith('secretsmanager:')), 'no secret');
    assert.ok(actions.includes('dynamodb:Query') && actions.includes('dynamodb:UpdateItem'));
    assert.ok(!actions.some((action) => ['dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:Scan', 'dynamodb:BatchWriteItem'].includes(action)));
    const query = statements.find((statement) => [statement.Action].flat().includes('dynamodb:Query'))!;
    assert.match(JSON.stringify(query.Resource), /index\/byRecheck/);
    const sqs = statements.filter((statement) => [statement.Action].flat().some((action: string) => action.startsWith('sqs:')));
    assert.deepEqual(sqs.flatMap((statement) => [statement.Action].flat()), ['sqs:SendMessage'], 'it sends re-checks, nothing else');
    assert.deepEqual(sqs.map((statement) => statement.Resource), [arnOf(logicalId(stack.pipeline.queue))]);
  });

  test('the reconcile schedule is a setting, checked at synth', () => {
    assert.throws(
      () => createGatewayApp({ context: { ...CDK_CONTEXT, ...NO_BUNDLING, settings: { ...CDK_CONTEXT.settings, reconcileSchedule: '10s,5m' } } }),
      /reconcileSchedule must be delays such as 1m,5m.*10 s is outside 1m–7d/,
    );
    const { stack: custom } = createGatewayApp({ context: { ...CDK_CONTEXT, ...NO_BUNDLING, settings: { ...CDK_CONTEXT.settings, reconcileSchedule: '2m,1h' } } });
    Template.fromStack(custom).hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ RECONCILE_SCHEDULE: '2m,1h', SWEEP_PERIOD_SECONDS: '60' }) } });
  });
});

describe('ingest functions', () => {
  test('one function per provider: Node 24 on arm64, 256 MB, 10 s, with the environment contract', () => {
    // act
    const functions = ofType('AWS::Lambda::Function').filter(([, fn]) => fn.Properties.Environment.Variables.PROVIDER_ID);

    // assess
    assert.deepEqual(functions.map(([, fn]) => fn.Properties.Environment.Variables.PROVIDER_ID).sort(), providers.map((p) => p.id).sort());
    for (const ingress of stack.ingresses) {
      const fn = resources[logicalId(ingress.function)].Properties;
      assert.equal(fn.Runtime, 'nodejs24.x');
      assert.deepEqual(fn.Architectures, ['arm64']);
      assert.equal(fn.MemorySize, 256);
      assert.equal(fn.Timeout, 10);
      assert.equal(fn.Handler, 'index.handler');
      assert.deepEqual(fn.Environment.Variables, {
        PROVIDER_ID: ingress.provider.id,
        QUEUE_URL: ref(logicalId(stack.pipeline.queue)),
        [secretEnvName(ingress.provider)]: ref(logicalId(ingress.secret)),
        MAX_BODY_BYTES: '262144',
        SECRET_CACHE_SECONDS: '300',
        NODE_OPTIONS: '--enable-source-maps',
      });
      assert.deepEqual(fn.LoggingConfig, {
        LogGroup: ref(logicalId(ingress.function.node.scope!.node.findChild('Logs'))),
        LogFormat: 'JSON',
        ApplicationLogLevel: 'INFO',
        SystemLogLevel: 'WARN',
      });
    }
  });

  test('each ingest role reads its own secret only, may only send to the queue, and has no DynamoDB access', () => {
    for (const ingress of stack.ingresses) {
      // act
      const statements = roleStatements(roleOfFunction(logicalId(ingress.function)));

      // assess
      assert.ok(statements.every((s) => s.Effect === 'Allow'));
      const secretStatements = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('secretsmanager:')));
      assert.deepEqual(
        secretStatements.map((s) => s.Resource),
        [ref(logicalId(ingress.secret))],
        `${ingress.provider.id} reads exactly its own secret`,
      );
      assert.deepEqual(actionsOf(secretStatements[0]).sort(), ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);

      assert.ok(!statements.some((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:'))), `${ingress.provider.id} has DynamoDB access`);

      const sqsStatements = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('sqs:')));
      assert.equal(sqsStatements.length, 1);
      assert.deepEqual(sqsStatements[0].Resource, arnOf(logicalId(stack.pipeline.queue)));
      // SendMessage alone: it never reads the queue's attributes (message counts) nor looks its URL up.
      assert.deepEqual(actionsOf(sqsStatements[0]).sort(), ['sqs:SendMessage']);

      const other = statements.filter((s) => !actionsOf(s).every((a) => /^(secretsmanager|sqs|logs):/.test(a)));
      assert.deepEqual(other, [], 'nothing beyond secret, queue and own logs');
    }
  });
  // How each secret's first value is made (frozen, so no template change resets it): lifecycle.test.ts.
});

describe('queue and worker', () => {
  test('the queue sends a message to the DLQ after 5 receives; both are encrypted and TLS-only', () => {
    // prepare
    const queueId = logicalId(stack.pipeline.queue);
    const dlqId = logicalId(stack.pipeline.deadLetterQueue);

    // act
    const queue = resources[queueId].Properties;
    const dlq = resources[dlqId].Properties;

    // assess
    assert.deepEqual(queue.RedrivePolicy, { deadLetterTargetArn: arnOf(dlqId), maxReceiveCount: QUEUE.maxReceiveCount });
    assert.equal(QUEUE.maxReceiveCount, 5);
    assert.equal(queue.VisibilityTimeout, QUEUE.visibilityTimeoutSeconds);
    assert.ok(queue.VisibilityTimeout >= 6 * QUEUE.workerTimeoutSeconds);
    for (const [id, props] of [
      [queueId, queue],
      [dlqId, dlq],
    ] as const) {
      assert.equal(props.SqsManagedSseEnabled, true);
      const policy = ofType('AWS::SQS::QueuePolicy').find(([, p]) => (p.Properties.Queues as Json[]).some((q) => q.Ref === id));
      const denyInsecure = (policy?.[1].Properties.PolicyDocument.Statement as Statement[]).find(
        (s) => s.Effect === 'Deny' && JSON.stringify(s.Condition) === JSON.stringify({ Bool: { 'aws:SecureTransport': 'false' } }),
      );
      assert.ok(denyInsecure, `${id} refuses plain HTTP`);
    }
  });

  test('the worker drains the queue with partial batch failures, at most workerMaxConcurrency (5) workers at once', () => {
    // act
    const [mapping, ...others] = ofType('AWS::Lambda::EventSourceMapping')
      .map(([, m]) => m.Properties)
      .filter((m) => m.FunctionName.Ref === logicalId(stack.pipeline.worker));

    // assess
    assert.equal(others.length, 0);
    assert.deepEqual(mapping.FunctionResponseTypes, ['ReportBatchItemFailures']);
    assert.deepEqual(mapping.EventSourceArn, arnOf(logicalId(stack.pipeline.queue)));
    assert.deepEqual(mapping.FunctionName, ref(logicalId(stack.pipeline.worker)));
    assert.equal(mapping.BatchSize, QUEUE.batchSize);
    assert.equal(mapping.MaximumBatchingWindowInSeconds, QUEUE.maxBatchingWindowSeconds);
    assert.deepEqual(mapping.ScalingConfig, { MaximumConcurrency: 5 });
  });

  test('the worker: Node 24 arm64, 256 MB, the worker timeout, and the environment contract', () => {
    // act
    const worker = resources[logicalId(stack.pipeline.worker)].Properties;

    // assess
    assert.equal(worker.Runtime, 'nodejs24.x');
    assert.deepEqual(worker.Architectures, ['arm64']);
    assert.equal(worker.MemorySize, 256);
    assert.equal(worker.Timeout, QUEUE.workerTimeoutSeconds);
    assert.deepEqual(worker.LoggingConfig, { LogGroup: ref(logicalId(stack.pipeline.workerLogs)), LogFormat: 'JSON', ApplicationLogLevel: 'INFO', SystemLogLevel: 'WARN' });
    const secretIds = Object.fromEntries(
      stack.ingresses.filter((ingress) => workerReadsSecret(ingress.provider)).map((ingress) => [secretEnvName(ingress.provider), ref(logicalId(ingress.secret))]),
    );
    assert.ok(Object.keys(secretIds).length > 0, 'some provider is asked or has settings');
    assert.deepEqual(worker.Environment.Variables, {
      TABLE_NAME: ref(logicalId(stack.table.table)),
      QUEUE_URL: ref(logicalId(stack.pipeline.queue)),
      MAX_RECEIVE_COUNT: String(QUEUE.maxReceiveCount),
      ...secretIds,
      EVENT_RETENTION_DAYS: '90',
      SENSITIVE_RETENTION_HOURS: '24',
      SECRET_CACHE_SECONDS: '300',
      NODE_OPTIONS: '--enable-source-maps',
      RECONCILE_SCHEDULE: '1m,5m,30m,2h,12h,1d,2d',
      RECONCILE_SHARDS: '4',
      RECONCILE_HORIZON_HOURS: '168',
    });
  });

  test('the worker reads only the secrets of providers it asks or whose secret holds settings, and gets, puts and updates table items only', () => {
    // prepare
    const confirming = stack.ingresses.filter((ingress) => workerReadsSecret(ingress.provider));
    // Every provider's today (each is asked, or holds settings); the role must still list exactly these.
    assert.ok(confirming.length > 0, 'some secrets');

    // act
    const statements = roleStatements(roleOfFunction(logicalId(stack.pipeline.worker)));

    // assess
    // One statement per secret, or one listing both (CDK merges statements): which secrets, not how.
    const secretResources = statements
      .filter((s) => actionsOf(s).some((a) => a.startsWith('secretsmanager:')))
      .flatMap((s) => ([] as unknown[]).concat(s.Resource))
      .map((resource) => JSON.stringify(resource))
      .sort();
    assert.deepEqual(secretResources, confirming.map((ingress) => JSON.stringify(ref(logicalId(ingress.secret)))).sort());
    // The table: read, put and update items and query a subject's items, nothing else (no Scan,
    // DeleteItem, batch or stream actions), on the table alone (not its indexes).
    const dynamo = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:')));
    assert.deepEqual(dynamo.flatMap(actionsOf).sort(), ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem']);
    assert.deepEqual(dynamo.flatMap((s) => ([] as unknown[]).concat(s.Resource)), [arnOf(logicalId(stack.table.table))]);
    const sqs = statements.find((s) => actionsOf(s).includes('sqs:ChangeMessageVisibility'));
    assert.deepEqual(sqs?.Resource, arnOf(logicalId(stack.pipeline.queue)), 'the worker backs off failed records');
  });
});

describe('table', () => {
  test('the table matches pipeline-definition.ts: keys, byOutcome index, TTL, PITR, on demand, retained', () => {
    // prepare
    const expected = createTableInput('unused');

    // act
    const table = resources[logicalId(stack.table.table)];

    // assess
    assert.equal(table.DeletionPolicy, 'Retain');
    assert.equal(table.UpdateReplacePolicy, 'Retain');
    const props = table.Properties;
    assert.equal(props.BillingMode, 'PAY_PER_REQUEST');
    assert.deepEqual(props.KeySchema, expected.KeySchema);
    const byName = (a: { AttributeName: string }, b: { AttributeName: string }) => a.AttributeName.localeCompare(b.AttributeName);
    assert.deepEqual([...props.AttributeDefinitions].sort(byName), [...expected.AttributeDefinitions].sort(byName));
    assert.deepEqual(props.GlobalSecondaryIndexes, expected.GlobalSecondaryIndexes);
    assert.equal(props.GlobalSecondaryIndexes[0].IndexName, 'byOutcome');
    assert.deepEqual(props.TimeToLiveSpecification, { AttributeName: TABLE.ttlAttribute, Enabled: true });
    assert.equal(TABLE.ttlAttribute, 'expiresAt');
    assert.deepEqual(props.PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: true });
    assert.equal(props.DeletionProtectionEnabled, true, 'a console or CLI delete is refused too');
    // The change stream: the same view the local runtime's table gets from createTableInput.
    assert.deepEqual(props.StreamSpecification, { StreamViewType: expected.StreamSpecification.StreamViewType });
    assert.deepEqual(expected.StreamSpecification, { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' });
  });
});

describe('events out', () => {
  const publisherMapping = () => {
    const mappings = ofType('AWS::Lambda::EventSourceMapping').map(([, m]) => m.Properties).filter((m) => m.FunctionName.Ref === logicalId(stack.events.publisher));
    assert.equal(mappings.length, 1);
    return mappings[0];
  };
  const filterPatterns = () => (publisherMapping().FilterCriteria.Filters as Json[]).map((filter) => JSON.parse(filter.Pattern as string) as Json);

  test('a custom bus named after the stack, its name and ARN stack outputs; no bus policy lets anyone else put events', () => {
    // act
    const buses = ofType('AWS::Events::EventBus');
    const outputs = template.toJSON().Outputs as Record<string, Json>;

    // assess
    assert.equal(buses.length, 1);
    const [busId, bus] = buses[0];
    assert.equal(bus.Properties.Name, stack.stackName);
    assert.deepEqual(outputs.EventBusName.Value, ref(busId));
    assert.deepEqual(outputs.EventBusArn.Value, arnOf(busId));
    assert.deepEqual(ofType('AWS::Events::EventBusPolicy'), []);
  });

  test('the publisher: Node 24 arm64, the stream timeout, JSON logs, and only EVENT_BUS_NAME and EVENTS_DLQ_URL in its environment', () => {
    // act
    const publisher = resources[logicalId(stack.events.publisher)].Properties;

    // assess
    assert.equal(publisher.Runtime, 'nodejs24.x');
    assert.deepEqual(publisher.Architectures, ['arm64']);
    assert.equal(publisher.Timeout, STREAM.publisherTimeoutSeconds);
    assert.ok(STREAM.maxRetryPauseSeconds * 2 < STREAM.publisherTimeoutSeconds, 'a failed batch pauses well inside the timeout');
    assert.deepEqual(publisher.Environment.Variables, { EVENT_BUS_NAME: ref(logicalId(stack.events.bus)), EVENTS_DLQ_URL: ref(logicalId(stack.events.deadLetterQueue)), NODE_OPTIONS: '--enable-source-maps' });
    assert.deepEqual(publisher.LoggingConfig, { LogGroup: ref(logicalId(stack.events.publisherLogs)), LogFormat: 'JSON', ApplicationLogLevel: 'INFO', SystemLogLevel: 'WARN' });
  });

  test('the stream event source: oldest first, partial batch failures, bisect on a crash, bounded retries and age, failures to the DLQ', () => {
    // act
    const mapping = publisherMapping();

    // assess
    assert.deepEqual(mapping.EventSourceArn, { 'Fn::GetAtt': [logicalId(stack.table.table), 'StreamArn'] });
    assert.equal(mapping.StartingPosition, 'TRIM_HORIZON');
    assert.equal(mapping.BatchSize, STREAM.batchSize);
    assert.equal(mapping.MaximumBatchingWindowInSeconds, STREAM.maxBatchingWindowSeconds);
    assert.deepEqual(mapping.FunctionResponseTypes, ['ReportBatchItemFailures']);
    assert.equal(mapping.BisectBatchOnFunctionError, true);
    // Bounded: -1 (the default) retries a record until it leaves the stream, holding up its shard a day.
    assert.equal(mapping.MaximumRetryAttempts, STREAM.retryAttempts);
    assert.ok(mapping.MaximumRetryAttempts > 0 && mapping.MaximumRetryAttempts <= 10_000);
    assert.equal(mapping.MaximumRecordAgeInSeconds, STREAM.maxRecordAgeSeconds);
    assert.ok(mapping.MaximumRecordAgeInSeconds > 0 && mapping.MaximumRecordAgeInSeconds < 24 * 3600, 'given up (and named in the DLQ) while the stream still holds the record');
    assert.equal(mapping.ParallelizationFactor, undefined, 'one batch per shard at a time: in order');
    assert.deepEqual(mapping.DestinationConfig, { OnFailure: { Destination: arnOf(logicalId(stack.events.deadLetterQueue)) } });
  });

  test('the filter lets through every change that publishes an event, and keeps out the writes that cannot', () => {
    // prepare: changes of every kind of item the table holds, as the stream record Lambda filters
    const patterns = filterPatterns();
    const state = (fields: Json = {}) => ({ pk: 'temboplus#R', sk: 'STATE', provider: 'temboplus', subjectId: 'R', status: 'S', outcome: 'pending', terminal: false, statusAt: 'x', changedAt: 'a', version: 1, ...fields });
    const instructionSamples = listSamples('identomat').map((sample) => JSON.parse(sample.body!.toString('utf8')) as Json);
    const eventItem = (provider: string, payload: Json, fields: Json = {}) => ({ pk: `${provider}#S`, sk: `EVENT#${String(payload.type)}`, provider, subjectId: 'S', source: 'callback', receivedAt: 'r', payload, ...fields });
    const changes: TableChange[] = [
      { eventName: 'INSERT', newImage: state() },
      { eventName: 'MODIFY', oldImage: state(), newImage: state({ status: 'T', changedAt: 'b', version: 2 }) },
      { eventName: 'MODIFY', oldImage: state(), newImage: state({ recheckAt: 'later', version: 2 }) },
      { eventName: 'INSERT', newImage: state({ pk: 'esms#S', sk: 'STATE#84901234567', provider: 'esms', part: '84901234567' }) },
      ...instructionSamples.map((payload): TableChange => ({ eventName: 'INSERT', newImage: eventItem('identomat', payload) })),
      ...instructionSamples.map((payload): TableChange => ({ eventName: 'MODIFY', oldImage: eventItem('identomat', payload), newImage: eventItem('identomat', payload, { asks: 1 }) })),
      { eventName: 'INSERT', newImage: eventItem('temboplus', { type: 'x' }) },
      { eventName: 'INSERT', newImage: { pk: 'temboplus!quarantine', sk: 'QUARANTINE#abc', provider: 'temboplus' } },
      { eventName: 'INSERT', newImage: { pk: 'identomat#S', sk: 'CHUNK#EVENT#x#0', gzipChunk: 'AA==' } },
      { eventName: 'REMOVE', oldImage: state() },
      { eventName: 'REMOVE', oldImage: eventItem('identomat', instructionSamples[0]) },
    ];
    const asRecord = (change: TableChange) => {
      const item = (change.newImage ?? change.oldImage)!;
      return {
        eventName: change.eventName,
        dynamodb: {
          Keys: marshall({ pk: item.pk, sk: item.sk }),
          ...(change.oldImage ? { OldImage: marshall(change.oldImage, { removeUndefinedValues: true }) } : {}),
          ...(change.newImage ? { NewImage: marshall(change.newImage, { removeUndefinedValues: true }) } : {}),
        },
      };
    };

    // act
    const verdicts = changes.map((change) => ({ publishes: eventsFromChange(change).length > 0, passes: passesFilters(patterns, asRecord(change)) }));

    // assess
    const publishing = verdicts.filter((verdict) => verdict.publishes);
    assert.ok(publishing.length >= 6, 'states and Identomat instructions publish');
    assert.deepEqual(publishing.filter((verdict) => !verdict.passes), [], 'a change that publishes is filtered out: its event would be lost');
    // What the filter saves: writes that never publish do not invoke the publisher.
    assert.deepEqual(changes.filter((_, n) => !verdicts[n].passes).map((change) => `${change.eventName} ${String((change.newImage ?? change.oldImage)!.sk)}`).sort(), [
      'INSERT CHUNK#EVENT#x#0', 'INSERT EVENT#x', 'INSERT QUARANTINE#abc',
      ...instructionSamples.map((payload) => `MODIFY EVENT#${String(payload.type)}`),
      `REMOVE EVENT#${String(instructionSamples[0].type)}`, 'REMOVE STATE',
    ].sort());
  });

  test('the DLQ: encrypted, TLS-only, kept 14 days; the publisher may send to it and to nothing else', () => {
    // act
    const dlqId = logicalId(stack.events.deadLetterQueue);
    const dlq = resources[dlqId].Properties;
    const policy = ofType('AWS::SQS::QueuePolicy').find(([, p]) => (p.Properties.Queues as Json[]).some((q) => q.Ref === dlqId));

    // assess
    assert.equal(dlq.SqsManagedSseEnabled, true);
    assert.equal(dlq.MessageRetentionPeriod, 14 * 86_400);
    assert.ok((policy?.[1].Properties.PolicyDocument.Statement as Statement[]).some((s) => s.Effect === 'Deny' && JSON.stringify(s.Condition) === JSON.stringify({ Bool: { 'aws:SecureTransport': 'false' } })));
  });

  test('least privilege: the publisher puts events on this bus only, reads this table\'s stream only, and has no table or secret access', () => {
    // act
    const statements = roleStatements(roleOfFunction(logicalId(stack.events.publisher)));
    const byAction = (prefix: string) => statements.filter((s) => actionsOf(s).some((a) => a.startsWith(prefix)));

    // assess
    assert.ok(statements.every((s) => s.Effect === 'Allow'));
    assert.deepEqual(byAction('events:').map((s) => [actionsOf(s), s.Resource]), [[['events:PutEvents'], arnOf(logicalId(stack.events.bus))]]);
    assert.deepEqual(byAction('sqs:').map((s) => s.Resource), [arnOf(logicalId(stack.events.deadLetterQueue))]);
    assert.ok(byAction('sqs:').every((s) => actionsOf(s).every((a) => ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'].includes(a))));
    // It sets aside, in the DLQ, events the bus refuses for what they hold.
    assert.ok(byAction('sqs:').some((s) => actionsOf(s).includes('sqs:SendMessage')), 'sqs:SendMessage on the events DLQ');
    const dynamo = byAction('dynamodb:').map((s) => [actionsOf(s).sort(), s.Resource]);
    assert.deepEqual(dynamo, [
      [['dynamodb:ListStreams'], '*'],
      [['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator'], { 'Fn::GetAtt': [logicalId(stack.table.table), 'StreamArn'] }],
    ]);
    const other = statements.filter((s) => !actionsOf(s).every((a) => /^(events|sqs|dynamodb|logs):/.test(a)));
    assert.deepEqual(other, [], 'nothing beyond the bus, the DLQ, the stream and its own logs');
    // Nobody else may put events on the bus.
    const putters = ofType('AWS::IAM::Policy').filter(([, p]) => JSON.stringify(p.Properties.PolicyDocument).includes('events:PutEvents'));
    assert.equal(putters.length, 1);
  });
});

describe('API stage', () => {
  test('access logs name the route key, never the path (it carries secret tokens)', () => {
    // act
    const [stage, ...others] = ofType('AWS::ApiGatewayV2::Stage').map(([, s]) => s.Properties);

    // assess
    assert.equal(others.length, 0);
    assert.equal(stage.StageName, '$default');
    const format = stage.AccessLogSettings.Format as string;
    assert.ok(!format.includes('$context.path'), format);
    assert.ok(!format.includes('rawPath') && !format.includes('resourcePath'), format);
    const fields = JSON.parse(format) as Record<string, string>;
    for (const variable of ['routeKey', 'requestId', 'status', 'identity.sourceIp', 'responseLength', 'integrationLatency']) {
      assert.ok(Object.values(fields).includes(`$context.${variable}`), `$context.${variable} is logged`);
    }
    assert.deepEqual(stage.AccessLogSettings.DestinationArn, arnOf(logicalId(stack.api.accessLogs)));
  });

  test('access logs carry no text the caller chose: each variable is one API Gateway sets itself', () => {
    // prepare: a User-Agent is whatever the caller sends (a phone number, a forged "status" field),
    // and the path carries secret tokens; what API Gateway measures or assigns is safe to log.
    const safe = new Set(['requestId', 'requestTime', 'routeKey', 'status', 'identity.sourceIp', 'protocol', 'responseLength', 'responseLatency', 'integrationStatus', 'integrationLatency', 'integrationErrorMessage', 'error.message']);

    // act
    const [stage] = ofType('AWS::ApiGatewayV2::Stage').map(([, s]) => s.Properties);
    const variables = [...(stage.AccessLogSettings.Format as string).matchAll(/\$context\.([\w.]+)/g)].map((match) => match[1]);

    // assess
    assert.ok(variables.length > 0);
    assert.deepEqual(variables.filter((variable) => !safe.has(variable)), []);
  });

  test('the cost model sizes the access log line the stage writes: the same fields', () => {
    // act
    const [stage] = ofType('AWS::ApiGatewayV2::Stage').map(([, s]) => s.Properties);

    // assess
    assert.deepEqual(Object.keys(JSON.parse(accessLogExample('POST /callbacks/telesign')) as object), Object.keys(JSON.parse(stage.AccessLogSettings.Format as string) as object));
  });

  test('every route is throttled (stage default and per route)', () => {
    // act
    const [, stage] = ofType('AWS::ApiGatewayV2::Stage')[0];

    // assess
    const limits = { ThrottlingRateLimit: 200, ThrottlingBurstLimit: 400 };
    assert.deepEqual(stage.Properties.DefaultRouteSettings, { ThrottlingBurstLimit: 400, ThrottlingRateLimit: 200 });
    assert.deepEqual(stage.Properties.RouteSettings, Object.fromEntries(EXPECTED_ROUTE_KEYS.map((key) => [key, limits])));
    const routeIds = stack.ingresses.map((ingress) => logicalId(ingress.route));
    for (const id of routeIds) assert.ok((stage.DependsOn as string[]).includes(id), `stage waits for route ${id}`);
  });
});

describe('alarms and outputs', () => {
  // Each alarm, its metric filter and the dashboard: operations.test.ts.
  test('the pipeline alarms (DLQ, DLQ expiring, oldest message, 5xx, worker errors and throttles) notify the topic; no e-mail unless asked', () => {
    // act
    const alarms = ofType('AWS::CloudWatch::Alarm').map(([, alarm]) => alarm.Properties);
    const topicId = logicalId(stack.alarms.topic);

    // assess
    const awsMetrics = alarms.filter((alarm) => String(alarm.Namespace).startsWith('AWS/')).map((alarm) => alarm.MetricName);
    assert.deepEqual(awsMetrics.sort(), ['5xx', 'ApproximateAgeOfOldestMessage', 'ApproximateAgeOfOldestMessage', 'ApproximateNumberOfMessagesVisible', 'ApproximateNumberOfMessagesVisible', 'Errors', 'IteratorAge', 'Throttles']);
    for (const alarm of alarms) assert.deepEqual(alarm.AlarmActions, [ref(topicId)]);
    const dlqAlarms = alarms.filter((alarm) => alarm.MetricName === 'ApproximateNumberOfMessagesVisible').map((alarm) => alarm.Dimensions[0].Value);
    assert.deepEqual(dlqAlarms, [logicalId(stack.pipeline.deadLetterQueue), logicalId(stack.events.deadLetterQueue)].map((id) => ({ 'Fn::GetAtt': [id, 'QueueName'] })));
    assert.equal(ofType('AWS::SNS::Subscription').length, 0);
    const topicPolicy = ofType('AWS::SNS::TopicPolicy')[0][1].Properties.PolicyDocument.Statement as Statement[];
    assert.ok(topicPolicy.some((s) => s.Effect === 'Allow' && JSON.stringify(s.Principal).includes('cloudwatch.amazonaws.com')));
  });

  test('outputs: each provider URL (with its {token} placeholder) and secret, the table, the queues, the topic, the dashboard', () => {
    // act
    const outputs = template.toJSON().Outputs as Record<string, Json>;

    // assess
    for (const provider of providers) {
      const name = pascal(provider.id);
      const url = outputs[`${name}CallbackUrl`].Value['Fn::Join'][1] as unknown[];
      assert.equal(url[0], 'https://');
      assert.equal(url.at(-1), provider.route.path);
      // Every placeholder in the URL is explained in the output's description.
      for (const [, parameter] of provider.route.path.matchAll(/\{(\w+)\}/g)) {
        assert.match(outputs[`${name}CallbackUrl`].Description, new RegExp(`Replace \\{${parameter}\\}`), `${provider.id} {${parameter}}`);
      }
      assert.ok(outputs[`${name}SecretName`]);
    }
    for (const name of ['TableName', 'QueueUrl', 'DeadLetterQueueUrl', 'EventBusName', 'EventBusArn', 'EventsDeadLetterQueueUrl', 'AlarmTopicArn', 'DashboardUrl']) assert.ok(outputs[name], name);
  });

  test('outputs: a secret that starts with placeholders names them and says the route answers 503 until they are filled in', () => {
    // act
    const outputs = template.toJSON().Outputs as Record<string, Json>;

    for (const provider of providers) {
      const toFill = Object.keys(provider.secretPlaceholder).filter(
        (field) => field !== provider.generatedSecretField && provider.secretPlaceholder[field] === 'REPLACE_ME',
      );
      if (toFill.length === 0) continue;
      const description = outputs[`${pascal(provider.id)}SecretName`].Description as string;

      // assess: a user who fills only some of it (TemboPlus's token alone) learns why callbacks get 503
      assert.match(description, new RegExp(`Replace REPLACE_ME in ${toFill.join(', ')}: until then the route answers 503`), provider.id);
    }
  });

  test('outputs: the Standard Webhooks secret says how to write its sources map, which no provider console shows', () => {
    // act
    const outputs = template.toJSON().Outputs as Record<string, Json>;
    const description = outputs.StandardWebhooksSecretName.Description as string;

    // assess: the shape of one sender's entry, and that its name is the URL's {source}
    assert.match(description, /\{"sources": \{"<source>": \{"secret": "whsec_…"\}\}\}/);
    assert.match(description, /\{source\} in the callback URL/);
  });
});

describe('function bundles', () => {
  test('each function carries the AWS SDK the tests ran with: its asset loads with no node_modules to resolve from', () => {
    // prepare
    const functions = ofType('AWS::Lambda::Function');
    assert.ok(functions.length >= providers.length + 3, 'ingest functions, worker, sweep and publisher');

    for (const [id, fn] of functions) {
      // act
      const key = fn.Properties.Code.S3Key as string;
      const file = join(assemblyDir, `asset.${key.replace(/\.zip$/, '')}`, 'index.js');
      const code = readFileSync(file, 'utf8');
      // A fresh node, outside any checkout: a module left external cannot be found.
      const loaded = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)})`], { cwd: tmpdir(), env: { PATH: process.env.PATH }, encoding: 'utf8' });

      // assess
      assert.equal(loaded.status, 0, `${id}: ${loaded.stderr}`);
      // Only the optional CRT signer (SigV4a, in a try) stays a require: the runtime has none either.
      assert.deepEqual([...new Set(code.match(/require\("@aws-sdk\/[^"]+"\)/g) ?? [])], ['require("@aws-sdk/signature-v4-crt")'], id);
      assert.match(code, /DynamoDB|SQS|EventBridge/, `${id} holds an SDK client`);
    }
  });
});

describe('cdk-nag AwsSolutions', () => {
  test('no unacknowledged finding, and every acknowledgement has a reason', () => {
    // act
    const report = JSON.parse(readFileSync(join(assemblyDir, 'validation-report.json'), 'utf8')) as { pluginReports: Json[] };
    const nag = report.pluginReports.find((plugin) => plugin.pluginName === 'AwsSolutions');

    // assess
    assert.ok(nag, 'the AwsSolutions plugin ran');
    assert.deepEqual(nag.violations, []);
    assert.equal(nag.conclusion, 'success');
    for (const other of report.pluginReports) assert.deepEqual(other.violations, [], other.pluginName);
    const acknowledged = new Set<string>();
    for (const finding of nag.suppressedViolations as Json[]) {
      assert.ok(String(finding.reason).length >= 80, `${finding.ruleName} has a real reason`);
      acknowledged.add(String(finding.ruleName).replace(/<Table[0-9A-F]+\.Arn>/, '<TABLE.Arn>'));
      for (const resource of finding.violatingConstructs as Json[]) {
        assert.notEqual(resource.constructPath, stack.node.path, 'acknowledged on the resource, not stack-wide');
      }
    }
    assert.deepEqual([...acknowledged].sort(), EXPECTED_ACKNOWLEDGED_RULES);
  });
});

// Settings (cdk.json, one-off -c, validation) and stages: settings.test.ts.
