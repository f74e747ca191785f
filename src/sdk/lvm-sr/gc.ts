// Garbage collection and coalesce on an LVM SR (spec §5.7, as xapi's cleanup.py
// does for LVHD), with the same semantics as the file SRs (file-sr/gc.ts):
//   * garbage: hidden VDIs whose whole subtree is hidden: lvremove, MGT record dropped;
//   * coalesce: a hidden node N with one child X whose parent P has only N is
//     merged into P (VHD: vhd-util coalesce; qcow2: qemu-img commit -d), X is
//     re-linked onto P (VHD: vhd-util modify -p, then the parent name/locators
//     rewritten to `VHD-<P>` as snapshot does; qcow2: qemu-img rebase -u onto
//     /dev/<vg>/QCOW2-<P>), N's LV is removed;
//   * leaf-coalesce: a visible leaf A, the only child of a hidden base B, is
//     merged into B; A's LV is removed and B's LV renamed to A's name, unhidden.
// Before data goes into P (or B) its LV is made writable and grown to the
// thick size the format needs for the merged image (as LVHD inflates the
// parent before coalescing), VHD footer moved to the new end.
//
// Each merge is journalled in MGT and rolled forward after a crash (recovery
// runs before every journalled command and in sm-gc). Re-running a merge
// writes the same blocks again: nothing but the merged child reads the parent
// while it is written, so a half-done merge changes nothing any VDI reads.
// VDIs held active on this host (refcount.ts) and VDIs a journal names are
// never rewritten. Which step comes next is ../gc/chain-plan.ts, shared with
// the file SRs; this module carries the steps out on LVs.
import { closeSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import type { ImageFormat } from '../../driver-info.js';
import { writeQcow2Hidden } from '../formats/qcow2-header.js';
import * as lvm from '../tools/lvm.js';
import * as qemuImg from '../tools/qemu-img.js';
import * as vhdUtil from '../tools/vhd-util.js';
import { emptyGcReport, nextGcStep, type GcReport } from '../gc/chain-plan.js';
import { fistPoint } from './fist.js';
import { lvSizeFor } from './images.js';
import { readVgLayout, type LvExtents } from './layout.js';
import { mgtRefsOf, ownValue, writeOwnValue } from './image-meta.js';
import { chainOf, readInventory, type Inventory, type VdiNode } from './inventory.js';
import type { SrMetadata } from './metadata.js';
import type { CoalesceJournal, Journal, LeafCoalesceJournal } from './mgt.js';
import { lvDevicePath, lvNameOf } from './naming.js';
import { holdersOf } from './refcount.js';
import { errText, withLvPath, withLvPaths, type LvmSr } from './sr.js';
import { moveVhdFooterToEnd, setLvParentName } from './vhd-parent.js';

const MiB = 1024 * 1024;

export interface LvmGcOptions {
  log?: (message: string) => void;
  /** Stop after this many actions (default 1000). */
  maxActions?: number;
  /** Merge hidden single-child nodes into their parents (default true); false = only remove garbage. */
  coalesce?: boolean;
  /** Also merge detached visible leaves into their only-child bases (default true). */
  leafCoalesce?: boolean;
  /**
   * An inventory the caller already holds (possibly a little stale: vdi_delete
   * just changed it). It is only used to see whether there is anything to do;
   * before acting, the SR is read again. Saves the `lvs`/`pvs` when nothing is.
   */
  initial?: Inventory;
}

export type LvmGcReport = GcReport<Inventory>;

/** Formats whose chains GC merges: a node and the image it is merged into must be the same copy-on-write format. */
const mergeable = (from: VdiNode, into: VdiNode): boolean => from.format === into.format && from.format !== 'raw';

/** Children lists that name only VDIs still in the inventory (a caller's inventory may have lost some). */
function pruneChildren(inv: Inventory): void {
  for (const v of inv.vdis.values()) v.children = v.children.filter((c) => inv.vdis.has(c));
}

export async function collectLvmGarbage(sr: LvmSr, meta: SrMetadata, o: LvmGcOptions = {}): Promise<LvmGcReport> {
  const report = emptyGcReport<Inventory>();
  const log = o.log ?? (() => undefined);
  const failed = new Set<string>();
  const busy = (n: VdiNode): boolean => holdersOf(sr.uuid, n.lvName).length > 0 || meta.journalNames(n.uuid);
  const opts: LvmGcOptions = meta.writable ? o : { ...o, coalesce: false };
  if (!meta.writable && o.coalesce !== false) log(`GC: MGT of SR ${sr.uuid} is in neither xapi's encoding nor ours; merges cannot be journalled, so only garbage is removed`);
  let inv = o.initial ?? (await readInventory(sr));
  let fresh = o.initial === undefined;
  pruneChildren(inv);
  for (let actions = 0; actions < (o.maxActions ?? 1000); ) {
    const next = nextGcStep(inv.vdis, { busy, failed, coalesce: opts.coalesce, leafCoalesce: opts.leafCoalesce, canMerge: mergeable });
    if (next === null) {
      if (fresh) report.finalInventory = inv;
      break;
    }
    if (!fresh) {
      inv = await readInventory(sr);
      fresh = true;
      continue;
    }
    actions++;
    try {
      if (next.kind === 'garbage') {
        for (const v of next.nodes) {
          await lvm.lvremove({ vg: sr.vg, name: v.lvName }, sr.scope);
          report.removed.push(v.uuid);
          log(`GC: removed hidden ${v.format} VDI ${v.uuid} (LV ${v.lvName}): nothing visible is built on it`);
        }
        meta.update((c) => {
          for (const v of next.nodes) {
            delete c.vdis[v.uuid];
            for (const r of mgtRefsOf(v.tags)) delete c.image_meta[r];
          }
        });
      } else if (next.kind === 'coalesce') {
        const { node: n, parent: p, child: x } = next;
        const j: CoalesceJournal = { op: 'coalesce', vdi: n.uuid, format: n.format, parent: p.uuid, parentFormat: p.format, child: x.uuid, childFormat: x.format, step: 'started' };
        meta.putJournal(j);
        fistPoint('lvm-coalesce-journal');
        try {
          await finishCoalesce(sr, meta, j);
        } catch (e) {
          await abandonIfUnmerged(sr, meta, j, [p.uuid, x.uuid, n.uuid], log);
          throw e;
        }
        report.coalesced.push({ node: n.uuid, into: p.uuid });
        log(`GC: coalesced ${n.uuid} into ${p.uuid}; ${x.uuid} re-linked onto ${p.uuid}`);
      } else {
        const { leaf: a, base: b } = next;
        const j: LeafCoalesceJournal = { op: 'leaf-coalesce', vdi: a.uuid, format: a.format, base: b.uuid, step: 'started' };
        meta.putJournal(j);
        fistPoint('lvm-leaf-coalesce-journal');
        try {
          await finishLeafCoalesce(sr, meta, j);
        } catch (e) {
          await abandonIfUnmerged(sr, meta, j, [b.uuid], log);
          throw e;
        }
        report.leafCoalesced.push({ leaf: a.uuid, base: b.uuid });
        log(`GC: leaf ${a.uuid} merged into its base ${b.uuid}, whose LV is now ${lvNameOf(a.uuid, a.format)}`);
      }
    } catch (e) {
      const what = next.kind === 'garbage' ? `removing ${next.nodes.map((v) => v.uuid).join(', ')}` : next.kind === 'coalesce' ? `coalesce of ${next.node.uuid} into ${next.parent.uuid}` : `leaf-coalesce of ${next.leaf.uuid} into ${next.base.uuid}`;
      for (const u of next.kind === 'garbage' ? next.nodes.map((v) => v.uuid) : next.kind === 'coalesce' ? [next.node.uuid] : [next.leaf.uuid]) failed.add(u);
      report.errors.push(`${what}: ${errText(e)}`);
      log(`GC: ${what} failed: ${errText(e)}`);
    }
    inv = await readInventory(sr);
    fresh = true;
  }
  return report;
}

/**
 * A merge that failed before its data step completed leaves every VDI reading
 * what it read before (the parent holds at most a copy of some of the node's
 * blocks, which only the node covers): its journal is dropped, so the VDIs are
 * not blocked, and GC tries again next time. After the merge, the journal
 * stays: the next command must finish it.
 */
async function abandonIfUnmerged(sr: LvmSr, meta: SrMetadata, j: CoalesceJournal | LeafCoalesceJournal, targets: readonly string[], log: (m: string) => void): Promise<void> {
  const current = meta.journals().find((x) => x.op === j.op && x.vdi === j.vdi);
  if (current === undefined) return;
  if ((current as CoalesceJournal | LeafCoalesceJournal).step === 'started') {
    await restoreReadOnly(sr, targets).catch((e: unknown) => log(`GC: could not make ${targets.join(', ')} read-only again: ${errText(e)}`));
    meta.dropJournal(j);
    log(`GC: ${j.op} of ${j.vdi} abandoned before its data was merged; nothing changed for any VDI`);
  } else {
    log(`GC: ${j.op} of ${j.vdi} stopped after the merge; its journal is kept and the next command finishes it`);
  }
}

function needNode(inv: Inventory, uuid: string, role: string, j: Journal): VdiNode {
  const n = inv.vdis.get(uuid);
  if (n === undefined) throw new Error(`${j.op} journal of ${j.vdi}: the ${role} ${uuid} has no readable LV`);
  return n;
}

/**
 * Make `target`'s LV writable and big enough for an image of `virtualSize`
 * bytes in its format (lvextend to the thick size, VHD footer to the new end,
 * VHD virtual size grown with `vhd-util resize -f`). Idempotent.
 */
async function prepareTarget(sr: LvmSr, inv: Inventory, target: VdiNode, virtualSize: number): Promise<void> {
  if (target.lvReadOnly) await lvm.lvchange({ vg: sr.vg, name: target.lvName, permission: 'rw' }, sr.scope);
  const need = await lvSizeFor(target.format, Math.max(virtualSize, target.virtualSize));
  const have = sr.dm ? target.lvSize : await undoSplitExtension(sr, inv.layout.lvs.get(target.lvName));
  if (have < need) {
    await lvm.lvextend({ vg: sr.vg, name: target.lvName, sizeBytes: need }, sr.scope);
    fistPoint('lvm-gc-grow-extended');
    if (!sr.dm && !contiguous((await readVgLayout(sr.vg, sr.scope)).lvs.get(target.lvName))) {
      // Without device-mapper an LV is reached through one loop device over one PV range:
      // a split LV would make the whole chain unreachable. Give the extents back and
      // move the image to a new LV of the needed size instead.
      await lvm.lvresize({ vg: sr.vg, name: target.lvName, sizeBytes: have, allowShrink: true }, sr.scope);
      await moveToNewLv(sr, { ...target, lvSize: have }, need);
    }
  }
  if (target.format === 'vhd') {
    await withLvPath(sr, target.lvName, async (path) => {
      moveVhdFooterToEnd(path);
      // A child grown after the snapshot holds data past the parent's end; vhd-util refuses that.
      if (virtualSize > target.virtualSize) await vhdUtil.resize({ path, sizeMiB: Math.ceil(virtualSize / MiB), fast: true });
    });
  }
  // qcow2: qemu-img commit grows the backing image's virtual size itself.
}

/** Merge `child`'s data into its parent (both LVs and the parent's ancestors reachable for the call). */
async function mergeIntoParent(sr: LvmSr, inv: Inventory, child: VdiNode): Promise<void> {
  const path = lvDevicePath(sr.uuid, child.lvName);
  // qemu-img commit opens the image it commits read-write; a hidden node's LV is
  // read-only, which device-mapper enforces (a loop device over the PV does not).
  if (child.format === 'qcow2' && child.lvReadOnly) await lvm.lvchange({ vg: sr.vg, name: child.lvName, permission: 'rw' }, sr.scope);
  await withLvPaths(sr, chainOf(inv, child.uuid).map((n) => n.lvName), async () => {
    if (child.format === 'vhd') await vhdUtil.coalesce({ path });
    // -d: leave the child as it is (like vhd-util coalesce); it is removed afterwards anyway.
    else await qemuImg.commit({ path, format: 'qcow2', drop: true });
  });
}

/** The child's own machine data goes to the image that takes its place (idempotent). */
async function carryImageMeta(sr: LvmSr, meta: SrMetadata, from: VdiNode, to: VdiNode): Promise<void> {
  const own = ownValue(from.tags, meta.content);
  if (own !== null && ownValue(to.tags, meta.content) !== own) await writeOwnValue(sr, meta, to.lvName, to.tags, own);
}

/** Put hidden LVs back to read-only (as sm keeps bases) after GC made them writable. */
async function restoreReadOnly(sr: LvmSr, uuids: readonly string[]): Promise<void> {
  const inv = await readInventory(sr);
  for (const u of uuids) {
    const n = inv.vdis.get(u);
    if (n !== undefined && n.hidden && !n.lvReadOnly) await lvm.lvchange({ vg: sr.vg, name: n.lvName, permission: 'r' }, sr.scope);
  }
}

/**
 * Without device-mapper: an LV a crash left extended in pieces (lvextend done,
 * the extents not yet given back) is cut back to its first piece, which is the
 * LV as it was, the image whole in it (nothing is written to an extension that
 * no loop device can reach). Returns the LV's size.
 */
async function undoSplitExtension(sr: LvmSr, ext: LvExtents | undefined): Promise<number> {
  if (ext === undefined || contiguous(ext) || ext.pieces.length === 0) return ext?.lv.lvSize ?? 0;
  const first = ext.pieces[0]!.length;
  await lvm.lvresize({ vg: sr.vg, name: ext.lv.lvName, sizeBytes: first, allowShrink: true }, sr.scope);
  return first;
}

const moveTemp = (uuid: string): string => `GCNEW_${uuid}`;
const moveOld = (uuid: string): string => `GCOLD_${uuid}`;

/**
 * Without device-mapper: the image of `target` copied into a new contiguous LV
 * of `size` bytes (same tags), which then takes the target's name. The copy is
 * complete before the first rename, so repairMove can always finish or undo it.
 */
async function moveToNewLv(sr: LvmSr, target: VdiNode, size: number): Promise<void> {
  const tmp = moveTemp(target.uuid);
  await lvm.lvcreate({ vg: sr.vg, name: tmp, sizeBytes: size, activate: false, tags: target.tags }, sr.scope);
  if (!contiguous((await readVgLayout(sr.vg, sr.scope)).lvs.get(tmp))) {
    await lvm.lvremove({ vg: sr.vg, name: tmp }, sr.scope);
    throw new Error(`LV ${target.lvName} must grow from ${target.lvSize} to ${size} bytes for the merged image; without device-mapper it must stay one contiguous range of a PV, and ${sr.vg} has no free range of ${size} bytes (it was left as it was)`);
  }
  fistPoint('lvm-gc-move-created');
  await withLvPaths(sr, [target.lvName, tmp], async () => copyBytes(lvDevicePath(sr.uuid, target.lvName), lvDevicePath(sr.uuid, tmp), target.lvSize));
  fistPoint('lvm-gc-move-copied');
  await lvm.lvrename({ vg: sr.vg, from: target.lvName, to: moveOld(target.uuid) }, sr.scope);
  fistPoint('lvm-gc-move-renamed-old');
  await lvm.lvrename({ vg: sr.vg, from: tmp, to: target.lvName }, sr.scope);
  fistPoint('lvm-gc-move-renamed-new');
  await lvm.lvremove({ vg: sr.vg, name: moveOld(target.uuid) }, sr.scope);
}

function copyBytes(from: string, to: string, length: number): void {
  const src = openSync(from, 'r');
  const dst = openSync(to, 'r+');
  try {
    const buf = Buffer.alloc(4 * MiB);
    for (let at = 0; at < length; ) {
      const n = readSync(src, buf, 0, Math.min(buf.length, length - at), at);
      if (n <= 0) throw new Error(`short read of ${from} at ${at}`);
      writeSync(dst, buf, 0, n, at);
      at += n;
    }
    fsyncSync(dst);
  } finally {
    closeSync(src);
    closeSync(dst);
  }
}

/** Finish or undo a move (moveToNewLv) a crash interrupted; no-op when none is in the inventory. */
async function repairMove(sr: LvmSr, inv: Inventory, uuid: string, format: ImageFormat): Promise<boolean> {
  const has = (n: string): boolean => inv.layout.lvs.has(n);
  const lv = lvNameOf(uuid, format);
  const tmp = moveTemp(uuid);
  const old = moveOld(uuid);
  if (!has(tmp) && !has(old)) return false;
  if (!has(lv)) {
    // Renamed away: the copy was complete (it precedes the renames); else the original goes back.
    if (has(tmp) && has(old)) await lvm.lvrename({ vg: sr.vg, from: tmp, to: lv }, sr.scope);
    else if (has(old)) await lvm.lvrename({ vg: sr.vg, from: old, to: lv }, sr.scope);
  }
  const now = new Set((await lvm.lvs({ vg: sr.vg }, sr.scope)).map((l) => l.lvName));
  for (const n of [old, tmp]) if (now.has(n)) await lvm.lvremove({ vg: sr.vg, name: n }, sr.scope);
  return true;
}

/** One contiguous range of one PV (what a loop device can stand for). */
function contiguous(ext: LvExtents | undefined): boolean {
  // As sr.ts's activation checks it: exactly one piece covering the LV.
  return ext !== undefined && ext.pieces.length === 1 && ext.pieces[0]!.length === ext.lv.lvSize;
}

/** Run (or, after a crash, finish) a coalesce from its journal. */
export async function finishCoalesce(sr: LvmSr, meta: SrMetadata, j: CoalesceJournal): Promise<void> {
  let inv = await readInventory(sr);
  if (await repairMove(sr, inv, j.parent, j.parentFormat)) inv = await readInventory(sr);
  const nodeLv = lvNameOf(j.vdi, j.format);
  if (j.step === 'started') {
    const n = needNode(inv, j.vdi, 'node', j);
    const p = needNode(inv, j.parent, 'parent', j);
    await prepareTarget(sr, inv, p, n.virtualSize);
    fistPoint('lvm-coalesce-inflate');
    await carryImageMeta(sr, meta, n, p);
    inv = await readInventory(sr);
    await mergeIntoParent(sr, inv, needNode(inv, j.vdi, 'node', j));
    meta.putJournal((j.step = 'merged', j));
  }
  fistPoint('lvm-coalesce-merged');
  if (j.step === 'merged') {
    const x = needNode(inv, j.child, 'child', j);
    const parentLv = lvNameOf(j.parent, j.parentFormat);
    if (x.lvReadOnly) await lvm.lvchange({ vg: sr.vg, name: x.lvName, permission: 'rw' }, sr.scope);
    const parentChain = chainOf(inv, j.parent).map((n) => n.lvName);
    await withLvPaths(sr, [x.lvName, ...parentChain], async () => {
      const childPath = lvDevicePath(sr.uuid, x.lvName);
      const parentPath = lvDevicePath(sr.uuid, parentLv);
      if (x.format === 'vhd') {
        await vhdUtil.modify({ path: childPath, parent: parentPath });
        // The name and locators exactly as snapshot writes them (a canonicalising vhd-util stores loopN / dm-N).
        setLvParentName(childPath, parentLv);
      } else {
        await qemuImg.rebase({ path: childPath, format: 'qcow2', unsafe: true, backing: { path: parentPath, format: 'qcow2' } });
      }
    });
    meta.putJournal((j.step = 'relinked', j));
  }
  fistPoint('lvm-coalesce-relinked');
  const gone = inv.vdis.get(j.vdi);
  if (inv.layout.lvs.has(nodeLv)) await lvm.lvremove({ vg: sr.vg, name: nodeLv }, sr.scope);
  fistPoint('lvm-coalesce-removed');
  await restoreReadOnly(sr, [j.parent, j.child]);
  meta.dropJournal(j, (c) => {
    delete c.vdis[j.vdi];
    for (const r of gone === undefined ? [] : mgtRefsOf(gone.tags)) delete c.image_meta[r];
  });
}

/** Run (or finish) a leaf-coalesce from its journal. */
export async function finishLeafCoalesce(sr: LvmSr, meta: SrMetadata, j: LeafCoalesceJournal): Promise<void> {
  let inv = await readInventory(sr);
  if (await repairMove(sr, inv, j.base, j.format)) inv = await readInventory(sr);
  const leafLv = lvNameOf(j.vdi, j.format);
  const baseLv = lvNameOf(j.base, j.format);
  let leafRefs: string[] = [];
  if (j.step === 'started') {
    const a = needNode(inv, j.vdi, 'leaf', j);
    const b = needNode(inv, j.base, 'base', j);
    await prepareTarget(sr, inv, b, a.virtualSize);
    await carryImageMeta(sr, meta, a, b);
    inv = await readInventory(sr);
    await mergeIntoParent(sr, inv, needNode(inv, j.vdi, 'leaf', j));
    meta.putJournal((j.step = 'merged', j));
  }
  fistPoint('lvm-leaf-coalesce-merged');
  if (j.step === 'merged') {
    // Until the rename, the base LV is the one with the data; the leaf's is only removed once merged.
    if (inv.layout.lvs.has(baseLv)) {
      const old = inv.layout.lvs.get(leafLv);
      if (old !== undefined) {
        leafRefs = mgtRefsOf(old.lv.tags);
        await lvm.lvremove({ vg: sr.vg, name: leafLv }, sr.scope);
      }
      fistPoint('lvm-leaf-coalesce-removed');
      await lvm.lvrename({ vg: sr.vg, from: baseLv, to: leafLv }, sr.scope);
    }
    meta.putJournal((j.step = 'renamed', j));
  }
  fistPoint('lvm-leaf-coalesce-renamed');
  // The image under the leaf's name is the former base: visible and writable now.
  await withLvPath(sr, leafLv, async (path) => {
    if (j.format === 'vhd') await vhdUtil.set({ path, field: 'hidden', value: 0 });
    else writeQcow2Hidden(path, false);
  });
  const [rec] = await lvm.lvs({ vg: sr.vg, name: leafLv }, sr.scope);
  if (rec !== undefined && rec.attr.readOnly) await lvm.lvchange({ vg: sr.vg, name: leafLv, permission: 'rw' }, sr.scope);
  meta.dropJournal(j, (c) => {
    delete c.vdis[j.base];
    for (const r of leafRefs) delete c.image_meta[r];
  });
}

/** Finish a GC journal left by a crash (called by the driver's journal recovery and by sm-gc). */
export async function recoverGcJournal(sr: LvmSr, meta: SrMetadata, j: CoalesceJournal | LeafCoalesceJournal): Promise<string> {
  if (j.op === 'coalesce') {
    await finishCoalesce(sr, meta, { ...j });
    return `coalesce of ${j.vdi} into ${j.parent} rolled forward`;
  }
  await finishLeafCoalesce(sr, meta, { ...j });
  return `leaf-coalesce of ${j.vdi} into ${j.base} rolled forward`;
}
