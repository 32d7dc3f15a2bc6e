import { createHmac } from 'node:crypto';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { createLogger } from '../functions/shared/log.ts';
import { RETENTION } from '../functions/core/pipeline-definition.ts';
import { createSecretCache } from '../functions/core/secrets.ts';
import { createDynamoStore } from '../functions/adapters/dynamo-store.ts';
import { createIngestHandler, type IngestHandler } from '../functions/handlers/ingest.ts';
import { createWorkerHandler } from '../functions/handlers/worker.ts';
import { providers } from '../functions/providers/index.ts';
import { SETTING_DEFAULTS } from '../lib/validate.ts';
import type { AnyProvider } from '../functions/providers/provider.ts';
import { authenticRequest, listSamples, type Sample } from '../local/samples.ts';
import { apiGatewayEvent, benchSecrets } from './callbacks.ts';
import { askedKits, inProcessStatusEndpoint, unpaced } from './status-endpoints.ts';
import { median, progress, round } from './stats.ts';
import { STUB_QUEUE_URL, stubDynamoClient, stubSqsClient } from './stub-aws.ts';

/**
 * Section 1: the ingest path per callback (API Gateway event -> authenticate -> parse -> queue
 * message -> response, the queue send a no-op) against the inherent work of the same callback
 * (JSON.parse of the body, one HMAC-SHA256 over it, one JSON.stringify). The two are timed in
 * alternating blocks (ABBA order) after a warm-up, as CPU time of this process, and the medians of
 * the blocks are compared.
 *
 * Also timed, for the cost model: the same path with the real SQS client (network replaced by a
 * canned answer), and the worker per record with the real DynamoDB client (same stub), its status
 * requests answered in-process and unpaced (`unpaced`: the model adds their latency as a wait).
 */

export interface ProviderCompute {
  readonly samples: number;
  /** Median CPU ns per callback over the blocks. */
  readonly oursNs: number;
  readonly inherentNs: number;
  /** Median of the per-block ratios ours / inherent. */
  readonly ratio: number;
  readonly ratioMin: number;
  readonly ratioMax: number;
  /** The ingest path with the real SQS client (network stubbed): CPU per callback, ns. */
  readonly withSdkNs: number;
  /** The worker per record, real DynamoDB client (network stubbed), batches of 10: CPU per record, ns. */
  readonly workerNs: number;
  /** Requests to the provider's status endpoint per record, over the samples (0 where the worker does not ask). */
  readonly statusRequestsPerRecord: number;
  /**
   * Share of the provider's samples by the requests their record makes of the status endpoint
   * (`{ "0": 0.6, "1": 0.4 }`), each sample run alone: a batch waits for its longest chain.
   */
  readonly statusRequestsShare: Record<string, number>;
  /** Bytes of our own log lines per callback, ingest and worker (from these in-process runs). */
  readonly ingestLogBytes: number;
  readonly workerLogBytes: number;
  /** Bytes of the SQS message body per callback. */
  readonly messageBytes: number;
}

export interface IngestComputeResult {
  readonly blocks: number;
  readonly iterationsPerBlock: number;
  readonly warmupIterations: number;
  readonly providers: Record<string, ProviderCompute>;
  /** Raw SDK CPU per call (network stubbed), µs. */
  readonly sdkCallUs: { sqsSendMessage: number; dynamoGetItem: number; dynamoPutItem: number };
}

let sink = 0;

/**
 * The timed handlers log at the level a deployed function does (Lambda's application log level,
 * INFO by default), so the lines it drops, such as an accepted callback's DEBUG line, are neither
 * built nor timed. The capturing handler keeps every line.
 */
const DEPLOYED_LEVEL = SETTING_DEFAULTS.applicationLogLevel;

/**
 * The inherent work's HMAC key. HMAC-SHA256 costs the same for any key up to its 64-byte block, so
 * one key serves every provider (signed or not: the reference is the same for all).
 */
const INHERENT_KEY = Buffer.from('bench-inherent-hmac-key-0123456789abcdef');

function inherentWork(provider: AnyProvider, texts: readonly string[], key: Buffer): (i: number) => void {
  // A GET provider sends a query string, not JSON: its "parse" is the query parse.
  const parse = provider.route.method === 'GET' ? (text: string) => Object.fromEntries(new URLSearchParams(text)) : (text: string) => JSON.parse(text) as unknown;
  return (i) => {
    const text = texts[i % texts.length];
    const value = parse(text);
    const mac = createHmac('sha256', key).update(text).digest();
    sink += JSON.stringify(value).length + mac[0];
  };
}

/**
 * CPU time (user + system, µs resolution) rather than wall time: on a shared machine the wall clock
 * also counts the time this process waited for a core, which says nothing about the code.
 */
function cpuNs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) * 1000;
}

async function timeAsync(n: number, op: (i: number) => Promise<unknown>): Promise<number> {
  const started = cpuNs();
  for (let i = 0; i < n; i++) await op(i);
  return (cpuNs() - started) / n;
}

function timeSync(n: number, op: (i: number) => void): number {
  const started = cpuNs();
  for (let i = 0; i < n; i++) op(i);
  return (cpuNs() - started) / n;
}

async function measureProvider(provider: AnyProvider, blocks: number, iterations: number, warmup: number): Promise<ProviderCompute> {
  const secret = benchSecrets()[provider.id];
  const secrets = createSecretCache(async () => JSON.stringify(secret));
  let ingestLogBytes = 0;
  let ingestLines = 0;
  const messages: string[] = [];
  const capture: IngestHandler = createIngestHandler(provider, {
    secrets,
    send: async (body) => void messages.push(body),
    log: createLogger({ service: `ingest-${provider.id}`, write: (line) => ((ingestLogBytes += Buffer.byteLength(line) + 1), ingestLines++) }),
  });
  const ours = createIngestHandler(provider, {
    secrets,
    send: async () => undefined,
    log: createLogger({ service: `ingest-${provider.id}`, minLevel: DEPLOYED_LEVEL, write: (line) => void (sink += line.length) }),
  });
  const sqs = stubSqsClient();
  const withSdk = createIngestHandler(provider, {
    secrets,
    send: async (body) => void (await sqs.send(new SendMessageCommand({ QueueUrl: STUB_QUEUE_URL, MessageBody: body }))),
    log: createLogger({ service: `ingest-${provider.id}`, minLevel: DEPLOYED_LEVEL, write: (line) => void (sink += line.length) }),
  });

  const samples = listSamples(provider.id);
  const events = samples.map((sample) => apiGatewayEvent(provider, authenticRequest(provider, secret, sample)));
  // Every sample must be accepted (not refused, not quarantined), or the comparison means nothing.
  for (const event of events) {
    const result = await capture(event);
    if (result.statusCode !== 200 || String(result.body).includes('quarantined')) {
      throw new Error(`${provider.id}: sample not accepted by ingest: ${result.statusCode} ${result.body}`);
    }
  }
  const texts = events.map((event) => event.body ?? event.rawQueryString);
  const inherent = inherentWork(provider, texts, INHERENT_KEY);
  const oursOp = (i: number) => ours(events[i % events.length]);
  const sdkOp = (i: number) => withSdk(events[i % events.length]);

  await timeAsync(warmup, oursOp);
  await timeAsync(warmup, sdkOp);
  timeSync(warmup, inherent);

  const oursNs: number[] = [];
  const inherentNs: number[] = [];
  const sdkNs: number[] = [];
  const ratios: number[] = [];
  for (let block = 0; block < blocks; block++) {
    let a: number;
    let b: number;
    if (block % 2 === 0) {
      a = await timeAsync(iterations, oursOp);
      b = timeSync(iterations, inherent);
    } else {
      b = timeSync(iterations, inherent);
      a = await timeAsync(iterations, oursOp);
    }
    oursNs.push(a);
    inherentNs.push(b);
    ratios.push(a / b);
    sdkNs.push(await timeAsync(Math.max(50, Math.floor(iterations / 10)), sdkOp));
  }

  const worker = await measureWorker(provider, secret, samples, messages, blocks, warmup);
  return {
    samples: samples.length,
    oursNs: round(median(oursNs), 0),
    inherentNs: round(median(inherentNs), 0),
    ratio: round(median(ratios), 2),
    ratioMin: round(Math.min(...ratios), 2),
    ratioMax: round(Math.max(...ratios), 2),
    withSdkNs: round(median(sdkNs), 0),
    workerNs: worker.ns,
    statusRequestsPerRecord: worker.statusRequestsPerRecord,
    statusRequestsShare: worker.statusRequestsShare,
    ingestLogBytes: round(ingestLogBytes / ingestLines, 0),
    workerLogBytes: worker.logBytes,
    messageBytes: round(messages.reduce((sum, body) => sum + Buffer.byteLength(body), 0) / messages.length, 0),
  };
}

/** The worker per record: real handler, real store code and DynamoDB client, network stubbed. */
async function measureWorker(provider: AnyProvider, secret: Record<string, unknown>, samples: readonly Sample[], messages: readonly string[], blocks: number, warmup: number) {
  let logBytes = 0;
  let lines = 0;
  const counting = { on: false };
  // A provider whose status endpoint the worker asks: the kit's in-process stand-in answers every
  // subject as its callback claims (every callback confirmed). Others never call fetch.
  const asked = askedKits().find((kit) => kit.provider.id === provider.id);
  let statusRequests = 0;
  const endpoint: typeof fetch = asked
    ? // The provider's refusals played, so each record makes the requests it would make of the provider.
      inProcessStatusEndpoint(asked, secret, samples, { refusals: true })
    : async () => {
        throw new Error(`${provider.id}: the worker asked a status endpoint it does not have`);
      };
  const confirmFetch = ((...args: Parameters<typeof fetch>) => (statusRequests++, endpoint(...args))) as typeof fetch;
  const handler = createWorkerHandler({
    deps: {
      store: createDynamoStore(stubDynamoClient(), 'callback-gateway'),
      secrets: createSecretCache(async () => JSON.stringify(secret)),
      lookup: { fetch: confirmFetch, timeoutMs: 5000, newRequestId: () => crypto.randomUUID() },
      now: () => new Date(),
      log: createLogger({
        service: 'worker',
        minLevel: DEPLOYED_LEVEL,
        write: (line) => {
          if (!counting.on) return;
          logBytes += Buffer.byteLength(line) + 1;
          lines++;
        },
      }),
      retention: RETENTION,
    },
  });
  const batch = (offset: number): SQSEvent => ({
    Records: Array.from({ length: 10 }, (_, i) => ({
      messageId: `m${offset + i}`,
      receiptHandle: 'r',
      body: messages[(offset + i) % messages.length],
      attributes: { ApproximateReceiveCount: '1', SentTimestamp: '0', SenderId: 'bench', ApproximateFirstReceiveTimestamp: '0' },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:callbacks',
      awsRegion: 'us-east-1',
    })),
  });
  const events = Array.from({ length: 8 }, (_, i) => batch(i * 10));
  const op = async (i: number) => {
    const result = await handler(events[i % events.length]);
    if (result.batchItemFailures.length > 0) throw new Error(`${provider.id}: worker failed records in the stubbed run`);
  };
  const single = (message: string): SQSEvent => ({ Records: [{ ...batch(0).Records[0], body: message }] });
  return unpaced(provider, async () => {
    counting.on = true;
    await op(0);
    counting.on = false;
    const byRequests = new Map<number, number>();
    for (const message of messages) {
      const before = statusRequests;
      await handler(single(message));
      byRequests.set(statusRequests - before, (byRequests.get(statusRequests - before) ?? 0) + 1);
    }
    const statusRequestsShare = Object.fromEntries([...byRequests].sort((x, y) => x[0] - y[0]).map(([n, count]) => [String(n), round(count / messages.length, 3)]));
    await timeAsync(Math.ceil(warmup / 10), op);
    const perRecord: number[] = [];
    statusRequests = 0;
    for (let block = 0; block < blocks; block++) perRecord.push((await timeAsync(20, op)) / 10);
    return {
      ns: round(median(perRecord), 0),
      logBytes: round(logBytes / Math.max(1, lines), 0),
      statusRequestsPerRecord: round(statusRequests / (blocks * 20 * 10), 2),
      statusRequestsShare,
    };
  });
}

async function sdkCallUs(): Promise<IngestComputeResult['sdkCallUs']> {
  const { GetItemCommand, PutItemCommand } = await import('@aws-sdk/client-dynamodb');
  const sqs = stubSqsClient();
  const dynamo = stubDynamoClient();
  const body = 'x'.repeat(1200);
  const item = { pk: { S: 'provider#abc' }, sk: { S: 'EVENT#200|2024' }, payload: { S: body } };
  const ops = {
    sqsSendMessage: () => sqs.send(new SendMessageCommand({ QueueUrl: STUB_QUEUE_URL, MessageBody: body })),
    dynamoGetItem: () => dynamo.send(new GetItemCommand({ TableName: 't', Key: { pk: item.pk, sk: item.sk }, ConsistentRead: true })),
    dynamoPutItem: () => dynamo.send(new PutItemCommand({ TableName: 't', Item: item, ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': 'pk' } })),
  };
  const result: Record<string, number> = {};
  for (const [name, op] of Object.entries(ops)) {
    await timeAsync(1000, op);
    const blocks: number[] = [];
    for (let i = 0; i < 7; i++) blocks.push(await timeAsync(300, op));
    result[name] = round(median(blocks) / 1000, 1);
  }
  return result as IngestComputeResult['sdkCallUs'];
}

export async function measureIngestCompute(options: { blocks: number; iterations: number; warmup: number }): Promise<IngestComputeResult> {
  const results: Record<string, ProviderCompute> = {};
  for (const provider of providers) {
    progress(`ingest compute: ${provider.id}`);
    results[provider.id] = await measureProvider(provider, options.blocks, options.iterations, options.warmup);
  }
  progress('ingest compute: SDK call CPU (network stubbed)');
  const sdk = await sdkCallUs();
  if (sink === 0.5) console.log(sink); // keeps the work observable
  return { blocks: options.blocks, iterationsPerBlock: options.iterations, warmupIterations: options.warmup, providers: results, sdkCallUs: sdk };
}
