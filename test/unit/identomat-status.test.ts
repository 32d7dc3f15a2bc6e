import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { redirectingEndpoint } from '../support/redirect-stand-in.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { judgeClaim, placeStatus } from '../../functions/core/events.ts';
import { answerEventKey } from '../../functions/core/event-items.ts';
import { applyObservations, type StateItem } from '../../functions/core/state.ts';
import {
  IDENTOMAT_BASE_URL,
  identomat,
  identomatBaseUrl,
  identomatLookupLimits,
  IdentomatSecretSchema,
  type IdentomatCallback,
  type IdentomatSecret,
} from '../../functions/providers/identomat.ts';
import { canAsk, type CallbackRequest, type LookupContext } from '../../functions/providers/provider.ts';
import { ConfigurationError, DependencyError } from '../../functions/shared/errors.ts';
import { shortHash } from '../../functions/shared/hash.ts';
import { FIXTURES_DIR, listSamples } from '../../local/samples.ts';
import { startStatusSimulator, type StatusSimulator } from '../../local/status-simulator.ts';
import { identomatKit } from '../providers/identomat.ts';

/**
 * Identomat's result/ endpoint as `lookup` asks it, against the kit's simulation of it (a stand-in
 * on 127.0.0.1), and what `describe` makes of the answer.
 */

const SESSION = 'wwb83rh1se22wd81z0tx8bqlerljq5kgf6rxem1q';
const secretFor = (baseUrl: string, fields: Record<string, unknown> = {}): IdentomatSecret =>
  IdentomatSecretSchema.parse({ ...identomatKit.secret('unit', { statusEndpoint: baseUrl }), ...fields });

let ids = 0;
const context = (overrides: Partial<LookupContext> = {}): LookupContext => ({ fetch, timeoutMs: 2_000, newRequestId: () => `lookup-${++ids}`, ...overrides });

/** A callback sample's JSON, without its key. */
function sampleJson(name: string): Record<string, unknown> {
  const sample = listSamples('identomat').find((candidate) => candidate.name === name);
  assert.ok(sample?.body, `no sample identomat/${name}`);
  const { callbackApiKey: _key, ...rest } = JSON.parse(sample.body.toString('utf8')) as Record<string, unknown>;
  return rest;
}

/** A callback as `parse` hands it on (the key checked and removed). */
function parsedCallback(json: Record<string, unknown>): IdentomatCallback {
  const request: CallbackRequest = {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: Buffer.from(JSON.stringify({ callbackApiKey: 'k', ...json })),
    rawQuery: '',
    sourceIp: '203.0.113.10',
    requestId: 'unit',
    receivedAt: '2026-01-01T10:00:00.000Z',
  };
  const parsed = identomat.parse(request);
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.reason);
  return parsed.payload;
}

/** A fetch answering every request with this status, body and headers; the requests it saw. */
function answering(status: number, body: string | Buffer, headers: Record<string, string> = {}) {
  const seen: { url: string; init: RequestInit }[] = [];
  const fake: typeof fetch = async (url, init) => {
    seen.push({ url: String(url), init: init! });
    return new Response(body, { status, headers: { 'content-type': 'application/json', ...headers } });
  };
  return { fetch: fake, seen };
}

/** Every value a credential of the secret holds: none may appear in an error message. */
const credentialsOf = (secret: IdentomatSecret) => identomatKit.credentials(secret as Record<string, unknown>);

async function assertRejectsWith(promise: Promise<unknown>, type: typeof DependencyError | typeof ConfigurationError, secret: IdentomatSecret, pattern?: RegExp) {
  const error = await promise.then(
    () => assert.fail('expected the lookup to throw'),
    (thrown: unknown) => thrown,
  );
  assert.ok(error instanceof type, `expected a ${type.name}, got ${String(error)}`);
  if (error instanceof DependencyError) assert.equal(error.dependency, 'identomat');
  if (pattern) assert.match((error as Error).message, pattern);
  for (const credential of credentialsOf(secret)) assert.ok(!(error as Error).message.includes(credential), `the error shows a credential: ${(error as Error).message}`);
  return error as Error;
}

describe('identomat secret: what asking result/ needs', () => {
  test('canLookup only with a companyKey; hmacKey and baseUrl are optional', () => {
    // prepare
    const bare = IdentomatSecretSchema.parse({ callbackApiKey: 'cb-key' });
    const withKey = IdentomatSecretSchema.parse({ callbackApiKey: 'cb-key', companyKey: 'company-key' });
    // act
    const asked = [identomat.canLookup!(bare), identomat.canLookup!(withKey), canAsk(identomat, bare), canAsk(identomat, withKey)];
    // assess
    assert.deepEqual(asked, [false, true, false, true]);
  });

  test('defaults: Identomat production host, asked on arrival, no horizon of its own unless the secret sets one', () => {
    // prepare
    const bare = IdentomatSecretSchema.parse({ callbackApiKey: 'cb-key', companyKey: 'company-key' });
    const rotating = IdentomatSecretSchema.parse({ callbackApiKey: 'cb-key', companyKey: 'company-key', baseUrl: 'http://127.0.0.1:8080', previous: { callbackApiKey: 'old-key' } });
    // act
    const limits = identomatLookupLimits(bare);
    // assess
    assert.equal(IDENTOMAT_BASE_URL, 'https://widget.identomat.com');
    assert.equal(identomatBaseUrl(bare), 'https://widget.identomat.com');
    assert.equal(identomatBaseUrl({ baseUrl: 'http://127.0.0.1:8080/stand-in/' }), 'http://127.0.0.1:8080/stand-in');
    assert.deepEqual(limits, { onArrival: true }, 'unpublished: the reconcile policy decides');
    assert.deepEqual(identomat.lookupLimits, limits, 'the worker reads the default');
    assert.deepEqual(identomatLookupLimits({ resultHorizonHours: 0.25 }), { onArrival: true, horizonHours: 0.25 });
    assert.equal(bare.baseUrl, undefined, 'no default written into the secret');
    assert.deepEqual(rotating.previous, { callbackApiKey: 'old-key' }, 'nor into previous, where it would stand for a value rotated out');
  });

  const refused: [string, Record<string, unknown>][] = [
    ['companyKey still the placeholder', { companyKey: 'REPLACE_ME' }],
    ['companyKey empty', { companyKey: '' }],
    ['hmacKey still the placeholder', { hmacKey: 'REPLACE_ME' }],
    ['baseUrl not http(s)', { baseUrl: 'ftp://widget.identomat.com' }],
    ['baseUrl not a URL', { baseUrl: 'widget.identomat.com' }],
    ['hmacKey not base64 while hmacKeyEncoding says so', { hmacKey: 'not base64!', hmacKeyEncoding: 'base64' }],
    ['hmacKey not hex while hmacKeyEncoding says so', { hmacKey: 'abc', hmacKeyEncoding: 'hex' }],
    ['an unknown hmacKeyEncoding', { hmacKey: 'abc', hmacKeyEncoding: 'latin1' }],
    ['resultHorizonHours zero', { resultHorizonHours: 0 }],
    ['resultHorizonHours as text', { resultHorizonHours: '24' }],
  ];
  for (const [name, fields] of refused) {
    test(`refused: ${name}`, () => {
      // act
      const result = IdentomatSecretSchema.safeParse({ callbackApiKey: 'cb-key', ...fields });
      // assess
      assert.equal(result.success, false);
    });
  }
});

describe('identomat lookup: POST result/ against the simulated endpoint', () => {
  let simulator: StatusSimulator;
  let secret: IdentomatSecret;

  before(async () => {
    const plain = identomatKit.secret('unit');
    simulator = await startStatusSimulator(identomatKit.statusSimulation!(plain));
    secret = secretFor(simulator.baseUrl);
  });
  after(async () => {
    await simulator?.stop();
  });
  beforeEach(() => {
    simulator.setFault(undefined);
    simulator.requests.length = 0;
  });

  test('found: the answer becomes a session-change report of the session asked about, keyed by the request', async () => {
    // prepare
    simulator.report({ session_token: SESSION, ...JSON.parse(readFileSync(join(FIXTURES_DIR, 'identomat', 'status', 'result-approved.json'), 'utf8')) });
    // act
    const answer = await identomat.lookup!({ subjectId: SESSION }, secret, context({ newRequestId: () => 'lookup-found' }));
    // assess
    assert.equal(answer.kind, 'found');
    assert.deepEqual(answer.kind === 'found' && answer.payload, { type: 'session-change', sessionId: SESSION, result: 'approved', resultLookupId: 'lookup-found' });
    assert.deepEqual(simulator.requests.map(({ subjectId, authorized, status }) => ({ subjectId, authorized, status })), [{ subjectId: SESSION, authorized: true, status: 200 }]);
  });

  test('the request on the wire: JSON with company_key and session_token, signed with hmacKey', async () => {
    // prepare: a fixed secret whose signature was computed with openssl
    //   printf '%s' '<body>' | openssl dgst -sha256 -hmac 'unit-hmac-secret' -binary | base64
    const fixed = IdentomatSecretSchema.parse({ callbackApiKey: 'cb', companyKey: 'unit-company-key', hmacKey: 'unit-hmac-secret', baseUrl: 'http://127.0.0.1:9/stand-in/' });
    const stub = answering(200, '{"result":"approved"}');
    // act
    await identomat.lookup!({ subjectId: SESSION }, fixed, context({ fetch: stub.fetch }));
    // assess
    const [{ url, init }] = stub.seen;
    const headers = new Headers(init.headers);
    assert.equal(url, 'http://127.0.0.1:9/stand-in/external-api/result/');
    assert.equal(init.method, 'POST');
    assert.equal(headers.get('content-type'), 'application/json');
    assert.equal(init.body, `{"company_key":"unit-company-key","session_token":"${SESSION}"}`);
    assert.equal(headers.get('authorization'), 'signature="3FbnMrMi7BncLsNV3kLGIRcz81S1Zg15IPu8RTDFFew="');
    assert.ok(init.signal instanceof AbortSignal, 'bounded by the timeout');
  });

  test('without hmacKey the request is not signed, and a simulation without one accepts it', async () => {
    // prepare
    const { hmacKey: _hmac, ...plain } = identomatKit.secret('unit-nohmac');
    const own = await startStatusSimulator(identomatKit.statusSimulation!(plain));
    try {
      const unsigned = IdentomatSecretSchema.parse({ ...plain, baseUrl: own.baseUrl });
      own.report({ session_token: SESSION, result: 'rejected' });
      const stub = answering(200, '{"result":"rejected"}');
      // act
      const answer = await identomat.lookup!({ subjectId: SESSION }, unsigned, context());
      await identomat.lookup!({ subjectId: SESSION }, unsigned, context({ fetch: stub.fetch }));
      // assess
      assert.equal(answer.kind === 'found' && answer.payload.result, 'rejected');
      assert.equal(own.requests[0].authorized, true);
      assert.equal(new Headers(stub.seen[0].init.headers).get('authorization'), null);
    } finally {
      await own.stop();
    }
  });

  test('hmacKeyEncoding: the same signature from the key written as base64 or hex', async () => {
    // prepare
    const bytes = Buffer.from('unit-hmac-secret');
    const signatures: string[] = [];
    for (const [hmacKey, hmacKeyEncoding] of [[bytes.toString('utf8'), 'utf8'], [bytes.toString('base64'), 'base64'], [bytes.toString('hex'), 'hex']]) {
      const stub = answering(200, '{"result":"approved"}');
      const encoded = IdentomatSecretSchema.parse({ callbackApiKey: 'cb', companyKey: 'unit-company-key', hmacKey, hmacKeyEncoding, baseUrl: 'http://127.0.0.1:9' });
      // act
      await identomat.lookup!({ subjectId: SESSION }, encoded, context({ fetch: stub.fetch }));
      signatures.push(new Headers(stub.seen[0].init.headers).get('authorization')!);
    }
    // assess
    assert.deepEqual(signatures, Array(3).fill('signature="3FbnMrMi7BncLsNV3kLGIRcz81S1Zg15IPu8RTDFFew="'));
  });

  test('not found: a token the endpoint has no result for', async () => {
    // act
    const answer = await identomat.lookup!({ subjectId: 'never-reported-session' }, secret, context());
    // assess
    assert.deepEqual(answer, { kind: 'not_found' });
    assert.equal(simulator.requests[0].status, 200);
  });

  for (const body of ['{}', '{"result":null}', '{"result":""}', '{"error":"session not found"}']) {
    test(`not found: a 200 object without a result (${body})`, async () => {
      // act
      const answer = await identomat.lookup!({ subjectId: SESSION }, secret, context({ fetch: answering(200, body).fetch }));
      // assess
      assert.deepEqual(answer, { kind: 'not_found' });
    });
  }

  test('a refused company key (401) is a ConfigurationError naming the secret fields, never their values', async () => {
    // prepare
    const wrong = { ...secret, companyKey: 'unit-wrong-company-key' };
    // act + assess
    await assertRejectsWith(identomat.lookup!({ subjectId: SESSION }, wrong, context()), ConfigurationError, wrong, /401.*companyKey, hmacKey and baseUrl in the identomat secret/);
    assert.equal(simulator.requests[0].authorized, false);
  });

  test('a wrong hmacKey (the signature refused, 401) is a ConfigurationError', async () => {
    // prepare
    const wrong = { ...secret, hmacKey: 'unit-wrong-hmac-secret' };
    // act + assess
    await assertRejectsWith(identomat.lookup!({ subjectId: SESSION }, wrong, context()), ConfigurationError, wrong, /401/);
  });

  test('403 is a ConfigurationError too (inferred: the request carries no identity but the company credentials)', async () => {
    // act + assess
    await assertRejectsWith(identomat.lookup!({ subjectId: SESSION }, secret, context({ fetch: answering(403, '{"error":"forbidden"}').fetch })), ConfigurationError, secret, /403/);
  });

  for (const status of [500, 502, 503, 429]) {
    test(`${status} is a DependencyError (retried with back-off)`, async () => {
      // prepare
      simulator.setFault({ status, times: 1 });
      // act + assess
      await assertRejectsWith(identomat.lookup!({ subjectId: SESSION }, secret, context()), DependencyError, secret, new RegExp(`answered ${status}`));
    });
  }

  for (const status of [400, 404, 201]) {
    test(`an undocumented ${status} is a DependencyError, not a verdict`, async () => {
      // act + assess
      await assertRejectsWith(identomat.lookup!({ subjectId: SESSION }, secret, context({ fetch: answering(status, '{"result":"approved"}').fetch })), DependencyError, secret, new RegExp(`answered ${status}`));
    });
  }

  // The endpoint never answers, so only the lookup's own timeout can end it: the message says that
  // timeout fired. The test's timeout only stops a lookup that would wait for ever.
  test('an endpoint that never answers is a DependencyError after the timeout', { timeout: 30_000 }, async () => {
    // prepare
    simulator.setFault({ hang: true, times: 1 });
    // act + assess
    await assertRejectsWith(identomat.lookup!({ subjectId: SESSION }, secret, context({ timeoutMs: 200 })), DependencyError, secret, /unreachable: no answer within 200 ms/);
  });

  test('an answer slower than the timeout is a DependencyError', async () => {
    // prepare
    simulator.report({ session_token: SESSION, result: 'approved' });
    simulator.setFault({ delayMs: 600, times: 1 });
    // act + assess
    await assertRejectsWith(identomat.lookup!({ subjectId: SESSION }, secret, context({ timeoutMs: 150 })), DependencyError, secret);
  });

  test('an unreachable endpoint is a DependencyError without a credential in it', async () => {
    // prepare: a port nothing listens on
    const closed = await startStatusSimulator(identomatKit.statusSimulation!(identomatKit.secret('unit')));
    await closed.stop();
    const nowhere = secretFor(closed.baseUrl);
    // act + assess
    await assertRejectsWith(identomat.lookup!({ subjectId: SESSION }, nowhere, context()), DependencyError, nowhere, /unreachable/);
  });

  for (const status of [302, 307, 308]) {
    test(`a redirect (${status}) is not followed: the company key never reaches where it points, and a person is told`, async () => {
      // prepare: a stand-in that redirects to another server, which would answer "approved"
      const endpoint = await redirectingEndpoint(status, '{"result":"approved"}');
      try {
        const redirected = secretFor(endpoint.baseUrl);
        // act + assess
        await assertRejectsWith(identomat.lookup!({ subjectId: SESSION }, redirected, context()), ConfigurationError, redirected, new RegExp(`${status}.*baseUrl`));
        assert.deepEqual(endpoint.elsewhere, []);
      } finally {
        await endpoint.close();
      }
    });
  }

  const unusable: [string, string | Buffer][] = [
    ['not JSON', 'approved'],
    ['empty', ''],
    ['a JSON string', '"approved"'],
    ['a JSON array', '[{"result":"approved"}]'],
    ['a result that is a number', '{"result":1}'],
    ['a result that is an object', '{"result":{"value":"approved"}}'],
    ['a result longer than 64 characters', JSON.stringify({ result: 'a'.repeat(65) })],
    ['a result with a lone surrogate', '{"result":"appro\\ud800ved"}'],
    ['more than 256 KB', JSON.stringify({ result: 'approved', padding: 'x'.repeat(256 * 1024) })],
    ['not UTF-8', Buffer.from([0x7b, 0x22, 0x72, 0xff, 0x22, 0x7d])],
  ];
  for (const [name, body] of unusable) {
    test(`a 200 answer that is ${name} is a DependencyError`, async () => {
      // act + assess
      await assertRejectsWith(identomat.lookup!({ subjectId: SESSION }, secret, context({ fetch: answering(200, body).fetch })), DependencyError, secret);
    });
  }

  test('a subject with characters that need encoding reaches the endpoint as it is', async () => {
    // prepare
    const subject = 'sess "quoted" \\ back/slash & amp=1 ?q #frag é 😀';
    simulator.report({ session_token: subject, result: 'manual_check' });
    // act
    const answer = await identomat.lookup!({ subjectId: subject }, secret, context());
    // assess
    assert.equal(simulator.requests[0].subjectId, subject);
    assert.equal(simulator.requests[0].authorized, true, 'the signature covers the escaped body');
    assert.equal(answer.kind === 'found' && answer.payload.sessionId, subject);
    assert.equal(answer.kind === 'found' && identomat.describe(answer.payload).subjectId, subject);
  });

  describe('answers signed by Identomat (the response carries the HMAC of its body)', () => {
    const body = '{"result":"approved"}';
    const signature = createHmac('sha256', 'unit-hmac-secret').update(body).digest('base64');
    const fixed = IdentomatSecretSchema.parse({ callbackApiKey: 'cb', companyKey: 'unit-company-key', hmacKey: 'unit-hmac-secret', baseUrl: 'http://127.0.0.1:9' });

    test('a signature that verifies: found (the known-answer vector, computed with openssl)', async () => {
      // act
      const answer = await identomat.lookup!({ subjectId: SESSION }, fixed, context({ fetch: answering(200, body, { authorization: 'signature="1LuXTi+QJiz0xe1nAk2Y2wIeTnnCwbWRUvEWOTrLJBU="' }).fetch }));
      // assess
      assert.equal(signature, '1LuXTi+QJiz0xe1nAk2Y2wIeTnnCwbWRUvEWOTrLJBU=');
      assert.equal(answer.kind, 'found');
    });

    const wrong: [string, string][] = [
      ['of another body', `signature="${createHmac('sha256', 'unit-hmac-secret').update('{"result":"rejected"}').digest('base64')}"`],
      ['made with another key', `signature="${createHmac('sha256', 'other-secret').update(body).digest('base64')}"`],
      ['truncated', `signature="${signature.slice(0, 20)}"`],
      ['not base64', 'signature="not a signature!"'],
      ['in another scheme', `Bearer ${signature}`],
    ];
    for (const [name, header] of wrong) {
      test(`a signature ${name}: ConfigurationError, the answer never believed`, async () => {
        // act + assess
        await assertRejectsWith(identomat.lookup!({ subjectId: SESSION }, fixed, context({ fetch: answering(200, body, { authorization: header }).fetch })), ConfigurationError, fixed, /signature that does not verify.*hmacKey/);
      });
    }

    test('no signature: read as any answer ("an unsuccessful request does not include an authorization header")', async () => {
      // act
      const found = await identomat.lookup!({ subjectId: SESSION }, fixed, context({ fetch: answering(200, body).fetch }));
      const missing = await identomat.lookup!({ subjectId: SESSION }, fixed, context({ fetch: answering(200, '{}').fetch }));
      // assess
      assert.equal(found.kind, 'found');
      assert.equal(missing.kind, 'not_found');
    });

    test('without hmacKey the answer header is not looked at', async () => {
      // prepare
      const { hmacKey: _key, ...unsigned } = fixed;
      // act
      const answer = await identomat.lookup!({ subjectId: SESSION }, unsigned, context({ fetch: answering(200, body, { authorization: 'signature="garbage"' }).fetch }));
      // assess
      assert.equal(answer.kind, 'found');
    });
  });

  test('without companyKey lookup refuses to ask: ConfigurationError', async () => {
    // prepare
    const bare = IdentomatSecretSchema.parse({ callbackApiKey: 'cb-key', baseUrl: simulator.baseUrl });
    // act + assess
    await assertRejectsWith(identomat.lookup!({ subjectId: SESSION }, bare, context()), ConfigurationError, bare, /companyKey/);
    assert.equal(simulator.requests.length, 0);
  });
});

describe('identomat answer → describe: the same subject and part as the callbacks, the result read case-insensitively', () => {
  let simulator: StatusSimulator;
  let secret: IdentomatSecret;
  before(async () => {
    simulator = await startStatusSimulator(identomatKit.statusSimulation!(identomatKit.secret('unit')));
    secret = secretFor(simulator.baseUrl);
  });
  after(async () => {
    await simulator?.stop();
  });

  for (const sample of listSamples('identomat')) {
    test(`sample ${sample.name}: the kit's answer about its session names the same subject`, async () => {
      // prepare
      const claim = parsedCallback(sampleJson(sample.name));
      const claimFacts = identomat.describe(claim);
      simulator.report(identomatKit.statusAnswer!(sample));
      // act
      const answer = await identomat.lookup!({ subjectId: claimFacts.subjectId, ...(claimFacts.part === undefined ? {} : { part: claimFacts.part }) }, secret, context());
      // assess
      assert.equal(answer.kind, 'found');
      const facts = identomat.describe(answer.kind === 'found' ? answer.payload : (undefined as never));
      assert.equal(facts.subjectId, claimFacts.subjectId);
      assert.equal(facts.part, claimFacts.part);
      assert.equal(facts.reportsCurrent, true, 'an answer reports the current status: the latest wins');
      assert.notEqual(facts.placesStatus, false);
      assert.match(facts.eventKey, /^result\|[A-Z_]+\|/);
      if (claim.type === 'session-change') {
        assert.equal(facts.status, claimFacts.status, 'the lower-case answer reads as the callback');
        assert.deepEqual(identomat.differences!(claim, answer.kind === 'found' ? answer.payload : (undefined as never)), []);
      } else {
        assert.equal(facts.status, 'IN_PROGRESS');
        assert.deepEqual(identomat.differences!(claim, answer.kind === 'found' ? answer.payload : (undefined as never)), [], 'an instruction or video update claims no status');
      }
    });
  }

  const readings = [
    { result: 'approved', status: 'APPROVED', outcome: 'succeeded', terminal: true },
    { result: 'Approved', status: 'APPROVED', outcome: 'succeeded', terminal: true },
    { result: 'rejected', status: 'REJECTED', outcome: 'failed', terminal: true },
    { result: 'manual_check', status: 'MANUAL_CHECK', outcome: 'pending', terminal: false },
    { result: 'additional_information_requested', status: 'ADDITIONAL_INFORMATION_REQUESTED', outcome: 'pending', terminal: false },
    { result: 'in_progress', status: 'IN_PROGRESS', outcome: 'pending', terminal: false },
    { result: 'disagreed_with_terms', status: 'DISAGREED_WITH_TERMS', outcome: 'pending', terminal: false },
    { result: 'approved_later', status: 'APPROVED_LATER', outcome: 'pending', terminal: false },
  ];
  for (const { result, status, outcome, terminal } of readings) {
    test(`"${result}" reads as ${status} (${outcome}${terminal ? ', final' : ''})`, async () => {
      // prepare
      simulator.report({ session_token: `case-${result}`, result });
      // act
      const answer = await identomat.lookup!({ subjectId: `case-${result}` }, secret, context());
      // assess
      const facts = identomat.describe(answer.kind === 'found' ? answer.payload : (undefined as never));
      assert.deepEqual({ status: facts.status, outcome: facts.outcome, terminal: facts.terminal }, { status, outcome, terminal });
    });
  }

  test('a session-change claim that differs from the answer: a mismatch in `result`', () => {
    // prepare
    const claim = parsedCallback({ type: 'session-change', sessionId: SESSION, result: 'APPROVED' });
    const answer = { type: 'session-change', sessionId: SESSION, result: 'rejected', resultLookupId: 'l-1' } as IdentomatCallback;
    // act
    const differences = identomat.differences!(claim, answer);
    // assess
    assert.deepEqual(differences, ['result']);
  });

  test('videoCallStatus is kept bounded on the answer and never changes the status it reports', async () => {
    // prepare
    const video = {
      roomId: 'room-31f9',
      roomStatus: 'ended',
      compositionStatus: null,
      videoFileStatus: 'available',
      videoFileId: 'x'.repeat(129),
      participants: [{ name: 'a person' }],
      result: 'rejected',
    };
    simulator.report({ session_token: 'video-1', result: 'manual_check', videoCallStatus: video });
    simulator.report({ session_token: 'video-2', result: 'manual_check' });
    simulator.report({ session_token: 'video-3', result: 'manual_check', videoCallStatus: Array.from({ length: 12 }, (_, n) => ({ roomId: `room-${n}`, roomStatus: 'empty' })) });
    simulator.report({ session_token: 'video-4', result: 'manual_check', videoCallStatus: 'ended' });
    // act
    const answers = await Promise.all(['video-1', 'video-2', 'video-3', 'video-4'].map((subjectId) => identomat.lookup!({ subjectId }, secret, context())));
    // assess
    const payloads = answers.map((answer) => (answer.kind === 'found' ? answer.payload : assert.fail('not found')));
    assert.deepEqual(payloads[0].videoCallStatus, { roomId: 'room-31f9', roomStatus: 'ended', compositionStatus: null, videoFileStatus: 'available' });
    assert.equal(payloads[1].videoCallStatus, undefined);
    assert.equal((payloads[2].videoCallStatus as unknown[]).length, 8);
    assert.equal(payloads[3].videoCallStatus, undefined, 'a shape it cannot recognise is not kept');
    const facts = payloads.map((payload) => identomat.describe(payload));
    for (const fact of facts) assert.deepEqual({ status: fact.status, outcome: fact.outcome, terminal: fact.terminal, detail: fact.detail }, { status: 'MANUAL_CHECK', outcome: 'pending', terminal: false, detail: undefined });
  });

  test('a callback carrying resultLookupId is refused: only an answer is keyed as one', () => {
    // prepare
    const request: CallbackRequest = {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify({ callbackApiKey: 'k', type: 'session-change', sessionId: SESSION, result: 'APPROVED', resultLookupId: 'forged' })),
      rawQuery: '',
      sourceIp: '203.0.113.10',
      requestId: 'unit',
      receivedAt: '2026-01-01T10:00:00.000Z',
    };
    // act
    const parsed = identomat.parse(request);
    // assess
    assert.equal(parsed.ok, false);
    assert.match(parsed.ok ? '' : parsed.reason, /resultLookupId is reserved/);
  });
});

describe('identomat answers are observations of their own (the worker folds them as core/worker.ts does)', () => {
  let simulator: StatusSimulator;
  let secret: IdentomatSecret;
  before(async () => {
    simulator = await startStatusSimulator(identomatKit.statusSimulation!(identomatKit.secret('unit')));
    secret = secretFor(simulator.baseUrl);
  });
  after(async () => {
    await simulator?.stop();
  });

  /** Ask result/ now, and fold its answer into the state as the worker does (an uncounted observation). */
  async function ask(state: StateItem | undefined, subjectId: string, askedAt: string) {
    const answer = await identomat.lookup!({ subjectId }, secret, context());
    assert.equal(answer.kind, 'found');
    const facts = identomat.describe(answer.kind === 'found' ? answer.payload : (undefined as never));
    const placed = placeStatus(facts, askedAt);
    const observation = { hash: shortHash(answerEventKey({ facts })), counts: false, source: 'status-endpoint' as const, placed };
    return { state: applyObservations(state, { provider: 'identomat', subjectId }, [observation], undefined, askedAt) ?? state, facts, placed };
  }

  test('APPROVED, MANUAL_CHECK, APPROVED again: the last answer is the status; none is counted or numbered', async () => {
    // prepare
    const subjectId = 'observations-1';
    let state: StateItem | undefined;
    const keys: string[] = [];
    // act
    for (const [n, result] of ['approved', 'manual_check', 'approved'].entries()) {
      simulator.report({ session_token: subjectId, result });
      const asked = await ask(state, subjectId, `2026-01-01T10:0${n}:00.000Z`);
      state = asked.state;
      keys.push(asked.facts.eventKey);
    }
    // assess
    assert.equal(state?.status, 'APPROVED', 'an answer equal to an earlier one is applied again');
    assert.equal(state?.outcome, 'succeeded');
    assert.equal(state?.source, 'status-endpoint');
    assert.equal(state?.eventCount, 0, 'answers are not callbacks');
    assert.equal(state?.changes, undefined, 'answers are not numbered as changes');
    assert.equal(new Set(keys).size, 3, 'one observation per request');
  });

  test('a later answer wins whatever its tier: REJECTED (final) then MANUAL_CHECK', async () => {
    // prepare
    const subjectId = 'observations-2';
    simulator.report({ session_token: subjectId, result: 'rejected' });
    const first = await ask(undefined, subjectId, '2026-01-01T10:00:00.000Z');
    simulator.report({ session_token: subjectId, result: 'manual_check' });
    // act
    const second = await ask(first.state, subjectId, '2026-01-01T10:05:00.000Z');
    // assess
    assert.equal(first.state?.terminal, true);
    assert.equal(second.state?.status, 'MANUAL_CHECK');
    assert.equal(second.state?.terminal, false);
  });

  test('the claim is judged against the answer placed at the time asked: an older claim that differs is behind, never unsettled', async () => {
    // prepare
    const subjectId = 'observations-3';
    simulator.report({ session_token: subjectId, result: 'rejected' });
    const claimPayload = parsedCallback({ type: 'session-change', sessionId: subjectId, result: 'APPROVED' });
    const claimFacts = identomat.describe(claimPayload);
    const claim = { payload: claimPayload, facts: claimFacts, placed: placeStatus(claimFacts, '2026-01-01T10:00:00.000Z') };
    const answer = await identomat.lookup!({ subjectId }, secret, context());
    const answerFacts = identomat.describe(answer.kind === 'found' ? answer.payload : (undefined as never));
    // act
    const judged = judgeClaim(identomat, claim, { payload: answer.kind === 'found' ? answer.payload : undefined, facts: answerFacts, placed: placeStatus(answerFacts, '2026-01-01T10:00:01.000Z') });
    // assess
    assert.equal(judged.verdict.kind, 'mismatch');
    assert.deepEqual(judged.verdict.differences, ['result']);
    assert.equal(judged.verdict.answerStatus, 'REJECTED');
    assert.equal(judged.unsettled, false, 'result/ is always current: a differing answer is not the endpoint lagging');
  });
});
