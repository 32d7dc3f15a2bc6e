import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { DynamoDBClient, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { keys } from '../../functions/core/pipeline-definition.ts';
import { DETAIL_TYPES, storedInstruction } from '../../functions/core/publish.ts';
import { getProvider } from '../../functions/providers/index.ts';
import { freePort, LOCAL_AWS, waitFor } from '../../local/engines.ts';
import type { BusEvent } from '../../local/event-bus.ts';
import { authenticRequest, findSample } from '../../local/samples.ts';
import type { SimulatedMessage } from '../../local/status-simulator.ts';
import { commandEnv, controlFetch, javaProcessesFor, ROOT, startLocalPipeline, type StartedPipeline } from '../support/e2e-pipeline.ts';
import { secretsFor } from '../providers/index.ts';
import { leaks } from '../support/log-leaks.ts';

/**
 * The SMS relay on the local runtime (`npm start -- --sms-relay telesign`), offline end to end:
 * Identomat's one-time-password callback → the gateway → a "Callback Instruction" on the local bus
 * → the relay queue → the relay → TeleSign's simulated SMS API → its signed delivery report → the
 * gateway's TeleSign route → the Identomat session, as `npm run inspect` shows it. What TeleSign
 * took is read from the simulation's own list (`GET /__simulator/sent`), as TeleSign's portal lists it.
 */

const SAMPLE = findSample('identomat', 'one-time-password');
const SAMPLE_JSON = JSON.parse(SAMPLE.body!.toString()) as { sessionId: string; text: string; phoneNumber: string };
/** What the sample carries that no log line may: the text, the code, the number (with and without its +). */
const NEVER_LOGGED = [SAMPLE_JSON.text, '6867', SAMPLE_JSON.phoneNumber, SAMPLE_JSON.phoneNumber.slice(1)];

let pipeline: StartedPipeline;

async function post(providerId: string, body: Buffer) {
  const request = authenticRequest(getProvider(providerId), pipeline.secrets[providerId], { body });
  const response = await fetch(`${pipeline.info.baseUrl}${request.path}`, { method: request.method, headers: request.headers, body: request.body });
  assert.equal(response.status, 200, `${providerId}: ${await response.text()}`);
}

/** The same code, for another session (Identomat's callback as it sends it). */
const otpFor = (sessionId: string) => Buffer.from(JSON.stringify({ ...SAMPLE_JSON, sessionId }));

/** The simulated TeleSign's control routes (the account's key is their token). */
async function simulator(method: 'GET' | 'PUT', path: string, body?: unknown): Promise<unknown> {
  const response = await controlFetch(`${pipeline.info.simulators.telesign}/__simulator/${path}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${String(pipeline.secrets.telesign.apiKey)}` },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  assert.equal(response.status, 200, await response.clone().text());
  return response.json();
}

/** Every send request the simulated TeleSign SMS API received, oldest first. */
const sent = async () => ((await simulator('GET', 'sent')) as { sent: SimulatedMessage[] }).sent;
/** The messages it took (a reference made) for an instruction: its eventId is our external_id. */
const taken = async (eventId: string) => (await sent()).filter((message) => message.parameters.external_id === eventId && message.referenceId !== undefined);

function published(): BusEvent[] {
  const file = pipeline.info.eventsFile;
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as BusEvent);
}
const instructionsAbout = (sessionId: string) => published().filter((event) => event['detail-type'] === DETAIL_TYPES.instruction && event.detail.subjectId === sessionId);

async function instructionEvent(sessionId: string): Promise<BusEvent> {
  await waitFor(`the instruction event of ${sessionId}`, async () => instructionsAbout(sessionId).length > 0, 20_000, 100);
  return instructionsAbout(sessionId)[0];
}

/** Wait for the delivery report TeleSign sent for `referenceId` to be stored (its status event on the bus). */
async function deliveryStored(referenceId: string): Promise<void> {
  await waitFor(`the delivery report of ${referenceId}`, async () => published().some((event) => event.detail.provider === 'telesign' && event.detail.subjectId === referenceId && 'status' in event.detail && event.detail.status === '200'), 20_000, 100);
}

/** The pipeline's JSON log lines (stdout), parsed. */
const logLines = () => pipeline.output.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);

describe('the SMS relay on the local runtime (npm start -- --sms-relay telesign)', { timeout: 120_000 }, () => {
  before(async () => {
    // TeleSign's Get Status off (opt-in): the delivery report alone sets the message's status.
    const secrets = secretsFor('test', { statusEndpoint: `http://127.0.0.1:${await freePort()}`, asks: false });
    pipeline = await startLocalPipeline({ secrets, extraArgs: ['--sms-relay', 'telesign'] });
  });

  after(async () => {
    const dataDir = pipeline?.dataDir;
    await pipeline?.stop();
    if (dataDir) assert.deepEqual(javaProcessesFor(dataDir), [], 'DynamoDB Local left running');
  });

  test('--sms-relay takes only the stack\'s choices: anything else exits 2 naming the flag, before anything starts', () => {
    const result = spawnSync('npm', ['start', '-s', '--', '--sms-relay', 'twilio', '--port', new URL(pipeline.info.baseUrl).port], { cwd: ROOT, encoding: 'utf8', env: commandEnv(), timeout: 30_000 });
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /--sms-relay must be one of off, telesign \(as the smsRelay setting in cdk\.json\), got "twilio"/);
    assert.equal(result.stdout, '');
  });

  test('the banner names the relay SIMULATED, at the simulated TeleSign SMS API the secrets point to', () => {
    const messaging = `POST ${pipeline.info.simulators.telesign}/v1/messaging`;
    assert.equal(pipeline.info.smsRelay?.sender, 'telesign');
    assert.equal(pipeline.info.smsRelay?.simulated, messaging);
    const banner = pipeline.output.find((line) => line.includes('SMS relay')) ?? '';
    assert.ok(banner.includes(`TeleSign ${messaging}  (SIMULATED`), banner);
  });

  test("the banner shows the relay's settings in effect, by cdk.json's names: smsRelay from the flag, the rest as committed", () => {
    const committed = { smsRelay: 'telesign', relayMaxAgeSeconds: 300, relayAllowedCountryCodes: 'any', relayMaxPerNumberPerHour: 5 };
    assert.deepEqual(pipeline.info.smsRelay?.settings, committed);
    const lines = pipeline.output.join('\n').split('\n');
    const relayRow = lines.findIndex((line) => line.includes('SMS relay'));
    const row = lines.find((line) => line.includes('relayMaxPerNumberPerHour')) ?? '';
    assert.match(row, /^ +smsRelay telesign {3}relayMaxAgeSeconds 300 {3}relayAllowedCountryCodes any {3}relayMaxPerNumberPerHour 5 {2}\(cdk\.json settings; smsRelay from --sms-relay\)$/, `was: no settings row: ${lines.join('\n')}`);
    assert.equal(lines.indexOf(row), relayRow + 2, 'under the relay row and its queues');
    assert.equal(row.indexOf('smsRelay'), lines[relayRow].indexOf('TeleSign'), "in the banner's value column");
  });

  test('an Identomat code: one instruction event, one SMS through TeleSign, its delivery report on the session; sent again, no second SMS', async () => {
    // prepare
    const session = SAMPLE_JSON.sessionId;

    // act: as a user sends it
    const sendRun = pipeline.run('send', ['identomat', 'one-time-password']);
    assert.equal(sendRun.status, 0, sendRun.stderr);
    const event = await instructionEvent(session);
    const eventId = String(event.detail.eventId);
    let messages: SimulatedMessage[] = [];
    await waitFor('the SMS taken by TeleSign', async () => (messages = await taken(eventId)).length > 0, 20_000, 100);
    const referenceId = messages[0].referenceId!;
    await deliveryStored(referenceId);
    messages = await taken(eventId); // as the simulation saw its delivery report answered
    const inspect = pipeline.run('inspect', ['identomat', session]);

    // assess: one request, the code to the number as a one-time password, reported delivered
    assert.equal((await sent()).length, 1, JSON.stringify(await sent()));
    assert.deepEqual(
      { phone_number: messages[0].parameters.phone_number, message: messages[0].parameters.message, message_type: messages[0].parameters.message_type, authorized: messages[0].authorized },
      { phone_number: SAMPLE_JSON.phoneNumber.slice(1), message: SAMPLE_JSON.text, message_type: 'OTP', authorized: true },
    );
    assert.deepEqual(messages[0].reports, [{ status: 200 }], 'the signed delivery report taken by the TeleSign route');
    assert.equal(inspect.status, 0, inspect.stderr);
    assert.match(inspect.stdout, new RegExp(`relayed \\(1\\):\\n +code sent via TeleSign at \\S+, reference ${referenceId}: Delivered to handset \\(200, succeeded\\)\\n`), inspect.stdout);

    // act: Identomat sends the same callback again
    await post('identomat', SAMPLE.body!);
    await waitFor('the second delivery handled', async () => logLines().filter((line) => line.service === 'worker' && line.subjectId === session).length >= 2, 20_000);
    // A barrier: a later change out on the bus means the stream was read past the resent callback.
    const barrier = 'E2ERELAYBARRIER00000000000000000';
    await post('telesign', Buffer.from(JSON.stringify({ reference_id: barrier, status: { code: 200, description: 'x', updated_on: '2026-01-01T00:00:00Z' }, errors: [], sub_resource: 'sms' })));
    await deliveryStored(barrier);
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // a relay delivery already queued would be sent by now

    // assess
    assert.equal(instructionsAbout(session).length, 1);
    assert.equal((await sent()).length, 1, 'no second SMS');
  });

  test('inspect --json keeps the code and the number out of a terminal unless --show-sensitive', () => {
    // act
    const plain = pipeline.run('inspect', ['identomat', SAMPLE_JSON.sessionId, '--json']);
    const shown = pipeline.run('inspect', ['identomat', SAMPLE_JSON.sessionId, '--json', '--show-sensitive']);
    // assess
    assert.equal(plain.status, 0, plain.stderr);
    const events = (JSON.parse(plain.stdout) as { events: Record<string, unknown>[] }).events;
    assert.ok(events.length > 0);
    for (const secret of NEVER_LOGGED) assert.ok(!leaks(plain.stdout, secret), `inspect --json printed ${secret}: ${plain.stdout.slice(Math.max(0, plain.stdout.indexOf(secret) - 300), plain.stdout.indexOf(secret) + 50)}`);
    assert.ok(events.every((event) => event.sensitive !== true || /--show-sensitive prints it/.test(String(event.payload))));
    assert.ok(shown.stdout.includes(SAMPLE_JSON.text) && shown.stdout.includes(SAMPLE_JSON.phoneNumber), 'as stored when asked');
  });

  test('a TeleSign outage (503) loses nothing: the code goes out once, after it recovers, and is reported delivered', async () => {
    // prepare
    const session = 'e2erelayoutage0000000000000000000000001';
    const before = (await sent()).length;
    await simulator('PUT', 'send-fault', { status: 503 });

    // act: the code comes in while TeleSign answers 503
    await post('identomat', otpFor(session));
    const eventId = String((await instructionEvent(session)).detail.eventId);
    await waitFor('two sends refused with 503', async () => (await sent()).slice(before).filter((message) => message.status === 503).length >= 2, 20_000, 100);
    await simulator('PUT', 'send-fault', null);
    let messages: SimulatedMessage[] = [];
    await waitFor('the SMS taken once TeleSign is back', async () => (messages = await taken(eventId)).length > 0, 20_000, 100);
    await deliveryStored(messages[0].referenceId!);
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // a second send would have come by now
    const inspect = pipeline.run('inspect', ['identomat', session]);

    // assess
    assert.equal((await taken(eventId)).length, 1, 'sent once');
    const retries = logLines().filter((line) => line.service === 'relay' && line.message === 'record failed, will retry');
    assert.ok(retries.length >= 2 && retries.every((line) => /503/.test(String(line.error))), JSON.stringify(retries));
    assert.match(inspect.stdout, new RegExp(`code sent via TeleSign at \\S+, reference ${messages[0].referenceId}: Delivered to handset \\(200, succeeded\\)`), inspect.stdout);
  });

  test("TeleSign takes the code and never answers the send: uncertain, never resent, and its delivery report (by external_id) shows on the session", async () => {
    // prepare
    const session = 'e2erelayhang00000000000000000000000000001';
    await simulator('PUT', 'send-fault', { hang: true, times: 1 });

    // act: the code comes in; TeleSign takes it, reports it delivered, and never answers the send
    await post('identomat', otpFor(session));
    const eventId = String((await instructionEvent(session)).detail.eventId);
    let messages: SimulatedMessage[] = [];
    await waitFor('the SMS taken', async () => (messages = await taken(eventId)).length > 0, 20_000, 100);
    await deliveryStored(messages[0].referenceId!);
    const reference = messages[0].referenceId!;
    let inspect = pipeline.run('inspect', ['identomat', session]);
    await waitFor('the session joined to the report', async () => (inspect = pipeline.run('inspect', ['identomat', session])).stdout.includes(`reference ${reference}`), 40_000, 500);
    const json = JSON.parse(pipeline.run('inspect', ['identomat', session, '--json']).stdout) as { relays: { status: string; referenceId?: string; referenceFrom?: string; delivery?: { status: string } }[] };

    // assess
    assert.equal((await taken(eventId)).length, 1, 'sent once, never again');
    assert.match(inspect.stdout, new RegExp(`code may have been sent via TeleSign \\(no answer to the send\\); TeleSign's delivery report, reference ${reference}: Delivered to handset \\(200, succeeded\\)`), inspect.stdout);
    assert.deepEqual(
      json.relays.map((relay) => ({ status: relay.status, referenceId: relay.referenceId, referenceFrom: relay.referenceFrom, delivery: relay.delivery?.status })),
      [{ status: 'uncertain', referenceId: reference, referenceFrom: 'delivery report', delivery: '200' }],
    );
  });

  test('an instruction in the relay\'s dead-letter queue: redrive --relay names it by eventId, moves it back, and it goes out once', async () => {
    // prepare: an instruction the gateway stored whose event the relay gave up on (as after 8 failed
    // receives), dead-lettered. The relay sends only what is stored, so the item is in the table; it is
    // written without its body first and given it after (a rewrite publishes nothing), so that the
    // stream does not publish it again and only the redrive can bring it to the relay.
    const [model] = instructionsAbout(SAMPLE_JSON.sessionId);
    const subjectId = 'e2erelaydlq00000000000000000000000000001';
    const item = {
      ...keys.event('identomat', subjectId, `one-time-password|dlq-${randomBytes(4).toString('hex')}`),
      provider: 'identomat',
      subjectId,
      source: 'callback',
      receivedAt: new Date().toISOString(),
      payload: { ...SAMPLE_JSON, sessionId: subjectId },
    };
    const detail = storedInstruction(item)!;
    const eventId = detail.eventId;
    const dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: pipeline.info.dynamodbEndpoint });
    const { payload, ...withoutBody } = item;
    await dynamo.send(new PutItemCommand({ TableName: pipeline.info.tableName, Item: marshall(withoutBody) }));
    await dynamo.send(new UpdateItemCommand({ TableName: pipeline.info.tableName, Key: marshall({ pk: item.pk, sk: item.sk }), UpdateExpression: 'SET payload = :p', ExpressionAttributeValues: marshall({ ':p': payload }) }));
    dynamo.destroy();
    const sqs = new SQSClient({ ...LOCAL_AWS, endpoint: pipeline.info.sqsEndpoint });
    try {
      await sqs.send(new SendMessageCommand({ QueueUrl: pipeline.info.smsRelay!.dlqUrl, MessageBody: JSON.stringify({ ...model, detail }) }));

      // act
      const dry = pipeline.run('redrive', ['--relay', '--dry-run']);
      const moved = pipeline.run('redrive', ['--relay', '--json']);
      let messages: SimulatedMessage[] = [];
      await waitFor('the redriven SMS taken by TeleSign', async () => (messages = await taken(eventId)).length > 0, 20_000, 100);

      // assess
      assert.equal(dry.status, 0, dry.stderr);
      assert.match(dry.stdout + dry.stderr, new RegExp(`identomat +instruction ${eventId}`));
      assert.equal(moved.status, 0, moved.stderr);
      assert.equal((JSON.parse(moved.stdout) as { moved: number }).moved, 1);
      assert.equal(messages.length, 1);
      assert.ok(!(dry.stdout + dry.stderr + moved.stdout).includes(SAMPLE_JSON.phoneNumber.slice(4)), 'the redrive names ids, never the number');
    } finally {
      sqs.destroy();
    }
  });

  test('relayMaxPerNumberPerHour as cdk.json commits it (5): the sixth code to one number within the clock hour is refused, nothing sent, and the session says why', async () => {
    // prepare: clear of an hour's end, so that the six fall in one clock hour
    const toHourEnd = 3_600_000 - (Date.now() % 3_600_000);
    if (toHourEnd < 30_000) await new Promise((resolve) => setTimeout(resolve, toHourEnd + 1_000));
    const number = '+995599000111';
    const sessions = Array.from({ length: 6 }, (_, i) => `e2erelaycap${String(i).padStart(28, '0')}`);
    const before = (await sent()).length;

    // act: six sessions' codes to the number, each handled before the next comes
    const eventIds: string[] = [];
    for (const session of sessions) {
      await post('identomat', Buffer.from(JSON.stringify({ ...SAMPLE_JSON, sessionId: session, phoneNumber: number })));
      const eventId = String((await instructionEvent(session)).detail.eventId);
      eventIds.push(eventId);
      await waitFor(`the relay's line of ${session}`, async () => logLines().some((line) => line.message === 'relay' && line.eventId === eventId && ['sent', 'refused'].includes(String(line.outcome))), 20_000, 100);
    }
    const inspect = pipeline.run('inspect', ['identomat', sessions[5]]);

    // assess
    const toNumber = (await sent()).slice(before).filter((message) => message.parameters.phone_number === number.slice(1) && message.referenceId !== undefined);
    assert.deepEqual(toNumber.map((message) => message.parameters.external_id), eventIds.slice(0, 5), 'five sent, the sixth never asked TeleSign');
    assert.equal(inspect.status, 0, inspect.stderr);
    assert.match(inspect.stdout, /code not sent: the gateway refused it before asking TeleSign \(5 SMS went to this number in this clock hour \(UTC\) already, the most relayMaxPerNumberPerHour allows: not sent\); the number can be sent to again from \d{4}-\d\d-\d\dT\d\d:00Z \(the next clock hour, UTC\), or sooner with a higher relayMaxPerNumberPerHour/, inspect.stdout);
  });

  test('no code, text or phone number in any line the pipeline printed, though the bus carries them', () => {
    // The control: the instruction event (the one place they belong) holds them.
    const instruction = JSON.stringify(instructionsAbout(SAMPLE_JSON.sessionId)[0]);
    for (const secret of NEVER_LOGGED) assert.ok(instruction.includes(secret), `the control: ${secret} on the bus`);
    assert.ok(logLines().some((line) => line.service === 'relay' && line.outcome === 'sent'), 'the relay logged its sends');
    for (const line of pipeline.output) {
      for (const secret of NEVER_LOGGED) assert.ok(!leaks(line, secret), `"${secret}" in: ${line}`);
    }
  });
});

describe('switching the local relay from simulated to real', { timeout: 180_000 }, () => {
  test('an instruction queued in a simulated run is not sent by the next run with real secrets (a sample code to a stranger\'s phone)', async () => {
    // prepare: a stand-in for the real TeleSign, recording every request it gets
    const asked: string[] = [];
    const real = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        asked.push(body);
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ reference_id: `R${asked.length}`.padEnd(32, '0'), status: { code: 290 } }));
      });
    });
    await new Promise<void>((resolve) => real.listen(0, '127.0.0.1', resolve));
    const secrets = secretsFor('test', { statusEndpoint: `http://127.0.0.1:${await freePort()}`, asks: false });
    let simulated: StartedPipeline | undefined = await startLocalPipeline({ secrets, extraArgs: ['--sms-relay', 'telesign'] });
    let switched: StartedPipeline | undefined;
    try {
      // a simulated run: TeleSign "down", so the code waits in the relay queue when the run stops
      pipeline = simulated;
      await simulator('PUT', 'send-fault', { status: 503 });
      await post('identomat', otpFor('e2erelayswitch00000000000000000000000001'));
      await waitFor('a send refused with 503', async () => (await sent()).some((message) => message.status === 503), 20_000, 100);
      await simulated.stop({ keepData: true });
      const dataDir = simulated.dataDir;
      simulated = undefined;
      // act: the same data, with secrets that send to the "real" TeleSign
      const address = real.address() as AddressInfo;
      switched = await startLocalPipeline({ dataDir, simulators: false, secrets: { ...secrets, telesign: { ...secrets.telesign, baseUrl: `http://127.0.0.1:${address.port}` } }, extraArgs: ['--sms-relay', 'telesign'] });
      const running = switched;
      await waitFor(
        'the queued code let go unsent',
        async () => running.output.some((line) => line.includes('"outcome":"skipped"') && line.includes('queued for another sender')),
        60_000,
        200,
      );
      // assess
      assert.ok((running.output.find((line) => line.includes('SMS relay')) ?? '').includes('REAL'), 'the premise: the second run sends for real');
      assert.deepEqual(asked, [], 'nothing reached the real TeleSign');
    } finally {
      await simulated?.stop();
      await switched?.stop();
      real.close();
    }
  });
});
