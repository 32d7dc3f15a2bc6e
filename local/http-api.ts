import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { AnyProvider } from '../functions/providers/provider.ts';
import { UNDEFINED_ROUTE_ANSWER } from '../functions/core/ingest.ts';

/**
 * A local stand-in for API Gateway's HTTP API: the same routes, turned into the same payload v2.0
 * events, handed to the same ingest handlers.
 */

export type RouteHandler = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

export interface LocalRoute {
  readonly provider: AnyProvider;
  readonly handler: RouteHandler;
}

/** HTTP API's own payload limit; our handlers refuse far smaller bodies with 413 themselves. */
const API_GATEWAY_MAX_BYTES = 10 * 1024 * 1024;

/**
 * The media types HTTP API hands on as text: text/*, application/json, application/xml and
 * application/javascript, whatever their parameters. Any other (form encoding, `+json` types, none)
 * arrives base64-encoded, its bytes exact: as text, a body that is not UTF-8 was altered here, and a
 * signed callback refused, though on AWS it arrives as sent. The AWS page says only "If the content
 * type of the request is binary, the body is base64-encoded"; the list is what AWS was seen to do
 * (https://github.com/ministackorg/ministack/pull/766).
 */
const TEXT_TYPES = /^\s*(?:text\/[^;\s]+|application\/(?:json|xml|javascript))\s*(?:;|$)/i;

function compile(path: string): RegExp {
  const pattern = path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, '(?<$1>[^/]+)');
  return new RegExp(`^${pattern}$`);
}

function json(response: ServerResponse, statusCode: number, body: unknown) {
  response.writeHead(statusCode, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

async function readBody(request: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > API_GATEWAY_MAX_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * The request's target as a URL, or undefined when it is none (`*`, or one `new URL` throws on):
 * it matches no route, and is answered as any path without one, not with a 500 the sender would
 * retry. A target that starts with `/` is a path on this host, read as such: resolved against a
 * base URL instead, `//x/callbacks/telesign` named a host `x` and the path `/callbacks/telesign`,
 * and `/\x/callbacks/telesign` too (a URL parser reads `\` as `/`), so a path API Gateway has no
 * route for was routed and the callback taken. A backslash is a character of its segment, as any
 * other: escaped before parsing, decoded again with the segment's other escapes (`routedPath`).
 */
function targetUrl(request: IncomingMessage): URL | undefined {
  const target = request.url ?? '/';
  const text = target.startsWith('/') ? `http://localhost${target.replaceAll('\\', '%5C')}` : target;
  return URL.canParse(text) ? new URL(text) : undefined;
}

/**
 * The path as HTTP API routes it: the percent escapes of each segment decoded, so that `%74elesign`
 * is `telesign` and a token spelled with an escape is the token, handed on decoded, as AWS hands on
 * path parameters ("The path and path parameters should be decoded", AWS's own Lambda test tool:
 * https://github.com/aws/aws-lambda-dotnet/pull/1901). A segment whose escapes are no UTF-8, or
 * that would decode to a slash, is kept as sent: it is no route's name and no token.
 */
function routedPath(path: string): string {
  return path
    .split('/')
    .map((segment) => {
      if (!segment.includes('%')) return segment;
      try {
        const decoded = decodeURIComponent(segment);
        return decoded.includes('/') ? segment : decoded;
      } catch {
        return segment;
      }
    })
    .join('/');
}

/** Build the payload v2.0 event API Gateway would hand the integration. */
export function toApiGatewayEvent(
  request: IncomingMessage,
  body: Buffer,
  routeKey: string,
  pathParameters: Record<string, string>,
): APIGatewayProxyEventV2 {
  const url = targetUrl(request) ?? new URL('http://localhost/');
  // Every value of a header sent more than once, joined with a comma, as API Gateway joins them
  // ("Duplicate headers are combined with commas", its example `"header2": "value1,value2"`):
  // `request.headers` keeps only the first Authorization, Content-Type or User-Agent and joins the
  // rest with ", ", so a request AWS would refuse (two Authorization headers) was taken here.
  // https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
  const headers: Record<string, string> = {};
  for (const [name, values] of Object.entries(request.headersDistinct)) {
    if (values !== undefined) headers[name.toLowerCase()] = values.join(',');
  }
  const rawQueryString = (request.url ?? '').includes('?') ? (request.url ?? '').slice((request.url ?? '').indexOf('?') + 1) : '';
  const isText = TEXT_TYPES.test(headers['content-type'] ?? '');
  const now = Date.now();
  const requestId = randomBytes(12).toString('base64url');
  return {
    version: '2.0',
    routeKey,
    rawPath: url.pathname,
    rawQueryString,
    headers,
    ...(rawQueryString ? { queryStringParameters: Object.fromEntries(new URLSearchParams(rawQueryString)) } : {}),
    pathParameters,
    isBase64Encoded: body.length > 0 && !isText,
    ...(body.length > 0 ? { body: isText ? body.toString('utf8') : body.toString('base64') } : {}),
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'local',
      http: {
        method: (request.method ?? 'GET').toUpperCase(),
        path: url.pathname,
        protocol: `HTTP/${request.httpVersion}`,
        sourceIp: (request.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, ''),
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey,
      stage: '$default',
      time: new Date(now).toUTCString(),
      timeEpoch: now,
    },
  };
}

/** The local HTTP API: bound from the start, serving its routes once they are given. */
export interface LocalHttpApi {
  readonly server: Server;
  readonly url: string;
  /** Serve these routes from now on (until then every request is answered 503, retry shortly). */
  serve(routes: readonly LocalRoute[]): void;
  stop(): Promise<void>;
}

/** What a request is answered before the routes are served: a 503 the sender retries, as a 5xx is. */
const STARTING_ANSWER = { error: 'starting', message: 'the local gateway is starting; retry shortly' };

/**
 * Bind the local HTTP API on 127.0.0.1 now, before anything else starts: the port is held from the
 * first moment (a port only probed could be taken while the engines start) and a port in use fails
 * the start at once. Requests are answered 503 until `serve` is called.
 */
export async function openHttpApi(port: number): Promise<LocalHttpApi> {
  let compiled: (LocalRoute & { pattern: RegExp })[] | undefined;
  const server = createServer((request, response) => {
    void (async () => {
      if (!compiled) {
        response.setHeader('retry-after', '1');
        return json(response, 503, STARTING_ANSWER);
      }
      const sentPath = targetUrl(request)?.pathname;
      const path = sentPath === undefined ? undefined : routedPath(sentPath);
      const method = (request.method ?? 'GET').toUpperCase();
      const match = path === undefined ? undefined : compiled.map((route) => ({ route, found: route.pattern.exec(path) })).find((m) => m.found);
      // API Gateway answers a path it has no route for as it answers a method it has none for.
      if (!match) return json(response, UNDEFINED_ROUTE_ANSWER.statusCode, UNDEFINED_ROUTE_ANSWER.body);
      const { route } = match;
      const groups = match.found?.groups ?? {};
      // API Gateway has no route for another method and answers as for any route it lacks.
      if (method !== route.provider.route.method) return json(response, UNDEFINED_ROUTE_ANSWER.statusCode, UNDEFINED_ROUTE_ANSWER.body);
      const body = await readBody(request);
      if (!body) return json(response, 413, { error: 'payload_too_large', message: 'request body exceeds the API limit' });
      const routeKey = `${route.provider.route.method} ${route.provider.route.path}`;
      const result = await route.handler(toApiGatewayEvent(request, body, routeKey, { ...groups }));
      response.writeHead(result.statusCode ?? 200, result.headers as Record<string, string>);
      response.end(result.body ?? '');
    })().catch((error: unknown) => {
      // API Gateway answers 500 when the integration itself fails; so do we (never a 200).
      if (!response.headersSent) json(response, 500, { error: 'internal_error', message: (error as Error).message });
      else response.destroy();
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  return {
    server,
    url: `http://127.0.0.1:${actualPort}`,
    serve(routes) {
      compiled = routes.map((route) => ({ ...route, pattern: compile(route.provider.route.path) }));
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Start the local HTTP API on 127.0.0.1. Unknown paths get 404; so do known paths with another method, as on API Gateway. */
export async function startHttpApi(routes: readonly LocalRoute[], port: number): Promise<LocalHttpApi> {
  const api = await openHttpApi(port);
  api.serve(routes);
  return api;
}
