import {
  ConditionalCheckFailedException,
  GetItemCommand,
  PutItemCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { DependencyError, errorMessage } from './errors.ts';
import { TABLE, keys } from './pipeline-definition.ts';
import type { StateItem } from './state.ts';

/** An item as stored: plain JS values, keys included. */
export type Item = Record<string, unknown>;

/** The worker's view of the table. Expected outcomes are values; faults are DependencyErrors. */
export interface CallbackStore {
  /** Store an item once: `created`, or `exists` if an item with its key is already there. */
  putOnce(item: Item): Promise<'created' | 'exists'>;
  getItem(key: { pk: string; sk: string }): Promise<Item | undefined>;
  getState(provider: string, subjectId: string): Promise<StateItem | undefined>;
  /** Write a state item if nobody else wrote it since `expectedVersion` was read. */
  putState(state: StateItem, expectedVersion: number | undefined): Promise<'written' | 'conflict'>;
}

const MARSHALL = { removeUndefinedValues: true, convertClassInstanceToMap: false } as const;

/** Attributes that exist for the index, derived from the state's own fields. */
function stateItem(state: StateItem): Item {
  return {
    ...keys.state(state.provider, state.subjectId),
    [TABLE.outcomeIndex.partitionKey]: keys.outcome(state.provider, state.outcome),
    ...state,
  };
}

export function createDynamoStore(client: DynamoDBClient, tableName: string): CallbackStore {
  const fault = (action: string, error: unknown) =>
    new DependencyError('dynamodb', `${action} failed: ${errorMessage(error)}`, { cause: error });

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
        if (error instanceof ConditionalCheckFailedException || (error as Error).name === 'ConditionalCheckFailedException') return 'exists';
        throw fault('PutItem', error);
      }
    },

    async getItem(key) {
      try {
        const result = await client.send(new GetItemCommand({ TableName: tableName, Key: marshall(key), ConsistentRead: true }));
        return result.Item ? unmarshall(result.Item) : undefined;
      } catch (error) {
        throw fault('GetItem', error);
      }
    },

    async getState(provider, subjectId) {
      const item = await this.getItem(keys.state(provider, subjectId));
      if (!item) return undefined;
      const { pk: _pk, sk: _sk, providerOutcome: _po, ...state } = item;
      return { eventHashes: [], ...state } as unknown as StateItem;
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
                  ConditionExpression: '#version = :version',
                  ExpressionAttributeNames: { '#version': 'version' },
                  ExpressionAttributeValues: marshall({ ':version': expectedVersion }),
                }),
          }),
        );
        return 'written';
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException || (error as Error).name === 'ConditionalCheckFailedException') return 'conflict';
        throw fault('PutItem (state)', error);
      }
    },
  };
}
