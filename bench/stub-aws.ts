import { createHash } from 'node:crypto';
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, type EventBridgeClientConfig } from '@aws-sdk/client-eventbridge';
import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs';

/**
 * AWS SDK clients whose network is replaced by an immediate canned answer, so the SDK's own CPU
 * work per call (middleware, serialisation, SigV4 signing, response parsing, SQS's MD5 check) can
 * be timed without any I/O wait. Used for the Lambda duration estimate in the cost model.
 */

/**
 * A canned DynamoDB answer for an operation (`GetItem`, `Query`…) and its JSON input; undefined:
 * `{}`. An answer with a `__type` is an error, answered with status 400 (`CONDITION_FAILED`).
 */
export type DynamoAnswer = (operation: string, input: Record<string, unknown>) => unknown;

const md5 = (text: string) => createHash('md5').update(text).digest('hex');

function bodyText(body: string | Uint8Array | undefined): string {
  if (body === undefined) return '{}';
  return typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
}

function cannedHandler(dynamo?: DynamoAnswer) {
  return {
    async handle(request: { headers: Record<string, string>; body?: string | Uint8Array }) {
      const target = request.headers['x-amz-target'] ?? '';
      const operation = target.slice(target.lastIndexOf('.') + 1);
      let answer: unknown = {};
      let statusCode = 200;
      if (operation === 'SendMessage') {
        const input = JSON.parse(bodyText(request.body)) as { MessageBody: string };
        answer = { MessageId: '5fea7756-0ea4-451a-a703-a558b933e274', MD5OfMessageBody: md5(input.MessageBody) };
      } else if (operation === 'SendMessageBatch') {
        const input = JSON.parse(bodyText(request.body)) as { Entries: { Id: string; MessageBody: string }[] };
        answer = { Successful: input.Entries.map((entry) => ({ Id: entry.Id, MessageId: `m-${entry.Id}`, MD5OfMessageBody: md5(entry.MessageBody) })), Failed: [] };
      } else if (operation === 'PutEvents') {
        // Every entry taken, as EventBridge answers a PutEvents it accepts whole.
        const input = JSON.parse(bodyText(request.body)) as { Entries: unknown[] };
        answer = { FailedEntryCount: 0, Entries: input.Entries.map((_, i) => ({ EventId: `6f1bd1c1-0000-4000-8000-${String(i).padStart(12, '0')}` })) };
      } else if (dynamo && target.startsWith('DynamoDB_')) {
        answer = dynamo(operation, JSON.parse(bodyText(request.body)) as Record<string, unknown>) ?? {};
        if ((answer as { __type?: unknown }).__type !== undefined) statusCode = 400;
      }
      return { response: { statusCode, headers: { 'content-type': 'application/x-amz-json-1.0' }, body: Buffer.from(JSON.stringify(answer)) } };
    },
  };
}

const config = (dynamo?: DynamoAnswer) => ({
  region: 'us-east-1',
  credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
  // The SDK types want a full NodeHttpHandler; the handle() contract is all it calls.
  requestHandler: cannedHandler(dynamo) as unknown as DynamoDBClient['config']['requestHandler'],
});

export function stubSqsClient(): SQSClient {
  return new SQSClient(config() as SQSClientConfig);
}

/** An EventBridge client whose PutEvents takes every entry. */
export function stubEventBridgeClient(): EventBridgeClient {
  return new EventBridgeClient(config() as EventBridgeClientConfig);
}

/** A DynamoDB client answering `{}` to everything (a write that succeeds, a read that finds nothing), or as `answer` says. */
export function stubDynamoClient(answer?: DynamoAnswer): DynamoDBClient {
  return new DynamoDBClient(config(answer) as DynamoDBClientConfig);
}

/** What DynamoDB answers a conditional write whose condition fails (an item that is already there). */
export const CONDITION_FAILED = { __type: 'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException', message: 'The conditional request failed' };

export const STUB_QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/000000000000/callbacks';
