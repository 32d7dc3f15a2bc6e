import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { placeStatus } from '../../functions/core/events.ts';
import { workerReadsSecret, type EventFacts } from '../../functions/providers/provider.ts';
import { ERROR_STATUS, normalLabel, relid, RelIdCallbackSchema, RelIdSecretSchema, type RelIdCallback, type RelIdSecret } from '../../functions/providers/relid.ts';
import { listSamples } from '../../local/samples.ts';
import { shortHash } from '../../functions/shared/hash.ts';
import { relidOutcomeFields, RELID_APPROVE_LABELS, RELID_FUZZ_REJECT_LABELS } from '../providers/relid.ts';
import { fuzzTools } from '../support/fuzz-arbitraries.ts';
import { authentic, runIngest, UNIT_SECRETS } from '../support/unit-ingest.ts';

/**
 * What a REL-IDverify notification result means. `action_response` is whichever label the
 * notification offered (docs: "Action label … or NONE"), so only a label the deployment declared
 * as an approval can read as one; everything else fails closed.
 */

/** The unit secret: approveLabels Approved/Accept, rejectLabels Rejected/Reject. */
const secret: RelIdSecret = RelIdSecretSchema.parse(UNIT_SECRETS.relid);

function sample(name: string): Record<string, unknown> {
  const found = listSamples('relid').find((candidate) => candidate.name === name);
  assert.ok(found?.body, `test/fixtures/relid/${name}.json is missing`);
  return JSON.parse(found.body.toString('utf8')) as Record<string, unknown>;
}

/** The docs' sample (UPDATED, "Approved", signature verified, NOTIFIED) with fields changed; `undefined` removes one. */
function callback(changes: Record<string, unknown> = {}): RelIdCallback {
  const json = { ...sample('callback-two-way'), ...changes };
  for (const [key, value] of Object.entries(changes)) if (value === undefined) delete json[key];
  return RelIdCallbackSchema.parse(JSON.parse(JSON.stringify(json)));
}

function describeWith(changes: Record<string, unknown>): EventFacts {
  return relid.describe(callback(changes), secret);
}

describe('REL-ID: an UPDATED notification reads as approved only with a declared approve label', () => {
  const cases: { name: string; changes: Record<string, unknown>; outcome: EventFacts['outcome'] }[] = [
    { name: 'the docs sample ("Approved", signature verified, response_code 0)', changes: {}, outcome: 'succeeded' },
    { name: 'a declared label in another case, padded', changes: { action_response: '  aPPROVED\t' }, outcome: 'succeeded' },
    { name: 'the second declared approve label', changes: { action_response: 'ACCEPT' }, outcome: 'succeeded' },
    { name: 'a declared reject label', changes: { action_response: 'Rejected' }, outcome: 'failed' },
    { name: 'a declared reject label, padded and lower case', changes: { action_response: ' reject ' }, outcome: 'failed' },
    // Every one of these was stored as `succeeded` before: none contains "reject".
    { name: '"No"', changes: { action_response: 'No' }, outcome: 'unknown' },
    { name: '"Not me"', changes: { action_response: 'Not me' }, outcome: 'unknown' },
    { name: '"Block"', changes: { action_response: 'Block' }, outcome: 'unknown' },
    { name: '"Disapprove"', changes: { action_response: 'Disapprove' }, outcome: 'unknown' },
    { name: '"NONE"', changes: { action_response: 'NONE' }, outcome: 'unknown' },
    { name: 'an empty label', changes: { action_response: '' }, outcome: 'unknown' },
    { name: 'a null label', changes: { action_response: null }, outcome: 'unknown' },
    { name: 'no label at all', changes: { action_response: undefined }, outcome: 'unknown' },
    { name: 'a near miss of a declared label ("Approved!")', changes: { action_response: 'Approved!' }, outcome: 'unknown' },
    { name: 'a look-alike of a declared label (Cyrillic А)', changes: { action_response: '\u0410pproved' }, outcome: 'unknown' },
    { name: 'a declared label with a zero-width space', changes: { action_response: 'Approved\u200b' }, outcome: 'unknown' },
  ];
  for (const { name, changes, outcome } of cases) {
    test(`${name}: ${outcome}, terminal`, () => {
      // act
      const facts = describeWith(changes);
      // assess
      assert.equal(facts.status, 'UPDATED');
      assert.equal(facts.outcome, outcome);
      assert.equal(facts.terminal, true);
    });
  }

  test('an undeclared label is recorded as it came, with what it was taken for and why', () => {
    // act
    const facts = describeWith({ action_response: 'Not me' });
    const missing = describeWith({ action_response: undefined });
    // assess
    assert.equal(facts.detail?.action, 'Not me');
    assert.equal(facts.detail?.actionMeaning, 'undeclared');
    assert.match(String(facts.detail?.reason), /not declared/);
    assert.equal(missing.detail?.action, undefined, 'no label: nothing invented');
    assert.equal(missing.detail?.actionMeaning, 'undeclared');
  });

  test('a declared approve label keeps its spelling as received in detail', () => {
    // act
    const facts = describeWith({ action_response: ' accept ' });
    // assess
    assert.equal(facts.outcome, 'succeeded');
    assert.deepEqual(facts.detail, { action: ' accept ', actionMeaning: 'approve', deliveryStatus: 'NOTIFIED', dsVerified: true, responseCode: 0 });
  });
});

describe('REL-ID: the digital signature', () => {
  const cases: { name: string; changes: Record<string, unknown>; outcome: EventFacts['outcome'] }[] = [
    { name: 'verified (true)', changes: { is_ds_verified: true }, outcome: 'succeeded' },
    // Absent: digital signing is off for this notification (the status API: "Only present if digital signing is enabled").
    { name: 'absent (signing off)', changes: { is_ds_verified: undefined }, outcome: 'succeeded' },
    { name: 'not verified (false)', changes: { is_ds_verified: false }, outcome: 'failed' },
    { name: 'not a boolean ("true")', changes: { is_ds_verified: 'true' }, outcome: 'unknown' },
    { name: 'null', changes: { is_ds_verified: null }, outcome: 'unknown' },
  ];
  for (const { name, changes, outcome } of cases) {
    test(`an approve label with the signature ${name}: ${outcome}`, () => {
      // act
      const facts = describeWith(changes);
      // assess
      assert.equal(facts.outcome, outcome);
      assert.equal(facts.terminal, true);
      if ('is_ds_verified' in changes && changes.is_ds_verified !== undefined) assert.equal(facts.detail?.dsVerified, changes.is_ds_verified === null ? 'null' : changes.is_ds_verified);
    });
  }

  test('a reject label with an unverified signature is still failed', () => {
    // act
    const facts = describeWith({ action_response: 'Rejected', is_ds_verified: false });
    // assess
    assert.equal(facts.outcome, 'failed');
  });
});

describe('REL-ID: response_code', () => {
  const cases: { name: string; changes: Record<string, unknown>; outcome: EventFacts['outcome'] }[] = [
    { name: '0', changes: { response_code: 0 }, outcome: 'succeeded' },
    { name: '"0"', changes: { response_code: '0' }, outcome: 'succeeded' },
    { name: '"" (empty)', changes: { response_code: '' }, outcome: 'unknown' },
    { name: 'absent', changes: { response_code: undefined }, outcome: 'unknown' },
    { name: '" 0"', changes: { response_code: ' 0' }, outcome: 'unknown' },
    { name: '2 (not in the docs)', changes: { response_code: 2 }, outcome: 'unknown' },
    { name: '1 (error)', changes: { response_code: 1, error_code: 3620 }, outcome: 'failed' },
    { name: '"1" (error)', changes: { response_code: '1', error_code: '3620' }, outcome: 'failed' },
  ];
  for (const { name, changes, outcome } of cases) {
    test(`an approve label with response_code ${name}: ${outcome}`, () => {
      // act
      const facts = describeWith(changes);
      // assess
      assert.equal(facts.outcome, outcome);
      assert.equal(facts.terminal, true);
    });
  }

  test('an approval that also names an error_code (the docs send one only with response_code 1) is unknown, never succeeded', () => {
    for (const error_code of [3558, '3620', -1, 'E1']) {
      // act
      const facts = describeWith({ response_code: 0, error_code });
      // assess
      assert.deepEqual([facts.outcome, facts.terminal], ['unknown', true], String(error_code));
      assert.equal(facts.detail?.errorCode, error_code);
      assert.match(String(facts.detail?.reason), /error_code/);
    }
    // null names no code: the approval stands; a declared rejection stays failed whatever its code.
    // A code of 0 or empty names no error: read as null is (a server sending error_code 0 with success).
    for (const error_code of [null, 0, '0', '', ' ']) assert.equal(describeWith({ response_code: 0, error_code }).outcome, 'succeeded', JSON.stringify(error_code));
    assert.equal(describeWith({ response_code: 0, error_code: 3558, action_response: 'Rejected' }).outcome, 'failed');
  });

  test('an approval whose signature did not verify stays failed when it also names an error_code', () => {
    // act: REL-ID's own check says the approval is not the user's, and an error_code is beside it
    const facts = describeWith({ response_code: 0, error_code: 3558, is_ds_verified: false });
    // assess: a verdict, not an ambiguity for a person to override
    assert.deepEqual([facts.outcome, facts.terminal], ['failed', true]);
    assert.equal(facts.detail?.reason, 'digital signature not verified');
  });

  test('an error keeps its error_code in detail', () => {
    // act
    const facts = describeWith({ response_code: 1, error_code: 3620 });
    // assess
    assert.equal(facts.detail?.responseCode, 1);
    assert.equal(facts.detail?.errorCode, 3620);
    assert.match(String(facts.detail?.reason), /error/);
  });
});

describe('REL-ID: delivery_status', () => {
  const cases: { value: unknown; outcome: EventFacts['outcome'] }[] = [
    { value: 'NOTIFIED', outcome: 'succeeded' },
    { value: 'PARTIALLY_NOTIFIED', outcome: 'succeeded' },
    { value: 'NONE', outcome: 'succeeded' },
    { value: undefined, outcome: 'succeeded' },
    // A notification REL-ID could not deliver cannot have been seen and approved.
    { value: 'FAILED_TO_NOTIFY', outcome: 'unknown' },
    { value: 'BOUNCED', outcome: 'unknown' },
    { value: 42, outcome: 'unknown' },
    // Case is folded for ASCII letters only: String#toUpperCase reads the dotless ı (U+0131) as I,
    // and `notıfıed`, a value the docs do not list, was taken for NOTIFIED and allowed the approval.
    { value: 'not\u0131f\u0131ed', outcome: 'unknown' },
    { value: 'notified', outcome: 'succeeded' },
  ];
  for (const { value, outcome } of cases) {
    test(`an approval with delivery_status ${JSON.stringify(value) ?? 'absent'}: ${outcome}, and the value in detail`, () => {
      // act
      const facts = describeWith({ delivery_status: value });
      // assess
      assert.equal(facts.outcome, outcome);
      assert.equal(facts.terminal, true);
      assert.equal(facts.detail?.deliveryStatus, value);
    });
  }

  test('FAILED_TO_NOTIFY on an expiry or a rejection changes nothing: failed', () => {
    // act
    const expired = describeWith({ status: 'EXPIRED', action_response: 'NONE', delivery_status: 'FAILED_TO_NOTIFY' });
    const rejected = describeWith({ action_response: 'Reject', delivery_status: 'FAILED_TO_NOTIFY' });
    // assess
    assert.equal(expired.outcome, 'failed');
    assert.equal(rejected.outcome, 'failed');
    assert.equal(expired.detail?.deliveryStatus, 'FAILED_TO_NOTIFY');
  });
});

describe('REL-ID: statuses', () => {
  const cases: { status: string; outcome: EventFacts['outcome']; terminal: boolean }[] = [
    { status: 'EXPIRED', outcome: 'failed', terminal: true },
    { status: 'CANCELLED', outcome: 'failed', terminal: true },
    { status: 'ACTIVE', outcome: 'pending', terminal: false },
    { status: 'updated', outcome: 'succeeded', terminal: true },
    // Not in the docs: never success (before: failed and terminal, so the real result could lose to it on time).
    { status: 'PROCESSING', outcome: 'unknown', terminal: false },
  ];
  for (const { status, outcome, terminal } of cases) {
    test(`${status} with a declared approve label: ${outcome}${terminal ? ', terminal' : ', not terminal'}`, () => {
      // act
      const facts = describeWith({ status });
      // assess
      assert.equal(facts.status, status.toUpperCase());
      assert.equal(facts.outcome, outcome);
      assert.equal(facts.terminal, terminal);
    });
  }
});

describe('REL-ID: an error report without status', () => {
  const body = { notification_uuid: 'e7a1c9d2-3b4f-4a5e-8c6d-7f8091a2b3c4', response_code: 1, error_code: 3558, delivery_status: 'FAILED_TO_NOTIFY' };

  test('is accepted, not quarantined, and stored as ERROR: failed, terminal, with its codes', async () => {
    // prepare
    const request = authentic(relid, { body: Buffer.from(JSON.stringify(body)) });
    // act
    const run = await runIngest(relid, request);
    // assess
    assert.deepEqual(run.response, { statusCode: 200, body: { received: true } });
    const [message] = run.messages;
    assert.equal(message.quarantine, undefined, `quarantined: ${JSON.stringify(message.quarantine)}`);
    const facts = relid.describe(message.payload as RelIdCallback, secret);
    assert.equal(facts.subjectId, body.notification_uuid);
    assert.equal(facts.status, ERROR_STATUS);
    assert.equal(facts.outcome, 'failed');
    assert.equal(facts.terminal, true);
    assert.deepEqual(facts.detail, { deliveryStatus: 'FAILED_TO_NOTIFY', responseCode: 1, errorCode: 3558, reason: 'REL-ID reported an error (response_code 1)' });
  });

  test('the sample fixture is one', () => {
    // act
    const facts = relid.describe(RelIdCallbackSchema.parse(sample('callback-error-no-status')), secret);
    // assess
    assert.equal(facts.status, ERROR_STATUS);
    assert.equal(facts.outcome, 'failed');
  });

  for (const responseCode of [0, '0', '', undefined]) {
    test(`without status and with response_code ${JSON.stringify(responseCode) ?? 'absent'} is quarantined, naming status`, async () => {
      // prepare
      const { status: _status, ...rest } = sample('callback-two-way');
      const request = authentic(relid, { body: Buffer.from(JSON.stringify({ ...rest, response_code: responseCode })) });
      // act
      const run = await runIngest(relid, request);
      // assess
      assert.deepEqual(run.response.body, { received: true, quarantined: true });
      assert.match([run.messages[0].quarantine?.reason, ...(run.messages[0].quarantine?.issues ?? [])].join('\n'), /\bstatus\b/);
    });
  }

  test('two error reports with different codes are two events', () => {
    // act
    const a = relid.describe(RelIdCallbackSchema.parse(body), secret);
    const b = relid.describe(RelIdCallbackSchema.parse({ ...body, error_code: 3620 }), secret);
    // assess
    assert.notEqual(a.eventKey, b.eventKey);
  });
});

describe('REL-ID: a number JSON reads as another', () => {
  for (const responseCode of ['1e-400', '-1e-400', '0.00000000000000000001e-400']) {
    test(`an approval whose response_code ${responseCode} JSON reads as 0 is quarantined, never read as response_code 0 (it was an approval)`, async () => {
      // prepare
      const text = JSON.stringify(sample('callback-two-way')).replace(/"response_code":\s*0/, `"response_code":${responseCode}`);
      assert.ok(text.includes(responseCode), 'the sample has a response_code 0');
      // act
      const run = await runIngest(relid, authentic(relid, { body: Buffer.from(text) }));
      // assess
      assert.deepEqual(run.response.body, { received: true, quarantined: true });
      assert.match(String(run.messages[0].quarantine?.reason), /number/);
    });
  }
});

describe('REL-ID: without the secret, no label is declared', () => {
  test('the docs sample is unknown, never succeeded', () => {
    // act
    const facts = relid.describe(callback(), undefined);
    // assess
    assert.equal(facts.outcome, 'unknown');
    assert.equal(facts.detail?.actionMeaning, 'undeclared');
  });

  test('a secret without labels reads the same', () => {
    // prepare
    const bare = RelIdSecretSchema.parse({ token: 'unit-relid-token-Hd6t2y' });
    // act
    const facts = relid.describe(callback(), bare);
    // assess
    assert.equal(facts.outcome, 'unknown');
  });

  test('the worker loads the REL-ID secret to describe a callback', () => {
    // assess
    assert.equal(relid.describeReadsSecret, true);
    assert.equal(workerReadsSecret(relid), true);
  });
});

describe('REL-ID: event keys', () => {
  test('a retry has the same key; the same status and time with another label, signature check or code do not', () => {
    // act
    const first = describeWith({});
    const retry = describeWith({});
    const others = [{ action_response: 'Rejected' }, { is_ds_verified: false }, { response_code: '0' }, { delivery_status: 'FAILED_TO_NOTIFY' }].map((changes) => describeWith(changes).eventKey);
    // assess
    assert.equal(retry.eventKey, first.eventKey);
    assert.equal(new Set([first.eventKey, ...others]).size, others.length + 1);
  });

  test('a `|` in a status or time cannot make two notifications one key (the second was taken for a retry)', () => {
    // act
    const key = (status: string, update_ts: string) => describeWith({ status, update_ts }).eventKey;
    const keys = [key('A|B', 'T'), key('A', 'B|T'), key('#A', 'T'), key('A', 'T')];
    // assess
    assert.equal(new Set(keys).size, keys.length, keys.join('  '));
    assert.equal(key('A|B', 'T'), keys[0], 'a retry is still the same key');
  });

  test('two notifications whose loose fields differ only inside an object or array are two keys', () => {
    // act
    const keys = [
      { is_ds_verified: { checked: true } },
      { is_ds_verified: { checked: false } },
      { is_ds_verified: '(an object)' },
      { is_ds_verified: [1] },
      { is_ds_verified: [2] },
      { delivery_status: { channel: 'push' } },
      { delivery_status: { channel: 'sms' } },
    ].map((changes) => describeWith(changes).eventKey);
    // assess
    assert.equal(new Set(keys).size, keys.length);
    assert.equal(describeWith({ is_ds_verified: { checked: true } }).eventKey, keys[0], 'a retry is still the same key');
  });

  test('the documented notification keeps its key', () => {
    // act
    const facts = describeWith({});
    // assess: the key stored before `|` was guarded (a redelivery after an upgrade stays a retry)
    assert.match(facts.eventKey, /^UPDATED\|[^|#]+\|[0-9a-f]{16}$/);
    assert.equal(facts.eventKey.split('|')[2], shortHash(JSON.stringify(['Approved', true, 0, null, 'NOTIFIED'])));
  });

  test('the key does not depend on the declared labels', () => {
    // act
    const withLabels = relid.describe(callback(), secret);
    const without = relid.describe(callback(), undefined);
    // assess
    assert.equal(withLabels.eventKey, without.eventKey);
    assert.notEqual(withLabels.outcome, without.outcome);
  });
});

describe('REL-ID: detail stays small', () => {
  test('a huge label, an out-of-range number and an object are kept short and storable', () => {
    // prepare
    const changes = { action_response: 'x'.repeat(10_000), error_code: 1e300, is_ds_verified: { toString: 1 }, delivery_status: ['FAILED_TO_NOTIFY'] };
    // act
    const facts = describeWith(changes);
    const placed = placeStatus(facts, '2025-01-01T10:00:00.000Z');
    // assess
    assert.equal(String(facts.detail?.action).length, 64);
    assert.equal(facts.detail?.errorCode, '1e+300');
    assert.equal(facts.detail?.dsVerified, '(an object)');
    assert.equal(facts.detail?.deliveryStatus, '(an array)');
    assert.ok(JSON.stringify(placed.detail).length < 600);
    assert.equal(facts.outcome, 'unknown');
  });
});

describe('REL-ID secret: declared labels', () => {
  test('are optional', () => {
    // act
    const parsed = RelIdSecretSchema.parse({ token: 'a-token' });
    // assess
    assert.equal(parsed.approveLabels, undefined);
    assert.equal(parsed.rejectLabels, undefined);
  });

  const refused: { name: string; secret: Record<string, unknown>; field: string }[] = [
    { name: 'NONE as an approve label', secret: { token: 't', approveLabels: ['Approved', ' none '] }, field: 'approveLabels' },
    { name: 'a label declared both ways', secret: { token: 't', approveLabels: ['Approved'], rejectLabels: ['APPROVED '] }, field: 'rejectLabels' },
    { name: 'a blank label', secret: { token: 't', approveLabels: ['  '] }, field: 'approveLabels' },
    { name: 'a label that is not a string', secret: { token: 't', rejectLabels: [0] }, field: 'rejectLabels' },
    { name: 'labels as a string, not a list', secret: { token: 't', approveLabels: 'Approved' }, field: 'approveLabels' },
  ];
  for (const { name, secret: candidate, field } of refused) {
    test(`refuses ${name}, naming ${field}`, () => {
      // act
      const result = RelIdSecretSchema.safeParse(candidate);
      // assess
      assert.equal(result.success, false);
      assert.equal(result.error?.issues[0].path[0], field);
    });
  }

  test('labels compare after trimming, ignoring case, and nothing else', () => {
    // assess
    assert.equal(normalLabel('  Approved\n'), normalLabel('APPROVED'));
    assert.notEqual(normalLabel('Approved'), normalLabel('Approved!'));
    assert.notEqual(normalLabel('Approved'), normalLabel('\u0410pproved'));
  });
});

describe('REL-ID: property over generated callbacks (the fuzzer\'s outcome fields)', () => {
  const fuzzSecret = RelIdSecretSchema.parse({ token: 'property-token', approveLabels: [...RELID_APPROVE_LABELS], rejectLabels: [...RELID_FUZZ_REJECT_LABELS] });
  const approve = new Set(RELID_APPROVE_LABELS.map(normalLabel));
  const reject = new Set(RELID_FUZZ_REJECT_LABELS.map(normalLabel));

  test('succeeded only for UPDATED, response_code 0 without error_code, a declared approve label, a verified (or absent) signature and a delivered notification', () => {
    fc.assert(
      fc.property(relidOutcomeFields(fuzzTools), (fields) => {
        // prepare
        const json: Record<string, unknown> = { notification_uuid: 'prop-0001', update_ts: '2024-10-11T13:00:15Z' };
        for (const [key, value] of Object.entries(fields)) if (value !== undefined) json[key] = value;
        const parsed = RelIdCallbackSchema.safeParse(json);
        // act
        assert.ok(parsed.success, `generated body refused: ${JSON.stringify(json)}`);
        const facts = relid.describe(parsed.data, fuzzSecret);
        const bare = relid.describe(parsed.data, undefined);
        // assess
        const label = typeof json.action_response === 'string' ? normalLabel(json.action_response) : undefined;
        const status = String(json.status ?? ERROR_STATUS).replace(/[a-z]/g, (letter) => letter.toUpperCase());
        const error = json.response_code === 1 || json.response_code === '1';
        const approves =
          status === 'UPDATED' &&
          (json.response_code === 0 || json.response_code === '0') &&
          label !== undefined &&
          approve.has(label) &&
          json.error_code === undefined &&
          (!('is_ds_verified' in json) || json.is_ds_verified === true) &&
          (json.delivery_status === undefined || ['NOTIFIED', 'PARTIALLY_NOTIFIED', 'NONE'].includes(String(json.delivery_status).replace(/[a-z]/g, (letter) => letter.toUpperCase())));
        assert.equal(facts.outcome === 'succeeded', approves, `${JSON.stringify(json)} → ${facts.outcome}`);
        assert.notEqual(bare.outcome, 'succeeded', 'without the secret nothing is approved');
        if (error) assert.deepEqual([facts.outcome, facts.terminal], ['failed', true]);
        if (status === 'UPDATED' && !error && label !== undefined && reject.has(label)) assert.equal(facts.outcome, 'failed');
        if (status === 'UPDATED' && !error && (label === undefined || (!approve.has(label) && !reject.has(label)))) {
          assert.deepEqual([facts.outcome, facts.terminal], ['unknown', true]);
        }
        if (json.status === undefined) assert.equal(facts.status, ERROR_STATUS);
        assert.equal(facts.eventKey, bare.eventKey);
      }),
      { seed: 20_250_101, numRuns: 2_000 },
    );
  });
});

describe('REL-ID source-IP allow-list', () => {
  const body = listSamples('relid')[0].body!;
  const cases = [
    { name: 'an address inside an allowed block', sourceIp: '203.0.113.77', status: 200 },
    { name: 'the exact allowed IPv6 address', sourceIp: '2001:db8::5', status: 200 },
    { name: 'an address outside every entry', sourceIp: '198.51.100.1', status: 401 },
    { name: 'an unreadable source address', sourceIp: 'not-an-ip', status: 401 },
  ];
  for (const { name, sourceIp, status } of cases) {
    test(`${status === 200 ? 'accepts' : 'refuses'} ${name}`, async () => {
      // prepare
      const secret = { ...UNIT_SECRETS.relid, allowedIps: ['203.0.113.0/24', '2001:db8::5'] };
      const request = authentic(relid, { body }, secret, { sourceIp });
      // act
      const run = await runIngest(relid, request, { secret });
      // assess
      assert.equal(run.response.statusCode, status);
      assert.equal(run.sent.length, status === 200 ? 1 : 0);
    });
  }

  // A rotation (README: "Put the new values in the secret with the old ones under previous … Both
  // values are accepted in between"): the REL-ID server moving to new addresses, with or without a
  // new token. Each version's addresses go with its token.
  const oldToken = 'old-relid-token-Vq81xLm30d';
  const rotations = [
    { name: 'new addresses, same token', previous: { allowedIps: ['203.0.113.0/24'] }, token: undefined, sourceIp: '203.0.113.77', status: 200 },
    { name: 'new addresses, same token', previous: { allowedIps: ['203.0.113.0/24'] }, token: undefined, sourceIp: '198.51.100.9', status: 200 },
    { name: 'new addresses, same token', previous: { allowedIps: ['203.0.113.0/24'] }, token: undefined, sourceIp: '192.0.2.1', status: 401 },
    { name: 'new addresses and a new token', previous: { token: oldToken, allowedIps: ['203.0.113.0/24'] }, token: oldToken, sourceIp: '203.0.113.77', status: 200 },
    { name: 'new addresses and a new token', previous: { token: oldToken, allowedIps: ['203.0.113.0/24'] }, token: undefined, sourceIp: '198.51.100.9', status: 200 },
    { name: 'new addresses and a new token', previous: { token: oldToken, allowedIps: ['203.0.113.0/24'] }, token: oldToken, sourceIp: '192.0.2.1', status: 401 },
    // An empty list under previous adds no addresses: it never opens a token to every address.
    { name: 'no old addresses ([])', previous: { allowedIps: [] }, token: undefined, sourceIp: '192.0.2.1', status: 401 },
    { name: 'no old addresses ([])', previous: { allowedIps: [] }, token: undefined, sourceIp: '198.51.100.9', status: 200 },
    { name: 'a new token, no old addresses ([])', previous: { token: oldToken, allowedIps: [] }, token: oldToken, sourceIp: '192.0.2.1', status: 401 },
    { name: 'a new token, no old addresses ([])', previous: { token: oldToken, allowedIps: [] }, token: oldToken, sourceIp: '198.51.100.9', status: 200 },
  ];
  for (const { name, previous, token, sourceIp, status } of rotations) {
    test(`rotation to ${name}: the ${token ? 'old' : 'current'} token from ${sourceIp} is ${status === 200 ? 'accepted' : 'refused'}`, async () => {
      // prepare: the current addresses are 198.51.100.0/24, the old ones (previous) 203.0.113.0/24
      const secret = { ...UNIT_SECRETS.relid, allowedIps: ['198.51.100.0/24'], previous };
      const request = authentic(relid, { body }, token ? { ...UNIT_SECRETS.relid, token } : UNIT_SECRETS.relid, { sourceIp });
      // act
      const run = await runIngest(relid, request, { secret });
      // assess
      assert.equal(run.response.statusCode, status, JSON.stringify(run.response.body));
      assert.equal(run.sent.length, status === 200 ? 1 : 0);
    });
  }
});
