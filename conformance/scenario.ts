// The shape of a scenario.
import type { ScenarioContext } from './context.js';

export interface Scenario {
  id: string;
  title: string;
  /** Capabilities the driver must declare; otherwise the scenario is skipped with the reason. */
  requires?: string[];
  /** Runs once per image format the driver declares (and the configuration allows). */
  perFormat?: boolean;
  /** Works on the shared SR: the VDI-count leak check applies before/after. */
  usesSr: boolean;
  run(ctx: ScenarioContext): Promise<void>;
}
