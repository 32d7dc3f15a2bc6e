/**
 * An item's size as DynamoDB counts it against its 400 KB limit, for the plain JS values the SDK's
 * `marshall` turns into attributes. DynamoDB does not count JSON bytes: every List or Map costs 3
 * bytes plus 1 byte per element, so a body of many small nested arrays is far larger as an item
 * than as JSON text (a 262 KB signed body can make a 400 KB+ item).
 * @see https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
 * @see https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html
 */

/** DynamoDB's item size limit: 400 KB. */
export const DYNAMODB_ITEM_LIMIT = 400 * 1024;

/** What the gateway allows itself per item, leaving room for attributes added after sizing. */
export const ITEM_BUDGET = 380 * 1024;

function numberSize(value: number): number {
  // About one byte per two significant digits, plus one (at most 38 digits: 21 bytes), and one more
  // for a negative number: DynamoDB Local refuses 103,000 `-1`s in a list as over 400 KB and takes
  // as many `1`s (4 bytes an element against 3), and bills 1,000 of them 4 WCU against 3.
  const digits = String(Math.abs(value)).replace(/e.*$/i, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  return Math.min(21, Math.ceil(Math.max(1, digits.length) / 2) + 1) + (value < 0 ? 1 : 0);
}

/** Size of one attribute value (without its name). */
export function valueSize(value: unknown): number {
  if (value === null || value === undefined || typeof value === 'boolean') return 1;
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (typeof value === 'number') return numberSize(value);
  if (typeof value === 'bigint') return numberSize(Number(value));
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return value.byteLength;
  if (value instanceof Set) {
    let size = 0;
    for (const member of value) size += valueSize(member);
    return size;
  }
  if (Array.isArray(value)) {
    let size = 3;
    for (const element of value) size += 1 + valueSize(element);
    return size;
  }
  if (typeof value === 'object') {
    let size = 3;
    for (const [key, element] of Object.entries(value as Record<string, unknown>)) {
      if (element === undefined) continue; // marshall drops them (removeUndefinedValues)
      size += 1 + Buffer.byteLength(key) + valueSize(element);
    }
    return size;
  }
  return Buffer.byteLength(String(value));
}

/** Size of a whole item: each attribute's name plus its value. */
export function itemSize(item: Record<string, unknown>): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) {
    if (value === undefined) continue;
    size += Buffer.byteLength(name) + valueSize(value);
  }
  return size;
}
