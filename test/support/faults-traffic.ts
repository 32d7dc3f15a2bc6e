import { createHash } from 'node:crypto';
import { shortHash } from '../../functions/shared/hash.ts';
import { judgeClaim, placeStatus, resolveEventKey } from '../../functions/core/events.ts';
import { applyObservations, type Observation, type StateItem, type Verdict } from '../../functions/core/state.ts';
import { getProvider } from '../../functions/providers/index.ts';
import type { AnyProvider } from '../../functions/providers/provider.ts';
import type { ProviderId } from '../../functions/providers/index.ts';
import { authenticRequest, listSamples, type SampleRequest } from '../../local/samples.ts';
import type { testSecrets } from './e2e-pipeline.ts';
import type { StoredSubject } from './faults-rig.ts';

/**
 * Callback traffic for the fault suite: subjects of every provider living through a few statuses,
 * built as each provider sends them (signed, tokens filled in), and the state the forward-only
 * rule must end on, computed with the worker's own `applyObservations`.
 */

export type TestSecrets = ReturnType<typeof testSecrets>;

export const PROVIDER_IDS: readonly ProviderId[] = ['telesign', 'esms', 'temboplus', 'relid', 'identomat'];

/** One callback as a provider would send it. */
export interface Callback {
  readonly provider: ProviderId;
  readonly subjectId: string;
  readonly eventKey: string;
  readonly request: SampleRequest;
  /** The JSON body before the provider dresses it (TemboPlus: the transfer as the status endpoint knows it). */
  readonly body?: Record<string, unknown>;
  /** The receiver's secret, for providers whose secret decides what a status means (REL-ID's labels). */
  readonly secret: unknown;
}

/** `provider|subjectId`: one state item. */
export const subjectKey = (callback: { provider: string; subjectId: string }) => `${callback.provider}|${callback.subjectId}`;
/** `provider|subjectId|eventKey`: one event item. */
export const eventId = (callback: { provider: string; subjectId: string; eventKey: string }) =>
  `${callback.provider}|${callback.subjectId}|${callback.eventKey}`;

const hex = (seed: string, length: number) => createHash('sha256').update(seed).digest('hex').slice(0, length);
const at = (base: number, step: number) => new Date(base + step * 60_000);

const TEMBOPLUS_SAMPLE = (): Record<string, unknown> =>
  JSON.parse(listSamples('temboplus').find((sample) => sample.name === 'remittance-completed')!.body!.toString());

/** What the provider's parser and `describe` make of a request: the facts the worker stores. */
export function factsOf(provider: AnyProvider, request: SampleRequest, secret?: unknown) {
  const query = request.path.includes('?') ? request.path.slice(request.path.indexOf('?') + 1) : '';
  const parsed = provider.parse({
    method: request.method,
    headers: request.headers,
    body: request.body ?? Buffer.alloc(0),
    rawQuery: query,
    sourceIp: '127.0.0.1',
    requestId: 'fault-suite',
    receivedAt: new Date().toISOString(),
  });
  if (!parsed.ok) throw new Error(`generated ${provider.id} callback does not parse: ${parsed.reason} ${parsed.issues.join('; ')}`);
  return provider.describe(parsed.payload, secret);
}

function dress(providerId: ProviderId, secrets: TestSecrets, content: { body?: Record<string, unknown>; query?: string }): Callback {
  const provider = getProvider(providerId);
  const secret = provider.secretSchema.parse(secrets[providerId]);
  const request = authenticRequest(provider, secret, content.body ? { body: Buffer.from(JSON.stringify(content.body)) } : { query: content.query });
  const facts = factsOf(provider, request, secret);
  // Reports of the current status (Identomat's session-change) are stored under the change they
  // belong to: a life holds one, so it is change #1 whatever the arrival order, and a re-send is its retry.
  const { eventKey } = resolveEventKey(facts, undefined, new Date().toISOString());
  return { provider: providerId, subjectId: facts.subjectId, eventKey, request, secret, ...(content.body ? { body: content.body } : {}) };
}

/**
 * The callbacks one subject receives over its life, oldest first. Statuses within a life differ in
 * tier or rank (or carry provider time), so the final state does not depend on arrival order even
 * for providers that send no time (eSMS); an Identomat life has one status report (see below).
 */
export function subjectLife(providerId: ProviderId, secrets: TestSecrets, name: string): Callback[] {
  const base = Date.UTC(2026, 0, 1, 8) + (Number.parseInt(hex(name, 6), 16) % 86_400) * 1000;
  const succeeds = Number.parseInt(hex(`${name}/outcome`, 2), 16) % 3 !== 0;
  switch (providerId) {
    case 'telesign': {
      const reference_id = hex(`telesign/${name}`, 32).toUpperCase();
      const dlr = (code: number, step: number) => ({
        reference_id,
        status: { code, description: 'fault suite', updated_on: at(base, step).toUTCString() },
        errors: [],
        sub_resource: 'sms',
      });
      return [dlr(290, 0), dlr(203, 1), dlr(succeeds ? 200 : 207, 2)].map((body) => dress('telesign', secrets, { body }));
    }
    case 'esms': {
      const SMSID = `${hex(`esms/${name}`, 32)}250`;
      const final = succeeds ? 'SendStatus=5&SendSuccess=1&SendFailed=0' : 'SendStatus=4&SendSuccess=0&SendFailed=1';
      return [`SMSID=${SMSID}&SendStatus=2`, `SMSID=${SMSID}&SendStatus=7`, `SMSID=${SMSID}&${final}`].map((query) => dress('esms', secrets, { query }));
    }
    case 'temboplus': {
      const partnerReference = `FLT-${hex(`temboplus/${name}`, 12).toUpperCase()}`;
      const transfer = (status: string, statusCode: string, step: number, final = false) => ({
        ...TEMBOPLUS_SAMPLE(),
        partnerReference,
        status,
        statusCode,
        updatedAt: at(base, step).toISOString(),
        completedAt: final ? at(base, step).toISOString() : null,
        receiptNumber: final && status === 'COMPLETED' ? 'RCPT-FAULTS' : null,
      });
      return [
        transfer('CREATED', 'CREATED', 0),
        transfer('SUBMITTED', 'SUBMITTED', 1),
        succeeds ? transfer('COMPLETED', 'PAYMENT_SUCCESS', 2, true) : transfer('FAILED', 'PAYMENT_FAILED', 2, true),
      ].map((body) => dress('temboplus', secrets, { body }));
    }
    case 'relid': {
      const h = hex(`relid/${name}`, 32);
      const notification_uuid = `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
      const common = { user_id: 'fault-suite', notification_uuid, delivery_status: 'NOTIFIED', verification_mode: 'REL-ID' };
      return [
        { ...common, status: 'ACTIVE', response_code: 0, update_ts: at(base, 0).toISOString() },
        succeeds
          ? { ...common, status: 'UPDATED', response_code: 0, action_response: 'Approved', update_ts: at(base, 1).toISOString() }
          : { ...common, status: 'EXPIRED', response_code: 1, update_ts: at(base, 1).toISOString() },
      ].map((body) => dress('relid', secrets, { body }));
    }
    case 'identomat': {
      // One session-change per life: the latest report received is the session's status, so two
      // changes would make the final state depend on arrival order, which shuffled concurrent
      // traffic cannot promise (moves back are tested in test/integration/worker.test.ts). The
      // video update and the OTP instruction are stored and counted but place no status.
      const sessionId = hex(`identomat/${name}`, 40);
      return [
        { type: 'video-call-status-update', sessionId, roomId: 'room-faults', roomStatus: 'ended', compositionStatus: 'available', videoFileStatus: 'available', videoFileId: `vf-${hex(`identomat/${name}/file`, 8)}` },
        { type: 'one-time-password', sessionId, text: `Your code is ${Number.parseInt(hex(`identomat/${name}/code`, 4), 16) % 10_000}`, phoneNumber: '+995512345678' },
        { type: 'session-change', sessionId, result: succeeds ? 'APPROVED' : 'REJECTED' },
      ].map((body) => dress('identomat', secrets, { body }));
    }
  }
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
  /** TemboPlus transfers as the status endpoint must know them: each subject's latest status. */
  readonly transfers: readonly Record<string, unknown>[];
}

/**
 * `total` requests across the five providers: subjects in turn (each with its whole life), then
 * `duplicateRate` of the total as exact re-sends of random earlier callbacks, all shuffled.
 */
export function mixedTraffic(total: number, secrets: TestSecrets, options: { tag: string; seed: number; duplicateRate?: number; shuffled?: boolean }): Traffic {
  const random = seededRandom(options.seed);
  const duplicates = Math.round(total * (options.duplicateRate ?? 0));
  const distinct: Callback[] = [];
  const transfers = new Map<string, Record<string, unknown>>();
  for (let index = 0; distinct.length < total - duplicates; index += 1) {
    const providerId = PROVIDER_IDS[index % PROVIDER_IDS.length];
    const life = subjectLife(providerId, secrets, `${options.tag}-${index}`).slice(0, total - duplicates - distinct.length);
    distinct.push(...life);
    if (providerId === 'temboplus') transfers.set(life[0].subjectId, subjectLife(providerId, secrets, `${options.tag}-${index}`).at(-1)!.body!);
  }
  const sends = [...distinct];
  for (let i = 0; i < duplicates; i += 1) sends.push(distinct[Math.floor(random() * distinct.length)]);
  return { sends: options.shuffled === false ? sends : shuffle(sends, random), distinct, transfers: [...transfers.values()] };
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
 * The state each subject must end in after these distinct callbacks, in any order: the worker's
 * own `applyObservations` folded over them. TemboPlus claims are judged against `transfers` (what
 * the status endpoint answers) exactly as the worker does: the answer is placed, the verdict recorded.
 */
export function expectedStates(callbacks: readonly Callback[], transfers: readonly Record<string, unknown>[] = []): Map<string, StateItem> {
  const known = new Map(transfers.map((transfer) => [String(transfer.partnerReference), transfer]));
  const states = new Map<string, StateItem>();
  const receivedAt = new Date().toISOString();
  for (const callback of callbacks) {
    const provider = getProvider(callback.provider);
    const facts = factsOf(provider, callback.request, callback.secret);
    const key = subjectKey(callback);
    const current = states.get(key);
    const observations: Observation[] = [];
    const believed = provider.believesCallbacks !== false && facts.placesStatus !== false;
    const { eventKey, isChange } = resolveEventKey(facts, current, receivedAt);
    const placed = placeStatus(facts, receivedAt);
    observations.push({ hash: shortHash(eventKey), counts: true, source: 'callback', ...(believed ? { placed } : {}), ...(isChange ? { isChange } : {}) });
    let verdict: Verdict | undefined;
    if (provider.lookup) {
      const answer = known.get(callback.subjectId);
      if (!answer) verdict = { kind: 'not_found' };
      else {
        const answerFacts = factsOf(provider, { method: 'POST', path: '/', headers: {}, body: Buffer.from(JSON.stringify(answer)) }, callback.secret);
        const judged = { payload: answer, facts: answerFacts, placed: placeStatus(answerFacts, receivedAt) };
        verdict = judgeClaim(provider, { payload: callback.body!, facts, placed }, judged).verdict;
        observations.push({ hash: shortHash(`answer|${answerFacts.eventKey}`), counts: false, source: 'status-endpoint', placed: judged.placed });
      }
    }
    const next = applyObservations(current, { provider: callback.provider, subjectId: callback.subjectId }, observations, verdict, receivedAt);
    if (next) states.set(key, next);
  }
  return states;
}

/** Whether a provider sends its own status time (else the worker uses the receive time). */
export const sendsStatusTime = (providerId: ProviderId) => providerId !== 'esms' && providerId !== 'identomat';

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
export function assessStore(
  stored: ReadonlyMap<string, StoredSubject>,
  promised: readonly Callback[],
  transfers: readonly Record<string, unknown>[] = [],
): StoreAssessment {
  const expected = expectedStates(promised, transfers);
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
    const fields: (keyof typeof want)[] = ['status', 'outcome', 'terminal', 'eventCount', 'confirmation'];
    if (sendsStatusTime(want.provider as ProviderId)) fields.push('statusAt');
    const differs = fields.filter((field) => (state?.[field] ?? undefined) !== (want[field] ?? undefined));
    if (differs.length > 0) wrongState.push(`${key}: ${differs.map((f) => `${String(f)} ${String(state?.[f])} ≠ ${String(want[f])}`).join(', ')}`);
  }
  for (const id of promisedIds) {
    const key = id.split('|').slice(0, 2).join('|');
    if (stored.get(key)?.events.some((event) => `${key}|${String(event.eventKey)}` === id)) found += 1;
    else lost.push(id);
  }
  return { subjects: expected.size, promised: promisedIds.size, stored: found, lost, unpromised, miscounted, wrongState };
}
