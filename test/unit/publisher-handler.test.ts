import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { describe, test } from 'node:test';
import type { EventBridgeClient, PutEventsCommand, PutEventsRequestEntry, PutEventsResultEntry } from '@aws-sdk/client-eventbridge';
import type { SendMessageCommand, SendMessageCommandInput, SQSClient } from '@aws-sdk/client-sqs';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { MalformedStreamRecordError, toStreamRecord } from '../../functions/adapters/dynamo-stream.ts';
import { entrySize, eventBridgePublisher, PUT_EVENTS_LIMITS, REQUEST_TOO_LARGE, TOO_LARGE } from '../../functions/adapters/eventbridge.ts';
import { DETAIL_TYPES, EVENT_SOURCE, eventsFromChange, MAX_EVENT_VERSION, type GatewayEvent, type StatusChangedDetail } from '../../functions/core/publish.ts';
import type { Item } from '../../functions/core/store.ts';
import { publisherHandlerOptions } from '../../functions/handlers/dependencies.ts';
import { createPublisherHandler, retryPauseMs } from '../../functions/handlers/publisher.ts';
import { DependencyError } from '../../functions/shared/errors.ts';
import { listSamples } from '../../local/samples.ts';
import { leaks } from '../support/log-leaks.ts';

/**
 * The publisher's AWS side without AWS: the EventBridge adapter against a PutEvents stand-in that
 * answers as the API documents (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html),
 * the stream adapter on Lambda's DynamoDB stream records, and the handler over both.
 */

const T = (minute: number) => `2026-12-01T10:${String(minute).padStart(2, '0')}:00.000Z`;
const BUS = 'CallbackGateway-test';
const EVENTS_DLQ = 'https://sqs.eu-west-1.amazonaws.com/123456789012/CallbackGateway-EventsDeadLetterQueue';
const PHONE = '+995512345678';
const CODE_TEXT = 'Your code is 6867';

/** A PutEvents stand-in: records each call's entries, answers with `answer` (all accepted by default). */
function busStandIn(answer: (entries: readonly PutEventsRequestEntry[], call: number) => PutEventsResultEntry[] | Error = (entries) => entries.map((_, n) => ({ EventId: `id-${n}` }))) {
  const calls: PutEventsRequestEntry[][] = [];
  const client = {
    send: async (command: PutEventsCommand) => {
      const entries = command.input.Entries ?? [];
      calls.push(entries);
      const answered = answer(entries, calls.length);
      if (answered instanceof Error) throw answered;
      return { FailedEntryCount: answered.filter((entry) => entry.ErrorCode).length, Entries: answered };
    },
  } as unknown as EventBridgeClient;
  return { client, calls };
}

function statusEvent(n: number, text = ''): GatewayEvent {
  const detail = { eventId: n.toString(16).padStart(32, '0'), provider: 'temboplus', subjectId: `REF-${n}${text}`, status: 'SUBMITTED', outcome: 'pending', terminal: false, statusAt: T(0), previous: null, version: 1, changedAt: T(1) } satisfies StatusChangedDetail;
  return { source: EVENT_SOURCE, detailType: DETAIL_TYPES.statusChanged, time: T(1), detail };
}

const noSleep = async () => undefined;

describe('eventBridgePublisher', () => {
  test('25 events: calls of 10, 10 and 5, in order, each entry on the bus with its source, detail-type, time and detail', async () => {
    // prepare
    const bus = busStandIn();
    const events = Array.from({ length: 25 }, (_, n) => statusEvent(n));

    // act
    await eventBridgePublisher(bus.client, BUS)(events);

    // assess
    assert.deepEqual(bus.calls.map((call) => call.length), [10, 10, 5]);
    assert.deepEqual(bus.calls.flat().map((entry) => JSON.parse(entry.Detail!).eventId), events.map((event) => event.detail.eventId));
    assert.deepEqual(bus.calls[0][0], { EventBusName: BUS, Source: 'callback-gateway', DetailType: 'Callback Status Changed', Detail: JSON.stringify(events[0].detail), Time: new Date(T(1)) });
  });

  test('large events: no call over 256 KB as EventBridge counts it (Time 14 bytes, the rest UTF-8)', async () => {
    // prepare: 60 KB subject ids, with a multi-byte character
    const bus = busStandIn();
    const events = Array.from({ length: 9 }, (_, n) => statusEvent(n, 'é'.repeat(30_000)));

    // act
    await eventBridgePublisher(bus.client, BUS)(events);

    // assess
    assert.ok(bus.calls.length >= 3, `${bus.calls.length} calls`);
    for (const call of bus.calls) assert.ok(call.reduce((sum, entry) => sum + entrySize(entry), 0) <= PUT_EVENTS_LIMITS.bytes);
    assert.equal(entrySize({ Time: new Date(), Source: 'ab', DetailType: 'c', Detail: 'é' }), 14 + 2 + 1 + 2);
    assert.equal(bus.calls.flat().length, 9);
  });

  test('refused entries are sent again, only they; accepted ones are not repeated', async () => {
    // prepare: the first call refuses the 2nd and 4th entries
    const bus = busStandIn((entries, call) => entries.map((_, n) => (call === 1 && (n === 1 || n === 3) ? { ErrorCode: 'ThrottlingException', ErrorMessage: 'Rate exceeded' } : { EventId: `id-${call}-${n}` })));
    const events = Array.from({ length: 5 }, (_, n) => statusEvent(n));

    // act
    await eventBridgePublisher(bus.client, BUS, { sleep: noSleep })(events);

    // assess
    assert.deepEqual(bus.calls.map((call) => call.map((entry) => JSON.parse(entry.Detail!).subjectId)), [['REF-0', 'REF-1', 'REF-2', 'REF-3', 'REF-4'], ['REF-1', 'REF-3']]);
  });

  test('entries refused on every attempt: a DependencyError naming them by detail-type, eventId and error code, never their detail', async () => {
    // prepare: an instruction among them, refused each time
    const instruction: GatewayEvent = {
      source: EVENT_SOURCE, detailType: DETAIL_TYPES.instruction, time: T(2),
      detail: { eventId: 'f'.repeat(32), provider: 'identomat', subjectId: 'S-1', eventKey: 'one-time-password|k', receivedAt: T(2), kind: 'one-time-password', channel: 'sms', destination: PHONE, text: CODE_TEXT, oneTimeCode: true },
    };
    const bus = busStandIn((entries) => entries.map((entry) => (entry.DetailType === DETAIL_TYPES.instruction ? { ErrorCode: 'InternalFailure', ErrorMessage: `could not take ${entry.Detail}` } : { EventId: 'ok' })));

    // act
    const failure = await eventBridgePublisher(bus.client, BUS, { sleep: noSleep })([statusEvent(1), instruction]).catch((error: unknown) => error);

    // assess
    assert.ok(failure instanceof DependencyError);
    assert.equal(failure.dependency, 'eventbridge');
    assert.equal(failure.message, `1 of 1 events not accepted by the bus after 3 attempts: Callback Instruction ${'f'.repeat(32)} (InternalFailure)`);
    assert.equal(bus.calls.length, 3);
  });

  test('the call itself failing: a DependencyError with the error name and HTTP status, not the service message (it may quote the detail)', async () => {
    // prepare: a refusal about who sends (a 400 too), and one of the whole call for what it holds
    // whose one entry is the publish's only one (nothing tells it from a bus refusing everything)
    const denied = Object.assign(new Error(`not allowed to put ${CODE_TEXT}`), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 400 } });
    const invalid = Object.assign(new Error(`1 validation error: value '${CODE_TEXT}' at 'entries.1.member.detail'`), { name: 'ValidationException', $metadata: { httpStatusCode: 400 } });

    // act
    const failures = [];
    for (const refused of [denied, invalid]) failures.push(await eventBridgePublisher(busStandIn(() => refused).client, BUS)([statusEvent(7)]).catch((error: unknown) => error as Error));

    // assess
    const [deniedFailure, invalidFailure] = failures;
    assert.ok(deniedFailure instanceof DependencyError && invalidFailure instanceof DependencyError);
    assert.equal(deniedFailure.message, `PutEvents failed (AccessDeniedException, HTTP 400) for Callback Status Changed ${'7'.padStart(32, '0')}`);
    assert.equal(deniedFailure.cause, denied);
    assert.equal(
      invalidFailure.message,
      `PutEvents refused the call (ValidationException, HTTP 400) for Callback Status Changed ${'7'.padStart(32, '0')}, sent alone, and took no other entry: not set aside, as the bus may be refusing every entry`,
    );
  });

  describe('a call refused whole (HTTP 400 or 413) for what one of its entries holds', () => {
    /** A PutEvents stand-in that throws `error` for any call holding an entry of a subject `atFault` picks (REF-1), as the SDK throws it; takes the others. */
    const refusingCallsWith = (error: () => Error, atFault: (subjectId: string) => boolean = (subjectId) => subjectId === 'REF-1') =>
      busStandIn((entries) => (entries.some((entry) => atFault(JSON.parse(entry.Detail!).subjectId as string)) ? error() : entries.map((_, n) => ({ EventId: `id-${n}` }))));
    const subjectsOf = (calls: readonly PutEventsRequestEntry[][]) => calls.map((call) => call.map((entry) => JSON.parse(entry.Detail!).subjectId as string));
    const serviceError = (name: string, status: number) => () => Object.assign(new Error(`${name}: value '${CODE_TEXT}'`), { name, $fault: status < 500 ? 'client' : 'server', $metadata: { httpStatusCode: status } });

    for (const [name, status, code] of [['ValidationException', 400, 'ValidationException'], ['SerializationException', 400, 'SerializationException'], ['ValidationError', 400, 'ValidationError'], ['Unknown', 413, REQUEST_TOO_LARGE]] as const) {
      test(`${name} (HTTP ${status}): the entries are sent again one a call; the others are published, the one refused alone comes back refused (${code})`, async () => {
        // prepare
        const bus = refusingCallsWith(serviceError(name, status));
        const events = Array.from({ length: 5 }, (_, n) => statusEvent(n));

        // act
        const refused = await eventBridgePublisher(bus.client, BUS, { sleep: noSleep })(events);

        // assess: one call of five refused, then five of one; REF-1 never sent again after it was refused alone
        assert.deepEqual(refused, [{ event: events[1], errorCode: code }]);
        assert.deepEqual(subjectsOf(bus.calls), [['REF-0', 'REF-1', 'REF-2', 'REF-3', 'REF-4'], ['REF-0'], ['REF-1'], ['REF-2'], ['REF-3'], ['REF-4']]);
      });
    }

    test('two entries at fault in one call: both come back refused, the three others are published; an entry throttled alone is sent again', async () => {
      // prepare: calls holding REF-1 or REF-3 are refused whole; REF-4's first call alone is throttled
      let throttled = false;
      const bus = busStandIn((entries) => {
        const subjects = entries.map((entry) => JSON.parse(entry.Detail!).subjectId as string);
        if (subjects.includes('REF-1') || subjects.includes('REF-3')) return serviceError('ValidationException', 400)();
        if (subjects.length === 1 && subjects[0] === 'REF-4' && !throttled) {
          throttled = true;
          return [{ ErrorCode: 'ThrottlingException' }];
        }
        return entries.map((_, n) => ({ EventId: `id-${n}` }));
      });
      const events = Array.from({ length: 5 }, (_, n) => statusEvent(n));

      // act
      const refused = await eventBridgePublisher(bus.client, BUS, { sleep: noSleep })(events);

      // assess
      assert.deepEqual(refused, [{ event: events[1], errorCode: 'ValidationException' }, { event: events[3], errorCode: 'ValidationException' }]);
      assert.deepEqual(subjectsOf(bus.calls), [['REF-0', 'REF-1', 'REF-2', 'REF-3', 'REF-4'], ['REF-0'], ['REF-1'], ['REF-2'], ['REF-3'], ['REF-4'], ['REF-4']]);
    });

    test('a bus refusing every call with a ValidationException: nothing comes back refused (nothing set aside), the publish fails, after one call per entry at most', async () => {
      // prepare: ten events, refused whole whatever the call holds
      const bus = busStandIn(serviceError('ValidationException', 400));
      const events = Array.from({ length: 10 }, (_, n) => statusEvent(n));

      // act
      const failure = await eventBridgePublisher(bus.client, BUS, { sleep: noSleep })(events).catch((error: unknown) => error as Error);

      // assess
      assert.ok(failure instanceof DependencyError, String(failure));
      assert.match(failure.message, /^PutEvents refused each call \(ValidationException, HTTP 400\) for (Callback Status Changed [0-9a-f]{32}(, )?){10}, sent alone, and took no other entry: not set aside/);
      assert.ok(!failure.message.includes(CODE_TEXT));
      assert.equal(bus.calls.length, 11, 'the call, then each entry alone once');
    });

    test('an entry refused alone is set aside on the evidence of an entry taken in another call of the same publish', async () => {
      // prepare: two calls (large entries), the first taken, the second holding REF-1 alone refused whole
      const bus = refusingCallsWith(serviceError('ValidationException', 400), (subjectId) => subjectId.startsWith('REF-1'));
      const events = [statusEvent(0, 'x'.repeat(200_000)), statusEvent(1, 'y'.repeat(200_000))];

      // act
      const refused = await eventBridgePublisher(bus.client, BUS, { sleep: noSleep })(events);

      // assess
      assert.deepEqual(refused.map((each) => [each.event.detail.eventId, each.errorCode]), [[events[1].detail.eventId, 'ValidationException']]);
      assert.equal(bus.calls.length, 2);
    });

    for (const [name, status] of [['AccessDeniedException', 400], ['ThrottlingException', 400], ['UnrecognizedClientException', 400], ['ExpiredTokenException', 403], ['ResourceNotFoundException', 400], ['InternalException', 500], ['ServiceUnavailableException', 503], ['ValidationException', 500]] as const) {
      test(`${name} (HTTP ${status}) is about who sends, the bus or the service: not split, nothing set aside, the publish fails after one call`, async () => {
        // prepare
        const bus = refusingCallsWith(serviceError(name, status));

        // act
        const failure = await eventBridgePublisher(bus.client, BUS, { sleep: noSleep })(Array.from({ length: 3 }, (_, n) => statusEvent(n))).catch((error: unknown) => error as Error);

        // assess
        assert.ok(failure instanceof DependencyError, String(failure));
        assert.match(failure.message, new RegExp(`^PutEvents failed \\(${name}, HTTP ${status}\\)`));
        assert.equal(bus.calls.length, 1);
      });
    }
  });

  test('an event over 256 KB is never sent: it comes back refused (EntryTooLarge), the others go on the bus', async () => {
    // prepare
    const bus = busStandIn();
    const large = statusEvent(1, 'x'.repeat(PUT_EVENTS_LIMITS.bytes));

    // act
    const refused = await eventBridgePublisher(bus.client, BUS)([statusEvent(0), large, statusEvent(2)]);

    // assess
    assert.deepEqual(refused, [{ event: large, errorCode: TOO_LARGE }]);
    assert.deepEqual(bus.calls.map((call) => call.map((entry) => JSON.parse(entry.Detail!).subjectId)), [['REF-0', 'REF-2']]);
  });

  for (const code of ['InvalidArgument', 'MalformedDetail', 'RedactionFailure']) {
    test(`an entry refused with ${code} (for what it holds) comes back refused, sent once; the others are accepted`, async () => {
      // prepare: the second entry refused for good; the fourth throttled once
      const bus = busStandIn((entries, call) => entries.map((entry, n) => {
        const subject = JSON.parse(entry.Detail!).subjectId as string;
        if (subject === 'REF-1') return { ErrorCode: code, ErrorMessage: `bad value in ${entry.Detail}` };
        return call === 1 && n === 3 ? { ErrorCode: 'ThrottlingException' } : { EventId: `id-${call}-${n}` };
      }));
      const events = Array.from({ length: 5 }, (_, n) => statusEvent(n));

      // act
      const refused = await eventBridgePublisher(bus.client, BUS, { sleep: noSleep })(events);

      // assess: REF-1 sent once, never again; REF-3 sent again as before
      assert.deepEqual(refused, [{ event: events[1], errorCode: code }]);
      assert.deepEqual(bus.calls.map((call) => call.map((entry) => JSON.parse(entry.Detail!).subjectId)), [['REF-0', 'REF-1', 'REF-2', 'REF-3', 'REF-4'], ['REF-3']]);
    });
  }

  for (const code of ['AccessDeniedException', 'NotAuthorizedForSourceException', 'NotAuthorizedForDetailTypeException', 'InvalidAccountIdException', 'ResourceNotFoundException', 'InternalFailure']) {
    test(`an entry refused with ${code} (an operator's to fix, or passing) fails the publish: nothing is passed over`, async () => {
      // prepare
      const bus = busStandIn((entries) => entries.map((_, n) => (n === 0 ? { ErrorCode: code } : { EventId: `id-${n}` })));

      // act
      const failure = await eventBridgePublisher(bus.client, BUS, { sleep: noSleep })([statusEvent(0), statusEvent(1)]).catch((error: unknown) => error);

      // assess
      assert.ok(failure instanceof DependencyError, String(failure));
      assert.match(failure.message, new RegExp(`\\(${code}\\)$`));
      assert.equal(bus.calls.length, 3);
    });
  }
});

// Records as Lambda hands them over (the shape of the AWS docs' example event,
// https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html), with the table's images.
function record(sequenceNumber: string, eventName: 'INSERT' | 'MODIFY' | 'REMOVE', images: { oldImage?: Item; newImage?: Item }, createdAtSeconds = 1_796_119_200): DynamoDBRecord {
  const image = (item: Item | undefined) => (item ? (marshall(item, { removeUndefinedValues: true }) as NonNullable<DynamoDBRecord['dynamodb']>['NewImage']) : undefined);
  const keysOf = images.newImage ?? images.oldImage!;
  return {
    eventID: `event-${sequenceNumber}`,
    eventVersion: '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion: 'eu-west-1',
    eventName,
    eventSourceARN: 'arn:aws:dynamodb:eu-west-1:123456789012:table/CallbackGateway-Table/stream/2026-12-01T00:00:00.000',
    dynamodb: {
      ApproximateCreationDateTime: createdAtSeconds,
      Keys: image({ pk: keysOf.pk, sk: keysOf.sk }),
      ...(images.oldImage ? { OldImage: image(images.oldImage) } : {}),
      ...(images.newImage ? { NewImage: image(images.newImage) } : {}),
      SequenceNumber: sequenceNumber,
      SizeBytes: 100,
      StreamViewType: 'NEW_AND_OLD_IMAGES',
    },
  };
}

function state(fields: Record<string, unknown> = {}): Item {
  return {
    pk: 'temboplus#REF-1', sk: 'STATE', provider: 'temboplus', subjectId: 'REF-1', status: 'SUBMITTED', outcome: 'pending', terminal: false,
    statusAt: T(0), source: 'callback', createdAt: T(0), updatedAt: T(0), changedAt: T(0), eventCount: 1, recent: ['a'], seen: 1, version: 1, ...fields,
  };
}

function otpItem(): Item {
  const { callbackApiKey: _key, ...payload } = JSON.parse(listSamples('identomat').find((sample) => sample.name === 'one-time-password')!.body!.toString('utf8')) as Record<string, unknown>;
  return { pk: 'identomat#S-1', sk: 'EVENT#one-time-password|to:x|y', provider: 'identomat', subjectId: 'S-1', source: 'callback', receivedAt: T(1), payload, expiresAt: 1_796_205_600 };
}

describe('toStreamRecord', () => {
  test('a MODIFY record: its sequence number and both images unmarshalled', () => {
    const before = state();
    const after = state({ status: 'COMPLETED', version: 2 });
    assert.deepEqual(toStreamRecord(record('400', 'MODIFY', { oldImage: before, newImage: after })), { sequenceNumber: '400', change: { eventName: 'MODIFY', oldImage: before, newImage: after } });
    assert.deepEqual(toStreamRecord(record('401', 'REMOVE', { oldImage: before })).change, { eventName: 'REMOVE', oldImage: before });
  });

  test("binary attributes arrive as base64 text in Lambda's event: they reach the core as bytes, so a compressed instruction is still published", () => {
    // prepare: an Identomat code whose item had to be compressed, as Lambda's JSON event spells it
    const body = Buffer.from(JSON.stringify({ type: 'one-time-password', sessionId: 'S-1', text: 'Your code is 6867', phoneNumber: '+995512345678' }));
    const gzip = gzipSync(body);
    const item = { pk: 'identomat#S-1', sk: 'EVENT#one-time-password|x', provider: 'identomat', subjectId: 'S-1', source: 'callback', receivedAt: '2026-01-01T00:00:00.000Z', omitted: { reason: 'too large for one DynamoDB item' } };
    const newImage = { ...marshall(item), rawGzip: { B: gzip.toString('base64') }, parts: { L: [{ B: Buffer.from('x').toString('base64') }] }, set: { BS: [Buffer.from('y').toString('base64')] } };
    const lambdaRecord = { eventName: 'INSERT', dynamodb: { SequenceNumber: '500', NewImage: newImage } } as unknown as DynamoDBRecord;

    // act
    const { change } = toStreamRecord(lambdaRecord);
    const events = eventsFromChange(change);

    // assess
    assert.ok(change.newImage?.rawGzip instanceof Uint8Array && Buffer.from(change.newImage.rawGzip).equals(gzip), 'B as bytes');
    assert.ok(Buffer.from((change.newImage?.parts as Uint8Array[])[0]).equals(Buffer.from('x')), 'B inside a list');
    assert.ok([...(change.newImage?.set as Set<Uint8Array>)].every((each) => Buffer.from(each).equals(Buffer.from('y'))), 'BS');
    assert.deepEqual(events.map((event) => event.detailType), [DETAIL_TYPES.instruction]);
    assert.equal((events[0].detail as { destination: string }).destination, '+995512345678');
  });

  test('a state written by hand with a number JavaScript cannot hold (past 2^53, a fraction) is published, not refused for ever', () => {
    // prepare: as Lambda's JSON event spells it; DynamoDB keeps 38 digits
    const newImage = { ...marshall(state()), eventCount: { N: '99999999999999999999' }, version: { N: '123456789012345678901.5' } };
    const lambdaRecord = { eventName: 'INSERT', dynamodb: { SequenceNumber: '600', NewImage: newImage } } as unknown as DynamoDBRecord;

    // act
    const { change } = toStreamRecord(lambdaRecord);
    const events = eventsFromChange(change);

    // assess: its change is published, the version the nearest number JavaScript holds within what
    // PutEvents takes as an integer (no more than 2^63 - 1; past it the bus refused the event)
    assert.deepEqual(events.map((event) => event.detailType), [DETAIL_TYPES.statusChanged]);
    assert.equal((events[0].detail as StatusChangedDetail).version, MAX_EVENT_VERSION);
    assert.doesNotThrow(() => JSON.stringify(events));
  });

  test('a record without a sequence number or with an unknown event name is malformed', () => {
    const good = record('1', 'INSERT', { newImage: state() });
    assert.throws(() => toStreamRecord({ ...good, dynamodb: { ...good.dynamodb, SequenceNumber: undefined } }), MalformedStreamRecordError);
    assert.throws(() => toStreamRecord({ ...good, eventName: 'UPDATE' as 'MODIFY' }), /eventName "UPDATE"/);
  });
});

describe('the publisher handler', () => {
  /** Log lines, as the handler writes them (JSON, one a line). */
  function handlerWith(answer?: Parameters<typeof busStandIn>[0], nowMs = Date.parse(T(30)), queue: { down?: boolean } = {}) {
    const bus = busStandIn(answer);
    const lines: string[] = [];
    const pauses: number[] = [];
    // The events dead-letter queue: what the publisher records there.
    const queued: SendMessageCommandInput[] = [];
    const sqs = {
      send: async (command: SendMessageCommand) => {
        if (queue.down) throw Object.assign(new Error('queue unavailable'), { name: 'ServiceUnavailable' });
        queued.push(command.input);
        return { MessageId: `m-${queued.length}` };
      },
    } as unknown as SQSClient;
    const options = publisherHandlerOptions({ eventBridge: bus.client, eventBusName: BUS, setAside: { sqs, queueUrl: EVENTS_DLQ }, write: (line) => void lines.push(line), now: () => nowMs });
    const handler = createPublisherHandler({ ...options, sleep: async (ms) => void pauses.push(ms) });
    return { handler, bus, lines, pauses, queued };
  }

  const batch = (): DynamoDBStreamEvent => ({
    Records: [
      record('100', 'INSERT', { newImage: state() }),
      record('101', 'MODIFY', { oldImage: state(), newImage: state({ recheckAt: T(9) }) }), // bookkeeping: nothing
      record('102', 'INSERT', { newImage: otpItem() }),
      record('103', 'MODIFY', { oldImage: state(), newImage: state({ status: 'COMPLETED', outcome: 'succeeded', terminal: true, changedAt: T(5), version: 2 }) }),
      record('104', 'REMOVE', { oldImage: otpItem() }), // TTL expiry: nothing
    ],
  });

  test('a batch: its events on the bus in stream order, no failures, one log line with counts', async () => {
    // prepare
    const { handler, bus, lines, pauses } = handlerWith();

    // act
    const response = await handler(batch());

    // assess
    assert.deepEqual(response, { batchItemFailures: [] });
    assert.deepEqual(bus.calls.flat().map((entry) => entry.DetailType), ['Callback Status Changed', 'Callback Instruction', 'Callback Status Changed']);
    assert.equal(lines.length, 1);
    const { timestamp: _at, ...line } = JSON.parse(lines[0]) as Record<string, unknown>;
    assert.deepEqual(line, { level: 'INFO', service: 'publisher', message: 'stream batch', records: 5, events: 3, statusChanged: 2, instructions: 1, setAside: 0, failed: 0 });
    assert.deepEqual(pauses, []);
  });

  test('the bus down: every record from the first one with an event is given back, after a pause; the log names no phone number or code', async () => {
    // prepare: the record was written 10 minutes before this invocation
    const { handler, lines, pauses } = handlerWith(() => Object.assign(new Error(`service unavailable for ${PHONE}`), { name: 'ServiceUnavailable', $metadata: { httpStatusCode: 503 } }), Date.parse(T(10)));
    const event = batch();
    for (const each of event.Records) each.dynamodb!.ApproximateCreationDateTime = Date.parse(T(0)) / 1000;

    // act
    const response = await handler(event);

    // assess
    assert.deepEqual(response.batchItemFailures.map((failure) => failure.itemIdentifier), ['100', '101', '102', '103', '104']);
    assert.deepEqual(pauses, [retryPauseMs(600_000, 20_000)]);
    assert.equal(pauses[0], 20_000, 'a ten-minute-old record waits the longest pause');
    const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(parsed.map((line) => [line.level, line.message]), [['WARN', 'publish failed; the stream retries from this record'], ['WARN', 'stream batch']]);
    assert.equal(parsed[1].retryFrom, '100');
    assert.equal(parsed[1].oldestUnpublishedAgeMs, 600_000);
    for (const line of lines) {
      assert.ok(!leaks(line, '995512345678') && !leaks(line, '6867') && !leaks(line, 'Your code'), `sensitive content in ${line}`);
    }
  });

  test('the pause never outlasts the invocation: with 8 s left a failed batch is reported after 7 s, not the 20 s its age asks', async () => {
    // prepare: the record was written 10 minutes before (a 20 s pause), and the calls before the
    // failure used up most of the function's timeout
    const { handler, pauses } = handlerWith(() => new Error('down'), Date.parse(T(10)));
    const event = batch();
    for (const each of event.Records) each.dynamodb!.ApproximateCreationDateTime = Date.parse(T(0)) / 1000;

    // act
    const response = await handler(event, { getRemainingTimeInMillis: () => 8_000 });

    // assess: reported as a partial failure (Lambda retries from the failed record, no crash that
    // would split the batch and publish its first records again)
    assert.deepEqual(response.batchItemFailures.map((failure) => failure.itemIdentifier), ['100', '101', '102', '103', '104']);
    assert.deepEqual(pauses, [7_000]);
  });

  test('a failure after the first call: the records already published are not given back', async () => {
    // prepare: 12 changes of 12 subjects (two calls of at most 10 events); the second call fails
    const { handler } = handlerWith((entries, call) => (call === 2 ? new Error('down') : entries.map(() => ({ EventId: 'ok' }))));
    const of = (n: number) => ({ pk: `temboplus#REF-${n}`, subjectId: `REF-${n}` });
    const records = Array.from({ length: 12 }, (_, n) => record(String(200 + n), 'MODIFY', { oldImage: state({ ...of(n), version: n + 1 }), newImage: state({ ...of(n), version: n + 2, changedAt: T(n + 1), status: `S${n}` }) }));

    // act
    const response = await handler({ Records: records });

    // assess
    assert.deepEqual(response.batchItemFailures.map((failure) => failure.itemIdentifier), ['210', '211']);
  });

  test('the bus refuses a subject\'s earlier change and takes its later one: impossible, they are never in one call; the later one waits until the earlier is accepted', async () => {
    // prepare: versions 2 and 3 of REF-1 in one batch; the bus refuses the first entry of the first call once
    const { handler, bus } = handlerWith((entries, call) => entries.map((_, n) => (call === 1 && n === 0 ? { ErrorCode: 'ThrottlingException' } : { EventId: `id-${call}-${n}` })));
    const records = [
      record('300', 'MODIFY', { oldImage: state(), newImage: state({ status: 'PROCESSING', version: 2 }) }),
      record('301', 'MODIFY', { oldImage: state({ status: 'PROCESSING', version: 2 }), newImage: state({ status: 'COMPLETED', outcome: 'succeeded', terminal: true, version: 3 }) }),
    ];

    // act
    const response = await handler({ Records: records });

    // assess: the bus saw version 2 before version 3
    assert.deepEqual(response, { batchItemFailures: [] });
    const versions = bus.calls.map((entries) => entries.map((entry) => (JSON.parse(entry.Detail!) as StatusChangedDetail).version));
    assert.deepEqual(versions, [[2], [2], [3]], 'v2 refused, v2 again, then v3');
  });

  describe('an event the bus refuses for what it holds', () => {
    /** REF-1 version 2, REF-2, the Identomat code, REF-1 version 3: in stream order. */
    const records = () => [
      record('300', 'MODIFY', { oldImage: state(), newImage: state({ status: 'PROCESSING', version: 2 }) }),
      record('301', 'INSERT', { newImage: state({ pk: 'temboplus#REF-2', subjectId: 'REF-2' }) }),
      record('302', 'INSERT', { newImage: otpItem() }),
      record('303', 'MODIFY', { oldImage: state({ status: 'PROCESSING', version: 2 }), newImage: state({ status: 'COMPLETED', outcome: 'succeeded', terminal: true, version: 3, changedAt: T(5) }) }),
    ];
    /** The bus refuses REF-1's version 2 (MalformedDetail) and the instruction (InvalidArgument), each time; takes the rest. */
    const refusing = (entries: readonly PutEventsRequestEntry[]) =>
      entries.map((entry, n) => {
        const detail = JSON.parse(entry.Detail!) as { subjectId: string; version?: number };
        if (entry.DetailType === DETAIL_TYPES.instruction) return { ErrorCode: 'InvalidArgument', ErrorMessage: `bad ${entry.Detail}` };
        if (detail.subjectId === 'REF-1' && detail.version === 2) return { ErrorCode: 'MalformedDetail' };
        return { EventId: `id-${n}` };
      });

    test('is set aside: the batch goes on past it, nothing given back, the subject\'s later change published after it', async () => {
      // prepare
      const { handler, bus, pauses } = handlerWith(refusing);

      // act
      const response = await handler({ Records: records() });

      // assess: nothing held back; every event was sent once, in stream order, REF-1's v3 after its v2
      assert.deepEqual(response, { batchItemFailures: [] });
      const sent = bus.calls.map((call) => call.map((entry) => `${entry.DetailType === DETAIL_TYPES.instruction ? 'code' : JSON.parse(entry.Detail!).subjectId}:${JSON.parse(entry.Detail!).version ?? ''}`));
      assert.deepEqual(sent, [['REF-1:2', 'REF-2:1', 'code:'], ['REF-1:3']]);
      assert.deepEqual(pauses, []);
    });

    test('what names it goes to the events dead-letter queue (never its detail: no phone number or code), one message each', async () => {
      // prepare
      const { handler, queued } = handlerWith(refusing);
      const [refusedChange, , instructionItem] = records();

      // act
      await handler({ Records: records() });

      // assess
      assert.deepEqual(queued.map((message) => message.QueueUrl), [EVENTS_DLQ, EVENTS_DLQ]);
      const bodies = queued.map((message) => JSON.parse(message.MessageBody!) as Record<string, unknown>);
      const [statusEventId] = eventsFromChange(toStreamRecord(refusedChange).change).map((event) => event.detail.eventId);
      const [codeEventId] = eventsFromChange(toStreamRecord(instructionItem).change).map((event) => event.detail.eventId);
      assert.deepEqual(bodies, [
        { setAside: 'refused by the event bus', errorCode: 'MalformedDetail', detailType: 'Callback Status Changed', eventId: statusEventId, provider: 'temboplus', subjectId: 'REF-1', version: 2, time: T(0), sequenceNumber: '300' },
        { setAside: 'refused by the event bus', errorCode: 'InvalidArgument', detailType: 'Callback Instruction', eventId: codeEventId, provider: 'identomat', subjectId: 'S-1', eventKey: 'one-time-password|to:x|y', time: T(1), sequenceNumber: '302' },
      ]);
      for (const message of queued) assert.ok(!leaks(message.MessageBody!, '995512345678') && !leaks(message.MessageBody!, '6867') && !message.MessageBody!.includes('Your code'), message.MessageBody);
    });

    test('an ERROR line names each (eventId, the bus\'s code, the record), none of its detail; the batch line counts them', async () => {
      // prepare
      const { handler, lines } = handlerWith(refusing);

      // act
      await handler({ Records: records() });

      // assess
      const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      const errors = parsed.filter((line) => line.level === 'ERROR');
      assert.deepEqual(errors.map((line) => [line.message, line.errorCode, line.sequenceNumber, typeof line.eventId]), [
        ['event refused by the bus; set aside', 'MalformedDetail', '300', 'string'],
        ['event refused by the bus; set aside', 'InvalidArgument', '302', 'string'],
      ]);
      const batchLine = parsed.find((line) => line.message === 'stream batch')!;
      assert.deepEqual([batchLine.level, batchLine.events, batchLine.statusChanged, batchLine.instructions, batchLine.setAside, batchLine.failed], ['INFO', 2, 2, 0, 2, 0]);
      for (const line of lines) assert.ok(!leaks(line, '995512345678') && !leaks(line, '6867') && !leaks(line, 'Your code'), `sensitive content in ${line}`);
    });

    test('an event too large for the bus (over 256 KB) is set aside as EntryTooLarge; its long subject id is cut in what is recorded', async () => {
      // prepare: a subject id of 300 000 characters
      const subjectId = `REF-${'x'.repeat(300_000)}`;
      const { handler, bus, queued } = handlerWith();
      const large = record('400', 'INSERT', { newImage: state({ pk: `temboplus#${subjectId}`, subjectId }) });

      // act
      const response = await handler({ Records: [large, record('401', 'INSERT', { newImage: state({ pk: 'temboplus#REF-2', subjectId: 'REF-2' }) })] });

      // assess
      assert.deepEqual(response, { batchItemFailures: [] });
      assert.deepEqual(bus.calls.flat().map((entry) => JSON.parse(entry.Detail!).subjectId), ['REF-2']);
      const body = JSON.parse(queued[0].MessageBody!) as { errorCode: string; subjectId: string; sequenceNumber: string };
      assert.deepEqual([queued.length, body.errorCode, body.sequenceNumber, body.subjectId.slice(0, 6)], [1, 'EntryTooLarge', '400', 'REF-xx']);
      assert.ok(body.subjectId.length < 1_000, `${body.subjectId.length} characters`);
    });

    test('the dead-letter queue down: nothing is passed over unrecorded; the records from its call on are given back', async () => {
      // prepare
      const { handler, bus, lines } = handlerWith(refusing, Date.parse(T(30)), { down: true });

      // act
      const response = await handler({ Records: records() });

      // assess: retried from the first record of the call that held the refused event
      assert.deepEqual(response.batchItemFailures.map((failure) => failure.itemIdentifier), ['300', '301', '302', '303']);
      assert.equal(bus.calls.length, 1);
      assert.ok(lines.some((line) => line.includes('publish failed; the stream retries from this record') && line.includes('not set aside (ServiceUnavailable)')));
    });

    test('an eSMS recipient (a phone number) and a subject id a sender chose are masked in what is recorded', async () => {
      // prepare: a TemboPlus reference a sender chose holding a number; an eSMS recipient's state
      const { handler, queued } = handlerWith((entries) => entries.map(() => ({ ErrorCode: 'InvalidArgument' })));
      const tembo = state({ pk: 'temboplus#REF-995512345678', subjectId: 'REF-995512345678' });
      const recipient = state({ pk: 'esms#SMS-1', sk: 'STATE#84901234567', provider: 'esms', subjectId: 'SMS-1', part: '84901234567', status: '1' });

      // act
      await handler({ Records: [record('500', 'INSERT', { newImage: tembo }), record('501', 'INSERT', { newImage: recipient })] });

      // assess
      const bodies = queued.map((message) => JSON.parse(message.MessageBody!) as { subjectId: string; part?: string });
      assert.deepEqual(bodies.map((body) => [body.subjectId, body.part]), [['REF-*********678', undefined], ['SMS-1', '********567']]);
    });

    for (const code of ['AccessDeniedException', 'NotAuthorizedForSourceException', 'NotAuthorizedForDetailTypeException', 'InvalidAccountIdException']) {
      test(`refused with ${code}: not set aside; given back and retried (an operator fixes the permission, nothing is lost)`, async () => {
        // prepare
        const { handler, queued } = handlerWith((entries) => entries.map(() => ({ ErrorCode: code })));

        // act
        const response = await handler({ Records: records() });

        // assess
        assert.deepEqual(response.batchItemFailures.map((failure) => failure.itemIdentifier), ['300', '301', '302', '303']);
        assert.deepEqual(queued, []);
      });
    }
  });

  describe('a PutEvents call the bus refuses whole (HTTP 400) for what one of its events holds', () => {
    /** REF-1 version 2, REF-2, the Identomat code, REF-1 version 3: in stream order. */
    const records = () => [
      record('300', 'MODIFY', { oldImage: state(), newImage: state({ status: 'PROCESSING', version: 2 }) }),
      record('301', 'INSERT', { newImage: state({ pk: 'temboplus#REF-2', subjectId: 'REF-2' }) }),
      record('302', 'INSERT', { newImage: otpItem() }),
      record('303', 'MODIFY', { oldImage: state({ status: 'PROCESSING', version: 2 }), newImage: state({ status: 'COMPLETED', outcome: 'succeeded', terminal: true, version: 3, changedAt: T(5) }) }),
    ];
    const named = (entry: PutEventsRequestEntry) => (entry.DetailType === DETAIL_TYPES.instruction ? 'code' : `${JSON.parse(entry.Detail!).subjectId}:${JSON.parse(entry.Detail!).version}`);
    /**
     * The bus as the SDK reports it: a call holding an entry `atFault` picks (REF-1's version 2) is
     * refused whole with a ValidationException (HTTP 400), its message quoting the entry; the others
     * are taken, and recorded in `accepted`, in the order the bus took them.
     */
    function refusingCallsWith(atFault: (entry: PutEventsRequestEntry) => boolean = (entry) => named(entry) === 'REF-1:2') {
      const accepted: string[] = [];
      const answer = (entries: readonly PutEventsRequestEntry[]) => {
        const bad = entries.find(atFault);
        if (bad) return Object.assign(new Error(`1 validation error detected: Value '${bad.Detail}' at 'entries.1.member.detail' failed to satisfy constraint`), { name: 'ValidationException', $fault: 'client', $metadata: { httpStatusCode: 400 } });
        accepted.push(...entries.map(named));
        return entries.map((_, n) => ({ EventId: `id-${n}` }));
      };
      return { answer, accepted };
    }

    test('the others are published in order, the subject\'s later change after it; only it is set aside (the DLQ message and ERROR line as for a refused entry); nothing given back', async () => {
      // prepare
      const bus = refusingCallsWith();
      const { handler, queued, lines, pauses } = handlerWith(bus.answer);
      const [refusedChange] = records();

      // act
      const response = await handler({ Records: records() });

      // assess: published, in order; REF-1's version 3 after its version 2 was set aside
      assert.deepEqual(response, { batchItemFailures: [] });
      assert.deepEqual(bus.accepted, ['REF-2:1', 'code', 'REF-1:3']);
      assert.deepEqual(pauses, []);
      // what names it, in the events DLQ: the same message as for an entry refused with an ErrorCode
      const [eventId] = eventsFromChange(toStreamRecord(refusedChange).change).map((event) => event.detail.eventId);
      assert.deepEqual(queued.map((message) => [message.QueueUrl, JSON.parse(message.MessageBody!)]), [
        [EVENTS_DLQ, { setAside: 'refused by the event bus', errorCode: 'ValidationException', detailType: 'Callback Status Changed', eventId, provider: 'temboplus', subjectId: 'REF-1', version: 2, time: T(0), sequenceNumber: '300' }],
      ]);
      const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      assert.deepEqual(
        parsed.filter((line) => line.level === 'ERROR').map((line) => [line.message, line.eventId, line.errorCode, line.sequenceNumber, line.provider]),
        [['event refused by the bus; set aside', eventId, 'ValidationException', '300', 'temboplus']],
      );
      const batchLine = parsed.find((line) => line.message === 'stream batch')!;
      assert.deepEqual([batchLine.level, batchLine.events, batchLine.statusChanged, batchLine.instructions, batchLine.setAside, batchLine.failed], ['INFO', 3, 2, 1, 1, 0]);
      for (const text of [...lines, ...queued.map((message) => message.MessageBody!)]) assert.ok(!leaks(text, '995512345678') && !leaks(text, '6867') && !text.includes('Your code'), text);
    });

    test('a bus refusing every call so: nothing set aside, every record from the first with an event given back, after a call per event at most', async () => {
      // prepare
      const bus = refusingCallsWith(() => true);
      const { handler, queued, lines } = handlerWith(bus.answer);

      // act
      const response = await handler({ Records: records() });

      // assess: as for a bus that is down
      assert.deepEqual(response.batchItemFailures.map((failure) => failure.itemIdentifier), ['300', '301', '302', '303']);
      assert.deepEqual([bus.accepted, queued], [[], []]);
      const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      assert.deepEqual(parsed.map((line) => [line.level, line.message]), [['WARN', 'publish failed; the stream retries from this record'], ['WARN', 'stream batch']]);
      assert.match(String(parsed[0].error), /^PutEvents refused each call \(ValidationException, HTTP 400\) for .*sent alone, and took no other entry: not set aside/);
      for (const line of lines) assert.ok(!leaks(line, '995512345678') && !leaks(line, '6867') && !line.includes('Your code'), line);
    });

    test('the event alone in its batch is retried, not set aside (nothing tells it from a bus refusing all); once the retry holds another subject\'s change the bus takes, it is set aside', async () => {
      // prepare
      const bus = refusingCallsWith();
      const { handler, queued } = handlerWith(bus.answer);
      const [bad, other] = records();

      // act: the batch with it alone, then Lambda's retry, which the next change of the shard joined
      const alone = await handler({ Records: [bad] });
      const retried = await handler({ Records: [bad, other] });

      // assess
      assert.deepEqual(alone.batchItemFailures.map((failure) => failure.itemIdentifier), ['300']);
      assert.deepEqual(retried, { batchItemFailures: [] });
      assert.deepEqual(bus.accepted, ['REF-2:1']);
      assert.deepEqual(queued.map((message) => [JSON.parse(message.MessageBody!).errorCode, JSON.parse(message.MessageBody!).sequenceNumber]), [['ValidationException', '300']]);
    });

    test('the subject\'s next change right after it (never in one call with it): the call is tried once more with a later change of another subject; the bus taking that one, it is set aside, and its subject\'s next change published after', async () => {
      // prepare: REF-1 version 2 (refused), REF-1 version 3, REF-2
      const bus = refusingCallsWith();
      const { handler, queued } = handlerWith(bus.answer);
      const [bad, , , later] = records();
      const other = record('304', 'INSERT', { newImage: state({ pk: 'temboplus#REF-2', subjectId: 'REF-2' }) });

      // act
      const response = await handler({ Records: [bad, later, other] });

      // assess: REF-2 went ahead of REF-1's version 3 (another subject: no order between them), and once only
      assert.deepEqual(response, { batchItemFailures: [] });
      assert.deepEqual(bus.accepted, ['REF-2:1', 'REF-1:3']);
      assert.deepEqual(queued.map((message) => [JSON.parse(message.MessageBody!).errorCode, JSON.parse(message.MessageBody!).sequenceNumber]), [['ValidationException', '300']]);
    });

    test('tried once more with later changes, a bus refusing every call still sets nothing aside: every record given back', async () => {
      // prepare
      const bus = refusingCallsWith(() => true);
      const { handler, queued } = handlerWith(bus.answer);
      const [bad, , , later] = records();
      const other = record('304', 'INSERT', { newImage: state({ pk: 'temboplus#REF-2', subjectId: 'REF-2' }) });

      // act
      const response = await handler({ Records: [bad, later, other] });

      // assess: REF-1's v2 alone, then with REF-2, then each of those two alone
      assert.deepEqual(response.batchItemFailures.map((failure) => failure.itemIdentifier), ['300', '303', '304']);
      assert.deepEqual([bus.accepted, queued], [[], []]);
    });

    test('ten changes in a row the bus refuses alone, of ten subjects (a full call): tried once more with the next call\'s worth of changes; the bus taking one, the ten are set aside and the rest published', async () => {
      // prepare: REF-1 … REF-10 at version 2, each refused, then REF-11 and REF-1's version 3
      const bus = refusingCallsWith((entry) => JSON.parse(entry.Detail!).version === 2);
      const { handler, queued, bus: standIn } = handlerWith(bus.answer);
      const refused = Array.from({ length: 10 }, (_, n) => record(String(500 + n), 'INSERT', { newImage: state({ pk: `temboplus#REF-${n + 1}`, subjectId: `REF-${n + 1}`, version: 2 }) }));
      const good = record('510', 'INSERT', { newImage: state({ pk: 'temboplus#REF-11', subjectId: 'REF-11' }) });
      const later = record('511', 'MODIFY', { oldImage: state({ version: 2 }), newImage: state({ status: 'COMPLETED', outcome: 'succeeded', terminal: true, version: 3, changedAt: T(5) }) });

      // act
      const response = await handler({ Records: [...refused, good, later] });

      // assess
      assert.deepEqual(response, { batchItemFailures: [] }, 'was: every record given back, the shard held until the records were 12 hours old');
      assert.deepEqual(bus.accepted, ['REF-11:1', 'REF-1:3'], 'REF-11 once: published ahead of its record, not sent again with it');
      assert.deepEqual(standIn.calls.at(-1)!.map(named), ['REF-1:3']);
      assert.deepEqual(queued.map((message) => JSON.parse(message.MessageBody!).sequenceNumber), refused.map((each) => each.dynamodb!.SequenceNumber));
    });

    test('refused whole for who sends (AccessDeniedException, HTTP 400): not split, nothing set aside, given back', async () => {
      // prepare
      const { handler, bus, queued } = handlerWith(() => Object.assign(new Error('not authorized'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 400 } }));

      // act
      const response = await handler({ Records: records() });

      // assess
      assert.deepEqual(response.batchItemFailures.map((failure) => failure.itemIdentifier), ['300', '301', '302', '303']);
      assert.deepEqual([bus.calls.length, queued.length], [1, 0]);
    });
  });

  test('retryPauseMs: a second at least, a twentieth of the age, at most the maximum', () => {
    assert.deepEqual([0, 10_000, 60_000, 200_000, 3_600_000].map((age) => retryPauseMs(age, 20_000)), [1_000, 1_000, 3_000, 10_000, 20_000]);
  });
});
