import type { AnyProvider } from '../providers/provider.ts';
import { describeIssues } from '../providers/common.ts';
import { ConfigurationError, DependencyError, errorMessage } from '../shared/errors.ts';

/** Reads one provider's secret string (Secrets Manager in AWS, a file locally). */
export type SecretSource = (provider: AnyProvider) => Promise<string>;

export interface SecretCacheOptions {
  /** How long a fetched secret is reused. A rotation is picked up within this time. */
  readonly ttlMs?: number;
  /**
   * How long a failure (missing, unreadable, placeholder or invalid secret) is remembered, so a
   * flood of callbacks while it is broken costs one Secrets Manager call per period, not one each.
   * A fixed secret is picked up within this time.
   * @default 10 s
   */
  readonly failureTtlMs?: number;
  readonly now?: () => number;
}

export interface SecretCache {
  /** The provider's validated secret. Throws DependencyError (unreadable) or ConfigurationError (malformed). */
  get(provider: AnyProvider): Promise<unknown>;
}

/** How long a secret failure is remembered when nothing else is said. */
export const SECRET_FAILURE_TTL_MS = 10_000;

/**
 * Caches validated secrets per provider for `ttlMs`, fetching each once even under concurrency.
 * Failures are remembered only briefly (`failureTtlMs`), so a fixed secret is picked up soon.
 * Error messages name fields, never values.
 */
export function createSecretCache(source: SecretSource, options: SecretCacheOptions = {}): SecretCache {
  const ttlMs = options.ttlMs ?? 5 * 60_000;
  const failureTtlMs = Math.min(options.failureTtlMs ?? SECRET_FAILURE_TTL_MS, ttlMs);
  const now = options.now ?? Date.now;
  const cache = new Map<string, { expires: number; value: Promise<unknown> }>();

  async function load(provider: AnyProvider): Promise<unknown> {
    let text: string;
    try {
      text = await source(provider);
    } catch (error) {
      if (error instanceof ConfigurationError) throw error;
      throw new DependencyError('secrets', `cannot read the ${provider.id} secret: ${errorMessage(error)}`, { cause: error });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new ConfigurationError(`the ${provider.id} secret is not JSON`);
    }
    const result = provider.secretSchema.safeParse(json);
    if (!result.success) {
      throw new ConfigurationError(`the ${provider.id} secret is invalid: ${describeIssues(result.error).join('; ')}`);
    }
    return result.data;
  }

  return {
    get(provider) {
      const hit = cache.get(provider.id);
      if (hit && hit.expires > now()) return hit.value;
      const value = load(provider);
      const entry = { expires: now() + ttlMs, value };
      cache.set(provider.id, entry);
      // A failure is remembered for failureTtlMs from when it happened; only this fetch's own
      // entry is touched, so a slow failure never shortens a newer fetch that replaced it.
      value.catch(() => {
        if (cache.get(provider.id) === entry) entry.expires = Math.min(entry.expires, now() + failureTtlMs);
      });
      return value;
    },
  };
}

/** Name of the environment variable holding a provider's secret id (name or ARN). */
export function secretEnvName(provider: Pick<AnyProvider, 'id'>): string {
  // Lambda variable names are letters, digits and underscores: `standard-webhooks` → STANDARD_WEBHOOKS_SECRET_ID.
  return `${provider.id.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_SECRET_ID`;
}
