/**
 * Canonical JSON of a parsed JSON value (object keys sorted), built without recursion: `data` may
 * nest thousands of levels deep, past what JSON.stringify or a recursive walk survives.
 */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  const tasks: ({ text: string } | { value: unknown })[] = [{ value }];
  while (tasks.length > 0) {
    const task = tasks.pop()!;
    if ('text' in task) {
      out.push(task.text);
      continue;
    }
    const current = task.value;
    if (Array.isArray(current)) {
      out.push('[');
      tasks.push({ text: ']' });
      for (let index = current.length - 1; index >= 0; index -= 1) {
        tasks.push({ value: current[index] });
        if (index > 0) tasks.push({ text: ',' });
      }
    } else if (current !== null && typeof current === 'object') {
      const keys = Object.keys(current).sort();
      out.push('{');
      tasks.push({ text: '}' });
      for (let index = keys.length - 1; index >= 0; index -= 1) {
        tasks.push({ value: (current as Record<string, unknown>)[keys[index]] });
        tasks.push({ text: `${index > 0 ? ',' : ''}${JSON.stringify(keys[index])}:` });
      }
    } else {
      // Primitives as JSON writes them (Infinity and undefined as null), so a queue round trip keeps the digest.
      out.push(JSON.stringify(current) ?? 'null');
    }
  }
  return out.join('');
}

/**
 * JSON.stringify's text of a value (undefined where it gives none), or canonicalJson's for a value
 * nested deeper than JSON.stringify's recursion allows (a 256 KiB body can nest 130,000 levels):
 * a RangeError there must never leave a callback unanswered, unstored or taken for another.
 */
export function jsonTextAnyDepth(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return canonicalJson(value);
  }
}
