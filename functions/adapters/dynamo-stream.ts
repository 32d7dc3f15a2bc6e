import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { StreamRecord } from '../core/publisher.ts';
import type { TableChange } from '../core/publish.ts';

/**
 * DynamoDB stream records (what Lambda's event source hands the publisher, and what the Streams
 * API's GetRecords answers: the same fields) as the plain changes functions/core/publish.ts reads.
 * @see https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_StreamRecord.html
 */

/** The fields read from a stream record; Lambda's `DynamoDBRecord` and the Streams API's `Record` both have them. */
export interface DynamoStreamRecordLike {
  readonly eventName?: string;
  readonly dynamodb?: {
    readonly SequenceNumber?: string;
    /** Epoch seconds in Lambda's event; a Date from the Streams API's SDK client. */
    readonly ApproximateCreationDateTime?: number | Date;
    readonly OldImage?: Record<string, unknown>;
    readonly NewImage?: Record<string, unknown>;
  };
}

const EVENT_NAMES = new Set(['INSERT', 'MODIFY', 'REMOVE']);

/** A stream record that is not one: a fault of the event source, not of a change. */
export class MalformedStreamRecordError extends Error {
  override readonly name = 'MalformedStreamRecordError';
}

/**
 * Binary attributes as bytes. Lambda's event is JSON, so it carries `B` (and each of `BS`) as base64
 * text, which unmarshall passes through as a string; the Streams API's SDK client gives bytes.
 * Either way the core gets a Uint8Array (a compressed body, `rawGzip`, is one).
 * @see https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html
 */
function withBytes(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(withBytes);
  const attribute = value as Record<string, unknown>;
  if (typeof attribute.B === 'string') return { B: Buffer.from(attribute.B, 'base64') };
  if (Array.isArray(attribute.BS)) return { BS: attribute.BS.map((each) => (typeof each === 'string' ? Buffer.from(each, 'base64') : each)) };
  if (attribute.M !== undefined && typeof attribute.M === 'object' && attribute.M !== null) return { M: Object.fromEntries(Object.entries(attribute.M).map(([key, each]) => [key, withBytes(each)])) };
  if (Array.isArray(attribute.L)) return { L: attribute.L.map(withBytes) };
  return value;
}

/**
 * A number as the core reads it: the nearest one JavaScript holds. The SDK's default read refuses a
 * fraction past 2^53 (DynamoDB keeps 38 digits; an item written by hand can hold one) and makes a
 * BigInt of an integer past it: the first failed the whole batch on every attempt, so no later change
 * was published until the record aged out (locally, never), and the second is no JSON. No number the
 * gateway writes is that large, and what the core does with one (a version, a count) needs no more.
 */
export const nearestNumber = (digits: string): number => Number(digits);

const image = (value: Record<string, unknown> | undefined) =>
  value === undefined
    ? undefined
    : unmarshall(Object.fromEntries(Object.entries(value).map(([key, each]) => [key, withBytes(each)])) as Record<string, AttributeValue>, { wrapNumbers: nearestNumber });

/** One record's change, its images unmarshalled. */
export function toTableChange(record: DynamoStreamRecordLike): TableChange {
  const eventName = record.eventName;
  if (eventName === undefined || !EVENT_NAMES.has(eventName)) throw new MalformedStreamRecordError(`stream record with eventName ${JSON.stringify(eventName)}`);
  const oldImage = image(record.dynamodb?.OldImage);
  const newImage = image(record.dynamodb?.NewImage);
  return { eventName: eventName as TableChange['eventName'], ...(oldImage ? { oldImage } : {}), ...(newImage ? { newImage } : {}) };
}

/** One record as the publisher core takes it: its sequence number (what a partial batch failure names) and its change. */
export function toStreamRecord(record: DynamoStreamRecordLike): StreamRecord {
  const sequenceNumber = record.dynamodb?.SequenceNumber;
  if (!sequenceNumber) throw new MalformedStreamRecordError('stream record without a sequence number');
  return { sequenceNumber, change: toTableChange(record) };
}

/** When the change was written to the stream, in epoch milliseconds (undefined if the record does not say). */
export function recordCreatedAtMs(record: DynamoStreamRecordLike): number | undefined {
  const at = record.dynamodb?.ApproximateCreationDateTime;
  if (at instanceof Date) return at.getTime();
  return typeof at === 'number' ? at * 1000 : undefined;
}
