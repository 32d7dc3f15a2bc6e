import { Annotations, App, type AppProps, CfnOutput, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { CallbackGatewayStack } from './callback-gateway-stack.ts';
import { type OneOff, type ResolvedSettings, resolveSettings, SettingsError, STACK_ID } from './settings.ts';

export { SettingsError, STACK_ID };

const DESCRIPTION = 'Callback gateway: provider callbacks through API Gateway, SQS and a worker into DynamoDB';

/**
 * The app `cdk synth` runs (bin/app.ts) and the infrastructure tests build: the stack of the
 * selected stage, configured from cdk.json (lib/settings.ts), checked by cdk-nag's AwsSolutions
 * rules on every synth.
 */
export function createGatewayApp(props: AppProps = {}): { app: App; stack: CallbackGatewayStack } {
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
  if (ignoredKeys.length > 0) {
    Annotations.of(stack).addWarningV2('callback-gateway:unknown-context', `Context keys that are not settings, ignored: ${ignoredKeys.join(', ')}`);
  }
  // cdk-nag 3 runs as a policy validation plugin; unacknowledged errors fail the synth.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
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
