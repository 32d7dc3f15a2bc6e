import { randomUUID } from 'node:crypto';
import { DynamoDBClient, GetItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { SQSEvent } from 'aws-lambda';
import { createDynamoStore } from '../functions/adapters/dynamo-store.ts';
import { lookupAnswer } from '../functions/core/ask.ts';
import { keys, RETENTION, TABLE } from '../functions/core/pipeline-definition.ts';
import { QueueMessageSchema, RecheckMessageSchema } from '../functions/core/queue-message.ts';
import { processRecheck } from '../functions/core/recheck.ts';
import { DEFAULT_RECONCILE, withRecheck, type RecheckContext } from '../functions/core/reconcile.ts';
import { createSecretCache } from '../functions/core/secrets.ts';
import type { StateItem } from '../functions/core/state.ts';
import { stateItem } from '../functions/core/store.ts';
import { sweep } from '../functions/core/sweep.ts';
import { processMessage, type WorkerDependencies } from '../functions/core/worker.ts';
import { sweepDependencies } from '../functions/handlers/dependencies.ts';
import { createIngestHandler } from '../functions/handlers/ingest.ts';
import { createWorkerHandler } from '../functions/handlers/worker.ts';
import { providers } from '../functions/providers/index.ts';
import { canAsk, lookupLimitsOf, type AnyProvider } from '../functions/providers/provider.ts';
import { createLogger } from '../functions/shared/log.ts';
import { ensureTable, LOCAL_AWS, startDynamoDbLocal } from '../local/engines.ts';
import { authenticRequest, listSamples, type SampleRequest } from '../local/samples.ts';
import { secretsFor, type ProviderKit } from '../test/providers/index.ts';
import { readRequest, subjectLife } from '../test/support/faults-traffic.ts';
import { apiGatewayEvent, RUN_ID } from './callbacks.ts';
import { average, recordingStore, units, type Op, type RequestUnits } from './dynamo.ts';
import { askedKits, inProcessEndpoint, unpaced } from './status-endpoints.ts';
import { median, progress, round } from './stats.ts';
import { CONDITION_FAILED, STUB_QUEUE_URL, stubDynamoClient, stubSqsClient } from './stub-aws.ts';

/**
 * Section 6: what confirming and reconciling cost, measured the way section 5 measures callbacks.
 * For every provider the worker can ask (TeleSign's opt-in `statusLookup` turned on), against
 * DynamoDB Local with real items and the real code:
 *
 * - how many requests one ask makes of the status endpoint, per kind of subject (the kit's
 *   simulation plays the provider's refusals: TeleSign's messaging endpoint does not know a Verify
 *   reference, so the question goes on to the verify endpoint);
 * - confirmation on arrival: what the worker reads and writes for a callback because it asks;
 * - subjects living their kit's life: the first callback (not final) arrives and is confirmed, the
 *   sweep finds it due and leases it, a re-check asks (for some providers the first ask), a second
 *   finds it unchanged, the provider's endpoint moves to the final status, and a third re-check
 *   settles it. Every DynamoDB request is recorded and
 *   sized (both indexes included);
 * - the CPU of a re-check (the worker handler on re-check messages, the network stubbed, the status
 *   endpoint answered in-process and unpaced) and of the sweep (per sweep, and per subject leased);
 * - the re-check schedule a subject goes through, from the real scheduler (`withRecheck`) with the
 *   provider's own first delay and horizon.
 */

const TABLE_NAME = 'bench-recheck';
/** Subjects per provider whose life is recorded. */
const LIVES = 6;

export interface AskKind {
  /** Requests one ask makes of the provider's status endpoint. */
  readonly requests: number;
  /** The samples whose subject takes that many. */
  readonly samples: readonly string[];
}

export interface ProviderReconciliation {
  readonly lives: number;
  /** Requests per ask, by the kind of subject (from the provider's samples); 0: the callback is not asked about. */
  readonly askKinds: readonly AskKind[];
  /** Confirmation on arrival, per callback (the provider's samples): status requests, and the reads and writes asking adds. */
  readonly arrival: {
    readonly samples: number;
    readonly statusRequests: number;
    /** The claim read (whether it was confirmed before; only for a redelivery), the answer's event item, a verdict on a redelivered claim. */
    readonly confirmation: RequestUnits;
    /** Everything the callback's arrival cost, for comparison. */
    readonly all: RequestUnits;
  };
  /** The sweep's share per subject: its byRecheck entry in the query's page, and the lease. */
  readonly sweep: { readonly entryBytes: number; readonly lease: RequestUnits };
  /** A re-check that finds the status unchanged, and one that finds it final. */
  readonly unchanged: RequestUnits & { readonly statusRequests: number };
  readonly settling: RequestUnits & { readonly statusRequests: number };
  /** Worker CPU per re-check (unchanged), ns, and its log line. */
  readonly cpuNs: number;
  readonly logBytes: number;
  /** Minutes after the first callback at which a subject that never becomes final is re-checked (the last one marks it stale). */
  readonly scheduleMinutes: readonly number[];
  readonly firstAfterSeconds: number;
  readonly horizonHours: number;
  /** Status requests the worker starts per second per instance (its pacing). */
  readonly perSecond: number;
}

export interface SweepCompute {
  /** Queries per sweep: two pages (the due end, the far end) per shard per provider in the registry. */
  readonly queriesPerSweep: number;
  /** CPU of a sweep that finds nothing due, ns. */
  readonly idleNs: number;
  /** CPU per subject leased and queued, ns. */
  readonly perSubjectNs: number;
  /** Bytes of the sweep's log line (one per sweep that finds something). */
  readonly logBytes: number;
}

export interface ReconciliationBenchResult {
  readonly policy: { readonly intervalsSeconds: readonly number[]; readonly shards: number; readonly horizonHours: number };
  readonly providers: Record<string, ProviderReconciliation>;
  readonly sweep: SweepCompute;
}

const silent = createLogger({ service: 'bench', write: () => undefined });

/** Queue messages for requests, made by the real ingest handler. */
async function queueMessages(provider: AnyProvider, secret: Record<string, unknown>, requests: readonly SampleRequest[]): Promise<string[]> {
  const messages: string[] = [];
  const handler = createIngestHandler(provider, {
    secrets: createSecretCache(async () => JSON.stringify(secret)),
    send: async (body) => void messages.push(body),
    log: silent,
  });
  for (const request of requests) {
    const response = await handler(apiGatewayEvent(provider, request));
    if (response.statusCode !== 200) throw new Error(`${provider.id}: ingest refused a bench callback: ${response.statusCode} ${response.body}`);
  }
  return messages;
}

const cpuNs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) * 1000;
};

async function cpuPerOp(op: () => Promise<unknown>, warmup: number, blocks: number, perBlock: number): Promise<number> {
  for (let i = 0; i < warmup; i++) await op();
  const samples: number[] = [];
  for (let block = 0; block < blocks; block++) {
    const started = cpuNs();
    for (let i = 0; i < perBlock; i++) await op();
    samples.push((cpuNs() - started) / perBlock);
  }
  return median(samples);
}

/** Re-check times (minutes after the first callback) of a subject the provider never reports final, from the real scheduler. */
function scheduleMinutes(state: StateItem, context: Omit<RecheckContext, 'now'>): number[] {
  const start = Date.parse(state.createdAt ?? state.updatedAt);
  const times: number[] = [];
  let current = state;
  while (current.recheckAt !== undefined && !current.stale && times.length < 100) {
    const at = Date.parse(current.recheckAt);
    times.push(round((at - start) / 60_000, 1));
    current = withRecheck(current, { ...context, now: new Date(at) }, 'recheck');
  }
  return times;
}

async function measureProvider(kit: ProviderKit, secrets: Record<string, Record<string, unknown>>, client: DynamoDBClient, options: { blocks: number }): Promise<ProviderReconciliation> {
  const { provider } = kit;
  const raw = secrets[provider.id];
  const secret = provider.secretSchema.parse(raw);
  const endpoint = inProcessEndpoint(kit, raw, { refusals: true });
  const ops: Op[] = [];
  const plain = createDynamoStore(client, TABLE_NAME);
  const store = recordingStore(plain, ops);
  let clock = Date.now();
  const deps: WorkerDependencies = {
    store,
    secrets: createSecretCache(async () => JSON.stringify(raw)),
    lookup: { fetch: endpoint.fetch, timeoutMs: 5000, newRequestId: randomUUID },
    now: () => new Date(clock),
    log: silent,
    retention: RETENTION,
  };
  const samples = listSamples(provider.id);

  // Requests per ask, per kind of subject.
  const byRequests = new Map<number, string[]>();
  for (const [index, sample] of samples.entries()) {
    const content = kit.withSubject(sample, `bench-${RUN_ID}-k-${index}`);
    const { payload, facts } = readRequest(provider, authenticRequest(provider, raw, content), secret);
    let requests = 0;
    if (canAsk(provider, secret) && (provider.asksAbout?.(payload) ?? true) && facts.placesStatus !== false) {
      endpoint.tell(kit.statusAnswer!(content));
      const before = endpoint.requests();
      const answer = await unpaced(provider, () => lookupAnswer(provider, { subjectId: facts.subjectId, ...(facts.part === undefined ? {} : { part: facts.part }) }, secret, deps));
      if (answer.kind !== 'found') throw new Error(`${provider.id}: the simulated endpoint did not find ${sample.name}'s subject (${answer.kind})`);
      requests = endpoint.requests() - before;
    }
    byRequests.set(requests, [...(byRequests.get(requests) ?? []), sample.name]);
  }
  const askKinds = [...byRequests].sort((a, b) => a[0] - b[0]).map(([requests, names]) => ({ requests, samples: names }));

  // Lives: the first callback (not final) arrives, confirmed by an endpoint that says the same.
  const lives = Array.from({ length: LIVES }, (_, i) => subjectLife(kit, secrets, `bench-${RUN_ID}-life-${i}`));
  for (const life of lives) endpoint.tell(kit.statusAnswer!(life.callbacks[0].content));
  const firstMessages = await queueMessages(provider, raw, lives.map((life) => life.callbacks[0].request));
  for (const message of firstMessages) await unpaced(provider, () => processMessage(QueueMessageSchema.parse(JSON.parse(message)), deps));
  const statesOf = async () => Promise.all(lives.map(async (life) => (await plain.getState(provider.id, life.callbacks[0].subjectId))!));
  const arrived = await statesOf();
  for (const state of arrived) {
    if (!state.recheckAt) throw new Error(`${provider.id}: a subject whose first callback is not final has no re-check scheduled (${state.status})`);
  }

  // The sweep, when they are due: a page of the byRecheck index per shard, a lease per subject.
  const sweepOnce = async (states: readonly StateItem[]) => {
    clock = Math.max(...states.map((state) => Date.parse(state.recheckAt!))) + 1000;
    ops.length = 0;
    const queued: string[] = [];
    const result = await sweep([provider], { store, enqueue: async (batch) => void queued.push(...batch.map((message) => message.body)), now: () => new Date(clock), log: silent });
    if (result.providers[provider.id].claimed !== LIVES) throw new Error(`${provider.id}: the sweep leased ${result.providers[provider.id].claimed} of ${LIVES} due subjects`);
    const recorded = [...ops];
    // The re-checks run within the minute, as the sweep's delays spread them: mid-way on average.
    clock += 30_000;
    return { queued, ops: recorded };
  };
  const recheckAll = async (bodies: readonly string[], expect: (result: Awaited<ReturnType<typeof processRecheck>>) => boolean, what: string) => {
    const measured: (RequestUnits & { statusRequests: number })[] = [];
    for (const body of bodies) {
      ops.length = 0;
      const before = endpoint.requests();
      const result = await unpaced(provider, () => processRecheck(RecheckMessageSchema.parse(JSON.parse(body)), deps));
      if (!expect(result)) throw new Error(`${provider.id}: a re-check that should ${what} gave ${JSON.stringify(result)}`);
      measured.push({ ...units(ops), statusRequests: endpoint.requests() - before });
    }
    const mean = average(measured);
    return { ...mean, statusRequests: round(measured.reduce((sum, m) => sum + m.statusRequests, 0) / measured.length, 2) };
  };

  const first = await sweepOnce(arrived);
  const leases = first.ops.filter((op) => op.kind === 'lease');
  const entryBytes = round(first.ops.filter((op) => op.kind === 'query').reduce((sum, op) => sum + op.bytes, 0) / LIVES, 0);
  // The first re-check may be the first ask (a callback that reports no status is not asked about on
  // arrival); the second finds what the first found: that one is the unchanged re-check.
  await recheckAll(first.queued, (r) => r.kind === 'rechecked' && r.asked === 'found' && !r.settled && !r.stale, 'find it not final');
  const second = await sweepOnce(await statesOf());
  // The states as leased, for the CPU run's stubbed reads.
  const rawStates = await Promise.all(
    lives.map(async (life) => {
      const { Item } = await client.send(new GetItemCommand({ TableName: TABLE_NAME, Key: marshall(keys.state(provider.id, life.callbacks[0].subjectId)), ConsistentRead: true }));
      return Item!;
    }),
  );
  const unchanged = await recheckAll(second.queued, (r) => r.kind === 'rechecked' && r.asked === 'found' && !r.stateChanged && !r.settled && !r.stale, 'find it unchanged');
  for (const life of lives) endpoint.tell(life.answer!.answer);
  const third = await sweepOnce(await statesOf());
  const settling = await recheckAll(third.queued, (r) => r.kind === 'rechecked' && r.asked === 'found' && r.settled, 'settle it');

  // Confirmation on arrival (after the lives, whose sweeps must find only them): each sample about
  // a subject of its own, the endpoint agreeing with it.
  const arrivalContents = samples.map((sample, index) => kit.withSubject(sample, `bench-${RUN_ID}-a-${index}`));
  for (const content of arrivalContents) endpoint.tell(kit.statusAnswer!(content));
  const arrivalMessages = await queueMessages(provider, raw, arrivalContents.map((content) => authenticRequest(provider, raw, content)));
  const confirmation: RequestUnits[] = [];
  const all: RequestUnits[] = [];
  const arrivalRequests = endpoint.requests();
  for (const message of arrivalMessages) {
    ops.length = 0;
    await unpaced(provider, () => processMessage(QueueMessageSchema.parse(JSON.parse(message)), deps));
    const stateWrite = ops.findIndex((op) => op.kind === 'put-state');
    // Asking's own requests: the claim read before the state write (was it confirmed already? read
    // only when the state may hold the claim: a redelivery, so none for these new claims), the
    // answer's event item, a verdict update.
    const asking = ops.filter((op, i) => (op.kind === 'get-event' && (stateWrite < 0 || i < stateWrite)) || (op.kind === 'put-event' && op.sk?.startsWith('EVENT#answer|')) || op.kind === 'update-event');
    confirmation.push(units(asking));
    all.push(units(ops));
  }
  const arrival = {
    samples: arrivalMessages.length,
    statusRequests: round((endpoint.requests() - arrivalRequests) / arrivalMessages.length, 2),
    confirmation: average(confirmation),
    all: average(all),
  };

  // CPU of an unchanged re-check: the worker handler, batches of 10, the store answering the leased state.
  const cpu = await recheckCpu(kit, raw, lives.map((life) => life.callbacks[0].content), second.queued, rawStates, options.blocks);

  const limits = lookupLimitsOf(provider, secret);
  return {
    lives: LIVES,
    askKinds,
    arrival,
    sweep: { entryBytes, lease: average(leases.map((op) => units([op]))) },
    unchanged,
    settling,
    cpuNs: cpu.ns,
    logBytes: cpu.logBytes,
    scheduleMinutes: scheduleMinutes(arrived[0], { askable: true, limits, policy: DEFAULT_RECONCILE }),
    firstAfterSeconds: limits?.firstAfterSeconds ?? 0,
    horizonHours: Math.min(limits?.horizonHours ?? Number.POSITIVE_INFINITY, DEFAULT_RECONCILE.horizonHours),
    perSecond: provider.lookupLimits?.perSecond ?? 10,
  };
}

/** Worker CPU per re-check: re-check messages through the real handler, DynamoDB stubbed with the leased states, the endpoint in-process. */
async function recheckCpu(
  kit: ProviderKit,
  secret: Record<string, unknown>,
  pending: readonly { body?: Buffer; query?: string }[],
  bodies: readonly string[],
  states: readonly Record<string, AttributeValue>[],
  blocks: number,
): Promise<{ ns: number; logBytes: number }> {
  const { provider } = kit;
  const endpoint = inProcessEndpoint(kit, secret);
  for (const content of pending) endpoint.tell(kit.statusAnswer!(content));
  const byKey = new Map(states.map((item) => [`${item.pk.S}|${item.sk.S}`, item]));
  const dynamo = stubDynamoClient((operation, input) => {
    // The answer's event item is there already (the same answer as last time): its put is refused.
    if (operation === 'PutItem') return (input.Item as Record<string, { S?: string }>).sk.S?.startsWith('EVENT#answer|') ? CONDITION_FAILED : {};
    if (operation !== 'GetItem') return {};
    const key = input.Key as Record<string, { S: string }>;
    const item = byKey.get(`${key.pk.S}|${key.sk.S}`);
    return item ? { Item: item } : {};
  });
  let logBytes = 0;
  let lines = 0;
  const counting = { on: false };
  const handler = createWorkerHandler({
    deps: {
      store: createDynamoStore(dynamo, TABLE_NAME),
      secrets: createSecretCache(async () => JSON.stringify(secret)),
      lookup: { fetch: endpoint.fetch, timeoutMs: 5000, newRequestId: randomUUID },
      now: () => new Date(),
      log: createLogger({
        service: 'worker',
        write: (line) => {
          if (!counting.on) return;
          logBytes += Buffer.byteLength(line) + 1;
          lines++;
        },
      }),
      retention: RETENTION,
    },
  });
  const event: SQSEvent = {
    Records: Array.from({ length: 10 }, (_, i) => ({
      messageId: `r${i}`,
      receiptHandle: 'r',
      body: bodies[i % bodies.length],
      attributes: { ApproximateReceiveCount: '1', SentTimestamp: '0', SenderId: 'bench', ApproximateFirstReceiveTimestamp: '0' },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:callbacks',
      awsRegion: 'us-east-1',
    })),
  };
  const op = async () => {
    const result = await handler(event);
    if (result.batchItemFailures.length > 0) throw new Error(`${provider.id}: re-checks failed in the stubbed run`);
  };
  return unpaced(provider, async () => {
    counting.on = true;
    await op();
    counting.on = false;
    const perBatch = await cpuPerOp(op, 100, blocks, 20);
    return { ns: round(perBatch / 10, 0), logBytes: round(logBytes / Math.max(1, lines), 0) };
  });
}

/** The sweep's CPU through its real dependencies (network stubbed): idle, and with `due` subjects in one shard. */
async function sweepCpu(entries: readonly Record<string, AttributeValue>[], blocks: number): Promise<SweepCompute> {
  let due: Record<string, AttributeValue>[] = [];
  let queries = 0;
  const dynamo = stubDynamoClient((operation, input) => {
    if (operation !== 'Query') return {};
    queries++;
    const shard = ((input.ExpressionAttributeValues as Record<string, { S: string }>)[':shard']).S;
    // Due subjects at the index's near end; its far end (re-checks set too far ahead) holds none.
    const items = shard === `${providers[0].id}#0` && input.ScanIndexForward !== false ? due : [];
    return { Items: items, Count: items.length, ScannedCount: items.length };
  });
  let logBytes = 0;
  const deps = sweepDependencies({
    dynamo,
    tableName: TABLE_NAME,
    sqs: stubSqsClient(),
    queueUrl: STUB_QUEUE_URL,
    periodSeconds: 60,
    write: (line) => void (logBytes = Buffer.byteLength(line) + 1),
  });
  const run = () => sweep(providers, deps);
  await run();
  const queriesPerSweep = queries;
  const idleNs = await cpuPerOp(run, 50, blocks, 20);
  const count = 100;
  due = Array.from({ length: count }, (_, i) => {
    const entry = entries[i % entries.length];
    return { ...entry, pk: { S: `${entry.pk.S}-${i}` } };
  });
  const busyNs = await cpuPerOp(run, 10, blocks, 4);
  return { queriesPerSweep, idleNs: round(idleNs, 0), perSubjectNs: round((busyNs - idleNs) / count, 0), logBytes };
}

/** The byRecheck index entry of a state, as the sweep's query returns it. */
function recheckEntry(state: StateItem): Record<string, AttributeValue> {
  const item = stateItem(state);
  const index = TABLE.recheckIndex;
  const names: string[] = [TABLE.partitionKey, TABLE.sortKey, index.partitionKey, index.sortKey, ...index.projected];
  return marshall(Object.fromEntries(names.filter((name) => item[name] !== undefined).map((name) => [name, item[name]])), { removeUndefinedValues: true });
}

export async function measureReconciliation(options: { blocks: number }): Promise<ReconciliationBenchResult> {
  // Every provider that can be asked is asked: TeleSign's opt-in statusLookup is on.
  const secrets = secretsFor('bench', { asks: true });
  progress('reconciliation: starting DynamoDB Local (in memory)');
  const engine = await startDynamoDbLocal();
  const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint: engine.endpoint });
  try {
    await ensureTable(client, TABLE_NAME);
    const results: Record<string, ProviderReconciliation> = {};
    const entries: Record<string, AttributeValue>[] = [];
    for (const kit of askedKits()) {
      const secret = kit.provider.secretSchema.parse(secrets[kit.provider.id]);
      if (!canAsk(kit.provider, secret)) continue;
      progress(`reconciliation: ${kit.provider.id}`);
      results[kit.provider.id] = await measureProvider(kit, secrets, client, options);
      const life = subjectLife(kit, secrets, `bench-${RUN_ID}-life-0`);
      const state = await createDynamoStore(client, TABLE_NAME).getState(kit.provider.id, life.callbacks[0].subjectId);
      if (state) entries.push(recheckEntry({ ...state, recheckShard: `${providers[0].id}#0`, recheckAt: new Date(0).toISOString() }));
    }
    progress('reconciliation: sweep CPU');
    const sweepResult = await sweepCpu(entries, options.blocks);
    return {
      policy: { intervalsSeconds: DEFAULT_RECONCILE.intervalsSeconds, shards: DEFAULT_RECONCILE.shards, horizonHours: DEFAULT_RECONCILE.horizonHours },
      providers: results,
      sweep: sweepResult,
    };
  } finally {
    client.destroy();
    await engine.stop();
  }
}
