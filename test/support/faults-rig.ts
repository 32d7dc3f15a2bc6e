import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient, QueryCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { keys } from '../../functions/core/pipeline-definition.ts';
import { LOCAL_AWS, startDynamoDbLocal, startSqsServer, waitFor, type DynamoDbLocal, type SqsServer } from '../../local/engines.ts';
import { isAlive, readRuntimeInfo, type RuntimeInfo } from '../../local/pipeline.ts';
import { startStatusSimulator, type StatusSimulator } from '../../local/status-simulator.ts';
import { allKits } from '../providers/index.ts';
import { ROOT } from './e2e-pipeline.ts';
import { startTcpProxy, type TcpProxy } from './faults-proxy.ts';
import type { Answer, Secrets } from './faults-traffic.ts';
import { portHeldBy, processGroupOf } from './listeners.ts';

/**
 * The fault suite's test bench. The engines live in the test process (DynamoDB Local and the
 * SQS-API server, each reachable by the pipeline only through a TCP proxy the test controls, and a
 * simulated status endpoint for each provider the worker asks, its kit's `statusSimulation`); the
 * pipeline itself is `npm start` in a child process given those endpoints, so it can be killed and
 * restarted while the queue and the table carry on.
 */

/** The tag in the suite's secret values (see `ProviderKit.secret`). */
const SECRET_TAG = 'faults';

/** One structured log line of the pipeline (the same lines as in Lambda). */
export type LogLine = { level: string; timestamp: string; service: string; message: string } & Record<string, unknown>;

export interface PipelineProcess {
  readonly info: RuntimeInfo;
  readonly child: ChildProcess;
  /** Every line printed so far (banner and JSON log lines). */
  readonly output: string[];
  /** The JSON log lines printed so far. */
  logs(): LogLine[];
  /** SIGKILL the whole process group at once: no shutdown code runs. */
  kill(): Promise<void>;
  /** Ctrl-C (SIGINT to the process group), as a user stops it; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface StoredSubject {
  readonly provider: string;
  readonly subjectId: string;
  state?: Record<string, unknown>;
  readonly events: Record<string, unknown>[];
}

export interface FaultRig {
  readonly dir: string;
  readonly dynamo: DynamoDbLocal;
  readonly sqsServer: SqsServer;
  /** The simulated status endpoints, by provider id: one for each provider the worker asks. */
  readonly simulators: ReadonlyMap<string, StatusSimulator>;
  /** The pipeline's only way to DynamoDB and to SQS. */
  readonly dynamoProxy: TcpProxy;
  readonly sqsProxy: TcpProxy;
  /** The pipeline's secrets file, by provider id (each kit's secret, status endpoints on the simulators). */
  readonly secrets: Secrets;
  /** Direct clients (no proxy) for the test's own reads. */
  readonly ddb: DynamoDBClient;
  readonly sqs: SQSClient;
  /** The pipeline currently running, if any. */
  readonly pipeline: PipelineProcess | undefined;
  /** Start `npm start` on these engines with extra flags; stops a running one first. */
  startPipeline(args?: readonly string[]): Promise<PipelineProcess>;
  /** Tell each provider's simulated status endpoint what it answers from now on. */
  teach(answers: readonly Answer[]): void;
  /** SIGSTOP / SIGCONT DynamoDB Local's Java process (the engine freezes; its port stays open). */
  pauseTable(): void;
  resumeTable(): void;
  /** Every subject in the table with its state and event items (quarantine items left out). */
  readSubjects(): Promise<Map<string, StoredSubject>>;
  /** One subject's state and event items. */
  readSubject(provider: string, subjectId: string): Promise<StoredSubject>;
  /** Messages in the main queue (visible, in flight, delayed) and in the DLQ. */
  queueDepth(): Promise<{ visible: number; inFlight: number; delayed: number; dlq: number }>;
  /** Stop everything this rig started; returns what is still alive or bound (must be nothing). */
  stop(): Promise<string[]>;
}

const TABLE_NAME = 'callback-gateway';

/** Java's pid under DynamoDB Local's watchdog shell (see startDynamoDbLocal). */
function javaPidOf(dynamo: DynamoDbLocal): number {
  const result = spawnSync('pgrep', ['-P', String(dynamo.process.pid), '-x', 'java'], { encoding: 'utf8' });
  const pid = Number(result.stdout.trim().split('\n')[0]);
  if (!pid) throw new Error(`no java process under DynamoDB Local's watchdog (pid ${dynamo.process.pid})`);
  return pid;
}


/**
 * Whether a port we let go is still held by one of ours: this process, a pid we started, or a
 * process of a pipeline's group. Not "is it free": another process on the machine may have taken
 * it since (see test/support/listeners.ts).
 */
function stillOurs(port: number, pids: readonly number[], groups: readonly number[]): Promise<boolean> {
  return portHeldBy(port, (pid) => pid === process.pid || pids.includes(pid) || groups.includes(processGroupOf(pid) ?? -1));
}

function parseLogLines(output: readonly string[]): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of output) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      // a line cut by a kill
    }
  }
  return lines;
}

async function spawnPipeline(
  rig: { dir: string; secretsFile: string; dynamoProxy: TcpProxy; sqsProxy: TcpProxy },
  args: readonly string[],
): Promise<PipelineProcess> {
  const dataDir = join(rig.dir, 'data');
  // Port 0: the pipeline binds a free port itself (see test/support/e2e-pipeline.ts).
  const child = spawn(
    'npm',
    [
      'start', '--silent', '--',
      '--port', '0',
      '--data-dir', dataDir,
      '--secrets', rig.secretsFile,
      '--log-format', 'json',
      '--dynamodb-endpoint', rig.dynamoProxy.endpoint,
      '--sqs-endpoint', rig.sqsProxy.endpoint,
      ...args,
    ],
    // Its own process group, so a kill takes npm, tsx and node together, as a crash would.
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, NODE_NO_WARNINGS: '1' } },
  );
  const output: string[] = [];
  let partial = '';
  const collect = (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    output.push(...lines.filter(Boolean));
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  let exit: { code: number | null } | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      exit = { code };
      resolve(code);
    }),
  );
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // already gone
    }
  };

  const exitedEarly = exited.then((code) => {
    throw new Error(`npm start exited with ${code}:\n${output.join('\n')}`);
  });
  exitedEarly.catch(() => undefined); // a normal exit later is no error
  try {
    await Promise.race([
      waitFor(
        'the pipeline banner',
        async () => output.some((line) => line.includes('Callback gateway running locally')) && readRuntimeInfo(dataDir)?.pid !== undefined,
        60_000,
        50,
      ),
      exitedEarly,
    ]);
  } catch (error) {
    signalGroup('SIGKILL');
    throw error;
  }
  const info = readRuntimeInfo(dataDir)!;
  /** Until no process of the group is left (a killed one lingers until its zombie is reaped). */
  const groupGone = () =>
    waitFor('the pipeline process group to be gone', async () => {
      try {
        process.kill(-child.pid!, 0);
        return false;
      } catch {
        return true;
      }
    }, 10_000, 20);

  return {
    info,
    child,
    output,
    logs: () => parseLogLines(output),
    async kill() {
      if (!exit) signalGroup('SIGKILL');
      await exited;
      await groupGone();
    },
    async stop() {
      if (!exit) {
        signalGroup('SIGINT');
        const timer = setTimeout(() => signalGroup('SIGKILL'), 20_000);
        await exited;
        clearTimeout(timer);
      }
      await groupGone();
      return exit?.code ?? null;
    },
  };
}

/** Start the engines, the proxies and the simulated status endpoints; no pipeline yet. */
export async function startFaultRig(): Promise<FaultRig> {
  const dir = mkdtempSync(join(tmpdir(), 'callback-gateway-faults-'));
  const cleanups: (() => Promise<unknown>)[] = [];
  const ports: number[] = [];
  const pids: number[] = [];
  let pipeline: PipelineProcess | undefined;
  const pipelines: PipelineProcess[] = [];
  let paused = false;

  const stop = async (): Promise<string[]> => {
    await pipeline?.kill();
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    cleanups.length = 0;
    rmSync(dir, { recursive: true, force: true });
    const left: string[] = [];
    // Each pipeline runs in a process group of its own, led by npm (spawned detached).
    const groups = pipelines.map(({ child }) => child.pid!);
    for (const { child, info } of pipelines) {
      if (isAlive(child.pid!) || isAlive(info.pid)) left.push(`pipeline pid ${child.pid}/${info.pid}`);
      const port = Number(new URL(info.baseUrl).port);
      if (await stillOurs(port, pids, groups)) left.push(`pipeline HTTP port ${port}`);
    }
    for (const pid of pids) if (isAlive(pid)) left.push(`pid ${pid}`);
    for (const port of ports) if (await stillOurs(port, pids, groups)) left.push(`port ${port}`);
    return left;
  };

  try {
    const kits = allKits();
    const asked = kits.filter((kit) => kit.provider.lookup !== undefined);
    const unsimulated = asked.filter((kit) => kit.statusSimulation === undefined);
    if (unsimulated.length > 0) {
      throw new Error(`the worker asks the status endpoint of ${unsimulated.map((kit) => kit.provider.id).join(', ')}: its kit needs a statusSimulation`);
    }
    // Each engine is registered for cleanup the moment it runs, so a failure of another one
    // cannot leave it behind (a Java process above all). The pipeline, given a secrets file, starts
    // no simulator of its own: the suite's are the ones its secrets point at.
    const started = await Promise.allSettled([
      startDynamoDbLocal().then((engine) => {
        cleanups.push(async () => {
          if (paused) process.kill(javaPid, 'SIGCONT');
          await engine.stop();
        });
        return engine;
      }),
      startSqsServer().then((engine) => (cleanups.push(() => engine.stop()), engine)),
      ...asked.map((kit) =>
        startStatusSimulator(kit.statusSimulation!(kit.secret(SECRET_TAG))).then((simulator) => (cleanups.push(() => simulator.stop()), simulator)),
      ),
    ]);
    const failed = started.find((outcome) => outcome.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const [dynamo, sqsServer, ...simulatorList] = started.map((outcome) => (outcome as PromiseFulfilledResult<unknown>).value) as [
      DynamoDbLocal,
      SqsServer,
      ...StatusSimulator[],
    ];
    const simulators = new Map(asked.map((kit, index) => [kit.provider.id, simulatorList[index]]));
    const javaPid = javaPidOf(dynamo);
    pids.push(dynamo.process.pid!, javaPid);
    const [dynamoProxy, sqsProxy] = await Promise.all([startTcpProxy(dynamo.port), startTcpProxy(sqsServer.port)]);
    cleanups.push(() => dynamoProxy.close(), () => sqsProxy.close());
    ports.push(dynamo.port, sqsServer.port, ...simulatorList.map((simulator) => simulator.port), dynamoProxy.port, sqsProxy.port);

    const secrets: Secrets = Object.fromEntries(
      kits.map((kit) => {
        const simulator = simulators.get(kit.provider.id);
        return [kit.provider.id, kit.secret(SECRET_TAG, simulator ? { statusEndpoint: simulator.baseUrl, asks: true } : {})];
      }),
    );
    const secretsFile = join(dir, 'secrets.json');
    writeFileSync(secretsFile, JSON.stringify(secrets));
    const ddb = new DynamoDBClient({ ...LOCAL_AWS, endpoint: dynamo.endpoint });
    const sqs = new SQSClient({ ...LOCAL_AWS, endpoint: sqsServer.endpoint });
    cleanups.push(async () => {
      ddb.destroy();
      sqs.destroy();
    });

    const queueAttribute = async (queueUrl: string) => {
      const { Attributes = {} } = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: queueUrl,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
        }),
      );
      return {
        visible: Number(Attributes.ApproximateNumberOfMessages ?? 0),
        inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0),
        delayed: Number(Attributes.ApproximateNumberOfMessagesDelayed ?? 0),
      };
    };

    return {
      dir,
      dynamo,
      sqsServer,
      simulators,
      dynamoProxy,
      sqsProxy,
      secrets,
      ddb,
      sqs,
      get pipeline() {
        return pipeline;
      },
      async startPipeline(args = []) {
        await pipeline?.stop();
        pipeline = await spawnPipeline({ dir, secretsFile, dynamoProxy, sqsProxy }, args);
        pipelines.push(pipeline);
        return pipeline;
      },
      teach(answers) {
        for (const { provider, answer } of answers) {
          const simulator = simulators.get(provider);
          if (!simulator) throw new Error(`no simulated status endpoint for ${provider}`);
          simulator.report(answer);
        }
      },
      pauseTable() {
        process.kill(javaPid, 'SIGSTOP');
        paused = true;
      },
      resumeTable() {
        process.kill(javaPid, 'SIGCONT');
        paused = false;
      },
      async readSubjects() {
        const subjects = new Map<string, StoredSubject>();
        let start: Record<string, unknown> | undefined;
        do {
          const page = await ddb.send(
            new ScanCommand({ TableName: TABLE_NAME, ConsistentRead: true, ...(start ? { ExclusiveStartKey: start as never } : {}) }),
          );
          for (const raw of page.Items ?? []) {
            const item = unmarshall(raw);
            const sk = String(item.sk);
            // Callbacks only: the provider's status answers are observations of their own.
            if ((!sk.startsWith('EVENT#') || item.source === 'status-endpoint') && sk !== 'STATE') continue;
            const key = `${item.provider}|${item.subjectId}`;
            const subject = subjects.get(key) ?? { provider: String(item.provider), subjectId: String(item.subjectId), events: [] };
            if (sk === 'STATE') subject.state = item;
            else subject.events.push(item);
            subjects.set(key, subject);
          }
          start = page.LastEvaluatedKey;
        } while (start);
        return subjects;
      },
      async readSubject(provider, subjectId) {
        const { Items = [] } = await ddb.send(
          new QueryCommand({
            TableName: TABLE_NAME,
            ConsistentRead: true,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': { S: keys.subject(provider, subjectId) } },
          }),
        );
        const items = Items.map((raw) => unmarshall(raw));
        return {
          provider,
          subjectId,
          state: items.find((item) => item.sk === 'STATE'),
          events: items.filter((item) => String(item.sk).startsWith('EVENT#') && item.source !== 'status-endpoint'),
        };
      },
      async queueDepth() {
        if (!pipeline) throw new Error('no pipeline: the queues are created by its first start');
        const main = await queueAttribute(pipeline.info.queueUrl);
        const dlq = await queueAttribute(pipeline.info.dlqUrl);
        return { ...main, dlq: dlq.visible + dlq.inFlight + dlq.delayed };
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Wait until the main queue is empty (nothing visible, in flight or delayed). */
export async function waitForDrain(rig: FaultRig, timeoutMs: number): Promise<void> {
  let last: unknown;
  try {
    await waitFor(
      'the queue to drain',
      async () => {
        const depth = await rig.queueDepth();
        last = depth;
        return depth.visible + depth.inFlight + depth.delayed === 0;
      },
      timeoutMs,
      200,
    );
  } catch (error) {
    const tail = rig.pipeline?.output.slice(-5).join('\n') ?? '';
    throw new Error(`${(error as Error).message}; last depth ${JSON.stringify(last)}; pipeline's last lines:\n${tail}`, { cause: error });
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A positive number from the environment (the full run's sizes), else the CI-sized default. */
export function envNumber(name: string, fallback: number): number {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) throw new Error(`${name} must be a positive number, got "${value}"`);
  return number;
}
