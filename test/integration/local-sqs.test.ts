import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ChangeMessageVisibilityCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { ensureQueues, LOCAL_AWS, startSqsServer, type SqsServer } from '../../local/engines.ts';
import { ingestDependencies } from '../../functions/handlers/dependencies.ts';
import { createIngestHandler } from '../../functions/handlers/ingest.ts';
import { getProvider } from '../../functions/providers/index.ts';
import { QueueMessageSchema, rawBodyOf } from '../../functions/core/queue-message.ts';
import { authenticRequest, findSample } from '../../local/samples.ts';
import { apiGatewayEvent, UNIT_SECRETS } from '../support/unit-ingest.ts';
import { suiteResource } from '../support/suite-resource.ts';

/**
 * The local SQS API with its messages kept on disk (`npm start`'s), as the worker and the relay use
 * it when a record fails: the back-off, and on the queue's last receive the message made visible at
 * once (ChangeMessageVisibility 0) so that the next receive moves it to the DLQ, as on AWS.
 */

let dataDir: string;
let sqs: SqsServer;
let client: SQSClient;

suiteResource(
  async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'local-sqs-'));
    sqs = await startSqsServer({ dataDir });
    client = new SQSClient({ ...LOCAL_AWS, endpoint: sqs.endpoint });
  },
  async () => {
    client?.destroy();
    await sqs?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  },
);

const receive = async (queueUrl: string) =>
  (await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 1, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }))).Messages ?? [];

test('a message given back at once on its last receive goes to the DLQ; it is not lost from the queue until a restart', async () => {
  // prepare: two receives allowed, as the relay's queue allows eight
  const { queueUrl, dlqUrl } = await ensureQueues(client, { queue: 'given-back', dlq: 'given-back-dlq' }, { maxReceiveCount: 2 });
  await client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'code' }));

  // act: each receive fails and gives the message back at once (the last receive's hand-back)
  const receives: string[] = [];
  for (let attempt = 0; attempt < 2; attempt++) {
    const [message] = await receive(queueUrl);
    receives.push(message?.Attributes?.ApproximateReceiveCount ?? 'none');
    if (message) await client.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle!, VisibilityTimeout: 0 }));
  }
  const third = await receive(queueUrl);
  const [dead] = await receive(dlqUrl);

  // assess
  assert.deepEqual(receives, ['1', '2'], 'received again at once after each hand-back');
  assert.deepEqual(third, [], 'past its receive limit: not delivered again');
  assert.equal(dead?.Body, 'code', 'in the DLQ, for `npm run redrive`');
});

test("after a restart on another port, the queues' URLs are on the new port, as `npm start`'s banner and runtime.json show them", async () => {
  // prepare: a queue made, and a message left in it, by a run on another port
  const first = await startSqsServer({ dataDir: join(dataDir, 'restart') });
  const firstClient = new SQSClient({ ...LOCAL_AWS, endpoint: first.endpoint });
  const made = await ensureQueues(firstClient, { queue: 'kept', dlq: 'kept-dlq' });
  await firstClient.send(new SendMessageCommand({ QueueUrl: made.queueUrl, MessageBody: 'left queued' }));
  firstClient.destroy();
  await first.stop();
  // Held while the second starts: bind(0) hands out the port just let go like any other free one
  // (here about one start in 7,000), and the test is about a restart on another port. (If another
  // process took it meanwhile, the holder cannot bind it, and the second cannot have it either.)
  const holder = createServer().on('error', () => undefined);
  await new Promise<void>((resolve) => holder.once('error', () => resolve()).listen(first.port, '127.0.0.1', () => resolve()));
  const second = await startSqsServer({ dataDir: join(dataDir, 'restart') }).finally(() => holder.close());
  const secondClient = new SQSClient({ ...LOCAL_AWS, endpoint: second.endpoint });
  try {
    assert.notEqual(second.endpoint, first.endpoint, 'another port');
    // act
    const restarted = await ensureQueues(secondClient, { queue: 'kept', dlq: 'kept-dlq' });
    // assess
    assert.equal(restarted.queueUrl, `${second.endpoint}/000000000000/kept`);
    assert.equal(restarted.dlqUrl, `${second.endpoint}/000000000000/kept-dlq`);
    const { Messages = [] } = await secondClient.send(new ReceiveMessageCommand({ QueueUrl: restarted.queueUrl, WaitTimeSeconds: 1 }));
    assert.deepEqual(Messages.map((message) => message.Body), ['left queued'], 'the same queue, its message kept');
  } finally {
    secondClient.destroy();
    await second.stop();
  }
});

test('a callback holding a character past U+FFFF (an emoji in an inbound SMS) is queued and answered 200, as SQS takes it (was 503 on every retry)', async () => {
  // prepare: TeleSign's inbound SMS sample, its text an emoji, signed as TeleSign signs it
  const telesign = getProvider('telesign');
  const { queueUrl } = await ensureQueues(client, { queue: 'astral', dlq: 'astral-dlq' });
  const handler = createIngestHandler(
    telesign,
    ingestDependencies({ provider: telesign, sqs: client, queueUrl, secretSource: async () => JSON.stringify(UNIT_SECRETS.telesign), write: () => undefined }),
  );
  const sample = JSON.parse(findSample('telesign', 'inbound-mo-sms').body!.toString('utf8')) as { user_response: Record<string, string> };
  sample.user_response.mo_message = 'Start \u{1F44D}';
  const sent = authenticRequest(telesign, UNIT_SECRETS.telesign, { body: Buffer.from(JSON.stringify(sample)) });

  // act
  const answer = await handler(apiGatewayEvent({ method: 'POST', rawPath: sent.path, headers: sent.headers, body: sent.body!.toString('utf8'), timeEpoch: Date.now() }));
  const [message] = await receive(queueUrl);

  // assess
  assert.equal(answer.statusCode, 200, String(answer.body));
  assert.deepEqual(JSON.parse(String(answer.body)), { received: true });
  const queued = QueueMessageSchema.parse(JSON.parse(message?.Body ?? 'null'));
  assert.deepEqual(rawBodyOf(queued), sent.body, 'the exact bytes received');
  assert.equal((queued.payload as { user_response: { mo_message: string } }).user_response.mo_message, 'Start \u{1F44D}');
});
