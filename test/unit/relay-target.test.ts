import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { relayTargetSince } from '../../local/pipeline.ts';
import { secretsFor } from '../providers/index.ts';

/**
 * `<data-dir>/relay-target.json`: since when the local relay has sent where it sends now. The relay
 * refuses to start on a cutoff that is not a time, so a stamp that holds none starts a new one.
 */

const dir = mkdtempSync(join(tmpdir(), 'relay-target-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const secretsFile = join(dir, 'secrets.json');
writeFileSync(secretsFile, JSON.stringify(secretsFor('test')));
const stampFile = join(dir, 'relay-target.json');
const target = { sender: 'telesign', endpoint: 'https://rest-api.telesign.com' };

test('the same target keeps its stamp; a stamp whose time was damaged is replaced by a new one from now, not kept', () => {
  // prepare
  const first = relayTargetSince(dir, target, secretsFile);
  const kept = relayTargetSince(dir, target, secretsFile);
  const stamp = JSON.parse(readFileSync(stampFile, 'utf8')) as { target: string; since: string };
  writeFileSync(stampFile, JSON.stringify({ ...stamp, since: 'yesterday' }));
  const before = Date.now();

  // act
  const renewed = relayTargetSince(dir, target, secretsFile);

  // assess
  assert.equal(kept, first);
  assert.ok(Number.isFinite(Date.parse(renewed)) && Date.parse(renewed) >= before - 1, renewed);
  assert.equal((JSON.parse(readFileSync(stampFile, 'utf8')) as { since: string }).since, renewed);
});
