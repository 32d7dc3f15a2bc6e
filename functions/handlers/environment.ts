import { DEFAULT_RECONCILE, parseSchedule, type ReconcilePolicy } from '../core/reconcile.ts';
import { ConfigurationError } from '../shared/errors.ts';

/** A required environment variable; a missing one is named in the error. */
export function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new ConfigurationError(`environment variable ${name} is not set`);
  return value;
}

/** A positive number from the environment, or the default. */
export function numberEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new ConfigurationError(`environment variable ${name} must be a positive number, got "${raw}"`);
  return value;
}

/**
 * A positive whole number from the environment, or the default: a count (shards, receives). A
 * fraction set by hand on the function (`RECONCILE_SHARDS=2.5`) left some shards never read.
 */
export function integerEnv(name: string, fallback: number): number {
  const value = numberEnv(name, fallback);
  if (!Number.isInteger(value)) throw new ConfigurationError(`environment variable ${name} must be a whole number, got "${process.env[name]}"`);
  return value;
}

/**
 * A whole number from the environment, 0 or more, or the default: a cap where 0 means none
 * (RELAY_MAX_PER_NUMBER_PER_HOUR). A value that is not one fails the start, never lifts the cap.
 */
export function countEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new ConfigurationError(`environment variable ${name} must be a whole number, 0 or more, got "${raw}"`);
  return value;
}

/**
 * The reconcile policy from RECONCILE_SCHEDULE (`1m,5m,30m,2h,12h,24h,48h`), RECONCILE_SHARDS and
 * RECONCILE_HORIZON_HOURS, each defaulting to DEFAULT_RECONCILE's value. The worker and the sweep
 * read the same variables, set from the same stack setting.
 */
export function reconcileEnv(): ReconcilePolicy {
  const schedule = process.env.RECONCILE_SCHEDULE;
  let intervalsSeconds = DEFAULT_RECONCILE.intervalsSeconds;
  if (schedule) {
    try {
      intervalsSeconds = parseSchedule(schedule);
    } catch (error) {
      throw new ConfigurationError(`environment variable RECONCILE_SCHEDULE: ${(error as Error).message}`);
    }
  }
  return {
    ...DEFAULT_RECONCILE,
    intervalsSeconds,
    shards: integerEnv('RECONCILE_SHARDS', DEFAULT_RECONCILE.shards),
    horizonHours: numberEnv('RECONCILE_HORIZON_HOURS', DEFAULT_RECONCILE.horizonHours),
  };
}
