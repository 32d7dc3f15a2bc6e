import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { ingest, type IngestResponse } from '../../functions/core/ingest.ts';
import { createLogger } from '../../functions/shared/log.ts';
import { QueueMessageSchema, type QueueMessage } from '../../functions/core/queue-message.ts';
import { createSecretCache, type SecretSource } from '../../functions/core/secrets.ts';
import type { AnyProvider, CallbackRequest } from '../../functions/providers/provider.ts';
import { secretsFor } from '../providers/index.ts';
import { authenticRequest, type Sample, type SampleRequest } from '../../local/samples.ts';

/**
 * Unit-level harness for the ingest core: the real core, the real providers and the real secret
 * cache; only the queue sender and the secret source are fakes.
 */

/** Secrets for unit tests: recognisable ('unit'), so a leak into a log line or a message is easy to spot. */
export const UNIT_SECRETS: Record<string, Record<string, unknown>> = secretsFor('unit');

/** Every string value of a secret, including those under `previous`. */
export function secretValues(secret: Record<string, unknown>): string[] {
  const values: string[] = [];
  for (const value of Object.values(secret)) {
    if (typeof value === 'string') values.push(value);
    else if (value && typeof value === 'object') values.push(...secretValues(value as Record<string, unknown>));
  }
  return values;
}

/** A different value of the same shape: the first character changed (still valid base64). */
export function altered(value: string): string {
  return (value[0] === 'x' ? 'y' : 'x') + value.slice(1);
}

/** A secret source serving fixed secret JSON per provider, counting its calls. */
export function fixedSecretSource(secrets: Partial<Record<string, unknown>>): SecretSource & { calls: number } {
  const source = async (provider: AnyProvider) => {
    source.calls += 1;
    if (!(provider.id in secrets)) throw new Error(`no secret for ${provider.id}`);
    const secret = secrets[provider.id];
    return typeof secret === 'string' ? secret : JSON.stringify(secret);
  };
  source.calls = 0;
  return source;
}

/** The content of a sample, as `authenticRequest` takes it. */
export function contentOf(sample: Sample): { body?: Buffer; query?: string } {
  return sample.query !== undefined ? { query: sample.query } : { body: sample.body };
}

let requestCounter = 0;

/** When unit-test requests are received unless a test says otherwise. */
const DEFAULT_RECEIVED_AT = '2025-01-01T10:00:00.000Z';

/** Everything a CallbackRequest carries beyond what the sender chose. */
export interface RequestContext {
  readonly sourceIp?: string;
  readonly requestId?: string;
  readonly receivedAt?: string;
}

/**
 * The CallbackRequest API Gateway would hand the core for a request built by `authenticRequest`:
 * the route's path parameters taken from the path (the token one as `pathToken`), the query split
 * off, header names lower-cased.
 */
export function toRequest(provider: AnyProvider, sent: SampleRequest, context: RequestContext = {}): CallbackRequest {
  const [pathname, rawQuery = ''] = splitOnce(sent.path, '?');
  const segments = pathname.split('/');
  const pathParameters: Record<string, string> = {};
  provider.route.path.split('/').forEach((part, index) => {
    const name = /^\{(\w+)\}$/.exec(part)?.[1];
    if (name && segments[index]) pathParameters[name] = decodeURIComponent(segments[index]);
  });
  const token = provider.route.tokenParameter ? pathParameters[provider.route.tokenParameter] : undefined;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(sent.headers)) headers[name.toLowerCase()] = value;
  requestCounter += 1;
  return {
    method: sent.method,
    headers,
    body: sent.body ?? Buffer.alloc(0),
    rawQuery,
    ...(token ? { pathToken: token } : {}),
    ...(Object.keys(pathParameters).length ? { pathParameters } : {}),
    sourceIp: context.sourceIp ?? '203.0.113.10',
    requestId: context.requestId ?? `unit-request-${requestCounter}`,
    receivedAt: context.receivedAt ?? DEFAULT_RECEIVED_AT,
  };
}

function splitOnce(value: string, separator: string): [string, string?] {
  const at = value.indexOf(separator);
  return at < 0 ? [value] : [value.slice(0, at), value.slice(at + 1)];
}

/** An authentic request for the content, signed/keyed with `signingSecret`. */
export function authentic(
  provider: AnyProvider,
  content: { body?: Buffer; query?: string },
  signingSecret: Record<string, unknown> = UNIT_SECRETS[provider.id],
  context: RequestContext = {},
): CallbackRequest {
  // Sent when it is received (a signature over a timestamp must be fresh at that time).
  return toRequest(provider, authenticRequest(provider, signingSecret, content, new Date(context.receivedAt ?? DEFAULT_RECEIVED_AT)), context);
}

/** What one ingest call did: its answer, the messages it queued and the log lines it wrote. */
export interface IngestRun {
  readonly response: IngestResponse;
  /** Message bodies exactly as handed to the queue. */
  readonly sent: string[];
  /** The same, parsed. */
  readonly messages: QueueMessage[];
  readonly lines: string[];
}

export interface IngestOptions {
  /** The secret the receiver holds (defaults to UNIT_SECRETS); a string is served as is. */
  readonly secret?: unknown;
  readonly source?: SecretSource;
  /** The queue: defaults to one that accepts everything. */
  readonly send?: (body: string) => Promise<void>;
  /** The level below which lines are dropped, as Lambda's applicationLogLevel sets it (default: none dropped). */
  readonly logLevel?: string;
}

/** Run the real ingest core once, with a recording queue and a capturing logger. */
export async function runIngest(provider: AnyProvider, request: CallbackRequest, options: IngestOptions = {}): Promise<IngestRun> {
  const sent: string[] = [];
  const lines: string[] = [];
  const source = options.source ?? fixedSecretSource({ [provider.id]: options.secret ?? UNIT_SECRETS[provider.id] });
  const response = await ingest(provider, request, {
    secrets: createSecretCache(source),
    send: async (body) => {
      if (options.send) await options.send(body);
      sent.push(body);
    },
    log: createLogger({ service: 'unit', write: (line) => lines.push(line), minLevel: options.logLevel ?? 'TRACE' }),
  });
  return { response, sent, messages: sent.map((body) => QueueMessageSchema.parse(JSON.parse(body))), lines };
}

/** The body as JSON with one top-level field removed (or the query without that parameter). */
export function withoutField(content: { body?: Buffer; query?: string }, field: string): { body?: Buffer; query?: string } {
  if (content.query !== undefined) {
    const params = new URLSearchParams(content.query);
    params.delete(field);
    return { query: params.toString() };
  }
  const json = JSON.parse(content.body!.toString('utf8')) as Record<string, unknown>;
  delete json[field];
  return { body: Buffer.from(JSON.stringify(json)) };
}

/** An API Gateway HTTP API (payload 2.0) event, as the real service sends it. */
export function apiGatewayEvent(overrides: {
  method: string;
  rawPath: string;
  rawQueryString?: string;
  headers?: Record<string, string>;
  body?: string;
  isBase64Encoded?: boolean;
  pathParameters?: Record<string, string>;
  sourceIp?: string;
  requestId?: string;
  timeEpoch?: number;
}): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: `${overrides.method} ${overrides.rawPath}`,
    rawPath: overrides.rawPath,
    rawQueryString: overrides.rawQueryString ?? '',
    headers: overrides.headers ?? {},
    requestContext: {
      accountId: '123456789012',
      apiId: 'api-id',
      domainName: 'api-id.execute-api.eu-west-1.amazonaws.com',
      domainPrefix: 'api-id',
      http: {
        method: overrides.method,
        path: overrides.rawPath,
        protocol: 'HTTP/1.1',
        sourceIp: overrides.sourceIp ?? '198.51.100.7',
        userAgent: 'unit-test',
      },
      requestId: overrides.requestId ?? 'Jd0ZJjVsoAMEMyA=',
      routeKey: `${overrides.method} ${overrides.rawPath}`,
      stage: '$default',
      time: '01/Jan/2025:10:00:00 +0000',
      timeEpoch: overrides.timeEpoch ?? Date.UTC(2025, 0, 1, 10, 0, 0),
    },
    isBase64Encoded: overrides.isBase64Encoded ?? false,
    ...(overrides.body !== undefined ? { body: overrides.body } : {}),
    ...(overrides.pathParameters ? { pathParameters: overrides.pathParameters } : {}),
  };
}
