import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { createSecretCache } from '../../functions/core/secrets.ts';
import { createIngestHandler } from '../../functions/handlers/ingest.ts';
import { providers } from '../../functions/providers/index.ts';
import { startHttpApi } from '../../local/http-api.ts';
import { capturedLogger, fuzzConfig, fuzzSecrets, pathTokenOf, recordingQueue, replayHint } from '../support/fuzz-harness.ts';
import { suiteResource } from '../support/suite-resource.ts';

/**
 * Wrong methods over real HTTP, through the local HTTP API, which answers as API Gateway does when
 * no route matches (404 {"message":"Not Found"}) before any function runs. The ingest core's own
 * answer is covered by the hostile-input suite; this is the layer in front of it.
 */

const config = fuzzConfig();
// No status endpoint: the function must not even run.
const secrets = fuzzSecrets();
const queue = recordingQueue();
let handlerCalls = 0;
let api: Awaited<ReturnType<typeof startHttpApi>>;

suiteResource(
  async () => {
    const secretCache = createSecretCache(async (provider) => JSON.stringify(secrets[provider.id]));
    const routes = providers.map((provider) => {
      const handler = createIngestHandler(provider, { secrets: secretCache, send: queue.send, log: capturedLogger() });
      return { provider, handler: (event: Parameters<typeof handler>[0]) => ((handlerCalls += 1), handler(event)) };
    });
    api = await startHttpApi(routes, 0);
  },
  async () => {
    await api?.stop();
  },
);

/** One request with node:http (fetch refuses CONNECT and TRACE). */
function send(method: string, path: string, body: Buffer, contentType?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, api.url);
    const req = httpRequest(
      { host: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, method, headers: { ...(contentType ? { 'content-type': contentType } : {}), 'content-length': body.length, connection: 'close' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Methods Node's HTTP parser lets through to the server (an unknown token is refused with 400 before any route). */
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND'];

describe(`wrong methods over HTTP (${replayHint(config)})`, () => {
  test('every provider route answers a wrong method 404 {"message":"Not Found"}, as API Gateway does, and never runs the function', async () => {
    // prepare
    const cases = fc.record({
      providerId: fc.constantFrom(...providers.map((provider) => provider.id)),
      method: fc.constantFrom(...METHODS),
      body: fc.uint8Array({ maxLength: 2_000 }).map((bytes) => Buffer.from(bytes)),
      contentType: fc.constantFrom(undefined, 'application/json', 'text/plain', 'application/octet-stream', 'multipart/form-data; boundary=x'),
      token: fc.boolean(),
    }).filter(({ providerId, method }) => method !== providers.find((provider) => provider.id === providerId)?.route.method);
    let sent = 0;

    // act + assess
    await fc.assert(
      fc.asyncProperty(cases, async ({ providerId, method, body, contentType, token }) => {
        const provider = providers.find((candidate) => candidate.id === providerId)!;
        const rightToken = pathTokenOf(provider, secrets[provider.id]);
        const path = provider.route.path.replace(/\{(\w+)\}/g, (_, name: string) => (name === provider.route.tokenParameter && token && rightToken ? rightToken : 'not-the-token'));
        const calls = handlerCalls;
        const response = await send(method, path, method === 'HEAD' || method === 'GET' ? Buffer.alloc(0) : body, contentType);
        sent += 1;
        assert.equal(response.status, 404, `${method} ${provider.route.path}: ${response.text}`);
        if (method !== 'HEAD') assert.deepEqual(JSON.parse(response.text), { message: 'Not Found' });
        assert.equal(handlerCalls, calls, 'the function did not run');
      }),
      { seed: config.seed, numRuns: Math.min(config.runs, 200) },
    );
    assert.ok(sent > 0);
    assert.equal(queue.bodies.length, 0, 'nothing queued');
  });

  test('a path with no route answers 404 {"message":"Not Found"} too, as API Gateway does', async () => {
    for (const path of ['/callbacks/nosuch', '/', '/callbacks/telesign/extra']) {
      // act
      const response = await send('POST', path, Buffer.from('{}'), 'application/json');
      // assess
      assert.equal(response.status, 404, path);
      assert.deepEqual(JSON.parse(response.text), { message: 'Not Found' }, path);
    }
    assert.equal(queue.bodies.length, 0, 'nothing queued');
  });

  test('a request target that is no URL (//[, a port past 65535) answers 404 {"message":"Not Found"}, never a 500 a sender would retry', async () => {
    for (const target of ['//[', '//:99999/callbacks/telesign', '//user@/callbacks/telesign']) {
      // act: node:http sends the target as it is (fetch and `send` would parse it first)
      const response = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const url = new URL(api.url);
        const req = httpRequest({ host: url.hostname, port: url.port, path: target, method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end('{}');
      });
      // assess
      assert.equal(response.status, 404, `${target}: ${response.text}`);
      assert.deepEqual(JSON.parse(response.text), { message: 'Not Found' }, target);
    }
    assert.equal(queue.bodies.length, 0, 'nothing queued');
  });
});
