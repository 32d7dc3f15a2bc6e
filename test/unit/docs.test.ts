import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { providers } from '../../functions/providers/index.ts';

/** Docs that stay true: what the README and the code's comments say is checked against the repository. */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** Every file under these folders, repository-relative. */
function files(...folders: string[]): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (name === 'node_modules' || name.startsWith('.')) continue;
      if (statSync(path).isDirectory()) walk(path);
      else found.push(relative(ROOT, path));
    }
  };
  for (const folder of folders) walk(join(ROOT, folder));
  return found;
}

/** Files the commands write (git-ignored), which docs may name. */
const GENERATED = ['bench/results.json'];

/** Repository paths a text names: `functions/…`, `test/…` and so on, without placeholders or globs. */
function namedPaths(text: string): string[] {
  // Not inside a package name (`aws-cdk-lib/aws-events`) or a longer path.
  const paths = text.match(/(?<![\w/.-])(?:functions|lib|bin|local|test|bench)\/[A-Za-z0-9_./*<>{}-]*[A-Za-z0-9_*>}-](?:\.[a-z]{1,5})?/g) ?? [];
  return [...new Set(paths)].filter((path) => !/[<>*{}]/.test(path) && !GENERATED.includes(path));
}

test('the README has a provider row, with its route, for every provider in the registry', () => {
  for (const provider of providers) {
    assert.ok(README.includes(`\`${provider.route.method} ${provider.route.path}`), `README: no route for ${provider.id}`);
    assert.ok(README.includes(`| ${provider.displayName} |`), `README: no table row for ${provider.displayName}`);
    assert.ok(README.includes(provider.docsUrl) || provider.docsUrl.length === 0, `README: no docs link for ${provider.id}`);
  }
});

test('every repository path the README names exists', () => {
  const missing = namedPaths(README).filter((path) => !existsSync(join(ROOT, path)) && !existsSync(join(ROOT, path.replace(/\.$/, ''))));
  assert.deepEqual(missing, []);
});

test("every repository path a code comment names exists (comments name no file that is not in the repository)", () => {
  const missing: string[] = [];
  for (const file of files('functions', 'lib', 'bin', 'local', 'test', 'bench').filter((name) => name.endsWith('.ts'))) {
    const comments = (readFileSync(join(ROOT, file), 'utf8').match(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g) ?? []).join('\n');
    for (const path of namedPaths(comments)) {
      const candidates = [path, path.replace(/\.$/, ''), `${path}.ts`];
      if (!candidates.some((candidate) => existsSync(join(ROOT, candidate)))) missing.push(`${file}: ${path}`);
    }
  }
  assert.deepEqual(missing, []);
});

test("package.json's description names every provider of the registry", () => {
  // prepare
  const { description } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { description: string };
  // act
  const missing = providers.filter((provider) => !description.includes(provider.displayName)).map((provider) => provider.displayName);
  // assess
  assert.deepEqual(missing, [], description);
});
