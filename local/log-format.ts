import { printable, type LogLevel } from '../functions/shared/log.ts';

const COLORS: Record<LogLevel, string> = { DEBUG: '\x1b[90m', INFO: '\x1b[36m', WARN: '\x1b[33m', ERROR: '\x1b[31m' };
const RESET = '\x1b[0m';

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
