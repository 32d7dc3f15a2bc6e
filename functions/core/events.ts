import type { AnyProvider, EventFacts, StatusDetail } from '../providers/provider.ts';
import { orderKey, type PlacedStatus, type StateItem, type Verdict } from './state.ts';
import { holdsSqsRefused } from '../shared/sqs-characters.ts';

/**
 * How far ahead of our receive time a provider's status time may be and still be believed.
 * Clocks drift and a provider stamps a status before it sends it, so a real time is at most a little
 * ahead of ours; a time far in the future (year 9999) would otherwise outrank every later status
 * forever. Beyond this, the receive time is used and the provider's time is kept in `detail`.
 */
export const FUTURE_TOLERANCE_MS = 5 * 60_000;

/** Bounds of what `describe` may put in a state's detail (the state item stays small). */
const MAX_DETAIL_ENTRIES = 12;
const MAX_DETAIL_TEXT = 128;

/** DynamoDB key limits, in UTF-8 bytes: partition key 2,048, sort key 1,024 (with our prefixes). */
const MAX_SUBJECT_BYTES = 1_024;
const MAX_PART_BYTES = 256;
const MAX_EVENT_KEY_BYTES = 900;

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Why these facts cannot name a stored item, or undefined when they can. Keys must be exact: a
 * string DynamoDB cannot store as it is (a lone UTF-16 surrogate is written as `?`, so `X-\udfff`
 * would overwrite `X-?`) or one over the key limits is quarantined, kept whole, never merged.
 */
export function unstorableKeyReason(facts: Pick<EventFacts, 'subjectId' | 'part' | 'eventKey'>): string | undefined {
  const checks: [string, string | undefined, number][] = [
    ['subject id', facts.subjectId, MAX_SUBJECT_BYTES],
    ['part', facts.part, MAX_PART_BYTES],
    ['event key', facts.eventKey, MAX_EVENT_KEY_BYTES],
  ];
  for (const [name, value, maxBytes] of checks) {
    if (value === undefined) continue;
    if (typeof value !== 'string' || value.length === 0) return `${name} is empty`;
    if (LONE_SURROGATE.test(value)) return `${name} is not well-formed Unicode (a lone UTF-16 surrogate): it cannot be stored exactly`;
    // A subject events name: SQS (the relay's queue, a consumer's target) refuses these two, so an
    // event could carry the subject only altered, under another subject's name (functions/core/publish.ts).
    if (name !== 'event key' && holdsSqsRefused(value)) return `${name} holds U+FFFE or U+FFFF, which no event can carry to an SQS target exactly`;
    if (Buffer.byteLength(value) > maxBytes) return `${name} is longer than ${maxBytes} bytes`;
  }
  return undefined;
}

/** The detail, bounded in entries and text length. */
function boundedDetail(detail: StatusDetail | undefined, extra: StatusDetail): StatusDetail | undefined {
  const entries = Object.entries({ ...detail, ...extra }).slice(0, MAX_DETAIL_ENTRIES);
  if (entries.length === 0) return undefined;
  return Object.fromEntries(entries.map(([key, value]) => [key.slice(0, 64), typeof value === 'string' ? value.slice(0, MAX_DETAIL_TEXT) : value]));
}

/**
 * The status as the state will order it: the provider's time when it is a real time not too far
 * ahead of when we received the callback (or asked the provider), else the receive time.
 */
export function placeStatus(facts: EventFacts, receivedAt: string): PlacedStatus {
  let statusAt = receivedAt;
  const extra: Record<string, string> = {};
  if (facts.statusAt !== undefined) {
    const providerMs = Date.parse(facts.statusAt);
    const receivedMs = Date.parse(receivedAt);
    if (Number.isFinite(providerMs) && providerMs <= receivedMs + FUTURE_TOLERANCE_MS && providerMs >= 0) {
      statusAt = new Date(providerMs).toISOString();
    } else {
      extra.statusAtIgnored = facts.statusAt;
    }
  }
  const detail = boundedDetail(facts.detail, extra);
  return {
    status: facts.status,
    outcome: facts.outcome,
    terminal: facts.terminal,
    statusAt,
    rank: facts.rank,
    ...(detail ? { detail } : {}),
    ...(facts.reportsCurrent ? { latestWins: true } : {}),
    ...(facts.ranksAsTerminal && !facts.terminal ? { ranksAsTerminal: true } : {}),
  };
}

/**
 * The event key a callback is stored under, and whether it is a new status change.
 *
 * Most callbacks name their own event (a status code with the provider's time, a content hash).
 * A provider that only reports the current status, with no id or time (Identomat's session-change),
 * sends byte-identical bodies for a retry and for a later change back to a status seen before.
 * Those are told apart against the subject's state, in the order we received them:
 * - a report equal to the current status is a retry of the change that set it (`…|#n`);
 * - a report that differs, received after the current status, is change n+1 (`…|#n+1`);
 * - a report that differs but was received before the current status is an older report arriving
 *   late: kept as `…|before#n`, never applied.
 * A retry that arrives after a later change is indistinguishable from a real change back; the
 * provider's status endpoint, where it has one, is the referee. Our own redelivery of a report
 * stored before a later change came is `late` too: the worker then looks for the key its request
 * stored it under (`CallbackStore.eventStoredBy`).
 */
export function resolveEventKey(
  facts: EventFacts,
  state: StateItem | undefined,
  receivedAt: string,
): { eventKey: string; isChange: boolean; late?: true } {
  if (!facts.reportsCurrent) return { eventKey: facts.eventKey, isChange: false };
  const changes = state?.changes ?? 0;
  // Against the latest reported change (states written before it was kept: the status in place).
  const latest = state?.lastChange ?? (state?.statusAt === undefined ? undefined : { eventKey: state.status === facts.status ? `${facts.eventKey}|#${changes}` : '', receivedAt: state.statusAt });
  if (changes > 0 && latest?.eventKey === `${facts.eventKey}|#${changes}`) return { eventKey: `${facts.eventKey}|#${changes}`, isChange: false };
  if (latest !== undefined && changes > 0 && receivedAt < latest.receivedAt) {
    return { eventKey: `${facts.eventKey}|before#${changes}`, isChange: false, late: true };
  }
  return { eventKey: `${facts.eventKey}|#${changes + 1}`, isChange: true };
}

/**
 * The latest change as the state remembers it once this report is applied, when that moves: a report
 * equal to the latest change (a retry of it, or a change back to it; they cannot be told apart)
 * received after it was. A differing report received before this one and processed after it (its
 * own receive failed, or the queue reordered them) is then older than the current status, as in
 * the order received: kept as `…|before#n`, never applied. Remembering only when the change was
 * first received, the REJECTED → APPROVED → REJECTED of a session processed as REJECTED, REJECTED,
 * APPROVED ended APPROVED.
 */
export function reportedAgain(
  state: StateItem | undefined,
  resolved: { readonly eventKey: string; readonly isChange: boolean; readonly late?: true },
  receivedAt: string,
): { eventKey: string; receivedAt: string } | undefined {
  const latest = state?.lastChange;
  if (!latest || resolved.isChange || resolved.late || resolved.eventKey !== latest.eventKey || receivedAt <= latest.receivedAt) return undefined;
  return { eventKey: latest.eventKey, receivedAt };
}

/**
 * The verdict on a callback's claim against the provider's answer about the same subject:
 * `confirmed` when status and every material field agree, else `mismatch` naming the fields.
 * `unsettled`: the claim is ahead of the answer, so the endpoint may not have caught up yet.
 */
export function judgeClaim(
  provider: Pick<AnyProvider, 'differences'>,
  claim: { readonly payload: unknown; readonly facts: EventFacts; readonly placed: PlacedStatus },
  answer: { readonly payload: unknown; readonly facts: EventFacts; readonly placed: PlacedStatus },
): { verdict: Verdict; unsettled: boolean } {
  const differences = provider.differences?.(claim.payload, answer.payload) ?? (answer.facts.status === claim.facts.status ? [] : ['status']);
  const claimKey = orderKey(claim.placed);
  const answerKey = orderKey(answer.placed);
  if (differences.length === 0) return { verdict: { kind: 'confirmed', answerStatus: answer.facts.status, answerOrderKey: answerKey }, unsettled: false };
  // A claim ahead of an answer that is not final may be news the endpoint has not caught up with
  // (eSMS not yet sent to the recipient, or still counting): no contradiction to put in place of a
  // newer answer's verdict (the claim is asked about again). A final answer is behind nothing.
  const aheadOfPending = claimKey > answerKey && !answer.placed.terminal;
  return {
    verdict: {
      kind: 'mismatch',
      answerStatus: answer.facts.status,
      answerOrderKey: answerKey,
      differences,
      ...(aheadOfPending ? {} : { claimStatus: claim.facts.status }),
      // Not final is an earlier step, though it ranks with the final statuses (eSMS's SendStatus 5
      // with receivers still to count, counted further since): as a re-check judges it.
      ...(claimKey < answerKey ? { behind: true, ...(claim.placed.terminal ? {} : { olderStep: true }) } : {}),
    },
    unsettled: claimKey > answerKey,
  };
}
