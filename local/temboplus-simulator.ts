import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { secureEquals } from '../functions/shared/secure-compare.ts';
import { describeIssues } from '../functions/providers/common.ts';
import { TemboPlusCallbackSchema } from '../functions/providers/temboplus.ts';

/**
 * A SIMULATION of TemboPlus's Transaction Status endpoint, for the local pipeline and the tests.
 * It is not TemboPlus: it only knows the transfers it was told about. Modelled on the published
 * docs (`../shared/providers/docs/temboplus-*.txt`, PROVIDERS.md):
 *
 *   GET {baseUrl}/remittance/{partnerReference}/status
 *   Authorization: Bearer <apiToken>, x-request-id: <fresh UUID>
 *   200 the transfer (the same body as the callback), 400 validation / missing headers,
 *   403 bad token, 404 unknown partnerReference, 429 duplicate request id, 500 server error.
 *
 * The error bodies' shape is not published; ours are `{ "error": "...", "details": [...] }`.
 * The order of the checks (400, 403, 429, 404) is our choice: the docs do not say.
 *
 * Control routes, for another process (`npm run send`, the fault suite), behind the same token:
 *   POST   /__simulator/transfers          body: a transfer (JSON) → report()
 *   DELETE /__simulator/transfers/{ref}    → forget()
 *   PUT    /__simulator/fault              body: a TemboPlusFault, or null to clear → setFault()
 *
 * Runtime dependencies only (node:http and the project's own modules): `npm start` runs it.
 */

/** A transfer as the status endpoint returns it; at least `partnerReference` and `status`. */
export type TemboPlusTransfer = { readonly partnerReference: string; readonly status: string } & Record<string, unknown>;

/**
 * A fault to play on the status endpoint, instead of (status, hang) or before (delayMs) the normal
 * answer. `times` limits it to the next n status requests; without it, it lasts until cleared.
 */
export interface TemboPlusFault {
  /** Answer this status (e.g. 500, 429, 503) with a JSON error body. */
  readonly status?: number;
  /** Wait this long before answering (normally, or with `status`). */
  readonly delayMs?: number;
  /** Never answer; the connection stays open until the client gives up or the simulator stops. */
  readonly hang?: boolean;
  readonly times?: number;
}

/** One call to the status endpoint, as the simulator saw it. */
export interface SimulatorRequest {
  readonly partnerReference: string;
  /** The x-request-id header, if any. */
  readonly requestId?: string;
  /** Whether the Bearer token was the right one. */
  readonly authorized: boolean;
  /** The status answered; absent while unanswered (a hang fault, or a delay still running). */
  status?: number;
}

export interface TemboPlusSimulatorOptions {
  /** The token the status endpoint (and the control routes) accept as `Authorization: Bearer <apiToken>`. */
  readonly apiToken: string;
  /** @default 0 (a free port) */
  readonly port?: number;
}

export interface TemboPlusSimulator {
  /** `http://127.0.0.1:<port>`: TemboPlus's `baseUrl` in the secrets. */
  readonly baseUrl: string;
  readonly port: number;
  /** Remember a transfer, or overwrite its current status, keyed by partnerReference. Throws if the body is not a transfer. */
  report(transfer: unknown): void;
  /** Forget a transfer: its status requests answer 404 again. */
  forget(partnerReference: string): void;
  /** Play a fault on the status endpoint; `undefined` clears it. */
  setFault(fault: TemboPlusFault | undefined): void;
  /** Every status request received, oldest first. */
  readonly requests: SimulatorRequest[];
  /** Close the server, dropping delayed and hung connections. */
  stop(): Promise<void>;
}

const STATUS_PATH = /^\/remittance\/([^/]+)\/status$/;
const TRANSFER_PATH = /^\/__simulator\/transfers\/([^/]+)$/;
const MAX_CONTROL_BODY_BYTES = 256 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly details: readonly string[] = [],
  ) {
    super(details.length ? `${error}: ${details.join('; ')}` : error);
  }
}

function validTransfer(body: unknown): TemboPlusTransfer {
  const result = TemboPlusCallbackSchema.safeParse(body);
  if (!result.success) throw new HttpError(400, 'invalid_transfer', describeIssues(result.error));
  // Keep the body as given: the status endpoint answers it verbatim.
  return body as TemboPlusTransfer;
}

function validFault(body: unknown): TemboPlusFault | undefined {
  if (body === null) return undefined;
  if (typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'invalid_fault', ['expected an object or null']);
  const { status, delayMs, hang, times } = body as Record<string, unknown>;
  const details: string[] = [];
  if (status !== undefined && !(Number.isInteger(status) && (status as number) >= 200 && (status as number) <= 599)) details.push('status: an HTTP status code');
  if (delayMs !== undefined && !(typeof delayMs === 'number' && delayMs >= 0)) details.push('delayMs: a number ≥ 0');
  if (hang !== undefined && typeof hang !== 'boolean') details.push('hang: a boolean');
  if (times !== undefined && !(Number.isInteger(times) && (times as number) > 0)) details.push('times: an integer > 0');
  if (details.length) throw new HttpError(400, 'invalid_fault', details);
  return body as TemboPlusFault;
}

function send(response: ServerResponse, status: number, body: unknown): void {
  if (response.writableEnded || response.destroyed) return;
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

function sendError(response: ServerResponse, error: HttpError): void {
  send(response, error.status, { error: error.error, details: error.details });
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_CONTROL_BODY_BYTES) throw new HttpError(413, 'payload_too_large', [`at most ${MAX_CONTROL_BODY_BYTES} bytes`]);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'invalid_json', ['the body is not JSON']);
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, 'validation_error', ['the path is not valid percent-encoding']);
  }
}

/** Start the simulated status endpoint on 127.0.0.1. */
export async function startTemboPlusSimulator(options: TemboPlusSimulatorOptions): Promise<TemboPlusSimulator> {
  const { apiToken } = options;
  if (!apiToken) throw new Error('startTemboPlusSimulator: apiToken must not be empty');
  const transfers = new Map<string, TemboPlusTransfer>();
  const usedRequestIds = new Set<string>();
  const requests: SimulatorRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let fault: { fault: TemboPlusFault; remaining: number } | undefined;

  const report = (transfer: unknown) => {
    const valid = validTransfer(transfer);
    transfers.set(valid.partnerReference, valid);
  };
  const setFault = (next: TemboPlusFault | undefined) => {
    fault = next ? { fault: next, remaining: next.times ?? Number.POSITIVE_INFINITY } : undefined;
  };
  const authorized = (request: IncomingMessage) => {
    const match = /^Bearer (.+)$/.exec(request.headers.authorization ?? '');
    return secureEquals(match?.[1], apiToken);
  };
  /** The fault for this request, if one is armed; counts it down. */
  const takeFault = (): TemboPlusFault | undefined => {
    if (!fault) return undefined;
    const current = fault.fault;
    fault.remaining -= 1;
    if (fault.remaining <= 0) fault = undefined;
    return current;
  };
  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });

  async function statusRequest(request: IncomingMessage, response: ServerResponse, partnerReference: string) {
    const header = request.headers['x-request-id'];
    const requestId = typeof header === 'string' && header.length > 0 ? header : undefined;
    const seen: SimulatorRequest = { partnerReference, ...(requestId ? { requestId } : {}), authorized: authorized(request) };
    requests.push(seen);
    const answer = (status: number, body: unknown) => {
      seen.status = status;
      send(response, status, body);
    };

    const playing = takeFault();
    if (playing?.delayMs) await wait(playing.delayMs);
    if (playing?.hang) return;
    if (playing?.status) {
      const error = playing.status === 429 ? 'too_many_requests' : 'simulated_fault';
      return answer(playing.status, { error, details: [`simulated fault: status ${playing.status}`] });
    }

    if (!requestId) return answer(400, { error: 'validation_error', details: ['x-request-id header is required'] });
    if (!seen.authorized) return answer(403, { error: 'forbidden', details: ['missing or invalid bearer token'] });
    // A request id is spent once it reached an authorized request, whatever the answer.
    if (usedRequestIds.has(requestId)) {
      return answer(429, { error: 'duplicate_request_id', details: [`x-request-id ${requestId} was already used`] });
    }
    usedRequestIds.add(requestId);
    const transfer = transfers.get(partnerReference);
    if (!transfer) return answer(404, { error: 'not_found', details: [`no transfer with partnerReference ${partnerReference}`] });
    return answer(200, transfer);
  }

  async function route(request: IncomingMessage, response: ServerResponse) {
    const path = new URL(request.url ?? '/', 'http://simulator').pathname;
    const method = request.method ?? 'GET';

    const status = STATUS_PATH.exec(path);
    if (status) {
      if (method !== 'GET') throw new HttpError(405, 'method_not_allowed', ['use GET']);
      return statusRequest(request, response, decodeSegment(status[1]));
    }

    if (path.startsWith('/__simulator/')) {
      if (!authorized(request)) throw new HttpError(403, 'forbidden', ['missing or invalid bearer token']);
      if (path === '/__simulator/transfers' && method === 'POST') {
        const transfer = validTransfer(await readJson(request));
        transfers.set(transfer.partnerReference, transfer);
        return send(response, 200, { reported: transfer.partnerReference, status: transfer.status });
      }
      const one = TRANSFER_PATH.exec(path);
      if (one && method === 'DELETE') {
        const partnerReference = decodeSegment(one[1]);
        return send(response, 200, { forgotten: partnerReference, existed: transfers.delete(partnerReference) });
      }
      if (path === '/__simulator/fault' && method === 'PUT') {
        const next = validFault(await readJson(request));
        setFault(next);
        return send(response, 200, { fault: next ?? null });
      }
    }
    throw new HttpError(404, 'not_found', [`no route ${method} ${path}`]);
  }

  const server = createServer((request, response) => {
    route(request, response).catch((error: unknown) => {
      if (error instanceof HttpError) return sendError(response, error);
      send(response, 500, { error: 'internal_error', details: [error instanceof Error ? error.message : String(error)] });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    port,
    report,
    forget: (partnerReference) => void transfers.delete(partnerReference),
    setFault,
    requests,
    stop: async () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
