import { createHmac, hkdfSync } from 'node:crypto';
import * as z from '../shared/zod.ts';
import { refusingPlainHttp } from '../providers/common.ts';
import { findProvider } from '../providers/index.ts';
import { type AnyProvider, INSTRUCTION_LIMITS, maskSubjectId, type OutgoingMessage, type SendContext } from '../providers/provider.ts';
import { ConfigurationError, DependencyError, MessageRefusedError, UncertainDeliveryError, errorMessage } from '../shared/errors.ts';
import type { Logger } from '../shared/log.ts';
import { keys, TABLE } from './pipeline-definition.ts';
import { instructionEventId, type InstructionDetail, legacyInstructionEventId, storedInstruction } from './publish.ts';
import type { SecretCache } from './secrets.ts';
import type { Item, ItemKey } from './store.ts';

/**
 * The relay: a "Callback Instruction" (Identomat's code or session link, by SMS) delivered through
 * the gateway's own SMS provider (TeleSign), at most once per instruction however often the event
 * comes, and never once it is too old to be of use.
 *
 * Each instruction has a relay item beside the subject it belongs to (`<provider>#<subject>`,
 * `RELAY#<eventId>`), written by a conditional put before anything is sent:
 *
 *   claimed ──marker still ours──▶ sending   (in one transaction, just before the request leaves)
 *      ├──a later one came first──▶ superseded (never sent)
 *      └──a fault──────────────────▶ retry     (nothing left)
 *   sending ──sent──────────▶ sent       (the provider's reference kept; a link item under
 *      │                                   `<sender>#<reference>` / `RELAYED` joins its delivery reports)
 *      ├──no answer─────────▶ uncertain  (the request left, no answer: it may have gone out; never resent;
 *      │                                   its delivery report, if one comes, is joined by external id: below)
 *      ├──refused for good──▶ refused    (an invalid number, a trial account's unverified number…)
 *      └──nothing sent──────▶ retry ──(next delivery)──▶ claimed again, expired or superseded
 *   (none) ──too old────────▶ expired    (never sent)
 *   (none) ──a later one────▶ superseded (never sent: a later code, or link, of the same subject went first)
 *
 * Never an older code after a newer one: before an instruction is claimed for sending, it moves the
 * subject's marker of its family (`RELAY-LATEST#code` or `#link`) to its receipt time, by a
 * conditional write; a marker already later (or at the same millisecond, taken by another
 * instruction) means a later instruction of the family came first (the person asked again, and the
 * provider issued a new code), so this one is `superseded`. Just before the request goes to the
 * sender, the marker is checked again, in the same transaction that moves the item from `claimed`
 * to `sending`: an instruction overtaken between its claim and its send is `superseded` too. A
 * code held back by a fault and delivered again after its successor is never sent; only two sends
 * already on their way at the same moment are not ordered.
 *
 * A delivery that finds `sent`, `expired`, `superseded`, `uncertain` or `refused` does nothing. One that finds
 * `sending` older than a send can take was left by a crash mid-send: it may have gone out, so it
 * becomes `uncertain`, never resent. One that finds `claimed` as old was left before any request
 * (a fault, or a crash, between the claim and the send): nothing went out, so it is claimed again.
 * A younger `claimed` or `sending` is another delivery at work, left to it.
 *
 * What is sent is what the gateway stored, never what the event says: the event names the stored
 * callback (`eventKey`, and `eventId`, which is derived from that key and its receipt time), and
 * the relay reads that item and sends the instruction in it. EventBridge reserves no custom source, so anyone allowed to put
 * events on the bus can write a "Callback Instruction"; one that names no stored instruction is
 * sent nowhere (`skipped`, reason `not stored`, counted by the RelayNotSent alarm), and one whose
 * destination or text differs from the stored instruction's sends the stored one.
 *
 * An `uncertain` send knows no reference, but the request carried the instruction's eventId as its
 * external id, and the sender's delivery reports echo it. The relay and the worker meet at one item
 * keyed by that id (`keys.external`, outside every subject's partition): the relay, once it records
 * `uncertain`, writes which relay item the id names; the worker, storing a report that carries such
 * an id (only with the relay on), writes the report's reference. Each writes only the fields the item
 * does not have yet and reads back what is there, so whichever comes second, in either order, finds
 * both and joins them: the relay item gets the reference (`referenceFrom: 'delivery report'`, still
 * `uncertain`: nothing answered the send) and the sender's subject its `RELAYED` link, as a send
 * that was answered. A report that names no uncertain instruction joins nothing.
 *
 * Never more than `relayMaxPerNumberPerHour` SMS to one number in one clock hour (UTC), against SMS
 * pumping and floods: the same transaction that moves an item to `sending` adds 1 to the number's
 * count for the hour (`keys.relayCount`, under a keyed hash of the number, `numberHash`, gone by TTL
 * a few hours later), on condition that it is below the cap. Over it, nothing leaves: `refused`, the
 * reason naming the setting. Counted only there, so an instruction expired, superseded or not stored never
 * uses the cap, and once: the item keeps the hour it was counted in (`countedHour`), and a later
 * attempt of the same instruction (a redelivery after a crash) is not counted again. An attempt that
 * sends nothing (TeleSign's 429, 500 or 503, no connection, a refusal) gives its count back and clears
 * `countedHour`: the cap is of SMS that may have left, not of tries. The item keeps the count's key
 * (`countKey`, `countExpiresAt`) all the same: should a delivery report show that TeleSign took such
 * an attempt after all (another reference, recorded once the retry sent), the worker adds it back,
 * in the transaction that records the reference.
 *
 * No destination, text, link or code is written to the relay item or to a log line: only ids,
 * kinds and outcomes (and, on the item, its count's key, which holds the number's keyed hash: no
 * use without the sender's secret).
 */

export const RELAY = {
  /** Default age past which a one-time code is not sent (the `relayMaxAgeSeconds` setting). */
  codeMaxAgeSeconds: 300,
  /**
   * Age past which a link is not sent. Identomat publishes no lifetime for its session links; a day
   * is ours (inferred): long enough for an outage to be fixed and the DLQ redriven.
   */
  linkMaxAgeSeconds: 86_400,
  /** Receives before the relay queue's DLQ: with the back-off below, a code's receives outlast its 300 s. */
  maxReceiveCount: 8,
  /** First retry delay; doubles per receive (capped at 15 minutes): 10, 20, 40, 80, 160, 320 s… */
  retryBaseSeconds: 10,
  /** The relay function's timeout: no send outlives it, so a `sending` item older than this was left by a crash. */
  timeoutSeconds: 30,
  /** ≥ 6 × the function timeout, as AWS recommends for SQS event sources. */
  visibilityTimeoutSeconds: 180,
  batchSize: 10,
  /** Days the relay queue keeps an instruction: a code is useless after minutes and a link after a day. */
  retentionDays: 1,
  /** Days the relay's DLQ keeps an instruction it gave up on: time to find the cause over a long weekend. */
  dlqRetentionDays: 4,
  /**
   * Default of `relayMaxPerNumberPerHour`: SMS to one number in one clock hour. A person who asks for
   * a code again rarely needs more than a few in an hour; a pumping run sends hundreds.
   */
  maxPerNumberPerHour: 5,
  /** Hours a number's count for an hour is kept past the hour's end (DynamoDB TTL): long enough for no send to still be counting in it. */
  countKeepHours: 2,
} as const;

/** The reasons of the `skipped` lines the RelayNotSent alarm counts (lib/sms-relay.ts `RELAY_LOG_PATTERNS`). */
export const SKIPPED = {
  unreadable: 'unreadable',
  notStored: 'not stored',
  notAnInstruction: 'not a Callback Instruction event',
} as const;

/** Writes of `retry` tried (each with the SDK's own retries) before a fault that sent nothing is given up on. */
const RETRY_RECORD_TRIES = 3;

export const RELAY_SK_PREFIX = 'RELAY#';
/** The sort key prefix of the subject's markers of the latest instruction claimed, per family (`code`, `link`). */
export const RELAY_LATEST_SK_PREFIX = 'RELAY-LATEST#';
/** The sort key of the link item in the sender's subject (`telesign#<reference>`). */
export const RELAYED_SK = 'RELAYED';

/**
 * The sender's subject's `RELAYED` link: which instruction the message `referenceId` carried (one
 * reference, one link), kept as long as the relay's items. `how`: when it was sent (an answered send)
 * or joined from a delivery report.
 */
function relayedLink(
  sender: string,
  referenceId: string,
  of: { readonly forProvider: string; readonly forSubjectId: string; readonly eventId: string; readonly kind?: unknown; readonly oneTimeCode?: unknown },
  at: Date,
  retentionDays: number,
  how: { readonly sentAt: string } | { readonly referenceFrom: string; readonly joinedAt: string },
): Item {
  return {
    pk: keys.subject(sender, referenceId),
    sk: RELAYED_SK,
    provider: sender,
    subjectId: referenceId,
    forProvider: of.forProvider,
    forSubjectId: of.forSubjectId,
    eventId: of.eventId,
    ...(typeof of.kind === 'string' ? { kind: of.kind } : {}),
    ...(typeof of.oneTimeCode === 'boolean' ? { oneTimeCode: of.oneTimeCode } : {}),
    ...how,
    [TABLE.ttlAttribute]: Math.floor(at.getTime() / 1000) + retentionDays * 86_400,
  };
}

/** What a link names of the instruction it carried. */
const linkOf = (detail: InstructionDetail) => ({ forProvider: detail.provider, forSubjectId: detail.subjectId, eventId: detail.eventId, kind: detail.kind, oneTimeCode: detail.oneTimeCode });

/** Where a relay item's reference came from when no answer to the send gave it: the sender's delivery report. */
export const REFERENCE_FROM_REPORT = 'delivery report';

export type RelayStatus = 'claimed' | 'sending' | 'retry' | 'sent' | 'expired' | 'superseded' | 'uncertain' | 'refused';
const FINAL: readonly RelayStatus[] = ['sent', 'expired', 'superseded', 'uncertain', 'refused'];
/** The final statuses that say nothing was sent. */
const NOT_SENT: readonly RelayStatus[] = ['expired', 'superseded', 'refused'];

/** What one delivery of an instruction came to. Faults that leave it to a later delivery are thrown. */
export type RelayResult =
  | { readonly outcome: 'sent'; readonly referenceId: string }
  | { readonly outcome: 'expired' | 'superseded' | 'uncertain' | 'refused' }
  /** Already done (or given up) by an earlier delivery: nothing sent now. */
  | { readonly outcome: 'duplicate'; readonly status: string }
  /** Another delivery of the same instruction is sending it right now (logged; the delivery is then failed, to look again later). */
  | { readonly outcome: 'in-flight' }
  /** Not something this relay delivers (an e-mail instruction, an event it cannot read). */
  | { readonly outcome: 'skipped'; readonly reason: string };

/** The relay's view of the table: the stored instruction, read; its own items, conditional writes only. */
export interface RelayStore {
  /**
   * The item at `key` (a consistent read), or undefined when there is none: the stored instruction
   * an event names; the relay item of one no longer stored.
   */
  read(key: ItemKey): Promise<Item | undefined>;
  /** Write the item if none has its key; otherwise the item that is there. */
  create(item: Item): Promise<{ readonly created: true } | { readonly created: false; readonly existing: Item }>;
  /**
   * Set `fields` (and add 1 to `attempts` when `countAttempt`) if the item's `status` and `attempt`
   * are still `expected`; otherwise the item as it is now.
   */
  update(key: ItemKey, expected: { readonly status: string; readonly attempt?: string }, fields: Item, countAttempt?: boolean): Promise<{ readonly ok: true } | { readonly ok: false; readonly current: Item | undefined }>;
  /**
   * Record a send: `fields` on the relay item if its `attempt` is still `attempt` (else on it
   * anyway: the send happened) and the link item, together; with `count`, one more on the number's
   * count for the hour, whatever its cap (the SMS has left).
   */
  recordSent(key: ItemKey, attempt: string, fields: Item, link: Item, count?: SendCount): Promise<void>;
  /**
   * Move the marker at `key` to `position` (with `fields`) unless a later time holds it, or the same
   * time for another instruction: true when it is now at `position`, false otherwise.
   */
  advance(key: ItemKey, position: MarkerPosition, fields: Item): Promise<boolean>;
  /**
   * Start the send, in one transaction: the item from `claimed` (with `attempt`) to `fields`
   * (`sending`), if the family's marker at `marker` is still at `position`, and, with `count`, 1
   * added to the number's count for the hour if it is below `count.cap`. Nothing leaves unless all
   * hold, so an item still `claimed` never had a request leave. `superseded` when the marker has
   * moved on; otherwise, when the item has, the item as it is now; otherwise, `overCap` when the
   * count is at its cap (nothing written).
   */
  beginSend(
    key: ItemKey,
    attempt: string,
    marker: ItemKey,
    position: MarkerPosition,
    fields: Item,
    count?: SendCount,
  ): Promise<
    | { readonly started: true }
    | { readonly started: false; readonly superseded: true }
    | { readonly started: false; readonly superseded: false; readonly current: Item | undefined }
    | { readonly started: false; readonly superseded: false; readonly overCap: true }
  >;
  /**
   * Set each of `fields` the item at `key` does not have yet (making the item if there is none), and
   * return the item as it is then: where an uncertain send and its delivery report meet.
   */
  meet(key: ItemKey, fields: Item): Promise<Item>;
  /**
   * Give the relay item at `key` the reference `referenceId` (and `fields`) if it is still `uncertain`
   * and has no other: the item as it is then, or undefined when it is not (sent, another reference, gone).
   */
  joinReference(key: ItemKey, referenceId: string, fields: Item): Promise<Item | undefined>;
  /**
   * Add `referenceIds` to the item's `otherReferenceIds` (a set: a repeat adds nothing) if the item is
   * there: the item as it is then, or undefined when there is none. With `count`, 1 is added to that
   * count for each reference the set did not hold yet, in one transaction with its add: a message
   * that left uncounted is counted once, however often its report comes.
   */
  addOtherReferences(key: ItemKey, referenceIds: readonly string[], count?: Pick<SendCount, 'key' | 'expiresAt'>): Promise<Item | undefined>;
  /**
   * Take 1 from the number's count for an hour (`keys.relayCount`), if it is above 0: a send counted
   * that sent nothing. Once per `attempt` (its token), however often the call is repeated.
   */
  giveBack(count: ItemKey, attempt: string): Promise<void>;
}

/** A send counted against its number's hour (`relayMaxPerNumberPerHour`). */
export interface SendCount {
  /** The number's count for the hour (`keys.relayCount`). */
  readonly key: ItemKey;
  /** Sends the count may reach: the one counted now only if fewer are there. */
  readonly cap: number;
  /** When the count is deleted (epoch seconds, the TTL attribute). */
  readonly expiresAt: number;
}

/**
 * Where a relay item's instruction was counted (`countKey`, `countExpiresAt`, kept when the count is
 * given back), or undefined when it never was (no cap, or an item written before they were kept).
 */
function countOn(item: Item | undefined): Pick<SendCount, 'key' | 'expiresAt'> | undefined {
  const key = item?.countKey as Partial<ItemKey> | undefined;
  if (typeof key?.pk !== 'string' || typeof key.sk !== 'string' || typeof item?.countExpiresAt !== 'number') return undefined;
  return { key: { pk: key.pk, sk: key.sk }, expiresAt: item.countExpiresAt };
}

/** The fields a relay item keeps of the count its send was counted in. */
const countedFields = (count: SendCount & { readonly hour: string }) => ({ countedHour: count.hour, countKey: count.key, countExpiresAt: count.expiresAt });

/** What the relay and the worker need to join an uncertain send and its delivery report. */
export interface ReportJoinDependencies {
  readonly store: Pick<RelayStore, 'meet' | 'joinReference' | 'create' | 'read' | 'addOtherReferences'>;
  /** The provider that sends (TeleSign): its delivery reports are the ones joined. */
  readonly sender: AnyProvider;
  readonly now: () => Date;
  /** Days the meeting and link items are kept (DynamoDB TTL), as the relay's own items. */
  readonly retentionDays: number;
  readonly log?: Logger;
}

/** A stored delivery report, as the worker hands it over: who sent it, its payload, its subject (the reference). */
export interface StoredReport {
  readonly provider: AnyProvider;
  readonly payload: unknown;
  readonly subjectId: string;
}

/** The worker's part of the join (`WorkerDependencies.relayJoin`): present only with the relay on. */
export type DeliveryReportJoin = (report: StoredReport) => Promise<JoinOutcome>;

/**
 * What came of a meeting: `joined` (now, or already by an earlier delivery), `waiting` for the other
 * side, `not joined` (the relay item is not uncertain, or has another reference), `another reference`
 * (a report of a second message carrying the same external id: recorded, never joined), or `not
 * ours` (no external id, or not one the relay gives).
 */
export type JoinOutcome = 'joined' | 'waiting' | 'not joined' | 'another reference' | 'not ours';

/** An instruction's eventId (functions/core/publish.ts `instructionEventId`): the only external id the relay gives a send. */
const EVENT_ID = /^[0-9a-f]{32}$/;

/**
 * Meet at the eventId's item with `fields` (the relay item it names, or the report's reference), and
 * join the two if the other side has come: the relay item's reference, then the sender's link item.
 * Every write is conditional and repeatable, so a redelivery, or both sides at once, joins once.
 */
async function meetAndJoin(eventId: string, fields: Item, deps: ReportJoinDependencies): Promise<JoinOutcome> {
  const now = deps.now();
  const at = now.toISOString();
  const expiresAt = Math.floor(now.getTime() / 1000) + deps.retentionDays * 86_400;
  const met = await deps.store.meet(keys.external(deps.sender.id, eventId), { eventId, ...fields, createdAt: at, [TABLE.ttlAttribute]: expiresAt });
  const referenceId = typeof met.referenceId === 'string' ? met.referenceId : undefined;
  const forProvider = typeof met.forProvider === 'string' ? met.forProvider : undefined;
  const forSubjectId = typeof met.forSubjectId === 'string' ? met.forSubjectId : undefined;
  // A report naming another reference than the one already met: a second message went out with
  // this instruction's external id (a retry after an answer that said "not sent", or someone else's
  // send with our id). Never joined, never lost: recorded beside the first.
  if (typeof fields.referenceId === 'string' && referenceId !== undefined && fields.referenceId !== referenceId) return anotherReference(eventId, fields.referenceId, met, deps);
  if (!referenceId || !forProvider || !forSubjectId) return 'waiting';
  const relayItemKey = relayKey({ provider: forProvider, subjectId: forSubjectId, eventId });
  const joined = await deps.store.joinReference(relayItemKey, referenceId, { referenceFrom: REFERENCE_FROM_REPORT, referenceAt: at });
  if (!joined) {
    // The relay item holds another reference (a retry TeleSign answered, after an attempt it had
    // taken despite a 429/5xx): this report's message is a second one, and the only report of it
    // may be this one. Recorded beside the item's own, as when the meeting item held the other.
    // Or it holds none and says not sent (the retry found the code expired, or superseded): the
    // message TeleSign took all the same is recorded there too, never left out of the story.
    const item = await deps.store.read(relayItemKey);
    const own = typeof item?.referenceId === 'string' ? item.referenceId : undefined;
    const notSent = own === undefined && NOT_SENT.includes(item?.status as RelayStatus);
    if (own === referenceId || (own === undefined && !notSent)) return 'not joined';
    // The other message left: when the relay item's instruction was counted, the other is counted
    // in the same hour (its attempt, answered 429/5xx, gave its count back), once.
    const noted = await deps.store.addOtherReferences(relayItemKey, [referenceId], countOn(item));
    const references = (own === undefined ? 0 : 1) + (noted ? referencesIn(noted.otherReferenceIds).filter((each) => each !== own).length : 1);
    deps.log?.warn("relay: another message carried this instruction's external_id", { eventId, provider: forProvider, referenceId: maskSubjectId(referenceId, deps.sender), references, onSession: noted !== undefined });
    return 'another reference';
  }
  // As the link of a send that was answered (the same key: one reference, one link), dated when joined.
  await deps.store.create(
    relayedLink(deps.sender.id, referenceId, { forProvider, forSubjectId, eventId, kind: joined.kind, oneTimeCode: joined.oneTimeCode }, now, deps.retentionDays, { referenceFrom: REFERENCE_FROM_REPORT, joinedAt: at }),
  );
  // The reference is the sender's subject, masked as its own lines mask it.
  deps.log?.info('relay: delivery report joined', { eventId, provider: forProvider, referenceId: maskSubjectId(referenceId, deps.sender) });
  return 'joined';
}

/**
 * A delivery report whose reference is not the one the meeting item holds: TeleSign took two
 * messages with one instruction's external id, and the person may have had the code twice (and the
 * account paid twice). The report's reference goes on the meeting item's `otherReferenceIds`, and on
 * the relay item's (found by the meeting item, else by the link of the first reference): each
 * reference TeleSign took for it but the one the relay item holds. Logged as a warning with the ids
 * (references masked). Repeatable: a set, and a redelivery adds nothing.
 */
async function anotherReference(eventId: string, reported: string, met: Item, deps: ReportJoinDependencies): Promise<JoinOutcome> {
  const meeting = keys.external(deps.sender.id, eventId);
  const noted = (await deps.store.addOtherReferences(meeting, [reported])) ?? met;
  const all = [String(met.referenceId), ...referencesIn(noted.otherReferenceIds)];
  let forProvider = typeof met.forProvider === 'string' ? met.forProvider : undefined;
  let forSubjectId = typeof met.forSubjectId === 'string' ? met.forSubjectId : undefined;
  // A send that was answered (its relay item never named here): its link, under the reference the
  // answer gave, whichever of those met it is (a report of the other message may have come first).
  for (const reference of all) {
    if (forProvider && forSubjectId) break;
    const link = await deps.store.read({ pk: keys.subject(deps.sender.id, reference), sk: RELAYED_SK });
    if (link && link.eventId === eventId && typeof link.forProvider === 'string' && typeof link.forSubjectId === 'string') ({ forProvider, forSubjectId } = { forProvider: link.forProvider, forSubjectId: link.forSubjectId });
  }
  let recorded = false;
  if (forProvider && forSubjectId) {
    const key = relayKey({ provider: forProvider, subjectId: forSubjectId, eventId });
    const item = await deps.store.read(key);
    const others = item ? all.filter((reference) => reference !== item.referenceId) : [];
    recorded = others.length > 0 && (await deps.store.addOtherReferences(key, others, countOn(item))) !== undefined;
  }
  deps.log?.warn("relay: another message carried this instruction's external_id", {
    eventId,
    ...(forProvider ? { provider: forProvider } : {}),
    referenceId: maskSubjectId(reported, deps.sender),
    references: all.length,
    onSession: recorded,
  });
  return 'another reference';
}

/** The references of an `otherReferenceIds` set (or list), as read back. */
function referencesIn(value: unknown): string[] {
  if (value instanceof Set || Array.isArray(value)) return [...(value as Iterable<unknown>)].filter((each): each is string => typeof each === 'string');
  return [];
}

/**
 * The worker's side of the join, for the relay's sender: a stored delivery report that carries an
 * external id of the relay's kind meets the instruction it names (if the relay recorded it
 * uncertain). Anything else is left alone, unread. A fault is thrown: the report is stored, and its
 * redelivery joins it.
 */
export function deliveryReportJoin(deps: ReportJoinDependencies): DeliveryReportJoin {
  return async (report) => {
    if (report.provider.id !== deps.sender.id) return 'not ours';
    const externalId = deps.sender.externalIdOf?.(report.payload);
    if (externalId === undefined || !EVENT_ID.test(externalId)) return 'not ours';
    return meetAndJoin(externalId, { referenceId: report.subjectId }, deps);
  };
}

/**
 * The relay's side: the instruction whose send got no answer is named at its eventId's meeting item,
 * so a delivery report that comes (or came) with that external id joins it.
 */
function awaitReport(relayItem: Pick<InstructionDetail, 'provider' | 'subjectId' | 'eventId'>, deps: RelayDependencies): Promise<JoinOutcome> {
  return meetAndJoin(relayItem.eventId, { forProvider: relayItem.provider, forSubjectId: relayItem.subjectId }, deps);
}

/** Where an instruction stands among its subject's: when the gateway received it, and which it is. */
export interface MarkerPosition {
  /** Receipt time, UTC to the millisecond, so that text order is time order. */
  readonly at: string;
  readonly eventId: string;
}

export interface RelayDependencies {
  readonly store: RelayStore;
  readonly secrets: SecretCache;
  /** The provider that sends (its `sendMessage`): TeleSign. */
  readonly sender: AnyProvider;
  readonly send: SendContext;
  readonly now: () => Date;
  readonly log: Logger;
  /** A fresh token per send attempt. */
  readonly newAttempt: () => string;
  /** @default RELAY.codeMaxAgeSeconds */
  readonly codeMaxAgeSeconds?: number;
  /** @default RELAY.linkMaxAgeSeconds */
  readonly linkMaxAgeSeconds?: number;
  /** How long a send can be in flight (the function's timeout). @default RELAY.timeoutSeconds */
  readonly inFlightSeconds?: number;
  /** Days the relay and link items are kept (DynamoDB TTL), like event items. */
  readonly retentionDays: number;
  /**
   * The country calling codes the relay sends to (`relayAllowedCountryCodes`): a number elsewhere is
   * recorded refused and not sent. @default undefined: any country
   */
  readonly allowedCountryCodes?: readonly string[];
  /**
   * SMS sent to one number in one clock hour (UTC) past which an instruction is refused and not sent
   * (`relayMaxPerNumberPerHour`); 0: no cap. @default undefined: no cap (the handlers' setup gives
   * RELAY.maxPerNumberPerHour)
   */
  readonly maxPerNumberPerHour?: number;
  /**
   * The local runtime, after its sender changed (a simulated one, then a real one): instructions
   * received before this time (ISO-8601) were queued for the other sender and are not sent. Read
   * from the stored instruction, never from the event. @default undefined: every instruction
   */
  readonly sendsOnlyReceivedFrom?: string;
}

/**
 * The `detail` of a "Callback Instruction" event (functions/core/publish.ts), checked: the relay
 * reads it from a queue, and what it reads must never be sent half-understood.
 */
export const InstructionDetailSchema = z.looseObject({
  eventId: z.string().check(z.regex(/^[A-Za-z0-9_-]{1,128}$/)),
  provider: z.string().check(z.minLength(1), z.maxLength(64)),
  subjectId: z.string().check(z.minLength(1), z.maxLength(512)),
  eventKey: z.string().check(z.minLength(1), z.maxLength(1024)),
  kind: z.string().check(z.minLength(1), z.maxLength(64)),
  channel: z.enum(['sms', 'email']),
  // The limits the event is published with: a text too long for one SMS is then recorded refused
  // on the session (TeleSign takes 1,600 characters), not skipped as unreadable.
  destination: z.string().check(z.minLength(1), z.maxLength(INSTRUCTION_LIMITS.field)),
  text: z.optional(z.string().check(z.maxLength(INSTRUCTION_LIMITS.text))),
  link: z.optional(z.string().check(z.maxLength(INSTRUCTION_LIMITS.field))),
  oneTimeCode: z.boolean(),
  receivedAt: z.iso.datetime({ offset: true }),
});

/** An instruction's text as one SMS: the text, and the link after it unless the text holds it. */
export function smsText(detail: Pick<InstructionDetail, 'text' | 'link'>): string {
  const text = detail.text?.trim() ?? '';
  const link = detail.link?.trim() ?? '';
  if (text && link && !text.includes(link)) return `${text}\n${link}`;
  return text || link;
}

/**
 * `relayAllowedCountryCodes`: `any`, or ITU-T E.164 country calling codes separated by commas
 * (`995, +255`), or, inside the two codes several countries share, a numbering-plan area (`1876`,
 * `+1 201`, `77`). Returns the codes (digits only), or undefined for any country.
 */
export function parseCountryCodes(text: string): readonly string[] | undefined {
  if (text.trim().toLowerCase() === 'any') return undefined;
  const codes = text.split(',').map((part) => part.trim().replace(/^\+/, '').replace(/\s+/g, ''));
  for (const code of codes) {
    const why = notACountryCode(code);
    if (why) throw new Error(`"${code}" is not a country calling code (${why}); write "any" to send anywhere`);
  }
  return [...new Set(codes)];
}

/**
 * How ITU-T E.164 lays out country calling codes (https://www.itu.int/pub/T-SP-E.164D, the list of
 * assigned codes; summarised by world zone in https://en.wikipedia.org/wiki/Telephone_country_code):
 * 1 and 7 are the only one-digit codes; these two-digit codes are assigned; and under these
 * two-digit prefixes every code has three digits. A code is exact only if it is one of these: `4`
 * or `35` would let through several countries, `441` is a part of one.
 *
 * +1 and +7 are each shared by several countries: +1 is the North American Numbering Plan (the
 * United States, Canada, and Caribbean and Pacific countries and territories, each by its own area
 * codes: Jamaica +1 876, the Dominican Republic +1 809…, https://nationalnanpa.com/area_codes/),
 * +7 Russia and Kazakhstan (+7 6, +7 7). So a country there is allowed by its areas: `1` and a
 * three-digit area code (2 to 9 first, as NANP area codes are), or `7` and one to three digits.
 */
const TWO_DIGIT_CODES = new Set(['20', '27', '30', '31', '32', '33', '34', '36', '39', '40', '41', '43', '44', '45', '46', '47', '48', '49', '51', '52', '53', '54', '55', '56', '57', '58', '60', '61', '62', '63', '64', '65', '66', '81', '82', '84', '86', '90', '91', '92', '93', '94', '95', '98']);
const THREE_DIGIT_PREFIXES = new Set(['21', '22', '23', '24', '25', '26', '29', '35', '37', '38', '42', '50', '59', '67', '68', '69', '80', '85', '87', '88', '96', '97', '99']);

/** Why `code` is not one country's calling code, or undefined when it is. */
function notACountryCode(code: string): string | undefined {
  if (code[0] === '1') return /^1(?:[2-9]\d{2})?$/.test(code) ? undefined : '+1 and a whole area code: 1 and three digits, e.g. 1876 or 1201';
  if (code[0] === '7') return /^7\d{0,3}$/.test(code) ? undefined : '+7 and at most three more digits, e.g. 77';
  if (!/^\d{1,3}$/.test(code)) return '1 to 3 digits, e.g. 995 or +1 876';
  const within = (parent: string) => `a part of +${parent}: write ${parent}`;
  if (code.length === 1) return 'a world zone of several countries: write the whole code, e.g. 44 or 995';
  const first = code.slice(0, 2);
  if (code.length === 2) {
    if (TWO_DIGIT_CODES.has(code)) return undefined;
    return THREE_DIGIT_PREFIXES.has(code) ? `shared by the ${code}x countries: write all three digits, e.g. ${code}0` : 'not assigned';
  }
  if (THREE_DIGIT_PREFIXES.has(first)) return undefined;
  return TWO_DIGIT_CODES.has(first) ? within(first) : 'not assigned';
}

/** What allowing these codes lets through beyond what a reader may think: +1 and +7 whole. */
export function sharedCodeWarnings(codes: readonly string[] | undefined): string[] {
  const warnings: string[] = [];
  if (codes?.includes('1')) {
    warnings.push(
      '+1 is the whole North American Numbering Plan: the United States and Canada, and Caribbean and Pacific countries and territories ' +
        '(Jamaica +1 876, the Dominican Republic +1 809…), destinations SMS pumping favours. To allow some only, list their area codes (e.g. 1201,1212).',
    );
  }
  if (codes?.includes('7')) warnings.push('+7 is both Russia and Kazakhstan (+7 6, +7 7). To allow one only, list its areas (e.g. 77).');
  return warnings;
}

/**
 * Whether the number is in one of the countries: its digits begin with one of the calling codes.
 * Calling codes are a prefix code (none begins another: ITU-T E.164), so this is exact for a
 * number written with its country code, as instructions carry it.
 *
 * In the two shared codes, where an area is allowed rather than a country, it must also be a whole
 * number there: ten digits after the code (+1: the NANP's area code, office code and line number,
 * https://glossary.atis.org/glossary/north-american-number-plan-nanp/; +7: a national number of
 * ten digits, https://en.wikipedia.org/wiki/%2B7). `+1 201 234 567 890` begins as New Jersey but is
 * no number in it, and what the sender would make of it is not the allowed area's to say.
 */
export function sendsTo(countryCodes: readonly string[], destination: string): boolean {
  const digits = e164(destination).replace(/^\+/, '');
  if (!/^\d+$/.test(digits)) return false;
  if (SHARED_ZONE.test(digits) && digits.length !== SHARED_ZONE_DIGITS) return false;
  return countryCodes.some((code) => digits.startsWith(code));
}

/** The shared calling codes (+1, +7), and the length of every number in them with its code: 1 or 7 and ten digits. */
const SHARED_ZONE = /^[17]/;
const SHARED_ZONE_DIGITS = 11;

/** A phone number as the provider gave it, written as E.164 (`+` and digits); spaces, dots, dashes and brackets dropped. */
export function e164(destination: string): string {
  return destination.replace(/[\s().-]/g, '');
}

/**
 * What the key numbers are hashed with is for (HKDF's `info`, RFC 5869): a key derived for this use
 * and no other. Another label, or another version of it, is another key: every count starts again.
 */
export const NUMBER_KEY_LABEL = 'callback-gateway relay number-count key v1';

/**
 * The key a number's hourly count is keyed with: HKDF-SHA-256 of the sender's secret key material
 * (`Provider.sendingKey`: TeleSign's API key, which the relay reads to send), under
 * NUMBER_KEY_LABEL. No secret of its own (a Secrets Manager secret more is a cost more), and none a
 * reader of the table holds: the table, its backups, exports and stream carry hashes only, which
 * cannot be matched to numbers without the TeleSign secret. Nothing of the API key can be learnt
 * from the derived key, nor from the hashes. A new API key (a rotation) is a new key: counts start
 * again under new keys, and the old ones go by TTL. A relay that still holds the old secret (up to
 * secretCacheSeconds) counts apart from one that holds the new: one more cap to a number in each
 * clock hour both run, the hour of the change and, near its end, the next.
 * The worker never needs it: it adds to a count through the key the relay item keeps (`countKey`).
 */
export function numberKey(sender: AnyProvider, secret: unknown): Buffer {
  const material = sender.sendingKey?.(secret);
  // Checked at synth (providerDefinitionProblem) and by the secret's schema: never counted unkeyed.
  if (!material || material.length < 16) throw new ConfigurationError(`the ${sender.id} secret gives no key material to hash phone numbers with: nothing sent`);
  return Buffer.from(hkdfSync('sha256', material, Buffer.alloc(0), NUMBER_KEY_LABEL, 32));
}

/**
 * A number as its hourly count is keyed: the HMAC-SHA-256 of its E.164 form under `key`
 * (`numberKey`), in hex, cut to 128 bits. Never the number itself in a key (keys are shown by every
 * tool that lists the table), and not a plain hash either: a plain SHA-256 is matched to the number
 * by hashing a country's numbers, in minutes; this one only by whoever holds the key.
 */
export const numberHash = (destination: string, key: Uint8Array): string => createHmac('sha256', key).update(e164(destination)).digest('hex').slice(0, 32);

/** The clock hour (UTC) a send at `at` is counted in: `2026-01-31T14`. */
export const countHour = (at: Date): string => at.toISOString().slice(0, 13);

/**
 * The count a send at `at` adds to, or undefined when there is no cap. `secret`: the sender's, which
 * the number's hash is keyed with (`numberKey`).
 */
function sendCount(detail: InstructionDetail, secret: unknown, deps: RelayDependencies, at: Date): (SendCount & { readonly hour: string }) | undefined {
  const cap = deps.maxPerNumberPerHour ?? 0;
  if (cap <= 0) return undefined;
  const hour = countHour(at);
  const hourEnds = Math.floor(Date.parse(`${hour}:00:00.000Z`) / 1000) + 3600;
  return { key: keys.relayCount(deps.sender.id, numberHash(detail.destination, numberKey(deps.sender, secret)), hour), cap, expiresAt: hourEnds + RELAY.countKeepHours * 3600, hour };
}

export const relayKey = (detail: Pick<InstructionDetail, 'provider' | 'subjectId' | 'eventId'>): ItemKey => ({
  pk: keys.subject(detail.provider, detail.subjectId),
  sk: `${RELAY_SK_PREFIX}${detail.eventId}`,
});

/** The subject's marker of the latest instruction of this one's family claimed for sending: codes and links apart. */
export const latestKey = (detail: Pick<InstructionDetail, 'provider' | 'subjectId' | 'oneTimeCode'>): ItemKey => ({
  pk: keys.subject(detail.provider, detail.subjectId),
  sk: `${RELAY_LATEST_SK_PREFIX}${detail.oneTimeCode ? 'code' : 'link'}`,
});

/**
 * An instruction's place among its subject's: when the gateway received it (UTC, to the millisecond,
 * so that text order is time order). Two of one millisecond are not ordered by anything they carry
 * (the eventId is a hash): the first to take the marker is sent, the other superseded.
 */
export const positionOf = (detail: Pick<InstructionDetail, 'receivedAt' | 'eventId'>): MarkerPosition => ({ at: new Date(detail.receivedAt).toISOString(), eventId: detail.eventId });

/** What may be logged of an instruction: ids and kinds, never its destination, text or link. */
function logFields(detail: InstructionDetail, ageSeconds: number) {
  return { eventId: detail.eventId, provider: detail.provider, subjectId: maskSubjectId(detail.subjectId, findProvider(detail.provider)), kind: detail.kind, ageSeconds };
}

/** Which delivery of the instruction this is, when it comes from a queue: its last gives up to the DLQ. */
export interface RelayDelivery {
  readonly receiveCount: number;
  /** The queue's receive limit (RELAY.maxReceiveCount): a failure on this receive sends the message to the DLQ. */
  readonly maxReceiveCount: number;
}

/**
 * Deliver one instruction (an event's `detail`): the instruction stored where the event says, never
 * the event's own word. Returns what happened; throws when nothing was sent and a later delivery
 * may succeed (the provider unreachable, 5xx, 429; a refused credential; the table failing), after
 * recording `retry` where it could.
 */
export async function relayInstruction(raw: unknown, deps: RelayDependencies, delivery?: RelayDelivery): Promise<RelayResult> {
  const parsed = InstructionDetailSchema.safeParse(raw);
  if (!parsed.success) {
    // The issues name paths, never values (a destination).
    const paths = parsed.error.issues.map((issue) => issue.path.join('.') || '(detail)');
    deps.log.warn('relay', { outcome: 'skipped', reason: SKIPPED.unreadable, fields: paths });
    return { outcome: 'skipped', reason: `not an instruction this relay can read (${paths.join(', ')})` };
  }
  const claimed = parsed.data as InstructionDetail;
  const named = storedKeyOf(claimed);
  // Nothing the event says is logged: it holds no id of the gateway's.
  if ('notStored' in named) return notStored(named.notStored, {}, deps);
  // From here the event's eventId is of the gateway's kind and its provider one of ours (anyone can
  // compute such a pair), never free text, so they may be logged.
  let stored: InstructionDetail | undefined;
  try {
    const item = await deps.store.read(named.key);
    const found = item && storedInstruction(item);
    // The stored instruction's own event (its receipt time in the id: a tampered time in the event
    // changes nothing sent), or one published before ids held the time, carried on under its own id
    // as it was begun (its relay item, its external id). Should the same instruction come with both
    // ids, the family's marker lets one go (the same receipt time, another id: superseded).
    if (found && (named.legacy || found.eventId === claimed.eventId)) {
      const instruction = named.legacy ? { ...found, eventId: claimed.eventId } : found;
      stored = instruction;
      const differ = DELIVERED.filter((name) => claimed[name] !== instruction[name]);
      // The names only, never the values (a destination, a code).
      if (differ.length) deps.log.warn('relay: the event differs from the stored instruction; sending the stored one', { eventId: claimed.eventId, provider: claimed.provider, fields: differ });
      return await relayStored(instruction, deps);
    }
    if (!named.bound) return notStored('its eventId is not that of the stored callback it names', {}, deps);
    // Gone, or stored again since (the item this event was published for expired, and the same
    // callback came again: its own event, its own id): this one's is no longer kept.
    if (!item || found) return await storedNoLonger(claimed, deps);
    return notStored('the item it names holds no instruction', { eventId: claimed.eventId, provider: claimed.provider }, deps);
  } catch (error) {
    // The queue's last receive failed, whatever failed (the secret, the table, the sender): the
    // message goes to the DLQ, and the session says so when the stored instruction was read.
    if (delivery !== undefined && delivery.receiveCount >= delivery.maxReceiveCount) await recordGaveUp(claimed, stored, deps, delivery, error);
    throw error;
  }
}

/** The relay item as it starts: what the instruction is, never its destination or text. */
function baseItem(detail: InstructionDetail, deps: RelayDependencies, now: Date): Item {
  const at = now.toISOString();
  return {
    ...relayKey(detail),
    eventId: detail.eventId,
    provider: detail.provider,
    subjectId: detail.subjectId,
    kind: detail.kind,
    channel: detail.channel,
    oneTimeCode: detail.oneTimeCode,
    via: deps.sender.id,
    receivedAt: detail.receivedAt,
    createdAt: at,
    updatedAt: at,
    [TABLE.ttlAttribute]: Math.floor(now.getTime() / 1000) + deps.retentionDays * 86_400,
  };
}

/**
 * Mark the instruction given up on (`deadLettered` on a `retry` item, made if no delivery got as far
 * as writing one) and log it. Only from the stored instruction: when the read itself failed, the
 * line alone says so (with the event's eventId, which matches the key it names). Best effort: the
 * DLQ and its alarm hold the instruction either way.
 */
async function recordGaveUp(claimed: InstructionDetail, stored: InstructionDetail | undefined, deps: RelayDependencies, delivery: RelayDelivery, error: unknown): Promise<void> {
  const fault = errorMessage(error).slice(0, 300);
  if (stored) {
    try {
      const created = await deps.store.create({ ...baseItem(stored, deps, deps.now()), status: 'retry', attempts: 0, lastFault: fault, deadLettered: true });
      if (!created.created && created.existing.status === 'retry') {
        const attempt = created.existing.attempt;
        await deps.store.update(relayKey(stored), { status: 'retry', ...(attempt === undefined ? {} : { attempt: String(attempt) }) }, { deadLettered: true, lastFault: fault, updatedAt: deps.now().toISOString() });
      }
    } catch {
      // The table failing is likely why the delivery failed: the log line below still says it.
    }
  }
  deps.log.warn('relay: gave up, to the DLQ', { eventId: claimed.eventId, provider: claimed.provider, ...(stored ? { kind: stored.kind } : {}), receiveCount: delivery.receiveCount, error: fault });
}

/** The members of an instruction a person receives, and where it goes: what an event may not change. */
const DELIVERED = ['kind', 'channel', 'destination', 'text', 'link', 'oneTimeCode', 'receivedAt'] as const;

/** DynamoDB's limits on a key (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html): a longer one fails the read. */
const MAX_PARTITION_KEY_BYTES = 2048;
const MAX_SORT_KEY_BYTES = 1024;

/**
 * The key of the stored callback the event names, if it names one as the gateway does: a provider
 * that sends instructions (the relay may read nothing else), a key DynamoDB can hold, and an eventId
 * of the gateway's kind. `bound`: the eventId is the one of that key and the event's receipt time
 * (or, `legacy`, of the key alone, as published before). One that is not may still be the stored
 * instruction's own with its time altered (the stored one is sent), never anything else.
 * Otherwise why not: the gateway published no such event.
 */
function storedKeyOf(claimed: InstructionDetail): { readonly key: ItemKey; readonly bound: boolean; readonly legacy: boolean } | { readonly notStored: string } {
  if (!findProvider(claimed.provider)?.instruction) return { notStored: 'its provider sends no instructions' };
  const key = keys.event(claimed.provider, claimed.subjectId, claimed.eventKey);
  // A key no item can have: reading it would fail, and be retried, as a fault of the table.
  if (Buffer.byteLength(key.pk) > MAX_PARTITION_KEY_BYTES || Buffer.byteLength(key.sk) > MAX_SORT_KEY_BYTES) return { notStored: 'its key is longer than any key DynamoDB keeps' };
  if (!EVENT_ID.test(claimed.eventId)) return { notStored: 'its eventId is not of the kind the gateway gives' };
  const legacy = legacyInstructionEventId(key) === claimed.eventId;
  return { key, legacy, bound: legacy || instructionEventId(key, claimed.receivedAt) === claimed.eventId };
}

/** An event that names no instruction the gateway stored: logged (with `ids` only where they are the gateway's kind), nothing sent. */
function notStored(why: string, ids: { readonly eventId?: string; readonly provider?: string }, deps: RelayDependencies): RelayResult {
  deps.log.warn('relay', { outcome: 'skipped', reason: SKIPPED.notStored, ...ids, why });
  return { outcome: 'skipped', reason: `not an instruction the gateway stored (${why}): nothing sent` };
}

/**
 * The event names a stored callback that is not (or no longer) there. Instruction items are kept
 * `sensitiveRetentionHours` (a day by default) and the relay's DLQ longer, so a redrive may come
 * after: an instruction the relay began (its relay item) is carried on as too old to send (`retry`
 * or an old `claimed`: expired; an old `sending`: uncertain). Without a relay item, nothing is
 * written: made up, or never begun.
 */
async function storedNoLonger(claimed: InstructionDetail, deps: RelayDependencies): Promise<RelayResult> {
  const why = 'no item is stored under the key it names (none was, or it is past its retention)';
  const current = await deps.store.read(relayKey(claimed));
  if (!current) return notStored(why, { eventId: claimed.eventId, provider: claimed.provider }, deps);
  const now = deps.now();
  const at = now.toISOString();
  // The ids the key was checked against, and the kind from the relay item (written from the stored
  // instruction): nothing the event says on its own.
  const fields = { eventId: claimed.eventId, provider: claimed.provider, subjectId: maskSubjectId(claimed.subjectId, findProvider(claimed.provider)), kind: String(current.kind) };
  const reason = 'its stored instruction is no longer kept (past sensitiveRetentionHours): too old to send';
  const next = { notToSend: { outcome: 'expired' as const, fields: { status: 'expired', updatedAt: at, reason }, more: { reason: 'stored instruction no longer kept' } } };
  return carryOn(current, { key: relayKey(claimed), now, at, next, done: logged(fields, deps) }, deps);
}

/**
 * A result, logged with the instruction's ids (warnings for what a person should look at). The
 * sender's reference is its answer's text, the subject its delivery reports name: masked as one.
 */
const logged =
  (fields: Record<string, unknown>, deps: RelayDependencies): Done =>
  (result, more = {}) => {
    const level = result.outcome === 'uncertain' || result.outcome === 'refused' || result.outcome === 'expired' ? 'warn' : 'info';
    deps.log[level]('relay', { ...fields, outcome: result.outcome, ...(result.outcome === 'sent' ? { referenceId: maskSubjectId(result.referenceId, deps.sender) } : {}), ...(result.outcome === 'duplicate' ? { status: result.status } : {}), ...more });
    return result;
  };

/** What to record instead of sending: its outcome, the relay item's fields, and what the line adds. */
interface NotToSend {
  readonly outcome: 'refused' | 'expired' | 'superseded';
  readonly fields: Item;
  readonly more: Record<string, unknown>;
}

/** The age limit of an instruction's family (a code's, a link's), in seconds. */
const maxAgeSecondsOf = (detail: InstructionDetail, deps: RelayDependencies) =>
  detail.oneTimeCode ? (deps.codeMaxAgeSeconds ?? RELAY.codeMaxAgeSeconds) : (deps.linkMaxAgeSeconds ?? RELAY.linkMaxAgeSeconds);

/** The last moment (epoch ms) the instruction may leave: its receipt plus its family's age limit (NaN: none). */
const leaveBy = (detail: InstructionDetail, deps: RelayDependencies) => Date.parse(detail.receivedAt) + maxAgeSecondsOf(detail, deps) * 1000;

/**
 * What to record for an instruction too old to send at `now` (a code past `relayMaxAgeSeconds`, a
 * link past a day), or undefined while it may still go.
 */
function expiry(detail: InstructionDetail, deps: RelayDependencies, now: Date): NotToSend | undefined {
  const ageMs = now.getTime() - Date.parse(detail.receivedAt);
  const maxAgeSeconds = maxAgeSecondsOf(detail, deps);
  // To the millisecond: a code 300.4 s old is past a 300 s limit (and one of no readable age is too).
  if (ageMs <= maxAgeSeconds * 1000) return undefined;
  const ageSeconds = Math.ceil(ageMs / 1000);
  const reason = `${ageSeconds} s old when it came to be sent; ${detail.oneTimeCode ? 'a code' : 'a link'} is sent only within ${maxAgeSeconds} s`;
  return { outcome: 'expired', fields: { status: 'expired', updatedAt: now.toISOString(), ageSeconds, maxAgeSeconds, reason }, more: { maxAgeSeconds } };
}

/** Send the stored instruction once: claimed, checked against its family's marker, then sent and recorded. */
async function relayStored(detail: InstructionDetail, deps: RelayDependencies): Promise<RelayResult> {
  const now = deps.now();
  const ageSeconds = Math.max(0, Math.round((now.getTime() - Date.parse(detail.receivedAt)) / 1000));
  const fields = logFields(detail, ageSeconds);
  const from = deps.sendsOnlyReceivedFrom === undefined ? undefined : new Date(deps.sendsOnlyReceivedFrom);
  if (from && Date.parse(detail.receivedAt) < from.getTime()) {
    const reason = `received before the relay sent where it sends now (since ${from.toISOString()}): queued for another sender, not sent`;
    deps.log.warn('relay', { ...fields, outcome: 'skipped', reason });
    return { outcome: 'skipped', reason };
  }
  if (detail.channel !== 'sms') {
    deps.log.info('relay', { ...fields, outcome: 'skipped', reason: `channel ${detail.channel}` });
    return { outcome: 'skipped', reason: `the relay sends SMS; this instruction is ${detail.channel}` };
  }

  const tooOld = expiry(detail, deps, now);
  const countries = deps.allowedCountryCodes;
  const elsewhere = countries !== undefined && !sendsTo(countries, detail.destination);
  const expired = tooOld !== undefined;
  const key = relayKey(detail);
  const at = now.toISOString();
  const base = baseItem(detail, deps, now);
  const done = logged(fields, deps);

  // Not to a country the relay sends to: refused, never sent (the number itself is not recorded).
  const elsewhereFields: Item = { status: 'refused', refusedBy: 'gateway', updatedAt: at, reason: `the number is not in a country relayAllowedCountryCodes allows (${(countries ?? []).map((code) => `+${code}`).join(', ')})` };

  // The secret first: without it nothing is claimed, and the delivery is simply tried again.
  const secret = expired || elsewhere ? undefined : await deps.secrets.get(deps.sender);
  // Then the family's marker: a later instruction already there supersedes this one. A fault here
  // has claimed nothing either.
  const superseded =
    !expired &&
    !elsewhere &&
    !(await deps.store.advance(latestKey(detail), positionOf(detail), { updatedAt: at, [TABLE.ttlAttribute]: base[TABLE.ttlAttribute] }));
  const supersededFields: Item = { status: 'superseded', updatedAt: at, reason: supersededReason(detail) };
  const notToSend: NotToSend | undefined = elsewhere
    ? { outcome: 'refused', fields: elsewhereFields, more: { reason: 'country not allowed' } }
    : tooOld
      ? tooOld
      : superseded
        ? { outcome: 'superseded', fields: supersededFields, more: {} }
        : undefined;
  const attempt = deps.newAttempt();
  const claim: Item = notToSend ? { ...base, ...notToSend.fields } : { ...base, status: 'claimed', attempt, attempts: 1, claimedAt: at };
  const created = await deps.store.create(claim);
  if (created.created) {
    if (notToSend) return done({ outcome: notToSend.outcome }, notToSend.more);
    return send(detail, secret, key, attempt, 1, false, deps, done);
  }
  // An earlier delivery wrote it: carry on from where that one stopped, never sending twice.
  return carryOn(created.existing, { key, now, at, next: notToSend ? { notToSend } : { send: { detail, secret, attempt } }, done }, deps);
}

/** Where a delivery that found the relay item already there stands. */
interface Resume {
  readonly key: ItemKey;
  readonly now: Date;
  readonly at: string;
  /** What to record instead of sending; or how to send it (the stored instruction in hand). */
  readonly next: { readonly notToSend: NotToSend } | { readonly send: { readonly detail: InstructionDetail; readonly secret: unknown; readonly attempt: string } };
  readonly done: Done;
}

/** Carry on from the relay item an earlier delivery left, never sending twice. */
async function carryOn(found: Item, resume: Resume, deps: RelayDependencies): Promise<RelayResult> {
  const { key, now, at, next, done } = resume;
  let current: Item | undefined = found;
  for (let step = 0; step < 3 && current; step++) {
    const status = String(current.status);
    if ((FINAL as readonly string[]).includes(status)) {
      const result = done({ outcome: 'duplicate', status });
      // Its meeting item may not have been written (a fault just after `uncertain` was): written now.
      if (status === 'uncertain') await awaitReport(relayItemIds(current), deps);
      return result;
    }
    if (status === 'sending' || status === 'claimed') {
      const since = Date.parse(String((status === 'sending' ? current.sendingSince : current.claimedAt) ?? current.updatedAt));
      const inFlightMs = (deps.inFlightSeconds ?? RELAY.timeoutSeconds) * 1000;
      if (Number.isFinite(since) && now.getTime() - since < inFlightMs) {
        // Another delivery is sending it (or stopped mid-send a moment ago): look again once a send
        // can no longer be in flight, rather than let this message go and the item stay as it is.
        done({ outcome: 'in-flight' });
        throw new DependencyError('relay', `another delivery of this instruction ${status === 'sending' ? 'started sending' : 'claimed'} it ${Math.round((now.getTime() - since) / 1000)} s ago; looking again later`);
      }
    }
    if (status === 'sending') {
      const marked = await deps.store.update(key, { status: 'sending', attempt: String(current.attempt) }, {
        status: 'uncertain',
        updatedAt: at,
        reason: 'a send was started and its answer never recorded (the relay stopped mid-send): it may have gone out, so it is not sent again',
      });
      if (marked.ok) {
        const result = done({ outcome: 'uncertain' }, { reason: 'crash mid-send' });
        // Its delivery report most likely came while the relay lay dead: the meeting finds it.
        await awaitReport(relayItemIds(current), deps);
        return result;
      }
      current = marked.current;
      continue;
    }
    if (status === 'retry' || status === 'claimed') {
      // A `retry` item written when a delivery gave up before any claim has no attempt token. A
      // `claimed` one this old was left before its request could leave: nothing was sent.
      const expected = current.attempt === undefined ? { status } : { status, attempt: String(current.attempt) };
      if ('notToSend' in next) {
        const marked = await deps.store.update(key, expected, next.notToSend.fields);
        if (marked.ok) return done({ outcome: next.notToSend.outcome }, next.notToSend.more);
        current = marked.current;
        continue;
      }
      const { detail, secret, attempt } = next.send;
      const claimed = await deps.store.update(key, expected, { status: 'claimed', attempt, claimedAt: at, updatedAt: at, deadLettered: false }, true);
      // Counted already when an earlier attempt began sending (and sent nothing): not counted again.
      if (claimed.ok) return send(detail, secret, key, attempt, Number(current.attempts ?? 0) + 1, typeof current.countedHour === 'string', deps, done);
      current = claimed.current;
      continue;
    }
    // A status this code does not know: never send on a guess.
    return done({ outcome: 'duplicate', status });
  }
  return done({ outcome: 'duplicate', status: String(current?.status ?? 'gone') });
}

type Done = (result: RelayResult, more?: Record<string, unknown>) => RelayResult;

/** The ids a relay item was written with (baseItem): the instruction it is for. */
const relayItemIds = (item: Item) => ({ provider: String(item.provider), subjectId: String(item.subjectId), eventId: String(item.eventId) });

const supersededReason = (detail: InstructionDetail) =>
  `a later ${detail.oneTimeCode ? 'code' : 'link'} for this ${detail.provider} subject was sent (or is being sent) first; an older one is never sent after it`;

/**
 * Send, then record what happened; a fault that sent nothing is recorded as `retry` and thrown.
 * `counted`: an earlier attempt of this instruction was counted against its number's hour.
 */
async function send(detail: InstructionDetail, secret: unknown, key: ItemKey, attempt: string, attempts: number, counted: boolean, deps: RelayDependencies, done: Done): Promise<RelayResult> {
  const message: OutgoingMessage = { to: e164(detail.destination), text: smsText(detail), kind: detail.oneTimeCode ? 'OTP' : 'ARN', externalId: detail.eventId };
  /** Write `fields` if the item is still `from` with this attempt's token; whether it was. */
  const recordAs = (from: 'claimed' | 'sending') => async (fields: Item): Promise<boolean> =>
    (await deps.store.update(key, { status: from, attempt }, { ...fields, updatedAt: deps.now().toISOString() })).ok;
  /**
   * Record `retry` when this attempt sent nothing, from the first of `from` that still holds with
   * this attempt's token (no other delivery's item is touched), trying the write a few times: an
   * item left `sending` by a table blip would become `uncertain`, a code that never left never sent.
   * Should every try fail, the original fault is thrown all the same.
   */
  const recordRetry = async (from: readonly ('claimed' | 'sending')[], error: unknown, more: Item = {}) => recordNotSent(from, { status: 'retry', lastFault: errorMessage(error), ...more });
  /** Record `fields` for an attempt that sent nothing, as `recordRetry` does (`expired`, too); false when every try failed. */
  const recordNotSent = async (from: readonly ('claimed' | 'sending')[], fields: Item): Promise<boolean> => {
    for (let tries = 1; ; tries++) {
      try {
        for (const status of from) if (await recordAs(status)(fields)) return true;
        return true;
      } catch (fault) {
        if (tries >= RETRY_RECORD_TRIES) {
          deps.log.warn(`relay: ${String(fields.status)} not recorded`, { eventId: detail.eventId, provider: detail.provider, error: errorMessage(fault) });
          return false;
        }
      }
    }
  };
  /** `recordNotSent` from `sending` for an outcome that ends the attempt: if every try fails, the delivery fails and is tried again. */
  const recordEnding = async (fields: Item, what: string) => {
    if (!(await recordNotSent(['sending'], { ...fields, ...uncounted }))) throw new DependencyError('dynamodb', `${what} (nothing sent) could not be recorded`);
    await giveBack();
  };
  // A retry: an earlier attempt was answered as not sent (429, 500, 503…) or never connected, yet
  // TeleSign may have taken it all the same. Its delivery report echoes our external id (the
  // eventId: https://developer.telesign.com/enterprise/reference/smsdeliveryreports), and the worker
  // leaves its reference where the two meet: one write, on a retry only, tells whether one came.
  // A fault here has sent nothing.
  if (attempts > 1) {
    let reported: string | undefined;
    try {
      reported = await earlierAttemptReported(detail, deps);
    } catch (error) {
      await recordRetry(['claimed'], error);
      throw error;
    }
    if (reported !== undefined) return recordReportedSend(detail, secret, key, attempt, reported, attempts, counted, deps, done);
  }
  // The marker once more, the moment before the request leaves, together with the move to
  // `sending`: a later instruction of the family that came while this one was being claimed
  // supersedes it. A fault here has sent nothing, and the item stays `claimed` if even `retry`
  // cannot be written (and the move did not land): a later delivery claims it again, never taking it
  // for a send that may have left.
  const starting = deps.now();
  // Its age once more too: the secret, the marker and the claim took their time (a slow table), and
  // a code must not leave past its limit however little past.
  const expired = expiry(detail, deps, starting);
  if (expired) {
    await recordAs('claimed')(expired.fields);
    return done({ outcome: 'expired' }, { ...expired.more, attempts });
  }
  const startedAt = starting.toISOString();
  // Counted with the move to `sending`, in its transaction: only a send that starts uses the cap. A
  // fault working out its key (none: the stack refuses such a sender) has sent nothing.
  let count: ReturnType<typeof sendCount>;
  try {
    count = counted ? undefined : sendCount(detail, secret, deps, starting);
  } catch (error) {
    await recordRetry(['claimed'], error);
    throw error;
  }
  // An attempt counted here that then sends nothing (expired at the last moment, refused, TeleSign
  // down: 429, 5xx, no connection) gives its count back, its item no longer saying it was counted:
  // the cap is of SMS that left, not of tries. Counted for good, a person asking again while TeleSign
  // was failing got no code for the rest of the hour. Given back after the item is recorded, and a
  // fault giving it back is only logged: a count too high by one refuses a send, never allows one.
  const uncounted = count ? { countedHour: null } : {};
  const giveBack = async () => {
    if (!count) return;
    try {
      await deps.store.giveBack(count.key, attempt);
    } catch (fault) {
      deps.log.warn('relay: a count not given back', { eventId: detail.eventId, provider: detail.provider, error: errorMessage(fault) });
    }
  };
  let started: Awaited<ReturnType<RelayStore['beginSend']>>;
  try {
    started = await deps.store.beginSend(
      key,
      attempt,
      latestKey(detail),
      positionOf(detail),
      { status: 'sending', sendingSince: startedAt, updatedAt: startedAt, ...(count ? countedFields(count) : {}) },
      count,
    );
  } catch (error) {
    // Nothing has left. The move to `sending` may have been carried out all the same (its answer
    // lost, a timeout): then the item is `sending` with this attempt's token, and is put back too.
    await recordRetry(['claimed', 'sending'], error);
    throw error;
  }
  if (!started.started && started.superseded) {
    await recordAs('claimed')({ status: 'superseded', reason: supersededReason(detail) });
    return done({ outcome: 'superseded' }, { attempts });
  }
  if (!started.started && 'overCap' in started) {
    // As many SMS as relayMaxPerNumberPerHour allows went to this number this hour: a flood, or SMS
    // pumping. Nothing left; the number is not recorded, only that it was over.
    const cap = deps.maxPerNumberPerHour;
    await recordAs('claimed')({
      status: 'refused',
      refusedBy: 'gateway',
      reason: `${cap} SMS went to this number in this clock hour (UTC) already, the most relayMaxPerNumberPerHour allows: not sent`,
    });
    return done({ outcome: 'refused' }, { reason: 'over relayMaxPerNumberPerHour', maxPerNumberPerHour: cap, attempts });
  }
  if (!started.started) return done({ outcome: 'duplicate', status: String(started.current?.status ?? 'gone') });
  const record = recordAs('sending');
  // And its age once more after that transaction, which the SDK's own retries can stretch over
  // seconds: the check before it is not "the moment the request leaves". Nothing has left yet.
  const leaving = expiry(detail, deps, deps.now());
  if (leaving) {
    // Tried a few times: left `sending`, a code that never left would later read as uncertain.
    await recordEnding(leaving.fields, 'a code past its age');
    return done({ outcome: 'expired' }, { ...leaving.more, attempts });
  }
  let referenceId: string;
  try {
    // Its age bounds the request's leaving too: a connection slow to be made (DNS, TCP, TLS) is given
    // up when the code's time runs out, rather than letting it leave up to the send timeout late.
    ({ referenceId } = await guardedSend(deps, secret, message, leaveBy(detail, deps) - deps.now().getTime()));
  } catch (error) {
    if (error instanceof MessageRefusedError) {
      // Nothing left: tried a few times, as `retry` is. Left `sending` by one failed write, the next
      // delivery read it as a send that may have left (`uncertain`, RelayUncertain) though none had.
      // A refusal that came with the sender's reference (TeleSign's 2xx with a failure status) keeps it:
      // the operator looks it up with the sender, and the session shows its delivery report, if one comes.
      const reference = error.referenceId === undefined ? {} : { referenceId: error.referenceId };
      const refused = { status: 'refused', refusedBy: error.byProvider ? deps.sender.id : 'gateway', reason: error.message, ...(error.codes.length ? { codes: [...error.codes] } : {}), ...reference };
      await recordEnding(refused, 'a message refused');
      return done({ outcome: 'refused' }, { reason: error.message, attempts, ...(error.referenceId === undefined ? {} : { referenceId: maskSubjectId(error.referenceId, deps.sender) }) });
    }
    if (error instanceof UncertainDeliveryError || !isNothingSent(error)) {
      await record({ status: 'uncertain', reason: errorMessage(error) });
      const result = done({ outcome: 'uncertain' }, { reason: errorMessage(error), attempts });
      // After the line (the alarm counts it): a fault here is thrown, and the next delivery, finding
      // `uncertain`, writes the meeting item again.
      await awaitReport(detail, deps);
      return result;
    }
    // Nothing was sent. Past its age by now (its time ran out while connecting): expired, not retried.
    // A configuration fault is thrown all the same, for its alarm (RelayConfigurationErrors).
    const late = error instanceof ConfigurationError ? undefined : expiry(detail, deps, deps.now());
    if (late) {
      await recordEnding(late.fields, 'a code past its age');
      return done({ outcome: 'expired' }, { ...late.more, attempts, reason: errorMessage(error) });
    }
    // The next delivery may try again (until the instruction is too old).
    if (await recordRetry(['sending'], error, uncounted)) await giveBack();
    throw error;
  }
  // Sent. The record is tried a few times, as `retry` is: left `sending` by one failed write, the
  // next delivery marked a send TeleSign had answered `uncertain` (RelayUncertain), its reference
  // only in a log line. Should every try fail, the item stays `sending`: a later delivery finds it and
  // marks it `uncertain`, never sending again (the reference is in this line of the log).
  const at = deps.now();
  const recordSent = () =>
    deps.store.recordSent(
      key,
      attempt,
      { status: 'sent', referenceId, sentAt: at.toISOString(), updatedAt: at.toISOString() },
      relayedLink(deps.sender.id, referenceId, linkOf(detail), at, deps.retentionDays, { sentAt: at.toISOString() }),
    );
  for (let tries = 1; ; tries++) {
    try {
      await recordSent();
      break;
    } catch (error) {
      // Written at once: should the table stall past the function's timeout, this line still names
      // the send (the one after the last try would never be written).
      if (tries === 1) deps.log.warn('relay: sent, recording it again', { eventId: detail.eventId, referenceId: maskSubjectId(referenceId, deps.sender), error: errorMessage(error) });
      if (tries < RETRY_RECORD_TRIES) continue;
      deps.log.error('relay: sent, not recorded', { eventId: detail.eventId, referenceId: maskSubjectId(referenceId, deps.sender), error: errorMessage(error) });
      throw error;
    }
  }
  return done({ outcome: 'sent', referenceId }, { attempts });
}

/**
 * The reference of a delivery report carrying this instruction's external id, if one came and does
 * not say the message failed: an earlier attempt TeleSign took though its answer said otherwise. The
 * meeting item is written (each field only where absent) naming the relay item, so a report that
 * comes later is joined to it too.
 */
async function earlierAttemptReported(detail: InstructionDetail, deps: RelayDependencies): Promise<string | undefined> {
  const now = deps.now();
  const met = await deps.store.meet(keys.external(deps.sender.id, detail.eventId), {
    eventId: detail.eventId,
    forProvider: detail.provider,
    forSubjectId: detail.subjectId,
    createdAt: now.toISOString(),
    [TABLE.ttlAttribute]: Math.floor(now.getTime() / 1000) + deps.retentionDays * 86_400,
  });
  if (typeof met.referenceId !== 'string') return undefined;
  // What TeleSign reported of that transaction (the worker stores a report before it meets here): a
  // final failure (500 "Transaction not attempted", 230 blocked, 211 permanent phone error…: the
  // codes of https://developer.telesign.com/enterprise/docs/all-status-and-error-codes) reached no
  // one, so the code still has to go. Anything else (in progress, delivered, a final status
  // TeleSign cannot tell) is a message taken: not sent again.
  const state = await deps.store.read(keys.state(deps.sender.id, met.referenceId));
  if (state?.outcome === 'failed' && state.terminal === true) return undefined;
  return met.referenceId;
}

/**
 * Record as `sent` an instruction an earlier attempt of which TeleSign took (its delivery report
 * came): never sent again. The reference is the report's (`referenceFrom: 'delivery report'`), with
 * its link item, as a send that was answered. A fault is thrown: the item stays `claimed` (nothing
 * left now), and the next delivery finds the report again.
 */
async function recordReportedSend(detail: InstructionDetail, secret: unknown, key: ItemKey, attempt: string, referenceId: string, attempts: number, counted: boolean, deps: RelayDependencies, done: Done): Promise<RelayResult> {
  const at = deps.now();
  const reason = 'an earlier attempt was answered as not sent, but its delivery report (by external id) shows the sender took it: not sent again';
  // That attempt gave its count back when it was answered 429/5xx: the SMS left all the same, so it
  // is counted now (in this hour, past the cap if need be), together with the record. Uncounted, the
  // number was sent one more SMS than relayMaxPerNumberPerHour allows.
  const count = counted ? undefined : sendCount(detail, secret, deps, at);
  await deps.store.recordSent(
    key,
    attempt,
    { status: 'sent', referenceId, referenceFrom: REFERENCE_FROM_REPORT, referenceAt: at.toISOString(), reason, updatedAt: at.toISOString(), ...(count ? countedFields(count) : {}) },
    relayedLink(deps.sender.id, referenceId, linkOf(detail), at, deps.retentionDays, { referenceFrom: REFERENCE_FROM_REPORT, joinedAt: at.toISOString() }),
    count,
  );
  return done({ outcome: 'sent', referenceId }, { attempts, referenceFrom: REFERENCE_FROM_REPORT });
}

/** Send, refusing any request that would carry credentials over plain http to another machine (nothing is sent). */
function guardedSend(deps: RelayDependencies, secret: unknown, message: OutgoingMessage, leaveWithinMs: number) {
  return refusingPlainHttp(deps.sender.displayName, (allowed) =>
    deps.sender.sendMessage!(secret, message, {
      post: (url, request) => (allowed(url) ? deps.send.post(url, { ...request, leaveWithinMs }) : Promise.reject(new DependencyError(deps.sender.id, 'refused: plain http'))),
    }),
  );
}

/** Errors that prove nothing was sent: the provider's faults and refusals of our credentials. Anything else may have sent. */
function isNothingSent(error: unknown): boolean {
  return error instanceof DependencyError || error instanceof ConfigurationError;
}
