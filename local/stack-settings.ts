import { readFileSync } from 'node:fs';
import { checkChoice, checkCountryCodes, checkDeployedProviders, checkProviders, checkSetting, SETTING_DEFAULTS, SMS_RELAYS } from '../lib/validate.ts';

/**
 * The stack's settings that `npm start` mirrors, read from where the stack reads them: cdk.json's
 * `context.settings` (the default stage), checked with the stack's own rules, so the local runtime
 * runs as a plain deploy would until a flag says otherwise.
 */

/** The committed cdk.json, at the repository root. */
export const CDK_JSON = new URL('../cdk.json', import.meta.url);

export interface LocalStackSettings {
  /**
   * The providers a plain deploy deploys (`providers`), only said in the banner: `npm start` serves
   * every provider's route, each with a filled-in development secret.
   */
  readonly providers: string;
  /** `off`, or the provider that sends SMS instructions (`smsRelay`). */
  readonly smsRelay: string;
  /** Seconds after receipt past which a one-time code is not sent (`relayMaxAgeSeconds`). */
  readonly relayMaxAgeSeconds: number;
  /** The countries the relay sends to (`relayAllowedCountryCodes`): `any`, or calling codes. */
  readonly relayAllowedCountryCodes: string;
  /** SMS to one number in one clock hour past which the relay refuses (`relayMaxPerNumberPerHour`); 0: no cap. */
  readonly relayMaxPerNumberPerHour: number;
}

/** The committed values (the defaults where cdk.json has none); throws naming the setting and the bad value. */
export function committedSettings(file: URL | string = CDK_JSON): LocalStackSettings {
  const cdk = JSON.parse(readFileSync(file, 'utf8')) as { context?: { settings?: Record<string, unknown> } };
  const settings = cdk.context?.settings ?? {};
  const where = 'cdk.json context.settings';
  const smsRelay = settings.smsRelay ?? SETTING_DEFAULTS.smsRelay;
  const maxAge = settings.relayMaxAgeSeconds ?? SETTING_DEFAULTS.relayMaxAgeSeconds;
  if (typeof maxAge !== 'number') throw new Error(`${where}.relayMaxAgeSeconds must be a number, got ${JSON.stringify(maxAge)}`);
  const perNumber = settings.relayMaxPerNumberPerHour ?? SETTING_DEFAULTS.relayMaxPerNumberPerHour;
  if (typeof perNumber !== 'number') throw new Error(`${where}.relayMaxPerNumberPerHour must be a number, got ${JSON.stringify(perNumber)}`);
  const providers = checkProviders(`${where}.providers`, settings.providers ?? SETTING_DEFAULTS.providers);
  const relay = checkChoice(`${where}.smsRelay`, smsRelay, SMS_RELAYS, 'the provider that sends SMS instructions, with the credentials of its secret');
  // A relay whose sender or Identomat the committed providers leave out: the synth refuses that
  // cdk.json, so npm start does too, rather than run a relay no deploy of it would have.
  try {
    checkDeployedProviders({ providers, smsRelay: relay });
  } catch (error) {
    throw new Error(`${where}: ${(error as Error).message}`, { cause: error });
  }
  return {
    providers,
    smsRelay: relay,
    relayMaxAgeSeconds: checkSetting('relayMaxAgeSeconds', maxAge, `${where}.relayMaxAgeSeconds`),
    relayAllowedCountryCodes: checkCountryCodes(`${where}.relayAllowedCountryCodes`, settings.relayAllowedCountryCodes ?? SETTING_DEFAULTS.relayAllowedCountryCodes),
    relayMaxPerNumberPerHour: checkSetting('relayMaxPerNumberPerHour', perNumber, `${where}.relayMaxPerNumberPerHour`),
  };
}

/**
 * `--sms-relay`: the flag's value checked against the stack's choices and the committed providers
 * (an error naming the flag), else the committed setting.
 */
export function smsRelayChoice(flag: string | undefined, committed: LocalStackSettings): { ok: true; value: string } | { ok: false; message: string } {
  if (flag === undefined) return { ok: true, value: committed.smsRelay };
  if (!(SMS_RELAYS as readonly string[]).includes(flag)) {
    return { ok: false, message: `--sms-relay must be one of ${SMS_RELAYS.join(', ')} (as the smsRelay setting in cdk.json), got "${flag}"` };
  }
  // A relay the committed providers cannot run is refused as the synth refuses `-c smsRelay=…` with
  // them: a local run of it would show a loop no deploy of this cdk.json has.
  try {
    checkDeployedProviders({ providers: committed.providers, smsRelay: flag });
  } catch (error) {
    return { ok: false, message: `--sms-relay ${flag}: ${(error as Error).message} (cdk.json context.settings.providers)` };
  }
  return { ok: true, value: flag };
}
