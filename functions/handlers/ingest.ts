import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { secretsManagerSource } from '../adapters/secrets-manager.ts';
import { boundedSqsClient } from '../adapters/sqs.ts';
import { ingest, type IngestDependencies } from '../core/ingest.ts';
import { MAX_BODY_BYTES } from '../core/pipeline-definition.ts';
import { providerOfThisFunction } from '../providers/index.ts';
import type { AnyProvider } from '../providers/provider.ts';
import { toCallbackRequest, toResult } from './api-gateway.ts';
import { DEFAULT_SECRET_CACHE_SECONDS, ingestDependencies } from './dependencies.ts';
import { numberEnv, requireEnv } from './environment.ts';
import { withInvocationLogFields } from './invocation-log.ts';

export type IngestHandler = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

/** The ingest handler for one provider, over the given dependencies (the local runtime passes its own). */
export function createIngestHandler(provider: AnyProvider, deps: IngestDependencies): IngestHandler {
  return async (event) => toResult(await ingest(provider, toCallbackRequest(event, provider.route.tokenParameter), deps));
}

/** Builds the AWS dependencies from the environment, once per execution environment. */
function fromEnvironment(): IngestHandler {
  const provider = providerOfThisFunction();
  return createIngestHandler(
    provider,
    ingestDependencies({
      provider,
      sqs: boundedSqsClient(),
      queueUrl: requireEnv('QUEUE_URL'),
      secretSource: secretsManagerSource(),
      secretCacheSeconds: numberEnv('SECRET_CACHE_SECONDS', DEFAULT_SECRET_CACHE_SECONDS),
      maxBodyBytes: numberEnv('MAX_BODY_BYTES', MAX_BODY_BYTES),
    }),
  );
}

let configured: IngestHandler | undefined;

/** Lambda entry point (one function per provider, selected by PROVIDER_ID); its lines name the invocation. */
export const handler = withInvocationLogFields<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>((event) => {
  configured ??= fromEnvironment();
  return configured(event);
});
