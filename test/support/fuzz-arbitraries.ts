import fc from 'fast-check';
import { MAX_BODY_BYTES } from '../../functions/core/pipeline-definition.ts';
import { holdsProtoMember, misreadNumber } from '../../functions/providers/common.ts';
import { providers } from '../../functions/providers/index.ts';
import type { AnyProvider } from '../../functions/providers/provider.ts';
import { listSamples } from '../../local/samples.ts';
import { kitOf } from '../providers/index.ts';
import {
  FUZZ_SOURCE_IPS,
  type Dressed,
  type Forgery,
  type FuzzContent,
  type FuzzTools,
  type Intent,
  type Json,
  type JsonContentRules,
  type JsonFieldRule,
  type QueryContentRules,
} from '../providers/kit.ts';

/**
 * Hostile requests for one provider, as fast-check arbitraries. Each request says how it was made
 * (`authentic`: dressed with the right secret the provider's own way, the body changed *before*
 * signing; `forged`: anything else) and what its content is meant to be (`intent`), so the harness
 * can tell what the gateway must answer without re-implementing its checks.
 *
 * Nothing here names a provider: what the content is made of (field rules, subject, the provider's
 * own shapes), how it is dressed and how it can be forged come from the provider's test kit
 * (`kit.fuzz`, test/providers/<id>.ts); this file combines them into families of requests.
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

export type { Intent };

/** A request as sent (`authentic`: dressed with the right secret, the provider's own way), and what it is. */
export interface FuzzRequest extends Omit<Dressed, 'variant'> {
  /** A one-line summary, which fast-check prints for a counterexample. */
  readonly [fc.toStringMethod]?: () => string;
  readonly provider: string;
  readonly family: Family;
  /** Short label of how the request was made (`truncated`, `deep-array`, `replayed-body`…). */
  readonly variant: string;
  readonly intent: Intent;
}

/** Every provider's secret for the suite, by provider id (each kit's `secret('fuzz')`, adjusted by the kit). */
export type FuzzSecrets = Readonly<Record<string, Record<string, unknown>>>;

type Content = FuzzContent;
type Families = Record<'valid' | 'malformed' | 'wrong-type' | 'huge' | 'unicode' | 'oversize', fc.Arbitrary<Content>>;

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
const NOT_DELIVERABLE = /[\ufffe\uffff]/;

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

/** What a raw JSON text parses to (JSON.parse reads any depth), or undefined when it is not JSON. */
function parsedRaw(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

function stringifyWithRaw(value: unknown, raws: readonly string[]): string {
  let text = JSON.stringify(value);
  raws.forEach((raw, index) => {
    text = text.replace(JSON.stringify(RAW_MARK(index)), () => raw);
  });
  return text;
}

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

function getPath(target: Json, path: readonly string[]): unknown {
  return path.reduce<unknown>((node, key) => (node && typeof node === 'object' ? (node as Json)[key] : undefined), target);
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

/** fast-check and the building blocks above, for a kit's own generators (kits do not import fast-check). */
export const fuzzTools: FuzzTools = { fc, id, oddText, hostileJsonText, wrongSpellings };

// ---------------------------------------------------------------------------------------------
// Content: a JSON body, from the kit's rules

/** A value the rule refuses for sure. */
function refusedValue(rule: JsonFieldRule): fc.Arbitrary<unknown> {
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
    case 'text':
      return fc.oneof(fc.boolean(), fc.constant(null), fc.constant([]), fc.array(fc.string({ maxLength: 5 }), { minLength: 1, maxLength: 3 }), fc.constant({}), ...empty, ...tooLong);
  }
}

interface JsonSample {
  readonly name: string;
  readonly json: Json;
}

function jsonSamples(providerId: string): JsonSample[] {
  return listSamples(providerId).map((sample) => ({
    name: sample.name,
    json: JSON.parse((sample.body ?? Buffer.alloc(0)).toString('utf8')) as Json,
  }));
}

const text = (value: string) => Buffer.from(value, 'utf8');

/** Every family of JSON content for a provider, from its kit's rules, samples and own generators. */
function jsonFamilies(provider: AnyProvider, rules: JsonContentRules): Families {
  const providerId = provider.id;
  const samples = jsonSamples(providerId);
  const invalidSamples = listSamples(providerId, 'invalid').map((sample) => sample.body ?? Buffer.alloc(0));
  const sample = fc.constantFrom(...samples);
  const subjectValue = fc.oneof({ arbitrary: id, weight: 4 }, { arbitrary: oddText(rules.subject.max), weight: 1 });
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
      setPath(json, rules.subject.path, subject);
      const raws: string[] = [];
      for (const [key, value] of extras) {
        if (rules.fields.some((rule) => rule.path[0] === key)) continue;
        // `__proto__` and friends must end up as own JSON keys, hence raw text.
        json[key] = RAW_MARK(raws.length);
        raws.push(value);
      }
      return { json, raws, sampleName: chosen.name };
    });
  /** Most variants also vary the fields that decide the outcome, where the provider says how. */
  const vary = rules.vary?.(fuzzTools);
  const more = rules.more?.(fuzzTools) ?? {};
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

  // A subject id that cannot be stored exactly (a lone surrogate), or that no event could name
  // exactly (U+FFFE, U+FFFF: SQS refuses them), is quarantined, whatever the provider.
  const subjectIntent = (json: Json): Intent => {
    const subject = String(getPath(json, rules.subject.path));
    return LONE_SURROGATE.test(subject) || NOT_DELIVERABLE.test(subject) || rules.subject.refuses?.(subject) ? 'invalid' : 'valid';
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

  const applicableRules = (json: Json) => rules.fields.filter((rule) => !rule.whenPresent || hasPath(json, rule.path));
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
      .chain((v) => fc.record({ v: fc.constant(v), rule: fc.constantFrom(...rules.fields.filter((rule) => (rule.kind === 'string' || rule.kind === 'text') && rule.min && !rule.whenPresent)) }))
      .map(({ v, rule }) => {
        const json = clone(v.json);
        deletePath(json, rule.path);
        const intent: Intent = rule.optionalWhen?.(json) ? subjectIntent(json) : 'invalid';
        return { body: text(stringifyWithRaw(json, v.raws)), query: '', intent, variant: `missing:${rule.path.join('.')}` };
      }),
    // Fields the code reads without the schema checking them: any JSON value.
    ...(rules.looseUsed.length
      ? [
          fc.record({ v: validJson, path: fc.constantFrom(...rules.looseUsed), raw: hostileJsonText }).map(({ v, path, raw }) => {
            const json = clone(v.json);
            const refused = rules.looseRefused?.(json, path, parsedRaw(raw));
            setPath(json, path, RAW_MARK(v.raws.length));
            return { body: text(stringifyWithRaw(json, [...v.raws, raw])), query: '', intent: refused ?? subjectIntent(json), variant: `loose:${path.join('.')}` };
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
    ...(more['wrong-type'] ?? []),
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
    ...(more.huge ?? []),
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
      setPath(json, rules.subject.path, `s-${odd.join('')}`.slice(0, rules.subject.max));
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
      setPath(json, rules.subject.path, 'FUZZMARK');
      const full = Buffer.from(stringifyWithRaw(json, v.raws));
      const at = full.indexOf('FUZZMARK');
      return { body: Buffer.concat([full.subarray(0, at), Buffer.from(bytes), full.subarray(at + 8)]), query: '', intent: 'either' as Intent, variant: 'invalid-utf8' };
    }),
    // Raw control characters and NUL in JSON strings (JSON forbids them unescaped).
    fc.record({ v: validJson, ch: fc.constantFrom('\u0000', '\u0001', '\u001f', '\n') }).map(({ v, ch }) => {
      const json = clone(v.json);
      setPath(json, rules.subject.path, 'FUZZMARK');
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

  return { valid: more.valid?.(valid) ?? valid, malformed, 'wrong-type': wrongType, huge, unicode: fc.oneof(unicode, times), oversize };
}
// ---------------------------------------------------------------------------------------------
// Content: a query string (everything in the GET query), from the kit's rules

type Pairs = readonly (readonly [string, string])[];

const enc = (pairs: Pairs) => pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');

function withValue(pairs: Pairs, name: string, value: string | undefined): (readonly [string, string])[] {
  const rest = pairs.filter(([k]) => k.toLowerCase() !== name.toLowerCase());
  return value === undefined ? rest : [...rest, [name, value] as const];
}

const content = (query: string, intent: Intent, variant: string): Content => ({ body: Buffer.alloc(0), query, intent, variant });

/** Values a digits field refuses: words, signs, decimals, spaces, hex, digits of other scripts. */
const NOT_DIGITS = ['abc', '', '-1', '1.0', '1.5', ' 5', '5 ', '0x5', '٥', '５'];

/** Every family of query content for a provider, from its kit's rules, samples and own generators. */
function queryFamilies(provider: AnyProvider, rules: QueryContentRules): Families {
  const samples = listSamples(provider.id).map((sample) => [...new URLSearchParams(sample.query ?? '')]);
  const sample = fc.constantFrom(...samples);
  const { subject } = rules;
  /** The parameter naming the subject: the first of the names the sample has (as spelled there), else the first. */
  const subjectName = (pairs: Pairs) => subject.names.find((name) => pairs.some(([k]) => k === name)) ?? subject.names[0];
  /** The same, whatever case the names were folded to. */
  const subjectNameIgnoringCase = (pairs: Pairs) => subject.names.find((name) => pairs.some(([k]) => k.toLowerCase() === name.toLowerCase())) ?? subject.names[0];
  const spellings = rules.namesIgnoreCase ? (['as-is', 'lower', 'upper'] as const) : (['as-is'] as const);
  const spell = (name: string, spelling: (typeof spellings)[number]) => (spelling === 'lower' ? name.toLowerCase() : spelling === 'upper' ? name.toUpperCase() : name);
  const required = rules.fields.filter((rule) => rule.required);
  const digits = rules.fields.filter((rule) => rule.kind === 'digits');
  const loose = rules.fields.filter((rule) => rule.kind === 'loose').map((rule) => rule.name);
  const wellFormed = (value: string) => !/[\ud800-\udfff]/.test(value.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''));

  const validPairs: fc.Arbitrary<Pairs> = fc
    .record({
      pairs: sample,
      subject: fc.oneof({ arbitrary: id, weight: 4 }, { arbitrary: oddText(subject.max).filter((s) => wellFormed(s) && !NOT_DELIVERABLE.test(s) && !subject.refuses?.(s)), weight: 1 }),
      caseFold: fc.constantFrom(...spellings),
      shuffle: fc.nat(),
      extras: fc.array(fc.tuple(fc.stringMatching(/^x_fuzz_[a-z0-9]{1,6}$/), fc.string({ maxLength: 20 })), { maxLength: 3 }),
    })
    .map(({ pairs, subject: value, caseFold, shuffle, extras }) => {
      let result: Pairs = withValue(pairs, subjectName(pairs), value);
      result = [...result, ...extras];
      if (caseFold !== 'as-is') result = result.map(([k, v]) => [spell(k, caseFold), v] as const);
      const rotate = result.length ? shuffle % result.length : 0;
      return [...result.slice(rotate), ...result.slice(0, rotate)];
    });
  const more = rules.more?.(fuzzTools, { validPairs, encode: enc, withValue, content }) ?? {};

  const samplesValid = validPairs.map((pairs) => content(enc(pairs), 'valid', 'sample-variant'));
  const valid = more.valid?.(samplesValid) ?? samplesValid;

  const malformed: fc.Arbitrary<Content> = fc.oneof(
    fc.record({ pairs: validPairs, at: fc.double({ min: 0, max: 1, noNaN: true }) }).map(({ pairs, at }) => {
      const full = enc(pairs);
      return content(full.slice(0, Math.floor(at * full.length)), 'either', 'truncated');
    }),
    fc.record({ pairs: validPairs, junk: fc.constantFrom('%', '%Z', '%ZZ', '%E0%A4', '%FF%FE', '%ED%A0%80', '%C0%AF', '&&&', '=', '==&=', ';', '+', '#frag', '?', '%00', '%uD800', '\u0000'), at: fc.double({ min: 0, max: 1, noNaN: true }) }).map(
      ({ pairs, junk, at }) => {
        const full = enc(pairs);
        const i = Math.floor(at * full.length);
        return content(full.slice(0, i) + junk + full.slice(i), 'either', 'junk-inserted');
      },
    ),
    // Something, but no subject.
    fc
      .oneof(fc.constantFrom('', '&', '=', 'a', ...required.flatMap((rule) => [rule.name, `?${rule.name}=5`])), fc.string({ maxLength: 40 }).map((s) => encodeURIComponent(s)))
      .map((query) => content(query, 'invalid', 'not-a-callback')),
    // A field read twice with another value: which one is true is not said, so it is quarantined.
    ...(required.length
      ? [
          fc.record({ pairs: validPairs, name: fc.constantFrom(...required.map((rule) => rule.name)), other: fc.constantFrom('x', '', '-1', '7') }).map(({ pairs, name, other }) =>
            content(`${enc(pairs)}&${name}=${other}`, 'invalid', 'repeated-name'),
          ),
        ]
      : []),
    fc.record({ pairs: validPairs, spelling: fc.constantFrom('lower', 'upper', 'as-is') }).map(({ pairs, spelling }) => {
      // The id the callback carries, repeated with another value (under its name in some case, where names are read in any case).
      const field = subjectNameIgnoringCase(pairs);
      const current = pairs.find(([k]) => k.toLowerCase() === field.toLowerCase())?.[1] ?? '';
      const name = rules.namesIgnoreCase ? spell(field, spelling) : (pairs.find(([k]) => k.toLowerCase() === field.toLowerCase())?.[0] ?? field);
      return content(`${enc(pairs)}&${name}=${encodeURIComponent(`${current}-other`)}`, 'invalid', `repeated-name:${field}`);
    }),
  );

  const refusedDigits = (fields: typeof digits) =>
    fc.record({ pairs: validPairs, field: fc.constantFrom(...fields.map((rule) => rule.name)), value: fc.constantFrom(...NOT_DIGITS) }).map(({ pairs, field, value }) => content(enc(withValue(pairs, field, value)), 'invalid', `refused:${field}`));
  const requiredDigits = digits.filter((rule) => rule.required);
  const optionalDigits = digits.filter((rule) => !rule.required);
  const wrongType: fc.Arbitrary<Content> = fc.oneof(
    ...(requiredDigits.length ? [refusedDigits(requiredDigits)] : []),
    ...(optionalDigits.length ? [refusedDigits(optionalDigits)] : []),
    ...(more['wrong-type'] ?? []),
    ...required.map((rule) => validPairs.map((pairs) => content(enc(withValue(pairs, rule.name, undefined)), 'invalid', `missing:${rule.name}`))),
    validPairs.map((pairs) => content(enc(subject.names.reduce<Pairs>((rest, name) => withValue(rest, name, undefined), pairs)), 'invalid', `missing:${subject.names[0]}`)),
    fc.record({ pairs: validPairs, length: fc.integer({ min: subject.max + 1, max: subject.max + 272 }) }).map(({ pairs, length }) =>
      content(enc(withValue(pairs, subjectName(pairs), 'x'.repeat(length))), 'invalid', `refused:${subject.names[0]}-too-long`),
    ),
    ...(loose.length
      ? [fc.record({ pairs: validPairs, field: fc.constantFrom(...loose), raw: hostileJsonText }).map(({ pairs, field, raw }) => content(enc(withValue(pairs, field, raw)), 'valid', `loose:${field}`))]
      : []),
  );

  const bigValue = fc.record({ length: fc.integer({ min: 50_000, max: 80_000 }), ch: fc.constantFrom('a', '9', 'é', '\ud83d\ude00', '\u0000', '"') }).map(({ length, ch }) => ch.repeat(Math.floor(length / ch.length)));
  /** Long runs of digits: refused where the schema bounds the field (counters, keys), kept anywhere else. */
  const longDigitFields = [...rules.fields.map((rule) => rule.name), 'x_fuzz_big'];
  const bound = (name: string) => rules.fields.find((rule) => rule.name === name)?.max;
  const huge: fc.Arbitrary<Content> = fc.oneof(
    // A long value in any parameter (digits stay valid for the digit fields).
    fc.record({ pairs: validPairs, pick: fc.nat(), value: bigValue }).map(({ pairs, pick, value }) => {
      const [name] = pairs[pick % pairs.length];
      return content(enc(withValue(pairs, name, value)), 'either', `long-value`);
    }),
    fc.record({ pairs: validPairs, field: fc.constantFrom(...longDigitFields), length: fc.integer({ min: 5_000, max: 80_000 }) }).map(({ pairs, field, length }) => {
      const max = bound(field);
      return content(enc(withValue(pairs, field, '7'.repeat(length))), max !== undefined && length > max ? 'invalid' : 'valid', `long-digits:${field}`);
    }),
    ...(more.huge ?? []),
    fc.record({ pairs: validPairs, count: fc.integer({ min: 1_000, max: 15_000 }) }).map(({ pairs, count }) =>
      content(`${enc(pairs)}&${Array.from({ length: count }, (_, i) => `p${i}=${i}`).join('&')}`, 'valid', 'many-params'),
    ),
    ...(loose.length
      ? [
          fc.record({ pairs: validPairs, field: fc.constantFrom(...loose), depth: fc.oneof(fc.constant(5_000), fc.integer({ min: 31, max: 34 }), fc.integer({ min: 100, max: 20_000 })), kind: fc.constantFrom('array' as const, 'object' as const) }).map(
            ({ pairs, field, depth, kind }) => content(enc(withValue(pairs, field, deepText(kind, depth))), 'valid', `deep-${field}-${kind}`),
          ),
        ]
      : []),
  );

  const unicode: fc.Arbitrary<Content> = fc.oneof(
    fc.record({ pairs: validPairs, odd: fc.array(fc.constantFrom(...ODD_CHARACTERS), { minLength: 1, maxLength: 8 }) }).map(({ pairs, odd }) =>
      content(enc(withValue(pairs, subjectName(pairs), `s-${odd.join('')}`)), NOT_DELIVERABLE.test(odd.join('')) ? 'invalid' : 'valid', 'odd-subject'),
    ),
    fc.record({ pairs: validPairs, bytes: fc.constantFrom(...INVALID_UTF8), field: fc.constantFrom(subject.names[0], ...rules.fields.map((rule) => rule.name)) }).map(({ pairs, bytes, field }) => {
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

export interface DressContext {
  readonly provider: AnyProvider;
  readonly secrets: FuzzSecrets;
}

/** The value of a route's token path parameter: the secret's generated field the route carries, if it has one. */
export function pathTokenOf(provider: AnyProvider, secret: Record<string, unknown> | undefined): string | undefined {
  const field = provider.route.tokenParameter === undefined ? undefined : provider.generatedSecretField;
  const value = field === undefined ? undefined : secret?.[field];
  return typeof value === 'string' ? value : undefined;
}

/** Dress content as the provider itself would send it (the kit's way, else `asSent`), from an allowed address. */
function dressAuthentic(ctx: DressContext, content: Content, sourceIp: string): Dressed {
  const { provider, secrets } = ctx;
  const secret = secrets[provider.id];
  const pathToken = pathTokenOf(provider, secret);
  const pathParameters = provider.routeParameters?.(secret) ?? {};
  const kit = kitOf(provider).fuzz;
  const sent = kit.dress
    ? kit.dress(content, secret)
    : provider.route.method === 'GET'
      ? { headers: {}, body: content.body }
      : provider.asSent
        ? provider.asSent(content.body, secret)
        : { headers: { 'content-type': 'application/json' }, body: content.body };
  const authentic = !('authentic' in sent && sent.authentic === false);
  return { method: provider.route.method, pathToken, pathParameters, query: content.query, headers: lower(sent.headers), body: sent.body, sourceIp, authentic };
}

function lower(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
}

/**
 * Forgeries of a route's token, for any provider whose route carries one: left out, a wrong
 * spelling, moved to the query or a header, another provider's token.
 */
function pathTokenForgeries(ctx: DressContext): { readonly misuse: fc.Arbitrary<Forgery>[]; readonly crossProvider: fc.Arbitrary<Forgery>[] } {
  const { provider, secrets } = ctx;
  const token = pathTokenOf(provider, secrets[provider.id]);
  const parameter = provider.route.tokenParameter;
  if (token === undefined || parameter === undefined) return { misuse: [], crossProvider: [] };
  const otherToken = providers.filter((other) => other.id !== provider.id).map((other) => pathTokenOf(other, secrets[other.id])).find((value) => value !== undefined);
  /** A forgery changing the request; authentic only if the token sent is still the right one. */
  const forge =
    (variant: string, change: (request: Dressed) => Partial<Dressed>): Forgery =>
    (request, content) => {
      const dressed = { ...request, ...change(request), variant };
      return { dressed: { ...dressed, authentic: request.authentic && dressed.pathToken === token }, content };
    };
  return {
    misuse: [
      fc.constant(forge('missing', () => ({ pathToken: undefined }))),
      fuzzTools.wrongSpellings(token).map((spelling) => forge(`wrong-token:${spelling.how}`, () => ({ pathToken: spelling.value }))),
      fc.constantFrom(parameter, 'callbackToken', parameter.toUpperCase()).map((name) =>
        forge('token-in-query', (request) => ({ pathToken: undefined, query: `${request.query ? `${request.query}&` : ''}${name}=${encodeURIComponent(token)}` })),
      ),
      fc.constant(forge('token-in-header', (request) => ({ pathToken: undefined, headers: { ...request.headers, 'x-callback-token': token } }))),
    ],
    crossProvider: otherToken === undefined ? [] : [fc.constant(forge('other-provider-token', () => ({ pathToken: otherToken })))],
  };
}

/** One forgery of content for the provider. Some "forgeries" turn out equivalent to the real thing: they are marked authentic. */
function forged(ctx: DressContext, contentArb: fc.Arbitrary<Content>, otherContent: fc.Arbitrary<Content>): fc.Arbitrary<{ dressed: Dressed; content: Content }> {
  const { provider, secrets } = ctx;
  const token = pathTokenForgeries(ctx);
  const own = kitOf(provider).fuzz.forgeries?.(fuzzTools, { secret: secrets[provider.id], valid: otherContent }) ?? [];
  const forgeries = [...token.misuse, ...own, ...token.crossProvider];
  if (forgeries.length === 0) throw new Error(`the ${provider.id} kit gives no way to forge a request (fuzz.forgeries) and its route carries no token`);
  const forge = forgeries.length === 1 ? forgeries[0] : fc.oneof(...forgeries);
  return fc.record({ content: contentArb, forge }).map(({ content, forge: chosen }) => chosen(dressAuthentic(ctx, content, FUZZ_SOURCE_IPS[0]), content));
}

/** Arbitrary hostile requests for one provider, across every family. */
/**
 * Whether the content is one the gateway never reads, quarantined as it came whatever else it is:
 * it names a member `__proto__` (fc's strings favour it; `holdsProtoMember`), or its JSON holds a
 * number JSON reads as another than written (`-1e-999` is 0, `1e999` Infinity; `misreadNumber`) in
 * the bytes `sent`, except in a Standard Webhooks body, the source's own data, read as JSON reads it.
 */
function neverRead(content: Content, sent: Buffer, provider: AnyProvider): boolean {
  if (provider.route.method === 'GET') {
    return content.query.split('&').some((pair) => {
      const name = pair.split('=')[0];
      try {
        return decodeURIComponent(name) === '__proto__';
      } catch {
        return name === '__proto__';
      }
    });
  }
  try {
    if (holdsProtoMember(content.body, JSON.parse(content.body.toString('utf8')))) return true;
    // The bytes sent: a sender that writes the body anew (Identomat's adds its key) has already
    // written a misread number as JSON reads it (1e999 as null).
    return provider.id !== 'standard-webhooks' && misreadNumber(sent.toString('utf8')) !== undefined;
  } catch {
    return false;
  }
}

export function fuzzRequests(ctx: DressContext): fc.Arbitrary<FuzzRequest> {
  const { provider } = ctx;
  const kit = kitOf(provider);
  const contents = kit.fuzz.content.kind === 'query' ? queryFamilies(provider, kit.fuzz.content) : jsonFamilies(provider, kit.fuzz.content);
  const anyContent = fc.oneof(
    { arbitrary: contents.valid, weight: 4 },
    { arbitrary: contents.malformed, weight: 2 },
    { arbitrary: contents['wrong-type'], weight: 2 },
    { arbitrary: contents.unicode, weight: 2 },
    { arbitrary: contents.huge, weight: 1 },
  );
  const sourceIp = fc.constantFrom(...FUZZ_SOURCE_IPS);

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
      intent: neverRead(content, dressed.body, provider) ? 'invalid' : content.intent,
      method: dressed.method,
      pathToken: dressed.pathToken,
      pathParameters: dressed.pathParameters,
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
  const dressed = dressAuthentic(ctx, full, FUZZ_SOURCE_IPS[0]);
  return {
    provider: ctx.provider.id,
    family: 'valid',
    variant,
    authentic: dressed.authentic,
    intent: full.intent,
    method: dressed.method,
    pathToken: dressed.pathToken,
    pathParameters: dressed.pathParameters,
    query: dressed.query,
    headers: dressed.headers,
    body: dressed.body,
    sourceIp: dressed.sourceIp,
  };
}
