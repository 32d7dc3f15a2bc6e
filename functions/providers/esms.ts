import * as z from '../core/zod.ts';
import { authenticatePathToken, configuredString, schemaMismatch } from './common.ts';
import { secretVersions, type Outcome, type Provider } from './provider.ts';
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

/**
 * An eSMS callback: everything is in the GET query string and every value is a string.
 * SMS/Zalo/Viber callbacks carry `SMSID`; voice call results carry `ReferenceId`.
 * @see https://developers.esms.vn/esms-api/callback-url
 */
export const EsmsCallbackSchema = z
  .looseObject({
    SMSID: z.optional(z.string().check(z.minLength(1), z.maxLength(128))),
    ReferenceId: z.optional(z.string().check(z.minLength(1), z.maxLength(128))),
    SendStatus: digits,
    SendSuccess: z.optional(digits),
    SendFailed: z.optional(digits),
    SentResult: z.optional(digits),
    // Part of the subject id (partition key): a phone number, not a document.
    phonenumber: z.optional(z.string().check(z.maxLength(32))),
    error_info: z.optional(z.string()),
  })
  .check(z.refine((query) => query.SMSID || query.ReferenceId, { message: 'SMSID (or ReferenceId for voice) is required', path: ['SMSID'] }));
export type EsmsCallback = z.infer<typeof EsmsCallbackSchema> & { errorInfo?: unknown };

/** Query parameters with eSMS's inconsistent name case folded to the canonical spelling. */
export function canonicalQuery(rawQuery: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const pair of rawQuery.split('&')) {
    if (!pair) continue;
    const split = pair.indexOf('=');
    const name = decodeComponent(split < 0 ? pair : pair.slice(0, split));
    const value = split < 0 ? '' : decodeComponent(pair.slice(split + 1));
    result[CANONICAL_BY_LOWER.get(name.toLowerCase()) ?? name] = value;
  }
  return result;
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
 * `error_info` arrives in three encodings (samples/esms): a JSON string literal wrapping JSON,
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

function classify(query: EsmsCallback): { outcome: Outcome; terminal: boolean; rank: number } {
  switch (query.SendStatus) {
    case '4':
      return { outcome: 'failed', terminal: true, rank: 0 };
    case '5': {
      // "sent": the outcome is in the counters (voice: SentResult 0 fail / 1 success).
      const delivered = query.ReferenceId && !query.SMSID
        ? query.SentResult === '1'
        : count(query.SendSuccess) > 0 || count(query.SendFailed) === 0;
      return { outcome: delivered ? 'succeeded' : 'failed', terminal: true, rank: 0 };
    }
    case '7':
      return { outcome: 'pending', terminal: false, rank: 1 };
    default:
      return { outcome: 'pending', terminal: false, rank: 0 };
  }
}

export const esms: Provider<EsmsSecret, EsmsCallback> = {
  id: 'esms',
  displayName: 'eSMS',
  docsUrl: 'https://developers.esms.vn/esms-api/callback-url',
  route: { method: 'GET', path: '/callbacks/esms/{token}' },
  authSummary: 'secret token in the URL path (eSMS signs nothing)',
  secretSchema: EsmsSecretSchema,
  generatedSecretField: 'token',
  secretPlaceholder: { token: 'REPLACE_ME' },

  authenticate: (request, secret) =>
    authenticatePathToken(request, secretVersions(secret).map((version) => version.token)),

  parse(request) {
    if (request.rawQuery.length === 0) return { ok: false, reason: 'empty query string', issues: [] };
    const query = canonicalQuery(request.rawQuery);
    const result = EsmsCallbackSchema.safeParse(query);
    if (!result.success) return schemaMismatch(result.error);
    const payload: EsmsCallback = result.data;
    if (payload.error_info) {
      const errorInfo = decodeErrorInfo(payload.error_info);
      if (errorInfo !== undefined) return { ok: true, payload: { ...payload, errorInfo } };
    }
    return { ok: true, payload };
  },

  describe(query) {
    const messageId = query.SMSID ?? `voice:${query.ReferenceId}`;
    const subjectId = query.phonenumber ? `${messageId}:${query.phonenumber}` : messageId;
    return {
      subjectId,
      eventKey: `${query.SendStatus}|${query.SendSuccess ?? ''}|${query.SendFailed ?? ''}|${query.SentResult ?? ''}`,
      status: query.SendStatus,
      ...classify(query),
    };
  },
};
