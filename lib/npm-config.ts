import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The value npm exported for its setting `key` to the script it runs (`npm_config_<key>`, dashes as underscores). */
export function npmExported(key: string, env: NodeJS.ProcessEnv): string | undefined {
  return env[`npm_config_${key.replaceAll('-', '_')}`];
}

/**
 * The value an .npmrc gives npm's setting `key` (`key = value`, or the key alone, which an .npmrc
 * reads as true), or undefined when none names it. npm's own order: the project's .npmrc, then the
 * user's, then the global one. The app (settings.ts) and the commands (local/cli-args.ts) both tell
 * an .npmrc's setting from a flag npm kept with it.
 */
export function npmrcSetting(key: string, env: NodeJS.ProcessEnv): string | undefined {
  const files = [env.npm_config_local_prefix && join(env.npm_config_local_prefix, '.npmrc'), env.npm_config_userconfig, env.npm_config_globalconfig];
  for (const file of files) {
    if (!file) continue;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const line = text.split(/\r?\n/).find((each) => new RegExp(`^\\s*${key}\\s*(=|$)`).test(each));
    if (line !== undefined) return line.includes('=') ? line.slice(line.indexOf('=') + 1).trim() : 'true';
  }
  return undefined;
}

/** `word` as a POSIX shell reads it back: as it is when it holds nothing the shell treats specially, else single-quoted. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
