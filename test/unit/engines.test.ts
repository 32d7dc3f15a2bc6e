import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startDynamoDbLocal } from '../../local/engines.ts';

/** What `npm start` says when the machine cannot run DynamoDB Local (the README's quick start needs Java 17+). */

test('without java on the PATH, starting DynamoDB Local fails saying Java 17 or later is needed', async () => {
  // prepare: a PATH with the shell DynamoDB Local's watchdog runs in, and no java
  const bin = mkdtempSync(join(tmpdir(), 'no-java-'));
  for (const tool of ['sh', 'cat']) symlinkSync(`/bin/${tool}`, join(bin, tool));
  const path = process.env.PATH;
  process.env.PATH = bin;
  try {
    // act + assess
    await assert.rejects(startDynamoDbLocal(), /no java on the PATH: DynamoDB Local needs Java 17 or later/);
  } finally {
    process.env.PATH = path;
    rmSync(bin, { recursive: true, force: true });
  }
});
