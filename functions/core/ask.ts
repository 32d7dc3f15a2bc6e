import { ConfigurationError, DependencyError } from '../shared/errors.ts';
import { refusingPlainHttp } from '../providers/common.ts';
import type { AnyProvider, LookupContext, LookupSubject } from '../providers/provider.ts';
import { placeStatus, unstorableKeyReason } from './events.ts';
import type { ProviderAnswer } from './event-items.ts';

/**
 * Asking a provider's status endpoint, for the worker (on a callback's arrival) and for re-checks:
 * the answer read as a callback would be, and the calls bounded per provider.
 */

/** What a status request found. */
export type LookupResult =
  | { readonly kind: 'found'; readonly askedAt: string; readonly answer: ProviderAnswer }
  | { readonly kind: 'not_found'; readonly askedAt: string }
  /** An answer about another subject: it proves nothing about this one. */
  | { readonly kind: 'other-subject'; readonly askedAt: string };

/** Status requests to one provider at once from one function instance, unless its module says otherwise. */
export const DEFAULT_LOOKUP_CONCURRENCY = 4;
/** Status requests started per second to one provider from one function instance, unless its module says otherwise. */
export const DEFAULT_LOOKUP_RATE = 10;

/**
 * When the running invocation must be done asking (epoch ms), set by the worker's entry point from
 * Lambda's remaining time: a question that could not be answered before it is not asked. Otherwise a
 * batch of records queued behind a hanging endpoint would outlast the function's timeout, and a
 * timed-out invocation fails the whole batch, on every receive, into the DLQ, never reaching the
 * path that stores a callback unconfirmed. A Node.js execution environment runs one invocation at
 * a time, so one value serves. Undefined: no deadline (the local runtime, tests).
 */
let invocationDeadline: number | undefined;
export function setLookupDeadline(epochMs: number | undefined): void {
  invocationDeadline = epochMs;
}
/** Requests a lookup may make, each up to the context's timeout (eSMS asks twice). */
const REQUESTS_PER_LOOKUP = 2;

/** Per provider: requests in flight, callers waiting for a slot, and when the last one started. */
const gates = new Map<string, { active: number; waiting: (() => void)[]; nextStart: number }>();

/**
 * Run `call` when the provider has a free slot and its rate allows: bursts (a batch of callbacks, a
 * sweep's re-checks) are spread out instead of meeting a 429 (TemboPlus answers one to bursts).
 */
async function gated<T>(provider: AnyProvider, call: () => Promise<T>): Promise<T> {
  const concurrency = provider.lookupLimits?.maxConcurrent ?? DEFAULT_LOOKUP_CONCURRENCY;
  const spacingMs = 1000 / (provider.lookupLimits?.perSecond ?? DEFAULT_LOOKUP_RATE);
  let gate = gates.get(provider.id);
  if (!gate) gates.set(provider.id, (gate = { active: 0, waiting: [], nextStart: 0 }));
  while (gate.active >= concurrency) await new Promise<void>((resolve) => gate.waiting.push(resolve));
  gate.active++;
  try {
    const now = Date.now();
    const start = Math.max(now, gate.nextStart);
    gate.nextStart = start + spacingMs;
    if (start > now) await new Promise((resolve) => setTimeout(resolve, start - now));
    return await call();
  } finally {
    gate.active--;
    gate.waiting.shift()?.();
  }
}

/** Ask, refusing any request that would carry credentials over plain http to another machine (the claim is then stored unconfirmed). */
function guardedLookup(provider: AnyProvider, ask: LookupSubject, secret: unknown, context: LookupContext) {
  return refusingPlainHttp(provider.displayName, (allowed) =>
    provider.lookup!(ask, secret, {
      ...context,
      fetch: (input, init) => (allowed(input instanceof Request ? input.url : input) ? context.fetch(input, init) : Promise.reject(new TypeError('refused: plain http'))),
    }),
  );
}

/**
 * The provider's answer about a subject, read as a callback would be. Throws what `lookup` throws:
 * DependencyError on a fault of the endpoint, ConfigurationError when a person must fix something.
 */
export async function lookupAnswer(
  provider: AnyProvider,
  subject: LookupSubject,
  secret: unknown,
  deps: { readonly lookup: LookupContext; readonly now: () => Date },
): Promise<LookupResult> {
  const ask = { subjectId: subject.subjectId, ...(subject.part === undefined ? {} : { part: subject.part }) };
  // When the question left (after any pacing wait), not when the answer came back: a slow answer
  // describes the provider's view as of the question, and a quicker one asked later is newer.
  let askedAt = deps.now().toISOString();
  const response = await gated(provider, () => {
    // Checked once a slot is free: the wait for one is what a hanging endpoint makes long.
    if (invocationDeadline !== undefined && Date.now() + REQUESTS_PER_LOOKUP * deps.lookup.timeoutMs > invocationDeadline) {
      throw new DependencyError(provider.id, 'no time left in this invocation to ask the status endpoint; asked on the next receive');
    }
    askedAt = deps.now().toISOString();
    return guardedLookup(provider, ask, secret, deps.lookup);
  });
  if (response.kind === 'not_found') return { kind: 'not_found', askedAt };
  const facts = provider.describe(response.payload, secret);
  if (facts.subjectId !== subject.subjectId || facts.part !== subject.part || unstorableKeyReason(facts)) return { kind: 'other-subject', askedAt };
  return { kind: 'found', askedAt, answer: { payload: response.payload, facts, placed: placeStatus(facts, askedAt) } };
}

/**
 * Whether an error came from asking the provider (its endpoint down, slow, refusing our credential)
 * rather than from our own dependencies: such a fault delays confirmation, it never loses a callback.
 */
export function isEndpointFault(provider: Pick<AnyProvider, 'id'>, error: unknown): boolean {
  return error instanceof ConfigurationError || (error instanceof DependencyError && error.dependency === provider.id);
}
