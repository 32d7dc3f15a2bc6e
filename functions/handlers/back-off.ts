/** The longest pause before a failed record's next receive (15 minutes). */
export const MAX_RETRY_DELAY_SECONDS = 900;

/**
 * Back-off for the n-th receive: base × 2^(n-1), at most 15 minutes, plus up to a quarter more
 * (jitter), so records that failed together (a status endpoint's outage) do not return together.
 */
export function retryDelaySeconds(receiveCount: number, baseSeconds: number, random: () => number = () => 0): number {
  const backoff = baseSeconds * 2 ** Math.max(0, receiveCount - 1);
  return Math.min(MAX_RETRY_DELAY_SECONDS, Math.round(backoff * (1 + random() * 0.25)));
}
