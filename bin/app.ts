#!/usr/bin/env node
/**
 * CDK entry point (`cdk.json` runs it with tsx). Settings are committed in cdk.json (`context.settings`
 * for every stage, `context.stages.<stage>` for one stage): lib/settings.ts says how they are read,
 * and why a one-off `-c name=value` is refused unless `-c oneOff=true`. `-c stage=prod` selects the
 * stage (stack `CallbackGateway-prod`); without it the stack is `CallbackGateway`.
 * The app (stack + cdk-nag AwsSolutionsChecks via Validations.of(app).addPlugins) is built in
 * lib/gateway-app.ts so the infrastructure tests synthesize exactly the same thing.
 */
import { createGatewayApp, SettingsError } from '../lib/gateway-app.ts';
import { cdkOptionsNpmTook } from '../lib/settings.ts';

// `npm run deploy --context=stage=prod`: npm kept the option, and cdk would deploy the default stack.
const npmTook = cdkOptionsNpmTook(process.env);
if (npmTook !== undefined) {
  console.error(`Error: ${npmTook}`);
  process.exit(1);
}

try {
  createGatewayApp();
} catch (error) {
  if (!(error instanceof SettingsError)) throw error;
  // A wrong setting is fixed in cdk.json or on the command line: its message says which and how,
  // and a stack trace through lib/ would only bury it.
  console.error(`Error: ${error.message}`);
  process.exit(1);
}
