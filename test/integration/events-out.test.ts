import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { putEventsEntry } from '../../functions/adapters/eventbridge.ts';
import { expectSubject } from '../../functions/core/expect.ts';
import { DETAIL_TYPES, eventsFromChange, type GatewayEvent, type InstructionDetail, type StatusChangedDetail } from '../../functions/core/publish.ts';
import { QUEUE } from '../../functions/core/pipeline-definition.ts';
import { RecheckMessageSchema } from '../../functions/core/queue-message.ts';
import { processRecheck } from '../../functions/core/recheck.ts';
import { DEFAULT_RECONCILE } from '../../functions/core/reconcile.ts';
import { sweep } from '../../functions/core/sweep.ts';
import { processMessage } from '../../functions/core/worker.ts';
import { providers } from '../../functions/providers/index.ts';
import { streamFilterPatterns } from '../../lib/event-outlet.ts';
import { listSamples } from '../../local/samples.ts';
// As the local runtime reads DynamoDB Local's stream (an empty map there is `{}`).
import { toStreamRecord } from '../../local/stream-reader.ts';
import { allKits } from '../providers/index.ts';
import type { Content, ProviderKit } from '../providers/kit.ts';
import { readTableStream } from '../support/dynamodb-local-stream.ts';
import { passesFilters } from '../support/lambda-filter.ts';
import { deliveredEvent, schemaErrors, undeclaredDetailMembers } from '../support/event-schemas.ts';
import { subjectLife } from '../support/faults-traffic.ts';
import { captureLogger, queueMessageForContent, startWorkerEnvironment, uniqueId, type WorkerEnvironment } from '../support/integration-worker.ts';
import { suiteResource } from '../support/suite-resource.ts';

/**
 * Events out, end to end on the real engines: realistic sequences for every provider (callbacks in
 * and out of order, redeliveries, confirmations, contradictions, a subject the endpoint does not
 * know, re-checks until stale, quarantined callbacks, every kind of Identomat instruction) written
 * by the worker, read back from DynamoDB Local's stream, made into events by the publisher's core
 * and put into PutEvents entries by its adapter: Lambda's stream filter lets each through, every one validates against its published schema
 * and says what the README says it says.
 */

let env: WorkerEnvironment;
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

const deps = () => env.deps({ now, reconcile: DEFAULT_RECONCILE, asking: true });

async function deliver(kit: ProviderKit, content: Content, receive: number = QUEUE.settleAttempts) {
  // Received now (a signature's timestamp is checked against it); the worker's clock runs ahead.
  const message = await queueMessageForContent(env.secrets, kit.provider.id, content, {});
  clock = Math.max(clock, Date.now()) + 1000;
  return processMessage(message, deps(), receive);
}

/** Every re-check the sweep queues now, processed (the clock moved past the due ones). */
async function recheckAll(kit: ProviderKit, hours: number): Promise<void> {
  clock += hours * 3_600_000;
  const queued: string[] = [];
  await sweep([kit.provider], { store: env.store, enqueue: async (messages) => void queued.push(...messages.map((m) => m.body)), now, log: captureLogger(), reconcile: DEFAULT_RECONCILE });
  for (const body of queued) await processRecheck(RecheckMessageSchema.parse(JSON.parse(body)), deps());
}

const json = (value: unknown): Content => ({ body: Buffer.from(JSON.stringify(value)) });

describe('every event the gateway publishes, from realistic sequences of every provider', { timeout: 300_000 }, () => {
  test('validates against its schema, declares every member, and chains per state as the README says', async () => {
    // prepare: every provider's lives, delivered in order, then reversed (late ones), then again
    for (const kit of allKits()) {
      const id = kit.provider.id;
      for (let n = 0; n < 4; n++) {
        const life = subjectLife(kit, env.secrets, uniqueId(`${id}-life${n}`));
        const contents = life.callbacks.map((callback) => callback.content);
        if (life.answer && n === 1) env.simulators[id].report(life.answer.answer); // confirmed
        if (life.answer && n === 2 && kit.pendingStatus && kit.statusAnswer) env.simulators[id].report(kit.statusAnswer(contents.at(-1)!, kit.pendingStatus)); // contradicted / pending
        // n === 0, 3: the endpoint does not know the subject (not_found)
        const order = n === 3 ? [...contents].reverse() : contents;
        for (const content of order) await deliver(kit, content);
        for (const content of contents) await deliver(kit, content); // redeliveries
        if (n === 1) await deliver(kit, kit.otherStatus(contents.at(-1)!));
      }
      // an expectation the endpoint never answers goes stale
      if (kit.provider.lookup && kit.statusAnswer && kit.pendingStatus) {
        const life = subjectLife(kit, env.secrets, uniqueId(`${id}-expected`));
        await expectSubject(env.store, kit.provider, { subjectId: life.callbacks[0].subjectId }, { now: now(), policy: DEFAULT_RECONCILE });
      }
      for (let round = 0; round < 14; round++) await recheckAll(kit, 6);
      // quarantined: authentic but invalid
      for (const sample of listSamples(id, 'invalid')) {
        // (one ingest refuses is stored nowhere)
        const result = await deliver(kit, { ...(sample.body ? { body: sample.body } : {}), ...(sample.query ? { query: sample.query } : {}) }).catch(() => undefined);
        if (result) assert.match(result.kind, /^quarantine/, `${id}/invalid/${sample.name}`);
      }
    }
    // Identomat's four instruction kinds
    const identomat = allKits().find((kit) => kit.provider.id === 'identomat')!;
    const sessionId = uniqueId('idm-instructions');
    for (const body of [
      { type: 'one-time-password', sessionId, text: 'Your code is 6867', phoneNumber: '+995512345678' },
      { type: 'email-one-time-password-request', sessionId, text: 'Your code is 4412', email: 'applicant@example.com' },
      { type: 'share-session-link-via-sms', sessionId, text: 'Please verify', phoneNumber: '+995512345678', sessionLink: `https://widget.identomat.com/?session_token=${sessionId}` },
      { type: 'share-session-link-via-email', sessionId, text: 'Please verify', email: 'applicant@example.com', sessionLink: `https://widget.identomat.com/?session_token=${sessionId}` },
      { type: 'session-change', sessionId, result: 'MANUAL_CHECK' },
      { type: 'session-change', sessionId, result: 'APPROVED' },
    ]) {
      await deliver(identomat, json(body));
    }

    // act
    const raw = await readTableStream(env.dynamo.endpoint, env.tableName);
    const records = raw.map((record) => toStreamRecord(record as Parameters<typeof toStreamRecord>[0]));
    const events: GatewayEvent[] = records.flatMap((record) => eventsFromChange(record.change));

    // assess: Lambda's filter on the stream invokes the publisher for every record that publishes
    const patterns = streamFilterPatterns(providers);
    const dropped = raw.filter((record, n) => eventsFromChange(records[n].change).length > 0 && !passesFilters(patterns, record));
    assert.deepEqual(dropped.map((record) => record.dynamodb?.Keys), [], 'records the filter keeps from the publisher');

    // assess: the schemas
    const kinds = new Set(events.map((event) => (event.detailType === DETAIL_TYPES.instruction ? (event.detail as InstructionDetail).kind : (event.detail as StatusChangedDetail).confirmation ?? 'none')));
    const providersSeen = new Set(events.map((event) => event.detail.provider));
    assert.deepEqual([...providersSeen].sort(), allKits().map((kit) => kit.provider.id).sort(), 'every provider published');
    for (const kind of ['one-time-password', 'email-one-time-password-request', 'share-session-link-via-sms', 'share-session-link-via-email', 'confirmed', 'mismatch', 'not_found']) {
      assert.ok(kinds.has(kind), `${kind} among ${[...kinds].join(', ')}`);
    }
    assert.ok(events.some((event) => (event.detail as StatusChangedDetail).stale === true), 'a stale event');
    const problems: string[] = [];
    for (const event of events) {
      const delivered = deliveredEvent(putEventsEntry(event, 'CallbackGateway') as PutEventsRequestEntry);
      const errors = schemaErrors(delivered);
      const undeclared = undeclaredDetailMembers(delivered);
      if (errors.length > 0 || undeclared.length > 0) problems.push(`${JSON.stringify(delivered.detail)}: ${[...errors, ...undeclared.map((name) => `undeclared ${name}`)].join('; ')}`);
    }
    assert.deepEqual(problems, []);

    // assess: the README's word on each member
    const ids = new Set<string>();
    const last = new Map<string, StatusChangedDetail>();
    for (const event of events) {
      assert.ok(!ids.has(event.detail.eventId), `eventId ${event.detail.eventId} published for two changes`);
      ids.add(event.detail.eventId);
      if (event.detailType !== DETAIL_TYPES.statusChanged) continue;
      const detail = event.detail as StatusChangedDetail;
      // "`source`: absent while `status` is null"
      if (detail.status === null) assert.equal(detail.source, undefined, `source with a null status: ${JSON.stringify(detail)}`);
      else assert.ok(detail.source === 'callback' || detail.source === 'status-endpoint', `no source: ${JSON.stringify(detail)}`);
      const key = `${detail.provider}\u0000${detail.subjectId}\u0000${detail.part ?? ''}`;
      const before = last.get(key);
      // "`previous`: `{status, outcome}` before this change; null for the first"
      assert.deepEqual(detail.previous, before ? { status: before.status, outcome: before.outcome } : null, `previous of ${JSON.stringify(detail)}`);
      if (before) assert.ok(detail.version > before.version, 'versions rise');
      // "once per change that says something new": what a reader sees differs from the event before
      const seen = (d: StatusChangedDetail) => JSON.stringify([d.status, d.outcome, d.terminal, d.statusAt, d.source, d.confirmation, d.confirmedStatus, d.differences, d.stale]);
      if (before) assert.notEqual(seen(detail), seen(before), `an event that says nothing new: ${JSON.stringify(detail)} after ${JSON.stringify(before)}`);
      assert.equal(event.time, detail.changedAt);
      last.set(key, detail);
    }
  });
});
