import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The floor of bench section 4: a receiver that does no work. It reads each request and answers
 * `{"received":true}` at once, in a process of its own like the other two receivers, so its
 * latency is the load generator's, the loopback's and the machine's scheduling, nothing else. On a
 * shared machine it shows how much of the compared tails is the machine's.
 * Env: PORT (0 = any).
 */
const server = createServer((request, response) => {
  request.resume();
  request.on('end', () => {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end('{"received":true}');
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
