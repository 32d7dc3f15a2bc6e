import { DynamoDBClient, GetItemCommand, QueryCommand, type AttributeValue, type QueryCommandInput } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { TABLE, keys } from '../functions/core/pipeline-definition.ts';
import { quarantinedMessageText } from '../functions/core/stored-bytes.ts';
import { staleShard } from '../functions/core/reconcile.ts';
import { findProvider, providers } from '../functions/providers/index.ts';
import { checkArguments, COUNT_RANGE, dataDirFrom, intFlag, noPipelineHere, parseCli } from './cli-args.ts';
import { alignColumns, failed, printJson } from './cli-output.ts';
import { confirmationNote, shownItem, stateLines } from './inspect-view.ts';
import { LOCAL_AWS } from './engines.ts';
import { printable } from '../functions/shared/log.ts';
import { readRuntimeInfo } from './pipeline.ts';
import { regionConfig, requireCredentials, requireRegion } from './aws-target.ts';
import { relayedLine, relayedLink, relayLine, relayViews } from './relay-view.ts';

/**
 * The text view's lines, each with its control characters shown as `\u` escapes: a status, a
 * detail or a subject id can be a sender's own text, and written raw its escapes would reach the
 * terminal, or its line break start a line that reads as one of inspect's.
 */
function show(...lines: string[]): void {
  for (const line of lines) console.log(printable(line));
}

const USAGE = `usage: npm run inspect -- <provider> <subjectId> [--json]
       npm run inspect -- --recent N [--provider P] [--outcome pending|succeeded|failed|unknown|quarantined] [--json]
       npm run inspect -- --stale [--provider P] [--json]

  <subjectId> is the provider's id of the transaction; for eSMS, the SMSID the send API returned
  (each recipient's status is listed as a part of it).
  --stale lists subjects whose status was still not final (or not confirmed) when re-checks ran
  out: each needs a person to look at it with the provider.

  Reads the local pipeline's table by default; with --table NAME --region R it reads a deployed
  stack's table (credentials from the usual AWS chain).

  --recent N   the N newest (1 to 1000)
  --json       print one JSON document on stdout and nothing else ({state, parts, events, relays, relayed}, or {items});
               an item that may carry a live code or a contact (an Identomat instruction) has its payload
               and raw bytes replaced by a note
  --show-sensitive  print those as stored, and every phone number a callback carried in full (without it,
               masked as in a log line, its last three digits shown, in every view and in --json: an
               eSMS recipient, a TeleSign inbound SMS's sender, a number in any provider's payload;
               ids the provider made up stay readable, and raw bytes are replaced by the note)
  --table NAME --region R  a deployed stack's table (its output TableName)
  --data-dir DIR    locally: the pipeline's data folder (default: .local-data)

  With the SMS relay on, an Identomat session lists each code or link sent for it and what the
  sender's delivery reports say ("code sent via TeleSign, reference …: Delivered to handset"); the
  sender's reference names the session it was sent for.`;

const OUTCOMES = ['pending', 'succeeded', 'failed', 'unknown', 'quarantined'] as const;
const { values, positionals } = parseCli(
  {
    recent: { type: 'string' },
    stale: { type: 'boolean', default: false },
    provider: { type: 'string' },
    outcome: { type: 'string' },
    json: { type: 'boolean', default: false },
    'show-sensitive': { type: 'boolean', default: false },
    table: { type: 'string' },
    region: { type: 'string' },
    'data-dir': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  USAGE,
);
const recent = intFlag('recent', values.recent, COUNT_RANGE, 20);
// A subject, or a listing (--recent, --stale), which names none.
if (values.stale || values.recent !== undefined) checkArguments(positionals, USAGE, []);
else checkArguments(positionals, USAGE, ['<provider>', '<subjectId>']);
// A filter the chosen view does not read is refused: answered with the unfiltered view, it would
// read as a filtered one (every stale subject taken for the failed ones).
if (values.stale && values.recent !== undefined) fail('--stale and --recent are two listings: give one');
if (values.outcome !== undefined && values.recent === undefined) fail(values.stale ? '--outcome filters --recent N; --stale lists subjects of every outcome' : '--outcome filters --recent N, not a subject');
if (values.provider !== undefined && !values.stale && values.recent === undefined) fail('--provider filters --recent N and --stale; a subject is named by <provider> <subjectId>');
// A mistyped filter is said before any table is looked for, with what was typed.
if (values.outcome !== undefined && !(OUTCOMES as readonly string[]).includes(values.outcome)) fail(`--outcome must be one of ${OUTCOMES.join(', ')}, got ${JSON.stringify(values.outcome)}`);
if (values.provider !== undefined && !findProvider(values.provider)) fail(unknownProvider(values.provider));

/** The refusal of a provider id the registry does not have, naming those it has. */
function unknownProvider(id: string): string {
  return `unknown provider "${id}"; known: ${providers.map((p) => p.id).join(', ')}`;
}

function fail(message: string, code = 2): never {
  // A failure (not a wrong command line) still prints its document, as every --json command does.
  if (code === 1) failed(message, values.json);
  console.error(message);
  process.exit(code);
}

async function connect(): Promise<{ client: DynamoDBClient; tableName: string }> {
  if (values.table) {
    const client = new DynamoDBClient(regionConfig(values.region));
    await requireRegion(client);
    await requireCredentials(client, values.json);
    return { client, tableName: values.table };
  }
  const runtime = readRuntimeInfo(dataDirFrom(values['data-dir']));
  if (!runtime) {
    const { where, start } = noPipelineHere(values['data-dir']);
    fail(`no local pipeline is running${where} (start it with \`${start}\`), or pass --table NAME --region R for a deployed stack`, 1);
  }
  return { client: new DynamoDBClient({ ...LOCAL_AWS, endpoint: runtime.dynamodbEndpoint }), tableName: runtime.tableName };
}

/**
 * A stored number as this command reads it: as the SDK reads it when JavaScript holds it exactly,
 * otherwise as its digits. An item written by hand can hold one past 2^53 (DynamoDB keeps 38 digits):
 * read as the SDK reads it by default, a fraction there threw (every listing the item was in failed,
 * `--recent` printed nothing) and an integer became a BigInt, which no JSON document can hold.
 */
function storedNumber(digits: string): number | string {
  const value = Number(digits);
  return value >= Number.MIN_SAFE_INTEGER && value <= Number.MAX_SAFE_INTEGER ? value : digits;
}

/** A stored item as plain values (see storedNumber). */
function read(item: Record<string, AttributeValue>): Record<string, unknown> {
  return unmarshall(item, { wrapNumbers: storedNumber });
}

/** An item as this command shows it (bookkeeping left out; phone numbers masked unless --show-sensitive). */
function clean(item: Record<string, unknown>): Record<string, unknown> {
  return shownItem(item, values['show-sensitive']);
}

async function queryAll(client: DynamoDBClient, input: QueryCommandInput, limit = Infinity) {
  const items: Record<string, unknown>[] = [];
  let start: QueryCommandInput['ExclusiveStartKey'];
  do {
    const page = await client.send(new QueryCommand({ ...input, ExclusiveStartKey: start }));
    items.push(...(page.Items ?? []).map(read));
    start = page.LastEvaluatedKey;
  } while (start && items.length < limit);
  return items;
}

/**
 * One Query on the subject's partition: the subject's own state (`STATE`), the state of each of
 * its parts (`STATE#<part>`: an eSMS recipient) and every event. The text view prints stored
 * values as they are (the table is the user's own); `--json` prints them exactly; both but for what
 * `clean` keeps back without --show-sensitive (live codes, contacts, phone numbers).
 */
async function showSubject(providerId: string, subjectId: string) {
  const provider = findProvider(providerId) ?? fail(unknownProvider(providerId));
  const { client, tableName } = await connect();
  const items = await queryAll(client, {
    TableName: tableName,
    KeyConditionExpression: '#pk = :pk',
    ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
    ExpressionAttributeValues: { ':pk': { S: keys.subject(provider.id, subjectId) } },
    ConsistentRead: true,
  });
  const stateItem = items.find((item) => item.sk === 'STATE');
  const state = stateItem ? clean(stateItem) : null;
  const parts = items
    .filter((item) => String(item.sk).startsWith('STATE#'))
    .sort((a, b) => String(a.sk).localeCompare(String(b.sk)))
    .map(clean);
  const events = items
    .filter((item) => String(item.sk).startsWith('EVENT#'))
    .sort((a, b) => String(a.receivedAt).localeCompare(String(b.receivedAt)))
    .map(clean);
  // The relay: instructions of this subject sent through an SMS provider, joined with that
  // provider's delivery reports; or, on the sender's subject, the instruction it carried.
  const relays = await relayViews(items, (pk) =>
    queryAll(client, {
      TableName: tableName,
      KeyConditionExpression: '#pk = :pk',
      ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
      ExpressionAttributeValues: { ':pk': { S: pk } },
      ConsistentRead: true,
    }),
  );
  const relayed = relayedLink(items);
  client.destroy();
  const found = state !== null || parts.length > 0 || relays.length > 0 || relayed !== null;
  if (values.json) {
    printJson({ state, parts, events, relays, relayed });
  } else if (!found) {
    show(`nothing stored for ${provider.id} ${subjectId}`);
  } else {
    show(`${provider.displayName} ${subjectId}`);
    if (state) show(...stateLines(provider, state, '  '));
    else if (parts.length > 0) console.log('  (no status of its own: every callback named a part)');
    else console.log('  (no status yet)');
    if (relayed) show(`  ${relayedLine(relayed)}`);
    if (relays.length) {
      console.log(`  relayed (${relays.length}):`);
      for (const view of relays) show(`    ${relayLine(view)}`);
    }
    if (parts.length) {
      console.log(`  parts (${parts.length}):`);
      for (const part of parts) show(`    ${String(part.part)}`, ...stateLines(provider, part, '      '));
    }
    console.log('  timeline:');
    const statusWidth = Math.max(0, ...events.map((event) => printable(String(event.status)).length));
    for (const event of events) {
      const confirmation = confirmationNote(provider.callbackTrust, event);
      const source = event.source === 'status-endpoint' ? '  (answer of the status endpoint)' : '';
      const part = event.part === undefined ? '' : `  part=${String(event.part)}`;
      show(`    ${event.receivedAt}  ${printable(String(event.status)).padEnd(statusWidth)} outcome=${event.outcome ?? '-'}  statusAt=${event.statusAt ?? '-'}${part}  ${event.requestId ? `request=${event.requestId}` : ''}${confirmation}${source}`);
    }
  }
  if (!found) process.exitCode = 1;
}

/** The whole stored item behind an index entry (quarantined items keep their message there). */
async function wholeItem(client: DynamoDBClient, tableName: string, entry: Record<string, unknown>): Promise<Record<string, unknown>> {
  const found = await client.send(new GetItemCommand({ TableName: tableName, Key: marshall({ pk: entry.pk, sk: entry.sk }) }));
  if (!found.Item) return entry;
  const item = read(found.Item);
  let unreadable: string | undefined;
  if (String(item.sk).startsWith('QUARANTINE#') && typeof item.message !== 'string') {
    // An item written or edited by hand may keep no message, or bytes that are not gzip: it is listed
    // with a note where its message would be, not made to fail the listing of every other. The table
    // failing to answer still fails the command.
    const stored = await quarantinedMessageText(item, async (key) => {
      const chunk = await client.send(new GetItemCommand({ TableName: tableName, Key: marshall(key) }));
      return chunk.Item ? read(chunk.Item) : undefined;
    });
    if ('text' in stored) item.message = stored.text;
    else unreadable = `(its stored message cannot be read: ${stored.unreadable})`;
  }
  const shown = { ...clean(item), outcome: entry.outcome };
  return unreadable === undefined ? shown : { ...shown, message: unreadable };
}

async function showRecent(limit: number) {
  const wanted = values.provider ? [findProvider(values.provider) ?? fail(unknownProvider(values.provider))] : providers;
  const outcome = values.outcome;
  const outcomes = outcome ? [outcome] : OUTCOMES;
  const { client, tableName } = await connect();
  const { name, partitionKey } = TABLE.outcomeIndex;
  const lists = await Promise.all(
    wanted.flatMap((provider) =>
      outcomes.map((o) =>
        queryAll(
          client,
          {
            TableName: tableName,
            IndexName: name,
            KeyConditionExpression: '#p = :p',
            ExpressionAttributeNames: { '#p': partitionKey },
            ExpressionAttributeValues: { ':p': { S: keys.outcome(provider.id, o) } },
            ScanIndexForward: false,
            Limit: limit,
          },
          limit,
        ).then((items) => items.map((item): Record<string, unknown> => ({ ...item, outcome: item.outcome ?? o }))),
      ),
    ),
  );
  const listed = lists
    .flat()
    .sort((a, b) => String(b.changedAt).localeCompare(String(a.changedAt)))
    .slice(0, limit);
  // The index holds what lists need; --json shows each item whole, as stored.
  const items = values.json ? await Promise.all(listed.map((item) => wholeItem(client, tableName, item))) : listed.map(clean);
  client.destroy();
  if (values.json) {
    printJson({ items });
    return;
  }
  if (items.length === 0) console.log(values.provider || values.outcome ? 'no subjects match' : 'nothing stored yet');
  const rows = items.map((item) => {
    const subject = item.subjectId === undefined ? `(quarantined: ${item.reason})` : `${item.subjectId}${item.part === undefined ? '' : ` part ${String(item.part)}`}`;
    return [`${String(item.changedAt)} `, String(item.provider), String(item.outcome), String(item.status ?? ''), subject];
  });
  for (const row of alignColumns(rows.map((row) => row.map(printable)))) console.log(row.join(' '));
}

/** Subjects re-checks gave up on: the stale partition of the byRecheck index, per provider. */
async function showStale() {
  const wanted = values.provider ? [findProvider(values.provider) ?? fail(unknownProvider(values.provider))] : providers;
  const { client, tableName } = await connect();
  const { name, partitionKey } = TABLE.recheckIndex;
  const lists = await Promise.all(
    wanted.map((provider) =>
      queryAll(client, {
        TableName: tableName,
        IndexName: name,
        KeyConditionExpression: '#p = :p',
        ExpressionAttributeNames: { '#p': partitionKey },
        ExpressionAttributeValues: { ':p': { S: staleShard(provider.id) } },
        ScanIndexForward: false,
      }),
    ),
  );
  const listed = lists.flat().sort((a, b) => String(b.recheckAt).localeCompare(String(a.recheckAt)));
  const items = values.json ? await Promise.all(listed.map((item) => wholeItem(client, tableName, item))) : listed.map(clean);
  client.destroy();
  if (values.json) {
    printJson({ items });
    return;
  }
  if (items.length === 0) console.log('no stale subjects');
  const rows = items.map((item) => {
    const part = item.part === undefined ? '' : ` part ${String(item.part)}`;
    const why = item.expectedAt && item.status === undefined ? 'expected, nothing ever arrived' : `${String(item.status ?? '-')} (${String(item.outcome)}), confirmation ${String(item.confirmation ?? 'none')}${item.recheckFaults ? ` (the status endpoint failed the last ${String(item.recheckFaults)} time(s))` : ''}`;
    return [`${String(item.recheckAt)} `, String(item.provider), `${String(item.subjectId)}${part}  ${why}  after ${String(item.rechecks ?? 0)} re-checks`];
  });
  for (const row of alignColumns(rows.map((row) => row.map(printable)))) console.log(row.join(' '));
}

try {
  if (values.stale) await showStale();
  else if (values.recent !== undefined) await showRecent(recent);
  else await showSubject(positionals[0], positionals[1]);
} catch (error) {
  fail(`cannot read the table: ${(error as Error).message}`, 1);
}
