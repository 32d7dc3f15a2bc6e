import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as FastCheck from 'fast-check';
import { identomat } from '../../functions/providers/identomat.ts';
import { INSTRUCTION_LIMITS } from '../../functions/providers/provider.ts';
import { secureEquals } from '../../functions/shared/secure-compare.ts';
import { FIXTURES_DIR } from '../../local/samples.ts';
import { SimulatedHttpError, type SimulatedRequest, type StatusSimulation } from '../../local/status-simulator.ts';
import { altered, editJson, fieldValues, flatCredentials, hexOf, jsonContent, lifeDice, sampleBody, withJsonField, type Content, type Forgery, type FuzzContent, type FuzzRegression, type FuzzTools, type Json, type ProviderKit } from './kit.ts';

const KEY = 'callbackApiKey';

const RESULT_PATH = '/external-api/result/';
/** The member of a reported answer naming its session (the request's parameter name); not served. */
const ANSWER_SUBJECT = 'session_token';

/** The parameters of a result/ request: from a JSON or form body, else from the query string (the developer guide allows all three). */
function resultParameters(request: SimulatedRequest): { companyKey?: string; sessionToken?: string } {
  const type = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  let fields: Record<string, unknown> = {};
  if (request.body.length > 0 && type === 'application/json') {
    let json: unknown;
    try {
      json = JSON.parse(request.body.toString('utf8'));
    } catch {
      throw new SimulatedHttpError(400, 'invalid_json', ['the body is not JSON']);
    }
    if (json && typeof json === 'object' && !Array.isArray(json)) fields = json as Record<string, unknown>;
  } else if (request.body.length > 0 && type === 'application/x-www-form-urlencoded') {
    fields = Object.fromEntries(new URLSearchParams(request.body.toString('utf8')));
  }
  const text = (name: string) => (typeof fields[name] === 'string' ? (fields[name] as string) : (request.query.get(name) ?? undefined));
  return { companyKey: text('company_key'), sessionToken: text('session_token') };
}

/**
 * Identomat's result/ endpoint as its docs describe it, SIMULATED:
 *   POST (or GET) {baseUrl}/external-api/result/ with company_key and session_token (JSON, form or query)
 *   Authorization: signature="<base64 HMAC-SHA256(hmacKey, body)>" when the secret holds hmacKey
 *   200 the session's result object (`"result": "approved"`, lower case).
 * Our choices where nothing is published: a wrong or missing company_key or signature is 401
 * `{ "error": "unauthorized" }`; a token it was never told about is 200 `{}` (no result); a request
 * without session_token is 400. It never signs its answers (a simulated answer has no headers), which
 * Identomat does only for successful requests. Answers are reported as the result object plus a
 * `session_token` member naming the session, which is not served.
 * @see https://identomat.gitbook.io/identomat-documentation/developer-tools/api-reference
 * @see https://coda.io/@identomat/documentation/hmac-authorization-127
 */
export function identomatStatusSimulation(secret: Record<string, unknown>): StatusSimulation {
  const text = (name: string) => (typeof secret[name] === 'string' && secret[name] !== '' ? (secret[name] as string) : undefined);
  const companyKey = text('companyKey');
  const hmacKey = text('hmacKey');
  const hmacKeyBytes = hmacKey === undefined ? undefined : Buffer.from(hmacKey, (text('hmacKeyEncoding') ?? 'utf8') as BufferEncoding);
  const signed = (request: SimulatedRequest) => {
    if (hmacKeyBytes === undefined) return true;
    const received = /^signature="([^"]*)"$/.exec(request.headers.authorization ?? '')?.[1];
    return secureEquals(received, createHmac('sha256', hmacKeyBytes).update(request.body).digest('base64'));
  };
  const authorized = (request: SimulatedRequest) => companyKey !== undefined && secureEquals(resultParameters(request).companyKey, companyKey) && signed(request);
  return {
    name: 'Identomat',
    // The control routes take the company key, or (a secret without one) the callback key.
    controlToken: companyKey ?? text(KEY) ?? '',
    subjectOf(request) {
      if (request.path !== RESULT_PATH) return undefined;
      if (request.method !== 'POST' && request.method !== 'GET') throw new SimulatedHttpError(405, 'method_not_allowed', ['use POST or GET']);
      const { sessionToken } = resultParameters(request);
      if (!sessionToken) throw new SimulatedHttpError(400, 'invalid_request', ['session_token is required']);
      return sessionToken;
    },
    authorized,
    refuse: (request) => (authorized(request) ? undefined : { status: 401, body: { error: 'unauthorized', details: ['wrong or missing company_key or signature'] } }),
    found(answer) {
      const { [ANSWER_SUBJECT]: _subject, ...served } = answer as Record<string, unknown>;
      return { status: 200, body: served };
    },
    notFound: () => ({ status: 200, body: {} }),
    subjectOfAnswer(answer) {
      if (!answer || typeof answer !== 'object' || Array.isArray(answer)) throw new Error('not a result: expected a JSON object');
      const { [ANSWER_SUBJECT]: subject, result } = answer as Record<string, unknown>;
      if (typeof subject !== 'string' || subject.length === 0) throw new Error(`not a result: ${ANSWER_SUBJECT} (the session it is about) must be a non-empty string`);
      if (result !== undefined && result !== null && typeof result !== 'string') throw new Error('not a result: result must be a string or null');
      return subject;
    },
  };
}

/**
 * What result/ answers about the session of a callback: the published example with the callback's
 * result in lower case, or `status`. A session that only sent an instruction or a video update (or a
 * session-change without a result) has no result we know of: `in_progress` (a third-party client's
 * enum lists InProgress; the spelling is ours), read as pending like any unlisted result.
 */
function identomatStatusAnswer(content: Content, status?: string): Record<string, unknown> {
  const callback = JSON.parse(content.body!.toString('utf8')) as Record<string, unknown>;
  const example = JSON.parse(readFileSync(join(FIXTURES_DIR, 'identomat', 'status', 'result-approved.json'), 'utf8')) as Record<string, unknown>;
  const result = status ?? (callback.type === 'session-change' && typeof callback.result === 'string' && callback.result !== '' ? callback.result : 'in_progress');
  return { [ANSWER_SUBJECT]: callback.sessionId, ...example, result: result.toLowerCase() };
}

// --- hostile-input suite (test/fuzz) ---

/** Results as Identomat may spell them: each one repeats, some in other cases, one unlisted. */
const RESULTS = ['APPROVED', 'REJECTED', 'MANUAL_CHECK', 'ADDITIONAL_INFORMATION_REQUESTED', 'approved', 'Rejected', 'NOT_A_LISTED_RESULT'];
/** Type values that are Object.prototype members: they must stay the strings they are. */
const PROTOTYPE_NAMES = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', 'toJSON', 'isPrototypeOf'];
const INSTRUCTIONS = ['one-time-password', 'one-time-password-request', 'email-one-time-password-request', 'share-session-link-via-sms', 'share-session-link-via-email'];

/**
 * One Identomat callback (without its key) about a session drawn from `sessionId`: a session-change
 * with a result that repeats, a video update of a room with several files, an OTP or link
 * instruction to one of several destinations, or a type named like an Object.prototype member.
 * Drawing from a few sessions makes a run a set of interleaved sequences.
 */
export function identomatCallbackJson(fc: typeof FastCheck.default, sessionId: FastCheck.Arbitrary<string>): FastCheck.Arbitrary<{ json: Json; kind: string }> {
  const sessionChange = fc.record({ sessionId, result: fc.constantFrom(...RESULTS), kyb: fc.boolean() }).map(({ sessionId: id, result, kyb }) => ({
    json: { type: 'session-change', sessionId: id, result, ...(kyb ? { sessionType: 'KYB' } : {}) },
    kind: 'session-change',
  }));
  const video = fc
    .record({
      sessionId,
      roomId: fc.constantFrom('room-1', 'room-2'),
      roomStatus: fc.constantFrom('ended', 'empty', null),
      compositionStatus: fc.constantFrom('available', null),
      videoFileStatus: fc.constantFrom('available', null),
      videoFileId: fc.constantFrom('vf-1', 'vf-2', 'vf-3', null),
    })
    .map((json) => ({ json: { type: 'video-call-status-update', ...json }, kind: 'video' }));
  const instruction = fc
    .record({
      sessionId,
      type: fc.constantFrom(...INSTRUCTIONS),
      phoneNumber: fc.constantFrom('+995512345678', '+995599000111'),
      email: fc.constantFrom('a@example.com', 'b@example.com'),
      text: fc.constantFrom('Your code is 6867', 'Your code is 1234'),
      link: fc.constantFrom(undefined, 'https://widget.identomat.com/?session_token=fuzz'),
    })
    // Each to the destination its channel needs (one without is quarantined, not an instruction).
    .map(({ sessionId: id, type, phoneNumber, email, text: message, link }) => ({
      json: { type, sessionId: id, text: message, ...(type.includes('email') ? { email } : { phoneNumber }), ...(link ? { sessionLink: link } : {}) },
      kind: 'instruction',
    }));
  const prototypeNamed = fc.record({ sessionId, type: fc.constantFrom(...PROTOTYPE_NAMES) }).map(({ sessionId: id, type }) => ({ json: { type, sessionId: id }, kind: 'prototype-type' }));
  return fc.oneof({ arbitrary: sessionChange, weight: 4 }, { arbitrary: video, weight: 2 }, { arbitrary: instruction, weight: 2 }, { arbitrary: prototypeNamed, weight: 1 });
}

/** Besides fresh sessions, callbacks about a few shared ones, so the worker sees them move. */
function sessionTraffic({ fc }: FuzzTools): FastCheck.Arbitrary<FuzzContent> {
  return identomatCallbackJson(fc, fc.constantFrom('fuzz-session-a', 'fuzz-session-b', 'fuzz-session-c')).map(({ json, kind }) => ({
    body: Buffer.from(JSON.stringify(json)),
    query: '',
    intent: 'valid' as const,
    variant: `session-sequence:${kind}`,
  }));
}

/**
 * The key put in the body as Identomat does. `asSent` re-serialises the JSON, which JSON.stringify
 * cannot do for nesting this deep: then the key takes the place of the key member the body already
 * names (a sample's own), or is added as the object's last member, as a sender's own code would.
 * Never a second key member: a body naming one twice is kept, not read. Content that is not a JSON
 * object cannot carry the key: it is not authentic, whoever sent it.
 */
function dressWithKey(content: FuzzContent, secret: Record<string, unknown>): { headers: Record<string, string>; body: Buffer; authentic: boolean } {
  let sent: { headers: Record<string, string>; body: Buffer };
  try {
    sent = identomat.asSent!(content.body, secret as { callbackApiKey: string });
  } catch {
    const body = content.body.toString('utf8');
    const close = body.lastIndexOf('}');
    const empty = /^\s*\{\s*$/.test(body.slice(0, close));
    const key = JSON.stringify(secret[KEY]);
    const named = /"callbackApiKey"\s*:\s*"(?:[^"\\]|\\.)*"/;
    const spliced = !body.trimStart().startsWith('{') || close <= 0
      ? content.body
      : named.test(body)
        ? Buffer.from(body.replace(named, () => `"${KEY}":${key}`))
        : Buffer.from(`${body.slice(0, close)}${empty ? '' : ','}"${KEY}":${key}${body.slice(close)}`);
    sent = { headers: { 'content-type': 'application/json' }, body: spliced };
  }
  return { ...sent, authentic: !sent.body.equals(content.body) };
}

/**
 * Forgeries of the key in the body: left out, misspelled, not a string, in an array, nested, in
 * the query or a header, duplicated (the last one wins: the right one last is authentic, and
 * quarantined as any body naming a member twice), spelled with JSON escapes.
 */
function keyForgeries({ fc, wrongSpellings }: FuzzTools, secret: Record<string, unknown>): FastCheck.Arbitrary<Forgery>[] {
  const key = String(secret[KEY]);
  type Attack =
    | { readonly kind: 'missing' | 'key-as-array' | 'key-nested' | 'key-in-query' | 'key-in-header' | 'right-then-wrong' | 'wrong-then-right' | 'escaped-right-key' }
    | { readonly kind: 'wrong-key'; readonly spelling: { readonly value: string; readonly how: string } }
    | { readonly kind: 'key-not-a-string'; readonly value: unknown };
  const forge =
    (a: Attack): Forgery =>
    (request, content) => {
      let json: Json | undefined;
      try {
        const parsed = JSON.parse(content.body.toString('utf8')) as unknown;
        json = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Json) : undefined;
      } catch {
        json = undefined;
      }
      const withoutKey = json ? Object.fromEntries(Object.entries(json).filter(([k]) => k !== KEY)) : undefined;
      let inner: string | undefined;
      try {
        inner = withoutKey ? JSON.stringify(withoutKey).slice(1, -1) : undefined;
      } catch {
        // Nested deeper than JSON.stringify goes: forge around an empty object instead.
        inner = undefined;
      }
      const object = (prefix: string) => Buffer.from(`{${prefix}${inner ? `,${inner}` : ''}}`);
      let body = content.body;
      let query = request.query;
      const headers = { ...request.headers };
      let authentic = false;
      let variant: string = a.kind;
      switch (a.kind) {
        case 'missing':
          body = inner !== undefined ? Buffer.from(`{${inner}}`) : content.body;
          break;
        case 'wrong-key':
          body = object(`"${KEY}":${JSON.stringify(a.spelling.value)}`);
          variant = `wrong-key:${a.spelling.how}`;
          authentic = a.spelling.value === key;
          break;
        case 'key-not-a-string':
          body = object(`"${KEY}":${JSON.stringify(a.value)}`);
          break;
        case 'key-as-array':
          body = object(`"${KEY}":${JSON.stringify([key])}`);
          break;
        case 'key-nested':
          body = object(`"data":{"${KEY}":${JSON.stringify(key)}}`);
          break;
        case 'key-in-query':
          body = inner !== undefined ? Buffer.from(`{${inner}}`) : content.body;
          query = `${KEY}=${encodeURIComponent(key)}`;
          break;
        case 'key-in-header':
          body = inner !== undefined ? Buffer.from(`{${inner}}`) : content.body;
          headers['x-callback-api-key'] = key;
          break;
        case 'right-then-wrong':
          // JSON.parse keeps the last duplicate: this one carries the wrong key.
          body = Buffer.from(`{"${KEY}":${JSON.stringify(key)}${inner ? `,${inner}` : ''},"${KEY}":"${key}x"}`);
          break;
        case 'wrong-then-right':
          body = Buffer.from(`{"${KEY}":"${key}x"${inner ? `,${inner}` : ''},"${KEY}":${JSON.stringify(key)}}`);
          authentic = true;
          break;
        case 'escaped-right-key':
          // The right key spelled with JSON escapes: the same key once parsed (and it must not
          // survive in the queued raw body in this spelling either).
          body = object(`"${KEY}":"${[...key].map((ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"`);
          authentic = true;
          break;
      }
      // A body forged around no content (not a JSON object, or too deep to copy) carries only the key;
      // one naming the key twice is kept, not read (which of the two is meant is not said).
      const carriesContent = (inner !== undefined || body === content.body) && a.kind !== 'wrong-then-right';
      return { dressed: { ...request, body, query, headers, authentic, variant }, content: carriesContent ? content : { ...content, intent: 'invalid' } };
    };
  return [
    fc.constant(forge({ kind: 'missing' })),
    wrongSpellings(key).map((spelling) => forge({ kind: 'wrong-key', spelling })),
    fc.constantFrom(null, 0, 1, true, [], {}).map((value) => forge({ kind: 'key-not-a-string', value })),
    fc.constant(forge({ kind: 'key-as-array' })),
    fc.constant(forge({ kind: 'key-nested' })),
    fc.constant(forge({ kind: 'key-in-query' })),
    fc.constant(forge({ kind: 'key-in-header' })),
    fc.constant(forge({ kind: 'right-then-wrong' })),
    fc.constant(forge({ kind: 'wrong-then-right' })),
    fc.constant(forge({ kind: 'escaped-right-key' })),
  ];
}

/** Requests the fuzzer found mishandled: an unchecked field `describe` reads. */
const REGRESSIONS: readonly FuzzRegression[] = [
  {
    what: 'sessionLink holding {"toString":1} (String() throws on it)',
    layer: 'describe',
    content: () => ({ body: sampleBody('identomat', 'one-time-password', { sessionId: 'otp-tostring', sessionLink: undefined }, '"sessionLink":{"toString":1}') }),
    expect: 'stored',
  },
];

/** Identomat: the `callbackApiKey` carried in the JSON body; with `companyKey`, sessions confirmed by result/. */
export const identomatKit: ProviderKit = {
  provider: identomat,
  route: 'POST /callbacks/identomat',
  secret: (tag, options = {}) => ({
    [KEY]: `${tag}-identomat-key-Jf5n0c`,
    companyKey: `${tag}-identomat-company-key-Rk2p`,
    hmacKey: `${tag}-identomat-hmac-secret-Zq8d`,
    // Nowhere real unless a suite runs a stand-in result/ endpoint.
    baseUrl: options.statusEndpoint ?? 'https://identomat.invalid',
  }),
  credentials: fieldValues([KEY, 'companyKey', 'hmacKey']),
  ...flatCredentials([KEY]),
  requiredFields: ['type', 'sessionId'],
  sample: 'session-change-approved',
  otherStatus: (content) => editJson(content, (json) => void (json.result = 'REJECTED')),
  withSubject: (sample, subjectId) => ({ ...sample, body: withJsonField(sample.body!, 'sessionId', subjectId) }),
  withoutCredential(request) {
    const json = JSON.parse(request.body.toString('utf8')) as Record<string, unknown>;
    delete json[KEY];
    return { ...request, body: Buffer.from(JSON.stringify(json)) };
  },
  tampered(request) {
    const json = JSON.parse(request.body.toString('utf8')) as Record<string, string>;
    json[KEY] = altered(json[KEY]);
    return { ...request, body: Buffer.from(JSON.stringify(json)) };
  },
  statusSimulation: identomatStatusSimulation,
  statusAnswer: identomatStatusAnswer,
  // As `lookup` reads a result/ answer (functions/providers/identomat.ts).
  answerAsPayload: (answer) => {
    const { [ANSWER_SUBJECT]: sessionId, result } = answer as Record<string, unknown>;
    return { type: 'session-change', sessionId, result };
  },
  pendingStatus: 'in_progress',

  // --- hostile-input suite (test/fuzz) ---
  fuzz: {
    content: {
      kind: 'json',
      subject: { path: ['sessionId'], max: 128 },
      fields: [
        { path: ['type'], kind: 'string', min: 1, max: 64 },
        { path: ['sessionId'], kind: 'string', min: 1, max: 128 },
        { path: ['result'], kind: 'nullishString', max: 64 },
        { path: ['roomStatus'], kind: 'nullishString', max: 64 },
        { path: ['videoFileStatus'], kind: 'nullishString', max: 64 },
        { path: ['sessionType'], kind: 'nullishString', max: 64 },
        { path: ['text'], kind: 'nullishString' },
      ],
      // Parts of video and instruction event keys, read whatever their type.
      looseUsed: [['sessionLink'], ['phoneNumber'], ['email'], ['roomId'], ['compositionStatus'], ['videoFileId']],
      // An instruction's destination must be text (1 to 2,048 characters), or it is quarantined.
      looseRefused(json, path, value) {
        const type = typeof json.type === 'string' ? json.type : '';
        if (!INSTRUCTIONS.includes(type) || path.length !== 1 || path[0] !== (type.includes('email') ? 'email' : 'phoneNumber')) return undefined;
        return typeof value === 'string' && value.length > 0 && value.length <= INSTRUCTION_LIMITS.field ? undefined : 'invalid';
      },
      more: (tools) => ({ valid: (samples) => tools.fc.oneof(samples, sessionTraffic(tools)) }),
    },
    authenticatesBody: true,
    dress: dressWithKey,
    forgeries: (tools, { secret }) => keyForgeries(tools, secret),
    regressions: REGRESSIONS,
  },

  // --- fault suite (test/faults) ---
  life(name) {
    // One session-change per life: the latest report received is the session's status, so two
    // changes would make the final state depend on arrival order, which shuffled concurrent
    // traffic cannot promise (moves back are tested in test/integration/worker.test.ts). The
    // video update and the OTP instruction are stored and counted but place no status.
    const sessionId = hexOf(`identomat/${name}`, 40);
    return [
      { type: 'video-call-status-update', sessionId, roomId: 'room-faults', roomStatus: 'ended', compositionStatus: 'available', videoFileStatus: 'available', videoFileId: `vf-${hexOf(`identomat/${name}/file`, 8)}` },
      { type: 'one-time-password', sessionId, text: `Your code is ${Number.parseInt(hexOf(`identomat/${name}/code`, 4), 16) % 10_000}`, phoneNumber: '+995512345678' },
      { type: 'session-change', sessionId, result: lifeDice(name).succeeds ? 'APPROVED' : 'REJECTED' },
    ].map(jsonContent);
  },
  // A session-change reports the current status and carries no time of its own.
  sendsStatusTime: false,

  // --- benchmark (bench/) ---
};
