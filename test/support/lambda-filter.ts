import assert from 'node:assert/strict';

/**
 * Lambda event filtering as the tests need it: whether a record (as Lambda sees it: a DynamoDB
 * stream record with its marshalled Keys and images) matches a FilterCriteria pattern, for the
 * syntax lib/event-outlet.ts uses: nested objects (every key must match), and at each leaf an array
 * of alternatives, each an exact string or `{ "prefix": "…" }`. A record without the field does
 * not match. Anything else fails the test, so a new kind of pattern gets a matcher before it is
 * trusted. https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html
 */
export function matchesPattern(pattern: unknown, value: unknown): boolean {
  if (Array.isArray(pattern)) {
    return pattern.some((alternative) => {
      if (typeof alternative === 'string') return value === alternative;
      const keys = Object.keys(alternative as object);
      assert.deepEqual(keys, ['prefix'], `unsupported filter rule ${JSON.stringify(alternative)}`);
      return typeof value === 'string' && value.startsWith((alternative as { prefix: string }).prefix);
    });
  }
  assert.ok(pattern !== null && typeof pattern === 'object', `unsupported filter pattern ${JSON.stringify(pattern)}`);
  if (value === null || typeof value !== 'object') return false;
  return Object.entries(pattern).every(([key, inner]) => key in value && matchesPattern(inner, (value as Record<string, unknown>)[key]));
}

/** Whether Lambda invokes the function for this record: it matches any of the patterns (FilterCriteria.Filters[].Pattern). */
export function passesFilters(patterns: readonly unknown[], record: unknown): boolean {
  return patterns.some((pattern) => matchesPattern(pattern, record));
}
