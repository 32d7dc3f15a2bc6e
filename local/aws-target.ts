import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { dataDirFrom, noPipelineHere, USAGE_EXIT_CODE } from './cli-args.ts';
import { failed } from './cli-output.ts';
import { LOCAL_AWS } from './engines.ts';
import { readRuntimeInfo } from './pipeline.ts';

/** Where an operations command acts: the running local pipeline, or a deployed stack. */
export interface Target {
  readonly kind: 'local' | 'aws';
  readonly sqs: SQSClient;
  readonly dynamo: DynamoDBClient;
  readonly queueUrl?: string;
  readonly dlqUrl?: string;
  readonly tableName?: string;
  /** Locally: the secrets file the pipeline's functions read (the user's, or the development one it wrote). */
  readonly secretsFile?: string;
  close(): void;
}

export interface TargetFlags {
  readonly region?: string;
  readonly 'queue-url'?: string;
  readonly 'dlq-url'?: string;
  readonly table?: string;
  readonly 'data-dir'?: string;
  /** Locally: the SMS relay's queue and DLQ instead of the callbacks'. */
  readonly relay?: boolean;
  /** The command prints one JSON document: a target it cannot find is that document's `error`. */
  readonly json?: boolean;
}

/**
 * Deployed when any of --queue-url/--dlq-url/--table is given (credentials from the usual AWS chain;
 * the values are the stack's outputs), otherwise the local pipeline found through runtime.json.
 * `deployedFlags` are the flags this command takes for a deployed stack, as its usage writes them:
 * the hint when no local pipeline runs names those, not another command's.
 */
export async function resolveTarget(flags: TargetFlags, deployedFlags: string): Promise<Target> {
  if (flags['queue-url'] || flags['dlq-url'] || flags.table) {
    const config = regionConfig(flags.region);
    const sqs = new SQSClient(config);
    const dynamo = new DynamoDBClient(config);
    await requireRegion(dynamo);
    await requireCredentials(dynamo, flags.json);
    return {
      kind: 'aws',
      sqs,
      dynamo,
      queueUrl: flags['queue-url'],
      dlqUrl: flags['dlq-url'],
      tableName: flags.table,
      close: () => (sqs.destroy(), dynamo.destroy()),
    };
  }
  const runtime = readRuntimeInfo(dataDirFrom(flags['data-dir']));
  if (!runtime) {
    const { where, start } = noPipelineHere(flags['data-dir']);
    failed(`no local pipeline is running${where} (start it with \`${start}\`); for a deployed stack pass ${deployedFlags}`, flags.json);
  }
  if (flags.relay && !runtime.smsRelay) {
    failed(`the local pipeline runs no SMS relay (start it with \`${noPipelineHere(flags['data-dir'], '--sms-relay telesign').start}\`)`, flags.json);
  }
  const queues = flags.relay && runtime.smsRelay ? runtime.smsRelay : runtime;
  const sqs = new SQSClient({ ...LOCAL_AWS, endpoint: runtime.sqsEndpoint });
  const dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: runtime.dynamodbEndpoint });
  return {
    kind: 'local',
    sqs,
    dynamo,
    queueUrl: queues.queueUrl,
    dlqUrl: queues.dlqUrl,
    tableName: runtime.tableName,
    secretsFile: runtime.secretsFile,
    close: () => (sqs.destroy(), dynamo.destroy()),
  };
}

/**
 * The region a deployed stack's clients are given: --region; else, when AWS_REGION is not set, the
 * AWS CLI's AWS_DEFAULT_REGION, which the SDK for JavaScript does not read (a shell set up for the
 * `aws` commands of the README is then set up for these too); else nothing, and the SDK's own chain
 * (AWS_REGION, the profile's).
 */
export function regionConfig(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): { region?: string } {
  const region = flag || (env.AWS_REGION ? undefined : env.AWS_DEFAULT_REGION);
  return region ? { region } : {};
}

/**
 * A deployed stack is reached in one region: --region, or the usual chain (AWS_REGION, the profile's).
 * Without one the SDK fails only at the first call, with a bare "Region is missing" that names no
 * flag: say what to pass instead, before anything is done.
 */
export async function requireRegion(client: { config: { region: () => Promise<string> } }): Promise<void> {
  let refusal: string | undefined;
  const region = await client.config.region().catch((error: unknown) => void (refusal = error instanceof Error ? error.message : String(error)));
  if (region) return;
  // A region given (by --region, AWS_REGION or the profile) that the SDK refuses ("eu west 1", "eu_west_1")
  // is not a missing one: told "pass --region R", a user who had passed it could not tell what was wrong.
  if (refusal !== undefined && !/^Region is missing$/i.test(refusal)) {
    console.error(`the AWS region is not one the SDK takes (${refusal}): pass --region R with a region's code, such as eu-west-1`);
  } else {
    console.error('no AWS region for the deployed stack: pass --region R (or set AWS_REGION or AWS_DEFAULT_REGION, or a region in your AWS profile)');
  }
  process.exit(USAGE_EXIT_CODE);
}

/**
 * A deployed stack is reached with credentials from the usual chain. Without any, every call fails
 * with the SDK's "Could not load credentials from any providers", which says nothing of how to give
 * them: say it before anything is done (exit 1, as a failed call would), in the --json document too.
 */
export async function requireCredentials(client: { config: { credentials: () => Promise<unknown> } }, json?: boolean): Promise<void> {
  let refusal: string | undefined;
  await client.config.credentials().catch((error: unknown) => void (refusal = error instanceof Error ? error.message : String(error)));
  if (refusal === undefined) return;
  failed(
    `no AWS credentials for the deployed stack (${refusal}): set AWS_PROFILE to a profile, or run \`aws configure\` or \`aws configure sso\` (or \`aws sso login\` when a session ended)`,
    json,
  );
}

/** The stack outputs an operations command may be pointed at, each a flag. */
const DEPLOYED_OPTIONS = {
  'queue-url': { type: 'string' },
  'dlq-url': { type: 'string' },
  table: { type: 'string' },
} as const;

/**
 * The target flags of an operations command: --data-dir and --region, and the stack outputs it
 * uses (`deployed`). Only those: a flag the command would not read (redrive's --table) is refused as
 * unknown rather than accepted and left out of its --help.
 */
export function targetOptions<K extends keyof typeof DEPLOYED_OPTIONS>(...deployed: K[]) {
  const picked = Object.fromEntries(deployed.map((name) => [name, DEPLOYED_OPTIONS[name]])) as Pick<typeof DEPLOYED_OPTIONS, K>;
  return { region: { type: 'string' }, 'data-dir': { type: 'string' }, ...picked } as const;
}
