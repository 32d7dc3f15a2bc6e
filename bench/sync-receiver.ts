import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { CallbackRequest } from '../functions/providers/provider.ts';
import { temboplus } from '../functions/providers/temboplus.ts';
import { LOCAL_AWS } from '../local/engines.ts';

/**
 * The alternative design, for comparison only (bench section 4): a synchronous TemboPlus receiver
 * that does all the work before it answers, the pattern TemboPlus's own docs describe — take the
 * callback, confirm it with the Transaction Status endpoint, update your records, then return 200.
 * Same authentication, schema and confirmation code as the gateway; no queue.
 * Env: DYNAMODB_ENDPOINT, TABLE_NAME, TEMBOPLUS_SECRET (the secret's JSON), PORT (0 = any).
 */
const secret = temboplus.secretSchema.parse(JSON.parse(process.env.TEMBOPLUS_SECRET ?? '{}'));
const dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: process.env.DYNAMODB_ENDPOINT });
const tableName = process.env.TABLE_NAME ?? 'bench-sync';
const ROUTE = /^\/callbacks\/temboplus\/([^/?]+)$/;

const server = createServer(async (incoming, response) => {
  const answer = (status: number, body: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  };
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of incoming) chunks.push(chunk as Buffer);
    const route = ROUTE.exec(incoming.url ?? '');
    if (!route || incoming.method !== 'POST') return answer(404, { error: 'not_found' });
    const request: CallbackRequest = {
      method: 'POST',
      headers: incoming.headers as Record<string, string>,
      body: Buffer.concat(chunks),
      rawQuery: '',
      pathToken: decodeURIComponent(route[1]),
      sourceIp: incoming.socket.remoteAddress ?? '',
      requestId: randomUUID(),
      receivedAt: new Date().toISOString(),
    };
    if (!temboplus.authenticate(request, secret).ok) return answer(401, { error: 'unauthorized' });
    const parsed = temboplus.parse(request);
    if (!parsed.ok) return answer(400, { error: 'invalid_payload', message: parsed.reason });
    // Before answering: ask TemboPlus, then write the verdict.
    const status = await temboplus.lookup!(parsed.payload.partnerReference, secret, { fetch, timeoutMs: 5000, newRequestId: randomUUID });
    const believed = status.kind === 'not_found' ? undefined : status.payload;
    const confirmation = !believed ? 'not_found' : temboplus.differences!(parsed.payload, believed).length ? 'mismatch' : 'confirmed';
    const item = { pk: `temboplus#${parsed.payload.partnerReference}`, sk: 'STATE', status: believed?.status ?? 'NOT_FOUND', confirmation, payload: parsed.payload, updatedAt: request.receivedAt };
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
