import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { expectSubject } from '../../functions/core/expect.ts';
import { QUEUE } from '../../functions/core/pipeline-definition.ts';
import { RecheckMessageSchema } from '../../functions/core/queue-message.ts';
import { processRecheck, type RecheckResult } from '../../functions/core/recheck.ts';
import { DEFAULT_RECONCILE, staleShard } from '../../functions/core/reconcile.ts';
import { sweep } from '../../functions/core/sweep.ts';
import { processMessage } from '../../functions/core/worker.ts';
import type { Item } from '../../functions/core/store.ts';
import type { StateItem } from '../../functions/core/state.ts';
import { allKits } from '../providers/index.ts';
import type { Content, ProviderKit } from '../providers/kit.ts';
import { readRequest, subjectLife } from '../support/faults-traffic.ts';
import { authenticRequest } from '../../local/samples.ts';
import { captureLogger, queueMessageForContent, startWorkerEnvironment, storedObservations, type CapturedLogger, type WorkerEnvironment } from '../support/integration-worker.ts';
import { suiteResource } from '../support/suite-resource.ts';

/**
 * Reconciliation on DynamoDB Local with each asked provider's simulated status endpoint, on a
 * simulated clock (the real schedule: 1 min, 5 min, … 48 h): the sweep finds due subjects through the
 * byRecheck index, the worker asks again, and the state ends confirmed, mismatched or stale.
 */

let env: WorkerEnvironment;
/** The simulated clock of the worker and the sweep. */
let clock = Date.now();
const now = () => new Date(clock);

suiteResource(
  async () => {
    env = await startWorkerEnvironment();
  },
  async () => {
    await env?.stop();
  },
);

const askedKits = allKits().filter((kit) => kit.provider.lookup && kit.statusSimulation);

function deps(log: CapturedLogger = captureLogger()) {
  return env.deps({ now, log, reconcile: DEFAULT_RECONCILE, asking: true });
}

/** A subject as the kit's lives give it: its callbacks (oldest first), as facts and contents. */
interface Subject {
  readonly subjectId: string;
  readonly part?: string;
  readonly contents: readonly Content[];
  readonly statuses: readonly { status: string; terminal: boolean }[];
}

/** What a callback carrying `content` says, read as the worker reads it. */
function describeContent(kit: ProviderKit, content: Content) {
  const secret = kit.provider.secretSchema.parse(env.secrets[kit.provider.id]);
  return readRequest(kit.provider, authenticRequest(kit.provider, secret as Record<string, unknown>, content), secret).facts;
}

/** A life of this kit's provider that ends in a final status, under a name unique to this run. */
function finalLife(kit: ProviderKit, name: string, accept: (subject: Subject) => boolean = () => true): Subject {
  for (let n = 0; n < 50; n++) {
    const life = subjectLife(kit, env.secrets, `${name}-${process.pid}-${clock}-${n}`);
    // The callbacks that report a status (Identomat's OTP and video updates do not).
    const reporting = life.callbacks.filter((callback) => describeContent(kit, callback.content).placesStatus !== false);
    const facts = reporting.map((callback) => describeContent(kit, callback.content));
    if (facts.at(-1)?.terminal) {
      const subject: Subject = {
        subjectId: facts[0].subjectId,
        ...(facts[0].part === undefined ? {} : { part: facts[0].part }),
        contents: reporting.map((callback) => callback.content),
        statuses: facts.map((f) => ({ status: f.status, terminal: f.terminal })),
      };
      if (accept(subject)) return subject;
    }
  }
  throw new Error(`${kit.provider.id} kit: no life ending in a final status (as asked) among 50`);
}

/** What the provider's status endpoint says about one of the subject's callbacks, told to its simulator. */
function endpointSays(kit: ProviderKit, content: Content): void {
  env.simulators[kit.provider.id].report(kit.statusAnswer!(content));
}

async function stateOf(kit: ProviderKit, subject: Pick<Subject, 'subjectId' | 'part'>): Promise<StateItem | undefined> {
  return env.store.getState(kit.provider.id, subject.subjectId, subject.part);
}

/** Deliver a callback to the worker, as the `receive`-th delivery of its message. */
async function deliver(kit: ProviderKit, content: Content, receive: number = QUEUE.settleAttempts) {
  const message = await queueMessageForContent(env.secrets, kit.provider.id, content, { receivedAt: now().toISOString() });
  return processMessage(message, deps(), receive);
}

/**
 * Move the clock to the subject's next re-check and run one sweep: the re-checks it queued for this
 * subject are processed (others sharing the table are leased and left). Returns their results.
 */
async function nextRecheck(kit: ProviderKit, subject: Pick<Subject, 'subjectId' | 'part'>, log = captureLogger()): Promise<RecheckResult[]> {
  const state = await stateOf(kit, subject);
  assert.ok(state?.recheckAt, `${kit.provider.id} ${subject.subjectId}: no re-check scheduled`);
  clock = Math.max(clock, Date.parse(state.recheckAt)) + 1000;
  const queued: string[] = [];
  await sweep([kit.provider], { store: env.store, enqueue: async (messages) => void queued.push(...messages.map((m) => m.body)), now, log: captureLogger(), reconcile: DEFAULT_RECONCILE });
  const mine = queued.map((body) => RecheckMessageSchema.parse(JSON.parse(body))).filter((m) => m.subjectId === subject.subjectId && m.part === subject.part);
  const results: RecheckResult[] = [];
  for (const message of mine) results.push(await processRecheck(message, deps(log)));
  return results;
}

async function answersStored(kit: ProviderKit, subjectId: string): Promise<Item[]> {
  return (await storedObservations(env, kit.provider.id, subjectId)).filter((item) => item.source === 'status-endpoint');
}

describe('reconciliation, for every provider the worker asks', { timeout: 240_000 }, () => {
  test('there is a provider to ask', () => assert.ok(askedKits.length >= 1));

  for (const kit of askedKits) {
    const id = kit.provider.id;
    const simulator = () => env.simulators[id];

    test(`${id}: a callback that overtook the status endpoint ends confirmed once the endpoint catches up`, async () => {
      // prepare: the final callback arrives before the endpoint knows the subject
      const subject = finalLife(kit, `${id}-overtook`);
      const last = subject.contents.at(-1)!;
      simulator().forget(subject.subjectId);

      // act: delivered on its last settling receive (the not_found stands), then the endpoint catches up
      await deliver(kit, last);
      const before = await stateOf(kit, subject);
      endpointSays(kit, last);
      const results = await nextRecheck(kit, subject);
      const after = await stateOf(kit, subject);

      // assess
      assert.equal(before?.confirmation, 'not_found', 'the claim was judged before the endpoint knew it');
      assert.ok(before?.recheckAt, 'a re-check was scheduled');
      assert.deepEqual(results.map((r) => r.kind === 'rechecked' && r.verdict), ['confirmed']);
      assert.equal(after?.confirmation, 'confirmed');
      assert.equal(after?.status, subject.statuses.at(-1)!.status);
      assert.equal(after?.terminal, true);
      assert.equal(after?.recheckAt, undefined, 'settled: no further re-check');
      assert.equal(after?.recheckShard, undefined, 'settled: off the byRecheck index');
      assert.equal((await answersStored(kit, subject.subjectId)).length, 1, 'the answer is in the timeline, from the status endpoint');
    });

    test(`${id}: a transaction whose only callback was lost is found through an expectation`, async () => {
      // prepare: an application expects the subject; its callback never comes, the endpoint knows it
      const subject = finalLife(kit, `${id}-lost`);
      const expected = await expectSubject(env.store, kit.provider, subject, { now: now(), policy: DEFAULT_RECONCILE });
      endpointSays(kit, subject.contents.at(-1)!);

      // act
      const results = await nextRecheck(kit, subject);
      const state = await stateOf(kit, subject);

      // assess
      assert.equal(expected.kind, 'expected');
      assert.equal(results.length, 1);
      assert.equal(state?.status, subject.statuses.at(-1)!.status);
      assert.equal(state?.source, 'status-endpoint');
      assert.equal(state?.confirmation, 'confirmed');
      assert.equal(state?.eventCount, 0, 'no callback counted: the status came from the endpoint');
      assert.ok(state?.expectedAt);
      assert.equal(state?.recheckAt, undefined);
      // Expecting it again changes nothing.
      assert.equal((await expectSubject(env.store, kit.provider, subject, { now: now() })).kind, 'known');
    });

    test(`${id}: a claim the provider contradicts is a mismatch, and its status is not what the state believes`, async () => {
      // prepare: the endpoint says the subject's final status; a callback claims another one
      // (a life whose final status is not the one the kit's otherStatus claims)
      const subject = finalLife(kit, `${id}-mismatch`, (life) => describeContent(kit, kit.otherStatus(life.contents.at(-1)!)).status !== life.statuses.at(-1)!.status);
      const truth = subject.contents.at(-1)!;
      const claim = kit.otherStatus(truth);
      const claimed = describeContent(kit, claim);
      assert.notEqual(claimed.status, subject.statuses.at(-1)!.status, 'the kit gave another status');
      endpointSays(kit, truth);

      // act: the claim arrives (judged on arrival), then re-checks run until the subject is settled
      await deliver(kit, claim);
      const onArrival = await stateOf(kit, subject);
      for (let n = 0; n < 3 && (await stateOf(kit, subject))?.recheckAt; n++) await nextRecheck(kit, subject);
      const settled = await stateOf(kit, subject);
      const claimItem = (await storedObservations(env, id, subject.subjectId)).find((item) => item.source === 'callback');

      // assess
      assert.equal(claimItem?.confirmation, 'mismatch', 'the claim is kept, flagged');
      assert.ok((claimItem?.differences as string[] | undefined)?.length, 'with the fields that differ');
      if (kit.provider.callbackTrust === 'token') assert.notEqual(onArrival?.status, claimed.status, 'an unsigned claim is never believed');
      assert.equal(settled?.status, subject.statuses.at(-1)!.status, "the provider's answer is what the state believes");
      assert.equal(settled?.confirmation, 'confirmed');
    });

    test(`${id}: a status endpoint down for hours delays confirmation and loses nothing`, async () => {
      // prepare: the final callback is stored while the endpoint fails
      const subject = finalLife(kit, `${id}-outage`);
      const last = subject.contents.at(-1)!;
      endpointSays(kit, last);
      simulator().setFault({ status: 503 });
      const hours = Math.min(6, (kit.provider.lookupLimits?.horizonHours ?? 24) / 2);
      try {
        const stored = await deliver(kit, last, QUEUE.askFaultAttempts);
        const start = clock;
        const faults: RecheckResult[] = [];
        // act: re-checks keep failing for `hours` of simulated time
        while (clock - start < hours * 3_600_000) faults.push(...(await nextRecheck(kit, subject)));
        const during = await stateOf(kit, subject);
        simulator().setFault(undefined);
        const recovered = await nextRecheck(kit, subject);
        const afterwards = await stateOf(kit, subject);

        // assess
        assert.equal(stored.kind, 'stored', 'the callback was stored on its last receive, unconfirmed, not sent to the DLQ');
        assert.ok(faults.length >= 5, `asked ${faults.length} times in ${hours} h`);
        assert.ok(faults.every((r) => r.kind === 'rechecked' && r.asked === 'fault'));
        assert.equal(during?.rechecks ?? 0, 0, 'failed re-checks do not use up the schedule');
        assert.equal(during?.stale, undefined, 'not stale during the outage');
        assert.equal(during?.recheckFaults, faults.length);
        const gapMinutes = (Date.parse(during!.recheckAt!) - clock) / 60_000;
        assert.ok(gapMinutes <= (DEFAULT_RECONCILE.faultBackoffCapSeconds / 60) * 1.25 + 1, `back-off capped (next in ${gapMinutes.toFixed(0)} min)`);
        assert.deepEqual(recovered.map((r) => r.kind === 'rechecked' && r.verdict), ['confirmed']);
        assert.equal(afterwards?.status, subject.statuses.at(-1)!.status);
        assert.equal(afterwards?.confirmation, 'confirmed');
        assert.equal(afterwards?.recheckFaults, undefined, 'the fault count is cleared by an answer');
        assert.equal(afterwards?.eventCount, 1, 'the callback is counted once');
        const claim = (await storedObservations(env, id, subject.subjectId)).find((item) => item.source === 'callback');
        assert.match(String(claim?.askFault), /503/, 'the claim says why it was not confirmed on arrival');
      } finally {
        simulator().setFault(undefined);
      }
    });

    test(`${id}: a subject still not final at the horizon is stale, logged for the stale alarm, and off the schedule`, async () => {
      // prepare: an expected subject the endpoint only ever knows as under way
      const subject = finalLife(kit, `${id}-stale`);
      assert.ok(kit.pendingStatus, `${id} kit: a pendingStatus`);
      const answer = kit.statusAnswer!(subject.contents.at(-1)!, kit.pendingStatus);
      env.simulators[id].report(answer);
      await expectSubject(env.store, kit.provider, subject, { now: now(), policy: DEFAULT_RECONCILE });
      const log = captureLogger();

      // act: every re-check of the schedule, on the simulated clock
      let rounds = 0;
      while ((await stateOf(kit, subject))?.stale !== true && rounds++ < 20) await nextRecheck(kit, subject, log);
      const stale = await stateOf(kit, subject);
      const queuedAfter: string[] = [];
      clock += 7 * 86_400_000;
      await sweep([kit.provider], { store: env.store, enqueue: async (m) => void queuedAfter.push(...m.map((x) => x.body)), now, log: captureLogger() });

      // assess
      assert.equal(stale?.stale, true);
      assert.equal(stale?.terminal, false);
      assert.equal(stale?.source, 'status-endpoint', 'the answers were applied');
      assert.equal(stale?.recheckShard, staleShard(id), 'listed under the stale partition of byRecheck');
      assert.ok(stale?.staleAt);
      const horizon = Math.min(kit.provider.lookupLimits?.horizonHours ?? Infinity, DEFAULT_RECONCILE.horizonHours);
      const span = (Date.parse(stale!.staleAt!) - Date.parse(stale!.expectedAt!)) / 3_600_000;
      assert.ok(span <= horizon + 0.1, `stale after ${span.toFixed(1)} h, within the ${horizon} h horizon`);
      assert.ok(rounds <= DEFAULT_RECONCILE.intervalsSeconds.length + 1, `${rounds} re-checks`);
      assert.equal(log.lines.filter((line) => line.message === 'recheck: stale').length, 1, 'one stale line: what the metric counts');
      assert.ok(!queuedAfter.some((body) => body.includes(JSON.stringify(subject.subjectId))), 'a stale subject is not swept again');
    });
  }
});

describe('a stale subject that moves on', { timeout: 120_000 }, () => {
  const kit = () => askedKits.find((each) => each.provider.id === 'temboplus')!;

  /**
   * An expected TemboPlus transfer the endpoint knows only as SUBMITTED until its schedule ends:
   * stale. Returns it, its stale state, and what its callbacks and answers are made from.
   */
  async function staleTransfer(name: string) {
    const subject = finalLife(kit(), name);
    const last = subject.contents.at(-1)!;
    env.simulators.temboplus.report(kit().statusAnswer!(last, 'SUBMITTED'));
    await expectSubject(env.store, kit().provider, subject, { now: now(), policy: DEFAULT_RECONCILE });
    let rounds = 0;
    while ((await stateOf(kit(), subject))?.stale !== true && rounds++ < 20) await nextRecheck(kit(), subject);
    const stale = await stateOf(kit(), subject);
    assert.equal(stale?.stale, true);
    return { subject, last, stale: stale! };
  }

  /** The partner's WAITING_ACK callback, which the endpoint confirms, delivered. */
  async function waitingAck(last: Content): Promise<void> {
    const waiting = kit().statusAnswer!(last, 'WAITING_ACK');
    env.simulators.temboplus.report(waiting);
    await deliver(kit(), { body: Buffer.from(JSON.stringify(waiting)) });
  }

  test('TemboPlus: a transfer stale under way, then a confirmed WAITING_ACK callback, is asked about again and its lost final status found', async () => {
    // prepare: stale with time left in the horizon
    const { subject, last, stale } = await staleTransfer('tembo-revived');
    assert.ok(Date.parse(stale.staleAt!) - Date.parse(stale.expectedAt!) < (DEFAULT_RECONCILE.horizonHours - 1) * 3_600_000, 'stale with time left in the horizon');
    clock += 3_600_000;

    // act: the transfer moves on; then its final callback (COMPLETED, FAILED…: the life's) is lost, and the endpoint knows it
    await waitingAck(last);
    const revived = await stateOf(kit(), subject);
    env.simulators.temboplus.report(kit().statusAnswer!(last));
    const results = await nextRecheck(kit(), subject);
    const found = await stateOf(kit(), subject);

    // assess
    assert.equal(revived?.status, 'WAITING_ACK');
    assert.equal(revived?.confirmation, 'confirmed');
    // Before, it stayed stale: listed for a person, never asked again, its final status never found.
    assert.equal(revived?.stale, undefined, 'no longer stale');
    assert.equal(revived?.rechecks, 0, 'asked again from the schedule\'s start');
    assert.ok(revived?.recheckAt && revived.recheckShard !== staleShard('temboplus'), 'back on the schedule');
    assert.deepEqual(results.map((result) => result.kind), ['rechecked']);
    assert.equal(found?.status, subject.statuses.at(-1)!.status, 'the final status, found by asking');
    assert.equal(found?.terminal, true);
    assert.equal(found?.recheckAt, undefined, 'final: off the schedule');
  });

  test('past the horizon, a stale subject that moves on stays stale, counted once', async () => {
    // prepare: stale, then the horizon passes before the transfer moves on
    const { subject, last, stale } = await staleTransfer('tembo-late');
    clock += (DEFAULT_RECONCILE.horizonHours + 1) * 3_600_000;

    // act
    await waitingAck(last);
    const after = await stateOf(kit(), subject);

    // assess
    assert.equal(after?.status, 'WAITING_ACK', 'the new status is kept');
    assert.equal(after?.stale, true);
    assert.equal(after?.staleAt, stale.staleAt, 'not stale a second time');
    assert.equal(after?.recheckShard, staleShard('temboplus'));
  });
});
