import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { keys } from '../functions/core/pipeline-definition.ts';
import { findProvider } from '../functions/providers/index.ts';
import type { CallbackRequest } from '../functions/providers/provider.ts';
import { LOCAL_AWS } from '../local/engines.ts';
import { matchRoute } from './callbacks.ts';

/**
 * The alternative design, for comparison only (bench section 4): a synchronous receiver for a
 * provider whose status endpoint the worker asks, doing all the work before it answers — the
 * pattern such providers' docs describe: take the callback, confirm it with the status endpoint,
 * update your records, then return 200. Same authentication, schema and confirmation code as the
 * gateway (the provider's module); no queue.
 * Env: PROVIDER (its id), PROVIDER_SECRET (the secret's JSON), DYNAMODB_ENDPOINT, TABLE_NAME, PORT (0 = any).
 */
const provider = findProvider(process.env.PROVIDER ?? '');
if (!provider?.lookup) throw new Error(`PROVIDER must name a provider whose status endpoint can be asked, got "${process.env.PROVIDER}"`);
const lookup = provider.lookup.bind(provider);
const secret = provider.secretSchema.parse(JSON.parse(process.env.PROVIDER_SECRET ?? '{}'));
const dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: process.env.DYNAMODB_ENDPOINT });
const tableName = process.env.TABLE_NAME ?? 'bench-sync';
const tokenParameter = provider.route.tokenParameter;

const server = createServer(async (incoming, response) => {
  const answer = (status: number, body: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  };
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of incoming) chunks.push(chunk as Buffer);
    const [path, rawQuery = ''] = (incoming.url ?? '').split('?');
    const parameters = matchRoute(provider, path);
    if (!parameters || incoming.method !== provider.route.method) return answer(404, { error: 'not_found' });
    const request: CallbackRequest = {
      method: provider.route.method,
      headers: incoming.headers as Record<string, string>,
      body: Buffer.concat(chunks),
      rawQuery,
      ...(tokenParameter && parameters[tokenParameter] !== undefined ? { pathToken: decodeURIComponent(parameters[tokenParameter]) } : {}),
      pathParameters: parameters,
      sourceIp: incoming.socket.remoteAddress ?? '',
      requestId: randomUUID(),
      receivedAt: new Date().toISOString(),
    };
    if (!provider.authenticate(request, secret).ok) return answer(401, { error: 'unauthorized' });
    const parsed = provider.parse(request);
    if (!parsed.ok) return answer(400, { error: 'invalid_payload', message: parsed.reason });
    const { subjectId } = provider.describe(parsed.payload, secret);
    // Before answering: ask the provider, then write the verdict.
    const status = await lookup({ subjectId }, secret, { fetch, timeoutMs: 5000, newRequestId: randomUUID });
    const believed = status.kind === 'not_found' ? undefined : status.payload;
    const confirmation = !believed ? 'not_found' : provider.differences?.(parsed.payload, believed).length ? 'mismatch' : 'confirmed';
    const item = {
      ...keys.state(provider.id, subjectId),
      status: believed === undefined ? 'NOT_FOUND' : provider.describe(believed, secret).status,
      confirmation,
      payload: parsed.payload,
      updatedAt: request.receivedAt,
    };
    await dynamo.send(new PutItemCommand({ TableName: tableName, Item: marshall(item, { removeUndefinedValues: true }) }));
    answer(200, { received: true });
  } catch (error) {
    answer(503, { error: 'unavailable', message: (error as Error).message });
  }
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
  dynamo.destroy();
});
