import type { DynamoDBRecord } from 'aws-lambda';

/**
 * Every record of a table's stream on DynamoDB Local, read through the DynamoDB Streams API
 * (ListStreams, DescribeStream, GetShardIterator TRIM_HORIZON, GetRecords: AWS JSON 1.0,
 * `X-Amz-Target: DynamoDBStreams_20120810.<Operation>`) on DynamoDB Local's own endpoint, as
 * Lambda's event source reads it, each record given the stream's ARN as `eventSourceARN` (what
 * Lambda adds). DynamoDB Local wants a credential named in the Authorization header (it picks no
 * database by it with -sharedDb) and checks no signature, so the requests carry a placeholder one.
 * @see https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Operations_Amazon_DynamoDB_Streams.html
 */
export async function readTableStream(endpoint: string, tableName: string): Promise<DynamoDBRecord[]> {
  const call = async <T>(operation: string, body: unknown): Promise<T> => {
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': `DynamoDBStreams_20120810.${operation}`,
        authorization: 'AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0',
      },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`DynamoDB Streams ${operation}: HTTP ${response.status} ${text}`);
    return JSON.parse(text) as T;
  };
  const { Streams = [] } = await call<{ Streams?: { StreamArn: string }[] }>('ListStreams', { TableName: tableName });
  if (Streams.length !== 1) throw new Error(`table ${tableName} has ${Streams.length} streams`);
  const streamArn = Streams[0].StreamArn;
  const shards: { ShardId: string; ParentShardId?: string }[] = [];
  for (let start: string | undefined; ; ) {
    const { StreamDescription } = await call<{ StreamDescription: { Shards: { ShardId: string; ParentShardId?: string }[]; LastEvaluatedShardId?: string } }>('DescribeStream', { StreamArn: streamArn, ...(start ? { ExclusiveStartShardId: start } : {}) });
    shards.push(...StreamDescription.Shards);
    start = StreamDescription.LastEvaluatedShardId;
    if (!start) break;
  }
  const records: DynamoDBRecord[] = [];
  // A parent shard's records come before its children's (DescribeStream lists parents first).
  for (const shard of shards) {
    let { ShardIterator: iterator } = await call<{ ShardIterator?: string }>('GetShardIterator', { StreamArn: streamArn, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' });
    while (iterator) {
      const page: { Records?: DynamoDBRecord[]; NextShardIterator?: string } = await call('GetRecords', { ShardIterator: iterator, Limit: 1000 });
      const got = page.Records ?? [];
      records.push(...got.map((record) => ({ ...record, eventSourceARN: streamArn })));
      // An open shard always gives a next iterator: stop once it has nothing more.
      iterator = got.length === 0 ? undefined : page.NextShardIterator;
    }
  }
  return records;
}
