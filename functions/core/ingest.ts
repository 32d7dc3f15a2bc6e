import { maskSubjectId, type AnyProvider, type CallbackRequest, type EventFacts } from '../providers/provider.ts';
import { ConfigurationError, errorMessage } from '../shared/errors.ts';
import { jsonTextAnyDepth } from '../shared/canonical-json.ts';
import { unstorableKeyReason } from './events.ts';
import type { Logger } from '../shared/log.ts';
import { maskPhoneNumbers } from '../shared/log.ts';
import { MAX_BODY_BYTES } from './pipeline-definition.ts';
import { KEPT_HEADERS, queueText, withBase64Body, type QueueMessage } from './queue-message.ts';
import type { SecretCache } from './secrets.ts';

/** What ingest answers: a status code and a JSON body. */
export interface IngestResponse {
  readonly statusCode: number;
  readonly body: Record<string, unknown>;
}

export interface IngestDependencies {
  readonly secrets: SecretCache;
  /** Resolves once the queue has durably accepted the message body (a QueueMessage as JSON); throws otherwise. */
  readonly send: (messageBody: string) => Promise<void>;
  readonly log: Logger;
  /**
   * Largest body (or query string) accepted; larger ones get 413. The stack sets it per function.
   * @default MAX_BODY_BYTES
   */
  readonly maxBodyBytes?: number;
}

/**
 * Largest message we hand to SQS. Bodies up to MAX_BODY_BYTES plus their parsed copy can exceed
 * it; the parsed copy is then left out and the worker re-parses the raw body.
 */
export const MAX_MESSAGE_BYTES = 900 * 1024;

const ACCEPTED = { received: true } as const;

/**
 * What API Gateway answers a request that matches no route: the stack gives each provider one
 * route with one method, so a wrong method never reaches a function on AWS. The core answers the
 * same, so the local runtime and the tests see what a provider would.
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html
 */
export const UNDEFINED_ROUTE_ANSWER: IngestResponse = { statusCode: 404, body: { message: 'Not Found' } };

/** The one message every 401 carries. */
export const UNAUTHORIZED_MESSAGE = 'the request could not be authenticated';


/**
 * The message as SQS will take it: at most MAX_MESSAGE_BYTES and only characters SQS accepts, so
 * that no callback is refused (and retried forever) for its content. Tried in order: the whole
 * message; without the parsed copy (the worker re-parses the raw body; JSON.stringify also fails
 * on payloads nested thousands deep); with the raw body in base64 (text JSON escapes six-fold,
 * such as NUL runs, is larger than its base64).
 */
function serializeForQueue(message: QueueMessage): string {
  const withoutPayload = (): QueueMessage => {
    const { payload: _omitted, ...rest } = message;
    return rest;
  };
  // Built only when the one before does not fit: almost every callback takes the first.
  const candidates = [() => message, withoutPayload, () => withBase64Body(withoutPayload())];
  let text = '';
  for (const candidate of candidates) {
    try {
      // Escaped before it is measured (JSON.parse restores them): each U+FFFE/U+FFFF grows from 3 bytes to 6.
      text = queueText(candidate());
    } catch {
      continue;
    }
    if (Buffer.byteLength(text) <= MAX_MESSAGE_BYTES) break;
  }
  return text;
}

function refuse(statusCode: number, error: string, message: string): IngestResponse {
  return { statusCode, body: { error, message } };
}

const JSON_SHORT_ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '/': '\\/', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/**
 * A secret as a JSON string or a URL may spell it: each character literally, JSON-escaped (`\/`,
 * `\u0041`), or as the %XX escapes of its UTF-8 bytes, once or twice encoded (`%41`, `%2541`; the %
 * JSON-escaped too, `\u002541`), hex digits in either case. A JSON escape may sit in JSON written
 * inside a JSON string, its backslash escaped again, at any depth. JSON encoders
 * differ (PHP escapes `/` by default), a text may hold JSON, a link in a text or a header holds its
 * query encoded, and the key must not survive in any spelling.
 */
function spellingsOf(secret: string): RegExp {
  let spellings = spellingsBySecret.get(secret);
  if (!spellings) {
    if (spellingsBySecret.size >= 16) spellingsBySecret.clear();
    spellings = buildSpellings(secret);
    spellingsBySecret.set(secret, spellings);
  }
  return spellings;
}

/** Built once per secret (the same few on every request); a global RegExp in String#replace keeps no state. */
const spellingsBySecret = new Map<string, RegExp>();

/** Hex digits as a pattern that takes either case. */
const anyCaseHex = (hex: string) => [...hex].map((digit) => `[${digit}${digit.toUpperCase()}]`).join('');

/**
 * The backslash of a JSON escape, however many times JSON written inside a JSON string escaped it
 * again (one, or more: `\/`, `\\/`, `\\\/`, `\\u0041`). Where the secret starts, not after a
 * backslash: a run of backslashes is then entered once, at its start, and a body of backslashes
 * costs a linear scan, not one per position.
 */
const escapeBackslashes = (first: boolean) => `${first ? '(?<!\\\\)' : ''}\\\\+`;

function buildSpellings(secret: string): RegExp {
  let pattern = '';
  for (let i = 0; i < secret.length; i += 1) {
    const char = secret[i];
    const code = secret.charCodeAt(i);
    // Each JSON escape without its backslash: `u0041`, and the short one (`/` of `\/`) if any.
    const escapes = [`u${anyCaseHex(code.toString(16).padStart(4, '0'))}`];
    if (JSON_SHORT_ESCAPES[char]) escapes.push(escapeRegExp(JSON_SHORT_ESCAPES[char].slice(1)));
    const spellings = [escapeRegExp(char), `${escapeBackslashes(i === 0)}(?:${escapes.join('|')})`];
    // Half of a surrogate pair has no UTF-8 bytes of its own: spelled literally or JSON-escaped only.
    if (code < 0xd800 || code > 0xdfff) {
      spellings.push(
        [...Buffer.from(char)].map((byte, at) => `(?:%|%25|${escapeBackslashes(i === 0 && at === 0)}u0025)${anyCaseHex(byte.toString(16).padStart(2, '0'))}`).join(''),
      );
    }
    pattern += `(?:${spellings.join('|')})`;
  }
  return new RegExp(pattern, 'g');
}

/** Strict UTF-8 that keeps a leading byte-order mark: the text must re-encode to the exact bytes received. */
const EXACT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The shortest body secret looked for outside its member (the README asks for 32 random characters). */
const MIN_HUNTED_SECRET_LENGTH = 12;

const REDACTED = '[REDACTED]';

/**
 * A JSON string literal, quotes included, then what makes it a member's name (white space and `:`)
 * if it is one. Names are matched too, never skipped: a scan that skipped one would start again
 * at its closing quote, and read the text between two strings as a string.
 */
const JSON_STRING = /("(?:[^"\\]|\\.)*")([ \t\n\r]*:)?/g;

/** The text a JSON string literal spells, or undefined when it spells none. */
function stringOf(literal: string): string | undefined {
  try {
    return JSON.parse(literal) as string;
  } catch {
    return undefined;
  }
}

/**
 * Text when the bytes are valid UTF-8, otherwise base64: the message keeps the exact bytes either
 * way, but for the secrets. A secret long enough to be hunted is replaced in every spelling,
 * wherever it is (a copy outside its member also quarantines the callback: `secretOutside`). A
 * shorter one would match ordinary text (a key "identomat" in every link to widget.identomat.com,
 * a few characters of a session id; Identomat's own sample key is nine characters): replaced only
 * where a JSON string spells it whole, as its member's value does. Replaced everywhere, the body
 * read again (by `reprocess`, or by the worker when the message had no room for the parsed copy)
 * named another session, or sent a link that leads nowhere.
 */
function rawBody(body: Buffer, scrub: readonly string[], query: string): QueueMessage['raw'] {
  if (body.length === 0) return { query };
  let text: string;
  try {
    text = EXACT_UTF8.decode(body);
  } catch {
    return { bodyBase64: body.toString('base64'), query };
  }
  const short: string[] = [];
  for (const secret of scrub) {
    if (secret.length >= MIN_HUNTED_SECRET_LENGTH) text = text.replace(spellingsOf(secret), REDACTED);
    else if (secret) short.push(secret);
  }
  if (short.length > 0) {
    text = text.replace(JSON_STRING, (match, literal: string, name: string | undefined) => (name === undefined && short.includes(stringOf(literal) ?? '') ? `"${REDACTED}"` : match));
  }
  return { body: text, query };
}

/** Whether text spells one of the secrets, literally or in escapes (`spellingsOf`). */
const spellsSecret = (text: string, secrets: readonly string[]) => secrets.some((secret) => secret !== '' && text.search(spellingsOf(secret)) !== -1);

/**
 * The query string with its %XX escapes decoded and form encoding's `+` read as a space. Each run of
 * escapes is decoded on its own: one `%` that is no escape (`discount=100%`) must not leave a key
 * spelled in escapes elsewhere undecoded. A run that is not UTF-8 has its ASCII escapes decoded.
 */
function decodedQuery(query: string): string {
  return query.replaceAll('+', ' ').replace(/(?:%[0-9A-Fa-f]{2})+/g, (escapes) => {
    try {
      return decodeURIComponent(escapes);
    } catch {
      return escapes.replace(/%[0-7][0-9A-Fa-f]/g, (escape) => String.fromCharCode(parseInt(escape.slice(1), 16)));
    }
  });
}

/** Where, outside the member it is checked in, a request can carry a body secret. */
type SecretPlace = 'the body' | 'the query string' | 'a header';

/**
 * Every place a request carries one of the provider's body secrets outside the member it is checked
 * in: the parsed payload (which no longer holds that member), the query string, or a header the
 * message keeps. Each is looked at, not only the first: a copy left in another would be queued and
 * stored with the quarantined callback. Empty when nowhere.
 */
function secretOutside(payload: unknown, query: string, headers: Readonly<Record<string, string>>, allSecrets: readonly string[]): SecretPlace[] {
  // A short key would match ordinary text (a key "identomat" and every link to widget.identomat.com):
  // only keys long enough to be secrets are hunted down; the raw body is scrubbed of any.
  const secrets = allSecrets.filter((secret) => secret.length >= MIN_HUNTED_SECRET_LENGTH);
  if (secrets.length === 0) return [];
  const places: SecretPlace[] = [];
  if (payload !== undefined && spellsSecret(jsonTextAnyDepth(payload) ?? '', secrets)) places.push('the body');
  if (spellsSecret(query, secrets) || spellsSecret(decodedQuery(query), secrets)) places.push('the query string');
  if (Object.values(headers).some((value) => spellsSecret(value, secrets))) places.push('a header');
  return places;
}

/** The kept headers with a value that spells a secret replaced. */
function scrubbedHeaders(headers: Readonly<Record<string, string>>, secrets: readonly string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, spellsSecret(value, secrets) ? REDACTED : value]));
}

/**
 * The headers the message keeps, whole: they are looked through for a secret as they came, and
 * bounded only then (`bounded`). Cut first, a key where the bound falls inside it was no longer
 * found, and all of it but its last characters was queued.
 */
function keptHeaders(provider: AnyProvider, request: CallbackRequest): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of provider.keptHeaders ? [...KEPT_HEADERS, ...provider.keptHeaders] : KEPT_HEADERS) {
    const value = request.headers[name];
    if (value !== undefined) headers[name] = value;
  }
  return headers;
}

/** Longest header value a message keeps. */
const MAX_KEPT_HEADER = 256;

/** Each kept header cut to MAX_KEPT_HEADER characters. */
function bounded(headers: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, value.slice(0, MAX_KEPT_HEADER)]));
}

/** The path parameters worth keeping: every one but a secret token, bounded. */
function keptPathParameters(provider: AnyProvider, request: CallbackRequest): Record<string, string> | undefined {
  if (!request.pathParameters) return undefined;
  const kept = Object.entries(request.pathParameters).filter(([name]) => name !== provider.route.tokenParameter);
  return kept.length ? Object.fromEntries(kept.map(([name, value]) => [name, value.slice(0, 256)])) : undefined;
}

/**
 * Authenticate, validate and queue one callback. Answers 200 only once the queue accepted it;
 * authentic-but-invalid callbacks are queued as quarantined. Never throws.
 */
export async function ingest(provider: AnyProvider, request: CallbackRequest, deps: IngestDependencies): Promise<IngestResponse> {
  const started = performance.now();
  /**
   * Answer, and log the answer. An accepted callback is a DEBUG line, its fields given as a function:
   * its access log line (the 200) and the worker's "stored" line already say it arrived and what it
   * said, so at the default level (INFO) the line, its masking included, is neither built nor paid
   * for. Refusals, faults and quarantines are written as before.
   */
  const finish = (response: IngestResponse, fields: Record<string, unknown> | (() => Record<string, unknown>) = {}) => {
    const level = response.statusCode >= 500 ? 'error' : response.statusCode >= 400 ? 'warn' : typeof fields === 'function' ? 'debug' : 'info';
    const durationMs = Math.round((performance.now() - started) * 100) / 100;
    // Object.assign rather than spreads: on this path, a spread after other properties took V8's
    // slow path (~3 us per callback, a tenth of the ingest's CPU).
    deps.log[level]('callback', () =>
      Object.assign({ provider: provider.id, requestId: request.requestId, statusCode: response.statusCode }, typeof fields === 'function' ? fields() : fields, { durationMs }),
    );
    return response;
  };

  if (request.method !== provider.route.method) {
    return finish(UNDEFINED_ROUTE_ANSWER, { result: 'rejected', reason: `no ${request.method} route: ${provider.displayName} callbacks use ${provider.route.method}` });
  }
  const maxBodyBytes = deps.maxBodyBytes ?? MAX_BODY_BYTES;
  if (request.body.length > maxBodyBytes || Buffer.byteLength(request.rawQuery) > maxBodyBytes) {
    return finish(refuse(413, 'payload_too_large', `callbacks are limited to ${maxBodyBytes} bytes`), { result: 'rejected' });
  }

  let secret: unknown;
  try {
    secret = await deps.secrets.get(provider);
  } catch (error) {
    // Fail closed: without the secret nothing can be authenticated, and the provider must retry.
    const configuration = error instanceof ConfigurationError;
    return finish(
      refuse(503, configuration ? 'secret_invalid' : 'secret_unavailable', 'the receiver cannot check callbacks right now; retry later'),
      { result: 'failed', reason: errorMessage(error) },
    );
  }

  const auth = provider.authenticate(request, secret);
  if (!auth.ok) {
    // The answer says only that authentication failed: which part was right (a customer id, a
    // token from outside the allow-list) would help a prober. The reason is in the log line.
    return finish(refuse(401, 'unauthorized', UNAUTHORIZED_MESSAGE), { result: 'rejected', reason: auth.reason });
  }

  const parsed = provider.parse(request);
  const bodySecrets = provider.bodySecrets?.(secret) ?? [];
  const headers = keptHeaders(provider, request);
  // `parse` drops the member the secret is checked in, and the raw body is scrubbed below; a copy
  // anywhere else (nested, in an SMS text, the query string, a kept header) would be queued, stored
  // and published as it is.
  const exposed = secretOutside(parsed.ok ? parsed.payload : undefined, request.rawQuery, headers, bodySecrets);
  // What the callback says, read now so that one the worker could not store as it is (a key with
  // a lone surrogate, over DynamoDB's key limits) is answered and kept as quarantined, not as taken.
  let facts: EventFacts | undefined;
  let quarantine = parsed.ok ? undefined : { reason: parsed.reason, issues: [...parsed.issues] };
  if (exposed.length > 0) {
    quarantine = { reason: `${exposed.join(' and ')} ${exposed.length > 1 ? 'hold' : 'holds'} the secret outside the member it is checked in`, issues: [] };
  } else if (parsed.ok) {
    try {
      facts = provider.describe(parsed.payload, secret);
      const reason = unstorableKeyReason(facts);
      if (reason) quarantine = { reason, issues: [] };
    } catch (error) {
      quarantine = { reason: `cannot read the status: ${errorMessage(error)}`, issues: [] };
    }
  }
  const message: QueueMessage = {
    v: 1,
    provider: provider.id,
    receivedAt: request.receivedAt,
    requestId: request.requestId,
    sourceIp: request.sourceIp,
    method: request.method,
    headers: bounded(exposed.includes('a header') ? scrubbedHeaders(headers, bodySecrets) : headers),
    raw: rawBody(request.body, bodySecrets, exposed.includes('the query string') ? REDACTED : request.rawQuery),
  };
  const pathParameters = keptPathParameters(provider, request);
  if (pathParameters) message.pathParameters = pathParameters;
  if (quarantine) message.quarantine = quarantine;
  else if (parsed.ok) message.payload = parsed.payload;
  const serialized = serializeForQueue(message);

  try {
    await deps.send(serialized);
  } catch (error) {
    return finish(refuse(503, 'queue_unavailable', 'the callback could not be queued; retry later'), {
      result: 'failed',
      reason: errorMessage(error),
    });
  }

  if (quarantine || !facts) {
    return finish(
      { statusCode: 200, body: { ...ACCEPTED, quarantined: true } },
      { result: 'quarantined', reason: quarantine?.reason, issues: quarantine?.issues.slice(0, 5) ?? [] },
    );
  }
  // A status is the provider's text (a Standard Webhooks `type` is whatever the sender names it): masked as a subject is.
  return finish({ statusCode: 200, body: ACCEPTED }, () => ({
    result: 'accepted',
    subjectId: maskSubjectId(facts.subjectId, provider),
    status: maskPhoneNumbers(facts.status),
    part: maskPhoneNumbers(facts.part),
  }));
}
