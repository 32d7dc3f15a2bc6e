import { randomUUID } from 'node:crypto';
import { shortHash } from '../../functions/shared/hash.ts';
import { judgeClaim, placeStatus, resolveEventKey } from '../../functions/core/events.ts';
import { applyObservations, type Observation, type StateItem, type Verdict } from '../../functions/core/state.ts';
import { believesCallbacks, canAsk, type AnyProvider } from '../../functions/providers/provider.ts';
import { authenticRequest, type SampleRequest } from '../../local/samples.ts';
import { allKits, kitOf, type ProviderKit } from '../providers/index.ts';
import type { Content } from '../providers/kit.ts';
import type { StoredSubject } from './faults-rig.ts';
import { toRequest } from './unit-ingest.ts';

/**
 * Callback traffic for the fault suite: subjects of every provider living through a few statuses
 * (each kit's `life`), built as each provider sends them (signed, tokens filled in), and the state
 * the forward-only rule must end on, computed with the worker's own `applyObservations`. Nothing
 * here knows a provider: what differs between them is in their kits.
 */

/** The suite's secrets, keyed by provider id (the shape of a secrets file). */
export type Secrets = Readonly<Record<string, Record<string, unknown>>>;

/** One callback as a provider would send it. */
export interface Callback {
  readonly provider: string;
  readonly subjectId: string;
  readonly eventKey: string;
  readonly request: SampleRequest;
  /** The body or query before the provider dresses it (signature, token, key). */
  readonly content: Content;
  /** The receiver's secret, parsed: `describe` reads it for providers whose secret says what a status means. */
  readonly secret: unknown;
}

/** What a provider's status endpoint answers about a subject once its life is over. */
export interface Answer {
  readonly provider: string;
  readonly subjectId: string;
  /** The answer as the provider gives it (the kit's `statusAnswer`): what its simulated endpoint is told. */
  readonly answer: unknown;
}

/** One subject's life, dressed for sending. */
export interface Life {
  /** Its callbacks, oldest first. */
  readonly callbacks: readonly Callback[];
  /** What the status endpoint answers at the end, for providers the worker asks. */
  readonly answer?: Answer;
}

/** `provider|subjectId`: one state item. */
export const subjectKey = (callback: { provider: string; subjectId: string }) => `${callback.provider}|${callback.subjectId}`;
/** `provider|subjectId|eventKey`: one event item. */
export const eventId = (callback: { provider: string; subjectId: string; eventKey: string }) =>
  `${callback.provider}|${callback.subjectId}|${callback.eventKey}`;

/** What the provider's parser and `describe` make of a request: the payload and the facts the worker stores. */
export function readRequest(provider: AnyProvider, request: SampleRequest, secret?: unknown) {
  const parsed = provider.parse(toRequest(provider, request, { requestId: 'fault-suite', receivedAt: new Date().toISOString() }));
  if (!parsed.ok) throw new Error(`generated ${provider.id} callback does not parse: ${parsed.reason} ${parsed.issues.join('; ')}`);
  return { payload: parsed.payload as unknown, facts: provider.describe(parsed.payload, secret) };
}

function dress(kit: ProviderKit, secret: unknown, content: Content): Callback {
  const { provider } = kit;
  const request = authenticRequest(provider, secret as Record<string, unknown>, content);
  const { facts } = readRequest(provider, request, secret);
  // Reports of the current status (`reportsCurrent`) are stored under the change they belong to:
  // a life holds one, so it is change #1 whatever the arrival order, and a re-send is its retry.
  const { eventKey } = resolveEventKey(facts, undefined, new Date().toISOString());
  return { provider: provider.id, subjectId: facts.subjectId, eventKey, request, content, secret };
}

/**
 * One subject's life (the kit's `life`), its callbacks dressed as the provider sends them, and for
 * a provider the worker asks, what its status endpoint answers at the end: the kit's
 * `statusAnswer` of the last callback.
 */
export function subjectLife(kit: ProviderKit, secrets: Secrets, name: string): Life {
  const { provider } = kit;
  const raw = secrets[provider.id];
  if (!raw) throw new Error(`the suite's secrets have no "${provider.id}" entry`);
  const secret = provider.secretSchema.parse(raw);
  const contents = kit.life(name, raw);
  if (contents.length === 0) throw new Error(`${provider.id} kit: life "${name}" has no callback`);
  const callbacks = contents.map((content) => dress(kit, secret, content));
  const subjectIds = new Set(callbacks.map((callback) => callback.subjectId));
  if (subjectIds.size !== 1) throw new Error(`${provider.id} kit: life "${name}" is about ${subjectIds.size} subjects`);
  if (!provider.lookup) return { callbacks };
  if (!kit.statusAnswer) throw new Error(`${provider.id} kit: the worker asks its status endpoint, but the kit has no statusAnswer`);
  const answer = kit.statusAnswer(contents.at(-1)!);
  return { callbacks, answer: { provider: provider.id, subjectId: callbacks[0].subjectId, answer } };
}

/** A seeded generator (mulberry32), so a run's order can be replayed from its printed seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

export interface Traffic {
  /** Every request to send, duplicates included, in sending order. */
  readonly sends: readonly Callback[];
  /** The distinct callbacks (one per event key). */
  readonly distinct: readonly Callback[];
  /** What the status endpoints must answer (each subject's latest status), for providers the worker asks. */
  readonly answers: readonly Answer[];
}

/**
 * `total` requests across every provider (the kits in the registry's order): subjects in turn, each
 * with its whole life, then `duplicateRate` of the total as exact re-sends of random earlier
 * callbacks, all shuffled.
 */
export function mixedTraffic(total: number, secrets: Secrets, options: { tag: string; seed: number; duplicateRate?: number; shuffled?: boolean }): Traffic {
  const random = seededRandom(options.seed);
  const kits = allKits();
  const duplicates = Math.round(total * (options.duplicateRate ?? 0));
  const distinct: Callback[] = [];
  const answers: Answer[] = [];
  for (let index = 0; distinct.length < total - duplicates; index += 1) {
    const life = subjectLife(kits[index % kits.length], secrets, `${options.tag}-${index}`);
    // The last life may be cut short; its subject still ends where the provider says it does.
    distinct.push(...life.callbacks.slice(0, total - duplicates - distinct.length));
    if (life.answer) answers.push(life.answer);
  }
  const sends = [...distinct];
  for (let i = 0; i < duplicates; i += 1) sends.push(distinct[Math.floor(random() * distinct.length)]);
  return { sends: options.shuffled === false ? sends : shuffle(sends, random), distinct, answers };
}

export interface SendResult {
  readonly callback: Callback;
  /** HTTP status, or 0 when no answer came (connection failed, timed out). */
  readonly status: number;
  /** The answer's JSON `error` field, if any. */
  readonly error?: string;
  readonly ms: number;
}

/** Send one callback to the pipeline's HTTP API. */
export async function sendCallback(baseUrl: string, callback: Callback, timeoutMs = 30_000): Promise<SendResult> {
  const started = performance.now();
  const { request } = callback;
  try {
    const response = await fetch(`${baseUrl}${request.path}`, {
      method: request.method,
      headers: request.headers,
      ...(request.body ? { body: request.body } : {}),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    let error: string | undefined;
    try {
      error = (JSON.parse(text) as { error?: string }).error;
    } catch {
      error = 'answer is not JSON';
    }
    return { callback, status: response.status, ...(error ? { error } : {}), ms: performance.now() - started };
  } catch {
    return { callback, status: 0, ms: performance.now() - started };
  }
}

/** Send every callback from `senders` concurrent loops, in list order; results in list order. */
export async function sendAll(baseUrl: string, callbacks: readonly Callback[], senders: number, timeoutMs?: number): Promise<SendResult[]> {
  const results = new Array<SendResult>(callbacks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(senders, callbacks.length) }, async () => {
      while (next < callbacks.length) {
        const index = next++;
        results[index] = await sendCallback(baseUrl, callbacks[index], timeoutMs);
      }
    }),
  );
  return results;
}

/**
 * Send the callbacks spread evenly over `durationMs` (as callbacks keep coming during an outage),
 * each on its own schedule whatever the previous one's answer time; results in list order.
 */
export async function sendSpread(baseUrl: string, callbacks: readonly Callback[], durationMs: number): Promise<SendResult[]> {
  const started = Date.now();
  return Promise.all(
    callbacks.map(async (callback, index) => {
      const due = started + (index * durationMs) / callbacks.length;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now())));
      return sendCallback(baseUrl, callback);
    }),
  );
}

/** A percentile of the answer times, in milliseconds. */
export function percentileMs(results: readonly SendResult[], percentile: number): number {
  const sorted = results.map((result) => result.ms).sort((a, b) => a - b);
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((percentile / 100) * sorted.length) - 1)];
}

/** Count answers by status: `{ "200": 950, "503": 50 }`. */
export function statusCounts(results: readonly SendResult[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { status } of results) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

/** The distinct callbacks among the answered-200 ones: what the pipeline promised to store. */
export function acknowledged(results: readonly SendResult[]): Callback[] {
  const byEvent = new Map<string, Callback>();
  for (const { callback, status } of results) if (status === 200) byEvent.set(eventId(callback), callback);
  return [...byEvent.values()];
}

/**
 * The payload the worker gets from the provider's `lookup` when the status endpoint knows `answer`:
 * the provider's own reading of what the kit's simulation serves, through a fetch that serves it.
 */
async function lookedUp(provider: AnyProvider, subjectId: string, secret: Record<string, unknown>, answer: unknown): Promise<unknown> {
  const kit = kitOf(provider);
  if (!kit.statusSimulation) throw new Error(`${provider.id} kit: the worker asks its status endpoint, but the kit has no statusSimulation`);
  const served = kit.statusSimulation(secret).found(answer);
  const looked = await provider.lookup!({ subjectId }, secret, {
    fetch: async () => new Response(JSON.stringify(served.body), { status: served.status, headers: { 'content-type': 'application/json' } }),
    timeoutMs: 1000,
    newRequestId: () => randomUUID(),
  });
  if (looked.kind !== 'found') throw new Error(`${provider.id}: its lookup does not find the kit's answer about ${subjectId}`);
  return looked.payload;
}

/**
 * The state each subject must end in after these distinct callbacks, in any order: the worker's
 * own `applyObservations` folded over them. For providers the worker asks, each claim is judged
 * against `answers` (what the status endpoint answers) exactly as the worker does: the answer is
 * placed, the verdict recorded; a subject without an answer is `not_found`. `receivedAtOf` gives
 * each callback's receive time (by its place in the list); by default all are received now.
 */
export async function expectedStates(
  callbacks: readonly Callback[],
  answers: readonly Answer[] = [],
  receivedAtOf?: (index: number) => string,
): Promise<Map<string, StateItem>> {
  const now = new Date().toISOString();
  const known = new Map(answers.map((answer) => [subjectKey(answer), answer.answer]));
  const lookups = new Map<string, unknown>();
  const states = new Map<string, StateItem>();
  for (const [index, callback] of callbacks.entries()) {
    const receivedAt = receivedAtOf?.(index) ?? now;
    const { provider } = kitOf(callback.provider);
    const { payload, facts } = readRequest(provider, callback.request, callback.secret);
    const key = subjectKey(callback);
    const current = states.get(key);
    const observations: Observation[] = [];
    const asked = canAsk(provider, provider.secretSchema.parse(callback.secret));
    const believed = believesCallbacks(provider, asked) && facts.placesStatus !== false;
    const { eventKey, isChange } = resolveEventKey(facts, current, receivedAt);
    const placed = placeStatus(facts, receivedAt);
    observations.push({ hash: shortHash(eventKey), counts: true, source: 'callback', ...(believed ? { placed } : {}), ...(isChange ? { isChange } : {}) });
    let verdict: Verdict | undefined;
    // The worker asks on arrival only a provider it can ask (credentials, an opt-in) that asks then.
    if (asked && provider.lookupLimits?.onArrival !== false) {
      const body = known.get(key);
      if (body === undefined) verdict = { kind: 'not_found' };
      else {
        if (!lookups.has(key)) lookups.set(key, await lookedUp(provider, callback.subjectId, callback.secret as Record<string, unknown>, body));
        const answer = lookups.get(key);
        const answerFacts = provider.describe(answer, callback.secret);
        const judged = { payload: answer, facts: answerFacts, placed: placeStatus(answerFacts, receivedAt) };
        verdict = judgeClaim(provider, { payload, facts, placed }, judged).verdict;
        observations.push({ hash: shortHash(`answer|${answerFacts.eventKey}`), counts: false, source: 'status-endpoint', placed: judged.placed });
      }
    }
    const next = applyObservations(current, { provider: callback.provider, subjectId: callback.subjectId }, observations, verdict, receivedAt);
    if (next) states.set(key, next);
  }
  return states;
}

/**
 * How a stored state differs from the expected one, in the fields the suite holds the pipeline to:
 * status, outcome, terminal, eventCount, confirmation, and the status time for providers that send
 * their own (otherwise it is the receive time, which no two runs share).
 */
export function stateDifferences(state: Readonly<Record<string, unknown>> | StateItem | undefined, want: StateItem): string[] {
  const fields: (keyof StateItem)[] = ['status', 'outcome', 'terminal', 'eventCount', 'confirmation'];
  if (kitOf(want.provider).sendsStatusTime) fields.push('statusAt');
  const got = (field: keyof StateItem) => (state as Readonly<Record<string, unknown>> | undefined)?.[field];
  return fields
    .filter((field) => (got(field) ?? undefined) !== (want[field] ?? undefined))
    .map((field) => `${String(field)} ${String(got(field))} ≠ ${String(want[field])}`);
}

export interface StoreAssessment {
  readonly subjects: number;
  /** Distinct events the pipeline promised (answered 200). */
  readonly promised: number;
  /** Of those, how many have their event item. */
  readonly stored: number;
  /** Promised events with no event item. */
  readonly lost: string[];
  /** Event items of these subjects that were never promised (e.g. queued although 503 was answered). */
  readonly unpromised: string[];
  /** Subjects whose state counted an event more than once, or counted one that is not stored. */
  readonly miscounted: string[];
  /** Subjects whose state differs from the forward-only rule applied to what was promised. */
  readonly wrongState: string[];
}

/**
 * Compare the table with what was promised: every answered-200 callback's event stored once
 * (event items are keyed by event, so "once" is the state's eventCount matching its items), and
 * every subject's state equal to `expectedStates` of the same callbacks.
 */
export async function assessStore(
  stored: ReadonlyMap<string, StoredSubject>,
  promised: readonly Callback[],
  answers: readonly Answer[] = [],
): Promise<StoreAssessment> {
  const expected = await expectedStates(promised, answers);
  const promisedIds = new Set(promised.map(eventId));
  const lost: string[] = [];
  const unpromised: string[] = [];
  const miscounted: string[] = [];
  const wrongState: string[] = [];
  let found = 0;
  for (const [key, want] of expected) {
    const subject = stored.get(key);
    const eventIds = new Set((subject?.events ?? []).map((event) => `${key}|${String(event.eventKey)}`));
    for (const id of eventIds) if (!promisedIds.has(id)) unpromised.push(id);
    const state = subject?.state;
    if (!state || Number(state.eventCount) !== eventIds.size || (subject?.events.length ?? 0) !== eventIds.size) miscounted.push(key);
    const differs = stateDifferences(state, want);
    if (differs.length > 0) wrongState.push(`${key}: ${differs.join(', ')}`);
  }
  for (const id of promisedIds) {
    const key = id.split('|').slice(0, 2).join('|');
    if (stored.get(key)?.events.some((event) => `${key}|${String(event.eventKey)}` === id)) found += 1;
    else lost.push(id);
  }
  return { subjects: expected.size, promised: promisedIds.size, stored: found, lost, unpromised, miscounted, wrongState };
}
