import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DynamoDBClient, GetItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { keys } from '../../functions/core/pipeline-definition.ts';
import type { QueueMessage } from '../../functions/core/queue-message.ts';
import { LOCAL_AWS, waitFor } from '../../local/engines.ts';
import { listSamples } from '../../local/samples.ts';
import { controlFetch, startLocalPipeline, type StartedPipeline } from '../support/e2e-pipeline.ts';

/** `npm run redrive` and `npm run reprocess` against a running local pipeline, as an operator uses them. */

let pipeline: StartedPipeline;
let sqs: SQSClient;
let dynamo: DynamoDBClient;

async function simulator(method: string, path: string, body?: unknown) {
  const response = await controlFetch(`${pipeline.info.simulators.temboplus}${path}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${pipeline.secrets.temboplus.apiToken}` },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  assert.ok(response.ok, `simulator ${method} ${path}: ${response.status}`);
}

async function queueDepth(url: string): Promise<number> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
  );
  return Number(Attributes.ApproximateNumberOfMessages) + Number(Attributes.ApproximateNumberOfMessagesNotVisible);
}

async function state(provider: string, subjectId: string) {
  const { Item } = await dynamo.send(
    new GetItemCommand({ TableName: pipeline.info.tableName, Key: { pk: { S: keys.subject(provider, subjectId) }, sk: { S: 'STATE' } }, ConsistentRead: true }),
  );
  return Item;
}

describe('operations: redrive and reprocess', { timeout: 180_000 }, () => {
  before(async () => {
    pipeline = await startLocalPipeline(['--max-receives', '2']);
    sqs = new SQSClient({ ...LOCAL_AWS, endpoint: pipeline.info.sqsEndpoint });
    dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: pipeline.info.dynamodbEndpoint });
  });

  after(async () => {
    sqs?.destroy();
    dynamo?.destroy();
    await pipeline?.stop();
  });

  test('a callback that kept failing reaches the DLQ, and redrive brings it back once the cause is fixed', async () => {
    // prepare: TemboPlus's status endpoint is down, so the callback fails every receive
    // (`send` also tells the simulated endpoint about the transfer)
    const ref = JSON.parse(listSamples('temboplus').find((s) => s.name === 'remittance-completed')!.body!.toString()).partnerReference;
    await simulator('PUT', '/__simulator/fault', { status: 500 });
    const sent = pipeline.run('send', ['temboplus', 'remittance-completed']);
    assert.equal(sent.status, 0, sent.stderr);
    await waitFor('the message to reach the DLQ', async () => (await queueDepth(pipeline.info.dlqUrl)) === 1, 30_000, 250);
    assert.equal(await state('temboplus', ref), undefined, 'nothing applied while TemboPlus is failing');

    // act: dry run first, then the real move after the fault is fixed
    const dry = pipeline.run('redrive', ['--dry-run']);
    await simulator('PUT', '/__simulator/fault', null);
    const moved = pipeline.run('redrive', []);

    // assess
    assert.equal(dry.status, 0, dry.stderr);
    assert.match(dry.stdout, /DLQ holds 1 message/);
    assert.match(dry.stdout, /would move 1/);
    assert.match(dry.stdout, /temboplus/);
    assert.equal(moved.status, 0, moved.stderr);
    assert.match(moved.stdout, /moved 1 message\(s\) back/);
    await waitFor('the redriven callback to be stored', async () => (await state('temboplus', ref))?.confirmation?.S === 'confirmed', 20_000, 250);
    assert.equal(await queueDepth(pipeline.info.dlqUrl), 0);
    assert.equal((await state('temboplus', ref))?.status?.S, 'COMPLETED');
  });

  test('reprocess re-runs a quarantined callback that the current schema accepts', async () => {
    // prepare: a callback an older schema quarantined (the body is valid for today's schema)
    const body = JSON.stringify({ reference_id: 'OPSREPROCESS000000000000000000001', status: { code: 200, updated_on: '2026-02-01T00:00:00Z' } });
    const quarantined: QueueMessage = {
      v: 1,
      provider: 'telesign',
      receivedAt: new Date().toISOString(),
      requestId: 'ops-reprocess-1',
      sourceIp: '127.0.0.1',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      raw: { body, query: '' },
      quarantine: { reason: 'payload does not match the schema', issues: ['status.code: (an older rule)'] },
    };
    await sqs.send(new SendMessageCommand({ QueueUrl: pipeline.info.queueUrl, MessageBody: JSON.stringify(quarantined) }));
    const listQuarantined = () =>
      JSON.parse(pipeline.run('inspect', ['--recent', '10', '--provider', 'telesign', '--outcome', 'quarantined', '--json']).stdout).items as unknown[];
    await waitFor('the quarantine item', async () => listQuarantined().length === 1, 20_000, 300);

    // act
    const dry = pipeline.run('reprocess', ['--provider', 'telesign', '--dry-run']);
    const real = pipeline.run('reprocess', ['--provider', 'telesign']);

    // assess
    assert.match(dry.stdout, /1 would be requeued, 0 still invalid/);
    assert.match(real.stdout, /1 requeued for the worker/);
    await waitFor('the reprocessed callback to be stored', async () => (await state('telesign', 'OPSREPROCESS000000000000000000001'))?.status?.S === '200', 20_000, 250);
    assert.deepEqual(listQuarantined(), []);
  });

  test('reprocess puts back a quarantined callback whose text holds U+FFFF, as ingest queued it, and goes on to the next', async () => {
    // prepare: two callbacks an older schema quarantined, valid for today's: one's text holds U+FFFF
    // (SQS refuses the character as it is; ingest queues it escaped), the other's does not
    const quarantined = (id: string, note: string): QueueMessage => ({
      v: 1,
      provider: 'telesign',
      receivedAt: new Date().toISOString(),
      requestId: `ops-reprocess-${id}`,
      sourceIp: '127.0.0.1',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      raw: { body: JSON.stringify({ reference_id: id, status: { code: 200, description: `Delivered ${note}`, updated_on: '2026-02-01T00:00:00Z' } }), query: '' },
      quarantine: { reason: 'payload does not match the schema', issues: ['status.code: (an older rule)'] },
    });
    const ids = ['OPSREPROCESSFFFF00000000000000001', 'OPSREPROCESSFFFF00000000000000002'];
    for (const [n, id] of ids.entries()) {
      const text = JSON.stringify(quarantined(id, n === 0 ? 'ok\uffff' : 'ok')).replace(/\uffff/g, '\\uffff');
      await sqs.send(new SendMessageCommand({ QueueUrl: pipeline.info.queueUrl, MessageBody: text }));
    }
    const listQuarantined = () =>
      JSON.parse(pipeline.run('inspect', ['--recent', '10', '--provider', 'telesign', '--outcome', 'quarantined', '--json']).stdout).items as unknown[];
    await waitFor('the quarantine items', async () => listQuarantined().length === 2, 20_000, 300);

    // act
    const real = pipeline.run('reprocess', ['--provider', 'telesign']);

    // assess: both put back and stored, the character as received
    assert.equal(real.status, 0, real.stderr);
    assert.match(real.stdout, /2 requeued for the worker/);
    for (const id of ids) await waitFor(`${id} to be stored`, async () => (await state('telesign', id))?.status?.S === '200', 20_000, 250);
    assert.deepEqual(listQuarantined(), []);
  });

  test('a callback reprocess puts back that the worker quarantines again is still kept, however soon the worker takes it', async () => {
    // prepare: a body that parses but names no subject (the secret's subjectField is not in it), so the
    // worker quarantines it whenever it reads it
    const sent = pipeline.run('send', ['standard-webhooks', 'invalid/no-subject-field']);
    assert.equal(sent.status, 0, sent.stderr);
    const kept = async () => {
      const { Items = [] } = await dynamo.send(new QueryCommand({
        TableName: pipeline.info.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :q)',
        ExpressionAttributeValues: { ':pk': { S: keys.quarantinePartition('standard-webhooks') }, ':q': { S: 'QUARANTINE#' } },
        ConsistentRead: true,
      }));
      return Items.map((item) => item.sk.S!);
    };
    await waitFor('the quarantine item', async () => (await kept()).length === 1, 20_000, 250);
    const [before] = await kept();

    // act
    const reprocessed = pipeline.run('reprocess', ['--provider', 'standard-webhooks']);

    // assess: reprocess removed its item, and the worker's second quarantine is an item of its own
    assert.equal(reprocessed.status, 0, reprocessed.stderr);
    assert.match(reprocessed.stdout, /1 requeued for the worker/);
    await waitFor('the callback quarantined again, under a key of its own', async () => {
      const now = await kept();
      return now.length === 1 && now[0] !== before;
    }, 20_000, 250);
    await waitFor('the queue to be empty', async () => (await queueDepth(pipeline.info.queueUrl)) === 0, 20_000, 250);
    assert.equal((await kept()).length, 1);
  });
});
