// LV activation reference counts (sm's /run/sm/refcount/lvm-<sr>/): for each
// LV, the set of VDIs that need it active on this host. A leaf holds itself
// and every ancestor, so a shared base stays active while any leaf needs it.
// Holders are a set (not a counter): attach/activate repeated by the
// toolstack never leaks a count. Runtime state: gone after a reboot, as the
// activations themselves are.
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { env } from '../env.js';
import { writeFileAtomic } from '../formats/atomic.js';
import { checkUuid } from './naming.js';

const Holders = z.array(z.string().min(1));

export function refcountDir(srUuid: string): string {
  return join(env.runDir(), 'refcount', `lvm-${checkUuid('sr_uuid', srUuid)}`);
}

function fileOf(srUuid: string, lv: string): string {
  if (!/^[A-Za-z0-9+_.-]+$/.test(lv) || lv.startsWith('.')) throw new TypeError(`LV name ${JSON.stringify(lv)} cannot name a refcount file`);
  return join(refcountDir(srUuid), lv);
}

export function holdersOf(srUuid: string, lv: string): string[] {
  try {
    return Holders.parse(JSON.parse(readFileSync(fileOf(srUuid, lv), 'utf8')));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`refcount file of LV ${lv} (SR ${srUuid}) is unreadable: ${(e as Error).message}`);
  }
}

function setHolders(srUuid: string, lv: string, holders: readonly string[]): void {
  const f = fileOf(srUuid, lv);
  if (holders.length === 0) {
    rmSync(f, { force: true });
    return;
  }
  mkdirSync(refcountDir(srUuid), { recursive: true, mode: 0o700 });
  writeFileAtomic(f, `${JSON.stringify([...holders].sort())}\n`);
}

/** Add `holder`; returns true when the LV had no holder before (it must be activated now). */
export function addHolder(srUuid: string, lv: string, holder: string): boolean {
  const h = holdersOf(srUuid, lv);
  if (h.includes(holder)) return false;
  setHolders(srUuid, lv, [...h, holder]);
  return h.length === 0;
}

/** Remove `holder`; returns true when nobody holds the LV any more (it may be deactivated). */
export function removeHolder(srUuid: string, lv: string, holder: string): boolean {
  const h = holdersOf(srUuid, lv);
  if (!h.includes(holder)) return h.length === 0;
  const rest = h.filter((x) => x !== holder);
  setHolders(srUuid, lv, rest);
  return rest.length === 0;
}

/** LV name → holders, for every LV held on this host. */
export function allHeld(srUuid: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let names: string[] = [];
  try {
    names = readdirSync(refcountDir(srUuid));
  } catch {
    return out;
  }
  for (const n of names) if (!n.startsWith('.')) out.set(n, holdersOf(srUuid, n));
  return out;
}

export function clearRefcounts(srUuid: string): void {
  rmSync(refcountDir(srUuid), { recursive: true, force: true });
}
