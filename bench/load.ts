import { Agent, request as httpRequest } from 'node:http';
import type { SampleRequest } from '../local/samples.ts';

/**
 * A closed-loop load generator: `concurrency` senders, each sending its next callback as soon as
 * the previous one is answered, over keep-alive connections (as providers' HTTP clients do).
 * node:http rather than autocannon: every request here is a different, signed callback.
 */

export interface LoadResult {
  readonly sent: number;
  /** Answered 200 with `"received":true`. */
  readonly acknowledged: number;
  readonly failed: number;
  /** First few failures, for the report. */
  readonly failures: string[];
  readonly startedAt: number;
  readonly endedAt: number;
  /** Ack latency of every acknowledged callback, ms. */
  readonly latenciesMs: number[];
}

function send(agent: Agent, base: URL, callback: SampleRequest): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const body = callback.body ?? Buffer.alloc(0);
    const req = httpRequest(
      {
        host: base.hostname,
        port: base.port,
        method: callback.method,
        path: callback.path,
        headers: { ...callback.headers, ...(callback.method === 'POST' ? { 'content-length': String(body.length) } : {}) },
        agent,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error('no answer within 30 s')));
    req.end(callback.method === 'POST' ? body : undefined);
  });
}

/**
 * Send every callback with `concurrency` senders. With `ratePerSecond`, callback i is due at
 * start + i / rate (an open-loop arrival rate, the same for every receiver compared) and its latency
 * counts from when it was due, so a receiver that falls behind is charged for the wait.
 */
export async function runLoad(
  baseUrl: string,
  callbacks: readonly SampleRequest[],
  concurrency: number,
  ratePerSecond?: number,
  /** Called as each callback is acknowledged: its index, and when its 200 was read (epoch ms, sub-millisecond). */
  onAcknowledged?: (index: number, atMs: number) => void,
): Promise<LoadResult> {
  const base = new URL(baseUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latenciesMs: number[] = [];
  const failures: string[] = [];
  let next = 0;
  let acknowledged = 0;
  let failed = 0;
  const startedAt = performance.now();
  const sender = async () => {
    while (next < callbacks.length) {
      const index = next++;
      const callback = callbacks[index];
      let started = performance.now();
      if (ratePerSecond) {
        const due = startedAt + (index * 1000) / ratePerSecond;
        if (due > started) await new Promise((resolve) => setTimeout(resolve, due - started));
        started = due;
      }
      try {
        const { status, body } = await send(agent, base, callback);
        if (status === 200 && body.includes('"received":true')) {
          const answered = performance.now();
          latenciesMs.push(answered - started);
          acknowledged++;
          onAcknowledged?.(index, performance.timeOrigin + answered);
        } else {
          failed++;
          if (failures.length < 5) failures.push(`${status} ${body.slice(0, 200)}`);
        }
      } catch (error) {
        failed++;
        if (failures.length < 5) failures.push((error as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, sender));
  const endedAt = performance.now();
  agent.destroy();
  return { sent: callbacks.length, acknowledged, failed, failures, startedAt, endedAt, latenciesMs };
}
