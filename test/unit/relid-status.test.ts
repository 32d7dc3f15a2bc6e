import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { canAsk, type LookupContext, type StatusAnswer } from '../../functions/providers/provider.ts';
import { relid, relIdTokenUrl, RelIdSecretSchema, type RelIdCallback, type RelIdSecret } from '../../functions/providers/relid.ts';
import { ConfigurationError, DependencyError } from '../../functions/shared/errors.ts';
import { FIXTURES_DIR, listSamples } from '../../local/samples.ts';
import { startStatusSimulator, type StatusSimulator } from '../../local/status-simulator.ts';
import { RELID_TOKEN_REQUEST, relidKit, relidSecret, relidStatusAnswer, relidStatusSimulation, type RelIdAuth, type RelIdSimulationOptions, type RelIdStatusSimulation } from '../providers/relid.ts';

/**
 * REL-IDverify's status API, getRVNStatus, asked through the kit's simulation of it (and of the
 * AuthServer's token endpoint, on the same port): what each documented answer becomes, how a
 * refused credential, a fault or a slow server is reported, and how access tokens are reused.
 * @see https://developer.uniken.com/docs/check-notification-status
 * @see https://developer.uniken.com/docs/authentication
 */

/** A getRVNStatus answer (or another REL-ID answer) from test/fixtures/relid/status/. */
function statusFixture(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(`${FIXTURES_DIR}relid/status/${name}.json`, 'utf8')) as Record<string, unknown>;
}

/** The docs' callback sample for a notification of its own. */
function notification(id: string, changes: Record<string, unknown> = {}): Record<string, unknown> {
  const sample = listSamples('relid').find((candidate) => candidate.name === 'callback-two-way')!;
  return { ...(JSON.parse(sample.body!.toString('utf8')) as Record<string, unknown>), notification_uuid: id, ...changes };
}

function context(overrides: Partial<LookupContext> = {}): LookupContext {
  return { fetch, timeoutMs: 2_000, newRequestId: randomUUID, ...overrides };
}

/** The secret a lookup runs with: the suite's credentials (`auth`), pointed at `baseUrl`. */
function secretFor(baseUrl: string, auth: RelIdAuth = 'basic', changes: Record<string, unknown> = {}): RelIdSecret {
  return RelIdSecretSchema.parse({ ...relidSecret('unit', { statusEndpoint: baseUrl, auth }), ...changes });
}

/** A simulated REL-ID server that accepts both sets of the suite's credentials. */
async function startRelId(options: RelIdSimulationOptions = {}, tweak: (simulation: RelIdStatusSimulation) => RelIdStatusSimulation = (s) => s) {
  const simulation = tweak(relidStatusSimulation(relidSecret('unit', { auth: 'both' }), options));
  const simulator = await startStatusSimulator(simulation);
  return { simulation, simulator };
}

const statusRequests = (simulator: StatusSimulator) => simulator.requests.filter((request) => request.subjectId !== RELID_TOKEN_REQUEST);
const tokenRequests = (simulator: StatusSimulator) => simulator.requests.filter((request) => request.subjectId === RELID_TOKEN_REQUEST);

/** The error a lookup rejects with (the test fails if it resolves). */
async function lookupError(secret: RelIdSecret, subjectId: string, lookupContext = context()): Promise<Error> {
  try {
    const answer = await relid.lookup!({ subjectId }, secret, lookupContext);
    assert.fail(`expected an error, got ${JSON.stringify(answer)}`);
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    return error as Error;
  }
}

/** Secret values that must never appear in an error message. */
function assertNoCredential(error: Error, secret: RelIdSecret) {
  for (const value of [secret.password, secret.clientSecret, secret.token]) {
    if (value) assert.ok(!error.message.includes(value), `the message shows a credential: ${error.message}`);
  }
}

for (const auth of ['basic', 'oauth'] as const) {
  for (const errors of ['in-body', 'as-http'] as const) {
    describe(`REL-ID getRVNStatus (${auth === 'basic' ? 'Basic' : 'OAuth2 Bearer'}, REL-ID errors answered ${errors === 'in-body' ? '200' : 'with 401/404'})`, () => {
      let simulator: StatusSimulator;
      let secret: RelIdSecret;
      before(async () => {
        ({ simulator } = await startRelId({ errors }));
        secret = secretFor(simulator.baseUrl, auth);
      });
      after(() => simulator.stop());

      test("the docs' success answer is found, in the callback's shape, without its jwt", async () => {
        // prepare
        const id = randomUUID();
        const answer: Record<string, unknown> = { ...statusFixture('getRVNStatus-success'), notification_uuid: id };
        simulator.report(answer);
        // act
        const result = await relid.lookup!({ subjectId: id }, secret, context());
        // assess
        assert.equal(result.kind, 'found');
        const { jwt: _jwt, ...expected } = answer;
        assert.deepEqual((result as { payload: RelIdCallback }).payload, expected);
        assert.ok(!('jwt' in (result as { payload: RelIdCallback }).payload), 'the jwt is not kept');
        const asked = statusRequests(simulator).filter((request) => request.subjectId === id);
        assert.equal(asked.length, 1);
        assert.equal(asked[0].authorized, true, 'asked with the right credentials');
      });

      test('an unknown notification (error_code 3558) is not_found', async () => {
        // act
        const result = await relid.lookup!({ subjectId: randomUUID() }, secret, context());
        // assess
        assert.deepEqual(result, { kind: 'not_found' });
      });

      test('a refused credential is a ConfigurationError naming the fields to fix, never their values', async () => {
        // prepare
        const wrong = auth === 'basic' ? secretFor(simulator.baseUrl, auth, { password: 'unit-wrong-password' }) : secretFor(simulator.baseUrl, auth, { clientSecret: 'unit-wrong-client-secret' });
        // act
        const error = await lookupError(wrong, randomUUID());
        // assess
        assert.ok(error instanceof ConfigurationError, `${error.name}: ${error.message}`);
        assert.match(error.message, auth === 'basic' ? /username and password/ : /clientId and clientSecret/);
        assertNoCredential(error, wrong);
      });

      test('a server fault (500, 503) or throttling (429) is a DependencyError', async () => {
        for (const status of [500, 503, 429]) {
          // prepare
          const id = randomUUID();
          simulator.report(notification(id));
          await relid.lookup!({ subjectId: id }, secret, context()); // a token in hand, so the fault meets getRVNStatus
          simulator.setFault({ status, times: 1 });
          // act
          const error = await lookupError(secret, id);
          // assess
          assert.ok(error instanceof DependencyError, `${status}: ${error.name}: ${error.message}`);
          assert.match(error.message, new RegExp(String(status)));
        }
      });

      // The server never answers, so only the lookup's own timeout can end it: the message says that
      // timeout fired. The test's timeout only stops a lookup that would wait for ever.
      test('a server that does not answer in time is a DependencyError after the timeout', { timeout: 30_000 }, async () => {
        // prepare
        simulator.setFault({ hang: true, times: 1 });
        // act
        const error = await lookupError(secret, randomUUID(), context({ timeoutMs: 200 }));
        // assess
        assert.ok(error instanceof DependencyError, `${error.name}: ${error.message}`);
        assert.match(error.message, /unreachable: no answer within 200 ms/);
      });

      test('a subject with characters a URL path must encode is asked about as it is', async () => {
        // prepare
        const id = `a b/c?d#e%f&g+ü-${randomUUID()}`;
        simulator.report(notification(id));
        // act
        const result = await relid.lookup!({ subjectId: id }, secret, context());
        // assess
        assert.equal(result.kind, 'found');
        assert.equal((result as { payload: RelIdCallback }).payload.notification_uuid, id);
        assert.equal(statusRequests(simulator).at(-1)?.subjectId, id);
      });
    });
  }
}

describe('REL-ID getRVNStatus: answers that are not a notification', () => {
  let simulator: StatusSimulator;
  let secret: RelIdSecret;
  before(async () => {
    ({ simulator } = await startRelId());
    secret = secretFor(simulator.baseUrl);
  });
  after(() => simulator.stop());

  test('a subject no URL path can carry (".", "..", a lone surrogate) is not_found, without asking', async () => {
    for (const subjectId of ['.', '..', 'x\ud800y']) {
      // prepare
      const before = simulator.requests.length;
      // act
      const result = await relid.lookup!({ subjectId }, secret, context());
      // assess
      assert.deepEqual(result, { kind: 'not_found' }, JSON.stringify(subjectId));
      assert.equal(simulator.requests.length, before, 'nothing was asked');
    }
  });

  test('an answer larger than 256 KB is a DependencyError', async () => {
    // prepare
    const id = randomUUID();
    simulator.report(notification(id, { padding: 'x'.repeat(300 * 1024) }));
    // act
    const error = await lookupError(secret, id);
    // assess
    assert.ok(error instanceof DependencyError, `${error.name}: ${error.message}`);
    assert.match(error.message, /more than 262144 bytes/);
  });

  test('a baseUrl where no getRVNStatus answers (404 without a REL-ID body) is a ConfigurationError naming baseUrl', async () => {
    // act
    const error = await lookupError(secretFor(`${simulator.baseUrl}/not-rel-id`), randomUUID());
    // assess
    assert.ok(error instanceof ConfigurationError, `${error.name}: ${error.message}`);
    assert.match(error.message, /baseUrl/);
  });

  test('error_code 2605 (an internal error during authentication) is a DependencyError, whatever the HTTP status', async () => {
    // prepare
    const internal = await startRelId({}, (simulation) => ({ ...simulation, refuse: () => ({ status: 500, body: { response_code: 1, error_code: 2605, error_message: 'Authorization failed' } }) }));
    try {
      // act
      const error = await lookupError(secretFor(internal.simulator.baseUrl), randomUUID());
      // assess
      assert.ok(error instanceof DependencyError, `${error.name}: ${error.message}`);
      assert.match(error.message, /2605 \(an internal error during authentication\)/);
    } finally {
      await internal.simulator.stop();
    }
  });

  test('error_code 2601 (the Authorization header never arrived) is a ConfigurationError pointing at what is in front of baseUrl', async () => {
    // prepare: a proxy that drops the header
    const dropping: typeof fetch = (input, init) => fetch(input, { ...init, headers: { accept: 'application/json' } });
    // act
    const error = await lookupError(secret, randomUUID(), context({ fetch: dropping }));
    // assess
    assert.ok(error instanceof ConfigurationError, `${error.name}: ${error.message}`);
    assert.match(error.message, /2601/);
    assert.match(error.message, /baseUrl/);
  });

  test('error_code 2606 (an unreadable Authorization value) is a ConfigurationError naming the credentials', async () => {
    // prepare
    const garbling: typeof fetch = (input, init) => fetch(input, { ...init, headers: { authorization: 'Basic !!!' } });
    // act
    const error = await lookupError(secret, randomUUID(), context({ fetch: garbling }));
    // assess
    assert.ok(error instanceof ConfigurationError, `${error.name}: ${error.message}`);
    assert.match(error.message, /2606/);
    assert.match(error.message, /username and password/);
  });

  test('a 401 or 403 without a REL-ID body (a gateway in front of the server) is a refused credential: ConfigurationError', async () => {
    for (const status of [401, 403]) {
      // prepare
      const gateway: typeof fetch = async () => new Response('<html>Unauthorized</html>', { status, headers: { 'content-type': 'text/html' } });
      // act
      const error = await lookupError(secret, randomUUID(), context({ fetch: gateway }));
      // assess
      assert.ok(error instanceof ConfigurationError, `${status}: ${error.name}: ${error.message}`);
      assert.match(error.message, new RegExp(`HTTP ${status}.*username and password`));
    }
  });

  test('a 200 whose body is not a REL-ID answer is a DependencyError', async () => {
    for (const body of ['<html>maintenance</html>', '{"hello":"world"}', '']) {
      // prepare
      const odd: typeof fetch = async () => new Response(body, { status: 200, headers: { 'content-type': 'text/html' } });
      // act
      const error = await lookupError(secret, randomUUID(), context({ fetch: odd }));
      // assess
      assert.ok(error instanceof DependencyError, `${JSON.stringify(body)}: ${error.name}: ${error.message}`);
    }
  });

  test('an answer that names the notification with response_code 1 is a report about it (found, failed), whatever its error_code', async () => {
    for (const errorCode of [3558, 2604, 2605, 3620]) {
      // prepare: an error report about the notification, as a callback may carry it
      const id = randomUUID();
      simulator.report({ notification_uuid: id, response_code: 1, error_code: errorCode, delivery_status: 'FAILED_TO_NOTIFY' });
      // act
      const result = await relid.lookup!({ subjectId: id }, secret, context());
      // assess
      assert.equal(result.kind, 'found', String(errorCode));
      const facts = relid.describe((result as { payload: RelIdCallback }).payload, secret);
      assert.deepEqual([facts.subjectId, facts.status, facts.outcome, facts.terminal], [id, 'ERROR', 'failed', true]);
    }
  });

  test('an unknown REL-ID error code is a DependencyError that names it', async () => {
    // prepare
    const odd: typeof fetch = async () => Response.json({ response_code: 1, error_code: 9999, error_message: 'something else' });
    // act
    const error = await lookupError(secret, randomUUID(), context({ fetch: odd }));
    // assess
    assert.ok(error instanceof DependencyError, `${error.name}: ${error.message}`);
    assert.match(error.message, /9999/);
  });

  test('a redirect is not followed (the credentials stay with the server the secret names): ConfigurationError', async () => {
    // prepare: a server that sends every request on to the simulator
    const seen: string[] = [];
    const redirecting: Server = createServer((request, response) => {
      seen.push(String(request.url));
      response.writeHead(302, { location: `${simulator.baseUrl}${request.url}` });
      response.end();
    });
    await new Promise<void>((resolve) => redirecting.listen(0, '127.0.0.1', () => resolve()));
    const id = randomUUID();
    simulator.report(notification(id));
    const before = simulator.requests.length;
    try {
      // act
      const error = await lookupError(secretFor(`http://127.0.0.1:${(redirecting.address() as AddressInfo).port}`), id);
      // assess
      assert.ok(error instanceof ConfigurationError, `${error.name}: ${error.message}`);
      assert.match(error.message, /302/);
      assert.equal(seen.length, 1);
      assert.equal(simulator.requests.length, before, 'the simulator was never reached');
    } finally {
      await new Promise<void>((resolve) => redirecting.close(() => resolve()));
    }
  });

  test('a server that cannot be reached is a DependencyError that shows no URL', async () => {
    // prepare: a port nothing listens on
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    // act
    const error = await lookupError(secretFor(`http://127.0.0.1:${port}`), randomUUID());
    // assess
    assert.ok(error instanceof DependencyError, `${error.name}: ${error.message}`);
    assert.ok(!error.message.includes(String(port)), error.message);
  });
});

describe('REL-ID access tokens (client credentials)', () => {
  test("the token request is the docs': POST to /relid/authserver/oauth/token, Basic client credentials, the form in the body", async () => {
    // prepare
    const seen: { method?: string; url?: string; authorization?: string; contentType?: string; body?: string }[] = [];
    const { simulator } = await startRelId();
    const recording: typeof fetch = async (input, init) => {
      const headers = new Headers(init?.headers);
      seen.push({ method: init?.method, url: String(input), authorization: headers.get('authorization') ?? undefined, contentType: headers.get('content-type') ?? undefined, body: init?.body === undefined ? undefined : String(init.body) });
      return fetch(input, init);
    };
    const secret = secretFor(simulator.baseUrl, 'oauth');
    const id = randomUUID();
    simulator.report(notification(id));
    try {
      // act
      const result = await relid.lookup!({ subjectId: id }, secret, context({ fetch: recording }));
      // assess
      assert.equal(result.kind, 'found');
      assert.deepEqual(seen[0], {
        method: 'POST',
        url: `${simulator.baseUrl}/relid/authserver/oauth/token`,
        authorization: `Basic ${Buffer.from('unit-relid-client:unit-relid-client-secret').toString('base64')}`,
        contentType: 'application/x-www-form-urlencoded',
        body: 'grant_type=client_credentials&scope=all',
      });
      assert.equal(seen[1].method, 'GET');
      assert.equal(seen[1].url, `${simulator.baseUrl}/getRVNStatus.htm/${id}`);
      assert.match(String(seen[1].authorization), /^Bearer \S+$/);
    } finally {
      await simulator.stop();
    }
  });

  test('one token serves every lookup until shortly before it expires, concurrent ones included', async () => {
    // prepare
    const { simulator } = await startRelId();
    const secret = secretFor(simulator.baseUrl, 'oauth');
    const ids = Array.from({ length: 5 }, () => randomUUID());
    for (const id of ids) simulator.report(notification(id));
    try {
      // act
      const results = await Promise.all(ids.map((subjectId) => relid.lookup!({ subjectId }, secret, context())));
      await relid.lookup!({ subjectId: ids[0] }, secret, context());
      // assess
      assert.deepEqual(results.map((result) => result.kind), ids.map(() => 'found'));
      assert.equal(tokenRequests(simulator).length, 1);
      assert.equal(statusRequests(simulator).length, 6);
    } finally {
      await simulator.stop();
    }
  });

  test('a token is replaced before its expires_in is over', async () => {
    // prepare: tokens of 4 s, handed out for 2 s: the first two lookups must fit in that window,
    // and a busy machine can stretch two lookups past the 1 s that tokens of 2 s left
    const { simulator } = await startRelId({ tokenLifetimeSeconds: 4 });
    const secret = secretFor(simulator.baseUrl, 'oauth');
    const id = randomUUID();
    simulator.report(notification(id));
    try {
      // act
      await relid.lookup!({ subjectId: id }, secret, context());
      await relid.lookup!({ subjectId: id }, secret, context());
      const whileUsable = tokenRequests(simulator).length;
      await new Promise((resolve) => setTimeout(resolve, 2_100));
      const late = await relid.lookup!({ subjectId: id }, secret, context());
      // assess
      assert.equal(whileUsable, 1);
      assert.equal(late.kind, 'found');
      assert.equal(tokenRequests(simulator).length, 2);
      assert.ok(simulator.requests.every((request) => request.authorized), 'no request with an expired token');
    } finally {
      await simulator.stop();
    }
  });

  test('a cached token REL-ID refuses (revoked) is replaced once, and the lookup still answers', async () => {
    // prepare
    const { simulation, simulator } = await startRelId();
    const secret = secretFor(simulator.baseUrl, 'oauth');
    const id = randomUUID();
    simulator.report(notification(id));
    try {
      await relid.lookup!({ subjectId: id }, secret, context());
      simulation.revokeTokens();
      // act
      const result = await relid.lookup!({ subjectId: id }, secret, context());
      // assess
      assert.equal(result.kind, 'found');
      assert.equal(tokenRequests(simulator).length, 2);
      assert.deepEqual(statusRequests(simulator).map((request) => request.authorized), [true, false, true]);
    } finally {
      await simulator.stop();
    }
  });

  test('a fresh token REL-ID refuses is a ConfigurationError (no loop of token requests)', async () => {
    // prepare: every token is expired on arrival
    const { simulator } = await startRelId({ tokenLifetimeSeconds: 0 });
    const secret = secretFor(simulator.baseUrl, 'oauth');
    try {
      // act
      const error = await lookupError(secret, randomUUID());
      // assess
      assert.ok(error instanceof ConfigurationError, `${error.name}: ${error.message}`);
      assert.match(error.message, /fresh access token/);
      assert.match(error.message, /clientId, clientSecret and tokenUrl/);
      assert.equal(tokenRequests(simulator).length, 1);
      assertNoCredential(error, secret);
    } finally {
      await simulator.stop();
    }
  });

  test('a token endpoint down (500) is a DependencyError, and the next lookup fetches a token again', async () => {
    // prepare
    const { simulator } = await startRelId();
    const secret = secretFor(simulator.baseUrl, 'oauth');
    const id = randomUUID();
    simulator.report(notification(id));
    simulator.setFault({ status: 500, times: 1 });
    try {
      // act
      const error = await lookupError(secret, id);
      const next = await relid.lookup!({ subjectId: id }, secret, context());
      // assess
      assert.ok(error instanceof DependencyError, `${error.name}: ${error.message}`);
      assert.match(error.message, /token endpoint answered 500/);
      assert.equal(next.kind, 'found');
      assert.equal(tokenRequests(simulator).length, 2);
    } finally {
      await simulator.stop();
    }
  });

  test('a token endpoint that does not answer in time is a DependencyError within the one timeout of the lookup', { timeout: 30_000 }, async () => {
    // prepare
    const { simulator } = await startRelId();
    const secret = secretFor(simulator.baseUrl, 'oauth');
    // Far slower than the 200 ms timeout: the lookup's own timeout ends it (its message says so),
    // not the token's answer, however busy the machine.
    simulator.setFault({ delayMs: 5_000, times: 1 });
    try {
      // act
      const error = await lookupError(secret, randomUUID(), context({ timeoutMs: 200 }));
      // assess
      assert.ok(error instanceof DependencyError, `${error.name}: ${error.message}`);
      assert.match(error.message, /unreachable: no answer within 200 ms/);
    } finally {
      await simulator.stop();
    }
  });

  test('tokenUrl, when set, is where the token is asked for', async () => {
    // prepare: the status server is up, the AuthServer tokenUrl names is not
    const { simulator } = await startRelId();
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
    const tokenUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/relid/authserver/oauth/token`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    try {
      // act
      const error = await lookupError(secretFor(simulator.baseUrl, 'oauth', { tokenUrl }), randomUUID());
      // assess
      assert.ok(error instanceof DependencyError, `${error.name}: ${error.message}`);
      assert.match(error.message, /token endpoint unreachable/);
      assert.equal(simulator.requests.length, 0);
    } finally {
      await simulator.stop();
    }
  });

  test('the token endpoint without expires_in: the token serves that lookup only', async () => {
    // prepare
    const { simulator } = await startRelId();
    const secret = secretFor(simulator.baseUrl, 'oauth');
    const id = randomUUID();
    simulator.report(notification(id));
    const withoutExpiry: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (!String(input).endsWith('/oauth/token')) return response;
      const { expires_in: _gone, ...token } = (await response.json()) as Record<string, unknown>;
      return Response.json(token);
    };
    try {
      // act
      await relid.lookup!({ subjectId: id }, secret, context({ fetch: withoutExpiry }));
      await relid.lookup!({ subjectId: id }, secret, context({ fetch: withoutExpiry }));
      // assess
      assert.equal(tokenRequests(simulator).length, 2);
    } finally {
      await simulator.stop();
    }
  });

  test('a token answer that names access_token twice is a DependencyError: neither token is sent', async () => {
    // prepare: a 200 that says two tokens, the last one the simulator's own (which would work)
    const { simulator } = await startRelId();
    const secret = secretFor(simulator.baseUrl, 'oauth');
    const id = randomUUID();
    simulator.report(notification(id));
    const twoTokens: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (!String(input).endsWith('/oauth/token')) return response;
      const text = await response.text();
      return new Response(`{"access_token":"unit-not-a-token",${text.slice(1)}`, { status: 200, headers: { 'content-type': 'application/json' } });
    };
    try {
      // act
      const error = await lookupError(secret, id, context({ fetch: twoTokens }));
      // assess
      assert.ok(error instanceof DependencyError, `${error.name}: ${error.message}`);
      assert.match(error.message, /token endpoint answered a body that does not say which value it means: a member is given more than once/);
      assert.equal(simulator.requests.length - tokenRequests(simulator).length, 0, 'no status request was sent with either token');
    } finally {
      await simulator.stop();
    }
  });

  test('token endpoint refusals: client credentials (401) and a refused request (400) are ConfigurationErrors naming the fields', async () => {
    const { simulator } = await startRelId();
    const scopeRefused: typeof fetch = async (input, init) =>
      String(input).endsWith('/oauth/token') ? Response.json({ error: 'invalid_scope' }, { status: 400 }) : fetch(input, init);
    try {
      for (const { secret, fetcher, expected } of [
        { secret: secretFor(simulator.baseUrl, 'oauth', { clientSecret: 'unit-not-the-secret' }), fetcher: fetch, expected: /answered 401 \(invalid_client\): check clientId and clientSecret/ },
        { secret: secretFor(simulator.baseUrl, 'oauth', { tokenScope: 'everything' }), fetcher: scopeRefused, expected: /answered 400 \(invalid_scope\): check tokenScope/ },
      ]) {
        // act
        const error = await lookupError(secret, randomUUID(), context({ fetch: fetcher }));
        // assess
        assert.ok(error instanceof ConfigurationError, `${error.name}: ${error.message}`);
        assert.match(error.message, expected);
        assertNoCredential(error, secret);
      }
    } finally {
      await simulator.stop();
    }
  });
});

describe('REL-ID: an answer reads as the callback it confirms', () => {
  const secret = RelIdSecretSchema.parse(relidSecret('unit'));

  for (const sample of listSamples('relid')) {
    test(`${sample.name}: the answer names the same subject and part, and says the same`, () => {
      // prepare
      const claim = relid.parse({ method: 'POST', headers: {}, body: sample.body!, rawQuery: '', sourceIp: '203.0.113.1', requestId: 'r', receivedAt: '2025-01-01T00:00:00Z' });
      assert.ok(claim.ok);
      const answer = relidKit.statusAnswer!(sample);
      // act
      const fromCallback = relid.describe(claim.payload, secret);
      const fromAnswer = relid.describe(answer as RelIdCallback, secret);
      // assess
      assert.equal(fromAnswer.subjectId, fromCallback.subjectId);
      assert.equal(fromAnswer.part, fromCallback.part);
      assert.deepEqual([fromAnswer.status, fromAnswer.outcome, fromAnswer.terminal], [fromCallback.status, fromCallback.outcome, fromCallback.terminal]);
      assert.deepEqual(relid.differences!(claim.payload, answer as RelIdCallback), []);
    });
  }

  test("the docs' success answer, asked for, reads with the declared labels: Approved is succeeded", async () => {
    // prepare
    const { simulator } = await startRelId();
    const id = randomUUID();
    simulator.report({ ...statusFixture('getRVNStatus-success'), notification_uuid: id });
    try {
      // act
      const result = (await relid.lookup!({ subjectId: id }, secretFor(simulator.baseUrl), context())) as Extract<StatusAnswer<RelIdCallback>, { kind: 'found' }>;
      const withLabels = relid.describe(result.payload, secretFor(simulator.baseUrl));
      const withoutLabels = relid.describe(result.payload, secretFor(simulator.baseUrl, 'basic', { approveLabels: [], rejectLabels: [] }));
      // assess
      assert.deepEqual([withLabels.subjectId, withLabels.part], [id, undefined]);
      assert.deepEqual([withLabels.status, withLabels.outcome, withLabels.terminal], ['UPDATED', 'succeeded', true]);
      assert.equal(withoutLabels.outcome, 'unknown', 'no declared label, no approval: answers as callbacks');
    } finally {
      await simulator.stop();
    }
  });

  const moved: { status: string; outcome: string; terminal: boolean }[] = [
    { status: 'ACTIVE', outcome: 'pending', terminal: false },
    { status: 'CANCELLED', outcome: 'failed', terminal: true },
    { status: 'EXPIRED', outcome: 'failed', terminal: true },
  ];
  for (const { status, outcome, terminal } of moved) {
    test(`an answer ${status}: ${outcome}${terminal ? ', terminal' : ', not terminal'}, with no action`, () => {
      // prepare
      const sample = listSamples('relid').find((candidate) => candidate.name === 'callback-two-way')!;
      // act
      const answer = relidStatusAnswer(sample, status);
      const facts = relid.describe(answer as RelIdCallback, secret);
      // assess
      assert.deepEqual([facts.status, facts.outcome, facts.terminal], [status, outcome, terminal]);
      assert.equal(answer.action_response, undefined);
      assert.equal(answer.client_ip_address, undefined);
    });
  }

  test('a callback that reported an error, answered in another status, is a success answer (response_code 0, no error_code)', () => {
    // prepare: an EXPIRED callback with response_code 1 (as the fault suite's lives send one)
    const content = { body: Buffer.from(JSON.stringify(notification('moved-0001', { status: 'EXPIRED', response_code: 1, error_code: 3620, action_response: 'NONE' }))) };
    // act
    const answer = relidStatusAnswer(content, 'ACTIVE');
    const facts = relid.describe(answer as RelIdCallback, secret);
    // assess
    assert.deepEqual([answer.response_code, answer.error_code], [0, undefined]);
    assert.deepEqual([facts.status, facts.outcome, facts.terminal], ['ACTIVE', 'pending', false]);
  });
});

describe('REL-ID: what makes a callback differ from the answer', () => {
  const base = notification('diff-0001');
  const parse = (json: Record<string, unknown>) => {
    const copy = { ...json };
    for (const [key, value] of Object.entries(copy)) if (value === undefined) delete copy[key];
    return copy as RelIdCallback;
  };
  const cases: { name: string; claim: Record<string, unknown>; answer: Record<string, unknown>; differences: string[] }[] = [
    { name: 'the same notification', claim: {}, answer: {}, differences: [] },
    { name: 'an approval REL-ID has as a rejection', claim: {}, answer: { action_response: 'Rejected' }, differences: ['action_response'] },
    { name: 'the same label in another case, padded', claim: { action_response: ' APPROVED ' }, answer: {}, differences: [] },
    { name: 'an approval of a notification that expired', claim: {}, answer: { status: 'EXPIRED', action_response: undefined, client_ip_address: undefined }, differences: ['status', 'action_response'] },
    { name: 'an approval of a notification still ACTIVE', claim: {}, answer: { status: 'ACTIVE', action_response: undefined }, differences: ['status', 'action_response'] },
    { name: 'EXPIRED with NONE, answered without action_response', claim: { status: 'EXPIRED', action_response: 'NONE' }, answer: { status: 'EXPIRED', action_response: undefined }, differences: [] },
    { name: 'a signature REL-ID says did not verify', claim: {}, answer: { is_ds_verified: false }, differences: ['is_ds_verified'] },
    { name: 'a signature check REL-ID does not report', claim: {}, answer: { is_ds_verified: undefined }, differences: ['is_ds_verified'] },
    { name: 'another msg_id (the enterprise transaction)', claim: { msg_id: 'txn-other' }, answer: {}, differences: ['msg_id'] },
    { name: 'another user', claim: { user_id: 'mallory' }, answer: {}, differences: ['user_id'] },
    { name: 'a delivery status REL-ID does not have', claim: { delivery_status: 'NOTIFIED' }, answer: { delivery_status: 'FAILED_TO_NOTIFY' }, differences: ['delivery_status'] },
    { name: 'a callback silent on delivery', claim: { delivery_status: undefined }, answer: {}, differences: [] },
    { name: 'an error report REL-ID does not have', claim: { response_code: 1, error_code: 3620 }, answer: {}, differences: ['response_code', 'error_code'] },
    { name: 'an approval with error_code 0, answered without one (0 names no error)', claim: { error_code: 0 }, answer: {}, differences: [] },
    { name: 'an approval with an empty error_code, answered with null', claim: { error_code: '' }, answer: { error_code: null }, differences: [] },
    { name: 'an approval naming an error code REL-ID does not have', claim: { error_code: 3558 }, answer: { error_code: 0 }, differences: ['error_code'] },
    { name: 'the same update time written otherwise (not material)', claim: { update_ts: '2024-10-11T13:00:15.000Z' }, answer: {}, differences: [] },
  ];
  for (const { name, claim, answer, differences } of cases) {
    test(`${name}: ${differences.length === 0 ? 'confirmed' : differences.join(', ')}`, () => {
      // act
      const found = relid.differences!(parse({ ...base, ...claim }), parse({ ...base, ...answer }));
      // assess
      assert.deepEqual(found, differences);
    });
  }
});

describe('REL-ID: when it can be asked (canLookup) and what the secret accepts', () => {
  const parse = (fields: Record<string, unknown>) => RelIdSecretSchema.safeParse({ token: 'unit-relid-token', ...fields });
  const askable: { name: string; fields: Record<string, unknown>; can: boolean }[] = [
    { name: 'no status settings', fields: {}, can: false },
    { name: 'a baseUrl alone', fields: { baseUrl: 'https://verify.example.com:9443' }, can: false },
    { name: 'credentials without a baseUrl', fields: { username: 'u', password: 'p' }, can: false },
    { name: 'a baseUrl and Basic credentials', fields: { baseUrl: 'https://verify.example.com:9443', username: 'u', password: 'p' }, can: true },
    { name: 'a baseUrl and client credentials', fields: { baseUrl: 'https://verify.example.com:9443', clientId: 'c', clientSecret: 's' }, can: true },
    { name: 'a local stand-in over http', fields: { baseUrl: 'http://127.0.0.1:4010', username: 'u', password: 'p' }, can: true },
  ];
  for (const { name, fields, can } of askable) {
    test(`${name}: ${can ? 'asked' : 'not asked'}`, () => {
      // act
      const parsed = parse(fields);
      // assess
      assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
      assert.equal(relid.canLookup!(parsed.data), can);
      assert.equal(canAsk(relid, parsed.data), can);
    });
  }

  const refused: { name: string; fields: Record<string, unknown>; path: string }[] = [
    { name: 'a username without its password', fields: { username: 'u' }, path: 'password' },
    { name: 'a password without its username', fields: { password: 'p' }, path: 'password' },
    { name: 'a clientId without its secret', fields: { clientId: 'c' }, path: 'clientSecret' },
    { name: 'a tokenUrl without client credentials', fields: { baseUrl: 'https://v.example.com', username: 'u', password: 'p', tokenUrl: 'https://a.example.com:8006/relid/authserver/oauth/token' }, path: 'tokenUrl' },
    { name: 'a username with a colon (Basic cannot carry it)', fields: { username: 'a:b', password: 'p' }, path: 'username' },
    { name: 'a baseUrl with a password in it', fields: { baseUrl: 'https://user:unit-url-password@v.example.com' }, path: 'baseUrl' },
    { name: 'a baseUrl with a query', fields: { baseUrl: 'https://v.example.com/?key=1' }, path: 'baseUrl' },
    { name: 'a baseUrl that is not http(s)', fields: { baseUrl: 'ftp://v.example.com' }, path: 'baseUrl' },
    { name: 'a placeholder password', fields: { username: 'u', password: 'REPLACE_ME' }, path: 'password' },
  ];
  for (const { name, fields, path } of refused) {
    test(`refuses ${name}, naming ${path}`, () => {
      // act
      const parsed = parse(fields);
      // assess
      assert.equal(parsed.success, false);
      assert.ok(parsed.error!.issues.some((issue) => issue.path.join('.') === path), JSON.stringify(parsed.error!.issues));
      assert.ok(!JSON.stringify(parsed.error!.issues).includes('unit-url-password'), 'no credential in the issues');
    });
  }

  test('the token endpoint defaults to the docs path on baseUrl\'s host and port; tokenUrl wins', () => {
    assert.equal(relIdTokenUrl({ baseUrl: 'https://verify.example.com:9443' }), 'https://verify.example.com:9443/relid/authserver/oauth/token');
    assert.equal(relIdTokenUrl({ baseUrl: 'https://verify.example.com:9443/rel-id/' }), 'https://verify.example.com:9443/relid/authserver/oauth/token');
    assert.equal(relIdTokenUrl({ baseUrl: 'https://v.example.com', tokenUrl: 'https://auth.example.com:8006/relid/authserver/oauth/token' }), 'https://auth.example.com:8006/relid/authserver/oauth/token');
    assert.equal(relIdTokenUrl({}), undefined);
  });

  test("the kit's secret points at the suite's stand-in, else nowhere real", () => {
    assert.equal(RelIdSecretSchema.parse(relidKit.secret('unit', { statusEndpoint: 'http://127.0.0.1:1' })).baseUrl, 'http://127.0.0.1:1');
    assert.match(String(RelIdSecretSchema.parse(relidKit.secret('unit')).baseUrl), /\.invalid$/);
    for (const auth of ['basic', 'oauth', 'both'] as const) assert.equal(relid.canLookup!(RelIdSecretSchema.parse(relidSecret('unit', { auth }))), true, auth);
  });

  test("lookupLimits: asked on arrival, for a day", () => {
    assert.deepEqual(relid.lookupLimits, { onArrival: true, horizonHours: 24 });
    assert.equal(relid.callbackTrust, 'token');
  });
});
