import { randomBytes } from 'node:crypto';
import type { Arbitrary } from 'fast-check';
import { describeIssues } from '../../functions/providers/common.ts';
import type { CallbackRequest } from '../../functions/providers/provider.ts';
import { getStatusApiOf, servedByGetStatus, telesign, TeleSignCallbackSchema, TeleSignSecretSchema, teleSignSignature, type GetStatusApi } from '../../functions/providers/telesign.ts';
import { secureEquals } from '../../functions/shared/secure-compare.ts';
import type { MessageSimulation, SimulatedAnswer, SimulatedRequest, StatusSimulation } from '../../local/status-simulator.ts';
import { SimulatedHttpError } from '../../local/status-simulator.ts';
import {
  editJson,
  fieldValues,
  flatCredentials,
  hexOf,
  jsonContent,
  lifeDice,
  sampleBody,
  withJsonField,
  type Content,
  type Forgery,
  type FuzzContent,
  type FuzzRegression,
  type FuzzTools,
  type Json,
  type ProviderKit,
} from './kit.ts';

const STATUS_PATH = /^\/v1\/(messaging|verify)\/([^/]+)$/;

/** Get Status answers exist for 12 hours after the transaction, then 404 -10004. */
const ANSWER_LIFETIME_MS = 12 * 3_600_000;

/** TeleSign's texts for the codes the suites use (nobody codes against them). */
const DESCRIPTIONS: Record<number, string> = {
  100: 'Call answered',
  103: 'Call in progress',
  200: 'Delivered to handset',
  203: 'Delivered to gateway',
  207: 'Error delivering SMS to handset (reason unknown)',
  210: 'Temporary phone error',
  211: 'Permanent phone error',
  250: 'Final status unknown',
  290: 'Message in progress',
};

/** A TeleSign error answer (getStatusResponse with `errors`), as the examples of TeleSign's OpenAPI file show it. */
function errorAnswer(
  httpStatus: number,
  error: { code: number; description: string },
  status: { code: number; description: string },
  referenceId: string | null,
  now: number,
): SimulatedAnswer {
  return {
    status: httpStatus,
    body: {
      reference_id: referenceId,
      sub_resource: referenceId === null ? null : '',
      errors: [error],
      status: { ...status, updated_on: new Date(now).toISOString() },
    },
  };
}

const NOT_AUTHORIZED = { code: 501, description: 'Not authorized' };
const STATUS_NOT_AVAILABLE = { code: 599, description: 'Status not available' };

/** `Basic base64(customer_id:api_key)`, taken apart; undefined when it is not that. */
function basicCredentials(header: string): { customerId: string; apiKey: string } | undefined {
  const match = /^Basic ([A-Za-z0-9+/]+={0,2})$/i.exec(header.trim());
  if (!match) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : { customerId: decoded.slice(0, colon), apiKey: decoded.slice(colon + 1) };
}

function decodedSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

export interface TeleSignSimulationOptions {
  /** The simulation's clock (ms), so a test can let 12 hours pass. */
  readonly now?: () => number;
  /** The delivery reports each sent SMS gets, in order (`status.code`s). @default [200] ("Delivered to handset") */
  readonly deliveryCodes?: readonly number[];
  /** Between a send and its first report, and between reports. @default 50 */
  readonly reportDelayMs?: number;
  /**
   * A trial account: it sends only to these numbers (digits, as sent), and answers any other with
   * 401, -10033 "{phone_number} has not been verified for this trial account".
   * @default - a full account: any number
   */
  readonly verifiedNumbers?: readonly string[];
}

/**
 * TeleSign's Get Status endpoints as its docs describe them, SIMULATED:
 *   GET {baseUrl}/v1/messaging/{reference_id}   (SMS)
 *   GET {baseUrl}/v1/verify/{reference_id}      (SMS Verify, Voice Verify)
 *   Authorization: Basic base64(customer_id:api_key)
 *   200 the transaction (the delivery report's shape); 401 with 501 "Not authorized" and -30004
 *   (no header), -30005 (not Basic), -30000 (customer id), -30015 (API key); 400 -10001 (a reference
 *   id that is not one); 404 -10001 (not known to this endpoint); 404 -10004 (12 hours after it was
 *   reported). The engine's faults play 429, 5xx, delays and hangs.
 * A reported answer is served by the endpoint of its product (`verify` for a `verify` object or
 * `sub_resource: call`, else `messaging`); the other answers 404 -10001, as does either for a subject
 * Get Status does not serve (a Voice event, a Verify API process, a bulk or inbound message: what
 * `statusAnswer` hands over for those). Digest (TSA) authentication is not simulated: the gateway
 * asks with Basic. The 404 -10001 body is the -10004 example's with the other code (inferred).
 * @see https://developer.telesign.com/enterprise/reference/getverifystatus
 * @see https://developer.telesign.com/enterprise/docs/sms-api-obtain-transaction-status-results
 */
export function telesignStatusSimulation(credentials: { customerId: string; apiKey: string }, options: TeleSignSimulationOptions = {}): StatusSimulation {
  const now = options.now ?? Date.now;
  /** Which endpoint serves each reported subject (none: Get Status does not know it), and since when. */
  const served = new Map<string, { api: GetStatusApi | 'none'; reportedAt: number }>();
  const authorized = (request: SimulatedRequest) => {
    const given = basicCredentials(request.headers.authorization ?? '');
    // Both compared, whatever the first says: no early exit to time.
    const customerOk = secureEquals(given?.customerId, credentials.customerId);
    const keyOk = secureEquals(given?.apiKey, credentials.apiKey);
    return given !== undefined && customerOk && keyOk;
  };
  const unauthorized = (code: number, description: string) => errorAnswer(401, { code, description }, NOT_AUTHORIZED, null, now());
  /** TeleSign's refusal of a request's credentials, by its documented codes; undefined when they are right. */
  const refuseCredentials = (request: SimulatedRequest): SimulatedAnswer | undefined => {
    const header = request.headers.authorization;
    if (!header) return unauthorized(-30004, "Missing required 'Authorization' header");
    const given = basicCredentials(header);
    if (!given) return unauthorized(-30005, "Required 'Authorization' header is not in the correct format");
    if (!secureEquals(given.customerId, credentials.customerId)) return unauthorized(-30000, 'Invalid Customer ID.');
    if (!secureEquals(given.apiKey, credentials.apiKey)) return unauthorized(-30015, 'Invalid API Key.');
    return undefined;
  };
  return {
    name: 'TeleSign',
    messages: telesignMessagingSimulation(credentials, refuseCredentials, options),
    controlToken: credentials.apiKey,
    subjectOf(request) {
      const match = STATUS_PATH.exec(request.path);
      if (!match) return undefined;
      if (request.method !== 'GET') throw new SimulatedHttpError(405, 'method_not_allowed', ['use GET']);
      // An undecodable segment is kept as it came: `refuse` answers it as TeleSign does (400).
      return decodedSegment(match[2]) ?? match[2];
    },
    authorized,
    refuse(request) {
      const refused = refuseCredentials(request);
      if (refused) return refused;
      const [, api, segment] = STATUS_PATH.exec(request.path)!;
      const referenceId = decodedSegment(segment);
      if (referenceId === undefined) {
        return errorAnswer(400, { code: -10001, description: `Invalid Request: ReferenceID Parameter: ${segment}` }, { code: 500, description: 'Transaction not attempted' }, 'None', now());
      }
      const known = served.get(referenceId);
      if (known && now() - known.reportedAt >= ANSWER_LIFETIME_MS) {
        return errorAnswer(404, { code: -10004, description: 'ReferenceID expired.' }, STATUS_NOT_AVAILABLE, referenceId, now());
      }
      if (known && known.api !== api) return notFound(referenceId, now());
      return undefined;
    },
    found: (answer) => ({ status: 200, body: answer }),
    notFound: (referenceId) => notFound(referenceId, now()),
    subjectOfAnswer(answer) {
      const result = TeleSignCallbackSchema.safeParse(answer);
      if (!result.success) throw new Error(`not a TeleSign answer: ${describeIssues(result.error).join('; ')}`);
      served.set(result.data.reference_id, { api: servedByGetStatus(result.data) ? getStatusApiOf(result.data) : 'none', reportedAt: now() });
      return result.data.reference_id;
    },
  };
}

/** TeleSign's 400 answer to a send: the parameter's status code (reference/sms), no reference id (none was made). */
function sendRefusal(statusCode: number, description: string, externalId: string | null): SimulatedAnswer {
  return { status: 400, body: { external_id: externalId, status: { code: statusCode, description } } };
}

/**
 * TeleSign's SMS API (POST {baseUrl}/v1/messaging), SIMULATED, as https://developer.telesign.com/enterprise/reference/sms
 * describes it: form-encoded `phone_number` (digits, country code first), `message` (at most 1600
 * characters), `message_type` (OTP, ARN, MKT), optional `external_id`; Basic authentication (401 with
 * the Get Status codes); 400 with the parameter's status code (12000/12009/12017 missing, 11000
 * phone_number, 11009 message, 11017 message_type, 11016 external_id); a trial account's unverified
 * number 401 -10033. Taken: 200 `{reference_id, external_id, status: {code: 290, "Message in
 * progress"}}` (TeleSign's SDK fixture), then each of `deliveryCodes` as a delivery report signed as
 * TeleSign signs callbacks (`Authorization: TSA <customerId>:<signature>`), in the SMS delivery
 * report's shape (test/fixtures/telesign/sms-dlr-success-engage.json), and known to Get Status.
 * Inferred: that `+` or spaces in phone_number are refused (the page only says "avoid"), and the
 * 400 body's shape (`status.code` without `errors`, as third-party clients show it).
 */
function telesignMessagingSimulation(
  credentials: { customerId: string; apiKey: string },
  refuseCredentials: (request: SimulatedRequest) => SimulatedAnswer | undefined,
  options: TeleSignSimulationOptions,
): MessageSimulation {
  const now = options.now ?? Date.now;
  const reportDelayMs = options.reportDelayMs ?? 50;
  const deliveryCodes = options.deliveryCodes ?? [200];
  const form = (request: SimulatedRequest) => new URLSearchParams(request.body.toString('utf8'));
  // Delivery reports are signed with the account's key, as TeleSign signs every callback.
  const signing = TeleSignSecretSchema.parse({ customerId: credentials.customerId, apiKey: credentials.apiKey });
  return {
    route: { method: 'POST', path: '/v1/messaging' },
    isSend: (request) => request.path === '/v1/messaging' && request.method === 'POST',
    parametersOf: (request) => Object.fromEntries(form(request)),
    refuseSend(request) {
      const refused = refuseCredentials(request);
      if (refused) return refused;
      const params = form(request);
      const externalId = params.get('external_id');
      const phone = params.get('phone_number');
      const message = params.get('message');
      const type = params.get('message_type');
      if (!phone) return sendRefusal(12000, 'Missing Required Parameter phone_number', externalId);
      if (!message) return sendRefusal(12009, 'Missing Required Parameter message', externalId);
      if (!type) return sendRefusal(12017, 'Missing Required Parameter message_type', externalId);
      if (!/^\d{7,15}$/.test(phone)) return sendRefusal(11000, 'Invalid value for parameter phone_number.', externalId);
      if ([...message].length > 1600) return sendRefusal(11009, 'Invalid value for parameter message.', externalId);
      if (!['OTP', 'ARN', 'MKT'].includes(type)) return sendRefusal(11017, 'Invalid value for parameter message_type.', externalId);
      if (externalId !== null && (externalId.length > 100 || /[^\x20-\x7e]/.test(externalId))) return sendRefusal(11016, 'Invalid value for parameter external_id', externalId);
      if (options.verifiedNumbers && !options.verifiedNumbers.includes(phone)) {
        return errorAnswer(401, { code: -10033, description: `${phone} has not been verified for this trial account.` }, { code: 500, description: 'Transaction not attempted' }, null, now());
      }
      return undefined;
    },
    accept(request, at) {
      const params = form(request);
      const referenceId = randomBytes(16).toString('hex').toUpperCase();
      const externalId = params.get('external_id');
      const sentAt = new Date(now());
      const report = (statusCode: number, index: number) => {
        const json = {
          reference_id: referenceId,
          status: { code: statusCode, description: DESCRIPTIONS[statusCode] ?? `status ${statusCode}`, updated_on: new Date(sentAt.getTime() + (index + 1) * reportDelayMs).toISOString() },
          errors: [],
          sub_resource: 'sms',
          submit_timestamp: sentAt.toISOString(),
          ...(externalId === null ? {} : { external_id: externalId }),
        };
        const dressed = telesign.asSent!(Buffer.from(JSON.stringify(json)), signing);
        return { afterMs: (index + 1) * reportDelayMs, headers: dressed.headers, body: dressed.body, statusAnswer: { ...json } };
      };
      return {
        answer: { status: 200, body: { reference_id: referenceId, external_id: externalId, status: { code: 290, description: 'Message in progress' } } },
        referenceId,
        statusAnswer: { reference_id: referenceId, sub_resource: 'sms', errors: [], status: { code: 290, description: 'Message in progress', updated_on: at.toISOString() } },
        reports: deliveryCodes.map(report),
      };
    },
  };
}

function notFound(referenceId: string, now: number): SimulatedAnswer {
  return errorAnswer(404, { code: -10001, description: 'CustomerID/ReferenceID not found' }, STATUS_NOT_AVAILABLE, referenceId, now);
}

/** The delivery report's fields a Get Status answer carries (TeleSign's getStatusResponse and its SDK fixtures). */
const ANSWER_FIELDS = ['reference_id', 'sub_resource', 'submit_timestamp', 'external_id', 'additional_info', 'verify'] as const;

/**
 * What Get Status answers about a callback's transaction: its fields, `errors: []`, and its status,
 * or `status` instead ("207", or "200 VALID" with a code state). A callback Get Status does not serve
 * (Voice, Verify API, bulk, inbound, templates) is handed over as it is: the simulation answers
 * 404 -10001 about it, as TeleSign does.
 */
export function teleSignStatusAnswer(content: Content, status?: string): unknown {
  const callback = JSON.parse(content.body!.toString('utf8')) as Record<string, any>;
  const parsed = TeleSignCallbackSchema.safeParse(callback);
  if (!parsed.success || !servedByGetStatus(parsed.data)) return callback;
  const answer: Record<string, any> = { errors: [], status: { ...callback.status } };
  for (const field of ANSWER_FIELDS) if (callback[field] !== undefined) answer[field] = callback[field];
  if (status === undefined) return answer;
  const wanted = /^(\d{3,5})(?: ([A-Z_]+))?$/.exec(status);
  if (!wanted) throw new Error(`a TeleSign status is a status.code, optionally with a code state ("207", "200 VALID"), not "${status}"`);
  const code = Number(wanted[1]);
  answer.status = { ...answer.status, code, description: DESCRIPTIONS[code] ?? `status ${code}` };
  if (wanted[2]) answer.verify = { code_entered: null, ...answer.verify, code_state: wanted[2] };
  return answer;
}

// --- hostile-input suite (test/fuzz) ---
// What decides an SMS Verify report (status.code, verify.code_state) and a Voice event (event,
// data.status, answered_on_utc, ended_on_utc), as functions/providers/telesign.ts reads them.

const CODE_STATES = ['VALID', 'INVALID', 'EXPIRED', 'MAX_ATTEMPTS_EXCEEDED', 'UNKNOWN'] as const;
/** Delivery codes of every kind: final, intermediate, "final status unknown", in no table. */
const CODES = [200, 201, 203, 207, 210, 221, 230, 250, 251, 290, 291, 292, 293, 295, 500, 503, 516, 599, 100, 103, 107, 1500, 3850, 3851, 0, 99_999] as const;
const CALL_STATUSES = ['answered', 'hangup', 'no-answer', 'no_answer', 'NO-ANSWER', 'busy', 'failed', 'canceled', 'speak_successful', 'completed', 'in-progress', ''] as const;
/** A few sessions only, so many Voice events (repeated dial_completed, retries) land on the same one. */
const VOICE_SESSIONS = ['fuzz-voice-session-1', 'fuzz-voice-session-2', '534e1848-235f-482d-983d-e3e11a04f58a'] as const;

/** SMS Verify reports over codes of every kind, and Voice events on a few sessions: valid every way the schema allows. */
function outcomeFields({ fc }: FuzzTools): Arbitrary<Json> {
  /** Short text the schema takes as a code state (at most 64 UTF-16 units, well-formed). */
  const shortJunk = fc.oneof(
    fc.constantFrom('valid', 'Invalid', 'VERIFIED', 'PENDING', ' VALID', 'VALID ', 'VALID\u0000', '\u0130NVALID', 'VAL\u200dID', '\u00df'.repeat(40), 'x'.repeat(64)),
    fc.string({ unit: 'grapheme', maxLength: 12 }).filter((value) => value.length <= 64),
  );

  /** An SMS Verify delivery report: every documented code state, none, and junk, over codes of every kind. */
  const verifyReport = fc
    .record({
      code: fc.constantFrom(...CODES),
      asString: fc.boolean(),
      codeState: fc.oneof(
        { arbitrary: fc.constantFrom(...CODE_STATES), weight: 4 },
        { arbitrary: fc.constantFrom(null, undefined), weight: 1 },
        { arbitrary: shortJunk, weight: 2 },
      ),
      updatedOn: fc.constantFrom('2016-10-21T14:05:36.181346Z', '2016-10-21T14:09:00Z', 'Thu, 23 Jun 2022 19:03:44 GMT'),
    })
    .map(({ code, asString, codeState, updatedOn }): Json => ({
      status: { code: asString ? String(code) : code, description: 'fuzz', updated_on: updatedOn },
      verify: codeState === undefined ? { code_entered: null } : { code_state: codeState, code_entered: null },
      sub_resource: 'sms',
      event: undefined,
      data: undefined,
      state: undefined,
    }));

  /** `data` is unchecked by the schema: besides TeleSign's values, anything may be in it. */
  const callStatus = fc.oneof(
    { arbitrary: fc.constantFrom(...CALL_STATUSES), weight: 6 },
    { arbitrary: shortJunk, weight: 1 },
    { arbitrary: fc.constantFrom(null, 42, true, [], {}, { toString: 1 }, 'h'.repeat(500)), weight: 1 },
  );
  const voiceTime = fc.constantFrom(undefined, null, '', '2019-03-15T06:48:24.151', '2019-03-15T06:48:24.151Z', 'not-a-time', 0, { toString: 1 }, '9'.repeat(300));

  /**
   * A Voice event on one of a few sessions (the session is the subject: its events repeat, as retries
   * and as second legs), with data shaped like TeleSign's call_completed sample.
   */
  const voiceEvent = fc
    .record({
      event: fc.constantFrom('dial_completed', 'dial_completed', 'dial_completed', 'call_completed', 'call_completed', 'call_leg_completed', 'speak_completed', 'play_completed', 'incoming_call', 'x_fuzz_event'),
      session: fc.constantFrom(...VOICE_SESSIONS),
      leg: fc.constantFrom('15558675309', '15558675310', '15558675311'),
      status: fc.option(callStatus, { nil: undefined }),
      answeredOn: voiceTime,
      endedOn: voiceTime,
    })
    .map(({ event, session, leg, status, answeredOn, endedOn }): Json => {
      const data: Json = { duration: 6, created_on_utc: '2019-03-15T06:48:22.151', to: leg, from: 'VIRTUAL_NUMBER', direction: 'outbound', status, answered_on_utc: answeredOn, ended_on_utc: endedOn };
      for (const key of Object.keys(data)) if (data[key] === undefined) delete data[key];
      return { event, reference_id: session, data, status: undefined, verify: undefined, state: undefined };
    });

  return fc.oneof(verifyReport, voiceEvent);
}

/**
 * Forgeries of the `Authorization: TSA <customerId>:<signature>` header: left out, garbage, another
 * key, a random or replayed signature, the customer id or key misspelled, the signature cut,
 * extended or re-encoded, an empty body signed, the header moved to the query.
 */
function signatureForgeries({ fc, wrongSpellings }: FuzzTools, secret: Record<string, unknown>, valid: Arbitrary<FuzzContent>): Arbitrary<Forgery>[] {
  const customerId = String(secret.customerId);
  const apiKey = String(secret.apiKey);
  const header = (body: Buffer) => `TSA ${customerId}:${teleSignSignature(apiKey, body)}`;
  /**
   * A forgery setting the header (undefined: none), and perhaps the query. TeleSign's key is base64
   * and decoders drop what is not base64: a "wrong" spelling can sign exactly like the right key.
   * Such a request is authentic, whatever we meant.
   */
  const forge =
    (variant: string, authorization: (content: FuzzContent, signature: string) => string | undefined, query?: (right: string) => string): Forgery =>
    (request, content) => {
      const { authorization: _authentic, ...headers } = request.headers;
      const right = header(content.body);
      const value = authorization(content, teleSignSignature(apiKey, content.body));
      const sent = value === undefined ? headers : { ...headers, authorization: value };
      const authentic = value !== undefined && value.trim() === right;
      return { dressed: { ...request, headers: sent, query: query ? query(right) : request.query, authentic, variant }, content };
    };
  const respell = (signature: string, form: string) =>
    form === 'case'
      ? signature.replace(/[a-z]/, (ch) => ch.toUpperCase()).replace(/^([^a-z]*)$/, (s) => s.replace(/[A-Z]/, (ch) => ch.toLowerCase()))
      : form === 'base64url'
        ? Buffer.from(signature, 'base64').toString('base64url')
        : form === 'no-padding'
          ? signature.replace(/=+$/, '')
          : Buffer.from(signature, 'base64').toString('hex');
  /** An attack, given another authentic body (drawn for every forgery, used by replays). */
  type Attack = (other: FuzzContent) => Forgery;
  const attack = fc.oneof(
    fc.constant<Attack>(() => forge('missing', () => undefined)),
    fc.constantFrom('', 'TSA', 'TSA ', `TSA ${customerId}`, `TSA ${customerId}:`, 'Bearer abc', 'Basic Zm9vOmJhcg==', 'tsa x:y', `TSA :sig`, 'TSA a:b:c d').map((value): Attack => () => forge('garbage', () => value)),
    fc.uint8Array({ minLength: 16, maxLength: 48 }).map((bytes): Attack => () => forge('other-key', (content) => `TSA ${customerId}:${teleSignSignature(Buffer.from(bytes).toString('base64'), content.body)}`)),
    fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes): Attack => () => forge('random-signature', () => `TSA ${customerId}:${Buffer.from(bytes).toString('base64')}`)),
    // A genuine signature, taken from another request, sent with this body.
    fc.constant<Attack>((other) => forge('replayed-body', () => header(other.body))),
    wrongSpellings(customerId).map((spelling): Attack => () => forge(`wrong-customer:${spelling.how}`, (_content, signature) => `TSA ${spelling.value}:${signature}`)),
    fc.record({ cut: fc.integer({ min: 1, max: 43 }) }).map(({ cut }): Attack => () => forge('signature-truncated', (_content, signature) => `TSA ${customerId}:${signature.slice(0, Math.max(0, signature.length - cut))}`)),
    fc.constantFrom('=', 'A', 'AAAA', '==', ' x').map((suffix): Attack => () => forge('signature-extended', (_content, signature) => `TSA ${customerId}:${signature}${suffix}`)),
    fc.constantFrom('case', 'base64url', 'no-padding', 'hex').map((form): Attack => () => forge(`signature-${form}`, (_content, signature) => `TSA ${customerId}:${respell(signature, form)}`)),
    wrongSpellings(apiKey).map((spelling): Attack => () => forge(`wrong-key:${spelling.how}`, (content) => `TSA ${customerId}:${teleSignSignature(spelling.value, content.body)}`)),
    fc.constant<Attack>(() => forge('signed-empty-body', () => header(Buffer.alloc(0)))),
    fc.constant<Attack>(() => forge('in-query', () => undefined, (right) => `authorization=${encodeURIComponent(right)}`)),
  );
  return [fc.record({ other: valid, attack }).map(({ other, attack: chosen }) => chosen(other))];
}

/** Requests the fuzzer found mishandled: a value that becomes a key, an unchecked field `describe` reads. */
const REGRESSIONS: readonly FuzzRegression[] = [
  {
    what: 'data holding {"ended_on_utc":{"toString":1}} (String() throws on it)',
    layer: 'describe',
    content: () => ({ body: sampleBody('telesign', 'voice-call_completed', { reference_id: 'voice-tostring', data: undefined }, '"data":{"ended_on_utc":{"toString":1}}') }),
    expect: 'stored',
  },
  {
    what: 'Verify state of 2,000 characters (sort key over 1 KB)',
    layer: 'schema',
    content: () => ({ body: sampleBody('telesign', 'verify-api-dlr', { state: 'S'.repeat(2_000) }) }),
    expect: 'quarantined',
  },
  {
    what: 'updated_on of 2,000 characters (sort key)',
    layer: 'schema',
    content: () => ({ body: sampleBody('telesign', 'verify-api-dlr', { updated_on: '2'.repeat(2_000) }) }),
    expect: 'quarantined',
  },
];

/** TeleSign: a signed body (`Authorization: TSA <customerId>:<HMAC of the raw body>`). */
export const telesignKit: ProviderKit = {
  provider: telesign,
  route: 'POST /callbacks/telesign',
  secret: (tag, options = {}) => ({
    customerId: `${tag.toUpperCase()}-CUSTOMER-7731`,
    // Base64 of at least 16 bytes of key material, as the secret schema requires.
    apiKey: Buffer.from(`${tag}-telesign-api-key-0123456789`).toString('base64'),
    // Get Status is opt-in, and stays off as it does by default unless the suite asks. Every field
    // is spelled out, so the secret is what the schema reads it as.
    statusLookup: options.asks === true,
    // Nowhere real unless a suite runs a stand-in.
    baseUrl: options.statusEndpoint ?? 'https://telesign.invalid',
    statusApis: ['messaging', 'verify'],
  }),
  credentials: fieldValues(['customerId', 'apiKey']),
  ...flatCredentials(['customerId', 'apiKey']),
  requiredFields: ['reference_id', 'status'],
  sample: 'sms-dlr-success',
  otherStatus: (content) => editJson(content, (json) => void (json.status.code = 203)),
  withSubject: (sample, subjectId) => ({ ...sample, body: withJsonField(sample.body!, 'reference_id', subjectId) }),
  withoutCredential(request: CallbackRequest) {
    const { authorization: _removed, ...headers } = request.headers;
    return { ...request, headers };
  },
  tampered(request) {
    const body = Buffer.from(request.body);
    body[body.indexOf('reference_id') + 2] ^= 0x01;
    return { ...request, body };
  },
  statusSimulation: (secret) => telesignStatusSimulation({ customerId: String(secret.customerId), apiKey: String(secret.apiKey) }),
  statusAnswer: teleSignStatusAnswer,
  // 203 "Delivered to gateway (Intermediate)": what Get Status says while the message is on its way.
  pendingStatus: '203',

  // --- hostile-input suite (test/fuzz) ---
  fuzz: {
    content: {
      kind: 'json',
      subject: { path: ['reference_id'], max: 128 },
      fields: [
        { path: ['reference_id'], kind: 'string', min: 1, max: 128 },
        { path: ['status'], kind: 'object', whenPresent: true },
        { path: ['status', 'code'], kind: 'code', whenPresent: true },
        { path: ['status', 'description'], kind: 'string', whenPresent: true },
        { path: ['status', 'updated_on'], kind: 'string', max: 64, whenPresent: true },
        { path: ['state'], kind: 'string', min: 1, max: 64, whenPresent: true },
        { path: ['event'], kind: 'string', min: 1, max: 64, whenPresent: true },
        { path: ['updated_on'], kind: 'nullishString', max: 64 },
        { path: ['verify'], kind: 'object', whenPresent: true },
        { path: ['verify', 'code_state'], kind: 'nullishString', max: 64, whenPresent: true },
      ],
      looseUsed: [['data'], ['data', 'status'], ['data', 'answered_on_utc'], ['data', 'ended_on_utc']],
      vary: outcomeFields,
    },
    authenticatesBody: true,
    forgeries: (tools, { secret, valid }) => signatureForgeries(tools, secret, valid),
    regressions: REGRESSIONS,
  },

  // --- fault suite (test/faults) ---
  // A message queued (290), delivered to the handset (203), then delivered (200) or not (207).
  life(name) {
    const dice = lifeDice(name);
    const reference_id = hexOf(`telesign/${name}`, 32).toUpperCase();
    const dlr = (code: number, step: number) =>
      jsonContent({ reference_id, status: { code, description: 'fault suite', updated_on: dice.at(step).toUTCString() }, errors: [], sub_resource: 'sms' });
    return [dlr(290, 0), dlr(203, 1), dlr(dice.succeeds ? 200 : 207, 2)];
  },
  sendsStatusTime: true,

  // --- benchmark (bench/) ---
};
