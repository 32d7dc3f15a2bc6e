import { shortHash } from '../shared/hash.ts';
import * as z from '../shared/zod.ts';
import { authenticatePathToken, configuredString, schemaMismatch } from './common.ts';
import { secretVersions, type EventFacts, type Outcome, type Provider, type StatusDetail } from './provider.ts';
import { secretWithRotation } from './secret-schema.ts';

/** `{ token }`: the random secret in the callback URL (eSMS authenticates nothing itself). */
export const EsmsSecretSchema = secretWithRotation({ token: configuredString });
export type EsmsSecret = z.infer<typeof EsmsSecretSchema>;

/** eSMS's field names, spelled as its samples spell them; the query may use any case. */
const CANONICAL_NAMES = [
  'SMSID', 'SendFailed', 'SendStatus', 'SendSuccess', 'TotalPrice', 'TotalReceiver', 'TotalSent',
  'RequestId', 'TypeId', 'telcoid', 'phonenumber', 'partnerids', 'error_info', 'oaid', 'tempid',
  'switchsmsid', 'ReferenceId', 'CallDuration', 'CallStatus', 'Ivr', 'Price', 'SentResult', 'CID',
] as const;
const CANONICAL_BY_LOWER = new Map<string, string>(CANONICAL_NAMES.map((name) => [name.toLowerCase(), name]));

// Counters and statuses are short numbers; bounded, as they end up in keys (DynamoDB keys: 1 KB sort, 2 KB partition).
const digits = z.string().check(z.maxLength(20), z.regex(/^\d+$/, 'expected digits'));

/** Subject ids of voice call results: `voice:<ReferenceId>`. No SMSID may take this form. */
const VOICE_PREFIX = 'voice:';

/**
 * An eSMS callback: everything is in the GET query string and every value is a string.
 * SMS/Zalo/Viber callbacks carry `SMSID`; voice call results carry `ReferenceId`.
 *
 * An SMSID that starts with `voice:` is refused (quarantined, kept whole): voice results are kept
 * under `voice:<ReferenceId>`, and such an SMSID would land on the same subject as a call. eSMS's
 * SMSIDs are ids it generates: hex or UUID text, often followed by digits, in every callback sample
 * and status answer its docs show (`82b0bb8aed914a0aab8deba567c9b8c2`,
 * `dc712784-9c5f-4c69-b9a8-ea69d56adc9a87`), so a genuine one never has that form (inferred).
 * @see https://developers.esms.vn/esms-api/callback-url
 * @see https://github.com/devesms/gitbook_esms_for_develop_v2 `esms-api/ham-goi-voice/ham-tao-cuoc-goi-tu-dong-tu-file-ghi-am.md` (voice call results)
 */
export const EsmsCallbackSchema = z
  .looseObject({
    SMSID: z.optional(
      z.string().check(
        z.minLength(1),
        z.maxLength(128),
        z.refine((id) => !id.startsWith(VOICE_PREFIX), `an SMSID cannot start with "${VOICE_PREFIX}": that is how voice call results (ReferenceId) are keyed`),
      ),
    ),
    ReferenceId: z.optional(z.string().check(z.minLength(1), z.maxLength(128))),
    SendStatus: digits,
    SendSuccess: z.optional(digits),
    SendFailed: z.optional(digits),
    TotalReceiver: z.optional(digits),
    SentResult: z.optional(digits),
    // The recipient's state is kept under it (sort key): a phone number or a Zalo user id, not a document.
    phonenumber: z.optional(z.string().check(z.maxLength(32))),
    error_info: z.optional(z.string()),
  })
  .check(z.refine((query) => query.SMSID || query.ReferenceId, { message: 'SMSID (or ReferenceId for voice) is required', path: ['SMSID'] }));
export type EsmsCallback = z.infer<typeof EsmsCallbackSchema> & { errorInfo?: unknown };

/**
 * The fields the gateway reads (subject, recipient, event, outcome). One of them given twice with
 * different values (`SMSID=A&smsid=B`) does not say which is true: the callback is quarantined.
 */
const READ_FIELDS = new Set(['SMSID', 'ReferenceId', 'SendStatus', 'SendSuccess', 'SendFailed', 'TotalReceiver', 'SentResult', 'phonenumber', 'error_info']);

/** Query parameters with eSMS's inconsistent name case folded to the canonical spelling. */
export function canonicalQuery(rawQuery: string): Record<string, string> {
  return readQuery(rawQuery).query;
}

/** The canonical query, and the read fields that were given more than once with different values. */
function readQuery(rawQuery: string): { query: Record<string, string>; conflicts: string[] } {
  const query: Record<string, string> = {};
  const conflicts: string[] = [];
  for (const pair of rawQuery.split('&')) {
    if (!pair) continue;
    const split = pair.indexOf('=');
    const name = decodeComponent(split < 0 ? pair : pair.slice(0, split));
    const value = split < 0 ? '' : decodeComponent(pair.slice(split + 1));
    const canonical = CANONICAL_BY_LOWER.get(name.toLowerCase()) ?? name;
    const previous = query[canonical];
    if (previous !== undefined && previous !== value && READ_FIELDS.has(canonical) && !conflicts.includes(canonical)) conflicts.push(canonical);
    query[canonical] = value;
  }
  return { query, conflicts };
}

/**
 * Percent-decoding only: a literal `+` stays a `+` (form decoding would turn `phonenumber=+84…` into
 * a space). A malformed escape is kept as sent rather than failing the whole callback.
 */
function decodeComponent(value: string): string {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * `error_info` arrives in three encodings (the eSMS docs' samples, test/fixtures/esms/zalo-*.query): a JSON string literal wrapping JSON,
 * double URL-encoded JSON with a `____dd/MM/yyyy HH:mm:ss` suffix, and plain JSON.
 */
export function decodeErrorInfo(value: string): unknown {
  const plain = parseObject(value);
  if (plain) return plain;
  let decoded: string;
  try {
    decoded = decodeURIComponent(value);
  } catch {
    return undefined; // not URL-encoded
  }
  return parseObject(decoded.replace(/____\d{2}\/\d{2}\/\d{4} \d{2}:\d{2}:\d{2}$/, ''));
}

/** JSON text that can hold an object: an object, an array, or a string (JSON inside JSON). */
const MAY_HOLD_OBJECT = /^\s*[{["]/;

/**
 * The object a JSON text (or a JSON string of JSON) holds, else undefined. Text that cannot be one
 * is told apart before JSON.parse: a thrown SyntaxError cost ~3 us per encoded error_info.
 */
function parseObject(text: string): object | undefined {
  if (!MAY_HOLD_OBJECT.test(text)) return undefined;
  try {
    let parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'string') parsed = MAY_HOLD_OBJECT.test(parsed) ? JSON.parse(parsed) : undefined;
    return parsed && typeof parsed === 'object' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

const count = (value: string | undefined) => (value === undefined ? 0 : Number(value));

/** Voice call results name the call by ReferenceId and carry no SMSID. */
const isVoice = (query: EsmsCallback) => query.SMSID === undefined;

/**
 * The state orders a terminal status by rank first: a SendStatus 5 ranks by how many recipients its
 * counters account for (SendSuccess + SendFailed), so a late retry of an earlier report never
 * replaces a fuller one (inferred: eSMS's counters for a message only grow). Capped, as the state
 * compares ranks as three digits.
 */
const MAX_RANK = 899;

/**
 * A recipient's Zalo error (`error_info.error`, e.g. -114 "User is inactive…"), or undefined when
 * there is none: absent, null and 0 (the samples' "Success") mean no error.
 */
function zaloErrorOf(errorInfo: unknown): string | undefined {
  if (!errorInfo || typeof errorInfo !== 'object' || Array.isArray(errorInfo)) return undefined;
  const error = (errorInfo as Record<string, unknown>).error;
  if (error === undefined || error === null || error === 0 || error === '0') return undefined;
  return typeof error === 'number' || (typeof error === 'string' && INTEGER.test(error)) ? String(error) : JSON.stringify(error);
}
const INTEGER = /^-?\d{1,18}$/;

/** How a SendStatus 5 was turned into an outcome, kept in the state's `detail.inference`. */
export type EsmsInference = 'all-succeeded' | 'all-failed' | 'mixed' | 'none-counted' | 'not-all-counted' | 'zalo-error';

/**
 * SendStatus 5 is "sent; the outcome is in the counters" (SendSuccess / SendFailed), and the
 * counters are the message's, not the recipient's (the customer-care sample names one recipient
 * and counts TotalReceiver 2, SendFailed 2). So, all (inferred) from the counters:
 * - a recipient (the callback names a `phonenumber`): a Zalo `error_info` with a non-zero `error`
 *   is that recipient's failure (`zalo-error`); else every counted recipient succeeded
 *   (SendSuccess > 0, SendFailed 0: `all-succeeded`) or failed (SendSuccess 0, SendFailed > 0:
 *   `all-failed`), which covers a one-recipient message (TotalReceiver 1) too. Some of each
 *   (`mixed`) cannot say which recipient this was: `unknown`, never success.
 * - the message as a whole (no `phonenumber`): succeeded or failed only when every recipient is
 *   counted the same way (TotalReceiver, when sent, is reached); `mixed` and `not-all-counted`
 *   are `unknown` (there is no "partial" outcome).
 * - nothing counted (both 0 or absent, as in the promo sample with TotalReceiver 169): `unknown`.
 * Voice call results are documented: SentResult 1 succeeded, 0 failed; anything else `unknown`.
 */
function sentOutcome(query: EsmsCallback, recipient: string | undefined, zaloError: string | undefined): { outcome: Outcome; rank: number; inference?: EsmsInference } {
  if (isVoice(query)) return { outcome: query.SentResult === '1' ? 'succeeded' : query.SentResult === '0' ? 'failed' : 'unknown', rank: 0 };
  const success = count(query.SendSuccess);
  const failed = count(query.SendFailed);
  const rank = Math.min(success + failed, MAX_RANK);
  if (recipient !== undefined && zaloError !== undefined) return { outcome: 'failed', rank, inference: 'zalo-error' };
  if (success > 0 && failed > 0) return { outcome: 'unknown', rank, inference: 'mixed' };
  if (success === 0 && failed === 0) return { outcome: 'unknown', rank, inference: 'none-counted' };
  if (recipient === undefined && success + failed < count(query.TotalReceiver)) return { outcome: 'unknown', rank, inference: 'not-all-counted' };
  return success > 0 ? { outcome: 'succeeded', rank, inference: 'all-succeeded' } : { outcome: 'failed', rank, inference: 'all-failed' };
}

/** The counters as sent (strings, exactly), and what was made of them. */
function detailOf(query: EsmsCallback, zaloError: string | undefined, inference: EsmsInference | undefined): StatusDetail | undefined {
  const detail: Record<string, string> = {};
  if (inference !== undefined) detail.inference = inference;
  if (query.SendSuccess !== undefined) detail.SendSuccess = query.SendSuccess;
  if (query.SendFailed !== undefined) detail.SendFailed = query.SendFailed;
  if (query.TotalReceiver !== undefined) detail.TotalReceiver = query.TotalReceiver;
  if (query.SentResult !== undefined) detail.SentResult = query.SentResult;
  if (zaloError !== undefined) detail.zaloError = zaloError;
  return Object.keys(detail).length ? detail : undefined;
}

function classify(query: EsmsCallback, recipient: string | undefined, zaloError: string | undefined): Pick<EventFacts, 'outcome' | 'terminal' | 'rank' | 'detail'> {
  let reading: { outcome: Outcome; terminal: boolean; rank: number; inference?: EsmsInference };
  switch (query.SendStatus) {
    case '4': // rejected
      reading = { outcome: 'failed', terminal: true, rank: 0 };
      break;
    case '5':
      reading = { terminal: true, ...sentOutcome(query, recipient, zaloError) };
      break;
    case '7': // sent to the telco, awaiting its report: later than 1 and 2
      reading = { outcome: 'pending', terminal: false, rank: 1 };
      break;
    default: // 1 pending approval, 2 waiting to send; unlisted codes are never success either
      reading = { outcome: 'pending', terminal: false, rank: 0 };
  }
  const detail = detailOf(query, zaloError, reading.inference);
  return { outcome: reading.outcome, terminal: reading.terminal, rank: reading.rank, ...(detail ? { detail } : {}) };
}

/**
 * What makes a callback distinct: every field its subject, recipient and outcome are read from.
 * A retry (the same query) has the same key. The recipient comes last and the fields before it hold
 * no `|` (digits; a Zalo error code that is not an integer is hashed), so no two callbacks share a key.
 */
function eventKeyOf(query: EsmsCallback, zaloError: string | undefined, recipient: string | undefined): string {
  const zalo = zaloError === undefined ? '' : INTEGER.test(zaloError) ? zaloError : `#${shortHash(zaloError)}`;
  return `${query.SendStatus}|${query.SendSuccess ?? ''}|${query.SendFailed ?? ''}|${query.TotalReceiver ?? ''}|${query.SentResult ?? ''}|${zalo}|${recipient ?? ''}`;
}

export const esms: Provider<EsmsSecret, EsmsCallback, 'esms'> = {
  id: 'esms',
  displayName: 'eSMS',
  docsUrl: 'https://developers.esms.vn/esms-api/callback-url',
  route: { method: 'GET', path: '/callbacks/esms/{token}', tokenParameter: 'token' },
  authSummary: 'secret token in the URL path (eSMS signs nothing)',
  // A URL token only (eSMS signs nothing).
  callbackTrust: 'token',
  secretSchema: EsmsSecretSchema,
  generatedSecretField: 'token',
  secretPlaceholder: { token: 'REPLACE_ME' },

  authenticate: (request, secret) =>
    authenticatePathToken(request, secretVersions(secret).map((version) => version.token)),

  parse(request) {
    if (request.rawQuery.length === 0) return { ok: false, reason: 'empty query string', issues: [] };
    const { query, conflicts } = readQuery(request.rawQuery);
    if (conflicts.length) {
      return {
        ok: false,
        reason: `${conflicts.join(', ')} given more than once with different values`,
        issues: conflicts.map((name) => `${name}: given more than once with different values; which one is true is not said`),
      };
    }
    const result = EsmsCallbackSchema.safeParse(query);
    if (!result.success) return schemaMismatch(result.error);
    const payload: EsmsCallback = result.data;
    if (payload.error_info) {
      const errorInfo = decodeErrorInfo(payload.error_info);
      if (errorInfo !== undefined) return { ok: true, payload: { ...payload, errorInfo } };
    }
    return { ok: true, payload };
  },

  /**
   * The subject is the message, named by the SMSID exactly as the send API returned it (`pk =
   * "esms#<SMSID>"`); a voice call result is `voice:<ReferenceId>`. A callback that names a
   * recipient (`phonenumber`) is about that recipient: it is the part, and the recipient's state is
   * kept at `STATE#<phonenumber>` in the message's partition. Without one (or with an empty one)
   * it is about the message as a whole (`STATE`).
   */
  describe(query) {
    const recipient = query.phonenumber ? query.phonenumber : undefined;
    const zaloError = zaloErrorOf(query.errorInfo);
    return {
      subjectId: isVoice(query) ? `${VOICE_PREFIX}${query.ReferenceId}` : (query.SMSID as string),
      ...(recipient === undefined ? {} : { part: recipient }),
      eventKey: eventKeyOf(query, zaloError, recipient),
      status: query.SendStatus,
      ...classify(query, recipient, zaloError),
    };
  },
};
