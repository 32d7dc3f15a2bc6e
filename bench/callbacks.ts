import { randomBytes } from 'node:crypto';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { AnyProvider } from '../functions/providers/provider.ts';
import { authenticRequest, listSamples, type Sample, type SampleRequest } from '../local/samples.ts';
import { kitOf, secretsFor } from '../test/providers/index.ts';

/**
 * Authentic, distinct callbacks for the benchmark, made from the provider samples
 * (test/fixtures/<provider>/) by giving each one its own subject id (the provider's kit knows where
 * it is), so that every callback is a new event that must be stored (nothing is deduplicated away).
 */

/** Every provider's secret, by provider id (the shape of a secrets file). */
export type BenchSecrets = Record<string, Record<string, unknown>>;

/**
 * Benchmark secrets: each kit's test secret, tagged `bench`. The status endpoints stay the kits'
 * unreachable defaults: the pipeline points them at its simulators (`--simulators`), and the
 * in-process runs answer them without a network.
 */
export function benchSecrets(): BenchSecrets {
  return secretsFor('bench');
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
  const sample = kitOf(provider).withSubject(samples[index % samples.length], subjectId);
  return { provider, subjectId, sample, request: authenticRequest(provider, secret, sample) };
}

/**
 * One subject's life as the provider's kit (test/providers) plays it: its callbacks oldest first,
 * signed as the provider sends them. `name` picks the subject and its course.
 */
export function lifeCallbacks(provider: AnyProvider, secret: Record<string, unknown>, name: string): BenchCallback[] {
  return kitOf(provider)
    .life(name, secret)
    .map((content, index) => {
      const sample: Sample = { provider: provider.id, name: `life ${name} #${index}`, ...content };
      return { provider, subjectId: name, sample, request: authenticRequest(provider, secret, sample) };
    });
}

/** The i-th distinct callback of a provider: its own subject, `bench-<run>-<tag>-<i>`, and its own phone number. */
export function distinctCallback(provider: AnyProvider, secret: Record<string, unknown>, index: number, tag = 'b'): BenchCallback {
  const callback = callbackFor(provider, secret, index, `bench-${RUN_ID}-${tag}-${index}`);
  const sample = withOwnNumber(callback.sample, index);
  return sample === callback.sample ? callback : { ...callback, sample, request: authenticRequest(provider, secret, sample) };
}

/**
 * An SMS instruction (a body with a `phoneNumber`: Identomat's) to a Georgian mobile number of its
 * own, per run and index: the relay sends at most `relayMaxPerNumberPerHour` (5) SMS to one number
 * an hour, and a run sends dozens, which would otherwise be refused rather than timed.
 */
function withOwnNumber(sample: Sample, index: number): Sample {
  if (!sample.body) return sample;
  let json: unknown;
  try {
    json = JSON.parse(sample.body.toString('utf8'));
  } catch {
    return sample;
  }
  if (!json || typeof json !== 'object' || typeof (json as Record<string, unknown>).phoneNumber !== 'string') return sample;
  const digits = String((Number.parseInt(RUN_ID, 16) + index) % 10_000_000).padStart(7, '0');
  return { ...sample, body: Buffer.from(JSON.stringify({ ...json, phoneNumber: `+99551${digits}` })) };
}

/**
 * The route's path parameters in a request path, by name, as the local HTTP API reads them
 * (`{}` for a route without any); undefined when the path is not the route's.
 */
export function matchRoute(provider: AnyProvider, path: string): Record<string, string> | undefined {
  const pattern = new RegExp(`^${provider.route.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, '(?<$1>[^/]+)')}$`);
  const match = pattern.exec(path);
  return match ? { ...match.groups } : undefined;
}

/** The API Gateway HTTP API (payload v2.0) event a request becomes, as the local HTTP API builds it. */
export function apiGatewayEvent(provider: AnyProvider, request: SampleRequest, requestId = 'bench-request'): APIGatewayProxyEventV2 {
  const [path, rawQueryString = ''] = request.path.split('?');
  const pathParameters = matchRoute(provider, path) ?? {};
  const now = Date.now();
  const body = request.body;
  return {
    version: '2.0',
    routeKey: `${provider.route.method} ${provider.route.path}`,
    rawPath: path,
    rawQueryString,
    headers: { host: 'example.execute-api.us-east-1.amazonaws.com', 'user-agent': 'bench', ...request.headers },
    ...(Object.keys(pathParameters).length > 0 ? { pathParameters } : {}),
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
