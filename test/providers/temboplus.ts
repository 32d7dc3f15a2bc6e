import { describeIssues } from '../../functions/providers/common.ts';
import { TemboPlusCallbackSchema, temboplus } from '../../functions/providers/temboplus.ts';
import { secureEquals } from '../../functions/shared/secure-compare.ts';
import { findSample } from '../../local/samples.ts';
import { subjectOfGetPath, type SimulatedRequest, type StatusSimulation } from '../../local/status-simulator.ts';
import { editJson, fieldValues, flatCredentials, hexOf, jsonContent, lifeDice, pathToken, pathTokenAuth, sampleBody, withJsonField, type FuzzRegression, type ProviderKit } from './kit.ts';

const STATUS_PATH = /^\/remittance\/([^/]+)\/status$/;

/** The statusCode TemboPlus's Transaction Status page pairs with each status. */
const TEMBOPLUS_STATUS_CODES: Record<string, string> = {
  CREATED: 'CREATED',
  SUBMITTED: 'SUBMITTED',
  WAITING_ACK: 'WAITING_ACK',
  COMPLETED: 'PAYMENT_SUCCESS',
  FAILED: 'PAYMENT_FAILED',
  REVERSED: 'REVERSED',
  CANCELED: 'PAYMENT_CANCELED',
};

/**
 * TemboPlus's Transaction Status endpoint as its docs describe it, SIMULATED:
 *   GET {baseUrl}/remittance/{partnerReference}/status
 *   Authorization: Bearer <apiToken>, x-request-id: <fresh UUID>
 *   200 the transfer (the same body as the callback), 400 validation / missing headers,
 *   403 bad token, 404 unknown partnerReference, 429 duplicate request id.
 * The error bodies' shape is not published; ours are `{ "error": "...", "details": [...] }`. The
 * order of the checks (400, 403, 429, 404) is our choice: the docs do not say.
 * @see https://tembo.gitbook.io/tembo/reference/remittance/transaction-status
 * @see https://tembo.gitbook.io/tembo/reference/remittance/api-overview
 */
export function temboplusStatusSimulation(apiToken: string): StatusSimulation {
  const usedRequestIds = new Set<string>();
  const authorized = (request: SimulatedRequest) => secureEquals(/^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1], apiToken);
  const requestIdOf = (request: SimulatedRequest) => request.headers['x-request-id'] || undefined;
  return {
    name: 'TemboPlus',
    controlToken: apiToken,
    subjectOf(request) {
      return subjectOfGetPath(request, STATUS_PATH);
    },
    authorized,
    requestIdOf,
    refuse(request) {
      const requestId = requestIdOf(request);
      if (!requestId) return { status: 400, body: { error: 'validation_error', details: ['x-request-id header is required'] } };
      if (!authorized(request)) return { status: 403, body: { error: 'forbidden', details: ['missing or invalid bearer token'] } };
      // A request id is spent once it reached an authorized request, whatever the answer.
      if (usedRequestIds.has(requestId)) return { status: 429, body: { error: 'duplicate_request_id', details: [`x-request-id ${requestId} was already used`] } };
      usedRequestIds.add(requestId);
      return undefined;
    },
    found: (transfer) => ({ status: 200, body: transfer }),
    notFound: (partnerReference) => ({ status: 404, body: { error: 'not_found', details: [`no transfer with partnerReference ${partnerReference}`] } }),
    subjectOfAnswer(answer) {
      const result = TemboPlusCallbackSchema.safeParse(answer);
      if (!result.success) throw new Error(`not a transfer: ${describeIssues(result.error).join('; ')}`);
      return result.data.partnerReference;
    },
  };
}

// --- hostile-input suite (test/fuzz) ---

/** Requests the fuzzer found mishandled: values that become URL segments, a callback too large to store twice. */
const REGRESSIONS: readonly FuzzRegression[] = [
  {
    what: 'partnerReference with a lone surrogate (encodeURIComponent threw in confirm)',
    layer: 'schema',
    content: () => ({ body: sampleBody('temboplus', 'remittance-completed', { partnerReference: 'ref-\ud800' }) }),
    expect: 'quarantined',
  },
  {
    what: 'partnerReference ".." (the status URL would resolve to another path)',
    layer: 'schema',
    content: () => ({ body: sampleBody('temboplus', 'remittance-completed', { partnerReference: '..' }) }),
    expect: 'quarantined',
  },
  {
    what: 'a 215 KB callback confirmed by an identical answer: stored once, whole (was over the 400 KB DynamoDB item limit)',
    layer: 'worker',
    content: () => ({ body: sampleBody('temboplus', 'remittance-completed', { partnerReference: 'tembo-large-1', x_pad: 'p'.repeat(215_000) }) }),
    expect: 'stored',
    // The status endpoint's answer is the callback's own body: kept once.
    item: { confirmation: 'confirmed', answerIsClaim: true, payload: { partnerReference: 'tembo-large-1' } },
  },
];

/** TemboPlus: a URL token, and every callback judged by the Transaction Status endpoint's answer. */
export const temboplusKit: ProviderKit = {
  provider: temboplus,
  route: 'POST /callbacks/temboplus/{token}',
  secret: (tag, options = {}) => ({
    token: pathToken(tag, 'temboplus'),
    apiToken: `${tag}-tembo-api-token`,
    // Nowhere real unless a suite runs a stand-in status endpoint.
    baseUrl: options.statusEndpoint ?? 'https://tembo.invalid',
  }),
  credentials: fieldValues(['token', 'apiToken']),
  ...flatCredentials(['token']),
  requiredFields: ['partnerReference', 'status'],
  sample: 'remittance-completed',
  otherStatus: (content) => editJson(content, (json) => void (json.status = 'REVERSED')),
  withSubject: (sample, subjectId) => ({ ...sample, body: withJsonField(sample.body!, 'partnerReference', subjectId) }),
  ...pathTokenAuth,
  statusSimulation: (secret) => temboplusStatusSimulation(String(secret.apiToken)),
  // The callback's body is the Transaction Status answer itself.
  pendingStatus: 'SUBMITTED',
  statusAnswer(content, status) {
    const transfer = JSON.parse(content.body!.toString('utf8')) as Record<string, unknown>;
    return status === undefined ? transfer : { ...transfer, status, statusCode: TEMBOPLUS_STATUS_CODES[status] ?? status };
  },

  // --- hostile-input suite (test/fuzz) ---
  fuzz: {
    content: {
      kind: 'json',
      // A path segment of the status request: well-formed Unicode, not `.` or `..`.
      subject: { path: ['partnerReference'], max: 256, refuses: (value) => value === '.' || value === '..' },
      fields: [
        { path: ['partnerReference'], kind: 'string', min: 1, max: 256 },
        { path: ['status'], kind: 'string', min: 1, max: 64 },
        { path: ['statusCode'], kind: 'nullishString', max: 64 },
        { path: ['transactionId'], kind: 'nullishString' },
        { path: ['updatedAt'], kind: 'nullishString' },
        { path: ['completedAt'], kind: 'nullishString' },
      ],
      looseUsed: [],
    },
    authenticatesBody: false,
    regressions: REGRESSIONS,
  },

  // --- fault suite (test/faults) ---
  // A transfer CREATED, SUBMITTED, then COMPLETED or FAILED (the status endpoint answers the last).
  life(name) {
    const dice = lifeDice(name);
    const sample = JSON.parse(findSample(temboplus.id, 'remittance-completed').body!.toString('utf8')) as Record<string, unknown>;
    const partnerReference = `FLT-${hexOf(`temboplus/${name}`, 12).toUpperCase()}`;
    const transfer = (status: string, statusCode: string, step: number, final = false) => ({
      ...sample,
      partnerReference,
      status,
      statusCode,
      updatedAt: dice.at(step).toISOString(),
      completedAt: final ? dice.at(step).toISOString() : null,
      receiptNumber: final && status === 'COMPLETED' ? 'RCPT-FAULTS' : null,
    });
    return [
      transfer('CREATED', 'CREATED', 0),
      transfer('SUBMITTED', 'SUBMITTED', 1),
      dice.succeeds ? transfer('COMPLETED', 'PAYMENT_SUCCESS', 2, true) : transfer('FAILED', 'PAYMENT_FAILED', 2, true),
    ].map(jsonContent);
  },
  sendsStatusTime: true,

  // --- benchmark (bench/) ---
};
