import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { shownItem } from '../../local/inspect-view.ts';
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
