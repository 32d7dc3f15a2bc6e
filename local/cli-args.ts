import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isAbsolute, relative, resolve } from 'node:path';
import { npmExported, npmrcSetting, shellWord } from '../lib/npm-config.ts';

// The SDK warns once per process that its 2027 releases need Node 22; Lambda runs Node 22 and the
// lock file pins today's SDK, so in our own commands it is only noise between the useful lines.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** Default folder of the local pipeline's data (git-ignored). */
export const DEFAULT_DATA_DIR = '.local-data';

/** The data folder: --data-dir, else CALLBACK_GATEWAY_DATA_DIR, else .local-data. */
export function dataDirFrom(value: string | undefined): string {
  return resolve(value ?? process.env.CALLBACK_GATEWAY_DATA_DIR ?? DEFAULT_DATA_DIR);
}

/**
 * ` --data-dir DIR` for a hint naming another command (`npm run send -- telesign`), when this
 * command's data folder is not the one those commands find by themselves; else nothing. Without it,
 * a hint followed as printed reads or sends to the pipeline of the default folder, or to none.
 */
export function dataDirHint(value: string | undefined, cwd = process.cwd()): string {
  if (value === undefined || dataDirFrom(value) === dataDirFrom(undefined)) return '';
  const full = dataDirFrom(value);
  const inside = relative(cwd, full);
  const shown = inside === '' || inside.startsWith('..') || isAbsolute(inside) ? full : inside;
  return ` --data-dir ${shellWord(shown)}`;
}

/**
 * Why a command found no local pipeline, and the `npm start` that starts the one it looks for: with
 * a data folder other than the default, `npm start -- --data-dir DIR` (a plain `npm start` starts a
 * pipeline in the default folder, which this command would still not find). `flags` are npm start's
 * own flags the hint needs (`--sms-relay telesign`).
 */
export function noPipelineHere(dataDirFlag: string | undefined, flags = ''): { where: string; start: string } {
  const hint = dataDirHint(dataDirFlag);
  const args = `${flags}${hint}`.trim();
  return {
    where: hint ? ` with the data folder ${dataDirFrom(dataDirFlag)}` : '',
    start: args ? `npm start -- ${args}` : 'npm start',
  };
}

/** Exit code of a command line that was used wrongly (a bad flag or value), as parseArgs errors are. */
export const USAGE_EXIT_CODE = 2;

/** The flag every command takes: it prints the usage on stdout and exits 0, doing nothing else. */
export interface HelpOption {
  readonly help: { readonly type: 'boolean'; readonly short: 'h' };
}

/**
 * parseArgs' refusal as a user of `npm run` can act on. Its unknown-flag message goes on to advise
 * `-- "--flag"` for a positional starting with '-', with an unbalanced quote: only its first
 * sentence, naming the flag, is said, and for a one-dash flag where such a value goes instead.
 */
export function parseErrorText(error: Error & { code?: string }): string {
  if (error.code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return error.message;
  const named = error.message.replace(/\. To specify a positional argument[\s\S]*$/, '');
  // A one-dash "flag" is more often an id that starts with '-' (`-REF-1` is read as -R, -E, …): such
  // a value is taken as it is after a second `--` (`npm run inspect -- temboplus -- -REF-1`).
  return /^Unknown option '-[^-]/.test(named) ? `${named} (a value that starts with '-' goes last, after a second --)` : named;
}

/**
 * parseArgs that prints a usage line and exits 2 on a bad flag instead of throwing a stack trace,
 * and answers --help (`-h`) with the usage, so that every command does both the same way.
 */
export function parseCli<T extends ParseArgsConfig['options'] & HelpOption>(options: T, usage: string, args = process.argv.slice(2)) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    console.error(`${parseErrorText(error as Error & { code?: string })}\n\n${usage}`);
    process.exit(USAGE_EXIT_CODE);
  }
  const taken = flagsNpmTook(options, process.env, parsed.values);
  if (taken.length > 0) {
    console.error(`${npmTookText(taken, process.env)}\n\n${usage}`);
    process.exit(USAGE_EXIT_CODE);
  }
  // `HelpOption` holds every command to declaring it; the parsed values' type is too generic to say so.
  if ((parsed.values as { readonly help?: boolean }).help) {
    console.log(usage);
    process.exit(0);
  }
  return parsed;
}

/**
 * The command's own flags that npm kept for itself. Written before `--` (`npm run redrive --dry-run`,
 * `npm start --fresh`), a flag is npm's: npm exports it as `npm_config_<name>=true`, runs the
 * command without it, and a value after it arrives as a stray word; written `--max=5`, npm exports
 * the value (`npm_config_max=5`) and the command runs without its limit. A dry run would move the
 * messages, a fresh start keep the old data. No value flag of ours is one of npm's own settings
 * (only json and dry-run are, both booleans), so npm never exports one by itself; one npm reads as
 * an abbreviation of its own (`--max`: `maxsockets`) is told by its value (NPM_EXPANDS). A short
 * alias is npm's own alias of one of its settings (`-f`: `force`), told the same way (NPM_SHORTS).
 *
 * Only under npm (`npm_lifecycle_event` set); `--help` (`-h`) npm answers itself. A flag the command
 * was given (`given`, after `--`) is never reported, though npm may export a setting of that name
 * too (`json=true` in an .npmrc): refusing it would advise the very command line that was typed.
 */
export function flagsNpmTook(options: Readonly<Record<string, { readonly type: 'string' | 'boolean'; readonly short?: string }>>, env: NodeJS.ProcessEnv, given: Readonly<Record<string, unknown>> = {}): string[] {
  if (env.npm_lifecycle_event === undefined) return [];
  return Object.entries(options).flatMap(([name, { type, short }]) => {
    if (name === 'help' || (given[name] !== undefined && given[name] !== false)) return [];
    const exported = npmExported(name, env);
    if (type === 'boolean' ? exported === 'true' : exported !== undefined && exported !== '') return [`--${name}`];
    if (NPM_EXPANDS[name] !== undefined && setOnCommandLine(NPM_EXPANDS[name], env)) return [`--${name}`];
    const alias = short === undefined ? undefined : NPM_SHORTS[short];
    if (alias !== undefined && npmExported(alias.key, env) === alias.value && setOnCommandLine(alias.key, env)) return [`-${short}`];
    return [];
  });
}

/**
 * Flags of ours that npm reads as an abbreviation of a setting of its own: written before `--`,
 * `--max=5` (or `--max 5`) is npm's `maxsockets` (npm says "Expanding --max to --maxsockets") and
 * is exported as `npm_config_maxsockets=5`, never as `npm_config_max`: `npm run redrive --max=5`
 * moved every message. A value equal to npm's default (15), or one npm finds no number, is not
 * exported, and cannot be told apart.
 */
const NPM_EXPANDS: Readonly<Record<string, string>> = { max: 'maxsockets' };

/**
 * npm's own one-letter aliases that it exports, as npm 11 does (`npm run events -f`: `force=true`,
 * the command ran without --follow): the setting and the value it is exported with. Any other
 * letter npm keeps leaves no trace (`-n`, `-c`, `-S`), or npm answers it without running the command
 * (`-h`, `-H`, `-v`, `-w`); a letter npm does not know arrives as its own setting (`-x`:
 * `npm_config_x=true`). Tests hold every command's short aliases to this list.
 */
export const NPM_SHORTS: Readonly<Record<string, { readonly key: string; readonly value: string }>> = {
  a: { key: 'all', value: 'true' },
  d: { key: 'loglevel', value: 'info' },
  f: { key: 'force', value: 'true' },
  g: { key: 'global', value: 'true' },
  j: { key: 'json', value: 'true' },
  l: { key: 'long', value: 'true' },
  p: { key: 'parseable', value: 'true' },
  q: { key: 'loglevel', value: 'warn' },
  s: { key: 'loglevel', value: 'silent' },
  y: { key: 'yes', value: 'true' },
  B: { key: 'save-bundle', value: 'true' },
  D: { key: 'save-dev', value: 'true' },
  E: { key: 'save-exact', value: 'true' },
  O: { key: 'save-optional', value: 'true' },
  P: { key: 'save-prod', value: 'true' },
};

/**
 * Whether npm exported its setting `key` with a value no npmrc file gave it: the command line's. An
 * .npmrc that sets maxsockets (a slow network's advice), or force, exports it on every run, and is
 * not a flag.
 */
function setOnCommandLine(key: string, env: NodeJS.ProcessEnv): boolean {
  const exported = npmExported(key, env);
  if (exported === undefined || exported === '') return false;
  const configured = npmrcSetting(key, env);
  if (configured === undefined) return true;
  // npm exports a number setting as a number (`maxsockets = 05` arrives as 5).
  return exported !== configured && !(configured !== '' && Number(configured) === Number(exported));
}

/** What to say when npm kept the command's flags: which, and the command line that gives them to it. */
export function npmTookText(flags: readonly string[], env: NodeJS.ProcessEnv): string {
  const script = env.npm_lifecycle_event === 'start' ? 'npm start' : `npm run ${env.npm_lifecycle_event ?? '<command>'}`;
  return `npm took ${flags.join(', ')} for its own setting${flags.length > 1 ? 's' : ''} (written before \`--\`, or set in an .npmrc), so the command never got ${flags.length > 1 ? 'them' : 'it'}: write ${script} -- ${flags.join(' ')} …`;
}

/**
 * What is wrong with a command's arguments, or undefined: the first one missing (`missing
 * <subjectId>`) or the first one too many. `required` and `optional` name them as the usage does.
 */
export function argumentsProblem(positionals: readonly string[], required: readonly string[], optional: readonly string[] = []): string | undefined {
  if (positionals.length < required.length) return `missing ${required[positionals.length]}`;
  const extra = positionals[required.length + optional.length];
  return extra === undefined ? undefined : `unexpected argument ${JSON.stringify(extra)}`;
}

/** Exit 2 with what is wrong with the arguments above the usage, as parseCli does for a bad flag; nothing when they are right. */
export function checkArguments(positionals: readonly string[], usage: string, required: readonly string[], optional: readonly string[] = []): void {
  const problem = argumentsProblem(positionals, required, optional);
  if (problem === undefined) return;
  console.error(`${problem}\n\n${usage}`);
  process.exit(USAGE_EXIT_CODE);
}

/** The whole numbers a numeric flag accepts, and what its smallest value means when that is special. */
export interface IntRange {
  readonly min: number;
  /** @default no upper bound (Number.MAX_SAFE_INTEGER) */
  readonly max?: number;
  /** Said in the error, e.g. `0: any free port`, so the user learns why the range is what it is. */
  readonly note?: string;
}

/** How many of something to do or list (--repeat, --recent): at least one; the bound keeps a typo from flooding a queue or a table read. */
export const COUNT_RANGE: IntRange = { min: 1, max: 1000 };

/** `--name must be a whole number from 1 to 1000 …`: the rule, stated the same way for every flag. */
export function rangeText(label: string, range: IntRange): string {
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  const bounds = max === Number.MAX_SAFE_INTEGER ? `of at least ${range.min}` : `from ${range.min} to ${max}`;
  return `${label} must be a whole number ${bounds}${range.note ? ` (${range.note})` : ''}`;
}

/**
 * A numeric value checked against its range: the number, or the message naming where it came from
 * (`--repeat`, `PORT`), the allowed range and what was given. Digits only: `Number()` alone would
 * take '', ' 5', '1e3' and '0x10'.
 */
export function checkInt(label: string, value: string, range: IntRange): { ok: true; value: number } | { ok: false; message: string } {
  const number = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (Number.isSafeInteger(number) && number >= range.min && number <= (range.max ?? Number.MAX_SAFE_INTEGER)) return { ok: true, value: number };
  return { ok: false, message: `${rangeText(label, range)}, got "${value}"` };
}

/** A numeric flag (`name` without its dashes) within its range, the fallback when absent, or exit 2 naming it and the range. */
export function intFlag(name: string, value: string | undefined, range: IntRange, fallback: number): number;
export function intFlag(name: string, value: string | undefined, range: IntRange): number | undefined;
export function intFlag(name: string, value: string | undefined, range: IntRange, fallback?: number): number | undefined {
  return value === undefined ? fallback : intOrExit(`--${name}`, value, range);
}

/** As intFlag, for a value from elsewhere (an environment variable): `label` is how the user wrote it. */
export function intValue(label: string, value: string | undefined, range: IntRange, fallback: number): number;
export function intValue(label: string, value: string | undefined, range: IntRange): number | undefined;
export function intValue(label: string, value: string | undefined, range: IntRange, fallback?: number): number | undefined {
  return value === undefined ? fallback : intOrExit(label, value, range);
}

function intOrExit(label: string, value: string, range: IntRange): number {
  const checked = checkInt(label, value, range);
  if (checked.ok) return checked.value;
  console.error(checked.message);
  process.exit(USAGE_EXIT_CODE);
}
