import { chmodSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { boundedSqsClient } from '../functions/adapters/sqs.ts';
import { DEFAULT_RECONCILE, type ReconcilePolicy } from '../functions/core/reconcile.ts';
import { RELAY } from '../functions/core/relay.ts';
import { QUEUE } from '../functions/core/pipeline-definition.ts';
import { ingestDependencies, type LogWrite } from '../functions/handlers/dependencies.ts';
import { createIngestHandler } from '../functions/handlers/ingest.ts';
import { findProvider, providers } from '../functions/providers/index.ts';
import { createLogger, maskUrlSecrets, type LogLevel } from '../functions/shared/log.ts';
import { allKits, kitOf, secretsFor } from '../test/providers/index.ts';
import { ensureQueues, ensureTable, LOCAL_AWS, startDynamoDbLocal, type DynamoDbLocal } from './engines.ts';
import { openHttpApi, type LocalHttpApi } from './http-api.ts';
import { routePath } from './samples.ts';
import { fileSecretSource, loadSecretsFile, providerSecret, type SecretsFile } from './secrets-file.ts';
import type { EventsOutletSettings } from './events-outlet.ts';
import type { ServicesThreadInfo, ServicesThreadSettings } from './services-thread.ts';
import { startThreadPart } from './threads.ts';
import type { RelayThreadSettings } from './relay-thread.ts';
import type { WorkerThreadSettings } from './worker-thread.ts';
import { shortHash } from '../functions/shared/hash.ts';

/** What `npm start` runs: the whole pipeline on this machine, with real engines and the real handlers. */
export interface PipelineOptions {
  /** HTTP port for the callback routes on 127.0.0.1 (0 = any free port). */
  readonly port: number;
  /** Folder for persisted data (DynamoDB's files, the queues' SQLite, runtime.json, development secrets). */
  readonly dataDir: string;
  /** Start from an empty table and empty queues. */
  readonly fresh: boolean;
  /**
   * The user's secrets file, used as it is. Without one, development secrets are made from the
   * providers' test kits (fake values, written to `<dataDir>/dev-secrets.json`) and every asked
   * provider's status endpoint is simulated.
   */
  readonly secretsFile?: string;
  /**
   * Start the simulated status endpoints even with a secrets file, pointing the asked providers at
   * them (the file itself is not changed). Without a secrets file they always start.
   */
  readonly simulators?: boolean;
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
  /** An SQS-API endpoint started elsewhere instead of the in-process one (whose queues persist under dataDir). */
  readonly sqsEndpoint?: string;
  /** Receives each log line (already JSON); defaults to stdout. */
  readonly write?: (line: string, level: LogLevel) => void;
  /** When subjects are asked about again (`--reconcile-schedule 2s,4s,8s` for demos). @default DEFAULT_RECONCILE */
  readonly reconcile?: ReconcilePolicy;
  /** Seconds between sweeps for due re-checks. @default the schedule's first delay, within 1–60 s */
  readonly sweepPeriodSeconds?: number;
  /**
   * The SMS relay, as the stack's `smsRelay` setting: `off`, or the provider that sends SMS
   * instructions (TeleSign). On, the bus's SMS rule fills the relay queue and the relay sends from it
   * with the secrets the pipeline runs with: the simulated messaging API with the development secrets
   * or --simulators, which never lets fake secrets reach a real provider. @default 'off'
   */
  readonly smsRelay?: string;
  /** Seconds after receipt past which the relay does not send a one-time code. @default RELAY.codeMaxAgeSeconds */
  readonly relayMaxAgeSeconds?: number;
  /** The countries the relay sends to, as `relayAllowedCountryCodes`: `any`, or calling codes. @default 'any' */
  readonly relayAllowedCountryCodes?: string;
  /** SMS to one number in one clock hour past which the relay refuses, as `relayMaxPerNumberPerHour`; 0: no cap. @default RELAY.maxPerNumberPerHour */
  readonly relayMaxPerNumberPerHour?: number;
}

/** The SMS relay of a running pipeline. */
export interface RelayInfo {
  /** The provider that sends. */
  readonly sender: string;
  readonly queueUrl: string;
  readonly dlqUrl: string;
  /** The simulated send route it talks to (`POST http://127.0.0.1:…/v1/messaging`); absent: the sender's endpoint in your secrets file. */
  readonly simulated?: string;
  /** Not simulated: the base URL the secrets file gives the sender (or the sender's default when it gives none). */
  readonly endpoint?: string;
  /** The settings it runs with, by the stack's names (defaults filled in): what the banner shows. */
  readonly settings: RelaySettings;
}

/** The SMS relay's settings in effect, named as the stack's (cdk.json `settings`). */
export interface RelaySettings {
  readonly smsRelay: string;
  readonly relayMaxAgeSeconds: number;
  readonly relayAllowedCountryCodes: string;
  /** 0: no cap. */
  readonly relayMaxPerNumberPerHour: number;
}

/** Written to `<dataDir>/runtime.json` so `send` and `inspect` find the running pipeline. */
export interface RuntimeInfo {
  readonly pid: number;
  /**
   * When that process started (`processStartTime`), where the system says: a pid is handed to
   * another process once its own has ended, and that one is not the pipeline.
   */
  readonly pidStartTime?: string;
  readonly baseUrl: string;
  readonly dynamodbEndpoint: string;
  readonly sqsEndpoint: string;
  readonly tableName: string;
  readonly queueUrl: string;
  readonly dlqUrl: string;
  /** The secrets the pipeline runs with (the user's file, or the development secrets it wrote). */
  readonly secretsFile: string;
  /** Whether those are the development secrets made from the test kits. */
  readonly devSecrets: boolean;
  /** Simulated status endpoints, by provider id. */
  readonly simulators: Record<string, string>;
  /** The local event bus's file: one published event per line (`npm run events`). */
  readonly eventsFile: string;
  readonly region: string;
  readonly urls: Record<string, string>;
  /** The reconcile policy the worker and the sweep run with (`--reconcile-schedule`). */
  readonly reconcile: ReconcilePolicy;
  /** The SMS relay; null when off. */
  readonly smsRelay: RelayInfo | null;
}

export interface RunningPipeline {
  readonly info: RuntimeInfo;
  stop(): Promise<void>;
}

const QUEUE_NAMES = { queue: 'callbacks', dlq: 'callbacks-dlq' } as const;
const RELAY_QUEUE_NAMES = { queue: 'sms-relay', dlq: 'sms-relay-dlq' } as const;
/** The local secret cache: short, so an edited secrets file applies within seconds. */
const LOCAL_SECRET_CACHE_SECONDS = 5;

export function runtimeInfoPath(dataDir: string): string {
  return join(dataDir, 'runtime.json');
}

/**
 * The running pipeline's details, if one is running with this data folder. A pipeline stopped
 * without its shutdown (kill -9, a crash) leaves its runtime.json naming engines that are gone:
 * its process not running, it is none; nor is another process that has since been given its pid
 * (one that started at another time).
 */
export function readRuntimeInfo(dataDir: string): RuntimeInfo | undefined {
  let info: RuntimeInfo;
  try {
    info = JSON.parse(readFileSync(runtimeInfoPath(dataDir), 'utf8')) as RuntimeInfo;
  } catch {
    return undefined;
  }
  if (typeof info.pid !== 'number' || !isAlive(info.pid)) return undefined;
  const started = info.pidStartTime === undefined ? undefined : processStartTime(info.pid);
  return started === undefined || started === info.pidStartTime ? info : undefined;
}

/**
 * When a process started, as /proc/<pid>/stat's 22nd field says (clock ticks since boot), or
 * undefined where there is no /proc (macOS). Two processes given one pid in turn started at
 * different times.
 */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2, in parentheses) may hold spaces and parentheses: count after its last `)`.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Undo list: each started part registers how to stop it; stopped in reverse order. */
class Stops {
  private readonly first: (() => Promise<unknown>)[] = [];
  private readonly list: (() => Promise<unknown>)[] = [];
  /** Runs at stop time in the reverse order of starting. */
  add(stop: () => Promise<unknown>): void {
    this.list.push(stop);
  }
  /** Runs before those added with `add`, in the order given (closing the HTTP port, removing runtime.json). */
  addFirst(stop: () => Promise<unknown>): void {
    this.first.push(stop);
  }
  async all(): Promise<void> {
    const stops = [...this.first, ...this.list.reverse()];
    this.first.length = 0;
    this.list.length = 0;
    for (const stop of stops) await stop().catch(() => undefined);
  }
}

/**
 * Step 1: the data folder, checked free of another running pipeline, emptied with --fresh; and the
 * HTTP port, bound now and held (answering 503 until the routes are served in step 7).
 */
async function prepareDataDir(options: PipelineOptions, stops: Stops): Promise<LocalHttpApi> {
  // A folder every user shares by design (the sticky bit: the system's temporary folders) is not made
  // the owner's alone below, nor emptied by --fresh: as root that took it from every other user. The data
  // would be written into it readable by them, so the start is refused.
  if (((statSync(options.dataDir, { throwIfNoEntry: false })?.mode ?? 0) & 0o1000) !== 0) {
    throw new Error(`${options.dataDir} is a folder every user of the machine shares (its sticky bit is set): give a folder of its own for --data-dir, such as ${join(options.dataDir, 'callback-gateway')}`);
  }
  const existing = readRuntimeInfo(options.dataDir);
  if (existing && isAlive(existing.pid) && existing.pid !== process.pid) {
    throw new Error(`a local pipeline (pid ${existing.pid}) already uses ${options.dataDir}; stop it first`);
  }
  const http = await bindHttpPort(options.port);
  // Closed first at stop time: no callback is taken while the worker and the engines stop.
  stops.addFirst(() => http.stop());
  if (options.fresh) rmSync(options.dataDir, { recursive: true, force: true });
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  // The owner's alone, whatever made it before: DynamoDB Local's and the SQS server's files inside
  // hold every callback whole (Identomat's codes and numbers too) and are written with the process's
  // umask, readable by every user of the machine.
  chmodSync(options.dataDir, 0o700);
  return http;
}

/**
 * The providers whose status endpoint is simulated, with the secrets they are simulated with. The
 * user's secrets file is used as it is; simulators start only with the development secrets (made
 * from the test kits, pointed at them) or when asked for (--simulators), never because a URL in the
 * user's file happens to be on this machine.
 */
function simulatedProviders(options: PipelineOptions) {
  const simulate = options.secretsFile === undefined || options.simulators === true;
  // Development secrets ask every simulated endpoint, opt-in ones (TeleSign's statusLookup) too.
  const base: SecretsFile = options.secretsFile === undefined ? secretsFor('fake-local-dev', { asks: simulate }) : loadSecretsFile(options.secretsFile);
  // The relay's sender too: its messaging API is what the relay talks to.
  const sender = relaySender(options);
  const asked = simulate ? allKits().filter((kit) => kit.statusSimulation && (kit.provider.lookup || kit.provider.id === sender)) : [];
  return { base, simulate: asked.map((kit) => ({ provider: kit.provider.id, secret: base[kit.provider.id] })) };
}

/** The provider the SMS relay sends through, or undefined when it is off. */
function relaySender(options: PipelineOptions): string | undefined {
  return options.smsRelay === undefined || options.smsRelay === 'off' ? undefined : options.smsRelay;
}

/** The relay's settings as the options give them, each default where they give none: what its thread runs with. */
function relaySettings(options: PipelineOptions, sender: string): RelaySettings {
  return {
    smsRelay: sender,
    relayMaxAgeSeconds: options.relayMaxAgeSeconds ?? RELAY.codeMaxAgeSeconds,
    relayAllowedCountryCodes: options.relayAllowedCountryCodes ?? 'any',
    relayMaxPerNumberPerHour: options.relayMaxPerNumberPerHour ?? RELAY.maxPerNumberPerHour,
  };
}

/**
 * Step 2: DynamoDB Local (a Java process), and a thread (local/services-thread.ts) with the SQS-API
 * server and the simulated status endpoints, unless endpoints started elsewhere were given.
 */
async function startEngines(options: PipelineOptions, simulate: ServicesThreadSettings['simulate'], stops: Stops) {
  const services: ServicesThreadSettings = {
    // The queues are written through to disk: a callback answered 200 survives a kill -9.
    ...(options.sqsEndpoint ? {} : { sqsDataDir: join(options.dataDir, 'sqs') }),
    simulate,
  };
  const servicesThread = services.sqsDataDir !== undefined || simulate.length > 0
    ? startThreadPart<ServicesThreadInfo>(new URL('./services-thread.ts', import.meta.url), services, { name: 'SQS server and simulators', write: logWrite(options) })
    : undefined;
  if (servicesThread) stops.add(() => servicesThread.stop());
  const [dynamo, started] = await Promise.all([
    options.dynamodbEndpoint ? undefined : startDynamoDbLocal({ dbPath: join(options.dataDir, 'dynamodb') }).then((engine) => (stops.add(() => engine.stop()), engine)),
    servicesThread?.ready,
  ]);
  return {
    dynamodbEndpoint: options.dynamodbEndpoint ?? dynamo!.endpoint,
    sqsEndpoint: options.sqsEndpoint ?? started!.sqsEndpoint!,
    simulators: started?.simulators ?? {},
    messaging: started?.messaging ?? {},
  };
}

/** Step 3: the stack's table and queues (with its redrive policy); what the last run left queued is still there. */
async function prepareResources(options: PipelineOptions, engines: Awaited<ReturnType<typeof startEngines>>, stops: Stops) {
  const tableName = options.tableName ?? 'callback-gateway';
  const dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: engines.dynamodbEndpoint });
  // The same bounded client as the Lambda ingest: an unreachable queue is a 503, not a hang.
  const sqs = boundedSqsClient({ ...LOCAL_AWS, endpoint: engines.sqsEndpoint });
  stops.add(async () => {
    dynamo.destroy();
    sqs.destroy();
  });
  const table = await ensureTable(dynamo, tableName);
  const { queueUrl, dlqUrl } = await ensureQueues(sqs, QUEUE_NAMES, {
    maxReceiveCount: options.maxReceiveCount,
    visibilityTimeoutSeconds: options.visibilityTimeoutSeconds,
  });
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn', 'ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
  );
  const waiting = Number(Attributes?.ApproximateNumberOfMessages ?? 0) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
  const relay = relaySender(options) === undefined ? undefined : await prepareRelayQueues(options, sqs);
  return { dynamo, sqs, tableName, queueUrl, dlqUrl, queueArn: Attributes!.QueueArn!, waiting, relay, ...table };
}

/**
 * The relay queue and its DLQ, as lib/sms-relay.ts makes them: RELAY's receive count, visibility
 * timeout and retention. What a last run left there is still there, and is sent (or recorded
 * expired) now.
 */
async function prepareRelayQueues(options: PipelineOptions, sqs: ReturnType<typeof boundedSqsClient>) {
  const { queueUrl, dlqUrl } = await ensureQueues(sqs, RELAY_QUEUE_NAMES, {
    maxReceiveCount: RELAY.maxReceiveCount,
    visibilityTimeoutSeconds: options.visibilityTimeoutSeconds ?? RELAY.visibilityTimeoutSeconds,
    retentionSeconds: RELAY.retentionDays * 86_400,
    dlqRetentionSeconds: RELAY.dlqRetentionDays * 86_400,
  });
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
  return { queueUrl, dlqUrl, queueArn: Attributes!.QueueArn! };
}

/** Step 4: the secrets the pipeline runs with: the asked providers pointed at their simulators, if any. */
function prepareSecrets(options: PipelineOptions, base: SecretsFile, simulators: Record<string, string>) {
  const secrets: SecretsFile = { ...base };
  for (const [provider, baseUrl] of Object.entries(simulators)) secrets[provider] = { ...secrets[provider], baseUrl };
  // The user's file stays untouched; what the pipeline runs with is written beside its data.
  const changed = options.secretsFile === undefined || Object.keys(simulators).length > 0;
  const secretsFile = changed ? join(options.dataDir, options.secretsFile === undefined ? 'dev-secrets.json' : 'secrets-with-simulators.json') : options.secretsFile!;
  if (changed) writeFileSync(secretsFile, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  loadSecretsFile(secretsFile); // fail fast, naming the problem
  return { secretsFile, devSecrets: options.secretsFile === undefined };
}

/**
 * Step 5: the worker and the sweep, in a thread of their own (local/worker-thread.ts), as they are
 * functions of their own on AWS: the worker fed by a poller that behaves like the Lambda event
 * source, the sweep on a timer as EventBridge Scheduler runs it, both over the same table and queue.
 */
function startWorker(options: PipelineOptions, resources: Awaited<ReturnType<typeof prepareResources>>, engines: Awaited<ReturnType<typeof startEngines>>, secretsFile: string, stops: Stops) {
  const settings: WorkerThreadSettings = {
    dynamodbEndpoint: engines.dynamodbEndpoint,
    sqsEndpoint: engines.sqsEndpoint,
    tableName: resources.tableName,
    queueUrl: resources.queueUrl,
    queueArn: resources.queueArn,
    secretsFile,
    secretCacheSeconds: LOCAL_SECRET_CACHE_SECONDS,
    retryBaseSeconds: options.retryBaseSeconds ?? 1,
    // As the queue's redrive policy (prepareResources): the worker knows which receive is the last.
    maxReceiveCount: options.maxReceiveCount ?? QUEUE.maxReceiveCount,
    ...(options.confirmTimeoutMs === undefined ? {} : { confirmTimeoutMs: options.confirmTimeoutMs }),
    reconcile: reconcilePolicy(options),
    sweepPeriodSeconds: sweepPeriod(options),
    ...(relaySender(options) === undefined ? {} : { smsRelay: relaySender(options) }),
  };
  const thread = startThreadPart<null>(new URL('./worker-thread.ts', import.meta.url), settings, { name: 'worker', write: logWrite(options), restart: true });
  // Stop order (reverse of registration): HTTP first, then the thread finishes its batches.
  stops.add(() => thread.stop());
  return thread;
}

/** Where log lines go: the pipeline's `write`, else stdout (as the logger's own default). */
function logWrite(options: PipelineOptions): LogWrite {
  return options.write ?? ((line) => void process.stdout.write(`${line}\n`));
}

function reconcilePolicy(options: PipelineOptions): ReconcilePolicy {
  return options.reconcile ?? DEFAULT_RECONCILE;
}

/** Seconds between sweeps: as on AWS (every minute), or sooner when the schedule is shortened for a demo. */
export function sweepPeriod(options: Pick<PipelineOptions, 'reconcile' | 'sweepPeriodSeconds'>): number {
  if (options.sweepPeriodSeconds) return options.sweepPeriodSeconds;
  const first = (options.reconcile ?? DEFAULT_RECONCILE).intervalsSeconds[0] ?? 60;
  return Math.min(60, Math.max(1, Math.floor(first / 2)));
}

/**
 * Step 6: events out, in a thread of its own (local/events-thread.ts), as the publisher is a
 * function of its own on AWS: the table's stream read and published to the local bus. Registered
 * before the worker's thread, so it stops after it: the worker's last writes are in the stream
 * before the position is saved for the last time (what it has not read then is read on the next start).
 */
function startEvents(options: PipelineOptions, engines: Awaited<ReturnType<typeof startEngines>>, resources: Awaited<ReturnType<typeof prepareResources>>, stops: Stops) {
  if (resources.streamEnabledNow) {
    createLogger({ service: 'publisher', write: options.write }).info('the table had no stream (made by an earlier version): enabled now; changes from before are not published');
  }
  const settings: EventsOutletSettings = {
    dynamodbEndpoint: engines.dynamodbEndpoint,
    streamArn: resources.streamArn,
    dataDir: options.dataDir,
    // With the relay on, the bus gets the stack's SMS rule, targeting the relay queue.
    ...(resources.relay ? { smsRelayQueue: { sqsEndpoint: engines.sqsEndpoint, queueUrl: resources.relay.queueUrl } } : {}),
  };
  const thread = startThreadPart<{ eventsFile: string }>(new URL('./events-thread.ts', import.meta.url), settings, { name: 'events', write: logWrite(options), restart: true });
  stops.add(() => thread.stop());
  return thread;
}

/** Who the relay sends through, and where: its simulation, or the endpoint of the secrets file. */
export interface RelayTarget {
  readonly sender: string;
  readonly simulated?: string;
  readonly endpoint?: string;
}

/**
 * What the relay sends through: the sender's simulated messaging API wherever it is simulated (the
 * secrets point it there), else the endpoint in the user's secrets file. Development secrets are
 * fake, and never reach a real provider: without a simulation the pipeline does not start.
 */
function relayTarget(options: PipelineOptions, engines: Awaited<ReturnType<typeof startEngines>>, secretsFile: string, devSecrets: boolean): RelayTarget | undefined {
  const sender = relaySender(options);
  if (sender === undefined) return undefined;
  const simulated = engines.messaging[sender];
  const baseUrl = loadSecretsFile(secretsFile)[sender]?.baseUrl;
  if (simulated === undefined ? devSecrets : baseUrl !== engines.simulators[sender]) {
    throw new Error(`the SMS relay would send through ${sender} at ${maskUrlSecrets(String(baseUrl))}, not its simulation: development secrets only ever talk to simulated providers`);
  }
  if (simulated !== undefined) return { sender, simulated };
  // The URL the relay will really call: the secret's baseUrl, or the sender's default when it has none.
  const read = findProvider(sender)?.secretSchema.safeParse(loadSecretsFile(secretsFile)[sender]);
  const endpoint = read?.success ? (read.data as { baseUrl?: unknown }).baseUrl : undefined;
  return { sender, ...(typeof endpoint === 'string' ? { endpoint } : {}) };
}

/**
 * Step 6b: the SMS relay, in a thread of its own (local/relay-thread.ts), as it is a function of its
 * own on AWS: the relay handler fed by a poller of the relay queue, sending with the secrets the
 * pipeline runs with. Registered after the events thread, so it stops before it (what the bus
 * queues then waits in the persisted relay queue for the next start).
 */
function startRelay(
  options: PipelineOptions,
  resources: Awaited<ReturnType<typeof prepareResources>>,
  engines: Awaited<ReturnType<typeof startEngines>>,
  relay: RelayTarget,
  secretsFile: string,
  stops: Stops,
) {
  const { sender } = relay;
  const inEffect = relaySettings(options, sender);
  const settings: RelayThreadSettings = {
    dynamodbEndpoint: engines.dynamodbEndpoint,
    sqsEndpoint: engines.sqsEndpoint,
    tableName: resources.tableName,
    queueUrl: resources.relay!.queueUrl,
    queueArn: resources.relay!.queueArn,
    sender,
    secretsFile,
    secretCacheSeconds: LOCAL_SECRET_CACHE_SECONDS,
    codeMaxAgeSeconds: inEffect.relayMaxAgeSeconds,
    allowedCountryCodes: inEffect.relayAllowedCountryCodes,
    maxPerNumberPerHour: inEffect.relayMaxPerNumberPerHour,
    // As the worker's locally: a failed send is retried within seconds, not RELAY's 10 s doubling.
    retryBaseSeconds: options.retryBaseSeconds ?? 1,
    sendsOnlyReceivedFrom: relayTargetSince(options.dataDir, relay, secretsFile),
  };
  const thread = startThreadPart<null>(new URL('./relay-thread.ts', import.meta.url), settings, { name: 'SMS relay', write: logWrite(options), restart: true });
  stops.add(() => thread.stop());
  return thread;
}

/**
 * Since when the relay has sent where it sends now (`<data-dir>/relay-target.json`). The relay
 * queue, its DLQ and the table's stream outlive a run: without this, a sample code queued in a
 * simulated run (a sample phone number, someone's session link) went to the real provider, and a
 * real phone, on the next start with real secrets. Instructions received before are not sent.
 */
export function relayTargetSince(dataDir: string, relay: RelayTarget, secretsFile: string): string {
  const secret = loadSecretsFile(secretsFile)[relay.sender] as Record<string, unknown> | undefined;
  // Which account, not its id: the file is beside the data, readable by its owner only.
  const account = shortHash(String(secret?.customerId ?? secret?.apiKey ?? ''));
  const target = relay.simulated !== undefined ? `${relay.sender} simulated` : `${relay.sender} real ${relay.endpoint ?? 'default endpoint'} account ${account}`;
  const file = join(dataDir, 'relay-target.json');
  let stamp: { target?: string; since?: string } = {};
  try {
    stamp = JSON.parse(readFileSync(file, 'utf8')) as typeof stamp;
  } catch {
    // none yet
  }
  // A stamp that does not hold a time is no stamp: a new one starts now (nothing older is sent).
  if (stamp.target === target && typeof stamp.since === 'string' && Number.isFinite(Date.parse(stamp.since))) return stamp.since;
  const since = new Date().toISOString();
  writeFileSync(file, `${JSON.stringify({ target, since })}\n`, { mode: 0o600 });
  return since;
}

/**
 * The simulated messaging APIs send their delivery reports to the pipeline's own route for their
 * provider (the TeleSign route), as the provider sends them to the URL its account is set up with.
 */
async function pointDeliveryReports(engines: Awaited<ReturnType<typeof startEngines>>, base: SecretsFile, urls: Record<string, string>): Promise<void> {
  for (const provider of Object.keys(engines.messaging)) {
    const { controlToken } = kitOf(provider).statusSimulation!(base[provider]);
    const response = await fetch(`${engines.simulators[provider]}/__simulator/delivery-report-url`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${controlToken}` },
      body: JSON.stringify({ url: urls[provider] }),
    });
    if (!response.ok) throw new Error(`the simulated ${provider} messaging API refused its delivery report URL: ${response.status} ${await response.text()}`);
  }
}

/** Step 7: the HTTP routes of every provider, in front of the real ingest handlers, served on the port bound in step 1. */
function startIngress(options: PipelineOptions, resources: Awaited<ReturnType<typeof prepareResources>>, secretsFile: string, http: LocalHttpApi) {
  const routes = providers.map((provider) => ({
    provider,
    handler: createIngestHandler(
      provider,
      ingestDependencies({
        provider,
        sqs: resources.sqs,
        queueUrl: resources.queueUrl,
        secretSource: fileSecretSource(secretsFile),
        secretCacheSeconds: LOCAL_SECRET_CACHE_SECONDS,
        write: options.write,
      }),
    ),
  }));
  http.serve(routes);
}

/**
 * Start DynamoDB Local, the SQS-API server and the simulated status endpoints (with the development
 * secrets) in a thread, events out (the table's stream to the local bus) in another, the SMS relay
 * (when on) in a third, the worker and the sweep in a fourth, and the HTTP API with the ingest
 * handlers on this one; then point the simulated messaging APIs' delivery reports at their routes.
 * On any failure everything already started is stopped again.
 */
export async function startPipeline(options: PipelineOptions): Promise<RunningPipeline> {
  if (options.secretsFile !== undefined) loadSecretsFile(options.secretsFile); // fail fast, naming the problem
  const stops = new Stops();
  try {
    const http = await prepareDataDir(options, stops);
    const { base, simulate } = simulatedProviders(options);
    const engines = await startEngines(options, simulate, stops);
    const resources = await prepareResources(options, engines, stops);
    const { simulators } = engines;
    const { secretsFile, devSecrets } = prepareSecrets(options, base, simulators);
    const relay = relayTarget(options, engines, secretsFile, devSecrets);
    // The threads load their modules while the HTTP side starts.
    const events = startEvents(options, engines, resources, stops);
    const relayThread = relay ? startRelay(options, resources, engines, relay, secretsFile, stops) : undefined;
    const worker = startWorker(options, resources, engines, secretsFile, stops);
    startIngress(options, resources, secretsFile, http);
    const [{ eventsFile }] = await Promise.all([events.ready, worker.ready, relayThread?.ready]);

    const secrets = loadSecretsFile(secretsFile);
    const urls = Object.fromEntries(providers.map((provider) => [provider.id, `${http.url}${routePath(provider, providerSecret(secrets, provider))}`]));
    await pointDeliveryReports(engines, base, urls);
    const pidStartTime = processStartTime(process.pid);
    const info: RuntimeInfo = {
      pid: process.pid,
      ...(pidStartTime === undefined ? {} : { pidStartTime }),
      baseUrl: http.url,
      dynamodbEndpoint: engines.dynamodbEndpoint,
      sqsEndpoint: engines.sqsEndpoint,
      tableName: resources.tableName,
      queueUrl: resources.queueUrl,
      dlqUrl: resources.dlqUrl,
      secretsFile,
      devSecrets,
      simulators,
      eventsFile,
      region: LOCAL_AWS.region,
      urls,
      reconcile: reconcilePolicy(options),
      smsRelay:
        relay && resources.relay
          ? {
              sender: relay.sender,
              queueUrl: resources.relay.queueUrl,
              dlqUrl: resources.relay.dlqUrl,
              ...(relay.simulated ? { simulated: relay.simulated } : {}),
              ...(relay.endpoint ? { endpoint: relay.endpoint } : {}),
              settings: relaySettings(options, relay.sender),
            }
          : null,
    };
    // The owner's alone: it holds the callback URLs, tokens from the secrets file in their paths
    // (the banner shortens them and points here). chmod too: a mode only applies to a new file.
    writeFileSync(runtimeInfoPath(options.dataDir), `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
    chmodSync(runtimeInfoPath(options.dataDir), 0o600);
    stops.addFirst(async () => rmSync(runtimeInfoPath(options.dataDir), { force: true }));
    if (resources.waiting > 0) {
      createLogger({ service: 'worker', write: options.write }).info('callbacks queued before this start are being processed', { count: resources.waiting });
    }
    return { info, stop: () => stops.all() };
  } catch (error) {
    await stops.all();
    throw error;
  }
}

/** The HTTP port, bound before anything starts; one that is taken fails the start, naming the way out. */
async function bindHttpPort(port: number): Promise<LocalHttpApi> {
  try {
    return await openHttpApi(port);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    throw new Error(`port ${port} on 127.0.0.1 is in use (another npm start?); choose one with --port N or PORT=N`, { cause: error });
  }
}

/** Whether a process with this pid is running (signal 0 checks without signalling). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A killed process nobody has reaped yet (a zombie: a container whose init does not reap) still
  // answers signal 0; it is not running.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

export type { DynamoDbLocal };
