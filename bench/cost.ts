import { providers } from '../functions/providers/index.ts';
import type { ProviderWrites, RequestUnits } from './dynamo.ts';
import type { IngestComputeResult } from './ingest-compute.ts';
import { round } from './stats.ts';

/**
 * Section 5: dollars per million callbacks on AWS for the deployed design, built from this run's
 * measurements (CPU per callback, DynamoDB units of real items, log bytes) and the assumptions
 * below, against the floor for any design behind API Gateway.
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
} as const;

/** What the model assumes beyond what the run measures. */
export const ASSUMPTIONS = {
  ingestMemoryMb: 256,
  workerMemoryMb: 512,
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
  /** Callbacks per subject (e.g. an SMS sent then delivered; a transfer submitted then completed). */
  callbacksPerSubject: 2,
  /** Provider mix of the traffic. */
  providerMix: `uniform over the ${providers.length} providers`,
  /** START / END / REPORT lines Lambda writes per invocation (text format), bytes. */
  lambdaPlatformLogBytesPerInvocation: 280,
  /** DynamoDB provisioned capacity used on average (the auto-scaling target). */
  provisionedUtilisation: 0.7,
  gbBytes: 1e9,
  notes: [
    'CPU per callback is measured in this process with the real SDK clients and a canned network answer: TLS and socket work are not included.',
    'Lambda bills each invocation rounded up to 1 ms; a worker batch runs its records concurrently, so its duration is the batch CPU plus the longest chain of waits.',
    'Secrets Manager: one GetSecretValue per warm function every 5 minutes ($0.05 per 10,000 calls) - negligible per million callbacks.',
    'SQS: the event source long-polls whether or not traffic flows (a fixed monthly cost, not per callback); SSE-SQS encryption has no KMS charge.',
    'DynamoDB: state items are in the byOutcome GSI (keys providerOutcome, changedAt; only the listed attributes projected): a state write also writes the index entry when a projected attribute changes, twice (delete + put) when its key changes.',
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
  };
  readonly onDemand: { lines: CostLine[]; total: number };
  readonly provisioned: { lines: CostLine[]; total: number };
  readonly floor: { onDemand: number; provisioned: number; basis: string };
  readonly ratioOnDemand: number;
  readonly ratioProvisioned: number;
}

const mean = (values: readonly number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;

/** An access log line of the stack's format (lib/callback-api.ts ACCESS_LOG_FIELDS) with typical values, for a route. */
export const accessLogExample = (routeKey: string) => JSON.stringify({
  requestId: 'bRk9aj4sIAMEV0g=',
  requestTime: '22/Nov/2026:04:05:43 +0000',
  routeKey,
  status: '200',
  ip: '203.0.113.7',
  userAgent: 'Apache-HttpClient/4.5.13 (Java/17.0.8)',
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
  const units = (id: string): RequestUnits => {
    const w = input.writes[id];
    const later = (a.callbacksPerSubject - 1) / a.callbacksPerSubject;
    const blend = (pick: (u: RequestUnits) => number) => pick(w.newSubject) * (1 - later) + pick(w.laterCallback) * later;
    return {
      reads: blend((u) => u.reads),
      writes: blend((u) => u.writes),
      rru: blend((u) => u.rru),
      wru: blend((u) => u.wru),
      gsiWru: blend((u) => u.gsiWru),
      eventItemBytes: blend((u) => u.eventItemBytes),
      stateItemBytes: blend((u) => u.stateItemBytes),
    };
  };
  const perProvider = ids.map(units);
  const dynamo: RequestUnits = {
    reads: round(mean(perProvider.map((u) => u.reads)), 2),
    writes: round(mean(perProvider.map((u) => u.writes)), 2),
    rru: round(mean(perProvider.map((u) => u.rru)), 2),
    wru: round(mean(perProvider.map((u) => u.wru)), 2),
    gsiWru: round(mean(perProvider.map((u) => u.gsiWru)), 2),
    eventItemBytes: round(mean(perProvider.map((u) => u.eventItemBytes)), 0),
    stateItemBytes: round(mean(perProvider.map((u) => u.stateItemBytes)), 0),
  };
  // A record of a provider whose status endpoint is asked waits for it: its batch lasts that long.
  const askedShare = providers.filter((provider) => provider.lookup && ids.includes(provider.id)).length / ids.length;
  const pBatchAsks = 1 - (1 - askedShare) ** a.workerBatchSize;
  const chainMs = (asks: boolean) => (asks ? a.statusEndpointMs + 4 * a.dynamoRequestMs : 3 * a.dynamoRequestMs);
  const workerBatchMs = Math.ceil(workerCpuMs * a.workerBatchSize + pBatchAsks * chainMs(true) + (1 - pBatchAsks) * chainMs(false));

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
      basis: `${round(logBytes, 0)} B/callback (ours ${input.logBytesPerCallback.ingest}+${input.logBytesPerCallback.worker}, Lambda platform, API access log)`,
    },
  ];
  const writeUnits = dynamo.wru + dynamo.gsiWru;
  const onDemandDynamo: CostLine[] = [
    { item: 'DynamoDB writes', perMillion: writeUnits * p.dynamoOnDemandPerMillionWru, basis: `${round(writeUnits, 2)} WRU (${dynamo.writes} writes + GSI), on-demand` },
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
    },
    onDemand: { lines: onDemandLines, total: total(onDemandLines) },
    provisioned: { lines: provisionedLines, total: total(provisionedLines) },
    floor,
    ratioOnDemand: round(total(onDemandLines) / floor.onDemand, 2),
    ratioProvisioned: round(total(provisionedLines) / floor.provisioned, 2),
  };
}
