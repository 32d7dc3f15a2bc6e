import { randomUUID } from 'node:crypto';
import { startAwsJsonServer } from './aws-json-stand-in.ts';

/**
 * A STAND-IN for Amazon EventBridge's PutEvents, for the test that runs the deployed bundles
 * (test/e2e/deployed-bundles.test.ts): there is no local EventBridge engine, and the publisher only
 * ever calls PutEvents. It speaks that one operation of the service's protocol (AWS JSON 1.1:
 * `POST /`, `X-Amz-Target: AWSEvents.PutEvents`, `{"Entries": [...]}`), so the bundle's own SDK
 * client reaches it through AWS_ENDPOINT_URL_EVENTBRIDGE unchanged, and records what it was given.
 * It answers as the API documents: an EventId per accepted entry, in request order, with
 * FailedEntryCount; `fault` makes it refuse every entry (ErrorCode InternalFailure, or MalformedDetail) or answer 503;
 * `refuseCallsHolding` makes it refuse whole, as the service refuses a request it finds invalid (HTTP 400,
 * `ValidationException`, no entry answered), every call holding an entry it picks.
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
  /** undefined: accept everything; `refuse`: every entry InternalFailure; `malformed`: every entry MalformedDetail; `unavailable`: HTTP 503. */
  fault: 'refuse' | 'malformed' | 'unavailable' | undefined;
  /** undefined: no such refusal; else a call holding an entry it picks gets HTTP 400 `ValidationException`. */
  refuseCallsHolding: ((entry: PutEventsEntryReceived) => boolean) | undefined;
  /** undefined: nothing; else called with each call's entries as it arrives: the call is answered once what it returns settles. */
  onCall: ((entries: readonly PutEventsEntryReceived[]) => void | Promise<void>) | undefined;
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
    refuseCallsHolding: undefined as EventBridgeStandIn['refuseCallsHolding'],
    onCall: undefined as EventBridgeStandIn['onCall'],
    stop: (): Promise<void> => Promise.resolve(),
  };
  const server = await startAwsJsonServer('AWSEvents.PutEvents', async (input) => {
    calls += 1;
    const entries = (input.Entries ?? []) as PutEventsEntryReceived[];
    await standIn.onCall?.(entries);
    if (!Array.isArray(entries) || entries.length === 0 || entries.length > 10) return { status: 400, body: { __type: 'ValidationException', message: 'Entries must hold 1 to 10 entries' } };
    if (standIn.refuseCallsHolding && entries.some(standIn.refuseCallsHolding)) {
      return { status: 400, body: { __type: 'ValidationException', message: '1 validation error detected: a value at entries.member.detail failed to satisfy constraint' } };
    }
    if (standIn.fault === 'unavailable') return { status: 503, body: { __type: 'ServiceUnavailableException', message: 'unavailable' } };
    if (standIn.fault === 'refuse') {
      return { status: 200, body: { FailedEntryCount: entries.length, Entries: entries.map(() => ({ ErrorCode: 'InternalFailure', ErrorMessage: 'Internal service error' })) } };
    }
    if (standIn.fault === 'malformed') {
      return { status: 200, body: { FailedEntryCount: entries.length, Entries: entries.map(() => ({ ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is malformed.' })) } };
    }
    accepted.push(...entries);
    return { status: 200, body: { FailedEntryCount: 0, Entries: entries.map(() => ({ EventId: randomUUID() })) } };
  });
  standIn.endpoint = server.endpoint;
  standIn.stop = () => server.stop();
  return standIn;
}
