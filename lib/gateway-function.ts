import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime } from 'aws-cdk-lib/aws-lambda';
import { LogLevel, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/**
 * Seconds a function keeps using a secret it read (the handlers' own default). A rotation waits this
 * long after adding the new values before the provider switches to them.
 */
export const DEFAULT_SECRET_CACHE_SECONDS = 300;

/** The repository root: bundling entries, the lock file and esbuild's working directory hang off it. */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A Lambda entry point under functions/handlers/, e.g. `ingest`. */
export function handlerEntry(name: string): string {
  return path.join(REPO_ROOT, 'functions', 'handlers', `${name}.ts`);
}

export interface GatewayFunctionProps {
  /** Absolute path of the TypeScript file that exports `handler`. */
  readonly entry: string;
  readonly description: string;
  readonly memorySize: number;
  readonly timeout: Duration;
  /** What the handler reads from its environment (functions/handlers/ names each variable it needs). */
  readonly environment: Readonly<Record<string, string>>;
  /**
   * How long the function's log lines are kept.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
}

/**
 * A Node.js 24 arm64 function bundled by the local esbuild (no Docker), with its own log group and
 * its own role. The role starts empty: no AWSLambdaBasicExecutionRole, only write access to its log
 * group, and whatever the caller grants through `grantXxx`.
 */
export class GatewayFunction extends Construct {
  public readonly function: NodejsFunction;
  public readonly role: Role;
  public readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: GatewayFunctionProps) {
    super(scope, id);

    this.logGroup = new LogGroup(this, 'Logs', { retention: props.logRetention ?? RetentionDays.ONE_MONTH });
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs: ${props.description}`,
    });
    this.logGroup.grantWrite(this.role);

    this.function = new NodejsFunction(this, 'Function', {
      entry: props.entry,
      handler: 'handler',
      description: props.description,
      // nodejs22.x is deprecated on 2027-04-30 and refuses function updates from 2027-07-01; 24 is
      // the current LTS runtime (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html).
      // The handlers are async functions: Node 24 no longer runs callback-style handlers.
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize,
      timeout: props.timeout,
      role: this.role,
      logGroup: this.logGroup,
      environment: { ...props.environment, NODE_OPTIONS: '--enable-source-maps' },
      projectRoot: REPO_ROOT,
      depsLockFilePath: path.join(REPO_ROOT, 'package-lock.json'),
      bundling: {
        // Nothing under functions/ uses import.meta or top-level await, so CommonJS runs as is.
        format: OutputFormat.CJS,
        target: 'node24',
        minify: true,
        sourceMap: true,
        // Stack traces only need the mappings; leaving the sources out keeps the zip small.
        sourcesContent: false,
        // The nodejs24.x runtime provides AWS SDK v3.
        externalModules: ['@aws-sdk/*'],
        logLevel: LogLevel.WARNING,
      },
    });
  }
}
