import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ListDeadLetterSourceQueuesCommand,
  ListMessageMoveTasksCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
  StartMessageMoveTaskCommand,
  type Message,
} from '@aws-sdk/client-sqs';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { checkArguments, intFlag, parseCli, USAGE_EXIT_CODE } from './cli-args.ts';
import { alignColumns, printJson, say } from './cli-output.ts';
import { regionConfig, requireCredentials, requireRegion, resolveTarget, targetOptions, type Target } from './aws-target.ts';
import { replayEventsDlq, type EventsReplayReport, type ReplayedMessage } from './events-replay.ts';
import { boundedEventBridgeClient } from '../functions/adapters/eventbridge.ts';
import { DETAIL_TYPES } from '../functions/core/publish.ts';
import { printable } from '../functions/shared/log.ts';

const USAGE = `usage: npm run redrive -- [--relay] [--dry-run] [--max N] [--max-per-second N] [--json]
       npm run redrive -- --dlq-url URL --region R [--queue-url URL] [--dry-run] [--max-per-second N] [--json]
       npm run redrive -- --events --dlq-url URL --bus NAME --table NAME --region R [--dry-run] [--json]

  Moves messages from the dead-letter queue back to the main queue, where the worker processes them
  again (it is idempotent: anything already stored is not stored twice). Fix the cause first (see
  the worker's error logs). On AWS this starts SQS's own message-move task and follows its progress;
  locally it moves the messages itself.

  --relay              locally: the SMS relay's DLQ back to the relay queue (on AWS, pass the stack
                       output RelayDeadLetterQueueUrl as --dlq-url)
  --dry-run            show what would move, move nothing (each message's receives: the worker's or
                       the relay's before it went to the DLQ)
  --max N              move at most N messages, 1 or more (local only: SQS's move task moves the
                       whole DLQ)
  --queue-url URL      where the messages go back to (AWS; default: the one queue whose DLQ it is)
  --max-per-second N   move at most N messages a second, 1 to 500 (on AWS the rate of SQS's move
                       task; default: as fast as it goes, on AWS SQS's own rate)
  --json               print one JSON document on stdout: {target, dryRun, dlq, moved, messages, …};
                       progress goes to stderr
  --dlq-url URL        a deployed stack's DLQ (its output DeadLetterQueueUrl), with --region R
  --data-dir DIR       locally: the pipeline's data folder (default: .local-data)

  --events             the events DLQ (--dlq-url: the stack output EventsDeadLetterQueueUrl): each
                       batch of changes the publisher gave up on (DDBStreamBatchInfo) is read again
                       from the table's stream and published on --bus (the stack output
                       EventBusName) as the publisher would have, same eventIds, then deleted from
                       the DLQ; records past the stream's 24 hours, and events the bus refused for
                       what they hold (setAside), are listed and left in the DLQ. A bus still
                       failing, or a stream read failing, stops it (exit 1). --dry-run: what would
                       be published, by ids.
                       Ctrl-C: ends after the message under way, the rest left visible (exit 130)
  --bus NAME           with --events: the bus to publish on (the stack output EventBusName)
  --table NAME         with --events: the table (the stack output TableName); a message naming
                       another table's stream is not read, and left (exit 1)`;

const { values, positionals } = parseCli(
  {
    ...targetOptions('dlq-url', 'queue-url', 'table'),
    relay: { type: 'boolean', default: false },
    'dry-run': { type: 'boolean', default: false },
    max: { type: 'string' },
    'max-per-second': { type: 'string' },
    json: { type: 'boolean', default: false },
    events: { type: 'boolean', default: false },
    bus: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  USAGE,
);
// A word is not a flag (`npm run redrive dry-run`): refused, not a redrive as if it had not been given.
checkArguments(positionals, USAGE, []);
const json = values.json;
if (values.events) {
  const misplaced = (['relay', 'max', 'max-per-second', 'queue-url', 'data-dir'] as const).filter((name) => values[name] !== undefined && values[name] !== false);
  if (misplaced.length > 0) usageError(`--events replays the events DLQ of a deployed stack: ${misplaced.map((name) => `--${name}`).join(', ')} does not apply`);
  if (!values['dlq-url'] || !values.bus || !values.table) {
    usageError('--events needs --dlq-url (the stack output EventsDeadLetterQueueUrl), --bus (the stack output EventBusName) and --table (the stack output TableName)');
  }
  await replayEvents(values['dlq-url'], values.bus, values.table, values.region, values['dry-run'], json);
  // What follows is the other DLQs' redrive: end here, once stdout has taken the whole answer.
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  process.exit();
}
if (values.bus !== undefined || values.table !== undefined) usageError(`${values.bus !== undefined ? '--bus' : '--table'} goes with --events (the events DLQ)`);

/** Exit 2 with what is wrong with the command line, before anything is done. */
function usageError(problem: string): never {
  console.error(`${problem}\n\n${USAGE}`);
  process.exit(USAGE_EXIT_CODE);
}

/** `--events`: the events DLQ replayed (local/events-replay.ts), its answer on stdout. */
async function replayEvents(dlqUrl: string, bus: string, tableName: string, region: string | undefined, dryRun: boolean, asJson: boolean): Promise<void> {
  const config = regionConfig(region);
  const sqs = new SQSClient(config);
  const streams = new DynamoDBStreamsClient(config);
  const eventBridge = boundedEventBridgeClient(config);
  await requireRegion(sqs);
  await requireCredentials(sqs, asJson);
  const show = (line: string) => {
    if (!asJson) console.log(printable(line));
  };
  let report: EventsReplayReport | undefined;
  // Ctrl-C ends the run between two messages, never inside one (its events half published, the
  // message neither deleted nor visible again): the rest are left and made visible at once. Again: now.
  const interrupt = new AbortController();
  const onSigint = () => {
    if (interrupt.signal.aborted) process.exit(130);
    interrupt.abort();
    say('interrupted: ending after the message under way, the rest left in the DLQ (Ctrl-C again to quit now, leaving them hidden up to 15 minutes)');
  };
  process.on('SIGINT', onSigint);
  try {
    report = await replayEventsDlq({ sqs, streams, eventBridge, dlqUrl, eventBusName: bus, tableName, dryRun, say, signal: interrupt.signal });
    show(`events DLQ holds ${report.dlq?.visible ?? 0} message(s)${report.dlq?.inFlight ? ` (+${report.dlq.inFlight} in flight)` : ''}`);
    for (const message of report.messages) for (const line of describeReplayed(message)) show(`  ${line}`);
    const batches = report.messages.filter((message) => message.kind === 'batch');
    const notReplayed = batches.filter((message) => message.result !== 'replayed' && message.result !== 'would-replay');
    if (dryRun) {
      const events = batches.reduce((sum, message) => sum + (message.events ?? 0), 0);
      show(`dry run: would publish ${events} event(s) from ${batches.length - notReplayed.length} batch message(s) on ${bus}; nothing sent or deleted`);
    } else {
      show(`replayed ${report.replayed} batch message(s): ${report.published} event(s) published on ${bus}${report.setAside ? `, ${report.setAside} set aside` : ''}`);
    }
    const setAside = report.messages.filter((message) => message.kind === 'setAside').length;
    if (setAside > 0) show(`${setAside} setAside message(s) left in the DLQ: the bus refused those events for what they hold, and would again; have subscribers re-read those states`);
    if (notReplayed.length > 0) {
      report.error = `${notReplayed.length} batch message(s) not replayed, left in the DLQ${report.interrupted ? ' (interrupted)' : ''}`;
      say(report.error);
      process.exitCode = report.interrupted ? 130 : 1;
    }
  } catch (error) {
    report ??= { target: 'aws', dryRun, bus, replayed: 0, published: 0, setAside: 0, left: 0, messages: [] };
    report.error = `redrive failed: ${(error as Error).message}`;
    say(report.error);
    process.exitCode = 1;
  } finally {
    process.off('SIGINT', onSigint);
    sqs.destroy();
    streams.destroy();
    eventBridge.destroy();
  }
  if (asJson) printJson(report);
}

/** The records of a batch an earlier one of the run replayed (Lambda's halves of a failing batch overlap it). */
function already(message: { alreadyReplayed?: number }): string {
  return message.alreadyReplayed ? ` (${message.alreadyReplayed} already replayed above)` : '';
}

/** A replayed message's lines: its ids and counts, what became of it, and what the user can do. */
function describeReplayed(message: ReplayedMessage): string[] {
  if (message.kind === 'unknown') return [`${message.dlqMessageId}: not a message of the events DLQ; left`];
  if (message.kind === 'setAside') {
    return [`${message.dlqMessageId}: setAside ${message.detailType ?? '?'} ${message.eventId ?? '?'} (${message.provider ?? '?'} ${message.subjectId ?? '?'}, ${message.errorCode ?? '?'}): not replayable; left`];
  }
  const range = `${message.shardId} ${message.startSequenceNumber}..${message.endSequenceNumber}`;
  const written = `written ${message.approximateArrivalOfFirstRecord ?? '?'} to ${message.approximateArrivalOfLastRecord ?? '?'}`;
  switch (message.result) {
    case 'replayed':
      return [`${message.dlqMessageId}: ${range}: ${message.records} record(s)${already(message)}, ${message.published} event(s) published${message.setAside ? `, ${message.setAside} set aside` : ''}; deleted`];
    case 'would-replay':
      return [
        `${message.dlqMessageId}: ${range}: ${message.records} record(s)${already(message)}, would publish ${message.events} event(s)`,
        ...(message.wouldPublish ?? []).map((event) => `    ${event.detailType} ${event.eventId} ${event.provider} ${event.subjectId}${event.part === undefined ? '' : ` part ${event.part}`}${event.version === undefined ? '' : ` v${event.version}`}`),
      ];
    case 'past-stream':
      return [
        `${message.dlqMessageId}: ${range}: its records are past the stream's 24 hours (${message.error}); left in the DLQ.`,
        `    The changes were ${written}: have subscribers re-read the states changed then (npm run inspect), then delete the message`,
      ];
    case 'bus-failed':
      return [`${message.dlqMessageId}: ${range}: the bus is still failing (${message.error}); left in the DLQ, nothing after it tried`];
    case 'other-table':
      return [`${message.dlqMessageId}: ${range}: ${message.error}; left in the DLQ (not a message Lambda wrote for this table: delete it once you know where it came from)`];
    case 'read-failed':
      return [`${message.dlqMessageId}: ${range}: the stream could not be read (${message.error}); left in the DLQ, nothing after it tried`];
    case 'hold-lost':
      return [`${message.dlqMessageId}: ${range}: ${message.error}; left in the DLQ, nothing after it tried`];
    case 'not-reached':
      return [`${message.dlqMessageId}: ${range}: not tried (after a bus or read failure, a lost hold, or interrupted); left in the DLQ`];
  }
}
const max = intFlag('max', values.max, { min: 1 }, Number.MAX_SAFE_INTEGER);
// StartMessageMoveTask: "The maximum value for messages per second is 500."
const maxPerSecond = intFlag('max-per-second', values['max-per-second'], { min: 1, max: 500, note: "SQS's limit for a message-move task" });
// A wrong command line for a deployed stack is refused (exit 2) before its region and credentials
// are looked for: without credentials it would otherwise be exit 1, "no AWS credentials", and the
// refusal would come only once they were set.
const deployed = Boolean(values['dlq-url'] || values['queue-url']);
if (deployed && values.max !== undefined) {
  // StartMessageMoveTask takes a source, a destination and a rate, no count: it moves every message
  // (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html).
  console.error("--max applies to the local pipeline only: SQS's message-move task moves every message in the DLQ; pace it with --max-per-second");
  process.exit(2);
}
if (deployed && !values['dlq-url']) {
  console.error('--dlq-url is required for a deployed stack (the stack output DeadLetterQueueUrl)');
  process.exit(2);
}
const target = await resolveTarget(values, '--dlq-url URL --region R');
if (!target.dlqUrl) {
  console.error('--dlq-url is required for a deployed stack (the stack output DeadLetterQueueUrl)');
  target.close();
  process.exit(2);
}

/** A DLQ message as the output names it: what it is, without its content (which may hold personal data). */
interface MessageSummary {
  /** Its id in the DLQ. */
  readonly dlqMessageId: string;
  readonly provider?: string;
  readonly requestId?: string;
  readonly receivedAt?: string;
  /** The consumer's receives (the worker's, the relay's) before it went to the DLQ: see receivesOf. */
  readonly receives?: number;
  /** Receives since it is in the DLQ that were not this command's own: earlier dry runs' looks. */
  readonly looks?: number;
  readonly quarantined?: boolean;
  /** An SMS instruction (the relay's DLQ): its eventId. */
  readonly eventId?: string;
  /** Not a message the ingest wrote. */
  readonly unknown?: true;
}

/** What `--json` prints. */
interface RedriveReport {
  readonly target: 'local' | 'aws';
  readonly dryRun: boolean;
  /** The DLQ before anything moved. */
  dlq?: { visible: number; inFlight: number };
  /** Dry run: how many would move, and up to 10 of them (looked at without being taken). */
  wouldMove?: number;
  peeked?: MessageSummary[];
  moved: number;
  /** Local: each moved message, with its new id in the main queue. */
  messages: (MessageSummary & { messageId?: string })[];
  /** Local: received but refused by the main queue; they return to the DLQ after 60 s. */
  notAccepted: number;
  /** AWS: SQS's message-move task as it ended. */
  task?: { handle?: string; status?: string; moved?: number; toMove?: number; failureReason?: string };
  error?: string;
}
/** Where the messages go back to, as the output names it. */
const mainQueue = values.relay ? "the relay's queue" : 'the main queue';
const report: RedriveReport = { target: target.kind, dryRun: values['dry-run'], moved: 0, messages: [], notAccepted: 0 };

async function depth(url: string): Promise<{ visible: number; inFlight: number; arn: string }> {
  const { Attributes = {} } = await target.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'QueueArn'] }),
  );
  return { visible: Number(Attributes.ApproximateNumberOfMessages ?? 0), inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0), arn: Attributes.QueueArn ?? '' };
}

/** The maxReceiveCount of the redrive policy that moves messages into the DLQ (undefined: none known). */
let maxReceives: number | undefined;

/**
 * The DLQ's source queue's maxReceiveCount, when its redrive policy names this DLQ: locally the
 * queue it belongs to; on AWS --queue-url, or the one queue whose DLQ it is. A DLQ of several
 * queues, or credentials that cannot list them, leave it unknown.
 */
async function sourceMaxReceives(t: Target, dlqArn: string): Promise<number | undefined> {
  try {
    let url = t.queueUrl;
    if (!url) {
      const { queueUrls = [] } = await t.sqs.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: t.dlqUrl }));
      if (queueUrls.length !== 1) return undefined;
      url = queueUrls[0];
    }
    const { Attributes = {} } = await t.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['RedrivePolicy'] }));
    const policy = JSON.parse(Attributes.RedrivePolicy ?? '{}') as { deadLetterTargetArn?: string; maxReceiveCount?: unknown };
    const max = Number(policy.maxReceiveCount);
    return policy.deadLetterTargetArn === dlqArn && Number.isInteger(max) && max > 0 ? max : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The consumer's receives of a message in the DLQ, from SQS's ApproximateReceiveCount as this
 * command reads it. That count goes with the message into the DLQ and counts more than the
 * consumer's receives: this command's own receive (a dry run's look, the move's), the receive on
 * which the redrive policy moved it (the first past maxReceiveCount), and every earlier look. A
 * message the relay gave up on after 8 read 10 on the first dry run, 11 on the next. So: a count
 * past maxReceiveCount is a message the policy moved after maxReceiveCount receives, the rest
 * looks; one that is not was sent to the DLQ directly (no receive of the consumer's), its count
 * all looks. Without a known policy, the count before this command's own receive is all it says.
 */
function receivesOf(read: number): { receives: number; looks?: number } {
  const before = Math.max(0, read - 1);
  if (maxReceives === undefined) return { receives: before };
  // At maxReceiveCount itself, read it as moved by the policy: whether SQS counts the receive that
  // moved it is not documented, and a message sent directly only gets there by as many looks.
  const [receives, looks] = before >= maxReceives ? [maxReceives, Math.max(0, before - maxReceives - 1)] : [0, before];
  return looks > 0 ? { receives, looks } : { receives };
}

function summarize(message: Message): MessageSummary {
  const read = message.Attributes?.ApproximateReceiveCount;
  const receives = read === undefined ? {} : receivesOf(Number(read));
  try {
    const body = JSON.parse(message.Body ?? '') as { provider?: string; receivedAt?: string; requestId?: string; quarantine?: unknown; 'detail-type'?: string; detail?: Record<string, unknown> };
    if (body['detail-type'] === DETAIL_TYPES.instruction && body.detail) {
      // The event as the bus hands it to the relay queue: named by ids, never its destination or text.
      const { provider, receivedAt, eventId } = body.detail;
      return {
        dlqMessageId: message.MessageId ?? '',
        ...(typeof provider === 'string' ? { provider } : {}),
        ...(typeof receivedAt === 'string' ? { receivedAt } : {}),
        ...(typeof eventId === 'string' ? { eventId } : {}),
        ...receives,
      };
    }
    return {
      dlqMessageId: message.MessageId ?? '',
      provider: body.provider,
      requestId: body.requestId,
      receivedAt: body.receivedAt,
      ...receives,
      quarantined: Boolean(body.quarantine),
    };
  } catch {
    return { dlqMessageId: message.MessageId ?? '', unknown: true };
  }
}

/** One line per message, in columns: when it came, its provider, what it is. */
function describe(summary: MessageSummary): string[] {
  if (summary.unknown) return [`(not a callback message: ${summary.dlqMessageId})`];
  const receives = `receives ${summary.receives ?? '?'}`;
  if (summary.eventId !== undefined) return [`${summary.receivedAt ?? '?'} `, String(summary.provider ?? '?'), `instruction ${summary.eventId}  ${receives}`];
  return [`${summary.receivedAt ?? '?'} `, String(summary.provider ?? '?'), `request ${summary.requestId ?? '?'}${summary.quarantined ? '  (quarantined)' : ''}  ${receives}`];
}

/** A progress counter that rewrites its line: only on a terminal, where `\r` means something. */
function progress(text: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r${text}`);
}
function endProgress(): void {
  if (process.stderr.isTTY) process.stderr.write('\n');
}

/** Look at up to 10 messages without taking them (visibility 0: they stay available). */
async function peek(t: Target): Promise<MessageSummary[]> {
  const { Messages = [] } = await t.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: t.dlqUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 0, WaitTimeSeconds: 0, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }),
  );
  return Messages.map(summarize);
}

async function moveLocally(t: Target, limit: number, perSecond: number | undefined): Promise<void> {
  const { visible, inFlight } = await depth(t.dlqUrl!);
  const total = visible + inFlight;
  const start = Date.now();
  while (report.moved < limit) {
    if (perSecond !== undefined) {
      // As SQS's move task paces itself: the n-th message no sooner than n / rate seconds in.
      const due = start + (report.moved / perSecond) * 1000;
      if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
    }
    const { Messages = [] } = await t.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: t.dlqUrl,
        MaxNumberOfMessages: Math.min(10, limit - report.moved, perSecond ?? 10),
        VisibilityTimeout: 60,
        WaitTimeSeconds: 1,
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
      }),
    );
    if (Messages.length === 0) break;
    const sent = await t.sqs.send(
      new SendMessageBatchCommand({ QueueUrl: t.queueUrl, Entries: Messages.map((m, i) => ({ Id: String(i), MessageBody: m.Body ?? '' })) }),
    );
    // Delete only what the main queue accepted; the rest reappears in the DLQ after 60 s.
    const accepted = new Map((sent.Successful ?? []).map((entry) => [Number(entry.Id), entry.MessageId]));
    const done = Messages.flatMap((message, i) => (accepted.has(i) ? [{ message, messageId: accepted.get(i) }] : []));
    if (done.length > 0) {
      await t.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: t.dlqUrl, Entries: done.map(({ message }, i) => ({ Id: String(i), ReceiptHandle: message.ReceiptHandle })) }));
    }
    report.moved += done.length;
    report.messages.push(...done.map(({ message, messageId }) => ({ ...summarize(message), messageId })));
    progress(`moved ${report.moved}/${Math.max(total, report.moved)}`);
    if (done.length < Messages.length) {
      report.notAccepted += Messages.length - done.length;
      endProgress();
      say(`${Messages.length - done.length} message(s) were not accepted by the main queue; they stay in the DLQ`);
      process.exitCode = 1;
      break;
    }
  }
  endProgress();
}

/**
 * Where the move task sends the messages: the queue whose DLQ this is (`--queue-url`, or the one
 * queue whose redrive policy names it). Left to SQS, a message goes back only to the queue whose
 * redrive policy moved it; one sent to the DLQ directly has no such source and fails the task
 * (CouldNotDetermineMessageSource), and the relay's DLQ is sent to directly by its EventBridge
 * rule, with each SMS instruction the rule could not deliver to the relay queue
 * (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/troubleshooting-dlq-redrive.html).
 * A DLQ of several queues, or of none, is left to SQS.
 */
async function destinationArn(t: Target): Promise<string | undefined> {
  if (t.queueUrl) return (await depth(t.queueUrl)).arn;
  let queueUrls: string[];
  try {
    ({ queueUrls = [] } = await t.sqs.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: t.dlqUrl })));
  } catch (error) {
    // Credentials without sqs:ListDeadLetterSourceQueues can still move what a redrive policy moved.
    say(`the DLQ's queue is unknown (${(error as Error).name}): each message goes back to the queue it came from; pass --queue-url to name it`);
    return undefined;
  }
  return queueUrls.length === 1 ? (await depth(queueUrls[0])).arn : undefined;
}

async function moveOnAws(t: Target, dlqArn: string): Promise<void> {
  const destination = await destinationArn(t);
  const { TaskHandle } = await t.sqs.send(
    new StartMessageMoveTaskCommand({
      SourceArn: dlqArn,
      ...(destination === undefined ? {} : { DestinationArn: destination }),
      ...(maxPerSecond === undefined ? {} : { MaxNumberOfMessagesPerSecond: maxPerSecond }),
    }),
  );
  say(`started SQS message-move task ${TaskHandle}`);
  report.task = { handle: TaskHandle };
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const { Results = [] } = await t.sqs.send(new ListMessageMoveTasksCommand({ SourceArn: dlqArn, MaxResults: 1 }));
    const task = Results[0];
    if (!task) continue;
    progress(`${task.Status}: moved ${task.ApproximateNumberOfMessagesMoved ?? 0}/${task.ApproximateNumberOfMessagesToMove ?? '?'}`);
    if (task.Status !== 'RUNNING') {
      endProgress();
      report.moved = task.ApproximateNumberOfMessagesMoved ?? 0;
      report.task = {
        handle: TaskHandle,
        status: task.Status,
        moved: task.ApproximateNumberOfMessagesMoved,
        toMove: task.ApproximateNumberOfMessagesToMove,
        ...(task.FailureReason ? { failureReason: task.FailureReason } : {}),
      };
      if (task.Status !== 'COMPLETED') {
        say(`move task ended ${task.Status}${task.FailureReason ? `: ${task.FailureReason}` : ''}`);
        process.exitCode = 1;
      }
      return;
    }
  }
}

/**
 * The answer, on stdout: the text lines, or the one JSON document. A message's ids are whatever was
 * sent to the queue (an instruction event anyone allowed to put on the bus can make up), so their
 * control and bidi characters are shown as `\u` escapes, as inspect shows them, never written raw.
 */
const out = (line: string) => {
  if (!json) console.log(printable(line));
};

try {
  const before = await depth(target.dlqUrl);
  report.dlq = { visible: before.visible, inFlight: before.inFlight };
  out(`${values.relay ? "the SMS relay's DLQ" : 'DLQ'} holds ${before.visible} message(s)${before.inFlight ? ` (+${before.inFlight} in flight)` : ''}${target.kind === 'local' ? ' [local pipeline]' : ''}`);
  const held = before.visible + before.inFlight;
  if (held > 0 && (values['dry-run'] || target.kind === 'local')) maxReceives = await sourceMaxReceives(target, before.arn);
  if (values['dry-run']) {
    report.wouldMove = Math.min(held, max);
    report.peeked = before.visible > 0 ? await peek(target) : [];
    for (const row of alignColumns(report.peeked.map(describe))) out(`  ${row.join(' ')}`);
    const some = held > max ? `${max} of the ${held}` : `${held}`;
    out(held > 0 ? `dry run: would move ${some} message(s) to ${mainQueue}${held > max ? ` (--max ${max})` : ''}` : 'dry run: nothing to move');
  } else if (held > 0) {
    if (target.kind === 'aws') {
      await moveOnAws(target, before.arn);
      out(`move task ${report.task?.status ?? '?'}: moved ${report.moved} message(s) back to the main queue`);
    } else {
      if (!target.queueUrl) throw new Error('main queue URL unknown');
      await moveLocally(target, max, maxPerSecond);
      out(`moved ${report.moved} message(s) back to ${mainQueue}`);
    }
  }
} catch (error) {
  report.error = `redrive failed: ${(error as Error).message}`;
  say(report.error);
  process.exitCode = 1;
} finally {
  target.close();
}
if (json) printJson(report);
