import { parseArgs, type ParseArgsConfig } from 'node:util';
import { resolve } from 'node:path';

// The SDK warns once per process that its 2027 releases need Node 22; Lambda runs Node 22 and the
// lock file pins today's SDK, so in our own commands it is only noise between the useful lines.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** Default folder of the local pipeline's data (git-ignored). */
export const DEFAULT_DATA_DIR = '.local-data';

/** The data folder: --data-dir, else CALLBACK_GATEWAY_DATA_DIR, else .local-data. */
export function dataDirFrom(value: string | undefined): string {
  return resolve(value ?? process.env.CALLBACK_GATEWAY_DATA_DIR ?? DEFAULT_DATA_DIR);
}

/** parseArgs that prints a usage line and exits 2 on a bad flag instead of throwing a stack trace. */
export function parseCli<T extends ParseArgsConfig['options']>(options: T, usage: string, args = process.argv.slice(2)) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${usage}`);
    process.exit(2);
  }
}

/** A positive integer flag, or exit 2 naming the flag. */
export function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0) {
    console.error(`--${name} must be a whole number, got "${value}"`);
    process.exit(2);
  }
  return number;
}
