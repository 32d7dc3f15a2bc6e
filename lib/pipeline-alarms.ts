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
import { checkEmail, checkSetting } from './validate.ts';

export interface PipelineAlarmsProps {
  readonly queue: IQueue;
  readonly deadLetterQueue: IQueue;
  readonly api: IHttpApi;
  readonly worker: IFunction;
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
}

const PERIOD = Duration.minutes(5);

/** The few alarms that mean a callback is stuck or refused, all sent to one SNS topic. */
export class PipelineAlarms extends Construct {
  public readonly topic: Topic;
  public readonly alarms: readonly Alarm[];

  constructor(scope: Construct, id: string, props: PipelineAlarmsProps) {
    super(scope, id);
    const maxAge = checkSetting('maxMessageAgeSeconds', props.maxMessageAgeSeconds ?? 900);

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

    const alarm = (alarmId: string, metric: IMetric, threshold: number, description: string) =>
      new Alarm(this, alarmId, {
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        // No data means no messages, no requests, no invocations: nothing is wrong.
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });

    this.alarms = [
      alarm(
        'DeadLetterQueueNotEmpty',
        props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: 'Maximum' }),
        1,
        'Callbacks the worker gave up on are in the dead-letter queue. Read the worker logs, fix the cause, then redrive the DLQ.',
      ),
      alarm(
        'OldestMessageTooOld',
        props.queue.metricApproximateAgeOfOldestMessage({ period: PERIOD, statistic: 'Maximum' }),
        maxAge,
        `A queued callback has waited over ${maxAge} s: the worker is failing or falling behind.`,
      ),
      alarm(
        'Api5xx',
        props.api.metricServerError({ period: PERIOD, statistic: 'Sum' }),
        1,
        'The API answered a provider with 5xx: a secret is missing or still REPLACE_ME, the queue refused a message, or an ingest function failed. Providers retry, but not forever.',
      ),
      alarm(
        'WorkerErrors',
        props.worker.metricErrors({ period: PERIOD, statistic: 'Sum' }),
        1,
        'The worker crashed or timed out on a whole batch (single failed records are retried without counting here).',
      ),
    ];
    const action = new SnsAction(this.topic);
    for (const each of this.alarms) {
      each.addAlarmAction(action);
      each.addOkAction(action);
    }
  }
}
