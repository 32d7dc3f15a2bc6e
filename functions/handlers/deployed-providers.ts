import { findProvider, providers } from '../providers/index.ts';
import type { AnyProvider } from '../providers/provider.ts';
import { ConfigurationError } from '../shared/errors.ts';

/**
 * The providers the stack deploys, from PROVIDERS (`telesign,identomat`), which the stack sets on the
 * sweep and the worker only when its `providers` setting leaves some out; without it, every provider
 * of the registry. An id the registry does not know fails the function's start, naming it.
 */
export function deployedProvidersEnv(env: NodeJS.ProcessEnv = process.env): readonly AnyProvider[] {
  const raw = env.PROVIDERS;
  if (raw === undefined || raw.trim() === '') return providers;
  return raw.split(',').map((id) => {
    const provider = findProvider(id.trim());
    if (!provider) throw new ConfigurationError(`environment variable PROVIDERS names an unknown provider "${id.trim()}"; known: ${providers.map((p) => p.id).join(', ')}`);
    return provider;
  });
}
