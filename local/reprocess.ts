import { DeleteItemCommand, GetItemCommand, QueryCommand, type QueryCommandOutput } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { TABLE, keys } from '../functions/core/pipeline-definition.ts';
import { quarantinedMessageText } from '../functions/core/stored-bytes.ts';
import { QueueMessageSchema, requestOf, type QueueMessage } from '../functions/core/queue-message.ts';
import { findProvider, providers } from '../functions/providers/index.ts';
import { parseCli } from './cli-args.ts';
import { resolveTarget, TARGET_OPTIONS } from './aws-target.ts';

const USAGE = `usage: npm run reprocess -- [--provider P] [--dry-run]
       npm run reprocess -- --table NAME --queue-url URL --region R [--provider P] [--dry-run]

  Re-runs quarantined callbacks through the worker after a schema fix: each one the current code now
  parses is put back on the main queue exactly as it was received (the worker re-parses the raw
  body), and its quarantine item is removed once the queue accepted it. Ones that still do not parse
  stay quarantined and are listed with the reason.`;

const { values } = parseCli({ ...TARGET_OPTIONS, provider: { type: 'string' }, 'dry-run': { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } }, USAGE);
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const wanted = values.provider ? [findProvider(values.provider)] : providers;
if (wanted.some((provider) => !provider)) {
  console.error(`unknown provider "${values.provider}"; known: ${providers.map((p) => p.id).join(', ')}`);
  process.exit(2);
}
const target = resolveTarget(values);
if (!target.tableName || !target.queueUrl) {
  console.error('--table and --queue-url are required for a deployed stack (stack outputs TableName and QueueUrl)');
  process.exit(2);
}

/** The message as the worker should see it now: no quarantine flag, no stale parse, raw bytes as received. */
function forReprocessing(message: QueueMessage): QueueMessage {
  const { quarantine: _quarantine, payload: _payload, ...rest } = message;
  return rest;
}

let requeued = 0;
let still = 0;
try {
  for (const provider of wanted.filter((p) => p !== undefined)) {
    let start: QueryCommandOutput['LastEvaluatedKey'];
    do {
      // The provider's quarantine partition holds the whole items (the index only what lists need).
      const page = await target.dynamo.send(
        new QueryCommand({
          TableName: target.tableName,
          KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :q)',
          ExpressionAttributeNames: { '#pk': TABLE.partitionKey, '#sk': TABLE.sortKey },
          ExpressionAttributeValues: { ':pk': { S: keys.quarantinePartition(provider.id) }, ':q': { S: 'QUARANTINE#' } },
          ExclusiveStartKey: start,
        }),
      );
      start = page.LastEvaluatedKey;
      for (const item of (page.Items ?? []).map((raw) => unmarshall(raw))) {
        const text = await quarantinedMessageText(item, async (key) => {
          const chunk = await target.dynamo.send(new GetItemCommand({ TableName: target.tableName, Key: marshall(key) }));
          return chunk.Item ? unmarshall(chunk.Item) : undefined;
        });
        const message = QueueMessageSchema.parse(JSON.parse(text));
        const again = provider.parse(requestOf(message));
        const label = `${message.receivedAt}  ${provider.id.padEnd(10)} request ${message.requestId}`;
        if (!again.ok) {
          still++;
          console.log(`  still invalid  ${label}: ${again.reason}${again.issues.length ? ` (${again.issues.slice(0, 3).join('; ')})` : ''}`);
          continue;
        }
        if (values['dry-run']) {
          requeued++;
          console.log(`  would requeue  ${label}`);
          continue;
        }
        await target.sqs.send(new SendMessageCommand({ QueueUrl: target.queueUrl, MessageBody: JSON.stringify(forReprocessing(message)) }));
        await target.dynamo.send(
          new DeleteItemCommand({ TableName: target.tableName, Key: { pk: { S: String(item.pk) }, sk: { S: String(item.sk) } } }),
        );
        for (let n = 0; n < Number(item.messageGzipChunks ?? 0); n++) {
          await target.dynamo.send(new DeleteItemCommand({ TableName: target.tableName, Key: marshall({ pk: item.pk, sk: `CHUNK#${String(item.sk)}#${n}` }) }));
        }
        requeued++;
        console.log(`  requeued       ${label}`);
      }
    } while (start);
  }
  console.log(
    values['dry-run']
      ? `dry run: ${requeued} would be requeued, ${still} still invalid`
      : `${requeued} requeued for the worker, ${still} still invalid (left quarantined)`,
  );
} catch (error) {
  console.error(`reprocess failed: ${(error as Error).message}`);
  process.exitCode = 1;
} finally {
  target.close();
}
