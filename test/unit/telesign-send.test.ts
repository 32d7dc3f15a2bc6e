import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { postOnceContext } from '../../functions/adapters/post-once.ts';
import type { OutgoingMessage } from '../../functions/providers/provider.ts';
import { basicAuthorization, telesign, TeleSignSecretSchema, type TeleSignSecret } from '../../functions/providers/telesign.ts';
import { ConfigurationError, DependencyError, MessageRefusedError, UncertainDeliveryError } from '../../functions/shared/errors.ts';
import { REPO_ROOT } from '../../lib/gateway-function.ts';
import { startStatusSimulator, type StatusSimulator } from '../../local/status-simulator.ts';
import { telesignKit, telesignStatusSimulation } from '../providers/telesign.ts';
import { leaks } from '../support/log-leaks.ts';

/**
 * TeleSign's send capability (`telesign.sendMessage`: POST /v1/messaging) against TeleSign's own
 * documented answers (test/fixtures/telesign/send/, served as they are), against the kit's
 * messaging simulation, and the transport underneath (adapters/post-once.ts): what left and what
 * did not decides between "retry" and "uncertain, never resend".
 */

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'telesign', 'send');
const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');

const secretFields = telesignKit.secret('unit');
const MESSAGE: OutgoingMessage = { to: '+15555550123', text: 'Your code is 6867', kind: 'OTP', externalId: '0123456789abcdef0123456789abcdef' };
/** What may never appear in an error message: the number, its digits, the text, the code. */
const SECRETS_OF_MESSAGE = ['15555550123', '5555550123', 'Your code is', '6867'];

function secretAt(baseUrl: string): TeleSignSecret {
  return TeleSignSecretSchema.parse({ ...secretFields, baseUrl });
}

function assertNoContent(error: unknown) {
  const text = `${(error as Error).message} ${JSON.stringify(error)}`;
  for (const value of [...SECRETS_OF_MESSAGE, '15555550100']) assert.ok(!leaks(text, value), `the error message carries "${value}": ${text}`);
}

interface Seen {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

/** A stand-in answering every request with the next status and body given; it records what it saw. */
async function answering(): Promise<{ url: string; seen: Seen[]; next(status: number, body: string, headers?: Record<string, string>): void; stop(): Promise<void> }> {
  const seen: Seen[] = [];
  let answer = { status: 200, body: '', headers: {} as Record<string, string> };
  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      seen.push({ method: request.method ?? '', path: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      response.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      response.end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    next: (status, body, headers = {}) => void (answer = { status, body, headers }),
    stop: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

const context = postOnceContext({ sendTimeoutMs: 2_000, answerTimeoutMs: 1_000 });

describe('TeleSign send: the request', () => {
  let server: Awaited<ReturnType<typeof answering>>;
  before(async () => {
    server = await answering();
  });
  after(async () => server?.stop());

  test('POST /v1/messaging, form-encoded, Basic customerId:apiKey, the number as digits, the type and our id', async () => {
    // prepare
    server.next(200, fixture('200-message-in-progress.json'));
    const secret = secretAt(`${server.url}/`);
    // act
    const sent = await telesign.sendMessage!(secret, MESSAGE, context);
    // assess
    assert.deepEqual(sent, { referenceId: '0123456789ABCDEF0123456789ABCDEF' });
    const request = server.seen.at(-1)!;
    assert.equal(request.method, 'POST');
    assert.equal(request.path, '/v1/messaging', 'the base URL with its trailing slash, then the path');
    assert.equal(request.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.equal(request.headers.authorization, basicAuthorization(String(secretFields.customerId), String(secretFields.apiKey)));
    const form = new URLSearchParams(request.body);
    assert.deepEqual(Object.fromEntries(form), { phone_number: '15555550123', message: 'Your code is 6867', message_type: 'OTP', external_id: MESSAGE.externalId });
    assert.equal(request.headers['content-length'], String(Buffer.byteLength(request.body)));
  });

  test('a link goes as ARN (alerts, reminders and notifications), UTF-8 text as it is', async () => {
    // prepare
    server.next(200, fixture('200-message-in-progress.json'));
    // act
    await telesign.sendMessage!(secretAt(server.url), { ...MESSAGE, kind: 'ARN', text: 'Გამარჯობა, open https://widget.identomat.com/?session_token=abc&x=1' }, context);
    // assess
    const form = new URLSearchParams(server.seen.at(-1)!.body);
    assert.equal(form.get('message_type'), 'ARN');
    assert.equal(form.get('message'), 'Გამარჯობა, open https://widget.identomat.com/?session_token=abc&x=1');
  });

  test('what TeleSign would refuse is not sent at all: a number that is not E.164, an empty or over-long text', async () => {
    // prepare
    const before = server.seen.length;
    const cases: OutgoingMessage[] = [
      { ...MESSAGE, to: '15555550123' },
      { ...MESSAGE, to: '+1 555 555 0123' },
      { ...MESSAGE, to: '+0155555501' },
      { ...MESSAGE, text: '' },
      { ...MESSAGE, text: 'x'.repeat(1601) },
    ];
    for (const message of cases) {
      // act
      const error = await telesign.sendMessage!(secretAt(server.url), message, context).catch((caught: unknown) => caught);
      // assess
      assert.ok(error instanceof MessageRefusedError, `${JSON.stringify(message.to)}/${message.text.length}: ${String(error)}`);
      assertNoContent(error);
    }
    assert.equal(server.seen.length, before, 'no request left');
  });
});

describe("TeleSign send: TeleSign's documented answers", () => {
  let server: Awaited<ReturnType<typeof answering>>;
  before(async () => {
    server = await answering();
  });
  after(async () => server?.stop());

  const cases: { name: string; status: number; body: string; error: new (...args: never[]) => Error; says: RegExp; codes?: number[]; referenceId?: string }[] = [
    { name: '400 11000 (invalid phone_number): refused for good, the parameter named', status: 400, body: fixture('400-invalid-phone-number.json'), error: MessageRefusedError, says: /HTTP 400 \(code 11000: invalid value for phone_number\)/, codes: [11000] },
    { name: '401 -10033 (a trial account, an unverified number): refused for good, not a credential fault', status: 401, body: fixture('401-trial-unverified-number.json'), error: MessageRefusedError, says: /trial account sends only to verified numbers/, codes: [-10033, 500] },
    { name: '401 -30000 (customer id): configuration', status: 401, body: fixture('401-invalid-customer-id.json'), error: ConfigurationError, says: /customerId in the telesign secret/ },
    { name: "401 -10009 (source IP): configuration, the allow-list", status: 401, body: fixture('401-invalid-source-ip.json'), error: ConfigurationError, says: /allow-list/ },
    { name: '401 -20002 (SMS not enabled): configuration', status: 401, body: fixture('401-product-not-enabled.json'), error: ConfigurationError, says: /SMS API is not enabled/ },
    { name: '429: nothing sent, try later', status: 429, body: fixture('429-hard-cap.json'), error: DependencyError, says: /send answered 429/ },
    { name: '500 (Transaction not attempted): try later', status: 500, body: '{}', error: DependencyError, says: /send answered 500/ },
    { name: '503 -90001: try later', status: 503, body: fixture('503-unavailable.json'), error: DependencyError, says: /send answered 503 \(code -90001, 500\)/ },
    { name: '408 (the request never arrived whole): nothing sent, try later', status: 408, body: '', error: DependencyError, says: /send answered 408: the request was not taken/ },
    { name: '425 (too early, not processed): nothing sent, try later', status: 425, body: '', error: DependencyError, says: /send answered 425/ },
    { name: '502 from a gateway (it may have passed the request on): uncertain, never resent', status: 502, body: '<html>bad gateway</html>', error: UncertainDeliveryError, says: /answered 502 .*may have been sent/ },
    { name: '504 (a gateway gave up waiting for TeleSign): uncertain', status: 504, body: '', error: UncertainDeliveryError, says: /answered 504 .*may have been sent/ },
    { name: '501 (not a status TeleSign documents): uncertain', status: 501, body: '', error: UncertainDeliveryError, says: /answered 501/ },
    { name: '200 without a reference_id: taken, but cannot be joined: uncertain', status: 200, body: '{"status":{"code":290}}', error: UncertainDeliveryError, says: /without a readable reference_id/ },
    { name: '200 that is not JSON: uncertain', status: 200, body: 'OK', error: UncertainDeliveryError, says: /reference_id/ },
    { name: '200 naming reference_id twice (which one its reports will name is not said): uncertain, never resent', status: 200, body: '{"reference_id":"0123456789ABCDEF0123456789ABCDEF","reference_id":"FEDCBA9876543210FEDCBA9876543210","status":{"code":290}}', error: UncertainDeliveryError, says: /without a readable reference_id/ },
    { name: '200 whose status code JSON reads as another (290.00000000000001 is 290): uncertain, not read as taken', status: 200, body: '{"reference_id":"0123456789ABCDEF0123456789ABCDEF","status":{"code":500.00000000000001}}', error: UncertainDeliveryError, says: /without a readable reference_id/ },
    { name: '200 naming its status code twice (500 not attempted, then 290): uncertain, not read as taken', status: 200, body: '{"reference_id":"0123456789ABCDEF0123456789ABCDEF","status":{"code":500,"code":290}}', error: UncertainDeliveryError, says: /without a readable reference_id/ },
    { name: '200 reporting a TeleSign failure code (500 not attempted): refused', status: 200, body: '{"reference_id":"0123456789ABCDEF0123456789ABCDEF","status":{"code":500,"description":"Transaction not attempted"}}', error: MessageRefusedError, says: /reports status 500/, referenceId: '0123456789ABCDEF0123456789ABCDEF' },
    { name: '302: configuration (baseUrl)', status: 302, body: '', error: ConfigurationError, says: /redirect \(302\)/ },
    { name: '404: configuration (baseUrl)', status: 404, body: '', error: ConfigurationError, says: /not TeleSign's REST API/ },
  ];
  for (const each of cases) {
    test(each.name, async () => {
      // prepare
      server.next(each.status, each.body, each.status === 302 ? { location: 'https://elsewhere.invalid/' } : {});
      // act
      const error = await telesign.sendMessage!(secretAt(server.url), MESSAGE, context).catch((caught: unknown) => caught);
      // assess
      assert.ok(error instanceof each.error, `${each.error.name} expected, got ${String(error)}`);
      assert.match((error as Error).message, each.says);
      if (each.codes) assert.deepEqual([...(error as MessageRefusedError).codes].sort(), [...each.codes].sort());
      if (error instanceof MessageRefusedError) assert.equal(error.referenceId, each.referenceId, 'the reference a 2xx answer gave, kept on its refusal');
      assertNoContent(error);
    });
  }
});

describe('TeleSign send: a busy answer that says when to try again', () => {
  let server: Awaited<ReturnType<typeof answering>>;
  before(async () => {
    server = await answering();
  });
  after(async () => server?.stop());

  // An HTTP date is made when its test runs (a whole second, so nothing is cut off), and the wait
  // expected of it is bounded by the clock read around the call: a slow machine cannot fail it.
  const minuteAhead = (now: number) => new Date((Math.floor(now / 1000) + 60) * 1000);
  const cases: { name: string; status: number; headers: (now: number) => Record<string, string>; retryAfterAt?: (now: number) => number; retryAfterSeconds: number | undefined }[] = [
    { name: '429 with Retry-After: 120', status: 429, headers: () => ({ 'retry-after': '120' }), retryAfterSeconds: 120 },
    { name: '503 with Retry-After as an HTTP date a minute ahead', status: 503, headers: (now) => ({ 'retry-after': minuteAhead(now).toUTCString() }), retryAfterAt: (now) => minuteAhead(now).getTime(), retryAfterSeconds: 60 },
    { name: '429 with a malformed Retry-After: the usual back-off', status: 429, headers: () => ({ 'retry-after': 'soon' }), retryAfterSeconds: undefined },
    { name: '500 with Retry-After (not a busy answer): the usual back-off', status: 500, headers: () => ({ 'retry-after': '120' }), retryAfterSeconds: undefined },
  ];
  for (const each of cases) {
    test(each.name, async () => {
      // prepare
      const sent = Date.now();
      server.next(each.status, '{}', each.headers(sent));
      // act
      const error = await telesign.sendMessage!(secretAt(server.url), MESSAGE, context).catch((caught: unknown) => caught);
      const answered = Date.now();
      // assess
      assert.ok(error instanceof DependencyError, String(error));
      const seconds = error.retryAfterSeconds;
      if (each.retryAfterSeconds === undefined) assert.equal(seconds, undefined);
      else if (each.retryAfterAt === undefined) assert.equal(seconds, each.retryAfterSeconds);
      else {
        // Counted from when the answer came: between the call and its return.
        const at = each.retryAfterAt(sent);
        assert.ok(seconds !== undefined && seconds >= Math.ceil((at - answered) / 1000) && seconds <= Math.ceil((at - sent) / 1000), `${String(seconds)} s`);
      }
      assertNoContent(error);
    });
  }
});

describe('TeleSign send: an error answer naming many codes', () => {
  let server: Awaited<ReturnType<typeof answering>>;
  before(async () => {
    server = await answering();
  });
  after(async () => server?.stop());

  test('a 400 listing thousands of codes is refused naming ten of them, each once: the reason goes into log lines and the relay item', async () => {
    // prepare: errors[] with 3000 codes (45 KB, within what a send answer is read up to), the same one twice first
    const errors = [{ code: 11000 }, { code: 11000 }, ...Array.from({ length: 3000 }, (_, i) => ({ code: 20_000 + i }))];
    server.next(400, JSON.stringify({ errors, status: { code: 500 } }));
    // act
    const error = await telesign.sendMessage!(secretAt(server.url), MESSAGE, context).catch((caught: unknown) => caught);
    // assess
    assert.ok(error instanceof MessageRefusedError, String(error));
    assert.deepEqual(error.codes, [11000, 20_000, 20_001, 20_002, 20_003, 20_004, 20_005, 20_006, 20_007, 20_008]);
    assert.ok(error.message.length < 300, `${error.message.length} characters: ${error.message}`);
    assert.match(error.message, /HTTP 400 \(code 11000, 20000, .*20008: invalid value for phone_number\)/);
  });
});

describe('TeleSign send: a deciding code listed after ten others', () => {
  let server: Awaited<ReturnType<typeof answering>>;
  before(async () => {
    server = await answering();
  });
  after(async () => server?.stop());

  test('401 naming twelve other codes, then -10033 (trial, unverified number): refused for good, not a credential fault', async () => {
    // prepare
    server.next(401, JSON.stringify({ errors: [...Array.from({ length: 12 }, (_, i) => ({ code: 20_000 + i })), { code: -10033 }] }));
    // act
    const error = await telesign.sendMessage!(secretAt(server.url), MESSAGE, context).catch((caught: unknown) => caught);
    // assess
    assert.ok(error instanceof MessageRefusedError, String(error));
    assert.match(error.message, /trial account sends only to verified numbers/);
    assert.equal(error.codes.length, 10);
    assert.ok(error.codes.includes(-10033));
  });
});

describe('TeleSign send: a 2xx other than 200 took the message', () => {
  let server: Awaited<ReturnType<typeof answering>>;
  before(async () => {
    server = await answering();
  });
  after(async () => server?.stop());

  test('201 or 202 with a reference: sent, under that reference; 204 (no body): uncertain, never "refused, not sent"', async () => {
    for (const status of [201, 202]) {
      // prepare
      server.next(status, fixture('200-message-in-progress.json'));
      // act
      const sent = await telesign.sendMessage!(secretAt(server.url), MESSAGE, context);
      // assess
      assert.deepEqual(sent, { referenceId: '0123456789ABCDEF0123456789ABCDEF' }, `HTTP ${status}`);
    }
    server.next(204, '');
    const error = await telesign.sendMessage!(secretAt(server.url), MESSAGE, context).catch((caught: unknown) => caught);
    assert.ok(error instanceof UncertainDeliveryError, String(error));
    assertNoContent(error);
  });
});

describe('TeleSign send: what left, and what did not (adapters/post-once.ts)', () => {
  test('connection refused: nothing left, so it may be tried again (DependencyError)', async () => {
    // prepare: a port nobody listens on
    const server = await answering();
    const url = server.url;
    await server.stop();
    // act
    const error = await telesign.sendMessage!(secretAt(url), MESSAGE, context).catch((caught: unknown) => caught);
    // assess
    assert.ok(error instanceof DependencyError && !(error instanceof UncertainDeliveryError), String(error));
    assert.match((error as Error).message, /not sent/);
  });

  test("no time left to leave (a code at its age limit): not sent, no connection made (DependencyError)", async () => {
    // prepare
    let connections = 0;
    const counting = createNetServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => counting.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(counting.address() as AddressInfo).port}/v1/messaging`;
    // act
    const errors = await Promise.all([0, -5, Number.NaN].map((leaveWithinMs) => context.post(url, { headers: {}, body: 'x', dependency: 'telesign', leaveWithinMs }).catch((caught: unknown) => caught)));
    counting.close();
    // assess
    for (const error of errors) {
      assert.ok(error instanceof DependencyError && !(error instanceof UncertainDeliveryError), String(error));
      assert.match((error as Error).message, /not sent \(its time to leave had passed\)/);
    }
    assert.equal(connections, 0);
  });

  // A TLS server that never finishes its handshake: the request cannot leave, and only a send limit ends it.
  test("a connection not made within the caller's limit, shorter than the send timeout: not sent, at that limit (DependencyError)", { timeout: 30_000 }, async () => {
    // prepare: TCP accepted, TLS never answered
    const sockets: Socket[] = [];
    const mute = createNetServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
    const slow = postOnceContext({ sendTimeoutMs: 60_000, answerTimeoutMs: 1_000 });
    // act
    const error = await slow
      .post(`https://127.0.0.1:${(mute.address() as AddressInfo).port}/v1/messaging`, { headers: {}, body: 'x', dependency: 'telesign', leaveWithinMs: 200 })
      .catch((caught: unknown) => caught);
    for (const socket of sockets) socket.destroy();
    mute.close();
    // assess: the caller's 200 ms ended it, not the 60 s send timeout
    assert.ok(error instanceof DependencyError && !(error instanceof UncertainDeliveryError), String(error));
    assert.match((error as Error).message, /not sent within 200 ms/);
  });

  test('a host that does not resolve: nothing left (DependencyError)', async () => {
    // act
    const error = await telesign.sendMessage!(secretAt('https://rest.telesign.invalid'), MESSAGE, context).catch((caught: unknown) => caught);
    // assess
    assert.ok(error instanceof DependencyError, String(error));
  });

  // The server never answers, so only the answer timeout can end the send: the message says that
  // timeout fired. The test's timeout only stops a send that would wait for ever.
  test('a request that left and got no answer in time: uncertain, the message may be on its way', { timeout: 30_000 }, async () => {
    // prepare: TeleSign reads the whole request, then says nothing
    const requests: string[] = [];
    let arrived: () => void = () => undefined;
    const whole = new Promise<void>((resolve) => (arrived = resolve));
    const silent = createServer((request) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        requests.push(Buffer.concat(chunks).toString('utf8'));
        arrived();
      });
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    // act
    const error = await telesign
      .sendMessage!(secretAt(`http://127.0.0.1:${(silent.address() as AddressInfo).port}`), MESSAGE, postOnceContext({ answerTimeoutMs: 300 }))
      .catch((caught: unknown) => caught);
    // The server reads the request on a turn of its own: on a busy machine the answer timeout can
    // fire before that turn comes. A request that never arrived whole leaves this waiting.
    await whole;
    silent.closeAllConnections();
    silent.close();
    // assess
    assert.ok(error instanceof UncertainDeliveryError, String(error));
    assert.match((error as Error).message, /no answer within 300 ms/);
    assert.equal(requests.length, 1, 'the whole request arrived');
    assertNoContent(error);
  });

  test('a connection dropped after the request left: uncertain', async () => {
    // prepare
    const dropping = createServer((request) => {
      request.resume();
      request.on('end', () => request.socket.destroy());
    });
    await new Promise<void>((resolve) => dropping.listen(0, '127.0.0.1', resolve));
    // act
    const error = await telesign.sendMessage!(secretAt(`http://127.0.0.1:${(dropping.address() as AddressInfo).port}`), MESSAGE, context).catch((caught: unknown) => caught);
    dropping.close();
    // assess
    assert.ok(error instanceof UncertainDeliveryError, String(error));
  });
});

describe('TeleSign send: an answer whose status came and whose body did not come whole', () => {
  // The status line is in, the body is not: a 2xx may have taken the message (uncertain, never
  // resent, whatever the body would have said), a 503 did not (tried again). Each is bounded by the
  // answer timeout, never left to the function's own.
  const REFERENCE = '{"reference_id":"0123456789ABCDEF0123456789ABCDEF","status":{"code":290,"description":"Message in progress"}}';
  const cases: { name: string; answer: (response: ServerResponse) => void; error: new (...args: never[]) => Error }[] = [
    {
      name: '200 whose body never ends: uncertain',
      answer: (response) => {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.write(REFERENCE.slice(0, 40));
      },
      error: UncertainDeliveryError,
    },
    {
      name: '200 whose connection drops before the body its length announces: uncertain, the reference it began with not taken',
      answer: (response) => {
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': String(REFERENCE.length + 10) });
        response.write(REFERENCE);
        setTimeout(() => response.socket?.destroy(), 20);
      },
      error: UncertainDeliveryError,
    },
    {
      name: '200 with a body past 64 KiB: uncertain, not read whole',
      answer: (response) => {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(`${REFERENCE.slice(0, -1)},"pad":"${'x'.repeat(100_000)}"}`);
      },
      error: UncertainDeliveryError,
    },
    {
      name: '503 whose body never ends: nothing sent, tried again',
      answer: (response) => {
        response.writeHead(503, { 'content-type': 'application/json' });
        response.write('{"errors":[');
      },
      error: DependencyError,
    },
  ];
  for (const each of cases) {
    test(each.name, async () => {
      // prepare
      const server = createServer((request, response) => {
        request.resume();
        request.on('end', () => each.answer(response));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const started = Date.now();
      // act
      const error = await telesign
        .sendMessage!(secretAt(`http://127.0.0.1:${(server.address() as AddressInfo).port}`), MESSAGE, postOnceContext({ sendTimeoutMs: 2_000, answerTimeoutMs: 300 }))
        .catch((caught: unknown) => caught);
      server.closeAllConnections();
      server.close();
      // assess
      assert.ok(error instanceof each.error, `${each.error.name} expected, got ${String(error)}`);
      if (each.error === DependencyError) assert.ok(!(error instanceof UncertainDeliveryError), String(error));
      assert.ok(Date.now() - started < 5_000, 'bounded by the answer timeout');
      assertNoContent(error);
    });
  }
});

describe("TeleSign send: the kit's messaging simulation", () => {
  let simulator: StatusSimulator;
  let receiver: Awaited<ReturnType<typeof answering>>;
  const secret = () => secretAt(simulator.baseUrl);
  before(async () => {
    receiver = await answering();
    simulator = await startStatusSimulator(
      telesignStatusSimulation({ customerId: String(secretFields.customerId), apiKey: String(secretFields.apiKey) }, { deliveryCodes: [203, 200], reportDelayMs: 20, verifiedNumbers: undefined }),
      { deliveryReportUrl: `${receiver.url}/callbacks/telesign` },
    );
  });
  after(async () => {
    await simulator?.stop();
    await receiver?.stop();
  });

  test('a send is taken (290), then its delivery reports come, signed as TeleSign signs callbacks, and Get Status knows it', async () => {
    // prepare
    receiver.next(200, '{}');
    const seenBefore = receiver.seen.length;
    // act
    const { referenceId } = await telesign.sendMessage!(secret(), MESSAGE, context);
    await simulator.reportsSettled();
    // assess
    assert.match(referenceId, /^[0-9A-F]{32}$/);
    const taken = simulator.sent.at(-1)!;
    assert.equal(taken.referenceId, referenceId);
    assert.equal(taken.status, 200);
    assert.equal(taken.authorized, true);
    assert.deepEqual(taken.parameters, { phone_number: '15555550123', message: 'Your code is 6867', message_type: 'OTP', external_id: MESSAGE.externalId });
    const reports = receiver.seen.slice(seenBefore);
    assert.deepEqual(reports.map((report) => JSON.parse(report.body).status.code), [203, 200]);
    for (const report of reports) {
      const verdict = telesign.authenticate(
        { method: 'POST', headers: report.headers as Record<string, string>, body: Buffer.from(report.body), rawQuery: '', sourceIp: '127.0.0.1', requestId: 'r', receivedAt: new Date().toISOString() },
        secret(),
      );
      assert.deepEqual(verdict, { ok: true }, 'signed with the account key');
      assert.equal(JSON.parse(report.body).reference_id, referenceId);
      assert.equal(JSON.parse(report.body).external_id, MESSAGE.externalId, 'our id echoed back');
    }
    const answer = await telesign.lookup!({ subjectId: referenceId }, secret(), { fetch, timeoutMs: 2_000, newRequestId: () => 'x' });
    assert.equal(answer.kind === 'found' ? answer.payload.status?.code : answer.kind, 200, 'Get Status answers the last report');
  });

  test('wrong credentials: 401 -30015, a configuration fault, nothing sent', async () => {
    // act
    const error = await telesign.sendMessage!({ ...secret(), apiKey: Buffer.from('another-telesign-api-key-0123456789').toString('base64') }, MESSAGE, context).catch((caught: unknown) => caught);
    // assess
    assert.ok(error instanceof ConfigurationError, String(error));
    assert.match((error as Error).message, /refused the API key/);
    assert.equal(simulator.sent.at(-1)!.referenceId, undefined);
  });

  test('a refused send is listed with the parameters it was asked to send and the answer naming the wrong one', async () => {
    // prepare: what the gateway itself never sends (it checks the number first), so straight to the API
    const post = (body: string, authorization = basicAuthorization(String(secretFields.customerId), String(secretFields.apiKey))) =>
      fetch(`${simulator.baseUrl}/v1/messaging`, { method: 'POST', headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' }, body });
    simulator.setSendFault({ status: 503, times: 1 });
    // act
    const faulted = await post('phone_number=15555550123&message=hi&message_type=OTP&external_id=faulted');
    const invalid = await post('phone_number=%2B1%20555&message=hi&message_type=OTP&external_id=invalid');
    const missing = await post('message=hi&message_type=OTP');
    // assess
    assert.deepEqual([faulted.status, invalid.status, missing.status], [503, 400, 400]);
    const [listedFault, listedInvalid, listedMissing] = simulator.sent.slice(-3);
    assert.deepEqual(listedFault.parameters, { phone_number: '15555550123', message: 'hi', message_type: 'OTP', external_id: 'faulted' });
    assert.equal(listedFault.referenceId, undefined);
    assert.deepEqual(listedFault.refusal, await faulted.json());
    assert.deepEqual(listedInvalid.parameters, { phone_number: '+1 555', message: 'hi', message_type: 'OTP', external_id: 'invalid' });
    assert.deepEqual(listedInvalid.refusal, await invalid.json(), 'the answer TeleSign gives, naming the parameter');
    assert.equal((listedInvalid.refusal as { status: { description: string } }).status.description, 'Invalid value for parameter phone_number.');
    assert.deepEqual(listedMissing.parameters, { message: 'hi', message_type: 'OTP' });
    assert.equal((listedMissing.refusal as { status: { code: number } }).status.code, 12000, 'phone_number missing');
  });

  test('a fault that answers 503 sends nothing (DependencyError); a hang takes the message and never answers (uncertain)', async () => {
    // prepare
    receiver.next(200, '{}');
    simulator.setSendFault({ status: 503, times: 1 });
    // act
    const refused = await telesign.sendMessage!(secret(), MESSAGE, context).catch((caught: unknown) => caught);
    simulator.setSendFault({ hang: true, times: 1 });
    const hung = await telesign.sendMessage!(secret(), MESSAGE, postOnceContext({ answerTimeoutMs: 300 })).catch((caught: unknown) => caught);
    await simulator.reportsSettled();
    // assess
    assert.ok(refused instanceof DependencyError, String(refused));
    assert.equal(simulator.sent.at(-2)!.referenceId, undefined, 'the 503 took nothing');
    assert.ok(hung instanceof UncertainDeliveryError, String(hung));
    const taken = simulator.sent.at(-1)!;
    assert.ok(taken.referenceId, 'the hung send was taken all the same');
    assert.deepEqual(taken.reports.map((report) => report.status), [200, 200], 'and its reports came: it did go out');
  });

  test('a trial account refuses a number it has not verified: 401 -10033, refused for good, the number not in the error', async () => {
    // prepare
    const trial = await startStatusSimulator(telesignStatusSimulation({ customerId: String(secretFields.customerId), apiKey: String(secretFields.apiKey) }, { verifiedNumbers: ['15555550100'] }));
    try {
      // act
      const error = await telesign.sendMessage!(secretAt(trial.baseUrl), MESSAGE, context).catch((caught: unknown) => caught);
      const allowed = await telesign.sendMessage!(secretAt(trial.baseUrl), { ...MESSAGE, to: '+15555550100' }, context);
      // assess
      assert.ok(error instanceof MessageRefusedError, String(error));
      assert.deepEqual([...error.codes].sort(), [-10033, 500]);
      assertNoContent(error);
      assert.match(allowed.referenceId, /^[0-9A-F]{32}$/);
    } finally {
      await trial.stop();
    }
  });
});
