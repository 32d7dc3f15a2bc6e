import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { keys } from '../functions/core/pipeline-definition.ts';
import { getProvider, providers } from '../functions/providers/index.ts';
import { LOCAL_AWS } from './engines.ts';
import { dataDirFrom, parseCli, positiveInt } from './cli-args.ts';
import { readRuntimeInfo } from './pipeline.ts';
import type { AnyProvider } from '../functions/providers/provider.ts';
import { authenticRequest, findSample, listSamples, type Sample } from './samples.ts';
import { loadSecretsFile, providerSecret, SecretsFileError } from './secrets-file.ts';
import { kitOf, secretsFor } from '../test/providers/index.ts';

const USAGE = `usage: npm run send -- <provider> [sample] [--url BASE] [--secrets FILE] [--repeat N] [--list]
       npm run send -- <provider> [sample] --status-later STATUS [--endpoint-only]

  Sends a correctly authenticated sample callback (TeleSign signed, tokens and keys from the secrets
  file) to the local pipeline, or to a deployed API with --url https://xxxx.execute-api.REGION.amazonaws.com.

  --list           list every provider's samples
  --url BASE       API base URL (default: the running local pipeline)
  --secrets FILE   secrets to authenticate with (default: the local pipeline's, else the development ones)
  --repeat N       send the same callback N times (shows dedupe)
  --status-later S after sending, the simulated status endpoint answers status S for this subject
                   (e.g. COMPLETED): watch the next re-check correct the stored status
  --endpoint-only  tell the simulated status endpoint only and send no callback (a callback the
                   provider lost: pair it with npm run expect)
  --data-dir DIR   the local pipeline's data folder (default: .local-data)`;

const { values, positionals } = parseCli(
  {
    url: { type: 'string' },
    secrets: { type: 'string' },
    repeat: { type: 'string' },
    list: { type: 'boolean', default: false },
    'status-later': { type: 'string' },
    'endpoint-only': { type: 'boolean', default: false },
    'data-dir': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  USAGE,
);

if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (values.list) {
  for (const provider of providers) {
    const valid = listSamples(provider.id).map((sample) => sample.name);
    const invalid = listSamples(provider.id, 'invalid').map((sample) => `invalid/${sample.name}`);
    console.log(`${provider.id.padEnd(10)} ${[...valid, ...invalid].join(', ')}`);
  }
  process.exit(0);
}
if (positionals.length === 0) {
  console.error(USAGE);
  process.exit(2);
}

const [providerId, sampleName] = positionals;
let provider: AnyProvider;
let sample: Sample;
try {
  provider = getProvider(providerId);
  sample = findSample(provider.id, sampleName);
} catch (error) {
  console.error((error as Error).message);
  process.exit(2);
}
const runtime = readRuntimeInfo(dataDirFrom(values['data-dir']));
const baseUrl = (values.url ?? runtime?.baseUrl ?? `http://127.0.0.1:${process.env.PORT ?? 3000}`).replace(/\/+$/, '');
const secretsPath = values.secrets ?? (values.url ? undefined : runtime?.secretsFile);
let secret: Record<string, unknown>;
try {
  secret = providerSecret(secretsPath ? loadSecretsFile(secretsPath) : secretsFor('fake-local-dev'), provider);
} catch (error) {
  console.error(error instanceof SecretsFileError ? error.message : String(error));
  process.exit(1);
}
const repeat = positiveInt('repeat', values.repeat, 1) || 1;
const request = authenticRequest(provider, secret, sample);
const parsed = sample.body !== undefined || sample.query !== undefined ? describeSample() : undefined;

/** Subject of the sample, so the output can say what to inspect. */
function describeSample() {
  const [, query = ''] = request.path.split('?');
  const result = provider.parse({
    method: request.method,
    headers: request.headers,
    body: request.body ?? Buffer.alloc(0),
    rawQuery: query,
    sourceIp: '127.0.0.1',
    requestId: 'send',
    receivedAt: new Date().toISOString(),
  });
  return result.ok ? provider.describe(result.payload, secret) : undefined;
}

// Offline: tell the provider's simulated status endpoint about the subject, as the provider would know it.
const simulatorUrl = values.url ? undefined : runtime?.simulators?.[provider.id];
const kit = kitOf(provider);
const statusLater = values['status-later'];
if ((statusLater !== undefined || values['endpoint-only']) && !(simulatorUrl && parsed && kit.statusAnswer && kit.statusSimulation)) {
  console.error(
    `--status-later and --endpoint-only need the local pipeline's simulated ${provider.displayName} status endpoint` +
      (provider.lookup ? ' (npm start with the development secrets, or --simulators)' : `; ${provider.displayName} has no status endpoint`),
  );
  process.exit(2);
}

/** Tell the simulated endpoint to answer `status` (default: the sample's own) for the sample's subject. */
async function simulatorReports(status?: string): Promise<void> {
  if (!simulatorUrl || !parsed || !kit.statusAnswer || !kit.statusSimulation) return;
  const answer = kit.statusAnswer(sample, status);
  const said = provider.describe(answer, secret);
  const response = await fetch(`${simulatorUrl}/__simulator/answers`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${kit.statusSimulation(secret).controlToken}` },
    body: JSON.stringify(answer),
  });
  const meaning = `${said.outcome}${said.terminal ? ', final' : ''}`;
  console.log(`(simulated ${provider.displayName} status endpoint now reports ${parsed.subjectId} as ${said.status}, ${meaning}: ${response.status})`);
}
await simulatorReports();
if (values['endpoint-only']) {
  if (statusLater !== undefined) await simulatorReports(statusLater);
  console.log(`\nno callback sent. subject: ${parsed!.subjectId}   expect it with: npm run expect -- ${provider.id} '${parsed!.subjectId}'`);
  process.exit(0);
}

/** The path with its secret token shortened, so the output can be shared. */
const shownPath = request.path.replace(/(\/callbacks\/[^/]+\/)([^/?]+)/, (_, prefix: string, token: string) => `${prefix}${token.slice(0, 4)}…`);
for (let attempt = 1; attempt <= repeat; attempt++) {
  console.log(`→ ${request.method} ${baseUrl}${shownPath}${repeat > 1 ? `   (${attempt}/${repeat})` : ''}`);
  if (attempt === 1) {
    for (const [name, value] of Object.entries(request.headers)) {
      console.log(`  ${name}: ${name === 'authorization' ? `${value.slice(0, 12)}…` : value}`);
    }
    if (request.body) console.log(`  (${request.body.length} bytes: ${sample.provider}/${sample.name})`);
  }
  let response: Response;
  try {
    response = await fetch(`${baseUrl}${request.path}`, {
      method: request.method,
      headers: request.headers,
      ...(request.body ? { body: request.body } : {}),
    });
  } catch (error) {
    console.error(`✗ cannot reach ${baseUrl}: ${(error as Error).cause ?? (error as Error).message}. Is \`npm start\` running?`);
    process.exit(1);
  }
  const text = await response.text();
  console.log(`← ${response.status} ${text}`);
  if (!response.ok) process.exitCode = 1;
}
/** Wait (up to 15 s) until the worker has stored the subject's state, so a later answer is news to a re-check, not to the first ask. */
async function waitForState(): Promise<void> {
  if (!runtime || !parsed) return;
  const dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: runtime.dynamodbEndpoint });
  const key = marshall(keys.state(provider.id, parsed.subjectId, parsed.part));
  try {
    for (const deadline = Date.now() + 15_000; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 200))) {
      if ((await dynamo.send(new GetItemCommand({ TableName: runtime.tableName, Key: key, ConsistentRead: true }))).Item) return;
    }
  } finally {
    dynamo.destroy();
  }
}

if (statusLater !== undefined && process.exitCode !== 1) {
  await waitForState();
  await simulatorReports(statusLater);
  console.log(`  the next re-check (npm start's schedule: ${runtime?.reconcile?.intervalsSeconds.map((s) => `${s}s`).join(', ') ?? 'default'}) applies it`);
}
if (parsed && process.exitCode !== 1) {
  console.log(`\nsubject: ${parsed.subjectId}   see it with: npm run inspect -- ${provider.id} '${parsed.subjectId}'`);
}
