/**
 * Reading an HTTP `Retry-After` header (RFC 9110 §10.2.3,
 * https://www.rfc-editor.org/rfc/rfc9110#field.retry-after): `delay-seconds` (1*DIGIT, counted from
 * the answer) or an `HTTP-date` (IMF-fixdate, or the obsolete RFC 850 and asctime forms a
 * recipient must still accept, §5.6.7). A status endpoint that answers 429 or 503 may send it to say
 * when to ask again; none of the providers documents it, so it is read where it comes and nothing
 * depends on it.
 */

/** The longest wait taken from a Retry-After: a longer one (a date years ahead, a clock far off) is absurd, and ignored. */
export const MAX_RETRY_AFTER_SECONDS = 7 * 86_400;

const DELAY_SECONDS = /^\d{1,12}$/;
const MONTH = '(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
const TIME = '\\d{2}:\\d{2}:\\d{2}';
/** Sun, 06 Nov 1994 08:49:37 GMT */
const IMF_FIXDATE = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \\d{2} ${MONTH} \\d{4} ${TIME} GMT$`);
/** Sunday, 06-Nov-94 08:49:37 GMT */
const RFC850_DATE = new RegExp(`^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), \\d{2}-${MONTH}-\\d{2} ${TIME} GMT$`);
/** Sun Nov  6 08:49:37 1994 (UTC, though it says not) */
const ASCTIME_DATE = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ${MONTH} [ \\d]\\d ${TIME} \\d{4}$`);

/**
 * The seconds to wait that a `Retry-After` value asks for, from `nowMs` (when the answer came):
 * 0 for a date already past; undefined when there is none, it is malformed, or it asks for more
 * than MAX_RETRY_AFTER_SECONDS.
 */
export function retryAfterSeconds(value: string | null | undefined, nowMs: number): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  let seconds: number;
  if (DELAY_SECONDS.test(text)) {
    seconds = Number(text);
  } else if (IMF_FIXDATE.test(text) || RFC850_DATE.test(text) || ASCTIME_DATE.test(text)) {
    const at = Date.parse(ASCTIME_DATE.test(text) ? `${text} GMT` : text);
    if (!Number.isFinite(at)) return undefined;
    seconds = Math.max(0, Math.ceil((at - nowMs) / 1000));
  } else {
    return undefined;
  }
  return seconds <= MAX_RETRY_AFTER_SECONDS ? seconds : undefined;
}
