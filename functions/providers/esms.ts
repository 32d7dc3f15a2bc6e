import { ConfigurationError, DependencyError } from '../shared/errors.ts';
import { shortHash } from '../shared/hash.ts';
import * as z from '../shared/zod.ts';
import { answerJson, endpointFault, authenticatePathToken, configuredString, credentialUrl, describeIssues, keySegment, protoMemberRefused, readBoundedBody, requestFault, schemaMismatch, unclearJson } from './common.ts';
import {
  secretVersions,
  type EventFacts,
  type LookupContext,
  type LookupSubject,
  type ParseFailure,
  type Outcome,
  type Provider,
  type StatusAnswer,
  type StatusDetail,
} from './provider.ts';
import { secretWithRotation } from './secret-schema.ts';

/** eSMS's API host (SMS, Zalo, Viber): GetSendStatus and GetSmsReceiverStatus_get. */
export const ESMS_BASE_URL = 'https://rest.esms.vn';
/** eSMS's voice API host: the call status (its own GetSendStatus). */
export const ESMS_VOICE_BASE_URL = 'https://voiceapi.esms.vn';

/**
 * `{ token, apiKey?, secretKey?, baseUrl?, voiceBaseUrl? }`. `token` is the random secret in our
 * callback URL (eSMS authenticates nothing itself). `apiKey` and `secretKey` are the account's
 * API keys, for eSMS's status endpoints: without both, eSMS is not asked and its callbacks are
 * believed as they come (unconfirmed). `baseUrl` is where those endpoints are (eSMS's own by
 * default; a stand-in such as http://127.0.0.1:PORT works). `voiceBaseUrl` is the voice API's
 * host: by default eSMS's voice host while `baseUrl` is eSMS's own, else `baseUrl` itself, so a
 * stand-in answers for calls too and no key is sent to eSMS by a setup that points elsewhere.
 */
export const EsmsSecretSchema = secretWithRotation({
  token: configuredString,
  apiKey: z.optional(configuredString),
  secretKey: z.optional(configuredString),
  // Optional, its default applied where it is used: a secret with the token alone reads as before.
  baseUrl: z.optional(credentialUrl),
  voiceBaseUrl: z.optional(credentialUrl),
});
export type EsmsSecret = z.infer<typeof EsmsSecretSchema>;

/** eSMS's field names, spelled as its samples spell them; the query may use any case. */
const CANONICAL_NAMES = [
  'SMSID', 'SendFailed', 'SendStatus', 'SendSuccess', 'TotalPrice', 'TotalReceiver', 'TotalSent',
  'RequestId', 'TypeId', 'telcoid', 'phonenumber', 'partnerids', 'error_info', 'oaid', 'tempid',
  'switchsmsid', 'ReferenceId', 'CallDuration', 'CallStatus', 'Ivr', 'Price', 'SentResult', 'CID', 'IsSent',
] as const;
const CANONICAL_BY_LOWER = new Map<string, string>(CANONICAL_NAMES.map((name) => [name.toLowerCase(), name]));

// Counters and statuses are short numbers; bounded, as they end up in keys (DynamoDB keys: 1 KB sort, 2 KB partition).
const digits = z.string().check(z.maxLength(20), z.regex(/^\d+$/, 'expected digits'));

/** Subject ids of voice call results: `voice:<ReferenceId>`. No SMSID may take this form. */
const VOICE_PREFIX = 'voice:';

/**
 * An eSMS callback: everything is in the GET query string and every value is a string.
 * SMS/Zalo/Viber callbacks carry `SMSID`; voice call results carry `ReferenceId`.
 *
 * An SMSID that starts with `voice:` is refused (quarantined, kept whole): voice results are kept
 * under `voice:<ReferenceId>`, and such an SMSID would land on the same subject as a call. eSMS's
 * SMSIDs are ids it generates: hex or UUID text, often followed by digits, in every callback sample
 * and status answer its docs show (`82b0bb8aed914a0aab8deba567c9b8c2`,
 * `dc712784-9c5f-4c69-b9a8-ea69d56adc9a87`), so a genuine one never has that form (inferred).
 * @see https://developers.esms.vn/esms-api/callback-url
 * @see https://github.com/devesms/gitbook_esms_for_develop_v2 `esms-api/ham-goi-voice/ham-tao-cuoc-goi-tu-dong-tu-file-ghi-am.md` (voice call results)
 */
export const EsmsCallbackSchema = z
  .looseObject({
    SMSID: z.optional(
      z.string().check(
        z.minLength(1),
        z.maxLength(128),
        z.refine((id) => !id.startsWith(VOICE_PREFIX), `an SMSID cannot start with "${VOICE_PREFIX}": that is how voice call results (ReferenceId) are keyed`),
      ),
    ),
    ReferenceId: z.optional(z.string().check(z.minLength(1), z.maxLength(128))),
    SendStatus: digits,
    SendSuccess: z.optional(digits),
    SendFailed: z.optional(digits),
    TotalReceiver: z.optional(digits),
    SentResult: z.optional(digits),
    // A call's result (ANSWERED, NO ANSWER; NOANSWERED in the call status answer): short text, in the event key.
    CallStatus: z.optional(z.string().check(z.maxLength(64))),
    // A recipient's "sent or not yet" (eSMS's receiver-status answer, as `lookup` writes it).
    IsSent: z.optional(z.enum(['true', 'false'])),
    // The recipient's state is kept under it (sort key): a phone number or a Zalo user id, not a document.
    phonenumber: z.optional(z.string().check(z.maxLength(32))),
    error_info: z.optional(z.string()),
  })
  .check(z.refine((query) => query.SMSID || query.ReferenceId, { message: 'SMSID (or ReferenceId for voice) is required', path: ['SMSID'] }));
export type EsmsCallback = z.infer<typeof EsmsCallbackSchema> & { errorInfo?: unknown };

/**
 * The fields the gateway reads (subject, recipient, event, outcome). One of them given twice with
 * different values (`SMSID=A&smsid=B`) does not say which is true: the callback is quarantined.
 */
const READ_FIELDS = new Set(['SMSID', 'ReferenceId', 'SendStatus', 'SendSuccess', 'SendFailed', 'TotalReceiver', 'SentResult', 'CallStatus', 'IsSent', 'phonenumber', 'error_info']);

/** Query parameters with eSMS's inconsistent name case folded to the canonical spelling. */
export function canonicalQuery(rawQuery: string): Record<string, string> {
  return readQuery(rawQuery).query;
}

/** The canonical query, the read fields given more than once with different values, and whether a parameter is named __proto__. */
function readQuery(rawQuery: string): { query: Record<string, string>; conflicts: string[]; protoMember: boolean } {
  const query: Record<string, string> = {};
  const conflicts: string[] = [];
  let protoMember = false;
  for (const pair of rawQuery.split('&')) {
    if (!pair) continue;
    const split = pair.indexOf('=');
    const name = decodeComponent(split < 0 ? pair : pair.slice(0, split));
    // Assigned, it would be no parameter at all (protoMemberRefused says why it is not read).
    if (name === '__proto__') {
      protoMember = true;
      continue;
    }
    const value = split < 0 ? '' : decodeComponent(pair.slice(split + 1));
    const canonical = CANONICAL_BY_LOWER.get(name.toLowerCase()) ?? name;
    const previous = query[canonical];
    if (previous !== undefined && previous !== value && READ_FIELDS.has(canonical) && !conflicts.includes(canonical)) conflicts.push(canonical);
    query[canonical] = value;
  }
  return { query, conflicts, protoMember };
}

/**
 * Percent-decoding only: a literal `+` stays a `+` (form decoding would turn `phonenumber=+84…` into
 * a space). A malformed escape is kept as sent rather than failing the whole callback.
 */
function decodeComponent(value: string): string {
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * `error_info` arrives in three encodings (the eSMS docs' samples, test/fixtures/esms/zalo-*.query): a JSON string literal wrapping JSON,
 * double URL-encoded JSON with a `____dd/MM/yyyy HH:mm:ss` suffix, and plain JSON.
 */
export function decodeErrorInfo(value: string): unknown {
  return readErrorInfo(value).value;
}

/**
 * `error_info` decoded (decodeErrorInfo), or the member its JSON names twice in one object
 * (repeatedMember): JSON.parse keeps the last, and `{"error":-114,"error":0}` would read as no
 * Zalo error, the recipient's failure as a success; or a number its JSON reads as a whole number it
 * is not (misreadNumber: `{"error":1e-400}` is error 0, no error). Such a callback is quarantined,
 * as a JSON body is.
 */
function readErrorInfo(value: string): { value?: object; unclear?: ParseFailure } {
  const plain = parseObject(value);
  if (plain.value !== undefined || plain.unclear !== undefined) return plain;
  let decoded: string;
  try {
    decoded = decodeURIComponent(value);
  } catch {
    return {}; // not URL-encoded
  }
  return parseObject(decoded.replace(/____\d{2}\/\d{2}\/\d{4} \d{2}:\d{2}:\d{2}$/, ''));
}

/** JSON text that can hold an object: an object, an array, or a string (JSON inside JSON). */
const MAY_HOLD_OBJECT = /^\s*[{["]/;

/**
 * The object a JSON text (or a JSON string of JSON) holds, or why it does not say which value it
 * means (unclearJson), else neither. Text that cannot be one is told apart before JSON.parse: a thrown SyntaxError cost ~3 us
 * per encoded error_info.
 */
function parseObject(text: string): { value?: object; unclear?: ParseFailure } {
  if (!MAY_HOLD_OBJECT.test(text)) return {};
  try {
    let json = text;
    let parsed: unknown = JSON.parse(json);
    if (typeof parsed === 'string') {
      if (!MAY_HOLD_OBJECT.test(parsed)) return {};
      json = parsed;
      parsed = JSON.parse(json);
    }
    if (!parsed || typeof parsed !== 'object') return {};
    const unclear = unclearJson(json, 'error_info');
    return unclear === undefined ? { value: parsed } : { unclear };
  } catch {
    return {};
  }
}

const count = (value: string | undefined) => (value === undefined ? 0 : Number(value));

/** Voice call results name the call by ReferenceId and carry no SMSID. */
const isVoice = (query: EsmsCallback) => query.SMSID === undefined;

/*
 * The state orders a terminal status by rank first: a SendStatus 5 ranks by how many recipients its
 * counters account for (SendSuccess + SendFailed), so a late retry of an earlier report never
 * replaces a fuller one (inferred: eSMS's counters for a message only grow). However many: the
 * state's order key writes any rank so that it sorts as the number (functions/core/state.ts `rankText`).
 */

/**
 * A recipient's Zalo error (`error_info.error`, e.g. -114 "User is inactive…"), or undefined when
 * there is none: absent, null and 0 (the samples' "Success") mean no error.
 */
function zaloErrorOf(errorInfo: unknown): string | undefined {
  if (!errorInfo || typeof errorInfo !== 'object' || Array.isArray(errorInfo)) return undefined;
  const error = (errorInfo as Record<string, unknown>).error;
  if (error === undefined || error === null || error === 0 || error === '0') return undefined;
  return typeof error === 'number' || (typeof error === 'string' && INTEGER.test(error)) ? String(error) : JSON.stringify(error);
}
const INTEGER = /^-?\d{1,18}$/;

/**
 * Whether the callback carries an `error_info` that says nothing readable: not empty, yet in none of
 * the encodings `readErrorInfo` reads. eSMS keeps a Zalo message's error info as JSON followed by
 * other text (`{"error":-124,"message":"Access token is invalid"}Object reference not set to an
 * instance of an object.`, the `ErrorInfo` of its stored callback data, "Mã lỗi và thông tin lỗi
 * của tin nhắn", the message's error code and error text:
 * https://developers.esms.vn/esms-api/ham-truy-xuat-va-dang-ky/ham-lay-thong-tin-callback-tin-nhan-zalo).
 * Such a text may hold an error we cannot see, so it never lets the counters read as success.
 * A payload that holds no decoded value (one not read by `parse`) has its text decoded here. The
 * decoded value is always an object: a query parameter the sender named `errorInfo` (the schema
 * keeps unknown ones) is text, and never stands for a reading of `error_info`. JSON that holds a
 * list, not an object, is not read either: it may hold an error, and no `error` member is read from it.
 */
function errorInfoUnread(query: EsmsCallback): boolean {
  if (!query.error_info || query.error_info.trim() === '') return false;
  const value = query.errorInfo !== null && typeof query.errorInfo === 'object' ? query.errorInfo : readErrorInfo(query.error_info).value;
  // A list is JSON, but no Zalo error is read from it (zaloErrorOf reads an object's `error`).
  return value === undefined || Array.isArray(value);
}

/** How a SendStatus 5 was turned into an outcome, kept in the state's `detail.inference`. */
export type EsmsInference =
  | 'all-succeeded'
  | 'all-failed'
  | 'mixed'
  | 'none-counted'
  | 'not-all-counted'
  | 'zalo-error'
  | 'recipient-result'
  | 'recipient-not-sent'
  | 'error-info-unreadable';

/**
 * SendStatus 5 is "sent; the outcome is in the counters" (SendSuccess / SendFailed), and the
 * counters are the message's, not the recipient's (the customer-care sample names one recipient
 * and counts TotalReceiver 2, SendFailed 2). A recipient's own result, where the payload carries
 * it, comes first: eSMS's receiver-status answer (`lookup` writes it as `IsSent`, and `SentResult`
 * 1 success / 0 failure, the voice results' spelling) says `SentResult` true "success", false
 * "failed", `IsSent` false "not yet sent" (`recipient-not-sent`: pending and not final, so the
 * recipient is asked about again until it has a result; eSMS's callbacks carry neither for a
 * message). Otherwise, all (inferred) from the counters:
 * - a recipient (the callback names a `phonenumber`): a Zalo `error_info` with a non-zero `error`
 *   is that recipient's failure (`zalo-error`); else every recipient succeeded (SendSuccess > 0,
 *   SendFailed 0: `all-succeeded`) or failed (SendSuccess 0, SendFailed > 0: `all-failed`), which
 *   covers a one-recipient message (TotalReceiver 1) too. Some of each (`mixed`), or receivers not
 *   counted yet (`not-all-counted`: SendSuccess 1 of TotalReceiver 2 may be another recipient),
 *   cannot say which recipient this was: `unknown`, never success.
 * - the message as a whole (no `phonenumber`): succeeded or failed only when every recipient is
 *   counted the same way (TotalReceiver, when sent, is reached); `mixed` and `not-all-counted`
 *   are `unknown` (there is no "partial" outcome), and so is a success a Zalo `error_info` error
 *   contradicts (`zalo-error`: which recipient's error it is, the report does not say).
 * - either: counters of success beside an `error_info` that cannot be read are `unknown`
 *   (`error-info-unreadable`, see errorInfoUnread).
 * - nothing counted (both 0 or absent, as in the promo sample with TotalReceiver 169): `unknown`.
 * Voice call results: see `callOutcome`.
 */
function sentOutcome(query: EsmsCallback, recipient: string | undefined, zaloError: string | undefined, unread: boolean): { outcome: Outcome; rank: number; terminal?: false; ranksAsTerminal?: true; inference?: EsmsInference } {
  if (isVoice(query)) return { outcome: callOutcome(query), rank: 0 };
  const success = count(query.SendSuccess);
  const failed = count(query.SendFailed);
  const rank = success + failed;
  // "IsSent: false = not yet sent" (GetSmsReceiverStatus_get): this recipient has no result yet.
  // https://developers.esms.vn/en/esms-api/retrive-and-register-functions/get-message-details
  if (recipient !== undefined && query.IsSent === 'false') return { outcome: 'pending', terminal: false, rank, inference: 'recipient-not-sent' };
  if (recipient !== undefined && (query.SentResult === '1' || query.SentResult === '0')) {
    return { outcome: query.SentResult === '1' ? 'succeeded' : 'failed', rank, inference: 'recipient-result' };
  }
  if (recipient !== undefined && zaloError !== undefined) return { outcome: 'failed', rank, inference: 'zalo-error' };
  // The message as a whole, with receivers eSMS has not counted yet (none, as in the promo sample's 0
  // of 169, or some): its counters are still to move, so it is not final. Ordered with SendStatus 5
  // all the same (a late 7 never replaces it), and asked about again until every receiver is counted,
  // or the horizon. (A recipient's own result comes from eSMS's receiver list, above.)
  const uncounted = recipient === undefined && success + failed < count(query.TotalReceiver) ? ({ terminal: false, ranksAsTerminal: true } as const) : {};
  if (success > 0 && failed > 0) return { outcome: 'unknown', rank, ...uncounted, inference: 'mixed' };
  // Counting no one, it says less than a rejection (4, rank 0) that came before it: ranked below, so
  // a late 5 of nothing counted never turns a final failure back into a state still to move.
  if (success === 0 && failed === 0) return { outcome: 'unknown', rank: -1, ...uncounted, inference: 'none-counted' };
  // The counters are the message's: with a receiver not counted yet, a recipient's callback cannot say
  // whether this recipient is one of those counted, so it is no more a success than the message is.
  if (success + failed < count(query.TotalReceiver)) return { outcome: 'unknown', rank, ...uncounted, inference: 'not-all-counted' };
  if (success === 0) return { outcome: 'failed', rank, inference: 'all-failed' };
  // Every receiver counted a success, yet `error_info` names a Zalo error (the message's, with no
  // recipient to pin it on: a recipient's is its failure, above) or cannot be read (it may name one):
  // the report contradicts itself or may, so it is no success.
  if (zaloError !== undefined) return { outcome: 'unknown', rank, inference: 'zalo-error' };
  if (unread) return { outcome: 'unknown', rank, inference: 'error-info-unreadable' };
  return { outcome: 'succeeded', rank, inference: 'all-succeeded' };
}

/**
 * What a call's callback (or the call status answer) says of the call. `SentResult` is only "the
 * send result via the carrier" (0 failed, 1 succeeded); the call's own result is `CallStatus`:
 * ANSWERED or NO ANSWER in the callback, and in the call status answer ANSWERED ("the call was
 * answered") or NOANSWERED ("the call failed or nobody picked up"). So a call succeeded only when
 * it was sent (SentResult 1) and answered; it failed when it was not sent (SentResult 0) or not
 * answered; anything else (the sample's empty CallStatus, an undocumented value, no SentResult) is
 * `unknown`, never success.
 * @see https://github.com/devesms/gitbook_esms_for_develop_v2 `esms-api/ham-goi-voice/ham-tao-cuoc-goi-tu-dong-tu-file-ghi-am.md` (CallbackUrl: "CallStatus: kết quả cuộc gọi (ANSWERED, NO ANSWER)", "SentResult: Kết quả gửi tin qua nhà mạng")
 * @see https://github.com/devesms/gitbook_esms_for_develop_v2 `esms-api/ham-goi-voice/ham-lay-trang-thai-cuoc-goi.md` ("NOANSWERED: cuộc gọi thất bại hoặc không ai bắt máy")
 */
function callOutcome(query: EsmsCallback): Outcome {
  const answered = callAnswered(query.CallStatus);
  if (query.SentResult === '0' || answered === false) return 'failed';
  return query.SentResult === '1' && answered === true ? 'succeeded' : 'unknown';
}

/** CallStatus as a fact: true answered, false not answered (both documented spellings), undefined when it says neither. */
function callAnswered(callStatus: string | undefined): boolean | undefined {
  if (callStatus === 'ANSWERED') return true;
  if (callStatus === 'NO ANSWER' || callStatus === 'NOANSWERED') return false;
  return undefined;
}

/** The counters as sent (strings, exactly), and what was made of them. */
function detailOf(query: EsmsCallback, zaloError: string | undefined, inference: EsmsInference | undefined): StatusDetail | undefined {
  const detail: Record<string, string> = {};
  if (inference !== undefined) detail.inference = inference;
  if (query.SendSuccess !== undefined) detail.SendSuccess = query.SendSuccess;
  if (query.SendFailed !== undefined) detail.SendFailed = query.SendFailed;
  if (query.TotalReceiver !== undefined) detail.TotalReceiver = query.TotalReceiver;
  if (query.SentResult !== undefined) detail.SentResult = query.SentResult;
  if (isVoice(query) && query.CallStatus) detail.CallStatus = query.CallStatus;
  // Only the reading it changes: a sent recipient is told by SentResult.
  if (query.IsSent === 'false') detail.IsSent = query.IsSent;
  if (zaloError !== undefined) detail.zaloError = zaloError;
  return Object.keys(detail).length ? detail : undefined;
}

function classify(query: EsmsCallback, recipient: string | undefined, zaloError: string | undefined, unread: boolean): Pick<EventFacts, 'outcome' | 'terminal' | 'rank' | 'detail' | 'ranksAsTerminal'> {
  let reading: { outcome: Outcome; terminal: boolean; rank: number; ranksAsTerminal?: true; inference?: EsmsInference };
  switch (query.SendStatus) {
    case '4': // rejected
      reading = { outcome: 'failed', terminal: true, rank: 0 };
      break;
    case '5':
      reading = { terminal: true, ...sentOutcome(query, recipient, zaloError, unread) };
      break;
    case '7': // sent to the telco, awaiting its report: later than 1 and 2
      reading = { outcome: 'pending', terminal: false, rank: 1 };
      break;
    // The steps before sending, in eSMS's own order ("0: đang soạn thảo · 1: chờ duyệt · 2: chờ
    // gửi", drafting, pending approval, waiting to send, then 7, 4 and 5:
    // https://developers.esms.vn/esms-api/ham-truy-xuat-va-dang-ky/ham-kiem-tra-trang-thai-tin-nhan-theo-khoang-thoi-gian).
    // eSMS's callbacks carry no time, so reports are placed by when they arrive: ranked alike, a
    // late "pending approval" took the status back from "waiting to send". Below 2's rank 0, so a
    // state stored before keeps its order key and is still passed only forward.
    case '0': // drafting
      reading = { outcome: 'pending', terminal: false, rank: -2 };
      break;
    case '1': // pending approval
      reading = { outcome: 'pending', terminal: false, rank: -1 };
      break;
    default: // 2 waiting to send; unlisted codes are never success either
      reading = { outcome: 'pending', terminal: false, rank: 0 };
  }
  const detail = detailOf(query, zaloError, reading.inference);
  return { outcome: reading.outcome, terminal: reading.terminal, rank: reading.rank, ...(reading.ranksAsTerminal ? { ranksAsTerminal: true } : {}), ...(detail ? { detail } : {}) };
}

/**
 * What makes a callback distinct: every field its subject, recipient and outcome are read from.
 * A retry (the same query) has the same key. The recipient comes last and the fields before it hold
 * no `|` (digits; a Zalo error code that is not an integer is hashed), so no two callbacks share a key.
 */
function eventKeyOf(query: EsmsCallback, zaloError: string | undefined, recipient: string | undefined, unread: boolean): string {
  // An error_info that cannot be read changes the reading (errorInfoUnread): `?`, never an error code or `#`.
  const zalo = zaloError === undefined ? (unread ? '?' : '') : INTEGER.test(zaloError) ? zaloError : `#${shortHash(zaloError)}`;
  // IsSent is only ever "false" when read (a sent recipient is told by SentResult); absent, the key is as before.
  // A call's CallStatus (its result) follows, only when it says something: a call result without
  // one keys as before. keySegment keeps a `|` out; `~call=` cannot be taken for `~unsent`.
  const call = isVoice(query) && query.CallStatus ? `~call=${keySegment(query.CallStatus)}` : '';
  const sent = `${query.SentResult ?? ''}${query.IsSent === 'false' ? '~unsent' : ''}${call}`;
  return `${query.SendStatus}|${query.SendSuccess ?? ''}|${query.SendFailed ?? ''}|${query.TotalReceiver ?? ''}|${sent}|${zalo}|${recipient ?? ''}`;
}

/**
 * What a callback (or an answer of eSMS's status endpoints, in the same shape) says. The subject is
 * the message, named by the SMSID exactly as the send API returned it (`pk = "esms#<SMSID>"`); a
 * voice call result is `voice:<ReferenceId>`. A callback that names a recipient (`phonenumber`) is
 * about that recipient: it is the part, and the recipient's state is kept at
 * `STATE#<phonenumber>` in the message's partition. Without one (or with an empty one) it is about
 * the message as a whole (`STATE`).
 */
function describeEsms(query: EsmsCallback): EventFacts {
  const recipient = query.phonenumber ? query.phonenumber : undefined;
  const zaloError = zaloErrorOf(query.errorInfo);
  const unread = errorInfoUnread(query);
  return {
    subjectId: isVoice(query) ? `${VOICE_PREFIX}${query.ReferenceId}` : (query.SMSID as string),
    ...(recipient === undefined ? {} : { part: recipient }),
    eventKey: eventKeyOf(query, zaloError, recipient, unread),
    status: query.SendStatus,
    ...classify(query, recipient, zaloError, unread),
  };
}

/**
 * The fields a claim must share with eSMS's answer to be `confirmed`: the status, and every counter
 * and result the claim carries (compared as numbers). Besides, a claim that reads as succeeded or
 * failed must read the same from the answer (`outcome`): a Zalo error, say, where eSMS's receiver
 * list says the recipient's message succeeded, or a delivery it says is not yet sent. A claim whose counters cannot say (mixed, none
 * counted) claims no outcome: the answer's recipient result is then news, not a disagreement.
 */
const COMPARED_FIELDS = ['SendStatus', 'SendSuccess', 'SendFailed', 'TotalReceiver', 'SentResult', 'CallStatus'] as const;

/**
 * A field as compared: counters as numbers; a call's CallStatus by what it says (the callback's
 * NO ANSWER and the call status answer's NOANSWERED are one fact), else as its text.
 */
function comparable(field: (typeof COMPARED_FIELDS)[number], value: string): unknown {
  if (field !== 'CallStatus') return Number(value);
  const answered = callAnswered(value);
  return answered === undefined ? value : answered;
}

function esmsDifferences(claim: EsmsCallback, answer: EsmsCallback): string[] {
  const differences: string[] = COMPARED_FIELDS.filter((field) => {
    const claimed = claim[field];
    // An empty CallStatus (the docs' own sample) claims nothing.
    if (claimed === undefined || (field === 'CallStatus' && claimed === '')) return false;
    const answered = answer[field];
    return answered === undefined || comparable(field, claimed) !== comparable(field, answered);
  });
  const definite = (outcome: Outcome) => outcome === 'succeeded' || outcome === 'failed';
  const [claimed, answered] = [describeEsms(claim).outcome, describeEsms(answer).outcome];
  // Not yet sent (the receiver list's IsSent false) is no answer to a claimed result either.
  if (definite(claimed) && (definite(answered) || answered === 'pending') && claimed !== answered) differences.push('outcome');
  return differences;
}

// Status lookup. eSMS's status endpoints (GET, JSON), with the account's ApiKey and SecretKey as
// query parameters: the URL is a credential, so no URL (nor an answer's text) ever reaches an error
// message or a log line, and a redirect is not followed (it would carry the keys elsewhere).
//   GET {baseUrl}/MainService.svc/json/GetSendStatus?RefId={SMSID}&ApiKey=…&SecretKey=…
//     {"CodeResponse":"100","SMSID":…,"SendFailed":0,"SendStatus":5,"SendSuccess":1,"TotalPrice":850.0000,"TotalReceiver":1,"TotalSent":1}
//   GET {baseUrl}/MainService.svc/json/GetSmsReceiverStatus_get?ApiKey=…&SecretKey=…&RefId={SMSID}
//     {"CodeResult":"100","ReceiverList":[{"IsSent":true,"NetworkName":"Viettel","Phone":"0901888484","Retry":0,"SentResult":true}]}
//   GET {voiceBaseUrl}/MainService.svc/json/GetSendStatus?ApiKey=…&SecretKey=…&ReferenceId={ReferenceId}
//     {"CallDuration":13,"CallStatus":"ANSWERED","CodeResponse":"100","Ivr":"","ReferenceId":…,"SendStatus":5,"SentResult":1}
// The tables type every field "string"; the examples give numbers and booleans: both are read. The
// result is a body code (HTTP statuses are not documented): 100, 101 wrong keys, 105 not found.
// Answers cover the last 7 days. Pages:
//   https://developers.esms.vn/esms-api/ham-truy-xuat-va-dang-ky/ham-kiem-tra-tin-nhan-theo-smsid
//   https://developers.esms.vn/esms-api/ham-truy-xuat-va-dang-ky/ham-kiem-tra-chi-tiet-tung-so-trong-tin-nhan
//   https://developers.esms.vn/en/esms-api/voice/get-voice-call-status
//   https://developers.esms.vn/esms-api/bang-ma-loi (error codes)

/** One of eSMS's status operations. */
interface EsmsEndpoint {
  /** Said in errors: the operation, never its URL. */
  readonly name: string;
  readonly base: string;
  /** The secret field `base` comes from, named when it seems wrong. */
  readonly baseField: 'baseUrl' | 'voiceBaseUrl';
  readonly operation: 'GetSendStatus' | 'GetSmsReceiverStatus_get';
  /** The query parameter that names the message or call. */
  readonly idParameter: 'RefId' | 'ReferenceId';
  /** Parameter order as the docs print it (servers do not care; people comparing with the docs do). */
  readonly idFirst: boolean;
  readonly maxBytes: number;
}

/** Largest message or call answer read: a real one is under 300 bytes. */
const MAX_STATUS_BYTES = 256 * 1024;
/**
 * Largest receiver list read: about 100 bytes a recipient, so 10,000 recipients. Per-recipient
 * callbacks come from customer-care, Zalo and Viber sends (one phone number a request); an
 * advertising campaign's callback names no recipient, and its message is asked about as a whole.
 */
const MAX_RECEIVERS_BYTES = 1024 * 1024;

/** The SMS host in use: `baseUrl`, else eSMS's own. */
export function esmsBaseUrl(secret: Pick<EsmsSecret, 'baseUrl'>): string {
  return secret.baseUrl ?? ESMS_BASE_URL;
}

/** The voice host in use: `voiceBaseUrl`, else eSMS's own while `baseUrl` is eSMS's own, else `baseUrl` (a stand-in). */
export function esmsVoiceBaseUrl(secret: Pick<EsmsSecret, 'baseUrl' | 'voiceBaseUrl'>): string {
  if (secret.voiceBaseUrl) return secret.voiceBaseUrl;
  const base = esmsBaseUrl(secret);
  return new URL(base).origin === new URL(ESMS_BASE_URL).origin ? ESMS_VOICE_BASE_URL : base;
}

function endpoints(secret: EsmsSecret) {
  const sms = { base: esmsBaseUrl(secret), baseField: 'baseUrl', idParameter: 'RefId' } as const;
  return {
    message: { ...sms, name: 'GetSendStatus', operation: 'GetSendStatus', idFirst: true, maxBytes: MAX_STATUS_BYTES },
    receivers: { ...sms, name: 'GetSmsReceiverStatus_get', operation: 'GetSmsReceiverStatus_get', idFirst: false, maxBytes: MAX_RECEIVERS_BYTES },
    call: {
      name: 'voice GetSendStatus',
      base: esmsVoiceBaseUrl(secret),
      baseField: secret.voiceBaseUrl ? 'voiceBaseUrl' : 'baseUrl',
      operation: 'GetSendStatus',
      idParameter: 'ReferenceId',
      idFirst: false,
      maxBytes: MAX_STATUS_BYTES,
    },
  } satisfies Record<string, EsmsEndpoint>;
}

function statusUrl(endpoint: EsmsEndpoint, id: string, keys: { apiKey: string; secretKey: string }): URL {
  const url = new URL(endpoint.base);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/MainService.svc/json/${endpoint.operation}`;
  url.hash = '';
  const credentials: [string, string][] = [['ApiKey', keys.apiKey], ['SecretKey', keys.secretKey]];
  const parameters: [string, string][] = endpoint.idFirst ? [[endpoint.idParameter, id], ...credentials] : [...credentials, [endpoint.idParameter, id]];
  url.search = new URLSearchParams(parameters).toString();
  return url;
}

/** An HTTP status other than 200 (eSMS documents none: its answers are body codes). */
function httpFault(endpoint: EsmsEndpoint, response: Response): Error {
  const { status } = response;
  const said = `eSMS ${endpoint.name} answered HTTP ${status}`;
  if (status === 408 || status === 429 || status >= 500) return endpointFault('esms', said, response);
  if (status >= 300 && status < 400) {
    return new ConfigurationError(`${said}, a redirect, not followed (the keys are in the URL): set ${endpoint.baseField} in the esms secret to the endpoint's final address`);
  }
  if (status === 401 || status === 403) return new ConfigurationError(`${said}: check apiKey, secretKey and ${endpoint.baseField} in the esms secret`);
  if (status >= 400) return new ConfigurationError(`${said}: check ${endpoint.baseField} in the esms secret (eSMS's own is ${endpoint.baseField === 'baseUrl' ? ESMS_BASE_URL : ESMS_VOICE_BASE_URL})`);
  return new DependencyError('esms', said);
}

/** The body as text, read up to `maxBytes` (the rest is not downloaded); undefined when longer. */
async function readBounded(response: Response, maxBytes: number): Promise<string | undefined> {
  return (await readBoundedBody(response, maxBytes))?.toString('utf8');
}

/**
 * Ask one endpoint about `id`: eSMS's answer (body code 100), or undefined when eSMS does not know
 * the id (105). Every other outcome is thrown: a refusal only a person can fix is a
 * ConfigurationError naming what to fix, anything a retry may clear a DependencyError.
 */
async function askEsms(endpoint: EsmsEndpoint, id: string, keys: { apiKey: string; secretKey: string }, context: LookupContext): Promise<Record<string, unknown> | undefined> {
  let response: Response;
  let text: string | undefined;
  try {
    response = await context.fetch(statusUrl(endpoint, id, keys), {
      method: 'GET',
      headers: { accept: 'application/json' },
      redirect: 'manual',
      signal: AbortSignal.timeout(context.timeoutMs),
    });
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => undefined);
      throw httpFault(endpoint, response);
    }
    text = await readBounded(response, endpoint.maxBytes);
  } catch (error) {
    if (error instanceof DependencyError || error instanceof ConfigurationError) throw error;
    throw new DependencyError('esms', `eSMS ${endpoint.name} unreachable: ${requestFault(error, context.timeoutMs)}`);
  }
  if (text === undefined) throw new DependencyError('esms', `eSMS ${endpoint.name} answered more than ${endpoint.maxBytes} bytes`);
  const body = answerJson('esms', `eSMS ${endpoint.name}`, text);
  if (body === undefined) throw new DependencyError('esms', `eSMS ${endpoint.name} answered 200 with a body that is not JSON`);
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new DependencyError('esms', `eSMS ${endpoint.name} answered 200 with a body that is not a JSON object`);
  const answer = body as Record<string, unknown>;
  // `CodeResponse` on GetSendStatus, `CodeResult` on the receiver list and on the voice refusal.
  const rawCode = answer.CodeResponse ?? answer.CodeResult;
  const code = typeof rawCode === 'string' || typeof rawCode === 'number' ? String(rawCode).trim() : undefined;
  if (code === undefined) throw new DependencyError('esms', `eSMS ${endpoint.name} answered 200 without CodeResponse or CodeResult`);
  const said = `eSMS ${endpoint.name} answered code ${/^-?\d{1,6}$/.test(code) ? code : '(unreadable)'}`;
  switch (code) {
    case '100':
      return answer;
    case '105': // "not found: check the SMSID or retry later (a just-sent message cannot be queried at once)"
      return undefined;
    case '101':
      throw new ConfigurationError(`${said} (wrong ApiKey or SecretKey): check apiKey and secretKey in the esms secret`);
    // 140 is in eSMS's error table; 143 and 160 are not listed for these operations (inferred: eSMS
    // answers them elsewhere, and they would mean the same here).
    case '140':
      throw new ConfigurationError(`${said} (this IP address is not whitelisted): ask eSMS to whitelist the worker's outbound IP addresses; nothing in the esms secret fixes it`);
    case '143':
      throw new ConfigurationError(`${said} (the eSMS account is inactive or locked): the account of apiKey in the esms secret needs eSMS's support`);
    case '160':
      throw new DependencyError('esms', `${said} (too many requests a second)`);
    default:
      throw new DependencyError('esms', said);
  }
}

/** A count as eSMS writes it (a number, or digits in a string), as a callback carries it; undefined when absent. */
function countOf(answer: Record<string, unknown>, field: string, endpoint: string): string | undefined {
  const value = answer[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return String(value);
  if (typeof value === 'string' && /^\d{1,18}$/.test(value.trim())) return value.trim();
  throw new DependencyError('esms', `eSMS ${endpoint} answered 100 with a ${field} that is not a count`);
}

/** eSMS's true/false (JSON booleans in the examples, "True"/"False" in the docs' tables). */
function flagOf(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && /^(true|false)$/i.test(value.trim())) return value.trim().toLowerCase() === 'true';
  if (value === 1 || value === 0) return value === 1;
  return undefined;
}

/**
 * The id an answer names: the asked one when it echoes it (ids are hex GUIDs, whose case means
 * nothing, and eSMS's examples print both cases), else the echo, so an answer about another id
 * is seen as one (the worker proves nothing with it).
 */
function answeredId(echo: unknown, asked: string): string {
  if (typeof echo !== 'string' || echo.length === 0) return asked;
  return echo.toLowerCase() === asked.toLowerCase() ? asked : echo;
}

/** GetSendStatus's answer as a message callback: every value a string, as eSMS's callbacks send them. */
function messagePayload(answer: Record<string, unknown>, smsId: string): Record<string, string> {
  const status = countOf(answer, 'SendStatus', 'GetSendStatus');
  if (status === undefined) throw new DependencyError('esms', 'eSMS GetSendStatus answered 100 without a SendStatus');
  const payload: Record<string, string> = { SMSID: answeredId(answer.SMSID, smsId), SendStatus: status };
  for (const field of ['SendSuccess', 'SendFailed', 'TotalReceiver', 'TotalSent']) {
    const value = countOf(answer, field, 'GetSendStatus');
    if (value !== undefined) payload[field] = value;
  }
  const price = answer.TotalPrice;
  if ((typeof price === 'number' && Number.isFinite(price)) || (typeof price === 'string' && /^\d{1,18}(\.\d{1,8})?$/.test(price))) payload.TotalPrice = String(price);
  return payload;
}

/** The voice call status answer as a voice call result callback. */
function callPayload(answer: Record<string, unknown>, referenceId: string): Record<string, string> {
  const status = countOf(answer, 'SendStatus', 'voice GetSendStatus');
  if (status === undefined) throw new DependencyError('esms', 'eSMS voice GetSendStatus answered 100 without a SendStatus');
  const payload: Record<string, string> = { ReferenceId: answeredId(answer.ReferenceId, referenceId), SendStatus: status };
  for (const field of ['SentResult', 'CallDuration']) {
    const value = countOf(answer, field, 'voice GetSendStatus');
    if (value !== undefined) payload[field] = value;
  }
  for (const field of ['CallStatus', 'Ivr']) {
    const value = answer[field];
    if (typeof value === 'string' && value.length <= 64) payload[field] = value;
  }
  return payload;
}

/**
 * A Vietnamese number's one spelling (84 and the national significant number): `0901888484`,
 * `84901888484` and `+84901888484` are the same line. Any other number without its leading `+`.
 * Anything else (a Zalo user id is digits too, but longer) has no other spelling.
 */
function numberKey(value: string): string | undefined {
  const vietnamese = /^(?:\+?84|0)(\d{9,10})$/.exec(value);
  if (vietnamese) return `84${vietnamese[1]}`;
  const international = /^\+?(\d{6,15})$/.exec(value);
  return international ? international[1] : undefined;
}

interface Receiver {
  readonly phone: string;
  readonly isSent?: boolean;
  readonly sentResult?: boolean;
  readonly networkName?: string;
  readonly retry?: string;
}

function receiversOf(answer: Record<string, unknown>): Receiver[] {
  const list = answer.ReceiverList ?? [];
  if (!Array.isArray(list)) throw new DependencyError('esms', 'eSMS GetSmsReceiverStatus_get answered 100 with a ReceiverList that is not a list');
  return list.flatMap((entry): Receiver[] => {
    if (!entry || typeof entry !== 'object') return [];
    const { Phone, IsSent, SentResult, NetworkName, Retry } = entry as Record<string, unknown>;
    const phone = typeof Phone === 'number' && Number.isSafeInteger(Phone) ? String(Phone) : Phone;
    if (typeof phone !== 'string' || phone.length === 0) return [];
    const isSent = flagOf(IsSent);
    const sentResult = flagOf(SentResult);
    const retry = typeof Retry === 'number' || typeof Retry === 'string' ? String(Retry) : undefined;
    return [{
      phone,
      ...(isSent === undefined ? {} : { isSent }),
      ...(sentResult === undefined ? {} : { sentResult }),
      ...(typeof NetworkName === 'string' && NetworkName.length <= 64 ? { networkName: NetworkName } : {}),
      ...(retry !== undefined && /^\d{1,9}$/.test(retry) ? { retry } : {}),
    }];
  });
}

/**
 * The receiver a part (the callback's `phonenumber`) is, in eSMS's receiver list: the entries whose
 * `Phone` is the part exactly, else (none) those that are the same number in another spelling
 * (`numberKey`: 0… / 84… / +84…, a leading +). Not guessed: a number renumbered since (Vietnam's
 * 11-digit mobile numbers of 2018, 0168… → 038…), a number that matches only in its last digits,
 * spaces or punctuation, a Zalo user id other than exactly. None found, or several that disagree
 * (the same number listed twice with different results): undefined, and eSMS's answer says
 * nothing about this recipient (`not_found`).
 */
export function matchReceiver<T extends { readonly phone: string; readonly isSent?: boolean; readonly sentResult?: boolean }>(receivers: readonly T[], part: string): T | undefined {
  let matches = receivers.filter((receiver) => receiver.phone === part);
  const key = numberKey(part);
  if (matches.length === 0 && key !== undefined) matches = receivers.filter((receiver) => numberKey(receiver.phone) === key);
  if (matches.length === 0) return undefined;
  const [first] = matches;
  return matches.every((other) => other.isSent === first.isSent && other.sentResult === first.sentResult) ? first : undefined;
}

/** A receiver's entry as the fields of a recipient callback: `IsSent`, and `SentResult` 1 or 0 once sent. */
function receiverFields(receiver: Receiver): Record<string, string> {
  return {
    Phone: receiver.phone,
    ...(receiver.isSent === undefined ? {} : { IsSent: String(receiver.isSent) }),
    ...(receiver.isSent === true && receiver.sentResult !== undefined ? { SentResult: receiver.sentResult ? '1' : '0' } : {}),
    ...(receiver.networkName === undefined ? {} : { NetworkName: receiver.networkName }),
    ...(receiver.retry === undefined ? {} : { Retry: receiver.retry }),
  };
}

/** A payload built from eSMS's answer, checked as a callback would be. */
function found(payload: Record<string, string>): StatusAnswer<EsmsCallback> {
  const result = EsmsCallbackSchema.safeParse(payload);
  if (!result.success) throw new DependencyError('esms', `eSMS's answer does not read as a callback: ${describeIssues(result.error).join('; ')}`);
  return { kind: 'found', payload: result.data };
}

/**
 * Ask eSMS about a message, one of its recipients, or a voice call, and answer in the callback's
 * shape (every value a string), so `describe` names the same subject and part as the callbacks do.
 * - A message (no part): GetSendStatus, as a message callback.
 * - A recipient (part = the callback's `phonenumber`): GetSendStatus for the message's status and
 *   counters, then GetSmsReceiverStatus_get for this recipient's own result (`matchReceiver`), as
 *   a recipient callback with `phonenumber` the part exactly as asked. Two requests: the receiver
 *   list has no SendStatus, and its SentResult false means "failed" only once the message is sent
 *   (SendStatus 5). Most eSMS callbacks name a recipient (customer care, Zalo, Viber), and the
 *   recipient's result is what their counters, which are the message's, cannot say.
 * - A voice call (`voice:<ReferenceId>`): the voice GetSendStatus, as a call result callback. A call
 *   asked about with a part is not found: its answer names no callee to check the part against.
 * 105 (not known, or not yet) is `not_found`.
 */
async function lookupEsms({ subjectId, part }: LookupSubject, secret: EsmsSecret, context: LookupContext): Promise<StatusAnswer<EsmsCallback>> {
  const { apiKey, secretKey } = secret;
  if (!apiKey || !secretKey) throw new ConfigurationError('eSMS status lookup needs apiKey and secretKey in the esms secret');
  const keys = { apiKey, secretKey };
  const at = endpoints(secret);
  if (subjectId.startsWith(VOICE_PREFIX)) {
    if (part !== undefined) return { kind: 'not_found' };
    const referenceId = subjectId.slice(VOICE_PREFIX.length);
    const call = await askEsms(at.call, referenceId, keys, context);
    return call ? found(callPayload(call, referenceId)) : { kind: 'not_found' };
  }
  const message = await askEsms(at.message, subjectId, keys, context);
  if (!message) return { kind: 'not_found' };
  const payload = messagePayload(message, subjectId);
  if (part === undefined) return found(payload);
  const list = await askEsms(at.receivers, subjectId, keys, context);
  const receiver = list ? matchReceiver(receiversOf(list), part) : undefined;
  return receiver ? found({ ...payload, phonenumber: part, ...receiverFields(receiver) }) : { kind: 'not_found' };
}

export const esms: Provider<EsmsSecret, EsmsCallback, 'esms'> = {
  id: 'esms',
  displayName: 'eSMS',
  docsUrl: 'https://developers.esms.vn/esms-api/callback-url',
  route: { method: 'GET', path: '/callbacks/esms/{token}', tokenParameter: 'token' },
  authSummary: 'secret token in the URL path (eSMS signs nothing); statuses confirmed with GetSendStatus when apiKey and secretKey are set',
  // A URL token only (eSMS signs nothing): with the API keys, only eSMS's answers move the state.
  callbackTrust: 'token',
  // An SMSID is the id eSMS's send answer gives ("ID tin nhắn do esms trả về"), and a voice result's
  // ReferenceId the one its call answer gives (inferred: a GUID as that answer's, never the partner's
  // RequestId); see the send and MakeCallRecord_V2 pages of developers.esms.vn.
  mintsSubjectIds: true,
  // A callback with `phonenumber` is about that recipient, a state of its own (describe's `part`).
  partName: "the recipient's phone number",
  secretSchema: EsmsSecretSchema,
  generatedSecretField: 'token',
  secretPlaceholder: { token: 'REPLACE_ME' },

  authenticate: (request, secret) =>
    authenticatePathToken(request, secretVersions(secret).map((version) => version.token)),

  parse(request) {
    if (request.rawQuery.length === 0) return { ok: false, reason: 'empty query string', issues: [] };
    const { query, conflicts, protoMember } = readQuery(request.rawQuery);
    if (protoMember) return protoMemberRefused();
    if (conflicts.length) {
      return {
        ok: false,
        reason: `${conflicts.join(', ')} given more than once with different values`,
        issues: conflicts.map((name) => `${name}: given more than once with different values; which one is true is not said`),
      };
    }
    const result = EsmsCallbackSchema.safeParse(query);
    if (!result.success) return schemaMismatch(result.error);
    const payload: EsmsCallback = result.data;
    if (payload.error_info) {
      const errorInfo = readErrorInfo(payload.error_info);
      if (errorInfo.unclear !== undefined) return errorInfo.unclear;
      if (errorInfo.value !== undefined) return { ok: true, payload: { ...payload, errorInfo: errorInfo.value } };
    }
    return { ok: true, payload };
  },

  describe: (query) => describeEsms(query),

  differences: esmsDifferences,

  lookup: lookupEsms,

  canLookup: (secret) => Boolean(secret.apiKey && secret.secretKey),

  /**
   * eSMS answers for the last 7 days ("Chỉ lấy dữ liệu các tin trong vòng 7 ngày gần nhất"), and a
   * message sent moments ago is not known yet (105: "mới gửi tin sẽ không call api lấy trạng thái
   * ngay được"), for how long the docs do not say. Asked on arrival all the same: eSMS calls back
   * once the telco has reported, well after the send; if its query side still lags, the 105 is a
   * `not_found` the worker retries with back-off (QUEUE.settleAttempts) before reconciliation
   * takes over, which costs two or three requests; and a callback is only a claim here (a URL
   * token), so not asking would leave every status unconfirmed until the first re-check. A subject
   * expected before any callback is first asked a minute after (inferred: no figure published).
   * The request rate is not published either (only a body code for "too many a second"): a
   * recipient's lookup makes two requests, so five lookups a second keep an instance at the
   * gateway's default of ten requests.
   * @see https://developers.esms.vn/esms-api/ham-truy-xuat-va-dang-ky/ham-kiem-tra-tin-nhan-theo-smsid
   * @see https://developers.esms.vn/esms-api/bang-ma-loi
   */
  lookupLimits: { onArrival: true, firstAfterSeconds: 60, horizonHours: 7 * 24, perSecond: 5 },
};
