import { closeSync, openSync, readSync } from 'node:fs';
import type { DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { DETAIL_TYPES } from '../functions/core/publish.ts';
import { STREAM } from '../functions/core/pipeline-definition.ts';
import { publisherHandlerOptions } from '../functions/handlers/dependencies.ts';
import { createPublisherHandler } from '../functions/handlers/publisher.ts';
import { providers } from '../functions/providers/index.ts';
import { streamFilterPatterns } from '../lib/event-outlet.ts';
import { readTableStream } from '../test/support/dynamodb-local-stream.ts';
import { passesFilters } from '../test/support/lambda-filter.ts';
import { RUN_ID } from './callbacks.ts';
import { mixedCallbacks, withPipeline } from './end-to-end.ts';
import { runLoad } from './load.ts';
import { reportAnswers } from './status-endpoints.ts';
import { percentile, progress, round, sleep } from './stats.ts';
import { stubEventBridgeClient } from './stub-aws.ts';

/**
 * Section 7, events out: on `npm start`'s pipeline (a child process, as in section 3), how long
 * from a callback's 200 until its event is in the local bus's file (`events.jsonl`), with the
 * default batching of the local outlet (the stream polled every 200 ms, up to 100 records a batch,
 * as Lambda's event source reads it); and with the SMS relay on, until the relay's request reaches
 * TeleSign's (simulated) SMS API. Then the inputs of the cost model's events rows: the stream
 * records the run made, filtered as the stack's Lambda filter does, timed through the real
 * publisher handler (the EventBridge client's network answered by a stub, as the worker's).
 *
 * The relay: the pipeline runs with `--sms-relay telesign`, so the local bus's SMS rule fills the
 * relay queue and the relay (functions/handlers/relay.ts, in a thread of npm start) sends to
 * TeleSign's simulated SMS API (`--simulators`), which answers and then sends its signed delivery
 * report to the pipeline's TeleSign route. A send is timed by the relay's own "sent" line (written
 * once the simulated API answered), matched to its instruction event by eventId.
 */

export interface LatencySummary {
  /** Callbacks measured (their event, or their relay request, was seen). */
  readonly n: number;
  /** Acknowledged callbacks whose event (or request) never came within the wait. */
  readonly missing: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export interface PublisherBatchCost {
  /** Stream records the run's table writes made, and those Lambda's filter lets through. */
  readonly streamRecords: number;
  readonly filteredRecords: number;
  /** Events the filtered records made, per callback acknowledged. */
  readonly eventsPerCallback: number;
  readonly streamRecordsPerCallback: number;
  readonly filteredRecordsPerCallback: number;
  /** Events per batch of STREAM.batchSize filtered records, and PutEvents calls (at most 10 entries each). */
  readonly eventsPerBatch: number;
  readonly putEventsPerBatch: number;
  /** CPU time of the real publisher handler per batch of STREAM.batchSize filtered records (median of blocks). */
  readonly cpuNsPerBatch: number;
  /** Bytes of the handler's log line per batch. */
  readonly logBytesPerBatch: number;
  /** Mean size of an event's PutEvents entry (EventBridge bills each 64 KB). */
  readonly meanEntryBytes: number;
}

export interface EventsBenchResult {
  readonly callbacks: number;
  readonly ratePerSecond: number;
  readonly acknowledged: number;
  readonly outlet: { readonly pollMs: number; readonly batchSize: number };
  /** Callback accepted → its first event appended to events.jsonl (callbacks that changed a state or made an instruction). */
  readonly toEvent: LatencySummary;
  /** The two parts of it: accepted → the worker's "stored" line, and that line → the event in the file. */
  readonly toStored: LatencySummary;
  readonly storedToEvent: LatencySummary;
  /** Callbacks stored without a change of state (a status the subject had already): no event is due. */
  readonly unchanged: number;
  /** Callbacks owed an event that never came, by provider and sample. */
  readonly missingBySample: Record<string, number>;
  /** Identomat SMS instructions (one-time codes, links) accepted → the relay's "sent" line (TeleSign's simulated SMS API answered). */
  readonly toRelay: LatencySummary & { readonly deliveryReportsAccepted: number };
  readonly publisher: PublisherBatchCost;
  /** The relay's log bytes per SMS instruction, and its DynamoDB requests per instruction (counted from the table's stream). */
  readonly relay: { readonly logBytesPerInstruction: number; readonly streamRecordsPerInstruction: number };
}

function summary(latencies: readonly number[], missing: number): LatencySummary {
  return {
    n: latencies.length,
    missing,
    p50Ms: latencies.length ? round(percentile(latencies, 50), 1) : Number.NaN,
    p99Ms: latencies.length ? round(percentile(latencies, 99), 1) : Number.NaN,
    maxMs: latencies.length ? round(Math.max(...latencies), 1) : Number.NaN,
  };
}

/** The run's key of a subject: provider and the `bench-<run>-<tag>-<n>` part of its id. */
const subjectKey = (provider: string, subjectId: string, tag: string) => {
  const match = new RegExp(`bench-${RUN_ID}-${tag}-\\d+`).exec(subjectId);
  return match ? `${provider}/${match[0]}` : undefined;
};

/** Lines appended to a file, each stamped when read (polled every `everyMs`). */
function tailFile(path: string, onLine: (line: string, atMs: number) => void, everyMs = 5): { stop(): void } {
  let stopped = false;
  let fd: number | undefined;
  let position = 0;
  let partial = '';
  const chunk = Buffer.alloc(1 << 20);
  const poll = () => {
    if (fd === undefined) {
      try {
        fd = openSync(path, 'r');
      } catch {
        return; // not made yet
      }
    }
    for (;;) {
      const read = readSync(fd, chunk, 0, chunk.length, position);
      if (read === 0) return;
      const at = performance.timeOrigin + performance.now();
      position += read;
      const lines = (partial + chunk.subarray(0, read).toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line) onLine(line, at);
    }
  };
  const timer = setInterval(poll, everyMs);
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      poll();
      if (fd !== undefined) closeSync(fd);
    },
  };
}

/** CPU time of `run`, per call, median of `blocks` blocks of `per` calls after a warm-up block. */
async function cpuNsPer(run: () => Promise<unknown>, blocks: number, per: number): Promise<number> {
  for (let i = 0; i < per; i++) await run();
  const samples: number[] = [];
  for (let b = 0; b < blocks; b++) {
    const before = process.cpuUsage();
    for (let i = 0; i < per; i++) await run();
    const used = process.cpuUsage(before);
    samples.push(((used.user + used.system) * 1000) / per);
  }
  samples.sort((x, y) => x - y);
  return samples[Math.floor(samples.length / 2)];
}

/** The publisher's cost inputs from the records the run wrote: filtered as Lambda filters, timed in batches as Lambda hands them over. */
async function measurePublisher(records: readonly DynamoDBRecord[], acknowledged: number, blocks: number): Promise<PublisherBatchCost> {
  const patterns = streamFilterPatterns(providers);
  const passed = records.filter((record) => passesFilters(patterns, record));
  let events = 0;
  let entryBytes = 0;
  let logBytes = 0;
  let lines = 0;
  const counting = createPublisherHandler(
    publisherHandlerOptions({
      eventBridge: {
        send: async (command: { input: { Entries: unknown[] } }) => {
          events += command.input.Entries.length;
          for (const entry of command.input.Entries) entryBytes += Buffer.byteLength(JSON.stringify(entry));
          return { FailedEntryCount: 0, Entries: command.input.Entries.map(() => ({ EventId: 'e' })) };
        },
      } as never,
      eventBusName: 'callback-gateway',
      write: (line) => {
        logBytes += Buffer.byteLength(line) + 1;
        lines++;
      },
    }),
  );
  const batches: DynamoDBStreamEvent[] = [];
  for (let i = 0; i < passed.length; i += STREAM.batchSize) batches.push({ Records: passed.slice(i, i + STREAM.batchSize) });
  for (const batch of batches) await counting(batch);
  const puts = batches.reduce((sum, batch) => sum + Math.ceil(batch.Records.length / 10), 0);
  // Timed: full batches only, through the real handler with a real EventBridge client (network stubbed).
  const full = batches.filter((batch) => batch.Records.length === STREAM.batchSize);
  const timed = full.length > 0 ? full : batches;
  const handler = createPublisherHandler(publisherHandlerOptions({ eventBridge: stubEventBridgeClient(), eventBusName: 'callback-gateway', write: () => undefined }));
  let next = 0;
  const cpuNs = await cpuNsPer(() => handler(timed[next++ % timed.length]), blocks, Math.max(5, timed.length));
  const perBatch = (value: number) => (value / Math.max(1, passed.length)) * STREAM.batchSize;
  return {
    streamRecords: records.length,
    filteredRecords: passed.length,
    eventsPerCallback: round(events / acknowledged, 3),
    streamRecordsPerCallback: round(records.length / acknowledged, 2),
    filteredRecordsPerCallback: round(passed.length / acknowledged, 3),
    eventsPerBatch: round(perBatch(events), 1),
    putEventsPerBatch: round(perBatch(puts), 1),
    cpuNsPerBatch: round((cpuNs / (timed[0]?.Records.length ?? 1)) * STREAM.batchSize, 0),
    logBytesPerBatch: round(logBytes / Math.max(1, lines), 0),
    meanEntryBytes: round(entryBytes / Math.max(1, events), 0),
  };
}

export interface EventsBenchOptions {
  /** Callbacks sent (BENCH_EVENTS_CALLBACKS). */
  readonly callbacks: number;
  /** Their arrival rate, callbacks/s (BENCH_EVENTS_RATE). */
  readonly rate: number;
  readonly concurrency: number;
  readonly blocks: number;
}

export async function measureEvents(options: EventsBenchOptions): Promise<EventsBenchResult> {
  // The worker's "stored" line of each callback: when it was written, and whether the state changed.
  const storedAt = new Map<string, { at: number; changed: boolean }>();
  const relaySentAt = new Map<string, number>();
  let relayLogBytes = 0;
  let deliveryReports = 0;
  const onLine = (line: string) => {
    if (line.includes('"service":"relay"')) {
      relayLogBytes += Buffer.byteLength(line) + 1;
      if (line.includes('"outcome":"sent"')) {
        const entry = JSON.parse(line) as { timestamp: string; eventId?: string };
        if (entry.eventId && !relaySentAt.has(entry.eventId)) relaySentAt.set(entry.eventId, Date.parse(entry.timestamp));
      }
      return;
    }
    if (!line.includes('"message":"stored"')) return;
    // TeleSign's delivery reports of the relay's sends: TeleSign subjects that are not the bench's.
    if (line.includes('"provider":"telesign"') && !line.includes(`bench-${RUN_ID}-`)) deliveryReports++;
    const entry = JSON.parse(line) as { timestamp: string; provider: string; subjectId: string; stateChanged?: boolean };
    const key = subjectKey(entry.provider, entry.subjectId, 'n');
    if (key && !storedAt.has(key)) storedAt.set(key, { at: Date.parse(entry.timestamp), changed: entry.stateChanged === true });
  };
  return withPipeline(async (pipeline, secrets) => {
    const { info } = pipeline;
    const acceptedAt = new Map<string, number>();
    const eventAt = new Map<string, number>();
    const instructionOf = new Map<string, string>(); // eventId → subject key
    const tail = tailFile(info.eventsFile, (line, at) => {
      const event = JSON.parse(line) as { 'detail-type': string; detail: { provider: string; subjectId: string; eventId: string; channel?: string } };
      const key = subjectKey(event.detail.provider, event.detail.subjectId, 'n');
      if (!key) return;
      if (!eventAt.has(key)) eventAt.set(key, at);
      if (event['detail-type'] === DETAIL_TYPES.instruction && event.detail.channel === 'sms') instructionOf.set(event.detail.eventId, key);
    });
    try {
      const callbacks = mixedCallbacks(secrets, options.callbacks, 'n');
      const keys = callbacks.map((callback) => subjectKey(callback.provider.id, callback.subjectId, 'n')!);
      await reportAnswers(info, secrets, callbacks);
      progress(`events: ${options.callbacks} callbacks at ${options.rate}/s; accepted → event in events.jsonl, and → the relay's request to TeleSign`);
      const load = await runLoad(info.baseUrl, callbacks.map((callback) => callback.request), options.concurrency, options.rate, (index, at) => acceptedAt.set(keys[index], at));
      // Wait until every acknowledged callback's event is in the file, or 30 s pass without a new one.
      let seen = -1;
      let deadline = Date.now() + 30_000;
      while (Date.now() < deadline && [...acceptedAt.keys()].some((key) => !eventAt.has(key))) {
        await sleep(100);
        if (eventAt.size > seen) {
          seen = eventAt.size;
          deadline = Date.now() + 30_000;
        }
      }
      const smsInstructions = () => [...instructionOf.keys()];
      deadline = Date.now() + 30_000;
      let relayed = -1;
      while (Date.now() < deadline && smsInstructions().some((eventId) => !relaySentAt.has(eventId))) {
        await sleep(100);
        if (relaySentAt.size > relayed) {
          relayed = relaySentAt.size;
          deadline = Date.now() + 30_000;
        }
      }
      await sleep(1000); // the delivery reports of the last sends
      tail.stop();

      const toEvent: number[] = [];
      const toStored: number[] = [];
      const storedToEvent: number[] = [];
      let unchanged = 0;
      let due = 0;
      const missingBySample: Record<string, number> = {};
      const samples = new Map(callbacks.map((callback, i) => [keys[i], `${callback.provider.id}/${callback.sample.name}`]));
      for (const [key, at] of acceptedAt) {
        const published = eventAt.get(key);
        const stored = storedAt.get(key);
        if (stored) toStored.push(stored.at - at);
        // A callback that changed nothing (and made no instruction) is owed no event.
        if (published === undefined && stored && !stored.changed) {
          unchanged++;
          continue;
        }
        due++;
        if (published === undefined) {
          const sample = samples.get(key) ?? '?';
          missingBySample[sample] = (missingBySample[sample] ?? 0) + 1;
          continue;
        }
        toEvent.push(published - at);
        if (stored) storedToEvent.push(published - stored.at);
      }
      const toRelay: number[] = [];
      for (const [eventId, key] of instructionOf) {
        const accepted = acceptedAt.get(key);
        const sent = relaySentAt.get(eventId);
        if (accepted !== undefined && sent !== undefined) toRelay.push(sent - accepted);
      }
      const deliveryReportsAccepted = deliveryReports;

      progress('events: the publisher per batch, over the stream records this run wrote');
      // Settle: the worker's last writes (and the relay's) are in the stream.
      await sleep(1000);
      const records = await readTableStream(info.dynamodbEndpoint, info.tableName);
      const publisher = await measurePublisher(records, load.acknowledged, options.blocks);
      // Its relay items, links and meeting items (sort keys RELAY…), and the counts per number and hour (relayMaxPerNumberPerHour).
      const relayRecords = records.filter((record) => String(record.dynamodb?.Keys?.sk?.S ?? '').startsWith('RELAY') || String(record.dynamodb?.Keys?.pk?.S ?? '').includes('!relay-count#')).length;
      return {
        callbacks: options.callbacks,
        ratePerSecond: options.rate,
        acknowledged: load.acknowledged,
        outlet: { pollMs: 200, batchSize: STREAM.batchSize },
        toEvent: summary(toEvent, due - toEvent.length),
        toStored: summary(toStored, acceptedAt.size - toStored.length),
        storedToEvent: summary(storedToEvent, 0),
        unchanged,
        missingBySample,
        toRelay: { ...summary(toRelay, instructionOf.size - toRelay.length), deliveryReportsAccepted },
        publisher,
        relay: {
          logBytesPerInstruction: round(relayLogBytes / Math.max(1, instructionOf.size), 0),
          streamRecordsPerInstruction: round(relayRecords / Math.max(1, instructionOf.size), 2),
        },
      };
    } finally {
      tail.stop();
    }
  }, onLine, ['--sms-relay', 'telesign']);
}
