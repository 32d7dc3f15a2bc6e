import { findProvider } from '../providers/index.ts';
import { maskSubjectId } from '../providers/provider.ts';
import { DependencyError } from '../shared/errors.ts';
import { type Logger, maskPhoneNumbers } from '../shared/log.ts';
import { DETAIL_TYPES, eventsFromChange, type GatewayEvent, type TableChange } from './publish.ts';

/**
 * Publishing a batch of the table's stream records (in stream order, one shard): the events each
 * change makes, sent in order. A failure stops the batch there: the failed record and every later
 * one are given back (later records of a shard must not overtake an earlier one, so per subject the
 * bus sees changes in version order), and the stream retries them; published events are not lost,
 * and a retried record publishes the same eventIds.
 *
 * A PutEvents call holds at most one event per subject: the bus may accept part of a call, and the
 * refused entries are sent again after the accepted ones, so two changes of one subject in one call
 * could reach the bus in the wrong order. A subject's next change waits for the next call, which is
 * made only once every entry of this one is accepted.
 *
 * An event the bus refuses for what it holds (an invalid argument, malformed JSON, over the size
 * limit) is refused again however often it is sent: retried, it held its record and every later
 * one of the shard (other subjects' changes too) until the record was STREAM.maxRecordAgeSeconds
 * old. Such an event is set aside instead: what names it (never its detail, which can hold a phone
 * number and a code) is recorded where an operator finds it, an ERROR line names its eventId and
 * the bus's code, and the batch goes on. Its subject's later changes are still published in order.
 * So is an event whose call the bus refused whole (HTTP 400 or 413, no entry named) and refused
 * again alone while it took another event of the call (functions/adapters/eventbridge.ts finds it).
 * When the call held nothing else (UnprovenRefusalError), it is tried once more with the later
 * changes of other subjects, published then ahead of their records (see `flush`).
 * A refusal for any other reason (permissions, the bus's configuration, throttling) is retried.
 */

/** An event the bus refused for what it holds, with the bus's ErrorCode (or the adapter's, for one too large to send). */
export interface RefusedEvent {
  readonly event: GatewayEvent;
  readonly errorCode: string;
}

/**
 * What names an event set aside, as recorded (the events dead-letter queue): enough to find the
 * change in the table, none of what it says. Ids are masked as log lines mask them (a subject id or
 * an eSMS recipient can hold a phone number).
 */
export interface SetAsideEvent {
  /** Tells these apart from what Lambda puts in the same queue (`DDBStreamBatchInfo`). */
  readonly setAside: 'refused by the event bus';
  readonly errorCode: string;
  readonly detailType: string;
  readonly eventId: string;
  readonly provider: string;
  readonly subjectId: string;
  readonly part?: string;
  /** A status change's version. */
  readonly version?: number;
  /** An instruction's stored callback (`EVENT#<eventKey>` under `<provider>#<subjectId>`): hashes, never the contact or code. */
  readonly eventKey?: string;
  /** The event's time: when the change was written, or the instruction received. */
  readonly time: string;
  /** The stream record that made it. */
  readonly sequenceNumber: string;
}

/**
 * What `publish` throws when the bus refused its whole call (HTTP 400 or 413) for an event sent alone
 * and took no other event of the publish: nothing tells an event at fault from a bus refusing every
 * entry, so none is set aside. `events` are those refused alone.
 */
export class UnprovenRefusalError extends DependencyError {
  constructor(
    readonly events: readonly GatewayEvent[],
    message: string,
  ) {
    super('eventbridge', message);
  }
}

export interface PublisherDependencies {
  /**
   * Put these events on the bus: resolves once each is accepted or refused for what it holds
   * (those it returns); throws (a DependencyError naming what failed) otherwise.
   */
  readonly publish: (events: readonly GatewayEvent[]) => Promise<readonly RefusedEvent[] | void>;
  /**
   * Record durably what names an event set aside; throws when it could not.
   * @default - none: a refused event fails its record like any other failure
   */
  readonly setAside?: (event: SetAsideEvent) => Promise<void>;
  readonly log: Logger;
}

export interface StreamRecord {
  /** The stream's sequence number: what a partial batch failure names. */
  readonly sequenceNumber: string;
  readonly change: TableChange;
}

export interface PublishResult {
  readonly published: number;
  /** Events the bus refused for what they hold, recorded (SetAsideEvent) and passed over. */
  readonly setAside: number;
  /** Sequence numbers to retry: the first failed record and every later one. */
  readonly failed: readonly string[];
}

/** The WARN line of a batch the bus failed (its records given back to be retried). */
export const PUBLISH_FAILED = 'publish failed; the stream retries from this record';

/** Events per PutEvents call (EventBridge's limit). */
export const MAX_EVENTS_PER_PUT = 10;

/** Longest subject id a SetAsideEvent carries: a few hundred characters find it; a queue message has a size limit. */
const SET_ASIDE_ID_CHARS = 512;

/** What names an event without what it says: its ids, masked as log lines mask them (see SetAsideEvent). */
export type EventName = Pick<SetAsideEvent, 'detailType' | 'eventId' | 'provider' | 'subjectId' | 'part' | 'version' | 'eventKey'>;

/** What names `event`, never its detail (an instruction's destination or text): a set-aside message's, and the events replay's listing. */
export function eventName(event: GatewayEvent): EventName {
  const detail = event.detail as { provider: string; subjectId: string; part?: string; version?: number; eventKey?: string };
  const subjectId = maskSubjectId(detail.subjectId, findProvider(detail.provider));
  return {
    detailType: event.detailType,
    eventId: event.detail.eventId,
    provider: detail.provider,
    subjectId: subjectId.length > SET_ASIDE_ID_CHARS ? `${subjectId.slice(0, SET_ASIDE_ID_CHARS)}…` : subjectId,
    ...(detail.part === undefined ? {} : { part: maskPhoneNumbers(detail.part).slice(0, SET_ASIDE_ID_CHARS) }),
    ...(event.detailType === DETAIL_TYPES.statusChanged ? { version: detail.version } : { eventKey: detail.eventKey }),
  };
}

/** What names `event`, refused with `errorCode`, made by the record `sequenceNumber`. */
export function setAsideEvent(event: GatewayEvent, errorCode: string, sequenceNumber: string): SetAsideEvent {
  return { setAside: 'refused by the event bus', errorCode, ...eventName(event), time: event.time, sequenceNumber };
}

/** What orders events: their subject (and part). Instructions of a session and its status changes count as one subject. */
const subjectOf = (event: GatewayEvent) => {
  const detail = event.detail as { provider: string; subjectId: string; part?: string };
  return `${detail.provider}\u0000${detail.subjectId}\u0000${detail.part ?? ''}`;
};

export async function publishRecords(records: readonly StreamRecord[], deps: PublisherDependencies): Promise<PublishResult> {
  let published = 0;
  let setAside = 0;
  /** eventIds published (or set aside) ahead of their record, to tell a refusal apart: not sent again when their record comes. */
  const done = new Set<string>();
  // Records go out in order, grouped up to the PutEvents limit, one event per subject in a group;
  // a group ends at a record boundary.
  let group: { events: GatewayEvent[]; first: number; subjects: Set<string>; records: Map<GatewayEvent, string> } = { events: [], first: 0, subjects: new Set(), records: new Map() };
  /**
   * Events of the records from `next` on that may join the group: each subject's first one not yet
   * published, of subjects the group does not hold, up to a PutEvents call's worth (past a full
   * group: the publish makes a second call). Put on the bus before their subjects' earlier records
   * are done, none overtakes an earlier change of its own subject. Counted apart from the group: a
   * full group whose every event the bus refused alone left no room, and ten such events in a row
   * held the shard, every subject's changes, until STREAM.maxRecordAgeSeconds.
   */
  const eventsAhead = (next: number): GatewayEvent[] => {
    const ahead: GatewayEvent[] = [];
    const passed = new Set(group.subjects);
    for (let index = next; index < records.length && ahead.length < MAX_EVENTS_PER_PUT; index++) {
      for (const event of eventsFromChange(records[index].change)) {
        if (done.has(event.detail.eventId)) continue;
        const subject = subjectOf(event);
        if (!passed.has(subject) && ahead.length < MAX_EVENTS_PER_PUT) {
          ahead.push(event);
          group.records.set(event, records[index].sequenceNumber);
        }
        passed.add(subject);
      }
    }
    return ahead;
  };
  const flush = async (next: number): Promise<number | undefined> => {
    if (group.events.length === 0) return undefined;
    try {
      let refused: readonly RefusedEvent[];
      try {
        refused = (await deps.publish(group.events)) ?? [];
      } catch (error) {
        // An event the bus refused alone, in a call refused whole, when it took nothing else: a bus
        // refusing every entry, or the group held nothing else to tell. Once more with the later
        // changes of other subjects (when the shard's next change is the same subject's, no group
        // holds another event): the bus taking one of them tells that the event is refused for
        // what it holds, and it is set aside; a bus refusing them all fails the group as before.
        const ahead = error instanceof UnprovenRefusalError ? eventsAhead(next) : [];
        if (ahead.length === 0) throw error;
        group.events = [...group.events, ...ahead];
        refused = (await deps.publish(group.events)) ?? [];
        for (const event of ahead) done.add(event.detail.eventId);
      }
      if (refused.length > 0 && !deps.setAside) {
        throw new Error(`${refused.length} events refused by the bus (${refused.map((each) => `${each.event.detail.eventId} ${each.errorCode}`).join(', ')}), and nowhere to set them aside`);
      }
      // Recorded before the batch moves past them: one not recorded fails its group, sent again.
      for (const { event, errorCode } of refused) {
        const named = setAsideEvent(event, errorCode, group.records.get(event)!);
        await deps.setAside!(named);
        deps.log.error('event refused by the bus; set aside', { eventId: named.eventId, detailType: named.detailType, provider: named.provider, errorCode, sequenceNumber: named.sequenceNumber });
      }
      published += group.events.length - refused.length;
      setAside += refused.length;
      return undefined;
    } catch (error) {
      deps.log.warn(PUBLISH_FAILED, { records: records.length - group.first, error: (error as Error).message });
      return group.first;
    }
  };
  for (let index = 0; index < records.length; index++) {
    let events = eventsFromChange(records[index].change).filter((event) => !done.has(event.detail.eventId));
    if (events.length === 0) continue;
    let subjects = events.map(subjectOf);
    if (group.events.length + events.length > MAX_EVENTS_PER_PUT || subjects.some((subject) => group.subjects.has(subject))) {
      const failedAt = await flush(index);
      if (failedAt !== undefined) return { published, setAside, failed: records.slice(failedAt).map((record) => record.sequenceNumber) };
      group = { events: [], first: index, subjects: new Set(), records: new Map() };
      // The flush may have published (or set aside) this record's events ahead of it: not sent again.
      events = events.filter((event) => !done.has(event.detail.eventId));
      if (events.length === 0) continue;
      subjects = events.map(subjectOf);
    }
    if (group.events.length === 0) group.first = index;
    group.events.push(...events);
    for (const event of events) group.records.set(event, records[index].sequenceNumber);
    for (const subject of subjects) group.subjects.add(subject);
  }
  const failedAt = await flush(records.length);
  if (failedAt !== undefined) return { published, setAside, failed: records.slice(failedAt).map((record) => record.sequenceNumber) };
  return { published, setAside, failed: [] };
}
