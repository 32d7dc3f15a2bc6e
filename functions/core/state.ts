import type { Outcome } from '../providers/provider.ts';

/** TemboPlus's verdict on a callback's claim. */
export type ConfirmationKind = 'confirmed' | 'mismatch' | 'not_found';

/** The state item: one per (provider, subject), holding the latest status. */
export interface StateItem {
  readonly provider: string;
  readonly subjectId: string;
  /** The provider's own status value; absent until a claim has been applied. */
  readonly status?: string;
  readonly outcome: Outcome;
  readonly terminal: boolean;
  /** Provider time of the status (receive time when the provider sends none). */
  readonly statusAt?: string;
  readonly updatedAt: string;
  /** Distinct callbacks seen for this subject. */
  readonly eventCount: number;
  /** Sortable position of the applied status: a status only replaces one with a lower key. */
  readonly orderKey?: string;
  /** Short hashes of the event keys counted so far, so a redelivery never counts twice. */
  readonly eventHashes: readonly string[];
  /** Optimistic-locking version. */
  readonly version: number;
  readonly confirmation?: ConfirmationKind;
  readonly confirmedStatus?: string;
  readonly confirmedAt?: string;
}

/** A status ready to be placed (after confirmation, for providers that confirm). */
export interface PlacedStatus {
  readonly status: string;
  readonly outcome: Outcome;
  readonly terminal: boolean;
  readonly statusAt: string;
  readonly rank: number;
}

/** What one distinct callback contributes to its subject's state. */
export interface StateChange {
  readonly provider: string;
  readonly subjectId: string;
  readonly eventHash: string;
  /** The status to place; absent when the claim is not to be applied (TemboPlus not_found). */
  readonly placed?: PlacedStatus;
  readonly confirmation?: ConfirmationKind;
}

/**
 * Sortable key: terminal before anything else, then the provider's rank, then provider time, then
 * the status text and outcome (so equal-time ties resolve the same way whatever the arrival order).
 */
export function orderKey(placed: PlacedStatus): string {
  const tier = placed.terminal ? 1 : 0;
  const rank = String(placed.rank + 100).padStart(3, '0');
  return `${tier}|${rank}|${placed.statusAt}|${placed.status}|${placed.outcome}`;
}

/**
 * The next state after one event, or undefined when it changes nothing (already counted).
 * A status moves only forward (`orderKey`), so late and reordered callbacks never undo a newer one.
 */
export function applyEvent(current: StateItem | undefined, change: StateChange, now: string): StateItem | undefined {
  if (current?.eventHashes.includes(change.eventHash)) return undefined;
  const base: StateItem = current ?? {
    provider: change.provider,
    subjectId: change.subjectId,
    outcome: 'pending',
    terminal: false,
    updatedAt: now,
    eventCount: 0,
    eventHashes: [],
    version: 0,
  };
  let next: StateItem = {
    ...base,
    updatedAt: now,
    eventCount: base.eventCount + 1,
    eventHashes: [...base.eventHashes, change.eventHash],
    version: base.version + 1,
  };
  const placed = change.placed;
  if (placed) {
    const key = orderKey(placed);
    if (base.orderKey === undefined || key > base.orderKey) {
      next = {
        ...next,
        status: placed.status,
        outcome: placed.outcome,
        terminal: placed.terminal,
        statusAt: placed.statusAt,
        orderKey: key,
        ...(change.confirmation ? { confirmation: change.confirmation, confirmedStatus: placed.status, confirmedAt: now } : {}),
      };
    } else if (key === base.orderKey && change.confirmation === 'confirmed' && base.confirmation !== 'confirmed') {
      // The status in place came from TemboPlus's answer to a stale callback (a mismatch); a callback
      // claiming that same status has now been confirmed, so the state no longer reports a mismatch.
      next = { ...next, confirmation: 'confirmed', confirmedStatus: placed.status, confirmedAt: now };
    }
  } else if (change.confirmation && base.status === undefined) {
    // Nothing believed yet for this subject: record that the provider denied knowing it.
    next = { ...next, confirmation: change.confirmation, confirmedAt: now };
  }
  return next;
}
