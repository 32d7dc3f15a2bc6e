import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CfnElement } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { EventBus } from 'aws-cdk-lib/aws-events';
import type { SQSEvent } from 'aws-lambda';
import type { IConstruct } from 'constructs';
import type { Item } from '../../functions/core/store.ts';
import { keys } from '../../functions/core/pipeline-definition.ts';
import { DETAIL_TYPES, EVENT_SOURCE, storedInstruction } from '../../functions/core/publish.ts';
import { RELAY, relayInstruction, type RelayStore } from '../../functions/core/relay.ts';
import { createSecretCache } from '../../functions/core/secrets.ts';
import { withInvocationLogFields } from '../../functions/handlers/invocation-log.ts';
import { createRelayHandler } from '../../functions/handlers/relay.ts';
import type { PostAnswer, SendContext } from '../../functions/providers/provider.ts';
import { getProvider } from '../../functions/providers/index.ts';
import { UncertainDeliveryError } from '../../functions/shared/errors.ts';
import { createLogger } from '../../functions/shared/log.ts';
import type { CallbackGatewayStack } from '../../lib/callback-gateway-stack.ts';
import { createGatewayApp } from '../../lib/gateway-app.ts';
import { REPO_ROOT } from '../../lib/gateway-function.ts';
import { RELAY_DLQ_RETENTION_DAYS } from '../../lib/sms-relay.ts';
import { matchesFilterPattern } from '../support/filter-pattern.ts';
import { telesignKit } from '../providers/telesign.ts';
import { leaks } from '../support/log-leaks.ts';

/**
 * The SMS relay in the template (smsRelay = "telesign"): the rule on the gateway's bus, the relay
 * queue and its DLQ, the relay function and what it may do, its alarms and the log lines they count,
 * cdk-nag. The bus is the one "Events out" adds to the stack (EventOutlet).
 */

type Json = Record<string, any>;
interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Principal?: unknown;
  Condition?: unknown;
}

const CDK_CONTEXT = (JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Json }).context;
const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };
const RELAY_ON = { settings: { ...CDK_CONTEXT.settings, smsRelay: 'telesign' } };
const outdirs: string[] = [];

/** The app as cdk.json builds it, with `committed` settings. */
function synthesize(committed: Json = RELAY_ON) {
  const outdir = mkdtempSync(join(tmpdir(), 'callback-gateway-relay-'));
  outdirs.push(outdir);
  const { app, stack } = createGatewayApp({ outdir, context: { ...CDK_CONTEXT, ...committed, ...NO_BUNDLING } });
  const bus = stack.events.bus;
  const assembly = app.synth();
  return { stack, bus, template: Template.fromStack(stack).toJSON() as Json, assemblyDir: assembly.directory };
}

let stack: CallbackGatewayStack;
let bus: EventBus;
let resources: Record<string, Json>;
let outputs: Record<string, Json>;
let assemblyDir: string;

before(() => {
  let template: Json;
  ({ stack, bus, template, assemblyDir } = synthesize());
  resources = template.Resources as Record<string, Json>;
  outputs = template.Outputs as Record<string, Json>;
});
after(() => {
  for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
});

const logicalId = (construct: IConstruct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);
const ofType = (type: string) => Object.entries(resources).filter(([, resource]) => resource.Type === type);
const arnOf = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });
const relay = () => stack.smsRelay!;

function roleStatements(roleId: string): Statement[] {
  const role = resources[roleId];
  assert.equal(role.Properties.ManagedPolicyArns, undefined, `${roleId} has managed policies`);
  assert.equal(role.Properties.Policies, undefined, `${roleId} has inline policies`);
  return ofType('AWS::IAM::Policy')
    .filter(([, policy]) => (policy.Properties.Roles as Json[]).some((ref) => ref.Ref === roleId))
    .flatMap(([, policy]) => policy.Properties.PolicyDocument.Statement as Statement[]);
}
const actionsOf = (statement: Statement) => ([] as string[]).concat(statement.Action);

describe('the rule', () => {
  test("on the gateway's bus, Callback Instruction events of the sms channel only, to the relay queue; what it cannot deliver goes to the relay DLQ", () => {
    // act
    const rule = resources[logicalId(relay().rule)].Properties;
    // assess
    assert.deepEqual(rule.EventBusName, { Ref: stack.getLogicalId(bus.node.defaultChild as CfnElement) });
    assert.deepEqual(rule.EventPattern, { source: [EVENT_SOURCE], 'detail-type': [DETAIL_TYPES.instruction], detail: { channel: ['sms'] } });
    assert.equal(rule.Targets.length, 1);
    const [target] = rule.Targets;
    assert.deepEqual(target.Arn, arnOf(logicalId(relay().queue)));
    assert.deepEqual(target.DeadLetterConfig, { Arn: arnOf(logicalId(relay().deadLetterQueue)) });
    assert.deepEqual(target.RetryPolicy, { MaximumEventAgeInSeconds: 86_400, MaximumRetryAttempts: 185 });
    assert.equal(rule.State, 'ENABLED');
  });

  test('an e-mail instruction and a status change do not match the pattern; an SMS instruction does', () => {
    // prepare
    const pattern = resources[logicalId(relay().rule)].Properties.EventPattern as Json;
    const matches = (event: Json) =>
      pattern.source.includes(event.source) && pattern['detail-type'].includes(event['detail-type']) && pattern.detail.channel.includes(event.detail.channel);
    // act + assess
    assert.equal(matches({ source: EVENT_SOURCE, 'detail-type': DETAIL_TYPES.instruction, detail: { channel: 'sms' } }), true);
    assert.equal(matches({ source: EVENT_SOURCE, 'detail-type': DETAIL_TYPES.instruction, detail: { channel: 'email' } }), false);
    assert.equal(matches({ source: EVENT_SOURCE, 'detail-type': DETAIL_TYPES.statusChanged, detail: {} }), false);
  });
});

describe('the relay queue and its DLQ', () => {
  test('encrypted, TLS only, gone with the stack; the DLQ after the relay\'s receives, kept 4 days', () => {
    // act
    const queue = resources[logicalId(relay().queue)];
    const dlq = resources[logicalId(relay().deadLetterQueue)];
    // assess
    for (const each of [queue, dlq]) {
      assert.equal(each.Properties.SqsManagedSseEnabled, true);
      assert.equal(each.DeletionPolicy, 'Delete', 'instructions (codes, numbers) do not outlive the stack');
    }
    assert.deepEqual(queue.Properties.RedrivePolicy, { deadLetterTargetArn: arnOf(logicalId(relay().deadLetterQueue)), maxReceiveCount: RELAY.maxReceiveCount });
    assert.equal(queue.Properties.VisibilityTimeout, RELAY.visibilityTimeoutSeconds);
    assert.ok(RELAY.visibilityTimeoutSeconds >= 6 * RELAY.timeoutSeconds, 'six times the function timeout, as AWS recommends');
    assert.equal(queue.Properties.MessageRetentionPeriod, 86_400);
    assert.equal(dlq.Properties.MessageRetentionPeriod, RELAY_DLQ_RETENTION_DAYS * 86_400);
  });

  test('only the rule may send to them (events.amazonaws.com, from this rule), and nothing without TLS', () => {
    for (const queue of [relay().queue, relay().deadLetterQueue]) {
      // act
      const policies = ofType('AWS::SQS::QueuePolicy').filter(([, policy]) => (policy.Properties.Queues as Json[]).some((ref) => ref.Ref === logicalId(queue)));
      const statements = policies.flatMap(([, policy]) => policy.Properties.PolicyDocument.Statement as Statement[]);
      // assess
      const allows = statements.filter((statement) => statement.Effect === 'Allow');
      assert.equal(allows.length, 1, queue.node.path);
      assert.deepEqual(allows[0].Principal, { Service: 'events.amazonaws.com' });
      // The target queue (as CDK's SqsQueue target grants it): also its URL and attributes; the DLQ: SendMessage.
      const expected = queue === relay().queue ? ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'] : ['sqs:SendMessage'];
      assert.deepEqual(actionsOf(allows[0]).sort(), expected);
      assert.deepEqual(allows[0].Condition, { ArnEquals: { 'aws:SourceArn': arnOf(logicalId(relay().rule)) } });
      assert.ok(
        statements.some((statement) => statement.Effect === 'Deny' && JSON.stringify(statement.Condition) === JSON.stringify({ Bool: { 'aws:SecureTransport': 'false' } })),
        'TLS enforced',
      );
    }
  });
});

describe('the relay function', () => {
  test('Node 24, its timeout the in-flight limit, the SQS event source with partial batch failures and at most two at once', () => {
    // act
    const fn = resources[logicalId(relay().function)].Properties;
    const mapping = ofType('AWS::Lambda::EventSourceMapping').map(([, each]) => each.Properties).find((each) => each.FunctionName.Ref === logicalId(relay().function));
    // assess
    assert.equal(fn.Runtime, 'nodejs24.x');
    assert.equal(fn.Timeout, RELAY.timeoutSeconds);
    assert.equal(fn.Environment.Variables.RELAY_IN_FLIGHT_SECONDS, String(RELAY.timeoutSeconds));
    assert.deepEqual(mapping?.EventSourceArn, arnOf(logicalId(relay().queue)));
    assert.deepEqual(mapping?.FunctionResponseTypes, ['ReportBatchItemFailures']);
    assert.equal(mapping?.BatchSize, RELAY.batchSize);
    assert.deepEqual(mapping?.ScalingConfig, { MaximumConcurrency: 2 });
  });

  test("the worker is told the relay's sender (SMS_RELAY), to join its delivery reports to sends that got no answer; relay off, it is not (test/infra/stack.test.ts: its whole environment)", () => {
    // act
    const worker = resources[logicalId(stack.pipeline.worker)].Properties.Environment.Variables as Json;
    // assess
    assert.equal(worker.SMS_RELAY, 'telesign');
  });

  test('its environment names the table, its queue, the sender and its secret, and the max age from cdk.json', () => {
    // act
    const variables = resources[logicalId(relay().function)].Properties.Environment.Variables as Json;
    const telesignSecret = stack.ingresses.find((ingress) => ingress.provider.id === 'telesign')!.secret;
    // assess
    assert.deepEqual(variables.TABLE_NAME, { Ref: logicalId(stack.table.table) });
    assert.deepEqual(variables.QUEUE_URL, { Ref: logicalId(relay().queue) });
    assert.equal(variables.SMS_RELAY, 'telesign');
    assert.deepEqual(variables.TELESIGN_SECRET_ID, { Ref: logicalId(telesignSecret) });
    assert.equal(variables.RELAY_MAX_AGE_SECONDS, '300');
    assert.equal(variables.RELAY_ALLOWED_COUNTRY_CODES, 'any');
    assert.equal(variables.RELAY_MAX_PER_NUMBER_PER_HOUR, '5', 'the per-number cap, on by default');
    assert.equal(variables.EVENT_RETENTION_DAYS, String(CDK_CONTEXT.settings.eventRetentionDays));
    assert.equal(Object.keys(variables).filter((name) => name.endsWith('_SECRET_ID')).length, 1, 'one secret: the sender\'s');
  });

  test("least privilege: the TeleSign secret (read), PutItem and UpdateItem in Identomat's and TeleSign's partitions (its hourly counts per number included), GetItem in Identomat's and TeleSign's subjects only (no index), its own queue, its own log group; nothing else", () => {
    // act
    const statements = roleStatements(resources[logicalId(relay().function)].Properties.Role['Fn::GetAtt'][0]);
    const telesignSecret = logicalId(stack.ingresses.find((ingress) => ingress.provider.id === 'telesign')!.secret);
    // assess
    const byResource = new Map<string, string[]>();
    for (const statement of statements) {
      assert.equal(statement.Effect, 'Allow');
      // Its reads: the stored instruction, in the partitions of the providers that send instructions;
      // on a retry, the state TeleSign's delivery report of an earlier attempt left (never its
      // meeting or quarantine partitions: `telesign!…` does not match `telesign#*`).
      if (actionsOf(statement).includes('dynamodb:GetItem')) {
        assert.deepEqual(actionsOf(statement), ['dynamodb:GetItem']);
        assert.deepEqual(statement.Condition, { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['identomat#*', 'telesign#*'] } });
      }
      // Its writes: its own items beside the instructions, the sender's RELAYED items, and the counts per number and hour.
      if (actionsOf(statement).includes('dynamodb:PutItem')) {
        assert.deepEqual(actionsOf(statement), ['dynamodb:PutItem', 'dynamodb:UpdateItem']);
        assert.deepEqual(statement.Condition, { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['identomat#*', 'telesign#*', 'telesign!external#*', 'telesign!relay-count#*'] } });
      }
      for (const resource of ([] as unknown[]).concat(statement.Resource)) {
        const key = JSON.stringify(resource);
        byResource.set(key, [...(byResource.get(key) ?? []), ...actionsOf(statement)].sort());
      }
    }
    const tableArn = JSON.stringify(arnOf(logicalId(stack.table.table)));
    assert.deepEqual(byResource.get(tableArn), ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
    assert.deepEqual(byResource.get(JSON.stringify({ Ref: telesignSecret })), ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
    assert.deepEqual(byResource.get(JSON.stringify(arnOf(logicalId(relay().queue)))), [
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:ReceiveMessage',
    ]);
    const logGroupArn = JSON.stringify(arnOf(logicalId(relay().logGroup)));
    assert.deepEqual(byResource.get(logGroupArn), ['logs:CreateLogStream', 'logs:PutLogEvents']);
    assert.equal(byResource.size, 4, `nothing else: ${[...byResource.keys()].join(', ')}`);
  });

  test('on an upgrade the publisher takes its new code after the relay: the new relay reads both versions\' instructions, the last one skipped the new eventIds', () => {
    // act
    const publisherDependsOn = ([] as string[]).concat(resources[logicalId(stack.events.publisher)].DependsOn ?? []);
    const relayDependsOn = ([] as string[]).concat(resources[logicalId(relay().function)].DependsOn ?? []);
    // assess
    assert.ok(publisherDependsOn.includes(logicalId(relay().function)), publisherDependsOn.join(', '));
    assert.ok(!relayDependsOn.includes(logicalId(stack.events.publisher)), `no cycle: ${relayDependsOn.join(', ')}`);
    // The publisher keeps its own policy's order (its grants exist before Lambda checks them).
    assert.ok(publisherDependsOn.some((id) => resources[id]?.Type === 'AWS::IAM::Policy'), publisherDependsOn.join(', '));
  });

  test('no other role gains anything on the relay queues, and no other function reads the TeleSign secret because of the relay', () => {
    // prepare: the same stack without the relay
    const without = synthesize({}).template.Resources as Record<string, Json>;
    const secretReaders = (all: Record<string, Json>) =>
      Object.values(all)
        .filter((resource) => resource.Type === 'AWS::IAM::Policy')
        .filter((policy) => JSON.stringify(policy.Properties.PolicyDocument).includes('secretsmanager:GetSecretValue') && JSON.stringify(policy.Properties.PolicyDocument).includes(logicalId(stack.ingresses.find((ingress) => ingress.provider.id === 'telesign')!.secret)))
        .length;
    // act + assess
    assert.equal(secretReaders(resources), secretReaders(without) + 1, 'the relay is the one new reader');
    const mentionsQueue = ofType('AWS::IAM::Policy').filter(([, policy]) => JSON.stringify(policy.Properties.PolicyDocument).includes(logicalId(relay().queue)));
    assert.equal(mentionsQueue.length, 1, 'only the relay\'s own policy');
  });
});

describe('alarms', () => {
  test("six, on the gateway's alarm topic, each saying what to do", () => {
    // act
    const alarms = ofType('AWS::CloudWatch::Alarm')
      .map(([, alarm]) => alarm.Properties)
      .filter((alarm) => String(alarm.AlarmName).startsWith(`${stack.stackName}-Relay`));
    // assess
    assert.deepEqual(alarms.map((alarm) => String(alarm.AlarmName).slice(stack.stackName.length + 1)).sort(), [
      'RelayConfigurationErrors',
      'RelayDeadLetterQueueNotEmpty',
      'RelayErrors',
      'RelayNotSent',
      'RelayQueueDelayed',
      'RelayUncertain',
    ]);
    const topic = { Ref: logicalId(stack.alarms.topic) };
    for (const alarm of alarms) {
      assert.deepEqual(alarm.AlarmActions, [topic], alarm.AlarmName);
      assert.deepEqual(alarm.OKActions, [topic], alarm.AlarmName);
      if (!String(alarm.AlarmName).endsWith('RelayQueueDelayed')) assert.equal(alarm.Threshold, 1);
      assert.ok(String(alarm.AlarmDescription).length > 120, `${alarm.AlarmName} has a runbook`);
    }
    const dlq = alarms.find((alarm) => String(alarm.AlarmName).endsWith('RelayDeadLetterQueueNotEmpty'))!;
    assert.deepEqual(dlq.Dimensions, [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(relay().deadLetterQueue), 'QueueName'] } }]);
    assert.match(String(dlq.AlarmDescription), /npm run redrive -- --dlq-url <RelayDeadLetterQueueUrl>/);
    assert.match(String(alarms.find((alarm) => String(alarm.AlarmName).endsWith('RelayUncertain'))!.AlarmDescription), /never sent again/);
  });

  test('a relay that stops taking instructions from its queue (its event source stopped, the function unable to poll) is alarmed once a code waits longer than it is of use, not a day later when SQS deletes it', () => {
    // act
    const delayed = ofType('AWS::CloudWatch::Alarm')
      .map(([, alarm]) => alarm.Properties)
      .find((alarm) => alarm.AlarmName === `${stack.stackName}-RelayQueueDelayed`);
    const maxAge = Number(resources[logicalId(relay().function)].Properties.Environment.Variables.RELAY_MAX_AGE_SECONDS);
    // assess
    assert.ok(delayed, 'an alarm on the relay queue');
    assert.equal(delayed.MetricName, 'ApproximateAgeOfOldestMessage');
    assert.deepEqual(delayed.Dimensions, [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(relay().queue), 'QueueName'] } }]);
    assert.equal(delayed.Statistic, 'Maximum');
    assert.equal(delayed.ComparisonOperator, 'GreaterThanOrEqualToThreshold');
    assert.equal(delayed.Threshold, maxAge);
    assert.ok(maxAge < RELAY.retentionDays * 86_400);
    assert.match(String(delayed.AlarmDescription), /event source/);
  });

  test("the dashboard's Alarms widget shows every alarm of the stack, the relay's included", () => {
    // prepare: the dashboard body, each alarm reference written as `@LogicalId`
    const [, dashboard] = ofType('AWS::CloudWatch::Dashboard')[0];
    const parts = dashboard.Properties.DashboardBody['Fn::Join'][1] as unknown[];
    const text = parts.map((part) => (typeof part === 'string' ? part : `@${((part as Json).Ref ?? (part as Json)['Fn::GetAtt'][0]) as string}`)).join('');

    // act
    const widget = (JSON.parse(text) as { widgets: Json[] }).widgets.find((each) => each.type === 'alarm' && each.properties.title === 'Alarms')!;

    // assess
    const shown = (widget.properties.alarms as string[]).map((arn) => arn.replace(/^@/, '')).sort();
    assert.deepEqual(shown, ofType('AWS::CloudWatch::Alarm').map(([id]) => id).sort());
    for (const alarm of relay().alarms) assert.ok(shown.includes(logicalId(alarm)), alarm.node.id);
  });

  test('the dashboard shows what the relay sent, did not send and is unsure of, its errors and its DLQ', () => {
    // prepare: the dashboard body, each reference written as `@LogicalId`
    const [, dashboard] = ofType('AWS::CloudWatch::Dashboard')[0];
    const parts = dashboard.Properties.DashboardBody['Fn::Join'][1] as unknown[];
    const text = parts.map((part) => (typeof part === 'string' ? part : `@${((part as Json).Ref ?? (part as Json)['Fn::GetAtt'][0]) as string}`)).join('');

    // act
    const widget = (JSON.parse(text) as { widgets: Json[] }).widgets.find((each) => each.type === 'metric' && each.properties.title === 'SMS relay');

    // assess
    // Before, RelaySent was counted and shown nowhere: a flood of paid SMS was seen on the bill.
    assert.ok(widget, 'an SMS relay widget');
    const lines = JSON.stringify(widget.properties.metrics);
    for (const name of ['RelaySent', 'RelayNotSent', 'RelayUncertain', 'Errors', 'ApproximateNumberOfMessagesVisible']) assert.ok(lines.includes(`"${name}"`), name);
  });

  test('the metric filters count the lines the relay really writes: uncertain, not sent (an event the gateway did not store too), configuration, sent', async () => {
    // prepare: the filters on the relay's log group
    const filters = new Map(
      ofType('AWS::Logs::MetricFilter')
        .map(([, filter]) => filter.Properties)
        .filter((filter) => filter.LogGroupName.Ref === logicalId(relay().logGroup))
        .map((filter) => [filter.MetricTransformations[0].MetricName as string, filter.FilterPattern as string]),
    );
    const matched = (line: string) => [...filters].filter(([, pattern]) => matchesFilterPattern(pattern, line)).map(([name]) => name);
    // The real relay core and handler, on an in-memory table, TeleSign answering through `answer`.
    const lines: string[] = [];
    const items = new Map<string, Item>();
    const store: RelayStore = {
      read: async (key) => items.get(`${key.pk}|${key.sk}`),
      giveBack: async () => undefined,
      create: async (item) => {
        const key = `${String(item.pk)}|${String(item.sk)}`;
        const existing = items.get(key);
        if (existing) return { created: false, existing };
        items.set(key, item);
        return { created: true };
      },
      update: async (key, expected, fields) => {
        const current = items.get(`${key.pk}|${key.sk}`);
        if (!current || current.status !== expected.status || (expected.attempt !== undefined && current.attempt !== expected.attempt)) return { ok: false, current };
        items.set(`${key.pk}|${key.sk}`, { ...current, ...fields });
        return { ok: true };
      },
      recordSent: async (key, _attempt, fields) => void items.set(`${key.pk}|${key.sk}`, { ...items.get(`${key.pk}|${key.sk}`), ...fields }),
      advance: async (key, position, fields) => {
        const current = items.get(`${key.pk}|${key.sk}`);
        if (current && (String(current.latestAt) > position.at || (current.latestAt === position.at && current.latestEventId !== position.eventId))) return false;
        items.set(`${key.pk}|${key.sk}`, { ...current, ...key, ...fields, latestAt: position.at, latestEventId: position.eventId });
        return true;
      },
      beginSend: async (key, attempt, marker, position, fields) => {
        const latest = items.get(`${marker.pk}|${marker.sk}`);
        if (latest?.latestAt !== position.at || latest?.latestEventId !== position.eventId) return { started: false, superseded: true };
        const current = items.get(`${key.pk}|${key.sk}`);
        if (current?.status !== 'claimed' || current.attempt !== attempt) return { started: false, superseded: false, current };
        items.set(`${key.pk}|${key.sk}`, { ...current, ...fields });
        return { started: true };
      },
      addOtherReferences: async (key) => items.get(`${key.pk}|${key.sk}`),
      meet: async (key, fields) => {
        const current = items.get(`${key.pk}|${key.sk}`) ?? { ...key };
        const met = { ...fields, ...current };
        items.set(`${key.pk}|${key.sk}`, met);
        return met;
      },
      joinReference: async () => undefined,
    };
    const answering = (post: SendContext['post']): SendContext => ({ post });
    const ok: SendContext = answering(async (): Promise<PostAnswer> => ({ status: 200, body: '{"reference_id":"0123456789ABCDEF0123456789ABCDEF","status":{"code":290}}' }));
    const lost: SendContext = answering(async () => {
      throw new UncertainDeliveryError('telesign', 'no answer');
    });
    const refusedKey: SendContext = answering(async () => ({ status: 401, body: '{"errors":[{"code":-30015}]}' }));
    const secret = telesignKit.secret('infra');
    const deps = (send: SendContext, now = new Date()) => ({
      store,
      secrets: createSecretCache(async () => JSON.stringify(secret)),
      sender: getProvider('telesign'),
      send,
      now: () => now,
      log: createLogger({ service: 'relay', write: (line: string) => lines.push(line) }),
      newAttempt: () => `attempt-${lines.length}`,
      retentionDays: 90,
    });
    /** An OTP instruction stored as the worker stores it (a session each: one cannot supersede another), and its event's detail. */
    const detail = (name: string, receivedAt = new Date().toISOString(), phoneNumber = '+995512345678') => {
      const subjectId = `session-${name}`;
      const item: Item = {
        ...keys.event('identomat', subjectId, `one-time-password|${name}`),
        provider: 'identomat',
        subjectId,
        source: 'callback',
        receivedAt,
        payload: { type: 'one-time-password', sessionId: subjectId, phoneNumber, text: 'Your code is 6867' },
      };
      items.set(`${String(item.pk)}|${String(item.sk)}`, item);
      return storedInstruction(item)!;
    };
    const lineOf = async (run: () => Promise<unknown>) => {
      const from = lines.length;
      await run().catch(() => undefined);
      return lines.slice(from);
    };

    // act
    const sent = await lineOf(() => relayInstruction(detail('e-sent'), deps(ok)));
    const uncertain = await lineOf(() => relayInstruction(detail('e-uncertain'), deps(lost)));
    const expired = await lineOf(() => relayInstruction(detail('e-expired', new Date(Date.now() - 3_600_000).toISOString()), deps(ok)));
    const refused = await lineOf(() => relayInstruction(detail('e-refused', undefined, '12345'), deps(ok)));
    const unreadable = await lineOf(() => relayInstruction({ ...detail('e-unreadable'), channel: 'pigeon' }, deps(ok)));
    const notStored = await lineOf(() => relayInstruction({ ...detail('e-forged'), subjectId: 'session-nobody' }, deps(ok)));
    const notAnInstruction = await lineOf(() =>
      createRelayHandler({ deps: deps(ok) })({ Records: [{ messageId: 'm-0', body: JSON.stringify({ source: 'someone', 'detail-type': 'Other' }), attributes: { ApproximateReceiveCount: '1' } }] } as unknown as SQSEvent),
    );
    const configuration = await lineOf(() =>
      withInvocationLogFields(createRelayHandler({ deps: deps(refusedKey) }))(
        { Records: [{ messageId: 'm-1', body: JSON.stringify({ source: EVENT_SOURCE, 'detail-type': DETAIL_TYPES.instruction, detail: detail('e-config') }), attributes: { ApproximateReceiveCount: '1' } }] } as unknown as SQSEvent,
        { awsRequestId: 'lambda-request' },
      ),
    );

    // assess
    assert.deepEqual(sent.map(matched), [['RelaySent']]);
    assert.deepEqual(uncertain.map(matched), [['RelayUncertain']]);
    assert.deepEqual(expired.map(matched), [['RelayNotSent']]);
    assert.deepEqual(refused.map(matched), [['RelayNotSent']]);
    assert.deepEqual(unreadable.map(matched), [['RelayNotSent']]);
    assert.deepEqual(notStored.map(matched), [['RelayNotSent']], 'an instruction someone else put on the bus');
    assert.deepEqual(notAnInstruction.map(matched), [['RelayNotSent']], 'a message that is no Callback Instruction at all');
    assert.deepEqual(configuration.map(matched), [['RelayConfigurationErrors']], configuration.join('\n'));
    for (const line of lines) assert.ok(!['995512345678', '6867', 'Your code'].some((value) => leaks(line, value)), `a line carries the number or the code: ${line}`);
  });
});

describe('outputs, cdk-nag, and the setting', () => {
  test('the relay queue and its DLQ are stack outputs', () => {
    assert.deepEqual(outputs.RelayQueueUrl.Value, { Ref: logicalId(relay().queue) });
    assert.deepEqual(outputs.RelayDeadLetterQueueUrl.Value, { Ref: logicalId(relay().deadLetterQueue) });
  });

  test('cdk-nag AwsSolutions: no unacknowledged finding with the relay on', () => {
    // act
    const report = JSON.parse(readFileSync(join(assemblyDir, 'validation-report.json'), 'utf8')) as { pluginReports: Json[] };
    const nag = report.pluginReports.find((plugin) => plugin.pluginName === 'AwsSolutions');
    // assess
    assert.ok(nag, 'the AwsSolutions plugin ran');
    assert.deepEqual(nag.violations, []);
    const relayFindings = (nag.suppressedViolations as Json[]).filter((finding) => (finding.violatingConstructs as Json[]).some((construct) => String(construct.constructPath).includes('/SmsRelay/')));
    assert.deepEqual(relayFindings, [], 'nothing acknowledged for the relay');
  });

  test('off by default: the committed cdk.json deploys no relay', () => {
    // act
    const { stack: plain, template } = synthesize({});
    // assess
    assert.equal(CDK_CONTEXT.settings.smsRelay, 'off');
    assert.equal(plain.smsRelay, undefined);
    assert.equal(Object.keys(template.Resources).filter((id) => id.startsWith('SmsRelay')).length, 0);
  });

  test('a sender that cannot send, or a max age out of range, fails the synth naming the setting', () => {
    assert.throws(() => synthesize({ settings: { ...CDK_CONTEXT.settings, smsRelay: 'esms' } }), /settings\.smsRelay must be one of off, telesign/);
    assert.throws(() => synthesize({ settings: { ...RELAY_ON.settings, relayMaxAgeSeconds: 10 } }), /settings\.relayMaxAgeSeconds must be an integer from 30 to 3600/);
    assert.throws(() => synthesize({ ...RELAY_ON, relayMaxAgeSeconds: '7200', oneOff: 'true' }), /relayMaxAgeSeconds must be an integer from 30 to 3600/);
    assert.throws(() => synthesize({ settings: { ...RELAY_ON.settings, relayAllowedCountryCodes: '995;255' } }), /settings\.relayAllowedCountryCodes: "995;255" is not a country calling code/);
    assert.throws(() => synthesize({ settings: { ...RELAY_ON.settings, relayAllowedCountryCodes: '' } }), /relayAllowedCountryCodes: "" is not a country calling code .*write "any"/);
  });

  test('relayAllowedCountryCodes from cdk.json reaches the relay', () => {
    // act
    const { stack: tuned, template } = synthesize({ settings: { ...RELAY_ON.settings, relayAllowedCountryCodes: '995,+255' } });
    // assess
    const fn = template.Resources[tuned.getLogicalId(tuned.smsRelay!.function.node.defaultChild as CfnElement)];
    assert.equal(fn.Properties.Environment.Variables.RELAY_ALLOWED_COUNTRY_CODES, '995,+255');
  });

  test('relayAllowedCountryCodes "1" (the whole North American Numbering Plan) synthesizes with a warning naming what it lets through; area codes do not', () => {
    // act
    const { stack: whole } = synthesize({ settings: { ...RELAY_ON.settings, relayAllowedCountryCodes: '44,1' } });
    const { stack: areas } = synthesize({ settings: { ...RELAY_ON.settings, relayAllowedCountryCodes: '44,1201,1212' } });
    // assess
    Annotations.fromStack(whole).hasWarning('*', Match.stringLikeRegexp('relayAllowedCountryCodes: \\+1 is the whole North American Numbering Plan.*Jamaica'));
    assert.deepEqual(Annotations.fromStack(areas).findWarning('*', Match.stringLikeRegexp('relayAllowedCountryCodes')), []);
  });

  test('the relay on with relayAllowedCountryCodes left at "any" synthesizes with a warning to list the countries served', () => {
    // act
    const { stack: anywhere } = synthesize({ settings: { ...RELAY_ON.settings, relayAllowedCountryCodes: 'any' } });
    const { stack: listed } = synthesize({ settings: { ...RELAY_ON.settings, relayAllowedCountryCodes: '995,255' } });
    // assess
    // Before, only a whole +1 or +7 warned, though "any" lets every country through.
    Annotations.fromStack(anywhere).hasWarning('*', Match.stringLikeRegexp('relayAllowedCountryCodes: any, so the relay sends an SMS to whatever number.*List the countries you serve'));
    assert.deepEqual(Annotations.fromStack(listed).findWarning('*', Match.stringLikeRegexp('relayAllowedCountryCodes')), []);
  });

  test('a long relayAllowedCountryCodes (60 +1 area codes) still deploys: every alarm description within CloudWatch\'s 1024 characters, RelayNotSent saying how many codes and where they are', () => {
    // prepare: what CloudFormation is given, a reference (a function's name) at its longest, 64 characters
    const lengthOf = (description: unknown) =>
      typeof description === 'string'
        ? description.length
        : ((description as Json)['Fn::Join'][1] as unknown[]).reduce<number>((sum, part) => sum + (typeof part === 'string' ? part.length : 64), 0);
    const areas = Array.from({ length: 60 }, (_, n) => `1${201 + n}`).join(',');
    const descriptionsOf = (template: Json) =>
      Object.fromEntries(
        Object.entries(template.Resources as Record<string, Json>)
          .filter(([, resource]) => resource.Type === 'AWS::CloudWatch::Alarm')
          .map(([id, resource]) => [id, resource.Properties.AlarmDescription as unknown]),
      );

    // act
    const { stack: long, template } = synthesize({ settings: { ...RELAY_ON.settings, relayAllowedCountryCodes: areas } });
    const { stack: short, template: shortTemplate } = synthesize({ settings: { ...RELAY_ON.settings, relayAllowedCountryCodes: '995,255' } });

    // assess
    const descriptions = descriptionsOf(template);
    const tooLong = Object.entries(descriptions).filter(([, description]) => lengthOf(description) > 1024);
    assert.deepEqual(tooLong.map(([id]) => id), [], 'AlarmDescription is at most 1024 characters');
    const notSent = (stack: CallbackGatewayStack, json: Json) => descriptionsOf(json)[stack.getLogicalId(stack.node.findChild('SmsRelay').node.findChild('RelayNotSent').node.defaultChild as CfnElement)] as string;
    assert.match(notSent(long, template), /outside relayAllowedCountryCodes \(60 calling codes, listed in the relay function's RELAY_ALLOWED_COUNTRY_CODES:/);
    assert.match(notSent(short, shortTemplate), /outside relayAllowedCountryCodes \(995,255:/, 'a short list is named whole');
    const fn = template.Resources[long.getLogicalId(long.smsRelay!.function.node.defaultChild as CfnElement)];
    assert.equal(fn.Properties.Environment.Variables.RELAY_ALLOWED_COUNTRY_CODES, areas);
  });

  test('relayMaxPerNumberPerHour from cdk.json reaches the relay, 0 (no cap) included; out of range fails the synth naming the setting', () => {
    // act
    const variable = (value: number) => {
      const { stack: tuned, template } = synthesize({ settings: { ...RELAY_ON.settings, relayMaxPerNumberPerHour: value } });
      return template.Resources[tuned.getLogicalId(tuned.smsRelay!.function.node.defaultChild as CfnElement)].Properties.Environment.Variables.RELAY_MAX_PER_NUMBER_PER_HOUR;
    };
    // assess
    assert.deepEqual([variable(2), variable(0)], ['2', '0']);
    assert.throws(() => synthesize({ settings: { ...RELAY_ON.settings, relayMaxPerNumberPerHour: -1 } }), /settings\.relayMaxPerNumberPerHour must be an integer from 0 to 1000 \(0 for no cap\), got -1/);
    assert.throws(() => synthesize({ settings: { ...RELAY_ON.settings, relayMaxPerNumberPerHour: 2.5 } }), /relayMaxPerNumberPerHour must be an integer/);
  });

  test('relaySentAlarmPerHour: an alarm on the SMS the relay sent in an hour, on the alarm topic; none at 0 (the default), none with the relay off', () => {
    // act
    const sentAlarms = (committed: Json) => {
      const { stack: built, template } = synthesize(committed);
      const alarms = Object.values(template.Resources as Record<string, Json>)
        .filter((resource) => resource.Type === 'AWS::CloudWatch::Alarm')
        .map((resource) => resource.Properties as Json)
        .filter((alarm) => alarm.AlarmName === `${built.stackName}-RelaySentVolume`);
      return { built, alarms };
    };
    const on = sentAlarms({ settings: { ...RELAY_ON.settings, relaySentAlarmPerHour: 40 } });
    const off = sentAlarms(RELAY_ON);
    const relayOff = sentAlarms({ settings: { ...CDK_CONTEXT.settings, relaySentAlarmPerHour: 40 } });
    // assess
    assert.equal(CDK_CONTEXT.settings.relaySentAlarmPerHour, 0, 'committed off');
    assert.equal(on.alarms.length, 1);
    const [alarm] = on.alarms;
    assert.deepEqual(
      { metric: alarm.MetricName, namespace: alarm.Namespace, statistic: alarm.Statistic, period: alarm.Period, periods: alarm.EvaluationPeriods, threshold: alarm.Threshold, operator: alarm.ComparisonOperator },
      { metric: 'RelaySent', namespace: on.built.stackName, statistic: 'Sum', period: 3600, periods: 1, threshold: 40, operator: 'GreaterThanOrEqualToThreshold' },
    );
    const topic = { Ref: on.built.getLogicalId(on.built.alarms.topic.node.defaultChild as CfnElement) };
    assert.deepEqual([alarm.AlarmActions, alarm.OKActions], [[topic], [topic]]);
    assert.match(String(alarm.AlarmDescription), /relaySentAlarmPerHour/);
    assert.ok(String(alarm.AlarmDescription).length <= 1024);
    assert.deepEqual([off.alarms.length, relayOff.alarms.length], [0, 0]);
    assert.throws(() => synthesize({ settings: { ...RELAY_ON.settings, relaySentAlarmPerHour: -5 } }), /relaySentAlarmPerHour must be an integer from 0 to 1000000 \(0 for no alarm\), got -5/);
  });

  test('relayMaxAgeSeconds from cdk.json reaches the relay', () => {
    // act
    const { stack: tuned, template } = synthesize({ settings: { ...RELAY_ON.settings, relayMaxAgeSeconds: 120 } });
    // assess
    const fn = template.Resources[tuned.getLogicalId(tuned.smsRelay!.function.node.defaultChild as CfnElement)];
    assert.equal(fn.Properties.Environment.Variables.RELAY_MAX_AGE_SECONDS, '120');
  });
});
