import { startAwsJsonServer } from './aws-json-stand-in.ts';

/**
 * A STAND-IN for Secrets Manager, for the test that runs the deployed bundles
 * (test/e2e/deployed-bundles.test.ts): there is no local Secrets Manager engine, and the functions
 * only ever call GetSecretValue. It speaks that one operation of the service's protocol (AWS JSON
 * 1.1: `POST /`, `X-Amz-Target: secretsmanager.GetSecretValue`, `{"SecretId"}`), so the bundle's
 * own SDK client reaches it through AWS_ENDPOINT_URL_SECRETS_MANAGER unchanged. It serves the test
 * kits' secrets (the provider-credentials side of the pipeline), nothing of our code: the queue and
 * the table are the real local engines.
 * @see https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html
 */
export interface SecretsManagerStandIn {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  /** Every SecretId asked for, oldest first. */
  readonly requests: string[];
  stop(): Promise<void>;
}

/** Start the stand-in on 127.0.0.1, serving `secrets` (secret ARN → SecretString). */
export async function startSecretsManagerStandIn(secrets: ReadonlyMap<string, string>): Promise<SecretsManagerStandIn> {
  const requests: string[] = [];
  const created = Math.floor(Date.now() / 1000);
  const server = await startAwsJsonServer('secretsmanager.GetSecretValue', ({ SecretId: secretId }) => {
    if (typeof secretId !== 'string') return { status: 400, body: { __type: 'InvalidParameterException', message: 'SecretId is required' } };
    requests.push(secretId);
    const value = secrets.get(secretId);
    // The service's own answer for an id it does not know.
    if (value === undefined) return { status: 400, body: { __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." } };
    const name = secretId.replace(/^arn:[^:]+:secretsmanager:[^:]+:\d+:secret:/, '');
    return { status: 200, body: { ARN: secretId, Name: name, SecretString: value, VersionId: 'local-version', VersionStages: ['AWSCURRENT'], CreatedDate: created } };
  });
  return { endpoint: server.endpoint, requests, stop: () => server.stop() };
}
