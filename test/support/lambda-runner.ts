/**
 * Runs one Lambda function's bundled asset as the Node.js runtime does, for
 * test/e2e/deployed-bundles.test.ts: started with plain `node` (no tsx: the bundle must run without
 * our TypeScript loader), with the working directory at the asset folder (Lambda's task root) and
 * the function's environment already set by the test. Node strips this file's types itself.
 *
 * Input on stdin, JSON: `{ handler: "index.handler", timeoutSeconds, events: [...], clockOffsetMs? }`.
 * Each event is handed to the handler in turn, in this one process (a warm execution environment
 * after the first), with a Lambda context. One result per event is written to file descriptor 3 as
 * JSON: `{ ok: true, value }` or `{ ok: false, errorType, errorMessage }` (what Lambda reports for
 * a rejected invocation). stdout and stderr are the function's log, as on Lambda.
 *
 * `clockOffsetMs` moves this process's clock forward (Date only): an invocation that happens later,
 * such as a scheduled sweep after a re-check falls due, without the test waiting for it.
 *
 * Imports Node built-ins only: nothing of the project is loaded besides the bundle itself.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

interface Invocation {
  readonly handler: string;
  /** The function's Timeout: what the context's getRemainingTimeInMillis counts down from. */
  readonly timeoutSeconds: number;
  readonly events: readonly unknown[];
  readonly clockOffsetMs?: number;
}

type Result = { ok: true; value: unknown } | { ok: false; errorType: string; errorMessage: string };

const RESULTS_FD = 3;

function shiftClock(offsetMs: number): void {
  const RealDate = Date;
  class ShiftedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(RealDate.now() + offsetMs);
      else super(...(args as [string | number | Date]));
    }
    static override now(): number {
      return RealDate.now() + offsetMs;
    }
  }
  globalThis.Date = ShiftedDate as DateConstructor;
}

/**
 * `module.export` of the Handler setting, loaded from the task root as Lambda loads a CommonJS
 * handler (index.js, index.cjs; an .mjs file is imported).
 */
async function loadHandler(taskRoot: string, setting: string): Promise<(event: unknown, context: unknown) => Promise<unknown>> {
  const dot = setting.lastIndexOf('.');
  if (dot <= 0) throw new Error(`Handler "${setting}" is not <module>.<export>`);
  const [moduleName, exportName] = [setting.slice(0, dot), setting.slice(dot + 1)];
  const file = ['.js', '.cjs', '.mjs'].map((extension) => join(taskRoot, moduleName + extension)).find((candidate) => existsSync(candidate));
  if (!file) throw new Error(`Handler "${setting}": no ${moduleName}.js, .cjs or .mjs in the asset`);
  const loaded = (file.endsWith('.mjs') ? await import(file) : createRequire(file)(file)) as Record<string, unknown>;
  const handler = loaded[exportName];
  if (typeof handler !== 'function') throw new Error(`Handler "${setting}": ${file} exports no function "${exportName}"`);
  return handler as (event: unknown, context: unknown) => Promise<unknown>;
}

/** The context object the Node.js runtime passes (the fields our handlers may read). */
function lambdaContext(timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME ?? 'function';
  return {
    awsRequestId: randomUUID(),
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${process.env.AWS_REGION}:000000000000:function:${functionName}`,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? '128',
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

async function main(): Promise<void> {
  const invocation = JSON.parse(readFileSync(0, 'utf8')) as Invocation;
  if (invocation.clockOffsetMs) shiftClock(invocation.clockOffsetMs);
  let handler: Awaited<ReturnType<typeof loadHandler>> | undefined;
  let initError: unknown;
  try {
    handler = await loadHandler(process.cwd(), invocation.handler);
  } catch (error) {
    initError = error;
  }
  const results: Result[] = [];
  for (const event of invocation.events) {
    try {
      if (!handler) throw initError;
      results.push({ ok: true, value: await handler(event, lambdaContext(invocation.timeoutSeconds * 1000)) });
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      results.push({ ok: false, errorType: failure.name, errorMessage: failure.message });
    }
  }
  writeSync(RESULTS_FD, JSON.stringify(results));
  // Lambda freezes the environment after the response; the SDK's kept-alive sockets would keep this
  // process running. Writes to a pipe are synchronous on Linux, so the log is complete.
  process.exit(0);
}

await main();
