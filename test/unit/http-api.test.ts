import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { createIngestHandler } from '../../functions/handlers/ingest.ts';
import { getProvider } from '../../functions/providers/index.ts';
import { openHttpApi, startHttpApi } from '../../local/http-api.ts';
import { authenticRequest, findSample } from '../../local/samples.ts';
import { createSecretCache } from '../../functions/core/secrets.ts';
import { createLogger } from '../../functions/shared/log.ts';
import { UNIT_SECRETS } from '../support/unit-ingest.ts';
import { QueueMessageSchema, rawBodyOf } from '../../functions/core/queue-message.ts';
import { suiteResource } from '../support/suite-resource.ts';

/**
 * The local HTTP API hands its functions the payload v2.0 event API Gateway would. API Gateway
 * combines a header sent more than once into one value, joined with commas ("Duplicate headers are
 * combined with commas and included in the headers field",
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html;
 * its example event: `"header2": "value1,value2"`).
 */

const telesign = getProvider('telesign');
const events: APIGatewayProxyEventV2[] = [];
const queued: string[] = [];
let api: Awaited<ReturnType<typeof startHttpApi>>;

suiteResource(
  async () => {
    const ingest = createIngestHandler(telesign, {
      secrets: createSecretCache(async () => JSON.stringify(UNIT_SECRETS.telesign)),
      send: async (body) => void queued.push(body),
      log: createLogger({ service: 'unit', write: () => undefined }),
    });
    api = await startHttpApi([{ provider: telesign, handler: (event) => (events.push(event), ingest(event)) }], 0);
  },
  async () => {
    await api?.stop();
  },
);

/** One request written byte for byte (node:http's client and fetch would merge or refuse repeated headers). */
function rawRequest(head: string[], body: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(api.url);
    const socket = connect(Number(port), hostname, () => {
      socket.write(`${[...head, `content-length: ${body.length}`, 'connection: close'].join('\r\n')}\r\n\r\n`);
      socket.end(body);
    });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => {
      const [top, rest = ''] = Buffer.concat(chunks).toString('utf8').split('\r\n\r\n');
      // A chunked answer: each chunk's text after its size line.
      const text = /transfer-encoding: chunked/i.test(top) ? rest.split('\r\n').filter((_, n) => n % 2 === 1).join('') : rest;
      resolve({ status: Number(top.split(' ')[1]), text });
    });
    socket.on('error', reject);
  });
}

describe('local HTTP API: headers as API Gateway hands them on', () => {
  test('a header sent twice reaches the function as one value joined with a comma, Authorization and User-Agent included', async () => {
    // prepare
    const sent = authenticRequest(telesign, UNIT_SECRETS.telesign, { body: findSample('telesign', 'sms-dlr-success').body });
    const signed = sent.headers.authorization;
    const before = queued.length;
    // act: the signed header first, a second one after it (a proxy adding its own)
    const response = await rawRequest(
      [`POST ${sent.path} HTTP/1.1`, 'host: localhost', 'content-type: application/json', `authorization: ${signed}`, 'authorization: Bearer proxy', 'user-agent: one', 'user-agent: two', 'x-extra: a', 'x-extra: b'],
      sent.body!,
    );
    // assess: what API Gateway would hand the function, and so what it answers on AWS
    const event = events.at(-1)!;
    assert.equal(event.headers.authorization, `${signed},Bearer proxy`);
    assert.equal(event.headers['user-agent'], 'one,two');
    assert.equal(event.headers['x-extra'], 'a,b');
    assert.equal(response.status, 401, response.text);
    assert.equal(queued.length, before, 'nothing queued');
  });

  test('a header sent once reaches the function as sent', async () => {
    // prepare
    const sent = authenticRequest(telesign, UNIT_SECRETS.telesign, { body: findSample('telesign', 'sms-dlr-success').body });
    const before = queued.length;
    // act
    const response = await rawRequest([`POST ${sent.path} HTTP/1.1`, 'host: localhost', 'content-type: application/json', `authorization: ${sent.headers.authorization}`], sent.body!);
    // assess
    assert.equal(events.at(-1)!.headers.authorization, sent.headers.authorization);
    assert.deepEqual(JSON.parse(response.text), { received: true });
    assert.equal(queued.length, before + 1);
  });
});

describe('local HTTP API: the body as API Gateway hands it on', () => {
  // HTTP API hands the body on as text (isBase64Encoded false) for text/*, application/json,
  // application/xml and application/javascript only; any other type, form encoding and `+json`
  // types included, arrives base64-encoded, its bytes exact (observed on AWS, as recorded by
  // https://github.com/ministackorg/ministack/pull/766; the AWS page says only "If the content type
  // of the request is binary, the body is base64-encoded").
  // A body that is not UTF-8: as text it would have reached the function altered.
  const latin1 = Buffer.concat([Buffer.from('{"reference_id":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]);

  for (const contentType of ['application/x-www-form-urlencoded', 'application/vnd.telesign+json', 'application/jsonl', 'application/octet-stream']) {
    test(`${contentType}: the function gets the exact bytes, base64-encoded; an authentic callback is kept, quarantined`, async () => {
      // prepare: signed over the exact bytes, as TeleSign signs
      const sent = authenticRequest(telesign, UNIT_SECRETS.telesign, { body: latin1 });
      const before = queued.length;
      // act
      const response = await rawRequest([`POST ${sent.path} HTTP/1.1`, 'host: localhost', `content-type: ${contentType}`, `authorization: ${sent.headers.authorization}`], latin1);
      // assess
      const event = events.at(-1)!;
      assert.equal(event.isBase64Encoded, true);
      assert.deepEqual(Buffer.from(event.body ?? '', 'base64'), latin1);
      assert.deepEqual(JSON.parse(response.text), { received: true, quarantined: true });
      assert.equal(queued.length, before + 1);
      assert.deepEqual(rawBodyOf(QueueMessageSchema.parse(JSON.parse(queued.at(-1)!))), latin1, 'the bytes received, as they came');
    });
  }

  for (const contentType of ['application/json', 'Application/JSON; charset=utf-8', 'text/plain', 'application/xml', 'application/javascript']) {
    test(`${contentType}: the function gets the body as text`, async () => {
      // prepare
      const sent = authenticRequest(telesign, UNIT_SECRETS.telesign, { body: findSample('telesign', 'sms-dlr-success').body });
      // act
      const response = await rawRequest([`POST ${sent.path} HTTP/1.1`, 'host: localhost', `content-type: ${contentType}`, `authorization: ${sent.headers.authorization}`], sent.body!);
      // assess
      const event = events.at(-1)!;
      assert.equal(event.isBase64Encoded, false);
      assert.equal(event.body, sent.body!.toString('utf8'));
      assert.deepEqual(JSON.parse(response.text), { received: true });
    });
  }
});

describe('local HTTP API: the path as API Gateway reads it', () => {
  // HTTP API decodes the path before it routes and hands on path parameters decoded (AWS's own
  // Lambda test tool: "The path and path parameters should be decoded",
  // https://github.com/aws/aws-lambda-dotnet/pull/1901; live captures, https://github.com/middleapi/standard-server/pull/93).
  // RFC 3986 §6.2.2.2: a percent escape of an unreserved character is that character.
  const percentEscaped = (text: string) => `%${text.charCodeAt(0).toString(16).toUpperCase()}${text.slice(1)}`;
  const esms = getProvider('esms');
  const token = String(UNIT_SECRETS.esms.token);
  const taken: string[] = [];
  let esmsApi: Awaited<ReturnType<typeof startHttpApi>>;
  before(async () => {
    const ingest = createIngestHandler(esms, {
      secrets: createSecretCache(async () => JSON.stringify(UNIT_SECRETS.esms)),
      send: async (body) => void taken.push(body),
      log: createLogger({ service: 'unit', write: () => undefined }),
    });
    esmsApi = await startHttpApi([{ provider: esms, handler: ingest }], 0);
  });
  after(async () => {
    await esmsApi?.stop();
  });

  test('a route token with an escaped character is the token: the callback is taken (was 401)', async () => {
    // prepare
    const before = taken.length;
    // act
    const response = await fetch(`${esmsApi.url}/callbacks/esms/${percentEscaped(token)}?${findSample('esms', undefined).query}`);
    // assess
    assert.equal(response.status, 200, await response.clone().text());
    assert.deepEqual(await response.json(), { received: true });
    assert.equal(taken.length, before + 1);
  });

  test('a route spelled with an escaped character is that route (was 404)', async () => {
    // prepare
    const sent = authenticRequest(telesign, UNIT_SECRETS.telesign, { body: findSample('telesign', 'sms-dlr-success').body });
    const before = queued.length;
    // act
    const response = await rawRequest(['POST /callbacks/%74elesign HTTP/1.1', 'host: localhost', 'content-type: application/json', `authorization: ${sent.headers.authorization}`], sent.body!);
    // assess
    assert.deepEqual(JSON.parse(response.text), { received: true });
    assert.equal(queued.length, before + 1);
  });

  test('a path that starts with // or /\\ is a path, not a host: no route, 404, nothing queued (was routed as the rest of it and taken)', async () => {
    // prepare: a callback signed as TeleSign signs it, sent to paths API Gateway has no route for
    const sent = authenticRequest(telesign, UNIT_SECRETS.telesign, { body: findSample('telesign', 'sms-dlr-success').body });
    const before = queued.length;
    // act
    const answers = await Promise.all(
      ['//x/callbacks/telesign', '/\\x/callbacks/telesign', '/callbacks\\telesign'].map((path) =>
        rawRequest([`POST ${path} HTTP/1.1`, 'host: localhost', 'content-type: application/json', `authorization: ${sent.headers.authorization}`], sent.body!),
      ),
    );
    // assess
    for (const answer of answers) {
      assert.equal(answer.status, 404, answer.text);
      assert.deepEqual(JSON.parse(answer.text), { message: 'Not Found' });
    }
    assert.equal(queued.length, before, 'nothing queued');
  });

  test('an escape that is no UTF-8, or a slash escaped inside a token, is not the token: a 4xx, nothing queued', async () => {
    // prepare
    const before = taken.length;
    const query = findSample('esms', undefined).query;
    // act
    const answers = await Promise.all(
      [`%FF${token.slice(1)}`, `${token.slice(0, 4)}%2F${token.slice(4)}`, `${token}%`].map((segment) => fetch(`${esmsApi.url}/callbacks/esms/${segment}?${query}`)),
    );
    // assess
    for (const answer of answers) {
      assert.ok(answer.status === 401 || answer.status === 404, `${answer.url}: ${answer.status}`);
      assert.equal(typeof ((await answer.json()) as { message?: unknown }).message, 'string');
    }
    assert.equal(taken.length, before);
  });
});

describe('local HTTP API: the port held from the start', () => {
  test('bound before its routes are served, it answers 503 with Retry-After (a sender retries), then serves them', async () => {
    // prepare
    const held = await openHttpApi(0);
    const queuedBefore = queued.length;
    const sent = authenticRequest(telesign, UNIT_SECRETS.telesign, { body: findSample('telesign', 'sms-dlr-success').body });
    const ingest = createIngestHandler(telesign, {
      secrets: createSecretCache(async () => JSON.stringify(UNIT_SECRETS.telesign)),
      send: async (body) => void queued.push(body),
      log: createLogger({ service: 'unit', write: () => undefined }),
    });
    const post = () => fetch(`${held.url}${sent.path}`, { method: 'POST', headers: sent.headers, body: sent.body });
    try {
      // act: a callback while the pipeline is still starting
      const early = await post();
      // assess: a retryable refusal naming why, nothing queued
      assert.equal(early.status, 503);
      assert.equal(early.headers.get('retry-after'), '1');
      assert.deepEqual(await early.json(), { error: 'starting', message: 'the local gateway is starting; retry shortly' });
      assert.equal(queued.length, queuedBefore);

      // act: the routes served on the same port
      held.serve([{ provider: telesign, handler: ingest }]);
      const later = await post();
      // assess
      assert.equal(later.status, 200, await later.clone().text());
      assert.deepEqual(await later.json(), { received: true });
      assert.equal(queued.length, queuedBefore + 1);
    } finally {
      await held.stop();
    }
  });
});
