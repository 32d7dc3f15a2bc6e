import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { measureColdStart, type ColdStartResult } from './cold-start.ts';
import { ASSUMPTIONS, costModel, reconciliationCostModel, type CostModel, type ReconciliationCostModel } from './cost.ts';
import { measureEvents, type EventsBenchResult } from './events.ts';
import { DATA_PARENT, measureAlternative, measurePipeline, type AlternativeResult, type PipelineBenchResult } from './end-to-end.ts';
import { providers } from '../functions/providers/index.ts';
import { measureIngestCompute, type IngestComputeResult } from './ingest-compute.ts';
import { measureReconciliation } from './recheck.ts';
import { envInt, markdownTable, progress, round } from './stats.ts';
import { checkArguments, parseCli } from '../local/cli-args.ts';

/**
 * `npm run bench`: every comparison of issue 5 side by side in one run. Prints a Markdown table
 * (stdout) and writes bench/results.json. Progress goes to stderr.
 *
 *   BENCH_CALLBACKS          end-to-end callbacks (default 10000)
 *   BENCH_CONCURRENCY        concurrent senders (default 50)
 *   BENCH_BLOCKS             timed blocks per ingest comparison (default 15)
 *   BENCH_ITERATIONS         callbacks per block (default 2000)
 *   BENCH_COLD_RUNS          fresh processes per bundle kind (default 15)
 *                            (section 6, recheck, is one of the default sections: it needs Java too)
 *   BENCH_ENGINE_SEQUENCES   callbacks' worth of DynamoDB requests per engine run (default 2000)
 *   BENCH_LIVES              subjects' lives per provider whose reads and writes the cost model uses
 *                            (default 12; the kits' lives, test/providers)
 *   BENCH_ALT_CALLBACKS      callbacks per receiver in the comparison (default 1500), of the first
 *                            provider whose status endpoint the worker asks
 *   BENCH_ALT_RATE           their arrival rate, callbacks/s (default 100)
 *   BENCH_EVENTS_CALLBACKS   callbacks of section 7, events out (default 1000)
 *   BENCH_EVENTS_RATE        their arrival rate, callbacks/s (default 20)
 *   BENCH_SECTIONS           comma list of compute,cold,pipeline,recheck,events (default all; cost needs
 *                            compute+pipeline, its events-on rows events too); sync runs section 4 alone,
 *                            on a pipeline of its own
 */

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const USAGE = `usage: npm run bench
       BENCH_SECTIONS=compute,cold npm run bench      (settings are environment variables)

  Measures how fast the gateway answers a provider and what a million callbacks cost on AWS, in
  seven sections (about 12 minutes on a 2-core machine; Java 17+ for DynamoDB Local). Prints the
  tables on stdout, progress on stderr, and writes bench/results.json. Settings are environment
  variables (bench/README.md):

  BENCH_SECTIONS           comma list of compute,cold,pipeline,recheck,events (default all);
                           compute,cold needs no Java; sync runs section 4 alone
  BENCH_CALLBACKS          end-to-end callbacks (default 10000)
  BENCH_CONCURRENCY        concurrent senders (default 50)
  BENCH_BLOCKS             timed blocks per ingest comparison (default 15)
  BENCH_ITERATIONS         callbacks per block (default 2000)
  BENCH_COLD_RUNS          fresh processes per bundle kind (default 15)
  BENCH_ENGINE_SEQUENCES   callbacks' worth of DynamoDB requests per engine run (default 2000)
  BENCH_LIVES              subjects' lives per provider the cost model uses (default 12)
  BENCH_ALT_CALLBACKS      callbacks per receiver in the synchronous comparison (default 1500)
  BENCH_ALT_RATE           their arrival rate, callbacks/s (default 100)
  BENCH_EVENTS_CALLBACKS   callbacks of section 7, events out (default 1000)
  BENCH_EVENTS_RATE        their arrival rate, callbacks/s (default 20)
  BENCH_PIPELINE_NODE_ARGS extra node flags for the pipeline process (e.g. --cpu-prof)`;

// Its settings are environment variables: a flag or an argument is a mistake, said before minutes of measuring.
const cli = parseCli({ help: { type: 'boolean', short: 'h' } }, USAGE);
checkArguments(cli.positionals, USAGE, []);

const KB = 1000;
const RESULTS_FILE = fileURLToPath(new URL('./results.json', import.meta.url));

const settings = {
  callbacks: envInt('BENCH_CALLBACKS', 10_000),
  concurrency: envInt('BENCH_CONCURRENCY', 50),
  blocks: envInt('BENCH_BLOCKS', 15),
  iterations: envInt('BENCH_ITERATIONS', 2000),
  coldRuns: envInt('BENCH_COLD_RUNS', 15),
  engineSequences: envInt('BENCH_ENGINE_SEQUENCES', 2000),
  lives: envInt('BENCH_LIVES', 12),
  alternativeCallbacks: envInt('BENCH_ALT_CALLBACKS', 1500),
  alternativeRate: envInt('BENCH_ALT_RATE', 100),
  alternativeRounds: 3,
  eventsCallbacks: envInt('BENCH_EVENTS_CALLBACKS', 1000),
  eventsRate: envInt('BENCH_EVENTS_RATE', 20),
  delayMs: 200,
};
const sections = new Set((process.env.BENCH_SECTIONS ?? 'compute,cold,pipeline,recheck,events').split(',').map((s) => s.trim()));

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
  const limits: Partial<Record<string, number>> = { ingest: 60 * KB, worker: 150 * KB };
  for (const [name, b] of Object.entries(result.bundles)) {
    const limit = limits[name];
    if (b.perProviderBytes) {
      rows.push({
        section: '2 cold start',
        measure: `${name} bundles by provider (@aws-sdk/* external)`,
        ours: Object.entries(b.perProviderBytes).map(([id, bytes]) => `${id} ${kb(bytes)}`).join(', '),
        reference: 'each holds its own provider module alone',
        ratio: '',
        target: '(info)',
      });
    }
    rows.push({
      section: '2 cold start',
      measure: `${name} bundle${b.provider ? ` (largest: ${b.provider})` : ''} (minified, @aws-sdk/* external)`,
      ours: kb(b.external.bytes),
      reference: `largest: ${b.external.topInputs[0]?.input} ${kb(b.external.topInputs[0]?.bytes ?? 0)}`,
      ratio: limit ? `${fmt(b.external.bytes / limit, 2)}x of limit` : '',
      target: limit ? `<= ${kb(limit)}` : '(info)',
      ...(limit ? { met: b.external.bytes <= limit } : {}),
    });
    rows.push({
      section: '2 cold start',
      measure: `${name} bundle with the SDK bundled (pinned)`,
      ours: kb(b.bundled.bytes),
      reference: `SDK ${kb(b.bundled.sdkBytes)}; gzip with map ${kb(b.bundled.gzipBytes)}`,
      ratio: `external: gzip with map ${kb(b.external.gzipBytes)}`,
      target: '(info)',
    });
    rows.push({
      section: '2 cold start',
      measure: `${name} init, our code alone (SDK stubbed)`,
      ours: `+${fmt(b.initOverBareMs, 1)} ms`,
      reference: `bare node ${fmt(result.bareMs, 1)} ms`,
      ratio: `require ${fmt(b.requireMs, 1)} ms; CPU +${fmt(b.cpuOverBareMs, 1)} ms`,
      target: '<= bare + 30 ms',
      met: b.initOverBareMs <= 30,
    });
    rows.push({
      section: '2 cold start',
      measure: `${name} init, SDK external (loaded from node_modules)`,
      ours: `+${fmt(b.initOverBareWithSdkMs, 1)} ms`,
      reference: `bare node ${fmt(result.bareMs, 1)} ms`,
      ratio: `require ${fmt(b.requireWithSdkMs, 1)} ms; CPU +${fmt(b.cpuOverBareWithSdkMs, 1)} ms`,
      target: '(info: the runtime\'s copy)',
    });
    rows.push({
      section: '2 cold start',
      measure: `${name} init, SDK bundled`,
      ours: `+${fmt(b.initOverBareBundledMs, 1)} ms`,
      reference: `external +${fmt(b.initOverBareWithSdkMs, 1)} ms`,
      ratio: `require ${fmt(b.requireBundledMs, 1)} ms; CPU +${fmt(b.cpuOverBareBundledMs, 1)} ms (external +${fmt(b.cpuOverBareWithSdkMs, 1)})`,
      target: '(info)',
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

function eventsRows(result: EventsBenchResult): Target[] {
  const e = result.toEvent;
  const r = result.toRelay;
  const p = result.publisher;
  return [
    {
      section: '7 events out',
      measure: `callback accepted -> its event in events.jsonl (${fmt(result.callbacks)} callbacks at ${result.ratePerSecond}/s; outlet polls ${result.outlet.pollMs} ms, batches of up to ${result.outlet.batchSize})`,
      ours: `p99 ${fmt(e.p99Ms, 0)} ms`,
      reference: `p50 ${fmt(e.p50Ms, 0)} ms, n ${fmt(e.n)}`,
      ratio: `max ${fmt(e.maxMs, 0)} ms; ${fmt(e.missing)} stored as changed without an event (${Object.entries(result.missingBySample).map(([sample, n]) => `${sample} ${n}`).join(', ') || 'none'}); ${fmt(result.unchanged)} changed nothing`,
      target: 'p99 <= 2 s',
      met: e.p99Ms <= 2000,
    },
    {
      section: '7 events out',
      measure: 'of which: accepted -> stored (the worker\'s line) / stored -> event in events.jsonl',
      ours: `p99 ${fmt(result.toStored.p99Ms, 0)} / ${fmt(result.storedToEvent.p99Ms, 0)} ms`,
      reference: `p50 ${fmt(result.toStored.p50Ms, 0)} / ${fmt(result.storedToEvent.p50Ms, 0)} ms`,
      ratio: `n ${fmt(result.toStored.n)} / ${fmt(result.storedToEvent.n)}`,
      target: '(info)',
    },
    {
      section: '7 events out',
      measure: 'SMS instruction accepted -> the relay\'s send answered (npm start --sms-relay telesign, TeleSign simulated)',
      ours: `p99 ${fmt(r.p99Ms, 0)} ms`,
      reference: `p50 ${fmt(r.p50Ms, 0)} ms, n ${fmt(r.n)}`,
      ratio: `max ${fmt(r.maxMs, 0)} ms; ${fmt(r.missing)} not sent; ${fmt(r.deliveryReportsAccepted)} delivery reports taken`,
      target: '(info)',
    },
    {
      section: '7 events out',
      measure: 'publisher per batch of filtered stream records (real handler, EventBridge network stubbed)',
      ours: `${fmt(p.cpuNsPerBatch / 1e6, 2)} ms CPU`,
      reference: `${fmt(p.eventsPerBatch, 1)} events, ${fmt(p.putEventsPerBatch, 1)} PutEvents`,
      ratio: `${fmt(p.eventsPerCallback, 3)} events and ${fmt(p.streamRecordsPerCallback, 2)} stream records (${fmt(p.filteredRecordsPerCallback, 2)} filtered in) per callback`,
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
    ...(model.eventsOn
      ? [
          {
            section: '5 cost',
            measure: '$ per million callbacks with events on, DynamoDB on-demand',
            ours: `$${fmt(model.eventsOn.total, 2)}`,
            reference: `without events $${fmt(model.onDemand.total, 2)}; events add $${fmt(model.eventsOn.added, 2)}`,
            ratio: `${model.eventsOn.total <= model.eventsOn.cap ? 'under' : 'over'} the cap by $${fmt(Math.abs(model.eventsOn.cap - model.eventsOn.total), 2)}`,
            target: `<= $${fmt(model.eventsOn.cap, 2)} (issue 12)`,
            met: model.eventsOn.total <= model.eventsOn.cap,
          },
          {
            section: '5 cost',
            measure: '$ per million callbacks with events on, storage and backups included',
            ours: `$${fmt(model.eventsOn.total + model.retained.total, 2)}`,
            reference: `kept items: storage and PITR $${fmt(model.retained.total, 2)}`,
            ratio: 'the cap was set without them',
            target: '(info)',
          },
          {
            section: '5 cost',
            measure: '$ per million SMS instructions relayed (opt-in; the SMS price itself excluded)',
            ours: `$${fmt(model.eventsOn.relay.total, 2)}`,
            reference: 'TeleSign bills each SMS on top',
            ratio: '',
            target: '(info)',
          },
        ]
      : []),
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
  if (model.eventsOn) {
    for (const line of model.eventsOn.lines) rows.push([line.item, `$${fmt(line.perMillion, 3)}`, `$${fmt(line.perMillion, 3)}`, line.basis]);
    rows.push(['total with events on', `$${fmt(model.eventsOn.total, 3)}`, `$${fmt(model.provisioned.total + model.eventsOn.added, 3)}`, `cap $${fmt(model.eventsOn.cap, 2)} on-demand (issue 12)`]);
  }
  rows.push(['floor (any design on API Gateway)', `$${fmt(model.floor.onDemand, 3)}`, `$${fmt(model.floor.provisioned, 3)}`, model.floor.basis]);
  // Outside the totals: what the items left behind cost while they are kept.
  for (const line of model.retained.lines) rows.push([`kept: ${line.item}`, `$${fmt(line.perMillion, 3)}`, `$${fmt(line.perMillion, 3)}`, line.basis]);
  rows.push(['kept: total (not in the totals above)', `$${fmt(model.retained.total, 3)}`, `$${fmt(model.retained.total, 3)}`, 'storage and backups of what a million callbacks leave, over their TTL']);
  return markdownTable(['per million callbacks', 'on-demand', 'provisioned', 'basis'], rows);
}

function recheckRows(model: ReconciliationCostModel): Target[] {
  const cheapest = model.kinds.reduce((best, kind) => (kind.alone < best.alone ? kind : best));
  const dearest = model.kinds.reduce((worst, kind) => (kind.alone > worst.alone ? kind : worst));
  const label = (kind: ReconciliationCostModel['kinds'][number]) => `${kind.provider} (${kind.requests} request${kind.requests > 1 ? 's' : ''})`;
  return [
    {
      section: '6 reconciliation',
      measure: '$ per million re-checks, alone in an invocation (on-demand)',
      ours: `$${fmt(cheapest.alone, 2)}-$${fmt(dearest.alone, 2)}`,
      reference: `${label(cheapest)} to ${label(dearest)}`,
      ratio: `in batches of 10: $${fmt(Math.min(...model.kinds.map((k) => k.batched)), 2)}-$${fmt(Math.max(...model.kinds.map((k) => k.batched)), 2)}`,
      target: '(info)',
    },
    ...model.mixes.map((mix) => ({
      section: '6 reconciliation',
      measure: `$ per million subjects: confirmation + re-checks, ${mix.name}`,
      ours: `$${fmt(mix.perMillion, 2)}`,
      reference: `in batches of 10: $${fmt(mix.batchedPerMillion, 2)}`,
      ratio: `asked: ${mix.asked.join(', ')}; + $${fmt(model.fixedPerMonth.total, 2)} a month fixed`,
      target: '(info)',
    })),
  ];
}

function recheckTables(model: ReconciliationCostModel): string[] {
  const kindName = (kind: ReconciliationCostModel['kinds'][number]) => `${kind.provider} x${kind.requests}`;
  const items = model.kinds[0]?.lines.map((line) => line.item) ?? [];
  const perRecheck = markdownTable(
    ['per million re-checks (unchanged)', ...model.kinds.map(kindName), 'basis (first column)'],
    [
      ...items.map((item) => [item, ...model.kinds.map((kind) => `$${fmt(kind.lines.find((line) => line.item === item)!.perMillion, 3)}`), model.kinds[0].lines.find((line) => line.item === item)!.basis]),
      ['total, alone', ...model.kinds.map((kind) => `$${fmt(kind.alone, 2)}`), 'one re-check per worker invocation'],
      ['total, in batches of 10', ...model.kinds.map((kind) => `$${fmt(kind.batched, 2)}`), '10 of one provider per invocation, paced at its rate'],
      ['settling re-check, alone', ...model.kinds.map((kind) => `$${fmt(kind.settlingAlone, 2)}`), 'finds it final: byRecheck entry removed, byOutcome moved'],
    ],
  );
  const arrival = markdownTable(
    ['confirmation on arrival', 'status requests per callback', 'RRU', 'WRU', '$ per million callbacks, alone', 'in batches of 10', 'basis'],
    model.arrival.map((row) => [row.provider, fmt(row.statusRequests, 2), fmt(row.rru, 2), fmt(row.wru, 2), `$${fmt(row.alone, 2)}`, `$${fmt(row.batched, 2)}`, row.basis]),
  );
  const lives = markdownTable(
    ['per million subjects', ...ASSUMPTIONS.lives.map((life) => `${life.life} (${life.share * 100} %)`), 'mean re-checks', 'requests per ask', 're-checks', 'confirmation', 'total, alone', 'in batches of 10'],
    model.subjects.map((row) => [
      row.provider,
      ...row.rechecks.map((n) => fmt(n)),
      fmt(row.rechecksPerSubject, 2),
      fmt(row.requestsPerAsk, 2),
      `$${fmt(row.rechecksPerMillion, 2)}`,
      `$${fmt(row.confirmationPerMillion, 2)}`,
      `$${fmt(row.totalPerMillion, 2)}`,
      `$${fmt(row.totalBatchedPerMillion, 2)}`,
    ]),
  );
  const fixed = markdownTable(
    ['fixed, a month', 'dollars', 'basis'],
    [...model.fixedPerMonth.lines.map((line) => [line.item, `$${fmt(line.perMonth, 3)}`, line.basis]), ['total', `$${fmt(model.fixedPerMonth.total, 3)}`, '']],
  );
  const legend = model.kinds.map((kind) => `${kindName(kind)}: ${kind.samples.join(', ')}`).join('; ');
  return [`${perRecheck}\n\nKinds (requests per ask, the kit's samples of that kind): ${legend}.`, arrival, lives, fixed];
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
  let events: EventsBenchResult | undefined;
  if (sections.has('events')) {
    events = await measureEvents({ callbacks: settings.eventsCallbacks, rate: settings.eventsRate, concurrency: settings.concurrency, blocks: Math.min(settings.blocks, 7) });
    results.events = events;
    rows.push(...eventsRows(events));
  }
  let cost: CostModel | undefined;
  if (compute && pipeline) {
    cost = costModel({ compute, writes: pipeline.writes, logBytesPerCallback: pipeline.endToEnd.logBytesPerCallback, ...(events ? { events } : {}) });
    results.cost = cost;
    rows.push(...costRows(cost));
  }

  let reconciliation: ReconciliationCostModel | undefined;
  if (sections.has('recheck')) {
    const measured = await measureReconciliation({ blocks: Math.min(settings.blocks, 7) });
    results.reconciliation = measured;
    reconciliation = reconciliationCostModel(measured);
    results.reconciliationCost = reconciliation;
    rows.push(...recheckRows(reconciliation));
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
    'Section 2 builds each bundle two ways: @aws-sdk/* external (the nodejs24.x runtime\'s copy; its init rows load it from node_modules) and bundled from the versions the lock file pins.',
  ];
  if (cost) {
    lines.push('', costTable(cost), '', `Prices: ${cost.prices.region}, ${cost.prices.asOf}.`);
    if (cost.eventsOn) {
      lines.push('', markdownTable(['per million SMS instructions (relay on)', 'dollars', 'basis'], [...cost.eventsOn.relay.lines.map((line) => [line.item, `$${fmt(line.perMillion, 3)}`, line.basis]), ['total', `$${fmt(cost.eventsOn.relay.total, 3)}`, 'the SMS itself (TeleSign\'s price) not included']]));
    }
    lines.push(`Assumptions: ${cost.assumptions.ingestMemoryMb} MB ingest / ${cost.assumptions.workerMemoryMb} MB worker (arm64), CPU scaled by ${cost.assumptions.fullVcpuMemoryMb} MB per vCPU; in-region latency SQS ${cost.assumptions.sqsSendMessageMs} ms, DynamoDB ${cost.assumptions.dynamoRequestMs} ms, status endpoints ${cost.assumptions.statusEndpointMs} ms; batches of ${cost.assumptions.workerBatchSize}; DynamoDB per callback over ${settings.lives} subjects' lives per provider (the kits' lives, each subject's callbacks in the order the provider sends them); ${cost.assumptions.providerMix}. See results.json for the rest.`);
  }
  if (reconciliation) {
    lines.push('', ...recheckTables(reconciliation).flatMap((table) => [table, '']));
    lines.push(`Re-checks: status endpoints ${ASSUMPTIONS.statusEndpointMs} ms a request, DynamoDB ${ASSUMPTIONS.dynamoRequestMs} ms, SQS ${ASSUMPTIONS.sqsSendMessageMs} ms; worker ${ASSUMPTIONS.workerMemoryMb} MB, sweep ${ASSUMPTIONS.sweepMemoryMb} MB; DynamoDB on-demand; ${ASSUMPTIONS.callbacksPerSubject} callbacks per subject; the providers' own charges for status requests not included. See results.json (reconciliation, reconciliationCost) for the rest.`);
  }
  lines.push('', `bench/results.json written; run time ${fmt(seconds, 0)} s.`);
  console.log(lines.join('\n'));
  progress(`done in ${fmt(seconds, 0)} s`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
