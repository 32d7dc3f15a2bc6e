import { Annotations, App, type AppProps, CfnOutput, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { CallbackGatewayStack } from './callback-gateway-stack.ts';
import { checkCertificateRegion } from './validate.ts';
import { type OneOff, type ResolvedSettings, resolveSettings, SettingsError, STACK_ID } from './settings.ts';

export { SettingsError, STACK_ID };

const DESCRIPTION = 'Callback gateway: provider callbacks through API Gateway, SQS and a worker into DynamoDB';

/**
 * The app `cdk synth` runs (bin/app.ts) and the infrastructure tests build: the stack of the
 * selected stage, configured from cdk.json (lib/settings.ts), checked by cdk-nag's AwsSolutions
 * rules on every synth.
 */
export function createGatewayApp(props: AppProps = {}, environment: NodeJS.ProcessEnv = process.env): { app: App; stack: CallbackGatewayStack } {
  const app = new App(props);
  let resolved: ResolvedSettings;
  try {
    resolved = resolveSettings(app.node);
  } catch (error) {
    throw new SettingsError((error as Error).message, { cause: error });
  }
  const { stage, stackName, settings, oneOffs, ignoredKeys } = resolved;
  const stack = new CallbackGatewayStack(app, stackName, {
    description: stage === undefined ? DESCRIPTION : `${DESCRIPTION} (stage ${stage})`,
    // No env: the stack is account- and region-agnostic, so synth never looks anything up.
    stage,
    ...settings,
  });
  reportOneOffs(stack, oneOffs);
  warnCertificateRegion(stack, settings, environment);
  if (ignoredKeys.length > 0) {
    Annotations.of(stack).addWarningV2('callback-gateway:unknown-context', `Context keys that are not settings, ignored: ${ignoredKeys.join(', ')}`);
  }
  // cdk-nag 3 runs as a policy validation plugin; unacknowledged errors fail the synth.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}

/**
 * The stack has no env, so its region is known only at deploy; but the CDK CLI tells the app the
 * region a deploy would go to (CDK_DEFAULT_REGION: AWS_REGION, AWS_DEFAULT_REGION or the profile's,
 * else us-east-1), and a certificate from another region is said at synth rather than by API Gateway
 * halfway through the deploy. A warning, not a refusal: an offline synth (CI, no AWS configuration)
 * gets the CLI's us-east-1 fallback, not the region the template will be deployed to.
 */
function warnCertificateRegion(stack: CallbackGatewayStack, settings: ResolvedSettings['settings'], environment: NodeJS.ProcessEnv): void {
  const { certificateArn, domainName } = settings;
  const region = environment.CDK_DEFAULT_REGION;
  if (certificateArn === undefined || domainName === undefined || !region) return;
  try {
    checkCertificateRegion(certificateArn, region, domainName, 'the CDK CLI would deploy to (CDK_DEFAULT_REGION, from AWS_REGION or the profile)');
  } catch (error) {
    Annotations.of(stack).addWarningV2('callback-gateway:certificate-region', `${(error as Error).message}; a deploy to ${region} fails when API Gateway creates the custom domain`);
  }
}

/**
 * One-off settings (allowed with -c oneOff=true) are said at synth and kept visible on the deployed
 * stack, with the committed value the next plain deploy restores.
 */
function reportOneOffs(stack: CallbackGatewayStack, oneOffs: readonly OneOff[]): void {
  if (oneOffs.length === 0) return;
  const text = oneOffs
    .map((o) => `${o.name}=${JSON.stringify(o.value)} (the next deploy without -c restores ${o.committed === undefined ? 'not set' : JSON.stringify(o.committed)})`)
    .join('; ');
  Annotations.of(stack).addWarningV2('callback-gateway:one-off-settings', `One-off settings, not in cdk.json: ${text}`);
  new CfnOutput(stack, 'OneOffSettings', {
    description: 'Settings deployed with -c that cdk.json does not hold; a deploy without them sets them back',
    value: text,
  });
}
