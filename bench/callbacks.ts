import { randomBytes } from 'node:crypto';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { AnyProvider } from '../functions/providers/provider.ts';
import { authenticRequest, listSamples, type Sample, type SampleRequest } from '../local/samples.ts';

/**
 * Authentic, distinct callbacks for the benchmark, made from the provider samples
 * (test/fixtures/<provider>/) by giving each one its own subject id, so that every callback is a
 * new event that must be stored (nothing is deduplicated away).
 */

/** Benchmark secrets: obviously fake; TemboPlus points at a loopback simulator. */
export function benchSecrets(simulatorPort: number) {
  return {
    telesign: { customerId: 'BENCH-CUSTOMER-1', apiKey: Buffer.from('bench-telesign-api-key-0123456789abcdef').toString('base64') },
    esms: { token: 'bench-esms-token-5f4e3d2c1b' },
    temboplus: { token: 'bench-tembo-token-9a8b7c6d', apiToken: 'bench-tembo-api-token', baseUrl: `http://127.0.0.1:${simulatorPort}` },
    relid: { token: 'bench-relid-token-1a2b3c4d' },
    identomat: { callbackApiKey: 'bench-identomat-key-7e8f9a0b' },
  } satisfies Record<string, Record<string, string>>;
}
export type BenchSecrets = ReturnType<typeof benchSecrets>;

/** The JSON field naming each provider's subject (eSMS: a query parameter, handled apart). */
const SUBJECT_FIELD: Record<string, string> = {
  telesign: 'reference_id',
  temboplus: 'partnerReference',
  relid: 'notification_uuid',
  identomat: 'sessionId',
};

/** Replace a JSON string field's value in the raw text, keeping every other byte as the sample has it. */
function withJsonField(body: Buffer, field: string, value: string): Buffer {
  const text = body.toString('utf8');
  const pattern = new RegExp(`("${field}"\\s*:\\s*)"(?:[^"\\\\]|\\\\.)*"`);
  if (!pattern.test(text)) throw new Error(`sample has no "${field}" string field`);
  return Buffer.from(text.replace(pattern, `$1${JSON.stringify(value)}`));
}

/** eSMS: SMSID (or ReferenceId for voice results) replaced in the raw query. */
function withEsmsId(query: string, value: string): string {
  for (const name of ['SMSID', 'ReferenceId']) {
    const pattern = new RegExp(`(^|&)(${name})=[^&]*`, 'i');
    if (pattern.test(query)) return query.replace(pattern, `$1$2=${encodeURIComponent(value)}`);
  }
  throw new Error('eSMS sample has neither SMSID nor ReferenceId');
}

/** A copy of a sample whose subject id is `subjectId`. */
export function withSubject(provider: AnyProvider, sample: Sample, subjectId: string): Sample {
  if (provider.id === 'esms') return { ...sample, query: withEsmsId(sample.query ?? '', subjectId) };
  return { ...sample, body: withJsonField(sample.body ?? Buffer.alloc(0), SUBJECT_FIELD[provider.id], subjectId) };
}

/** A run-unique prefix for subject ids, so repeated runs against one table never collide. */
export const RUN_ID = randomBytes(4).toString('hex');

export interface BenchCallback {
  readonly provider: AnyProvider;
  readonly subjectId: string;
  readonly sample: Sample;
  readonly request: SampleRequest;
}

const samplesByProvider = new Map<string, Sample[]>();

/** A callback made from a provider's `index`-th sample (cycling), about `subjectId`. */
export function callbackFor(provider: AnyProvider, secret: Record<string, unknown>, index: number, subjectId: string): BenchCallback {
  let samples = samplesByProvider.get(provider.id);
  if (!samples) samplesByProvider.set(provider.id, (samples = listSamples(provider.id)));
  const sample = withSubject(provider, samples[index % samples.length], subjectId);
  return { provider, subjectId, sample, request: authenticRequest(provider, secret, sample) };
}

/** The i-th distinct callback of a provider: its own subject, `bench-<run>-<tag>-<i>`. */
export function distinctCallback(provider: AnyProvider, secret: Record<string, unknown>, index: number, tag = 'b'): BenchCallback {
  return callbackFor(provider, secret, index, `bench-${RUN_ID}-${tag}-${index}`);
}

/** The API Gateway HTTP API (payload v2.0) event a request becomes, as the local HTTP API builds it. */
export function apiGatewayEvent(provider: AnyProvider, request: SampleRequest, token: string | undefined, requestId = 'bench-request'): APIGatewayProxyEventV2 {
  const [path, rawQueryString = ''] = request.path.split('?');
  const now = Date.now();
  const body = request.body;
  return {
    version: '2.0',
    routeKey: `${provider.route.method} ${provider.route.path}`,
    rawPath: path,
    rawQueryString,
    headers: { host: 'example.execute-api.us-east-1.amazonaws.com', 'user-agent': 'bench', ...request.headers },
    ...(token !== undefined ? { pathParameters: { token } } : {}),
    isBase64Encoded: false,
    ...(body && body.length > 0 ? { body: body.toString('utf8') } : {}),
    requestContext: {
      accountId: '000000000000',
      apiId: 'bench',
      domainName: 'example.execute-api.us-east-1.amazonaws.com',
      domainPrefix: 'example',
      http: { method: request.method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'bench' },
      requestId,
      routeKey: `${provider.route.method} ${provider.route.path}`,
      stage: '$default',
      time: new Date(now).toUTCString(),
      timeEpoch: now,
    },
  };
}
