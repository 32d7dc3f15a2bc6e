import { Worker } from 'node:worker_threads';
import type { ReconcilePolicy } from '../functions/core/reconcile.ts';
import type { LogWrite } from '../functions/handlers/dependencies.ts';
import { createLogger, type LogLevel } from '../functions/shared/log.ts';

/**
 * The worker side of `npm start` (the SQS poller in front of the worker handler, and the sweep's
 * timer) runs in a worker thread of its own, as the worker and the sweep are functions of their
 * own on AWS: a batch that waits on a status endpoint or burns CPU never holds up the thread that
 * answers callbacks.
 *
 * A thread rather than a child process:
 * - kill -9: there is one process, so a kill ends the worker with everything else, as a crash of
 *   the machine would; a child process would outlive it, polling the queue, unless watched.
 * - crash isolation: an exception that escapes the worker ends its thread only; the HTTP side keeps
 *   answering and a new thread is started, as Lambda starts a new execution environment. What the
 *   dead thread had received comes back after the visibility timeout.
 * - startup: no second Node and loader to boot, only the modules to load.
 * - logs: each line is posted to the HTTP side, which writes it with the same `write` (pretty or
 *   json); the thread posts `stopped` only after its last line, and messages arrive in order, so
 *   nothing is lost on stop.
 *
 * Everything the thread needs crosses as plain data (`WorkerThreadSettings`); it builds its own
 * clients and dependencies with functions/handlers/dependencies.ts, as the Lambda does.
 */

export interface WorkerThreadSettings {
  readonly dynamodbEndpoint: string;
  readonly sqsEndpoint: string;
  readonly tableName: string;
  readonly queueUrl: string;
  readonly queueArn: string;
  /** The secrets the pipeline runs with, read by the worker as the HTTP side reads them. */
  readonly secretsFile: string;
  readonly secretCacheSeconds: number;
  readonly retryBaseSeconds: number;
  readonly confirmTimeoutMs?: number;
  readonly reconcile: ReconcilePolicy;
  /** Seconds between sweeps for due re-checks. */
  readonly sweepPeriodSeconds: number;
}

/** What the thread tells the HTTP side. */
export type FromWorkerThread =
  | { readonly type: 'log'; readonly line: string; readonly level: LogLevel }
  | { readonly type: 'ready' }
  | { readonly type: 'stopped' };

/** What the HTTP side tells the thread. */
export type ToWorkerThread = { readonly type: 'stop' };

export interface WorkerThread {
  /** Resolves once the thread polls the queue; rejects if it died before. */
  readonly ready: Promise<void>;
  /** Finish the batches in flight and the sweep under way, forward the last log lines, end the thread. */
  stop(): Promise<void>;
}

const ENTRY = new URL('./worker-entry.ts', import.meta.url);
/** After a crash, wait this long before starting a new thread (a crash at start does not spin). */
const RESTART_DELAY_MS = 1_000;
/** How long the stop waits for the in-flight batches before ending the thread regardless. */
const STOP_GRACE_MS = 12_000;

const stdoutWrite: LogWrite = (line) => void process.stdout.write(`${line}\n`);

/** One thread: `ready` resolves once it polls the queue, rejects if it dies before; a later death is a crash. */
function launch(settings: WorkerThreadSettings, write: LogWrite, onCrash: (error: Error) => void) {
  const thread = new Worker(ENTRY, { workerData: settings });
  let started = false;
  let stopping = false;
  let dead = false;
  let stopped: (() => void) | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    const died = (error: Error) => {
      if (dead) return; // an uncaught error is followed by the exit
      dead = true;
      stopped?.();
      if (!started) reject(error);
      else if (!stopping) onCrash(error);
    };
    thread.on('message', (message: FromWorkerThread) => {
      if (message.type === 'log') write(message.line, message.level);
      else if (message.type === 'ready') {
        started = true;
        resolve();
      } else stopped?.();
    });
    thread.once('error', died);
    thread.once('exit', (code) => died(new Error(`the worker thread exited (code ${code})`)));
  });
  ready.catch(() => undefined);
  return {
    ready,
    async stop() {
      stopping = true;
      if (dead) return;
      const done = new Promise<void>((resolve) => (stopped = resolve));
      thread.postMessage({ type: 'stop' } satisfies ToWorkerThread);
      const grace = new Promise<void>((resolve) => setTimeout(resolve, STOP_GRACE_MS).unref());
      await Promise.race([done, grace]);
      // Every log line was posted before `stopped`; what is left of the thread can go at once.
      await thread.terminate();
    },
  };
}

/** Start the worker thread; one that dies after it was ready is replaced, logged as an error. */
export function startWorkerThread(settings: WorkerThreadSettings, write: LogWrite = stdoutWrite): WorkerThread {
  const log = createLogger({ service: 'worker', write });
  let stopping = false;
  let restartTimer: NodeJS.Timeout | undefined;
  let current: ReturnType<typeof launch>;
  const onCrash = (error: Error) => {
    if (stopping) return;
    log.error('worker thread crashed; starting a new one (its records come back after the visibility timeout)', { error: error.message });
    restartTimer = setTimeout(() => {
      current = launch(settings, write, onCrash);
      current.ready.catch(onCrash); // died again before it polled: try again

    }, RESTART_DELAY_MS);
  };
  current = launch(settings, write, onCrash);
  return {
    ready: current.ready,
    async stop() {
      stopping = true;
      clearTimeout(restartTimer);
      await current.stop();
    },
  };
}
