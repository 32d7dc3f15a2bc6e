import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ChangeMessageVisibilityCommand, GetQueueAttributesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { createLogger, type LogLevel } from '../functions/shared/log.ts';
import { QUEUE, RETENTION } from '../functions/core/pipeline-definition.ts';
import { createSecretCache } from '../functions/core/secrets.ts';
import { createDynamoStore } from '../functions/adapters/dynamo-store.ts';
import { createIngestHandler } from '../functions/handlers/ingest.ts';
import { createWorkerHandler } from '../functions/handlers/worker.ts';
import { providers } from '../functions/providers/index.ts';
import { temboplus } from '../functions/providers/temboplus.ts';
import { ensureQueues, ensureTable, LOCAL_AWS, startDynamoDbLocal, startSqsServer, type DynamoDbLocal, type SqsServer } from './engines.ts';
import { startHttpApi } from './http-api.ts';
import { fileSecretSource, loadSecretsFile, providerSecret } from './secrets-file.ts';
import { startPoller, type Poller } from './sqs-poller.ts';
import { startTemboPlusSimulator } from './temboplus-simulator.ts';

/** What `npm start` runs: the whole pipeline on this machine, with real engines and the real handlers. */
export interface PipelineOptions {
  /** HTTP port for the callback routes on 127.0.0.1 (0 = any free port). */
  readonly port: number;
  /** Folder for persisted data (DynamoDB files, queue snapshot, runtime.json). */
  readonly dataDir: string;
  /** Start from an empty table and empty queues. */
  readonly fresh: boolean;
  readonly secretsFile: string;
  readonly tableName?: string;
  readonly maxReceiveCount?: number;
  /** First retry delay; the local default is short so failures visibly retry within seconds. */
  readonly retryBaseSeconds?: number;
  readonly visibilityTimeoutSeconds?: number;
  readonly confirmTimeoutMs?: number;
  /**
   * A DynamoDB endpoint started elsewhere (its table is created there if missing) instead of
   * starting DynamoDB Local, e.g. one a fault-injection test pauses or puts behind a proxy.
   */
  readonly dynamodbEndpoint?: string;
  /**
   * An SQS-API endpoint started elsewhere instead of the in-process one. The queues then outlive
   * this process (the point: a killed worker must not take queued callbacks with it), so no
   * snapshot is written or restored.
   */
  readonly sqsEndpoint?: string;
  /** Start the simulated TemboPlus status endpoint when the secrets point TemboPlus here. @default true */
  readonly temboplusSimulator?: boolean;
  /** Receives each log line (already JSON); defaults to stdout. */
  readonly write?: (line: string, level: LogLevel) => void;
}

/** Written to `<dataDir>/runtime.json` so `send` and `inspect` find the running pipeline. */
export interface RuntimeInfo {
  readonly pid: number;
  readonly baseUrl: string;
  readonly dynamodbEndpoint: string;
  readonly sqsEndpoint: string;
  readonly tableName: string;
  readonly queueUrl: string;
  readonly dlqUrl: string;
  readonly secretsFile: string;
  /** Set when TemboPlus's status endpoint is the local simulation. */
  readonly temboplusSimulatorUrl?: string;
  readonly region: string;
  readonly urls: Record<string, string>;
}

export interface RunningPipeline {
  readonly info: RuntimeInfo;
  stop(): Promise<void>;
}

const QUEUE_NAMES = { queue: 'callbacks', dlq: 'callbacks-dlq' } as const;
const SNAPSHOT_FILE = 'queue-snapshot.json';

export function runtimeInfoPath(dataDir: string): string {
  return join(dataDir, 'runtime.json');
}

/** The running pipeline's details, if one is running with this data folder. */
export function readRuntimeInfo(dataDir: string): RuntimeInfo | undefined {
  try {
    return JSON.parse(readFileSync(runtimeInfoPath(dataDir), 'utf8')) as RuntimeInfo;
  } catch {
    return undefined;
  }
}

function isLoopback(url: string): boolean {
  const host = new URL(url).hostname;
  return host === '127.0.0.1' || host === 'localhost' || host === '[::1]';
}

/**
 * Start DynamoDB Local, the SQS-API server, the TemboPlus simulation (when the secrets point
 * TemboPlus at this machine), the HTTP API and the queue poller. On any failure everything already
 * started is stopped again.
 */
export async function startPipeline(options: PipelineOptions): Promise<RunningPipeline> {
  const secretsFile = loadSecretsFile(options.secretsFile); // fail fast, naming the problem
  const tableName = options.tableName ?? 'callback-gateway';
  const dataDir = options.dataDir;
  const stops: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    stops.length = 0;
  };

  try {
    const existing = readRuntimeInfo(dataDir);
    if (existing && isAlive(existing.pid) && existing.pid !== process.pid) {
      throw new Error(`a local pipeline (pid ${existing.pid}) already uses ${dataDir}; stop it first`);
    }
    if (options.port !== 0) await assertPortFree(options.port);
    if (options.fresh) rmSync(dataDir, { recursive: true, force: true });
    mkdirSync(dataDir, { recursive: true });

    const [dynamo, sqsServer] = await Promise.all([
      options.dynamodbEndpoint ? undefined : startDynamoDbLocal({ dbPath: join(dataDir, 'dynamodb') }),
      options.sqsEndpoint ? undefined : startSqsServer(),
    ]);
    if (dynamo) stops.push(() => dynamo.stop());
    if (sqsServer) stops.push(() => sqsServer.stop());
    const dynamodbEndpoint = options.dynamodbEndpoint ?? dynamo!.endpoint;
    const sqsEndpoint = options.sqsEndpoint ?? sqsServer!.endpoint;

    const dynamoClient = new DynamoDBClient({ ...LOCAL_AWS, endpoint: dynamodbEndpoint });
    // Same bounds as the Lambda ingest client: an unreachable queue is a 503, not a hang
    // (throwOnRequestTimeout: without it the SDK only warns when requestTimeout passes).
    const sqs = new SQSClient({
      ...LOCAL_AWS,
      endpoint: sqsEndpoint,
      maxAttempts: 3,
      requestHandler: { connectionTimeout: 1000, requestTimeout: 2500, throwOnRequestTimeout: true },
    });
    stops.push(async () => {
      dynamoClient.destroy();
      sqs.destroy();
    });
    await ensureTable(dynamoClient, tableName);
    const { queueUrl, dlqUrl } = await ensureQueues(sqs, QUEUE_NAMES, {
      maxReceiveCount: options.maxReceiveCount,
      visibilityTimeoutSeconds: options.visibilityTimeoutSeconds,
    });
    const restored = sqsServer ? await restoreQueues(sqs, dataDir, { queueUrl, dlqUrl }) : 0;
    const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));

    // TemboPlus offline: a simulated status endpoint when the secrets point TemboPlus here.
    const tembo = providerSecret(secretsFile, temboplus) as { baseUrl: string; apiToken: string };
    let simulatorUrl: string | undefined;
    if (options.temboplusSimulator !== false && isLoopback(tembo.baseUrl)) {
      const simulator = await startTemboPlusSimulator({ apiToken: tembo.apiToken, port: Number(new URL(tembo.baseUrl).port) || 0 });
      stops.push(() => simulator.stop());
      simulatorUrl = simulator.baseUrl;
    }

    const secrets = createSecretCache(fileSecretSource(options.secretsFile), { ttlMs: 5_000 });
    const write = options.write;
    const routes = providers.map((provider) => ({
      provider,
      handler: createIngestHandler(provider, {
        secrets,
        send: async (messageBody) => {
          await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: messageBody }));
        },
        log: createLogger({ service: `ingest-${provider.id}`, write }),
      }),
    }));

    const worker = createWorkerHandler({
      deps: {
        store: createDynamoStore(dynamoClient, tableName),
        secrets,
        lookup: { fetch, timeoutMs: options.confirmTimeoutMs ?? 5000, newRequestId: randomUUID },
        now: () => new Date(),
        log: createLogger({ service: 'worker', write }),
        retention: RETENTION,
      },
      retryBaseSeconds: options.retryBaseSeconds ?? 1,
      delayRetry: async (record, seconds) => {
        await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: record.receiptHandle, VisibilityTimeout: seconds }));
      },
    });
    const workerLog = createLogger({ service: 'worker', write });
    const poller: Poller = startPoller({
      sqs,
      queueUrl,
      queueArn: Attributes!.QueueArn!,
      handler: worker,
      batchSize: QUEUE.batchSize,
      onError: (error) => workerLog.warn('poller error', { error: (error as Error).message }),
    });
    // Stop order (reverse of push): HTTP first, then the poller finishes its batches, then snapshot.
    if (sqsServer) stops.push(() => snapshotQueues(sqsServer, dataDir));
    stops.push(() => poller.stop());

    const http = await startHttpApi(routes, options.port);
    stops.push(() => http.stop());

    const info: RuntimeInfo = {
      pid: process.pid,
      baseUrl: http.url,
      dynamodbEndpoint,
      sqsEndpoint,
      tableName,
      queueUrl,
      dlqUrl,
      secretsFile: options.secretsFile,
      ...(simulatorUrl ? { temboplusSimulatorUrl: simulatorUrl } : {}),
      region: LOCAL_AWS.region,
      urls: Object.fromEntries(
        providers.map((provider) => {
          const secret = providerSecret(secretsFile, provider);
          return [provider.id, `${http.url}${provider.route.path.replace('{token}', encodeURIComponent(String(secret.token ?? '')))}`];
        }),
      ),
    };
    writeFileSync(runtimeInfoPath(dataDir), `${JSON.stringify(info, null, 2)}\n`);
    stops.unshift(async () => rmSync(runtimeInfoPath(dataDir), { force: true }));
    if (restored > 0) workerLog.info('restored queued messages from the last run', { count: restored });

    return { info, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** Fail before starting anything when the HTTP port is taken, naming the way out. */
async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', () => reject(new Error(`port ${port} on 127.0.0.1 is in use (another npm start?); choose one with --port N or PORT=N`)));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });
}

/** Whether a process with this pid is running (signal 0 checks without signalling). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The SQS-API server keeps messages in memory; at shutdown whatever is still queued (including the
 * DLQ) is written to disk and re-sent at the next start, so a restart loses nothing.
 */
async function snapshotQueues(server: SqsServer, dataDir: string): Promise<void> {
  const snapshot = { queue: server.messageBodies(QUEUE_NAMES.queue), dlq: server.messageBodies(QUEUE_NAMES.dlq) };
  const path = join(dataDir, SNAPSHOT_FILE);
  if (snapshot.queue.length + snapshot.dlq.length === 0) rmSync(path, { force: true });
  else writeFileSync(path, JSON.stringify(snapshot));
}

async function restoreQueues(sqs: SQSClient, dataDir: string, urls: { queueUrl: string; dlqUrl: string }): Promise<number> {
  const path = join(dataDir, SNAPSHOT_FILE);
  if (!existsSync(path)) return 0;
  const snapshot = JSON.parse(readFileSync(path, 'utf8')) as { queue: string[]; dlq: string[] };
  for (const body of snapshot.queue) await sqs.send(new SendMessageCommand({ QueueUrl: urls.queueUrl, MessageBody: body }));
  for (const body of snapshot.dlq) await sqs.send(new SendMessageCommand({ QueueUrl: urls.dlqUrl, MessageBody: body }));
  rmSync(path, { force: true });
  return snapshot.queue.length + snapshot.dlq.length;
}

export type { DynamoDbLocal };
