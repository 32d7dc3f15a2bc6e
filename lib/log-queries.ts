import { Stack } from 'aws-cdk-lib';
import { CfnQueryDefinition, type ILogGroup } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { checkSetting, SETTING_DEFAULTS } from './validate.ts';

/** Which log groups a query reads: `ingestAndWorker` is every ingest function's and the worker's. */
export type QueryLogs = 'ingest' | 'worker' | 'access' | 'ingestAndWorker';

export interface SavedQuery {
  /** The question it answers: its name in the console, under the stack's folder. */
  readonly title: string;
  readonly logs: QueryLogs;
  /** CloudWatch Logs Insights query language (the fields are those of our JSON lines). */
  readonly query: string;
}

/**
 * The questions the alarm texts ask, as saved CloudWatch Logs Insights queries. Each reads the
 * fields our lines carry (lib/log-metrics.ts lists them); `like` on `status` works whether Logs
 * Insights reads the access log's status as text or as a number.
 * Syntax: https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax.html
 */
export function savedQueries(manyReceivesAlarmCount: number = SETTING_DEFAULTS.manyReceivesAlarmCount) {
  return {
    failedRecords: {
      title: 'Records that failed, and why',
      logs: 'worker',
      query: [
        'fields @timestamp, level, message, messageId, receiveCount, error, function_request_id',
        'filter message like /^record failed/',
        'sort @timestamp desc',
        'limit 200',
      ].join('\n| '),
    },
    failuresByError: {
      title: 'Worker failures by error',
      logs: 'worker',
      query: [
        'filter message like /^record failed/',
        'stats count(*) as failures, max(receiveCount) as maxReceives by message, error',
        'sort failures desc',
      ].join('\n| '),
    },
    receivedManyTimes: {
      title: `Records received ${manyReceivesAlarmCount} times or more`,
      logs: 'worker',
      query: [
        'fields @timestamp, messageId, receiveCount, error',
        `filter message like /^record failed/ and receiveCount >= ${checkSetting('manyReceivesAlarmCount', manyReceivesAlarmCount)}`,
        'sort receiveCount desc, @timestamp desc',
        'limit 200',
      ].join('\n| '),
    },
    unauthorized: {
      title: '401s by provider and reason',
      logs: 'ingest',
      query: ['filter message = "callback" and statusCode = 401', 'stats count(*) as answers by provider, reason', 'sort answers desc'].join('\n| '),
    },
    quarantined: {
      title: 'Quarantined callbacks by provider and reason',
      // Ingest's lines, and the worker's for the callbacks it quarantines itself (a reprocessed one
      // that still does not parse): each counted once, as the Quarantined metric counts them.
      logs: 'ingestAndWorker',
      query: [
        'filter (message = "callback" or message = "quarantined") and result = "quarantined"',
        'stats count(*) as callbacks by provider, reason',
        'sort callbacks desc',
      ].join('\n| '),
    },
    serverErrors: {
      title: '5xx answers by provider and reason',
      logs: 'ingest',
      query: ['filter message = "callback" and statusCode >= 500', 'stats count(*) as answers by provider, reason', 'sort answers desc'].join('\n| '),
    },
    /**
     * Every 5xx the API answered, from its access log: those the ingest answered (its reason is in
     * serverErrors) and those API Gateway answered itself, when the ingest function crashed, timed
     * out, failed to start or was throttled, which leave no line in the ingest's log group.
     */
    apiServerErrors: {
      title: '5xx answers by route and cause (API access log)',
      logs: 'access',
      query: ['filter status like /^5/', 'stats count(*) as answers by routeKey, status, integrationStatus, integrationError, error', 'sort answers desc'].join('\n| '),
    },
    refusals: {
      title: 'Callbacks not accepted, by provider, status and reason',
      logs: 'ingest',
      query: [
        'filter message = "callback" and result != "accepted"',
        'stats count(*) as callbacks by provider, statusCode, result, reason',
        'sort callbacks desc',
      ].join('\n| '),
    },
    confirmations: {
      title: 'Callbacks the status endpoint contradicts or does not know',
      logs: 'worker',
      query: [
        // The lines the confirmation alarms count: on arrival ("stored") and at re-checks ("rechecked", with verdict and rechecks).
        'fields @timestamp, message, provider, subjectId, part, status, confirmation, confirmedStatus, differences, verdict, rechecks, requestId',
        'filter (message = "stored" or message = "rechecked") and (confirmation = "mismatch" or confirmation = "not_found")',
        'sort @timestamp desc',
        'limit 200',
      ].join('\n| '),
    },
    throttled: {
      title: 'Throttled requests (429) by route and source',
      logs: 'access',
      query: ['filter status like /^429$/', 'stats count(*) as throttled by routeKey, ip', 'sort throttled desc'].join('\n| '),
    },
    lastAccepted: {
      title: 'Last accepted callback per provider',
      logs: 'worker',
      query: ['filter message = "stored" and result != "redelivered"', 'stats max(@timestamp) as lastAccepted, count(*) as accepted by provider'].join('\n| '),
    },
    lag: {
      title: 'Lag from receipt to stored state, per provider',
      logs: 'worker',
      query: [
        'filter message = "stored" and result = "stored"',
        'stats count(*) as stored, avg(lagMs) as avgMs, pct(lagMs, 99) as p99Ms, max(lagMs) as maxMs by provider',
      ].join('\n| '),
    },
    stale: {
      title: 'Subjects gone stale (re-checks ran out)',
      logs: 'worker',
      query: [
        'fields @timestamp, provider, subjectId, part, status, outcome, verdict, rechecks',
        'filter message = "recheck: stale"',
        'sort @timestamp desc',
        'limit 200',
      ].join('\n| '),
    },
    recheckFaults: {
      title: 'Re-checks the status endpoint did not answer, by provider and fault',
      logs: 'worker',
      query: [
        'filter message = "recheck: status endpoint fault, asking again later" or message = "recheck: configuration"',
        'stats count(*) as faults, max(faultsInARow) as longestRun by provider, fault',
        'sort faults desc',
      ].join('\n| '),
    },
    outcomes: {
      title: 'Stored callbacks by provider and outcome',
      logs: 'worker',
      query: ['filter message = "stored"', 'stats count(*) as callbacks by provider, outcome, result', 'sort provider, outcome'].join('\n| '),
    },
  } as const satisfies Record<string, SavedQuery>;
}

export type SavedQueryId = keyof ReturnType<typeof savedQueries>;

/** A saved query's name: a folder per stack (stage), so stages never share a query. */
export function savedQueryName(stackName: string, title: string): string {
  return `${stackName}/${title}`;
}

export interface LogQueriesProps {
  readonly ingestLogs: readonly ILogGroup[];
  readonly workerLogs: ILogGroup;
  readonly accessLogs: ILogGroup;
  /** @default SETTING_DEFAULTS.manyReceivesAlarmCount */
  readonly manyReceivesAlarmCount?: number;
}

/**
 * The saved queries (AWS::Logs::QueryDefinition) in the console's Logs Insights, in a folder named
 * after the stack: a name with `/` is a folder path
 * (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-logs-querydefinition.html).
 */
export class LogQueries extends Construct {
  public readonly queries: ReturnType<typeof savedQueries>;
  private readonly logGroups: Readonly<Record<QueryLogs, readonly ILogGroup[]>>;

  constructor(scope: Construct, id: string, props: LogQueriesProps) {
    super(scope, id);
    this.queries = savedQueries(props.manyReceivesAlarmCount);
    this.logGroups = { ingest: props.ingestLogs, worker: [props.workerLogs], access: [props.accessLogs], ingestAndWorker: [...props.ingestLogs, props.workerLogs] };
    for (const [queryId, query] of Object.entries(this.queries)) {
      new CfnQueryDefinition(this, queryId, {
        name: this.nameOf(queryId as SavedQueryId),
        queryString: query.query,
        logGroupNames: this.logGroupNamesOf(queryId as SavedQueryId),
      });
    }
  }

  /** The saved query's name, as the console shows it. */
  public nameOf(id: SavedQueryId): string {
    return savedQueryName(Stack.of(this).stackName, this.queries[id].title);
  }

  /** The log groups the query reads. */
  public logGroupNamesOf(id: SavedQueryId): string[] {
    return this.logGroups[this.queries[id].logs].map((group) => group.logGroupName);
  }
}
