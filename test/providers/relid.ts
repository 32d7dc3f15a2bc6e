import type { Arbitrary } from 'fast-check';
import { relid } from '../../functions/providers/relid.ts';
import { editJson, fieldValues, flatCredentials, hexOf, jsonContent, lifeDice, pathToken, pathTokenAuth, sampleBody, withJsonField, type Forgery, type FuzzRegression, type FuzzTools, type Json, type ProviderKit } from './kit.ts';

/** The action labels test secrets declare (what the samples' labels mean). */
export const RELID_APPROVE_LABELS = ['Approved', 'Accept'];
export const RELID_REJECT_LABELS = ['Rejected', 'Reject'];

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

/** REL-IDverify: a URL token (plus an optional source-IP allow-list); declared action labels. */
export const relidKit: ProviderKit = {
  provider: relid,
  route: 'POST /callbacks/relid/{token}',
  secret: (tag) => ({ token: pathToken(tag, 'relid'), approveLabels: RELID_APPROVE_LABELS, rejectLabels: RELID_REJECT_LABELS }),
  credentials: fieldValues(['token']),
  ...flatCredentials(['token']),
  requiredFields: ['notification_uuid', 'status'],
  sample: 'callback-two-way',
  otherStatus: (content) => editJson(content, (json) => void (json.status = 'EXPIRED')),
  withSubject: (sample, subjectId) => ({ ...sample, body: withJsonField(sample.body!, 'notification_uuid', subjectId) }),
  ...pathTokenAuth,

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
