import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_RECONCILE, MAX_HONOURED_RETRY_AFTER_SECONDS, parseSchedule, recheckShard, settled, staleShard, withRecheck, withRecheckFault, withRecheckNotBefore, type RecheckContext } from '../../functions/core/reconcile.ts';
import type { StateItem } from '../../functions/core/state.ts';
import { MAX_RETRY_AFTER_SECONDS, retryAfterSeconds } from '../../functions/shared/retry-after.ts';

/** The re-check schedule, as pure functions of a state and a clock. */

const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const at = (seconds: number) => new Date(T0 + seconds * 1000);

function state(fields: Partial<StateItem> = {}): StateItem {
  return {
    provider: 'temboplus',
    subjectId: 'REF-1',
    status: 'SUBMITTED',
    outcome: 'pending',
    terminal: false,
    createdAt: at(0).toISOString(),
    updatedAt: at(0).toISOString(),
    changedAt: at(0).toISOString(),
    eventCount: 1,
    recent: [],
    seen: 1,
    version: 1,
    ...fields,
  };
}

const context = (seconds: number, fields: Partial<RecheckContext> = {}): RecheckContext => ({ askable: true, policy: DEFAULT_RECONCILE, now: at(seconds), ...fields });

describe('parseSchedule', () => {
  test('reads seconds, minutes, hours and days', () => {
    assert.deepEqual(parseSchedule('2s,4s,8s'), [2, 4, 8]);
    assert.deepEqual(parseSchedule('1m, 5m,30m,2h,12h,1d'), [60, 300, 1800, 7200, 43_200, 86_400]);
    assert.deepEqual(parseSchedule('500ms'), [0.5]);
  });

  test('refuses what is not a delay, naming it', () => {
    assert.throws(() => parseSchedule('2s,soon'), /"soon" is not a delay/);
    assert.throws(() => parseSchedule('0s'), /greater than 0/);
    assert.throws(() => parseSchedule(''), /is not a delay/);
  });
});

describe('withRecheck', () => {
  test('a new subject that is not final is asked after the first delay, in a shard of its provider', () => {
    const next = withRecheck(state(), context(0), 'event');
    assert.equal(next.recheckAt, at(60).toISOString());
    assert.equal(next.rechecks, 0);
    assert.match(next.recheckShard!, /^temboplus#[0-3]$/);
    assert.equal(next.recheckShard, recheckShard('temboplus', 'REF-1', undefined, DEFAULT_RECONCILE.shards), 'the same shard every time');
  });

  test("a provider's own minimum delays the first ask (eSMS does not know a message sent moments ago)", () => {
    const next = withRecheck(state(), context(0, { limits: { firstAfterSeconds: 600 } }), 'event');
    assert.equal(next.recheckAt, at(600).toISOString());
  });

  test("a schedule shortened for a demo skips the providers' own first delays", () => {
    const next = withRecheck(state(), context(0, { limits: { firstAfterSeconds: 600 }, policy: { ...DEFAULT_RECONCILE, intervalsSeconds: [2, 4], providerFirstDelays: false } }), 'event');
    assert.equal(next.recheckAt, at(2).toISOString());
  });

  test('a burst of callbacks does not push a pending re-check back', () => {
    const pending = withRecheck(state(), context(0), 'event');
    assert.equal(withRecheck(pending, context(30), 'event'), pending);
  });

  test('a pending re-check no schedule could have set (years ahead, or not a time) gives way to the schedule\'s own next time', () => {
    // An expectation an application wrote with `recheckAt` years ahead: kept by every callback, the
    // subject was never asked, never stale.
    for (const recheckAt of ['2036-12-01T10:01:00.000Z', 'tomorrow', 'Tue, 01 Dec 2026 10:01:00 GMT', at(DEFAULT_RECONCILE.horizonHours * 3_600).toISOString()]) {
      const next = withRecheck(state({ recheckAt, recheckShard: 'temboplus#0' }), context(30), 'event');
      assert.equal(next.recheckAt, at(90).toISOString(), recheckAt);
      assert.equal(next.recheckShard, recheckShard('temboplus', 'REF-1', undefined, DEFAULT_RECONCILE.shards));
    }
    // What the gateway sets is kept: the schedule's longest step, a fault's back-off, a lease.
    for (const seconds of [172_800, DEFAULT_RECONCILE.faultBackoffCapSeconds * 1.25, DEFAULT_RECONCILE.leaseSeconds]) {
      const pending = state({ rechecks: 3, recheckAt: at(30 + seconds).toISOString(), recheckShard: 'temboplus#1' });
      assert.equal(withRecheck(pending, context(30), 'event'), pending, String(seconds));
    }
  });

  test('each re-check moves to the next delay of the schedule', () => {
    let current = withRecheck(state(), context(0), 'event');
    const seen: number[] = [];
    let clock = 60;
    for (let n = 0; n < 3; n++) {
      current = withRecheck(current, context(clock), 'recheck');
      const delay = (Date.parse(current.recheckAt!) - at(clock).getTime()) / 1000;
      seen.push(delay);
      clock += delay;
    }
    assert.deepEqual(seen, [300, 1800, 7200]);
    assert.equal(current.rechecks, 3);
  });

  test('after the last delay the subject is stale, listed under its provider, with the time', () => {
    const last = state({ rechecks: DEFAULT_RECONCILE.intervalsSeconds.length - 1, recheckAt: at(100).toISOString(), recheckShard: 'temboplus#1' });
    const next = withRecheck(last, context(200), 'recheck');
    assert.equal(next.stale, true);
    assert.equal(next.staleAt, at(200).toISOString());
    assert.equal(next.recheckShard, staleShard('temboplus'));
    assert.equal(next.changedAt, at(200).toISOString(), 'going stale is a change: its event is dated when it was written');
  });

  test("the provider's horizon ends the schedule sooner (TeleSign answers for 12 hours)", () => {
    const next = withRecheck(state({ rechecks: 3 }), context(11 * 3600, { limits: { horizonHours: 12 } }), 'recheck');
    assert.equal(next.stale, true, 'the next delay (12 h) would ask after the horizon, and the last ask (10.8 h) is past');
  });

  test('a step that would pass the horizon is a last ask just before it, not the end of asking (TeleSign: asked until 10.8 h, not 2 h 40 min)', () => {
    // prepare: TeleSign's schedule, 5 min first; the 4th re-check comes at 2 h 40 min
    const telesign = { limits: { firstAfterSeconds: 300, horizonHours: 12 } };
    let current = withRecheck(state({ provider: 'telesign' }), context(0, telesign), 'event');
    const asked: number[] = [];

    // act: every re-check, at its time, until the subject goes stale
    while (!current.stale) {
      const clock = (Date.parse(current.recheckAt!) - T0) / 1000;
      asked.push(clock);
      current = withRecheck(current, context(clock, telesign), 'recheck');
    }

    // assess
    assert.deepEqual(asked, [300, 600, 2400, 9600, 0.9 * 12 * 3600], 'the 12 h step shortened to the last ask within the horizon');
    assert.equal(current.staleAt, at(0.9 * 12 * 3600).toISOString(), 'stale after the last ask');
  });

  test('a final, confirmed status needs no re-check: the schedule is cleared', () => {
    const pending = withRecheck(state(), context(0), 'event');
    const final = withRecheck({ ...pending, status: 'COMPLETED', outcome: 'succeeded', terminal: true, confirmation: 'confirmed' }, context(10), 'event');
    assert.equal(final.recheckAt, undefined);
    assert.equal(final.recheckShard, undefined);
    assert.ok(settled(final, true));
  });

  test('a final status that is a mismatch or not found is asked about again', () => {
    for (const confirmation of ['mismatch', 'not_found'] as const) {
      const next = withRecheck(state({ status: 'COMPLETED', outcome: 'succeeded', terminal: true, confirmation }), context(0), 'event');
      assert.ok(next.recheckAt, confirmation);
    }
  });

  test('a provider that cannot be asked is re-checked only while an expected subject has no status', () => {
    assert.equal(withRecheck(state(), context(0, { askable: false }), 'event').recheckAt, undefined);
    const expected = state({ status: undefined, expectedAt: at(0).toISOString(), eventCount: 0 });
    assert.ok(withRecheck(expected, context(0, { askable: false }), 'event').recheckAt);
  });
});

describe('withRecheckFault', () => {
  const noJitter = () => 0.5;

  test('back-off doubles from the first delay up to the cap, with jitter, without using up the schedule', () => {
    let current = withRecheck(state(), context(0), 'event');
    const delays: number[] = [];
    let clock = 60;
    for (let n = 0; n < 8; n++) {
      current = withRecheckFault(current, context(clock), 'status endpoint answered 503', noJitter);
      const delay = (Date.parse(current.recheckAt!) - at(clock).getTime()) / 1000;
      delays.push(delay);
      clock += delay;
    }
    assert.deepEqual(delays, [60, 120, 240, 480, 960, 1800, 1800, 1800]);
    assert.equal(current.rechecks, 0);
    assert.equal(current.recheckFaults, 8);
    assert.equal(current.recheckFault, 'status endpoint answered 503');
  });

  test('jitter spreads re-checks that failed together over ±25 %', () => {
    const low = withRecheckFault(state(), context(0), 'x', () => 0);
    const high = withRecheckFault(state(), context(0), 'x', () => 0.999);
    assert.equal(Date.parse(low.recheckAt!) - T0, 45_000);
    assert.ok(Date.parse(high.recheckAt!) - T0 > 74_000);
  });

  test('an answer clears the fault count', () => {
    const failed = withRecheckFault(withRecheck(state(), context(0), 'event'), context(60), 'timeout', noJitter);
    const answered = withRecheck(failed, context(120), 'recheck');
    assert.equal(answered.recheckFaults, undefined);
    assert.equal(answered.recheckFault, undefined);
  });

  test('an outage past the horizon leaves the subject stale', () => {
    const next = withRecheckFault(state({ recheckFaults: 20 }), context(DEFAULT_RECONCILE.horizonHours * 3600), 'down', noJitter);
    assert.equal(next.stale, true);
  });
  test("a busy endpoint's Retry-After puts the next re-check no earlier than it says", () => {
    const scheduled = withRecheck(state(), context(0), 'event');
    // 1 h asked for: later than the 60 s back-off.
    const busy = withRecheckFault(scheduled, context(60), 'status endpoint answered 429 (busy, retry after 3600 s)', noJitter, 3600);
    assert.equal(busy.recheckAt, at(60 + 3600).toISOString());
    assert.equal(busy.recheckFaults, 1);
    assert.equal(busy.stale, undefined);
    // 5 s asked for: the back-off is longer, and stands.
    const brief = withRecheckFault(scheduled, context(60), 'answered 503', noJitter, 5);
    assert.equal(brief.recheckAt, at(60 + 60).toISOString());
  });

  test("a Retry-After beyond the horizon is capped at the subject's last ask within it", () => {
    // TeleSign-like: a 12 h horizon, last asked at 90 % of it (10 h 48 min after the first callback).
    const limits = { horizonHours: 12 };
    const busy = withRecheckFault(state(), context(10 * 3600, { limits }), 'answered 429', noJitter, 3600);
    assert.equal(busy.recheckAt, at(0.9 * 12 * 3600).toISOString());
    assert.equal(busy.stale, undefined);
  });

  test('a Retry-After of days is honoured for an hour at most: one answer does not hold a subject for days', () => {
    // TeleSign-like: 2 days asked for, 1 h into a 12 h horizon; the default policy: 6 days asked for.
    const telesign = withRecheckFault(state(), context(3600, { limits: { horizonHours: 12 } }), 'answered 429', noJitter, 2 * 86_400);
    assert.equal(telesign.recheckAt, at(3600 + MAX_HONOURED_RETRY_AFTER_SECONDS).toISOString());
    const scheduled = withRecheck(state(), context(0), 'event');
    const days = withRecheckFault(scheduled, context(60), 'answered 503', noJitter, 6 * 86_400);
    assert.equal(days.recheckAt, at(60 + MAX_HONOURED_RETRY_AFTER_SECONDS).toISOString());
    assert.equal(withRecheckNotBefore(scheduled, context(0), 6 * 86_400).recheckAt, at(MAX_HONOURED_RETRY_AFTER_SECONDS).toISOString());
    assert.equal(MAX_HONOURED_RETRY_AFTER_SECONDS, 3600);
  });
});

describe('withRecheckNotBefore (a callback stored while the endpoint was busy)', () => {
  test("a pending re-check sooner than the Retry-After is put back to it; a later one, or none, is left alone", () => {
    const scheduled = withRecheck(state(), context(0), 'event');
    assert.equal(scheduled.recheckAt, at(60).toISOString());
    assert.equal(withRecheckNotBefore(scheduled, context(0), 900).recheckAt, at(900).toISOString());
    assert.equal(withRecheckNotBefore(scheduled, context(0), 30), scheduled);
    assert.equal(withRecheckNotBefore(scheduled, context(0), undefined), scheduled);
    const none = state({ status: 'COMPLETED', outcome: 'succeeded', terminal: true });
    assert.equal(withRecheckNotBefore(none, context(0), 900), none);
  });
});

describe('retryAfterSeconds (RFC 9110 Retry-After)', () => {
  const now = Date.parse('2026-12-04T10:00:00.000Z');
  test('reads delay-seconds and the three HTTP-date forms, a date past as 0', () => {
    assert.equal(retryAfterSeconds('120', now), 120);
    assert.equal(retryAfterSeconds(' 0 ', now), 0);
    assert.equal(retryAfterSeconds('Fri, 04 Dec 2026 10:02:00 GMT', now), 120);
    assert.equal(retryAfterSeconds('Friday, 04-Dec-26 10:02:00 GMT', now), 120);
    // asctime carries no zone: it is UTC whatever the machine's time zone.
    assert.equal(retryAfterSeconds('Fri Dec  4 10:02:00 2026', now), 120);
    assert.equal(retryAfterSeconds('Fri, 04 Dec 2026 09:00:00 GMT', now), 0);
  });

  test('ignores what is missing, malformed or absurd', () => {
    for (const value of [null, undefined, '', '-5', '1.5', '12 s', 'soon', '2026-12-04T10:02:00Z', 'Fri, 04 Dec 2026 10:02:00 PST', '1e3', String(MAX_RETRY_AFTER_SECONDS + 1), 'Sat, 04 Dec 2100 10:00:00 GMT', '9'.repeat(20)]) {
      assert.equal(retryAfterSeconds(value, now), undefined, String(value));
    }
    assert.equal(retryAfterSeconds(String(MAX_RETRY_AFTER_SECONDS), now), MAX_RETRY_AFTER_SECONDS);
  });
});
