import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { DEFAULT_RECONCILE } from '../../functions/core/reconcile.ts';
import { countEnv, integerEnv, reconcileEnv } from '../../functions/handlers/environment.ts';
import { ConfigurationError } from '../../functions/shared/errors.ts';

const NAMES = ['RECONCILE_SHARDS', 'RECONCILE_SCHEDULE', 'RECONCILE_HORIZON_HOURS', 'MAX_RECEIVE_COUNT', 'RELAY_MAX_PER_NUMBER_PER_HOUR'];
const saved = Object.fromEntries(NAMES.map((name) => [name, process.env[name]]));
afterEach(() => {
  for (const name of NAMES) {
    if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  }
});

describe('counts read from the function environment', () => {
  test('a shard count that is no whole number is a configuration error naming the variable, not shards never read', () => {
    // prepare
    process.env.RECONCILE_SHARDS = '2.5';
    // act, assess
    assert.throws(() => reconcileEnv(), (error: unknown) => error instanceof ConfigurationError && /RECONCILE_SHARDS must be a whole number, got "2.5"/.test(error.message));
  });

  test('a whole number is read, and an absent one is the default', () => {
    // prepare
    process.env.RECONCILE_SHARDS = '8';
    delete process.env.MAX_RECEIVE_COUNT;
    // act
    const policy = reconcileEnv();
    // assess
    assert.equal(policy.shards, 8);
    assert.equal(integerEnv('MAX_RECEIVE_COUNT', 5), 5);
    delete process.env.RECONCILE_SHARDS;
    assert.equal(reconcileEnv().shards, DEFAULT_RECONCILE.shards);
  });

  test('a receive limit that is no whole number, or not positive, is refused', () => {
    for (const value of ['4.5', '0', '-1', 'five']) {
      // prepare
      process.env.MAX_RECEIVE_COUNT = value;
      // act, assess
      assert.throws(() => integerEnv('MAX_RECEIVE_COUNT', 5), ConfigurationError, value);
    }
  });

  test('the relay\'s per-number cap: 0 is read as 0 (no cap), absent is the default, anything else that is no whole number fails the start rather than lift the cap', () => {
    // prepare, act, assess
    delete process.env.RELAY_MAX_PER_NUMBER_PER_HOUR;
    assert.equal(countEnv('RELAY_MAX_PER_NUMBER_PER_HOUR', 5), 5);
    process.env.RELAY_MAX_PER_NUMBER_PER_HOUR = '0';
    assert.equal(countEnv('RELAY_MAX_PER_NUMBER_PER_HOUR', 5), 0);
    process.env.RELAY_MAX_PER_NUMBER_PER_HOUR = '12';
    assert.equal(countEnv('RELAY_MAX_PER_NUMBER_PER_HOUR', 5), 12);
    for (const value of ['-1', '2.5', 'none']) {
      process.env.RELAY_MAX_PER_NUMBER_PER_HOUR = value;
      assert.throws(() => countEnv('RELAY_MAX_PER_NUMBER_PER_HOUR', 5), /RELAY_MAX_PER_NUMBER_PER_HOUR must be a whole number, 0 or more/, value);
    }
  });
});
