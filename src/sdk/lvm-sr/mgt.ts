// The MGT metadata volume: the SR's own record, one record per VDI (the fields
// xapi's srmetadata keeps: name_label, name_description, is_a_snapshot,
// snapshot_of, snapshot_time, type, vdi_type, read_only, managed,
// metadata_of_pool) and the journals of operations in flight, so a
// re-attached SR is self-describing and a crash is finished from the SR itself.
//
// Layout (docs/lvm.md "MGT volume"):
//   [0, 2 MiB)      xapi's srmetadata encoding (mgt-xml.ts): the SR and VDI
//                   records, for xapi's LVHDSR — and, on an SR xapi made, for us;
//   [2 MiB, 4 MiB)  two 1 MiB slots of ours, each a 512-byte JSON header
//                   {magic, version: 2, seq, length, sha256, xml} then a JSON body
//                   holding the records, journals and long machine data.
// A write goes to the slot NOT holding the newest valid copy (body first, header
// last), so a torn write leaves the previous copy intact; readers take the valid
// slot with the higher seq. That copy is the commit point; the xapi records are
// rewritten after it. The header notes the digest of the xapi records written
// with it and of those there before, so a reader tells "our rewrite did not
// happen" (the slot wins) from "xapi changed its records since" (xapi's names,
// flags and deletions are taken over).
// Version 1 (two 2 MiB slots from offset 0, no xapi records) is still read, and
// moved to this layout at the next write. Anything else is "foreign": read as
// empty and never overwritten.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { SRError } from '../errors/sr-error.js';
import type { LvExtents } from './layout.js';
import { PvReader } from './layout.js';
import { decodeXapiLength, decodeXapiMetadata, encodeXapiMetadata, SECTOR, xapiSrNames, xapiVdiNames, type XapiMetadata, type XapiVdiRecord } from './mgt-xml.js';
import { MGT_SIZE, UUID_RE } from './naming.js';

const MAGIC = 'smapi-ts-mgt';
const HEADER = 512;
/** xapi's records take the first half; our two slots the second. */
const XAPI_ROOM = MGT_SIZE / 2;
const SLOT = MGT_SIZE / 4;
const slotOffset = (slot: number): number => XAPI_ROOM + slot * SLOT;
/** Version 1: two slots of half the volume each, from offset 0. */
const V1_SLOT = MGT_SIZE / 2;

export const VdiMeta = z.object({
  name_label: z.string(),
  name_description: z.string(),
  is_a_snapshot: z.boolean(),
  snapshot_of: z.string(),
  snapshot_time: z.string(),
  type: z.string(),
  vdi_type: z.string(),
  read_only: z.boolean(),
  managed: z.boolean(),
  metadata_of_pool: z.string(),
});
export type VdiMeta = z.infer<typeof VdiMeta>;

const uuid = z.string().regex(UUID_RE);
const format = z.enum(['vhd', 'qcow2', 'raw']);

/** Snapshot/clone in flight (see snapshot.ts for the steps). */
export const SnapshotJournal = z.object({
  op: z.literal('snapshot'),
  vdi: uuid,
  base: uuid,
  clone: uuid.nullable(),
  srcFormat: format,
  leafFormat: format,
  /** started → renamed (A's LV is now B's) → leaf (new A made) → committed */
  step: z.enum(['started', 'renamed', 'leaf', 'committed']),
});
export type SnapshotJournal = z.infer<typeof SnapshotJournal>;

export const ResizeJournal = z.object({
  op: z.literal('resize'),
  vdi: uuid,
  format,
  fromLvSize: z.number().int().nonnegative(),
  fromVirtual: z.number().int().nonnegative(),
  to: z.number().int().nonnegative(),
});
export type ResizeJournal = z.infer<typeof ResizeJournal>;

/** GC: hidden node `vdi` merged into its parent, its only child re-linked, `vdi` removed (gc.ts). */
export const CoalesceJournal = z.object({
  op: z.literal('coalesce'),
  vdi: uuid,
  format,
  parent: uuid,
  parentFormat: format,
  child: uuid,
  childFormat: format,
  /** started → merged (data in the parent) → relinked (child points at the parent) */
  step: z.enum(['started', 'merged', 'relinked']),
});
export type CoalesceJournal = z.infer<typeof CoalesceJournal>;

/** GC: visible leaf `vdi` merged into its hidden base, whose LV then becomes the leaf's (gc.ts). */
export const LeafCoalesceJournal = z.object({
  op: z.literal('leaf-coalesce'),
  vdi: uuid,
  format,
  base: uuid,
  /** started → merged (leaf data in the base) → renamed (the base's LV is the leaf's) */
  step: z.enum(['started', 'merged', 'renamed']),
});
export type LeafCoalesceJournal = z.infer<typeof LeafCoalesceJournal>;

/** Inflate (toLvSize > fromLvSize) or deflate of a VDI's LV; recovery shrinks it to the smaller size (provisioning.ts). */
export const ProvisionJournal = z.object({
  op: z.literal('provision'),
  vdi: uuid,
  format,
  fromLvSize: z.number().int().positive(),
  toLvSize: z.number().int().positive(),
});
export type ProvisionJournal = z.infer<typeof ProvisionJournal>;

export const Journal = z.discriminatedUnion('op', [SnapshotJournal, ResizeJournal, CoalesceJournal, LeafCoalesceJournal, ProvisionJournal]);
export type Journal = z.infer<typeof Journal>;

export const MgtContent = z.object({
  sr: z.object({ uuid, name_label: z.string(), name_description: z.string(), allocation: z.enum(['thick', 'thin']) }),
  vdis: z.record(uuid, VdiMeta),
  journals: z.array(Journal),
  /**
   * Machine data too long for LV tags (lvm-sr/image-meta.ts): reference → the
   * image's string. The LV's tag `image-meta:<gen>:mgt:<ref>` points here, so
   * the value follows the LV through renames (snapshot), as tags do.
   */
  image_meta: z.record(z.string().regex(/^[0-9a-f]{16}$/), z.string()).default({}),
});
export type MgtContent = z.infer<typeof MgtContent>;

const HeaderV1 = z.object({ magic: z.literal(MAGIC), version: z.literal(1), seq: z.number().int().nonnegative(), length: z.number().int().positive(), sha256: z.string() });
const Header = HeaderV1.extend({
  version: z.literal(2),
  /** sha256 of the xapi records written after this copy (`now`) and of those found before it. */
  xml: z.object({ now: z.string(), before: z.string() }),
});

export interface MgtState {
  /**
   * 'ours' (our slots readable), 'xapi' (only xapi's records: an SR xapi made),
   * 'empty' (never written), 'foreign' (neither encoding: left alone).
   */
  kind: 'ours' | 'xapi' | 'empty' | 'foreign';
  content: MgtContent | null;
  seq: number;
  /** The slot holding `content` (layout 2), or -1 when the next write goes to slot 1. */
  slot: number;
  /** sha256 of xapi's records as they are on disk now ('' when there are none). */
  xmlSha: string;
  /** Set when xapi changed its records after our last write and they were taken over. */
  tookOverXapi?: boolean;
}

export function emptyContent(srUuid: string, name = '', description = ''): MgtContent {
  return { sr: { uuid: srUuid, name_label: name, name_description: description, allocation: 'thick' }, vdis: {}, journals: [], image_meta: {} };
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

type Slot<H> = { header: H; content: MgtContent } | 'zero' | 'bad';

function readSlot<H extends { length: number; sha256: string }>(r: PvReader, ext: LvExtents, offset: number, room: number, schema: z.ZodType<H>): Slot<H> {
  const head = r.read(ext, offset, HEADER);
  if (head.every((b) => b === 0)) return 'zero';
  try {
    const h = schema.parse(JSON.parse(head.toString('utf8').replace(/\0+$/, '')));
    if (h.length > room - HEADER) return 'bad';
    const body = r.read(ext, offset + HEADER, h.length);
    if (sha256(body) !== h.sha256) return 'bad';
    return { header: h, content: MgtContent.parse(JSON.parse(body.toString('utf8'))) };
  } catch {
    return 'bad';
  }
}

/** The readable slot with the highest seq, and its index. */
function newest<H extends { seq: number }>(slots: readonly Slot<H>[]): { i: number; header: H; content: MgtContent } | null {
  let best: { i: number; header: H; content: MgtContent } | null = null;
  for (const [i, s] of slots.entries()) if (typeof s === 'object' && (best === null || s.header.seq > best.header.seq)) best = { i, ...s };
  return best;
}

const bool = (v: string | undefined): boolean => v === '1' || v?.toLowerCase() === 'true';

/** Our record of a VDI from xapi's. */
function vdiFromXapi(x: XapiVdiRecord): VdiMeta {
  return {
    name_label: x['name_label'] ?? '',
    name_description: x['name_description'] ?? '',
    is_a_snapshot: bool(x['is_a_snapshot']),
    snapshot_of: x['snapshot_of'] ?? '',
    snapshot_time: x['snapshot_time'] ?? '',
    type: x['type'] ?? 'user',
    vdi_type: x['vdi_type'] ?? '',
    read_only: bool(x['read_only']),
    managed: x['managed'] === undefined ? true : bool(x['managed']),
    metadata_of_pool: x['metadata_of_pool'] ?? '',
  };
}

/** xapi's record of a VDI from ours (its tag order). */
function vdiToXapi(uuid: string, m: VdiMeta): XapiVdiRecord {
  const n = (b: boolean): string => (b ? '1' : '0');
  return {
    uuid,
    name_label: m.name_label,
    name_description: m.name_description,
    is_a_snapshot: n(m.is_a_snapshot),
    snapshot_of: m.snapshot_of,
    snapshot_time: m.snapshot_time,
    type: m.type,
    vdi_type: m.vdi_type,
    read_only: n(m.read_only),
    managed: n(m.managed),
    metadata_of_pool: m.metadata_of_pool,
  };
}

function contentFromXapi(x: XapiMetadata): MgtContent {
  const c = emptyContent(x.sr.uuid, x.sr.name_label, x.sr.name_description);
  if (x.sr.allocation === 'thin') c.sr.allocation = 'thin';
  for (const v of x.vdis) if (!bool(v['deleted'])) c.vdis[v['uuid']!] = vdiFromXapi(v);
  return c;
}

/**
 * xapi changed its records after our last write: its SR names, VDI records and
 * deletions win; VDIs it has no record of keep ours. A name that is our own cut
 * to fit xapi's sector (xapiSrNames, xapiVdiNames) keeps our full one.
 */
function takeOverXapi(ours: MgtContent, x: XapiMetadata): MgtContent {
  const c = structuredClone(ours);
  const sr = xapiSrNames(c.sr.name_label, c.sr.name_description);
  if (x.sr.name_label !== sr.label) c.sr.name_label = x.sr.name_label;
  if (x.sr.name_description !== sr.description) c.sr.name_description = x.sr.name_description;
  for (const v of x.vdis) {
    const uuid = v['uuid']!;
    if (bool(v['deleted'])) {
      delete c.vdis[uuid];
      continue;
    }
    const theirs = vdiFromXapi(v);
    const mine = c.vdis[uuid];
    if (mine !== undefined) {
      const cut = xapiVdiNames(mine.name_label, mine.name_description);
      if (theirs.name_label === cut.label) theirs.name_label = mine.name_label;
      if (theirs.name_description === cut.description) theirs.name_description = mine.name_description;
    }
    c.vdis[uuid] = theirs;
  }
  return c;
}

/** xapi's records as bytes (up to the length in use) and their digest; decoded only when needed. */
function readXapi(r: PvReader, ext: LvExtents): { bytes: Buffer | null; sha: string } {
  const length = decodeXapiLength(r.read(ext, 0, SECTOR));
  if (length === null || length > MGT_SIZE) return { bytes: null, sha: '' };
  const bytes = r.read(ext, 0, length);
  return { bytes, sha: sha256(bytes) };
}

export function readMgt(ext: LvExtents): MgtState {
  if (ext.lv.lvSize < MGT_SIZE) return { kind: 'foreign', content: null, seq: 0, slot: -1, xmlSha: '' };
  const r = new PvReader('r');
  try {
    const xapi = readXapi(r, ext);
    const slots = [0, 1].map((i) => readSlot(r, ext, slotOffset(i), SLOT, Header));
    const b = newest(slots);
    if (b !== null) {
      const changed = xapi.bytes !== null && xapi.sha !== b.header.xml.now && xapi.sha !== b.header.xml.before;
      const theirs = changed ? decodeXapiMetadata(xapi.bytes!) : null;
      const state: MgtState = { kind: 'ours', content: theirs ? takeOverXapi(b.content, theirs) : b.content, seq: b.header.seq, slot: b.i, xmlSha: xapi.sha };
      if (theirs) state.tookOverXapi = true;
      return state;
    }
    const v1 = newest([0, 1].map((i) => readSlot(r, ext, i * V1_SLOT, V1_SLOT, HeaderV1)));
    if (v1 !== null) return { kind: 'ours', content: v1.content, seq: v1.header.seq, slot: -1, xmlSha: xapi.sha };
    const only = xapi.bytes === null ? null : decodeXapiMetadata(xapi.bytes);
    if (only !== null) return { kind: 'xapi', content: contentFromXapi(only), seq: 0, slot: -1, xmlSha: xapi.sha };
    if (r.read(ext, 0, SECTOR).every((b) => b === 0) && slots.every((s) => s === 'zero')) return { kind: 'empty', content: null, seq: 0, slot: -1, xmlSha: '' };
    return { kind: 'foreign', content: null, seq: 0, slot: -1, xmlSha: '' };
  } finally {
    r.close();
  }
}

/**
 * Write `content` as the next copy (the slot not holding the newest valid one;
 * slot 1 when moving from version 1 or from xapi's records alone, as it lies
 * past a version-1 copy's body and past xapi's records), then xapi's records.
 */
export function writeMgt(ext: LvExtents, prev: MgtState, content: MgtContent): MgtState {
  if (prev.kind === 'foreign') throw new SRError('MetadataError', `the MGT volume ${ext.lv.vgName}/MGT is in neither xapi's encoding nor ours; it is left untouched`);
  const checked = MgtContent.parse(content);
  const xml = encodeXapiMetadata(
    { uuid: checked.sr.uuid, allocation: checked.sr.allocation, name_label: checked.sr.name_label, name_description: checked.sr.name_description },
    Object.entries(checked.vdis).map(([uuid, m]) => vdiToXapi(uuid, m)),
    XAPI_ROOM,
  );
  const body = Buffer.from(JSON.stringify(checked), 'utf8');
  if (body.length > SLOT - HEADER) throw new SRError('MetadataError', `SR metadata is ${body.length} bytes; the MGT volume holds at most ${SLOT - HEADER} per copy`);
  const seq = prev.seq + 1;
  const slot = prev.slot === -1 ? 1 : 1 - prev.slot;
  const xmlSha = sha256(xml);
  const head = Buffer.alloc(HEADER);
  head.write(JSON.stringify({ magic: MAGIC, version: 2, seq, length: body.length, sha256: sha256(body), xml: { now: xmlSha, before: prev.xmlSha } }), 'utf8');
  const w = new PvReader('r+');
  try {
    // Body first, header last: a torn write leaves a header whose hash does not match.
    w.write(ext, slotOffset(slot) + HEADER, body);
    w.write(ext, slotOffset(slot), head);
    // xapi's records, header sector (which holds the length) last, as xapi writes them.
    w.write(ext, SECTOR, xml.subarray(SECTOR));
    w.write(ext, 0, xml.subarray(0, SECTOR));
  } finally {
    w.close();
  }
  return { kind: 'ours', content, seq, slot, xmlSha };
}
