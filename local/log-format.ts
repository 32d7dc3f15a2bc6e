import type { LogLevel } from '../functions/shared/log.ts';

const COLORS: Record<LogLevel, string> = { DEBUG: '\x1b[90m', INFO: '\x1b[36m', WARN: '\x1b[33m', ERROR: '\x1b[31m' };
const RESET = '\x1b[0m';

/**
 * What a terminal must not be given as it is: control characters (C0, DEL, C1); format characters
 * (bidi overrides and isolates, U+202A-202E and U+2066-2069, which a terminal that draws bidi text
 * uses to show the rest of the line reversed; zero-width characters and the BOM, which draw nothing,
 * so two different ids look alike); the line and paragraph separators; and lone surrogates (printed
 * as U+FFFD, hiding what was stored).
 */
const NOT_SHOWN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

/**
 * Text as a terminal may be given it: the characters of NOT_SHOWN written as `\u` escapes, as JSON
 * writes a control character (one beyond U+FFFF as its two UTF-16 units). A field can hold a
 * sender's text (a Standard Webhooks type, a TemboPlus status, a subject id), and written raw its
 * escapes would recolour, retitle or clear the terminal, or its line break start a line that reads
 * as the pipeline's own. JSON.stringify escapes C0 alone. For `npm start`'s pretty lines,
 * `npm run events`' readable ones and `npm run inspect`'s text.
 */
export function printable(text: string): string {
  return text.replace(NOT_SHOWN, (char) => {
    let escaped = '';
    for (let i = 0; i < char.length; i += 1) escaped += `\\u${char.charCodeAt(i).toString(16).padStart(4, '0')}`;
    return escaped;
  });
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
