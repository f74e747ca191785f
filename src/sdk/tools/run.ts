// The one place tool processes are spawned: argument arrays only (never a shell),
// exit codes checked here, failures turned into a ToolError that names the
// command line, the exit code and stderr.
//
// node:child_process directly, not execa: execa and its dependencies are ~130
// modules and ~150-200 ms of CPU to load, paid by every driver call that runs
// one tool (sr_scan's vhd-util scan), while all we need is spawn + collect.
import { spawn } from 'node:child_process';

/** What a finished tool call looked like; passed to recorders (tests, logging). */
export interface ToolCall {
  /** argv, program first. */
  readonly command: readonly string[];
  /** null when the process never ran or was killed by a signal. */
  readonly exitCode: number | null;
  readonly durationMs: number;
}

export type ToolErrorKind = 'exit' | 'timeout' | 'signal' | 'spawn' | 'output';

/** A tool failed, timed out, could not be started, or printed something we cannot parse. */
export class ToolError extends Error {
  override readonly name = 'ToolError';
  /** argv, program first. */
  readonly command: readonly string[];
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly kind: ToolErrorKind;

  constructor(init: {
    command: readonly string[];
    exitCode: number | null;
    stdout: string;
    stderr: string;
    kind?: ToolErrorKind;
    /** Replaces the default "exited with code N" part of the message. */
    reason?: string;
  }) {
    const kind = init.kind ?? 'exit';
    const reason = init.reason ?? `exited with code ${init.exitCode ?? 'none'}`;
    const detail = init.stderr.trim() || (kind === 'exit' ? init.stdout.trim() : '');
    super(`${formatCommand(init.command)}: ${reason}${detail ? `: ${truncate(detail, 2000)}` : ''}`);
    this.command = [...init.command];
    this.exitCode = init.exitCode;
    this.stdout = init.stdout;
    this.stderr = init.stderr;
    this.kind = kind;
  }
}

/** Quote an argv for humans (logs, error messages); never executed. */
export function formatCommand(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max)}…`;
}

type Recorder = (call: ToolCall) => void;
const recorders = new Set<Recorder>();

/** Call `recorder` after every tool call (success or failure). Returns the unsubscribe function. */
export function onToolCall(recorder: Recorder): () => void {
  recorders.add(recorder);
  return () => recorders.delete(recorder);
}

/** Collect every tool call from now until stop(); tests compare `argvs()` with golden fixtures. */
export function recordToolCalls(): { calls: ToolCall[]; argvs(): string[][]; stop(): void } {
  const calls: ToolCall[] = [];
  const stop = onToolCall((c) => calls.push(c));
  return { calls, argvs: () => calls.map((c) => [...c.command]), stop };
}

export interface RunOptions {
  /** Kill the tool (SIGTERM, then SIGKILL) after this many milliseconds. */
  timeoutMs?: number;
  /** Exit codes that are not failures; default [0]. */
  okExitCodes?: readonly number[];
  /** Written to the tool's stdin; otherwise stdin is /dev/null. */
  input?: string;
  /** Extra environment variables (added to the inherited environment). */
  env?: Record<string, string>;
  /** Run again after `delayMs` while the tool exits with one of `exitCodes` (e.g. EIO/EAGAIN), up to `attempts` runs in all. */
  retry?: RetryPolicy;
}

export interface RetryPolicy {
  attempts: number;
  delayMs: number;
  exitCodes: readonly number[];
}

export interface ToolOutput<T extends string | Buffer = string> {
  command: readonly string[];
  exitCode: number;
  stdout: T;
  stderr: string;
}

// C locale so that the messages we parse or match do not depend on the host's language;
// LVM otherwise warns about every inherited descriptor on stderr.
const BASE_ENV = { LC_ALL: 'C', LVM_SUPPRESS_FD_WARNINGS: '1' };

/** Run argv[0] with argv[1..]; resolve with its output or throw ToolError. */
export async function runTool(argv: readonly string[], opts: RunOptions = {}): Promise<ToolOutput<string>> {
  const out = await spawnWithRetry(argv, opts, false);
  return { ...out, stdout: out.stdout.toString('utf8') };
}

/** As runTool, but stdout is returned as raw bytes (e.g. `vhd-util read -B`). */
export async function runToolBinary(argv: readonly string[], opts: RunOptions = {}): Promise<ToolOutput<Buffer>> {
  return spawnWithRetry(argv, opts, true);
}

async function spawnWithRetry(argv: readonly string[], opts: RunOptions, binary: boolean): Promise<ToolOutput<Buffer>> {
  const retry = opts.retry;
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnTool(argv, opts, binary);
    } catch (e) {
      const retriable =
        retry !== undefined && e instanceof ToolError && e.kind === 'exit' && e.exitCode !== null && retry.exitCodes.includes(e.exitCode);
      if (!retriable || attempt >= retry.attempts) throw e;
      await new Promise((r) => setTimeout(r, retry.delayMs));
    }
  }
}

/** After a timeout's SIGTERM, how long a tool gets before SIGKILL (execa's default too). */
const FORCE_KILL_AFTER_MS = 5000;

interface Finished {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
  timedOut: boolean;
  spawnError?: NodeJS.ErrnoException;
}

/** Spawns argv (no shell), feeds `input` or /dev/null, collects both outputs; never rejects. */
function runProcess(file: string, args: readonly string[], opts: RunOptions): Promise<Finished> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let spawnError: NodeJS.ErrnoException | undefined;
    let timer: NodeJS.Timeout | undefined;
    let forceTimer: NodeJS.Timeout | undefined;
    const child = spawn(file, args, {
      env: { ...process.env, ...BASE_ENV, ...opts.env },
      stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnError ??= e;
    });
    if (opts.input !== undefined && child.stdin) {
      // A tool that exits without reading its input closes the pipe: that is its exit status' business, not an error here.
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.input);
    }
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGTERM');
        forceTimer = setTimeout(() => child.kill('SIGKILL'), FORCE_KILL_AFTER_MS);
        forceTimer.unref();
      }, opts.timeoutMs);
    }
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(forceTimer);
      resolve({
        exitCode: spawnError ? null : code,
        signal,
        stdout: Buffer.concat(out),
        stderr: Buffer.concat(err),
        timedOut,
        ...(spawnError ? { spawnError } : {}),
      });
    });
  });
}

async function spawnTool(argv: readonly string[], opts: RunOptions, binary: boolean): Promise<ToolOutput<Buffer>> {
  const [file, ...args] = argv;
  if (file === undefined || file === '') throw new TypeError('runTool: empty argv');
  const started = performance.now();
  const r = await runProcess(file, args, opts);
  const exitCode = r.exitCode;
  const call: ToolCall = { command: [...argv], exitCode, durationMs: performance.now() - started };
  for (const rec of recorders) rec(call);

  const stdout = r.stdout;
  const stderr = r.stderr.toString('utf8');
  const textOut = binary ? '' : stdout.toString('utf8');
  const base = { command: argv, exitCode, stdout: textOut, stderr };
  if (r.timedOut) {
    throw new ToolError({ ...base, kind: 'timeout', reason: `timed out after ${opts.timeoutMs} ms` });
  }
  if (exitCode === null) {
    if (r.signal) throw new ToolError({ ...base, kind: 'signal', reason: `killed by ${r.signal}` });
    const cause = r.spawnError?.code ?? r.spawnError?.message ?? 'unknown error';
    throw new ToolError({ ...base, kind: 'spawn', reason: `could not be started (${cause})` });
  }
  if (!(opts.okExitCodes ?? [0]).includes(exitCode)) throw new ToolError(base);
  return { command: argv, exitCode, stdout, stderr };
}

/** A ToolError for output we could not understand (the tool itself succeeded). */
export function outputError(out: ToolOutput<string | Buffer>, what: string): ToolError {
  return new ToolError({
    command: out.command,
    exitCode: out.exitCode,
    stdout: typeof out.stdout === 'string' ? out.stdout : '',
    stderr: out.stderr,
    kind: 'output',
    reason: `unexpected output (${what})${typeof out.stdout === 'string' && out.stdout ? `: ${JSON.stringify(truncate(out.stdout, 500))}` : ''}`,
  });
}
