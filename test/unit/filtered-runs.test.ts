import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../../lib/gateway-function.ts';

/**
 * A run narrowed with --test-name-pattern leaves nothing in the OS temporary folder and ends at
 * once. Suites that made their folders (or started a process) as the file loaded left them behind
 * whenever every one of their tests was filtered out, since the suite's after() then never runs.
 */

/** Suites that made a folder in the temporary folder of their own. */
const FILES = ['test/unit/cli.test.ts', 'test/e2e/deployed-bundles.test.ts'];

/** What tsx and Node cache in the temporary folder: theirs, not a test's. */
const CACHES = /^(?:tsx-\d+|node-compile-cache)$/;

for (const file of FILES) {
  test(`${file}, every test filtered out: no folder left behind, done within 60 s`, async (t) => {
    // prepare: a temporary folder of the run's own
    const temp = mkdtempSync(join(tmpdir(), 'filtered-run-'));
    t.after(() => rmSync(temp, { recursive: true, force: true }));
    // Without the runner's NODE_TEST_CONTEXT, which makes a nested `node --test` report to this run instead of running the file.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;

    // act
    const run = await new Promise<{ error: Error | null; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        ['--import', 'tsx', '--test', '--test-reporter=dot', '--test-name-pattern=^no test has this name$', file],
        { cwd: REPO_ROOT, env: { ...env, TMPDIR: temp }, encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' },
        (error, _stdout, stderr) => resolve({ error, stderr }),
      ),
    );

    // assess
    assert.equal(run.error, null, run.stderr);
    assert.deepEqual(readdirSync(temp).filter((name) => !CACHES.test(name)), []);
  });
}

/**
 * A suite that starts a server in its file's before(): with every test filtered out, node:test ran
 * the file's after() without waiting for before(), which then started the server after the stop
 * and kept the run alive for ever (test/support/suite-resource.ts).
 */
const STARTS_A_SERVER = 'test/integration/local-sqs.test.ts';

test(`${STARTS_A_SERVER}, every test filtered out: the run ends, nothing left behind`, async (t) => {
  // prepare
  const temp = mkdtempSync(join(tmpdir(), 'filtered-run-'));
  t.after(() => rmSync(temp, { recursive: true, force: true }));
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;

  // act: a generous bound, on a busy machine; the run that hung never ended at all. In a process
  // group of its own, so that a run that does not end is killed with the file's process under it.
  const run = await new Promise<{ code: number | null; timedOut: boolean; stderr: string }>((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-reporter=dot', '--test-name-pattern=^no test has this name$', STARTS_A_SERVER],
      { cwd: REPO_ROOT, env: { ...env, TMPDIR: temp }, stdio: ['ignore', 'ignore', 'pipe'], detached: true },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      process.kill(-child.pid!, 'SIGKILL');
    }, 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, timedOut, stderr });
    });
  });

  // assess
  assert.equal(run.timedOut, false, 'the run did not end within 120 s');
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(readdirSync(temp).filter((name) => !CACHES.test(name)), []);
});
