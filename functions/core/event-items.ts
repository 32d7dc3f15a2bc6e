import { gzipSync } from 'node:zlib';
import type { EventFacts } from '../providers/provider.ts';
import { ITEM_BUDGET, itemSize } from './item-size.ts';
import { TABLE, keys } from './pipeline-definition.ts';
import type { PlacedStatus } from './state.ts';
import { ItemTooLargeError } from '../shared/errors.ts';
import { storable } from './storable.ts';
import type { CallbackStore, Item } from './store.ts';

/** How long event items are kept: most for `eventDays`, live codes and contacts for `sensitiveHours`. */
export interface Retention {
  readonly eventDays: number;
  readonly sensitiveHours: number;
}

/** Bytes per item when a body too large for one item even compressed is kept in several. */
const CHUNK_BYTES = 300 * 1024;

/** The TTL attribute's value: epoch seconds `seconds` from `now`. */
export function expiresAt(now: Date, seconds: number): number {
  return Math.floor(now.getTime() / 1000) + Math.round(seconds);
}

export function retentionSeconds(sensitive: boolean | undefined, retention: Retention): number {
  return sensitive ? retention.sensitiveHours * 3600 : retention.eventDays * 86_400;
}

/**
 * Keep an item within DynamoDB's limit, counted DynamoDB's way: content too large as attributes
 * (`payload`, `headers`, a quarantined `message`) is replaced by a note, and the exact bytes are
 * kept gzip-compressed in `gzipName`, or in chunk items `CHUNK#<sk>#n` when even that does not fit
 * (`readStoredBytes` puts them back together). Nothing authentic is dropped for its size.
 */
function fitted(item: Item, raw: () => Buffer, gzipName: 'rawGzip' | 'messageGzip', refused = false): { item: Item; chunks: Item[] } {
  const size = itemSize(item);
  if (size <= ITEM_BUDGET && !refused) return { item, chunks: [] };
  const { payload: _payload, headers: _headers, message: _message, ...rest } = item;
  const gzip = gzipSync(raw());
  const note = { reason: 'too large for one DynamoDB item', itemBytes: size, bytesIn: gzipName, ...(refused ? { refusedByDynamoDb: true } : {}) };
  if (itemSize(rest) + gzip.length + 64 <= ITEM_BUDGET) return { item: { ...rest, omitted: note, [gzipName]: gzip }, chunks: [] };
  const chunks: Item[] = [];
  for (let offset = 0, n = 0; offset < gzip.length; offset += CHUNK_BYTES, n++) {
    chunks.push({ pk: item.pk, sk: `CHUNK#${String(item.sk)}#${n}`, gzipChunk: gzip.subarray(offset, offset + CHUNK_BYTES), [TABLE.ttlAttribute]: item[TABLE.ttlAttribute] });
  }
  return { item: { ...rest, omitted: note, [`${gzipName}Chunks`]: chunks.length }, chunks };
}

/**
 * Store an item once, fitted to DynamoDB's item limit (chunks first, so the item never points at
 * missing ones). An item sized within the budget that DynamoDB still refuses as too large (its count
 * is "approximately" ours) is stored compressed: retrying the same write would fail every receive.
 */
export async function putFitted(store: CallbackStore, item: Item, raw: () => Buffer, gzipName: 'rawGzip' | 'messageGzip' = 'rawGzip'): Promise<'created' | 'exists'> {
  const first = fitted(item, raw, gzipName);
  try {
    return await putAll(store, first);
  } catch (error) {
    if (!(error instanceof ItemTooLargeError) || first.item !== item) throw error;
    return putAll(store, fitted(item, raw, gzipName, true));
  }
}

async function putAll(store: CallbackStore, { item, chunks }: { item: Item; chunks: Item[] }): Promise<'created' | 'exists'> {
  for (const chunk of chunks) await store.putOnce(chunk);
  return store.putOnce(item);
}

/** Put an item sized within the budget, or undefined when DynamoDB still refuses it as too large. */
export async function putUnlessRefused(store: CallbackStore, item: Item): Promise<'created' | 'exists' | undefined> {
  try {
    return await store.putOnce(item);
  } catch (error) {
    if (error instanceof ItemTooLargeError) return undefined;
    throw error;
  }
}

/** An answer of a provider's status endpoint, as `lookupAnswer` reads it. */
export interface ProviderAnswer {
  readonly payload: unknown;
  readonly facts: EventFacts;
  readonly placed: PlacedStatus;
}

/** The event key of a status-endpoint answer: the same answer, however often it is given, is one item. */
export const answerEventKey = (answer: Pick<ProviderAnswer, 'facts'>) => `answer|${answer.facts.eventKey}`;

/**
 * Store a status-endpoint answer as an event of its subject (`source: status-endpoint`), once per
 * distinct answer, so the timeline shows what the provider said and when it was first asked.
 */
export async function storeAnswer(
  store: CallbackStore,
  provider: string,
  answer: ProviderAnswer,
  askedAt: string,
  now: Date,
  retention: Retention,
): Promise<'created' | 'exists'> {
  const payload = storable(answer.payload);
  const eventKey = answerEventKey(answer);
  return putFitted(
    store,
    {
      ...keys.event(provider, answer.facts.subjectId, eventKey),
      provider,
      subjectId: answer.facts.subjectId,
      ...(answer.facts.part === undefined ? {} : { part: answer.facts.part }),
      eventKey,
      source: 'status-endpoint',
      status: answer.facts.status,
      outcome: answer.facts.outcome,
      statusAt: answer.placed.statusAt,
      ...(answer.placed.detail ? { detail: answer.placed.detail } : {}),
      receivedAt: askedAt,
      payload,
      storedAt: now.toISOString(),
      [TABLE.ttlAttribute]: expiresAt(now, retentionSeconds(answer.facts.sensitive, retention)),
    },
    () => Buffer.from(JSON.stringify(payload) ?? 'null'),
  );
}
