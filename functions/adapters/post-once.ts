import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { PostAnswer, SendContext } from '../providers/provider.ts';
import { ConfigurationError, DependencyError, UncertainDeliveryError, errorMessage } from '../shared/errors.ts';

/**
 * One POST that knows whether it left: what a send without an idempotency key needs (TeleSign's SMS
 * API has none: a request sent twice is two messages to a person). `fetch` cannot tell a connection
 * never made from an answer never received; node:http can: the request's `finish` event fires once
 * the whole request was handed to the operating system.
 *
 * - Before `finish` (DNS failure, connection refused or not made in time, a connection lost while
 *   writing): the other side has no complete request, so it cannot have acted on it. DependencyError:
 *   safe to try again.
 * - After `finish` with no answer in time, or a connection lost before the status came: it may have
 *   been acted on. UncertainDeliveryError: never sent again.
 *
 * Every request gets a connection of its own (no keep-alive): a reused connection the server had
 * already closed fails only after the request was written, which would read as uncertain.
 */

export interface PostOnceOptions {
  /** Until the whole request is handed to the OS (DNS, connect, TLS, write). @default 3000 */
  readonly sendTimeoutMs?: number;
  /** From then until the answer's status and body are in. @default 10000 */
  readonly answerTimeoutMs?: number;
  /** Largest answer body read; the rest is dropped (the status still counts). @default 64 KiB */
  readonly maxAnswerBytes?: number;
}

export const POST_ONCE_DEFAULTS = { sendTimeoutMs: 3_000, answerTimeoutMs: 10_000, maxAnswerBytes: 64 * 1024 } as const;

/** Read the answer's body up to `max` bytes; undefined when it is cut off, too large or broken. */
function readBody(response: IncomingMessage, max: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    response.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        response.destroy();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    response.on('error', () => resolve(undefined));
    response.on('close', () => resolve(response.complete ? Buffer.concat(chunks).toString('utf8') : undefined));
  });
}

/** A `SendContext` whose POSTs are bounded as above. */
export function postOnceContext(options: PostOnceOptions = {}): SendContext {
  const sendTimeoutMs = options.sendTimeoutMs ?? POST_ONCE_DEFAULTS.sendTimeoutMs;
  const answerTimeoutMs = options.answerTimeoutMs ?? POST_ONCE_DEFAULTS.answerTimeoutMs;
  const maxAnswerBytes = options.maxAnswerBytes ?? POST_ONCE_DEFAULTS.maxAnswerBytes;

  return {
    post: (url, { headers, body, dependency, leaveWithinMs }) =>
      new Promise<PostAnswer>((resolve, reject) => {
        let target: URL;
        try {
          target = new URL(url);
        } catch {
          reject(new ConfigurationError(`${dependency}: the base URL does not make a valid URL`));
          return;
        }
        const send = target.protocol === 'https:' ? httpsRequest : target.protocol === 'http:' ? httpRequest : undefined;
        if (!send) {
          reject(new ConfigurationError(`${dependency}: the base URL must be http or https, got ${target.protocol}`));
          return;
        }
        // The request must have left by the caller's limit too (a code past its age is not sent).
        const leaveWithin = leaveWithinMs === undefined ? sendTimeoutMs : Math.min(sendTimeoutMs, Math.floor(leaveWithinMs));
        if (!(leaveWithin > 0)) {
          reject(new DependencyError(dependency, `${dependency}: the request was not sent (its time to leave had passed)`));
          return;
        }
        const bytes = Buffer.from(body, 'utf8');
        let left = false;
        let settled = false;
        let answerTimer: NodeJS.Timeout | undefined;
        const settle = (finish: () => void) => {
          if (settled) return;
          settled = true;
          clearTimeout(sendTimer);
          clearTimeout(answerTimer);
          finish();
        };
        const request: ClientRequest = send(target, {
          method: 'POST',
          headers: { ...headers, 'content-length': String(bytes.length) },
          agent: false,
        });
        const sendTimer = setTimeout(() => request.destroy(new Error(`the request was not sent within ${leaveWithin} ms`)), leaveWithin);
        request.on('finish', () => {
          left = true;
          clearTimeout(sendTimer);
          answerTimer = setTimeout(() => request.destroy(new Error(`no answer within ${answerTimeoutMs} ms of the request being sent`)), answerTimeoutMs);
        });
        let answered = false;
        request.on('error', (error) => {
          // Once the status is in, the body's own reading settles (a broken body is still an answer).
          if (answered) return;
          settle(() =>
            reject(
              left
                ? new UncertainDeliveryError(dependency, `${dependency}: the request was sent and no answer came (${errorMessage(error)}); it may have been acted on`, { cause: error })
                : new DependencyError(dependency, `${dependency}: the request was not sent (${errorMessage(error)})`, { cause: error }),
            ),
          );
        });
        request.on('response', (response) => {
          // The status is in: whatever happens to the body now, the answer is known.
          answered = true;
          clearTimeout(answerTimer);
          const bodyTimer = setTimeout(() => response.destroy(), answerTimeoutMs);
          response.on('close', () => clearTimeout(bodyTimer));
          const retryAfter = response.headers['retry-after'];
          void readBody(response, maxAnswerBytes).then((text) => settle(() => resolve({ status: response.statusCode ?? 0, body: text, ...(retryAfter === undefined ? {} : { retryAfter }) })));
        });
        request.end(bytes);
      }),
  };
}
