import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitFor } from '../../local/engines.ts';
import { readRuntimeInfo, type RuntimeInfo } from '../../local/pipeline.ts';
import { secretsFor } from '../providers/index.ts';

/** The repository root: commands run from here as a user would. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * fetch for a control request to one of the local runtime's servers (a simulator's routes), sent
 * once more if the kept-alive connection it went out on was closed under it. A test's spawnSync
 * (pipeline.run) blocks this process's timers past the server's keep-alive timeout (5 s), so undici
 * can hand the next request a socket the server has already closed: "other side closed". The
 * request never reached the server then, and the control routes are idempotent (GET, PUT, and POSTs
 * that set an answer), so sending it again is what the test meant.
 */
export async function controlFetch(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (error) {
    const code = (error as { cause?: { code?: string } }).cause?.code;
    if (code !== 'UND_ERR_SOCKET' && code !== 'ECONNRESET') throw error;
    return fetch(url, init);
  }
}

/** Secrets for tests (test kits, tagged 'test'): distinct from the development ones, status endpoints on loopback. */
export function testSecrets(simulatorPort: number) {
  return secretsFor('test', { statusEndpoint: `http://127.0.0.1:${simulatorPort}`, asks: true });
}

export interface StartedPipeline {
  readonly info: RuntimeInfo;
  readonly dataDir: string;
  readonly secretsFile: string;
  readonly secrets: ReturnType<typeof testSecrets>;
  readonly child: ChildProcess;
  /** Every line the pipeline printed so far (stdout and stderr). */
  readonly output: string[];
  /** What the pipeline printed on stdout alone so far, as it came. */
  stdoutText(): string;
  /**
   * Run `npm run -s <script> -- <args> --data-dir <dataDir>` (or `options.dataDir`) and return its exit code and output;
   * `silent: false` runs it without -s, as a user who forgot it would.
   */
  run(script: CommandScript, args: string[], options?: RunOptions): { status: number | null; stdout: string; stderr: string };
  /** Stop with SIGINT (Ctrl-C), as a user would; resolves with the exit code. Removes the data folder unless `keepData`. */
  stop(options?: { keepData?: boolean }): Promise<number | null>;
  /** SIGKILL the whole process group (npm, node, DynamoDB Local): no shutdown code runs. The data folder stays. */
  kill(): Promise<void>;
}

/** The npm scripts a user runs against a running pipeline. */
export type CommandScript = 'send' | 'inspect' | 'redrive' | 'reprocess' | 'expect' | 'events';

export interface RunOptions {
  /** Pass npm's -s (no "> package@version script" header on stdout). @default true */
  readonly silent?: boolean;
  /** Environment variables added to (or, when undefined, removed from) the test's own. */
  readonly env?: Record<string, string | undefined>;
  /** The --data-dir passed (a folder holding a runtime.json of its own). @default the pipeline's */
  readonly dataDir?: string;
}

/** The test's environment with `changes` applied; NODE_NO_WARNINGS keeps Node's own warnings out of the output. */
export function commandEnv(changes: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_NO_WARNINGS: '1' };
  for (const [name, value] of Object.entries(changes)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

export interface StartOptions {
  readonly extraArgs?: readonly string[];
  /** A data folder from an earlier run (not emptied): its `data/` is reused. @default a new temporary folder */
  readonly dataDir?: string;
  /** The secrets file's content. @default testSecrets(), with --simulators */
  readonly secrets?: Record<string, Record<string, unknown>>;
  /** Pass --simulators with the secrets file. @default true */
  readonly simulators?: boolean;
}

/** Start `npm start` as a child process on free ports with a test secrets file and an empty data folder. */
export async function startLocalPipeline(extraArgsOrOptions: string[] | StartOptions = []): Promise<StartedPipeline> {
  const options: StartOptions = Array.isArray(extraArgsOrOptions) ? { extraArgs: extraArgsOrOptions } : extraArgsOrOptions;
  const reused = options.dataDir !== undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'callback-gateway-e2e-'));
  const secrets = options.secrets ?? testSecrets(await freePort());
  const secretsFile = join(dataDir, 'secrets.json');
  writeFileSync(secretsFile, JSON.stringify(secrets));
  // Port 0: the pipeline binds a free port itself and names it in runtime.json. A port picked here
  // and handed over could be taken before the pipeline binds it (by another listener: a restarted
  // pipeline's own engines bind ports in those same seconds).
  const child = spawn(
    'npm',
    [
      'start', '--silent', '--', '--port', '0', '--data-dir', join(dataDir, 'data'), '--secrets', secretsFile,
      ...(options.simulators === false ? [] : ['--simulators']), ...(reused ? [] : ['--fresh']), '--log-format', 'json', ...(options.extraArgs ?? []),
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, NODE_NO_WARNINGS: '1' } },
  );
  const output: string[] = [];
  const collect = (chunk: Buffer) => output.push(...chunk.toString().split('\n').filter(Boolean));
  let stdoutText = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdoutText += chunk.toString()));
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve((exitCode = code))));

  await waitFor(
    'the local pipeline banner',
    async () => {
      if (exitCode !== undefined) throw new Error(`npm start exited with ${exitCode}:\n${output.join('\n')}`);
      return output.some((line) => line.includes('Callback gateway running locally'));
    },
    60_000,
  );
  const info = readRuntimeInfo(join(dataDir, 'data'));
  if (!info) throw new Error('runtime.json missing after start');

  return {
    info,
    dataDir,
    secretsFile,
    secrets,
    child,
    output,
    stdoutText: () => stdoutText,
    run(script, args, runOptions = {}) {
      const silent = runOptions.silent === false ? [] : ['--silent'];
      const result = spawnSync('npm', ['run', ...silent, script, '--', ...args, '--data-dir', runOptions.dataDir ?? join(dataDir, 'data')], {
        cwd: ROOT,
        encoding: 'utf8',
        env: commandEnv(runOptions.env),
        timeout: 60_000,
      });
      return { status: result.status, stdout: result.stdout, stderr: result.stderr };
    },
    async stop(stopOptions = {}) {
      if (exitCode === undefined) {
        // Ctrl-C in a terminal signals the whole foreground process group.
        process.kill(-child.pid!, 'SIGINT');
        const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 20_000);
        await exited;
        clearTimeout(timer);
      }
      if (!stopOptions.keepData) rmSync(dataDir, { recursive: true, force: true });
      return exitCode ?? null;
    },
    async kill() {
      if (exitCode === undefined) {
        process.kill(-child.pid!, 'SIGKILL');
        await exited;
      }
    },
  };
}

/** Pids of DynamoDB Local processes using a data folder (to prove none is left behind). */
export function javaProcessesFor(dataDir: string): number[] {
  const result = spawnSync('pgrep', ['-f', `DynamoDBLocal.jar.*${dataDir}`], { encoding: 'utf8' });
  return result.stdout.split('\n').filter(Boolean).map(Number);
}
