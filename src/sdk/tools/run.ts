// The one place tool processes are spawned: argument arrays only (never a shell),
// exit codes checked here, failures turned into a ToolError that names the
// command line, the exit code and stderr.
import { execa } from 'execa';

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

async function spawnTool(argv: readonly string[], opts: RunOptions, binary: boolean): Promise<ToolOutput<Buffer>> {
  const [file, ...args] = argv;
  if (file === undefined || file === '') throw new TypeError('runTool: empty argv');
  const started = performance.now();
  const r = await execa(file, args, {
    reject: false,
    encoding: 'buffer',
    stripFinalNewline: false,
    env: { ...BASE_ENV, ...opts.env },
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
    ...(opts.timeoutMs !== undefined ? { timeout: opts.timeoutMs } : {}),
  });
  const exitCode = typeof r.exitCode === 'number' ? r.exitCode : null;
  const call: ToolCall = { command: [...argv], exitCode, durationMs: performance.now() - started };
  for (const rec of recorders) rec(call);

  const stdoutBuf = toBuffer(r.stdout);
  const stdout = stdoutBuf;
  const stderr = toBuffer(r.stderr).toString('utf8');
  const textOut = binary ? '' : stdoutBuf.toString('utf8');
  const base = { command: argv, exitCode, stdout: textOut, stderr };
  if (r.timedOut) {
    throw new ToolError({ ...base, kind: 'timeout', reason: `timed out after ${opts.timeoutMs} ms` });
  }
  if (exitCode === null) {
    if (r.signal) throw new ToolError({ ...base, kind: 'signal', reason: `killed by ${r.signal}` });
    const cause = (r as { code?: string }).code ?? r.shortMessage ?? 'unknown error';
    throw new ToolError({ ...base, kind: 'spawn', reason: `could not be started (${cause})` });
  }
  if (!(opts.okExitCodes ?? [0]).includes(exitCode)) throw new ToolError(base);
  return { command: argv, exitCode, stdout, stderr };
}

function toBuffer(v: unknown): Buffer {
  if (v === undefined || v === null) return Buffer.alloc(0);
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new TypeError(`unexpected tool output type ${typeof v}`);
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
