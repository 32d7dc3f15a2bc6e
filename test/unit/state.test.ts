import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyObservations, orderKey, RECENT_OBSERVATIONS, type ConfirmationKind, type PlacedStatus, type StateItem, type SubjectRef, type Verdict } from '../../functions/core/state.ts';
import { stateItem, stateOf } from '../../functions/core/store.ts';
import { judgeClaim, placeStatus } from '../../functions/core/events.ts';
import { esms } from '../../functions/providers/esms.ts';
import { temboplus } from '../../functions/providers/temboplus.ts';

const NOW = '2025-01-01T12:00:00.000Z';

function placed(status: string, overrides: Partial<PlacedStatus> = {}): PlacedStatus {
  return { status, outcome: 'pending', terminal: false, statusAt: '2025-01-01T10:00:00.000Z', rank: 0, ...overrides };
}

/** One callback's contribution: its hash, the status it places, and the provider's verdict on it. */
interface StateChange {
  readonly eventHash: string;
  readonly placed?: PlacedStatus;
  readonly confirmation?: ConfirmationKind;
}

function change(eventHash: string, status?: PlacedStatus, confirmation?: ConfirmationKind): StateChange {
  return { eventHash, ...(status ? { placed: status } : {}), ...(confirmation ? { confirmation } : {}) };
}

/** One callback applied as the worker applies it (the placed status is the provider's answer when there is a verdict). */
function applyEvent(state: StateItem | undefined, event: StateChange, now: string): StateItem | undefined {
  const verdict = event.confirmation ? { kind: event.confirmation, ...(event.placed ? { answerStatus: event.placed.status } : {}) } : undefined;
  const source = event.confirmation ? 'status-endpoint' : 'callback';
  return applyObservations(state, { provider: 'p', subjectId: 's1' }, [{ hash: event.eventHash, counts: true, source, ...(event.placed ? { placed: event.placed } : {}) }], verdict, now);
}

/** Apply events in order as the worker does: an undefined result leaves the state as it was. */
function applyAll(changes: readonly StateChange[], start?: StateItem): StateItem | undefined {
  return changes.reduce<StateItem | undefined>((state, next) => applyEvent(state, next, NOW) ?? state, start);
}

/** Every ordering of the items (Heap's algorithm): deterministic, no dependency. */
function permutations<T>(items: readonly T[]): T[][] {
  const result: T[][] = [];
  const a = [...items];
  const c = new Array<number>(a.length).fill(0);
  result.push([...a]);
  let i = 0;
  while (i < a.length) {
    if (c[i] < i) {
      const j = i % 2 === 0 ? 0 : c[i];
      [a[j], a[i]] = [a[i], a[j]];
      result.push([...a]);
      c[i] += 1;
      i = 0;
    } else {
      c[i] = 0;
      i += 1;
    }
  }
  return result;
}

describe('orderKey', () => {
  const pairs: { name: string; lower: PlacedStatus; higher: PlacedStatus }[] = [
    {
      name: 'terminal beats non-terminal, however late and highly ranked the non-terminal is',
      lower: placed('WAITING_ACK', { rank: 2, statusAt: '2030-01-01T00:00:00.000Z' }),
      higher: placed('COMPLETED', { terminal: true, outcome: 'succeeded', statusAt: '2020-01-01T00:00:00.000Z' }),
    },
    {
      name: 'a higher rank beats a later time within a tier',
      lower: placed('COMPLETED', { terminal: true, statusAt: '2025-01-02T00:00:00.000Z' }),
      higher: placed('REVERSED', { terminal: true, rank: 1, statusAt: '2025-01-01T00:00:00.000Z' }),
    },
    {
      name: 'a later statusAt beats an earlier one with the same rank',
      lower: placed('203', { statusAt: '2025-01-01T10:00:00.000Z' }),
      higher: placed('290', { statusAt: '2025-01-01T10:00:00.001Z' }),
    },
    {
      name: 'a negative rank (unknown status) is below rank 0',
      lower: placed('SOMETHING_NEW', { rank: -1, statusAt: '2030-01-01T00:00:00.000Z' }),
      higher: placed('CREATED', { rank: 0 }),
    },
    {
      name: 'a status that ranks as terminal (TeleSign INVALID) orders above a lower-ranked terminal one, though not final',
      lower: placed('200', { terminal: true, outcome: 'succeeded', statusAt: '2025-01-02T00:00:00.000Z' }),
      higher: placed('200 INVALID', { outcome: 'failed', rank: 1, ranksAsTerminal: true }),
    },
    {
      name: 'and below a higher-ranked terminal one, whatever the times',
      lower: placed('200 INVALID', { outcome: 'failed', rank: 1, ranksAsTerminal: true, statusAt: '2025-01-02T00:00:00.000Z' }),
      higher: placed('200 VALID', { terminal: true, outcome: 'succeeded', rank: 3 }),
    },
    {
      name: 'rank 10 is above rank 9 (not compared as text)',
      lower: placed('a', { rank: 9 }),
      higher: placed('b', { rank: 10 }),
    },
    {
      name: 'a rank past 899 (an eSMS campaign counting thousands) is above 899, not capped to it',
      lower: placed('5', { terminal: true, rank: 899, statusAt: '2025-01-02T00:00:00.000Z' }),
      higher: placed('5', { terminal: true, rank: 900 }),
    },
    {
      name: 'and ranks past 899 order among themselves as numbers, whatever the times',
      lower: placed('5', { terminal: true, rank: 1000, statusAt: '2025-01-02T00:00:00.000Z' }),
      higher: placed('5', { terminal: true, rank: 5000 }),
    },
  ];
  for (const { name, lower, higher } of pairs) {
    test(name, () => {
      assert.ok(orderKey(higher) > orderKey(lower), `${orderKey(higher)} should sort above ${orderKey(lower)}`);
    });
  }
});

describe('applyEvent', () => {
  test('the first event creates the state', () => {
    // act
    const state = applyEvent(undefined, change('h1', placed('203', { statusAt: '2025-01-01T10:00:00.000Z' })), NOW);
    // assess
    assert.deepEqual(state, {
      provider: 'p',
      subjectId: 's1',
      status: '203',
      outcome: 'pending',
      terminal: false,
      statusAt: '2025-01-01T10:00:00.000Z',
      orderKey: orderKey(placed('203', { statusAt: '2025-01-01T10:00:00.000Z' })),
      source: 'callback',
      createdAt: NOW,
      updatedAt: NOW,
      changedAt: NOW,
      eventCount: 1,
      recent: ['h1'],
      seen: 1,
      version: 1,
    });
  });

  const pending = placed('203', { statusAt: '2025-01-01T10:00:05.000Z' });
  const delivered = placed('200', { terminal: true, outcome: 'succeeded', statusAt: '2025-01-01T10:00:00.000Z' });
  const orders = [
    { name: 'in order', changes: [change('a', pending), change('b', delivered)] },
    { name: 'terminal first, later-stamped pending after', changes: [change('b', delivered), change('a', pending)] },
  ];
  for (const { name, changes } of orders) {
    test(`terminal beats non-terminal regardless of arrival order (${name})`, () => {
      // act
      const state = applyAll(changes);
      // assess
      assert.equal(state?.status, '200');
      assert.equal(state?.terminal, true);
      assert.equal(state?.outcome, 'succeeded');
      assert.equal(state?.eventCount, 2);
    });
  }

  test('within a tier, a later statusAt wins and an earlier one arriving late changes only the count', () => {
    // prepare
    const early = placed('290', { statusAt: '2025-01-01T10:00:00.000Z' });
    const late = placed('291', { statusAt: '2025-01-01T10:01:00.000Z' });
    // act
    const state = applyAll([change('late', late), change('early', early)]);
    // assess
    assert.equal(state?.status, '291');
    assert.equal(state?.statusAt, late.statusAt);
    assert.equal(state?.eventCount, 2);
  });

  test('TemboPlus REVERSED (rank 1) beats COMPLETED, in either order', () => {
    // prepare: the real provider's placement of both statuses, COMPLETED stamped later
    const facts = (status: string, updatedAt: string) => temboplus.describe({ partnerReference: 'PR-1', status, statusCode: null, updatedAt });
    const completed = facts('COMPLETED', '2025-01-01T10:05:00Z');
    const reversed = facts('REVERSED', '2025-01-01T10:00:00Z');
    const asChange = (f: typeof completed) =>
      change(f.eventKey, { status: f.status, outcome: f.outcome, terminal: f.terminal, statusAt: f.statusAt!, rank: f.rank });
    // act
    const forward = applyAll([asChange(completed), asChange(reversed)]);
    const backward = applyAll([asChange(reversed), asChange(completed)]);
    // assess
    assert.equal(reversed.rank, 1);
    assert.equal(completed.rank, 0);
    for (const state of [forward, backward]) {
      assert.equal(state?.status, 'REVERSED');
      assert.equal(state?.outcome, 'failed');
      assert.equal(state?.terminal, true);
    }
  });

  test('a redelivered event (same eventHash) changes nothing', () => {
    // prepare
    const state = applyAll([change('a', pending), change('b', delivered)])!;
    // act
    const again = applyEvent(state, change('a', placed('999', { terminal: true, rank: 50 })), NOW);
    // assess
    assert.equal(again, undefined);
  });

  test('eventCount counts distinct events only', () => {
    // act
    const state = applyAll([change('a', pending), change('a', pending), change('b', delivered), change('a', pending), change('b', delivered), change('c')]);
    // assess
    assert.equal(state?.eventCount, 3);
    assert.deepEqual(state?.recent, ['a', 'b', 'c']);
    assert.equal(state?.version, 3, 'one write per distinct event');
  });

  test('a lower-placed event still counts and bumps updatedAt and version', () => {
    // prepare
    const before = applyEvent(undefined, change('b', delivered), '2025-01-01T11:00:00.000Z')!;
    // act
    const after = applyEvent(before, change('a', pending), NOW)!;
    // assess
    assert.equal(after.status, '200');
    assert.equal(after.orderKey, before.orderKey);
    assert.equal(after.eventCount, 2);
    assert.equal(after.updatedAt, NOW);
    assert.equal(after.version, Number(before.version) + 1);
  });

  test('confirmation not_found on a subject with no status records the confirmation without a status', () => {
    // act
    const state = applyEvent(undefined, change('claim', undefined, 'not_found'), NOW);
    // assess
    assert.equal(state?.status, undefined);
    assert.equal(state?.orderKey, undefined);
    assert.equal(state?.confirmation, 'not_found');
    assert.equal(state?.confirmedAt, NOW);
    assert.equal(state?.confirmedStatus, undefined);
    assert.equal(state?.outcome, 'pending');
    assert.equal(state?.terminal, false);
    assert.equal(state?.eventCount, 1);
  });

  test('confirmation not_found on a subject with a confirmed status leaves status and confirmation alone', () => {
    // prepare
    const confirmed = applyEvent(undefined, change('c1', delivered, 'confirmed'), '2025-01-01T11:00:00.000Z')!;
    // act
    const state = applyEvent(confirmed, change('c2', undefined, 'not_found'), NOW);
    // assess
    assert.equal(state?.status, '200');
    assert.equal(state?.confirmation, 'confirmed');
    assert.equal(state?.confirmedStatus, '200');
    assert.equal(state?.confirmedAt, '2025-01-01T11:00:00.000Z');
    assert.equal(state?.eventCount, 2);
  });

  test('a mismatch followed by a confirmed callback for the status in place reads confirmed', () => {
    // prepare: TemboPlus answered COMPLETED to a stale SUBMITTED callback
    const completed = placed('COMPLETED', { terminal: true, outcome: 'succeeded', statusAt: '2025-01-01T10:00:05.000Z' });
    const mismatched = applyEvent(undefined, change('stale', completed, 'mismatch'), '2025-01-01T11:00:00.000Z')!;
    // act
    const state = applyEvent(mismatched, change('done', completed, 'confirmed'), NOW);
    // assess
    assert.equal(mismatched.confirmation, 'mismatch');
    assert.equal(state?.status, 'COMPLETED');
    assert.equal(state?.confirmation, 'confirmed');
    assert.equal(state?.confirmedAt, NOW);
    assert.equal(state?.eventCount, 2);
  });

  test("a stale callback's mismatch does not undo the confirmation of the status in place", () => {
    // prepare
    const completed = placed('COMPLETED', { terminal: true, outcome: 'succeeded', statusAt: '2025-01-01T10:00:05.000Z' });
    const confirmed = applyEvent(undefined, change('done', completed, 'confirmed'), '2025-01-01T11:00:00.000Z')!;
    // act
    const state = applyObservations(confirmed, { provider: 'p', subjectId: 's1' }, [{ hash: 'stale', counts: true, source: 'callback' }],
      { kind: 'mismatch', answerStatus: 'COMPLETED', differences: ['status'], behind: true }, NOW);
    // assess
    assert.equal(state?.confirmation, 'confirmed');
    assert.equal(state?.confirmedAt, '2025-01-01T11:00:00.000Z');
    assert.equal(state?.eventCount, 2);
  });

  test('a mismatch of a callback ahead of the provider (or with other material fields) is recorded with its fields', () => {
    // prepare
    const completed = placed('COMPLETED', { terminal: true, outcome: 'succeeded', statusAt: '2025-01-01T10:00:05.000Z' });
    const confirmed = applyEvent(undefined, change('done', completed, 'confirmed'), '2025-01-01T11:00:00.000Z')!;
    // act
    const state = applyObservations(confirmed, { provider: 'p', subjectId: 's1' }, [{ hash: 'other-amount', counts: true, source: 'callback' }],
      { kind: 'mismatch', answerStatus: 'COMPLETED', differences: ['receiverAmount'] }, NOW);
    // assess
    assert.equal(state?.status, 'COMPLETED');
    assert.equal(state?.confirmation, 'mismatch');
    assert.deepEqual(state?.differences, ['receiverAmount']);
    assert.equal(state?.changedAt, NOW);
  });

  test('a not_found subject later confirmed takes the confirmed status', () => {
    // act
    const state = applyAll([change('c1', undefined, 'not_found'), change('c2', delivered, 'mismatch')]);
    // assess
    assert.equal(state?.status, '200');
    assert.equal(state?.confirmation, 'mismatch');
    assert.equal(state?.confirmedStatus, '200');
  });
});

describe('applyEvent: arrival order does not matter', () => {
  const scenarios: { name: string; events: StateChange[]; expected: { status: string; outcome: string; terminal: boolean } }[] = [
    {
      name: 'TeleSign 203 / 200 / a 290 stamped after the 200',
      events: [
        change('203', placed('203', { statusAt: '2025-01-01T10:00:00.000Z' })),
        change('200', placed('200', { terminal: true, outcome: 'succeeded', statusAt: '2025-01-01T10:00:05.000Z' })),
        change('290', placed('290', { statusAt: '2025-01-01T10:00:09.000Z' })),
      ],
      expected: { status: '200', outcome: 'succeeded', terminal: true },
    },
    {
      name: 'TemboPlus CREATED / SUBMITTED / WAITING_ACK / COMPLETED / REVERSED / an unknown status',
      events: [
        change('c', placed('CREATED', { rank: 0, statusAt: '2025-01-01T10:00:00.000Z' })),
        change('s', placed('SUBMITTED', { rank: 1, statusAt: '2025-01-01T10:00:01.000Z' })),
        change('w', placed('WAITING_ACK', { rank: 2, statusAt: '2025-01-01T10:00:02.000Z' })),
        change('done', placed('COMPLETED', { terminal: true, outcome: 'succeeded', statusAt: '2025-01-01T10:00:03.000Z' })),
        change('rev', placed('REVERSED', { terminal: true, outcome: 'failed', rank: 1, statusAt: '2025-01-01T10:00:04.000Z' })),
        change('new', placed('ON_HOLD', { rank: -1, statusAt: '2025-01-01T10:00:09.000Z' })),
      ],
      expected: { status: 'REVERSED', outcome: 'failed', terminal: true },
    },
    {
      name: 'TemboPlus verdicts: two failed terminal statuses with one timestamp (tie broken by status text) and a not_found',
      events: [
        change('x', placed('FAILED', { terminal: true, outcome: 'failed', statusAt: '2025-01-01T10:00:00.000Z' }), 'confirmed'),
        change('y', placed('CANCELED', { terminal: true, outcome: 'failed', statusAt: '2025-01-01T10:00:00.000Z' }), 'mismatch'),
        change('z', placed('SUBMITTED', { rank: 1, statusAt: '2025-01-01T10:00:00.000Z' }), 'confirmed'),
        change('n', undefined, 'not_found'),
      ],
      expected: { status: 'FAILED', outcome: 'failed', terminal: true },
    },
    {
      name: 'TemboPlus: a stale SUBMITTED callback answered COMPLETED (mismatch), and the COMPLETED callback (confirmed)',
      events: [
        change('stale', placed('COMPLETED', { terminal: true, outcome: 'succeeded', statusAt: '2025-01-01T10:00:05.000Z' }), 'mismatch'),
        change('done', placed('COMPLETED', { terminal: true, outcome: 'succeeded', statusAt: '2025-01-01T10:00:05.000Z' }), 'confirmed'),
      ],
      expected: { status: 'COMPLETED', outcome: 'succeeded', terminal: true },
    },
  ];

  for (const { name, events, expected } of scenarios) {
    test(`${name}: every permutation ends in the same state`, () => {
      // prepare
      const orders = permutations(events);
      // act
      const finals = orders.map((order) => applyAll(order)!);
      // assess
      assert.equal(orders.length, [...Array(events.length).keys()].reduce((product, i) => product * (i + 1), 1), 'all orderings generated');
      assert.equal(new Set(orders.map((order) => order.map((event) => event.eventHash).join(','))).size, orders.length, 'orderings are distinct');
      for (const [index, state] of finals.entries()) {
        const order = orders[index].map((event) => event.eventHash).join(' → ');
        assert.deepEqual(
          { status: state.status, outcome: state.outcome, terminal: state.terminal },
          expected,
          `arrival order ${order}`,
        );
        assert.equal(state.statusAt, finals[0].statusAt, `arrival order ${order}`);
        assert.equal(state.orderKey, finals[0].orderKey, `arrival order ${order}`);
        assert.equal(state.eventCount, events.length, `arrival order ${order}`);
        // The confirmation is the latest verdict (what the provider said when last asked), so it
        // follows the order in which the provider was asked; the status does not.
      }
    });

    test(`${name}: every permutation with every event delivered twice ends in the same state`, () => {
      // prepare: redeliveries interleaved (each event again right after the next one)
      const orders = permutations(events).map((order) => order.flatMap((event, i) => (i === 0 ? [event] : [event, order[i - 1]])));
      // act
      const finals = orders.map((order) => applyAll(order)!);
      // assess
      for (const state of finals) {
        assert.equal(state.status, expected.status);
        assert.equal(state.eventCount, events.length);
      }
    });
  }

  test('the permutation generator yields n! distinct orderings', () => {
    for (const n of [0, 1, 2, 3, 4, 5]) {
      const items = [...Array(n).keys()];
      const orders = permutations(items);
      const factorial = items.reduce((product, i) => product * (i + 1), 1);
      assert.equal(orders.length, factorial, `n=${n}`);
      assert.equal(new Set(orders.map((order) => order.join(','))).size, factorial, `n=${n}`);
      for (const order of orders) assert.deepEqual([...order].sort(), items);
    }
  });
});

describe('orderKey ties', () => {
  test('same status and time but different outcome resolve the same way in either arrival order', () => {
    // prepare
    const at = '2026-01-01T00:00:00.000Z';
    const a: StateChange = { eventHash: 'a', placed: { status: '5', outcome: 'failed', terminal: true, statusAt: at, rank: 0 } };
    const b: StateChange = { eventHash: 'b', placed: { status: '5', outcome: 'succeeded', terminal: true, statusAt: at, rank: 0 } };
    // act
    const ab = applyEvent(applyEvent(undefined, a, at), b, at);
    const ba = applyEvent(applyEvent(undefined, b, at), a, at);
    // assess
    assert.equal(ab?.outcome, ba?.outcome);
    assert.equal(ab?.orderKey, ba?.orderKey);
    assert.equal(ab?.outcome, 'failed', 'a tie is never resolved as success');
  });

  for (const [success, failure] of [['COMPLETED', 'CANCELED'], ['UPDATED', 'EXPIRED'], ['APPROVED', 'REJECTED']]) {
    test(`two final statuses at the same time, ${success} (succeeded) and ${failure} (failed): failed, in either arrival order (was: the status text decided)`, () => {
      // prepare
      const at = '2026-01-01T00:00:00.000Z';
      const good: StateChange = { eventHash: 'good', placed: { status: success, outcome: 'succeeded', terminal: true, statusAt: at, rank: 0 } };
      const bad: StateChange = { eventHash: 'bad', placed: { status: failure, outcome: 'failed', terminal: true, statusAt: at, rank: 0 } };
      // act
      const goodFirst = applyEvent(applyEvent(undefined, good, at), bad, at);
      const badFirst = applyEvent(applyEvent(undefined, bad, at), good, at);
      // assess
      for (const state of [goodFirst, badFirst]) assert.deepEqual([state?.status, state?.outcome], [failure, 'failed']);
    });
  }
});

describe('a confirmation belongs to the status it was given for', () => {
  const T = (minute: number) => `2026-12-01T10:${String(minute).padStart(2, '0')}:00.000Z`;
  const subject = { provider: 'telesign', subjectId: 'REF-1' };
  const sent: PlacedStatus = { status: '203', outcome: 'pending', terminal: false, statusAt: T(0), rank: 0 };
  const delivered: PlacedStatus = { status: '200', outcome: 'succeeded', terminal: true, statusAt: T(5), rank: 0 };
  const confirmed = applyObservations(undefined, subject, [{ hash: 'a', counts: true, source: 'callback', placed: sent }], { kind: 'confirmed', answerStatus: '203' }, T(0))!;

  test('a new status with no verdict on it is unconfirmed (was: the 203\'s confirmation read as the 200\'s)', () => {
    // act
    const next = applyObservations(confirmed, subject, [{ hash: 'b', counts: true, source: 'callback', placed: delivered }], undefined, T(5))!;
    // assess
    assert.deepEqual([confirmed.confirmation, confirmed.confirmedStatus], ['confirmed', '203'], 'the premise');
    assert.deepEqual([next.status, next.confirmation, next.confirmedStatus, next.confirmedAt], ['200', undefined, undefined, undefined]);
  });

  for (const verdict of [{ kind: 'not_found' as const }, { kind: 'mismatch' as const, differences: ['subject'] }]) {
    test(`a ${verdict.kind} verdict names no status the endpoint did not answer`, () => {
      // act
      const next = applyObservations(confirmed, subject, [{ hash: 'b', counts: true, source: 'callback', placed: delivered }], verdict, T(5))!;
      // assess
      assert.deepEqual([next.confirmation, next.confirmedStatus], [verdict.kind, undefined]);
    });
  }

  test('a claim the answer contradicts (not behind) still marks the state a mismatch', () => {
    // prepare: a not-believed claim of COMPLETED; the provider answers PENDING
    const tembo = { provider: 'temboplus', subjectId: 'REF-2' };
    const pending: PlacedStatus = { status: 'PENDING', outcome: 'pending', terminal: false, statusAt: T(1), rank: 0 };
    // act
    const next = applyObservations(undefined, tembo, [{ hash: 'c1', counts: true, source: 'callback' }, { hash: 'a1', counts: false, source: 'status-endpoint', placed: pending }], { kind: 'mismatch', answerStatus: 'PENDING', differences: ['status'] }, T(2))!;
    // assess
    assert.deepEqual([next.status, next.confirmation, next.differences], ['PENDING', 'mismatch', ['status']]);
  });

  /** One worker's state write: its report, the answer it was given, and the verdict on the report. */
  const reported = (subject: SubjectRef, hash: string, claim: PlacedStatus, answer: PlacedStatus, verdict: Verdict) => (state: StateItem | undefined) =>
    applyObservations(state, subject, [{ hash, counts: true, source: 'callback', placed: claim }, { hash: `answer-${hash}`, counts: false, source: 'status-endpoint', placed: answer }],
      { ...verdict, answerOrderKey: orderKey(answer) }, T(12)) ?? state;

  test('two workers asking about one message: the final report confirmed, the pending one behind it, the same state in either write order', () => {
    // prepare: eSMS-like answers carry no time of their own, so each is placed when it was asked: A
    // (the final report) asked first, B (an earlier pending report, another worker's) a second later.
    const esms = { provider: 'esms', subjectId: 'SMS-1' };
    const finalClaim: PlacedStatus = { status: '5', outcome: 'succeeded', terminal: true, statusAt: T(3), rank: 0 };
    const pendingClaim: PlacedStatus = { status: '7', outcome: 'pending', terminal: false, statusAt: T(1), rank: 0 };
    const answerA: PlacedStatus = { ...finalClaim, statusAt: T(10) };
    const answerB: PlacedStatus = { ...finalClaim, statusAt: T(11) };
    const a = reported(esms, 'a', finalClaim, answerA, { kind: 'confirmed', answerStatus: '5' });
    const b = reported(esms, 'b', pendingClaim, answerB, { kind: 'mismatch', answerStatus: '5', differences: ['status'], behind: true, olderStep: true });
    // act
    const aFirst = b(a(undefined));
    const bFirst = a(b(undefined));
    // assess: before, B first left the final status `mismatch` (A's earlier answer was dropped as old news)
    for (const state of [aFirst, bFirst]) assert.deepEqual([state?.status, state?.confirmation, state?.confirmedStatus, state?.eventCount], ['5', 'confirmed', '5', 2]);
  });

  test('two workers asking about one message: a forged final report and a genuine pending one, the forgery flagged in either write order', () => {
    // prepare: the message failed. A (a forged "delivered", asked first) and B (the genuine report
    // before the final one, another worker's, asked a second later); eSMS-like answers placed when asked.
    const esms = { provider: 'esms', subjectId: 'SMS-3' };
    const forged: PlacedStatus = { status: '5', outcome: 'succeeded', terminal: true, statusAt: T(1), rank: 1 };
    const pendingClaim: PlacedStatus = { status: '7', outcome: 'pending', terminal: false, statusAt: T(2), rank: 1 };
    const failed: PlacedStatus = { status: '5', outcome: 'failed', terminal: true, statusAt: T(10), rank: 1 };
    const answerA: PlacedStatus = { ...failed, statusAt: T(10) };
    const answerB: PlacedStatus = { ...failed, statusAt: T(11) };
    const a = reported(esms, 'a', forged, answerA, { kind: 'mismatch', answerStatus: '5', claimStatus: '5', differences: ['SendSuccess', 'SendFailed', 'outcome'], behind: true });
    const b = reported(esms, 'b', pendingClaim, answerB, { kind: 'mismatch', answerStatus: '5', differences: ['SendStatus', 'SendFailed'], behind: true, olderStep: true });
    // act
    const aFirst = b(a(undefined));
    const bFirst = a(b(undefined));
    // assess: before, B first left the failed message with nothing said of it (A's verdict dropped as
    // an older answer's), and A first had B's differences put in place of the forgery's
    for (const state of [aFirst, bFirst]) {
      assert.deepEqual([state?.status, state?.outcome, state?.confirmation, state?.confirmedStatus, state?.differences], ['5', 'failed', 'mismatch', '5', ['SendSuccess', 'SendFailed', 'outcome']]);
    }
  });

  test('a sent report with receivers still to count, older than an answer counted further: an earlier step, as a re-check judges it', () => {
    // prepare: SendStatus 5 with none of 2 receivers counted (not final, ranked with the final
    // statuses), and eSMS's answer a second later with both counted
    const judge = (query: Record<string, string>, at: string) => {
      const facts = esms.describe(query as never);
      return { payload: query, facts, placed: placeStatus(facts, at) };
    };
    const claim = judge({ SMSID: 'SMS-4', SendStatus: '5', SendSuccess: '0', SendFailed: '0', TotalReceiver: '2' }, T(1));
    const answer = judge({ SMSID: 'SMS-4', SendStatus: '5', SendSuccess: '2', SendFailed: '0', TotalReceiver: '2' }, T(2));
    // act
    const { verdict } = judgeClaim(esms, claim, answer);
    // assess: before, it read as a final report contradicted, and flagged the confirmed message's
    // state when it wrote first
    assert.deepEqual([claim.placed.terminal, claim.placed.ranksAsTerminal], [false, true]);
    assert.deepEqual([verdict.kind, verdict.differences, verdict.behind, verdict.olderStep], ['mismatch', ['SendSuccess'], true, true]);
  });

  test("a delivered report ahead of eSMS's answer, which has not sent to the recipient yet: not flagged past a newer answer", () => {
    // prepare: the claim (delivered) and eSMS's answer asked a moment after it (not yet sent), then a
    // newer answer (delivered) already in place and confirmed
    const judge = (query: Record<string, string>, at: string) => {
      const facts = esms.describe(query as never);
      return { payload: query, facts, placed: placeStatus(facts, at) };
    };
    const sms = { SMSID: 'SMS-5', SendStatus: '5', SendSuccess: '1', SendFailed: '0', TotalReceiver: '1', phonenumber: '0901000001' };
    const claim = judge(sms, T(1));
    const notYet = judge({ ...sms, IsSent: 'false' }, T(2));
    const delivered = judge({ ...sms, IsSent: 'true', SentResult: '1' }, T(3));
    const part = { provider: 'esms', subjectId: 'SMS-5', part: '0901000001' };
    const confirmed = applyObservations(undefined, part, [{ hash: 'answer-b', counts: false, source: 'status-endpoint', placed: delivered.placed }],
      { kind: 'confirmed', answerStatus: '5', answerOrderKey: orderKey(delivered.placed) }, T(4))!;
    // act
    const { verdict, unsettled } = judgeClaim(esms, claim, notYet);
    const next = applyObservations(confirmed, part, [{ hash: 'answer-a', counts: false, source: 'status-endpoint', placed: notYet.placed }], verdict, T(5)) ?? confirmed;
    // assess: before, the older answer's mismatch was put in place of the newer confirmation
    assert.deepEqual([verdict.kind, verdict.differences, unsettled, verdict.claimStatus], ['mismatch', ['outcome'], true, undefined]);
    assert.deepEqual([next.status, next.outcome, next.confirmation, next.differences], ['5', 'succeeded', 'confirmed', undefined]);
  });

  test('a signed status in place is not confirmed by an answer older than it: the re-check asks', () => {
    // act: a signed "delivered" as of 10:05; the provider's answer "delivered" as of 10:00
    const delivered: PlacedStatus = { status: '200', outcome: 'succeeded', terminal: true, statusAt: T(5), rank: 0 };
    const answer: PlacedStatus = { ...delivered, statusAt: T(0) };
    const next = applyObservations(undefined, subject, [{ hash: 'd', counts: true, source: 'callback', placed: delivered }, { hash: 'answer', counts: false, source: 'status-endpoint', placed: answer }],
      { kind: 'confirmed', answerStatus: '200', answerOrderKey: orderKey(answer) }, T(6))!;
    // assess: before, confirmed (and settled) on arrival, where an older failure the provider then
    // reports can no longer take the success away
    assert.deepEqual([next.status, next.source, next.confirmation], ['200', 'callback', undefined]);
  });

  test("a stale report whose answer is put in place, nothing said of it yet: the provider's own status is confirmed, not a mismatch", () => {
    // act: the pending report alone, the provider already at the final status
    const pendingClaim: PlacedStatus = { status: '7', outcome: 'pending', terminal: false, statusAt: T(1), rank: 0 };
    const answer: PlacedStatus = { status: '5', outcome: 'succeeded', terminal: true, statusAt: T(10), rank: 0 };
    const next = applyObservations(undefined, { provider: 'esms', subjectId: 'SMS-2' }, [{ hash: 'b', counts: true, source: 'callback', placed: pendingClaim }, { hash: 'answer', counts: false, source: 'status-endpoint', placed: answer }],
      { kind: 'mismatch', answerStatus: '5', differences: ['status'], behind: true, olderStep: true, answerOrderKey: orderKey(answer) }, T(12))!;
    // assess: the report's own verdict stays on its item (the worker writes it there)
    assert.deepEqual([next.status, next.source, next.confirmation, next.confirmedStatus, next.differences], ['5', 'status-endpoint', 'confirmed', '5', undefined]);
  });

  test("a late earlier step answered with the status in place, where the provider had not known the subject: confirmed, in either write order", () => {
    // prepare: a signed 200 in place, Get Status not knowing the reference yet (not_found on its last
    // receive); a 203 delivered late is asked about once TeleSign knows it, and answers 200 as of a
    // minute after the callback's time
    const notFound = applyObservations(undefined, subject, [{ hash: 'd', counts: true, source: 'callback', placed: delivered }], { kind: 'not_found' }, T(6))!;
    const answer: PlacedStatus = { ...delivered, statusAt: T(6) };
    const late = (state: StateItem | undefined) =>
      applyObservations(state, subject, [{ hash: 's', counts: true, source: 'callback', placed: sent }, { hash: 'answer', counts: false, source: 'status-endpoint', placed: answer }],
        { kind: 'mismatch', answerStatus: '200', claimStatus: '203', differences: ['status'], behind: true, olderStep: true, answerOrderKey: orderKey(answer) }, T(8)) ?? state;
    const notKnown = (state: StateItem | undefined) =>
      applyObservations(state, subject, [{ hash: 'd', counts: true, source: 'callback', placed: delivered }], { kind: 'not_found' }, T(8)) ?? state;
    // act
    const notFoundFirst = late(notFound);
    const lateFirst = notKnown(late(undefined));
    // assess: before, the not_found written first left the 200 the provider answers 'mismatch' (['status'])
    assert.equal(notFound.confirmation, 'not_found', 'the premise');
    for (const state of [notFoundFirst, lateFirst]) {
      assert.deepEqual([state?.status, state?.confirmation, state?.confirmedStatus, state?.differences], ['200', 'confirmed', '200', undefined]);
    }
  });

  test('a stale report on a status already judged a mismatch changes nothing of that judgement', () => {
    // prepare: COMPLETED in place, flagged (a claim of it named another account)
    const completed: PlacedStatus = { status: 'COMPLETED', outcome: 'succeeded', terminal: true, statusAt: T(10), rank: 0 };
    const flagged = applyObservations(undefined, { provider: 'temboplus', subjectId: 'T-4' }, [{ hash: 'forged', counts: true, source: 'callback' }, { hash: 'answer', counts: false, source: 'status-endpoint', placed: completed }],
      { kind: 'mismatch', answerStatus: 'COMPLETED', differences: ['receiverAccount'], answerOrderKey: orderKey(completed) }, T(11))!;
    // act: a late SUBMITTED
    const next = applyObservations(flagged, { provider: 'temboplus', subjectId: 'T-4' }, [{ hash: 'late', counts: true, source: 'callback' }],
      { kind: 'mismatch', answerStatus: 'COMPLETED', differences: ['status'], behind: true, olderStep: true, answerOrderKey: orderKey(completed) }, T(12))!;
    // assess: still flagged for the account (before, the late report's ['status'] replaced it)
    assert.deepEqual([next.confirmation, next.confirmedStatus, next.differences, next.eventCount], ['mismatch', 'COMPLETED', ['receiverAccount'], 2]);
  });

  test('a final report older than the answer is no earlier step: its mismatch is on the state', () => {
    // act: a signed "delivered" (200) the provider, asked after, calls failed (207)
    const delivered: PlacedStatus = { status: '200', outcome: 'succeeded', terminal: true, statusAt: T(1), rank: 0 };
    const answer: PlacedStatus = { status: '207', outcome: 'failed', terminal: true, statusAt: T(10), rank: 0 };
    const next = applyObservations(undefined, subject, [{ hash: 'c', counts: true, source: 'callback', placed: delivered }, { hash: 'answer', counts: false, source: 'status-endpoint', placed: answer }],
      { kind: 'mismatch', answerStatus: '207', differences: ['status'], behind: true, answerOrderKey: orderKey(answer) }, T(12))!;
    // assess
    assert.deepEqual([next.status, next.confirmation, next.confirmedStatus, next.differences], ['207', 'mismatch', '207', ['status']]);
  });

  test('the same status reported again later keeps its confirmation', () => {
    // act
    const next = applyObservations(confirmed, subject, [{ hash: 'b', counts: true, source: 'callback', placed: { ...sent, statusAt: T(1) } }], undefined, T(1))!;
    // assess
    assert.deepEqual([next.status, next.statusAt, next.confirmation, next.confirmedStatus], ['203', T(1), 'confirmed', '203']);
  });
});

describe('order keys stored by an earlier version (tier|rank|statusAt|status)', () => {
  const at = '2026-01-01T00:00:00.000Z';
  const good: PlacedStatus = { status: 'COMPLETED', outcome: 'succeeded', terminal: true, statusAt: at, rank: 0 };
  const bad: PlacedStatus = { status: 'CANCELED', outcome: 'failed', terminal: true, statusAt: at, rank: 0 };
  /** A state as the earlier version stored it: the outcome not in its order key. */
  const storedEarlier = (placed: PlacedStatus) => {
    const state = applyEvent(undefined, { eventHash: 'first', placed }, at)!;
    return stateItem({ ...state, orderKey: `1|100|${at}|${placed.status}` });
  };

  test('a success stored under the old key still loses an exact tie to a failure (was: COMPLETED beat CANCELED by its text)', () => {
    // act
    const read = stateOf(storedEarlier(good));
    const next = applyEvent(read, { eventHash: 'second', placed: bad }, at);
    // assess
    assert.equal(read.orderKey, orderKey(good), 'read in today\'s form');
    assert.deepEqual([next?.status, next?.outcome, next?.orderKey], ['CANCELED', 'failed', orderKey(bad)]);
  });

  test('a failure stored under the old key is not overturned by a success at the same time', () => {
    // act
    const next = applyEvent(stateOf(storedEarlier(bad)), { eventHash: 'second', placed: good }, at);
    // assess: no change to apply
    assert.equal(next?.status ?? 'CANCELED', 'CANCELED');
    assert.equal(next?.outcome ?? 'failed', 'failed');
  });

  test("today's keys, and keys of statuses holding '|', are read as they are", () => {
    // prepare
    const piped: PlacedStatus = { ...bad, status: `x|${at}|y` };
    const current = stateItem(applyEvent(undefined, { eventHash: 'a', placed: piped }, at)!);
    // act
    const read = stateOf(current);
    // assess
    assert.equal(read.orderKey, orderKey(piped));
    assert.equal(stateOf(storedEarlier(piped)).orderKey, orderKey(piped), 'an old key of such a status is upgraded too');
  });
});

describe('bounded state', () => {
  test(`however many distinct events a subject gets, the state remembers only the last ${RECENT_OBSERVATIONS} and stays small`, () => {
    // prepare: 30,000 distinct events (past the 24,000 that once pushed a state over 400 KB)
    let state: StateItem | undefined;
    // act
    for (let i = 0; i < 30_000; i++) state = applyEvent(state, change(`h${i}`, placed(String(i % 7), { statusAt: new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString() })), NOW) ?? state;
    // assess
    assert.equal(state?.eventCount, 30_000);
    assert.equal(state?.seen, 30_000);
    assert.equal(state?.recent.length, RECENT_OBSERVATIONS);
    assert.deepEqual(state?.recent.at(-1), 'h29999');
    assert.ok(Buffer.byteLength(JSON.stringify(state)) < 2_000, `state is ${Buffer.byteLength(JSON.stringify(state))} bytes`);
  });

  test('a recent redelivery is recognised by its hash: nothing changes', () => {
    // prepare
    let state: StateItem | undefined;
    for (let i = 0; i < RECENT_OBSERVATIONS; i++) state = applyEvent(state, change(`h${i}`), NOW) ?? state;
    // act
    const again = applyEvent(state, change('h0'), NOW);
    // assess
    assert.equal(again, undefined);
  });
});
