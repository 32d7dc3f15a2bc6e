import { relative } from 'node:path';
import type { LogLevel } from '../functions/shared/log.ts';
import { providers } from '../functions/providers/index.ts';
import { dataDirFrom, parseCli, positiveInt } from './cli-args.ts';
import { prettyLine } from './log-format.ts';
import { startPipeline, sweepPeriod } from './pipeline.ts';
import { DEFAULT_RECONCILE, parseSchedule, type ReconcilePolicy } from '../functions/core/reconcile.ts';
import { SecretsFileError } from './secrets-file.ts';

const USAGE = `usage: npm start -- [--port N] [--secrets FILE [--simulators]] [--fresh] [--data-dir DIR] [--log-format pretty|json]

  Runs the whole callback pipeline on this machine: the HTTP routes, an SQS-API server with the
  queue and its DLQ, DynamoDB Local, the worker, and (with the development secrets) simulated
  status endpoints for the providers the worker asks. Ctrl-C stops everything.

  --port N          HTTP port on 127.0.0.1 (default: $PORT or 3000)
  --secrets FILE    your provider secrets, {"<provider>": {...}, ...}, used as they are (default:
                    fake development secrets, written to <data-dir>/dev-secrets.json)
  --simulators      with --secrets: also simulate the asked providers' status endpoints and point
                    those providers at them (your file is not changed)
  --fresh           start with an empty table and queues
  --data-dir DIR    where data persists between runs (default: .local-data)
  --log-format F    pretty (default in a terminal) or json (one JSON object per line, as in Lambda)
  --max-receives N  receives before a message moves to the DLQ (default 5)
  --reconcile-schedule S
                    when subjects not final are asked about again, e.g. 2s,4s,8s for a demo
                    (default 1m,5m,30m,2h,12h,24h,48h, as deployed)

  Tuning and engines started elsewhere (fault-injection tests; a plain npm start needs none):
  --retry-base-seconds N   first retry delay of a failed record, doubling per receive (default 1)
  --visibility-timeout N   seconds a received message stays hidden before redelivery (default 180)
  --confirm-timeout-ms N   timeout of each TemboPlus status call (default 5000)
  --dynamodb-endpoint URL  use this DynamoDB endpoint instead of starting DynamoDB Local
  --sqs-endpoint URL       use this SQS-API endpoint instead of the in-process one; the queues then
                           outlive this process (the in-process queues persist under the data folder)
  --no-temboplus-simulator (no effect: simulators start only with the development secrets or --simulators)`;

const { values } = parseCli(
  {
    port: { type: 'string' },
    secrets: { type: 'string' },
    fresh: { type: 'boolean', default: false },
    'data-dir': { type: 'string' },
    'log-format': { type: 'string' },
    'max-receives': { type: 'string' },
    'retry-base-seconds': { type: 'string' },
    'visibility-timeout': { type: 'string' },
    'confirm-timeout-ms': { type: 'string' },
    'dynamodb-endpoint': { type: 'string' },
    'sqs-endpoint': { type: 'string' },
    'reconcile-schedule': { type: 'string' },
    simulators: { type: 'boolean', default: false },
    'no-temboplus-simulator': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
  USAGE,
);
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const started = performance.now();
const port = positiveInt('port', values.port ?? process.env.PORT, 3000);
const format = values['log-format'] ?? (process.stdout.isTTY ? 'pretty' : 'json');
if (format !== 'pretty' && format !== 'json') {
  console.error(`--log-format must be pretty or json, got "${format}"`);
  process.exit(2);
}
const color = Boolean(process.stdout.isTTY);
const write = (line: string, level: LogLevel) =>
  process.stdout.write(`${format === 'pretty' ? prettyLine(line, level, color) : line}\n`);

/** An http(s) URL flag, or exit 2 naming the flag. */
function endpointFlag(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!URL.canParse(value) || !/^https?:$/.test(new URL(value).protocol)) {
    console.error(`--${name} must be an http(s) URL, got "${value}"`);
    process.exit(2);
  }
  return value;
}
const dynamodbEndpoint = endpointFlag('dynamodb-endpoint', values['dynamodb-endpoint']);
const sqsEndpoint = endpointFlag('sqs-endpoint', values['sqs-endpoint']);
function reconcileFlag(value: string | undefined): ReconcilePolicy | undefined {
  if (value === undefined) return undefined;
  try {
    return { ...DEFAULT_RECONCILE, intervalsSeconds: parseSchedule(value) };
  } catch (error) {
    console.error(`--reconcile-schedule: ${(error as Error).message}`);
    process.exit(2);
  }
}
const reconcile = reconcileFlag(values['reconcile-schedule']);
const optionalInt = (name: string, value: string | undefined) => (value === undefined ? undefined : positiveInt(name, value, 0));

let pipeline: Awaited<ReturnType<typeof startPipeline>>;
try {
  pipeline = await startPipeline({
    port,
    dataDir: dataDirFrom(values['data-dir']),
    fresh: values.fresh ?? false,
    secretsFile: values.secrets,
    simulators: values.simulators,
    maxReceiveCount: positiveInt('max-receives', values['max-receives'], 5),
    retryBaseSeconds: optionalInt('retry-base-seconds', values['retry-base-seconds']),
    visibilityTimeoutSeconds: optionalInt('visibility-timeout', values['visibility-timeout']),
    confirmTimeoutMs: optionalInt('confirm-timeout-ms', values['confirm-timeout-ms']),
    dynamodbEndpoint,
    sqsEndpoint,
    write,
    ...(reconcile ? { reconcile } : {}),
  });
} catch (error) {
  const message = error instanceof SecretsFileError ? error.message : `cannot start the local pipeline: ${(error as Error).message}`;
  console.error(message);
  process.exit(1);
}

const { info } = pipeline;

/** One line per provider the worker asks: simulated here, or its endpoint from the secrets. */
function statusEndpointLines(): string[] {
  return providers
    .filter((provider) => provider.lookup)
    .map((provider) => {
      const simulated = info.simulators[provider.id];
      const label = `${provider.displayName} status`.padEnd(16);
      return simulated
        ? `  ${label} ${simulated}  (SIMULATED: answers what \`npm run send -- ${provider.id}\` reports)`
        : `  ${label} the endpoint in your secrets file`;
    });
}
/** 60 → 1m, 7200 → 2h, 2 → 2s. */
function scheduleText(seconds: readonly number[]): string {
  return seconds
    .map((s) => (s % 86_400 === 0 ? `${s / 86_400}d` : s % 3_600 === 0 ? `${s / 3_600}h` : s % 60 === 0 ? `${s / 60}m` : `${s}s`))
    .join(', ');
}
const shown = (path: string) => (relative(process.cwd(), path).startsWith('..') ? path : relative(process.cwd(), path));
const banner = [
  '',
  `Callback gateway running locally (ready in ${((performance.now() - started) / 1000).toFixed(1)} s)`,
  '',
  '  Callback URLs:',
  ...providers.map((provider) => `    ${provider.displayName.padEnd(Math.max(...providers.map((p) => p.displayName.length)))} ${provider.route.method.padEnd(4)} ${info.urls[provider.id]}`),
  '',
  `  DynamoDB${dynamodbEndpoint ? '        ' : ' Local  '} ${info.dynamodbEndpoint}   table ${info.tableName}${dynamodbEndpoint ? '  (--dynamodb-endpoint)' : ''}`,
  `  SQS              ${info.sqsEndpoint}   queue ${info.queueUrl}${sqsEndpoint ? '  (--sqs-endpoint)' : ''}`,
  `                   DLQ ${info.dlqUrl}`,
  ...statusEndpointLines(),
  `  Secrets file     ${shown(info.secretsFile)}${info.devSecrets ? '  (development values, fake)' : values.simulators ? `  (${shown(values.secrets!)} with the simulated endpoints)` : ''}`,
  `  Re-checks        ${scheduleText(info.reconcile.intervalsSeconds)}, swept every ${sweepPeriod({ reconcile: info.reconcile })} s${reconcile ? '  (--reconcile-schedule)' : ''}`,
  `  Data             ${shown(dataDirFrom(values['data-dir']))}  (--fresh to start empty)`,
  '',
  '  Try:  npm run send -- telesign        then  npm run inspect -- --recent 5',
  '  Ctrl-C to stop.',
  '',
].join('\n');
console.log(banner);

let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping (HTTP, worker${sqsEndpoint ? '' : ', queues'}${dynamodbEndpoint ? '' : ', DynamoDB Local'})…`);
  const force = setTimeout(() => process.exit(1), 15_000);
  await pipeline.stop();
  clearTimeout(force);
  console.log('stopped.');
  process.exit(0);
};
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
