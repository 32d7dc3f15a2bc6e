import assert from 'node:assert/strict';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { keys } from '../../functions/core/pipeline-definition.ts';
import { getProvider, providers } from '../../functions/providers/index.ts';
import { LOCAL_AWS, waitFor } from '../../local/engines.ts';
import { authenticRequest, listSamples } from '../../local/samples.ts';
import { startStatusSimulator, type StatusSimulator } from '../../local/status-simulator.ts';
import { kitOf } from '../providers/index.ts';
import { javaProcessesFor, startLocalPipeline, testSecrets, type StartedPipeline } from '../support/e2e-pipeline.ts';
import { portHeldBy, processGroupOf } from '../support/listeners.ts';

/**
 * Ingest and the worker run apart, as separate Lambdas do: while a worker batch waits on a status
 * endpoint, callbacks are still acknowledged; and Ctrl-C stops the HTTP side first, lets that batch
 * finish and writes its last log line before the process exits. The status endpoint here is held by
 * the test (a gate in front of the provider's simulation), so the batch is as slow as the test
 * wants: the assertions are about order, not about how fast anything was.
 */

/** A gate in front of a status endpoint: requests wait until `release()`, then go through. */
interface Gate {
  readonly url: string;
  /** Status requests received, answered or not. */
  readonly received: () => number;
  /** Status requests answered so far. */
  readonly answered: () => number;
  release(): void;
  close(): Promise<void>;
}

async function startGate(target: string): Promise<Gate> {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  let received = 0;
  let answered = 0;
  const server: Server = createServer((request, response) => {
    received++;
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      await opened;
      const headers = Object.fromEntries(Object.entries(request.headers).filter((entry): entry is [string, string] => typeof entry[1] === 'string' && entry[0] !== 'host'));
      const upstream = await fetch(`${target}${request.url}`, { method: request.method, headers, ...(chunks.length ? { body: Buffer.concat(chunks) } : {}) });
      const body = Buffer.from(await upstream.arrayBuffer());
      response.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
      response.end(body);
      answered++;
    })().catch(() => response.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received: () => received,
    answered: () => answered,
    release: () => open(),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An asked provider with a simulation: the one whose status endpoint the gate holds. */
const asked = providers.find((provider) => provider.lookup && kitOf(provider).statusSimulation)!;
const askedKit = kitOf(asked);
// Letters and digits mixed: a subject id with a long run of digits is masked in log lines (phone-like).
const run = Date.now().toString(36);
const slowSubject = `SLOW-BATCH-${run}`;

let pipeline: StartedPipeline;
let simulator: StatusSimulator;
let gate: Gate;
let stopping: Promise<number | null> | undefined;

/** Send a provider's kit sample about `subjectId`, signed with the pipeline's secrets. */
async function send(providerId: string, subjectId: string) {
  const provider = getProvider(providerId);
  const kit = kitOf(provider);
  const sample = kit.withSubject(listSamples(provider.id).find((candidate) => candidate.name === kit.sample)!, subjectId);
  const request = authenticRequest(provider, provider.secretSchema.parse(pipeline.secrets[providerId]), sample);
  const response = await fetch(`${pipeline.info.baseUrl}${request.path}`, { method: request.method, headers: request.headers, ...(request.body ? { body: request.body } : {}) });
  return { provider: providerId, subjectId, status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('ingest and worker run apart', { timeout: 180_000 }, () => {
  before(async () => {
    const secrets = testSecrets(0);
    simulator = await startStatusSimulator(askedKit.statusSimulation!(asked.secretSchema.parse(secrets[asked.id]) as Record<string, unknown>));
    gate = await startGate(simulator.baseUrl);
    secrets[asked.id] = { ...secrets[asked.id], baseUrl: gate.url };
    // The held status request must not time out while the test holds it (a few seconds): the longest allowed.
    pipeline = await startLocalPipeline({ secrets, simulators: false, extraArgs: ['--confirm-timeout-ms', '30000'] });
  });

  after(async () => {
    gate?.release();
    const dataDir = pipeline?.dataDir;
    await (stopping ?? pipeline?.stop());
    if (dataDir) assert.deepEqual(javaProcessesFor(dataDir), [], 'DynamoDB Local left running');
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    await gate?.close();
    await simulator?.stop();
  });

  test('callbacks are acknowledged while a worker batch waits on a status endpoint', async () => {
    // prepare: a callback whose batch waits at the gate
    const sample = askedKit.withSubject(listSamples(asked.id).find((candidate) => candidate.name === askedKit.sample)!, slowSubject);
    simulator.report(askedKit.statusAnswer!(sample));
    const slow = await send(asked.id, slowSubject);
    await waitFor('the worker to ask the held status endpoint', async () => gate.received() >= 1, 30_000, 50);

    // act: three callbacks of every other provider, all at once, while that batch waits
    const others = providers.filter((provider) => provider.id !== asked.id);
    const answers = await Promise.all(others.flatMap((provider) => [1, 2, 3].map((n) => send(provider.id, `APART-${run}-${n}`))));
    const heldWhenAcknowledged = gate.answered() === 0;

    // assess: every one answered 200 before the batch's status request was answered
    assert.equal(slow.status, 200);
    assert.deepEqual(answers.filter((answer) => answer.status !== 200), []);
    assert.equal(answers.length, others.length * 3);
    assert.ok(heldWhenAcknowledged, 'the status request was answered before the callbacks were acknowledged: the test proves nothing');
    const dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: pipeline.info.dynamodbEndpoint });
    try {
      const { Item } = await dynamo.send(new GetItemCommand({ TableName: pipeline.info.tableName, Key: { pk: { S: keys.subject(asked.id, slowSubject) }, sk: { S: 'STATE' } }, ConsistentRead: true }));
      assert.equal(Item, undefined, 'the held batch was stored before its status request was answered');
    } finally {
      dynamo.destroy();
    }
  });

  test('Ctrl-C while that batch waits: the HTTP side stops first, the batch finishes and its log line is written, nothing is left running', async () => {
    // act: Ctrl-C with the status request still held
    assert.equal(gate.answered(), 0);
    const port = Number(new URL(pipeline.info.baseUrl).port);
    stopping = pipeline.stop({ keepData: true });
    await waitFor('the stop to begin', async () => pipeline.output.some((line) => line.includes('stopping')), 30_000, 20);
    const refused = await waitFor('the HTTP side to stop', async () => {
      try {
        await send(asked.id, `AFTER-STOP-${run}`);
        return false;
      } catch {
        return true;
      }
    }, 10_000, 50).then(() => true, () => false);
    const storedBeforeRelease = pipeline.output.some((line) => line.includes('"message":"stored"') && line.includes(slowSubject));
    gate.release();
    await stopping;
    // The exit can come before the last bytes of its output are read.
    const stdout = pipeline.child.stdout!;
    if (!stdout.readableEnded) await once(stdout, 'end');

    // assess
    assert.ok(refused, 'the HTTP side still answered during the stop');
    assert.equal(storedBeforeRelease, false);
    const lines = pipeline.output;
    const stored = lines.findIndex((line) => line.includes('"service":"worker"') && line.includes('"message":"stored"') && line.includes(slowSubject));
    assert.ok(stored >= 0, `the held batch's "stored" line is missing:\n${lines.slice(-20).join('\n')}`);
    // Printed by npm start as it exits 0, once everything it started has stopped.
    assert.ok(lines.some((line) => line.trim() === 'stopped.'), `npm start did not stop cleanly:\n${lines.slice(-20).join('\n')}`);
    assert.match(lines[stored], /"confirmation":"confirmed"/);
    assert.ok(gate.answered() >= 1);
    assert.deepEqual(javaProcessesFor(pipeline.dataDir), [], 'DynamoDB Local left running');
    // Nothing of the pipeline's (its own process group) listens on its port: asked of whoever
    // listens there, not by binding it, as another process on this machine may have taken the
    // port once it was let go (test/support/listeners.ts).
    const group = pipeline.child.pid!;
    assert.equal(await portHeldBy(port, (pid) => processGroupOf(pid) === group), false, `the pipeline still listens on ${port}`);
  });
});
