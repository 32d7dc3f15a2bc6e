import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DescribeStreamCommand, DynamoDBStreamsClient, GetRecordsCommand, GetShardIteratorCommand, type _Record } from '@aws-sdk/client-dynamodb-streams';
import { ChangeMessageVisibilityCommand, CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { marshall } from '@aws-sdk/util-dynamodb';
import { keys } from '../../functions/core/pipeline-definition.ts';
import { DETAIL_TYPES, eventsFromChange } from '../../functions/core/publish.ts';
import { ensureTable, LOCAL_AWS, startDynamoDbLocal, startSqsServer, type DynamoDbLocal, type SqsServer } from '../../local/engines.ts';
import { replayEventsDlq } from '../../local/events-replay.ts';
import { toStreamRecord } from '../../local/stream-reader.ts';
import { startEventBridgeStandIn, type EventBridgeStandIn } from '../support/eventbridge-stand-in.ts';
import { commandEnv, ROOT } from '../support/e2e-pipeline.ts';

/**
 * `npm run redrive -- --events` against a deployed stack's engines: DynamoDB Local and its stream,
 * the SQS-API server holding the events DLQ, and the PutEvents stand-in for the bus, each reached
 * through the SDK's service endpoint variables as a deployed stack's are through AWS. The DLQ gets
 * the message Lambda's DynamoDB event source sends its on-failure destination, shaped as documented
 * (https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html).
 */

const TABLE = 'events-replay';
const BUS = 'events-replay-bus';
let dynamoDb: DynamoDbLocal;
let sqsServer: SqsServer;
let bus: EventBridgeStandIn;
let dynamo: DynamoDBClient;
let sqs: SQSClient;
let streams: DynamoDBStreamsClient;
let streamArn: string;

interface ShardRecord {
  readonly shardId: string;
  readonly record: _Record;
}

/** Every record of the table's stream, with its shard, oldest first per shard. */
async function streamRecords(): Promise<ShardRecord[]> {
  const { StreamDescription } = await streams.send(new DescribeStreamCommand({ StreamArn: streamArn }));
  const found: ShardRecord[] = [];
  for (const shard of StreamDescription?.Shards ?? []) {
    let { ShardIterator: iterator } = await streams.send(new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' }));
    while (iterator) {
      const page = await streams.send(new GetRecordsCommand({ ShardIterator: iterator }));
      const records = page.Records ?? [];
      found.push(...records.map((record) => ({ shardId: shard.ShardId!, record })));
      iterator = records.length === 0 ? undefined : page.NextShardIterator;
    }
  }
  return found;
}

/** A state change as the worker writes it: a subject's state item at `version`. */
async function writeState(provider: string, subjectId: string, version: number, status: string, part?: string): Promise<void> {
  const at = new Date(Date.UTC(2026, 0, 1, 0, 0, version)).toISOString();
  await dynamo.send(
    new PutItemCommand({
      TableName: TABLE,
      Item: marshall({
        pk: keys.subject(provider, subjectId),
        sk: part === undefined ? 'STATE' : `STATE#${part}`,
        provider,
        subjectId,
        ...(part === undefined ? {} : { part }),
        status,
        outcome: status === 'COMPLETED' ? 'succeeded' : 'pending',
        terminal: status === 'COMPLETED',
        version,
        createdAt: '2026-01-01T00:00:00.000Z',
        changedAt: at,
        statusAt: at,
      }),
    }),
  );
}

/** The records of these subjects, in stream order, each with the eventIds the publisher's core gives its change. */
async function recordsOf(subjectIds: readonly string[]) {
  const all = await streamRecords();
  return all
    .filter(({ record }) => subjectIds.some((id) => record.dynamodb?.Keys?.pk?.S?.endsWith(`#${id}`)))
    .map(({ shardId, record }) => ({ shardId, sequenceNumber: record.dynamodb!.SequenceNumber!, eventIds: eventsFromChange(toStreamRecord(record).change).map((event) => event.detail.eventId) }));
}

/** The message Lambda's event source puts in the on-failure destination, for records `first`..`last` of one shard. */
function lambdaFailureMessage(shardId: string, first: string, last: string, batchSize: number) {
  return {
    requestContext: { requestId: randomUUID(), functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:publisher', condition: 'RetryAttemptsExhausted', approximateInvokeCount: 1 },
    responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
    version: '1.0',
    timestamp: '2026-01-01T12:00:05.000Z',
    DDBStreamBatchInfo: {
      shardId,
      startSequenceNumber: first,
      endSequenceNumber: last,
      approximateArrivalOfFirstRecord: '2026-01-01T00:00:01Z',
      approximateArrivalOfLastRecord: '2026-01-01T00:00:03Z',
      batchSize,
      streamArn,
    },
  };
}

async function newDlq(): Promise<string> {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: `events-dlq-${randomUUID().slice(0, 8)}` }));
  return QueueUrl!;
}

async function dlqBodies(url: string): Promise<unknown[]> {
  const { Attributes = {} } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
  assert.equal(Number(Attributes.ApproximateNumberOfMessagesNotVisible), 0, 'messages left are visible again');
  const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 0 }));
  return Messages.map((message) => JSON.parse(message.Body!));
}

/** `npm run redrive -- --events …` as a child process (the engines answer from this one, so it must not block). */
function redriveEvents(args: readonly string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return startRedriveEvents(['--table', TABLE, ...args]).done;
}

/** The same, started: `child` to signal it, `done` once it ended. */
function startRedriveEvents(args: readonly string[]): { child: ChildProcess; said: () => string; done: Promise<{ status: number | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'local/redrive.ts', '--events', '--bus', BUS, '--region', 'us-east-1', ...args], {
    cwd: ROOT,
    env: commandEnv({
      AWS_ENDPOINT_URL_SQS: sqsServer.endpoint,
      AWS_ENDPOINT_URL_DYNAMODB_STREAMS: dynamoDb.endpoint,
      AWS_ENDPOINT_URL_EVENTBRIDGE: bus.endpoint,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_PROFILE: undefined,
      AWS_REGION: undefined,
      npm_lifecycle_event: undefined,
    }),
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return { child, said: () => stderr, done: new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr }))) };
}

/** The eventIds the bus took, in order. */
const busEventIds = () => bus.accepted.map((entry) => (JSON.parse(entry.Detail!) as { eventId: string }).eventId);

describe('redrive --events: the changes the publisher gave up on, replayed from the stream', { timeout: 180_000 }, () => {
  before(async () => {
    [dynamoDb, sqsServer, bus] = await Promise.all([startDynamoDbLocal(), startSqsServer(), startEventBridgeStandIn()]);
    dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: dynamoDb.endpoint });
    sqs = new SQSClient({ ...LOCAL_AWS, endpoint: sqsServer.endpoint });
    streams = new DynamoDBStreamsClient({ ...LOCAL_AWS, endpoint: dynamoDb.endpoint });
    ({ streamArn } = await ensureTable(dynamo, TABLE));
  });

  after(async () => {
    dynamo?.destroy();
    sqs?.destroy();
    streams?.destroy();
    await Promise.all([bus?.stop(), sqsServer?.stop(), dynamoDb?.stop()]);
  });

  test('publishes each change of the range once, with the eventId the publisher gives it, and deletes the message', async () => {
    // prepare: six writes; the publisher gave up on the middle four, one of them a write the
    // stream's filter kept from it (a stored callback of a provider that gives no instructions)
    const [a, b] = [`REPLAY-A-${randomUUID().slice(0, 8)}`, `REPLAY-B-${randomUUID().slice(0, 8)}`];
    await writeState('temboplus', a, 1, 'PENDING');
    await writeState('temboplus', a, 2, 'PROCESSING');
    await dynamo.send(new PutItemCommand({ TableName: TABLE, Item: marshall({ pk: keys.subject('temboplus', a), sk: 'EVENT#callback-1', provider: 'temboplus', subjectId: a, receivedAt: '2026-01-01T00:00:02.000Z' }) }));
    await writeState('temboplus', b, 1, 'PENDING');
    await writeState('temboplus', a, 3, 'COMPLETED');
    await writeState('temboplus', b, 2, 'COMPLETED');
    const records = await recordsOf([a, b]);
    assert.deepEqual(records.map((record) => record.eventIds.length), [1, 1, 0, 1, 1, 1]);
    assert.ok(records.every((record) => record.shardId === records[0].shardId));
    const range = records.slice(1, 5);
    const dlqUrl = await newDlq();
    await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: JSON.stringify(lambdaFailureMessage(range[0].shardId, range[0].sequenceNumber, range[3].sequenceNumber, 3)) }));
    bus.accepted.length = 0;

    // act
    const run = await redriveEvents(['--dlq-url', dlqUrl, '--json']);

    // assess: the three changes of the range, in stream order, each once; not the two outside it
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(busEventIds(), range.flatMap((record) => record.eventIds));
    assert.ok(bus.accepted.every((entry) => entry.EventBusName === BUS && entry.DetailType === DETAIL_TYPES.statusChanged));
    assert.deepEqual(await dlqBodies(dlqUrl), [], 'the message is deleted');
    const report = JSON.parse(run.stdout);
    assert.equal(report.replayed, 1);
    assert.equal(report.published, 3);
    assert.equal(report.messages[0].result, 'replayed');
  });

  test("overlapping messages (a batch and Lambda's half of it) publish each change once, in stream order", async () => {
    // prepare: three changes of one subject; the DLQ holds the whole batch and its second half
    const k = `REPLAY-K-${randomUUID().slice(0, 8)}`;
    await writeState('temboplus', k, 1, 'PENDING');
    await writeState('temboplus', k, 2, 'PROCESSING');
    await writeState('temboplus', k, 3, 'COMPLETED');
    const records = await recordsOf([k]);
    const dlqUrl = await newDlq();
    await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: JSON.stringify(lambdaFailureMessage(records[0].shardId, records[1].sequenceNumber, records[2].sequenceNumber, 2)) }));
    await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: JSON.stringify(lambdaFailureMessage(records[0].shardId, records[0].sequenceNumber, records[2].sequenceNumber, 3)) }));
    bus.accepted.length = 0;

    // act
    const dry = await redriveEvents(['--dlq-url', dlqUrl, '--dry-run', '--json']);
    const run = await redriveEvents(['--dlq-url', dlqUrl, '--json']);

    // assess: v1, v2, v3 once each, never v2 again after v3; both messages done with
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(busEventIds(), records.flatMap((record) => record.eventIds));
    assert.deepEqual(await dlqBodies(dlqUrl), []);
    const report = JSON.parse(run.stdout);
    assert.equal(report.replayed, 2);
    assert.deepEqual(report.messages.map((message: { records: number; alreadyReplayed?: number; published: number }) => [message.records, message.alreadyReplayed, message.published]), [[3, undefined, 3], [2, 2, 0]]);
    assert.deepEqual(JSON.parse(dry.stdout).messages.map((message: { events: number }) => message.events), [3, 0]);
  });

  test('an event the bus refuses for what it holds is set aside in the DLQ, as the publisher sets it aside, and the batch deleted', async () => {
    // prepare
    const d = `REPLAY-D-${randomUUID().slice(0, 8)}`;
    await writeState('temboplus', d, 1, 'PENDING');
    const records = await recordsOf([d]);
    const dlqUrl = await newDlq();
    await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: JSON.stringify(lambdaFailureMessage(records[0].shardId, records[0].sequenceNumber, records[0].sequenceNumber, 1)) }));
    bus.accepted.length = 0;
    bus.fault = 'malformed';

    // act
    const run = await redriveEvents(['--dlq-url', dlqUrl, '--json']).finally(() => (bus.fault = undefined));

    // assess: the batch is done with; what names the refused event takes its place
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(busEventIds(), []);
    assert.equal(JSON.parse(run.stdout).setAside, 1);
    const left = (await dlqBodies(dlqUrl)) as { setAside?: string; eventId?: string; errorCode?: string; sequenceNumber?: string }[];
    assert.deepEqual(
      left.map(({ setAside, eventId, errorCode, sequenceNumber }) => ({ setAside, eventId, errorCode, sequenceNumber })),
      [{ setAside: 'refused by the event bus', eventId: records[0].eventIds[0], errorCode: 'MalformedDetail', sequenceNumber: records[0].sequenceNumber }],
    );
  });

  test('a bus still failing leaves the message, names the error and exits 1', async () => {
    // prepare
    const c = `REPLAY-C-${randomUUID().slice(0, 8)}`;
    await writeState('temboplus', c, 1, 'PENDING');
    await writeState('temboplus', c, 2, 'COMPLETED');
    const records = await recordsOf([c]);
    const dlqUrl = await newDlq();
    const message = lambdaFailureMessage(records[0].shardId, records[0].sequenceNumber, records[1].sequenceNumber, 2);
    await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: JSON.stringify(message) }));
    bus.accepted.length = 0;
    bus.fault = 'refuse';

    // act
    const run = await redriveEvents(['--dlq-url', dlqUrl]).finally(() => (bus.fault = undefined));

    // assess: and the publisher's WARN line says what happens here, not that the stream retries
    assert.equal(run.status, 1, run.stderr);
    assert.deepEqual(busEventIds(), []);
    assert.match(run.stdout, /the bus is still failing \(.*InternalFailure.*\); left in the DLQ/);
    assert.match(run.stderr, /publish failed; the DLQ message stays for the next run/);
    assert.doesNotMatch(run.stderr, /the stream retries/);
    assert.deepEqual(await dlqBodies(dlqUrl), [message]);
  });

  test("a read of the stream that fails stops the run there: the shard's later batches are not published ahead of it", async () => {
    // prepare: two batches of one shard; the stream refuses to read the first (a position it finds
    // invalid here; on AWS as well a throttled or refused read)
    const g = `REPLAY-G-${randomUUID().slice(0, 8)}`;
    await writeState('temboplus', g, 1, 'PENDING');
    const records = await recordsOf([g]);
    const dlqUrl = await newDlq();
    const unreadable = lambdaFailureMessage(records[0].shardId, '0'.repeat(21), '0'.repeat(21), 1);
    const later = lambdaFailureMessage(records[0].shardId, records[0].sequenceNumber, records[0].sequenceNumber, 1);
    await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: JSON.stringify(later) }));
    await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: JSON.stringify(unreadable) }));
    bus.accepted.length = 0;

    // act
    const run = await redriveEvents(['--dlq-url', dlqUrl, '--json']);

    // assess
    assert.equal(run.status, 1, run.stderr);
    assert.deepEqual(busEventIds(), []);
    const report = JSON.parse(run.stdout);
    assert.deepEqual(
      report.messages.map((message: { result: string; startSequenceNumber: string }) => `${message.result} ${message.startSequenceNumber}`),
      [`read-failed ${'0'.repeat(21)}`, `not-reached ${records[0].sequenceNumber}`],
    );
    assert.equal((await dlqBodies(dlqUrl)).length, 2);
  });

  test('an open shard that gives only empty pages before the end of the range is a failed read (run again), not records past the stream', async () => {
    // prepare: a range whose end the open shard has not reached (yet)
    const h = `REPLAY-H-${randomUUID().slice(0, 8)}`;
    await writeState('temboplus', h, 1, 'PENDING');
    const records = await recordsOf([h]);
    const dlqUrl = await newDlq();
    const message = lambdaFailureMessage(records[0].shardId, records[0].sequenceNumber, `9${records[0].sequenceNumber.slice(1)}`, 2);
    await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: JSON.stringify(message) }));
    bus.accepted.length = 0;

    // act
    const run = await redriveEvents(['--dlq-url', dlqUrl]);

    // assess: nothing published, the message left, and not called past the stream's 24 hours
    assert.equal(run.status, 1, run.stderr);
    assert.deepEqual(busEventIds(), []);
    assert.match(run.stdout, /the stream could not be read \(the open shard gave 20 empty pages in a row before 9\d+ \(read 1 record\(s\) of the range\): run again\); left in the DLQ/);
    assert.doesNotMatch(run.stdout, /past the stream's 24 hours/);
    assert.deepEqual(await dlqBodies(dlqUrl), [message]);
  });

  test('a position the stream no longer holds leaves the message, and says when its changes were written', async () => {
    // prepare: a shard the stream does not have (trimmed away, or another stream's)
    const dlqUrl = await newDlq();
    const message = lambdaFailureMessage('shardId-00000001573689847184-864758bb', '800000000003126276362', '800000000003126276362', 1);
    await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: JSON.stringify(message) }));
    bus.accepted.length = 0;

    // act
    const run = await redriveEvents(['--dlq-url', dlqUrl]);

    // assess
    assert.equal(run.status, 1, run.stderr);
    assert.deepEqual(busEventIds(), []);
    assert.match(run.stdout, /shardId-00000001573689847184-864758bb 800000000003126276362\.\.800000000003126276362: its records are past the stream's 24 hours/);
    assert.match(run.stdout, /written 2026-01-01T00:00:01Z to 2026-01-01T00:00:03Z: have subscribers re-read/);
    assert.deepEqual(await dlqBodies(dlqUrl), [message]);
  });

  test('a setAside message is listed by its ids and left, not replayed', async () => {
    // prepare: what the publisher sets aside for an event the bus refused for what it holds
    const dlqUrl = await newDlq();
    const setAside = {
      setAside: 'refused by the event bus',
      errorCode: 'MalformedDetail',
      detailType: DETAIL_TYPES.statusChanged,
      eventId: '0123456789abcdef0123456789abcdef',
      provider: 'temboplus',
      // as a message written by hand could name it: a phone number in full
      subjectId: 'REPLAY-255712345678',
      version: 4,
      time: '2026-01-01T00:00:04.000Z',
      sequenceNumber: '4100000000000000000001',
    };
    // and one written by hand, a phone number in each of its other ids
    const crafted = { ...setAside, eventId: '+255712345678', detailType: 'call 255712345678', provider: '255712345678', errorCode: 'x 255712345678' };
    await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: JSON.stringify(setAside) }));
    await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: JSON.stringify(crafted) }));
    bus.accepted.length = 0;

    // act
    const run = await redriveEvents(['--dlq-url', dlqUrl]);
    const json = await redriveEvents(['--dlq-url', dlqUrl, '--json']);

    // assess
    assert.equal(run.status, 0, run.stderr);
    assert.equal(json.status, 0, json.stderr);
    assert.deepEqual(busEventIds(), []);
    assert.match(run.stdout, /setAside Callback Status Changed 0123456789abcdef0123456789abcdef \(temboplus REPLAY-\S*678, MalformedDetail\): not replayable; left/);
    for (const output of [run.stdout, run.stderr, json.stdout, json.stderr]) assert.doesNotMatch(output, /255712345678/);
    assert.match(run.stdout, /2 setAside message\(s\) left in the DLQ/);
    const left = (await dlqBodies(dlqUrl)) as { eventId: string }[];
    assert.deepEqual(left.sort((x, y) => x.eventId.localeCompare(y.eventId)), [crafted, setAside]);
  });

  test('a command line that mixes --events with the other DLQs\' flags, or lacks the bus, is refused (exit 2) and nothing is done', async () => {
    // prepare
    const dlqUrl = await newDlq();
    const message = lambdaFailureMessage('shardId-00000001573689847184-864758bb', '800000000003126276362', '800000000003126276362', 1);
    await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: JSON.stringify(message) }));

    // act
    const runs = await Promise.all([
      redriveEvents(['--dlq-url', dlqUrl, '--max', '5']),
      redriveEvents(['--dlq-url', dlqUrl, '--relay']),
      redriveEvents(['--dlq-url', dlqUrl, '--bus', '']),
      startRedriveEvents(['--dlq-url', dlqUrl]).done,
    ]);

    // assess
    assert.deepEqual(runs.map((run) => run.status), [2, 2, 2, 2]);
    assert.match(runs[0].stderr, /--max does not apply/);
    assert.match(runs[1].stderr, /--relay does not apply/);
    for (const run of runs.slice(2)) assert.match(run.stderr, /--events needs --dlq-url .*--bus .* and --table \(the stack output TableName\)/);
    assert.deepEqual(await dlqBodies(dlqUrl), [message]);
  });

  test("a message naming another table's stream, or not shaped as Lambda writes it, is neither read nor published nor echoed, and is left", async () => {
    // prepare: someone allowed to send to the DLQ names a range of another table's stream (its
    // changes are not this gateway's), and one with a phone number as its shard and a huge range
    const other = `${TABLE}-other`;
    const { streamArn: otherArn } = await ensureTable(dynamo, other);
    const e = `REPLAY-E-${randomUUID().slice(0, 8)}`;
    await dynamo.send(
      new PutItemCommand({
        TableName: other,
        Item: marshall({ pk: keys.subject('temboplus', e), sk: 'STATE', provider: 'temboplus', subjectId: e, status: 'PENDING', outcome: 'pending', terminal: false, version: 1, createdAt: '2026-01-01T00:00:00.000Z', changedAt: '2026-01-01T00:00:01.000Z', statusAt: '2026-01-01T00:00:01.000Z' }),
      }),
    );
    const { StreamDescription } = await streams.send(new DescribeStreamCommand({ StreamArn: otherArn }));
    const shardId = StreamDescription!.Shards![0].ShardId!;
    const { ShardIterator } = await streams.send(new GetShardIteratorCommand({ StreamArn: otherArn, ShardId: shardId, ShardIteratorType: 'TRIM_HORIZON' }));
    const [record] = (await streams.send(new GetRecordsCommand({ ShardIterator }))).Records!;
    const foreign = { ...lambdaFailureMessage(shardId, record.dynamodb!.SequenceNumber!, record.dynamodb!.SequenceNumber!, 1) };
    foreign.DDBStreamBatchInfo.streamArn = otherArn;
    const crafted = lambdaFailureMessage('shardId-call-me-on-+255712345678-now', '1', '9'.repeat(2000), 1);
    const dlqUrl = await newDlq();
    await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: JSON.stringify(foreign) }));
    await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: JSON.stringify(crafted) }));
    bus.accepted.length = 0;

    // act
    const run = await redriveEvents(['--dlq-url', dlqUrl]);
    const json = await redriveEvents(['--dlq-url', dlqUrl, '--json']);

    // assess
    assert.equal(run.status, 1, run.stderr);
    assert.deepEqual(busEventIds(), [], "nothing of the other table's is published");
    assert.match(run.stdout, new RegExp(`the stream is table ${other}'s \\(account \\d{12}\\), not ${TABLE}'s.*: not read; left in the DLQ`));
    assert.match(run.stdout, /not a message of the events DLQ; left/);
    const report = JSON.parse(json.stdout);
    assert.deepEqual(report.messages.map((message: { kind: string; result: string }) => `${message.kind} ${message.result}`).sort(), ['batch other-table', 'unknown left']);
    for (const output of [run.stdout, run.stderr, json.stdout, json.stderr]) assert.doesNotMatch(output, /255712345678|9{40}/);
    const left = (await dlqBodies(dlqUrl)) as { DDBStreamBatchInfo: { shardId: string } }[];
    assert.deepEqual(left.map((body) => body.DDBStreamBatchInfo.shardId).sort(), [crafted.DDBStreamBatchInfo.shardId, shardId].sort());
  });

  test('Ctrl-C ends the run after the message under way: that one published and deleted, the rest left and visible again (exit 130)', async () => {
    // prepare: two batch messages of one shard
    const f = `REPLAY-F-${randomUUID().slice(0, 8)}`;
    await writeState('temboplus', f, 1, 'PENDING');
    await writeState('temboplus', f, 2, 'COMPLETED');
    const records = await recordsOf([f]);
    const dlqUrl = await newDlq();
    const [first, second] = records.map((record) => lambdaFailureMessage(record.shardId, record.sequenceNumber, record.sequenceNumber, 1));
    await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: JSON.stringify(second) }));
    await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: JSON.stringify(first) }));
    bus.accepted.length = 0;

    // act: Ctrl-C while the first message's events are on their way to the bus (answered once the
    // command has taken it in)
    const started = startRedriveEvents(['--table', TABLE, '--dlq-url', dlqUrl, '--json']);
    bus.onCall = async () => {
      bus.onCall = undefined;
      started.child.kill('SIGINT');
      const alive = () => started.child.exitCode === null && started.child.signalCode === null;
      while (alive() && !started.said().includes('interrupted:')) await new Promise((resolve) => setTimeout(resolve, 20));
    };
    const run = await started.done.finally(() => (bus.onCall = undefined));

    // assess
    assert.equal(run.status, 130, run.stderr + run.stdout);
    assert.deepEqual(busEventIds(), records[0].eventIds);
    assert.deepEqual(await dlqBodies(dlqUrl), [second], 'the second is left, visible again');
    const report = JSON.parse(run.stdout);
    assert.equal(report.interrupted, true);
    assert.deepEqual(report.messages.map((message: { result: string }) => message.result), ['replayed', 'not-reached']);
  });

  test('--dry-run names what would be published, masked, and sends and deletes nothing', async () => {
    // prepare: an eSMS recipient's state (its part is a phone number)
    // letters only: a run of digits in a random id would be masked as a phone number is
    const smsId = `REPLAY-SMS-${randomUUID().slice(0, 8).replace(/\d/g, (digit) => 'ghijklmnop'[Number(digit)])}`;
    await writeState('esms', smsId, 1, 'SENT', '84901888484');
    const records = await recordsOf([smsId]);
    const dlqUrl = await newDlq();
    const message = lambdaFailureMessage(records[0].shardId, records[0].sequenceNumber, records[0].sequenceNumber, 1);
    await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: JSON.stringify(message) }));
    bus.accepted.length = 0;
    const callsBefore = bus.calls;

    // act
    const text = await redriveEvents(['--dlq-url', dlqUrl, '--dry-run']);
    const json = await redriveEvents(['--dlq-url', dlqUrl, '--dry-run', '--json']);

    // assess
    assert.equal(text.status, 0, text.stderr);
    assert.equal(json.status, 0, json.stderr);
    assert.equal(bus.calls, callsBefore, 'nothing sent');
    assert.deepEqual(await dlqBodies(dlqUrl), [message], 'nothing deleted');
    assert.match(text.stdout, new RegExp(`would publish 1 event\\(s\\)[\\s\\S]*${records[0].eventIds[0]} esms ${smsId}`));
    for (const output of [text.stdout, text.stderr, json.stdout, json.stderr]) assert.doesNotMatch(output, /84901888484/);
    const report = JSON.parse(json.stdout);
    assert.equal(report.dryRun, true);
    assert.equal(report.messages[0].result, 'would-replay');
    assert.deepEqual(report.messages[0].wouldPublish.map((event: { eventId: string }) => event.eventId), records[0].eventIds);
  });

  test("a message whose hold the run lost (another run may have it) is neither published nor deleted, and the run stops there", async () => {
    // prepare: two subjects' changes, one message each, in stream order; SQS refuses to renew the
    // second message's hold, as it does once the hold has ended (a run that outlasted it)
    const [e, f] = [`REPLAY-E-${randomUUID().slice(0, 8)}`, `REPLAY-F-${randomUUID().slice(0, 8)}`];
    await writeState('temboplus', e, 1, 'PENDING');
    await writeState('temboplus', f, 1, 'PENDING');
    const [first, second] = await recordsOf([e, f]);
    const dlqUrl = await newDlq();
    for (const record of [first, second]) {
      await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: JSON.stringify(lambdaFailureMessage(record.shardId, record.sequenceNumber, record.sequenceNumber, 1)) }));
    }
    let renewals = 0;
    const holdEndsAfterOne = {
      send: (command: Parameters<SQSClient['send']>[0]) => {
        if (command instanceof ChangeMessageVisibilityCommand && command.input.VisibilityTimeout! > 0 && ++renewals > 1) {
          return Promise.reject(Object.assign(new Error('Message does not exist or is not available for visibility timeout change.'), { name: 'MessageNotInflight' }));
        }
        return sqs.send(command as never);
      },
    } as unknown as SQSClient;
    const eventBridge = new EventBridgeClient({ ...LOCAL_AWS, endpoint: bus.endpoint });
    bus.accepted.length = 0;

    // act
    const report = await replayEventsDlq({ sqs: holdEndsAfterOne, streams, eventBridge, dlqUrl, eventBusName: BUS, tableName: TABLE, dryRun: false, say: () => undefined }).finally(() => eventBridge.destroy());

    // assess: the first published and deleted; the second never published, left (visible) in the DLQ
    assert.deepEqual(busEventIds(), first.eventIds, 'was: a message another run may hold was published and deleted all the same');
    assert.deepEqual(report.messages.map((message) => message.result), ['replayed', 'hold-lost']);
    assert.equal(report.replayed, 1);
    assert.equal(report.left, 1);
    const left = (await dlqBodies(dlqUrl)) as { DDBStreamBatchInfo: { startSequenceNumber: string } }[];
    assert.deepEqual(left.map((body) => body.DDBStreamBatchInfo.startSequenceNumber), [second.sequenceNumber]);
  });
});
