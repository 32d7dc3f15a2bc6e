import { findProvider } from '../providers/index.ts';
import type { AnyProvider, ConfirmContext, EventFacts } from '../providers/provider.ts';
import { shortHash } from './hash.ts';
import type { Logger } from './log.ts';
import { maskPhoneNumbers } from './log.ts';
import { QUEUE, TABLE, keys } from './pipeline-definition.ts';
import { DependencyError } from './errors.ts';
import { requestOf, withBase64Body, type QueueMessage } from './queue-message.ts';
import type { SecretCache } from './secrets.ts';
import { storable } from './storable.ts';
import { applyEvent, type ConfirmationKind, type PlacedStatus, type StateChange } from './state.ts';
import type { CallbackStore, Item } from './store.ts';

export interface WorkerDependencies {
  readonly store: CallbackStore;
  readonly secrets: SecretCache;
  readonly confirm: ConfirmContext;
  readonly now: () => Date;
  readonly log: Logger;
  readonly retention: { readonly eventDays: number; readonly sensitiveHours: number };
  /**
   * Receives during which a provider's "not found" is treated as "not known yet" and retried; on the
   * last one it becomes the verdict (recorded, never applied). Default QUEUE.notFoundAttempts.
   */
  readonly notFoundAttempts?: number;
}

/** What happened to one queued callback. Faults are thrown instead (the record is retried). */
export type WorkerResult =
  | {
      readonly kind: 'stored' | 'duplicate';
      readonly subjectId: string;
      /** Whether the subject's state item changed. */
      readonly stateChanged: boolean;
      readonly confirmation?: ConfirmationKind;
    }
  | { readonly kind: 'quarantined' | 'quarantine_duplicate'; readonly reason: string };

/**
 * DynamoDB refuses items over 400 KB. A quarantined message whose text JSON escapes heavily (NUL,
 * control characters) is kept with its body in base64 instead, and an event payload that would
 * push its item past the limit beside the confirmed copy is left out (the confirmed copy, which is
 * what is believed, stays).
 */
const MAX_STORED_JSON_BYTES = 340 * 1024;

/** Retries of the optimistic state write when another record for the same subject wins the race. */
const MAX_STATE_ATTEMPTS = 10;

function expiresAt(now: Date, seconds: number): number {
  return Math.floor(now.getTime() / 1000) + Math.round(seconds);
}

function place(facts: EventFacts, receivedAt: string): PlacedStatus {
  return {
    status: facts.status,
    outcome: facts.outcome,
    terminal: facts.terminal,
    statusAt: facts.statusAt ?? receivedAt,
    rank: facts.rank,
  };
}

/** The payload to believe: the one ingest parsed, or a re-parse of the raw bytes (reprocessing). */
function payloadOf(provider: AnyProvider, message: QueueMessage) {
  if (message.quarantine) return { ok: false as const, reason: message.quarantine.reason, issues: message.quarantine.issues };
  if (message.payload !== undefined) return { ok: true as const, payload: message.payload };
  return provider.parse(requestOf(message));
}

async function storeQuarantined(message: QueueMessage, reason: string, issues: readonly string[], deps: WorkerDependencies) {
  const now = deps.now();
  const contentHash = shortHash(`${message.raw.body ?? message.raw.bodyBase64 ?? ''}?${message.raw.query}`);
  const created = await deps.store.putOnce({
    ...keys.quarantine(message.provider, contentHash),
    [TABLE.outcomeIndex.partitionKey]: keys.outcome(message.provider, 'quarantined'),
    updatedAt: message.receivedAt,
    provider: message.provider,
    reason,
    issues,
    receivedAt: message.receivedAt,
    requestId: message.requestId,
    sourceIp: message.sourceIp,
    /** The whole queue message, so `reprocess` can run it through the worker after a schema fix. */
    message: Buffer.byteLength(JSON.stringify(message)) > MAX_STORED_JSON_BYTES ? JSON.stringify(withBase64Body(message)) : JSON.stringify(message),
    [TABLE.ttlAttribute]: expiresAt(now, deps.retention.eventDays * 86_400),
  });
  deps.log.warn('quarantined', {
    provider: message.provider,
    requestId: message.requestId,
    reason,
    duplicate: created === 'exists',
  });
  return { kind: created === 'created' ? ('quarantined' as const) : ('quarantine_duplicate' as const), reason };
}

/**
 * Store one queued callback: the event once (conditional put on its key), then move the subject's
 * state forward. Every step is idempotent, so a redelivery after a crash between two writes
 * converges on the same items.
 */
export async function processMessage(message: QueueMessage, deps: WorkerDependencies, receiveCount = 1): Promise<WorkerResult> {
  const provider = findProvider(message.provider);
  if (!provider) return storeQuarantined(message, `unknown provider "${message.provider}"`, [], deps);
  const parsed = payloadOf(provider, message);
  if (!parsed.ok) return storeQuarantined(message, parsed.reason, parsed.issues, deps);

  const facts = provider.describe(parsed.payload);
  const eventKey = keys.event(provider.id, facts.subjectId, facts.eventKey);

  // Ask the provider before believing the claim. A stored verdict is reused on redelivery, so a
  // provider retry does not cost another status call; a stored not_found is asked again, since the
  // transfer may have become known since.
  let confirmation: ConfirmationKind | undefined;
  let believed: EventFacts | undefined = facts;
  let confirmedPayload: unknown;
  if (provider.confirm) {
    const existing = await deps.store.getItem(eventKey);
    if (existing?.confirmation && existing.confirmation !== 'not_found') {
      confirmation = existing.confirmation as ConfirmationKind;
      // Absent when the answer was the callback's own payload (stored once, below).
      confirmedPayload = existing.confirmedPayload ?? existing.payload;
    } else {
      const secret = await deps.secrets.get(provider);
      const verdict = await provider.confirm(parsed.payload, secret, deps.confirm);
      const attempts = deps.notFoundAttempts ?? QUEUE.notFoundAttempts;
      if (verdict.kind === 'not_found' && receiveCount < attempts) {
        // A callback can overtake the status endpoint's own view of a new transfer: retry with
        // back-off before taking "not found" for an answer.
        throw new DependencyError(provider.id, `status endpoint does not know this transfer yet (attempt ${receiveCount} of ${attempts})`);
      }
      confirmation = verdict.kind;
      confirmedPayload = verdict.kind === 'not_found' ? undefined : verdict.payload;
    }
    believed = confirmedPayload === undefined ? undefined : provider.describe(confirmedPayload);
  }

  const now = deps.now();
  const storedConfirmed = storable(confirmedPayload);
  let storedPayload = storable(parsed.payload);
  const payloadJson = JSON.stringify(storedPayload) ?? '';
  const confirmedJson = JSON.stringify(storedConfirmed) ?? '';
  const payloadBytes = Buffer.byteLength(payloadJson);
  const tooLarge = payloadBytes + Buffer.byteLength(confirmedJson) > MAX_STORED_JSON_BYTES;
  if (tooLarge) storedPayload = { omitted: 'too large to store beside the rest of the event', bytes: payloadBytes };
  // TemboPlus usually answers with exactly the callback's body: kept once, not twice, so the event
  // item stays within one 1 KB write unit. A confirmed event without confirmedPayload means this.
  const answerIsPayload = !tooLarge && confirmedPayload !== undefined && confirmedJson === payloadJson;
  const retentionSeconds = facts.sensitive ? deps.retention.sensitiveHours * 3600 : deps.retention.eventDays * 86_400;
  const eventItem: Item = {
    ...eventKey,
    provider: provider.id,
    subjectId: facts.subjectId,
    eventKey: facts.eventKey,
    status: facts.status,
    statusAt: facts.statusAt,
    receivedAt: message.receivedAt,
    requestId: message.requestId,
    sourceIp: message.sourceIp,
    headers: message.headers,
    payload: storedPayload,
    storedAt: now.toISOString(),
    ...(confirmation
      ? { confirmation, confirmedStatus: believed?.status, ...(answerIsPayload ? {} : { confirmedPayload: storedConfirmed }) }
      : {}),
    [TABLE.ttlAttribute]: expiresAt(now, retentionSeconds),
  };
  const created = await deps.store.putOnce(eventItem);

  const change: StateChange = {
    provider: provider.id,
    subjectId: facts.subjectId,
    eventHash: shortHash(facts.eventKey),
    placed: believed ? place(believed, message.receivedAt) : undefined,
    confirmation,
  };
  let stateChanged = false;
  for (let attempt = 1; ; attempt++) {
    const current = await deps.store.getState(provider.id, facts.subjectId);
    const next = applyEvent(current, change, now.toISOString());
    if (!next) break;
    if ((await deps.store.putState(next, current?.version)) === 'written') {
      stateChanged = next.status !== current?.status || next.confirmation !== current?.confirmation;
      break;
    }
    if (attempt >= MAX_STATE_ATTEMPTS) throw new Error(`state of ${provider.id} subject kept changing under us; will retry`);
  }

  const result = {
    kind: created === 'created' ? ('stored' as const) : ('duplicate' as const),
    subjectId: facts.subjectId,
    stateChanged,
    ...(confirmation ? { confirmation } : {}),
  };
  deps.log.info('stored', {
    provider: provider.id,
    requestId: message.requestId,
    subjectId: maskPhoneNumbers(facts.subjectId),
    status: facts.status,
    result: result.kind,
    stateChanged,
    ...(confirmation ? { confirmation, confirmedStatus: believed?.status } : {}),
  });
  return result;
}
