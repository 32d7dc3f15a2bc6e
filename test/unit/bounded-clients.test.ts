import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { boundedDynamoClient, createDynamoStore, DYNAMO_BOUNDS } from '../../functions/adapters/dynamo-store.ts';
import { DependencyError } from '../../functions/shared/errors.ts';

/**
 * A DynamoDB endpoint whose connections are accepted and never answered: a stalled connection,
 * which the SDK's own client waits on without end.
 */
let server: Server;
let endpoint: string;
const sockets = new Set<Socket>();
let requests = 0;
/** Waiters for the server to have read a number of requests. */
const waiters: { count: number; resolve: () => void }[] = [];
/**
 * Resolves once the server has read `count` requests in all. It reads on turns of the event loop of
 * its own: on a busy machine an attempt's timeout can fire, and the call fail, before the server's
 * turn to read the attempt's request comes.
 */
const requestsRead = (count: number) =>
  new Promise<void>((resolve) => {
    if (requests >= count) resolve();
    else waiters.push({ count, resolve });
  });

before(async () => {
  server = createServer((socket) => {
    sockets.add(socket);
    socket.on('data', (chunk) => {
      if (!chunk.toString('latin1').startsWith('POST ')) return;
      requests++;
      for (const waiter of waiters.filter((each) => requests >= each.count)) waiter.resolve();
    });
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  endpoint = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

after(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('the functions\' DynamoDB client against a stalled connection', () => {
  test('each attempt is abandoned at its timeout and the call fails as a dependency fault, not held until the function times out', { timeout: 30_000 }, async (t) => {
    // prepare: the bounds the functions use, with shorter timeouts so the test is quick
    const client = boundedDynamoClient(
      { endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } },
      { ...DYNAMO_BOUNDS, requestTimeoutMs: 300 },
    );
    t.after(() => client.destroy());
    const store = createDynamoStore(client, 'callbacks');
    const before = requests;
    // act
    const read = store.getState('temboplus', 'STALLED-1', undefined);
    // assess
    await assert.rejects(read, (error: unknown) => error instanceof DependencyError && /GetItem failed/.test(error.message));
    // Each attempt reaches the server (fewer leave this waiting until the test's timeout), no more.
    await requestsRead(before + DYNAMO_BOUNDS.maxAttempts);
    assert.equal(requests - before, DYNAMO_BOUNDS.maxAttempts, 'each attempt sent, then given up on and retried');
  });

  test('the functions\' bounds: under the worker\'s 30 s timeout even when every attempt stalls', () => {
    // assess
    const worst = DYNAMO_BOUNDS.maxAttempts * (DYNAMO_BOUNDS.connectionTimeoutMs + DYNAMO_BOUNDS.requestTimeoutMs);
    assert.ok(worst < 30_000, `${worst} ms`);
  });
});
