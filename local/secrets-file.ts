import { readFileSync } from 'node:fs';
import { describeIssues } from '../functions/providers/common.ts';
import { providers } from '../functions/providers/index.ts';
import type { AnyProvider } from '../functions/providers/provider.ts';
import type { SecretSource } from '../functions/core/secrets.ts';


/** Provider id -> that provider's secret JSON, in the same shapes as the Secrets Manager secrets. */
export type SecretsFile = Record<string, Record<string, unknown>>;

/** Raised for a missing or malformed secrets file; its message names the file and the problem. */
export class SecretsFileError extends Error {
  override readonly name = 'SecretsFileError';
}

/**
 * JSON.parse's message without the text it quotes: V8 writes the unexpected token, a short text whole, and some ten
 * characters either side of the fault in a longer one, which in a secrets file are a secret's
 * (`"apiKey": 'dW5p…`, single-quoted). The message also reaches ingest's log line when the file is
 * edited while `npm start` runs (each secret is read from it again).
 */
function withoutQuotedText(message: string): string {
  return message
    .replace(/, (?:\.\.\.)?"[\s\S]*"(?:\.\.\.)? is not valid JSON$/, ' (the text around it is not shown: it may be a secret)')
    // The token itself too: in an unquoted value (`"apiKey": dW5p…`) it is the secret's first character.
    .replace(/^Unexpected token '[\s\S]'/u, 'Unexpected token');
}

/**
 * Read and validate a secrets file: `{"telesign": {...}, "esms": {...}, ...}`, each entry checked
 * against its provider's secret schema. Errors name the field, never the value.
 */
export function loadSecretsFile(path: string): SecretsFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new SecretsFileError(code === 'ENOENT' ? `secrets file ${path} does not exist` : `cannot read secrets file ${path}: ${code}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new SecretsFileError(`secrets file ${path} is not valid JSON: ${withoutQuotedText((error as Error).message)}`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) {
    throw new SecretsFileError(`secrets file ${path} must hold a JSON object keyed by provider (${providers.map((p) => p.id).join(', ')})`);
  }
  const file = json as Record<string, unknown>;
  const problems: string[] = [];
  for (const provider of providers) {
    const entry = file[provider.id];
    if (entry === undefined) {
      problems.push(`"${provider.id}" is missing`);
      continue;
    }
    const result = provider.secretSchema.safeParse(entry);
    if (!result.success) problems.push(...describeIssues(result.error).map((issue) => `${provider.id}.${issue}`));
  }
  if (problems.length > 0) throw new SecretsFileError(`secrets file ${path} is invalid:\n  - ${problems.join('\n  - ')}`);
  return file as SecretsFile;
}

/** The parsed secret of one provider (defaults such as TemboPlus's baseUrl applied). */
export function providerSecret(file: SecretsFile, provider: AnyProvider): Record<string, unknown> {
  return provider.secretSchema.parse(file[provider.id]) as Record<string, unknown>;
}

/** A SecretSource over a secrets file, read afresh on each fetch so edits apply after the cache TTL. */
export function fileSecretSource(path: string): SecretSource {
  return async (provider) => {
    const entry = loadSecretsFile(path)[provider.id];
    return JSON.stringify(entry);
  };
}
