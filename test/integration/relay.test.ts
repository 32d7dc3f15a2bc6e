import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { DeleteItemCommand, DynamoDBClient, TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { SQSRecord } from 'aws-lambda';
import { postOnceContext } from '../../functions/adapters/post-once.ts';
import { createRelayStore } from '../../functions/adapters/relay-store.ts';
import { keys, MAX_BODY_BYTES, TABLE } from '../../functions/core/pipeline-definition.ts';
import { DETAIL_TYPES, EVENT_SOURCE, eventsFromChange, instructionEventId, type InstructionDetail, legacyInstructionEventId } from '../../functions/core/publish.ts';
import { QueueMessageSchema } from '../../functions/core/queue-message.ts';
import { countHour, deliveryReportJoin, numberHash, numberKey, parseCountryCodes, RELAY, relayInstruction, type RelayDependencies } from '../../functions/core/relay.ts';
import { createSecretCache } from '../../functions/core/secrets.ts';
import { processMessage } from '../../functions/core/worker.ts';
import { createIngestHandler } from '../../functions/handlers/ingest.ts';
import { createRelayHandler } from '../../functions/handlers/relay.ts';
import { telesign } from '../../functions/providers/telesign.ts';
import type { SendContext } from '../../functions/providers/provider.ts';
import { ConfigurationError, DependencyError } from '../../functions/shared/errors.ts';
import { REPO_ROOT } from '../../lib/gateway-function.ts';
import { LOCAL_AWS } from '../../local/engines.ts';
import { startHttpApi } from '../../local/http-api.ts';
import { relayedLink, relayLine, relayViews } from '../../local/relay-view.ts';
import type { StatusSimulator } from '../../local/status-simulator.ts';
import {
  captureLogger,
  queueMessageFor,
  sampleJson,
  startWorkerEnvironment,
  storedEvents,
  storedPartition,
  storedState,
  uniqueId,
  type CapturedLogger,
  type WorkerEnvironment,
} from '../support/integration-worker.ts';
import { leaks } from '../support/log-leaks.ts';
import { suiteResource } from '../support/suite-resource.ts';

/**
 * The relay on DynamoDB Local, against the kit's simulated TeleSign SMS API: Identomat instructions
 * made by the real ingest and worker from Identomat's own samples, turned into "Callback
 * Instruction" events by the publish core, delivered (and redelivered) through the relay's SQS
 * handler as EventBridge hands them to its queue. TeleSign's delivery report comes back, signed,
 * through the real ingest and worker to the TeleSign subject, and shows on the Identomat session.
 */

let env: WorkerEnvironment;
let simulator: StatusSimulator;
/** Every log line any part wrote during the suite: none may carry a number, a text, a code or a link. */
const logs: CapturedLogger[] = [];

suiteResource(
  async () => {
    env = await startWorkerEnvironment();
    simulator = env.simulators.telesign;
  },
  async () => {
    await env?.stop();
  },
);

const OTP_SAMPLE = sampleJson('identomat', 'one-time-password');
const LINK_SAMPLE = sampleJson('identomat', 'share-session-link-via-sms');
/** What the samples carry that must never be logged. */
const NEVER_LOGGED = [String(OTP_SAMPLE.phoneNumber), String(OTP_SAMPLE.phoneNumber).slice(1), 'Your code is', '6867', String(LINK_SAMPLE.sessionLink), 'session_token', 'Hello John'];

function logger(): CapturedLogger {
  const log = captureLogger();
  logs.push(log);
  return log;
}

/** An Identomat instruction as the gateway stores it and the stream publishes it: the real ingest, worker and publish core. */
async function instruction(sample: Record<string, unknown>, session = uniqueId('sess'), receivedAt?: string): Promise<InstructionDetail> {
  const message = await queueMessageFor(env.secrets, 'identomat', { ...sample, sessionId: session }, { receivedAt });
  await processMessage(message, env.deps({ log: logger() }));
  const stored = (await storedEvents(env, 'identomat', session)).find((event) => event.requestId === message.requestId);
  const [event] = eventsFromChange({ eventName: 'INSERT', newImage: stored });
  assert.equal(event?.detailType, DETAIL_TYPES.instruction);
  return event.detail as InstructionDetail;
}

function relayDeps(overrides: Partial<RelayDependencies> = {}): RelayDependencies {
  return {
    store: createRelayStore(env.client, env.tableName),
    secrets: createSecretCache(async (provider) => JSON.stringify(env.secrets[provider.id])),
    sender: telesign,
    // The deployed relay's timeouts: TeleSign's simulation answers at once, but on a busy machine
    // not always within a second, and an answer that came late is an uncertain send, not a sent one.
    // (A test about a send that is never answered sets a short timeout of its own.)
    send: postOnceContext(),
    now: () => new Date(),
    log: logger(),
    newAttempt: randomUUID,
    retentionDays: 90,
    ...overrides,
  };
}

/** The event as an EventBridge rule hands it to an SQS target, in an SQS record. */
function delivery(detail: InstructionDetail, receiveCount = 1): SQSRecord {
  const messageId = randomUUID();
  const event = { version: '0', id: randomUUID(), 'detail-type': DETAIL_TYPES.instruction, source: EVENT_SOURCE, account: '000000000000', time: detail.receivedAt, region: 'us-east-1', resources: [], detail };
  return {
    messageId,
    receiptHandle: `receipt-${messageId}`,
    body: JSON.stringify(event),
    attributes: { ApproximateReceiveCount: String(receiveCount), SentTimestamp: String(Date.now()), SenderId: 'events.amazonaws.com', ApproximateFirstReceiveTimestamp: String(Date.now()) },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:relay',
    awsRegion: 'us-east-1',
  };
}

/** Messages the simulated TeleSign took for this instruction (its eventId is our external_id). */
const taken = (detail: InstructionDetail) => simulator.sent.filter((message) => message.parameters.external_id === detail.eventId && message.referenceId);

/** TeleSign taking every message, but the relay answered 503 to the first request (the message went out all the same). */
function takenDespiteFirst503(body = '{"status":{"code":503,"description":"Service unavailable"}}'): SendContext {
  const inner = postOnceContext();
  let answered503 = 0;
  return {
    post: async (url, request) => {
      const answer = await inner.post(url, request);
      return answered503++ === 0 ? { status: 503, body } : answer;
    },
  };
}

/** The worker's dependencies, TeleSign's delivery reports joined to the relay's instructions. */
const reportJoiningWorker = () => env.deps({ log: logger(), relayJoin: deliveryReportJoin({ sender: telesign, store: createRelayStore(env.client, env.tableName), retentionDays: 90, now: () => new Date() }) });

/** What a relay delivery came to: its outcome, or the name of the error it threw. */
const outcomeOf = (pending: Promise<{ readonly outcome: string }>) => pending.then((result) => result.outcome, (error: unknown) => (error as Error).name);

/** A relay in a process of its own, delivering `detail` once, returned when TeleSign has taken the message (or after 20 s): to be killed mid-send. */
async function relayUntilTaken(detail: InstructionDetail) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'test', 'support', 'relay-once.ts'), JSON.stringify({ endpoint: env.dynamo.endpoint, tableName: env.tableName, secret: env.secrets.telesign, detail })], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 20_000;
  while (taken(detail).length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  return { child, exited };
}
/** Send requests of any kind TeleSign saw for it (taken, refused or failed). */
const requested = (detail: InstructionDetail) => simulator.sent.filter((message) => message.parameters.external_id === detail.eventId || message.referenceId === undefined);

async function relayItem(detail: InstructionDetail) {
  const items = await storedPartition(env, `identomat#${detail.subjectId}`);
  return items.find((item) => item.sk === `RELAY#${detail.eventId}`);
}

describe('sent once, however often the event comes', () => {
  test('two deliveries at once and two later: one SMS; the second in flight is given back, the later ones do nothing', async () => {
    // prepare
    const detail = await instruction(OTP_SAMPLE);
    const delays: number[] = [];
    const handler = createRelayHandler({ deps: relayDeps(), delayRetry: async (_record, seconds) => void delays.push(seconds), random: () => 0 });

    // act
    const together = await handler({ Records: [delivery(detail), delivery(detail)] });
    const again = await handler({ Records: [delivery(detail, 2)] });
    const once_more = await handler({ Records: [delivery(detail, 3)] });

    // assess
    assert.equal(taken(detail).length, 1, 'TeleSign took one message');
    assert.equal(together.batchItemFailures.length, 1, 'the delivery that found it in flight is given back, to look again');
    assert.deepEqual(delays, [RELAY.retryBaseSeconds]);
    assert.deepEqual(again.batchItemFailures, []);
    assert.deepEqual(once_more.batchItemFailures, []);
    const item = await relayItem(detail);
    assert.equal(item?.status, 'sent');
    assert.equal(item?.referenceId, taken(detail)[0].referenceId);
    assert.equal(item?.attempts, 1);
    const form = taken(detail)[0].parameters;
    assert.deepEqual(
      { phone_number: form.phone_number, message: form.message, message_type: form.message_type },
      { phone_number: String(OTP_SAMPLE.phoneNumber).slice(1), message: OTP_SAMPLE.text, message_type: 'OTP' },
      'the code as Identomat wrote it, to the number without its +',
    );
    assert.equal(item?.destination, undefined, 'the relay item keeps no destination');
    assert.ok(!leaks(JSON.stringify(item), '6867'), 'nor the text');
  });

  test('a link goes out as one SMS with the text and the link (ARN)', async () => {
    // prepare
    const detail = await instruction(LINK_SAMPLE);
    // act
    const result = await relayInstruction(detail, relayDeps());
    // assess
    assert.equal(result.outcome, 'sent');
    const [message] = taken(detail);
    assert.equal(message.parameters.message_type, 'ARN');
    assert.equal(message.parameters.message, `${String(LINK_SAMPLE.text)}\n${String(LINK_SAMPLE.sessionLink)}`);
  });
});

describe('TeleSign busy: its Retry-After is honoured', () => {
  test('a 429 with Retry-After: 120 gives the delivery back for no less than 120 s; one without it, for the usual back-off', async () => {
    // prepare
    const busy = await instruction(OTP_SAMPLE);
    const plain = await instruction(OTP_SAMPLE);
    const delays: number[] = [];
    const handler = createRelayHandler({ deps: relayDeps(), delayRetry: async (_record, seconds) => void delays.push(seconds), random: () => 0 });

    // act
    simulator.setSendFault({ status: 429, times: 1, retryAfter: '120' });
    const first = await handler({ Records: [delivery(busy, 1)] });
    simulator.setSendFault({ status: 503, times: 1 });
    const second = await handler({ Records: [delivery(plain, 1)] });
    const again = await handler({ Records: [delivery(busy, 2)] });

    // assess
    assert.deepEqual([first.batchItemFailures.length, second.batchItemFailures.length], [1, 1], 'nothing sent: both given back');
    assert.deepEqual(delays, [120, RELAY.retryBaseSeconds], 'the first as TeleSign asked, the second as the back-off says');
    assert.deepEqual(again.batchItemFailures, []);
    assert.equal(taken(busy).length, 1, 'sent once TeleSign took it');
    assert.match(String((await relayItem(plain))?.lastFault), /send answered 503/);
  });
});

describe('never an older code after a newer one', () => {
  /** A receipt time `secondsAgo` ago. */
  const ago = (secondsAgo: number) => new Date(Date.now() - secondsAgo * 1000).toISOString();
  const sessionLines = async (session: string) => (await relayViews(await storedPartition(env, `identomat#${session}`), (pk) => storedPartition(env, pk))).map(relayLine);

  test('a code held back by a TeleSign 503 and delivered again after its successor went out is superseded, never sent', async () => {
    // prepare: the person asked twice; Identomat issued 1111, then 2222
    const session = uniqueId('sess');
    const older = await instruction({ ...OTP_SAMPLE, text: 'Your code is 1111' }, session, ago(20));
    const newer = await instruction({ ...OTP_SAMPLE, text: 'Your code is 2222' }, session, ago(10));
    const handler = createRelayHandler({ deps: relayDeps(), delayRetry: async () => undefined, random: () => 0 });

    // act
    simulator.setSendFault({ status: 503, times: 1 });
    const first = await handler({ Records: [delivery(older, 1)] });
    const second = await handler({ Records: [delivery(newer, 1)] });
    const again = await handler({ Records: [delivery(older, 2)] });

    // assess
    assert.equal(first.batchItemFailures.length, 1, 'the 503 sent nothing: given back');
    assert.deepEqual([second.batchItemFailures, again.batchItemFailures], [[], []]);
    assert.equal(taken(newer).length, 1, 'the newer code went out');
    assert.equal(taken(older).length, 0, 'the older one never did');
    assert.equal((await relayItem(older))?.status, 'superseded');
    assert.equal((await relayItem(newer))?.status, 'sent');
    const lines = await sessionLines(session);
    assert.ok(lines.includes('code not sent: superseded (a later code for this session went first)'), lines.join('\n'));
  });

  test('an older code that reaches the relay only after its successor was sent is superseded on its first delivery; its redeliveries change nothing', async () => {
    // prepare
    const session = uniqueId('sess');
    const older = await instruction({ ...OTP_SAMPLE, text: 'Your code is 3333' }, session, ago(20));
    const newer = await instruction({ ...OTP_SAMPLE, text: 'Your code is 4444' }, session, ago(10));

    // act
    const results = [await relayInstruction(newer, relayDeps()), await relayInstruction(older, relayDeps()), await relayInstruction(older, relayDeps()), await relayInstruction(newer, relayDeps())];

    // assess
    assert.deepEqual(results.map((result) => result.outcome), ['sent', 'superseded', 'duplicate', 'duplicate']);
    assert.deepEqual([taken(newer).length, taken(older).length], [1, 0]);
  });

  test('an older code overtaken between its claim and its send (a slow write, a frozen function) is superseded at the last moment, never sent after the newer one', async () => {
    // prepare: the older code's claim is held up until the newer one has gone out
    const session = uniqueId('sess');
    const older = await instruction({ ...OTP_SAMPLE, text: 'Your code is 6161' }, session, ago(20));
    const newer = await instruction({ ...OTP_SAMPLE, text: 'Your code is 6262' }, session, ago(10));
    const real = createRelayStore(env.client, env.tableName);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let claiming!: () => void;
    const claimWritten = new Promise<void>((resolve) => (claiming = resolve));
    const slow = {
      ...real,
      create: async (item: Parameters<typeof real.create>[0]) => {
        if (item.eventId !== older.eventId) return real.create(item);
        claiming();
        return gate.then(() => real.create(item));
      },
    };

    // act: the newer code goes out once the older one's claim is being written (not after a pause,
    // which a busy machine can outlast: the older one would then be superseded before its claim)
    const first = relayInstruction(older, relayDeps({ store: slow }));
    await claimWritten;
    const second = await relayInstruction(newer, relayDeps());
    release();
    const late = await first;

    // assess
    assert.deepEqual([late.outcome, second.outcome], ['superseded', 'sent']);
    assert.deepEqual([taken(older).length, taken(newer).length], [0, 1]);
    assert.equal((await relayItem(older))?.status, 'superseded');
  });

  test('two codes received in the same millisecond: the first to be claimed goes out, the other is superseded (nothing they carry says which is newer)', async () => {
    // prepare
    const session = uniqueId('sess');
    const at = new Date(Date.now() - 5_000).toISOString();
    const [one, two] = [await instruction({ ...OTP_SAMPLE, text: 'Your code is 7171' }, session, at), await instruction({ ...OTP_SAMPLE, text: 'Your code is 7272' }, session, at)];
    // act
    const outcomes = [(await relayInstruction(two, relayDeps())).outcome, (await relayInstruction(one, relayDeps())).outcome, (await relayInstruction(two, relayDeps())).outcome];
    // assess
    assert.deepEqual(outcomes, ['sent', 'superseded', 'duplicate']);
    assert.deepEqual([taken(one).length, taken(two).length], [0, 1]);
  });

  test('codes and links are apart: a link older than a code already sent still goes out; only a later code supersedes a code', async () => {
    // prepare
    const session = uniqueId('sess');
    const link = await instruction(LINK_SAMPLE, session, ago(20));
    const code = await instruction({ ...OTP_SAMPLE, text: 'Your code is 5555' }, session, ago(10));
    const laterLink = await instruction({ ...LINK_SAMPLE, text: 'Hello John, continue here' }, session, ago(5));
    const olderCode = await instruction({ ...OTP_SAMPLE, text: 'Your code is 5554' }, session, ago(15));

    // act
    const results = [code, link, laterLink, olderCode];
    const outcomes = [];
    for (const detail of results) outcomes.push((await relayInstruction(detail, relayDeps())).outcome);

    // assess: the code and the older link go out (different families), the later link too; the code older than the one sent is superseded
    assert.deepEqual(outcomes, ['sent', 'sent', 'sent', 'superseded']);
  });
});

describe('too old to be of use', () => {
  test(`a code ${RELAY.codeMaxAgeSeconds + 1} s old is recorded expired and not sent; one of ${RELAY.codeMaxAgeSeconds - 1} s is sent`, async () => {
    // prepare
    const late = await instruction(OTP_SAMPLE);
    const inTime = await instruction(OTP_SAMPLE);
    const at = (detail: InstructionDetail, seconds: number) => () => new Date(Date.parse(detail.receivedAt) + seconds * 1000);

    // act
    const expired = await relayInstruction(late, relayDeps({ now: at(late, RELAY.codeMaxAgeSeconds + 1) }));
    const again = await relayInstruction(late, relayDeps({ now: at(late, RELAY.codeMaxAgeSeconds + 2) }));
    const sent = await relayInstruction(inTime, relayDeps({ now: at(inTime, RELAY.codeMaxAgeSeconds - 1) }));

    // assess
    assert.equal(expired.outcome, 'expired');
    assert.deepEqual(again, { outcome: 'duplicate', status: 'expired' });
    assert.equal(requested(late).filter((message) => message.parameters.external_id === late.eventId).length, 0, 'TeleSign was never asked');
    const item = await relayItem(late);
    assert.equal(item?.status, 'expired');
    assert.equal(item?.maxAgeSeconds, RELAY.codeMaxAgeSeconds);
    assert.match(relayLine((await relayViews([item!], async () => []))[0]), /^code not sent: expired \(301 s old when it came to be sent; a code is sent only within 300 s\)$/);
    assert.equal(sent.outcome, 'sent');
  });

  test('the setting moves the limit (relayMaxAgeSeconds); a link keeps a day', async () => {
    // prepare
    const code = await instruction(OTP_SAMPLE);
    const link = await instruction(LINK_SAMPLE);
    const oldLink = await instruction(LINK_SAMPLE);
    const at = (detail: InstructionDetail, seconds: number) => () => new Date(Date.parse(detail.receivedAt) + seconds * 1000);

    // act
    const codeResult = await relayInstruction(code, relayDeps({ codeMaxAgeSeconds: 60, now: at(code, 61) }));
    const linkResult = await relayInstruction(link, relayDeps({ now: at(link, 23 * 3600) }));
    const oldLinkResult = await relayInstruction(oldLink, relayDeps({ now: at(oldLink, 24 * 3600 + 1) }));

    // assess
    assert.equal(codeResult.outcome, 'expired');
    assert.equal(linkResult.outcome, 'sent');
    assert.equal(oldLinkResult.outcome, 'expired');
  });

  test('a code that crosses its limit while it is being claimed (a slow table) is recorded expired the moment before the request would leave', async () => {
    // prepare: in time when the relay reads it; past the limit by the time the claim is written
    const code = await instruction(OTP_SAMPLE);
    const times = [RELAY.codeMaxAgeSeconds - 1, RELAY.codeMaxAgeSeconds + 0.4];
    let calls = 0;
    const now = () => new Date(Date.parse(code.receivedAt) + times[Math.min(calls++, times.length - 1)] * 1000);
    // act
    const result = await relayInstruction(code, relayDeps({ now }));
    // assess
    assert.equal(result.outcome, 'expired');
    assert.equal(requested(code).filter((message) => message.parameters.external_id === code.eventId).length, 0, 'TeleSign was never asked');
    assert.equal((await relayItem(code))?.status, 'expired');
  });

  test('a code that crosses its limit while the move to sending is written (a slow transaction) is recorded expired, and no request leaves', async () => {
    // prepare: in time up to the move to `sending`; the transaction answers once the code is past its limit
    const code = await instruction({ ...OTP_SAMPLE, text: 'Your code is 7171' });
    let clock = Date.parse(code.receivedAt) + (RELAY.codeMaxAgeSeconds - 1) * 1000;
    const real = createRelayStore(env.client, env.tableName);
    const store: RelayDependencies['store'] = {
      ...real,
      async beginSend(...args) {
        const started = await real.beginSend(...args);
        clock = Date.parse(code.receivedAt) + (RELAY.codeMaxAgeSeconds + 0.4) * 1000;
        return started;
      },
    };

    // act
    const result = await relayInstruction(code, relayDeps({ store, now: () => new Date(clock) }));
    const again = await relayInstruction(code, relayDeps({ now: () => new Date(clock + 60_000) }));

    // assess
    assert.equal(result.outcome, 'expired');
    assert.deepEqual(again, { outcome: 'duplicate', status: 'expired' });
    assert.equal(requested(code).filter((message) => message.parameters.external_id === code.eventId).length, 0, 'TeleSign was never asked (was: the code left 300.4 s old)');
    assert.equal((await relayItem(code))?.status, 'expired', 'was: sent');
  });
});

describe('a code whose time runs out on the way', () => {
  test('while its connection is being made: given up at its limit, and recorded expired, not retried', async () => {
    // prepare: 1 s left when the request starts; the connection is not made before the limit
    const code = await instruction({ ...OTP_SAMPLE, text: 'Your code is 7272' });
    let clock = Date.parse(code.receivedAt) + (RELAY.codeMaxAgeSeconds - 1) * 1000;
    const given: (number | undefined)[] = [];
    const send: SendContext = {
      async post(_url, request) {
        given.push(request.leaveWithinMs);
        clock += 1_500;
        throw new DependencyError('telesign', `telesign: the request was not sent (the request was not sent within ${request.leaveWithinMs} ms)`);
      },
    };
    // act
    const result = await relayInstruction(code, relayDeps({ send, now: () => new Date(clock) }));
    // assess
    assert.equal(result.outcome, 'expired');
    assert.deepEqual(given, [1000], "the request's limit is what was left of the code's life (was: none, the send timeout's 3 s)");
    assert.equal((await relayItem(code))?.status, 'expired', 'was: retry');
  });

  test('a refusal of our credentials as its time runs out is still thrown, for the configuration alarm', async () => {
    // prepare
    const code = await instruction({ ...OTP_SAMPLE, text: 'Your code is 7373' });
    let clock = Date.parse(code.receivedAt) + (RELAY.codeMaxAgeSeconds - 1) * 1000;
    const send: SendContext = {
      async post() {
        clock += 1_500;
        throw new ConfigurationError('telesign refused the credentials (401 -30015): check customerId and apiKey in the telesign secret');
      },
    };
    // act
    const outcome = await relayInstruction(code, relayDeps({ send, now: () => new Date(clock) })).catch((caught: unknown) => caught);
    // assess
    assert.ok(outcome instanceof ConfigurationError, String(outcome));
    assert.equal((await relayItem(code))?.status, 'retry');
  });
});

describe('a crash mid-send', () => {
  test('the relay killed after TeleSign took the message: the next delivery marks it uncertain once no send can still be in flight, and never sends again', async () => {
    // prepare: TeleSign takes the message and never answers; the relay waits, and is killed
    const detail = await instruction(OTP_SAMPLE);
    simulator.setSendFault({ hang: true, times: 1 });
    const { child, exited } = await relayUntilTaken(detail);
    assert.equal(taken(detail).length, 1, 'TeleSign took the message');
    child.kill('SIGKILL');
    await exited;
    assert.equal((await relayItem(detail))?.status, 'sending', 'left as the crash left it');
    const handler = (now?: () => Date) => createRelayHandler({ deps: relayDeps(now ? { now } : {}), random: () => 0 });
    const later = () => new Date(Date.now() + (RELAY.timeoutSeconds + 1) * 1000);

    // act
    const soon = await handler()({ Records: [delivery(detail, 2)] });
    const afterLease = await handler(later)({ Records: [delivery(detail, 3)] });
    const afterThat = await handler(later)({ Records: [delivery(detail, 4)] });

    // assess
    assert.equal(soon.batchItemFailures.length, 1, 'within a send time it may still be in flight: looked at again later');
    assert.deepEqual(afterLease.batchItemFailures, []);
    assert.deepEqual(afterThat.batchItemFailures, []);
    assert.equal(taken(detail).length, 1, 'never sent again');
    const item = await relayItem(detail);
    assert.equal(item?.status, 'uncertain');
    assert.match(String(item?.reason), /stopped mid-send/);
    const [view] = await relayViews([item!], async () => []);
    assert.match(relayLine(view), new RegExp(`^code may have been sent via TeleSign: .*check with TeleSign \\(external_id ${detail.eventId}\\)$`));
  });

  test('the table failing between the claim and the send (and again for the retry record): nothing left, so a later delivery sends it, never calling it uncertain', async () => {
    // prepare: the move to `sending` fails, and every try of the `retry` write during that delivery (fault injection: a table blip)
    const detail = await instruction({ ...OTP_SAMPLE, text: 'Your code is 8282' });
    const real = createRelayStore(env.client, env.tableName);
    let down = true;
    let beginFaults = 1;
    const store: RelayDependencies['store'] = {
      ...real,
      async beginSend(...args) {
        if (beginFaults > 0) {
          beginFaults -= 1;
          throw new DependencyError('dynamodb', 'TransactWriteItems (relay send) failed: ProvisionedThroughputExceededException');
        }
        return real.beginSend(...args);
      },
      async update(key, expected, fields, countAttempt) {
        if (fields.status === 'retry' && down) throw new DependencyError('dynamodb', 'UpdateItem (relay) failed: ProvisionedThroughputExceededException');
        return real.update(key, expected, fields, countAttempt);
      },
    };
    const handler = (now?: () => Date) => createRelayHandler({ deps: relayDeps({ store, ...(now ? { now } : {}) }), delayRetry: async () => undefined, random: () => 0 });
    // act
    const first = await handler()({ Records: [delivery(detail, 1)] });
    down = false;
    const left = await relayItem(detail);
    const soon = await handler()({ Records: [delivery(detail, 2)] });
    const later = await handler(() => new Date(Date.now() + (RELAY.timeoutSeconds + 1) * 1000))({ Records: [delivery(detail, 3)] });
    // assess
    assert.equal(first.batchItemFailures.length, 1, 'failed, for SQS to deliver again');
    assert.equal(left?.status, 'claimed', 'claimed, and no request left');
    assert.equal(soon.batchItemFailures.length, 1, 'a claim this young may be another delivery at work: looked at again later');
    assert.deepEqual(later.batchItemFailures, []);
    assert.equal(taken(detail).length, 1, 'sent once');
    assert.equal((await relayItem(detail))?.status, 'sent', 'was: uncertain, "it may have gone out", for a code that never left');
  });

  test('the move to sending lands but its answer is lost (a timeout): nothing left, so it is recorded retry and sent once, never called uncertain', async () => {
    // prepare: the first TransactWriteItems (claimed -> sending) is carried out, then answered with a timeout
    const detail = await instruction({ ...OTP_SAMPLE, text: 'Your code is 8484' });
    let lost = 1;
    const client = {
      async send(command: Parameters<DynamoDBClient['send']>[0]) {
        const answer = await env.client.send(command);
        if (command instanceof TransactWriteItemsCommand && lost > 0) {
          lost -= 1;
          throw Object.assign(new Error('socket timed out, the answer never came'), { name: 'TimeoutError' });
        }
        return answer;
      },
    } as unknown as DynamoDBClient;
    const handler = (now?: () => Date) => createRelayHandler({ deps: relayDeps({ store: createRelayStore(client, env.tableName), ...(now ? { now } : {}) }), delayRetry: async () => undefined, random: () => 0 });

    // act
    const first = await handler()({ Records: [delivery(detail, 1)] });
    const left = await relayItem(detail);
    const later = await handler(() => new Date(Date.now() + (RELAY.timeoutSeconds + 1) * 1000))({ Records: [delivery(detail, 2)] });

    // assess
    assert.equal(lost, 0, 'the answer was lost once');
    assert.equal(first.batchItemFailures.length, 1, 'failed, for SQS to deliver again');
    assert.equal(left?.status, 'retry', 'was: left sending, for a request that never left');
    assert.deepEqual(later.batchItemFailures, []);
    assert.equal(taken(detail).length, 1, 'sent once');
    assert.equal((await relayItem(detail))?.status, 'sent', 'was: uncertain, "it may have gone out", for a code that never left');
  });

  test('TeleSign answers 503 and the retry record meets a table blip: the record is tried again, and the next delivery sends it once', async () => {
    // prepare: nothing sent (503); the first write of `retry` fails (fault injection: a table blip)
    const detail = await instruction({ ...OTP_SAMPLE, text: 'Your code is 8585' });
    const real = createRelayStore(env.client, env.tableName);
    let blips = 1;
    const store: RelayDependencies['store'] = {
      ...real,
      async update(key, expected, fields, countAttempt) {
        if (fields.status === 'retry' && blips > 0) {
          blips -= 1;
          throw new DependencyError('dynamodb', 'UpdateItem (relay) failed: ProvisionedThroughputExceededException');
        }
        return real.update(key, expected, fields, countAttempt);
      },
    };
    simulator.setSendFault({ status: 503, times: 1 });
    const handler = (now?: () => Date) => createRelayHandler({ deps: relayDeps({ store, ...(now ? { now } : {}) }), delayRetry: async () => undefined, random: () => 0 });

    // act
    const first = await handler()({ Records: [delivery(detail, 1)] });
    const left = await relayItem(detail);
    const later = await handler(() => new Date(Date.now() + (RELAY.timeoutSeconds + 1) * 1000))({ Records: [delivery(detail, 2)] });

    // assess
    assert.equal(blips, 0, 'the table blipped once');
    assert.equal(first.batchItemFailures.length, 1, 'the 503 sent nothing: given back');
    assert.equal(left?.status, 'retry', 'was: left sending');
    assert.match(String(left?.lastFault), /answered 503/);
    assert.deepEqual(later.batchItemFailures, []);
    assert.equal(taken(detail).length, 1, 'sent once');
    assert.equal((await relayItem(detail))?.status, 'sent', 'was: uncertain, for a code TeleSign never took');
  });

  test('TeleSign takes the message and the record of the send meets a table blip: the record is tried again, sent with its reference, never called uncertain', async () => {
    // prepare: TeleSign answers 200; the first write of `sent` fails (fault injection: a table blip)
    const detail = await instruction({ ...OTP_SAMPLE, text: 'Your code is 7171' });
    const real = createRelayStore(env.client, env.tableName);
    let blips = 1;
    const store: RelayDependencies['store'] = {
      ...real,
      async recordSent(key, attempt, fields, link) {
        if (blips > 0) {
          blips -= 1;
          throw new DependencyError('dynamodb', 'TransactWriteItems (relay sent) failed: ProvisionedThroughputExceededException');
        }
        return real.recordSent(key, attempt, fields, link);
      },
    };
    const log = logger();
    const handler = (now?: () => Date) => createRelayHandler({ deps: relayDeps({ store, log, ...(now ? { now } : {}) }), delayRetry: async () => undefined, random: () => 0 });

    // act: the delivery, and one once no send can still be in flight (as SQS would bring it back)
    const first = await handler()({ Records: [delivery(detail, 1)] });
    const later = await handler(() => new Date(Date.now() + (RELAY.timeoutSeconds + 1) * 1000))({ Records: [delivery(detail, 2)] });

    // assess
    assert.equal(blips, 0, 'the table blipped once');
    assert.deepEqual(first.batchItemFailures, [], 'sent and recorded: not given back');
    assert.deepEqual(later.batchItemFailures, []);
    assert.equal(taken(detail).length, 1, 'sent once');
    const item = await relayItem(detail);
    assert.equal(item?.status, 'sent', 'was: uncertain, for a send TeleSign answered');
    assert.equal(item?.referenceId, taken(detail)[0].referenceId);
    assert.equal(log.lines.filter((line) => line.message === 'relay: sent, not recorded').length, 0);
    // Named at the first failure: a table stalling past the function's timeout still leaves this line.
    const again = log.lines.filter((line) => line.message === 'relay: sent, recording it again');
    assert.equal(again.length, 1);
    assert.equal(again[0].fields?.eventId, detail.eventId);
  });

  test('TeleSign takes the message and does not answer in time: uncertain at once, not retried', async () => {
    // prepare
    const detail = await instruction(OTP_SAMPLE);
    simulator.setSendFault({ hang: true, times: 1 });
    const handler = createRelayHandler({ deps: relayDeps({ send: postOnceContext({ answerTimeoutMs: 300 }) }) });
    // act
    const first = await handler({ Records: [delivery(detail)] });
    const second = await handler({ Records: [delivery(detail, 2)] });
    // assess
    assert.deepEqual(first.batchItemFailures, [], 'not given back for a retry');
    assert.deepEqual(second.batchItemFailures, []);
    assert.equal(taken(detail).length, 1);
    assert.equal((await relayItem(detail))?.status, 'uncertain');
  });
});

describe('faults that sent nothing are retried', () => {
  test('TeleSign answers 503 twice: the delivery is given back with back-off, recorded retry, and the third sends once', async () => {
    // prepare
    const detail = await instruction(OTP_SAMPLE);
    simulator.setSendFault({ status: 503, times: 2 });
    const delays: number[] = [];
    const handler = createRelayHandler({ deps: relayDeps(), delayRetry: async (_record, seconds) => void delays.push(seconds), random: () => 0 });
    const before = simulator.sent.length;

    // act
    const first = await handler({ Records: [delivery(detail, 1)] });
    const afterFirst = await relayItem(detail);
    const second = await handler({ Records: [delivery(detail, 2)] });
    const third = await handler({ Records: [delivery(detail, 3)] });

    // assess
    assert.equal(first.batchItemFailures.length, 1);
    assert.equal(second.batchItemFailures.length, 1);
    assert.deepEqual(third.batchItemFailures, []);
    assert.deepEqual(delays, [10, 20], 'back-off through the visibility timeout');
    assert.equal(afterFirst?.status, 'retry');
    assert.match(String(afterFirst?.lastFault), /answered 503/);
    assert.equal(simulator.sent.length - before, 3, 'three requests');
    assert.equal(taken(detail).length, 1, 'one message');
    const item = await relayItem(detail);
    assert.equal(item?.status, 'sent');
    assert.equal(item?.attempts, 3);
  });

  test('a 503 on the queue\'s last receive: the session says the instruction is in the DLQ; redriven once TeleSign is back, it goes out once', async () => {
    // prepare
    const detail = await instruction(LINK_SAMPLE);
    simulator.setSendFault({ status: 503, times: 1 });
    const log = logger();
    const handler = createRelayHandler({ deps: relayDeps({ log }), delayRetry: async () => undefined, random: () => 0 });
    const lineOf = async () => (await relayViews(await storedPartition(env, `identomat#${detail.subjectId}`), (pk) => storedPartition(env, pk))).map(relayLine)[0];

    // act
    const last = await handler({ Records: [delivery(detail, RELAY.maxReceiveCount)] });
    const gaveUp = await lineOf();
    const redriven = await handler({ Records: [delivery(detail, 1)] });

    // assess
    assert.equal(last.batchItemFailures.length, 1, 'given back: the queue moves it to the DLQ');
    assert.equal(gaveUp, `link not sent: gave up after 1 attempt(s) (send answered 503); it is in the relay's dead-letter queue: once TeleSign is fixed, redrive it (npm run redrive -- --relay locally; on AWS, npm run redrive -- --dlq-url <RelayDeadLetterQueueUrl> --region <region>); a code then too old is recorded expired`);
    assert.ok(log.lines.some((line) => line.message === 'relay: gave up, to the DLQ' && line.fields?.eventId === detail.eventId));
    assert.deepEqual(redriven.batchItemFailures, []);
    assert.equal(taken(detail).length, 1);
    assert.match(String(await lineOf()), /^link sent via TeleSign/);
    assert.equal((await relayItem(detail))?.deadLettered, false);
  });

  test('a fault before any claim (the TeleSign secret still a placeholder) on the last receive: a retry item says it is in the DLQ; redriven once fixed, sent once', async () => {
    // prepare
    const detail = await instruction({ ...OTP_SAMPLE, text: 'Your code is 4321' });
    const placeholder = createSecretCache(async () => JSON.stringify({ customerId: 'REPLACE_ME', apiKey: 'REPLACE_ME' }));
    const log = logger();
    const delays: number[] = [];
    const broken = createRelayHandler({ deps: relayDeps({ secrets: placeholder, log }), delayRetry: async (_record, seconds) => void delays.push(seconds), random: () => 0 });
    const fixed = createRelayHandler({ deps: relayDeps(), delayRetry: async () => undefined, random: () => 0 });

    // act
    const first = await broken({ Records: [delivery(detail, 1)] });
    const afterFirst = await relayItem(detail);
    const last = await broken({ Records: [delivery(detail, RELAY.maxReceiveCount)] });
    const gaveUp = await relayItem(detail);
    const redriven = await fixed({ Records: [delivery(detail, 1)] });

    // assess
    assert.deepEqual([first.batchItemFailures.length, last.batchItemFailures.length], [1, 1]);
    assert.equal(afterFirst, undefined, 'nothing claimed before the secret could be read');
    assert.deepEqual(delays, [RELAY.retryBaseSeconds, 0], 'the last failure is given back at once, so SQS moves it to the DLQ now');
    assert.deepEqual([gaveUp?.status, gaveUp?.deadLettered], ['retry', true]);
    assert.ok(log.lines.some((line) => line.message === 'relay: gave up, to the DLQ' && line.fields?.eventId === detail.eventId));
    assert.deepEqual(redriven.batchItemFailures, []);
    assert.equal(taken(detail).length, 1, 'sent once after the redrive');
    assert.deepEqual([(await relayItem(detail))?.status, (await relayItem(detail))?.deadLettered], ['sent', false]);
  });

  test('a refused API key is a configuration fault: nothing sent, logged as an error, and sent once the secret is fixed', async () => {
    // prepare
    const detail = await instruction(OTP_SAMPLE);
    const wrong: Record<string, Record<string, unknown>> = { ...env.secrets, telesign: { ...env.secrets.telesign, apiKey: Buffer.from('not-the-telesign-api-key-0123456789').toString('base64') } };
    const log = logger();
    const broken = createRelayHandler({ deps: relayDeps({ secrets: createSecretCache(async (provider) => JSON.stringify(wrong[provider.id])), log }) });
    // act
    const failed = await broken({ Records: [delivery(detail)] });
    const fixed = await relayInstruction(detail, relayDeps());
    // assess
    assert.equal(failed.batchItemFailures.length, 1);
    const line = log.lines.find((each) => each.message === 'record failed: configuration');
    assert.equal(line?.level, 'ERROR');
    assert.match(String(line?.fields?.error), /refused the API key: check apiKey in the telesign secret/);
    assert.equal(fixed.outcome, 'sent');
    assert.equal(taken(detail).length, 1);
  });

  test('a TeleSign secret pointing at plain http elsewhere: a configuration fault, nothing sent (the key would travel unencrypted); sent once fixed', async () => {
    // prepare
    const detail = await instruction(OTP_SAMPLE);
    const plain: Record<string, Record<string, unknown>> = { ...env.secrets, telesign: { ...env.secrets.telesign, baseUrl: 'http://rest-api.telesign.com' } };
    const log = logger();
    const broken = createRelayHandler({ deps: relayDeps({ secrets: createSecretCache(async (provider) => JSON.stringify(plain[provider.id])), log }) });
    const before = simulator.sent.length;
    // act
    const failed = await broken({ Records: [delivery(detail)] });
    const fixed = await relayInstruction(detail, relayDeps());
    // assess
    assert.equal(failed.batchItemFailures.length, 1);
    const line = log.lines.find((each) => each.message === 'record failed: configuration');
    assert.match(String(line?.fields?.error), /TeleSign: its secret points a request that carries credentials at a plain-http URL: use https/);
    assert.equal(fixed.outcome, 'sent');
    assert.equal(simulator.sent.length - before, 1, 'only the fixed send reached TeleSign');
  });

  test('a number TeleSign cannot take is recorded refused, once, and not retried', async () => {
    // prepare
    const detail = await instruction({ ...OTP_SAMPLE, phoneNumber: '12345' });
    // act
    const result = await relayInstruction(detail, relayDeps());
    const again = await relayInstruction(detail, relayDeps());
    // assess
    assert.equal(result.outcome, 'refused');
    assert.deepEqual(again, { outcome: 'duplicate', status: 'refused' });
    assert.match(String((await relayItem(detail))?.reason), /not an E\.164 phone number/);
    const [view] = await relayViews([(await relayItem(detail))!], async () => []);
    assert.match(relayLine(view), /^code not sent: the gateway refused it before asking TeleSign \(not sent: the destination is not an E\.164/, 'not "TeleSign refused it": TeleSign was never asked');
  });

  test('a refusal TeleSign itself gives reads as TeleSign\'s on the session', async () => {
    // prepare
    const detail = await instruction(OTP_SAMPLE);
    simulator.setSendFault({ status: 400, times: 1 });
    // act
    const result = await relayInstruction(detail, relayDeps());
    // assess
    assert.equal(result.outcome, 'refused');
    const item = (await relayItem(detail))!;
    assert.equal(item.refusedBy, 'telesign');
    const [view] = await relayViews([item], async () => []);
    assert.match(relayLine(view), /^code not sent: TeleSign refused it \(TeleSign refused the message \(HTTP 400/);
  });

  test("TeleSign answers 200 with a failure status: refused, and the session keeps the answer's reference_id, showing its delivery report", async () => {
    // prepare: TeleSign takes the request (200, a reference) but reports a failure status in the body
    const detail = await instruction(OTP_SAMPLE);
    const referenceId = randomUUID().replace(/-/g, '').toUpperCase();
    const send: SendContext = { post: async () => ({ status: 200, body: JSON.stringify({ reference_id: referenceId, external_id: detail.eventId, status: { code: 500, description: 'Transaction not attempted' } }) }) };
    const report = { reference_id: referenceId, external_id: detail.eventId, status: { code: 500, description: 'Transaction not attempted', updated_on: new Date().toISOString() } };
    const log = logger();
    // act
    const result = await relayInstruction(detail, relayDeps({ send, log }));
    await processMessage(await queueMessageFor(env.secrets, 'telesign', report), env.deps({ log: logger() }));
    // assess
    assert.equal(result.outcome, 'refused');
    const item = (await relayItem(detail))!;
    assert.equal(item.status, 'refused');
    assert.equal(item.referenceId, referenceId, 'was: no reference_id, nothing to look up with TeleSign');
    const [view] = await relayViews([item], (pk) => storedPartition(env, pk));
    assert.equal(view.delivery?.status, '500');
    assert.match(relayLine(view), new RegExp(`^code not sent: TeleSign refused it \\(TeleSign took the request but reports status 500: not sent\\), reference ${referenceId}: Transaction not attempted \\(500, failed\\)$`));
    const line = log.lines.find((each) => each.message === 'relay' && each.fields?.outcome === 'refused');
    assert.ok(line?.fields?.referenceId, 'the line names the reference (masked as the sent line masks it)');
  });

  test('a refusal whose record fails once is still recorded refused, never read later as a send that may have left', async () => {
    // prepare: TeleSign refuses the message; the first write of `refused` meets a table blip
    const detail = await instruction({ ...OTP_SAMPLE, text: 'Your code is 4242' });
    simulator.setSendFault({ status: 400, times: 1 });
    const real = createRelayStore(env.client, env.tableName);
    let blips = 1;
    const store: RelayDependencies['store'] = {
      ...real,
      async update(key, expected, fields) {
        if (fields.status === 'refused' && blips-- > 0) throw Object.assign(new Error('ProvisionedThroughputExceededException'), { name: 'ProvisionedThroughputExceededException' });
        return real.update(key, expected, fields);
      },
    };
    // act
    const result = await relayInstruction(detail, relayDeps({ store }));
    const again = await relayInstruction(detail, relayDeps());
    // assess
    assert.equal(result.outcome, 'refused');
    assert.deepEqual(again, { outcome: 'duplicate', status: 'refused' }, 'was: uncertain, and RelayUncertain fired though nothing was sent');
    assert.equal((await relayItem(detail))?.status, 'refused');
  });

  test('relayAllowedCountryCodes: a number in no allowed country is recorded refused, nothing goes to TeleSign, the line names no number; one in an allowed country is sent', async () => {
    // prepare: the sample's number is Georgian (+995)
    assert.match(String(OTP_SAMPLE.phoneNumber), /^\+995/);
    const [abroad, home, written] = [await instruction(OTP_SAMPLE), await instruction(OTP_SAMPLE), await instruction({ ...OTP_SAMPLE, phoneNumber: '+995 (512) 34.56.78' })];
    const log = logger();
    const before = simulator.sent.length;
    // act
    const refused = await relayInstruction(abroad, relayDeps({ allowedCountryCodes: parseCountryCodes('1, +44'), log }));
    const again = await relayInstruction(abroad, relayDeps({ allowedCountryCodes: parseCountryCodes('1, +44') }));
    const sent = await relayInstruction(home, relayDeps({ allowedCountryCodes: parseCountryCodes('255,995') }));
    const sentToo = await relayInstruction(written, relayDeps({ allowedCountryCodes: parseCountryCodes('995') }));
    // assess
    assert.deepEqual([refused.outcome, again, sent.outcome, sentToo.outcome], ['refused', { outcome: 'duplicate', status: 'refused' }, 'sent', 'sent']);
    assert.equal(simulator.sent.length - before, 2, 'only the two allowed ones reached TeleSign');
    assert.match(String((await relayItem(abroad))?.reason), /not in a country relayAllowedCountryCodes allows \(\+1, \+44\)/);
    const line = log.lines.find((each) => each.message === 'relay');
    assert.equal(line?.level, 'WARN');
    assert.equal(line?.fields?.outcome, 'refused', 'counted by RelayNotSent');
    const [view] = await relayViews([(await relayItem(abroad))!], async () => []);
    assert.match(relayLine(view), /^code not sent: the gateway refused it before asking TeleSign \(the number is not in a country/);
  });

  test('relayAllowedCountryCodes with an area of +1: a number that begins in the area but is longer than a NANP number is refused, nothing goes to TeleSign', async () => {
    // prepare: +1 201 (New Jersey) allowed; its digits are those of the area, with three more
    const [longer, whole] = [await instruction({ ...OTP_SAMPLE, phoneNumber: '+1 201 234 567 890' }), await instruction({ ...OTP_SAMPLE, phoneNumber: '+1 (201) 234-5678' })];
    const before = simulator.sent.length;
    // act
    const refused = await relayInstruction(longer, relayDeps({ allowedCountryCodes: parseCountryCodes('1201') }));
    const sent = await relayInstruction(whole, relayDeps({ allowedCountryCodes: parseCountryCodes('1201') }));
    // assess
    assert.deepEqual([refused.outcome, sent.outcome], ['refused', 'sent'], 'was: the longer one sent as 1201234567890');
    assert.deepEqual(simulator.sent.slice(before).map((message) => message.parameters.phone_number), ['12012345678']);
    assert.match(String((await relayItem(longer))?.reason), /not in a country relayAllowedCountryCodes allows \(\+1201\)/);
  });

  test('a text longer than one TeleSign message (published, since it is within the event\'s limits) is recorded refused on the session, not skipped unseen', async () => {
    // prepare: 1,601 and 5,000 characters; TeleSign takes 1,600
    const details = [await instruction({ ...OTP_SAMPLE, text: `Your code is 6867 ${'x'.repeat(1_583)}` }), await instruction({ ...OTP_SAMPLE, text: `Your code is 6867 ${'x'.repeat(4_982)}` })];
    const before = simulator.sent.length;
    // act
    const results = [];
    for (const detail of details) results.push(await relayInstruction(detail, relayDeps()));
    // assess
    assert.deepEqual(details.map((detail) => detail.text?.length), [1_601, 5_000]);
    assert.deepEqual(results.map((result) => result.outcome), ['refused', 'refused']);
    assert.equal(simulator.sent.length, before, 'nothing went to TeleSign');
    for (const detail of details) assert.match(String((await relayItem(detail))?.reason), /TeleSign takes a message of 1 to 1600 characters/);
  });
});

describe("TeleSign's delivery report, on the Identomat session", () => {
  test('the signed report comes back through ingest and the worker to the TeleSign reference; the session reads "code sent via TeleSign, reference …: Delivered to handset"', async () => {
    // prepare: the gateway's TeleSign route (the real ingest, queueing straight into the real worker)
    const workerDeps = env.deps({ log: logger() });
    const ingestLog = logger();
    const api = await startHttpApi(
      [
        {
          provider: telesign,
          handler: createIngestHandler(telesign, {
            secrets: createSecretCache(async (provider) => JSON.stringify(env.secrets[provider.id])),
            send: async (body) => void (await processMessage(QueueMessageSchema.parse(JSON.parse(body)), workerDeps)),
            log: ingestLog,
            maxBodyBytes: MAX_BODY_BYTES,
          }),
        },
      ],
      0,
    );
    simulator.setDeliveryReportUrl(`${api.url}/callbacks/telesign`);
    const detail = await instruction(OTP_SAMPLE);
    try {
      // act
      const result = await relayInstruction(detail, relayDeps());
      await simulator.reportsSettled();

      // assess
      assert.equal(result.outcome, 'sent');
      const referenceId = result.outcome === 'sent' ? result.referenceId : '';
      assert.deepEqual(taken(detail)[0].reports, [{ status: 200 }], 'the gateway answered the report 200');
      const state = await storedState(env, 'telesign', referenceId);
      assert.equal(state?.status, '200');
      assert.equal(state?.outcome, 'succeeded');
      const session = await storedPartition(env, `identomat#${detail.subjectId}`);
      const [view] = await relayViews(session, (pk) => storedPartition(env, pk));
      assert.equal(view.delivery?.status, '200');
      assert.match(relayLine(view), new RegExp(`^code sent via TeleSign at \\S+, reference ${referenceId}: Delivered to handset \\(200, succeeded\\)$`));
      const link = relayedLink(await storedPartition(env, `telesign#${referenceId}`));
      assert.deepEqual({ forProvider: link?.forProvider, forSubjectId: link?.forSubjectId, eventId: link?.eventId }, { forProvider: 'identomat', forSubjectId: detail.subjectId, eventId: detail.eventId });
    } finally {
      simulator.setDeliveryReportUrl(undefined);
      await api.stop();
    }
  });
});

describe("TeleSign's delivery report joins an instruction whose send got no answer (by its external_id)", () => {
  /**
   * The gateway's TeleSign route: the real ingest, queueing straight into the real worker, with the
   * relay on (`relayJoin`). `gate`, when given, holds each report until it resolves (a report that
   * comes after the relay recorded its send uncertain).
   */
  async function reportRoute(gate?: Promise<void>) {
    const log = logger();
    const workerDeps = env.deps({ log, relayJoin: deliveryReportJoin({ sender: telesign, store: createRelayStore(env.client, env.tableName), retentionDays: 90, now: () => new Date(), log }) });
    const api = await startHttpApi(
      [
        {
          provider: telesign,
          handler: createIngestHandler(telesign, {
            secrets: createSecretCache(async (provider) => JSON.stringify(env.secrets[provider.id])),
            send: async (body) => {
              await gate;
              await processMessage(QueueMessageSchema.parse(JSON.parse(body)), workerDeps);
            },
            log: logger(),
            maxBodyBytes: MAX_BODY_BYTES,
          }),
        },
      ],
      0,
    );
    simulator.setDeliveryReportUrl(`${api.url}/callbacks/telesign`);
    return {
      async stop() {
        simulator.setDeliveryReportUrl(undefined);
        await api.stop();
      },
    };
  }

  /** The session's view of the instruction, once the reports are in. */
  async function sessionView(detail: InstructionDetail) {
    const session = await storedPartition(env, `identomat#${detail.subjectId}`);
    return (await relayViews(session, (pk) => storedPartition(env, pk))).find((view) => view.eventId === detail.eventId);
  }

  for (const order of ['before', 'after'] as const) {
    test(`the send times out, TeleSign's report (with our external_id) comes ${order} the relay records it uncertain: the session shows the reference and "Delivered to handset"`, async () => {
      // prepare
      const detail = await instruction(OTP_SAMPLE);
      let open: () => void = () => {};
      const gate = order === 'after' ? new Promise<void>((resolve) => (open = resolve)) : undefined;
      const route = await reportRoute(gate);
      simulator.setSendFault({ hang: true, times: 1 });
      try {
        // act
        const result = await relayInstruction(detail, relayDeps({ send: postOnceContext({ answerTimeoutMs: 300 }) }));
        open();
        await simulator.reportsSettled();

        // assess
        assert.equal(result.outcome, 'uncertain');
        const [message] = taken(detail);
        assert.deepEqual(message.reports, [{ status: 200 }], 'the gateway answered the report 200');
        const item = await relayItem(detail);
        assert.equal(item?.status, 'uncertain', 'still uncertain: nothing answered the send');
        assert.equal(item?.referenceId, message.referenceId);
        assert.equal(item?.referenceFrom, 'delivery report');
        const view = await sessionView(detail);
        assert.equal(view?.referenceId, message.referenceId);
        assert.equal(view?.delivery?.status, '200');
        assert.equal(view?.delivery?.outcome, 'succeeded');
        assert.equal(
          relayLine(view!),
          `code may have been sent via TeleSign (no answer to the send); TeleSign's delivery report, reference ${message.referenceId}: Delivered to handset (200, succeeded)`,
        );
        const link = relayedLink(await storedPartition(env, `telesign#${message.referenceId}`));
        assert.deepEqual({ forProvider: link?.forProvider, forSubjectId: link?.forSubjectId, eventId: link?.eventId }, { forProvider: 'identomat', forSubjectId: detail.subjectId, eventId: detail.eventId });
        // The lookup names the relay item, never the number, the text or the code.
        const [lookup] = await storedPartition(env, `telesign!external#${detail.eventId}`);
        assert.deepEqual(Object.keys(lookup).sort(), ['createdAt', 'eventId', TABLE.ttlAttribute, 'forProvider', 'forSubjectId', 'pk', 'referenceId', 'sk'].sort());
      } finally {
        open();
        await route.stop();
      }
    });
  }

  test('the relay crashed mid-send, and the report came while it lay dead: once the item is marked uncertain, the session shows the report', async () => {
    // prepare: TeleSign takes the message and never answers; the relay is killed; the report is stored meanwhile
    const detail = await instruction(OTP_SAMPLE);
    const route = await reportRoute();
    simulator.setSendFault({ hang: true, times: 1 });
    try {
      const { child, exited } = await relayUntilTaken(detail);
      await simulator.reportsSettled();
      child.kill('SIGKILL');
      await exited;
      assert.equal((await relayItem(detail))?.status, 'sending');

      // act
      const later = () => new Date(Date.now() + (RELAY.timeoutSeconds + 1) * 1000);
      const result = await createRelayHandler({ deps: relayDeps({ now: later }) })({ Records: [delivery(detail, 2)] });

      // assess
      assert.deepEqual(result.batchItemFailures, []);
      const [message] = taken(detail);
      const view = await sessionView(detail);
      assert.equal(view?.status, 'uncertain');
      assert.equal(view?.referenceId, message.referenceId);
      assert.equal(view?.delivery?.status, '200');
    } finally {
      await route.stop();
    }
  });

  test('the table failing while the worker joins: the report is stored, the delivery fails (SQS retries it), and the retry joins it once', async () => {
    // prepare: an uncertain send (no report route: the report is delivered below, by hand)
    const detail = await instruction(OTP_SAMPLE);
    simulator.setSendFault({ hang: true, times: 1 });
    const result = await relayInstruction(detail, relayDeps({ send: postOnceContext({ answerTimeoutMs: 300 }) }));
    await simulator.reportsSettled();
    const [sent] = taken(detail);
    const real = createRelayStore(env.client, env.tableName);
    let faults = 1;
    const store: typeof real = { ...real, meet: async (key, fields) => (faults-- > 0 ? Promise.reject(new DependencyError('dynamodb', 'UpdateItem (relay meeting) failed: throttled')) : real.meet(key, fields)) };
    const workerDeps = env.deps({ log: logger(), relayJoin: deliveryReportJoin({ sender: telesign, store, retentionDays: 90, now: () => new Date() }) });
    const report = await queueMessageFor(env.secrets, 'telesign', { reference_id: sent.referenceId, status: { code: 200, description: 'Delivered to handset', updated_on: new Date().toISOString() }, external_id: detail.eventId });

    // act
    const first = await processMessage(report, workerDeps).then(
      () => 'stored',
      (error: unknown) => (error as Error).message,
    );
    const stored = await storedState(env, 'telesign', sent.referenceId!);
    const again = await processMessage(report, workerDeps, 2);

    // assess
    assert.equal(result.outcome, 'uncertain');
    assert.match(first, /throttled/, 'the record fails, for SQS to deliver it again');
    assert.equal(stored?.status, '200', 'the report was stored before the join was tried');
    assert.equal(again.kind, 'duplicate');
    assert.equal((await relayItem(detail))?.referenceId, sent.referenceId);
    assert.equal(relayedLink(await storedPartition(env, `telesign#${sent.referenceId}`))?.eventId, detail.eventId);
  });

  test('the table failing as the relay names an uncertain send for its report: the delivery is given back, never resent, and the next one names it', async () => {
    // prepare
    const detail = await instruction(OTP_SAMPLE);
    simulator.setSendFault({ hang: true, times: 1 });
    const real = createRelayStore(env.client, env.tableName);
    let faults = 1;
    const store: typeof real = { ...real, meet: async (key, fields) => (faults-- > 0 ? Promise.reject(new DependencyError('dynamodb', 'UpdateItem (relay meeting) failed: throttled')) : real.meet(key, fields)) };
    const handler = createRelayHandler({ deps: relayDeps({ store, send: postOnceContext({ answerTimeoutMs: 300 }) }), random: () => 0 });
    // act
    const first = await handler({ Records: [delivery(detail)] });
    const named = await storedPartition(env, `telesign!external#${detail.eventId}`);
    const second = await handler({ Records: [delivery(detail, 2)] });
    // assess
    assert.equal(first.batchItemFailures.length, 1, 'given back');
    assert.deepEqual(named, [], 'not named yet');
    assert.deepEqual(second.batchItemFailures, []);
    assert.equal(taken(detail).length, 1, 'never sent again');
    assert.equal((await relayItem(detail))?.status, 'uncertain');
    const [meeting] = await storedPartition(env, `telesign!external#${detail.eventId}`);
    assert.deepEqual({ forProvider: meeting?.forProvider, forSubjectId: meeting?.forSubjectId }, { forProvider: 'identomat', forSubjectId: detail.subjectId });
  });

  test('TeleSign answers 503 yet took the message, and its report (our external_id) is in before the retry: the retry sends nothing, and records it sent with that reference', async () => {
    // prepare: the first request reaches TeleSign (the message goes out, its report comes) but the relay is answered 503
    const detail = await instruction(OTP_SAMPLE);
    const route = await reportRoute();
    const send = takenDespiteFirst503();
    const handler = createRelayHandler({ deps: relayDeps({ send }), delayRetry: async () => undefined, random: () => 0 });
    try {
      // act
      const first = await handler({ Records: [delivery(detail, 1)] });
      await simulator.reportsSettled();
      const afterFirst = await relayItem(detail);
      const second = await handler({ Records: [delivery(detail, 2)] });
      await simulator.reportsSettled();

      // assess
      assert.equal(first.batchItemFailures.length, 1, 'the 503 gives the delivery back');
      assert.equal(afterFirst?.status, 'retry');
      assert.deepEqual(second.batchItemFailures, []);
      const messages = taken(detail);
      assert.equal(messages.length, 1, 'was: sent again, a second code to the person');
      const item = await relayItem(detail);
      assert.equal(item?.status, 'sent');
      assert.equal(item?.referenceId, messages[0].referenceId);
      assert.equal(item?.referenceFrom, 'delivery report');
      const view = await sessionView(detail);
      assert.equal(view?.delivery?.status, '200');
      assert.equal(relayedLink(await storedPartition(env, `telesign#${messages[0].referenceId}`))?.eventId, detail.eventId);
    } finally {
      await route.stop();
    }
  });

  test('TeleSign answers 503 and its report for the first attempt (our external_id) says it was not attempted: the retry sends the code, never records sent what was not', async () => {
    // prepare: the first request is answered 503 and reaches no one; a signed report of a transaction
    // with our external_id says 500 "Transaction not attempted" (a final failure) before the retry
    const detail = await instruction(OTP_SAMPLE);
    const inner = postOnceContext();
    let answered503 = 0;
    const send: SendContext = { post: async (url, request) => (answered503++ === 0 ? { status: 503, body: '{}' } : inner.post(url, request)) };
    const handler = createRelayHandler({ deps: relayDeps({ send }), delayRetry: async () => undefined, random: () => 0 });
    const workerDeps = reportJoiningWorker();
    const failed = `${'0123456789ABCDEF'.repeat(2).slice(0, 30)}F1`;
    // act
    await handler({ Records: [delivery(detail, 1)] });
    await processMessage(await queueMessageFor(env.secrets, 'telesign', { reference_id: failed, status: { code: 500, description: 'Transaction not attempted', updated_on: new Date().toISOString() }, external_id: detail.eventId }), workerDeps);
    const second = await handler({ Records: [delivery(detail, 2)] });
    await simulator.reportsSettled();

    // assess
    assert.deepEqual(second.batchItemFailures, []);
    assert.equal((await storedState(env, 'telesign', failed))?.outcome, 'failed');
    const messages = taken(detail);
    assert.equal(messages.length, 1, 'was: none, the code recorded sent on the strength of a report that says it was not attempted');
    const item = await relayItem(detail);
    assert.equal(item?.status, 'sent');
    assert.equal(item?.referenceId, messages[0].referenceId);
    assert.equal(item?.referenceFrom, undefined, 'the answer gave it');
  });

  test('TeleSign took the first attempt despite its 503 and the retry went out before its report: both references are recorded, the session says a second message was taken', async () => {
    // prepare: as above, but the reports are held until the retry has sent
    const detail = await instruction(OTP_SAMPLE);
    let open: () => void = () => {};
    const route = await reportRoute(new Promise<void>((resolve) => (open = resolve)));
    const send = takenDespiteFirst503('{}');
    const handler = createRelayHandler({ deps: relayDeps({ send }), delayRetry: async () => undefined, random: () => 0 });
    try {
      // act
      await handler({ Records: [delivery(detail, 1)] });
      await handler({ Records: [delivery(detail, 2)] });
      open();
      await simulator.reportsSettled();

      // assess
      const [first, second] = taken(detail);
      assert.ok(first && second, 'two messages taken (the report of the first came too late to stop the retry)');
      const item = await relayItem(detail);
      assert.equal(item?.status, 'sent');
      assert.equal(item?.referenceId, second.referenceId);
      const view = await sessionView(detail);
      assert.deepEqual(view?.otherReferenceIds, [first.referenceId], 'was: the first message\'s reference recorded nowhere on the session');
      assert.match(relayLine(view!), new RegExp(`TeleSign also took 1 other message with this instruction's external_id \\(reference ${first.referenceId}\\)`));
      const [meeting] = await storedPartition(env, `telesign!external#${detail.eventId}`);
      assert.deepEqual([meeting.referenceId, ...[...(meeting.otherReferenceIds as Set<string>)]].sort(), [first.referenceId, second.referenceId].sort());
      const warned = logs.flatMap((log) => log.lines).filter((line) => line.level === 'WARN' && line.message === 'relay: another message carried this instruction\'s external_id' && line.fields?.eventId === detail.eventId);
      assert.ok(warned.length >= 1, 'the worker says so, never "joined"');
      assert.equal(warned[0].fields?.onSession, true);
    } finally {
      open();
      await route.stop();
    }
  });

  test('a signed TeleSign report whose external_id names no uncertain instruction changes nothing but its own subject', async () => {
    // prepare: a sent instruction (its relay item already has its reference) and a report of some other message
    const route = await reportRoute();
    const detail = await instruction(OTP_SAMPLE);
    try {
      const sent = await relayInstruction(detail, relayDeps());
      await simulator.reportsSettled();
      const before = await storedPartition(env, `identomat#${detail.subjectId}`);
      const workerDeps = reportJoiningWorker();
      // (Our instruction's own eventId with another reference is a second message TeleSign took for it: recorded, see above.)
      const strangers = ['f'.repeat(32), 'not-one-of-ours'];
      // act
      for (const [index, externalId] of strangers.entries()) {
        const reference = `${'ABCDEF0123456789'.repeat(2).slice(0, 30)}${index}0`;
        const message = await queueMessageFor(env.secrets, 'telesign', { reference_id: reference, status: { code: 200, description: 'Delivered to handset', updated_on: new Date().toISOString() }, external_id: externalId });
        await processMessage(message, workerDeps);
        // assess: stored as any report, joined to nothing
        assert.equal((await storedState(env, 'telesign', reference))?.status, '200');
        assert.equal(relayedLink(await storedPartition(env, `telesign#${reference}`)), null, `no link for ${externalId}`);
      }
      assert.equal(sent.outcome, 'sent');
      assert.deepEqual(await storedPartition(env, `identomat#${detail.subjectId}`), before, 'the session is as it was');
      assert.deepEqual(await storedPartition(env, `telesign!external#not-one-of-ours`), [], 'an external_id that is not an eventId is not looked up');
    } finally {
      await route.stop();
    }
  });
});

describe('only what the gateway stored is sent: anyone allowed to put events on the bus can write one', () => {
  /** What the relay logged of its outcome for `eventId`. */
  const outcomeLines = (log: CapturedLogger, eventId: string) => log.lines.filter((line) => line.fields?.eventId === eventId);
  const ATTACKER = '+15550001234';
  /** Every request TeleSign saw for this eventId (its external_id), whatever came of it. */
  const askedFor = (eventId: string) => simulator.sent.filter((message) => message.parameters.external_id === eventId);

  test('an instruction the gateway never stored (its own eventId, session and key) is sent nowhere and leaves no item', async () => {
    // prepare: an event made up whole, shaped exactly as the gateway's, eventId consistent with its key
    const model = await instruction(OTP_SAMPLE);
    const subjectId = uniqueId('forged');
    const eventKey = 'one-time-password|to:0000000000000000|0000000000000000';
    const forged: InstructionDetail = { ...model, subjectId, eventKey, destination: ATTACKER, text: 'Your code is 1234', eventId: instructionEventId(keys.event('identomat', subjectId, eventKey), model.receivedAt) };
    const log = logger();
    const handler = createRelayHandler({ deps: relayDeps({ log }), delayRetry: async () => undefined, random: () => 0 });

    // act
    const answer = await handler({ Records: [delivery(forged)] });

    // assess
    assert.deepEqual(answer.batchItemFailures, [], 'nothing to retry');
    assert.equal(askedFor(forged.eventId).length, 0, 'no request to TeleSign');
    assert.ok(!simulator.sent.some((message) => message.parameters.phone_number === ATTACKER.slice(1)), 'nothing to the number the event named');
    assert.deepEqual(await storedPartition(env, `identomat#${subjectId}`), [], 'no relay item, no marker');
    assert.deepEqual(outcomeLines(log, forged.eventId).map((line) => [line.fields?.outcome, line.fields?.reason]), [['skipped', 'not stored']]);
  });

  test("a real instruction's event with another number and text: the stored code goes to the stored number, once, and the line names the fields, never their values", async () => {
    // prepare
    const stored = await instruction({ ...OTP_SAMPLE, text: 'Your code is 9191' });
    const tampered: InstructionDetail = { ...stored, destination: ATTACKER, text: 'Call +15550001234 now', receivedAt: new Date().toISOString() };
    const log = logger();

    // act
    const results = [await relayInstruction(tampered, relayDeps({ log })), await relayInstruction(stored, relayDeps({ log }))];

    // assess
    assert.deepEqual(results.map((result) => result.outcome), ['sent', 'duplicate']);
    assert.equal(taken(stored).length, 1);
    const form = taken(stored)[0].parameters;
    assert.deepEqual({ to: form.phone_number, message: form.message }, { to: String(OTP_SAMPLE.phoneNumber).slice(1), message: 'Your code is 9191' });
    assert.ok(!simulator.sent.some((message) => message.parameters.phone_number === ATTACKER.slice(1)), 'nothing to the number the event named');
    const warning = outcomeLines(log, stored.eventId).find((line) => line.message === 'relay: the event differs from the stored instruction; sending the stored one');
    assert.deepEqual(warning?.fields?.fields, ['destination', 'text', 'receivedAt']);
    assert.ok(!leaks(JSON.stringify(warning), ATTACKER.slice(1)), 'the number the event named is not logged');
  });

  test("a stored instruction's key under another session, a key that is not an instruction, a provider that sends none: each sent nowhere", async () => {
    // prepare
    const stored = await instruction(OTP_SAMPLE);
    const otherSession = uniqueId('sess');
    const statusMessage = await queueMessageFor(env.secrets, 'identomat', { ...sampleJson('identomat', 'video-call-status-update'), sessionId: otherSession });
    await processMessage(statusMessage, env.deps({ log: logger() }));
    const statusItem = (await storedEvents(env, 'identomat', otherSession)).find((event) => event.requestId === statusMessage.requestId)!;
    const statusKey = { pk: String(statusItem.pk), sk: String(statusItem.sk) };
    const cases: InstructionDetail[] = [
      // the eventId and key of a real instruction, moved to another session: the id no longer matches the key
      { ...stored, subjectId: otherSession },
      // a stored callback that holds no instruction (a video call's update), named with its own consistent eventId
      { ...stored, subjectId: otherSession, eventKey: statusKey.sk.slice('EVENT#'.length), eventId: instructionEventId(statusKey, stored.receivedAt) },
      // a provider that sends no instructions: not even read
      { ...stored, provider: 'telesign', eventId: instructionEventId(keys.event('telesign', stored.subjectId, stored.eventKey), stored.receivedAt) },
    ];
    const log = logger();

    // act
    const results = [];
    for (const detail of cases) results.push(await relayInstruction(detail, relayDeps({ log })));

    // assess
    assert.deepEqual(results.map((result) => result.outcome), ['skipped', 'skipped', 'skipped']);
    for (const detail of cases) assert.equal(askedFor(detail.eventId).length, 0);
    assert.ok(!(await storedPartition(env, `identomat#${otherSession}`)).some((item) => String(item.sk).startsWith('RELAY')), 'no relay item in the other session');
    assert.equal(log.lines.filter((line) => line.fields?.outcome === 'skipped' && line.fields?.reason === 'not stored').length, 3);
    assert.equal((await relayInstruction(stored, relayDeps())).outcome, 'sent', 'the real one still goes out');
  });
});

describe('made-up events that still look like work: no retries, no items, nothing of theirs logged', () => {
  test('a key longer than DynamoDB keeps, on the queue\'s last receive: skipped at once, never retried into the DLQ, no item in the session it names', async () => {
    // prepare: a real session; a key of 1,020 characters (EVENT# and it pass the 1,024-byte sort-key limit), its eventId consistent
    const real = await instruction(OTP_SAMPLE);
    const eventKey = `one-time-password|${'k'.repeat(1_002)}`;
    const forged: InstructionDetail = { ...real, eventKey, eventId: instructionEventId(keys.event('identomat', real.subjectId, eventKey), real.receivedAt) };
    const log = logger();
    const handler = createRelayHandler({ deps: relayDeps({ log }), delayRetry: async () => undefined, random: () => 0 });

    // act
    const answer = await handler({ Records: [delivery(forged, RELAY.maxReceiveCount)] });

    // assess
    assert.deepEqual(answer.batchItemFailures, [], 'not a fault of the table: nothing to retry');
    assert.ok(!(await storedPartition(env, `identomat#${real.subjectId}`)).some((item) => item.sk === `RELAY#${forged.eventId}`), 'no relay item for it');
    assert.ok(log.lines.some((line) => line.fields?.reason === 'not stored'));
    assert.equal((await relayInstruction(real, relayDeps())).outcome, 'sent', 'the real code still goes out');
  });

  test('a provider the gateway does not know, written as a phone number: not read, and not logged', async () => {
    // prepare
    const real = await instruction(OTP_SAMPLE);
    const log = logger();
    // act
    const result = await relayInstruction({ ...real, provider: '+995599123456' }, relayDeps({ log }));
    // assess
    assert.equal(result.outcome, 'skipped');
    assert.ok(log.lines.length > 0);
    for (const line of log.lines) assert.ok(!leaks(JSON.stringify(line), '995599123456'), JSON.stringify(line));
  });

  test('the local runtime\'s sender switch goes by the stored receipt time: an event claiming a later one is still not sent', async () => {
    // prepare: an instruction stored before the switch, its event claiming it came after
    const stored = await instruction(OTP_SAMPLE, uniqueId('sess'), new Date(Date.now() - 60_000).toISOString());
    const switchedAt = new Date(Date.now() - 30_000).toISOString();
    // act
    const result = await relayInstruction({ ...stored, receivedAt: new Date().toISOString() }, relayDeps({ sendsOnlyReceivedFrom: switchedAt }));
    // assess
    assert.equal(result.outcome, 'skipped');
    assert.match(result.outcome === 'skipped' ? result.reason : '', /queued for another sender, not sent/);
    assert.equal(taken(stored).length, 0);
  });
});

describe('the DLQ redriven after the instruction is no longer kept', () => {
  test('a code the relay gave up on, redriven once its stored item expired (kept a day): recorded expired, not left "in the DLQ"', async () => {
    // prepare: TeleSign down on the queue's last receive; then the item expires (TTL), as a redrive days later finds it
    const detail = await instruction(OTP_SAMPLE);
    const handler = createRelayHandler({ deps: relayDeps(), delayRetry: async () => undefined, random: () => 0 });
    simulator.setSendFault({ status: 503, times: 1 });
    const last = await handler({ Records: [delivery(detail, RELAY.maxReceiveCount)] });
    assert.equal(last.batchItemFailures.length, 1);
    assert.deepEqual([(await relayItem(detail))?.status, (await relayItem(detail))?.deadLettered], ['retry', true]);
    await env.client.send(new DeleteItemCommand({ TableName: env.tableName, Key: marshall(keys.event('identomat', detail.subjectId, detail.eventKey)) }));

    // act
    const redriven = await handler({ Records: [delivery(detail, 1)] });

    // assess
    assert.deepEqual(redriven.batchItemFailures, []);
    const item = await relayItem(detail);
    assert.equal(item?.status, 'expired');
    assert.match(String(item?.reason), /no longer kept/);
    assert.equal(taken(detail).length, 0);
  });
});

describe('the same instruction stored again once its first stored item expired', () => {
  test('a session link shared again a day later (the first item gone by TTL): stored anew, a new eventId, and sent; the first life\'s redrive sends nothing more', async () => {
    // prepare: the link shared and sent; its stored item expires (kept a day); the same link is shared again
    const session = uniqueId('sess');
    const first = await instruction(LINK_SAMPLE, session, new Date(Date.now() - 120_000).toISOString());
    assert.equal((await relayInstruction(first, relayDeps())).outcome, 'sent');
    await env.client.send(new DeleteItemCommand({ TableName: env.tableName, Key: marshall(keys.event('identomat', session, first.eventKey)) }));
    const again = await instruction(LINK_SAMPLE, session);
    assert.equal(again.eventKey, first.eventKey, 'the same stored key: byte-identical bodies');

    // act
    const result = await relayInstruction(again, relayDeps());
    const redriven = await relayInstruction(first, relayDeps());

    // assess
    assert.notEqual(again.eventId, first.eventId, 'was: the first life\'s id, which a consumer deduping on it drops');
    assert.equal(result.outcome, 'sent', 'was: duplicate (the first life\'s relay item, kept 90 days), and the person never got the link');
    assert.equal(taken(again).length, 1);
    assert.equal(redriven.outcome, 'duplicate');
    assert.equal(taken(first).length, 1);
  });

  test('an event published before ids held the receipt time (queued across the upgrade) is sent once under its own id; the same instruction under its new id then sends nothing', async () => {
    // prepare
    const detail = await instruction({ ...OTP_SAMPLE, text: 'Your code is 7474' });
    const legacy: InstructionDetail = { ...detail, eventId: legacyInstructionEventId(keys.event('identomat', detail.subjectId, detail.eventKey)) };

    // act
    const results = [await relayInstruction(legacy, relayDeps()), await relayInstruction(legacy, relayDeps()), await relayInstruction(detail, relayDeps())];

    // assess
    assert.deepEqual(results.map((result) => result.outcome), ['sent', 'duplicate', 'superseded']);
    assert.deepEqual([taken(legacy).length, taken(detail).length], [1, 0]);
  });
});

describe('the DLQ redriven after the instruction is no longer kept: what a crash left', () => {
  const eventItemKey = (detail: InstructionDetail) => keys.event('identomat', detail.subjectId, detail.eventKey);
  const forget = (detail: InstructionDetail) => env.client.send(new DeleteItemCommand({ TableName: env.tableName, Key: marshall(eventItemKey(detail)) }));
  const later = (seconds: number) => () => new Date(Date.now() + seconds * 1000);

  test('left sending (sent, the record lost): uncertain, never sent again; left claimed (nothing left): expired', async () => {
    // prepare: one code sent whose record failed (the item stays `sending`), one whose send could not
    // begin and whose retry record failed too (the item stays `claimed`); both items then expire
    const real = createRelayStore(env.client, env.tableName);
    const down = async () => {
      throw new DependencyError('dynamodb', 'down');
    };
    const sending = await instruction({ ...OTP_SAMPLE, text: 'Your code is 8181' });
    const claimed = await instruction({ ...OTP_SAMPLE, text: 'Your code is 8282' });
    await assert.rejects(relayInstruction(sending, relayDeps({ store: { ...real, recordSent: down } })));
    await assert.rejects(relayInstruction(claimed, relayDeps({ store: { ...real, beginSend: down, update: down } })));
    assert.deepEqual([(await relayItem(sending))?.status, (await relayItem(claimed))?.status], ['sending', 'claimed']);
    await forget(sending);
    await forget(claimed);

    // act: redriven once no send can be in flight
    const results = [await relayInstruction(sending, relayDeps({ now: later(60) })), await relayInstruction(claimed, relayDeps({ now: later(60) }))];

    // assess
    assert.deepEqual(results.map((result) => result.outcome), ['uncertain', 'expired']);
    assert.deepEqual([(await relayItem(sending))?.status, (await relayItem(claimed))?.status], ['uncertain', 'expired']);
    assert.deepEqual([taken(sending).length, taken(claimed).length], [1, 0]);
  });

  test("an event carrying a real instruction's eventId and a key of its own does not touch that instruction's relay item", async () => {
    // prepare: a real code in the DLQ (TeleSign down on the last receive)
    const detail = await instruction({ ...OTP_SAMPLE, text: 'Your code is 8383' });
    simulator.setSendFault({ status: 503, times: 1 });
    await assert.rejects(relayInstruction(detail, relayDeps(), { receiveCount: RELAY.maxReceiveCount, maxReceiveCount: RELAY.maxReceiveCount }));
    assert.equal((await relayItem(detail))?.status, 'retry');

    // act
    const result = await relayInstruction({ ...detail, eventKey: 'one-time-password|to:0000000000000000|0000000000000000' }, relayDeps());

    // assess
    assert.equal(result.outcome, 'skipped');
    assert.deepEqual([(await relayItem(detail))?.status, (await relayItem(detail))?.deadLettered], ['retry', true], 'still in the DLQ, to be redriven');
  });

  test('the read failing on the last receive: the line that says it went to the DLQ names the instruction', async () => {
    // prepare
    const detail = await instruction(OTP_SAMPLE);
    const real = createRelayStore(env.client, env.tableName);
    const log = logger();
    const handler = createRelayHandler({
      deps: relayDeps({ log, store: { ...real, read: async () => Promise.reject(new DependencyError('dynamodb', 'GetItem failed: throttled')) } }),
      delayRetry: async () => undefined,
      random: () => 0,
    });

    // act
    const answer = await handler({ Records: [delivery(detail, RELAY.maxReceiveCount)] });

    // assess
    assert.equal(answer.batchItemFailures.length, 1);
    const line = log.lines.find((each) => each.message === 'relay: gave up, to the DLQ');
    assert.deepEqual([line?.fields?.eventId, line?.fields?.provider], [detail.eventId, 'identomat']);
  });
});

describe('relayMaxPerNumberPerHour: never more than so many SMS to one number in a clock hour', () => {
  /** A Georgian mobile number of its own per test: counts are per number, and the suite's other tests use the sample's. */
  const freshNumber = () => `+9955${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;
  /** Half past the previous clock hour, and a clock `seconds` later: every send of a test in one hour, however long it runs. */
  const halfPast = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 1_800_000;
  const received = (offsetSeconds = 0) => new Date(halfPast + offsetSeconds * 1000).toISOString();
  const clock = (offsetSeconds: number) => () => new Date(halfPast + offsetSeconds * 1000);
  /** The number's count for that hour, as stored. */
  const countOf = async (number: string) => {
    const items = await storedPartition(env, keys.relayCountPartition('telesign', numberHash(number, numberKey(telesign, env.secrets.telesign))));
    return items.find((item) => item.sk === `HOUR#${countHour(new Date(halfPast))}`);
  };
  const sentTo = (number: string) => simulator.sent.filter((message) => message.referenceId && message.parameters.phone_number === number.slice(1)).length;

  test('the 6th code to one number within the hour is refused and not sent, a link counts too, another number is unaffected; the line and the item name the setting, never the number', async () => {
    // prepare: five instructions (four codes and a link) of five sessions, to one number; a sixth; one to another number
    const [number, other] = [freshNumber(), freshNumber()];
    const five = [];
    for (let i = 0; i < 4; i++) five.push(await instruction({ ...OTP_SAMPLE, phoneNumber: number }, uniqueId('sess'), received(i)));
    five.push(await instruction({ ...LINK_SAMPLE, phoneNumber: number }, uniqueId('sess'), received(4)));
    const sixth = await instruction({ ...OTP_SAMPLE, phoneNumber: number }, uniqueId('sess'), received(5));
    const elsewhere = await instruction({ ...OTP_SAMPLE, phoneNumber: other }, uniqueId('sess'), received(6));
    const log = logger();
    // act
    const results = [];
    for (const detail of [...five, sixth, elsewhere]) results.push(await relayInstruction(detail, relayDeps({ maxPerNumberPerHour: 5, now: clock(10), log })));
    // assess
    assert.deepEqual(results.map((result) => result.outcome), ['sent', 'sent', 'sent', 'sent', 'sent', 'refused', 'sent'], 'was: the sixth sent');
    assert.equal(sentTo(number), 5, 'five reached TeleSign for the number');
    assert.equal(requested(sixth).filter((message) => message.parameters.external_id === sixth.eventId).length, 0, 'the sixth never asked TeleSign');
    assert.equal(sentTo(other), 1);
    const item = await relayItem(sixth);
    assert.equal(item?.status, 'refused');
    assert.equal(item?.refusedBy, 'gateway');
    assert.match(String(item?.reason), /5 SMS went to this number in this clock hour \(UTC\) already, the most relayMaxPerNumberPerHour allows/);
    const line = log.lines.find((each) => each.message === 'relay' && each.fields?.eventId === sixth.eventId);
    assert.deepEqual([line?.level, line?.fields?.outcome, line?.fields?.reason], ['WARN', 'refused', 'over relayMaxPerNumberPerHour'], 'counted by RelayNotSent');
    const [view] = await relayViews([item!], async () => []);
    assert.match(relayLine(view), /^code not sent: the gateway refused it before asking TeleSign \(5 SMS went to this number/);
    const nextHour = new Date(Math.floor(halfPast / 3_600_000) * 3_600_000 + 3_600_000).toISOString().slice(0, 16);
    assert.ok(
      relayLine(view).endsWith(`; the number can be sent to again from ${nextHour}Z (the next clock hour, UTC), or sooner with a higher relayMaxPerNumberPerHour`),
      `was: not when it clears, nor what to raise: ${relayLine(view)}`,
    );
    // The count is kept under a hash of the number, and goes by TTL a couple of hours after its hour.
    const count = await countOf(number);
    assert.equal(count?.count, 5);
    assert.ok(!String(count?.pk).includes(number.slice(4)), String(count?.pk));
    const hourEnds = Math.floor(halfPast / 1000) + 1800;
    assert.equal(count?.[TABLE.ttlAttribute], hourEnds + RELAY.countKeepHours * 3600);
    for (const each of log.lines) assert.ok(!leaks(JSON.stringify(each), number.slice(1)), JSON.stringify(each));
  });

  test("a number's count is keyed by a hash no reader of the table can redo: not its plain SHA-256, and under another TeleSign API key another key", async () => {
    // prepare: two codes to one number; the second sent by a relay whose TeleSign secret holds another
    // API key (its sender a stand-in: the simulated TeleSign takes the kit's key only)
    const number = freshNumber();
    const first = await instruction({ ...OTP_SAMPLE, phoneNumber: number }, uniqueId('sess'), received(0));
    const second = await instruction({ ...OTP_SAMPLE, phoneNumber: number }, uniqueId('sess'), received(1));
    const rotated = { ...(env.secrets.telesign as Record<string, unknown>), apiKey: randomBytes(32).toString('base64') };
    const standIn: typeof telesign = { ...telesign, sendMessage: async () => ({ referenceId: randomUUID().replace(/-/g, '').toUpperCase() }) };
    // act
    const sent = await relayInstruction(first, relayDeps({ maxPerNumberPerHour: 5, now: clock(10) }));
    const sentRotated = await relayInstruction(second, relayDeps({ maxPerNumberPerHour: 5, now: clock(11), sender: standIn, secrets: createSecretCache(async () => JSON.stringify(rotated)) }));
    // assess
    assert.deepEqual([sent.outcome, sentRotated.outcome], ['sent', 'sent']);
    const [item, rotatedItem] = [await relayItem(first), await relayItem(second)];
    const [key, rotatedKey] = [item?.countKey as { pk: string; sk: string }, rotatedItem?.countKey as { pk: string; sk: string }];
    const plain = createHash('sha256').update(number).digest('hex');
    for (const each of [key, rotatedKey]) {
      assert.match(String(each?.pk), /^telesign!relay-count#[0-9a-f]{32}$/);
      assert.ok(!plain.startsWith(String(each.pk).split('#')[1]), `was: the number's plain SHA-256, which hashing a country's numbers gives back: ${each.pk}`);
      assert.ok(!String(each.pk).includes(number.slice(4)));
    }
    assert.notEqual(key.pk, rotatedKey.pk, 'was: one key whatever the secret, so anyone can compute it');
    assert.deepEqual(await storedPartition(env, `telesign!relay-count#${plain.slice(0, 32)}`), [], 'nothing under the plain hash');
    // Each counted once, where its relay item says (the key the worker adds a second message to).
    for (const each of [key, rotatedKey]) assert.equal((await storedPartition(env, each.pk)).find((count) => count.sk === each.sk)?.count, 1, each.pk);
    assert.equal((await countOf(number))?.pk, key.pk, "the deployment's own secret keys the count the cap reads");
  });

  test("a TeleSign API key rotated near the end of an hour: relays that still hold the old key count apart for the rest of secretCacheSeconds, into the next hour too, and the README says so", async () => {
    // prepare: a cap of 1; relay A still holds the old secret (cached up to secretCacheSeconds), relay B
    // the rotated one, its old key under `previous` as the rotation section says; the change 100 s
    // before the clock hour ends (halfPast + 1700 s), both relays sending on into the next hour.
    const number = freshNumber();
    const rotated = { ...(env.secrets.telesign as Record<string, unknown>), apiKey: randomBytes(32).toString('base64'), previous: { apiKey: (env.secrets.telesign as { apiKey: string }).apiKey } };
    const standIn: typeof telesign = { ...telesign, sendMessage: async () => ({ referenceId: randomUUID().replace(/-/g, '').toUpperCase() }) };
    const relayA = (at: number) => relayDeps({ maxPerNumberPerHour: 1, now: clock(at) });
    const relayB = (at: number) => relayDeps({ maxPerNumberPerHour: 1, now: clock(at), sender: standIn, secrets: createSecretCache(async () => JSON.stringify(rotated)) });
    const sends: [typeof relayA, number][] = [[relayA, 1700], [relayB, 1710], [relayA, 1720], [relayB, 1730], [relayA, 1805], [relayB, 1806], [relayA, 1810]];
    // act
    const outcomes = [];
    for (const [relay, at] of sends) {
      const detail = await instruction({ ...OTP_SAMPLE, phoneNumber: number }, uniqueId('sess'), received(at - 1));
      outcomes.push((await relayInstruction(detail, relay(at))).outcome);
    }
    // assess: one SMS more than the cap in the hour of the change, and one more in the next, while A
    // still holds the old key (never more than one more per relay key per hour).
    assert.deepEqual(outcomes, ['sent', 'sent', 'refused', 'refused', 'sent', 'sent', 'refused']);
    const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    for (const place of ['### The SMS relay: Identomat', '### Rotating a secret without downtime']) {
      const section = README.slice(README.indexOf(place), README.indexOf('\n#', README.indexOf(place) + place.length));
      assert.match(section.replace(/\s+/g, ' '), /up to `relayMaxPerNumberPerHour` more SMS in each clock hour while a function still holds the old key/, `was: "in the hour of the change", once: ${place}`);
    }
  });

  test('a redelivery, and a new attempt after TeleSign answered 503, do not count again; expired, superseded and unstored instructions count nothing', async () => {
    // prepare: a cap of 3; one session's older code comes after its newer one (superseded); one code too old (expired)
    const number = freshNumber();
    const session = uniqueId('sess');
    const older = await instruction({ ...OTP_SAMPLE, phoneNumber: number, text: 'Your code is 1111' }, session, received(0));
    const newer = await instruction({ ...OTP_SAMPLE, phoneNumber: number, text: 'Your code is 2222' }, session, received(1));
    const stale = await instruction({ ...OTP_SAMPLE, phoneNumber: number }, uniqueId('sess'), received(-RELAY.codeMaxAgeSeconds - 60));
    const busy = await instruction({ ...OTP_SAMPLE, phoneNumber: number }, uniqueId('sess'), received(2));
    const [third, fourth] = [await instruction({ ...OTP_SAMPLE, phoneNumber: number }, uniqueId('sess'), received(3)), await instruction({ ...OTP_SAMPLE, phoneNumber: number }, uniqueId('sess'), received(4))];
    const made = { ...third, eventKey: `${third.eventKey}-made-up` };
    const handler = createRelayHandler({ deps: relayDeps({ maxPerNumberPerHour: 3, now: clock(10) }), delayRetry: async () => undefined, random: () => 0 });
    const deliver = async (detail: InstructionDetail, receiveCount = 1) => (await handler({ Records: [delivery(detail, receiveCount)] })).batchItemFailures.length;
    // act
    const failures = [await deliver(newer), await deliver(newer, 2), await deliver(newer, 3), await deliver(older), await deliver(stale), await deliver(made)];
    simulator.setSendFault({ status: 503, times: 1 });
    failures.push(await deliver(busy), await deliver(busy, 2), await deliver(busy, 3));
    failures.push(await deliver(third), await deliver(fourth));
    // assess
    assert.deepEqual(failures, [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0], 'only the 503 given back');
    assert.deepEqual(
      await Promise.all([newer, older, stale, busy, third, fourth].map(async (detail) => (await relayItem(detail))?.status)),
      ['sent', 'superseded', 'expired', 'sent', 'sent', 'refused'],
      'was: the redeliveries or the 503 counted again, and the third refused',
    );
    assert.equal(sentTo(number), 3);
    assert.equal((await countOf(number))?.count, 3);
    assert.equal((await relayItem(busy))?.attempts, 2, 'two attempts, one count');
  });

  test('a send TeleSign answers 503 gives its count back: after an outage, the code a person asked for again is sent, not refused', async () => {
    // prepare: a cap of 3; TeleSign answers the first four sends 503; a person asks four times (four codes, one session)
    const number = freshNumber();
    const session = uniqueId('sess');
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push(await instruction({ ...OTP_SAMPLE, phoneNumber: number, text: `Your code is ${1111 * (i + 1)}` }, session, received(i)));
    simulator.setSendFault({ status: 503, times: 4 });
    // act: each code as it comes, each answered 503; then TeleSign recovers and the last is delivered again
    const first = [];
    for (const code of codes) first.push(await outcomeOf(relayInstruction(code, relayDeps({ maxPerNumberPerHour: 3, now: clock(10) }))));
    const during = (await countOf(number))?.count;
    const last = await relayInstruction(codes[3], relayDeps({ maxPerNumberPerHour: 3, now: clock(20) }));
    // assess
    assert.deepEqual(first, ['DependencyError', 'DependencyError', 'DependencyError', 'DependencyError'], 'was: the fourth refused, three 503s having used the cap');
    assert.equal(during, 0, 'nothing sent, nothing counted');
    assert.equal(last.outcome, 'sent');
    assert.equal(sentTo(number), 1);
    assert.equal((await countOf(number))?.count, 1);
  });

  test('a give-back that landed, its answer lost and the decrement retried by the SDK: taken back once, the cap still holds', async (t) => {
    // prepare: a cap of 2; one code sent (count 1); another counted (2) and answered 503, its give-back
    // landing with its answer lost (a timeout the SDK retries)
    const number = freshNumber();
    const [sent, busy, third, fourth] = [
      await instruction({ ...OTP_SAMPLE, phoneNumber: number }, uniqueId('sess'), received(0)),
      await instruction({ ...OTP_SAMPLE, phoneNumber: number }, uniqueId('sess'), received(1)),
      await instruction({ ...OTP_SAMPLE, phoneNumber: number }, uniqueId('sess'), received(2)),
      await instruction({ ...OTP_SAMPLE, phoneNumber: number }, uniqueId('sess'), received(3)),
    ];
    const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint: env.dynamo.endpoint });
    t.after(() => client.destroy());
    let lost = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (lost === 0 && context.commandName === 'UpdateItemCommand' && String((args.input as { UpdateExpression?: string }).UpdateExpression).includes(':minusOne')) {
          lost++;
          throw Object.assign(new Error('the answer never came (test)'), { name: 'TimeoutError', $metadata: {} });
        }
        return result;
      },
      { step: 'deserialize', name: 'loseOneAnswer' },
    );
    const deps = () => relayDeps({ maxPerNumberPerHour: 2, now: clock(10) });
    // act
    const results: string[] = [(await relayInstruction(sent, deps())).outcome];
    simulator.setSendFault({ status: 503, times: 1 });
    results.push(await outcomeOf(relayInstruction(busy, relayDeps({ store: createRelayStore(client, env.tableName), maxPerNumberPerHour: 2, now: clock(10) }))));
    const afterGiveBack = (await countOf(number))?.count;
    for (const detail of [third, fourth]) results.push((await relayInstruction(detail, deps())).outcome);
    // assess
    assert.equal(lost, 1, 'one answer lost');
    assert.equal(afterGiveBack, 1, 'was: 0, the decrement taken twice');
    assert.deepEqual(results, ['sent', 'DependencyError', 'sent', 'refused'], 'was: the fourth sent, three SMS to the number with a cap of 2');
    assert.equal(sentTo(number), 2);
    assert.equal((await countOf(number))?.count, 2);
  });

  test('TeleSign answered 503 yet took the message, its report found by the retry: counted after all, the cap still holds', async () => {
    // prepare: a cap of 1; the first request reaches TeleSign (the message goes out) but the relay is answered 503;
    // TeleSign's report (our external_id) comes before the retry; then another code to the same number
    const number = freshNumber();
    const [first, second] = [await instruction({ ...OTP_SAMPLE, phoneNumber: number }, uniqueId('sess'), received(0)), await instruction({ ...OTP_SAMPLE, phoneNumber: number }, uniqueId('sess'), received(1))];
    const send = takenDespiteFirst503();
    const workerDeps = reportJoiningWorker();
    // act
    const attempt = await outcomeOf(relayInstruction(first, relayDeps({ send, maxPerNumberPerHour: 1, now: clock(10) })));
    const [message] = taken(first);
    await processMessage(await queueMessageFor(env.secrets, 'telesign', { reference_id: message.referenceId, status: { code: 200, description: 'Delivered to handset', updated_on: new Date().toISOString() }, external_id: first.eventId }), workerDeps);
    const retried = await relayInstruction(first, relayDeps({ maxPerNumberPerHour: 1, now: clock(20) }));
    const other = await relayInstruction(second, relayDeps({ maxPerNumberPerHour: 1, now: clock(30) }));
    // assess
    assert.equal(attempt, 'DependencyError');
    assert.equal(retried.outcome, 'sent');
    assert.equal((await relayItem(first))?.referenceFrom, 'delivery report');
    assert.equal(other.outcome, 'refused', 'was: sent, a second SMS to the number with a cap of 1');
    assert.equal(sentTo(number), 1);
    assert.equal((await countOf(number))?.count, 1);
  });

  test('TeleSign answered 503 yet took the message, and the retry went out before its report: the report, when it comes, counts the second SMS, once', async () => {
    // prepare: a cap of 2; the first request reaches TeleSign (the message goes out) but the relay is answered 503
    // (its count given back); the retry sends (200) before the first message's report (our external_id) comes
    const number = freshNumber();
    const [first, further] = [await instruction({ ...OTP_SAMPLE, phoneNumber: number }, uniqueId('sess'), received(0)), await instruction({ ...OTP_SAMPLE, phoneNumber: number }, uniqueId('sess'), received(1))];
    const send = takenDespiteFirst503();
    const workerDeps = reportJoiningWorker();
    const report = async (referenceId: string | undefined) =>
      processMessage(await queueMessageFor(env.secrets, 'telesign', { reference_id: referenceId, status: { code: 200, description: 'Delivered to handset', updated_on: new Date().toISOString() }, external_id: first.eventId }), workerDeps);
    // act
    const attempt = await outcomeOf(relayInstruction(first, relayDeps({ send, maxPerNumberPerHour: 2, now: clock(10) })));
    const retried = await relayInstruction(first, relayDeps({ send, maxPerNumberPerHour: 2, now: clock(20) }));
    const beforeReport = (await countOf(number))?.count;
    const [r1, r2] = taken(first);
    await report(r1.referenceId);
    const afterReport = (await countOf(number))?.count;
    await report(r1.referenceId);
    await report(r2.referenceId);
    const other = await relayInstruction(further, relayDeps({ maxPerNumberPerHour: 2, now: clock(30) }));
    // assess
    assert.equal(attempt, 'DependencyError');
    assert.equal(retried.outcome, 'sent');
    assert.equal((await relayItem(first))?.referenceId, r2.referenceId);
    assert.deepEqual([...((await relayItem(first))?.otherReferenceIds as Set<string>)], [r1.referenceId]);
    assert.equal(beforeReport, 1);
    assert.equal(afterReport, 2, 'was: 1, the first message (given back on its 503) never counted');
    assert.equal((await countOf(number))?.count, 2, 'the redelivered report, and the second message\'s own, count nothing more');
    assert.equal(other.outcome, 'refused', 'was: sent, a third SMS to the number with a cap of 2');
    assert.equal(sentTo(number), 2, 'two SMS left for the one instruction, none for the further code');
  });

  test('0: no cap, and nothing counted', async () => {
    // prepare
    const number = freshNumber();
    const details = [];
    for (let i = 0; i < 7; i++) details.push(await instruction({ ...OTP_SAMPLE, phoneNumber: number }, uniqueId('sess'), received(i)));
    // act
    const results = [];
    for (const detail of details) results.push(await relayInstruction(detail, relayDeps({ maxPerNumberPerHour: 0, now: clock(10) })));
    // assess
    assert.deepEqual(results.map((result) => result.outcome), Array(7).fill('sent'));
    assert.equal(sentTo(number), 7);
    assert.equal(await countOf(number), undefined);
  });

  test('the table failing as the send is counted: nothing sent, the instruction kept for a retry, which counts it once and sends it', async () => {
    // prepare: the transaction that moves the item to sending and counts fails, as DynamoDB throttling it would
    const number = freshNumber();
    const detail = await instruction({ ...OTP_SAMPLE, phoneNumber: number }, uniqueId('sess'), received(0));
    const real = createRelayStore(env.client, env.tableName);
    const failing: typeof real = {
      ...real,
      beginSend: (key, attempt, marker, position, fields, count) =>
        count ? Promise.reject(new DependencyError('dynamodb', 'TransactWriteItems (relay send) failed: ProvisionedThroughputExceededException')) : real.beginSend(key, attempt, marker, position, fields, count),
    };
    // act
    const first = await relayInstruction(detail, relayDeps({ store: failing, maxPerNumberPerHour: 2, now: clock(10) })).catch((error: unknown) => error);
    const status = (await relayItem(detail))?.status;
    const second = await relayInstruction(detail, relayDeps({ maxPerNumberPerHour: 2, now: clock(11) }));
    // assess
    assert.ok(first instanceof DependencyError, String(first));
    assert.equal(status, 'retry', 'kept for the next delivery');
    assert.equal(second.outcome, 'sent');
    assert.equal(sentTo(number), 1);
    assert.equal((await countOf(number))?.count, 1);
  });

  test('the move to sending landed, its answer lost and the transaction retried by the SDK: counted once', async (t) => {
    // prepare
    const number = freshNumber();
    const detail = await instruction({ ...OTP_SAMPLE, phoneNumber: number }, uniqueId('sess'), received(0));
    const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint: env.dynamo.endpoint });
    t.after(() => client.destroy());
    let lost = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (lost === 0 && context.commandName === 'TransactWriteItemsCommand') {
          lost++;
          throw Object.assign(new Error('the answer never came (test)'), { name: 'TimeoutError', $metadata: {} });
        }
        return result;
      },
      { step: 'deserialize', name: 'loseOneAnswer' },
    );
    // act
    const result = await relayInstruction(detail, relayDeps({ store: createRelayStore(client, env.tableName), maxPerNumberPerHour: 2, now: clock(10) }));
    // assess
    assert.equal(lost, 1);
    assert.equal(result.outcome, 'sent');
    assert.equal((await countOf(number))?.count, 1);
  });
});

describe('logs', () => {
  test("a reference the sender answers with that echoes the number is masked in the relay's line", async () => {
    // prepare: a sender (a stand-in, a misconfigured baseUrl) whose reference is the number it was given
    const detail = await instruction(OTP_SAMPLE);
    const log = logger();
    const echoing: typeof telesign = { ...telesign, sendMessage: async (_secret, message) => ({ referenceId: `SM${message.to.replace(/\D/g, '')}` }) };
    // act
    const result = await relayInstruction(detail, relayDeps({ log, sender: echoing }));
    // assess
    assert.equal(result.outcome, 'sent');
    const line = log.lines.find((each) => each.message === 'relay' && each.fields?.outcome === 'sent');
    assert.ok(line, JSON.stringify(log.lines));
    assert.match(String(line.fields?.referenceId), /^SM\*+\d{3}$/);
    for (const each of log.lines) assert.ok(!leaks(JSON.stringify(each), String(OTP_SAMPLE.phoneNumber).slice(1)), JSON.stringify(each));
  });

  test('no log line of the suite carries the number, the text, the code or the link', () => {
    // act
    const lines = logs.flatMap((log) => log.lines.map((line) => JSON.stringify(line)));
    // assess
    assert.ok(lines.some((line) => line.includes('"relay"')), 'the relay logged');
    assert.ok(lines.length > 20);
    for (const line of lines) for (const value of NEVER_LOGGED) assert.ok(!leaks(line, value), `a log line carries "${value}": ${line}`);
  });
});

describe('a write of the relay that landed, its answer lost and the call retried by the SDK', () => {
  /** A relay store whose first `command` (matching `only`) lands and whose answer is lost (a timeout, which the SDK retries). */
  function storeLosing(command: string, only: (input: { Key?: Record<string, { S?: string }>; ExpressionAttributeValues?: Record<string, { S?: string }> }) => boolean = () => true) {
    const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint: env.dynamo.endpoint });
    let lost = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (lost === 0 && context.commandName === command && only(args.input as never)) {
          lost++;
          throw Object.assign(new Error('the answer never came (test)'), { name: 'TimeoutError', $metadata: {} });
        }
        return result;
      },
      { step: 'deserialize', name: 'loseOneAnswer' },
    );
    return { store: createRelayStore(client, env.tableName), lost: () => lost, client };
  }

  for (const [what, command] of [
    ['the relay item\'s creation', 'PutItemCommand'],
    ['the move to sending', 'TransactWriteItemsCommand'],
  ] as const) {
    test(`${what}: the code is sent at once, once, not held back as a send in flight`, async (t) => {
      // prepare
      const detail = await instruction({ ...OTP_SAMPLE, text: `Your code is ${command.length}${what.length}` });
      const lossy = storeLosing(command);
      t.after(() => lossy.client.destroy());
      const handler = createRelayHandler({ deps: relayDeps({ store: lossy.store }), delayRetry: async () => undefined, random: () => 0 });
      // act
      const result = await handler({ Records: [delivery(detail)] });
      // assess
      assert.equal(lossy.lost(), 1, 'one answer lost');
      assert.deepEqual(result.batchItemFailures, [], 'sent and recorded: not given back');
      assert.equal(taken(detail).length, 1, 'sent once');
      const item = await relayItem(detail);
      assert.equal(item?.status, 'sent');
      assert.equal(item?.referenceId, taken(detail)[0].referenceId);
    });
  }

  test('the claim of an instruction whose first send failed: the code is sent at once, once, not held back as a send in flight', async (t) => {
    // prepare: TeleSign answered the first delivery 503 (nothing sent, the item `retry`)
    const detail = await instruction({ ...OTP_SAMPLE, text: 'Your code is 5151' });
    simulator.setSendFault({ status: 503, times: 1 });
    const first = await createRelayHandler({ deps: relayDeps(), delayRetry: async () => undefined, random: () => 0 })({ Records: [delivery(detail, 1)] });
    assert.equal(first.batchItemFailures.length, 1);
    assert.equal((await relayItem(detail))?.status, 'retry');
    const lossy = storeLosing('UpdateItemCommand', (input) => input.Key?.sk?.S === `RELAY#${detail.eventId}` && Object.values(input.ExpressionAttributeValues ?? {}).some((value) => value.S === 'claimed'));
    t.after(() => lossy.client.destroy());
    const log = logger();
    // act
    const second = await createRelayHandler({ deps: relayDeps({ store: lossy.store, log }), delayRetry: async () => undefined, random: () => 0 })({ Records: [delivery(detail, 2)] });
    // assess
    assert.equal(lossy.lost(), 1, 'one answer lost');
    assert.deepEqual(second.batchItemFailures, [], 'sent and recorded: not given back');
    assert.equal(taken(detail).length, 1, 'sent once');
    assert.equal((await relayItem(detail))?.status, 'sent');
    assert.ok(!log.lines.some((line) => line.fields?.outcome === 'in-flight'));
  });
});
