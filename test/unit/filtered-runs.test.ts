import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
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
