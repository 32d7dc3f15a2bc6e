import { randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { createDynamoStore } from '../adapters/dynamo-store.ts';
import { eventBridgePublisher } from '../adapters/eventbridge.ts';
import { batchSender, queueSender, visibilityDelayer } from '../adapters/sqs.ts';
import type { IngestDependencies } from '../core/ingest.ts';
import type { SetAsideEvent } from '../core/publisher.ts';
import { MAX_BODY_BYTES, QUEUE, RETENTION } from '../core/pipeline-definition.ts';
import type { ReconcilePolicy } from '../core/reconcile.ts';
import { createSecretCache, type SecretSource } from '../core/secrets.ts';
import type { SweepDependencies } from '../core/sweep.ts';
import { createRelayStore } from '../adapters/relay-store.ts';
import { postOnceContext } from '../adapters/post-once.ts';
import { deliveryReportJoin, parseCountryCodes, RELAY } from '../core/relay.ts';
import { findProvider } from '../providers/index.ts';
import type { AnyProvider, SendContext } from '../providers/provider.ts';
import { ConfigurationError, DependencyError } from '../shared/errors.ts';
import { createLogger, type LogLevel } from '../shared/log.ts';
import type { PublisherHandlerOptions } from './publisher.ts';
import type { RelayHandlerOptions } from './relay.ts';
import type { WorkerHandlerOptions } from './worker.ts';

/**
 * The one place that builds the functions' dependencies, for the Lambda handlers (from their
 * environment) and for the local runtime (from its options), so the two cannot drift.
 */

/** How long a function reuses a secret it read; a rotation is picked up within this time. */
export const DEFAULT_SECRET_CACHE_SECONDS = 300;
/** How long the worker waits for a provider's status endpoint. */
export const DEFAULT_LOOKUP_TIMEOUT_MS = 5_000;

/** Where log lines go (stdout when omitted, as Lambda expects). */
export type LogWrite = (line: string, level: LogLevel) => void;

export interface IngestSetup {
  readonly provider: AnyProvider;
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly secretSource: SecretSource;
  /** @default DEFAULT_SECRET_CACHE_SECONDS */
  readonly secretCacheSeconds?: number;
  /** @default MAX_BODY_BYTES */
  readonly maxBodyBytes?: number;
  readonly write?: LogWrite;
}

export function ingestDependencies(setup: IngestSetup): IngestDependencies {
  return {
    secrets: createSecretCache(setup.secretSource, { ttlMs: (setup.secretCacheSeconds ?? DEFAULT_SECRET_CACHE_SECONDS) * 1000 }),
    send: queueSender(setup.sqs, setup.queueUrl),
    log: createLogger({ service: `ingest-${setup.provider.id}`, write: setup.write }),
    maxBodyBytes: setup.maxBodyBytes ?? MAX_BODY_BYTES,
  };
}

export interface WorkerSetup {
  readonly dynamo: DynamoDBClient;
  readonly tableName: string;
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly secretSource: SecretSource;
  /** @default DEFAULT_SECRET_CACHE_SECONDS */
  readonly secretCacheSeconds?: number;
  /** @default DEFAULT_LOOKUP_TIMEOUT_MS */
  readonly lookupTimeoutMs?: number;
  /** @default RETENTION */
  readonly retention?: { readonly eventDays: number; readonly sensitiveHours: number };
  /** First retry delay of a failed record; doubles per receive. @default QUEUE.retryBaseSeconds */
  readonly retryBaseSeconds?: number;
  /**
   * The queue's receive limit (its redrive policy's maxReceiveCount): a record failing on it is given
   * back at once, logged `next: "dead-letter queue"`. @default none: every failed record backs off
   */
  readonly maxReceiveCount?: number;
  readonly write?: LogWrite;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** @default DEFAULT_RECONCILE */
  readonly reconcile?: ReconcilePolicy;
  /** @default () => new Date() */
  readonly now?: () => Date;
  /**
   * The SMS relay's sender (the `smsRelay` setting), when the relay is on: its delivery reports are
   * joined to instructions whose send got no answer. @default undefined: off, nothing is joined
   */
  readonly smsRelay?: string;
  /** The ids of the providers deployed, when not all are: other providers' re-checks are skipped. @default every provider */
  readonly deployedProviders?: readonly string[];
}

export function workerHandlerOptions(setup: WorkerSetup): WorkerHandlerOptions {
  const now = setup.now ?? (() => new Date());
  const log = createLogger({ service: 'worker', write: setup.write });
  const retention = setup.retention ?? RETENTION;
  const relaySender = setup.smsRelay === undefined || setup.smsRelay === 'off' ? undefined : findProvider(setup.smsRelay);
  if (setup.smsRelay !== undefined && setup.smsRelay !== 'off' && !relaySender?.sendMessage) {
    throw new ConfigurationError(`the SMS relay names "${setup.smsRelay}", which is not a provider that sends messages`);
  }
  return {
    deps: {
      store: createDynamoStore(setup.dynamo, setup.tableName),
      secrets: createSecretCache(setup.secretSource, { ttlMs: (setup.secretCacheSeconds ?? DEFAULT_SECRET_CACHE_SECONDS) * 1000 }),
      lookup: { fetch: setup.fetch ?? fetch, timeoutMs: setup.lookupTimeoutMs ?? DEFAULT_LOOKUP_TIMEOUT_MS, newRequestId: randomUUID },
      now,
      log,
      retention,
      ...(setup.reconcile ? { reconcile: setup.reconcile } : {}),
      ...(setup.deployedProviders ? { deployedProviders: setup.deployedProviders } : {}),
      // The relay's items are kept as long as event items (both EVENT_RETENTION_DAYS).
      ...(relaySender ? { relayJoin: deliveryReportJoin({ sender: relaySender, store: createRelayStore(setup.dynamo, setup.tableName), now, retentionDays: retention.eventDays, log }) } : {}),
    },
    retryBaseSeconds: setup.retryBaseSeconds ?? QUEUE.retryBaseSeconds,
    ...(setup.maxReceiveCount === undefined ? {} : { maxReceiveCount: setup.maxReceiveCount }),
    delayRetry: visibilityDelayer(setup.sqs, setup.queueUrl),
  };
}

export interface SweepSetup {
  readonly dynamo: DynamoDBClient;
  readonly tableName: string;
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  /** @default DEFAULT_RECONCILE */
  readonly reconcile?: ReconcilePolicy;
  /** Seconds between sweeps. @default 60 */
  readonly periodSeconds?: number;
  readonly write?: LogWrite;
  /** @default () => new Date() */
  readonly now?: () => Date;
}

export function sweepDependencies(setup: SweepSetup): SweepDependencies {
  return {
    store: createDynamoStore(setup.dynamo, setup.tableName),
    enqueue: batchSender(setup.sqs, setup.queueUrl),
    now: setup.now ?? (() => new Date()),
    log: createLogger({ service: 'sweep', write: setup.write }),
    ...(setup.reconcile ? { reconcile: setup.reconcile } : {}),
    ...(setup.periodSeconds ? { periodSeconds: setup.periodSeconds } : {}),
  };
}

export interface PublisherSetup {
  readonly eventBridge: EventBridgeClient;
  /** The custom bus the stack creates (EVENT_BUS_NAME). */
  readonly eventBusName: string;
  /**
   * Where what names an event the bus refused for what it holds is recorded: the events
   * dead-letter queue (EVENTS_DLQ_URL).
   * @default - none: such an event fails its record, retried until the stream gives up on it
   */
  readonly setAside?: { readonly sqs: SQSClient; readonly queueUrl: string };
  readonly write?: LogWrite;
  /** Longest pause of a failed batch before it is reported. @default STREAM.maxRetryPauseSeconds */
  readonly maxRetryPauseSeconds?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/** Records what names a set-aside event as one message of the queue; a failure names the SQS error only. */
function setAsideSender(sqs: SQSClient, queueUrl: string): (event: SetAsideEvent) => Promise<void> {
  const send = queueSender(sqs, queueUrl);
  return async (event) => {
    try {
      await send(JSON.stringify(event));
    } catch (error) {
      throw new DependencyError('sqs', `event ${event.eventId} not set aside (${(error as Error).name})`, { cause: error });
    }
  };
}

export function publisherHandlerOptions(setup: PublisherSetup): PublisherHandlerOptions {
  return {
    deps: {
      publish: eventBridgePublisher(setup.eventBridge, setup.eventBusName),
      ...(setup.setAside ? { setAside: setAsideSender(setup.setAside.sqs, setup.setAside.queueUrl) } : {}),
      log: createLogger({ service: 'publisher', write: setup.write }),
    },
    ...(setup.maxRetryPauseSeconds === undefined ? {} : { maxRetryPauseMs: setup.maxRetryPauseSeconds * 1000 }),
    ...(setup.now ? { now: setup.now } : {}),
  };
}

export interface RelaySetup {
  readonly dynamo: DynamoDBClient;
  readonly tableName: string;
  readonly sqs: SQSClient;
  /** The relay queue (for ChangeMessageVisibility: the relay backs off a failed record itself). */
  readonly queueUrl: string;
  /** The provider that sends the messages (the `smsRelay` setting): one with `sendMessage`. */
  readonly sender: string;
  readonly secretSource: SecretSource;
  /** @default DEFAULT_SECRET_CACHE_SECONDS */
  readonly secretCacheSeconds?: number;
  /** Age past which a one-time code is not sent. @default RELAY.codeMaxAgeSeconds */
  readonly codeMaxAgeSeconds?: number;
  /** The countries it sends to (`relayAllowedCountryCodes`): `any`, or calling codes. @default 'any' */
  readonly allowedCountryCodes?: string;
  /** SMS to one number in one clock hour past which it refuses (`relayMaxPerNumberPerHour`); 0: no cap. @default RELAY.maxPerNumberPerHour */
  readonly maxPerNumberPerHour?: number;
  /** Days relay items are kept. @default RETENTION.eventDays */
  readonly retentionDays?: number;
  /** How long a send can be in flight (the function's timeout). @default RELAY.timeoutSeconds */
  readonly inFlightSeconds?: number;
  /** @default RELAY.retryBaseSeconds */
  readonly retryBaseSeconds?: number;
  /** The local runtime: instructions received before this time were queued for another sender (RelayDependencies). */
  readonly sendsOnlyReceivedFrom?: string;
  /** How a message is POSTed. @default postOnceContext() */
  readonly send?: SendContext;
  readonly write?: LogWrite;
  /** @default () => new Date() */
  readonly now?: () => Date;
}

/** The relay handler's options (the Lambda entry point and the local runtime's relay rule build it here). */
export function relayHandlerOptions(setup: RelaySetup): RelayHandlerOptions {
  const sender = findProvider(setup.sender);
  if (!sender?.sendMessage) throw new ConfigurationError(`the SMS relay names "${setup.sender}", which is not a provider that sends messages`);
  // Not a time: every instruction would pass the check, queued for another sender or not.
  if (setup.sendsOnlyReceivedFrom !== undefined && !Number.isFinite(Date.parse(setup.sendsOnlyReceivedFrom))) {
    throw new ConfigurationError(`the relay's sendsOnlyReceivedFrom is not a time: "${setup.sendsOnlyReceivedFrom}"`);
  }
  return {
    deps: {
      store: createRelayStore(setup.dynamo, setup.tableName),
      secrets: createSecretCache(setup.secretSource, { ttlMs: (setup.secretCacheSeconds ?? DEFAULT_SECRET_CACHE_SECONDS) * 1000 }),
      sender,
      send: setup.send ?? postOnceContext(),
      now: setup.now ?? (() => new Date()),
      log: createLogger({ service: 'relay', write: setup.write }),
      newAttempt: randomUUID,
      codeMaxAgeSeconds: setup.codeMaxAgeSeconds ?? RELAY.codeMaxAgeSeconds,
      // A malformed value (the stack checks it at synth) fails the function's start, not a send.
      allowedCountryCodes: parseCountryCodes(setup.allowedCountryCodes ?? 'any'),
      maxPerNumberPerHour: setup.maxPerNumberPerHour ?? RELAY.maxPerNumberPerHour,
      inFlightSeconds: setup.inFlightSeconds ?? RELAY.timeoutSeconds,
      retentionDays: setup.retentionDays ?? RETENTION.eventDays,
      ...(setup.sendsOnlyReceivedFrom === undefined ? {} : { sendsOnlyReceivedFrom: setup.sendsOnlyReceivedFrom }),
    },
    retryBaseSeconds: setup.retryBaseSeconds ?? RELAY.retryBaseSeconds,
    delayRetry: visibilityDelayer(setup.sqs, setup.queueUrl),
  };
}
