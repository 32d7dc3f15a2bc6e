import { randomUUID } from 'node:crypto';
import { DynamoDBClient, GetItemCommand, PutItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { createLogger } from '../functions/shared/log.ts';
import { RETENTION, TABLE } from '../functions/core/pipeline-definition.ts';
import { QueueMessageSchema } from '../functions/core/queue-message.ts';
import { createSecretCache } from '../functions/core/secrets.ts';
import { createDynamoStore } from '../functions/adapters/dynamo-store.ts';
import { stateItem, type CallbackStore, type DueRecheck, type Item } from '../functions/core/store.ts';
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
/**
 * What DynamoDB adds to each item's size for storage billing: "a per-item storage overhead of 100
 * bytes to account for indexing" (https://aws.amazon.com/dynamodb/pricing/on-demand/, Data storage).
 */
const ITEM_OVERHEAD_BYTES = 100;

/** The state item's global secondary indexes: an entry exists when both key attributes do. */
const INDEXES = [TABLE.outcomeIndex, TABLE.recheckIndex] as const;
export type IndexName = (typeof INDEXES)[number]['name'];

/** One index's entry of an item: its key (to tell a moved entry) and the entry's content and size. */
interface IndexEntry {
  readonly key: string;
  readonly json: string;
  readonly bytes: number;
}

/**
 * What each index holds of a state item: the table's keys, the index's keys and the projected
 * attributes. `byRecheck` is sparse: a settled state has no `recheckShard`, hence no entry.
 */
function indexEntries(item: Item | undefined): Partial<Record<IndexName, IndexEntry>> {
  const entries: Partial<Record<IndexName, IndexEntry>> = {};
  if (!item) return entries;
  for (const index of INDEXES) {
    if (item[index.partitionKey] === undefined || item[index.sortKey] === undefined) continue;
    const names: string[] = [TABLE.partitionKey, TABLE.sortKey, index.partitionKey, index.sortKey, ...index.projected];
    const entry = Object.fromEntries(names.filter((name) => item[name] !== undefined).map((name) => [name, item[name]]));
    entries[index.name] = { key: `${String(item[index.partitionKey])}|${String(item[index.sortKey])}`, json: JSON.stringify(entry), bytes: itemSize(marshall(entry, MARSHALL)) };
  }
  return entries;
}

/**
 * WRUs of an item write on its indexes: an entry added or removed is one write, a moved entry (a
 * changed index key: an outcome or a re-check time) a delete and a put, and a changed projected
 * attribute a put; an index whose entry is unchanged is not written (projection INCLUDE).
 */
function indexWrites(before: Partial<Record<IndexName, IndexEntry>>, after: Partial<Record<IndexName, IndexEntry>>): Record<IndexName, number> {
  const units = {} as Record<IndexName, number>;
  for (const { name } of INDEXES) {
    const old = before[name];
    const now = after[name];
    const entry = (e: IndexEntry) => wru(e.bytes + GSI_OVERHEAD_BYTES);
    if (!old && !now) units[name] = 0;
    else if (!old) units[name] = entry(now!);
    else if (!now) units[name] = entry(old);
    else if (old.key !== now.key) units[name] = entry(old) + entry(now);
    else units[name] = old.json === now.json ? 0 : entry(now);
  }
  return units;
}

export interface RequestUnits {
  readonly reads: number;
  readonly writes: number;
  readonly rru: number;
  /** Base-table WRUs. */
  readonly wru: number;
  /** WRUs of the GSIs (`byOutcome` and `byRecheck`: a changed index key is a delete plus a put). */
  readonly gsiWru: number;
  /** The same, per index. */
  readonly gsiWruByIndex: Record<IndexName, number>;
  readonly eventItemBytes: number;
  readonly stateItemBytes: number;
  /**
   * Base-table WRUs beyond one per write: what items over 1 KB add (a write is billed 1 WRU per KB
   * started, by the larger of the old and new item).
   */
  readonly overKbWru: number;
  /** The largest item a base-table write wrote or replaced, bytes (over several requests: the largest of all). */
  readonly largestWriteBytes: number;
  /**
   * What the items this request created take in the table over their lives, in byte-days: each
   * new item's size plus DynamoDB's 100 B of overhead per item, times the days until its TTL
   * (`expiresAt`) removes it. Items without a TTL (states) are left out: they are kept until
   * deleted, a cost per subject and month rather than per callback.
   */
  readonly storedByteDays: number;
}

export interface ProviderWrites {
  /**
   * One callback of a subject's life, over every callback of the kit's lives (test/providers: a
   * subject's callbacks oldest first, as the provider sends them): what the cost model uses.
   */
  readonly perCallback: RequestUnits;
  /** The first callback of a life (its subject new). */
  readonly firstOfLife: RequestUnits;
  /** A later callback of a life, about a subject that already has a state item. */
  readonly laterCallback: RequestUnits;
  /** Callbacks per life (the mean over the lives). */
  readonly callbacksPerSubject: number;
  readonly lives: number;
  /** Each of the provider's samples as a callback about a new subject (every kind of callback it sends; for information). */
  readonly newSubject: RequestUnits;
  readonly samples: number;
}

/** One request the recording store saw, with what it takes to count its units. */
export interface Op {
  readonly kind: 'put-event' | 'get-event' | 'get-state' | 'put-state' | 'update-event' | 'lease' | 'query';
  /** The item's size (a write: the new item; a query: the entries returned). */
  readonly bytes: number;
  /** The item it replaced (state writes and leases: they cost by the larger of the two). */
  readonly oldBytes?: number;
  /** An eventually consistent read (half the units). */
  readonly eventual?: boolean;
  /** The item's sort key (event items), so a caller can tell the claim from the provider's answer. */
  readonly sk?: string;
  /** A new item with a TTL: the days until it expires. */
  readonly keptDays?: number;
  readonly entries?: Partial<Record<IndexName, IndexEntry>>;
  readonly oldEntries?: Partial<Record<IndexName, IndexEntry>>;
}

/**
 * A store that records every request the worker, the re-check or the sweep makes, sized from the
 * real items. Reads it needs to size a lease or a query's page go to `inner` and are not recorded.
 */
export function recordingStore(inner: CallbackStore, ops: Op[]): CallbackStore {
  let lastState: Op | undefined;
  /** A page of the byRecheck index, recorded as one query sized by its entries. */
  async function recheckPage(page: DueRecheck[]): Promise<DueRecheck[]> {
    let bytes = 0;
    for (const item of page) bytes += indexEntries(await inner.getItem(item.key)).byRecheck?.bytes ?? 0;
    ops.push({ kind: 'query', bytes });
    return page;
  }
  return {
    async putOnce(item) {
      const result = await inner.putOnce(item);
      const expires = item[TABLE.ttlAttribute];
      const keptDays = result === 'created' && typeof expires === 'number' ? Math.max(0, expires - Date.now() / 1000) / 86_400 : undefined;
      ops.push({ kind: 'put-event', bytes: itemSize(marshall(item, MARSHALL)), sk: String(item.sk), ...(keptDays === undefined ? {} : { keptDays }) });
      return result;
    },
    async getItem(key, options) {
      const item = await inner.getItem(key, options);
      ops.push({ kind: 'get-event', bytes: item ? itemSize(marshall(item, MARSHALL)) : 0, eventual: options?.consistent === false, sk: key.sk });
      return item;
    },
    async getState(provider, subjectId, part) {
      const state = await inner.getState(provider, subjectId, part);
      const item = state ? stateItem(state) : undefined;
      lastState = { kind: 'get-state', bytes: item ? itemSize(marshall(item, MARSHALL)) : 0, entries: indexEntries(item) };
      ops.push(lastState);
      return state;
    },
    async putState(state, expectedVersion) {
      const result = await inner.putState(state, expectedVersion);
      const item = stateItem(state);
      ops.push({ kind: 'put-state', bytes: itemSize(marshall(item, MARSHALL)), oldBytes: lastState?.bytes ?? 0, entries: indexEntries(item), oldEntries: lastState?.entries ?? {} });
      return result;
    },
    async recordVerdict(key, verdict) {
      const before = await inner.getItem(key);
      await inner.recordVerdict(key, verdict);
      const after = await inner.getItem(key);
      ops.push({ kind: 'update-event', bytes: after ? itemSize(marshall(after, MARSHALL)) : 0, oldBytes: before ? itemSize(marshall(before, MARSHALL)) : 0, sk: key.sk });
    },
    async dueRechecks(shard, now, limit) {
      return recheckPage(await inner.dueRechecks(shard, now, limit));
    },
    async farRechecks(shard, after, limit) {
      // A page from the index's far end, every sweep: empty but for a re-check set too far ahead (rare).
      return recheckPage(await inner.farRechecks(shard, after, limit));
    },
    async eventStoredBy(prefix, requestId) {
      // Rare (a redelivered late report): counted as one page of keys.
      ops.push({ kind: 'query', bytes: 0 });
      return inner.eventStoredBy(prefix, requestId);
    },
    async claimRecheck(key, seen, leaseUntil) {
      const before = await inner.getItem(key);
      const won = await inner.claimRecheck(key, seen, leaseUntil);
      const after = won ? { ...before, [TABLE.recheckIndex.sortKey]: leaseUntil } : before;
      const size = (item: Item | undefined) => (item ? itemSize(marshall(item, MARSHALL)) : 0);
      ops.push({ kind: 'lease', bytes: size(after), oldBytes: size(before), entries: indexEntries(after), oldEntries: indexEntries(before) });
      return won;
    },
    // Rare (an item no re-check can find, taken off the schedule once): not counted.
    dropRecheck: (key, seen) => inner.dropRecheck(key, seen),
  };
}

/**
 * Request units of recorded requests, by DynamoDB's rules: a write costs by the larger of the old
 * and new item (a conditional write that fails too), a consistent read 1 per 4 KB, an eventually
 * consistent one (and a query of an index) half; a query by the total size of the page it returns.
 */
export function units(ops: readonly Op[]): RequestUnits {
  let reads = 0, writes = 0, rru = 0, wruTotal = 0, overKbWru = 0, largestWriteBytes = 0, eventItemBytes = 0, stateItemBytes = 0, storedByteDays = 0;
  const byIndex = Object.fromEntries(INDEXES.map(({ name }) => [name, 0])) as Record<IndexName, number>;
  for (const op of ops) {
    if (op.kind === 'get-event' || op.kind === 'get-state') {
      reads++;
      rru += op.eventual ? rruConsistent(op.bytes) / 2 : rruConsistent(op.bytes);
    } else if (op.kind === 'query') {
      reads++;
      rru += rruConsistent(op.bytes) / 2;
    } else if (op.kind === 'put-event' || op.kind === 'update-event') {
      writes++;
      wruTotal += wru(Math.max(op.bytes, op.oldBytes ?? 0));
      overKbWru += wru(Math.max(op.bytes, op.oldBytes ?? 0)) - 1;
      largestWriteBytes = Math.max(largestWriteBytes, op.bytes, op.oldBytes ?? 0);
      eventItemBytes = op.bytes;
      storedByteDays += (op.bytes + ITEM_OVERHEAD_BYTES) * (op.keptDays ?? 0);
    } else {
      writes++;
      wruTotal += wru(Math.max(op.bytes, op.oldBytes ?? 0));
      overKbWru += wru(Math.max(op.bytes, op.oldBytes ?? 0)) - 1;
      largestWriteBytes = Math.max(largestWriteBytes, op.bytes, op.oldBytes ?? 0);
      if (op.kind === 'put-state') stateItemBytes = op.bytes;
      const gsi = indexWrites(op.oldEntries ?? {}, op.entries ?? {});
      for (const { name } of INDEXES) byIndex[name] += gsi[name];
    }
  }
  const gsiWru = Object.values(byIndex).reduce((sum, n) => sum + n, 0);
  return { reads, writes, rru, wru: wruTotal, gsiWru, gsiWruByIndex: byIndex, eventItemBytes, stateItemBytes, overKbWru, largestWriteBytes, storedByteDays: round(storedByteDays, 0) };
}

/** The mean of several requests' units. */
export const average = (list: readonly RequestUnits[]): RequestUnits => {
  const mean = (pick: (u: RequestUnits) => number) => round(list.reduce((sum, u) => sum + pick(u), 0) / Math.max(1, list.length), 2);
  return {
    reads: mean((u) => u.reads),
    writes: mean((u) => u.writes),
    rru: mean((u) => u.rru),
    wru: mean((u) => u.wru),
    gsiWru: mean((u) => u.gsiWru),
    gsiWruByIndex: Object.fromEntries(INDEXES.map(({ name }) => [name, mean((u) => u.gsiWruByIndex[name])])) as Record<IndexName, number>,
    eventItemBytes: mean((u) => u.eventItemBytes),
    stateItemBytes: mean((u) => u.stateItemBytes),
    overKbWru: mean((u) => u.overKbWru),
    largestWriteBytes: list.reduce((most, u) => Math.max(most, u.largestWriteBytes), 0),
    storedByteDays: round(list.reduce((sum, u) => sum + u.storedByteDays, 0) / Math.max(1, list.length), 0),
  };
};

/**
 * Run the real worker core over each provider's queue messages against the real engine, recording
 * every read and write: each sample once, about a new subject; then the kit's lives, each life's
 * callbacks in order about one subject.
 */
export async function recordWorkerWrites(options: {
  endpoint: string;
  tableName: string;
  provider: AnyProvider;
  secret: unknown;
  /** Queue messages (JSON) of the provider's samples, each with a distinct subject. */
  messages: readonly string[];
  /** Queue messages of the kit's lives: each life's callbacks, oldest first, about one subject. */
  lives: readonly (readonly string[])[];
  /**
   * Called before each callback of a life: a status endpoint the worker asks must know what the
   * callback claims (the provider's state moved on too), or the worker would wait for it to catch up.
   */
  beforeLifeCallback?: (life: number, index: number) => Promise<void>;
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
  const first: RequestUnits[] = [];
  const later: RequestUnits[] = [];
  for (const [life, messages] of options.lives.entries()) {
    for (const [index, message] of messages.entries()) {
      await options.beforeLifeCallback?.(life, index);
      (index === 0 ? first : later).push(await run(message));
    }
  }
  client.destroy();
  template = { event: template.event, state: template.state };
  const callbacks = first.length + later.length;
  return {
    writes: {
      perCallback: average([...first, ...later]),
      firstOfLife: average(first),
      laterCallback: later.length ? average(later) : average(first),
      callbacksPerSubject: round(callbacks / Math.max(1, options.lives.length), 2),
      lives: options.lives.length,
      newSubject: average(fresh),
      samples: options.messages.length,
    },
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
