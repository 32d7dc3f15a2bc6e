import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { ConfigurationError, DependencyError, errorMessage } from '../shared/errors.ts';
import { shortHash } from '../shared/hash.ts';
import { secureEquals } from '../shared/secure-compare.ts';
import * as z from '../shared/zod.ts';
import { answerJson, endpointFault, asciiUpperCase, authenticatePathToken, canonicalJson, configuredString, credentialUrl, describeIssues, keySegment, parseJsonWith, readBoundedBody, requestFault, toIsoTime } from './common.ts';
import { secretVersions, type LookupContext, type Outcome, type Provider, type StatusAnswer, type StatusDetail } from './provider.ts';
import { secretWithRotation } from './secret-schema.ts';

/*
 * REL-IDverify (Uniken) TWO-WAY notification results.
 * @see https://developer.uniken.com/docs/notification-callback (the callback's fields)
 * @see https://developer.uniken.com/docs/check-notification-status (ACTIVE/CANCELLED, which fields are optional)
 * @see https://developer.uniken.com/docs/generate-notification-request (actions are labels each
 *   deployment chooses: "Approve/Reject or Accept/Decline/Fraud")
 * @see https://developer.uniken.com/docs/generate-notification-request-1 (the request's parameters:
 *   `ds_required` "Enable/disable digital signing of user response (default: true)", `expires_in` "≥ 15")
 *
 * What the gateway cannot know by itself is what a label *means*: `action_response` is whichever
 * label the notification offered (or NONE). So the deployment declares its labels in the secret,
 * and only a declared approve label can ever read as an approval. Everything else fails closed.
 *
 * Status API (`lookup`): getRVNStatus, on the deployment's own REL-IDverify server.
 * @see https://developer.uniken.com/docs/check-notification-status (URL, answers, the 3558 failure)
 * @see https://developer.uniken.com/docs/authentication (Basic or Bearer; error codes 2601–2606)
 * @see https://developer.uniken.com/docs/generate-access-token-client-credentials (the token endpoint)
 */

/** An address (`203.0.113.7`) or CIDR block (`203.0.113.0/24`, `2001:db8::/32`). */
const ipOrCidr = z.string().check(z.refine((value) => {
  const [address, prefix] = value.split('/');
  const family = isIPv4(address) ? 32 : isIPv6(address) ? 128 : 0;
  return family > 0 && (prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= family));
}, 'expected an IP address or CIDR block'));

/**
 * How action labels are compared: exactly, after trimming surrounding whitespace, ignoring case
 * (`" approved "` matches `"Approved"`; `"Approved!"`, `"Approve"` and `"Аpproved"` with a
 * Cyrillic А do not). No other folding: a label either is one the deployment declared or it is not.
 */
export function normalLabel(label: string): string {
  return label.trim().toLowerCase();
}

/** What REL-ID sends as the label when nobody acted. */
const NO_ACTION = 'none';

const actionLabel = z.string().check(
  z.maxLength(64),
  z.refine((label) => label.trim().length > 0, 'an action label must not be empty or blank'),
);
const actionLabels = z.optional(z.array(actionLabel).check(z.maxLength(32)));

/**
 * An http(s) URL with no user, password, query or fragment: credentials have fields of their own
 * (and fetch refuses a URL that carries them), and nothing is appended after a query.
 */
const serviceUrl = credentialUrl.check(
  z.refine((value) => {
    if (!URL.canParse(value)) return true;
    const url = new URL(value);
    return url.username === '' && url.password === '' && url.search === '' && url.hash === '';
  }, 'expected an http(s) URL without user, password, query or fragment'),
);

/**
 * `{ token, allowedIps?, approveLabels?, rejectLabels?, baseUrl?, username?, password?, clientId?,
 * clientSecret?, tokenUrl?, tokenScope? }`.
 * - `token`: the secret in our callback URL; `allowedIps`: optionally the addresses the REL-ID
 *   server calls from (the docs ask for source validation; Uniken publishes no ranges).
 * - `approveLabels` / `rejectLabels`: the `actions[].label`s this deployment's notifications offer,
 *   by meaning (default: none). Compared with `normalLabel`. A label in neither list is recorded
 *   as it came and read as `unknown`, never as an approval. They apply to getRVNStatus answers
 *   exactly as to callbacks. Labels are not rotated: `previous` holds the callback credentials
 *   only, and the worker reads the current lists.
 * - For the status API (getRVNStatus), all optional: without `baseUrl` and one set of credentials
 *   REL-ID is not asked, and its callbacks are believed as they come, marked unconfirmed.
 *   `baseUrl`: the REL-IDverify server, `https://<REL-ID-VERIFY-SERVER>:<VERIFY-PORT>` (each
 *   deployment has its own: there is no public default). Credentials, either
 *   `username` + `password` (Basic; the docs: "for initial development/testing") or
 *   `clientId` + `clientSecret` (OAuth2 client credentials; the docs: "for production
 *   deployments"), which win when both are there. `tokenUrl`: the AuthServer's token endpoint,
 *   by default `/relid/authserver/oauth/token` on baseUrl's host and port *(inferred: the docs'
 *   examples put the AuthServer on its own port, 8006, so set it)*; `tokenScope`: default `all`
 *   (the docs' example: "e.g., all"). Only the current values are used: to rotate them, change the
 *   secret (a cached access token is tied to the credentials it was issued for).
 */
export const RelIdSecretSchema = z
  .extend(secretWithRotation({ token: configuredString, allowedIps: z.optional(z.array(ipOrCidr)) }), {
    approveLabels: actionLabels,
    rejectLabels: actionLabels,
    baseUrl: z.optional(serviceUrl),
    // RFC 7617: a Basic user-id cannot contain a colon (it would be read as the password's start).
    username: z.optional(configuredString.check(z.refine((value) => !value.includes(':'), 'a Basic authentication username cannot contain ":"'))),
    password: z.optional(configuredString),
    clientId: z.optional(configuredString.check(z.refine((value) => !value.includes(':'), 'a client id sent with Basic authentication cannot contain ":"'))),
    clientSecret: z.optional(configuredString),
    tokenUrl: z.optional(serviceUrl),
    tokenScope: z.optional(z.string().check(z.minLength(1), z.maxLength(256))),
  })
  .check(
    z.refine((secret) => !(secret.approveLabels ?? []).some((label) => normalLabel(label) === NO_ACTION), {
      message: 'NONE is what REL-ID sends when nobody acted; it cannot be an approve label',
      path: ['approveLabels'],
    }),
    z.refine(
      (secret) => {
        const approve = new Set((secret.approveLabels ?? []).map(normalLabel));
        return !(secret.rejectLabels ?? []).some((label) => approve.has(normalLabel(label)));
      },
      { message: 'a label is declared both in approveLabels and in rejectLabels', path: ['rejectLabels'] },
    ),
    // Half a credential is a mistake, not a choice: said at once rather than found as "never asked".
    z.refine((secret) => (secret.username === undefined) === (secret.password === undefined), {
      message: 'username and password go together (Basic authentication of getRVNStatus)',
      path: ['password'],
    }),
    z.refine((secret) => (secret.clientId === undefined) === (secret.clientSecret === undefined), {
      message: 'clientId and clientSecret go together (OAuth2 client credentials)',
      path: ['clientSecret'],
    }),
    z.refine((secret) => secret.tokenUrl === undefined || secret.clientId !== undefined, {
      message: 'tokenUrl is used only with clientId and clientSecret',
      path: ['tokenUrl'],
    }),
  );
export type RelIdSecret = z.infer<typeof RelIdSecretSchema>;

/** `response_code`: 0 success, 1 error (docs). Anything else is neither. */
function responseCodeOf(value: unknown): 'ok' | 'error' | 'unreadable' {
  if (value === 0 || value === '0') return 'ok';
  if (value === 1 || value === '1') return 'error';
  return 'unreadable';
}

/**
 * A REL-IDverify TWO-WAY notification result (the user acted, or it expired), or an error report
 * (`response_code` 1 with `error_code`). `status` may be missing only from an error report: the
 * status API's failure answer carries none (its documented example, `{"response_code":1,
 * "error_code":3558,…}`), and an
 * error callback such as `{notification_uuid, response_code: 1, error_code, delivery_status:
 * "FAILED_TO_NOTIFY"}` is stored rather than quarantined (inferred: the callback page does not show
 * one). Unknown fields are kept; `is_ds_verified`, `delivery_status` and `error_code` are read
 * loosely so an odd value is recorded and judged, not quarantined.
 * @see https://developer.uniken.com/docs/notification-callback (the sample in test/fixtures/relid/callback-two-way.json)
 * @see https://developer.uniken.com/docs/check-notification-status
 */
export const RelIdCallbackSchema = z
  .looseObject({
    notification_uuid: z.string().check(z.minLength(1), z.maxLength(128)),
    status: z.optional(z.string().check(z.minLength(1), z.maxLength(32))),
    response_code: z.optional(z.union([z.number(), z.string()])),
    action_response: z.nullish(z.string()),
    // Part of the event's sort key (DynamoDB: 1 KB): a timestamp, not a document.
    update_ts: z.nullish(z.string().check(z.maxLength(64))),
  })
  .check(
    z.refine((body) => body.status !== undefined || responseCodeOf(body.response_code) === 'error', {
      message: 'status is required unless response_code is 1 (an error report)',
      path: ['status'],
    }),
  );
export type RelIdCallback = z.infer<typeof RelIdCallbackSchema>;

/** The status recorded for an error report that carries no `status` of its own. */
export const ERROR_STATUS = 'ERROR';

/**
 * Where an error report (`response_code` 1) that names no result of its own sits among the final
 * reports: below REL-ID's result for the notification (UPDATED, EXPIRED, CANCELLED: rank 0),
 * whatever their times. Such a report, with no `status` or one that is no result (ACTIVE, a value
 * the docs do not list), says the notification did not work out (`error_code`, often
 * `delivery_status`), not how it ended, and usually carries no `update_ts`, so it is placed at the
 * time we received it. Ranked with the results by time, one received after a result stamped earlier
 * (the user approved in the app after the push failed, and REL-ID's result came late) kept the
 * notification failed for good. Alone, it is still final and failed: nothing reads it as success.
 */
const ERROR_REPORT_RANK = -1;

/** REL-ID's results for a notification: how it ended (the docs' terminal statuses). */
const RESULTS = new Set(['UPDATED', 'EXPIRED', 'CANCELLED']);

/** A callback's rank: an error report naming no result ranks below every result. */
function rankOf(payload: RelIdCallback, status: string): number {
  return responseCodeOf(payload.response_code) === 'error' && !RESULTS.has(status) ? ERROR_REPORT_RANK : 0;
}

/**
 * `delivery_status` values that do not stand in the way of an approval. FAILED_TO_NOTIFY does: a
 * notification REL-ID says it could not deliver cannot have been seen and approved, so an
 * "approval" of one contradicts itself and is `unknown` for a person to review (the user may have
 * found it in the app's notification list while the push failed: inferred, undocumented). NONE is
 * a documented value with no stated meaning; the signed action is the proof there. Any value not
 * in the docs' list fails closed like FAILED_TO_NOTIFY. Absent: the gateway does not require it.
 */
const DELIVERY_ALLOWS_APPROVAL = new Set(['NOTIFIED', 'PARTIALLY_NOTIFIED', 'NONE']);

type LabelMeaning = 'approve' | 'reject' | 'undeclared';

interface Labels {
  readonly approve: ReadonlySet<string>;
  readonly reject: ReadonlySet<string>;
}

function labelsOf(secret: RelIdSecret | undefined): Labels {
  return {
    approve: new Set((secret?.approveLabels ?? []).map(normalLabel)),
    reject: new Set((secret?.rejectLabels ?? []).map(normalLabel)),
  };
}

function meaningOf(label: string | null | undefined, labels: Labels): LabelMeaning {
  if (typeof label !== 'string') return 'undeclared';
  const normal = normalLabel(label);
  if (labels.approve.has(normal)) return 'approve';
  if (labels.reject.has(normal)) return 'reject';
  return 'undeclared';
}

/** A loose field as a short detail value: bounded text, a DynamoDB-safe number, or a boolean. */
function scalar(value: unknown): string | number | boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : String(value);
  if (typeof value === 'string') return Array.from(value).slice(0, 64).join('');
  if (value === null) return 'null';
  return Array.isArray(value) ? '(an array)' : '(an object)';
}

/** A loose field as compared between a claim and an answer: scalars whole; containers by kind. */
function keyPart(value: unknown): string | number | boolean | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  return Array.isArray(value) ? '(an array)' : '(an object)';
}

/**
 * A loose field as part of the event key: scalars as `keyPart` gives them (the keys of every
 * documented callback stay what they were), containers by a digest of their content, as an object no
 * scalar serialises to. By kind alone, two reports differing only in an object's content (or an
 * object and the text "(an object)") had one key, and the second was never stored.
 */
function eventKeyPart(value: unknown): string | number | boolean | null | { readonly content: string } {
  return value !== null && typeof value === 'object' ? { content: shortHash(canonicalJson(value)) } : keyPart(value);
}

interface Verdict {
  readonly outcome: Outcome;
  readonly terminal: boolean;
  /** Why a status that could have been an approval is not one (kept in `detail`). */
  readonly reason?: string;
}

/**
 * What the callback means. `succeeded` only for status UPDATED, response_code exactly 0 and no
 * error_code naming an error, a label declared in approveLabels, a digital signature that verified
 * wherever `is_ds_verified` is present, and a delivery status that does not contradict the action.
 */
function judge(payload: RelIdCallback, status: string, meaning: LabelMeaning): Verdict {
  const code = responseCodeOf(payload.response_code);
  // An error report is REL-ID saying the notification did not work out (error_code in detail).
  if (code === 'error') return { outcome: 'failed', terminal: true, reason: 'REL-ID reported an error (response_code 1)' };
  if (status === 'ACTIVE') return { outcome: 'pending', terminal: false };
  if (status === 'EXPIRED' || status === 'CANCELLED') return { outcome: 'failed', terminal: true };
  // A status outside the docs' list: never success, listed for review; not terminal, so the
  // notification's documented result still replaces it when it comes (inferred).
  if (status !== 'UPDATED') return { outcome: 'unknown', terminal: false, reason: 'status not in the docs (ACTIVE, UPDATED, EXPIRED, CANCELLED)' };

  // The user acted. A declared "no" is a no, whatever else the callback says.
  if (meaning === 'reject') return { outcome: 'failed', terminal: true };
  if (meaning === 'undeclared') {
    return { outcome: 'unknown', terminal: true, reason: 'action label not declared in approveLabels or rejectLabels' };
  }
  if (code !== 'ok') return { outcome: 'unknown', terminal: true, reason: 'response_code is not 0' };
  if ('is_ds_verified' in payload) {
    // The user's digital signature over the approval did not verify: REL-ID's own check says this
    // approval is not the user's. That is a verdict, not an ambiguity: `failed`, because a person
    // reviewing it could not make the signature valid, and listing it as `unknown` would invite a
    // manual override of a failed cryptographic check. A value that is not a boolean at all
    // cannot be read either way: `unknown`.
    if (payload.is_ds_verified === false) return { outcome: 'failed', terminal: true, reason: 'digital signature not verified' };
    if (payload.is_ds_verified !== true) return { outcome: 'unknown', terminal: true, reason: 'is_ds_verified is not a boolean' };
  }
  // "error_code: Only when response_code is 1" (https://developer.uniken.com/docs/notification-callback):
  // an approval that also names an error code says two things, and which is true is not said. Never
  // success; for review. After the signature check: a signature that did not verify is a verdict
  // (failed) whatever else is said. A code of 0 or empty names no error (REL-ID's codes are numbers
  // such as 3558): read like null, or every approval from a server that sends `error_code: 0` with
  // success would read unknown.
  if (namesErrorCode(payload.error_code)) {
    return { outcome: 'unknown', terminal: true, reason: 'error_code beside response_code 0 (the docs send one only with 1)' };
  }
  const delivery = payload.delivery_status;
  if (delivery !== undefined && !(typeof delivery === 'string' && DELIVERY_ALLOWS_APPROVAL.has(asciiUpperCase(delivery)))) {
    return { outcome: 'unknown', terminal: true, reason: 'delivery_status does not allow an approval (FAILED_TO_NOTIFY, or a value not in the docs)' };
  }
  return { outcome: 'succeeded', terminal: true };
}

/** Whether an `error_code` names an error: present, and neither 0 nor empty (as number or text). */
function namesErrorCode(errorCode: unknown): boolean {
  if (errorCode === undefined || errorCode === null) return false;
  return !(errorCode === 0 || (typeof errorCode === 'string' && (errorCode.trim() === '' || /^0+$/.test(errorCode.trim()))));
}

/** What decided the verdict, as received: short values only (the state item stays small). */
function detailOf(payload: RelIdCallback, status: string, meaning: LabelMeaning, verdict: Verdict): StatusDetail {
  const detail: Record<string, string | number | boolean> = {};
  if (payload.action_response != null) detail.action = scalar(payload.action_response);
  if (status === 'UPDATED' || payload.action_response != null) detail.actionMeaning = meaning;
  if (payload.delivery_status !== undefined) detail.deliveryStatus = scalar(payload.delivery_status);
  if ('is_ds_verified' in payload) detail.dsVerified = scalar(payload.is_ds_verified);
  if (payload.response_code !== undefined) detail.responseCode = scalar(payload.response_code);
  if (payload.error_code !== undefined) detail.errorCode = scalar(payload.error_code);
  if (verdict.reason) detail.reason = verdict.reason;
  return detail;
}

function allowList(addresses: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of addresses) {
    const [address, prefix] = entry.split('/');
    const family = isIPv4(address) ? 'ipv4' : 'ipv6';
    if (prefix === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(prefix), family);
  }
  return list;
}

// ---------------------------------------------------------------------------------------------
// Status API: getRVNStatus
// ---------------------------------------------------------------------------------------------

/** Largest answer read from getRVNStatus or the token endpoint; a real one is under 2 KB. */
const MAX_ANSWER_BYTES = 256 * 1024;

/** The token endpoint's path on the AuthServer (docs: `POST /relid/authserver/oauth/token`). */
const TOKEN_PATH = '/relid/authserver/oauth/token';

/** getRVNStatus's "Notification Identifier is not found" (check-notification-status). */
const NOT_FOUND = 3558;
/**
 * REL-IDverify's authentication errors (docs/authentication): 2601 "Authorization header not
 * found", 2604 "Invalid or expired credentials/token", 2606 "Invalid value in authorization
 * header" need a person; 2605 "Internal error during authentication" is REL-ID's own fault.
 */
const AUTH_REFUSED = new Set([2601, 2604, 2606]);
const AUTH_INTERNAL = 2605;

/** The token endpoint of a secret: `tokenUrl`, else the docs' path on baseUrl's host and port (inferred). */
export function relIdTokenUrl(secret: Pick<RelIdSecret, 'baseUrl' | 'tokenUrl'>): string | undefined {
  if (secret.tokenUrl) return secret.tokenUrl;
  return secret.baseUrl ? new URL(TOKEN_PATH, secret.baseUrl).toString() : undefined;
}

function basic(user: string, password: string): string {
  // As the docs' curl does (`-u '<client_id>:<client_secret>'`): the values themselves, UTF-8,
  // not form-encoded first as RFC 6749 §2.3.1 would have a client's credentials.
  return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
}

/** What authenticates a getRVNStatus request, and which secret fields a refusal points at. */
type Credentials =
  | { readonly kind: 'basic'; readonly authorization: string; readonly fields: string }
  | { readonly kind: 'oauth'; readonly clientId: string; readonly clientSecret: string; readonly tokenUrl: string; readonly scope: string; readonly fields: string };

function credentialsOf(secret: RelIdSecret): Credentials | undefined {
  const tokenUrl = relIdTokenUrl(secret);
  if (secret.clientId && secret.clientSecret && tokenUrl) {
    return { kind: 'oauth', clientId: secret.clientId, clientSecret: secret.clientSecret, tokenUrl, scope: secret.tokenScope ?? 'all', fields: 'clientId, clientSecret and tokenUrl' };
  }
  if (secret.username && secret.password) return { kind: 'basic', authorization: basic(secret.username, secret.password), fields: 'username and password' };
  return undefined;
}

/**
 * Access tokens of this worker instance (one per set of client credentials), reused until shortly
 * before they expire; a pending request is shared by every lookup that needs the token meanwhile.
 * Keyed by a digest, so no credential is held twice.
 */
const accessTokens = new Map<string, TokenEntry>();

interface TokenEntry {
  readonly token: Promise<string>;
  /** The token, once it came. */
  value?: string;
  /** Until when it is handed out (ms since the epoch); unbounded while it is being fetched. */
  usableUntil: number;
}

/** How long before its `expires_in` a token is replaced: 30 s of the docs' 299, half of a shorter life. */
function usableFor(lifetimeMs: number): number {
  return lifetimeMs - Math.min(30_000, lifetimeMs / 2);
}

/** An answer's body as text, read no further than MAX_ANSWER_BYTES. */
async function readAnswer(response: Response, what: string): Promise<string> {
  let body: Buffer | undefined;
  try {
    body = await readBoundedBody(response, MAX_ANSWER_BYTES);
  } catch (error) {
    throw new DependencyError('relid', `${what}: the answer could not be read: ${errorMessage(error)}`, { cause: error });
  }
  if (body === undefined) throw new DependencyError('relid', `${what} answered more than ${MAX_ANSWER_BYTES} bytes`);
  return body.toString('utf8');
}

/** A REL-IDverify error answer (`response_code` 1 with an `error_code`), or undefined. */
function errorCodeOf(body: unknown): number | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const { response_code: responseCode, error_code: errorCode } = body as Record<string, unknown>;
  if (responseCodeOf(responseCode) !== 'error') return undefined;
  const code = typeof errorCode === 'number' ? errorCode : typeof errorCode === 'string' && /^\d{1,9}$/.test(errorCode) ? Number(errorCode) : Number.NaN;
  return Number.isSafeInteger(code) ? code : undefined;
}

/** An OAuth2 `error` code from a token endpoint's refusal (RFC 6749 §5.2), when it is one: short, plain. */
function oauthErrorOf(body: unknown): string | undefined {
  const error = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).error : undefined;
  return typeof error === 'string' && /^[a-z_]{1,64}$/.test(error) ? error : undefined;
}

async function send(context: LookupContext, what: string, url: string, init: RequestInit): Promise<Response> {
  try {
    // A redirect is not followed: the Authorization header never goes anywhere the secret did not name.
    return await context.fetch(url, { ...init, redirect: 'manual' });
  } catch (error) {
    // The message names the endpoint, never its URL (a user may have put anything in it).
    throw new DependencyError('relid', `${what} unreachable: ${requestFault(error, context.timeoutMs)}`, { cause: error });
  }
}

/**
 * POST {tokenUrl} with Basic base64(clientId:clientSecret) and `grant_type=client_credentials&scope=…`
 * in the form body ("Any parameters in the URL will be ignored") → `{ access_token, expires_in, … }`.
 * The docs show no failure answer: a refusal is read as OAuth2 has it (400/401 with `error`) or as
 * REL-IDverify's own error codes, whichever comes (inferred).
 * @see https://developer.uniken.com/docs/generate-access-token-client-credentials
 */
async function requestToken(credentials: Extract<Credentials, { kind: 'oauth' }>, context: LookupContext, signal: AbortSignal): Promise<{ token: string; lifetimeMs?: number }> {
  const what = 'REL-ID token endpoint';
  const response = await send(context, what, credentials.tokenUrl, {
    method: 'POST',
    headers: {
      authorization: basic(credentials.clientId, credentials.clientSecret),
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: credentials.scope }).toString(),
    signal,
  });
  const body = answerJson('relid', what, await readAnswer(response, what));
  const code = errorCodeOf(body);
  if (code !== undefined && AUTH_REFUSED.has(code)) {
    throw new ConfigurationError(`${what} refused the client credentials (error_code ${code}): check clientId and clientSecret in the relid secret`);
  }
  if (code === AUTH_INTERNAL) throw new DependencyError('relid', `${what} answered error_code ${AUTH_INTERNAL} (an internal error during authentication)`);
  if (response.status >= 200 && response.status < 300) {
    const fields = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
    const token = fields.access_token;
    // It goes into a header: visible ASCII only (RFC 6750's b64token is narrower still).
    if (typeof token !== 'string' || token.length > 16_384 || !/^[\x21-\x7e]+$/.test(token)) {
      throw new DependencyError('relid', `${what} answered ${response.status} without a usable access_token`);
    }
    const expiresIn = typeof fields.expires_in === 'string' && /^\d{1,9}$/.test(fields.expires_in) ? Number(fields.expires_in) : fields.expires_in;
    return { token, ...(typeof expiresIn === 'number' && expiresIn > 0 && Number.isFinite(expiresIn) ? { lifetimeMs: expiresIn * 1000 } : {}) };
  }
  const oauthError = oauthErrorOf(body);
  if (response.status === 400 || response.status === 401 || response.status === 403) {
    // 401/403: the client was not authenticated; 400: the request was refused (OAuth2's
    // invalid_scope, unsupported_grant_type, and invalid_client on some servers).
    const fix = response.status === 400 ? 'tokenScope, clientId and clientSecret' : 'clientId and clientSecret';
    throw new ConfigurationError(`${what} answered ${response.status}${oauthError ? ` (${oauthError})` : ''}: check ${fix} in the relid secret`);
  }
  if ((response.status >= 300 && response.status < 400) || response.status === 404 || response.status === 405) {
    throw new ConfigurationError(`${what} answered ${response.status}: check tokenUrl (or baseUrl, from which it defaults) in the relid secret`);
  }
  throw endpointFault('relid', `${what} answered ${response.status}`, response);
}

/** An access token for these credentials: the cached one while it is usable, else a new one. */
async function accessToken(credentials: Extract<Credentials, { kind: 'oauth' }>, context: LookupContext, signal: AbortSignal): Promise<{ token: string; key: string; fresh: boolean }> {
  const key = shortHash(JSON.stringify([credentials.tokenUrl, credentials.clientId, credentials.clientSecret, credentials.scope]));
  const now = Date.now();
  const cached = accessTokens.get(key);
  if (cached && cached.usableUntil > now) return { token: await cached.token, key, fresh: false };
  for (const [other, stale] of accessTokens) if (stale.usableUntil <= now) accessTokens.delete(other);
  let settle!: (token: string) => void;
  let fail!: (error: unknown) => void;
  const entry: TokenEntry = { token: new Promise<string>((resolve, reject) => ((settle = resolve), (fail = reject))), usableUntil: Number.POSITIVE_INFINITY };
  accessTokens.set(key, entry);
  requestToken(credentials, context, signal).then(
    ({ token, lifetimeMs }) => {
      entry.value = token;
      // Without expires_in the token is used for this lookup only (the docs always send one).
      entry.usableUntil = lifetimeMs === undefined ? 0 : Date.now() + usableFor(lifetimeMs);
      settle(token);
    },
    (error: unknown) => {
      if (accessTokens.get(key) === entry) accessTokens.delete(key);
      fail(error);
    },
  );
  return { token: await entry.token, key, fresh: true };
}

/** Stop handing out a token REL-ID refused (unless another lookup already replaced it). */
function dropToken(key: string, token: string): void {
  if (accessTokens.get(key)?.value === token) accessTokens.delete(key);
}

/** What one getRVNStatus request said. Faults are thrown. */
type Asked = StatusAnswer<RelIdCallback> | { readonly kind: 'refused'; readonly code: number | undefined; readonly status: number };

/**
 * One getRVNStatus request. The docs give no HTTP status codes: the outcome is in the body
 * (`response_code` 0, or 1 with `error_code`), read first whatever the status; the status decides
 * only when the body is not REL-IDverify's. The documented failures (3558, 26xx) name no
 * notification; a 2xx body that names one (`notification_uuid`) is about it, whatever its
 * `response_code` and `error_code`: `describe` reads response_code 1 as REL-ID reporting an error
 * for that notification, failed (inferred: the docs show no such answer, and it fails closed).
 */
async function askStatus(url: string, authorization: string, context: LookupContext, signal: AbortSignal): Promise<Asked> {
  const what = 'REL-ID getRVNStatus';
  const response = await send(context, what, url, { method: 'GET', headers: { authorization, accept: 'application/json' }, signal });
  const body = answerJson('relid', what, await readAnswer(response, what));
  const ok = response.status >= 200 && response.status < 300;
  const answer = ok && body !== undefined ? RelIdCallbackSchema.safeParse(body) : undefined;
  if (answer?.success) {
    // The answer's `jwt` (issued "if any" about the user's action) is not kept: the gateway
    // neither verifies nor needs it, and a token does not belong in a status table.
    const { jwt: _jwt, ...payload } = answer.data;
    return { kind: 'found', payload: payload as RelIdCallback };
  }
  const code = errorCodeOf(body);
  if (code !== undefined && AUTH_REFUSED.has(code)) return { kind: 'refused', code, status: response.status };
  if (code === AUTH_INTERNAL) throw new DependencyError('relid', `${what} answered error_code ${AUTH_INTERNAL} (an internal error during authentication)`);
  if (code === NOT_FOUND) return { kind: 'not_found' };
  if (code !== undefined) throw new DependencyError('relid', `${what} answered error_code ${code}`);
  if (answer && !answer.success) throw new DependencyError('relid', `${what} answer does not match the schema: ${describeIssues(answer.error).join('; ')}`);
  if (response.status === 401 || response.status === 403) return { kind: 'refused', code: undefined, status: response.status };
  if ((response.status >= 300 && response.status < 400) || response.status === 404 || response.status === 405) {
    throw new ConfigurationError(`${what} answered ${response.status} without a REL-ID answer: check baseUrl in the relid secret`);
  }
  if (ok) throw new DependencyError('relid', `${what} answered ${response.status} with a body that is not a REL-ID answer`);
  throw endpointFault('relid', `${what} answered ${response.status}`, response);
}

function refusal(asked: Extract<Asked, { kind: 'refused' }>, credentials: Credentials): ConfigurationError {
  const said = asked.code === undefined ? `HTTP ${asked.status}` : `error_code ${asked.code}`;
  // 2601: the header we always send did not arrive (a proxy in front of the server dropped it).
  const fix = asked.code === 2601 ? 'baseUrl (a proxy in front of the server may drop the Authorization header)' : credentials.fields;
  const what = credentials.kind === 'oauth' ? 'a fresh access token' : 'the Basic credentials';
  return new ConfigurationError(`REL-ID getRVNStatus refused ${what} (${said}): check ${fix} in the relid secret`);
}

/** A subject that a URL path segment cannot carry: `.`/`..` (resolved away, even as %2E) or a lone UTF-16 surrogate. */
function notAPathSegment(subjectId: string): boolean {
  return subjectId === '.' || subjectId === '..' || /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(subjectId);
}

/** The fields a callback must share with REL-ID's answer to be confirmed, compared as REL-ID means them. */
function relIdDifferences(claim: RelIdCallback, answer: RelIdCallback): string[] {
  const c = claim as Record<string, unknown>;
  const a = answer as Record<string, unknown>;
  const differences: string[] = [];
  const statusOf = (payload: RelIdCallback) => (payload.status === undefined ? ERROR_STATUS : asciiUpperCase(payload.status));
  const claimStatus = statusOf(claim);
  if (claimStatus !== statusOf(answer)) differences.push('status');
  // Who acted and how: NONE, null and absent all say nobody acted (the callback sends NONE, the
  // status answer leaves the field out: "Only present if user responded").
  const label = (value: unknown) => {
    if (value === undefined || value === null) return null;
    if (typeof value !== 'string') return keyPart(value);
    return normalLabel(value) === NO_ACTION ? null : normalLabel(value);
  };
  if (label(c.action_response) !== label(a.action_response)) differences.push('action_response');
  // The signature check matters only to an action; there it must agree, present or not.
  if (claimStatus === 'UPDATED' && statusOf(answer) === 'UPDATED' && keyPart(c.is_ds_verified) !== keyPart(a.is_ds_verified)) differences.push('is_ds_verified');
  // Anything else the callback says must be what REL-ID says; what it leaves out claims nothing.
  const upper = (value: unknown) => (typeof value === 'string' ? asciiUpperCase(value) : keyPart(value));
  if (c.response_code !== undefined && responseCodeOf(c.response_code) !== responseCodeOf(a.response_code)) differences.push('response_code');
  // An error code of 0 or empty names no error, as null and absent do (namesErrorCode).
  const errorCode = (value: unknown) => (namesErrorCode(value) ? String(keyPart(value)) : null);
  if (c.error_code !== undefined && errorCode(c.error_code) !== errorCode(a.error_code)) differences.push('error_code');
  if (c.delivery_status !== undefined && upper(c.delivery_status) !== upper(a.delivery_status)) differences.push('delivery_status');
  for (const field of ['notification_uuid', 'msg_id', 'user_id']) {
    if (c[field] !== undefined && keyPart(c[field]) !== keyPart(a[field])) differences.push(field);
  }
  return differences;
}

export const relid: Provider<RelIdSecret, RelIdCallback, 'relid'> = {
  id: 'relid',
  displayName: 'REL-IDverify',
  docsUrl: 'https://developer.uniken.com/docs/notification-callback',
  route: { method: 'POST', path: '/callbacks/relid/{token}', tokenParameter: 'token' },
  authSummary: 'secret token in the URL path, plus an optional source-IP allow-list; confirmed with getRVNStatus when the secret holds its URL and credentials',
  // A URL token (and an optional IP allow-list): nothing signs the content. When getRVNStatus can be
  // asked, a callback is only a claim and REL-ID's answers move the state.
  callbackTrust: 'token',
  // The notification_uuid REL-ID's server gives a notification it sends.
  mintsSubjectIds: true,
  secretSchema: RelIdSecretSchema,
  generatedSecretField: 'token',
  secretPlaceholder: { token: 'REPLACE_ME' },
  // The declared action labels decide what UPDATED means: the worker loads the secret.
  describeReadsSecret: true,

  authenticate(request, secret) {
    const versions = secretVersions(secret);
    const tokenCheck = authenticatePathToken(request, versions.map((version) => version.token));
    if (!tokenCheck.ok) return tokenCheck;
    // Each version's addresses go with its token, as its other values do: during a rotation
    // (`previous`, "both values are accepted in between") the REL-ID server may still call from the
    // old addresses, with the old token or the new one. An empty list under `previous` adds no
    // addresses (the current ones apply): it must never open a token to every address, as an empty
    // top-level list (no allow-list at all) does.
    const ip = request.sourceIp;
    const family = isIPv4(ip) ? 'ipv4' : isIPv6(ip) ? 'ipv6' : undefined;
    const fromAllowed = (allowed: readonly string[] | undefined) => !allowed?.length || (family !== undefined && allowList(allowed).check(ip, family));
    const addressesOf = (version: RelIdSecret) => (version.allowedIps?.length ? version.allowedIps : secret.allowedIps);
    let accepted = false;
    for (const version of versions) accepted = (secureEquals(request.pathToken, version.token) && fromAllowed(addressesOf(version))) || accepted;
    return accepted ? { ok: true } : { ok: false, reason: 'source IP not in allowedIps' };
  },

  parse: (request) => parseJsonWith(request, RelIdCallbackSchema),

  asSent: (body) => ({ headers: { 'content-type': 'application/json' }, body }),

  /** Without the secret (ingest's log line, `send`), no label is declared: nothing reads as approved. */
  describe(payload, secret) {
    const status = payload.status === undefined ? ERROR_STATUS : asciiUpperCase(payload.status);
    const meaning = meaningOf(payload.action_response, labelsOf(secret));
    const verdict = judge(payload, status, meaning);
    // Two callbacks with the same status and time but a different label, signature check, code or
    // delivery are different reports, not retries of one: both are kept. Never the secret's labels
    // (the key must not change when the labels do).
    const said = shortHash(
      JSON.stringify([payload.action_response, payload.is_ds_verified, payload.response_code, payload.error_code, payload.delivery_status].map(eventKeyPart)),
    );
    return {
      subjectId: payload.notification_uuid,
      eventKey: `${keySegment(status)}|${keySegment(payload.update_ts ?? '')}|${said}`,
      status,
      statusAt: toIsoTime(payload.update_ts),
      outcome: verdict.outcome,
      terminal: verdict.terminal,
      rank: rankOf(payload, status),
      detail: detailOf(payload, status, meaning, verdict),
    };
  },

  differences: relIdDifferences,

  canLookup: (secret) => secret.baseUrl !== undefined && credentialsOf(secret) !== undefined,

  /*
   * Ask on arrival: a callback is sent "immediately after a user takes an action" or once the
   * notification expired, when REL-ID already holds that status (notification-callback), so its
   * answer judges the claim at once; nothing says to wait (no first-ask delay).
   * Horizon: a notification is final (UPDATED, EXPIRED or CANCELLED) by its own expiry_timestamp,
   * `expires_in` seconds after it was sent, chosen per notification (at least 15; three minutes in
   * the docs' example), and nothing is published about how long getRVNStatus keeps answering after
   * that. A day covers any expiry a login or payment approval plausibly uses, plus a REL-ID server
   * down for hours; a subject still ACTIVE, not found or in disagreement after it is for a person
   * (stale), not for more asking.
   * Concurrency and rate: Uniken publishes no limits for getRVNStatus, so the gateway's defaults.
   */
  lookupLimits: { onArrival: true, horizonHours: 24 },

  /**
   * GET {baseUrl}/getRVNStatus.htm/{notification_uuid}, no body, with `Authorization: Basic
   * base64(username:password)` or `Bearer <access_token>` (client credentials; cached per worker
   * instance until shortly before `expires_in`, and fetched again once if REL-ID refuses a cached
   * one). The answer has the callback's fields (plus ACTIVE and CANCELLED), so `describe` reads it,
   * with the declared labels, as it reads a callback. `{"response_code":1,"error_code":3558}`:
   * not found; 2601/2604/2606: ConfigurationError naming the fields to fix; 2605: DependencyError.
   * One timeout (`context.timeoutMs`) bounds the whole lookup, token request included.
   * @see https://developer.uniken.com/docs/check-notification-status
   * @see https://developer.uniken.com/docs/authentication
   */
  async lookup({ subjectId }, secret, context): Promise<StatusAnswer<RelIdCallback>> {
    const credentials = credentialsOf(secret);
    if (!secret.baseUrl || !credentials) {
      throw new ConfigurationError('REL-ID getRVNStatus needs baseUrl and either username/password or clientId/clientSecret in the relid secret');
    }
    // REL-ID's notification ids are UUIDs it issued; one no URL path can carry is not one of them.
    if (notAPathSegment(subjectId)) return { kind: 'not_found' };
    const url = `${secret.baseUrl.replace(/\/+$/, '')}/getRVNStatus.htm/${encodeURIComponent(subjectId)}`;
    const signal = AbortSignal.timeout(context.timeoutMs);
    if (credentials.kind === 'basic') {
      const asked = await askStatus(url, credentials.authorization, context, signal);
      if (asked.kind === 'refused') throw refusal(asked, credentials);
      return asked;
    }
    let token = await accessToken(credentials, context, signal);
    let asked = await askStatus(url, `Bearer ${token.token}`, context, signal);
    if (asked.kind === 'refused' && !token.fresh) {
      // A cached token REL-ID no longer takes (revoked, or its clock is ahead of ours): one more try with a new one.
      dropToken(token.key, token.token);
      token = await accessToken(credentials, context, signal);
      asked = await askStatus(url, `Bearer ${token.token}`, context, signal);
    }
    if (asked.kind === 'refused') throw refusal(asked, credentials);
    return asked;
  },
};
