import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { leaks } from '../support/log-leaks.ts';

describe("the suites' leak check (test/support/log-leaks.ts)", () => {
  test('a one-time code written into a line is a leak, wherever it stands apart', () => {
    for (const line of ['Your code is 6867', '{"text":"6867"}', 'code=6867;', '6867', 'sms 6867\n']) assert.equal(leaks(line, '6867'), true, line);
  });

  test('the same digits inside a random id are chance, not a leak', () => {
    for (const line of ['{"requestId":"e222fce1-3877-4563-bc9d-2a9136867c46"}', 'eventId 9f86867ab01', 'x68670']) assert.equal(leaks(line, '6867'), false, line);
  });

  test('any other value counts wherever it appears', () => {
    assert.equal(leaks('to 995512345678', '995512345678'), true);
    assert.equal(leaks('id a995512345678b', 'a995512345678'), true);
    assert.equal(leaks('{"text":"Your code is"}', 'Your code is'), true);
    assert.equal(leaks('nothing here', 'Your code is'), false);
  });
});
