import { esms } from '../../functions/providers/esms.ts';
import { editQuery, fieldValues, flatCredentials, hexOf, lifeDice, pathToken, pathTokenAuth, type FuzzRegression, type FuzzTools, type MoreContent, type ProviderKit, type QueryTools } from './kit.ts';

// --- hostile-input suite (test/fuzz) ---

/** How voice call results are keyed (`voice:<ReferenceId>`): no SMSID may start with it. */
const VOICE_PREFIX = 'voice:';

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
  secret: (tag) => ({ token: pathToken(tag, 'esms') }),
  credentials: fieldValues(['token']),
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
