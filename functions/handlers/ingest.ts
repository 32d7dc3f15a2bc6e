import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { ingest, type IngestDependencies } from '../core/ingest.ts';
import { createLogger } from '../core/log.ts';
import { MAX_BODY_BYTES } from '../core/pipeline-definition.ts';
import { createSecretCache } from '../core/secrets.ts';
import { getProvider } from '../providers/index.ts';
import type { AnyProvider } from '../providers/provider.ts';
import { toCallbackRequest, toResult } from './api-gateway.ts';
import { secretsManagerSource } from './aws-secrets.ts';
import { numberEnv, requireEnv } from './environment.ts';

export type IngestHandler = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

/** The ingest handler for one provider, over the given dependencies (the local runtime passes its own). */
export function createIngestHandler(provider: AnyProvider, deps: IngestDependencies): IngestHandler {
  return async (event) => toResult(await ingest(provider, toCallbackRequest(event), deps));
}

/** Builds the AWS dependencies from the environment, once per execution environment. */
function fromEnvironment(): IngestHandler {
  const provider = getProvider(requireEnv('PROVIDER_ID'));
  const queueUrl = requireEnv('QUEUE_URL');
  // Bounded, so an unreachable queue becomes a 503 the provider retries, well inside the function's
  // timeout, instead of a hung request. (The handler only warns on a breached requestTimeout unless
  // throwOnRequestTimeout is set: without it a stalled queue hangs the request.)
  const sqs = new SQSClient({ maxAttempts: 3, requestHandler: { connectionTimeout: 1000, requestTimeout: 2500, throwOnRequestTimeout: true } });
  return createIngestHandler(provider, {
    secrets: createSecretCache(secretsManagerSource(), { ttlMs: numberEnv('SECRET_CACHE_SECONDS', 300) * 1000 }),
    send: async (messageBody) => {
      await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: messageBody }));
    },
    log: createLogger({ service: `ingest-${provider.id}` }),
    maxBodyBytes: numberEnv('MAX_BODY_BYTES', MAX_BODY_BYTES),
  });
}

let configured: IngestHandler | undefined;

/** Lambda entry point (one function per provider, selected by PROVIDER_ID). */
export const handler: IngestHandler = (event) => {
  configured ??= fromEnvironment();
  return configured(event);
};
