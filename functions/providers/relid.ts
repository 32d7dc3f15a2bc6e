import { BlockList, isIPv4, isIPv6 } from 'node:net';
import * as z from '../core/zod.ts';
import { authenticatePathToken, configuredString, parseJsonWith, toIsoTime } from './common.ts';
import { secretVersions, type Outcome, type Provider } from './provider.ts';
import { secretWithRotation } from './secret-schema.ts';

/** An address (`203.0.113.7`) or CIDR block (`203.0.113.0/24`, `2001:db8::/32`). */
const ipOrCidr = z.string().check(z.refine((value) => {
  const [address, prefix] = value.split('/');
  const family = isIPv4(address) ? 32 : isIPv6(address) ? 128 : 0;
  return family > 0 && (prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= family));
}, 'expected an IP address or CIDR block'));

/**
 * `{ token, allowedIps? }`: the secret in our callback URL, and optionally the addresses the REL-ID
 * server calls from (the docs ask for source validation; Uniken publishes no ranges).
 */
export const RelIdSecretSchema = secretWithRotation({
  token: configuredString,
  allowedIps: z.optional(z.array(ipOrCidr)),
});
export type RelIdSecret = z.infer<typeof RelIdSecretSchema>;

/**
 * A REL-IDverify TWO-WAY notification result (approved/rejected by the user, or expired).
 * @see samples/uniken/callback-two-way.json
 */
export const RelIdCallbackSchema = z.looseObject({
  notification_uuid: z.string().check(z.minLength(1), z.maxLength(128)),
  status: z.string().check(z.minLength(1), z.maxLength(32)),
  response_code: z.optional(z.union([z.number(), z.string()])),
  action_response: z.nullish(z.string()),
  // Part of the event's sort key (DynamoDB: 1 KB): a timestamp, not a document.
  update_ts: z.nullish(z.string().check(z.maxLength(64))),
});
export type RelIdCallback = z.infer<typeof RelIdCallbackSchema>;

/** Action labels are configured per notification; these read as a "no". */
const NEGATIVE_ACTION = /reject|decline|deny|denied|fraud|cancel/i;

function classify(payload: RelIdCallback): { outcome: Outcome; terminal: boolean; rank: number } {
  const status = payload.status.toUpperCase();
  if (status === 'ACTIVE') return { outcome: 'pending', terminal: false, rank: 0 };
  if (status !== 'UPDATED') return { outcome: 'failed', terminal: true, rank: 0 };
  const approved = Number(payload.response_code ?? 0) === 0 && !NEGATIVE_ACTION.test(payload.action_response ?? '');
  return { outcome: approved ? 'succeeded' : 'failed', terminal: true, rank: 0 };
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

export const relid: Provider<RelIdSecret, RelIdCallback> = {
  id: 'relid',
  displayName: 'REL-IDverify',
  docsUrl: 'https://docs.uniken.com/',
  route: { method: 'POST', path: '/callbacks/relid/{token}' },
  authSummary: 'secret token in the URL path, plus an optional source-IP allow-list',
  secretSchema: RelIdSecretSchema,
  generatedSecretField: 'token',
  secretPlaceholder: { token: 'REPLACE_ME' },

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

  describe(payload) {
    const status = payload.status.toUpperCase();
    return {
      subjectId: payload.notification_uuid,
      eventKey: `${status}|${payload.update_ts ?? ''}`,
      status,
      statusAt: toIsoTime(payload.update_ts),
      ...classify(payload),
    };
  },
};
