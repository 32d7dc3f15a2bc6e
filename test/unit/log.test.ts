import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { e164 } from '../../functions/core/relay.ts';
import { maskEmail, maskPhoneNumber, maskPhoneNumbers } from '../../functions/shared/log.ts';

/**
 * Phone numbers in log fields: whatever form a provider writes a number in, if the relay could send
 * to it (`e164`), a log line cannot carry it whole.
 */

const NUMBER = '+995512345678';
/** The same number as people and providers write it. */
const FORMS = [
  '+995512345678',
  '995512345678',
  '+995 512 345 678',
  '+995-512-345-678',
  '+995 (512) 345-678',
  '+995.512.345.678',
  '+995\u00a0512\u00a0345\u00a0678',
  '+995\t512\t345678',
  '+995 512  345.678',
];

describe('maskPhoneNumbers', () => {
  test('every form the relay would send to is masked to its last three digits', () => {
    for (const form of FORMS) {
      assert.equal(e164(form).replace(/^\+/, ''), NUMBER.slice(1), `e164 sends ${JSON.stringify(form)}`);
      const masked = maskPhoneNumbers(`session S-1 to ${form}.`);
      assert.ok(!masked.replace(/\D/g, '').includes('512345'), `${JSON.stringify(form)} came out as ${JSON.stringify(masked)}`);
      assert.match(masked, /\*{9}678/, JSON.stringify(masked));
    }
  });

  test('ids that merely contain digits are left as they are', () => {
    for (const id of ['a1b2c3d4e5f60718', 'e4b1c2d0-55aa-4f3b-9c1e-2a9136867c46', 'REF-123456', 'SMS12345678ID']) {
      assert.equal(maskPhoneNumbers(id), id);
    }
  });
});

describe('maskPhoneNumber', () => {
  test('a destination known to be a number keeps only its last three digits, whatever its form', () => {
    for (const form of FORMS) assert.equal(maskPhoneNumber(form), `${'*'.repeat(9)}678`);
    assert.equal(maskPhoneNumber('+1 (55) 12'), '**512', 'short ones too');
  });
});

describe('maskEmail', () => {
  test('an address keeps its first character and its domain; one without an @ is not shown at all', () => {
    assert.equal(maskEmail('john.doe@example.com'), 'j***@example.com');
    assert.equal(maskEmail('john.doe.example.com'), '***');
  });
});
