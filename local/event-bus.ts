import { randomUUID } from 'node:crypto';
import { chmodSync, closeSync, existsSync, openSync, readSync, statSync, truncateSync } from 'node:fs';
import { appendFile, stat } from 'node:fs/promises';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { queueSender } from '../functions/adapters/sqs.ts';
import type { GatewayEvent } from '../functions/core/publish.ts';
import { DependencyError, errorMessage } from '../functions/shared/errors.ts';

/**
 * The local event bus: what EventBridge is on AWS, for `npm start`. Publishing appends each event
 * to `<dataDir>/events.jsonl`, one `{source, detail-type, time, detail}` object per line (what
 * `npm run events` shows), then hands it to every rule that matches it, as an EventBridge rule
 * hands events to its targets (the SMS relay's queue).
 *
 * - All or nothing, as PutEvents is read by the publisher: when the file cannot be written or a
 *   rule's target refuses, `publish` throws a DependencyError and the stream reader hands the same
 *   records over again.
 * - Each event is in the file once, even across a kill -9: the events appended after the last saved
 *   stream position (`committedBytes`) are the only ones a restart can hand over again, so their
 *   eventIds are read back when the bus opens and not appended a second time. A line cut short by a
 *   crash is removed (nobody read it: readers take whole lines only).
 * - Rules' targets may see an event again (at least once, like EventBridge's): after a failure the
 *   whole group is delivered again, and a crash between the append and the delivery delivers it on
 *   the next start. Targets dedupe on `detail.eventId` (the relay does).
 */

/** An event as the bus holds it: EventBridge's own field names. */
export interface BusEvent {
  readonly source: string;
  readonly 'detail-type': string;
  readonly time: string;
  readonly detail: GatewayEvent['detail'];
}

/** A rule: which events it takes and where it delivers them (one target). */
export interface BusRule {
  readonly name: string;
  matches(event: GatewayEvent): boolean;
  /** Deliver one event (as EventBridge delivers it to an SQS target); throws on failure. */
  deliver(event: EventBridgeEnvelope): Promise<void>;
}

/**
 * An EventBridge event pattern of exact values: each field named must have one of the values
 * listed (a nested object matches the field's members), as EventBridge matches
 * (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html). Content
 * filters (prefix, anything-but…) are not needed by any rule here.
 */
export type EventPattern = { readonly [field: string]: readonly (string | number | boolean | null)[] | EventPattern };

/** Whether an event (EventBridge's field names) matches a pattern. */
export function matchesPattern(pattern: EventPattern, value: unknown): boolean {
  if (!value || typeof value !== 'object') return false;
  return Object.entries(pattern).every(([field, expected]) => {
    const actual = (value as Record<string, unknown>)[field];
    if (!Array.isArray(expected)) return matchesPattern(expected as EventPattern, actual);
    // An array in the event matches when any of its elements does.
    const values = Array.isArray(actual) ? actual : [actual];
    return values.some((candidate) => (expected as readonly unknown[]).includes(candidate));
  });
}

/** A rule whose target is an SQS queue: each matching event is sent as EventBridge sends it (the whole event as the body). */
export function sqsTargetRule(name: string, pattern: EventPattern, sqs: SQSClient, queueUrl: string): BusRule {
  const send = queueSender(sqs, queueUrl);
  return {
    name,
    matches: (event) => matchesPattern(pattern, toBusEvent(event)),
    deliver: (event) => send(JSON.stringify(event)),
  };
}

/** What an EventBridge rule delivers to a target: the event with its envelope. */
export interface EventBridgeEnvelope extends BusEvent {
  readonly version: '0';
  readonly id: string;
  readonly account: string;
  readonly region: string;
  readonly resources: readonly string[];
}

export interface LocalEventBus {
  publish(events: readonly GatewayEvent[]): Promise<void>;
  /**
   * The file's length after the last `publish` that succeeded: the events up to here belong to
   * records the publisher is done with. (Events of a failed call may follow: their records are
   * handed over again.)
   */
  bytes(): number;
  /** A stream position covering everything up to `bytes` was saved: a restart will not hand those events over again. */
  committed(bytes: number): void;
}

export interface EventBusOptions {
  readonly file: string;
  /** The file's length when the stream position was last saved (absent: no position was saved). */
  readonly committedBytes?: number;
  readonly rules?: readonly BusRule[];
  /** For the envelope rules deliver. */
  readonly region: string;
  readonly account?: string;
}

export function toBusEvent(event: GatewayEvent): BusEvent {
  return { source: event.source, 'detail-type': event.detailType, time: event.time, detail: event.detail };
}

export function openEventBus(options: EventBusOptions): LocalEventBus {
  const { file } = options;
  const rules = options.rules ?? [];
  let length = dropCutLine(file);
  // A file an older version wrote readable by all: owner-only from now on.
  if (length > 0) chmodSync(file, 0o600);
  const committedBytes = Math.min(options.committedBytes ?? 0, length);
  // Where the events of the last successful publish end: every record before them is done.
  let succeeded = committedBytes;
  // Events appended whose records a restart (or a retry) may hand over again, with where their line
  // ends: at first, what the last run appended after its last saved position.
  const uncommitted = eventIdsAfter(file, committedBytes);
  return {
    async publish(events) {
      const fresh = events.filter((event) => !uncommitted.has(event.detail.eventId));
      // Appended before and handed over again: where the last of them ends.
      const again = Math.max(0, ...events.map((event) => uncommitted.get(event.detail.eventId) ?? 0));
      if (fresh.length > 0) {
        const text = fresh.map((event) => `${JSON.stringify(toBusEvent(event))}\n`).join('');
        try {
          // One write in append mode: a reader sees whole lines or nothing of them.
          // Owner-only, like the secrets file: instructions carry live codes, numbers and links.
          await appendFile(file, text, { mode: 0o600 });
          // The file's own length (not a count kept here), right even if it was away while the bus opened.
          length = (await stat(file)).size;
        } catch (error) {
          throw new DependencyError('event bus', `cannot append to ${file}: ${errorMessage(error)}`, { cause: error });
        }
        for (const event of fresh) uncommitted.set(event.detail.eventId, length);
      }
      for (const event of events) {
        for (const rule of rules) {
          if (!rule.matches(event)) continue;
          try {
            await rule.deliver(envelope(event, options));
          } catch (error) {
            throw new DependencyError(`rule ${rule.name}`, `rule ${rule.name} could not deliver event ${event.detail.eventId}: ${errorMessage(error)}`, { cause: error });
          }
        }
      }
      succeeded = Math.max(succeeded, fresh.length > 0 ? length : again);
    },
    bytes: () => succeeded,
    committed(bytes) {
      for (const [id, end] of uncommitted) if (end <= bytes) uncommitted.delete(id);
    },
  };
}

function envelope(event: GatewayEvent, options: EventBusOptions): EventBridgeEnvelope {
  return {
    version: '0',
    id: randomUUID(),
    ...toBusEvent(event),
    // As EventBridge delivers it: to the second (the detail keeps the milliseconds).
    time: `${new Date(event.time).toISOString().slice(0, 19)}Z`,
    account: options.account ?? '000000000000',
    region: options.region,
    resources: [],
  };
}

/** Remove a last line a crash cut short (no newline at the end); the file's length after. */
function dropCutLine(file: string): number {
  // Absent, or not a file (publishing will fail, and be retried, until it is one).
  if (!existsSync(file) || !statSync(file).isFile()) return 0;
  const size = statSync(file).size;
  if (size === 0) return 0;
  const fd = openSync(file, 'r+');
  try {
    // Find the last newline, reading backwards in chunks.
    const chunk = Buffer.alloc(64 * 1024);
    let end = size;
    while (end > 0) {
      const start = Math.max(0, end - chunk.length);
      const read = readSync(fd, chunk, 0, end - start, start);
      const index = chunk.subarray(0, read).lastIndexOf(0x0a);
      if (index >= 0) {
        const keep = start + index + 1;
        if (keep < size) truncateSync(file, keep);
        return keep;
      }
      end = start;
    }
    truncateSync(file, 0);
    return 0;
  } finally {
    closeSync(fd);
  }
}

/** The eventIds of the lines from byte `from` to the end of the file, each with where its line ends. */
function eventIdsAfter(file: string, from: number): Map<string, number> {
  const ids = new Map<string, number>();
  if (!existsSync(file) || !statSync(file).isFile()) return ids;
  const size = statSync(file).size;
  if (size <= from) return ids;
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(size - from);
    readSync(fd, buffer, 0, buffer.length, from);
    let end = from;
    for (const line of buffer.toString('utf8').split('\n')) {
      end += Buffer.byteLength(line) + 1;
      if (!line) continue;
      try {
        const id = (JSON.parse(line) as BusEvent).detail?.eventId;
        if (typeof id === 'string') ids.set(id, end);
      } catch {
        // Not an event line: nothing to dedupe against.
      }
    }
  } finally {
    closeSync(fd);
  }
  return ids;
}
