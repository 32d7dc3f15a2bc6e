import assert from 'node:assert/strict';
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { e164 } from '../../functions/core/relay.ts';
import { createLogger, maskEmail, maskPhoneNumber, maskPhoneNumbers, maskPhoneNumbersIn, maskPhoneNumbersInUrl, maskUrlSecrets } from '../../functions/shared/log.ts';

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

  test('a phone number glued into an id is masked all the same', () => {
    const cases: Array<[string, string]> = [
      ['REF255712345678', 'REF*********678'],
      ['ID-255712345678x', 'ID-*********678x'],
      ['a:255712345678b', 'a:*********678b'],
      ['msg255712345678_2', 'msg*********678_2'],
      ['sess#255712345678ok', 'sess#*********678ok'],
      ['SMS995512345678ID', 'SMS*********678ID'],
      ['ABCDEF255712345678', 'ABCDEF*********678'],
      ['x7c1a2b3c4d5e6fa255712345678b0a1b2c3d', 'x7c1a2b3c4d5e6fa*********678b0a1b2c3d'],
    ];
    for (const [id, masked] of cases) assert.equal(maskPhoneNumbers(id), masked, id);
  });

  test('in an id a provider made up, UUIDs and hex ids stay readable, even when they hold a long run of digits', () => {
    const ids = [
      'e4b1c2d0-55aa-4f3b-9c1e-213686786746',
      'E4B1C2D0-55AA-4F3B-9C1E-213686786746',
      '7c1a2b3c4d5e6f70819203123456789a',
      'a2557123456789012345678901234567',
      '5f1d7c2e9a4b3c0d12345678',
      '2fd4e1c67a2d28fced849ee1bb76e7391b93eb12',
    ];
    const minted = { mintedId: true };
    for (const id of ids) {
      assert.equal(maskPhoneNumbers(id, minted), id);
      assert.equal(maskPhoneNumbers(`acme/${id}`, minted), `acme/${id}`, 'after a source');
      assert.equal(maskPhoneNumbers(`voice:${id}`, minted), `voice:${id}`, 'after a prefix');
    }
    // Random ones: about one 32-hex id in ten has a run of 9 or more digits. One in 3.4 million has
    // no letter at all, and is a number to the rules (below): drawn again, or 2,000 ids would fail
    // the test about one run in 1,700.
    for (let i = 0; i < 2000; i += 1) {
      const uuid = randomUUID();
      let hex = randomBytes(16).toString('hex').toUpperCase();
      while (!/[A-F]/.test(hex)) hex = randomBytes(16).toString('hex').toUpperCase();
      assert.equal(maskPhoneNumbers(uuid, minted), uuid);
      assert.equal(maskPhoneNumbers(hex, minted), hex);
    }
    // A hex id needs a letter among its digits: a run of digits alone is masked, however long.
    assert.equal(maskPhoneNumbers('12345678901234567890123456789012', minted), `${'*'.repeat(29)}012`);
  });

  test("eSMS's SMSIDs, a UUID or 32 hex digits followed by a few digits, stay readable", () => {
    // Every SMSID eSMS's callback and status pages show (https://developers.esms.vn/esms-api/callback-url)
    const shown = [
      'dc712784-9c5f-4c69-b9a8-ea69d56adc9a87',
      'f66545d2-c7e2-4603-984e-d2238c363c8292',
      '4a496110-9fd3-4838-ac8b-bcaa36616f7011',
      '434a124c-7818-4f45-bdf2-7f7b07fff210100',
      '849fe08c19294b02857cf91687021a50250',
      '7d11c87a22934df390f73ec59d8defd6205',
    ];
    for (const id of shown) assert.equal(maskPhoneNumbers(id, { mintedId: true }), id);
    // Random ones: about one in seven has digits the other rules would mask (across a dash, or 9+ in the last group).
    for (let i = 0; i < 2000; i += 1) {
      const id = `${randomUUID()}${randomInt(1, 1000)}`;
      assert.equal(maskPhoneNumbers(id, { mintedId: true }), id);
    }
  });

  test('an id a sender chose is masked whatever its shape: glued to hex digits or written as a UUID, a number is still a number', () => {
    const cases: Array<[string, string]> = [
      ['995512345678abcdef012345', '*********678abcdef012345'],
      ['abcdef995512345678abcdef', 'abcdef*********678abcdef'],
      ['99551234-5678-4abc-8def-abcdefabcdef', '*********678-4abc-8def-abcdefabcdef'],
      ['acme/7c1a2b3c4d5e6f70819203123456789a', 'acme/7c1a2b3c4d5e6f**************789a'],
    ];
    for (const [id, masked] of cases) {
      assert.equal(maskPhoneNumbers(id), masked, id);
      assert.equal(maskPhoneNumbers(id, { mintedId: false }), masked, id);
    }
  });

  test("every number the providers' samples carry, glued into an id, is masked", () => {
    // TeleSign (phone_number, sender_id), Identomat, TemboPlus (receiverAccount), eSMS (phonenumber, voice CID)
    for (const number of ['11234567890', '15558675310', '995512345678', '255712345678', '0901888484', '02871002454']) {
      for (const options of [{}, { mintedId: true }]) {
        const masked = maskPhoneNumbers(`REF${number}x`, options);
        assert.equal(masked, `REF${'*'.repeat(number.length - 3)}${number.slice(-3)}x`, number);
      }
    }
  });

  test("a number with + between its groups is masked: form encoding's space, kept as a + by a provider that decodes no form (eSMS)", () => {
    assert.equal(maskPhoneNumbers('0901+888+484'), '*******484');
    assert.equal(maskPhoneNumbers('+84+901+888+484'), '********484');
    assert.equal(maskPhoneNumbers('to 995+512+345+678.', { mintedId: true }), 'to *********678.');
  });

  test('a number with characters that draw nothing between its digits (format characters: zero-width, bidi, soft hyphen; the grapheme joiner, variation selectors, Hangul fillers) is masked, standing or glued', () => {
    // prepare: every format character and every other default-ignorable code point of the Basic
    // Multilingual Plane, as Unicode classes them today (U+034F, U+FE0F, U+3164 are no format characters)
    const formats = Array.from({ length: 0x10000 }, (_, code) => String.fromCharCode(code)).filter((char) => /[\p{Cf}\p{Default_Ignorable_Code_Point}]/u.test(char));
    assert.ok(formats.length > 40, `${formats.length} format characters`);
    for (const char of ['\u034f', '\ufe0f', '\u3164', '\u115f', '\u180b']) assert.ok(formats.includes(char));
    for (const char of formats) {
      const name = `U+${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
      // act + assess: 4 and 6 digits apart (each too short to be a number), 4 and 8 glued into an id
      assert.equal(maskPhoneNumbers(`to 0901${char}234567.`), 'to *******567.', name);
      assert.equal(maskPhoneNumbers(`REF0901${char}23456789`), 'REF*********789', name);
    }
  });

  test('a number whose groups are joined by underscores, slashes, typographic dashes or middle dots, or written in full-width digits, is masked too', () => {
    // An id a sender chose (a TemboPlus partnerReference, a Standard Webhooks id or type) is masked
    // whatever its shape: these spellings were logged whole, every digit of the number readable.
    const cases: Array<[string, string]> = [
      ['PAY_255_712_345_678', 'PAY_*********678'],
      ['ref/0901/888/484', 'ref/*******484'],
      ['0901\u2011888\u2011484', '*******484'],
      ['+84\u2013901\u2013888\u2013484', '********484'],
      ['+995\u2212512\u2212345\u2212678', '*********678'],
      ['0901\u00b7888\u00b7484', '*******484'],
      ['\uff10\uff19\uff10\uff11\uff18\uff18\uff18\uff14\uff18\uff14', '*******\uff14\uff18\uff14'],
      ['REF\uff12\uff15\uff15\uff17\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18', 'REF*********\uff16\uff17\uff18'],
      // Digits past the BMP (mathematical digits, two UTF-16 units each): counted and kept whole, never cut in two.
      [[...'0901888484'].map((digit) => String.fromCodePoint(0x1d7ce + Number(digit))).join(''), `*******${String.fromCodePoint(0x1d7d2, 0x1d7d6, 0x1d7d2)}`],
    ];
    for (const [id, masked] of cases) {
      assert.equal(maskPhoneNumbers(id), masked, id);
      assert.equal(maskPhoneNumbers(id, { mintedId: true }), masked, id);
    }
  });

  test('a number typed in full width keeps its full-width separators: its groups are joined as the ASCII ones join them', () => {
    // A Japanese input method in full-width mode writes a number as `０９０－１２３４－５６７８`: full-width
    // hyphens (or the prolonged sound mark ー, or the small forms) between groups too short to be a
    // number each, and every digit of it was logged.
    const cases: Array<[string, string]> = [
      ['\uff10\uff19\uff10\uff0d\uff11\uff12\uff13\uff14\uff0d\uff15\uff16\uff17\uff18', '********\uff16\uff17\uff18'],
      ['\uff10\uff19\uff10\u30fc\uff11\uff12\uff13\uff14\u30fc\uff15\uff16\uff17\uff18', '********\uff16\uff17\uff18'],
      ['\uff0b\uff18\uff11\uff0d\uff19\uff10\uff0d\uff11\uff12\uff13\uff14\uff0d\uff15\uff16\uff17\uff18', '\uff0b*********\uff16\uff17\uff18'],
      ['\uff08\uff10\uff13\uff09\uff11\uff12\uff13\uff14\uff0d\uff15\uff16\uff17\uff18', '\uff08*******\uff16\uff17\uff18'],
      ['090\ufe631234\ufe635678', '********678'],
      ['090\uff0e1234\uff0e5678', '********678'],
      ['090\uff0f1234\uff0f5678', '********678'],
      ['ref_090\uff3f1234\uff3f5678', 'ref_********678'],
      ['090\u30fb1234\u30fb5678', '********678'],
      ['090\u301c1234\u301c5678', '********678'],
    ];
    for (const [id, masked] of cases) {
      assert.equal(maskPhoneNumbers(id), masked, id);
      assert.equal(maskPhoneNumbers(id, { mintedId: true }), masked, id);
      // Percent-encoded in a URL, as many digits are masked.
      const stars = (text: string) => text.split('*').length - 1;
      assert.equal(stars(maskPhoneNumbersInUrl(`/to/${encodeURIComponent(id)}`)), stars(masked), id);
    }
  });

  test('a number in groups glued to the letters before it (a reference such as INV0712-345-678) is masked', () => {
    // Each group is too short to be a number and the digits are not one run: a sender's reference
    // written so was logged whole, where `REF0712345678` and `REF-0712-345-678` are masked.
    const cases: Array<[string, string]> = [
      ['INV0712-345-678', 'INV*******678'],
      ['REF0901 888 484', 'REF*******484'],
      ['a0901.888.484', 'a*******484'],
      ['PAY255-712-345-678', 'PAY*********678'],
      ['to+995 555 123 456', 'to+*********456'],
    ];
    for (const [id, masked] of cases) {
      assert.equal(maskPhoneNumbers(id), masked, id);
      assert.equal(maskPhoneNumbers(id, { mintedId: true }), masked, id);
    }
  });

  test('a calendar date stays readable, a number beside it or grown from it does not', () => {
    // eSMS writes the time of a Zalo error into error_info: `…____24/04/2024 16:58:01`
    for (const date of ['24/04/2024 16:58:01', '2024-04-24', '2024/04/24T10:00:00Z', '31.12.1999', '12/31/2024', 'at ____24%2F04%2F2024 16:58:01']) {
      assert.equal(maskPhoneNumbers(date), date, date);
      assert.equal(maskPhoneNumbers(date, { mintedId: true }), date, date);
    }
    assert.equal(maskPhoneNumbers('2024-04-24 0901888484'), '2024-04-24 *******484');
    // Not dates: more digits joined by the same kind of separator, a month past 12, digits around it
    assert.equal(maskPhoneNumbers('2001.12.12.345'), '********345');
    assert.equal(maskPhoneNumbers('84.2024.04.24'), '*******424');
    assert.equal(maskPhoneNumbers('24/04/2024/0901888484'), '***************484');
    assert.equal(maskPhoneNumbers('2024-13-24'), '*****324');
  });

  test('a timestamp with a fraction and a UTC offset stays readable, a number beside it does not', () => {
    // 2026-12-04T10:11:12.123+07:00 was logged as 2026-12-04T10:11:****307:00
    const timestamps = ['2026-12-04T10:11:12.123+07:00', '2026-12-04T10:11:12.123456-05:30', '2026-12-04T10:11:12,5+0700', '2026-12-04 10:11:12.123 +07:00', '2026-12-04T10:11:12.123456Z', '24/04/2024 16:58:01.250+07:00'];
    for (const timestamp of timestamps) {
      assert.equal(maskPhoneNumbers(timestamp), timestamp, timestamp);
      assert.equal(maskPhoneNumbers(timestamp, { mintedId: true }), timestamp, timestamp);
      assert.equal(maskPhoneNumbersInUrl(`?at=${encodeURIComponent(timestamp)}`), `?at=${encodeURIComponent(timestamp)}`, timestamp);
      assert.deepEqual(maskPhoneNumbersIn({ at: timestamp }), { at: timestamp }, timestamp);
    }
    assert.equal(maskPhoneNumbers('2026-12-04T10:11:12.123+07:00 to 0901888484'), '2026-12-04T10:11:12.123+07:00 to *******484');
    assert.equal(maskPhoneNumbers('2026-12-04T10:11:12.123+07:00_255712345678'), '2026-12-04T10:11:12.123+07:00_*********678');
    // Digits that run on past a time are no timestamp's: read as before
    assert.equal(maskPhoneNumbers('2026-12-04T10:11:12.712345678'), '2026-12-04T10:11:********678');
    assert.equal(maskPhoneNumbers('2026-12-04 10:11:12+0700255712345678'), '2026-12-04 10:11:***************678');
    // After a space an offset is read only as +hh:mm: a grouped number there is a number
    assert.equal(maskPhoneNumbers('2026-12-04 10:11 +0901 888 484'), '2026-12-04 10:11 *******484');
    assert.equal(maskPhoneNumbers('2026-12-04 10:11:12 +2010 1234 5678'), '2026-12-04 10:11:12 *********678');
  });

  test('ids that merely contain digits are left as they are', () => {
    for (const id of ['a1b2c3d4e5f60718', 'e4b1c2d0-55aa-4f3b-9c1e-2a9136867c46', 'REF-123456', 'SMS12345678ID', 'MO4442x', 'sc-4442']) {
      assert.equal(maskPhoneNumbers(id), id);
    }
  });

  test('an absent value stays absent, so a log line leaves its field out', () => {
    // prepare
    const lines: string[] = [];
    const log = createLogger({ service: 'test', write: (line) => void lines.push(line) });

    // act
    log.info('stored', { part: maskPhoneNumbers(undefined), status: maskPhoneNumbers('255712345678') });

    // assess
    const line = JSON.parse(lines[0]) as Record<string, unknown>;
    assert.equal('part' in line, false);
    assert.equal(line.status, '*********678');
  });
});

describe('maskPhoneNumbersIn', () => {
  test('a whole number of 9+ digits is masked as the same digits in text: a number sent as a JSON number', () => {
    // eSMS's 0901888484 and Tanzania's national 712345678 lose their trunk 0 as numbers: 9 digits.
    const cases: Array<[number, string]> = [
      [995512345678, '*********678'],
      [11234567890, '********890'],
      [901888484, '******484'],
      // A Zalo user id as eSMS writes one (5308693166941955879): past 2^53 only its first digits survive JSON.parse.
      [JSON.parse('5308693166941955879') as number, '****************000'],
    ];
    for (const [number, masked] of cases) {
      assert.equal(maskPhoneNumbersIn(number), masked, String(number));
      assert.deepEqual(maskPhoneNumbersIn({ a: [number], b: new Set([number]) }, { mintedId: true }), { a: [masked], b: new Set([masked]) });
    }
  });

  test('amounts, codes and counts stay numbers: fewer digits, a fraction, a sign, or past the digits String() writes', () => {
    for (const number of [0, 1500, 250000, 99999999, 1234567.5, 123456789.01, -995512345678, 1e21, 1e300, Number.NaN]) {
      assert.equal(maskPhoneNumbersIn(number), number, String(number));
    }
  });
});

describe('maskPhoneNumbersInUrl', () => {
  test('every form the relay would send to is masked in a query however it is encoded: percent-escapes, form encoding, twice', () => {
    for (const form of FORMS) {
      const encodings = [
        encodeURIComponent(form),
        new URLSearchParams({ to: form }).toString().slice('to='.length),
        encodeURIComponent(encodeURIComponent(form)),
        [...Buffer.from(form, 'utf8')].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join(''), // every byte escaped
      ];
      for (const encoded of encodings) {
        // act
        const shown = maskPhoneNumbersInUrl(`/callbacks/x?id=S-1&to=${encoded}&n=2`);
        // assess
        assert.match(shown, /^\/callbacks\/x\?id=S-1&to=(?:\+|%2B|%252B|%2b)?\*{9}678&n=2$/, `${JSON.stringify(form)} as ${encoded}`);
      }
    }
  });

  test('what spells no number is printed as it is, its escapes included', () => {
    const urls = ['/callbacks/esms/abcd…?SMSID=dc712784-9c5f-4c69-b9a8-ea69d56adc9a87&TotalPrice=0.0000&phonenumber=', '/p?text=Your%20code%20is%206867&x=%E1%BA%A1&bad=%zz%', '/p?a=1+2&b=%2520'];
    for (const url of urls) assert.equal(maskPhoneNumbersInUrl(url), url);
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

describe('createLogger', () => {
  test('a line writes control, format and separator characters as \\u escapes, and reads back as the same text', () => {
    // prepare: what a sender could put in a subject id to reverse, hide or break a line where it is shown
    const lines: string[] = [];
    const log = createLogger({ service: 'test', write: (line) => void lines.push(line) });
    const subjectId = 'ab\u202ecd\u2066ef\u200bgh\u0085ij\u2028kl\u2029mn\u007fop\u009bqr\ufeffst\u{e0041}uv\ud800wx é 😀';

    // act
    log.info('stored', { subjectId });

    // assess
    const [line] = lines;
    assert.doesNotMatch(line, /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u, JSON.stringify(line));
    assert.match(line, /ab\\u202ecd\\u2066ef\\u200bgh\\u0085ij\\u2028kl\\u2029mn\\u007fop\\u009bqr\\ufeffst\\udb40\\udc41uv\\ud800wx é 😀/);
    assert.equal((JSON.parse(line) as { subjectId: string }).subjectId, subjectId);
  });

  test('characters that draw nothing without being format characters are escaped too: two ids that differ by one never look alike', () => {
    // prepare: a Hangul filler, a combining grapheme joiner, a variation selector, a Mongolian free
    // variation selector, a halfwidth Hangul filler: default-ignorable, none of them Cf
    const lines: string[] = [];
    const log = createLogger({ service: 'test', write: (line) => void lines.push(line) });
    const subjectId = 'REF\u3164-1\u034f-2\ufe0f-3\u180b-4\uffa0-5';

    // act
    log.info('stored', { subjectId });

    // assess
    const [line] = lines;
    assert.doesNotMatch(line, /\p{Default_Ignorable_Code_Point}/u, JSON.stringify(line));
    assert.match(line, /REF\\u3164-1\\u034f-2\\ufe0f-3\\u180b-4\\uffa0-5/);
    assert.equal((JSON.parse(line) as { subjectId: string }).subjectId, subjectId);
  });
});

describe('maskUrlSecrets', () => {
  test('a URL is shown without its user name, password, query values or fragment; its host, port and path are kept', () => {
    const cases: [string, string][] = [
      ['https://user:pass@rest-api.telesign.com', 'https://***@rest-api.telesign.com'],
      ['https://us@er:p@ss@api.example.test:8443/v1/messaging', 'https://***@api.example.test:8443/v1/messaging'],
      ['https://api.example.test/base?token=abc&key=def#frag', 'https://api.example.test/base?token=***&key=***#***'],
      ['https://api.example.test/?abc123', 'https://api.example.test/?***'],
      ['http://127.0.0.1:4566/000000000000/callbacks', 'http://127.0.0.1:4566/000000000000/callbacks'],
      // fetch's own error quotes the URL it refused
      ['Request cannot be constructed from a URL that includes credentials: https://u:p@h.example/x', 'Request cannot be constructed from a URL that includes credentials: https://***@h.example/x'],
      ['at https://a:b@one.example (yours) or http://two.example/p@th', 'at https://***@one.example (yours) or http://two.example/p@th'],
      ['write to ops@example.com', 'write to ops@example.com'],
    ];
    for (const [text, shown] of cases) assert.equal(maskUrlSecrets(text), shown, text);
  });
});
