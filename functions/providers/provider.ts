import type * as z from '../core/zod.ts';

/** Identifiers of the providers we receive callbacks from. Also the URL segment and the secret key. */
export type ProviderId = 'telesign' | 'esms' | 'temboplus' | 'relid' | 'identomat';

/** Where a transaction stands, across providers. */
export type Outcome = 'pending' | 'succeeded' | 'failed';

/**
 * A callback as it reached us, stripped of everything AWS-specific.
 * The body is the exact bytes received (API Gateway's base64 already undone).
 */
export interface CallbackRequest {
  readonly method: string;
  /** Lower-cased header names. */
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: Buffer;
  /** The query string exactly as received, without the leading `?`. */
  readonly rawQuery: string;
  /** The `{token}` path segment, for providers whose route carries one. */
  readonly pathToken?: string;
  readonly sourceIp: string;
  readonly requestId: string;
  /** ISO-8601 time we received it. */
  readonly receivedAt: string;
}

export type AuthResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export type ParseResult<TPayload> =
  | { readonly ok: true; readonly payload: TPayload }
  | { readonly ok: false; readonly reason: string; readonly issues: readonly string[] };

/** What one callback says, in the terms the worker stores. */
export interface EventFacts {
  /** The transaction/message/notification/session this callback is about. */
  readonly subjectId: string;
  /** What makes this callback distinct from another one about the same subject. */
  readonly eventKey: string;
  /** The provider's own status value, as a string. */
  readonly status: string;
  readonly outcome: Outcome;
  readonly terminal: boolean;
  /**
   * Provider time of the status (ISO-8601), when the provider sends one we can read.
   * The worker falls back to the receive time.
   */
  readonly statusAt?: string;
  /**
   * Provider-specific order of statuses within the same terminal tier: higher wins.
   * Terminal beats non-terminal regardless of this value.
   */
  readonly rank: number;
  /**
   * Callbacks that carry live codes or links (Identomat OTP/link instructions) are kept
   * only for the short sensitive-retention period.
   */
  readonly sensitive?: boolean;
}

/** TemboPlus-style confirmation: the provider's own answer to "what is the status of X?". */
export type Confirmation<TPayload> =
  | { readonly kind: 'confirmed'; readonly payload: TPayload }
  | { readonly kind: 'mismatch'; readonly payload: TPayload }
  | { readonly kind: 'not_found' };

export interface ConfirmContext {
  readonly fetch: typeof fetch;
  readonly timeoutMs: number;
  /** A fresh id per call (TemboPlus answers 429 to a reused x-request-id). */
  readonly newRequestId: () => string;
}

/**
 * Everything the gateway knows about one provider. The CDK stack, the handlers, the local
 * runtime, `send`, `inspect` and the tests all loop over the registry of these.
 */
export interface Provider<TSecret = unknown, TPayload = unknown> {
  readonly id: ProviderId;
  readonly displayName: string;
  /** The provider's callback documentation. */
  readonly docsUrl: string;
  /** HTTP method and API Gateway route path (public contract: keep stable). */
  readonly route: { readonly method: 'GET' | 'POST'; readonly path: string };
  /** One line for the README/banner: how a callback proves it is genuine. */
  readonly authSummary: string;
  /** Shape of this provider's secret (Secrets Manager JSON, or the local secrets file entry). */
  readonly secretSchema: z.ZodMiniType<TSecret>;
  /**
   * Secret fields the stack can generate itself (random path tokens); every other field is filled
   * in by the user from the provider's console.
   */
  readonly generatedSecretField?: string;
  /** Placeholder secret shape written by the stack before the user fills it in. */
  readonly secretPlaceholder: Record<string, string>;
  /** Authenticate against the exact bytes received. Must compare in constant time. */
  authenticate(request: CallbackRequest, secret: TSecret): AuthResult;
  /** Parse and validate an authenticated request. Never throws. */
  parse(request: CallbackRequest): ParseResult<TPayload>;
  /** Name the subject and event, and place the status. Pure. */
  describe(payload: TPayload): EventFacts;
  /**
   * Secret values the provider puts in the body itself (Identomat's callbackApiKey, current and
   * previous); they are scrubbed from the raw body before anything is queued or stored.
   */
  bodySecrets?(secret: TSecret): string[];
  /**
   * Dress a body as the provider would send it (signature headers, keys in the body). Used by
   * `send`, the tests and the benchmark to produce authentic callbacks; the path token is generic.
   */
  asSent?(body: Buffer, secret: TSecret): { headers: Record<string, string>; body: Buffer };
  /** Ask the provider for the authoritative status before believing a callback. */
  confirm?(payload: TPayload, secret: TSecret, context: ConfirmContext): Promise<Confirmation<TPayload>>;
}

/** A provider with its types erased, as held by the registry. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyProvider = Provider<any, any>;

/** A secret's fields plus, during a rotation, the previous values (accepted until removed). */
export function secretVersions<T extends object>(secret: T & { previous?: Partial<T> }): T[] {
  const { previous, ...current } = secret;
  return previous ? [current as T, { ...current, ...previous } as T] : [current as T];
}
