import { esms } from './esms.ts';
import { identomat } from './identomat.ts';
import type { AnyProvider } from './provider.ts';
import { relid } from './relid.ts';
import { standardWebhooks } from './standard-webhooks.ts';
import { telesign } from './telesign.ts';
import { temboplus } from './temboplus.ts';

/**
 * Every provider the gateway receives callbacks from: the only list. The stack, the handlers, the
 * local runtime, the CLI commands and the tests loop over it, and `ProviderId` is derived from it,
 * so a provider without its test kit or test case is a compile error. A new provider is one module
 * and one line here. Importing it has no side effects.
 */
const registry = [telesign, esms, temboplus, relid, identomat, standardWebhooks] as const;

/** Identifiers of the providers: also the URL segment, the partition-key prefix and the metric dimension. */
export type ProviderId = (typeof registry)[number]['id'];

/** The registry with its types erased, for code that loops over it. */
export const providers: readonly AnyProvider[] = registry;

export function findProvider(id: string): AnyProvider | undefined {
  return providers.find((provider) => provider.id === id);
}

export function getProvider(id: string): AnyProvider {
  const provider = findProvider(id);
  if (!provider) throw new Error(`unknown provider "${id}"; known: ${providers.map((p) => p.id).join(', ')}`);
  return provider;
}

/**
 * The provider of a per-provider function, named by its `PROVIDER_ID`. The stack also writes that id
 * into each ingest bundle at build time (esbuild `define`, lib/provider-ingress.ts): this chain then
 * folds to one provider, and, the modules having no side effects (package.json `sideEffects`),
 * esbuild leaves the other providers' modules out of the bundle, halving it. An id missing from the
 * chain is still found, through the registry, in a bundle that carries every provider.
 */
export function providerOfThisFunction(): AnyProvider {
  // Each comparison must read `process.env.PROVIDER_ID` itself: the bundler replaces that expression, not a copy of it.
  return process.env.PROVIDER_ID === 'telesign'
    ? telesign
    : process.env.PROVIDER_ID === 'esms'
      ? esms
      : process.env.PROVIDER_ID === 'temboplus'
        ? temboplus
        : process.env.PROVIDER_ID === 'relid'
          ? relid
          : process.env.PROVIDER_ID === 'identomat'
            ? identomat
            : process.env.PROVIDER_ID === 'standard-webhooks'
              ? standardWebhooks
              : getProvider(process.env.PROVIDER_ID ?? '');
}

export type { AnyProvider };
