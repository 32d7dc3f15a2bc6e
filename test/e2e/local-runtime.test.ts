import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { keys } from '../../functions/core/pipeline-definition.ts';
import { getProvider } from '../../functions/providers/index.ts';
import { LOCAL_AWS, waitFor } from '../../local/engines.ts';
import { authenticRequest, listSamples } from '../../local/samples.ts';
import { startStatusSimulator, type StatusSimulator } from '../../local/status-simulator.ts';
import { kitOf } from '../providers/index.ts';
import type { AnyProvider } from '../../functions/providers/provider.ts';

/**
 * A provider the worker asks as soon as a callback arrives and re-checks on the schedule's own first
 * delay (no `firstAfterSeconds` of its own: TeleSign's 5 minutes would outlast these tests).
 */
const promptlyAsked = (provider: AnyProvider) =>
  provider.lookup !== undefined && provider.lookupLimits?.onArrival !== false && !provider.lookupLimits?.firstAfterSeconds && kitOf(provider).statusSimulation !== undefined;
import { commandEnv, javaProcessesFor, ROOT, startLocalPipeline, testSecrets, type StartedPipeline } from '../support/e2e-pipeline.ts';

/**
 * The local runtime behaves like AWS where it matters: what it answered 200 for survives a kill -9
 * (the queues persist on disk, as SQS keeps them), and a provider endpoint the user configured is
 * used as it is, never replaced by a simulation.
 */

const started: StartedPipeline[] = [];
const stands: StatusSimulator[] = [];
after(async () => {
  for (const pipeline of started) await pipeline.stop().catch(() => undefined);
  for (const stand of stands) await stand.stop();
});

const provider = (value: { id: string }) => getProvider(value.id);

/** Send a sample callback of a provider to a running pipeline, authenticated with its secrets. */
async function send(pipeline: StartedPipeline, providerId: string, subjectId: string) {
  const provider = getProvider(providerId);
  const kit = kitOf(provider);
  const sample = kit.withSubject(listSamples(provider.id).find((candidate) => candidate.name === kit.sample)!, subjectId);
  const secret = provider.secretSchema.parse(pipeline.secrets[providerId]);
  const request = authenticRequest(provider, secret, sample);
  const response = await fetch(`${pipeline.info.baseUrl}${request.path}`, { method: request.method, headers: request.headers, ...(request.body ? { body: request.body } : {}) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('npm start keeps what it answered 200 for, even through kill -9', () => {
  test('callbacks that could not be stored yet are stored after a SIGKILL and a restart', async () => {
    // prepare: an asked provider whose status endpoint (the user's own stand-in) fails for now, so
    // the worker cannot store the callbacks: they stay queued, retried
    const asked = Object.keys(testSecrets(0)).map((id) => getProvider(id)).find(promptlyAsked)!;
    const kit = kitOf(asked);
    const secrets = testSecrets(0);
    const stand = await startStatusSimulator(kit.statusSimulation!(provider(asked).secretSchema.parse(secrets[asked.id])));
    stands.push(stand);
    secrets[asked.id] = { ...secrets[asked.id], baseUrl: stand.baseUrl };
    const subjects = ['KILL9-1', 'KILL9-2', 'KILL9-3'].map((id) => `${id}-${Date.now()}`);
    const samples = subjects.map((subjectId) => kit.withSubject(listSamples(asked.id).find((candidate) => candidate.name === kit.sample)!, subjectId));
    for (const sample of samples) stand.report(kit.statusAnswer!(sample));
    stand.setFault({ status: 500 });
    // A record the worker holds when the kill lands stays hidden for the queue's visibility timeout
    // (180 s by default, as deployed) before it is delivered again: 10 s here, so the wait below
    // does not depend on whether the kill caught a record in flight or already given back with its back-off.
    const queueArgs = ['--max-receives', '100', '--visibility-timeout', '10'];
    const first = await startLocalPipeline({ secrets, simulators: false, extraArgs: queueArgs });
    started.push(first);
    const answers = [];
    for (const subjectId of subjects) answers.push(await send(first, asked.id, subjectId));
    await waitFor('every callback to have failed once', async () => new Set(stand.requests.map((request) => request.subjectId)).size === subjects.length, 20_000, 100);

    // act: SIGKILL the whole process group (no shutdown code runs), then start again on the same data
    await first.kill();
    stand.setFault(undefined);
    const second = await startLocalPipeline({ dataDir: first.dataDir, secrets, simulators: false, extraArgs: queueArgs });
    started.push(second);

    // assess
    assert.deepEqual(answers.map((answer) => answer.status), [200, 200, 200]);
    const dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: second.info.dynamodbEndpoint });
    try {
      for (const subjectId of subjects) {
        await waitFor(`${subjectId} stored after the restart`, async () => {
          // The subject's state, or its part's (an eSMS recipient), as the sample names it.
          const sample = samples[subjects.indexOf(subjectId)];
          const parsed = asked.parse({ method: 'GET', headers: {}, body: sample.body ?? Buffer.alloc(0), rawQuery: sample.query ?? '', sourceIp: '127.0.0.1', requestId: 'e2e', receivedAt: new Date().toISOString() });
          const part = parsed.ok ? asked.describe(parsed.payload, provider(asked).secretSchema.parse(secrets[asked.id])).part : undefined;
          const key = keys.state(asked.id, subjectId, part);
          const { Item } = await dynamo.send(new GetItemCommand({ TableName: second.info.tableName, Key: { pk: { S: key.pk }, sk: { S: key.sk } }, ConsistentRead: true }));
          return Item?.confirmation?.S === 'confirmed';
        }, 45_000, 250);
      }
    } finally {
      dynamo.destroy();
    }
  });
});

describe("a provider endpoint in the user's secrets is used as it is", () => {
  let stand: Server | undefined;
  after(() => stand?.close());

  test("a loopback baseUrl is the user's own stand-in: npm start starts no simulator on it, and the worker asks it", async () => {
    // prepare: the user's own stand-in for an asked provider's status endpoint, on loopback
    const asked = [...Object.keys(testSecrets(0))].map((id) => getProvider(id)).find(promptlyAsked)!;
    const kit = kitOf(asked);
    const seen: string[] = [];
    stand = createServer((request, response) => {
      seen.push(`${request.method} ${request.url}`);
      response.writeHead(404, { 'content-type': 'application/json' });
      response.end('{"error":"not_found"}');
    });
    await new Promise<void>((resolve) => stand!.listen(0, '127.0.0.1', () => resolve()));
    const standUrl = `http://127.0.0.1:${(stand.address() as AddressInfo).port}`;
    const secrets = testSecrets(0);
    secrets[asked.id] = { ...secrets[asked.id], baseUrl: standUrl };

    // act
    const pipeline = await startLocalPipeline({ secrets, simulators: false });
    started.push(pipeline);
    const answer = await send(pipeline, asked.id, `STAND-IN-${Date.now()}`);
    await waitFor('the worker to ask the stand-in', async () => seen.length > 0, 20_000, 100);

    // assess
    assert.equal(answer.status, 200);
    assert.deepEqual(pipeline.info.simulators, {}, 'no simulator started');
    assert.match(pipeline.output.join('\n'), /the endpoint in your secrets file/);
    assert.ok(seen.every((line) => line.startsWith('GET ')), seen.join(', '));
    assert.ok(kit.statusSimulation, 'the asked provider has a simulation the pipeline did not start');
  });

  test('the SMS relay at a real endpoint: the banner names the URL it will call, the secrets file\'s or the sender\'s default', async () => {
    // prepare: TeleSign's secret without a baseUrl (the relay then calls TeleSign's default URL); nothing is sent in this test
    const secrets = testSecrets(0);
    const { baseUrl: _dropped, ...telesign } = secrets.telesign as Record<string, unknown>;
    secrets.telesign = telesign;

    // act
    const pipeline = await startLocalPipeline({ secrets, simulators: false, extraArgs: ['--sms-relay', 'telesign'] });
    started.push(pipeline);

    // assess
    const line = pipeline.output.find((each) => each.includes('SMS relay')) ?? '';
    assert.equal(pipeline.info.smsRelay?.endpoint, getProvider('telesign').secretSchema.parse(telesign).baseUrl);
    assert.ok(line.includes(`TeleSign at ${pipeline.info.smsRelay?.endpoint} (your secrets file's baseUrl, or TeleSign's default)  (REAL`), line);
  });

  test("the SMS relay at a baseUrl with a user name, password and token: the banner shows the URL without them", async () => {
    // prepare: credentials in TeleSign's baseUrl; nothing is sent in this test
    const secrets = testSecrets(0);
    secrets.telesign = { ...(secrets.telesign as Record<string, unknown>), baseUrl: 'https://relay-user:pass-in-url@rest-api.example.test/base?token=token-in-url' };

    // act
    const pipeline = await startLocalPipeline({ secrets, simulators: false, extraArgs: ['--sms-relay', 'telesign'] });
    started.push(pipeline);

    // assess
    const output = pipeline.output.join('\n');
    const line = pipeline.output.find((each) => each.includes('SMS relay')) ?? '';
    assert.ok(line.includes('TeleSign at https://***@rest-api.example.test/base?token=*** (your secrets file'), line);
    for (const secret of ['relay-user', 'pass-in-url', 'token-in-url']) assert.ok(!output.includes(secret), `${secret} printed:\n${output}`);
  });
});

describe('npm start with a secrets file it cannot use', () => {
  test('it exits 1 naming each problem, and where each provider\'s secret is shown with fake values', () => {
    // prepare: a file with no provider in it
    const dataDir = mkdtempSync(join(tmpdir(), 'callback-gateway-secrets-'));
    const secretsFile = join(dataDir, 'mine.json');
    writeFileSync(secretsFile, '{}');

    try {
      // act
      const result = spawnSync('npm', ['start', '-s', '--', '--port', '0', '--data-dir', join(dataDir, 'data'), '--secrets', secretsFile], {
        cwd: ROOT, encoding: 'utf8', env: commandEnv(), timeout: 60_000,
      });

      // assess: nothing started, the problems named, and the fix: the shapes to copy
      assert.equal(result.status, 1, result.stderr);
      assert.match(result.stderr, /secrets file .*mine\.json is invalid:\n {2}- "telesign" is missing/);
      assert.ok(result.stderr.includes(`each provider's secret is shown, with fake values, in ${join(dataDir, 'data', 'dev-secrets.json')}`), result.stderr);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('npm start stops when npm is told to stop', () => {
  // npm passes SIGINT and SIGTERM on to its script's process: npm start execs the command in place
  // of the shell, which would catch SIGINT and wait for the command forever (pm2 stops with SIGINT).
  // A killed npm passes nothing on: the command notices it was handed to another parent.
  for (const [signal, says] of [
    ['SIGINT', /^SIGINT: stopping/],
    ['SIGTERM', /^SIGTERM: stopping/],
    ['SIGKILL', /launching process \(pid \d+\) ended: stopping/],
  ] as const) {
    test(`a ${signal} to npm alone (a process manager, docker stop, an IDE) stops the pipeline, DynamoDB Local with it`, async () => {
      // prepare
      const pipeline = await startLocalPipeline();
      started.push(pipeline);
      const running = () => spawnSync('pgrep', ['-f', `^[^ ]*node .*local/start\\.ts.*${pipeline.dataDir}`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
      assert.equal(running().length, 1, 'the command runs under npm');

      // act: npm's own pid, not its process group
      process.kill(pipeline.child.pid!, signal);

      // assess: the command noticed, stopped cleanly, and left nothing behind (if it did not, it is
      // stopped here, or it would hold this test run open)
      try {
        await waitFor('the command stopped', async () => pipeline.output.includes('stopped.') && running().length === 0, 30_000);
      } finally {
        for (const pid of running()) process.kill(Number(pid), 'SIGTERM');
      }
      assert.ok(pipeline.output.some((line) => says.test(line)), pipeline.output.slice(-5).join('\n'));
      await waitFor('DynamoDB Local stopped', async () => javaProcessesFor(pipeline.dataDir).length === 0, 15_000);
    });
  }

  test('a closed terminal (SIGHUP to the foreground group) stops it as Ctrl-C does: the batch finished, runtime.json gone', async () => {
    // prepare
    const pipeline = await startLocalPipeline();
    started.push(pipeline);
    const runtimeFile = join(pipeline.dataDir, 'data', 'runtime.json');
    assert.ok(existsSync(runtimeFile));

    // act: what a terminal sends its foreground process group when its window is closed
    process.kill(-pipeline.child.pid!, 'SIGHUP');

    // assess: stopped through its own shutdown, which removes runtime.json (left behind, it names
    // engines that are gone to every command run next)
    await waitFor('the command stopped', async () => pipeline.output.includes('stopped.'), 30_000).catch(() => undefined);
    assert.ok(pipeline.output.some((line) => /^SIGHUP: stopping/.test(line)), pipeline.output.slice(-5).join('\n'));
    assert.ok(pipeline.output.includes('stopped.'), pipeline.output.slice(-5).join('\n'));
    assert.equal(existsSync(runtimeFile), false, 'runtime.json left behind');
    await waitFor('DynamoDB Local stopped', async () => javaProcessesFor(pipeline.dataDir).length === 0, 15_000);
  });
});
