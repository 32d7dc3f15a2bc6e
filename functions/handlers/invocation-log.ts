import type { Context } from 'aws-lambda';
import { setLogContext } from '../shared/log.ts';

/** What an entry point reads of Lambda's context (tests and the local runtime pass less, or none). */
export type InvocationContext = Pick<Context, 'awsRequestId'> & Partial<Pick<Context, 'getRemainingTimeInMillis'>>;

/**
 * A Lambda entry point whose log lines name their invocation: `function_request_id` (Lambda's
 * request id, the one in its own START/REPORT lines and metrics) and `cold_start` (the first
 * invocation of this execution environment), the field names Powertools for AWS Lambda uses, so
 * existing Logs Insights queries work. A Node.js execution environment runs one invocation at a
 * time, so the fields hold for every line until the invocation ends.
 */
export function withInvocationLogFields<TEvent, TResult>(
  handler: (event: TEvent, context?: InvocationContext) => Promise<TResult>,
): (event: TEvent, context?: InvocationContext) => Promise<TResult> {
  // One entry point per function bundle: true until this execution environment's first invocation.
  let coldStart = true;
  return async (event, context) => {
    setLogContext({ function_request_id: context?.awsRequestId, cold_start: coldStart });
    coldStart = false;
    try {
      return await handler(event, context);
    } finally {
      setLogContext(undefined);
    }
  };
}
