import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LOCAL_AWS, ensureTable, startDynamoDbLocal, type DynamoDbLocal } from '../../local/engines.ts';
import { startStatusSimulator, type StatusSimulator } from '../../local/status-simulator.ts';
import { allKits } from '../providers/index.ts';

/** DynamoDB Local with the table, and a simulated status endpoint for every provider the worker asks. */
export interface TableAndSimulators {
  readonly dynamo: DynamoDbLocal;
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** By provider id: each asked provider's simulated status endpoint. */
  readonly simulators: Readonly<Record<string, StatusSimulator>>;
  /** Every provider's secret for the suite (`tag`), the asked ones pointed at their simulator. */
  readonly secrets: Readonly<Record<string, Record<string, unknown>>>;
  /** The same, with asking turned on where a provider makes it opt-in (TeleSign's statusLookup). */
  readonly askingSecrets: Readonly<Record<string, Record<string, unknown>>>;
  stop(): Promise<void>;
}

/**
 * Start DynamoDB Local and one status simulator per kit that has a `statusSimulation`, each with
 * the credentials of the suite's secret (tagged `tag`), and point those secrets at them.
 */
export async function startTableAndSimulators(tableName: string, tag: string): Promise<TableAndSimulators> {
  const kits = allKits();
  const base = Object.fromEntries(kits.map((kit) => [kit.provider.id, kit.secret(tag)]));
  const asked = kits.filter((kit) => kit.statusSimulation);
  const [dynamo, ...started] = await Promise.all([
    startDynamoDbLocal(),
    ...asked.map((kit) => startStatusSimulator(kit.statusSimulation!(kit.provider.secretSchema.parse(base[kit.provider.id])))),
  ]);
  const simulators = Object.fromEntries(asked.map((kit, index) => [kit.provider.id, started[index] as StatusSimulator]));
  const secretsWith = (asks: boolean) =>
    Object.fromEntries(kits.map((kit) => [kit.provider.id, simulators[kit.provider.id] ? kit.secret(tag, { statusEndpoint: simulators[kit.provider.id].baseUrl, asks }) : base[kit.provider.id]]));
  const secrets = secretsWith(false);
  const askingSecrets = secretsWith(true);
  const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint: (dynamo as DynamoDbLocal).endpoint });
  const stop = async () => {
    client.destroy();
    await Promise.all([(dynamo as DynamoDbLocal).stop(), ...Object.values(simulators).map((simulator) => simulator.stop())]);
  };
  try {
    await ensureTable(client, tableName);
  } catch (error) {
    await stop();
    throw error;
  }
  return { dynamo: dynamo as DynamoDbLocal, client, tableName, simulators, secrets, askingSecrets, stop };
}
