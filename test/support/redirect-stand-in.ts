import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RedirectingEndpoint {
  /** The redirecting server's URL, to stand as a provider's `baseUrl`. */
  readonly baseUrl: string;
  /** What reached the server the redirects point at: `<method> <path> <body>`, one per request. */
  readonly elsewhere: string[];
  close(): Promise<void>;
}

/**
 * A provider's status endpoint that answers every request with a redirect (`status`, its Location
 * the same path on another server), and that other server, which records what reaches it and
 * answers `answer` (200, JSON): for tests that a status request never follows a redirect, so
 * neither our credentials nor our trust go where it points.
 */
export async function redirectingEndpoint(status: number, answer: string): Promise<RedirectingEndpoint> {
  const elsewhere: string[] = [];
  const target = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      elsewhere.push(`${request.method} ${request.url} ${body}`);
      response.writeHead(200, { 'content-type': 'application/json' }).end(answer);
    });
  });
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  const redirecting = createServer((request, response) => {
    response.writeHead(status, { location: `http://127.0.0.1:${(target.address() as AddressInfo).port}${request.url}` }).end();
  });
  await new Promise<void>((resolve) => redirecting.listen(0, '127.0.0.1', resolve));
  return {
    baseUrl: `http://127.0.0.1:${(redirecting.address() as AddressInfo).port}`,
    elsewhere,
    close: async () => {
      await Promise.all([new Promise((resolve) => redirecting.close(resolve)), new Promise((resolve) => target.close(resolve))]);
    },
  };
}
