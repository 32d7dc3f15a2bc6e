import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ExpectationError, expectSubject } from '../../functions/core/expect.ts';
import type { StateItem } from '../../functions/core/state.ts';
import type { CallbackStore } from '../../functions/core/store.ts';
import { getProvider } from '../../functions/providers/index.ts';

/** Expectations (npm run expect, README "Expectations"): what may be expected, before anything is written. */

/** A table holding nothing; it keeps what is written. */
function emptyStore() {
  const written: StateItem[] = [];
  const store = {
    getState: async () => undefined,
    putState: async (state: StateItem) => (written.push(state), 'written' as const),
  } as unknown as CallbackStore;
  return { store, written };
}

describe('expectSubject: a part', () => {
  test('an eSMS recipient (a part eSMS reports with a state of its own) is expected', async () => {
    // prepare
    const { store, written } = emptyStore();
    // act
    const result = await expectSubject(store, getProvider('esms'), { subjectId: 'SMS-1', part: '84901234567' }, { now: new Date('2026-12-01T10:00:00Z') });
    // assess
    assert.equal(result.kind, 'expected');
    assert.deepEqual(written.map((state) => [state.subjectId, state.part]), [['SMS-1', '84901234567']]);
  });

  for (const id of ['temboplus', 'telesign', 'relid', 'identomat', 'standard-webhooks']) {
    test(`${id} reports no parts: a part is refused, and nothing is written (it would only ever go stale)`, async () => {
      // prepare
      const { store, written } = emptyStore();
      // act + assess
      await assert.rejects(
        expectSubject(store, getProvider(id), { subjectId: 'REF-1', part: '7' }, { now: new Date('2026-12-01T10:00:00Z') }),
        (error: Error) => error instanceof ExpectationError && /reports no parts of a subject/.test(error.message),
      );
      assert.deepEqual(written, []);
    });
  }
});
