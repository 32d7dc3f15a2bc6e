/**
 * Where the stack's settings come from, and the one rule about them: what is committed is what is
 * deployed.
 *
 * The committed place is cdk.json, under `context`:
 * - `settings`: every setting, for every stage (the default stage is the stack `CallbackGateway`);
 * - `stages`: one object per stage (`-c stage=prod` deploys the stack `CallbackGateway-prod`), whose
 *   values override `settings` for that stage only. A stage must be declared here, even as `{}`, so
 *   a mistyped `-c stage=prdo` is refused instead of deploying a second gateway.
 *
 * A setting given with `-c name=value` is a one-off: the next plain `npm run deploy` would quietly
 * set it back to the committed value. So a one-off that differs from the committed value is
 * refused, unless `-c oneOff=true` says it is meant; then the synth warns, and the stack carries an
 * output `OneOffSettings` naming each one-off and the committed value the next deploy restores.
 */
import type { Node } from 'constructs';
import { providers } from '../functions/providers/index.ts';
import { npmExported, npmrcSetting, shellWord } from './npm-config.ts';
import {
  APPLICATION_LOG_LEVELS,
  type ApplicationLogLevelSetting,
  checkBoolean,
  checkCertificateArn,
  checkChoice,
  checkCountryCodes,
  checkCustomDomain,
  checkDomainName,
  checkDeployedProviders,
  checkEmail,
  checkHostedZoneId,
  checkProviders,
  checkSchedule,
  checkSetting,
  checkSettingPairs,
  checkSilenceHours,
  checkStaleThresholds,
  type CustomDomainSettings,
  NUMERIC_SETTINGS,
  type NumericSetting,
  SETTING_DEFAULTS,
  SMS_RELAYS,
  type SmsRelaySetting,
  SYSTEM_LOG_LEVELS,
  type SystemLogLevelSetting,
} from './validate.ts';

/**
 * A setting, stage or context key that cannot be deployed: the user's to fix in cdk.json or on the
 * command line. Its message names the setting, what is allowed and what was given.
 */
export class SettingsError extends Error {
  override readonly name = 'SettingsError';
}

/**
 * cdk's own options of `cdk synth` and `cdk deploy` (`cdk deploy --help`), but for those that are
 * npm's settings too (force, json, all, color, proxy, yes, version, progress, verbose, quiet, ci).
 * Written before `--` (`npm run deploy --context=stage=prod`, `npm run deploy --profile=prod`), such
 * an option is npm's: npm exports it as `npm_config_<name>` and cdk runs without it, so the default
 * stack was synthesized and deployed instead of the stage meant, with the default profile's account.
 */
const CDK_OPTIONS = [
  'app', 'asset-build-concurrency', 'asset-metadata', 'asset-parallelism', 'asset-prebuild', 'build', 'build-exclude', 'ca-bundle-path',
  'change-set-name', 'concurrency', 'context', 'debug', 'debug-app', 'debug-cli', 'ec2creds', 'exclusively', 'execute', 'express', 'hotswap',
  'hotswap-fallback', 'ignore-errors', 'ignore-no-stacks', 'import-existing-resources', 'logs', 'lookups', 'method', 'monitoring-time-minutes',
  'notices', 'notification-arns', 'output', 'outputs-file', 'parameters', 'path-metadata', 'plugin', 'previous-parameters', 'profile', 'region',
  'require-approval', 'revert-drift', 'role-arn', 'rollback', 'rollback-trigger-alarm-arns', 'staging', 'strict', 'tags', 'telemetry-file',
  'toolkit-stack-name', 'trace', 'unstable', 'validation', 'version-reporting', 'watch',
];

/**
 * The cdk options npm kept for itself in `npm run synth` or `npm run deploy` (`--context`, with
 * `--no-rollback` exported empty; `-c stage=prod`, npm's `--call`), or nothing: what the app says
 * instead of synthesizing a stack the command line did not mean. Only under those two scripts (cdk.json
 * runs the app with node, not npx, which would name the script `npx`): `npx cdk` gets its options whole.
 */
export function cdkOptionsNpmTook(env: NodeJS.ProcessEnv): string | undefined {
  const script = env.npm_lifecycle_event;
  if (script !== 'synth' && script !== 'deploy') return undefined;
  // One an .npmrc gives its value (`debug = true`, which node-gyp reads) is exported on every run,
  // though npm does not know it: no option written before `--`. A different value is the command line's.
  const taken = CDK_OPTIONS.filter((name) => {
    const exported = npmExported(name, env);
    return exported !== undefined && npmrcSetting(name, env) !== exported;
  }).map((name) => `--${name}`);
  // `-c stage=prod` is npm's `--call stage=prod`, exported with its value.
  if (env.npm_config_call) taken.unshift(`-c ${shellWord(env.npm_config_call)}`);
  if (taken.length === 0) return undefined;
  return `npm took ${taken.join(', ')} for its own setting${taken.length > 1 ? 's' : ''} (written before \`--\`), so cdk never got ${taken.length > 1 ? 'them' : 'it'}: write npm run ${script} -- ${taken.join(' ')} … (an npm_config_ variable of that name in the environment is read the same way: unset it, or run npx cdk ${script} …)`;
}

/** The default stage's stack name; a stage's stack is `CallbackGateway-<stage>`. */
export const STACK_ID = 'CallbackGateway';

/** Context keys that select, rather than set: the stage, and the consent to one-off settings. */
export const STAGE_KEY = 'stage';
export const ONE_OFF_KEY = 'oneOff';

export interface GatewaySettings extends Record<NumericSetting, number> {
  readonly alarmEmail?: string;
  /** The providers deployed, ids separated by commas in the registry's order (`telesign,identomat`). */
  readonly providers: string;
  /** Hours without a callback after which each named provider's silence alarm fires (none: no alarm). */
  readonly silenceAlarmHours: Readonly<Record<string, number>>;
  /** Per provider, the stale subjects in 5 minutes that raise its Stale alarm (others: staleAlarmThreshold). */
  readonly staleAlarmThresholds: Readonly<Record<string, number>>;
  readonly applicationLogLevel: ApplicationLogLevelSetting;
  readonly systemLogLevel: SystemLogLevelSetting;
  /** Delays before each re-check of a subject that is not settled, e.g. `1m,5m,30m,2h,12h,1d,2d`. */
  readonly reconcileSchedule: string;
  /** Who sends SMS instructions: `off` (nobody: they are only published), or a provider that sends messages. */
  readonly smsRelay: SmsRelaySetting;
  /** The countries the SMS relay sends to: `any`, or calling codes (`995,255`). */
  readonly relayAllowedCountryCodes: string;
  /** The custom domain the callback URLs are on (`callbacks.example.com`); not set: the API's own URL. */
  readonly domainName?: string;
  /** The ACM certificate (in the stack's region) API Gateway serves `domainName` with. */
  readonly certificateArn?: string;
  /** The Route 53 hosted zone the stack creates `domainName`'s alias record in (with `hostedZoneName`). */
  readonly hostedZoneId?: string;
  readonly hostedZoneName?: string;
  /** Whether the API's own execute-api URL stops answering (only with `domainName`). */
  readonly disableExecuteApiEndpoint: boolean;
}

export type SettingName = keyof GatewaySettings;

/** Every setting's name, in the order the README lists them. */
export const SETTING_NAMES: readonly SettingName[] = [
  'alarmEmail',
  'providers',
  ...(Object.keys(NUMERIC_SETTINGS) as NumericSetting[]),
  'silenceAlarmHours',
  'staleAlarmThresholds',
  'reconcileSchedule',
  'applicationLogLevel',
  'systemLogLevel',
  'smsRelay',
  'relayAllowedCountryCodes',
  'domainName',
  'certificateArn',
  'hostedZoneId',
  'hostedZoneName',
  'disableExecuteApiEndpoint',
];

export interface OneOff {
  readonly name: SettingName;
  /** The value given with -c. */
  readonly value: unknown;
  /** What cdk.json holds (or the default): what the next plain deploy sets back. */
  readonly committed: unknown;
}

export interface ResolvedSettings {
  /** Undefined for the default stage. */
  readonly stage?: string;
  readonly stackName: string;
  readonly settings: GatewaySettings;
  readonly oneOffs: readonly OneOff[];
  /** Context keys that are neither settings nor the CDK's, and look like no setting: ignored, with a warning. */
  readonly ignoredKeys: readonly string[];
}

const STAGE_NAME = /^[a-z][a-z0-9-]{0,19}$/;

/** The stack name of a stage (the default stage keeps the name the stack always had). */
export function stackNameOf(stage?: string): string {
  return stage === undefined ? STACK_ID : `${STACK_ID}-${stage}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A committed object of settings; unknown names (typos) are refused, naming where they are. */
function settingsObject(where: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isObject(value)) throw new Error(`${where} must be an object of settings, got ${JSON.stringify(value)}`);
  for (const name of Object.keys(value)) {
    if (!(SETTING_NAMES as readonly string[]).includes(name)) {
      throw new Error(`${where} has an unknown setting ${JSON.stringify(name)}; settings are ${SETTING_NAMES.join(', ')}`);
    }
  }
  return value;
}

/**
 * Context keys that are not settings and are fine: ours (what `settings` and `stages` hold, and the
 * selectors), and the CDK CLI's own that have no colon (`cdk acknowledge` writes
 * `acknowledged-issue-numbers` to cdk.context.json). The CDK's other keys are feature flags
 * (`@aws-cdk/…`), `aws:cdk:…`, and lookups cached in cdk.context.json (`availability-zones:account=…`).
 */
const KNOWN_KEYS = ['settings', 'stages', STAGE_KEY, ONE_OFF_KEY, 'acknowledged-issue-numbers'];

/** Edit distance between two short strings (a mistyped setting is within 2 of it). */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length];
}

/**
 * A selector mistyped: the same letters whatever their case, `-` or `_` (`Stage`, `one-off` for
 * `oneOff`), or those with one letter left out or added (`stag`, `stagee`) or two neighbours swapped
 * (`stgae`). A letter replaced is not counted: `state` is another tool's key, one letter from `stage`.
 */
function mistypedSelector(key: string, selector: string): boolean {
  const typed = key.toLowerCase().replace(/[-_]/g, '');
  const meant = selector.toLowerCase();
  if (typed === meant) return true;
  const [shorter, longer] = typed.length < meant.length ? [typed, meant] : [meant, typed];
  if (longer.length - shorter.length === 1) {
    for (let i = 0; i < longer.length; i++) if (longer.slice(0, i) + longer.slice(i + 1) === shorter) return true;
    return false;
  }
  if (typed.length !== meant.length) return false;
  for (let i = 0; i + 1 < typed.length; i++) {
    if (typed[i] !== meant[i]) return typed[i] === meant[i + 1] && typed[i + 1] === meant[i] && typed.slice(i + 2) === meant.slice(i + 2);
  }
  return false;
}

/**
 * Context keys that are not settings. One that looks like a setting (`-c identomatSmsRelay=…` for
 * `smsRelay`, `maxRecieveCount`) is a mistake the stack would otherwise be synthesized without: it
 * is refused, naming the setting. Any other is someone else's (a key in ~/.cdk.json, a tool's) and
 * is returned, for the synth to warn about.
 */
function unknownKeys(node: Node): string[] {
  const names = SETTING_NAMES as readonly string[];
  const ignored: string[] = [];
  for (const key of Object.keys(node.getAllContext())) {
    if (key.startsWith('@') || key.includes(':') || KNOWN_KEYS.includes(key) || names.includes(key)) continue;
    const lower = key.toLowerCase();
    const like = names.filter((name) => {
      const setting = name.toLowerCase();
      return lower.includes(setting) || setting.includes(lower) || distance(lower, setting) <= 2;
    });
    // The selectors too (`-c Stage=prod` ignored would deploy the default stage, not prod), but only
    // when mistyped (see mistypedSelector): short words such as `state`, `tags` or `page` are others' keys.
    like.push(...[STAGE_KEY, ONE_OFF_KEY].filter((selector) => mistypedSelector(key, selector)));
    if (like.length === 0) {
      ignored.push(key);
      continue;
    }
    throw new Error(
      `context key ${key} (from -c, cdk.json, cdk.context.json or ~/.cdk.json) is not a setting: did you mean ${like.join(' or ')}? ` +
        `Settings are ${SETTING_NAMES.join(', ')}; ${STAGE_KEY} and ${ONE_OFF_KEY} select`,
    );
  }
  return ignored;
}

/** `-c` values arrive as strings: numbers and objects are parsed, naming the setting when they cannot be. */
function fromCommandLine(name: SettingName, raw: unknown): unknown {
  if (typeof raw !== 'string') return raw;
  if (name in NUMERIC_SETTINGS) {
    if (!/^\s*-?\d+(\.\d+)?\s*$/.test(raw)) throw new Error(`${name} must be a number, got ${JSON.stringify(raw)}`);
    return Number(raw);
  }
  if (name === 'silenceAlarmHours' || name === 'staleAlarmThresholds') {
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      const example = name === 'silenceAlarmHours' ? 'of hours per provider, e.g. {"temboplus":6}' : 'of thresholds per provider, e.g. {"identomat":25}';
      throw new Error(`${name} must be a JSON object ${example}, got ${JSON.stringify(raw)}`);
    }
  }
  return raw;
}

/** One setting's value checked against its range; `where` prefixes the name in errors. */
function checked(name: SettingName, value: unknown, where: string): unknown {
  const label = where ? `${where}.${name}` : name;
  if (name === 'alarmEmail') {
    if (typeof value !== 'string') throw new Error(`${label} must be one e-mail address, got ${JSON.stringify(value)}`);
    return checkEmail(label, value);
  }
  if (name === 'providers') return checkProviders(label, value);
  if (name === 'silenceAlarmHours') return checkSilenceHours(label, value, providers.map((provider) => provider.id));
  if (name === 'staleAlarmThresholds') return checkStaleThresholds(label, value, providers.map((provider) => provider.id));
  if (name === 'applicationLogLevel') {
    return checkChoice(label, value, APPLICATION_LOG_LEVELS, 'the metrics and alarms count INFO lines; WARN or above would silence them');
  }
  if (name === 'systemLogLevel') return checkChoice(label, value, SYSTEM_LOG_LEVELS);
  if (name === 'smsRelay') return checkChoice(label, value, SMS_RELAYS, 'the provider that sends SMS instructions, with the credentials of its secret');
  if (name === 'reconcileSchedule') return checkSchedule(label, value);
  if (name === 'relayAllowedCountryCodes') return checkCountryCodes(label, value);
  if (name === 'domainName' || name === 'hostedZoneName') return checkDomainName(label, value);
  if (name === 'certificateArn') return checkCertificateArn(label, value);
  if (name === 'hostedZoneId') return checkHostedZoneId(label, value);
  if (name === 'disableExecuteApiEndpoint') return checkBoolean(label, value);
  if (typeof value !== 'number') throw new Error(`${label} must be a number, got ${JSON.stringify(value)}`);
  return checkSetting(name, value, label);
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The settings for this synth: the stage's committed values over the committed `settings`, over
 * the defaults; `-c` one-offs checked, and refused where they differ from what is committed unless
 * `-c oneOff=true`.
 */
export function resolveSettings(node: Node): ResolvedSettings {
  const rawStage: unknown = node.tryGetContext(STAGE_KEY);
  const stages: unknown = node.tryGetContext('stages');
  if (stages !== undefined && !isObject(stages)) throw new Error(`cdk.json context "stages" must be an object of stages, got ${JSON.stringify(stages)}`);
  let stage: string | undefined;
  // An empty stage is refused, not read as the default one: `-c stage=$STAGE` with STAGE unset
  // would otherwise deploy (or destroy) the stack CallbackGateway instead of the stage meant.
  if (rawStage !== undefined) {
    if (typeof rawStage !== 'string' || !STAGE_NAME.test(rawStage)) {
      throw new Error(
        `stage must be 1 to 20 lower-case letters, digits or hyphens, starting with a letter, got ${JSON.stringify(rawStage)}; leave out -c ${STAGE_KEY} for the default stage`,
      );
    }
    if (!stages || !Object.hasOwn(stages, rawStage)) {
      const known = stages ? Object.keys(stages) : [];
      throw new Error(
        `stage ${JSON.stringify(rawStage)} is not declared in cdk.json context "stages" (declared: ${known.join(', ') || 'none'}). ` +
          'Add it there, even as {}, to deploy a new stage.',
      );
    }
    stage = rawStage;
  }

  const ignoredKeys = unknownKeys(node);
  const base = settingsObject('cdk.json context "settings"', node.tryGetContext('settings'));
  const staged = stage === undefined ? {} : settingsObject(`cdk.json context "stages".${stage}`, (stages as Record<string, unknown>)[stage]);

  const committed: Record<string, unknown> = { ...SETTING_DEFAULTS };
  for (const [name, value] of Object.entries(base)) committed[name] = checked(name as SettingName, value, 'settings');
  for (const [name, value] of Object.entries(staged)) committed[name] = checked(name as SettingName, value, `stages.${stage}`);

  const values: Record<string, unknown> = { ...committed };
  const oneOffs: OneOff[] = [];
  for (const name of SETTING_NAMES) {
    const raw: unknown = node.tryGetContext(name);
    if (raw === undefined) continue;
    const value = checked(name, fromCommandLine(name, raw), '');
    if (same(value, committed[name])) continue;
    oneOffs.push({ name, value, committed: committed[name] });
    values[name] = value;
  }
  // Settings that depend on each other, checked here rather than only by the stack: a SettingsError
  // is printed as its message alone (bin/app.ts), like any other wrong setting, not under a stack trace.
  checkSettingPairs({
    maxReceiveCount: values.maxReceiveCount as number,
    manyReceivesAlarmCount: values.manyReceivesAlarmCount as number,
    eventRetentionDays: values.eventRetentionDays as number,
    sensitiveRetentionHours: values.sensitiveRetentionHours as number,
  });
  checkDeployedProviders({
    providers: values.providers as string,
    silenceAlarmHours: values.silenceAlarmHours as Record<string, number>,
    staleAlarmThresholds: values.staleAlarmThresholds as Record<string, number>,
    smsRelay: values.smsRelay as string,
  });
  checkCustomDomain(values as CustomDomainSettings);
  const consent: unknown = node.tryGetContext(ONE_OFF_KEY);
  if (oneOffs.length > 0 && consent !== true && consent !== 'true') {
    const list = oneOffs.map((o) => `${o.name}=${JSON.stringify(o.value)} (committed: ${o.committed === undefined ? 'not set' : JSON.stringify(o.committed)})`).join(', ');
    const place = stage === undefined ? 'context "settings"' : `context "stages".${stage}`;
    throw new Error(
      `-c ${list} differs from what cdk.json commits, and the next plain deploy would quietly set it back. Commit it in cdk.json ` +
        `${place} instead, or add -c ${ONE_OFF_KEY}=true to deploy it once on purpose (the stack then reports it in its OneOffSettings output).`,
    );
  }
  return { stage, stackName: stackNameOf(stage), settings: values as unknown as GatewaySettings, oneOffs, ignoredKeys };
}
