import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { QueueMessage } from '../../functions/core/queue-message.ts';
import { confirmationNote, shownItem, stateLines } from '../../local/inspect-view.ts';
import { DEFAULT_RECONCILE, withRecheckFault } from '../../functions/core/reconcile.ts';
import type { StateItem } from '../../functions/core/state.ts';
import { getProvider } from '../../functions/providers/index.ts';
import { FIXTURES_DIR } from '../../local/samples.ts';
import { leaks } from '../support/log-leaks.ts';

/** What `npm run inspect` shows of a stored item: phone numbers masked unless --show-sensitive. */

/** An event item as the worker stores it (its payload as DynamoDB gives it back: numbers as numbers). */
function eventItem(provider: string, subjectId: string, payload: Record<string, unknown>): Record<string, unknown> {
  return { pk: `SUBJECT#${provider}#${subjectId}`, sk: 'EVENT#k', provider, subjectId, eventKey: 'k', status: 'COMPLETED', receivedAt: '2026-01-01T12:00:00.000Z', payload };
}

describe('shownItem: a phone number a provider sends as a JSON number', () => {
  // Every documented phone field is text (TemboPlus receiverAccount "string", TeleSign's MO
  // phone_number, Identomat's phoneNumber), but no schema holds the provider to it: the field is
  // kept as sent, and a number in it is stored as a number (a Standard Webhooks sender's own fields too).
  const cases: { provider: string; subjectId: string; payload: Record<string, unknown>; number: string; at: (shown: Record<string, unknown>) => unknown }[] = [
    {
      // The Transaction Status body (docs/temboplus-callback-notification.txt), receiverAccount a mobile number.
      provider: 'temboplus',
      subjectId: 'PR-1',
      payload: { partnerReference: 'PR-1', status: 'COMPLETED', statusCode: 'PAYMENT_SUCCESS', senderAmount: 100, receiverAmount: 250000, exchangeRate: 2500, transactionFee: 0, receiverAccount: 255712345678, receiverChannel: 'MOBILE' },
      number: '255712345678',
      at: (payload) => payload.receiverAccount,
    },
    {
      provider: 'telesign',
      subjectId: '0123456789ABCDEF0123456789ABCDEF',
      payload: { ...(JSON.parse(readFileSync(join(FIXTURES_DIR, 'telesign', 'inbound-mo-sms.json'), 'utf8')) as object), user_response: { sender_id: '4442', phone_number: 11234567890, mo_message: 'Start' } },
      number: '11234567890',
      at: (payload) => (payload.user_response as Record<string, unknown>).phone_number,
    },
    {
      provider: 'standard-webhooks',
      subjectId: 'acme/c-1',
      payload: { type: 'contact.created', timestamp: '2022-11-03T20:26:10.344522Z', data: { id: 'c-1', phoneNumber: 995512345678 } },
      number: '995512345678',
      at: (payload) => (payload.data as Record<string, unknown>).phoneNumber,
    },
  ];

  for (const { provider, subjectId, payload, number, at } of cases) {
    test(`${provider}: masked to its last three digits, as the same number in text is; --show-sensitive shows it as stored`, () => {
      // prepare
      const item = eventItem(provider, subjectId, payload);
      // act
      const shown = shownItem(item, false);
      const asStored = shownItem(item, true);
      // assess
      assert.ok(!leaks(JSON.stringify(shown), number), JSON.stringify(shown));
      assert.equal(at(shown.payload as Record<string, unknown>), `${'*'.repeat(number.length - 3)}${number.slice(-3)}`);
      assert.equal(at(asStored.payload as Record<string, unknown>), Number(number));
    });
  }

  test("TemboPlus's amounts, rate and fee stay readable numbers", () => {
    // act
    const shown = shownItem(eventItem('temboplus', 'PR-1', cases[0].payload), false).payload as Record<string, unknown>;
    // assess
    assert.deepEqual([shown.senderAmount, shown.receiverAmount, shown.exchangeRate, shown.transactionFee], [100, 250000, 2500, 0]);
  });
});

describe("shownItem: a payload's keys", () => {
  test('a number a payload names as a key (a sender\'s per-recipient map) is masked as the same number as a value is', () => {
    // prepare: a Standard Webhooks sender's own fields are its own; one keys its statuses by recipient
    const recipients = { '+84901888484': 'delivered', '0901 888 485': 'failed', 'c-1': 'queued' };
    const item = eventItem('standard-webhooks', 'acme/c-1', { type: 'sms.sent', data: { id: 'c-1', recipients } });
    // act
    const shown = shownItem(item, false).payload as { data: { recipients: Record<string, unknown> } };
    // assess
    assert.ok(!leaks(JSON.stringify(shown), '84901888484') && !leaks(JSON.stringify(shown), '0901 888 485'), JSON.stringify(shown));
    assert.deepEqual(shown.data.recipients, { '********484': 'delivered', '*******485': 'failed', 'c-1': 'queued' });
    assert.deepEqual((shownItem(item, true).payload as typeof shown).data.recipients, recipients);
  });

  test('two keys that mask alike are both shown, the second told apart', () => {
    // prepare: two recipients whose numbers end alike
    const item = eventItem('standard-webhooks', 'acme/c-1', { data: { recipients: { '+84901888484': 'delivered', '+84902777484': 'failed' } } });
    // act
    const shown = shownItem(item, false).payload as { data: { recipients: Record<string, unknown> } };
    // assess
    assert.deepEqual(shown.data.recipients, { '********484': 'delivered', '********484 (2)': 'failed' });
  });
});

describe("shownItem: a quarantined callback's message", () => {
  /** A quarantine item as the worker stores it: the gateway's fields beside the whole queue message. */
  function quarantineItem(query: string, reason: string): { item: Record<string, unknown>; message: QueueMessage } {
    const message: QueueMessage = {
      v: 1,
      provider: 'esms',
      receivedAt: '2026-01-01T12:00:00.000Z',
      requestId: 'Kq3Z8x1234567890aBcD',
      sourceIp: '203.113.152.10',
      method: 'GET',
      headers: { 'user-agent': 'eSMS-callback/1.0' },
      raw: { query },
      quarantine: { reason, issues: [reason] },
    };
    const { receivedAt, requestId, sourceIp } = message;
    const item = { pk: 'QUARANTINE#esms', sk: 'QUARANTINE#1a2b3c', provider: 'esms', reason, issues: [reason], receivedAt, requestId, sourceIp, message: JSON.stringify(message) };
    return { item, message };
  }
  const sample = readFileSync(join(FIXTURES_DIR, 'esms', 'invalid', 'smsid-voice-prefix.query'), 'utf8').trim();
  // A ReferenceId under eSMS's "voice:" prefix, escaped in the query: a GUID eSMS made up, whose groups
  // 4000-8307 the rules would read as a number were it not read as the id it is.
  const query = sample.replace(/SMSID=voice%3A[0-9a-f-]+/, 'SMSID=voice%3A333edd22-5cf7-4000-8307-0d908a5f9d25');
  const reason = 'payload does not match the schema (SMSID: an SMSID cannot start with "voice:")';

  test("the gateway's own fields are shown as the item shows them: the source IP, the request id, the time", () => {
    // prepare
    const { item, message } = quarantineItem(query, reason);
    // act
    const shown = shownItem(item, false);
    // assess
    const inMessage = JSON.parse(String(shown.message)) as QueueMessage;
    assert.equal(shown.sourceIp, message.sourceIp);
    assert.deepEqual([inMessage.sourceIp, inMessage.requestId, inMessage.receivedAt, inMessage.method], [message.sourceIp, message.requestId, message.receivedAt, 'GET']);
  });

  test('the query keeps the ids eSMS made up readable, even behind an escape, and masks the recipient however it is encoded', () => {
    for (const spelled of ['0901888484', '0901%20888%20484', '0901+888+484']) {
      // prepare
      assert.ok(query.includes('phonenumber=0901888484'));
      const { item } = quarantineItem(query.replace('phonenumber=0901888484', `phonenumber=${spelled}`), reason);
      // act
      const inMessage = JSON.parse(String(shownItem(item, false).message)) as QueueMessage;
      // assess
      assert.ok(inMessage.raw.query.includes('SMSID=voice%3A333edd22-5cf7-4000-8307-0d908a5f9d25&'), inMessage.raw.query);
      assert.ok(inMessage.raw.query.endsWith('&phonenumber=*******484'), `${spelled}: ${inMessage.raw.query}`);
      assert.ok(inMessage.raw.query.includes('&TotalReceiver=1&TotalSent=1&RequestId=&TypeId=23&telcoid=2&'), inMessage.raw.query);
    }
  });

  test('a body kept in base64 (not UTF-8, as a Latin-1 "café" is) is masked in the bytes it spells, the rest of them as received', () => {
    // prepare: ingest keeps a body that is not UTF-8 as bodyBase64; base64 decodes to the number in full
    const body = Buffer.concat([Buffer.from('{"to":"+84901888484","text":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]);
    const { item } = quarantineItem(query, reason);
    const message = { ...(JSON.parse(String(item.message)) as QueueMessage), raw: { bodyBase64: body.toString('base64') } };
    // act
    const shown = JSON.parse(String(shownItem({ ...item, message: JSON.stringify(message) }, false).message)) as QueueMessage;
    const asStored = JSON.parse(String(shownItem({ ...item, message: JSON.stringify(message) }, true).message)) as QueueMessage;
    // assess
    const bytes = Buffer.from(String(shown.raw.bodyBase64), 'base64');
    assert.ok(!leaks(bytes.toString('latin1'), '84901888484'), bytes.toString('latin1'));
    assert.deepEqual(bytes, Buffer.concat([Buffer.from('{"to":"********484","text":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]));
    assert.equal(asStored.raw.bodyBase64, body.toString('base64'));
  });

  test('a UTF-8 body kept in base64 (the smaller form of one heavy with escapes) is masked as its text is: a no-break space is a separator', () => {
    // prepare
    const body = Buffer.from('{"to":"0901\u00a0888\u00a0484","pad":"\u0000\u0000"}', 'utf8');
    const { item } = quarantineItem(query, reason);
    const message = { ...(JSON.parse(String(item.message)) as QueueMessage), raw: { bodyBase64: body.toString('base64') } };
    // act
    const shown = JSON.parse(String(shownItem({ ...item, message: JSON.stringify(message) }, false).message)) as QueueMessage;
    // assess
    assert.equal(Buffer.from(String(shown.raw.bodyBase64), 'base64').toString('utf8'), '{"to":"*******484","pad":"\u0000\u0000"}');
  });

  test("a body's JSON escapes are read as the characters they spell: a no-break space a serializer wrote as \\u00a0 still separates a number's groups", () => {
    // prepare: Python's json.dumps escapes every character past ASCII by default (ensure_ascii)
    const body = '{"to": "+995\\u00a0512\\u00a0345\\u00a0678", "tab": "0901\\t888\\t484", "note": "caf\\u00e9 \\\\u0030"}';
    const { item } = quarantineItem(query, reason);
    const message = { ...(JSON.parse(String(item.message)) as QueueMessage), raw: { body } };
    // act
    const shown = JSON.parse(String(shownItem({ ...item, message: JSON.stringify(message) }, false).message)) as QueueMessage;
    // assess
    assert.equal(shown.raw.body, '{"to": "*********678", "tab": "*******484", "note": "caf\\u00e9 \\\\u0030"}');
  });

  test('--show-sensitive shows the message as stored', () => {
    // prepare
    const { item } = quarantineItem(query, reason);
    // act / assess
    assert.equal(shownItem(item, true).message, item.message);
  });
});

describe("shownItem: a state's detail", () => {
  test("the provider's text kept beside a status (a TemboPlus statusCode that contradicts COMPLETED) is masked as the status is", () => {
    // prepare: statusCode is TemboPlus's free text (up to 64 characters), kept in detail when it contradicts the status
    const state = { pk: 'SUBJECT#temboplus#PR-1', sk: 'STATE', provider: 'temboplus', subjectId: 'PR-1', status: 'COMPLETED', outcome: 'unknown', detail: { statusCode: 'PAID_TO_255712345678', contradicts: 'status' } };
    // act
    const shown = shownItem(state, false);
    // assess
    assert.ok(!leaks(JSON.stringify(shown), '255712345678'), JSON.stringify(shown));
    assert.deepEqual(shown.detail, { statusCode: 'PAID_TO_*********678', contradicts: 'status' });
    assert.deepEqual(shownItem(state, true).detail, state.detail);
  });

  test('counts and labels stay as they are', () => {
    // prepare: an eSMS state's detail (its SendSuccess, SendFailed and TotalReceiver, how SendStatus 5 was read)
    const detail = { inference: 'per-recipient', SendSuccess: '1', SendFailed: '0', TotalReceiver: '169' };
    // act / assess
    assert.deepEqual(shownItem({ sk: 'STATE', provider: 'esms', subjectId: 'dc712784-9c5f-4c69-b9a8-ea69d56adc9a87', detail }, false).detail, detail);
  });
});

describe('shownItem: the headers an event item keeps', () => {
  test('a phone number in a header the sender chose (a webhook-id, a request id) is masked; --show-sensitive shows it as stored', () => {
    // prepare: the kept headers as ingest keeps them (content type, user agent, the sender's ids)
    const headers = { 'content-type': 'application/json', 'user-agent': 'Svix-Webhooks/1.0', 'webhook-id': 'msg_+255712345678' };
    const item = { ...eventItem('standard-webhooks', 'acme/c-1', { type: 'contact.created', data: { id: 'c-1' } }), headers };
    // act
    const shown = shownItem(item, false);
    const asStored = shownItem(item, true);
    // assess
    assert.ok(!leaks(JSON.stringify(shown), '255712345678'), JSON.stringify(shown));
    assert.deepEqual(shown.headers, { ...headers, 'webhook-id': 'msg_*********678' });
    assert.deepEqual(asStored.headers, headers);
  });

  test("Standard Webhooks' webhook-timestamp, a time ingest checked, is shown as stored, on an event item and in a quarantined message", () => {
    // prepare: the seconds since 1970 the signature covers, ten digits that the phone rule would mask
    const headers = { 'content-type': 'application/json', 'webhook-id': 'msg_+255712345678', 'webhook-timestamp': '1764758218' };
    const event = { ...eventItem('standard-webhooks', 'acme/c-1', { type: 'contact.created', data: { id: 'c-1' } }), headers };
    const message = { v: 1, provider: 'standard-webhooks', receivedAt: '2026-01-01T12:00:00.000Z', requestId: 'r-1', sourceIp: '203.0.113.10', method: 'POST', headers, raw: { body: '{}' } };
    const quarantined = { pk: 'QUARANTINE#standard-webhooks', sk: 'Q#1', provider: 'standard-webhooks', reason: 'no subject', message: JSON.stringify(message) };
    // act
    const shownEvent = shownItem(event, false).headers as Record<string, string>;
    const shownMessage = (JSON.parse(String(shownItem(quarantined, false).message)) as { headers: Record<string, string> }).headers;
    // assess
    for (const shown of [shownEvent, shownMessage]) {
      assert.equal(shown['webhook-timestamp'], '1764758218');
      assert.equal(shown['webhook-id'], 'msg_*********678');
    }
  });
});

describe('stateLines: what inspect says was asked and answered', () => {
  const temboplus = getProvider('temboplus');
  const createdAt = '2026-01-01T10:00:00.000Z';
  const claimed: StateItem = {
    provider: 'temboplus',
    subjectId: 'PR-FAULTS-1',
    status: 'SUBMITTED',
    outcome: 'pending',
    terminal: false,
    createdAt,
    updatedAt: createdAt,
    changedAt: createdAt,
    eventCount: 1,
    recent: [],
    seen: 1,
    version: 1,
  };

  test('a subject whose status endpoint failed every time until re-checks ran out: said so, never "not asked"', () => {
    // prepare: the endpoint refuses (403) every re-check, past the horizon
    let state = claimed;
    let now = Date.parse(createdAt);
    for (let n = 0; n < 1_000 && !state.stale; n++) {
      now += 30 * 60_000;
      state = withRecheckFault(state, { askable: true, policy: DEFAULT_RECONCILE, now: new Date(now) }, 'TemboPlus status endpoint answered 403: check apiToken and baseUrl in the temboplus secret');
    }
    assert.equal(state.stale, true, 'the schedule ended');
    // act
    const text = stateLines(temboplus, state as unknown as Record<string, unknown>, '').join('\n');
    // assess
    assert.doesNotMatch(text, /was not asked/);
    assert.match(text, /confirmation none/);
    assert.match(text, new RegExp(`failed the last ${state.recheckFaults} time\\(s\\): TemboPlus status endpoint answered 403`));
  });

  test('a subject whose endpoint was never asked (no credentials) still says so', () => {
    // act
    const text = stateLines(temboplus, { ...claimed, terminal: true } as unknown as Record<string, unknown>, '').join('\n');
    // assess
    assert.match(text, /was not asked/);
  });

  test('an answer about another subject: the mismatch says what differs, though the answer named no status for this one', () => {
    // prepare: as a re-check records an `other-subject` answer
    const state = { ...claimed, confirmation: 'mismatch', differences: ['subject'], confirmedAt: '2026-01-01T10:05:00.000Z' };
    // act
    const text = stateLines(temboplus, state as unknown as Record<string, unknown>, '').join('\n');
    // assess
    assert.match(text, /confirmation mismatch \(.*differs in subject\) at 2026-01-01T10:05:00.000Z/);
  });

  test('an answer of another status: the status said, with what differs', () => {
    // prepare
    const state = { ...claimed, confirmation: 'mismatch', confirmedStatus: 'FAILED', differences: ['status', 'senderAmount'], confirmedAt: '2026-01-01T10:05:00.000Z' };
    // act
    const text = stateLines(temboplus, state as unknown as Record<string, unknown>, '').join('\n');
    // assess
    assert.match(text, /confirmation mismatch \(provider says FAILED, differs in status, senderAmount\) at 2026-01-01T10:05:00.000Z/);
  });

  test('a subject confirmed pending, whose endpoint then failed until re-checks ran out: the STALE line says why', () => {
    // prepare: SUBMITTED confirmed by a first answer, every re-check after it refused
    let state: StateItem = { ...claimed, confirmation: 'confirmed', confirmedStatus: 'SUBMITTED', confirmedAt: createdAt };
    let now = Date.parse(createdAt);
    for (let n = 0; n < 1_000 && !state.stale; n++) {
      now += 30 * 60_000;
      state = withRecheckFault(state, { askable: true, policy: DEFAULT_RECONCILE, now: new Date(now) }, 'status endpoint answered 503');
    }
    // act
    const text = stateLines(temboplus, state as unknown as Record<string, unknown>, '').join('\n');
    // assess
    assert.match(text, /STALE .*the status endpoint failed the last \d+ time\(s\): status endpoint answered 503/);
  });
});

describe("confirmationNote: a timeline line's confirmation, a claim the provider does not confirm said to be not believed", () => {
  const claim = (confirmation: string, confirmedStatus?: string) => ({ source: 'callback', status: 'COMPLETED', outcome: 'succeeded', confirmation, ...(confirmedStatus ? { confirmedStatus } : {}) });

  test('an unsigned claim the endpoint does not know, or contradicts, is said to be not believed (its outcome=succeeded is not the status)', () => {
    assert.equal(confirmationNote('token', claim('not_found')), '  confirmation=not_found (not confirmed by the provider: not taken as the status)');
    assert.equal(confirmationNote('token', claim('mismatch', 'FAILED')), '  confirmation=mismatch→FAILED (not confirmed by the provider: not taken as the status)');
  });
  test('a confirmed claim, and a signed callback whatever its verdict (believed as it comes), carry no such note', () => {
    assert.equal(confirmationNote('token', claim('confirmed', 'COMPLETED')), '  confirmation=confirmed→COMPLETED');
    assert.equal(confirmationNote('signed', claim('not_found')), '  confirmation=not_found');
    assert.equal(confirmationNote('signed', claim('mismatch', '203')), '  confirmation=mismatch→203');
  });
  test('a callback stored unconfirmed after the endpoint failed says so; one never asked says nothing', () => {
    assert.equal(confirmationNote('token', { source: 'callback', askFault: 'status 503' }), '  not confirmed on arrival (status 503)');
    assert.equal(confirmationNote('token', { source: 'callback' }), '');
  });
});
