import {
  ConditionalCheckFailedException,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  DynamoDBClient,
  type AttributeValue,
  type DynamoDBClientConfig,
} from '@aws-sdk/client-dynamodb';
import { marshall, NumberValueImpl as NumberValue, unmarshall } from '@aws-sdk/util-dynamodb';
import { TABLE, keys } from '../core/pipeline-definition.ts';
import { nextVersion } from '../core/state.ts';
import { recheckCount, stateItem, stateOf, type CallbackStore, type DueRecheck } from '../core/store.ts';
import { canonicalJson } from '../shared/canonical-json.ts';
import { DependencyError, errorMessage, ItemTooLargeError } from '../shared/errors.ts';

/**
 * Bounds of each DynamoDB call the functions make. The SDK sets no request timeout of its own: a
 * connection that stalls (no answer, no reset) held the call, and with it the whole batch, until
 * the function's timeout. An attempt that takes longer than this is abandoned and retried, and a
 * call that keeps stalling fails as a dependency fault (the record comes back from its queue).
 * DynamoDB answers in milliseconds; a sweep's page of 1 MB in well under a second.
 */
export const DYNAMO_BOUNDS = { connectionTimeoutMs: 1_000, requestTimeoutMs: 5_000, maxAttempts: 3 } as const;

/** A DynamoDB client whose calls are bounded as above (`config` adds the endpoint or region, for the local runtime). */
export function boundedDynamoClient(config: DynamoDBClientConfig = {}, bounds: { readonly connectionTimeoutMs: number; readonly requestTimeoutMs: number; readonly maxAttempts: number } = DYNAMO_BOUNDS): DynamoDBClient {
  return new DynamoDBClient({
    ...config,
    maxAttempts: bounds.maxAttempts,
    requestHandler: {
      connectionTimeout: bounds.connectionTimeoutMs,
      requestTimeout: bounds.requestTimeoutMs,
      throwOnRequestTimeout: true,
    },
  });
}

const MARSHALL = { removeUndefinedValues: true, convertClassInstanceToMap: false } as const;

export function isConditionFailure(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException || (error as Error).name === 'ConditionalCheckFailedException';
}

/**
 * Whether the SDK sent the call more than once before this answer: an attempt whose answer was lost
 * (given up on at its timeout, a connection reset) may have been carried out all the same, and the
 * retry's failed condition be that very write's doing.
 */
export function sentAgain(error: unknown): boolean {
  return ((error as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1) > 1;
}

/** An attribute value as it compares: numbers by value, sets in order, bytes as base64. */
function comparable(value: AttributeValue): unknown {
  if (value.N !== undefined) return { N: Number(value.N) };
  if (value.NS !== undefined) return { NS: value.NS.map(Number).sort((a, b) => a - b) };
  if (value.SS !== undefined) return { SS: [...value.SS].sort() };
  if (value.B !== undefined) return { B: Buffer.from(value.B).toString('base64') };
  if (value.BS !== undefined) return { BS: value.BS.map((bytes) => Buffer.from(bytes).toString('base64')).sort() };
  if (value.M !== undefined) return { M: Object.fromEntries(Object.entries(value.M).map(([name, inner]) => [name, comparable(inner)])) };
  if (value.L !== undefined) return { L: value.L.map(comparable) };
  return value;
}

/** Whether two items, as DynamoDB holds them, are the same to the last attribute. */
export function sameItem(a: Record<string, AttributeValue>, b: Record<string, AttributeValue>): boolean {
  const text = (item: Record<string, AttributeValue>) => canonicalJson(Object.fromEntries(Object.entries(item).map(([name, value]) => [name, comparable(value)])));
  return text(a) === text(b);
}

/**
 * A number read from an item, kept exactly when JavaScript cannot hold it: an integer past 2^53 as
 * a BigInt (as unmarshall reads one by default), any other past it (a fraction, an exponent:
 * `12345678901234567890.5`, `1.5E+100`) as its text in a NumberValue, which unmarshall cannot make a
 * BigInt of and so threw on, failing every read of the subject's state (each callback and re-check
 * to the DLQ). Both are written back as they were read: a field an application added to its
 * expectation is never rounded. The gateway's own numbers are small integers and times.
 */
export function exactNumber(digits: string): number | bigint | NumberValue {
  const value = Number(digits);
  if (Number.isFinite(value) && Math.abs(value) <= Number.MAX_SAFE_INTEGER) return value;
  return /^-?\d+$/.test(digits) ? BigInt(digits) : NumberValue.from(digits);
}

/** DynamoDB's answer to an item over 400 KB: "Item size has exceeded the maximum allowed size". */
function isItemTooLarge(error: unknown): boolean {
  return (error as Error).name === 'ValidationException' && /item size has exceeded/i.test(errorMessage(error));
}

export function createDynamoStore(client: DynamoDBClient, tableName: string): CallbackStore {
  const fault = (action: string, error: unknown) =>
    new DependencyError('dynamodb', `${action} failed: ${errorMessage(error)}`, { cause: error });
  /**
   * A conditional write refused on the SDK's retry: whether the item is now exactly `written`, the
   * write of an earlier attempt whose answer was lost (the bounded client gives up on an attempt
   * after its timeout). Read only then; a read that fails leaves the refusal as it was.
   */
  const landedBefore = async (error: unknown, written: Record<string, unknown>): Promise<boolean> => {
    if (!sentAgain(error)) return false;
    try {
      const item = marshall(written, MARSHALL);
      const key = { [TABLE.partitionKey]: item[TABLE.partitionKey], [TABLE.sortKey]: item[TABLE.sortKey] };
      const { Item: found } = await client.send(new GetItemCommand({ TableName: tableName, Key: key, ConsistentRead: true }));
      return found !== undefined && sameItem(found, item);
    } catch {
      return false;
    }
  };

  /** A lease refused on the SDK's retry: whether the item holds this very lease, an earlier attempt's (answer lost). */
  const leasedBefore = async (error: unknown, key: Record<string, unknown>, leaseUntil: string): Promise<boolean> => {
    if (!sentAgain(error)) return false;
    try {
      const { Item: found } = await client.send(new GetItemCommand({ TableName: tableName, Key: marshall(key), ConsistentRead: true }));
      return found?.[TABLE.recheckIndex.sortKey]?.S === leaseUntil;
    } catch {
      return false;
    }
  };

  /**
   * The lease of an item whose `version` DynamoDB cannot add 1 to (an expectation a program wrote
   * with it as text, as another type, or as a number of 38 digits): its next integer written as a
   * number (`nextVersion`), or 1 when it holds none that DynamoDB takes, on the condition that
   * neither `recheckAt` nor `version` moved since read (any change of `version` fails the
   * conditional put of a worker that read it before).
   * Such an item failed every lease: due, it failed every sweep; set too far ahead, it stayed at the
   * far end of its shard and, with nine more, kept the shard's other such items from ever moving.
   * Undefined when it has no version (the failure was something else).
   */
  const leaseOverOddVersion = async (key: Record<string, unknown>, seen: string, leaseUntil: string): Promise<boolean | undefined> => {
    const { Item: found } = await client.send(new GetItemCommand({ TableName: tableName, Key: marshall(key), ConsistentRead: true })).catch((error: unknown) => {
      throw fault('GetItem (recheck lease)', error);
    });
    const version = found?.version;
    if (found === undefined || version === undefined) return undefined;
    if (found[TABLE.recheckIndex.sortKey]?.S !== seen) return false;
    const digits = /^\s*(-?\d{1,37})(?:\.\d*)?\s*$/.exec(version.S ?? version.N ?? '');
    const next = digits ? nextVersion(BigInt(digits[1])) : 1;
    try {
      await client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: marshall(key),
          UpdateExpression: 'SET #at = :lease, #version = :next',
          ConditionExpression: '#at = :seen AND #version = :old',
          ExpressionAttributeNames: { '#at': TABLE.recheckIndex.sortKey, '#version': 'version' },
          ExpressionAttributeValues: { ...marshall({ ':lease': leaseUntil, ':seen': seen, ':next': next }), ':old': version },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return leasedBefore(error, key, leaseUntil);
      throw fault('UpdateItem (recheck lease)', error);
    }
  };

  /** One page of a `byRecheck` partition: `recheckAt` compared with `at` as `condition` says, in the order `forward` says. */
  const queryRechecks = async (shard: string, condition: string, at: string, limit: number, forward: boolean): Promise<DueRecheck[]> => {
    const index = TABLE.recheckIndex;
    try {
      const result = await client.send(
        new QueryCommand({
          TableName: tableName,
          IndexName: index.name,
          KeyConditionExpression: `#shard = :shard AND ${condition}`,
          ExpressionAttributeNames: { '#shard': index.partitionKey, '#at': index.sortKey },
          ExpressionAttributeValues: marshall({ ':shard': shard, ':at': at }),
          Limit: limit,
          ...(forward ? {} : { ScanIndexForward: false }),
        }),
      );
      return (result.Items ?? []).map((raw) => {
        // Numbers kept as their text: another attribute the index projects (`expectedAt`) that a
        // program wrote with more digits than a JavaScript number holds made unmarshall throw, and
        // failed the query of the whole shard, and the sweep of every provider after it.
        const item = unmarshall(raw, { wrapNumbers: true });
        const key = { pk: String(item.pk), sk: String(item.sk) };
        // The key names the subject (an expectation written by hand may leave `part` out).
        const subject = keys.stateSubject(key.pk, key.sk) ?? {
          provider: String(item.provider),
          subjectId: String(item.subjectId),
          ...(item.part === undefined ? {} : { part: String(item.part) }),
        };
        return { key, ...subject, recheckAt: String(item.recheckAt), rechecks: recheckCount(raw.rechecks?.N ?? raw.rechecks?.S) };
      });
    } catch (error) {
      throw fault('Query (byRecheck)', error);
    }
  };

  return {
    async putOnce(item) {
      try {
        await client.send(
          new PutItemCommand({
            TableName: tableName,
            Item: marshall(item, MARSHALL),
            ConditionExpression: 'attribute_not_exists(#pk)',
            ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
          }),
        );
        return 'created';
      } catch (error) {
        // Its own first attempt, answer lost: created by this call, not a duplicate.
        if (isConditionFailure(error)) return (await landedBefore(error, item)) ? 'created' : 'exists';
        if (isItemTooLarge(error)) throw new ItemTooLargeError(`PutItem failed: ${errorMessage(error)}`, { cause: error });
        throw fault('PutItem', error);
      }
    },

    async getItem(key, options = {}) {
      try {
        const result = await client.send(
          new GetItemCommand({ TableName: tableName, Key: marshall(key), ConsistentRead: options.consistent ?? true }),
        );
        return result.Item ? unmarshall(result.Item, { wrapNumbers: exactNumber }) : undefined;
      } catch (error) {
        throw fault('GetItem', error);
      }
    },

    async getState(provider, subjectId, part) {
      const item = await this.getItem(keys.state(provider, subjectId, part));
      return item ? stateOf(item) : undefined;
    },

    async putState(state, expectedVersion) {
      try {
        await client.send(
          new PutItemCommand({
            TableName: tableName,
            Item: marshall(stateItem(state), MARSHALL),
            ...(expectedVersion === undefined
              ? { ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': TABLE.partitionKey } }
              : {
                  // Version 0: an item an application wrote to expect a subject, which has none yet.
                  ConditionExpression: expectedVersion === 0 ? 'attribute_not_exists(#version) OR #version = :version' : '#version = :version',
                  ExpressionAttributeNames: { '#version': 'version' },
                  ExpressionAttributeValues: marshall({ ':version': expectedVersion }),
                }),
          }),
        );
        return 'written';
      } catch (error) {
        // Its own first attempt, answer lost: taken for another's write, a re-check read its own new
        // schedule as its lease taken over and dropped its line (a verdict, stale) unlogged.
        if (isConditionFailure(error)) return (await landedBefore(error, stateItem(state))) ? 'written' : 'conflict';
        throw fault('PutItem (state)', error);
      }
    },

    async dueRechecks(shard, now, limit) {
      return queryRechecks(shard, '#at <= :at', now, limit, true);
    },

    async farRechecks(shard, after, limit) {
      // From the far end: an item written with a time years ahead, or text that sorts after any time, comes first.
      return queryRechecks(shard, '#at > :at', after, limit, false);
    },

    async eventStoredBy(prefix, requestId) {
      let start: Record<string, AttributeValue> | undefined;
      try {
        do {
          const page = await client.send(
            new QueryCommand({
              TableName: tableName,
              KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
              FilterExpression: '#requestId = :requestId',
              ProjectionExpression: '#pk, #sk',
              ExpressionAttributeNames: { '#pk': TABLE.partitionKey, '#sk': TABLE.sortKey, '#requestId': 'requestId' },
              ExpressionAttributeValues: marshall({ ':pk': prefix.pk, ':prefix': prefix.sk, ':requestId': requestId }),
              ConsistentRead: true,
              ...(start ? { ExclusiveStartKey: start } : {}),
            }),
          );
          const [found] = (page.Items ?? []).map((raw) => unmarshall(raw));
          if (found) return { pk: String(found.pk), sk: String(found.sk) };
          start = page.LastEvaluatedKey;
        } while (start);
        return undefined;
      } catch (error) {
        throw fault('Query (event items)', error);
      }
    },

    async claimRecheck(key, seen, leaseUntil) {
      try {
        await client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: marshall(key),
            // A new version too: a worker that read the state before the lease then fails its
            // conditional put and reads it again, instead of writing the old recheckAt back.
            // (An expectation written by hand, as the README shows, may have no version yet.)
            UpdateExpression: 'SET #at = :lease, #version = if_not_exists(#version, :zero) + :one',
            ConditionExpression: '#at = :seen',
            ExpressionAttributeNames: { '#at': TABLE.recheckIndex.sortKey, '#version': 'version' },
            ExpressionAttributeValues: marshall({ ':lease': leaseUntil, ':seen': seen, ':one': 1, ':zero': 0 }),
          }),
        );
        return true;
      } catch (error) {
        // Its own first attempt, answer lost: the lease is this sweep's, its re-check to be queued (not
        // left unasked until the lease runs out).
        if (isConditionFailure(error)) return leasedBefore(error, key, leaseUntil);
        if ((error as Error).name === 'ValidationException') {
          const leased = await leaseOverOddVersion(key, seen, leaseUntil);
          if (leased !== undefined) return leased;
        }
        throw fault('UpdateItem (recheck lease)', error);
      }
    },

    async dropRecheck(key, seen) {
      try {
        await client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: marshall(key),
            UpdateExpression: 'REMOVE #at, #shard',
            ConditionExpression: '#at = :seen',
            ExpressionAttributeNames: { '#at': TABLE.recheckIndex.sortKey, '#shard': TABLE.recheckIndex.partitionKey },
            ExpressionAttributeValues: marshall({ ':seen': seen }),
          }),
        );
        return true;
      } catch (error) {
        if (isConditionFailure(error)) return false;
        throw fault('UpdateItem (drop recheck)', error);
      }
    },

    async recordVerdict(key, verdict) {
      const values: Record<string, unknown> = { ':kind': verdict.kind, ':at': verdict.askedAt, ':one': 1 };
      let set = 'confirmation = :kind, askedAt = :at';
      let remove = '';
      if (verdict.answerStatus === undefined) remove = ' REMOVE confirmedStatus';
      else {
        set += ', confirmedStatus = :answer';
        values[':answer'] = verdict.answerStatus;
      }
      if (verdict.kind === 'mismatch' && verdict.differences?.length) {
        set += ', differences = :differences';
        values[':differences'] = verdict.differences;
      } else remove = remove ? `${remove}, differences` : ' REMOVE differences';
      try {
        await client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: marshall(key),
            UpdateExpression: `SET ${set} ADD asks :one${remove}`,
            // Once per ask: the SDK's retry of an update that landed (its answer lost) finds the
            // ask's time already there, and does not count the ask a second time.
            ConditionExpression: 'attribute_exists(#pk) AND (attribute_not_exists(#askedAt) OR #askedAt <> :at)',
            ExpressionAttributeNames: { '#pk': TABLE.partitionKey, '#askedAt': 'askedAt' },
            ExpressionAttributeValues: marshall(values, MARSHALL),
          }),
        );
      } catch (error) {
        // Not stored yet (the put that follows carries the verdict), or this ask already recorded.
        if (isConditionFailure(error)) return;
        throw fault('UpdateItem (verdict)', error);
      }
    },
  };
}
