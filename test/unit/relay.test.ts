import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseCountryCodes, positionOf, sendsTo, sharedCodeWarnings } from '../../functions/core/relay.ts';

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
});

describe('positionOf', () => {
  test('the receipt time in UTC to the millisecond, whatever offset it was written with, so that text order is time order', () => {
    const a = positionOf({ receivedAt: '2026-12-01T10:00:00.000+04:00', eventId: 'b' }); // 06:00Z
    const b = positionOf({ receivedAt: '2026-12-01T09:00:00.000Z', eventId: 'a' });
    assert.deepEqual(a, { at: '2026-12-01T06:00:00.000Z', eventId: 'b' });
    assert.ok(a.at < b.at);
  });
});
