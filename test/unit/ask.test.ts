import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { isEndpointFault, lookupAnswer, setLookupDeadline } from '../../functions/core/ask.ts';
import { getProvider } from '../../functions/providers/index.ts';
import { DependencyError } from '../../functions/shared/errors.ts';
import { kitOf } from '../providers/index.ts';

/**
 * A status request starts only if it can end before the invocation must: a batch queued behind a
 * hanging endpoint must not outlast Lambda's timeout (which fails the whole batch, every receive,
 * into the DLQ), but fail the records it cannot ask about, each retried with back-off.
 */

const temboplus = getProvider('temboplus');
const secret = temboplus.secretSchema.parse(kitOf(temboplus).secret('unit', { statusEndpoint: 'http://127.0.0.1:9', asks: true }));

function counting() {
  let calls = 0;
  const fetchNotFound: typeof fetch = async () => {
    calls++;
    return new Response('{}', { status: 404 });
  };
  return { fetch: fetchNotFound, calls: () => calls };
}

const ask = (fetchImpl: typeof fetch, timeoutMs: number) =>
  lookupAnswer(temboplus, { subjectId: 'PR-1' }, secret, { lookup: { fetch: fetchImpl, timeoutMs, newRequestId: () => 'r' }, now: () => new Date() });

afterEach(() => setLookupDeadline(undefined));

describe('status requests and the invocation deadline', () => {
  test('too close to the deadline for a request and its retry: not asked, an endpoint fault (the record is retried, or stored unconfirmed on its last tries)', async () => {
    // prepare
    const endpoint = counting();
    setLookupDeadline(Date.now() + 9_000);
    // act
    const error = await ask(endpoint.fetch, 5_000).then(() => undefined, (caught: unknown) => caught);
    // assess
    assert.ok(error instanceof DependencyError, String(error));
    assert.match(error.message, /no time left in this invocation/);
    assert.ok(isEndpointFault(temboplus, error), 'handled like the endpoint failing');
    assert.equal(endpoint.calls(), 0, 'nothing was sent');
  });

  test('with time for it, or with no deadline (the local runtime), it is asked', async () => {
    // prepare
    const endpoint = counting();
    // act
    setLookupDeadline(Date.now() + 11_000);
    const withTime = await ask(endpoint.fetch, 5_000);
    setLookupDeadline(undefined);
    const without = await ask(endpoint.fetch, 5_000);
    // assess
    assert.deepEqual([withTime.kind, without.kind], ['not_found', 'not_found']);
    assert.equal(endpoint.calls(), 2);
  });
});
