import { providers, type ProviderId } from '../../functions/providers/index.ts';
import type { AnyProvider } from '../../functions/providers/provider.ts';
import { esmsKit } from './esms.ts';
import { identomatKit } from './identomat.ts';
import type { ProviderKit, SecretOptions } from './kit.ts';
import { relidKit } from './relid.ts';
import { standardWebhooksKit } from './standard-webhooks.ts';
import { telesignKit } from './telesign.ts';
import { temboplusKit } from './temboplus.ts';

/**
 * Every provider's test kit, by id. Typed by the registry's `ProviderId`: a provider added to the
 * registry without a kit here does not compile.
 */
export const kits: Readonly<Record<ProviderId, ProviderKit>> = {
  telesign: telesignKit,
  esms: esmsKit,
  temboplus: temboplusKit,
  relid: relidKit,
  identomat: identomatKit,
  'standard-webhooks': standardWebhooksKit,
};

/** The kit of a provider (by the provider or its id). */
export function kitOf(provider: AnyProvider | string): ProviderKit {
  const id = typeof provider === 'string' ? provider : provider.id;
  const kit = (kits as Record<string, ProviderKit | undefined>)[id];
  if (!kit) throw new Error(`no test kit for provider "${id}"`);
  return kit;
}

/** Every provider's secret for one suite, keyed by provider id (the shape of a secrets file). */
export function secretsFor(tag: string, options: SecretOptions = {}): Record<string, Record<string, unknown>> {
  return Object.fromEntries(allKits().map((kit) => [kit.provider.id, kit.secret(tag, options)]));
}

/** Every kit, in the registry's order. */
export function allKits(): ProviderKit[] {
  return providers.map((provider) => kitOf(provider));
}

export type { ProviderKit };
