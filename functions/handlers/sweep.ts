import { boundedDynamoClient } from '../adapters/dynamo-store.ts';
import { boundedSqsClient } from '../adapters/sqs.ts';
import { sweep, type SweepDependencies, type SweepResult } from '../core/sweep.ts';
import { providers } from '../providers/index.ts';
import type { AnyProvider } from '../providers/provider.ts';
import { deployedProvidersEnv } from './deployed-providers.ts';
import { sweepDependencies } from './dependencies.ts';
import { numberEnv, reconcileEnv, requireEnv } from './environment.ts';
import { withInvocationLogFields } from './invocation-log.ts';

/** The scheduled sweep (every minute): queues a re-check for each subject that is due. */
export type SweepHandler = () => Promise<SweepResult>;

/** `deployed`: the providers whose subjects are swept (the stack's `providers` setting). */
export function createSweepHandler(deps: SweepDependencies, deployed: readonly AnyProvider[] = providers): SweepHandler {
  return () => sweep(deployed, deps);
}

let configured: SweepHandler | undefined;

/** Lambda entry point for the schedule. */
export const handler = withInvocationLogFields<unknown, SweepResult>(() => {
  configured ??= createSweepHandler(
    sweepDependencies({
      dynamo: boundedDynamoClient(),
      tableName: requireEnv('TABLE_NAME'),
      sqs: boundedSqsClient(),
      queueUrl: requireEnv('QUEUE_URL'),
      reconcile: reconcileEnv(),
      periodSeconds: numberEnv('SWEEP_PERIOD_SECONDS', 60),
    }),
    // Set only when the stack deploys some providers (PROVIDERS): the others' subjects are left alone.
    deployedProvidersEnv(),
  );
  return configured();
});
