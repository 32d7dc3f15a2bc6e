/**
 * Faults of a dependency (SQS, DynamoDB, Secrets Manager, a provider's status endpoint).
 * They are never answered with 200: ingest maps them to 503, the worker fails the record so SQS
 * redelivers it.
 */
export class DependencyError extends Error {
  override readonly name = 'DependencyError';
  /**
   * The dependency said it is busy (429, 503) and when to ask again: its `Retry-After`, in seconds
   * (shared/retry-after.ts). Undefined when it said nothing usable.
   */
  readonly retryAfterSeconds?: number;
  /**
   * A batch the queue took in part: how many of its messages it did not accept (the others are
   * queued). Undefined when the call failed whole.
   */
  readonly notQueued?: number;
  constructor(
    readonly dependency: string,
    message: string,
    options?: { cause?: unknown; retryAfterSeconds?: number; notQueued?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    if (options?.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
    if (options?.notQueued !== undefined) this.notQueued = options.notQueued;
  }
}

/**
 * A fault only the operator can fix (placeholder or malformed secret, a token the provider refuses).
 * Treated like a dependency fault (fail closed, retry) but logged as an error that names the fix.
 */
export class ConfigurationError extends Error {
  override readonly name = 'ConfigurationError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * A request that left whole and got no answer (a response timeout, a connection lost after the
 * request was sent): the other side may have acted on it. For a send that has no idempotency key
 * (TeleSign's SMS API) it is never retried, so a person is never sent the same message twice; the
 * relay records it as `uncertain` and raises an alarm instead.
 */
export class UncertainDeliveryError extends Error {
  override readonly name = 'UncertainDeliveryError';
  constructor(
    readonly dependency: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * The provider refused this one message for good (an invalid phone number, a text it will not
 * send): sending it again cannot help, and nothing was sent. `codes` are the provider's own error
 * codes; the message names them, never the values the provider may echo (a phone number).
 */
export class MessageRefusedError extends Error {
  override readonly name = 'MessageRefusedError';
  constructor(
    readonly dependency: string,
    message: string,
    readonly codes: readonly number[] = [],
    /** False when our own check refused it before anything was asked of the provider. */
    readonly byProvider = true,
    /** The provider's id for the transaction when its answer gave one (TeleSign's 2xx with a failure status): to look it up, and to find its delivery reports. */
    readonly referenceId?: string,
  ) {
    super(message);
  }
}

/** The message of an unknown thrown value, for logs. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * DynamoDB refused an item as larger than its 400 KB limit. The gateway sizes items before writing
 * them (functions/core/item-size.ts) but DynamoDB documents its count only as "approximately": a
 * refusal is answered by storing the item's content compressed, never by retrying the same write.
 */
export class ItemTooLargeError extends Error {
  override readonly name = 'ItemTooLargeError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
