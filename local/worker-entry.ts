import { parentPort, workerData } from 'node:worker_threads';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { boundedSqsClient } from '../functions/adapters/sqs.ts';
import { QUEUE } from '../functions/core/pipeline-definition.ts';
import { sweep } from '../functions/core/sweep.ts';
import { sweepDependencies, workerHandlerOptions, type LogWrite } from '../functions/handlers/dependencies.ts';
import { createWorkerHandler } from '../functions/handlers/worker.ts';
import { providers } from '../functions/providers/index.ts';
import { createLogger } from '../functions/shared/log.ts';
import { LOCAL_AWS } from './engines.ts';
import { fileSecretSource } from './secrets-file.ts';
import { startPoller } from './sqs-poller.ts';
import type { FromWorkerThread, ToWorkerThread, WorkerThreadSettings } from './worker-thread.ts';

/**
 * Inside the worker thread (started by local/worker-thread.ts): the worker handler fed by a poller
 * that behaves like the Lambda SQS event source, and the sweep on a timer as EventBridge Scheduler
 * runs it, over clients of its own. Log lines go to the HTTP side, which writes them.
 */

const port = parentPort;
if (!port) throw new Error('local/worker-entry.ts runs in a worker thread (see local/worker-thread.ts)');
const settings = workerData as WorkerThreadSettings;
const post = (message: FromWorkerThread) => port.postMessage(message);
const write: LogWrite = (line, level) => post({ type: 'log', line, level });

const dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: settings.dynamodbEndpoint });
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
    write,
    reconcile: settings.reconcile,
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
let sweepTimer: NodeJS.Timeout | undefined;
let sweeping: Promise<unknown> = Promise.resolve();
let stopping = false;
const tick = () => {
  sweeping = sweep(providers, sweepDeps)
    .catch((error: unknown) => sweepDeps.log.warn('sweep failed, the next one retries', { error: (error as Error).message }))
    .finally(() => {
      if (!stopping) sweepTimer = setTimeout(tick, settings.sweepPeriodSeconds * 1000);
    });
};
sweepTimer = setTimeout(tick, settings.sweepPeriodSeconds * 1000);

port.on('message', (message: ToWorkerThread) => {
  if (message.type !== 'stop' || stopping) return;
  stopping = true;
  clearTimeout(sweepTimer);
  void (async () => {
    // The sweep under way and the batches in flight finish; nothing new is received.
    await Promise.allSettled([sweeping, poller.stop()]);
    dynamo.destroy();
    sqs.destroy();
    post({ type: 'stopped' });
  })();
});

post({ type: 'ready' });
