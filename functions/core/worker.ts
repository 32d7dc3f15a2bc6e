import { findProvider } from '../providers/index.ts';
import { believesCallbacks, canAsk, lookupLimitsOf, maskSubjectId, workerReadsSecret, type AnyProvider, type EventFacts, type LookupContext, type Outcome } from '../providers/provider.ts';
import { DependencyError, errorMessage } from '../shared/errors.ts';
import { judgeClaim, placeStatus, reportedAgain, resolveEventKey, unstorableKeyReason } from './events.ts';
import { shortHash } from '../shared/hash.ts';
import { ITEM_BUDGET, itemSize } from './item-size.ts';
import { answerEventKey, expiresAt, putFitted, putUnlessRefused, retentionSeconds, storeAnswer, type Retention } from './event-items.ts';
import { isEndpointFault, lookupAnswer, type LookupResult } from './ask.ts';
import type { Logger } from '../shared/log.ts';
import { maskPhoneNumbers } from '../shared/log.ts';
import { EVENT_SK_PREFIX, QUEUE, TABLE, keys } from './pipeline-definition.ts';
import { DEFAULT_RECONCILE, revivedByChange, withRecheck, withRecheckNotBefore, type ReconcilePolicy } from './reconcile.ts';
import { rawBodyOf, requestOf, withBase64Body, type QueueMessage } from './queue-message.ts';
import type { SecretCache } from './secrets.ts';
import { applyObservations, nextVersion, orderKey, RECENT_OBSERVATIONS, remembers, remembersAll, UNANSWERED_CLAIMS_KEPT, type ConfirmationKind, type Observation, type PlacedStatus, type StateItem, type Verdict } from './state.ts';
import { beforeStateWrite, STATE_WRITE_RETRY, subjectTurnKey, type SubjectTurn } from './state-write.ts';
import { storable } from './storable.ts';
import type { CallbackStore, Item, ItemKey } from './store.ts';
import type { DeliveryReportJoin } from './relay.ts';

export interface WorkerDependencies {
  readonly store: CallbackStore;
  readonly secrets: SecretCache;
  /** How the provider's status endpoint is asked (fetch, timeout, request ids). */
  readonly lookup: LookupContext;
  readonly now: () => Date;
  readonly log: Logger;
  readonly retention: Retention;
  /**
   * Receives during which an unsettled verdict (the provider does not know the subject yet, or its
   * answer is behind the callback) is retried before it stands for this delivery.
   * @default QUEUE.settleAttempts
   */
  readonly settleAttempts?: number;
  /** @default QUEUE.maxAsksPerClaim */
  readonly maxAsksPerClaim?: number;
  /** @default QUEUE.askFaultAttempts */
  readonly askFaultAttempts?: number;
  /** When subjects are asked about again. @default DEFAULT_RECONCILE */
  readonly reconcile?: ReconcilePolicy;
  /**
   * With the SMS relay on: joins a stored delivery report of its sender to the relayed instruction
   * whose send got no answer (functions/core/relay.ts). Absent with the relay off: nothing is read.
   */
  readonly relayJoin?: DeliveryReportJoin;
  /**
   * The ids of the providers deployed (the stack's `providers` setting), when not every one is: a
   * re-check of another provider's subject is skipped, not asked (its secret is not deployed, and
   * the worker has no access to one). Absent: every provider is deployed.
   */
  readonly deployedProviders?: readonly string[];
  /**
   * Turns at each subject's state write, shared by the records of one batch (subjectTurns in
   * state-write.ts): records of a batch for one subject write one after another. Absent: each
   * record races the others' conditional puts, as records of different workers do.
   */
  readonly subjectTurn?: (subject: string) => Promise<SubjectTurn>;
}

/** What happened to one queued callback. Faults are thrown instead (the record is retried). */
export type WorkerResult =
  | {
      readonly kind: 'stored' | 'duplicate';
      readonly subjectId: string;
      /** Whether the subject's status, outcome or confirmation changed. */
      readonly stateChanged: boolean;
      readonly confirmation?: ConfirmationKind;
    }
  | { readonly kind: 'quarantined' | 'quarantine_duplicate'; readonly reason: string };

/** A callback read from its message: validated payload and what it says. */
interface ReadCallback {
  readonly ok: true;
  readonly payload: unknown;
  readonly facts: EventFacts;
  readonly placed: PlacedStatus;
  /** The provider's secret, when the worker reads it (to ask its status endpoint, or for settings). */
  readonly secret?: unknown;
  /** Whether the provider can be asked (it has `lookup` and the secret holds what it needs). */
  readonly askable: boolean;
}
type ReadResult = ReadCallback | { readonly ok: false; readonly reason: string; readonly issues: readonly string[] };

/** What the provider's status endpoint said about a claim. */
interface Asked {
  readonly verdict: Verdict;
  readonly askedAt: string;
  /** The answer to believe (absent for not_found, or an answer about another subject). */
  readonly answer?: { readonly payload: unknown; readonly facts: EventFacts; readonly placed: PlacedStatus };
  /** Worth asking again soon: not known yet, or an answer behind the claim (the endpoint lagging). */
  readonly unsettled: boolean;
  /** The newest report of the current status, contradicted: the verdict stands, and a re-check asks again. */
  readonly lagging?: boolean;
}

/** The exact bytes a message carries (body, or the query string of a GET provider). */
function rawOf(message: QueueMessage): Buffer {
  const body = rawBodyOf(message);
  return body.length > 0 ? body : Buffer.from(message.raw.query, 'utf8');
}

/**
 * What tells one quarantined callback from another: its bytes (text or base64, and the query), and
 * what else differs between two deliveries of the same bytes (the route's `{source}`, Standard
 * Webhooks' `webhook-id`), never what changes on a retry. A JSON array keeps the parts apart: a `?`
 * in a body, or a text body that spells another body's base64, cannot make two callbacks one.
 * A message `reprocess` put back names the item it came from: quarantined again, it gets an item of
 * its own, since reprocess deletes the old one once the queue has the message (a redelivery of the
 * requeued message still finds its own item).
 */
export function quarantineIdentity(provider: AnyProvider | undefined, message: QueueMessage): string {
  const parameters = Object.entries(message.pathParameters ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const delivery = (provider?.deliveryIdHeaders ?? []).map((name) => [name, message.headers[name] ?? ''] as const);
  const parts = [message.raw.body ?? null, message.raw.bodyBase64 ?? null, message.raw.query, parameters, delivery];
  return JSON.stringify(message.reprocessOf === undefined ? parts : [...parts, message.reprocessOf]);
}

async function storeQuarantined(provider: AnyProvider | undefined, message: QueueMessage, reason: string, issues: readonly string[], deps: WorkerDependencies) {
  const now = deps.now();
  const contentHash = shortHash(quarantineIdentity(provider, message));
  // Kept only briefly when it may carry a live code or contact (an instruction we could not read).
  const sensitive = provider?.mayBeSensitive?.(rawOf(message)) ?? false;
  const text = JSON.stringify(message);
  const item: Item = {
    ...keys.quarantine(message.provider, contentHash),
    [TABLE.outcomeIndex.partitionKey]: keys.outcome(message.provider, 'quarantined'),
    changedAt: message.receivedAt,
    provider: message.provider,
    reason,
    issues,
    receivedAt: message.receivedAt,
    requestId: message.requestId,
    sourceIp: message.sourceIp,
    ...(sensitive ? { sensitive: true } : {}),
    /** The whole queue message, so `reprocess` can run it through the worker after a schema fix. */
    message: text,
    // A copy reprocess put back expires no later than the item it came from: reprocessing never
    // renews a retention (a live code's 24 h), nor brings back an item DynamoDB has yet to remove.
    [TABLE.ttlAttribute]: Math.min(expiresAt(now, retentionSeconds(sensitive, deps.retention)), message.reprocessExpiresAt ?? Infinity),
  };
  // As it is; heavily escaped text (NUL runs) is smaller as base64; failing that, compressed. A form
  // DynamoDB refuses as too large though sized within the budget moves on to the next.
  let created = itemSize(item) <= ITEM_BUDGET ? await putUnlessRefused(deps.store, item) : undefined;
  if (created === undefined) {
    const smaller = { ...item, message: JSON.stringify(withBase64Body(message)) };
    if (itemSize(smaller) <= ITEM_BUDGET) created = await putUnlessRefused(deps.store, smaller);
  }
  created ??= await putFitted(deps.store, item, () => Buffer.from(text), 'messageGzip');
  // atIngest: ingest flagged it and counted it in its own line (the Quarantined metric counts the others here).
  // result says the same as text, for the saved query (Logs Insights compares text, not JSON booleans):
  // "quarantined" only where this line is the callback's one count.
  const atIngest = message.quarantine !== undefined;
  const result = created === 'exists' ? 'duplicate' : atIngest ? 'quarantinedAtIngest' : 'quarantined';
  deps.log.warn('quarantined', { provider: message.provider, requestId: message.requestId, reason, result, duplicate: created === 'exists', atIngest });
  return { kind: created === 'created' ? ('quarantined' as const) : ('quarantine_duplicate' as const), reason };
}

/** The payload to believe: the one ingest parsed, or a re-parse of the raw bytes (reprocessing). */
function payloadOf(provider: AnyProvider, message: QueueMessage) {
  if (message.quarantine) return { ok: false as const, reason: message.quarantine.reason, issues: message.quarantine.issues };
  if (message.payload !== undefined) return { ok: true as const, payload: message.payload };
  return provider.parse(requestOf(message));
}

/**
 * What a parsed callback says, read with the provider's secret (the settings `describe` reads: a
 * Standard Webhooks `subjectField`, REL-ID's labels), and whether the keys it names can be stored
 * exactly; otherwise why it is quarantined. `reprocess` checks a quarantined callback with it too,
 * so that what it says it would put back is what the worker then stores.
 */
export function describedCallback(
  provider: AnyProvider,
  payload: unknown,
  secret: unknown,
): { readonly ok: true; readonly facts: EventFacts } | { readonly ok: false; readonly reason: string; readonly issues: readonly string[] } {
  let facts: EventFacts;
  try {
    facts = provider.describe(payload, secret);
  } catch (error) {
    return { ok: false, reason: `cannot read the status: ${(error as Error).message}`, issues: [] };
  }
  const reason = unstorableKeyReason(facts);
  return reason ? { ok: false, reason, issues: [] } : { ok: true, facts };
}

/** Step 1: parse (or take ingest's parse), describe, and check the keys it names can be stored exactly. */
async function readCallback(provider: AnyProvider, message: QueueMessage, deps: WorkerDependencies): Promise<ReadResult> {
  const parsed = payloadOf(provider, message);
  if (!parsed.ok) return parsed;
  const secret = workerReadsSecret(provider) ? await deps.secrets.get(provider) : undefined;
  const described = describedCallback(provider, parsed.payload, secret);
  if (!described.ok) return described;
  const { facts } = described;
  const askable = canAsk(provider, secret) && (provider.asksAbout?.(parsed.payload) ?? true);
  return { ok: true, payload: parsed.payload, facts, placed: placeStatus(facts, message.receivedAt), secret, askable };
}

/** The status endpoint failed on every receive allowed for it: the claim is stored unconfirmed and reconciliation asks later. */
interface AskFault {
  readonly fault: string;
  readonly askedAt: string;
  /** The endpoint said it is busy (429, 503) and when to ask again: its Retry-After, in seconds. */
  readonly retryAfterSeconds?: number;
}

/** The claim was put to the endpoint `maxAsksPerClaim` times, never confirmed: not asked again, left to re-checks. */
interface AsksSpent {
  readonly capped: true;
}

/**
 * Step 2: put the claim to the provider's status endpoint, for providers that have one. Not again
 * once it was confirmed, nor more than `maxAsksPerClaim` times however often it is redelivered (then
 * the claim is left to re-checks, as a claim that stayed unsettled is).
 * A fault of the endpoint is retried (the record fails and comes back with back-off) for
 * `askFaultAttempts` receives; after that the callback is stored without a verdict, so an endpoint
 * that is down for hours delays confirmation (re-checks keep asking) but never sends a callback to
 * the DLQ. An endpoint that says it is busy and when to ask again (429 or 503 with a Retry-After of
 * a second or more) is not asked again by a redelivery: the callback is stored at once without a
 * verdict, and its subject's re-check comes no earlier than that (reconcile.ts).
 */
async function askProvider(
  provider: AnyProvider,
  read: ReadCallback,
  stored: Item | undefined,
  deps: WorkerDependencies,
  receiveCount: number,
  /** A report of the current status received after every change the state holds (Identomat's newest session-change). */
  newestReport = false,
): Promise<Asked | AskFault | AsksSpent | undefined> {
  if (!read.askable || lookupLimitsOf(provider, read.secret)?.onArrival === false) return undefined;
  // A callback that reports no status (an OTP or link instruction, a video-call update) is not a claim to judge.
  if (read.facts.placesStatus === false) return undefined;
  if (stored?.confirmation === 'confirmed') return undefined;
  // Asked as often as a claim may be, never confirmed: its deliveries (the provider resending it,
  // each retried while the endpoint lagged) may have spent every ask before any got to its last
  // settle attempt, the one that leaves an unsettled claim to re-checks. Said so, for the caller to
  // leave it to them while it is ahead of the status in place; otherwise a reversal the endpoint had
  // not caught up with was dropped once a re-check confirmed the old status.
  if (Number(stored?.asks ?? 0) >= (deps.maxAsksPerClaim ?? QUEUE.maxAsksPerClaim)) return { capped: true };
  let answer: LookupResult;
  try {
    answer = await lookupAnswer(provider, { subjectId: read.facts.subjectId, ...(read.facts.part === undefined ? {} : { part: read.facts.part }) }, read.secret, deps);
  } catch (error) {
    if (!isEndpointFault(provider, error)) throw error;
    const retryAfterSeconds = error instanceof DependencyError && error.retryAfterSeconds !== undefined && error.retryAfterSeconds > 0 ? error.retryAfterSeconds : undefined;
    if (retryAfterSeconds === undefined && receiveCount < (deps.askFaultAttempts ?? QUEUE.askFaultAttempts)) throw error;
    return { fault: errorMessage(error), askedAt: deps.now().toISOString(), ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) };
  }
  if (answer.kind === 'not_found') return { verdict: { kind: 'not_found' }, askedAt: answer.askedAt, unsettled: true };
  if (answer.kind === 'other-subject') return { verdict: { kind: 'mismatch', differences: ['subject'] }, askedAt: answer.askedAt, unsettled: false };
  const { verdict, unsettled } = judgeClaim(provider, read, answer.answer);
  // The newest report of the current status, contradicted: we always ask after we receive, so by
  // time the answer always looks newer, yet the endpoint may simply not have caught up (result/
  // still "approved" a moment after the REJECTED callback). The mismatch is recorded, never taken
  // for a stale claim the status in place already answers, and a re-check asks again. (Not by a
  // redelivery: a report of the current status is told from a retry only against the latest change.)
  if (newestReport && verdict.kind === 'mismatch') {
    const { behind: _lagging, olderStep: _step, ...current } = verdict;
    return { verdict: current, askedAt: answer.askedAt, answer: answer.answer, unsettled: false, lagging: true };
  }
  return { verdict, askedAt: answer.askedAt, answer: answer.answer, unsettled };
}

/** Step 3: move the state forward (written first, so a crash before the event items repeats nothing). */
async function applyToState(
  provider: AnyProvider,
  message: QueueMessage,
  read: ReadCallback,
  asked: Asked | undefined,
  stored: Item | undefined,
  deps: WorkerDependencies,
  /** The state read before asking (and, when it could hold the claim, the claim read with it). */
  looked?: { readonly state: StateItem | undefined; readonly claimRead: boolean },
  /** The endpoint could not judge this claim, or had not caught up with it: the subject stays unsettled until a re-check is answered. */
  unansweredClaim = false,
  /** The endpoint said it is busy and when to ask again (seconds): the subject's next re-check is no earlier. */
  retryAfterSeconds?: number,
): Promise<{ eventKey: string; before?: StateItem; after?: StateItem }> {
  const { facts } = read;
  const subject = { provider: provider.id, subjectId: facts.subjectId, ...(facts.part === undefined ? {} : { part: facts.part }) };
  const believed = believesCallbacks(provider, read.askable) && facts.placesStatus !== false;
  const recheck = { askable: read.askable, limits: lookupLimitsOf(provider, read.secret), policy: deps.reconcile ?? DEFAULT_RECONCILE, now: deps.now() };
  // A report keyed as late may be this very message again (a redelivery after a later change was
  // applied): then it keeps the key it was first stored under, and is not counted twice.
  let storedBefore: ItemKey | undefined | null = null;
  for (let attempt = 1; ; attempt++) {
    // Another record for the subject wrote first: wait a moment at random before reading again.
    await beforeStateWrite(attempt);
    // The first attempt uses the state read before asking, if any: a write since then fails the
    // conditional put below, and the next attempt reads it again.
    const state = attempt === 1 && looked ? looked.state : await deps.store.getState(provider.id, facts.subjectId, facts.part);
    const resolved = resolveEventKey(facts, state, message.receivedAt);
    // A report equal to the latest change but received before it may be this very message again too,
    // applied as an earlier change of the same status (APPROVED #1, REJECTED #2, APPROVED #3): taken
    // for a retry of the latest, the earlier change it was counted as never got its item.
    const earlier = resolved.late || (facts.reportsCurrent === true && !resolved.isChange && state?.lastChange !== undefined && message.receivedAt < state.lastChange.receivedAt);
    if (earlier && storedBefore === null) {
      storedBefore =
        (await deps.store.eventStoredBy(keys.event(provider.id, facts.subjectId, `${facts.eventKey}|`), message.requestId)) ??
        (await appliedButUnstored(state, provider, facts, deps));
    }
    const { eventKey, isChange } = earlier && storedBefore ? { eventKey: storedBefore.sk.slice(EVENT_SK_PREFIX.length), isChange: false } : resolved;
    const hash = shortHash(eventKey);
    // Recent observations are remembered by hash; an older one is known by its stored event item
    // (already looked up, consistently, when the claim was read before asking).
    let known = remembers(state, hash);
    if (!known && !remembersAll(state)) {
      known = stored?.eventKey === eventKey;
      if (!known && !(attempt === 1 && looked?.claimRead)) {
        known = (await deps.store.getItem(keys.event(provider.id, facts.subjectId, eventKey), { consistent: false })) !== undefined;
      }
    }
    const observations: Observation[] = [];
    // A report received before the latest change (`…|before#n`) is history, never the current status.
    if (!known) observations.push({ hash, counts: true, source: 'callback', ...(believed && !resolved.late ? { placed: read.placed } : {}), ...(isChange ? { isChange, change: { eventKey, receivedAt: message.receivedAt } } : {}) });
    if (asked?.answer) observations.push({ hash: shortHash(answerEventKey(asked.answer)), counts: false, source: 'status-endpoint', placed: asked.answer.placed });
    const now = deps.now().toISOString();
    const observed = applyObservations(state, subject, observations, asked?.verdict, now);
    // The latest change reported again, later: a report received before this one is older news.
    const again = reportedAgain(state, resolved, message.receivedAt);
    const applied = again && state ? { ...(observed ?? { ...state, updatedAt: now, version: nextVersion(state.version) }), lastChange: again } : observed;
    // A claim the provider could not judge or had not caught up with: asked about again, from the
    // schedule's start when the subject was settled or had gone stale, not where its old schedule ended.
    const claim = { at: message.receivedAt, status: facts.status, outcome: facts.outcome, key: eventKey, supersedes: facts.reportsCurrent === true };
    const unanswered = unansweredClaim ? (item: StateItem) => withUnansweredClaim(item, claim, now) : (item: StateItem) => item;
    const next = scheduled(applied, state, (item) => withRecheckNotBefore(revivedByChange(state, withRecheck(unanswered(item), recheck, 'event'), recheck), recheck, retryAfterSeconds), now);
    if (!next) return { eventKey, before: state, after: state };
    if ((await deps.store.putState(next, state?.version)) === 'written') return { eventKey, before: state, after: next };
    if (attempt >= STATE_WRITE_RETRY.attempts) throw new DependencyError('dynamodb', `state of ${provider.id} subject kept changing under us; will retry`);
  }
}

/**
 * A change of this report, or a late report of it (`…|before#n`), that the state applied and whose
 * event item was never stored: the state is written first, so a fault before the item left it so,
 * and a later change has since made this message's redelivery look late (or late against another
 * change). It is stored under that key, counted once, not again under a new one beside a key no
 * item names. (A recent one: the state remembers only those.)
 */
async function appliedButUnstored(state: StateItem | undefined, provider: AnyProvider, facts: EventFacts, deps: WorkerDependencies): Promise<ItemKey | undefined> {
  const changes = state?.changes ?? 0;
  for (let n = changes; n >= 1 && n > changes - RECENT_OBSERVATIONS; n--) {
    for (const eventKey of [`${facts.eventKey}|#${n}`, `${facts.eventKey}|before#${n}`]) {
      if (!remembers(state, shortHash(eventKey))) continue;
      const key = keys.event(provider.id, facts.subjectId, eventKey);
      if ((await deps.store.getItem(key)) === undefined) return key;
    }
  }
  return undefined;
}

function withUnansweredClaim(
  state: StateItem,
  claim: { readonly at: string; readonly status: string; readonly outcome: Outcome; readonly key: string; readonly supersedes: boolean },
  now: string,
): StateItem {
  // A claim no answer has judged yet, which this one takes the place of, is still judged on its own
  // (a forged COMPLETED must not be hidden by the genuine one after it in the same outage). Not a
  // report of the current status (Identomat): the newer report is the current status, the older one history.
  // A report received before the one still to be judged (out of the queue late, its receives having
  // failed longer) is older than it: the newer report stays the one to ask about.
  const supersededBy = claim.supersedes && state.unansweredClaimAt !== undefined && claim.at < state.unansweredClaimAt;
  const previous = claim.supersedes ? [] : [...(state.earlierUnansweredClaimKeys ?? []), ...(state.unansweredClaimKey === undefined ? [] : [state.unansweredClaimKey])];
  const earlier = [...new Set(previous)].filter((key) => key !== claim.key).slice(-UNANSWERED_CLAIMS_KEPT);
  const { earlierUnansweredClaimKeys: _earlier, ...current } = state;
  const unanswered = supersededBy
    ? { ...(state.earlierUnansweredClaimKeys ? { earlierUnansweredClaimKeys: state.earlierUnansweredClaimKeys } : {}) }
    : {
        unansweredClaimAt: claim.at,
        unansweredClaimStatus: claim.status,
        unansweredClaimOutcome: claim.outcome,
        unansweredClaimKey: claim.key,
        ...(earlier.length ? { earlierUnansweredClaimKeys: earlier } : {}),
      };
  if (current.stale) {
    const { stale: _stale, staleAt: _staleAt, recheckAt: _recheckAt, recheckShard: _recheckShard, ...rest } = current;
    // No longer stale (published as such), dated when written, like going stale.
    return { ...rest, ...unanswered, rechecks: 0, changedAt: now };
  }
  return { ...current, ...unanswered, ...(current.recheckAt === undefined ? { rechecks: 0 } : {}) };
}

/**
 * The next state with its re-check schedule applied: `next` (or, when the observations changed
 * nothing, the current state) rescheduled, as a new version when that changed anything.
 */
function scheduled(next: StateItem | undefined, current: StateItem | undefined, schedule: (state: StateItem) => StateItem, now: string): StateItem | undefined {
  const base = next ?? current;
  if (!base) return undefined;
  const after = schedule(base);
  if (after === base) return next;
  return next ? after : { ...after, updatedAt: now, version: nextVersion(base.version) };
}

/** Step 4: the event items, each stored once: the callback (the claim) and, when it differs, the provider's answer. */
async function storeEvents(
  provider: AnyProvider,
  message: QueueMessage,
  read: ReadCallback,
  eventKey: string,
  asked: Asked | undefined,
  askFault: AskFault | undefined,
  deps: WorkerDependencies,
  /** This delivery logs its line, then is handed back to ask again: marked on the claim it creates. */
  settling = false,
): Promise<'created' | 'exists'> {
  const { facts, placed } = read;
  const now = deps.now();
  const payload = storable(read.payload);
  const answerPayload = asked?.answer ? storable(asked.answer.payload) : undefined;
  // The answer is usually the callback's own body (TemboPlus): then it is kept once, on the claim.
  const answerIsClaim = answerPayload !== undefined && JSON.stringify(answerPayload) === JSON.stringify(payload);
  const verdictFields = asked
    ? {
        confirmation: asked.verdict.kind,
        ...(asked.verdict.answerStatus === undefined ? {} : { confirmedStatus: asked.verdict.answerStatus }),
        ...(asked.verdict.kind === 'mismatch' && asked.verdict.differences?.length ? { differences: asked.verdict.differences } : {}),
        askedAt: asked.askedAt,
        asks: 1,
        ...(answerIsClaim ? { answerIsClaim: true } : {}),
      }
    : {};
  const claim: Item = {
    ...keys.event(provider.id, facts.subjectId, eventKey),
    provider: provider.id,
    subjectId: facts.subjectId,
    ...(facts.part === undefined ? {} : { part: facts.part }),
    eventKey,
    source: 'callback',
    status: facts.status,
    outcome: facts.outcome,
    statusAt: placed.statusAt,
    ...(placed.detail ? { detail: placed.detail } : {}),
    receivedAt: message.receivedAt,
    requestId: message.requestId,
    sourceIp: message.sourceIp,
    headers: message.headers,
    payload,
    storedAt: now.toISOString(),
    // It carries a live code or a contact: kept briefly, and `inspect --json` does not print it unasked.
    ...(facts.sensitive ? { sensitive: true } : {}),
    ...verdictFields,
    // Asked and not answered: no verdict yet, re-checks keep asking (`inspect` shows why).
    ...(askFault ? { askFault: askFault.fault, askedAt: askFault.askedAt } : {}),
    // Its `stored` line is written, then the message is handed back to ask again: a later receive
    // of the same message is ours, already counted (logged as `redelivered`).
    ...(settling ? { settleRetry: true } : {}),
    [TABLE.ttlAttribute]: expiresAt(now, retentionSeconds(facts.sensitive, deps.retention)),
  };
  const created = await putFitted(deps.store, claim, () => rawOf(message));
  if (created === 'exists' && asked) await deps.store.recordVerdict(keys.event(provider.id, facts.subjectId, eventKey), { ...asked.verdict, askedAt: asked.askedAt });
  if (asked?.answer && !answerIsClaim) await storeAnswer(deps.store, provider.id, asked.answer, asked.askedAt, now, deps.retention);
  return created;
}

/**
 * Whether a claim's event item may already be stored, by the state of its subject: the state is
 * written before the event items and remembers the hashes of the claims it applied, so a claim it
 * does not remember, while it still remembers every observation, was never stored. An absent
 * state means no claim of the subject was stored (or its state was deleted: the claim is then
 * asked about again and put once more, which its condition turns into "exists").
 */
function mayHoldClaim(state: StateItem | undefined, eventKey: string): boolean {
  if (!state) return false;
  return remembers(state, shortHash(eventKey)) || !remembersAll(state);
}

function statusChanged(before: StateItem | undefined, after: StateItem | undefined): boolean {
  if (!after || before === after) return false;
  return (
    before?.status !== after.status ||
    before?.outcome !== after.outcome ||
    before?.confirmation !== after.confirmation ||
    before?.confirmedStatus !== after.confirmedStatus
  );
}

/**
 * Store one queued callback: read it, ask the provider where it offers a status endpoint, move the
 * subject's state forward, then store the event items. Every step is idempotent, so a redelivery
 * after a crash between two writes converges on the same items; the state item stays the same
 * small size however many events its subject gets.
 */
export async function processMessage(message: QueueMessage, deps: WorkerDependencies, receiveCount = 1): Promise<WorkerResult> {
  const provider = findProvider(message.provider);
  if (!provider) return storeQuarantined(undefined, message, `unknown provider "${message.provider}"`, [], deps);
  const read = await readCallback(provider, message, deps);
  if (!read.ok) return storeQuarantined(provider, message, read.reason, read.issues, deps);
  const { facts } = read;

  // The claim as stored before (confirmable providers only): whether to ask again, and how often.
  // The state is read first: it is written before the event items and remembers the claims it
  // applied, so the claim's item is read only when the state says it may exist (a redelivery),
  // not for every new callback.
  const storedKey: ItemKey | undefined = provider.lookup && !facts.reportsCurrent ? keys.event(provider.id, facts.subjectId, facts.eventKey) : undefined;
  // Reports of the current status (Identomat) read it too, only to tell the newest report from a late one.
  const readsState = storedKey !== undefined || (provider.lookup !== undefined && read.askable && facts.reportsCurrent === true);
  const firstState = readsState ? await deps.store.getState(provider.id, facts.subjectId, facts.part) : undefined;
  const stored = storedKey && mayHoldClaim(firstState, facts.eventKey) ? await deps.store.getItem(storedKey) : undefined;
  // A new change of a provider that reports the current status, received after every one the state
  // holds (not a retry of the latest, judged when it came): how the state will key it, too.
  const newestReport = resolveEventKey(facts, firstState, message.receivedAt).isChange;
  const attempt = await askProvider(provider, read, stored, deps, receiveCount, newestReport);
  const asked = attempt && 'verdict' in attempt ? attempt : undefined;
  const askFault = attempt && 'fault' in attempt ? attempt : undefined;
  const attempts = deps.settleAttempts ?? QUEUE.settleAttempts;
  // Its asks spent and never confirmed: left to re-checks while it is ahead of the status in place
  // (the endpoint had not caught up with it); one the status in place is past is old news.
  const asksSpent = attempt !== undefined && 'capped' in attempt && (firstState?.orderKey === undefined || orderKey(read.placed) > firstState.orderKey);
  // Still not caught up on this delivery's last try (behind the claim, or not knowing the subject
  // yet): the verdict stands, and re-checks keep asking.
  const unanswered = askFault !== undefined || asksSpent || asked?.lagging === true || (asked?.unsettled === true && receiveCount >= attempts);

  // The state read before asking serves the first write attempt (a write since fails its condition).
  const looked = readsState ? { state: firstState, claimRead: storedKey !== undefined } : undefined;
  // Another record of this batch wrote the subject's state first: that read is stale, read it again.
  const turn = await deps.subjectTurn?.(subjectTurnKey(provider.id, facts.subjectId, facts.part));
  let written: Awaited<ReturnType<typeof applyToState>>;
  try {
    written = await applyToState(provider, message, read, asked, stored, deps, turn?.afterAnother ? undefined : looked, unanswered, askFault?.retryAfterSeconds);
  } finally {
    turn?.release();
  }
  const { eventKey, before, after } = written;
  // Asked again with back-off below: this answer is not yet the delivery's verdict, and is logged
  // apart from it (the confirmation metrics and alarms count only a verdict that stands).
  const settling = asked?.unsettled === true && receiveCount < attempts;
  const created = await storeEvents(provider, message, read, eventKey, asked, askFault, deps, settling);
  // Stored first: a fault joining is thrown, and the redelivery (a duplicate by then) joins it.
  if (deps.relayJoin) await deps.relayJoin({ provider, payload: read.payload, subjectId: facts.subjectId });

  const changed = statusChanged(before, after);
  const confirmation = asked?.verdict.kind ?? (stored?.confirmation as ConfirmationKind | undefined);
  // Stored and logged before by this very message, handed back to ask again (marked `settleRetry`
  // on the claim): neither a new callback nor a provider's repeat. A message whose earlier receive
  // stopped before its line (a fault after the put) is logged `stored`: its first count.
  const original = created === 'exists' && receiveCount > 1 ? (stored?.eventKey === eventKey ? stored : await deps.store.getItem(keys.event(provider.id, facts.subjectId, eventKey))) : undefined;
  const redelivered = original !== undefined && original.requestId === message.requestId;
  const counted = redelivered && original.settleRetry === true;
  deps.log.info('stored', {
    provider: provider.id,
    requestId: message.requestId,
    subjectId: maskSubjectId(facts.subjectId, provider),
    part: maskPhoneNumbers(facts.part),
    // The provider's text, as free as a subject id: masked the same way.
    status: maskPhoneNumbers(facts.status),
    outcome: facts.outcome,
    result: created === 'created' || (redelivered && !counted) ? 'stored' : counted ? 'redelivered' : 'duplicate',
    stateChanged: changed,
    // From API Gateway's receipt to now, the state written: the pipeline's lag (a metric).
    lagMs: deps.now().getTime() - Date.parse(message.receivedAt),
    ...(asked ? { [settling ? 'pendingVerdict' : 'confirmation']: asked.verdict.kind, confirmedStatus: maskPhoneNumbers(asked.verdict.answerStatus), differences: asked.verdict.differences } : {}),
    ...(askFault ? { askFault: askFault.fault } : {}),
    ...(askFault?.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: askFault.retryAfterSeconds }),
  });

  if (settling) {
    // A callback can overtake the status endpoint's own view of a transaction: recorded as it
    // stands, then asked again with back-off before this delivery's verdict stands.
    throw new DependencyError(provider.id, `status endpoint ${asked.verdict.kind === 'not_found' ? 'does not know this subject' : 'is behind the callback'} yet (attempt ${receiveCount} of ${attempts})`);
  }
  return {
    kind: created === 'created' ? 'stored' : 'duplicate',
    subjectId: facts.subjectId,
    stateChanged: changed,
    ...(confirmation ? { confirmation } : {}),
  };
}
