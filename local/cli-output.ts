/**
 * Where a command's output goes, so its lines can be piped: the answer (the JSON document of
 * `--json`, the listing or result a user asked for) on stdout; everything said along the way
 * (banners, progress, hints, warnings) on stderr. `npm run -s inspect -- … --json | jq` then reads
 * one JSON document and nothing else.
 */

/** A line said along the way (progress, a hint, a warning): stderr, never mixed into the answer. */
export function say(line: string): void {
  process.stderr.write(`${line}\n`);
}

/**
 * Keep going when the terminal is gone. A closed window hangs up `npm start` (SIGHUP), and from then
 * on every write to the terminal fails (EIO; to a pipe whose reader has ended, EPIPE): unhandled,
 * the first one (the stop's own "stopping…" line) ended the process there, the worker's batch cut
 * short and runtime.json left behind. A line nobody can read is dropped; any other error is thrown.
 */
export function keepOnWhenTheTerminalIsGone(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EIO' && error.code !== 'EPIPE') throw error;
    });
  }
}

/**
 * The one JSON document of `--json`, on stdout. Run through `npm run` without `-s`, npm has already
 * printed its own `> callback-gateway@… script` header on stdout; say so on stderr, since the
 * header is out of the command's reach.
 */
export function printJson(value: unknown): void {
  // A reader that stops early (jq refusing npm's header, `| head`) closes the pipe: that ends the
  // command quietly, as it does any Unix tool, rather than with an EPIPE stack trace.
  process.stdout.once('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(process.exitCode ?? 0);
  });
  if (npmPrintedHeader()) {
    say(`note: npm printed its "> ${process.env.npm_package_name ?? ''}@… ${process.env.npm_lifecycle_event}" header on stdout before this JSON; pipe \`npm run -s ${process.env.npm_lifecycle_event} -- …\` instead`);
  }
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * A command that cannot do its work: the reason on stderr and, with --json, as the document's
 * `error` (every --json command prints one document, a failure's too); exit 1.
 */
export function failed(message: string, json: boolean | undefined): never {
  console.error(message);
  if (json) printJson({ error: message });
  process.exit(1);
}

/** Whether npm ran this command without --silent (it exports its log level only when one was chosen). */
export function npmPrintedHeader(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.npm_lifecycle_event !== undefined && env.npm_config_loglevel !== 'silent';
}

/**
 * Whether to colour what goes to a stream: never when NO_COLOR is set to anything but the empty
 * string (https://no-color.org), never when the stream is not a terminal (a pipe, a file), never on
 * a terminal that says it cannot (TERM=dumb).
 */
export function colorWanted(stream: { readonly isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (!stream.isTTY) return false;
  return env.TERM !== 'dumb';
}

/**
 * Each column of `rows` but the last padded to its longest cell, so a listing's columns line up
 * whatever its data holds (a provider id as long as `standard-webhooks`, a sender's own status).
 */
export function alignColumns(rows: readonly (readonly string[])[]): string[][] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, at) => (at < row.length - 1 ? (widths[at] = Math.max(widths[at] ?? 0, cell.length)) : undefined));
  return rows.map((row) => row.map((cell, at) => (at === row.length - 1 ? cell : cell.padEnd(widths[at]))));
}
