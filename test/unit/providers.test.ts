import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { providers } from '../../functions/providers/index.ts';
import type { AnyProvider, CallbackRequest, ProviderId } from '../../functions/providers/provider.ts';
import { OUTCOMES } from '../../functions/providers/provider.ts';
import { FIXTURES_DIR, listSamples } from '../../local/samples.ts';
import {
  altered,
  authentic,
  contentOf,
  runIngest,
  UNIT_SECRETS,
  withoutField,
  type IngestRun,
} from '../support/unit-ingest.ts';

/**
 * What every provider in the registry must do, run over the registry itself: a sixth provider
 * gets all of these by adding its entry to PROVIDER_CASES (the first test fails until it does).
 */

type Content = { body?: Buffer; query?: string };

interface ProviderCase {
  /**
   * How a callback proves it is genuine, which decides what "tampered" and "missing auth" mean:
   * a signature over the raw body, a key carried in the body, or a token in the URL path.
   */
  readonly auth: 'signed-body' | 'body-key' | 'path-token';
  /** Secret fields that are credentials (changing one must make a request fail). */
  readonly credentialFields: readonly string[];
  /** Fields the schema requires: without one, an authentic callback is quarantined. */
  readonly requiredFields: readonly string[];
  /** The sample the mutation tests start from. */
  readonly sample: string;
  /** The same callback reporting a different status. */
  readonly otherStatus: (content: Content) => Content;
}

function editJson(content: Content, edit: (json: Record<string, any>) => void): Content {
  const json = JSON.parse(content.body!.toString('utf8')) as Record<string, any>;
  edit(json);
  return { body: Buffer.from(JSON.stringify(json)) };
}

function editQuery(content: Content, edit: (params: URLSearchParams) => void): Content {
  const params = new URLSearchParams(content.query);
  edit(params);
  return { query: params.toString() };
}

const PROVIDER_CASES: Record<ProviderId, ProviderCase> = {
  telesign: {
    auth: 'signed-body',
    credentialFields: ['customerId', 'apiKey'],
    requiredFields: ['reference_id', 'status'],
    sample: 'sms-dlr-success',
    otherStatus: (content) => editJson(content, (json) => void (json.status.code = 203)),
  },
  esms: {
    auth: 'path-token',
    credentialFields: ['token'],
    requiredFields: ['SMSID', 'SendStatus'],
    sample: 'customer-care',
    otherStatus: (content) => editQuery(content, (params) => params.set('SendStatus', '7')),
  },
  temboplus: {
    auth: 'path-token',
    credentialFields: ['token'],
    requiredFields: ['partnerReference', 'status'],
    sample: 'remittance-completed',
    otherStatus: (content) => editJson(content, (json) => void (json.status = 'REVERSED')),
  },
  relid: {
    auth: 'path-token',
    credentialFields: ['token'],
    requiredFields: ['notification_uuid', 'status'],
    sample: 'callback-two-way',
    otherStatus: (content) => editJson(content, (json) => void (json.status = 'EXPIRED')),
  },
  identomat: {
    auth: 'body-key',
    credentialFields: ['callbackApiKey'],
    requiredFields: ['type', 'sessionId'],
    sample: 'session-change-approved',
    otherStatus: (content) => editJson(content, (json) => void (json.result = 'REJECTED')),
  },
};

function sampleContent(provider: AnyProvider, name: string): Content {
  const sample = listSamples(provider.id).find((candidate) => candidate.name === name);
  assert.ok(sample, `test/fixtures/${provider.id}/${name} is missing`);
  return contentOf(sample);
}

/** The request with its credential removed, as a sender without the secret would send it. */
function withoutAuth(providerCase: ProviderCase, request: CallbackRequest): CallbackRequest {
  switch (providerCase.auth) {
    case 'signed-body': {
      const { authorization: _removed, ...headers } = request.headers;
      return { ...request, headers };
    }
    case 'path-token': {
      const { pathToken: _removed, ...rest } = request;
      return rest;
    }
    case 'body-key': {
      const json = JSON.parse(request.body.toString('utf8')) as Record<string, unknown>;
      delete json[providerCase.credentialFields[0]];
      return { ...request, body: Buffer.from(JSON.stringify(json)) };
    }
  }
}

/** The request changed after it left the sender: one body byte, the key in the body, or the path token. */
function tampered(providerCase: ProviderCase, request: CallbackRequest): CallbackRequest {
  switch (providerCase.auth) {
    case 'signed-body': {
      const body = Buffer.from(request.body);
      const at = body.indexOf('reference_id') + 2;
      body[at] ^= 0x01;
      return { ...request, body };
    }
    case 'path-token':
      return { ...request, pathToken: altered(request.pathToken!) };
    case 'body-key': {
      const field = providerCase.credentialFields[0];
      const json = JSON.parse(request.body.toString('utf8')) as Record<string, string>;
      json[field] = altered(json[field]);
      return { ...request, body: Buffer.from(JSON.stringify(json)) };
    }
  }
}

function assertRefused(run: IngestRun, why: string) {
  assert.equal(run.response.statusCode, 401, `${why}: expected 401, got ${run.response.statusCode} ${JSON.stringify(run.response.body)}`);
  assert.equal(run.response.body.error, 'unauthorized');
  assert.equal(typeof run.response.body.message, 'string');
  assert.deepEqual(run.sent, [], `${why}: a refused callback must queue nothing`);
}

function assertQuarantined(run: IngestRun, why: string) {
  assert.equal(run.response.statusCode, 200, why);
  assert.deepEqual(run.response.body, { received: true, quarantined: true }, why);
  assert.equal(run.messages.length, 1, why);
  const message = run.messages[0];
  assert.ok(message.quarantine, `${why}: the message must carry quarantine`);
  assert.equal(message.payload, undefined, `${why}: a quarantined message carries no payload`);
  return message;
}

test('every provider in the registry has a case in this suite', () => {
  // prepare
  const registered = providers.map((provider) => provider.id).sort();
  // act
  const covered = Object.keys(PROVIDER_CASES).sort();
  // assess
  assert.deepEqual(covered, registered);
});

for (const provider of providers) {
  const providerCase = PROVIDER_CASES[provider.id];
  const secret = UNIT_SECRETS[provider.id];

  describe(`provider ${provider.id}`, () => {
    test('has samples in test/fixtures', () => {
      assert.ok(listSamples(provider.id).length > 0, `no samples in test/fixtures/${provider.id}/`);
    });

    for (const sample of listSamples(provider.id)) {
      test(`accepts sample ${sample.name}`, async () => {
        // prepare
        const request = authentic(provider, contentOf(sample));
        // act
        const run = await runIngest(provider, request);
        // assess
        assert.equal(run.response.statusCode, 200, JSON.stringify(run.response.body));
        assert.deepEqual(run.response.body, { received: true });
        assert.equal(run.messages.length, 1);
        const message = run.messages[0];
        assert.equal(message.quarantine, undefined, `quarantined: ${JSON.stringify(message.quarantine)}`);
        assert.equal(message.provider, provider.id);
        assert.equal(message.requestId, request.requestId);
        assert.equal(message.receivedAt, request.receivedAt);
        assert.equal(message.sourceIp, request.sourceIp);
        assert.equal(message.raw.query, request.rawQuery);
        if (sample.body) assert.ok(message.raw.body && message.raw.body.length > 0, 'the raw body is kept');
        // The worker describes the payload it reads off the queue, after a JSON round trip, with
        // the provider's settings (REL-ID's declared action labels).
        const settings = provider.secretSchema.parse(secret);
        const facts = provider.describe(message.payload, settings);
        assert.ok(facts.subjectId.length > 0, 'subjectId');
        assert.ok(facts.eventKey.length > 0, 'eventKey');
        assert.ok(facts.status.length > 0, 'status');
        assert.ok(OUTCOMES.includes(facts.outcome), `outcome ${facts.outcome}`);
        assert.equal(typeof facts.terminal, 'boolean');
        assert.ok(Number.isFinite(facts.rank));
        if (facts.statusAt !== undefined) assert.equal(new Date(facts.statusAt).toISOString(), facts.statusAt);
        const parsed = provider.parse(request);
        assert.ok(parsed.ok);
        assert.deepEqual(facts, provider.describe(parsed.payload, settings), 'the queued payload describes the same event as the parsed one');
      });
    }

    const invalidDir = join(FIXTURES_DIR, provider.id, 'invalid');
    for (const sample of existsSync(invalidDir) ? listSamples(provider.id, 'invalid') : []) {
      test(`quarantines invalid sample ${sample.name}`, async () => {
        // prepare
        const request = authentic(provider, contentOf(sample));
        // act
        const run = await runIngest(provider, request);
        // assess
        const message = assertQuarantined(run, sample.name);
        assert.ok(message.quarantine!.reason.length > 0);
        assert.equal(message.raw.query, request.rawQuery);
      });
    }

    test(`refuses a tampered request (${providerCase.auth}) with 401 and queues nothing`, async () => {
      // prepare
      const genuine = authentic(provider, sampleContent(provider, providerCase.sample));
      const request = tampered(providerCase, genuine);
      // act
      const control = await runIngest(provider, genuine);
      const run = await runIngest(provider, request);
      // assess
      assert.equal(control.response.statusCode, 200, 'the untampered request is accepted');
      assertRefused(run, 'tampered');
    });

    for (const field of providerCase.credentialFields) {
      test(`refuses a request made with a wrong ${field} with 401`, async () => {
        // prepare
        const wrongSecret = { ...secret, [field]: altered(String(secret[field])) };
        const request = authentic(provider, sampleContent(provider, providerCase.sample), wrongSecret);
        // act
        const run = await runIngest(provider, request);
        // assess
        assertRefused(run, `wrong ${field}`);
      });
    }

    test('refuses a request without its credential with 401', async () => {
      // prepare
      const request = withoutAuth(providerCase, authentic(provider, sampleContent(provider, providerCase.sample)));
      // act
      const run = await runIngest(provider, request);
      // assess
      assertRefused(run, 'missing auth');
    });

    for (const field of providerCase.requiredFields) {
      test(`quarantines an authentic callback without ${field}, keeping the raw callback`, async () => {
        // prepare
        const content = withoutField(sampleContent(provider, providerCase.sample), field);
        const request = authentic(provider, content);
        // act
        const run = await runIngest(provider, request);
        // assess
        const message = assertQuarantined(run, `without ${field}`);
        const explanation = [message.quarantine!.reason, ...message.quarantine!.issues].join('\n');
        assert.match(explanation, new RegExp(`\\b${field}\\b`), `the quarantine reason names ${field}: ${explanation}`);
        if (content.query !== undefined) {
          assert.equal(message.raw.query, content.query);
        } else {
          const sentBody = request.body.toString('utf8');
          assert.equal(message.raw.body, scrubbed(provider, sentBody));
        }
      });
    }

    test('gives a retried callback the same subject and event key', async () => {
      // prepare: a retry arrives later, with another API Gateway request id
      const content = sampleContent(provider, providerCase.sample);
      const first = authentic(provider, content, secret, { requestId: 'first', receivedAt: '2025-01-01T10:00:00.000Z' });
      const retry = authentic(provider, content, secret, { requestId: 'retry', receivedAt: '2025-01-01T10:00:30.000Z' });
      // act
      const [a, b] = [await runIngest(provider, first), await runIngest(provider, retry)];
      // assess
      const factsA = provider.describe(a.messages[0].payload);
      const factsB = provider.describe(b.messages[0].payload);
      assert.equal(factsB.subjectId, factsA.subjectId);
      assert.equal(factsB.eventKey, factsA.eventKey);
    });

    test('gives a different status a different event key for the same subject', async () => {
      // prepare
      const content = sampleContent(provider, providerCase.sample);
      const other = providerCase.otherStatus(content);
      // act
      const a = await runIngest(provider, authentic(provider, content));
      const b = await runIngest(provider, authentic(provider, other));
      // assess
      const factsA = provider.describe(a.messages[0].payload);
      const factsB = provider.describe(b.messages[0].payload);
      assert.notEqual(factsB.status, factsA.status, 'the edit changes the status');
      assert.equal(factsB.subjectId, factsA.subjectId);
      assert.notEqual(factsB.eventKey, factsA.eventKey);
    });

    describe('secret rotation', () => {
      const previous = Object.fromEntries(providerCase.credentialFields.map((field) => [field, `old-${String(secret[field])}`]));
      const rotating = { ...secret, previous };
      const content = sampleContent(provider, providerCase.sample);

      const cases: { name: string; signingSecret: Record<string, unknown>; accepted: boolean }[] = [
        { name: 'current credentials', signingSecret: secret, accepted: true },
        { name: 'previous credentials', signingSecret: { ...secret, ...previous }, accepted: true },
        {
          name: 'credentials that are neither',
          signingSecret: { ...secret, ...Object.fromEntries(providerCase.credentialFields.map((field) => [field, `other-${String(secret[field])}`])) },
          accepted: false,
        },
      ];
      for (const { name, signingSecret, accepted } of cases) {
        test(`${accepted ? 'accepts' : 'refuses'} ${name}`, async () => {
          // prepare
          const request = authentic(provider, content, signingSecret);
          // act
          const run = await runIngest(provider, request, { secret: rotating });
          // assess
          if (accepted) {
            assert.deepEqual(run.response, { statusCode: 200, body: { received: true } });
            assert.equal(run.messages.length, 1);
          } else {
            assertRefused(run, name);
          }
        });
      }
    });
  });
}

/** The raw body as ingest keeps it: the provider's in-body secrets replaced. */
function scrubbed(provider: AnyProvider, text: string): string {
  const parsed = provider.secretSchema.parse(UNIT_SECRETS[provider.id]);
  for (const value of provider.bodySecrets?.(parsed) ?? []) text = text.split(value).join('[REDACTED]');
  return text;
}

describe('REL-ID source-IP allow-list', () => {
  const relid = providers.find((provider) => provider.id === 'relid')!;
  const body = listSamples('relid')[0].body!;
  const cases = [
    { name: 'an address inside an allowed block', sourceIp: '203.0.113.77', status: 200 },
    { name: 'the exact allowed IPv6 address', sourceIp: '2001:db8::5', status: 200 },
    { name: 'an address outside every entry', sourceIp: '198.51.100.1', status: 401 },
    { name: 'an unreadable source address', sourceIp: 'not-an-ip', status: 401 },
  ];
  for (const { name, sourceIp, status } of cases) {
    test(`${status === 200 ? 'accepts' : 'refuses'} ${name}`, async () => {
      // prepare
      const secret = { ...UNIT_SECRETS.relid, allowedIps: ['203.0.113.0/24', '2001:db8::5'] };
      const request = authentic(relid, { body }, secret, { sourceIp });
      // act
      const run = await runIngest(relid, request, { secret });
      // assess
      assert.equal(run.response.statusCode, status);
      assert.equal(run.sent.length, status === 200 ? 1 : 0);
    });
  }
});
