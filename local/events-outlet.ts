import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { publishRecords } from '../functions/core/publisher.ts';
import type { LogWrite } from '../functions/handlers/dependencies.ts';
import { createLogger } from '../functions/shared/log.ts';
import { LOCAL_AWS } from './engines.ts';
import { boundedSqsClient } from '../functions/adapters/sqs.ts';
import { DETAIL_TYPES, EVENT_SOURCE } from '../functions/core/publish.ts';
import { openEventBus, sqsTargetRule, type EventPattern } from './event-bus.ts';
import { startStreamReader, type StreamPosition } from './stream-reader.ts';

/**
 * Events out, locally: the table's stream read as Lambda's event source reads it on AWS
 * (local/stream-reader.ts), each batch published by the same core as the publisher Lambda
 * (functions/core/publisher.ts) onto the local bus (local/event-bus.ts), whose rules deliver to
 * their targets. Plain data in, so it can run on any thread.
 */

export interface EventsOutletSettings {
  readonly dynamodbEndpoint: string;
  /** The table's stream (ensureTable returns it). */
  readonly streamArn: string;
  /** The data folder: `events.jsonl` and the stream position live here. */
  readonly dataDir: string;
  /**
   * The SMS relay's queue: with it, the bus has the stack's rule (detail-type "Callback Instruction",
   * channel "sms") with this queue as its target, as on AWS. Plain data, so the outlet can run on a
   * thread of its own: the rule and its client are made here.
   */
  readonly smsRelayQueue?: { readonly sqsEndpoint: string; readonly queueUrl: string };
}

export interface RunningOutlet {
  readonly eventsFile: string;
  /** Finish the batch under way (published and its position saved), then stop. */
  stop(): Promise<void>;
}

/** The SMS relay's rule: Identomat's (any provider's) SMS instructions, as the stack's rule on the EventBridge bus takes them. */
export const SMS_RELAY_PATTERN: EventPattern = {
  source: [EVENT_SOURCE],
  'detail-type': [DETAIL_TYPES.instruction],
  detail: { channel: ['sms'] },
};

/** The bus's file: one published event per line. */
export function eventsFilePath(dataDir: string): string {
  return join(dataDir, 'events.jsonl');
}

/** Where the stream was read up to, and how much of the events file that covers. */
interface SavedPosition extends StreamPosition {
  readonly eventsBytes: number;
}

function positionPath(dataDir: string): string {
  return join(dataDir, 'events-position.json');
}

function loadPosition(dataDir: string): SavedPosition | undefined {
  try {
    return JSON.parse(readFileSync(positionPath(dataDir), 'utf8')) as SavedPosition;
  } catch {
    return undefined; // none yet (or unreadable): read the stream from its oldest record
  }
}

/** Written whole or not at all (a rename replaces the file at once), so a kill -9 leaves the last one. */
function savePosition(dataDir: string, position: SavedPosition): void {
  const file = positionPath(dataDir);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(position)}\n`);
  renameSync(`${file}.tmp`, file);
}

export function startEventsOutlet(settings: EventsOutletSettings, write?: LogWrite): RunningOutlet {
  const log = createLogger({ service: 'publisher', write });
  const eventsFile = eventsFilePath(settings.dataDir);
  const saved = loadPosition(settings.dataDir);
  const sameStream = saved?.streamArn === settings.streamArn;
  const relaySqs = settings.smsRelayQueue && boundedSqsClient({ ...LOCAL_AWS, endpoint: settings.smsRelayQueue.sqsEndpoint });
  const relayRule = relaySqs && sqsTargetRule('sms-relay', SMS_RELAY_PATTERN, relaySqs, settings.smsRelayQueue!.queueUrl);
  const bus = openEventBus({
    file: eventsFile,
    // A position of another stream (a table made anew) covers none of the file.
    ...(sameStream ? { committedBytes: saved!.eventsBytes } : {}),
    rules: relayRule ? [relayRule] : [],
    region: LOCAL_AWS.region,
  });
  const client = new DynamoDBStreamsClient({ ...LOCAL_AWS, endpoint: settings.dynamodbEndpoint });
  const reader = startStreamReader({
    client,
    streamArn: settings.streamArn,
    ...(saved ? { position: saved } : {}),
    log,
    async process(records) {
      const result = await publishRecords(records, { publish: (events) => bus.publish(events), log });
      // Counts only: an instruction's destination, code or link never goes into a log line.
      if (result.published > 0 || result.failed.length > 0) {
        log.info('published', { records: records.length, events: result.published, retried: result.failed.length });
      }
      return result;
    },
    async save(position) {
      const eventsBytes = bus.bytes();
      savePosition(settings.dataDir, { ...position, eventsBytes });
      bus.committed(eventsBytes);
    },
  });
  return {
    eventsFile,
    async stop() {
      await reader.stop();
      client.destroy();
      relaySqs?.destroy();
    },
  };
}
