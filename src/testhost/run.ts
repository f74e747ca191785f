// One boot of the test host: write the job into a fresh shared directory, boot,
// read back what the guest recorded, remove the directory.
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';
import { PACKAGE_ROOT } from '../sdk/env.js';
import { bootArgv } from './backend.js';
import { checked } from './checked.js';
import { testHostConfig, type TestHostConfig } from './config.js';
import { ensureTestHost, type Log } from './prepare.js';
import { killGroup, trackGroup } from './process-group.js';

/** Exit code reported when the guest never recorded one (crash, timeout, boot failure). */
export const NOT_REPORTED = 125;

/** The guest could not be booted or never reported: a test must fail with this, never skip. */
export class TestHostError extends Error {
  override name = 'TestHostError';
}

export interface BootOptions {
  /** Working directory in the guest (default: process.cwd()); must be visible there (not under /run, /mnt, /srv). */
  cwd?: string;
  /** Extra environment for the command in the guest. */
  env?: Record<string, string>;
  /** Overrides of the environment-derived settings (backend, timeoutMs, memMiB, ...). */
  config?: Partial<TestHostConfig>;
  /** Called with the command's output while the guest runs (polled from the shared directory). */
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
  /** Progress lines (preparing the cache, ...). */
  log?: Log;
}

export interface BootOutcome {
  /** The command's exit status, or NOT_REPORTED (125) if the guest never recorded one. */
  exitCode: number;
  reported: boolean;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  /** Guest uptime (s) when the command started: the boot cost. */
  bootSeconds: number | undefined;
  /** Host wall time of the whole boot, ms. */
  wallMs: number;
  /** The guest console (kernel and init messages); explains a guest that never reported. */
  console: string;
  /** What the emulator printed itself (e.g. a bad option). */
  emulatorOutput: string;
}

const envKey = /^[A-Za-z_][A-Za-z0-9_]*$/;
const jobSchema = z.object({
  argv: z.array(z.string().refine((a) => !a.includes('\0'), 'arguments must not contain NUL')).min(1, 'the command is empty'),
  cwd: z.string().refine(isAbsolute, { error: (i) => `cwd must be an absolute path, got ${JSON.stringify(i.input)}` }),
  env: z
    .record(z.string(), z.string().refine((v) => !v.includes('\0'), 'environment values must not contain NUL'))
    .superRefine((env, ctx) => {
      for (const k of Object.keys(env)) {
        if (!envKey.test(k)) {
          ctx.addIssue({
            code: 'custom',
            message: `environment variable names are letters, digits and _ (not starting with a digit), got ${JSON.stringify(k)}`,
          });
        }
      }
    }),
});

const GUEST_FILES = ['guest-init', 'lib.sh', 'steps.sh'] as const;

/**
 * Boots the guest and runs `argv` as root, with `prepare(ioDir)` adding job files
 * first and `collect(ioDir)` reading results before the directory is removed.
 * Never throws for a guest failure: see `reported`.
 */
export async function bootTestHost<T = undefined>(
  argv: readonly string[],
  opts: BootOptions = {},
  hooks: { prepare?: (ioDir: string) => Promise<void>; collect?: (ioDir: string) => Promise<T> } = {},
): Promise<BootOutcome & { collected: T | undefined }> {
  const job = checked(jobSchema, { argv: [...argv], cwd: opts.cwd ?? process.cwd(), env: opts.env ?? {} }, 'test-host job');
  if (process.env['SM_TESTHOST_GUEST'] === '1') {
    throw new Error('already inside the test host: a guest cannot boot another one (under emulation it would take minutes)');
  }
  const cfg = testHostConfig(opts.config);
  const host = await ensureTestHost(cfg, opts.log);
  const runDir = await mkdtemp(join(tmpdir(), 'smapi-testhost-'));
  const ioDir = join(runDir, 'io');
  const consoleLog = join(runDir, 'console.log');
  try {
    await mkdir(join(ioDir, 'guest'), { recursive: true });
    for (const f of GUEST_FILES) await copyFile(join(PACKAGE_ROOT, 'testhost', 'guest', f), join(ioDir, 'guest', f));
    const nulList = (xs: string[]): string => xs.map((x) => `${x}\0`).join('');
    await writeFile(join(ioDir, 'argv'), nulList(job.argv));
    await writeFile(join(ioDir, 'env'), nulList(Object.entries(job.env).map(([k, v]) => `${k}=${v}`)));
    await writeFile(join(ioDir, 'cwd'), job.cwd);
    await hooks.prepare?.(ioDir);

    const [file, ...args] = bootArgv(host, cfg, { ioDir, consoleLog }) as [string, ...string[]];
    const t0 = Date.now();
    const child = execa(file, args, {
      reject: false,
      stdin: 'ignore',
      // user-mode-linux writes its console to stdout; QEMU writes it to the file itself.
      stdout: cfg.backend === 'uml' ? { file: consoleLog } : 'pipe',
      all: cfg.backend === 'qemu',
      // Its own process group: user-mode-linux runs as several host processes
      // (one per guest address space), and a timeout must kill them all, or the
      // survivors keep the pipes open and the run never ends (process-group.ts).
      detached: true,
    });
    let timedOut = false;
    const untrack = child.pid !== undefined ? trackGroup(child.pid) : () => undefined;
    const killer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) killGroup(child.pid);
      else child.kill('SIGKILL');
    }, cfg.timeoutMs);
    const stopTail = opts.onOutput ? tailOutputs(ioDir, opts.onOutput) : undefined;
    const r = await child.finally(() => {
      clearTimeout(killer);
      // Whatever of the group outlived the emulator (nothing, normally) goes with it.
      if (child.pid !== undefined) killGroup(child.pid);
      untrack();
    });
    await stopTail?.();
    const wallMs = Date.now() - t0;

    const read = (p: string): Promise<string> => readFile(join(ioDir, p), 'utf8').catch(() => '');
    const rcText = (await read('rc')).trim();
    const reported = /^[0-9]+$/.test(rcText);
    const started = Number.parseFloat(await read('started'));
    const outcome: BootOutcome = {
      exitCode: reported ? Number(rcText) : NOT_REPORTED,
      reported,
      timedOut,
      stdout: await read('stdout'),
      stderr: await read('stderr'),
      bootSeconds: Number.isFinite(started) ? started : undefined,
      wallMs,
      console: await readFile(consoleLog, 'utf8').catch(() => ''),
      emulatorOutput: typeof r.all === 'string' ? r.all : '',
    };
    const collected = hooks.collect && reported ? await hooks.collect(ioDir) : undefined;
    return { ...outcome, collected };
  } finally {
    if (cfg.keepRunDir) opts.log?.(`test host: kept ${runDir}`);
    else await rm(runDir, { recursive: true, force: true });
  }
}

/** Polls the guest's stdout/stderr files (written through 9p/hostfs) and forwards new bytes. */
function tailOutputs(ioDir: string, onOutput: NonNullable<BootOptions['onOutput']>): () => Promise<void> {
  const offsets = { stdout: 0, stderr: 0 };
  let busy: Promise<void> = Promise.resolve();
  const poll = async (): Promise<void> => {
    for (const s of ['stdout', 'stderr'] as const) {
      const p = join(ioDir, s);
      if (!existsSync(p)) continue;
      const fh = await open(p, 'r');
      try {
        for (;;) {
          const buf = Buffer.alloc(65536);
          const { bytesRead } = await fh.read(buf, 0, buf.length, offsets[s]);
          if (bytesRead === 0) break;
          offsets[s] += bytesRead;
          onOutput(s, buf.subarray(0, bytesRead));
        }
      } finally {
        await fh.close();
      }
    }
  };
  const timer = setInterval(() => {
    busy = busy.then(poll).catch(() => {});
  }, 200);
  return async () => {
    clearInterval(timer);
    await busy;
    await poll();
  };
}

/** Explains a boot that never reported, for an error a test shows. */
export function describeFailure(o: BootOutcome, timeoutMs: number): string {
  const why = o.timedOut
    ? `the guest did not finish within ${Math.round(timeoutMs / 1000)} s (SM_TESTHOST_TIMEOUT) and was killed`
    : 'the guest stopped without reporting an exit status';
  const tail = (s: string, n: number): string => s.split('\n').slice(-n).join('\n');
  return [
    `test host: ${why}.`,
    o.emulatorOutput.trim() !== '' ? `emulator output:\n${tail(o.emulatorOutput, 20)}` : '',
    o.console.trim() !== '' ? `guest console (last lines):\n${tail(o.console, 30)}` : 'guest console: empty',
    o.stderr.trim() !== '' ? `command stderr:\n${tail(o.stderr, 20)}` : '',
  ].filter((s) => s !== '').join('\n');
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  bootSeconds: number | undefined;
  wallMs: number;
}

/**
 * Runs `argv` as root in a fresh guest (cwd: the caller's) and returns its exit
 * status and output. Throws TestHostError if the guest cannot boot or never
 * reports, so that a test built on it fails with the reason instead of passing.
 */
export async function runInTestHost(argv: readonly string[], opts: BootOptions = {}): Promise<RunResult> {
  const o = await bootOrThrow(argv, opts);
  return { exitCode: o.exitCode, stdout: o.stdout, stderr: o.stderr, bootSeconds: o.bootSeconds, wallMs: o.wallMs };
}

export async function bootOrThrow<T>(
  argv: readonly string[],
  opts: BootOptions,
  hooks: Parameters<typeof bootTestHost<T>>[2] = {},
): Promise<BootOutcome & { collected: T | undefined }> {
  let o: BootOutcome & { collected: T | undefined };
  try {
    o = await bootTestHost(argv, opts, hooks);
  } catch (e) {
    if (e instanceof TypeError && e.message.startsWith('test-host job:')) throw e;
    throw new TestHostError(`test host: cannot boot: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (!o.reported) throw new TestHostError(describeFailure(o, testHostConfig(opts.config).timeoutMs));
  return o;
}
