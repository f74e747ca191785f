// mkfs.ext4, as EXTSR formats its LV (`mkfs.ext4 -F DEV`).
import { intArg, pathArg } from './args.js';
import { runTool, type RunOptions } from './run.js';

export interface MkfsExt4Options {
  device: string;
  /** `-L`: at most 16 bytes. */
  label?: string;
  /** `-q`. */
  quiet?: boolean;
  /** `-m`: percentage of blocks reserved for root (ext4's default is 5). */
  reservedPercent?: number;
  /** `-E` extended options, e.g. ['lazy_itable_init=0']. */
  extended?: readonly string[];
}

export function mkfsExt4Argv(o: MkfsExt4Options): string[] {
  const argv = ['mkfs.ext4', '-F'];
  if (o.quiet) argv.push('-q');
  if (o.label !== undefined) {
    if (Buffer.byteLength(o.label) > 16 || o.label.startsWith('-')) throw new TypeError(`mkfs.ext4 label ${JSON.stringify(o.label)}: at most 16 bytes, not starting with '-'`);
    argv.push('-L', o.label);
  }
  if (o.reservedPercent !== undefined) argv.push('-m', intArg('mkfs.ext4 reserved percent', o.reservedPercent));
  if (o.extended && o.extended.length > 0) argv.push('-E', o.extended.join(','));
  argv.push(pathArg('mkfs.ext4 device', o.device));
  return argv;
}

export async function mkfsExt4(o: MkfsExt4Options, run?: RunOptions): Promise<void> {
  await runTool(mkfsExt4Argv(o), run);
}
