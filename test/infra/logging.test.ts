import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import type { APIGatewayProxyEventV2, SQSRecord } from 'aws-lambda';
import { withInvocationLogFields } from '../../functions/handlers/invocation-log.ts';
import { createLogger } from '../../functions/shared/log.ts';
import { startAwsJsonService } from '../support/aws-json-stand-in.ts';

/**
 * What the deployed functions' log lines carry: the level Lambda's advanced logging controls set
 * (AWS_LAMBDA_LOG_LEVEL), and the invocation they belong to (`function_request_id`, `cold_start`).
 * The template side (JSON format, levels from the settings) is in stack.test.ts and settings.test.ts.
 */

type Json = Record<string, any>;

const ORIGINAL_LEVEL = process.env.AWS_LAMBDA_LOG_LEVEL;
afterEach(() => {
  if (ORIGINAL_LEVEL === undefined) delete process.env.AWS_LAMBDA_LOG_LEVEL;
  else process.env.AWS_LAMBDA_LOG_LEVEL = ORIGINAL_LEVEL;
});

/** A logger writing into an array, created the way the functions create theirs. */
function capture(minLevel?: string) {
  const lines: Json[] = [];
  const log = createLogger({ service: 'unit', write: (line) => lines.push(JSON.parse(line) as Json), ...(minLevel ? { minLevel } : {}) });
  return { log, lines };
}

describe('the level Lambda sets', () => {
  for (const [level, kept] of [
    [undefined, ['INFO', 'WARN', 'ERROR']],
    ['DEBUG', ['INFO', 'WARN', 'ERROR']],
    ['INFO', ['INFO', 'WARN', 'ERROR']],
    ['WARN', ['WARN', 'ERROR']],
    ['ERROR', ['ERROR']],
    ['warn', ['WARN', 'ERROR']],
    ['nonsense', ['INFO', 'WARN', 'ERROR']],
  ] as const) {
    test(`AWS_LAMBDA_LOG_LEVEL=${level ?? '(unset)'} keeps ${kept.join(', ')}`, () => {
      // prepare
      if (level === undefined) delete process.env.AWS_LAMBDA_LOG_LEVEL;
      else process.env.AWS_LAMBDA_LOG_LEVEL = level;
      const { log, lines } = capture();

      // act
      log.info('i');
      log.warn('w');
      log.error('e');

      // assess
      assert.deepEqual(lines.map((line) => line.level), kept);
    });
  }

  test('an explicit minLevel wins over the environment', () => {
    // prepare
    process.env.AWS_LAMBDA_LOG_LEVEL = 'ERROR';
    const { log, lines } = capture('INFO');

    // act
    log.info('i');

    // assess
    assert.deepEqual(lines.map((line) => line.message), ['i']);
  });
});

describe('the invocation a line belongs to', () => {
  test('lines logged inside a Lambda invocation carry function_request_id and cold_start (true only for the first)', async () => {
    // prepare
    const { log, lines } = capture();
    const handler = withInvocationLogFields(async (event: { n: number }) => {
      log.info('handled', { n: event.n });
      return event.n;
    });

    // act
    await handler({ n: 1 }, { awsRequestId: 'req-1' });
    await handler({ n: 2 }, { awsRequestId: 'req-2' });
    log.info('outside');

    // assess
    assert.deepEqual(
      lines.map(({ message, function_request_id, cold_start, n }) => ({ message, function_request_id, cold_start, n })),
      [
        { message: 'handled', function_request_id: 'req-1', cold_start: true, n: 1 },
        { message: 'handled', function_request_id: 'req-2', cold_start: false, n: 2 },
        { message: 'outside', function_request_id: undefined, cold_start: undefined, n: undefined },
      ],
    );
    assert.deepEqual(Object.keys(lines[0]).slice(0, 4), ['level', 'timestamp', 'service', 'message'], 'the fixed fields come first');
  });

  test('a line logged after a failed invocation no longer carries its request id', async () => {
    // prepare
    const { log, lines } = capture();
    const handler = withInvocationLogFields(async () => {
      throw new Error('boom');
    });

    // act
    await assert.rejects(handler({}, { awsRequestId: 'req-x' }), /boom/);
    log.warn('later');

    // assess
    assert.equal(lines[0].function_request_id, undefined);
  });
});

/**
 * The JSON log lines the deployed handlers write to stdout, taken until `restore`; anything else
 * goes on to stdout (the test runner talks to its parent over it).
 */
function captureLogLines(): { readonly written: string[]; readonly restore: () => void } {
  const written: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) =>
    typeof chunk === 'string' && chunk.startsWith('{"level":')
      ? (written.push(chunk), true)
      : (write as (...args: unknown[]) => boolean).call(process.stdout, chunk, ...rest)) as typeof process.stdout.write;
  return { written, restore: () => void (process.stdout.write = write) };
}

describe('the deployed ingest entry point', () => {
  const saved = { ...process.env };
  after(() => {
    process.env = saved;
  });

  test('its "callback" line names the Lambda request id and the cold start, beside API Gateway\'s requestId', async () => {
    // prepare
    Object.assign(process.env, {
      PROVIDER_ID: 'telesign',
      QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/unused',
      TELESIGN_SECRET_ID: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:unused',
      AWS_REGION: 'eu-west-1',
    });
    const { written, restore } = captureLogLines();
    const { handler } = await import('../../functions/handlers/ingest.ts');
    // A wrong method is answered before any secret or queue is touched: nothing leaves the process.
    const event = {
      version: '2.0',
      routeKey: 'POST /callbacks/telesign',
      rawPath: '/callbacks/telesign',
      rawQueryString: '',
      headers: {},
      isBase64Encoded: false,
      requestContext: { http: { method: 'PUT', path: '/callbacks/telesign', sourceIp: '203.0.113.9' }, requestId: 'apigw-1', timeEpoch: 1_700_000_000_000 },
    } as unknown as APIGatewayProxyEventV2;

    // act
    try {
      await handler(event, { awsRequestId: 'lambda-1' });
      await handler(event, { awsRequestId: 'lambda-2' });
    } finally {
      restore();
    }

    // assess
    const lines = written.map((line) => JSON.parse(line) as Json);
    assert.deepEqual(
      lines.map(({ message, requestId, function_request_id, cold_start }) => ({ message, requestId, function_request_id, cold_start })),
      [
        { message: 'callback', requestId: 'apigw-1', function_request_id: 'lambda-1', cold_start: true },
        { message: 'callback', requestId: 'apigw-1', function_request_id: 'lambda-2', cold_start: false },
      ],
    );
  });
});

describe('the deployed worker entry point', () => {
  const saved = { ...process.env };
  after(() => {
    process.env = saved;
  });

  test('on the receive limit the stack sets (MAX_RECEIVE_COUNT), a failed record is given back at once and its line says it goes to the dead-letter queue', async () => {
    // prepare: SQS's ChangeMessageVisibility answered by a stand-in, which records the delays asked for
    const delays: unknown[] = [];
    const sqs = await startAwsJsonService(
      {
        'AmazonSQS.ChangeMessageVisibility': (input) => {
          delays.push(input.VisibilityTimeout);
          return { status: 200, body: {} };
        },
      },
      '1.0',
    );
    Object.assign(process.env, {
      TABLE_NAME: 'unused',
      // The SDK sends SQS requests to the queue URL's host.
      QUEUE_URL: `${sqs.endpoint}/123456789012/unused`,
      MAX_RECEIVE_COUNT: '7',
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_ENDPOINT_URL_SQS: sqs.endpoint,
    });
    const { written, restore } = captureLogLines();
    const { handler } = await import('../../functions/handlers/worker.ts');
    // A body that is no queue message fails before the table is touched: only the visibility change leaves the process.
    const record = (messageId: string, receiveCount: number) =>
      ({ messageId, receiptHandle: `rh-${messageId}`, body: 'not a queue message', attributes: { ApproximateReceiveCount: String(receiveCount) } }) as unknown as SQSRecord;

    // act
    let answers: unknown[];
    try {
      answers = [await handler({ Records: [record('m-6', 6)] }, { awsRequestId: 'lambda-1' }), await handler({ Records: [record('m-7', 7)] }, { awsRequestId: 'lambda-2' })];
    } finally {
      restore();
      await sqs.stop();
    }

    // assess
    assert.deepEqual(answers, [{ batchItemFailures: [{ itemIdentifier: 'm-6' }] }, { batchItemFailures: [{ itemIdentifier: 'm-7' }] }]);
    const failures = written.map((line) => JSON.parse(line) as Json).filter((line) => line.message === 'record failed, will retry');
    assert.deepEqual(
      failures.map(({ messageId, receiveCount, next }) => ({ messageId, receiveCount, next })),
      [
        { messageId: 'm-6', receiveCount: 6, next: 'retry' },
        { messageId: 'm-7', receiveCount: 7, next: 'dead-letter queue' },
      ],
    );
    assert.equal(delays.length, 2);
    assert.ok(typeof delays[0] === 'number' && delays[0] > 0, 'receive 6 of 7 backs off');
    assert.equal(delays[1], 0, 'receive 7 of 7 is given back at once, for SQS to move to the DLQ');
  });
});
