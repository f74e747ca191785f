// Where each LV's bytes are on the physical volumes, from ONE `lvs` (with
// segments) and ONE `pvs` (pe_start) call, and in-process reads/writes there.
// This is how a scan reads every VDI's image header without activating any LV
// and without a process per VDI (as blktap's `vhd-util scan -l VG` reads
// straight from the PVs); it also works on hosts without device-mapper.
import { closeSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import * as lvm from '../tools/lvm.js';
import { runTool } from '../tools/run.js';

export interface LvPiece {
  /** Offset of this piece inside the LV. */
  lvOffset: number;
  pv: string;
  /** Byte offset on the PV. */
  pvOffset: number;
  length: number;
}

export interface LvExtents {
  lv: lvm.LvRecord;
  pieces: LvPiece[];
}

export interface VgLayout {
  vg: string;
  lvs: Map<string, LvExtents>;
  pvs: lvm.PvRecord[];
}

/** `/dev/loop1:25-39` → device and first/last physical extent. */
function parseRange(r: string): { pv: string; first: number; last: number } {
  const m = /^(.+):(\d+)-(\d+)$/.exec(r);
  if (!m) throw new Error(`unexpected LVM segment range ${JSON.stringify(r)}`);
  return { pv: m[1]!, first: Number(m[2]), last: Number(m[3]) };
}

/** Byte pieces of one LV, in LV order. Extent size = LV size / extents (linear LVs). */
export function extentsOf(lv: lvm.LvRecord, peStart: ReadonlyMap<string, number>): LvExtents {
  const ranges = (lv.segments ?? []).flatMap((s) => s.peRanges.map(parseRange));
  const extents = ranges.reduce((a, r) => a + (r.last - r.first + 1), 0);
  if (extents === 0) return { lv, pieces: [] };
  const extentSize = lv.lvSize / extents;
  const pieces: LvPiece[] = [];
  let at = 0;
  for (const r of ranges) {
    const start = peStart.get(r.pv);
    if (start === undefined) throw new Error(`LV ${lv.lvName} uses PV ${r.pv}, which pvs did not report`);
    const length = (r.last - r.first + 1) * extentSize;
    pieces.push({ lvOffset: at, pv: r.pv, pvOffset: start + r.first * extentSize, length });
    at += length;
  }
  return { lv, pieces };
}

export async function readVgLayout(vg: string, scope: lvm.LvmScope): Promise<VgLayout> {
  // One after the other (not in parallel): the commands a scan runs are always in the same order.
  const lvs = await lvm.lvs({ vg, segments: true }, scope);
  const pvs = await lvm.pvs({ devices: scope.devices ?? [] }, scope);
  const peStart = new Map(pvs.map((p) => [p.pvName, p.peStart]));
  const out = new Map<string, LvExtents>();
  for (const lv of lvs) out.set(lv.lvName, extentsOf(lv, peStart));
  return { vg, lvs: out, pvs: pvs.filter((p) => p.vgName === vg) };
}

/**
 * With device-mapper, LVs are written through /dev/dm-*, below the PVs' page
 * cache: drop that cache once (one process per PV) before reading the PVs.
 */
export async function flushPvCaches(pvs: readonly string[]): Promise<void> {
  for (const pv of pvs) await runTool(['blockdev', '--flushbufs', pv]);
}

/** Open file descriptors per PV, shared by many reads (one scan). */
export class PvReader {
  private readonly fds = new Map<string, number>();
  constructor(private readonly mode: 'r' | 'r+' = 'r') {}

  private fd(pv: string): number {
    let fd = this.fds.get(pv);
    if (fd === undefined) {
      fd = openSync(pv, this.mode);
      this.fds.set(pv, fd);
    }
    return fd;
  }

  /** Up to `length` bytes of the LV from `offset` (short at the LV's end). */
  read(ext: LvExtents, offset: number, length: number): Buffer {
    const out = Buffer.alloc(Math.max(0, Math.min(length, ext.lv.lvSize - offset)));
    let done = 0;
    for (const p of ext.pieces) {
      while (done < out.length) {
        const at = offset + done;
        if (at < p.lvOffset || at >= p.lvOffset + p.length) break;
        const n = Math.min(out.length - done, p.lvOffset + p.length - at);
        const got = readSync(this.fd(p.pv), out, done, n, p.pvOffset + (at - p.lvOffset));
        if (got <= 0) throw new Error(`short read of ${ext.lv.lvName} on ${p.pv}`);
        done += got;
      }
    }
    return out.subarray(0, done);
  }

  /** Write `data` at `offset` of the LV (must fit), then fsync. */
  write(ext: LvExtents, offset: number, data: Buffer): void {
    if (offset + data.length > ext.lv.lvSize) throw new RangeError(`write of ${data.length} bytes at ${offset} runs past the end of LV ${ext.lv.lvName} (${ext.lv.lvSize} bytes)`);
    let done = 0;
    const touched = new Set<string>();
    for (const p of ext.pieces) {
      while (done < data.length) {
        const at = offset + done;
        if (at < p.lvOffset || at >= p.lvOffset + p.length) break;
        const n = Math.min(data.length - done, p.lvOffset + p.length - at);
        done += writeSync(this.fd(p.pv), data, done, n, p.pvOffset + (at - p.lvOffset));
        touched.add(p.pv);
      }
    }
    for (const pv of touched) fsyncSync(this.fd(pv));
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}
