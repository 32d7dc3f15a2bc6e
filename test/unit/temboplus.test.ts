import assert from 'node:assert/strict';
import { redirectingEndpoint } from '../support/redirect-stand-in.ts';
import { describe, test } from 'node:test';
import { temboplus, type TemboPlusCallback } from '../../functions/providers/temboplus.ts';
import { ConfigurationError, DependencyError } from '../../functions/shared/errors.ts';

/**
 * What a TemboPlus status means, its statusCode read too: the docs pair each status with its codes
 * (COMPLETED / PAYMENT_SUCCESS; FAILED / PAYMENT_FAILED | INSUFFICIENT_BALANCE | PROVIDER_FAILURE |
 * INVALID_ACCOUNT; REVERSED; CANCELED / PAYMENT_CANCELED). A pair that contradicts itself is never
 * success.
 */

function meaning(status: string, statusCode: string | null | undefined) {
  const payload = { partnerReference: 'PR-1', status, statusCode, updatedAt: '2026-01-01T10:00:00Z' } as TemboPlusCallback;
  const facts = temboplus.describe(payload);
  return { outcome: facts.outcome, terminal: facts.terminal, detail: facts.detail };
}

describe('TemboPlus: status and statusCode', () => {
  test('COMPLETED with PAYMENT_SUCCESS (any case), or with no code, is success', () => {
    for (const code of ['PAYMENT_SUCCESS', 'payment_success', null, undefined]) {
      assert.deepEqual(meaning('COMPLETED', code), { outcome: 'succeeded', terminal: true, detail: undefined }, String(code));
    }
  });

  test('COMPLETED with any other code (a failure code, an undocumented one) contradicts itself: final, unknown, never success', () => {
    // `PAYMENT_ſUCCESS` (U+017F, which String#toUpperCase maps to S) is no code the docs list: it was read as PAYMENT_SUCCESS.
    for (const code of ['PAYMENT_FAILED', 'INSUFFICIENT_BALANCE', 'PROVIDER_FAILURE', 'INVALID_ACCOUNT', 'PAYMENT_CANCELED', 'REVERSED', 'PAYMENT_REVERSED', 'SOMETHING_NEW', '', 'PAYMENT_\u017fUCCESS', 'payment_\u017fuccess']) {
      assert.deepEqual(meaning('COMPLETED', code), { outcome: 'unknown', terminal: true, detail: { statusCode: code, contradicts: 'status' } }, code);
    }
  });

  test('a code never turns a status into success: a failure stays a failure, except beside the success code, which contradicts it', () => {
    for (const status of ['FAILED', 'CANCELED', 'REVERSED']) {
      for (const code of ['PAYMENT_FAILED', 'INSUFFICIENT_BALANCE', 'PAYMENT_CANCELED', 'A_NEW_REASON', null]) assert.equal(meaning(status, code).outcome, 'failed', `${status}/${code}`);
    }
    // A FAILED or CANCELED saying PAYMENT_SUCCESS: read as failed (was), a payout would be sent again
    // though the code says it was paid. Final, unknown, for review; REVERSED follows a success.
    for (const status of ['FAILED', 'CANCELED']) {
      for (const code of ['PAYMENT_SUCCESS', 'payment_success']) {
        const read = meaning(status, code);
        assert.deepEqual([read.outcome, read.terminal], ['unknown', true], `${status}/${code}`);
      }
    }
    assert.equal(meaning('REVERSED', 'PAYMENT_SUCCESS').outcome, 'failed');
    assert.equal(meaning('SUBMITTED', 'PAYMENT_SUCCESS').outcome, 'pending');
  });
});

describe('TemboPlus: a callback compared with the Transaction Status answer', () => {
  const base = { partnerReference: 'PR-1', status: 'COMPLETED', statusCode: 'PAYMENT_SUCCESS', receiverAmount: 100 } as TemboPlusCallback;
  test('the status and its code without regard to case, as they are read; another code or amount differs', () => {
    // act / assess
    assert.deepEqual(temboplus.differences!({ ...base, status: 'completed', statusCode: 'payment_success' }, base), [], 'was: statusCode');
    assert.deepEqual(temboplus.differences!({ ...base, statusCode: 'PAYMENT_FAILED' }, base), ['statusCode']);
    assert.deepEqual(temboplus.differences!({ ...base, statusCode: 'PAYMENT_SUCCESS' }, { ...base, statusCode: null } as unknown as TemboPlusCallback), ['statusCode']);
    assert.deepEqual(temboplus.differences!({ ...base, receiverAmount: 101 }, base), ['receiverAmount']);
  });
});

describe('TemboPlus status lookup: HTTP answers', () => {
  const secret = { apiToken: 'token-1', baseUrl: 'https://sandbox.temboplus.example' } as Parameters<NonNullable<typeof temboplus.lookup>>[1];
  const answering = (status: number, body = '{}') =>
    ({ fetch: (async () => new Response(body, { status, headers: { 'content-type': 'application/json' } })) as typeof fetch, timeoutMs: 1000, newRequestId: () => '6f1c2b9e-0000-4000-8000-000000000000' });

  test('400 (a validation error, which may be about the partnerReference asked) is a fault a retry may clear, not a configuration fault', async () => {
    // act / assess
    await assert.rejects(temboplus.lookup!({ subjectId: 'PR 400/x' }, secret, answering(400, '{"message":"Validation error","details":[]}')), (error: Error) => {
      assert.ok(error instanceof DependencyError, `${error.name}: ${error.message}`);
      assert.ok(!(error instanceof ConfigurationError));
      assert.match(error.message, /400/);
      return true;
    });
  });

  test('403 (the token refused) stays a configuration fault naming apiToken', async () => {
    await assert.rejects(temboplus.lookup!({ subjectId: 'PR-1' }, secret, answering(403)), (error: Error) => error instanceof ConfigurationError && /apiToken/.test(error.message));
  });

  test('a partnerReference no URL path can carry (".", "..", an expectation can name them) is not_found, without asking another path', async () => {
    for (const subjectId of ['.', '..', 'PR\ud800']) {
      // prepare: fetch resolves `/remittance/../status` to `/status`, another endpoint, with the token
      const asked: string[] = [];
      const recording = (async (input: string | URL | Request) => {
        asked.push(new URL(input instanceof Request ? input.url : input).pathname);
        return new Response('{"message":"Unauthorized"}', { status: 401, headers: { 'content-type': 'application/json' } });
      }) as typeof fetch;
      // act
      const outcome = await temboplus.lookup!({ subjectId }, secret, { fetch: recording, timeoutMs: 1000, newRequestId: () => '6f1c2b9e-0000-4000-8000-000000000002' }).then(
        (answer) => answer,
        (error: unknown) => error,
      );
      // assess
      assert.deepEqual(outcome, { kind: 'not_found' }, JSON.stringify(subjectId));
      assert.deepEqual(asked, [], 'nothing was asked');
    }
  });

  for (const status of [301, 302, 307, 308]) {
    test(`a redirect (${status}) is not followed: what answers elsewhere is never taken for TemboPlus's status`, async () => {
      // prepare: a stand-in that redirects to another server, which answers COMPLETED for the transfer
      const endpoint = await redirectingEndpoint(status, JSON.stringify({ partnerReference: 'PR-1', status: 'COMPLETED', statusCode: 'PAYMENT_SUCCESS', updatedAt: '2026-01-01T10:00:00Z' }));
      try {
        const redirected = { ...secret, baseUrl: endpoint.baseUrl };
        // act
        const outcome = await temboplus.lookup!({ subjectId: 'PR-1' }, redirected, { fetch, timeoutMs: 2_000, newRequestId: () => '6f1c2b9e-0000-4000-8000-000000000001' }).then(
          (answer) => answer,
          (error: unknown) => error,
        );
        // assess
        assert.ok(outcome instanceof ConfigurationError, `expected a ConfigurationError, got ${JSON.stringify(outcome)}`);
        assert.match(outcome.message, new RegExp(`${status}.*baseUrl`));
        assert.ok(!outcome.message.includes('token-1'));
        assert.deepEqual(endpoint.elsewhere, []);
      } finally {
        await endpoint.close();
      }
    });
  }
});
