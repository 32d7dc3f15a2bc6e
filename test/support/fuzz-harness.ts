import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { ConfigurationError, DependencyError } from '../../functions/shared/errors.ts';
import type { Logger, LogFields } from '../../functions/shared/log.ts';
import { MAX_BODY_BYTES, RETENTION } from '../../functions/core/pipeline-definition.ts';
import { QueueMessageSchema, rawBodyOf, type QueueMessage } from '../../functions/core/queue-message.ts';
import { createSecretCache, type SecretCache } from '../../functions/core/secrets.ts';
import { createDynamoStore } from '../../functions/adapters/dynamo-store.ts';
import { type CallbackStore } from '../../functions/core/store.ts';
import { processMessage, type WorkerDependencies, type WorkerResult } from '../../functions/core/worker.ts';
import { createIngestHandler, type IngestHandler } from '../../functions/handlers/ingest.ts';
import type { AnyProvider } from '../../functions/providers/provider.ts';
import { LOCAL_AWS, ensureTable, startDynamoDbLocal, type DynamoDbLocal } from '../../local/engines.ts';
import { toApiGatewayEvent } from '../../local/http-api.ts';
import { startStatusSimulator, type StatusSimulator } from '../../local/status-simulator.ts';
import { allKits, kitOf } from '../providers/index.ts';
import { pathTokenOf, type FuzzRequest, type FuzzSecrets } from './fuzz-arbitraries.ts';

/**
 * The hostile-input harness: delivers fuzzed requests to the real ingest handler as API Gateway
 * would (payload v2.0 events built by the local HTTP API's own converter), checks every answer
 * against what the request deserves, and runs what was queued through the real worker against
 * DynamoDB Local. Only the queue is a stand-in: it records message bodies and refuses what SQS
 * refuses (over 1 MiB, characters outside SQS's allowed set), since that is where a "200" would
 * otherwise be promised for a message that cannot exist.
 */

// ---------------------------------------------------------------------------------------------
// Configuration (environment, printed so a failure can be replayed)

export interface FuzzConfig {
  readonly seed: number;
  /** Requests per provider. */
  readonly runs: number;
  /** fast-check replay path of a reported counterexample. */
  readonly path?: string;
  /** Queued messages per provider that the worker processes against DynamoDB Local (every n-th, spread over the run). */
  readonly workerMessages: number;
  /**
   * Of those, how many large ones (over LARGE_MESSAGE_BYTES). DynamoDB Local reads big items, and
   * above all maps and lists of thousands of members, slowly: the final table scan would take far
   * longer than the fuzzing. A few hundred per provider cover the size and nesting paths as well
   * as thousands would.
   */
  readonly workerLargeMessages: number;
  /** Providers to fuzz (FUZZ_PROVIDERS=<id>,<id>, ids as the registry has them), all by default: replaying one provider's failure needs only its own run. */
  readonly providers?: readonly string[];
}

export const LARGE_MESSAGE_BYTES = 16 * 1024;

/** The seed used unless FUZZ_SEED says otherwise: fixed, so `npm test` is repeatable. */
export const DEFAULT_SEED = 20_240_604;

export function fuzzConfig(env: NodeJS.ProcessEnv = process.env): FuzzConfig {
  const integer = (name: string, fallback: number) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value)) throw new Error(`${name} must be an integer, got "${raw}"`);
    return value;
  };
  const runs = integer('FUZZ_RUNS', 300);
  if (runs < 1) throw new Error(`FUZZ_RUNS must be at least 1, got ${runs}`);
  return {
    seed: integer('FUZZ_SEED', DEFAULT_SEED),
    runs,
    ...(env.FUZZ_PATH ? { path: env.FUZZ_PATH } : {}),
    // DynamoDB Local reads items at ~15 ms each in the final scan: the worker stores a sample
    // spread over the whole run (npm test: ~60 per provider; full run: ~2,000 per provider).
    workerMessages: integer('FUZZ_WORKER_MESSAGES', runs >= 1_000 ? 2_000 : 60),
    workerLargeMessages: integer('FUZZ_WORKER_LARGE_MESSAGES', runs >= 1_000 ? 300 : 10),
    ...(env.FUZZ_PROVIDERS ? { providers: env.FUZZ_PROVIDERS.split(',').map((id) => id.trim()) } : {}),
  };
}

export function replayHint(config: FuzzConfig): string {
  return `FUZZ_SEED=${config.seed} FUZZ_RUNS=${config.runs}${config.providers ? ` FUZZ_PROVIDERS=${config.providers.join(',')}` : ''}${config.path ? ` FUZZ_PATH=${config.path}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Secrets

/**
 * Every provider's secret for the suite: its kit's `secret('fuzz')` (values that contain "fuzz",
 * so any echo in an answer, a message or a log line is easy to find), pointed at the status
 * endpoint stand-in where it has one, and adjusted by the kit (an allow-list of addresses…).
 */
export function fuzzSecrets(statusEndpoints: Readonly<Record<string, string>> = {}): FuzzSecrets {
  return Object.fromEntries(
    allKits().map((kit) => {
      const secret = kit.secret('fuzz', { statusEndpoint: statusEndpoints[kit.provider.id] });
      return [kit.provider.id, kit.fuzz.adjustSecret?.(secret) ?? secret];
    }),
  );
}

/** The secret values that must never come back out: the kit's credentials of the secret. */
export function secretStrings(secrets: FuzzSecrets, providerId: string): string[] {
  return kitOf(providerId).credentials(secrets[providerId]);
}

// ---------------------------------------------------------------------------------------------
// Delivery: as API Gateway's HTTP API hands a request to the function

function routePattern(provider: AnyProvider): RegExp {
  // The same translation as local/http-api.ts: a `{parameter}` matches one path segment.
  const pattern = provider.route.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, '(?<$1>[^/]+)');
  return new RegExp(`^${pattern}$`);
}

/**
 * The payload v2.0 event for a fuzzed request, made by the local HTTP API's own converter
 * (base64 for content types API Gateway does not treat as text, headers lower-cased). A path
 * without its token segment still reaches the function, without the token parameter; any other
 * path parameter is `fuzz`.
 */
export function toEvent(provider: AnyProvider, request: FuzzRequest): APIGatewayProxyEventV2 {
  const path = provider.route.path.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = name === provider.route.tokenParameter ? request.pathToken : (request.pathParameters[name] ?? 'fuzz');
    return value === undefined ? '' : encodeURIComponent(value);
  });
  const url = request.query ? `${path}?${request.query}` : path;
  const incoming = {
    url,
    method: request.method,
    headers: request.headers,
    // What the converter reads: each header as Node gives one sent once (lower-cased, one value).
    headersDistinct: Object.fromEntries(Object.entries(request.headers).map(([name, value]) => [name.toLowerCase(), [value]])),
    httpVersion: '1.1',
    socket: { remoteAddress: request.sourceIp },
  } as unknown as IncomingMessage;
  const match = routePattern(provider).exec(new URL(url, 'http://localhost').pathname);
  return toApiGatewayEvent(incoming, request.body, `${provider.route.method} ${provider.route.path}`, { ...(match?.groups ?? {}) });
}

/** The bytes the function receives (API Gateway passes text types as UTF-8 text: invalid bytes do not survive). */
export function deliveredBody(event: APIGatewayProxyEventV2): Buffer {
  return event.body === undefined ? Buffer.alloc(0) : Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
}

// ---------------------------------------------------------------------------------------------
// What each request deserves

export type Expected =
  | { readonly status: 404 | 413 | 401; readonly why: string }
  | { readonly status: 200; readonly intent: FuzzRequest['intent'] };

/**
 * The answer a request deserves, in the order the gateway promises to check: method, size, then
 * authenticity; an authentic request is always taken (quarantined when its content is invalid).
 * A body signed before transport but changed by it (invalid UTF-8 sent as text) is no longer the
 * signed body: for providers that authenticate the body it is not authentic any more.
 */
export function expectedAnswer(provider: AnyProvider, request: FuzzRequest, event: APIGatewayProxyEventV2): Expected {
  // API Gateway has no route for another method: 404, as for any route it lacks.
  if (request.method.toUpperCase() !== provider.route.method) return { status: 404, why: 'wrong method' };
  const body = deliveredBody(event);
  if (body.length > MAX_BODY_BYTES || Buffer.byteLength(event.rawQueryString ?? '') > MAX_BODY_BYTES) return { status: 413, why: 'over the limit' };
  if (!request.authentic) return { status: 401, why: 'forged' };
  if (kitOf(provider).fuzz.authenticatesBody && !body.equals(request.body)) return { status: 401, why: 'signed body changed in transport' };
  return { status: 200, intent: request.intent };
}

// ---------------------------------------------------------------------------------------------
// The queue stand-in

const SQS_MAX_MESSAGE_BYTES = 1_048_576;
/** Characters SQS accepts in a message body (W3C XML Char production); anything else is refused. */
const SQS_FORBIDDEN = /[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u;

export class SqsRefusal extends Error {
  override readonly name = 'SqsRefusal';
}

/** A `send` that keeps what SQS would keep and refuses what SQS refuses. */
export function recordingQueue() {
  const bodies: string[] = [];
  return {
    bodies,
    send: async (body: string) => {
      if (body.length === 0) throw new SqsRefusal('MissingParameter: the message body must not be empty');
      if (Buffer.byteLength(body) > SQS_MAX_MESSAGE_BYTES) throw new SqsRefusal(`InvalidParameterValue: message of ${Buffer.byteLength(body)} bytes is over 1 MiB`);
      const bad = SQS_FORBIDDEN.exec(body);
      if (bad) throw new SqsRefusal(`InvalidMessageContents: U+${bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')} is not allowed`);
      bodies.push(body);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Logs

export interface CapturedLogger extends Logger {
  readonly lines: string[];
}

/** Keeps log lines (as the JSON they would be written as), so the run prints nothing and they can be searched. */
export function capturedLogger(): CapturedLogger {
  const lines: string[] = [];
  const push = (level: string) => (message: string, fields?: LogFields) => void lines.push(JSON.stringify({ level, message, ...fields }));
  return { lines, debug: push('DEBUG'), info: push('INFO'), warn: push('WARN'), error: push('ERROR') };
}

// ---------------------------------------------------------------------------------------------
// Outcomes and the table printed at the end

export const OUTCOMES = ['accepted', 'quarantined', '401', '404', '413', 'other 4xx', '5xx'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export const WORKER_OUTCOMES = ['stored', 'duplicate', 'quarantine stored', 'quarantine dup', 'status unavailable', 'poison', 'not processed'] as const;
export type WorkerOutcome = (typeof WORKER_OUTCOMES)[number];

export class Tally {
  readonly ingest = new Map<string, Map<Outcome, number>>();
  readonly worker = new Map<string, Map<WorkerOutcome, number>>();
  readonly durations = new Map<string, number>();
  /** How often each kind of request (`family/variant`) was sent, per provider. */
  readonly variants = new Map<string, Map<string, number>>();

  add(providerId: string, outcome: Outcome): void {
    const row = this.ingest.get(providerId) ?? new Map<Outcome, number>();
    row.set(outcome, (row.get(outcome) ?? 0) + 1);
    this.ingest.set(providerId, row);
  }

  addWorker(providerId: string, outcome: WorkerOutcome): void {
    const row = this.worker.get(providerId) ?? new Map<WorkerOutcome, number>();
    row.set(outcome, (row.get(outcome) ?? 0) + 1);
    this.worker.set(providerId, row);
  }

  addVariant(providerId: string, variant: string): void {
    const row = this.variants.get(providerId) ?? new Map<string, number>();
    row.set(variant, (row.get(variant) ?? 0) + 1);
    this.variants.set(providerId, row);
  }

  /** One line per provider: how many distinct kinds of request were sent, and in how many families. */
  variantLines(): string[] {
    return [...this.variants].map(([providerId, row]) => {
      const families = new Map<string, number>();
      for (const variant of row.keys()) families.set(variant.split('/')[0], (families.get(variant.split('/')[0]) ?? 0) + 1);
      return `  ${providerId}: ${row.size} variants (${[...families].map(([family, count]) => `${family} ${count}`).join(', ')})`;
    });
  }

  count(providerId: string, outcome: Outcome): number {
    return this.ingest.get(providerId)?.get(outcome) ?? 0;
  }

  /** A fixed-width table: one row per provider, one column per outcome, and totals. */
  format(title: string, columns: readonly string[], rows: Map<string, Map<string, number>>): string[] {
    const providerIds = [...rows.keys()];
    const total = (id: string) => [...(rows.get(id)?.values() ?? [])].reduce((a, b) => a + b, 0);
    const columnTotal = (column: string) => providerIds.reduce((sum, id) => sum + (rows.get(id)?.get(column) ?? 0), 0);
    const header = ['', ...columns, 'total'];
    const body = providerIds.map((id) => [id, ...columns.map((c) => String(rows.get(id)?.get(c) ?? 0)), String(total(id))]);
    const footer = ['total', ...columns.map((c) => String(columnTotal(c))), String(providerIds.reduce((s, id) => s + total(id), 0))];
    const all = [header, ...body, footer];
    const widths = header.map((_, i) => Math.max(...all.map((row) => row[i].length)));
    const line = (row: string[]) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
    return [title, ...all.map(line)];
  }

  lines(): string[] {
    return [
      ...this.format('ingest answers (requests per provider x outcome):', OUTCOMES, this.ingest as Map<string, Map<string, number>>),
      ...this.format('worker on DynamoDB Local (queued messages processed):', WORKER_OUTCOMES, this.worker as Map<string, Map<string, number>>),
    ];
  }
}

/** The outcome column of one answer. */
export function outcomeOf(result: APIGatewayProxyStructuredResultV2): Outcome {
  const status = result.statusCode ?? 0;
  if (status === 200) {
    const body = JSON.parse(result.body ?? '{}') as Record<string, unknown>;
    return body.quarantined === true ? 'quarantined' : 'accepted';
  }
  if (status === 401 || status === 404 || status === 413) return String(status) as Outcome;
  if (status >= 400 && status < 500) return 'other 4xx';
  return '5xx';
}

// ---------------------------------------------------------------------------------------------
// The pipeline under test

export interface FuzzPipeline {
  readonly secrets: FuzzSecrets;
  readonly dynamo: DynamoDbLocal;
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly store: CallbackStore;
  /** The simulated status endpoints, by provider id (for providers whose worker asks one). */
  readonly simulators: ReadonlyMap<string, StatusSimulator>;
  readonly secretCache: SecretCache;
  /** The ingest handler of a provider, over the recording queue and a real secret cache. */
  ingest(provider: AnyProvider): { handler: IngestHandler; queue: ReturnType<typeof recordingQueue>; log: CapturedLogger };
  workerDeps(log: Logger): WorkerDependencies;
  /** requestId → provider of every item in the table that carries one. */
  scanRequestIds(): Promise<Map<string, string>>;
  /** The items stored for one request (its event or quarantine item). */
  itemsOf(requestId: string): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
}

/**
 * DynamoDB Local (in memory) with the stack's table, a simulated status endpoint for each provider
 * whose kit has one, and the secrets. If any part cannot start, nothing is left running.
 */
export async function startFuzzPipeline(): Promise<FuzzPipeline> {
  const tableName = 'callbacks-fuzz';
  const dynamo = await startDynamoDbLocal();
  const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint: dynamo.endpoint });
  const simulators = new Map<string, StatusSimulator>();
  const stop = async () => {
    client.destroy();
    await Promise.all([dynamo.stop(), ...[...simulators.values()].map((simulator) => simulator.stop())]);
  };
  try {
    const plain = fuzzSecrets();
    for (const kit of allKits()) {
      const simulation = kit.statusSimulation?.(plain[kit.provider.id]);
      if (simulation) simulators.set(kit.provider.id, await startStatusSimulator(simulation));
    }
    await ensureTable(client, tableName);
  } catch (error) {
    await stop();
    throw error;
  }
  const secrets = fuzzSecrets(Object.fromEntries([...simulators].map(([id, simulator]) => [id, simulator.baseUrl])));
  const secretCache = createSecretCache(async (provider) => JSON.stringify(secrets[provider.id]));
  const store = createDynamoStore(client, tableName);
  return {
    secrets,
    dynamo,
    client,
    tableName,
    store,
    simulators,
    secretCache,
    ingest(provider) {
      const queue = recordingQueue();
      const log = capturedLogger();
      return { handler: createIngestHandler(provider, { secrets: secretCache, send: queue.send, log }), queue, log };
    },
    workerDeps(log) {
      return {
        store,
        secrets: secretCache,
        // The simulated endpoints answer at once, but in this process: on a loaded machine a lookup
        // (REL-ID's: a token request, then the status request) can take longer than a deployed
        // timeout, and the regression suite would read the lookup's timeout as the callback not
        // being stored. How a lookup's timeout is handled has tests of its own.
        lookup: { fetch, timeoutMs: 30_000, newRequestId: randomUUID },
        now: () => new Date(),
        log,
        retention: { eventDays: RETENTION.eventDays, sensitiveHours: RETENTION.sensitiveHours },
      };
    },
    async scanRequestIds() {
      const found = new Map<string, string>();
      let ExclusiveStartKey: Record<string, never> | undefined;
      do {
        const page = await client.send(new ScanCommand({ TableName: tableName, ProjectionExpression: 'requestId, provider', ExclusiveStartKey }));
        for (const raw of page.Items ?? []) {
          const item = unmarshall(raw) as { requestId?: string; provider?: string };
          if (item.requestId) found.set(item.requestId, item.provider ?? '');
        }
        ExclusiveStartKey = page.LastEvaluatedKey as typeof ExclusiveStartKey;
      } while (ExclusiveStartKey);
      return found;
    },
    async itemsOf(requestId) {
      const items: Record<string, unknown>[] = [];
      let ExclusiveStartKey: Record<string, never> | undefined;
      do {
        const page = await client.send(
          new ScanCommand({
            TableName: tableName,
            FilterExpression: 'requestId = :requestId',
            ExpressionAttributeValues: { ':requestId': { S: requestId } },
            ExclusiveStartKey,
          }),
        );
        items.push(...(page.Items ?? []).map((raw) => unmarshall(raw)));
        ExclusiveStartKey = page.LastEvaluatedKey as typeof ExclusiveStartKey;
      } while (ExclusiveStartKey);
      return items;
    },
    stop,
  };
}

// ---------------------------------------------------------------------------------------------
// Checks

/** A one-line description of a request, for failure messages (never the whole body). */
export function describeRequest(request: FuzzRequest): string {
  const head = request.body.subarray(0, 80).toString('utf8').replace(/[^\x20-\x7e]/g, '.');
  return (
    `${request.provider} ${request.family}/${request.variant} ${request.authentic ? 'authentic' : 'forged'} intent=${request.intent} ` +
    `${request.method} token=${request.pathToken === undefined ? '-' : JSON.stringify(request.pathToken.slice(0, 40))} ` +
    `query=${request.query.length}B body=${request.body.length}B ct=${JSON.stringify(request.headers['content-type'] ?? null)} ip=${request.sourceIp} ` +
    `head=${JSON.stringify(head)}`
  );
}

/** Whether a text holds a secret, literally or once JSON-unescaped. */
export function leaksSecret(text: string, secrets: readonly string[]): string | undefined {
  for (const secret of secrets) if (text.includes(secret)) return secret;
  return undefined;
}

/** The raw body a queued message carries, and (when it is JSON) the same JSON without escapes. */
export function messageTexts(message: QueueMessage, queued: string): string[] {
  const texts = [queued];
  if (message.raw.body !== undefined) {
    texts.push(message.raw.body);
    try {
      texts.push(JSON.stringify(JSON.parse(message.raw.body)));
    } catch {
      // not JSON (or nested deeper than JSON.stringify goes): the raw text is what there is
    }
  }
  if (message.raw.bodyBase64 !== undefined) texts.push(rawBodyOf(message).toString('latin1'));
  return texts;
}

/**
 * What the provider's status endpoint answers about an accepted callback's subject, from the
 * callback as its sender meant it: the body without the UTF-8 byte-order mark every decoder drops.
 * Undefined when the kit cannot tell (the worker then finds the subject unknown, and waits).
 */
function statusAnswerOf(message: QueueMessage): unknown {
  const raw = rawBodyOf(message);
  const body = raw.subarray(0, 3).equals(UTF8_BOM) ? raw.subarray(3) : raw;
  try {
    return kitOf(message.provider).statusAnswer?.({ body, query: message.raw.query });
  } catch {
    return undefined;
  }
}
const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

export type WorkerVerdict =
  | { readonly kind: 'result'; readonly result: WorkerResult }
  | { readonly kind: 'status unavailable'; readonly error: DependencyError }
  | { readonly kind: 'poison'; readonly error: Error };

/**
 * Process one queued message as the worker handler would (JSON, schema, processMessage). For a
 * provider whose worker asks its status endpoint, the simulated endpoint is told first that the
 * subject stands as the callback says (the kit's `statusAnswer`), so confirmation succeeds and the
 * event is stored. Throws anything but the faults a retry can clear.
 */
export async function runWorker(pipeline: FuzzPipeline, body: string, log: Logger): Promise<WorkerVerdict> {
  const message = QueueMessageSchema.parse(JSON.parse(body));
  const simulator = pipeline.simulators.get(message.provider);
  const answer = simulator && !message.quarantine ? statusAnswerOf(message) : undefined;
  if (answer !== undefined) {
    try {
      simulator!.report(answer);
    } catch {
      // An answer the provider could never give (an authentic callback's field out of the status
      // API's shape, e.g. a 68 KB TotalSent): the endpoint then does not know the subject.
    }
  }
  try {
    return { kind: 'result', result: await processMessage(message, pipeline.workerDeps(log)) };
  } catch (error) {
    // The provider's own status endpoint (not our store, not the secrets) could not confirm the callback.
    if (error instanceof DependencyError && error.dependency === message.provider) return { kind: 'status unavailable', error };
    // Nothing here is flaky (in-memory table, local simulator): a DynamoDB fault is the message
    // itself (a key or item DynamoDB refuses), which every retry meets again, then the DLQ.
    if (error instanceof DependencyError || error instanceof ConfigurationError) return { kind: 'poison', error };
    throw error;
  }
}

export { pathTokenOf };
