import { randomBytes } from 'node:crypto';
import type { Arbitrary } from 'fast-check';
import { describeIssues } from '../../functions/providers/common.ts';
import { relid, RelIdCallbackSchema } from '../../functions/providers/relid.ts';
import { secureEquals } from '../../functions/shared/secure-compare.ts';
import { SimulatedHttpError, subjectOfGetPath, type SimulatedAnswer, type SimulatedRequest, type StatusSimulation } from '../../local/status-simulator.ts';
import {
  editJson, fieldValues, flatCredentials, hexOf, jsonContent, lifeDice, pathToken, pathTokenAuth, sampleBody, withJsonField,
  type Content, type Forgery, type FuzzRegression, type FuzzTools, type Json, type ProviderKit, type SecretOptions,
} from './kit.ts';

/** The action labels test secrets declare (what the samples' labels mean). */
export const RELID_APPROVE_LABELS = ['Approved', 'Accept'];
export const RELID_REJECT_LABELS = ['Rejected', 'Reject'];

/** How a test secret authenticates to getRVNStatus: Basic, OAuth2 client credentials, or both sets (OAuth2 is used). */
export type RelIdAuth = 'basic' | 'oauth' | 'both';

/**
 * A REL-ID secret for a suite (`tag`): the callback token and labels, and credentials for
 * getRVNStatus at `statusEndpoint`, or nowhere real (`.invalid` never resolves) unless a suite runs
 * a stand-in: REL-ID has no public status host, and the suites that do not run one must not reach
 * a real server.
 */
export function relidSecret(tag: string, options: SecretOptions & { readonly auth?: RelIdAuth } = {}): Record<string, unknown> {
  const auth = options.auth ?? 'basic';
  return {
    token: pathToken(tag, 'relid'),
    approveLabels: RELID_APPROVE_LABELS,
    rejectLabels: RELID_REJECT_LABELS,
    ...(auth === 'oauth' ? {} : { username: `${tag}-relid-user`, password: `${tag}-relid-password` }),
    ...(auth === 'basic' ? {} : { clientId: `${tag}-relid-client`, clientSecret: `${tag}-relid-client-secret` }),
    baseUrl: options.statusEndpoint ?? 'https://relid.invalid',
  };
}

/** The subject the simulator's request log shows for a token request (it is not a notification). */
export const RELID_TOKEN_REQUEST = '(token request)';

const STATUS_PATH = /^\/getRVNStatus\.htm\/([^/]+)$/;
const TOKEN_PATH = '/relid/authserver/oauth/token';

export interface RelIdSimulationOptions {
  /**
   * The HTTP status REL-ID's error answers come with, which the docs do not give: `in-body` answers
   * them 200 with the outcome in the body only, `as-http` 401 (2601/2604/2606) and 404 (3558).
   * @default 'in-body'
   */
  readonly errors?: 'in-body' | 'as-http';
  /** `expires_in` of the access tokens issued. @default 299 (the docs' example) */
  readonly tokenLifetimeSeconds?: number;
}

/** REL-ID's simulated status server, with a switch the tests use to refuse the tokens it issued so far. */
export interface RelIdStatusSimulation extends StatusSimulation {
  /** Forget every access token issued so far (as if revoked or expired early). */
  revokeTokens(): void;
}

function relIdError(code: number, message: string, extra: Record<string, unknown> = {}) {
  return { response_code: 1, error_code: code, error_message: message, ...extra };
}

/**
 * REL-IDverify's getRVNStatus and AuthServer token endpoint as the docs describe them, SIMULATED,
 * both on the simulator's one port:
 *   GET  /getRVNStatus.htm/{notification_uuid}   Authorization: Basic base64(username:password)
 *                                                 or Bearer <access_token>
 *   POST /relid/authserver/oauth/token            Basic base64(clientId:clientSecret),
 *                                                 form body grant_type=client_credentials&scope=…
 * Answers: the notification (the callback's fields), `{"response_code":1,"error_code":3558,…}`
 * for an unknown one, 2601 (no Authorization), 2606 (an unreadable one), 2604 (wrong credentials,
 * or an unknown or expired token, with the docs' `invalid_token` fields). Only the credentials in
 * `secret` are accepted: username/password, clientId/clientSecret, whichever it holds. The token
 * endpoint's refusals are not documented; ours are OAuth2's (RFC 6749 §5.2: 401 invalid_client,
 * 400 unsupported_grant_type / invalid_scope). The control token is the callback `token`, which
 * every REL-ID secret has.
 * @see https://developer.uniken.com/docs/check-notification-status
 * @see https://developer.uniken.com/docs/authentication
 * @see https://developer.uniken.com/docs/generate-access-token-client-credentials
 */
export function relidStatusSimulation(secret: Record<string, unknown>, options: RelIdSimulationOptions = {}): RelIdStatusSimulation {
  const asHttp = options.errors === 'as-http';
  const lifetimeSeconds = options.tokenLifetimeSeconds ?? 299;
  const issued = new Map<string, number>();
  const text = (name: string) => (typeof secret[name] === 'string' ? (secret[name] as string) : undefined);
  const basicPair = (authorization: string | undefined): [string, string] | 'unreadable' | undefined => {
    const match = /^Basic ([A-Za-z0-9+/]+={0,2})$/.exec(authorization ?? '');
    if (!match) return undefined;
    const decoded = Buffer.from(match[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon < 0 ? 'unreadable' : [decoded.slice(0, colon), decoded.slice(colon + 1)];
  };
  const matches = (pair: ReturnType<typeof basicPair>, user: string | undefined, password: string | undefined) =>
    Array.isArray(pair) && user !== undefined && password !== undefined && secureEquals(pair[0], user) && secureEquals(pair[1], password);
  const isTokenRequest = (request: SimulatedRequest) => request.path === TOKEN_PATH;
  const bearerOf = (request: SimulatedRequest) => /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')?.[1];
  const liveToken = (token: string | undefined) => token !== undefined && (issued.get(token) ?? 0) > Date.now();
  const authorized = (request: SimulatedRequest) => {
    const pair = basicPair(request.headers.authorization);
    if (isTokenRequest(request)) return matches(pair, text('clientId'), text('clientSecret'));
    return matches(pair, text('username'), text('password')) || liveToken(bearerOf(request));
  };
  const refused = (body: Record<string, unknown>): SimulatedAnswer => ({ status: asHttp ? 401 : 200, body });

  function tokenAnswer(request: SimulatedRequest): SimulatedAnswer {
    if (!authorized(request)) return { status: 401, body: { error: 'invalid_client', error_description: 'client authentication failed' } };
    // "Request parameters are expected in the request body only. Any parameters in the URL will be ignored."
    const form = /^application\/x-www-form-urlencoded\b/.test(request.headers['content-type'] ?? '') ? new URLSearchParams(request.body.toString('utf8')) : new URLSearchParams();
    if (form.get('grant_type') !== 'client_credentials') return { status: 400, body: { error: 'unsupported_grant_type' } };
    const scope = form.get('scope');
    if (!scope) return { status: 400, body: { error: 'invalid_scope' } };
    const token = randomBytes(24).toString('base64url');
    issued.set(token, Date.now() + lifetimeSeconds * 1000);
    return { status: 200, body: { access_token: token, token_type: 'Bearer', expires_in: lifetimeSeconds, scope } };
  }

  return {
    name: 'REL-IDverify',
    controlToken: String(secret.token ?? ''),
    subjectOf(request) {
      if (isTokenRequest(request)) {
        if (request.method !== 'POST') throw new SimulatedHttpError(405, 'method_not_allowed', ['use POST']);
        return RELID_TOKEN_REQUEST;
      }
      return subjectOfGetPath(request, STATUS_PATH);
    },
    authorized,
    // The token endpoint is served here: its "refusal" is its whole answer, a token included.
    refuse(request) {
      if (isTokenRequest(request)) return tokenAnswer(request);
      const authorization = request.headers.authorization;
      if (!authorization) return refused(relIdError(2601, 'Authorization header not found'));
      const pair = basicPair(authorization);
      const bearer = bearerOf(request);
      if (pair === 'unreadable' || (pair === undefined && bearer === undefined)) return refused(relIdError(2606, 'Authorization failed'));
      if (authorized(request)) return undefined;
      return refused(bearer === undefined ? relIdError(2604, 'Authorization failed') : relIdError(2604, 'Authorization failed', { error: 'invalid_token', error_description: 'Access token expired' }));
    },
    found: (notification) => ({ status: 200, body: notification }),
    notFound: () => ({ status: asHttp ? 404 : 200, body: relIdError(3558, 'Notification Identifier is not found') }),
    subjectOfAnswer(answer) {
      const result = RelIdCallbackSchema.safeParse(answer);
      if (!result.success) throw new Error(`not a REL-ID notification: ${describeIssues(result.error).join('; ')}`);
      return result.data.notification_uuid;
    },
    revokeTokens: () => issued.clear(),
  };
}

/** Statuses in which nobody acted (getRVNStatus: action_response "Only present if user responded"). */
const NO_ACTION_STATUSES = new Set(['ACTIVE', 'EXPIRED', 'CANCELLED']);

/**
 * What getRVNStatus answers about a callback's notification: the callback's own fields (the docs
 * show the same object, plus `jwt` "if any"), or the notification in another status. Moved to
 * ACTIVE, EXPIRED or CANCELLED it carries no action (`action_response` and `client_ip_address` are
 * only there once the user acted), and it is a success answer (`response_code` 0) whatever the
 * callback reported. An error report (no `status`) is answered as it came: REL-ID's
 * report about that notification, which the lookup reads as found (it names the notification).
 */
export function relidStatusAnswer(content: Content, status?: string): Record<string, unknown> {
  const notification = JSON.parse(content.body!.toString('utf8')) as Record<string, unknown>;
  if (status === undefined) return notification;
  // An answer with a status is getRVNStatus's success answer: response_code 0, no error_code.
  const { error_code: _errorCode, ...rest } = notification;
  const moved: Record<string, unknown> = { ...rest, response_code: 0, status };
  if (NO_ACTION_STATUSES.has(status.toUpperCase())) {
    delete moved.action_response;
    delete moved.client_ip_address;
  }
  return moved;
}

// --- hostile-input suite (test/fuzz) ---

/** Reject labels the fuzz secret declares: a third one, so a list longer than a pair is read. */
export const RELID_FUZZ_REJECT_LABELS: readonly string[] = [...RELID_REJECT_LABELS, 'Fraud'];

/**
 * The fuzz secret's source-address allow-list: a range and an address, which allow every address
 * the suite sends authentic requests from (`FUZZ_SOURCE_IPS`).
 */
const FUZZ_ALLOWED_IPS = ['203.0.113.0/24', '127.0.0.1'];
/** Addresses outside it (and not addresses at all): a request from one of them is not authentic. */
const DISALLOWED_SOURCE_IPS = ['198.51.100.9', '10.0.0.1', '::1', '2001:db8::1', 'not-an-ip', ''];

/** `response_code` 1 (either spelling): an error report, which may come without `status`. */
const isErrorCode = (value: unknown) => value === 1 || value === '1';

/**
 * `action_response` values: declared labels (odd case, whitespace), labels no deployment here
 * declared (negatives without a "reject" word, near misses of the declared ones, look-alikes,
 * a zero-width character), NONE, empty, null, left out, and odd text.
 */
function relidActionResponse({ fc, oddText }: FuzzTools): Arbitrary<string | null | undefined> {
  /** A declared label as a sender might spell it: any case, surrounding whitespace (all still match). */
  const declaredLabel = fc
    .record({
      label: fc.constantFrom(...RELID_APPROVE_LABELS, ...RELID_FUZZ_REJECT_LABELS),
      spelling: fc.constantFrom('as-is', 'lower', 'upper', 'alternating'),
      before: fc.constantFrom('', ' ', '  ', '\t', '\u00a0'),
      after: fc.constantFrom('', ' ', '\n', '\r\n', '\u3000'),
    })
    .map(({ label, spelling, before, after }) => {
      const spelled =
        spelling === 'lower' ? label.toLowerCase() : spelling === 'upper' ? label.toUpperCase() : spelling === 'alternating' ? [...label].map((ch, i) => (i % 2 ? ch.toUpperCase() : ch.toLowerCase())).join('') : label;
      return `${before}${spelled}${after}`;
    });
  return fc.oneof(
    { arbitrary: declaredLabel, weight: 4 },
    {
      arbitrary: fc.constantFrom(
        'No', 'Not me', 'Block', 'Disapprove', 'NONE', 'none', 'Deny', 'Decline', 'Yes', 'OK', 'Approve', 'Approved!', 'Accepted',
        'Approved Rejected', 'Reject?', '\u0410pproved', 'Approved\u200b', 'Appro\u0301ved', 'Ａｃｃｅｐｔ',
      ),
      weight: 3,
    },
    { arbitrary: fc.constantFrom('', ' ', null, undefined), weight: 1 },
    { arbitrary: oddText(64), weight: 1 },
  );
}

/**
 * The outcome-deciding fields of a REL-ID callback, valid every way the schema allows:
 * `status` (documented, lower case, undocumented), `action_response`, `is_ds_verified`
 * true/false/absent (or not a boolean), `response_code` 0/"0"/""/1/"1"/2/absent, `delivery_status`,
 * `error_code`, and error reports (`response_code` 1) without `status`.
 */
export function relidOutcomeFields(tools: FuzzTools): Arbitrary<Json> {
  const { fc } = tools;
  return fc
    .record({
      status: fc.oneof({ arbitrary: fc.constant('UPDATED'), weight: 5 }, { arbitrary: fc.constantFrom('updated', 'EXPIRED', 'ACTIVE', 'CANCELLED', 'PENDING'), weight: 2 }),
      action_response: relidActionResponse(tools),
      is_ds_verified: fc.oneof({ arbitrary: fc.constantFrom(true, false, undefined), weight: 6 }, { arbitrary: fc.constantFrom('true', 1, null), weight: 1 }),
      response_code: fc.oneof({ arbitrary: fc.constantFrom(0, '0', '', 1, '1', undefined), weight: 6 }, { arbitrary: fc.constantFrom(2, '00', ' 0', 0.5), weight: 1 }),
      delivery_status: fc.constantFrom('NOTIFIED', 'PARTIALLY_NOTIFIED', 'FAILED_TO_NOTIFY', 'NONE', 'notified', 'BOUNCED', undefined),
      error_code: fc.constantFrom(undefined, undefined, 3558, '3620', 2604),
      withoutStatus: fc.boolean(),
    })
    .map(({ withoutStatus, ...fields }): Json => (withoutStatus && isErrorCode(fields.response_code) ? { ...fields, status: undefined } : fields));
}

/** A request with the right token from an address the allow-list does not allow: never authentic. */
function sourceIpForgery({ fc }: FuzzTools): Arbitrary<Forgery> {
  return fc.constantFrom(...DISALLOWED_SOURCE_IPS).map(
    (ip): Forgery =>
      (request, content) => ({ dressed: { ...request, sourceIp: ip, authentic: false, variant: `source-ip:${ip || 'empty'}` }, content }),
  );
}

/** Requests the fuzzer found mishandled: a value that becomes a key. */
const REGRESSIONS: readonly FuzzRegression[] = [
  {
    what: 'update_ts of 2,000 characters (sort key)',
    layer: 'schema',
    content: () => ({ body: sampleBody('relid', 'callback-two-way', { update_ts: 'u'.repeat(2_000) }) }),
    expect: 'quarantined',
  },
];

/** REL-IDverify: a URL token (plus an optional source-IP allow-list); declared action labels; getRVNStatus. */
export const relidKit: ProviderKit = {
  provider: relid,
  route: 'POST /callbacks/relid/{token}',
  secret: (tag, options = {}) => relidSecret(tag, options),
  // Values that must never show: the callback token and the status API's secrets (not user names).
  credentials: fieldValues(['token', 'password', 'clientSecret']),
  ...flatCredentials(['token']),
  requiredFields: ['notification_uuid', 'status'],
  sample: 'callback-two-way',
  otherStatus: (content) => editJson(content, (json) => void (json.status = 'EXPIRED')),
  withSubject: (sample, subjectId) => ({ ...sample, body: withJsonField(sample.body!, 'notification_uuid', subjectId) }),
  ...pathTokenAuth,
  statusSimulation: (secret) => relidStatusSimulation(secret),
  statusAnswer: relidStatusAnswer,
  // getRVNStatus: "ACTIVE" until the user acts or the notification expires.
  pendingStatus: 'ACTIVE',

  // --- hostile-input suite (test/fuzz) ---
  fuzz: {
    content: {
      kind: 'json',
      subject: { path: ['notification_uuid'], max: 128 },
      fields: [
        { path: ['notification_uuid'], kind: 'string', min: 1, max: 128 },
        { path: ['status'], kind: 'string', min: 1, max: 32, optionalWhen: (json) => isErrorCode(json.response_code) },
        { path: ['response_code'], kind: 'numberOrString' },
        { path: ['action_response'], kind: 'nullishString' },
        { path: ['update_ts'], kind: 'nullishString', max: 64 },
      ],
      looseUsed: [['is_ds_verified'], ['delivery_status'], ['error_code']],
      vary: relidOutcomeFields,
    },
    authenticatesBody: false,
    adjustSecret: (secret) => ({ ...secret, allowedIps: FUZZ_ALLOWED_IPS, rejectLabels: RELID_FUZZ_REJECT_LABELS }),
    forgeries: (tools) => [sourceIpForgery(tools)],
    regressions: REGRESSIONS,
  },

  // --- fault suite (test/faults) ---
  // A notification ACTIVE, then answered with a declared approve label, or EXPIRED.
  life(name, secret) {
    const dice = lifeDice(name);
    const h = hexOf(`relid/${name}`, 32);
    const notification_uuid = `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
    const common = { user_id: 'fault-suite', notification_uuid, delivery_status: 'NOTIFIED', verification_mode: 'REL-ID' };
    const [approved] = secret.approveLabels as string[];
    return [
      { ...common, status: 'ACTIVE', response_code: 0, update_ts: dice.at(0).toISOString() },
      dice.succeeds
        ? { ...common, status: 'UPDATED', response_code: 0, action_response: approved, update_ts: dice.at(1).toISOString() }
        : { ...common, status: 'EXPIRED', response_code: 1, update_ts: dice.at(1).toISOString() },
    ].map(jsonContent);
  },
  sendsStatusTime: true,

  // --- benchmark (bench/) ---
};
