import type { CallbackRequest } from '../providers/provider.ts';
import { SQS_REFUSED } from '../shared/sqs-characters.ts';
import * as z from '../shared/zod.ts';

/**
 * What ingest puts on the queue for one callback: enough for the worker to re-parse it later
 * (raw body or query exactly as received) plus the parsed payload.
 */
export const QueueMessageSchema = z.object({
  v: z.literal(1),
  provider: z.string(),
  receivedAt: z.string(),
  requestId: z.string(),
  sourceIp: z.string(),
  method: z.string(),
  /** The few request headers worth keeping (content type, user agent, TemboPlus's x-request-id, the provider's keptHeaders). */
  headers: z.record(z.string(), z.string()),
  /** The route's path parameters other than a secret token (`{source}`), which the callback's meaning may depend on. */
  pathParameters: z.optional(z.record(z.string(), z.string())),
  raw: z.object({
    /** The body as UTF-8 text, when it is valid UTF-8 (secrets the provider puts in it scrubbed). */
    body: z.optional(z.string()),
    /** The body in base64 when it is not valid UTF-8. */
    bodyBase64: z.optional(z.string()),
    query: z.string(),
  }),
  /** The parsed, validated payload; absent when quarantined or when it would not fit the message. */
  payload: z.optional(z.unknown()),
  /** Set when the sender was authentic but the body did not parse: kept, flagged, never dropped. */
  quarantine: z.optional(z.object({ reason: z.string(), issues: z.array(z.string()) })),
  /**
   * Set by `reprocess`: the sort key of the quarantine item the message was put back from. Quarantined
   * again, it is kept under a key of its own (the worker's quarantineIdentity reads this), so
   * reprocess removing the old item once the queue accepted the message never removes the one copy.
   */
  reprocessOf: z.optional(z.string()),
  /**
   * Set by `reprocess` with reprocessOf: when the item it was put back from expires (epoch seconds,
   * its TTL). Quarantined again, the new item expires no later: putting a callback back never keeps
   * it longer than its retention (a live code's 24 h above all), however often reprocess runs.
   */
  reprocessExpiresAt: z.optional(z.number()),
});
export type QueueMessage = z.infer<typeof QueueMessageSchema>;

/**
 * A quarantined callback as `reprocess` puts it back on the queue: as it was received (no quarantine
 * flag, no stale parse: the worker re-parses the raw bytes with today's code), naming the item it
 * came from (`quarantineKey`, its sort key) so that a second quarantine does not land on that item,
 * and when that item expires (`expiresAt`, its TTL) so that a second quarantine expires no later.
 */
export function requeuedFromQuarantine(message: QueueMessage, quarantineKey: string, expiresAt?: number): QueueMessage {
  const { quarantine: _quarantine, payload: _payload, reprocessOf: _earlier, reprocessExpiresAt: _earlierExpiry, ...rest } = message;
  return { ...rest, reprocessOf: quarantineKey, ...(expiresAt === undefined ? {} : { reprocessExpiresAt: expiresAt }) };
}

/**
 * A message as SQS takes it: JSON, with U+FFFE and U+FFFF escaped (JSON.stringify leaves them as
 * they are, and SQS refuses a message holding one; JSON.parse restores them). A body received with
 * one is queued by ingest and kept by the worker as it came, so whatever queues it again does so here.
 */
export function queueText(message: QueueMessage): string {
  return JSON.stringify(message).replace(SQS_REFUSED, (char) => `\\u${char.charCodeAt(0).toString(16)}`);
}

/**
 * A re-check on the queue (`kind: recheck`): the subject the sweep found due, for the worker to ask
 * its provider about again. Shares the queue (and its DLQ) with callbacks.
 */
export const RecheckMessageSchema = z.object({
  v: z.literal(1),
  kind: z.literal('recheck'),
  provider: z.string(),
  subjectId: z.string(),
  part: z.optional(z.string()),
  /** When the sweep picked it (ISO-8601). */
  at: z.string(),
  /**
   * The lease the sweep took (the `recheckAt` it wrote). A copy whose lease is no longer the state's
   * was queued again after its lease ended (a worker backlog): it is skipped, so one due re-check is
   * asked and counted once. Absent in messages queued before this field existed.
   */
  lease: z.optional(z.string()),
  /** The re-checks the subject had when leased: with the lease, what tells this copy's step from a later one. */
  rechecks: z.optional(z.number()),
});
export type RecheckMessage = z.infer<typeof RecheckMessageSchema>;

/** Headers copied into the message; everything else (Authorization above all) stays out. */
export const KEPT_HEADERS = ['content-type', 'user-agent', 'x-request-id'] as const;

/** The raw body as the message carries it. */
export function rawBodyOf(message: Pick<QueueMessage, 'raw'>): Buffer {
  if (message.raw.bodyBase64 !== undefined) return Buffer.from(message.raw.bodyBase64, 'base64');
  return Buffer.from(message.raw.body ?? '', 'utf8');
}

/**
 * The same message with its raw body in base64: at most 4/3 of the body's size, where JSON can
 * escape text to six times its size (`\u0000`). The bytes are those of the text as queued
 * (secrets already scrubbed).
 */
export function withBase64Body(message: QueueMessage): QueueMessage {
  if (message.raw.body === undefined) return message;
  const { body, ...raw } = message.raw;
  return { ...message, raw: { ...raw, bodyBase64: Buffer.from(body, 'utf8').toString('base64') } };
}

/** The callback as it was received, rebuilt from its message, so it can be parsed again. */
export function requestOf(message: QueueMessage): CallbackRequest {
  return {
    method: message.method,
    headers: message.headers,
    body: rawBodyOf(message),
    rawQuery: message.raw.query,
    ...(message.pathParameters ? { pathParameters: message.pathParameters } : {}),
    sourceIp: message.sourceIp,
    requestId: message.requestId,
    receivedAt: message.receivedAt,
  };
}
