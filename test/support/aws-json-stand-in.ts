import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a stand-in answers: an HTTP status and the service's JSON body. */
export interface AwsJsonAnswer {
  readonly status: number;
  readonly body: unknown;
}

export interface AwsJsonServer {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  stop(): Promise<void>;
}

/**
 * An HTTP server on 127.0.0.1 speaking one operation of an AWS service's JSON 1.1 protocol
 * (`POST /`, `X-Amz-Target: <target>`, a JSON body), for the stand-ins of services with no local
 * engine (Secrets Manager, EventBridge). Another operation, or a body that is not JSON, gets the
 * protocol's own 400; `handle` answers the parsed body.
 */
export function startAwsJsonServer(target: string, handle: (input: Record<string, unknown>) => AwsJsonAnswer | Promise<AwsJsonAnswer>): Promise<AwsJsonServer> {
  return startAwsJsonService({ [target]: handle });
}

/** The same, serving several operations (`X-Amz-Target` → its handler), in JSON 1.0 or 1.1. */
export async function startAwsJsonService(
  handlers: Readonly<Record<string, (input: Record<string, unknown>) => AwsJsonAnswer | Promise<AwsJsonAnswer>>>,
  protocol: '1.0' | '1.1' = '1.1',
): Promise<AwsJsonServer> {
  const served = Object.keys(handlers)
    .map((target) => target.split('.').at(-1))
    .join(', ');
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const answer = ({ status, body }: AwsJsonAnswer) => {
        response.writeHead(status, { 'content-type': `application/x-amz-json-${protocol}`, 'x-amzn-requestid': randomUUID() });
        response.end(JSON.stringify(body));
      };
      const asked = request.headers['x-amz-target'];
      const handle = typeof asked === 'string' && Object.hasOwn(handlers, asked) ? handlers[asked] : undefined;
      if (request.method !== 'POST' || !handle) {
        return answer({ status: 400, body: { __type: 'UnknownOperationException', message: `the stand-in serves ${served} only, not ${String(asked)}` } });
      }
      let input: Record<string, unknown>;
      try {
        input = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      } catch {
        return answer({ status: 400, body: { __type: 'SerializationException', message: 'body is not JSON' } });
      }
      void Promise.resolve(handle(input ?? {})).then(answer);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
