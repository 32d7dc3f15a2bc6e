import type { LookupLimits } from '../providers/provider.ts';
import { shortHash } from '../shared/hash.ts';
import { FUTURE_TOLERANCE_MS } from './events.ts';
import type { StateItem } from './state.ts';

/**
 * Reconciliation: a subject whose status is not final yet is asked about again on a back-off
 * schedule, until the provider reports a terminal status (and, where it can be asked, confirms it)
 * or the horizon passes; then it is `stale`. Subjects due for a re-check are found through the
 * sparse `byRecheck` index (`recheckShard`, `recheckAt`), which a scheduled sweep reads: no
 * long-running process of ours.
 */

/** How often a subject is asked again, and how the due ones are spread over index partitions. */
export interface ReconcilePolicy {
  /** Delays before the 1st, 2nd, … re-check, in seconds; after the last, a subject still not final is stale. */
  readonly intervalsSeconds: readonly number[];
  /** Index partitions per provider, so a busy provider's due subjects do not share one hot key. */
  readonly shards: number;
  /** How long a swept subject is leased to its re-check before the sweep may pick it again. */
  readonly leaseSeconds: number;
  /**
   * The longest a subject is reconciled, for providers whose docs give no horizon of their own: a
   * status endpoint that keeps failing delays the schedule (re-checks that fail do not count) until then.
   */
  readonly horizonHours: number;
  /** Longest wait before asking again after a fault of the status endpoint (the back-off doubles up to it). */
  readonly faultBackoffCapSeconds: number;
  /**
   * Whether a provider's own minimum delay before the first ask (`firstAfterSeconds`: eSMS 1 min,
   * TeleSign 5 min) holds. Only a schedule shortened for a demo or a test (`--reconcile-schedule`)
   * turns it off. @default true
   */
  readonly providerFirstDelays?: boolean;
}

/** About 1 min, 5 min, 30 min, 2 h, 12 h, 24 h, 48 h. */
export const DEFAULT_RECONCILE: ReconcilePolicy = {
  intervalsSeconds: [60, 300, 1_800, 7_200, 43_200, 86_400, 172_800],
  shards: 4,
  leaseSeconds: 300,
  horizonHours: 7 * 24,
  faultBackoffCapSeconds: 1_800,
};

/** `recheckShard` of a subject: `<provider>#<0…shards-1>`; stale subjects are listed under `<provider>#stale`. */
export function recheckShard(provider: string, subjectId: string, part: string | undefined, shards: number): string {
  const n = Number.parseInt(shortHash(`${subjectId}|${part ?? ''}`).slice(0, 8), 16) % Math.max(1, shards);
  return `${provider}#${n}`;
}
export const staleShard = (provider: string) => `${provider}#stale`;

/** Parse `--reconcile-schedule 2s,4s,8s` / `1m,5m,30m,2h`: seconds, minutes, hours or days. */
export function parseSchedule(text: string): number[] {
  const intervals = text.split(',').map((part) => {
    const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(part);
    if (!match) throw new Error(`"${part}" is not a delay such as 30s, 5m, 2h or 1d`);
    const factor = { ms: 0.001, s: 1, m: 60, h: 3_600, d: 86_400 }[match[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
    return Number(match[1]) * factor;
  });
  if (intervals.some((seconds) => !(seconds > 0))) throw new Error('every delay must be greater than 0');
  return intervals;
}

export interface RecheckContext {
  /** Whether the provider can be asked (it has `lookup` and the secret holds its credentials). */
  readonly askable: boolean;
  readonly limits?: LookupLimits;
  readonly policy: ReconcilePolicy;
  readonly now: Date;
}

/**
 * Whether nothing is left to learn about a subject: a terminal status, confirmed where the provider
 * can be asked, and no claim since that the provider could not be asked about.
 */
export function settled(state: StateItem, askable: boolean): boolean {
  return state.terminal && (!askable || (state.confirmation === 'confirmed' && state.unansweredClaimAt === undefined));
}

/** How long a subject is reconciled: the provider's horizon, within the policy's. */
function horizonMs(context: RecheckContext): number {
  return Math.min(context.limits?.horizonHours ?? Number.POSITIVE_INFINITY, context.policy.horizonHours) * 3_600_000;
}

/**
 * When a subject's reconciliation started: a claim nobody could judge on a subject that was settled
 * (a reversal days later gets a horizon of its own), else its expectation, else its first write.
 */
function since(state: StateItem, now: Date): number {
  // The first of them that is a time, and one that has come: an expectation an application wrote
  // may hold `expectedAt` as epoch milliseconds, years ahead, or leave it out (then `createdAt` is
  // the first re-check's, see recheck.ts).
  for (const at of [state.unansweredClaimAt, state.expectedAt, state.createdAt, state.updatedAt]) {
    if (isTime(at, now)) return Date.parse(at);
  }
  return Number.NaN;
}

/** Whether a state's field holds a time `since` can count from: one not ahead of `now` (beyond a clock's drift). */
export function isTime(value: unknown, now: Date): value is string {
  return typeof value === 'string' && Date.parse(value) <= now.getTime() + FUTURE_TOLERANCE_MS;
}

function without(state: StateItem, ...names: (keyof StateItem)[]): StateItem {
  const copy: Record<string, unknown> = { ...state };
  for (const name of names) delete copy[name];
  return copy as unknown as StateItem;
}

/**
 * The state with its next re-check set, cleared, or marked stale.
 * - `event`: a callback (or an expectation) just moved it. A pending re-check keeps its time (a
 *   burst of callbacks does not push it back), if it is one the gateway could have set
 *   (`pendingKept`); a settled subject needs none.
 * - `recheck`: it was just asked about: the next delay of the schedule, or stale once the schedule
 *   or the provider's horizon is over. A step that would pass the horizon is shortened to a last ask
 *   just before it (`LAST_ASK_WITHIN_HORIZON`), not skipped.
 * A provider that cannot be asked is re-checked only for an expected subject nothing has arrived for.
 */
export function withRecheck(state: StateItem, context: RecheckContext, reason: 'event' | 'recheck'): StateItem {
  const { askable, policy, now } = context;
  const waitingForFirst = state.expectedAt !== undefined && state.status === undefined;
  if (settled(state, askable) || (!askable && !waitingForFirst)) {
    if (state.recheckAt === undefined && !state.stale) return state;
    const cleared = without(state, 'recheckAt', 'recheckShard', 'stale', 'staleAt', 'recheckFaults', 'recheckFault');
    // No longer stale is a change of what the state says, dated like going stale.
    return state.stale ? { ...cleared, changedAt: now.toISOString() } : cleared;
  }
  // Stale is listed for a person, off the schedule: one marked stale but left in a schedule's shard
  // (by another program that set `stale` alone) was leased by every sweep, asked about and logged
  // stale again, for ever.
  if (state.stale) return state.recheckShard === staleShard(state.provider) ? state : { ...state, recheckShard: staleShard(state.provider) };
  if (reason === 'event' && state.recheckAt !== undefined && pendingKept(state.recheckAt, context)) return state;

  const rechecks = reason === 'recheck' ? (state.rechecks ?? 0) + 1 : (state.rechecks ?? 0);
  const delaySeconds = nextStepSeconds(rechecks, policy, context.limits);
  const cleared = without(state, 'recheckFaults', 'recheckFault');
  // The schedule is over: stale, listed for a person.
  if (!Number.isFinite(delaySeconds)) return markedStale({ ...cleared, rechecks }, now);
  let next = now.getTime() + delaySeconds * 1000;
  if (next - since(state, now) > horizonMs(context)) {
    // The next step would ask after the provider stops answering (TeleSign: 12 h, its 12 h step comes
    // at 2 h 40 min): asked once more before the horizon instead, then stale.
    const lastAsk = since(state, now) + horizonMs(context) * LAST_ASK_WITHIN_HORIZON;
    if (lastAsk <= now.getTime()) return markedStale({ ...cleared, rechecks }, now);
    next = lastAsk;
  }
  return { ...cleared, rechecks, recheckAt: new Date(next).toISOString(), recheckShard: recheckShard(state.provider, state.subjectId, state.part, policy.shards) };
}

/**
 * Seconds from now to the next re-check of a subject asked about `rechecks` times: the schedule's
 * next step, never sooner than the provider's own first delay before the first ask; NaN once the
 * schedule is over.
 */
export function nextStepSeconds(rechecks: number, policy: ReconcilePolicy, limits: LookupLimits | undefined): number {
  const providerFirst = rechecks === 0 && policy.providerFirstDelays !== false ? (limits?.firstAfterSeconds ?? 0) : 0;
  return Math.max(policy.intervalsSeconds[rechecks] ?? Number.NaN, providerFirst);
}

/**
 * The latest re-check time (epoch ms) the gateway could set at `now`: the longest wait anything
 * here sets (a step of the schedule, a provider's first delay, a fault's back-off, a Retry-After, a
 * lease), and a clock's drift. A pending `recheckAt` past it was written by someone else (an
 * expectation with a time years ahead, or text that sorts after any time), or under a longer
 * schedule since shortened: a callback replaces it (`pendingKept`), and the sweep looks for such
 * items at the far end of the index and brings them back to the schedule (sweep.ts).
 */
export function latestRecheckSet(policy: ReconcilePolicy, limits: LookupLimits | undefined, now: Date): number {
  const longestSeconds = Math.max(...policy.intervalsSeconds, limits?.firstAfterSeconds ?? 0, policy.faultBackoffCapSeconds * 1.25, MAX_HONOURED_RETRY_AFTER_SECONDS, policy.leaseSeconds);
  return now.getTime() + longestSeconds * 1000 + FUTURE_TOLERANCE_MS;
}

/**
 * Whether a pending re-check time is one the gateway could have set, and so is kept by a callback:
 * a time as `toISOString()` writes it (the sweep compares it as text), no later than
 * `latestRecheckSet`. An expectation an application wrote with `recheckAt` years ahead, or as other
 * text, was kept by every callback: the subject was never asked about (a TemboPlus claim stayed
 * `not_found`), and never went stale. The schedule's own next time is used.
 */
function pendingKept(recheckAt: unknown, context: RecheckContext): boolean {
  if (typeof recheckAt !== 'string') return false;
  const at = Date.parse(recheckAt);
  if (!Number.isFinite(at) || new Date(at).toISOString() !== recheckAt) return false;
  return at <= latestRecheckSet(context.policy, context.limits, context.now);
}

/**
 * A stale subject whose status a callback has just moved on, to one not settled yet (still not
 * final, or final and not confirmed): the transaction is alive after all (a TemboPlus transfer that
 * reached WAITING_ACK after its schedule ended), and its final callback may yet be lost. It is asked
 * about again from the schedule's start, within its horizon, as after a claim the provider could not
 * judge; past the horizon it stays stale as it was (not stale again: the stale alarm counted it
 * once). Should the schedule run out again inside the horizon, it goes stale a second time, counted
 * again: a second time a person should look. A settled status already took it off the stale list.
 */
export function revivedByChange(before: StateItem | undefined, after: StateItem, context: RecheckContext): StateItem {
  if (!before?.stale || !after.stale || (after.status === before.status && after.outcome === before.outcome)) return after;
  const { stale: _stale, staleAt: _staleAt, recheckAt: _recheckAt, recheckShard: _recheckShard, ...alive } = after;
  const revived = withRecheck({ ...alive, rechecks: 0, changedAt: context.now.toISOString() }, context, 'event');
  return revived.stale ? after : revived;
}

/**
 * When, within the horizon, a subject is asked for the last time, as a fraction of it: a provider's
 * horizon counts from its transaction (TeleSign: "you have 12 hours to obtain status results"), ours
 * from the first callback or expectation, which come later. A tenth of the horizon (72 min for
 * TeleSign) for that lag, so the last question is one the provider still answers. (Inferred: no
 * provider publishes how long after a transaction its callback comes.)
 */
export const LAST_ASK_WITHIN_HORIZON = 0.9;

/** Gone stale: a change of what the state says, so `changedAt` (its event's time) moves with it. */
function markedStale(state: StateItem, now: Date): StateItem {
  const at = now.toISOString();
  return { ...state, stale: true, staleAt: at, changedAt: at, recheckShard: staleShard(state.provider), recheckAt: at };
}

/**
 * The longest wait a busy endpoint's `Retry-After` is honoured for: an hour. Rate limits ask for
 * seconds or minutes; one answer asking for days (a misconfigured endpoint, a clock far off) would
 * otherwise hold a subject's confirmation, and a TemboPlus claim unbelieved, all that time. Past it,
 * the endpoint is asked again after an hour, and answers busy again if it still is.
 */
export const MAX_HONOURED_RETRY_AFTER_SECONDS = 3_600;

/**
 * When a provider that said it is busy (429, 503) asked to be asked again (`Retry-After`, in seconds
 * from now, at most MAX_HONOURED_RETRY_AFTER_SECONDS), within the subject's horizon: never past its
 * last ask (`LAST_ASK_WITHIN_HORIZON`), so a provider's long wait does not carry the question past
 * the time it stops answering. Undefined without a Retry-After.
 */
function retryAfterAt(state: StateItem, context: RecheckContext, retryAfterSeconds: number | undefined): number | undefined {
  if (retryAfterSeconds === undefined || !(retryAfterSeconds >= 0)) return undefined;
  const asked = context.now.getTime() + Math.min(retryAfterSeconds, MAX_HONOURED_RETRY_AFTER_SECONDS) * 1000;
  const lastAsk = since(state, context.now) + horizonMs(context) * LAST_ASK_WITHIN_HORIZON;
  return Number.isFinite(lastAsk) ? Math.min(asked, lastAsk) : asked;
}

/**
 * The state with its pending re-check put back to no earlier than the provider's `Retry-After`
 * (capped as `retryAfterAt` says), for a callback stored while the provider's endpoint was busy: a
 * re-check already due later, or none at all, is left as it is.
 */
export function withRecheckNotBefore(state: StateItem, context: RecheckContext, retryAfterSeconds: number | undefined): StateItem {
  const at = retryAfterAt(state, context, retryAfterSeconds);
  if (at === undefined || state.recheckAt === undefined || state.stale || !(Date.parse(state.recheckAt) < at)) return state;
  return { ...state, recheckAt: new Date(at).toISOString() };
}

/**
 * The state after a re-check the provider did not answer (5xx, 429, timeout, a refused credential):
 * asked again after a back-off that doubles from the schedule's first delay up to
 * `faultBackoffCapSeconds`, with jitter so re-checks that failed together do not return together,
 * and never before the provider's `Retry-After` when it sent one (capped at the subject's last ask
 * within its horizon). The failed re-check does not count against the schedule: an outage delays
 * confirmation, it does not make a subject stale, until the horizon.
 */
export function withRecheckFault(
  state: StateItem,
  context: RecheckContext,
  fault: string,
  random: () => number = Math.random,
  retryAfterSeconds?: number,
): StateItem {
  const faults = (state.recheckFaults ?? 0) + 1;
  const base = Math.min(context.policy.intervalsSeconds[0] ?? 60, context.policy.faultBackoffCapSeconds);
  const backoff = Math.min(context.policy.faultBackoffCapSeconds, base * 2 ** (faults - 1));
  const next = Math.max(context.now.getTime() + backoff * (0.75 + random() * 0.5) * 1000, retryAfterAt(state, context, retryAfterSeconds) ?? 0);
  const noted = { ...state, recheckFaults: faults, recheckFault: fault.slice(0, 300) };
  if (next - since(state, context.now) > horizonMs(context)) return markedStale(noted, context.now);
  return { ...noted, recheckAt: new Date(next).toISOString(), recheckShard: recheckShard(state.provider, state.subjectId, state.part, context.policy.shards) };
}
