import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { DETAIL_TYPES, EVENT_SOURCE } from '../../functions/core/publish.ts';
import { REPO_ROOT } from '../../lib/gateway-function.ts';
import { startSqsMoveStandIn, type SqsMoveStandIn } from '../support/sqs-move-stand-in.ts';
import { suiteResource } from '../support/suite-resource.ts';

/**
 * `npm run redrive -- --dlq-url … --region …` on a deployed stack: SQS's own message-move task,
 * against a stand-in of the SQS operations it uses (test/support/sqs-move-stand-in.ts).
 */

let sqs: SqsMoveStandIn;
suiteResource(
  async () => {
    sqs = await startSqsMoveStandIn();
  },
  async () => {
    await sqs?.stop();
  },
);

/** The command line in a process of its own (the stand-in answers from this one, so it must not block). */
function redrive(args: readonly string[]): Promise<{ status: number | null; report: { moved?: number; task?: { status?: string; failureReason?: string } }; stderr: string }> {
  return runCommand(args, { PATH: process.env.PATH ?? '', AWS_ENDPOINT_URL_SQS: sqs.endpoint, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_EC2_METADATA_DISABLED: 'true' });
}

function runCommand(args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; report: { moved?: number; task?: { status?: string; failureReason?: string } }; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(REPO_ROOT, 'local/redrive.ts'), ...args],
      {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        timeout: 60_000,
        env,
      },
      (error, stdout, stderr) => resolve({ status: error ? ((error as { code?: number }).code ?? null) : 0, report: JSON.parse(stdout || '{}'), stderr }),
    );
  });
}

/** An SMS instruction as the relay's rule hands it to an SQS target (ids only: the stand-in reads no detail). */
const instructionEvent = (eventId: string) => JSON.stringify({ version: '0', id: eventId, source: EVENT_SOURCE, 'detail-type': DETAIL_TYPES.instruction, detail: { eventId, provider: 'identomat' } });

describe('redrive on a deployed stack', () => {
  test("the relay's DLQ holds what the relay gave up on and what the rule could not deliver (sent to the DLQ directly): both go back to the relay queue", async () => {
    const relayDlq = sqs.queue('relay-dlq');
    const relayQueue = sqs.queue('relay', relayDlq);
    // Moved there by the relay queue's redrive policy after its eighth receive…
    relayDlq.messages.push({ body: instructionEvent('a'.repeat(32)), movedFrom: relayQueue.arn });
    // …and sent there by the EventBridge rule's dead-letter config, which names no source queue.
    relayDlq.messages.push({ body: instructionEvent('b'.repeat(32)) });

    const run = await redrive(['--dlq-url', relayDlq.url, '--region', 'us-east-1', '--json']);

    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.report.task?.status, 'COMPLETED', JSON.stringify(run.report));
    assert.equal(run.report.moved, 2);
    assert.deepEqual(relayQueue.messages.map((message) => JSON.parse(message.body).detail.eventId), ['a'.repeat(32), 'b'.repeat(32)]);
    assert.equal(relayDlq.messages.length, 0);
    // The move names its destination: the queue whose DLQ this is.
    assert.equal(sqs.moveRequests.at(-1)?.DestinationArn, relayQueue.arn);
  });

  test("--max is refused (exit 2, naming it): SQS's move task moves the whole DLQ and cannot stop at a count", async () => {
    // prepare
    const dlq = sqs.queue('max-dlq');
    const queue = sqs.queue('max', dlq);
    dlq.messages.push({ body: '{"provider":"telesign","requestId":"r-1"}', movedFrom: queue.arn }, { body: '{"provider":"telesign","requestId":"r-2"}', movedFrom: queue.arn });
    const requests = sqs.moveRequests.length;
    // act
    const run = await redrive(['--dlq-url', dlq.url, '--region', 'us-east-1', '--max', '1']);
    // assess
    assert.equal(run.status, 2, run.stderr);
    assert.match(run.stderr, /--max applies to the local pipeline only: SQS's message-move task moves every message in the DLQ; pace it with --max-per-second/);
    assert.equal(sqs.moveRequests.length, requests, 'no move task started');
    assert.equal(dlq.messages.length, 2, 'nothing moved');
    assert.equal(queue.messages.length, 0);
  });

  test('a wrong command line for a deployed stack is refused (exit 2) before credentials are looked for: none set is not the first thing said', async () => {
    // prepare: no credentials anywhere in the chain (no keys, no profile files, no instance metadata)
    const home = mkdtempSync(join(tmpdir(), 'redrive-no-credentials-'));
    const env = { PATH: process.env.PATH ?? '', HOME: home, AWS_CONFIG_FILE: join(home, 'config'), AWS_SHARED_CREDENTIALS_FILE: join(home, 'credentials'), AWS_EC2_METADATA_DISABLED: 'true' };
    const dlq = sqs.queue('no-credentials-dlq');
    const run = (args: readonly string[]) => runCommand(args, env);
    try {
      // act
      const withMax = await run(['--dlq-url', dlq.url, '--region', 'us-east-1', '--max', '1']);
      const withoutDlq = await run(['--queue-url', dlq.url, '--region', 'us-east-1']);
      // assess
      assert.equal(withMax.status, 2, withMax.stderr);
      assert.match(withMax.stderr, /^--max applies to the local pipeline only/);
      assert.equal(withoutDlq.status, 2, withoutDlq.stderr);
      assert.match(withoutDlq.stderr, /^--dlq-url is required for a deployed stack/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  test('credentials that may not list the DLQ\'s source queues: what a redrive policy moved still goes back, and the line says how to name the queue', async () => {
    const dlq = sqs.queue('callbacks-dlq');
    const queue = sqs.queue('callbacks', dlq);
    dlq.messages.push({ body: '{"provider":"telesign","requestId":"r-1"}', movedFrom: queue.arn });
    sqs.denyListSources = true;
    try {
      const run = await redrive(['--dlq-url', dlq.url, '--region', 'us-east-1', '--json']);
      assert.equal(run.status, 0, run.stderr);
      assert.equal(run.report.task?.status, 'COMPLETED', JSON.stringify(run.report));
      assert.deepEqual(queue.messages.map((message) => JSON.parse(message.body).requestId), ['r-1']);
      assert.match(run.stderr, /pass --queue-url to name it/);
      assert.equal(sqs.moveRequests.at(-1)?.DestinationArn, undefined);
    } finally {
      sqs.denyListSources = false;
    }
  });
});
