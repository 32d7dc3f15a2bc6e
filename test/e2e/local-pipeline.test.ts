import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { providers } from '../../functions/providers/index.ts';
import { OUTCOMES, type Outcome } from '../../functions/providers/provider.ts';
import { keys } from '../../functions/core/pipeline-definition.ts';
import { LOCAL_AWS, waitFor } from '../../local/engines.ts';
import { authenticRequest, listSamples } from '../../local/samples.ts';
import { controlFetch, javaProcessesFor, startLocalPipeline, type StartedPipeline } from '../support/e2e-pipeline.ts';
import { kitOf } from '../providers/index.ts';
import { toRequest } from '../support/unit-ingest.ts';
import { leaks, standingNumber } from '../support/log-leaks.ts';

/**
 * The local pipeline as a user runs it: `npm start` as a child process, callbacks over HTTP,
 * results read back with `npm run inspect -- --json`.
 */

let pipeline: StartedPipeline;
let dynamo: DynamoDBClient;

async function post(path: string, init: { method: string; headers: Record<string, string>; body?: Buffer }) {
  const response = await fetch(`${pipeline.info.baseUrl}${path}`, init);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function sendAuthentic(providerId: string, content: { body?: Buffer; query?: string }) {
  const provider = providers.find((p) => p.id === providerId)!;
  const secret = provider.secretSchema.parse(pipeline.secrets[providerId as keyof typeof pipeline.secrets]);
  const request = authenticRequest(provider, secret, content);
  const answer = await post(request.path, { method: request.method, headers: request.headers, ...(request.body ? { body: request.body } : {}) });
  return { ...answer, request: toRequest(provider, request), secret };
}

/** Tell a provider's simulated status endpoint about a subject. */
async function reportAnswer(providerId: string, answer: unknown) {
  const simulation = kitOf(providerId).statusSimulation!(pipeline.secrets[providerId]);
  const response = await controlFetch(`${pipeline.info.simulators[providerId]}/__simulator/answers`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${simulation.controlToken}` },
    body: JSON.stringify(answer),
  });
  assert.ok(response.ok, `the simulated ${providerId} status endpoint refused the answer: ${response.status}`);
}

/** Tell the simulated TemboPlus status endpoint about a transfer. */
const reportTransfer = (body: object) => reportAnswer('temboplus', body);

/** The state item of a subject, or of one of its parts (an eSMS recipient). */
async function storedState(provider: string, subjectId: string, part?: string) {
  const { pk, sk } = keys.state(provider, subjectId, part);
  const { Item } = await dynamo.send(
    new GetItemCommand({
      TableName: pipeline.info.tableName,
      Key: { pk: { S: pk }, sk: { S: sk } },
      ConsistentRead: true,
    }),
  );
  return Item;
}

/** Wait until the worker has written the subject's (or part's) state with the expected event count. */
async function waitForState(provider: string, subjectId: string, eventCount = 1, part?: string) {
  await waitFor(`${provider} ${subjectId}${part === undefined ? '' : ` part`} stored`, async () => Number((await storedState(provider, subjectId, part))?.eventCount?.N ?? 0) >= eventCount, 20_000);
}

interface InspectView {
  readonly state: Record<string, unknown> | null;
  readonly parts: Record<string, unknown>[];
  readonly events: Record<string, unknown>[];
}

/** The subject as stored (--show-sensitive: an eSMS recipient's number in full, to be found by it). */
function inspect(provider: string, subjectId: string): InspectView {
  const result = pipeline.run('inspect', [provider, subjectId, '--json', '--show-sensitive']);
  return JSON.parse(result.stdout) as InspectView;
}

/** The subject's own state in an inspect view, or the state of one of its parts. */
function stateIn(view: InspectView, part?: string): Record<string, unknown> | null {
  return part === undefined ? view.state : (view.parts.find((candidate) => candidate.part === part) ?? null);
}

function teleSignBody(referenceId: string, code: number, updatedOn: string): Buffer {
  return Buffer.from(JSON.stringify({ reference_id: referenceId, status: { code, description: 'x', updated_on: updatedOn }, errors: [], sub_resource: 'sms' }));
}

describe('local pipeline (npm start)', { timeout: 240_000 }, () => {
  before(async () => {
    pipeline = await startLocalPipeline();
    dynamo = new DynamoDBClient({ ...LOCAL_AWS, endpoint: pipeline.info.dynamodbEndpoint });
  });

  after(async () => {
    dynamo?.destroy();
    const dataDir = pipeline?.dataDir;
    await pipeline?.stop();
    if (dataDir) assert.deepEqual(javaProcessesFor(dataDir), [], 'DynamoDB Local left running');
  });

  test('the banner names every provider URL, the engines, the table and the secrets file', () => {
    const banner = pipeline.output.join('\n');
    for (const provider of providers) assert.ok(banner.includes(pipeline.info.urls[provider.id].split('/callbacks/')[0]), `banner lacks the ${provider.id} URL`);
    assert.ok(banner.includes(pipeline.info.dynamodbEndpoint));
    assert.ok(banner.includes(pipeline.info.sqsEndpoint));
    assert.ok(banner.includes(pipeline.info.tableName));
    assert.ok(!banner.includes('relayMaxPerNumberPerHour'), 'the relay off: no relay settings shown');
    assert.match(banner, /SIMULATED/);
    assert.ok(banner.includes('secrets.json'));
  });

  test("the banner shortens the path tokens of the user's secrets file, as send does, and says where the full URLs are; runtime.json and the data folder are the owner's alone", () => {
    // prepare: the URLs with a token from the secrets file in their path (eSMS, TemboPlus, REL-ID)
    const banner = pipeline.output.join('\n');
    const tokened = providers.filter((provider) => provider.route.tokenParameter !== undefined);
    assert.ok(tokened.length > 0);
    // act
    const mode = statSync(join(pipeline.dataDir, 'data', 'runtime.json')).mode & 0o777;
    const folderMode = statSync(join(pipeline.dataDir, 'data')).mode & 0o777;
    // assess
    for (const provider of tokened) {
      const url = pipeline.info.urls[provider.id];
      const token = decodeURIComponent(url.slice(url.lastIndexOf('/') + 1));
      assert.ok(token.length > 8, `${provider.id}: ${url}`);
      assert.ok(!banner.includes(token), `the banner prints ${provider.id}'s token:\n${banner}`);
      assert.ok(banner.includes(`${url.slice(0, url.lastIndexOf('/') + 1)}${token.slice(0, 4)}…`), `${provider.id}'s URL, shortened:\n${banner}`);
    }
    assert.match(banner, /tokens of your secrets file shortened; the full URLs: jq \.urls \S+runtime\.json/);
    assert.equal(mode.toString(8), '600');
    // The engines' files inside hold every callback whole, codes included, with the umask's modes.
    assert.equal(folderMode.toString(8), '700', 'the data folder is the owner\'s alone');
  });

  test("the banner's values start in one column, after its longest label", () => {
    // prepare
    const lines = pipeline.output;
    const labels = ['DynamoDB Local', 'SQS', ...providers.filter((provider) => provider.lookup).map((provider) => `${provider.displayName} status`), 'Secrets file', 'Re-checks', 'Events', 'SMS relay', 'Data'];
    // act: where each labelled line's value starts, and where the DLQ line (a value of SQS's) does
    const columns = labels.map((label) => {
      const line = lines.find((each) => each.startsWith(`  ${label} `));
      assert.ok(line, `no "${label}" line in the banner:\n${lines.join('\n')}`);
      return line.length - line.slice(2 + label.length).trimStart().length;
    });
    const dlq = lines.find((line) => line.trimStart().startsWith('DLQ '))!;
    // assess
    assert.deepEqual(new Set(columns), new Set([2 + Math.max(...labels.map((label) => label.length)) + 1]), lines.join('\n'));
    assert.equal(dlq.length - dlq.trimStart().length, columns[0], dlq);
  });

  test('every provider sample is stored and readable through inspect --json', async () => {
    const expected = new Map<string, { provider: string; subjectId: string; part?: string; events: Set<string> }>();
    for (const provider of providers) {
      for (const sample of listSamples(provider.id)) {
        // Providers the worker asks: their simulated status endpoint knows the subject as the sample says.
        const kit = kitOf(provider);
        if (kit.statusAnswer) await reportAnswer(provider.id, kit.statusAnswer(sample));
        const answer = await sendAuthentic(provider.id, sample);
        assert.equal(answer.status, 200, `${provider.id}/${sample.name}: ${JSON.stringify(answer.body)}`);
        assert.deepEqual(answer.body, { received: true }, `${provider.id}/${sample.name}`);
        const parsed = provider.parse(answer.request);
        assert.ok(parsed.ok);
        const facts = provider.describe(parsed.payload, answer.secret);
        const key = JSON.stringify([provider.id, facts.subjectId, facts.part]);
        const entry = expected.get(key) ?? { provider: provider.id, subjectId: facts.subjectId, part: facts.part, events: new Set<string>() };
        entry.events.add(facts.eventKey);
        expected.set(key, entry);
      }
    }
    for (const { provider, subjectId, part, events } of expected.values()) await waitForState(provider, subjectId, events.size, part);

    // One inspect per provider (each is a child process): the first subject of each.
    for (const provider of providers) {
      const first = [...expected.values()].find((entry) => entry.provider === provider.id)!;
      const view = inspect(provider.id, first.subjectId);
      const state = stateIn(view, first.part);
      assert.ok(state, `${provider.id} ${first.subjectId} not readable`);
      assert.equal(state.subjectId, first.subjectId);
      assert.equal(state.eventCount, first.events.size);
      // The callbacks; a provider's answers, when they are not the callback itself, are events of their own.
      assert.equal(view.events.filter((event) => event.part === first.part && event.source !== 'status-endpoint').length, first.events.size);
      assert.ok(OUTCOMES.includes(state.outcome as Outcome), `outcome ${String(state.outcome)}`);
    }
  });

  test('a callback re-sent three times is stored once', async () => {
    const sent = pipeline.run('send', ['esms', 'viber', '--repeat', '3']);
    assert.equal(sent.status, 0, sent.stderr);
    assert.equal((sent.stdout.match(/← 200/g) ?? []).length, 3, sent.stdout);
    assert.match(sent.stderr, /3 deliveries of one callback: (stored once|none stored anew \(it was stored before, or is not yet\)); the others were duplicates/, 'send says what the repeats came to (an earlier test of this file sent every sample once)');
    // Found by the SMSID the send API returned; the recipient is a part of the message.
    const subjectId = '849fe08c19294b02857cf91687021a50250';
    await waitForState('esms', subjectId, 1, '0901888484');
    await new Promise((resolve) => setTimeout(resolve, 1500)); // let any duplicate reach the worker
    const view = inspect('esms', subjectId);
    const recipient = stateIn(view, '0901888484');
    assert.equal(recipient?.eventCount, 1);
    assert.equal(view.events.filter((event) => event.source !== 'status-endpoint').length, 1);
    assert.equal(recipient?.status, '5');
  });

  test('a 203 arriving after a 200 leaves the 200', async () => {
    const ref = 'E2E0000000000000000000000000203A';
    assert.equal((await sendAuthentic('telesign', { body: teleSignBody(ref, 200, '2026-01-01T10:00:05Z') })).status, 200);
    await waitForState('telesign', ref);
    assert.equal((await sendAuthentic('telesign', { body: teleSignBody(ref, 203, '2026-01-01T10:00:01Z') })).status, 200);
    await waitForState('telesign', ref, 2);
    const view = inspect('telesign', ref);
    assert.equal(view.state?.status, '200');
    assert.equal(view.state?.outcome, 'succeeded');
    assert.equal(view.state?.terminal, true);
    assert.equal(view.events.length, 2);
  });

  test('TemboPlus: confirmed, mismatch and not_found through the simulated status endpoint', async () => {
    const base = JSON.parse(listSamples('temboplus').find((s) => s.name === 'remittance-completed')!.body!.toString());
    const confirmed = { ...base, partnerReference: 'E2E-CONFIRMED-1' };
    const mismatch = { ...base, partnerReference: 'E2E-MISMATCH-1' };
    const unknown = { ...base, partnerReference: 'E2E-UNKNOWN-1' };
    await reportTransfer(confirmed);
    await reportTransfer({ ...mismatch, status: 'FAILED', statusCode: 'PAYMENT_FAILED' });
    for (const body of [confirmed, mismatch, unknown]) {
      assert.equal((await sendAuthentic('temboplus', { body: Buffer.from(JSON.stringify(body)) })).status, 200);
    }
    for (const body of [confirmed, mismatch, unknown]) await waitForState('temboplus', body.partnerReference);

    const c = inspect('temboplus', 'E2E-CONFIRMED-1').state!;
    assert.equal(c.status, 'COMPLETED');
    assert.equal(c.confirmation, 'confirmed');
    const m = inspect('temboplus', 'E2E-MISMATCH-1').state!;
    assert.equal(m.status, 'FAILED', 'TemboPlus answer wins over the callback claim');
    assert.equal(m.confirmation, 'mismatch');
    assert.equal(m.outcome, 'failed');
    const n = inspect('temboplus', 'E2E-UNKNOWN-1').state!;
    assert.equal(n.confirmation, 'not_found');
    assert.equal(n.status, undefined, 'a claim TemboPlus does not know is never applied');
    assert.equal(n.outcome, 'pending');
  });

  test('a wrong token is refused with 401 and nothing is stored', async () => {
    const body = Buffer.from(JSON.stringify({ notification_uuid: 'e2e-forged-0001', status: 'UPDATED', action_response: 'Approved' }));
    const answer = await post('/callbacks/relid/not-the-token', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(answer.status, 401);
    assert.equal(answer.body.error, 'unauthorized');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const view = inspect('relid', 'e2e-forged-0001');
    assert.equal(view.state, null);
    assert.deepEqual(view.events, []);
  });

  test('an authentic but schema-invalid body is quarantined, not lost', async () => {
    const answer = await sendAuthentic('temboplus', { body: Buffer.from(JSON.stringify({ statusCode: 'PAYMENT_ACCEPTED', note: 'e2e-quarantine' })) });
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { received: true, quarantined: true });
    let items: Record<string, unknown>[] = [];
    await waitFor('quarantined item', async () => {
      const result = pipeline.run('inspect', ['--recent', '20', '--provider', 'temboplus', '--outcome', 'quarantined', '--json']);
      items = (JSON.parse(result.stdout) as { items: Record<string, unknown>[] }).items;
      return items.some((item) => String(item.message).includes('e2e-quarantine'));
    }, 20_000, 500);
    const item = items.find((i) => String(i.message).includes('e2e-quarantine'))!;
    assert.match(String(item.reason), /schema/);
    assert.ok((item.issues as string[]).some((issue) => issue.startsWith('partnerReference')));
  });

  // Runs last: by now the pipeline has logged every sample, retries, refusals, TemboPlus verdicts
  // and a quarantine. Lambda's log lines are the same lines (same logger), so this is the check for both.
  test('no secret, OTP or full phone number appears in any log line of the run', () => {
    const lines = pipeline.output.filter((line) => line.startsWith('{'));
    assert.ok(lines.length > 50, `expected the run's log lines, got ${lines.length}`);
    const secretValues = Object.entries(pipeline.secrets).flatMap(([id, secret]) => kitOf(id).credentials(secret));
    const forbidden = [
      ...secretValues,
      'Your code is', '6867', // Identomat OTP text
      'sessionLink', 'session_token', // Identomat link instructions
      '+995512345678', '995512345678', '0901888484', '11234567890', '1234567890', // phone numbers in the samples
    ];
    for (const line of lines) {
      for (const value of forbidden) assert.ok(!leaks(line, value), `log line leaks "${value}": ${line}`);
      // Any 7+ digit run standing alone (not inside a hex id, a UUID or a request id) is a phone number in the clear.
      assert.equal(standingNumber(line), undefined, `possible phone number in: ${line}`);
    }
  });
});
