import { createHmac, timingSafeEqual } from 'node:crypto';
import * as z from '../shared/zod.ts';
import { secureEquals } from '../shared/secure-compare.ts';
import { ConfigurationError, DependencyError, MessageRefusedError, UncertainDeliveryError, errorMessage } from '../shared/errors.ts';
import { retryAfterSeconds } from '../shared/retry-after.ts';
import { answerJson, endpointFault, asciiUpperCase, canonicalJson, configuredString, credentialUrl, describeIssues, keySegment, parseJsonWith, readBoundedBody, requestFault, shortHash, toIsoTime, unclearJson } from './common.ts';
import { secretVersions, type EventFacts, type LookupContext, type OutgoingMessage, type Outcome, type Provider, type SendContext, type SentMessage, type StatusAnswer, type StatusDetail } from './provider.ts';
import { secretWithRotation } from './secret-schema.ts';

/**
 * What a TeleSign callback means, as TeleSign's own pages say it (where they are silent, the
 * fail-closed reading, marked "(inferred)"):
 * - Final vs intermediate codes, Voice Verify codes:
 *   https://developer.telesign.com/enterprise/docs/all-status-and-error-codes
 *   ("A transaction with an intermediate code may resolve to another status later. One with a final
 *   code will not change status in the future.")
 * - SMS / SMS Verify / bulk SMS delivery report codes:
 *   https://developer.telesign.com/enterprise/reference/smsdeliveryreports and the callback tables of
 *   TeleSign's OpenAPI files (https://developer.telesign.com/enterprise/openapi/*.json)
 * - SMS Verify `verify.code_state`: https://developer.telesign.com/enterprise/docs/sms-verify-api-callback-service
 *   (callbacks: "At this point in the verification process, the status is always UNKNOWN"; the newer
 *   https://developer.telesign.com/enterprise/docs/sms-verify-callback-service shows UNKNOWN in its examples)
 *   and https://developer.telesign.com/enterprise/docs/additional-features-transaction-callback-service
 *   (an example with VALID); meanings from the SMS Verify API's Get Status schema (GET /v1/verify/{reference_id}),
 *   max attempts from https://developer.telesign.com/enterprise/docs/sms-verify-api-verify-with-telesign-code
 * - Unified Verify API `state`: https://developer.telesign.com/enterprise/openapi/verify-api-callbacks.json
 * - Voice events: https://developer.telesign.com/enterprise/reference/voice-events and TeleSign's
 *   sample server (github.com/TeleSign/voice_server_demo), the only source of `data.status` values.
 */

/** The key TeleSign signs with must carry real key material: a masked or truncated copy never may. */
export const MIN_API_KEY_BYTES = 16;

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

/**
 * The API key as TeleSign's portal shows it (base64). One that decodes to fewer than 16 bytes (a
 * masked `********` copied from the portal, a truncated paste) is refused: it would be an HMAC key
 * anyone can guess. The message never repeats the value.
 */
const apiKeyString = configuredString.check(
  z.refine(
    (value) => decodeApiKey(value).length >= MIN_API_KEY_BYTES,
    `decodes to fewer than ${MIN_API_KEY_BYTES} bytes of key material; copy the whole base64 API key from the TeleSign portal`,
  ),
);

/**
 * TeleSign's REST host for full-service ("enterprise") accounts. Self-service and trial accounts use
 * https://rest-api.telesign.com instead (set `baseUrl`); the legacy https://rest.telesign.com is one
 * TeleSign asks customers to move off.
 * @see https://developer.telesign.com/enterprise/docs/sms-api-obtain-transaction-status-results
 * @see https://developer.telesign.com/standard/docs/sms-api-obtain-transaction-status-results
 */
export const TELESIGN_REST_URL = 'https://rest-ww.telesign.com';

/**
 * TeleSign's two Get Status endpoints: `messaging` is GET /v1/messaging/{reference_id} (the SMS
 * API), `verify` is GET /v1/verify/{reference_id} (SMS Verify and Voice Verify).
 */
export const GET_STATUS_APIS = ['messaging', 'verify'] as const;
export type GetStatusApi = (typeof GET_STATUS_APIS)[number];

/**
 * `{ customerId, apiKey }` from the TeleSign portal (apiKey is base64 as TeleSign shows it), and the
 * optional Get Status settings, none rotated (`previous` holds credentials only):
 * - `statusLookup` (default false): ask Get Status at all. Opt-in, because TeleSign does not say
 *   whether a Get Status call is billed, and its pages warn that trying it in the API Explorer
 *   "results in your account being charged for the transaction"
 *   (https://developer.telesign.com/enterprise/docs/voice-verify-get-transaction-status).
 * - `baseUrl` (default https://rest-ww.telesign.com): https://rest-api.telesign.com for
 *   self-service accounts, or a stand-in (http://127.0.0.1:PORT).
 * - `statusApis` (default messaging then verify): the Get Status endpoints asked, in order, until
 *   one knows the reference id. An account that only sends SMS, or only verifies, lists one and
 *   saves a call per subject the first one does not know.
 */
export const TeleSignSecretSchema = z.extend(secretWithRotation({ customerId: configuredString, apiKey: apiKeyString }), {
  statusLookup: z._default(z.boolean(), false),
  baseUrl: z._default(credentialUrl, TELESIGN_REST_URL),
  statusApis: z._default(
    z.array(z.enum(GET_STATUS_APIS)).check(
      z.minLength(1),
      z.refine((apis) => new Set(apis).size === apis.length, 'lists an endpoint twice'),
    ),
    [...GET_STATUS_APIS],
  ),
});
export type TeleSignSecret = z.infer<typeof TeleSignSecretSchema>;

/**
 * Values that end up in the event's sort key and the state item are bounded, so a hostile value is
 * quarantined instead of making the event unstorable (DynamoDB keys: 1 KB sort, 2 KB partition).
 */
const SHORT = 64;

/**
 * TeleSign sends `message_parts_count` and codes both as numbers and as strings. An integer is checked
 * with a refine, not `z.int()`, whose number formats cost this provider's ingest bundle 1.4 KB. A
 * string must name a safe integer too: past 2^53 Number rounds, and two codes (`…993`, `…992`) read
 * as one status and one event key, the second taken for a retry of the first and never stored.
 */
const code = z.union([
  z.number().check(z.refine(Number.isSafeInteger, 'expected an integer')),
  z.pipe(z.string().check(z.regex(/^-?\d+$/), z.refine((text) => Number.isSafeInteger(Number(text)), 'expected an integer')), z.transform(Number)),
]);

/**
 * A TeleSign callback. Three shapes reach the same URL: delivery reports (SMS, Verify, bulk, MO,
 * templates: `status.code`, SMS Verify adds `verify.code_state`), the unified Verify API (`state`)
 * and Voice (`event`, with a `data` object the schema leaves unchecked: `describe` reads only short
 * strings from it). Unknown fields are kept.
 * @see https://developer.telesign.com/enterprise/docs/transaction-callback-service
 */
export const TeleSignCallbackSchema = z
  .looseObject({
    reference_id: z.string().check(z.minLength(1), z.maxLength(128)),
    status: z.optional(
      z.looseObject({ code, description: z.optional(z.string()), updated_on: z.optional(z.string().check(z.maxLength(SHORT))) }),
    ),
    // Part of the status and the event key: a short value or nothing.
    verify: z.optional(z.looseObject({ code_state: z.nullish(z.string().check(z.maxLength(SHORT))) })),
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

type Meaning = { readonly outcome: Outcome; readonly terminal: boolean };
const PENDING: Meaning = { outcome: 'pending', terminal: false };
const SUCCEEDED: Meaning = { outcome: 'succeeded', terminal: true };
const FAILED: Meaning = { outcome: 'failed', terminal: true };
/** TeleSign is done, or cannot tell, but did not say it worked: never success, listed for review. */
const UNKNOWN: Meaning = { outcome: 'unknown', terminal: true };

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, index) => from + index);

/**
 * `status.code` values that may still change. TeleSign labels only 203 "(Intermediate)" (and 3001,
 * 3901 in the unified Verify API); the others say so in their text: 290 "Message in progress",
 * 291 "Queued by TeleSign" (older lists only), 292 "Queued by gateway", 295 "Status delayed: the
 * status of the SMS is temporarily unavailable" (a later status is expected: pending, inferred),
 * 103 "Call in progress ... it will resolve to a different status code", 105 "Call not handled
 * yet", and the template states 3850 created / 3854 flagged (inferred: a review follows).
 */
const PENDING_CODES = new Set([203, 290, 291, 292, 295, 103, 105, 3001, 3901, 3850, 3854]);
/**
 * 200 "Delivered to handset" (Final); 201, "Message is read: Message read by end user. Final"
 * (Messaging) on the all-status page, and "Transaction successfully completed, suspicious activity
 * detected" in the delivery-report code list gathered from TeleSign's callback OpenAPI files
 * (engage-callbacks, sms-verify-api-callbacks): a success either way; 100 "Call answered"; 1500
 * inbound message delivered to you; 3851 template approved.
 * @see https://developer.telesign.com/enterprise/docs/all-status-and-error-codes
 * @see https://developer.telesign.com/enterprise/openapi/*.json
 */
const SUCCESS_CODES = new Set([100, 200, 201, 1500, 3851]);
/**
 * Codes TeleSign lists as a delivery that did not happen: 207/210/211/220/221 (labelled Final),
 * 222, 229, 230, 231, 233, 237, 238 (not supported / blocked; 232 and 234–236 are in no table),
 * 286 not attempted, 500–515 and 517–521 (not attempted, rejected, carrier or gateway errors; 516
 * is in no table), the Engage SMS table's 10000/10030–10032/11000,
 * Voice Verify 101 not answered, 104 "Wrong/invalid phone" ("The phone number is not correctly
 * formatted in some way, so a call cannot be placed", Voice, in the standard all-status table,
 * which labels no Voice code Final or Intermediate, as for 101, 106 and 107:
 * https://standard.telesign.com/api-reference/codes-languages-and-time-zones/all-status-and-error-codes),
 * 106 failed, 107 busy, 108 canceled, 129/130 blocked, 133 "Call blocked due to high risk score"
 * (Voice Verify with Score: TeleSign blocked the call before placing it, as 233 does for SMS:
 * https://enterprise.telesign.com/api-reference/apis/voice-verify-api/overview), and the
 * template outcomes 3852 rejected, 3853 removed, 3855 disabled, 3857 removal unsuccessful.
 */
const FAILURE_CODES = new Set([
  101, 104, 106, 107, 108, 129, 130, 133,
  207, 210, 211, 220, 221, 222, 229, 230, 231, 233, 237, 238, 286,
  ...range(500, 515), ...range(517, 521),
  3852, 3853, 3855, 3857,
  10000, 10030, 10031, 10032, 11000,
]);
/**
 * What a `status.code` means. Codes whose own text says the final status is unknown are terminal
 * `unknown`: 250 "Final status unknown"; 251 "no delivery receipt within 12 hours" (the SMS tables
 * say the user "most likely did not receive" it, the bulk SMS table "high probability" it was
 * delivered: TeleSign itself cannot tell); 599 "Status not available: the system is unable to
 * provide status at this time". TeleSign sends a callback once it "determines the final status",
 * so these are not pending; a later real status (a later `updated_on`) still replaces them.
 * A code in none of TeleSign's tables is `unknown` too, never a failure we made up.
 */
function classifyCode(statusCode: number): Meaning {
  if (PENDING_CODES.has(statusCode)) return PENDING;
  if (SUCCESS_CODES.has(statusCode)) return SUCCEEDED;
  if (FAILURE_CODES.has(statusCode)) return FAILED;
  return UNKNOWN;
}

/**
 * SMS Verify's `verify.code_state`, as TeleSign defines it for Get Status: VALID "the codes match",
 * INVALID "the codes do not match", EXPIRED "attempted after the end of the validity period",
 * MAX_ATTEMPTS_EXCEEDED "attempted after the end user already had made the maximum allowed number
 * of attempts", UNKNOWN "any other state". The callback docs say it is "always UNKNOWN" there, yet
 * the general callback page shows VALID: whatever arrives is read, never ignored.
 *
 * The status is `<code> <CODE_STATE>` (`200 VALID`, `200 INVALID`); UNKNOWN or no code state leaves
 * the delivery code alone (`200`). Rank orders code states within a tier, whatever the arrival
 * order: an INVALID attempt is replaced by a later VALID; EXPIRED and MAX_ATTEMPTS_EXCEEDED end it;
 * a VALID stays, since the user did verify (with a delivery code still in progress, 203 VALID, it is
 * succeeded and final: the code reached the user). Any other value is terminal `unknown` (inferred:
 * fail closed).
 *
 * INVALID is failed but not terminal: it is one attempt whose code did not match, and the user may
 * submit again up to the account's max attempts ("The number of times an end user can submit
 * potential matches for a specific verification code"; MAX_ATTEMPTS_EXCEEDED after). The subject
 * stays on the re-check schedule until VALID, EXPIRED or MAX_ATTEMPTS_EXCEEDED (only Get Status
 * tells them: callbacks carry UNKNOWN) or the horizon. It still orders with the terminal statuses
 * (`ranksAsTerminal`), above the bare delivery report and below the other three, so neither a late
 * delivery report nor an older INVALID ever replaces what came after it.
 * @see https://developer.telesign.com/enterprise/docs/sms-verify-api-verify-with-telesign-code
 */
function withCodeState(delivery: Meaning, codeState: string | undefined): Meaning & { rank: number; ranksAsTerminal?: true } {
  switch (codeState) {
    case undefined:
    case 'UNKNOWN':
      return { ...delivery, rank: 0 };
    case 'VALID':
      // The end user entered the code sent: it reached them, whatever the delivery code says so far
      // (203 "sent to carrier" is not yet final). A delivery code that says it failed, or that no
      // table lists, contradicts that: its own meaning stands (fail closed).
      return delivery.outcome === 'pending' ? { ...SUCCEEDED, rank: 3 } : { ...delivery, rank: 3 };
    case 'EXPIRED':
    case 'MAX_ATTEMPTS_EXCEEDED':
      return { ...FAILED, rank: 2 };
    case 'INVALID':
      return { outcome: 'failed', terminal: false, ranksAsTerminal: true, rank: 1 };
    default:
      return { ...UNKNOWN, rank: 1 };
  }
}

/**
 * The unified Verify API's `state` enum: CREATED, ONGOING, REJECTED, FAILED, VERIFIED, CANCELED.
 * TeleSign gives no per-state meanings; CREATED/ONGOING in progress, VERIFIED success, the other
 * three failures (inferred). A state outside the enum is `unknown`.
 */
function classifyVerifyState(state: string): Meaning {
  if (state === 'CREATED' || state === 'ONGOING') return PENDING;
  if (state === 'VERIFIED') return SUCCEEDED;
  if (state === 'REJECTED' || state === 'FAILED' || state === 'CANCELED') return FAILED;
  return UNKNOWN;
}

/**
 * Voice `data.status` values meaning the call did not connect. TeleSign publishes no list: only
 * `answered` (dial_completed), `hangup` (call_completed) and `speak_successful` appear in its sample
 * code. These spellings are the failures the common voice APIs use (inferred); they only decide
 * `failed` over `unknown`, never success.
 */
const CALL_FAILURES = new Set(['no-answer', 'not-answered', 'busy', 'failed', 'canceled', 'cancelled', 'rejected']);

/** A field of a value that may be anything (`data` is unchecked): own properties of plain objects only. */
function fieldOf(value: unknown, name: string): unknown {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && Object.hasOwn(value, name)
    ? (value as Record<string, unknown>)[name]
    : undefined;
}

/** A short string, or undefined for anything else (values go into keys and the state's detail). */
function shortString(value: unknown): string | undefined {
  return typeof value === 'string' && value.length <= SHORT ? value : undefined;
}

/** TeleSign's voice times (`2019-03-15T06:48:28.151`) carry no zone; the field names say UTC. */
function utcTime(value: unknown): string | undefined {
  const text = shortString(value);
  if (text === undefined) return undefined;
  return toIsoTime(/T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text) ? `${text}Z` : text);
}

/**
 * What a Voice event means. Every event is about the session (`reference_id`); only call_completed
 * ends it. TeleSign documents no per-event id or time, so an event is its name plus a digest of its
 * `data`: a retry is byte-identical (the same key), two legs of one session differ (two keys).
 *
 * - call_completed (terminal): `hangup` with a readable `answered_on_utc` is the only reading of a
 *   completed, answered call (TeleSign's sample); `hangup` with no answer time is a call never
 *   answered (failed, inferred); a known failure value is failed; anything else, or an answer time
 *   that is not a time, is `unknown`.
 * - dial_completed ("sent when the call is answered or fails"): `answered` is a call in progress;
 *   any other value is a failed dial (not terminal: the session's call_completed decides); no
 *   readable status is `unknown`.
 * - Other events (incoming_call, speak_completed, play_completed, call_leg_completed, …): in progress.
 * - incoming_call opens an inbound session ("When a call comes in to Telesign, the service uses this
 *   event to pass the call information to you"; the answer to it may `dial`, whose dial_completed
 *   follows: https://developer.telesign.com/enterprise/reference/voice-events). Nothing of the
 *   session comes before it, so it ranks below every other event: one delivered late never takes
 *   the status back to the call's start (`dial_completed busy`, failed, read as in progress again).
 *   The other events carry no time nor order TeleSign publishes: among them the latest received wins.
 *
 * The status is `<event> <data.status>` (`call_completed hangup`), `<event>` without a status, and
 * `<event> ?` when data.status is not a short string.
 */
function describeVoice(referenceId: string, event: string, data: unknown): EventFacts {
  const rawStatus = fieldOf(data, 'status');
  const statusAbsent = rawStatus === undefined || rawStatus === null || rawStatus === '';
  const callStatus = statusAbsent ? undefined : shortString(rawStatus);
  const normalized = callStatus?.toLowerCase().replace(/_/g, '-');
  let meaning: Meaning = PENDING;
  const detail: Record<string, string | boolean> = {};
  if (callStatus !== undefined) detail.callStatus = callStatus;
  if (event === 'call_completed') {
    const answeredOn = fieldOf(data, 'answered_on_utc');
    const notAnswered = answeredOn === undefined || answeredOn === null || answeredOn === '';
    const answered = !notAnswered && utcTime(answeredOn) !== undefined;
    if (answered || notAnswered) detail.answered = answered;
    if (normalized === 'hangup') meaning = answered ? SUCCEEDED : notAnswered ? FAILED : UNKNOWN;
    else meaning = normalized !== undefined && CALL_FAILURES.has(normalized) ? FAILED : UNKNOWN;
  } else if (event === 'dial_completed') {
    if (normalized === undefined) meaning = { outcome: 'unknown', terminal: false };
    else meaning = normalized === 'answered' ? PENDING : { outcome: 'failed', terminal: false };
  }
  const statusLabel = statusAbsent ? '' : ` ${callStatus ?? '?'}`;
  return {
    subjectId: referenceId,
    // Marked `voice|`, the event a segment: see the delivery report's key in `describe`.
    eventKey: `voice|${keySegment(event)}|${shortHash(canonicalJson(data))}`,
    status: `${event}${statusLabel}`,
    statusAt: utcTime(fieldOf(data, 'ended_on_utc')),
    rank: event === 'incoming_call' ? -1 : 0,
    ...meaning,
    ...(Object.keys(detail).length > 0 ? { detail } : {}),
  };
}

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

// --- Get Status ---------------------------------------------------------------------------------
//
// GET {baseUrl}/v1/messaging/{reference_id} (SMS) and GET {baseUrl}/v1/verify/{reference_id}
// (SMS Verify, Voice Verify), Basic authentication with the customer id and API key, an answer in
// the shape of the delivery-report callback (reference_id, status.code, verify.code_state…), for
// 12 hours after the transaction.
// - https://developer.telesign.com/enterprise/docs/sms-api-obtain-transaction-status-results
//   ("After a transaction occurs, you have 12 hours to obtain status results for the transaction.
//   TeleSign recommends that you wait 3-5 minutes after a transaction occurs to send a Get Status
//   request")
// - https://developer.telesign.com/enterprise/reference/getsmsstatus
// - https://developer.telesign.com/enterprise/reference/getverifystatus (the errors: 401 -30000…,
//   404 -10001 "CustomerID/ReferenceID not found", 404 -10004 "Reference ID expired.", 429 -40007,
//   503 -90001; the answer and error bodies are the examples of TeleSign's SMS Verify OpenAPI
//   definition behind that page, operation getSMSVerifyStatus, read in the copy at
//   github.com/api-evangelist/telesign openapi/_original/telesign-sms-verify-api-openapi.json @ 6369d89)
// - https://developer.telesign.com/enterprise/docs/voice-verify-get-transaction-status
// - https://developer.telesign.com/enterprise/docs/authentication ("'Basic '+ b64encoded(customer_id:api_key)")
// Programmable Voice (/v2/voice) has no GET ("Supported Methods: POST",
// https://developer.telesign.com/enterprise/docs/voice-get-started); the unified Verify API
// (verify.telesign.com) is another product; bulk SMS receipts come by callback only ("You must use
// callbacks to get the receipts", enterprise.telesign.com bulk-sms-api obtain-transaction-status-results).

/** `Authorization: Basic base64(customer_id:api_key)`: the API key as the portal shows it, not decoded. */
export function basicAuthorization(customerId: string, apiKey: string): string {
  return `Basic ${Buffer.from(`${customerId}:${apiKey}`, 'utf8').toString('base64')}`;
}

/** A lone UTF-16 surrogate: encodeURIComponent throws on one. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Largest Get Status answer read; a real one is under 2 KB. */
const MAX_ANSWER_BYTES = 256 * 1024;

/** TeleSign codes the status families by product: 1xx Voice Verify, 2xx SMS and SMS Verify, 5xx several (docs/understand-telesign-status-and-error-codes). */
const GET_STATUS_CODE = (code: number) => (code >= 100 && code < 300) || (code >= 500 && code < 600);

/**
 * Whether TeleSign's Get Status can know the subject of this callback: a delivery report of the SMS
 * API, SMS Verify or Voice Verify (`status.code` 1xx, 2xx or 5xx). Not Programmable Voice events
 * (`event`), unified Verify API processes (`state`), inbound messages (`mo_sms`, 1500), bulk SMS
 * receipts (`bulk_sms`) or template reviews (38xx): Get Status answers 404 -10001 about those
 * (inferred for the last three: no page says), so asking would only cost calls and end `stale`.
 */
export function servedByGetStatus(payload: TeleSignCallback): boolean {
  if (!payload.status || payload.event !== undefined || payload.state !== undefined) return false;
  const subResource = (payload as { sub_resource?: unknown }).sub_resource;
  if (subResource === 'bulk_sms' || subResource === 'mo_sms') return false;
  return GET_STATUS_CODE(payload.status.code);
}

/** The Get Status endpoint that serves this answer: `verify` for SMS Verify (a `verify` object) and Voice Verify (`sub_resource: call`). */
export function getStatusApiOf(payload: TeleSignCallback): GetStatusApi {
  const subResource = (payload as { sub_resource?: unknown }).sub_resource;
  return payload.verify !== undefined || subResource === 'call' ? 'verify' : 'messaging';
}

/** What one Get Status endpoint said about a reference id. */
type EndpointAnswer =
  | { readonly kind: 'found'; readonly payload: TeleSignCallback }
  /** 404 -10001 (or 400: a reference id it cannot hold): not a transaction of this endpoint's product. */
  | { readonly kind: 'unknown' }
  /** 401 -20002 "This product is not enabled for this Customer ID." */
  | { readonly kind: 'not-enabled' }
  /** 404 -10004 "Reference ID expired.": older than 12 hours; no endpoint will answer again. */
  | { readonly kind: 'expired' };

/** The body, read up to `maxBytes` (the rest is never downloaded); a longer one throws. */
async function readBounded(response: Response, maxBytes: number): Promise<string> {
  const body = await readBoundedBody(response, maxBytes);
  if (body === undefined) throw new Error(`answer larger than ${maxBytes} bytes`);
  return body.toString('utf8');
}

/**
 * TeleSign's error codes in an error answer: `errors[].code` (and `error.code`, the shape of some
 * 503 examples). "Code against the Telesign status or error codes … rather than the HTTP status
 * code", and never against the descriptions (which may echo the customer id). An unreadable body
 * has none.
 */
async function errorCodes(response: Response): Promise<number[]> {
  try {
    return errorCodesOf(await readBounded(response, MAX_ANSWER_BYTES));
  } catch {
    return [];
  }
}

/**
 * TeleSign error codes kept from one answer, at most, each once: a real answer names one or two
 * (`errors[].code`, and `status.code`), and the codes go into the error's message, so into a log line
 * and the relay item's reason, and into its `codes`. An answer of up to MAX_ANSWER_BYTES listing
 * thousands of codes was written whole into each of them.
 */
const MAX_ERROR_CODES = 10;
/**
 * The codes kept, those a decision reads first (TeleSign's own negative codes: -10004 expired,
 * -20002 not enabled, -10033 trial, the credential refusals; and the send refusals we name), so a
 * deciding code listed after ten others is not cut off.
 */
function boundedCodes(codes: readonly number[]): number[] {
  const distinct = [...new Set(codes)];
  const decides = (code: number) => code < 0 || Object.hasOwn(SEND_REFUSALS, code);
  return [...distinct.filter(decides), ...distinct.filter((code) => !decides(code))].slice(0, MAX_ERROR_CODES);
}

/** `errors[].code` (or `error.code`) of an error answer's text (MAX_ERROR_CODES of them); none when it is not JSON. */
function errorCodesOf(text: string | undefined): number[] {
  let body: unknown;
  try {
    body = JSON.parse(text ?? '');
  } catch {
    return [];
  }
  const errors = fieldOf(body, 'errors');
  const listed = Array.isArray(errors) ? errors : [fieldOf(body, 'error')];
  return boundedCodes(listed.map((error) => fieldOf(error, 'code')).filter((code): code is number => Number.isInteger(code)));
}

/**
 * What to fix for a refused credential (401/403), by TeleSign's error code. The message names the
 * secret fields, never their values nor TeleSign's description (which may echo them).
 */
function refusalAdvice(codes: readonly number[]): string {
  for (const code of codes) {
    if (code === -30000 || code === -20001) return 'TeleSign does not know this customer id: check customerId in the telesign secret';
    if (code === -30015) return 'TeleSign refused the API key: check apiKey in the telesign secret';
    if (code === -30001 || code === -30002 || code === -30003) return 'the TeleSign account is suspended, not activated or at its limit (customerId in the telesign secret)';
    if (code === -10009 || code === -10001) return "TeleSign refuses calls from this address or host: check the account's allow-list in the TeleSign portal";
    if (code <= -30004 && code >= -30012) return 'TeleSign did not accept the Authorization header: check customerId and apiKey in the telesign secret';
  }
  return 'check customerId, apiKey and baseUrl in the telesign secret';
}

/**
 * Ask one Get Status endpoint. Faults (unreachable, timeout, 429, 5xx, an answer we cannot read)
 * throw DependencyError; a refused credential or a misplaced baseUrl throws ConfigurationError.
 */
async function askGetStatus(api: GetStatusApi, referenceId: string, secret: TeleSignSecret, context: LookupContext): Promise<EndpointAnswer> {
  const url = `${secret.baseUrl.replace(/\/+$/, '')}/v1/${api}/${encodeURIComponent(referenceId)}`;
  let response: Response;
  try {
    response = await context.fetch(url, {
      method: 'GET',
      headers: {
        authorization: basicAuthorization(secret.customerId, secret.apiKey),
        // "Required headers: Content-Type - application/x-www-form-urlencoded", even on this GET.
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      // A redirect would carry the credentials elsewhere (or drop them): baseUrl must be the API itself.
      redirect: 'manual',
      signal: AbortSignal.timeout(context.timeoutMs),
    });
  } catch (error) {
    throw new DependencyError('telesign', `Get Status (${api}) unreachable: ${requestFault(error, context.timeoutMs)}`, { cause: error });
  }
  const status = response.status;
  if (status === 200) return { kind: 'found', payload: await readAnswer(api, referenceId, response) };
  if (status === 429 || status >= 500) {
    await response.body?.cancel();
    throw endpointFault('telesign', `Get Status (${api}) answered ${status}`, response);
  }
  if (status >= 300 && status < 400) {
    await response.body?.cancel();
    throw new ConfigurationError(`TeleSign Get Status (${api}) answered a redirect (${status}): set baseUrl in the telesign secret to the API's own https URL`);
  }
  const codes = await errorCodes(response);
  const shown = codes.length > 0 ? ` (error ${codes.join(', ')})` : '';
  if (status === 404) return codes.includes(-10004) ? { kind: 'expired' } : { kind: 'unknown' };
  // 400 -10001 "Invalid Request: ReferenceID Parameter": no transaction can have this id.
  if (status === 400) return { kind: 'unknown' };
  if (status === 401 || status === 403) {
    if (codes.includes(-20002)) return { kind: 'not-enabled' };
    throw new ConfigurationError(`TeleSign Get Status (${api}) answered ${status}${shown}: ${refusalAdvice(codes)}`);
  }
  throw new DependencyError('telesign', `Get Status (${api}) answered ${status}${shown}`);
}

/** A 200 answer, read as a callback would be: the same schema, so `describe` names the same subject. */
async function readAnswer(api: GetStatusApi, referenceId: string, response: Response): Promise<TeleSignCallback> {
  let text: string;
  try {
    text = await readBounded(response, MAX_ANSWER_BYTES);
  } catch (error) {
    throw new DependencyError('telesign', `Get Status (${api}) answered 200 with a body that could not be read: ${errorMessage(error)}`, { cause: error });
  }
  let body = answerJson('telesign', `Get Status (${api})`, text);
  // Not JSON.parse's message: it quotes a short text whole, and the text may echo a number or a code.
  if (body === undefined) throw new DependencyError('telesign', `Get Status (${api}) answered 200 with a body that is not JSON`);
  // getStatusResponse declares reference_id as string or null: the URL names the transaction.
  if (body !== null && typeof body === 'object' && !Array.isArray(body) && fieldOf(body, 'reference_id') == null) {
    body = { ...body, reference_id: referenceId };
  }
  const answer = TeleSignCallbackSchema.safeParse(body);
  if (!answer.success) {
    throw new DependencyError('telesign', `Get Status (${api}) answer does not match the schema: ${describeIssues(answer.error).join('; ')}`);
  }
  if (!answer.data.status) throw new DependencyError('telesign', `Get Status (${api}) answer has no status.code`);
  return answer.data;
}

/** The status a payload claims, for comparing a callback with an answer: `status.code`, else the Verify API state or the Voice event. */
function claimedStatus(payload: TeleSignCallback): string {
  return payload.status ? String(payload.status.code) : (payload.state ?? `event ${payload.event ?? ''}`);
}

// --- Send SMS -----------------------------------------------------------------------------------
//
// POST {baseUrl}/v1/messaging, form-encoded (UTF-8), Basic authentication with the customer id and
// API key, as Get Status uses it:
// - https://developer.telesign.com/enterprise/reference/sms ("Send an SMS message": `phone_number`
//   "with country code included. Avoid use of special characters and spaces", `message` "limited to
//   1600 characters", `message_type` OTP | ARN | MKT, optional `external_id`; "Authentication: Basic
//   (easiest to implement) or Digest", "Accepts: application/x-www-form-urlencoded"; 200 "Success …
//   290 Message in progress"; the 400 codes 11000–12017 listed below)
// - https://enterprise.telesign.com/api-reference/apis/sms-api/send-an-sms/post-messaging (the same
//   request, for `rest-ww.telesign.com`)
// - https://developer.telesign.com/enterprise/docs/authentication ("'Basic '+ b64encoded(customer_id:api_key)")
// - https://developer.telesign.com/enterprise/docs/understand-telesign-status-and-error-codes (HTTP
//   500 "Transaction not attempted", 503 "Service unavailable … try again", 429 "Rate limit exceeded")
// - the 200 answer `{"reference_id", "external_id", "status": {"code": 290, "description": "Message
//   in progress"}}` of TeleSign's own SDK test (TeleSign/python_telesign tests/test_messaging.py,
//   test_messaging_message); error bodies (`errors[].code` with `status.code` 500/501) as the examples
//   of TeleSign's SMS Verify OpenAPI definition show them for the same platform's POST /v1/verify/sms.
// TeleSign documents no idempotency key: a request sent twice is two messages to a person. So a
// request that left and got no answer is never sent again (UncertainDeliveryError, see
// adapters/post-once.ts); only what proves nothing was sent is retried.

/** "You are limited to 1600 characters." */
export const MAX_SMS_CHARACTERS = 1600;

/** The 400 codes of the send page: which parameter TeleSign refused (never its value). */
const SEND_REFUSALS: Readonly<Record<number, string>> = {
  11000: 'invalid value for phone_number',
  11001: 'invalid country code for phone_number',
  11009: 'invalid value for message',
  11016: 'invalid value for external_id',
  11017: 'invalid value for message_type',
  12000: 'missing phone_number',
  12009: 'missing message',
  12017: 'missing message_type',
};

/** Codes a refusal names: `errors[].code`, and `status.code` unless it is a 2xx (in progress). */
function sendCodesOf(text: string | undefined): number[] {
  const codes = errorCodesOf(text);
  try {
    const statusCode = fieldOf(fieldOf(JSON.parse(text ?? ''), 'status'), 'code');
    if (Number.isInteger(statusCode) && !((statusCode as number) >= 200 && (statusCode as number) < 300)) codes.push(statusCode as number);
  } catch {
    // not JSON: no codes
  }
  return boundedCodes(codes);
}

const codesText = (codes: readonly number[]) => (codes.length > 0 ? ` (code ${codes.join(', ')}${codes.map((code) => (SEND_REFUSALS[code] ? `: ${SEND_REFUSALS[code]}` : '')).join('')})` : '');

/** What TeleSign's 200 answer must hold: the reference its delivery reports will name. */
const SendAnswerSchema = z.looseObject({
  reference_id: z.string().check(z.minLength(1), z.maxLength(128)),
  status: z.optional(z.looseObject({ code: z.optional(code) })),
});

/** E.164 (`+` and 7 to 15 digits) as TeleSign wants it: the digits, country code first, nothing else. */
function phoneDigits(to: string): string | undefined {
  return /^\+[1-9]\d{6,14}$/.test(to) ? to.slice(1) : undefined;
}

/**
 * Send one SMS. See the Provider interface for what each error means; none carries the number or
 * the text, nor TeleSign's descriptions (which may echo them: "-10033 {phone_number} has not been
 * verified for this trial account").
 */
async function sendSms(secret: TeleSignSecret, message: OutgoingMessage, context: SendContext): Promise<SentMessage> {
  const digits = phoneDigits(message.to);
  if (digits === undefined) throw new MessageRefusedError('telesign', 'not sent: the destination is not an E.164 phone number (+, country code, 7 to 15 digits)', [], false);
  if (message.text.length === 0 || message.text.length > MAX_SMS_CHARACTERS) {
    throw new MessageRefusedError('telesign', `not sent: TeleSign takes a message of 1 to ${MAX_SMS_CHARACTERS} characters, this one has ${message.text.length}`, [], false);
  }
  const form = new URLSearchParams({ phone_number: digits, message: message.text, message_type: message.kind, external_id: message.externalId });
  const answer = await context.post(`${secret.baseUrl.replace(/\/+$/, '')}/v1/messaging`, {
    headers: {
      authorization: basicAuthorization(secret.customerId, secret.apiKey),
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    },
    body: form.toString(),
    dependency: 'telesign',
  });
  const { status } = answer;
  // The send page documents 200; any 2xx says the request was taken, never that it was refused.
  if (status >= 200 && status < 300) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(answer.body ?? '');
      // An answer naming a member twice (two reference_ids), or with a code JSON rounds to another
      // (290.00000000000001), does not say what it means: it is read as no reference at all. Never a
      // DependencyError here: the message was taken, and a retry would send it twice.
      if (unclearJson(answer.body ?? '') !== undefined) parsed = undefined;
    } catch {
      parsed = undefined;
    }
    const read = SendAnswerSchema.safeParse(parsed);
    if (!read.success) {
      throw new UncertainDeliveryError('telesign', `TeleSign answered ${status} (the message was taken) without a readable reference_id: it may be on its way, and its delivery report cannot be joined`);
    }
    const statusCode = read.data.status?.code;
    // The send page lists 290 for a 200; a code TeleSign lists as a failure says it will not go out (inferred).
    // Its reference_id is kept all the same: the transaction TeleSign knows, the one its delivery
    // reports name (the 200 answer's `reference_id`: /v1/messaging, see above).
    if (statusCode !== undefined && classifyCode(statusCode).outcome === 'failed') {
      throw new MessageRefusedError('telesign', `TeleSign took the request but reports status ${statusCode}: not sent`, [statusCode], true, read.data.reference_id);
    }
    return { referenceId: read.data.reference_id };
  }
  const codes = sendCodesOf(answer.body);
  // 429 "Rate limit exceeded", 500 "Transaction not attempted", 503 "try again": the status codes
  // TeleSign documents for a request it did not act on: nothing was sent, so it is tried again.
  // A busy 429 or 503 may say when to try again (Retry-After, RFC 9110 §10.2.3; TeleSign documents
  // none): the relay's next attempt is no earlier (functions/handlers/sqs-batch.ts).
  if (status === 429 || status === 500 || status === 503) {
    const wait = status === 500 ? undefined : retryAfterSeconds(answer.retryAfter, Date.now());
    throw new DependencyError('telesign', `send answered ${status}${codesText(codes)}${wait === undefined ? '' : ` (retry after ${wait} s)`}`, wait === undefined ? undefined : { retryAfterSeconds: wait });
  }
  // 408 (the server did not receive the whole request: https://www.rfc-editor.org/rfc/rfc9110#name-408-request-timeout) and
  // 425 (it would not process a request that might be replayed: https://www.rfc-editor.org/rfc/rfc8470#section-5.2) say by
  // HTTP's own definition that the request was not acted on: nothing sent, tried again (TeleSign documents neither).
  if (status === 408 || status === 425) throw new DependencyError('telesign', `send answered ${status}: the request was not taken, so nothing was sent`);
  // Any other 5xx is not TeleSign's own answer (502 and 504 come from a gateway in between, which
  // may have passed the request on and lost the answer): the message may have gone out, and the
  // send API has no idempotency key, so it is never resent (inferred: as for our own timeout).
  if (status >= 500) throw new UncertainDeliveryError('telesign', `TeleSign answered ${status} (not a status TeleSign documents for a request it did not take): the message may have been sent`);
  if (status >= 300 && status < 400) {
    throw new ConfigurationError(`TeleSign send answered a redirect (${status}): set baseUrl in the telesign secret to the API's own https URL`);
  }
  if (status === 401 || status === 403) {
    // A trial account sends only to numbers verified in its portal: this number, not the credentials.
    if (codes.includes(-10033)) throw new MessageRefusedError('telesign', `TeleSign refused the number: a trial account sends only to verified numbers${codesText(codes)}`, codes);
    if (codes.includes(-20002)) throw new ConfigurationError(`TeleSign send answered ${status}${codesText(codes)}: the SMS API is not enabled for the customer id in the telesign secret`);
    throw new ConfigurationError(`TeleSign send answered ${status}${codesText(codes)}: ${refusalAdvice(codes)}`);
  }
  if (status === 404) throw new ConfigurationError(`TeleSign send answered 404: baseUrl in the telesign secret is not TeleSign's REST API`);
  // 400 and the rest of 4xx: this message, as it is, will never be taken.
  throw new MessageRefusedError('telesign', `TeleSign refused the message (HTTP ${status}${codesText(codes)}): not sent`, codes);
}

export const telesign: Provider<TeleSignSecret, TeleSignCallback, 'telesign'> = {
  id: 'telesign',
  displayName: 'TeleSign',
  docsUrl: 'https://developer.telesign.com/enterprise/docs/transaction-callback-service',
  route: { method: 'POST', path: '/callbacks/telesign' },
  authSummary: 'Authorization: TSA <customerId>:<base64 HMAC-SHA256 of the raw body>',
  // An HMAC over the raw body: a callback is as good as an answer.
  callbackTrust: 'signed',
  // The reference_id TeleSign gives each transaction.
  mintsSubjectIds: true,
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
      // The schema refuses such a key; should one get past it, it signs nothing.
      const keyOk = decodeApiKey(version.apiKey).length >= MIN_API_KEY_BYTES;
      const signatureOk = received !== undefined && keyOk && timingSafeEqual(received, teleSignDigest(version.apiKey, request.body));
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

  sendMessage: sendSms,
  // The API key the relay sends with (the current one: the one it signs its requests with), as
  // bytes: the relay derives the key of its number hashes from it, never the key itself.
  sendingKey: (secret) => Buffer.from(decodeApiKey(secret.apiKey)),

  // The SMS delivery report echoes the request's `external_id` ("The customer-generated ID for this
  // transaction that was provided in the original request … null" when none was given):
  // https://developer.telesign.com/enterprise/reference/smsdeliveryreports (TeleSign's engage-callbacks
  // OpenAPI, `SMSDeliveryReports`; its example is test/fixtures/telesign/sms-dlr-success-engage.json).
  externalIdOf: (payload) => (typeof payload.external_id === 'string' ? payload.external_id : undefined),

  describe(payload) {
    const referenceId = payload.reference_id;
    if (payload.status) {
      const statusCode = payload.status.code;
      const updatedOn = payload.status.updated_on ?? '';
      const codeState = payload.verify?.code_state ? asciiUpperCase(payload.verify.code_state) : undefined;
      const shown = codeState === undefined || codeState === 'UNKNOWN' ? '' : ` ${codeState}`;
      const status = `${statusCode}${shown}`;
      // The three shapes share one reference id's events: a delivery report's key starts with its
      // code (digits), the Verify API's with `verify|`, Voice's with `voice|`, so a state "200" or a
      // Voice event "200" is never taken for a retry of the delivery report 200 at the same time.
      // Delivery reports keep the key they always had, so retries of stored ones still match.
      return {
        subjectId: referenceId,
        eventKey: `${keySegment(status)}|${keySegment(updatedOn)}`,
        status,
        statusAt: toIsoTime(updatedOn),
        ...withCodeState(classifyCode(statusCode), codeState),
        ...(codeState === undefined ? {} : { detail: { codeState } satisfies StatusDetail }),
      };
    }
    if (payload.state) {
      const state = asciiUpperCase(payload.state);
      return {
        subjectId: referenceId,
        eventKey: `verify|${keySegment(state)}|${keySegment(payload.updated_on ?? '')}`,
        status: state,
        statusAt: toIsoTime(payload.updated_on),
        rank: 0,
        ...classifyVerifyState(state),
      };
    }
    return describeVoice(referenceId, payload.event ?? 'unknown', (payload as { data?: unknown }).data);
  },

  // Voice sessions, Verify API processes, bulk and inbound messages: Get Status does not serve them.
  asksAbout: servedByGetStatus,

  // Opt-in (statusLookup): whether Get Status is billed is not published. customerId and apiKey are
  // required by the schema, so the setting is all that decides.
  canLookup: (secret) => secret?.statusLookup === true && Boolean(secret.customerId && secret.apiKey),

  lookupLimits: {
    // A callback comes once TeleSign "determines the final status of the transaction"
    // (docs/transaction-callback-service): its Get Status record exists by then, so the claim is
    // put to it at once; an answer that lags is retried by the worker (the claim is ahead of it).
    onArrival: true,
    // "TeleSign recommends that you wait 3-5 minutes after a transaction occurs to send a Get Status
    // request": the first re-check (and the first ask about an expected subject) waits 5.
    firstAfterSeconds: 300,
    // "After a transaction occurs, you have 12 hours to obtain status results" (then 404 -10004).
    horizonHours: 12,
  },

  /**
   * The delivery code, and the code state where the callback claims one: a callback's UNKNOWN (what
   * SMS Verify callbacks always carry) claims nothing, so an answer that knows VALID confirms it and
   * adds the code state. The times may differ (TeleSign restamps `updated_on`); they order, not judge.
   */
  differences(claim, answer) {
    const differences: string[] = [];
    if (claim.reference_id !== answer.reference_id) differences.push('reference_id');
    if (claimedStatus(claim) !== claimedStatus(answer)) differences.push('status');
    const claimedState = claim.verify?.code_state == null ? undefined : asciiUpperCase(claim.verify.code_state);
    if (claimedState && claimedState !== 'UNKNOWN' && claimedState !== (answer.verify?.code_state == null ? undefined : asciiUpperCase(answer.verify.code_state))) differences.push('verify.code_state');
    return differences;
  },

  /**
   * Get Status, on each of `statusApis` in turn until one knows the reference id: TeleSign gives no
   * way to tell an SMS reference id from a Verify one, and a transaction of the other product is
   * not one the endpoint has (404 -10001). 401 -20002 (the product is not enabled for the account)
   * also sends the question on; when every endpoint says so, the setting is wrong.
   *
   * 404 -10004 "Reference ID expired." (12 hours after the transaction) means the answer no longer
   * exists anywhere: the other endpoint is not asked. StatusAnswer has no "expired" kind to say
   * "stop asking", so it reads as not_found; the re-checks end at `horizonHours`, counted from the
   * first callback, which comes soon after the transaction for all but a 251 ("no receipt within
   * 12 hours") or a late expectation.
   *
   * Voice sessions, Verify API processes, bulk and inbound messages are asked about too (and found
   * in neither endpoint: not_found) unless the worker is told not to: see `servedByGetStatus`.
   */
  async lookup({ subjectId: referenceId }, secret, context): Promise<StatusAnswer<TeleSignCallback>> {
    // URLs resolve `.` and `..` (even as %2E) to another path, and encodeURIComponent throws on a
    // lone surrogate: no TeleSign reference id (32 hex digits) is either.
    if (referenceId === '.' || referenceId === '..' || LONE_SURROGATE.test(referenceId)) return { kind: 'not_found' };
    let notEnabled = 0;
    for (const api of secret.statusApis) {
      const answer = await askGetStatus(api, referenceId, secret, context);
      if (answer.kind === 'found') return { kind: 'found', payload: answer.payload };
      if (answer.kind === 'expired') return { kind: 'not_found' };
      if (answer.kind === 'not-enabled') notEnabled += 1;
    }
    if (notEnabled === secret.statusApis.length) {
      throw new ConfigurationError(
        `TeleSign Get Status answered 401 (error -20002) on every endpoint of statusApis (${secret.statusApis.join(', ')}): set statusApis in the telesign secret to the products the account has, or statusLookup to false`,
      );
    }
    return { kind: 'not_found' };
  },
};
