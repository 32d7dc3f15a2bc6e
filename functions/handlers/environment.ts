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
