import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

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
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const answer = (status: number, body: unknown) => {
        response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() });
        response.end(JSON.stringify(body));
      };
      const target = request.headers['x-amz-target'];
      if (request.method !== 'POST' || target !== 'secretsmanager.GetSecretValue') {
        return answer(400, { __type: 'UnknownOperationException', message: `the stand-in serves GetSecretValue only, not ${String(target)}` });
      }
      let secretId: unknown;
      try {
        secretId = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { SecretId?: unknown }).SecretId;
      } catch {
        return answer(400, { __type: 'SerializationException', message: 'body is not JSON' });
      }
      if (typeof secretId !== 'string') return answer(400, { __type: 'InvalidParameterException', message: 'SecretId is required' });
      requests.push(secretId);
      const value = secrets.get(secretId);
      // The service's own answer for an id it does not know.
      if (value === undefined) return answer(400, { __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." });
      const name = secretId.replace(/^arn:[^:]+:secretsmanager:[^:]+:\d+:secret:/, '');
      answer(200, { ARN: secretId, Name: name, SecretString: value, VersionId: 'local-version', VersionStages: ['AWSCURRENT'], CreatedDate: created });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
