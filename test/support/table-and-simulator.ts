import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LOCAL_AWS, ensureTable, startDynamoDbLocal, type DynamoDbLocal } from '../../local/engines.ts';
import { startTemboPlusSimulator, type TemboPlusSimulator } from '../../local/temboplus-simulator.ts';

/** DynamoDB Local (in memory) with the stack's table, plus the TemboPlus status simulator. */
export interface TableAndSimulator {
  readonly dynamo: DynamoDbLocal;
  readonly simulator: TemboPlusSimulator;
  readonly client: DynamoDBClient;
  readonly tableName: string;
  stop(): Promise<void>;
}

/** Start both (once per test file); if the table cannot be created, nothing is left running. */
export async function startTableAndSimulator(tableName: string, apiToken: string): Promise<TableAndSimulator> {
  const [dynamo, simulator] = await Promise.all([startDynamoDbLocal(), startTemboPlusSimulator({ apiToken })]);
  const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint: dynamo.endpoint });
  const stop = async () => {
    client.destroy();
    await Promise.all([dynamo.stop(), simulator.stop()]);
  };
  try {
    await ensureTable(client, tableName);
  } catch (error) {
    await stop();
    throw error;
  }
  return { dynamo, simulator, client, tableName, stop };
}
