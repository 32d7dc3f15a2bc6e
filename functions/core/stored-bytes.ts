import { gunzipSync } from 'node:zlib';
import type { Item } from './store.ts';

/**
 * Bytes the worker kept gzip-compressed because they did not fit one DynamoDB item: inline
 * (`rawGzip`, `messageGzip`) or in chunk items `CHUNK#<sk>#0…n-1` (`rawGzipChunks` /
 * `messageGzipChunks` say how many). `chunk(n)` reads one chunk item.
 */
export async function readStoredBytes(
  item: Item,
  name: 'rawGzip' | 'messageGzip',
  chunk: (key: { pk: string; sk: string }) => Promise<Item | undefined>,
): Promise<Buffer | undefined> {
  const inline = inlineStoredBytes(item, name);
  if (inline) return inline;
  const count = Number(item[`${name}Chunks`] ?? 0);
  if (!count) return undefined;
  const parts: Buffer[] = [];
  for (let n = 0; n < count; n++) {
    const part = await chunk({ pk: String(item.pk), sk: `CHUNK#${String(item.sk)}#${n}` });
    const bytes = part?.gzipChunk;
    if (!(bytes instanceof Uint8Array)) throw new Error(`chunk ${n} of ${String(item.pk)} ${String(item.sk)} is missing`);
    parts.push(Buffer.from(bytes));
  }
  return gunzipSync(Buffer.concat(parts));
}

/**
 * The bytes kept inline (`rawGzip`, `messageGzip`), undefined when they are in chunk items or absent.
 * Decompressed to at most `maxBytes` (gunzip refuses more).
 */
export function inlineStoredBytes(item: Item, name: 'rawGzip' | 'messageGzip', maxBytes?: number): Buffer | undefined {
  const inline = item[name];
  return inline instanceof Uint8Array ? gunzipSync(inline, maxBytes === undefined ? {} : { maxOutputLength: maxBytes }) : undefined;
}

/** The queue message a quarantine item keeps, as JSON text, wherever it was kept. */
export async function quarantinedMessageText(item: Item, chunk: (key: { pk: string; sk: string }) => Promise<Item | undefined>): Promise<string> {
  if (typeof item.message === 'string') return item.message;
  const bytes = await readStoredBytes(item, 'messageGzip', chunk);
  if (!bytes) throw new Error(`quarantine item ${String(item.pk)} ${String(item.sk)} holds no message`);
  return bytes.toString('utf8');
}
