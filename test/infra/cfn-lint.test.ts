import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Template } from 'aws-cdk-lib/assertions';
import { createGatewayApp } from '../../lib/gateway-app.ts';
import { REPO_ROOT } from '../../lib/gateway-function.ts';

/**
 * The synthesized template through cfn-lint (https://github.com/aws-cloudformation/cfn-lint, a
 * Python tool; these machines have 1.51): no error and no warning, for the default stage and for a
 * stage with every optional resource (e-mail subscription, silence alarms, custom domain). Where
 * cfn-lint is not installed the tests are skipped, saying so. `scripts/cfn-lint.sh` lints what
 * `cdk synth` writes.
 */

type Json = Record<string, any>;

const CFN_LINT = process.env.CFN_LINT ?? 'cfn-lint';
/** Regions with different resource specs; cfn-lint checks the template against each. */
const REGIONS = ['us-east-1', 'eu-west-1', 'ap-southeast-1'];

const CDK_CONTEXT = (JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Json }).context;
const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

const version = (() => {
  const run = spawnSync(CFN_LINT, ['--version'], { encoding: 'utf8' });
  return run.error || run.status !== 0 ? undefined : run.stdout.trim();
})();
const skip = version ? false : `cfn-lint is not installed (a Python tool: pipx install 'cfn-lint==1.51.*'), so the template was not linted`;

const dir = mkdtempSync(join(tmpdir(), 'callback-gateway-cfn-lint-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Finding {
  readonly Rule: { readonly Id: string; readonly Description: string };
  readonly Level: string;
  readonly Message: string;
  readonly Location: { readonly Path: unknown[] };
}

function lint(name: string, context: Json): Finding[] {
  const { stack } = createGatewayApp({ context: { ...CDK_CONTEXT, ...NO_BUNDLING, ...context } });
  const file = join(dir, `${name}.template.json`);
  writeFileSync(file, JSON.stringify(Template.fromStack(stack).toJSON(), null, 1));
  const run = spawnSync(CFN_LINT, ['--format', 'json', '--regions', ...REGIONS, '--', file], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  assert.ifError(run.error);
  // cfn-lint exits non-zero when it reports something; the report itself is what is checked.
  assert.ok(run.stdout.trim().startsWith('['), `cfn-lint did not report JSON: ${run.stdout}${run.stderr}`);
  return JSON.parse(run.stdout) as Finding[];
}

const readable = (findings: Finding[]) => findings.map((f) => `${f.Level} ${f.Rule.Id} ${f.Message} at ${f.Location.Path.join('/')}`);

describe(version ?? 'cfn-lint (not installed)', () => {
  test('the default stage: no error, no warning', { skip }, () => {
    assert.deepEqual(readable(lint('default', {}).filter((f) => f.Level !== 'Informational')), []);
  });

  test('a stage with an alarm e-mail and silence alarms: no error, no warning', { skip }, () => {
    const settings = { ...CDK_CONTEXT.settings, alarmEmail: 'oncall@example.com', silenceAlarmHours: { temboplus: 6, esms: 168 } };
    assert.deepEqual(readable(lint('prod', { stage: 'prod', settings }).filter((f) => f.Level !== 'Informational')), []);
  });

  test('the SMS relay on, with its volume alarm and no per-number cap: no error, no warning', { skip }, () => {
    const settings = { ...CDK_CONTEXT.settings, smsRelay: 'telesign', relaySentAlarmPerHour: 500, relayMaxPerNumberPerHour: 0 };
    assert.deepEqual(readable(lint('relay', { settings }).filter((f) => f.Level !== 'Informational')), []);
  });

  test('a custom domain with its Route 53 record, the default endpoint off: no error, no warning', { skip }, () => {
    const settings = {
      ...CDK_CONTEXT.settings,
      domainName: 'callbacks.example.com',
      certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666',
      hostedZoneId: 'Z0123456789ABCDEFGHIJ',
      hostedZoneName: 'example.com',
      disableExecuteApiEndpoint: true,
    };
    assert.deepEqual(readable(lint('domain', { settings }).filter((f) => f.Level !== 'Informational')), []);
  });

  test('a custom domain without a hosted zone (the CustomDomainTarget output): no error, no warning', { skip }, () => {
    const settings = { ...CDK_CONTEXT.settings, domainName: 'callbacks.example.com', certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666' };
    assert.deepEqual(readable(lint('domain-target', { settings }).filter((f) => f.Level !== 'Informational')), []);
  });
});
