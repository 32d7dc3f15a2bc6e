import { randomUUID } from 'node:crypto';
import { startAwsJsonService } from './aws-json-stand-in.ts';

/**
 * A STAND-IN for the SQS operations `npm run redrive` uses on a deployed stack (DLQ redrive with
 * SQS's own message-move task), for the test of that command line: the local SQS engine has no
 * move task. It speaks the service's protocol (AWS JSON 1.0: `POST /`, `X-Amz-Target:
 * AmazonSQS.<Operation>`), so the command's own SDK client reaches it through AWS_ENDPOINT_URL_SQS.
 *
 * The move task behaves as SQS documents it: without a DestinationArn, each message goes back to
 * the queue it was moved from by that queue's redrive policy; a message sent to the DLQ directly
 * (with SendMessage, as an EventBridge rule's dead-letter queue is sent to) has no such source, and
 * the task fails with CouldNotDetermineMessageSource, leaving it in the DLQ.
 * @see https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html
 * @see https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/troubleshooting-dlq-redrive.html
 */
export interface StandInMessage {
  readonly body: string;
  /** The ARN of the queue whose redrive policy moved it to the DLQ; absent when it was sent to the DLQ directly. */
  readonly movedFrom?: string;
}

export interface StandInQueue {
  readonly url: string;
  readonly arn: string;
  readonly messages: StandInMessage[];
  /** The DLQ its redrive policy names. */
  readonly deadLetterTargetArn?: string;
}

export interface SqsMoveStandIn {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  /** Add a queue (`name` makes its URL and ARN); returns it. */
  queue(name: string, deadLetterTarget?: StandInQueue): StandInQueue;
  /** Every StartMessageMoveTask request, oldest first. */
  readonly moveRequests: Record<string, unknown>[];
  /** When true, ListDeadLetterSourceQueues is refused (credentials without that permission). */
  denyListSources: boolean;
  stop(): Promise<void>;
}

interface Task {
  readonly TaskHandle: string;
  Status: 'RUNNING' | 'COMPLETED' | 'FAILED';
  readonly SourceArn: string;
  readonly DestinationArn?: string;
  ApproximateNumberOfMessagesMoved: number;
  readonly ApproximateNumberOfMessagesToMove: number;
  FailureReason?: string;
  readonly StartedTimestamp: number;
}

const ACCOUNT = '000000000000';
const REGION = 'us-east-1';

export async function startSqsMoveStandIn(): Promise<SqsMoveStandIn> {
  const queues: StandInQueue[] = [];
  const tasks: Task[] = [];
  const moveRequests: Record<string, unknown>[] = [];
  const notFound = { status: 400, body: { __type: 'com.amazonaws.sqs#QueueDoesNotExist', message: 'The specified queue does not exist.' } };
  const byUrl = (url: unknown) => queues.find((queue) => queue.url === url);
  const byArn = (arn: unknown) => queues.find((queue) => queue.arn === arn);
  let endpoint = '';

  const server = await startAwsJsonService(
    {
      'AmazonSQS.GetQueueAttributes': ({ QueueUrl }) => {
        const queue = byUrl(QueueUrl);
        if (!queue) return notFound;
        return { status: 200, body: { Attributes: { ApproximateNumberOfMessages: String(queue.messages.length), ApproximateNumberOfMessagesNotVisible: '0', QueueArn: queue.arn } } };
      },
      'AmazonSQS.ListDeadLetterSourceQueues': ({ QueueUrl }) => {
        if (standIn.denyListSources) return { status: 400, body: { __type: 'com.amazon.coral.service#AccessDeniedException', message: 'not authorized to perform sqs:ListDeadLetterSourceQueues' } };
        const dlq = byUrl(QueueUrl);
        if (!dlq) return notFound;
        return { status: 200, body: { queueUrls: queues.filter((queue) => queue.deadLetterTargetArn === dlq.arn).map((queue) => queue.url) } };
      },
      'AmazonSQS.StartMessageMoveTask': (input) => {
        moveRequests.push(input);
        const source = byArn(input.SourceArn);
        if (!source) return notFound;
        const destination = input.DestinationArn === undefined ? undefined : byArn(input.DestinationArn);
        if (input.DestinationArn !== undefined && !destination) return notFound;
        const task: Task = {
          TaskHandle: randomUUID(),
          Status: 'RUNNING',
          SourceArn: source.arn,
          ...(destination ? { DestinationArn: destination.arn } : {}),
          ApproximateNumberOfMessagesMoved: 0,
          ApproximateNumberOfMessagesToMove: source.messages.length,
          StartedTimestamp: Date.now(),
        };
        tasks.push(task);
        // Moved in order; the first message with nowhere to go fails the task and stays.
        while (source.messages.length > 0) {
          const message = source.messages[0];
          const target = destination ?? byArn(message.movedFrom);
          if (!target) {
            task.Status = 'FAILED';
            task.FailureReason = 'CouldNotDetermineMessageSource';
            break;
          }
          source.messages.shift();
          target.messages.push({ body: message.body });
          task.ApproximateNumberOfMessagesMoved++;
        }
        if (task.Status === 'RUNNING') task.Status = 'COMPLETED';
        return { status: 200, body: { TaskHandle: task.TaskHandle } };
      },
      'AmazonSQS.ListMessageMoveTasks': ({ SourceArn }) => ({
        status: 200,
        body: { Results: tasks.filter((task) => task.SourceArn === SourceArn).reverse().slice(0, 1) },
      }),
    },
    '1.0',
  );
  endpoint = server.endpoint;
  const standIn: SqsMoveStandIn = {
    endpoint,
    moveRequests,
    denyListSources: false,
    queue(name, deadLetterTarget) {
      const queue: StandInQueue = {
        url: `${endpoint}/${ACCOUNT}/${name}`,
        arn: `arn:aws:sqs:${REGION}:${ACCOUNT}:${name}`,
        messages: [],
        ...(deadLetterTarget ? { deadLetterTargetArn: deadLetterTarget.arn } : {}),
      };
      queues.push(queue);
      return queue;
    },
    stop: () => server.stop(),
  };
  return standIn;
}
