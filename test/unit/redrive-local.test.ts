import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, test } from 'node:test';
import { PurgeQueueCommand, ReceiveMessageCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { REPO_ROOT } from '../../lib/gateway-function.ts';
import { ensureQueues, LOCAL_AWS, startSqsServer, type SqsServer } from '../../local/engines.ts';
import { runtimeInfoPath } from '../../local/pipeline.ts';
import { QUEUE } from '../../functions/core/pipeline-definition.ts';
import { suiteResource } from '../support/suite-resource.ts';

/**
 * `npm run redrive` on the local pipeline: its limits (`--max`, `--max-per-second`) on the messages
 * it moves itself, against the in-process SQS-API server the pipeline runs (no Java needed).
 */

let server: SqsServer;
let sqs: SQSClient;
let queues: { queueUrl: string; dlqUrl: string };
let dataDir: string;
suiteResource(
  async () => {
    server = await startSqsServer();
    sqs = new SQSClient({ ...LOCAL_AWS, endpoint: server.endpoint });
    queues = await ensureQueues(sqs, { queue: 'callbacks', dlq: 'callbacks-dlq' });
    dataDir = mkdtempSync(join(tmpdir(), 'redrive-local-'));
    // What a running `npm start` leaves for the operations commands: only the queues are read here.
    writeFileSync(runtimeInfoPath(dataDir), JSON.stringify({ pid: process.pid, sqsEndpoint: server.endpoint, dynamodbEndpoint: 'http://127.0.0.1:1', tableName: 'unused', smsRelay: null, ...queues }));
  },
  async () => {
    sqs?.destroy();
    await server?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  },
);
beforeEach(async () => {
  for (const url of [queues.queueUrl, queues.dlqUrl]) await sqs.send(new PurgeQueueCommand({ QueueUrl: url }));
});

/** Six callbacks that gave up in the DLQ. */
async function deadLetters(count = 6): Promise<void> {
  await sqs.send(
    new SendMessageBatchCommand({
      QueueUrl: queues.dlqUrl,
      Entries: Array.from({ length: count }, (_, i) => ({ Id: String(i), MessageBody: JSON.stringify({ provider: 'telesign', requestId: `r-${i}`, receivedAt: '2026-12-01T10:00:00.000Z' }) })),
    }),
  );
}

/** What the main queue now holds, with when each message was sent to it. */
async function mainQueue(): Promise<{ requestId: string; sentAt: number }[]> {
  const { Messages = [] } = await sqs.send(
    new ReceiveMessageCommand({ QueueUrl: queues.queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 30, MessageSystemAttributeNames: ['SentTimestamp'] }),
  );
  return Messages.map((message) => ({ requestId: (JSON.parse(message.Body!) as { requestId: string }).requestId, sentAt: Number(message.Attributes?.SentTimestamp) }));
}

/** The command line in a process of its own (the SQS server answers from this one, so it must not block). */
function redrive(args: readonly string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(REPO_ROOT, 'local/redrive.ts'), '--data-dir', dataDir, ...args],
      { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 },
      (error, stdout, stderr) => resolve({ status: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
}

describe('redrive on the local pipeline: its limits', () => {
  test('--max N moves N, and a dry run with --max says it would move N, not the whole DLQ', async () => {
    // prepare
    await deadLetters();
    // act
    const dry = await redrive(['--dry-run', '--max', '2', '--json']);
    const dryText = await redrive(['--dry-run', '--max', '2']);
    const moved = await redrive(['--max', '2', '--json']);
    // assess
    assert.equal(dry.status, 0, dry.stderr);
    assert.equal(JSON.parse(dry.stdout).wouldMove, 2);
    assert.match(dryText.stdout, /dry run: would move 2 of the 6 message\(s\) to the main queue \(--max 2\)/);
    assert.equal(moved.status, 0, moved.stderr);
    assert.equal(JSON.parse(moved.stdout).moved, 2);
    assert.equal((await mainQueue()).length, 2);
  });

  test("after a dry run, the DLQ's messages are counted as waiting, not in flight: a second dry run lists them, and the redrive counts what it moves", async () => {
    // prepare
    await deadLetters(3);
    // act: the dry run looks at them (a receive that leaves them visible at once)
    const dry = await redrive(['--dry-run', '--json']);
    const again = await redrive(['--dry-run', '--json']);
    const againText = await redrive(['--dry-run']);
    const moved = await redrive(['--json']);
    // assess
    assert.deepEqual(JSON.parse(dry.stdout).dlq, { visible: 3, inFlight: 0 });
    const second = JSON.parse(again.stdout) as { dlq: unknown; wouldMove: number; peeked: unknown[] };
    assert.deepEqual(second.dlq, { visible: 3, inFlight: 0 });
    assert.equal(second.peeked.length, 3, 'the messages the first dry run looked at are listed again');
    assert.match(againText.stdout, /^DLQ holds 3 message\(s\) \[local pipeline\]$/m);
    const report = JSON.parse(moved.stdout) as { dlq: unknown; moved: number };
    assert.deepEqual(report.dlq, { visible: 3, inFlight: 0 });
    assert.equal(report.moved, 3);
    assert.equal((await mainQueue()).length, 3);
  });

  test("each message's receives are the consumer's, as many as the queue's maxReceiveCount: not the receive that moved it, nor a dry run's look", async () => {
    // prepare: a callback the worker received maxReceiveCount times, each failed (made visible at
    // once, as the worker and the relay do on a last receive); the next receive moves it to the DLQ
    await sqs.send(new SendMessageBatchCommand({ QueueUrl: queues.queueUrl, Entries: [{ Id: '0', MessageBody: JSON.stringify({ provider: 'telesign', requestId: 'r-tried', receivedAt: '2026-12-01T10:00:00.000Z' }) }] }));
    for (let receive = 1; receive <= QUEUE.maxReceiveCount + 1; receive++) {
      const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queues.queueUrl, MaxNumberOfMessages: 1, VisibilityTimeout: 0 }));
      assert.equal(Messages.length, receive <= QUEUE.maxReceiveCount ? 1 : 0, `receive ${receive}`);
    }
    // act: two dry runs (each looks: a receive), then the move
    const dry = await redrive(['--dry-run', '--json']);
    const dryText = await redrive(['--dry-run']);
    const moved = await redrive(['--json']);
    // assess
    assert.deepEqual((JSON.parse(dry.stdout) as { peeked: { receives?: number }[] }).peeked.map((each) => each.receives), [QUEUE.maxReceiveCount]);
    assert.match(dryText.stdout, new RegExp(`request r-tried  receives ${QUEUE.maxReceiveCount}\\n`));
    assert.deepEqual((JSON.parse(moved.stdout) as { messages: { receives?: number }[] }).messages.map((each) => each.receives), [QUEUE.maxReceiveCount]);
  });

  test("a message sent to the DLQ, not moved there, shows the receives before this look: none", async () => {
    // prepare
    await deadLetters(1);
    // act
    const dry = await redrive(['--dry-run', '--json']);
    const again = await redrive(['--dry-run', '--json']);
    // assess
    assert.deepEqual((JSON.parse(dry.stdout) as { peeked: { receives?: number }[] }).peeked.map((each) => each.receives), [0]);
    assert.deepEqual((JSON.parse(again.stdout) as { peeked: { receives?: number; looks?: number }[] }).peeked.map((each) => [each.receives, each.looks]), [[0, 1]], 'the first dry run looked once');
  });

  test("a dry run's listing lines its columns up after the longest provider id, standard-webhooks among them", async () => {
    // prepare
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queues.dlqUrl,
        Entries: ['standard-webhooks', 'telesign'].map((provider, i) => ({ Id: String(i), MessageBody: JSON.stringify({ provider, requestId: `r-${provider}`, receivedAt: '2026-12-01T10:00:00.000Z' }) })),
      }),
    );
    // act
    const dry = await redrive(['--dry-run']);
    // assess
    const lines = dry.stdout.split('\n').filter((line) => line.includes(' request r-'));
    assert.equal(lines.length, 2, dry.stdout);
    assert.equal(new Set(lines.map((line) => line.indexOf(' request '))).size, 1, `out of line:\n${dry.stdout}`);
  });

  test('--max-per-second N paces the move: six messages at 2 a second take over two seconds', async () => {
    // prepare
    await deadLetters();
    // act
    const run = await redrive(['--max-per-second', '2', '--json']);
    // assess
    assert.equal(run.status, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).moved, 6);
    const arrived = await mainQueue();
    assert.equal(arrived.length, 6);
    const times = arrived.map((message) => message.sentAt).sort((a, b) => a - b);
    // Two at 0 s, two at 1 s, two at 2 s, counted from when the move started: the last pair is due
    // 2 s in, but the first is stamped only once its receive and send are done, which a loaded
    // machine stretches to hundreds of milliseconds (1.9 s apart failed so). At least one whole
    // interval parts them; a move that does not pace sends all six in one pass of milliseconds.
    assert.ok(times[5] - times[0] >= 1_000, `moved within ${times[5] - times[0]} ms`);
  });
});
