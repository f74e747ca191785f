// fsck -a before mounting an EXT SR: exit 1 ("errors corrected") is success, as in sm.
import { pathArg } from './args.js';
import { runTool, type RunOptions } from './run.js';

export interface FsckOptions {
  device: string;
}

export interface FsckResult {
  exitCode: 0 | 1;
  /** fsck repaired something (exit 1). */
  corrected: boolean;
}

export function fsckArgv(o: FsckOptions): string[] {
  return ['fsck', '-a', pathArg('fsck device', o.device)];
}

/** Exit 0 or 1 → result; anything else (2 reboot needed, 4 uncorrected, 8 operational error, …) → ToolError. */
export async function fsck(o: FsckOptions, run?: RunOptions): Promise<FsckResult> {
  const out = await runTool(fsckArgv(o), { ...run, okExitCodes: [0, 1] });
  const exitCode = out.exitCode === 1 ? 1 : 0;
  return { exitCode, corrected: exitCode === 1 };
}
