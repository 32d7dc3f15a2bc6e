import { getProvider, providers } from '../functions/providers/index.ts';
import { dataDirFrom, parseCli, positiveInt } from './cli-args.ts';
import { readRuntimeInfo } from './pipeline.ts';
import type { AnyProvider } from '../functions/providers/provider.ts';
import { authenticRequest, findSample, listSamples, type Sample } from './samples.ts';
import { loadSecretsFile, providerSecret, SecretsFileError } from './secrets-file.ts';
import { kitOf, secretsFor } from '../test/providers/index.ts';

const USAGE = `usage: npm run send -- <provider> [sample] [--url BASE] [--secrets FILE] [--repeat N] [--list]

  Sends a correctly authenticated sample callback (TeleSign signed, tokens and keys from the secrets
  file) to the local pipeline, or to a deployed API with --url https://xxxx.execute-api.REGION.amazonaws.com.

  --list           list every provider's samples
  --url BASE       API base URL (default: the running local pipeline)
  --secrets FILE   secrets to authenticate with (default: the local pipeline's, else the development ones)
  --repeat N       send the same callback N times (shows dedupe)
  --data-dir DIR   the local pipeline's data folder (default: .local-data)`;

const { values, positionals } = parseCli(
  {
    url: { type: 'string' },
    secrets: { type: 'string' },
    repeat: { type: 'string' },
    list: { type: 'boolean', default: false },
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
if (simulatorUrl && parsed && kit.statusAnswer && kit.statusSimulation) {
  const answer = kit.statusAnswer(sample);
  const response = await fetch(`${simulatorUrl}/__simulator/answers`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${kit.statusSimulation(secret).controlToken}` },
    body: JSON.stringify(answer),
  });
  console.log(`(simulated ${provider.displayName} status endpoint now reports ${parsed.subjectId} as ${parsed.status}: ${response.status})`);
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
if (parsed && process.exitCode !== 1) {
  console.log(`\nsubject: ${parsed.subjectId}   see it with: npm run inspect -- ${provider.id} '${parsed.subjectId}'`);
}
