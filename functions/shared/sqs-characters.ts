/**
 * U+FFFE and U+FFFF: JSON.stringify leaves them as they are, but SQS refuses a message holding one
 * (they are outside the XML character set it takes). A callback's queue message has them escaped
 * (queueText in functions/core/queue-message.ts, for ingest and reprocess); an event carries none
 * (functions/core/publish.ts); a subject id holding one is quarantined (functions/core/events.ts).
 */
export const SQS_REFUSED = /[\ufffe\uffff]/g;

/** Whether `text` holds one of them (`search` ignores the pattern's lastIndex). */
export const holdsSqsRefused = (text: string): boolean => text.search(SQS_REFUSED) !== -1;
