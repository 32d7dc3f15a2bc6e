import { findProvider } from '../providers/index.ts';
import { lookupLimitsOf, maskSubjectId, type AnyProvider } from '../providers/provider.ts';
import { DependencyError, errorMessage } from '../shared/errors.ts';
import { maskPhoneNumbers, type Logger } from '../shared/log.ts';
import { keys } from './pipeline-definition.ts';
import type { RecheckMessage } from './queue-message.ts';
import { DEFAULT_RECONCILE, latestRecheckSet, nextStepSeconds, type ReconcilePolicy } from './reconcile.ts';
import type { CallbackStore, DueRecheck } from './store.ts';

/**
 * The sweep: every minute (EventBridge Scheduler on AWS, a timer in `npm start`) it lists the
 * subjects whose re-check is due from the sparse `byRecheck` index, leases each (so two sweeps never
 * both enqueue it, and one whose message is lost is picked again when the lease ends), and queues a
 * re-check for the worker. Messages are spread over the sweep's period with SQS delays, so a
 * provider's status endpoint sees a steady trickle, not a burst, however many fall due at once.
 *
 * It also reads each shard from its far end, for a page of items whose `recheckAt` is further ahead
 * than any wait the gateway sets (`latestRecheckSet`): an expectation an application wrote with a
 * time years ahead, or with text that sorts after any time, or a re-check set under a longer
 * schedule since shortened. Each is moved to the schedule's next time (the step its count of
 * re-checks is at, from now), or made due now when that schedule has no step left for it (asked
 * once more, then stale). Without it such a subject was first asked about at that time, if ever.
 */

export interface SweepDependencies {
  readonly store: CallbackStore;
  /**
   * Queue these messages (a batch of at most 10), each after its delay in seconds; throws unless
   * every one was accepted (a DependencyError's `notQueued` says how many were not, when the others were).
   */
  readonly enqueue: (messages: readonly { readonly body: string; readonly delaySeconds: number }[]) => Promise<void>;
  readonly now: () => Date;
  readonly log: Logger;
  /** @default DEFAULT_RECONCILE */
  readonly reconcile?: ReconcilePolicy;
  /** Most subjects picked per provider per sweep; the rest wait for the next one. @default DEFAULT_SWEEP_LIMIT */
  readonly limitPerProvider?: number;
  /** Seconds between sweeps: this sweep's messages are spread over them. @default 60 */
  readonly periodSeconds?: number;
}

/** At most this many re-checks per provider per minute: with its `perSecond` bound, about 8 a second at the worker. */
export const DEFAULT_SWEEP_LIMIT = 500;
/**
 * Most re-checks set too far ahead that a sweep brings back to the schedule, per shard: one page
 * from the index's far end, which costs 0.5 read units when it finds none (and it nearly always
 * does); more wait for the next sweep, a minute later.
 */
export const FAR_RECHECKS_PER_SHARD = 10;
/** Batches the queue refused whole, one after another, after which a sweep stops queuing. */
export const MAX_BATCHES_REFUSED_IN_A_ROW = 2;
/** SQS's largest delay. */
const MAX_DELAY_SECONDS = 900;

export interface SweepResult {
  /** Per provider: due subjects found and leased by this sweep, and re-checks set too far ahead moved back to the schedule. */
  readonly providers: Record<string, { readonly due: number; readonly claimed: number; readonly moved: number }>;
  readonly queued: number;
}

/**
 * At most `limit` of the shards' due subjects, taken from each in turn (oldest first within each):
 * subject ids are the sender's to choose, so a flood hashed to one shard gets that shard's share and
 * never keeps the others' subjects from being asked.
 */
function fairShare(shards: readonly (readonly DueRecheck[])[], limit: number): DueRecheck[] {
  const taken: DueRecheck[] = [];
  for (let n = 0; taken.length < limit && shards.some((shard) => n < shard.length); n++) {
    for (const shard of shards) if (n < shard.length && taken.length < limit) taken.push(shard[n]);
  }
  return taken;
}

/**
 * Why a due item is no subject a re-check can find, or undefined when it is one: the re-check reads
 * the state at `<provider>#<subjectId>`, `STATE` (or `STATE#<part>`), of a provider it knows. An
 * item an application wrote under another key (a mistyped provider, no `<provider>#` before the
 * subject id) was skipped by every re-check and leased again by every sweep after it, for ever.
 */
function notASubject(item: DueRecheck): string | undefined {
  if (!findProvider(item.provider)) return `its key names no known provider ("${maskPhoneNumbers(item.provider.slice(0, 40))}")`;
  const key = keys.state(item.provider, item.subjectId, item.part);
  if (key.pk !== item.key.pk || key.sk !== item.key.sk) return 'its key is not a state\'s ("<provider>#<subjectId>", "STATE" or "STATE#<part>")';
  return undefined;
}

/** Take an item no re-check can find off the schedule, with a line saying why (once: a second sweep finds it gone). */
async function dropNotASubject(item: DueRecheck, reason: string, provider: AnyProvider, deps: SweepDependencies): Promise<void> {
  if (await deps.store.dropRecheck(item.key, item.recheckAt)) {
    deps.log.warn('sweep: not a subject, taken off the schedule', { provider: provider.id, subjectId: maskSubjectId(item.subjectId, provider), reason });
  }
}

/** How many of a batch the queue did not accept: all of it, unless the error says fewer. */
function notQueuedOf(error: unknown, size: number): number {
  const notQueued = error instanceof DependencyError ? error.notQueued : undefined;
  return notQueued !== undefined && Number.isInteger(notQueued) && notQueued >= 0 && notQueued <= size ? notQueued : size;
}

/** `task` for each item, in parallel groups of 10 (one conditional write each): each one's outcome, in order. */
async function inGroups<T, R>(items: readonly T[], task: (item: T) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const settled: PromiseSettledResult<R>[] = [];
  for (let i = 0; i < items.length; i += 10) settled.push(...(await Promise.allSettled(items.slice(i, i + 10).map(task))));
  return settled;
}

/** Shards whose query failed: one ERROR line for the provider, and the first reason (to fail the invocation), if any. */
function unreadShards(settled: readonly PromiseSettledResult<unknown>[], message: string, provider: AnyProvider, deps: SweepDependencies): unknown[] {
  const unread = settled.flatMap((shard) => (shard.status === 'rejected' ? [shard.reason as unknown] : []));
  if (unread.length === 0) return [];
  deps.log.error(message, { provider: provider.id, shards: unread.length, error: errorMessage(unread[0]) });
  return [unread[0]];
}

export async function sweep(providers: readonly AnyProvider[], deps: SweepDependencies): Promise<SweepResult> {
  const policy = deps.reconcile ?? DEFAULT_RECONCILE;
  const limit = deps.limitPerProvider ?? DEFAULT_SWEEP_LIMIT;
  const period = Math.min(deps.periodSeconds ?? 60, MAX_DELAY_SECONDS);
  const now = deps.now();
  const leaseUntil = new Date(now.getTime() + policy.leaseSeconds * 1000).toISOString();
  const counts: Record<string, { due: number; claimed: number; moved: number }> = {};
  const messages: { body: string; delaySeconds: number }[] = [];
  const failures: unknown[] = [];

  for (const provider of providers) {
    const shards = Array.from({ length: policy.shards }, (_, shard) => `${provider.id}#${shard}`);
    const limits = lookupLimitsOf(provider, undefined);
    // One provider's due subjects that cannot be read (a table fault) are read by the next sweep;
    // the other providers' are queued now, and the invocation fails once they are.
    // Each shard on its own: one whose query fails leaves the provider's other shards to be leased.
    // Its far end in the same round: re-checks set further ahead than the gateway ever sets.
    const farAfter = new Date(latestRecheckSet(policy, limits, now)).toISOString();
    const [read, farRead] = await Promise.all([
      Promise.allSettled(shards.map((shard) => deps.store.dueRechecks(shard, now.toISOString(), limit))),
      Promise.allSettled(shards.map((shard) => deps.store.farRechecks(shard, farAfter, FAR_RECHECKS_PER_SHARD))),
    ]);
    failures.push(...unreadShards(read, 'sweep: due re-checks not read', provider, deps));
    failures.push(...unreadShards(farRead, 'sweep: far-off re-checks not read', provider, deps));
    const due = fairShare(
      read.flatMap((shard) => (shard.status === 'fulfilled' ? [shard.value] : [])),
      limit,
    );
    const claimed: DueRecheck[] = [];
    // Leases in small parallel groups: one conditional write each. One that fails (an item an
    // application wrote that DynamoDB refuses to update, a table fault) is logged and thrown once the
    // others are queued: due first in its shard on every sweep, it must not keep every subject after it unasked.
    // An item no re-check can find is taken off the schedule instead, once, with a line saying why.
    const won = await inGroups(due, async (item) => {
      const reason = notASubject(item);
      if (reason === undefined) return deps.store.claimRecheck(item.key, item.recheckAt, leaseUntil);
      await dropNotASubject(item, reason, provider, deps);
      return false;
    });
    due.forEach((item, n) => {
      const lease = won[n];
      if (lease.status === 'fulfilled') {
        if (lease.value) claimed.push(item);
        return;
      }
      failures.push(lease.reason);
      deps.log.error('sweep: lease not taken', { provider: provider.id, subjectId: maskSubjectId(item.subjectId, provider), error: errorMessage(lease.reason) });
    });
    // Re-checks set too far ahead: moved to the schedule's next time (the step their count is at), or
    // to now when the schedule has no step left for them (the next sweep leases it; asked once more,
    // then stale). The same conditional write as a lease, so a callback or re-check that moved it
    // since wins. Not a subject: taken off the schedule as above.
    const far = farRead.flatMap((shard) => (shard.status === 'fulfilled' ? shard.value : []));
    let moved = 0;
    const brought = await inGroups(far, async (item) => {
      const reason = notASubject(item);
      if (reason !== undefined) {
        await dropNotASubject(item, reason, provider, deps);
        return undefined;
      }
      const step = nextStepSeconds(item.rechecks, policy, limits);
      const to = new Date(now.getTime() + (Number.isFinite(step) ? step * 1000 : 0)).toISOString();
      return (await deps.store.claimRecheck(item.key, item.recheckAt, to)) ? to : undefined;
    });
    far.forEach((item, n) => {
      const outcome = brought[n];
      const subjectId = maskSubjectId(item.subjectId, provider);
      if (outcome.status === 'rejected') {
        failures.push(outcome.reason);
        deps.log.error('sweep: far-off re-check not moved', { provider: provider.id, subjectId, error: errorMessage(outcome.reason) });
        return;
      }
      if (outcome.value === undefined) return;
      moved++;
      deps.log.warn('sweep: re-check further ahead than the schedule sets, moved to its next step', {
        provider: provider.id,
        subjectId,
        recheckAt: maskPhoneNumbers(item.recheckAt.slice(0, 40)),
        rechecks: item.rechecks,
        movedTo: outcome.value,
      });
    });
    counts[provider.id] = { due: due.length, claimed: claimed.length, moved };
    claimed.forEach((item, n) => {
      const message: RecheckMessage = {
        v: 1,
        kind: 'recheck',
        provider: item.provider,
        subjectId: item.subjectId,
        ...(item.part === undefined ? {} : { part: item.part }),
        at: now.toISOString(),
        lease: leaseUntil,
        rechecks: item.rechecks,
      };
      messages.push({ body: JSON.stringify(message), delaySeconds: Math.floor((n * period) / Math.max(1, claimed.length)) });
    });
  }

  // A batch the queue refuses leaves its subjects leased: asked once the lease ends. The other
  // batches are still queued.
  let queued = 0;
  let refusedInARow = 0;
  for (let i = 0; i < messages.length; i += 10) {
    // A queue that refused whole batches twice in a row is down: the rest wait out their lease
    // rather than each batch its own bounded retries (a backlog would run the sweep to its timeout).
    if (refusedInARow >= MAX_BATCHES_REFUSED_IN_A_ROW) {
      deps.log.error('sweep: re-checks not queued', { count: messages.length - i, leaseSeconds: policy.leaseSeconds, error: `the queue refused ${refusedInARow} batches in a row` });
      break;
    }
    const batch = messages.slice(i, i + 10);
    try {
      await deps.enqueue(batch);
      queued += batch.length;
      refusedInARow = 0;
    } catch (error) {
      // A batch the queue took in part (SendMessageBatch's `Failed`): the others are queued, and counted so.
      const notQueued = notQueuedOf(error, batch.length);
      queued += batch.length - notQueued;
      refusedInARow = notQueued === batch.length ? refusedInARow + 1 : 0;
      failures.push(error);
      deps.log.error('sweep: re-checks not queued', { count: notQueued, leaseSeconds: policy.leaseSeconds, error: errorMessage(error) });
    }
  }
  const busy = Object.entries(counts).filter(([, count]) => count.due > 0 || count.moved > 0);
  if (busy.length > 0) deps.log.info('sweep', { queued, providers: Object.fromEntries(busy) });
  // The invocation fails (the sweep's Errors alarm), the rest having been queued.
  if (failures.length > 0) throw failures[0];
  return { providers: counts, queued };
}
