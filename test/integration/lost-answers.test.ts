import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createDynamoStore } from '../../functions/adapters/dynamo-store.ts';
import { keys } from '../../functions/core/pipeline-definition.ts';
import { processRecheck } from '../../functions/core/recheck.ts';
import { sweep } from '../../functions/core/sweep.ts';
import { findProvider } from '../../functions/providers/index.ts';
import { processMessage } from '../../functions/core/worker.ts';
import { LOCAL_AWS } from '../../local/engines.ts';
import { captureLogger, queueMessageFor, sampleJson, storedEvents, storedState, uniqueId, type WorkerEnvironment, startWorkerEnvironment } from '../support/integration-worker.ts';
import { suiteResource } from '../support/suite-resource.ts';

/**
 * A conditional write DynamoDB carried out whose answer never came back (the functions' bounded
 * client gives up on an attempt after 5 s and tries again): the SDK's retry then meets the
 * condition the first attempt's own write broke. Run on DynamoDB Local, the lost answer made by a
 * middleware inside the SDK's retries that lets the request through and throws a timeout instead
 * of its answer, once.
 */

let env: WorkerEnvironment;
suiteResource(
  async () => {
    env = await startWorkerEnvironment();
  },
  async () => {
    await env?.stop();
  },
);

/** A store whose first call matching `lose` lands, and its answer is lost (a timeout the SDK retries). */
function storeLosing(lose: (command: string, input: { Item?: Record<string, { S?: string }>; Key?: Record<string, { S?: string }> }) => boolean) {
  const client = new DynamoDBClient({ ...LOCAL_AWS, endpoint: env.dynamo.endpoint });
  let lost = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      if (lost === 0 && lose(String(context.commandName), args.input as never)) {
        lost++;
        throw Object.assign(new Error('the answer never came (test)'), { name: 'TimeoutError', $metadata: {} });
      }
      return result;
    },
    { step: 'deserialize', name: 'loseOneAnswer' },
  );
  return { store: createDynamoStore(client, env.tableName), lost: () => lost, client };
}

/** The same, losing the answer of the first PutItem of an item matching `lose`. */
function storeLosingAnswer(lose: (item: Record<string, { S?: string }>) => boolean) {
  return storeLosing((command, input) => command === 'PutItemCommand' && input.Item !== undefined && lose(input.Item));
}

function transfer(ref: string, status: string, updatedAt: string) {
  const codes: Record<string, string> = { COMPLETED: 'PAYMENT_SUCCESS', SUBMITTED: 'SUBMITTED' };
  return { ...sampleJson('temboplus', 'remittance-completed'), partnerReference: ref, status, statusCode: codes[status], updatedAt, completedAt: status === 'SUBMITTED' ? null : updatedAt };
}

describe('a conditional write that landed, its answer lost and the call retried', () => {
  test('a new callback\'s event item: logged and counted as stored, not as a duplicate', async (t) => {
    // prepare
    const ref = uniqueId('lost-event');
    env.simulator.report(transfer(ref, 'COMPLETED', '2025-01-01T10:00:00Z'));
    const lossy = storeLosingAnswer((item) => item.sk?.S?.startsWith('EVENT#') === true);
    t.after(() => lossy.client.destroy());
    const deps = env.deps({ store: lossy.store });
    // act
    const result = await processMessage(await queueMessageFor(env.secrets, 'temboplus', transfer(ref, 'COMPLETED', '2025-01-01T10:00:00Z')), deps);
    // assess
    assert.equal(lossy.lost(), 1, 'one answer lost');
    assert.equal(result.kind, 'stored');
    const line = deps.log.lines.find((entry) => entry.message === 'stored');
    assert.equal(line?.fields?.result, 'stored');
  });

  test('a new callback\'s state: the status change is logged as one', async (t) => {
    // prepare
    const ref = uniqueId('lost-state');
    env.simulator.report(transfer(ref, 'COMPLETED', '2025-01-01T10:00:00Z'));
    const lossy = storeLosingAnswer((item) => item.sk?.S === 'STATE');
    t.after(() => lossy.client.destroy());
    const deps = env.deps({ store: lossy.store });
    // act
    const result = await processMessage(await queueMessageFor(env.secrets, 'temboplus', transfer(ref, 'COMPLETED', '2025-01-01T10:00:00Z')), deps);
    // assess
    assert.equal(lossy.lost(), 1, 'one answer lost');
    assert.equal(result.kind, 'stored');
    assert.equal(result.kind === 'stored' && result.stateChanged, true);
    assert.equal((await storedState(env, 'temboplus', ref))?.status, 'COMPLETED');
  });

  test('a re-check\'s state write: the re-check is logged with its verdict, not skipped as a lease taken over', async (t) => {
    // prepare: a transfer SUBMITTED, re-checks scheduled; the provider now says COMPLETED
    const ref = uniqueId('lost-recheck');
    env.simulator.report(transfer(ref, 'SUBMITTED', '2025-01-01T10:00:00Z'));
    await processMessage(await queueMessageFor(env.secrets, 'temboplus', transfer(ref, 'SUBMITTED', '2025-01-01T10:00:00Z')), env.deps());
    const before = await storedState(env, 'temboplus', ref);
    assert.equal(typeof before?.recheckAt, 'string', 'a re-check is scheduled');
    env.simulator.report(transfer(ref, 'COMPLETED', '2025-01-01T10:05:00Z'));
    const lossy = storeLosingAnswer((item) => item.sk?.S === 'STATE');
    t.after(() => lossy.client.destroy());
    const deps = env.deps({ store: lossy.store });
    // act
    const result = await processRecheck(
      { v: 1, kind: 'recheck', provider: 'temboplus', subjectId: ref, at: new Date().toISOString(), lease: String(before?.recheckAt), rechecks: Number(before?.rechecks ?? 0) },
      deps,
    );
    // assess
    assert.equal(lossy.lost(), 1, 'one answer lost');
    assert.equal(result.kind, 'rechecked', JSON.stringify(result));
    assert.equal(result.kind === 'rechecked' && result.stateChanged, true);
    assert.ok(deps.log.lines.some((entry) => entry.message === 'rechecked'), 'its line, which the metrics count');
    assert.equal((await storedState(env, 'temboplus', ref))?.status, 'COMPLETED');
  });

  test('a sweep\'s lease: its re-check is queued now, not once the lease has run out', async (t) => {
    // prepare: a transfer SUBMITTED, its first re-check due an hour from now
    const ref = uniqueId('lost-lease');
    env.simulator.report(transfer(ref, 'SUBMITTED', '2025-01-01T10:00:00Z'));
    await processMessage(await queueMessageFor(env.secrets, 'temboplus', transfer(ref, 'SUBMITTED', '2025-01-01T10:00:00Z')), env.deps());
    const pk = keys.subject('temboplus', ref);
    const lossy = storeLosing((command, input) => command === 'UpdateItemCommand' && input.Key?.pk?.S === pk);
    t.after(() => lossy.client.destroy());
    const queued: string[] = [];
    // act
    await sweep([findProvider('temboplus')!], {
      store: lossy.store,
      enqueue: async (messages) => void queued.push(...messages.map((message) => message.body)),
      now: () => new Date(Date.now() + 3_600_000),
      log: captureLogger(),
    });
    // assess
    assert.equal(lossy.lost(), 1, 'one answer lost');
    const mine = queued.map((body) => JSON.parse(body) as { subjectId: string; lease: string }).filter((message) => message.subjectId === ref);
    assert.equal(mine.length, 1, 'its re-check queued');
    assert.equal((await storedState(env, 'temboplus', ref))?.recheckAt, mine[0].lease);
  });

  test('a claim\'s verdict: one ask counted once', async (t) => {
    // prepare: a stored claim, asked about once on arrival
    const ref = uniqueId('lost-verdict');
    env.simulator.report(transfer(ref, 'COMPLETED', '2025-01-01T10:00:00Z'));
    await processMessage(await queueMessageFor(env.secrets, 'temboplus', transfer(ref, 'COMPLETED', '2025-01-01T10:00:00Z')), env.deps());
    const [claim] = (await storedEvents(env, 'temboplus', ref)).filter((item) => item.source === 'callback');
    const lossy = storeLosing((command, input) => command === 'UpdateItemCommand' && input.Key?.sk?.S === claim.sk);
    t.after(() => lossy.client.destroy());
    // act: the verdict of a second ask, its update's answer lost and the call retried
    await lossy.store.recordVerdict({ pk: String(claim.pk), sk: String(claim.sk) }, { kind: 'confirmed', answerStatus: 'COMPLETED', askedAt: '2025-01-01T10:05:00.000Z' });
    // assess
    assert.equal(lossy.lost(), 1, 'one answer lost');
    const [after] = (await storedEvents(env, 'temboplus', ref)).filter((item) => item.source === 'callback');
    // Before, the retry added its ask again: 3, and the claim's asks ran out an ask early.
    assert.equal(after.asks, 2, 'the ask on arrival and this one');
    assert.equal(after.askedAt, '2025-01-01T10:05:00.000Z');
  });
});
