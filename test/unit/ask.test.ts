import assert from 'node:assert/strict';
import { redirectingEndpoint } from '../support/redirect-stand-in.ts';
import { afterEach, describe, test } from 'node:test';
import { isEndpointFault, lookupAnswer, setLookupDeadline } from '../../functions/core/ask.ts';
import { getProvider, providers } from '../../functions/providers/index.ts';
import type { SQSRecord } from 'aws-lambda';
import { sqsBatchHandler } from '../../functions/handlers/sqs-batch.ts';
import { DependencyError } from '../../functions/shared/errors.ts';
import { createLogger } from '../../functions/shared/log.ts';
import { kitOf } from '../providers/index.ts';
import { leaks } from '../support/log-leaks.ts';

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

describe('a failed status request names no credential and no answer content in its error (the worker logs and stores it)', () => {
  /** A user and password in a base URL (a proxy or a stand-in behind Basic authentication): fetch refuses such URLs, quoting them whole. */
  const PASSWORD = 'Unit-Pa55word-7f3k';
  const WITH_CREDENTIALS = `https://gateway-user:${PASSWORD}@status.example`;

  /** The error the worker's batch handler writes into its failure line. */
  async function failureLines(error: unknown): Promise<string[]> {
    const lines: string[] = [];
    const handler = sqsBatchHandler(() => Promise.reject(error), createLogger({ service: 'unit', write: (line) => lines.push(line) }), { retryBaseSeconds: 1 });
    await handler({ Records: [{ messageId: 'm-1', body: '{}', attributes: { ApproximateReceiveCount: '1' } } as unknown as SQSRecord] });
    return lines;
  }

  // The providers whose baseUrl may carry a user and password (REL-ID's schema refuses one; eSMS names only an error's code).
  for (const id of ['telesign', 'temboplus', 'identomat'] as const) {
    test(`${id}: a base URL with a user and password fails the request without the password in the error or the line`, async () => {
      // prepare
      const provider = getProvider(id);
      const secret = provider.secretSchema.parse(kitOf(provider).secret('unit', { statusEndpoint: WITH_CREDENTIALS, asks: true }));
      // act
      const error = await lookupAnswer(provider, { subjectId: 'SUBJECT-1' }, secret, { lookup: { fetch, timeoutMs: 1_000, newRequestId: () => 'r' }, now: () => new Date() }).then(
        () => assert.fail('answered'),
        (caught: unknown) => caught,
      );
      const lines = await failureLines(error);
      // assess
      assert.ok(isEndpointFault(provider, error), `still a fault of the endpoint: ${String(error)}`);
      assert.ok(!leaks(String((error as Error).message), PASSWORD), (error as Error).message);
      assert.equal(lines.length, 1);
      assert.ok(!leaks(lines[0], PASSWORD), lines[0]);
    });
  }

  // An answer that is not JSON can be anything a server in between writes (a plain-text error that
  // quotes the number asked about): JSON.parse's message quotes short texts whole.
  for (const provider of providers.filter((candidate) => candidate.lookup)) {
    test(`${provider.id}: a 200 answer that is not JSON is a fault whose error and line do not quote it`, async () => {
      // prepare
      const secret = provider.secretSchema.parse(kitOf(provider).secret('unit', { statusEndpoint: 'https://status.example', asks: true }));
      const answer: typeof fetch = async () => new Response('To +255712345678', { status: 200, headers: { 'content-type': 'text/plain' } });
      // act
      const error = await lookupAnswer(provider, { subjectId: 'SUBJECT-1' }, secret, { lookup: { fetch: answer, timeoutMs: 1_000, newRequestId: () => 'r' }, now: () => new Date() }).then(
        () => assert.fail('answered'),
        (caught: unknown) => caught,
      );
      const lines = await failureLines(error);
      // assess
      assert.ok(isEndpointFault(provider, error), `still a fault of the endpoint: ${String(error)}`);
      assert.ok(!leaks(String((error as Error).message), '255712345678'), (error as Error).message);
      assert.equal(lines.length, 1);
      assert.ok(!leaks(lines[0], '255712345678'), lines[0]);
    });
  }
});

describe('no status request follows a redirect: what answers where it points is never taken for the provider, nor sent our credentials', () => {
  for (const provider of providers.filter((candidate) => candidate.lookup)) {
    for (const status of [302, 307]) {
      test(`${provider.id}: a ${status} is an endpoint fault, and nothing reaches where it points`, async () => {
        // prepare: every request (a token request too) is redirected to another server
        const endpoint = await redirectingEndpoint(status, '{}');
        try {
          const secret = provider.secretSchema.parse(kitOf(provider).secret('unit', { statusEndpoint: endpoint.baseUrl, asks: true }));
          // act
          const outcome = await lookupAnswer(provider, { subjectId: 'SUBJECT-1' }, secret, { lookup: { fetch, timeoutMs: 2_000, newRequestId: () => 'r' }, now: () => new Date() }).then(
            (answer) => answer,
            (caught: unknown) => caught,
          );
          // assess
          assert.ok(isEndpointFault(provider, outcome), `expected an endpoint fault, got ${JSON.stringify(outcome)}`);
          assert.deepEqual(endpoint.elsewhere, []);
        } finally {
          await endpoint.close();
        }
      });
    }
  }
});

describe('a busy status endpoint (429, 503) and its Retry-After', () => {
  const asked = providers.filter((provider) => provider.lookup);
  const answering = (status: number, retryAfter?: string): typeof fetch =>
    async () => new Response(JSON.stringify({ error: 'busy' }), { status, headers: { 'content-type': 'application/json', ...(retryAfter === undefined ? {} : { 'retry-after': retryAfter }) } });
  const askWith = (provider: (typeof asked)[number], fetchImpl: typeof fetch) => {
    const own = provider.secretSchema.parse(kitOf(provider).secret('unit', { statusEndpoint: 'http://127.0.0.1:9', asks: true }));
    return lookupAnswer(provider, { subjectId: 'SUBJECT-1' }, own, { lookup: { fetch: fetchImpl, timeoutMs: 1_000, newRequestId: () => crypto.randomUUID() }, now: () => new Date() }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
  };

  test('every provider asked: an endpoint fault saying busy, carrying the Retry-After, never a configuration fault', async () => {
    assert.deepEqual(asked.map((provider) => provider.id).sort(), ['esms', 'identomat', 'relid', 'telesign', 'temboplus']);
    for (const provider of asked) {
      for (const status of [429, 503]) {
        // act
        const seconds = await askWith(provider, answering(status, '120'));
        const date = await askWith(provider, answering(status, new Date(Date.now() + 600_000).toUTCString()));
        const none = await askWith(provider, answering(status));
        const malformed = await askWith(provider, answering(status, 'in a while'));
        // assess
        for (const error of [seconds, date, none, malformed]) {
          assert.ok(error instanceof DependencyError, `${provider.id} ${status}: ${String(error)}`);
          assert.ok(isEndpointFault(provider, error), `${provider.id} ${status}: an endpoint fault`);
          assert.match(error.message, /busy/, `${provider.id} ${status}`);
        }
        assert.equal((seconds as DependencyError).retryAfterSeconds, 120, `${provider.id} ${status}`);
        const fromDate = (date as DependencyError).retryAfterSeconds;
        assert.ok(fromDate !== undefined && fromDate >= 595 && fromDate <= 600, `${provider.id} ${status}: ${fromDate}`);
        assert.equal((none as DependencyError).retryAfterSeconds, undefined);
        assert.equal((malformed as DependencyError).retryAfterSeconds, undefined);
      }
    }
  });
});
