import { findProvider } from '../providers/index.ts';
import { canAsk, lookupLimitsOf, maskSubjectId, workerReadsSecret, type AnyProvider, type EventFacts, type Outcome } from '../providers/provider.ts';
import { ConfigurationError, DependencyError, errorMessage } from '../shared/errors.ts';
import { shortHash } from '../shared/hash.ts';
import { maskPhoneNumbers } from '../shared/log.ts';
import { isEndpointFault, lookupAnswer, type LookupResult } from './ask.ts';
import { answerEventKey, storeAnswer, type ProviderAnswer } from './event-items.ts';
import { judgeClaim, placeStatus } from './events.ts';
import { keys } from './pipeline-definition.ts';
import { DEFAULT_RECONCILE, isTime, settled, withRecheck, withRecheckFault, type ReconcilePolicy, type RecheckContext } from './reconcile.ts';
import type { RecheckMessage } from './queue-message.ts';
import { beforeStateWrite, STATE_WRITE_RETRY, subjectTurnKey } from './state-write.ts';
import { applyObservations, nextVersion, orderKey, overruled, type Observation, type PlacedStatus, type StateItem, type Verdict } from './state.ts';
import type { Item } from './store.ts';
import type { WorkerDependencies } from './worker.ts';

/**
 * A re-check: the provider is asked again about a subject the sweep found due (`byRecheck`). Its
 * answer is applied like any observation, forward only, and stored as an event from the status
 * endpoint; the verdict says whether the status in place is what the provider says now. Then the
 * next re-check is scheduled, or none once the subject is settled, or `stale` past the horizon.
 * A fault of the endpoint is not a failed record: it is noted and asked again after a back-off,
 * so an outage of hours delays confirmation and loses nothing.
 */

export type RecheckResult =
  | { readonly kind: 'skipped'; readonly reason: string }
  | {
      readonly kind: 'rechecked';
      /** What the provider said: `found`, `not_found`, `other-subject`, or `fault` (not answered), or `not-asked` (cannot be asked). */
      readonly asked: LookupResult['kind'] | 'fault' | 'not-asked';
      readonly verdict?: Verdict['kind'];
      readonly stateChanged: boolean;
      readonly settled: boolean;
      readonly stale: boolean;
    };

/**
 * The verdict on the status in place, given the provider's answer (already applied to the state,
 * forward only): `confirmed` when they agree; nothing when the endpoint is behind a status that is
 * not final (it is asked again); `mismatch` when a final status in place disagrees with the answer.
 */
function verdictOn(state: StateItem, answer: LookupResult): Verdict | undefined {
  if (answer.kind === 'not_found') return { kind: 'not_found' };
  if (answer.kind === 'other-subject') return { kind: 'mismatch', differences: ['subject'] };
  const { facts } = answer.answer;
  // Agreeing on the status, and on what it means (REL-ID's UPDATED is approved or rejected by its
  // label), confirms it, whichever of the two carries the later time.
  if (state.status === facts.status && state.outcome === facts.outcome) return { kind: 'confirmed', answerStatus: facts.status };
  if (!state.terminal) return undefined;
  return { kind: 'mismatch', answerStatus: facts.status, differences: [state.status === facts.status ? 'outcome' : 'status'] };
}

export async function processRecheck(message: RecheckMessage, deps: WorkerDependencies): Promise<RecheckResult> {
  const provider = findProvider(message.provider);
  if (!provider) return skipped(deps, message, `unknown provider "${message.provider}"`);
  // Queued before the provider was left out of the stack's providers: its subject keeps its re-check
  // time, swept again if the provider is deployed again.
  if (deps.deployedProviders && !deps.deployedProviders.includes(provider.id)) return skipped(deps, message, 'provider not deployed (the providers setting)');
  const subject = { provider: provider.id, subjectId: message.subjectId, ...(message.part === undefined ? {} : { part: message.part }) };
  const first = await deps.store.getState(provider.id, message.subjectId, message.part);
  if (!first) return skipped(deps, message, 'no state for this subject');
  // Re-queued since (its lease ran out behind a backlog), or already rescheduled by a callback or
  // another copy of this message: going on would spend a step of the schedule twice.
  // (A step's new time can equal the lease to the millisecond; its count cannot stay the same.)
  const leaseTakenOver = (state: StateItem) =>
    message.lease !== undefined && (state.recheckAt !== message.lease || (message.rechecks !== undefined && (state.rechecks ?? 0) !== message.rechecks));
  if (leaseTakenOver(first)) return leaseSkipped(deps, provider, message);

  const secret = workerReadsSecret(provider) ? await deps.secrets.get(provider) : undefined;
  const askable = canAsk(provider, secret);
  const context: RecheckContext = { askable, limits: lookupLimitsOf(provider, secret), policy: deps.reconcile ?? DEFAULT_RECONCILE, now: deps.now() };

  // Ask once, before the state write (which may be retried against a racing callback).
  let answer: LookupResult | undefined;
  let fault: string | undefined;
  /** The endpoint said it is busy and when to ask again (its Retry-After, seconds). */
  let retryAfterSeconds: number | undefined;
  let needsPerson = false;
  if (askable && !settled(first, askable)) {
    try {
      answer = await lookupAnswer(provider, message, secret, deps);
    } catch (error) {
      if (!isEndpointFault(provider, error)) throw error;
      fault = errorMessage(error);
      if (error instanceof DependencyError) retryAfterSeconds = error.retryAfterSeconds;
      // The endpoint refuses our credentials or address: asking again will not help until a person fixes the secret.
      needsPerson = error instanceof ConfigurationError;
    }
  }
  // The answer's event item first: storing it is idempotent, and the state remembers it by hash.
  if (answer?.kind === 'found') await storeAnswer(deps.store, provider.id, answer.answer, answer.askedAt, deps.now(), deps.retention);

  /** The stored claims, read once (their items do not change with the state write's retries). */
  const claimItems = new Map<string, Item | undefined>();
  const claimItem = async (eventKey: string): Promise<Item | undefined> => {
    if (!claimItems.has(eventKey)) claimItems.set(eventKey, await deps.store.getItem(keys.event(provider.id, message.subjectId, eventKey)));
    return claimItems.get(eventKey);
  };
  /**
   * The verdict on a stored claim, by its payload, against the answer, as on arrival (`behind` when
   * the claim is older news than the answer: a message eSMS has counted further since); undefined
   * when the claim's payload cannot be read back.
   */
  const claimJudged = (claim: Item | undefined, found: ProviderAnswer): Verdict | undefined => {
    // Kept compressed (a payload too large for the item): not read back here; judged by its outcome alone.
    const payload = claim?.source === 'callback' ? claim.payload : undefined;
    if (payload === undefined || !provider.differences || typeof claim?.receivedAt !== 'string') return undefined;
    let facts: EventFacts;
    try {
      facts = provider.describe(payload, secret);
    } catch {
      return undefined;
    }
    const placed = placeStatus(facts, claim.receivedAt);
    const { verdict } = judgeClaim(provider, { payload, facts, placed }, found);
    // Only a status still to move on is older news for being older: a final one that differs from
    // the answer of that very status (another account, dated a minute before) is not a step behind it.
    if (!verdict.behind || !placed.terminal) return verdict;
    const { behind: _final, olderStep: _step, ...differing } = verdict;
    return differing;
  };
  /**
   * The claims no answer has judged yet: the latest (as the state says it), and those it took the
   * place of (as their items say them; one no longer stored is gone, with nothing to judge).
   */
  const unansweredClaims = async (state: StateItem): Promise<UnansweredClaim[]> => {
    if (state.unansweredClaimAt === undefined) return [];
    const earlier: UnansweredClaim[] = [];
    for (const key of state.earlierUnansweredClaimKeys ?? []) {
      const item = await claimItem(key);
      if (typeof item?.receivedAt !== 'string') continue;
      earlier.push({ key, at: item.receivedAt, ...(typeof item.status === 'string' ? { status: item.status } : {}), ...(typeof item.outcome === 'string' ? { outcome: item.outcome as Outcome } : {}) });
    }
    // The state is written before the claim's event item: one not there yet may be moments away.
    const unstored = state.unansweredClaimKey !== undefined && (await claimItem(state.unansweredClaimKey)) === undefined;
    const latest: UnansweredClaim = {
      at: state.unansweredClaimAt,
      ...(unstored ? { unstored } : {}),
      ...(state.unansweredClaimKey === undefined ? {} : { key: state.unansweredClaimKey }),
      ...(state.unansweredClaimStatus === undefined ? {} : { status: state.unansweredClaimStatus }),
      ...(state.unansweredClaimOutcome === undefined ? {} : { outcome: state.unansweredClaimOutcome }),
    };
    return [...earlier, latest];
  };

  /** Claims whose verdict is on their item: once, however often the state write is retried. */
  const recorded = new Set<string>();
  // Another record of this batch (a callback, a copy of this re-check) writing the subject's state
  // waits its turn, and this one after it reads the state again rather than the one it asked about.
  const turn = await deps.subjectTurn?.(subjectTurnKey(provider.id, message.subjectId, message.part));
  try {
    for (let attempt = 1; ; attempt++) {
      // A callback or another re-check wrote first: wait a moment at random before reading again, as
      // the worker does (state-write.ts).
      await beforeStateWrite(attempt);
      const state = attempt === 1 && !turn?.afterAnother ? first : await deps.store.getState(provider.id, message.subjectId, message.part);
      if (!state) return skipped(deps, message, 'no state for this subject');
      // A write raced this one: a copy of this message that got there first has moved the lease on
      // (its answer is stored; this one's too, idempotently).
      if ((attempt > 1 || turn?.afterAnother) && leaseTakenOver(state)) return leaseSkipped(deps, provider, message);
      const now = deps.now().toISOString();
      const observations: Observation[] =
        answer?.kind === 'found' ? [{ hash: shortHash(answerEventKey(answer.answer)), counts: false, source: 'status-endpoint', placed: answer.answer.placed }] : [];
      let applied = applyObservations(state, subject, observations, undefined, now) ?? state;
      // The question was about `first`. A status written since (a callback that overtook it) and newer
      // than the answer makes the answer old news: it may only move the state forward (above), never
      // judge or overrule what is in place now (a late COMPLETED must not undo a REVERSED).
      const overtaken = answer?.kind === 'found' && state.orderKey !== first.orderKey && state.orderKey !== undefined && orderKey(answer.answer.placed) < state.orderKey;
      const verdict = answer && !overtaken ? verdictOn(applied, answer) : undefined;
      // Two final statuses that contradict each other: the provider's answer is the truth, the claim is
      // flagged. An answer older than the status in place (an endpoint lagging behind a signed callback)
      // overrules it only to fail closed, taking a success away: it never moves the state back in time
      // otherwise, least of all into a success (a lagging 200 must not undo a newer signed 207).
      if (verdict?.kind === 'mismatch' && answer?.kind === 'found' && applied.terminal && answer.answer.placed.terminal && overrules(applied, answer.answer.placed)) {
        applied = overruled(applied, answer.answer.placed, now);
      }
      const verdictApplied = (verdict && applyObservations(applied, subject, [], verdict, now)) ?? applied;
      // The provider answered about the subject, asked after a claim it could not judge came in: that
      // claim has been put to it now. (Not a not_found: the provider's glitch about a subject it knew.)
      // An answer whose outcome contradicts the claim's may be an endpoint lagging behind its own
      // callback (a REVERSED, a REJECTED not in the status API yet): the claim is taken for false only
      // once the provider still says so the schedule's first steps after it (about 36 minutes).
      const found = answer?.kind === 'found' ? answer.answer : undefined;
      // A claim whose event item is not stored yet (the worker writes the state first) waits for it as
      // long: judged without its payload, it would be taken for judged on its outcome alone.
      const answers = (claim: UnansweredClaim) => {
        if (found === undefined || answer === undefined || answer.askedAt < claim.at) return false;
        const judgedAfter = Date.parse(answer.askedAt) - Date.parse(claim.at) >= claimJudgedAfterMs(context.policy);
        return (claim.outcome === undefined || found.facts.outcome === claim.outcome || judgedAfter) && (!claim.unstored || judgedAfter);
      };
      const claims = await unansweredClaims(verdictApplied);
      const answeredClaims = claims.filter(answers);
      // Each claim, where it is known, is compared with the answer on every material field, as on
      // arrival: an answer agreeing on the outcome does not vouch for the amount or account a claim names
      // (one that came while the endpoint was down, or before it knew the transfer, was never compared).
      const claimVerdicts: { key: string; verdict: Verdict }[] = [];
      for (const claim of answeredClaims) {
        const verdictOnClaim = found && claim.key !== undefined ? claimJudged(await claimItem(claim.key), found) : undefined;
        if (verdictOnClaim && claim.key !== undefined) claimVerdicts.push({ key: claim.key, verdict: verdictOnClaim });
      }
      // A claim of the very status the provider answers, differing in what else it says (the amount, the
      // account): flagged on the state, as on arrival. A claim of another status, or one the answer is
      // newer than (eSMS's counters, counted further since), is older news the transaction has moved on
      // from, or one the provider kept contradicting, taken for false as before.
      const sameStatus = claimVerdicts.filter(({ key, verdict }) => {
        const claim = claims.find((each) => each.key === key);
        return verdict.kind === 'mismatch' && !verdict.behind && claim?.status === found?.facts.status && claim?.outcome === found?.facts.outcome;
      });
      // (Not on a status newer than the answer, one that overtook it: that answer is no news about it.)
      const flagVerdict: Verdict | undefined =
        sameStatus.length && found
          ? {
              kind: 'mismatch',
              answerStatus: found.facts.status,
              answerOrderKey: orderKey(found.placed),
              differences: [...new Set(sameStatus.flatMap(({ verdict: { differences } }) => differences ?? []))],
            }
          : undefined;
      const flagged = flagVerdict ? (applyObservations(verdictApplied, subject, [], flagVerdict, now) ?? verdictApplied) : verdictApplied;
      const judged = answeredClaims.length ? withUnansweredClaims(flagged, claims.filter((claim) => !answeredClaims.includes(claim))) : flagged;
      const scheduled = fault ? withRecheckFault(judged, context, fault, Math.random, retryAfterSeconds) : settled(judged, askable) ? withRecheck(judged, context, 'event') : withRecheck(judged, context, 'recheck');
      // An expectation an application wrote without a time of its own (no `expectedAt`, epoch
      // milliseconds, or one years ahead) gets one here, once: otherwise the horizon counted from each
      // write, or from a time to come, and a subject whose endpoint never answered was asked every half
      // hour for ever, never stale.
      const created = isTime(scheduled.expectedAt, context.now) || isTime(scheduled.createdAt, context.now) ? {} : { createdAt: now };
      const next: StateItem = { ...scheduled, ...created, updatedAt: now, version: nextVersion(state.version) };
      // On the claims' own items too, where `inspect` and the timeline show a claim's verdict: before
      // the state, which no longer names them once written (a fault after it would lose the verdict
      // and its log line, the copy of this message that comes again finding its lease taken over).
      for (const claim of claimVerdicts) {
        if (!answer || recorded.has(claim.key)) continue;
        await deps.store.recordVerdict(keys.event(provider.id, message.subjectId, claim.key), { ...claim.verdict, askedAt: answer.askedAt });
        recorded.add(claim.key);
      }
      if ((await deps.store.putState(next, state.version)) === 'conflict') {
        if (attempt >= STATE_WRITE_RETRY.attempts) throw new DependencyError('dynamodb', `state of ${provider.id} subject kept changing under us; will retry`);
        continue;
      }
      // A claim flagged is logged as a mismatch (its alarm counts these lines), even where the state had
      // moved on past the answer and records nothing of it.
      const stateVerdict = flagVerdict ?? verdict;
      const result: RecheckResult = {
        kind: 'rechecked',
        asked: fault ? 'fault' : (answer?.kind ?? 'not-asked'),
        ...(stateVerdict ? { verdict: stateVerdict.kind } : {}),
        stateChanged: state.status !== next.status || state.outcome !== next.outcome || state.confirmation !== next.confirmation,
        settled: settled(next, askable),
        stale: next.stale === true,
      };
      log(deps, provider, message, next, result, fault, needsPerson, retryAfterSeconds);
      return result;
    }
  } finally {
    turn?.release();
  }
}

/** Whether a final answer contradicting the final status in place replaces it: when it is not older, or when it takes a success away. */
function overrules(state: StateItem, answer: PlacedStatus): boolean {
  const notOlder = state.orderKey === undefined || orderKey(answer) >= state.orderKey;
  return notOlder || (state.outcome === 'succeeded' && answer.outcome !== 'succeeded');
}

/** How long after a claim the provider must still contradict it before it is taken for false: the schedule's first three steps. */
export function claimJudgedAfterMs(policy: ReconcilePolicy): number {
  return policy.intervalsSeconds.slice(0, 3).reduce((sum, seconds) => sum + seconds, 0) * 1000;
}

/** A claim no answer has judged yet. */
interface UnansweredClaim {
  /** Its event key; absent on a claim recorded before it was kept. */
  readonly key?: string;
  readonly at: string;
  readonly status?: string;
  readonly outcome?: Outcome;
  /** Its event item is not stored (yet): the state is written first. */
  readonly unstored?: true;
}

/** The state with these claims (oldest first) still to be judged: the latest of them in the state's own fields, the others by key. */
function withUnansweredClaims(state: StateItem, remaining: readonly UnansweredClaim[]): StateItem {
  const {
    unansweredClaimAt: _answered,
    unansweredClaimStatus: _status,
    unansweredClaimOutcome: _outcome,
    unansweredClaimKey: _key,
    earlierUnansweredClaimKeys: _earlier,
    ...rest
  } = state;
  const latest = remaining.at(-1);
  if (!latest) return rest;
  const earlier = remaining.slice(0, -1).flatMap((claim) => (claim.key === undefined ? [] : [claim.key]));
  return {
    ...rest,
    unansweredClaimAt: latest.at,
    ...(latest.status === undefined ? {} : { unansweredClaimStatus: latest.status }),
    ...(latest.outcome === undefined ? {} : { unansweredClaimOutcome: latest.outcome }),
    ...(latest.key === undefined ? {} : { unansweredClaimKey: latest.key }),
    ...(earlier.length ? { earlierUnansweredClaimKeys: earlier } : {}),
  };
}

function leaseSkipped(deps: WorkerDependencies, provider: AnyProvider, message: RecheckMessage): RecheckResult {
  deps.log.info('recheck skipped', { provider: provider.id, subjectId: maskSubjectId(message.subjectId, provider), reason: 'lease taken over' });
  return { kind: 'skipped', reason: 'lease taken over' };
}

function skipped(deps: WorkerDependencies, message: RecheckMessage, reason: string): RecheckResult {
  deps.log.warn('recheck skipped', { provider: message.provider, subjectId: maskSubjectId(message.subjectId, findProvider(message.provider)), reason });
  return { kind: 'skipped', reason };
}

/** One line per re-check; `stale: true` lines are what the stale metric counts. */
function log(
  deps: WorkerDependencies,
  provider: AnyProvider,
  message: RecheckMessage,
  state: StateItem,
  result: RecheckResult & { kind: 'rechecked' },
  fault: string | undefined,
  needsPerson: boolean,
  retryAfterSeconds: number | undefined,
) {
  const fields = {
    provider: provider.id,
    subjectId: maskSubjectId(message.subjectId, provider),
    part: maskPhoneNumbers(message.part),
    asked: result.asked,
    ...(result.verdict ? { verdict: result.verdict } : {}),
    // A verdict on what callbacks claimed (counted with the arrival verdicts); an expected subject
    // the provider does not know yet is not a contradiction.
    ...(result.verdict && state.eventCount > 0 ? { confirmation: result.verdict } : {}),
    status: maskPhoneNumbers(state.status),
    outcome: state.outcome,
    rechecks: state.rechecks ?? 0,
    ...(state.recheckAt && !state.stale ? { nextRecheckAt: state.recheckAt } : {}),
    settled: result.settled,
    stale: result.stale,
    ...(fault ? { fault, faultsInARow: state.recheckFaults } : {}),
    // Busy (429, 503) and said when to ask again: the next re-check is no earlier.
    ...(fault && retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
  };
  if (result.stale) deps.log.warn('recheck: stale', fields);
  else if (needsPerson) deps.log.error('recheck: configuration', fields);
  else if (fault) deps.log.warn('recheck: status endpoint fault, asking again later', fields);
  else deps.log.info('rechecked', fields);
}
