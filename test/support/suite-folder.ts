import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';

/**
 * A folder of its own in the OS temporary folder for the suite (`describe` body) that calls this:
 * named at once, as a suite's table of cases may hold its path, but made in the suite's `before()`
 * and removed in its `after()`. A folder made while the file loads stayed behind, empty, whenever
 * `--test-name-pattern` left none of the suite's tests to run: its hooks then never run.
 */
export function suiteFolder(prefix: string): string {
  const path = join(tmpdir(), `${prefix}${randomBytes(6).toString('hex')}`);
  // Not recursive: a folder already there by that name is an error, as with mkdtemp.
  before(() => mkdirSync(path, { mode: 0o700 }));
  after(() => rmSync(path, { recursive: true, force: true }));
  return path;
}
