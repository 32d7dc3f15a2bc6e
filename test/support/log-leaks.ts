/**
 * Whether a log line (or a command's output) leaks `value`. A short all-digit value, such as the
 * samples' one-time code 6867, counts only where it stands alone: inside a longer run of letters
 * and digits (a random request id, a UUID, an event id) it is chance, and a test that counted it
 * would fail now and then for nothing. A code written into a line stands apart ("is 6867",
 * `"code":"6867"`). Any other value counts wherever it appears.
 */
export function leaks(line: string, value: string): boolean {
  if (!/^\d{1,8}$/.test(value)) return line.includes(value);
  return new RegExp(`(?<![0-9A-Za-z])${value}(?![0-9A-Za-z])`).test(line);
}
