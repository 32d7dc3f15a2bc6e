import assert from 'node:assert/strict';
import { createHash, createHmac, hkdfSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { deliveryReportJoin, NUMBER_KEY_LABEL, numberHash, numberKey, parseCountryCodes, positionOf, REFERENCE_FROM_REPORT, type ReportJoinDependencies, sendsTo, sharedCodeWarnings } from '../../functions/core/relay.ts';
import type { Item } from '../../functions/core/store.ts';
import { workerHandlerOptions } from '../../functions/handlers/dependencies.ts';
import { identomat } from '../../functions/providers/identomat.ts';
import type { AnyProvider } from '../../functions/providers/provider.ts';
import { telesign } from '../../functions/providers/telesign.ts';
import { relayLine } from '../../local/relay-view.ts';
import { createLogger } from '../../functions/shared/log.ts';
import { ConfigurationError } from '../../functions/shared/errors.ts';

/** The relay's pure rules: which countries it sends to, and how instructions of one subject are ordered. */

describe('relayAllowedCountryCodes', () => {
  test('"any" (in any case) is every country; codes are read with or without +, spaces, repeats dropped', () => {
    assert.equal(parseCountryCodes('any'), undefined);
    assert.equal(parseCountryCodes(' ANY '), undefined);
    assert.deepEqual(parseCountryCodes('995, +255,1,995'), ['995', '255', '1']);
  });

  test('anything else is refused, naming the bad part', () => {
    for (const [text, bad] of [['', ''], ['995;255', '995;255'], ['995,georgia', 'georgia'], ['0', '0'], ['2345', '2345'], ['995,', '']] as const) {
      assert.throws(() => parseCountryCodes(text), new RegExp(`^Error: "${bad}" is not a country calling code`), text);
    }
  });

  test('a prefix of several countries, or a part of one, is refused with what to write instead: every code passed is exact', () => {
    const refused: [string, RegExp][] = [
      ['4', /world zone of several countries/],
      ['35', /shared by the 35x countries: write all three digits, e\.g\. 350/],
      ['99', /shared by the 99x countries/],
      ['441', /a part of \+44: write 44/],
      ['2345', /1 to 3 digits/],
      ['12', /\+1 and a whole area code/],
      ['141', /\+1 and a whole area code/],
      ['11234', /\+1 and a whole area code/],
      ['1123', /\+1 and a whole area code/],
      ['77777', /\+7 and at most three more digits/],
      ['28', /not assigned/],
      ['830', /not assigned/],
    ];
    for (const [code, why] of refused) assert.throws(() => parseCountryCodes(code), why, code);
    // Georgia, Tanzania, the UK, the NANP, Russia/Kazakhstan, Egypt, Brazil, Hong Kong, Uzbekistan
    assert.deepEqual(parseCountryCodes('995,255,44,1,7,20,55,852,998'), ['995', '255', '44', '1', '7', '20', '55', '852', '998']);
  });

  test('+1 and +7 are several countries: an area inside them can be allowed, and allowing them whole is warned about', () => {
    // +1 201 and +1 212 (New York, New Jersey), +1 876 (Jamaica) written with + and a space; Kazakhstan
    const allowed = parseCountryCodes('1201, 1212, +1 876, 77')!;
    assert.deepEqual(allowed, ['1201', '1212', '1876', '77']);
    assert.ok(sendsTo(allowed, '+1 (212) 555-0100'));
    assert.ok(!sendsTo(['1201', '1212'], '+1 876 555 0123'), 'Jamaica is not New York');
    assert.ok(!sendsTo(['77'], '+7 912 345 6789'), 'Russia is not Kazakhstan');
    assert.deepEqual(sharedCodeWarnings(parseCountryCodes('44,1201')), []);
    assert.match(sharedCodeWarnings(parseCountryCodes('44,1')).join(' '), /North American Numbering Plan.*Jamaica \+1 876.*list their area codes/);
    assert.match(sharedCodeWarnings(parseCountryCodes('7')).join(' '), /Russia and Kazakhstan/);
    assert.deepEqual(sharedCodeWarnings(undefined), []);
  });

  test('a number is in a country when its digits begin with the calling code, however it is written', () => {
    const georgia = ['995'];
    for (const number of ['+995512345678', '995512345678', '+995 (512) 34.56.78', '+995\u00a0512\u00a0345\u00a0678']) assert.ok(sendsTo(georgia, number), number);
    for (const number of ['+1 415 555 0100', '+99551', '+9', 'not a number 995512345678', '+995-512-345-678x12']) assert.equal(sendsTo(georgia, number), number === '+99551', number);
    assert.ok(sendsTo(['1', '44'], '+1 (415) 555-0100'));
    assert.ok(!sendsTo(['1', '44'], '+4915112345678'), 'Germany is not the UK');
  });

  test('in +1 and +7 a number has ten digits after the code: more or fewer after an allowed area is no number there, and is refused', () => {
    // +1 201 and ten digits is New Jersey; with three more it is no NANP number, though its digits
    // still begin 1201 (without the leading 1, they read as an Egyptian mobile, +20 1234567890).
    assert.ok(sendsTo(['1201'], '+1 201 234 5678'));
    for (const number of ['+1 201 234 567 890', '+1201234567', '1201 234 567 890', '+1201 555 0100 1876']) assert.ok(!sendsTo(['1201'], number), number);
    assert.ok(!sendsTo(['1'], '+1 201 234 567 890'), 'nor with the whole of +1 allowed');
    assert.ok(sendsTo(['77'], '+7 701 234 5678'));
    for (const number of ['+7 701 234 5678 9', '+7701234567', '+7 701 234 567 890 12']) assert.ok(!sendsTo(['77', '7'], number), number);
    // Other codes are left as they were: their national numbers vary in length.
    assert.ok(sendsTo(['995'], '+99551'));
  });
});

describe('positionOf', () => {
  test('the receipt time in UTC to the millisecond, whatever offset it was written with, so that text order is time order', () => {
    const a = positionOf({ receivedAt: '2026-12-01T10:00:00.000+04:00', eventId: 'b' }); // 06:00Z
    const b = positionOf({ receivedAt: '2026-12-01T09:00:00.000Z', eventId: 'a' });
    assert.deepEqual(a, { at: '2026-12-01T06:00:00.000Z', eventId: 'b' });
    assert.ok(a.at < b.at);
  });
});

describe("a number's hourly count key (relayMaxPerNumberPerHour)", () => {
  // Two TeleSign secrets as the schema reads them: API keys of 32 random-looking bytes.
  const secretA = telesign.secretSchema.parse({ customerId: 'C-1', apiKey: Buffer.alloc(32, 7).toString('base64') });
  const secretB = telesign.secretSchema.parse({ customerId: 'C-1', apiKey: Buffer.alloc(32, 8).toString('base64') });
  const number = '+995555123456';

  test('an HMAC-SHA-256 of the E.164 number under a key HKDF derives from the API key the relay sends with: not the plain SHA-256, and another API key gives another hash', () => {
    // act
    const hash = numberHash(number, numberKey(telesign, secretA));
    // assess
    const derived = Buffer.from(hkdfSync('sha256', Buffer.alloc(32, 7), Buffer.alloc(0), NUMBER_KEY_LABEL, 32));
    assert.equal(hash, createHmac('sha256', derived).update(number).digest('hex').slice(0, 32));
    assert.notEqual(hash, createHash('sha256').update(number).digest('hex').slice(0, 32), 'was: the plain SHA-256, which any reader of the table can redo');
    assert.notEqual(numberHash(number, numberKey(telesign, secretB)), hash, 'another API key (a rotation): another hash');
    assert.ok(!numberKey(telesign, secretA).equals(Buffer.alloc(32, 7)), 'never the API key itself');
  });

  test('the same for the number however it is written, and the same under the same key: one count per number', () => {
    const key = numberKey(telesign, secretA);
    assert.equal(numberHash('+995 555 12-34-56', key), numberHash(number, key));
    assert.equal(numberHash('(+995) 555.123.456', numberKey(telesign, telesign.secretSchema.parse({ customerId: 'C-2', apiKey: Buffer.alloc(32, 7).toString('base64') }))), numberHash(number, key), 'the customer id is not part of it');
    assert.notEqual(numberHash('+995555123457', key), numberHash(number, key));
  });

  test("during a rotation the current API key keys it, not the previous one: the key the relay sends with", () => {
    const rotating = telesign.secretSchema.parse({ customerId: 'C-1', apiKey: Buffer.alloc(32, 8).toString('base64'), previous: { apiKey: Buffer.alloc(32, 7).toString('base64') } });
    assert.equal(numberHash(number, numberKey(telesign, rotating)), numberHash(number, numberKey(telesign, secretB)));
  });

  test('a sender that gives no key material is a configuration error, never an unkeyed hash', () => {
    const without: AnyProvider = { ...telesign, sendingKey: undefined };
    assert.throws(() => numberKey(without, secretA), (error: unknown) => error instanceof ConfigurationError && /no key material to hash phone numbers with/.test(error.message));
    assert.throws(() => numberKey({ ...telesign, sendingKey: () => new Uint8Array(4) }, secretA), ConfigurationError);
  });
});

/** An in-memory stand-in for the relay's meeting and join writes, counting every call. */
function joinStore(items = new Map<string, Item>()) {
  const calls: string[] = [];
  const at = (key: { readonly pk?: unknown; readonly sk?: unknown }) => `${String(key.pk)}|${String(key.sk)}`;
  const store: ReportJoinDependencies['store'] = {
    async meet(key, fields) {
      calls.push(`meet ${key.pk}`);
      const met = { ...fields, ...(items.get(at(key)) ?? key) };
      items.set(at(key), met);
      return met;
    },
    async joinReference(key, referenceId, fields) {
      calls.push(`join ${key.pk}`);
      const current = items.get(at(key));
      if (current?.status !== 'uncertain' || (current.referenceId !== undefined && current.referenceId !== referenceId)) return undefined;
      const joined = { ...current, ...fields, referenceId };
      items.set(at(key), joined);
      return joined;
    },
    async read(key) {
      calls.push(`read ${key.pk}`);
      return items.get(at(key));
    },
    async addOtherReferences(key, referenceIds) {
      calls.push(`others ${key.pk}`);
      const current = items.get(at(key));
      if (!current) return undefined;
      const noted = { ...current, otherReferenceIds: new Set([...((current.otherReferenceIds as Set<string> | undefined) ?? []), ...referenceIds]) };
      items.set(at(key), noted);
      return noted;
    },
    async create(item) {
      calls.push(`create ${String(item.pk)}`);
      const existing = items.get(at(item));
      if (existing) return { created: false, existing };
      items.set(at(item), item);
      return { created: true };
    },
  };
  return { store, calls, items };
}

describe('joining a delivery report to a send that got no answer', () => {
  const EVENT_ID = '0123456789abcdef0123456789abcdef';
  const REFERENCE = 'B56259E45884010488343BAA15FB0002';
  const relayItemAt = `identomat#sess-1|RELAY#${EVENT_ID}`;
  const report = (externalId: unknown, provider = telesign as AnyProvider) => ({ provider, payload: { reference_id: REFERENCE, status: { code: 200 }, external_id: externalId }, subjectId: REFERENCE });
  const deps = (store: ReportJoinDependencies['store']): ReportJoinDependencies => ({ store, sender: telesign, now: () => new Date('2026-01-01T00:00:00Z'), retentionDays: 90 });
  /** The relay's side of the meeting, as it writes it when it records the send uncertain. */
  const relaySide = (items: Map<string, Item>) => {
    items.set(relayItemAt, { pk: 'identomat#sess-1', sk: `RELAY#${EVENT_ID}`, status: 'uncertain', kind: 'one-time-password', oneTimeCode: true });
    items.set(`telesign!external#${EVENT_ID}|RELAY`, { pk: `telesign!external#${EVENT_ID}`, sk: 'RELAY', eventId: EVENT_ID, forProvider: 'identomat', forSubjectId: 'sess-1' });
  };

  test("TeleSign's report echoes the request's external_id (its SMS delivery report example); one without it has none", () => {
    // prepare
    const engage = JSON.parse(readFileSync(new URL('../fixtures/telesign/sms-dlr-success-engage.json', import.meta.url), 'utf8'));
    const plain = JSON.parse(readFileSync(new URL('../fixtures/telesign/sms-dlr-success.json', import.meta.url), 'utf8'));
    // act, assess
    assert.equal(telesign.externalIdOf!(engage), 'CustomExternalID7349');
    assert.equal(telesign.externalIdOf!(plain), undefined);
    assert.equal(telesign.externalIdOf!({ ...engage, external_id: null }), undefined);
  });

  test('a report of no external id, of one the relay never gives, or of another provider: nothing read, nothing written', async () => {
    // prepare
    const { store, calls } = joinStore();
    const join = deliveryReportJoin(deps(store));
    // act
    const outcomes = [await join(report(undefined)), await join(report(null)), await join(report('CustomExternalID7349')), await join(report(EVENT_ID.toUpperCase())), await join(report(EVENT_ID, identomat as AnyProvider))];
    // assess
    assert.deepEqual(outcomes, ['not ours', 'not ours', 'not ours', 'not ours', 'not ours']);
    assert.deepEqual(calls, []);
  });

  test('the relay there first: the report joins the uncertain item (still uncertain) and links its reference; redelivered, nothing changes', async () => {
    // prepare
    const { store, items } = joinStore();
    relaySide(items);
    const join = deliveryReportJoin(deps(store));
    // act
    const first = await join(report(EVENT_ID));
    const snapshot = structuredClone([...items]);
    const again = await join(report(EVENT_ID));
    // assess
    assert.deepEqual([first, again], ['joined', 'joined']);
    assert.deepEqual([...items], snapshot, 'a redelivery writes nothing new');
    const item = items.get(relayItemAt)!;
    assert.deepEqual({ status: item.status, referenceId: item.referenceId, referenceFrom: item.referenceFrom }, { status: 'uncertain', referenceId: REFERENCE, referenceFrom: REFERENCE_FROM_REPORT });
    const link = items.get(`telesign#${REFERENCE}|RELAYED`)!;
    assert.deepEqual(
      { forProvider: link.forProvider, forSubjectId: link.forSubjectId, eventId: link.eventId, kind: link.kind, oneTimeCode: link.oneTimeCode },
      { forProvider: 'identomat', forSubjectId: 'sess-1', eventId: EVENT_ID, kind: 'one-time-password', oneTimeCode: true },
    );
  });

  test('the report there first: it waits, keeping only its reference; a second report of another reference does not replace it, and is kept beside it', async () => {
    // prepare
    const { store, items } = joinStore();
    const join = deliveryReportJoin(deps(store));
    // act
    const first = await join(report(EVENT_ID));
    const other = await join({ ...report(EVENT_ID), subjectId: 'FFFF' });
    // assess
    assert.deepEqual([first, other], ['waiting', 'another reference']);
    const met = items.get(`telesign!external#${EVENT_ID}|RELAY`)!;
    assert.equal(met.referenceId, REFERENCE);
    assert.deepEqual([...(met.otherReferenceIds as Set<string>)], ['FFFF']);
    assert.equal(met.forProvider, undefined);
    assert.equal(items.get(relayItemAt), undefined, 'no relay item is made');
  });

  test("the join's line masks the report's reference as the stored line masks that subject", async () => {
    // prepare: TeleSign's schema takes any reference_id of 1 to 128 characters
    const { store, items } = joinStore();
    relaySide(items);
    const lines: string[] = [];
    const log = createLogger({ service: 'unit', write: (line) => lines.push(line) });
    const glued = 'REF995512345678';
    // act
    const outcome = await deliveryReportJoin({ ...deps(store), log })({ ...report(EVENT_ID), subjectId: glued });
    // assess
    assert.equal(outcome, 'joined');
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.equal((JSON.parse(lines[0]) as Record<string, unknown>).referenceId, 'REF*********678', lines[0]);
  });

  test('an uncertain send joined to its report, then a report of another reference with its external_id: recorded on the session as a second message, logged as such, never "joined"', async () => {
    // prepare
    const { store, items } = joinStore();
    relaySide(items);
    const lines: string[] = [];
    const log = createLogger({ service: 'unit', write: (line) => lines.push(line) });
    const join = deliveryReportJoin({ ...deps(store), log });
    await join(report(EVENT_ID));
    lines.length = 0;
    // act
    const second = await join({ ...report(EVENT_ID), subjectId: 'FFFF0000FFFF0000FFFF0000FFFF0000' });
    const again = await join({ ...report(EVENT_ID), subjectId: 'FFFF0000FFFF0000FFFF0000FFFF0000' });
    // assess
    assert.deepEqual([second, again], ['another reference', 'another reference'], 'was: "joined", the second reference recorded nowhere');
    const item = items.get(relayItemAt)!;
    assert.equal(item.referenceId, REFERENCE, 'the joined reference stays');
    assert.deepEqual([...(item.otherReferenceIds as Set<string>)], ['FFFF0000FFFF0000FFFF0000FFFF0000']);
    assert.equal(items.get(`telesign#FFFF0000FFFF0000FFFF0000FFFF0000|RELAYED`), undefined, 'no link: it is not the message the session names');
    const line = JSON.parse(lines[0]) as Record<string, unknown>;
    assert.deepEqual([line.level, line.message, line.eventId, line.onSession], ['WARN', "relay: another message carried this instruction's external_id", EVENT_ID, true]);
  });

  test('a sent instruction (never named at the meeting item) whose other message was reported first: the answered reference finds it by its link, and the other is recorded', async () => {
    // prepare: sent with REFERENCE (its link), a report of another message with its external_id came first
    const { store, items } = joinStore();
    items.set(relayItemAt, { pk: 'identomat#sess-1', sk: `RELAY#${EVENT_ID}`, status: 'sent', referenceId: REFERENCE });
    items.set(`telesign#${REFERENCE}|RELAYED`, { pk: `telesign#${REFERENCE}`, sk: 'RELAYED', eventId: EVENT_ID, forProvider: 'identomat', forSubjectId: 'sess-1' });
    const join = deliveryReportJoin(deps(store));
    // act
    const other = await join({ ...report(EVENT_ID), subjectId: 'FFFF' });
    const answered = await join(report(EVENT_ID));
    // assess
    assert.deepEqual([other, answered], ['waiting', 'another reference']);
    const item = items.get(relayItemAt)!;
    assert.equal(item.referenceId, REFERENCE);
    assert.deepEqual([...(item.otherReferenceIds as Set<string>)], ['FFFF'], 'the other message, never the answered one');
  });

  test('a relay item already sent, refused or joined with another reference: not joined, no link, the report\'s reference recorded beside its own', async () => {
    for (const relayItem of [{ status: 'sent', referenceId: 'AAAA' }, { status: 'refused', referenceId: 'AAAA' }, { status: 'uncertain', referenceId: 'AAAA' }]) {
      // prepare: as a retry leaves it (the meeting item names the relay item), TeleSign having
      // answered the retry with AAAA; the report of the earlier attempt it took comes first
      const { store, items } = joinStore();
      relaySide(items);
      items.set(relayItemAt, { ...items.get(relayItemAt), ...relayItem });
      const lines: string[] = [];
      const log = createLogger({ service: 'unit', write: (line) => lines.push(line) });
      // act
      const outcome = await deliveryReportJoin({ ...deps(store), log })(report(EVENT_ID));
      const again = await deliveryReportJoin({ ...deps(store), log })(report(EVENT_ID));
      // assess
      assert.deepEqual([outcome, again], ['another reference', 'another reference'], 'was: "not joined", the second message recorded nowhere');
      const item = items.get(relayItemAt)!;
      assert.equal(item.referenceId, 'AAAA');
      assert.deepEqual([...(item.otherReferenceIds as Set<string>)], [REFERENCE]);
      assert.equal(items.get(`telesign#${REFERENCE}|RELAYED`), undefined);
      const line = JSON.parse(lines[0]) as Record<string, unknown>;
      assert.deepEqual([line.level, line.message, line.references, line.onSession], ['WARN', "relay: another message carried this instruction's external_id", 2, true]);
    }
  });

  test('a retry that found the code expired or superseded after TeleSign had taken an earlier attempt: its late report is recorded on the item, and the session says the message went', async () => {
    for (const status of ['expired', 'superseded']) {
      // prepare: the meeting item names the relay item (the retry wrote it), which says not sent
      const { store, items } = joinStore();
      relaySide(items);
      items.set(relayItemAt, { ...items.get(relayItemAt), status, reason: 'too old' });
      // act
      const outcome = await deliveryReportJoin(deps(store))(report(EVENT_ID));
      // assess
      assert.equal(outcome, 'another reference', 'was: "not joined", the message TeleSign took recorded nowhere on the session');
      const item = items.get(relayItemAt)!;
      assert.deepEqual([item.status, item.referenceId, [...(item.otherReferenceIds as Set<string>)]], [status, undefined, [REFERENCE]]);
      const line = relayLine({ eventId: EVENT_ID, kind: 'one-time-password', oneTimeCode: true, status, via: 'telesign', reason: 'too old', otherReferenceIds: [REFERENCE] });
      assert.match(line, new RegExp(`; yet TeleSign took a message with this instruction's external_id \\(reference ${REFERENCE}\\): the person may have received it$`));
    }
  });

  test('a relay item with no reference yet (retry, claimed) or its own again: not joined, nothing recorded beside it', async () => {
    for (const relayItem of [{ status: 'retry' }, { status: 'claimed' }, { status: 'sent', referenceId: REFERENCE }]) {
      // prepare
      const { store, items } = joinStore();
      relaySide(items);
      items.set(relayItemAt, { ...items.get(relayItemAt), ...relayItem });
      // act
      const outcome = await deliveryReportJoin(deps(store))(report(EVENT_ID));
      // assess
      assert.equal(outcome, 'not joined');
      assert.equal(items.get(relayItemAt)?.otherReferenceIds, undefined);
    }
  });
});

describe("the worker joins reports only with the relay on", () => {
  const setup = { dynamo: new DynamoDBClient({ region: 'us-east-1' }), tableName: 't', sqs: new SQSClient({ region: 'us-east-1' }), queueUrl: 'https://sqs.invalid/q', secretSource: async () => '{}' };
  test('off (no smsRelay, or "off"): no join at all, so a TeleSign report costs no read; on: its sender\'s reports are joined', () => {
    assert.equal(workerHandlerOptions(setup).deps.relayJoin, undefined);
    assert.equal(workerHandlerOptions({ ...setup, smsRelay: 'off' }).deps.relayJoin, undefined);
    assert.equal(typeof workerHandlerOptions({ ...setup, smsRelay: 'telesign' }).deps.relayJoin, 'function');
    assert.throws(() => workerHandlerOptions({ ...setup, smsRelay: 'identomat' }), /not a provider that sends messages/);
  });
});

describe('inspect: an uncertain send', () => {
  const view = { eventId: 'e1', kind: 'one-time-password', oneTimeCode: true, status: 'uncertain', via: 'telesign', reason: 'no answer within 10000 ms' };
  test('with no report joined: may have been sent, look it up by external_id', () => {
    assert.equal(relayLine(view), 'code may have been sent via TeleSign: no answer within 10000 ms; check with TeleSign (external_id e1)');
  });
  test("joined to TeleSign's delivery report: the reference and what the report says", () => {
    const joined = { ...view, referenceId: 'REF1', referenceFrom: 'delivery report', delivery: { status: '200', outcome: 'succeeded', terminal: true, description: 'Delivered to handset' } };
    assert.equal(relayLine(joined), "code may have been sent via TeleSign (no answer to the send); TeleSign's delivery report, reference REF1: Delivered to handset (200, succeeded)");
    assert.equal(relayLine({ ...joined, delivery: { ...joined.delivery, status: '203', outcome: 'pending', terminal: false, description: 'Delivered to gateway' } }), "code may have been sent via TeleSign (no answer to the send); TeleSign's delivery report, reference REF1: Delivered to gateway (203, pending, not final yet)");
  });
});

describe('inspect: an instruction in the relay\'s dead-letter queue', () => {
  test('names the command that moves it back, locally and on AWS, not only "redrive it"', () => {
    const view = { eventId: 'e1', kind: 'one-time-password', oneTimeCode: true, status: 'retry', via: 'telesign', attempts: 8, lastFault: 'send answered 503', deadLettered: true };
    assert.equal(
      relayLine(view),
      "code not sent: gave up after 8 attempt(s) (send answered 503); it is in the relay's dead-letter queue: once TeleSign is fixed, redrive it (npm run redrive -- --relay locally; on AWS, npm run redrive -- --dlq-url <RelayDeadLetterQueueUrl> --region <region>); a code then too old is recorded expired",
    );
  });
});
