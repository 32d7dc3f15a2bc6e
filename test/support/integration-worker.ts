import { randomUUID } from 'node:crypto';
import { DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { ingest } from '../../functions/core/ingest.ts';
import type { Logger, LogFields } from '../../functions/shared/log.ts';
import { RETENTION, TABLE, keys } from '../../functions/core/pipeline-definition.ts';
import { QueueMessageSchema, type QueueMessage } from '../../functions/core/queue-message.ts';
import { createSecretCache } from '../../functions/core/secrets.ts';
import { createDynamoStore } from '../../functions/adapters/dynamo-store.ts';
import { DEFAULT_LOOKUP_TIMEOUT_MS } from '../../functions/handlers/dependencies.ts';
import { type CallbackStore, type Item } from '../../functions/core/store.ts';
import type { WorkerDependencies } from '../../functions/core/worker.ts';
import { getProvider } from '../../functions/providers/index.ts';
import type { DynamoDbLocal } from '../../local/engines.ts';
import { authenticRequest, listSamples } from '../../local/samples.ts';
import type { StatusSimulator } from '../../local/status-simulator.ts';
import { startTableAndSimulators } from './table-and-simulator.ts';
import { toRequest } from './unit-ingest.ts';

/**
 * The worker's real surroundings for integration tests: DynamoDB Local (the real engine, in
 * memory) with the stack's table, the simulated TemboPlus status endpoint, and queue messages made
 * by the real ingest core, so the tests cover the message shape ingest actually produces.
 */

/** Log lines, kept in memory so tests print nothing and can look at them. */
export interface CapturedLogger extends Logger {
  readonly lines: { level: string; message: string; fields?: LogFields }[];
}

export function captureLogger(): CapturedLogger {
  const lines: CapturedLogger['lines'] = [];
  const push = (level: string) => (message: string, fields?: LogFields) => void lines.push({ level, message, fields });
  return { lines, debug: push('DEBUG'), info: push('INFO'), warn: push('WARN'), error: push('ERROR') };
}

export interface WorkerEnvironment {
  readonly dynamo: DynamoDbLocal;
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly store: CallbackStore;
  /** TemboPlus's simulated status endpoint (the first asked provider, for the tests that use it by name). */
  readonly simulator: StatusSimulator;
  /** Every asked provider's simulated status endpoint, by provider id. */
  readonly simulators: Readonly<Record<string, StatusSimulator>>;
  readonly secrets: Record<string, Record<string, unknown>>;
  /** The suite's secrets with asking turned on where a provider makes it opt-in (TeleSign's statusLookup). */
  readonly askingSecrets: Record<string, Record<string, unknown>>;
  /** Worker dependencies on the real store and the simulator; override any part. `asking`: with `askingSecrets`. */
  deps(overrides?: Partial<WorkerDependencies> & { apiToken?: string; timeoutMs?: number; asking?: boolean }): WorkerDependencies & { log: CapturedLogger };
  stop(): Promise<void>;
}

/** Start DynamoDB Local (in memory) with the table, and every asked provider's simulated status endpoint. Once per test file. */
export async function startWorkerEnvironment(): Promise<WorkerEnvironment> {
  const base = await startTableAndSimulators('callbacks-integration', 'it');
  const { dynamo, simulators, client, tableName } = base;
  const store = createDynamoStore(client, tableName);
  const secrets = { ...base.secrets };
  const askingSecrets = { ...base.askingSecrets };
  return {
    dynamo,
    client,
    tableName,
    store,
    simulator: simulators.temboplus,
    simulators,
    secrets,
    askingSecrets,
    deps({ apiToken, timeoutMs, asking, ...overrides } = {}) {
      const chosen = asking ? askingSecrets : secrets;
      const own = apiToken === undefined ? chosen : { ...chosen, temboplus: { ...chosen.temboplus, apiToken } };
      return {
        store,
        secrets: createSecretCache(async (provider) => JSON.stringify(own[provider.id])),
        // The deployed worker's timeout: a simulated answer a busy machine delays past a shorter one
        // would fail the record as an endpoint fault. Tests about a slow endpoint set their own.
        lookup: { fetch, timeoutMs: timeoutMs ?? DEFAULT_LOOKUP_TIMEOUT_MS, newRequestId: randomUUID },
        now: () => new Date(),
        retention: { eventDays: RETENTION.eventDays, sensitiveHours: RETENTION.sensitiveHours },
        ...overrides,
        log: (overrides.log as CapturedLogger | undefined) ?? captureLogger(),
      };
    },
    async stop() {
      await base.stop();
    },
  };
}

/** A provider sample's JSON body, parsed, for tests to vary (unique ids, other statuses). */
export function sampleJson(providerId: string, name: string): Record<string, unknown> {
  const sample = listSamples(providerId).find((candidate) => candidate.name === name);
  if (!sample?.body) throw new Error(`no JSON sample ${providerId}/${name}`);
  return JSON.parse(sample.body.toString('utf8')) as Record<string, unknown>;
}

/**
 * A unique id for a test's subject, so tests sharing one table never see each other's items. A
 * letter goes before the random hex digits: eight of them are all digits one time in 43, and an id
 * ending in 7 or more digits is masked as a phone number in log lines and in inspect's views, where
 * a test looking for the id would then not find it.
 */
export function uniqueId(prefix: string): string {
  return `${prefix}-t${randomUUID().slice(0, 8)}`;
}

/**
 * Run the real ingest core on an authentic request for `body` and return the message it queued
 * (as the worker will parse it from SQS). Throws unless ingest answered 200.
 */
export async function queueMessageFor(
  secrets: Record<string, Record<string, unknown>>,
  providerId: string,
  body: unknown,
  request: { requestId?: string; receivedAt?: string } = {},
): Promise<QueueMessage> {
  const raw = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
  return queueMessageForContent(secrets, providerId, { body: raw }, request);
}

/** The same for a provider that sends everything in the query string (eSMS's GET callbacks). */
export async function queueMessageForQuery(
  secrets: Record<string, Record<string, unknown>>,
  providerId: string,
  query: string,
  request: { requestId?: string; receivedAt?: string } = {},
): Promise<QueueMessage> {
  return queueMessageForContent(secrets, providerId, { query }, request);
}

/** The queue message ingest makes of an authentic request carrying `content` (body or query), as a kit or a life gives it. */
export async function queueMessageForContent(
  secrets: Record<string, Record<string, unknown>>,
  providerId: string,
  content: { body?: Buffer; query?: string },
  request: { requestId?: string; receivedAt?: string },
): Promise<QueueMessage> {
  const provider = getProvider(providerId);
  const secret = provider.secretSchema.parse(secrets[providerId]) as Record<string, unknown>;
  const sent = authenticRequest(provider, secret, content);
  const queued: string[] = [];
  const response = await ingest(
    provider,
    // The path's parameters as API Gateway hands them over: the token, and any other (a source).
    toRequest(provider, sent, { requestId: request.requestId ?? randomUUID(), receivedAt: request.receivedAt ?? new Date().toISOString() }),
    { secrets: createSecretCache(async (p) => JSON.stringify(secrets[p.id])), send: async (message) => void queued.push(message), log: captureLogger() },
  );
  if (response.statusCode !== 200 || queued.length !== 1) {
    throw new Error(`ingest answered ${response.statusCode} ${JSON.stringify(response.body)} and queued ${queued.length} message(s)`);
  }
  return QueueMessageSchema.parse(JSON.parse(queued[0]));
}

/** An SQS record carrying a queue message, as the Lambda event source delivers it. */
export function sqsRecord(message: QueueMessage, options: { messageId?: string; receiveCount?: number } = {}): SQSRecord {
  const messageId = options.messageId ?? randomUUID();
  return {
    messageId,
    receiptHandle: `receipt-${messageId}`,
    body: JSON.stringify(message),
    attributes: {
      ApproximateReceiveCount: String(options.receiveCount ?? 1),
      SentTimestamp: String(Date.now()),
      SenderId: 'AROAEXAMPLE',
      ApproximateFirstReceiveTimestamp: String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:callbacks',
    awsRegion: 'us-east-1',
  };
}

export function sqsEvent(records: SQSRecord[]): SQSEvent {
  return { Records: records };
}

/** The state item of a subject, as stored (index attributes included). */
export async function storedState(env: WorkerEnvironment, provider: string, subjectId: string): Promise<Item | undefined> {
  return env.store.getItem(keys.state(provider, subjectId));
}

/** Everything stored about a subject, as one Query on its partition key returns it. */
export interface StoredSubject {
  /** The subject's own state (`STATE`), when a callback was about the subject as a whole. */
  readonly state?: Item;
  /** The state of each part (`STATE#<part>`: an eSMS recipient), by part. */
  readonly parts: ReadonlyMap<string, Item>;
  readonly events: readonly Item[];
}

/**
 * The one Query a user runs for a subject (`pk = "<provider>#<subjectId>"`, eSMS: the SMSID),
 * split into the subject's state, its parts' states and its events.
 */
export async function storedSubject(env: WorkerEnvironment, provider: string, subjectId: string): Promise<StoredSubject> {
  const items = await queryAll(env, { KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: keys.subject(provider, subjectId) } }, ConsistentRead: true });
  const parts = new Map<string, Item>();
  for (const item of items) if (String(item.sk).startsWith('STATE#')) parts.set(String(item.sk).slice('STATE#'.length), item);
  return {
    ...(items.some((item) => item.sk === 'STATE') ? { state: items.find((item) => item.sk === 'STATE') } : {}),
    parts,
    events: items.filter((item) => String(item.sk).startsWith('EVENT#')),
  };
}

/** Every callback (claim) event item of a subject. */
export async function storedEvents(env: WorkerEnvironment, provider: string, subjectId: string): Promise<Item[]> {
  return (await storedObservations(env, provider, subjectId)).filter((item) => item.source !== 'status-endpoint');
}

/** Every event item of a subject: callbacks and the provider's status-endpoint answers. */
export async function storedObservations(env: WorkerEnvironment, provider: string, subjectId: string): Promise<Item[]> {
  return queryAll(env, {
    KeyConditionExpression: 'pk = :pk AND begins_with(sk, :events)',
    ExpressionAttributeValues: { ':pk': { S: keys.subject(provider, subjectId) }, ':events': { S: 'EVENT#' } },
  });
}

/** Every item in a partition (quarantine partitions, for instance). */
export async function storedPartition(env: WorkerEnvironment, pk: string): Promise<Item[]> {
  return queryAll(env, { KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': { S: pk } } });
}

/** The byOutcome index for `<provider>#<outcome>`, newest first, as a user would query it. */
export async function byOutcome(env: WorkerEnvironment, provider: string, outcome: string): Promise<Item[]> {
  const index = TABLE.outcomeIndex;
  return queryAll(env, {
    IndexName: index.name,
    KeyConditionExpression: '#pk = :pk',
    ExpressionAttributeNames: { '#pk': index.partitionKey },
    ExpressionAttributeValues: { ':pk': { S: keys.outcome(provider, outcome) } },
    ScanIndexForward: false,
  });
}

async function queryAll(env: WorkerEnvironment, input: Omit<ConstructorParameters<typeof QueryCommand>[0], 'TableName'>): Promise<Item[]> {
  const items: Item[] = [];
  let ExclusiveStartKey: Record<string, never> | undefined;
  do {
    const page = await env.client.send(new QueryCommand({ ...input, TableName: env.tableName, ExclusiveStartKey }));
    items.push(...(page.Items ?? []).map((item) => unmarshall(item)));
    ExclusiveStartKey = page.LastEvaluatedKey as typeof ExclusiveStartKey;
  } while (ExclusiveStartKey);
  return items;
}
