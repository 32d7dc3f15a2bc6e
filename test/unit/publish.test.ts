import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, test } from 'node:test';
import { Readable } from 'node:stream';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { DETAIL_TYPES, EVENT_SOURCE, eventsFromChange, type GatewayEvent, type InstructionDetail, type StatusChangedDetail } from '../../functions/core/publish.ts';
import { publishRecords, type SetAsideEvent, UnprovenRefusalError } from '../../functions/core/publisher.ts';
import { MAX_BODY_BYTES } from '../../functions/core/pipeline-definition.ts';
import { entrySize, PUT_EVENTS_LIMITS, putEventsEntry } from '../../functions/adapters/eventbridge.ts';
import { stateItem, stateOf, type Item } from '../../functions/core/store.ts';
import { applyObservations } from '../../functions/core/state.ts';
import { listSamples } from '../../local/samples.ts';

/** What the table's stream becomes on the bus: one event per change that says something, none for bookkeeping. */

const T = (minute: number) => `2026-12-01T10:${String(minute).padStart(2, '0')}:00.000Z`;

function state(fields: Record<string, unknown> = {}): Item {
  return {
    pk: 'temboplus#REF-1', sk: 'STATE', provider: 'temboplus', subjectId: 'REF-1',
    status: 'SUBMITTED', outcome: 'pending', terminal: false, statusAt: T(0), source: 'status-endpoint',
    createdAt: T(0), updatedAt: T(0), changedAt: T(0), eventCount: 1, recent: ['a'], seen: 1, version: 1,
    ...fields,
  };
}

const statusDetail = (events: ReturnType<typeof eventsFromChange>) => events.map((event) => event.detail as StatusChangedDetail);

describe('Callback Status Changed', () => {
  test('a first status: one event, previous null, the source and detail-type documented', () => {
    // act
    const events = eventsFromChange({ eventName: 'INSERT', newImage: state({ confirmation: 'confirmed', confirmedStatus: 'SUBMITTED' }) });
    // assess
    assert.equal(events.length, 1);
    assert.equal(events[0].source, EVENT_SOURCE);
    assert.equal(events[0].detailType, DETAIL_TYPES.statusChanged);
    const [detail] = statusDetail(events);
    assert.deepEqual(
      { ...detail, eventId: typeof detail.eventId },
      {
        eventId: 'string', provider: 'temboplus', subjectId: 'REF-1', status: 'SUBMITTED', outcome: 'pending', terminal: false, statusAt: T(0),
        previous: null, source: 'status-endpoint', confirmation: 'confirmed', confirmedStatus: 'SUBMITTED', version: 1, changedAt: T(0),
      },
    );
  });

  test("two subjects whose keys join alike with a NUL never share an eventId; a NUL-free subject's id is its key, version, creation time and change time", () => {
    // prepare: eSMS's SMSID "X\0STATE#P" (the whole message) and SMSID "X" with recipient "P\0STATE"
    const whole = state({ pk: 'esms#X\u0000STATE#P', sk: 'STATE', provider: 'esms', subjectId: 'X\u0000STATE#P' });
    const recipient = state({ pk: 'esms#X', sk: 'STATE#P\u0000STATE', provider: 'esms', subjectId: 'X', part: 'P\u0000STATE' });
    // act
    const [a] = statusDetail(eventsFromChange({ eventName: 'INSERT', newImage: whole }));
    const [b] = statusDetail(eventsFromChange({ eventName: 'INSERT', newImage: recipient }));
    const [plain] = statusDetail(eventsFromChange({ eventName: 'INSERT', newImage: state() }));
    // assess
    assert.notEqual(a.eventId, b.eventId);
    assert.equal(plain.eventId, createHash('sha256').update(['status', 'temboplus#REF-1', 'STATE', '1', T(0), T(0)].join('\u0000')).digest('hex').slice(0, 32));
  });

  test('the same key and version in a new life of the state (a table created anew, a state written again) is another eventId', () => {
    // prepare: version 1 of REF-1 said SUBMITTED; the table was created anew, and version 1 now says FAILED
    const first = state();
    const again = state({ status: 'FAILED', outcome: 'failed', terminal: true, createdAt: T(30), updatedAt: T(30), changedAt: T(30) });
    // act
    const [a] = statusDetail(eventsFromChange({ eventName: 'INSERT', newImage: first }));
    const [b] = statusDetail(eventsFromChange({ eventName: 'INSERT', newImage: again }));
    const [replayed] = statusDetail(eventsFromChange({ eventName: 'INSERT', newImage: again }));
    // assess
    assert.deepEqual([a.version, b.version], [1, 1]);
    assert.notEqual(a.eventId, b.eventId, 'a consumer deduping on eventId would drop the FAILED change');
    assert.equal(replayed.eventId, b.eventId, 'a replay of the new change keeps its id');
  });

  test('the same version of one life written again with a new change (a table restored to an earlier point) is another eventId', () => {
    // prepare: version 2 said COMPLETED; the table was restored to version 1, and version 2 now says FAILED
    const before = state();
    const published = state({ status: 'COMPLETED', outcome: 'succeeded', terminal: true, changedAt: T(5), updatedAt: T(5), version: 2 });
    const afterRestore = state({ status: 'FAILED', outcome: 'failed', terminal: true, changedAt: T(40), updatedAt: T(40), version: 2 });
    // act
    const [a] = statusDetail(eventsFromChange({ eventName: 'MODIFY', oldImage: before, newImage: published }));
    const [b] = statusDetail(eventsFromChange({ eventName: 'MODIFY', oldImage: before, newImage: afterRestore }));
    const [replayed] = statusDetail(eventsFromChange({ eventName: 'MODIFY', oldImage: before, newImage: afterRestore }));
    // assess
    assert.deepEqual([a.version, b.version, a.changedAt, b.changedAt], [2, 2, T(5), T(40)]);
    assert.notEqual(a.eventId, b.eventId, 'was: one id, the FAILED change dropped by a consumer deduping on it');
    assert.equal(replayed.eventId, b.eventId, 'a replay of the new change keeps its id');
  });

  test("a change of the status's detail alone is published with the detail, so a reader sees what moved", () => {
    // prepare: eSMS's 5 with 1 of 3 receivers reached, then 2 of 3 (same status and outcome)
    const esms = (sent: string, minute: number, version: number) =>
      state({
        pk: 'esms#M-1', provider: 'esms', subjectId: 'M-1', status: '5', outcome: 'unknown', terminal: true, source: 'callback',
        detail: { SendSuccess: sent, SendFailed: '0', TotalReceiver: '3', inference: 'counting' }, statusAt: T(minute), changedAt: T(minute), updatedAt: T(minute), version,
      });
    const one = esms('1', 1, 1);
    const two = esms('2', 2, 2);
    // act
    const [first] = statusDetail(eventsFromChange({ eventName: 'INSERT', newImage: one }));
    const moved = statusDetail(eventsFromChange({ eventName: 'MODIFY', oldImage: one, newImage: two }));
    const reordered = statusDetail(eventsFromChange({ eventName: 'MODIFY', oldImage: two, newImage: { ...two, detail: { TotalReceiver: '3', inference: 'counting', SendFailed: '0', SendSuccess: '2' }, updatedAt: T(3) } }));
    // assess
    assert.deepEqual(first.statusDetail, { SendSuccess: '1', SendFailed: '0', TotalReceiver: '3', inference: 'counting' });
    assert.equal(moved.length, 1);
    assert.deepEqual([moved[0].previous, moved[0].status, moved[0].statusDetail?.SendSuccess], [{ status: '5', outcome: 'unknown' }, '5', '2'], 'was: an event whose every member a reader sees was as before');
    assert.deepEqual(reordered, [], 'the same detail with its members in another order says nothing new');
    assert.equal(statusDetail(eventsFromChange({ eventName: 'INSERT', newImage: state() }))[0].statusDetail, undefined, 'absent when the state keeps no detail');
  });

  test("an expectation the application wrote with the documented fields only: each life of the key has its own ids, and every delivery of a change the same one", () => {
    // prepare: the README's item (no createdAt, no version), written in one table and, after it was
    // created anew, in the next; the gateway then applies the first status to each
    const written = (expectedAt: string): Item => ({ pk: 'temboplus#REF-1', sk: 'STATE', provider: 'temboplus', subjectId: 'REF-1', expectedAt, recheckShard: 'temboplus#0', recheckAt: expectedAt });
    const firstChange = (expectedAt: string, now: string) => {
      const before = written(expectedAt);
      const placed = { status: 'SUBMITTED', outcome: 'pending' as const, terminal: false, statusAt: now, rank: 0 };
      const next = applyObservations(stateOf(before), { provider: 'temboplus', subjectId: 'REF-1' }, [{ hash: 'h', counts: false, source: 'status-endpoint', placed }], undefined, now)!;
      return { before, after: stateItem(next) };
    };
    const oldLife = firstChange(T(0), T(1));
    const newLife = firstChange(T(30), T(31));
    // act
    const [a] = statusDetail(eventsFromChange({ eventName: 'MODIFY', oldImage: oldLife.before, newImage: oldLife.after }));
    const [b] = statusDetail(eventsFromChange({ eventName: 'MODIFY', oldImage: newLife.before, newImage: newLife.after }));
    const [replayed] = statusDetail(eventsFromChange({ eventName: 'MODIFY', oldImage: newLife.before, newImage: newLife.after }));
    // assess
    assert.deepEqual([a.version, b.version], [1, 1]);
    assert.notEqual(a.eventId, b.eventId, 'was: one id, the new life\'s first change dropped by a consumer deduping on it');
    assert.equal(replayed.eventId, b.eventId);
    assert.equal(stateOf(newLife.after).createdAt, newLife.after.createdAt, 'kept as written on every later read');
  });

  test('a change: previous is what the state said before; the event id is stable per change and differs between changes', () => {
    // prepare
    const before = state();
    const after = state({ status: 'COMPLETED', outcome: 'succeeded', terminal: true, changedAt: T(5), updatedAt: T(5), version: 2 });
    // act
    const first = eventsFromChange({ eventName: 'MODIFY', oldImage: before, newImage: after });
    const redelivered = eventsFromChange({ eventName: 'MODIFY', oldImage: before, newImage: after });
    const earlier = eventsFromChange({ eventName: 'INSERT', newImage: before });
    // assess
    const [detail] = statusDetail(first);
    assert.deepEqual(detail.previous, { status: 'SUBMITTED', outcome: 'pending' });
    assert.equal(detail.status, 'COMPLETED');
    assert.equal(detail.version, 2);
    assert.equal(statusDetail(redelivered)[0].eventId, detail.eventId, 'a redelivered stream record publishes the same eventId');
    assert.notEqual(statusDetail(earlier)[0].eventId, detail.eventId);
    assert.match(detail.eventId, /^[0-9a-f]{32}$/);
  });

  test('bookkeeping publishes nothing: a redelivery remembered, a re-check scheduled or leased', () => {
    const before = state({ recheckAt: T(1), recheckShard: 'temboplus#2' });
    for (const after of [
      state({ recent: ['a', 'b'], seen: 2, version: 2, updatedAt: T(2) }),
      state({ recheckAt: T(6), rechecks: 1, version: 2, updatedAt: T(2) }),
      { ...before, recheckAt: T(9) },
    ]) {
      assert.deepEqual(eventsFromChange({ eventName: 'MODIFY', oldImage: before, newImage: after }), []);
    }
    // the same detail, its map read back in another order
    assert.deepEqual(eventsFromChange({ eventName: 'MODIFY', oldImage: state({ detail: { a: 1, b: 'x' } }), newImage: state({ detail: { b: 'x', a: 1 }, version: 2 }) }), []);
    // ... at any depth, and by a writer that took it for a change and moved changedAt
    const nested = (inner: Record<string, unknown>) => ({ source: 'it', counters: inner });
    assert.deepEqual(
      eventsFromChange({ eventName: 'MODIFY', oldImage: state({ detail: nested({ a: 1, b: 2 }) }), newImage: state({ detail: { counters: { b: 2, a: 1 }, source: 'it' }, changedAt: T(7), version: 2 }) }),
      [],
    );
  });

  test('a confirmation that changes publishes, even with the status unchanged; so does going stale', () => {
    const before = state({ confirmation: 'not_found' });
    const confirmed = state({ confirmation: 'confirmed', confirmedStatus: 'SUBMITTED', changedAt: T(3), version: 2 });
    const stale = state({ stale: true, staleAt: T(9), version: 3 });
    assert.equal(statusDetail(eventsFromChange({ eventName: 'MODIFY', oldImage: before, newImage: confirmed }))[0].confirmation, 'confirmed');
    const [staleDetail] = statusDetail(eventsFromChange({ eventName: 'MODIFY', oldImage: state(), newImage: stale }));
    assert.equal(staleDetail.stale, true);
    // as the re-check that gave up writes it (functions/core/reconcile.ts): dated when it went stale
    const [event] = eventsFromChange({ eventName: 'MODIFY', oldImage: state(), newImage: state({ stale: true, staleAt: T(9), changedAt: T(9), version: 3 }) });
    assert.deepEqual([(event.detail as StatusChangedDetail).changedAt, event.time], [T(9), T(9)]);
  });

  test('a change written in the same millisecond as the one before it (two workers, two clocks) still publishes', () => {
    // prepare: changedAt is the writer's clock, to the millisecond; a second writer's can read the same
    const before = state({ changedAt: T(3), version: 1 });
    const changes = [
      state({ status: 'COMPLETED', outcome: 'succeeded', terminal: true, changedAt: T(3), version: 2 }),
      state({ confirmation: 'mismatch', confirmedStatus: 'FAILED', differences: ['status'], changedAt: T(3), version: 2 }),
    ];
    for (const after of changes) {
      // act
      const events = statusDetail(eventsFromChange({ eventName: 'MODIFY', oldImage: before, newImage: after }));
      // assess
      assert.equal(events.length, 1, JSON.stringify(after));
      assert.deepEqual(events[0].previous, { status: 'SUBMITTED', outcome: 'pending' });
      assert.equal(events[0].version, 2);
    }
  });

  test('an expectation with nothing known publishes nothing; its first status has previous null', () => {
    const expected = state({ status: undefined, source: undefined, statusAt: undefined, eventCount: 0, expectedAt: T(0) });
    assert.deepEqual(eventsFromChange({ eventName: 'INSERT', newImage: expected }), []);
    const [detail] = statusDetail(eventsFromChange({ eventName: 'MODIFY', oldImage: expected, newImage: state({ changedAt: T(4), version: 2 }) }));
    assert.equal(detail.previous, null);
  });

  test('no longer stale is published, so the bus does not keep saying stale once re-checks resume', () => {
    // prepare: a stale subject a new claim puts back on the schedule, nothing else said changing
    const stale = state({ stale: true, staleAt: T(9), changedAt: T(9), version: 3 });
    const resumed = state({ unansweredClaimAt: T(12), rechecks: 0, changedAt: T(12), version: 4 });
    // act
    const events = statusDetail(eventsFromChange({ eventName: 'MODIFY', oldImage: stale, newImage: resumed }));
    // assess
    assert.equal(events.length, 1);
    assert.equal(events[0].stale, undefined);
    assert.deepEqual([events[0].changedAt, events[0].version], [T(12), 4]);
  });

  test('previous is null only for the first event: a state published with no status yet (a not_found) is the previous one', () => {
    // prepare: an expected subject the provider did not know, then its first status
    const notFound = state({ status: undefined, source: undefined, statusAt: undefined, confirmation: 'not_found', changedAt: T(2), version: 2 });
    const first = statusDetail(eventsFromChange({ eventName: 'MODIFY', oldImage: state({ status: undefined, source: undefined, statusAt: undefined, expectedAt: T(0) }), newImage: notFound }));
    // act
    const [next] = statusDetail(eventsFromChange({ eventName: 'MODIFY', oldImage: notFound, newImage: state({ confirmation: 'confirmed', confirmedStatus: 'SUBMITTED', changedAt: T(5), version: 3 }) }));
    // assess
    assert.deepEqual([first.length, first[0].previous], [1, null]);
    assert.deepEqual(next.previous, { status: null, outcome: 'pending' });
  });

  test('a part (an eSMS recipient) is named; removals (TTL) publish nothing; event items other than instructions publish nothing', () => {
    const part = state({ pk: 'esms#S1', sk: 'STATE#84901234567', provider: 'esms', subjectId: 'S1', part: '84901234567' });
    assert.equal(statusDetail(eventsFromChange({ eventName: 'INSERT', newImage: part }))[0].part, '84901234567');
    assert.deepEqual(eventsFromChange({ eventName: 'REMOVE', oldImage: part }), []);
    assert.deepEqual(eventsFromChange({ eventName: 'INSERT', newImage: { pk: 'temboplus#REF-1', sk: 'EVENT#X', provider: 'temboplus', subjectId: 'REF-1', payload: {} } }), []);
  });

  test('a version (or a number of the detail) past what PutEvents takes as an integer is published within it, so the bus does not refuse every change of the subject', () => {
    // prepare: an expectation a program wrote with `version` past 2^63 (DynamoDB keeps 38 digits; the
    // stream reads the nearest double), moved on by a callback; a detail an application wrote with a count past it
    const version = Number('18446744073709551616');
    const before = state({ version, status: 'SUBMITTED' });
    const after = state({ version: version + 1, status: 'COMPLETED', outcome: 'succeeded', terminal: true, changedAt: T(1), detail: { count: 1e20 } });
    // act
    const [event] = eventsFromChange({ eventName: 'MODIFY', oldImage: before, newImage: after });
    // assess: PutEvents refuses a JSON integer outside -2^63 … 2^63 − 1 (API_PutEvents)
    const integers = [...(putEventsEntry(event, 'bus').Detail ?? '').matchAll(/(?<=[:,[]\s*)-?\d+(?=\s*[,}\]])/g)].map((match) => BigInt(match[0]));
    assert.ok(integers.length > 0);
    for (const integer of integers) assert.ok(integer <= 2n ** 63n - 1n && integer >= -(2n ** 63n), `${integer} is outside what PutEvents takes`);
    const detail = event.detail as StatusChangedDetail;
    assert.equal(detail.status, 'COMPLETED');
    assert.ok(detail.version > 2 ** 62, 'still a version past every one a subject counts to by itself');
    assert.equal(detail.statusDetail?.count, '100000000000000000000', 'kept as its text');
  });

  test('a change whose changedAt is no date is sent as JSON the bus can read, stamped by the bus', async () => {
    // prepare: an expectation a program wrote with `changedAt` as other text, moved on by a callback
    // that wrote no time of its own; and an ordinary change beside it
    const odd = eventsFromChange({ eventName: 'MODIFY', oldImage: state({ status: 'SUBMITTED' }), newImage: state({ version: 2, status: 'COMPLETED', outcome: 'succeeded', terminal: true, changedAt: 'soon' }) });
    const plain = eventsFromChange({ eventName: 'MODIFY', oldImage: state({ subjectId: 'REF-2', pk: 'temboplus#REF-2', status: 'SUBMITTED' }), newImage: state({ subjectId: 'REF-2', pk: 'temboplus#REF-2', version: 2, status: 'COMPLETED', outcome: 'succeeded', terminal: true, changedAt: T(3) }) });
    const bodies: string[] = [];
    const client = new EventBridgeClient({
      region: 'eu-west-1',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'example' },
      requestHandler: {
        handle: async (request: { body?: unknown }) => {
          bodies.push(String(request.body));
          const answer = JSON.stringify({ FailedEntryCount: 0, Entries: [{ EventId: '1' }, { EventId: '2' }] });
          return { response: { statusCode: 200, headers: { 'content-type': 'application/x-amz-json-1.1' }, body: Readable.from([Buffer.from(answer)]) } };
        },
      },
    });
    // act: the request the SDK writes for the two entries
    await client.send(new PutEventsCommand({ Entries: [...odd, ...plain].map((event) => putEventsEntry(event, 'bus')) }));
    // assess: valid JSON (the SDK wrote `"Time":NaN` for an invalid date, which the bus refused whole);
    // the odd event has no Time, the other keeps its change's
    const sent = JSON.parse(bodies[0]) as { Entries: { Time?: number }[] };
    assert.equal(sent.Entries.length, 2);
    assert.equal(sent.Entries[0].Time, undefined);
    assert.equal(sent.Entries[1].Time, Date.parse(T(3)) / 1000);
  });
});

describe('Callback Instruction', () => {
  const samplePayload = (name: string) => {
    const { callbackApiKey: _key, ...payload } = JSON.parse(listSamples('identomat').find((sample) => sample.name === name)!.body!.toString('utf8')) as Record<string, unknown>;
    return payload;
  };
  const eventItem = (payload: unknown, fields: Record<string, unknown> = {}): Item => ({
    pk: 'identomat#S-1', sk: 'EVENT#one-time-password|to:x|y', provider: 'identomat', subjectId: 'S-1', source: 'callback', receivedAt: T(1), payload, ...fields,
  });

  test('an Identomat code: one instruction event with what a sender needs', () => {
    // act
    const events = eventsFromChange({ eventName: 'INSERT', newImage: eventItem({ ...samplePayload('one-time-password'), type: 'one-time-password' }) });
    // assess
    assert.equal(events.length, 1);
    assert.equal(events[0].detailType, DETAIL_TYPES.instruction);
    const detail = events[0].detail as InstructionDetail;
    assert.deepEqual({ ...detail, eventId: typeof detail.eventId }, {
      eventId: 'string', provider: 'identomat', subjectId: 'S-1', eventKey: 'one-time-password|to:x|y', kind: 'one-time-password', channel: 'sms',
      destination: '+995512345678', text: 'Your code is 6867', oneTimeCode: true, receivedAt: T(1),
    });
  });

  test('the same body stored again at its key once the first item expired (kept a day) is another instruction: another eventId; every delivery of one, the same', () => {
    // prepare: a session link shared, its item gone by TTL, the same link shared again the next day
    const payload = samplePayload('share-session-link-via-sms');
    const first = eventItem(payload, { sk: 'EVENT#share', receivedAt: T(1) });
    const again = eventItem(payload, { sk: 'EVENT#share', receivedAt: '2026-12-02T10:01:00.000Z' });
    // act
    const ids = [first, first, again].map((item) => (eventsFromChange({ eventName: 'INSERT', newImage: item })[0].detail as InstructionDetail).eventId);
    // assess
    assert.equal(ids[0], ids[1]);
    assert.notEqual(ids[0], ids[2], 'was: one id, the second life dropped by a consumer deduping on it and read by the relay as sent');
    assert.equal(ids[0], createHash('sha256').update(['instruction', 'identomat#S-1', 'EVENT#share', T(1)].join('\u0000')).digest('hex').slice(0, 32));
  });

  test('a session link by SMS and a code by e-mail; a rewrite of the item (MODIFY) publishes nothing again', () => {
    const link = eventsFromChange({ eventName: 'INSERT', newImage: eventItem(samplePayload('share-session-link-via-sms'), { sk: 'EVENT#share' }) })[0].detail as InstructionDetail;
    assert.equal(link.kind, 'share-session-link-via-sms');
    assert.equal(link.oneTimeCode, false);
    assert.match(link.link!, /^https:\/\/widget\.identomat\.com\//);
    const email = eventsFromChange({ eventName: 'INSERT', newImage: eventItem(samplePayload('email-one-time-password-request'), { sk: 'EVENT#mail' }) })[0].detail as InstructionDetail;
    assert.deepEqual([email.channel, email.destination, email.oneTimeCode], ['email', 'applicant@example.com', true]);
    const item = eventItem(samplePayload('share-session-link-via-sms'));
    assert.deepEqual(eventsFromChange({ eventName: 'MODIFY', oldImage: item, newImage: { ...item, asks: 1 } }), []);
  });

  test('no instruction makes an event the bus refuses for its size: a code whose text fills a whole callback would hold its shard of the stream for hours', () => {
    // prepare: the largest callback the gateway takes, its text as long as it can be
    const payload = { ...samplePayload('one-time-password'), type: 'one-time-password', text: '' };
    const body = (text: string) => JSON.stringify({ callbackApiKey: 'callback-api-key-123', ...payload, text });
    const filling = 'x'.repeat(MAX_BODY_BYTES - Buffer.byteLength(body('')));
    assert.equal(Buffer.byteLength(body(filling)), MAX_BODY_BYTES);
    // the longest text that is published, written in the characters JSON spells longest
    const longest = '\u0001'.repeat(16_384);
    // act
    const huge = eventsFromChange({ eventName: 'INSERT', newImage: eventItem({ ...payload, text: filling }) });
    const bounded = eventsFromChange({ eventName: 'INSERT', newImage: eventItem({ ...payload, text: longest, sessionLink: `https://example.com/${'\u00e9'.repeat(2000)}`, phoneNumber: '\u0002'.repeat(2048) }) });
    // assess
    assert.deepEqual(huge, [], 'a text no sender takes is not published');
    assert.equal(bounded.length, 1);
    assert.equal((bounded[0].detail as InstructionDetail).text, longest);
    assert.ok(entrySize(putEventsEntry(bounded[0], 'bus')) <= PUT_EVENTS_LIMITS.bytes);
  });

  test('an Identomat code whose item had to be compressed is published, also when its body began with a byte-order mark (was never published)', () => {
    // prepare: the body as kept, its key scrubbed, exactly as received (a leading U+FEFF included)
    const json = JSON.stringify({ callbackApiKey: '[REDACTED]', ...samplePayload('one-time-password'), type: 'one-time-password' });
    const compressed = (body: string): Item => {
      const { payload: _payload, ...item } = eventItem(undefined);
      return { ...item, omitted: { reason: 'too large for one DynamoDB item', bytesIn: 'rawGzip' }, rawGzip: gzipSync(Buffer.from(body)) };
    };
    // act
    const plain = eventsFromChange({ eventName: 'INSERT', newImage: compressed(json) });
    const marked = eventsFromChange({ eventName: 'INSERT', newImage: compressed(`\ufeff${json}`) });
    // assess
    assert.equal(plain.length, 1);
    assert.deepEqual(marked.map((event) => event.detail), plain.map((event) => event.detail));
    assert.equal((marked[0]?.detail as InstructionDetail | undefined)?.text, 'Your code is 6867');
  });

  test('not an instruction: a session change, a payload that is not one, an answer of the status endpoint', () => {
    for (const payload of [samplePayload('session-change-approved'), { type: 'one-time-password', sessionId: 'S-1' }, 'text', null]) {
      assert.deepEqual(eventsFromChange({ eventName: 'INSERT', newImage: eventItem(payload) }), []);
    }
    assert.deepEqual(eventsFromChange({ eventName: 'INSERT', newImage: eventItem(samplePayload('one-time-password'), { source: 'status-endpoint' }) }), []);
  });
});

describe('publishRecords', () => {
  /** A change of subject `REF-<subject>` (by default a subject of its own). */
  const change = (n: number, subject = n) => {
    const of = { pk: `temboplus#REF-${subject}`, subjectId: `REF-${subject}` };
    return {
      sequenceNumber: String(100 + n),
      change: { eventName: 'MODIFY' as const, oldImage: state({ ...of, version: n }), newImage: state({ ...of, version: n + 1, changedAt: T(n + 1), status: `S${n}` }) },
    };
  };
  const log = { debug() {}, info() {}, warn() {}, error() {} };

  test('in stream order, at most 10 events a call; bookkeeping records publish nothing', async () => {
    // prepare
    const calls: string[][] = [];
    const records = [...Array.from({ length: 12 }, (_, n) => change(n)), { sequenceNumber: '999', change: { eventName: 'MODIFY' as const, oldImage: state(), newImage: state({ recheckAt: T(9) }) } }];
    // act
    const result = await publishRecords(records, { publish: async (events) => void calls.push(events.map((event) => String((event.detail as StatusChangedDetail).status))), log });
    // assess
    assert.deepEqual(result, { published: 12, setAside: 0, failed: [] });
    assert.deepEqual(calls, [Array.from({ length: 10 }, (_, n) => `S${n}`), ['S10', 'S11']]);
  });

  test('one event per subject a call: a subject\'s next change waits for the call after, made once this one is accepted whole', async () => {
    // prepare: REF-1 changes three times, REF-2 twice, among others
    const calls: string[][] = [];
    const records = [change(0, 1), change(1, 2), change(2, 1), change(3, 3), change(4, 1), change(5, 2), change(6, 4)];
    // act
    const result = await publishRecords(records, { publish: async (events) => void calls.push(events.map((event) => `${(event.detail as StatusChangedDetail).subjectId}:${String((event.detail as StatusChangedDetail).status)}`)), log });
    // assess: a call ends where a subject would appear twice in it, in stream order
    assert.deepEqual(result, { published: 7, setAside: 0, failed: [] });
    assert.deepEqual(calls, [['REF-1:S0', 'REF-2:S1'], ['REF-1:S2', 'REF-3:S3'], ['REF-1:S4', 'REF-2:S5', 'REF-4:S6']]);
  });

  test('an event refused for what it holds is recorded and passed over; with nowhere to record it, its call is given back', async () => {
    // prepare: the bus refuses REF-1's change for good, takes the others
    const records = [change(0), change(1), change(2)];
    const publish = async (events: readonly GatewayEvent[]) => events.filter((event) => event.detail.subjectId === 'REF-1').map((event) => ({ event, errorCode: 'MalformedDetail' }));
    const recorded: SetAsideEvent[] = [];

    // act
    const withQueue = await publishRecords(records, { publish, setAside: async (event) => void recorded.push(event), log });
    const without = await publishRecords(records, { publish, log });

    // assess
    assert.deepEqual(withQueue, { published: 2, setAside: 1, failed: [] });
    assert.deepEqual(recorded.map((event) => [event.subjectId, event.errorCode, event.sequenceNumber, event.version]), [['REF-1', 'MalformedDetail', '101', 2]]);
    assert.deepEqual(without, { published: 0, setAside: 0, failed: ['100', '101', '102'] });
  });

  test("an event refused alone with nothing else taken: tried once more with later changes of other subjects, each subject's first; set aside once one is taken; those not sent again", async () => {
    // prepare: REF-1's S0 is refused: alone, nothing tells it from a bus refusing all (as the
    // EventBridge adapter throws); with others, it comes back refused. REF-1's S1 follows it at once.
    const calls: string[][] = [];
    const recorded: SetAsideEvent[] = [];
    const records = [change(0, 1), change(1, 1), change(2, 2), change(3, 3), change(4, 2)];
    const name = (event: GatewayEvent) => `${event.detail.subjectId}:${String((event.detail as StatusChangedDetail).status)}`;
    const publish = async (events: readonly GatewayEvent[]) => {
      calls.push(events.map(name));
      const bad = events.filter((event) => name(event) === 'REF-1:S0');
      if (bad.length > 0 && events.length === 1) throw new UnprovenRefusalError(bad, 'refused alone, nothing else taken');
      return bad.map((event) => ({ event, errorCode: 'ValidationException' }));
    };

    // act
    const result = await publishRecords(records, { publish, setAside: async (event) => void recorded.push(event), log });

    // assess: REF-2's S2 and REF-3's S3 go ahead of REF-1's S1 (other subjects), REF-2's S4 after its S2, none twice
    assert.deepEqual(calls, [['REF-1:S0'], ['REF-1:S0', 'REF-2:S2', 'REF-3:S3'], ['REF-1:S1', 'REF-2:S4']]);
    assert.deepEqual(result, { published: 4, setAside: 1, failed: [] });
    assert.deepEqual(recorded.map((event) => [event.subjectId, event.errorCode, event.sequenceNumber]), [['REF-1', 'ValidationException', '100']]);
  });

  test('refused alone again with the later changes: the records from its own on are given back, nothing set aside', async () => {
    // prepare: a bus refusing every entry, as the adapter reports it
    const calls: number[] = [];
    const records = [change(0, 1), change(1, 1), change(2, 2)];

    // act
    const result = await publishRecords(records, {
      publish: async (events) => {
        calls.push(events.length);
        throw new UnprovenRefusalError(events, 'refused alone, nothing else taken');
      },
      setAside: async () => assert.fail('nothing is set aside'),
      log,
    });

    // assess
    assert.deepEqual(calls, [1, 2]);
    assert.deepEqual(result, { published: 0, setAside: 0, failed: ['100', '101', '102'] });
  });

  test('a failed call gives back its first record and every later one, so nothing overtakes it', async () => {
    // prepare
    let call = 0;
    const records = Array.from({ length: 15 }, (_, n) => change(n));
    // act: the second call fails
    const result = await publishRecords(records, {
      publish: async () => {
        if (++call === 2) throw new Error('bus unavailable');
      },
      log,
    });
    // assess
    assert.equal(result.published, 10);
    assert.deepEqual(result.failed, records.slice(10).map((record) => record.sequenceNumber));
  });
});
