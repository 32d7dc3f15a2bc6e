import * as z from '../core/zod.ts';
import { secureEqualsAny } from '../core/secure-compare.ts';
import { shortHash } from '../core/hash.ts';
import { configuredString, parseJsonBody, schemaMismatch } from './common.ts';
import { secretVersions, type Outcome, type Provider } from './provider.ts';
import { secretWithRotation } from './secret-schema.ts';

/** `{ callbackApiKey }` from Identomat's company settings; every callback body carries it. */
export const IdentomatSecretSchema = secretWithRotation({ callbackApiKey: configuredString });
export type IdentomatSecret = z.infer<typeof IdentomatSecretSchema>;

/** The sample body says `one-time-password-request` where the docs say `one-time-password`. */
const TYPE_ALIASES: Record<string, string> = { 'one-time-password-request': 'one-time-password' };
/** Instructions for the receiver to send a code or link itself: carry live codes and contacts. */
const INSTRUCTION_TYPES = new Set([
  'one-time-password',
  'email-one-time-password-request',
  'share-session-link-via-sms',
  'share-session-link-via-email',
]);

/**
 * An Identomat callback, without its `callbackApiKey` (removed once checked: it is a secret).
 * Only the sample events' bodies are published; unknown fields are kept.
 * @see https://docs.identomat.com/developer-tools/callbacks
 */
export const IdentomatCallbackSchema = z.looseObject({
  type: z.pipe(
    z.string().check(z.minLength(1), z.maxLength(64)),
    z.transform((type: string) => TYPE_ALIASES[type] ?? type),
  ),
  sessionId: z.string().check(z.minLength(1), z.maxLength(128)),
  result: z.nullish(z.string().check(z.maxLength(64))),
  roomStatus: z.nullish(z.string().check(z.maxLength(64))),
  videoFileStatus: z.nullish(z.string().check(z.maxLength(64))),
  text: z.nullish(z.string()),
});
export type IdentomatCallback = z.infer<typeof IdentomatCallbackSchema>;

const KEY_FIELD = 'callbackApiKey';

function classify(payload: IdentomatCallback): { status: string; outcome: Outcome; terminal: boolean; rank: number } {
  if (payload.type === 'session-change') {
    const result = (payload.result ?? 'UNKNOWN').toUpperCase();
    // Terminal: APPROVED / REJECTED (inferred); manual check and more-info requests are steps.
    if (result === 'APPROVED') return { status: result, outcome: 'succeeded', terminal: true, rank: 0 };
    if (result === 'REJECTED') return { status: result, outcome: 'failed', terminal: true, rank: 0 };
    return { status: result, outcome: 'pending', terminal: false, rank: 1 };
  }
  if (payload.type === 'video-call-status-update') {
    const status = `video:${payload.roomStatus || 'active'}/${payload.videoFileStatus || 'none'}`;
    return { status, outcome: 'pending', terminal: false, rank: 0 };
  }
  return { status: payload.type, outcome: 'pending', terminal: false, rank: 0 };
}

export const identomat: Provider<IdentomatSecret, IdentomatCallback> = {
  id: 'identomat',
  displayName: 'Identomat',
  docsUrl: 'https://docs.identomat.com/developer-tools/callbacks',
  route: { method: 'POST', path: '/callbacks/identomat' },
  authSummary: '`callbackApiKey` in the JSON body, compared in constant time',
  secretSchema: IdentomatSecretSchema,
  secretPlaceholder: { callbackApiKey: 'REPLACE_ME' },

  authenticate(request, secret) {
    const json = parseJsonBody(request.body);
    // Without readable JSON there is no key to check: the sender cannot be told from a forger.
    if (!json.ok) return { ok: false, reason: `cannot read callbackApiKey: ${json.reason}` };
    const key = (json.value as Record<string, unknown> | null)?.[KEY_FIELD];
    if (typeof key !== 'string') return { ok: false, reason: 'missing callbackApiKey' };
    const accepted = secretVersions(secret).map((version) => version.callbackApiKey);
    return secureEqualsAny(key, accepted) ? { ok: true } : { ok: false, reason: 'wrong callbackApiKey' };
  },

  parse(request) {
    const json = parseJsonBody(request.body);
    if (!json.ok) return { ok: false, reason: json.reason, issues: [] };
    if (!json.value || typeof json.value !== 'object' || Array.isArray(json.value)) {
      return { ok: false, reason: 'body is not a JSON object', issues: [] };
    }
    const { [KEY_FIELD]: _key, ...rest } = json.value as Record<string, unknown>;
    const result = IdentomatCallbackSchema.safeParse(rest);
    if (!result.success) return schemaMismatch(result.error);
    return { ok: true, payload: result.data };
  },

  describe(payload) {
    const { status, ...placement } = classify(payload);
    const instruction = INSTRUCTION_TYPES.has(payload.type);
    // Two OTP requests for one session are two messages to a person; a retry of one is not.
    // sessionLink is not checked by the schema: String() throws on an object whose toString is not a function.
    const link = typeof payload.sessionLink === 'string' ? payload.sessionLink : '';
    const detail = instruction ? shortHash(`${payload.text ?? ''}|${link}`) : status;
    return {
      subjectId: payload.sessionId,
      eventKey: `${payload.type}|${detail}`,
      status,
      sensitive: instruction,
      ...placement,
    };
  },

  asSent(body, secret) {
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    } catch {
      return { headers: { 'content-type': 'application/json' }, body };
    }
    return { headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ ...json, [KEY_FIELD]: secret.callbackApiKey })) };
  },

  bodySecrets: (secret) => secretVersions(secret).map((version) => version.callbackApiKey),
};
