import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigurationError, DependencyError } from '../../functions/shared/errors.ts';
import { SECRET_FAILURE_TTL_MS, createSecretCache, secretEnvName, type SecretSource } from '../../functions/core/secrets.ts';
import { getProvider, providers } from '../../functions/providers/index.ts';
import { canAsk, type AnyProvider } from '../../functions/providers/provider.ts';
import { fileSecretSource, loadSecretsFile, SecretsFileError } from '../../local/secrets-file.ts';
import { authentic, fixedSecretSource, runIngest, UNIT_SECRETS } from '../support/unit-ingest.ts';

const telesign = getProvider('telesign');
const esms = getProvider('esms');

/** A source whose answers the test releases one by one. */
function gatedSource() {
  const pending: { provider: AnyProvider; resolve: (text: string) => void; reject: (error: Error) => void }[] = [];
  const source: SecretSource = (provider) => new Promise((resolve, reject) => pending.push({ provider, resolve, reject }));
  return { source, pending };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof Error);
    return error;
  }
  assert.fail('expected the promise to reject');
}

describe('createSecretCache caching', () => {
  test('concurrent gets share one fetch', async () => {
    // prepare
    const source = fixedSecretSource(UNIT_SECRETS);
    const cache = createSecretCache(source);
    // act
    const values = await Promise.all(Array.from({ length: 20 }, () => cache.get(telesign)));
    // assess
    assert.equal(source.calls, 1);
    for (const value of values) assert.deepEqual(value, UNIT_SECRETS.telesign);
  });

  test('concurrent gets while the first fetch is still pending share it', async () => {
    // prepare
    const { source, pending } = gatedSource();
    const cache = createSecretCache(source);
    // act
    const first = cache.get(telesign);
    const second = cache.get(telesign);
    pending[0]?.resolve(JSON.stringify(UNIT_SECRETS.telesign));
    // assess
    assert.equal(pending.length, 1);
    assert.deepEqual(await first, UNIT_SECRETS.telesign);
    assert.deepEqual(await second, UNIT_SECRETS.telesign);
  });

  const ttlCases = [
    { name: 'within the TTL', advanceMs: 59_999, calls: 1 },
    { name: 'exactly at the TTL', advanceMs: 60_000, calls: 2 },
    { name: 'after the TTL', advanceMs: 60_001, calls: 2 },
  ];
  for (const { name, advanceMs, calls } of ttlCases) {
    test(`a get ${name} ${calls === 1 ? 'reuses the secret' : 'fetches again'}`, async () => {
      // prepare
      let now = 1_000_000;
      const source = fixedSecretSource(UNIT_SECRETS);
      const cache = createSecretCache(source, { ttlMs: 60_000, now: () => now });
      await cache.get(esms);
      // act
      now += advanceMs;
      const value = await cache.get(esms);
      // assess
      assert.equal(source.calls, calls);
      assert.deepEqual(value, UNIT_SECRETS.esms);
    });
  }

  test('a rotated secret is picked up after the TTL', async () => {
    // prepare
    let now = 0;
    let current = { token: 'first-token-abc' };
    const source: SecretSource = async () => JSON.stringify(current);
    const cache = createSecretCache(source, { ttlMs: 1000, now: () => now });
    const before = await cache.get(esms);
    // act
    current = { token: 'second-token-def' };
    const stillCached = await cache.get(esms);
    now += 1001;
    const after = await cache.get(esms);
    // assess
    assert.deepEqual(before, { token: 'first-token-abc' });
    assert.deepEqual(stillCached, { token: 'first-token-abc' });
    assert.deepEqual(after, { token: 'second-token-def' });
  });

  test('each provider has its own entry', async () => {
    // prepare
    const source = fixedSecretSource(UNIT_SECRETS);
    const cache = createSecretCache(source);
    // act
    const values = await Promise.all(providers.map((provider) => cache.get(provider)));
    await Promise.all(providers.map((provider) => cache.get(provider)));
    // assess
    assert.equal(source.calls, providers.length);
    providers.forEach((provider, index) => assert.deepEqual(values[index], provider.secretSchema.parse(UNIT_SECRETS[provider.id])));
  });

  test('the default TTL is five minutes', async () => {
    // prepare
    let now = 0;
    const source = fixedSecretSource(UNIT_SECRETS);
    const cache = createSecretCache(source, { now: () => now });
    await cache.get(esms);
    // act
    now = 5 * 60_000 - 1;
    await cache.get(esms);
    const callsWithin = source.calls;
    now = 5 * 60_000;
    await cache.get(esms);
    // assess
    assert.equal(callsWithin, 1);
    assert.equal(source.calls, 2);
  });

  test('TemboPlus: apiToken without baseUrl is refused, naming the sandbox and production choice; without apiToken the token alone is valid and not asked', async () => {
    // act
    const refused = createSecretCache(fixedSecretSource({ temboplus: { token: 't-1', apiToken: 'a-1' } })).get(getProvider('temboplus'));
    const tokenOnly = await createSecretCache(fixedSecretSource({ temboplus: { token: 't-1' } })).get(getProvider('temboplus'));
    const asked = await createSecretCache(fixedSecretSource({ temboplus: { token: 't-1', apiToken: 'a-1', baseUrl: 'https://sandbox.temboplus.com' } })).get(getProvider('temboplus'));
    // assess
    await assert.rejects(refused, /baseUrl is required with apiToken: https:\/\/sandbox\.temboplus\.com for the sandbox, or the production URL/);
    assert.deepEqual(tokenOnly, { token: 't-1' });
    assert.equal(canAsk(getProvider('temboplus'), tokenOnly), false);
    assert.equal(canAsk(getProvider('temboplus'), asked), true);
  });
});

describe('createSecretCache failures', () => {
  test('a failed fetch is a DependencyError with its cause, remembered briefly: a flood costs one call', async () => {
    // prepare
    let fail = true;
    let calls = 0;
    let now = 0;
    const cause = new Error('ResourceNotFoundException');
    const source: SecretSource = async () => {
      calls += 1;
      if (fail) throw cause;
      return JSON.stringify(UNIT_SECRETS.esms);
    };
    const cache = createSecretCache(source, { failureTtlMs: 10_000, now: () => now });
    // act
    const error = await rejection(cache.get(esms));
    const flood = await Promise.all(Array.from({ length: 100 }, () => rejection(cache.get(esms))));
    fail = false;
    now = 9_999;
    const stillRemembered = await rejection(cache.get(esms));
    now = 10_001;
    const value = await cache.get(esms);
    // assess
    assert.ok(error instanceof DependencyError);
    assert.equal(error.dependency, 'secrets');
    assert.equal(error.cause, cause);
    assert.match(error.message, /esms/);
    assert.ok(flood.every((each) => each === error), 'the flood got the remembered failure');
    assert.equal(stillRemembered, error);
    assert.deepEqual(value, UNIT_SECRETS.esms);
    assert.equal(calls, 2, 'one call while broken, one after the failure period');
  });

  test('a placeholder secret is remembered briefly too: fixing it takes effect after the failure period', async () => {
    // prepare
    let text = JSON.stringify({ token: 'REPLACE_ME' });
    let reads = 0;
    let now = 0;
    const cache = createSecretCache(async () => ((reads += 1), text), { now: () => now });
    // act
    const error = await rejection(cache.get(esms));
    for (let i = 0; i < 50; i++) await rejection(cache.get(esms));
    text = JSON.stringify({ token: 'filled-in-token' });
    now = SECRET_FAILURE_TTL_MS + 1;
    const value = await cache.get(esms);
    // assess
    assert.ok(error instanceof ConfigurationError);
    assert.equal(reads, 2, 'not re-read on every request');
    assert.deepEqual(value, { token: 'filled-in-token' });
  });

  test('a ConfigurationError from the source passes through unwrapped', async () => {
    // prepare
    const original = new ConfigurationError('environment variable ESMS_SECRET_ID is not set');
    const cache = createSecretCache(async () => {
      throw original;
    });
    // act
    const error = await rejection(cache.get(esms));
    // assess
    assert.equal(error, original);
  });

  test('a late failure of an expired fetch does not evict the fresh entry that replaced it', async () => {
    // prepare: a slow fetch outlives the TTL, a newer fetch succeeds, then the slow one fails
    let now = 0;
    const { source, pending } = gatedSource();
    const cache = createSecretCache(source, { ttlMs: 1000, now: () => now });
    const slow = cache.get(esms);
    now = 2000;
    const fresh = cache.get(esms);
    pending[1].resolve(JSON.stringify(UNIT_SECRETS.esms));
    await fresh;
    pending[0].reject(new Error('timed out'));
    await rejection(slow);
    // act
    const again = cache.get(esms);
    // assess
    assert.equal(pending.length, 2, 'the fresh entry was evicted by the stale failure');
    assert.deepEqual(await again, UNIT_SECRETS.esms);
  });

  const secretValue = 'sUp3r-s3cret-VALUE-0042';
  const invalid: { provider: string; name: string; text: string; names: RegExp[] }[] = [
    { provider: 'telesign', name: 'not JSON (the value pasted bare)', text: secretValue, names: [/not JSON/] },
    { provider: 'telesign', name: 'JSON with a trailing comma', text: `{"customerId":"${secretValue}","apiKey":"${secretValue}",}`, names: [/not JSON/] },
    { provider: 'telesign', name: 'missing apiKey', text: JSON.stringify({ customerId: secretValue }), names: [/apiKey/] },
    { provider: 'telesign', name: 'apiKey still the placeholder', text: JSON.stringify({ customerId: secretValue, apiKey: 'REPLACE_ME' }), names: [/apiKey/, /placeholder/] },
    { provider: 'telesign', name: 'apiKey a number', text: JSON.stringify({ customerId: secretValue, apiKey: 4200042 }), names: [/apiKey/] },
    { provider: 'telesign', name: 'previous apiKey empty', text: JSON.stringify({ customerId: secretValue, apiKey: secretValue, previous: { apiKey: '' } }), names: [/previous\.apiKey/] },
    { provider: 'esms', name: 'token under another name', text: JSON.stringify({ tokn: secretValue }), names: [/token/] },
    { provider: 'temboplus', name: 'baseUrl not a URL', text: JSON.stringify({ token: secretValue, apiToken: secretValue, baseUrl: `ftp-${secretValue}` }), names: [/baseUrl/] },
    { provider: 'relid', name: 'allowedIps with a bad entry', text: JSON.stringify({ token: secretValue, allowedIps: [`10.0.0.0/${secretValue}`] }), names: [/allowedIps/] },
    { provider: 'identomat', name: 'an array', text: JSON.stringify([secretValue]), names: [/identomat/] },
    // A key is text the sender wrote, and can be the secret itself: a signing secret written where its source's name goes.
    {
      provider: 'standard-webhooks',
      name: 'a signing secret written as a source name',
      text: JSON.stringify({ sources: { [`whsec_${secretValue}`]: { subjectField: 'data.id' } } }),
      names: [/sources: a key that is not valid \(source names are lower-case letters, digits and dashes\)/],
    },
  ];
  for (const { provider: id, name, text, names } of invalid) {
    test(`${id} secret ${name}: ConfigurationError naming the problem, never the value`, async () => {
      // prepare
      const provider = getProvider(id);
      const cache = createSecretCache(async () => text);
      // act
      const error = await rejection(cache.get(provider));
      // assess
      assert.ok(error instanceof ConfigurationError, `${error.name}: ${error.message}`);
      assert.match(error.message, new RegExp(id));
      for (const pattern of names) assert.match(error.message, pattern);
      for (const leak of [secretValue, '4200042', 'sUp3r']) {
        assert.ok(!error.message.includes(leak), `the message contains the value: ${error.message}`);
        assert.ok(!String(error.stack).includes(leak), 'the stack contains the value');
        assert.ok(!String((error as { cause?: unknown }).cause ?? '').includes(leak), 'the cause contains the value');
      }
    });
  }
});

describe('secretEnvName', () => {
  for (const provider of providers) {
    const expected = `${provider.id.toUpperCase().replace(/-/g, '_')}_SECRET_ID`;
    test(`${provider.id} reads ${expected} (a valid Lambda variable name)`, () => {
      assert.equal(secretEnvName(provider), expected);
      assert.match(secretEnvName(provider), /^[A-Z][A-Z0-9_]*$/);
    });
  }
});

describe("the local runtime's secrets file", () => {
  const folders: string[] = [];
  after(() => {
    for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  });
  /** A folder of its own for one secrets file, removed when the tests are done. */
  function secretsPath(): string {
    const folder = mkdtempSync(join(tmpdir(), 'secrets-file-'));
    folders.push(folder);
    return join(folder, 'secrets.json');
  }

  /** The secrets file as a person edits it while `npm start` runs: every provider's secret, one value written with single quotes. */
  function editedFile(): { path: string; apiKey: string } {
    const apiKey = String(UNIT_SECRETS.telesign.apiKey);
    const text = JSON.stringify(UNIT_SECRETS, null, 2).replace(`"apiKey": "${apiKey}"`, `"apiKey": '${apiKey}'`);
    assert.ok(text.includes(`'${apiKey}'`), 'the control: the value is single-quoted');
    const path = secretsPath();
    writeFileSync(path, text);
    return { path, apiKey };
  }

  test('a secrets file that stopped being JSON is refused (503) with a log line that quotes none of its text', async () => {
    // prepare
    const { path, apiKey } = editedFile();
    const telesign = getProvider('telesign');
    // act
    const run = await runIngest(telesign, authentic(telesign, { body: Buffer.from('{"reference_id":"R","status":{"code":200}}') }), { source: fileSecretSource(path) });
    // assess
    assert.equal(run.response.statusCode, 503);
    assert.equal(run.lines.length, 1);
    assert.match(run.lines[0], /is not valid JSON/);
    assert.ok(!run.lines[0].includes(apiKey.slice(0, 8)), `the line quotes the secret: ${run.lines[0]}`);
    assert.throws(() => loadSecretsFile(path), (error: Error) => error instanceof SecretsFileError && !error.message.includes(apiKey.slice(0, 8)));
  });

  test('a value written without quotes is refused without its first character either (V8 names the unexpected token)', () => {
    // prepare: a secret that starts with a character found nowhere else in the message
    const path = secretsPath();
    writeFileSync(path, '{\n  "telesign": { "customerId": "C", "apiKey": Qz9secret }\n}\n');

    // act / assess
    assert.throws(
      () => loadSecretsFile(path),
      (error: Error) => error instanceof SecretsFileError && /is not valid JSON: Unexpected token/.test(error.message) && !error.message.replace(path, '').includes('Q'),
    );
  });

  test("a signing secret written where a source's name goes is refused without the secret (the file names the key's problem, not the key)", () => {
    // prepare: the Standard Webhooks entry with its whsec_ secret as the source's name
    const signingSecret = 'whsec_Qz9sEcReTkEyBase64ValueXyZ0123456789ab';
    const path = secretsPath();
    writeFileSync(path, JSON.stringify({ ...UNIT_SECRETS, 'standard-webhooks': { sources: { [signingSecret]: { subjectField: 'data.id' } } } }));

    // act / assess
    assert.throws(
      () => loadSecretsFile(path),
      (error: Error) =>
        error instanceof SecretsFileError && /standard-webhooks\.sources: a key that is not valid/.test(error.message) && !error.message.includes('Qz9sEcReT'),
    );
  });
});
