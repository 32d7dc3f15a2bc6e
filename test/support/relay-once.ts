import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomUUID } from 'node:crypto';
import { postOnceContext } from '../../functions/adapters/post-once.ts';
import { createRelayStore } from '../../functions/adapters/relay-store.ts';
import { relayInstruction } from '../../functions/core/relay.ts';
import { createSecretCache } from '../../functions/core/secrets.ts';
import { getProvider } from '../../functions/providers/index.ts';
import { createLogger } from '../../functions/shared/log.ts';
import { LOCAL_AWS } from '../../local/engines.ts';

/**
 * One relay of one instruction in a process of its own, so a test can kill it (-9) mid-send, as a
 * Lambda that times out or dies is killed. Argument: JSON `{endpoint, tableName, secret, detail}`.
 * Prints "sending" once it starts, and the result when it ends (it is not meant to end).
 */
const { endpoint, tableName, secret, detail } = JSON.parse(process.argv[2]) as { endpoint: string; tableName: string; secret: unknown; detail: unknown };
const sender = getProvider('telesign');
process.stdout.write('sending\n');
const result = await relayInstruction(detail, {
  store: createRelayStore(new DynamoDBClient({ ...LOCAL_AWS, endpoint }), tableName),
  secrets: createSecretCache(async () => JSON.stringify(secret)),
  sender,
  // Waits for an answer far longer than the test lets it live.
  send: postOnceContext({ answerTimeoutMs: 600_000 }),
  now: () => new Date(),
  log: createLogger({ service: 'relay-child', write: () => undefined }),
  newAttempt: randomUUID,
  retentionDays: 90,
});
process.stdout.write(`${JSON.stringify(result)}\n`);
