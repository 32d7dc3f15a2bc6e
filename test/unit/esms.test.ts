import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canonicalQuery, decodeErrorInfo, esms, type EsmsCallback } from '../../functions/providers/esms.ts';
import type { CallbackRequest } from '../../functions/providers/provider.ts';
import { listSamples } from '../../local/samples.ts';
import { authentic, runIngest, UNIT_SECRETS } from '../support/unit-ingest.ts';

const token = String(UNIT_SECRETS.esms.token);

function sampleQuery(name: string): string {
  const sample = listSamples('esms').find((candidate) => candidate.name === name);
  assert.ok(sample?.query, `test/fixtures/esms/${name}.query is missing`);
  return sample.query;
}

function getRequest(rawQuery: string, method = 'GET'): CallbackRequest {
  return {
    method,
    headers: {},
    body: Buffer.alloc(0),
    rawQuery,
    pathToken: token,
    sourceIp: '203.0.113.10',
    requestId: 'unit',
    receivedAt: '2025-01-01T10:00:00.000Z',
  };
}

function parsed(rawQuery: string): EsmsCallback {
  const result = esms.parse(getRequest(rawQuery));
  assert.ok(result.ok, JSON.stringify(result));
  return result.payload;
}

describe('eSMS field names', () => {
  const canonical = 'SMSID=abc123&SendFailed=0&SendStatus=5&SendSuccess=1&phonenumber=0901888484&TypeId=2';
  const spellings = [
    { name: 'as the samples spell them', query: canonical },
    { name: 'all lower case', query: canonical.toLowerCase() },
    { name: 'all upper case', query: 'SMSID=abc123&SENDFAILED=0&SENDSTATUS=5&SENDSUCCESS=1&PHONENUMBER=0901888484&TYPEID=2' },
    { name: 'mixed (smsid, SENDSTATUS, Phonenumber)', query: 'smsid=abc123&SendFailed=0&SENDSTATUS=5&sendsuccess=1&Phonenumber=0901888484&typeid=2' },
  ];

  for (const { name, query } of spellings) {
    test(`are matched case-insensitively: ${name}`, () => {
      // act
      const payload = parsed(query);
      const facts = esms.describe(payload);
      // assess
      assert.equal(payload.SMSID, 'abc123');
      assert.equal(payload.SendStatus, '5');
      assert.equal(payload.SendSuccess, '1');
      assert.equal(payload.phonenumber, '0901888484');
      assert.deepEqual(facts, esms.describe(parsed(canonical)));
    });
  }

  test('an unknown parameter is kept under its own name', () => {
    const payload = parsed(`${canonical}&NewField=x`) as Record<string, unknown>;
    assert.equal(payload.NewField, 'x');
  });

  test('canonicalQuery folds case but keeps values byte for byte', () => {
    assert.deepEqual(canonicalQuery('smsid=A%20b&sendstatus=05'), { SMSID: 'A b', SendStatus: '05' });
  });
});

describe('eSMS error_info encodings (the three seen in samples)', () => {
  const cases = [
    {
      name: 'a JSON string literal wrapping JSON (zalo-error)',
      sample: 'zalo-error',
      expected: {
        error: -114,
        message: 'User is inactive, or reject the message, or using an outdated Zalo version, or other internal errors',
      },
    },
    {
      name: 'double URL-encoded JSON with a ____dd/MM/yyyy HH:mm:ss suffix (zalo-consulting)',
      sample: 'zalo-consulting',
      expected: { data: { message_id: 'e1a60e8890be9de4c4ab', user_id: '31215806834323092' }, error: 0, message: 'Success' },
    },
    {
      name: 'plain JSON (zalo-by-uid)',
      sample: 'zalo-by-uid',
      expected: {
        error: 0,
        message: 'Success',
        data: { delivery_time: null, message: "The message was delivered to the user's phone", status: 1 },
      },
    },
  ];

  for (const { name, sample, expected } of cases) {
    test(`decodes ${name} to an object in the queued payload`, async () => {
      // prepare
      const request = authentic(esms, { query: sampleQuery(sample) });
      // act
      const run = await runIngest(esms, request);
      // assess
      assert.deepEqual(run.response, { statusCode: 200, body: { received: true } });
      const payload = run.messages[0].payload as EsmsCallback;
      assert.deepEqual(payload.errorInfo, expected);
      assert.equal(typeof payload.error_info, 'string', 'the original text is kept beside the decoded object');
    });
  }

  test('an error_info that is none of the three is kept as text, without errorInfo, and not quarantined', () => {
    // act
    const payload = parsed('SMSID=x&SendStatus=5&error_info=not%20json');
    // assess
    assert.equal(payload.error_info, 'not json');
    assert.equal(payload.errorInfo, undefined);
  });

  test('decodeErrorInfo does not turn a bare JSON string or number into an object', () => {
    assert.equal(decodeErrorInfo('"just text"'), undefined);
    assert.equal(decodeErrorInfo('42'), undefined);
  });
});

describe('eSMS SendStatus', () => {
  const cases = [
    { name: '1 (pending approval)', query: 'SMSID=m1&SendStatus=1', outcome: 'pending', terminal: false },
    { name: '2 (waiting to send)', query: 'SMSID=m1&SendStatus=2', outcome: 'pending', terminal: false },
    { name: '7 (sent to telco, awaiting report)', query: 'SMSID=m1&SendStatus=7', outcome: 'pending', terminal: false },
    { name: '4 (rejected)', query: 'SMSID=m1&SendStatus=4&SendSuccess=0&SendFailed=0', outcome: 'failed', terminal: true },
    { name: '5 with SendSuccess 1', query: 'SMSID=m1&SendStatus=5&SendSuccess=1&SendFailed=0', outcome: 'succeeded', terminal: true },
    { name: '5 with SendFailed 1', query: 'SMSID=m1&SendStatus=5&SendSuccess=0&SendFailed=1', outcome: 'failed', terminal: true },
    { name: '5 with some of each', query: 'SMSID=m1&SendStatus=5&SendSuccess=3&SendFailed=1', outcome: 'succeeded', terminal: true },
    { name: '5 (customer-care sample: SendFailed 2, SendSuccess 0)', query: sampleQuery('customer-care'), outcome: 'failed', terminal: true },
    { name: '5 (viber sample: SendSuccess 1)', query: sampleQuery('viber'), outcome: 'succeeded', terminal: true },
    { name: '5, voice call with SentResult 0', query: sampleQuery('voice-call-result'), outcome: 'failed', terminal: true },
    { name: '5, voice call with SentResult 1', query: sampleQuery('voice-call-result').replace('SentResult=0', 'SentResult=1'), outcome: 'succeeded', terminal: true },
  ];

  for (const { name, query, outcome, terminal } of cases) {
    test(`${name} is ${terminal ? 'terminal' : 'non-terminal'} ${outcome}`, () => {
      // act
      const facts = esms.describe(parsed(query));
      // assess
      assert.equal(facts.outcome, outcome);
      assert.equal(facts.terminal, terminal);
    });
  }

  test('7 ranks above 1 and 2, so a late "waiting to send" never replaces "sent to telco"', () => {
    const rank = (status: string) => esms.describe(parsed(`SMSID=m1&SendStatus=${status}`)).rank;
    assert.ok(rank('7') > rank('2'));
    assert.ok(rank('7') > rank('1'));
  });

  test('a SendStatus that is not digits is quarantined', async () => {
    // prepare
    const request = authentic(esms, { query: 'SMSID=m1&SendStatus=sent' });
    // act
    const run = await runIngest(esms, request);
    // assess
    assert.deepEqual(run.response.body, { received: true, quarantined: true });
    assert.match(run.messages[0].quarantine!.issues.join('\n'), /SendStatus/);
    assert.equal(run.messages[0].raw.query, 'SMSID=m1&SendStatus=sent');
  });
});

describe('eSMS subjects', () => {
  test('a per-recipient callback names the recipient in its subject', () => {
    // act
    const facts = esms.describe(parsed(sampleQuery('customer-care')));
    // assess
    assert.equal(facts.subjectId, 'dc712784-9c5f-4c69-b9a8-ea69d56adc9a87:0901888484');
  });

  test('two recipients of one SMSID are two subjects', () => {
    const a = esms.describe(parsed('SMSID=batch1&SendStatus=5&SendSuccess=1&phonenumber=0901000001'));
    const b = esms.describe(parsed('SMSID=batch1&SendStatus=5&SendSuccess=1&phonenumber=0901000002'));
    assert.notEqual(a.subjectId, b.subjectId);
  });

  test('a callback without a recipient has the SMSID as its subject', () => {
    const facts = esms.describe(parsed(sampleQuery('promotion')));
    assert.equal(facts.subjectId, '82b0bb8aed914a0aab8deba567c9b8c2');
  });

  test('a voice call result is its own subject, apart from any SMSID', () => {
    const facts = esms.describe(parsed(sampleQuery('voice-call-result')));
    assert.equal(facts.subjectId, 'voice:066107ee-6ec4-4283-b595-aa74977c65c5');
  });

  test('the event key changes with the status and the counters, not with the price', () => {
    const key = (query: string) => esms.describe(parsed(query)).eventKey;
    const base = 'SMSID=m1&SendStatus=5&SendSuccess=1&SendFailed=0&TotalPrice=1.0';
    assert.equal(key(base), key(base.replace('TotalPrice=1.0', 'TotalPrice=2.0')));
    assert.notEqual(key(base), key(base.replace('SendStatus=5', 'SendStatus=7')));
    assert.notEqual(key(base), key(base.replace('SendSuccess=1&SendFailed=0', 'SendSuccess=0&SendFailed=1')));
  });
});

describe('eSMS method', () => {
  const query = 'SMSID=m1&SendStatus=5&SendSuccess=1';
  const cases = [
    { method: 'GET', status: 200 },
    { method: 'POST', status: 405 },
    { method: 'PUT', status: 405 },
    { method: 'HEAD', status: 405 },
  ];
  for (const { method, status } of cases) {
    test(`${method} is answered ${status}`, async () => {
      // act
      const run = await runIngest(esms, getRequest(query, method));
      // assess
      assert.equal(run.response.statusCode, status);
      assert.equal(run.sent.length, status === 200 ? 1 : 0);
      if (status === 405) assert.equal(run.response.body.error, 'method_not_allowed');
    });
  }

  test('a POST with the query in a form body is refused, not read', async () => {
    // prepare
    const request = { ...getRequest('', 'POST'), headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: Buffer.from(query) };
    // act
    const run = await runIngest(esms, request);
    // assess
    assert.equal(run.response.statusCode, 405);
    assert.deepEqual(run.sent, []);
  });

  test('an authentic GET with an empty query is quarantined, not dropped', async () => {
    // act
    const run = await runIngest(esms, getRequest(''));
    // assess
    assert.deepEqual(run.response.body, { received: true, quarantined: true });
    assert.equal(run.messages[0].quarantine?.reason, 'empty query string');
  });
});

describe('eSMS query decoding', () => {
  test('a literal + stays a + (percent-decoding only, not form decoding)', () => {
    // prepare / act
    const query = canonicalQuery('SMSID=abc&SendStatus=5&phonenumber=+84901888484&error_info=%7B%7D');
    // assess
    assert.equal(query.phonenumber, '+84901888484');
    assert.equal(query.error_info, '{}');
  });

  test('a malformed escape is kept as sent instead of failing the callback', () => {
    assert.equal(canonicalQuery('SMSID=ab%ZZ&SendStatus=5').SMSID, 'ab%ZZ');
  });
});
