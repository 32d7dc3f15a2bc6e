import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CfnElement, Duration, Stack } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { ApplicationLogLevel, Architecture, type CfnFunction, LoggingFormat, Runtime, SystemLogLevel } from 'aws-cdk-lib/aws-lambda';
import { LogLevel, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { type ApplicationLogLevelSetting, SETTING_DEFAULTS, type SystemLogLevelSetting } from './validate.ts';

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

/** What Lambda's advanced logging controls keep of a function's lines. */
export interface FunctionLogging {
  /**
   * Application lines below this level are dropped (by the logger first, which reads Lambda's
   * AWS_LAMBDA_LOG_LEVEL, then by Lambda).
   * @default INFO
   */
  readonly applicationLogLevel?: ApplicationLogLevelSetting;
  /**
   * Lambda's own lines below this level are dropped: at WARN, the START and REPORT lines of every
   * invocation (and their Duration, Billed Duration, Max Memory Used and Init Duration).
   * @default WARN
   */
  readonly systemLogLevel?: SystemLogLevelSetting;
  /**
   * How long the function's log lines are kept.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
}

export interface GatewayFunctionProps extends FunctionLogging {
  /** Absolute path of the TypeScript file that exports `handler`. */
  readonly entry: string;
  readonly description: string;
  readonly memorySize: number;
  readonly timeout: Duration;
  /** What the handler reads from its environment (functions/handlers/ names each variable it needs). */
  readonly environment: Readonly<Record<string, string>>;
  /**
   * Expressions the bundler replaces by constants (esbuild `define`): values known when the stack is
   * built, which let esbuild drop code the function can never run.
   * @default none
   */
  readonly define?: Readonly<Record<string, string>>;
}

/**
 * A Node.js 24 arm64 function bundled by the local esbuild (no Docker), the AWS SDK included, with
 * its own log group and its own role. The role starts empty: no AWSLambdaBasicExecutionRole, only write access to its log
 * group, and whatever the caller grants through `grantXxx`.
 */
export class GatewayFunction extends Construct {
  public readonly function: NodejsFunction;
  public readonly role: Role;
  public readonly logGroup: LogGroup;
  /** The function's DependsOn, written whole (so CDK's own dependencies do not reach it). */
  private readonly dependsOn: string[];

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
      // Advanced logging controls (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html):
      // log-level filtering needs the JSON format. Our lines already are JSON objects with `level`
      // and an RFC 3339 `timestamp`, which Lambda passes on as they are, not encoded twice
      // (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-logformat.html),
      // so the metric filters and queries read the same fields. By default Lambda sends a START and
      // a REPORT line for every invocation (its INFO level); WARN keeps only its warnings, so those
      // bytes are not ingested on every invocation. What goes with them: each invocation's Duration,
      // Billed Duration, Max Memory Used and Init Duration as log lines. The AWS/Lambda metrics
      // (Duration, Errors, Throttles, ConcurrentExecutions) do not come from these lines and stay.
      loggingFormat: LoggingFormat.JSON,
      applicationLogLevelV2: ApplicationLogLevel[props.applicationLogLevel ?? SETTING_DEFAULTS.applicationLogLevel],
      systemLogLevelV2: SystemLogLevel[props.systemLogLevel ?? SETTING_DEFAULTS.systemLogLevel],
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
        // The AWS SDK is bundled from the versions package-lock.json pins, not left to the copy the
        // runtime ships (which AWS updates on its own schedule): what bounds a queue send
        // (functions/adapters/sqs.ts: requestHandler timeouts, throwOnRequestTimeout) is then the
        // behaviour the tests ran against. `npm run bench` (section 2) measures the cost: each
        // bundle grows by about 0.5 MB (0.4 MB zipped) and its init takes about as long as loading
        // the runtime's SDK modules would.
        externalModules: [],
        ...(props.define === undefined ? {} : { define: { ...props.define } }),
        logLevel: LogLevel.WARNING,
      },
    });

    // CDK makes the function depend on its role and on the role's policy. The role dependency is
    // already there through Fn::GetAtt Role.Arn (cfn-lint W3005: redundant), so only the policy's
    // stays: the grants must exist before Lambda checks them (SQS event source, log group).
    const policy = this.role.node.findChild('DefaultPolicy').node.defaultChild as CfnElement;
    this.dependsOn = [Stack.of(this).getLogicalId(policy)];
    (this.function.node.defaultChild as CfnFunction).addOverride('DependsOn', this.dependsOn);
  }

  /** Create or update the function only after `other` (another function's resource, say). */
  public dependOn(other: CfnElement): void {
    this.dependsOn.push(Stack.of(this).getLogicalId(other));
    (this.function.node.defaultChild as CfnFunction).addOverride('DependsOn', this.dependsOn);
  }
}
