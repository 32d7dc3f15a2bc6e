/**
 * The table and queue definitions, in one place for the CDK stack and the local runtime, so that
 * local and cloud cannot drift. Plain data: importing it has no side effects.
 */

/** DynamoDB layout. Users query this directly: the README documents every key. */
export const TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  /** Epoch seconds; DynamoDB's TTL deletes event items after the retention period. */
  ttlAttribute: 'expiresAt',
  /**
   * Lists subjects by provider and outcome (`telesign#failed`), by when their status last changed
   * (`changedAt`). Only the attributes people list by are projected, so a callback that changes no
   * status (a retry, a counter) does not rewrite the index entry.
   */
  outcomeIndex: {
    name: 'byOutcome',
    partitionKey: 'providerOutcome',
    sortKey: 'changedAt',
    projected: ['provider', 'subjectId', 'part', 'status', 'outcome', 'terminal', 'statusAt', 'detail', 'source', 'confirmation', 'confirmedStatus', 'reason', 'issues', 'receivedAt'],
  },
  /**
   * Subjects due to be asked about again (`recheckShard` = `<provider>#<n>`, by `recheckAt`), and
   * stale ones (`<provider>#stale`). Sparse: only states that are not settled have these attributes.
   */
  recheckIndex: {
    name: 'byRecheck',
    partitionKey: 'recheckShard',
    sortKey: 'recheckAt',
    projected: ['provider', 'subjectId', 'part', 'status', 'outcome', 'terminal', 'confirmation', 'rechecks', 'stale', 'expectedAt'],
  },
} as const;

/** The sort key prefix of event items: `EVENT#<event key>`. */
export const EVENT_SK_PREFIX = 'EVENT#';

/**
 * Key builders: `<provider>#<subjectId>` holds the subject's state item (`STATE`), the state of each
 * of its parts (`STATE#<part>`: an eSMS recipient) and its events (`EVENT#…`).
 */
export const keys = {
  subject: (provider: string, subjectId: string) => `${provider}#${subjectId}`,
  state: (provider: string, subjectId: string, part?: string) => ({
    pk: keys.subject(provider, subjectId),
    sk: part === undefined ? 'STATE' : `STATE#${part}`,
  }),
  event: (provider: string, subjectId: string, eventKey: string) => ({
    pk: keys.subject(provider, subjectId),
    sk: `${EVENT_SK_PREFIX}${eventKey}`,
  }),
  /**
   * The subject a state item's key names (the inverse of `state`): provider ids hold no `#`, so the
   * partition key splits at its first. Undefined for a key that is not a state item's.
   */
  stateSubject: (pk: string, sk: string): { provider: string; subjectId: string; part?: string } | undefined => {
    const at = pk.indexOf('#');
    if (at <= 0 || (sk !== 'STATE' && !sk.startsWith('STATE#'))) return undefined;
    const subject = { provider: pk.slice(0, at), subjectId: pk.slice(at + 1) };
    return sk === 'STATE' ? subject : { ...subject, part: sk.slice('STATE#'.length) };
  },
  /**
   * Quarantined callbacks have no trusted subject: one partition per provider, keyed by content.
   * `!` never follows a provider id in a subject's key (`<provider>#…`), so no subject id, not even
   * `quarantine`, can land here.
   */
  quarantine: (provider: string, contentHash: string) => ({ pk: keys.quarantinePartition(provider), sk: `QUARANTINE#${contentHash}` }),
  quarantinePartition: (provider: string) => `${provider}!quarantine`,
  outcome: (provider: string, outcome: string) => `${provider}#${outcome}`,
  /**
   * Where a relayed send that got no answer meets its sender's delivery report, by the external id
   * the send carried (the instruction's eventId): `<sender>!external#<id>`. As for quarantine, `!`
   * never follows a provider id in a subject's key, so no subject's partition is this one.
   */
  external: (sender: string, externalId: string) => ({ pk: `${sender}!external#${externalId}`, sk: 'RELAY' }),
  /**
   * The relay's count of SMS sent to one number in one clock hour (`relayMaxPerNumberPerHour`):
   * `<sender>!relay-count#<number hash>`, sort key the UTC hour (`HOUR#2026-01-31T14`). The number is
   * never written out in the key: only a keyed hash of it (functions/core/relay.ts `numberHash`, an
   * HMAC under a key derived from the sender's secret), which whoever reads the table without that
   * secret cannot match to a number. As above, `!` keeps it out of every subject's partition.
   */
  relayCount: (sender: string, numberHash: string, hour: string) => ({ pk: keys.relayCountPartition(sender, numberHash), sk: `HOUR#${hour}` }),
  relayCountPartition: (sender: string, numberHash: string) => `${sender}!relay-count#${numberHash}`,
} as const;

/** Queue and worker settings. */
export const QUEUE = {
  /** Receives before a message moves to the DLQ. */
  maxReceiveCount: 5,
  /** ≥ 6 × the worker timeout, as AWS recommends for SQS event sources. */
  visibilityTimeoutSeconds: 180,
  workerTimeoutSeconds: 30,
  /**
   * The worker's memory. A batch mostly waits (DynamoDB, providers' status endpoints at 100 ms or
   * more); its own CPU is about 1 ms a record at a full vCPU, so at 256 MB (a seventh of a vCPU) a
   * batch of 10 spends well under 100 ms computing, and 512 MB would pay twice for the waits.
   */
  workerMemoryMb: 256,
  retentionDays: 4,
  dlqRetentionDays: 14,
  batchSize: 10,
  maxBatchingWindowSeconds: 1,
  /**
   * Receives during which an unsettled verdict is asked again before it is recorded as this
   * delivery's last word (< maxReceiveCount): a 404 ("not known yet"), or an answer behind the
   * callback's claim (the status endpoint lagging). Reconciliation keeps asking after that.
   */
  settleAttempts: 3,
  /**
   * Receives during which a fault of the provider's status endpoint (5xx, 429, timeout, a refused
   * credential) fails the record for a retry (< maxReceiveCount); on the last one the callback is
   * stored unconfirmed and re-checks keep asking, so an outage never sends callbacks to the DLQ.
   */
  askFaultAttempts: 4,
  /** Times one callback's claim is put to the provider's status endpoint across its deliveries. */
  maxAsksPerClaim: 5,
  /** First retry delay after a failed record; doubles per receive (capped at 15 minutes). */
  retryBaseSeconds: 10,
} as const;

export const RETENTION = {
  /** Event items expire after this many days (state items are kept). */
  eventDays: 90,
  /** Identomat OTP and link instructions (live codes, phone numbers) expire after this many hours. */
  sensitiveHours: 24,
} as const;

/**
 * The table's change stream and the publisher that turns it into events (functions/core/publish.ts).
 * The stream holds each change for 24 hours
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html); a change not
 * published within `maxRecordAgeSeconds` (the bus down that long, or a record it refuses) goes to
 * the publisher's dead-letter queue, which names it, while the stream still holds it.
 */
export const STREAM = {
  /** Old and new image: an event says what changed (`previous`) without reading the table. */
  viewType: 'NEW_AND_OLD_IMAGES',
  /** Records per invocation (Lambda's default); at most 10 events a PutEvents call. */
  batchSize: 100,
  /** Seconds Lambda gathers records before invoking: at 1 s a burst is one invocation, not hundreds. */
  maxBatchingWindowSeconds: 1,
  /**
   * Lambda's retries of a batch whose publish failed. A failed publish pauses before it reports the
   * failure (longer as the record ages, up to `maxRetryPauseSeconds`), so these retries outlast
   * `maxRecordAgeSeconds` and the age is what bounds a bus outage. An invocation that crashes does
   * not pause: the count bounds those (a bug), well under the record age.
   */
  retryAttempts: 2_500,
  /** A change not published after this long goes to the dead-letter queue (12 h: half the stream's 24 h). */
  maxRecordAgeSeconds: 12 * 3600,
  /** Longest pause of a failed invocation before Lambda retries it (the pause grows with the record's age). */
  maxRetryPauseSeconds: 20,
  publisherTimeoutSeconds: 60,
  /** Days the publisher's dead-letter queue keeps what it was given (SQS's maximum). */
  dlqRetentionDays: 14,
  /** Seconds the oldest unpublished change may wait before the iterator-age alarm fires. */
  iteratorAgeAlarmSeconds: 120,
} as const;

/** Largest body (or query string) accepted; larger ones get 413. */
export const MAX_BODY_BYTES = 256 * 1024;

/** The CreateTable input for this layout (the local runtime and tests create the table from it). */
export function createTableInput(tableName: string) {
  const { partitionKey, sortKey, outcomeIndex, recheckIndex } = TABLE;
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST' as const,
    // The change stream the publisher reads (on AWS, lib/callback-table.ts; locally, DynamoDB Local's Streams API).
    StreamSpecification: { StreamEnabled: true, StreamViewType: STREAM.viewType },
    AttributeDefinitions: [partitionKey, sortKey, outcomeIndex.partitionKey, outcomeIndex.sortKey, recheckIndex.partitionKey, recheckIndex.sortKey].map((name) => ({
      AttributeName: name,
      AttributeType: 'S' as const,
    })),
    KeySchema: [
      { AttributeName: partitionKey, KeyType: 'HASH' as const },
      { AttributeName: sortKey, KeyType: 'RANGE' as const },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: outcomeIndex.name,
        KeySchema: [
          { AttributeName: outcomeIndex.partitionKey, KeyType: 'HASH' as const },
          { AttributeName: outcomeIndex.sortKey, KeyType: 'RANGE' as const },
        ],
        Projection: { ProjectionType: 'INCLUDE' as const, NonKeyAttributes: [...outcomeIndex.projected] },
      },
      {
        IndexName: recheckIndex.name,
        KeySchema: [
          { AttributeName: recheckIndex.partitionKey, KeyType: 'HASH' as const },
          { AttributeName: recheckIndex.sortKey, KeyType: 'RANGE' as const },
        ],
        Projection: { ProjectionType: 'INCLUDE' as const, NonKeyAttributes: [...recheckIndex.projected] },
      },
    ],
  };
}
