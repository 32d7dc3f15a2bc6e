import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { IngestResponse } from '../core/ingest.ts';
import type { CallbackRequest } from '../providers/provider.ts';

/**
 * An API Gateway HTTP API (payload v2.0) event as a plain callback request. `tokenParameter` names
 * the path parameter holding a secret token (the provider's `route.tokenParameter`).
 */
export function toCallbackRequest(event: APIGatewayProxyEventV2, tokenParameter?: string): CallbackRequest {
  const http = event.requestContext.http;
  const body = event.body === undefined ? Buffer.alloc(0) : Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(event.headers ?? {})) if (value !== undefined) headers[name.toLowerCase()] = value;
  return {
    method: http.method.toUpperCase(),
    headers,
    body,
    rawQuery: event.rawQueryString ?? '',
    ...(tokenParameter && event.pathParameters?.[tokenParameter] !== undefined ? { pathToken: event.pathParameters[tokenParameter] } : {}),
    ...(event.pathParameters ? { pathParameters: Object.fromEntries(Object.entries(event.pathParameters).filter((entry): entry is [string, string] => entry[1] !== undefined)) } : {}),
    sourceIp: http.sourceIp,
    requestId: event.requestContext.requestId,
    receivedAt: new Date(event.requestContext.timeEpoch).toISOString(),
  };
}

export function toResult(response: IngestResponse): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode: response.statusCode,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(response.body),
  };
}
