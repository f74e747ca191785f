// losetup over a byte range of a block device: how a linear LV is reached on a
// host without device-mapper (the LV's extents are one contiguous range of its
// PV). Argument arrays only; the device path comes from LVM's own report.
import { intArg, pathArg } from '../tools/args.js';
import { runTool } from '../tools/run.js';

export function attachArgv(o: { backing: string; offset: number; length: number }): string[] {
  return [
    'losetup', '--find', '--show',
    '--offset', intArg('losetup offset', o.offset, { min: 0, multipleOf: 512 }),
    '--sizelimit', intArg('losetup size limit', o.length, { min: 512, multipleOf: 512 }),
    pathArg('losetup backing device', o.backing),
  ];
}

export function detachArgv(loop: string): string[] {
  return ['losetup', '--detach', pathArg('loop device', loop)];
}

export async function attachRange(o: { backing: string; offset: number; length: number }): Promise<string> {
  const out = await runTool(attachArgv(o));
  const dev = out.stdout.trim();
  if (!/^\/dev\/loop\d+$/.test(dev)) throw new Error(`losetup printed ${JSON.stringify(dev)}, not a loop device`);
  return dev;
}

export async function detach(loop: string): Promise<void> {
  await runTool(detachArgv(loop));
}
