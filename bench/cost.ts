import { providers } from '../functions/providers/index.ts';
import { canAsk } from '../functions/providers/provider.ts';
import { QUEUE } from '../functions/core/pipeline-definition.ts';
import { benchSecrets } from './callbacks.ts';
import type { IndexName, ProviderWrites, RequestUnits } from './dynamo.ts';
import type { EventsBenchResult } from './events.ts';
import type { IngestComputeResult } from './ingest-compute.ts';
import type { ProviderReconciliation, ReconciliationBenchResult } from './recheck.ts';
import { round } from './stats.ts';

/**
 * Section 5: dollars per million callbacks on AWS for the deployed design, built from this run's
 * measurements (CPU per callback, DynamoDB units of real items, log bytes) and the assumptions
 * below, against the floor for any design behind API Gateway. Section 6: what confirming and
 * reconciling add, per re-check and per million subjects, from section 6's measurements.
 */

/** Published prices, us-east-1, as given in issue 5 (AWS pricing pages; DynamoDB after the Nov 2024 cut). */
export const PRICES = {
  region: 'us-east-1',
  asOf: 'as listed in issue 5 (Nov 2026) from the AWS pricing pages; DynamoDB on-demand after its 2024-11-01 price cut; not re-checked online at run time',
  httpApiPerMillionRequests: 1.0, // first 300 M requests a month, per 512 KB
  lambdaArmPerGbSecond: 0.0000133334,
  lambdaPerMillionRequests: 0.2,
  sqsStandardPerMillionRequests: 0.4, // each 64 KB chunk of a payload is one request
  dynamoOnDemandPerMillionWru: 0.625,
  dynamoOnDemandPerMillionRru: 0.125,
  dynamoProvisionedPerWcuHour: 0.00065,
  dynamoProvisionedPerRcuHour: 0.00013,
  cloudWatchLogsIngestionPerGb: 0.5,
  /**
   * DynamoDB Standard table class: data storage $0.25 per GB-month (the first 25 GB a month free,
   * not counted here, like every other free tier) and continuous backups (point-in-time recovery,
   * which the stack turns on) $0.20 per GB-month of the table's size
   * (https://aws.amazon.com/dynamodb/pricing/on-demand/).
   */
  dynamoStoragePerGbMonth: 0.25,
  dynamoPitrPerGbMonth: 0.2,
  /**
   * EventBridge custom events: $1.00 per million, each 64 KB of an entry one event
   * (https://aws.amazon.com/eventbridge/pricing/). Delivery to an SQS target on the same bus is not
   * charged again.
   */
  eventBridgePerMillionEvents: 1.0,
  eventBridgeChunkBytes: 64 * 1024,
  /**
   * DynamoDB Streams: GetRecords calls made by Lambda's event source are free ("Read requests made by
   * AWS Lambda-based consumers of DynamoDB Streams are free",
   * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CostOptimization_StreamsUsage.html;
   * the on-demand pricing page, https://aws.amazon.com/dynamodb/pricing/on-demand/, says the same of
   * "GetRecords API calls invoked by AWS Lambda as part of DynamoDB triggers"). An idle stream costs nothing.
   */
  streamsReadByLambdaPerMillion: 0,
} as const;

/** What the model assumes beyond what the run measures. */
export const ASSUMPTIONS = {
  ingestMemoryMb: 256,
  workerMemoryMb: QUEUE.workerMemoryMb,
  sweepMemoryMb: 256,
  /** Lambda gives a full vCPU at 1,769 MB and CPU in proportion to memory below that. */
  fullVcpuMemoryMb: 1769,
  /** One Graviton2 vCPU taken as fast as one core of this machine (not measured). */
  armSpeedFactor: 1,
  /** In-region request latencies (not measurable offline). */
  sqsSendMessageMs: 8,
  dynamoRequestMs: 5,
  /** A provider's status endpoint, for providers the worker asks (`provider.lookup`). */
  statusEndpointMs: 200,
  /** Records per worker invocation: batchSize 10, 1 s batching window, sustained traffic. */
  workerBatchSize: 10,
  /**
   * Callbacks per subject in section 6's cost of confirmation per subject (e.g. an SMS sent then
   * delivered; a transfer submitted then completed). Section 5 measures it instead: the kits' lives.
   */
  callbacksPerSubject: 2,
  /** Provider mix of the traffic. */
  providerMix: `uniform over the ${providers.length} providers`,
  /**
   * Lambda's own lines per invocation (START and REPORT), bytes: none at the stack's default
   * systemLogLevel WARN (lib/gateway-function.ts, lib/validate.ts). About 280 B of text, more as
   * JSON, per invocation when systemLogLevel is set to INFO or DEBUG.
   */
  lambdaPlatformLogBytesPerInvocation: 0,
  /** The publisher's memory (lib/event-outlet.ts) and one PutEvents call's latency in-region (not measurable offline). */
  publisherMemoryMb: 256,
  putEventsMs: 20,
  /**
   * Stream records per publisher invocation: full batches (STREAM.batchSize 100, 1 s window), which
   * sustained traffic of 100 or more filtered changes a second gives; fewer a second make smaller
   * batches (more invocations: at 10 a batch, +$0.02 per million callbacks).
   */
  publisherRecordsPerBatch: 100,
  /** The SMS relay (per instruction, opt-in): its memory (lib/sms-relay.ts), TeleSign's answer to a send. */
  relayMemoryMb: 256,
  telesignSendMs: 200,
  /**
   * Relay item writes made in TransactWriteItems, which DynamoDB bills at 2 WRU per item (of 1 KB):
   * the move to `sending` with the marker's check and the number's count for the hour
   * (`relayMaxPerNumberPerHour`, on by default), and the record of the send with its link item
   * (functions/adapters/relay-store.ts `beginSend`, `recordSent`).
   */
  relayTransactionalItemsPerInstruction: 5,
  /**
   * Consistent reads per instruction: the stored instruction the relay sends, read before anything
   * else (functions/core/relay.ts `fromTable`); an Identomat instruction's item is well within 4 KB.
   */
  relayReadsPerInstruction: 1,
  /** Issue 12's cap on the on-demand total per million callbacks with events on. */
  eventsOnCapPerMillion: 4.81,
  /** DynamoDB provisioned capacity used on average (the auto-scaling target). */
  provisionedUtilisation: 0.7,
  gbBytes: 1e9,
  /** Sweeps a month: one a minute (lib/reconciliation.ts), 730 hours. */
  sweepsPerMonth: 43_800,
  /**
   * The lives of subjects of providers the worker asks, for re-checks per subject (times from the
   * first callback). A subject settled on arrival needs none; one pending for an hour is re-checked
   * until its final callback comes (and is confirmed on arrival); one whose final callback is lost
   * is re-checked until a re-check finds it final; one never final until it is stale.
   */
  lives: [
    { life: 'final on arrival (confirmed)', share: 0.6, kind: 'none', minutes: 0 },
    { life: 'pending for an hour, then its final callback', share: 0.3, kind: 'callback', minutes: 60 },
    { life: 'final after 10 minutes, its callback lost', share: 0.08, kind: 'found', minutes: 10 },
    { life: 'never final (stale)', share: 0.02, kind: 'never', minutes: 0 },
  ],
  notes: [
    'CPU per callback is measured in this process with the real SDK clients and a canned network answer: TLS and socket work are not included.',
    'Lambda bills each invocation rounded up to 1 ms; a worker batch runs its records concurrently, so its duration is the batch CPU plus the longest chain of waits.',
    'Secrets Manager: one GetSecretValue per warm function every 5 minutes ($0.05 per 10,000 calls) - negligible per million callbacks.',
    'SQS: the event source long-polls whether or not traffic flows (a fixed monthly cost, not per callback); SSE-SQS encryption has no KMS charge.',
    'DynamoDB: state items are in the byOutcome GSI (keys providerOutcome, changedAt) and, while not settled, in the sparse byRecheck GSI (keys recheckShard, recheckAt); both project only the attributes they list. A state write also writes an index entry when a projected attribute changes, twice (delete + put) when its key changes (a new outcome, a new re-check time), once when the entry appears or goes.',
    `Lambda platform lines: none at systemLogLevel WARN, the stack's default (its START and REPORT lines, and their Duration and Init Duration, are not written); at INFO about 280 B per invocation come back.`,
    'Status endpoints: the worker paces its requests to a provider (lookupLimits.perSecond, 10 a second by default, eSMS 5); the CPU is measured without the pacing waits, which the model counts as waits.',
    'Re-checks: a worker invocation holding one re-check ("alone": re-checks are spread over the minute by SQS delays, so below about one a second per provider each comes alone) or a batch of 10 of one provider, paced at its rate ("in batches"). Neither counts what a provider charges for its status requests (TeleSign may bill Get Status; not published).',
    'Query pages: two pages of the byRecheck index per shard (4) per provider per sweep (the due end, and the far end for re-checks set further ahead than the gateway sets) cost 0.5 RRU each even empty; the entries of due subjects add their size (eventually consistent, 4 KB per unit). The EventBridge rule sends 43,800 scheduled events a month: $0.04 at the custom-event price of $1.00 per million, if charged at all.',
  ],
} as const;

export interface CostLine {
  readonly item: string;
  readonly perMillion: number;
  readonly basis: string;
}

export interface CostModel {
  readonly prices: typeof PRICES;
  readonly assumptions: typeof ASSUMPTIONS;
  readonly perCallback: {
    readonly ingestCpuMs: number;
    readonly ingestBilledMs: number;
    readonly workerBatchMs: number;
    readonly dynamo: RequestUnits;
    readonly logBytes: number;
    /** Providers whose callbacks the worker asks about with the bench's secrets (the deployed defaults). */
    readonly askedProviders: readonly string[];
    /** Share of records by status requests made, over the mix. */
    readonly statusRequestsShare: Record<string, number>;
  };
  readonly onDemand: { lines: CostLine[]; total: number };
  readonly provisioned: { lines: CostLine[]; total: number };
  readonly floor: { onDemand: number; provisioned: number; basis: string };
  /**
   * Storage and backups of what a million callbacks leave in the table, for as long as it is kept:
   * outside the totals above (and the cap's basis), which price requests, compute and logs.
   */
  readonly retained: { lines: CostLine[]; total: number };
  readonly ratioOnDemand: number;
  readonly ratioProvisioned: number;
  /** Events out (section 7's measurements): the lines it adds per million callbacks, the on-demand total with them, and the relay per million SMS instructions. */
  readonly eventsOn?: {
    readonly lines: CostLine[];
    readonly added: number;
    readonly total: number;
    readonly cap: number;
    readonly relay: { readonly lines: CostLine[]; readonly total: number };
  };
}

/** What events out adds per million callbacks (on-demand and provisioned alike), and the relay per million SMS instructions. */
export function eventsCostLines(events: EventsBenchResult): { lines: CostLine[]; relay: CostLine[] } {
  const a = ASSUMPTIONS;
  const p = PRICES;
  const pub = events.publisher;
  const batches = (pub.filteredRecordsPerCallback * 1e6) / a.publisherRecordsPerBatch;
  const cpuMs = (pub.cpuNsPerBatch / 1e6) * (a.fullVcpuMemoryMb / a.publisherMemoryMb) * a.armSpeedFactor * (a.publisherRecordsPerBatch / 100);
  const putEvents = pub.putEventsPerBatch * (a.publisherRecordsPerBatch / 100);
  const batchMs = Math.ceil(cpuMs + putEvents * a.putEventsMs);
  const gbSeconds = (memoryMb: number, ms: number) => (memoryMb / 1024) * (ms / 1000);
  const chunks = Math.max(1, Math.ceil(pub.meanEntryBytes / p.eventBridgeChunkBytes));
  const logBytes = pub.logBytesPerBatch * batches;
  const lines: CostLine[] = [
    { item: 'Events: DynamoDB Streams reads', perMillion: p.streamsReadByLambdaPerMillion, basis: `${round(pub.streamRecordsPerCallback, 2)} stream records per callback, read by Lambda's event source: free` },
    {
      item: 'Events: Lambda publisher',
      perMillion: (batches * p.lambdaPerMillionRequests) / 1e6 + batches * gbSeconds(a.publisherMemoryMb, batchMs) * p.lambdaArmPerGbSecond,
      basis: `${round(pub.filteredRecordsPerCallback, 2)} filtered records per callback in batches of ${a.publisherRecordsPerBatch}; ${a.publisherMemoryMb} MB x ${batchMs} ms a batch (CPU ${round(cpuMs, 1)} ms + ${round(putEvents, 1)} PutEvents x ${a.putEventsMs} ms)`,
    },
    {
      item: 'Events: EventBridge',
      perMillion: pub.eventsPerCallback * chunks * p.eventBridgePerMillionEvents,
      basis: `${round(pub.eventsPerCallback, 3)} events per callback (${pub.meanEntryBytes} B each: ${chunks} chunk of 64 KB) at $1.00 per million`,
    },
    {
      item: 'Events: CloudWatch Logs',
      perMillion: (logBytes / a.gbBytes) * p.cloudWatchLogsIngestionPerGb,
      basis: `the publisher's line, ${pub.logBytesPerBatch} B a batch (${round(logBytes / 1e6, 1)} B per callback)`,
    },
  ];
  // The relay, per million SMS instructions: EventBridge's delivery to its queue (one SendMessage),
  // a receive and a delete (alone: the relay's traffic is a trickle), the function waiting for
  // TeleSign and DynamoDB, the read of the stored instruction, its item writes (each at least 1
  // WRU: small items), its log lines.
  const r = events.relay;
  const relayMs = Math.ceil(a.telesignSendMs + (r.streamRecordsPerInstruction + a.relayReadsPerInstruction) * a.dynamoRequestMs + 2 * a.dynamoRequestMs);
  const relay: CostLine[] = [
    { item: 'Relay: SQS', perMillion: 3 * p.sqsStandardPerMillionRequests, basis: 'the rule\'s SendMessage, a receive and a delete' },
    {
      item: 'Relay: Lambda',
      perMillion: p.lambdaPerMillionRequests + gbSeconds(a.relayMemoryMb, relayMs) * p.lambdaArmPerGbSecond * 1e6,
      basis: `1 invocation, ${a.relayMemoryMb} MB x ${relayMs} ms (TeleSign ${a.telesignSendMs} ms + DynamoDB; CPU not measured)`,
    },
    {
      item: 'Relay: DynamoDB writes',
      perMillion: (r.streamRecordsPerInstruction + a.relayTransactionalItemsPerInstruction) * p.dynamoOnDemandPerMillionWru,
      basis: `${r.streamRecordsPerInstruction} item writes (counted in the stream): ${r.streamRecordsPerInstruction - a.relayTransactionalItemsPerInstruction} at 1 WRU, ${a.relayTransactionalItemsPerInstruction} in transactions at 2 WRU`,
    },
    {
      item: 'Relay: DynamoDB reads',
      perMillion: a.relayReadsPerInstruction * p.dynamoOnDemandPerMillionRru,
      basis: `${a.relayReadsPerInstruction} consistent GetItem of the stored instruction (it sends what the table holds, not what an event says)`,
    },
    { item: 'Relay: CloudWatch Logs', perMillion: (r.logBytesPerInstruction / a.gbBytes) * 1e6 * p.cloudWatchLogsIngestionPerGb, basis: `${r.logBytesPerInstruction} B of the relay's lines` },
  ];
  const rounded = (list: CostLine[]) => list.map((line) => ({ ...line, perMillion: round(line.perMillion, 3) }));
  return { lines: rounded(lines), relay: rounded(relay) };
}

const mean = (values: readonly number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;

/** An access log line of the stack's format (lib/callback-api.ts ACCESS_LOG_FIELDS) with typical values, for a route. */
export const accessLogExample = (routeKey: string) => JSON.stringify({
  requestId: 'bRk9aj4sIAMEV0g=',
  requestTime: '22/Nov/2026:04:05:43 +0000',
  routeKey,
  status: '200',
  ip: '203.0.113.7',
  protocol: 'HTTP/1.1',
  responseLength: '17',
  responseLatency: '23',
  integrationStatus: '200',
  integrationLatency: '21',
  integrationError: '-',
  error: '-',
});

export function costModel(input: {
  compute: IngestComputeResult;
  writes: Record<string, ProviderWrites>;
  /** Our own log lines per callback in the end-to-end run. */
  logBytesPerCallback: { ingest: number; worker: number };
  /** Section 7: with it, the events-on lines and total. */
  events?: EventsBenchResult;
}): CostModel {
  const a = ASSUMPTIONS;
  const p = PRICES;
  const ids = Object.keys(input.compute.providers);
  const cpuScale = (memoryMb: number) => (a.fullVcpuMemoryMb / memoryMb) * a.armSpeedFactor;

  // Ingest: one invocation per callback; the SQS send is the only wait.
  const ingestCpuMs = ids.map((id) => (input.compute.providers[id].withSdkNs / 1e6) * cpuScale(a.ingestMemoryMb));
  const ingestBilledMs = mean(ingestCpuMs.map((cpu) => Math.ceil(cpu + a.sqsSendMessageMs)));

  // Worker: batches of 10 mixed records; CPU adds up, waits overlap (the longest chain counts).
  const workerCpuMs = mean(ids.map((id) => (input.compute.providers[id].workerNs / 1e6) * cpuScale(a.workerMemoryMb)));
  // Each provider's callbacks as its subjects live (the kits' lives: every callback of a life, in
  // the order the provider sends them), over the uniform mix.
  const perProvider = ids.map((id) => input.writes[id].perCallback);
  const dynamo: RequestUnits = {
    reads: round(mean(perProvider.map((u) => u.reads)), 2),
    writes: round(mean(perProvider.map((u) => u.writes)), 2),
    rru: round(mean(perProvider.map((u) => u.rru)), 2),
    wru: round(mean(perProvider.map((u) => u.wru)), 2),
    gsiWru: round(mean(perProvider.map((u) => u.gsiWru)), 2),
    gsiWruByIndex: Object.fromEntries((['byOutcome', 'byRecheck'] as const).map((name) => [name, round(mean(perProvider.map((u) => u.gsiWruByIndex[name])), 2)])) as Record<IndexName, number>,
    eventItemBytes: round(mean(perProvider.map((u) => u.eventItemBytes)), 0),
    stateItemBytes: round(mean(perProvider.map((u) => u.stateItemBytes)), 0),
    overKbWru: round(mean(perProvider.map((u) => u.overKbWru)), 2),
    largestWriteBytes: Math.max(...perProvider.map((u) => u.largestWriteBytes)),
    storedByteDays: round(mean(perProvider.map((u) => u.storedByteDays)), 0),
  };
  // A record whose provider's status endpoint is asked waits for it (a request after another when
  // one ask takes two): a batch lasts as long as its longest chain. Which records ask, and how many
  // requests each makes, was measured per sample with the bench's secrets (the deployed defaults:
  // TeleSign's statusLookup off), over the uniform mix.
  const requestShare = new Map<number, number>();
  for (const id of ids) {
    for (const [n, share] of Object.entries(input.compute.providers[id].statusRequestsShare)) requestShare.set(Number(n), (requestShare.get(Number(n)) ?? 0) + share / ids.length);
  }
  const chainMs = (requests: number) => (requests > 0 ? requests * a.statusEndpointMs + 4 * a.dynamoRequestMs : 3 * a.dynamoRequestMs);
  const counts = [...requestShare.keys()].sort((x, y) => x - y);
  const atMost = (k: number) => counts.filter((n) => n <= k).reduce((sum, n) => sum + requestShare.get(n)!, 0);
  // E[longest chain] over a batch: P(max = k) = P(all <= k) - P(all <= previous k).
  const expectedChainMs = counts.reduce((sum, k, i) => sum + (atMost(k) ** a.workerBatchSize - (i > 0 ? atMost(counts[i - 1]) ** a.workerBatchSize : 0)) * chainMs(k), 0);
  const workerBatchMs = Math.ceil(workerCpuMs * a.workerBatchSize + expectedChainMs);
  const askedProviders = ids.filter((id) => Object.entries(input.compute.providers[id].statusRequestsShare).some(([n, share]) => Number(n) > 0 && share > 0));

  // The access log line of each provider's route, over the uniform mix.
  const accessLogBytes = mean(providers.filter((provider) => ids.includes(provider.id)).map((provider) => Buffer.byteLength(accessLogExample(`${provider.route.method} ${provider.route.path}`)) + 1));
  const logBytes =
    input.logBytesPerCallback.ingest +
    input.logBytesPerCallback.worker +
    a.lambdaPlatformLogBytesPerInvocation * (1 + 1 / a.workerBatchSize) +
    accessLogBytes;

  const gbSecondsPerMillion = (memoryMb: number, ms: number) => (memoryMb / 1024) * (ms / 1000) * 1e6;
  const sqsRequests = 1 + 2 / a.workerBatchSize; // send + receive and delete per batch
  const provisionedPerUnit = (perHour: number) => (perHour / 3600 / a.provisionedUtilisation) * 1e6; // $ per million unit-seconds
  const common: CostLine[] = [
    { item: 'API Gateway HTTP API', perMillion: p.httpApiPerMillionRequests, basis: '1 request per callback' },
    {
      item: 'Lambda ingest',
      perMillion: p.lambdaPerMillionRequests + gbSecondsPerMillion(a.ingestMemoryMb, ingestBilledMs) * p.lambdaArmPerGbSecond,
      basis: `1 invocation, ${a.ingestMemoryMb} MB x ${round(ingestBilledMs, 1)} ms billed`,
    },
    {
      item: 'Lambda worker',
      perMillion: p.lambdaPerMillionRequests / a.workerBatchSize + gbSecondsPerMillion(a.workerMemoryMb, workerBatchMs / a.workerBatchSize) * p.lambdaArmPerGbSecond,
      basis: `1/${a.workerBatchSize} invocation, ${a.workerMemoryMb} MB x ${workerBatchMs} ms per batch`,
    },
    { item: 'SQS', perMillion: sqsRequests * p.sqsStandardPerMillionRequests, basis: `${round(sqsRequests, 2)} requests (send; receive + delete per batch)` },
    {
      item: 'CloudWatch Logs',
      perMillion: (logBytes / a.gbBytes) * 1e6 * p.cloudWatchLogsIngestionPerGb,
      basis: `${round(logBytes, 0)} B/callback (ours ${input.logBytesPerCallback.ingest}+${input.logBytesPerCallback.worker}, API access log; no Lambda platform lines at WARN)`,
    },
  ];
  const writeUnits = dynamo.wru + dynamo.gsiWru;
  // Which providers' items cross 1 KB, and by how much: where trimming an item would pay.
  const overKb = ids.filter((id) => input.writes[id].perCallback.overKbWru > 0).map((id) => `${id} ${input.writes[id].perCallback.overKbWru} (largest ${input.writes[id].perCallback.largestWriteBytes} B)`);
  const overKbBasis = dynamo.overKbWru > 0 ? `, ${dynamo.overKbWru} of them for items over 1 KB: ${overKb.join(', ')}` : '';
  const onDemandDynamo: CostLine[] = [
    { item: 'DynamoDB writes', perMillion: writeUnits * p.dynamoOnDemandPerMillionWru, basis: `${round(writeUnits, 2)} WRU (${dynamo.writes} writes: ${dynamo.wru} WRU${overKbBasis}; GSI byOutcome ${dynamo.gsiWruByIndex.byOutcome}, byRecheck ${dynamo.gsiWruByIndex.byRecheck}), on-demand` },
    { item: 'DynamoDB reads', perMillion: dynamo.rru * p.dynamoOnDemandPerMillionRru, basis: `${round(dynamo.rru, 2)} RRU (${dynamo.reads} consistent reads), on-demand` },
  ];
  const provisionedDynamo: CostLine[] = [
    {
      item: 'DynamoDB writes',
      perMillion: writeUnits * provisionedPerUnit(p.dynamoProvisionedPerWcuHour),
      basis: `${round(writeUnits, 2)} WCU-s, provisioned at ${a.provisionedUtilisation * 100} % use`,
    },
    {
      item: 'DynamoDB reads',
      perMillion: dynamo.rru * provisionedPerUnit(p.dynamoProvisionedPerRcuHour),
      basis: `${round(dynamo.rru, 2)} RCU-s, provisioned at ${a.provisionedUtilisation * 100} % use`,
    },
  ];
  // What a million callbacks' items take while they are kept (a month being 30.4375 days): billed
  // in on-demand and provisioned mode alike, and outside the cap's basis (issue 12's $4.81 was
  // requests, compute and logs), so listed apart.
  const gbMonthsPerMillion = (dynamo.storedByteDays / 30.4375 / a.gbBytes) * 1e6;
  const retained: CostLine[] = [
    { item: 'DynamoDB storage (items kept)', perMillion: round(gbMonthsPerMillion * p.dynamoStoragePerGbMonth, 3), basis: `${round(dynamo.storedByteDays, 0)} byte-days per callback: its event and answer items (+100 B each) until their TTL` },
    { item: 'DynamoDB point-in-time recovery', perMillion: round(gbMonthsPerMillion * p.dynamoPitrPerGbMonth, 3), basis: `the same GB-months at $${p.dynamoPitrPerGbMonth} (PITR is on)` },
  ];
  const total = (lines: readonly CostLine[]) => round(lines.reduce((sum, line) => sum + line.perMillion, 0), 3);
  const rounded = (lines: readonly CostLine[]) => lines.map((line) => ({ ...line, perMillion: round(line.perMillion, 3) }));
  const onDemandLines = rounded([...common, ...onDemandDynamo]);
  const provisionedLines = rounded([...common, ...provisionedDynamo]);
  const floorCommon = p.httpApiPerMillionRequests + sqsRequests * p.sqsStandardPerMillionRequests;
  const floor = {
    onDemand: round(floorCommon + p.dynamoOnDemandPerMillionWru, 3),
    provisioned: round(floorCommon + provisionedPerUnit(p.dynamoProvisionedPerWcuHour), 3),
    basis: `1 HTTP API request + ${round(sqsRequests, 2)} SQS requests (send; receive + delete in batches of ${a.workerBatchSize}) + one 1 KB DynamoDB write; no compute, no logs`,
  };
  return {
    prices: PRICES,
    assumptions: ASSUMPTIONS,
    perCallback: {
      ingestCpuMs: round(mean(ingestCpuMs), 2),
      ingestBilledMs: round(ingestBilledMs, 1),
      workerBatchMs,
      dynamo,
      logBytes: round(logBytes, 0),
      askedProviders,
      statusRequestsShare: Object.fromEntries(counts.map((n) => [String(n), round(requestShare.get(n)!, 3)])),
    },
    onDemand: { lines: onDemandLines, total: total(onDemandLines) },
    provisioned: { lines: provisionedLines, total: total(provisionedLines) },
    floor,
    ratioOnDemand: round(total(onDemandLines) / floor.onDemand, 2),
    ratioProvisioned: round(total(provisionedLines) / floor.provisioned, 2),
    retained: { lines: retained, total: total(retained) },
    ...(input.events ? { eventsOn: eventsOn(input.events, total(onDemandLines)) } : {}),
  };
}

function eventsOn(events: EventsBenchResult, withoutEvents: number): NonNullable<CostModel['eventsOn']> {
  const { lines, relay } = eventsCostLines(events);
  const added = round(lines.reduce((sum, line) => sum + line.perMillion, 0), 3);
  return {
    lines,
    added,
    total: round(withoutEvents + added, 3),
    cap: ASSUMPTIONS.eventsOnCapPerMillion,
    relay: { lines: relay, total: round(relay.reduce((sum, line) => sum + line.perMillion, 0), 3) },
  };
}

// ---------------------------------------------------------------------------------------------
// Section 6: confirmation and reconciliation

/** A kind of subject of one provider, by the requests one ask makes of its status endpoint. */
export interface RecheckKind {
  readonly provider: string;
  readonly requests: number;
  /** The kit's samples whose subject is of this kind. */
  readonly samples: readonly string[];
  /** Per million re-checks that find the status unchanged: line items, and totals alone and in batches of 10. */
  readonly lines: CostLine[];
  readonly alone: number;
  readonly batched: number;
  /** The same totals for a re-check that finds the subject final (other writes). */
  readonly settlingAlone: number;
  readonly settlingBatched: number;
}

export interface ArrivalConfirmationCost {
  readonly provider: string;
  /** Status requests per callback (over the kit's samples: some are not asked about). */
  readonly statusRequests: number;
  readonly rru: number;
  readonly wru: number;
  /** Dollars per million callbacks of the provider, the record alone in its invocation, and in a batch of 10 (waits shared). */
  readonly alone: number;
  readonly batched: number;
  readonly basis: string;
}

export interface SubjectLifeCost {
  readonly provider: string;
  /** Re-checks per subject, per life of ASSUMPTIONS.lives (same order), and over the mix. */
  readonly rechecks: readonly number[];
  readonly rechecksPerSubject: number;
  /** Mean requests per ask over the kit's samples that are asked about. */
  readonly requestsPerAsk: number;
  /** Dollars per million subjects of the provider: re-checks, and confirmation on arrival of its callbacks (both alone). */
  readonly rechecksPerMillion: number;
  readonly confirmationPerMillion: number;
  readonly totalPerMillion: number;
  /** The same total with re-checks and asked callbacks in batches of 10. */
  readonly totalBatchedPerMillion: number;
}

export interface ReconciliationCostModel {
  readonly kinds: RecheckKind[];
  readonly arrival: ArrivalConfirmationCost[];
  readonly subjects: SubjectLifeCost[];
  /** Per million subjects over a uniform mix of the registry's providers: as deployed (opt-in asking off), and with every provider that can be asked asked. */
  readonly mixes: { readonly name: string; readonly asked: readonly string[]; readonly perMillion: number; readonly batchedPerMillion: number }[];
  /** The sweep's fixed cost a month, whatever the traffic. */
  readonly fixedPerMonth: { readonly lines: { readonly item: string; readonly perMonth: number; readonly basis: string }[]; readonly total: number };
}

/** Re-checks a subject goes through in a life, from the re-check times of a subject never final. */
function rechecksIn(schedule: readonly number[], life: (typeof ASSUMPTIONS.lives)[number]): { unchanged: number; settling: number } {
  if (life.kind === 'none') return { unchanged: 0, settling: 0 };
  if (life.kind === 'never') return { unchanged: schedule.length, settling: 0 };
  const before = schedule.filter((minutes) => minutes < life.minutes).length;
  // Its final callback settles it (confirmed on arrival); or the first re-check after it became final does.
  if (life.kind === 'callback') return { unchanged: before, settling: 0 };
  return before < schedule.length ? { unchanged: before, settling: 1 } : { unchanged: before, settling: 0 };
}

export function reconciliationCostModel(input: ReconciliationBenchResult): ReconciliationCostModel {
  const a = ASSUMPTIONS;
  const p = PRICES;
  const scale = (memoryMb: number) => (a.fullVcpuMemoryMb / memoryMb) * a.armSpeedFactor;
  const gbSeconds = (memoryMb: number, ms: number) => (memoryMb / 1024) * (ms / 1000);
  const lambda = (memoryMb: number, ms: number, invocations: number) => (invocations * p.lambdaPerMillionRequests) / 1e6 + gbSeconds(memoryMb, ms) * p.lambdaArmPerGbSecond;
  const wruCost = (units: number) => (units * p.dynamoOnDemandPerMillionWru) / 1e6;
  const rruCost = (units: number) => (units * p.dynamoOnDemandPerMillionRru) / 1e6;
  const sqs = (requests: number) => (requests * p.sqsStandardPerMillionRequests) / 1e6;
  const logs = (bytes: number) => (bytes / a.gbBytes) * p.cloudWatchLogsIngestionPerGb;
  const { sweep } = input;

  // The sweep's share per subject: its entry in a page, a lease (UpdateItem: the index entry moves),
  // a tenth of a SendMessageBatch, and the sweep's time: its CPU, and the waits of leases (10 at a
  // time) and sends (10 a batch).
  const sweepShare = (r: ProviderReconciliation) => {
    const sweepMs = (sweep.perSubjectNs / 1e6) * scale(a.sweepMemoryMb) + (a.dynamoRequestMs + a.sqsSendMessageMs) / 10;
    const leaseUnits = r.sweep.lease.wru + r.sweep.lease.gsiWru;
    return [
      { item: 'Sweep: byRecheck page', dollars: rruCost(((r.sweep.entryBytes / 4096) * 1) / 2), basis: `its ${r.sweep.entryBytes} B entry in a page (4 KB per 0.5 RRU)` },
      { item: 'Sweep: lease', dollars: wruCost(leaseUnits), basis: `UpdateItem ${r.sweep.lease.wru} WRU + byRecheck moved ${r.sweep.lease.gsiWru} WRU` },
      { item: 'Sweep: SendMessageBatch', dollars: sqs(0.1), basis: '1/10 request' },
      { item: 'Sweep: Lambda', dollars: lambda(a.sweepMemoryMb, sweepMs, 0), basis: `${a.sweepMemoryMb} MB x ${round(sweepMs, 2)} ms (CPU + lease and send waits shared by 10)` },
    ];
  };

  // The worker's re-check: alone in its invocation (low volume), or in a batch of 10 of one
  // provider whose requests are paced at its rate (the batch lasts 9 spacings plus one chain).
  const workerDollars = (r: ProviderReconciliation, requests: number, batch: number) => {
    const cpuMs = (r.cpuNs / 1e6) * scale(a.workerMemoryMb);
    const chainMs = requests * a.statusEndpointMs + 3 * a.dynamoRequestMs;
    const batchMs = batch === 1 ? Math.ceil(cpuMs + chainMs) : Math.ceil(batch * cpuMs + ((batch - 1) * 1000) / r.perSecond + chainMs);
    return { dollars: lambda(a.workerMemoryMb, batchMs / batch, 1 / batch), ms: batchMs };
  };

  const kinds: RecheckKind[] = [];
  const arrival: ArrivalConfirmationCost[] = [];
  const subjects: SubjectLifeCost[] = [];
  const perRecheck = (r: ProviderReconciliation, requests: number, settling: boolean, batch: number) => {
    const u = settling ? r.settling : r.unchanged;
    const shared = sweepShare(r).reduce((sum, line) => sum + line.dollars, 0);
    return shared + sqs(batch === 1 ? 2 : 2 / batch) + workerDollars(r, requests, batch).dollars + rruCost(u.rru) + wruCost(u.wru + u.gsiWru) + logs(r.logBytes);
  };
  for (const [provider, r] of Object.entries(input.providers)) {
    for (const kind of r.askKinds.filter((k) => k.requests > 0)) {
      const alone = workerDollars(r, kind.requests, 1);
      const batched = workerDollars(r, kind.requests, a.workerBatchSize);
      const u = r.unchanged;
      const lines = [
        ...sweepShare(r),
        { item: 'SQS: receive + delete', dollars: sqs(2), basis: `alone; ${round(2 / a.workerBatchSize, 2)} in batches of ${a.workerBatchSize}` },
        {
          item: 'Worker: Lambda',
          dollars: alone.dollars,
          basis: `${a.workerMemoryMb} MB x ${alone.ms} ms alone (${kind.requests} x ${a.statusEndpointMs} ms status + 3 DynamoDB + CPU); batches of ${a.workerBatchSize}: ${batched.ms} ms paced at ${r.perSecond}/s`,
        },
        { item: 'Worker: DynamoDB reads', dollars: rruCost(u.rru), basis: `${u.rru} RRU (the state, consistent)` },
        {
          item: 'Worker: DynamoDB writes',
          dollars: wruCost(u.wru + u.gsiWru),
          basis: `${u.wru} WRU (answer item, state) + byRecheck ${u.gsiWruByIndex.byRecheck} + byOutcome ${u.gsiWruByIndex.byOutcome}`,
        },
        { item: 'CloudWatch Logs', dollars: logs(r.logBytes), basis: `${r.logBytes} B (the worker's "rechecked" line)` },
      ];
      kinds.push({
        provider,
        requests: kind.requests,
        samples: kind.samples,
        lines: lines.map((line) => ({ item: line.item, perMillion: round(line.dollars * 1e6, 3), basis: line.basis })),
        alone: round(perRecheck(r, kind.requests, false, 1) * 1e6, 3),
        batched: round(perRecheck(r, kind.requests, false, a.workerBatchSize) * 1e6, 3),
        settlingAlone: round(perRecheck(r, kind.requests, true, 1) * 1e6, 3),
        settlingBatched: round(perRecheck(r, kind.requests, true, a.workerBatchSize) * 1e6, 3),
      });
    }

    // Confirmation on arrival: the reads and writes asking adds, and the wait for the answer.
    const c = r.arrival.confirmation;
    const waitMs = r.arrival.statusRequests * a.statusEndpointMs;
    const dynamo = rruCost(c.rru) + wruCost(c.wru + c.gsiWru);
    const confirmAlone = dynamo + gbSeconds(a.workerMemoryMb, waitMs) * p.lambdaArmPerGbSecond;
    arrival.push({
      provider,
      statusRequests: r.arrival.statusRequests,
      rru: c.rru,
      wru: round(c.wru + c.gsiWru, 2),
      alone: round(confirmAlone * 1e6, 3),
      batched: round((dynamo + gbSeconds(a.workerMemoryMb, waitMs / a.workerBatchSize) * p.lambdaArmPerGbSecond) * 1e6, 3),
      basis: `${r.arrival.statusRequests} request${r.arrival.statusRequests === 1 ? '' : 's'} x ${a.statusEndpointMs} ms at ${a.workerMemoryMb} MB; ${c.rru} RRU (the claim read on a redelivery: was it confirmed before?) + ${round(c.wru + c.gsiWru, 2)} WRU (the answer's event item where it is not the claim's body)`,
    });

    const asked = r.askKinds.filter((k) => k.requests > 0);
    const requestsPerAsk = asked.reduce((sum, k) => sum + k.requests * k.samples.length, 0) / Math.max(1, asked.reduce((sum, k) => sum + k.samples.length, 0));
    const perLife = a.lives.map((life) => rechecksIn(r.scheduleMinutes, life));
    const rechecksPerSubject = a.lives.reduce((sum, life, i) => sum + life.share * (perLife[i].unchanged + perLife[i].settling), 0);
    // Fractional requests per ask: a mix of kinds, so the wait is interpolated between them.
    const recheckDollars = (batch: number) =>
      a.lives.reduce(
        (sum, life, i) => sum + life.share * (perLife[i].unchanged * perRecheck(r, requestsPerAsk, false, batch) + perLife[i].settling * perRecheck(r, requestsPerAsk, true, batch)),
        0,
      );
    const confirmationDollars = a.callbacksPerSubject * confirmAlone;
    const confirmationBatched = a.callbacksPerSubject * (dynamo + gbSeconds(a.workerMemoryMb, waitMs / a.workerBatchSize) * p.lambdaArmPerGbSecond);
    subjects.push({
      provider,
      rechecks: perLife.map((n) => n.unchanged + n.settling),
      rechecksPerSubject: round(rechecksPerSubject, 2),
      requestsPerAsk: round(requestsPerAsk, 2),
      rechecksPerMillion: round(recheckDollars(1) * 1e6, 2),
      confirmationPerMillion: round(confirmationDollars * 1e6, 2),
      totalPerMillion: round((recheckDollars(1) + confirmationDollars) * 1e6, 2),
      totalBatchedPerMillion: round((recheckDollars(a.workerBatchSize) + confirmationBatched) * 1e6, 2),
    });
  }

  // The mix: subjects spread evenly over the registry's providers; those not asked cost nothing here.
  const secrets = benchSecrets();
  const deployed = providers.filter((provider) => input.providers[provider.id] && canAsk(provider, provider.secretSchema.parse(secrets[provider.id]))).map((provider) => provider.id);
  const every = Object.keys(input.providers);
  const mixOf = (asked: readonly string[], pick: (s: SubjectLifeCost) => number) => round(subjects.filter((s) => asked.includes(s.provider)).reduce((sum, s) => sum + pick(s), 0) / providers.length, 2);
  const mix = (name: string, asked: readonly string[]) => ({ name, asked, perMillion: mixOf(asked, (s) => s.totalPerMillion), batchedPerMillion: mixOf(asked, (s) => s.totalBatchedPerMillion) });
  const mixes = [mix('as deployed (opt-in asking off)', deployed), mix('every provider that can be asked (TeleSign statusLookup on)', every)];

  // Fixed: a sweep a minute, its empty pages, whatever the traffic.
  const idleMs = (sweep.idleNs / 1e6) * scale(a.sweepMemoryMb) + sweep.queriesPerSweep * a.dynamoRequestMs;
  const fixed = [
    {
      item: 'Sweep: Lambda',
      perMonth: round(a.sweepsPerMonth * lambda(a.sweepMemoryMb, Math.ceil(idleMs), 1), 3),
      basis: `${a.sweepsPerMonth.toLocaleString('en-US')} invocations a month, ${a.sweepMemoryMb} MB x ${Math.ceil(idleMs)} ms (${sweep.queriesPerSweep} queries, one after another)`,
    },
    {
      item: 'Sweep: empty pages',
      perMonth: round(a.sweepsPerMonth * sweep.queriesPerSweep * rruCost(0.5), 3),
      basis: `${sweep.queriesPerSweep} queries x 0.5 RRU a sweep (${providers.length} providers x ${input.policy.shards} shards x 2: the due end and the far end)`,
    },
    { item: 'EventBridge rule', perMonth: round(a.sweepsPerMonth / 1e6, 3), basis: `at most: ${a.sweepsPerMonth.toLocaleString('en-US')} scheduled events at $1.00 per million` },
  ];
  return {
    kinds,
    arrival,
    subjects,
    mixes,
    fixedPerMonth: { lines: fixed, total: round(fixed.reduce((sum, line) => sum + line.perMonth, 0), 3) },
  };
}
