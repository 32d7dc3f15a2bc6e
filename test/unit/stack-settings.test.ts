import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { SETTING_DEFAULTS } from '../../lib/validate.ts';
import { CDK_JSON, committedSettings, smsRelayChoice } from '../../local/stack-settings.ts';

/** npm start reads the stack's committed providers (for its banner), and mirrors its smsRelay, relayMaxAgeSeconds, relayAllowedCountryCodes and relayMaxPerNumberPerHour; --sms-relay overrides the first. */

function withCdkJson(settings: Record<string, unknown>, run: (file: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'stack-settings-'));
  try {
    const file = join(dir, 'cdk.json');
    writeFileSync(file, JSON.stringify({ context: { settings } }));
    run(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('committedSettings', () => {
  test('reads the repository cdk.json as committed', () => {
    const committed = JSON.parse(readFileSync(CDK_JSON, 'utf8')).context.settings;
    assert.deepEqual(committedSettings(), { providers: committed.providers, smsRelay: committed.smsRelay, relayMaxAgeSeconds: committed.relayMaxAgeSeconds, relayAllowedCountryCodes: committed.relayAllowedCountryCodes, relayMaxPerNumberPerHour: committed.relayMaxPerNumberPerHour });
  });

  test('a cdk.json without them gives the stack defaults', () => {
    withCdkJson({}, (file) => assert.deepEqual(committedSettings(file), { providers: SETTING_DEFAULTS.providers, smsRelay: SETTING_DEFAULTS.smsRelay, relayMaxAgeSeconds: SETTING_DEFAULTS.relayMaxAgeSeconds, relayAllowedCountryCodes: 'any', relayMaxPerNumberPerHour: 5 }));
  });

  test('a committed sender is taken; a value the stack refuses is refused naming where it is written', () => {
    withCdkJson({ providers: 'identomat, telesign', smsRelay: 'telesign', relayMaxAgeSeconds: 120, relayAllowedCountryCodes: '995, +255', relayMaxPerNumberPerHour: 0 }, (file) =>
      assert.deepEqual(committedSettings(file), { providers: 'telesign,identomat', smsRelay: 'telesign', relayMaxAgeSeconds: 120, relayAllowedCountryCodes: '995, +255', relayMaxPerNumberPerHour: 0 }),
    );
    withCdkJson({ relayAllowedCountryCodes: '995,georgia' }, (file) =>
      assert.throws(() => committedSettings(file), /cdk\.json context\.settings\.relayAllowedCountryCodes: "georgia" is not a country calling code .*got "995,georgia"/),
    );
    withCdkJson({ providers: 'telesign,twilio' }, (file) => assert.throws(() => committedSettings(file), /cdk\.json context\.settings\.providers names an unknown provider "twilio"; providers are telesign, esms/));
    withCdkJson({ providers: 'telesign,esms', smsRelay: 'telesign' }, (file) =>
      assert.throws(() => committedSettings(file), /^Error: cdk\.json context\.settings: smsRelay=telesign needs identomat \(the provider whose SMS instructions it sends\) among the providers, but providers is "telesign,esms"/, 'was: npm start ran a relay the synth refuses'),
    );
    withCdkJson({ smsRelay: 'twilio' }, (file) => assert.throws(() => committedSettings(file), /cdk\.json context\.settings\.smsRelay must be one of off, telesign .*got "twilio"/));
    withCdkJson({ relayMaxAgeSeconds: 5 }, (file) => assert.throws(() => committedSettings(file), /cdk\.json context\.settings\.relayMaxAgeSeconds must be an integer from 30 to 3600/));
    withCdkJson({ relayMaxPerNumberPerHour: -1 }, (file) => assert.throws(() => committedSettings(file), /cdk\.json context\.settings\.relayMaxPerNumberPerHour must be an integer from 0 to 1000 \(0 for no cap\), got -1/));
    withCdkJson({ relayMaxPerNumberPerHour: '5' }, (file) => assert.throws(() => committedSettings(file), /relayMaxPerNumberPerHour must be a number, got "5"/));
  });
});

describe('smsRelayChoice', () => {
  const committed = { providers: SETTING_DEFAULTS.providers, smsRelay: 'telesign', relayMaxAgeSeconds: 300, relayAllowedCountryCodes: 'any', relayMaxPerNumberPerHour: 5 };
  test('without the flag, the committed setting; with it, the flag', () => {
    assert.deepEqual(smsRelayChoice(undefined, committed), { ok: true, value: 'telesign' });
    assert.deepEqual(smsRelayChoice('off', committed), { ok: true, value: 'off' });
    assert.deepEqual(smsRelayChoice('telesign', { ...committed, smsRelay: 'off' }), { ok: true, value: 'telesign' });
  });

  test('a value the stack does not take: the message names the flag, the choices and the value', () => {
    assert.deepEqual(smsRelayChoice('TeleSign', committed), { ok: false, message: '--sms-relay must be one of off, telesign (as the smsRelay setting in cdk.json), got "TeleSign"' });
  });

  test('a relay the committed providers cannot run is refused, as the synth refuses it; off always goes', () => {
    const esmsOnly = { ...committed, providers: 'esms', smsRelay: 'off' };
    const refused = smsRelayChoice('telesign', esmsOnly);
    assert.equal(refused.ok, false, 'was: npm start ran a relay no deploy of this cdk.json has');
    assert.match(
      (refused as { message: string }).message,
      /^--sms-relay telesign: smsRelay=telesign needs telesign \(the relay sends with the credentials of its secret\) and identomat \(the provider whose SMS instructions it sends\) among the providers, but providers is "esms".*\(cdk\.json context\.settings\.providers\)$/,
    );
    assert.deepEqual(smsRelayChoice('off', esmsOnly), { ok: true, value: 'off' });
    assert.deepEqual(smsRelayChoice('telesign', { ...esmsOnly, providers: 'identomat,telesign' }), { ok: true, value: 'telesign' });
  });
});
