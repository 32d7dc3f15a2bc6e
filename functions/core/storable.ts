/**
 * A provider's JSON in a form DynamoDB always accepts. Payloads keep the provider's unknown fields,
 * and authentic callbacks can carry JSON that DynamoDB (or the SDK's marshall) refuses: integers
 * past 2^53, numbers outside DynamoDB's range, empty, malformed or very long map keys,
 * `constructor` and `__proto__` keys (marshall mishandles both), nesting deeper than DynamoDB's 32 levels. One
 * such field would make the item unstorable, and the callback, answered 200, would retry into the
 * DLQ. Here each such part is kept as its JSON text instead; everything else is stored as is.
 */

import { jsonTextAnyDepth } from '../shared/canonical-json.ts';

/** Containers deeper than this (the payload itself at level 1) are kept as JSON text; DynamoDB allows 32 levels per item. */
const MAX_NESTING = 30;
/** DynamoDB numbers: magnitude 1E-130 to 9.9999999999999999999999999999999999999E+125. */
const MIN_MAGNITUDE = 1e-130;
/** Where an object's entries under keys DynamoDB refuses are kept, as JSON text. */
export const UNSTORABLE_KEYS = '~unstorableKeys';
/**
 * Longest map key kept as a key, in UTF-8 bytes. DynamoDB takes attribute names of less than 64 KB
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html,
 * "Naming rules"), and DynamoDB Local already fails a put with a map key of about 50 KB; no
 * provider's field name comes anywhere near this bound.
 */
const MAX_KEY_BYTES = 1_024;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** A part as its JSON text, at any depth: an item that fits keeps no raw bytes, so a note in its place would lose it. */
function jsonText(value: unknown): string {
  return jsonTextAnyDepth(value) ?? 'null';
}

function storableNumber(value: number): number | string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return Number.isSafeInteger(value) ? value : String(value);
  return Math.abs(value) < MIN_MAGNITUDE ? String(value) : value;
}

function storableKey(key: string): boolean {
  // marshall takes an object with a `constructor` key for a class instance, and builds maps by
  // assignment, where `__proto__` sets the prototype instead of a key.
  return key !== '' && key !== 'constructor' && key !== '__proto__' && !LONE_SURROGATE.test(key) && Buffer.byteLength(key) <= MAX_KEY_BYTES;
}

/** `value` with every part DynamoDB cannot hold replaced by its JSON text. Pure; never throws. */
export function storable(value: unknown, level = 1): unknown {
  if (typeof value === 'number') return storableNumber(value);
  if (value === null || typeof value !== 'object') return value;
  if (level > MAX_NESTING) return jsonText(value);
  if (Array.isArray(value)) return value.map((item) => storable(item, level + 1));
  const entries = Object.entries(value as Record<string, unknown>);
  const result: Record<string, unknown> = {};
  const set = (key: string, child: unknown) =>
    // defineProperty: a `__proto__` key stays a key instead of becoming the prototype.
    Object.defineProperty(result, key, { value: child, enumerable: true, writable: true, configurable: true });
  for (const [key, child] of entries) if (storableKey(key)) set(key, storable(child, level + 1));
  // The object stays a map (its other fields readable and re-readable by the worker); the entries
  // under keys DynamoDB refuses are kept together as JSON text.
  const refused = entries.filter(([key]) => !storableKey(key));
  if (refused.length) set(UNSTORABLE_KEYS, jsonText(Object.fromEntries(refused)));
  return result;
}
