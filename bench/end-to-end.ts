import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { createLogger } from '../functions/shared/log.ts';
import { createSecretCache } from '../functions/core/secrets.ts';
import { createIngestHandler } from '../functions/handlers/ingest.ts';
import { providers } from '../functions/providers/index.ts';
import type { AnyProvider } from '../functions/providers/provider.ts';
import { ensureTable, LOCAL_AWS, waitFor } from '../local/engines.ts';
import { readRuntimeInfo, type RuntimeInfo } from '../local/pipeline.ts';
import { loadSecretsFile } from '../local/secrets-file.ts';
import type { ProviderKit } from '../test/providers/index.ts';
import { apiGatewayEvent, benchSecrets, distinctCallback, lifeCallbacks, RUN_ID, type BenchCallback, type BenchSecrets } from './callbacks.ts';
import { measureEngineRate, recordWorkerWrites, type EngineRate, type ProviderWrites } from './dynamo.ts';
import { runLoad, type LoadResult } from './load.ts';
import { askedKits, delayAnswers, reportAnswers } from './status-endpoints.ts';
import { percentile, progress, round, sleep } from './stats.ts';

/**
 * What a deployed handler adds to each of its lines and `npm start`'s do not carry
 * (functions/handlers/invocation-log.ts): `,"function_request_id":"<uuid>","cold_start":false`.
 */
const INVOCATION_FIELD_BYTES = Buffer.byteLength(JSON.stringify({ function_request_id: randomUUID(), cold_start: false })) - 1;

/**
 * Sections 3 and 4, and the measured inputs of section 5, against one local pipeline: `npm start`'s
 * code (local/start.ts) run as a child process with a temporary data folder, the benchmark secrets
 * and `--simulators`: providers whose status endpoint the worker asks are pointed at the simulated
 * endpoints it starts on loopback ports.
 */

const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const DATA_PARENT = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

export interface LoadSummary {
  readonly callbacks: number;
  readonly concurrency: number;
  readonly acknowledged: number;
  readonly failed: number;
  readonly failures: string[];
  readonly ackPerSecond: number;
  readonly ackP50Ms: number;
  readonly ackP99Ms: number;
  readonly ackMaxMs: number;
}

export interface EndToEndResult extends LoadSummary {
  /** From the first send until the worker logged the last callback as stored, s. */
  readonly allStoredSeconds: number;
  readonly storedPerSecond: number;
  /** Distinct event items found in the table at the end. */
  readonly storedInTable: number;
  readonly lost: number;
  readonly duplicatesLogged: number;
  readonly engineBefore: EngineRate;
  readonly engineAfter: EngineRate;
  /** Mean of the two engine runs: callbacks/s the engine alone allows. */
  readonly engineCallbacksPerSecond: number;
  /** storedPerSecond / engineCallbacksPerSecond. */
  readonly shareOfEngine: number;
  /** Bytes of our log lines per callback in this run (ingest + worker lines). */
  readonly logBytesPerCallback: { ingest: number; worker: number };
}

export interface AlternativeResult {
  /** The provider whose callbacks both receivers took (one whose status endpoint the worker asks). */
  readonly provider: string;
  readonly delayMs: number;
  readonly ratePerSecond: number;
  readonly rounds: number;
  readonly ours: LoadSummary & { readonly lost: number };
  readonly synchronous: LoadSummary;
  /** A receiver that does no work (bench/floor-receiver.ts), given the synchronous receiver's callbacks: the machine's own latency. */
  readonly floor: LoadSummary;
  /** synchronous p99 / ours p99. */
  readonly p99Ratio: number;
}

export interface PipelineBenchResult {
  readonly endToEnd: EndToEndResult;
  /** Absent when no provider's status endpoint is asked (nothing to compare). */
  readonly alternative?: AlternativeResult;
  readonly writes: Record<string, ProviderWrites>;
}

function summarize(results: readonly LoadResult[], concurrency: number): LoadSummary {
  const latencies = results.flatMap((result) => result.latenciesMs);
  const acknowledged = results.reduce((sum, result) => sum + result.acknowledged, 0);
  const seconds = results.reduce((sum, result) => sum + (result.endedAt - result.startedAt), 0) / 1000;
  return {
    callbacks: results.reduce((sum, result) => sum + result.sent, 0),
    concurrency,
    acknowledged,
    failed: results.reduce((sum, result) => sum + result.failed, 0),
    failures: results.flatMap((result) => result.failures).slice(0, 5),
    ackPerSecond: round(acknowledged / seconds, 0),
    ackP50Ms: round(percentile(latencies, 50), 1),
    ackP99Ms: round(percentile(latencies, 99), 1),
    ackMaxMs: round(Math.max(...latencies), 1),
  };
}

/** The pipeline child and what its log lines tell: stored callbacks (by subject tag) and log bytes. */
export interface PipelineChild {
  readonly child: ChildProcess;
  readonly info: RuntimeInfo;
  readonly stored: Map<string, number>;
  /** Epoch ms of the last stored callback, from the worker's own log line. */
  lastStoredAt: number;
  duplicates: number;
  logBytes: { ingest: number; worker: number };
  readonly tail: string[];
  stop(): Promise<void>;
}

export async function startPipelineChild(dataDir: string, secretsFile: string, onLine?: (line: string) => void, extraArgs: readonly string[] = []): Promise<PipelineChild> {
  // Port 0: the pipeline binds a free port itself and names it in runtime.json (a port picked here
  // could be taken before the pipeline binds it).
  // The log goes to a file, not a pipe: Node writes stdout to a pipe synchronously, so whenever this
  // (busy) process fell behind reading, the pipeline blocked in write() mid-request — seconds of
  // ack latency that were the benchmark's, not the pipeline's. The file is read as it grows.
  const logFile = join(dataDir, 'pipeline.log');
  const logFd = openSync(logFile, 'w');
  const child = spawn(
    process.execPath,
    // BENCH_PIPELINE_NODE_ARGS: extra node flags for the pipeline process (e.g. --cpu-prof).
    [...(process.env.BENCH_PIPELINE_NODE_ARGS?.split(' ').filter(Boolean) ?? []), '--import', 'tsx', 'local/start.ts', '--port', '0', '--data-dir', join(dataDir, 'data'), '--secrets', secretsFile, '--simulators', '--fresh', '--log-format', 'json', ...extraArgs],
    { cwd: ROOT, stdio: ['ignore', logFd, 'pipe'], env: { ...process.env, NODE_NO_WARNINGS: '1', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } },
  );
  closeSync(logFd);
  const state = {
    stored: new Map<string, number>(),
    lastStoredAt: 0,
    duplicates: 0,
    logBytes: { ingest: 0, worker: 0 },
    tail: [] as string[],
    banner: false,
  };
  const keep = (line: string) => {
    state.tail.push(line);
    if (state.tail.length > 40) state.tail.shift();
  };
  const onLogLine = (line: string) => {
    onLine?.(line);
    if (!line.startsWith('{')) return keep(line);
    // What Lambda writes at the stack's default applicationLogLevel (INFO): `npm start` writes
    // DEBUG lines too (an accepted callback's ingest line), which a deployed function drops.
    const bytes = line.startsWith('{"level":"DEBUG"') ? 0 : Buffer.byteLength(line) + 1 + INVOCATION_FIELD_BYTES;
    if (line.includes('"service":"worker"')) state.logBytes.worker += bytes;
    else if (line.includes('"service":"ingest-')) state.logBytes.ingest += bytes;
    if (line.includes('"message":"stored"')) {
      if (!line.includes('"result":"stored"')) {
        state.duplicates++;
        return;
      }
      // Subject ids contain bench-<run>-<tag>-<n> (a provider may prefix it: voice:bench-…); count per tag.
      const tag = /"subjectId":"[^"]*bench-[^-"]+-([a-z]+)-/.exec(line)?.[1] ?? '?';
      state.stored.set(tag, (state.stored.get(tag) ?? 0) + 1);
      const at = Date.parse(/"timestamp":"([^"]+)"/.exec(line)?.[1] ?? '');
      if (at > state.lastStoredAt) state.lastStoredAt = at;
    } else if (!line.includes('"level":"INFO"')) keep(line);
  };
  const follower = followFile(logFile, onLogLine);
  // The banner is on stderr: stdout carries the log lines alone.
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (line.includes('Callback gateway running locally')) state.banner = true;
    keep(line);
  });
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  await waitFor('the local pipeline to start', async () => {
    if (exited) throw new Error(`the pipeline exited:\n${state.tail.join('\n')}`);
    return state.banner;
  }, 90_000, 100);
  const info = readRuntimeInfo(join(dataDir, 'data'));
  if (!info) throw new Error('runtime.json missing after the pipeline started');
  return Object.assign(state, {
    child,
    info,
    async stop() {
      if (!exited) {
        child.kill('SIGINT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await exit;
        clearTimeout(timer);
      }
      follower.stop();
    },
  });
}

/** Calls `onLine` for each line appended to a file, polling every 20 ms (until stop()). */
function followFile(path: string, onLine: (line: string) => void): { stop(): void } {
  const fd = openSync(path, 'r');
  const chunk = Buffer.alloc(1 << 20);
  let position = 0;
  const decoder = new StringDecoder('utf8');
  let partial = '';
  const poll = () => {
    for (;;) {
      const read = readSync(fd, chunk, 0, chunk.length, position);
      if (read === 0) return;
      position += read;
      const lines = (partial + decoder.write(chunk.subarray(0, read))).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    }
  };
  const timer = setInterval(poll, 20);
  return {
    stop() {
      clearInterval(timer);
      poll();
      closeSync(fd);
    },
  };
}

/** Distinct event items of this run with a subject tag, counted in the table. */
async function countStoredEvents(info: RuntimeInfo, tag: string): Promise<number> {
  const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint: info.dynamodbEndpoint });
  let count = 0;
  let start: Record<string, never> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: info.tableName,
        Select: 'COUNT',
        // Callbacks only: a provider's status-endpoint answers are events of their own.
        FilterExpression: 'begins_with(sk, :event) AND contains(pk, :tag) AND (attribute_not_exists(#source) OR #source <> :answer)',
        ExpressionAttributeNames: { '#source': 'source' },
        ExpressionAttributeValues: { ':event': { S: 'EVENT#' }, ':tag': { S: `bench-${RUN_ID}-${tag}-` }, ':answer': { S: 'status-endpoint' } },
        ExclusiveStartKey: start,
      }),
    );
    count += page.Count ?? 0;
    start = page.LastEvaluatedKey as typeof start;
  } while (start);
  client.destroy();
  return count;
}

export function mixedCallbacks(secrets: BenchSecrets, count: number, tag: string, only?: AnyProvider): BenchCallback[] {
  const list = only ? [only] : providers;
  return Array.from({ length: count }, (_, i) => {
    const provider = list[i % list.length];
    // Per provider: its samples in turn; subject ids are unique per provider (keys hold the provider).
    return distinctCallback(provider, secrets[provider.id], Math.floor(i / list.length), tag);
  });
}

/** Queue messages for callbacks, made by the real ingest handler in this process. */
async function queueMessages(provider: AnyProvider, secrets: BenchSecrets, callbacks: readonly BenchCallback[]): Promise<string[]> {
  const secret = secrets[provider.id];
  const messages: string[] = [];
  const handler = createIngestHandler(provider, {
    secrets: createSecretCache(async () => JSON.stringify(secret)),
    send: async (body) => void messages.push(body),
    log: createLogger({ service: 'bench', write: () => undefined }),
  });
  for (const callback of callbacks) await handler(apiGatewayEvent(provider, callback.request));
  return messages;
}

/**
 * Until `expected` callbacks with the tag are stored, or `idleMs` pass without a new one: a worker
 * still working through a backlog (a busy machine) is waited for, a stuck one is not.
 */
async function waitForStored(pipeline: PipelineChild, tag: string, expected: number, idleMs: number) {
  let seen = pipeline.stored.get(tag) ?? 0;
  let deadline = Date.now() + idleMs;
  while (seen < expected && Date.now() < deadline) {
    await sleep(50);
    const now = pipeline.stored.get(tag) ?? 0;
    if (now > seen) deadline = Date.now() + idleMs;
    seen = now;
  }
}

/** A receiver process of the benchmark (`script`), started with `env`; resolves once it listens. */
async function startReceiver(script: string, env: Record<string, string>): Promise<{ url: string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_NO_WARNINGS: '1', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', PORT: '0', ...env },
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve(line.replace(/^listening /, '')));
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}: ${stderr}`)));
  });
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      await exit;
    },
  };
}

function startSyncReceiver(info: RuntimeInfo, provider: AnyProvider, secret: unknown) {
  return startReceiver('bench/sync-receiver.ts', {
    DYNAMODB_ENDPOINT: info.dynamodbEndpoint,
    TABLE_NAME: 'bench-sync',
    PROVIDER: provider.id,
    PROVIDER_SECRET: JSON.stringify(secret),
  });
}

/**
 * Section 4: callbacks of `asked` (a provider whose status endpoint the worker asks) at the same
 * open-loop rate against our pipeline and against the synchronous receiver (bench/sync-receiver.ts),
 * the status endpoint answering `delayMs` late, in alternating rounds after the same warm-up.
 */
async function compareWithSynchronous(
  pipeline: PipelineChild,
  secrets: BenchSecrets,
  kit: ProviderKit,
  options: { concurrency: number; alternativeCallbacks: number; alternativeRounds: number; alternativeRate: number; delayMs: number },
): Promise<AlternativeResult> {
  const { info } = pipeline;
  const { provider } = kit;
  const secret = secrets[provider.id];
  progress(`alternative: ${provider.displayName} status endpoint delayed ${options.delayMs} ms; synchronous receiver vs ours, and a receiver that does no work`);
  const sync = await startSyncReceiver(info, provider, secret);
  const floorReceiver = await startReceiver('bench/floor-receiver.ts', {});
  try {
    const perRound = Math.ceil(options.alternativeCallbacks / options.alternativeRounds);
    const oursAlt = mixedCallbacks(secrets, perRound * options.alternativeRounds, 'a', provider);
    const syncAlt = mixedCallbacks(secrets, perRound * options.alternativeRounds, 'y', provider);
    // A fresh process runs cold (JIT, lazily loaded modules): both receivers get the same warm-up first.
    const warmup = Math.min(200, perRound);
    const oursWarm = mixedCallbacks(secrets, warmup, 'u', provider);
    const syncWarm = mixedCallbacks(secrets, warmup, 'v', provider);
    await reportAnswers(info, secrets, [...oursAlt, ...syncAlt, ...oursWarm, ...syncWarm]);
    await delayAnswers(info, secrets, kit, options.delayMs);
    const rate = options.alternativeRate;
    await runLoad(info.baseUrl, oursWarm.map((callback) => callback.request), options.concurrency, rate);
    await runLoad(sync.url, syncWarm.map((callback) => callback.request), options.concurrency, rate);
    await runLoad(floorReceiver.url, syncWarm.map((callback) => callback.request), options.concurrency, rate);
    const oursLoads: LoadResult[] = [];
    const syncLoads: LoadResult[] = [];
    const floorLoads: LoadResult[] = [];
    for (let r = 0; r < options.alternativeRounds; r++) {
      const slice = (list: BenchCallback[]) => list.slice(r * perRound, (r + 1) * perRound).map((callback) => callback.request);
      const first = r % 2 === 0;
      if (first) oursLoads.push(await runLoad(info.baseUrl, slice(oursAlt), options.concurrency, rate));
      syncLoads.push(await runLoad(sync.url, slice(syncAlt), options.concurrency, rate));
      if (!first) oursLoads.push(await runLoad(info.baseUrl, slice(oursAlt), options.concurrency, rate));
      // The floor is measured after both, in every round: it does not change the order of the other two.
      floorLoads.push(await runLoad(floorReceiver.url, slice(syncAlt), options.concurrency, rate));
    }
    const ours = summarize(oursLoads, options.concurrency);
    const synchronous = summarize(syncLoads, options.concurrency);
    const floor = summarize(floorLoads, options.concurrency);
    await delayAnswers(info, secrets, kit, null);
    progress(`alternative: waiting until our ${provider.displayName} callbacks are stored`);
    await waitForStored(pipeline, 'a', ours.acknowledged, 120_000);
    const oursStored = await countStoredEvents(info, 'a');
    return {
      provider: provider.displayName,
      delayMs: options.delayMs,
      ratePerSecond: options.alternativeRate,
      rounds: options.alternativeRounds,
      ours: { ...ours, lost: ours.acknowledged - oursStored },
      synchronous,
      floor,
      p99Ratio: round(synchronous.ackP99Ms / ours.ackP99Ms, 1),
    };
  } finally {
    await Promise.all([sync.stop(), floorReceiver.stop()]);
  }
}

export interface PipelineBenchOptions {
  callbacks: number;
  concurrency: number;
  engineSequences: number;
  alternativeCallbacks: number;
  alternativeRounds: number;
  /** Arrival rate of the alternative comparison, callbacks/s (both receivers get the same). */
  alternativeRate: number;
  delayMs: number;
  /** Lives per provider for the reads and writes per callback (the kits' lives, each a subject's callbacks in order). */
  lives: number;
}

/**
 * The local pipeline on a tmpfs data folder with the benchmark's secrets, for `measure`; stopped and
 * removed afterwards. DynamoDB Local keeps its data in SQLite files; on this VM's disk every write
 * waits for an fsync (about 4x slower). A tmpfs data folder measures the engine, not the disk.
 */
export async function withPipeline<T>(measure: (pipeline: PipelineChild, secrets: BenchSecrets, dynamo: DynamoDBClient) => Promise<T>, onLine?: (line: string) => void, extraArgs: readonly string[] = []): Promise<T> {
  const dataDir = mkdtempSync(join(DATA_PARENT, 'callback-gateway-bench-'));
  const secretsFile = join(dataDir, 'secrets.json');
  writeFileSync(secretsFile, JSON.stringify(benchSecrets()));
  progress('starting the local pipeline (DynamoDB Local, SQS server, simulated status endpoints, HTTP API, worker thread)');
  const pipeline = await startPipelineChild(dataDir, secretsFile, onLine, extraArgs);
  // What the pipeline runs with: ours, the asked providers pointed at its simulators.
  const secrets: BenchSecrets = loadSecretsFile(pipeline.info.secretsFile);
  const dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: pipeline.info.dynamodbEndpoint });
  try {
    return await measure(pipeline, secrets, dynamo);
  } catch (error) {
    process.stderr.write(`[bench] pipeline output (last lines):\n${pipeline.tail.join('\n')}\n`);
    throw error;
  } finally {
    dynamo.destroy();
    await pipeline.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Section 4 alone (`BENCH_SECTIONS=sync`): the comparison with the synchronous receiver on a fresh pipeline. */
export async function measureAlternative(options: PipelineBenchOptions): Promise<AlternativeResult | undefined> {
  const [asked] = askedKits();
  if (!asked) {
    progress('alternative: skipped (no provider\'s status endpoint is asked)');
    return undefined;
  }
  return withPipeline(async (pipeline, secrets, dynamo) => {
    await ensureTable(dynamo, 'bench-sync');
    return compareWithSynchronous(pipeline, secrets, asked, options);
  });
}

export async function measurePipeline(options: PipelineBenchOptions): Promise<PipelineBenchResult> {
  return withPipeline(async (pipeline, secrets, dynamo) => {
    const { info } = pipeline;
    for (const table of ['bench-record', 'bench-engine', 'bench-sync']) await ensureTable(dynamo, table);

    // The worker's real reads and writes per callback, and real item shapes for the engine run:
    // each sample about a new subject, then the kit's lives (each subject's callbacks in the order
    // the provider sends them), which the cost model uses.
    progress('end to end: recording the worker\'s reads and writes per provider (real items, the kits\' lives)');
    const writes: Record<string, ProviderWrites> = {};
    const templates = [];
    for (const provider of providers) {
      const secret = secrets[provider.id];
      const distinct = mixedCallbacks(secrets, 10, 'w', provider);
      const lives = Array.from({ length: options.lives }, (_, n) => lifeCallbacks(provider, secret, `bench-${RUN_ID}-life-${provider.id}-${n}`));
      await reportAnswers(info, secrets, distinct);
      const recorded = await recordWorkerWrites({
        endpoint: info.dynamodbEndpoint,
        tableName: 'bench-record',
        provider,
        secret,
        messages: await queueMessages(provider, secrets, distinct),
        lives: await Promise.all(lives.map((life) => queueMessages(provider, secrets, life))),
        beforeLifeCallback: (life, index) => reportAnswers(info, secrets, [lives[life][index]]),
      });
      writes[provider.id] = recorded.writes;
      templates.push(recorded.templates);
    }

    progress(`end to end: engine alone, ${options.engineSequences} callbacks' worth of requests (before)`);
    const engineBefore = await measureEngineRate({ endpoint: info.dynamodbEndpoint, tableName: 'bench-engine', templates, sequences: options.engineSequences, concurrency: options.concurrency });

    const callbacks = mixedCallbacks(secrets, options.callbacks, 'e');
    await reportAnswers(info, secrets, callbacks);
    pipeline.logBytes = { ingest: 0, worker: 0 };
    progress(`end to end: ${options.callbacks} callbacks, ${options.concurrency} concurrent senders`);
    const load = await runLoad(info.baseUrl, callbacks.map((callback) => callback.request), options.concurrency);
    progress(`end to end: acknowledged ${load.acknowledged}, waiting until all are stored`);
    await waitForStored(pipeline, 'e', load.acknowledged, 120_000);
    const allStoredSeconds = (pipeline.lastStoredAt - (performance.timeOrigin + load.startedAt)) / 1000;
    const logBytes = { ingest: round(pipeline.logBytes.ingest / options.callbacks, 0), worker: round(pipeline.logBytes.worker / options.callbacks, 0) };
    const storedInTable = await countStoredEvents(info, 'e');

    progress(`end to end: engine alone (after)`);
    const engineAfter = await measureEngineRate({ endpoint: info.dynamodbEndpoint, tableName: 'bench-engine', templates, sequences: options.engineSequences, concurrency: options.concurrency });
    const engineCallbacksPerSecond = (engineBefore.callbacksPerSecond + engineAfter.callbacksPerSecond) / 2;
    const storedPerSecond = storedInTable / allStoredSeconds;

    // Section 4, with the first provider whose status endpoint the worker asks.
    const [asked] = askedKits();
    const alternative = asked ? await compareWithSynchronous(pipeline, secrets, asked, options) : undefined;
    if (!asked) progress('alternative: skipped (no provider\'s status endpoint is asked)');

    return {
      endToEnd: {
        ...summarize([load], options.concurrency),
        allStoredSeconds: round(allStoredSeconds, 2),
        storedPerSecond: round(storedPerSecond, 0),
        storedInTable,
        lost: load.acknowledged - storedInTable,
        duplicatesLogged: pipeline.duplicates,
        engineBefore,
        engineAfter,
        engineCallbacksPerSecond: round(engineCallbacksPerSecond, 0),
        shareOfEngine: round(storedPerSecond / engineCallbacksPerSecond, 2),
        logBytesPerCallback: logBytes,
      },
      ...(alternative ? { alternative } : {}),
      writes,
    };
  });
}
