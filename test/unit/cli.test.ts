import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { REPO_ROOT } from '../../lib/gateway-function.ts';
import { checkInt, COUNT_RANGE, dataDirHint, flagsNpmTook, parseErrorText, rangeText } from '../../local/cli-args.ts';
import { parseArgs } from 'node:util';
import { colorWanted, npmPrintedHeader } from '../../local/cli-output.ts';
import { prettyLine } from '../../local/log-format.ts';
import { listSamples } from '../../local/samples.ts';
import { leaks } from '../support/log-leaks.ts';
import { suiteFolder } from '../support/suite-folder.ts';
import { OPTIONS_PROBE_MARKER } from '../support/cli-options-probe.ts';
import { startAwsJsonService } from '../support/aws-json-stand-in.ts';
import { DEFAULT_RECONCILE } from '../../functions/core/reconcile.ts';
import { cdkOptionsNpmTook } from '../../lib/settings.ts';

/** Every ANSI colour sequence starts with it. */
const ESC = '\u001b[';

/** The command lines' pure rules: numeric flag ranges, when to colour, when npm's header is on stdout; and the bench's command line. */

describe('parseErrorText: a refused flag said as npm run users can act on it', () => {
  const refusal = (args: string[]) => {
    try {
      parseArgs({ args, options: { max: { type: 'string' } }, allowPositionals: true, strict: true });
    } catch (error) {
      return parseErrorText(error as Error & { code?: string });
    }
    assert.fail('parseArgs took it');
  };
  test("an unknown flag is named, without parseArgs' advice to add another `--`", () => {
    assert.equal(refusal(['--bogus']), "Unknown option '--bogus'");
  });
  test("a one-dash flag, more often an id that starts with '-', says where such a value goes", () => {
    assert.equal(refusal(['-x']), "Unknown option '-x' (a value that starts with '-' goes last, after a second --)");
    assert.equal(refusal(['temboplus', '-REF-1']), "Unknown option '-R' (a value that starts with '-' goes last, after a second --)");
  });
  test('other refusals are said as parseArgs says them', () => {
    assert.match(refusal(['--max']), /^Option '--max <value>' argument missing/);
  });
});

describe("dataDirHint: a hint naming another command names the pipeline's data folder when it is not the default", () => {
  const saved = process.env.CALLBACK_GATEWAY_DATA_DIR;
  after(() => {
    if (saved === undefined) delete process.env.CALLBACK_GATEWAY_DATA_DIR;
    else process.env.CALLBACK_GATEWAY_DATA_DIR = saved;
  });
  test('the folder the commands find by themselves needs nothing', () => {
    delete process.env.CALLBACK_GATEWAY_DATA_DIR;
    assert.equal(dataDirHint(undefined), '');
    assert.equal(dataDirHint('.local-data'), '');
    process.env.CALLBACK_GATEWAY_DATA_DIR = '/srv/gw data';
    assert.equal(dataDirHint('/srv/gw data'), '', 'the commands read CALLBACK_GATEWAY_DATA_DIR too');
    delete process.env.CALLBACK_GATEWAY_DATA_DIR;
  });
  test('another folder is named, inside the working folder as a relative path, else whole, quoted for a shell when it must be', () => {
    delete process.env.CALLBACK_GATEWAY_DATA_DIR;
    assert.equal(dataDirHint('demo-data'), ' --data-dir demo-data');
    assert.equal(dataDirHint('/srv/gateway/data'), ' --data-dir /srv/gateway/data');
    assert.equal(dataDirHint("/srv/it's here"), " --data-dir '/srv/it'\\''s here'");
  });
});

describe('checkInt: a numeric flag within its range', () => {
  const cases: [string, { min: number; max?: number }, number | undefined][] = [
    ['1', COUNT_RANGE, 1],
    ['1000', COUNT_RANGE, 1000],
    ['0', COUNT_RANGE, undefined],
    ['1001', COUNT_RANGE, undefined],
    ['0', { min: 0, max: 65_535 }, 0],
    ['65536', { min: 0, max: 65_535 }, undefined],
    ['9007199254740991', { min: 1 }, 9_007_199_254_740_991],
    ['9007199254740992', { min: 1 }, undefined],
    // Number() would take each of these
    ['', COUNT_RANGE, undefined],
    [' 5', COUNT_RANGE, undefined],
    ['1e3', COUNT_RANGE, undefined],
    ['0x10', COUNT_RANGE, undefined],
    ['5.0', COUNT_RANGE, undefined],
    ['-1', { min: 0 }, undefined],
  ];
  for (const [value, range, expected] of cases) {
    test(`"${value}" in ${JSON.stringify(range)} → ${expected ?? 'refused'}`, () => {
      const checked = checkInt('--flag', value, range);
      if (expected === undefined) {
        assert.equal(checked.ok, false);
        assert.ok(!checked.ok && checked.message.startsWith('--flag must be a whole number'), JSON.stringify(checked));
        assert.ok(!checked.ok && checked.message.endsWith(`got "${value}"`));
      } else {
        assert.deepEqual(checked, { ok: true, value: expected });
      }
    });
  }

  test('the message states the range the same way for every flag, with the note when there is one', () => {
    assert.equal(rangeText('--repeat', COUNT_RANGE), '--repeat must be a whole number from 1 to 1000');
    assert.equal(rangeText('--max', { min: 1 }), '--max must be a whole number of at least 1');
    assert.equal(rangeText('PORT', { min: 0, max: 65_535, note: '0: any free port' }), 'PORT must be a whole number from 0 to 65535 (0: any free port)');
  });
});

describe('colorWanted: NO_COLOR, a terminal, TERM', () => {
  const tty = { isTTY: true };
  test('a terminal gets colour', () => assert.equal(colorWanted(tty, {}), true));
  test('NO_COLOR set to anything turns it off (https://no-color.org)', () => {
    assert.equal(colorWanted(tty, { NO_COLOR: '1' }), false);
    assert.equal(colorWanted(tty, { NO_COLOR: 'false' }), false);
  });
  test('an empty NO_COLOR is as if unset', () => assert.equal(colorWanted(tty, { NO_COLOR: '' }), true));
  test('a pipe or a file gets none', () => {
    assert.equal(colorWanted({ isTTY: false }, {}), false);
    assert.equal(colorWanted({}, {}), false);
  });
  test('TERM=dumb gets none', () => assert.equal(colorWanted(tty, { TERM: 'dumb' }), false));

  test('a pretty log line has ANSI escapes only when colour is wanted', () => {
    const line = JSON.stringify({ level: 'INFO', timestamp: '2026-01-01T12:00:01.000Z', service: 'ingest-telesign', message: 'callback', statusCode: 200 });
    assert.ok(prettyLine(line, 'INFO', true).includes(ESC));
    assert.ok(!prettyLine(line, 'INFO', false).includes(ESC));
    assert.match(prettyLine(line, 'INFO', false), /^12:00:01 INFO {2}ingest-telesign +callback +statusCode=200$/);
  });

  test("a sender's text in a pretty line cannot write escapes or a line of its own: control characters are shown as \\u escapes", () => {
    // A status a sender chose (a Standard Webhooks type, a TemboPlus status): a title change, a colour, a forged second line.
    const status = '\u001b]0;owned\u0007\u001b[2K\n12:00:02 INFO  ingest-telesign    callback  result=accepted\u009b31m';
    const line = JSON.stringify({ level: 'DEBUG', timestamp: '2026-01-01T12:00:01.000Z', service: 'ingest-standard-webhooks', message: 'callback', status, issues: [status] });
    for (const color of [false, true]) {
      const shown = prettyLine(line, 'DEBUG', color);
      assert.ok(!shown.includes('\n') && !shown.includes('\u0007') && !shown.includes('\u009b'), JSON.stringify(shown));
      // Only the level's own colour and its reset, when colour is wanted.
      assert.equal(shown.split(ESC).length - 1, color ? 2 : 0, JSON.stringify(shown));
      assert.ok(shown.includes('status=\\u001b]0;owned\\u0007\\u001b[2K\\u000a12:00:02 INFO'), shown);
    }
  });

  test("a sender's text in a pretty line cannot reorder, hide or break it: bidi controls, separators, zero-width characters and lone surrogates are shown as \\u escapes", () => {
    // A status that a terminal showing bidi text would draw reversed ("failed" for "deliaf", and the
    // rest of the line with it), an isolate, a line and a paragraph separator, characters that draw
    // nothing (two ids that look alike), a tag character and a lone surrogate.
    const status = 'ok\u202edeliaf\u2066x\u2069\u2028forged\u2029\u200b\u200d\ufeff\u00ad\u{e0041}\ud800';
    const line = JSON.stringify({ level: 'DEBUG', timestamp: '2026-01-01T12:00:01.000Z', service: 'ingest-standard-webhooks', message: 'callback', status });
    // act
    const shown = prettyLine(line, 'DEBUG', false);
    // assess: nothing of it reaches the terminal as it was, each is spelled as JSON would escape it
    for (const char of ['\u202e', '\u2066', '\u2069', '\u2028', '\u2029', '\u200b', '\u200d', '\ufeff', '\u00ad', '\u{e0041}', '\ud800']) {
      assert.ok(!shown.includes(char), `${JSON.stringify(char)} in ${JSON.stringify(shown)}`);
    }
    assert.ok(shown.endsWith('status=ok\\u202edeliaf\\u2066x\\u2069\\u2028forged\\u2029\\u200b\\u200d\\ufeff\\u00ad\\udb40\\udc41\\ud800'), shown);
  });
});

describe("npmPrintedHeader: npm's '> package@version script' line went to stdout", () => {
  test('npm run without -s prints it', () => assert.equal(npmPrintedHeader({ npm_lifecycle_event: 'inspect' }), true));
  test('npm run -s does not (npm exports its silent log level)', () =>
    assert.equal(npmPrintedHeader({ npm_lifecycle_event: 'inspect', npm_config_loglevel: 'silent' }), false));
  test('run without npm, there is no header', () => assert.equal(npmPrintedHeader({}), false));
});

describe('npm run bench: its command line', () => {
  /** The command in a process of its own; a run that starts measuring is stopped after 20 s. */
  const bench = (args: readonly string[]) =>
    new Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'bench/run.ts'), ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' }, (error, stdout, stderr) =>
        resolve({ status: error ? ((error as { code?: number }).code ?? null) : 0, signal: (error as { signal?: NodeJS.Signals } | null)?.signal ?? null, stdout, stderr }),
      );
    });

  test('--help prints how to run it and its settings, and measures nothing', async () => {
    const run = await bench(['--help']);
    assert.equal(run.signal, null, `it started measuring: ${run.stderr.slice(0, 300)}`);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^usage: npm run bench/);
    for (const setting of ['BENCH_SECTIONS', 'BENCH_CALLBACKS', 'BENCH_PIPELINE_NODE_ARGS']) assert.match(run.stdout, new RegExp(setting));
    assert.doesNotMatch(run.stderr, /\[bench/, 'no section ran');
  });

  test('a flag or an argument it does not take exits 2, naming it, and measures nothing', async () => {
    const flag = await bench(['--sections', 'sync']);
    const argument = await bench(['sync']);
    assert.equal(flag.signal, null, `it started measuring: ${flag.stderr.slice(0, 300)}`);
    assert.equal(flag.status, 2);
    assert.match(flag.stderr, /--sections/);
    assert.equal(argument.signal, null, `it started measuring: ${argument.stderr.slice(0, 300)}`);
    assert.equal(argument.status, 2);
    assert.match(argument.stderr, /unexpected argument "sync"/);
  });
});

/** The command lines of package.json's scripts that run one of ours: `send` → local/send.ts. */
const COMMANDS: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries((JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts).flatMap(([name, script]) => {
    const file = /^(?:exec )?node --import tsx ((?:local|bench)\/[\w-]+\.ts)$/.exec(script)?.[1];
    return file ? [[name, file]] : [];
  }),
);

/** A command in a process of its own, without a running pipeline; one that starts work anyway is stopped after 20 s. */
function command(name: string, args: readonly string[], nodeOptions: readonly string[] = [], envChanges: Record<string, string | undefined> = {}) {
  return new Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    const env = { ...process.env };
    delete env.CALLBACK_GATEWAY_DATA_DIR;
    for (const [name, value] of Object.entries(envChanges)) {
      if (value === undefined) delete env[name];
      else env[name] = value;
    }
    execFile(process.execPath, ['--import', 'tsx', ...nodeOptions, join(REPO_ROOT, COMMANDS[name]), ...args], { cwd: REPO_ROOT, env, encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' }, (error, stdout, stderr) =>
      resolve({ status: error ? ((error as { code?: number }).code ?? null) : 0, signal: (error as { signal?: NodeJS.Signals } | null)?.signal ?? null, stdout, stderr }),
    );
  });
}

describe('every command: a word it does not take', { timeout: 300_000 }, () => {
  const empty = suiteFolder('cli-stray-');
  /** A command line of each that is right but for the word "stray"; npm start's engines are ones that are not there, so a start that slipped through fails rather than runs. */
  const cases: { name: string; args: string[] }[] = [
    { name: 'start', args: ['stray', '--port', '0', '--data-dir', empty, '--dynamodb-endpoint', 'http://127.0.0.1:9', '--sqs-endpoint', 'http://127.0.0.1:9'] },
    { name: 'send', args: ['telesign', 'sms-dlr-success', 'stray', '--data-dir', empty] },
    { name: 'send', args: ['--list', 'stray'] },
    { name: 'inspect', args: ['telesign', 'A', 'stray', '--data-dir', empty] },
    { name: 'inspect', args: ['--recent', '5', 'stray', '--data-dir', empty] },
    { name: 'inspect', args: ['--stale', 'stray', '--data-dir', empty] },
    { name: 'expect', args: ['temboplus', 'REF-1', 'stray', '--data-dir', empty] },
    { name: 'events', args: ['stray', '--data-dir', empty] },
    { name: 'redrive', args: ['stray', '--dry-run', '--data-dir', empty] },
    { name: 'reprocess', args: ['stray', '--dry-run', '--data-dir', empty] },
    { name: 'bench', args: ['stray'] },
  ];

  test('the cases cover every command of package.json', () => {
    assert.deepEqual([...new Set(cases.map((each) => each.name))].sort(), Object.keys(COMMANDS).sort());
  });

  for (const { name, args } of cases) {
    const shown = args.join(' ').replace(` --data-dir ${empty}`, '').replace(/ --port .*/, '');
    test(`${name} ${shown}: exit 2, "unexpected argument", the usage, nothing on stdout, nothing done`, async () => {
      // act
      const run = await command(name, args);
      // assess
      assert.equal(run.signal, null, `it went on: ${run.stderr.slice(0, 300)}`);
      assert.equal(run.status, 2, `exit ${run.status}: ${run.stderr.slice(0, 300)}`);
      assert.ok(run.stderr.startsWith('unexpected argument "stray"\n\nusage: '), run.stderr.slice(0, 300));
      assert.equal(run.stdout, '');
    });
  }
});

describe("a command's flag written before `--`: npm keeps it, and the command refuses to run without it", { timeout: 300_000 }, () => {
  const empty = suiteFolder('cli-npm-took-');

  test('flagsNpmTook: the flags npm exported as its own settings, under npm only, --help aside', () => {
    const options = { 'dry-run': { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean' }, max: { type: 'string' } } as const;
    assert.deepEqual(flagsNpmTook(options, { npm_lifecycle_event: 'redrive', npm_config_dry_run: 'true', npm_config_json: 'true', npm_config_help: 'true' }), ['--dry-run', '--json']);
    assert.deepEqual(flagsNpmTook(options, { npm_config_dry_run: 'true' }), [], 'not run by npm');
    assert.deepEqual(flagsNpmTook(options, { npm_lifecycle_event: 'redrive', npm_config_max: '' }), [], 'an npm setting left empty is no flag given');
  });

  test('flagsNpmTook: a flag the command was given after `--` is not one npm kept, whatever npm exported (json=true in an .npmrc)', () => {
    const options = { json: { type: 'boolean' }, 'dry-run': { type: 'boolean' }, help: { type: 'boolean' } } as const;
    const env = { npm_lifecycle_event: 'redrive', npm_config_json: 'true', npm_config_dry_run: 'true' };
    assert.deepEqual(flagsNpmTook(options, env, { json: true, 'dry-run': false }), ['--dry-run']);
    assert.deepEqual(flagsNpmTook(options, env, { json: true, 'dry-run': true }), []);
  });

  test('npm run send -- --list --json, with json=true in an .npmrc: the command got --json and lists as JSON (it was refused, its advice the very command line given)', async () => {
    // act: npm exports its json setting; the command's own --json arrives after `--`
    const run = await command('send', ['--list', '--json'], [], { npm_lifecycle_event: 'send', npm_config_json: 'true' });
    // assess
    assert.equal(run.status, 0, run.stderr.slice(0, 300));
    assert.doesNotThrow(() => JSON.parse(run.stdout), `one JSON document on stdout: ${run.stdout.slice(0, 300)}`);
  });

  test('npm run redrive --dry-run: exit 2 naming the flag and the command line that passes it; nothing moved, nothing on stdout', async () => {
    // act: as npm runs it: the flag in npm's environment, not in the command's arguments
    const run = await command('redrive', ['--data-dir', empty], [], { npm_lifecycle_event: 'redrive', npm_config_dry_run: 'true' });
    // assess: refused before it looks for a pipeline (a real move would have followed)
    assert.equal(run.status, 2, run.stderr.slice(0, 300));
    assert.ok(run.stderr.startsWith('npm took --dry-run for its own setting'), run.stderr.slice(0, 300));
    assert.match(run.stderr, /write npm run redrive -- --dry-run/);
    assert.equal(run.stdout, '');
  });

  test('flagsNpmTook: a value flag written `--name=value` before `--`, which npm exports with its value', () => {
    const options = { max: { type: 'string' }, 'data-dir': { type: 'string' }, json: { type: 'boolean' } } as const;
    assert.deepEqual(flagsNpmTook(options, { npm_lifecycle_event: 'redrive', npm_config_max: '5', npm_config_data_dir: 'demo-data' }), ['--max', '--data-dir']);
    assert.deepEqual(flagsNpmTook(options, { npm_lifecycle_event: 'redrive', npm_config_json: 'yes' }), [], 'a boolean npm setting is taken only as npm writes a flag: true');
  });

  test('npm run redrive --max=5: exit 2 naming --max, instead of a redrive without its limit', async () => {
    // act: npm keeps `--max=5` as its setting max, exported with its value
    const run = await command('redrive', ['--data-dir', empty], [], { npm_lifecycle_event: 'redrive', npm_config_max: '5' });
    // assess
    assert.equal(run.status, 2, run.stderr.slice(0, 300));
    assert.ok(run.stderr.startsWith('npm took --max for its own setting'), run.stderr.slice(0, 300));
    assert.equal(run.stdout, '');
  });

  test("npm run redrive --max=5 as npm really runs it: npm expands --max to its own maxsockets, and the command refuses (it moved every message)", async () => {
    // prepare: a project whose script hands back the environment npm gives a command; an .npmrc
    // setting maxsockets in the second, as a user with a slow network may have
    const options = { max: { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean' } } as const;
    const npmEnv = async (flags: readonly string[], npmrc?: string) => {
      const project = mkdtempSync(join(empty, 'npm-'));
      writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'probe', version: '1.0.0', scripts: { redrive: 'node -e "process.stdout.write(JSON.stringify(process.env))"' } }));
      if (npmrc !== undefined) writeFileSync(join(project, '.npmrc'), npmrc);
      // npm's user and global config files are the project's own (absent): a maxsockets in the
      // machine's ~/.npmrc would otherwise be what npm exports, and each case would read it.
      const env = {
        ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name))),
        npm_config_userconfig: join(project, 'user.npmrc'),
        npm_config_globalconfig: join(project, 'global.npmrc'),
      };
      const stdout = await new Promise<string>((resolve, reject) =>
        execFile('npm', ['run', '--silent', 'redrive', ...flags], { cwd: project, env, encoding: 'utf8', timeout: 60_000 }, (error, out) => (error ? reject(error) : resolve(out))),
      );
      return JSON.parse(stdout) as NodeJS.ProcessEnv;
    };
    // act
    const [written, writtenApart, none, npmrcOnly, overNpmrc] = await Promise.all([
      npmEnv(['--max=5']),
      npmEnv(['--max', '5']),
      npmEnv([]),
      npmEnv([], 'maxsockets = 3\n'),
      npmEnv(['--max=5'], 'maxsockets = 3\n'),
    ]);
    // assess
    assert.deepEqual(flagsNpmTook(options, written), ['--max']);
    assert.deepEqual(flagsNpmTook(options, writtenApart), ['--max']);
    assert.deepEqual(flagsNpmTook(options, none), []);
    assert.deepEqual(flagsNpmTook(options, npmrcOnly), [], "an .npmrc's maxsockets is no --max");
    assert.deepEqual(flagsNpmTook(options, overNpmrc), ['--max']);
    assert.deepEqual(flagsNpmTook(options, written, { max: '5' }), [], 'a --max given after -- as well');
  });

  test('npm start --fresh: exit 2 naming `npm start -- --fresh`, instead of starting on the old data', async () => {
    // act
    const run = await command('start', ['--port', '0', '--data-dir', empty, '--dynamodb-endpoint', 'http://127.0.0.1:9', '--sqs-endpoint', 'http://127.0.0.1:9'], [], { npm_lifecycle_event: 'start', npm_config_fresh: 'true' });
    // assess
    assert.equal(run.signal, null, `it went on: ${run.stderr.slice(0, 300)}`);
    assert.equal(run.status, 2, run.stderr.slice(0, 300));
    assert.match(run.stderr, /^npm took --fresh for its own setting .*write npm start -- --fresh/);
  });

  test('flagsNpmTook: a short alias npm reads as one of its own (-f: force), unless an .npmrc set that setting', () => {
    const options = { follow: { type: 'boolean', short: 'f' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;
    const npmrc = (text: string) => {
      const project = mkdtempSync(join(empty, 'npmrc-'));
      writeFileSync(join(project, '.npmrc'), text);
      return project;
    };
    const env = { npm_lifecycle_event: 'events', npm_config_force: 'true', npm_config_userconfig: join(empty, 'no-user-npmrc'), npm_config_globalconfig: join(empty, 'no-global-npmrc') };
    assert.deepEqual(flagsNpmTook(options, { ...env, npm_config_local_prefix: npmrc('') }), ['-f']);
    assert.deepEqual(flagsNpmTook(options, { ...env, npm_config_local_prefix: npmrc('') }, { follow: true }), [], '-f given after -- as well');
    assert.deepEqual(flagsNpmTook(options, { ...env, npm_config_local_prefix: npmrc('force = true\n') }), [], "an .npmrc's force is no -f");
    assert.deepEqual(flagsNpmTook(options, { ...env, npm_config_local_prefix: npmrc('force\n') }), [], 'an .npmrc key alone is true');
    assert.deepEqual(flagsNpmTook(options, { ...env, npm_config_local_prefix: npmrc('force=false\n') }), ['-f'], 'npm exported true, not the false of the .npmrc');
    assert.deepEqual(flagsNpmTook(options, { ...env, npm_config_force: undefined, npm_config_help: 'true' }), []);
  });

  test('npm run events -f: exit 2 naming -f and `npm run events -- -f`, instead of printing once and stopping', async () => {
    // act: npm reads -f as its own force, exported; the command gets no -f
    const run = await command('events', ['--data-dir', empty], [], { npm_lifecycle_event: 'events', npm_config_force: 'true', npm_config_local_prefix: empty, npm_config_userconfig: join(empty, 'none'), npm_config_globalconfig: join(empty, 'none') });
    // assess
    assert.equal(run.signal, null, `it went on: ${run.stderr.slice(0, 300)}`);
    assert.equal(run.status, 2, run.stderr.slice(0, 300));
    assert.match(run.stderr, /^npm took -f for its own setting .*write npm run events -- -f …/);
    assert.equal(run.stdout, '');
  });

  test('every flag and short alias of every command, written before `--` as real npm reads it, is refused; --help and -h npm answers itself', async () => {
    // prepare: each command's options (as it gives them to parseArgs), and a project whose scripts,
    // named as ours, hand back the environment and arguments npm gives a command
    const probed = await Promise.all(
      Object.keys(COMMANDS).map(async (name) => {
        const run = await command(name, ['--help'], ['--import', join(REPO_ROOT, 'test/support/cli-options-probe.ts')]);
        const line = run.stderr.split('\n').find((each) => each.startsWith(OPTIONS_PROBE_MARKER));
        assert.ok(line, run.stderr);
        return [name, JSON.parse(line.slice(OPTIONS_PROBE_MARKER.length)) as Record<string, { type: 'string' | 'boolean'; short?: string }>] as const;
      }),
    );
    const project = mkdtempSync(join(empty, 'npm-all-'));
    const script = 'node -e "process.stdout.write(JSON.stringify({ env: process.env, args: process.argv.slice(1) }))"';
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'probe', version: '1.0.0', scripts: Object.fromEntries(Object.keys(COMMANDS).map((name) => [name, script])) }));
    // no user or global .npmrc: one of this machine that set force (or maxsockets) would be read as the flag's source
    const env = { ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name))), npm_config_userconfig: join(empty, 'no-user-npmrc'), npm_config_globalconfig: join(empty, 'no-global-npmrc') };
    const npmRun = (name: string, flags: readonly string[]) =>
      new Promise<string>((resolve, reject) =>
        execFile('npm', ['run', '--silent', name, ...flags], { cwd: project, env, encoding: 'utf8', timeout: 60_000 }, (error, out) => (error ? reject(error) : resolve(out))),
      );
    // every way of writing each flag: a value flag `--name=7` and `--name 7`, a boolean `--name`, a short `-x`
    const cases = probed.flatMap(([name, options]) =>
      Object.entries(options).flatMap(([option, { type, short }]) => {
        const long = type === 'string' ? [[`--${option}=7`], [`--${option}`, '7']] : [[`--${option}`]];
        return [...long, ...(short ? [[`-${short}`]] : [])].map((flags) => ({ name, options, option, flags }));
      }),
    );
    // act: a few npm runs at a time
    const outcomes: { name: string; flags: string[]; option: string; out: string }[] = [];
    const queue = [...cases];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let next = queue.shift(); next; next = queue.shift()) outcomes.push({ ...next, out: await npmRun(next.name, next.flags) });
      }),
    );
    // assess
    assert.ok(outcomes.some(({ flags }) => flags[0] === '-f'), 'events -f is one of the cases');
    const missed = outcomes.flatMap(({ name, flags, option, out }) => {
      const options = probed.find(([each]) => each === name)![1];
      if (option === 'help') return out.startsWith('{') ? [`npm run ${name} ${flags.join(' ')}: the command ran`] : [];
      const { env: got } = JSON.parse(out) as { env: NodeJS.ProcessEnv };
      return flagsNpmTook(options, got).length === 1 ? [] : [`npm run ${name} ${flags.join(' ')}: ${JSON.stringify(flagsNpmTook(options, got))}`];
    });
    assert.deepEqual(missed, []);
    // an .npmrc setting force (or loglevel) is exported on every run, and is no -f
    writeFileSync(join(project, '.npmrc'), 'force = true\nloglevel = warn\n');
    const { env: npmrcOnly } = JSON.parse(await npmRun('events', [])) as { env: NodeJS.ProcessEnv };
    assert.equal(npmrcOnly.npm_config_force, 'true');
    assert.deepEqual(flagsNpmTook(probed.find(([each]) => each === 'events')![1], npmrcOnly), []);
  });
});

describe('npm run synth / deploy with a cdk option written before `--`: npm keeps it, and the app refuses to synthesize without it', { timeout: 300_000 }, () => {
  const empty = suiteFolder('cli-cdk-npm-took-');

  test('cdkOptionsNpmTook, on the environment real npm gives the scripts: --context=stage=prod, --profile=prod, --no-rollback, --hotswap are named; npm run deploy -- … and npm own flags are not', async () => {
    // prepare: a project whose synth and deploy hand back the environment npm gives a command
    const project = mkdtempSync(join(empty, 'npm-'));
    // (its own `--` keeps node from reading the arguments npm passes on as node's options)
    const script = 'node -e "process.stdout.write(JSON.stringify(process.env))" --';
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'probe', version: '1.0.0', scripts: { synth: script, deploy: script } }));
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
    const npmEnv = (args: readonly string[]) =>
      new Promise<NodeJS.ProcessEnv>((resolve, reject) =>
        execFile('npm', ['run', '--silent', ...args], { cwd: project, env, encoding: 'utf8', timeout: 60_000 }, (error, out) => (error ? reject(error) : resolve(JSON.parse(out) as NodeJS.ProcessEnv))),
      );
    // act
    const [call, context, profile, noRollback, hotswap, synthContext, afterDashes, npmOwn] = await Promise.all([
      npmEnv(['deploy', '-c', 'stage=prod']),
      npmEnv(['deploy', '--context=stage=prod']),
      npmEnv(['deploy', '--profile=prod']),
      npmEnv(['deploy', '--no-rollback']),
      npmEnv(['deploy', '--hotswap']),
      npmEnv(['synth', '--context=stage=prod']),
      npmEnv(['deploy', '--', '--context=stage=prod', '--profile=prod']),
      npmEnv(['deploy', '--force', '--json']),
    ]);
    // assess
    assert.match(cdkOptionsNpmTook(call) ?? '', /^npm took -c stage=prod for its own setting .*: write npm run deploy -- -c stage=prod … \(an npm_config_ variable of that name in the environment is read the same way: unset it, or run npx cdk deploy …\)$/);
    assert.match(cdkOptionsNpmTook(context) ?? '', /^npm took --context for its own setting .*: write npm run deploy -- --context … \(an npm_config_ variable/);
    assert.match(cdkOptionsNpmTook(profile) ?? '', /^npm took --profile /);
    assert.match(cdkOptionsNpmTook(noRollback) ?? '', /^npm took --rollback /);
    assert.match(cdkOptionsNpmTook(hotswap) ?? '', /^npm took --hotswap /);
    assert.match(cdkOptionsNpmTook(synthContext) ?? '', /write npm run synth -- --context … \(an npm_config_ variable/);
    assert.equal(cdkOptionsNpmTook(afterDashes), undefined);
    assert.equal(cdkOptionsNpmTook(npmOwn), undefined, "npm's own settings (force, json) are cdk's too, and an .npmrc may set them");
    assert.equal(cdkOptionsNpmTook({ ...context, npm_lifecycle_event: 'npx' }), undefined, 'npx cdk is given its options whole');
  });

  test("cdkOptionsNpmTook: a setting an .npmrc gives a cdk option's name (debug = true, read by node-gyp) is no option npm took: npm run deploy -- --context=stage=prod is not refused", async () => {
    // prepare: a project whose .npmrc sets debug (npm exports a setting it does not know too)
    const project = mkdtempSync(join(empty, 'npmrc-'));
    const script = 'node -e "process.stdout.write(JSON.stringify(process.env))" --';
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'probe', version: '1.0.0', scripts: { deploy: script } }));
    writeFileSync(join(project, '.npmrc'), 'debug = true\n');
    // (no user or global .npmrc of the machine it runs on)
    const env = { ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name))), npm_config_userconfig: join(project, 'no-user-npmrc'), npm_config_globalconfig: join(project, 'no-global-npmrc') };
    const npmEnv = (args: readonly string[]) =>
      new Promise<NodeJS.ProcessEnv>((resolve, reject) =>
        execFile('npm', ['run', '--silent', ...args], { cwd: project, env, encoding: 'utf8', timeout: 60_000 }, (error, out) => (error ? reject(error) : resolve(JSON.parse(out) as NodeJS.ProcessEnv))),
      );
    // act
    const [npmrcOnly, onTheCommandLine] = await Promise.all([npmEnv(['deploy', '--', '--context=stage=prod']), npmEnv(['deploy', '--debug=false'])]);
    // assess
    assert.equal(npmrcOnly.npm_config_debug, 'true');
    assert.equal(cdkOptionsNpmTook(npmrcOnly), undefined);
    assert.match(cdkOptionsNpmTook(onTheCommandLine) ?? '', /^npm took --debug /, 'a value other than the .npmrc\'s is the command line\'s');
  });

  test('npm run synth --context=stage=prod: the app exits 1 naming --context, and synthesizes nothing (it synthesized the default stack CallbackGateway)', async () => {
    // act: the app as cdk runs it under `npm run synth`, with the option npm kept in its environment
    const out = mkdtempSync(join(empty, 'cdk-out-'));
    const run = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const env = { ...process.env, npm_lifecycle_event: 'synth', npm_config_context: 'stage=prod', CDK_OUTDIR: out };
      execFile(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'bin/app.ts')], { cwd: REPO_ROOT, env, encoding: 'utf8', timeout: 240_000 }, (error, _stdout, stderr) =>
        resolve({ status: error ? ((error as { code?: number }).code ?? null) : 0, stderr }),
      );
    });
    // assess
    assert.equal(run.status, 1, run.stderr.slice(0, 300));
    assert.match(run.stderr, /^Error: npm took --context for its own setting .*write npm run synth -- --context …/);
    assert.deepEqual(readdirSync(out), []);
  });

  test('npm run synth -c stage=prod, as real npm and cdk run it: cdk fails naming -c stage=prod and the line that passes it (npx, running the app, took -c for its own --call and printed its usage)', async () => {
    // act: the project's own synth script, -c written before `--`
    const out = mkdtempSync(join(empty, 'cdk-out-'));
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
    const run = await new Promise<{ status: number | null; stderr: string }>((resolve) =>
      execFile('npm', ['run', '--silent', 'synth', '-c', 'stage=prod', '--', '-q', '-o', out], { cwd: REPO_ROOT, env, encoding: 'utf8', timeout: 240_000 }, (error, _stdout, stderr) =>
        resolve({ status: error ? ((error as { code?: number }).code ?? null) : 0, stderr }),
      ),
    );
    // assess
    assert.notEqual(run.status, 0, run.stderr.slice(0, 300));
    assert.match(run.stderr, /Error: npm took -c stage=prod for its own setting \(written before `--`\), so cdk never got it: write npm run synth -- -c stage=prod …/);
    assert.deepEqual(readdirSync(out).filter((name) => name.endsWith('.template.json')), []);
  });
});

describe('the docs: every command line passes only flags the command takes', { timeout: 300_000 }, () => {
  // README.md, bench/README.md and the alarm descriptions in lib/ (the runbook a page links to):
  // a misspelt flag there is one a user copies onto a deployed stack.
  const DOCS = ['README.md', 'bench/README.md', ...readdirSync(join(REPO_ROOT, 'lib')).filter((name) => name.endsWith('.ts')).map((name) => `lib/${name}`)];

  /** `npm run [-s] <command> -- <flags…>` in a text: its command and the flags after `--` (`[--provider P]` read as `--provider P`). */
  function commandLines(text: string): { name: string; flags: string[]; line: string }[] {
    // A command line broken over two lines of a paragraph, or continued with a backslash.
    const joined = text.replace(/\\\n\s*/g, ' ').replace(/ --\n\s*/g, ' -- ');
    return [...joined.matchAll(/npm run (?:-s )?([\w:-]+) -- ([^`#()|;\n]*)/g)].map(([line, name, rest]) => ({
      name,
      line: line.trim(),
      flags: rest
        .replace(/[[\]]/g, ' ')
        .split(/\s+/)
        .filter((word) => /^--?[A-Za-z]/.test(word))
        .map((word) => word.replace(/=.*$/, '')),
    }));
  }

  test('each flag is one of the options the command gives parseArgs', async () => {
    const lines = DOCS.flatMap((file) => commandLines(readFileSync(join(REPO_ROOT, file), 'utf8')).map((each) => ({ ...each, file })));
    // prepare: the options of each command named (its --help run with the probe)
    const names = [...new Set(lines.map(({ name }) => name))].filter((name) => name in COMMANDS);
    assert.ok(['inspect', 'expect', 'redrive', 'reprocess'].every((name) => names.includes(name)), names.join(', '));
    const accepted = new Map<string, Set<string>>();
    for (const name of names) {
      const run = await command(name, ['--help'], ['--import', join(REPO_ROOT, 'test/support/cli-options-probe.ts')]);
      const probed = run.stderr.split('\n').find((line) => line.startsWith(OPTIONS_PROBE_MARKER));
      assert.ok(probed, run.stderr);
      const options = JSON.parse(probed.slice(OPTIONS_PROBE_MARKER.length)) as Record<string, { short?: string }>;
      accepted.set(name, new Set(Object.entries(options).flatMap(([option, { short }]) => [`--${option}`, ...(short ? [`-${short}`] : [])])));
    }
    // assess
    const refused = lines
      .filter(({ name }) => accepted.has(name))
      .flatMap(({ name, flags, line, file }) => flags.filter((flag) => !accepted.get(name)!.has(flag)).map((flag) => `${file}: ${flag} in ${line}`));
    assert.ok(lines.length > 30, `${lines.length} command lines found`);
    assert.deepEqual(refused, []);
  });
});

describe('every command: its --help names every option it takes', { timeout: 300_000 }, () => {
  for (const name of Object.keys(COMMANDS)) {
    test(`npm run ${name} -- --help`, async () => {
      // act: the command's --help, with the options it gave parseArgs (what it accepts)
      const run = await command(name, ['--help'], ['--import', join(REPO_ROOT, 'test/support/cli-options-probe.ts')]);
      // assess
      assert.equal(run.status, 0, run.stderr);
      const probed = run.stderr.split('\n').filter((line) => line.startsWith(OPTIONS_PROBE_MARKER));
      assert.equal(probed.length, 1, run.stderr);
      const options = JSON.parse(probed[0].slice(OPTIONS_PROBE_MARKER.length)) as Record<string, { short?: string }>;
      // --help itself is how the text was printed.
      const missing = Object.entries(options)
        .filter(([option]) => option !== 'help')
        .flatMap(([option, { short }]) => [`--${option}`, ...(short ? [`-${short}`] : [])])
        .filter((flag) => !new RegExp(`(?<![\\w-])${flag}(?![\\w-])`).test(run.stdout));
      assert.deepEqual(missing, [], `accepted, not in --help:\n${run.stdout}`);
    });
  }
});

describe('npm run reprocess --secret: only a secret it reads, only on AWS', { timeout: 300_000 }, () => {
  const empty = suiteFolder('cli-reprocess-secret-');
  const deployed = ['--table', 'callbacks', '--queue-url', 'http://127.0.0.1:9/000000000000/callbacks', '--region', 'us-east-1', '--dry-run'];
  const cases: { args: string[]; refusal: RegExp }[] = [
    // Locally the worker reads the pipeline's secrets file: another secret would make the check say what the worker will not do.
    { args: ['--secret', 'standard-webhooks=other', '--dry-run', '--data-dir', empty], refusal: /^--secret is for a deployed stack: locally the pipeline's own secrets file is read\n/ },
    // TeleSign's callbacks read the same with or without its secret: reading it would only ask for a permission.
    { args: ['--secret', 'telesign=TelesignSecret', ...deployed], refusal: /^--secret telesign: only the secrets of relid, standard-webhooks change how a callback reads\n/ },
    { args: ['--secret', 'relid', ...deployed], refusal: /^--secret takes P=NAME \(the stack output <P>SecretName\), got "relid"\n/ },
    { args: ['--secret', 'relid=', ...deployed], refusal: /^--secret takes P=NAME/ },
  ];
  for (const { args, refusal } of cases) {
    test(`${args.slice(0, 2).join(' ')}${args.includes('--table') ? ' (deployed)' : ' (local)'}: exit 2, the reason and the usage, nothing read or printed on stdout`, async () => {
      // act
      const run = await command('reprocess', args);
      // assess
      assert.equal(run.signal, null, `it went on: ${run.stderr.slice(0, 300)}`);
      assert.equal(run.status, 2, run.stderr.slice(0, 300));
      assert.match(run.stderr, refusal);
      assert.match(run.stderr, /\n\nusage: npm run reprocess/);
      assert.equal(run.stdout, '');
    });
  }
});

describe('npm start --simulators without --secrets', { timeout: 300_000 }, () => {
  const empty = suiteFolder('cli-simulators-');

  test('exit 2 before anything starts, saying it goes with --secrets', async () => {
    // act: engines that are not there, so a start that slipped through fails rather than runs
    const run = await command('start', ['--simulators', '--port', '0', '--data-dir', empty, '--dynamodb-endpoint', 'http://127.0.0.1:9', '--sqs-endpoint', 'http://127.0.0.1:9']);
    // assess
    assert.equal(run.signal, null, run.stderr.slice(0, 300));
    assert.equal(run.status, 2, run.stderr.slice(0, 300));
    assert.match(run.stderr, /^--simulators goes with --secrets FILE/);
    assert.equal(run.stdout, '');
  });
});

describe('npm start with a data folder every user shares', { timeout: 300_000 }, () => {
  const parent = suiteFolder('cli-shared-');

  test("a folder with the sticky bit (a system's temporary folder) is refused, left as it was, even with --fresh", async () => {
    // prepare: a folder shared as a system's temporary folder is (1777), with another's file in it
    const shared = join(parent, 'tmp');
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    writeFileSync(join(shared, 'someone-elses'), 'x');
    // act: engines that are not there, so a start that slipped through fails rather than runs
    const run = await command('start', ['--fresh', '--port', '0', '--data-dir', shared, '--dynamodb-endpoint', 'http://127.0.0.1:9', '--sqs-endpoint', 'http://127.0.0.1:9']);
    // assess
    assert.equal(run.status, 1, run.stderr.slice(0, 300));
    assert.match(run.stderr, /is a folder every user of the machine shares \(its sticky bit is set\).*give a folder of its own/);
    assert.equal((statSync(shared).mode & 0o7777).toString(8), '1777', 'was: made 700 (as root, a temporary folder no other user could use)');
    assert.ok(existsSync(join(shared, 'someone-elses')), '--fresh removed nothing');
  });
});

describe('a deployed stack with no region known: the command says how to give one, before doing anything', { timeout: 300_000 }, () => {
  const noConfig = suiteFolder('cli-no-region-');
  // No region anywhere the SDK looks: neither variable, nor a profile in a config file.
  const noRegion = {
    AWS_REGION: undefined,
    AWS_DEFAULT_REGION: undefined,
    AWS_PROFILE: undefined,
    AWS_CONFIG_FILE: join(noConfig, 'config'),
    AWS_SHARED_CREDENTIALS_FILE: join(noConfig, 'credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  const cases: { name: string; args: string[] }[] = [
    { name: 'inspect', args: ['--stale', '--table', 'callbacks'] },
    { name: 'inspect', args: ['temboplus', 'REF-1', '--table', 'callbacks'] },
    { name: 'expect', args: ['temboplus', 'REF-1', '--table', 'callbacks'] },
    { name: 'redrive', args: ['--dlq-url', 'http://127.0.0.1:9/000000000000/dlq', '--queue-url', 'http://127.0.0.1:9/000000000000/q', '--dry-run'] },
    { name: 'reprocess', args: ['--table', 'callbacks', '--queue-url', 'http://127.0.0.1:9/000000000000/q', '--dry-run'] },
  ];
  for (const { name, args } of cases) {
    test(`${name} ${args.join(' ')}: exit 2, naming --region and AWS_REGION`, async () => {
      // act
      const run = await command(name, args, [], noRegion);
      // assess
      assert.equal(run.signal, null, run.stderr.slice(0, 300));
      assert.equal(run.status, 2, run.stderr.slice(0, 300));
      assert.match(run.stderr, /no AWS region for the deployed stack: pass --region R \(or set AWS_REGION or AWS_DEFAULT_REGION/);
      assert.equal(run.stdout, '');
    });
  }

  test("the AWS CLI's AWS_DEFAULT_REGION is a region given: the command goes on (here, to ask for credentials)", async () => {
    // prepare: a shell set up as the README sets one up for the `aws` commands, and no credentials
    const cliShell = { ...noRegion, AWS_DEFAULT_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, AWS_SESSION_TOKEN: undefined };
    // act
    const inspect = await command('inspect', ['--stale', '--table', 'callbacks'], [], cliShell);
    const redrive = await command('redrive', ['--dlq-url', 'http://127.0.0.1:9/000000000000/dlq', '--queue-url', 'http://127.0.0.1:9/000000000000/q', '--dry-run'], [], cliShell);
    // assess
    for (const run of [inspect, redrive]) {
      assert.doesNotMatch(run.stderr, /no AWS region/, 'was: AWS_DEFAULT_REGION, which the aws CLI reads, was not read');
      assert.match(run.stderr, /^no AWS credentials for the deployed stack/);
      assert.equal(run.status, 1, run.stderr.slice(0, 300));
    }
  });

  test('a region given that the SDK does not take is named as such, not said to be missing', async () => {
    // act: a region mistyped with spaces (or underscores), by flag and by AWS_REGION
    const byFlag = await command('inspect', ['--stale', '--table', 'callbacks', '--region', 'eu west 1'], [], noRegion);
    const byVariable = await command('inspect', ['--stale', '--table', 'callbacks'], [], { ...noRegion, AWS_REGION: 'eu_west_1' });
    // assess
    for (const [run, region] of [[byFlag, 'eu west 1'], [byVariable, 'eu_west_1']] as const) {
      assert.equal(run.status, 2, run.stderr.slice(0, 300));
      assert.doesNotMatch(run.stderr, /no AWS region/, 'was: "no AWS region ...: pass --region R" to a user who had passed one');
      assert.ok(run.stderr.startsWith(`the AWS region is not one the SDK takes (Region not accepted: region="${region}"`), run.stderr.slice(0, 300));
      assert.match(run.stderr, /\): pass --region R with a region's code, such as eu-west-1\n/);
      assert.equal(run.stdout, '');
    }
  });
});

describe('a deployed stack with no AWS credentials: the command says how to give them, before doing anything', { timeout: 300_000 }, () => {
  const noConfig = suiteFolder('cli-no-credentials-');
  // A region, and no credentials anywhere the SDK looks (no variables, no files, no instance metadata).
  const noCredentials = {
    AWS_REGION: 'eu-west-1',
    AWS_DEFAULT_REGION: undefined,
    AWS_PROFILE: undefined,
    AWS_ACCESS_KEY_ID: undefined,
    AWS_SECRET_ACCESS_KEY: undefined,
    AWS_SESSION_TOKEN: undefined,
    AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
    AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
    AWS_CONFIG_FILE: join(noConfig, 'config'),
    AWS_SHARED_CREDENTIALS_FILE: join(noConfig, 'credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  const cases: { name: string; args: string[] }[] = [
    { name: 'inspect', args: ['--stale', '--table', 'callbacks'] },
    { name: 'inspect', args: ['temboplus', 'REF-1', '--table', 'callbacks', '--json'] },
    { name: 'expect', args: ['temboplus', 'REF-1', '--table', 'callbacks'] },
    { name: 'redrive', args: ['--dlq-url', 'http://127.0.0.1:9/000000000000/dlq', '--queue-url', 'http://127.0.0.1:9/000000000000/q', '--dry-run', '--json'] },
    { name: 'reprocess', args: ['--table', 'callbacks', '--queue-url', 'http://127.0.0.1:9/000000000000/q', '--dry-run'] },
  ];
  for (const { name, args } of cases) {
    test(`${name} ${args.join(' ')}: exit 1, naming AWS_PROFILE and aws configure`, async () => {
      // act
      const run = await command(name, args, [], noCredentials);

      // assess: the SDK's words kept, and how to give credentials; with --json, the same as its error
      assert.equal(run.signal, null, run.stderr.slice(0, 300));
      assert.equal(run.status, 1, run.stderr.slice(0, 300));
      assert.match(run.stderr, /^no AWS credentials for the deployed stack \(Could not load credentials from any providers\): set AWS_PROFILE to a profile, or run `aws configure`/);
      if (args.includes('--json')) assert.match((JSON.parse(run.stdout) as { error: string }).error, /^no AWS credentials for the deployed stack/);
      else assert.equal(run.stdout, '');
    });
  }

  const wrongLines: { name: string; args: string[]; says: RegExp }[] = [
    { name: 'expect', args: ['telesign', 'REF-1', '--part', '84901234567', '--table', 'callbacks'], says: /^cannot expect this subject: TeleSign reports no parts of a subject/ },
    { name: 'expect', args: ['temboplus', 'REF-1', '--schedule', 'bogus', '--table', 'callbacks'], says: /^--schedule: "bogus" is not a delay/ },
    { name: 'reprocess', args: ['--table', 'callbacks', '--dry-run'], says: /^--table and --queue-url are required for a deployed stack/ },
  ];
  for (const { name, args, says } of wrongLines) {
    test(`${name} ${args.join(' ')}: a wrong command line is refused (exit 2) before credentials are looked for`, async () => {
      // act
      const run = await command(name, args, [], noCredentials);
      // assess: the refusal, not "no AWS credentials" (exit 1), which sent the user to set them up first
      assert.equal(run.status, 2, run.stderr.slice(0, 300));
      assert.match(run.stderr, says);
      assert.equal(run.stdout, '');
    });
  }
});

describe('npm run events -- --follow stops when npm alone is told to stop', { timeout: 300_000 }, () => {
  const dataDir = suiteFolder('cli-events-follow-');

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    test(`a ${signal} to npm's own pid (a process manager, an IDE's stop button) ends the follower`, async () => {
      // prepare: a follower under npm, as the README runs it
      const child = spawn('npm', ['run', '-s', 'events', '--', '--follow', '--data-dir', dataDir], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      const followers = () => readdirSync('/proc').filter((pid) => /^\d+$/.test(pid)).filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`local/events.ts\0--follow\0--data-dir\0${dataDir}`);
        } catch {
          return false;
        }
      });
      for (let waited = 0; !stderr.includes('following') && waited < 20_000; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
      assert.ok(stderr.includes('following'), stderr);

      // act: npm's own pid, not its process group
      process.kill(child.pid!, signal);
      const ended = await Promise.race([exited.then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), 10_000))]);
      for (let waited = 0; followers().length > 0 && waited < 5_000; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
      const left = followers();
      if (!ended) process.kill(-child.pid!, 'SIGKILL');
      for (const pid of left) process.kill(Number(pid), 'SIGKILL');

      // assess: npm ended, and no follower was left behind
      assert.ok(ended, 'npm still running 10 s after the signal');
      assert.deepEqual(left, [], 'a follower left running');
    });
  }
});

describe('npm run send --data-dir DIR with no pipeline running there', { timeout: 300_000 }, () => {
  const empty = suiteFolder('cli-send-dir-');

  /** An HTTP listener on a free port that answers 200 and counts the requests that reach it. */
  async function countingListener() {
    const { createServer } = await import('node:http');
    let count = 0;
    const server = createServer((request, response) => {
      count += 1;
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"received":true}');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return { server, port: (server.address() as { port: number }).port, received: () => count };
  }

  test('exit 1 naming the folder; nothing sent to the port another pipeline (the default folder\'s) listens on', async () => {
    // prepare: a listener where send falls back to without a pipeline (PORT), counting what reaches it
    const { server, port, received } = await countingListener();
    try {
      // act
      const run = await command('send', ['telesign', 'sms-dlr-success', '--data-dir', empty], [], { PORT: String(port) });
      // assess
      assert.equal(run.status, 1, run.stderr.slice(0, 300));
      assert.equal(received(), 0, 'sent to another pipeline');
      assert.ok(run.stderr.startsWith(`no local pipeline is running with the data folder ${empty}`), run.stderr.slice(0, 300));
      assert.equal(run.stdout, '');
    } finally {
      server.close();
    }
  });

  test('CALLBACK_GATEWAY_DATA_DIR=DIR npm run send: the folder named the other way is no more a send to port 3000', async () => {
    // prepare: a listener where send falls back to without a pipeline (PORT), counting what reaches it
    const { server, port, received } = await countingListener();
    try {
      // act
      const run = await command('send', ['telesign', 'sms-dlr-success'], [], { PORT: String(port), CALLBACK_GATEWAY_DATA_DIR: empty });
      // assess
      assert.equal(run.status, 1, run.stderr.slice(0, 300));
      assert.equal(received(), 0, 'sent to another pipeline');
      assert.ok(run.stderr.startsWith(`no local pipeline is running with the data folder ${empty}`), run.stderr.slice(0, 300));
    } finally {
      server.close();
    }
  });
});

describe('npm run send: no phone number in full in what it prints', { timeout: 300_000 }, () => {
  // eSMS callbacks name their recipient in the query (`phonenumber`), which send shows as the request line.
  const withRecipient = listSamples('esms').filter((sample) => new URLSearchParams(sample.query).get('phonenumber'));

  test('there are eSMS samples naming a recipient', () => assert.ok(withRecipient.length > 0));

  for (const sample of withRecipient) {
    test(`esms ${sample.name}: the request line (stderr) and the --json path show the recipient masked, its last three digits`, async () => {
      // prepare
      const recipient = new URLSearchParams(sample.query).get('phonenumber')!;
      // act: an API that is not there (the request line is printed before it is sent)
      const run = await command('send', ['esms', sample.name, '--url', 'http://127.0.0.1:9', '--json']);
      // assess
      assert.equal(run.status, 1, run.stderr);
      assert.match(run.stderr, /^→ GET http:\/\/127\.0\.0\.1:9\/callbacks\/esms\//m);
      assert.ok(!leaks(run.stderr, recipient), `stderr:\n${run.stderr}`);
      assert.ok(run.stderr.includes(`phonenumber=${'*'.repeat(recipient.length - 3)}${recipient.slice(-3)}`), run.stderr);
      const report = JSON.parse(run.stdout) as { requests: { path: string }[] };
      assert.ok(!leaks(report.requests[0].path, recipient), report.requests[0].path);
    });
  }

  test('--json names the recipient (subject.part) masked, as inspect does; --show-sensitive prints it in full', async () => {
    // prepare
    const [sample] = withRecipient;
    const recipient = new URLSearchParams(sample.query).get('phonenumber')!;
    // act
    const masked = await command('send', ['esms', sample.name, '--url', 'http://127.0.0.1:9', '--json']);
    const shown = await command('send', ['esms', sample.name, '--url', 'http://127.0.0.1:9', '--json', '--show-sensitive']);
    // assess
    assert.ok(!leaks(masked.stdout, recipient), `stdout:\n${masked.stdout}`);
    assert.equal((JSON.parse(masked.stdout) as { subject: { part?: string } }).subject.part, `${'*'.repeat(recipient.length - 3)}${recipient.slice(-3)}`);
    const report = JSON.parse(shown.stdout) as { subject: { part?: string }; requests: { path: string }[] };
    assert.equal(report.subject.part, recipient);
    assert.ok(report.requests[0].path.includes(`phonenumber=${recipient}`), report.requests[0].path);
  });
});

describe('npm run send: a simulated status endpoint that does not answer', { timeout: 300_000 }, () => {
  // A runtime.json of a running pipeline (this process stands in for it) naming a simulated status
  // endpoint and an API nobody answers on.
  const dataDir = suiteFolder('cli-send-gone-');
  const gone = 'http://127.0.0.1:9';

  test('one line saying what it could not reach and that npm start may not be running; exit 1; --json still prints its document', async () => {
    // prepare
    const runtime = {
      pid: process.pid,
      baseUrl: gone,
      dynamodbEndpoint: gone,
      sqsEndpoint: gone,
      tableName: 'callback-gateway',
      simulators: { telesign: gone },
      devSecrets: true,
      reconcile: { intervalsSeconds: [60] },
      smsRelay: null,
    };
    writeFileSync(join(dataDir, 'runtime.json'), JSON.stringify(runtime));
    // act
    const text = await command('send', ['telesign', 'sms-dlr-success', '--data-dir', dataDir]);
    const json = await command('send', ['telesign', 'sms-dlr-success', '--data-dir', dataDir, '--json']);
    // assess
    for (const run of [text, json]) {
      assert.equal(run.signal, null, run.stderr);
      assert.equal(run.status, 1, run.stderr);
      assert.doesNotMatch(run.stderr, /^\s+at |node:internal|triggerUncaughtException|TypeError/m, `a stack trace:\n${run.stderr}`);
      const reached = run.stderr.split('\n').filter((line) => line.startsWith('✗ '));
      assert.equal(reached.length, 1, run.stderr);
      assert.match(reached[0], /^✗ cannot reach the simulated TeleSign status endpoint at http:\/\/127\.0\.0\.1:9: .+\. Is `npm start` running\?$/);
    }
    assert.equal(text.stdout, '');
    const report = JSON.parse(json.stdout) as { requests: unknown[]; statusEndpoint: { error?: string }[] };
    assert.deepEqual(report.requests, []);
    assert.equal(report.statusEndpoint.length, 1);
    assert.match(report.statusEndpoint[0].error ?? '', /^cannot reach the simulated TeleSign status endpoint at http:\/\/127\.0\.0\.1:9: /);
  });
});

describe('npm run send: a simulated status endpoint that refuses to be told', { timeout: 300_000 }, () => {
  const dataDir = suiteFolder('cli-send-refused-');

  test('--endpoint-only: not "now reports", but what it did not take and why; exit 1; --json has error', async () => {
    // prepare: a simulated endpoint that answers 403 to the answer it is told (another secret's token)
    const told: string[] = [];
    const simulator = createServer((request, response) => {
      told.push(`${request.method} ${request.url}`);
      response.writeHead(403, { 'content-type': 'application/json' }).end('{"error":"forbidden"}');
    });
    simulator.listen(0, '127.0.0.1');
    await once(simulator, 'listening');
    const simulatorUrl = `http://127.0.0.1:${(simulator.address() as AddressInfo).port}`;
    const gone = 'http://127.0.0.1:9';
    writeFileSync(
      join(dataDir, 'runtime.json'),
      JSON.stringify({ pid: process.pid, baseUrl: gone, dynamodbEndpoint: gone, sqsEndpoint: gone, tableName: 'callback-gateway', simulators: { temboplus: simulatorUrl }, devSecrets: true, reconcile: { intervalsSeconds: [60] }, smsRelay: null }),
    );
    try {
      // act
      const text = await command('send', ['temboplus', 'remittance-completed', '--endpoint-only', '--data-dir', dataDir]);
      const json = await command('send', ['temboplus', 'remittance-completed', '--endpoint-only', '--data-dir', dataDir, '--json']);
      // assess
      assert.ok(told.length >= 2, told.join('\n'));
      for (const run of [text, json]) {
        assert.equal(run.status, 1, run.stderr);
        assert.doesNotMatch(run.stderr, /now reports/);
        assert.match(run.stderr, /^✗ the simulated TemboPlus status endpoint did not take COMPLETED for PARTNER-REF-0001 \(403: the secrets send used are not the ones the pipeline runs with\)$/m);
      }
      const report = JSON.parse(json.stdout) as { statusEndpoint: { statusCode?: number; error?: string }[] };
      assert.equal(report.statusEndpoint.length, 1);
      assert.equal(report.statusEndpoint[0].statusCode, 403);
      assert.match(report.statusEndpoint[0].error ?? '', /did not take COMPLETED/);
    } finally {
      simulator.close();
    }
  });
});

describe('npm run inspect: a filter its view does not read is refused, not ignored', { timeout: 300_000 }, () => {
  const empty = suiteFolder('cli-inspect-filter-');
  // Each was answered with the whole listing (or the subject) as if the filter had been applied.
  const cases: { args: string[]; says: string }[] = [
    { args: ['--stale', '--recent', '5'], says: '--stale and --recent are two listings: give one' },
    { args: ['--stale', '--outcome', 'failed'], says: '--outcome filters --recent N; --stale lists subjects of every outcome' },
    { args: ['telesign', 'A', '--outcome', 'failed'], says: '--outcome filters --recent N, not a subject' },
    { args: ['telesign', 'A', '--provider', 'esms'], says: '--provider filters --recent N and --stale; a subject is named by <provider> <subjectId>' },
  ];
  for (const { args, says } of cases) {
    test(`inspect ${args.join(' ')}: exit 2, "${says}", nothing on stdout, no table looked for`, async () => {
      // act
      const run = await command('inspect', [...args, '--data-dir', empty]);
      // assess
      assert.equal(run.signal, null, run.stderr);
      assert.equal(run.status, 2, `exit ${run.status}: ${run.stderr}`);
      assert.equal(run.stderr.trim(), says);
      assert.equal(run.stdout, '');
    });
  }
});

describe('npm run expect: an eSMS recipient (--part) is masked in what it prints, as inspect shows it', { timeout: 300_000 }, () => {
  const recipient = '84901234567';
  const masked = `${'*'.repeat(recipient.length - 3)}${recipient.slice(-3)}`;

  /** A table that holds nothing and takes what is put (DynamoDB's JSON 1.0), behind the data folder's runtime.json; it keeps the items put. */
  async function emptyTable() {
    const put: Record<string, unknown>[] = [];
    const table = await startAwsJsonService(
      {
        'DynamoDB_20120810.GetItem': () => ({ status: 200, body: {} }),
        'DynamoDB_20120810.PutItem': (input) => (put.push(input.Item as Record<string, unknown>), { status: 200, body: {} }),
      },
      '1.0',
    );
    const dataDir = mkdtempSync(join(tmpdir(), 'cli-expect-part-'));
    writeFileSync(join(dataDir, 'runtime.json'), JSON.stringify({ pid: process.pid, dynamodbEndpoint: table.endpoint, tableName: 'callback-gateway', reconcile: DEFAULT_RECONCILE }));
    return { put, dataDir, stop: async () => (await table.stop(), rmSync(dataDir, { recursive: true, force: true })) };
  }

  test('the line it prints, and --json state.part: the last three digits; the table gets the number whole', async () => {
    // prepare
    const table = await emptyTable();
    try {
      // act
      const text = await command('expect', ['esms', 'SMS-EXPECT-1', '--part', recipient, '--data-dir', table.dataDir]);
      const json = await command('expect', ['esms', 'SMS-EXPECT-2', '--part', recipient, '--json', '--data-dir', table.dataDir]);
      // assess
      assert.equal(text.status, 0, text.stderr);
      assert.ok(!leaks(text.stdout, recipient), text.stdout);
      assert.match(text.stdout, new RegExp(`^expecting esms SMS-EXPECT-1 part ${masked.replaceAll('*', '\\*')}: `));
      assert.equal(json.status, 0, json.stderr);
      assert.ok(!leaks(json.stdout, recipient), json.stdout);
      assert.equal((JSON.parse(json.stdout) as { state: { part: string } }).state.part, masked);
      assert.deepEqual(
        table.put.map((item) => (item.part as { S: string }).S),
        [recipient, recipient],
      );
    } finally {
      await table.stop();
    }
  });

  test('--show-sensitive prints it whole', async () => {
    // prepare
    const table = await emptyTable();
    try {
      // act
      const text = await command('expect', ['esms', 'SMS-EXPECT-3', '--part', recipient, '--show-sensitive', '--data-dir', table.dataDir]);
      const json = await command('expect', ['esms', 'SMS-EXPECT-4', '--part', recipient, '--json', '--show-sensitive', '--data-dir', table.dataDir]);
      // assess
      assert.equal(text.status, 0, text.stderr);
      assert.match(text.stdout, new RegExp(`^expecting esms SMS-EXPECT-3 part ${recipient}: `));
      assert.equal((JSON.parse(json.stdout) as { state: { part: string } }).state.part, recipient);
    } finally {
      await table.stop();
    }
  });
});

describe('a runtime.json whose pipeline is gone (kill -9, a crash) is no running pipeline', { timeout: 300_000 }, () => {
  // npm start removes it when it stops; a kill -9 leaves it behind, naming engines nobody answers on.
  const dataDir = suiteFolder('cli-runtime-gone-');
  const gone = 'http://127.0.0.1:9';
  const cases: { name: string; args: string[] }[] = [
    { name: 'inspect', args: ['--recent', '5'] },
    { name: 'inspect', args: ['telesign', 'A'] },
    { name: 'expect', args: ['temboplus', 'REF-GONE-1'] },
    { name: 'redrive', args: ['--dry-run'] },
    { name: 'reprocess', args: ['--dry-run'] },
  ];
  for (const { name, args } of cases) {
    test(`${name} ${args.join(' ')}: exit 1, "no local pipeline is running", not a connection error to what runtime.json names`, async () => {
      // prepare: the pid of no process
      const runtime = { pid: 2_147_483_646, baseUrl: gone, dynamodbEndpoint: gone, sqsEndpoint: gone, tableName: 'callback-gateway', queueUrl: `${gone}/000000000000/callbacks`, dlqUrl: `${gone}/000000000000/callbacks-dlq`, simulators: {}, smsRelay: null };
      writeFileSync(join(dataDir, 'runtime.json'), JSON.stringify(runtime));
      // act
      const run = await command(name, [...args, '--data-dir', dataDir]);
      // assess
      assert.equal(run.signal, null, run.stderr);
      assert.equal(run.status, 1, run.stderr);
      assert.match(run.stderr, /^no local pipeline is running with the data folder \S+ \(start it with `npm start -- --data-dir \S+`\)/);
      assert.doesNotMatch(run.stderr, /127\.0\.0\.1:9|fetch failed|ECONNREFUSED|bad port/);
    });
  }
});

describe('a runtime.json whose pid another process has since been given is no running pipeline', { timeout: 300_000 }, () => {
  // A pipeline killed outright leaves its runtime.json; its pid is handed to the next process that
  // asks (a container restarted runs the same few pids). npm start refused to start ("a local
  // pipeline (pid N) already uses …; stop it first") and inspect said ECONNREFUSED.
  const dataDir = suiteFolder('cli-runtime-reused-');
  // Started in before(): one started as the file loads outlived a run that filtered these tests out,
  // and held the run open for its two minutes.
  let other: ReturnType<typeof spawn>;
  before(() => {
    other = spawn('sleep', ['120'], { stdio: 'ignore' });
  });
  after(() => other.kill());
  const gone = 'http://127.0.0.1:9';
  const cases: { name: string; args: string[]; said: RegExp }[] = [
    { name: 'inspect', args: ['--recent', '5'], said: /^no local pipeline is running with the data folder \S+ \(start it with `npm start -- --data-dir \S+`\)/ },
    // Its engines are ones that are not there: past the runtime.json check, the start fails on them.
    { name: 'start', args: ['--port', '0', '--dynamodb-endpoint', gone, '--sqs-endpoint', gone], said: /^cannot start the local pipeline: (?!a local pipeline)/ },
  ];
  for (const { name, args, said } of cases) {
    test(`${name}: the process holding the pid started at another time than the pipeline did`, async () => {
      // prepare: the pid of a running process that is not the pipeline, and when the pipeline's started
      const runtime = { pid: other.pid, pidStartTime: '1', baseUrl: gone, dynamodbEndpoint: gone, sqsEndpoint: gone, tableName: 'callback-gateway', queueUrl: `${gone}/000000000000/callbacks`, dlqUrl: `${gone}/000000000000/callbacks-dlq`, simulators: {}, smsRelay: null };
      writeFileSync(join(dataDir, 'runtime.json'), JSON.stringify(runtime));
      // act
      const run = await command(name, [...args, '--data-dir', dataDir]);
      // assess
      assert.equal(run.signal, null, run.stderr);
      assert.equal(run.status, 1, run.stderr);
      assert.match(run.stderr, said);
      assert.doesNotMatch(run.stderr, /already uses/);
    });
  }
});

describe('npm start: a terminal that is gone does not cut its stop short', { timeout: 60_000 }, () => {
  const dir = suiteFolder('cli-hangup-');

  test('lines said once the terminal is gone are dropped: the stop runs to its end', async () => {
    // prepare: a process that stops as npm start does on SIGHUP (a line said, a log line while the
    // batch finishes, "stopped."), whose stdout and stderr lose their reader as a closed window's
    // terminal does (a terminal answers EIO, a pipe EPIPE)
    const stopped = join(dir, 'stopped');
    const script = join(dir, 'stops-on-hangup.mts');
    writeFileSync(
      script,
      [
        `import { writeFileSync } from 'node:fs';`,
        `import { keepOnWhenTheTerminalIsGone, say } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'local/cli-output.ts')).href)};`,
        `keepOnWhenTheTerminalIsGone();`,
        `process.on('SIGHUP', async () => {`,
        `  say('SIGHUP: stopping (HTTP, worker, events, queues, DynamoDB Local)…');`,
        `  await new Promise((resolve) => setTimeout(resolve, 200));`,
        `  process.stdout.write('{"level":"INFO","message":"batch stored"}\\n');`,
        `  await new Promise((resolve) => setTimeout(resolve, 200));`,
        `  say('stopped.');`,
        `  writeFileSync(${JSON.stringify(stopped)}, 'stopped');`,
        `  process.exit(0);`,
        `});`,
        `say('ready');`,
        `setInterval(() => undefined, 1000);`,
      ].join('\n'),
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = once(child, 'exit');
    await once(child.stderr, 'data');
    child.stdout.destroy();
    child.stderr.destroy();
    // act
    child.kill('SIGHUP');
    const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null];
    // assess
    assert.deepEqual({ code, signal }, { code: 0, signal: null });
    assert.equal(readFileSync(stopped, 'utf8'), 'stopped');
  });
});
