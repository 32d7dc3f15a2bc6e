import { DeleteItemCommand, GetItemCommand, QueryCommand, type QueryCommandOutput } from '@aws-sdk/client-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { TABLE, keys } from '../functions/core/pipeline-definition.ts';
import { quarantinedMessageText } from '../functions/core/stored-bytes.ts';
import { QueueMessageSchema, queueText, requestOf, requeuedFromQuarantine, type QueueMessage } from '../functions/core/queue-message.ts';
import { createSecretCache, type SecretSource } from '../functions/core/secrets.ts';
import { describedCallback } from '../functions/core/worker.ts';
import { describeIssues, issuesBeyondReason } from '../functions/providers/common.ts';
import { findProvider, providers } from '../functions/providers/index.ts';
import type { AnyProvider } from '../functions/providers/provider.ts';
import { errorMessage } from '../functions/shared/errors.ts';
import { printable } from '../functions/shared/log.ts';
import { pascal } from '../lib/names.ts';
import { checkArguments, parseCli, USAGE_EXIT_CODE } from './cli-args.ts';
import { printJson, say } from './cli-output.ts';
import { resolveTarget, targetOptions } from './aws-target.ts';
import { fileSecretSource } from './secrets-file.ts';

/** The providers whose secret holds settings that change how a callback reads (what the worker reads it with). */
const SECRET_READERS = providers.filter((provider) => provider.describeReadsSecret === true);

const USAGE = `usage: npm run reprocess -- [--provider P] [--dry-run] [--json]
       npm run reprocess -- --table NAME --queue-url URL --region R [--secret P=NAME]... [--provider P] [--dry-run] [--json]

  Re-runs quarantined callbacks through the worker after a schema fix: each one the current code now
  reads as the worker does is put back on the main queue exactly as it was received (the worker
  re-parses the raw body), and its quarantine item is removed once the queue accepted it. Ones it
  still cannot read or store stay quarantined and are listed with the reason.
  Like the worker, it reads a callback with the provider's secret where that holds settings that
  change the reading (a Standard Webhooks source's subjectField, REL-ID's action labels): locally
  from the pipeline's secrets file, on AWS from the secret --secret names. Without it (not given, or
  not readable) it reads without those settings, and the output says so: the worker, which reads
  the secret, quarantines again (as a new item, never lost) one it still cannot store.

  --provider P     only this provider's quarantined callbacks
                   (${providers.map((provider) => provider.id).join(', ')})
  --dry-run        say what would be requeued, requeue nothing
  --json           print one JSON document on stdout: {target, dryRun, requeued, stillInvalid,
                   withoutSecret: [{provider, reason}], items: [{provider, requestId, receivedAt,
                   action, reason?, issues?}]}
  --table NAME     a deployed stack's table (its output TableName), with --queue-url (its output
                   QueueUrl) and --region R
  --secret P=NAME  on AWS, repeatable: provider P's secret, its stack output <P>SecretName
                   (${SECRET_READERS.map((provider) => `${provider.id}=<${pascal(provider.id)}SecretName>`).join(', ')});
                   reading it needs secretsmanager:GetSecretValue on it. Nothing of it is printed.
  --data-dir DIR   locally: the pipeline's data folder (default: .local-data)`;

const { values, positionals } = parseCli(
  {
    ...targetOptions('table', 'queue-url'),
    provider: { type: 'string' },
    secret: { type: 'string', multiple: true },
    'dry-run': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
  USAGE,
);
// A word is not a flag (`npm run reprocess telesign` meant --provider): refused, not every provider's.
checkArguments(positionals, USAGE, []);
const wanted = values.provider ? [findProvider(values.provider)] : providers;
if (wanted.some((provider) => !provider)) {
  console.error(`unknown provider "${values.provider}"; known: ${providers.map((p) => p.id).join(', ')}`);
  process.exit(2);
}
/** `--secret P=NAME`: the secret's name (or ARN) by provider id; a provider whose callbacks read the same without it is refused. */
const secretNames = new Map<string, string>();
for (const flag of values.secret ?? []) {
  const [id, name] = [flag.slice(0, flag.indexOf('=')), flag.slice(flag.indexOf('=') + 1)];
  const problem = !flag.includes('=') || !name
    ? `--secret takes P=NAME (the stack output <P>SecretName), got "${flag}"`
    : !SECRET_READERS.some((provider) => provider.id === id)
      ? `--secret ${id}: only the secrets of ${SECRET_READERS.map((provider) => provider.id).join(', ')} change how a callback reads`
      : undefined;
  if (problem) {
    console.error(`${problem}\n\n${USAGE}`);
    process.exit(USAGE_EXIT_CODE);
  }
  secretNames.set(id, name);
}
if (secretNames.size > 0 && !values.table && !values['queue-url']) {
  console.error(`--secret is for a deployed stack: locally the pipeline's own secrets file is read\n\n${USAGE}`);
  process.exit(USAGE_EXIT_CODE);
}
// Refused before the target is looked for: without credentials, it would be said only once they were set.
if (Boolean(values.table) !== Boolean(values['queue-url'])) {
  console.error('--table and --queue-url are required for a deployed stack (stack outputs TableName and QueueUrl)');
  process.exit(2);
}
const target = await resolveTarget(values, '--table NAME --queue-url URL --region R');
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
  /** Providers whose callbacks were checked without the secret the worker reads them with, and why. */
  readonly withoutSecret: { provider: string; reason: string }[];
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
const report: ReprocessReport = { target: target.kind, dryRun: values['dry-run'], requeued: 0, stillInvalid: 0, withoutSecret: [], items: [] };
/**
 * The answer, on stdout: the text lines, or (with --json) the one JSON document at the end. A line
 * holds a sender's text (a reason names a member the body gave twice), so its control and bidi
 * characters are shown as `\u` escapes, as inspect shows them, never written raw to the terminal.
 */
const out = (line: string) => {
  if (!values.json) console.log(printable(line));
};

/**
 * The queue message a quarantine item keeps, or why it cannot be read (an item written or edited by
 * hand: no message, not JSON, not a queue message). One such item is listed as still invalid and
 * left as it is; it no longer ends the run before the others are looked at.
 */
async function storedMessage(item: Record<string, unknown>): Promise<{ message: QueueMessage } | { unreadable: string }> {
  // The table failing to answer is not the item's fault: that is thrown, and still ends the run.
  const stored = await quarantinedMessageText(item, async (key) => {
    const chunk = await target.dynamo.send(new GetItemCommand({ TableName: target.tableName, Key: marshall(key) }));
    return chunk.Item ? unmarshall(chunk.Item) : undefined;
  });
  if (!('text' in stored)) return stored;
  let json: unknown;
  try {
    json = JSON.parse(stored.text);
  } catch {
    // JSON.parse's own message quotes the text around the fault, which may be a phone number or a code.
    return { unreadable: 'it is not JSON' };
  }
  const parsed = QueueMessageSchema.safeParse(json);
  return parsed.success ? { message: parsed.data } : { unreadable: `not a queued callback (${describeIssues(parsed.error).slice(0, 3).join('; ')})` };
}

const secretsManager = target.kind === 'aws' && secretNames.size > 0 ? new SecretsManagerClient(values.region ? { region: values.region } : {}) : undefined;
/** Each secret as the worker reads it (validated against the provider's schema); the errors name fields, never values. */
const secretSource: SecretSource = async (provider) => {
  if (target.kind === 'local') {
    if (target.secretsFile === undefined) throw new Error('the running pipeline names no secrets file (restart it with npm start)');
    return fileSecretSource(target.secretsFile)(provider);
  }
  const secretId = secretNames.get(provider.id)!;
  const { SecretString } = await secretsManager!.send(new GetSecretValueCommand({ SecretId: secretId }));
  if (SecretString === undefined) throw new Error(`secret ${secretId} has no string value`);
  return SecretString;
};
const secretCache = createSecretCache(secretSource);
const secretsRead = new Map<string, { readonly secret: unknown } | { readonly unread: string }>();

/** The secret a provider's callbacks are read with: read once; when it cannot be, why (said once, and in the report). */
async function secretFor(provider: AnyProvider): Promise<unknown> {
  if (provider.describeReadsSecret !== true) return undefined;
  let read = secretsRead.get(provider.id);
  if (read === undefined) {
    read =
      target.kind === 'aws' && !secretNames.has(provider.id)
        ? { unread: `no --secret ${provider.id}=<${pascal(provider.id)}SecretName> given` }
        : await secretCache.get(provider).then((secret) => ({ secret }), (error: unknown) => ({ unread: errorMessage(error) }));
    secretsRead.set(provider.id, read);
    if ('unread' in read) {
      report.withoutSecret.push({ provider: provider.id, reason: read.unread });
      say(`note: ${provider.id}: checked without its secret (${read.unread}); the worker reads it, and quarantines again one it still cannot store`);
    }
  }
  return 'secret' in read ? read.secret : undefined;
}

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
        const stored = await storedMessage(item);
        if ('unreadable' in stored) {
          const ids = { provider: provider.id, requestId: typeof item.requestId === 'string' ? item.requestId : '?', receivedAt: typeof item.receivedAt === 'string' ? item.receivedAt : '?' };
          const reason = `its stored message cannot be read: ${stored.unreadable}`;
          report.stillInvalid++;
          report.items.push({ ...ids, action: 'still-invalid', reason });
          out(`  still invalid  ${ids.receivedAt}  ${provider.id.padEnd(ID_WIDTH)} request ${ids.requestId} (${String(item.sk)}): ${reason}`);
          continue;
        }
        const { message } = stored;
        // As the worker reads it: parsed, then described with the secret's settings, its keys storable.
        const parsed = provider.parse(requestOf(message));
        const again = parsed.ok ? describedCallback(provider, parsed.payload, await secretFor(provider)) : parsed;
        const label = `${message.receivedAt}  ${provider.id.padEnd(ID_WIDTH)} request ${message.requestId}`;
        const ids = { provider: provider.id, requestId: message.requestId, receivedAt: message.receivedAt };
        if (!again.ok) {
          report.stillInvalid++;
          report.items.push({ ...ids, action: 'still-invalid', reason: again.reason, issues: again.issues });
          // A schema's reason already holds its first issue: each is said once.
          const more = issuesBeyondReason(again.reason, again.issues).slice(0, 3);
          out(`  still invalid  ${label}: ${again.reason}${more.length ? ` (${more.join('; ')})` : ''}`);
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
  const unchecked = report.withoutSecret.length
    ? `; checked without the secret of ${report.withoutSecret.map((each) => each.provider).join(', ')}: the worker checks with it and quarantines again what it still cannot store`
    : '';
  out(
    values['dry-run']
      ? `dry run: ${report.requeued} would be requeued, ${report.stillInvalid} still invalid${unchecked}`
      : `${report.requeued} requeued for the worker, ${report.stillInvalid} still invalid (left quarantined)${unchecked}`,
  );
} catch (error) {
  report.error = `reprocess failed: ${(error as Error).message}`;
  say(report.error);
  process.exitCode = 1;
} finally {
  target.close();
  secretsManager?.destroy();
}
if (values.json) printJson(report);
