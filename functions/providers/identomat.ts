import * as z from '../shared/zod.ts';
import { secureEqualsAny } from '../shared/secure-compare.ts';
import { shortHash } from '../shared/hash.ts';
import { configuredString, parseJsonBody, schemaMismatch } from './common.ts';
import { secretVersions, type EventFacts, type Outcome, type Provider } from './provider.ts';
import { secretWithRotation } from './secret-schema.ts';

/**
 * Identomat callbacks.
 *
 * What the docs say, and how it is read here
 * (@see https://docs.identomat.com/developer-tools/callbacks):
 * - `session-change`: "The result field … reflects the current session status", and the callback
 *   "notifies the client whenever a session's status changes". There is no id or time in the body,
 *   so a retry of one callback and a later change back to a result seen before are byte-identical.
 *   They are told apart by the session's state when the report is processed (`reportsCurrent`, see
 *   `core/events.ts`), in the order we received them: a report equal to the current status is a
 *   retry of the change that set it; one that differs, received later, is the next change and
 *   becomes the session's status whatever its tier (APPROVED can be followed by REJECTED, and by
 *   APPROVED again); one received earlier than the status in place is kept but not applied. Stored
 *   event keys are `session-change|<RESULT>|#n`, n the change the report belongs to. A retry that
 *   arrives after a later change is indistinguishable from a real change back (Identomat's
 *   `/result` endpoint would be the referee; it is not polled here).
 * - `video-call-status-update`: "sent whenever a video call room changes status"; one room can
 *   produce several files. Distinct per room, room status, composition status, file status and
 *   file id, so a second recording is a second event and its file id is kept.
 * - OTP and link events are instructions to send a message to a person: distinct per destination
 *   (phone number or e-mail) and per text/link. The key holds hashes, never the contact or code.
 * Neither instructions, video updates nor types the docs do not list say anything about the
 * session's status (`placesStatus: false`): they are stored and counted only.
 */

/** `{ callbackApiKey }` from Identomat's company settings; every callback body carries it. */
export const IdentomatSecretSchema = secretWithRotation({ callbackApiKey: configuredString });
export type IdentomatSecret = z.infer<typeof IdentomatSecretSchema>;

/**
 * The sample body says `one-time-password-request` where the docs say `one-time-password`. A Map,
 * not an object literal: `constructor`, `toString` or `__proto__` must not find Object.prototype.
 */
const TYPE_ALIASES = new Map([['one-time-password-request', 'one-time-password']]);
/** Instructions for the receiver to send a code or link itself: carry live codes and contacts. */
const INSTRUCTION_TYPES = new Set([
  'one-time-password',
  'email-one-time-password-request',
  'share-session-link-via-sms',
  'share-session-link-via-email',
]);
const SESSION_CHANGE = 'session-change';
const VIDEO_UPDATE = 'video-call-status-update';

/**
 * Strings that end up in keys or in the status the state compares must be well-formed Unicode:
 * DynamoDB stores a lone UTF-16 surrogate as `?`, so such a callback is quarantined at once
 * (kept whole) rather than accepted and then found unstorable by the worker.
 */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const wellFormed = z.refine<string>((value) => !LONE_SURROGATE.test(value), 'lone UTF-16 surrogate: cannot be stored exactly');

/**
 * An Identomat callback, without its `callbackApiKey` (removed once checked: it is a secret).
 * Only the sample events' bodies are published; unknown fields are kept.
 * @see https://docs.identomat.com/developer-tools/callbacks
 */
export const IdentomatCallbackSchema = z.looseObject({
  type: z.pipe(
    z.string().check(z.minLength(1), z.maxLength(64), wellFormed),
    z.transform((type: string) => TYPE_ALIASES.get(type) ?? type),
  ),
  sessionId: z.string().check(z.minLength(1), z.maxLength(128), wellFormed),
  result: z.nullish(z.string().check(z.maxLength(64), wellFormed)),
  /** KYB sessions only; absent for KYC. Its values are not published. */
  sessionType: z.nullish(z.string().check(z.maxLength(64))),
  roomStatus: z.nullish(z.string().check(z.maxLength(64))),
  videoFileStatus: z.nullish(z.string().check(z.maxLength(64))),
  text: z.nullish(z.string()),
});
export type IdentomatCallback = z.infer<typeof IdentomatCallbackSchema>;

const KEY_FIELD = 'callbackApiKey';

// ---------------------------------------------------------------------------------------------
// Authentication: the key is found in the raw bytes before anything is parsed

/** The member name as every published sample spells it (a name spelled with escapes is not looked for). */
const KEY_MEMBER = Buffer.from(`"${KEY_FIELD}"`);
/** Members named callbackApiKey looked at: a genuine body has one (a forger's duplicates cost nothing more). */
const MAX_KEY_MEMBERS = 4;
/** Whitespace bytes allowed on either side of the colon (inferred: encoders write at most a few). */
const MAX_GAP = 64;
/** A key literal is read up to this many bytes, or six per key character (every one `\uXXXX`) if more. */
const MIN_LITERAL_CAP = 1024;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;

function skipWhitespace(body: Buffer, from: number): number {
  let i = from;
  const limit = Math.min(body.length, from + MAX_GAP);
  while (i < limit && (body[i] === 0x20 || body[i] === 0x09 || body[i] === 0x0a || body[i] === 0x0d)) i += 1;
  return i;
}

/** Index of the quote closing the string literal opened at `open`, or -1 (none within `cap` bytes). */
function closingQuote(body: Buffer, open: number, cap: number): number {
  const limit = Math.min(body.length, open + 1 + cap);
  for (let i = open + 1; i < limit; i += 1) {
    if (body[i] === BACKSLASH) i += 1;
    else if (body[i] === QUOTE) return i;
  }
  return -1;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A JSON string literal (quotes included) decoded, or undefined when it is not one. */
function decodeLiteral(literal: Buffer): string | undefined {
  try {
    const value: unknown = JSON.parse(strictUtf8.decode(literal));
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The values of the first few `"callbackApiKey": "…"` members in the raw body, decoded, found with
 * a single forward scan (Buffer#indexOf, then bounded byte loops: no backtracking) and without
 * parsing anything else. A member whose value is not a string, or is longer than any accepted
 * key could be spelled, yields nothing.
 */
function keyLiterals(body: Buffer, literalCap: number): { members: number; values: string[] } {
  const values: string[] = [];
  let members = 0;
  let from = 0;
  while (members < MAX_KEY_MEMBERS) {
    const at = body.indexOf(KEY_MEMBER, from);
    if (at < 0) break;
    members += 1;
    from = at + KEY_MEMBER.length;
    const colon = skipWhitespace(body, from);
    if (body[colon] !== COLON) continue;
    const open = skipWhitespace(body, colon + 1);
    if (body[open] !== QUOTE) continue;
    const close = closingQuote(body, open, literalCap);
    if (close < 0) continue;
    const value = decodeLiteral(body.subarray(open, close + 1));
    if (value !== undefined) values.push(value);
    from = close + 1;
  }
  return { members, values };
}

// ---------------------------------------------------------------------------------------------
// Event keys

/**
 * A key segment for a value we do not control: short plain tokens as they are (readable in the
 * table), anything else (another type, `|`, `:`, `#`, odd characters, long text) as `#<hash>` of
 * its type and exact UTF-16 content, absent values as `-`. Segments never contain `|` and a plain
 * one never starts with `#` or `-`, so distinct tuples give distinct keys. Never throws.
 */
const PLAIN_TOKEN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
function keySegment(value: unknown): string {
  if (value === undefined || value === null) return '-';
  if (typeof value === 'string' && PLAIN_TOKEN.test(value)) return value;
  return `#${fingerprint(value)}`;
}

/** A short hash of any value, exact for strings (lone surrogates included), never throwing. */
function fingerprint(value: unknown): string {
  if (typeof value === 'string') return shortHash(Buffer.from(`s:${value}`, 'utf16le'));
  let text: string;
  try {
    text = `${typeof value}:${JSON.stringify(value) ?? ''}`;
  } catch {
    // Nested deeper than JSON.stringify goes: such a value only comes from a hostile body.
    text = `${typeof value}:unserialisable`;
  }
  return shortHash(Buffer.from(text, 'utf16le'));
}

/** A field of the payload, own members only (the payload is a parsed JSON object). */
function field(payload: IdentomatCallback, name: string): unknown {
  return Object.prototype.hasOwnProperty.call(payload, name) ? payload[name] : undefined;
}

const SESSION_RESULTS = new Map<string, { outcome: Outcome; terminal: boolean }>([
  ['APPROVED', { outcome: 'succeeded', terminal: true }],
  ['REJECTED', { outcome: 'failed', terminal: true }],
  ['MANUAL_CHECK', { outcome: 'pending', terminal: false }],
  ['ADDITIONAL_INFORMATION_REQUESTED', { outcome: 'pending', terminal: false }],
]);

type Described = Omit<EventFacts, 'subjectId'>;

function describeSessionChange(payload: IdentomatCallback): Described {
  // Match case-insensitively (Identomat's `result/` API spells results in lower case, `"approved"`:
  // https://identomat.gitbook.io/identomat-documentation/developer-tools/api-reference). An unlisted
  // or missing result is a step we cannot read: pending, never success.
  const status = payload.result ? payload.result.toUpperCase() : 'UNKNOWN';
  const meaning = SESSION_RESULTS.get(status) ?? { outcome: 'pending' as const, terminal: false };
  return {
    eventKey: `${SESSION_CHANGE}|${status}`,
    status,
    ...meaning,
    rank: 0,
    ...(payload.sessionType ? { detail: { sessionType: payload.sessionType } } : {}),
    reportsCurrent: true,
  };
}

function describeVideoUpdate(payload: IdentomatCallback): Described {
  const parts = ['roomId', 'roomStatus', 'compositionStatus', 'videoFileStatus', 'videoFileId'].map((name) => keySegment(field(payload, name)));
  return {
    eventKey: `${VIDEO_UPDATE}|${parts.join('|')}`,
    status: `video:${payload.roomStatus || 'active'}/${payload.videoFileStatus || 'none'}`,
    outcome: 'pending',
    terminal: false,
    rank: 0,
    placesStatus: false,
  };
}

function describeInstruction(payload: IdentomatCallback): Described {
  // The same text to another number (or address) is another message to send; a retry is the same.
  // Hashes only: the key must not show a contact or a code. The e-mail events' bodies are
  // unpublished: `email` is the field name inferred for their destination.
  const destination = fingerprint([field(payload, 'phoneNumber') ?? null, field(payload, 'email') ?? null]);
  const content = fingerprint([payload.text ?? null, field(payload, 'sessionLink') ?? null]);
  return {
    eventKey: `${payload.type}|to:${destination}|${content}`,
    status: payload.type,
    outcome: 'pending',
    terminal: false,
    rank: 0,
    sensitive: true,
    placesStatus: false,
  };
}

function describeOther(payload: IdentomatCallback): Described {
  // A type the docs do not list: nothing says it reports the session's status, so it is stored
  // and counted only, distinct per content, and kept briefly if it may carry a contact (inferred).
  return {
    eventKey: `${payload.type}|body:${fingerprint(payload)}`,
    status: payload.type,
    outcome: 'pending',
    terminal: false,
    rank: 0,
    placesStatus: false,
    ...(mayCarryContact(payload) ? { sensitive: true } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// What a body may carry, when it is not a documented instruction

/** Members of the documented non-instruction events, whose values are ids and statuses. */
const KNOWN_MEMBERS = new Set(['type', 'sessionId', 'result', 'sessionType', 'roomId', 'roomStatus', 'compositionStatus', 'videoFileStatus', 'videoFileId', KEY_FIELD]);
/** Member names that hold a contact, a code, a message or a link. */
const CONTACT_NAME = /phone|mail|text|link|url|otp|code|msisdn|recipient|message/i;
const DIGIT_RUN = /\d{4}/;
const WEB_ADDRESS = /www\./i;

/** Whether a value looks like an e-mail address, a link, a code or a phone number (linear checks only). */
function looksLikeContact(value: string): boolean {
  if (value.includes('@') || value.includes('://') || WEB_ADDRESS.test(value) || DIGIT_RUN.test(value)) return true;
  let digits = 0;
  for (let i = 0; i < value.length && digits < 7; i += 1) {
    const code = value.charCodeAt(i);
    if (code >= 0x30 && code <= 0x39) digits += 1;
  }
  return digits >= 7;
}

/** Values looked at before giving up (and answering "may carry one"). */
const MAX_NODES = 10_000;

/**
 * Whether a parsed body may carry an instruction, a code, a phone number, an e-mail address or a
 * link. Fail closed: true for anything but an object, for every instruction type (in any case),
 * and for any other body with a member (at any depth) named like a contact or holding a value
 * that looks like one; ids and statuses of the documented events are not looked at.
 */
function mayCarryContact(json: unknown): boolean {
  if (!json || typeof json !== 'object' || Array.isArray(json)) return true;
  const root = json as Record<string, unknown>;
  if (typeof root.type === 'string') {
    const type = root.type.toLowerCase();
    if (INSTRUCTION_TYPES.has(TYPE_ALIASES.get(type) ?? type)) return true;
  }
  const pending: unknown[] = [];
  for (const [name, value] of Object.entries(root)) {
    if (KNOWN_MEMBERS.has(name)) continue;
    if (CONTACT_NAME.test(name) || looksLikeContact(name)) return true;
    pending.push(value);
  }
  for (let seen = 0; pending.length > 0; seen += 1) {
    if (seen > MAX_NODES) return true;
    const value = pending.pop();
    if (typeof value === 'string') {
      if (looksLikeContact(value)) return true;
    } else if (Array.isArray(value)) {
      if (value.length > MAX_NODES) return true;
      pending.push(...value);
    } else if (value && typeof value === 'object') {
      for (const [name, child] of Object.entries(value)) {
        if (CONTACT_NAME.test(name) || looksLikeContact(name)) return true;
        pending.push(child);
      }
    }
  }
  return false;
}

export const identomat: Provider<IdentomatSecret, IdentomatCallback, 'identomat'> = {
  id: 'identomat',
  displayName: 'Identomat',
  docsUrl: 'https://docs.identomat.com/developer-tools/callbacks',
  route: { method: 'POST', path: '/callbacks/identomat' },
  authSummary: '`callbackApiKey` in the JSON body, compared in constant time',
  // A key in the body: anyone who saw one callback can send another.
  callbackTrust: 'token',
  secretSchema: IdentomatSecretSchema,
  secretPlaceholder: { callbackApiKey: 'REPLACE_ME' },

  /**
   * The key is looked for in the raw bytes first: a forged body is refused for the cost of a byte
   * search and a hash, whatever its size or shape. Only a body carrying an accepted key is parsed,
   * and then its top-level member must hold it (JSON.parse keeps the last of duplicate members).
   */
  authenticate(request, secret) {
    const accepted = secretVersions(secret).map((version) => version.callbackApiKey);
    const cap = Math.max(MIN_LITERAL_CAP, 6 * Math.max(0, ...accepted.map((key) => key.length)));
    const { members, values } = keyLiterals(request.body, cap);
    if (members === 0) return { ok: false, reason: 'missing callbackApiKey' };
    let candidate = false;
    for (const value of values) candidate = secureEqualsAny(value, accepted) || candidate;
    if (!candidate) return { ok: false, reason: 'wrong callbackApiKey' };
    const json = parseJsonBody(request.body);
    if (!json.ok) return { ok: false, reason: `cannot read callbackApiKey: ${json.reason}` };
    const body = json.value;
    if (!body || typeof body !== 'object' || Array.isArray(body) || !Object.prototype.hasOwnProperty.call(body, KEY_FIELD)) {
      return { ok: false, reason: 'callbackApiKey is not a member of the body' };
    }
    const key = (body as Record<string, unknown>)[KEY_FIELD];
    return typeof key === 'string' && secureEqualsAny(key, accepted) ? { ok: true } : { ok: false, reason: 'wrong callbackApiKey' };
  },

  parse(request) {
    const json = parseJsonBody(request.body);
    if (!json.ok) return { ok: false, reason: json.reason, issues: [] };
    if (!json.value || typeof json.value !== 'object' || Array.isArray(json.value)) {
      return { ok: false, reason: 'body is not a JSON object', issues: [] };
    }
    const { [KEY_FIELD]: _key, ...rest } = json.value as Record<string, unknown>;
    const result = IdentomatCallbackSchema.safeParse(rest);
    if (!result.success) return schemaMismatch(result.error);
    return { ok: true, payload: result.data };
  },

  describe(payload) {
    const described =
      payload.type === SESSION_CHANGE
        ? describeSessionChange(payload)
        : payload.type === VIDEO_UPDATE
          ? describeVideoUpdate(payload)
          : INSTRUCTION_TYPES.has(payload.type)
            ? describeInstruction(payload)
            : describeOther(payload);
    return { subjectId: payload.sessionId, ...described };
  },

  mayBeSensitive(raw) {
    const json = parseJsonBody(raw);
    // Unreadable: it may be anything, an instruction included.
    return json.ok ? mayCarryContact(json.value) : true;
  },

  asSent(body, secret) {
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    } catch {
      return { headers: { 'content-type': 'application/json' }, body };
    }
    return { headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ ...json, [KEY_FIELD]: secret.callbackApiKey })) };
  },

  bodySecrets: (secret) => secretVersions(secret).map((version) => version.callbackApiKey),
};
