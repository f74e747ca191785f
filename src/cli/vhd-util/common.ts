// Plumbing shared by the subcommands, in one module to keep start-up short:
// getopt-style parsing, blktap's usage/exit rules, synchronous output.
import { writeSync } from 'node:fs';
import { errnoOf } from '../../sdk/vhd/errors.js';

function writeAll(fd: number, data: string | Uint8Array): void {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      // the reader went away (`| head`): stop quietly, as a C tool killed by SIGPIPE
      if ((e as { code?: string }).code === 'EPIPE') process.exit(141);
      if ((e as { code?: string }).code === 'EAGAIN') {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
        continue;
      }
      throw e;
    }
  }
}

export const out = (data: string | Uint8Array): void => writeAll(1, data);
export const err = (data: string | Uint8Array): void => writeAll(2, data);

// getopt(3) as blktap uses it: bundled flags (-vsf), attached or separate arguments
// (-n x / -nx), free order, positional arguments collected, "--" ends options.

export interface Parsed {
  /** Options in the order given; the value is the argument or '' for flags. */
  opts: { flag: string; value: string }[];
  positional: string[];
}

export class GetoptError extends Error {}

/** `spec` is a getopt optstring, e.g. "n:s:rhS:". Errors are printed like glibc's getopt. */
export function getopt(command: string, argv: string[], spec: string): Parsed {
  const takesArg = new Map<string, boolean>();
  for (let i = 0; i < spec.length; i++) {
    const c = spec[i]!;
    if (c === ':') continue;
    takesArg.set(c, spec[i + 1] === ':');
  }
  const opts: Parsed['opts'] = [];
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    if (a.startsWith('--')) {
      throw new GetoptError(`${command}: unrecognized option '${a}'`);
    }
    for (let j = 1; j < a.length; j++) {
      const c = a[j]!;
      const needs = takesArg.get(c);
      if (needs === undefined) throw new GetoptError(`${command}: invalid option -- '${c}'`);
      if (!needs) {
        opts.push({ flag: c, value: '' });
        continue;
      }
      let value = a.slice(j + 1);
      if (value === '') {
        const next = argv[i + 1];
        if (next === undefined) throw new GetoptError(`${command}: option requires an argument -- '${c}'`);
        value = next;
        i++;
      }
      opts.push({ flag: c, value });
      break;
    }
  }
  return { opts, positional };
}

/** strtoull/strtol semantics: leading digits (after optional whitespace/sign), else 0. */
export function cNumber(s: string): number {
  const m = /^\s*([+-]?)(0[xX][0-9a-fA-F]+|\d+)/.exec(s);
  if (!m) return 0;
  const v = Number(m[2]!.toLowerCase().startsWith('0x') ? parseInt(m[2]!, 16) : m[2]!);
  return m[1] === '-' ? -v : v;
}


export interface CommandSpec {
  name: string;
  optstring: string;
  usage: string;
  /** Exit status of `-h`: 22 for most commands, 0 for snapshot/query/scan/check (blktap). */
  helpExit: number;
  /** Positional arguments allowed (scan only). */
  positional?: boolean;
}

export const EINVAL = 22;

/** Parse argv; returns the parse or an exit status after printing usage. */
export function parseArgs(spec: CommandSpec, argv: string[]): Parsed | number {
  if (argv.length === 0) {
    out(spec.usage);
    return EINVAL;
  }
  if (argv.includes('--help')) {
    out(spec.usage);
    return spec.helpExit;
  }
  let p: Parsed;
  try {
    p = getopt(spec.name, argv, spec.optstring);
  } catch (e) {
    if (e instanceof GetoptError) {
      err(`${e.message}\n`);
      out(spec.usage);
      return EINVAL;
    }
    throw e;
  }
  if (p.opts.some((o) => o.flag === 'h')) {
    out(spec.usage);
    return spec.helpExit;
  }
  if (!spec.positional && p.positional.length > 0) {
    out(spec.usage);
    return EINVAL;
  }
  return p;
}

export function last(p: Parsed, flag: string): string | undefined {
  let v: string | undefined;
  for (const o of p.opts) if (o.flag === flag) v = o.value;
  return v;
}

export function has(p: Parsed, flag: string): boolean {
  return p.opts.some((o) => o.flag === flag);
}

/** Print `prefix: -errno` on stdout as blktap does and return the exit status. */
export function report(prefix: string, e: unknown): number {
  const n = errnoOf(e);
  out(`${prefix}: -${n}\n`);
  return n;
}
