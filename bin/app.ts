#!/usr/bin/env node
/**
 * CDK entry point (`cdk.json` runs it with tsx). Settings come from context, e.g.
 * `npm run deploy -- -c alarmEmail=ops@example.com -c maxReceiveCount=8`.
 * The app (stack + cdk-nag AwsSolutionsChecks via Validations.of(app).addPlugins) is built in
 * lib/gateway-app.ts so the infrastructure tests synthesize exactly the same thing.
 */
import { createGatewayApp } from '../lib/gateway-app.ts';

createGatewayApp();
