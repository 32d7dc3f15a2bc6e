import type { ConfirmationKind, Outcome, StatusDetail } from '../providers/provider.ts';
import { canonicalJson } from '../shared/canonical-json.ts';

export type { ConfirmationKind };

/**
 * How many observations the state remembers by hash, so a redelivery is recognised without a read.
 * Bounded: the state item stays the same small size however many events a subject gets.
 */
export const RECENT_OBSERVATIONS = 32;

/**
 * How many earlier claims no answer has judged yet a state keeps (`earlierUnansweredClaimKeys`), the
 * latest ones: bounded, so the state item stays small however many claims an outage of the status
 * endpoint lets in.
 */
export const UNANSWERED_CLAIMS_KEPT = 16;

/** Where the status in place came from. */
export type StatusSource = 'callback' | 'status-endpoint';

/** The state item: one per (provider, subject[, part]), holding the latest status. Bounded in size. */
export interface StateItem {
  readonly provider: string;
  readonly subjectId: string;
  /** The part of the subject this state is about (eSMS: a recipient); absent for the whole subject. */
  readonly part?: string;
  /** The provider's own status value; absent until a status has been applied. */
  readonly status?: string;
  readonly outcome: Outcome;
  readonly terminal: boolean;
  /** Provider time of the status (receive time when the provider sends none, or an implausible one). */
  readonly statusAt?: string;
  /** What else the status means (REL-ID's action label, TeleSign's code state…). */
  readonly detail?: StatusDetail;
  readonly source?: StatusSource;
  /** Last write of the item. */
  readonly updatedAt: string;
  /** Last time the status, outcome or confirmation changed: the `byOutcome` index's sort key. */
  readonly changedAt: string;
  /** Distinct callbacks seen for this subject (status-endpoint answers are not callbacks). */
  readonly eventCount: number;
  /** Sortable position of the applied status: a status only replaces one with a lower key. */
  readonly orderKey?: string;
  /** Hashes of the last RECENT_OBSERVATIONS observations applied, oldest first. */
  readonly recent: readonly string[];
  /** Observations applied in all; more than RECENT_OBSERVATIONS means `recent` no longer holds them all. */
  readonly seen: number;
  /** Status changes reported so far by providers that report the current status (Identomat). */
  readonly changes?: number;
  /**
   * The latest of those changes: its event key (`…|#n`) and when it was last received (a report
   * equal to it received later moves the time on: `reportedAgain`). Retries are told from changes
   * against it, not against the status in place, which an answer of the provider's status endpoint
   * may have set.
   */
  readonly lastChange?: { readonly eventKey: string; readonly receivedAt: string };
  /**
   * Optimistic-locking version; +1 on every write (`nextVersion`). A BigInt when the item holds one
   * past 2^53 (written by another program): read exactly, so the conditional write still matches it.
   */
  readonly version: number | bigint;
  /** The latest verdict on a callback's claim, for providers whose status endpoint is asked. */
  readonly confirmation?: ConfirmationKind;
  /** The status the provider's endpoint gave with that verdict. */
  readonly confirmedStatus?: string;
  readonly confirmedAt?: string;
  /** With `mismatch`: the fields in which the claim differed from the provider's answer. */
  readonly differences?: readonly string[];
  /**
   * When a claim was received that the status endpoint could not judge (it failed on every receive
   * allowed): until the provider answers a re-check, the subject is not settled, even if its status
   * in place is final and confirmed (a REVERSED after a confirmed COMPLETED).
   */
  readonly unansweredClaimAt?: string;
  /**
   * What that claim said: an answer with the same outcome judges it at once; one contradicting it,
   * only once the schedule's first steps have passed (the endpoint may lag behind its callback).
   * Absent on claims recorded before it was kept: the first answer after them judges them.
   */
  readonly unansweredClaimStatus?: string;
  readonly unansweredClaimOutcome?: Outcome;
  /**
   * That claim's event key: the answer that judges it is compared with the claim's own payload on
   * every material field (amount, account…), as on arrival. Absent on claims recorded before it was
   * kept: those are judged by their outcome alone.
   */
  readonly unansweredClaimKey?: string;
  /**
   * The event keys of earlier claims no answer has judged yet, oldest first (at most
   * UNANSWERED_CLAIMS_KEPT): a newer one took their place above, and each is still judged on its own,
   * from its event item, so a forged claim is not hidden by the one that came after it.
   */
  readonly earlierUnansweredClaimKeys?: readonly string[];
  /** First write of the item. */
  readonly createdAt?: string;
  /** Set when an application said to expect this subject (`npm run expect`) before any callback. */
  readonly expectedAt?: string;
  /** When the provider is asked about it again (`byRecheck` index sort key); absent once settled. */
  readonly recheckAt?: string;
  /** Re-checks done so far (the position in the reconcile schedule). */
  readonly rechecks?: number;
  /** `byRecheck` index partition: `<provider>#<shard>`, or `<provider>#stale`. */
  readonly recheckShard?: string;
  /** Not final when the schedule (or the provider's horizon) ran out: listed for a person. */
  readonly stale?: boolean;
  readonly staleAt?: string;
  /** Re-checks in a row the status endpoint did not answer (cleared by an answer). */
  readonly recheckFaults?: number;
  /** Why the last of them failed. */
  readonly recheckFault?: string;
}

/** A status ready to be placed. */
export interface PlacedStatus {
  readonly status: string;
  readonly outcome: Outcome;
  readonly terminal: boolean;
  readonly statusAt: string;
  readonly rank: number;
  readonly detail?: StatusDetail;
  /** Reports of the current status (Identomat): the latest wins, whatever the tier. */
  readonly latestWins?: boolean;
  /** Not final, yet ordered in the terminal tier (TeleSign's INVALID): see EventFacts.ranksAsTerminal. */
  readonly ranksAsTerminal?: boolean;
}

/** One thing learned about a subject: a callback, or an answer of the provider's status endpoint. */
export interface Observation {
  /** Identifies the observation within its subject (short hash of its event key). */
  readonly hash: string;
  /** True for callbacks (counted in eventCount); false for status-endpoint answers. */
  readonly counts: boolean;
  readonly source: StatusSource;
  /** The status to place; absent when nothing is to be believed from it. */
  readonly placed?: PlacedStatus;
  /** A new status change of a provider that reports the current status (`changes` + 1). */
  readonly isChange?: boolean;
  /** With `isChange`: the change's event key and receive time (`lastChange`). */
  readonly change?: { readonly eventKey: string; readonly receivedAt: string };
}

/** The verdict of asking the provider about a claim, as the state records it. */
export interface Verdict {
  readonly kind: ConfirmationKind;
  readonly answerStatus?: string;
  readonly differences?: readonly string[];
  /** A mismatch only because the callback is older than the provider's answer (a late or stale claim). */
  readonly behind?: boolean;
  /**
   * With `behind`: the claim is a status still to move on (not final), a step the transaction has
   * since moved on from (an eSMS message counted further, a transfer past SUBMITTED). A final claim
   * older than the answer is not: a signed "delivered" the provider now calls failed is a mismatch.
   */
  readonly olderStep?: boolean;
  /**
   * The status the judged claim reported (a mismatch's: beside the status the provider answers);
   * absent when the claim is ahead of an answer that is not final (the endpoint may not have caught up).
   */
  readonly claimStatus?: string;
  /** Where the answer places its status: a verdict about an answer older than the status in place is not recorded on the state. */
  readonly answerOrderKey?: string;
}

export interface SubjectRef {
  readonly provider: string;
  readonly subjectId: string;
  readonly part?: string;
}

/**
 * Sortable key: terminal before anything else, then the provider's rank, then provider time, then
 * the outcome, then the status text: equal-time ties resolve the same way whatever the arrival
 * order, and against success (TemboPlus COMPLETED and CANCELED stamped alike read as failed).
 * Reports of the current status order by time alone: the latest report is the current status.
 */
export function orderKey(placed: PlacedStatus): string {
  const tier = placed.latestWins ? 0 : placed.terminal || placed.ranksAsTerminal ? 1 : 0;
  return `${tier}|${rankText(placed.latestWins ? 0 : placed.rank)}|${placed.statusAt}|${OUTCOME_TIE_BREAK[placed.outcome]}|${placed.status}`;
}

/**
 * A rank as text that sorts as the number: three digits (rank + 100) for -100 to 899, as every key
 * has been written; a higher one (eSMS ranks a message by the receivers its counters account for,
 * thousands for a campaign) as `~` and 16 digits, which sort above every three-digit text (`~` comes
 * after the digits) and among themselves by value. Below -100 (no provider ranks so low), -100.
 */
export function rankText(rank: number): string {
  const shifted = Number.isFinite(rank) ? Math.max(0, Math.floor(rank) + 100) : 0;
  return shifted <= 999 ? String(shifted).padStart(3, '0') : `~${String(Math.min(shifted, Number.MAX_SAFE_INTEGER)).padStart(16, '0')}`;
}

/**
 * Two reports at the same time that disagree on the outcome (TemboPlus COMPLETED and CANCELED, two
 * REL-ID results stamped alike): the one that is not success wins, failing closed.
 */
const OUTCOME_TIE_BREAK: Record<PlacedStatus['outcome'], string> = { pending: '0', succeeded: '1', unknown: '2', failed: '3' };

/**
 * A state's order key in today's form. Keys written before the outcome joined them
 * (`tier|rank|statusAt|status`) sort the status text right after the time, so at an exact tie a
 * failure compared against a stored success by text, and COMPLETED beat CANCELED. Such a key, told
 * by ending in the state's own time and status, gets its outcome put back in; any other is as it is.
 */
export function upgradedOrderKey(state: { readonly orderKey?: string; readonly status?: string; readonly statusAt?: string; readonly outcome: PlacedStatus['outcome'] }): string | undefined {
  const { orderKey: key, status, statusAt, outcome } = state;
  if (key === undefined || status === undefined || statusAt === undefined || OUTCOME_TIE_BREAK[outcome] === undefined) return key;
  const old = `|${statusAt}|${status}`;
  return key.endsWith(old) ? `${key.slice(0, key.length - status.length)}${OUTCOME_TIE_BREAK[outcome]}|${status}` : key;
}

/** Whether the state already holds this observation (by its hash) among the recent ones. */
export function remembers(state: StateItem | undefined, hash: string): boolean {
  return state?.recent.includes(hash) ?? false;
}

/** Whether `recent` still holds every observation ever applied (nothing has been pushed out). */
export function remembersAll(state: StateItem | undefined): boolean {
  return (state?.seen ?? 0) <= RECENT_OBSERVATIONS;
}

function emptyState(subject: SubjectRef, now: string): StateItem {
  return {
    provider: subject.provider,
    subjectId: subject.subjectId,
    ...(subject.part === undefined ? {} : { part: subject.part }),
    outcome: 'pending',
    terminal: false,
    createdAt: now,
    updatedAt: now,
    changedAt: now,
    eventCount: 0,
    recent: [],
    seen: 0,
    version: 0,
  };
}

/** A state without what was said of its confirmation. */
function withoutConfirmation(state: StateItem): StateItem {
  const { confirmation: _kind, confirmedStatus: _status, confirmedAt: _at, differences: _differences, ...rest } = state;
  return rest;
}

/** Equal details, whatever their members' order: DynamoDB does not keep a map's order. */
function sameDetail(a: StatusDetail | undefined, b: StatusDetail | undefined): boolean {
  return canonicalJson(a ?? null) === canonicalJson(b ?? null);
}

/**
 * The next state after some new observations (and the verdict on the claim, if the provider was
 * asked), or undefined when nothing changes. The caller passes only observations the state has not
 * applied yet. A status moves only forward (`orderKey`), so late and reordered callbacks, and a
 * second application of the same status, never undo a newer one.
 */
export function applyObservations(
  current: StateItem | undefined,
  subject: SubjectRef,
  observations: readonly Observation[],
  verdict: Verdict | undefined,
  now: string,
): StateItem | undefined {
  const base = current ?? emptyState(subject, now);
  let next: StateItem = base;
  let changed = current === undefined;
  let statusChanged = false;

  for (const observation of observations) {
    if (next.recent.includes(observation.hash)) continue;
    const recent = [...next.recent, observation.hash].slice(-RECENT_OBSERVATIONS);
    next = {
      ...next,
      recent,
      seen: next.seen + 1,
      eventCount: next.eventCount + (observation.counts ? 1 : 0),
      ...(observation.isChange ? { changes: (next.changes ?? 0) + 1, ...(observation.change ? { lastChange: observation.change } : {}) } : {}),
    };
    changed = true;
    const placed = observation.placed;
    if (!placed) continue;
    const key = orderKey(placed);
    if (next.orderKey !== undefined && key <= next.orderKey) continue;
    const newStatus = next.status !== placed.status || next.outcome !== placed.outcome;
    statusChanged ||= newStatus || next.terminal !== placed.terminal || !sameDetail(next.detail, placed.detail);
    // A confirmation is of the status it was given for: a new status has none until a verdict on it
    // (below). Kept, a 203 confirmed before read as a confirmed 200 no one had asked about.
    const { detail: _previousDetail, ...withoutDetail } = newStatus ? withoutConfirmation(next) : next;
    next = {
      ...withoutDetail,
      status: placed.status,
      outcome: placed.outcome,
      terminal: placed.terminal,
      statusAt: placed.statusAt,
      ...(placed.detail ? { detail: placed.detail } : {}),
      source: observation.source,
      orderKey: key,
    };
  }

  const onState = verdict && verdictOnState(next, verdict);
  if (onState && recordsVerdict(next, onState)) {
    // A verdict without a status (not_found, or an answer about another subject) confirms none.
    const { differences: _previous, confirmedStatus: _confirmed, ...withoutDifferences } = next;
    next = {
      ...withoutDifferences,
      confirmation: onState.kind,
      ...(onState.answerStatus === undefined ? {} : { confirmedStatus: onState.answerStatus }),
      ...(onState.kind === 'mismatch' && onState.differences?.length ? { differences: onState.differences.slice(0, 10) } : {}),
      confirmedAt: now,
    };
    changed = true;
    statusChanged = true;
  }

  if (!changed) return undefined;
  return { ...next, updatedAt: now, changedAt: statusChanged ? now : base.changedAt, version: nextVersion(base.version) };
}

/**
 * The version after `version`. One past 2^53 that a program wrote into its expectation is read back
 * as a BigInt (exactly, so the write conditional on it matches what is stored): `version + 1` threw
 * on it, and every callback and re-check of the subject failed into the DLQ. DynamoDB holds 38
 * digits; the sweep's lease adds 1 to it on the table the same way.
 */
export function nextVersion(version: number | bigint): number | bigint {
  if (typeof version === 'bigint') return version + 1n;
  if (typeof version === 'number') return version + 1;
  // Read as its digits: a fraction past 2^53 (a NumberValue) or a version written as text. `+ 1` put
  // "1" after its text ("7" became "71"), written back as text, which the sweep's lease (`version + 1`
  // on the table) cannot add to: the subject was never asked about again. The next integer after it
  // instead, as a number.
  const digits = /^\s*(-?\d+)(?:\.\d*)?\s*$/.exec(String(version));
  // Text that is no number at all: as before (no version to count on from).
  if (!digits) return (version as unknown as number) + 1;
  const next = BigInt(digits[1]) + 1n;
  return next >= BigInt(Number.MIN_SAFE_INTEGER) && next <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(next) : next;
}

/**
 * What a verdict on a claim says of the status in place. A claim of an earlier step (not final, and
 * older than the answer: a message eSMS has counted further since, a transfer past SUBMITTED) on
 * the very status the provider answers is older news: its own item records how it differs, and of
 * the status in place it says only what the answer says. Nothing said of it yet (the answer just put
 * it in place): confirmed, as the next re-check would find. Already judged: that judgement stands.
 * Recorded as a mismatch instead, the outcome hung on which of two workers wrote first: a pending
 * report asked about after the final one, and written first, left the final status `mismatch`; the
 * other order, `confirmed`. A final claim is never an earlier step: a signed "delivered" the
 * provider now calls failed stays a mismatch.
 */
function verdictOnState(state: StateItem, verdict: Verdict): Verdict | undefined {
  if (verdict.kind !== 'mismatch' || !verdict.olderStep || state.status === undefined || state.status !== verdict.answerStatus) return verdict;
  // Already judged (confirmed, or flagged for another claim's account or amount): the earlier step
  // changes nothing of it, nor replaces what the flag names with its own differences.
  if (state.confirmation !== undefined && state.confirmedStatus === verdict.answerStatus) return undefined;
  // Nothing said of this status yet: nothing at all, or a `not_found` (the endpoint did not know the
  // subject then), or a verdict naming another status. Kept as a mismatch, a signed 200 whose
  // `not_found` wrote first was flagged though the provider answers 200; written after, confirmed.
  return { kind: 'confirmed', answerStatus: verdict.answerStatus, ...(verdict.answerOrderKey === undefined ? {} : { answerOrderKey: verdict.answerOrderKey }) };
}

/**
 * Whether a verdict changes what the state says about confirmation: the latest verdict stands,
 * except that a `not_found` is not recorded once the provider has answered about the subject (its
 * own glitch, kept on the claim's event item), and a stale callback's mismatch does not undo the
 * confirmation of the status in place.
 */
function recordsVerdict(state: StateItem, verdict: Verdict): boolean {
  if (verdict.kind === 'not_found' && state.status !== undefined && state.source === 'status-endpoint') return false;
  // A final claim of the very status in place that the provider contradicts in what else it says (a
  // forged "delivered" of a message that failed, another account or amount) is flagged whatever the
  // answer's age or what was said of the status before: an answer placed when asked is "older" by
  // moments, and the flag must not hang on which of two workers wrote first.
  const flagsStatusInPlace =
    verdict.kind === 'mismatch' && !verdict.olderStep && verdict.claimStatus !== undefined && verdict.claimStatus === verdict.answerStatus && verdict.answerStatus === state.status;
  // The provider answered with a status older than the one in place: that answer is not news.
  if (!flagsStatusInPlace && verdict.answerOrderKey !== undefined && state.orderKey !== undefined && verdict.answerOrderKey < state.orderKey) return false;
  // A stale callback contradicting a status the provider already confirmed changes nothing of it.
  if (!flagsStatusInPlace && verdict.kind === 'mismatch' && verdict.behind && state.confirmation === 'confirmed' && state.confirmedStatus === verdict.answerStatus) return false;
  return (
    state.confirmation !== verdict.kind ||
    (verdict.answerStatus !== undefined && state.confirmedStatus !== verdict.answerStatus) ||
    JSON.stringify(state.differences ?? []) !== JSON.stringify(verdict.kind === 'mismatch' ? (verdict.differences ?? []).slice(0, 10) : [])
  );
}

/**
 * A final status in place that the provider's own answer contradicts with another final status (a
 * signed callback said DELIVERED, the status endpoint says FAILED): the answer is believed, as the
 * truth about the transaction, and the status keeps its place in the order, so only a newer status
 * replaces it. The caller records the mismatch.
 */
export function overruled(state: StateItem, answer: PlacedStatus, now: string): StateItem {
  const { detail: _claimed, ...rest } = state;
  const key = orderKey(answer);
  return {
    ...rest,
    status: answer.status,
    outcome: answer.outcome,
    terminal: answer.terminal,
    statusAt: answer.statusAt,
    ...(answer.detail ? { detail: answer.detail } : {}),
    source: 'status-endpoint',
    orderKey: state.orderKey !== undefined && state.orderKey > key ? state.orderKey : key,
    changedAt: now,
  };
}
