import { createHash } from 'node:crypto';
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs';

/**
 * AWS SDK clients whose network is replaced by an immediate canned answer, so the SDK's own CPU
 * work per call (middleware, serialisation, SigV4 signing, response parsing, SQS's MD5 check) can
 * be timed without any I/O wait. Used for the Lambda duration estimate in the cost model.
 */
const cannedHandler = {
  async handle(request: { headers: Record<string, string>; body?: string | Uint8Array }) {
    const target = request.headers['x-amz-target'] ?? '';
    let body = '{}';
    if (target.endsWith('.SendMessage')) {
      const raw = request.body ?? '{}';
      const input = JSON.parse(typeof raw === 'string' ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8')) as { MessageBody: string };
      body = JSON.stringify({ MessageId: '5fea7756-0ea4-451a-a703-a558b933e274', MD5OfMessageBody: createHash('md5').update(input.MessageBody).digest('hex') });
    }
    return { response: { statusCode: 200, headers: { 'content-type': 'application/x-amz-json-1.0' }, body: Buffer.from(body) } };
  },
};

const CONFIG = {
  region: 'us-east-1',
  credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
  // The SDK types want a full NodeHttpHandler; the handle() contract is all it calls.
  requestHandler: cannedHandler as unknown as DynamoDBClient['config']['requestHandler'],
};

export function stubSqsClient(): SQSClient {
  return new SQSClient(CONFIG as SQSClientConfig);
}

export function stubDynamoClient(): DynamoDBClient {
  return new DynamoDBClient(CONFIG as DynamoDBClientConfig);
}

export const STUB_QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/000000000000/callbacks';
