import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import type { PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { putEventsEntry } from '../../functions/adapters/eventbridge.ts';
import { DETAIL_TYPES, type DetailType, eventsFromChange, type GatewayEvent } from '../../functions/core/publish.ts';
import { applyObservations, type StateItem } from '../../functions/core/state.ts';
import { stateItem, type Item } from '../../functions/core/store.ts';
import { providers } from '../../functions/providers/index.ts';
import { OUTCOMES } from '../../functions/providers/provider.ts';
import { listSamples } from '../../local/samples.ts';
import { deliveredEvent, type Json, readSchema, SCHEMA_FILES, schemaErrors, undeclaredDetailMembers } from '../support/event-schemas.ts';

/**
 * The published JSON Schemas (schemas/*.json) against the events the publisher really makes: the
 * core's events for the changes the worker writes, through the EventBridge adapter's entries, as
 * EventBridge delivers them. Every member an event carries is declared; a wrong event is refused.
 * (test/e2e/deployed-bundles.test.ts validates the events the deployed publisher bundle puts from
 * DynamoDB Local's stream as well.)
 */

const T = (minute: number) => `2026-12-01T10:${String(minute).padStart(2, '0')}:00.000Z`;
const BUS = 'CallbackGateway';

function state(fields: Record<string, unknown> = {}): Item {
  return {
    pk: 'temboplus#REF-1', sk: 'STATE', provider: 'temboplus', subjectId: 'REF-1',
    status: 'SUBMITTED', outcome: 'pending', terminal: false, statusAt: T(0), source: 'callback',
    createdAt: T(0), updatedAt: T(0), changedAt: T(0), eventCount: 1, recent: ['a'], seen: 1, version: 1,
    ...fields,
  };
}

/** Identomat's documented instruction samples as the worker stores their event items. */
function instructionItems(): Item[] {
  return listSamples('identomat')
    .map((sample) => JSON.parse(sample.body!.toString('utf8')) as Record<string, unknown>)
    .filter((payload) => String(payload.type).includes('one-time-password') || String(payload.type).startsWith('share-session-link'))
    .map(({ callbackApiKey: _key, ...payload }, n) => ({
      pk: `identomat#${String(payload.sessionId)}`, sk: `EVENT#${String(payload.type)}|${n}`, provider: 'identomat', subjectId: String(payload.sessionId),
      source: 'callback', receivedAt: T(n), payload,
    }));
}

/** Every kind of event the core makes: first statuses, changes with every optional member, parts, stale, instructions. */
function realEvents(): GatewayEvent[] {
  const changes = [
    { eventName: 'INSERT' as const, newImage: state() },
    { eventName: 'MODIFY' as const, oldImage: state(), newImage: state({ status: 'COMPLETED', outcome: 'succeeded', terminal: true, changedAt: T(5), version: 2, source: 'status-endpoint', confirmation: 'confirmed', confirmedStatus: 'COMPLETED' }) },
    { eventName: 'MODIFY' as const, oldImage: state(), newImage: state({ confirmation: 'mismatch', confirmedStatus: 'FAILED', differences: ['status'], changedAt: T(6), version: 2 }) },
    { eventName: 'MODIFY' as const, oldImage: state({ confirmation: 'not_found' }), newImage: state({ confirmation: 'not_found', stale: true, version: 3 }) },
    { eventName: 'INSERT' as const, newImage: state({ pk: 'esms#S1', sk: 'STATE#84901234567', provider: 'esms', subjectId: 'S1', part: '84901234567', status: null, outcome: 'unknown' }) },
    ...instructionItems().map((item) => ({ eventName: 'INSERT' as const, newImage: item })),
  ];
  return changes.flatMap((change) => eventsFromChange(change));
}

const delivered = (event: GatewayEvent): Json => deliveredEvent(putEventsEntry(event, BUS) as PutEventsRequestEntry);

describe('the JSON Schemas', () => {
  test('every event the publisher makes validates against its detail-type\'s schema, and every member it carries is declared', () => {
    // prepare
    const events = realEvents();
    const types = new Set(events.map((event) => event.detailType));
    assert.deepEqual([...types].sort(), Object.values(DETAIL_TYPES).sort(), 'both detail types made');
    assert.ok(events.filter((event) => event.detailType === DETAIL_TYPES.instruction).length >= 3, 'the Identomat instruction samples');

    for (const event of events) {
      // act
      const json = delivered(event);

      // assess
      assert.deepEqual(schemaErrors(json), [], `${event.detailType} ${JSON.stringify(json.detail)}`);
      assert.deepEqual(undeclaredDetailMembers(json), [], `${event.detailType}: undocumented members`);
    }
  });

  test('crafted instructions still make events their schema accepts: a session link that is not a URI is left out, the text kept', () => {
    // prepare: what anyone holding the callback key can send
    const crafted = [
      { sessionLink: 'not a link at all', text: 'Open the link' },
      { sessionLink: 'widget.identomat.com/?session_token=abc', text: 'Open\u0000 the\u001f link \u2028' },
      { sessionLink: 'https://widget.identomat.com/?session_token=abc def', text: 'Open the link' },
      { sessionLink: 42, text: 'Open the link' },
      // within RFC 3986's characters but not its grammar: '%' without two hex digits, a second '#', brackets in a path
      { sessionLink: 'https://widget.identomat.com/%zz', text: 'Open the link' },
      { sessionLink: 'https://widget.identomat.com/a#b#c', text: 'Open the link' },
      { sessionLink: 'https://widget.identomat.com/[x]', text: 'Open the link' },
      { sessionLink: 'https://user@widget.identomat.com/', text: 'Open the link' },
    ];
    for (const [n, fields] of crafted.entries()) {
      const item: Item = {
        pk: 'identomat#S-1', sk: `EVENT#share|${n}`, provider: 'identomat', subjectId: 'S-1', source: 'callback', receivedAt: T(n),
        payload: { type: 'share-session-link-via-sms', sessionId: 'S-1', phoneNumber: '+995 512\t345-678', ...fields },
      };
      // act
      const events = eventsFromChange({ eventName: 'INSERT', newImage: item });
      // assess
      assert.equal(events.length, 1, JSON.stringify(fields));
      const json = delivered(events[0]);
      assert.deepEqual(schemaErrors(json), [], JSON.stringify(json.detail));
      assert.equal(json.detail.text, fields.text);
      assert.equal(json.detail.link, undefined, 'left out');
    }
  });

  test('genuine links, percent-encoded ones, ports, queries and fragments included, are kept as they came', () => {
    const links = [
      'https://widget.identomat.com/?session_token=ku2a5e4e-51a1-4c3c-9d5e-2f3b6b0a6b11',
      'https://widget.identomat.com/path/to%20it?x=1&y=%C3%A9#frag/ment?ok',
      'http://localhost:8080/s?a=b',
    ];
    for (const [n, sessionLink] of links.entries()) {
      const item: Item = {
        pk: 'identomat#S-1', sk: `EVENT#share|ok${n}`, provider: 'identomat', subjectId: 'S-1', source: 'callback', receivedAt: T(n),
        payload: { type: 'share-session-link-via-sms', sessionId: 'S-1', phoneNumber: '+995512345678', text: 'Open the link', sessionLink },
      };
      const json = delivered(eventsFromChange({ eventName: 'INSERT', newImage: item })[0]);
      assert.equal(json.detail.link, sessionLink);
      assert.deepEqual(schemaErrors(json), []);
    }
  });

  test('each schema\'s own example validates (the README shows them)', () => {
    for (const detailType of Object.values(DETAIL_TYPES)) {
      const examples = readSchema(detailType).examples as Json[];
      assert.ok(examples.length > 0, SCHEMA_FILES[detailType]);
      for (const example of examples) assert.deepEqual(schemaErrors(example), [], SCHEMA_FILES[detailType]);
    }
  });

  test('the README\'s example events validate', () => {
    // prepare: the JSON blocks of the README that are events
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const events = [...readme.matchAll(/```json\n(\{[\s\S]*?\})\n```/g)].map((match) => JSON.parse(match[1]) as Json).filter((json) => json['detail-type'] !== undefined);
    // assess
    assert.ok(events.length >= 1, 'the README shows an event');
    for (const event of events) assert.deepEqual(schemaErrors(event), [], JSON.stringify(event).slice(0, 120));
  });

  test("the examples' confirmed status changes have the members the publisher gives one (confirmedStatus: the status the endpoint answered)", () => {
    // prepare: the status changes with a confirmation the README and the schema show
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const shown = [
      ...[...readme.matchAll(/```json\n(\{[\s\S]*?\})\n```/g)].map((match) => JSON.parse(match[1]) as Json),
      ...(readSchema(DETAIL_TYPES.statusChanged).examples as Json[]),
    ].filter((json) => json['detail-type'] === DETAIL_TYPES.statusChanged && json.detail.confirmation !== undefined);
    assert.ok(shown.length >= 2, 'the README and the schema each show one');

    for (const example of shown) {
      const detail = example.detail as Json;
      // act: the same change as the gateway writes it (functions/core/state.ts): the state the example
      // says was before, the status it moved to, and the endpoint's verdict on it
      const subject = { provider: detail.provider as string, subjectId: detail.subjectId as string };
      const before: StateItem = {
        ...subject, status: detail.previous.status, outcome: detail.previous.outcome, terminal: false, statusAt: detail.statusAt, source: 'callback',
        createdAt: detail.statusAt, updatedAt: detail.statusAt, changedAt: detail.statusAt, eventCount: 1, recent: ['a'], seen: 1, version: detail.version - 1,
      };
      const moved: StateItem = { ...before, status: detail.status, outcome: detail.outcome, terminal: detail.terminal, source: detail.source };
      const after = applyObservations(moved, subject, [], { kind: detail.confirmation, answerStatus: detail.status }, detail.changedAt)!;
      const [event] = eventsFromChange({ eventName: 'MODIFY', oldImage: stateItem(before), newImage: stateItem(after) });

      // assess
      assert.deepEqual(Object.keys(detail).sort(), Object.keys(event.detail).sort(), `${detail.subjectId}: the example's members`);
      assert.equal(detail.confirmedStatus, (event.detail as Json).confirmedStatus);
    }
  });

  test('a wrong event is refused: a missing eventId, an outcome not documented, a bad previous, a bad time, another detail-type\'s detail', () => {
    // prepare
    const [status] = realEvents().filter((event) => event.detailType === DETAIL_TYPES.statusChanged).map(delivered);
    const [instruction] = realEvents().filter((event) => event.detailType === DETAIL_TYPES.instruction).map(delivered);
    const without = (json: Json, name: string) => {
      const { [name]: _dropped, ...rest } = json.detail as Json;
      return { ...json, detail: rest };
    };
    const wrong: [string, Json][] = [
      ['no eventId', without(status, 'eventId')],
      ['no previous', without(status, 'previous')],
      ['outcome "done"', { ...status, detail: { ...status.detail, outcome: 'done' } }],
      ['previous without outcome', { ...status, detail: { ...status.detail, previous: { status: 'X' } } }],
      ['changedAt not a time', { ...status, detail: { ...status.detail, changedAt: 'yesterday' } }],
      ['version 1.5', { ...status, detail: { ...status.detail, version: 1.5 } }],
      ['an unknown provider', { ...status, detail: { ...status.detail, provider: 'acme' } }],
      ['instruction without destination', without(instruction, 'destination')],
      ['instruction channel "fax"', { ...instruction, detail: { ...instruction.detail, channel: 'fax' } }],
      ['status detail under the instruction type', { ...status, 'detail-type': DETAIL_TYPES.instruction }],
      ['another source', { ...status, source: 'aws.events' }],
    ];

    for (const [what, json] of wrong) {
      // act, assess
      assert.notDeepEqual(schemaErrors(json), [], `${what} was accepted`);
    }
  });

  test('the schemas name what the registry has: every provider, every outcome, the instruction providers', () => {
    const status = readSchema(DETAIL_TYPES.statusChanged).$defs;
    assert.deepEqual([...status.detail.properties.provider.enum].sort(), providers.map((provider) => provider.id).sort());
    assert.deepEqual(status.outcome.enum, [...OUTCOMES]);
    const instruction = readSchema(DETAIL_TYPES.instruction).$defs.detail.properties;
    assert.deepEqual(instruction.provider.enum, providers.filter((provider) => provider.instruction).map((provider) => provider.id));
    for (const detailType of Object.values(DETAIL_TYPES) as DetailType[]) {
      const schema = readSchema(detailType);
      assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
      assert.equal(schema.properties['detail-type'].const, detailType);
      assert.equal(schema.properties.source.const, 'callback-gateway');
    }
  });
});
