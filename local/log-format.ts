import type { LogLevel } from '../functions/shared/log.ts';

const COLORS: Record<LogLevel, string> = { DEBUG: '\x1b[90m', INFO: '\x1b[36m', WARN: '\x1b[33m', ERROR: '\x1b[31m' };
const RESET = '\x1b[0m';

/**
 * Text as a terminal may be given it: control characters (C0, DEL, C1) written as `\u` escapes, as
 * JSON writes them. A field can hold a sender's text (a Standard Webhooks type, a TemboPlus status,
 * a subject id), and written raw its escapes would recolour, retitle or clear the terminal, or its
 * line break start a line that reads as the pipeline's own. JSON.stringify escapes C0 alone. For
 * `npm start`'s pretty lines and `npm run events`' readable ones.
 */
export function printable(text: string): string {
  let shown = '';
  for (const char of text) {
    const code = char.charCodeAt(0);
    shown += code < 0x20 || (code >= 0x7f && code <= 0x9f) ? `\\u${code.toString(16).padStart(4, '0')}` : char;
  }
  return shown;
}

/**
 * The same structured line as in Lambda, laid out for a terminal:
 * `12:00:01 INFO  worker  stored  provider=telesign status=200 …`.
 */
export function prettyLine(line: string, level: LogLevel, color: boolean): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { level: _level, timestamp, service, message, ...fields } = record;
  const time = typeof timestamp === 'string' ? timestamp.slice(11, 19) : '';
  const rest = Object.entries(fields)
    .map(([key, value]) => `${printable(key)}=${printable(typeof value === 'string' ? value : JSON.stringify(value))}`)
    .join(' ');
  const tag = level.padEnd(5);
  return `${time} ${color ? `${COLORS[level]}${tag}${RESET}` : tag} ${printable(String(service)).padEnd(18)} ${printable(String(message)).padEnd(9)} ${rest}`;
}
