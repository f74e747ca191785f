// Per-SR toolstack lock, across smctl processes: an O_EXCL lock file holding the
// owner's pid, next to the database. A lock whose owner died is taken over.
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { XenApiError } from './errors.js';

function ownerAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface SrLock {
  release(): void;
}

/** Waits for and takes the lock of `srUuid` in `lockDir`; fails with SR_LOCKED after `waitMs`. */
export async function lockSr(lockDir: string, srUuid: string, waitMs = 900_000): Promise<SrLock> {
  mkdirSync(lockDir, { recursive: true });
  const path = join(lockDir, `${srUuid}.lock`);
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      let held = true;
      return {
        release: () => {
          if (!held) return;
          held = false;
          try {
            unlinkSync(path);
          } catch {
            /* already gone */
          }
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let owner = NaN;
    try {
      owner = Number.parseInt(readFileSync(path, 'utf8'), 10);
    } catch {
      continue; // released between our open and read
    }
    if (Number.isInteger(owner) && !ownerAlive(owner)) {
      try {
        unlinkSync(path); // stale: its owner is gone
      } catch {
        /* someone else took it over */
      }
      continue;
    }
    if (Date.now() > deadline) throw new XenApiError('SR_LOCKED', [srUuid], `SR ${srUuid} is locked by process ${owner}`);
    await sleep(25);
  }
}
