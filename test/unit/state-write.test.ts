import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { QUEUE } from '../../functions/core/pipeline-definition.ts';
import { maxStateWriteBackOffMs, STATE_WRITE_RETRY, stateWriteDelayMs } from '../../functions/core/state-write.ts';

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
