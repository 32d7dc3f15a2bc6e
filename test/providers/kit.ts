import { createHash } from 'node:crypto';
import type { AnyProvider, CallbackRequest } from '../../functions/providers/provider.ts';
import type { Sample } from '../../local/samples.ts';
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

  // --- hostile-input suite (test/fuzz) ---

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
