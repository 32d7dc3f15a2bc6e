import { TABLE } from '../functions/core/pipeline-definition.ts';
import { findProvider } from '../functions/providers/index.ts';
import { subjectIdMasking, type AnyProvider } from '../functions/providers/provider.ts';
import { maskPhoneNumbers, maskPhoneNumbersIn, maskPhoneNumbersInJsonText, maskPhoneNumbersInUrl, type MaskOptions } from '../functions/shared/log.ts';

/** Attributes that exist for keys and bookkeeping, not for readers. */
const INTERNAL = ['pk', 'sk', TABLE.outcomeIndex.partitionKey, TABLE.recheckIndex.partitionKey, 'recent', 'seen', 'changes', 'orderKey', 'version'];

/** What an item flagged `sensitive` keeps out of `--json` unless --show-sensitive: where its content is. */
const SENSITIVE_CONTENT = ['payload', 'rawGzip', 'rawGzipChunks', 'message', 'messageGzip', 'headers'];
export const SENSITIVE_NOTE = '(may carry a live code or a contact: --show-sensitive prints it)';

/**
 * Where an item spells what a callback carried, so a phone number in it (an eSMS recipient, the
 * sender of a TeleSign inbound SMS, a TemboPlus receiverAccount, a Standard Webhooks payload's
 * own fields) is: its subject and part, its payload, its event key, its status (a Standard Webhooks
 * sender names its `type` freely: `sms.to.995512345678`), the provider's text kept beside a status
 * (`detail`: a TemboPlus statusCode that contradicts its status, an Identomat sessionType), a
 * quarantined callback's message, the headers kept with it (a sender's `webhook-id` or request id);
 * and the bytes of those, which cannot be read to mask (replaced by the note).
 */
const CALLBACK_TEXT = ['subjectId', 'part', 'payload', 'eventKey', 'status', 'confirmedStatus', 'detail', 'message', 'headers'];
const CALLBACK_BYTES = ['rawGzip', 'messageGzip'];

/**
 * What a queue message says of itself, not of the callback: the gateway's own fields, shown whole on
 * the quarantine item beside it (`sourceIp`, `requestId`, `receivedAt`), which masking would only
 * garble (`203.113.152.10` read as a number).
 */
const ENVELOPE = ['v', 'provider', 'receivedAt', 'requestId', 'sourceIp', 'method', 'reprocessOf', 'reprocessExpiresAt'];

/**
 * Headers whose value the gateway checked is a time, not text a sender chose: Standard Webhooks'
 * `webhook-timestamp` (seconds since 1970, within 5 minutes of receipt, or the callback was
 * refused), which the phone rule would garble (`*******218`).
 */
const TIME_HEADERS = ['webhook-timestamp'];

/** Kept headers with their phone numbers masked, times shown as stored. */
function shownHeaders(headers: unknown, options: MaskOptions): unknown {
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) return maskPhoneNumbersIn(headers, options);
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, TIME_HEADERS.includes(name) && typeof value === 'string' && /^\d{1,12}$/.test(value) ? value : maskPhoneNumbersIn(value, options)]));
}

/**
 * A body kept in base64 (one that is not UTF-8, or one that is smaller so) with its phone numbers
 * masked in the bytes it spells, as it would be as text: base64 hides nothing from a reader who
 * decodes it. Bytes that are not UTF-8 are read a byte a character (Latin-1), so that every other
 * byte comes back as it was.
 */
function maskedBase64(base64: string, options: MaskOptions): string {
  const bytes = Buffer.from(base64, 'base64');
  let encoding: 'utf8' | 'latin1' = 'utf8';
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    encoding = 'latin1';
  }
  return Buffer.from(maskPhoneNumbersInJsonText(bytes.toString(encoding), options), encoding).toString('base64');
}

/** How each part of a received request is read to mask it: the query as a URL, the body as JSON text or the bytes base64 spells. */
const RAW_PART_MASKS: Readonly<Record<string, (text: string, options: MaskOptions) => string>> = {
  query: maskPhoneNumbersInUrl,
  body: maskPhoneNumbersInJsonText,
  bodyBase64: maskedBase64,
};

/**
 * A quarantined callback's queue message (JSON text) with the phone numbers of what the callback
 * carried masked: its raw query as a URL's is (the text its escapes spell; eSMS's ids readable
 * behind an escape such as `voice%3A`), its raw body in the text its JSON escapes spell (text, or the
 * bytes base64 spells), its headers and any payload as text and values are.
 */
function shownMessage(text: string, options: MaskOptions): string {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return maskPhoneNumbers(text, options);
  }
  if (message === null || typeof message !== 'object' || Array.isArray(message)) return maskPhoneNumbers(text, options);
  const shown = Object.entries(message).map(([key, value]): [string, unknown] => {
    if (ENVELOPE.includes(key)) return [key, value];
    if (key === 'headers') return [key, shownHeaders(value, options)];
    if (key !== 'raw' || value === null || typeof value !== 'object') return [key, maskPhoneNumbersIn(value, options)];
    const raw = Object.entries(value).map(([part, bytes]) => {
      const mask = Object.hasOwn(RAW_PART_MASKS, part) ? RAW_PART_MASKS[part] : undefined;
      return [part, mask && typeof bytes === 'string' ? mask(bytes, options) : maskPhoneNumbersIn(bytes, options)];
    });
    return [key, Object.fromEntries(raw)];
  });
  return JSON.stringify(Object.fromEntries(shown));
}

/**
 * A stored item as `npm run inspect` shows it: without its bookkeeping attributes and, unless
 * `showSensitive`, without what it keeps back (live codes, contacts, phone numbers).
 */
export function shownItem(item: Record<string, unknown>, showSensitive: boolean): Record<string, unknown> {
  const kept = Object.entries(item).filter(([key]) => !INTERNAL.includes(key));
  if (showSensitive) return Object.fromEntries(kept);
  const provider = findProvider(String(item.provider));
  // A live code, a phone number or an e-mail address in a terminal, a pipe or a ticket: only when asked.
  // (An instruction stored before event items carried `sensitive` is known by its provider's reading.)
  const sensitive = item.sensitive === true || (item.payload !== undefined && provider?.instruction?.(item.payload) !== undefined);
  // A phone number, whichever provider's callback carried it, is masked as in a log line (its last
  // three digits: eSMS recipients stay told apart); a part is a recipient, never an id the provider made up.
  const shown = (key: string, value: unknown): unknown => {
    if (sensitive && SENSITIVE_CONTENT.includes(key)) return SENSITIVE_NOTE;
    if (CALLBACK_BYTES.includes(key)) return SENSITIVE_NOTE;
    if (!CALLBACK_TEXT.includes(key)) return value;
    // Ids the provider makes up stay readable; a part (a recipient) and a header (the sender's) are never those.
    const options = key === 'part' || key === 'headers' ? {} : subjectIdMasking(provider);
    if (key === 'headers') return shownHeaders(value, options);
    return key === 'message' && typeof value === 'string' ? shownMessage(value, options) : maskPhoneNumbersIn(value, options);
  };
  return Object.fromEntries(kept.map(([key, value]) => [key, shown(key, value)]));
}

/** `key=value …` of a state's detail (the counters, labels and inferences kept beside a status). */
function detailText(detail: unknown): string {
  if (!detail || typeof detail !== 'object') return '';
  // Sorted: DynamoDB keeps no order among a map's keys.
  return Object.entries(detail as Record<string, unknown>)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => `${key}=${String(value)}`)
    .join(' ');
}

export function stateLines(provider: AnyProvider, s: Record<string, unknown>, indent: string): string[] {
  const lines = [
    `${indent}status      ${s.status ?? '(none applied)'}   outcome ${s.outcome}${s.terminal ? ', terminal' : ''}`,
    `${indent}status at   ${s.statusAt ?? '-'}   updated ${s.updatedAt}   events ${s.eventCount}`,
  ];
  const detail = detailText(s.detail);
  if (detail) lines.push(`${indent}detail      ${detail}`);
  lines.push(`${indent}${confirmationText(provider, s)}`);
  if (s.expectedAt) lines.push(`${indent}expected    since ${s.expectedAt} (npm run expect)`);
  const faults = s.recheckFaults ? `; the status endpoint failed the last ${s.recheckFaults} time(s): ${s.recheckFault}` : '';
  if (s.stale) lines.push(`${indent}STALE       since ${s.staleAt}: not final when re-checks ran out${faults}; check it with the provider`);
  else if (s.recheckAt) {
    lines.push(`${indent}re-check    next at ${s.recheckAt} (${s.rechecks ?? 0} done)${faults}`);
  }
  return lines;
}

/** What is known about the status's confirmation: the verdict, or why there is none. */
function confirmationText(provider: AnyProvider, s: Record<string, unknown>): string {
  if (s.confirmation) {
    const differences = Array.isArray(s.differences) && s.differences.length ? `differs in ${s.differences.join(', ')}` : '';
    // An answer about another subject names no status for this one: what differs is said all the same.
    const said = s.confirmedStatus ? ` (provider says ${s.confirmedStatus}${differences ? `, ${differences}` : ''})` : differences ? ` (the provider's answer ${differences})` : '';
    return `confirmation ${s.confirmation}${said} at ${s.confirmedAt}`;
  }
  if (!provider.lookup) return `confirmation none: unconfirmed (${provider.displayName} offers no status endpoint; the status is as its callbacks report it)`;
  if (s.recheckAt && !s.stale) return 'confirmation none yet: the provider is asked at the next re-check';
  // Asked, and the endpoint failed each time until re-checks ran out (the horizon): not "not asked".
  if (s.recheckFaults) return `confirmation none: unconfirmed (${provider.displayName}'s status endpoint failed the last ${s.recheckFaults} time(s): ${s.recheckFault})`;
  // Not asked: the secret holds no credentials for the endpoint (or, as TeleSign's statusLookup, did
  // not opt in), or the endpoint does not serve this kind of callback (TeleSign's Get Status knows
  // only some delivery codes; bulk and inbound SMS not at all).
  return `confirmation none: unconfirmed (${provider.displayName}'s status endpoint was not asked: its secret holds no credentials for it, or it does not serve this kind of callback)`;
}

/**
 * The timeline's note on a callback's confirmation. A callback of a provider that does not sign
 * (`callbackTrust` `token`: anyone holding the URL or key could send it) is a claim once the
 * provider is asked, and one the provider's answer contradicts (`mismatch`) or does not know
 * (`not_found`) is never believed: its own reading (`COMPLETED outcome=succeeded`) is not the
 * subject's status, and the line says so rather than read as a success. It says no more than that:
 * such a claim may be forged, or only older news (a `SUBMITTED` the provider has moved past), or
 * not known to the provider yet (re-checked, and its verdict here updated when one comes).
 */
export function confirmationNote(callbackTrust: 'signed' | 'token', event: Record<string, unknown>): string {
  if (event.confirmation) {
    const notBelieved = callbackTrust === 'token' && event.source !== 'status-endpoint' && (event.confirmation === 'mismatch' || event.confirmation === 'not_found');
    return `  confirmation=${String(event.confirmation)}${event.confirmedStatus ? `→${String(event.confirmedStatus)}` : ''}${notBelieved ? ' (not confirmed by the provider: not taken as the status)' : ''}`;
  }
  return event.askFault ? `  not confirmed on arrival (${String(event.askFault)})` : '';
}
