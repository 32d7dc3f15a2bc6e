import { createHash } from 'node:crypto';
import type { Arbitrary } from 'fast-check';
import type { CallbackRequest } from '../../functions/providers/provider.ts';
import { signingKey, standardWebhooks, standardWebhooksSignature, TIMESTAMP_TOLERANCE_SECONDS } from '../../functions/providers/standard-webhooks.ts';
import { altered, editJson, hexOf, jsonContent, lifeDice, type AuthVector, type Dressed, type Forgery, type FuzzContent, type FuzzTools, type Json, type ProviderKit } from './kit.ts';

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
  // 43 base64 characters carry 258 bits: the last one's two lowest are unused, so `…1OE=` and `…1OF=`
  // decode to the same 32 bytes. The reference libraries compare the text, which only the first spells.
  { name: 'its signature spelled with other unused bits in the last character (the same bytes, not the same text)', secret: vectorSecret, request: vectorRequest({ headers: { 'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF=' } }), accepted: false },
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

// --- hostile-input suite (test/fuzz) ---

/** Statuses the test secret declares an outcome for, statuses it does not, near misses and Object.prototype names. */
const FUZZ_TYPES = ['invoice.paid', 'invoice.payment_failed', 'contact.created', 'invoice.created', 'customer.deleted', 'Invoice.Paid', 'invoice.paid ', '', 'constructor', '__proto__', 'toString', 'hasOwnProperty'];

/**
 * The fields that decide an event's meaning, valid every way (the payload's members are the
 * sender's: the schema checks none of them): the status (`type`) as text, declared or not, or not
 * text at all; the event time in any form or none.
 */
function eventFields({ fc }: FuzzTools): Arbitrary<Json> {
  return fc.record({
    type: fc.oneof({ arbitrary: fc.constantFrom(...FUZZ_TYPES), weight: 6 }, { arbitrary: fc.constantFrom(42, null, true, {}, [], 'x'.repeat(300), undefined), weight: 1 }),
    timestamp: fc.constantFrom('2022-11-03T20:30:00.000000Z', '2022-11-03T20:30:00Z', 1667507400, '9999-12-31T23:59:59Z', 'not-a-time', null, undefined),
  });
}

/** Events about a few shared objects (statuses that change back and forth, identical bodies that are retries of one event). */
function objectTraffic(tools: FuzzTools): Arbitrary<FuzzContent> {
  const { fc } = tools;
  return fc.record({ fields: eventFields(tools), id: fc.constantFrom('fuzz-object-a', 'fuzz-object-b', 'fuzz-object-c') }).map(({ fields, id }) => {
    const json: Json = { ...fields, data: { id } };
    for (const key of Object.keys(json)) if (json[key] === undefined) delete json[key];
    return { body: Buffer.from(JSON.stringify(json)), query: '', intent: 'valid' as const, variant: 'object-sequence' };
  });
}

/**
 * Forgeries of the signed headers and the source: a header left out, garbage, another secret, a
 * signature taken from another body, the id or the source changed, a timestamp outside the
 * tolerance (signed), an id or a timestamp the spec refuses (signed), the signature cut, extended
 * or re-encoded, several signatures with or without the right one, the secret misspelled.
 * Equivalent ones (base64 that decodes to the same bytes, a key spelled so it decodes the same, a
 * timestamp within the tolerance) are authentic.
 */
function signatureForgeries({ fc, wrongSpellings }: FuzzTools, secret: Record<string, unknown>, valid: Arbitrary<FuzzContent>): Arbitrary<Forgery>[] {
  const [source, settings] = onlySource(secret);
  const key = String(settings.secret);
  const now = () => Math.floor(Date.now() / 1000);
  /** Whether a signature header still carries the right signature, spelled exactly as signed (the text is compared, as the reference libraries do). */
  const carriesRight = (header: string, request: Dressed) => header.split(' ').includes(request.headers['webhook-signature']!);
  /** The request with some headers changed (undefined: removed), perhaps another source; authentic as `authentic` says. */
  const forge =
    (variant: string, change: (request: Dressed, content: FuzzContent) => { headers?: Record<string, string | undefined>; source?: string; query?: string; authentic: boolean }): Forgery =>
    (request, content) => {
      const changed = change(request, content);
      const headers = Object.fromEntries(Object.entries({ ...request.headers, ...changed.headers }).filter((entry): entry is [string, string] => entry[1] !== undefined));
      const pathParameters = changed.source === undefined ? request.pathParameters : { ...request.pathParameters, source: changed.source };
      return { dressed: { ...request, headers, pathParameters, query: changed.query ?? request.query, authentic: request.authentic && changed.authentic, variant }, content };
    };
  /** New id and timestamp headers, signed as the sender would (with `signingSecret`). */
  const signed = (content: FuzzContent, id: string, timestamp: string, signingSecret = key) => ({
    'webhook-id': id,
    'webhook-timestamp': timestamp,
    'webhook-signature': `v1,${standardWebhooksSignature(signingSecret, id, timestamp, content.body)}`,
  });
  const whsecOf = (bytes: Uint8Array) => `whsec_${Buffer.from(bytes).toString('base64')}`;
  const respell = (signature: string, form: string) =>
    form === 'no-padding' ? signature.replace(/=+$/, '') : form === 'base64url' ? Buffer.from(signature, 'base64').toString('base64url') : form === 'hex' ? Buffer.from(signature, 'base64').toString('hex') : form === 'cut' ? signature.slice(0, -4) : `${signature}AAAA`;
  return [
    fc.constantFrom('webhook-signature', 'webhook-id', 'webhook-timestamp').map((name) => forge(`missing:${name}`, () => ({ headers: { [name]: undefined }, authentic: false }))),
    fc.constantFrom('', 'v1', 'v1,', 'v1,abc', 'V1,SIG', 'v2,SIG', 'v1a,SIG', 'SIG', 'v1 SIG', 'v1,SIG,').map((shape) =>
      forge('garbage-signature', (request) => {
        const header = shape.replace('SIG', request.headers['webhook-signature']!.slice(3));
        return { headers: { 'webhook-signature': header }, authentic: carriesRight(header, request) };
      }),
    ),
    fc.uint8Array({ minLength: 24, maxLength: 64 }).map((bytes) =>
      forge('other-secret', (request, content) => ({ headers: signed(content, request.headers['webhook-id']!, request.headers['webhook-timestamp']!, whsecOf(bytes)), authentic: false })),
    ),
    // A genuine signature, with its id and timestamp, from another body.
    valid.map((other) =>
      forge('replayed-signature', (request, content) => ({ headers: signed(other, request.headers['webhook-id']!, request.headers['webhook-timestamp']!), authentic: other.body.equals(content.body) })),
    ),
    fc.constant(forge('other-id', (request) => ({ headers: { 'webhook-id': altered(request.headers['webhook-id']!) }, authentic: false }))),
    wrongSpellings(source).map((spelling) => forge(`wrong-source:${spelling.how}`, () => ({ source: spelling.value, authentic: spelling.value === source }))),
    // Ahead of our clock by a minute past the tolerance at least: a request is handled a moment
    // after it is signed (with our second, `now()`), and one signed 301 s ahead is within the
    // tolerance once the clock reaches the next second. The exact edges are in `vectors` above.
    fc.oneof(fc.integer({ min: TIMESTAMP_TOLERANCE_SECONDS + 1, max: 10 * 365 * 86_400 }), fc.integer({ min: -10 * 365 * 86_400, max: -(TIMESTAMP_TOLERANCE_SECONDS + 60) })).map((offset) =>
      forge(offset > 0 ? 'stale-timestamp' : 'future-timestamp', (request, content) => ({ headers: signed(content, request.headers['webhook-id']!, String(now() - offset)), authentic: false })),
    ),
    // Within the tolerance: still the real thing.
    fc.integer({ min: -(TIMESTAMP_TOLERANCE_SECONDS - 60), max: TIMESTAMP_TOLERANCE_SECONDS - 60 }).map((offset) =>
      forge('timestamp-within-tolerance', (request, content) => ({ headers: signed(content, request.headers['webhook-id']!, String(now() - offset)), authentic: true })),
    ),
    fc.constantFrom('ms', 'decimal', 'signed', 'hex', 'empty').map((form) =>
      forge(`timestamp-${form}`, (request, content) => {
        const seconds = now();
        const timestamp = form === 'ms' ? String(seconds * 1000) : form === 'decimal' ? `${seconds}.5` : form === 'signed' ? `+${seconds}` : form === 'hex' ? `0x${seconds.toString(16)}` : '';
        return { headers: signed(content, request.headers['webhook-id']!, timestamp), authentic: false };
      }),
    ),
    fc.constantFrom('msg.dotted', 'x'.repeat(257)).map((id) => forge('unacceptable-id', (request, content) => ({ headers: signed(content, id, request.headers['webhook-timestamp']!), authentic: false }))),
    fc.constantFrom('no-padding', 'base64url', 'hex', 'cut', 'extended').map((form) =>
      forge(`signature-${form}`, (request) => {
        const header = `v1,${respell(request.headers['webhook-signature']!.slice(3), form)}`;
        return { headers: { 'webhook-signature': header }, authentic: carriesRight(header, request) };
      }),
    ),
    fc.uint8Array({ minLength: 32, maxLength: 32 }).chain((bytes) =>
      fc.constantFrom('right-among-others', 'none-right').map((how) =>
        forge(`several-signatures:${how}`, (request) => {
          const other = `v1,${Buffer.from(bytes).toString('base64')}`;
          const header = how === 'none-right' ? `${other} v1,${Buffer.alloc(32).toString('base64')}` : `${other} ${request.headers['webhook-signature']}`;
          return { headers: { 'webhook-signature': header }, authentic: carriesRight(header, request) };
        }),
      ),
    ),
    fc.constant(forge('signature-in-query', (request) => ({ headers: { 'webhook-signature': undefined }, query: `webhook-signature=${encodeURIComponent(request.headers['webhook-signature']!)}`, authentic: false }))),
    // The secret misspelled: it signs like the right one only if it decodes to the same key.
    wrongSpellings(key).map((spelling) =>
      forge(`wrong-secret:${spelling.how}`, (request, content) => {
        const wrong = signingKey(spelling.value);
        if (!wrong) return { headers: { 'webhook-signature': 'v1,' }, authentic: false };
        return { headers: signed(content, request.headers['webhook-id']!, request.headers['webhook-timestamp']!, `whsec_${wrong.toString('base64')}`), authentic: wrong.equals(signingKey(key)!) };
      }),
    ),
  ];
}

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
  storedSubject: (subjectId, secret) => `${onlySource(secret)[0]}/${subjectId}`,
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
  fuzz: {
    content: {
      kind: 'json',
      // The test secret reads the subject from `data.id` (short text or a number).
      subject: { path: ['data', 'id'], max: 256 },
      fields: [
        { path: ['data'], kind: 'object' },
        { path: ['data', 'id'], kind: 'text', min: 1, max: 256 },
      ],
      // The status and the event time are read whatever they hold.
      looseUsed: [['type'], ['timestamp']],
      vary: eventFields,
      more: (tools) => ({ valid: (samples) => tools.fc.oneof({ arbitrary: samples, weight: 3 }, { arbitrary: objectTraffic(tools), weight: 1 }) }),
    },
    // The signature covers the exact bytes.
    authenticatesBody: true,
    forgeries: (tools, { secret, valid }) => signatureForgeries(tools, secret, valid),
  },

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
