import { EventBridgeClient, type EventBridgeClientConfig, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import type { GatewayEvent } from '../core/publish.ts';
import { type RefusedEvent, UnprovenRefusalError } from '../core/publisher.ts';
import { DependencyError } from '../shared/errors.ts';

/**
 * The event bus side of publishing: gateway events as EventBridge PutEvents entries, in calls that
 * respect the API's limits, every entry accepted or a DependencyError naming those that were not.
 *
 * PutEvents takes at most 10 entries a call, and a call's entries must total under 256 KB, each
 * entry counted as: `Time` 14 bytes, `Source`, `DetailType` and `Detail` their UTF-8 bytes
 * (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html,
 * https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html). A call can
 * succeed with some entries refused (`FailedEntryCount`, and `ErrorCode` on each refused entry, in
 * request order): only those are sent again, a few times, before giving up.
 *
 * An entry refused for what it holds is not sent again: the same entry is refused again however
 * often it is sent, and the stream retrying it held every later change of its shard for
 * STREAM.maxRecordAgeSeconds. Those are returned (CONTENT_REFUSALS, and TOO_LARGE for one over the
 * size limit, found before sending), for the core to set aside. Every other refusal, a permission
 * or configuration one included (AccessDeniedException, NotAuthorizedFor…, InvalidAccountIdException,
 * an ErrorCode not documented), is an operator's to fix or passes by itself: it fails the publish,
 * and the stream retries.
 *
 * A whole call can be refused too (an HTTP 400 or 413, no entry answered) for what one of its entries
 * holds: then which one is not said. Such a call is sent again one entry a call (WHOLE_CALL_REFUSALS),
 * so the others are published and only an entry refused alone is returned, as above, with the
 * error's name (or REQUEST_TOO_LARGE) as its code, and only when the bus took some other entry of
 * the same publish: see `eventBridgePublisher`.
 *
 * Error messages name an entry by its detail-type and eventId and the bus's ErrorCode, never its
 * detail or the service's message (a validation message can quote the value it refused, and an
 * instruction's detail holds a phone number and a code).
 */

/**
 * PutEventsResultEntry ErrorCodes that refuse an entry for what it holds: documented as not
 * retryable, and not about who sends it (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEventsResultEntry.html:
 * InvalidArgument "A specified parameter is not valid", MalformedDetail "The JSON provided is not
 * valid", RedactionFailure "Redacting the CloudTrail event failed"). PutEvents refuses an integer
 * outside 64 bits or JSON nested past 1100 levels (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html).
 */
export const CONTENT_REFUSALS: ReadonlySet<string> = new Set(['InvalidArgument', 'MalformedDetail', 'RedactionFailure']);

/** The code given to an entry over PUT_EVENTS_LIMITS.bytes, which is never sent (ours, not the bus's: PutEvents takes no entry that large). */
export const TOO_LARGE = 'EntryTooLarge';

/**
 * Errors refusing a whole PutEvents call for what the request holds, as the SDK names them (an AWS
 * JSON error's `__type`), with HTTP 400: `ValidationException` ("Total size of the entries in the
 * request is over the limit.", or a member's constraint), `SerializationException` (a body that is
 * not the JSON the operation takes: the SDK writes an entry's unreadable `Time` as `NaN`), and
 * `ValidationError`, the common error of every action for input that fails its constraints
 * (https://docs.aws.amazon.com/eventbridge/latest/APIReference/CommonErrors.html; the operation's
 * own page, https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html, lists
 * InternalException only). Every other error of that page is about who sends, the account or how
 * fast (AccessDeniedException, IncompleteSignature, InvalidClientTokenId, NotAuthorized,
 * OptInRequired, RequestExpired, ThrottlingException: a 400 too) or the service (InternalFailure,
 * ServiceUnavailable): retried as before, never split. An HTTP 413 (Request Entity Too Large) comes with no body, which
 * the SDK names `Unknown`: it is told by its status.
 */
export const WHOLE_CALL_REFUSALS: ReadonlySet<string> = new Set(['ValidationException', 'SerializationException', 'ValidationError']);

/** The code given to an entry whose call alone was refused with an HTTP 413 (the SDK names that error `Unknown`). */
export const REQUEST_TOO_LARGE = 'RequestEntityTooLarge';

/** What a thrown PutEvents error says when it refuses the call for what the request holds: the code to give an entry refused alone. */
export function wholeCallRefusal(error: unknown): string | undefined {
  const { name, $metadata } = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = $metadata?.httpStatusCode;
  if (status === 413) return REQUEST_TOO_LARGE;
  return status === 400 && typeof name === 'string' && WHOLE_CALL_REFUSALS.has(name) ? name : undefined;
}

/** PutEvents limits: entries per call, and bytes of a call's entries. */
export const PUT_EVENTS_LIMITS = { entries: 10, bytes: 256 * 1024 } as const;

/** Bounds of one PutEvents call: a stalled bus fails the invocation's publish well inside its timeout. */
export const EVENTBRIDGE_BOUNDS = { connectionTimeoutMs: 1_000, requestTimeoutMs: 3_000, maxAttempts: 3 } as const;

/** An EventBridge client bounded as above (`config` adds an endpoint or region). */
export function boundedEventBridgeClient(config: EventBridgeClientConfig = {}): EventBridgeClient {
  return new EventBridgeClient({
    ...config,
    maxAttempts: EVENTBRIDGE_BOUNDS.maxAttempts,
    requestHandler: {
      connectionTimeout: EVENTBRIDGE_BOUNDS.connectionTimeoutMs,
      requestTimeout: EVENTBRIDGE_BOUNDS.requestTimeoutMs,
      throwOnRequestTimeout: true,
    },
  });
}

/** The PutEvents entry of a gateway event, on the given bus. */
export function putEventsEntry(event: GatewayEvent, eventBusName: string): PutEventsRequestEntry {
  // When the change was written (or the instruction received), not when it was published. A time
  // that is no date (a `changedAt` a program wrote to an expectation as other text) is left out, and
  // the bus stamps the event when it takes it: the SDK would write it as `"Time":NaN`, which is not
  // JSON, and the bus refused the whole call.
  const time = new Date(event.time);
  return {
    EventBusName: eventBusName,
    Source: event.source,
    DetailType: event.detailType,
    Detail: JSON.stringify(event.detail),
    ...(Number.isNaN(time.getTime()) ? {} : { Time: time }),
  };
}

/** An entry's size as EventBridge counts it. */
export function entrySize(entry: PutEventsRequestEntry): number {
  const bytes = (text: string | undefined) => (text === undefined ? 0 : Buffer.byteLength(text, 'utf8'));
  return (entry.Time ? 14 : 0) + bytes(entry.Source) + bytes(entry.DetailType) + bytes(entry.Detail) + (entry.Resources ?? []).reduce((sum, resource) => sum + bytes(resource), 0);
}

/** Consecutive groups of entries, in order, each within the call limits. */
export function putEventsBatches<T extends PutEventsRequestEntry>(entries: readonly T[]): T[][] {
  const batches: T[][] = [];
  let current: T[] = [];
  let size = 0;
  for (const entry of entries) {
    const bytes = entrySize(entry);
    if (current.length > 0 && (current.length === PUT_EVENTS_LIMITS.entries || size + bytes > PUT_EVENTS_LIMITS.bytes)) {
      batches.push(current);
      current = [];
      size = 0;
    }
    current.push(entry);
    size += bytes;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

export interface EventBridgePublisherOptions {
  /** Calls per batch before its refused entries fail the publish (the first included). @default 3 */
  readonly attempts?: number;
  /** Pause before sending refused entries again; doubles per attempt. @default 100 */
  readonly retryBaseMs?: number;
  /** @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
}

interface Pending {
  readonly event: GatewayEvent;
  readonly entry: PutEventsRequestEntry;
  /** How the entry is named in errors: `<detail-type> <eventId>`. */
  readonly name: string;
}

const sleepFor = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * `publish(events)` for functions/core/publisher.ts: puts the events on the bus in their order,
 * resolving once every one is accepted or refused for what it holds (those it returns, with their
 * code); otherwise throws a DependencyError naming the ones refused for another reason (the stream
 * then retries them, with the same eventIds, so a consumer that dedupes sees each once).
 *
 * A call refused whole for what it holds (wholeCallRefusal) is sent again one entry a call: at most
 * one call more per entry (ten), each answering for its entry alone, rather than halving, whose
 * calls double when several entries are at fault. The entries taken are published (the core puts
 * at most one event per subject in a publish, so their order among themselves is free); an entry
 * refused alone is the one at fault, unless the bus refuses every entry: a bus name or endpoint the
 * bus no longer takes, or a change of the service, would refuse each call alike, and setting aside
 * everything then would take every event off the bus. So an entry refused alone is returned (set
 * aside) only when the bus took some other entry of this publish, sent alone or in a call: proof
 * that the bus takes entries now, and that this one is refused for what it holds. With none taken
 * (the entry was the publish's only one, or all were refused), the publish fails with an
 * UnprovenRefusalError: the core tries once more with later changes of other subjects, else the
 * stream retries it, and a publish that also holds an entry the bus takes tells them apart.
 * The evidence is the publish's own, never remembered from an earlier one: a bus that starts
 * refusing everything is never read as refusing one entry.
 */
export function eventBridgePublisher(client: EventBridgeClient, eventBusName: string, options: EventBridgePublisherOptions = {}): (events: readonly GatewayEvent[]) => Promise<RefusedEvent[]> {
  const attempts = options.attempts ?? 3;
  const retryBaseMs = options.retryBaseMs ?? 100;
  const sleep = options.sleep ?? sleepFor;

  /** The entries refused (with their code), or the code of a refusal of the whole call for what it holds. */
  const put = async (pending: readonly Pending[]): Promise<{ refused: { pending: Pending; code: string }[] } | { refusedWhole: string; status: number | undefined }> => {
    let result;
    try {
      result = await client.send(new PutEventsCommand({ Entries: pending.map((each) => each.entry) }));
    } catch (error) {
      // The error's name and status only: its message may quote what was sent.
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      const refusedWhole = wholeCallRefusal(error);
      if (refusedWhole !== undefined) return { refusedWhole, status };
      throw new DependencyError('eventbridge', `PutEvents failed (${(error as Error).name}${status ? `, HTTP ${status}` : ''}) for ${pending.map((each) => each.name).join(', ')}`, { cause: error });
    }
    if (!result.FailedEntryCount) return { refused: [] };
    const answers = result.Entries ?? [];
    // Entries answer in request order; an entry without an answer counts as refused.
    return { refused: pending.flatMap((each, index) => (answers[index]?.EventId && !answers[index]?.ErrorCode ? [] : [{ pending: each, code: answers[index]?.ErrorCode ?? 'NoAnswer' }])) };
  };

  return async (events) => {
    const named = events.map((event): Pending => ({ event, entry: putEventsEntry(event, eventBusName), name: `${event.detailType} ${event.detail.eventId}` }));
    const refusedForGood: RefusedEvent[] = [];
    /** Entries whose call, holding them alone, was refused whole for what it holds. */
    const refusedAlone: { pending: Pending; code: string; status: number | undefined }[] = [];
    /** Entries of this publish the bus took. */
    let accepted = 0;
    const sendable = named.filter((each) => {
      if (entrySize(each.entry) <= PUT_EVENTS_LIMITS.bytes) return true;
      refusedForGood.push({ event: each.event, errorCode: TOO_LARGE });
      return false;
    });
    const send = async (batch: readonly Pending[]): Promise<void> => {
      let pending = batch;
      for (let attempt = 1; ; attempt++) {
        const answer = await put(pending);
        if ('refusedWhole' in answer) {
          if (pending.length === 1) {
            refusedAlone.push({ pending: pending[0], code: answer.refusedWhole, status: answer.status });
            return;
          }
          // Which entry is at fault is not said: each alone, in order.
          for (const each of pending) await send([each]);
          return;
        }
        accepted += pending.length - answer.refused.length;
        const refused = answer.refused.filter((each) => {
          if (!CONTENT_REFUSALS.has(each.code)) return true;
          refusedForGood.push({ event: each.pending.event, errorCode: each.code });
          return false;
        });
        if (refused.length === 0) return;
        if (attempt >= attempts) {
          throw new DependencyError(
            'eventbridge',
            `${refused.length} of ${pending.length} events not accepted by the bus after ${attempt} attempts: ${refused.map((each) => `${each.pending.name} (${each.code})`).join(', ')}`,
          );
        }
        await sleep(retryBaseMs * 2 ** (attempt - 1));
        pending = refused.map((each) => each.pending);
      }
    };
    const byEntry = new Map(sendable.map((each) => [each.entry, each]));
    for (const batch of putEventsBatches(sendable.map((each) => each.entry))) await send(batch.map((entry) => byEntry.get(entry)!));
    if (refusedAlone.length > 0 && accepted === 0) {
      throw new UnprovenRefusalError(
        refusedAlone.map((each) => each.pending.event),
        `PutEvents refused ${refusedAlone.length === 1 ? 'the call' : 'each call'} (${refusedAlone.map((each) => `${each.code}${each.status ? `, HTTP ${each.status}` : ''}`).filter((each, index, all) => all.indexOf(each) === index).join('; ')}) for ${refusedAlone.map((each) => each.pending.name).join(', ')}, sent alone, and took no other entry: not set aside, as the bus may be refusing every entry`,
      );
    }
    for (const each of refusedAlone) refusedForGood.push({ event: each.pending.event, errorCode: each.code });
    // In the order of the events given.
    return refusedForGood.sort((a, b) => events.indexOf(a.event) - events.indexOf(b.event));
  };
}
