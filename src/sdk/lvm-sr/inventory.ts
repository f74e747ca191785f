// One pass over an LVM SR: ONE `lvs` (with segments) and ONE `pvs`, then every
// image header read in-process from the PVs (lvm-sr/layout.ts) — never a
// process per VDI, and no LV needs to be active. VHD: footer copy at LV offset
// 0 and the dynamic header (parent name `VHD-<uuid>` / `LV-<uuid>`); qcow2: the
// header cluster (backing file /dev/<vg>/<LV>); raw: the LV size and its
// `hidden` tag.
import type { ImageFormat } from '../../driver-info.js';
import { parseQcow2Header } from '../formats/qcow2-header.js';
import type * as lvm from '../tools/lvm.js';
import { flushPvCaches, PvReader, readVgLayout, type LvExtents, type VgLayout } from './layout.js';
import { readMgt, type MgtState } from './mgt.js';
import { HIDDEN_TAG, MGT_LV, parseLvName } from './naming.js';
import type { LvmSr } from './sr.js';

export interface VdiNode {
  uuid: string;
  format: ImageFormat;
  lvName: string;
  lvSize: number;
  virtualSize: number;
  hidden: boolean;
  parent: string | null;
  children: string[];
  /** LVM permission is read-only (`lvchange -p r`, as sm does for bases). */
  lvReadOnly: boolean;
  tags: string[];
}

export interface Inventory {
  layout: VgLayout;
  vdis: Map<string, VdiNode>;
  /** LVs that look like VDIs but whose header could not be read. */
  errors: { lv: string; message: string }[];
  mgt: MgtState | null;
  mgtExtents: LvExtents | null;
}

interface Header {
  virtualSize: number;
  hidden: boolean;
  parent: string | null;
}

function utf16be(b: Buffer): string {
  const s = Buffer.from(b);
  s.swap16();
  return s.toString('utf16le').replace(/\0.*$/s, '');
}

/** VHD footer (copy at offset 0 of a dynamic/differencing VHD) and header. */
export function parseVhdOnLv(r: PvReader, ext: LvExtents): Header {
  const footer = r.read(ext, 0, 512);
  if (footer.length < 512 || footer.toString('latin1', 0, 8) !== 'conectix') throw new Error('no VHD footer (cookie "conectix") at the start of the LV');
  const diskType = footer.readUInt32BE(60);
  const virtualSize = Number(footer.readBigUInt64BE(48));
  const hidden = footer[85] !== 0;
  if (diskType !== 4) {
    if (diskType !== 3 && diskType !== 2) throw new Error(`VHD disk type ${diskType} is not fixed, dynamic or differencing`);
    return { virtualSize, hidden, parent: null };
  }
  const headerOffset = Number(footer.readBigUInt64BE(16));
  const header = r.read(ext, headerOffset, 1024);
  if (header.length < 1024 || header.toString('latin1', 0, 8) !== 'cxsparse') throw new Error(`no VHD dynamic header at ${headerOffset}`);
  const name = utf16be(header.subarray(64, 576));
  const p = parseLvName(name.replace(/^.*\//, ''));
  if (p === null) throw new Error(`VHD parent ${JSON.stringify(name)} is not an LV of this SR (VHD-<uuid> or LV-<uuid>)`);
  return { virtualSize, hidden, parent: p.uuid };
}

export function parseQcow2OnLv(r: PvReader, ext: LvExtents, vg: string): Header {
  const h = parseQcow2Header(r.read(ext, 0, 65536), ext.lv.lvName);
  if (h.dataFile !== null || h.hasExternalData) throw new Error('qcow2 with an external data file is not allowed on an LV');
  let parent: string | null = null;
  if (h.backingFile !== null) {
    const m = /^\/dev\/([^/]+)\/([^/]+)$/.exec(h.backingFile);
    const p = m && m[1] === vg ? parseLvName(m[2]!) : null;
    if (p === null) throw new Error(`qcow2 backing file ${JSON.stringify(h.backingFile)} is not an LV of ${vg}`);
    if (h.backingFormat !== p.format) throw new Error(`qcow2 backing format ${JSON.stringify(h.backingFormat)} does not match ${h.backingFile}`);
    parent = p.uuid;
  }
  return { virtualSize: h.virtualSize, hidden: h.hidden, parent };
}

function headerOf(r: PvReader, ext: LvExtents, format: ImageFormat, vg: string): Header {
  switch (format) {
    case 'vhd':
      return parseVhdOnLv(r, ext);
    case 'qcow2':
      return parseQcow2OnLv(r, ext, vg);
    case 'raw':
      return { virtualSize: ext.lv.lvSize, hidden: ext.lv.tags.includes(HIDDEN_TAG), parent: null };
  }
}

export async function readInventory(sr: LvmSr): Promise<Inventory> {
  const layout = await readVgLayout(sr.vg, sr.scope);
  if (sr.dm) await flushPvCaches(layout.pvs.map((p) => p.pvName));
  const vdis = new Map<string, VdiNode>();
  const errors: Inventory['errors'] = [];
  const r = new PvReader('r');
  try {
    for (const [name, ext] of layout.lvs) {
      const id = parseLvName(name);
      if (id === null) continue;
      try {
        const h = headerOf(r, ext, id.format, sr.vg);
        vdis.set(id.uuid, nodeOf(id.uuid, id.format, ext.lv, h));
      } catch (e) {
        errors.push({ lv: name, message: (e as Error).message });
      }
    }
  } finally {
    r.close();
  }
  for (const v of vdis.values()) {
    if (v.parent === null) continue;
    const p = vdis.get(v.parent);
    if (p) p.children.push(v.uuid);
    else errors.push({ lv: v.lvName, message: `parent ${v.parent} is missing` });
  }
  const mgtExtents = layout.lvs.get(MGT_LV) ?? null;
  return { layout, vdis, errors, mgt: mgtExtents ? readMgt(mgtExtents) : null, mgtExtents };
}

function nodeOf(uuid: string, format: ImageFormat, lv: lvm.LvRecord, h: Header): VdiNode {
  return { uuid, format, lvName: lv.lvName, lvSize: lv.lvSize, virtualSize: h.virtualSize, hidden: h.hidden, parent: h.parent, children: [], lvReadOnly: lv.attr.readOnly, tags: lv.tags };
}

/**
 * The LVs a tool must reach to open VDI `uuid`'s image: qemu-img opens a qcow2
 * with its whole backing chain; vhd-util and raw access touch the one LV.
 */
export function lvsToOpen(inv: Inventory, node: VdiNode): string[] {
  return node.format === 'qcow2' ? chainOf(inv, node.uuid).map((n) => n.lvName) : [node.lvName];
}

/** The VDI and its ancestors, leaf first. */
export function chainOf(inv: Inventory, uuid: string): VdiNode[] {
  const out: VdiNode[] = [];
  let cur = inv.vdis.get(uuid);
  while (cur !== undefined && out.length <= 64) {
    out.push(cur);
    cur = cur.parent === null ? undefined : inv.vdis.get(cur.parent);
  }
  return out;
}
