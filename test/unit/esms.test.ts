import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { keys } from '../../functions/core/pipeline-definition.ts';
import { applyObservations, orderKey } from '../../functions/core/state.ts';
import { DEFAULT_RECONCILE, settled, withRecheck } from '../../functions/core/reconcile.ts';
import { placeStatus } from '../../functions/core/events.ts';
import {
  canonicalQuery,
  decodeErrorInfo,
  esms,
  esmsBaseUrl,
  esmsVoiceBaseUrl,
  EsmsSecretSchema,
  matchReceiver,
  type EsmsCallback,
  type EsmsSecret,
} from '../../functions/providers/esms.ts';
import { canAsk, type CallbackRequest, type EventFacts, type LookupContext, type LookupSubject, type StatusAnswer } from '../../functions/providers/provider.ts';
import { ConfigurationError, DependencyError } from '../../functions/shared/errors.ts';
import { FIXTURES_DIR, listSamples } from '../../local/samples.ts';
import { startStatusSimulator, type StatusSimulator } from '../../local/status-simulator.ts';
import { esmsKit } from '../providers/esms.ts';
import { authentic, runIngest, UNIT_SECRETS } from '../support/unit-ingest.ts';

const token = String(UNIT_SECRETS.esms.token);

function sampleQuery(name: string): string {
  const sample = listSamples('esms').find((candidate) => candidate.name === name);
  assert.ok(sample?.query, `test/fixtures/esms/${name}.query is missing`);
  return sample.query;
}

function getRequest(rawQuery: string, method = 'GET'): CallbackRequest {
  return {
    method,
    headers: {},
    body: Buffer.alloc(0),
    rawQuery,
    pathToken: token,
    sourceIp: '203.0.113.10',
    requestId: 'unit',
    receivedAt: '2025-01-01T10:00:00.000Z',
  };
}

function parsed(rawQuery: string): EsmsCallback {
  const result = esms.parse(getRequest(rawQuery));
  assert.ok(result.ok, JSON.stringify(result));
  return result.payload;
}

/** What the worker does with a callback: describe the payload it reads off the queue (a JSON round trip). */
function described(rawQuery: string): EventFacts {
  return esms.describe(JSON.parse(JSON.stringify(parsed(rawQuery))) as EsmsCallback);
}

/** The items a callback is stored in: its subject's (or recipient's) state item and its event item. */
function storedAt(facts: EventFacts) {
  const state = keys.state('esms', facts.subjectId, facts.part);
  const event = keys.event('esms', facts.subjectId, facts.eventKey);
  return { state: `${state.pk} ${state.sk}`, event: `${event.pk} ${event.sk}` };
}

describe('eSMS field names', () => {
  const canonical = 'SMSID=abc123&SendFailed=0&SendStatus=5&SendSuccess=1&phonenumber=0901888484&TypeId=2';
  const spellings = [
    { name: 'as the samples spell them', query: canonical },
    { name: 'all lower case', query: canonical.toLowerCase() },
    { name: 'all upper case', query: 'SMSID=abc123&SENDFAILED=0&SENDSTATUS=5&SENDSUCCESS=1&PHONENUMBER=0901888484&TYPEID=2' },
    { name: 'mixed (smsid, SENDSTATUS, Phonenumber)', query: 'smsid=abc123&SendFailed=0&SENDSTATUS=5&sendsuccess=1&Phonenumber=0901888484&typeid=2' },
  ];

  for (const { name, query } of spellings) {
    test(`are matched case-insensitively: ${name}`, () => {
      // act
      const payload = parsed(query);
      const facts = esms.describe(payload);
      // assess
      assert.equal(payload.SMSID, 'abc123');
      assert.equal(payload.SendStatus, '5');
      assert.equal(payload.SendSuccess, '1');
      assert.equal(payload.phonenumber, '0901888484');
      assert.deepEqual(facts, esms.describe(parsed(canonical)));
    });
  }

  test('an unknown parameter is kept under its own name', () => {
    const payload = parsed(`${canonical}&NewField=x`) as Record<string, unknown>;
    assert.equal(payload.NewField, 'x');
  });

  test('canonicalQuery folds case but keeps values byte for byte', () => {
    assert.deepEqual(canonicalQuery('smsid=A%20b&sendstatus=05'), { SMSID: 'A b', SendStatus: '05' });
  });
});

describe('eSMS error_info encodings (the three seen in samples)', () => {
  const cases = [
    {
      name: 'a JSON string literal wrapping JSON (zalo-error)',
      sample: 'zalo-error',
      expected: {
        error: -114,
        message: 'User is inactive, or reject the message, or using an outdated Zalo version, or other internal errors',
      },
    },
    {
      name: 'double URL-encoded JSON with a ____dd/MM/yyyy HH:mm:ss suffix (zalo-consulting)',
      sample: 'zalo-consulting',
      expected: { data: { message_id: 'e1a60e8890be9de4c4ab', user_id: '31215806834323092' }, error: 0, message: 'Success' },
    },
    {
      name: 'plain JSON (zalo-by-uid)',
      sample: 'zalo-by-uid',
      expected: {
        error: 0,
        message: 'Success',
        data: { delivery_time: null, message: "The message was delivered to the user's phone", status: 1 },
      },
    },
  ];

  for (const { name, sample, expected } of cases) {
    test(`decodes ${name} to an object in the queued payload`, async () => {
      // prepare
      const request = authentic(esms, { query: sampleQuery(sample) });
      // act
      const run = await runIngest(esms, request);
      // assess
      assert.deepEqual(run.response, { statusCode: 200, body: { received: true } });
      const payload = run.messages[0].payload as EsmsCallback;
      assert.deepEqual(payload.errorInfo, expected);
      assert.equal(typeof payload.error_info, 'string', 'the original text is kept beside the decoded object');
    });
  }

  test('an error_info that is none of the three is kept as text, without errorInfo, and not quarantined', () => {
    // act
    const payload = parsed('SMSID=x&SendStatus=5&error_info=not%20json');
    // assess
    assert.equal(payload.error_info, 'not json');
    assert.equal(payload.errorInfo, undefined);
  });

  test('decodeErrorInfo does not turn a bare JSON string or number into an object', () => {
    assert.equal(decodeErrorInfo('"just text"'), undefined);
    assert.equal(decodeErrorInfo('42'), undefined);
  });
});

describe('eSMS SendStatus', () => {
  const cases = [
    { name: '1 (pending approval)', query: 'SMSID=m1&SendStatus=1', outcome: 'pending', terminal: false },
    { name: '2 (waiting to send)', query: 'SMSID=m1&SendStatus=2', outcome: 'pending', terminal: false },
    { name: '7 (sent to telco, awaiting report)', query: 'SMSID=m1&SendStatus=7', outcome: 'pending', terminal: false },
    { name: '4 (rejected)', query: 'SMSID=m1&SendStatus=4&SendSuccess=0&SendFailed=0', outcome: 'failed', terminal: true },
    { name: '5 with SendSuccess 1', query: 'SMSID=m1&SendStatus=5&SendSuccess=1&SendFailed=0', outcome: 'succeeded', terminal: true },
    { name: '5 with SendFailed 1', query: 'SMSID=m1&SendStatus=5&SendSuccess=0&SendFailed=1', outcome: 'failed', terminal: true },
    { name: '5 with some of each (the message as a whole: partly failed)', query: 'SMSID=m1&SendStatus=5&SendSuccess=3&SendFailed=1', outcome: 'unknown', terminal: true },
    { name: '5 with nothing counted', query: 'SMSID=m1&SendStatus=5&SendSuccess=0&SendFailed=0', outcome: 'unknown', terminal: true },
    { name: '5 without counters', query: 'SMSID=m1&SendStatus=5', outcome: 'unknown', terminal: true },
    { name: '5 (customer-care sample: SendFailed 2, SendSuccess 0)', query: sampleQuery('customer-care'), outcome: 'failed', terminal: true },
    { name: '5 (promo sample: nothing counted of 169 receivers) is unknown and not final: its counters are still to come', query: sampleQuery('promotion'), outcome: 'unknown', terminal: false },
    { name: '5 (zalo-error sample: error -114)', query: sampleQuery('zalo-error'), outcome: 'failed', terminal: true },
    { name: '5 (zalo-by-uid sample: error 0, SendSuccess 1)', query: sampleQuery('zalo-by-uid'), outcome: 'succeeded', terminal: true },
    { name: '5 (viber sample: SendSuccess 1)', query: sampleQuery('viber'), outcome: 'succeeded', terminal: true },
    { name: '5, voice call with SentResult 0', query: sampleQuery('voice-call-result'), outcome: 'failed', terminal: true },
    { name: '5, voice call with SentResult 1 and an empty CallStatus', query: sampleQuery('voice-call-result').replace('SentResult=0', 'SentResult=1'), outcome: 'unknown', terminal: true },
    { name: '5, voice call answered (SentResult 1, CallStatus ANSWERED)', query: 'ReferenceId=c1&SendStatus=5&SentResult=1&CallStatus=ANSWERED&CallDuration=13', outcome: 'succeeded', terminal: true },
    { name: '5, voice call not answered (SentResult 1, CallStatus NO ANSWER)', query: 'ReferenceId=c1&SendStatus=5&SentResult=1&CallStatus=NO%20ANSWER&CallDuration=0', outcome: 'failed', terminal: true },
    { name: "5, voice call not answered (the call status answer's NOANSWERED)", query: 'ReferenceId=c1&SendStatus=5&SentResult=1&CallStatus=NOANSWERED', outcome: 'failed', terminal: true },
    { name: '5, voice call with SentResult 1 and an undocumented CallStatus', query: 'ReferenceId=c1&SendStatus=5&SentResult=1&CallStatus=BUSY', outcome: 'unknown', terminal: true },
    { name: '5, voice call answered without SentResult', query: 'ReferenceId=c1&SendStatus=5&CallStatus=ANSWERED', outcome: 'unknown', terminal: true },
    { name: '5, voice call with SentResult 2 (undocumented)', query: sampleQuery('voice-call-result').replace('SentResult=0', 'SentResult=2'), outcome: 'unknown', terminal: true },
    { name: '5, voice call without SentResult', query: sampleQuery('voice-call-result').replace('&SentResult=0', ''), outcome: 'unknown', terminal: true },
    { name: '3 (unlisted)', query: 'SMSID=m1&SendStatus=3', outcome: 'pending', terminal: false },
  ];

  for (const { name, query, outcome, terminal } of cases) {
    test(`${name} is ${terminal ? 'terminal' : 'non-terminal'} ${outcome}`, () => {
      // act
      const facts = esms.describe(parsed(query));
      // assess
      assert.equal(facts.outcome, outcome);
      assert.equal(facts.terminal, terminal);
    });
  }

  test('a late "pending approval" (1) or "drafting" (0) never takes the stored status back from "waiting to send" (2)', () => {
    // prepare: eSMS's callbacks carry no time; each report is placed by when it arrived
    const subject = { provider: 'esms', subjectId: 'm1' };
    const observe = (state: ReturnType<typeof applyObservations>, status: string, receivedAt: string) => {
      const facts = esms.describe(parsed(`SMSID=m1&SendStatus=${status}`));
      return applyObservations(state, subject, [{ hash: facts.eventKey, counts: true, source: 'callback', placed: placeStatus(facts, receivedAt) }], undefined, receivedAt) ?? state;
    };
    // act: 2 arrives first, the 1 and the 0 before it are delivered late
    const waiting = observe(undefined, '2', '2025-01-01T10:01:00.000Z');
    const afterLateOne = observe(waiting, '1', '2025-01-01T10:02:00.000Z');
    const afterLateZero = observe(afterLateOne, '0', '2025-01-01T10:03:00.000Z');
    // assess
    assert.equal(afterLateOne?.status, '2');
    assert.equal(afterLateZero?.status, '2');
    assert.equal(afterLateZero?.eventCount, 3, 'the late reports are still counted');
    // and in order, each step still follows the one before
    const inOrder = ['0', '1', '2'].reduce<ReturnType<typeof applyObservations>>((state, status, index) => observe(state, status, `2025-01-01T10:0${index}:00.000Z`), undefined);
    assert.equal(inOrder?.status, '2');
  });

  test('7 ranks above 1 and 2, so a late "waiting to send" never replaces "sent to telco"', () => {
    const rank = (status: string) => esms.describe(parsed(`SMSID=m1&SendStatus=${status}`)).rank;
    assert.ok(rank('7') > rank('2'));
    assert.ok(rank('7') > rank('1'));
  });

  test('a SendStatus that is not digits is quarantined', async () => {
    // prepare
    const request = authentic(esms, { query: 'SMSID=m1&SendStatus=sent' });
    // act
    const run = await runIngest(esms, request);
    // assess
    assert.deepEqual(run.response.body, { received: true, quarantined: true });
    assert.match(run.messages[0].quarantine!.issues.join('\n'), /SendStatus/);
    assert.equal(run.messages[0].raw.query, 'SMSID=m1&SendStatus=sent');
  });
});

describe('eSMS subjects: the message by its SMSID, each recipient a part of it', () => {
  test('a per-recipient callback is stored under the SMSID exactly as sent, with the recipient as the part', () => {
    // act
    const facts = described(sampleQuery('customer-care'));
    // assess
    assert.equal(facts.subjectId, 'dc712784-9c5f-4c69-b9a8-ea69d56adc9a87');
    assert.equal(facts.part, '0901888484');
    assert.deepEqual(keys.state('esms', facts.subjectId, facts.part), { pk: 'esms#dc712784-9c5f-4c69-b9a8-ea69d56adc9a87', sk: 'STATE#0901888484' });
  });

  test('a callback without a recipient is about the message as a whole', () => {
    // act
    const facts = described(sampleQuery('promotion'));
    // assess
    assert.equal(facts.subjectId, '82b0bb8aed914a0aab8deba567c9b8c2');
    assert.equal(facts.part, undefined);
    assert.deepEqual(keys.state('esms', facts.subjectId, facts.part), { pk: 'esms#82b0bb8aed914a0aab8deba567c9b8c2', sk: 'STATE' });
  });

  test('an empty phonenumber names no recipient: the message as a whole', () => {
    // act
    const facts = described('SMSID=m1&SendStatus=5&SendSuccess=1&SendFailed=0&phonenumber=');
    // assess
    assert.equal(facts.subjectId, 'm1');
    assert.equal(facts.part, undefined);
  });

  test('two recipients of one SMSID: one partition, a state item each, an event item each', () => {
    // act
    const a = described('SMSID=batch1&SendStatus=5&SendSuccess=2&SendFailed=0&TotalReceiver=2&phonenumber=0901000001');
    const b = described('SMSID=batch1&SendStatus=5&SendSuccess=2&SendFailed=0&TotalReceiver=2&phonenumber=0901000002');
    // assess
    assert.equal(a.subjectId, 'batch1');
    assert.equal(b.subjectId, 'batch1');
    assert.notEqual(storedAt(a).state, storedAt(b).state);
    assert.notEqual(storedAt(a).event, storedAt(b).event);
  });

  test('SMSID=A:B and SMSID=A&phonenumber=B are stored in different state items', () => {
    // act
    const colon = described('SMSID=A%3AB&SendStatus=5&SendSuccess=1&SendFailed=0');
    const recipient = described('SMSID=A&SendStatus=5&SendSuccess=1&SendFailed=0&phonenumber=B');
    // assess
    assert.equal(colon.subjectId, 'A:B');
    assert.equal(recipient.subjectId, 'A');
    assert.notEqual(storedAt(colon).state, storedAt(recipient).state);
    assert.notEqual(storedAt(colon).event, storedAt(recipient).event);
  });

  test('a voice call result is kept under voice:<ReferenceId>', () => {
    // act
    const facts = described(sampleQuery('voice-call-result'));
    // assess
    assert.equal(facts.subjectId, 'voice:066107ee-6ec4-4283-b595-aa74977c65c5');
    assert.equal(facts.part, undefined);
  });

  test('an SMSID that starts with voice: is quarantined whole, so it never shares a subject with a voice call', async () => {
    // prepare
    const query = 'SMSID=voice%3AX&SendStatus=5&SendSuccess=1&SendFailed=0';
    // act
    const voice = described('ReferenceId=X&SendStatus=5&SentResult=1');
    const run = await runIngest(esms, authentic(esms, { query }));
    // assess
    assert.equal(voice.subjectId, 'voice:X');
    assert.deepEqual(run.response.body, { received: true, quarantined: true });
    assert.match(run.messages[0].quarantine!.issues.join('\n'), /SMSID: an SMSID cannot start with "voice:"/);
    assert.equal(run.messages[0].raw.query, query, 'kept as received');
  });

  test('an SMSID that merely contains voice:, or spells it otherwise, is its own subject', () => {
    assert.equal(described('SMSID=Voice%3AX&SendStatus=2').subjectId, 'Voice:X');
    assert.equal(described('SMSID=a-voice%3AX&SendStatus=2').subjectId, 'a-voice:X');
  });

  for (const { name, query, conflict } of [
    { name: 'SMSID in two spellings (SMSID=A&smsid=B)', query: 'SMSID=A&SendStatus=5&smsid=B', conflict: 'SMSID' },
    { name: 'phonenumber twice', query: 'SMSID=A&SendStatus=5&phonenumber=0901000001&phonenumber=0901000002', conflict: 'phonenumber' },
    { name: 'SendSuccess twice', query: 'SMSID=A&SendStatus=5&SendSuccess=1&SENDSUCCESS=0', conflict: 'SendSuccess' },
  ]) {
    test(`a field read twice with different values is quarantined whole: ${name}`, async () => {
      // act
      const run = await runIngest(esms, authentic(esms, { query }));
      // assess
      assert.deepEqual(run.response.body, { received: true, quarantined: true });
      assert.match(run.messages[0].quarantine!.reason, new RegExp(`^${conflict} given more than once`));
      assert.equal(run.messages[0].raw.query, query);
    });
  }

  test('CallStatus given twice with different values is quarantined whole', async () => {
    // act
    const run = await runIngest(esms, authentic(esms, { query: 'ReferenceId=c1&SendStatus=5&SentResult=1&CallStatus=ANSWERED&callstatus=NO%20ANSWER' }));
    // assess
    assert.deepEqual(run.response.body, { received: true, quarantined: true });
    assert.match(run.messages[0].quarantine!.reason, /^CallStatus given more than once/);
  });

  test('an error_info whose JSON names a member twice is quarantined whole, in each of its encodings, not read as its last value', async () => {
    // `{"error":-114,"error":0}` read as its last member would be no Zalo error: the recipient's failure read as a success.
    const json = '{"error":-114,"message":"User is inactive","error":0}';
    const encodings = [encodeURIComponent(json), encodeURIComponent(JSON.stringify(json)), encodeURIComponent(`${encodeURIComponent(json)}____01/01/2025 10:00:00`)];
    for (const encoded of encodings) {
      // prepare
      const query = `SMSID=z1&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&phonenumber=0901000001&error_info=${encoded}`;
      // act
      const run = await runIngest(esms, authentic(esms, { query }));
      // assess
      assert.deepEqual(run.response.body, { received: true, quarantined: true }, encoded);
      assert.equal(run.messages[0].quarantine!.reason, 'a member is given more than once; which value is true is not said');
      assert.deepEqual(run.messages[0].quarantine!.issues, ['error_info: "error" given more than once in one object; kept as received, not read']);
      assert.equal(run.messages[0].raw.query, query);
    }
  });

  test('an error_info whose error JSON reads as 0 though written otherwise (1e-400) is quarantined, in each of its encodings, not read as no Zalo error', async () => {
    const json = '{"error":1e-400,"message":"User is inactive"}';
    const encodings = [encodeURIComponent(json), encodeURIComponent(JSON.stringify(json)), encodeURIComponent(`${encodeURIComponent(json)}____01/01/2025 10:00:00`)];
    for (const encoded of encodings) {
      // prepare
      const query = `SMSID=z1&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&phonenumber=0901000001&error_info=${encoded}`;
      // act
      const run = await runIngest(esms, authentic(esms, { query }));
      // assess: read as error 0, the recipient's failure was a success
      assert.deepEqual(run.response.body, { received: true, quarantined: true }, encoded);
      assert.match(run.messages[0].quarantine!.reason, /number/);
      assert.deepEqual(run.messages[0].quarantine!.issues, ['error_info: 1e-400: read as 0 once parsed; kept as received, not read']);
    }
  });

  test('a field repeated with the same value, or an unread field repeated, is not a conflict', () => {
    assert.equal(described('SMSID=A&smsid=A&SendStatus=2').subjectId, 'A');
    assert.equal(described('SMSID=A&SendStatus=2&TotalPrice=1&TotalPrice=2').subjectId, 'A');
  });

  test('property: callbacks about different messages or recipients never share a state item, nor different callbacks an event item', () => {
    // prepare: ids from a tiny alphabet of the characters that made keys collide (':', '&', '|', 'voice:')
    const piece = fc.constantFrom('A', 'B', ':', '|', 'voice:', 'voice', '%3A', '&', '#', '1');
    const text = fc.array(piece, { minLength: 1, maxLength: 4 }).map((parts) => parts.join(''));
    const callback = fc.record({
      voice: fc.boolean(),
      id: text,
      phone: fc.option(text, { nil: undefined }),
      status: fc.constantFrom('2', '5', '7'),
      success: fc.constantFrom('0', '1', '2'),
      failed: fc.constantFrom('0', '1'),
      total: fc.option(fc.constantFrom('1', '2'), { nil: undefined }),
    });
    const queryOf = (c: typeof callback extends fc.Arbitrary<infer T> ? T : never) =>
      [
        `${c.voice ? 'ReferenceId' : 'SMSID'}=${encodeURIComponent(c.id)}`,
        `SendStatus=${c.status}`,
        c.voice ? `SentResult=${c.success === '0' ? '0' : '1'}` : `SendSuccess=${c.success}&SendFailed=${c.failed}`,
        ...(c.total === undefined ? [] : [`TotalReceiver=${c.total}`]),
        ...(c.phone === undefined ? [] : [`phonenumber=${encodeURIComponent(c.phone)}`]),
      ].join('&');
    // act / assess
    fc.assert(
      fc.property(callback, callback, (one, two) => {
        const [first, second] = [one, two].map((c) => {
          const result = esms.parse(getRequest(queryOf(c)));
          return result.ok ? esms.describe(result.payload) : undefined;
        });
        // An SMSID that starts with voice: is refused, never stored next to a call.
        if (!one.voice && one.id.startsWith('voice:')) assert.equal(first, undefined);
        if (!first || !second) return;
        const sameItem = one.voice === two.voice && one.id === two.id && (one.phone || undefined) === (two.phone || undefined);
        assert.equal(storedAt(first).state === storedAt(second).state, sameItem, `${queryOf(one)} vs ${queryOf(two)}`);
        const sentResult = (c: typeof one) => (c.success === '0' ? '0' : '1');
        const sameCounters = one.voice ? sentResult(one) === sentResult(two) : one.success === two.success && one.failed === two.failed;
        const sameEvent = sameItem && one.status === two.status && sameCounters && one.total === two.total;
        assert.equal(storedAt(first).event === storedAt(second).event, sameEvent, `${queryOf(one)} vs ${queryOf(two)}`);
      }),
      { numRuns: 2_000, seed: 20_250_101 },
    );
  });
});

describe('eSMS outcomes: only what the counters can say', () => {
  const recipientCases = [
    {
      name: 'a two-recipient batch with SendSuccess=1&SendFailed=1 marks neither recipient succeeded',
      queries: [
        'SMSID=b2&SendStatus=5&SendSuccess=1&SendFailed=1&TotalReceiver=2&phonenumber=0901000001',
        'SMSID=b2&SendStatus=5&SendSuccess=1&SendFailed=1&TotalReceiver=2&phonenumber=0901000002',
      ],
      outcome: 'unknown',
      detail: { inference: 'mixed', SendSuccess: '1', SendFailed: '1', TotalReceiver: '2' },
    },
    {
      name: 'the customer-care sample (TotalReceiver 2, SendFailed 2, SendSuccess 0) marks its recipient failed',
      queries: [sampleQuery('customer-care')],
      outcome: 'failed',
      detail: { inference: 'all-failed', SendSuccess: '0', SendFailed: '2', TotalReceiver: '2' },
    },
    {
      name: 'every counted recipient succeeded: the recipient succeeded',
      queries: ['SMSID=b3&SendStatus=5&SendSuccess=3&SendFailed=0&TotalReceiver=3&phonenumber=0901000001'],
      outcome: 'succeeded',
      detail: { inference: 'all-succeeded', SendSuccess: '3', SendFailed: '0', TotalReceiver: '3' },
    },
    {
      name: 'counters that have not counted every receiver yet say nothing of this recipient: 1 of 2 succeeded, or failed',
      queries: [
        'SMSID=b6&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=2&phonenumber=0901000001',
        'SMSID=b6&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=2&phonenumber=0901000002',
      ],
      outcome: 'unknown',
      detail: { inference: 'not-all-counted', SendSuccess: '1', SendFailed: '0', TotalReceiver: '2' },
    },
    {
      name: 'one failure counted of three receivers: not this recipient\'s failure for sure',
      queries: ['SMSID=b7&SendStatus=5&SendSuccess=0&SendFailed=1&TotalReceiver=3&phonenumber=0901000001'],
      outcome: 'unknown',
      detail: { inference: 'not-all-counted', SendSuccess: '0', SendFailed: '1', TotalReceiver: '3' },
    },
    {
      name: 'a one-recipient message that failed (viber-like)',
      queries: ['SMSID=b4&SendStatus=5&SendSuccess=0&SendFailed=1&TotalReceiver=1&phonenumber=0901000001'],
      outcome: 'failed',
      detail: { inference: 'all-failed', SendSuccess: '0', SendFailed: '1', TotalReceiver: '1' },
    },
    {
      name: 'a Zalo error_info error for the recipient is a failure, whatever the counters say',
      queries: [`SMSID=z1&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&phonenumber=0901000001&error_info=${encodeURIComponent('{"error":-124,"message":"Access token is invalid"}')}`],
      outcome: 'failed',
      detail: { inference: 'zalo-error', SendSuccess: '1', SendFailed: '0', TotalReceiver: '1', zaloError: '-124' },
    },
    {
      name: 'nothing counted for the recipient',
      queries: ['SMSID=b5&SendStatus=5&SendSuccess=0&SendFailed=0&TotalReceiver=1&phonenumber=0901000001'],
      outcome: 'unknown',
      detail: { inference: 'none-counted', SendSuccess: '0', SendFailed: '0', TotalReceiver: '1' },
    },
  ];
  for (const { name, queries, outcome, detail } of recipientCases) {
    test(name, () => {
      for (const query of queries) {
        // act
        const facts = described(query);
        // assess
        assert.ok(facts.part, 'about a recipient');
        assert.equal(facts.outcome, outcome, query);
        assert.equal(facts.terminal, true);
        assert.deepEqual(facts.detail, detail);
      }
    });
  }

  const messageCases = [
    { counters: 'SendSuccess=2&SendFailed=0&TotalReceiver=2', outcome: 'succeeded', inference: 'all-succeeded' },
    { counters: 'SendSuccess=0&SendFailed=2&TotalReceiver=2', outcome: 'failed', inference: 'all-failed' },
    { counters: 'SendSuccess=1&SendFailed=1&TotalReceiver=2', outcome: 'unknown', inference: 'mixed' },
    { counters: 'SendSuccess=100&SendFailed=0&TotalReceiver=169', outcome: 'unknown', inference: 'not-all-counted' },
    { counters: 'SendSuccess=0&SendFailed=100&TotalReceiver=169', outcome: 'unknown', inference: 'not-all-counted' },
    { counters: 'SendSuccess=0&SendFailed=0&TotalReceiver=169', outcome: 'unknown', inference: 'none-counted' },
    { counters: 'SendSuccess=4&SendFailed=0', outcome: 'succeeded', inference: 'all-succeeded' },
  ];
  for (const { counters, outcome, inference } of messageCases) {
    test(`the message as a whole with ${counters} is ${outcome} (${inference})`, () => {
      // act
      const facts = described(`SMSID=msg&SendStatus=5&${counters}`);
      // assess
      assert.equal(facts.part, undefined);
      assert.equal(facts.outcome, outcome);
      assert.equal(facts.detail?.inference, inference);
    });
  }

  // eSMS keeps a Zalo message's error info as JSON followed by other text (the ErrorInfo of its stored
  // callback data, in the sample of its GetCallback page): none of the three encodings reads it.
  const unreadableErrorInfo = encodeURIComponent('{"error":-124,"message":"Access token is invalid"}Object reference not set to an instance of an object.');
  test('an error_info that cannot be read never lets counters of success read as succeeded: unknown, final, its own event', () => {
    for (const [query, part] of [
      [`SMSID=u1&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&phonenumber=0901000001&error_info=${unreadableErrorInfo}`, '0901000001'],
      [`SMSID=u1&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&error_info=${unreadableErrorInfo}`, undefined],
      ['SMSID=u1&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&phonenumber=0901000001&error_info=not%20json', '0901000001'],
    ] as const) {
      // act
      const facts = described(query);
      const state = applyObservations(undefined, { provider: 'esms', subjectId: facts.subjectId, ...(part ? { part } : {}) }, [{ hash: facts.eventKey, counts: true, source: 'callback', placed: placeStatus(facts, '2025-01-01T10:00:00.000Z') }], undefined, '2025-01-01T10:00:00.000Z');
      // assess: what is stored
      assert.equal(state?.outcome, 'unknown', query);
      assert.equal(state?.terminal, true, query);
      assert.equal(facts.detail?.inference, 'error-info-unreadable', query);
      assert.notEqual(facts.eventKey, described(query.replace(/&error_info=[^&]*/, '')).eventKey, 'not a retry of the same report without it');
    }
  });

  test('a Zalo error on a report about the message as a whole (no phonenumber) never reads as succeeded, whatever the counters say', () => {
    for (const errorInfo of ['{"error":-124,"message":"Access token is invalid"}', '"{\\"error\\":-114}"']) {
      // act
      const facts = described(`SMSID=z2&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&error_info=${encodeURIComponent(errorInfo)}`);
      const state = applyObservations(undefined, { provider: 'esms', subjectId: facts.subjectId }, [{ hash: facts.eventKey, counts: true, source: 'callback', placed: placeStatus(facts, '2025-01-01T10:00:00.000Z') }], undefined, '2025-01-01T10:00:00.000Z');
      // assess: what is stored
      assert.equal(facts.part, undefined);
      assert.equal(state?.outcome, 'unknown', errorInfo);
      assert.equal(state?.terminal, true);
      assert.equal(facts.detail?.inference, 'zalo-error');
    }
    // Error 0 ("Success") is no error: the counters decide.
    assert.equal(described(`SMSID=z2&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&error_info=${encodeURIComponent('{"error":0,"message":"Success"}')}`).outcome, 'succeeded');
  });

  test('a query parameter named errorInfo is no decoded error_info: an unreadable error_info beside it still reads unknown', () => {
    // `errorInfo` is where parse keeps the error_info it decoded; eSMS's query may carry any other
    // parameter as well (the schema keeps unknown ones), and one so named is the sender's text.
    for (const query of [
      `SMSID=u3&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&phonenumber=0901000001&error_info=${unreadableErrorInfo}&errorInfo=x`,
      `SMSID=u3&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&error_info=${unreadableErrorInfo}&errorInfo=%7B%7D`,
    ]) {
      // act
      const facts = described(query);
      // assess
      assert.equal(facts.outcome, 'unknown', query);
      assert.equal(facts.detail?.inference, 'error-info-unreadable', query);
    }
    // A readable error_info is read as before whatever such a parameter says.
    assert.equal(described(`SMSID=u3&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&error_info=${encodeURIComponent('{"error":-124}')}&errorInfo=x`).detail?.inference, 'zalo-error');
  });

  test('an error_info whose JSON is a list is not read as no error: counters of success beside it read unknown', () => {
    // A Zalo error is the `error` member of an object (zaloErrorOf); a list holds none that is read,
    // though it may hold one: as an error_info none of the encodings reads, it is no success.
    for (const errorInfo of ['[{"error":-124,"message":"Access token is invalid"}]', '"[{\\"error\\":-114}]"']) {
      for (const recipient of ['&phonenumber=0901000001', '']) {
        const query = `SMSID=u4&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1${recipient}&error_info=${encodeURIComponent(errorInfo)}`;
        // act
        const facts = described(query);
        // assess
        assert.equal(facts.outcome, 'unknown', query);
        assert.equal(facts.detail?.inference, 'error-info-unreadable', query);
      }
    }
  });

  test('an unreadable error_info changes nothing a failure, mixed or uncounted counters say; an empty one, or one that reads as no error, is no doubt', () => {
    assert.equal(described(`SMSID=u2&SendStatus=5&SendSuccess=0&SendFailed=1&TotalReceiver=1&phonenumber=0901000001&error_info=${unreadableErrorInfo}`).outcome, 'failed');
    assert.equal(described(`SMSID=u2&SendStatus=5&SendSuccess=1&SendFailed=1&TotalReceiver=2&error_info=${unreadableErrorInfo}`).detail?.inference, 'mixed');
    assert.equal(described('SMSID=u2&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&phonenumber=0901000001&error_info=').outcome, 'succeeded');
    assert.equal(described(sampleQuery('zalo-consulting')).outcome, 'succeeded');
    const plain = 'SMSID=u2&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&phonenumber=0901000001';
    assert.equal(described(plain).eventKey, '5|1|0|1|||0901000001', 'a callback without error_info keeps its key');
  });

  test('a report that counts more recipients outranks a late one that counted fewer', () => {
    // prepare: the fuller report arrived first; the earlier one arrives a minute later
    const fuller = placeStatus(described('SMSID=m&SendStatus=5&SendSuccess=2&SendFailed=1&TotalReceiver=3'), '2025-01-01T10:00:00.000Z');
    const earlier = placeStatus(described('SMSID=m&SendStatus=5&SendSuccess=0&SendFailed=0&TotalReceiver=3'), '2025-01-01T10:01:00.000Z');
    // act / assess
    assert.ok(orderKey(fuller) > orderKey(earlier), `${orderKey(fuller)} should outrank ${orderKey(earlier)}`);
  });

  test('a campaign of thousands: the fully counted report outranks a late one that counted fewer, past any three-digit rank', () => {
    // prepare: 5000 of 5000 counted arrived first; 1000 of 5000 arrives a minute later
    const fuller = placeStatus(described('SMSID=m&SendStatus=5&SendSuccess=5000&SendFailed=0&TotalReceiver=5000'), '2025-01-01T10:00:00.000Z');
    const earlier = placeStatus(described('SMSID=m&SendStatus=5&SendSuccess=1000&SendFailed=0&TotalReceiver=5000'), '2025-01-01T10:01:00.000Z');
    // act / assess
    assert.ok(orderKey(fuller) > orderKey(earlier), `${orderKey(fuller)} should outrank ${orderKey(earlier)}`);
  });

  test('a rejection (4) is never replaced by a later 5 that counted no one yet: the final failure stays final', () => {
    for (const [rejected, uncounted] of [
      ['SMSID=r&SendStatus=4', 'SMSID=r&SendStatus=5&SendSuccess=0&SendFailed=0&TotalReceiver=3'],
      ['SMSID=r&SendStatus=4&phonenumber=0901000001', 'SMSID=r&SendStatus=5&SendSuccess=0&SendFailed=0&TotalReceiver=3&phonenumber=0901000001'],
      ['SMSID=r&SendStatus=4', 'SMSID=r&SendStatus=5&SendSuccess=0&SendFailed=0'],
    ]) {
      // prepare: the rejection arrived first; the 5 that counts nobody a minute later
      const first = described(rejected);
      const late = described(uncounted);
      const subject = { provider: 'esms', subjectId: first.subjectId, ...(first.part ? { part: first.part } : {}) };
      const observe = (facts: EventFacts, at: string) => ({ hash: facts.eventKey, counts: true, source: 'callback' as const, placed: placeStatus(facts, at) });
      // act
      const stored = applyObservations(undefined, subject, [observe(first, '2025-01-01T10:00:00.000Z')], undefined, '2025-01-01T10:00:00.000Z');
      const after = applyObservations(stored, subject, [observe(late, '2025-01-01T10:01:00.000Z')], undefined, '2025-01-01T10:01:00.000Z');
      // assess: what is stored
      assert.deepEqual([after?.status, after?.outcome, after?.terminal], [stored?.status, 'failed', true], uncounted);
    }
  });

  test('a message eSMS has not counted every receiver of yet is asked again, even once an answer confirms it; one fully counted settles', () => {
    // prepare: GetSendStatus answers what the callback said, the state confirmed with that answer
    const settledAfter = (query: string) => {
      const facts = described(query);
      const placed = placeStatus(facts, '2025-01-01T10:00:00.000Z');
      const subject = { provider: 'esms', subjectId: facts.subjectId };
      const answered = applyObservations(undefined, subject, [{ hash: 'answer', counts: false, source: 'status-endpoint', placed }], { kind: 'confirmed', answerStatus: facts.status }, '2025-01-01T10:00:01.000Z')!;
      // act
      const next = withRecheck(answered, { askable: true, limits: esms.lookupLimits, policy: DEFAULT_RECONCILE, now: new Date('2025-01-01T10:00:01.000Z') }, 'event');
      return { settled: settled(next, true), due: next.recheckAt !== undefined, outcome: next.outcome, orderKey: next.orderKey };
    };
    // assess
    for (const counters of ['SendSuccess=100&SendFailed=0&TotalReceiver=169', 'SendSuccess=0&SendFailed=0&TotalReceiver=169']) {
      const partial = settledAfter(`SMSID=m&SendStatus=5&${counters}`);
      assert.deepEqual([partial.settled, partial.due, partial.outcome], [false, true, 'unknown'], `${counters}: counters still to come`);
      const late = placeStatus(described('SMSID=m&SendStatus=7'), '2025-01-01T10:05:00.000Z');
      assert.ok(orderKey(late) < partial.orderKey!, `${counters}: a late 7 (awaiting the report) still never replaces it`);
    }
    for (const counters of ['SendSuccess=169&SendFailed=0&TotalReceiver=169', 'SendSuccess=100&SendFailed=69&TotalReceiver=169']) {
      const full = settledAfter(`SMSID=m&SendStatus=5&${counters}`);
      assert.deepEqual([full.settled, full.due], [true, false], `${counters}: every receiver counted`);
    }
  });

  test('a voice result says nothing of SMS counters: its detail holds SentResult', () => {
    const facts = described(sampleQuery('voice-call-result'));
    assert.deepEqual(facts.detail, { SentResult: '0' });
  });

  test("a voice result's detail holds the call's result (CallStatus) beside SentResult", () => {
    const facts = described('ReferenceId=c1&SendStatus=5&SentResult=1&CallStatus=NO%20ANSWER&CallDuration=0');
    assert.deepEqual(facts.detail, { SentResult: '1', CallStatus: 'NO ANSWER' });
  });
});

describe('eSMS event keys', () => {
  const key = (query: string) => described(query).eventKey;
  const base = 'SMSID=m1&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&TotalPrice=1.0&phonenumber=0901000001';

  test('a retry (the same query) has the same key; the price and parameter order do not matter', () => {
    assert.equal(key(base), key(base));
    assert.equal(key(base), key(base.replace('TotalPrice=1.0', 'TotalPrice=2.0')));
    assert.equal(key(base), key(base.split('&').reverse().join('&')));
  });

  for (const [what, changed] of [
    ['the status', base.replace('SendStatus=5', 'SendStatus=7')],
    ['the counters', base.replace('SendSuccess=1&SendFailed=0', 'SendSuccess=0&SendFailed=1')],
    ['TotalReceiver', base.replace('TotalReceiver=1', 'TotalReceiver=2')],
    ['the recipient', base.replace('phonenumber=0901000001', 'phonenumber=0901000002')],
    ['no recipient', base.replace('&phonenumber=0901000001', '')],
    ['a Zalo error', `${base}&error_info=${encodeURIComponent('{"error":-114}')}`],
    ['another Zalo error', `${base}&error_info=${encodeURIComponent('{"error":"quota"}')}`],
  ] as const) {
    test(`changes with ${what}`, () => {
      assert.notEqual(key(base), key(changed));
    });
  }

  test("a voice call result's key holds its CallStatus: an unanswered call is not a retry of an answered one", () => {
    // prepare
    const call = 'ReferenceId=c1&SendStatus=5&SentResult=1';
    // act
    const [none, empty, answered, notAnswered, noAnswered] = [call, `${call}&CallStatus=`, `${call}&CallStatus=ANSWERED&CallDuration=13`, `${call}&CallStatus=NO%20ANSWER&CallDuration=0`, `${call}&CallStatus=NOANSWERED`].map(key);
    // assess
    assert.equal(none, '5||||1||', 'a call result without CallStatus keeps its key');
    assert.equal(empty, none, 'an empty CallStatus says nothing more');
    assert.equal(new Set([none, answered, notAnswered, noAnswered]).size, 4);
    assert.equal(key(`${call}&CallStatus=A%7CB`).split('|').length, none.split('|').length, 'a CallStatus holding a | adds no segment to the key');
  });

  test('a CallStatus on an SMS callback does not change its key (eSMS sends it only on call results)', () => {
    assert.equal(key(`${base}&CallStatus=ANSWERED`), key(base));
  });

  test('a recipient that looks like the fields before it cannot forge another key', () => {
    // The recipient comes last, and nothing before it holds a "|".
    const a = key('SMSID=m&SendStatus=5&SendSuccess=1&SendFailed=0&phonenumber=1%7C0');
    const b = key('SMSID=m&SendStatus=5&SendSuccess=1&SendFailed=0&phonenumber=1');
    assert.notEqual(a, b);
    assert.equal(a, '5|1|0||||1|0');
  });
});

describe('eSMS method', () => {
  const query = 'SMSID=m1&SendStatus=5&SendSuccess=1';
  const cases = [
    { method: 'GET', status: 200 },
    { method: 'POST', status: 404 },
    { method: 'PUT', status: 404 },
    { method: 'HEAD', status: 404 },
  ];
  for (const { method, status } of cases) {
    test(`${method} is answered ${status}`, async () => {
      // act
      const run = await runIngest(esms, getRequest(query, method));
      // assess
      assert.equal(run.response.statusCode, status);
      assert.equal(run.sent.length, status === 200 ? 1 : 0);
      if (status === 404) assert.deepEqual(run.response.body, { message: 'Not Found' }, 'as API Gateway answers a route it lacks');
    });
  }

  test('a POST with the query in a form body is refused, not read', async () => {
    // prepare
    const request = { ...getRequest('', 'POST'), headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: Buffer.from(query) };
    // act
    const run = await runIngest(esms, request);
    // assess
    assert.equal(run.response.statusCode, 404);
    assert.deepEqual(run.sent, []);
  });

  test('an authentic GET with an empty query is quarantined, not dropped', async () => {
    // act
    const run = await runIngest(esms, getRequest(''));
    // assess
    assert.deepEqual(run.response.body, { received: true, quarantined: true });
    assert.equal(run.messages[0].quarantine?.reason, 'empty query string');
  });
});

describe('eSMS query decoding', () => {
  test('a literal + stays a + (percent-decoding only, not form decoding)', () => {
    // prepare / act
    const query = canonicalQuery('SMSID=abc&SendStatus=5&phonenumber=+84901888484&error_info=%7B%7D');
    // assess
    assert.equal(query.phonenumber, '+84901888484');
    assert.equal(query.error_info, '{}');
  });

  test('a malformed escape is kept as sent instead of failing the callback', () => {
    assert.equal(canonicalQuery('SMSID=ab%ZZ&SendStatus=5').SMSID, 'ab%ZZ');
  });
});

// Status lookup: GetSendStatus, GetSmsReceiverStatus_get and the voice call status.

/** A status answer from eSMS's docs (test/fixtures/esms/status/). */
function statusFixture(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(FIXTURES_DIR, 'esms', 'status', `${name}.json`), 'utf8')) as Record<string, unknown>;
}

/** The kit's secret (API keys tagged "unit"), its endpoints at `baseUrl`. */
function lookupSecret(baseUrl?: string, extra: Record<string, unknown> = {}): EsmsSecret {
  return EsmsSecretSchema.parse({ ...esmsKit.secret('unit', baseUrl === undefined ? {} : { statusEndpoint: baseUrl }), ...extra });
}

const context = (overrides: Partial<LookupContext> = {}): LookupContext => ({ fetch, timeoutMs: 2000, newRequestId: randomUUID, ...overrides });

interface Seen {
  readonly url: URL;
  readonly init?: RequestInit;
}

/** A fetch answering each request with the next of `answers` (the last one repeats), recording what was asked. */
function answering(answers: readonly (unknown | { readonly status: number; readonly body: unknown })[], seen: Seen[] = []): typeof fetch {
  let next = 0;
  return (async (input: string | URL | Request, init?: RequestInit) => {
    seen.push({ url: new URL(String(input instanceof Request ? input.url : input)), init });
    const answer = answers[Math.min(next++, answers.length - 1)];
    const { status, body } = answer && typeof answer === 'object' && 'status' in answer && 'body' in answer ? (answer as { status: number; body: unknown }) : { status: 200, body: answer };
    return new Response(body === null ? null : typeof body === 'string' ? body : JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
}

async function lookup(subject: LookupSubject, secret: EsmsSecret, lookupContext: LookupContext = context()): Promise<StatusAnswer<EsmsCallback>> {
  return esms.lookup!(subject, secret, lookupContext);
}

function foundPayload(answer: StatusAnswer<EsmsCallback>): EsmsCallback {
  assert.equal(answer.kind, 'found', JSON.stringify(answer));
  return (answer as { payload: EsmsCallback }).payload;
}

/** The credential values, and what would show that a URL leaked. */
const LEAKS = [String(esmsKit.secret('unit').apiKey), String(esmsKit.secret('unit').secretKey), 'ApiKey=', 'SecretKey=', 'MainService.svc'];

function assertNoLeak(error: unknown) {
  const text = `${(error as Error).message} ${String((error as Error).stack)} ${JSON.stringify(error)}`;
  for (const leak of LEAKS) assert.ok(!text.includes(leak), `"${leak}" in ${(error as Error).message}`);
  assert.equal((error as Error).cause, undefined, 'no cause that might hold the URL');
}

describe('eSMS status lookup: answers, read as callbacks', () => {
  let simulator: StatusSimulator;
  let secret: EsmsSecret;
  before(async () => {
    simulator = await startStatusSimulator(esmsKit.statusSimulation!(esmsKit.secret('unit')));
    secret = lookupSecret(simulator.baseUrl);
  });
  after(async () => simulator?.stop());

  test("the docs' GetSendStatus answer is a message callback: every value a string, the same subject, no part", async () => {
    // prepare
    const answer = statusFixture('get-send-status-100');
    simulator.report(answer);
    // act
    const payload = foundPayload(await lookup({ subjectId: String(answer.SMSID) }, secret));
    const facts = esms.describe(payload);
    // assess
    assert.deepEqual(payload, { SMSID: '434a124c-7818-4f45-bdf2-7f7b07fff210100', SendStatus: '5', SendSuccess: '1', SendFailed: '0', TotalReceiver: '1', TotalSent: '1', TotalPrice: '850' });
    assert.equal(facts.subjectId, answer.SMSID);
    assert.equal(facts.part, undefined);
    assert.equal(facts.outcome, 'succeeded');
    const [request] = simulator.requests.filter((seen) => seen.subjectId === answer.SMSID);
    assert.deepEqual(request, { subjectId: answer.SMSID, authorized: true, status: 200 });
  });

  for (const sample of listSamples('esms')) {
    test(`sample ${sample.name}: the kit's answer is found on the callback's own subject and part, and confirms it`, async () => {
      // prepare
      const callback = parsed(sample.query!);
      const claim = esms.describe(callback);
      simulator.report(esmsKit.statusAnswer!(sample));
      // act
      const payload = foundPayload(await lookup({ subjectId: claim.subjectId, ...(claim.part === undefined ? {} : { part: claim.part }) }, secret));
      const facts = esms.describe(JSON.parse(JSON.stringify(payload)) as EsmsCallback);
      // assess
      assert.equal(facts.subjectId, claim.subjectId);
      assert.equal(facts.part, claim.part);
      assert.equal(facts.status, claim.status);
      assert.equal(facts.outcome, claim.outcome);
      assert.ok(Object.values(payload).every((value) => typeof value === 'string'), JSON.stringify(payload));
      assert.deepEqual(esms.differences!(callback, payload), []);
    });
  }

  test("a recipient is matched in the docs' receiver list exactly, or as the same number in another spelling", async () => {
    // prepare: the docs' three receivers under one message sent to them
    const smsId = 'recipients-0b7e2f';
    simulator.report({ ...statusFixture('get-send-status-100'), SMSID: smsId, SendSuccess: 1, SendFailed: 2, TotalReceiver: 3, TotalSent: 3, ReceiverList: statusFixture('receiver-status-100').ReceiverList });
    // act
    const asked = async (part: string) => foundPayload(await lookup({ subjectId: smsId, part }, secret));
    const exact = await asked('0918238965');
    const international = await asked('84901888484');
    const plus = await asked('+84765418062');
    // assess
    assert.deepEqual(exact, {
      SMSID: smsId, SendStatus: '5', SendSuccess: '1', SendFailed: '2', TotalReceiver: '3', TotalSent: '3', TotalPrice: '850',
      phonenumber: '0918238965', Phone: '0918238965', IsSent: 'true', SentResult: '0', NetworkName: 'Vinaphone', Retry: '0',
    });
    assert.equal(international.phonenumber, '84901888484', 'the part exactly as asked, so the answer lands on it');
    assert.equal(international.Phone, '0901888484', 'and the number as eSMS lists it');
    assert.deepEqual(
      [exact, international, plus].map((payload) => {
        const facts = esms.describe(payload);
        return [facts.part, facts.outcome, facts.detail?.inference];
      }),
      [
        ['0918238965', 'failed', 'recipient-result'],
        ['84901888484', 'succeeded', 'recipient-result'],
        ['+84765418062', 'failed', 'recipient-result'],
      ],
      "each recipient's own result, where the counters (1 of 3 succeeded) could not say",
    );
    const calls = simulator.requests.filter((seen) => seen.subjectId === smsId);
    assert.equal(calls.length, 6, 'two requests a recipient: the message, then its receiver list');
    assert.ok(calls.every((call) => call.authorized && call.status === 200));
  });

  test('a recipient eSMS lists as not yet sent in a sent message is pending and not final (asked again), never success', async () => {
    // prepare
    const smsId = 'not-sent-5c1d';
    simulator.report({ ...statusFixture('get-send-status-100'), SMSID: smsId, ReceiverList: [{ IsSent: false, Phone: '0901888484', Retry: 0, SentResult: false }] });
    // act
    const payload = foundPayload(await lookup({ subjectId: smsId, part: '0901888484' }, secret));
    const facts = esms.describe(payload);
    // assess
    assert.equal(payload.IsSent, 'false');
    assert.equal(payload.SentResult, undefined, 'a result is read only once sent');
    assert.deepEqual([facts.outcome, facts.terminal], ['pending', false], '"IsSent: false = not yet sent"');
    assert.deepEqual(facts.detail, { inference: 'recipient-not-sent', SendSuccess: '1', SendFailed: '0', TotalReceiver: '1', IsSent: 'false' });
  });

  test('a recipient not in the receiver list, or a number that is not one of its spellings, is not found', async () => {
    // prepare
    const smsId = 'unlisted-9a0c';
    simulator.report({ ...statusFixture('get-send-status-100'), SMSID: smsId, ReceiverList: [{ IsSent: true, Phone: '0381234567', Retry: 0, SentResult: true }] });
    // act
    const answers = await Promise.all(
      [
        '0901888484', // not a recipient
        '01681234567', // the same line before Vietnam's 2018 renumbering (0168 → 038): not guessed
        '1234567', // the last digits only
        '038 123 4567', // spaces
        '0381234567 ', // a trailing space
      ].map((part) => lookup({ subjectId: smsId, part }, secret)),
    );
    // assess
    assert.deepEqual(answers, answers.map(() => ({ kind: 'not_found' })));
  });

  test('a call is asked on the voice endpoint; its answer is a call result callback on the call\'s subject', async () => {
    // prepare
    const answer = statusFixture('voice-status-100');
    simulator.report(answer);
    const subjectId = `voice:${String(answer.ReferenceId)}`;
    // act
    const payload = foundPayload(await lookup({ subjectId }, secret));
    const withPart = await lookup({ subjectId, part: '0901888484' }, secret);
    const facts = esms.describe(payload);
    // assess
    assert.deepEqual(payload, { ReferenceId: '505139D7-54F8-48A9-88FA-9460A78731DD', SendStatus: '5', SentResult: '1', CallDuration: '13', CallStatus: 'ANSWERED', Ivr: '' });
    assert.equal(facts.subjectId, subjectId);
    assert.equal(facts.outcome, 'succeeded');
    assert.deepEqual(withPart, { kind: 'not_found' }, 'a call answer names no callee to check a part against');
    assert.equal(simulator.requests.filter((seen) => seen.subjectId === subjectId).length, 1, 'the part was not asked about');
  });

  test("a call status answer of NOANSWERED (the call failed or nobody picked up) reads as failed, though SentResult is 1", async () => {
    // prepare: the answer as eSMS's docs shape it, for a call nobody answered
    const referenceId = 'unanswered-call-1';
    simulator.report({ ...statusFixture('voice-status-100'), ReferenceId: referenceId, CallStatus: 'NOANSWERED', CallDuration: 0, SentResult: 1 });
    // act
    const facts = esms.describe(foundPayload(await lookup({ subjectId: `voice:${referenceId}` }, secret)));
    // assess
    assert.deepEqual([facts.outcome, facts.terminal], ['failed', true]);
  });

  test("an answered call's claim differs from an answer that nobody picked up; NO ANSWER and NOANSWERED agree", () => {
    // prepare
    const claim = (callStatus: string) => parsed(`ReferenceId=c1&SendStatus=5&SentResult=1&CallStatus=${encodeURIComponent(callStatus)}`);
    const answer = { ReferenceId: 'c1', SendStatus: '5', SentResult: '1', CallDuration: '0', CallStatus: 'NOANSWERED' } as EsmsCallback;
    // act / assess
    assert.deepEqual(esms.differences!(claim('ANSWERED'), answer), ['CallStatus', 'outcome']);
    assert.deepEqual(esms.differences!(claim('NO ANSWER'), answer), []);
    assert.deepEqual(esms.differences!(claim('ANSWERED'), { ...answer, CallStatus: 'ANSWERED' } as EsmsCallback), []);
    assert.deepEqual(esms.differences!(parsed('ReferenceId=c1&SendStatus=5&SentResult=1&CallStatus='), answer), [], 'an empty CallStatus claims nothing');
  });

  test('an SMSID with characters a query string must encode reaches eSMS exactly', async () => {
    // prepare
    const smsId = 'a&b=c+d %/é#?x;y';
    simulator.report({ ...statusFixture('get-send-status-100'), SMSID: smsId });
    // act
    const payload = foundPayload(await lookup({ subjectId: smsId }, secret));
    // assess
    assert.equal(payload.SMSID, smsId);
    assert.deepEqual(simulator.requests.filter((seen) => seen.subjectId === smsId).map((seen) => seen.status), [200]);
  });

  test('an unknown SMSID, call or recipient is not found (105), and nothing is guessed', async () => {
    // act
    const message = await lookup({ subjectId: 'never-sent-1' }, secret);
    const recipient = await lookup({ subjectId: 'never-sent-1', part: '0901888484' }, secret);
    const call = await lookup({ subjectId: 'voice:never-called-1' }, secret);
    // assess
    assert.deepEqual([message, recipient, call], [{ kind: 'not_found' }, { kind: 'not_found' }, { kind: 'not_found' }]);
    assert.equal(simulator.requests.filter((seen) => seen.subjectId === 'never-sent-1').length, 2, 'no receiver list is asked for an unknown message');
  });

  test('wrong keys (101) are a configuration fault naming apiKey and secretKey, never their values nor the URL', async () => {
    // prepare
    simulator.report({ ...statusFixture('get-send-status-100'), SMSID: 'refused-1' });
    const wrong = lookupSecret(simulator.baseUrl, { secretKey: 'unit-wrong-esms-secret-key' });
    // act / assess
    for (const subjectId of ['refused-1', 'voice:refused-call']) {
      const error = await lookup({ subjectId }, wrong).then(() => undefined, (thrown: unknown) => thrown);
      assert.ok(error instanceof ConfigurationError, String(error));
      assert.match(error.message, /code 101/);
      assert.match(error.message, /apiKey and secretKey in the esms secret/);
      assertNoLeak(error);
      assert.ok(!error.message.includes('unit-wrong-esms-secret-key'));
    }
    assert.deepEqual(simulator.requests.filter((seen) => seen.subjectId === 'refused-1').map((seen) => [seen.authorized, seen.status]), [[false, 200]]);
  });

  test('5xx and 429 are dependency faults (retried), and say nothing of the URL', async () => {
    for (const status of [500, 502, 503, 429]) {
      // prepare
      simulator.setFault({ status, times: 1 });
      // act
      const error = await lookup({ subjectId: `fault-${status}` }, secret).then(() => undefined, (thrown: unknown) => thrown);
      // assess
      assert.ok(error instanceof DependencyError, `${status}: ${String(error)}`);
      assert.equal(error.dependency, 'esms');
      assert.match(error.message, new RegExp(`HTTP ${status}`));
      assertNoLeak(error);
    }
  });

  // The endpoint never answers, so only the lookup's own timeout can end it: the message says that
  // timeout fired. The test's timeout only stops a lookup that would wait for ever.
  test('no answer within the timeout is a dependency fault', { timeout: 30_000 }, async () => {
    // prepare
    simulator.setFault({ hang: true, times: 1 });
    // act
    const error = await lookup({ subjectId: 'hangs-1' }, secret, context({ timeoutMs: 150 })).then(() => undefined, (thrown: unknown) => thrown);
    // assess
    assert.ok(error instanceof DependencyError, String(error));
    assert.match(error.message, /no answer within 150 ms/);
    assertNoLeak(error);
  });
});

describe('eSMS status lookup: faults', () => {
  const secret = lookupSecret();
  const message = statusFixture('get-send-status-100');

  async function failure(answers: Parameters<typeof answering>[0], subject: LookupSubject = { subjectId: 'fault-subject' }): Promise<Error> {
    const error = await lookup(subject, secret, context({ fetch: answering(answers) })).then(() => undefined, (thrown: unknown) => thrown);
    assert.ok(error instanceof Error, 'the lookup failed');
    assertNoLeak(error);
    return error;
  }

  const cases: { name: string; answers: Parameters<typeof answering>[0]; subject?: LookupSubject; type: typeof ConfigurationError | typeof DependencyError; says: RegExp }[] = [
    { name: 'GetSendStatus 101 (the docs\' body)', answers: [statusFixture('get-send-status-101')], type: ConfigurationError, says: /code 101 .*apiKey and secretKey/ },
    { name: 'the receiver list 101 (the docs\' body)', answers: [message, statusFixture('receiver-status-101')], subject: { subjectId: 'fault-subject', part: '0901888484' }, type: ConfigurationError, says: /GetSmsReceiverStatus_get answered code 101/ },
    { name: 'the call status 101 (the docs\' body, CodeResult)', answers: [statusFixture('voice-status-101')], subject: { subjectId: 'voice:abc' }, type: ConfigurationError, says: /voice GetSendStatus answered code 101/ },
    { name: '140, IP not whitelisted', answers: [{ CodeResponse: '140' }], type: ConfigurationError, says: /code 140 .*whitelist/ },
    { name: '143, account locked', answers: [{ CodeResponse: 143 }], type: ConfigurationError, says: /code 143 .*inactive or locked/ },
    { name: '160, too many requests a second', answers: [{ CodeResponse: '160' }], type: DependencyError, says: /code 160/ },
    { name: 'an unlisted code', answers: [{ CodeResponse: '99' }], type: DependencyError, says: /code 99/ },
    { name: 'no code', answers: [{ SMSID: 'x' }], type: DependencyError, says: /without CodeResponse or CodeResult/ },
    { name: '200 that is not JSON (an HTML error page)', answers: ['<html>error ApiKey=unit-esms-api-key</html>'], type: DependencyError, says: /not JSON/ },
    { name: '200 that is a JSON array', answers: [[1, 2]], type: DependencyError, says: /not a JSON object/ },
    { name: 'an answer larger than 256 KB', answers: [{ CodeResponse: '100', SMSID: 'x', SendStatus: 5, pad: 'x'.repeat(300 * 1024) }], type: DependencyError, says: /more than 262144 bytes/ },
    { name: '100 without a SendStatus', answers: [{ CodeResponse: '100', SMSID: 'fault-subject' }], type: DependencyError, says: /without a SendStatus/ },
    { name: '100 with a count that is not one', answers: [{ ...message, SendSuccess: -1 }], type: DependencyError, says: /SendSuccess that is not a count/ },
    { name: 'a receiver list that is not a list', answers: [message, { CodeResult: '100', ReceiverList: 'none' }], subject: { subjectId: 'fault-subject', part: '0901888484' }, type: DependencyError, says: /not a list/ },
    { name: 'HTTP 302 (not followed)', answers: [{ status: 302, body: '' }], type: ConfigurationError, says: /HTTP 302, a redirect, not followed .*baseUrl/ },
    { name: 'HTTP 401', answers: [{ status: 401, body: '' }], type: ConfigurationError, says: /HTTP 401: check apiKey, secretKey and baseUrl/ },
    { name: 'HTTP 404 (baseUrl is not eSMS\'s API)', answers: [{ status: 404, body: '' }], type: ConfigurationError, says: /HTTP 404: check baseUrl .*https:\/\/rest\.esms\.vn/ },
    { name: 'HTTP 404 on the voice host', answers: [{ status: 404, body: '' }], subject: { subjectId: 'voice:abc' }, type: ConfigurationError, says: /HTTP 404: check baseUrl/ },
    { name: 'HTTP 408', answers: [{ status: 408, body: '' }], type: DependencyError, says: /HTTP 408/ },
    { name: 'HTTP 204', answers: [{ status: 204, body: null }], type: DependencyError, says: /HTTP 204/ },
  ];
  for (const { name, answers, subject, type, says } of cases) {
    test(`${name}: ${type.name}`, async () => {
      // act
      const error = await failure(answers, subject);
      // assess
      assert.ok(error instanceof type, `${error.name}: ${error.message}`);
      assert.match(error.message, says);
    });
  }

  test('a network error is a dependency fault told by its code, never by the message fetch wrote (it can hold the URL)', async () => {
    // prepare: fetch's own error, as undici words some of them, with the URL inside
    const failing = (async (input: string | URL | Request) => {
      throw new TypeError(`fetch failed for ${String(input)}`, { cause: Object.assign(new Error(`connect ECONNREFUSED ${String(input)}`), { code: 'ECONNREFUSED' }) });
    }) as typeof fetch;
    // act
    const error = await lookup({ subjectId: 'net-1' }, secret, context({ fetch: failing })).then(() => undefined, (thrown: unknown) => thrown);
    // assess
    assert.ok(error instanceof DependencyError, String(error));
    assert.equal(error.message, 'eSMS GetSendStatus unreachable: network error (ECONNREFUSED)');
    assertNoLeak(error);
  });

  test('a closed port is a dependency fault', async () => {
    // prepare: a port that was just free
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    // act
    const error = await lookup({ subjectId: 'closed-1' }, lookupSecret(`http://127.0.0.1:${port}`)).then(() => undefined, (thrown: unknown) => thrown);
    // assess
    assert.ok(error instanceof DependencyError, String(error));
    assert.match(error.message, /network error/);
    assertNoLeak(error);
  });

  test('a redirect is not followed: the keys never reach where it points', async () => {
    // prepare: a stand-in that redirects to another server
    const elsewhere: string[] = [];
    const target = createServer((request, response) => {
      elsewhere.push(request.url ?? '');
      response.end('{}');
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    const redirecting: Server = createServer((request, response) => {
      response.writeHead(307, { location: `http://127.0.0.1:${(target.address() as AddressInfo).port}${request.url}` });
      response.end();
    });
    await new Promise<void>((resolve) => redirecting.listen(0, '127.0.0.1', resolve));
    try {
      // act
      const error = await lookup({ subjectId: 'redirected-1' }, lookupSecret(`http://127.0.0.1:${(redirecting.address() as AddressInfo).port}`)).then(() => undefined, (thrown: unknown) => thrown);
      // assess
      assert.ok(error instanceof ConfigurationError, String(error));
      assert.match(error.message, /HTTP 307, a redirect, not followed/);
      assert.deepEqual(elsewhere, []);
    } finally {
      await Promise.all([new Promise((resolve) => redirecting.close(resolve)), new Promise((resolve) => target.close(resolve))]);
    }
  });

  test('without both keys the lookup refuses to ask, naming the fields', async () => {
    // prepare
    const seen: Seen[] = [];
    const keyless = EsmsSecretSchema.parse({ token: 'unit-token' });
    // act
    const error = await lookup({ subjectId: 'x' }, keyless, context({ fetch: answering([message], seen) })).then(() => undefined, (thrown: unknown) => thrown);
    // assess
    assert.ok(error instanceof ConfigurationError);
    assert.match(error.message, /needs apiKey and secretKey/);
    assert.deepEqual(seen, []);
  });

  test('an answer about another SMSID keeps its own id, so the worker sees it is not about this subject', async () => {
    // act
    const payload = foundPayload(await lookup({ subjectId: 'asked-1' }, secret, context({ fetch: answering([{ ...message, SMSID: 'other-2' }]) })));
    const echoInOtherCase = foundPayload(await lookup({ subjectId: 'abc-DEF' }, secret, context({ fetch: answering([{ ...message, SMSID: 'ABC-def' }]) })));
    // The docs print a call's ReferenceId in upper case; a callback may send it in lower case.
    const call = statusFixture('voice-status-100');
    const callSubject = `voice:${String(call.ReferenceId).toLowerCase()}`;
    const callAnswer = foundPayload(await lookup({ subjectId: callSubject }, secret, context({ fetch: answering([call]) })));
    // assess
    assert.equal(esms.describe(payload).subjectId, 'other-2');
    assert.equal(esms.describe(echoInOtherCase).subjectId, 'abc-DEF', 'an id that differs only in case is the same GUID');
    assert.equal(esms.describe(callAnswer).subjectId, callSubject);
  });
});

describe('eSMS status requests: where, how, and when they may be made', () => {
  test('the URLs are the documented ones, with the keys in the query string, and the request neither follows redirects nor waits forever', async () => {
    // prepare
    const seen: Seen[] = [];
    const secret = EsmsSecretSchema.parse({ token: 'unit-token', apiKey: 'K-1', secretKey: 'S-2' });
    const message = statusFixture('get-send-status-100');
    const fetchAll = answering([message, message, statusFixture('receiver-status-100'), statusFixture('voice-status-100')], seen);
    // act
    await lookup({ subjectId: 'M 1' }, secret, context({ fetch: fetchAll }));
    await lookup({ subjectId: 'M 1', part: '0901888484' }, secret, context({ fetch: fetchAll }));
    await lookup({ subjectId: 'voice:505139d7-54f8-48a9-88fa-9460a78731dd' }, secret, context({ fetch: fetchAll }));
    // assess
    assert.deepEqual(seen.map((request) => request.url.href), [
      'https://rest.esms.vn/MainService.svc/json/GetSendStatus?RefId=M+1&ApiKey=K-1&SecretKey=S-2',
      'https://rest.esms.vn/MainService.svc/json/GetSendStatus?RefId=M+1&ApiKey=K-1&SecretKey=S-2',
      'https://rest.esms.vn/MainService.svc/json/GetSmsReceiverStatus_get?ApiKey=K-1&SecretKey=S-2&RefId=M+1',
      'https://voiceapi.esms.vn/MainService.svc/json/GetSendStatus?ApiKey=K-1&SecretKey=S-2&ReferenceId=505139d7-54f8-48a9-88fa-9460a78731dd',
    ]);
    for (const { init } of seen) {
      assert.equal(init?.method, 'GET');
      assert.equal(init?.redirect, 'manual');
      assert.ok(init?.signal instanceof AbortSignal);
    }
  });

  test('baseUrl may be a stand-in with a path; the voice host follows it unless set, and is eSMS\'s own only beside eSMS\'s own', async () => {
    // prepare
    const seen: Seen[] = [];
    const standIn = EsmsSecretSchema.parse({ token: 't', apiKey: 'k', secretKey: 's', baseUrl: 'http://127.0.0.1:8080/esms/' });
    const voice = statusFixture('voice-status-100');
    // act
    await lookup({ subjectId: 'voice:x' }, standIn, context({ fetch: answering([voice], seen) }));
    await lookup({ subjectId: 'm' }, standIn, context({ fetch: answering([statusFixture('get-send-status-100')], seen) }));
    // assess
    assert.deepEqual(seen.map((request) => `${request.url.origin}${request.url.pathname}`), [
      'http://127.0.0.1:8080/esms/MainService.svc/json/GetSendStatus',
      'http://127.0.0.1:8080/esms/MainService.svc/json/GetSendStatus',
    ]);
    assert.equal(esmsVoiceBaseUrl(EsmsSecretSchema.parse({ token: 't' })), 'https://voiceapi.esms.vn');
    assert.equal(esmsVoiceBaseUrl(EsmsSecretSchema.parse({ token: 't', baseUrl: 'http://127.0.0.1:9/' })), 'http://127.0.0.1:9/');
    assert.equal(esmsVoiceBaseUrl(EsmsSecretSchema.parse({ token: 't', baseUrl: 'http://127.0.0.1:9', voiceBaseUrl: 'https://voice.example' })), 'https://voice.example');
  });

  test('canLookup only with both keys; a secret with the token alone is still valid (existing deployments)', () => {
    // prepare
    const secrets = {
      tokenOnly: { token: 't' },
      apiKeyOnly: { token: 't', apiKey: 'k' },
      secretKeyOnly: { token: 't', secretKey: 's' },
      both: { token: 't', apiKey: 'k', secretKey: 's' },
    };
    // act
    const asked = Object.fromEntries(Object.entries(secrets).map(([name, secret]) => [name, esms.canLookup!(EsmsSecretSchema.parse(secret))]));
    // assess
    assert.deepEqual(asked, { tokenOnly: false, apiKeyOnly: false, secretKeyOnly: false, both: true });
    assert.equal(canAsk(esms, EsmsSecretSchema.parse(secrets.both)), true);
    assert.deepEqual(EsmsSecretSchema.parse(secrets.tokenOnly), { token: 't' }, 'read as before: no default written into it');
    assert.equal(esmsBaseUrl(EsmsSecretSchema.parse(secrets.tokenOnly)), 'https://rest.esms.vn');
    assert.equal(EsmsSecretSchema.safeParse({ token: 't', apiKey: 'REPLACE_ME', secretKey: 's' }).success, false, 'a placeholder is not a key');
    assert.equal(EsmsSecretSchema.safeParse({ token: 't', baseUrl: 'ftp://esms.vn' }).success, false);
  });

  test('eSMS is asked on arrival, from a minute after for an expected message, and for 7 days', () => {
    assert.deepEqual(esms.lookupLimits, { onArrival: true, firstAfterSeconds: 60, horizonHours: 168, perSecond: 5 });
    assert.equal(esms.callbackTrust, 'token');
  });
});

describe('matching a recipient to the receiver list', () => {
  const receiver = (phone: string, sentResult = true) => ({ phone, isSent: true, sentResult });
  const cases: { name: string; list: ReturnType<typeof receiver>[]; part: string; match?: string }[] = [
    { name: 'exactly', list: [receiver('0901888484')], part: '0901888484', match: '0901888484' },
    { name: '84… for 0…', list: [receiver('0901888484')], part: '84901888484', match: '0901888484' },
    { name: '+84… for 0…', list: [receiver('0901888484')], part: '+84901888484', match: '0901888484' },
    { name: '0… for 84…', list: [receiver('84901888484')], part: '0901888484', match: '84901888484' },
    { name: 'a foreign number without its +', list: [receiver('14155550100')], part: '+14155550100', match: '14155550100' },
    { name: 'a Zalo user id, exactly', list: [receiver('5308693166941955879')], part: '5308693166941955879', match: '5308693166941955879' },
    { name: 'the exact entry before another spelling', list: [receiver('84901888484', false), receiver('0901888484', true)], part: '0901888484', match: '0901888484' },
    { name: 'the same number listed twice with the same result', list: [receiver('84901888484'), receiver('0901888484')], part: '+84901888484', match: '84901888484' },
    { name: 'not: the same number listed twice with different results', list: [receiver('84901888484', false), receiver('0901888484', true)], part: '+84901888484' },
    { name: 'not: a renumbered line (0168… → 038…)', list: [receiver('0381234567')], part: '01681234567' },
    { name: 'not: the last digits only', list: [receiver('0901888484')], part: '901888484' },
    { name: 'not: spaces', list: [receiver('0901888484')], part: '0901 888 484' },
    { name: 'not: another country code for the same digits', list: [receiver('0901888484')], part: '+1901888484' },
    { name: 'not: an empty list', list: [], part: '0901888484' },
  ];
  for (const { name, list, part, match } of cases) {
    test(name, () => {
      assert.equal(matchReceiver(list, part)?.phone, match);
    });
  }
});

describe('eSMS claims judged against answers (differences)', () => {
  const cases: { name: string; claim: string; answer: string; differences: string[] }[] = [
    { name: 'the same message', claim: 'SMSID=m&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1', answer: 'SMSID=m&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&TotalSent=1', differences: [] },
    { name: 'a claimed success that failed', claim: 'SMSID=m&SendStatus=5&SendSuccess=1&SendFailed=0', answer: 'SMSID=m&SendStatus=5&SendSuccess=0&SendFailed=1&TotalReceiver=1', differences: ['SendSuccess', 'SendFailed', 'outcome'] },
    { name: 'an earlier status (the claim is behind)', claim: 'SMSID=m&SendStatus=7', answer: 'SMSID=m&SendStatus=5&SendSuccess=1&SendFailed=0', differences: ['SendStatus'] },
    { name: 'counters written differently (001 = 1)', claim: 'SMSID=m&SendStatus=5&SendSuccess=001&SendFailed=0', answer: 'SMSID=m&SendStatus=5&SendSuccess=1&SendFailed=0', differences: [] },
    { name: 'a count the answer lacks', claim: 'SMSID=m&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1', answer: 'SMSID=m&SendStatus=5&SendSuccess=1&SendFailed=0', differences: ['TotalReceiver'] },
    { name: "mixed counters claim no recipient's outcome: the receiver list's result is news", claim: 'SMSID=m&SendStatus=5&SendSuccess=1&SendFailed=1&TotalReceiver=2&phonenumber=0901888484', answer: 'SMSID=m&SendStatus=5&SendSuccess=1&SendFailed=1&TotalReceiver=2&phonenumber=0901888484&IsSent=true&SentResult=1', differences: [] },
    { name: 'a recipient claimed failed that succeeded', claim: `${sampleQuery('zalo-error').replace(/SMSID=[^&]+/, 'SMSID=m')}`, answer: 'SMSID=m&SendStatus=5&SendSuccess=0&SendFailed=1&TotalReceiver=1&phonenumber=0901888484&IsSent=true&SentResult=1', differences: ['outcome'] },
    { name: 'a recipient claimed delivered that eSMS has not sent yet', claim: 'SMSID=m&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&phonenumber=0901888484', answer: 'SMSID=m&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&phonenumber=0901888484&IsSent=false', differences: ['outcome'] },
    { name: 'a call claimed answered that was not', claim: 'ReferenceId=c&SendStatus=5&SentResult=1&CallStatus=ANSWERED', answer: 'ReferenceId=c&SendStatus=5&SentResult=0&CallStatus=NOANSWERED', differences: ['SentResult', 'CallStatus', 'outcome'] },
    { name: 'a call claimed sent, without its result, that was not sent', claim: 'ReferenceId=c&SendStatus=5&SentResult=1', answer: 'ReferenceId=c&SendStatus=5&SentResult=0', differences: ['SentResult'] },
  ];
  for (const { name, claim, answer, differences } of cases) {
    test(name, () => {
      assert.deepEqual(esms.differences!(parsed(claim), parsed(answer)), differences);
    });
  }
});

describe("a recipient's own result in the payload (the receiver list's answer)", () => {
  const base = 'SMSID=m&SendStatus=5&SendSuccess=1&SendFailed=1&TotalReceiver=2&phonenumber=0901888484';
  test('SentResult 1 / 0 decide a recipient, over counters that cannot', () => {
    assert.deepEqual([described(`${base}&IsSent=true&SentResult=1`), described(`${base}&IsSent=true&SentResult=0`), described(base)].map((facts) => [facts.outcome, facts.detail?.inference]), [
      ['succeeded', 'recipient-result'],
      ['failed', 'recipient-result'],
      ['unknown', 'mixed'],
    ]);
  });

  test('only for a recipient of a sent message: the message as a whole, and a message not sent yet, read as before', () => {
    assert.equal(described('SMSID=m&SendStatus=5&SendSuccess=1&SendFailed=1&TotalReceiver=2&SentResult=1').outcome, 'unknown');
    assert.equal(described(`${base.replace('SendStatus=5', 'SendStatus=7')}&IsSent=true&SentResult=1`).outcome, 'pending');
  });

  test('each reading is its own event; a callback without these fields keeps its key', () => {
    // act
    const keysOf = [base, `${base}&IsSent=true`, `${base}&IsSent=true&SentResult=1`, `${base}&IsSent=true&SentResult=0`, `${base}&IsSent=false`].map((query) => described(query).eventKey);
    // assess
    assert.equal(keysOf[0], '5|1|1|2|||0901888484');
    assert.equal(keysOf[1], keysOf[0], 'sent, no result: read from the counters, as the callback is');
    assert.equal(new Set([keysOf[0], ...keysOf.slice(2)]).size, 4);
  });
});
