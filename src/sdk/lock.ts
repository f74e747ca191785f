// The per-SR lock: <lockDir>/<sr_uuid>/sr, as sm's Lock("sr", sr_uuid).
//
// It must work across processes and be released by the kernel when the holder
// dies, whatever the cause (SIGKILL included). Node has no flock(2); SQLite
// (better-sqlite3, already a dependency) takes POSIX fcntl record locks on its
// database file, which the kernel drops when the process exits. An EXCLUSIVE
// transaction on the lock file is therefore a real, crash-safe, cross-process
// lock, with no helper process. sm's own lock is an fcntl write lock over the
// whole file, which covers SQLite's lock bytes: the two exclude each other.
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { env } from './env.js';
import { ensureDir } from './fs-util.js';
import { SRError } from './errors/sr-error.js';

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

interface SqliteDb {
  exec(sql: string): unknown;
  close(): void;
}
type SqliteCtor = new (file: string, options: { timeout: number }) => SqliteDb;

let Database: SqliteCtor | undefined;
function sqlite(): SqliteCtor {
  // Loaded on first use: only exclusive commands pay for the native module.
  Database ??= createRequire(import.meta.url)('better-sqlite3') as SqliteCtor;
  return Database;
}

export interface HeldLock {
  readonly path: string;
  release(): void;
}

export const DEFAULT_LOCK_TIMEOUT_MS = 120_000;

/** The lock file for an SR: <lockDir>/<sr_uuid>/sr. */
export function srLockPath(srUuid: string, lockDir: string = env.lockDir()): string {
  if (!UUID_RE.test(srUuid)) throw new SRError('LockErr', `refusing to lock ${JSON.stringify(srUuid)}: not a UUID`);
  return join(lockDir, srUuid, 'sr');
}

/**
 * Takes an exclusive lock on `path`, waiting up to `timeoutMs`. Throws
 * SRError LockErr (37) naming the file when it cannot be had in time.
 */
export function acquireLock(path: string, timeoutMs: number = DEFAULT_LOCK_TIMEOUT_MS): HeldLock {
  let db: SqliteDb | undefined;
  try {
    ensureDir(join(path, '..'));
    closeSync(openSync(path, 'a'));
    db = new (sqlite())(path, { timeout: timeoutMs });
    db.exec('BEGIN EXCLUSIVE');
  } catch (e) {
    try {
      db?.close();
    } catch {
      /* the lock was never held */
    }
    const busy = (e as { code?: string }).code === 'SQLITE_BUSY';
    throw new SRError(
      'LockErr',
      busy ? `${path} is held by another process; gave up after ${timeoutMs / 1000} s` : `cannot lock ${path}: ${(e as Error).message}`,
    );
  }
  const held = db;
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      try {
        held.exec('COMMIT');
      } finally {
        held.close();
      }
    },
  };
}

/** The SR lock for `srUuid`. */
export function acquireSrLock(srUuid: string, timeoutMs?: number): HeldLock {
  return acquireLock(srLockPath(srUuid), timeoutMs);
}

/** Runs `fn` with the SR lock held, releasing it afterwards whatever happens. */
export async function withSrLock<T>(srUuid: string, fn: () => Promise<T>, timeoutMs?: number): Promise<T> {
  const lock = acquireSrLock(srUuid, timeoutMs);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}
