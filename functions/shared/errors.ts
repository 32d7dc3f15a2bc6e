/**
 * Faults of a dependency (SQS, DynamoDB, Secrets Manager, a provider's status endpoint).
 * They are never answered with 200: ingest maps them to 503, the worker fails the record so SQS
 * redelivers it.
 */
export class DependencyError extends Error {
  override readonly name = 'DependencyError';
  constructor(
    readonly dependency: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
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

/** The message of an unknown thrown value, for logs. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
