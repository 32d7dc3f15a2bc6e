import { createDynamoStore } from '../functions/adapters/dynamo-store.ts';
import { ExpectationError, expectSubject } from '../functions/core/expect.ts';
import { DEFAULT_RECONCILE, parseSchedule, type ReconcilePolicy } from '../functions/core/reconcile.ts';
import { findProvider, providers } from '../functions/providers/index.ts';
import { checkArguments, parseCli } from './cli-args.ts';
import { failed, printJson } from './cli-output.ts';
import { resolveTarget, targetOptions } from './aws-target.ts';
import { readRuntimeInfo } from './pipeline.ts';
import { dataDirFrom } from './cli-args.ts';
import { shownItem } from './inspect-view.ts';

const USAGE = `usage: npm run expect -- <provider> <subjectId> [--part P] [--json] [--show-sensitive]
       npm run expect -- <provider> <subjectId> --table NAME --region R [--schedule 1m,5m,…]

  Tells the gateway to expect a transaction you started (a transfer, a message), so that if its
  callback never arrives it is still found: the subject is asked about on the reconcile schedule
  where its provider can be asked, and listed by \`npm run inspect -- --stale\` if nothing ever
  confirms it. Safe to repeat; a subject the gateway already knows is left as it is.

  <subjectId>   the provider's id of the transaction (TeleSign reference_id, TemboPlus
                partnerReference, eSMS SMSID, REL-ID notification uuid, Identomat session token)
  --part P      one part of it (eSMS: the recipient's phone number); refused for a provider whose
                subjects have no parts
  --json        print the stored state as JSON (stdout), nothing else
  --show-sensitive  print a recipient's phone number (--part) in full; without it, masked as
                npm run inspect masks it, its last three digits shown (the table gets it whole)
  --table NAME  a deployed stack's table (its output TableName), with --region
  --schedule S  the deployed stack's reconcile schedule, when not the default (the first re-check
                is due after its first delay)
  --data-dir DIR  locally: the pipeline's data folder (default: .local-data)`;

const { values, positionals } = parseCli(
  {
    part: { type: 'string' },
    json: { type: 'boolean', default: false },
    'show-sensitive': { type: 'boolean', default: false },
    schedule: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
    ...targetOptions('table'),
  },
  USAGE,
);

function fail(message: string, code = 2): never {
  // A failure (not a wrong command line) still prints its document, as every --json command does.
  if (code === 1) failed(message, values.json);
  console.error(message);
  process.exit(code);
}

checkArguments(positionals, USAGE, ['<provider>', '<subjectId>']);
const [providerId, subjectId] = positionals;
const provider = findProvider(providerId) ?? fail(`unknown provider "${providerId}"; known: ${providers.map((p) => p.id).join(', ')}`);

// The command line is checked before the target is looked for: a deployed stack's credentials are
// read there, and without them a wrong --schedule or --part would be said only once they were set.
let schedule: number[] | undefined;
if (values.schedule) {
  try {
    schedule = parseSchedule(values.schedule);
  } catch (error) {
    fail(`--schedule: ${(error as Error).message}`);
  }
}
if (values.part !== undefined && provider.partName === undefined) {
  fail(`cannot expect this subject: ${provider.displayName} reports no parts of a subject: expect the subject itself`);
}

/** The policy the target runs with: the local pipeline's (from runtime.json), --schedule, or the default. */
function policyFor(kind: 'local' | 'aws'): ReconcilePolicy {
  let policy = DEFAULT_RECONCILE;
  if (kind === 'local') policy = readRuntimeInfo(dataDirFrom(values['data-dir']))?.reconcile ?? policy;
  return schedule ? { ...policy, intervalsSeconds: schedule } : policy;
}

const target = await resolveTarget(values, '--table NAME --region R');
if (!target.tableName) fail('--table NAME is needed for a deployed stack');
try {
  const store = createDynamoStore(target.dynamo, target.tableName);
  const result = await expectSubject(store, provider, { subjectId, ...(values.part === undefined ? {} : { part: values.part }) }, { now: new Date(), policy: policyFor(target.kind) });
  // The state as npm run inspect shows it: a recipient's number (and one in a sender's id or a
  // status) masked, so a terminal or a ticket does not keep it, unless --show-sensitive.
  const state = shownItem(result.state as unknown as Record<string, unknown>, values['show-sensitive']);
  if (values.json) {
    printJson({ result: result.kind, state });
  } else if (result.kind === 'expected') {
    const asked = provider.lookup ? `asked about from ${result.state.recheckAt} on the reconcile schedule` : `not askable (${provider.displayName} has no status endpoint): listed as stale if no callback arrives by the end of the schedule`;
    console.log(`expecting ${provider.id} ${String(state.subjectId)}${state.part === undefined ? '' : ` part ${String(state.part)}`}: ${asked}`);
  } else {
    const said = state.status ?? (result.state.expectedAt ? 'expected, no status yet' : 'without a status yet');
    console.log(`already known: ${provider.id} ${String(state.subjectId)}${state.part === undefined ? '' : ` part ${String(state.part)}`} is ${String(said)} (${result.state.outcome}); left as it is`);
  }
} catch (error) {
  if (error instanceof ExpectationError) fail(`cannot expect this subject: ${error.message}`);
  fail(`cannot write the table: ${(error as Error).message}`, 1);
} finally {
  target.close();
}
