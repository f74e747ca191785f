// Snapshot and clone on LVs (spec §5.6, LVHD's _snapshot), journalled in the
// MGT volume so that a process killed at any step leaves a consistent SR.
//
// Source leaf A (LV <P>-A), new base B, new leaf C:
//   1. journal {A, B, C, step: started}
//   2. lvrename <P>-A → <P>-B: B holds A's data            → step renamed
//   3. lvcreate <Q>-A, write an empty child of B into it     → step committed
//      (Q = P, or for a raw A the first preferred copy-on-write format that holds it)
//   4. (double) lvcreate <Q>-C, empty child of B
//   5. hide B (image flag, or `hidden` tag for raw) and make its LV read-only
//   6. MGT: records of B and C, journal dropped (one atomic MGT write)
//   7. the caller writes the toolstack's records.
// Recovery (recoverJournals): before "committed" roll back (drop <Q>-A and
// <Q>-C, rename B back to A); after it roll forward (drop C, which the
// toolstack never saw, hide B).
import { randomUUID } from 'node:crypto';
import type { ImageFormat } from '../../driver-info.js';
import { SRError } from '../errors/sr-error.js';
import { checkChainDepth, rulesOf } from '../formats/rules.js';
import { chooseRawSnapshotFormat, type FormatChoiceContext } from '../formats/select.js';
import * as lvm from '../tools/lvm.js';
import { fistPoint } from './fist.js';
import { hideBase, lvSizeFor, writeChild } from './images.js';
import { allocationOf, deflate, thinLvSize } from './provisioning.js';
import { chainOf, type Inventory } from './inventory.js';
import type { SrMetadata } from './metadata.js';
import type { SnapshotJournal } from './mgt.js';
import { HIDDEN_TAG, lvDevicePath, lvNameOf } from './naming.js';
import { withLvPath, withLvPaths, type LvmSr } from './sr.js';

export type SnapshotMode = 'double' | 'single' | 'internal';

export interface SnapshotOutcome {
  journal: SnapshotJournal;
  virtualSize: number;
  /** A's parent before the snapshot (B's parent now), or null. */
  baseParent: string | null;
  baseLvSize: number;
  leafLvSize: number;
  /** The new VDI's LV (double mode). */
  cloneLvSize: number;
}

async function lvExists(sr: LvmSr, name: string): Promise<boolean> {
  return (await lvm.lvs({ vg: sr.vg }, sr.scope)).some((l) => l.lvName === name);
}

async function removeIfThere(sr: LvmSr, names: readonly string[]): Promise<void> {
  const present = new Set((await lvm.lvs({ vg: sr.vg }, sr.scope)).map((l) => l.lvName));
  for (const n of names) if (present.has(n)) await lvm.lvremove({ vg: sr.vg, name: n }, sr.scope);
}

async function makeChild(sr: LvmSr, name: string, size: number, leafFormat: ImageFormat, baseLv: string, baseFormat: ImageFormat, virtualSize: number): Promise<void> {
  await lvm.lvcreate({ vg: sr.vg, name, sizeBytes: size, activate: false }, sr.scope);
  await withLvPaths(sr, [baseLv, name], () => writeChild(leafFormat, lvDevicePath(sr.uuid, name), { path: lvDevicePath(sr.uuid, baseLv), format: baseFormat }, virtualSize));
}

export async function snapshotLv(
  sr: LvmSr,
  inv: Inventory,
  meta: SrMetadata,
  uuid: string,
  o: { op: 'vdi_snapshot' | 'vdi_clone'; mode: SnapshotMode; formats: FormatChoiceContext; newUuid?: () => string },
): Promise<SnapshotOutcome> {
  const key = o.op === 'vdi_snapshot' ? 'VDISnapshot' : 'VDIClone';
  const node = inv.vdis.get(uuid);
  if (node === undefined) throw new SRError('VDIUnavailable', `VDI ${uuid} has no LV in ${sr.vg}`);
  if (node.hidden) throw new SRError(key, `VDI ${uuid} is a hidden base copy; only visible leaves can be snapshotted`);
  const leafFormat: ImageFormat = rulesOf(node.format).copyOnWrite ? node.format : chooseRawSnapshotFormat(node.virtualSize, o.formats);
  checkChainDepth(leafFormat, chainOf(inv, uuid).length + 1);
  // Leaf LV sizes as LVHD makes them (spec §5.6; provisioning.ts): thin SRs thin; thick SRs:
  // the source leaf full size (thin when it is itself a snapshot), the new VDI full for a clone, thin for a snapshot.
  const thick = allocationOf(meta) === 'thick';
  const sizeOf = (full: boolean): Promise<number> => (full ? lvSizeFor(leafFormat, node.virtualSize) : thinLvSize(leafFormat, node.virtualSize));
  const leafFull = thick && !(meta.content.vdis[uuid]?.is_a_snapshot ?? false);
  const cloneFull = thick && o.op === 'vdi_clone';
  const leafLvSize = await sizeOf(leafFull);
  const cloneLvSize = cloneFull === leafFull ? leafLvSize : await sizeOf(cloneFull);
  const vg = (await lvm.vgs({ vg: sr.vg }, sr.scope))[0];
  const need = leafLvSize + (o.mode === 'double' ? cloneLvSize : 0);
  if (vg === undefined || vg.vgFree < need) throw new SRError('SRNoSpace', `snapshot of ${uuid} needs ${need} bytes of free space in ${sr.vg}; ${vg?.vgFree ?? 0} are free`);
  const gen = o.newUuid ?? randomUUID;
  const base = gen();
  const clone = o.mode === 'double' ? gen() : null;
  const j: SnapshotJournal = { op: 'snapshot', vdi: uuid, base, clone, srcFormat: node.format, leafFormat, step: 'started' };
  const srcLv = node.lvName;
  const baseLv = lvNameOf(base, node.format);
  const leafLv = lvNameOf(uuid, leafFormat);

  let baseLvSize = node.lvSize;
  meta.putJournal(j);
  fistPoint('lvm-snapshot-journal');
  try {
    await lvm.lvrename({ vg: sr.vg, from: srcLv, to: baseLv }, sr.scope);
    meta.putJournal((j.step = 'renamed', j));
    fistPoint('lvm-snapshot-rename');
    // B keeps A's data in no more extents than it occupies (LVHD deflates the base in both modes).
    const baseChain = node.format === 'qcow2' ? [baseLv, ...chainOf(inv, uuid).slice(1).map((n) => n.lvName)] : [baseLv];
    baseLvSize = await deflate(sr, meta, { uuid: base, format: node.format, lvName: baseLv, lvSize: node.lvSize }, baseChain);
    await makeChild(sr, leafLv, leafLvSize, leafFormat, baseLv, node.format, node.virtualSize);
  } catch (e) {
    await rollBack(sr, meta, j).catch(() => undefined);
    throw e instanceof SRError ? e : new SRError(key, `snapshot of ${uuid}: ${(e as Error).message}`, { cause: e });
  }
  // Commit: from here the original uuid names the new empty leaf on top of B.
  meta.putJournal((j.step = 'committed', j));
  fistPoint('lvm-snapshot-leaf');
  try {
    if (clone !== null) {
      await makeChild(sr, lvNameOf(clone, leafFormat), cloneLvSize, leafFormat, baseLv, node.format, node.virtualSize);
      fistPoint('lvm-snapshot-clone');
    }
    await hideBase(sr, baseLv, node.format, false, node.tags, (fn) => withLvPath(sr, baseLv, fn));
    fistPoint('lvm-snapshot-hide');
  } catch (e) {
    await rollForward(sr, meta, j).catch(() => undefined);
    throw e instanceof SRError ? e : new SRError(key, `snapshot of ${uuid}: ${(e as Error).message}`, { cause: e });
  }
  return { journal: j, virtualSize: node.virtualSize, baseParent: node.parent, baseLvSize, leafLvSize, cloneLvSize };
}

async function rollBack(sr: LvmSr, meta: SrMetadata, j: SnapshotJournal): Promise<void> {
  const srcLv = lvNameOf(j.vdi, j.srcFormat);
  const baseLv = lvNameOf(j.base, j.srcFormat);
  const leafLv = lvNameOf(j.vdi, j.leafFormat);
  const drop = [...(j.clone !== null ? [lvNameOf(j.clone, j.leafFormat)] : [])];
  // The new leaf exists only after the rename; before it, <P>-A is still the source.
  if (await lvExists(sr, baseLv)) {
    drop.push(leafLv);
    await removeIfThere(sr, drop);
    await lvm.lvrename({ vg: sr.vg, from: baseLv, to: srcLv }, sr.scope);
  } else {
    await removeIfThere(sr, drop);
  }
  meta.dropJournal(j);
}

async function rollForward(sr: LvmSr, meta: SrMetadata, j: SnapshotJournal): Promise<void> {
  const baseLv = lvNameOf(j.base, j.srcFormat);
  if (j.clone !== null) await removeIfThere(sr, [lvNameOf(j.clone, j.leafFormat)]);
  const [rec] = await lvm.lvs({ vg: sr.vg, name: baseLv }, sr.scope);
  if (rec !== undefined) await hideBase(sr, baseLv, j.srcFormat, rec.attr.readOnly, rec.tags, (fn) => withLvPath(sr, baseLv, fn));
  meta.dropJournal(j, (c) => {
    if (j.clone !== null) delete c.vdis[j.clone];
  });
}

/** Finish a snapshot interrupted by a crash. */
export async function recoverSnapshot(sr: LvmSr, meta: SrMetadata, j: SnapshotJournal): Promise<'rolled back' | 'rolled forward'> {
  if (j.step === 'committed') {
    await rollForward(sr, meta, j);
    return 'rolled forward';
  }
  await rollBack(sr, meta, j);
  return 'rolled back';
}

export { HIDDEN_TAG };
