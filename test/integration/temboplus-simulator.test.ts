import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { startStatusSimulator, type StatusSimulator } from '../../local/status-simulator.ts';
import { temboplusStatusSimulation } from '../providers/temboplus.ts';

type TemboPlusSimulator = StatusSimulator;
/** The TemboPlus kit's simulated status endpoint, on the generic engine. */
function startTemboPlusSimulator(options: { apiToken: string }): Promise<TemboPlusSimulator> {
  return startStatusSimulator(temboplusStatusSimulation(options.apiToken));
}
import { sampleJson, uniqueId } from '../support/integration-worker.ts';
import { suiteResource } from '../support/suite-resource.ts';

/** The simulated TemboPlus status endpoint answers as the published docs say the real one does. */

const API_TOKEN = 'simulator-test-api-token';
let simulator: TemboPlusSimulator;
suiteResource(
  async () => {
    simulator = await startTemboPlusSimulator({ apiToken: API_TOKEN });
  },
  async () => {
    await simulator?.stop();
  },
);

function transfer(partnerReference: string, status = 'COMPLETED'): Record<string, unknown> {
  return { ...sampleJson('temboplus', 'remittance-completed'), partnerReference, status };
}

async function status(
  partnerReference: string,
  headers: { authorization?: string | null; requestId?: string | null } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const sent: Record<string, string> = {};
  const authorization = headers.authorization === undefined ? `Bearer ${API_TOKEN}` : headers.authorization;
  const requestId = headers.requestId === undefined ? randomUUID() : headers.requestId;
  if (authorization !== null) sent.authorization = authorization;
  if (requestId !== null) sent['x-request-id'] = requestId;
  const response = await fetch(`${simulator.baseUrl}/remittance/${encodeURIComponent(partnerReference)}/status`, { headers: sent });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function control(method: string, path: string, body?: unknown, token = API_TOKEN) {
  const response = await fetch(`${simulator.baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('TemboPlus simulator: status endpoint', () => {
  test('binds 127.0.0.1 on a free port', () => {
    assert.equal(simulator.baseUrl, `http://127.0.0.1:${simulator.port}`);
    assert.ok(simulator.port > 0);
  });

  test('200 with the reported transfer, verbatim, for a known partnerReference', async () => {
    // prepare
    const ref = `${uniqueId('SIM-OK')}/with space`;
    const reported = transfer(ref);
    simulator.report(reported);
    // act
    const answer = await status(ref);
    // assess
    assert.deepEqual(answer, { status: 200, body: reported });
  });

  test('report overwrites the current status; forget makes it unknown again', async () => {
    // prepare
    const ref = uniqueId('SIM-MOVE');
    simulator.report(transfer(ref, 'SUBMITTED'));
    simulator.report(transfer(ref, 'COMPLETED'));
    // act
    const current = await status(ref);
    simulator.forget(ref);
    const forgotten = await status(ref);
    // assess
    assert.equal(current.body.status, 'COMPLETED');
    assert.equal(forgotten.status, 404);
  });

  test('404 with a JSON error for an unknown partnerReference', async () => {
    const answer = await status(uniqueId('SIM-UNKNOWN'));
    assert.equal(answer.status, 404);
    assert.equal(answer.body.error, 'not_found');
    assert.ok(Array.isArray(answer.body.details));
  });

  test('400 when x-request-id is missing', async () => {
    const answer = await status(uniqueId('SIM-400'), { requestId: null });
    assert.equal(answer.status, 400);
    assert.deepEqual(answer.body, { error: 'validation_error', details: ['x-request-id header is required'] });
  });

  test('403 for a wrong, missing or non-Bearer token', async () => {
    // prepare
    const ref = uniqueId('SIM-403');
    simulator.report(transfer(ref));
    // act
    const answers = await Promise.all([
      status(ref, { authorization: 'Bearer wrong-token' }),
      status(ref, { authorization: null }),
      status(ref, { authorization: API_TOKEN }),
    ]);
    // assess
    assert.deepEqual(
      answers.map((answer) => [answer.status, answer.body.error]),
      [
        [403, 'forbidden'],
        [403, 'forbidden'],
        [403, 'forbidden'],
      ],
    );
  });

  test('429 when an x-request-id is reused', async () => {
    // prepare
    const ref = uniqueId('SIM-429');
    simulator.report(transfer(ref));
    const requestId = randomUUID();
    // act
    const first = await status(ref, { requestId });
    const again = await status(ref, { requestId });
    // assess
    assert.equal(first.status, 200);
    assert.equal(again.status, 429);
    assert.equal(again.body.error, 'duplicate_request_id');
  });

  test('every status request is recorded with its id, token check and answer', async () => {
    // prepare
    const ref = uniqueId('SIM-LOG');
    const requestId = randomUUID();
    // act
    await status(ref, { requestId });
    await status(ref, { authorization: 'Bearer nope' });
    // assess
    const seen = simulator.requests.filter((request) => request.subjectId === ref);
    assert.deepEqual(seen[0], { subjectId: ref, requestId, authorized: true, status: 404 });
    assert.deepEqual(
      seen.map(({ authorized, status: answered }) => ({ authorized, answered })),
      [
        { authorized: true, answered: 404 },
        { authorized: false, answered: 403 },
      ],
    );
  });

  test('other methods and paths are refused with JSON errors', async () => {
    const post = await fetch(`${simulator.baseUrl}/remittance/X/status`, { method: 'POST', headers: { authorization: `Bearer ${API_TOKEN}` } });
    const elsewhere = await fetch(`${simulator.baseUrl}/remittance/X`, { headers: { authorization: `Bearer ${API_TOKEN}` } });
    assert.deepEqual([post.status, ((await post.json()) as { error: string }).error], [405, 'method_not_allowed']);
    assert.deepEqual([elsewhere.status, ((await elsewhere.json()) as { error: string }).error], [404, 'not_found']);
  });
});

describe('TemboPlus simulator: faults', () => {
  test('a status fault with times answers that status n times, then recovers', async () => {
    // prepare
    const ref = uniqueId('SIM-500');
    simulator.report(transfer(ref));
    simulator.setFault({ status: 500, times: 2 });
    // act
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await status(ref));
    // assess
    assert.deepEqual(
      answers.map((answer) => answer.status),
      [500, 500, 200],
    );
    assert.equal(answers[0].body.error, 'simulated_fault');
  });

  test('a fault without times lasts until cleared', async () => {
    // prepare
    const ref = uniqueId('SIM-429F');
    simulator.report(transfer(ref));
    simulator.setFault({ status: 429 });
    // act
    const during = [await status(ref), await status(ref), await status(ref)].map((answer) => answer.status);
    simulator.setFault(undefined);
    const afterwards = (await status(ref)).status;
    // assess
    assert.deepEqual(during, [429, 429, 429]);
    assert.equal(afterwards, 200);
  });

  test('delayMs answers normally, late', async () => {
    // prepare
    const ref = uniqueId('SIM-SLOW');
    simulator.report(transfer(ref));
    simulator.setFault({ delayMs: 300, times: 1 });
    const started = Date.now();
    // act
    const answer = await status(ref);
    // assess
    assert.equal(answer.status, 200);
    assert.ok(Date.now() - started >= 290, `answered after ${Date.now() - started} ms`);
  });

  test('hang never answers, and stop() still closes at once', async () => {
    // prepare
    const own = await startTemboPlusSimulator({ apiToken: API_TOKEN });
    own.report(transfer('SIM-HANG'));
    own.setFault({ hang: true });
    // act
    const hung = fetch(`${own.baseUrl}/remittance/SIM-HANG/status`, {
      headers: { authorization: `Bearer ${API_TOKEN}`, 'x-request-id': randomUUID() },
    }).then(
      () => 'answered',
      () => 'dropped',
    );
    const timedOut = await Promise.race([hung, new Promise((resolve) => setTimeout(() => resolve('still waiting'), 300))]);
    const stopping = Date.now();
    await own.stop();
    const stopMs = Date.now() - stopping;
    // assess
    assert.equal(timedOut, 'still waiting');
    assert.equal(await hung, 'dropped');
    assert.ok(stopMs < 1000, `stop took ${stopMs} ms`);
    assert.deepEqual(own.requests.map((request) => request.status), [undefined]);
  });
});

describe('TemboPlus simulator: control routes for other processes', () => {
  test('POST /__simulator/answers reports a transfer; bad token and bad bodies are refused', async () => {
    // prepare
    const ref = uniqueId('SIM-POST');
    // act
    const refused = await control('POST', '/__simulator/answers', transfer(ref), 'wrong-token');
    const invalid = await control('POST', '/__simulator/answers', { status: 'COMPLETED' });
    const notJson = await control('POST', '/__simulator/answers', '{not json');
    const beforeReport = (await status(ref)).status;
    const reported = await control('POST', '/__simulator/answers', transfer(ref, 'FAILED'));
    const answer = await status(ref);
    // assess
    assert.equal(refused.status, 403);
    assert.equal(invalid.status, 400);
    assert.equal(invalid.body.error, 'invalid_answer');
    assert.ok((invalid.body.details as string[]).some((detail) => detail.includes('partnerReference')));
    assert.deepEqual([notJson.status, notJson.body.error], [400, 'invalid_json']);
    assert.equal(beforeReport, 404);
    assert.deepEqual(reported, { status: 200, body: { reported: ref } });
    assert.deepEqual(answer, { status: 200, body: transfer(ref, 'FAILED') });
  });

  test('DELETE /__simulator/answers/{ref} forgets; PUT /__simulator/fault sets and clears a fault', async () => {
    // prepare
    const ref = uniqueId('SIM-CTL');
    simulator.report(transfer(ref));
    // act
    const forgotten = await control('DELETE', `/__simulator/answers/${encodeURIComponent(ref)}`);
    const afterForget = (await status(ref)).status;
    const badFault = await control('PUT', '/__simulator/fault', { status: 'five hundred' });
    const setFault = await control('PUT', '/__simulator/fault', { status: 503, times: 1 });
    const faulted = (await status(ref)).status;
    await control('PUT', '/__simulator/fault', { status: 500 });
    const cleared = await control('PUT', '/__simulator/fault', null);
    const afterClear = (await status(ref)).status;
    // assess
    assert.deepEqual(forgotten, { status: 200, body: { forgotten: ref, existed: true } });
    assert.equal(afterForget, 404);
    assert.equal(badFault.status, 400);
    assert.equal(setFault.status, 200);
    assert.equal(faulted, 503);
    assert.deepEqual(cleared, { status: 200, body: { fault: null } });
    assert.equal(afterClear, 404);
  });

  test('report() refuses a body that is not a transfer', () => {
    assert.throws(() => simulator.report({ status: 'COMPLETED' }), /partnerReference/);
  });
});
