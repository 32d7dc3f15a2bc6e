import { GetSecretValueCommand, SecretsManagerClient, type SecretsManagerClientConfig } from '@aws-sdk/client-secrets-manager';
import type { SecretSource } from '../core/secrets.ts';
import { secretEnvName } from '../core/secrets.ts';
import { requireEnv } from '../handlers/environment.ts';

/**
 * Bounds on a secret read. Ingest answers within its 10 s timeout (lib/provider-ingress.ts) with a
 * secret read (at most `deadlineMs`) and then the queue's send (at most SQS_BOUNDS.deadlineMs, 6 s):
 * a Secrets Manager that stalls is a 503 `secret_unavailable` the provider retries, never a timeout.
 */
export const SECRETS_BOUNDS = { connectionTimeoutMs: 1_000, requestTimeoutMs: 1_500, maxAttempts: 2, deadlineMs: 3_000 } as const;

/** A Secrets Manager client whose calls are bounded as above (`config` adds the endpoint or region). */
export function boundedSecretsClient(config: SecretsManagerClientConfig = {}): SecretsManagerClient {
  return new SecretsManagerClient({
    ...config,
    maxAttempts: SECRETS_BOUNDS.maxAttempts,
    requestHandler: { connectionTimeout: SECRETS_BOUNDS.connectionTimeoutMs, requestTimeout: SECRETS_BOUNDS.requestTimeoutMs, throwOnRequestTimeout: true },
  });
}

/** Reads a provider's secret from Secrets Manager, by the id in `<PROVIDER>_SECRET_ID`, within `deadlineMs`. */
export function secretsManagerSource(client = boundedSecretsClient(), deadlineMs: number = SECRETS_BOUNDS.deadlineMs): SecretSource {
  return async (provider) => {
    const secretId = requireEnv(secretEnvName(provider));
    const result = await client.send(new GetSecretValueCommand({ SecretId: secretId }), { abortSignal: AbortSignal.timeout(deadlineMs) });
    if (result.SecretString === undefined) throw new Error(`secret ${secretId} has no string value`);
    return result.SecretString;
  };
}
