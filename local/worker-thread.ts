import { boundedDynamoClient } from '../functions/adapters/dynamo-store.ts';
import { boundedSqsClient } from '../functions/adapters/sqs.ts';
import { QUEUE } from '../functions/core/pipeline-definition.ts';
import type { ReconcilePolicy } from '../functions/core/reconcile.ts';
import { sweep } from '../functions/core/sweep.ts';
import { sweepDependencies, workerHandlerOptions } from '../functions/handlers/dependencies.ts';
import { createWorkerHandler } from '../functions/handlers/worker.ts';
import { providers } from '../functions/providers/index.ts';
import { createLogger } from '../functions/shared/log.ts';
import { LOCAL_AWS } from './engines.ts';
import { fileSecretSource } from './secrets-file.ts';
import { startPoller } from './sqs-poller.ts';
import { runPart } from './threads.ts';

/**
 * The worker part of `npm start`, in a thread of its own (see local/threads.ts), as the worker and
 * the sweep are functions of their own on AWS: the worker handler fed by a poller that behaves like
 * the Lambda SQS event source, and the sweep on a timer as EventBridge Scheduler runs it, over
 * clients of their own and the dependencies functions/handlers/dependencies.ts builds, as in Lambda.
 */

export interface WorkerThreadSettings {
  readonly dynamodbEndpoint: string;
  readonly sqsEndpoint: string;
  readonly tableName: string;
  readonly queueUrl: string;
  readonly queueArn: string;
  /** The secrets the pipeline runs with, read by the worker as the HTTP side reads them. */
  readonly secretsFile: string;
  readonly secretCacheSeconds: number;
  readonly retryBaseSeconds: number;
  /** The queue's receive limit (`--max-receives`): a record failing on it goes to the DLQ at once. */
  readonly maxReceiveCount: number;
  readonly confirmTimeoutMs?: number;
  readonly reconcile: ReconcilePolicy;
  /** Seconds between sweeps for due re-checks. */
  readonly sweepPeriodSeconds: number;
  /** The SMS relay's sender, when it is on (`--sms-relay`): its delivery reports are joined to sends that got no answer. */
  readonly smsRelay?: string;
}

runPart<WorkerThreadSettings, null>(async (settings, write) => {
  const dynamo = boundedDynamoClient({ ...LOCAL_AWS, endpoint: settings.dynamodbEndpoint });
  // The same bounded client as the Lambda ingest: an unreachable queue fails the call, not the thread.
  const sqs = boundedSqsClient({ ...LOCAL_AWS, endpoint: settings.sqsEndpoint });
  const worker = createWorkerHandler(
    workerHandlerOptions({
      dynamo,
      tableName: settings.tableName,
      sqs,
      queueUrl: settings.queueUrl,
      secretSource: fileSecretSource(settings.secretsFile),
      secretCacheSeconds: settings.secretCacheSeconds,
      lookupTimeoutMs: settings.confirmTimeoutMs,
      retryBaseSeconds: settings.retryBaseSeconds,
      maxReceiveCount: settings.maxReceiveCount,
      write,
      reconcile: settings.reconcile,
      ...(settings.smsRelay === undefined ? {} : { smsRelay: settings.smsRelay }),
    }),
  );
  const log = createLogger({ service: 'worker', write });
  const poller = startPoller({
    sqs,
    queueUrl: settings.queueUrl,
    queueArn: settings.queueArn,
    handler: worker,
    batchSize: QUEUE.batchSize,
    onError: (error) => log.warn('poller error', { error: (error as Error).message }),
  });

  const sweepDeps = sweepDependencies({
    dynamo,
    tableName: settings.tableName,
    sqs,
    queueUrl: settings.queueUrl,
    reconcile: settings.reconcile,
    periodSeconds: settings.sweepPeriodSeconds,
    write,
  });
  let timer: NodeJS.Timeout | undefined;
  let sweeping: Promise<unknown> = Promise.resolve();
  let stopping = false;
  const tick = () => {
    sweeping = sweep(providers, sweepDeps)
      .catch((error: unknown) => sweepDeps.log.warn('sweep failed, the next one retries', { error: (error as Error).message }))
      .finally(() => {
        if (!stopping) timer = setTimeout(tick, settings.sweepPeriodSeconds * 1000);
      });
  };
  timer = setTimeout(tick, settings.sweepPeriodSeconds * 1000);

  return {
    info: null,
    async stop() {
      stopping = true;
      clearTimeout(timer);
      // The sweep under way and the batches in flight finish; nothing new is received.
      await Promise.allSettled([sweeping, poller.stop()]);
      dynamo.destroy();
      sqs.destroy();
    },
  };
});
