import fc from 'fast-check';
import { MAX_BODY_BYTES } from '../../functions/core/pipeline-definition.ts';
import { teleSignSignature } from '../../functions/providers/telesign.ts';
import type { AnyProvider } from '../../functions/providers/provider.ts';
import type { ProviderId } from '../../functions/providers/index.ts';
import { listSamples } from '../../local/samples.ts';

/**
 * Hostile requests for one provider, as fast-check arbitraries. Each request says how it was made
 * (`authentic`: dressed with the right secret the provider's own way, the body changed *before*
 * signing; `forged`: anything else) and what its content is meant to be (`intent`), so the harness
 * can tell what the gateway must answer without re-implementing its checks.
 */

export type Family =
  | 'valid'
  | 'malformed'
  | 'wrong-type'
  | 'huge'
  | 'unicode'
  | 'content-type'
  | 'method'
  | 'oversize'
  | 'auth';

/** Whether the content must pass the provider's schema, must fail it, or may do either. */
export type Intent = 'valid' | 'invalid' | 'either';

export interface FuzzRequest {
  /** A one-line summary, which fast-check prints for a counterexample. */
  readonly [fc.toStringMethod]?: () => string;
  readonly provider: ProviderId;
  readonly family: Family;
  /** Short label of how the request was made (`truncated`, `deep-array`, `replayed-body`…). */
  readonly variant: string;
  /** Dressed with the right secret, the provider's own way. */
  readonly authentic: boolean;
  readonly intent: Intent;
  readonly method: string;
  /** The `{token}` path segment as sent; undefined when the route has none or it was left out. */
  readonly pathToken?: string;
  readonly query: string;
  /** Lower-case names. */
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  readonly sourceIp: string;
}

/** Content before it is dressed for sending. */
interface Content {
  readonly body: Buffer;
  readonly query: string;
  readonly intent: Intent;
  readonly variant: string;
}

export interface FuzzSecrets {
  readonly telesign: { customerId: string; apiKey: string };
  readonly esms: { token: string };
  readonly temboplus: { token: string; apiToken: string; baseUrl: string };
  readonly relid: { token: string; allowedIps: string[]; approveLabels: string[]; rejectLabels: string[] };
  readonly identomat: { callbackApiKey: string };
}

/** Action labels the REL-ID fuzz secret declares (its approveLabels and rejectLabels). */
export const RELID_APPROVE_LABELS: readonly string[] = ['Approved', 'Accept'];
export const RELID_REJECT_LABELS: readonly string[] = ['Rejected', 'Reject', 'Fraud'];

/** Source addresses the REL-ID secret allows (the fuzz secret sets an allow-list). */
export const ALLOWED_SOURCE_IPS = ['203.0.113.10', '203.0.113.77', '127.0.0.1'];
const DISALLOWED_SOURCE_IPS = ['198.51.100.9', '10.0.0.1', '::1', '2001:db8::1', 'not-an-ip', ''];

// ---------------------------------------------------------------------------------------------
// Building blocks

const ODD_CHARACTERS = [
  '\u202e', // RIGHT-TO-LEFT OVERRIDE
  '\u200f', // RIGHT-TO-LEFT MARK
  '\u200d', // ZERO WIDTH JOINER
  '\ufeff', // BOM
  '\u0000',
  '\u001f',
  '\u2028',
  '\u0301', // combining acute
  '\ufffd',
  '\ufffe', // noncharacters: valid UTF-8, but not allowed in SQS messages
  '\uffff',
  '\ud83d\ude00', // emoji
  '\ud83c\udff3\ufe0f\u200d\ud83c\udf08', // ZWJ sequence
  '\u0430', // Cyrillic a
  '\uff41', // fullwidth a
  '\\',
  '"',
  '/',
  '%',
  '\n',
  '\t',
];
/** Lone surrogates: JSON.stringify escapes them (`\ud800`), JSON.parse gives them back. */
const LONE_SURROGATES = ['\ud800', '\udbff', '\udc00', '\udfff'];

const oddCharacter = fc.constantFrom(...ODD_CHARACTERS, ...LONE_SURROGATES);
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Short text mixing ASCII with odd characters. */
const oddText = (maxLength: number) =>
  fc
    .array(fc.oneof({ arbitrary: fc.string({ maxLength: 4 }), weight: 2 }, { arbitrary: oddCharacter, weight: 3 }), {
      minLength: 1,
      maxLength: Math.max(1, Math.floor(maxLength / 3)),
    })
    .map((parts) => parts.join('').slice(0, maxLength))
    .filter((text) => text.length > 0);

/** Raw byte sequences that are not UTF-8 (or are UTF-8 for something the decoder must refuse). */
const INVALID_UTF8: readonly number[][] = [
  [0xff],
  [0xfe, 0xff],
  [0x80], // lone continuation byte
  [0xc0, 0xaf], // overlong '/'
  [0xc1, 0xbf], // overlong
  [0xe0, 0x80, 0xaf], // overlong '/'
  [0xf0, 0x80, 0x80, 0xaf], // overlong '/'
  [0xed, 0xa0, 0x80], // UTF-8 encoded surrogate (CESU-8)
  [0xe2, 0x82], // truncated 3-byte sequence
  [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
  [0xc3], // truncated at the end
];

const id = fc.stringMatching(/^[A-Za-z0-9-]{1,40}$/);

/** Values the schemas never accept where a string is required. */
const notAString = fc.oneof(
  fc.integer(),
  fc.double({ noDefaultInfinity: true, noNaN: true }),
  fc.boolean(),
  fc.constant([]),
  fc.array(fc.string({ maxLength: 5 }), { minLength: 1, maxLength: 3 }),
  fc.constant({}),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { minKeys: 1, maxKeys: 2 }),
);

/**
 * JSON texts built to trip code that handles unknown values: objects whose `toString`/`valueOf`
 * are not functions (String(x) throws), prototype keys, huge and odd numbers, deep nesting.
 */
const hostileJsonText = fc.oneof(
  fc.constantFrom(
    '{"toString":1}',
    '{"toString":{},"valueOf":{}}',
    '[{"toString":1}]',
    '{"__proto__":{"polluted":true}}',
    '{"constructor":{"prototype":{"polluted":true}}}',
    '{"toJSON":1}',
    '{"hasOwnProperty":1}',
    '1e999',
    '-1e-999',
    '123456789012345678901234567890',
    '-0',
    'null',
    'true',
    '""',
    '"\\u0000"',
    '"\\ud800"',
    '"\\ufffe\\uffff"',
    '[]',
    '{}',
  ),
  fc.json({ maxDepth: 3 }),
  fc.integer({ min: 40, max: 200 }).map((depth) => `${'['.repeat(depth)}${']'.repeat(depth)}`),
);

const deepText = (kind: 'array' | 'object', depth: number) =>
  kind === 'array' ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}0${'}'.repeat(depth)}`;

/** Markers replaced by raw JSON text after JSON.stringify (deep values, odd numbers, raw escapes). */
const RAW_MARK = (index: number) => `@@FUZZRAW${index}@@`;

function stringifyWithRaw(value: unknown, raws: readonly string[]): string {
  let text = JSON.stringify(value);
  raws.forEach((raw, index) => {
    text = text.replace(JSON.stringify(RAW_MARK(index)), () => raw);
  });
  return text;
}

type Json = Record<string, unknown>;

function clone(value: Json): Json {
  return JSON.parse(JSON.stringify(value)) as Json;
}

function setPath(target: Json, path: readonly string[], value: unknown): void {
  let node: Json = target;
  for (const key of path.slice(0, -1)) {
    if (!node[key] || typeof node[key] !== 'object' || Array.isArray(node[key])) node[key] = {};
    node = node[key] as Json;
  }
  node[path[path.length - 1]] = value;
}

function deletePath(target: Json, path: readonly string[]): void {
  let node: Json | undefined = target;
  for (const key of path.slice(0, -1)) node = node?.[key] as Json | undefined;
  if (node && typeof node === 'object') delete node[path[path.length - 1]];
}

function hasPath(target: Json, path: readonly string[]): boolean {
  let node: unknown = target;
  for (const key of path) {
    if (!node || typeof node !== 'object' || !(key in (node as Json))) return false;
    node = (node as Json)[key];
  }
  return true;
}

/** Every path to a string value in a JSON object (for "a huge value in some string field"). */
function stringPaths(value: unknown, prefix: string[] = []): string[][] {
  if (typeof value === 'string') return [prefix];
  if (!value || typeof value !== 'object' || Array.isArray(value)) return [];
  return Object.entries(value as Json).flatMap(([key, child]) => stringPaths(child, [...prefix, key]));
}

// ---------------------------------------------------------------------------------------------
// What each provider's schema checks (kept in step with functions/providers/*.ts by the tests:
// a field listed here as required that the schema stops checking shows up as an unexpected 200).

interface FieldRule {
  readonly path: readonly string[];
  /** Present-but-wrong values are refused: not a string (or not null when nullish), too long, empty. */
  readonly kind: 'string' | 'nullishString' | 'code' | 'numberOrString' | 'object';
  /** A required field that may be left out of bodies like this one (REL-ID's status, from an error report). */
  readonly optionalWhen?: (json: Json) => boolean;
  readonly min?: number;
  readonly max?: number;
  /** Only applies when the sample has this path already (TeleSign's `status` shape). */
  readonly whenPresent?: boolean;
}

interface JsonProviderSpec {
  /** Top-level field naming the subject, its schema's max length, and values the schema refuses besides. */
  readonly subject: { readonly field: string; readonly max: number; readonly refuses?: (value: string) => boolean };
  readonly fields: readonly FieldRule[];
  /** Fields the code reads without the schema checking them: any value must be survivable. */
  readonly looseUsed: readonly (readonly string[])[];
  /** Samples to build on: the valid ones, by name (all when omitted). */
  readonly samples?: readonly string[];
  /**
   * Valid values for the fields that decide the outcome, laid over a sample (`undefined`: the field
   * is left out). Always a valid body: the field rules above still say what is refused.
   */
  readonly vary?: fc.Arbitrary<Json>;
}

// ---------------------------------------------------------------------------------------------
// REL-IDverify: the fields that decide whether an UPDATED notification reads as approved

/** `response_code` 1 (either spelling): an error report, which may come without `status`. */
const relidErrorCode = (value: unknown) => value === 1 || value === '1';

/** A declared label as a sender might spell it: any case, surrounding whitespace (all still match). */
const relidDeclaredLabel = fc
  .record({
    label: fc.constantFrom(...RELID_APPROVE_LABELS, ...RELID_REJECT_LABELS),
    spelling: fc.constantFrom('as-is', 'lower', 'upper', 'alternating'),
    before: fc.constantFrom('', ' ', '  ', '\t', '\u00a0'),
    after: fc.constantFrom('', ' ', '\n', '\r\n', '\u3000'),
  })
  .map(({ label, spelling, before, after }) => {
    const spelled =
      spelling === 'lower' ? label.toLowerCase() : spelling === 'upper' ? label.toUpperCase() : spelling === 'alternating' ? [...label].map((ch, i) => (i % 2 ? ch.toUpperCase() : ch.toLowerCase())).join('') : label;
    return `${before}${spelled}${after}`;
  });

/**
 * `action_response` values: declared labels (odd case, whitespace), labels no deployment here
 * declared (negatives without a "reject" word, near misses of the declared ones, look-alikes,
 * a zero-width character), NONE, empty, null, left out, and odd text.
 */
export const relidActionResponse: fc.Arbitrary<string | null | undefined> = fc.oneof(
  { arbitrary: relidDeclaredLabel, weight: 4 },
  {
    arbitrary: fc.constantFrom(
      'No', 'Not me', 'Block', 'Disapprove', 'NONE', 'none', 'Deny', 'Decline', 'Yes', 'OK', 'Approve', 'Approved!', 'Accepted',
      'Approved Rejected', 'Reject?', '\u0410pproved', 'Approved\u200b', 'Appro\u0301ved', 'Ａｃｃｅｐｔ',
    ),
    weight: 3,
  },
  { arbitrary: fc.constantFrom('', ' ', null, undefined), weight: 1 },
  { arbitrary: oddText(64), weight: 1 },
);

/**
 * The outcome-deciding fields of a REL-ID callback, valid every way the schema allows:
 * `status` (documented, lower case, undocumented), `action_response`, `is_ds_verified`
 * true/false/absent (or not a boolean), `response_code` 0/"0"/""/1/"1"/2/absent, `delivery_status`,
 * `error_code`, and error reports (`response_code` 1) without `status`.
 */
export const relidOutcomeFields: fc.Arbitrary<Json> = fc
  .record({
    status: fc.oneof({ arbitrary: fc.constant('UPDATED'), weight: 5 }, { arbitrary: fc.constantFrom('updated', 'EXPIRED', 'ACTIVE', 'CANCELLED', 'PENDING'), weight: 2 }),
    action_response: relidActionResponse,
    is_ds_verified: fc.oneof({ arbitrary: fc.constantFrom(true, false, undefined), weight: 6 }, { arbitrary: fc.constantFrom('true', 1, null), weight: 1 }),
    response_code: fc.oneof({ arbitrary: fc.constantFrom(0, '0', '', 1, '1', undefined), weight: 6 }, { arbitrary: fc.constantFrom(2, '00', ' 0', 0.5), weight: 1 }),
    delivery_status: fc.constantFrom('NOTIFIED', 'PARTIALLY_NOTIFIED', 'FAILED_TO_NOTIFY', 'NONE', 'notified', 'BOUNCED', undefined),
    error_code: fc.constantFrom(undefined, undefined, 3558, '3620', 2604),
    withoutStatus: fc.boolean(),
  })
  .map(({ withoutStatus, ...fields }) => (withoutStatus && relidErrorCode(fields.response_code) ? { ...fields, status: undefined } : fields));

// ---------------------------------------------------------------------------------------------
// TeleSign: the fields that decide an SMS Verify report (status.code, verify.code_state) and a Voice
// event (event, data.status, answered_on_utc, ended_on_utc), as functions/providers/telesign.ts reads them

const TELESIGN_CODE_STATES = ['VALID', 'INVALID', 'EXPIRED', 'MAX_ATTEMPTS_EXCEEDED', 'UNKNOWN'] as const;
/** Delivery codes of every kind: final, intermediate, "final status unknown", in no table. */
const TELESIGN_CODES = [200, 201, 203, 207, 210, 221, 230, 250, 251, 290, 291, 292, 293, 295, 500, 503, 516, 599, 100, 103, 107, 1500, 3850, 3851, 0, 99_999] as const;
const TELESIGN_CALL_STATUSES = ['answered', 'hangup', 'no-answer', 'no_answer', 'NO-ANSWER', 'busy', 'failed', 'canceled', 'speak_successful', 'completed', 'in-progress', ''] as const;
/** A few sessions only, so many Voice events (repeated dial_completed, retries) land on the same one. */
const TELESIGN_VOICE_SESSIONS = ['fuzz-voice-session-1', 'fuzz-voice-session-2', '534e1848-235f-482d-983d-e3e11a04f58a'] as const;

/** Short text the schema takes as a code state (at most 64 UTF-16 units, well-formed). */
const teleSignShortJunk = fc.oneof(
  fc.constantFrom('valid', 'Invalid', 'VERIFIED', 'PENDING', ' VALID', 'VALID ', 'VALID\u0000', '\u0130NVALID', 'VAL\u200dID', '\u00df'.repeat(40), 'x'.repeat(64)),
  fc.string({ unit: 'grapheme', maxLength: 12 }).filter((value) => value.length <= 64),
);

/** An SMS Verify delivery report: every documented code state, none, and junk, over codes of every kind. */
const teleSignVerifyReport = fc
  .record({
    code: fc.constantFrom(...TELESIGN_CODES),
    asString: fc.boolean(),
    codeState: fc.oneof(
      { arbitrary: fc.constantFrom(...TELESIGN_CODE_STATES), weight: 4 },
      { arbitrary: fc.constantFrom(null, undefined), weight: 1 },
      { arbitrary: teleSignShortJunk, weight: 2 },
    ),
    updatedOn: fc.constantFrom('2016-10-21T14:05:36.181346Z', '2016-10-21T14:09:00Z', 'Thu, 23 Jun 2022 19:03:44 GMT'),
  })
  .map(({ code, asString, codeState, updatedOn }): Json => ({
    status: { code: asString ? String(code) : code, description: 'fuzz', updated_on: updatedOn },
    verify: codeState === undefined ? { code_entered: null } : { code_state: codeState, code_entered: null },
    sub_resource: 'sms',
    event: undefined,
    data: undefined,
    state: undefined,
  }));

/** `data` is unchecked by the schema: besides TeleSign's values, anything may be in it. */
const teleSignCallStatus = fc.oneof(
  { arbitrary: fc.constantFrom(...TELESIGN_CALL_STATUSES), weight: 6 },
  { arbitrary: teleSignShortJunk, weight: 1 },
  { arbitrary: fc.constantFrom(null, 42, true, [], {}, { toString: 1 }, 'h'.repeat(500)), weight: 1 },
);
const teleSignVoiceTime = fc.constantFrom(undefined, null, '', '2019-03-15T06:48:24.151', '2019-03-15T06:48:24.151Z', 'not-a-time', 0, { toString: 1 }, '9'.repeat(300));

/**
 * A Voice event on one of a few sessions (the session is the subject: its events repeat, as retries
 * and as second legs), with data shaped like TeleSign's call_completed sample.
 */
const teleSignVoiceEvent = fc
  .record({
    event: fc.constantFrom('dial_completed', 'dial_completed', 'dial_completed', 'call_completed', 'call_completed', 'call_leg_completed', 'speak_completed', 'play_completed', 'incoming_call', 'x_fuzz_event'),
    session: fc.constantFrom(...TELESIGN_VOICE_SESSIONS),
    leg: fc.constantFrom('15558675309', '15558675310', '15558675311'),
    status: fc.option(teleSignCallStatus, { nil: undefined }),
    answeredOn: teleSignVoiceTime,
    endedOn: teleSignVoiceTime,
  })
  .map(({ event, session, leg, status, answeredOn, endedOn }): Json => {
    const data: Json = { duration: 6, created_on_utc: '2019-03-15T06:48:22.151', to: leg, from: 'VIRTUAL_NUMBER', direction: 'outbound', status, answered_on_utc: answeredOn, ended_on_utc: endedOn };
    for (const key of Object.keys(data)) if (data[key] === undefined) delete data[key];
    return { event, reference_id: session, data, status: undefined, verify: undefined, state: undefined };
  });

const teleSignOutcomeFields: fc.Arbitrary<Json> = fc.oneof(teleSignVerifyReport, teleSignVoiceEvent);

const JSON_SPECS: Record<Exclude<ProviderId, 'esms'>, JsonProviderSpec> = {
  telesign: {
    subject: { field: 'reference_id', max: 128 },
    fields: [
      { path: ['reference_id'], kind: 'string', min: 1, max: 128 },
      { path: ['status'], kind: 'object', whenPresent: true },
      { path: ['status', 'code'], kind: 'code', whenPresent: true },
      { path: ['status', 'description'], kind: 'string', whenPresent: true },
      { path: ['status', 'updated_on'], kind: 'string', max: 64, whenPresent: true },
      { path: ['state'], kind: 'string', min: 1, max: 64, whenPresent: true },
      { path: ['event'], kind: 'string', min: 1, max: 64, whenPresent: true },
      { path: ['updated_on'], kind: 'nullishString', max: 64 },
      { path: ['verify'], kind: 'object', whenPresent: true },
      { path: ['verify', 'code_state'], kind: 'nullishString', max: 64, whenPresent: true },
    ],
    looseUsed: [['data'], ['data', 'status'], ['data', 'answered_on_utc'], ['data', 'ended_on_utc']],
    vary: teleSignOutcomeFields,
  },
  temboplus: {
    // A path segment of the status request: well-formed Unicode, not `.` or `..`.
    subject: { field: 'partnerReference', max: 256, refuses: (value) => LONE_SURROGATE.test(value) || value === '.' || value === '..' },
    fields: [
      { path: ['partnerReference'], kind: 'string', min: 1, max: 256 },
      { path: ['status'], kind: 'string', min: 1, max: 64 },
      { path: ['statusCode'], kind: 'nullishString', max: 64 },
      { path: ['transactionId'], kind: 'nullishString' },
      { path: ['updatedAt'], kind: 'nullishString' },
      { path: ['completedAt'], kind: 'nullishString' },
    ],
    looseUsed: [],
  },
  relid: {
    subject: { field: 'notification_uuid', max: 128 },
    fields: [
      { path: ['notification_uuid'], kind: 'string', min: 1, max: 128 },
      { path: ['status'], kind: 'string', min: 1, max: 32, optionalWhen: (json) => relidErrorCode(json.response_code) },
      { path: ['response_code'], kind: 'numberOrString' },
      { path: ['action_response'], kind: 'nullishString' },
      { path: ['update_ts'], kind: 'nullishString', max: 64 },
    ],
    looseUsed: [['is_ds_verified'], ['delivery_status'], ['error_code']],
    vary: relidOutcomeFields,
  },
  identomat: {
    // Keys must be stored exactly: a lone surrogate in the session id is quarantined at ingest.
    subject: { field: 'sessionId', max: 128, refuses: (value) => LONE_SURROGATE.test(value) },
    fields: [
      { path: ['type'], kind: 'string', min: 1, max: 64 },
      { path: ['sessionId'], kind: 'string', min: 1, max: 128 },
      { path: ['result'], kind: 'nullishString', max: 64 },
      { path: ['roomStatus'], kind: 'nullishString', max: 64 },
      { path: ['videoFileStatus'], kind: 'nullishString', max: 64 },
      { path: ['sessionType'], kind: 'nullishString', max: 64 },
      { path: ['text'], kind: 'nullishString' },
    ],
    // Parts of video and instruction event keys, read whatever their type.
    looseUsed: [['sessionLink'], ['phoneNumber'], ['email'], ['roomId'], ['compositionStatus'], ['videoFileId']],
  },
};

/** A value the rule refuses for sure. */
function refusedValue(rule: FieldRule): fc.Arbitrary<unknown> {
  const tooLong = rule.max === undefined ? [] : [fc.integer({ min: rule.max + 1, max: rule.max + 64 }).map((n) => 'x'.repeat(n))];
  const empty = rule.min ? [fc.constant('')] : [];
  switch (rule.kind) {
    case 'string':
      return fc.oneof(notAString, fc.constant(null), ...empty, ...tooLong);
    case 'nullishString':
      return fc.oneof(notAString, ...tooLong);
    case 'code':
      return fc.oneof(
        fc.constantFrom('abc', '', '1.5', '0x10', ' 200', '200 ', '+200', null, true, [], {}, 1.5, '١٢٣'),
        fc.double({ min: 0.1, max: 1e6, noNaN: true }).filter((n) => !Number.isInteger(n)),
        fc.constant(2 ** 60),
      );
    case 'numberOrString':
      return fc.constantFrom(true, false, null, [], {}, [1]);
    case 'object':
      return fc.oneof(fc.string({ maxLength: 5 }), fc.integer(), fc.boolean(), fc.constant(null), fc.constant([]));
  }
}

// ---------------------------------------------------------------------------------------------
// Content: JSON providers

interface JsonSample {
  readonly name: string;
  readonly json: Json;
}

function jsonSamples(providerId: ProviderId): JsonSample[] {
  return listSamples(providerId).map((sample) => ({
    name: sample.name,
    json: JSON.parse((sample.body ?? Buffer.alloc(0)).toString('utf8')) as Json,
  }));
}

const text = (value: string) => Buffer.from(value, 'utf8');

function jsonContent(providerId: Exclude<ProviderId, 'esms'>): Record<'valid' | 'malformed' | 'wrong-type' | 'huge' | 'unicode' | 'oversize', fc.Arbitrary<Content>> {
  const spec = JSON_SPECS[providerId];
  const samples = jsonSamples(providerId);
  const invalidSamples = listSamples(providerId, 'invalid').map((sample) => sample.body ?? Buffer.alloc(0));
  const sample = fc.constantFrom(...samples);
  const subjectValue = fc.oneof({ arbitrary: id, weight: 4 }, { arbitrary: oddText(spec.subject.max), weight: 1 });
  const extraKey = fc.oneof(
    fc.stringMatching(/^x_fuzz_[a-z0-9]{1,8}$/),
    fc.constantFrom('__proto__', 'constructor', 'toString', 'valueOf', 'toJSON', 'hasOwnProperty', '', ' ', '\u0000', '\ud800'),
  );

  /** A valid variant of a sample: a fresh subject, maybe extra fields (never a schema field). */
  const sampleVariant = fc
    .record({
      sample,
      subject: subjectValue,
      extras: fc.array(fc.tuple(extraKey, fc.json({ maxDepth: 2 })), { maxLength: 3 }),
    })
    .map(({ sample: chosen, subject, extras }) => {
      const json = clone(chosen.json);
      json[spec.subject.field] = subject;
      const raws: string[] = [];
      for (const [key, value] of extras) {
        if (spec.fields.some((rule) => rule.path[0] === key) || key === 'callbackApiKey') continue;
        // `__proto__` and friends must end up as own JSON keys, hence raw text.
        json[key] = RAW_MARK(raws.length);
        raws.push(value);
      }
      return { json, raws, sampleName: chosen.name };
    });
  /** Most variants also vary the fields that decide the outcome, where the provider says how. */
  const vary = spec.vary;
  const validJson = vary
    ? fc.oneof(
        { arbitrary: sampleVariant, weight: 1 },
        {
          arbitrary: fc.record({ v: sampleVariant, fields: vary }).map(({ v, fields }) => {
            const json = clone(v.json);
            for (const [key, value] of Object.entries(fields)) {
              if (value === undefined) delete json[key];
              else json[key] = value;
            }
            return { ...v, json };
          }),
          weight: 3,
        },
      )
    : sampleVariant;

  // A subject id that cannot be stored exactly (a lone surrogate) is quarantined, whatever the provider.
  const subjectIntent = (json: Json): Intent => {
    const subject = String(json[spec.subject.field]);
    return LONE_SURROGATE.test(subject) || spec.subject.refuses?.(subject) ? 'invalid' : 'valid';
  };
  const valid = validJson.map(({ json, raws }) => ({ body: text(stringifyWithRaw(json, raws)), query: '', intent: subjectIntent(json), variant: 'sample-variant' }));

  const malformed: fc.Arbitrary<Content> = fc.oneof(
    // Cut short anywhere before the closing brace.
    fc.record({ v: validJson, at: fc.double({ min: 0, max: 1, noNaN: true }) }).map(({ v, at }) => {
      const full = stringifyWithRaw(v.json, v.raws);
      const cut = Math.floor(at * (full.lastIndexOf('}') - 1));
      return { body: text(full.slice(0, cut)), query: '', intent: 'invalid' as Intent, variant: 'truncated' };
    }),
    // One character inserted, deleted or replaced anywhere: may or may not still parse.
    fc.record({ v: validJson, at: fc.double({ min: 0, max: 1, noNaN: true }), ch: fc.constantFrom('{', '}', '[', ']', '"', ',', ':', '\\', ' ', 'x', '0', '\u0000') , op: fc.constantFrom('insert', 'delete', 'replace') }).map(
      ({ v, at, ch, op }) => {
        const full = stringifyWithRaw(v.json, v.raws);
        const i = Math.floor(at * full.length);
        const mutated = op === 'insert' ? full.slice(0, i) + ch + full.slice(i) : op === 'delete' ? full.slice(0, i) + full.slice(i + 1) : full.slice(0, i) + ch + full.slice(i + 1);
        return { body: text(mutated), query: '', intent: 'either' as Intent, variant: `char-${op}` };
      },
    ),
    // Not JSON at all, or JSON that is not an object.
    fc
      .oneof(
        fc.constantFrom('', ' ', 'null', '[]', '"text"', '0', 'true', '{', '}', '{"a":1,}', "{'a':1}", '{"a":NaN}', '{"a":1} trailing', '/* c */{}', '[1,2'),
        fc.string({ maxLength: 60 }),
        fc.json({ maxDepth: 2 }).filter((j) => !j.trimStart().startsWith('{')),
      )
      .map((body) => ({ body: text(body), query: '', intent: 'invalid' as Intent, variant: 'not-an-object' })),
    // A valid body followed by a second document, or wrapped in an array.
    validJson.map((v) => {
      const full = stringifyWithRaw(v.json, v.raws);
      return { body: text(`[${full}]`), query: '', intent: 'invalid' as Intent, variant: 'wrapped-in-array' };
    }),
    validJson.map((v) => {
      const full = stringifyWithRaw(v.json, v.raws);
      return { body: text(`${full}${full}`), query: '', intent: 'invalid' as Intent, variant: 'two-documents' };
    }),
    // A form-encoded or multipart body where JSON is expected.
    validJson.map((v) => ({
      body: text(new URLSearchParams(Object.entries(v.json).map(([k, value]): [string, string] => [k, typeof value === 'string' ? value : JSON.stringify(value)])).toString()),
      query: '',
      intent: 'invalid' as Intent,
      variant: 'form-encoded',
    })),
    ...(invalidSamples.length ? [fc.constantFrom(...invalidSamples).map((body) => ({ body, query: '', intent: 'invalid' as Intent, variant: 'invalid-sample' }))] : []),
  );

  const applicableRules = (json: Json) => spec.fields.filter((rule) => !rule.whenPresent || hasPath(json, rule.path));
  const wrongType: fc.Arbitrary<Content> = fc.oneof(
    // A checked field with a value its schema refuses.
    validJson
      .chain((v) => {
        const rules = applicableRules(v.json);
        return fc.record({ v: fc.constant(v), rule: fc.constantFrom(...rules) }).chain(({ v: base, rule }) =>
          refusedValue(rule).map((value) => ({ base, rule, value })),
        );
      })
      .map(({ base, rule, value }) => {
        const json = clone(base.json);
        setPath(json, rule.path, value);
        return { body: text(stringifyWithRaw(json, base.raws)), query: '', intent: 'invalid' as Intent, variant: `refused:${rule.path.join('.')}` };
      }),
    // A required field removed.
    validJson
      .chain((v) => fc.record({ v: fc.constant(v), rule: fc.constantFrom(...spec.fields.filter((rule) => rule.kind === 'string' && rule.min && !rule.whenPresent)) }))
      .map(({ v, rule }) => {
        const json = clone(v.json);
        deletePath(json, rule.path);
        const intent: Intent = rule.optionalWhen?.(json) ? subjectIntent(json) : 'invalid';
        return { body: text(stringifyWithRaw(json, v.raws)), query: '', intent, variant: `missing:${rule.path.join('.')}` };
      }),
    // Fields the code reads without the schema checking them: any JSON value.
    ...(spec.looseUsed.length
      ? [
          fc.record({ v: validJson, path: fc.constantFrom(...spec.looseUsed), raw: hostileJsonText }).map(({ v, path, raw }) => {
            const json = clone(v.json);
            setPath(json, path, RAW_MARK(v.raws.length));
            return { body: text(stringifyWithRaw(json, [...v.raws, raw])), query: '', intent: subjectIntent(json), variant: `loose:${path.join('.')}` };
          }),
        ]
      : []),
    // Any top-level field replaced by a hostile value: may or may not be refused.
    fc.record({ v: validJson, pick: fc.nat(), raw: hostileJsonText }).map(({ v, pick, raw }) => {
      const json = clone(v.json);
      const keys = Object.keys(json);
      json[keys[pick % keys.length]] = RAW_MARK(v.raws.length);
      return { body: text(stringifyWithRaw(json, [...v.raws, raw])), query: '', intent: 'either' as Intent, variant: 'hostile-field' };
    }),
  );

  // Big, but inside the limit: long strings, deep nesting, many keys, escape-heavy text.
  const bigString = fc
    .record({ length: fc.integer({ min: 100_000, max: 200_000 }), ch: fc.constantFrom('a', 'é', '€', '\ud83d\ude00', '"', '\\', '\u0000', '\u0001', '\ufffe', '\u202e') })
    .map(({ length, ch }) => {
      // Keep the JSON text under ~220 KiB whatever the character costs once escaped.
      const cost = Buffer.byteLength(JSON.stringify(ch)) - 2;
      return ch.repeat(Math.max(1, Math.floor(Math.min(length, 220_000 / cost) / ch.length)));
    });
  const huge: fc.Arbitrary<Content> = fc.oneof(
    // A long string in an extra field (valid) or in any string field (may be refused).
    fc.record({ v: validJson, value: bigString, where: fc.constantFrom('extra', 'any-string-field') , pick: fc.nat() }).map(({ v, value, where, pick }) => {
      const json = clone(v.json);
      if (where === 'extra') {
        json.x_fuzz_big = value;
        return { body: text(stringifyWithRaw(json, v.raws)), query: '', intent: subjectIntent(json), variant: 'long-string-extra' };
      }
      const paths = stringPaths(json);
      setPath(json, paths[pick % paths.length], value);
      return { body: text(stringifyWithRaw(json, v.raws)), query: '', intent: 'either' as Intent, variant: 'long-string-field' };
    }),
    // Deep nesting, in an extra field (valid) or in place of a field.
    fc.record({ v: validJson, depth: fc.oneof(fc.constant(5_000), fc.integer({ min: 31, max: 34 }), fc.integer({ min: 100, max: 20_000 })), kind: fc.constantFrom('array' as const, 'object' as const), where: fc.constantFrom('extra', 'field'), pick: fc.nat() }).map(
      ({ v, depth, kind, where, pick }) => {
        const json = clone(v.json);
        const keys = Object.keys(json);
        const key = where === 'extra' ? 'x_fuzz_deep' : keys[pick % keys.length];
        json[key] = RAW_MARK(v.raws.length);
        return {
          body: text(stringifyWithRaw(json, [...v.raws, deepText(kind, depth)])),
          query: '',
          intent: where === 'extra' ? subjectIntent(json) : 'either',
          variant: `deep-${kind}-${where}`,
        };
      },
    ),
    // The whole body one deep array: not an object.
    fc.integer({ min: 1_000, max: 50_000 }).map((depth) => ({ body: text(deepText('array', depth)), query: '', intent: 'invalid' as Intent, variant: 'deep-body' })),
    // Many keys, long arrays, long numbers.
    fc.record({ v: validJson, count: fc.integer({ min: 1_000, max: 20_000 }), shape: fc.constantFrom('keys', 'array', 'number') }).map(({ v, count, shape }) => {
      const raw =
        shape === 'keys'
          ? `{${Array.from({ length: count }, (_, i) => `"k${i}":${i}`).join(',')}}`
          : shape === 'array'
            ? `[${Array.from({ length: count }, () => '0').join(',')}]`
            : '9'.repeat(count);
      const json = clone(v.json);
      json.x_fuzz_many = RAW_MARK(v.raws.length);
      return { body: text(stringifyWithRaw(json, [...v.raws, raw])), query: '', intent: subjectIntent(json), variant: `many-${shape}` };
    }),
    // Not JSON, close to the limit, and expensive to escape (NUL, control characters, quotes).
    fc.record({ length: fc.integer({ min: 180_000, max: MAX_BODY_BYTES }), byte: fc.constantFrom(0x00, 0x01, 0x1f, 0x22, 0x5c, 0x7f) }).map(({ length, byte }) => ({
      body: Buffer.alloc(length, byte),
      query: '',
      intent: 'invalid' as Intent,
      variant: 'escape-heavy-body',
    })),
    // Exactly at the limit: still ours to take.
    validJson.map((v) => {
      const full = stringifyWithRaw({ ...v.json, x_fuzz_pad: '' }, v.raws);
      const pad = MAX_BODY_BYTES - Buffer.byteLength(full);
      return { body: text(stringifyWithRaw({ ...v.json, x_fuzz_pad: 'p'.repeat(pad) }, v.raws)), query: '', intent: subjectIntent(v.json), variant: 'exactly-at-limit' };
    }),
    // Near the body limit, and far larger as a DynamoDB item than as JSON: small lists cost 3 bytes
    // plus 1 per element there (`[0]` is 4 JSON bytes, 7 item bytes), so the item is over 400 KB.
    fc.record({ v: validJson, element: fc.constantFrom('[0]', '[[]]', '{}', '[]', 'null') }).map(({ v, element }) => {
      const json = clone(v.json);
      json.x_fuzz_items = RAW_MARK(v.raws.length);
      const room = MAX_BODY_BYTES - Buffer.byteLength(stringifyWithRaw(json, [...v.raws, '[]'])) - 8;
      const raw = `[${Array(Math.max(0, Math.floor(room / (element.length + 1)))).fill(element).join(',')}]`;
      return { body: text(stringifyWithRaw(json, [...v.raws, raw])), query: '', intent: subjectIntent(json), variant: `item-size-${element}` };
    }),
  );

  // Provider times that are implausible: far in the future (they must not freeze a state), long
  // past, or out of Date's range. Taken as the callbacks they are; the worker ignores what it cannot believe.
  const implausibleTime = fc.constantFrom('9999-12-31T23:59:59Z', '+275760-09-13T00:00:00.000Z', '0001-01-01T00:00:00Z', '2999-01-01T00:00:00+14:00', 'Fri, 31 Dec 9999 23:59:59 GMT');
  const times: fc.Arbitrary<Content> = fc.record({ v: validJson, time: implausibleTime }).map(({ v, time }) => {
    const json = clone(v.json);
    for (const path of stringPaths(json)) if (/(updated|_on|_ts|At|timestamp|date)$/i.test(String(path.at(-1)))) setPath(json, path, time);
    return { body: text(stringifyWithRaw(json, v.raws)), query: '', intent: 'either' as Intent, variant: 'implausible-time' };
  });

  const unicode: fc.Arbitrary<Content> = fc.oneof(
    // Odd characters in the subject (JSON-escaped where JSON.stringify escapes them): still valid.
    fc.record({ v: validJson, odd: fc.array(oddCharacter, { minLength: 1, maxLength: 8 }) }).map(({ v, odd }) => {
      const json = clone(v.json);
      json[spec.subject.field] = `s-${odd.join('')}`.slice(0, spec.subject.max);
      return { body: text(stringifyWithRaw(json, v.raws)), query: '', intent: subjectIntent(json), variant: 'odd-subject' };
    }),
    // Odd characters in every string value.
    fc.record({ v: validJson, odd: oddCharacter }).map(({ v, odd }) => {
      const json = clone(v.json);
      for (const path of stringPaths(json)) {
        const current = path.reduce<unknown>((node, key) => (node as Json)[key], json) as string;
        setPath(json, path, `${odd}${current}`);
      }
      return { body: text(stringifyWithRaw(json, v.raws)), query: '', intent: 'either' as Intent, variant: 'odd-everywhere' };
    }),
    // Raw bytes that are not UTF-8, inside the subject's value.
    fc.record({ v: validJson, bytes: fc.constantFrom(...INVALID_UTF8) }).map(({ v, bytes }) => {
      const json = clone(v.json);
      json[spec.subject.field] = 'FUZZMARK';
      const full = Buffer.from(stringifyWithRaw(json, v.raws));
      const at = full.indexOf('FUZZMARK');
      return { body: Buffer.concat([full.subarray(0, at), Buffer.from(bytes), full.subarray(at + 8)]), query: '', intent: 'either' as Intent, variant: 'invalid-utf8' };
    }),
    // Raw control characters and NUL in JSON strings (JSON forbids them unescaped).
    fc.record({ v: validJson, ch: fc.constantFrom('\u0000', '\u0001', '\u001f', '\n') }).map(({ v, ch }) => {
      const json = clone(v.json);
      json[spec.subject.field] = 'FUZZMARK';
      return { body: text(stringifyWithRaw(json, v.raws).replace('FUZZMARK', `s${ch}s`)), query: '', intent: 'invalid' as Intent, variant: 'raw-control-char' };
    }),
    // The whole body in UTF-16, with or without a BOM; or UTF-8 with a BOM.
    fc.record({ v: validJson, encoding: fc.constantFrom('utf16le', 'utf16le-bom', 'utf8-bom') }).map(({ v, encoding }) => {
      const full = stringifyWithRaw(v.json, v.raws);
      const body =
        encoding === 'utf8-bom'
          ? Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(full)])
          : Buffer.concat([encoding === 'utf16le-bom' ? Buffer.from([0xff, 0xfe]) : Buffer.alloc(0), Buffer.from(full, 'utf16le')]);
      // A UTF-8 BOM is dropped by the decoder: the JSON under it is what counts.
      return { body, query: '', intent: encoding === 'utf8-bom' ? subjectIntent(v.json) : 'invalid', variant: encoding };
    }),
  );

  const oversize: fc.Arbitrary<Content> = fc.record({ v: validJson, extra: fc.integer({ min: 1, max: 200_000 }) }).map(({ v, extra }) => {
    const full = stringifyWithRaw({ ...v.json, x_fuzz_pad: '' }, v.raws);
    const pad = MAX_BODY_BYTES - Buffer.byteLength(full) + extra;
    return { body: text(stringifyWithRaw({ ...v.json, x_fuzz_pad: 'p'.repeat(pad) }, v.raws)), query: '', intent: 'either' as Intent, variant: 'over-limit' };
  });

  // Identomat: besides fresh sessions, callbacks about a few shared ones, so the worker sees them move.
  const validMix = providerId === 'identomat' ? fc.oneof(valid, identomatSessionTraffic()) : valid;
  return { valid: validMix, malformed, 'wrong-type': wrongType, huge, unicode: fc.oneof(unicode, times), oversize };
}

// ---------------------------------------------------------------------------------------------
// Content: Identomat sessions over time

/** Results as Identomat may spell them: each one repeats, some in other cases, one unlisted. */
const IDENTOMAT_RESULTS = ['APPROVED', 'REJECTED', 'MANUAL_CHECK', 'ADDITIONAL_INFORMATION_REQUESTED', 'approved', 'Rejected', 'NOT_A_LISTED_RESULT'];
/** Type values that are Object.prototype members: they must stay the strings they are. */
export const PROTOTYPE_NAMES = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', 'toJSON', 'isPrototypeOf'];
const IDENTOMAT_INSTRUCTIONS = ['one-time-password', 'one-time-password-request', 'email-one-time-password-request', 'share-session-link-via-sms', 'share-session-link-via-email'];

/**
 * One Identomat callback (without its key) about a session drawn from `sessionId`: a session-change
 * with a result that repeats, a video update of a room with several files, an OTP or link
 * instruction to one of several destinations, or a type named like an Object.prototype member.
 * Drawing from a few sessions makes a run a set of interleaved sequences.
 */
export function identomatCallbackJson(sessionId: fc.Arbitrary<string>): fc.Arbitrary<{ json: Record<string, unknown>; kind: string }> {
  const sessionChange = fc.record({ sessionId, result: fc.constantFrom(...IDENTOMAT_RESULTS), kyb: fc.boolean() }).map(({ sessionId: id, result, kyb }) => ({
    json: { type: 'session-change', sessionId: id, result, ...(kyb ? { sessionType: 'KYB' } : {}) },
    kind: 'session-change',
  }));
  const video = fc
    .record({
      sessionId,
      roomId: fc.constantFrom('room-1', 'room-2'),
      roomStatus: fc.constantFrom('ended', 'empty', null),
      compositionStatus: fc.constantFrom('available', null),
      videoFileStatus: fc.constantFrom('available', null),
      videoFileId: fc.constantFrom('vf-1', 'vf-2', 'vf-3', null),
    })
    .map((json) => ({ json: { type: 'video-call-status-update', ...json }, kind: 'video' }));
  const instruction = fc
    .record({
      sessionId,
      type: fc.constantFrom(...IDENTOMAT_INSTRUCTIONS),
      destination: fc.constantFrom({ phoneNumber: '+995512345678' }, { phoneNumber: '+995599000111' }, { email: 'a@example.com' }, { email: 'b@example.com' }),
      text: fc.constantFrom('Your code is 6867', 'Your code is 1234'),
      link: fc.constantFrom(undefined, 'https://widget.identomat.com/?session_token=fuzz'),
    })
    .map(({ sessionId: id, type, destination, text: message, link }) => ({
      json: { type, sessionId: id, text: message, ...destination, ...(link ? { sessionLink: link } : {}) },
      kind: 'instruction',
    }));
  const prototypeNamed = fc.record({ sessionId, type: fc.constantFrom(...PROTOTYPE_NAMES) }).map(({ sessionId: id, type }) => ({ json: { type, sessionId: id }, kind: 'prototype-type' }));
  return fc.oneof({ arbitrary: sessionChange, weight: 4 }, { arbitrary: video, weight: 2 }, { arbitrary: instruction, weight: 2 }, { arbitrary: prototypeNamed, weight: 1 });
}

function identomatSessionTraffic(): fc.Arbitrary<Content> {
  return identomatCallbackJson(fc.constantFrom('fuzz-session-a', 'fuzz-session-b', 'fuzz-session-c')).map(({ json, kind }) => ({
    body: text(JSON.stringify(json)),
    query: '',
    intent: 'valid' as Intent,
    variant: `session-sequence:${kind}`,
  }));
}

// ---------------------------------------------------------------------------------------------
// Content: eSMS (everything in the GET query string)

function esmsContent(): Record<'valid' | 'malformed' | 'wrong-type' | 'huge' | 'unicode' | 'oversize', fc.Arbitrary<Content>> {
  const samples = listSamples('esms').map((sample) => [...new URLSearchParams(sample.query ?? '')]);
  const sample = fc.constantFrom(...samples);
  const enc = (pairs: readonly (readonly [string, string])[]) => pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  const withValue = (pairs: readonly (readonly [string, string])[], name: string, value: string | undefined) => {
    const rest = pairs.filter(([k]) => k.toLowerCase() !== name.toLowerCase());
    return value === undefined ? rest : [...rest, [name, value] as const];
  };
  const subjectField = (pairs: readonly (readonly [string, string])[]) => (pairs.some(([k]) => k === 'ReferenceId') && !pairs.some(([k]) => k === 'SMSID') ? 'ReferenceId' : 'SMSID');

  const validPairs = fc
    .record({
      pairs: sample,
      // (An SMSID may not start with "voice:": that is a voice call's subject; see the invalid variants.)
      subject: fc.oneof({ arbitrary: id, weight: 4 }, { arbitrary: oddText(128).filter((s) => !/[\ud800-\udfff]/.test(s.replace(/[\ud800-\udbff][\udc00-\udfff]/g, '')) && !s.startsWith('voice:')), weight: 1 }),
      caseFold: fc.constantFrom('as-is', 'lower', 'upper'),
      shuffle: fc.nat(),
      extras: fc.array(fc.tuple(fc.stringMatching(/^x_fuzz_[a-z0-9]{1,6}$/), fc.string({ maxLength: 20 })), { maxLength: 3 }),
    })
    .map(({ pairs, subject, caseFold, shuffle, extras }) => {
      let result = withValue(pairs, subjectField(pairs), subject);
      result = [...result, ...extras];
      if (caseFold !== 'as-is') result = result.map(([k, v]) => [caseFold === 'lower' ? k.toLowerCase() : k.toUpperCase(), v] as const);
      const rotate = result.length ? shuffle % result.length : 0;
      return [...result.slice(rotate), ...result.slice(0, rotate)];
    });

  const content = (query: string, intent: Intent, variant: string): Content => ({ body: Buffer.alloc(0), query, intent, variant });

  // Ids that look alike across the keying (the message is `esms#<SMSID>`, a recipient `STATE#<phone>`,
  // a call `voice:<ReferenceId>`): ':', '&', '|', '#' and "voice:" inside SMSIDs, ReferenceIds and
  // recipients, with per-recipient and mixed counters.
  const lookalike = fc.array(fc.constantFrom('A', 'B', ':', '&', '|', '#', '=', '%', '+', 'voice:', 'STATE', '0901'), { minLength: 1, maxLength: 6 }).map((pieces) => pieces.join(''));
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
    .filter(({ voice, id }) => voice || !id.startsWith('voice:'))
    .map(({ voice, id, phone, status, success, failed, total }) => {
      const pairs: [string, string][] = [
        [voice ? 'ReferenceId' : 'SMSID', id],
        ['SendStatus', status],
        ...(voice ? [['SentResult', String(success % 2)] as [string, string]] : [['SendSuccess', String(success)] as [string, string], ['SendFailed', String(failed)] as [string, string]]),
        ...(total === undefined ? [] : [['TotalReceiver', String(total)] as [string, string]]),
        ...(phone === undefined ? [] : [['phonenumber', phone] as [string, string]]),
      ];
      return content(enc(pairs), 'valid', 'lookalike-ids');
    });
  const valid = fc.oneof({ arbitrary: validPairs.map((pairs) => content(enc(pairs), 'valid', 'sample-variant')), weight: 3 }, { arbitrary: lookalikeCallback, weight: 1 });

  const malformed: fc.Arbitrary<Content> = fc.oneof(
    fc.record({ pairs: validPairs, at: fc.double({ min: 0, max: 1, noNaN: true }) }).map(({ pairs, at }) => {
      const full = enc(pairs);
      return content(full.slice(0, Math.floor(at * full.length)), 'either', 'truncated');
    }),
    fc.record({ pairs: validPairs, junk: fc.constantFrom('%', '%Z', '%ZZ', '%E0%A4', '%FF%FE', '%ED%A0%80', '%C0%AF', '&&&', '=', '==&=', ';', '+', '#frag', '?', '%00', '%uD800', '\u0000') , at: fc.double({ min: 0, max: 1, noNaN: true }) }).map(
      ({ pairs, junk, at }) => {
        const full = enc(pairs);
        const i = Math.floor(at * full.length);
        return content(full.slice(0, i) + junk + full.slice(i), 'either', 'junk-inserted');
      },
    ),
    fc.oneof(fc.constantFrom('', '&', '=', 'a', 'SendStatus', '?SendStatus=5'), fc.string({ maxLength: 40 }).map((s) => encodeURIComponent(s))).map((query) => content(query, 'invalid', 'not-a-callback')),
    // A field read twice with another value: which one is true is not said, so it is quarantined.
    fc.record({ pairs: validPairs, other: fc.constantFrom('x', '', '-1', '7') }).map(({ pairs, other }) => content(`${enc(pairs)}&SendStatus=${other}`, 'invalid', 'repeated-name')),
    fc.record({ pairs: validPairs, spelling: fc.constantFrom('lower', 'upper', 'as-is') }).map(({ pairs, spelling }) => {
      // The id the callback carries, in whatever case its name was folded to.
      const field = pairs.some(([k]) => k.toLowerCase() === 'smsid') ? 'SMSID' : 'ReferenceId';
      const current = pairs.find(([k]) => k.toLowerCase() === field.toLowerCase())?.[1] ?? '';
      const name = spelling === 'lower' ? field.toLowerCase() : spelling === 'upper' ? field.toUpperCase() : field;
      return content(`${enc(pairs)}&${name}=${encodeURIComponent(`${current}-other`)}`, 'invalid', `repeated-name:${field}`);
    }),
  );

  const wrongType: fc.Arbitrary<Content> = fc.oneof(
    fc.record({ pairs: validPairs, value: fc.constantFrom('abc', '', '-1', '1.0', ' 5', '5 ', '0x5', '٥', '５') }).map(({ pairs, value }) => content(enc(withValue(pairs, 'SendStatus', value)), 'invalid', 'refused:SendStatus')),
    fc.record({ pairs: validPairs, field: fc.constantFrom('SendSuccess', 'SendFailed', 'SentResult', 'TotalReceiver'), value: fc.constantFrom('abc', '', '-1', '1.5') }).map(({ pairs, field, value }) => content(enc(withValue(pairs, field, value)), 'invalid', `refused:${field}`)),
    // An SMSID of a voice call's form would share its subject: refused, whatever follows the prefix.
    fc.record({ pairs: validPairs, rest: fc.oneof(lookalike, id) }).map(({ pairs, rest }) => content(enc(withValue(pairs, 'SMSID', `voice:${rest}`)), 'invalid', 'refused:SMSID-voice-prefix')),
    validPairs.map((pairs) => content(enc(withValue(pairs, 'SendStatus', undefined)), 'invalid', 'missing:SendStatus')),
    validPairs.map((pairs) => content(enc(withValue(withValue(pairs, 'SMSID', undefined), 'ReferenceId', undefined)), 'invalid', 'missing:SMSID')),
    fc.record({ pairs: validPairs, length: fc.integer({ min: 129, max: 400 }) }).map(({ pairs, length }) => content(enc(withValue(pairs, subjectField(pairs), 'x'.repeat(length))), 'invalid', 'refused:SMSID-too-long')),
    fc.record({ pairs: validPairs, raw: hostileJsonText }).map(({ pairs, raw }) => content(enc(withValue(pairs, 'error_info', raw)), 'valid', 'loose:error_info')),
  );

  const bigValue = fc.record({ length: fc.integer({ min: 50_000, max: 80_000 }), ch: fc.constantFrom('a', '9', 'é', '\ud83d\ude00', '\u0000', '"') }).map(({ length, ch }) => ch.repeat(Math.floor(length / ch.length)));
  const huge: fc.Arbitrary<Content> = fc.oneof(
    // A long value in any parameter (digits stay valid for the digit fields).
    fc.record({ pairs: validPairs, pick: fc.nat(), value: bigValue }).map(({ pairs, pick, value }) => {
      const [name] = pairs[pick % pairs.length];
      return content(enc(withValue(pairs, name, value)), 'either', `long-value`);
    }),
    fc.record({ pairs: validPairs, field: fc.constantFrom('SendStatus', 'SendSuccess', 'SendFailed', 'phonenumber', 'error_info', 'x_fuzz_big'), length: fc.integer({ min: 5_000, max: 80_000 }) }).map(({ pairs, field, length }) =>
      // Counters and the phone number are bounded (they end up in keys); anything else may be long.
      content(enc(withValue(pairs, field, '7'.repeat(length))), ['error_info', 'x_fuzz_big'].includes(field) ? 'valid' : 'invalid', `long-digits:${field}`),
    ),
    // Phone-number-like runs (digits and spaces) that end in a letter: a backtracking trap for
    // anything that scans subject ids for phone numbers.
    fc.record({ pairs: validPairs, field: fc.constantFrom('phonenumber', 'SMSID'), length: fc.integer({ min: 2_000, max: 60_000 }) }).map(({ pairs, field, length }) =>
      content(enc(withValue(pairs, field, `${'7 '.repeat(length)}x`)), 'either', `phone-like-run:${field}`),
    ),
    fc.record({ pairs: validPairs, count: fc.integer({ min: 1_000, max: 15_000 }) }).map(({ pairs, count }) =>
      content(`${enc(pairs)}&${Array.from({ length: count }, (_, i) => `p${i}=${i}`).join('&')}`, 'valid', 'many-params'),
    ),
    fc.record({ pairs: validPairs, depth: fc.oneof(fc.constant(5_000), fc.integer({ min: 31, max: 34 }), fc.integer({ min: 100, max: 20_000 })), kind: fc.constantFrom('array' as const, 'object' as const) }).map(
      ({ pairs, depth, kind }) => content(enc(withValue(pairs, 'error_info', deepText(kind, depth))), 'valid', `deep-error_info-${kind}`),
    ),
  );

  const unicode: fc.Arbitrary<Content> = fc.oneof(
    fc.record({ pairs: validPairs, odd: fc.array(fc.constantFrom(...ODD_CHARACTERS), { minLength: 1, maxLength: 8 }) }).map(({ pairs, odd }) =>
      content(enc(withValue(pairs, subjectField(pairs), `s-${odd.join('')}`)), 'valid', 'odd-subject'),
    ),
    fc.record({ pairs: validPairs, bytes: fc.constantFrom(...INVALID_UTF8), field: fc.constantFrom('SMSID', 'phonenumber', 'error_info', 'SendStatus') }).map(({ pairs, bytes, field }) => {
      const escaped = bytes.map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
      const rest = withValue(pairs, field, undefined);
      return content(`${enc(rest)}&${field}=v${escaped}`, 'either', 'invalid-utf8-escapes');
    }),
  );

  const oversize: fc.Arbitrary<Content> = fc.record({ pairs: validPairs, extra: fc.integer({ min: 1, max: 100_000 }) }).map(({ pairs, extra }) => {
    const base = enc(pairs);
    return content(`${base}&x_fuzz_pad=${'p'.repeat(MAX_BODY_BYTES - base.length - 12 + extra)}`, 'either', 'query-over-limit');
  });

  return { valid, malformed, 'wrong-type': wrongType, huge, unicode, oversize };
}

// ---------------------------------------------------------------------------------------------
// Dressing: authentic (the provider's own way) or forged

const CONTENT_TYPES = [
  undefined,
  'text/plain',
  'text/plain; charset=utf-8',
  'multipart/form-data; boundary=----fuzz',
  'application/octet-stream',
  'application/json; charset=utf-16',
  'application/x-www-form-urlencoded',
  'image/png',
  'APPLICATION/JSON',
  'application/vnd.api+json',
  ';;;',
];

const contentType = fc.constantFrom(...CONTENT_TYPES);
/** Every method but the route's (API Gateway upper-cases; a lower-case spelling of the right one is the right one). */
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'CONNECT', 'PROPFIND', 'FUZZ'];

/** Spellings that are not the secret: empty, one character off, case changed, look-alikes, very long. */
function wrongSpellings(secret: string): fc.Arbitrary<{ value: string; how: string }> {
  const lookAlike: Record<string, string> = { a: '\u0430', e: '\u0435', o: '\u043e', c: '\u0441', p: '\u0440', x: '\u0445', i: '\u0456', '-': '\u2010', '0': '\u041e', '1': 'l', l: '1' };
  return fc.oneof(
    fc.constant({ value: '', how: 'empty' }),
    fc.record({ at: fc.nat(), ch: fc.constantFrom('x', 'y', '0', 'Z', '-', '=') }).map(({ at, ch }) => {
      const i = at % secret.length;
      return { value: secret.slice(0, i) + ch + secret.slice(i + 1), how: 'one-char-off' };
    }),
    fc.constant({ value: secret.slice(0, -1), how: 'truncated' }),
    fc.constant({ value: `${secret}x`, how: 'extended' }),
    fc.constant({ value: secret.toUpperCase(), how: 'upper-case' }),
    fc.constant({ value: secret.toLowerCase(), how: 'lower-case' }),
    fc.constant({ value: [...secret].map((ch) => lookAlike[ch] ?? ch).join(''), how: 'look-alike' }),
    fc.constant({ value: secret.normalize('NFKD') + '\u0301', how: 'combining-mark' }),
    fc.constant({ value: ` ${secret}`, how: 'leading-space' }),
    fc.integer({ min: 100, max: 2_000 }).map((times) => ({ value: secret.repeat(times), how: 'very-long' })),
    fc.constant({ value: `${secret}\u0000`, how: 'nul-suffix' }),
  );
}

export interface DressContext {
  readonly provider: AnyProvider;
  readonly secrets: FuzzSecrets;
}

interface Dressed {
  readonly method: string;
  readonly pathToken?: string;
  readonly query: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  readonly sourceIp: string;
  readonly authentic: boolean;
  readonly variant?: string;
}

/** Dress content as the provider itself would send it. */
function dressAuthentic(ctx: DressContext, content: Content, sourceIp: string): Dressed {
  const { provider, secrets } = ctx;
  const secret = secrets[provider.id] as Record<string, unknown>;
  const token = typeof secret.token === 'string' ? secret.token : undefined;
  if (provider.route.method === 'GET') {
    return { method: 'GET', pathToken: token, query: content.query, headers: {}, body: content.body, sourceIp, authentic: true };
  }
  let sent: { headers: Record<string, string>; body: Buffer };
  try {
    sent = provider.asSent ? provider.asSent(content.body, secret) : { headers: { 'content-type': 'application/json' }, body: content.body };
  } catch {
    // Identomat's asSent re-serialises the JSON, which JSON.stringify cannot do for nesting this
    // deep: add the key as the object's last member instead (the last duplicate wins), as a
    // sender's own code would.
    const body = content.body.toString('utf8');
    const close = body.lastIndexOf('}');
    const empty = /^\s*\{\s*$/.test(body.slice(0, close));
    const key = JSON.stringify((secret as { callbackApiKey: string }).callbackApiKey);
    const spliced = body.trimStart().startsWith('{') && close > 0 ? Buffer.from(`${body.slice(0, close)}${empty ? '' : ','}"callbackApiKey":${key}${body.slice(close)}`) : content.body;
    sent = { headers: { 'content-type': 'application/json' }, body: spliced };
  }
  // Identomat's key travels in the JSON body: content that is not JSON cannot carry it, so it is
  // not authentic whoever sent it.
  const authentic = provider.id !== 'identomat' || !sent.body.equals(content.body);
  return { method: provider.route.method, pathToken: token, query: content.query, headers: lower(sent.headers), body: sent.body, sourceIp, authentic };
}

function lower(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
}

/** One forgery of content for the provider. Some "forgeries" turn out equivalent to the real thing: they are marked authentic. */
function forged(ctx: DressContext, contentArb: fc.Arbitrary<Content>, otherContent: fc.Arbitrary<Content>): fc.Arbitrary<{ dressed: Dressed; content: Content }> {
  const { provider, secrets } = ctx;
  const base = (content: Content) => dressAuthentic(ctx, content, ALLOWED_SOURCE_IPS[0]);

  if (provider.id === 'telesign') {
    const { customerId, apiKey } = secrets.telesign;
    const header = (body: Buffer) => `TSA ${customerId}:${teleSignSignature(apiKey, body)}`;
    const otherKey = fc.uint8Array({ minLength: 16, maxLength: 48 }).map((bytes) => Buffer.from(bytes).toString('base64'));
    const attack = fc.oneof(
      fc.constant({ kind: 'missing' as const }),
      fc.constantFrom('', 'TSA', 'TSA ', `TSA ${customerId}`, `TSA ${customerId}:`, 'Bearer abc', 'Basic Zm9vOmJhcg==', 'tsa x:y', `TSA :sig`, 'TSA a:b:c d').map((value) => ({ kind: 'garbage' as const, value })),
      otherKey.map((key) => ({ kind: 'other-key' as const, key })),
      fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => ({ kind: 'random-signature' as const, signature: Buffer.from(bytes).toString('base64') })),
      fc.constant({ kind: 'replayed-body' as const }),
      wrongSpellings(customerId).map((spelling) => ({ kind: 'wrong-customer' as const, spelling })),
      fc.record({ cut: fc.integer({ min: 1, max: 43 }) }).map(({ cut }) => ({ kind: 'signature-truncated' as const, cut })),
      fc.constantFrom('=', 'A', 'AAAA', '==', ' x').map((suffix) => ({ kind: 'signature-extended' as const, suffix })),
      fc.constantFrom('case', 'base64url', 'no-padding', 'hex').map((form) => ({ kind: 'signature-respelled' as const, form })),
      wrongSpellings(apiKey).map((spelling) => ({ kind: 'wrong-key-spelling' as const, spelling })),
      fc.constant({ kind: 'signed-empty-body' as const }),
      fc.constant({ kind: 'in-query' as const }),
    );
    return fc.record({ content: contentArb, other: otherContent, attack }).map(({ content, other, attack: a }) => {
      const dressed = base(content);
      const headers = { ...dressed.headers };
      const right = header(content.body);
      const signature = teleSignSignature(apiKey, content.body);
      let query = dressed.query;
      let variant: string = a.kind;
      switch (a.kind) {
        case 'missing':
          delete headers.authorization;
          break;
        case 'garbage':
          headers.authorization = a.value;
          break;
        case 'other-key':
          headers.authorization = `TSA ${customerId}:${teleSignSignature(a.key, content.body)}`;
          break;
        case 'random-signature':
          headers.authorization = `TSA ${customerId}:${a.signature}`;
          break;
        case 'replayed-body':
          // A genuine signature, taken from another request, sent with this body.
          headers.authorization = header(other.body);
          break;
        case 'wrong-customer':
          headers.authorization = `TSA ${a.spelling.value}:${signature}`;
          variant = `wrong-customer:${a.spelling.how}`;
          break;
        case 'signature-truncated':
          headers.authorization = `TSA ${customerId}:${signature.slice(0, Math.max(0, signature.length - a.cut))}`;
          break;
        case 'signature-extended':
          headers.authorization = `TSA ${customerId}:${signature}${a.suffix}`;
          break;
        case 'signature-respelled': {
          const respelled =
            a.form === 'case'
              ? signature.replace(/[a-z]/, (ch) => ch.toUpperCase()).replace(/^([^a-z]*)$/, (s) => s.replace(/[A-Z]/, (ch) => ch.toLowerCase()))
              : a.form === 'base64url'
                ? Buffer.from(signature, 'base64').toString('base64url')
                : a.form === 'no-padding'
                  ? signature.replace(/=+$/, '')
                  : Buffer.from(signature, 'base64').toString('hex');
          headers.authorization = `TSA ${customerId}:${respelled}`;
          variant = `signature-${a.form}`;
          break;
        }
        case 'wrong-key-spelling':
          headers.authorization = `TSA ${customerId}:${teleSignSignature(a.spelling.value, content.body)}`;
          variant = `wrong-key:${a.spelling.how}`;
          break;
        case 'signed-empty-body':
          headers.authorization = header(Buffer.alloc(0));
          break;
        case 'in-query':
          delete headers.authorization;
          query = `authorization=${encodeURIComponent(right)}`;
          break;
      }
      // TeleSign's key is base64 and decoders drop what is not base64: a "wrong" spelling can sign
      // exactly like the right key. Such a request is authentic, whatever we meant.
      const authentic = headers.authorization !== undefined && headers.authorization.trim() === right;
      return { dressed: { ...dressed, headers, query, authentic, variant }, content };
    });
  }

  if (provider.id === 'identomat') {
    const key = secrets.identomat.callbackApiKey;
    const attack = fc.oneof(
      fc.constant({ kind: 'missing' as const }),
      wrongSpellings(key).map((spelling) => ({ kind: 'wrong-key' as const, spelling })),
      fc.constantFrom(null, 0, 1, true, [], {}).map((value) => ({ kind: 'key-not-a-string' as const, value })),
      fc.constant({ kind: 'key-as-array' as const }),
      fc.constant({ kind: 'key-nested' as const }),
      fc.constant({ kind: 'key-in-query' as const }),
      fc.constant({ kind: 'key-in-header' as const }),
      fc.constant({ kind: 'right-then-wrong' as const }),
      fc.constant({ kind: 'wrong-then-right' as const }),
      fc.constant({ kind: 'escaped-right-key' as const }),
    );
    return fc.record({ content: contentArb, attack }).map(({ content, attack: a }) => {
      const dressed = base(content);
      let json: Json | undefined;
      try {
        const parsed = JSON.parse(content.body.toString('utf8')) as unknown;
        json = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Json) : undefined;
      } catch {
        json = undefined;
      }
      const withoutKey = json ? Object.fromEntries(Object.entries(json).filter(([k]) => k !== 'callbackApiKey')) : undefined;
      let inner: string | undefined;
      try {
        inner = withoutKey ? JSON.stringify(withoutKey).slice(1, -1) : undefined;
      } catch {
        // Nested deeper than JSON.stringify goes: forge around an empty object instead.
        inner = undefined;
      }
      const object = (prefix: string) => Buffer.from(`{${prefix}${inner ? `,${inner}` : ''}}`);
      let body = content.body;
      let query = dressed.query;
      const headers = { ...dressed.headers };
      let authentic = false;
      let variant: string = a.kind;
      switch (a.kind) {
        case 'missing':
          body = inner !== undefined ? Buffer.from(`{${inner}}`) : content.body;
          break;
        case 'wrong-key':
          body = object(`"callbackApiKey":${JSON.stringify(a.spelling.value)}`);
          variant = `wrong-key:${a.spelling.how}`;
          authentic = a.spelling.value === key;
          break;
        case 'key-not-a-string':
          body = object(`"callbackApiKey":${JSON.stringify(a.value)}`);
          break;
        case 'key-as-array':
          body = object(`"callbackApiKey":${JSON.stringify([key])}`);
          break;
        case 'key-nested':
          body = object(`"data":{"callbackApiKey":${JSON.stringify(key)}}`);
          break;
        case 'key-in-query':
          body = inner !== undefined ? Buffer.from(`{${inner}}`) : content.body;
          query = `callbackApiKey=${encodeURIComponent(key)}`;
          break;
        case 'key-in-header':
          body = inner !== undefined ? Buffer.from(`{${inner}}`) : content.body;
          headers['x-callback-api-key'] = key;
          break;
        case 'right-then-wrong':
          // JSON.parse keeps the last duplicate: this one carries the wrong key.
          body = Buffer.from(`{"callbackApiKey":${JSON.stringify(key)}${inner ? `,${inner}` : ''},"callbackApiKey":"${key}x"}`);
          break;
        case 'wrong-then-right':
          body = Buffer.from(`{"callbackApiKey":"${key}x"${inner ? `,${inner}` : ''},"callbackApiKey":${JSON.stringify(key)}}`);
          authentic = true;
          break;
        case 'escaped-right-key':
          // The right key spelled with JSON escapes: the same key once parsed (and it must not
          // survive in the queued raw body in this spelling either).
          body = object(`"callbackApiKey":"${[...key].map((ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"`);
          authentic = true;
          break;
      }
      // A body forged around no content (not a JSON object, or too deep to copy) carries only the key.
      const carriesContent = inner !== undefined || body === content.body;
      return { dressed: { ...dressed, body, query, headers, authentic, variant }, content: carriesContent ? content : { ...content, intent: 'invalid' as Intent } };
    });
  }

  // Token in the path: eSMS, TemboPlus, REL-IDverify.
  const token = (secrets[provider.id] as { token: string }).token;
  const attack = fc.oneof(
    fc.constant({ kind: 'missing' as const }),
    wrongSpellings(token).map((spelling) => ({ kind: 'wrong-token' as const, spelling })),
    fc.constantFrom('token', 'callbackToken', 'TOKEN').map((name) => ({ kind: 'token-in-query' as const, name })),
    fc.constant({ kind: 'token-in-header' as const }),
    ...(provider.id === 'relid' ? [fc.constantFrom(...DISALLOWED_SOURCE_IPS).map((ip) => ({ kind: 'source-ip' as const, ip }))] : []),
    fc.constant({ kind: 'other-provider-token' as const }),
  );
  return fc.record({ content: contentArb, attack }).map(({ content, attack: a }) => {
    const dressed = base(content);
    let pathToken: string | undefined = dressed.pathToken;
    let query = dressed.query;
    let sourceIp = dressed.sourceIp;
    const headers = { ...dressed.headers };
    let variant: string = a.kind;
    switch (a.kind) {
      case 'missing':
        pathToken = undefined;
        break;
      case 'wrong-token':
        pathToken = a.spelling.value;
        variant = `wrong-token:${a.spelling.how}`;
        break;
      case 'token-in-query':
        pathToken = undefined;
        query = `${query ? `${query}&` : ''}${a.name}=${encodeURIComponent(token)}`;
        break;
      case 'token-in-header':
        pathToken = undefined;
        headers['x-callback-token'] = token;
        break;
      case 'source-ip':
        sourceIp = a.ip;
        variant = `source-ip:${a.ip || 'empty'}`;
        break;
      case 'other-provider-token':
        pathToken = provider.id === 'esms' ? secrets.temboplus.token : secrets.esms.token;
        break;
    }
    const authentic = pathToken === token && (provider.id !== 'relid' || ALLOWED_SOURCE_IPS.includes(sourceIp));
    return { dressed: { ...dressed, pathToken, query, sourceIp, headers, authentic, variant }, content };
  });
}

/** Arbitrary hostile requests for one provider, across every family. */
export function fuzzRequests(ctx: DressContext): fc.Arbitrary<FuzzRequest> {
  const { provider } = ctx;
  const contents = provider.id === 'esms' ? esmsContent() : jsonContent(provider.id);
  const anyContent = fc.oneof(
    { arbitrary: contents.valid, weight: 4 },
    { arbitrary: contents.malformed, weight: 2 },
    { arbitrary: contents['wrong-type'], weight: 2 },
    { arbitrary: contents.unicode, weight: 2 },
    { arbitrary: contents.huge, weight: 1 },
  );
  const sourceIp = fc.constantFrom(...ALLOWED_SOURCE_IPS);

  const finish = (family: Family, content: Content, dressed: Dressed, type: string | undefined | null): FuzzRequest => {
    const headers = { ...dressed.headers };
    // null: keep the provider's own content type; undefined: send none.
    if (type !== null) {
      if (type === undefined) delete headers['content-type'];
      else headers['content-type'] = type;
    }
    const summary = `${provider.id} ${family}/${dressed.variant ?? content.variant} ${dressed.authentic ? 'authentic' : 'forged'} ${dressed.method} body=${dressed.body.length}B query=${dressed.query.length}B`;
    return {
      // fast-check prints this instead of the whole request (bodies run to 256 KiB).
      [fc.toStringMethod]: () => summary,
      provider: provider.id,
      family,
      variant: dressed.variant ?? content.variant,
      authentic: dressed.authentic,
      intent: content.intent,
      method: dressed.method,
      pathToken: dressed.pathToken,
      query: dressed.query,
      headers,
      body: dressed.body,
      sourceIp: dressed.sourceIp,
    };
  };
  /** Mostly the provider's own content type; sometimes another (or none), whatever the family. */
  const sometimesOtherType = fc.oneof({ arbitrary: fc.constant(null), weight: 5 }, { arbitrary: contentType, weight: 1 });

  const authenticFamily = (family: Family, arb: fc.Arbitrary<Content>) =>
    fc.record({ content: arb, ip: sourceIp, type: sometimesOtherType }).map(({ content, ip, type }) => finish(family, content, dressAuthentic(ctx, content, ip), type));

  const wrongMethods = METHODS.filter((method) => method !== provider.route.method);
  const families: { arbitrary: fc.Arbitrary<FuzzRequest>; weight: number }[] = [
    { arbitrary: authenticFamily('valid', contents.valid), weight: 20 },
    { arbitrary: authenticFamily('malformed', contents.malformed), weight: 12 },
    { arbitrary: authenticFamily('wrong-type', contents['wrong-type']), weight: 12 },
    { arbitrary: authenticFamily('huge', contents.huge), weight: 6 },
    { arbitrary: authenticFamily('unicode', contents.unicode), weight: 10 },
    {
      arbitrary: fc.record({ content: fc.oneof(contents.valid, contents.unicode), ip: sourceIp, type: contentType }).map(({ content, ip, type }) =>
        finish('content-type', content, dressAuthentic(ctx, content, ip), type),
      ),
      weight: 8,
    },
    {
      arbitrary: fc
        .record({ content: anyContent, ip: sourceIp, method: fc.constantFrom(...wrongMethods), forge: fc.boolean(), type: sometimesOtherType })
        .map(({ content, ip, method, forge, type }) => {
          const dressed = dressAuthentic(ctx, content, ip);
          return finish('method', content, { ...dressed, method, authentic: dressed.authentic && !forge, ...(forge ? { pathToken: undefined, headers: {} } : {}) }, type);
        }),
      weight: 4,
    },
    {
      arbitrary: fc.record({ content: contents.oversize, ip: sourceIp, forge: fc.boolean() }).map(({ content, ip, forge }) => {
        const dressed = dressAuthentic(ctx, content, ip);
        return finish('oversize', content, forge ? { ...dressed, authentic: false, pathToken: undefined, headers: {} } : dressed, null);
      }),
      weight: 3,
    },
    {
      arbitrary: fc
        .record({ forgery: forged(ctx, anyContent, contents.valid), type: sometimesOtherType })
        .map(({ forgery, type }) => finish('auth', forgery.content, forgery.dressed, type)),
      weight: 25,
    },
  ];
  return fc.oneof(...families);
}

/**
 * One authentic request for the given content, dressed as the fuzzer dresses its own: for the
 * regression tests that pin what the fuzzer found.
 */
export function authenticFuzzRequest(ctx: DressContext, content: { body?: Buffer; query?: string; intent?: Intent }, variant = 'regression'): FuzzRequest {
  const full: Content = { body: content.body ?? Buffer.alloc(0), query: content.query ?? '', intent: content.intent ?? 'either', variant };
  const dressed = dressAuthentic(ctx, full, ALLOWED_SOURCE_IPS[0]);
  return {
    provider: ctx.provider.id,
    family: 'valid',
    variant,
    authentic: dressed.authentic,
    intent: full.intent,
    method: dressed.method,
    pathToken: dressed.pathToken,
    query: dressed.query,
    headers: dressed.headers,
    body: dressed.body,
    sourceIp: dressed.sourceIp,
  };
}
