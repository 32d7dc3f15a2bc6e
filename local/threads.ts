import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { LogWrite } from '../functions/handlers/dependencies.ts';
import { createLogger, type LogLevel } from '../functions/shared/log.ts';

/**
 * `npm start` runs its parts in worker threads of one process, as AWS runs them apart: the HTTP API
 * and the ingest handlers on the main thread, the worker and the sweep in a thread
 * (local/worker-thread.ts), the SQS-API server and the simulated status endpoints in another
 * (local/services-thread.ts), events out (local/events-thread.ts) and the SMS relay
 * (local/relay-thread.ts) in theirs. A worker batch or a queue request then never waits for an
 * acknowledgement's turn on the event loop, nor an acknowledgement for theirs.
 *
 * Threads rather than child processes:
 * - kill -9: there is one process, so a kill ends every part at once, as a crash of the machine
 *   would; a child process would outlive it (a worker polling the queue) unless something watched.
 * - crash isolation: an exception that escapes a part ends its thread only; the main thread keeps
 *   answering, logs it as an error, and (for the worker) starts a new thread, as Lambda starts a new
 *   execution environment.
 * - startup: no second Node and TypeScript loader to boot, only the part's modules to load.
 * - logs: each line is posted to the main thread, which writes it with the pipeline's `write`
 *   (pretty or json); a thread posts `stopped` after its last line, and messages arrive in order,
 *   so nothing is lost on stop.
 *
 * What a thread needs crosses as plain data (no functions, no clients): it builds its own.
 */

type FromThread<R> =
  | { readonly type: 'log'; readonly line: string; readonly level: LogLevel }
  | { readonly type: 'ready'; readonly info: R }
  | { readonly type: 'stopped' };
type ToThread = { readonly type: 'stop' };

/** What the main thread holds of a running part. */
export interface ThreadPart<R> {
  /** What the part reported once started (its endpoints…); rejects if it died before. */
  readonly ready: Promise<R>;
  /** Let the part finish what it is doing, take its last log lines, end the thread. */
  stop(): Promise<void>;
}

export interface ThreadOptions {
  /** The part's name in the error line written if it crashes. */
  readonly name: string;
  readonly write: LogWrite;
  /** Start a new thread when a started one dies (after a second, and again on each failure). */
  readonly restart?: boolean;
  /** How long a stop waits for the part before ending the thread regardless. @default 12 s */
  readonly stopGraceMs?: number;
}

/** After a crash, wait this long before starting again (a part that keeps failing does not spin). */
const RESTART_DELAY_MS = 1_000;

/** One thread of `entry`: `ready` resolves with what it reported, rejects if it dies before; a later death is a crash. */
function launch<R>(entry: URL, data: unknown, options: ThreadOptions, onCrash: (error: Error) => void) {
  const thread = new Worker(entry, { workerData: data });
  let started = false;
  let stopping = false;
  let dead = false;
  let stopped: (() => void) | undefined;
  const ready = new Promise<R>((resolve, reject) => {
    const died = (error: Error) => {
      if (dead) return; // an uncaught error is followed by the exit
      dead = true;
      stopped?.();
      if (!started) reject(error);
      else if (!stopping) onCrash(error);
    };
    thread.on('message', (message: FromThread<R>) => {
      if (message.type === 'log') options.write(message.line, message.level);
      else if (message.type === 'ready') {
        started = true;
        resolve(message.info);
      } else stopped?.();
    });
    thread.once('error', died);
    thread.once('exit', (code) => died(new Error(`the ${options.name} thread exited (code ${code})`)));
  });
  ready.catch(() => undefined);
  return {
    ready,
    async stop() {
      stopping = true;
      if (dead) return;
      const done = new Promise<void>((resolve) => (stopped = resolve));
      thread.postMessage({ type: 'stop' } satisfies ToThread);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, options.stopGraceMs ?? 12_000)))]);
      clearTimeout(timer);
      // Every log line was posted before `stopped`; what is left of the thread can go at once.
      await thread.terminate();
    },
  };
}

/** Start a part in a thread of its own (`entry` calls `runPart`). */
export function startThreadPart<R>(entry: URL, data: unknown, options: ThreadOptions): ThreadPart<R> {
  const log = createLogger({ service: 'local', write: options.write });
  let stopping = false;
  let restartTimer: NodeJS.Timeout | undefined;
  const onCrash = (error: Error) => {
    if (stopping) return;
    log.error(`the ${options.name} thread crashed${options.restart ? '; starting a new one' : ''}`, { error: error.message });
    if (!options.restart) return;
    restartTimer = setTimeout(() => {
      current = launch<R>(entry, data, options, onCrash);
      current.ready.catch(onCrash); // died again before it was ready: try again
    }, RESTART_DELAY_MS);
  };
  let current = launch<R>(entry, data, options, onCrash);
  return {
    ready: current.ready,
    async stop() {
      stopping = true;
      clearTimeout(restartTimer);
      await current.stop();
    },
  };
}

/** A started part, inside its thread. */
export interface RunningPart<R> {
  /** Reported to the main thread once started. */
  readonly info: R;
  /** Finish what is under way and release everything; the last log lines are written before it resolves. */
  stop(): Promise<void>;
}

/**
 * The thread side: start the part with the data it was given and a `write` that posts each log line
 * to the main thread; stop it when asked.
 */
export function runPart<D, R>(start: (data: D, write: LogWrite) => Promise<RunningPart<R>>): void {
  const port = parentPort;
  if (isMainThread || !port) throw new Error('this module is a thread entry: start it with startThreadPart');
  const post = (message: FromThread<R>) => port.postMessage(message);
  const write: LogWrite = (line, level) => post({ type: 'log', line, level });
  void start(workerData as D, write).then((part) => {
    let stopping = false;
    port.on('message', (message: ToThread) => {
      if (message.type !== 'stop' || stopping) return;
      stopping = true;
      void part.stop().finally(() => post({ type: 'stopped' }));
    });
    post({ type: 'ready', info: part.info });
  }, (error: unknown) => {
    // Ends the thread with the error, which rejects the main thread's `ready`.
    setImmediate(() => {
      throw error;
    });
  });
}
