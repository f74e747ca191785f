// Files a guest command hands back: it writes them under $TESTHOST_OUT (a
// directory inside the shared job directory), and they are read on this host
// before the job directory is removed -- the guest sees the host's / read-only.
import { cp, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bootOrThrow, type BootOptions, type RunResult } from './run.js';

/** The variable that names the guest's output directory, and where that is in the guest. */
export const GUEST_OUT_ENV = 'TESTHOST_OUT';
export const GUEST_OUT_DIR = '/.testhost/io/out';

/** Boot hooks: make the output directory, then `collect` it (a host path) once the guest reported. */
export function outDirHooks<T>(collect: (hostOutDir: string) => Promise<T>) {
  return {
    prepare: async (ioDir: string): Promise<void> => {
      await mkdir(join(ioDir, 'out'));
    },
    collect: (ioDir: string): Promise<T> => collect(join(ioDir, 'out')),
  };
}

/** Hooks that copy everything the guest wrote under $TESTHOST_OUT to `hostDir`. */
export function copyOutTo(hostDir: string) {
  return outDirHooks(async (from) => {
    await mkdir(hostDir, { recursive: true });
    await cp(from, hostDir, { recursive: true });
  });
}

export interface RunWithOutput extends RunResult {
  /** The files the command wrote directly under $TESTHOST_OUT, by name. */
  files: Map<string, Buffer>;
}

/**
 * As runInTestHost, and returns the files the command wrote directly under
 * $TESTHOST_OUT. Throws TestHostError if the guest never reported.
 */
export async function runInTestHostWithOutput(argv: readonly string[], opts: BootOptions = {}): Promise<RunWithOutput> {
  const o = await bootOrThrow(argv, { ...opts, env: { ...opts.env, [GUEST_OUT_ENV]: GUEST_OUT_DIR } }, outDirHooks(async (dir) => {
    const files = new Map<string, Buffer>();
    for (const e of await readdir(dir, { withFileTypes: true })) if (e.isFile()) files.set(e.name, await readFile(join(dir, e.name)));
    return files;
  }));
  return { exitCode: o.exitCode, stdout: o.stdout, stderr: o.stderr, bootSeconds: o.bootSeconds, wallMs: o.wallMs, files: o.collected ?? new Map() };
}
