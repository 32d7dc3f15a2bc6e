import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { placeStatus, resolveEventKey, unstorableKeyReason } from '../../functions/core/events.ts';
import { shortHash } from '../../functions/shared/hash.ts';
import { applyObservations, type StateItem } from '../../functions/core/state.ts';
import { identomat, IdentomatSecretSchema, type IdentomatCallback } from '../../functions/providers/identomat.ts';
import { INSTRUCTION_LIMITS, type CallbackRequest, type EventFacts } from '../../functions/providers/provider.ts';
import { listSamples } from '../../local/samples.ts';
import { identomatCallbackJson } from '../providers/identomat.ts';
import { UNIT_SECRETS } from '../support/unit-ingest.ts';

const secret = IdentomatSecretSchema.parse(UNIT_SECRETS.identomat);
const KEY = secret.callbackApiKey;

function request(body: Buffer | string, receivedAt = '2025-01-01T10:00:00.000Z'): CallbackRequest {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: Buffer.from(body),
    rawQuery: '',
    sourceIp: '203.0.113.10',
    requestId: 'unit',
    receivedAt,
  };
}

/** A sample's JSON without its key, as `parse` hands it on. */
function sample(name: string): Record<string, unknown> {
  const found = listSamples('identomat').find((candidate) => candidate.name === name);
  assert.ok(found?.body, `no sample identomat/${name}`);
  const { callbackApiKey: _key, ...rest } = JSON.parse(found.body.toString('utf8')) as Record<string, unknown>;
  return rest;
}

/** The payload `parse` makes of a body carrying the right key. */
function parsed(json: Record<string, unknown>): IdentomatCallback {
  const result = identomat.parse(request(JSON.stringify({ callbackApiKey: KEY, ...json })));
  assert.ok(result.ok, `does not parse: ${result.ok ? '' : `${result.reason} ${result.issues.join('; ')}`}`);
  return result.payload;
}

const describeJson = (json: Record<string, unknown>): EventFacts => identomat.describe(parsed(json));

/**
 * Callbacks through what the worker does with them, in the order received: the stored event key
 * (`resolveEventKey`) and the state (`applyObservations`), as functions/core/worker.ts applies them.
 */
function receive(bodies: readonly Record<string, unknown>[], start = Date.parse('2025-01-01T10:00:00Z')) {
  let state: StateItem | undefined;
  const stored: string[] = [];
  bodies.forEach((body, index) => {
    const facts = describeJson(body);
    const receivedAt = new Date(start + index * 1000).toISOString();
    const { eventKey, isChange } = resolveEventKey(facts, state, receivedAt);
    const hash = shortHash(eventKey);
    // Known: remembered by the state, or (once it remembers only the latest) stored as an event item.
    if (state?.recent.includes(hash) || stored.includes(eventKey)) return;
    stored.push(eventKey);
    const placed = facts.placesStatus === false ? {} : { placed: placeStatus(facts, receivedAt) };
    state =
      applyObservations(state, { provider: 'identomat', subjectId: facts.subjectId }, [{ hash, counts: true, source: 'callback', ...placed, ...(isChange ? { isChange } : {}) }], undefined, receivedAt) ??
      state;
  });
  return { state, stored };
}

const session = (result: string, sessionId = 'sess-1') => ({ type: 'session-change', sessionId, result });

describe('identomat session-change: the result is the current status', () => {
  const cases = [
    { result: 'APPROVED', status: 'APPROVED', outcome: 'succeeded', terminal: true },
    { result: 'REJECTED', status: 'REJECTED', outcome: 'failed', terminal: true },
    { result: 'MANUAL_CHECK', status: 'MANUAL_CHECK', outcome: 'pending', terminal: false },
    { result: 'ADDITIONAL_INFORMATION_REQUESTED', status: 'ADDITIONAL_INFORMATION_REQUESTED', outcome: 'pending', terminal: false },
    { result: 'approved', status: 'APPROVED', outcome: 'succeeded', terminal: true },
    { result: 'Manual_Check', status: 'MANUAL_CHECK', outcome: 'pending', terminal: false },
    { result: 'APPROVED_PENDING_REVIEW', status: 'APPROVED_PENDING_REVIEW', outcome: 'pending', terminal: false },
    { result: '', status: 'UNKNOWN', outcome: 'pending', terminal: false },
  ];
  for (const { result, status, outcome, terminal } of cases) {
    test(`result ${JSON.stringify(result)} reads as ${status}: ${outcome}${terminal ? ', terminal' : ''}, reported as the current status`, () => {
      // act
      const facts = describeJson(session(result));
      // assess
      assert.equal(facts.status, status);
      assert.equal(facts.outcome, outcome);
      assert.equal(facts.terminal, terminal);
      assert.equal(facts.reportsCurrent, true);
      assert.notEqual(facts.placesStatus, false);
      assert.equal(facts.eventKey, `session-change|${status}`);
    });
  }

  test('a KYB session keeps its sessionType in the detail; a KYC session has none', () => {
    // act
    const kyb = describeJson(sample('session-change-kyb-rejected'));
    const kyc = describeJson(sample('session-change-approved'));
    // assess
    assert.deepEqual(kyb.detail, { sessionType: 'KYB' });
    assert.equal(kyc.detail, undefined);
  });

  test('APPROVED → REJECTED → APPROVED ends APPROVED, with three events', () => {
    // act
    const { state, stored } = receive([session('APPROVED'), session('REJECTED'), session('APPROVED')]);
    // assess
    assert.equal(state?.status, 'APPROVED');
    assert.equal(state?.outcome, 'succeeded');
    assert.equal(state?.eventCount, 3);
    assert.deepEqual(stored, ['session-change|APPROVED|#1', 'session-change|REJECTED|#2', 'session-change|APPROVED|#3']);
  });

  test('REJECTED → ADDITIONAL_INFORMATION_REQUESTED moves the session back to pending', () => {
    // act
    const { state } = receive([session('REJECTED'), session('ADDITIONAL_INFORMATION_REQUESTED')]);
    // assess
    assert.equal(state?.status, 'ADDITIONAL_INFORMATION_REQUESTED');
    assert.equal(state?.outcome, 'pending');
    assert.equal(state?.terminal, false);
  });

  test('a retry of the change in place (any case) adds no event', () => {
    // act
    const { state, stored } = receive([session('MANUAL_CHECK'), session('APPROVED'), session('APPROVED'), session('approved')]);
    // assess
    assert.equal(state?.status, 'APPROVED');
    assert.equal(state?.eventCount, 2);
    assert.deepEqual(stored, ['session-change|MANUAL_CHECK|#1', 'session-change|APPROVED|#2']);
  });
});

describe('identomat video-call-status-update: distinct per room and file', () => {
  const base = sample('video-call-status-update');

  test('the key names the room, its status, the composition, the file status and the file id', () => {
    // act
    const facts = describeJson(base);
    // assess
    assert.equal(facts.eventKey, 'video-call-status-update|room-31f9|ended|completed|available|vf-77aa');
    assert.equal(facts.placesStatus, false, 'a video update says nothing about the session status');
    assert.equal(facts.status, 'video:ended/available');
  });

  for (const name of ['roomId', 'roomStatus', 'compositionStatus', 'videoFileStatus', 'videoFileId']) {
    test(`another ${name} is another event`, () => {
      // prepare
      const other = { ...base, [name]: 'other-value' };
      // act
      const a = describeJson(base);
      const b = describeJson(other);
      // assess
      assert.notEqual(b.eventKey, a.eventKey);
      assert.equal(b.subjectId, a.subjectId);
    });
  }

  test('a room that ended empty (null fields) and the same room with a file are two events', () => {
    // act
    const empty = describeJson(sample('video-call-status-update-room-empty'));
    const file = describeJson(base);
    // assess
    assert.equal(empty.eventKey, 'video-call-status-update|room-31f9|empty|-|-|-');
    assert.notEqual(empty.eventKey, file.eventKey);
  });

  const hostile: [string, unknown][] = [
    ['an object whose toString is not a function', { toString: 1, valueOf: {} }],
    ['an array', ['vf-1', 'vf-2']],
    ['a number', 77],
    ['a boolean', true],
    ['the string "77"', '77'],
    ['an empty string', ''],
    ['a "|" separator', 'a|b'],
    ['a "#" prefix', '#abc'],
    ['a lone surrogate', 'vf-\ud800'],
    ['text of 100,000 characters', 'v'.repeat(100_000)],
    ['a 5,000-deep array', JSON.parse(`${'['.repeat(5_000)}${']'.repeat(5_000)}`)],
    ['a "__proto__" member', JSON.parse('{"__proto__":{"polluted":true}}')],
  ];
  for (const [what, value] of hostile) {
    test(`${what} in every key field: describe answers, with a bounded, storable key of its own`, () => {
      // prepare
      const payload = { ...parsed(base), roomId: value, compositionStatus: value, videoFileId: value } as IdentomatCallback;
      // act
      const facts = identomat.describe(payload);
      // assess
      assert.equal(unstorableKeyReason(facts), undefined);
      assert.ok(Buffer.byteLength(facts.eventKey) <= 200, `key of ${Buffer.byteLength(facts.eventKey)} bytes`);
      assert.equal(facts.eventKey.split('|').length, 6, `the value adds no segment: ${facts.eventKey}`);
      assert.notEqual(facts.eventKey, describeJson(base).eventKey);
    });
  }

  test('values that differ only in type or in a lone surrogate give different keys', () => {
    // prepare
    const keyFor = (videoFileId: unknown) => identomat.describe({ ...parsed(base), videoFileId } as IdentomatCallback).eventKey;
    // act
    const keys = [keyFor(77), keyFor('77'), keyFor('x\ud800'), keyFor('x\udfff'), keyFor('x?'), keyFor(null), keyFor('-'), keyFor('')];
    // assess
    assert.equal(new Set(keys).size, keys.length, keys.join('\n'));
  });
});

describe('identomat OTP and link instructions: distinct per destination and text', () => {
  const otp = sample('one-time-password');

  test('the same text to another number is another event; to the same number it is a retry', () => {
    // act
    const first = describeJson(otp);
    const retry = describeJson({ ...otp });
    const otherNumber = describeJson({ ...otp, phoneNumber: '+995599000111' });
    // assess
    assert.equal(retry.eventKey, first.eventKey);
    assert.notEqual(otherNumber.eventKey, first.eventKey);
  });

  test('the key shows no number, address, code, text or link: instruction events publish it (eventKey), and consumers may log it', () => {
    // prepare: every instruction sample, and one with an e-mail address
    const bodies = ['one-time-password', 'share-session-link-via-sms', 'email-one-time-password-request'].map(sample);
    bodies.push({ ...sample('email-one-time-password-request'), email: 'person@example.com', text: 'Your code is 4242' });
    for (const body of bodies) {
      // act
      const { eventKey } = describeJson(body);
      // assess
      const shown = [body.phoneNumber, body.email, body.text, body.sessionLink, String(body.text ?? '').match(/\d{4,}/)?.[0]].filter((value): value is string => typeof value === 'string' && value.length > 0);
      assert.ok(shown.length > 0, 'the control: the body carries something to hide');
      for (const value of shown) assert.ok(!eventKey.includes(value) && !eventKey.includes(value.replace(/^\+/, '')), `${eventKey} shows ${value}`);
      assert.match(eventKey, /^[a-z-]+\|to:[0-9a-f]{16}\|[0-9a-f]{16}$/);
    }
  });

  test('another text or link to the same destination is another event', () => {
    // prepare
    const link = sample('share-session-link-via-sms');
    // act
    const keys = [
      describeJson(otp).eventKey,
      describeJson({ ...otp, text: 'Your code is 1234' }).eventKey,
      describeJson(link).eventKey,
      describeJson({ ...link, sessionLink: 'https://widget.identomat.com/?session_token=other' }).eventKey,
    ];
    // assess
    assert.equal(new Set(keys).size, 4);
  });

  test('e-mail instructions are distinct per address', () => {
    // prepare
    const email = sample('email-one-time-password-request');
    // act
    const a = describeJson(email);
    const b = describeJson({ ...email, email: 'someone-else@example.com' });
    // assess
    assert.notEqual(a.eventKey, b.eventKey);
  });

  test('the key holds hashes only: no phone number, address, code or link', () => {
    // prepare
    const bodies = [otp, sample('share-session-link-via-sms'), sample('email-one-time-password-request')];
    // act
    const keys = bodies.map((body) => describeJson(body).eventKey);
    // assess
    for (const key of keys) {
      assert.match(key, /^[a-z-]+\|to:[0-9a-f]{16}\|[0-9a-f]{16}$/);
      for (const secretText of ['995512345678', '6867', '4412', 'applicant', 'example.com', 'session_token']) assert.ok(!key.includes(secretText), `${key} holds ${secretText}`);
    }
  });

  test('an instruction is sensitive and never places the session status', () => {
    // act
    const facts = describeJson(otp);
    const { state } = receive([session('APPROVED', String(otp.sessionId)), otp, { ...otp, phoneNumber: '+995599000111' }]);
    // assess
    assert.equal(facts.sensitive, true);
    assert.equal(facts.placesStatus, false);
    assert.equal(state?.status, 'APPROVED');
    assert.equal(state?.eventCount, 3);
  });

  test('hostile destination values never make describe throw', () => {
    // prepare
    const values: unknown[] = [{ toString: 1 }, [1, 2], 995512345678, JSON.parse(`${'['.repeat(5_000)}${']'.repeat(5_000)}`), 'x\ud800'];
    // act
    const keys = values.map((phoneNumber) => identomat.describe({ ...parsed(otp), phoneNumber } as IdentomatCallback).eventKey);
    // assess
    assert.equal(new Set(keys).size, values.length);
  });
});

describe('identomat type values are the strings they are', () => {
  for (const type of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', 'one-time-password-request']) {
    test(`type ${JSON.stringify(type)}`, () => {
      // prepare
      const body = `{"callbackApiKey":${JSON.stringify(KEY)},"type":${JSON.stringify(type)},"sessionId":"sess-proto","phoneNumber":"+995512345678"}`;
      // act
      const result = identomat.parse(request(body));
      // assess
      assert.ok(result.ok);
      const expected = type === 'one-time-password-request' ? 'one-time-password' : type;
      assert.equal(result.payload.type, expected);
      const facts = identomat.describe(result.payload);
      assert.equal(facts.status, expected);
      assert.ok(facts.eventKey.startsWith(`${expected}|`), facts.eventKey);
      assert.equal(unstorableKeyReason(facts), undefined);
    });
  }

  test('an unlisted type is stored and counted, distinct per content, without placing the status', () => {
    // act
    const a = describeJson({ type: 'session-archived', sessionId: 'sess-x', note: 'a' });
    const b = describeJson({ type: 'session-archived', sessionId: 'sess-x', note: 'b' });
    // assess
    assert.notEqual(a.eventKey, b.eventKey);
    assert.equal(a.placesStatus, false);
    assert.equal(a.sensitive, undefined);
    assert.equal(describeJson({ type: 'sms-request', sessionId: 'sess-x', text: 'code 1234', phoneNumber: '+995512345678' }).sensitive, true);
  });

  test('an unlisted type nested deeper than JSON.stringify goes is distinct per content too (was one key: the second callback was taken for a retry of the first and never stored)', () => {
    // prepare: two callbacks that differ only 20,000 levels down
    const deep = (value: string) => `{"callbackApiKey":${JSON.stringify(KEY)},"type":"session-archived","sessionId":"sess-deep","note":${'['.repeat(20_000)}"${value}"${']'.repeat(20_000)}}`;
    const facts = ['a', 'b'].map((value) => {
      const result = identomat.parse(request(deep(value)));
      assert.ok(result.ok, result.ok ? '' : result.reason);
      return identomat.describe(result.payload);
    });
    // act
    const stored = facts.map((each) => resolveEventKey(each, undefined, '2025-01-01T10:00:00.000Z').eventKey);
    // assess
    assert.notEqual(stored[0], stored[1], 'two callbacks, two events');
    assert.equal(facts[0].eventKey, identomat.describe((identomat.parse(request(deep('a'))) as { payload: IdentomatCallback }).payload).eventKey, 'a retry is the same event');
  });
});

describe('identomat strings that name stored items', () => {
  for (const field of ['sessionId', 'type', 'result']) {
    test(`a lone UTF-16 surrogate in ${field} is refused by the schema (quarantined at ingest, not found unstorable later)`, () => {
      // prepare
      const json = { ...session('APPROVED'), [field]: 'x\ud800' };
      // act
      const result = identomat.parse(request(JSON.stringify({ callbackApiKey: KEY, ...json })));
      // assess
      assert.equal(result.ok, false);
      assert.match(result.ok ? '' : result.issues.join('\n'), new RegExp(`${field}: lone UTF-16 surrogate`));
    });
  }
});

describe('identomat instructions nobody could send are quarantined, not stored where no event or relay carries them', () => {
  const cases: [string, string, Record<string, unknown>, RegExp][] = [
    ['a phone number written as a number', 'one-time-password', { phoneNumber: 995555123457 }, /destination/],
    ['no phone number', 'one-time-password', { phoneNumber: undefined }, /destination/],
    ['an empty phone number', 'share-session-link-via-sms', { phoneNumber: '' }, /destination/],
    ['a phone number too long to be one', 'one-time-password', { phoneNumber: '+'.padEnd(INSTRUCTION_LIMITS.field + 1, '9') }, /destination/],
    ['a text no SMS sender takes', 'one-time-password', { text: 'x'.repeat(INSTRUCTION_LIMITS.text + 1) }, /text is at most/],
    ['an e-mail code with no address', 'email-one-time-password-request', { email: undefined }, /destination/],
  ];
  for (const [name, type, changes, why] of cases) {
    test(`${type}: ${name}`, () => {
      // prepare
      const json: Record<string, unknown> = { ...sample(type), ...changes };
      for (const [key, value] of Object.entries(changes)) if (value === undefined) delete json[key];
      // act
      const result = identomat.parse(request(JSON.stringify({ callbackApiKey: KEY, ...json })));
      // assess: refused by the schema (so quarantined, kept whole and alarmed); was answered and stored, and no one told
      assert.equal(result.ok, false);
      assert.match(result.ok ? '' : result.issues.join('\n'), why);
    });
  }

  test('the samples, as Identomat sends them, are instructions', () => {
    for (const type of ['one-time-password', 'share-session-link-via-sms', 'email-one-time-password-request']) {
      const result = identomat.parse(request(JSON.stringify({ callbackApiKey: KEY, ...sample(type) })));
      assert.ok(result.ok && identomat.instruction!(result.payload), type);
    }
  });
});

describe('identomat authenticate: the key is checked before the body is parsed', () => {
  /** JSON.parse calls during `run`, by the length of the text parsed. */
  function parsesDuring<T>(run: () => T): { result: T; lengths: number[] } {
    const original = JSON.parse;
    const lengths: number[] = [];
    JSON.parse = ((text: string, reviver?: Parameters<typeof JSON.parse>[1]) => {
      lengths.push(String(text).length);
      return original(text, reviver);
    }) as typeof JSON.parse;
    try {
      return { result: run(), lengths };
    } finally {
      JSON.parse = original;
    }
  }

  const large = [
    ['nested 100,000 deep', `${'['.repeat(100_000)}${']'.repeat(100_000)}`],
    ['25,000 members', `{${Array.from({ length: 25_000 }, (_, i) => `"k${i}":${i}`).join(',')}}`],
    ['a 250,000-character string', JSON.stringify('a'.repeat(250_000))],
  ];
  for (const [what, filler] of large) {
    test(`a forged body of ${what} is refused without parsing it`, () => {
      // prepare
      const wrong = `{"callbackApiKey":"${KEY}x","type":"session-change","sessionId":"s1","result":"APPROVED","x":${filler}}`;
      const missing = `{"type":"session-change","sessionId":"s1","result":"APPROVED","x":${filler}}`;
      // act
      const refused = parsesDuring(() => identomat.authenticate(request(wrong), secret));
      const keyless = parsesDuring(() => identomat.authenticate(request(missing), secret));
      // assess
      assert.deepEqual(refused.result, { ok: false, reason: 'wrong callbackApiKey' });
      assert.deepEqual(keyless.result, { ok: false, reason: 'missing callbackApiKey' });
      assert.ok([...refused.lengths, ...keyless.lengths].every((length) => length < 1_100), `parsed texts of ${[...refused.lengths, ...keyless.lengths].join(', ')} characters`);
    });
  }

  const accepted = [
    ['as the sender writes it', `{"callbackApiKey":"${KEY}","type":"session-change","sessionId":"s1","result":"APPROVED"}`],
    ['with escaped slashes (PHP json_encode)', `{"callbackApiKey":"${KEY.replace('-', '\\/')}","type":"session-change","sessionId":"s1"}`],
    ['with \\u escapes throughout', `{"callbackApiKey":"${[...KEY].map((ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}","type":"session-change","sessionId":"s1"}`],
    ['pretty-printed, last', `{\n  "type": "session-change",\n  "sessionId": "s1",\n  "callbackApiKey" :\t"${KEY}"\n}`],
    ['after a wrong duplicate (the last duplicate is the member)', `{"callbackApiKey":"${KEY}x","type":"session-change","callbackApiKey":"${KEY}"}`],
  ];
  for (const [how, body] of accepted) {
    test(`a genuine key ${how} authenticates`, () => {
      // prepare
      const secretFor = how.startsWith('with escaped') ? IdentomatSecretSchema.parse({ callbackApiKey: KEY.replace('-', '/') }) : secret;
      // act
      const result = identomat.authenticate(request(body), secretFor);
      // assess
      assert.deepEqual(result, { ok: true });
    });
  }

  const refused = [
    ['only nested in another member', `{"type":"session-change","data":{"callbackApiKey":"${KEY}"}}`, 'callbackApiKey is not a member of the body'],
    ['followed by a wrong duplicate', `{"callbackApiKey":"${KEY}","type":"session-change","callbackApiKey":"${KEY}x"}`, 'wrong callbackApiKey'],
    ['inside a string value', JSON.stringify({ type: 'session-change', text: `"callbackApiKey":"${KEY}"` }), 'missing callbackApiKey'],
    ['in an array body', `[{"callbackApiKey":"${KEY}"}]`, 'callbackApiKey is not a member of the body'],
    ['in a body that is not JSON', `{"callbackApiKey":"${KEY}",`, 'cannot read callbackApiKey: body is not valid JSON'],
    ['as a number', '{"callbackApiKey":12345,"type":"session-change"}', 'wrong callbackApiKey'],
    ['repeated 2,000 times', `{"callbackApiKey":"${KEY.repeat(2_000)}"}`, 'wrong callbackApiKey'],
    ['upper-cased', `{"callbackApiKey":"${KEY.toUpperCase()}"}`, 'wrong callbackApiKey'],
  ];
  for (const [how, body, reason] of refused) {
    test(`the key ${how} is refused`, () => {
      // act
      const result = identomat.authenticate(request(body), secret);
      // assess
      assert.deepEqual(result, { ok: false, reason });
    });
  }

  test('during a rotation the previous key is accepted and a third one is not', () => {
    // prepare
    const rotating = IdentomatSecretSchema.parse({ callbackApiKey: 'new-key-1', previous: { callbackApiKey: 'old-key-0' } });
    const body = (key: string) => `{"callbackApiKey":"${key}","type":"session-change","sessionId":"s1"}`;
    // act
    const results = ['new-key-1', 'old-key-0', 'other-key-2'].map((key) => identomat.authenticate(request(body(key)), rotating).ok);
    // assess
    assert.deepEqual(results, [true, true, false]);
  });
});

describe('identomat mayBeSensitive: what a quarantined body may carry', () => {
  const raw = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));
  const cases: [string, Buffer, boolean][] = [
    ['an OTP instruction without its sessionId', raw({ ...sample('one-time-password'), sessionId: undefined }), true],
    ['a link instruction with an over-long sessionId', raw({ ...sample('share-session-link-via-sms'), sessionId: 'x'.repeat(500) }), true],
    ['an instruction type in upper case', raw({ type: 'ONE-TIME-PASSWORD', sessionId: 's' }), true],
    ['a body without a type that holds a phone number', raw({ sessionId: 's', to: '+995 512 34 56 78' }), true],
    ['a session-change with an e-mail address deep inside', raw({ type: 'session-change', result: 'x'.repeat(80), extra: { list: [{ who: 'a@example.com' }] } }), true],
    ['a session-change with a link', raw({ type: 'session-change', extra: 'see https://example.com' }), true],
    ['a session-change with a member named like a code', raw({ type: 'session-change', result: 'x'.repeat(80), otp: 'abc' }), true],
    ['a body that is not JSON', raw('{"type":"one-time-password",'), true],
    ['a body that is not UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), true],
    ['a JSON array', raw([1, 2]), true],
    ['a session-change whose result is too long', raw({ type: 'session-change', sessionId: 'wwb83rh1se22wd81z0tx8bqlerljq5kgf6rxem1q', result: 'R'.repeat(80) }), false],
    ['a video update without its sessionId', raw({ ...sample('video-call-status-update'), sessionId: undefined }), false],
    ['a session-change with a key redacted', raw('{"callbackApiKey":"[REDACTED]","type":"session-change","result":7}'), false],
  ];
  for (const [what, body, expected] of cases) {
    test(`${what}: ${expected ? 'may carry a contact' : 'does not'}`, () => {
      // act
      const result = identomat.mayBeSensitive?.(body);
      // assess
      assert.equal(result, expected);
    });
  }
});

describe('identomat sessions over time (property)', () => {
  test('whatever the sequence, the latest result received is the status, and each change, file and message is one event', () => {
    // prepare: sequences for one session (results repeating, rooms with several files, messages to
    // several destinations, prototype-named types), as the hostile-input fuzzer also sends them
    const sequences = fc.array(identomatCallbackJson(fc, fc.constant('prop-session')), { minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(sequences, (callbacks) => {
        // act
        const { state, stored } = receive(callbacks.map(({ json }) => json));
        // assess, against a model that knows nothing of event keys
        let current: string | undefined;
        let changes = 0;
        const others = new Set<string>();
        for (const { json, kind } of callbacks) {
          if (kind === 'session-change') {
            const result = String(json.result).replace(/[a-z]/g, (letter) => letter.toUpperCase());
            if (result !== current) changes += 1;
            current = result;
          } else {
            others.add(JSON.stringify({ ...json, type: json.type === 'one-time-password-request' ? 'one-time-password' : json.type }));
          }
        }
        assert.equal(state?.status, current);
        assert.equal(state?.changes ?? 0, changes);
        assert.equal(state?.eventCount, changes + others.size);
        assert.equal(new Set(stored).size, stored.length);
        for (const key of stored) assert.equal(unstorableKeyReason({ subjectId: 'prop-session', eventKey: key }), undefined);
      }),
      { seed: 20_250_101, numRuns: 500 },
    );
  });
});
