import { createHash } from 'node:crypto';

/** First 16 hex characters of the SHA-256 of the input: stable, short, reveals nothing useful. */
export function shortHash(input: string | Buffer): string {
  return createHash('sha256').update(input).digest('hex').slice(0, 16);
}
