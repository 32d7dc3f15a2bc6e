import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Constant-time string equality. Both sides are hashed first so neither the length nor the
 * position of the first differing byte leaks through timing.
 */
export function secureEquals(received: string | undefined, expected: string): boolean {
  if (received === undefined || expected.length === 0) return false;
  const a = createHash('sha256').update(received).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Constant-time comparison against any of several accepted values (current and previous secret). */
export function secureEqualsAny(received: string | undefined, expected: readonly string[]): boolean {
  let match = false;
  for (const value of expected) match = secureEquals(received, value) || match;
  return match;
}
