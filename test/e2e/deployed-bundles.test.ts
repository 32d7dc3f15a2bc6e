import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CreateQueueCommand, DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient, type Message } from '@aws-sdk/client-sqs';
import { GetItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { CfnElement } from 'aws-cdk-lib';
import { AssetManifestArtifact } from 'aws-cdk-lib/cx-api';
import type { DynamoDBRecord, DynamoDBStreamEvent, SQSEvent, SQSRecord } from 'aws-lambda';
import { toTableChange } from '../../functions/adapters/dynamo-stream.ts';
import { DETAIL_TYPES, eventsFromChange, type StatusChangedDetail } from '../../functions/core/publish.ts';
import { keys, TABLE } from '../../functions/core/pipeline-definition.ts';
import { RecheckMessageSchema } from '../../functions/core/queue-message.ts';
import type { SweepResult } from '../../functions/core/sweep.ts';
import { providers } from '../../functions/providers/index.ts';
import { telesign } from '../../functions/providers/telesign.ts';
import type { AnyProvider } from '../../functions/providers/provider.ts';
import type { CallbackGatewayStack } from '../../lib/callback-gateway-stack.ts';
import { createGatewayApp } from '../../lib/gateway-app.ts';
import { REPO_ROOT } from '../../lib/gateway-function.ts';
import { ensureQueues, LOCAL_AWS, startSqsServer, type SqsServer } from '../../local/engines.ts';
import { startHttpApi } from '../../local/http-api.ts';
import { authenticRequest, findSample, listSamples, type Sample } from '../../local/samples.ts';
import { kitOf } from '../providers/index.ts';
import { startSecretsManagerStandIn, type SecretsManagerStandIn } from '../support/secrets-manager-stand-in.ts';
import { readTableStream } from '../support/dynamodb-local-stream.ts';
import { deliveredEvent, schemaErrors, undeclaredDetailMembers } from '../support/event-schemas.ts';
import { startEventBridgeStandIn, type EventBridgeStandIn } from '../support/eventbridge-stand-in.ts';
import { passesFilters } from '../support/lambda-filter.ts';
import { startTableAndSimulators, type TableAndSimulators } from '../support/table-and-simulator.ts';
import { contentOf, toRequest } from '../support/unit-ingest.ts';
import { leaks } from '../support/log-leaks.ts';

/**
 * The artifacts AWS would run, run here: the app is synthesized as `cdk synth` does (cdk.json's
 * context, bundling by the local esbuild), and each function's asset folder in the cloud assembly
 * is run as Lambda's Node.js runtime runs it: in a process of its own, with the Handler, the
 * environment and the runtime the template gives the function, against the local engines.
 * Everything is found through the template, as CloudFormation and Lambda find it: a route's
 * integration names the ingest function, the queue's event source mapping the worker, the
 * schedule's target the sweep; a function's Code.S3Key names its asset. So a wrong environment
 * variable name, handler path, route wiring or a bundling mistake fails here, where the unit tests
 * (which import the TypeScript) cannot see it.
 *
 * What stands in for AWS: DynamoDB Local and the SQS-API server (the engines every e2e test uses),
 * the simulated status endpoints of the providers the worker asks, a Secrets Manager stand-in
 * (test/support/secrets-manager-stand-in.ts) serving the kits' secrets, and an EventBridge
 * PutEvents stand-in (test/support/eventbridge-stand-in.ts) recording what the publisher puts on the
 * bus. Lambda's DynamoDB event source is played by reading DynamoDB Local's own stream through the
 * Streams API (test/support/dynamodb-local-stream.ts), with the template's filter criteria applied
 * as Lambda applies them and its batch size. The bundle's own SDK clients reach them through the
 * service-specific endpoint variables (AWS_ENDPOINT_URL_DYNAMODB, _SQS, _SECRETS_MANAGER,
 * _EVENTBRIDGE: https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html),
 * which AWS SDK for JavaScript v3 reads since October 2023 (aws/aws-sdk-js-v3#5350; 3.428.0 is shown
 * honouring them in aws/aws-sdk-js-v3#5364), our pinned 3.11xx clients included: nothing in the
 * bundle is changed for the test.
 */

type Json = Record<string, any>;

const RUNNER = fileURLToPath(new URL('../support/lambda-runner.ts', import.meta.url));
const CDK_CONTEXT = (JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Json }).context;
/** The account the local ARNs name. */
const ACCOUNT = '000000000000';
const TABLE_NAME = 'callback-gateway-bundles';
/** The session of Identomat's one-time-password sample (test/fixtures/identomat/one-time-password.json). */
const OTP_SESSION = JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures/identomat/one-time-password.json'), 'utf8')).sessionId as string;

/** A function of the template, as Lambda would run it. */
interface DeployedFunction {
  readonly logicalId: string;
  /** The asset folder in the cloud assembly (what `cdk deploy` zips and uploads). */
  readonly assetDir: string;
  readonly handler: string;
  readonly runtime: string;
  readonly timeoutSeconds: number;
  readonly memorySize: number;
  /** Environment.Variables, Ref and Fn::GetAtt resolved to the local resources. */
  readonly environment: Readonly<Record<string, string>>;
  readonly logging: { readonly format?: string; readonly level?: string };
}

/** What one run of a bundle returned: one result per event, and what it printed. */
interface BundleRun {
  readonly results: ({ ok: true; value: any } | { ok: false; errorType: string; errorMessage: string })[];
  readonly stdout: string;
  readonly stderr: string;
}

let stack: CallbackGatewayStack;
let template: Json;
let assemblyDir: string;
let fns: Map<string, DeployedFunction>;
let engines: TableAndSimulators;
let sqs: SqsServer;
let secretsManager: SecretsManagerStandIn;
let eventBridge: EventBridgeStandIn;
let sqsClient: SQSClient;
let queues: { queueUrl: string; dlqUrl: string; queueName: string; queueArn: string; eventsDlqUrl: string; eventsDlqName: string };
/** Secret logical id → the local ARN its Ref resolves to, and the provider it belongs to. */
let secretArns: Map<string, { arn: string; provider: string }>;
/** A callback the ingest test sent, and what the pipeline should make of it. */
interface SentCallback {
  readonly provider: AnyProvider;
  /** `<provider>/<sample>`, for messages. */
  readonly what: string;
  readonly subjectId: string;
  readonly part?: string;
  readonly eventKey: string;
  /** Whether the worker asks the provider's status endpoint about it. */
  readonly asked: boolean;
  /** About a transaction still under way, at a provider the worker asks: reconciliation re-checks it. */
  readonly underWay: boolean;
}
const sent: SentCallback[] = [];

/** The Node major a `nodejsNN.x` runtime runs. */
function runtimeMajor(runtime: string): number {
  const match = /^nodejs(\d+)\.x$/.exec(runtime);
  assert.ok(match, `runtime ${runtime} is not a Node.js runtime this test can run`);
  return Number(match[1]);
}

/** CDK announces each bundling on stderr; the test output stays about results. */
function withoutBundlingNotices<T>(build: () => T): T {
  const write = process.stderr.write;
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) =>
    String(chunk).startsWith('Bundling asset ') ? true : (write as (...args: unknown[]) => boolean).call(process.stderr, chunk, ...rest)) as typeof process.stderr.write;
  try {
    return build();
  } finally {
    process.stderr.write = write;
  }
}

function logicalIdOf(construct: { node: { defaultChild?: unknown } }): string {
  return stack.getLogicalId(construct.node.defaultChild as CfnElement);
}

function resourcesOfType(type: string): [string, Json][] {
  return Object.entries(template.Resources as Record<string, Json>).filter(([, resource]) => resource.Type === type);
}

/** The logical id a `{ Ref }` or `{ Fn::GetAtt: [id, 'Arn'] }` points at. */
function referenced(value: unknown): string | undefined {
  const ref = (value as Json | undefined)?.Ref ?? (value as Json | undefined)?.['Fn::GetAtt']?.[0];
  return typeof ref === 'string' ? ref : undefined;
}

/**
 * A template value as it resolves here: Ref and Fn::GetAtt of the stack's table, queues and secrets
 * become the local ones. Anything else fails, naming it: a reference this test does not know is a
 * change to the functions' wiring that it must learn about.
 */
function resolve(value: unknown, where: string): string {
  if (typeof value === 'string') return value;
  const id = referenced(value);
  const attribute = (value as Json)['Fn::GetAtt']?.[1] ?? 'Ref';
  const type = id === undefined ? undefined : (template.Resources[id] as Json | undefined)?.Type;
  const local: Record<string, Record<string, () => string | undefined>> = {
    'AWS::DynamoDB::Table': { Ref: () => TABLE_NAME, Arn: () => `arn:aws:dynamodb:${LOCAL_AWS.region}:${ACCOUNT}:table/${TABLE_NAME}` },
    'AWS::SQS::Queue': {
      Ref: () => (id === queueIds().queue ? queues.queueUrl : id === queueIds().dlq ? queues.dlqUrl : id === logicalIdOf(stack.events.deadLetterQueue) ? queues.eventsDlqUrl : undefined),
      Arn: () => (id === queueIds().queue ? queues.queueArn : undefined),
    },
    'AWS::SecretsManager::Secret': { Ref: () => secretArns.get(id!)?.arn },
    // A bus's Ref is its name; the stand-in takes any.
    'AWS::Events::EventBus': { Ref: () => (template.Resources[id!] as Json).Properties.Name as string },
  };
  const resolved = type === undefined ? undefined : local[type]?.[attribute]?.();
  if (resolved === undefined) throw new Error(`${where}: ${JSON.stringify(value)} (${type ?? 'unknown resource'}) has no local value in this test`);
  return resolved;
}

/** The main queue (it has a redrive policy) and its dead-letter queue, by logical id. */
function queueIds(): { queue: string; dlq: string } {
  const withRedrive = resourcesOfType('AWS::SQS::Queue').filter(([, queue]) => queue.Properties?.RedrivePolicy);
  assert.equal(withRedrive.length, 1, 'one queue with a redrive policy');
  const [queue, props] = withRedrive[0];
  return { queue, dlq: referenced(props.Properties.RedrivePolicy.deadLetterTargetArn)! };
}

/** Code.S3Key → the asset manifest entry with that object key → its folder in the cloud assembly. */
function assetFolder(functionId: string, code: Json, assetManifest: Json): string {
  const entry = Object.values(assetManifest.files as Record<string, Json>).find((file) =>
    Object.values(file.destinations as Record<string, Json>).some((destination) => destination.objectKey === code.S3Key),
  );
  assert.ok(entry, `${functionId}: no asset in the manifest uploads to ${JSON.stringify(code.S3Key)}`);
  assert.equal(entry.source.packaging, 'zip', `${functionId}: its asset is not a folder zipped on upload`);
  const dir = join(assemblyDir, entry.source.path as string);
  assert.ok(statSync(dir).isDirectory(), `${functionId}: ${entry.source.path} is not a folder`);
  return dir;
}

function deployedFunction(logicalId: string, assetManifest: Json): DeployedFunction {
  const props = template.Resources[logicalId].Properties as Json;
  const variables = (props.Environment?.Variables ?? {}) as Record<string, unknown>;
  return {
    logicalId,
    assetDir: assetFolder(logicalId, props.Code, assetManifest),
    handler: props.Handler,
    runtime: props.Runtime,
    timeoutSeconds: props.Timeout ?? 3,
    memorySize: props.MemorySize ?? 128,
    environment: Object.fromEntries(Object.entries(variables).map(([name, value]) => [name, resolve(value, `${logicalId} ${name}`)])),
    logging: { format: props.LoggingConfig?.LogFormat, level: props.LoggingConfig?.ApplicationLogLevel },
  };
}

/**
 * The environment Lambda gives the function: the template's variables, the runtime's own, and
 * what points the SDK at the local engines. Nothing of this test's own environment leaks in but
 * PATH: no real credentials, no shared config file (which could name another endpoint).
 */
function lambdaEnvironment(fn: DeployedFunction, overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    TZ: ':UTC',
    LAMBDA_TASK_ROOT: fn.assetDir,
    AWS_LAMBDA_FUNCTION_NAME: fn.logicalId,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memorySize),
    ...(fn.logging.format ? { AWS_LAMBDA_LOG_FORMAT: fn.logging.format } : {}),
    ...(fn.logging.level ? { AWS_LAMBDA_LOG_LEVEL: fn.logging.level } : {}),
    AWS_REGION: LOCAL_AWS.region,
    AWS_DEFAULT_REGION: LOCAL_AWS.region,
    AWS_ACCESS_KEY_ID: 'bundles',
    AWS_SECRET_ACCESS_KEY: 'bundles',
    AWS_SESSION_TOKEN: 'bundles',
    AWS_CONFIG_FILE: join(assemblyDir, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(assemblyDir, 'no-aws-credentials'),
    AWS_ENDPOINT_URL_DYNAMODB: engines.dynamo.endpoint,
    AWS_ENDPOINT_URL_SQS: sqs.endpoint,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsManager.endpoint,
    AWS_ENDPOINT_URL_EVENTBRIDGE: eventBridge.endpoint,
    // The AWS SDK, if the bundle leaves it out (external): on Lambda the nodejs runtime provides it
    // on its NODE_PATH (/var/runtime/node_modules); here it is the project's own. A bundle that
    // carries its SDK never looks there.
    NODE_PATH: join(REPO_ROOT, 'node_modules'),
    ...fn.environment,
  };
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

/** Run the function's bundle on `events` in one process (plain node, no TypeScript loader). */
async function invoke(fn: DeployedFunction, events: readonly unknown[], options: { clockOffsetMs?: number; env?: Record<string, string | undefined> } = {}): Promise<BundleRun> {
  const child = spawn(process.execPath, [RUNNER], { cwd: fn.assetDir, env: lambdaEnvironment(fn, options.env), stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let results = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  (child.stdio[3] as NodeJS.ReadableStream).on('data', (chunk: Buffer) => (results += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  child.stdin!.end(JSON.stringify({ handler: fn.handler, timeoutSeconds: fn.timeoutSeconds, events, clockOffsetMs: options.clockOffsetMs }));
  const timer = setTimeout(() => child.kill('SIGKILL'), (fn.timeoutSeconds + 10) * 1000);
  const code = await exited;
  clearTimeout(timer);
  assert.ok(results, `${fn.logicalId}: the runner reported nothing (exit ${code})\nstdout:\n${stdout}\nstderr:\n${stderr}`);
  // Nothing on stderr (an SDK's warning, an unhandled rejection), and every stdout line one of our
  // JSON log lines naming its invocation, as Lambda's JSON log format and the saved queries expect.
  assert.equal(stderr, '', `${fn.logicalId} wrote on stderr`);
  for (const line of stdout.split('\n').filter(Boolean)) {
    let parsed: Json | undefined;
    try {
      parsed = JSON.parse(line) as Json;
    } catch {
      assert.fail(`${fn.logicalId}: a log line that is not JSON: ${line}`);
    }
    assert.equal(typeof parsed.function_request_id, 'string', `${fn.logicalId}: a line without function_request_id: ${line}`);
    assert.equal(typeof parsed.cold_start, 'boolean', `${fn.logicalId}: a line without cold_start: ${line}`);
  }
  return { results: JSON.parse(results) as BundleRun['results'], stdout, stderr };
}

/** The value of a run's only invocation; a rejected invocation fails with the function's log. */
function valueOf(fn: DeployedFunction, run: BundleRun): any {
  const [result] = run.results;
  assert.ok(result.ok, `${fn.logicalId} failed: ${result.ok ? '' : `${result.errorType}: ${result.errorMessage}`}\n${run.stdout}${run.stderr}`);
  return result.value;
}

/** The function a template reference (`{ Fn::GetAtt: [id, 'Arn'] }` or `{ Ref: id }`) names. */
function functionAt(value: unknown, what: string): DeployedFunction {
  const id = referenced(value);
  const fn = id === undefined ? undefined : fns.get(id);
  assert.ok(fn, `${what} does not name a Lambda function of the template: ${JSON.stringify(value)}`);
  return fn;
}

/** The ingest function API Gateway invokes for a provider's route: RouteKey → Target → integration → function. */
function routeFunction(provider: AnyProvider): DeployedFunction {
  const routeKey = `${provider.route.method} ${provider.route.path}`;
  const routes = resourcesOfType('AWS::ApiGatewayV2::Route').filter(([, route]) => route.Properties.RouteKey === routeKey);
  assert.equal(routes.length, 1, `one route ${routeKey}`);
  const target = routes[0][1].Properties.Target as Json;
  const integrationId = referenced((target['Fn::Join']?.[1] as unknown[] | undefined)?.find((part) => referenced(part)));
  const integration = integrationId === undefined ? undefined : (template.Resources[integrationId] as Json | undefined);
  assert.equal(integration?.Properties?.PayloadFormatVersion, '2.0', `${routeKey}: an integration with payload format 2.0`);
  return functionAt(integration.Properties.IntegrationUri, `the integration of ${routeKey}`);
}

/** The worker: the function the queue's event source mapping invokes. */
function workerFunction(): DeployedFunction {
  const mappings = resourcesOfType('AWS::Lambda::EventSourceMapping').filter(([, mapping]) => referenced(mapping.Properties.EventSourceArn) === queueIds().queue);
  assert.equal(mappings.length, 1, 'one event source mapping on the queue');
  return functionAt(mappings[0][1].Properties.FunctionName, 'the event source mapping');
}

/** The sweep: the function the schedule targets. */
function sweepFunction(): DeployedFunction {
  const rules = resourcesOfType('AWS::Events::Rule').filter(([, rule]) => rule.Properties.ScheduleExpression);
  assert.equal(rules.length, 1, 'one scheduled rule');
  const targets = rules[0][1].Properties.Targets as Json[];
  assert.equal(targets.length, 1, 'the schedule has one target');
  return functionAt(targets[0].Arn, 'the schedule');
}

/** The event source mapping on the table's stream (the publisher's). */
function streamMapping(): Json {
  const mappings = resourcesOfType('AWS::Lambda::EventSourceMapping').filter(([, mapping]) => (mapping.Properties.EventSourceArn as Json)['Fn::GetAtt']?.[1] === 'StreamArn');
  assert.equal(mappings.length, 1, 'one event source mapping on the table stream');
  return mappings[0][1].Properties as Json;
}

/** The publisher: the function the table stream's event source mapping invokes. */
function publisherFunction(): DeployedFunction {
  return functionAt(streamMapping().FunctionName, 'the stream event source mapping');
}

/** The stream's records Lambda would hand the publisher: those its filter criteria let through, oldest first. */
async function filteredStreamRecords(): Promise<{ all: DynamoDBRecord[]; passed: DynamoDBRecord[] }> {
  const all = await readTableStream(engines.dynamo.endpoint, TABLE_NAME);
  const patterns = ((streamMapping().FilterCriteria?.Filters ?? []) as Json[]).map((filter) => JSON.parse(filter.Pattern as string) as unknown);
  assert.ok(patterns.length > 0, 'the stream mapping has filter criteria');
  return { all, passed: all.filter((record) => passesFilters(patterns, record)) };
}

/** Consecutive batches of at most the mapping's BatchSize, as Lambda hands them over. */
function streamBatches(records: readonly DynamoDBRecord[]): DynamoDBStreamEvent[] {
  const size = Number(streamMapping().BatchSize ?? 100);
  const batches: DynamoDBStreamEvent[] = [];
  for (let i = 0; i < records.length; i += size) batches.push({ Records: records.slice(i, i + size) });
  return batches;
}

/** The events the stand-in accepted since `from`, as EventBridge would deliver them. */
function deliveredSince(from: number): Json[] {
  return eventBridge.accepted.slice(from).map((entry) => ({
    ...deliveredEvent({ Source: entry.Source, DetailType: entry.DetailType, Detail: entry.Detail, ...(entry.Time === undefined ? {} : { Time: new Date(entry.Time * 1000) }) }),
    bus: entry.EventBusName,
  }));
}

/** The messages on the queue, received as Lambda's event source mapping receives them. */
async function receiveAll(count: number): Promise<Message[]> {
  const messages: Message[] = [];
  const deadline = Date.now() + 10_000;
  while (messages.length < count && Date.now() < deadline) {
    const { Messages } = await sqsClient.send(
      new ReceiveMessageCommand({ QueueUrl: queues.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageSystemAttributeNames: ['All'] }),
    );
    messages.push(...(Messages ?? []));
  }
  return messages;
}

/** The SQS event Lambda hands the worker for these messages. */
function sqsEventOf(messages: readonly Message[]): SQSEvent {
  return {
    Records: messages.map(
      (message): SQSRecord => ({
        messageId: message.MessageId!,
        receiptHandle: message.ReceiptHandle!,
        body: message.Body!,
        attributes: {
          ApproximateReceiveCount: message.Attributes?.ApproximateReceiveCount ?? '1',
          SentTimestamp: message.Attributes?.SentTimestamp ?? String(Date.now()),
          SenderId: message.Attributes?.SenderId ?? ACCOUNT,
          ApproximateFirstReceiveTimestamp: message.Attributes?.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
        },
        messageAttributes: {},
        md5OfBody: message.MD5OfBody!,
        eventSource: 'aws:sqs',
        eventSourceARN: queues.queueArn,
        awsRegion: LOCAL_AWS.region,
      }),
    ),
  };
}

/** The EventBridge event a `rate(1 minute)` rule sends its target. */
function scheduledEvent(at: Date): Json {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: ACCOUNT,
    time: at.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: LOCAL_AWS.region,
    resources: [`arn:aws:events:${LOCAL_AWS.region}:${ACCOUNT}:rule/every-minute`],
    detail: {},
  };
}

async function storedItem(key: { pk: string; sk: string }): Promise<Json | undefined> {
  const { Item } = await engines.client.send(new GetItemCommand({ TableName: TABLE_NAME, Key: { pk: { S: key.pk }, sk: { S: key.sk } }, ConsistentRead: true }));
  return Item ? unmarshall(Item) : undefined;
}

/**
 * The callbacks sent through the ingest bundles: each kit's own sample, and, for each provider the
 * worker asks, its first sample about a transaction still under way (with a subject of its own),
 * which reconciliation then re-checks.
 */
function callbacksToSend(): { provider: AnyProvider; sample: Sample; underWay: boolean }[] {
  const callbacks: { provider: AnyProvider; sample: Sample; underWay: boolean }[] = [];
  for (const provider of providers) {
    const kit = kitOf(provider);
    callbacks.push({ provider, sample: findSample(provider.id, kit.sample), underWay: false });
    if (!engines.simulators[provider.id]) continue;
    const secret = provider.secretSchema.parse(engines.askingSecrets[provider.id]) as Record<string, unknown>;
    const underWay = listSamples(provider.id).find((sample) => {
      const parsed = provider.parse(toRequest(provider, authenticRequest(provider, secret, contentOf(sample))));
      if (!parsed.ok || provider.asksAbout?.(parsed.payload) === false) return false;
      const facts = provider.describe(parsed.payload, secret);
      return !facts.terminal && facts.placesStatus !== false && facts.part === undefined;
    });
    if (underWay) callbacks.push({ provider, sample: kit.withSubject(underWay, `bundles${randomUUID().replace(/-/g, '')}`), underWay: true });
  }
  return callbacks;
}

/** The event source mapping's BatchSize: the most records Lambda hands the worker at once. */
function workerBatchSize(): number {
  const mapping = resourcesOfType('AWS::Lambda::EventSourceMapping').find(([, candidate]) => referenced(candidate.Properties.EventSourceArn) === queueIds().queue);
  return Number(mapping?.[1].Properties.BatchSize ?? 10);
}

/** Every event item of a subject (callbacks and the provider's answers). */
async function subjectEvents(provider: string, subjectId: string): Promise<Json[]> {
  const { Items = [] } = await engines.client.send(
    new QueryCommand({
      TableName: TABLE_NAME,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :events)',
      ExpressionAttributeValues: { ':pk': { S: keys.subject(provider, subjectId) }, ':events': { S: 'EVENT#' } },
      ConsistentRead: true,
    }),
  );
  return Items.map((item) => unmarshall(item));
}

/** The subjects the byRecheck index lists as due for a re-check (any time), over the sweep's shards. */
async function dueRechecks(): Promise<{ provider: string; subjectId: string; recheckAt: string }[]> {
  const due: { provider: string; subjectId: string; recheckAt: string }[] = [];
  const shards = Number(sweepFunction().environment.RECONCILE_SHARDS);
  assert.ok(shards > 0, 'the sweep has RECONCILE_SHARDS');
  for (const provider of providers) {
    for (let shard = 0; shard < shards; shard++) {
      const { Items = [] } = await engines.client.send(
        new QueryCommand({
          TableName: TABLE_NAME,
          IndexName: TABLE.recheckIndex.name,
          KeyConditionExpression: 'recheckShard = :shard',
          ExpressionAttributeValues: { ':shard': { S: `${provider.id}#${shard}` } },
        }),
      );
      for (const item of Items.map((raw) => unmarshall(raw))) due.push({ provider: provider.id, subjectId: item.subjectId, recheckAt: item.recheckAt });
    }
  }
  return due;
}

describe('the deployed bundles (cdk.out) against the local engines', { timeout: 180_000 }, () => {
  // Made in before(), not as the file loads: a run that filtered these tests out left it behind.
  let outdir: string | undefined;

  before(async () => {
    outdir = mkdtempSync(join(tmpdir(), 'callback-gateway-bundles-'));
    // Engines first: DynamoDB Local starts in its own process while the synth below bundles.
    const starting = [startTableAndSimulators(TABLE_NAME, 'bundles'), startSqsServer()] as const;
    const started = Promise.allSettled(starting);
    // Asset staging (esbuild) runs as the constructs are made, then synth writes the assembly.
    const assembly = withoutBundlingNotices(() => {
      const built = createGatewayApp({ outdir, context: CDK_CONTEXT });
      stack = built.stack;
      return built.app.synth();
    });
    assemblyDir = assembly.directory;
    const artifact = assembly.getStackArtifact(stack.artifactId);
    template = artifact.template as Json;
    const manifestArtifact = artifact.dependencies.find((dependency) => AssetManifestArtifact.isAssetManifestArtifact(dependency));
    assert.ok(manifestArtifact, 'the stack has an asset manifest');
    const assetManifest = JSON.parse(readFileSync(manifestArtifact.file, 'utf8')) as Json;

    // Whatever started is stopped by `after`, even if the other failed to.
    const [table, queueServer] = await started;
    if (table.status === 'fulfilled') engines = table.value;
    if (queueServer.status === 'fulfilled') sqs = queueServer.value;
    for (const outcome of [table, queueServer]) if (outcome.status === 'rejected') throw outcome.reason;

    const lambdaMajor = Math.max(...resourcesOfType('AWS::Lambda::Function').map(([, fn]) => runtimeMajor(fn.Properties.Runtime as string)));
    const major = Number(process.versions.node.split('.')[0]);
    assert.ok(
      major >= lambdaMajor,
      `the functions run on Lambda's nodejs${lambdaMajor}.x and this test runs their bundles on this Node, ${process.version}: run it on Node ${lambdaMajor} or later (.ci/run installs it)`,
    );

    sqsClient = new SQSClient({ ...LOCAL_AWS, endpoint: sqs.endpoint });
    const ids = queueIds();
    const prefix = stack.stackName;
    const names = { queue: `${prefix}-${ids.queue}`, dlq: `${prefix}-${ids.dlq}` };
    const created = await ensureQueues(sqsClient, names);
    const { Attributes } = await sqsClient.send(new GetQueueAttributesCommand({ QueueUrl: created.queueUrl, AttributeNames: ['QueueArn'] }));
    // The events dead-letter queue: where the publisher sets aside an event the bus refuses for what it holds.
    const eventsDlqName = `${prefix}-${logicalIdOf(stack.events.deadLetterQueue)}`;
    await sqsClient.send(new CreateQueueCommand({ QueueName: eventsDlqName }));
    // A queue's Ref is its URL on the SQS endpoint (https://sqs.<region>.amazonaws.com/<account>/<name>);
    // here, on the local server's. (The server's own URLs, http://sqs.<region>.127.0.0.1:<port>/…, are
    // no WHATWG URL: a hostname ending in a number must be an IPv4 address. An SQS client without an
    // explicit endpoint, as in a function, cannot parse them and says so on stderr.)
    queues = {
      queueUrl: `${sqs.endpoint}/${ACCOUNT}/${names.queue}`,
      dlqUrl: `${sqs.endpoint}/${ACCOUNT}/${names.dlq}`,
      queueName: names.queue,
      queueArn: Attributes!.QueueArn!,
      eventsDlqUrl: `${sqs.endpoint}/${ACCOUNT}/${eventsDlqName}`,
      eventsDlqName,
    };

    // Each provider's secret, as its Ref resolves (an ARN), holding the kit's secret with the asked
    // providers pointed at their simulated status endpoints.
    secretArns = new Map(
      stack.ingresses.map((ingress) => {
        const id = logicalIdOf(ingress.secret);
        return [id, { arn: `arn:aws:secretsmanager:${LOCAL_AWS.region}:${ACCOUNT}:secret:${prefix}-${id}-AbCdEf`, provider: ingress.provider.id }];
      }),
    );
    eventBridge = await startEventBridgeStandIn();
    secretsManager = await startSecretsManagerStandIn(new Map([...secretArns.values()].map(({ arn, provider }) => [arn, JSON.stringify(engines.askingSecrets[provider])])));

    fns = new Map(resourcesOfType('AWS::Lambda::Function').map(([id]) => [id, deployedFunction(id, assetManifest)]));
  });

  after(async () => {
    sqsClient?.destroy();
    await Promise.all([engines?.stop(), sqs?.stop(), secretsManager?.stop(), eventBridge?.stop()]);
    if (outdir) rmSync(outdir, { recursive: true, force: true });
  });

  test('every function of the template is reached by a route, the queue or the schedule, and runs index.handler', () => {
    const reached = new Set([...providers.map((provider) => routeFunction(provider).logicalId), workerFunction().logicalId, sweepFunction().logicalId, publisherFunction().logicalId]);
    assert.deepEqual([...fns.keys()].sort(), [...reached].sort(), 'a function nothing invokes, or one this test does not run');
    for (const fn of fns.values()) {
      assert.equal(fn.handler, 'index.handler', fn.logicalId);
      assert.equal(fn.runtime, 'nodejs24.x', fn.logicalId);
    }
  });

  test("each provider's ingest bundle answers authentic callbacks 200, queueing exactly one message for each", async () => {
    // API Gateway's side: the local HTTP API turns each request into the payload 2.0 event, with
    // the path parameters of the route; the function the template's route integrates runs on it.
    const routes = providers.map((provider) => ({
      provider,
      handler: async (event: unknown) => valueOf(routeFunction(provider), await invoke(routeFunction(provider), [event])),
    }));
    const api = await startHttpApi(routes, 0);
    try {
      for (const callback of callbacksToSend()) {
        const { provider, sample } = callback;
        const kit = kitOf(provider);
        const secret = provider.secretSchema.parse(engines.askingSecrets[provider.id]) as Record<string, unknown>;
        // Providers the worker asks: their simulated status endpoint knows the subject as the callback says.
        if (kit.statusAnswer) engines.simulators[provider.id].report(kit.statusAnswer(sample));
        const request = authenticRequest(provider, secret, contentOf(sample));
        const what = `${provider.id}/${sample.name}`;
        const queuedBefore = sqs.messageBodies(queues.queueName).length;
        const secretsReadBefore = secretsManager.requests.length;

        const response = await fetch(`${api.url}${request.path}`, { method: request.method, headers: request.headers, ...(request.body ? { body: request.body } : {}) });
        const body = await response.text();

        assert.equal(response.status, 200, `${what}: ${body}`);
        assert.deepEqual(JSON.parse(body), { received: true }, what);
        const queued = sqs.messageBodies(queues.queueName).slice(queuedBefore);
        assert.equal(queued.length, 1, `${what}: messages queued`);
        assert.equal((JSON.parse(queued[0]) as { provider: string }).provider, provider.id, what);
        // Each function reads its own provider's secret, by the id the template gives it, once
        // (then from its cache).
        const ownSecret = [...secretArns.values()].find((secretArn) => secretArn.provider === provider.id)!.arn;
        assert.deepEqual(secretsManager.requests.slice(secretsReadBefore), [ownSecret], `${what}: secrets read`);

        const parsed = provider.parse(toRequest(provider, request));
        assert.ok(parsed.ok, what);
        const facts = provider.describe(parsed.payload, secret);
        // The worker asks the providers that have a status endpoint about the callbacks it can know.
        const asked = engines.simulators[provider.id] !== undefined && provider.asksAbout?.(parsed.payload) !== false;
        sent.push({ provider, what, subjectId: facts.subjectId, part: facts.part, eventKey: facts.eventKey, asked, underWay: callback.underWay });
      }
    } finally {
      await api.stop();
    }
  });

  test('the worker bundle stores the state and the event of every queued callback', async () => {
    assert.ok(sent.length >= providers.length, 'the ingest test queued a callback per provider');
    const messages = await receiveAll(sent.length);
    assert.equal(messages.length, sent.length, 'messages received from the queue');
    const worker = workerFunction();
    const batchSize = workerBatchSize();
    const logs: string[] = [];

    for (let i = 0; i < messages.length; i += batchSize) {
      const batch = messages.slice(i, i + batchSize);
      const run = await invoke(worker, [sqsEventOf(batch)]);
      logs.push(run.stdout, run.stderr);
      assert.deepEqual(valueOf(worker, run), { batchItemFailures: [] }, `worker log:\n${run.stdout}${run.stderr}`);
      // As the event source mapping does after a batch without failures.
      await sqsClient.send(new DeleteMessageBatchCommand({ QueueUrl: queues.queueUrl, Entries: batch.map((message, n) => ({ Id: String(n), ReceiptHandle: message.ReceiptHandle! })) }));
    }

    for (const { provider, what, subjectId, part, eventKey, asked } of sent) {
      const state = await storedItem(keys.state(provider.id, subjectId, part));
      assert.ok(state, `${what}: no state stored for ${subjectId}\n${logs.join('')}`);
      assert.equal(state.subjectId, subjectId, what);
      assert.equal(state.eventCount, 1, `${what}: events counted`);
      const callbacks = (await subjectEvents(provider.id, subjectId)).filter((event) => event.source !== 'status-endpoint' && event.part === part);
      assert.equal(callbacks.length, 1, `${what}: callback events stored`);
      assert.ok(String(callbacks[0].sk).startsWith(`EVENT#${eventKey}`), `${what}: event ${String(callbacks[0].sk)}, expected ${eventKey}`);
      // The asked providers were asked, with the credentials of the secret the worker read.
      if (asked) {
        assert.equal(state.confirmation, 'confirmed', `${what}: ${JSON.stringify(state)}`);
        assert.ok(
          engines.simulators[provider.id].requests.some((request) => request.subjectId === subjectId && request.authorized && request.status === 200),
          `${what}: its status endpoint was not asked about ${subjectId} with the secret's credentials`,
        );
      }
    }
  });

  test('the sweep bundle, run when re-checks are due, leases them and queues a re-check for each', async () => {
    // The subjects the worker left to be asked again, and when.
    const due = await dueRechecks();
    const underWay = sent.filter((callback) => callback.underWay).map((callback) => `${callback.provider.id} ${callback.subjectId}`);
    assert.ok(underWay.length > 0, 'no callback about a transaction still under way was sent: the sweep would have nothing to do');
    assert.deepEqual(due.map((entry) => `${entry.provider} ${entry.subjectId}`).sort(), underWay.sort(), 'subjects awaiting a re-check');
    // The sweep runs when the last of them is due (the schedule fires every minute), not now: its
    // process's clock is moved on instead of the test waiting minutes.
    const runAt = Math.max(...due.map((entry) => Date.parse(entry.recheckAt))) + 1_000;
    const sweep = sweepFunction();
    const queuedBefore = sqs.messageBodies(queues.queueName).length;

    const run = await invoke(sweep, [scheduledEvent(new Date(runAt))], { clockOffsetMs: runAt - Date.now() });

    const result = valueOf(sweep, run) as SweepResult;
    assert.deepEqual(
      result.providers,
      Object.fromEntries(providers.map((provider) => {
        const count = due.filter((entry) => entry.provider === provider.id).length;
        return [provider.id, { due: count, claimed: count, moved: 0 }];
      })),
      `due and leased per provider\n${run.stdout}`,
    );
    assert.equal(result.queued, due.length);
    const rechecks = sqs
      .messageBodies(queues.queueName)
      .slice(queuedBefore)
      .map((body) => RecheckMessageSchema.parse(JSON.parse(body)));
    assert.deepEqual(rechecks.map((message) => `${message.provider} ${message.subjectId}`).sort(), underWay.sort(), 'the re-checks queued');
    // Leased: a second sweep at the same time finds them taken.
    const again = valueOf(sweep, await invoke(sweep, [scheduledEvent(new Date(runAt))], { clockOffsetMs: runAt - Date.now() })) as SweepResult;
    assert.equal(again.queued, 0, 'a leased subject is queued again');
  });

  test("an Identomat code through the ingest and worker bundles: stored as an event item, for the publisher to send on", async () => {
    const identomat = providers.find((provider) => provider.id === 'identomat')!;
    const secret = identomat.secretSchema.parse(engines.askingSecrets.identomat) as Record<string, unknown>;
    const api = await startHttpApi([{ provider: identomat, handler: async (event: unknown) => valueOf(routeFunction(identomat), await invoke(routeFunction(identomat), [event])) }], 0);
    try {
      const request = authenticRequest(identomat, secret, contentOf(findSample('identomat', 'one-time-password')));
      const response = await fetch(`${api.url}${request.path}`, { method: request.method, headers: request.headers, ...(request.body ? { body: request.body } : {}) });
      assert.equal(response.status, 200, await response.text());
    } finally {
      await api.stop();
    }
    // The code's message (the sweep's re-checks, queued with delays, stay where they are).
    let message: Message | undefined;
    for (const deadline = Date.now() + 10_000; !message && Date.now() < deadline; ) {
      message = (await receiveAll(1)).find((received) => {
        const body = JSON.parse(received.Body!) as { provider?: string; kind?: string };
        return body.provider === 'identomat' && body.kind !== 'recheck';
      });
    }
    assert.ok(message, 'the code was queued');
    const worker = workerFunction();
    const run = await invoke(worker, [sqsEventOf([message])]);
    assert.deepEqual(valueOf(worker, run), { batchItemFailures: [] }, run.stdout);
    await sqsClient.send(new DeleteMessageBatchCommand({ QueueUrl: queues.queueUrl, Entries: [{ Id: '0', ReceiptHandle: message.ReceiptHandle! }] }));
    const stored = (await subjectEvents('identomat', OTP_SESSION)).filter((event) => String(event.sk).startsWith('EVENT#one-time-password'));
    assert.equal(stored.length, 1, 'the instruction stored once');
  });

  test("the publisher bundle puts one event per change of DynamoDB Local's stream on the bus, as Lambda's filter and batches hand them over", async () => {
    // The stream as Lambda's event source reads it: every record the worker's and the sweep's writes made.
    const { all, passed } = await filteredStreamRecords();
    assert.ok(passed.length > 0 && passed.length < all.length, `the filter let ${passed.length} of ${all.length} records through`);
    const publisher = publisherFunction();
    const from = eventBridge.accepted.length;

    const run = await invoke(publisher, streamBatches(passed));

    for (const result of run.results) assert.deepEqual(result, { ok: true, value: { batchItemFailures: [] } }, run.stdout);
    const events = deliveredSince(from);
    const busName = (template.Resources[logicalIdOf(stack.events.bus)] as Json).Properties.Name as string;
    assert.equal(publisher.environment.EVENT_BUS_NAME, busName);
    assert.deepEqual([...new Set(events.map((event) => event.bus))], [busName], 'every entry on the stack\'s bus');
    // Exactly what the core makes of every record, filtered out or not, in stream order: the filter
    // drops nothing that publishes, and nothing is published twice.
    const expected = all.flatMap((record) => eventsFromChange(toTableChange(record)));
    assert.deepEqual(events.map((event) => event.detail.eventId), expected.map((event) => event.detail.eventId));
    assert.equal(new Set(expected.map((event) => event.detail.eventId)).size, expected.length, 'one eventId per change');
    for (const event of events) {
      assert.deepEqual(schemaErrors(event), [], `${String(event['detail-type'])} ${JSON.stringify(event.detail)}`);
      assert.deepEqual(undeclaredDetailMembers(event), [], String(event['detail-type']));
    }

    // Each subject's events: in version order, the first with previous null, the last saying what the table says.
    const statusEvents = events.filter((event) => event['detail-type'] === DETAIL_TYPES.statusChanged).map((event) => event.detail as StatusChangedDetail);
    for (const { provider, what, subjectId, part } of sent) {
      const state = (await storedItem(keys.state(provider.id, subjectId, part)))!;
      const mine = statusEvents.filter((detail) => detail.provider === provider.id && detail.subjectId === subjectId && detail.part === part);
      assert.ok(mine.length > 0, `${what}: no event`);
      assert.deepEqual(mine.map((detail) => detail.version), [...mine.map((detail) => detail.version)].sort((a, b) => a - b), `${what}: version order`);
      assert.equal(mine[0].previous, null, `${what}: the first event's previous`);
      const last = mine.at(-1)!;
      // Bookkeeping writes (a re-check scheduled) raise the version without an event; changedAt marks the last change.
      assert.deepEqual([last.changedAt, last.status, last.outcome, last.terminal], [state.changedAt, state.status ?? null, state.outcome, state.terminal === true], what);
      assert.ok(last.version <= Number(state.version), what);
    }

    // The code: one instruction event with what a sender needs; no log line carries it.
    const instructions = events.filter((event) => event['detail-type'] === DETAIL_TYPES.instruction).map((event) => event.detail as Json);
    assert.equal(instructions.length, 1);
    assert.deepEqual({ ...instructions[0], eventId: 'x', receivedAt: 'x', eventKey: 'x' }, {
      eventId: 'x', receivedAt: 'x', eventKey: 'x', provider: 'identomat', subjectId: OTP_SESSION, kind: 'one-time-password', channel: 'sms',
      destination: '+995512345678', text: 'Your code is 6867', oneTimeCode: true,
    });
    // The stored callback it came from, by hashes only (the relay reads it there).
    assert.match(String(instructions[0].eventKey), /^one-time-password\|to:[0-9a-f]{16}\|[0-9a-f]{16}$/);
    assert.ok(!leaks(run.stdout, '995512345678') && !leaks(run.stdout, '6867'), `a log line carries the code or the number:\n${run.stdout}`);
    const batchLines = run.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Json).filter((line) => line.message === 'stream batch');
    assert.deepEqual(batchLines.map((line) => line.failed), streamBatches(passed).map(() => 0));
    assert.equal(batchLines.reduce((sum, line) => sum + Number(line.events), 0), events.length);
  });

  test('a batch Lambda hands over again publishes the same eventIds (subscribers dedupe on them)', async () => {
    const { passed } = await filteredStreamRecords();
    const [first] = streamBatches(passed);
    const published = (since: number) => deliveredSince(since).map((event) => event.detail.eventId as string);
    const before = eventBridge.accepted.length;
    const expected = first.Records.flatMap((record) => eventsFromChange(toTableChange(record))).map((event) => event.detail.eventId);

    const run = await invoke(publisherFunction(), [first]);

    assert.deepEqual(run.results, [{ ok: true, value: { batchItemFailures: [] } }]);
    assert.deepEqual(published(before), expected);
  });

  test('the bus refusing: the publisher bundle gives back the first record with an event and every later one; once the bus is back, they are published', async () => {
    const { passed } = await filteredStreamRecords();
    const [first] = streamBatches(passed);
    const firstWithEvent = first.Records.findIndex((record) => eventsFromChange(toTableChange(record)).length > 0);
    const publisher = publisherFunction();
    const before = eventBridge.accepted.length;

    eventBridge.fault = 'refuse';
    let refused: BundleRun;
    try {
      refused = await invoke(publisher, [first]);
    } finally {
      eventBridge.fault = undefined;
    }

    assert.deepEqual(refused.results, [{ ok: true, value: { batchItemFailures: first.Records.slice(firstWithEvent).map((record) => ({ itemIdentifier: record.dynamodb!.SequenceNumber })) } }]);
    assert.equal(eventBridge.accepted.length, before, 'nothing accepted while refusing');
    const lines = refused.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Json);
    const failedLine = lines.find((line) => line.message === 'publish failed; the stream retries from this record');
    assert.match(String(failedLine?.error), /not accepted by the bus after 3 attempts: Callback Status Changed [0-9a-f]{32} \(InternalFailure\)/);
    assert.equal(lines.find((line) => line.message === 'stream batch')?.retryFrom, first.Records[firstWithEvent].dynamodb!.SequenceNumber);
    assert.ok(!leaks(refused.stdout, '995512345678') && !leaks(refused.stdout, '6867'));

    // Lambda retries from the first record given back.
    const retried = await invoke(publisher, [{ Records: first.Records.slice(firstWithEvent) }]);
    assert.deepEqual(retried.results, [{ ok: true, value: { batchItemFailures: [] } }]);
    assert.deepEqual(
      deliveredSince(before).map((event) => event.detail.eventId),
      first.Records.flatMap((record) => eventsFromChange(toTableChange(record))).map((event) => event.detail.eventId),
    );
  });

  test('the bus refusing an event for what it holds (MalformedDetail): the publisher bundle sets it aside in the events DLQ, named, never its detail, and gives nothing back', async () => {
    const { passed } = await filteredStreamRecords();
    const [first] = streamBatches(passed);
    const expected = first.Records.flatMap((record) => eventsFromChange(toTableChange(record)).map((event) => [event.detail.eventId, record.dynamodb!.SequenceNumber]));
    const before = sqs.messageBodies(queues.eventsDlqName).length;

    eventBridge.fault = 'malformed';
    let run: BundleRun;
    try {
      run = await invoke(publisherFunction(), [first]);
    } finally {
      eventBridge.fault = undefined;
    }

    assert.deepEqual(run.results, [{ ok: true, value: { batchItemFailures: [] } }], run.stdout);
    const recorded = sqs.messageBodies(queues.eventsDlqName).slice(before).map((body) => JSON.parse(body) as Json);
    assert.deepEqual(recorded.map((body) => [body.eventId, body.sequenceNumber]), expected);
    assert.ok(recorded.every((body) => body.setAside === 'refused by the event bus' && body.errorCode === 'MalformedDetail'));
    const lines = run.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Json);
    assert.equal(lines.filter((line) => line.level === 'ERROR' && line.message === 'event refused by the bus; set aside').length, expected.length);
    for (const text of [run.stdout, ...sqs.messageBodies(queues.eventsDlqName)]) assert.ok(!leaks(text, '995512345678') && !leaks(text, '6867'), text);
  });

  test('the bus refusing whole (HTTP 400 ValidationException) every call holding one event: the publisher bundle publishes the others in order, sets only that one aside, gives nothing back', async () => {
    const { passed } = await filteredStreamRecords();
    const [first] = streamBatches(passed);
    const expected = first.Records.flatMap((record) => eventsFromChange(toTableChange(record)).map((event) => ({ eventId: event.detail.eventId, sequenceNumber: record.dynamodb!.SequenceNumber })));
    assert.ok(expected.length > 1, 'the batch has events besides the one refused');
    const [refused, ...others] = expected;
    const beforeDlq = sqs.messageBodies(queues.eventsDlqName).length;
    const before = eventBridge.accepted.length;

    eventBridge.refuseCallsHolding = (entry) => JSON.parse(entry.Detail ?? '{}').eventId === refused.eventId;
    let run: BundleRun;
    try {
      run = await invoke(publisherFunction(), [first]);
    } finally {
      eventBridge.refuseCallsHolding = undefined;
    }

    assert.deepEqual(run.results, [{ ok: true, value: { batchItemFailures: [] } }], run.stdout);
    assert.deepEqual(deliveredSince(before).map((event) => event.detail.eventId), others.map((each) => each.eventId));
    const recorded = sqs.messageBodies(queues.eventsDlqName).slice(beforeDlq).map((body) => JSON.parse(body) as Json);
    assert.deepEqual(recorded.map((body) => [body.setAside, body.errorCode, body.eventId, body.sequenceNumber]), [['refused by the event bus', 'ValidationException', refused.eventId, refused.sequenceNumber]]);
    const lines = run.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Json);
    assert.deepEqual(lines.filter((line) => line.level === 'ERROR').map((line) => [line.message, line.eventId, line.errorCode]), [['event refused by the bus; set aside', refused.eventId, 'ValidationException']]);
    assert.equal(lines.find((line) => line.message === 'stream batch')?.setAside, 1);
    for (const text of [run.stdout, ...sqs.messageBodies(queues.eventsDlqName)]) assert.ok(!leaks(text, '995512345678') && !leaks(text, '6867'), text);
  });

  test("each provider's ingest bundle holds its own provider's module and no other's, and zod's English messages", async () => {
    // The stack writes the provider's id into its ingest bundle (esbuild define): the registry then
    // folds to one provider, and esbuild leaves the other modules out (package.json sideEffects).
    for (const provider of providers) {
      const code = readFileSync(join(routeFunction(provider).assetDir, 'index.js'), 'utf8');
      for (const other of providers) {
        assert.equal(code.includes(JSON.stringify(other.docsUrl)), other === provider, `${provider.id}'s ingest bundle ${other === provider ? 'lacks its own' : `holds ${other.id}'s`} module`);
      }
    }
    // functions/shared/zod.ts is kept for its side effect: quarantined callbacks carry readable issues.
    const secret = telesign.secretSchema.parse(engines.askingSecrets.telesign) as Record<string, unknown>;
    const body = Buffer.from(JSON.stringify({ reference_id: 5, status: { code: 200, description: 'Delivered to handset', updated_on: '2026-12-02T10:00:00Z' } }));
    const request = authenticRequest(telesign, secret, { body });
    const api = await startHttpApi([{ provider: telesign, handler: async (event: unknown) => valueOf(routeFunction(telesign), await invoke(routeFunction(telesign), [event])) }], 0);
    try {
      const response = await fetch(`${api.url}${request.path}`, { method: request.method, headers: request.headers, body });
      assert.equal(response.status, 200, await response.text());
      // Earlier tests' messages may be queued too: the message is the one holding this body.
      const queued = sqs.messageBodies(queues.queueName).map((message) => JSON.parse(message) as Json).filter((message) => message.raw?.body === body.toString());
      assert.equal(queued.length, 1);
      assert.deepEqual(queued[0].quarantine?.issues, ['reference_id: Invalid input: expected string, received number']);
    } finally {
      await api.stop();
    }
  });

  test('a function whose environment lacks a variable fails with a ConfigurationError naming it', async () => {
    const worker = workerFunction();
    const run = await invoke(worker, [{ Records: [] }], { env: { TABLE_NAME: undefined } });
    assert.deepEqual(run.results, [{ ok: false, errorType: 'ConfigurationError', errorMessage: 'environment variable TABLE_NAME is not set' }]);
  });
});
