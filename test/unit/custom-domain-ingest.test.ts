import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { createSecretCache } from '../../functions/core/secrets.ts';
import { createIngestHandler } from '../../functions/handlers/ingest.ts';
import { providers } from '../../functions/providers/index.ts';
import type { AnyProvider } from '../../functions/providers/provider.ts';
import { createLogger } from '../../functions/shared/log.ts';
import { authenticRequest, listSamples } from '../../local/samples.ts';
import { altered, contentOf, UNIT_SECRETS } from '../support/unit-ingest.ts';

/**
 * A callback arriving on the stack's custom domain (`domainName`, mapped at the root of the API's
 * $default stage) is taken exactly as one on the API's own URL. The event is shaped as API Gateway
 * delivers payload 2.0 (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html):
 * the route key and the path parameters are the route's; `rawPath` never carries an API mapping's
 * path (and a root mapping has none); `requestContext.domainName` and the Host header are the
 * custom domain, `domainPrefix` its first label. Nothing the providers authenticate (a signature
 * over the body, a header key, a path token, the caller's address) depends on the host.
 */

const CUSTOM = 'callbacks.example.com';
const EXECUTE_API = 'a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com';
const RECEIVED = new Date('2025-01-01T10:00:00.000Z');

/** The payload 2.0 event API Gateway hands the ingest function for a request sent to `host`. */
function eventOn(host: string, provider: AnyProvider, sent: ReturnType<typeof authenticRequest>): APIGatewayProxyEventV2 {
  const [rawPath, rawQueryString = ''] = sent.path.split('?');
  const segments = rawPath.split('/');
  const pathParameters: Record<string, string> = {};
  provider.route.path.split('/').forEach((part, index) => {
    const name = /^\{(\w+)\}$/.exec(part)?.[1];
    if (name) pathParameters[name] = decodeURIComponent(segments[index]);
  });
  const routeKey = `${provider.route.method} ${provider.route.path}`;
  const headers: Record<string, string> = { host: host, 'x-forwarded-for': '203.0.113.10', 'x-forwarded-proto': 'https', 'x-forwarded-port': '443' };
  for (const [name, value] of Object.entries(sent.headers)) headers[name.toLowerCase()] = value;
  const body = sent.body ?? Buffer.alloc(0);
  return {
    version: '2.0',
    routeKey,
    rawPath,
    rawQueryString,
    headers,
    ...(Object.keys(pathParameters).length ? { pathParameters } : {}),
    requestContext: {
      accountId: '123456789012',
      apiId: 'a1b2c3d4e5',
      domainName: host,
      domainPrefix: host.split('.')[0],
      http: { method: sent.method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '203.0.113.10', userAgent: 'provider' },
      requestId: 'request-1',
      routeKey,
      stage: '$default',
      time: '01/Jan/2025:10:00:00 +0000',
      timeEpoch: RECEIVED.getTime(),
    },
    ...(body.length ? { body: body.toString('base64'), isBase64Encoded: true } : { isBase64Encoded: false }),
  };
}

/** The secret with each of its text values changed, at any depth (a Standard Webhooks source's key too). */
function everyValueAltered(secret: Record<string, unknown>): Record<string, unknown> {
  const alter = (value: unknown): unknown =>
    typeof value === 'string' ? altered(value) : value && typeof value === 'object' ? Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, alter(inner)])) : value;
  return alter(secret) as Record<string, unknown>;
}

async function ingestOn(host: string, provider: AnyProvider, sent: ReturnType<typeof authenticRequest>) {
  const queued: string[] = [];
  const handler = createIngestHandler(provider, {
    secrets: createSecretCache(async () => JSON.stringify(UNIT_SECRETS[provider.id])),
    send: async (message) => void queued.push(message),
    log: createLogger({ service: 'unit', write: () => undefined }),
  });
  const result = await handler(eventOn(host, provider, sent));
  return { statusCode: result.statusCode, queued };
}

describe('a callback through the custom domain', () => {
  for (const provider of providers) {
    test(`${provider.id}: taken and queued exactly as on the API's own URL; a forged one refused`, async () => {
      // prepare
      const [sample] = listSamples(provider.id);
      const sent = authenticRequest(provider, UNIT_SECRETS[provider.id], contentOf(sample), RECEIVED);

      // act
      const custom = await ingestOn(CUSTOM, provider, sent);
      const own = await ingestOn(EXECUTE_API, provider, sent);

      // assess
      assert.equal(custom.statusCode, 200);
      assert.equal(custom.queued.length, 1);
      assert.deepEqual(JSON.parse(custom.queued[0]), JSON.parse(own.queued[0]));

      // The same request signed or keyed with another secret is refused on the custom domain too.
      const forged = await ingestOn(CUSTOM, provider, authenticRequest(provider, everyValueAltered(UNIT_SECRETS[provider.id]), contentOf(sample), RECEIVED));
      assert.equal(forged.statusCode, 401);
      assert.deepEqual(forged.queued, []);
    });
  }
});
