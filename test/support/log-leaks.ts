/**
 * A UUID (request ids, message ids, attempt tokens): its second group is four random hex digits
 * standing between dashes, all digits in one UUID in seven, and a given code such as 6867 in one in
 * 65,536. A suite's log lines hold dozens of UUIDs, so a check that read those groups would fail now
 * and then for nothing.
 */
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

/**
 * A number the pipeline measured, as a JSON log line writes it: a lag, a duration, an age
 * (`"lagMs":6867`, `"durationMs":12.5`, `"ageSeconds":40`). A slow run stores a callback 6.867 s
 * after it came now and then; that is a time, not the code.
 */
const MEASURED = /("[A-Za-z]*(?:Ms|Seconds)":)-?\d+(?:\.\d+)?(?![\d.])/g;

/**
 * Whether a log line (or a command's output) leaks `value`. A short all-digit value, such as the
 * samples' one-time code 6867, counts only where it stands alone, outside any UUID: inside a longer
 * run of letters and digits (a random request id, an event id) or in a UUID's group it is chance,
 * and a test that counted it would fail now and then for nothing. A code written into a line stands
 * apart ("is 6867", `"code":"6867"`); a number the pipeline measured (MEASURED) is not one. Any other
 * value counts wherever it appears.
 */
export function leaks(line: string, value: string): boolean {
  if (!/^\d{1,8}$/.test(value)) return line.includes(value);
  return new RegExp(`(?<![0-9A-Za-z])${value}(?![0-9A-Za-z])`).test(line.replace(UUID, 'uuid').replace(MEASURED, '$1 measured'));
}

/**
 * A run of 7 or more digits that no letter, digit or mask touches: a phone number in the clear,
 * returned as found (undefined when there is none). UUIDs are set aside, and so are the request ids
 * the local HTTP API makes up (16 random base64url characters): their `-` and `_` can set a run of
 * digits apart, about one id in five million, and a run logs about a hundred of them.
 */
export function standingNumber(line: string): string | undefined {
  const withoutIds = line.replace(UUID, 'uuid').replace(/"requestId":"[A-Za-z0-9_-]{16}"/g, '"requestId":"id"');
  return /(?<![A-Za-z0-9*])\+?\d{7,}(?![A-Za-z0-9])/.exec(withoutIds)?.[0];
}
