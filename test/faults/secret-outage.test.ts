import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { boundedSecretsClient, secretsManagerSource } from '../../functions/adapters/secrets-manager.ts';
import { createSecretCache } from '../../functions/core/secrets.ts';
import { createIngestHandler } from '../../functions/handlers/ingest.ts';
import { getProvider } from '../../functions/providers/index.ts';
import { LOCAL_AWS } from '../../local/engines.ts';
import { apiGatewayEvent } from '../support/unit-ingest.ts';

/**
 * Secrets Manager accepts the connection and never answers (a blackhole), through the real client and
 * the real ingest handler: the provider must get the README's 503 `secret_unavailable` (and retry)
 * well within the ingest function's 10 s timeout, after which API Gateway would answer its own 500.
 */

const INGEST_TIMEOUT_MS = 10_000;
const sockets: Socket[] = [];
const blackhole = createServer((socket) => void sockets.push(socket));
let endpoint = '';

before(async () => {
  await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(blackhole.address() as { port: number }).port}`;
});
after(() => {
  for (const socket of sockets) socket.destroy();
  blackhole.close();
});

describe('fault: Secrets Manager stalls', () => {
  test('ingest answers 503 secret_unavailable within its bound, and nothing is queued', async () => {
    // prepare
    process.env.TELESIGN_SECRET_ID = 'arn:aws:secretsmanager:us-east-1:000000000000:secret:telesign';
    const client = boundedSecretsClient({ ...LOCAL_AWS, endpoint });
    const sent: string[] = [];
    const handler = createIngestHandler(getProvider('telesign'), {
      secrets: createSecretCache(secretsManagerSource(client)),
      send: async (body) => void sent.push(body),
      log: { debug() {}, info() {}, warn() {}, error() {} },
    });
    // act
    const answer = await Promise.race([
      handler(apiGatewayEvent({ method: 'POST', rawPath: '/callbacks/telesign', headers: { authorization: 'TSA x:y' }, body: '{}' })),
      new Promise<'timed out'>((resolve) => setTimeout(() => resolve('timed out'), INGEST_TIMEOUT_MS).unref()),
    ]);
    client.destroy();
    // assess
    assert.notEqual(answer, 'timed out', 'the function would have timed out: API Gateway answers its own 500');
    assert.equal(typeof answer === 'object' && answer.statusCode, 503);
    assert.equal(JSON.parse(String(typeof answer === 'object' && answer.body)).error, 'secret_unavailable');
    assert.deepEqual(sent, []);
  });
});
