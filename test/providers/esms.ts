import { describeIssues } from '../../functions/providers/common.ts';
import { esms, type EsmsCallback } from '../../functions/providers/esms.ts';
import { secureEquals } from '../../functions/shared/secure-compare.ts';
import * as z from '../../functions/shared/zod.ts';
import { SimulatedHttpError, type SimulatedAnswer, type SimulatedRequest, type StatusSimulation } from '../../local/status-simulator.ts';
import {
  editQuery,
  fieldValues,
  flatCredentials,
  hexOf,
  lifeDice,
  pathToken,
  pathTokenAuth,
  type Content,
  type FuzzRegression,
  type FuzzTools,
  type MoreContent,
  type ProviderKit,
  type QueryTools,
} from './kit.ts';

/** How voice call results are keyed (`voice:<ReferenceId>`): no SMSID may start with it. */
const VOICE_PREFIX = 'voice:';

// --- status simulation (the worker asks eSMS) ---

const OPERATION = /\/MainService\.svc\/json\/(GetSendStatus|GetSmsReceiverStatus_get)$/;

/** Which of eSMS's status operations a request is for. */
type Operation = 'message' | 'receivers' | 'call';

/** A count or a flag as a callback writes it (a string) or as eSMS's answers do (a number, a boolean). */
const count = z.union([z.number().check(z.int(), z.nonnegative()), z.string().check(z.regex(/^\d+$/))]);
const flag = z.union([z.boolean(), z.enum(['true', 'false', 'True', 'False', '1', '0'])]);

/** What the simulated endpoint is told about a call (the subject is `voice:<ReferenceId>`). */
const CallAnswerSchema = z.looseObject({ ReferenceId: z.string().check(z.minLength(1)), SendStatus: count, SentResult: z.optional(count), CallDuration: z.optional(count) });

/**
 * What the simulated endpoint is told about a message: what its answer reads as (a callback's
 * fields: SMSID, SendStatus and the counters; for one recipient `phonenumber`, `IsSent` and
 * `SentResult`), or eSMS's own GetSendStatus answer; and the `ReceiverList` GetSmsReceiverStatus_get
 * gives for it, when it lists more than the one recipient.
 */
const MessageAnswerSchema = z.looseObject({
  SMSID: z.string().check(
    z.minLength(1),
    z.refine((id) => !id.startsWith(VOICE_PREFIX), `an SMSID cannot start with "${VOICE_PREFIX}"`),
  ),
  SendStatus: count,
  SendSuccess: z.optional(count),
  SendFailed: z.optional(count),
  TotalReceiver: z.optional(count),
  TotalSent: z.optional(count),
  phonenumber: z.optional(z.string()),
  IsSent: z.optional(flag),
  SentResult: z.optional(flag),
  ReceiverList: z.optional(z.array(z.looseObject({ Phone: z.string().check(z.minLength(1)), IsSent: z.optional(flag), SentResult: z.optional(flag) }))),
});

/** A count as eSMS's answers write it (a number). */
const asNumber = (value: unknown) => (value === undefined || value === null || value === '' ? undefined : Number(value));
/** A flag as eSMS's answers write it (a boolean). */
const asFlag = (value: unknown) => (value === undefined ? undefined : value === true || value === 1 || /^(true|1)$/i.test(String(value)));
const defined = (entries: [string, unknown][]) => Object.fromEntries(entries.filter(([, value]) => value !== undefined));

/** GetSendStatus's answer (the docs' fields, in the docs' order, counts as numbers). */
function messageBody(record: Record<string, unknown>) {
  return defined([
    ['CodeResponse', '100'],
    ['SMSID', record.SMSID],
    ['SendFailed', asNumber(record.SendFailed) ?? 0],
    ['SendStatus', asNumber(record.SendStatus)],
    ['SendSuccess', asNumber(record.SendSuccess) ?? 0],
    ['TotalPrice', asNumber(record.TotalPrice) ?? 0],
    ['TotalReceiver', asNumber(record.TotalReceiver) ?? 0],
    ['TotalSent', asNumber(record.TotalSent) ?? asNumber(record.TotalReceiver) ?? 0],
  ]);
}

/** GetSmsReceiverStatus_get's answer: the record's list, or the one recipient it names. */
function receiversBody(record: Record<string, unknown>) {
  const listed = (record.ReceiverList as Record<string, unknown>[] | undefined) ?? (record.phonenumber ? [{ Phone: record.phonenumber, IsSent: record.IsSent, SentResult: record.SentResult }] : []);
  const ReceiverList = listed.map((receiver) =>
    defined([
      ['IsSent', asFlag(receiver.IsSent) ?? true],
      ['NetworkName', receiver.NetworkName ?? 'Viettel'],
      ['Phone', receiver.Phone],
      ['Retry', asNumber(receiver.Retry) ?? 0],
      ['SentResult', asFlag(receiver.SentResult)],
    ]),
  );
  return { CodeResult: '100', ReceiverList };
}

/** The voice call status answer (the docs' fields, counts as numbers). */
function callBody(record: Record<string, unknown>) {
  return defined([
    ['CallDuration', asNumber(record.CallDuration) ?? 0],
    ['CallStatus', record.CallStatus ?? ''],
    ['CodeResponse', '100'],
    ['Ivr', record.Ivr ?? ''],
    ['ReferenceId', record.ReferenceId],
    ['SendStatus', asNumber(record.SendStatus)],
    ['SentResult', asNumber(record.SentResult)],
  ]);
}

/**
 * eSMS's status endpoints as its docs describe them, SIMULATED, on one host (a stand-in for both
 * rest.esms.vn and voiceapi.esms.vn: the eSMS module sends voice requests to `baseUrl` unless it
 * is eSMS's own):
 *   GET /MainService.svc/json/GetSendStatus?RefId={SMSID}&ApiKey=…&SecretKey=…
 *   GET /MainService.svc/json/GetSmsReceiverStatus_get?ApiKey=…&SecretKey=…&RefId={SMSID}
 *   GET /MainService.svc/json/GetSendStatus?ApiKey=…&SecretKey=…&ReferenceId={ReferenceId}  (voice)
 * Every answer is HTTP 200 with a body code: 100 and the answer (counts as numbers and flags as
 * booleans, as the docs' examples write them); 101 when ApiKey or SecretKey is missing or wrong (the
 * docs' 101 bodies, which differ per operation); 105 for an id it was not told about. The HTTP
 * status and the 105 bodies are not published: 200, and bodies shaped like the 101 ones (inferred).
 * A missing id is answered 400 and another method 405: the docs do not say.
 *
 * It is told a subject's answer as the answer reads (a callback's fields, `MessageAnswerSchema`), so
 * the suites can read a told answer with `describe` as the worker reads the looked-up one. The
 * engine (local/status-simulator.ts) keeps one answer a subject, and calls `refuse` then `found` or
 * `notFound` in one synchronous step, so the operation of the request is carried between them (set
 * by `subjectOf` and `refuse`); `found` of an answer asked without a request serves GetSendStatus
 * (or the call's status).
 * @see https://developers.esms.vn/esms-api/ham-truy-xuat-va-dang-ky/ham-kiem-tra-tin-nhan-theo-smsid
 * @see https://developers.esms.vn/esms-api/ham-truy-xuat-va-dang-ky/ham-kiem-tra-chi-tiet-tung-so-trong-tin-nhan
 * @see https://developers.esms.vn/en/esms-api/voice/get-voice-call-status
 */
export function esmsStatusSimulation(apiKey: string, secretKey: string): StatusSimulation {
  let operation: Operation | undefined;
  const read = (request: SimulatedRequest): { operation: Operation; id: string | null } | undefined => {
    const match = OPERATION.exec(request.path);
    if (!match) return undefined;
    if (match[1] === 'GetSmsReceiverStatus_get') return { operation: 'receivers', id: request.query.get('RefId') };
    return request.query.has('ReferenceId') ? { operation: 'call', id: request.query.get('ReferenceId') } : { operation: 'message', id: request.query.get('RefId') };
  };
  const authorized = (request: SimulatedRequest) => secureEquals(request.query.get('ApiKey') ?? undefined, apiKey) && secureEquals(request.query.get('SecretKey') ?? undefined, secretKey);
  const ok = (body: unknown): SimulatedAnswer => ({ status: 200, body });
  /** The operation this step is for, forgotten once used. */
  const take = (fallback: Operation): Operation => {
    const current = operation ?? fallback;
    operation = undefined;
    return current;
  };
  const notFound = (id: string, of: Operation) =>
    of === 'message' ? ok({ CodeResponse: '105', SMSID: id }) : ok({ CodeResult: '105', ErrorMessage: 'Not found' });
  return {
    name: 'eSMS',
    controlToken: secretKey,
    subjectOf(request) {
      const asked = read(request);
      if (!asked) return undefined;
      if (request.method !== 'GET') throw new SimulatedHttpError(405, 'method_not_allowed', ['use GET']);
      if (!asked.id) throw new SimulatedHttpError(400, 'validation_error', [`${asked.operation === 'call' ? 'ReferenceId' : 'RefId'} is required`]);
      operation = asked.operation;
      return asked.operation === 'call' ? `${VOICE_PREFIX}${asked.id}` : asked.id;
    },
    authorized,
    refuse(request) {
      const asked = read(request)!;
      operation = asked.operation;
      if (!authorized(request)) {
        operation = undefined;
        if (asked.operation === 'message') return ok({ CodeResponse: '101', SMSID: asked.id });
        if (asked.operation === 'call') return ok({ CodeResult: '101', CountRegenerate: 0, ErrorMessage: 'Authorize Failed' });
        return ok({ CodeResult: '101', ErrorMessage: 'Authorize Failed' });
      }
      // An SMSID of a call's form would be answered from the call's record: eSMS has no such message.
      if (asked.operation !== 'call' && asked.id!.startsWith(VOICE_PREFIX)) {
        operation = undefined;
        return notFound(asked.id!, asked.operation);
      }
      return undefined;
    },
    found(answer) {
      const record = answer as Record<string, unknown>;
      const of = take('ReferenceId' in record ? 'call' : 'message');
      return ok(of === 'call' ? callBody(record) : of === 'receivers' ? receiversBody(record) : messageBody(record));
    },
    notFound(subjectId) {
      const of = take(subjectId.startsWith(VOICE_PREFIX) ? 'call' : 'message');
      return notFound(of === 'call' ? subjectId.slice(VOICE_PREFIX.length) : subjectId, of);
    },
    subjectOfAnswer(answer) {
      if (answer && typeof answer === 'object' && 'ReferenceId' in answer) {
        const call = CallAnswerSchema.safeParse(answer);
        if (!call.success) throw new Error(`not an eSMS call status: ${describeIssues(call.error).join('; ')}`);
        return `${VOICE_PREFIX}${call.data.ReferenceId}`;
      }
      const message = MessageAnswerSchema.safeParse(answer);
      if (!message.success) throw new Error(`not an eSMS message status: ${describeIssues(message.error).join('; ')}`);
      return message.data.SMSID;
    },
  };
}

/** A callback's query, read as the gateway reads it. */
function callbackOf(content: Content): EsmsCallback {
  const parsed = esms.parse({ method: 'GET', headers: {}, body: Buffer.alloc(0), rawQuery: content.query ?? '', sourceIp: '127.0.0.1', requestId: 'kit', receivedAt: new Date().toISOString() });
  if (!parsed.ok) throw new Error(`not an eSMS callback: ${parsed.reason}`);
  return parsed.payload;
}

/**
 * What eSMS answers about a callback's subject, the same status (or `status`), as the answer reads
 * (what `lookup` returns, every value a string, so `describe` reads it as it reads the callback):
 * the call's status for a voice result; for a message its status and the callback's counters (a
 * count the callback lacks as the rest imply it); for a recipient also its entry in the receiver
 * list: sent, and succeeded or failed as the callback reads; sent without a result when the
 * callback cannot say (its counters are mixed, or count nothing), so the answer reads the same; not
 * sent before SendStatus 5 or 7.
 */
function esmsStatusAnswer(content: Content, status?: string): unknown {
  const callback = callbackOf(content);
  const SendStatus = status ?? callback.SendStatus;
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
  if (callback.SMSID === undefined) {
    return defined([
      ['ReferenceId', callback.ReferenceId],
      ['SendStatus', SendStatus],
      ['SentResult', callback.SentResult],
      ['CallDuration', text(callback.CallDuration)],
      ['CallStatus', text(callback.CallStatus)],
      ['Ivr', text(callback.Ivr)],
    ]);
  }
  const success = callback.SendSuccess ?? '0';
  const failed = callback.SendFailed ?? '0';
  const total = callback.TotalReceiver ?? String(Number(success) + Number(failed));
  const message = { SMSID: callback.SMSID, SendStatus, SendSuccess: success, SendFailed: failed, TotalReceiver: total, TotalSent: text(callback.TotalSent) ?? total };
  if (!callback.phonenumber) return message;
  const { outcome } = esms.describe({ ...callback, SendStatus });
  const IsSent = SendStatus === '5' || SendStatus === '7' ? 'true' : 'false';
  const result = SendStatus === '5' ? (outcome === 'succeeded' ? '1' : outcome === 'failed' ? '0' : undefined) : IsSent === 'true' ? '0' : undefined;
  return { ...message, phonenumber: callback.phonenumber, IsSent, ...(result === undefined ? {} : { SentResult: result }) };
}

// --- hostile-input suite (test/fuzz) ---

/**
 * eSMS's own shapes. Ids that look alike across the keying (the message is `esms#<SMSID>`, a
 * recipient `STATE#<phone>`, a call `voice:<ReferenceId>`): ':', '&', '|', '#' and "voice:" inside
 * SMSIDs, ReferenceIds and recipients, with per-recipient and mixed counters; SMSIDs of a voice
 * call's form; phone-number-like runs.
 */
function moreContent({ fc, id }: FuzzTools, { validPairs, encode, withValue, content }: QueryTools): MoreContent {
  const lookalike = fc.array(fc.constantFrom('A', 'B', ':', '&', '|', '#', '=', '%', '+', VOICE_PREFIX, 'STATE', '0901'), { minLength: 1, maxLength: 6 }).map((pieces) => pieces.join(''));
  const lookalikeCallback = fc
    .record({
      voice: fc.boolean(),
      id: lookalike,
      phone: fc.option(lookalike.filter((phone) => phone.length <= 32), { nil: undefined }),
      status: fc.constantFrom('1', '2', '4', '5', '7'),
      success: fc.nat(3),
      failed: fc.nat(3),
      total: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
    })
    .filter(({ voice, id: value }) => voice || !value.startsWith(VOICE_PREFIX))
    .map(({ voice, id: value, phone, status, success, failed, total }) => {
      const pairs: [string, string][] = [
        [voice ? 'ReferenceId' : 'SMSID', value],
        ['SendStatus', status],
        ...(voice ? [['SentResult', String(success % 2)] as [string, string]] : [['SendSuccess', String(success)] as [string, string], ['SendFailed', String(failed)] as [string, string]]),
        ...(total === undefined ? [] : [['TotalReceiver', String(total)] as [string, string]]),
        ...(phone === undefined ? [] : [['phonenumber', phone] as [string, string]]),
      ];
      return content(encode(pairs), 'valid', 'lookalike-ids');
    });
  return {
    valid: (samples) => fc.oneof({ arbitrary: samples, weight: 3 }, { arbitrary: lookalikeCallback, weight: 1 }),
    'wrong-type': [
      // An SMSID of a voice call's form would share its subject: refused, whatever follows the prefix.
      fc.record({ pairs: validPairs, rest: fc.oneof(lookalike, id) }).map(({ pairs, rest }) => content(encode(withValue(pairs, 'SMSID', `${VOICE_PREFIX}${rest}`)), 'invalid', 'refused:SMSID-voice-prefix')),
    ],
    huge: [
      // Phone-number-like runs (digits and spaces) that end in a letter: a backtracking trap for
      // anything that scans subject ids for phone numbers.
      fc.record({ pairs: validPairs, field: fc.constantFrom('phonenumber', 'SMSID'), length: fc.integer({ min: 2_000, max: 60_000 }) }).map(({ pairs, field, length }) =>
        content(encode(withValue(pairs, field, `${'7 '.repeat(length)}x`)), 'either', `phone-like-run:${field}`),
      ),
    ],
  };
}

/** Requests the fuzzer found mishandled: values that become keys. */
const REGRESSIONS: readonly FuzzRegression[] = [
  { what: 'SendStatus of 5,000 digits (sort key)', layer: 'schema', content: () => ({ query: `SMSID=long-status&SendStatus=${'5'.repeat(5_000)}` }), expect: 'quarantined' },
  { what: 'phonenumber of 3,000 characters (partition key over 2 KB)', layer: 'schema', content: () => ({ query: `SMSID=long-phone&SendStatus=5&phonenumber=${'9'.repeat(3_000)}` }), expect: 'quarantined' },
];

/** eSMS: a GET whose query is the callback; a secret token in the URL path (eSMS signs nothing). */
export const esmsKit: ProviderKit = {
  provider: esms,
  route: 'GET /callbacks/esms/{token}',
  secret: (tag, options = {}) => ({
    token: pathToken(tag, 'esms'),
    apiKey: `${tag}-esms-api-key`,
    secretKey: `${tag}-esms-secret-key`,
    // Nowhere real unless a suite runs a stand-in status endpoint (voice requests follow it there).
    baseUrl: options.statusEndpoint ?? 'https://esms.invalid',
  }),
  credentials: fieldValues(['token', 'apiKey', 'secretKey']),
  ...flatCredentials(['token']),
  requiredFields: ['SMSID', 'SendStatus'],
  sample: 'customer-care',
  otherStatus: (content) => editQuery(content, (params) => params.set('SendStatus', '7')),
  withSubject(sample, subjectId) {
    // SMSID, or ReferenceId for voice results, replaced in the raw query.
    const query = sample.query ?? '';
    for (const name of ['SMSID', 'ReferenceId']) {
      const pattern = new RegExp(`(^|&)(${name})=[^&]*`, 'i');
      if (pattern.test(query)) return { ...sample, query: query.replace(pattern, `$1$2=${encodeURIComponent(subjectId)}`) };
    }
    throw new Error('eSMS sample has neither SMSID nor ReferenceId');
  },
  ...pathTokenAuth,
  statusSimulation: (secret) => esmsStatusSimulation(String(secret.apiKey), String(secret.secretKey)),
  statusAnswer: esmsStatusAnswer,
  // SendStatus 1: waiting to be sent.
  pendingStatus: '1',

  // --- hostile-input suite (test/fuzz) ---
  fuzz: {
    content: {
      kind: 'query',
      // SMS, Zalo and Viber results name the message; voice call results the call. No SMSID may
      // take a voice call's form.
      subject: { names: ['SMSID', 'ReferenceId'], max: 128, refuses: (value) => value.startsWith(VOICE_PREFIX) },
      fields: [
        { name: 'SendStatus', kind: 'digits', required: true, max: 20 },
        { name: 'SendSuccess', kind: 'digits', max: 20 },
        { name: 'SendFailed', kind: 'digits', max: 20 },
        { name: 'TotalReceiver', kind: 'digits', max: 20 },
        { name: 'SentResult', kind: 'digits', max: 20 },
        // The recipient's state is kept under it (a key).
        { name: 'phonenumber', kind: 'string', max: 32 },
        { name: 'error_info', kind: 'loose' },
      ],
      namesIgnoreCase: true,
      more: moreContent,
    },
    authenticatesBody: false,
    regressions: REGRESSIONS,
  },

  // --- fault suite (test/faults) ---
  // Sending (2), then 7, then delivered (5) or failed (4): tiers and ranks, since eSMS sends no time.
  life(name) {
    const SMSID = `${hexOf(`esms/${name}`, 32)}250`;
    const final = lifeDice(name).succeeds ? 'SendStatus=5&SendSuccess=1&SendFailed=0' : 'SendStatus=4&SendSuccess=0&SendFailed=1';
    return [`SMSID=${SMSID}&SendStatus=2`, `SMSID=${SMSID}&SendStatus=7`, `SMSID=${SMSID}&${final}`].map((query) => ({ query }));
  },
  sendsStatusTime: false,

  // --- benchmark (bench/) ---
};
