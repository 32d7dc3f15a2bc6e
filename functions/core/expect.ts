import type { AnyProvider } from '../providers/provider.ts';
import { unstorableKeyReason } from './events.ts';
import { DEFAULT_RECONCILE, withRecheck, type ReconcilePolicy } from './reconcile.ts';
import type { StateItem, SubjectRef } from './state.ts';
import type { CallbackStore } from './store.ts';

/**
 * Expectations: an application that started a transfer or sent a message tells the gateway to
 * expect it, so a first callback that never arrives is still found. The expectation is a state item
 * with no status yet and a re-check scheduled; from there it is reconciled like any other subject
 * (asked about where the provider can be asked) and ends `stale` if nothing ever confirms it.
 *
 * An application may write the same item itself with the SDK (README, "Expectations"):
 *   pk = "<provider>#<subjectId>", sk = "STATE" (or "STATE#<part>"), provider, subjectId[, part],
 *   expectedAt = now (ISO-8601), recheckShard = "<provider>#0", recheckAt = when to ask first (ISO-8601)
 * with the condition attribute_not_exists(pk), so it never overwrites a state a callback wrote.
 */

export type ExpectResult =
  /** The expectation is stored; the subject is first asked about at `recheckAt`. */
  | { readonly kind: 'expected'; readonly state: StateItem }
  /** The gateway already has a state for the subject (a callback came first, or it was expected before). */
  | { readonly kind: 'known'; readonly state: StateItem };

export class ExpectationError extends Error {
  override readonly name = 'ExpectationError';
}

export async function expectSubject(
  store: CallbackStore,
  provider: AnyProvider,
  subject: Omit<SubjectRef, 'provider'>,
  options: { readonly now: Date; readonly policy?: ReconcilePolicy },
): Promise<ExpectResult> {
  if (subject.part !== undefined && provider.partName === undefined) {
    // No callback or answer of this provider ever writes a part's state: it could only go stale.
    throw new ExpectationError(`${provider.displayName} reports no parts of a subject: expect the subject itself`);
  }
  const problem = unstorableKeyReason({ subjectId: subject.subjectId, part: subject.part, eventKey: 'expected' });
  if (problem) throw new ExpectationError(problem);
  const existing = await store.getState(provider.id, subject.subjectId, subject.part);
  if (existing) return { kind: 'known', state: existing };
  const now = options.now.toISOString();
  const expected: StateItem = {
    provider: provider.id,
    subjectId: subject.subjectId,
    ...(subject.part === undefined ? {} : { part: subject.part }),
    outcome: 'pending',
    terminal: false,
    createdAt: now,
    updatedAt: now,
    changedAt: now,
    expectedAt: now,
    eventCount: 0,
    recent: [],
    seen: 0,
    version: 1,
  };
  // Asked about first after the schedule's first delay (or the provider's own minimum), like a subject a callback created.
  const state = withRecheck(expected, { askable: provider.lookup !== undefined, limits: provider.lookupLimits, policy: options.policy ?? DEFAULT_RECONCILE, now: options.now }, 'event');
  if ((await store.putState(state, undefined)) === 'conflict') {
    const raced = await store.getState(provider.id, subject.subjectId, subject.part);
    if (raced) return { kind: 'known', state: raced };
  }
  return { kind: 'expected', state };
}
