import { syncBuiltinESMExports } from 'node:module';
import util from 'node:util';

/**
 * Loaded with `--import` before a command: every parseArgs call says on stderr, after
 * {@link OPTIONS_PROBE_MARKER}, the options it was given, i.e. the flags the command accepts, so a
 * test can hold them against the command's --help without a copy of either.
 */
export const OPTIONS_PROBE_MARKER = 'cli-options-probe: ';

const parseArgs = util.parseArgs;
util.parseArgs = ((config) => {
  process.stderr.write(`${OPTIONS_PROBE_MARKER}${JSON.stringify(config?.options ?? {})}\n`);
  return parseArgs(config);
}) as typeof parseArgs;
// `import { parseArgs } from 'node:util'` in the command then reads this one.
syncBuiltinESMExports();
