import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { keys } from '../../functions/core/pipeline-definition.ts';
import { orderKey } from '../../functions/core/state.ts';
import { placeStatus } from '../../functions/core/events.ts';
import { canonicalQuery, decodeErrorInfo, esms, type EsmsCallback } from '../../functions/providers/esms.ts';
import type { CallbackRequest, EventFacts } from '../../functions/providers/provider.ts';
import { listSamples } from '../../local/samples.ts';
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
    { name: '5 (promo sample: nothing counted of 169 receivers)', query: sampleQuery('promotion'), outcome: 'unknown', terminal: true },
    { name: '5 (zalo-error sample: error -114)', query: sampleQuery('zalo-error'), outcome: 'failed', terminal: true },
    { name: '5 (zalo-by-uid sample: error 0, SendSuccess 1)', query: sampleQuery('zalo-by-uid'), outcome: 'succeeded', terminal: true },
    { name: '5 (viber sample: SendSuccess 1)', query: sampleQuery('viber'), outcome: 'succeeded', terminal: true },
    { name: '5, voice call with SentResult 0', query: sampleQuery('voice-call-result'), outcome: 'failed', terminal: true },
    { name: '5, voice call with SentResult 1', query: sampleQuery('voice-call-result').replace('SentResult=0', 'SentResult=1'), outcome: 'succeeded', terminal: true },
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

  test('a report that counts more recipients outranks a late one that counted fewer', () => {
    // prepare: the fuller report arrived first; the earlier one arrives a minute later
    const fuller = placeStatus(described('SMSID=m&SendStatus=5&SendSuccess=2&SendFailed=1&TotalReceiver=3'), '2025-01-01T10:00:00.000Z');
    const earlier = placeStatus(described('SMSID=m&SendStatus=5&SendSuccess=0&SendFailed=0&TotalReceiver=3'), '2025-01-01T10:01:00.000Z');
    // act / assess
    assert.ok(orderKey(fuller) > orderKey(earlier), `${orderKey(fuller)} should outrank ${orderKey(earlier)}`);
  });

  test('a voice result says nothing of SMS counters: its detail holds SentResult', () => {
    const facts = described(sampleQuery('voice-call-result'));
    assert.deepEqual(facts.detail, { SentResult: '0' });
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
