import { maskPhoneNumbers, type MaskOptions } from '../shared/log.ts';
import type * as z from '../shared/zod.ts';

/**
 * Where a transaction stands, across providers. `unknown` is never success: the status says the
 * provider is done (or cannot tell), but not whether it worked (TeleSign 250 "final status
 * unknown", an unlisted code, a REL-ID action label the deployment did not declare). Those are
 * listed for a person to review (`inspect --outcome unknown`).
 */
export type Outcome = 'pending' | 'succeeded' | 'failed' | 'unknown';

/** Every outcome, in the order people read them. */
export const OUTCOMES: readonly Outcome[] = ['pending', 'succeeded', 'failed', 'unknown'];

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
  /** The path parameter that carries a secret token (`route.tokenParameter`), for providers whose route has one. */
  readonly pathToken?: string;
  /** Every path parameter of the route, by name (`{source}` of a Standard Webhooks route…). */
  readonly pathParameters?: Readonly<Record<string, string>>;
  readonly sourceIp: string;
  readonly requestId: string;
  /** ISO-8601 time we received it. */
  readonly receivedAt: string;
}

export type AuthResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export type ParseResult<TPayload> =
  | { readonly ok: true; readonly payload: TPayload }
  | { readonly ok: false; readonly reason: string; readonly issues: readonly string[] };

/** Why a callback is not read (quarantined): a ParseResult's failure. */
export type ParseFailure = Extract<ParseResult<never>, { ok: false }>;

/** Small facts read beside a status (REL-ID's action label, TeleSign's code state, eSMS counters). */
export type StatusDetail = Readonly<Record<string, string | number | boolean>>;

/** What one callback (or one answer of a provider's status endpoint) says, in the terms the worker stores. */
export interface EventFacts {
  /** The transaction/message/notification/session this callback is about. */
  readonly subjectId: string;
  /**
   * A part of the subject with a state of its own, kept in the subject's partition (eSMS: one
   * recipient of a message). Absent: the callback is about the subject as a whole.
   */
  readonly part?: string;
  /** What makes this callback distinct from another one about the same subject. */
  readonly eventKey: string;
  /** The provider's own status value, as a string. */
  readonly status: string;
  readonly outcome: Outcome;
  readonly terminal: boolean;
  /**
   * Provider time of the status (ISO-8601), when the provider sends one we can read.
   * The worker falls back to the receive time, and ignores a time too far ahead of it.
   */
  readonly statusAt?: string;
  /**
   * Provider-specific order of statuses within the same terminal tier: higher wins.
   * Terminal beats non-terminal regardless of this value.
   */
  readonly rank: number;
  /**
   * A status that is not final (the subject stays on the re-check schedule) yet orders among the
   * terminal ones by its rank, above those it must not be replaced by: TeleSign's INVALID (one
   * wrong code, the user may try again) outranks the bare delivery report, and a later VALID,
   * EXPIRED or MAX_ATTEMPTS_EXCEEDED outranks it.
   */
  readonly ranksAsTerminal?: boolean;
  /** What else the status means, kept on the state beside it (bounded: short values only). */
  readonly detail?: StatusDetail;
  /**
   * Callbacks that carry live codes or links (Identomat OTP/link instructions) are kept
   * only for the short sensitive-retention period.
   */
  readonly sensitive?: boolean;
  /**
   * False for callbacks that are stored and counted but say nothing about the subject's status
   * (Identomat's OTP instructions and video-call updates).
   * @default true
   */
  readonly placesStatus?: boolean;
  /**
   * The callback reports the subject's *current* status and carries no id or time of its own
   * (Identomat's session-change). Such a report is a new event only when its status differs from
   * the current one, and the latest report wins whatever its tier (a session can move from APPROVED
   * back to MANUAL_CHECK). See `core/events.ts` for how retries are told from changes.
   */
  readonly reportsCurrent?: boolean;
}

/** A provider's answer to "what is the status of this subject?", from its status endpoint. */
export type StatusAnswer<TPayload> =
  | { readonly kind: 'found'; readonly payload: TPayload }
  | { readonly kind: 'not_found' };

/**
 * The verdict on a callback (the claim) once the provider's own answer is in: `confirmed` (status
 * and every material field agree), `mismatch` (they differ: the answer is believed), `not_found`
 * (the provider does not know the subject: nothing is believed).
 */
export type ConfirmationKind = 'confirmed' | 'mismatch' | 'not_found';

export interface LookupContext {
  readonly fetch: typeof fetch;
  readonly timeoutMs: number;
  /** A fresh id per call (TemboPlus answers 429 to a reused x-request-id). */
  readonly newRequestId: () => string;
}

/**
 * Everything the gateway knows about one provider. The CDK stack, the handlers, the local
 * runtime, `send`, `inspect` and the tests all loop over the registry of these.
 */
export interface Provider<TSecret = unknown, TPayload = unknown, TId extends string = string> {
  /** Lower-case kebab-case: the URL segment, the key of partition keys and metric dimensions. */
  readonly id: TId;
  readonly displayName: string;
  /** The provider's callback documentation. */
  readonly docsUrl: string;
  /**
   * HTTP method and API Gateway route path (public contract: keep stable). `tokenParameter` names
   * the path parameter (`{token}`) that carries a secret token compared with the secret's
   * `generatedSecretField`, for providers that authenticate that way.
   */
  readonly route: { readonly method: 'GET' | 'POST'; readonly path: string; readonly tokenParameter?: string };
  /** One line for the README/banner: how a callback proves it is genuine. */
  readonly authSummary: string;
  /** Shape of this provider's secret (Secrets Manager JSON, or the local secrets file entry). */
  readonly secretSchema: z.ZodMiniType<TSecret>;
  /**
   * The secret field the stack generates itself (a random path token, matched against the route's
   * `tokenParameter`); every other field is filled in by the user from the provider's console.
   */
  readonly generatedSecretField?: string;
  /** Placeholder secret shape written by the stack before the user fills it in. */
  readonly secretPlaceholder: Record<string, string>;
  /** Authenticate against the exact bytes received. Must compare in constant time. */
  authenticate(request: CallbackRequest, secret: TSecret): AuthResult;
  /** Parse and validate an authenticated request. Never throws. */
  parse(request: CallbackRequest): ParseResult<TPayload>;
  /**
   * Name the subject and event, and place the status. Pure. The secret carries the few settings
   * that change what a status means (REL-ID's declared action labels); providers that need none
   * ignore it, and without it the meaning falls back to the fail-closed reading.
   */
  describe(payload: TPayload, secret?: TSecret): EventFacts;
  /** The secret holds settings `describe` reads: the worker loads it (and needs read access to it). */
  readonly describeReadsSecret?: boolean;
  /**
   * What a part of a subject is, for a provider whose callbacks name parts with states of their own
   * (`EventFacts.part`; eSMS: a recipient's phone number). Absent: its subjects have no parts, and an
   * expected part would never be answered.
   */
  readonly partName?: string;
  /**
   * Request headers (lower-case) the callback's meaning depends on, kept in the queued message beside
   * the common ones so the worker (and a later reprocess) can read the callback again: Standard
   * Webhooks' `webhook-id` and `webhook-timestamp`. Never a credential.
   */
  readonly keptHeaders?: readonly string[];
  /**
   * Kept headers that name one delivery and stay the same on each of its retries (Standard Webhooks'
   * `webhook-id`): quarantined callbacks with the same bytes but different values are different
   * callbacks, each kept. Never one that changes per attempt (`webhook-timestamp`).
   */
  readonly deliveryIdHeaders?: readonly string[];
  /**
   * Values for the route's parameters other than the token (`{source}`), for sending sample
   * callbacks (`send`, tests, the benchmark) with the given secret.
   */
  routeParameters?(secret: TSecret): Record<string, string>;
  /** What the user puts in place of each route parameter other than the token (`{source}`), for the stack's outputs. */
  readonly routeParameterHelp?: Readonly<Record<string, string>>;
  /**
   * Secret values the provider puts in the body itself (Identomat's callbackApiKey, current and
   * previous); they are scrubbed from the raw body before anything is queued or stored.
   */
  bodySecrets?(secret: TSecret): string[];
  /**
   * Whether a callback that could not be read may still carry a live code or contact (an
   * instruction with an unexpected shape): its quarantined copy is then kept only for the short
   * sensitive retention.
   */
  mayBeSensitive?(raw: Buffer): boolean;
  /**
   * Dress a body as the provider would send it (signature headers, keys in the body). Used by
   * `send`, the tests and the benchmark to produce authentic callbacks; the path token is generic.
   */
  asSent?(body: Buffer, secret: TSecret, sentAt?: Date): { headers: Record<string, string>; body: Buffer };
  /**
   * Ask the provider's status endpoint for a subject's authoritative status (the answer in the
   * provider's payload shape, so `describe` reads it like a callback). Throws DependencyError on a
   * fault (the record is retried with back-off) and ConfigurationError when only a person can fix it
   * (a refused credential). Cite the status endpoint's page in the module.
   */
  lookup?(subject: LookupSubject, secret: TSecret, context: LookupContext): Promise<StatusAnswer<TPayload>>;
  /**
   * Whether the secret holds what `lookup` needs (credentials, a base URL). Without it the provider
   * is not asked, its callbacks are believed as they come, and `inspect` says the status is
   * unconfirmed. @default true (when `lookup` exists)
   */
  canLookup?(secret: TSecret): boolean;
  /**
   * A message the provider asks the receiver to deliver itself (Identomat's one-time-password and
   * session-link callbacks, when the company sends its own SMS and e-mail), read from a stored
   * callback's payload; undefined for anything else. Published as a "Callback Instruction" event,
   * the only place such content goes. It must validate its input: it reads the table.
   */
  instruction?(payload: unknown): Instruction | undefined;
  /**
   * Send a message on the gateway's behalf through the provider's own messaging API (TeleSign's SMS
   * API), for the relay that delivers other providers' instructions. Sends once, never retried here:
   * resolves with the provider's reference for the message (its later delivery reports name it);
   * throws DependencyError when nothing was sent and a later try may work (unreachable, 429, 5xx
   * "not attempted"), UncertainDeliveryError when the request left and no answer says what happened
   * (it may have been sent: never resend), MessageRefusedError when the provider refused this message
   * for good, and ConfigurationError when only a person can fix it (a refused credential). No error
   * message carries the destination or the text. Cite the messaging API's page in the module.
   */
  sendMessage?(secret: TSecret, message: OutgoingMessage, context: SendContext): Promise<SentMessage>;
  /**
   * The `externalId` a sent message was given, as the provider's delivery report for it echoes it
   * back (undefined when the report carries none): how the relay joins a report to an instruction
   * whose send got no answer, and so no reference. Providers with `sendMessage` only.
   */
  externalIdOf?(payload: TPayload): string | undefined;
  /**
   * The secret key material of the credential messages are sent with (TeleSign: its API key,
   * decoded; the current one, never a `previous` one), which the relay holds to send: it derives
   * from it the key it hashes phone numbers with (functions/core/relay.ts `numberKey`), so that a
   * reader of the table, who does not hold the secret, cannot tell a number from its hash. Never
   * written anywhere. Required with `sendMessage` (providerDefinitionProblem).
   */
  sendingKey?(secret: TSecret): Uint8Array;
  /**
   * What the user must know about the secret beyond its fields (which status endpoint a default
   * points at, what leaving a field out means): shown in the stack output naming the secret.
   */
  readonly secretHelp?: string;
  /** The provider's own limits on asking (from its docs): when to ask first, and until when it answers. */
  readonly lookupLimits?: LookupLimits;
  /** The limits as the secret sets them, where a secret field may change them (Identomat's `resultHorizonHours`). @default lookupLimits */
  lookupLimitsFor?(secret: TSecret): LookupLimits;
  /**
   * The fields in which a callback's claim differs from the provider's answer (status and the
   * material fields: amount, currency, account, institution, reference); empty when they agree.
   */
  differences?(claim: TPayload, answer: TPayload): string[];
  /**
   * Whether the status endpoint can know the subject of this callback. @default true. TeleSign's Get
   * Status serves SMS, SMS Verify and Voice Verify reports, not Voice sessions, Verify API processes,
   * bulk or inbound messages: those are not asked about (asking would only answer not_found and end
   * `stale`), and are believed as they come, unconfirmed.
   */
  asksAbout?(payload: TPayload): boolean;
  /**
   * How a callback proves it is genuine, which decides whether it is believed when the provider can
   * be asked. `signed`: a signature over its content (TeleSign, Standard Webhooks): believed as it
   * comes; the provider's answers are applied too, forward-only, and a disagreement is flagged.
   * `token`: a shared token anyone who saw it can reuse (a URL token, a key in the body): when the
   * provider can be asked, the callback is only a claim and only the provider's answers move the
   * state; when it cannot (no credentials), the claim is believed and marked unconfirmed.
   */
  readonly callbackTrust: 'signed' | 'token';
  /**
   * Whether the provider makes up every subject id itself, from random bits or a hash (TeleSign's
   * reference_id, eSMS's SMSID, REL-ID's notification_uuid, Identomat's session token), never from
   * what a person gave. Log lines and the CLI then leave its UUIDs and hex ids readable
   * (`subjectIdMasking`). False where the sender chooses the id (TemboPlus's partnerReference, a
   * Standard Webhooks id): it may embed a phone number in any shape, and is masked whatever its shape.
   */
  readonly mintsSubjectIds: boolean;
}

/**
 * Longest destination or link, and longest text, of an instruction that is published (characters);
 * `schemas/callback-instruction.json` says the same. Even written in the characters JSON spells
 * longest (`\u0001`, six bytes), an instruction's event stays well within the 256 KB of one
 * PutEvents entry; SMS and e-mail texts are far shorter.
 */
export const INSTRUCTION_LIMITS = { field: 2048, text: 16_384 } as const;

/** A message to deliver to a person on the provider's behalf (see `Provider.instruction`). */
export interface Instruction {
  /** The provider's own name for it (`one-time-password`, `share-session-link-via-sms`…). */
  readonly kind: string;
  readonly channel: 'sms' | 'email';
  /** The phone number (E.164 as the provider gives it) or e-mail address. */
  readonly destination: string;
  /** The text to send (a code is in it). */
  readonly text?: string;
  /** A link the person must open (a session link). */
  readonly link?: string;
  /** Whether it carries a one-time code, which is useless (and must not be sent) after a few minutes. */
  readonly oneTimeCode: boolean;
}

/** A message the gateway sends itself (`Provider.sendMessage`). */
export interface OutgoingMessage {
  /** The phone number, E.164 (`+` and the country code). */
  readonly to: string;
  readonly text: string;
  /** What the message is, in the terms carriers route by: a one-time code, or an alert/notification (a link). */
  readonly kind: 'OTP' | 'ARN';
  /** Our own id for it, echoed back by the provider (the instruction's eventId): support can find it by this. */
  readonly externalId: string;
}

/** What the provider said when it took the message. */
export interface SentMessage {
  /** The provider's id for the message: its delivery reports and status answers name it. */
  readonly referenceId: string;
}

/** An answer to a POST, as `SendContext.post` reads it. */
export interface PostAnswer {
  readonly status: number;
  /** The body (bounded), or undefined when it could not be read after the status came. */
  readonly body: string | undefined;
  /** The answer's `Retry-After` header as sent, if any (a busy 429 or 503 may say when to try again). */
  readonly retryAfter?: string;
}

/**
 * How a message is sent: one POST, never retried, that knows whether the request left. Throws
 * DependencyError (named `dependency`) when the request did not leave whole (DNS, refused, the
 * connection not made in time: nothing can have been acted on), UncertainDeliveryError when it did
 * and no answer came in time or the connection was lost (the other side may have acted on it).
 */
export interface SendContext {
  post(url: string, request: SendRequest): Promise<PostAnswer>;
}

/** One POST of `SendContext`. */
export interface SendRequest {
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly dependency: string;
  /**
   * Milliseconds within which the whole request must have left (shorter than the context's own send
   * timeout, e.g. what is left of a code's useful life): past it, nothing is sent and the POST fails
   * as not sent (DependencyError). None: the context's own timeout alone.
   */
  readonly leaveWithinMs?: number;
}

/** What a status request is about: a subject, or one part of it (an eSMS recipient). */
export interface LookupSubject {
  readonly subjectId: string;
  readonly part?: string;
}

export interface LookupLimits {
  /** Ask when a callback arrives (the claim is judged at once). @default true */
  readonly onArrival?: boolean;
  /** The provider's status endpoint is not worth asking sooner than this after the first callback (eSMS: a just-sent message is "not found"). */
  readonly firstAfterSeconds?: number;
  /** The provider answers only this long after the transaction (TeleSign: 12 hours; eSMS: 7 days). */
  readonly horizonHours?: number;
  /** Status requests in flight at once from one function instance. @default DEFAULT_LOOKUP_CONCURRENCY (4) */
  readonly maxConcurrent?: number;
  /** Status requests started per second from one function instance. @default DEFAULT_LOOKUP_RATE (10) */
  readonly perSecond?: number;
}

/** Whether a callback of this provider is believed as it comes (see `callbackTrust`), given whether the provider can be asked. */
export function believesCallbacks(provider: Pick<AnyProvider, 'callbackTrust'>, asked: boolean): boolean {
  return provider.callbackTrust === 'signed' || !asked;
}

/** The provider's limits on asking, with this secret (`lookupLimitsFor`, else `lookupLimits`). */
export function lookupLimitsOf(provider: Pick<AnyProvider, 'lookupLimits' | 'lookupLimitsFor'>, secret: unknown): LookupLimits | undefined {
  return (secret !== undefined ? provider.lookupLimitsFor?.(secret) : undefined) ?? provider.lookupLimits;
}

/** Whether the provider can be asked with this secret. */
export function canAsk(provider: Pick<AnyProvider, 'lookup' | 'canLookup'>, secret: unknown): boolean {
  return provider.lookup !== undefined && (provider.canLookup?.(secret) ?? true);
}

/**
 * How to mask what may hold the ids this provider (absent: one no longer known) gives its subjects:
 * their UUIDs and hex ids left readable (`mintedId`) only when the provider makes up every one
 * itself (`mintsSubjectIds`). Such an id holds no one's number, since no person chose it, and its
 * digit runs are chance: masked, it could no longer be looked up in the provider's console or in
 * `npm run inspect`. An id a sender chooses, or any id of a provider not known, may embed a phone
 * number in any shape, and is masked whatever its shape. The one place that decides it, so that no
 * log line or CLI view can show a sender's id unmasked or garble a provider's.
 */
export function subjectIdMasking(provider: Pick<AnyProvider, 'mintsSubjectIds'> | undefined): MaskOptions {
  return { mintedId: provider?.mintsSubjectIds === true };
}

/**
 * A subject id of this provider as a log line or the CLI shows it (`subjectIdMasking`); also the
 * id a provider gave a message the relay sent, which its delivery reports carry as their subject.
 */
export function maskSubjectId(subjectId: string, provider: Pick<AnyProvider, 'mintsSubjectIds'> | undefined): string {
  return maskPhoneNumbers(subjectId, subjectIdMasking(provider));
}

/** A provider with its types erased, as held by the registry. */
export type AnyProvider = Provider<any, any, string>;

/**
 * Why a provider's definition cannot work as deployed, or undefined when it can. Checked by the
 * registry's tests and when the stack is built, so a mismatch fails synth instead of deploying a
 * route that answers every callback 401.
 */
export function providerDefinitionProblem(provider: AnyProvider): string | undefined {
  if (!/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/.test(provider.id)) return `id "${provider.id}" must be lower-case kebab-case`;
  if (provider.id === 'quarantine') return 'id "quarantine" is reserved';
  const parameters = [...provider.route.path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]);
  const token = provider.route.tokenParameter;
  if (token !== undefined) {
    if (!parameters.includes(token)) return `route ${provider.route.path} has no {${token}} parameter (route.tokenParameter)`;
    if (!provider.generatedSecretField) return `route.tokenParameter "${token}" needs a generatedSecretField to compare it with`;
  }
  if (provider.generatedSecretField !== undefined && !(provider.generatedSecretField in provider.secretPlaceholder)) {
    return `generatedSecretField "${provider.generatedSecretField}" is not a key of secretPlaceholder`;
  }
  if (provider.generatedSecretField !== undefined && token === undefined) return `generatedSecretField "${provider.generatedSecretField}" is generated but no route.tokenParameter carries it`;
  // The relay keys its per-number counts with it: without one, a number's hash would be unkeyed.
  if (provider.sendMessage && !provider.sendingKey) return 'sendMessage needs a sendingKey (the secret key material numbers are hashed with)';
  return undefined;
}

/** Whether the worker reads this provider's secret (to ask its status endpoint, or for settings `describe` reads). */
export function workerReadsSecret(provider: Pick<AnyProvider, 'lookup' | 'describeReadsSecret'>): boolean {
  return provider.lookup !== undefined || provider.describeReadsSecret === true;
}

/** A secret's fields plus, during a rotation, the previous values (accepted until removed). */
export function secretVersions<T extends object>(secret: T & { previous?: Partial<T> }): T[] {
  const { previous, ...current } = secret;
  return previous ? [current as T, { ...current, ...previous } as T] : [current as T];
}
