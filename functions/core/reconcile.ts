import type { LookupLimits } from '../providers/provider.ts';
import { shortHash } from '../shared/hash.ts';
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
}

/** About 1 min, 5 min, 30 min, 2 h, 12 h, 24 h, 48 h. */
export const DEFAULT_RECONCILE: ReconcilePolicy = {
  intervalsSeconds: [60, 300, 1_800, 7_200, 43_200, 86_400, 172_800],
  shards: 4,
  leaseSeconds: 300,
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

/** Whether nothing is left to learn about a subject: a terminal status, confirmed where the provider can be asked. */
export function settled(state: StateItem, askable: boolean): boolean {
  return state.terminal && (!askable || state.confirmation === 'confirmed');
}

/** When a subject's reconciliation started: its expectation, else its first write. */
function since(state: StateItem): number {
  return Date.parse(state.expectedAt ?? state.createdAt ?? state.updatedAt);
}

function without(state: StateItem, ...names: (keyof StateItem)[]): StateItem {
  const copy: Record<string, unknown> = { ...state };
  for (const name of names) delete copy[name];
  return copy as unknown as StateItem;
}

/**
 * The state with its next re-check set, cleared, or marked stale.
 * - `event`: a callback (or an expectation) just moved it. A pending re-check keeps its time (a
 *   burst of callbacks does not push it back); a settled subject needs none.
 * - `recheck`: it was just asked about: the next delay of the schedule, or stale once the schedule
 *   or the provider's horizon is over.
 * A provider that cannot be asked is re-checked only for an expected subject nothing has arrived for.
 */
export function withRecheck(state: StateItem, context: RecheckContext, reason: 'event' | 'recheck'): StateItem {
  const { askable, policy, now } = context;
  const waitingForFirst = state.expectedAt !== undefined && state.status === undefined;
  if (settled(state, askable) || (!askable && !waitingForFirst)) {
    return state.recheckAt === undefined && !state.stale ? state : without(state, 'recheckAt', 'recheckShard', 'stale', 'staleAt');
  }
  if (state.stale) return state;
  if (reason === 'event' && state.recheckAt !== undefined) return state;

  const rechecks = reason === 'recheck' ? (state.rechecks ?? 0) + 1 : (state.rechecks ?? 0);
  const horizonMs = context.limits?.horizonHours === undefined ? Number.POSITIVE_INFINITY : context.limits.horizonHours * 3_600_000;
  const delaySeconds = Math.max(policy.intervalsSeconds[rechecks] ?? Number.NaN, rechecks === 0 ? (context.limits?.firstAfterSeconds ?? 0) : 0);
  const next = now.getTime() + delaySeconds * 1000;
  if (!Number.isFinite(delaySeconds) || next - since(state) > horizonMs) {
    // The schedule is over (or the provider stops answering before the next one): stale, listed for a person.
    return { ...state, rechecks, stale: true, staleAt: now.toISOString(), recheckShard: staleShard(state.provider), recheckAt: now.toISOString() };
  }
  return {
    ...state,
    rechecks,
    recheckAt: new Date(next).toISOString(),
    recheckShard: recheckShard(state.provider, state.subjectId, state.part, policy.shards),
  };
}

/** A re-check on the queue: the subject to ask about. */
export interface RecheckMessage {
  readonly v: 1;
  readonly kind: 'recheck';
  readonly provider: string;
  readonly subjectId: string;
  readonly part?: string;
  /** When the sweep picked it (ISO-8601). */
  readonly at: string;
}
