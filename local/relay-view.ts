import { keys } from '../functions/core/pipeline-definition.ts';
import { RELAY_SK_PREFIX, RELAYED_SK } from '../functions/core/relay.ts';
import type { Item } from '../functions/core/store.ts';
import { findProvider } from '../functions/providers/index.ts';

/**
 * What `inspect` shows of the relay: on the subject an instruction belongs to (an Identomat session),
 * each relayed instruction joined with what its sender's delivery reports say (the sender's own
 * subject, `<sender>#<reference>`, where the gateway stores those reports as any other callback);
 * on the sender's subject (a TeleSign reference), which instruction it carried. Reads only what the
 * relay wrote: ids, kinds, statuses; never a destination or a text (the relay stores none).
 */

/** What the sender's delivery reports say of one relayed message. */
export interface RelayDelivery {
  readonly status: string | null;
  readonly outcome: string | null;
  readonly terminal: boolean;
  /** The provider's own words for the status (TeleSign's `status.description`), from the report that set it. */
  readonly description?: string;
  readonly statusAt?: string;
}

export interface RelayView {
  readonly eventId: string;
  readonly kind: string;
  readonly oneTimeCode: boolean;
  readonly status: string;
  /** The provider that sent it. */
  readonly via: string;
  readonly receivedAt?: string;
  readonly referenceId?: string;
  /**
   * `delivery report`: the send got no answer (the item stays `uncertain`), and the reference is the
   * one the sender's delivery report gave, joined by the external id the send carried.
   */
  readonly referenceFrom?: string;
  readonly sentAt?: string;
  readonly attempts?: number;
  readonly reason?: string;
  /** Who refused it: `gateway` (its own checks, the provider never asked) or the provider. */
  readonly refusedBy?: string;
  /**
   * Refused over `relayMaxPerNumberPerHour`: the next clock hour (UTC) after the refusal, when the
   * number's count starts again from 0 (`2026-01-31T15:00Z`).
   */
  readonly capClearsAt?: string;
  readonly lastFault?: string;
  /** The last delivery failed too: the instruction is in the relay's DLQ. */
  readonly deadLettered?: boolean;
  /** Null while no delivery report came. Absent when nothing was sent. */
  readonly delivery?: RelayDelivery | null;
  /**
   * Other messages the sender took with this instruction's external id (their references, from
   * their delivery reports): the person may have received it more than once.
   */
  readonly otherReferenceIds?: readonly string[];
}

/** The link the relay left on the sender's subject: which instruction this message carried. */
export interface RelayedLink {
  readonly forProvider: string;
  readonly forSubjectId: string;
  readonly eventId: string;
  readonly kind?: string;
  readonly sentAt?: string;
}

const text = (value: unknown) => (typeof value === 'string' ? value : undefined);

/** The clock hour (UTC) after a refusal over relayMaxPerNumberPerHour (the reason names the setting), if the item is one. */
function capClearsAt(item: Item): string | undefined {
  const at = Date.parse(String(item.updatedAt));
  if (item.status !== 'refused' || item.refusedBy !== 'gateway' || !String(item.reason).includes('relayMaxPerNumberPerHour') || Number.isNaN(at)) return undefined;
  return `${new Date(Math.floor(at / 3_600_000) * 3_600_000 + 3_600_000).toISOString().slice(0, 16)}Z`;
}

/** The description a stored callback gives its status (`status.description`, or `description`). */
function descriptionOf(event: Item | undefined): string | undefined {
  const payload = event?.payload as Record<string, unknown> | undefined;
  const status = payload?.status as Record<string, unknown> | undefined;
  return text(status?.description) ?? text(payload?.description);
}

/** What the sender's subject says: its state, described by the newest report of that status. */
function deliveryOf(items: readonly Item[]): RelayDelivery | null {
  const state = items.find((item) => item.sk === 'STATE');
  if (!state || state.status === undefined) return null;
  const reports = items
    .filter((item) => String(item.sk).startsWith('EVENT#') && item.status === state.status)
    .sort((a, b) => String(b.receivedAt).localeCompare(String(a.receivedAt)));
  const description = descriptionOf(reports[0]);
  return {
    status: text(state.status) ?? null,
    outcome: text(state.outcome) ?? null,
    terminal: state.terminal === true,
    ...(description ? { description } : {}),
    ...(text(state.statusAt) ? { statusAt: text(state.statusAt) } : {}),
  };
}

/**
 * The relay items among a subject's items, oldest first, each with its delivery: `readPartition`
 * reads a partition (the sender's subject) whole.
 */
export async function relayViews(items: readonly Item[], readPartition: (pk: string) => Promise<Item[]>): Promise<RelayView[]> {
  const relays = items.filter((item) => String(item.sk).startsWith(RELAY_SK_PREFIX)).sort((a, b) => String(a.createdAt).localeCompare(String(b.createdAt)));
  return Promise.all(
    relays.map(async (item): Promise<RelayView> => {
      const referenceId = text(item.referenceId);
      const via = String(item.via);
      const delivery = referenceId === undefined ? undefined : deliveryOf(await readPartition(keys.subject(via, referenceId)));
      // A string set as DynamoDB keeps it; never the item's own reference.
      const others = item.otherReferenceIds instanceof Set || Array.isArray(item.otherReferenceIds) ? [...(item.otherReferenceIds as Iterable<unknown>)].filter((each): each is string => typeof each === 'string' && each !== referenceId).sort() : [];
      return {
        eventId: String(item.eventId),
        kind: String(item.kind),
        oneTimeCode: item.oneTimeCode === true,
        status: String(item.status),
        via,
        ...(text(item.receivedAt) ? { receivedAt: text(item.receivedAt) } : {}),
        ...(referenceId ? { referenceId } : {}),
        ...(text(item.referenceFrom) ? { referenceFrom: text(item.referenceFrom) } : {}),
        ...(text(item.sentAt) ? { sentAt: text(item.sentAt) } : {}),
        ...(typeof item.attempts === 'number' ? { attempts: item.attempts } : {}),
        ...(text(item.reason) ? { reason: text(item.reason) } : {}),
        ...(text(item.refusedBy) ? { refusedBy: text(item.refusedBy) } : {}),
        ...(capClearsAt(item) ? { capClearsAt: capClearsAt(item) } : {}),
        ...(text(item.lastFault) ? { lastFault: text(item.lastFault) } : {}),
        ...(item.deadLettered === true && item.status === 'retry' ? { deadLettered: true } : {}),
        ...(delivery === undefined ? {} : { delivery }),
        ...(others.length ? { otherReferenceIds: others } : {}),
      };
    }),
  );
}

/** The link item among a sender subject's items, if the relay sent this message. */
export function relayedLink(items: readonly Item[]): RelayedLink | null {
  const link = items.find((item) => item.sk === RELAYED_SK);
  if (!link) return null;
  return {
    forProvider: String(link.forProvider),
    forSubjectId: String(link.forSubjectId),
    eventId: String(link.eventId),
    ...(text(link.kind) ? { kind: text(link.kind) } : {}),
    ...(text(link.sentAt) ? { sentAt: text(link.sentAt) } : {}),
  };
}

const nameOf = (id: string) => findProvider(id)?.displayName ?? id;

/** One line per relayed instruction: "code sent via TeleSign at …, reference …: Delivered to handset (200, succeeded)". */
export function relayLine(view: RelayView): string {
  const others = view.otherReferenceIds ?? [];
  if (others.length === 0) return statusLine(view);
  const via = nameOf(view.via);
  // Recorded not sent (expired, superseded, refused with no reference), yet TeleSign's report says
  // it took a message with this external id (an attempt answered 429/5xx that it had acted on).
  if (view.referenceId === undefined) {
    return `${statusLine(view)}; yet ${via} took ${others.length === 1 ? 'a message' : `${others.length} messages`} with this instruction's external_id (reference ${others.join(', ')}): the person may have received it`;
  }
  return `${statusLine(view)}; ${via} also took ${others.length} other message${others.length === 1 ? '' : 's'} with this instruction's external_id (reference ${others.join(', ')}): the person may have received it more than once`;
}

function statusLine(view: RelayView): string {
  const what = view.oneTimeCode ? 'code' : 'link';
  const via = nameOf(view.via);
  const delivery = view.delivery
    ? `${view.delivery.description ?? view.delivery.status} (${view.delivery.status}, ${view.delivery.outcome}${view.delivery.terminal ? '' : ', not final yet'})`
    : 'no delivery report yet';
  switch (view.status) {
    case 'sent':
      return `${what} sent via ${via}${view.sentAt ? ` at ${view.sentAt}` : ''}, reference ${view.referenceId}: ${delivery}`;
    case 'expired':
      return `${what} not sent: expired (${view.reason ?? 'too old'})`;
    case 'superseded':
      return `${what} not sent: superseded (a later ${what} for this session went first)`;
    case 'uncertain':
      // No answer to the send, but the sender's delivery report named it (by its external id).
      if (view.referenceId) return `${what} may have been sent via ${via} (no answer to the send); ${via}'s delivery report, reference ${view.referenceId}: ${delivery}`;
      return `${what} may have been sent via ${via}: ${view.reason ?? 'no answer'}; check with ${via} (external_id ${view.eventId})`;
    case 'refused':
      if (view.refusedBy === 'gateway') {
        // Over the cap: when the number may be sent to again, and the setting that allows more.
        const clears = view.capClearsAt ? `; the number can be sent to again from ${view.capClearsAt} (the next clock hour, UTC), or sooner with a higher relayMaxPerNumberPerHour` : '';
        return `${what} not sent: the gateway refused it before asking ${via} (${view.reason ?? 'refused'})${clears}`;
      }
      // Refused in an answer that named the transaction (a 2xx with a failure status): its reference, and any report of it.
      return `${what} not sent: ${via} refused it (${view.reason ?? 'refused'})${view.referenceId ? `, reference ${view.referenceId}: ${delivery}` : ''}`;
    case 'retry':
      return view.deadLettered
        ? `${what} not sent: gave up after ${view.attempts ?? 0} attempt(s) (${view.lastFault ?? 'a fault'}); it is in the relay's dead-letter queue: once ${via} is fixed, redrive it (npm run redrive -- --relay locally; on AWS, npm run redrive -- --dlq-url <RelayDeadLetterQueueUrl> --region <region>); a code then too old is recorded expired`
        : `${what} not sent yet: ${view.lastFault ?? 'a fault'}; tried ${view.attempts ?? 0} time(s), retrying with back-off`;
    case 'sending':
      return `${what} being sent via ${via} (attempt ${view.attempts ?? 1})`;
    case 'claimed':
      return `${what} about to be sent via ${via} (attempt ${view.attempts ?? 1}; nothing has left yet)`;
    default:
      return `${what} ${view.status}`;
  }
}

/** The line the sender's subject shows: "relayed Identomat one-time-password of session …". */
export function relayedLine(link: RelayedLink): string {
  return `relayed ${nameOf(link.forProvider)} ${link.kind ?? 'instruction'} of ${link.forSubjectId} (event ${link.eventId}${link.sentAt ? `, sent ${link.sentAt}` : ''})`;
}
