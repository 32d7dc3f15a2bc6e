import { createHmac, timingSafeEqual } from 'node:crypto';
import * as z from '../core/zod.ts';
import { secureEquals } from '../core/secure-compare.ts';
import { configuredString, parseJsonWith, toIsoTime } from './common.ts';
import { secretVersions, type Outcome, type Provider } from './provider.ts';
import { secretWithRotation } from './secret-schema.ts';

/** `{ customerId, apiKey }` from the TeleSign portal; apiKey is base64 as TeleSign shows it. */
export const TeleSignSecretSchema = secretWithRotation({ customerId: configuredString, apiKey: configuredString });
export type TeleSignSecret = z.infer<typeof TeleSignSecretSchema>;

/**
 * Values that end up in the event's sort key and the state item are bounded, so a hostile value is
 * quarantined instead of making the event unstorable (DynamoDB keys: 1 KB sort, 2 KB partition).
 */
const SHORT = 64;

/** TeleSign sends `message_parts_count` and codes both as numbers and as strings. */
const code = z.union([z.int(), z.pipe(z.string().check(z.regex(/^-?\d+$/)), z.transform(Number))]);

/**
 * A TeleSign callback. Three shapes reach the same URL: delivery reports (SMS, Verify, bulk, MO,
 * templates: `status.code`), the unified Verify API (`state`) and Voice (`event`).
 * Unknown fields are kept.
 * @see https://developer.telesign.com/enterprise/docs/transaction-callback-service
 */
export const TeleSignCallbackSchema = z
  .looseObject({
    reference_id: z.string().check(z.minLength(1), z.maxLength(128)),
    status: z.optional(
      z.looseObject({ code, description: z.optional(z.string()), updated_on: z.optional(z.string().check(z.maxLength(SHORT))) }),
    ),
    state: z.optional(z.string().check(z.minLength(1), z.maxLength(SHORT))),
    event: z.optional(z.string().check(z.minLength(1), z.maxLength(SHORT))),
    updated_on: z.nullish(z.string().check(z.maxLength(SHORT))),
  })
  .check(
    z.refine((body) => body.status || body.state || body.event, {
      message: 'one of status.code, state (Verify API) or event (Voice) is required',
      path: ['status'],
    }),
  );
export type TeleSignCallback = z.infer<typeof TeleSignCallbackSchema>;

// status-codes.txt: final 200/207/210/211/220/221 (docs), 203 intermediate; 29x in progress (inferred).
const PENDING_CODES = new Set([203, 290, 291, 292, 293, 294, 295, 103, 105, 3850, 3854]);
const SUCCESS_CODES = new Set([200, 201, 100, 1500, 3851]);
const VERIFY_PENDING = new Set(['CREATED', 'ONGOING']);

function classifyCode(statusCode: number): { outcome: Outcome; terminal: boolean } {
  if (PENDING_CODES.has(statusCode)) return { outcome: 'pending', terminal: false };
  return { outcome: SUCCESS_CODES.has(statusCode) ? 'succeeded' : 'failed', terminal: true };
}

/** TeleSign's key is base64; its published test vector carries non-base64 characters that its own SDKs drop. */
function decodeApiKey(apiKey: string): Buffer {
  let key = decodedKeys.get(apiKey);
  if (!key) {
    if (decodedKeys.size >= 8) decodedKeys.clear();
    key = Buffer.from(apiKey.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
    decodedKeys.set(apiKey, key);
  }
  return key;
}
/** Decoded once per key (current and previous), not on every callback. */
const decodedKeys = new Map<string, Buffer>();

/** HMAC-SHA256(base64decode(apiKey), raw body): the bytes TeleSign signs callbacks with. */
function teleSignDigest(apiKey: string, body: Buffer | string): Buffer {
  return createHmac('sha256', decodeApiKey(apiKey)).update(body).digest();
}

/** base64(HMAC-SHA256(base64decode(apiKey), raw body)), as TeleSign signs callbacks. */
export function teleSignSignature(apiKey: string, body: Buffer | string): string {
  return teleSignDigest(apiKey, body).toString('base64');
}

/**
 * The received signature as bytes, when it is the canonical base64 of an HMAC-SHA256 (32 bytes);
 * anything else can never match. Checking the encoding looks only at what was received.
 */
function signatureBytes(signature: string): Buffer | undefined {
  const bytes = Buffer.from(signature, 'base64');
  return bytes.length === 32 && bytes.toString('base64') === signature ? bytes : undefined;
}

/** Auth scheme names are case-insensitive in HTTP. */
const TSA_HEADER = /^TSA ([^:\s]+):(\S+)$/i;

export const telesign: Provider<TeleSignSecret, TeleSignCallback> = {
  id: 'telesign',
  displayName: 'TeleSign',
  docsUrl: 'https://developer.telesign.com/enterprise/docs/transaction-callback-service',
  route: { method: 'POST', path: '/callbacks/telesign' },
  authSummary: 'Authorization: TSA <customerId>:<base64 HMAC-SHA256 of the raw body>',
  secretSchema: TeleSignSecretSchema,
  secretPlaceholder: { customerId: 'REPLACE_ME', apiKey: 'REPLACE_ME' },

  authenticate(request, secret) {
    const header = request.headers['authorization'];
    if (!header) return { ok: false, reason: 'missing Authorization header' };
    const match = TSA_HEADER.exec(header.trim());
    if (!match) return { ok: false, reason: 'Authorization header is not "TSA <customerId>:<signature>"' };
    const [, customerId, signature] = match;
    // Digests of equal length compared in constant time: no need to hash them again (secureEquals).
    const received = signatureBytes(signature);
    let customerSeen = false;
    for (const version of secretVersions(secret)) {
      const customerOk = secureEquals(customerId, version.customerId);
      const signatureOk = received !== undefined && timingSafeEqual(received, teleSignDigest(version.apiKey, request.body));
      if (customerOk && signatureOk) return { ok: true };
      customerSeen ||= customerOk;
    }
    return { ok: false, reason: customerSeen ? 'signature does not match the body' : 'unknown customer id' };
  },

  parse: (request) => parseJsonWith(request, TeleSignCallbackSchema),

  asSent: (body, secret) => ({
    headers: { 'content-type': 'application/json', authorization: `TSA ${secret.customerId}:${teleSignSignature(secret.apiKey, body)}` },
    body,
  }),

  describe(payload) {
    const referenceId = payload.reference_id;
    if (payload.status) {
      const statusCode = payload.status.code;
      const updatedOn = payload.status.updated_on ?? '';
      return {
        subjectId: referenceId,
        eventKey: `${statusCode}|${updatedOn}`,
        status: String(statusCode),
        statusAt: toIsoTime(updatedOn),
        rank: 0,
        ...classifyCode(statusCode),
      };
    }
    if (payload.state) {
      const state = payload.state.toUpperCase();
      const pending = VERIFY_PENDING.has(state);
      return {
        subjectId: referenceId,
        eventKey: `${state}|${payload.updated_on ?? ''}`,
        status: state,
        statusAt: toIsoTime(payload.updated_on),
        rank: 0,
        terminal: !pending,
        outcome: pending ? 'pending' : state === 'VERIFIED' ? 'succeeded' : 'failed',
      };
    }
    const event = payload.event ?? 'unknown';
    // `data` is not checked by the schema: only a short string is taken as the end time.
    const endedOn = (payload as { data?: { ended_on_utc?: unknown } }).data?.ended_on_utc;
    const data = { ended_on_utc: typeof endedOn === 'string' && endedOn.length <= SHORT ? endedOn : undefined };
    const completed = event === 'call_completed';
    return {
      subjectId: referenceId,
      eventKey: `${event}|${data?.ended_on_utc ?? ''}`,
      status: event,
      statusAt: toIsoTime(data?.ended_on_utc),
      rank: 0,
      terminal: completed,
      outcome: completed ? 'succeeded' : 'pending',
    };
  },
};
