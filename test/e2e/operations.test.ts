import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DynamoDBClient, GetItemCommand, PutItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { keys } from '../../functions/core/pipeline-definition.ts';
import { printable } from '../../functions/shared/log.ts';
import type { QueueMessage } from '../../functions/core/queue-message.ts';
import { LOCAL_AWS, waitFor } from '../../local/engines.ts';
import { listSamples } from '../../local/samples.ts';
import { REPO_ROOT } from '../../lib/gateway-function.ts';
import { startSecretsManagerStandIn } from '../support/secrets-manager-stand-in.ts';
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

/** The keys of a provider's quarantine items of one request, read consistently. */
async function quarantineKeys(provider: string, requestId: string): Promise<string[]> {
  const { Items = [] } = await dynamo.send(new QueryCommand({
    TableName: pipeline.info.tableName,
    KeyConditionExpression: 'pk = :pk AND begins_with(sk, :q)',
    ExpressionAttributeValues: { ':pk': { S: keys.quarantinePartition(provider) }, ':q': { S: 'QUARANTINE#' } },
    ConsistentRead: true,
  }));
  return Items.filter((item) => item.requestId?.S === requestId).map((item) => item.sk.S!);
}

/** A callback ingest quarantined, as it queued it: the worker keeps it under `<provider>!quarantine`. */
function quarantinedMessage(provider: string, requestId: string, request: Pick<QueueMessage, 'headers' | 'raw'> & Partial<QueueMessage>, reason: string): QueueMessage {
  return { v: 1, provider, receivedAt: new Date().toISOString(), requestId, sourceIp: '127.0.0.1', method: 'POST', ...request, quarantine: { reason, issues: [] } };
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

  test('reprocess checks a Standard Webhooks callback with the secret the worker reads: one lacking its subjectField stays quarantined, dry run and real run alike', async () => {
    // prepare: a signed event whose body lacks the source's subjectField (data.id): the worker, reading
    // the secret, can name no subject for it, today as when it came
    const source = Object.keys(pipeline.secrets['standard-webhooks'].sources as Record<string, unknown>)[0];
    const message = quarantinedMessage('standard-webhooks', 'ops-reprocess-no-subject', {
      headers: { 'content-type': 'application/json', 'webhook-id': 'msg_ops_reprocess_no_subject', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)) },
      pathParameters: { source },
      raw: { body: JSON.stringify({ type: 'invoice.paid', timestamp: '2026-02-01T00:00:00Z', data: { amount: 4200 } }), query: '' },
    }, 'cannot read the status: the subject field "data.id" is missing or not short text or a safe integer');
    await sqs.send(new SendMessageCommand({ QueueUrl: pipeline.info.queueUrl, MessageBody: JSON.stringify(message) }));
    await waitFor('the quarantine item', async () => (await quarantineKeys('standard-webhooks', message.requestId)).length === 1, 20_000, 250);
    const before = await quarantineKeys('standard-webhooks', message.requestId);

    // act
    const dry = pipeline.run('reprocess', ['--provider', 'standard-webhooks', '--dry-run', '--json']);
    const real = pipeline.run('reprocess', ['--provider', 'standard-webhooks', '--json']);

    // assess: both say what the worker would do, and nothing was put back
    for (const run of [dry, real]) {
      assert.equal(run.status, 0, run.stderr);
      const report = JSON.parse(run.stdout);
      assert.equal(report.requeued, 0, run.stdout);
      assert.equal(report.stillInvalid, 1, run.stdout);
      assert.equal(report.items[0].action, 'still-invalid');
      assert.match(report.items[0].reason, /subject field "data\.id" is missing/);
      assert.deepEqual(report.withoutSecret, [], 'checked with the secret');
    }
    // The item kept (a requeue deletes it once sent). Not the queue's depth: the pipeline's own
    // re-checks share the queue, and one can be there at any moment (seen: 2).
    assert.deepEqual(await quarantineKeys('standard-webhooks', message.requestId), before, 'the item left as it was');
  });

  test('on a deployed stack, reprocess reads the secret --secret names, as the worker does; one it is not given or cannot read, it says so and reads without its settings', async () => {
    // prepare: a callback lacking the subjectField, quarantined; a Secrets Manager stand-in holding the
    // secret under one name; the deployed commands reach the pipeline's engines as they would AWS's
    const sourceSecret = pipeline.secrets['standard-webhooks'];
    const source = Object.keys(sourceSecret.sources as Record<string, unknown>)[0];
    const message = quarantinedMessage('standard-webhooks', 'ops-reprocess-deployed', {
      headers: { 'content-type': 'application/json', 'webhook-id': 'msg_ops_reprocess_deployed', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)) },
      pathParameters: { source },
      raw: { body: JSON.stringify({ type: 'invoice.paid', timestamp: '2026-02-01T00:00:00Z', data: { amount: 4400 } }), query: '' },
    }, 'cannot read the status: the subject field "data.id" is missing or not short text or a safe integer');
    await sqs.send(new SendMessageCommand({ QueueUrl: pipeline.info.queueUrl, MessageBody: JSON.stringify(message) }));
    await waitFor('the quarantine item', async () => (await quarantineKeys('standard-webhooks', message.requestId)).length === 1, 20_000, 250);
    const before = await quarantineKeys('standard-webhooks', message.requestId);
    const secretsManager = await startSecretsManagerStandIn(new Map([['sw-secret', JSON.stringify(sourceSecret)]]));
    const env = {
      PATH: process.env.PATH ?? '',
      AWS_ENDPOINT_URL_DYNAMODB: pipeline.info.dynamodbEndpoint,
      AWS_ENDPOINT_URL_SQS: pipeline.info.sqsEndpoint,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsManager.endpoint,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_EC2_METADATA_DISABLED: 'true',
    };
    /** The command in a process of its own, not blocking this one (the stand-in answers from here). */
    const deployed = (...extra: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const args = ['--table', pipeline.info.tableName, '--queue-url', pipeline.info.queueUrl, '--region', 'us-east-1', '--provider', 'standard-webhooks', '--dry-run', '--json', ...extra];
        execFile(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'local/reprocess.ts'), ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000, env }, (error, stdout, stderr) =>
          resolve({ status: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr }),
        );
      });

    try {
      // act
      const withSecret = await deployed('--secret', 'standard-webhooks=sw-secret');
      const notFound = await deployed('--secret', 'standard-webhooks=another-secret');
      const notGiven = await deployed();

      // assess: with the secret, what the worker would do; without it, without its settings, and why
      const mine = (run: { stdout: string }) => (JSON.parse(run.stdout).items as { requestId: string; action: string; reason?: string }[]).find((item) => item.requestId === message.requestId);
      for (const run of [withSecret, notFound, notGiven]) assert.equal(run.status, 0, run.stderr);
      assert.equal(mine(withSecret)?.action, 'still-invalid');
      assert.match(String(mine(withSecret)?.reason), /subject field "data\.id" is missing/);
      assert.deepEqual(JSON.parse(withSecret.stdout).withoutSecret, []);
      assert.equal(mine(notFound)?.action, 'would-requeue');
      assert.deepEqual(JSON.parse(notFound.stdout).withoutSecret, [{ provider: 'standard-webhooks', reason: "cannot read the standard-webhooks secret: Secrets Manager can't find the specified secret." }]);
      assert.match(notFound.stderr, /standard-webhooks: checked without its secret \(cannot read the standard-webhooks secret: Secrets Manager can't find the specified secret\.\)/);
      assert.equal(mine(notGiven)?.action, 'would-requeue');
      assert.deepEqual(JSON.parse(notGiven.stdout).withoutSecret, [{ provider: 'standard-webhooks', reason: 'no --secret standard-webhooks=<StandardWebhooksSecretName> given' }]);
      assert.deepEqual(secretsManager.requests, ['sw-secret', 'another-secret'], 'each named secret read once, none unnamed');
      const signingSecret = String(Object.values(sourceSecret.sources as Record<string, { secret: string }>)[0].secret);
      for (const run of [withSecret, notFound, notGiven]) assert.ok(!`${run.stdout}${run.stderr}`.includes(signingSecret.slice('whsec_'.length)), 'nothing of the secret printed');
      assert.deepEqual(await quarantineKeys('standard-webhooks', message.requestId), before, 'a dry run changes nothing');
    } finally {
      await secretsManager.stop();
    }
  });

  test('reprocess leaves quarantined a callback whose subject id cannot be stored exactly, as the worker would', async () => {
    // prepare: a REL-ID callback whose notification_uuid holds a lone UTF-16 surrogate: it parses, but no
    // key can hold it as it is (ingest quarantined it; so would the worker)
    const body = readFileSync(new URL('../fixtures/relid/callback-rejected.json', import.meta.url), 'utf8').replace('9a4f1c3e-2b8d-4e6f-a1c7-5d3e8f0b2a64', 'ops-\\ud800-reprocess');
    const message = quarantinedMessage('relid', 'ops-reprocess-surrogate', { headers: { 'content-type': 'application/json' }, raw: { body, query: '' } },
      'subject id is not well-formed Unicode (a lone UTF-16 surrogate): it cannot be stored exactly');
    await sqs.send(new SendMessageCommand({ QueueUrl: pipeline.info.queueUrl, MessageBody: JSON.stringify(message) }));
    await waitFor('the quarantine item', async () => (await quarantineKeys('relid', message.requestId)).length === 1, 20_000, 250);
    const before = await quarantineKeys('relid', message.requestId);

    // act
    const dry = pipeline.run('reprocess', ['--provider', 'relid', '--dry-run']);
    const real = pipeline.run('reprocess', ['--provider', 'relid']);

    // assess
    assert.equal(dry.status, 0, dry.stderr);
    assert.match(dry.stdout, /still invalid .*subject id is not well-formed Unicode/);
    assert.match(dry.stdout, /dry run: 0 would be requeued, 1 still invalid/);
    assert.equal(real.status, 0, real.stderr);
    assert.match(real.stdout, /0 requeued for the worker.*1 still invalid/);
    assert.deepEqual(await quarantineKeys('relid', message.requestId), before, 'the item left as it was');
    assert.equal(await queueDepth(pipeline.info.queueUrl), 0);
  });

  test("reprocess names each reason a callback is still invalid once: the first issue is not said again after the reason that holds it", async () => {
    // prepare: a TemboPlus body with neither partnerReference nor status (two issues; the reason holds the first)
    const body = readFileSync(new URL('../fixtures/temboplus/invalid/momo-payout-webhook.json', import.meta.url), 'utf8');
    const message = quarantinedMessage('temboplus', 'ops-reprocess-two-issues', { headers: { 'content-type': 'application/json' }, raw: { body, query: '' } }, 'payload does not match the schema');
    await sqs.send(new SendMessageCommand({ QueueUrl: pipeline.info.queueUrl, MessageBody: JSON.stringify(message) }));
    await waitFor('the quarantine item', async () => (await quarantineKeys('temboplus', message.requestId)).length === 1, 20_000, 250);

    // act
    const dry = pipeline.run('reprocess', ['--provider', 'temboplus', '--dry-run']);

    // assess
    assert.equal(dry.status, 0, dry.stderr);
    const line = dry.stdout.split('\n').find((each) => each.includes('request ops-reprocess-two-issues')) ?? '';
    assert.match(line, /^ {2}still invalid .*: payload does not match the schema \(partnerReference: [^)]*\)/);
    assert.equal(line.split('partnerReference:').length - 1, 1, line);
    assert.equal(line.split('status:').length - 1, 1, line);
  });

  test('reprocess that cannot read the secret says so and puts the callback back; the worker quarantines it again, as an item of its own, however soon it takes it', async () => {
    // prepare: a body that parses but names no subject (the secret's subjectField is not in it), so the
    // worker quarantines it whenever it reads it; reprocess is pointed at a copy of the pipeline's
    // runtime.json naming a secrets file it cannot read (the worker's own stays as it is)
    const source = Object.keys(pipeline.secrets['standard-webhooks'].sources as Record<string, unknown>)[0];
    const message = quarantinedMessage('standard-webhooks', 'ops-reprocess-without-secret', {
      headers: { 'content-type': 'application/json', 'webhook-id': 'msg_ops_reprocess_without_secret', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)) },
      pathParameters: { source },
      raw: { body: JSON.stringify({ type: 'invoice.paid', timestamp: '2026-02-01T00:00:00Z', data: { amount: 4300 } }), query: '' },
    }, 'cannot read the status: the subject field "data.id" is missing or not short text or a safe integer');
    await sqs.send(new SendMessageCommand({ QueueUrl: pipeline.info.queueUrl, MessageBody: JSON.stringify(message) }));
    const kept = () => quarantineKeys('standard-webhooks', message.requestId);
    await waitFor('the quarantine item', async () => (await kept()).length === 1, 20_000, 250);
    const [before] = await kept();
    const elsewhere = join(pipeline.dataDir, 'no-secrets');
    mkdirSync(elsewhere);
    const missing = join(elsewhere, 'secrets.json');
    writeFileSync(join(elsewhere, 'runtime.json'), JSON.stringify({ ...pipeline.info, secretsFile: missing }));

    // act
    const json = pipeline.run('reprocess', ['--provider', 'standard-webhooks', '--dry-run', '--json'], { dataDir: elsewhere });
    const reprocessed = pipeline.run('reprocess', ['--provider', 'standard-webhooks'], { dataDir: elsewhere });

    // assess: it says it checked without the secret (where the secret should have been, not what it
    // holds), and requeued anyway; reprocess removed its item, and the worker's second quarantine is an
    // item of its own
    assert.equal(reprocessed.status, 0, reprocessed.stderr);
    assert.match(reprocessed.stderr, /standard-webhooks: checked without its secret \(cannot read the standard-webhooks secret: secrets file .*secrets\.json does not exist\)/);
    assert.match(reprocessed.stdout, /requeued +.*request ops-reprocess-without-secret/);
    assert.match(reprocessed.stdout, /checked without the secret of standard-webhooks: the worker checks with it and quarantines again what it still cannot store/);
    const report = JSON.parse(json.stdout);
    assert.deepEqual(report.withoutSecret, [{ provider: 'standard-webhooks', reason: `cannot read the standard-webhooks secret: secrets file ${missing} does not exist` }]);
    await waitFor('the callback quarantined again, under a key of its own', async () => {
      const now = await kept();
      return now.length === 1 && now[0] !== before;
    }, 20_000, 250);
    await waitFor('the queue to be empty', async () => (await queueDepth(pipeline.info.queueUrl)) === 0, 20_000, 250);
    assert.equal((await kept()).length, 1);
  });

  test("reprocess shows a sender's control and bidi characters in its lines as escapes, never raw", async () => {
    // prepare: a TemboPlus body naming one member twice, the name a terminal would obey (a BiDi
    // override, a zero-width space, an 8-bit CSI and an ESC clearing the screen); the reason names it
    const name = '\u202eevil\u200b\u009b2J\u001b[2J';
    const body = `{"partnerReference":"OPS-ESCAPES",${JSON.stringify(name)}:1,${JSON.stringify(name)}:2}`;
    const message = quarantinedMessage('temboplus', 'ops-reprocess-escapes', { headers: { 'content-type': 'application/json' }, raw: { body, query: '' } }, 'a member is given more than once; which value is true is not said');
    await sqs.send(new SendMessageCommand({ QueueUrl: pipeline.info.queueUrl, MessageBody: JSON.stringify(message) }));
    await waitFor('the quarantine item', async () => (await quarantineKeys('temboplus', message.requestId)).length === 1, 20_000, 250);

    // act
    const dry = pipeline.run('reprocess', ['--provider', 'temboplus', '--dry-run']);

    // assess: the line names the member, each of those characters written as its escape
    assert.equal(dry.status, 0, dry.stderr);
    const line = dry.stdout.split('\n').find((each) => each.includes('request ops-reprocess-escapes')) ?? '';
    assert.ok(line.includes('"\\u202eevil\\u200b\\u009b2J\\u001b[2J"'), line);
    for (const each of dry.stdout.split('\n')) assert.equal(each, printable(each), 'no line holds a character printable escapes');
  });

  test('reprocess lists a quarantine item whose message cannot be read as still invalid, leaves it, and goes on to the others', async () => {
    // prepare: an item written by hand in eSMS's quarantine partition, first in key order, whose message
    // is not JSON; after it, a quarantined callback the current code reads
    const unreadable = { pk: { S: keys.quarantinePartition('esms') }, sk: { S: 'QUARANTINE#0000-by-hand' }, provider: { S: 'esms' }, requestId: { S: 'ops-by-hand' }, receivedAt: { S: new Date().toISOString() }, reason: { S: 'written by hand' }, message: { S: 'not json' } };
    await dynamo.send(new PutItemCommand({ TableName: pipeline.info.tableName, Item: unreadable }));
    const sample = listSamples('esms')[0];
    const message = quarantinedMessage('esms', 'ops-reprocess-after-unreadable', { method: 'GET', headers: {}, pathParameters: { token: pipeline.secrets.esms.token as string }, raw: { query: sample.query!, body: '' } }, 'an older schema refused it');
    await sqs.send(new SendMessageCommand({ QueueUrl: pipeline.info.queueUrl, MessageBody: JSON.stringify(message) }));
    await waitFor('the quarantine item', async () => (await quarantineKeys('esms', message.requestId)).length === 1, 20_000, 250);

    // act
    const dry = pipeline.run('reprocess', ['--provider', 'esms', '--dry-run', '--json']);
    const real = pipeline.run('reprocess', ['--provider', 'esms']);

    // assess: the unreadable item is named and kept; the callback after it is requeued and removed
    assert.equal(dry.status, 0, dry.stderr);
    const report = JSON.parse(dry.stdout);
    assert.equal(report.error, undefined);
    assert.deepEqual(report.items.map((item: { requestId: string; action: string }) => [item.requestId, item.action]), [['ops-by-hand', 'still-invalid'], ['ops-reprocess-after-unreadable', 'would-requeue']]);
    assert.match(report.items[0].reason, /its stored message cannot be read/);
    assert.equal(real.status, 0, real.stderr);
    assert.match(real.stdout, /still invalid .*request ops-by-hand .*its stored message cannot be read/);
    assert.match(real.stdout, /requeued +.*request ops-reprocess-after-unreadable/);
    assert.deepEqual(await quarantineKeys('esms', 'ops-by-hand'), ['QUARANTINE#0000-by-hand']);
    assert.deepEqual(await quarantineKeys('esms', message.requestId), []);
  });

  test("redrive --dry-run shows a message's control and bidi characters as escapes, never raw", async () => {
    // prepare: a message in the DLQ whose ids hold what a terminal obeys (an OSC 52 clipboard write, a
    // screen clear, a bare carriage return, a BiDi override): anything that may send to the queue can
    // put it there
    const hostile = { v: 1, provider: 'telesign\u202e', requestId: 'ops-dlq-\u001b]52;c;cHduZWQ=\u0007\u001b[2J', receivedAt: '2026-01-01T00:00:00Z\rOVERWRITTEN' };
    await sqs.send(new SendMessageCommand({ QueueUrl: pipeline.info.dlqUrl, MessageBody: JSON.stringify(hostile) }));

    // act
    const dry = pipeline.run('redrive', ['--dry-run']);

    // assess: each character is written as its escape
    assert.equal(dry.status, 0, dry.stderr);
    assert.ok(dry.stdout.includes('request ops-dlq-\\u001b]52;c;cHduZWQ=\\u0007\\u001b[2J'), dry.stdout);
    assert.ok(dry.stdout.includes('2026-01-01T00:00:00Z\\u000dOVERWRITTEN'), dry.stdout);
    assert.ok(dry.stdout.includes('telesign\\u202e'), dry.stdout);
    for (const each of dry.stdout.split('\n')) assert.equal(each, printable(each), 'no line holds a character printable escapes');
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: pipeline.info.dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    for (const message of Messages) await sqs.send(new DeleteMessageCommand({ QueueUrl: pipeline.info.dlqUrl, ReceiptHandle: message.ReceiptHandle }));
  });
});
