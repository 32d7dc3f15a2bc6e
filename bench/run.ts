import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { measureColdStart, type ColdStartResult } from './cold-start.ts';
import { costModel, type CostModel } from './cost.ts';
import { DATA_PARENT, measureAlternative, measurePipeline, type AlternativeResult, type PipelineBenchResult } from './end-to-end.ts';
import { providers } from '../functions/providers/index.ts';
import { measureIngestCompute, type IngestComputeResult } from './ingest-compute.ts';
import { envInt, markdownTable, progress, round } from './stats.ts';

/**
 * `npm run bench`: every comparison of issue 5 side by side in one run. Prints a Markdown table
 * (stdout) and writes bench/results.json. Progress goes to stderr.
 *
 *   BENCH_CALLBACKS          end-to-end callbacks (default 10000)
 *   BENCH_CONCURRENCY        concurrent senders (default 50)
 *   BENCH_BLOCKS             timed blocks per ingest comparison (default 15)
 *   BENCH_ITERATIONS         callbacks per block (default 2000)
 *   BENCH_COLD_RUNS          fresh processes per bundle kind (default 15)
 *   BENCH_ENGINE_SEQUENCES   callbacks' worth of DynamoDB requests per engine run (default 2000)
 *   BENCH_ALT_CALLBACKS      callbacks per receiver in the comparison (default 1500), of the first
 *                            provider whose status endpoint the worker asks
 *   BENCH_ALT_RATE           their arrival rate, callbacks/s (default 100)
 *   BENCH_SECTIONS           comma list of compute,cold,pipeline (default all; cost needs compute+pipeline);
 *                            sync runs section 4 alone, on a pipeline of its own
 */

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const KB = 1000;
const RESULTS_FILE = fileURLToPath(new URL('./results.json', import.meta.url));

const settings = {
  callbacks: envInt('BENCH_CALLBACKS', 10_000),
  concurrency: envInt('BENCH_CONCURRENCY', 50),
  blocks: envInt('BENCH_BLOCKS', 15),
  iterations: envInt('BENCH_ITERATIONS', 2000),
  coldRuns: envInt('BENCH_COLD_RUNS', 15),
  engineSequences: envInt('BENCH_ENGINE_SEQUENCES', 2000),
  alternativeCallbacks: envInt('BENCH_ALT_CALLBACKS', 1500),
  alternativeRate: envInt('BENCH_ALT_RATE', 100),
  alternativeRounds: 3,
  delayMs: 200,
};
const sections = new Set((process.env.BENCH_SECTIONS ?? 'compute,cold,pipeline').split(',').map((s) => s.trim()));

interface Target {
  readonly section: string;
  readonly measure: string;
  readonly ours: string;
  readonly reference: string;
  readonly ratio: string;
  readonly target: string;
  /** undefined: informational row. */
  readonly met?: boolean;
}

/**
 * CPU seconds used by the whole machine, and by this process plus every child it waited for (the
 * pipeline, DynamoDB Local, the receivers, the cold-start processes), from /proc (Linux).
 */
function cpuSeconds(): { machine: number; ours: number } | undefined {
  try {
    const ticks = 100; // USER_HZ
    const machine = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const busy = machine[0] + machine[1] + machine[2] + machine[5] + machine[6] + machine[7]; // user nice system irq softirq steal
    const self = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ').map(Number);
    const ours = self[11] + self[12] + self[13] + self[14]; // utime stime cutime cstime
    return { machine: busy / ticks, ours: ours / ticks };
  } catch {
    return undefined;
  }
}

const fmt = (value: number, digits = 0) => value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const kb = (bytes: number) => `${fmt(bytes / KB, 1)} KB`;

function computeRows(result: IngestComputeResult): Target[] {
  return Object.entries(result.providers).map(([id, p]) => ({
    section: '1 ingest compute',
    measure: `${id}: ns per callback`,
    ours: `${fmt(p.oursNs)} ns`,
    reference: `inherent ${fmt(p.inherentNs)} ns`,
    ratio: `${fmt(p.ratio, 2)}x (${fmt(p.ratioMin, 2)}-${fmt(p.ratioMax, 2)})`,
    target: '<= 2x',
    met: p.ratio <= 2,
  }));
}

function coldRows(result: ColdStartResult): Target[] {
  const rows: Target[] = [];
  const limits = { ingest: 60 * KB, worker: 150 * KB };
  for (const [name, b] of Object.entries(result.bundles) as [keyof typeof limits, ColdStartResult['bundles']['ingest']][]) {
    rows.push({
      section: '2 cold start',
      measure: `${name} bundle (minified, @aws-sdk/* external)`,
      ours: kb(b.bytes),
      reference: `largest: ${b.topInputs[0]?.input} ${kb(b.topInputs[0]?.bytes ?? 0)}`,
      ratio: `${fmt(b.bytes / limits[name], 2)}x of limit`,
      target: `<= ${kb(limits[name])}`,
      met: b.bytes <= limits[name],
    });
    rows.push({
      section: '2 cold start',
      measure: `${name} init, SDK external (stubbed)`,
      ours: `+${fmt(b.initOverBareMs, 1)} ms`,
      reference: `bare node ${fmt(result.bareMs, 1)} ms`,
      ratio: `require ${fmt(b.requireMs, 1)} ms; CPU +${fmt(b.cpuOverBareMs, 1)} ms`,
      target: '<= bare + 30 ms',
      met: b.initOverBareMs <= 30,
    });
    rows.push({
      section: '2 cold start',
      measure: `${name} init, incl. the @aws-sdk modules it loads`,
      ours: `+${fmt(b.initOverBareWithSdkMs, 1)} ms`,
      reference: `bare node ${fmt(result.bareMs, 1)} ms`,
      ratio: `require ${fmt(b.requireWithSdkMs, 1)} ms; CPU +${fmt(b.cpuOverBareWithSdkMs, 1)} ms`,
      target: '(info: Lambda loads its own SDK copy)',
    });
  }
  return rows;
}

function pipelineRows(result: PipelineBenchResult): Target[] {
  const e = result.endToEnd;
  const rows: Target[] = [
    {
      section: '3 end to end',
      measure: `${fmt(e.callbacks)} callbacks, ${providers.length} providers, ${e.concurrency} senders: acknowledged`,
      ours: `${fmt(e.ackPerSecond)} /s`,
      reference: `${fmt(e.acknowledged)} acked, ${fmt(e.failed)} failed`,
      ratio: `p50 ${fmt(e.ackP50Ms, 1)} ms, p99 ${fmt(e.ackP99Ms, 1)} ms`,
      target: '(info)',
    },
    {
      section: '3 end to end',
      measure: 'stored (until the last one is in the table)',
      ours: `${fmt(e.storedPerSecond)} /s`,
      reference: `all stored after ${fmt(e.allStoredSeconds, 1)} s`,
      ratio: `${fmt(e.storedPerSecond / 500, 2)}x of target`,
      target: '>= 500 /s',
      met: e.storedPerSecond >= 500,
    },
    {
      section: '3 end to end',
      measure: 'stored vs the engine alone (get state, put state, put event)',
      ours: `${fmt(e.storedPerSecond)} /s`,
      reference: `engine ${fmt(e.engineCallbacksPerSecond)} /s (${fmt(e.engineBefore.callbacksPerSecond)} before, ${fmt(e.engineAfter.callbacksPerSecond)} after)`,
      ratio: `${fmt(e.shareOfEngine * 100)} %`,
      target: '>= 50 %',
      met: e.shareOfEngine >= 0.5,
    },
    {
      section: '3 end to end',
      measure: 'lost (acknowledged but not stored)',
      ours: fmt(e.lost),
      reference: `${fmt(e.storedInTable)} event items found`,
      ratio: `${fmt(e.duplicatesLogged)} redelivered duplicates`,
      target: '0',
      met: e.lost === 0,
    },
  ];
  return result.alternative ? [...rows, ...alternativeRows(result.alternative)] : rows;
}

function alternativeRows(alt: AlternativeResult): Target[] {
  return [
    {
      section: '4 vs synchronous',
      measure: `${alt.provider}, ${alt.ratePerSecond}/s, status endpoint +${alt.delayMs} ms: ack p99`,
      ours: `${fmt(alt.ours.ackP99Ms, 1)} ms`,
      reference: `synchronous ${fmt(alt.synchronous.ackP99Ms, 1)} ms`,
      ratio: `${fmt(alt.p99Ratio, 1)}x lower`,
      target: '>= 10x lower',
      met: alt.p99Ratio >= 10,
    },
    {
      section: '4 vs synchronous',
      measure: 'ack p50 / acknowledged / lost',
      ours: `${fmt(alt.ours.ackP50Ms, 1)} ms / ${fmt(alt.ours.acknowledged)} / ${fmt(alt.ours.lost)}`,
      reference: `${fmt(alt.synchronous.ackP50Ms, 1)} ms / ${fmt(alt.synchronous.acknowledged)}`,
      ratio: '',
      target: '(info)',
    },
    {
      section: '4 vs synchronous',
      measure: 'ack p99 against a receiver that does no work (the machine\'s floor)',
      ours: `${fmt(alt.ours.ackP99Ms, 1)} ms`,
      reference: `floor ${fmt(alt.floor.ackP99Ms, 1)} ms (p50 ${fmt(alt.floor.ackP50Ms, 1)} ms)`,
      ratio: `${fmt(alt.ours.ackP99Ms / alt.floor.ackP99Ms, 1)}x the floor`,
      target: '(info)',
    },
  ];
}

function costRows(model: CostModel): Target[] {
  return [
    {
      section: '5 cost',
      measure: '$ per million callbacks, DynamoDB on-demand',
      ours: `$${fmt(model.onDemand.total, 2)}`,
      reference: `floor $${fmt(model.floor.onDemand, 2)}`,
      ratio: `${fmt(model.ratioOnDemand, 2)}x floor`,
      target: '<= 1.5x floor',
      met: model.ratioOnDemand <= 1.5,
    },
    {
      section: '5 cost',
      measure: `$ per million callbacks, DynamoDB provisioned (${model.assumptions.provisionedUtilisation * 100} % used)`,
      ours: `$${fmt(model.provisioned.total, 2)}`,
      reference: `floor $${fmt(model.floor.provisioned, 2)}`,
      ratio: `${fmt(model.ratioProvisioned, 2)}x floor`,
      target: '<= 1.5x floor',
      met: model.ratioProvisioned <= 1.5,
    },
  ];
}

function costTable(model: CostModel): string {
  const provisioned = new Map(model.provisioned.lines.map((line) => [line.item, line]));
  const items = [...new Set([...model.onDemand.lines, ...model.provisioned.lines].map((line) => line.item))];
  const rows = items.map((item) => {
    const onDemand = model.onDemand.lines.find((line) => line.item === item);
    const prov = provisioned.get(item);
    return [item, onDemand ? `$${fmt(onDemand.perMillion, 3)}` : '', prov ? `$${fmt(prov.perMillion, 3)}` : '', onDemand?.basis ?? prov?.basis ?? ''];
  });
  rows.push(['total', `$${fmt(model.onDemand.total, 3)}`, `$${fmt(model.provisioned.total, 3)}`, '']);
  rows.push(['floor (any design on API Gateway)', `$${fmt(model.floor.onDemand, 3)}`, `$${fmt(model.floor.provisioned, 3)}`, model.floor.basis]);
  return markdownTable(['per million callbacks', 'on-demand', 'provisioned', 'basis'], rows);
}

async function main() {
  const started = performance.now();
  const loadBefore = loadavg();
  const cpuBefore = cpuSeconds();
  const results: Record<string, unknown> = {};
  const rows: Target[] = [];

  let compute: IngestComputeResult | undefined;
  if (sections.has('compute')) {
    compute = await measureIngestCompute({ blocks: settings.blocks, iterations: settings.iterations, warmup: settings.iterations });
    results.ingestCompute = compute;
    rows.push(...computeRows(compute));
  }
  if (sections.has('cold')) {
    const cold = await measureColdStart(settings.coldRuns);
    results.coldStart = cold;
    rows.push(...coldRows(cold));
  }
  let pipeline: PipelineBenchResult | undefined;
  if (sections.has('pipeline')) {
    pipeline = await measurePipeline(settings);
    results.endToEnd = pipeline.endToEnd;
    if (pipeline.alternative) results.alternative = pipeline.alternative;
    results.dynamoWritesPerCallback = pipeline.writes;
    rows.push(...pipelineRows(pipeline));
  }
  if (sections.has('sync') && !sections.has('pipeline')) {
    const alternative = await measureAlternative(settings);
    if (alternative) {
      results.alternative = alternative;
      rows.push(...alternativeRows(alternative));
    }
  }
  let cost: CostModel | undefined;
  if (compute && pipeline) {
    cost = costModel({ compute, writes: pipeline.writes, logBytesPerCallback: pipeline.endToEnd.logBytesPerCallback });
    results.cost = cost;
    rows.push(...costRows(cost));
  }

  const seconds = (performance.now() - started) / 1000;
  const loadAfter = loadavg();
  const cores = cpus().length;
  const cpuAfter = cpuSeconds();
  // CPU the rest of the machine used meanwhile (other engineers' suites), in cores on average.
  const othersCores =
    cpuBefore && cpuAfter ? Math.max(0, cpuAfter.machine - cpuBefore.machine - (cpuAfter.ours - cpuBefore.ours)) / seconds : undefined;
  const busy = othersCores !== undefined ? othersCores >= 0.25 : loadBefore[0] >= 1;
  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: `${cores} x ${cpus()[0]?.model ?? 'unknown'}`,
    memoryGb: round(totalmem() / 2 ** 30, 1),
    loadAverage1mBefore: round(loadBefore[0], 2),
    loadAverage1mAfter: round(loadAfter[0], 2),
    /** Cores' worth of CPU that other processes used during the run (from /proc). */
    otherProcessesCores: othersCores === undefined ? null : round(othersCores, 2),
    machineBusy: busy,
    dataFolder: DATA_PARENT,
    settings,
    sections: [...sections],
    runSeconds: round(seconds, 1),
  };
  writeFileSync(RESULTS_FILE, `${JSON.stringify({ meta, ...results }, null, 2)}\n`);

  const table = markdownTable(
    ['section', 'measure', 'ours', 'reference', 'ratio / detail', 'target', 'met'],
    rows.map((row) => [row.section, row.measure, row.ours, row.reference, row.ratio, row.target, row.met === undefined ? '' : row.met ? 'yes' : 'NO']),
  );
  const lines = [
    `callback-gateway bench, ${meta.date}: Node ${meta.node} on ${meta.cpus}, load average ${meta.loadAverage1mBefore} -> ${meta.loadAverage1mAfter}` +
      (othersCores !== undefined ? `; other processes used ${fmt(othersCores, 2)} of the ${cores} cores meanwhile` : '') +
      (busy ? ' (shared machine: they competed with the benchmark for the CPUs)' : ''),
    '',
    table,
    '',
    '@aws-sdk/* is external in both bundles, as deployed: the Lambda nodejs22.x runtime provides it. The "incl. @aws-sdk" rows load it from node_modules.',
  ];
  if (cost) {
    lines.push('', costTable(cost), '', `Prices: ${cost.prices.region}, ${cost.prices.asOf}.`);
    lines.push(`Assumptions: ${cost.assumptions.ingestMemoryMb} MB ingest / ${cost.assumptions.workerMemoryMb} MB worker (arm64), CPU scaled by ${cost.assumptions.fullVcpuMemoryMb} MB per vCPU; in-region latency SQS ${cost.assumptions.sqsSendMessageMs} ms, DynamoDB ${cost.assumptions.dynamoRequestMs} ms, status endpoints ${cost.assumptions.statusEndpointMs} ms; batches of ${cost.assumptions.workerBatchSize}; ${cost.assumptions.callbacksPerSubject} callbacks per subject; ${cost.assumptions.providerMix}. See results.json for the rest.`);
  }
  lines.push('', `bench/results.json written; run time ${fmt(seconds, 0)} s.`);
  console.log(lines.join('\n'));
  progress(`done in ${fmt(seconds, 0)} s`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
