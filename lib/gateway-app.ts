import { App, type AppProps, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Node } from 'constructs';
import { CallbackGatewayStack, type CallbackGatewayStackProps, NUMERIC_STACK_SETTINGS } from './callback-gateway-stack.ts';
import { checkEmail, checkSetting } from './validate.ts';

/** Stack id (and CloudFormation stack name). Renaming it deploys a second gateway. */
export const STACK_ID = 'CallbackGateway';

/**
 * The stack settings given as context (`-c maxReceiveCount=8`, or cdk.json "context"). Command-line
 * values arrive as strings; each is checked here and named, with its value, when it is wrong.
 */
export function stackPropsFromContext(node: Node): CallbackGatewayStackProps {
  const props: { -readonly [K in keyof CallbackGatewayStackProps]: CallbackGatewayStackProps[K] } = {};
  const email = node.tryGetContext('alarmEmail');
  if (email !== undefined) props.alarmEmail = checkEmail('context alarmEmail', String(email));
  for (const name of NUMERIC_STACK_SETTINGS) {
    const raw: unknown = node.tryGetContext(name);
    if (raw === undefined) continue;
    const value = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(raw) ? Number(raw) : NaN;
    if (Number.isNaN(value)) throw new Error(`context ${name} must be a number, got ${JSON.stringify(raw)}`);
    props[name] = checkSetting(name, value);
  }
  return props;
}

/**
 * The app `cdk synth` runs (bin/app.ts) and the infrastructure tests build: the stack, configured
 * from context, checked by cdk-nag's AwsSolutions rules on every synth.
 */
export function createGatewayApp(props: AppProps = {}): { app: App; stack: CallbackGatewayStack } {
  const app = new App(props);
  const stack = new CallbackGatewayStack(app, STACK_ID, {
    description: 'Callback gateway: provider callbacks through API Gateway, SQS and a worker into DynamoDB',
    // No env: the stack is account- and region-agnostic, so synth never looks anything up.
    ...stackPropsFromContext(app.node),
  });
  // cdk-nag 3 runs as a policy validation plugin; unacknowledged errors fail the synth.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}
