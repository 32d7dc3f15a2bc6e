import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { leaks, standingNumber } from '../support/log-leaks.ts';

describe("the suites' leak check (test/support/log-leaks.ts)", () => {
  test('a one-time code written into a line is a leak, wherever it stands apart', () => {
    for (const line of ['Your code is 6867', '{"text":"6867"}', 'code=6867;', '6867', 'sms 6867\n']) assert.equal(leaks(line, '6867'), true, line);
  });

  test('the same digits inside a random id are chance, not a leak', () => {
    for (const line of ['{"requestId":"e222fce1-3877-4563-bc9d-2a9136867c46"}', 'eventId 9f86867ab01', 'x68670']) assert.equal(leaks(line, '6867'), false, line);
  });

  test("a UUID's second group, four digits between dashes, is chance too (one random UUID in 65,536 has 6867 there)", () => {
    for (const line of ['{"requestId":"e222fce1-6867-4563-bc9d-2a9136c0ffee"}', '{"messageId":"E222FCE1-6867-4563-BC9D-2A9136C0FFEE"}', 'esms 0c81a5e5-6867-4d23-9c10-2b41443a7e1b87']) {
      assert.equal(leaks(line, '6867'), false, line);
    }
    // A code next to a UUID, or in a line that holds one, is still a leak.
    for (const line of ['{"requestId":"e222fce1-3877-4563-bc9d-2a9136c0ffee","text":"Your code is 6867"}', 'e222fce1-3877-4563-bc9d-2a9136c0ffee 6867', '6867-e222fce1-3877-4563-bc9d-2a9136c0ffee']) {
      assert.equal(leaks(line, '6867'), true, line);
    }
  });

  test('a lag, duration or age the pipeline measured is chance too: a callback stored 6.867 s after it came is no code', () => {
    for (const line of ['{"service":"worker","message":"stored","lagMs":6867,"result":"stored"}', '{"message":"callback","durationMs":6867.25}', '{"fields":{"ageSeconds":6867}}']) {
      assert.equal(leaks(line, '6867'), false, line);
    }
    // The code as any other field's value, a number included, is still a leak.
    for (const line of ['{"code":6867}', '{"lagMs":12,"text":"6867"}', '{"oneTimeCode":6867,"lagMs":6867}']) assert.equal(leaks(line, '6867'), true, line);
  });

  test('any other value counts wherever it appears', () => {
    assert.equal(leaks('to 995512345678', '995512345678'), true);
    assert.equal(leaks('id a995512345678b', 'a995512345678'), true);
    assert.equal(leaks('{"text":"Your code is"}', 'Your code is'), true);
    assert.equal(leaks('nothing here', 'Your code is'), false);
  });

  test('a run of 7+ digits standing alone is a number in the clear; inside an id or masked it is not', () => {
    for (const [line, number] of [['{"to":"+995512345678"}', '+995512345678'], ['sent to 0901888484.', '0901888484'], ['{"requestId":"ab_1234567-xyzAB","to":"1234567"}', '1234567']]) {
      assert.equal(standingNumber(line), number, line);
    }
    for (const line of ['{"requestId":"ab_1234567-xyzAB"}', '{"requestId":"1234567_abcdefgh"}', '{"id":"e222fce1-3877-4563-bc9d-213686786746"}', '{"id":"REF255712345678"}', '{"to":"*********678"}']) {
      assert.equal(standingNumber(line), undefined, line);
    }
  });
});
