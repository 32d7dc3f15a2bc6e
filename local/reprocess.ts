import { DeleteItemCommand, GetItemCommand, QueryCommand, type QueryCommandOutput } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { TABLE, keys } from '../functions/core/pipeline-definition.ts';
import { quarantinedMessageText } from '../functions/core/stored-bytes.ts';
import { QueueMessageSchema, queueText, requestOf, requeuedFromQuarantine } from '../functions/core/queue-message.ts';
import { findProvider, providers } from '../functions/providers/index.ts';
import { checkArguments, parseCli } from './cli-args.ts';
import { printJson, say } from './cli-output.ts';
import { resolveTarget, targetOptions } from './aws-target.ts';

const USAGE = `usage: npm run reprocess -- [--provider P] [--dry-run] [--json]
       npm run reprocess -- --table NAME --queue-url URL --region R [--provider P] [--dry-run] [--json]

  Re-runs quarantined callbacks through the worker after a schema fix: each one the current code now
  parses is put back on the main queue exactly as it was received (the worker re-parses the raw
  body), and its quarantine item is removed once the queue accepted it. Ones that still do not parse
  stay quarantined and are listed with the reason. The worker also checks what needs the provider's
  secret (a Standard Webhooks subjectField): one it still cannot store is quarantined again, as a
  new item, never lost.

  --provider P     only this provider's quarantined callbacks
                   (${providers.map((provider) => provider.id).join(', ')})
  --dry-run        say what would be requeued, requeue nothing
  --json           print one JSON document on stdout: {target, dryRun, requeued, stillInvalid, items:
                   [{provider, requestId, receivedAt, action, reason?, issues?}]}
  --table NAME     a deployed stack's table (its output TableName), with --queue-url (its output
                   QueueUrl) and --region R
  --data-dir DIR   locally: the pipeline's data folder (default: .local-data)`;

const { values, positionals } = parseCli(
  {
    ...targetOptions('table', 'queue-url'),
    provider: { type: 'string' },
    'dry-run': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
  USAGE,
);
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
// A word is not a flag (`npm run reprocess telesign` meant --provider): refused, not every provider's.
checkArguments(positionals, USAGE, []);
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

/** Lines are printed as items are read: the provider column is as wide as the longest id listed. */
const ID_WIDTH = Math.max(...wanted.map((provider) => provider?.id.length ?? 0));

/** What `--json` prints: the counts, and each quarantined callback looked at with what became of it. */
interface ReprocessReport {
  readonly target: 'local' | 'aws';
  readonly dryRun: boolean;
  requeued: number;
  stillInvalid: number;
  readonly items: {
    provider: string;
    requestId: string;
    receivedAt: string;
    action: 'requeued' | 'would-requeue' | 'still-invalid';
    /** Still invalid: why the current code refuses it. */
    reason?: string;
    issues?: readonly string[];
    /** Requeued: its id in the main queue. */
    messageId?: string;
  }[];
  error?: string;
}
const report: ReprocessReport = { target: target.kind, dryRun: values['dry-run'], requeued: 0, stillInvalid: 0, items: [] };
/** The answer, on stdout: the text lines, or (with --json) the one JSON document at the end. */
const out = (line: string) => {
  if (!values.json) console.log(line);
};

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
        const label = `${message.receivedAt}  ${provider.id.padEnd(ID_WIDTH)} request ${message.requestId}`;
        const ids = { provider: provider.id, requestId: message.requestId, receivedAt: message.receivedAt };
        if (!again.ok) {
          report.stillInvalid++;
          report.items.push({ ...ids, action: 'still-invalid', reason: again.reason, issues: again.issues });
          out(`  still invalid  ${label}: ${again.reason}${again.issues.length ? ` (${again.issues.slice(0, 3).join('; ')})` : ''}`);
          continue;
        }
        if (values['dry-run']) {
          report.requeued++;
          report.items.push({ ...ids, action: 'would-requeue' });
          out(`  would requeue  ${label}`);
          continue;
        }
        // Its TTL goes with it: quarantined again, the callback is kept no longer than it would have been.
        const expiresAt = typeof item[TABLE.ttlAttribute] === 'number' ? item[TABLE.ttlAttribute] : undefined;
        const requeued = requeuedFromQuarantine(message, String(item.sk), expiresAt);
        const sent = await target.sqs.send(new SendMessageCommand({ QueueUrl: target.queueUrl, MessageBody: queueText(requeued) }));
        await target.dynamo.send(
          new DeleteItemCommand({ TableName: target.tableName, Key: { pk: { S: String(item.pk) }, sk: { S: String(item.sk) } } }),
        );
        for (let n = 0; n < Number(item.messageGzipChunks ?? 0); n++) {
          await target.dynamo.send(new DeleteItemCommand({ TableName: target.tableName, Key: marshall({ pk: item.pk, sk: `CHUNK#${String(item.sk)}#${n}` }) }));
        }
        report.requeued++;
        report.items.push({ ...ids, action: 'requeued', ...(sent.MessageId ? { messageId: sent.MessageId } : {}) });
        out(`  requeued       ${label}`);
      }
    } while (start);
  }
  out(
    values['dry-run']
      ? `dry run: ${report.requeued} would be requeued, ${report.stillInvalid} still invalid`
      : `${report.requeued} requeued for the worker (one it still cannot store is quarantined again), ${report.stillInvalid} still invalid (left quarantined)`,
  );
} catch (error) {
  report.error = `reprocess failed: ${(error as Error).message}`;
  say(report.error);
  process.exitCode = 1;
} finally {
  target.close();
}
if (values.json) printJson(report);
