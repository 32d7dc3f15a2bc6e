import {
  GetItemCommand,
  PutItemCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { TABLE } from '../core/pipeline-definition.ts';
import { isConditionFailure, sameItem, sentAgain } from './dynamo-store.ts';
import type { RelayStore, SendCount } from '../core/relay.ts';
import type { Item } from '../core/store.ts';
import { DependencyError, errorMessage } from '../shared/errors.ts';

const MARSHALL = { removeUndefinedValues: true, convertClassInstanceToMap: false } as const;

/**
 * The relay's reads and writes. It reads the stored instruction it is about to send, and the relay
 * item of one no longer stored (GetItem, granted on the instruction providers' partitions only).
 * It writes its own with PutItem and UpdateItem: a failed condition hands back the item as it is
 * (`ReturnValuesOnConditionCheckFailure: ALL_OLD`), so it never reads those. TransactWriteItems
 * needs no permission of its own: "Permissions
 * for Put, Update, Delete, and Get actions are governed by the permissions used for the underlying
 * PutItem, UpdateItem, DeleteItem, and GetItem operations"
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html).
 */
export function createRelayStore(client: DynamoDBClient, tableName: string): RelayStore {
  const fault = (action: string, error: unknown) => new DependencyError('dynamodb', `${action} failed: ${errorMessage(error)}`, { cause: error });
  const oldItem = (error: unknown): Item | undefined => {
    const item = (error as { Item?: Record<string, AttributeValue> }).Item;
    return item ? unmarshall(item) : undefined;
  };
  /** Whether `item` (as DynamoDB returned it) holds each of `fields` (those set) as they are. */
  const holdsFields = (item: Record<string, AttributeValue> | undefined, fields: Item): boolean => {
    if (!item) return false;
    const set = Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
    const expected = marshall(set, MARSHALL);
    return sameItem(Object.fromEntries(Object.keys(expected).flatMap((name) => (item[name] === undefined ? [] : [[name, item[name]]]))), expected);
  };

  /**
   * An UpdateItem setting `fields` (and counting an attempt), under an optional condition; with
   * `whereAbsent`, each only where the item has none yet (a repeat leaves it as the first write did).
   */
  const updateInput = (key: Item, fields: Item, countAttempt: boolean, expected?: { status?: string; attempt?: string }, whereAbsent = false) => {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const sets = Object.entries(fields)
      .filter(([, value]) => value !== undefined)
      .map(([name, value], index) => {
        names[`#f${index}`] = name;
        values[`:f${index}`] = value;
        return whereAbsent ? `#f${index} = if_not_exists(#f${index}, :f${index})` : `#f${index} = :f${index}`;
      });
    const conditions: string[] = [];
    if (expected?.status !== undefined) {
      names['#status'] = 'status';
      values[':expectedStatus'] = expected.status;
      conditions.push('#status = :expectedStatus');
    }
    if (expected?.attempt !== undefined) {
      names['#attempt'] = 'attempt';
      values[':expectedAttempt'] = expected.attempt;
      conditions.push('#attempt = :expectedAttempt');
    }
    if (countAttempt) {
      names['#attempts'] = 'attempts';
      values[':one'] = 1;
    }
    return {
      TableName: tableName,
      Key: marshall({ pk: key.pk, sk: key.sk }),
      UpdateExpression: `SET ${sets.join(', ')}${countAttempt ? ' ADD #attempts :one' : ''}`,
      ...(conditions.length ? { ConditionExpression: conditions.join(' AND ') } : {}),
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: marshall(values, MARSHALL),
    };
  };

  /** One more on a number's count for an hour, with no condition: an SMS that has left (the count made at 1 if none). */
  const countOne = (count: Pick<SendCount, 'key' | 'expiresAt'>) => ({
    TableName: tableName,
    Key: marshall({ pk: count.key.pk, sk: count.key.sk }),
    UpdateExpression: 'SET #expires = if_not_exists(#expires, :expires) ADD #count :one',
    ExpressionAttributeNames: { '#count': 'count', '#expires': TABLE.ttlAttribute },
    ExpressionAttributeValues: marshall({ ':one': 1, ':expires': count.expiresAt }),
  });

  /** A conditional UpdateItem of a relay marker: false when its condition on `latestAt`/`latestEventId` fails. */
  const markerUpdate = async (key: Item, fields: Item, condition: string, position: { at: string; eventId: string }): Promise<boolean> => {
    const { ExpressionAttributeNames, ExpressionAttributeValues, ...input } = updateInput(key, fields, false);
    try {
      await client.send(
        new UpdateItemCommand({
          ...input,
          ConditionExpression: condition,
          ExpressionAttributeNames: { ...ExpressionAttributeNames, '#at': 'latestAt', '#id': 'latestEventId' },
          ExpressionAttributeValues: { ...ExpressionAttributeValues, ...marshall({ ':at': position.at, ':id': position.eventId }) },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw fault('UpdateItem (relay marker)', error);
    }
  };

  return {
    async read(key) {
      try {
        const { Item } = await client.send(new GetItemCommand({ TableName: tableName, Key: marshall({ pk: key.pk, sk: key.sk }), ConsistentRead: true }));
        return Item ? unmarshall(Item) : undefined;
      } catch (error) {
        throw fault('GetItem', error);
      }
    },

    async create(item) {
      try {
        await client.send(
          new PutItemCommand({
            TableName: tableName,
            Item: marshall(item, MARSHALL),
            ConditionExpression: 'attribute_not_exists(#pk)',
            ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        );
        return { created: true };
      } catch (error) {
        if (!isConditionFailure(error)) throw fault('PutItem (relay)', error);
        // This very item, written by the SDK's earlier attempt whose answer was lost (a timeout): created
        // by this delivery, not found `claimed` by another one in flight (given back, the code held up).
        const raw = (error as { Item?: Record<string, AttributeValue> }).Item;
        if (raw && sentAgain(error) && sameItem(raw, marshall(item, MARSHALL))) return { created: true };
        const existing = oldItem(error);
        if (!existing) throw fault('PutItem (relay)', new Error('the condition failed and the item was not returned'));
        return { created: false, existing };
      }
    },

    async update(key, expected, fields, countAttempt = false) {
      try {
        await client.send(new UpdateItemCommand({ ...updateInput(key, fields, countAttempt, expected), ReturnValuesOnConditionCheckFailure: 'ALL_OLD' }));
        return { ok: true };
      } catch (error) {
        // Refused on the SDK's retry, the item holding every field this update sets (a fresh attempt
        // token, its time to the millisecond): its earlier attempt landed, answer lost. Taken for
        // another delivery's, a claim was held back as a send in flight, an `uncertain` went unlogged.
        if (isConditionFailure(error) && sentAgain(error) && holdsFields((error as { Item?: Record<string, AttributeValue> }).Item, fields)) return { ok: true };
        if (isConditionFailure(error)) return { ok: false, current: oldItem(error) };
        throw fault('UpdateItem (relay)', error);
      }
    },

    async advance(key, position, fields) {
      // Later, or the same instruction again (a redelivery keeps its place); a tie goes to the first.
      return markerUpdate(key, { ...fields, latestAt: position.at, latestEventId: position.eventId }, 'attribute_not_exists(#at) OR #at < :at OR (#at = :at AND #id = :id)', position);
    },

    async beginSend(key, attempt, marker, position, fields, count) {
      // Both as UpdateItems (a ConditionCheck would need a permission of its own): the marker's
      // `checkedAt` written only if it is still at `position`, the item moved only if still ours.
      const markerInput = updateInput(marker, { checkedAt: String(fields.updatedAt ?? new Date().toISOString()) }, false);
      const markerUpdate = {
        ...markerInput,
        ConditionExpression: '#at = :at AND #id = :id',
        ExpressionAttributeNames: { ...markerInput.ExpressionAttributeNames, '#at': 'latestAt', '#id': 'latestEventId' },
        ExpressionAttributeValues: { ...markerInput.ExpressionAttributeValues, ...marshall({ ':at': position.at, ':id': position.eventId }) },
      };
      const itemUpdate = { ...updateInput(key, fields, false, { status: 'claimed', attempt }), ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const };
      // The number's count for the hour, one more if below the cap (made at 1 if none): in the same
      // transaction, so it counts a send that starts, and only that. The SDK's retry of a transaction
      // whose answer was lost carries the same ClientRequestToken, which DynamoDB answers as done
      // without writing again (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
      const countUpdate = count && {
        TableName: tableName,
        Key: marshall({ pk: count.key.pk, sk: count.key.sk }),
        UpdateExpression: 'SET #expires = if_not_exists(#expires, :expires) ADD #count :one',
        ConditionExpression: 'attribute_not_exists(#count) OR #count < :cap',
        ExpressionAttributeNames: { '#count': 'count', '#expires': TABLE.ttlAttribute },
        ExpressionAttributeValues: marshall({ ':one': 1, ':cap': count.cap, ':expires': count.expiresAt }),
      };
      try {
        await client.send(new TransactWriteItemsCommand({ TransactItems: [{ Update: markerUpdate }, { Update: itemUpdate }, ...(countUpdate ? [{ Update: countUpdate }] : [])] }));
        return { started: true };
      } catch (error) {
        const reasons = error instanceof TransactionCanceledException || (error as Error).name === 'TransactionCanceledException' ? ((error as TransactionCanceledException).CancellationReasons ?? []) : [];
        if (reasons[0]?.Code === 'ConditionalCheckFailed') return { started: false, superseded: true };
        if (reasons[1]?.Code === 'ConditionalCheckFailed') return { started: false, superseded: false, current: reasons[1].Item ? unmarshall(reasons[1].Item) : undefined };
        if (reasons[2]?.Code === 'ConditionalCheckFailed') return { started: false, superseded: false, overCap: true };
        throw fault('TransactWriteItems (relay send)', error);
      }
    },

    async meet(key, fields) {
      // One UpdateItem either side makes: each field set only where the item has none, the item as it
      // is then read back (ALL_NEW), so the second side to come always sees the first's.
      try {
        const { Attributes } = await client.send(new UpdateItemCommand({ ...updateInput(key, fields, false, undefined, true), ReturnValues: 'ALL_NEW' }));
        return Attributes ? unmarshall(Attributes) : {};
      } catch (error) {
        throw fault('UpdateItem (relay meeting)', error);
      }
    },

    async joinReference(key, referenceId, fields) {
      const { ExpressionAttributeNames, ExpressionAttributeValues, ...input } = updateInput(key, { ...fields, referenceId }, false, { status: 'uncertain' }, true);
      try {
        const { Attributes } = await client.send(
          new UpdateItemCommand({
            ...input,
            // Still uncertain, and no other reference (this one again: a redelivery, joined already).
            ConditionExpression: `${input.ConditionExpression} AND (attribute_not_exists(#reference) OR #reference = :reference)`,
            ExpressionAttributeNames: { ...ExpressionAttributeNames, '#reference': 'referenceId' },
            ExpressionAttributeValues: { ...ExpressionAttributeValues, ...marshall({ ':reference': referenceId }) },
            ReturnValues: 'ALL_NEW',
          }),
        );
        return Attributes ? unmarshall(Attributes) : undefined;
      } catch (error) {
        if (isConditionFailure(error)) return undefined;
        throw fault('UpdateItem (relay reference)', error);
      }
    },

    async giveBack(count, attempt) {
      try {
        await client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: marshall({ pk: count.pk, sk: count.sk }),
            // Never below 0, never an item made, and once per attempt: the attempt's token is kept in
            // `givenBack`, so the SDK's retry of a decrement whose answer was lost (a timeout) takes
            // nothing more. Taken twice, the count allowed one more SMS than the cap within its hour.
            UpdateExpression: 'ADD #count :minusOne, #given :attempts',
            ConditionExpression: '#count > :zero AND NOT contains(#given, :attempt)',
            ExpressionAttributeNames: { '#count': 'count', '#given': 'givenBack' },
            ExpressionAttributeValues: marshall({ ':minusOne': -1, ':zero': 0, ':attempts': new Set([attempt]), ':attempt': attempt }),
          }),
        );
      } catch (error) {
        if (isConditionFailure(error)) return;
        throw fault('UpdateItem (relay count given back)', error);
      }
    },

    async addOtherReferences(key, referenceIds, count) {
      // Counted, each reference the item does not hold yet, in one transaction with its add: a
      // redelivered report (the reference there already) counts nothing, nor does a gone item. The
      // SDK's retry of a transaction whose answer was lost carries the same ClientRequestToken, which
      // DynamoDB answers as done without writing again
      // (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
      if (count) for (const reference of new Set(referenceIds)) {
        const add = {
          TableName: tableName,
          Key: marshall({ pk: key.pk, sk: key.sk }),
          UpdateExpression: 'ADD #others :references',
          ConditionExpression: 'attribute_exists(#pk) AND NOT contains(#others, :reference)',
          ExpressionAttributeNames: { '#others': 'otherReferenceIds', '#pk': TABLE.partitionKey },
          ExpressionAttributeValues: { ':references': { SS: [reference] }, ':reference': { S: reference } },
        };
        try {
          await client.send(new TransactWriteItemsCommand({ TransactItems: [{ Update: add }, { Update: countOne(count) }] }));
        } catch (error) {
          const reasons = error instanceof TransactionCanceledException || (error as Error).name === 'TransactionCanceledException' ? ((error as TransactionCanceledException).CancellationReasons ?? []) : [];
          if (reasons[0]?.Code !== 'ConditionalCheckFailed') throw fault('TransactWriteItems (relay other reference counted)', error);
        }
      }
      try {
        const { Attributes } = await client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: marshall({ pk: key.pk, sk: key.sk }),
            // A string set: adding a reference already there changes nothing. Never makes an item.
            UpdateExpression: 'ADD #others :references',
            ConditionExpression: 'attribute_exists(#pk)',
            ExpressionAttributeNames: { '#others': 'otherReferenceIds', '#pk': TABLE.partitionKey },
            ExpressionAttributeValues: { ':references': { SS: [...new Set(referenceIds)] } },
            ReturnValues: 'ALL_NEW',
          }),
        );
        return Attributes ? unmarshall(Attributes) : undefined;
      } catch (error) {
        if (isConditionFailure(error)) return undefined;
        throw fault('UpdateItem (relay other references)', error);
      }
    },

    async recordSent(key, attempt, fields, link, count) {
      const put = { Put: { TableName: tableName, Item: marshall(link, MARSHALL) } };
      // One more on the number's count, with no condition: the SMS has left (made at 1 if none).
      const counted = count ? [{ Update: countOne(count) }] : [];
      try {
        await client.send(new TransactWriteItemsCommand({ TransactItems: [{ Update: updateInput(key, fields, false, { attempt }) }, put, ...counted] }));
        return;
      } catch (error) {
        const conditionFailed =
          error instanceof TransactionCanceledException && (error.CancellationReasons ?? []).some((reason) => reason.Code === 'ConditionalCheckFailed');
        if (!conditionFailed) throw fault('TransactWriteItems (relay sent)', error);
      }
      // Another attempt's token is on the item: the send happened all the same, and says so.
      try {
        await client.send(new TransactWriteItemsCommand({ TransactItems: [{ Update: updateInput(key, fields, false) }, put, ...counted] }));
      } catch (error) {
        throw fault('TransactWriteItems (relay sent)', error);
      }
    },
  };
}
