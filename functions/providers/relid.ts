import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { shortHash } from '../shared/hash.ts';
import * as z from '../shared/zod.ts';
import { authenticatePathToken, configuredString, parseJsonWith, toIsoTime } from './common.ts';
import { secretVersions, type Outcome, type Provider, type StatusDetail } from './provider.ts';
import { secretWithRotation } from './secret-schema.ts';

/*
 * REL-IDverify (Uniken) TWO-WAY notification results.
 * @see https://developer.uniken.com/docs/notification-callback (the callback's fields)
 * @see https://developer.uniken.com/docs/check-notification-status (ACTIVE/CANCELLED, which fields are optional)
 * @see https://developer.uniken.com/docs/generate-notification-request (actions are labels each
 *   deployment chooses: "Approve/Reject or Accept/Decline/Fraud"; digital signing is on by default)
 *
 * What the gateway cannot know by itself is what a label *means*: `action_response` is whichever
 * label the notification offered (or NONE). So the deployment declares its labels in the secret,
 * and only a declared approve label can ever read as an approval. Everything else fails closed.
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
 * `{ token, allowedIps?, approveLabels?, rejectLabels? }`.
 * - `token`: the secret in our callback URL; `allowedIps`: optionally the addresses the REL-ID
 *   server calls from (the docs ask for source validation; Uniken publishes no ranges).
 * - `approveLabels` / `rejectLabels`: the `actions[].label`s this deployment's notifications offer,
 *   by meaning (default: none). Compared with `normalLabel`. A label in neither list is recorded
 *   as it came and read as `unknown`, never as an approval. Labels are not rotated: `previous`
 *   holds credentials only, and the worker reads the current lists.
 */
export const RelIdSecretSchema = z
  .extend(secretWithRotation({ token: configuredString, allowedIps: z.optional(z.array(ipOrCidr)) }), {
    approveLabels: actionLabels,
    rejectLabels: actionLabels,
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

/** A loose field as part of the event key: scalars whole; containers by kind (never serialised: they can nest thousands deep). */
function keyPart(value: unknown): string | number | boolean | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  return Array.isArray(value) ? '(an array)' : '(an object)';
}

interface Verdict {
  readonly outcome: Outcome;
  readonly terminal: boolean;
  /** Why a status that could have been an approval is not one (kept in `detail`). */
  readonly reason?: string;
}

/**
 * What the callback means. `succeeded` only for status UPDATED, response_code exactly 0, a label
 * declared in approveLabels, a digital signature that verified wherever `is_ds_verified` is
 * present, and a delivery status that does not contradict the action.
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
  const delivery = payload.delivery_status;
  if (delivery !== undefined && !(typeof delivery === 'string' && DELIVERY_ALLOWS_APPROVAL.has(delivery.toUpperCase()))) {
    return { outcome: 'unknown', terminal: true, reason: 'delivery_status does not allow an approval (FAILED_TO_NOTIFY, or a value not in the docs)' };
  }
  return { outcome: 'succeeded', terminal: true };
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

export const relid: Provider<RelIdSecret, RelIdCallback, 'relid'> = {
  id: 'relid',
  displayName: 'REL-IDverify',
  docsUrl: 'https://developer.uniken.com/docs/notification-callback',
  route: { method: 'POST', path: '/callbacks/relid/{token}', tokenParameter: 'token' },
  authSummary: 'secret token in the URL path, plus an optional source-IP allow-list',
  // A URL token (and an optional IP allow-list): nothing signs the content.
  callbackTrust: 'token',
  secretSchema: RelIdSecretSchema,
  generatedSecretField: 'token',
  secretPlaceholder: { token: 'REPLACE_ME' },
  // The declared action labels decide what UPDATED means: the worker loads the secret.
  describeReadsSecret: true,

  authenticate(request, secret) {
    const tokenCheck = authenticatePathToken(request, secretVersions(secret).map((version) => version.token));
    if (!tokenCheck.ok) return tokenCheck;
    const allowed = secret.allowedIps;
    if (allowed && allowed.length > 0) {
      const ip = request.sourceIp;
      const family = isIPv4(ip) ? 'ipv4' : isIPv6(ip) ? 'ipv6' : undefined;
      if (!family || !allowList(allowed).check(ip, family)) return { ok: false, reason: 'source IP not in allowedIps' };
    }
    return { ok: true };
  },

  parse: (request) => parseJsonWith(request, RelIdCallbackSchema),

  asSent: (body) => ({ headers: { 'content-type': 'application/json' }, body }),

  /** Without the secret (ingest's log line, `send`), no label is declared: nothing reads as approved. */
  describe(payload, secret) {
    const status = payload.status === undefined ? ERROR_STATUS : payload.status.toUpperCase();
    const meaning = meaningOf(payload.action_response, labelsOf(secret));
    const verdict = judge(payload, status, meaning);
    // Two callbacks with the same status and time but a different label, signature check, code or
    // delivery are different reports, not retries of one: both are kept. Never the secret's labels
    // (the key must not change when the labels do).
    const said = shortHash(
      JSON.stringify([payload.action_response, payload.is_ds_verified, payload.response_code, payload.error_code, payload.delivery_status].map(keyPart)),
    );
    return {
      subjectId: payload.notification_uuid,
      eventKey: `${status}|${payload.update_ts ?? ''}|${said}`,
      status,
      statusAt: toIsoTime(payload.update_ts),
      outcome: verdict.outcome,
      terminal: verdict.terminal,
      rank: 0,
      detail: detailOf(payload, status, meaning, verdict),
    };
  },
};
