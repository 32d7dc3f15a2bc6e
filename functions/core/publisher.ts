import type { Logger } from '../shared/log.ts';
import { eventsFromChange, type GatewayEvent, type TableChange } from './publish.ts';

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
 */

export interface PublisherDependencies {
  /** Put these events on the bus, all or throw (a DependencyError naming what failed). */
  readonly publish: (events: readonly GatewayEvent[]) => Promise<void>;
  readonly log: Logger;
}

export interface StreamRecord {
  /** The stream's sequence number: what a partial batch failure names. */
  readonly sequenceNumber: string;
  readonly change: TableChange;
}

export interface PublishResult {
  readonly published: number;
  /** Sequence numbers to retry: the first failed record and every later one. */
  readonly failed: readonly string[];
}

/** Events per PutEvents call (EventBridge's limit). */
export const MAX_EVENTS_PER_PUT = 10;

/** What orders events: their subject (and part). Instructions of a session and its status changes count as one subject. */
const subjectOf = (event: GatewayEvent) => {
  const detail = event.detail as { provider: string; subjectId: string; part?: string };
  return `${detail.provider}\u0000${detail.subjectId}\u0000${detail.part ?? ''}`;
};

export async function publishRecords(records: readonly StreamRecord[], deps: PublisherDependencies): Promise<PublishResult> {
  let published = 0;
  // Records go out in order, grouped up to the PutEvents limit, one event per subject in a group;
  // a group ends at a record boundary.
  let group: { events: GatewayEvent[]; first: number; subjects: Set<string> } = { events: [], first: 0, subjects: new Set() };
  const flush = async (): Promise<number | undefined> => {
    if (group.events.length === 0) return undefined;
    try {
      await deps.publish(group.events);
      published += group.events.length;
      return undefined;
    } catch (error) {
      deps.log.warn('publish failed; the stream retries from this record', { records: records.length - group.first, error: (error as Error).message });
      return group.first;
    }
  };
  for (let index = 0; index < records.length; index++) {
    const events = eventsFromChange(records[index].change);
    if (events.length === 0) continue;
    const subjects = events.map(subjectOf);
    if (group.events.length + events.length > MAX_EVENTS_PER_PUT || subjects.some((subject) => group.subjects.has(subject))) {
      const failedAt = await flush();
      if (failedAt !== undefined) return { published, failed: records.slice(failedAt).map((record) => record.sequenceNumber) };
      group = { events: [], first: index, subjects: new Set() };
    }
    if (group.events.length === 0) group.first = index;
    group.events.push(...events);
    for (const subject of subjects) group.subjects.add(subject);
  }
  const failedAt = await flush();
  if (failedAt !== undefined) return { published, failed: records.slice(failedAt).map((record) => record.sequenceNumber) };
  return { published, failed: [] };
}
