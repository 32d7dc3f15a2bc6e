import { boundedDynamoClient } from '../functions/adapters/dynamo-store.ts';
import { boundedSqsClient } from '../functions/adapters/sqs.ts';
import { RELAY } from '../functions/core/relay.ts';
import { relayHandlerOptions } from '../functions/handlers/dependencies.ts';
import { createRelayHandler } from '../functions/handlers/relay.ts';
import { createLogger } from '../functions/shared/log.ts';
import { LOCAL_AWS } from './engines.ts';
import { fileSecretSource } from './secrets-file.ts';
import { startPoller } from './sqs-poller.ts';
import { runPart } from './threads.ts';

/**
 * The SMS relay part of `npm start`, in a thread of its own (see local/threads.ts), as the relay is
 * a function of its own on AWS (lib/sms-relay.ts): the relay handler fed by a poller that behaves
 * like the Lambda SQS event source on the relay queue, which the local bus's SMS rule fills
 * (local/events-outlet.ts). Its dependencies are built by functions/handlers/dependencies.ts, as in
 * Lambda; it sends through the sender's secret as the pipeline runs it (the simulated TeleSign with
 * the development secrets).
 */

export interface RelayThreadSettings {
  readonly dynamodbEndpoint: string;
  readonly sqsEndpoint: string;
  readonly tableName: string;
  readonly queueUrl: string;
  readonly queueArn: string;
  /** The provider that sends (the `smsRelay` setting). */
  readonly sender: string;
  readonly secretsFile: string;
  readonly secretCacheSeconds: number;
  /** Seconds after receipt past which a one-time code is not sent (`relayMaxAgeSeconds`). */
  readonly codeMaxAgeSeconds: number;
  /** The countries it sends to (`relayAllowedCountryCodes`). */
  readonly allowedCountryCodes: string;
  /** SMS to one number in one clock hour past which it refuses (`relayMaxPerNumberPerHour`); 0: no cap. */
  readonly maxPerNumberPerHour: number;
  /** First retry delay of a failed send; doubles per receive. */
  readonly retryBaseSeconds: number;
  /**
   * When the relay began sending where it sends now (local/pipeline.ts): an instruction received
   * before was queued for another sender (a simulated one, say) and is not sent (ISO-8601).
   */
  readonly sendsOnlyReceivedFrom: string;
}

runPart<RelayThreadSettings, null>(async (settings, write) => {
  const dynamo = boundedDynamoClient({ ...LOCAL_AWS, endpoint: settings.dynamodbEndpoint });
  const sqs = boundedSqsClient({ ...LOCAL_AWS, endpoint: settings.sqsEndpoint });
  const relay = createRelayHandler(
    relayHandlerOptions({
      dynamo,
      tableName: settings.tableName,
      sqs,
      queueUrl: settings.queueUrl,
      sender: settings.sender,
      secretSource: fileSecretSource(settings.secretsFile),
      secretCacheSeconds: settings.secretCacheSeconds,
      codeMaxAgeSeconds: settings.codeMaxAgeSeconds,
      allowedCountryCodes: settings.allowedCountryCodes,
      maxPerNumberPerHour: settings.maxPerNumberPerHour,
      retryBaseSeconds: settings.retryBaseSeconds,
      // Instructions queued for another target are let go unsent, by the receipt time stored with
      // them (an event's own word could be any time).
      sendsOnlyReceivedFrom: settings.sendsOnlyReceivedFrom,
      write,
    }),
  );
  const log = createLogger({ service: 'relay', write });
  const poller = startPoller({
    sqs,
    queueUrl: settings.queueUrl,
    queueArn: settings.queueArn,
    handler: relay,
    batchSize: RELAY.batchSize,
    // As the stack's event source: two at once keep the sender's rate limit far away.
    concurrency: 2,
    onError: (error) => log.warn('poller error', { error: (error as Error).message }),
  });
  return {
    info: null,
    async stop() {
      // The sends in flight finish and are recorded; nothing new is received.
      await poller.stop();
      dynamo.destroy();
      sqs.destroy();
    },
  };
});
