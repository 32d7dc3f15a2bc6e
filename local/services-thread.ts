import { kitOf } from '../test/providers/index.ts';
import { startSqsServer } from './engines.ts';
import { startStatusSimulator } from './status-simulator.ts';
import { runPart } from './threads.ts';

/**
 * What AWS and the providers run, for `npm start`, in a thread of its own (see local/threads.ts):
 * the SQS-API server and the simulated status endpoints (with TeleSign's messaging API, which the SMS
 * relay sends through). They are other parties' servers; here they answer the worker's receives,
 * deletes and status requests (and the relay's sends) without taking turns with the HTTP API on its
 * event loop, and the HTTP side's queue sends are answered while the worker is busy.
 */

export interface ServicesThreadSettings {
  /** Start the SQS-API server, its queues written through to this folder (absent: an SQS endpoint was given). */
  readonly sqsDataDir?: string;
  /** The status endpoints to simulate: the provider, and the secret it is simulated with. */
  readonly simulate: readonly { readonly provider: string; readonly secret: Record<string, unknown> }[];
}

export interface ServicesThreadInfo {
  readonly sqsEndpoint?: string;
  /** Simulated status endpoints' base URLs, by provider id. */
  readonly simulators: Record<string, string>;
  /**
   * The simulated messaging APIs (on the same base URL), by provider id: their send route, e.g.
   * `POST http://127.0.0.1:…/v1/messaging`. Each takes a message and then POSTs its signed delivery
   * reports to the URL set with `PUT /__simulator/delivery-report-url` (the pipeline's own route).
   */
  readonly messaging: Record<string, string>;
}

runPart<ServicesThreadSettings, ServicesThreadInfo>(async (settings) => {
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };
  try {
    const sqsServer = settings.sqsDataDir === undefined ? undefined : await startSqsServer({ dataDir: settings.sqsDataDir });
    if (sqsServer) stops.push(() => sqsServer.stop());
    const simulators: Record<string, string> = {};
    const messaging: Record<string, string> = {};
    for (const { provider, secret } of settings.simulate) {
      const simulation = kitOf(provider).statusSimulation!(secret);
      const simulator = await startStatusSimulator(simulation);
      stops.push(() => simulator.stop());
      simulators[provider] = simulator.baseUrl;
      if (simulation.messages) messaging[provider] = `${simulation.messages.route.method} ${simulator.baseUrl}${simulation.messages.route.path}`;
    }
    return { info: { ...(sqsServer ? { sqsEndpoint: sqsServer.endpoint } : {}), simulators, messaging }, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
});
