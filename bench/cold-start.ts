import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions } from 'esbuild';
import { median, progress, round } from './stats.ts';

/**
 * Section 2: each Lambda bundle as the stack builds it (esbuild: bundle, minify, platform node,
 * target node22, CommonJS, @aws-sdk/* external, external source map without sources), its size,
 * and its module initialisation in a fresh Node process against an empty one.
 *
 * Three process kinds are timed in interleaved rounds, each with the flags the function runs with
 * (NODE_OPTIONS=--enable-source-maps):
 *   bare:      node -e ''                          (nothing loaded; it only reports its CPU time)
 *   stubbed:   require(bundle), @aws-sdk/* answered by an empty stub (the SDK is external: the
 *              Lambda runtime provides it, so it is not part of our bundle)
 *   with SDK:  require(bundle), @aws-sdk/* resolved from node_modules (what the function really
 *              loads at init on Lambda, where the runtime's copy is used)
 */

const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const HANDLERS = ['ingest', 'worker'] as const;
export type HandlerName = (typeof HANDLERS)[number];

export interface BundleResult {
  readonly bytes: number;
  readonly sourceMapBytes: number;
  /** Largest inputs by bytes in the output. */
  readonly topInputs: { input: string; bytes: number }[];
  /** Median wall time of the whole process minus the bare process's, ms. */
  readonly initOverBareMs: number;
  readonly initOverBareWithSdkMs: number;
  /** The same differences in CPU time of the process (robust on a busy machine), ms. */
  readonly cpuOverBareMs: number;
  readonly cpuOverBareWithSdkMs: number;
  /** Median time of the require() call alone, measured inside the process, ms. */
  readonly requireMs: number;
  readonly requireWithSdkMs: number;
}

export interface ColdStartResult {
  readonly runs: number;
  readonly bareMs: number;
  readonly bareCpuMs: number;
  readonly esbuild: Record<string, unknown>;
  readonly bundles: Record<HandlerName, BundleResult>;
}

const ESBUILD_OPTIONS: BuildOptions = {
  bundle: true,
  minify: true,
  platform: 'node',
  target: 'node22',
  format: 'cjs',
  external: ['@aws-sdk/*'],
  sourcemap: 'external',
  sourcesContent: false,
};

/** Bundle one handler like NodejsFunction does; returns the output path and its metafile. */
export async function bundleHandler(name: HandlerName, outDir: string, root = ROOT) {
  const outfile = join(outDir, name, 'index.js');
  const result = await build({
    ...ESBUILD_OPTIONS,
    entryPoints: [join(root, 'functions', 'handlers', `${name}.ts`)],
    outfile,
    metafile: true,
    logLevel: 'error',
    absWorkingDir: root,
  });
  const output = Object.values(result.metafile?.outputs ?? {}).find((entry) => entry.entryPoint);
  const byPackage = new Map<string, number>();
  for (const [input, { bytesInOutput }] of Object.entries(output?.inputs ?? {})) {
    const key = input.startsWith('node_modules/') ? input.split('/').slice(0, input.startsWith('node_modules/@') ? 3 : 2).join('/') : input;
    byPackage.set(key, (byPackage.get(key) ?? 0) + bytesInOutput);
  }
  const topInputs = [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([input, bytes]) => ({ input, bytes }));
  return { outfile, topInputs };
}

const STUB_SDK =
  "const M=require('module');const load=M._load;M._load=function(r,...a){return r.startsWith('@aws-sdk/')?{}:load.call(this,r,...a)};";

interface ProcessTiming {
  /** Spawn to exit, seen from here. */
  readonly wallMs: number;
  /** The require() alone, inside the process. */
  readonly requireMs: number;
  /** CPU time (user + system) of the whole process: unlike wall time, not inflated by waiting for a core. */
  readonly cpuMs: number;
}

function timeProcess(script: string, env: NodeJS.ProcessEnv): ProcessTiming {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8' });
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0) throw new Error(`init run failed (${result.status}): ${result.stderr}`);
  const { requireMs, cpuMs } = JSON.parse(result.stdout) as { requireMs: number; cpuMs: number };
  return { wallMs, requireMs, cpuMs };
}

const REPORT = 'const u=process.cpuUsage();process.stdout.write(JSON.stringify({requireMs:r,cpuMs:(u.user+u.system)/1000}));';
const BARE_SCRIPT = `const r=0;${REPORT}`;

function requireScript(file: string, stubSdk: boolean): string {
  return `${stubSdk ? STUB_SDK : ''}const t=performance.now();require(${JSON.stringify(file)});const r=performance.now()-t;${REPORT}`;
}

/** `root`: another checkout of the repository to measure (an A/B of a change); defaults to this one. */
export async function measureColdStart(runs: number, root = ROOT): Promise<ColdStartResult> {
  const outDir = mkdtempSync(join(tmpdir(), 'callback-gateway-bench-bundles-'));
  try {
    const bundles = {} as Record<HandlerName, { outfile: string; topInputs: BundleResult['topInputs'] }>;
    for (const name of HANDLERS) bundles[name] = await bundleHandler(name, outDir, root);

    // Only what the function environment has: no inherited NODE_OPTIONS (tsx's loader), source maps on.
    const baseEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, NODE_OPTIONS: '--enable-source-maps', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
    const sdkEnv: NodeJS.ProcessEnv = { ...baseEnv, NODE_PATH: join(ROOT, 'node_modules') };
    const kinds = [
      { key: 'bare', script: BARE_SCRIPT, env: baseEnv },
      ...HANDLERS.flatMap((name) => [
        { key: `${name}:stub`, script: requireScript(bundles[name].outfile, true), env: baseEnv },
        { key: `${name}:sdk`, script: requireScript(bundles[name].outfile, false), env: sdkEnv },
      ]),
    ];
    const walls = new Map<string, number[]>(kinds.map((kind) => [kind.key, []]));
    const requires = new Map<string, number[]>(kinds.map((kind) => [kind.key, []]));
    const cpus = new Map<string, number[]>(kinds.map((kind) => [kind.key, []]));
    for (const kind of kinds) timeProcess(kind.script, kind.env); // warm the file cache
    for (let run = 0; run < runs; run++) {
      if (run % 5 === 0) progress(`cold start: round ${run + 1}/${runs}`);
      // Rotate the order each round so no kind always runs right after another.
      const order = kinds.map((_, i) => kinds[(i + run) % kinds.length]);
      for (const kind of order) {
        const { wallMs, requireMs, cpuMs } = timeProcess(kind.script, kind.env);
        walls.get(kind.key)!.push(wallMs);
        requires.get(kind.key)!.push(requireMs);
        cpus.get(kind.key)!.push(cpuMs);
      }
    }
    const bareMs = median(walls.get('bare')!);
    // Per-round differences against that round's bare run cancel slow phases of the machine.
    const overBare = (key: string, series = walls) => median(series.get(key)!.map((value, i) => value - series.get('bare')![i]));
    const result = {} as Record<HandlerName, BundleResult>;
    for (const name of HANDLERS) {
      result[name] = {
        bytes: statSync(bundles[name].outfile).size,
        sourceMapBytes: statSync(`${bundles[name].outfile}.map`).size,
        topInputs: bundles[name].topInputs,
        initOverBareMs: round(overBare(`${name}:stub`), 1),
        initOverBareWithSdkMs: round(overBare(`${name}:sdk`), 1),
        cpuOverBareMs: round(overBare(`${name}:stub`, cpus), 1),
        cpuOverBareWithSdkMs: round(overBare(`${name}:sdk`, cpus), 1),
        requireMs: round(median(requires.get(`${name}:stub`)!), 1),
        requireWithSdkMs: round(median(requires.get(`${name}:sdk`)!), 1),
      };
    }
    return { runs, bareMs: round(bareMs, 1), bareCpuMs: round(median(cpus.get('bare')!), 1), esbuild: { ...ESBUILD_OPTIONS }, bundles: result };
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}
