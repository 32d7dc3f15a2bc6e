import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { QUEUE, TABLE } from '../../functions/core/pipeline-definition.ts';
import { processRecheck } from '../../functions/core/recheck.ts';
import { createSecretCache } from '../../functions/core/secrets.ts';
import { processMessage, type WorkerResult } from '../../functions/core/worker.ts';
import { ConfigurationError, DependencyError } from '../../functions/shared/errors.ts';
import { esmsKit } from '../providers/esms.ts';
import {
  byOutcome,
  queueMessageForQuery,
  startWorkerEnvironment,
  storedObservations,
  storedSubject,
  uniqueId,
  type CapturedLogger,
  type WorkerEnvironment,
} from '../support/integration-worker.ts';
import { suiteResource } from '../support/suite-resource.ts';

/**
 * eSMS asked through the real worker, on DynamoDB Local, with the kit's simulated status endpoints
 * (GetSendStatus, GetSmsReceiverStatus_get, the voice call status). eSMS's callbacks prove nothing
 * (a URL token), so with the API keys only eSMS's answers move a state.
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

const esmsEndpoint = () => env.simulators.esms;

/** The status requests the simulated endpoint saw about `subjectId` (a call: `voice:<ReferenceId>`). */
const callsAbout = (subjectId: string) => esmsEndpoint().requests.filter((request) => request.subjectId === subjectId);

async function deliver(query: string, receiveCount = 1, deps = env.deps()): Promise<WorkerResult> {
  return processMessage(await queueMessageForQuery(env.secrets, 'esms', query), deps, receiveCount);
}

/** What eSMS answers about a message: GetSendStatus's fields, and the receiver list for it. */
function message(smsId: string, counters: { success: number; failed: number; total: number; status?: number }, receivers: { Phone: string; IsSent: boolean; SentResult: boolean }[] = []) {
  return {
    CodeResponse: '100',
    SMSID: smsId,
    SendFailed: counters.failed,
    SendStatus: counters.status ?? 5,
    SendSuccess: counters.success,
    TotalPrice: 850.0,
    TotalReceiver: counters.total,
    TotalSent: counters.total,
    ReceiverList: receivers.map((receiver) => ({ NetworkName: 'Viettel', Retry: 0, ...receiver })),
  };
}

describe('eSMS callbacks confirmed by eSMS', () => {
  test("a message's callback: GetSendStatus agrees, the state is confirmed", async () => {
    // prepare
    const smsId = uniqueId('esms-ok');
    const query = `SMSID=${smsId}&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&TypeId=2`;
    esmsEndpoint().report(esmsKit.statusAnswer!({ query }));
    // act
    const result = await deliver(query);
    const stored = await storedSubject(env, 'esms', smsId);
    // assess
    assert.deepEqual(result, { kind: 'stored', subjectId: smsId, stateChanged: true, confirmation: 'confirmed' });
    assert.equal(stored.state?.status, '5');
    assert.equal(stored.state?.outcome, 'succeeded');
    assert.equal(stored.state?.confirmation, 'confirmed');
    assert.equal(stored.state?.confirmedStatus, '5');
    assert.deepEqual(callsAbout(smsId), [{ subjectId: smsId, authorized: true, status: 200 }]);
    const answers = stored.events.filter((event) => event.source === 'status-endpoint');
    assert.equal(answers.length, 1, "eSMS's answer is kept beside the claim");
    assert.equal(answers[0].part, undefined);
  });

  test("a recipient's callback in another spelling of the number: eSMS's receiver list says its own result, on the callback's part", async () => {
    // prepare: counters that cannot say which recipient failed; eSMS lists the number as 0…, the callback as 84…
    const smsId = uniqueId('esms-rcpt');
    esmsEndpoint().report(
      message(smsId, { success: 1, failed: 1, total: 2 }, [
        { Phone: '0901000001', IsSent: true, SentResult: true },
        { Phone: '0901000002', IsSent: true, SentResult: false },
      ]),
    );
    // act
    const result = await deliver(`SMSID=${smsId}&SendStatus=5&SendSuccess=1&SendFailed=1&TotalReceiver=2&TypeId=2&phonenumber=84901000001`);
    const stored = await storedSubject(env, 'esms', smsId);
    // assess
    assert.equal(result.kind === 'stored' && result.confirmation, 'confirmed');
    assert.equal(stored.state, undefined, 'nothing about the message as a whole');
    assert.deepEqual([...stored.parts.keys()], ['84901000001']);
    const part = stored.parts.get('84901000001');
    assert.equal(part?.outcome, 'succeeded', "the recipient's own result, where the counters said unknown");
    assert.equal((part?.detail as Record<string, unknown> | undefined)?.inference, 'recipient-result');
    assert.equal(part?.confirmation, 'confirmed');
    const claim = stored.events.find((event) => event.source !== 'status-endpoint');
    const answer = stored.events.find((event) => event.source === 'status-endpoint');
    assert.equal(claim?.outcome, 'unknown', 'the claim is kept as it read');
    assert.equal(answer?.part, '84901000001');
    assert.equal((answer?.payload as Record<string, unknown>).Phone, '0901000001', 'the number as eSMS lists it');
    assert.equal(callsAbout(smsId).length, 2, 'the message, then its receiver list');
  });

  test('a voice call result: confirmed by the voice call status', async () => {
    // prepare
    const referenceId = uniqueId('call');
    const query = `ReferenceId=${referenceId}&CallDuration=13&CallStatus=ANSWERED&Ivr=&Price=0.0000&SentResult=1&CID=02871002454&SendStatus=5`;
    esmsEndpoint().report(esmsKit.statusAnswer!({ query }));
    // act
    const result = await deliver(query);
    const stored = await storedSubject(env, 'esms', `voice:${referenceId}`);
    // assess
    assert.equal(result.kind === 'stored' && result.confirmation, 'confirmed');
    assert.equal(stored.state?.outcome, 'succeeded');
    assert.equal(stored.state?.confirmation, 'confirmed');
    assert.deepEqual(callsAbout(`voice:${referenceId}`).map((call) => call.status), [200]);
  });
});

describe('two workers asking about one message at once: the state the same in either write order', () => {
  /**
   * Two reports of one message, each in its own worker: `first` asks eSMS a second before `second`,
   * and the state write that lands first is forced (`order`). Returns the subject as stored.
   */
  async function twoWorkers(smsId: string, first: string, second: string, order: 'first asked writes first' | 'second asked writes first') {
    // Both received before either worker asks, as they would be.
    const firstMessage = await queueMessageForQuery(env.secrets, 'esms', first, { receivedAt: '2026-03-01T10:00:00.000Z' });
    const secondMessage = await queueMessageForQuery(env.secrets, 'esms', second, { receivedAt: '2026-03-01T10:00:01.000Z' });
    let firstWritten!: () => void;
    const firstWrite = new Promise<void>((resolve) => (firstWritten = resolve));
    const worker = (writesSecond: boolean, at: string) => {
      const deps = env.deps();
      const store = {
        ...deps.store,
        async putState(...args: Parameters<typeof deps.store.putState>) {
          if (writesSecond) await firstWrite;
          const result = await deps.store.putState(...args);
          if (!writesSecond) firstWritten();
          return result;
        },
      };
      return { ...deps, store, now: () => new Date(at) };
    };
    const a = worker(order === 'second asked writes first', '2026-03-01T10:00:05.000Z');
    const b = worker(order === 'first asked writes first', '2026-03-01T10:00:06.000Z');
    await Promise.all([processMessage(firstMessage, a), processMessage(secondMessage, b)]);
    return storedSubject(env, 'esms', smsId);
  }

  test('the sent report and an earlier "awaiting report" one: the message ends confirmed, whichever worker writes first', async () => {
    for (const order of ['first asked writes first', 'second asked writes first'] as const) {
      // prepare: eSMS's answer carries no time of its own, so each is placed when asked. The final
      // report asks first; the report before it (7, sent to the telco awaiting its report) a moment later.
      const smsId = uniqueId('esms-two-workers');
      esmsEndpoint().report(message(smsId, { success: 1, failed: 0, total: 1 }));
      // act
      const stored = await twoWorkers(
        smsId,
        `SMSID=${smsId}&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&TypeId=2`,
        `SMSID=${smsId}&SendStatus=7&SendSuccess=0&SendFailed=0&TotalReceiver=1&TypeId=2`,
        order,
      );
      // assess: before, the pending report written first left the sent message a `mismatch` (the
      // final report's confirmation dropped as an answer older than the one in place)
      assert.deepEqual([stored.state?.status, stored.state?.outcome, stored.state?.confirmation, stored.state?.confirmedStatus, stored.state?.eventCount], ['5', 'succeeded', 'confirmed', '5', 2], order);
      const claims = stored.events.filter((event) => event.source === 'callback');
      // Each report's own verdict is on its item: the earlier one differs from eSMS's answer.
      assert.deepEqual(claims.map((claim) => [claim.status, claim.confirmation]).sort(), [['5', 'confirmed'], ['7', 'mismatch']], order);
    }
  });

  test('a sent report with receivers still to count, and the full one: confirmed, whichever worker writes first', async () => {
    for (const order of ['first asked writes first', 'second asked writes first'] as const) {
      // prepare: eSMS has counted both receivers. The full report (A) asks first; the one sent
      // before it, nothing counted yet (SendStatus 5, 0 of 2: not final), asks a moment later.
      const smsId = uniqueId('esms-two-counts');
      esmsEndpoint().report(message(smsId, { success: 2, failed: 0, total: 2 }));
      // act
      const stored = await twoWorkers(
        smsId,
        `SMSID=${smsId}&SendStatus=5&SendSuccess=2&SendFailed=0&TotalReceiver=2&TypeId=2`,
        `SMSID=${smsId}&SendStatus=5&SendSuccess=0&SendFailed=0&TotalReceiver=2&TypeId=2`,
        order,
      );
      // assess: before, the earlier count written first left the message `mismatch`
      assert.deepEqual([stored.state?.status, stored.state?.outcome, stored.state?.confirmation, stored.state?.confirmedStatus], ['5', 'succeeded', 'confirmed', '5'], order);
    }
  });

  test('a forged "delivered" and a genuine earlier report: the forgery flagged on the state, whichever worker writes first', async () => {
    for (const order of ['first asked writes first', 'second asked writes first'] as const) {
      // prepare: the message failed. A forged final report says it succeeded (asked first); the
      // genuine report before the final one (7) asks a moment later.
      const smsId = uniqueId('esms-two-forged');
      esmsEndpoint().report(message(smsId, { success: 0, failed: 1, total: 1 }));
      // act
      const stored = await twoWorkers(
        smsId,
        `SMSID=${smsId}&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&TypeId=2`,
        `SMSID=${smsId}&SendStatus=7&SendSuccess=0&SendFailed=0&TotalReceiver=1&TypeId=2`,
        order,
      );
      // assess: before, the genuine report written first left the failed message with nothing said
      // of it (the forgery's verdict dropped as an answer older than the one in place)
      assert.deepEqual(
        [stored.state?.status, stored.state?.outcome, stored.state?.confirmation, stored.state?.confirmedStatus, stored.state?.differences],
        ['5', 'failed', 'mismatch', '5', ['SendSuccess', 'SendFailed', 'outcome']],
        order,
      );
    }
  });
});

describe('eSMS says otherwise: the claim is never believed over the answer', () => {
  test('a message claimed delivered that failed: a mismatch naming the counters, and the state says failed', async () => {
    // prepare
    const smsId = uniqueId('esms-forged');
    esmsEndpoint().report(message(smsId, { success: 0, failed: 1, total: 1 }));
    // act
    const result = await deliver(`SMSID=${smsId}&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1`);
    const stored = await storedSubject(env, 'esms', smsId);
    const failed = await byOutcome(env, 'esms', 'failed');
    const succeeded = await byOutcome(env, 'esms', 'succeeded');
    // assess
    assert.equal(result.kind === 'stored' && result.confirmation, 'mismatch');
    assert.equal(stored.state?.outcome, 'failed');
    assert.equal(stored.state?.confirmation, 'mismatch');
    assert.equal(stored.state?.[TABLE.outcomeIndex.partitionKey], 'esms#failed');
    assert.ok(failed.some((item) => item.subjectId === smsId));
    assert.ok(!succeeded.some((item) => item.subjectId === smsId), 'never listed as succeeded');
    const claim = stored.events.find((event) => event.source !== 'status-endpoint');
    assert.equal(claim?.outcome, 'succeeded', 'the event keeps what the callback claimed');
    assert.equal(claim?.confirmation, 'mismatch');
    assert.deepEqual(claim?.differences, ['SendSuccess', 'SendFailed', 'outcome']);
  });

  test('a call claimed answered that nobody picked up (NOANSWERED): a mismatch naming CallStatus, and the state says failed', async () => {
    // prepare: SentResult 1 on both sides; only the call's result differs
    const referenceId = uniqueId('call-unanswered');
    esmsEndpoint().report({ ReferenceId: referenceId, SendStatus: '5', SentResult: '1', CallDuration: '0', CallStatus: 'NOANSWERED', Ivr: '' });
    // act
    const result = await deliver(`ReferenceId=${referenceId}&CallDuration=13&CallStatus=ANSWERED&Ivr=&Price=0.0000&SentResult=1&CID=02871002454&SendStatus=5`);
    const stored = await storedSubject(env, 'esms', `voice:${referenceId}`);
    // assess
    assert.equal(result.kind === 'stored' && result.confirmation, 'mismatch');
    assert.deepEqual([stored.state?.outcome, stored.state?.confirmation], ['failed', 'mismatch']);
    assert.deepEqual(stored.events.find((event) => event.source !== 'status-endpoint')?.differences, ['CallStatus', 'outcome']);
  });

  test('a call result callback that nobody picked up, after an answered one: stored, not taken for its retry', async () => {
    // prepare: eSMS says the call was answered
    const referenceId = uniqueId('call-two');
    const call = `ReferenceId=${referenceId}&SendStatus=5&SentResult=1`;
    esmsEndpoint().report(esmsKit.statusAnswer!({ query: `${call}&CallStatus=ANSWERED&CallDuration=13` }));
    // act
    await deliver(`${call}&CallStatus=ANSWERED&CallDuration=13`);
    const second = await deliver(`${call}&CallStatus=NO%20ANSWER&CallDuration=0`);
    const stored = await storedSubject(env, 'esms', `voice:${referenceId}`);
    // assess
    assert.notEqual(second.kind, 'duplicate');
    assert.equal(stored.events.filter((event) => event.source !== 'status-endpoint').length, 2, 'both callbacks are kept');
  });

  test('a recipient claimed delivered that eSMS lists as failed: the receiver list decides', async () => {
    // prepare: one recipient of two succeeded
    const smsId = uniqueId('esms-forged-rcpt');
    esmsEndpoint().report(
      message(smsId, { success: 1, failed: 1, total: 2 }, [
        { Phone: '0901000001', IsSent: true, SentResult: true },
        { Phone: '0901000002', IsSent: true, SentResult: false },
      ]),
    );
    // act: a callback whose counters claim every recipient succeeded, about the one that failed
    const claimed = await deliver(`SMSID=${smsId}&SendStatus=5&SendSuccess=2&SendFailed=0&TotalReceiver=2&phonenumber=0901000002`);
    const stored = await storedSubject(env, 'esms', smsId);
    // assess
    assert.equal(claimed.kind === 'stored' && claimed.confirmation, 'mismatch');
    const part = stored.parts.get('0901000002');
    assert.equal(part?.outcome, 'failed');
    assert.equal(part?.confirmation, 'mismatch');
    assert.deepEqual(stored.events.find((event) => event.source !== 'status-endpoint')?.differences, ['SendSuccess', 'SendFailed', 'outcome']);
  });
});

describe('eSMS has not sent to the recipient yet (IsSent false)', () => {
  test('two workers, the one whose answer is older writing last: a recipient eSMS has since sent stays confirmed', async () => {
    for (const receiveCount of [1, QUEUE.settleAttempts]) {
      // prepare: eSMS resent one recipient's report (two deliveries of it, each in its own worker). A
      // asks first, while eSMS has not sent to the recipient yet (its answer is behind the claim); B
      // asks a moment later, once eSMS lists the recipient sent and delivered, and writes first.
      const smsId = uniqueId('esms-two-not-yet');
      const query = `SMSID=${smsId}&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&phonenumber=0901000001`;
      esmsEndpoint().report(message(smsId, { success: 1, failed: 0, total: 1 }, [{ Phone: '0901000001', IsSent: false, SentResult: false }]));
      const first = await queueMessageForQuery(env.secrets, 'esms', query, { receivedAt: '2026-03-01T10:00:00.000Z' });
      const again = await queueMessageForQuery(env.secrets, 'esms', query, { receivedAt: '2026-03-01T10:00:01.000Z' });
      let asked!: () => void;
      const aAsked = new Promise<void>((resolve) => (asked = resolve));
      let written!: () => void;
      const bWritten = new Promise<void>((resolve) => (written = resolve));
      const depsA = env.deps();
      const a = {
        ...depsA,
        now: () => new Date('2026-03-01T10:00:05.000Z'),
        store: {
          ...depsA.store,
          async putState(...args: Parameters<typeof depsA.store.putState>) {
            asked();
            await bWritten;
            return depsA.store.putState(...args);
          },
        },
      };
      const depsB = env.deps();
      const b = {
        ...depsB,
        now: () => new Date('2026-03-01T10:00:06.000Z'),
        store: {
          ...depsB.store,
          async putState(...args: Parameters<typeof depsB.store.putState>) {
            const result = await depsB.store.putState(...args);
            written();
            return result;
          },
        },
      };
      // act
      const workerA = processMessage(first, a, receiveCount).catch((error: unknown) => error);
      await aAsked;
      esmsEndpoint().report(message(smsId, { success: 1, failed: 0, total: 1 }, [{ Phone: '0901000001', IsSent: true, SentResult: true }]));
      await processMessage(again, b);
      await workerA;
      const part = (await storedSubject(env, 'esms', smsId)).parts.get('0901000001');
      // assess: eSMS's newer answer, delivered, is in place and confirmed; A's older answer, behind the
      // claim, is no contradiction of it (before the fix: 'mismatch', ['outcome'], the other write order 'confirmed')
      assert.deepEqual([part?.status, part?.outcome, part?.confirmation, part?.differences], ['5', 'succeeded', 'confirmed', undefined], `receive ${receiveCount}`);
    }
  });

  test('a recipient claimed delivered that eSMS has not sent yet: pending and asked again, then its result', async () => {
    // prepare
    const smsId = uniqueId('esms-not-yet');
    esmsEndpoint().report(message(smsId, { success: 1, failed: 0, total: 1 }, [{ Phone: '0901000001', IsSent: false, SentResult: false }]));
    const query = `SMSID=${smsId}&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&phonenumber=0901000001`;
    // act: eSMS looks behind the claim, so the first receives retry (SQS back-off); the last stores it
    for (let receive = 1; receive < QUEUE.settleAttempts; receive++) await assert.rejects(deliver(query, receive), DependencyError);
    const claimed = await deliver(query, QUEUE.settleAttempts);
    const before = (await storedSubject(env, 'esms', smsId)).parts.get('0901000001');
    esmsEndpoint().report(message(smsId, { success: 1, failed: 0, total: 1 }, [{ Phone: '0901000001', IsSent: true, SentResult: true }]));
    const recheck = await processRecheck({ v: 1, kind: 'recheck', provider: 'esms', subjectId: smsId, part: '0901000001', at: new Date().toISOString() }, env.deps());
    const after = (await storedSubject(env, 'esms', smsId)).parts.get('0901000001');
    // assess: "IsSent: false = not yet sent" is no result, so never final and never success
    assert.equal('confirmation' in claimed && claimed.confirmation, 'mismatch', JSON.stringify(claimed));
    assert.deepEqual([before?.outcome, before?.terminal, before?.confirmation], ['pending', false, 'mismatch']);
    assert.ok(before?.recheckAt, 'the recipient is asked about again');
    assert.equal(recheck.kind === 'rechecked' && recheck.settled, true);
    assert.deepEqual([after?.status, after?.outcome, after?.terminal], ['5', 'succeeded', true]);
    assert.equal(after?.recheckAt, undefined, 'settled once eSMS has its result');
  });
});

describe('eSMS does not know the message (105)', () => {
  test('retried as "not known yet", then recorded as not_found and never believed', async () => {
    // prepare
    const smsId = uniqueId('esms-unknown');
    const query = `SMSID=${smsId}&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1`;
    // act: the first receives fail (SQS retries with back-off); the last one takes the verdict
    for (let receive = 1; receive < QUEUE.settleAttempts; receive++) await assert.rejects(deliver(query, receive), DependencyError);
    const result = await deliver(query, QUEUE.settleAttempts);
    const stored = await storedSubject(env, 'esms', smsId);
    // assess
    assert.equal(result.kind === 'duplicate' && result.confirmation, 'not_found');
    assert.equal(stored.state?.status, undefined, 'no status believed');
    assert.equal(stored.state?.outcome, 'pending');
    assert.equal(stored.state?.confirmation, 'not_found');
    assert.ok(stored.state?.recheckAt, 'reconciliation keeps asking');
    assert.deepEqual(callsAbout(smsId).map((call) => call.status), Array(QUEUE.settleAttempts).fill(200), 'every 105 is a 200 with a body code');
  });

  test("a recipient eSMS's receiver list does not name is not found either: its claim is not believed", async () => {
    // prepare
    const smsId = uniqueId('esms-stranger');
    esmsEndpoint().report(message(smsId, { success: 1, failed: 0, total: 1 }, [{ Phone: '0901000001', IsSent: true, SentResult: true }]));
    const query = `SMSID=${smsId}&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&phonenumber=0909999999`;
    // act
    for (let receive = 1; receive < QUEUE.settleAttempts; receive++) await assert.rejects(deliver(query, receive), DependencyError);
    const result = await deliver(query, QUEUE.settleAttempts);
    const stored = await storedSubject(env, 'esms', smsId);
    // assess
    assert.equal(result.kind === 'duplicate' && result.confirmation, 'not_found');
    assert.equal(stored.parts.get('0909999999')?.status, undefined);
    assert.equal(stored.parts.get('0909999999')?.confirmation, 'not_found');
  });

  test('a callback that overtook eSMS is confirmed by the re-check once eSMS knows the message', async () => {
    // prepare: not known on arrival
    const smsId = uniqueId('esms-late');
    const query = `SMSID=${smsId}&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1&phonenumber=0901000001`;
    for (let receive = 1; receive <= QUEUE.settleAttempts; receive++) await deliver(query, receive).catch(() => undefined);
    esmsEndpoint().report(esmsKit.statusAnswer!({ query }));
    // act
    const recheck = await processRecheck({ v: 1, kind: 'recheck', provider: 'esms', subjectId: smsId, part: '0901000001', at: new Date().toISOString() }, env.deps());
    const stored = await storedSubject(env, 'esms', smsId);
    // assess
    assert.deepEqual(recheck, { kind: 'rechecked', asked: 'found', verdict: 'confirmed', stateChanged: true, settled: true, stale: false });
    const part = stored.parts.get('0901000001');
    assert.equal(part?.status, '5');
    assert.equal(part?.outcome, 'succeeded');
    assert.equal(part?.confirmation, 'confirmed');
    assert.equal(part?.recheckAt, undefined, 'settled: no more re-checks');
  });
});

describe('eSMS refuses or fails', () => {
  test('wrong keys (101): a configuration fault naming the fields; the keys reach no log line, error or stored item', async () => {
    // prepare: a worker whose eSMS secret has a wrong secretKey
    const wrongKey = 'it-wrong-esms-secret-key-7c1';
    const secrets: Record<string, Record<string, unknown>> = { ...env.secrets, esms: { ...env.secrets.esms, secretKey: wrongKey } };
    const deps = env.deps({ secrets: createSecretCache(async (provider) => JSON.stringify(secrets[provider.id])) });
    const smsId = uniqueId('esms-101');
    const query = `SMSID=${smsId}&SendStatus=5&SendSuccess=1&SendFailed=0&TotalReceiver=1`;
    esmsEndpoint().report(esmsKit.statusAnswer!({ query }));
    // act: refused on every receive but the last allowed for asking, where the callback is stored unconfirmed
    const errors: unknown[] = [];
    for (let receive = 1; receive < QUEUE.askFaultAttempts; receive++) errors.push(await deliver(query, receive, deps).then(() => undefined, (error: unknown) => error));
    const last = await deliver(query, QUEUE.askFaultAttempts, deps);
    const items = await storedObservations(env, 'esms', smsId);
    const stored = await storedSubject(env, 'esms', smsId);
    // assess
    assert.ok(errors.every((error) => error instanceof ConfigurationError), errors.map(String).join('; '));
    assert.match((errors[0] as Error).message, /code 101 .*check apiKey and secretKey in the esms secret/);
    assert.equal(last.kind, 'stored');
    assert.equal(stored.state?.status, undefined, 'a refused lookup confirms nothing: nothing believed');
    assert.match(String(items[0]?.askFault), /code 101/);
    const said = JSON.stringify([errors.map((error) => (error as Error).message), (deps.log as CapturedLogger).lines, items, stored.state]);
    for (const secret of [wrongKey, String(env.secrets.esms.apiKey), String(env.secrets.esms.secretKey), 'ApiKey=', 'SecretKey=']) assert.ok(!said.includes(secret), `"${secret}" leaked`);
    assert.ok(callsAbout(smsId).every((call) => !call.authorized));
  });

  test('a message callback stored while eSMS was down, whose counters eSMS has counted further by the re-check: older news, not a mismatch on the state', async () => {
    // prepare: 20 of 169 counted when called back, while GetSendStatus answers 500
    const smsId = uniqueId('esms-unjudged-counting');
    const query = `SMSID=${smsId}&SendStatus=5&SendSuccess=20&SendFailed=0&TotalReceiver=169`;
    esmsEndpoint().setFault({ status: 500 });
    try {
      await deliver(query, QUEUE.askFaultAttempts);
    } finally {
      esmsEndpoint().setFault(undefined);
    }
    esmsEndpoint().report(message(smsId, { success: 100, failed: 0, total: 169 }));

    // act: the re-check, eSMS having counted 100 by now
    const recheck = await processRecheck({ v: 1, kind: 'recheck', provider: 'esms', subjectId: smsId, at: new Date().toISOString() }, env.deps());

    // assess
    const stored = await storedSubject(env, 'esms', smsId);
    assert.equal(recheck.kind === 'rechecked' && recheck.verdict, 'confirmed');
    const detail = stored.state?.detail as Record<string, unknown> | undefined;
    assert.deepEqual([detail?.SendSuccess, stored.state?.confirmation, stored.state?.differences], ['100', 'confirmed', undefined], "eSMS's count, confirmed");
    assert.equal(stored.state?.unansweredClaimAt, undefined, 'the claim was answered');
    const claim = stored.events.find((event) => event.source === 'callback');
    assert.deepEqual([claim?.confirmation, claim?.differences], ['mismatch', ['SendSuccess']], 'the claim itself keeps what eSMS says differently, as on arrival');
  });

  test('eSMS down (500): the record fails with nothing stored, and is confirmed once eSMS is back', async () => {
    // prepare
    const smsId = uniqueId('esms-500');
    const query = `SMSID=${smsId}&SendStatus=5&SendSuccess=0&SendFailed=1&TotalReceiver=1`;
    esmsEndpoint().report(esmsKit.statusAnswer!({ query }));
    esmsEndpoint().setFault({ status: 500, times: 1 });
    // act
    const down = await deliver(query, 1).then(() => undefined, (error: unknown) => error);
    const during = await storedSubject(env, 'esms', smsId);
    const back = await deliver(query, 2);
    // assess
    assert.ok(down instanceof DependencyError && down.dependency === 'esms', String(down));
    assert.equal(during.state, undefined);
    assert.equal(during.events.length, 0);
    assert.equal(back.kind === 'stored' && back.confirmation, 'confirmed');
    assert.deepEqual(callsAbout(smsId).map((call) => call.status), [500, 200]);
  });
});
