import { createHash } from 'node:crypto';
import type { CallbackRequest } from '../../functions/providers/provider.ts';
import { standardWebhooks } from '../../functions/providers/standard-webhooks.ts';
import { altered, editJson, hexOf, jsonContent, lifeDice, type AuthVector, type ProviderKit } from './kit.ts';

/** A whsec_ secret of 32 bytes, recognisably the suite's. */
function whsec(seed: string): string {
  return `whsec_${createHash('sha256').update(`standard-webhooks:${seed}`).digest('base64')}`;
}

/** The source every test secret names, and the settings that read the fixtures. */
function source(tag: string) {
  return `${tag.toLowerCase().replace(/[^a-z0-9-]/g, '-')}-billing`.slice(0, 63);
}
const SETTINGS = {
  subjectField: 'data.id',
  outcomes: { 'invoice.paid': 'succeeded', 'invoice.payment_failed': 'failed', 'contact.created': 'succeeded' },
} as const;

/** The secret's only source's entry, for kits that edit it. */
function onlySource(secret: Record<string, unknown>): [string, Record<string, unknown>] {
  const [entry] = Object.entries(secret.sources as Record<string, Record<string, unknown>>);
  return entry;
}
function withSourceSecret(secret: Record<string, unknown>, value: string): Record<string, unknown> {
  const [name, settings] = onlySource(secret);
  return { ...secret, sources: { [name]: { ...settings, secret: value } } };
}

/**
 * The specification's signing vector, repeated in every reference library's tests
 * (standard-webhooks/standard-webhooks libraries/*): secret, id, timestamp, body and signature.
 */
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: '1614265330',
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};
function vectorRequest(changes: { headers?: Record<string, string | undefined>; body?: string; receivedAt?: string; source?: string } = {}): CallbackRequest {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'webhook-id': VECTOR.id, 'webhook-timestamp': VECTOR.timestamp, 'webhook-signature': VECTOR.signature, ...changes.headers },
    body: Buffer.from(changes.body ?? VECTOR.body),
    rawQuery: '',
    pathParameters: { source: changes.source ?? 'vector' },
    sourceIp: '203.0.113.10',
    requestId: 'vector',
    // "now" is the vector's own timestamp, as the reference libraries' tests set it.
    receivedAt: changes.receivedAt ?? new Date(Number(VECTOR.timestamp) * 1000).toISOString(),
  };
}
const vectorSecret = { sources: { vector: { secret: VECTOR.secret } } };
const vectors: AuthVector[] = [
  { name: "the specification's vector", secret: vectorSecret, request: vectorRequest(), accepted: true },
  { name: 'its signature with the last character changed (the Python library test)', secret: vectorSecret, request: vectorRequest({ headers: { 'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=' } }), accepted: false },
  { name: 'the right signature among others, during a rotation', secret: vectorSecret, request: vectorRequest({ headers: { 'webhook-signature': `v1,Zm9vYmFyYmF6cXV1eGZvb2JhcmJhenF1dXhmb29iYXI= ${VECTOR.signature} v1a,aGVsbG8=` } }), accepted: true },
  { name: 'the body changed', secret: vectorSecret, request: vectorRequest({ body: '{"test": 2432232315}' }), accepted: false },
  { name: 'the id changed', secret: vectorSecret, request: vectorRequest({ headers: { 'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJel' } }), accepted: false },
  { name: 'the timestamp changed', secret: vectorSecret, request: vectorRequest({ headers: { 'webhook-timestamp': '1614265331' } }), accepted: false },
  { name: 'the signature header removed', secret: vectorSecret, request: vectorRequest({ headers: { 'webhook-signature': undefined } }), accepted: false },
  { name: 'the signature truncated', secret: vectorSecret, request: vectorRequest({ headers: { 'webhook-signature': VECTOR.signature.slice(0, -4) } }), accepted: false },
  { name: 'an unknown signature scheme only (v2)', secret: vectorSecret, request: vectorRequest({ headers: { 'webhook-signature': VECTOR.signature.replace('v1,', 'v2,') } }), accepted: false },
  { name: 'received 5 minutes after it was sent (the tolerance, inclusive)', secret: vectorSecret, request: vectorRequest({ receivedAt: new Date((Number(VECTOR.timestamp) + 300) * 1000).toISOString() }), accepted: true },
  { name: 'received 5 minutes and 1 second after it was sent (a replay)', secret: vectorSecret, request: vectorRequest({ receivedAt: new Date((Number(VECTOR.timestamp) + 301) * 1000).toISOString() }), accepted: false },
  { name: 'received 5 minutes and 1 second before it claims to be sent', secret: vectorSecret, request: vectorRequest({ receivedAt: new Date((Number(VECTOR.timestamp) - 301) * 1000).toISOString() }), accepted: false },
  { name: 'sent to another source', secret: vectorSecret, request: vectorRequest({ source: 'someone-else' }), accepted: false },
  { name: 'a previous secret during a rotation', secret: { sources: { vector: { secret: whsec('new') } }, previous: { sources: { vector: { secret: VECTOR.secret } } } }, request: vectorRequest(), accepted: true },
];

/** Standard Webhooks: a `v1` HMAC signature over id.timestamp.body, per source, within 5 minutes. */
export const standardWebhooksKit: ProviderKit = {
  provider: standardWebhooks,
  route: 'POST /callbacks/standard-webhooks/{source}',
  secret: (tag) => ({ sources: { [source(tag)]: { secret: whsec(tag), ...SETTINGS } } }),
  credentials(secret) {
    const all = [secret.sources, (secret.previous as { sources?: unknown } | undefined)?.sources] as (Record<string, { secret?: string }> | undefined)[];
    return all.flatMap((sources) => Object.values(sources ?? {}).map((entry) => entry.secret)).filter((value): value is string => typeof value === 'string');
  },
  wrongSecrets: (secret) => [
    { name: 'another whsec_ secret', secret: withSourceSecret(secret, whsec('someone-else')) },
    { name: 'the secret of another source', secret: { ...secret, sources: { 'another-source': { ...onlySource(secret)[1], secret: onlySource(secret)[1].secret } } } },
  ],
  rotation(secret) {
    const [name, settings] = onlySource(secret);
    const old = whsec(`old-${String(settings.secret)}`);
    return {
      receiver: { ...secret, previous: { sources: { [name]: { secret: old } } } },
      current: secret,
      previous: withSourceSecret(secret, old),
      neither: withSourceSecret(secret, whsec(`other-${String(settings.secret)}`)),
    };
  },
  requiredFields: ['data'],
  sample: 'invoice-paid',
  otherStatus: (content) => editJson(content, (json) => void (json.type = 'invoice.payment_failed')),
  withSubject(sample, subjectId) {
    const json = JSON.parse(sample.body!.toString('utf8')) as { data?: Record<string, unknown> };
    return { ...sample, body: Buffer.from(JSON.stringify({ ...json, data: { ...json.data, id: subjectId } })) };
  },
  withoutCredential(request) {
    const { 'webhook-signature': _removed, ...headers } = request.headers;
    return { ...request, headers };
  },
  tampered(request) {
    // The id changed after signing: the signature covers it.
    return { ...request, headers: { ...request.headers, 'webhook-id': altered(request.headers['webhook-id'] ?? 'msg_x') } };
  },
  vectors,

  // --- hostile-input suite (test/fuzz) ---

  // --- fault suite (test/faults) ---
  // An invoice created (not declared in the secret's outcomes: pending), then paid or failed
  // (declared, so terminal), each event with its own time.
  life(name) {
    const dice = lifeDice(name);
    const id = `in_${hexOf(`standard-webhooks/${name}`, 17)}`;
    const event = (type: string, step: number) =>
      jsonContent({ type, timestamp: dice.at(step).toISOString(), data: { id, amount: 4200, currency: 'USD' } });
    return [event('invoice.created', 0), event(dice.succeeds ? 'invoice.paid' : 'invoice.payment_failed', 1)];
  },
  sendsStatusTime: true,

  // --- benchmark (bench/) ---
};
