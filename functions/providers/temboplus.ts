import * as z from '../shared/zod.ts';
import { ConfigurationError, DependencyError, errorMessage } from '../shared/errors.ts';
import { answerJson, endpointFault, asciiUpperCase, authenticatePathToken, canonicalJson, configuredString, credentialUrl, describeIssues, parseJsonWith, readBoundedBody, requestFault, toIsoTime } from './common.ts';
import { shortHash } from '../shared/hash.ts';
import { secretVersions, type Outcome, type Provider, type StatusAnswer } from './provider.ts';
import { secretWithRotation } from './secret-schema.ts';

export const TEMBOPLUS_SANDBOX_URL = 'https://sandbox.temboplus.com';

/**
 * `{ token, apiToken?, baseUrl? }`: `token` is the secret in our callback URL; `apiToken` and
 * `baseUrl` are for TemboPlus's Transaction Status endpoint. Without `apiToken` TemboPlus is not
 * asked: its callbacks are believed as they come and shown unconfirmed. With it, `baseUrl` must say
 * which TemboPlus answers: the sandbox (`https://sandbox.temboplus.com`) or the production URL
 * TemboPlus gives at onboarding (unpublished). There is no default, so a deployed stack never asks
 * the sandbox about production transfers without saying so. A placeholder `apiToken` fails closed.
 */
export const TemboPlusSecretSchema = secretWithRotation({
  token: configuredString,
  apiToken: z.optional(configuredString),
  baseUrl: z.optional(credentialUrl),
}).check(
  z.refine((secret) => secret.apiToken === undefined || secret.baseUrl !== undefined, {
    message: `baseUrl is required with apiToken: ${TEMBOPLUS_SANDBOX_URL} for the sandbox, or the production URL from TemboPlus`,
    path: ['baseUrl'],
  }),
);
export type TemboPlusSecret = z.infer<typeof TemboPlusSecretSchema>;

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** `.`, `..` (which URLs resolve to another path) or a lone surrogate: not a path segment a status request can carry. */
function notAPathSegment(value: string): boolean {
  return value === '.' || value === '..' || LONE_SURROGATE.test(value);
}

/**
 * A TemboPlus remittance callback; the body is the Transaction Status response.
 * @see https://tembo.gitbook.io/tembo/reference/remittance/callback-notification
 */
export const TemboPlusCallbackSchema = z.looseObject({
  // It becomes a URL path segment of the status request: encodeURIComponent throws on a lone
  // surrogate, and URLs resolve `.` and `..` (even as %2E) to another path.
  partnerReference: z.string().check(
    z.minLength(1),
    z.maxLength(256),
    z.refine((value) => !LONE_SURROGATE.test(value), 'lone UTF-16 surrogate'),
    z.refine((value) => value !== '.' && value !== '..', 'not a path segment'),
  ),
  status: z.string().check(z.minLength(1), z.maxLength(64)),
  // Fields a transfer does not have yet (completedAt, receiptNumber…) may come as null.
  statusCode: z.nullish(z.string().check(z.maxLength(64))),
  transactionId: z.nullish(z.string()),
  updatedAt: z.nullish(z.string()),
  completedAt: z.nullish(z.string()),
});
export type TemboPlusCallback = z.infer<typeof TemboPlusCallbackSchema>;

/**
 * The statuses of the remittance API's "Transaction Status Codes" table (on its API Overview page;
 * the Transaction Status page itself names only "e.g., COMPLETED, FAILED"). REVERSED follows
 * COMPLETED ("Transaction was processed but later reversed").
 * @see https://tembo.gitbook.io/tembo/reference/remittance/api-overview
 */
const STATUSES: Record<string, { outcome: Outcome; terminal: boolean; rank: number }> = {
  CREATED: { outcome: 'pending', terminal: false, rank: 0 },
  SUBMITTED: { outcome: 'pending', terminal: false, rank: 1 },
  WAITING_ACK: { outcome: 'pending', terminal: false, rank: 2 },
  COMPLETED: { outcome: 'succeeded', terminal: true, rank: 0 },
  FAILED: { outcome: 'failed', terminal: true, rank: 0 },
  CANCELED: { outcome: 'failed', terminal: true, rank: 0 },
  REVERSED: { outcome: 'failed', terminal: true, rank: 1 },
};
/**
 * Fields whose value in a callback must equal the status endpoint's for the callback to be
 * `confirmed`: who is paid, how much, in what currency, through which institution, under which
 * reference. A claim that matches the status but not these is a `mismatch`.
 */
const MATERIAL_FIELDS = [
  'partnerReference', 'transactionId', 'status', 'statusCode', 'senderAmount', 'senderCurrency', 'receiverAmount',
  'receiverCurrency', 'transactionAmount', 'receiverAccount', 'receiverChannel', 'institutionCode', 'institutionReference',
] as const;

/** Values compared as TemboPlus means them: numbers by value (`100` = `100.0` = `"100"`), text exactly. */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a == null || b == null) return a == null && b == null; // null and absent are the same "not yet"
  const numeric = (value: unknown) => (typeof value === 'number' || (typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value)) ? Number(value) : undefined);
  const [x, y] = [numeric(a), numeric(b)];
  return x !== undefined && y !== undefined && x === y;
}

/**
 * A digest of the transfer's fields (TemboPlus sends a flat object): every top-level text, number,
 * boolean or null, by name, as the keys of every documented callback have always been made; a
 * member holding an object or an array adds a digest of its canonical JSON (`canonicalJson` walks
 * without recursion, so a hostile body nested thousands deep cannot overflow the stack). Left out,
 * two callbacks differing only in such a member had one key, and the second was never stored.
 */
function contentDigest(payload: Record<string, unknown>): string {
  const names = Object.keys(payload).sort();
  const fields: [string, unknown][] = names
    .filter((name) => payload[name] === null || ['string', 'number', 'boolean'].includes(typeof payload[name]))
    .map((name) => [name, payload[name]]);
  const nested = names.filter((name) => payload[name] !== null && typeof payload[name] === 'object');
  if (nested.length === 0) return shortHash(JSON.stringify(fields));
  return shortHash(JSON.stringify([...fields, ['~nested', shortHash(canonicalJson(Object.fromEntries(nested.map((name) => [name, payload[name]]))))]]));
}

/** Largest status answer read; a real one is about 1 KB. */
const MAX_ANSWER_BYTES = 256 * 1024;

/** A status TemboPlus may add later: kept, but never allowed to overrule a known one. */
const UNKNOWN_STATUS = { outcome: 'pending', terminal: false, rank: -1 } as const;

/** The one statusCode the docs pair with COMPLETED ("COMPLETED / PAYMENT_SUCCESS"). */
const SUCCESS_CODE = 'PAYMENT_SUCCESS';

/** The failures a payment was never made by: FAILED and CANCELED (REVERSED follows a success). */
const NOT_PAID = new Set(['FAILED', 'CANCELED']);

/**
 * What a status means once its statusCode is read too. COMPLETED is success only with the code the
 * docs pair it with, or with none: a COMPLETED that carries another code (PAYMENT_FAILED,
 * PAYMENT_REVERSED, a code the docs do not list) contradicts itself, so it is final but `unknown`,
 * never success. Likewise a FAILED or CANCELED carrying the success code: read as failed, it would
 * invite sending the money again though the code says it was paid. Any other code beside a failure
 * (one the docs do not list, a new reason) leaves it failed.
 * @see https://tembo.gitbook.io/tembo/reference/remittance/api-overview ("Transaction Status Codes": COMPLETED / PAYMENT_SUCCESS, FAILED / PAYMENT_FAILED…, CANCELED / PAYMENT_CANCELED)
 */
function meaningOf(status: string, statusCode: string | null | undefined): { outcome: Outcome; terminal: boolean; rank: number; detail?: { statusCode: string; contradicts: 'status' } } {
  const meaning = STATUSES[status] ?? UNKNOWN_STATUS;
  if (statusCode === undefined || statusCode === null) return meaning;
  const paid = asciiUpperCase(statusCode) === SUCCESS_CODE;
  const contradicts = meaning.outcome === 'succeeded' ? !paid : paid && NOT_PAID.has(status);
  return contradicts ? { ...meaning, outcome: 'unknown', detail: { statusCode: statusCode.slice(0, 64), contradicts: 'status' } } : meaning;
}

export const temboplus: Provider<TemboPlusSecret, TemboPlusCallback, 'temboplus'> = {
  id: 'temboplus',
  displayName: 'TemboPlus',
  docsUrl: 'https://tembo.gitbook.io/tembo/reference/remittance/callback-notification',
  route: { method: 'POST', path: '/callbacks/temboplus/{token}', tokenParameter: 'token' },
  authSummary: 'secret token in the URL path; every status confirmed with the Transaction Status endpoint',
  secretSchema: TemboPlusSecretSchema,
  generatedSecretField: 'token',
  secretPlaceholder: { token: 'REPLACE_ME', apiToken: 'REPLACE_ME', baseUrl: TEMBOPLUS_SANDBOX_URL },

  authenticate: (request, secret) =>
    authenticatePathToken(request, secretVersions(secret).map((version) => version.token)),

  parse: (request) => parseJsonWith(request, TemboPlusCallbackSchema),

  // TemboPlus repeats the create request's UUID on every callback of a transfer.
  asSent: (body) => ({
    headers: { 'content-type': 'application/json', 'x-request-id': '3f1c9a52-8d0e-4b7a-9f11-5a2c6e7d8b90' },
    body,
  }),

  // Callbacks prove nothing (a URL token; the docs say to validate every status with the Transaction
  // Status endpoint): with apiToken and baseUrl, only its answers move the state.
  callbackTrust: 'token',
  // partnerReference is the partner's own, given when the remittance was created.
  mintsSubjectIds: false,
  secretHelp:
    `baseUrl starts as TemboPlus's SANDBOX (${TEMBOPLUS_SANDBOX_URL}): for production transfers set the production URL TemboPlus gives at onboarding, or every ` +
    'status request answers 404 (the TemboplusConfirmationNotFound alarm). Without apiToken and baseUrl, TemboPlus is not asked and its callbacks are stored unconfirmed.',
  canLookup: (secret) => secret.apiToken !== undefined && secret.baseUrl !== undefined,

  describe(payload) {
    const status = asciiUpperCase(payload.status);
    return {
      subjectId: payload.partnerReference,
      // The content is part of the key: a forged early callback with the same status is another
      // event, so it can never take the place of the genuine one (a retry is byte-identical).
      eventKey: `${status}|${payload.statusCode ?? ''}|${contentDigest(payload)}`,
      status,
      statusAt: toIsoTime(payload.updatedAt ?? payload.completedAt),
      ...meaningOf(status, payload.statusCode),
    };
  },

  differences(claim, answer) {
    return MATERIAL_FIELDS.filter((field) => {
      const claimed = (claim as Record<string, unknown>)[field];
      // A field the callback does not carry claims nothing; one it carries must match.
      if (claimed === undefined || claimed === null) return false;
      const answered = (answer as Record<string, unknown>)[field];
      // The status and its code are read without regard to case (meaningOf): compared so too, or
      // `payment_success` against `PAYMENT_SUCCESS` was a mismatch of two readings alike.
      return field === 'status' || field === 'statusCode' ? asciiUpperCase(String(claimed)) !== asciiUpperCase(String(answered ?? '')) : !sameValue(claimed, answered);
    });
  },

  /**
   * GET {baseUrl}/remittance/{partnerReference}/status with a fresh x-request-id (a reused one is
   * answered 429). 404: not known (yet); 403: the apiToken is refused. 400 is "Validation error -
   * The request payload contains invalid data or required headers are missing" (api-overview): a GET
   * has no payload and its headers are always sent, so the invalid data can be the partnerReference
   * asked, one subject's matter: a DependencyError (this subject unconfirmed, asked again with
   * back-off), not a configuration fault that raises the alarm for every subject.
   * @see https://tembo.gitbook.io/tembo/reference/remittance/transaction-status
   * @see https://tembo.gitbook.io/tembo/reference/remittance/api-overview
   */
  async lookup({ subjectId: partnerReference }, secret, context): Promise<StatusAnswer<TemboPlusCallback>> {
    if (!secret.apiToken || !secret.baseUrl) throw new ConfigurationError('the temboplus secret has no apiToken and baseUrl to ask TemboPlus with');
    // The callback schema refuses a partnerReference no URL path can carry; an expectation may still
    // name one: `/remittance/../status` would ask another path (`/status`) with the token, and
    // encodeURIComponent throws on a lone surrogate. No transfer of ours has such a reference.
    if (notAPathSegment(partnerReference)) return { kind: 'not_found' };
    const url = `${secret.baseUrl.replace(/\/+$/, '')}/remittance/${encodeURIComponent(partnerReference)}/status`;
    let response: Response;
    try {
      response = await context.fetch(url, {
        method: 'GET',
        headers: { authorization: `Bearer ${secret.apiToken}`, 'x-request-id': context.newRequestId(), accept: 'application/json' },
        // A redirect is not followed: whatever answered where it points (without our token, over
        // plain http maybe) would be taken for TemboPlus's word on the transfer.
        redirect: 'manual',
        signal: AbortSignal.timeout(context.timeoutMs),
      });
    } catch (error) {
      throw new DependencyError('temboplus', `status endpoint unreachable: ${requestFault(error, context.timeoutMs)}`, { cause: error });
    }
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel();
      throw new ConfigurationError(`TemboPlus status endpoint answered a redirect (${response.status}), not followed: set baseUrl in the temboplus secret to the API's own https URL`);
    }
    if (response.status === 404) {
      await response.body?.cancel();
      return { kind: 'not_found' };
    }
    if (response.status === 403 || response.status === 401) {
      await response.body?.cancel();
      throw new ConfigurationError(
        `TemboPlus status endpoint answered ${response.status}: check apiToken and baseUrl in the temboplus secret`,
      );
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      // 429 is "Duplicate partnerReference or request ID" (api-overview), which a fresh x-request-id
      // per call never is: read as the endpoint being busy, whose Retry-After, if any, is kept.
      throw endpointFault('temboplus', `status endpoint answered ${response.status}`, response);
    }
    let bytes: Buffer | undefined;
    try {
      // Read no further than the limit: a huge answer must not take the worker's memory (and with
      // it the whole batch) before it is refused.
      bytes = await readBoundedBody(response, MAX_ANSWER_BYTES);
    } catch (error) {
      throw new DependencyError('temboplus', `status endpoint answered 200 with a body that could not be read: ${errorMessage(error)}`, { cause: error });
    }
    if (bytes === undefined) throw new DependencyError('temboplus', `status endpoint answered 200 with a body larger than ${MAX_ANSWER_BYTES} bytes`);
    const body = answerJson('temboplus', 'status endpoint', bytes);
    // Not JSON.parse's message: it quotes a short text whole, and the answer may echo the receiver's account (a phone number).
    if (body === undefined) throw new DependencyError('temboplus', 'status endpoint answered 200 with a body that is not JSON');
    const answer = TemboPlusCallbackSchema.safeParse(body);
    if (!answer.success) {
      throw new DependencyError('temboplus', `status endpoint answer does not match the schema: ${describeIssues(answer.error).join('; ')}`);
    }
    return { kind: 'found', payload: answer.data };
  },
};
