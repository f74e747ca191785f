// The MGT metadata volume: the SR's own record, one record per VDI (the fields
// xapi's srmetadata keeps: name_label, name_description, is_a_snapshot,
// snapshot_of, snapshot_time, type, vdi_type, read_only, managed,
// metadata_of_pool) and the journals of operations in flight, so a
// re-attached SR is self-describing and a crash is finished from the SR itself.
//
// Encoding (ours; documented in docs/lvm.md): two 2 MiB slots; each starts with
// a 512-byte JSON header {magic, version, seq, length, sha256} followed by a
// JSON body. A write goes to the slot NOT holding the newest valid copy, so a
// torn write leaves the previous copy intact; readers take the valid slot with
// the higher seq. An MGT volume in another encoding (xapi's XML sectors) is
// "foreign": read as empty and never overwritten.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { SRError } from '../errors/sr-error.js';
import type { LvExtents } from './layout.js';
import { PvReader } from './layout.js';
import { MGT_SIZE, UUID_RE } from './naming.js';

const MAGIC = 'smapi-ts-mgt';
const SLOT = MGT_SIZE / 2;
const HEADER = 512;

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

const Header = z.object({ magic: z.literal(MAGIC), version: z.literal(1), seq: z.number().int().nonnegative(), length: z.number().int().positive(), sha256: z.string() });

export interface MgtState {
  /** 'ours' (readable), 'empty' (never written), 'foreign' (another encoding: left alone). */
  kind: 'ours' | 'empty' | 'foreign';
  content: MgtContent | null;
  seq: number;
  slot: number;
}

export function emptyContent(srUuid: string, name = '', description = ''): MgtContent {
  return { sr: { uuid: srUuid, name_label: name, name_description: description, allocation: 'thick' }, vdis: {}, journals: [], image_meta: {} };
}

function readSlot(r: PvReader, ext: LvExtents, slot: number): { seq: number; content: MgtContent } | 'zero' | 'bad' {
  const head = r.read(ext, slot * SLOT, HEADER);
  if (head.every((b) => b === 0)) return 'zero';
  try {
    const h = Header.parse(JSON.parse(head.toString('utf8').replace(/\0+$/, '')));
    if (h.length > SLOT - HEADER) return 'bad';
    const body = r.read(ext, slot * SLOT + HEADER, h.length);
    if (createHash('sha256').update(body).digest('hex') !== h.sha256) return 'bad';
    return { seq: h.seq, content: MgtContent.parse(JSON.parse(body.toString('utf8'))) };
  } catch {
    return 'bad';
  }
}

export function readMgt(ext: LvExtents): MgtState {
  if (ext.lv.lvSize < MGT_SIZE) return { kind: 'foreign', content: null, seq: 0, slot: 0 };
  const r = new PvReader('r');
  try {
    const slots = [readSlot(r, ext, 0), readSlot(r, ext, 1)];
    let best: MgtState | null = null;
    slots.forEach((s, i) => {
      if (typeof s === 'object' && (best === null || s.seq > best.seq)) best = { kind: 'ours', content: s.content, seq: s.seq, slot: i };
    });
    if (best !== null) return best;
    if (slots.every((s) => s === 'zero')) return { kind: 'empty', content: null, seq: 0, slot: 1 };
    return { kind: 'foreign', content: null, seq: 0, slot: 0 };
  } finally {
    r.close();
  }
}

/** Write `content` as the next copy (the slot not holding the newest valid one). */
export function writeMgt(ext: LvExtents, prev: MgtState, content: MgtContent): MgtState {
  if (prev.kind === 'foreign') throw new SRError('MetadataError', `the MGT volume ${ext.lv.vgName}/MGT is not in smapi-ts's encoding (made by another driver); it is left untouched`);
  const body = Buffer.from(JSON.stringify(MgtContent.parse(content)), 'utf8');
  if (body.length > SLOT - HEADER) throw new SRError('MetadataError', `SR metadata is ${body.length} bytes; the MGT volume holds at most ${SLOT - HEADER} per copy`);
  const seq = prev.seq + 1;
  const slot = prev.kind === 'ours' ? 1 - prev.slot : 0;
  const head = Buffer.alloc(HEADER);
  head.write(JSON.stringify({ magic: MAGIC, version: 1, seq, length: body.length, sha256: createHash('sha256').update(body).digest('hex') }), 'utf8');
  const w = new PvReader('r+');
  try {
    // Body first, header last: a torn write leaves a header whose hash does not match.
    w.write(ext, slot * SLOT + HEADER, body);
    w.write(ext, slot * SLOT, head);
  } finally {
    w.close();
  }
  return { kind: 'ours', content, seq, slot };
}
