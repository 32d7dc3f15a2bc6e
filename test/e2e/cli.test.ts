import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { keys } from '../../functions/core/pipeline-definition.ts';
import type { QueueMessage } from '../../functions/core/queue-message.ts';
import { providers } from '../../functions/providers/index.ts';
import { maskPhoneNumbers } from '../../functions/shared/log.ts';
import { LOCAL_AWS, waitFor } from '../../local/engines.ts';
import { readRuntimeInfo } from '../../local/pipeline.ts';
import { commandEnv, javaProcessesFor, ROOT, startLocalPipeline, type StartedPipeline } from '../support/e2e-pipeline.ts';

/**
 * The command lines as a user pipes them, through npm, against a running `npm start`: with --json,
 * stdout is one JSON document and nothing else (the whole of it parses); banners, progress and
 * hints are on stderr; NO_COLOR turns colour off on a terminal; a numeric flag out of its range
 * exits 2 naming the flag and the range, before anything is done.
 */

/** Every ANSI colour sequence starts with it. */
const ESC = '\u001b[';

let pipeline: StartedPipeline;
let sqs: SQSClient;
let dynamo: DynamoDBClient;

/** stdout parsed whole: a JSON document followed by anything (a header, a progress line) fails here. */
function wholeJson<T = Record<string, unknown>>(result: { status: number | null; stdout: string; stderr: string }): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch (error) {
    assert.fail(`stdout is not one JSON document (${(error as Error).message}):\n${result.stdout}\n--- stderr:\n${result.stderr}`);
  }
}

async function stateOf(provider: string, subjectId: string) {
  const { Item } = await dynamo.send(
    new GetItemCommand({ TableName: pipeline.info.tableName, Key: { pk: { S: keys.subject(provider, subjectId) }, sk: { S: 'STATE' } }, ConsistentRead: true }),
  );
  return Item;
}

async function queueDepth(url: string): Promise<number> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
  );
  return Number(Attributes.ApproximateNumberOfMessages) + Number(Attributes.ApproximateNumberOfMessagesNotVisible);
}

/** A TeleSign callback as the ingest queues it; `quarantine` as an older schema would have flagged it. */
function telesignMessage(referenceId: string, requestId: string, quarantine?: QueueMessage['quarantine']): QueueMessage {
  const body = JSON.stringify({ reference_id: referenceId, status: { code: 200, updated_on: '2026-02-01T00:00:00Z' } });
  return {
    v: 1,
    provider: 'telesign',
    receivedAt: new Date().toISOString(),
    requestId,
    sourceIp: '127.0.0.1',
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    raw: { body, query: '' },
    ...(quarantine ? { quarantine } : {}),
  };
}

/** `npm run -s <args>` from the repository root, without a running pipeline's data folder. */
function npmRun(args: string[], env: Record<string, string | undefined> = {}) {
  const result = spawnSync('npm', ['run', '--silent', ...args], { cwd: ROOT, encoding: 'utf8', env: commandEnv(env), timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * A second `npm start` on a terminal (a pseudo-terminal from `script`), over the first one's engines
 * so that no second DynamoDB Local starts: pretty logs, --port 0 (any free port). It sends one
 * callback through its own HTTP API so the ingest logs a line, and returns everything the terminal showed.
 */
async function terminalRun(env: Record<string, string | undefined>): Promise<string> {
  const dataDir = mkdtempSync(join(tmpdir(), 'callback-gateway-tty-'));
  const start = [
    'npm', 'run', '-s', 'start', '--', '--port', '0', '--data-dir', dataDir, '--log-format', 'pretty',
    '--secrets', pipeline.info.secretsFile, '--dynamodb-endpoint', pipeline.info.dynamodbEndpoint, '--sqs-endpoint', pipeline.info.sqsEndpoint,
  ];
  const shell = start.map((word) => `'${word.replaceAll("'", `'\\''`)}'`).join(' ');
  // util-linux script takes the command with -c; the BSD one (macOS) after the log file.
  const scriptArgs = process.platform === 'darwin' ? ['-q', '/dev/null', 'sh', '-c', shell] : ['-q', '-f', '-e', '-c', shell, '/dev/null'];
  const child = spawn('script', scriptArgs, { cwd: ROOT, env: commandEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
  let shown = '';
  child.stdout.on('data', (chunk: Buffer) => (shown += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (shown += chunk.toString()));
  let failed: Error | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', resolve);
    child.once('error', (error) => ((failed = error), resolve(null)));
  });
  try {
    await waitFor('the terminal pipeline to run', async () => {
      if (failed) throw new Error(`cannot run \`script\` (util-linux or BSD), which gives npm start a terminal: ${failed.message}`);
      return shown.includes('Callback gateway running locally') && readRuntimeInfo(dataDir) !== undefined;
    }, 60_000, 200);
    const sent = spawnSync('npm', ['run', '-s', 'send', '--', 'telesign', '--data-dir', dataDir], { cwd: ROOT, encoding: 'utf8', env: commandEnv(env), timeout: 60_000 });
    assert.equal(sent.status, 0, sent.stderr);
    await waitFor('the ingest log line on the terminal', async () => shown.includes('ingest-telesign'), 20_000, 100);
  } finally {
    const pid = readRuntimeInfo(dataDir)?.pid;
    if (pid) process.kill(pid, 'SIGINT');
    else child.kill('SIGKILL');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
    rmSync(dataDir, { recursive: true, force: true });
  }
  return shown;
}

describe('command lines people can pipe', { timeout: 300_000 }, () => {
  before(async () => {
    pipeline = await startLocalPipeline();
    sqs = new SQSClient({ ...LOCAL_AWS, endpoint: pipeline.info.sqsEndpoint });
    dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: pipeline.info.dynamodbEndpoint });
  });

  after(async () => {
    sqs?.destroy();
    dynamo?.destroy();
    await pipeline?.stop();
  });

  test('npm start: stdout carries the log lines alone (each one JSON with --log-format json); the banner is on stderr', async () => {
    // prepare: a callback, so that the ingest and the worker log
    const sent = pipeline.run('send', ['esms']);
    assert.equal(sent.status, 0, sent.stderr);
    await waitFor('the worker to log', async () => pipeline.stdoutText().includes('"service":"worker"'), 20_000, 200);

    // act
    const lines = pipeline.stdoutText().split('\n').filter(Boolean);

    // assess
    assert.ok(pipeline.output.some((line) => line.includes('Callback gateway running locally')), 'the banner was shown');
    assert.ok(!pipeline.stdoutText().includes('Callback gateway running locally'), 'the banner is not on stdout');
    for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `not a JSON log line on stdout: ${line}`);
    assert.ok(lines.some((line) => (JSON.parse(line) as { service?: string }).service === 'ingest-esms'));
  });

  test('send --json: one JSON document with each request\'s status code and body and the subject; the request lines and hints on stderr', async () => {
    // act
    const result = pipeline.run('send', ['telesign', '--repeat', '2', '--json']);

    // assess
    assert.equal(result.status, 0, result.stderr);
    const report = wholeJson<{
      provider: string;
      url: string;
      subject: { subjectId: string; outcome: string };
      requests: { attempt: number; statusCode: number; body: unknown }[];
      dedupe?: { deliveries: number; newCallbacks: number };
    }>(result);
    assert.equal(report.provider, 'telesign');
    assert.equal(report.url, pipeline.info.baseUrl);
    assert.match(report.subject.subjectId, /\S/);
    assert.deepEqual(report.requests.map((r) => [r.attempt, r.statusCode]), [[1, 200], [2, 200]]);
    assert.equal(report.dedupe?.deliveries, 2, 'what the repeat came to, read from the table');
    assert.ok(report.dedupe.newCallbacks === 0 || report.dedupe.newCallbacks === 1, JSON.stringify(report.dedupe));
    assert.equal(typeof report.requests[0].body, 'object', 'the JSON body, parsed');
    assert.match(result.stderr, /→ POST /);
    assert.ok(result.stderr.includes(`see it with: npm run inspect -- telesign '${report.subject.subjectId}' --data-dir ${join(pipeline.dataDir, 'data')}\n`), `the hint names the data folder send was given: ${result.stderr}`);
    assert.ok(!result.stderr.includes('"requests"'), 'the document is not on stderr');
    await waitFor('the sent callback to be stored', async () => (await stateOf('telesign', report.subject.subjectId)) !== undefined, 20_000, 200);
  });

  test('send --json names a Standard Webhooks subject as stored, under its source (was: null), and the hint finds it', async () => {
    // act
    const result = pipeline.run('send', ['standard-webhooks', 'invoice-paid', '--json']);
    // assess
    assert.equal(result.status, 0, result.stderr);
    const report = wholeJson<{ subject: { subjectId: string } | null }>(result);
    assert.match(String(report.subject?.subjectId), /^[^/]+\/\S+$/, 'source/id');
    assert.match(result.stderr, /see it with: npm run inspect -- standard-webhooks /);
    await waitFor('the subject stored under that id', async () => (await stateOf('standard-webhooks', report.subject!.subjectId)) !== undefined, 20_000, 200);
  });

  test('send of a listed invalid sample that parses but names no subject (Standard Webhooks without its subjectField) sends it: answered quarantined, subject null', () => {
    // act
    const result = pipeline.run('send', ['standard-webhooks', 'invalid/no-subject-field', '--json']);

    // assess: as the ingest reads it (its describe fails: quarantined), not a crash before sending
    assert.equal(result.status, 0, result.stderr);
    const report = wholeJson<{ subject: unknown; requests: { statusCode: number; body: unknown }[] }>(result);
    assert.equal(report.subject, null);
    assert.deepEqual(report.requests.map((r) => [r.statusCode, r.body]), [[200, { received: true, quarantined: true }]]);
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
  });

  test('send tells the simulated Identomat endpoint about the session: a session change is confirmed on arrival; a session that only got a link is reported under way; a code for an approved session changes nothing', async () => {
    // act
    type Report = { subject: { subjectId: string }; statusEndpoint: { status: string; outcome: string; terminal: boolean; statusCode: number }[] };
    const approved = pipeline.run('send', ['identomat', 'session-change-approved', '--json']);
    const code = pipeline.run('send', ['identomat', 'one-time-password', '--json']); // the same session
    const link = pipeline.run('send', ['identomat', 'share-session-link-via-sms', '--json']); // a session of its own

    // assess
    for (const run of [approved, code, link]) assert.equal(run.status, 0, run.stderr);
    const [sessionChange, otp, linked] = [wholeJson<Report>(approved), wholeJson<Report>(code), wholeJson<Report>(link)];
    assert.equal(otp.subject.subjectId, sessionChange.subject.subjectId);
    assert.deepEqual(sessionChange.statusEndpoint.map((e) => [e.status, e.outcome, e.terminal]), [['APPROVED', 'succeeded', true]]);
    assert.deepEqual(otp.statusEndpoint, [], 'the endpoint keeps reporting the session approved');
    assert.match(code.stderr, /status endpoint keeps what it already reports about/);
    assert.deepEqual(linked.statusEndpoint.map((e) => [e.status, e.outcome, e.terminal]), [['IN_PROGRESS', 'pending', false]]);
    await waitFor(
      'the session change to be confirmed by the (simulated) result/ endpoint',
      async () => {
        const state = await stateOf('identomat', sessionChange.subject.subjectId);
        return state?.status?.S === 'APPROVED' && state?.confirmation?.S === 'confirmed';
      },
      30_000,
      200,
    );
  });

  test('send without --json: the responses on stdout, the request lines on stderr', () => {
    const result = pipeline.run('send', ['relid']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^← 200 /m);
    assert.doesNotMatch(result.stdout, /→|see it with/);
    assert.match(result.stderr, /→ POST [\s\S]*see it with: npm run inspect -- relid /);
  });

  test('inspect --json through npm run -s: the whole stdout is one document; without -s npm\'s header breaks it, and the command says how to pipe', async () => {
    // prepare
    const sent = wholeJson<{ subject: { subjectId: string } }>(pipeline.run('send', ['telesign', '--json']));
    const id = sent.subject.subjectId;
    await waitFor('the subject to be stored', async () => (await stateOf('telesign', id)) !== undefined, 20_000, 200);

    // act
    const subject = pipeline.run('inspect', ['telesign', id, '--json']);
    const recent = pipeline.run('inspect', ['--recent', '5', '--json']);
    const stale = pipeline.run('inspect', ['--stale', '--json']);
    const withHeader = pipeline.run('inspect', ['telesign', id, '--json'], { silent: false });

    // assess
    assert.equal(subject.status, 0, subject.stderr);
    assert.equal(wholeJson<{ state: { subjectId: string } }>(subject).state.subjectId, id);
    assert.equal(subject.stderr, '');
    assert.ok(wholeJson<{ items: unknown[] }>(recent).items.length > 0);
    assert.deepEqual(wholeJson(stale), { items: [] });
    assert.match(withHeader.stdout, /^\s*> callback-gateway@\S+ inspect/, "npm's own header, on stdout");
    assert.throws(() => JSON.parse(withHeader.stdout));
    assert.match(withHeader.stderr, /npm run -s inspect -- …/);
  });

  test('inspect --json that fails (no pipeline where it looks) still prints one document, with the error, and exits 1', (t) => {
    // prepare
    const empty = mkdtempSync(join(tmpdir(), 'callback-gateway-none-'));
    t.after(() => rmSync(empty, { recursive: true, force: true }));
    // act
    const result = npmRun(['inspect', '--', '--recent', '3', '--json', '--data-dir', empty]);
    // assess
    assert.equal(result.status, 1, result.stderr);
    assert.match(String(wholeJson<{ error: string }>(result).error), /no local pipeline is running/);
  });

  test('redrive, reprocess and expect --json that fail before they start (no pipeline where they look, no relay) still print one document, with the error, and exit 1', () => {
    // prepare
    const empty = mkdtempSync(join(tmpdir(), 'callback-gateway-none-'));
    const dataDir = join(pipeline.dataDir, 'data');
    try {
      // act
      const runs = [
        { run: npmRun(['redrive', '--', '--dry-run', '--json', '--data-dir', empty]), says: /no local pipeline is running/ },
        { run: npmRun(['reprocess', '--', '--dry-run', '--json', '--data-dir', empty]), says: /no local pipeline is running/ },
        { run: npmRun(['expect', '--', 'temboplus', 'CLI-NO-PIPELINE-1', '--json', '--data-dir', empty]), says: /no local pipeline is running/ },
        // the running pipeline has no SMS relay
        { run: npmRun(['redrive', '--', '--relay', '--dry-run', '--json', '--data-dir', dataDir]), says: /runs no SMS relay/ },
      ];

      // assess
      for (const { run, says } of runs) {
        assert.equal(run.status, 1, run.stderr);
        assert.match(String(wholeJson<{ error: string }>(run).error), says);
        assert.match(run.stderr, says, 'said on stderr too');
      }
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  test('a command given a --data-dir where no pipeline runs names that folder and the npm start that runs one there', (t) => {
    // prepare
    const empty = mkdtempSync(join(tmpdir(), 'callback-gateway-none-'));
    t.after(() => rmSync(empty, { recursive: true, force: true }));
    const dataDir = join(pipeline.dataDir, 'data');
    const startHere = (dir: string, flags = '') => `(start it with \`npm start -- ${flags}--data-dir ${dir}\`)`;

    // act
    const runs = [
      npmRun(['inspect', '--', '--recent', '3', '--data-dir', empty]),
      npmRun(['redrive', '--', '--dry-run', '--data-dir', empty]),
      npmRun(['reprocess', '--', '--dry-run', '--data-dir', empty]),
      npmRun(['expect', '--', 'temboplus', 'CLI-NO-PIPELINE-2', '--data-dir', empty]),
    ];
    // the pipeline running there has no SMS relay
    const relay = npmRun(['redrive', '--', '--relay', '--dry-run', '--data-dir', dataDir]);

    // assess
    for (const run of runs) {
      assert.equal(run.status, 1, run.stderr);
      assert.ok(run.stderr.includes(`no local pipeline is running with the data folder ${empty} ${startHere(empty)}`), run.stderr);
    }
    assert.equal(relay.status, 1, relay.stderr);
    assert.ok(relay.stderr.includes(`runs no SMS relay ${startHere(dataDir, '--sms-relay telesign ')}`), relay.stderr);
  });

  test('send --json that fails before it sends (no pipeline where it looks, a secrets file it cannot read) still prints one document, with the error, and exits 1', (t) => {
    // prepare
    const empty = mkdtempSync(join(tmpdir(), 'callback-gateway-none-'));
    t.after(() => rmSync(empty, { recursive: true, force: true }));
    const notJson = join(empty, 'secrets.json');
    writeFileSync(notJson, '{not json');

    // act
    const runs = [
      { run: npmRun(['send', '--', 'telesign', '--json', '--data-dir', empty]), says: /no local pipeline is running/ },
      { run: npmRun(['send', '--', 'telesign', '--json', '--secrets', notJson, '--url', 'http://127.0.0.1:9']), says: /is not valid JSON/ },
      { run: npmRun(['send', '--', 'telesign', '--json', '--secrets', join(empty, 'absent.json'), '--url', 'http://127.0.0.1:9']), says: /does not exist/ },
    ];

    // assess
    for (const { run, says } of runs) {
      assert.equal(run.status, 1, run.stderr);
      assert.match(String(wholeJson<{ error: string }>(run).error), says);
      assert.match(run.stderr, says, 'said on stderr too');
    }
  });

  test('inspect --recent names an eSMS recipient, masked as in a log line, and says "no subjects match" when filters leave nothing', async () => {
    // prepare: one recipient's report
    const sent = wholeJson<{ subject: { subjectId: string; part?: string } }>(pipeline.run('send', ['esms', 'zalo-transaction', '--json']));
    assert.ok(sent.subject.part, 'the sample names a recipient');
    // send --json names it as inspect lists it: masked as in a log line
    assert.equal(maskPhoneNumbers(sent.subject.part), sent.subject.part);
    assert.match(sent.subject.part, /^\*+\d{3}$/);
    const line = new RegExp(`${sent.subject.subjectId} part ${sent.subject.part.replaceAll('*', '\\*')}(?:\n|$)`);
    // act
    let listed = pipeline.run('inspect', ['--recent', '50', '--provider', 'esms']);
    await waitFor('the recipient to be listed', async () => line.test((listed = pipeline.run('inspect', ['--recent', '50', '--provider', 'esms'])).stdout), 20_000, 200);
    const none = pipeline.run('inspect', ['--recent', '5', '--provider', 'standard-webhooks', '--outcome', 'failed']);
    // assess
    assert.match(listed.stdout, line);
    assert.equal(none.stdout.trim(), 'no subjects match');
  });

  test("inspect's text shows a sender's control characters as \\u escapes: no escape of its own reaches the terminal, no line break", async () => {
    // prepare: a Standard Webhooks type (the sender's own text) that retitles the terminal, clears it and starts a forged line
    const secrets = JSON.parse(readFileSync(pipeline.info.secretsFile, 'utf8')) as { 'standard-webhooks': { sources: Record<string, unknown> } };
    const [source] = Object.keys(secrets['standard-webhooks'].sources);
    const id = `ctl_${Date.now()}`;
    const type = 'paid\u001b]0;owned\u0007\u009b2J\nforged 2026-12-01T10:00:00.000Z';
    const message: QueueMessage = {
      v: 1,
      provider: 'standard-webhooks',
      receivedAt: new Date().toISOString(),
      requestId: `req-${id}`,
      sourceIp: '127.0.0.1',
      method: 'POST',
      headers: { 'content-type': 'application/json', 'webhook-id': `msg_${id}`, 'webhook-timestamp': String(Math.floor(Date.now() / 1000)) },
      pathParameters: { source },
      raw: { body: JSON.stringify({ type, timestamp: new Date().toISOString(), data: { id } }), query: '' },
    };
    await sqs.send(new SendMessageCommand({ QueueUrl: pipeline.info.queueUrl, MessageBody: JSON.stringify(message) }));
    await waitFor('the subject stored', async () => (await stateOf('standard-webhooks', `${source}/${id}`)) !== undefined, 20_000, 200);

    // act
    const result = pipeline.run('inspect', ['standard-webhooks', `${source}/${id}`]);

    // assess: the status shown (state and timeline), every control character written as an escape
    assert.equal(result.status, 0, result.stderr);
    const controls = [...result.stdout].filter((char) => char !== '\n' && (char.charCodeAt(0) < 0x20 || (char.charCodeAt(0) >= 0x7f && char.charCodeAt(0) <= 0x9f)));
    assert.deepEqual(controls, [], JSON.stringify(result.stdout));
    assert.ok(!/^forged/m.test(result.stdout), result.stdout);
    assert.ok(result.stdout.includes('paid\\u001b]0;owned\\u0007\\u009b2J\\u000aforged'), result.stdout);
  });

  test('inspect lists every subject when one item was edited by hand with a number JavaScript cannot hold, and shows that number as its digits', async () => {
    // prepare: a state written by hand whose counter is past 2^53 and whose version is a fraction past it
    // (DynamoDB keeps 38 digits), beside a subject stored as usual
    const sent = wholeJson<{ subject: { subjectId: string } }>(pipeline.run('send', ['temboplus', '--json']));
    await waitFor('the sent subject stored', async () => (await stateOf('temboplus', sent.subject.subjectId)) !== undefined, 20_000, 200);
    const now = new Date().toISOString();
    await dynamo.send(new PutItemCommand({
      TableName: pipeline.info.tableName,
      Item: {
        pk: { S: keys.subject('temboplus', 'HAND-EDITED-NUMBERS') }, sk: { S: 'STATE' }, provider: { S: 'temboplus' }, subjectId: { S: 'HAND-EDITED-NUMBERS' },
        providerOutcome: { S: 'temboplus#failed' }, outcome: { S: 'failed' }, status: { S: 'FAILED' }, changedAt: { S: now }, updatedAt: { S: now },
        eventCount: { N: '99999999999999999999' }, version: { N: '123456789012345678901.5' },
      },
    }));

    // act
    const text = pipeline.run('inspect', ['--recent', '50', '--provider', 'temboplus']);
    const json = pipeline.run('inspect', ['--recent', '50', '--provider', 'temboplus', '--json']);
    const subject = pipeline.run('inspect', ['temboplus', 'HAND-EDITED-NUMBERS', '--json']);

    // assess: both subjects listed, in text and in JSON; the numbers as their digits
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /HAND-EDITED-NUMBERS/);
    assert.ok(text.stdout.includes(sent.subject.subjectId), text.stdout);
    assert.equal(json.status, 0, json.stderr);
    const items = (JSON.parse(json.stdout) as { items: { subjectId: string; eventCount: unknown }[] }).items;
    assert.ok(items.some((item) => item.subjectId === sent.subject.subjectId), json.stdout);
    assert.equal(items.find((item) => item.subjectId === 'HAND-EDITED-NUMBERS')?.eventCount, '99999999999999999999');
    assert.equal(subject.status, 0, subject.stderr);
    assert.equal(JSON.parse(subject.stdout).state.eventCount, '99999999999999999999');
  });

  test('inspect --recent --json lists a quarantine item whose message cannot be read, with a note for it, beside the others', async () => {
    // prepare: a quarantine item written by hand without its message, beside a callback quarantined as usual
    const quarantined = pipeline.run('send', ['temboplus', 'invalid/momo-payout-webhook']);
    assert.equal(quarantined.status, 0, quarantined.stderr);
    const listed = () => JSON.parse(pipeline.run('inspect', ['--recent', '50', '--provider', 'temboplus', '--outcome', 'quarantined', '--json']).stdout) as { items?: { requestId?: string; message?: string }[]; error?: string };
    await waitFor('the quarantined callback listed', async () => (listed().items ?? []).some((item) => item.requestId !== 'by-hand'), 20_000, 200);
    await dynamo.send(new PutItemCommand({
      TableName: pipeline.info.tableName,
      Item: {
        pk: { S: keys.quarantinePartition('temboplus') }, sk: { S: 'QUARANTINE#by-hand' }, provider: { S: 'temboplus' }, providerOutcome: { S: 'temboplus#quarantined' },
        changedAt: { S: new Date().toISOString() }, receivedAt: { S: new Date().toISOString() }, requestId: { S: 'by-hand' }, reason: { S: 'written by hand' },
      },
    }));

    // act
    const report = listed();

    // assess: both listed; the one without a message says so where its message would be
    assert.equal(report.error, undefined);
    const items = report.items ?? [];
    assert.ok(items.some((item) => item.requestId !== 'by-hand' && typeof item.message === 'string' && item.message.startsWith('{')), JSON.stringify(items));
    assert.match(items.find((item) => item.requestId === 'by-hand')?.message ?? '', /^\(its stored message cannot be read: .*holds no message\)$/);
  });

  test('expect --json: one JSON document', () => {
    // A reference id as TeleSign makes them (32 hex digits): shown as it is, as inspect shows it.
    const result = pipeline.run('expect', ['telesign', 'C1E0E0000000000000000000000000E1', '--json']);
    assert.equal(result.status, 0, result.stderr);
    const view = wholeJson<{ result: string; state: { subjectId: string; expectedAt: string } }>(result);
    assert.equal(view.result, 'expected');
    assert.equal(view.state.subjectId, 'C1E0E0000000000000000000000000E1');
    assert.match(view.state.expectedAt, /^\d{4}-/);
  });

  test('redrive --json: counts and ids of what would move and what moved; the document alone on stdout', async () => {
    // prepare: a callback in the DLQ (as if it had failed every receive)
    await sqs.send(new SendMessageCommand({ QueueUrl: pipeline.info.dlqUrl, MessageBody: JSON.stringify(telesignMessage('CLIREDRIVE00000000000000000000001', 'cli-redrive-1')) }));

    // act
    const dry = pipeline.run('redrive', ['--dry-run', '--json']);
    const moved = pipeline.run('redrive', ['--json']);
    const nothing = pipeline.run('redrive', ['--json']);

    // assess
    assert.equal(dry.status, 0, dry.stderr);
    const dryReport = wholeJson<{ target: string; dryRun: boolean; wouldMove: number; moved: number; peeked: { requestId: string; provider: string; dlqMessageId: string }[] }>(dry);
    assert.equal(dryReport.target, 'local');
    assert.equal(dryReport.dryRun, true);
    assert.equal(dryReport.wouldMove, 1);
    assert.equal(dryReport.moved, 0);
    assert.deepEqual(dryReport.peeked.map((m) => [m.provider, m.requestId]), [['telesign', 'cli-redrive-1']]);
    assert.match(dryReport.peeked[0].dlqMessageId, /\S/);

    assert.equal(moved.status, 0, moved.stderr);
    const report = wholeJson<{ dlq: { visible: number; inFlight: number }; moved: number; notAccepted: number; messages: { requestId: string; messageId: string }[] }>(moved);
    // The dry run's look (visibility 0) leaves it waiting, not in flight.
    assert.deepEqual(report.dlq, { visible: 1, inFlight: 0 });
    assert.equal(report.moved, 1);
    assert.equal(report.notAccepted, 0);
    assert.equal(report.messages[0].requestId, 'cli-redrive-1');
    assert.match(report.messages[0].messageId, /\S/, 'its id in the main queue');

    assert.equal(nothing.status, 0, nothing.stderr);
    assert.equal(wholeJson<{ moved: number }>(nothing).moved, 0);
    await waitFor('the redriven callback to be stored', async () => (await stateOf('telesign', 'CLIREDRIVE00000000000000000000001')) !== undefined, 20_000, 200);
    assert.equal(await queueDepth(pipeline.info.dlqUrl), 0);
  });

  test('reprocess --json: counts and each callback with what became of it', async () => {
    // prepare: a callback an older schema quarantined (valid for today's)
    const message = telesignMessage('CLIREPROCESS000000000000000000001', 'cli-reprocess-1', { reason: 'payload does not match the schema', issues: ['(an older rule)'] });
    await sqs.send(new SendMessageCommand({ QueueUrl: pipeline.info.queueUrl, MessageBody: JSON.stringify(message) }));
    const quarantined = () => wholeJson<{ items: unknown[] }>(pipeline.run('inspect', ['--recent', '10', '--provider', 'telesign', '--outcome', 'quarantined', '--json'])).items;
    await waitFor('the quarantine item', async () => quarantined().length === 1, 20_000, 300);

    // act
    const dry = pipeline.run('reprocess', ['--provider', 'telesign', '--dry-run', '--json']);
    const real = pipeline.run('reprocess', ['--provider', 'telesign', '--json']);

    // assess
    type Report = { dryRun: boolean; requeued: number; stillInvalid: number; items: { requestId: string; action: string; messageId?: string }[] };
    assert.equal(dry.status, 0, dry.stderr);
    const dryReport = wholeJson<Report>(dry);
    assert.deepEqual([dryReport.dryRun, dryReport.requeued, dryReport.stillInvalid], [true, 1, 0]);
    assert.deepEqual(dryReport.items.map((i) => [i.requestId, i.action]), [['cli-reprocess-1', 'would-requeue']]);
    assert.equal(real.status, 0, real.stderr);
    const report = wholeJson<Report>(real);
    assert.deepEqual([report.dryRun, report.requeued, report.stillInvalid], [false, 1, 0]);
    assert.deepEqual(report.items.map((i) => [i.requestId, i.action]), [['cli-reprocess-1', 'requeued']]);
    assert.match(report.items[0].messageId ?? '', /\S/);
    await waitFor('the reprocessed callback to be stored', async () => (await stateOf('telesign', 'CLIREPROCESS000000000000000000001')) !== undefined, 20_000, 250);
  });

  test('on a terminal, pretty logs are coloured; NO_COLOR=1 turns the colour off', async () => {
    // act: the same run twice, the second with NO_COLOR
    const coloured = await terminalRun({ NO_COLOR: undefined, FORCE_COLOR: undefined, TERM: 'xterm-256color' });
    const plain = await terminalRun({ NO_COLOR: '1', FORCE_COLOR: undefined, TERM: 'xterm-256color' });

    // assess: the control shows colour reaches a terminal at all
    assert.ok(coloured.includes(ESC), `no colour on a terminal without NO_COLOR:\n${coloured}`);
    // npm start shows every level: an accepted callback's ingest line is DEBUG.
    assert.match(plain, /DEBUG +ingest-telesign +callback/);
    assert.ok(!plain.includes(ESC), `an ANSI escape with NO_COLOR=1:\n${JSON.stringify(plain)}`);
  });

  test('a command line missing its provider or subject, or with an argument too many, exits 2 saying which, above the usage, before anything is done', async () => {
    const dataDir = join(pipeline.dataDir, 'data');
    const cases: { args: string[]; says: string }[] = [
      { args: ['send', '--', '--data-dir', dataDir], says: 'missing <provider>' },
      { args: ['send', '--', 'telesign', 'sms-dlr-success', 'extra', '--data-dir', dataDir], says: 'unexpected argument "extra"' },
      { args: ['inspect', '--', '--data-dir', dataDir], says: 'missing <provider>' },
      { args: ['inspect', '--', 'telesign', '--data-dir', dataDir], says: 'missing <subjectId>' },
      { args: ['inspect', '--', 'telesign', 'A', 'B', '--data-dir', dataDir], says: 'unexpected argument "B"' },
      { args: ['inspect', '--', '--recent', '5', 'telesign', '--data-dir', dataDir], says: 'unexpected argument "telesign"' },
      { args: ['expect', '--', 'temboplus', '--data-dir', dataDir], says: 'missing <subjectId>' },
      { args: ['expect', '--', 'temboplus', 'CLI-EXTRA-1', 'extra', '--data-dir', dataDir], says: 'unexpected argument "extra"' },
    ];
    for (const { args, says } of cases) {
      const result = npmRun(args);
      assert.equal(result.status, 2, `${args.join(' ')}: exit ${result.status}\n${result.stderr}`);
      assert.ok(result.stderr.startsWith(`${says}\n\nusage: `), `${args.join(' ')}: ${result.stderr}`);
      assert.equal(result.stdout, '', `${args.join(' ')}: nothing on stdout`);
    }
    assert.equal(await stateOf('temboplus', 'CLI-EXTRA-1'), undefined, 'nothing expected');
  });

  test('inspect --outcome says what it was given when it is not an outcome, before looking for any table', () => {
    const result = npmRun(['inspect', '--', '--recent', '5', '--outcome', 'weird', '--data-dir', join(pipeline.dataDir, 'no-such-runtime')]);
    assert.equal(result.status, 2, result.stderr);
    assert.equal(result.stderr.trim(), '--outcome must be one of pending, succeeded, failed, unknown, quarantined, got "weird"');
  });

  test('inspect --provider names the known providers when it does not know the one given, as the other commands do', () => {
    const result = npmRun(['inspect', '--', '--recent', '5', '--provider', 'nosuch', '--data-dir', join(pipeline.dataDir, 'data')]);
    assert.equal(result.status, 2, result.stderr);
    assert.equal(result.stderr.trim(), `unknown provider "nosuch"; known: ${providers.map((p) => p.id).join(', ')}`);
  });

  test('npm start on a port in use exits 1 with one line naming the port and the way out, and starts nothing', () => {
    // prepare: the running pipeline's port, and a data folder of its own
    const port = new URL(pipeline.info.baseUrl).port;
    const dataDir = mkdtempSync(join(tmpdir(), 'callback-gateway-port-'));
    try {
      // act
      const result = npmRun(['start', '--', '--port', port, '--data-dir', dataDir]);
      // assess: the port is bound before any engine starts, so nothing was started for this folder
      assert.equal(result.status, 1, result.stderr);
      assert.equal(result.stderr.trim(), `cannot start the local pipeline: port ${port} on 127.0.0.1 is in use (another npm start?); choose one with --port N or PORT=N`);
      assert.equal(result.stdout, '');
      assert.deepEqual(javaProcessesFor(dataDir), [], 'no DynamoDB Local started');
      assert.equal(readRuntimeInfo(dataDir), undefined, 'no runtime.json');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('a numeric flag out of its range (0 where at least 1 is needed) exits 2 naming the flag and the range, before anything is done', async () => {
    const dataDir = join(pipeline.dataDir, 'data');
    const port = new URL(pipeline.info.baseUrl).port;
    // npm start is given the running pipeline's port: if a flag slipped through, it would fail on the port (exit 1), not start.
    const startArgs = ['start', '--', '--data-dir', mkdtempSync(join(tmpdir(), 'callback-gateway-flags-')), '--port', port];
    const cases: { args: string[]; env?: Record<string, string>; says: string }[] = [
      { args: ['send', '--', 'telesign', '--repeat', '0', '--data-dir', dataDir], says: '--repeat must be a whole number from 1 to 1000, got "0"' },
      { args: ['inspect', '--', '--recent', '0', '--data-dir', dataDir], says: '--recent must be a whole number from 1 to 1000, got "0"' },
      { args: ['redrive', '--', '--max', '0', '--data-dir', dataDir], says: '--max must be a whole number of at least 1, got "0"' },
      { args: ['redrive', '--', '--max-per-second', '0', '--data-dir', dataDir], says: '--max-per-second must be a whole number from 1 to 500' },
      { args: ['redrive', '--', '--max-per-second', '501', '--data-dir', dataDir], says: '--max-per-second must be a whole number from 1 to 500' },
      { args: [...startArgs, '--max-receives', '0'], says: '--max-receives must be a whole number from 1 to 1000' },
      { args: [...startArgs, '--retry-base-seconds', '0'], says: '--retry-base-seconds must be a whole number from 1 to 900' },
      { args: [...startArgs, '--visibility-timeout', '0'], says: '--visibility-timeout must be a whole number from 1 to 43200' },
      { args: [...startArgs, '--confirm-timeout-ms', '0'], says: '--confirm-timeout-ms must be a whole number from 1 to 30000' },
      { args: ['start', '--', '--port', '65536'], says: '--port must be a whole number from 0 to 65535 (0: any free port), got "65536"' },
      { args: ['start'], env: { PORT: '1e3' }, says: 'PORT must be a whole number from 0 to 65535' },
      { args: ['send', '--', 'telesign', '--repeat', '1e3', '--data-dir', dataDir], says: '--repeat must be a whole number from 1 to 1000, got "1e3"' },
    ];
    try {
      for (const { args, env, says } of cases) {
        const result = npmRun(args, env);
        assert.equal(result.status, 2, `${args.join(' ')}: exit ${result.status}\n${result.stderr}`);
        assert.ok(result.stderr.includes(says), `${args.join(' ')}: ${result.stderr}`);
        assert.equal(result.stdout, '', `${args.join(' ')}: nothing on stdout`);
      }
    } finally {
      rmSync(startArgs[3], { recursive: true, force: true });
    }
  });
});
