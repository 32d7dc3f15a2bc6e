import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type BuildOptions } from 'esbuild';
import { providers } from '../functions/providers/index.ts';
import { median, progress, round } from './stats.ts';

/**
 * Section 2: each Lambda bundle as the stack builds it (esbuild: bundle, minify, platform node,
 * target node24, CommonJS, external source map without sources), built two ways: with the AWS SDK
 * external (`@aws-sdk/*` left to the copy the Lambda runtime ships) and with the SDK bundled (the
 * versions our lock file pins). Its size, and its module initialisation in a fresh Node process
 * against an empty one.
 *
 * Four process kinds per handler are timed in interleaved rounds, each with the flags the function
 * runs with (NODE_OPTIONS=--enable-source-maps):
 *   bare:          node -e ''                   (nothing loaded; it only reports its CPU time)
 *   external/stub: require(external bundle), @aws-sdk/* answered by an empty stub: our code alone
 *   external/sdk:  require(external bundle), @aws-sdk/* resolved from node_modules: what the
 *                  function loads at init when the runtime provides the SDK
 *   bundled:       require(bundled bundle), nothing resolved outside it: what the function loads
 *                  at init when the SDK is in the bundle
 */

const ROOT = fileURLToPath(new URL('../', import.meta.url));
/**
 * The stack's entry points (functions/handlers/): ingest (one function per provider, each bundle
 * holding its provider's module alone: the largest is measured), worker, sweep.
 */
export const HANDLERS = ['ingest', 'worker', 'sweep'] as const;
export type HandlerName = (typeof HANDLERS)[number];
/** How the SDK is treated: left to the runtime, or bundled. */
export const SDK_CHOICES = ['external', 'bundled'] as const;
export type SdkChoice = (typeof SDK_CHOICES)[number];

export interface BuiltBundle {
  readonly bytes: number;
  readonly sourceMapBytes: number;
  /** index.js and its map gzip-compressed: about what the function's zip asset weighs. */
  readonly gzipBytes: number;
  /** Largest inputs by bytes in the output (node_modules packages grouped). */
  readonly topInputs: { input: string; bytes: number }[];
  /** Bytes of @aws-sdk/* and @smithy/* in the output. */
  readonly sdkBytes: number;
}

export interface BundleResult {
  /** Ingest: the provider whose bundle is the largest, the one measured. */
  readonly provider?: string;
  /** Ingest: each provider's bundle (SDK external), bytes. */
  readonly perProviderBytes?: Record<string, number>;
  readonly external: BuiltBundle;
  readonly bundled: BuiltBundle;
  /** Median wall time of the whole process minus the bare process's, ms: our code alone (SDK stubbed). */
  readonly initOverBareMs: number;
  /** The same with the SDK loaded from node_modules (external, as the runtime loads its copy). */
  readonly initOverBareWithSdkMs: number;
  /** The same for the bundle that holds the SDK. */
  readonly initOverBareBundledMs: number;
  /** The same differences in CPU time of the process (robust on a busy machine), ms. */
  readonly cpuOverBareMs: number;
  readonly cpuOverBareWithSdkMs: number;
  readonly cpuOverBareBundledMs: number;
  /** Median time of the require() call alone, measured inside the process, ms. */
  readonly requireMs: number;
  readonly requireWithSdkMs: number;
  readonly requireBundledMs: number;
}

export interface ColdStartResult {
  readonly runs: number;
  readonly bareMs: number;
  readonly bareCpuMs: number;
  readonly esbuild: Record<string, unknown>;
  /** The SDK versions a bundled function carries (from node_modules, installed from the lock file). */
  readonly pinnedSdk: Record<string, string>;
  readonly bundles: Record<HandlerName, BundleResult>;
}

/** What lib/gateway-function.ts gives NodejsFunction's esbuild, but for `external`. */
const ESBUILD_OPTIONS: BuildOptions = {
  bundle: true,
  minify: true,
  platform: 'node',
  target: 'node24',
  format: 'cjs',
  sourcemap: 'external',
  sourcesContent: false,
};

const EXTERNAL: Record<SdkChoice, string[]> = { external: ['@aws-sdk/*'], bundled: [] };

const packageOf = (input: string) => (input.startsWith('node_modules/') ? input.split('/').slice(0, input.startsWith('node_modules/@') ? 3 : 2).join('/') : input);

/**
 * Bundle one handler like NodejsFunction does; returns the output path and what it holds. An ingest
 * bundle is built for one provider, whose id the stack writes into it (lib/provider-ingress.ts).
 */
export async function bundleHandler(name: HandlerName, outDir: string, root = ROOT, sdk: SdkChoice = 'external', provider?: string) {
  const outfile = join(outDir, sdk, provider === undefined ? name : `${name}-${provider}`, 'index.js');
  const result = await build({
    ...ESBUILD_OPTIONS,
    ...(provider === undefined ? {} : { define: { 'process.env.PROVIDER_ID': JSON.stringify(provider) } }),
    external: EXTERNAL[sdk],
    entryPoints: [join(root, 'functions', 'handlers', `${name}.ts`)],
    outfile,
    metafile: true,
    logLevel: 'error',
    absWorkingDir: root,
  });
  const output = Object.values(result.metafile?.outputs ?? {}).find((entry) => entry.entryPoint);
  const byPackage = new Map<string, number>();
  for (const [input, { bytesInOutput }] of Object.entries(output?.inputs ?? {})) byPackage.set(packageOf(input), (byPackage.get(packageOf(input)) ?? 0) + bytesInOutput);
  const topInputs = [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([input, bytes]) => ({ input, bytes }));
  const sdkBytes = [...byPackage].filter(([input]) => /^node_modules\/@(aws-sdk|smithy|aws-crypto)\//.test(input)).reduce((sum, [, bytes]) => sum + bytes, 0);
  return { outfile, topInputs, sdkBytes };
}

function built(outfile: string, topInputs: BuiltBundle['topInputs'], sdkBytes: number): BuiltBundle {
  const gzip = (file: string) => gzipSync(readFileSync(file)).length;
  return {
    bytes: statSync(outfile).size,
    sourceMapBytes: statSync(`${outfile}.map`).size,
    gzipBytes: gzip(outfile) + gzip(`${outfile}.map`),
    topInputs,
    sdkBytes,
  };
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

/** The version of each SDK client the handlers import, as installed from the lock file. */
function pinnedSdk(root: string): Record<string, string> {
  const names = ['@aws-sdk/client-dynamodb', '@aws-sdk/client-sqs', '@aws-sdk/client-secrets-manager', '@aws-sdk/util-dynamodb', '@smithy/node-http-handler'];
  return Object.fromEntries(names.map((name) => [name, (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version]));
}

/** `root`: another checkout of the repository to measure (an A/B of a change); defaults to this one. */
export async function measureColdStart(runs: number, root = ROOT): Promise<ColdStartResult> {
  const outDir = mkdtempSync(join(tmpdir(), 'callback-gateway-bench-bundles-'));
  try {
    const bundles = {} as Record<HandlerName, Record<SdkChoice, { outfile: string; built: BuiltBundle }>>;
    // Ingest: every provider's bundle is sized; the largest is the one timed and reported.
    const perProviderBytes: Record<string, number> = {};
    for (const { id } of providers) {
      const { outfile } = await bundleHandler('ingest', outDir, root, 'external', id);
      perProviderBytes[id] = statSync(outfile).size;
    }
    const [largestIngest] = Object.entries(perProviderBytes).sort((a, b) => b[1] - a[1])[0];
    for (const name of HANDLERS) {
      bundles[name] = {} as Record<SdkChoice, { outfile: string; built: BuiltBundle }>;
      for (const sdk of SDK_CHOICES) {
        const { outfile, topInputs, sdkBytes } = await bundleHandler(name, outDir, root, sdk, name === 'ingest' ? largestIngest : undefined);
        bundles[name][sdk] = { outfile, built: built(outfile, topInputs, sdkBytes) };
      }
    }

    // Only what the function environment has: no inherited NODE_OPTIONS (tsx's loader), source maps on.
    const baseEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, NODE_OPTIONS: '--enable-source-maps', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
    const sdkEnv: NodeJS.ProcessEnv = { ...baseEnv, NODE_PATH: join(root, 'node_modules') };
    const kinds = [
      { key: 'bare', script: BARE_SCRIPT, env: baseEnv },
      ...HANDLERS.flatMap((name) => [
        { key: `${name}:stub`, script: requireScript(bundles[name].external.outfile, true), env: baseEnv },
        { key: `${name}:sdk`, script: requireScript(bundles[name].external.outfile, false), env: sdkEnv },
        // No NODE_PATH: a bundle that still needed a module from node_modules would fail here.
        { key: `${name}:bundled`, script: requireScript(bundles[name].bundled.outfile, false), env: baseEnv },
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
    const overBare = (key: string, series = walls) => round(median(series.get(key)!.map((value, i) => value - series.get('bare')![i])), 1);
    const requireOf = (key: string) => round(median(requires.get(key)!), 1);
    const result = {} as Record<HandlerName, BundleResult>;
    for (const name of HANDLERS) {
      result[name] = {
        ...(name === 'ingest' ? { provider: largestIngest, perProviderBytes } : {}),
        external: bundles[name].external.built,
        bundled: bundles[name].bundled.built,
        initOverBareMs: overBare(`${name}:stub`),
        initOverBareWithSdkMs: overBare(`${name}:sdk`),
        initOverBareBundledMs: overBare(`${name}:bundled`),
        cpuOverBareMs: overBare(`${name}:stub`, cpus),
        cpuOverBareWithSdkMs: overBare(`${name}:sdk`, cpus),
        cpuOverBareBundledMs: overBare(`${name}:bundled`, cpus),
        requireMs: requireOf(`${name}:stub`),
        requireWithSdkMs: requireOf(`${name}:sdk`),
        requireBundledMs: requireOf(`${name}:bundled`),
      };
    }
    return {
      runs,
      bareMs: round(bareMs, 1),
      bareCpuMs: round(median(cpus.get('bare')!), 1),
      esbuild: { ...ESBUILD_OPTIONS, external: EXTERNAL },
      pinnedSdk: pinnedSdk(root),
      bundles: result,
    };
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}
