import { randomUUID } from 'node:crypto';
import { DynamoDBClient, GetItemCommand, PutItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { createLogger } from '../functions/shared/log.ts';
import { RETENTION, TABLE } from '../functions/core/pipeline-definition.ts';
import { QueueMessageSchema } from '../functions/core/queue-message.ts';
import { createSecretCache } from '../functions/core/secrets.ts';
import { createDynamoStore } from '../functions/adapters/dynamo-store.ts';
import { stateItem, type CallbackStore, type Item } from '../functions/core/store.ts';
import { processMessage } from '../functions/core/worker.ts';
import type { AnyProvider } from '../functions/providers/provider.ts';
import { percentile, round } from './stats.ts';

/**
 * DynamoDB for the benchmark: the worker's real reads and writes per callback (counted and sized
 * from real items against DynamoDB Local), and the raw rate of the engine for the same requests.
 */

const MARSHALL = { removeUndefinedValues: true, convertClassInstanceToMap: false } as const;

/** Size of a number as DynamoDB counts it: about 1 byte per 2 significant digits, plus 1. */
function numberSize(text: string): number {
  const digits = text.replace(/^-/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  return Math.ceil(Math.max(1, digits.length) / 2) + 1;
}

function valueSize(value: AttributeValue): number {
  if (value.S !== undefined) return Buffer.byteLength(value.S);
  if (value.N !== undefined) return numberSize(value.N);
  if (value.B !== undefined) return value.B.length;
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.SS) return value.SS.reduce((sum, s) => sum + Buffer.byteLength(s), 0);
  if (value.NS) return value.NS.reduce((sum, n) => sum + numberSize(n), 0);
  // Lists and maps: 3 bytes, plus 1 byte per element, plus the elements (and map keys).
  if (value.L) return 3 + value.L.reduce((sum, element) => sum + 1 + valueSize(element), 0);
  if (value.M) return 3 + Object.entries(value.M).reduce((sum, [name, element]) => sum + 1 + Buffer.byteLength(name) + valueSize(element), 0);
  return 0;
}

/**
 * Item size by DynamoDB's published rules (attribute names + values).
 * @see https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
 */
export function itemSize(item: Record<string, AttributeValue>): number {
  return Object.entries(item).reduce((sum, [name, value]) => sum + Buffer.byteLength(name) + valueSize(value), 0);
}

/** Write request units of a write of `bytes` (1 per KB started). */
export const wru = (bytes: number) => Math.max(1, Math.ceil(bytes / 1024));
/** Read request units of a strongly consistent read (1 per 4 KB started; a miss still costs 1). */
export const rruConsistent = (bytes: number) => Math.max(1, Math.ceil(bytes / 4096));
/** A GSI entry: the keys and projected attributes plus DynamoDB's 100 bytes of index overhead. */
const GSI_OVERHEAD_BYTES = 100;

/** What the `byOutcome` index holds of a state item (its keys and projected attributes). */
function indexEntry(item: Item): Item {
  const { partitionKey, sortKey, projected } = TABLE.outcomeIndex;
  const names: string[] = [TABLE.partitionKey, TABLE.sortKey, partitionKey, sortKey, ...projected];
  return Object.fromEntries(names.filter((name) => item[name] !== undefined).map((name) => [name, item[name]]));
}

export interface RequestUnits {
  readonly reads: number;
  readonly writes: number;
  readonly rru: number;
  /** Base-table WRUs. */
  readonly wru: number;
  /** WRUs of the GSI (state items are indexed; a changed index key is a delete plus a put). */
  readonly gsiWru: number;
  readonly eventItemBytes: number;
  readonly stateItemBytes: number;
}

export interface ProviderWrites {
  /** A callback about a subject seen for the first time (the benchmark's load: every subject new). */
  readonly newSubject: RequestUnits;
  /** A later callback about a subject that already has a state item. */
  readonly laterCallback: RequestUnits;
  readonly samples: number;
}

interface Op {
  kind: 'put-event' | 'get-event' | 'get-state' | 'put-state' | 'update-event';
  bytes: number;
  oldBytes?: number;
  oldIndexKey?: string;
  indexKey?: string;
  /** The index entry as JSON: an unchanged entry is not rewritten (projection INCLUDE). */
  oldIndexEntry?: string;
  indexEntry?: string;
  indexBytes?: number;
  oldIndexBytes?: number;
}

function recordingStore(inner: CallbackStore, ops: Op[]): CallbackStore {
  return {
    async putOnce(item) {
      const result = await inner.putOnce(item);
      ops.push({ kind: 'put-event', bytes: itemSize(marshall(item, MARSHALL)) });
      return result;
    },
    async getItem(key, options) {
      const item = await inner.getItem(key, options);
      // An eventually consistent read costs half.
      ops.push({ kind: 'get-event', bytes: item ? itemSize(marshall(item, MARSHALL)) : 0, ...(options?.consistent === false ? { oldBytes: -1 } : {}) });
      return item;
    },
    async getState(provider, subjectId, part) {
      const state = await inner.getState(provider, subjectId, part);
      const item = state ? stateItem(state) : undefined;
      const entry = item ? indexEntry(item) : undefined;
      ops.push({
        kind: 'get-state',
        bytes: item ? itemSize(marshall(item, MARSHALL)) : 0,
        indexKey: item ? `${item.providerOutcome}|${item.changedAt}` : undefined,
        indexEntry: entry ? JSON.stringify(entry) : undefined,
        indexBytes: entry ? itemSize(marshall(entry, MARSHALL)) : 0,
      });
      return state;
    },
    async putState(state, expectedVersion) {
      const result = await inner.putState(state, expectedVersion);
      const item = stateItem(state);
      const entry = indexEntry(item);
      const previous = [...ops].reverse().find((op) => op.kind === 'get-state');
      ops.push({
        kind: 'put-state',
        bytes: itemSize(marshall(item, MARSHALL)),
        oldBytes: previous?.bytes ?? 0,
        oldIndexKey: previous?.indexKey,
        indexKey: `${item.providerOutcome}|${item.changedAt}`,
        oldIndexEntry: previous?.indexEntry,
        indexEntry: JSON.stringify(entry),
        oldIndexBytes: previous?.indexBytes,
        indexBytes: itemSize(marshall(entry, MARSHALL)),
      });
      return result;
    },
    async recordVerdict(key, verdict) {
      await inner.recordVerdict(key, verdict);
      ops.push({ kind: 'update-event', bytes: 1024 });
    },
    dueRechecks: (shard, now, limit) => inner.dueRechecks(shard, now, limit),
    claimRecheck: (key, seen, leaseUntil) => inner.claimRecheck(key, seen, leaseUntil),
  };
}

function units(ops: readonly Op[]): RequestUnits {
  let reads = 0, writes = 0, rru = 0, wruTotal = 0, gsiWru = 0, eventItemBytes = 0, stateItemBytes = 0;
  for (const op of ops) {
    if (op.kind === 'get-event' || op.kind === 'get-state') {
      reads++;
      rru += op.oldBytes === -1 ? rruConsistent(op.bytes) / 2 : rruConsistent(op.bytes);
    } else if (op.kind === 'put-event' || op.kind === 'update-event') {
      writes++;
      wruTotal += wru(op.bytes);
      eventItemBytes = op.bytes;
    } else {
      writes++;
      // A put replacing an item costs by the larger of the two.
      wruTotal += wru(Math.max(op.bytes, op.oldBytes ?? 0));
      stateItemBytes = op.bytes;
      const entry = wru((op.indexBytes ?? 0) + GSI_OVERHEAD_BYTES);
      if (!op.oldIndexKey) gsiWru += entry;
      else if (op.oldIndexKey !== op.indexKey) gsiWru += entry + wru((op.oldIndexBytes ?? 0) + GSI_OVERHEAD_BYTES);
      else if (op.oldIndexEntry !== op.indexEntry) gsiWru += entry;
      // else: nothing projected changed, the index entry is not written.
    }
  }
  return { reads, writes, rru, wru: wruTotal, gsiWru, eventItemBytes, stateItemBytes };
}

const average = (list: readonly RequestUnits[]): RequestUnits => {
  const mean = (pick: (u: RequestUnits) => number) => round(list.reduce((sum, u) => sum + pick(u), 0) / list.length, 2);
  return {
    reads: mean((u) => u.reads),
    writes: mean((u) => u.writes),
    rru: mean((u) => u.rru),
    wru: mean((u) => u.wru),
    gsiWru: mean((u) => u.gsiWru),
    eventItemBytes: mean((u) => u.eventItemBytes),
    stateItemBytes: mean((u) => u.stateItemBytes),
  };
};

/**
 * Run the real worker core over each provider's queue messages against the real engine, recording
 * every read and write. Each message once with a new subject, then each again as a later callback
 * of an existing subject (a different sample with the same subject id).
 */
export async function recordWorkerWrites(options: {
  endpoint: string;
  tableName: string;
  provider: AnyProvider;
  secret: unknown;
  /** Queue messages (JSON) of the provider's samples, each with a distinct subject. */
  messages: readonly string[];
  /** The same samples, all about one subject, in order. */
  sameSubjectMessages: readonly string[];
  /**
   * Called before each of them: a status endpoint the worker asks must know what each later
   * callback claims (the provider's state moved on too), or the worker would wait for it to catch up.
   */
  beforeSameSubject?: (index: number) => Promise<void>;
}): Promise<{ writes: ProviderWrites; templates: { event: Record<string, AttributeValue>; state: Record<string, AttributeValue> } }> {
  const client = new DynamoDBClient({ region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, endpoint: options.endpoint });
  const ops: Op[] = [];
  const store = recordingStore(createDynamoStore(client, options.tableName), ops);
  let template: { event?: Item; state?: Item } = {};
  const capture: CallbackStore = {
    ...store,
    putOnce: async (item) => ((template.event ??= item), store.putOnce(item)),
    putState: async (state, version) => ((template.state ??= stateItem(state)), store.putState(state, version)),
  };
  const deps = {
    store: capture,
    secrets: createSecretCache(async () => JSON.stringify(options.secret)),
    lookup: { fetch, timeoutMs: 5000, newRequestId: randomUUID },
    now: () => new Date(),
    log: createLogger({ service: 'worker', write: () => undefined }),
    retention: RETENTION,
  };
  const run = async (message: string) => {
    ops.length = 0;
    await processMessage(QueueMessageSchema.parse(JSON.parse(message)), deps);
    return units(ops);
  };
  const fresh: RequestUnits[] = [];
  for (const message of options.messages) fresh.push(await run(message));
  const later: RequestUnits[] = [];
  for (const [index, message] of options.sameSubjectMessages.entries()) {
    await options.beforeSameSubject?.(index);
    const result = await run(message);
    if (index > 0) later.push(result);
  }
  client.destroy();
  template = { event: template.event, state: template.state };
  return {
    writes: { newSubject: average(fresh), laterCallback: later.length ? average(later) : average(fresh), samples: options.messages.length },
    templates: { event: marshall(template.event!, MARSHALL), state: marshall(template.state!, MARSHALL) },
  };
}

export interface EngineRate {
  readonly sequences: number;
  readonly concurrency: number;
  /** Completed (state get + state put + event put) sequences per second: callbacks the engine allows. */
  readonly callbacksPerSecond: number;
  readonly requestsPerSecond: number;
  readonly sequenceP50Ms: number;
  readonly sequenceP99Ms: number;
}

/**
 * The raw rate of the engine for what one callback needs, in the worker's order: a consistent
 * GetItem of the state, a conditional PutItem of the state, a conditional PutItem of the event —
 * issued by `concurrency` loops with the same SDK, with real item shapes, each callback a new subject.
 */
export async function measureEngineRate(options: {
  endpoint: string;
  tableName: string;
  templates: readonly { event: Record<string, AttributeValue>; state: Record<string, AttributeValue> }[];
  sequences: number;
  concurrency: number;
}): Promise<EngineRate> {
  const client = new DynamoDBClient({ region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, endpoint: options.endpoint });
  const prefix = randomUUID().slice(0, 8);
  const condition = { ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': TABLE.partitionKey } };
  const durations: number[] = [];
  let next = 0;
  const sequence = async (i: number) => {
    const template = options.templates[i % options.templates.length];
    const pk = { S: `engine-${prefix}#${i}` };
    await client.send(new GetItemCommand({ TableName: options.tableName, Key: { pk, sk: { S: 'STATE' } }, ConsistentRead: true }));
    await client.send(new PutItemCommand({ TableName: options.tableName, Item: { ...template.state, pk }, ...condition }));
    await client.send(new PutItemCommand({ TableName: options.tableName, Item: { ...template.event, pk }, ...condition }));
  };
  // Warm the connections and the engine's code paths.
  await Promise.all(Array.from({ length: options.concurrency }, (_, i) => sequence(options.sequences + i)));
  const started = performance.now();
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (next < options.sequences) {
        const i = next++;
        const t = performance.now();
        await sequence(i);
        durations.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  client.destroy();
  return {
    sequences: options.sequences,
    concurrency: options.concurrency,
    callbacksPerSecond: round(options.sequences / seconds, 0),
    requestsPerSecond: round((options.sequences * 3) / seconds, 0),
    sequenceP50Ms: round(percentile(durations, 50), 1),
    sequenceP99Ms: round(percentile(durations, 99), 1),
  };
}
