import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { QUEUE } from '../../functions/core/pipeline-definition.ts';
import { maxStateWriteBackOffMs, STATE_WRITE_RETRY, stateWriteDelayMs, subjectTurnKey, subjectTurns } from '../../functions/core/state-write.ts';

describe('the pause between attempts at a subject state write', () => {
  test('the first attempt goes at once; later ones wait a random share of a doubling ceiling, capped', () => {
    // prepare
    const attempts = Array.from({ length: STATE_WRITE_RETRY.attempts }, (_, index) => index + 1);
    // act
    const longest = attempts.map((attempt) => stateWriteDelayMs(attempt, () => 0.999999));
    const shortest = attempts.map((attempt) => stateWriteDelayMs(attempt, () => 0));
    // assess
    assert.equal(longest[0], 0, 'no pause before the first attempt');
    assert.deepEqual(longest.slice(1, 6), [9, 19, 39, 79, 159]);
    assert.ok(longest.every((ms) => ms < STATE_WRITE_RETRY.capMs));
    assert.ok(shortest.every((ms) => ms === 0), 'full jitter: down to no pause at all');
  });

  test('all pauses of one receive stay far inside the worker timeout and the visibility timeout', () => {
    // act
    const total = maxStateWriteBackOffMs();
    // assess
    // The worker keeps 3 s of its timeout back for what follows its last status request.
    assert.ok(total < 2_000, `${total} ms`);
    assert.ok(total < QUEUE.workerTimeoutSeconds * 1000 && total < QUEUE.visibilityTimeoutSeconds * 1000);
  });
});

describe('turns at a subject state write within one batch', () => {
  test('records of one subject write one after another, in the order they asked; the first does not wait', async () => {
    // prepare
    const turn = subjectTurns();
    const key = subjectTurnKey('telesign', 'REF-1', undefined);
    const order: string[] = [];
    const write = async (name: string, ms: number) => {
      const mine = await turn(key);
      order.push(`${name} in${mine.afterAnother ? ' (after another)' : ''}`);
      await new Promise((resolve) => setTimeout(resolve, ms));
      order.push(`${name} out`);
      mine.release();
    };
    // act
    await Promise.all([write('a', 30), write('b', 0), write('c', 10)]);
    // assess
    assert.deepEqual(order, ['a in', 'a out', 'b in (after another)', 'b out', 'c in (after another)', 'c out']);
  });

  test('another subject, or another part of one, never waits; a released subject is free again, and its next turn knows it came after another', async () => {
    // prepare
    const turn = subjectTurns();
    const held = await turn(subjectTurnKey('telesign', 'REF-1', undefined));
    // act
    const other = await turn(subjectTurnKey('telesign', 'REF-2', undefined));
    const part = await turn(subjectTurnKey('telesign', 'REF-1', 'sms'));
    const provider = await turn(subjectTurnKey('esms', 'REF-1', undefined));
    held.release();
    const again = await turn(subjectTurnKey('telesign', 'REF-1', undefined));
    // assess
    assert.deepEqual([held.afterAnother, other.afterAnother, part.afterAnother, provider.afterAnother], [false, false, false, false]);
    // Free at once, yet not first: a state read before `held` wrote is stale.
    assert.equal(again.afterAnother, true);
  });

  test('a holder that fails still lets the next one through (released in a finally)', async () => {
    // prepare
    const turn = subjectTurns();
    const key = subjectTurnKey('temboplus', 'T-1', undefined);
    const failing = (async () => {
      const mine = await turn(key);
      try {
        throw new Error('table fault');
      } finally {
        mine.release();
      }
    })();
    // act
    const next = await turn(key);
    // assess
    await assert.rejects(failing, /table fault/);
    assert.equal(next.afterAnother, true);
  });
});
