import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DETAIL_TYPES } from '../../functions/core/publish.ts';
import { getProvider } from '../../functions/providers/index.ts';
import { maskPhoneNumbers } from '../../functions/shared/log.ts';
import { freePort, waitFor } from '../../local/engines.ts';
import type { BusEvent } from '../../local/event-bus.ts';
import { authenticRequest, findSample } from '../../local/samples.ts';
import { commandEnv, javaProcessesFor, ROOT, startLocalPipeline, type StartedPipeline } from '../support/e2e-pipeline.ts';
import { kitOf, secretsFor } from '../providers/index.ts';
import { leaks, standingNumber } from '../support/log-leaks.ts';

/**
 * Events out on the local runtime: `npm start` reads DynamoDB Local's stream and publishes to its
 * local bus (`<data-dir>/events.jsonl`); `npm run events` shows what was published. Callbacks go in
 * over HTTP, as a provider sends them; what the bus holds is read back through the command.
 */

/** TeleSign's Get Status stays off (it is opt-in), so a TeleSign status is the callback's alone: the changes are exactly the ones sent. */
async function eventSecrets() {
  return secretsFor('test', { statusEndpoint: `http://127.0.0.1:${await freePort()}`, asks: false });
}

async function send(pipeline: StartedPipeline, providerId: string, content: { body?: Buffer; query?: string }) {
  const provider = getProvider(providerId);
  const request = authenticRequest(provider, pipeline.secrets[providerId], content);
  const response = await fetch(`${pipeline.info.baseUrl}${request.path}`, {
    method: request.method,
    headers: request.headers,
    ...(request.body ? { body: request.body } : {}),
  });
  assert.equal(response.status, 200, `${providerId}: ${await response.text()}`);
}

function teleSignBody(referenceId: string, code: number, updatedOn: string): Buffer {
  return Buffer.from(JSON.stringify({ reference_id: referenceId, status: { code, description: 'x', updated_on: updatedOn }, errors: [], sub_resource: 'sms' }));
}

/** What the bus's file holds now (read directly: the waits poll it). */
function published(pipeline: StartedPipeline): BusEvent[] {
  const file = pipeline.info.eventsFile;
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as BusEvent);
}

/** An event's detail, field by field. */
const detailOf = (event: BusEvent) => event.detail as unknown as Record<string, unknown>;

const about = (subjectId: string) => (event: BusEvent) => event.detail.subjectId === subjectId;

/**
 * Wait until the bus holds `count` events about a subject; a busy machine stretches the pipeline,
 * hence the generous bound. On a time-out the error says what the bus did hold about it.
 */
async function waitForEvents(pipeline: StartedPipeline, subjectId: string, count: number, timeoutMs = 60_000): Promise<BusEvent[]> {
  let found: BusEvent[] = [];
  try {
    await waitFor(`${count} events about ${subjectId}`, async () => (found = published(pipeline).filter(about(subjectId))).length >= count, timeoutMs, 100);
  } catch (error) {
    const had = found.map((event) => `${event['detail-type']} ${String(detailOf(event).status ?? '')}`).join(', ');
    throw new Error(`${(error as Error).message}; the bus had ${found.length}: [${had}]`, { cause: error });
  }
  return found;
}

/**
 * Worker lines saying a callback about this subject was handled (stored or found a duplicate); lines
 * name it masked, as an id its provider made up (every subject here is TeleSign's, eSMS's or Identomat's).
 */
function workerLinesAbout(pipeline: StartedPipeline, subjectId: string): Record<string, unknown>[] {
  const named = maskPhoneNumbers(subjectId, { mintedId: true });
  return pipeline.output
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.service === 'worker' && line.message === 'stored' && line.subjectId === named);
}

/**
 * A barrier: a change made after everything sent so far, waited for on the bus. The table's stream
 * is read in order (DynamoDB Local's stream has one shard), so once its event is out, every earlier
 * change has been read and published (or published nothing).
 */
async function barrier(pipeline: StartedPipeline, name: string): Promise<void> {
  const ref = `BARRIER${name.toUpperCase().replace(/[^A-Z0-9]/g, '')}`.padEnd(32, '0').slice(0, 32);
  await send(pipeline, 'telesign', { body: teleSignBody(ref, 200, '2026-01-01T00:00:00Z') });
  await waitForEvents(pipeline, ref, 1);
}

/** `npm run events` with these arguments: its JSON array when `--json`. */
function eventsJson(pipeline: StartedPipeline, args: string[] = []): BusEvent[] {
  const result = pipeline.run('events', ['--json', ...args]);
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout) as BusEvent[];
}

describe('events out on the local runtime (npm start)', { timeout: 240_000 }, () => {
  let pipeline: StartedPipeline;

  before(async () => {
    pipeline = await startLocalPipeline({ secrets: await eventSecrets() });
  });

  after(async () => {
    const dataDir = pipeline?.dataDir;
    await pipeline?.stop();
    if (dataDir) assert.deepEqual(javaProcessesFor(dataDir), [], 'DynamoDB Local left running');
  });

  test('the banner names the events file and how to watch it', () => {
    const banner = pipeline.output.join('\n');
    assert.ok(banner.includes(pipeline.info.eventsFile), banner);
    assert.match(banner, /npm run events -- --follow/);
  });

  test("the banner's commands name its data folder, so that followed as printed they reach this pipeline", () => {
    const banner = pipeline.output.join('\n');
    const dataDir = join(pipeline.dataDir, 'data');
    assert.ok(banner.includes(`npm run events -- --follow --data-dir ${dataDir})`), banner);
    assert.ok(banner.includes(`npm run send -- telesign --data-dir ${dataDir} `), banner);
    assert.ok(banner.includes(`npm run inspect -- --recent 5 --data-dir ${dataDir} `), banner);
    assert.ok(banner.includes(`npm run events -- --data-dir ${dataDir}`), banner);
  });

  test('one event per status change, each with the status before it as previous', async () => {
    // prepare
    const ref = 'E2EEVENTS0000000000000000000290A';

    // act: pending, then delivered, then an older pending that changes nothing
    await send(pipeline, 'telesign', { body: teleSignBody(ref, 290, '2026-01-01T10:00:01Z') });
    await waitForEvents(pipeline, ref, 1);
    await send(pipeline, 'telesign', { body: teleSignBody(ref, 200, '2026-01-01T10:00:05Z') });
    await waitForEvents(pipeline, ref, 2);
    await send(pipeline, 'telesign', { body: teleSignBody(ref, 290, '2026-01-01T10:00:03Z') });
    await waitFor('the late 290 handled', async () => workerLinesAbout(pipeline, ref).length >= 3, 20_000);
    await barrier(pipeline, 'status');

    // assess: through the command, as a user reads them
    const events = eventsJson(pipeline, ['--provider', 'telesign']).filter(about(ref));
    assert.equal(events.length, 2, JSON.stringify(events, null, 2));
    for (const event of events) {
      assert.deepEqual(Object.keys(event).sort(), ['detail', 'detail-type', 'source', 'time']);
      assert.equal(event.source, 'callback-gateway');
      assert.equal(event['detail-type'], DETAIL_TYPES.statusChanged);
    }
    const [first, second] = events.map((event) => detailOf(event));
    assert.equal(first.status, '290');
    assert.equal(first.outcome, 'pending');
    assert.equal(first.previous, null);
    assert.equal(second.status, '200');
    assert.equal(second.outcome, 'succeeded');
    assert.equal(second.terminal, true);
    assert.deepEqual(second.previous, { status: '290', outcome: 'pending' });
    assert.ok(Number(second.version) > Number(first.version), 'versions give the order per subject');
    assert.notEqual(first.eventId, second.eventId);
  });

  test('a callback re-sent with the same bytes (npm run send --repeat 3) publishes no new eventId', async () => {
    // prepare: the sample's subject (the SMSID) and recipient
    const subjectId = '849fe08c19294b02857cf91687021a50250';

    // act
    const sent = pipeline.run('send', ['esms', 'viber', '--repeat', '3']);
    assert.equal(sent.status, 0, sent.stderr);
    assert.equal((sent.stdout.match(/← 200/g) ?? []).length, 3, sent.stdout);
    await waitFor('the three deliveries handled', async () => workerLinesAbout(pipeline, subjectId).length >= 3, 20_000);
    await barrier(pipeline, 'repeat');

    // assess
    const events = eventsJson(pipeline, ['--provider', 'esms']).filter(about(subjectId));
    assert.equal(events.length, 1, JSON.stringify(events, null, 2));
    assert.equal(new Set(events.map((event) => event.detail.eventId)).size, 1);
    assert.equal(detailOf(events[0]).previous, null);
  });

  test('an Identomat one-time password publishes one instruction event, once however often it is delivered', async () => {
    // prepare
    const sample = findSample('identomat', 'one-time-password');
    const session = (JSON.parse(sample.body!.toString()) as { sessionId: string }).sessionId;

    // act: delivered twice (Identomat retries)
    await send(pipeline, 'identomat', sample);
    await send(pipeline, 'identomat', sample);
    await waitFor('both deliveries handled', async () => workerLinesAbout(pipeline, session).length >= 2, 20_000);
    await barrier(pipeline, 'otp');

    // assess
    const events = eventsJson(pipeline, ['--provider', 'identomat']).filter(about(session));
    assert.equal(events.length, 1, JSON.stringify(events, null, 2));
    const [event] = events;
    assert.equal(event['detail-type'], DETAIL_TYPES.instruction);
    const detail = detailOf(event);
    assert.equal(detail.kind, 'one-time-password');
    assert.equal(detail.channel, 'sms');
    assert.equal(detail.destination, '+995512345678');
    assert.equal(detail.text, 'Your code is 6867');
    assert.equal(detail.oneTimeCode, true);
    assert.equal(detail.provider, 'identomat');
  });

  test('npm run events: readable lines, a JSON array oldest first, --follow one object per line as they come', async () => {
    // prepare: a user following in a second terminal (the command itself, not npm, so that its own
    // answer to Ctrl-C is what is seen: npm ends by the signal)
    const follower = spawn(process.execPath, ['--import', 'tsx', 'local/events.ts', '--follow', '--json', '--data-dir', `${pipeline.dataDir}/data`], {
      cwd: ROOT,
      env: commandEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let followed = '';
    let followErr = '';
    follower.stdout.on('data', (chunk: Buffer) => (followed += chunk.toString()));
    follower.stderr.on('data', (chunk: Buffer) => (followErr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => follower.once('exit', resolve));
    // Hex, as TeleSign's reference ids are: the readable lines show an id the provider made up as it is.
    const ref = 'E2EFABCD0000000000000000000000AA';

    try {
      // act
      await waitFor('the follower started', async () => followErr.includes('following'), 20_000);
      // one at a time: sent back to back, both can land in one worker batch, whose records run
      // concurrently, and a 200 stored before the 290 leaves the 290 as a late report (one event)
      await send(pipeline, 'telesign', { body: teleSignBody(ref, 290, '2026-01-01T11:00:00Z') });
      await waitForEvents(pipeline, ref, 1);
      await send(pipeline, 'telesign', { body: teleSignBody(ref, 200, '2026-01-01T11:00:02Z') });
      await waitForEvents(pipeline, ref, 2);
      await waitFor('the follower printed them', async () => followed.split('\n').filter((line) => line.includes(ref)).length === 2, 30_000);
    } finally {
      follower.kill('SIGINT');
    }
    const code = await exited;

    // assess: --follow --json, one object per line, everything published so far then the new ones
    assert.equal(code, 0, followErr);
    const lines = followed.split('\n').filter(Boolean);
    const objects = lines.map((line) => JSON.parse(line) as BusEvent);
    assert.deepEqual(objects, published(pipeline).slice(0, objects.length), 'the same events, in the order published');
    assert.deepEqual(objects.filter(about(ref)).map((event) => detailOf(event).status), ['290', '200']);

    // --json without --follow: one array, oldest first
    const all = eventsJson(pipeline);
    assert.deepEqual(all, published(pipeline));
    const times = all.map((event) => event.time);
    assert.ok(all.length >= 6, `${all.length} events`);
    assert.ok(times.every((time) => typeof time === 'string' && !Number.isNaN(Date.parse(time))));

    // text: one line per event on stdout, instructions without their content
    const text = pipeline.run('events', []);
    assert.equal(text.status, 0, text.stderr);
    const textLines = text.stdout.split('\n').filter(Boolean);
    assert.equal(textLines.length, all.length);
    assert.equal(text.stderr, '');
    const follow = textLines.filter((line) => line.includes(ref));
    assert.equal(follow.length, 2);
    assert.match(follow[1], /status\s+telesign\s+E2EFABCD0+AA {2}290 \(pending\) → 200 \(succeeded\) \[final\] {2}v\d+ {2}[0-9a-f]{32}$/);
    const otp = textLines.find((line) => line.includes('instruction'));
    assert.match(otp ?? '', /one-time-password by sms to \*+678/);
    for (const value of ['6867', '995512345678']) assert.ok(!leaks(text.stdout, value), `"${value}" in npm run events' text`);

    // --provider filters; an unknown one is a usage error
    const identomat = eventsJson(pipeline, ['--provider', 'identomat']);
    assert.ok(identomat.length >= 1 && identomat.every((event) => event.detail.provider === 'identomat'));
    const wrong = pipeline.run('events', ['--provider', 'nobody']);
    assert.equal(wrong.status, 2);
    assert.equal(wrong.stdout, '');
    assert.match(wrong.stderr, /--provider must be one of/);
  });

  // Runs last: by now the pipeline has published status changes, duplicates and an instruction.
  test('no OTP text, link or phone number in any log line of npm start, the publisher\'s included', () => {
    const lines = pipeline.output.filter((line) => line.startsWith('{'));
    assert.ok(lines.some((line) => line.includes('"service":"publisher"')), 'the publisher logged its batches');
    const secretValues = Object.entries(pipeline.secrets).flatMap(([id, secret]) => kitOf(id).credentials(secret));
    const forbidden = [...secretValues, 'Your code is', '6867', '+995512345678', '995512345678', '0901888484'];
    for (const line of lines) {
      for (const value of forbidden) assert.ok(!leaks(line, value), `log line leaks "${value}": ${line}`);
      assert.equal(standingNumber(line), undefined, `possible phone number in: ${line}`);
    }
  });
});

describe('events out through a bus outage, a Ctrl-C and a kill -9', { timeout: 240_000 }, () => {
  test('nothing is lost and nothing repeated: every change is published once the bus is back, across a Ctrl-C', async () => {
    // prepare
    const secrets = await eventSecrets();
    let pipeline = await startLocalPipeline({ secrets });
    const dataDir = pipeline.dataDir;
    const refs = Array.from({ length: 5 }, (_, index) => `E2EOUTAGE${String(index).padStart(23, '0')}`);
    try {
      for (const ref of refs) await send(pipeline, 'telesign', { body: teleSignBody(ref, 290, '2026-01-01T12:00:00Z') });
      for (const ref of refs) await waitForEvents(pipeline, ref, 1);
      const before = published(pipeline);

      // act 1: the bus cannot be written (its file is a folder: refused even to root), and changes keep coming
      const file = pipeline.info.eventsFile;
      renameSync(file, `${file}.held`);
      mkdirSync(file);
      for (const ref of refs) await send(pipeline, 'telesign', { body: teleSignBody(ref, 200, '2026-01-01T12:00:05Z') });
      await waitFor('the changes stored', async () => refs.every((ref) => workerLinesAbout(pipeline, ref).length >= 2), 20_000);
      await waitFor('the publisher failing', async () => pipeline.output.some((line) => line.includes('publish failed')), 20_000);

      // act 2: stopped while the bus is down, the bus back, started again on the same data
      await pipeline.stop({ keepData: true });
      assert.ok(pipeline.output.includes('stopped.'), 'stopped by Ctrl-C, not killed');
      rmdirSync(file);
      renameSync(`${file}.held`, file);
      pipeline = await startLocalPipeline({ secrets, dataDir });
      for (const ref of refs) await waitForEvents(pipeline, ref, 2);
      await barrier(pipeline, 'outage');

      // assess: before the outage, as it was; after it, every change once, with its previous
      const after = published(pipeline);
      assert.deepEqual(after.slice(0, before.length), before, 'what was published before is not published again');
      const ids = after.map((event) => event.detail.eventId);
      assert.equal(new Set(ids).size, ids.length, 'no eventId twice');
      for (const ref of refs) {
        const events = after.filter(about(ref)).map((event) => detailOf(event));
        assert.deepEqual(events.map((detail) => detail.status), ['290', '200'], ref);
        assert.deepEqual(events[1].previous, { status: '290', outcome: 'pending' });
      }
      const failures = pipeline.output.filter((line) => line.includes('publish failed'));
      assert.deepEqual(failures, [], 'the second run published without a failure');
    } finally {
      await pipeline.stop();
      assert.deepEqual(javaProcessesFor(dataDir), [], 'DynamoDB Local left running');
    }
  });

  test('a kill -9 while changes are being published: after a restart every change is on the bus, each eventId once', async () => {
    // prepare
    const secrets = await eventSecrets();
    // Callbacks the killed worker had received come back after the visibility timeout: a short one.
    const visibility = ['--visibility-timeout', '3'];
    let pipeline = await startLocalPipeline({ secrets, extraArgs: visibility });
    const dataDir = pipeline.dataDir;
    const refs = Array.from({ length: 20 }, (_, index) => `E2EKILL${String(index).padStart(25, '0')}`);
    try {
      // act: callbacks acknowledged, the worker and the publisher at work, then no shutdown code at all
      await Promise.all(refs.map((ref) => send(pipeline, 'telesign', { body: teleSignBody(ref, 200, '2026-01-01T13:00:00Z') })));
      await waitFor('the first events out', async () => published(pipeline).some((event) => refs.includes(event.detail.subjectId)), 20_000, 20);
      await pipeline.kill();
      const atKill = published(pipeline).filter((event) => refs.includes(event.detail.subjectId)).length;
      pipeline = await startLocalPipeline({ secrets, dataDir, extraArgs: visibility });
      for (const ref of refs) await waitForEvents(pipeline, ref, 1);
      await barrier(pipeline, 'kill');

      // assess
      const events = published(pipeline);
      const ids = events.map((event) => event.detail.eventId);
      assert.equal(new Set(ids).size, ids.length, 'no eventId twice');
      for (const ref of refs) assert.equal(events.filter(about(ref)).length, 1, ref);
      assert.ok(atKill >= 1, `${atKill} of ${refs.length} were out when it was killed`);
    } finally {
      await pipeline.stop();
      assert.deepEqual(javaProcessesFor(dataDir), [], 'DynamoDB Local left running');
    }
  });
});
