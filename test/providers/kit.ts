import { createHash } from 'node:crypto';
import type * as FastCheck from 'fast-check';
import type { AnyProvider, CallbackRequest } from '../../functions/providers/provider.ts';
import { findSample, type Sample } from '../../local/samples.ts';
import type { StatusSimulation } from '../../local/status-simulator.ts';

/**
 * A provider's test kit: everything the shared suites, the local runtime and the benchmark need to
 * know about one provider, so that none of them names a provider. One kit per provider, beside its
 * fixtures (test/fixtures/<id>/); `index.ts` lists them by `ProviderId`, so a provider without a kit
 * is a compile error.
 */

/** A callback's content before it is dressed for sending: a raw body (POST) or a query (GET). */
export interface Content {
  readonly body?: Buffer;
  readonly query?: string;
}

export interface SecretOptions {
  /** Where the provider's status endpoint is (a local stand-in), for providers the worker asks. */
  readonly statusEndpoint?: string;
  /**
   * Turn asking on where a provider makes it opt-in (TeleSign's `statusLookup`: Get Status may be
   * billed). Suites that test asking set it; the others keep the provider's default.
   */
  readonly asks?: boolean;
}

export interface ProviderKit {
  readonly provider: AnyProvider;
  /**
   * The route as API Gateway lists it (`POST /callbacks/telesign`). A public contract: users paste
   * the URL into the provider's console. Pinned here, so changing the module's route fails the
   * stack's test instead of silently breaking deployed integrations.
   */
  readonly route: string;
  /**
   * A valid secret in the provider's shape. Its values contain `tag` (unit, e2e, fuzz, dev…), so a
   * value that leaks into a log line or a message is easy to spot and to trace to its suite.
   */
  secret(tag: string, options?: SecretOptions): Record<string, unknown>;
  /** The secret's credentials (previous ones included): values that must never appear in a log line or a queued message. */
  credentials(secret: Record<string, unknown>): string[];
  /**
   * Secrets that must not authenticate a request made with `secret`: each with one credential
   * changed (`name` says which).
   */
  wrongSecrets(secret: Record<string, unknown>): { readonly name: string; readonly secret: Record<string, unknown> }[];
  /**
   * A key rotation: the receiver's secret while `previous` is being rotated out, the new and the old
   * values a sender may sign with (both accepted), and values that are neither (refused).
   */
  rotation(secret: Record<string, unknown>): Rotation;
  /** Fields the schema requires: without one, an authentic callback is quarantined. */
  readonly requiredFields: readonly string[];
  /** The sample (test/fixtures/<id>/<name>) the generic suites start from. */
  readonly sample: string;
  /** The same callback reporting a different status (a distinct event of the same subject). */
  otherStatus(content: Content): Content;
  /** A copy of a sample about another subject, every other byte as the sample has it. */
  withSubject(sample: Sample, subjectId: string): Sample;
  /**
   * The subject id such a copy is stored under with `secret`, where the provider qualifies the id it
   * reads (Standard Webhooks: `<source>/<id>`). @default the id as given
   */
  storedSubject?(subjectId: string, secret: Record<string, unknown>): string;
  /** The request without its credential, as a sender without the secret would send it. */
  withoutCredential(request: CallbackRequest): CallbackRequest;
  /** The request changed after it left the sender (a body byte, the key, the token): it must be refused. */
  tampered(request: CallbackRequest): CallbackRequest;
  /**
   * Known-answer authentication vectors (a provider's published test vectors): each request must be
   * accepted or refused with the given secret.
   */
  readonly vectors?: readonly AuthVector[];
  /**
   * A stand-in for the provider's status endpoint, for providers the worker asks (`lookup`): the
   * local runtime, the tests and the benchmark run it (local/status-simulator.ts), with `secret`'s
   * credentials. Required exactly when the provider has `lookup`.
   */
  statusSimulation?(secret: Record<string, unknown>): StatusSimulation;
  /**
   * What the provider's status endpoint answers about the subject of a callback (to tell a simulated
   * endpoint, as `npm run send` does): the same status, or `status` when given. Required with
   * `statusSimulation`.
   */
  statusAnswer?(content: Content, status?: string): unknown;
  /**
   * The callback payload the provider's `lookup` makes of such an answer, when the answer is not
   * itself shaped like a callback (Identomat's `result/` answer is read as a `session-change`): what
   * `provider.describe` reads to say what the answer means. @default the answer as it is
   */
  answerAsPayload?(answer: unknown): unknown;
  /**
   * A status that is not final, as `statusAnswer` takes it (TemboPlus `SUBMITTED`): what a status
   * endpoint answers about a transaction still under way. Required with `statusSimulation`.
   */
  readonly pendingStatus?: string;

  // --- hostile-input suite (test/fuzz) ---
  /** What the hostile-input suite needs to know to generate, dress and forge this provider's requests. */
  readonly fuzz: FuzzKit;

  // --- fault suite (test/faults) ---
  /**
   * The callbacks one subject receives over its life, oldest first, each a distinct event. `name`
   * picks the subject and its dice (`lifeDice`), the same on every run; `secret` is the kit's own.
   * The fault suite sends lives shuffled and concurrently, so statuses within a life must differ in
   * tier or rank, or carry provider time: the final state may not depend on arrival order
   * (test/faults/lives.test.ts checks it). For providers the worker asks, the status endpoint
   * answers `statusAnswer` of the last one.
   */
  life(name: string, secret: Record<string, unknown>): readonly Content[];
  /**
   * Whether callbacks carry the provider's own status time: the stored `statusAt` is then compared
   * with the expected one (without it, the worker stores the receive time).
   */
  readonly sendsStatusTime: boolean;

  // --- benchmark (bench/) ---
}

export interface AuthVector {
  readonly name: string;
  readonly secret: Record<string, unknown>;
  readonly request: CallbackRequest;
  readonly accepted: boolean;
}

export interface Rotation {
  readonly receiver: Record<string, unknown>;
  readonly current: Record<string, unknown>;
  readonly previous: Record<string, unknown>;
  readonly neither: Record<string, unknown>;
}

/** The values of these top-level fields, and of the same fields under `previous`. */
export function fieldValues(fields: readonly string[]): ProviderKit['credentials'] {
  return (secret) => {
    const previous = (secret.previous ?? {}) as Record<string, unknown>;
    return fields.flatMap((field) => [secret[field], previous[field]]).filter((value): value is string => typeof value === 'string' && value.length > 0);
  };
}

/** `wrongSecrets` and `rotation` for a secret whose credentials are plain top-level text fields. */
export function flatCredentials(fields: readonly string[]): Pick<ProviderKit, 'wrongSecrets' | 'rotation'> {
  return {
    wrongSecrets: (secret) => fields.map((field) => ({ name: `a wrong ${field}`, secret: { ...secret, [field]: altered(String(secret[field])) } })),
    rotation(secret) {
      const previous = Object.fromEntries(fields.map((field) => [field, `old-${String(secret[field])}`]));
      return {
        receiver: { ...secret, previous },
        current: secret,
        previous: { ...secret, ...previous },
        neither: { ...secret, ...Object.fromEntries(fields.map((field) => [field, `other-${String(secret[field])}`])) },
      };
    },
  };
}

/** The first character changed: a value of the same shape that is not the secret (still valid base64). */
export function altered(value: string): string {
  return (value[0] === 'x' ? 'y' : 'x') + value.slice(1);
}

/** A JSON body with one edit applied. */
export function editJson(content: Content, edit: (json: Record<string, any>) => void): Content {
  const json = JSON.parse(content.body!.toString('utf8')) as Record<string, any>;
  edit(json);
  return { body: Buffer.from(JSON.stringify(json)) };
}

/** A query string with one edit applied. */
export function editQuery(content: Content, edit: (params: URLSearchParams) => void): Content {
  const params = new URLSearchParams(content.query);
  edit(params);
  return { query: params.toString() };
}

/** Replace a JSON string field's value in the raw text, keeping every other byte as the sample has it. */
export function withJsonField(body: Buffer, field: string, value: string): Buffer {
  const text = body.toString('utf8');
  const pattern = new RegExp(`("${field}"\\s*:\\s*)"(?:[^"\\\\]|\\\\.)*"`);
  if (!pattern.test(text)) throw new Error(`sample has no "${field}" string field`);
  return Buffer.from(text.replace(pattern, `$1${JSON.stringify(value).replace(/\$/g, '$$$$')}`));
}

/** Kit helpers for providers that authenticate with a token in the URL path. */
export const pathTokenAuth = {
  withoutCredential(request: CallbackRequest): CallbackRequest {
    const { pathToken: _removed, ...rest } = request;
    return rest;
  },
  tampered(request: CallbackRequest): CallbackRequest {
    return { ...request, pathToken: altered(request.pathToken!) };
  },
};

/** A token for a path segment: letters, digits and dashes only, recognisably the suite's. */
export function pathToken(tag: string, provider: string): string {
  return `${tag}-${provider}-token-${Buffer.from(`${tag}:${provider}`).toString('hex').slice(0, 12)}`.replace(/[^A-Za-z0-9-]/g, '-');
}

// Fault suite (test/faults): the dice a subject's life is drawn with.

/** Values drawn from a life's name: the same on every run, so a run can be replayed from its seed. */
export interface LifeDice {
  /** `step` minutes after the life's start (a second of 2026-01-01 from 08:00 UTC on). */
  at(step: number): Date;
  /** Whether the life ends well: two in three do. */
  readonly succeeds: boolean;
}

/** Hex digits drawn from a seed (ids, codes). */
export function hexOf(seed: string, length: number): string {
  return createHash('sha256').update(seed).digest('hex').slice(0, length);
}

export function lifeDice(name: string): LifeDice {
  const base = Date.UTC(2026, 0, 1, 8) + (Number.parseInt(hexOf(name, 6), 16) % 86_400) * 1000;
  return { at: (step) => new Date(base + step * 60_000), succeeds: Number.parseInt(hexOf(`${name}/outcome`, 2), 16) % 3 !== 0 };
}

/** A JSON object as a callback's body. */
export function jsonContent(json: Record<string, unknown>): Content {
  return { body: Buffer.from(JSON.stringify(json)) };
}

// --- hostile-input suite (test/fuzz) ---
//
// A kit's part of the hostile-input suite: the rules its content is generated from, how an authentic
// request is dressed and how it can be forged, and what the suite must adjust in its secret. The
// generic generators (test/support/fuzz-arbitraries.ts) combine these; they name no provider. Kits
// are loaded by the local runtime too, so nothing here imports fast-check: generators receive it
// (with the suite's building blocks) as `FuzzTools`.

/** Whether content must pass the provider's schema, must fail it, or may do either. */
export type Intent = 'valid' | 'invalid' | 'either';

/** A JSON object, as the generators edit it. */
export type Json = Record<string, unknown>;

/** Generated content before it is dressed: what it is meant to be, and a short label of how it was made. */
export interface FuzzContent {
  readonly body: Buffer;
  readonly query: string;
  readonly intent: Intent;
  /** `sample-variant`, `truncated`, `refused:status.code`…: printed per provider, and with a failure. */
  readonly variant: string;
}

/** A request as sent (before the suite picks its content type), and whether it is the real thing. */
export interface Dressed {
  readonly method: string;
  /** The route's token path parameter as sent; undefined when the route has none or it was left out. */
  readonly pathToken?: string;
  /** The route's other path parameters (`{source}`), by name. */
  readonly pathParameters: Readonly<Record<string, string>>;
  readonly query: string;
  /** Lower-case names. */
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  readonly sourceIp: string;
  /** Dressed with the right secret, the provider's own way (a "forgery" equivalent to that is authentic too). */
  readonly authentic: boolean;
  /** Replaces the content's variant label (`wrong-key:look-alike`…). */
  readonly variant?: string;
}

/**
 * One forgery: from the authentic request for some content, the forged request (its `authentic`
 * saying whether it still is), and the content (its intent changed when the forgery dropped it).
 */
export type Forgery = (authentic: Dressed, content: FuzzContent) => { readonly dressed: Dressed; readonly content: FuzzContent };

type Arbitrary<T> = FastCheck.Arbitrary<T>;

/** fast-check and the suite's building blocks, handed to a kit's generators. */
export interface FuzzTools {
  readonly fc: typeof FastCheck.default;
  /** Ids of letters, digits and dashes (1 to 40). */
  readonly id: Arbitrary<string>;
  /** Short text mixing ASCII with odd characters: direction marks, NUL, noncharacters, lone surrogates… */
  oddText(maxLength: number): Arbitrary<string>;
  /** JSON texts built to trip code that reads unknown values (`{"toString":1}`, `1e999`, deep arrays…). */
  readonly hostileJsonText: Arbitrary<string>;
  /** Spellings that are not the secret: empty, one character off, case changed, look-alikes, very long… */
  wrongSpellings(secret: string): Arbitrary<{ readonly value: string; readonly how: string }>;
}

/** Generators of the provider's own shapes, added to the generic ones of each family. */
export interface MoreContent {
  /** The valid content: the generic variants of the samples, mixed with the provider's own shapes as it sees fit. */
  valid?(samples: Arbitrary<FuzzContent>): Arbitrary<FuzzContent>;
  readonly 'wrong-type'?: readonly Arbitrary<FuzzContent>[];
  readonly huge?: readonly Arbitrary<FuzzContent>[];
}

/** What the schema checks of one JSON field (a field listed as checked that stops being checked shows up as an unexpected 200). */
export interface JsonFieldRule {
  readonly path: readonly string[];
  /**
   * Present-but-wrong values are refused: not a string (or not null when nullish), too long, empty;
   * `text`: a string (`min`/`max` long) or a finite number, nothing else.
   */
  readonly kind: 'string' | 'nullishString' | 'code' | 'numberOrString' | 'object' | 'text';
  /** A required field that may be left out of bodies like this one (an error report without a status). */
  readonly optionalWhen?: (json: Json) => boolean;
  readonly min?: number;
  readonly max?: number;
  /** Only applies when the sample has this path already (a field of one kind of callback only). */
  readonly whenPresent?: boolean;
}

/** Content rules of a provider whose callback is a JSON body. */
export interface JsonContentRules {
  readonly kind: 'json';
  /**
   * The field naming the subject (a path: `['data', 'id']`), its maximum length, and values refused
   * besides (a lone surrogate is refused for every provider: keys must be stored exactly).
   */
  readonly subject: { readonly path: readonly string[]; readonly max: number; readonly refuses?: (value: string) => boolean };
  readonly fields: readonly JsonFieldRule[];
  /** Fields the code reads without the schema checking them: any value must be survivable. */
  readonly looseUsed: readonly (readonly string[])[];
  /**
   * Of those, a value the schema refuses in some bodies after all (Identomat: an instruction's
   * destination must be text): `invalid` for such a body and value, undefined when it is taken.
   */
  looseRefused?(json: Json, path: readonly string[], value: unknown): 'invalid' | undefined;
  /**
   * Valid values for the fields that decide the outcome, laid over a sample (`undefined`: the field
   * is left out). Always a valid body: the field rules still say what is refused.
   */
  vary?(tools: FuzzTools): Arbitrary<Json>;
  more?(tools: FuzzTools): MoreContent;
}

/** What the schema checks of one query parameter. */
export interface QueryFieldRule {
  readonly name: string;
  /** `digits`: a number written in ASCII digits; `string`: any text up to `max`; `loose`: read, never checked. */
  readonly kind: 'digits' | 'string' | 'loose';
  readonly required?: boolean;
  readonly max?: number;
}

/** Ready-made pieces of query content, for a kit's own generators. */
export interface QueryTools {
  /** Valid parameter lists made from the samples (fresh subject, extra parameters, names in any order). */
  readonly validPairs: Arbitrary<readonly (readonly [string, string])[]>;
  encode(pairs: readonly (readonly [string, string])[]): string;
  /** The pairs with `name` (in any case) set to `value`, or removed when it is undefined. */
  withValue(pairs: readonly (readonly [string, string])[], name: string, value: string | undefined): (readonly [string, string])[];
  content(query: string, intent: Intent, variant: string): FuzzContent;
}

/** Content rules of a provider whose callback is a query string. */
export interface QueryContentRules {
  readonly kind: 'query';
  /**
   * The parameters that may name the subject (the first one a sample has is replaced), their
   * maximum length, and values the schema refuses besides.
   */
  readonly subject: { readonly names: readonly string[]; readonly max: number; readonly refuses?: (value: string) => boolean };
  readonly fields: readonly QueryFieldRule[];
  /** Parameter names are read in any case. */
  readonly namesIgnoreCase: boolean;
  more?(tools: FuzzTools, query: QueryTools): MoreContent;
}

/** A request the fuzzer once found mishandled, pinned: sent authentic, it must be answered 200 and stored. */
export interface FuzzRegression {
  /** What the request is, and what it was answered then. */
  readonly what: string;
  /** The layer that had it wrong: the schema (a value that becomes a key), `describe`, or the worker's storage. */
  readonly layer: 'schema' | 'describe' | 'worker';
  content(): Content;
  /** Kept as the callback it is, or quarantined at ingest (and the quarantine item stored). */
  readonly expect: 'stored' | 'quarantined';
  /** Fields the stored item must have (objects compared member by member). */
  readonly item?: Json;
}

export interface FuzzKit {
  /** What the provider's callbacks are made of: every family of content is generated from these rules and its samples. */
  readonly content: JsonContentRules | QueryContentRules;
  /**
   * The credential covers the body's bytes (a signature, a key inside it): a body changed in
   * transport (invalid UTF-8 sent as text) is no longer authentic.
   */
  readonly authenticatesBody: boolean;
  /**
   * Dress content as the provider sends it: headers and body, and `authentic: false` when the
   * content cannot carry the credential. Default: `provider.asSent` (POST), nothing (GET). The
   * route's parameters and the source address are the suite's.
   */
  dress?(content: FuzzContent, secret: Record<string, unknown>): { headers: Record<string, string>; body: Buffer; authentic?: boolean };
  /**
   * The provider's own forgeries (a token route's are the suite's: left out, wrong, in the query
   * or a header, another provider's). `valid` draws other authentic content (for replays).
   */
  forgeries?(tools: FuzzTools, context: { readonly secret: Record<string, unknown>; readonly valid: Arbitrary<FuzzContent> }): readonly Arbitrary<Forgery>[];
  /** The suite's secret: the kit's `secret('fuzz')` with this applied (an allow-list of addresses…). */
  adjustSecret?(secret: Record<string, unknown>): Record<string, unknown>;
  /** Requests the fuzzer once found mishandled for this provider, pinned (test/fuzz/regressions.test.ts). */
  readonly regressions?: readonly FuzzRegression[];
}

/**
 * Addresses the suite sends authentic requests from (TEST-NET-3 and loopback); a secret's
 * source-address allow-list must allow them.
 */
export const FUZZ_SOURCE_IPS: readonly string[] = ['203.0.113.10', '203.0.113.77', '127.0.0.1'];

/** A sample's JSON (test/fixtures/<id>/<name>.json) with fields changed and raw JSON members appended as written. */
export function sampleBody(providerId: string, name: string, changes: Json = {}, rawMembers = ''): Buffer {
  const text = JSON.stringify({ ...sampleJson(providerId, name), ...changes });
  return Buffer.from(rawMembers ? `${text.slice(0, -1)},${rawMembers}}` : text);
}

/** A sample's JSON body, parsed. */
export function sampleJson(providerId: string, name: string): Json {
  const found = findSample(providerId, name);
  if (!found.body) throw new Error(`sample ${providerId}/${name} has no body`);
  return JSON.parse(found.body.toString('utf8')) as Json;
}

/** The subject id a kit's `withSubject(…, subjectId)` copy is stored under with `secret`. */
export function storedSubjectOf(kit: ProviderKit, subjectId: string, secret: Record<string, unknown>): string {
  return kit.storedSubject ? kit.storedSubject(subjectId, secret) : subjectId;
}
