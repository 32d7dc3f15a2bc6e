import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { AnyProvider } from '../functions/providers/provider.ts';
import { maskPhoneNumbersInUrl } from '../functions/shared/log.ts';

/** The provider samples (test/fixtures/<provider>/), shared by the tests, `send`, the fuzzer and the benchmark. */
export const FIXTURES_DIR = fileURLToPath(new URL('../test/fixtures/', import.meta.url));

export interface Sample {
  readonly provider: string;
  /** File name without extension. */
  readonly name: string;
  /** Raw body bytes (POST providers) or the query string (eSMS). */
  readonly body?: Buffer;
  readonly query?: string;
}

/** A request ready to send: path relative to the API base URL. */
export interface SampleRequest {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: Buffer;
}

/** Valid samples of a provider (the `invalid/` folder holds ones that must be quarantined). */
export function listSamples(providerId: string, folder = ''): Sample[] {
  const dir = join(FIXTURES_DIR, providerId, folder);
  if (folder && !existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.(json|query)$/.test(entry.name))
    .map((entry) => entry.name)
    .sort()
    .map((file) => {
      const content = readFileSync(join(dir, file));
      const name = file.replace(/\.(json|query)$/, '');
      return file.endsWith('.query')
        ? { provider: providerId, name, query: content.toString('utf8').trim() }
        : { provider: providerId, name, body: content };
    });
}

export function findSample(providerId: string, name: string | undefined): Sample {
  const samples = [...listSamples(providerId), ...listSamples(providerId, 'invalid').map((s) => ({ ...s, name: `invalid/${s.name}` }))];
  const sample = name ? samples.find((candidate) => candidate.name === name) : samples[0];
  if (!sample) throw new Error(`no sample "${name}" for ${providerId}; try: ${samples.map((s) => s.name).join(', ')}`);
  return sample;
}

/**
 * A route token as this project's commands print one from a user's secrets file: its first four
 * characters, enough to tell which secret it is, never enough to call the route with.
 */
export function shortToken(token: string): string {
  return `${token.slice(0, 4)}…`;
}

/** `url` (a provider's route, filled in by routePath) with the token in its path shortened (shortToken). */
export function withShortToken(provider: AnyProvider, url: string): string {
  const { tokenParameter } = provider.route;
  if (!tokenParameter) return url;
  // The route's path ends where the URL's does: its segments counted from the end.
  const fromEnd = provider.route.path.split('/').reverse().indexOf(`{${tokenParameter}}`);
  const [path, query] = url.split('?', 2);
  const segments = path.split('/');
  const at = segments.length - 1 - fromEnd;
  if (fromEnd < 0 || at < 0) return url;
  segments[at] = shortToken(decodeURIComponent(segments[at]));
  return `${segments.join('/')}${query === undefined ? '' : `?${query}`}`;
}

/**
 * A request's path as `npm run send` prints it: its token shortened, and unless `showSensitive` any
 * phone number masked (an eSMS callback names its recipient in the query, `phonenumber=…`), as a
 * log line masks them, however the query encodes it: the output can be shared.
 */
export function shownRequestPath(provider: AnyProvider, path: string, showSensitive: boolean): string {
  const shortened = withShortToken(provider, path);
  return showSensitive ? shortened : maskPhoneNumbersInUrl(shortened);
}

/** The path of a provider's route with its parameters filled in: the token from the secret, the others from the provider. */
export function routePath(provider: AnyProvider, secret: Record<string, unknown>): string {
  const values: Record<string, string> = { ...provider.routeParameters?.(secret) };
  const { tokenParameter } = provider.route;
  if (tokenParameter && provider.generatedSecretField) values[tokenParameter] = String(secret[provider.generatedSecretField] ?? '');
  return provider.route.path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(values[name] ?? ''));
}

/**
 * Build a correctly authenticated request for a body or query, as the provider would send it:
 * tokens in the path, and whatever the provider adds itself (TeleSign's signature, Identomat's key).
 */
export function authenticRequest(
  provider: AnyProvider,
  secret: Record<string, unknown>,
  content: { body?: Buffer; query?: string },
  /** When the provider sends it (signatures over a timestamp); now when omitted. */
  sentAt?: Date,
): SampleRequest {
  const path = routePath(provider, secret);
  if (provider.route.method === 'GET') {
    return { method: 'GET', path: content.query ? `${path}?${content.query}` : path, headers: {} };
  }
  const body = content.body ?? Buffer.alloc(0);
  const sent = provider.asSent ? provider.asSent(body, secret, sentAt) : { headers: { 'content-type': 'application/json' }, body };
  return { method: provider.route.method, path, headers: sent.headers, body: sent.body };
}
