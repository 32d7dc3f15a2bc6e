import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A STAND-IN for Amazon EventBridge's PutEvents, for the test that runs the deployed bundles
 * (test/e2e/deployed-bundles.test.ts): there is no local EventBridge engine, and the publisher only
 * ever calls PutEvents. It speaks that one operation of the service's protocol (AWS JSON 1.1:
 * `POST /`, `X-Amz-Target: AWSEvents.PutEvents`, `{"Entries": [...]}`), so the bundle's own SDK
 * client reaches it through AWS_ENDPOINT_URL_EVENTBRIDGE unchanged, and records what it was given.
 * It answers as the API documents: an EventId per accepted entry, in request order, with
 * FailedEntryCount; `fault` makes it refuse every entry (ErrorCode InternalFailure) or answer 503.
 * It stands in for the AWS service only: rules and targets are the user's, not the gateway's.
 * @see https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html
 */
export interface PutEventsEntryReceived {
  readonly EventBusName?: string;
  readonly Source?: string;
  readonly DetailType?: string;
  readonly Detail?: string;
  /** Epoch seconds, as the SDK's JSON protocol sends a timestamp. */
  readonly Time?: number;
}

export interface EventBridgeStandIn {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  /** Every entry accepted, oldest first. */
  readonly accepted: PutEventsEntryReceived[];
  /** PutEvents calls received (accepted or not). */
  readonly calls: number;
  /** undefined: accept everything; `refuse`: every entry InternalFailure; `unavailable`: HTTP 503. */
  fault: 'refuse' | 'unavailable' | undefined;
  stop(): Promise<void>;
}

export async function startEventBridgeStandIn(): Promise<EventBridgeStandIn> {
  const accepted: PutEventsEntryReceived[] = [];
  let calls = 0;
  const standIn = {
    endpoint: '',
    accepted,
    get calls() {
      return calls;
    },
    fault: undefined as EventBridgeStandIn['fault'],
    stop: (): Promise<void> => Promise.resolve(),
  };
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const answer = (status: number, body: unknown) => {
        response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() });
        response.end(JSON.stringify(body));
      };
      const target = request.headers['x-amz-target'];
      if (request.method !== 'POST' || target !== 'AWSEvents.PutEvents') {
        return answer(400, { __type: 'UnknownOperationException', message: `the stand-in serves PutEvents only, not ${String(target)}` });
      }
      calls += 1;
      let entries: PutEventsEntryReceived[];
      try {
        entries = ((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { Entries?: PutEventsEntryReceived[] }).Entries ?? []);
      } catch {
        return answer(400, { __type: 'SerializationException', message: 'body is not JSON' });
      }
      if (entries.length === 0 || entries.length > 10) return answer(400, { __type: 'ValidationException', message: 'Entries must hold 1 to 10 entries' });
      if (standIn.fault === 'unavailable') return answer(503, { __type: 'ServiceUnavailableException', message: 'unavailable' });
      if (standIn.fault === 'refuse') {
        return answer(200, { FailedEntryCount: entries.length, Entries: entries.map(() => ({ ErrorCode: 'InternalFailure', ErrorMessage: 'Internal service error' })) });
      }
      accepted.push(...entries);
      answer(200, { FailedEntryCount: 0, Entries: entries.map(() => ({ EventId: randomUUID() })) });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  standIn.endpoint = `http://127.0.0.1:${port}`;
  standIn.stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return standIn;
}
