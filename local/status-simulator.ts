import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { secureEquals } from '../functions/shared/secure-compare.ts';

/**
 * A SIMULATION of a provider's status endpoint, for the local pipeline and the tests. It is not the
 * provider: it only knows the answers it was told about. What the endpoint looks like (its path,
 * its authentication, its answers) comes from the provider's test kit as a `StatusSimulation`;
 * this engine adds what every simulation needs:
 *
 * - answers reported with `report()` (or `POST /__simulator/answers`, body: the answer as the
 *   provider would give it; `?ifAbsent=true` keeps an answer the subject already has) and forgotten with `forget()` (`DELETE /__simulator/answers/{subject}`);
 * - faults played instead of (status, hang) or before (delayMs) the normal answer, for the next
 *   `times` requests or until cleared: `setFault()` (`PUT /__simulator/fault`, body: a fault or null;
 *   `retryAfter` adds that Retry-After header to a `status` answer);
 * - a log of every status request.
 *
 * The control routes take `Authorization: Bearer <controlToken>`. Runtime dependencies only
 * (node:http and the project's own modules): `npm start` runs it.
 *
 * A simulation may also play the provider's messaging API (`messages`: TeleSign's POST /v1/messaging),
 * on the same base URL as its status endpoint (one `baseUrl` in the secret serves both): a send is
 * checked and answered as the provider does, logged in `sent`, made known to the status endpoint,
 * and its delivery reports are POSTed, signed as the provider signs them, to the delivery report URL
 * (the gateway's own callback route: `setDeliveryReportUrl`, `PUT /__simulator/delivery-report-url`,
 * body `{"url": …}` or `{"url": null}`), each retried twice on failure (after 1 s, then 3 s). Send
 * faults (`setSendFault`, `PUT /__simulator/send-fault`): `status` answers it (with `retryAfter` as
 * its Retry-After header) and sends nothing;
 * `delayMs` and `hang` take the message (it goes out, its reports come) and answer late or never:
 * what a client that times out cannot tell from a message that was never taken. What was sent is
 * listed by `sent` (`GET /__simulator/sent`: `{"sent": [...]}`, each with the parameters as sent,
 * as the provider's own portal shows them, and a send that took nothing with the answer that said
 * why in `refusal`; it is never logged).
 */

/** A request as the simulation sees it. */
export interface SimulatedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: Buffer;
}

export interface SimulatedAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** One provider's status endpoint, as its test kit describes it. */
export interface StatusSimulation {
  /** The provider's display name, for banners. */
  readonly name: string;
  /** The subject a status request asks about; undefined when the request is not a status request. */
  subjectOf(request: SimulatedRequest): string | undefined;
  /** The provider's own refusal of a status request (credentials, missing headers, a reused id), if any. */
  refuse(request: SimulatedRequest): SimulatedAnswer | undefined;
  /** Whether the request carries the right credentials (recorded in the request log). */
  authorized(request: SimulatedRequest): boolean;
  /** The request's own id, if the provider asks for one (TemboPlus's x-request-id). */
  requestIdOf?(request: SimulatedRequest): string | undefined;
  /** The answer for a known subject. */
  found(answer: unknown): SimulatedAnswer;
  /** The answer for an unknown subject. */
  notFound(subjectId: string): SimulatedAnswer;
  /** The subject a reported answer is about; throws, naming the problem, when it is not an answer. */
  subjectOfAnswer(answer: unknown): string;
  /** The token the control routes accept (the provider's credential, so only its holder controls it). */
  readonly controlToken: string;
  /** The provider's messaging API, when it has one the gateway sends through. */
  readonly messages?: MessageSimulation;
}

/** A provider's messaging API, as its kit describes it: what a send is, how it is refused, what taking one means. */
export interface MessageSimulation {
  /** The send route (TeleSign: POST /v1/messaging), for banners. */
  readonly route: { readonly method: string; readonly path: string };
  /** Whether the request is a send request (and not a status request). */
  isSend(request: SimulatedRequest): boolean;
  /** The parameters of a send as the client sent them, taken or not (listed in `sent`, in memory only: they hold a phone number and a text). */
  parametersOf(request: SimulatedRequest): Record<string, string>;
  /** The provider's own refusal of a send (credentials, a missing or invalid parameter), if any: nothing is sent. */
  refuseSend(request: SimulatedRequest): SimulatedAnswer | undefined;
  /** Take the message: the answer, the provider's reference, what the status endpoint says of it now, and its delivery reports. */
  accept(request: SimulatedRequest, now: Date): AcceptedMessage;
}

export interface AcceptedMessage {
  readonly answer: SimulatedAnswer;
  readonly referenceId: string;
  /** What the status endpoint answers about the message until its first report. */
  readonly statusAnswer?: unknown;
  readonly reports: readonly DeliveryReport[];
}

/** A delivery report, POSTed to the delivery report URL `afterMs` after the send. */
export interface DeliveryReport {
  readonly afterMs: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  /** What the status endpoint answers about the message once this report is sent. */
  readonly statusAnswer?: unknown;
}

/** One message the simulation took (or refused), as `sent` lists it. */
export interface SimulatedMessage {
  /** The provider's reference; absent when the send was refused or failed by a fault. */
  referenceId?: string;
  readonly authorized: boolean;
  /** What the client asked to send, whether or not it was taken. */
  readonly parameters: Readonly<Record<string, string>>;
  /** The status answered; absent while unanswered (a hang fault, or a delay still running). */
  status?: number;
  /** A send that took nothing: the body answered (the provider's refusal names the parameter that was wrong, or the fault). */
  refusal?: unknown;
  /** Each delivery report's fate: the status the receiver answered, or the error. */
  readonly reports: { status?: number; error?: string }[];
}

/**
 * A fault to play on the status endpoint, instead of (status, hang) or before (delayMs) the normal
 * answer. `times` limits it to the next n status requests; without it, it lasts until cleared.
 */
export interface StatusFault {
  /** Answer this status (e.g. 500, 429, 503) with a JSON error body. */
  readonly status?: number;
  /** With `status`: the answer's `Retry-After` header, as sent (seconds, or an HTTP date). */
  readonly retryAfter?: string;
  /** Wait this long before answering (normally, or with `status`). */
  readonly delayMs?: number;
  /** Never answer; the connection stays open until the client gives up or the simulator stops. */
  readonly hang?: boolean;
  readonly times?: number;
}

/** One call to the status endpoint, as the simulator saw it. */
export interface SimulatorRequest {
  readonly subjectId: string;
  /** The request's own id (TemboPlus's x-request-id), if any. */
  readonly requestId?: string;
  /** Whether the request carried the right credentials. */
  readonly authorized: boolean;
  /** The status answered; absent while unanswered (a hang fault, or a delay still running). */
  status?: number;
}

export interface StatusSimulator {
  /** `http://127.0.0.1:<port>`: the provider's `baseUrl` in the secrets. */
  readonly baseUrl: string;
  readonly port: number;
  readonly name: string;
  /** Remember an answer (or overwrite it), keyed by its subject. Throws if it is not an answer. */
  report(answer: unknown): void;
  /** Forget a subject: its status requests answer "not found" again. */
  forget(subjectId: string): void;
  /** Play a fault on the status endpoint; `undefined` clears it. */
  setFault(fault: StatusFault | undefined): void;
  /** Every status request received, oldest first. */
  readonly requests: SimulatorRequest[];
  /** Play a fault on the messaging API's sends; `undefined` clears it. */
  setSendFault(fault: StatusFault | undefined): void;
  /** Where delivery reports go (the gateway's callback route for the provider); without one, none are sent. */
  setDeliveryReportUrl(url: string | undefined): void;
  /** Every send request received, oldest first (in memory only). */
  readonly sent: SimulatedMessage[];
  /** Resolves once no delivery report is waiting to be sent (or being sent). */
  reportsSettled(): Promise<void>;
  /** Close the server, dropping delayed and hung connections. */
  stop(): Promise<void>;
}

const ANSWER_PATH = /^\/__simulator\/answers\/([^/]+)$/;
const MAX_BODY_BYTES = 256 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly details: readonly string[] = [],
  ) {
    super(details.length ? `${error}: ${details.join('; ')}` : error);
  }
}

function validFault(body: unknown): StatusFault | undefined {
  if (body === null) return undefined;
  if (typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'invalid_fault', ['expected an object or null']);
  const { status, delayMs, hang, times, retryAfter } = body as Record<string, unknown>;
  const details: string[] = [];
  if (status !== undefined && !(Number.isInteger(status) && (status as number) >= 200 && (status as number) <= 599)) details.push('status: an HTTP status code');
  if (delayMs !== undefined && !(typeof delayMs === 'number' && delayMs >= 0)) details.push('delayMs: a number ≥ 0');
  if (hang !== undefined && typeof hang !== 'boolean') details.push('hang: a boolean');
  if (times !== undefined && !(Number.isInteger(times) && (times as number) > 0)) details.push('times: an integer > 0');
  if (retryAfter !== undefined && !(typeof retryAfter === 'string' && /^[\x20-\x7e]{1,64}$/.test(retryAfter))) details.push('retryAfter: a header value (seconds or an HTTP date)');
  if (details.length) throw new HttpError(400, 'invalid_fault', details);
  return body as StatusFault;
}

/** `{"url": "http(s)://…"}`, or `{"url": null}` for none. */
function validReportUrl(body: unknown): string | undefined {
  const url = (body as { url?: unknown } | null)?.url;
  if (url === null) return undefined;
  if (typeof url !== 'string' || !URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    throw new HttpError(400, 'invalid_url', ['expected {"url": "http(s)://…"} or {"url": null}']);
  }
  return url;
}

function send(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (response.writableEnded || response.destroyed) return;
  const text = JSON.stringify(body);
  response.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'payload_too_large', [`at most ${MAX_BODY_BYTES} bytes`]);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
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

/** Retries of a delivery report the receiver did not take, after the first try (TeleSign: "a total of three tries"). */
const REPORT_RETRY_DELAYS_MS = [1_000, 3_000];

/** Start a simulated status endpoint on 127.0.0.1. */
export async function startStatusSimulator(simulation: StatusSimulation, options: { port?: number; deliveryReportUrl?: string } = {}): Promise<StatusSimulator> {
  if (!simulation.controlToken) throw new Error(`${simulation.name} simulator: the control token must not be empty`);
  const answers = new Map<string, unknown>();
  const requests: SimulatorRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let fault: { fault: StatusFault; remaining: number } | undefined;
  let sendFault: { fault: StatusFault; remaining: number } | undefined;
  let deliveryReportUrl = options.deliveryReportUrl;
  const sent: SimulatedMessage[] = [];
  /** Reports waiting or in progress; `reportsSettled` waits for them. */
  const pendingReports = new Set<Promise<void>>();

  /** Remember the answer for its subject; with `ifAbsent`, only when the subject has none yet. */
  const report = (answer: unknown, ifAbsent = false) => {
    let subjectId: string;
    try {
      subjectId = simulation.subjectOfAnswer(answer);
    } catch (error) {
      throw new HttpError(400, 'invalid_answer', [(error as Error).message]);
    }
    if (ifAbsent && answers.has(subjectId)) return { subjectId, kept: true };
    answers.set(subjectId, answer);
    return { subjectId, kept: false };
  };
  const setFault = (next: StatusFault | undefined) => {
    fault = next ? { fault: next, remaining: next.times ?? Number.POSITIVE_INFINITY } : undefined;
  };
  /** The fault for this request, if one is armed; counts it down. */
  const takeFault = (): StatusFault | undefined => {
    if (!fault) return undefined;
    const current = fault.fault;
    fault.remaining -= 1;
    if (fault.remaining <= 0) fault = undefined;
    return current;
  };
  const takeSendFault = (): StatusFault | undefined => {
    if (!sendFault) return undefined;
    const current = sendFault.fault;
    sendFault.remaining -= 1;
    if (sendFault.remaining <= 0) sendFault = undefined;
    return current;
  };
  let stopped = false;
  /** Waits of delivery reports: ended (resolved) by stop, so no report outlives the simulator. */
  const reportWaits = new Set<() => void>();
  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });
  const reportWait = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        reportWaits.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      reportWaits.add(done);
    });

  async function statusRequest(request: SimulatedRequest, response: ServerResponse, subjectId: string) {
    const requestId = simulation.requestIdOf?.(request);
    const seen: SimulatorRequest = { subjectId, ...(requestId ? { requestId } : {}), authorized: simulation.authorized(request) };
    requests.push(seen);
    const answer = ({ status, body }: SimulatedAnswer, headers?: Record<string, string>) => {
      seen.status = status;
      send(response, status, body, headers);
    };

    const playing = takeFault();
    if (playing?.delayMs) await wait(playing.delayMs);
    if (playing?.hang) return;
    if (playing?.status) {
      const error = playing.status === 429 ? 'too_many_requests' : 'simulated_fault';
      return answer({ status: playing.status, body: { error, details: [`simulated fault: status ${playing.status}`] } }, playing.retryAfter === undefined ? undefined : { 'retry-after': playing.retryAfter });
    }
    const refusal = simulation.refuse(request);
    if (refusal) return answer(refusal);
    return answer(answers.has(subjectId) ? simulation.found(answers.get(subjectId)) : simulation.notFound(subjectId));
  }

  /** POST one report to the delivery report URL, retrying as the provider does; the outcome goes into `fate`. */
  async function deliver(report: DeliveryReport, fate: { status?: number; error?: string }) {
    await reportWait(report.afterMs);
    for (let attempt = 0; ; attempt++) {
      if (stopped) return;
      const url = deliveryReportUrl;
      if (!url) {
        fate.error = 'no delivery report URL';
        return;
      }
      try {
        const answer = await fetch(url, { method: 'POST', headers: { ...report.headers }, body: report.body, signal: AbortSignal.timeout(5_000) });
        await answer.body?.cancel();
        fate.status = answer.status;
        delete fate.error;
        if (answer.ok) {
          if (report.statusAnswer !== undefined) report_(report.statusAnswer);
          return;
        }
      } catch (error) {
        fate.error = error instanceof Error ? error.message : String(error);
      }
      if (attempt >= REPORT_RETRY_DELAYS_MS.length) return;
      await reportWait(REPORT_RETRY_DELAYS_MS[attempt]);
    }
  }
  const report_ = (answer: unknown) => {
    try {
      report(answer);
    } catch {
      // the kit's own answer: a bad one is the kit's bug, and the status endpoint just does not know it
    }
  };

  async function sendRequest(messages: MessageSimulation, request: SimulatedRequest, response: ServerResponse) {
    const seen: SimulatedMessage = { authorized: simulation.authorized(request), parameters: messages.parametersOf(request), reports: [] };
    sent.push(seen);
    const answer = ({ status, body }: SimulatedAnswer, headers?: Record<string, string>) => {
      seen.status = status;
      send(response, status, body, headers);
    };
    const refuse = (refusal: SimulatedAnswer, headers?: Record<string, string>) => {
      seen.refusal = refusal.body;
      answer(refusal, headers);
    };
    const playing = takeSendFault();
    if (playing?.status) {
      if (playing.delayMs) await wait(playing.delayMs);
      const error = playing.status === 429 ? 'too_many_requests' : 'simulated_fault';
      return refuse({ status: playing.status, body: { error, details: [`simulated fault: status ${playing.status}`] } }, playing.retryAfter === undefined ? undefined : { 'retry-after': playing.retryAfter });
    }
    const refusal = messages.refuseSend(request);
    if (refusal) return refuse(refusal);
    const accepted = messages.accept(request, new Date());
    seen.referenceId = accepted.referenceId;
    if (accepted.statusAnswer !== undefined) report_(accepted.statusAnswer);
    for (const each of accepted.reports) {
      const fate: { status?: number; error?: string } = {};
      seen.reports.push(fate);
      const pending: Promise<void> = deliver(each, fate).finally(() => pendingReports.delete(pending));
      pendingReports.add(pending);
    }
    // Taken: a delay or a hang now only keeps the answer from the client.
    if (playing?.delayMs) await wait(playing.delayMs);
    if (playing?.hang) return;
    return answer(accepted.answer);
  }

  async function route(incoming: IncomingMessage, response: ServerResponse) {
    const url = new URL(incoming.url ?? '/', 'http://simulator');
    const headers: Record<string, string | undefined> = {};
    for (const [name, value] of Object.entries(incoming.headers)) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
    const request: SimulatedRequest = { method: incoming.method ?? 'GET', path: url.pathname, query: url.searchParams, headers, body: await readBody(incoming) };

    if (request.path.startsWith('/__simulator/')) {
      const bearer = /^Bearer (.+)$/.exec(headers.authorization ?? '')?.[1];
      if (!secureEquals(bearer, simulation.controlToken)) throw new HttpError(403, 'forbidden', ['missing or invalid bearer token']);
      if (request.path === '/__simulator/answers' && request.method === 'POST') {
        // `?ifAbsent=true`: a subject the endpoint already answers about keeps its answer.
        const { subjectId, kept } = report(parseJson(request.body), request.query.get('ifAbsent') === 'true');
        return send(response, 200, { reported: subjectId, ...(kept ? { kept: true } : {}) });
      }
      const one = ANSWER_PATH.exec(request.path);
      if (one && request.method === 'DELETE') {
        const subjectId = decodeSegment(one[1]);
        return send(response, 200, { forgotten: subjectId, existed: answers.delete(subjectId) });
      }
      if (request.path === '/__simulator/fault' && request.method === 'PUT') {
        const next = validFault(parseJson(request.body));
        setFault(next);
        return send(response, 200, { fault: next ?? null });
      }
      if (request.path === '/__simulator/delivery-report-url' && request.method === 'PUT') {
        deliveryReportUrl = validReportUrl(parseJson(request.body));
        return send(response, 200, { deliveryReportUrl: deliveryReportUrl ?? null });
      }
      if (request.path === '/__simulator/sent' && request.method === 'GET') return send(response, 200, { sent });
      if (request.path === '/__simulator/send-fault' && request.method === 'PUT') {
        const next = validFault(parseJson(request.body));
        sendFault = next ? { fault: next, remaining: next.times ?? Number.POSITIVE_INFINITY } : undefined;
        return send(response, 200, { sendFault: next ?? null });
      }
      throw new HttpError(404, 'not_found', [`no route ${request.method} ${request.path}`]);
    }

    if (simulation.messages?.isSend(request)) return sendRequest(simulation.messages, request, response);
    const subjectId = simulation.subjectOf(request);
    if (subjectId !== undefined) return statusRequest(request, response, subjectId);
    throw new HttpError(404, 'not_found', [`no route ${request.method} ${request.path}`]);
  }

  const server = createServer((request, response) => {
    route(request, response).catch((error: unknown) => {
      if (error instanceof HttpError) return send(response, error.status, { error: error.error, details: error.details });
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
    name: simulation.name,
    report: (answer) => void report(answer),
    forget: (subjectId) => void answers.delete(subjectId),
    setFault,
    requests,
    setSendFault: (next) => void (sendFault = next ? { fault: next, remaining: next.times ?? Number.POSITIVE_INFINITY } : undefined),
    setDeliveryReportUrl: (url) => void (deliveryReportUrl = url),
    sent,
    reportsSettled: async () => {
      while (pendingReports.size > 0) await Promise.allSettled([...pendingReports]);
    },
    stop: async () => {
      stopped = true;
      for (const done of [...reportWaits]) done();
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** Raised by a simulation for a request its provider refuses. */
export { HttpError as SimulatedHttpError };

/**
 * The subject of a `GET <path>/<id>` status request, for a simulation's `subjectOf`: the path's
 * first capture, percent-decoded; undefined when `path` does not match; 405 for another method and
 * 400 for a broken percent-encoding, as the providers' own endpoints refuse them.
 */
export function subjectOfGetPath(request: SimulatedRequest, path: RegExp): string | undefined {
  const match = path.exec(request.path);
  if (!match) return undefined;
  if (request.method !== 'GET') throw new HttpError(405, 'method_not_allowed', ['use GET']);
  try {
    return decodeURIComponent(match[1]);
  } catch {
    throw new HttpError(400, 'validation_error', ['the path is not valid percent-encoding']);
  }
}
