// Journal LVs that xapi's LVHDSR leaves when it is interrupted (tag `journaler`,
// name `<type>_<id>_<value>`; a value that would make the device-mapper name too
// long — every clone journal's — is written at the start of the LV, and the
// name ends in `_1`), finished the way xapi finishes them when it next
// loads the SR, so an SR xapi was working on when it died attaches with ours:
//   inflate_<vdi>_<old LV size>   undo: the VHD footer at the old size's end, the LV cut back to it;
//   clone_<A>_<B>_<C>             no base LV B: nothing happened. Both leaves (A, and C when
//                                 named) there and `vhd-util check` clean: complete it (B hidden
//                                 and read-only). Otherwise undo: B writable and visible again,
//                                 the leaves removed, B renamed back to A.
// Other journals (vhd-util resize journals, GC's) are reported and left alone.
import * as lvm from '../tools/lvm.js';
import * as vhdUtil from '../tools/vhd-util.js';
import { hideBase } from './images.js';
import type { Inventory } from './inventory.js';
import { PvReader, type LvExtents } from './layout.js';
import { HIDDEN_TAG, lvDevicePath, lvNameOf, UUID_RE } from './naming.js';
import { errText, withLvPath, withLvPaths, type LvmSr } from './sr.js';
import { writeQcow2Hidden } from '../formats/qcow2-header.js';
import type { ImageFormat } from '../../driver-info.js';

const JOURNAL_TAG = 'journaler';

export interface XapiJournal {
  lvName: string;
  type: string;
  id: string;
  value: string;
}

/** The value written inside a journal LV: its first line, read straight from the PV. */
function valueInside(ext: LvExtents): string {
  const r = new PvReader('r');
  try {
    const head = r.read(ext, 0, 512).toString('latin1');
    return head.split(/[\0\n]/)[0]!.trim();
  } finally {
    r.close();
  }
}

/** The journal LVs of the SR (from the inventory's LV list: no extra LVM command). */
export function xapiJournals(inv: Inventory): XapiJournal[] {
  const out: XapiJournal[] = [];
  for (const [name, ext] of inv.layout.lvs) {
    if (!ext.lv.tags.includes(JOURNAL_TAG)) continue;
    const m = /^([a-z-]+)_([0-9a-f-]{36})_(.*)$/.exec(name);
    if (m === null) {
      out.push({ lvName: name, type: '', id: '', value: '' });
      continue;
    }
    const value = m[3] === '1' && (m[1] === 'clone' || m[1] === 'leaf') ? valueInside(ext) : m[3]!;
    out.push({ lvName: name, type: m[1]!, id: m[2]!, value });
  }
  return out;
}

/** The LV holding VDI `uuid`, whichever its format, from the current LV list. */
function lvOf(names: ReadonlySet<string>, uuid: string): { lvName: string; format: ImageFormat } | null {
  for (const format of ['vhd', 'raw', 'qcow2'] as const) {
    const lvName = lvNameOf(uuid, format);
    if (names.has(lvName)) return { lvName, format };
  }
  return null;
}

async function lvNames(sr: LvmSr): Promise<Map<string, lvm.LvRecord>> {
  return new Map((await lvm.lvs({ vg: sr.vg }, sr.scope)).map((l) => [l.lvName, l]));
}

async function undoInflate(sr: LvmSr, j: XapiJournal): Promise<string> {
  const oldSize = Number(j.value);
  if (!UUID_RE.test(j.id) || !Number.isSafeInteger(oldSize) || oldSize <= 0 || oldSize % 512 !== 0) return `inflate journal ${j.lvName}: not a VDI and LV size; left alone`;
  const all = await lvNames(sr);
  const lv = lvOf(new Set(all.keys()), j.id);
  const size = lv === null ? null : all.get(lv.lvName)!.lvSize;
  if (lv !== null && size !== null && size > oldSize) {
    // As xapi's deflate: the footer at the old end first (vhd-util checks the data fits), then the LV.
    if (lv.format === 'vhd') await withLvPath(sr, lv.lvName, (path) => vhdUtil.modify({ path, physicalSize: oldSize }));
    await lvm.lvresize({ vg: sr.vg, name: lv.lvName, sizeBytes: oldSize, allowShrink: true }, sr.scope);
  }
  await lvm.lvremove({ vg: sr.vg, name: j.lvName }, sr.scope);
  return lv === null ? `inflate journal ${j.lvName}: VDI ${j.id} has no LV; journal removed` : `inflate of ${j.id} undone: LV ${lv.lvName} is ${Math.min(size ?? oldSize, oldSize)} bytes`;
}

async function imageValid(sr: LvmSr, lv: { lvName: string; format: ImageFormat }, baseLv: string): Promise<boolean> {
  if (lv.format !== 'vhd') return true;
  return withLvPaths(sr, [baseLv, lv.lvName], async () => (await vhdUtil.check({ path: lvDevicePath(sr.uuid, lv.lvName) })).status === 'valid');
}

async function finishClone(sr: LvmSr, j: XapiJournal): Promise<string> {
  const [baseUuid, cloneUuid = ''] = j.value.split('_');
  if (!UUID_RE.test(j.id) || !UUID_RE.test(baseUuid ?? '') || (cloneUuid !== '' && !UUID_RE.test(cloneUuid))) return `clone journal ${j.lvName}: not <vdi>_<base>_<clone>; left alone`;
  const all = await lvNames(sr);
  const names = new Set(all.keys());
  const base = lvOf(names, baseUuid!);
  const orig = lvOf(names, j.id);
  const clone = cloneUuid === '' ? null : lvOf(names, cloneUuid);
  if (base === null) {
    if (orig === null) return `clone journal ${j.lvName}: neither base ${baseUuid} nor VDI ${j.id} has an LV; left alone`;
    await lvm.lvremove({ vg: sr.vg, name: j.lvName }, sr.scope);
    return `clone of ${j.id}: interrupted before it began; journal removed`;
  }
  const baseRec = all.get(base.lvName)!;
  const complete = orig !== null && (cloneUuid === '' || clone !== null) && (await imageValid(sr, orig, base.lvName)) && (clone === null || (await imageValid(sr, clone, base.lvName)));
  if (complete) {
    await hideBase(sr, base.lvName, base.format, baseRec.attr.readOnly, baseRec.tags, (fn) => withLvPath(sr, base.lvName, fn));
    await lvm.lvremove({ vg: sr.vg, name: j.lvName }, sr.scope);
    return `clone of ${j.id} completed: base ${baseUuid} hidden${clone ? `, clone ${cloneUuid} kept` : ''}`;
  }
  // Undo, as xapi's _undoCloneOp: base writable and visible, leaves removed, base renamed back.
  // xapi also inflates it back to the thick size; here a RW attach does that (any LV below it is inflated).
  if (baseRec.attr.readOnly) await lvm.lvchange({ vg: sr.vg, name: base.lvName, permission: 'rw' }, sr.scope);
  if (base.format === 'vhd') await withLvPath(sr, base.lvName, (path) => vhdUtil.set({ path, field: 'hidden', value: 0 }));
  else if (base.format === 'qcow2') await withLvPath(sr, base.lvName, async (path) => writeQcow2Hidden(path, false));
  else if (baseRec.tags.includes(HIDDEN_TAG)) await lvm.lvchange({ vg: sr.vg, name: base.lvName, delTags: [HIDDEN_TAG] }, sr.scope);
  for (const leaf of [clone, orig]) if (leaf !== null) await lvm.lvremove({ vg: sr.vg, name: leaf.lvName }, sr.scope);
  await lvm.lvrename({ vg: sr.vg, from: base.lvName, to: lvNameOf(j.id, base.format) }, sr.scope);
  await lvm.lvremove({ vg: sr.vg, name: j.lvName }, sr.scope);
  return `clone of ${j.id} rolled back: base ${baseUuid} is ${j.id} again`;
}

/**
 * Finish every journal xapi left; one that fails is logged and kept (the next
 * command tries again). Returns how many were tried (the LVs may have changed).
 */
export async function replayXapiJournals(sr: LvmSr, journals: readonly XapiJournal[], log: { info(m: string): void; error(m: string): void }): Promise<number> {
  let tried = 0;
  for (const j of journals) {
    if (j.type !== 'inflate' && j.type !== 'clone') {
      log.info(`xapi journal ${j.lvName}: not one this driver finishes (xapi does when it next loads the SR); left alone`);
      continue;
    }
    tried++;
    try {
      log.info(`xapi journal: ${j.type === 'inflate' ? await undoInflate(sr, j) : await finishClone(sr, j)}`);
    } catch (e) {
      log.error(`xapi journal ${j.lvName} not finished: ${errText(e)}`);
    }
  }
  return tried;
}
