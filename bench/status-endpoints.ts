import type { RuntimeInfo } from '../local/pipeline.ts';
import type { Sample } from '../local/samples.ts';
import { allKits, type ProviderKit } from '../test/providers/index.ts';
import type { BenchCallback, BenchSecrets } from './callbacks.ts';

/**
 * The status endpoints of the providers the worker asks (`provider.lookup`), as the benchmark
 * drives them: the simulators `npm start` runs with `--simulators` (local/status-simulator.ts over
 * each kit's `statusSimulation`), told what to answer and when to answer late through their
 * control routes; and an in-process stand-in of the same simulation, for timing the worker without
 * a network.
 */

/** The kits of the providers whose status endpoint the worker asks, in the registry's order. */
export function askedKits(): ProviderKit[] {
  return allKits()
    .filter((kit) => kit.provider.lookup)
    .map((kit) => {
      if (!kit.statusSimulation || !kit.statusAnswer) throw new Error(`${kit.provider.id}: the worker asks its status endpoint, but its kit simulates none`);
      return kit;
    });
}

/** A control request to the simulator `npm start` runs for the kit's provider. */
async function control(info: RuntimeInfo, kit: ProviderKit, secret: Record<string, unknown>, method: 'POST' | 'PUT', path: string, body: unknown) {
  const url = info.simulators[kit.provider.id];
  if (!url) throw new Error(`the local pipeline simulates no ${kit.provider.displayName} status endpoint (start it with --simulators)`);
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${kit.statusSimulation!(secret).controlToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (response.status !== 200) throw new Error(`${kit.provider.displayName} simulator refused ${method} ${path}: ${response.status} ${await response.text()}`);
}

/**
 * Tell the simulated status endpoints about the callbacks' subjects, each answered exactly as its
 * callback claims, so that every callback is confirmed. Callbacks of other providers are skipped.
 */
export async function reportAnswers(info: RuntimeInfo, secrets: BenchSecrets, callbacks: readonly BenchCallback[]): Promise<void> {
  for (const kit of askedKits()) {
    const mine = callbacks.filter((callback) => callback.provider.id === kit.provider.id);
    let next = 0;
    // Thousands of subjects, one request each: 16 in flight.
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < mine.length) await control(info, kit, secrets[kit.provider.id], 'POST', '/__simulator/answers', kit.statusAnswer!(mine[next++].sample));
      }),
    );
  }
}

/** Make a simulated status endpoint answer `delayMs` late (null: on time again). */
export function delayAnswers(info: RuntimeInfo, secrets: BenchSecrets, kit: ProviderKit, delayMs: number | null): Promise<void> {
  return control(info, kit, secrets[kit.provider.id], 'PUT', '/__simulator/fault', delayMs === null ? null : { delayMs });
}

/**
 * A `fetch` answering the kit's status requests in-process, each subject as its sample claims (every
 * callback confirmed); the simulation's own checks (credentials, request ids) are left out, so the
 * stand-in adds little CPU to the worker it times.
 */
export function inProcessStatusEndpoint(kit: ProviderKit, secret: Record<string, unknown>, samples: readonly Sample[]): typeof fetch {
  const simulation = kit.statusSimulation!(secret);
  const answers = new Map<string, unknown>();
  for (const sample of samples) {
    const answer = kit.statusAnswer!(sample);
    answers.set(simulation.subjectOfAnswer(answer), answer);
  }
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    // The request as sent: some providers name the subject in the body (Identomat's session_token).
    const headers = Object.fromEntries(new Headers(init?.headers).entries());
    const sent = typeof init?.body === 'string' ? Buffer.from(init.body) : init?.body instanceof Uint8Array ? Buffer.from(init.body) : Buffer.alloc(0);
    const subjectId = simulation.subjectOf({ method: init?.method ?? 'GET', path: url.pathname, query: url.searchParams, headers, body: sent });
    const { status, body } =
      subjectId === undefined ? { status: 404, body: { error: 'not_found' } } : answers.has(subjectId) ? simulation.found(answers.get(subjectId)) : simulation.notFound(subjectId);
    return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
}
