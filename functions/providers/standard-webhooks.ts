import { createHmac, timingSafeEqual } from 'node:crypto';
import { shortHash } from '../shared/hash.ts';
import * as z from '../shared/zod.ts';
import { readJsonBody, schemaMismatch, toIsoTime } from './common.ts';
import { secretVersions, type Outcome, type Provider } from './provider.ts';
import { secretWithRotation } from './secret-schema.ts';

/**
 * Standard Webhooks (spec v1.0.0): the open scheme many providers now sign their webhooks with.
 * Each sender is a *source* with its own signing secret: `POST /callbacks/standard-webhooks/{source}`.
 *
 * - Headers: `webhook-id` (unique per event, the same on every retry: the idempotency key),
 *   `webhook-timestamp` (integer Unix seconds of the attempt), `webhook-signature` (a space-delimited
 *   list of `v1,<base64 HMAC-SHA256>`; several during a key rotation, any one may match).
 * - Signed content: `{webhook-id}.{webhook-timestamp}.{exact body bytes}`, keyed with the
 *   base64-decoded secret (`whsec_` prefix removed; 24 to 64 bytes).
 * - Replays: the timestamp must be within 5 minutes of our receive time, either way (the spec says
 *   "some allowable tolerance"; 5 minutes is what every reference library uses).
 * - Payload (recommended, not required): `{ "type", "timestamp", "data" }`.
 * - Subjects are per source, `<source>/<id>` (the `subjectField`'s value, or the `webhook-id`): each
 *   sender names its own objects, so the same id from two senders never shares a state.
 * @see https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
 */

/** The spec's tolerance between the attempt's timestamp and our clock, either way. */
export const TIMESTAMP_TOLERANCE_SECONDS = 5 * 60;

/** The spec: "At least 24 bytes (192 bits, 512 maximum)". */
const MIN_KEY_BYTES = 24;
const MAX_KEY_BYTES = 64;

/** The key bytes of a `whsec_…` secret, or undefined when it is not one. */
export function signingKey(secret: string): Buffer | undefined {
  const base64 = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) return undefined;
  const key = Buffer.from(base64, 'base64');
  return key.length >= MIN_KEY_BYTES && key.length <= MAX_KEY_BYTES ? key : undefined;
}

const whsecSecret = z.string().check(
  z.refine((value) => !value.startsWith('REPLACE_ME'), 'still holds the placeholder; fill in the real value'),
  z.refine((value) => signingKey(value) !== undefined, `must be a whsec_ secret: base64 of ${MIN_KEY_BYTES} to ${MAX_KEY_BYTES} bytes`),
);
/** A dot path into the payload (`data.id`): letters, digits, `_` and `-` between the dots. */
const fieldPath = z.string().check(z.regex(/^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$/, 'expected a dot path such as data.id'));
const outcome = z.enum(['pending', 'succeeded', 'failed', 'unknown']);

/** One sender: its signing secret and, optionally, how to read its payloads. */
const SourceSchema = z.object({
  secret: whsecSecret,
  /** Where the subject is (`data.id`): events about one object then share its state. Default: each event (`webhook-id`) is its own subject. */
  subjectField: z.optional(fieldPath),
  /** Where the status is. @default "type" */
  statusField: z.optional(fieldPath),
  /** What each status means; a status not listed is pending (never success). */
  outcomes: z.optional(z.record(z.string().check(z.minLength(1), z.maxLength(64)), outcome)),
  /** Statuses after which nothing changes. @default the statuses listed as succeeded, failed or unknown */
  terminal: z.optional(z.array(z.string().check(z.maxLength(64))).check(z.maxLength(64))),
});
export type StandardWebhooksSource = z.infer<typeof SourceSchema>;

const sourceName = z.string().check(z.regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'source names are lower-case letters, digits and dashes'));

/**
 * `{ "sources": { "<source>": { "secret": "whsec_…", "subjectField"?, "statusField"?, "outcomes"?, "terminal"? } } }`;
 * during a rotation `"previous": { "sources": { "<source>": { "secret": "whsec_old…" } } }`.
 */
export const StandardWebhooksSecretSchema = secretWithRotation({
  sources: z.record(sourceName, SourceSchema).check(z.refine((sources) => Object.keys(sources).length > 0, 'name at least one source')),
}).check(
  z.superRefine((secret, context) => {
    const shared = sourcesSharingAKey(secret);
    if (shared) {
      context.addIssue({
        code: 'custom',
        path: shared.path,
        message: `sources ${shared.first} and ${shared.second} share a signing key: the signature does not cover the source, so either sender could sign callbacks stored as the other's; give each its own secret`,
      });
    }
  }),
);

/**
 * Two sources whose keys (current or `previous`) are the same bytes, with where the second one's is
 * (`previous.sources.<name>` when that is its previous key), or undefined. The signed
 * content is `id.timestamp.body` (the specification), not the URL: with one key for two sources,
 * a callback one sender signed is as authentic at the other's URL, and is stored under its subject.
 */
function sourcesSharingAKey(secret: {
  sources: Record<string, { secret: string }>;
  previous?: { sources?: Record<string, { secret: string }> };
}): { first: string; second: string; path: string[] } | undefined {
  const owner = new Map<string, string>();
  const entries = [
    ...Object.entries(secret.sources).map(([name, source]) => ({ name, source, path: ['sources', name] })),
    ...Object.entries(secret.previous?.sources ?? {}).map(([name, source]) => ({ name, source, path: ['previous', 'sources', name] })),
  ];
  for (const { name, source, path } of entries) {
    const key = signingKey(source.secret)?.toString('hex');
    if (key === undefined) continue;
    const first = owner.get(key);
    if (first !== undefined && first !== name) return { first, second: name, path };
    owner.set(key, name);
  }
  return undefined;
}
export type StandardWebhooksSecret = z.infer<typeof StandardWebhooksSecretSchema>;

/** The callback as the worker stores it: the webhook's own id and time, its source, and the JSON payload. */
export const StandardWebhooksCallbackSchema = z.object({
  webhookId: z.string().check(z.minLength(1), z.maxLength(256)),
  /** The attempt's Unix seconds (`webhook-timestamp`), as sent. */
  attemptedAt: z.string().check(z.regex(/^\d{1,12}$/)),
  source: sourceName,
  event: z.looseObject({
    type: z.optional(z.unknown()),
    timestamp: z.optional(z.unknown()),
  }),
});
export type StandardWebhooksCallback = z.infer<typeof StandardWebhooksCallbackSchema>;

/** A value at a dot path, when it is short text or an integer JSON keeps exactly (anything else names nothing). */
function textAt(value: unknown, path: string): string | undefined {
  let node: unknown = value;
  for (const key of path.split('.')) {
    if (node === null || typeof node !== 'object' || Array.isArray(node) || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  // Past 2^53 JSON.parse has already rounded the number: two ids would read as one.
  if (typeof node === 'number' && Number.isSafeInteger(node)) return String(node);
  return typeof node === 'string' && node.length > 0 && node.length <= 256 ? node : undefined;
}

/** The status stored when the payload has none that can be read: never read as a declared one. */
const NO_STATUS = 'received';

/** The longest status kept as sent: the longest a declared one may be (`outcomes`, `terminal`). */
const MAX_STATUS = 64;
/** How much of a longer status is kept before its hash. */
const LONG_STATUS_PREFIX = 56;

/**
 * A status as stored: as sent up to 64 characters; a longer one (up to 256) as its first 56 UTF-16
 * units (55 when the 56th would split a surrogate pair), `#` and a hash of the whole text: 72 or 73
 * characters, longer than any declared status so it never reads as one, and two statuses that
 * differ only past the cut stay two.
 */
function boundedStatus(status: string): string {
  if (status.length <= MAX_STATUS) return status;
  const splitsPair = /[\uD800-\uDBFF]/.test(status[LONG_STATUS_PREFIX - 1]);
  return `${status.slice(0, splitsPair ? LONG_STATUS_PREFIX - 1 : LONG_STATUS_PREFIX)}#${shortHash(Buffer.from(status, 'utf16le'))}`;
}

/**
 * The signatures a `webhook-signature` header carries for scheme `v1`, as bytes: only those spelled
 * exactly as the sender's base64 encoder spells 32 bytes. Node's decoder would also take missing
 * padding, trailing junk, or other values in the last character's two unused bits (`…1OF=` for
 * `…1OE=`); the reference libraries compare the text, and so do we: the bytes must spell it back.
 */
function v1Signatures(header: string): Buffer[] {
  return header
    .split(' ')
    .filter((entry) => entry.startsWith('v1,'))
    .map((entry) => entry.slice(3))
    .filter((text) => /^[A-Za-z0-9+/]{43}=$/.test(text))
    .map((text) => ({ text, bytes: Buffer.from(text, 'base64') }))
    .filter(({ text, bytes }) => bytes.length === 32 && bytes.toString('base64') === text)
    .map(({ bytes }) => bytes);
}

/** base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` with the secret's key, as the spec signs. */
export function standardWebhooksSignature(secret: string, webhookId: string, timestamp: string, body: Buffer): string {
  return digest(signingKey(secret)!, webhookId, timestamp, body).toString('base64');
}

function digest(key: Buffer, webhookId: string, timestamp: string, body: Buffer): Buffer {
  return createHmac('sha256', key).update(`${webhookId}.${timestamp}.`).update(body).digest();
}

export const standardWebhooks: Provider<StandardWebhooksSecret, StandardWebhooksCallback, 'standard-webhooks'> = {
  id: 'standard-webhooks',
  displayName: 'Standard Webhooks',
  docsUrl: 'https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md',
  route: { method: 'POST', path: '/callbacks/standard-webhooks/{source}' },
  authSummary: '`webhook-signature: v1,<HMAC-SHA256 of id.timestamp.body>` with the source\'s whsec_ secret; timestamp within 5 minutes',
  // An HMAC over id, timestamp and body.
  callbackTrust: 'signed',
  // The sender's own ids, chosen by its own system.
  mintsSubjectIds: false,
  secretSchema: StandardWebhooksSecretSchema,
  secretPlaceholder: { sources: 'REPLACE_ME' },
  describeReadsSecret: true,
  keptHeaders: ['webhook-id', 'webhook-timestamp'],
  deliveryIdHeaders: ['webhook-id'],
  routeParameterHelp: { source: 'the name you gave this sender under "sources" in the secret (one URL per sender)' },
  // "sources" is a map the user writes, not a value any console issues: the output says its shape.
  secretHelp:
    'Write {"sources": {"<source>": {"secret": "whsec_…"}}}: one entry per sender, its name the {source} in the callback URL, its secret the ' +
    'whsec_ key that sender signs with; optional per source: subjectField, statusField, outcomes, terminal (see the README).',
  routeParameters: (secret) => ({ source: typeof secret.sources === 'object' ? (Object.keys(secret.sources)[0] ?? 'none') : 'none' }),

  authenticate(request, secret) {
    const source = request.pathParameters?.source ?? '';
    const keys = secretVersions(secret)
      .map((version) => version.sources?.[source]?.secret)
      .map((value) => (value === undefined ? undefined : signingKey(value)))
      .filter((key): key is Buffer => key !== undefined);
    if (keys.length === 0) return { ok: false, reason: 'unknown source' };
    const webhookId = request.headers['webhook-id'];
    const timestamp = request.headers['webhook-timestamp'];
    const signature = request.headers['webhook-signature'];
    if (!webhookId || !timestamp || !signature) return { ok: false, reason: 'missing webhook-id, webhook-timestamp or webhook-signature header' };
    // The spec: neither the id nor the timestamp may hold a "." (the signed content is dot-delimited).
    if (webhookId.includes('.') || webhookId.length > 256) return { ok: false, reason: 'webhook-id is not an id' };
    if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'webhook-timestamp is not Unix seconds' };
    // Whole seconds either side, as the reference libraries count them (`Math.floor(Date.now() / 1000)`):
    // with the milliseconds of our receive time, an attempt 300 s old was refused past .000.
    // https://github.com/standard-webhooks/standard-webhooks/blob/main/libraries/javascript/src/index.ts
    const drift = Math.abs(Math.floor(Date.parse(request.receivedAt) / 1000) - Number(timestamp));
    if (!(drift <= TIMESTAMP_TOLERANCE_SECONDS)) return { ok: false, reason: 'webhook-timestamp outside the 5-minute tolerance (a replay, or a clock far off)' };
    const received = v1Signatures(signature);
    let match = false;
    for (const key of keys) {
      const expected = digest(key, webhookId, timestamp, request.body);
      for (const candidate of received) match = timingSafeEqual(candidate, expected) || match;
    }
    return match ? { ok: true } : { ok: false, reason: 'no v1 signature matches the body' };
  },

  parse(request) {
    // A source's `data` is its own, and may hold numbers a double cannot (64-bit ids, 18-decimal
    // amounts): read as JSON reads them, never refused (misreadNumber). The gateway keys by
    // webhook-id, and reads a numeric subject only as a safe integer (textAt).
    const json = readJsonBody(request.body, 'as parsed');
    if (!json.ok) return json;
    const result = StandardWebhooksCallbackSchema.safeParse({
      webhookId: request.headers['webhook-id'],
      attemptedAt: request.headers['webhook-timestamp'],
      source: request.pathParameters?.source,
      event: json.value,
    });
    if (!result.success) return schemaMismatch(result.error);
    return { ok: true, payload: result.data };
  },

  describe(payload, secret) {
    const settings = secret?.sources?.[payload.source];
    const id = settings?.subjectField ? textAt(payload.event, settings.subjectField) : payload.webhookId;
    // A declared subject field that is missing is the sender's mistake or ours: quarantined, never guessed.
    if (id === undefined) throw new Error(`the subject field "${settings?.subjectField}" is missing or not short text or a safe integer`);
    // Each sender names its own objects and events: the same id from two sources is two subjects.
    const subjectId = `${payload.source}/${id}`;
    // Declared outcomes and terminal statuses match the full text only: a longer status that starts
    // with a declared one is another status.
    const read = textAt(payload.event, settings?.statusField ?? 'type');
    // No status could be read (absent, empty, not short text or an integer): it is stored as
    // `received`, and is none of the declared statuses, `received` among them, since nothing said it.
    const said = read ?? NO_STATUS;
    const declared: Outcome | undefined = read !== undefined && settings?.outcomes && Object.hasOwn(settings.outcomes, read) ? settings.outcomes[read] : undefined;
    const terminal = read === undefined ? false : settings?.terminal ? settings.terminal.includes(read) : declared !== undefined && declared !== 'pending';
    // A status declared final whose outcome was not declared ends the subject without saying how:
    // `unknown` (for review), not a `pending` that will never move.
    const outcome = declared ?? (terminal ? 'unknown' : 'pending');
    return {
      subjectId,
      // The spec's idempotency key: one event, however often it is retried (within the source's subject).
      eventKey: payload.webhookId,
      status: boundedStatus(said),
      outcome,
      terminal,
      statusAt: toIsoTime(payload.event.timestamp),
      rank: 0,
      detail: { source: payload.source, ...(declared === undefined ? { outcomeDeclared: false } : {}), ...(read === undefined ? { statusRead: false } : {}) },
    };
  },

  asSent(body, secret, sentAt = new Date()): { headers: Record<string, string>; body: Buffer } {
    // Signed with the source routeParameters names (the first); a secret without one signs nothing.
    const settings = typeof secret.sources === 'object' ? Object.values(secret.sources)[0] : undefined;
    if (!settings || typeof settings.secret !== 'string' || !signingKey(settings.secret)) return { headers: { 'content-type': 'application/json' }, body };
    // The same body is the same event: its id is derived from it, so a re-send is a retry.
    const webhookId = `msg_${shortHash(body)}`;
    const timestamp = String(Math.floor(sentAt.getTime() / 1000));
    return {
      headers: {
        'content-type': 'application/json',
        'webhook-id': webhookId,
        'webhook-timestamp': timestamp,
        'webhook-signature': `v1,${standardWebhooksSignature(settings.secret, webhookId, timestamp, body)}`,
      },
      body,
    };
  },
};
