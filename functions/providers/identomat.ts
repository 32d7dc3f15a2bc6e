import { createHmac, timingSafeEqual } from 'node:crypto';
import * as z from '../shared/zod.ts';
import { ConfigurationError, DependencyError, errorMessage } from '../shared/errors.ts';
import { secureEqualsAny } from '../shared/secure-compare.ts';
import { shortHash } from '../shared/hash.ts';
import { jsonTextAnyDepth } from '../shared/canonical-json.ts';
import { answerJson, endpointFault, asciiUpperCase, configuredString, credentialUrl, parseJsonBody, readBoundedBody, readJsonBody, requestFault, schemaMismatch } from './common.ts';
import { INSTRUCTION_LIMITS, secretVersions, type EventFacts, type LookupLimits, type Outcome, type Provider, type StatusAnswer } from './provider.ts';
import { secretWithRotation } from './secret-schema.ts';

/**
 * Identomat callbacks, and Identomat's `result/` endpoint as the referee of what they claim.
 *
 * What the callbacks page says, and how it is read here
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
 *   arrives after a later change is indistinguishable from a real change back: where `result/` is
 *   asked (below), its answer decides the status, and the callback is only counted.
 * - `video-call-status-update`: "sent whenever a video call room changes status"; one room can
 *   produce several files. Distinct per room, room status, composition status, file status and
 *   file id, so a second recording is a second event and its file id is kept.
 * - OTP and link events are instructions to send a message to a person: distinct per destination
 *   (phone number or e-mail) and per text/link. The key holds hashes, never the contact or code.
 * Neither instructions, video updates nor types the docs do not list say anything about the
 * session's status (`placesStatus: false`): they are stored and counted only.
 *
 * Asking Identomat (`lookup`): `POST {baseUrl}/external-api/result/`
 * (@see https://identomat.gitbook.io/identomat-documentation/developer-tools/api-reference
 *  @see https://coda.io/@identomat/documentation/hmac-authorization-127):
 * - The body is the JSON `{"company_key": …, "session_token": …}`: snake_case, as the page's cURL
 *   and JSON examples and every client spell it (its prose says companyKey/sessionId). With
 *   `hmacKey`, `Authorization: signature="<base64 HMAC-SHA256(hmacKey, exact body bytes)>"`; an
 *   answer carrying that header must verify with the same key ("An unsuccessful request does not
 *   include an authorization header", so an answer without one is read like any other).
 * - The session token asked about is the callback's `sessionId` (inferred: both are the
 *   40-character lower-case token `begin/` returns, but no page says they are the same value).
 * - The answer's `result` (`"approved"`: lower case) is read as a session-change report would be:
 *   case-insensitively, and a value not listed stays pending, never success. Nothing else of the
 *   answer is kept (names, document fields: personal data the gateway does not need), except the
 *   members of `videoCallStatus` named like the video callback's: the callbacks page says /result
 *   holds "the complete and always up-to-date video call status" there, but publishes no shape, so
 *   they are copied bounded onto the stored answer and never read for the status.
 * - An answer reports the session's *current* status ("to poll /result or perform state recovery if
 *   any callback is missed"), so it orders by the time we asked, like a session-change report: the
 *   latest wins whatever the tier. It is an observation of its own: never counted as a callback,
 *   never numbered as a change (`#n` counts callbacks), and keyed by the request that got it
 *   (`result|<RESULT>|<id>`), so an answer equal to an earlier one (APPROVED, then MANUAL_CHECK,
 *   then APPROVED again) is applied again rather than taken for a repeat. Callbacks are numbered
 *   against the status in place, which, once answers are read, is the latest answer's.
 * - Identomat publishes no errors, HTTP codes or rate limits; the mapping is ours (inferred):
 *   401/403 refuse the only credentials the request carries (ConfigurationError naming companyKey,
 *   hmacKey, baseUrl), as does an answer whose signature does not verify; any other status but 200,
 *   a body that is not a JSON object or over 256 KB, a `result` that is not text, a timeout:
 *   DependencyError (retried with back-off). A JSON object without a `result` (or a null or empty
 *   one) is `not_found`: Identomat has no result for that token, yet or any more; nothing is
 *   believed, and the session is asked about again.
 */

/** Identomat's production host, the only one published (the mobile SDKs' `setBaseUrl` hints at others). */
export const IDENTOMAT_BASE_URL = 'https://widget.identomat.com';

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const HEX = /^(?:[0-9a-fA-F]{2})+$/;

/**
 * `callbackApiKey` from Identomat's company settings (every callback body carries it); for asking
 * `result/`, the optional `companyKey` (the company_key; without it the callbacks are believed as they
 * come and marked unconfirmed), `hmacKey` (the HMAC secret_key, for companies that use HMAC
 * authorization), `hmacKeyEncoding`, `baseUrl` and `resultHorizonHours`. Defaults are applied where
 * they are used, not here: a default inside `previous` would stand for a value being rotated out.
 */
export const IdentomatSecretSchema = secretWithRotation({
  callbackApiKey: configuredString,
  companyKey: z.optional(configuredString),
  hmacKey: z.optional(configuredString),
  /** How the text of `hmacKey` becomes the key's bytes (inferred: unpublished). @default 'utf8' */
  hmacKeyEncoding: z.optional(z.enum(['utf8', 'base64', 'hex'])),
  /** Where `result/` is asked; any http(s) URL (a stand-in on http://127.0.0.1:PORT). @default IDENTOMAT_BASE_URL */
  baseUrl: z.optional(credentialUrl),
  /**
   * How long result/ is asked about a session, in hours. Unpublished: the developer guide says only
   * that "the session_token is valid for 15 minutes by default" (the time to start the flow with
   * it), while the callbacks page offers /result for "state recovery" after a missed callback, and
   * manual checks take hours. So there is none by default (inferred): the reconcile policy's horizon
   * (7 days by default) applies; 0.25 would stop at the token's 15 minutes. Read by
   * `identomatLookupLimits`, which the worker and the re-checks use (`lookupLimitsFor`).
   * @see https://docs.identomat.com/developer-tools/developer-guide
   * @default none: the reconcile policy's
   */
  resultHorizonHours: z.optional(z.number().check(z.positive(), z.lte(24 * 366))),
}).check(
  z.refine(
    (secret) =>
      secret.hmacKey === undefined ||
      (secret.hmacKeyEncoding === 'base64' ? BASE64.test(secret.hmacKey) : secret.hmacKeyEncoding === 'hex' ? HEX.test(secret.hmacKey) : true),
    { message: 'hmacKey is not written in hmacKeyEncoding', path: ['hmacKey'] },
  ),
);
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
const { field: MAX_INSTRUCTION_FIELD, text: MAX_INSTRUCTION_TEXT } = INSTRUCTION_LIMITS;
/**
 * An absolute http(s) link in RFC 3986's grammar (the schema's `format: uri`): a host name, an
 * optional port, a path, query and fragment of its characters, `%` only before two hex digits, one
 * `#` at most. No user information and no IP literal: a session link to a web page has neither.
 * The characters alone let `…/%zz`, `…/a#b#c` and `…/[x]` through, and the published event then
 * failed the schema consumers validate it against.
 * @see https://www.rfc-editor.org/rfc/rfc3986#appendix-A
 */
const PCHAR = "(?:[A-Za-z0-9\\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})";
const WEB_LINK = new RegExp(
  `^https?://(?:[A-Za-z0-9\\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+(?::[0-9]*)?(?:/${PCHAR}*)*(?:\\?(?:${PCHAR}|[/?])*)?(?:#(?:${PCHAR}|[/?])*)?$`,
  'i',
);
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
}).check(
  // An instruction that names no one to send it to, or a text no sender takes, is no instruction: it
  // is quarantined (kept whole, alarmed), not stored as one no event or relay ever carries.
  z.refine((body) => !INSTRUCTION_TYPES.has(body.type) || destinationOf(body) !== undefined, {
    message: `an instruction needs its destination (phoneNumber; email for an e-mail one) as a text of 1 to ${MAX_INSTRUCTION_FIELD} characters`,
  }),
  z.refine((body) => !INSTRUCTION_TYPES.has(body.type) || typeof body.text !== 'string' || body.text.length <= MAX_INSTRUCTION_TEXT, {
    message: `an instruction's text is at most ${MAX_INSTRUCTION_TEXT} characters`,
    path: ['text'],
  }),
);
export type IdentomatCallback = z.infer<typeof IdentomatCallbackSchema>;

/** Where an instruction goes: `phoneNumber` for SMS, `email` (inferred: those bodies are unpublished) for e-mail; undefined when unusable. */
function destinationOf(body: { readonly type: string } & Record<string, unknown>): string | undefined {
  const name = channelOf(body.type) === 'email' ? 'email' : 'phoneNumber';
  const value = Object.prototype.hasOwnProperty.call(body, name) ? body[name] : undefined;
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_INSTRUCTION_FIELD ? value : undefined;
}

function channelOf(type: string): 'sms' | 'email' {
  return type.includes('email') ? 'email' : 'sms';
}

const KEY_FIELD = 'callbackApiKey';
/**
 * Set by `lookup` only, on the payload it makes of an answer: the id of the `result/` request that
 * got it. A callback carrying it is refused by `parse` (no Identomat body has it), so only an answer
 * is ever keyed as one.
 */
const LOOKUP_FIELD = 'resultLookupId';
/** The members of a video-call-status-update, in the order they key one. */
const VIDEO_FIELDS = ['roomId', 'roomStatus', 'compositionStatus', 'videoFileStatus', 'videoFileId'] as const;

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
  // At any depth: one text for every value too deep for JSON.stringify made two callbacks of an
  // unlisted type one event, the second taken for a retry.
  return shortHash(Buffer.from(`${typeof value}:${jsonTextAnyDepth(value) ?? ''}`, 'utf16le'));
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
  const status = payload.result ? asciiUpperCase(payload.result) : 'UNKNOWN';
  const meaning = SESSION_RESULTS.get(status) ?? { outcome: 'pending' as const, terminal: false };
  // An answer of `result/` is its own observation, one per request (see the module's comment).
  const lookupId = field(payload, LOOKUP_FIELD);
  return {
    eventKey: typeof lookupId === 'string' ? `result|${status}|${keySegment(lookupId)}` : `${SESSION_CHANGE}|${status}`,
    status,
    ...meaning,
    rank: 0,
    ...(payload.sessionType ? { detail: { sessionType: payload.sessionType } } : {}),
    reportsCurrent: true,
  };
}

function describeVideoUpdate(payload: IdentomatCallback): Described {
  const parts = VIDEO_FIELDS.map((name) => keySegment(field(payload, name)));
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

// ---------------------------------------------------------------------------------------------
// Asking Identomat: result/

/** Largest answer read. The published examples are a few KB: images and videos have endpoints of their own. */
const MAX_ANSWER_BYTES = 256 * 1024;
/** Video-call entries kept from an answer, and the longest text kept in one (the shape is unpublished). */
const MAX_VIDEO_ENTRIES = 8;
const MAX_VIDEO_TEXT = 128;
/** `Authorization: signature="<base64>"`, as Identomat's HMAC page writes it (quotes tolerated missing). */
const SIGNATURE_HEADER = /^\s*signature\s*=\s*"?([A-Za-z0-9+/]+={0,2})"?\s*$/i;

/** Where `result/` is asked: the secret's `baseUrl`, or Identomat's production host. */
export function identomatBaseUrl(secret: Pick<IdentomatSecret, 'baseUrl'>): string {
  return (secret.baseUrl ?? IDENTOMAT_BASE_URL).replace(/\/+$/, '');
}

/**
 * Identomat's limits on asking, with this secret. Asked on arrival: the callback is only a claim (the
 * key in its body proves little) and the answer is current, so the claim is judged at once; no first
 * delay, since nothing says result/ lags the callbacks. A horizon only where `resultHorizonHours` sets one.
 */
export function identomatLookupLimits(secret: Pick<IdentomatSecret, 'resultHorizonHours'>): LookupLimits {
  return { onArrival: true, ...(secret.resultHorizonHours === undefined ? {} : { horizonHours: secret.resultHorizonHours }) };
}

/** HMAC-SHA256 of some bytes with the secret's `hmacKey`: Identomat's authorization code, before base64. */
function hmacOf(secret: IdentomatSecret, bytes: Buffer | string): Buffer {
  return createHmac('sha256', Buffer.from(secret.hmacKey!, secret.hmacKeyEncoding ?? 'utf8')).update(bytes).digest();
}

/** Whether an answer's `Authorization` header is the HMAC of its exact bytes, compared in constant time. */
function answerSignatureVerifies(header: string, expected: Buffer): boolean {
  const match = SIGNATURE_HEADER.exec(header);
  if (!match) return false;
  const received = Buffer.from(match[1], 'base64');
  return received.length === expected.length && timingSafeEqual(received, expected);
}

/** The answer's bytes, up to `limit` (a longer one is refused, not cut). Bounded by the request's timeout too. */
async function readBounded(response: Response, limit: number): Promise<Buffer> {
  const body = await readBoundedBody(response, limit);
  if (body === undefined) throw new Error(`answer larger than ${limit} bytes`);
  return body;
}

type VideoCallEntry = Partial<Record<(typeof VIDEO_FIELDS)[number], string | null>>;

/** The members of one video-call status named like the video callback's: short text or null, nothing else. */
function videoEntry(value: unknown): VideoCallEntry | undefined {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const entry: VideoCallEntry = {};
  for (const name of VIDEO_FIELDS) {
    if (!Object.prototype.hasOwnProperty.call(value, name)) continue;
    const member = (value as Record<string, unknown>)[name];
    if (member === null || (typeof member === 'string' && member.length <= MAX_VIDEO_TEXT && !LONE_SURROGATE.test(member))) entry[name] = member;
  }
  return Object.keys(entry).length > 0 ? entry : undefined;
}

/**
 * What is kept of an answer's `videoCallStatus` (unpublished shape, inferred to mirror the video
 * callback): one entry, or a few of a list; undefined when nothing in it is recognisable.
 */
function videoCallStatusOf(value: unknown): VideoCallEntry | VideoCallEntry[] | undefined {
  if (!Array.isArray(value)) return videoEntry(value);
  const entries = value.slice(0, MAX_VIDEO_ENTRIES).map(videoEntry).filter((entry): entry is VideoCallEntry => entry !== undefined);
  return entries.length > 0 ? entries : undefined;
}

/** An own member of a parsed JSON object. */
function member(object: object, name: string): unknown {
  return Object.prototype.hasOwnProperty.call(object, name) ? (object as Record<string, unknown>)[name] : undefined;
}

export const identomat: Provider<IdentomatSecret, IdentomatCallback, 'identomat'> = {
  id: 'identomat',
  displayName: 'Identomat',
  docsUrl: 'https://docs.identomat.com/developer-tools/callbacks',
  route: { method: 'POST', path: '/callbacks/identomat' },
  authSummary: '`callbackApiKey` in the JSON body, compared in constant time; with `companyKey`, every session confirmed with the result/ endpoint',
  // A key in the body: anyone who saw one callback can send another. With companyKey, only the
  // answers of result/ move a session's status.
  callbackTrust: 'token',
  // The session token Identomat's begin/ answers.
  mintsSubjectIds: true,
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
    const json = readJsonBody(request.body);
    if (!json.ok) return json;
    if (!json.value || typeof json.value !== 'object' || Array.isArray(json.value)) {
      return { ok: false, reason: 'body is not a JSON object', issues: [] };
    }
    const { [KEY_FIELD]: _key, ...rest } = json.value as Record<string, unknown>;
    if (Object.prototype.hasOwnProperty.call(rest, LOOKUP_FIELD)) {
      return { ok: false, reason: `${LOOKUP_FIELD} is reserved for answers of the result/ endpoint`, issues: [`${LOOKUP_FIELD}: not sent by Identomat`] };
    }
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

  instruction(payload) {
    const parsed = IdentomatCallbackSchema.safeParse(payload);
    if (!parsed.success || !INSTRUCTION_TYPES.has(parsed.data.type)) return undefined;
    const data = parsed.data;
    const channel = channelOf(data.type);
    const text = (name: string, max = MAX_INSTRUCTION_FIELD) => {
      const value = field(data, name);
      return typeof value === 'string' && value.length > 0 && value.length <= max ? value : undefined;
    };
    // The schema has checked its destination and its text (no text over PutEvents' 256 KB, which the
    // stream would retry for hours while every later change of its shard waited); a payload stored
    // before those checks that fails them is no instruction, above.
    const destination = destinationOf(data);
    if (!destination) return undefined;
    // The schema promises a URI: a link that is not an http(s) one is left out (the text still goes).
    const sessionLink = text('sessionLink');
    const link = sessionLink !== undefined && WEB_LINK.test(sessionLink) && URL.canParse(sessionLink) ? sessionLink : undefined;
    return {
      kind: data.type,
      channel,
      destination,
      ...(typeof data.text === 'string' && data.text.length > 0 ? { text: data.text } : {}),
      ...(link ? { link } : {}),
      oneTimeCode: data.type === 'one-time-password' || data.type === 'email-one-time-password-request',
    };
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

  /**
   * POST {baseUrl}/external-api/result/ with `{ company_key, session_token }`, signed when the secret
   * holds `hmacKey`. Read as the module's comment says: the answer becomes a session-change report
   * of the session asked about, keyed by this request.
   * @see https://identomat.gitbook.io/identomat-documentation/developer-tools/api-reference
   * @see https://coda.io/@identomat/documentation/hmac-authorization-127
   */
  async lookup({ subjectId: sessionToken }, secret, context): Promise<StatusAnswer<IdentomatCallback>> {
    if (secret.companyKey === undefined) throw new ConfigurationError('asking Identomat result/ needs companyKey in the identomat secret');
    const body = JSON.stringify({ company_key: secret.companyKey, session_token: sessionToken });
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (secret.hmacKey !== undefined) headers.authorization = `signature="${hmacOf(secret, body).toString('base64')}"`;
    const lookupId = context.newRequestId();
    let response: Response;
    try {
      // A redirect is not followed: a 307/308 would send the body, company_key in it, wherever it
      // points (plain http elsewhere included), and its answer would be taken for Identomat's.
      response = await context.fetch(`${identomatBaseUrl(secret)}/external-api/result/`, {
        method: 'POST',
        headers,
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(context.timeoutMs),
      });
    } catch (error) {
      throw new DependencyError('identomat', `result/ unreachable: ${requestFault(error, context.timeoutMs)}`, { cause: error });
    }
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel();
      throw new ConfigurationError(`Identomat result/ answered a redirect (${response.status}), not followed: set baseUrl in the identomat secret to the API's own https URL`);
    }
    // Inferred (unpublished): the request carries no identity but the company's credentials.
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      throw new ConfigurationError(`Identomat result/ answered ${response.status}: check companyKey, hmacKey and baseUrl in the identomat secret`);
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw endpointFault('identomat', `result/ answered ${response.status}`, response);
    }
    let raw: Buffer;
    try {
      raw = await readBounded(response, MAX_ANSWER_BYTES);
    } catch (error) {
      throw new DependencyError('identomat', `result/ answer could not be read: ${errorMessage(error)}`, { cause: error });
    }
    const signature = response.headers.get('authorization');
    if (secret.hmacKey !== undefined && signature !== null && !answerSignatureVerifies(signature, hmacOf(secret, raw))) {
      throw new ConfigurationError('Identomat result/ answered with a signature that does not verify: check hmacKey, hmacKeyEncoding and baseUrl in the identomat secret');
    }
    const answer = answerJson('identomat', 'result/', raw);
    if (answer === undefined) throw new DependencyError('identomat', 'result/ answered 200 with a body that is not JSON');
    if (!answer || typeof answer !== 'object' || Array.isArray(answer)) throw new DependencyError('identomat', 'result/ answer is not a JSON object');
    const result = member(answer, 'result');
    if (result === undefined || result === null || result === '') return { kind: 'not_found' };
    if (typeof result !== 'string' || result.length > 64 || LONE_SURROGATE.test(result)) {
      throw new DependencyError('identomat', 'result/ answer has a result that is not a short text');
    }
    const video = videoCallStatusOf(member(answer, 'videoCallStatus'));
    return {
      kind: 'found',
      payload: { type: SESSION_CHANGE, sessionId: sessionToken, result, [LOOKUP_FIELD]: lookupId, ...(video ? { videoCallStatus: video } : {}) },
    };
  },

  canLookup: (secret) => secret.companyKey !== undefined,

  lookupLimits: identomatLookupLimits({}),
  lookupLimitsFor: identomatLookupLimits,

  differences(claim, answer) {
    // Only a session-change claims a status; an instruction or a video update claims nothing the
    // answer could contradict (its own status is read from the answer all the same).
    if (claim.type !== SESSION_CHANGE) return [];
    return asciiUpperCase(claim.result ?? '') === asciiUpperCase(answer.result ?? '') ? [] : ['result'];
  },
};
