// blkdiscard --zeroout: make a range of a block device read as zeros with the
// device's write-zeroes operation (an LV over a loop device or a thin/SSD-backed
// PV zeroes without writing every byte). A new raw LV must not show the data of
// whatever used those extents before.
import { intArg, pathArg } from './args.js';
import { runTool, type RunOptions } from './run.js';

export interface ZeroOutOptions {
  device: string;
  /** Bytes from the start of the device; default 0. */
  offset?: number;
  /** Bytes to zero; default to the end of the device. */
  length?: number;
}

export function zeroOutArgv(o: ZeroOutOptions): string[] {
  const argv = ['blkdiscard', '--zeroout'];
  if (o.offset !== undefined) argv.push('--offset', intArg('blkdiscard offset', o.offset));
  if (o.length !== undefined) argv.push('--length', intArg('blkdiscard length', o.length, { min: 1 }));
  argv.push(pathArg('blkdiscard device', o.device));
  return argv;
}

export async function zeroOut(o: ZeroOutOptions, run?: RunOptions): Promise<void> {
  await runTool(zeroOutArgv(o), run);
}
