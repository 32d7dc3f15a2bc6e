import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { BusEvent } from '../../local/event-bus.ts';
import { waitFor } from '../../local/engines.ts';
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
  // Run as a user runs it, not as a child of `npm test`: npm's variables would add its header note.
  delete env.npm_lifecycle_event;
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

  test('a readable line masks a phone number in a sender-chosen subject id and status, as inspect and the log lines do; --json prints the event as published', () => {
    // prepare: a TemboPlus partnerReference (the partner chooses it) and a free-text status that carry a number
    const dir = dataDir();
    const published = event(1);
    Object.assign(published.detail, { subjectId: 'PR-255712345678', status: 'PAID_TO_255712345678' });
    // A TeleSign reference id is TeleSign's own hex id: left readable, as in a log line.
    const telesign = event(2);
    Object.assign(telesign.detail, { provider: 'telesign', subjectId: '0B592236867653F629C09E3B8237D4C4', status: '200' });
    writeFileSync(join(dir, 'events.jsonl'), `${JSON.stringify(published)}\n${JSON.stringify(telesign)}\n`);

    // act
    const text = run(dir, []);
    const json = run(dir, ['--json']);

    // assess
    assert.equal(text.status, 0, text.stderr);
    assert.ok(!text.stdout.includes('255712345678') && !text.stdout.includes('5712345678'), text.stdout);
    assert.match(text.stdout, /PR-\*+678 /);
    assert.match(text.stdout, /PAID_TO_\*+678 \(pending\)/);
    assert.match(text.stdout, / 0B592236867653F629C09E3B8237D4C4 /);
    assert.deepEqual((JSON.parse(json.stdout) as BusEvent[]).map((each) => each.detail.subjectId), ['PR-255712345678', '0B592236867653F629C09E3B8237D4C4']);
  });

  test("a readable line of a change of the status's detail alone shows the detail, masked; a change of status does not", () => {
    // prepare: eSMS's 5 counting 1, then 2 of 3 receivers (same status and outcome)
    const dir = dataDir();
    const esms = (n: number, sent: string, previous: { status: string; outcome: string } | null) => {
      const published = event(n);
      Object.assign(published.detail, {
        provider: 'esms', subjectId: 'SMS-1', status: '5', outcome: 'unknown', terminal: true, previous,
        statusDetail: { SendSuccess: sent, TotalReceiver: '3', inference: 'not-all-counted', note: 'to 84901888484' }, version: n,
      });
      return published;
    };
    const first = esms(1, '1', null);
    const second = esms(2, '2', { status: '5', outcome: 'unknown' });
    writeFileSync(join(dir, 'events.jsonl'), `${JSON.stringify(first)}\n${JSON.stringify(second)}\n`);

    // act
    const text = run(dir, []);

    // assess
    assert.equal(text.status, 0, text.stderr);
    const [one, two] = text.stdout.trim().split('\n');
    assert.ok(!one.includes('SendSuccess'), one);
    assert.match(two, /5 \(unknown\) → 5 \(unknown\) \[final\] \{SendSuccess=2 TotalReceiver=3 inference=not-all-counted note=to \*+484\}/);
    assert.ok(!two.includes('901888484'), two);
  });

  test("a readable line shows a sender's control characters as \\u escapes: no escape of its own reaches the terminal, no line break", () => {
    // prepare: a Standard Webhooks type (the sender's text) that retitles the terminal, clears a line and starts a forged one
    const dir = dataDir();
    const published = event(1);
    Object.assign(published.detail, { provider: 'standard-webhooks', subjectId: 'alpha/msg_\u001b[2Kx', status: '\u001b]0;owned\u0007\u009b2J\n2026-12-01T10:00:09.000Z  status  telesign' });
    writeFileSync(join(dir, 'events.jsonl'), `${JSON.stringify(published)}\n`);

    // act
    const text = run(dir, []);

    // assess: one line, every control character written as an escape
    assert.equal(text.status, 0, text.stderr);
    assert.equal(text.stdout.trimEnd().split('\n').length, 1, JSON.stringify(text.stdout));
    const controls = [...text.stdout.trimEnd()].filter((char) => char.charCodeAt(0) < 0x20 || (char.charCodeAt(0) >= 0x7f && char.charCodeAt(0) <= 0x9f));
    assert.deepEqual(controls, [], JSON.stringify(text.stdout));
    assert.ok(text.stdout.includes('alpha/msg_\\u001b[2Kx'), text.stdout);
    assert.ok(text.stdout.includes('\\u001b]0;owned\\u0007\\u009b2J\\u000a2026-12-01T10:00:09.000Z'), text.stdout);
  });

  test('a line that is JSON but not an event (an edited or damaged file) is skipped with a note, as a line that is not JSON is: no stack trace, the events after it printed', () => {
    // prepare: between two events, JSON lines that are not events, and events whose fields are not text
    const dir = dataDir();
    const numbers = event(2);
    Object.assign(numbers.detail, { subjectId: 7, status: { code: 1 } });
    const odd = ['null', '{}', '"text"', '[1]', JSON.stringify(numbers)];
    writeFileSync(join(dir, 'events.jsonl'), `${line(1)}${odd.map((each) => `${each}\n`).join('')}${line(3)}`);

    // act
    const text = run(dir, []);
    const json = run(dir, ['--json']);

    // assess: the events printed, each line that is not one said on stderr; --json one array of the events
    assert.equal(text.status, 0, text.stderr);
    assert.doesNotMatch(text.stderr, /TypeError|\n +at /);
    const printed = text.stdout.trim().split('\n');
    assert.deepEqual(printed.map((each) => /REF-\d|\b7\b/.exec(each)?.[0]), ['REF-1', '7', 'REF-3'], text.stdout);
    assert.equal(text.stderr.trim().split('\n').filter((each) => each.includes('not an event')).length, 4, text.stderr);
    assert.equal(json.status, 0, json.stderr);
    assert.deepEqual((JSON.parse(json.stdout) as BusEvent[]).map((each) => each.detail.eventId), [event(1), numbers, event(3)].map((each) => each.detail.eventId));
  });

  test('readable lines put the subject in one column whatever the provider, standard-webhooks (the longest id) included', () => {
    // prepare: a provider id longer than the others (standard-webhooks) between two shorter ones
    const dir = dataDir();
    const events = [event(1), event(2), event(3)];
    Object.assign(events[1].detail, { provider: 'standard-webhooks', subjectId: 'billing/in_1', status: 'invoice.paid' });
    Object.assign(events[2].detail, { provider: 'esms', subjectId: 'SMS-3' });
    writeFileSync(join(dir, 'events.jsonl'), events.map((each) => `${JSON.stringify(each)}\n`).join(''));

    // act
    const result = run(dir, []);

    // assess: each subject id starts where the others do
    assert.equal(result.status, 0, result.stderr);
    const lines = result.stdout.trim().split('\n');
    const starts = lines.map((each, at) => each.indexOf(` ${['REF-1', 'billing/in_1', 'SMS-3'][at]} `));
    assert.ok(starts.every((start) => start > 0), result.stdout);
    assert.deepEqual(starts, [starts[0], starts[0], starts[0]], result.stdout);
  });

  for (const args of [[], ['--json'], ['--follow']]) {
    test(`events.jsonl that is a folder${args.length ? ` (${args.join(' ')})` : ''}: one line saying so, exit 1, no stack trace`, () => {
      // prepare
      const dir = dataDir();
      mkdirSync(join(dir, 'events.jsonl'));

      // act
      const result = run(dir, args);

      // assess
      assert.equal(result.status, 1, result.stderr);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      assert.match(result.stderr, /events\.jsonl is not a file/);
      assert.doesNotMatch(result.stderr, /EISDIR|\n\s+at /);
      // With --json the failure is the document, as every --json command prints one.
      assert.deepEqual(args.includes('--json') ? JSON.parse(result.stdout) : result.stdout, args.includes('--json') ? { error: result.stderr.trim() } : '');
    });
  }

  /** A follower (`--follow --json`) of the file: what it printed, and how to stop it (Ctrl-C). */
  function follow(dir: string) {
    const env = { ...process.env };
    delete env.CALLBACK_GATEWAY_DATA_DIR;
    const follower = spawn(process.execPath, ['--import', 'tsx', 'local/events.ts', '--follow', '--json', '--data-dir', dir], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const seen = { out: '', err: '' };
    follower.stdout.on('data', (chunk: Buffer) => (seen.out += chunk.toString()));
    follower.stderr.on('data', (chunk: Buffer) => (seen.err += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => follower.once('exit', resolve));
    return {
      seen,
      printed: () => seen.out.split('\n').filter(Boolean).map((each) => (JSON.parse(each) as BusEvent).detail.eventId),
      async stop() {
        follower.kill('SIGINT');
        return exited;
      },
    };
  }

  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  // The bus opens again after a crash cut its last line short: it removes that unfinished line
  // (local/event-bus.ts), then appends what it publishes next. A follower may look in between, or
  // only once the next event is written.
  for (const [when, betweenMs] of [['seen before the next event is written', 600], ['the next event already written', 0]] as const) {
    test(`--follow --json: an unfinished last line removed (npm start does so after a crash), ${when}: each event printed once`, async () => {
      // prepare: two events, and the start of a third whose write a crash cut short
      const dir = dataDir();
      const file = join(dir, 'events.jsonl');
      writeFileSync(file, line(1) + line(2) + line(3).slice(0, 40));
      const follower = follow(dir);
      try {
        await waitFor('the follower printed the two whole events', async () => follower.printed().length === 2, 30_000, 50);

        // act
        truncateSync(file, Buffer.byteLength(line(1) + line(2)));
        if (betweenMs > 0) await pause(betweenMs);
        appendFileSync(file, line(3));
        await waitFor('the follower printed the third event', async () => follower.seen.out.includes(event(3).detail.eventId) || follower.seen.err.includes('not JSON'), 30_000, 50);
        await pause(600);
      } finally {
        assert.equal(await follower.stop(), 0, follower.seen.err);
      }

      // assess: each event once, in the order published
      assert.deepEqual(follower.printed(), [1, 2, 3].map((n) => event(n).detail.eventId), `stdout:\n${follower.seen.out}\nstderr:\n${follower.seen.err}`);
      assert.doesNotMatch(follower.seen.err, /not JSON|started anew/);
      assert.equal(readFileSync(file, 'utf8'), line(1) + line(2) + line(3));
    });
  }
});
