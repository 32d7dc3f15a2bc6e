import { join, relative } from 'node:path';
import { maskUrlSecrets, type LogLevel } from '../functions/shared/log.ts';
import { providers } from '../functions/providers/index.ts';
import { checkArguments, dataDirFrom, dataDirHint, intFlag, intValue, parseCli, type IntRange } from './cli-args.ts';
import { colorWanted, keepOnWhenTheTerminalIsGone, say } from './cli-output.ts';
import { onLauncherGone } from './launcher.ts';
import { prettyLine } from './log-format.ts';
import { runtimeInfoPath, startPipeline, sweepPeriod, type RelaySettings } from './pipeline.ts';
import { withShortToken } from './samples.ts';
import { DEFAULT_RECONCILE, parseSchedule, type ReconcilePolicy } from '../functions/core/reconcile.ts';
import { QUEUE } from '../functions/core/pipeline-definition.ts';
import { SecretsFileError } from './secrets-file.ts';
import { committedSettings, smsRelayChoice } from './stack-settings.ts';
import { SETTING_DEFAULTS, SMS_RELAYS } from '../lib/validate.ts';

// The pipeline's threads load TypeScript through tsx's hooks, which Node.js 20 does not pass on to
// worker threads: said plainly here rather than as an "Unknown file extension" from inside one.
if (Number(process.versions.node.split('.')[0]) < 22) {
  console.error(`npm start needs Node.js 22 or later (24 recommended, as Lambda's nodejs24.x); this is ${process.version}`);
  process.exit(2);
}

/** The stack's committed settings (cdk.json), which --sms-relay overrides for this run. */
const committed = (() => {
  try {
    return committedSettings();
  } catch (error) {
    console.error(`cannot start the local pipeline: ${(error as Error).message}`);
    process.exit(1);
  }
})();

const USAGE = `usage: npm start -- [--port N] [--secrets FILE [--simulators]] [--sms-relay off|telesign] [--fresh] [--data-dir DIR] [--log-format pretty|json]

  Runs the whole callback pipeline on this machine: the HTTP routes, an SQS-API server with the
  queue and its DLQ, DynamoDB Local, the worker, the table's stream published to a local event bus
  (<data-dir>/events.jsonl, shown by npm run events), the SMS relay when it is on, and (with the
  development secrets) simulated status endpoints for the providers the worker asks and TeleSign's
  simulated SMS API. Ctrl-C stops everything.

  The log lines are the output (stdout: pipe them with --log-format json); the banner and the
  shutdown lines go to stderr. NO_COLOR=1, or a stdout that is not a terminal, turns colour off.

  --port N          HTTP port on 127.0.0.1, 0 to 65535 (default: $PORT or 3000; 0: any free port)
  --secrets FILE    your provider secrets, {"<provider>": {...}, ...}, used as they are (default:
                    fake development secrets, written to <data-dir>/dev-secrets.json)
  --simulators      with --secrets: also simulate the asked providers' status endpoints (and
                    TeleSign's SMS API) and point those providers at them (your file is not changed);
                    the development secrets always use the simulations
  --sms-relay R     ${SMS_RELAYS.join(' or ')}: send SMS instructions (Identomat's codes and links) through
                    that provider, as the stack's smsRelay setting does (default: cdk.json's, now
                    "${committed.smsRelay}"). With the development secrets or --simulators it sends to the
                    simulated SMS API, which sends signed delivery reports back; with --secrets alone,
                    to the real one in your file
  --fresh           start with an empty table and queues
  --data-dir DIR    where data persists between runs (default: .local-data)
  --log-format F    pretty (default in a terminal) or json (one JSON object per line, as in Lambda)
  --max-receives N  receives before a message moves to the DLQ, 1 to 1000 (default 5)
  --reconcile-schedule S
                    when subjects not final are asked about again, e.g. 2s,4s,8s for a demo
                    (default 1m,5m,30m,2h,12h,1d,2d, as deployed); a shortened schedule also
                    skips the providers' own first delays (eSMS 1 min, TeleSign 5 min)

  Tuning and engines started elsewhere (fault-injection tests; a plain npm start needs none):
  --retry-base-seconds N   first retry delay of a failed record, doubling per receive, 1 to 900 (default 1)
  --visibility-timeout N   seconds a received message stays hidden before redelivery, 1 to 43200 (default 180)
  --confirm-timeout-ms N   timeout of each status endpoint call, 1 to 30000 (default 5000)
  --dynamodb-endpoint URL  use this DynamoDB endpoint instead of starting DynamoDB Local
  --sqs-endpoint URL       use this SQS-API endpoint instead of the in-process one; the queues then
                           outlive this process (the in-process queues persist under the data folder)`;

const { values, positionals } = parseCli(
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
    'sms-relay': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  USAGE,
);
// A word is not a flag (`npm start fresh` meant --fresh): refused before anything starts.
checkArguments(positionals, USAGE, []);

const started = performance.now();

/**
 * Every numeric flag's range, checked before anything starts. Where AWS has a range, it is AWS's;
 * 0 is refused wherever it would not mean "none" but break the pipeline.
 */
const RANGES = {
  port: { min: 0, max: 65_535, note: '0: any free port' },
  // SQS's RedrivePolicy: maxReceiveCount from 1 to 1000.
  maxReceives: { min: 1, max: 1000, note: "SQS's maxReceiveCount" },
  // 0 would retry a failing record at once; the worker caps every delay at 15 minutes.
  retryBaseSeconds: { min: 1, max: 900, note: 'retry delays are capped at 15 minutes' },
  // SQS accepts 0 to 43200, but at 0 a message is handed out again while the worker still has it
  // (and Lambda refuses a queue whose visibility timeout is below the function's timeout).
  visibilityTimeout: { min: 1, max: 43_200, note: 'SQS allows 0, which hands a message out again while the worker still has it' },
  // 0 would abort every status call before it is sent; a call cannot outlast the worker.
  confirmTimeoutMs: { min: 1, max: QUEUE.workerTimeoutSeconds * 1000, note: `within the worker's ${QUEUE.workerTimeoutSeconds} s timeout` },
} as const satisfies Record<string, IntRange>;
const port = values.port !== undefined ? intFlag('port', values.port, RANGES.port, 3000) : intValue('PORT', process.env.PORT, RANGES.port, 3000);
const maxReceiveCount = intFlag('max-receives', values['max-receives'], RANGES.maxReceives, QUEUE.maxReceiveCount);
const retryBaseSeconds = intFlag('retry-base-seconds', values['retry-base-seconds'], RANGES.retryBaseSeconds);
const visibilityTimeoutSeconds = intFlag('visibility-timeout', values['visibility-timeout'], RANGES.visibilityTimeout);
const confirmTimeoutMs = intFlag('confirm-timeout-ms', values['confirm-timeout-ms'], RANGES.confirmTimeoutMs);

const format = values['log-format'] ?? (process.stdout.isTTY ? 'pretty' : 'json');
if (format !== 'pretty' && format !== 'json') {
  console.error(`--log-format must be pretty or json, got "${format}"`);
  process.exit(2);
}
// --simulators points the user's own secrets file at the simulations; accepted without one, it did nothing.
if (values.simulators && values.secrets === undefined) {
  console.error('--simulators goes with --secrets FILE: without --secrets, the development secrets always use the simulated endpoints');
  process.exit(2);
}
const color = colorWanted(process.stdout);
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
    // A shortened schedule is for watching: the providers' own first delays (minutes) would hide it.
    return { ...DEFAULT_RECONCILE, intervalsSeconds: parseSchedule(value), providerFirstDelays: false };
  } catch (error) {
    console.error(`--reconcile-schedule: ${(error as Error).message}`);
    process.exit(2);
  }
}
const reconcile = reconcileFlag(values['reconcile-schedule']);
const relayChoice = smsRelayChoice(values['sms-relay'], committed);
if (!relayChoice.ok) {
  console.error(relayChoice.message);
  process.exit(2);
}
const smsRelay = relayChoice.value;

let pipeline: Awaited<ReturnType<typeof startPipeline>>;
try {
  pipeline = await startPipeline({
    port,
    dataDir: dataDirFrom(values['data-dir']),
    fresh: values.fresh ?? false,
    secretsFile: values.secrets,
    simulators: values.simulators,
    maxReceiveCount,
    retryBaseSeconds,
    visibilityTimeoutSeconds,
    confirmTimeoutMs,
    dynamodbEndpoint,
    sqsEndpoint,
    write,
    ...(reconcile ? { reconcile } : {}),
    smsRelay,
    relayMaxAgeSeconds: committed.relayMaxAgeSeconds,
    relayAllowedCountryCodes: committed.relayAllowedCountryCodes,
    relayMaxPerNumberPerHour: committed.relayMaxPerNumberPerHour,
  });
} catch (error) {
  // The fix for a secrets file is its shapes: the development secrets show each one, with fake values.
  const devSecrets = join(dataDirFrom(values['data-dir']), 'dev-secrets.json');
  const where = relative(process.cwd(), devSecrets).startsWith('..') ? devSecrets : relative(process.cwd(), devSecrets);
  const shapes = `each provider's secret is shown, with fake values, in ${where}, which npm start without --secrets writes (README: Providers)`;
  const message = error instanceof SecretsFileError ? `${error.message}\n${shapes}` : `cannot start the local pipeline: ${(error as Error).message}`;
  console.error(maskUrlSecrets(message));
  process.exit(1);
}

const { info } = pipeline;

/** A banner row: its label (empty: a value continuing the row above) and its value. */
type Row = readonly [label: string, value: string];

/** One row per provider the worker asks: simulated here, or its endpoint from the secrets. */
function statusEndpointRows(): Row[] {
  return providers
    .filter((provider) => provider.lookup)
    .map((provider) => {
      const simulated = info.simulators[provider.id];
      const label = `${provider.displayName} status`;
      return simulated
        ? [label, `${simulated}  (SIMULATED: answers what \`npm run send -- ${provider.id}\` reports)`]
        : [label, 'the endpoint in your secrets file'];
    });
}
/** The relay's row: off, or who sends SMS instructions and where (SIMULATED, or the real provider in your file). */
function relayValue(): string {
  const from = values['sms-relay'] === undefined ? 'cdk.json smsRelay' : '--sms-relay';
  const relay = info.smsRelay;
  if (!relay) return `off  (${from}; --sms-relay telesign sends Identomat's SMS codes and links)`;
  const via = providers.find((provider) => provider.id === relay.sender)?.displayName ?? relay.sender;
  return relay.simulated
    ? `${via} ${relay.simulated}  (SIMULATED: takes each SMS, sends none, posts a signed delivery report to the ${via} route; ${from})`
    : `${via} ${relay.endpoint ? `at ${maskUrlSecrets(relay.endpoint)} (your secrets file's baseUrl, or ${via}'s default)` : 'at the endpoint in your secrets file'}  (REAL: SMS go to real phones; ${from})`;
}
/**
 * The relay's settings in effect, by the names cdk.json gives them: where each comes from (the
 * committed settings, smsRelay perhaps from --sms-relay), so what the relay refuses is no surprise.
 */
function relaySettingsValue(settings: RelaySettings): string {
  const cap = settings.relayMaxPerNumberPerHour === 0 ? '0 (no cap)' : String(settings.relayMaxPerNumberPerHour);
  const from = values['sms-relay'] === undefined ? 'cdk.json settings' : 'cdk.json settings; smsRelay from --sms-relay';
  return `smsRelay ${settings.smsRelay}   relayMaxAgeSeconds ${settings.relayMaxAgeSeconds}   relayAllowedCountryCodes ${settings.relayAllowedCountryCodes}   relayMaxPerNumberPerHour ${cap}  (${from})`;
}
/** The rows as lines, every value starting in one column: after the longest label (a provider's name is in some). */
function alignedRows(rows: readonly Row[]): string[] {
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `  ${label.padEnd(width)} ${value}`);
}
/** 60 → 1m, 7200 → 2h, 2 → 2s. */
function scheduleText(seconds: readonly number[]): string {
  return seconds
    .map((s) => (s % 86_400 === 0 ? `${s / 86_400}d` : s % 3_600 === 0 ? `${s / 3_600}h` : s % 60 === 0 ? `${s / 60}m` : `${s}s`))
    .join(', ');
}
// The commands the banner names find this pipeline by its data folder: one of another name is said in each.
const dataDirArg = dataDirHint(values['data-dir']);
const shown = (path: string) => (relative(process.cwd(), path).startsWith('..') ? path : relative(process.cwd(), path));
const banner = [
  '',
  `Callback gateway running locally (ready in ${((performance.now() - started) / 1000).toFixed(1)} s)`,
  '',
  // The development secrets are fake: their URLs are printed whole, to paste. A user's file holds real
  // tokens: shortened as send shortens them, the whole URLs left in runtime.json (the owner's alone).
  `  Callback URLs:${info.devSecrets || !providers.some((provider) => provider.route.tokenParameter) ? '' : `  (tokens of your secrets file shortened; the full URLs: jq .urls ${shown(runtimeInfoPath(dataDirFrom(values['data-dir'])))})`}`,
  // A cdk.json that deploys some providers: the routes below are more than a plain deploy serves.
  ...(committed.providers === SETTING_DEFAULTS.providers ? [] : [`    (every provider is served here; cdk.json's providers deploys ${committed.providers.split(',').join(', ')} only)`]),
  ...providers.map((provider) => `    ${provider.displayName.padEnd(Math.max(...providers.map((p) => p.displayName.length)))} ${provider.route.method.padEnd(4)} ${info.devSecrets ? info.urls[provider.id] : withShortToken(provider, info.urls[provider.id])}`),
  '',
  // The engines' URLs are the flags' (and the queues' are on them), the relay's its secret's: each
  // without a user name, password or query value, which may be credentials.
  ...alignedRows([
    [dynamodbEndpoint ? 'DynamoDB' : 'DynamoDB Local', `${maskUrlSecrets(info.dynamodbEndpoint)}   table ${info.tableName}${dynamodbEndpoint ? '  (--dynamodb-endpoint)' : ''}`],
    ['SQS', `${maskUrlSecrets(info.sqsEndpoint)}   queue ${maskUrlSecrets(info.queueUrl)}${sqsEndpoint ? '  (--sqs-endpoint)' : ''}`],
    ['', `DLQ ${maskUrlSecrets(info.dlqUrl)}`],
    ...statusEndpointRows(),
    ['Secrets file', `${shown(info.secretsFile)}${info.devSecrets ? '  (development values, fake)' : values.simulators ? `  (${shown(values.secrets!)} with the simulated endpoints)` : ''}`],
    ['Re-checks', `${scheduleText(info.reconcile.intervalsSeconds)}, swept every ${sweepPeriod({ reconcile: info.reconcile })} s${reconcile ? "  (--reconcile-schedule; the providers' own first delays are skipped)" : ''}`],
    ['Events', `${shown(info.eventsFile)}  (the table's stream, published to a local bus: npm run events -- --follow${dataDirArg})`],
    ['SMS relay', relayValue()],
    ...(info.smsRelay
      ? ([
          ['', `queue ${maskUrlSecrets(info.smsRelay.queueUrl)}   DLQ ${maskUrlSecrets(info.smsRelay.dlqUrl)}`],
          ['', relaySettingsValue(info.smsRelay.settings)],
        ] as const)
      : []),
    ['Data', `${shown(dataDirFrom(values['data-dir']))}  (--fresh to start empty)`],
  ]),
  '',
  `  Try:  npm run send -- telesign${dataDirArg}        then  npm run inspect -- --recent 5${dataDirArg}   or  npm run events${dataDirArg ? ` --${dataDirArg}` : ''}`,
  ...(info.smsRelay ? [`        npm run send -- identomat one-time-password${dataDirArg}   then  npm run inspect -- identomat <sessionId>${dataDirArg}`] : []),
  '  Ctrl-C to stop.',
  '',
].join('\n');
// The banner is for the person at the terminal; stdout carries the log lines alone.
say(banner);

let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  say(`\n${signal}: stopping (HTTP, worker, ${info.smsRelay ? 'SMS relay, ' : ''}events${sqsEndpoint ? '' : ', queues'}${dynamodbEndpoint ? '' : ', DynamoDB Local'})…`);
  const force = setTimeout(() => process.exit(1), 15_000);
  await pipeline.stop();
  clearTimeout(force);
  say('stopped.');
  process.exit(0);
};
// The stop says a line first: to a closed terminal that write fails, and must not end the stop.
keepOnWhenTheTerminalIsGone();
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
// A closed terminal window hangs up its foreground group: stopped as Ctrl-C stops it, not killed
// where it stands (the batch cut short, runtime.json left naming engines that are gone).
process.on('SIGHUP', () => void shutdown('SIGHUP'));
onLauncherGone((why) => void shutdown(why));
