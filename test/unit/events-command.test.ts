import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { BusEvent } from '../../local/event-bus.ts';
import { REPO_ROOT as ROOT } from '../../lib/gateway-function.ts';

/**
 * `npm run events` on a bus file of its own (no pipeline needed): the command reads
 * `<data-dir>/events.jsonl` as `npm start`'s local bus writes it, one event per line.
 */

const dataDirs: string[] = [];
after(() => {
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'events-command-'));
  dataDirs.push(dir);
  return dir;
}

function event(n: number): BusEvent {
  return {
    source: 'callback-gateway',
    'detail-type': 'Callback Status Changed',
    time: `2026-12-01T10:00:0${n}.000Z`,
    detail: {
      eventId: String(n).padStart(32, '0'), provider: 'temboplus', subjectId: `REF-${n}`, status: 'SUBMITTED', outcome: 'pending', terminal: false,
      statusAt: null, previous: null, version: 1, changedAt: `2026-12-01T10:00:0${n}.000Z`,
    },
  };
}

const line = (n: number) => `${JSON.stringify(event(n))}\n`;

/** The command run to its end (no --follow). */
function run(dir: string, args: string[]) {
  const env = { ...process.env };
  delete env.CALLBACK_GATEWAY_DATA_DIR;
  return spawnSync(process.execPath, ['--import', 'tsx', 'local/events.ts', '--data-dir', dir, ...args], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
}

describe('npm run events', { timeout: 120_000 }, () => {
  test('an argument that is not a flag (a provider without --provider) is a usage error: exit 2, nothing on stdout', () => {
    // prepare
    const dir = dataDir();
    writeFileSync(join(dir, 'events.jsonl'), line(1));

    // act
    const result = run(dir, ['--json', 'identomat']);

    // assess: not every provider's events, as if the argument had not been given
    assert.equal(result.status, 2, result.stdout);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /unexpected argument "identomat"/);
    assert.match(result.stderr, /--provider P/);
  });
});
