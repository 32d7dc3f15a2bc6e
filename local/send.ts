import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { keys } from '../functions/core/pipeline-definition.ts';
import { getProvider, providers } from '../functions/providers/index.ts';
import { maskPhoneNumbers, maskUrlSecrets } from '../functions/shared/log.ts';
import { LOCAL_AWS } from './engines.ts';
import { checkArguments, COUNT_RANGE, dataDirFrom, dataDirHint, intFlag, parseCli } from './cli-args.ts';
import { alignColumns, failed, printJson, say } from './cli-output.ts';
import { readRuntimeInfo } from './pipeline.ts';
import type { AnyProvider } from '../functions/providers/provider.ts';
import { authenticRequest, findSample, listSamples, shownRequestPath, type Sample } from './samples.ts';
import { loadSecretsFile, providerSecret, SecretsFileError } from './secrets-file.ts';
import { kitOf, secretsFor } from '../test/providers/index.ts';

const USAGE = `usage: npm run send -- <provider> [sample] [--url BASE] [--secrets FILE] [--repeat N] [--json]
       npm run send -- <provider> [sample] --status-later STATUS [--endpoint-only] [--json]
       npm run send -- --list [--json]

  Sends a correctly authenticated sample callback (TeleSign signed, tokens and keys from the secrets
  file) to the local pipeline, or to a deployed API with --url https://xxxx.execute-api.REGION.amazonaws.com
  (or its custom domain, https://callbacks.example.com, the only one answering with disableExecuteApiEndpoint).
  [sample] is one of the provider's samples in --list; without it, the first one listed.

  --list           list every provider's samples
  --url BASE       API base URL (default: the running local pipeline)
  --secrets FILE   secrets to authenticate with (default: the local pipeline's, else the development ones)
  --repeat N       send the same callback N times, 1 to 1000 (shows dedupe)
  --status-later S after sending, the simulated status endpoint answers status S for this subject
                   (e.g. COMPLETED): watch the next re-check correct the stored status
  --endpoint-only  tell the simulated status endpoint only and send no callback (a callback the
                   provider lost: pair it with npm run expect)
  --json           print one JSON document on stdout: {provider, sample, url, subject, requests:
                   [{attempt, method, path, statusCode, body}], statusEndpoint}; progress goes to stderr
  --show-sensitive print a recipient's phone number in full (subject.part, the request line); without it,
                   masked as in a log line and in npm run inspect, its last three digits shown
  --data-dir DIR   the local pipeline's data folder (default: .local-data)

  The responses are the output (stdout); the request lines and hints go to stderr.`;

const { values, positionals } = parseCli(
  {
    url: { type: 'string' },
    secrets: { type: 'string' },
    repeat: { type: 'string' },
    list: { type: 'boolean', default: false },
    'status-later': { type: 'string' },
    'endpoint-only': { type: 'boolean', default: false },
    'data-dir': { type: 'string' },
    json: { type: 'boolean', default: false },
    'show-sensitive': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
  USAGE,
);
const json = values.json;
/** A phone number as this command prints it: masked as a log line and `npm run inspect` mask it, unless --show-sensitive. */
const shownNumbers = (text: string): string => (values['show-sensitive'] ? text : maskPhoneNumbers(text));
const repeat = intFlag('repeat', values.repeat, COUNT_RANGE, 1);
if (values.list) {
  // --list names no provider or sample: a word beside it is refused, not a listing as if it were not there.
  checkArguments(positionals, USAGE, []);
  const samples = Object.fromEntries(
    providers.map((provider) => [
      provider.id,
      [...listSamples(provider.id).map((sample) => sample.name), ...listSamples(provider.id, 'invalid').map((sample) => `invalid/${sample.name}`)],
    ]),
  );
  if (json) printJson(samples);
  else for (const row of alignColumns(Object.entries(samples).map(([id, names]) => [id, names.join(', ')]))) console.log(row.join(' '));
  process.exit(0);
}
checkArguments(positionals, USAGE, ['<provider>'], ['[sample]']);

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
// A data folder named (--data-dir, or CALLBACK_GATEWAY_DATA_DIR) is the pipeline to send to: with
// none running there, the port-3000 fallback would send to another pipeline (the default folder's)
// and its table.
if (!runtime && !values.url && (values['data-dir'] !== undefined || process.env.CALLBACK_GATEWAY_DATA_DIR !== undefined)) {
  const startHint = dataDirHint(values['data-dir']);
  failed(`no local pipeline is running with the data folder ${dataDirFrom(values['data-dir'])} (start it with \`npm start${startHint ? ` --${startHint}` : ''}\`), or pass --url BASE`, json);
}
const baseUrl = (values.url ?? runtime?.baseUrl ?? `http://127.0.0.1:${process.env.PORT ?? 3000}`).replace(/\/+$/, '');
const secretsPath = values.secrets ?? (values.url ? undefined : runtime?.secretsFile);
let secret: Record<string, unknown>;
try {
  secret = providerSecret(secretsPath ? loadSecretsFile(secretsPath) : secretsFor('fake-local-dev'), provider);
} catch (error) {
  // With --json, said as the document's `error` too, as every --json command says a failure.
  failed(error instanceof SecretsFileError ? error.message : String(error), json);
}
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
    // As API Gateway fills them from the route (Standard Webhooks: the source the subject is under).
    pathParameters: provider.routeParameters?.(secret) ?? {},
    sourceIp: '127.0.0.1',
    requestId: 'send',
    receivedAt: new Date().toISOString(),
  });
  if (!result.ok) return undefined;
  // A payload that parses but names no subject (a Standard Webhooks body without its subjectField)
  // is one the ingest quarantines: it is sent all the same, about no subject.
  try {
    return provider.describe(result.payload, secret);
  } catch {
    return undefined;
  }
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

/** What `--json` prints: everything this run did, in the order it did it. */
interface SendReport {
  readonly provider: string;
  readonly sample: string;
  /** The API base the callbacks went to. */
  readonly url: string;
  /** The subject the sample is about (null for a sample that does not parse, e.g. invalid/…). */
  readonly subject: { subjectId: string; part?: string; status: string; outcome: string; terminal: boolean } | null;
  /** Each callback sent: the response's status code and body (its JSON, or its text), or why none came. */
  readonly requests: { attempt: number; method: string; path: string; statusCode?: number; body?: unknown; error?: string }[];
  /** What the simulated status endpoint was told to answer for the subject, and its status code (or why it could not be told). */
  readonly statusEndpoint: { status: string; outcome: string; terminal: boolean; statusCode?: number; error?: string }[];
  /** With --repeat on the local runtime: deliveries made, and the callbacks the subject's state counted new meanwhile (1: stored once). */
  dedupe?: { deliveries: number; newCallbacks: number };
}
const report: SendReport = {
  provider: provider.id,
  sample: `${sample.provider}/${sample.name}`,
  url: baseUrl,
  subject: parsed
    ? { subjectId: parsed.subjectId, ...(parsed.part === undefined ? {} : { part: shownNumbers(parsed.part) }), status: parsed.status, outcome: parsed.outcome, terminal: parsed.terminal }
    : null,
  requests: [],
  statusEndpoint: [],
};

/** The response body as a reader wants it: parsed when it is JSON, else its text. */
function bodyOf(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Tell the simulated endpoint to answer `status` (default: the sample's own) for the sample's subject. */
async function simulatorReports(status?: string): Promise<void> {
  if (!simulatorUrl || !parsed || !kit.statusAnswer || !kit.statusSimulation) return;
  // A sample that carries no status (an instruction such as Identomat's one-time password) is about a
  // subject the provider knows all the same: its endpoint reports it under way.
  // Only as a first answer, though: a session the endpoint already reports as approved stays so.
  const underWay = status === undefined && (parsed.status === undefined || parsed.status === null || parsed.placesStatus === false);
  const reported = underWay ? kit.pendingStatus : status;
  if (underWay && reported === undefined) return;
  const answer = kit.statusAnswer(sample, reported);
  const said = provider.describe((kit.answerAsPayload?.(answer) ?? answer) as never, secret);
  if (said.status === undefined || said.status === null) return;
  let response: Response;
  try {
    response = await fetch(`${simulatorUrl}/__simulator/answers${underWay ? '?ifAbsent=true' : ''}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${kit.statusSimulation(secret).controlToken}` },
      body: JSON.stringify(answer),
    });
  } catch (error) {
    // The endpoint runtime.json names does not answer (its pipeline going, or gone a moment ago):
    // said as the API's own absence is, not as a stack trace.
    const reason = `cannot reach the simulated ${provider.displayName} status endpoint at ${simulatorUrl}: ${String((error as Error).cause ?? (error as Error).message)}`;
    say(`✗ ${reason}. Is \`npm start\` running?`);
    report.statusEndpoint.push({ status: said.status, outcome: said.outcome, terminal: said.terminal, error: reason });
    if (json) printJson(report);
    process.exit(1);
  }
  const kept = response.ok && ((await response.json().catch(() => ({}))) as { kept?: boolean }).kept === true;
  if (kept) {
    say(`(simulated ${provider.displayName} status endpoint keeps what it already reports about ${parsed.subjectId})`);
    return;
  }
  if (!response.ok) {
    // Not told: saying it "now reports" the status would send the user to wait for a re-check that
    // can only see the old answer. A 401 or 403: the secrets given to send are not the pipeline's.
    const why = response.status === 401 || response.status === 403 ? ': the secrets send used are not the ones the pipeline runs with' : '';
    const reason = `the simulated ${provider.displayName} status endpoint did not take ${said.status} for ${parsed.subjectId} (${response.status}${why})`;
    say(`✗ ${reason}`);
    report.statusEndpoint.push({ status: said.status, outcome: said.outcome, terminal: said.terminal, statusCode: response.status, error: reason });
    process.exitCode = 1;
    return;
  }
  report.statusEndpoint.push({ status: said.status, outcome: said.outcome, terminal: said.terminal, statusCode: response.status });
  const meaning = `${said.outcome}${said.terminal ? ', final' : ''}`;
  say(`(simulated ${provider.displayName} status endpoint now reports ${parsed.subjectId} as ${said.status}, ${meaning}: ${response.status})`);
}
await simulatorReports();
if (values['endpoint-only']) {
  if (statusLater !== undefined) await simulatorReports(statusLater);
  say(`\nno callback sent. subject: ${parsed!.subjectId}   expect it with: npm run expect -- ${provider.id} '${parsed!.subjectId}'${dataDirHint(values['data-dir'])}`);
  if (json) printJson(report);
  process.exit();
}

/** The subject's count of distinct callbacks (its state's `eventCount`), on the local runtime; undefined without one. */
async function storedCallbacks(): Promise<number | undefined> {
  // Only the table behind the URL the callbacks went to (not a local one beside a --url elsewhere).
  if (!runtime || !parsed || baseUrl !== runtime.baseUrl.replace(/\/+$/, '')) return undefined;
  const dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: runtime.dynamodbEndpoint });
  try {
    const { Item } = await dynamo.send(new GetItemCommand({ TableName: runtime.tableName, Key: marshall(keys.state(provider.id, parsed.subjectId, parsed.part)), ConsistentRead: true }));
    return Item ? Number(unmarshall(Item).eventCount ?? 0) : 0;
  } catch {
    return undefined;
  } finally {
    dynamo.destroy();
  }
}
// Before a repeat: what the subject counted already, so what the repeats add can be told.
const countedBefore = repeat > 1 ? await storedCallbacks() : undefined;

/** The path with its secret token shortened and any phone number masked unless --show-sensitive. */
const shownPath = shownRequestPath(provider, request.path, values['show-sensitive']);
for (let attempt = 1; attempt <= repeat; attempt++) {
  say(`→ ${request.method} ${maskUrlSecrets(baseUrl)}${shownPath}${repeat > 1 ? `   (${attempt}/${repeat})` : ''}`);
  if (attempt === 1) {
    for (const [name, value] of Object.entries(request.headers)) {
      say(`  ${name}: ${name === 'authorization' ? `${value.slice(0, 12)}…` : value}`);
    }
    if (request.body) say(`  (${request.body.length} bytes: ${sample.provider}/${sample.name})`);
  }
  let response: Response;
  try {
    response = await fetch(`${baseUrl}${request.path}`, {
      method: request.method,
      headers: request.headers,
      ...(request.body ? { body: request.body } : {}),
    });
  } catch (error) {
    const reason = maskUrlSecrets(`cannot reach ${baseUrl}: ${String((error as Error).cause ?? (error as Error).message)}`);
    say(`✗ ${reason}. Is \`npm start\` running?`);
    report.requests.push({ attempt, method: request.method, path: shownPath, error: reason });
    if (json) printJson(report);
    process.exit(1);
  }
  const text = await response.text();
  report.requests.push({ attempt, method: request.method, path: shownPath, statusCode: response.status, body: bodyOf(text) });
  if (!json) console.log(`← ${response.status} ${text}`);
  if (!response.ok) process.exitCode = 1;
}
/**
 * Wait (up to 15 s) until the worker has stored the subject's state, so a later answer is news to a
 * re-check, not to the first ask; with `countedAbove`, until the state counts more callbacks than that.
 */
async function waitForState(countedAbove?: number): Promise<void> {
  if (!runtime || !parsed) return;
  const dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: runtime.dynamodbEndpoint });
  const key = marshall(keys.state(provider.id, parsed.subjectId, parsed.part));
  try {
    for (const deadline = Date.now() + 15_000; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 200))) {
      const { Item } = await dynamo.send(new GetItemCommand({ TableName: runtime.tableName, Key: key, ConsistentRead: true }));
      if (Item && (countedAbove === undefined || Number(unmarshall(Item).eventCount ?? 0) > countedAbove)) return;
    }
  } finally {
    dynamo.destroy();
  }
}

if (countedBefore !== undefined && process.exitCode !== 1) {
  // Distinct callbacks only raise the count: once the first delivery is stored, the repeats change nothing.
  await waitForState(countedBefore);
  const countedAfter = await storedCallbacks();
  if (countedAfter !== undefined) {
    const newCallbacks = countedAfter - countedBefore;
    report.dedupe = { deliveries: repeat, newCallbacks };
    say(`  ${repeat} deliveries of one callback: ${newCallbacks === 0 ? 'none stored anew (it was stored before, or is not yet)' : `stored ${newCallbacks === 1 ? 'once' : `${newCallbacks} times`}`}; the others were duplicates`);
  }
}
if (statusLater !== undefined && process.exitCode !== 1) {
  await waitForState();
  await simulatorReports(statusLater);
  say(`  the next re-check (npm start's schedule: ${runtime?.reconcile?.intervalsSeconds.map((s) => `${s}s`).join(', ') ?? 'default'}) applies it`);
}
if (parsed && process.exitCode !== 1) {
  say(`\nsubject: ${parsed.subjectId}   see it with: npm run inspect -- ${provider.id} '${parsed.subjectId}'${dataDirHint(values['data-dir'])}`);
}
if (json) printJson(report);
