// mount / umount, and "is this a mount point" answered from /proc/self/mountinfo
// (no process spawned; exact, including bind mounts and mounts over mounts).
import { readFile, realpath } from 'node:fs/promises';
import { nameArg, pathArg } from './args.js';
import { runTool, type RunOptions } from './run.js';

export interface MountOptions {
  source: string;
  target: string;
  /** `-t`. Omit for a bind mount. */
  fsType?: string;
  /** `-o`, joined with commas. */
  options?: readonly string[];
}

export function mountArgv(o: MountOptions): string[] {
  const argv = ['mount'];
  if (o.fsType !== undefined) argv.push('-t', nameArg('mount fs type', o.fsType));
  const opts = o.options ?? [];
  for (const opt of opts) {
    if (opt === '' || opt.includes(',') || /\s/.test(opt)) throw new TypeError(`mount option ${JSON.stringify(opt)}: must be non-empty, without commas or spaces`);
  }
  if (opts.length > 0) argv.push('-o', opts.join(','));
  argv.push(pathArg('mount source', o.source), pathArg('mount target', o.target));
  return argv;
}

export async function mount(o: MountOptions, run?: RunOptions): Promise<void> {
  await runTool(mountArgv(o), run);
}

export interface BindMountOptions {
  source: string;
  target: string;
}

export function bindMountArgv(o: BindMountOptions): string[] {
  return ['mount', '--bind', pathArg('bind source', o.source), pathArg('bind target', o.target)];
}

export async function bindMount(o: BindMountOptions, run?: RunOptions): Promise<void> {
  await runTool(bindMountArgv(o), run);
}

export interface UmountOptions {
  target: string;
  /** `-l`: detach now, clean up when no longer busy. */
  lazy?: boolean;
  /** `-f`: force (unreachable NFS server). */
  force?: boolean;
}

export function umountArgv(o: UmountOptions): string[] {
  return ['umount', ...(o.lazy ? ['-l'] : []), ...(o.force ? ['-f'] : []), pathArg('umount target', o.target)];
}

export async function umount(o: UmountOptions, run?: RunOptions): Promise<void> {
  await runTool(umountArgv(o), run);
}

export interface MountInfoEntry {
  mountId: number;
  parentId: number;
  /** major:minor of the file system. */
  device: string;
  /** Directory of the file system that is mounted here ('/' unless a bind of a subdirectory). */
  root: string;
  mountPoint: string;
  mountOptions: string[];
  fsType: string;
  source: string;
  superOptions: string[];
}

// mountinfo escapes space, tab, newline and backslash as \ooo octal.
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parse proc(5) mountinfo text. */
export function parseMountInfo(text: string): MountInfoEntry[] {
  const entries: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (f.length < 10 || sep < 0 || f.length < sep + 4) throw new Error(`mountinfo: cannot parse line ${JSON.stringify(line)}`);
    entries.push({
      mountId: Number(f[0]),
      parentId: Number(f[1]),
      device: f[2]!,
      root: unescape(f[3]!),
      mountPoint: unescape(f[4]!),
      mountOptions: f[5]!.split(','),
      fsType: f[sep + 1]!,
      source: unescape(f[sep + 2]!),
      superOptions: f[sep + 3]!.split(','),
    });
  }
  return entries;
}

export async function readMountInfo(file = '/proc/self/mountinfo'): Promise<MountInfoEntry[]> {
  return parseMountInfo(await readFile(file, 'utf8'));
}

/** The mount visible at `path` (the last one mounted there), or null if it is not a mount point. */
export async function findMount(path: string, file?: string): Promise<MountInfoEntry | null> {
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    return null;
  }
  const hits = (await readMountInfo(file)).filter((e) => e.mountPoint === real);
  return hits.at(-1) ?? null;
}

export async function isMountPoint(path: string, file?: string): Promise<boolean> {
  return (await findMount(path, file)) !== null;
}
