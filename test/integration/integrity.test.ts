import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { publishRecords } from '../../functions/core/publisher.ts';
import { ensureQueues, LOCAL_AWS, startSqsServer } from '../../local/engines.ts';
import { openEventBus, sqsTargetRule } from '../../local/event-bus.ts';
import { SMS_RELAY_PATTERN } from '../../local/events-outlet.ts';
import { describe, test } from 'node:test';
import { FUTURE_TOLERANCE_MS } from '../../functions/core/events.ts';
import { DETAIL_TYPES, eventsFromChange } from '../../functions/core/publish.ts';
import { DYNAMODB_ITEM_LIMIT, itemSize } from '../../functions/core/item-size.ts';
import { keys, MAX_BODY_BYTES } from '../../functions/core/pipeline-definition.ts';
import { rawBodyOf } from '../../functions/core/queue-message.ts';
import { RECENT_OBSERVATIONS } from '../../functions/core/state.ts';
import { storable } from '../../functions/core/storable.ts';
import { processMessage } from '../../functions/core/worker.ts';
import { toStreamRecord } from '../../functions/adapters/dynamo-stream.ts';
import { readTableStream } from '../support/dynamodb-local-stream.ts';
import { ItemTooLargeError } from '../../functions/shared/errors.ts';
import {
  captureLogger,
  queueMessageFor,
  sampleJson,
  startWorkerEnvironment,
  storedEvents,
  storedPartition,
  storedState,
  uniqueId,
  type WorkerEnvironment,
} from '../support/integration-worker.ts';
import { suiteResource } from '../support/suite-resource.ts';

/**
 * Integrity through the real worker on DynamoDB Local: no input, however crafted, can freeze a
 * state, merge two subjects, or be answered 200 and then never stored.
 */

let env: WorkerEnvironment;
suiteResource(
  async () => {
    env = await startWorkerEnvironment();
  },
  async () => {
    await env?.stop();
  },
);

function teleSignReport(referenceId: string, code: number, updatedOn: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...sampleJson('telesign', 'sms-dlr-success'), reference_id: referenceId, status: { code, updated_on: updatedOn, description: `code ${code}` }, ...extra };
}

describe('bounded state: however many events a subject gets, its state item stays small and correct', () => {
  test(`${RECENT_OBSERVATIONS * 4} distinct callbacks for one subject, then the final status, then redeliveries of old and new ones`, async () => {
    // prepare: distinct eSMS-style flood through one TeleSign subject (each a distinct event)
    const ref = uniqueId('TS-FLOOD');
    const deps = env.deps();
    const base = Date.UTC(2025, 0, 1, 10, 0, 0);
    const flood = [];
    for (let i = 0; i < RECENT_OBSERVATIONS * 4; i++) {
      flood.push(await queueMessageFor(env.secrets, 'telesign', teleSignReport(ref, 203, new Date(base + i * 1000).toISOString())));
    }
    const final = await queueMessageFor(env.secrets, 'telesign', teleSignReport(ref, 200, new Date(base + 3_600_000).toISOString()));
    // act
    for (const message of flood) await processMessage(message, deps);
    await processMessage(final, deps);
    const oldRedelivery = await processMessage(flood[0], deps);
    const newRedelivery = await processMessage(final, deps);
    // assess
    const state = await storedState(env, 'telesign', ref);
    assert.equal(state?.status, '200');
    assert.equal(state?.eventCount, RECENT_OBSERVATIONS * 4 + 1, 'every distinct callback counted once');
    assert.equal(oldRedelivery.kind, 'duplicate', 'an old redelivery is known by its event item');
    assert.equal(newRedelivery.kind, 'duplicate');
    assert.equal((state?.recent as string[]).length, RECENT_OBSERVATIONS);
    assert.ok(itemSize(state!) < 3_000, `state item ${itemSize(state!)} bytes`);
    assert.equal((await storedEvents(env, 'telesign', ref)).length, RECENT_OBSERVATIONS * 4 + 1);
  });
});

describe('no authentic callback answered 200 ends in the DLQ for its size or shape', () => {
  test('a signed TeleSign body just under the body limit that makes a DynamoDB item over 400 KB is stored, its exact bytes kept', async () => {
    // prepare: `[0]` is 4 JSON bytes but 7 DynamoDB bytes (list: 3 + 1 per element + a number)
    const ref = uniqueId('TS-HUGE');
    const head = teleSignReport(ref, 200, '2025-03-01T10:00:00Z');
    const skeleton = JSON.stringify({ ...head, x: [] });
    const count = Math.floor((MAX_BODY_BYTES - 30 - skeleton.length) / 4);
    const body = Buffer.from(skeleton.replace('"x":[]', `"x":[${Array(count).fill('[0]').join(',')}]`));
    assert.ok(body.length <= MAX_BODY_BYTES && body.length > MAX_BODY_BYTES - 100, `${body.length} bytes`);
    assert.ok(itemSize({ payload: storable(JSON.parse(body.toString())) }) > DYNAMODB_ITEM_LIMIT, 'as attributes it is over the item limit');
    const message = await queueMessageFor(env.secrets, 'telesign', body);
    // act
    const result = await processMessage(message, env.deps());
    // assess
    assert.equal(result.kind, 'stored');
    const state = await storedState(env, 'telesign', ref);
    assert.equal(state?.status, '200');
    const [event] = await storedEvents(env, 'telesign', ref);
    assert.equal(event.payload, undefined);
    assert.equal((event.omitted as { reason: string }).reason, 'too large for one DynamoDB item');
    assert.ok(gunzipSync(event.rawGzip as Uint8Array).equals(rawBodyOf(message)), 'the exact bytes are kept');
  });

  test('a signed TeleSign body of negative numbers, which DynamoDB counts a byte larger than positive ones, is stored, its exact bytes kept', async () => {
    // prepare: `[-1]` is 5 JSON bytes and 8 DynamoDB bytes in its list; counted as 7 it sized the
    // item under the gateway's budget, DynamoDB refused it as over 400 KB, and every receive failed.
    const ref = uniqueId('TS-NEGATIVE');
    const skeleton = JSON.stringify({ ...teleSignReport(ref, 200, '2025-03-01T10:00:00Z'), x: [] });
    const count = Math.floor((MAX_BODY_BYTES - 30 - skeleton.length) / 5);
    const body = Buffer.from(skeleton.replace('"x":[]', `"x":[${Array(count).fill('[-1]').join(',')}]`));
    const asPositive = itemSize({ payload: storable(JSON.parse(body.toString().replaceAll('-1', '1'))) });
    assert.ok(asPositive < 380 * 1024 && asPositive + count > DYNAMODB_ITEM_LIMIT, `the premise: ${asPositive} B counted as positive, ${count} negatives`);
    const message = await queueMessageFor(env.secrets, 'telesign', body);
    // act
    const result = await processMessage(message, env.deps());
    // assess
    assert.equal(result.kind, 'stored');
    const [event] = await storedEvents(env, 'telesign', ref);
    assert.equal(event.payload, undefined);
    assert.ok(gunzipSync(event.rawGzip as Uint8Array).equals(rawBodyOf(message)), 'the exact bytes are kept');
    assert.equal((await storedState(env, 'telesign', ref))?.status, '200');
  });

  test('an item DynamoDB refuses as too large though it was sized within the budget is stored compressed, not retried into the DLQ', async () => {
    // prepare: the store refuses the first, uncompressed put as DynamoDB does (fault injection: the
    // size estimate is DynamoDB's "approximately", so a miscount must not lose a callback)
    const ref = uniqueId('TS-REFUSED');
    const message = await queueMessageFor(env.secrets, 'telesign', teleSignReport(ref, 200, '2025-03-01T10:00:00Z'));
    const deps = env.deps();
    let refused = 0;
    const store = {
      ...deps.store,
      async putOnce(item: Record<string, unknown>) {
        if (item.payload !== undefined && String(item.sk).startsWith('EVENT#')) {
          refused += 1;
          throw new ItemTooLargeError('PutItem failed: Item size has exceeded the maximum allowed size');
        }
        return deps.store.putOnce(item);
      },
    };
    // act
    const result = await processMessage(message, { ...deps, store });
    // assess
    assert.equal(refused, 1);
    assert.equal(result.kind, 'stored');
    const [event] = await storedEvents(env, 'telesign', ref);
    assert.equal((event.omitted as { reason: string }).reason, 'too large for one DynamoDB item');
    assert.ok(gunzipSync(event.rawGzip as Uint8Array).equals(rawBodyOf(message)), 'the exact bytes are kept');
    assert.equal((await storedState(env, 'telesign', ref))?.status, '200');
  });

  test('a quarantined callback DynamoDB refuses as too large though it was sized within the budget is kept compressed', async () => {
    // prepare: an authentic but invalid TeleSign body (no reference_id); the store refuses every
    // uncompressed form of its quarantine item, as DynamoDB would (fault injection)
    const body = Buffer.from(JSON.stringify({ status: { code: 200, updated_on: '2025-03-01T10:00:00Z' }, note: uniqueId('refused') }));
    const message = await queueMessageFor(env.secrets, 'telesign', body);
    const deps = env.deps();
    const refusedForms: string[] = [];
    const store = {
      ...deps.store,
      async putOnce(item: Record<string, unknown>) {
        if (String(item.sk).startsWith('QUARANTINE#') && typeof item.message === 'string') {
          refusedForms.push(item.message === JSON.stringify(message) ? 'text' : 'base64');
          throw new ItemTooLargeError('PutItem failed: Item size has exceeded the maximum allowed size');
        }
        return deps.store.putOnce(item);
      },
    };
    // act
    const result = await processMessage(message, { ...deps, store });
    // assess
    assert.equal(result.kind, 'quarantined');
    assert.deepEqual(refusedForms, ['text', 'base64', 'text'], 'as it is, as base64, as it is within putFitted; then compressed');
    const kept = (await storedPartition(env, keys.quarantinePartition('telesign'))).find((item) => item.requestId === message.requestId);
    assert.equal(kept?.message, undefined);
    assert.equal(JSON.parse(gunzipSync(kept?.messageGzip as Uint8Array).toString()).requestId, message.requestId, 'the whole queue message is kept');
  });

  test('an Identomat code whose item had to be compressed (a large unknown field beside it) is still published as an instruction', async () => {
    // prepare: 130,900 small numbers: a body within the limit, an item over it as attributes
    const sessionId = uniqueId('idm-otp-huge');
    const body: Record<string, unknown> = { ...sampleJson('identomat', 'one-time-password'), sessionId, metadata: Array(130_900).fill(1) };
    const message = await queueMessageFor(env.secrets, 'identomat', body);
    // act
    const result = await processMessage(message, env.deps());
    const [item] = await storedEvents(env, 'identomat', sessionId);
    const events = eventsFromChange({ eventName: 'INSERT', newImage: item });
    // assess
    assert.equal(result.kind, 'stored');
    assert.equal(item.payload, undefined, 'the premise: the payload did not fit as attributes');
    assert.deepEqual(events.map((event) => event.detailType), [DETAIL_TYPES.instruction]);
    const detail = events[0].detail as { kind: string; destination: string; text?: string; subjectId: string };
    assert.deepEqual([detail.kind, detail.destination, detail.text, detail.subjectId], ['one-time-password', body.phoneNumber as string, body.text as string, sessionId]);
  });
});

describe('a write that says nothing new moves nothing and publishes nothing', () => {
  test('a second Standard Webhooks "invoice.updated" (undeclared: a detail of two members, which DynamoDB reads back in another order) publishes one event, not two', async () => {
    // prepare
    const invoice = uniqueId('in');
    const source = Object.keys((env.secrets['standard-webhooks'] as { sources: object }).sources)[0];
    const body = (minute: number) => ({ type: 'invoice.updated', timestamp: `2022-11-03T20:3${minute}:00.000000Z`, data: { id: invoice, amount: 4200 + minute, currency: 'USD' } });
    // act
    for (const minute of [0, 1]) assert.equal((await processMessage(await queueMessageFor(env.secrets, 'standard-webhooks', body(minute)), env.deps())).kind, 'stored');
    const state = await storedState(env, 'standard-webhooks', `${source}/${invoice}`);
    const records = (await readTableStream(env.dynamo.endpoint, env.tableName)).filter((record) => record.dynamodb?.Keys?.pk?.S === state?.pk).map(toStreamRecord);
    const events = records.flatMap((record) => eventsFromChange(record.change));
    // assess
    assert.equal(state?.status, 'invoice.updated');
    assert.equal(state?.eventCount, 2, 'both callbacks kept');
    assert.equal(state?.changedAt, state?.createdAt, 'nothing a reader sees changed, so changedAt (the byOutcome sort key) did not move');
    assert.equal(events.length, 1, JSON.stringify(events.map((event) => event.detail)));
  });
});

describe('events out: no text a provider sends can stop events reaching an SQS target', () => {
  test('an SMS instruction whose text holds U+FFFF reaches the relay queue (as U+FFFD), and a later change of another subject is published', async () => {
    // prepare: the stack's relay rule on the local bus, its target a real SQS API
    const sqs = await startSqsServer();
    const busFolder = mkdtempSync(join(tmpdir(), 'bus-'));
    try {
      const client = new SQSClient({ ...LOCAL_AWS, endpoint: sqs.endpoint });
      const { queueUrl } = await ensureQueues(client, { queue: 'relay', dlq: 'relay-dlq' });
      const bus = openEventBus({ file: join(busFolder, 'events.jsonl'), rules: [sqsTargetRule('sms-relay', SMS_RELAY_PATTERN, client, queueUrl)], region: 'us-east-1' });
      const sessionId = uniqueId('idm-ffff');
      const reference = uniqueId('TS-AFTER');
      const otp = await queueMessageFor(env.secrets, 'identomat', { ...sampleJson('identomat', 'one-time-password'), sessionId, text: 'Your code is 6867 \uffff\ufffe' });
      const report = await queueMessageFor(env.secrets, 'telesign', { ...sampleJson('telesign', 'sms-dlr-success'), reference_id: reference });
      assert.equal((await processMessage(otp, env.deps())).kind, 'stored');
      assert.equal((await processMessage(report, env.deps())).kind, 'stored');
      const ours = new Set([`identomat#${sessionId}`, `telesign#${reference}`]);
      const records = (await readTableStream(env.dynamo.endpoint, env.tableName)).filter((record) => ours.has(record.dynamodb?.Keys?.pk?.S ?? '')).map(toStreamRecord);
      // act
      const result = await publishRecords(records, { publish: (events) => bus.publish(events), log: captureLogger() });
      const received = await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      // assess
      assert.deepEqual(result, { published: 2, setAside: 0, failed: [] }, 'the instruction and the TeleSign status change both published');
      const delivered = (received.Messages ?? []).map((message) => JSON.parse(message.Body!) as { detail: { text?: string } });
      assert.deepEqual(delivered.map((event) => event.detail.text), ['Your code is 6867 \ufffd\ufffd']);
    } finally {
      await sqs.stop();
      rmSync(busFolder, { recursive: true, force: true });
    }
  });
});

describe('keys are exact: two subjects never share a state', () => {
  test('subject ids with U+FFFE or U+FFFF are quarantined whole: an event could name them only altered, as one another (was: two sessions shared one relay marker)', async () => {
    // prepare: two Identomat sessions that differ only in U+FFFE / U+FFFF, each with a code
    const base = uniqueId('idm-nonchar');
    const messages = await Promise.all(
      ['\ufffe', '\uffff'].map((char) => queueMessageFor(env.secrets, 'identomat', Buffer.from(JSON.stringify({ ...sampleJson('identomat', 'one-time-password'), sessionId: `${base}${char}` })))),
    );
    // act
    const results = [];
    for (const message of messages) results.push(await processMessage(message, env.deps()));
    // assess
    assert.ok(messages.every((message) => message.quarantine), 'ingest answered them as quarantined');
    assert.deepEqual(results.map((result) => result.kind), ['quarantined', 'quarantined']);
    const kept = (await storedPartition(env, keys.quarantinePartition('identomat'))).filter((item) => messages.some((message) => message.requestId === item.requestId));
    assert.equal(kept.length, 2, 'both kept');
    assert.ok(kept.every((item) => /U\+FFFE or U\+FFFF/.test(String(item.reason))), JSON.stringify(kept.map((item) => item.reason)));
  });

  test('a subject id with a lone surrogate is quarantined whole, and never overwrites the subject it would be written as', async () => {
    // prepare: DynamoDB writes \udfff as "?", so "X-\udfff" would land on "X-?"
    const ref = uniqueId('TS-SUR');
    const plain = await queueMessageFor(env.secrets, 'telesign', teleSignReport(`${ref}-?`, 200, '2025-03-01T10:00:00Z'));
    const surrogate = await queueMessageFor(env.secrets, 'telesign', Buffer.from(JSON.stringify(teleSignReport(`${ref}-\udfff`, 207, '2025-03-01T10:00:09Z'))));
    // act
    await processMessage(plain, env.deps());
    const result = await processMessage(surrogate, env.deps());
    // assess
    assert.ok(surrogate.quarantine, 'ingest answered it as quarantined');
    assert.equal(result.kind, 'quarantined');
    const state = await storedState(env, 'telesign', `${ref}-?`);
    assert.equal(state?.status, '200');
    assert.equal(state?.eventCount, 1);
    const kept = (await storedPartition(env, keys.quarantinePartition('telesign'))).find((item) => item.requestId === surrogate.requestId);
    assert.match(String(kept?.reason), /lone UTF-16 surrogate/);
  });

  test('a subject named "quarantine" is a subject like any other, outside the quarantine partition', async () => {
    // prepare
    const body = { ...sampleJson('relid', 'callback-two-way'), notification_uuid: 'quarantine' };
    env.simulators.relid.report(body); // REL-ID's getRVNStatus knows it: the callback is confirmed, not held back
    const message = await queueMessageFor(env.secrets, 'relid', body);
    const before = (await storedPartition(env, keys.quarantinePartition('relid'))).length;
    // act
    const result = await processMessage(message, env.deps());
    // assess
    assert.equal(result.kind === 'stored' || result.kind === 'duplicate', true);
    assert.equal((await storedState(env, 'relid', 'quarantine'))?.subjectId, 'quarantine');
    assert.equal((await storedPartition(env, keys.quarantinePartition('relid'))).length, before);
  });
});

describe('time cannot freeze a state', () => {
  test('a provider time far in the future (year 9999) is ignored: a later status still moves the state', async () => {
    // prepare
    const ref = uniqueId('TS-9999');
    const receivedAt = '2026-06-01T10:00:00.000Z';
    const future = await queueMessageFor(env.secrets, 'telesign', teleSignReport(ref, 290, '9999-12-31T23:59:59Z'), { receivedAt });
    const later = await queueMessageFor(env.secrets, 'telesign', teleSignReport(ref, 292, '2026-06-01T10:01:00Z'), { receivedAt: '2026-06-01T10:01:01.000Z' });
    // act
    await processMessage(future, env.deps());
    const afterFuture = await storedState(env, 'telesign', ref);
    await processMessage(later, env.deps());
    // assess
    assert.equal(afterFuture?.statusAt, receivedAt, 'the receive time stands in for the implausible one');
    assert.equal((afterFuture?.detail as Record<string, string>).statusAtIgnored, '9999-12-31T23:59:59.000Z');
    const state = await storedState(env, 'telesign', ref);
    assert.equal(state?.status, '292');
  });

  test(`a provider time within ${FUTURE_TOLERANCE_MS / 60_000} minutes of receipt is believed (clock drift)`, async () => {
    // prepare
    const ref = uniqueId('TS-DRIFT');
    const message = await queueMessageFor(env.secrets, 'telesign', teleSignReport(ref, 203, '2026-06-01T10:04:00Z'), { receivedAt: '2026-06-01T10:00:00.000Z' });
    // act
    await processMessage(message, env.deps());
    // assess
    assert.equal((await storedState(env, 'telesign', ref))?.statusAt, '2026-06-01T10:04:00.000Z');
  });
});
