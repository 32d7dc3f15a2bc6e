/**
 * How the optimistic write of a subject's state item is retried when another record for the same
 * subject wrote it first. Distinct callbacks for one subject that arrive together (a burst, a
 * redrive, a provider catching up) are processed at once by several worker invocations: retried
 * at once, the losers met again and again, most of them used up their attempts, and went back to
 * the queue for another receive (or, a burst sustained, to the DLQ). A short pause drawn at random
 * (full jitter, capped) spreads them out, so each soon finds the item quiet.
 */
export const STATE_WRITE_RETRY = {
  /** Attempts at the write in one receive before the record fails and comes back from the queue. */
  attempts: 16,
  /** The first pause's ceiling; it doubles per attempt up to `capMs`. */
  baseMs: 10,
  capMs: 160,
} as const;

/**
 * The pause before `attempt` (the first has none): a random share of base × 2^(attempt-2), at most
 * `capMs`. All pauses of one receive together stay under two seconds (`maxStateWriteBackOffMs`):
 * within the worker's 30-second timeout, inside the 3 seconds it keeps back after its last status
 * request (functions/handlers/worker.ts), and far within the queue's 180-second visibility timeout.
 */
export function stateWriteDelayMs(attempt: number, random: () => number = Math.random): number {
  if (attempt <= 1) return 0;
  const ceiling = Math.min(STATE_WRITE_RETRY.capMs, STATE_WRITE_RETRY.baseMs * 2 ** (attempt - 2));
  return Math.floor(random() * ceiling);
}

/** The longest all pauses of one receive can add up to. */
export function maxStateWriteBackOffMs(): number {
  let total = 0;
  for (let attempt = 2; attempt <= STATE_WRITE_RETRY.attempts; attempt++) total += Math.min(STATE_WRITE_RETRY.capMs, STATE_WRITE_RETRY.baseMs * 2 ** (attempt - 2));
  return total;
}

/** Pause before `attempt` at the state write. */
export async function beforeStateWrite(attempt: number): Promise<void> {
  const ms = stateWriteDelayMs(attempt);
  if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A subject's state writes in one batch, held one at a time. `afterAnother` when another record of
 * the batch took this subject's turn first (held or done): the state this record read before its
 * turn may predate that write, and is read again.
 */
export interface SubjectTurn {
  readonly afterAnother: boolean;
  readonly release: () => void;
}

/**
 * Takes turns at each subject's state write within one batch: records of one batch for the same
 * subject (a burst, a redrive, a re-check beside a callback) write it one after another, in the
 * order they come to it (after their status requests, which run at once), instead of racing each
 * other's conditional puts, each lost race a write paid for and a pause. One holder at a time per
 * subject; other subjects never wait. Across workers the conditional put and the pauses above still
 * decide.
 *
 * Made once per batch: a record that read the state while another's write was still to come, and
 * reached its turn after that write was done, must still know it came second (a turn forgotten on
 * release told it nothing, and its stale read lost the race it was meant to avoid). Kept for the
 * batch alone, the turns never outgrow it.
 */
export function subjectTurns(): (subject: string) => Promise<SubjectTurn> {
  const last = new Map<string, Promise<void>>();
  return async (subject) => {
    const before = last.get(subject);
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    last.set(subject, before ? before.then(() => done) : done);
    if (before) await before;
    return { afterAnother: before !== undefined, release };
  };
}

/** The key a subject's turns are taken under. */
export function subjectTurnKey(provider: string, subjectId: string, part: string | undefined): string {
  return JSON.stringify([provider, subjectId, part ?? null]);
}
