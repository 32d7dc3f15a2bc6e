import { esms } from './esms.ts';
import { identomat } from './identomat.ts';
import type { AnyProvider, ProviderId } from './provider.ts';
import { relid } from './relid.ts';
import { telesign } from './telesign.ts';
import { temboplus } from './temboplus.ts';

/**
 * Every provider the gateway receives callbacks from. The stack, the handlers, the local runtime,
 * the CLI commands and the tests loop over this list: a new provider is one module and one line.
 * Importing it has no side effects.
 */
export const providers: readonly AnyProvider[] = [telesign, esms, temboplus, relid, identomat];

export function findProvider(id: string): AnyProvider | undefined {
  return providers.find((provider) => provider.id === id);
}

export function getProvider(id: string): AnyProvider {
  const provider = findProvider(id);
  if (!provider) throw new Error(`unknown provider "${id}"; known: ${providers.map((p) => p.id).join(', ')}`);
  return provider;
}

export type { AnyProvider, ProviderId };
