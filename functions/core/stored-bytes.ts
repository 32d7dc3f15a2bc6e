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

/**
 * The queue message a quarantine item keeps, as JSON text, wherever it was kept; or why the item
 * holds none that can be read (one written or edited by hand: no message, bytes that are not gzip, a
 * chunk missing), so a listing or a run shows it and goes on. The table failing to answer is not
 * the item's fault: that is thrown.
 */
export async function quarantinedMessageText(item: Item, chunk: (key: { pk: string; sk: string }) => Promise<Item | undefined>): Promise<{ text: string } | { unreadable: string }> {
  if (typeof item.message === 'string') return { text: item.message };
  let tableFault: unknown;
  const reading = async (key: { pk: string; sk: string }) => {
    try {
      return await chunk(key);
    } catch (error) {
      tableFault = error;
      throw error;
    }
  };
  try {
    const bytes = await readStoredBytes(item, 'messageGzip', reading);
    return bytes ? { text: bytes.toString('utf8') } : { unreadable: `quarantine item ${String(item.pk)} ${String(item.sk)} holds no message` };
  } catch (error) {
    if (tableFault !== undefined) throw tableFault;
    return { unreadable: error instanceof Error ? error.message : String(error) };
  }
}
