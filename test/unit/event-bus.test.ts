import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DETAIL_TYPES, EVENT_SOURCE, type GatewayEvent } from '../../functions/core/publish.ts';
import { DependencyError } from '../../functions/shared/errors.ts';
import { matchesPattern, openEventBus, toBusEvent, type BusRule, type EventBridgeEnvelope } from '../../local/event-bus.ts';
import { SMS_RELAY_PATTERN } from '../../local/events-outlet.ts';
import { leaks } from '../support/log-leaks.ts';

/** The local event bus: its file holds each event once, its rules' targets get every event at least once. */

const dir = mkdtempSync(join(tmpdir(), 'event-bus-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const newFile = () => join(dir, `events-${files++}.jsonl`);

function statusEvent(n: number): GatewayEvent {
  const time = `2026-12-01T10:00:0${n}.000Z`;
  return {
    source: EVENT_SOURCE,
    detailType: DETAIL_TYPES.statusChanged,
    time,
    detail: {
      eventId: `status-${n}`, provider: 'telesign', subjectId: 'REF', status: '290', outcome: 'pending', terminal: false,
      statusAt: time, previous: null, version: n, changedAt: time,
    },
  };
}

function instructionEvent(n: number): GatewayEvent {
  const time = `2026-12-01T10:00:0${n}.000Z`;
  return {
    source: EVENT_SOURCE,
    detailType: DETAIL_TYPES.instruction,
    time,
    detail: {
      eventId: `instruction-${n}`, provider: 'identomat', subjectId: 'SESSION', eventKey: `one-time-password|${n}`, kind: 'one-time-password', channel: 'sms',
      destination: '+995512345678', text: 'Your code is 6867', oneTimeCode: true, receivedAt: time,
    },
  };
}

const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);

/** A rule taking instructions, failing while `down` is true, recording what it was handed. */
function recordingRule() {
  const delivered: EventBridgeEnvelope[] = [];
  const rule: BusRule & { down: boolean; delivered: EventBridgeEnvelope[] } = {
    name: 'sms-relay',
    down: false,
    delivered,
    matches: (event) => event.detailType === DETAIL_TYPES.instruction,
    async deliver(event) {
      if (rule.down) throw new Error('queue unreachable');
      delivered.push(event);
    },
  };
  return rule;
}

describe('local event bus', () => {
  test('one line per event, with EventBridge field names, in the order published', async () => {
    // prepare
    const file = newFile();
    const bus = openEventBus({ file, region: 'us-east-1' });

    // act
    await bus.publish([statusEvent(1), instructionEvent(2)]);
    await bus.publish([statusEvent(3)]);

    // assess
    assert.deepEqual(lines(file), [statusEvent(1), instructionEvent(2), statusEvent(3)].map((event) => JSON.parse(JSON.stringify(toBusEvent(event)))));
    assert.deepEqual(Object.keys(lines(file)[0]), ['source', 'detail-type', 'time', 'detail']);
    assert.equal(statSync(file).mode & 0o777, 0o600, 'owner-only: instructions carry live codes and numbers');
    assert.equal(bus.bytes(), statSync(file).size);
  });

  test('after a crash between the append and the saved position, the events handed over again are not appended twice', async () => {
    // prepare: a run appended two events after its last saved position, then died
    const file = newFile();
    const first = openEventBus({ file, region: 'us-east-1' });
    await first.publish([statusEvent(1)]);
    const saved = first.bytes();
    await first.publish([statusEvent(2), statusEvent(3)]);
    const before = readFileSync(file, 'utf8');

    // act: the next run is handed the same records again, then a new one
    const next = openEventBus({ file, region: 'us-east-1', committedBytes: saved });
    await next.publish([statusEvent(2), statusEvent(3)]);
    const unchanged = readFileSync(file, 'utf8');
    await next.publish([statusEvent(4)]);

    // assess
    assert.equal(unchanged, before);
    assert.deepEqual(lines(file).map((line) => (line.detail as { eventId: string }).eventId), ['status-1', 'status-2', 'status-3', 'status-4']);
    assert.equal(next.bytes(), statSync(file).size);
  });

  test('only the events after the saved position are taken for repeats', async () => {
    // prepare: a position covering the whole file
    const file = newFile();
    const first = openEventBus({ file, region: 'us-east-1' });
    await first.publish([statusEvent(1)]);

    // act
    const next = openEventBus({ file, region: 'us-east-1', committedBytes: first.bytes() });
    await next.publish([statusEvent(1)]);

    // assess: published again (a new change that happens to have the same id is the stream's to decide)
    assert.equal(lines(file).length, 2);
  });

  test('a line cut short by a crash is removed when the bus opens', async () => {
    // prepare
    const file = newFile();
    const first = openEventBus({ file, region: 'us-east-1' });
    await first.publish([statusEvent(1)]);
    const whole = readFileSync(file, 'utf8');
    appendFileSync(file, '{"source":"callback-gateway","detail-type":"Callback Sta');

    // act
    const next = openEventBus({ file, region: 'us-east-1', committedBytes: whole.length });
    await next.publish([statusEvent(2)]);

    // assess
    assert.deepEqual(lines(file).map((line) => (line.detail as { eventId: string }).eventId), ['status-1', 'status-2']);
  });

  test("a rule whose target fails fails the publish, naming the rule; the retry delivers it and does not append it again", async () => {
    // prepare
    const file = newFile();
    const rule = recordingRule();
    const bus = openEventBus({ file, region: 'eu-west-1', rules: [rule] });
    await bus.publish([statusEvent(1)]);
    const beforeFailure = bus.bytes();
    rule.down = true;

    // act
    const failure = await bus.publish([instructionEvent(2)]).then(() => undefined, (error: unknown) => error);
    const afterFailure = bus.bytes();
    rule.down = false;
    await bus.publish([instructionEvent(2)]);

    // assess
    assert.ok(failure instanceof DependencyError, String(failure));
    assert.match(failure.message, /rule sms-relay could not deliver event instruction-2/);
    assert.ok(!leaks(failure.message, '6867') && !leaks(failure.message, '995512345678'), failure.message);
    assert.equal(afterFailure, beforeFailure, 'a failed publish does not move what the saved position may cover');
    assert.equal(lines(file).length, 2, 'appended once');
    assert.equal(rule.delivered.length, 1);
    const [envelope] = rule.delivered;
    assert.equal(envelope.version, '0');
    assert.equal(envelope['detail-type'], 'Callback Instruction');
    assert.equal(envelope.source, 'callback-gateway');
    assert.equal(envelope.region, 'eu-west-1');
    assert.deepEqual(envelope.resources, []);
    assert.match(envelope.id, /^[0-9a-f-]{36}$/);
    assert.equal(envelope.time, '2026-12-01T10:00:02Z', 'to the second, as EventBridge delivers it');
    assert.deepEqual(envelope.detail, instructionEvent(2).detail);
  });

  test('a file that cannot be written fails the publish as a dependency fault', async () => {
    // prepare: a folder where the file should be (refused even to root)
    const file = newFile();
    mkdirSync(file);

    // act
    const bus = openEventBus({ file, region: 'us-east-1' });
    const failure = await bus.publish([statusEvent(1)]).then(() => undefined, (error: unknown) => error);

    // assess
    assert.ok(failure instanceof DependencyError);
    assert.equal(failure.dependency, 'event bus');
    assert.equal(bus.bytes(), 0);
  });

  test('an empty file, or none, opens empty', async () => {
    const file = newFile();
    writeFileSync(file, '');
    const bus = openEventBus({ file, region: 'us-east-1', committedBytes: 10 });
    assert.equal(bus.bytes(), 0);
    await bus.publish([statusEvent(1)]);
    assert.equal(lines(file).length, 1);
  });
});

describe('rule patterns', () => {
  test("the SMS relay's rule takes SMS instructions only", () => {
    // prepare
    const sms = toBusEvent(instructionEvent(1));
    const email = { ...sms, detail: { ...sms.detail, channel: 'email', destination: 'someone@example.com' } };
    const status = toBusEvent(statusEvent(1));
    const elsewhere = { ...sms, source: 'another-app' };

    // act
    const matched = [sms, email, status, elsewhere].map((event) => matchesPattern(SMS_RELAY_PATTERN, event));

    // assess
    assert.deepEqual(matched, [true, false, false, false]);
  });

  test('EventBridge matching: any listed value; an array in the event matches when one element does; a missing field never', () => {
    assert.equal(matchesPattern({ detail: { outcome: ['failed', 'unknown'] } }, { detail: { outcome: 'unknown' } }), true);
    assert.equal(matchesPattern({ detail: { tags: ['b'] } }, { detail: { tags: ['a', 'b'] } }), true);
    assert.equal(matchesPattern({ detail: { outcome: ['failed'] } }, { detail: {} }), false);
    assert.equal(matchesPattern({ detail: { outcome: ['failed'] } }, { detail: 'failed' }), false);
  });
});
