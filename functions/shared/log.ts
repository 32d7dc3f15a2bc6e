/** Structured JSON log lines, one object per line, the same in Lambda and in the local runtime. */
export type LogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
export type LogFields = Record<string, unknown>;
/** Fields, or a function that gives them: called only when the line is written (a DEBUG line at INFO costs nothing). */
export type LazyLogFields = LogFields | (() => LogFields);

export interface Logger {
  debug(message: string, fields?: LazyLogFields): void;
  info(message: string, fields?: LazyLogFields): void;
  warn(message: string, fields?: LazyLogFields): void;
  error(message: string, fields?: LazyLogFields): void;
}

export interface LoggerOptions {
  readonly service: string;
  /** Where a finished line goes; defaults to stdout (CloudWatch takes it as is). */
  readonly write?: (line: string, level: LogLevel) => void;
  readonly now?: () => Date;
  /**
   * Lines below this level are not written (nor built).
   * @default the level Lambda's advanced logging controls set in AWS_LAMBDA_LOG_LEVEL, else everything
   */
  readonly minLevel?: string;
}

/**
 * Severity order of Lambda's application log levels. Lambda sets the function's configured level
 * in AWS_LAMBDA_LOG_LEVEL, and with the JSON log format drops lines whose `level` is below it
 * (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html); the
 * logger drops them first, so they cost neither CPU nor log bytes.
 */
const SEVERITY: Readonly<Record<string, number>> = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4, FATAL: 5 };

/** The severity below which lines are dropped: an unknown or missing level drops nothing. */
function threshold(level: string | undefined): number {
  return (level !== undefined && SEVERITY[level.toUpperCase()]) || 0;
}

/**
 * Fields every line carries while a Lambda invocation runs, under the names Powertools for AWS
 * Lambda uses (`function_request_id`, `cold_start`), so existing queries work. Set by the Lambda
 * entry points; the local runtime leaves it empty and its lines go without them.
 */
let invocationFields: LogFields | undefined;

/** The invocation the following lines belong to (undefined: none, as in the local runtime). */
export function setLogContext(fields: LogFields | undefined): void {
  invocationFields = fields;
}

/**
 * A UUID (with the one to three digits eSMS puts after the GUID of an SMSID,
 * `dc712784-9c5f-4c69-b9a8-ea69d56adc9a87`), or a run of 24+ hex characters with a letter among
 * them (TeleSign's 32-hex reference ids, eSMS's dashless SMSIDs), standing apart: the shapes of ids
 * a provider makes up from random bits or a hash. More than one random UUID, 32-hex id or SMSID in
 * ten holds a run of digits the rules below would mask; in an id the provider made up that run is
 * chance, not a number, and masking it would make the id useless. Only ids a provider made up are
 * read this way (`mintedId`): an id a sender chose (a TemboPlus partnerReference, a Standard
 * Webhooks id or type) can be a number glued to hex digits (`995512345678abcdef012345`) or written
 * as a UUID (`99551234-5678-…`), and is masked by the rules below whatever its shape.
 */
const HEX_ID = String.raw`(?<![A-Za-z0-9])(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\d{0,3}|(?=[0-9a-f]*[a-f])[0-9a-f]{24,})(?![A-Za-z0-9])`;

/**
 * A digit in any script (`\p{Nd}`): a number typed in full-width digits (`０９０１８８８４８４`) is
 * read as the same number, and was logged whole.
 */
const DIGIT = String.raw`\p{Nd}`;

/**
 * What draws nothing: format characters (`\p{Cf}`: zero-width spaces and joiners, bidi marks, the
 * soft hyphen) and the other default-ignorable code points, which are not all format characters
 * (the combining grapheme joiner U+034F, the variation selectors, the Hangul fillers): between two
 * digits any of them leaves the number reading whole wherever the line is shown.
 */
const DRAWS_NOTHING = String.raw`\p{Cf}\p{Default_Ignorable_Code_Point}`;

/**
 * What may join the groups of a number: any of the separators the relay's `e164` drops (any white
 * space, dots, dashes, brackets), so a number that can be sent can be masked; a `+`, form encoding's
 * space, which eSMS's query decoding keeps as a `+` (`phonenumber=0901+888+484` is stored and logged
 * as `0901+888+484`); what else joins groups in an id a sender writes, for a reader the same
 * number: `_`, `/`, the middle dot, every dash (`\p{Pd}`: the typographic ones, U+2010 to U+2015, the
 * wave dash) and the minus U+2212; the full-width and small forms of these (`－`, `．`, `（`, `＿`,
 * `﹣`), and the katakana prolonged sound mark and middle dot (`ー`, `・`), with which a Japanese input
 * method in full-width mode writes a number (`０９０－１２３４－５６７８`, whose groups are each too short
 * to be one, was logged whole); and what draws nothing (DRAWS_NOTHING), so `0901\u2060234567` reads
 * as the whole number.
 */
const GROUP_SEPARATOR = String.raw`\s().+\-_/\u00b7\p{Pd}\u2212\uff08\uff09\uff0b\uff0e\uff0f\uff3f\ufe59\ufe5a\ufe52\ufe62\u30fb\uff65\u30fc\uff70${DRAWS_NOTHING}`;

/** A run of 7+ digits standing on its own, its groups joined by GROUP_SEPARATOR. */
const STANDING_NUMBER = String.raw`(?<![A-Za-z0-9${DIGIT}])\+?${DIGIT}[${DIGIT}${GROUP_SEPARATOR}]{5,}${DIGIT}(?![A-Za-z0-9${DIGIT}])`;

/**
 * A calendar date, `yyyy-mm-dd` or `dd-mm-yyyy` (`mm-dd-yyyy` too), with one separator (`-`, `/` or
 * `.`) used twice, a year 1900-2099, a month 01-12 and a day 01-31, standing on its own: kept as it
 * is, where STANDING_NUMBER would read 8 digits and their separators as a number. eSMS writes the
 * time of a Zalo error into `error_info` as `24/04/2024 16:58:01`, and `npm run inspect` showed it as
 * `*******416:58:01`. A letter may follow (`2024-04-24T16:58:01Z`), or a space and a time; never
 * more digits joined by the same kind of separator (`2001.12.12.345` is read as a number). No number
 * in the forms the providers send is written so: a whole one is 9+ digits, grouped otherwise.
 *
 * TIMESTAMP: such a date with a time after it (`T` or a space, `hh:mm`, seconds, up to six digits of
 * a fraction, a UTC offset or `Z`; after a space, only `+hh:mm` or `Z`), as ISO 8601 writes one, kept whole: the seconds, the fraction and
 * the offset are digits enough for STANDING_NUMBER, and `2026-12-04T10:11:12.123+07:00` was logged
 * as `2026-12-04T10:11:****307:00`. A longer fraction is read by the rules below, as it was: nine
 * digits after a point could be a whole national number.
 */
const [CALENDAR_DATE, TIMESTAMP] = (() => {
  const year = String.raw`(?:19|20)\d{2}`;
  const month = String.raw`(?:0[1-9]|1[0-2])`;
  const day = String.raw`(?:0[1-9]|[12]\d|3[01])`;
  const forms = ['-', '/', String.raw`\.`].flatMap((separator) => [[year, month, day], [day, day, year]].map((parts) => parts.join(separator)));
  const date = String.raw`(?<![A-Za-z0-9${DIGIT}]|${DIGIT}[-/.])(?:${forms.join('|')})`;
  const [hour, minute] = [String.raw`(?:[01]\d|2[0-3])`, String.raw`[0-5]\d`];
  // An offset after a space only as `+hh:mm`: `10:11 +0901 888 484` is a time and a grouped number.
  const time = String.raw`[T ]${hour}:${minute}(?::(?:[0-5]\d|60)(?:[.,]\d{1,6})?)?(?:Z|[-+]${hour}(?::?${minute})?| Z| [-+]${hour}:${minute})?`;
  return [String.raw`${date}(?![0-9${DIGIT}]|[-/.]${DIGIT})`, String.raw`${date}${time}(?![0-9${DIGIT}]|[-+:.,/]${DIGIT})`];
})();

/**
 * A run of 9+ digits glued to letters (`REF255712345678`, `ID-255712345678x`): the length of a
 * number with its country code, or with its trunk prefix, in every form the five providers send
 * one (TeleSign `11234567890`, Identomat `+995512345678`, TemboPlus `255712345678`, eSMS
 * `0901888484` and `02871002454`), and of a mobile number with neither in their countries
 * (Vietnam, Tanzania, Georgia: 9 digits). Shorter runs inside ids (`SMS12345678ID`) are left as
 * they are: an 8-digit one could only be a national number stripped of both (Singapore's,
 * Norway's) or the whole number of a territory as small as the Falklands (+500 and five digits),
 * none of which a provider's docs or samples show, and masking it would cut into many more ids
 * (about 1 random 16-hex id in 20 is masked as it is; a 16-hex run can hold a whole number,
 * `255712345678abcd`, so it is never exempt). Runs under 7 digits, such as a short code (`4442`),
 * are never masked: a short code is a service's number, not a person's. What draws nothing between
 * the digits (DRAWS_NOTHING) is read through, as in STANDING_NUMBER.
 */
const GLUED_NUMBER = String.raw`(?<!${DIGIT})${DIGIT}(?:[${DRAWS_NOTHING}]*${DIGIT}){8,}`;

/**
 * 9+ digits in groups joined as a standing number's are (GROUP_SEPARATOR), glued to what stands
 * before them (`INV0712-345-678`, `REF0901 888 484`, `to+995 555 123 456`): each group too short to be
 * a number and the digits no single run, such a reference was logged whole. Tried last, where
 * neither a standing nor a glued number starts, so that those keep the span they had
 * (`msg255712345678_2` keeps its `_2`). Nine digits, as GLUED_NUMBER, not seven: `v2024.01.15` is no number.
 */
const GROUPED_GLUED_NUMBER = String.raw`(?<!${DIGIT})${DIGIT}(?:[${GROUP_SEPARATOR}]*${DIGIT}){8,}`;

/**
 * The smallest JSON number that can be a phone number: 9 digits, as GLUED_NUMBER. Every documented
 * phone field is text (TemboPlus's receiverAccount, TeleSign's `phone_number`, Identomat's
 * `phoneNumber`, eSMS's query), but nothing holds a sender to it, and a number loses the `+` and
 * the trunk `0` text keeps: eSMS's `0901888484` is `901888484`, Tanzania's `255712345678` or,
 * without its country code, `712345678`. Fractions and negatives are amounts, never numbers to
 * call; a whole amount of 9+ digits (100 000 000 TZS and up) is masked as well, the price of
 * masking a number whatever field it is in.
 */
const PHONE_LIKE_NUMBER = 100_000_000;

/** What is kept first (group 1): at a position where a timestamp or a date (or, in a minted id, a hex id) starts, it is taken whole and left as it is. */
const PHONE_LIKE_IN_MINTED_ID = new RegExp(`(${HEX_ID}|${TIMESTAMP}|${CALENDAR_DATE})|${STANDING_NUMBER}|${GLUED_NUMBER}|${GROUPED_GLUED_NUMBER}`, 'giu');
const PHONE_LIKE = new RegExp(`(${TIMESTAMP}|${CALENDAR_DATE})|${STANDING_NUMBER}|${GLUED_NUMBER}|${GROUPED_GLUED_NUMBER}`, 'giu');

/** A match of PHONE_LIKE as shown: what is kept as it is, the rest masked. */
const shownMatch = (match: string, kept: string | undefined) => (kept === undefined ? masked(match) : match);

/** Everything in a match that is not a digit, in any script (DIGIT). */
const NOT_A_DIGIT = /\P{Nd}/gu;

export interface MaskOptions {
  /**
   * The value is an id the provider made up (`Provider.mintsSubjectIds`: TeleSign's reference ids,
   * eSMS's SMSIDs), never one a sender chose: its UUIDs and hex runs are left readable (see HEX_ID).
   * @default false: every shape is masked
   */
  readonly mintedId?: boolean;
}

/**
 * Mask anything that looks like a phone number, keeping the last three digits: 7+ digits standing
 * on their own, or 9+ digits glued into an id; in an id a provider made up, UUIDs and hex ids are
 * left readable (see above). Subject ids can embed one (eSMS per-recipient ids, a partner's own
 * reference); log lines must never carry it in full.
 */
export function maskPhoneNumbers(value: string, options?: MaskOptions): string;
/** An absent value stays absent (a log line then leaves its field out). */
export function maskPhoneNumbers(value: string | undefined, options?: MaskOptions): string | undefined;
export function maskPhoneNumbers(value: string | undefined, options: MaskOptions = {}): string | undefined {
  if (value === undefined) return undefined;
  return value.replace(options.mintedId ? PHONE_LIKE_IN_MINTED_ID : PHONE_LIKE, shownMatch);
}

/**
 * Percent-encodings peeled off at most: eSMS encodes some values twice (`error_info`: `%2522`);
 * a number hidden under more is no provider's, and each level costs a pass over a short line.
 */
const MAX_DECODINGS = 4;

/** One character's UTF-8 bytes, percent-escaped (`%20`, `%C2%A0`: a no-break space is a separator too). */
const ESCAPED_CHARACTER = /^(?:%[0-7][0-9a-f]|%[c-d][0-9a-f]%[89ab][0-9a-f]|%e[0-9a-f](?:%[89ab][0-9a-f]){2}|%f[0-4](?:%[89ab][0-9a-f]){3})/i;

/** The character `text` spells at `at` as an escape, and the escape's length; undefined where none starts. */
function escapedAt(text: string, at: number): { char: string; length: number } | undefined {
  if (text[at] !== '%') return undefined;
  const escape = ESCAPED_CHARACTER.exec(text.slice(at, at + 12));
  if (!escape) return undefined;
  try {
    return { char: decodeURIComponent(escape[0]), length: escape[0].length };
  } catch {
    return undefined; // an overlong or surrogate encoding: no character, left as it is
  }
}

/**
 * A URL (or a path, or a query string) with its phone numbers masked where a reader would find
 * them: in the text its percent-escapes spell (`0901%20888%20484`, `%30%39…`, `%2520` one level
 * down) and with a query's `+` read as the space form encoding makes it (`0901+888+484`). Each
 * number is masked in place of the characters that spell it; the rest is printed as it is.
 */
export function maskPhoneNumbersInUrl(url: string, options: MaskOptions = {}): string {
  return maskSpelled(url, url.replace(/\+/g, ' '), escapedAt, MAX_DECODINGS, options);
}

/**
 * A URL in a text: a scheme, two slashes (or backslashes, which a URL parser reads as slashes) and
 * what follows up to white space, a quote or an angle bracket.
 */
const URL_IN_TEXT = /[A-Za-z][A-Za-z0-9+.-]*:[/\\]{2}[^\s"'<>`]*/g;

/**
 * `text` with every URL in it shown without what may be a credential: its user name and password
 * (`https://user:pass@host` as `https://***@host`), each value of its query (`?token=***`, a bare
 * `?abc123` as `?***`) and its fragment. A base URL in a settings or secrets file (a status endpoint,
 * TeleSign's messaging API) can carry them, and a banner, a log line or an error quoting it printed
 * them whole; fetch's own error for such a URL quotes it too. The host, port and path are kept.
 */
export function maskUrlSecrets(text: string): string {
  return text.replace(URL_IN_TEXT, (url) => {
    const [, start, authority, path, query, fragment] = /^([^:]+:[/\\]+)([^/\\?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/s.exec(url)!;
    const at = authority.lastIndexOf('@');
    const host = at === -1 ? authority : `***${authority.slice(at)}`;
    const values = query?.slice(1).split(/([&;])/).map((part) => (part === '' || part === '&' || part === ';' ? part : part.includes('=') ? `${part.slice(0, part.indexOf('='))}=***` : '***'));
    return `${start}${host}${path}${values ? `?${values.join('')}` : ''}${fragment ? (fragment === '#' ? '#' : '#***') : ''}`;
  });
}

/** What a JSON string escape after `\` spells (RFC 8259 section 7). */
const JSON_ESCAPES: Readonly<Record<string, string>> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/** The character a JSON escape spells at `at` (`\u00a0`, `\t`), and the escape's length; undefined where none starts. */
function jsonEscapedAt(text: string, at: number): { char: string; length: number } | undefined {
  if (text[at] !== '\\') return undefined;
  const unicode = /^u[0-9a-f]{4}/i.exec(text.slice(at + 1, at + 6));
  if (unicode) return { char: String.fromCharCode(parseInt(unicode[0].slice(1), 16)), length: 6 };
  const char = Object.hasOwn(JSON_ESCAPES, text[at + 1] ?? '') ? JSON_ESCAPES[text[at + 1]] : undefined;
  return char === undefined ? undefined : { char, length: 2 };
}

/**
 * JSON text (a callback's body as received) with its phone numbers masked in the text its escapes
 * spell: a serializer that writes every character past ASCII as an escape (Python's json.dumps by
 * default) writes a no-break space between a number's groups as `\u00a0`, and a tab as `\t`. Each
 * number is masked in place of the characters that spell it; the rest, escapes included, is as it was.
 */
export function maskPhoneNumbersInJsonText(text: string, options: MaskOptions = {}): string {
  return maskSpelled(text, text, jsonEscapedAt, 1, options);
}

/**
 * `source` with the phone numbers masked that `spelled` (as long as `source`: the same text, a
 * character or more read otherwise, such as a query's `+` as a space) spells once up to `levels`
 * levels of the escapes `decodeAt` reads are decoded; each number in place of the characters that spell it.
 */
function maskSpelled(
  source: string,
  spelled: string,
  decodeAt: (text: string, at: number) => { char: string; length: number } | undefined,
  levels: number,
  options: MaskOptions,
): string {
  // The text as decoded, and for each of its UTF-16 units where in `source` it starts and ends.
  let text = spelled;
  let starts = Array.from({ length: text.length }, (_, at) => at);
  let ends = starts.map((at) => at + 1);
  for (let level = 0; level < levels; level++) {
    const [next, nextStarts, nextEnds]: [string[], number[], number[]] = [[], [], []];
    for (let at = 0; at < text.length; ) {
      const escaped = decodeAt(text, at);
      const [char, length] = escaped ? [escaped.char, escaped.length] : [text[at], 1];
      for (const unit of char.split('')) {
        next.push(unit);
        nextStarts.push(starts[at]);
        nextEnds.push(ends[at + length - 1]);
      }
      at += length;
    }
    if (next.length === text.length) break; // nothing was decoded
    [text, starts, ends] = [next.join(''), nextStarts, nextEnds];
  }
  let shown = '';
  let from = 0;
  for (const match of text.matchAll(options.mintedId ? PHONE_LIKE_IN_MINTED_ID : PHONE_LIKE)) {
    if (match[1] !== undefined || masked(match[0]) === match[0]) continue; // a hex id or a date, or too few digits
    const [start, end] = [starts[match.index], ends[match.index + match[0].length - 1]];
    shown += `${source.slice(from, start)}${masked(match[0])}`;
    from = end;
  }
  return shown + source.slice(from);
}

/**
 * Every string in `value` (an object, an array, a Set, as a stored item holds them) with its phone
 * numbers masked as `maskPhoneNumbers` masks them, and every number that can be a phone number
 * (`PHONE_LIKE_NUMBER`) masked as that number in text: what `npm run inspect` shows of a callback.
 * An object's keys too: a payload's fields are its sender's, who may key a map by recipient.
 */
export function maskPhoneNumbersIn(value: unknown, options: MaskOptions = {}): unknown {
  if (typeof value === 'string') return maskPhoneNumbers(value, options);
  // Up to 1e21, a whole number's String() is its digits (beyond, an exponent: no number to call).
  if (typeof value === 'number') return Number.isInteger(value) && value >= PHONE_LIKE_NUMBER && value < 1e21 ? masked(String(value)) : value;
  if (Array.isArray(value)) return value.map((each) => maskPhoneNumbersIn(each, options));
  if (value instanceof Set) return new Set([...value].map((each) => maskPhoneNumbersIn(each, options)));
  if (value !== null && typeof value === 'object') {
    // Entries, not assignments: a key `__proto__` (JSON.parse makes it an own field) stays a field.
    const shown = new Map<string, unknown>();
    for (const [key, each] of Object.entries(value)) {
      // Two keys that mask alike (the same length, the same last digits) are both kept, told apart.
      const maskedKey = maskPhoneNumbers(key, options);
      let name = maskedKey;
      for (let n = 2; shown.has(name); n++) name = `${maskedKey} (${n})`;
      shown.set(name, maskPhoneNumbersIn(each, options));
    }
    return Object.fromEntries(shown);
  }
  return value;
}

/** A phone-like match as logged: its last three digits (fewer than 7 digits is no number: as it is). */
function masked(match: string): string {
  // By code point: a digit past the BMP (𝟎, U+1D7CE) is two UTF-16 units, and a cut between them a lone surrogate.
  const digits = Array.from(match.replace(NOT_A_DIGIT, ''));
  return digits.length < 7 ? match : `${'*'.repeat(digits.length - 3)}${digits.slice(-3).join('')}`;
}

/** A destination known to be a phone number (an SMS instruction's), masked whatever its form: only its last three digits. */
export function maskPhoneNumber(destination: string): string {
  const digits = Array.from(destination.replace(NOT_A_DIGIT, ''));
  return `${'*'.repeat(Math.max(0, digits.length - 3))}${digits.slice(-3).join('')}`;
}

/** `j***@example.com`; an address without an `@` (as a provider may send it) is not shown at all. */
export function maskEmail(address: string): string {
  const at = /^(.).*(@.*)$/.exec(address);
  return at ? `${at[1]}***${at[2]}` : '***';
}

/**
 * What a reader must not be given as it is: control characters (C0, DEL, C1); format characters
 * (bidi overrides and isolates, U+202A-202E and U+2066-2069, which a terminal or a log console that
 * draws bidi text uses to show the rest of the line reversed; zero-width characters and the BOM,
 * which draw nothing, so two different ids look alike); every other character that draws nothing
 * (DRAWS_NOTHING, which masking reads through: Hangul fillers, variation selectors, the combining
 * grapheme joiner), for the same reason; the line and paragraph separators (a line break to some log
 * viewers); and lone surrogates (printed as U+FFFD, hiding what was stored).
 */
const NOT_SHOWN = new RegExp(String.raw`[\p{Cc}${DRAWS_NOTHING}\p{Zl}\p{Zp}\p{Cs}]`, 'gu');

/**
 * Text as a reader may be given it: the characters of NOT_SHOWN written as `\u` escapes, as JSON
 * writes a control character (one beyond U+FFFF as its two UTF-16 units). A field can hold a
 * sender's text (a Standard Webhooks type, a TemboPlus status, a subject id), and written raw its
 * escapes would recolour, retitle or clear a terminal, or its line break start a line that reads
 * as the pipeline's own. JSON.stringify escapes C0 alone. Every log line goes through it (inside a
 * JSON line such characters stand only in strings, where the escape reads back as the same text),
 * and so do `npm start`'s pretty lines, `npm run events`' readable ones and `npm run inspect`'s text.
 */
export function printable(text: string): string {
  return text.replace(NOT_SHOWN, (char) => {
    let escaped = '';
    for (let i = 0; i < char.length; i += 1) escaped += `\\u${char.charCodeAt(i).toString(16).padStart(4, '0')}`;
    return escaped;
  });
}

export function createLogger(options: LoggerOptions): Logger {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const now = options.now ?? (() => new Date());
  const min = threshold(options.minLevel ?? process.env.AWS_LAMBDA_LOG_LEVEL);
  const emit = (level: LogLevel, message: string, fields?: LazyLogFields) => {
    if (SEVERITY[level] < min) return;
    // Object.assign, not a spread after the fixed fields: that took V8's slow path (~2 us a line).
    write(printable(JSON.stringify(Object.assign({ level, timestamp: now().toISOString(), service: options.service, message }, invocationFields, typeof fields === 'function' ? fields() : fields))), level);
  };
  return {
    debug: (message, fields) => emit('DEBUG', message, fields),
    info: (message, fields) => emit('INFO', message, fields),
    warn: (message, fields) => emit('WARN', message, fields),
    error: (message, fields) => emit('ERROR', message, fields),
  };
}
