// Shared by the toolstack tests: run the built smctl, a scratch area per test,
// and a dump of the whole database for before/after comparisons.
import { execa } from 'execa';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { StateDb } from '../../src/toolstack/db/state-db.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const SMCTL = join(ROOT, 'bin', 'smctl');
export const PY_DRIVER_DIR = join(ROOT, 'test', 'fixtures', 'python-driver');

export function assertBuilt(): void {
  if (!existsSync(join(ROOT, 'dist', 'src', 'cli', 'smctl', 'main.js')))
    throw new Error('dist/ is not built: run `npx tsc -p tsconfig.build.json` first (scripts/test.sh does)');
}

export interface Scratch {
  dir: string;
  db: string;
  srDir: string;
  env: Record<string, string>;
  cleanup(): void;
}

/** A temp dir with a database path and an SR location; SM_DIR points at the Python driver. */
export function scratch(opts: { smDir?: string | null } = {}): Scratch {
  const dir = mkdtempSync(join(tmpdir(), 'smctl-test-'));
  const env: Record<string, string> = {
    SMCTL_DB: join(dir, 'state.db'),
    SM_LOG_FILE: join(dir, 'SMlog'),
    SM_LOCK_DIR: join(dir, 'lock'),
    SM_RUN_DIR: join(dir, 'run'),
  };
  if (opts.smDir !== null) env['SM_DIR'] = opts.smDir ?? PY_DRIVER_DIR;
  return { dir, db: env['SMCTL_DB']!, srDir: join(dir, 'sr'), env, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function smctl(s: Scratch, args: string[], extraEnv: Record<string, string> = {}): Promise<Run> {
  const env: Record<string, string | undefined> = { ...process.env, ...s.env, ...extraEnv };
  if (!('SM_DIR' in s.env)) delete env['SM_DIR'];
  const r = await execa(process.execPath, [SMCTL, ...args], { env, extendEnv: false, reject: false, timeout: 100_000 });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Runs smctl and insists it succeeded; returns stdout trimmed. */
export async function ok(s: Scratch, args: string[], extraEnv: Record<string, string> = {}): Promise<string> {
  const r = await smctl(s, args, extraEnv);
  if (r.exitCode !== 0) throw new Error(`smctl ${args.join(' ')} failed (${r.exitCode}):\n${r.stderr}${r.stdout}`);
  return r.stdout.trim();
}

export function withDb<T>(s: Scratch, fn: (db: StateDb) => T): T {
  const db = StateDb.open(s.db);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

export function dump(s: Scratch): Record<string, unknown[]> {
  return withDb(s, (db) => db.dump());
}
