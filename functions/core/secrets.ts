import type { AnyProvider } from '../providers/provider.ts';
import { describeIssues } from '../providers/common.ts';
import { ConfigurationError, DependencyError, errorMessage } from './errors.ts';

/** Reads one provider's secret string (Secrets Manager in AWS, a file locally). */
export type SecretSource = (provider: AnyProvider) => Promise<string>;

export interface SecretCacheOptions {
  /** How long a fetched secret is reused. A rotation is picked up within this time. */
  readonly ttlMs?: number;
  readonly now?: () => number;
}

export interface SecretCache {
  /** The provider's validated secret. Throws DependencyError (unreadable) or ConfigurationError (malformed). */
  get(provider: AnyProvider): Promise<unknown>;
}

/**
 * Caches validated secrets per provider for `ttlMs`, fetching each once even under concurrency.
 * Failures are not cached, so a fixed secret is picked up on the next call.
 * Error messages name fields, never values.
 */
export function createSecretCache(source: SecretSource, options: SecretCacheOptions = {}): SecretCache {
  const ttlMs = options.ttlMs ?? 5 * 60_000;
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
      cache.set(provider.id, { expires: now() + ttlMs, value });
      // Only this fetch's own entry: a slow failure must not evict a newer fetch that replaced it.
      value.catch(() => {
        if (cache.get(provider.id)?.value === value) cache.delete(provider.id);
      });
      return value;
    },
  };
}

/** Name of the environment variable holding a provider's secret id (name or ARN). */
export function secretEnvName(provider: Pick<AnyProvider, 'id'>): string {
  return `${provider.id.toUpperCase()}_SECRET_ID`;
}
