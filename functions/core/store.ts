import { TABLE, keys } from './pipeline-definition.ts';
import { upgradedOrderKey, type StateItem, type Verdict } from './state.ts';

/** An item as stored: plain JS values, keys included. */
export type Item = Record<string, unknown>;
export type ItemKey = { readonly pk: string; readonly sk: string };

/** The worker's view of the table. Expected outcomes are values; faults are DependencyErrors. */
export interface CallbackStore {
  /** Store an item once: `created`, or `exists` if an item with its key is already there. */
  putOnce(item: Item): Promise<'created' | 'exists'>;
  /** One item; `consistent: false` halves the read cost where a just-written item may be missed. */
  getItem(key: ItemKey, options?: { consistent?: boolean }): Promise<Item | undefined>;
  getState(provider: string, subjectId: string, part?: string): Promise<StateItem | undefined>;
  /** Write a state item if nobody else wrote it since `expectedVersion` was read. */
  putState(state: StateItem, expectedVersion: number | bigint | undefined): Promise<'written' | 'conflict'>;
  /** Record a new verdict on a stored callback's claim (and count the ask). */
  recordVerdict(key: ItemKey, verdict: Verdict & { askedAt: string }): Promise<void>;
  /** States of one `byRecheck` partition whose re-check is due (`recheckAt` ≤ `now`), oldest first. */
  dueRechecks(shard: string, now: string, limit: number): Promise<DueRecheck[]>;
  /**
   * States of one `byRecheck` partition whose `recheckAt` sorts after `after` (as text), furthest
   * first: re-checks further ahead than any the gateway sets, read from the index's far end.
   */
  farRechecks(shard: string, after: string, limit: number): Promise<DueRecheck[]>;
  /**
   * Lease a due re-check: move its `recheckAt` to `leaseUntil` if it still is `seen` (so two sweeps
   * never both enqueue it, and a lost message is picked again when the lease ends). The sweep moves
   * a re-check set too far ahead back to the schedule the same way.
   */
  claimRecheck(key: ItemKey, seen: string, leaseUntil: string): Promise<boolean>;
  /**
   * Take an item off the schedule: remove its `recheckAt` and `recheckShard` (the `byRecheck`
   * index) if `recheckAt` still is `seen`, leaving the rest of it as it is; false if it moved since.
   */
  dropRecheck(key: ItemKey, seen: string): Promise<boolean>;
  /**
   * The key of the event item that the request `requestId` stored under `key`'s sort key prefix
   * (a consistent query of the subject's items), if any: how a redelivered report of the current
   * status (Identomat) finds the key it was first stored under, once a later change has moved on.
   */
  eventStoredBy(prefix: ItemKey, requestId: string): Promise<ItemKey | undefined>;
}

/** A state due for a re-check, as the `byRecheck` index lists it. */
export interface DueRecheck {
  readonly key: ItemKey;
  readonly provider: string;
  readonly subjectId: string;
  readonly part?: string;
  readonly recheckAt: string;
  /** Re-checks done so far (the index projects it). */
  readonly rechecks: number;
}

/** Attributes that exist for keys and the index, derived from the state's own fields. */
export function stateItem(state: StateItem): Item {
  return {
    ...keys.state(state.provider, state.subjectId, state.part),
    [TABLE.outcomeIndex.partitionKey]: keys.outcome(state.provider, state.outcome),
    ...state,
  };
}

/** The state's own fields of a stored state item. */
export function stateOf(item: Item): StateItem {
  const { pk, sk, providerOutcome: _po, ...state } = item;
  // An item an application wrote to expect a subject may hold only the documented fields, and its
  // key is what says which subject it is: a `part` or `subjectId` left out or mistyped must not make
  // the next write land on another item.
  const { part: _part, ...attributes } = state;
  const subject = keys.stateSubject(String(pk), String(sk));
  const named = subject ? { ...attributes, ...subject } : state;
  // Nor does such an item hold `createdAt`: its `expectedAt` (the application's write) stands for it
  // from the first write on. A status change's eventId includes it, and without it the first change
  // of each life of the key (a table created anew, the subject expected again) took one id.
  const created = named.createdAt === undefined && typeof named.expectedAt === 'string' ? { createdAt: named.expectedAt } : {};
  // Its count of re-checks as the sweep reads it from the index (`recheckCount`): held as text ("0"),
  // it never equalled the count the re-check message carries, and every re-check was skipped as one
  // whose lease was taken over, the subject asked about never again.
  const counted = named.rechecks === undefined ? {} : { rechecks: recheckCount(named.rechecks) };
  // The gateway's own bookkeeping, as a program that wrote the item may have left it: `recent` not a
  // list (null), a count as text or past 2^53 (read as a BigInt). Each observation pushed onto it, or
  // counted with `+ 1`, threw (or spelled "31" for "3"), and every callback and re-check of the
  // subject failed its receives into the DLQ. Read as none remembered, and as the counts they say
  // (none, for one that is no count).
  const recent = Array.isArray(named.recent) ? { recent: named.recent.filter((hash) => typeof hash === 'string') } : { recent: [] };
  const counts = Object.fromEntries(
    (['seen', 'eventCount', 'changes', 'recheckFaults'] as const).flatMap((name) => (named[name] === undefined ? [] : [[name, recheckCount(named[name])]])),
  );
  const read = { outcome: 'pending', terminal: false, eventCount: 0, seen: 0, version: 0, ...created, ...named, ...counted, ...recent, ...counts } as unknown as StateItem;
  const orderKey = upgradedOrderKey(read);
  return orderKey === read.orderKey ? read : { ...read, orderKey };
}

/**
 * A state's `rechecks` (or another of its counts) as a count: an item written by hand or by another
 * program may hold it as text or as something that is no count at all (then none done). The sweep's read of the index and
 * every read of the state go through this one function, so the count a re-check message carries is
 * the one its state is compared with.
 */
export function recheckCount(value: unknown): number {
  const count = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : typeof value === 'bigint' ? Number(value) : 0;
  // Past 2^53 no count at all either: written back, the SDK's marshall refuses it (every write failed).
  return Number.isFinite(count) && count >= 0 && count <= Number.MAX_SAFE_INTEGER ? Math.floor(count) : 0;
}
