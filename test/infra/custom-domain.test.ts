import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { providers } from '../../functions/providers/index.ts';
import { ACCESS_LOG_FIELDS } from '../../lib/callback-api.ts';
import { CallbackGatewayStack } from '../../lib/callback-gateway-stack.ts';
import { createGatewayApp, SettingsError } from '../../lib/gateway-app.ts';
import { REPO_ROOT } from '../../lib/gateway-function.ts';
import { pascal } from '../../lib/names.ts';

/**
 * `domainName` (with `certificateArn`, and optionally `hostedZoneId` + `hostedZoneName`): the
 * callback URLs on the user's own domain, mapped at the root of a regional TLS 1.2 API Gateway
 * custom domain; `disableExecuteApiEndpoint` turns the API's own URL off. Without them the template
 * is the one the stack always had. Built without esbuild (nothing here is about a bundle).
 */

type Json = Record<string, any>;

const CDK_CONTEXT = (JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Json }).context;
const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };
const DOMAIN = 'callbacks.example.com';
const CERTIFICATE = 'arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666';
const ZONE = { hostedZoneId: 'Z0123456789ABCDEFGHIJ', hostedZoneName: 'example.com' };

const outdirs: string[] = [];
after(() => {
  for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
});

/** The app as `cdk synth` builds it, with these settings committed in cdk.json `settings` (and `stages` if given). */
function synth(settings: Json = {}, extra: Json = {}) {
  const outdir = mkdtempSync(join(tmpdir(), 'callback-gateway-domain-'));
  outdirs.push(outdir);
  const { app, stack } = createGatewayApp({ outdir, context: { ...CDK_CONTEXT, settings: { ...CDK_CONTEXT.settings, ...settings }, ...NO_BUNDLING, ...extra } });
  const assembly = app.synth();
  const json = Template.fromStack(stack).toJSON() as Json;
  return { stack, json, assemblyDir: assembly.directory };
}

const ofType = (json: Json, type: string) => Object.entries(json.Resources as Record<string, Json>).filter(([, resource]) => resource.Type === type);
const only = (json: Json, type: string): [string, Json] => {
  const found = ofType(json, type);
  assert.equal(found.length, 1, `one ${type}`);
  return found[0];
};
const settingsError = (message: RegExp) => (error: unknown) => error instanceof SettingsError && message.test(error.message);

describe('without domainName (the default)', () => {
  test('the template is the one a cdk.json without the new settings gives: no domain, mapping, record or output, the API\'s own URLs', () => {
    // prepare: cdk.json as it was before disableExecuteApiEndpoint was committed
    const { disableExecuteApiEndpoint: _committed, ...before } = CDK_CONTEXT.settings;

    // act
    const committed = synth();
    const { app } = createGatewayApp({ context: { ...CDK_CONTEXT, settings: before, ...NO_BUNDLING } });
    const earlier = Template.fromStack(app.node.findChild('CallbackGateway') as CallbackGatewayStack).toJSON();

    // assess
    assert.deepEqual(committed.json, earlier);
    for (const type of ['AWS::ApiGatewayV2::DomainName', 'AWS::ApiGatewayV2::ApiMapping', 'AWS::Route53::RecordSet']) assert.deepEqual(ofType(committed.json, type), [], type);
    assert.equal(committed.json.Outputs.CustomDomainTarget, undefined);
    const [, api] = only(committed.json, 'AWS::ApiGatewayV2::Api');
    assert.equal(api.Properties.DisableExecuteApiEndpoint, undefined);
    const url = JSON.stringify(committed.json.Outputs.TelesignCallbackUrl.Value);
    assert.match(url, /"https:\/\/",\{"Ref":"ApiHttpApi[0-9A-F]+"\},"\.execute-api\.",\{"Ref":"AWS::Region"\}/);
  });
});

describe('with domainName and certificateArn', () => {
  test('a regional TLS 1.2 custom domain with the certificate, mapped at its root to the API\'s $default stage; every callback URL on it; the DNS target as an output', () => {
    // act
    const { json } = synth({ domainName: DOMAIN, certificateArn: CERTIFICATE });

    // assess
    const [domainId, domain] = only(json, 'AWS::ApiGatewayV2::DomainName');
    assert.deepEqual(domain.Properties, {
      DomainName: DOMAIN,
      DomainNameConfigurations: [{ CertificateArn: CERTIFICATE, EndpointType: 'REGIONAL', SecurityPolicy: 'TLS_1_2' }],
    });
    const [apiId, api] = only(json, 'AWS::ApiGatewayV2::Api');
    const [, mapping] = only(json, 'AWS::ApiGatewayV2::ApiMapping');
    // No ApiMappingKey: the root, so the paths are those of the API's own URL.
    assert.deepEqual(mapping.Properties, { ApiId: { Ref: apiId }, DomainName: { Ref: domainId }, Stage: '$default' });
    const [stageId] = only(json, 'AWS::ApiGatewayV2::Stage');
    assert.ok([mapping.DependsOn].flat().includes(stageId), 'the mapping waits for the stage');
    for (const provider of providers) {
      assert.equal(json.Outputs[`${pascal(provider.id)}CallbackUrl`].Value, `https://${DOMAIN}${provider.route.path}`, provider.id);
    }
    assert.deepEqual(json.Outputs.CustomDomainTarget.Value, { 'Fn::GetAtt': [domainId, 'RegionalDomainName'] });
    assert.match(json.Outputs.CustomDomainTarget.Description, /callbacks\.example\.com/);
    // The API's own URL still answers (providers move over one by one), and no record is made.
    assert.equal(api.Properties.DisableExecuteApiEndpoint, undefined);
    assert.deepEqual(ofType(json, 'AWS::Route53::RecordSet'), []);
  });

  test('with hostedZoneId and hostedZoneName: the alias A record in that zone, and no target output', () => {
    // act
    const { json } = synth({ domainName: DOMAIN, certificateArn: CERTIFICATE, ...ZONE });

    // assess
    const [domainId] = only(json, 'AWS::ApiGatewayV2::DomainName');
    const [, record] = only(json, 'AWS::Route53::RecordSet');
    assert.deepEqual(record.Properties, {
      HostedZoneId: ZONE.hostedZoneId,
      Name: `${DOMAIN}.`,
      Type: 'A',
      AliasTarget: { DNSName: { 'Fn::GetAtt': [domainId, 'RegionalDomainName'] }, HostedZoneId: { 'Fn::GetAtt': [domainId, 'RegionalHostedZoneId'] } },
    });
    assert.equal(json.Outputs.CustomDomainTarget, undefined);
    assert.equal(json.Outputs.TelesignCallbackUrl.Value, `https://${DOMAIN}/callbacks/telesign`);
  });

  test('the domain at the zone\'s apex is taken', () => {
    const { json } = synth({ domainName: 'example.com', certificateArn: CERTIFICATE, ...ZONE });
    assert.equal(only(json, 'AWS::Route53::RecordSet')[1].Properties.Name, 'example.com.');
  });

  test('disableExecuteApiEndpoint=true turns the API\'s own URL off; the custom domain stays', () => {
    // act
    const { json } = synth({ domainName: DOMAIN, certificateArn: CERTIFICATE, disableExecuteApiEndpoint: true });

    // assess
    assert.equal(only(json, 'AWS::ApiGatewayV2::Api')[1].Properties.DisableExecuteApiEndpoint, true);
    only(json, 'AWS::ApiGatewayV2::ApiMapping');
    assert.equal(json.Outputs.EsmsCallbackUrl.Value, `https://${DOMAIN}/callbacks/esms/{token}`);
  });

  test('the access log line names the host each request came in on, so the providers still on the API\'s own URL can be found; without a domain the line is as it was', () => {
    // act
    const { json } = synth({ domainName: DOMAIN, certificateArn: CERTIFICATE });
    const plain = synth();

    // assess
    const format = (template: Json) => JSON.parse(only(template, 'AWS::ApiGatewayV2::Stage')[1].Properties.AccessLogSettings.Format as string) as Json;
    assert.deepEqual(format(json), { ...ACCESS_LOG_FIELDS, domainName: '$context.domainName' });
    assert.deepEqual(format(plain.json), ACCESS_LOG_FIELDS);
  });

  test('per stage: a stage\'s own domain applies to that stage only', () => {
    // act
    const stages = { ...CDK_CONTEXT.stages, prod: { domainName: DOMAIN, certificateArn: CERTIFICATE } };
    const prod = synth({}, { stages, stage: 'prod' });
    const dev = synth({}, { stages, stage: 'dev' });

    // assess
    assert.equal(prod.json.Outputs.TelesignCallbackUrl.Value, `https://${DOMAIN}/callbacks/telesign`);
    assert.deepEqual(ofType(dev.json, 'AWS::ApiGatewayV2::DomainName'), []);
  });

  test('cdk-nag AwsSolutions: no finding, nothing newly acknowledged, and no new IAM', () => {
    // act
    const { json, assemblyDir } = synth({ domainName: DOMAIN, certificateArn: CERTIFICATE, ...ZONE, disableExecuteApiEndpoint: true });
    const plain = synth();

    // assess
    const report = JSON.parse(readFileSync(join(assemblyDir, 'validation-report.json'), 'utf8')) as { pluginReports: Json[] };
    const nag = report.pluginReports.find((plugin) => plugin.pluginName === 'AwsSolutions');
    assert.ok(nag, 'the AwsSolutions plugin ran');
    assert.deepEqual(nag.violations, []);
    assert.equal(nag.conclusion, 'success');
    const plainReport = JSON.parse(readFileSync(join(plain.assemblyDir, 'validation-report.json'), 'utf8')) as { pluginReports: Json[] };
    const rules = (r: { pluginReports: Json[] }) => [...new Set((r.pluginReports.find((p) => p.pluginName === 'AwsSolutions')!.suppressedViolations as Json[]).map((f) => f.ruleName))].sort();
    assert.deepEqual(rules(report), rules(plainReport));
    const iam = (template: Json) => ofType(template, 'AWS::IAM::Policy').concat(ofType(template, 'AWS::IAM::Role'));
    assert.deepEqual(iam(json), iam(plain.json));
  });
});

describe('refused at synth, naming the problem', () => {
  const refusals: [string, Json, RegExp][] = [
    ['upper case', { domainName: 'Callbacks.Example.com', certificateArn: CERTIFICATE }, /^settings\.domainName must be a lower-case domain name such as "callbacks\.example\.com" .*: upper-case letters .*got "Callbacks\.Example\.com"$/],
    ['one label', { domainName: 'callbacks', certificateArn: CERTIFICATE }, /^settings\.domainName must be .*: a single label, got "callbacks"$/],
    ['a trailing dot', { domainName: 'callbacks.example.com.', certificateArn: CERTIFICATE }, /settings\.domainName must be .*: a trailing dot/],
    ['a URL', { domainName: 'https://callbacks.example.com', certificateArn: CERTIFICATE }, /settings\.domainName must be .*: the label "https:\/\/callbacks"/],
    ['a hyphen at a label\'s end', { domainName: 'callbacks-.example.com', certificateArn: CERTIFICATE }, /settings\.domainName must be .*: the label "callbacks-"/],
    ['two dots', { domainName: 'callbacks..example.com', certificateArn: CERTIFICATE }, /settings\.domainName must be .*: an empty label/],
    ['a label over 63', { domainName: `${'a'.repeat(64)}.example.com`, certificateArn: CERTIFICATE }, /settings\.domainName must be .*: the label "a{64}"/],
    ['over 253 characters', { domainName: `${'abcdefghi.'.repeat(25)}example.com`, certificateArn: CERTIFICATE }, /settings\.domainName must be .*: 261 characters/],
    ['a wildcard', { domainName: '*.example.com', certificateArn: CERTIFICATE }, /settings\.domainName must be .*: a wildcard/],
    ['an IP address', { domainName: '10.0.0.1', certificateArn: CERTIFICATE }, /settings\.domainName must be .*: an IP address/],
    ['not text', { domainName: 42, certificateArn: CERTIFICATE }, /settings\.domainName must be .*: not text, got 42$/],
    ['a certificate ARN of another service', { domainName: DOMAIN, certificateArn: 'arn:aws:iam::123456789012:server-certificate/callbacks' }, /^settings\.certificateArn must be the ARN of an ACM certificate in the stack's region.*got "arn:aws:iam::123456789012:server-certificate\/callbacks"$/],
    ['a certificate id alone', { domainName: DOMAIN, certificateArn: '0a1b2c3d-1111-2222-3333-444455556666' }, /settings\.certificateArn must be the ARN of an ACM certificate/],
    ['a certificate without its region', { domainName: DOMAIN, certificateArn: 'arn:aws:acm::123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666' }, /settings\.certificateArn must be the ARN of an ACM certificate/],
    ['a China region in the aws partition', { domainName: DOMAIN, certificateArn: 'arn:aws:acm:cn-north-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666' }, /^settings\.certificateArn names the region cn-north-1 in the partition aws, which does not hold it \(cn-north-1 is in aws-cn: "arn:aws-cn:acm:cn-north-1:…"\)/],
    ['a commercial region in the aws-us-gov partition', { domainName: DOMAIN, certificateArn: 'arn:aws-us-gov:acm:eu-west-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666' }, /^settings\.certificateArn names the region eu-west-1 in the partition aws-us-gov, which does not hold it \(eu-west-1 is in aws/],
    ['a GovCloud region in the aws partition', { domainName: DOMAIN, certificateArn: 'arn:aws:acm:us-gov-west-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666' }, /certificateArn names the region us-gov-west-1 in the partition aws, which does not hold it \(us-gov-west-1 is in aws-us-gov/],
    ['domainName without certificateArn', { domainName: DOMAIN }, /^domainName=callbacks\.example\.com needs certificateArn: the ARN of an ACM certificate for callbacks\.example\.com in the stack's region/],
    ['certificateArn without domainName', { certificateArn: CERTIFICATE }, /^certificateArn is set without domainName/],
    ['a zone id with its /hostedzone/ prefix', { domainName: DOMAIN, certificateArn: CERTIFICATE, ...ZONE, hostedZoneId: '/hostedzone/Z0123456789ABCDEFGHIJ' }, /^settings\.hostedZoneId must be a Route 53 hosted zone id .*\(leave out "\/hostedzone\/": "Z0123456789ABCDEFGHIJ"\)/],
    ['a zone id in lower case', { domainName: DOMAIN, certificateArn: CERTIFICATE, ...ZONE, hostedZoneId: 'z0123456789abcdefghij' }, /settings\.hostedZoneId must be a Route 53 hosted zone id such as "Z0123456789ABCDEFGHIJ"/],
    ['hostedZoneId without hostedZoneName', { domainName: DOMAIN, certificateArn: CERTIFICATE, hostedZoneId: ZONE.hostedZoneId }, /^hostedZoneId is set without hostedZoneName: the stack creates the DNS record only with both/],
    ['hostedZoneName without hostedZoneId', { domainName: DOMAIN, certificateArn: CERTIFICATE, hostedZoneName: ZONE.hostedZoneName }, /^hostedZoneName is set without hostedZoneId/],
    ['a zone without domainName', { ...ZONE }, /^hostedZoneId and hostedZoneName are set without domainName/],
    ['a domain outside the zone', { domainName: 'callbacks.example.org', certificateArn: CERTIFICATE, ...ZONE }, /^domainName callbacks\.example\.org is not in the hosted zone example\.com \(hostedZoneName\)/],
    ['a domain that only ends like the zone', { domainName: 'callbacksexample.com', certificateArn: CERTIFICATE, ...ZONE }, /^domainName callbacksexample\.com is not in the hosted zone example\.com/],
    ['disableExecuteApiEndpoint without domainName', { disableExecuteApiEndpoint: true }, /^disableExecuteApiEndpoint=true needs domainName: without a custom domain the API would answer no URL at all/],
    ['disableExecuteApiEndpoint not a boolean', { domainName: DOMAIN, certificateArn: CERTIFICATE, disableExecuteApiEndpoint: 'yes' }, /^settings\.disableExecuteApiEndpoint must be true or false, got "yes"$/],
  ];
  for (const [what, settings, message] of refusals) {
    test(what, () => {
      assert.throws(() => synth(settings), settingsError(message));
    });
  }

  test('an empty domainName, as `-c domainName=$UNSET` gives it, is said to be empty', () => {
    assert.throws(() => synth({}, { oneOff: 'true', domainName: '', certificateArn: CERTIFICATE }), settingsError(/^domainName must be a lower-case domain name .*: empty, got ""$/));
    assert.throws(() => synth({ domainName: ' ', certificateArn: CERTIFICATE }), settingsError(/^settings\.domainName must be .*: empty, got " "$/));
  });

  test('on the command line too, as a one-off', () => {
    assert.throws(() => synth({}, { oneOff: 'true', domainName: DOMAIN }), settingsError(/^domainName=callbacks\.example\.com needs certificateArn/));
    assert.throws(() => synth({}, { domainName: DOMAIN, certificateArn: CERTIFICATE }), settingsError(/-c domainName="callbacks\.example\.com" \(committed: not set\).*differs from what cdk\.json commits/));
    const { json } = synth({}, { oneOff: 'true', domainName: DOMAIN, certificateArn: CERTIFICATE, disableExecuteApiEndpoint: 'true' });
    assert.equal(only(json, 'AWS::ApiGatewayV2::Api')[1].Properties.DisableExecuteApiEndpoint, true);
  });

  test('a certificate from another region than the one the CDK CLI would deploy the region-agnostic stack to (CDK_DEFAULT_REGION) is warned about at synth; the same region, or none given, is not', () => {
    // prepare
    const context = { ...CDK_CONTEXT, settings: { ...CDK_CONTEXT.settings, domainName: DOMAIN, certificateArn: CERTIFICATE }, ...NO_BUNDLING };
    const deployTo = (region?: string, settings: Json = context.settings) => createGatewayApp({ context: { ...context, settings } }, region === undefined ? {} : { CDK_DEFAULT_REGION: region });
    const warnings = (stack: CallbackGatewayStack) => Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('certificateArn names a certificate')).map((w) => w.entry.data as string);

    // act
    const elsewhere = deployTo('us-east-1');

    // assess
    assert.deepEqual(warnings(elsewhere.stack), [
      'certificateArn names a certificate in eu-west-1, but the CDK CLI would deploy to (CDK_DEFAULT_REGION, from AWS_REGION or the profile) us-east-1: a regional custom domain ' +
        'takes a certificate from its own region only. Request or import the certificate for callbacks.example.com in ACM in us-east-1; ' +
        'a deploy to us-east-1 fails when API Gateway creates the custom domain [ack: callback-gateway:certificate-region]',
    ]);
    assert.equal(Template.fromStack(elsewhere.stack).toJSON().Outputs.TelesignCallbackUrl.Value, `https://${DOMAIN}/callbacks/telesign`);
    assert.deepEqual(warnings(deployTo('eu-west-1').stack), []);
    assert.deepEqual(warnings(deployTo(undefined).stack), []);
    assert.deepEqual(warnings(deployTo('us-east-1', CDK_CONTEXT.settings).stack), []);
  });

  test('a certificate from another region than a stack with a known region; a token region cannot be compared, and passes', () => {
    // prepare
    const props = { domainName: DOMAIN, certificateArn: CERTIFICATE };
    const stackIn = (region?: string) => new CallbackGatewayStack(new App({ context: NO_BUNDLING }), 'Gateway', { ...props, ...(region ? { env: { region } } : {}) });

    // act, assess
    assert.throws(
      () => stackIn('us-east-1'),
      /^Error: certificateArn names a certificate in eu-west-1, but the stack deploys to us-east-1: a regional custom domain takes a certificate from its own region only/,
    );
    assert.equal(Template.fromStack(stackIn('eu-west-1')).toJSON().Outputs.TelesignCallbackUrl.Value, `https://${DOMAIN}/callbacks/telesign`);
    assert.equal(Template.fromStack(stackIn()).toJSON().Outputs.TelesignCallbackUrl.Value, `https://${DOMAIN}/callbacks/telesign`);
  });
});
