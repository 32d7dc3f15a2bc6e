import { after, before } from 'node:test';

/**
 * What a suite (a file, or the `describe` body that calls this) starts in its `before()` and stops
 * in its `after()`: DynamoDB Local, an SQS server, HTTP servers. When `--test-name-pattern` leaves
 * none of a file's tests to run, node:test runs the file's `after()` without waiting for its async
 * `before()`: a stop that looked at what `before()` had set found nothing, and what `before()` then
 * started kept the run alive for ever. Here `after()` first waits for the start to settle (a start
 * that failed was reported by `before()`; `stop` still runs, for what it had started by then).
 */
export function suiteResource(start: () => Promise<unknown>, stop: () => unknown): void {
  let starting: Promise<unknown> | undefined;
  let stopping = false;
  before(() => {
    // An `after()` that ran first has nothing to wait for: start nothing it would not stop.
    if (stopping) return;
    starting = start();
    return starting;
  });
  after(async () => {
    stopping = true;
    if (!starting) return;
    await starting.catch(() => undefined);
    await stop();
  });
}
