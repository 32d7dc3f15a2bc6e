import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SecretSource } from '../core/secrets.ts';
import { secretEnvName } from '../core/secrets.ts';
import { requireEnv } from '../handlers/environment.ts';

/** Reads a provider's secret from Secrets Manager, by the id in `<PROVIDER>_SECRET_ID`. */
export function secretsManagerSource(client = new SecretsManagerClient({})): SecretSource {
  return async (provider) => {
    const secretId = requireEnv(secretEnvName(provider));
    const result = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
    if (result.SecretString === undefined) throw new Error(`secret ${secretId} has no string value`);
    return result.SecretString;
  };
}
