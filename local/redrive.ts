import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ListMessageMoveTasksCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  StartMessageMoveTaskCommand,
  type Message,
} from '@aws-sdk/client-sqs';
import { parseCli, positiveInt } from './cli-args.ts';
import { resolveTarget, TARGET_OPTIONS, type Target } from './aws-target.ts';

const USAGE = `usage: npm run redrive -- [--dry-run] [--max N]
       npm run redrive -- --dlq-url URL --region R [--dry-run] [--max-per-second N]

  Moves messages from the dead-letter queue back to the main queue, where the worker processes them
  again (it is idempotent: anything already stored is not stored twice). Fix the cause first (see
  the worker's error logs). On AWS this starts SQS's own message-move task and follows its progress;
  locally it moves the messages itself.

  --dry-run            show what would move, move nothing
  --max N              move at most N messages (local)
  --max-per-second N   rate of SQS's move task (AWS; default: SQS's own)`;

const { values } = parseCli(
  { ...TARGET_OPTIONS, 'dry-run': { type: 'boolean', default: false }, max: { type: 'string' }, 'max-per-second': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  USAGE,
);
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const target = resolveTarget(values);
if (!target.dlqUrl) {
  console.error('--dlq-url is required for a deployed stack (the stack output DeadLetterQueueUrl)');
  process.exit(2);
}

async function depth(url: string): Promise<{ visible: number; inFlight: number; arn: string }> {
  const { Attributes = {} } = await target.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'QueueArn'] }),
  );
  return { visible: Number(Attributes.ApproximateNumberOfMessages ?? 0), inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0), arn: Attributes.QueueArn ?? '' };
}

/** One line per message: what it is, without its content (which may hold personal data). */
function describe(message: Message): string {
  try {
    const body = JSON.parse(message.Body ?? '') as { provider?: string; receivedAt?: string; requestId?: string; quarantine?: unknown };
    return `${body.receivedAt ?? '?'}  ${String(body.provider ?? '?').padEnd(10)} request ${body.requestId ?? '?'}${body.quarantine ? '  (quarantined)' : ''}  receives ${message.Attributes?.ApproximateReceiveCount ?? '?'}`;
  } catch {
    return `(not a callback message: ${message.MessageId})`;
  }
}

/** Look at up to 10 messages without taking them (visibility 0: they stay available). */
async function peek(t: Target): Promise<void> {
  const { Messages = [] } = await t.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: t.dlqUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 0, WaitTimeSeconds: 0, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }),
  );
  for (const message of Messages) console.log(`  ${describe(message)}`);
}

async function moveLocally(t: Target, limit: number): Promise<number> {
  let moved = 0;
  const { visible, inFlight } = await depth(t.dlqUrl!);
  const total = visible + inFlight;
  while (moved < limit) {
    const { Messages = [] } = await t.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: t.dlqUrl, MaxNumberOfMessages: Math.min(10, limit - moved), VisibilityTimeout: 60, WaitTimeSeconds: 1 }),
    );
    if (Messages.length === 0) break;
    const sent = await t.sqs.send(
      new SendMessageBatchCommand({ QueueUrl: t.queueUrl, Entries: Messages.map((m, i) => ({ Id: String(i), MessageBody: m.Body ?? '' })) }),
    );
    // Delete only what the main queue accepted; the rest reappears in the DLQ after 60 s.
    const accepted = new Set((sent.Successful ?? []).map((entry) => Number(entry.Id)));
    const done = Messages.filter((_, i) => accepted.has(i));
    if (done.length > 0) {
      await t.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: t.dlqUrl, Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })) }));
    }
    moved += done.length;
    process.stdout.write(`\rmoved ${moved}/${Math.max(total, moved)}`);
    if (done.length < Messages.length) {
      console.error(`\n${Messages.length - done.length} message(s) were not accepted by the main queue; they stay in the DLQ`);
      break;
    }
  }
  process.stdout.write('\n');
  return moved;
}

async function moveOnAws(t: Target, dlqArn: string): Promise<void> {
  const rate = values['max-per-second'] ? positiveInt('max-per-second', values['max-per-second'], 0) : undefined;
  const { TaskHandle } = await t.sqs.send(new StartMessageMoveTaskCommand({ SourceArn: dlqArn, ...(rate ? { MaxNumberOfMessagesPerSecond: rate } : {}) }));
  console.log(`started SQS message-move task ${TaskHandle}`);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const { Results = [] } = await t.sqs.send(new ListMessageMoveTasksCommand({ SourceArn: dlqArn, MaxResults: 1 }));
    const task = Results[0];
    if (!task) continue;
    process.stdout.write(`\r${task.Status}: moved ${task.ApproximateNumberOfMessagesMoved ?? 0}/${task.ApproximateNumberOfMessagesToMove ?? '?'}`);
    if (task.Status !== 'RUNNING') {
      process.stdout.write('\n');
      if (task.Status !== 'COMPLETED') {
        console.error(`move task ended ${task.Status}${task.FailureReason ? `: ${task.FailureReason}` : ''}`);
        process.exitCode = 1;
      }
      return;
    }
  }
}

try {
  const before = await depth(target.dlqUrl);
  console.log(`DLQ holds ${before.visible} message(s)${before.inFlight ? ` (+${before.inFlight} in flight)` : ''}${target.kind === 'local' ? ' [local pipeline]' : ''}`);
  const held = before.visible + before.inFlight;
  if (values['dry-run']) {
    if (before.visible > 0) await peek(target);
    console.log(held > 0 ? `dry run: would move ${held} message(s) to the main queue` : 'dry run: nothing to move');
  } else if (held > 0) {
    if (target.kind === 'aws') await moveOnAws(target, before.arn);
    else {
      if (!target.queueUrl) throw new Error('main queue URL unknown');
      const moved = await moveLocally(target, positiveInt('max', values.max, Number.MAX_SAFE_INTEGER) || Number.MAX_SAFE_INTEGER);
      console.log(`moved ${moved} message(s) back to the main queue`);
    }
  }
} catch (error) {
  console.error(`redrive failed: ${(error as Error).message}`);
  process.exitCode = 1;
} finally {
  target.close();
}
