import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { QueueMessageSchema } from '../../functions/core/queue-message.ts';
import { providers } from '../../functions/providers/index.ts';
import { fuzzRequests } from '../support/fuzz-arbitraries.ts';
import {
  LARGE_MESSAGE_BYTES,
  Tally,
  describeRequest,
  expectedAnswer,
  fuzzConfig,
  leaksSecret,
  messageTexts,
  outcomeOf,
  replayHint,
  runWorker,
  secretStrings,
  startFuzzPipeline,
  toEvent,
  type FuzzPipeline,
} from '../support/fuzz-harness.ts';
import { suiteResource } from '../support/suite-resource.ts';

/**
 * Hostile input (issue 4): fuzzed requests per provider through the real ingest handler, as API
 * Gateway delivers them, then what was queued through the real worker into DynamoDB Local.
 *
 * `npm test` runs a fixed-seed slice (FUZZ_RUNS defaults to 300 per provider); `npm run test:fuzz`
 * runs 10,000 per provider. Replay a failure with the FUZZ_SEED / FUZZ_RUNS (and FUZZ_PATH that
 * fast-check reports) printed with it.
 */

const config = fuzzConfig();
const tally = new Tally();
/** requestId of every request that deserved a 200 (authentic), and of every forged one. */
const authenticIds = new Set<string>();
const forgedIds = new Set<string>();
/** requestIds the worker reported as newly stored (event or quarantine item). */
const storedIds = new Set<string>();
const started = performance.now();
let scanned = '';

let pipeline: FuzzPipeline;
suiteResource(
  async () => {
    pipeline = await startFuzzPipeline();
  },
  async () => {
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const workerTotals = new Map<string, number>();
    for (const row of tally.worker.values()) for (const [outcome, count] of row) workerTotals.set(outcome, (workerTotals.get(outcome) ?? 0) + count);
    const lines = [
      `hostile input: ${config.runs} requests per provider, ${seconds} s${scanned} (replay: ${replayHint(config)})`,
      ...tally.format('ingest answers, per provider and outcome:', ['accepted', 'quarantined', '401', '404', '413', 'other 4xx', '5xx'], tally.ingest as Map<string, Map<string, number>>),
      ...(config.runs >= 1_000
        ? tally.format('worker on DynamoDB Local, per provider:', ['stored', 'duplicate', 'quarantine stored', 'quarantine dup', 'status unavailable', 'poison', 'not processed'], tally.worker as Map<string, Map<string, number>>)
        : [`worker on DynamoDB Local: ${[...workerTotals].map(([outcome, count]) => `${outcome} ${count}`).join(', ') || 'nothing processed'}`]),
      'distinct requests sent (family/variant), per provider:',
      ...tally.variantLines(),
    ];
    console.log(lines.join('\n'));
    await pipeline?.stop();
  },
);

describe(`hostile input (${replayHint(config)})`, () => {
  for (const provider of providers.filter((candidate) => !config.providers || config.providers.includes(candidate.id))) {
    test(`${provider.id}: never a crash or a 5xx, refusals are 4xx JSON, forged never queued, authentic always taken`, async () => {
      // prepare
      const { handler, queue, log } = pipeline.ingest(provider);
      const secrets = secretStrings(pipeline.secrets, provider.id);
      const requests = fuzzRequests({ provider, secrets: pipeline.secrets });
      let workerBudget = config.workerMessages;
      let largeBudget = config.workerLargeMessages;
      // Every n-th queued message, so the sample spans every part of the run (about 70 % are queued).
      const stride = Math.max(1, Math.ceil((config.runs * 0.7) / config.workerMessages));
      let queuedCount = 0;
      const providerStarted = performance.now();

      // act + assess, per request
      await fc.assert(
        fc.asyncProperty(requests, async (request) => {
          queue.bodies.length = 0;
          log.lines.length = 0;
          const event = toEvent(provider, request);
          const expected = expectedAnswer(provider, request, event);
          const what = describeRequest(request);

          const result = await handler(event);

          const status = result.statusCode ?? 0;
          const text = result.body ?? '';
          assert.ok(status < 500, `${status} ${text} for ${what}`);
          assert.equal(result.headers?.['content-type'], 'application/json', what);
          const answer = JSON.parse(text) as Record<string, unknown>;
          assert.equal(status, expected.status, `expected ${expected.status} (${'why' in expected ? expected.why : expected.intent}), got ${status} ${text} for ${what}`);
          assert.equal(leaksSecret(text, secrets), undefined, `answer echoes a secret for ${what}`);
          for (const line of log.lines) assert.equal(leaksSecret(line, secrets), undefined, `log line echoes a secret for ${what}: ${line.slice(0, 200)}`);
          tally.add(provider.id, outcomeOf(result));
          tally.addVariant(provider.id, `${request.family}/${request.variant}`);

          if (status !== 200) {
            assert.ok(status >= 400 && status < 500, `${status} for ${what}`);
            // Our refusals name an error; a wrong method gets API Gateway's own {"message":"Not Found"}.
            if (status !== 404) assert.equal(typeof answer.error, 'string', `error field for ${what}`);
            assert.equal(typeof answer.message, 'string', `message field for ${what}`);
            assert.equal(queue.bodies.length, 0, `refused with ${status} but queued, for ${what}`);
            if (status === 401) forgedIds.add(event.requestContext.requestId);
            return;
          }

          // 200: exactly one message, ours, and quarantined exactly when the content is invalid.
          assert.equal(queue.bodies.length, 1, `200 without a queued message for ${what}`);
          const message = QueueMessageSchema.parse(JSON.parse(queue.bodies[0]));
          assert.equal(message.requestId, event.requestContext.requestId);
          assert.equal(message.provider, provider.id);
          for (const messageText of messageTexts(message, queue.bodies[0])) assert.equal(leaksSecret(messageText, secrets), undefined, `queued message carries a secret for ${what}`);
          authenticIds.add(message.requestId);
          if (answer.quarantined === true) {
            assert.notEqual(request.intent, 'valid', `valid content quarantined (${message.quarantine?.reason}: ${message.quarantine?.issues.join('; ')}) for ${what}`);
            assert.ok(message.quarantine, `quarantined answer without quarantine in the message for ${what}`);
            assert.equal(message.payload, undefined);
          } else {
            assert.deepEqual(answer, { received: true });
            assert.notEqual(request.intent, 'invalid', `invalid content accepted for ${what}`);
            assert.equal(message.quarantine, undefined);
            // The parsed copy may be left out (too large, or too deep to serialise): the worker re-parses the raw body.
            assert.ok(message.payload !== undefined || message.raw.body !== undefined || message.raw.bodyBase64 !== undefined || message.raw.query !== '', `accepted without payload or raw body for ${what}`);
          }

          const large = Buffer.byteLength(queue.bodies[0]) > LARGE_MESSAGE_BYTES;
          queuedCount += 1;
          if (queuedCount % stride !== 0 || workerBudget <= 0 || (large && largeBudget <= 0)) {
            tally.addWorker(provider.id, 'not processed');
            return;
          }
          workerBudget -= 1;
          if (large) largeBudget -= 1;
          const verdict = await runWorker(pipeline, queue.bodies[0], log);
          if (verdict.kind === 'poison') assert.fail(`worker cannot store an answered-200 callback (${verdict.error.message}) for ${what}`);
          if (verdict.kind === 'status unavailable') {
            tally.addWorker(provider.id, 'status unavailable');
            return;
          }
          const kind = verdict.result.kind;
          if (message.quarantine) assert.ok(kind === 'quarantined' || kind === 'quarantine_duplicate', `worker ${kind} a quarantined message for ${what}`);
          else assert.ok(kind === 'stored' || kind === 'duplicate', `worker ${kind} an accepted message for ${what}`);
          if (kind === 'stored' || kind === 'quarantined') storedIds.add(message.requestId);
          tally.addWorker(provider.id, kind === 'stored' ? 'stored' : kind === 'duplicate' ? 'duplicate' : kind === 'quarantined' ? 'quarantine stored' : 'quarantine dup');
        }),
        { seed: config.seed, numRuns: config.runs, ...(config.path ? { path: config.path } : {}) },
      );
      tally.durations.set(provider.id, performance.now() - providerStarted);

      // assess the run as a whole: every family was exercised and each kind of answer happened
      assert.ok(tally.count(provider.id, 'accepted') > 0, 'some requests accepted');
      assert.ok(tally.count(provider.id, '401') > 0, 'some requests refused as forged');
      assert.equal(tally.count(provider.id, '5xx'), 0);
    });
  }

  test('nothing forged is in the table, and everything the worker stored is there', async () => {
    // act
    const scanStarted = performance.now();
    const stored = await pipeline.scanRequestIds();
    scanned = `, table scan of ${stored.size} items ${((performance.now() - scanStarted) / 1000).toFixed(1)} s`;

    // assess
    assert.ok(stored.size > 0, 'the worker stored something');
    for (const [requestId, providerId] of stored) {
      assert.ok(!forgedIds.has(requestId), `a forged request (${providerId} ${requestId}) is in the table`);
      assert.ok(authenticIds.has(requestId), `an item (${providerId} ${requestId}) belongs to no authentic request`);
    }
    for (const requestId of storedIds) assert.ok(stored.has(requestId), `stored ${requestId} is missing from the table`);
  });
});
