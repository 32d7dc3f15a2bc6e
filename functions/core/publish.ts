import { createHash } from 'node:crypto';
import { findProvider } from '../providers/index.ts';
import type { ConfirmationKind, Instruction, Outcome } from '../providers/provider.ts';
import { canonicalJson } from '../shared/canonical-json.ts';
import { SQS_REFUSED } from '../shared/sqs-characters.ts';
import { EVENT_SK_PREFIX, MAX_BODY_BYTES } from './pipeline-definition.ts';
import type { Item } from './store.ts';
import { inlineStoredBytes } from './stored-bytes.ts';

/**
 * Events out: what the table's own change stream becomes on the event bus. Driven by the table
 * (DynamoDB Streams), so a crash between a write and its publish cannot drop an event: the stream
 * record stays until it is published. Pure: the adapters feed it unmarshalled images.
 *
 * - "Callback Status Changed": a subject's state changed what it says (status, outcome, terminal,
 *   confirmation, stale), from a callback, a confirmation or a re-check. Bookkeeping writes (a
 *   redelivery remembered, a re-check scheduled or leased) publish nothing.
 * - "Callback Instruction": a message the provider asks us to deliver (Identomat's codes and
 *   links), once per stored instruction. The only place such content goes: never a log line.
 */

export const EVENT_SOURCE = 'callback-gateway';
export const DETAIL_TYPES = {
  statusChanged: 'Callback Status Changed',
  instruction: 'Callback Instruction',
} as const;
export type DetailType = (typeof DETAIL_TYPES)[keyof typeof DETAIL_TYPES];

/** `detail` of "Callback Status Changed" (schemas/callback-status-changed.json). */
export interface StatusChangedDetail {
  /** The same on every redelivery of this change: consumers dedupe on it. */
  readonly eventId: string;
  readonly provider: string;
  readonly subjectId: string;
  /** The part of the subject (an eSMS recipient), when the state is about one. */
  readonly part?: string;
  /** The provider's status; null while none is believed (an unconfirmed claim, an expected subject). */
  readonly status: string | null;
  readonly outcome: Outcome;
  readonly terminal: boolean;
  readonly statusAt: string | null;
  /**
   * What else the status means, as the state's `detail` keeps it (REL-ID's label, TeleSign's code
   * state, eSMS's counters, a provider time set aside): short values only. A change of it alone
   * (eSMS's count of receivers reached) is a change too, so the event shows what moved.
   */
  readonly statusDetail?: Readonly<Record<string, string | number | boolean>>;
  /** What the state said before this change; null for the first status. */
  readonly previous: { readonly status: string | null; readonly outcome: Outcome } | null;
  /** Where the status came from: a callback, or the provider's status endpoint. */
  readonly source?: 'callback' | 'status-endpoint';
  readonly confirmation?: ConfirmationKind;
  readonly confirmedStatus?: string;
  readonly differences?: readonly string[];
  /** True once re-checks ran out with the subject still not final (or not confirmed). */
  readonly stale?: boolean;
  /** The state's version: per subject (and part), a later change has a higher version. */
  readonly version: number;
  /** When the change was written (ISO-8601). */
  readonly changedAt: string;
}

/** `detail` of "Callback Instruction" (schemas/callback-instruction.json). */
export interface InstructionDetail extends Instruction {
  readonly eventId: string;
  readonly provider: string;
  /** The provider's subject the instruction belongs to (Identomat: the session). */
  readonly subjectId: string;
  /**
   * The key of the stored callback it came from (`EVENT#<eventKey>` under `<provider>#<subjectId>`):
   * the relay sends what that item holds, never what an event says (anyone allowed to put events
   * on the bus could write one).
   */
  readonly eventKey: string;
  /** When the gateway received the callback (ISO-8601): a code is useless a few minutes later. */
  readonly receivedAt: string;
}

export type GatewayEvent =
  | { readonly source: typeof EVENT_SOURCE; readonly detailType: typeof DETAIL_TYPES.statusChanged; readonly time: string; readonly detail: StatusChangedDetail }
  | { readonly source: typeof EVENT_SOURCE; readonly detailType: typeof DETAIL_TYPES.instruction; readonly time: string; readonly detail: InstructionDetail };

/** One record of the table's stream, its images unmarshalled. */
export interface TableChange {
  readonly eventName: 'INSERT' | 'MODIFY' | 'REMOVE';
  readonly oldImage?: Item;
  readonly newImage?: Item;
}

/** A stable id: the same inputs give the same id on every redelivery. */
function eventIdOf(...parts: readonly string[]): string {
  // Joined by NUL, the text is unambiguous while no part holds one (every id published so far).
  // A subject id or part is the sender's to choose and may hold a NUL ("X\0STATE#P" and "X" with
  // recipient "P\0STATE" would join alike): those parts are hashed as a JSON array instead, a text
  // no joined one can equal (it starts with `[`; a joined one with `status` or `instruction`).
  const text = parts.some((part) => part.includes('\u0000')) ? JSON.stringify(parts) : parts.join('\u0000');
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

/**
 * The eventId of the instruction stored at `key` (an event item's key) and received at `receivedAt`:
 * one id per stored callback. The receipt time tells apart two lives of one key: an instruction's
 * item is kept `sensitiveRetentionHours`, and the same body received after it expired (a session link
 * shared again the next day) is stored anew; by key alone it took the first one's id, which a
 * consumer deduping on it dropped, and the relay (whose items are kept far longer) read as sent.
 */
export const instructionEventId = (key: { readonly pk: string; readonly sk: string }, receivedAt: string): string => eventIdOf('instruction', key.pk, key.sk, receivedAt);

/** The id instructions carried before their receipt time was part of it (by key alone): events queued before the upgrade carry it. */
export const legacyInstructionEventId = (key: { readonly pk: string; readonly sk: string }): string => eventIdOf('instruction', key.pk, key.sk);

const isState = (item: Item | undefined) => typeof item?.sk === 'string' && (item.sk === 'STATE' || item.sk.startsWith('STATE#'));
const isEvent = (item: Item | undefined) => typeof item?.sk === 'string' && item.sk.startsWith(EVENT_SK_PREFIX);
const text = (value: unknown) => (typeof value === 'string' ? value : undefined);

/** What a state says: the members whose change `changedAt` marks (functions/core/state.ts). */
const SAID = ['status', 'outcome', 'terminal', 'detail', 'confirmation', 'confirmedStatus', 'differences'] as const;
/** Those members as one text, maps' members sorted at every depth (DynamoDB does not keep a map's order). */
const said = (item: Item) => canonicalJson(SAID.map((name) => item[name] ?? null));

/**
 * Whether a state says anything: an expectation (or a claim not believed, before any verdict) says
 * nothing yet. A state that says something has been published.
 */
const saysSomething = (item: Item | undefined): item is Item => item !== undefined && (item.status !== undefined || item.confirmation !== undefined || item.stale === true);

/**
 * Whether the state says something new (status, outcome, confirmation), or went stale or stopped
 * being stale. Told by what it says, not by `changedAt`: a write that moved `changedAt` with nothing
 * new to say (a detail read back with its members in another order) publishes nothing.
 */
function saysSomethingNew(before: Item | undefined, after: Item): boolean {
  if (!saysSomething(after) && !saysSomething(before)) return false;
  if (!before) return true;
  if (said(after) !== said(before)) return true;
  // The bus's last word on a subject must not stay "stale" once re-checks resume.
  return (after.stale === true) !== (before.stale === true);
}

/** The state's `detail` as an event carries it: its members of a plain value, none when it has none. */
function statusDetailOf(detail: unknown): { statusDetail?: Record<string, string | number | boolean> } {
  if (typeof detail !== 'object' || detail === null || Array.isArray(detail)) return {};
  const plain = Object.entries(detail).filter(
    (entry): entry is [string, string | number | boolean] => typeof entry[1] === 'string' || typeof entry[1] === 'boolean' || (typeof entry[1] === 'number' && Number.isFinite(entry[1])),
  );
  // A number no double holds exactly (one an application wrote) as its text: as a JSON integer past
  // 2^63 the bus refused the event, and every later one of the subject that carried it.
  const carried = plain.map(([name, value]): [string, string | number | boolean] => [name, typeof value === 'number' && Math.abs(value) > Number.MAX_SAFE_INTEGER ? String(value) : value]);
  return carried.length === 0 ? {} : { statusDetail: Object.fromEntries(carried) };
}

/**
 * The largest version an event carries: the largest double whose JSON text is an integer PutEvents
 * takes ("For the JSON number (integer) data type, the constraints are: a minimum value of
 * -9,223,372,036,854,775,808 and a maximum value of 9,223,372,036,854,775,807",
 * https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html). A state whose
 * version a program wrote past it had every change refused by the bus (set aside, never delivered);
 * its changes now carry this one, told apart by `changedAt` as a table restored to an earlier point is.
 */
export const MAX_EVENT_VERSION = 2 ** 63 - 1024;

const eventVersion = (version: number) => Math.max(-MAX_EVENT_VERSION, Math.min(MAX_EVENT_VERSION, version));

function statusChanged(before: Item | undefined, after: Item): GatewayEvent | undefined {
  if (!saysSomethingNew(before, after)) return undefined;
  const version = Number(after.version ?? 0);
  const changedAt = text(after.changedAt) ?? text(after.updatedAt) ?? new Date(0).toISOString();
  const detail: StatusChangedDetail = {
    // The state's creation time tells apart two lives of one key: a table created anew (a destroy and
    // a deploy, `npm start --fresh`) or a state deleted and written again count versions from 1 again,
    // and by key and version alone a new change took an old one's id, which a consumer deduping on it
    // dropped. The time of the change tells apart two changes at one version of one life: a table
    // restored to an earlier point keeps its items' createdAt, and writes the versions after the
    // restored one again, with new changes.
    eventId: eventIdOf('status', String(after.pk), String(after.sk), String(version), text(after.createdAt) ?? '', changedAt),
    provider: String(after.provider),
    subjectId: String(after.subjectId),
    ...(after.part === undefined ? {} : { part: String(after.part) }),
    status: text(after.status) ?? null,
    outcome: (text(after.outcome) ?? 'pending') as Outcome,
    terminal: after.terminal === true,
    statusAt: text(after.statusAt) ?? null,
    ...statusDetailOf(after.detail),
    // Null only for a subject's first event: a state published before with no status yet (a
    // not_found, an expectation gone stale) is the previous one too.
    previous: saysSomething(before) ? { status: text(before.status) ?? null, outcome: (text(before.outcome) ?? 'pending') as Outcome } : null,
    ...(after.source === 'callback' || after.source === 'status-endpoint' ? { source: after.source } : {}),
    ...(after.confirmation === undefined ? {} : { confirmation: after.confirmation as ConfirmationKind }),
    ...(text(after.confirmedStatus) === undefined ? {} : { confirmedStatus: text(after.confirmedStatus)! }),
    ...(Array.isArray(after.differences) && after.differences.length > 0 ? { differences: after.differences.map(String) } : {}),
    ...(after.stale === true ? { stale: true } : {}),
    version: eventVersion(version),
    changedAt,
  };
  return { source: EVENT_SOURCE, detailType: DETAIL_TYPES.statusChanged, time: changedAt, detail };
}

/** UTF-8 as ingest decodes a JSON body: a leading byte-order mark is left out. */
const UTF8 = new TextDecoder('utf-8');

/**
 * The payload an event item holds: as attributes, or, for a callback too large for them, its body
 * kept gzip-compressed inline (`rawGzip`; a body within the route's limit always fits inline).
 */
function payloadOf(item: Item): unknown {
  if (item.payload !== undefined) return item.payload;
  try {
    const body = inlineStoredBytes(item, 'rawGzip', 4 * MAX_BODY_BYTES);
    // Read as ingest read it: a byte-order mark the bytes were kept with is no part of the JSON
    // (JSON.parse refused it, and such a code was never published).
    return body === undefined ? undefined : JSON.parse(UTF8.decode(body));
  } catch {
    return undefined;
  }
}

/**
 * The instruction a stored event item holds, as published: undefined when it holds none (a status
 * callback, a provider's answer, an instruction's body unreadable). The publisher publishes it; the
 * relay reads the item again and sends this, whatever the event it was handed said.
 */
export function storedInstruction(item: Item): InstructionDetail | undefined {
  if (!isEvent(item) || typeof item.pk !== 'string') return undefined;
  const provider = findProvider(String(item.provider));
  if (!provider?.instruction || item.source === 'status-endpoint') return undefined;
  // An instruction whose item had to be compressed (a large unknown field beside the code) is
  // published all the same: the person is waiting for the code whatever else the body carried.
  const found = provider.instruction(payloadOf(item));
  if (!found) return undefined;
  const sk = String(item.sk);
  const receivedAt = text(item.receivedAt) ?? new Date(0).toISOString();
  const detail: InstructionDetail = {
    ...found,
    eventId: instructionEventId({ pk: item.pk, sk }, receivedAt),
    provider: provider.id,
    subjectId: String(item.subjectId),
    eventKey: sk.slice(EVENT_SK_PREFIX.length),
    receivedAt,
  };
  return deliverableText(detail);
}

function instruction(item: Item): GatewayEvent | undefined {
  const detail = storedInstruction(item);
  return detail && { source: EVENT_SOURCE, detailType: DETAIL_TYPES.instruction, time: detail.receivedAt, detail };
}

/**
 * The events one change of the table publishes: at most one. A state item that says something new
 * publishes its change; an instruction's event item, when first written, publishes the instruction.
 * Removals (TTL expiry) and everything else publish nothing.
 */
export function eventsFromChange(change: TableChange): GatewayEvent[] {
  const after = change.newImage;
  if (change.eventName === 'REMOVE' || !after) return [];
  const event = isState(after) ? statusChanged(change.oldImage, after) : isEvent(after) && change.eventName === 'INSERT' ? instruction(after) : undefined;
  return event ? [deliverable(event)] : [];
}

/**
 * The detail with no U+FFFE or U+FFFF in its text (each becomes U+FFFD): such an event reached an
 * SQS target (the relay's queue, a consumer's, a rule's DLQ) as a message SQS refuses, so it was
 * never delivered, and locally the outlet retried it forever, holding back every later change. A
 * provider can put them in any text it sends (an instruction's text, a status); they mean nothing.
 */
function deliverableText<T extends object>(detail: T): T {
  const text = JSON.stringify(detail);
  const replaced = text.replace(SQS_REFUSED, '\ufffd');
  return replaced === text ? detail : (JSON.parse(replaced) as T);
}

function deliverable(event: GatewayEvent): GatewayEvent {
  const detail = deliverableText(event.detail);
  return detail === event.detail ? event : ({ ...event, detail } as GatewayEvent);
}
