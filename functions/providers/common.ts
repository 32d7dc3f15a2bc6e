import * as z from '../shared/zod.ts';
import { secureEqualsAny } from '../shared/secure-compare.ts';
import { shortHash } from '../shared/hash.ts';
import { ConfigurationError, DependencyError } from '../shared/errors.ts';
import { maskPhoneNumbers } from '../shared/log.ts';
import { retryAfterSeconds } from '../shared/retry-after.ts';
import type { AuthResult, CallbackRequest, ParseFailure, ParseResult } from './provider.ts';

/** A secret field that must hold a real value, not the stack's placeholder. */
export const configuredString = z.string().check(
  z.minLength(1),
  z.refine((value) => !value.startsWith('REPLACE_ME'), 'still holds the placeholder; fill in the real value'),
);

/** Authenticate a `{token}` path segment in constant time against the accepted tokens. */
export function authenticatePathToken(request: CallbackRequest, tokens: readonly string[]): AuthResult {
  if (!request.pathToken) return { ok: false, reason: 'missing path token' };
  return secureEqualsAny(request.pathToken, tokens) ? { ok: true } : { ok: false, reason: 'wrong path token' };
}

/** Readable one-line descriptions of zod issues (path: message). */
export function describeIssues(error: z.core.$ZodError): string[] {
  return error.issues.slice(0, 20).map((issue) => {
    // A record's key that fails its schema is text the sender wrote, not a name the schema gives:
    // in a secret it can be the secret itself (a whsec_ value written where a source's name goes).
    // Its problem is said, the key is not.
    if (issue.code === 'invalid_key') {
      const parent = issue.path.slice(0, -1);
      return `${parent.length ? parent.join('.') : '(root)'}: a key that is not valid (${issue.issues.map((each) => each.message).join('; ')})`;
    }
    const path = issue.path.length ? issue.path.join('.') : '(root)';
    return `${path}: ${issue.message}`;
  });
}

/** A failed validation as a ParseResult whose reason names the first problem. */
export function schemaMismatch(error: z.core.$ZodError): { ok: false; reason: string; issues: string[] } {
  const issues = describeIssues(error);
  return { ok: false, reason: `payload does not match the schema (${issues[0] ?? 'invalid'})`, issues };
}

/**
 * The issues a failure says besides its reason: schemaMismatch's reason ends with its first issue in
 * parentheses, which is left out. Only that one: an issue's text can lie inside another's
 * (`updated_on: …` inside `status.updated_on: …`) and still be an issue of its own.
 */
export function issuesBeyondReason(reason: string, issues: readonly string[]): string[] {
  return issues.filter((issue, at) => !(at === 0 && reason.endsWith(`(${issue})`)));
}

/** UTF-8 as the providers' JSON must be: a byte sequence that is not is refused, not replaced. */
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Decode the body as strict UTF-8 and parse it as JSON, or say why not. */
export function parseJsonBody(body: Buffer): { ok: true; value: unknown } | { ok: false; reason: string } {
  const json = decodeJson(body);
  return json.ok ? { ok: true, value: json.value } : json;
}

function decodeJson(body: Buffer): { ok: true; text: string; value: unknown } | { ok: false; reason: string } {
  if (body.length === 0) return { ok: false, reason: 'empty body' };
  let text: string;
  try {
    text = STRICT_UTF8.decode(body);
  } catch {
    return { ok: false, reason: 'body is not valid UTF-8' };
  }
  try {
    return { ok: true, text, value: JSON.parse(text) };
  } catch {
    return { ok: false, reason: 'body is not valid JSON' };
  }
}

/**
 * The first member name an object of this JSON text gives more than once (at any depth), or
 * undefined. JSON.parse keeps the last value silently: `{"status":"FAILED","status":"COMPLETED"}`
 * would read as COMPLETED, though which value the sender meant is not said. No provider documents
 * such a body (RFC 8259 §4: names "SHOULD be unique"; with duplicates "the behavior of software …
 * is unpredictable"), so it is quarantined as eSMS's repeated query parameters are, never read.
 * `text` must be valid JSON (it was parsed): one pass, strings skipped whole, names compared as
 * decoded (`"a"` and `"\u0061"` are one name).
 */
export function repeatedMember(text: string): string | undefined {
  // Per open object its names so far (none: null, one: the name, more: a set), per array undefined.
  const open: (Set<string> | string | null | undefined)[] = [];
  let nameNext = false;
  for (let at = 0; at < text.length; at++) {
    const code = text.charCodeAt(at);
    if (code === 0x22) {
      let end = at + 1;
      let escaped = false;
      for (let c = text.charCodeAt(end); c !== 0x22; c = text.charCodeAt(end)) {
        if (c === 0x5c) {
          escaped = true;
          end += 2;
        } else {
          end += 1;
        }
      }
      const names = open.at(-1);
      if (nameNext && names !== undefined) {
        const name = escaped ? (JSON.parse(text.slice(at, end + 1)) as string) : text.slice(at + 1, end);
        if (names === null) open[open.length - 1] = name;
        else if (typeof names === 'string') {
          if (names === name) return name;
          open[open.length - 1] = new Set([names, name]);
        } else {
          if (names.has(name)) return name;
          names.add(name);
        }
        nameNext = false;
      }
      at = end;
    } else if (code === 0x7b) {
      open.push(null);
      nameNext = true;
    } else if (code === 0x5b) {
      open.push(undefined);
    } else if (code === 0x7d || code === 0x5d) {
      open.pop();
    } else if (code === 0x2c) {
      nameNext = open.at(-1) !== undefined;
    }
  }
  return undefined;
}

/**
 * A dependency's answer (a status endpoint's, a token endpoint's) as JSON: its value, or undefined
 * when it is not JSON (a Buffer must also be UTF-8). It is read as a callback is: one that names a
 * member twice in an object (`{"result":"REJECTED","result":"APPROVED"}`), or holds a number JSON
 * reads as another than written (misreadNumber: `"response_code":1e-400` is 0), does not say
 * which value it means, and is not read: a DependencyError, asked again with back-off, the state
 * meanwhile unconfirmed.
 */
export function answerJson(dependency: string, what: string, answer: string | Buffer): unknown {
  let text: string;
  let value: unknown;
  try {
    text = typeof answer === 'string' ? answer : STRICT_UTF8.decode(answer);
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const unclear = unclearJson(text);
  if (unclear !== undefined) throw new DependencyError(dependency, `${what} answered a body that does not say which value it means: ${unclear.reason}`);
  return value;
}

/** A sender's text as an issue (and so a log line) shows it: phone numbers masked, at most 64 characters. */
function shownSenderText(text: string): string {
  const masked = maskPhoneNumbers(text);
  return masked.length > 64 ? `${masked.slice(0, 64)}…` : masked;
}

/**
 * Why a body (or JSON within it, at `within`) naming a member twice is not read (see repeatedMember).
 * The name is the sender's text, said in the log line too: a map keyed by recipient names phone
 * numbers, masked as a log line masks them.
 */
export function repeatedMemberRefused(name: string, within?: string): ParseFailure {
  return {
    ok: false,
    reason: 'a member is given more than once; which value is true is not said',
    issues: [`${within === undefined ? '' : `${within}: `}${JSON.stringify(shownSenderText(name))}${within === undefined ? ':' : ''} given more than once in one object; kept as received, not read`],
  };
}

/**
 * Why a callback holding a member named `__proto__` is not read: JSON.parse keeps it as an ordinary
 * member (and eSMS's query may name one), but zod's object schemas leave it out of what they
 * return. Read, the callback would be stored without it, and two callbacks that differ only in it
 * would read as one. No provider documents such a member: the callback is quarantined, its bytes
 * kept as they came.
 */
export function protoMemberRefused(): ParseFailure {
  return { ok: false, reason: 'a member named __proto__ cannot be read', issues: ['__proto__: a member no provider sends; kept as received, not read'] };
}

/**
 * Whether a parsed JSON body holds a member named `__proto__` at any depth. The walk (without
 * recursion: a body may nest thousands deep) runs only when the bytes could spell the name: as it
 * is, or with a JSON escape.
 */
export function holdsProtoMember(body: Buffer, value: unknown): boolean {
  if (!body.includes('proto') && !body.includes('\\u')) return false;
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const node = pending.pop();
    if (node === null || typeof node !== 'object') continue;
    if (!Array.isArray(node) && Object.hasOwn(node, '__proto__')) return true;
    for (const child of Object.values(node)) if (child !== null && typeof child === 'object') pending.push(child);
  }
  return false;
}

/** In JSON text, a string (matched whole, so that nothing in it is read as a number) or a number. */
const JSON_STRING_OR_NUMBER = /"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;

/**
 * A JSON number literal's decimal value in one spelling (its significant `digits`, without leading or
 * trailing zeros, then `e` and the power of ten: `200.00` and `2e2` are both `2e2`), with how many
 * significant digits it has; zero is `0`. Also reads what toPrecision() writes (`1.0e+21`).
 */
function decimalValue(literal: string): { readonly value: string; readonly digits: number } | undefined {
  const [, sign, whole, fraction = '', exponent = '0'] = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(literal) ?? [];
  if (whole === undefined) return undefined;
  const digits = `${whole}${fraction}`;
  let first = 0;
  while (first < digits.length && digits.charCodeAt(first) === 0x30) first += 1;
  if (first === digits.length) return { value: '0', digits: 1 };
  // Counted from the end, not with /0+$/: that tries again at every zero and fails at a last digit
  // that is not one, a pass per zero (32 s for a 256 KB body of `200.000…001`, past the ingest's time).
  let end = digits.length;
  while (digits.charCodeAt(end - 1) === 0x30) end -= 1;
  const power = BigInt(exponent) - BigInt(fraction.length) + BigInt(digits.length - end);
  return { value: `${sign}${digits.slice(first, end)}e${power}`, digits: end - first };
}

/**
 * The first number of this JSON text (valid JSON: it was parsed) that JSON.parse reads as another
 * number than the one written, or undefined. A double holds about 17 significant digits and
 * magnitudes up to ~1.8e308: `199.99999999999999` and `200.00000000000001` are read as 200,
 * `1e-400` as 0, `9007199254740993` as …992, `1.000000000000000001` as 1, `1e400` as Infinity
 * (written back as null). Read, such a number is a value the sender did not write: where it is a
 * code it reads as a documented one (TeleSign's status code 200, delivered; REL-ID's response_code
 * 0, an approval), and where the gateway keys a callback by its content (TemboPlus's digest, a
 * TeleSign voice `data`, Identomat's unlisted types) two callbacks that differ only in it read as
 * one, the second taken for a retry: answered 200, never stored. No provider documents such a
 * number.
 * What a serializer writes of a double is never refused, however many digits it uses: a number
 * is read as written when it is the double read, correctly rounded to as many significant digits
 * as it has. So the shortest text (`0.1`, `1.5e300`, what JavaScript and Python write), `%.17g`'s
 * 17 digits (`0.10000000000000001`, the same double), a whole number a double holds exactly (`2^60`
 * written whole), and any spelling of them (`2e2`, `200.000`) pass.
 */
export function misreadNumber(text: string): string | undefined {
  // A double holds any number of 15 significant digits or fewer without an exponent. A body with no
  // longer one, nor one with an exponent, where a value starts (first, or after `:`, `,` or `[`) is
  // passed by one search, no walk (hex ids, `…49E3E…`, would send most bodies to the walk).
  if (!/(?:^|[:,[])\s*-?\d(?:[\d.]{15}|[\d.]*[eE])/.test(text)) return undefined;
  for (const [token] of text.matchAll(JSON_STRING_OR_NUMBER)) {
    if (token.charCodeAt(0) === 0x22 || (token.length <= 15 && !/[eE]/.test(token))) continue;
    const value = Number(token);
    if (!Number.isFinite(value)) return token;
    const written = decimalValue(token)!;
    // toPrecision takes 1 to 100 digits: a number written with more is surely not the double read.
    if (written.digits > 100 || decimalValue(value === 0 ? '0' : value.toPrecision(written.digits))!.value !== written.value) return token;
  }
  return undefined;
}

/**
 * Why a body (or JSON within it, at `within`) holding a number JSON reads as another (misreadNumber)
 * is not read. The number is the sender's text, said in the log line too: masked as a phone number would be.
 */
export function misreadNumberRefused(literal: string, within?: string): ParseFailure {
  return {
    ok: false,
    reason: 'a number is read as another than the one written (a double cannot hold it); which value is meant is not said',
    issues: [`${within === undefined ? '' : `${within}: `}${shownSenderText(literal)}: read as ${shownSenderText(String(Number(literal)))} once parsed; kept as received, not read`],
  };
}

/**
 * Why JSON text (valid: it was parsed) does not say which value it means, as a ParseResult's
 * failure, or undefined: an object names a member twice (repeatedMember), or, unless `numbers` is
 * 'as parsed', a number is read as another than written (misreadNumber). Callbacks, the JSON inside
 * eSMS's `error_info` (`within`), status and token answers and TeleSign's send answer are all read
 * with it.
 */
export function unclearJson(text: string, within?: string, numbers: 'as written' | 'as parsed' = 'as written'): ParseFailure | undefined {
  const repeated = repeatedMember(text);
  if (repeated !== undefined) return repeatedMemberRefused(repeated, within);
  const misread = numbers === 'as written' ? misreadNumber(text) : undefined;
  if (misread !== undefined) return misreadNumberRefused(misread, within);
  return undefined;
}

/**
 * A JSON body as a parse step reads it (authentication reads it with parseJsonBody): valid UTF-8 and
 * JSON, with no member named `__proto__` (protoMemberRefused), no member named twice in one object
 * (repeatedMember) and, unless `numbers` is 'as parsed', no number JSON reads as another than
 * written (misreadNumber), or why not, as a ParseResult's failure.
 */
export function readJsonBody(body: Buffer, numbers: 'as written' | 'as parsed' = 'as written'): { readonly ok: true; readonly value: unknown } | ParseFailure {
  const json = decodeJson(body);
  if (!json.ok) return { ok: false, reason: json.reason, issues: [] };
  if (holdsProtoMember(body, json.value)) return protoMemberRefused();
  return unclearJson(json.text, undefined, numbers) ?? { ok: true, value: json.value };
}

/** Validate a JSON body against a schema, as a ParseResult. */
export function parseJsonWith<T>(request: CallbackRequest, schema: z.ZodMiniType<T>): ParseResult<T> {
  const json = readJsonBody(request.body);
  if (!json.ok) return json;
  const result = schema.safeParse(json.value);
  if (!result.success) return schemaMismatch(result.error);
  return { ok: true, payload: result.data };
}

/** Hosts a plain-http URL may name: this machine only (a stand-in, a simulation). */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Where a provider's API is (a secret's `baseUrl`): an http(s) URL. Whether it may carry our
 * credentials is checked when a request is made (`credentialsMayGoTo`), not here: the secret is
 * parsed to authenticate every callback, and an API URL only lookups and sends use must not stop
 * callbacks from being taken.
 */
export const credentialUrl = z.url({ protocol: /^https?$/ });

/**
 * Whether a request carrying our credentials (API keys, tokens, eSMS's secret key in its query
 * string) may go to `url`: https, or plain http to this machine only (a local stand-in, a
 * simulation). A plain-http URL elsewhere, a slip in a secret, would send them unencrypted.
 */
export function credentialsMayGoTo(url: string | URL): boolean {
  if (!URL.canParse(String(url))) return true; // not sent anywhere: fetch refuses it, as a fault of its own
  const target = new URL(url);
  return target.protocol === 'https:' || LOOPBACK_HOSTS.has(target.hostname);
}

/**
 * Run requests that carry credentials (a status lookup, a send) through `allowed`, which refuses any
 * to plain http on another machine before it leaves: the run then fails with a ConfigurationError
 * naming the rule and `who`'s secret, never the URL (eSMS's carries keys), however the provider's
 * module words a failed request. Callbacks are still taken meanwhile; only these requests wait.
 */
export async function refusingPlainHttp<T>(who: string, run: (allowed: (url: string | URL) => boolean) => Promise<T>): Promise<T> {
  let refused = false;
  try {
    return await run((url) => {
      const ok = credentialsMayGoTo(url);
      refused ||= !ok;
      return ok;
    });
  } catch (error) {
    if (refused) throw new ConfigurationError(`${who}: its secret points a request that carries credentials at a plain-http URL: use https (plain http only to 127.0.0.1, [::1] or localhost); nothing was sent`);
    throw error;
  }
}

/**
 * What went wrong with a request that got no answer, from the error's name and code only, never
 * its message: fetch's messages can quote the URL, and with it what the URL carries (a user and
 * password in a secret's base URL, eSMS's keys in its query string, the subject asked about).
 */
export function requestFault(error: unknown, timeoutMs: number): string {
  const name = error instanceof Error ? error.name : typeof error;
  if (name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  if (name === 'AbortError') return 'the request was aborted';
  // fetch refuses such a URL before sending anything; its message would quote the URL whole.
  if (error instanceof TypeError && /URL that includes credentials/.test(error.message)) return "the base URL holds a user name or password, which fetch refuses: remove it from the secret's URL";
  const codes = [(error as { cause?: { code?: unknown } } | undefined)?.cause?.code, (error as { code?: unknown } | undefined)?.code];
  const code = codes.find((value): value is string => typeof value === 'string' && /^[A-Z][A-Z0-9_]{1,39}$/.test(value));
  return `network error (${code ?? (/^\w{1,40}$/.test(name) ? name : 'unknown')})`;
}

/**
 * The fault of a status endpoint that answered `status`, other than 2xx: a DependencyError whose
 * message is `said`. A 429 (too many requests) or 503 (unavailable) is the endpoint being busy, never
 * a credential to fix: its `Retry-After`, where it sends a usable one, is kept on the error
 * (`retryAfterSeconds`), so the subject is not asked again before it (functions/core/reconcile.ts).
 */
export function endpointFault(dependency: string, said: string, response: Pick<Response, 'status' | 'headers'>, nowMs = Date.now()): DependencyError {
  const busy = response.status === 429 || response.status === 503;
  const wait = busy ? retryAfterSeconds(response.headers.get('retry-after'), nowMs) : undefined;
  if (!busy) return new DependencyError(dependency, said);
  return new DependencyError(dependency, `${said} (busy${wait === undefined ? '' : `, retry after ${wait} s`})`, wait === undefined ? undefined : { retryAfterSeconds: wait });
}

/**
 * Normalise a provider timestamp (RFC 3339 or HTTP date) to ISO-8601 UTC, or undefined when it is
 * not a real date (TeleSign's Verify API sample has "2022-31-03", month 31).
 */
export function toIsoTime(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0) return undefined;
  const iso = /^(\d{4})-(\d{2})-(\d{2})/.exec(value);
  if (iso && (Number(iso[2]) > 12 || Number(iso[3]) > 31)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

/**
 * A provider's status word with its ASCII letters in upper case, and only those: how a status is
 * matched case-insensitively against the documented values, which are ASCII. String#toUpperCase
 * also maps other letters onto ASCII ones (the dotless `ı` U+0131 to I, the long `ſ` U+017F to S,
 * the ligature `ﬁ` to FI), so `valıd` read as VALID and `notıfıed` as NOTIFIED: a spelling no
 * provider documents read as success. Such a word now stays what it is, an unlisted status.
 */
export function asciiUpperCase(text: string): string {
  return text.replace(/[a-z]+/g, (letters) => letters.toUpperCase());
}

/** Short stable digest, for event keys that must not hold the text they are derived from. */
export { shortHash } from '../shared/hash.ts';

export { canonicalJson } from '../shared/canonical-json.ts';

/**
 * A provider's value as one segment of an event key joined with `|`. As it is when it holds no `|`
 * and does not start with `#` (every value the providers document: keys stay what they were);
 * otherwise `#` and a hash of its exact text. No segment holds a `|` and no plain one starts with
 * `#`, so two different tuples never join into one key: without this, TeleSign's code state `A|B`
 * at time `T` and `A` at `B|T` were one key, and the second callback was taken for a retry of the
 * first and never stored.
 */
export function keySegment(value: string): string {
  return value.includes('|') || value.startsWith('#') ? `#${shortHash(Buffer.from(`s:${value}`, 'utf16le'))}` : value;
}

/**
 * A status answer's body, read no further than `limit` bytes: a longer one is cancelled (the rest
 * is never downloaded) and gives undefined, for the caller to refuse in its own terms. Bounded in
 * time by the request's own timeout signal.
 */
export async function readBoundedBody(response: Response, limit: number): Promise<Buffer | undefined> {
  const reader = response.body?.getReader();
  if (!reader) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return Buffer.concat(chunks);
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
}
