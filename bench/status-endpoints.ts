import type { AnyProvider, LookupLimits } from '../functions/providers/provider.ts';
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

/** A provider's status endpoint answered in-process: told what to answer as the benchmark goes, counting the requests. */
export interface InProcessEndpoint {
  readonly fetch: typeof fetch;
  /** From now on, answer this about its subject (an answer as the kit's `statusAnswer` makes it). */
  tell(answer: unknown): void;
  /** Status requests received so far. */
  requests(): number;
}

/**
 * A `fetch` answering the kit's status requests in-process, each subject as it was told. With
 * `refusals`, the simulation's own refusals are played as well (TeleSign's messaging endpoint
 * answers 404 about a Verify reference, so the question goes on to the verify endpoint, as it does
 * at TeleSign): the requests then count what a provider really gets. Without them the stand-in
 * adds as little CPU as it can to the worker it times.
 */
export function inProcessEndpoint(kit: ProviderKit, secret: Record<string, unknown>, options: { refusals?: boolean } = {}): InProcessEndpoint {
  const simulation = kit.statusSimulation!(secret);
  const answers = new Map<string, unknown>();
  let requests = 0;
  const fetcher = (async (input: string | URL | Request, init?: RequestInit) => {
    requests++;
    const url = new URL(input instanceof Request ? input.url : String(input));
    // The request as sent: some providers name the subject in the body (Identomat's session_token).
    const headers = Object.fromEntries(new Headers(init?.headers).entries());
    const sent = typeof init?.body === 'string' ? Buffer.from(init.body) : init?.body instanceof Uint8Array ? Buffer.from(init.body) : Buffer.alloc(0);
    const request = { method: init?.method ?? 'GET', path: url.pathname, query: url.searchParams, headers, body: sent };
    const subjectId = simulation.subjectOf(request);
    const refused = options.refusals && subjectId !== undefined ? simulation.refuse(request) : undefined;
    const { status, body } =
      refused ?? (subjectId === undefined ? { status: 404, body: { error: 'not_found' } } : answers.has(subjectId) ? simulation.found(answers.get(subjectId)) : simulation.notFound(subjectId));
    return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
  return {
    fetch: fetcher,
    tell: (answer) => void answers.set(simulation.subjectOfAnswer(answer), answer),
    requests: () => requests,
  };
}

/** `inProcessEndpoint` answering every sample's subject as the sample claims (every callback confirmed). */
export function inProcessStatusEndpoint(kit: ProviderKit, secret: Record<string, unknown>, samples: readonly Sample[], options: { refusals?: boolean } = {}): typeof fetch {
  const endpoint = inProcessEndpoint(kit, secret, options);
  for (const sample of samples) endpoint.tell(kit.statusAnswer!(sample));
  return endpoint.fetch;
}

/**
 * Run `measure` with the provider's status requests unpaced. The worker spaces its requests to a
 * provider (`lookupLimits.perSecond`, 10 a second by default) so a burst never meets a 429; timing
 * CPU through that spacing would mostly time the process waiting (and V8 collecting garbage while
 * it is idle). The pacing code still runs; only its waits go. The cost model adds the status
 * endpoint's latency as a wait of its own.
 */
export async function unpaced<T>(provider: AnyProvider, measure: () => Promise<T>): Promise<T> {
  const target = provider as { lookupLimits?: LookupLimits };
  const limits = target.lookupLimits;
  target.lookupLimits = { ...limits, perSecond: Number.MAX_SAFE_INTEGER, maxConcurrent: Number.MAX_SAFE_INTEGER };
  try {
    return await measure();
  } finally {
    target.lookupLimits = limits;
  }
}
