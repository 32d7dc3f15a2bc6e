import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { relative } from 'node:path';
import type { InstructionDetail, StatusChangedDetail } from '../functions/core/publish.ts';
import { DETAIL_TYPES } from '../functions/core/publish.ts';
import { findProvider, providers } from '../functions/providers/index.ts';
import { maskSubjectId } from '../functions/providers/provider.ts';
import { maskEmail, maskPhoneNumber, maskPhoneNumbers, printable } from '../functions/shared/log.ts';
import { checkArguments, dataDirFrom, parseCli, USAGE_EXIT_CODE } from './cli-args.ts';
import { failed, npmPrintedHeader, printJson, say } from './cli-output.ts';
import type { BusEvent } from './event-bus.ts';
import { eventsFilePath } from './events-outlet.ts';
import { onLauncherGone } from './launcher.ts';
import { readRuntimeInfo } from './pipeline.ts';

const USAGE = `usage: npm run events -- [--follow] [--provider P] [--json]

  What the local pipeline published on its event bus (npm start reads the table's stream and
  publishes every status change and every Identomat instruction, as the stack does to EventBridge).

  --follow, -f   keep printing events as they are published (Ctrl-C to stop)
  --provider P   only this provider's events (${providers.map((provider) => provider.id).join(', ')})
  --json         without --follow: one JSON array of {source, detail-type, time, detail}, oldest
                 first; with --follow: one such object per line as they come
  --data-dir DIR the local pipeline's data folder (default: .local-data)

  The events are the output (stdout), one readable line each without --json (phone numbers masked
  as in a log line, in an instruction's destination, a subject id the sender chose or a status; an
  instruction's text and link left out: --json prints each event as published); hints go to stderr.`;

const { values, positionals } = parseCli(
  {
    follow: { type: 'boolean', short: 'f', default: false },
    provider: { type: 'string' },
    json: { type: 'boolean', default: false },
    'data-dir': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  USAGE,
);
// Nothing is read from a bare word (`npm run events identomat` meant --provider): refused, not
// answered with every provider's events as if it had not been given.
checkArguments(positionals, USAGE, []);
const provider = values.provider;
if (provider !== undefined && !providers.some((candidate) => candidate.id === provider)) {
  console.error(`--provider must be one of ${providers.map((candidate) => candidate.id).join(', ')}, got "${provider}"`);
  process.exit(USAGE_EXIT_CODE);
}

const dataDir = dataDirFrom(values['data-dir']);
// The running pipeline says where its bus is; after it stopped, what it published is still there.
const file = readRuntimeInfo(dataDir)?.eventsFile ?? eventsFilePath(dataDir);
const shown = relative(process.cwd(), file).startsWith('..') ? file : relative(process.cwd(), file);

/** A column of fixed width. */
const col = (text: string, width: number) => text.padEnd(width);

/**
 * The provider column's width: the longest id that can be listed (lines are printed as they come,
 * so it cannot be measured on the events), so a subject id starts where the others do whichever
 * provider it is, `standard-webhooks` included.
 */
const PROVIDER_WIDTH = Math.max(...(provider === undefined ? providers.map((each) => each.id) : [provider]).map((id) => id.length));

/** A provider's status, masked as in a log line: some are the sender's own text (a Standard Webhooks type, a TemboPlus statusCode). */
function statusText(status: unknown, outcome: unknown): string {
  return status === null || status === undefined ? String(outcome) : `${maskPhoneNumbers(String(status))} (${String(outcome)})`;
}

/**
 * One readable line: when, what kind, whose, and what changed (instructions: masked, without their
 * content). Its control characters, all the sender's (a status, a subject id), are shown as escapes.
 */
function textLine(event: BusEvent): string {
  const detail = event.detail;
  // A subject id the sender chose (a TemboPlus partnerReference) can hold a phone number: masked as
  // inspect and the log lines mask it; ids the provider makes up stay readable.
  // Each field read as text: a line of an edited file can hold anything where the publisher wrote text.
  const subjectId = maskSubjectId(String(detail.subjectId), findProvider(String(detail.provider)));
  const who = `${col(String(detail.provider), PROVIDER_WIDTH)} ${subjectId}`;
  if (event['detail-type'] === DETAIL_TYPES.instruction) {
    const instruction = detail as InstructionDetail;
    // The destination is someone's phone number or e-mail address: masked, as in a log line.
    const to = instruction.channel === 'sms' ? maskPhoneNumber(String(instruction.destination)) : maskEmail(String(instruction.destination));
    return printable(`${event.time}  ${col('instruction', 11)}  ${who}  ${instruction.kind} by ${instruction.channel} to ${to}  ${instruction.eventId}`);
  }
  const change = detail as StatusChangedDetail;
  const part = change.part === undefined ? '' : ` part ${maskPhoneNumbers(String(change.part))}`;
  const before = change.previous ? statusText(change.previous.status, change.previous.outcome) : 'new';
  const flags = [change.terminal ? 'final' : '', change.confirmation ?? '', change.stale ? 'stale' : ''].filter(Boolean);
  return printable(`${event.time}  ${col('status', 11)}  ${who}${part}  ${before} → ${statusText(change.status, change.outcome)}${flags.length ? ` [${flags.join(', ')}]` : ''}${detailMoved(change)}  v${change.version}  ${change.eventId}`);
}

/**
 * For a change of the status's detail alone (eSMS's receivers reached moving on), what the detail
 * now says, so the line does not read as nothing changed; masked as a log line is.
 */
function detailMoved(change: StatusChangedDetail): string {
  const same = change.previous !== null && change.previous.status === change.status && change.previous.outcome === change.outcome;
  const detail = change.statusDetail;
  if (!same || detail === null || typeof detail !== 'object' || Array.isArray(detail)) return '';
  const members = Object.entries(detail).map(([name, value]) => `${name}=${String(value)}`);
  return members.length === 0 ? '' : ` {${maskPhoneNumbers(members.join(' '))}}`;
}

/** Whether a parsed line has an event's shape: an object with an object `detail`. */
function isEvent(value: unknown): value is BusEvent {
  const detail = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as { detail?: unknown }).detail : undefined;
  return detail !== null && typeof detail === 'object' && !Array.isArray(detail);
}

const wanted = (event: BusEvent) => provider === undefined || event.detail?.provider === provider;

/** The bus's file cannot be read: said in one line (with --json, as the document's `error`, as every --json command does); exit 1. */
function unreadable(message: string): never {
  failed(message, values.json && !values.follow);
}

/**
 * Reads the bus's file from the end of the last whole line it read: a line being written (or cut
 * short by a crash, which the bus removes when it opens again) is read once it is whole.
 */
class EventsFile {
  /** Where the lines read so far end. */
  private offset = 0;
  private inode: number | undefined;

  /** The events appended since the last call; exit 1 saying why when the file cannot be read. */
  next(): BusEvent[] {
    try {
      return this.read();
    } catch (error) {
      unreadable(`cannot read ${shown}: ${(error as Error).message}`);
    }
  }

  private read(): BusEvent[] {
    if (!existsSync(file)) return [];
    const stat = statSync(file);
    // A folder (or a device) where the bus writes its file: read, it would fail with EISDIR or never end.
    if (!stat.isFile()) unreadable(`${shown} is not a file: npm start's event bus writes its events there, one per line`);
    if (stat.size < this.offset || (this.inode !== undefined && stat.ino !== this.inode)) {
      // Started anew (npm start -- --fresh): read it from its beginning.
      say(`${shown} was started anew; reading it from its beginning`);
      this.offset = 0;
    }
    this.inode = stat.ino;
    if (stat.size === this.offset) return [];
    const buffer = Buffer.alloc(stat.size - this.offset);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, buffer, 0, buffer.length, this.offset);
    } finally {
      closeSync(fd);
    }
    const whole = buffer.lastIndexOf(0x0a) + 1;
    this.offset += whole;
    const events: BusEvent[] = [];
    for (const line of buffer.subarray(0, whole).toString('utf8').split('\n')) {
      if (!line) continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        say(`skipped a line of ${shown} that is not JSON`);
        continue;
      }
      // JSON that is not an event (an edited or damaged file: null, a string, an object without a
      // detail) is said and skipped as a line that is not JSON is, not a TypeError ending the command.
      if (isEvent(value)) events.push(value);
      else say(`skipped a line of ${shown} that is not an event`);
    }
    return events;
  }
}

// A closed stdout (`| head`) ends the command quietly.
process.stdout.on('error', (error: NodeJS.ErrnoException) => process.exit(error.code === 'EPIPE' ? 0 : 1));

const source = new EventsFile();
if (!values.follow) {
  const events = source.next().filter(wanted);
  if (values.json) printJson(events);
  else {
    for (const event of events) console.log(textLine(event));
    if (events.length === 0) say(existsSync(file) ? `no events${provider ? ` of ${provider}` : ''} in ${shown}` : `no events yet: ${shown} does not exist (npm start publishes there)`);
  }
} else {
  if (values.json && npmPrintedHeader()) {
    say(`note: npm printed its "> ${process.env.npm_package_name ?? ''}@… ${process.env.npm_lifecycle_event}" header on stdout before these lines; pipe \`npm run -s ${process.env.npm_lifecycle_event} -- …\` instead`);
  }
  // What is there already is read before following it, so an unreadable file is said alone.
  const published = source.next();
  say(`following ${shown} (Ctrl-C to stop)`);
  const print = (events = source.next()) => {
    for (const event of events) {
      if (!wanted(event)) continue;
      process.stdout.write(`${values.json ? JSON.stringify(event) : textLine(event)}\n`);
    }
  };
  print(published);
  const timer = setInterval(print, 200);
  const stop = () => {
    clearInterval(timer);
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  onLauncherGone(stop);
}
