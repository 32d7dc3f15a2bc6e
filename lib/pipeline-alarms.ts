import { Duration, Stack } from 'aws-cdk-lib';
import type { IHttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import { Alarm, ComparisonOperator, type IMetric, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { QUEUE } from '../functions/core/pipeline-definition.ts';
import type { AnyProvider } from '../functions/providers/index.ts';
import type { LogMetrics } from './log-metrics.ts';
import { checkEmail, checkSetting } from './validate.ts';
import { pascal } from './names.ts';

export interface PipelineAlarmsProps {
  readonly queue: IQueue;
  readonly deadLetterQueue: IQueue;
  readonly api: IHttpApi;
  readonly worker: IFunction;
  /** The metrics counted from the functions' log lines. */
  readonly logMetrics: LogMetrics;
  /** The providers from the registry: one 401 and one quarantine alarm each, confirmation alarms for those that confirm. */
  readonly providers: readonly AnyProvider[];
  /**
   * Where alarm e-mails go (SNS asks the address to confirm first).
   * @default - no subscription; subscribe to the topic yourself
   */
  readonly alarmEmail?: string;
  /**
   * Age of the oldest queued message that counts as "the worker is not keeping up". The default
   * sits well above a full default retry cycle (about 2.5 minutes of back-off over 5 receives).
   * @default 900 (15 minutes)
   */
  readonly maxMessageAgeSeconds?: number;
  /**
   * 401 answers to one provider's route in 5 minutes above which its alarm fires. A few are normal
   * (scanners find public URLs); a flood is a forger, or the provider signing with a key we lack.
   * @default 20
   */
  readonly unauthorizedAlarmThreshold?: number;
  /**
   * Callbacks in 5 minutes the provider's status endpoint contradicts at which the alarm fires.
   * @default 1
   */
  readonly mismatchAlarmThreshold?: number;
  /**
   * Callbacks in 5 minutes the provider's status endpoint does not know (after the worker's
   * retries) at which the alarm fires.
   * @default 1
   */
  readonly notFoundAlarmThreshold?: number;
}

const PERIOD = Duration.minutes(5);

/** The stack outputs an on-call person copies into the operations commands. */
const REDRIVE = 'npm run redrive -- --dlq-url <DeadLetterQueueUrl> --region <region> (try --dry-run first)';
const REPROCESS = (provider: string) => `npm run reprocess -- --table <TableName> --queue-url <QueueUrl> --region <region> --provider ${provider}`;

/**
 * The alarms that mean a callback is stuck, refused, set aside or not believed, all sent (alarm and
 * recovery) to one SNS topic. Each description says what happened and what to do about it: it is the
 * body of the e-mail the on-call person reads.
 */
export class PipelineAlarms extends Construct {
  public readonly topic: Topic;
  public readonly alarms: readonly Alarm[];

  constructor(scope: Construct, id: string, props: PipelineAlarmsProps) {
    super(scope, id);
    const maxAge = checkSetting('maxMessageAgeSeconds', props.maxMessageAgeSeconds ?? 900);
    const unauthorizedThreshold = checkSetting('unauthorizedAlarmThreshold', props.unauthorizedAlarmThreshold ?? 20);
    const mismatchThreshold = checkSetting('mismatchAlarmThreshold', props.mismatchAlarmThreshold ?? 1);
    const notFoundThreshold = checkSetting('notFoundAlarmThreshold', props.notFoundAlarmThreshold ?? 1);
    const { logMetrics } = props;

    this.topic = new Topic(this, 'Topic', { displayName: 'Callback gateway alarms', enforceSSL: true });
    // enforceSSL gives the topic a resource policy, which replaces SNS's default one (the one that
    // lets this account's CloudWatch alarms publish), so the alarms are allowed back explicitly.
    this.topic.grantPublish(
      new ServicePrincipal('cloudwatch.amazonaws.com').withConditions({
        StringEquals: { 'aws:SourceAccount': Stack.of(this).account },
      }),
    );
    if (props.alarmEmail !== undefined) {
      this.topic.addSubscription(new EmailSubscription(checkEmail('alarmEmail', props.alarmEmail)));
    }

    // Named after the stack (the e-mail subject shows the name), so a second gateway in the same
    // account gets its own alarms.
    const stackName = Stack.of(this).stackName;
    const alarms: Alarm[] = [];
    const alarm = (
      alarmId: string,
      metric: IMetric,
      threshold: number,
      description: string,
      comparisonOperator = ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    ) => {
      alarms.push(
        new Alarm(this, alarmId, {
          alarmName: `${stackName}-${alarmId}`,
          metric,
          threshold,
          evaluationPeriods: 1,
          comparisonOperator,
          // No data means no messages, no requests, no matching log line: nothing is wrong.
          treatMissingData: TreatMissingData.NOT_BREACHING,
          alarmDescription: description,
        }),
      );
    };

    alarm(
      'DeadLetterQueueNotEmpty',
      props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: 'Maximum' }),
      1,
      `Callbacks the worker gave up on are in the dead-letter queue (kept ${QUEUE.dlqRetentionDays} days; nothing is lost yet). ` +
        'Find the cause in the worker logs ("record failed"), fix it, then move them back: ' +
        `${REDRIVE}. The worker stores each callback once, so a redrive never duplicates.`,
    );
    alarm(
      'OldestMessageTooOld',
      props.queue.metricApproximateAgeOfOldestMessage({ period: PERIOD, statistic: 'Maximum' }),
      maxAge,
      `A queued callback has waited over ${maxAge} s: the worker is failing or falling behind. Check the WorkerErrors and ` +
        'WorkerConfigurationErrors alarms and the worker logs ("record failed, will retry" names the dependency: table, ' +
        'status endpoint). Messages older than the queue retention are lost, so fix the cause before then.',
    );
    alarm(
      'Api5xx',
      props.api.metricServerError({ period: PERIOD, statistic: 'Sum' }),
      1,
      'The API answered a provider with 5xx. Read the ingest logs ("callback" lines with result "failed" give the reason): ' +
        'a secret missing or still REPLACE_ME (fill it with put-secret-value), the queue refusing messages, or an ingest ' +
        'function failing. Providers retry, but not forever.',
    );
    alarm(
      'WorkerErrors',
      props.worker.metricErrors({ period: PERIOD, statistic: 'Sum' }),
      1,
      'The worker crashed or timed out on a whole batch (single failed records are retried without counting here). ' +
        'Read the worker logs; the batch is redelivered and, past the receive limit, lands in the dead-letter queue.',
    );
    alarm(
      'WorkerConfigurationErrors',
      logMetrics.workerConfigurationErrors,
      1,
      'The worker cannot process callbacks until a person fixes its configuration ("record failed: configuration" in the ' +
        'worker logs). Usually the TemboPlus secret: a 403 from TemboPlus means its apiToken is wrong, or apiToken/baseUrl ' +
        `is missing. Fix the secret (put-secret-value; functions reload it within the secret cache time); records retry by ` +
        `themselves, and any that reached the dead-letter queue: ${REDRIVE}.`,
    );

    for (const provider of props.providers) {
      const name = pascal(provider.id);
      alarm(
        `${name}Unauthorized`,
        logMetrics.unauthorized(provider.id),
        unauthorizedThreshold,
        `More than ${unauthorizedThreshold} requests to the ${provider.displayName} route were answered 401 in 5 minutes ` +
          `(ingest log "callback" lines give the reason). Either someone is forging callbacks (route throttling limits them; ` +
          `see sourceIp in the API access logs), or ${provider.displayName} signs with values the secret does not hold: after ` +
          'a rotation, put the old values back under "previous" in the secret until the provider uses the new ones.',
        ComparisonOperator.GREATER_THAN_THRESHOLD,
      );
      alarm(
        `${name}Quarantined`,
        logMetrics.quarantined(provider.id),
        1,
        `An authentic ${provider.displayName} callback did not match our schema and was quarantined (answered 200, kept ` +
          `in the table under "${provider.id}#quarantine" with the reason). ${provider.displayName} changed its payload or ` +
          `our schema is too strict: fix functions/providers/${provider.id}.ts, deploy, then ${REPROCESS(provider.id)}.`,
      );
      if (!provider.lookup) continue;
      alarm(
        `${name}ConfirmationMismatch`,
        logMetrics.confirmations(provider.id, 'mismatch'),
        mismatchThreshold,
        `${provider.displayName}'s status endpoint contradicts a callback's status. The state keeps ${provider.displayName}'s ` +
          `own status, not the callback's. Find the event (confirmation "mismatch" in the table or the worker's "stored" ` +
          `lines) and check it with ${provider.displayName}; repeated mismatches can mean forged callbacks with a leaked path ` +
          'token: rotate the token.',
      );
      alarm(
        `${name}ConfirmationNotFound`,
        logMetrics.confirmations(provider.id, 'not_found'),
        notFoundThreshold,
        `${provider.displayName}'s status endpoint does not know a transfer a callback reported, even after ` +
          `${QUEUE.settleAttempts} attempts. The callback is stored but not believed (confirmation "not_found"). Check the ` +
          `reference with ${provider.displayName} and that baseUrl points at the right environment (sandbox or production); ` +
          'if the transfer is not theirs, the callback was forged: rotate the path token.',
      );
    }

    this.alarms = alarms;
    const action = new SnsAction(this.topic);
    for (const each of this.alarms) {
      each.addAlarmAction(action);
      each.addOkAction(action);
    }
  }
}

/** `temboplus` → `Temboplus`. */
