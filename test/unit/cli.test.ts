import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkInt, COUNT_RANGE, rangeText } from '../../local/cli-args.ts';
import { colorWanted, npmPrintedHeader } from '../../local/cli-output.ts';
import { prettyLine } from '../../local/log-format.ts';

/** Every ANSI colour sequence starts with it. */
const ESC = '\u001b[';

/** The command lines' pure rules: numeric flag ranges, when to colour, when npm's header is on stdout. */

describe('checkInt: a numeric flag within its range', () => {
  const cases: [string, { min: number; max?: number }, number | undefined][] = [
    ['1', COUNT_RANGE, 1],
    ['1000', COUNT_RANGE, 1000],
    ['0', COUNT_RANGE, undefined],
    ['1001', COUNT_RANGE, undefined],
    ['0', { min: 0, max: 65_535 }, 0],
    ['65536', { min: 0, max: 65_535 }, undefined],
    ['9007199254740991', { min: 1 }, 9_007_199_254_740_991],
    ['9007199254740992', { min: 1 }, undefined],
    // Number() would take each of these
    ['', COUNT_RANGE, undefined],
    [' 5', COUNT_RANGE, undefined],
    ['1e3', COUNT_RANGE, undefined],
    ['0x10', COUNT_RANGE, undefined],
    ['5.0', COUNT_RANGE, undefined],
    ['-1', { min: 0 }, undefined],
  ];
  for (const [value, range, expected] of cases) {
    test(`"${value}" in ${JSON.stringify(range)} → ${expected ?? 'refused'}`, () => {
      const checked = checkInt('--flag', value, range);
      if (expected === undefined) {
        assert.equal(checked.ok, false);
        assert.ok(!checked.ok && checked.message.startsWith('--flag must be a whole number'), JSON.stringify(checked));
        assert.ok(!checked.ok && checked.message.endsWith(`got "${value}"`));
      } else {
        assert.deepEqual(checked, { ok: true, value: expected });
      }
    });
  }

  test('the message states the range the same way for every flag, with the note when there is one', () => {
    assert.equal(rangeText('--repeat', COUNT_RANGE), '--repeat must be a whole number from 1 to 1000');
    assert.equal(rangeText('--max', { min: 1 }), '--max must be a whole number of at least 1');
    assert.equal(rangeText('PORT', { min: 0, max: 65_535, note: '0: any free port' }), 'PORT must be a whole number from 0 to 65535 (0: any free port)');
  });
});

describe('colorWanted: NO_COLOR, a terminal, TERM', () => {
  const tty = { isTTY: true };
  test('a terminal gets colour', () => assert.equal(colorWanted(tty, {}), true));
  test('NO_COLOR set to anything turns it off (https://no-color.org)', () => {
    assert.equal(colorWanted(tty, { NO_COLOR: '1' }), false);
    assert.equal(colorWanted(tty, { NO_COLOR: 'false' }), false);
  });
  test('an empty NO_COLOR is as if unset', () => assert.equal(colorWanted(tty, { NO_COLOR: '' }), true));
  test('a pipe or a file gets none', () => {
    assert.equal(colorWanted({ isTTY: false }, {}), false);
    assert.equal(colorWanted({}, {}), false);
  });
  test('TERM=dumb gets none', () => assert.equal(colorWanted(tty, { TERM: 'dumb' }), false));

  test('a pretty log line has ANSI escapes only when colour is wanted', () => {
    const line = JSON.stringify({ level: 'INFO', timestamp: '2026-01-01T12:00:01.000Z', service: 'ingest-telesign', message: 'callback', statusCode: 200 });
    assert.ok(prettyLine(line, 'INFO', true).includes(ESC));
    assert.ok(!prettyLine(line, 'INFO', false).includes(ESC));
    assert.match(prettyLine(line, 'INFO', false), /^12:00:01 INFO {2}ingest-telesign +callback +statusCode=200$/);
  });
});

describe("npmPrintedHeader: npm's '> package@version script' line went to stdout", () => {
  test('npm run without -s prints it', () => assert.equal(npmPrintedHeader({ npm_lifecycle_event: 'inspect' }), true));
  test('npm run -s does not (npm exports its silent log level)', () =>
    assert.equal(npmPrintedHeader({ npm_lifecycle_event: 'inspect', npm_config_loglevel: 'silent' }), false));
  test('run without npm, there is no header', () => assert.equal(npmPrintedHeader({}), false));
});
