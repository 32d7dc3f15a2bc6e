import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { allKits, secretsFor } from '../providers/index.ts';
import { eventId, expectedStates, readRequest, stateDifferences, subjectLife, type Callback } from '../support/faults-traffic.ts';

/**
 * What the fault suite takes from each kit, checked without the pipeline: a life's final state
 * must not depend on the order its callbacks arrive in (the suite sends them shuffled, from many
 * senders, so an order-dependent life would fail it at random), its callbacks are distinct events,
 * and `sendsStatusTime` says what the callbacks do.
 */

const LIVES = 24;
const secrets = secretsFor('faults');

/** Every order of a list (lives are short: at most a few callbacks). */
function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, index) => permutations([...items.slice(0, index), ...items.slice(index + 1)]).map((rest) => [item, ...rest]));
}

/** The subject's state when its callbacks arrive in this order, a second apart from now on. */
async function stateAfter(order: readonly Callback[], answers: Parameters<typeof expectedStates>[1]) {
  const start = Date.now();
  const states = await expectedStates(order, answers, (index) => new Date(start + index * 1000).toISOString());
  assert.equal(states.size, 1);
  return [...states.values()][0];
}

describe('fault-suite lives (each kit)', () => {
  for (const kit of allKits()) {
    const { id } = kit.provider;

    test(`${id}: the final state is the same whatever order a life's callbacks arrive in`, async () => {
      const outcomes = new Set<string>();
      for (let n = 0; n < LIVES; n += 1) {
        // prepare
        const life = subjectLife(kit, secrets, `lives-${n}`);
        const answers = life.answer ? [life.answer] : [];
        // act
        const inOrder = await stateAfter(life.callbacks, answers);
        const orders = permutations(life.callbacks);
        const differing: string[] = [];
        for (const order of orders) {
          const differs = stateDifferences(await stateAfter(order, answers), inOrder);
          if (differs.length > 0) differing.push(`${order.map((callback) => life.callbacks.indexOf(callback)).join(',')}: ${differs.join(', ')}`);
        }
        // assess
        assert.deepEqual(differing, [], `life lives-${n}: sent oldest first it ends ${inOrder.status}/${inOrder.outcome}`);
        assert.equal(inOrder.eventCount, life.callbacks.length, 'every callback of a life counts once');
        outcomes.add(String(inOrder.outcome));
      }
      assert.ok(outcomes.size > 1, `every life of ${LIVES} ends ${[...outcomes].join()}: lives should end both ways`);
    });

    test(`${id}: a life's callbacks are distinct events, and sendsStatusTime (${kit.sendsStatusTime}) is what they carry`, () => {
      // prepare
      const life = subjectLife(kit, secrets, 'lives-facts');
      // act
      const ids = new Set(life.callbacks.map(eventId));
      const placing = life.callbacks
        .map((callback) => readRequest(kit.provider, callback.request, callback.secret).facts)
        .filter((facts) => facts.placesStatus !== false);
      // assess
      assert.equal(ids.size, life.callbacks.length);
      assert.ok(placing.length > 0, 'a life places a status');
      assert.deepEqual(
        placing.map((facts) => facts.statusAt !== undefined),
        placing.map(() => kit.sendsStatusTime),
      );
    });
  }
});
