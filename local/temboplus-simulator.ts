import { temboplusStatusSimulation } from '../test/providers/temboplus.ts';
import { startStatusSimulator, type StatusFault, type StatusSimulator } from './status-simulator.ts';

/**
 * The simulated TemboPlus status endpoint, for the suites that still start it by name; new code
 * starts every asked provider's simulation from its test kit (`kitOf(p).statusSimulation`).
 */
export type TemboPlusSimulator = StatusSimulator;
export type TemboPlusFault = StatusFault;

export function startTemboPlusSimulator(options: { apiToken: string; port?: number }): Promise<TemboPlusSimulator> {
  if (!options.apiToken) throw new Error('startTemboPlusSimulator: apiToken must not be empty');
  return startStatusSimulator(temboplusStatusSimulation(options.apiToken), { port: options.port });
}
