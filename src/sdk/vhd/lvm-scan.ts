// `vhd-util scan -l VG`: VHDs inside the LVs of a volume group, read straight from
// the physical volumes at each LV's extents (the LVs need not be active, and this
// host has no device-mapper). Layout comes from `lvs`/`pvs` (argument arrays only).
import { spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { EINVAL, VhdError } from './errors.js';
import { segmentRegex } from './glob.js';
import { readFully } from './vhd-file.js';
import { fail, scanHeaders, type ScanOptions, type ScanResult } from './scan.js';

export interface LvSegment {
  lv: string;
  /** LV size in bytes (same on every segment line). */
  size: number;
  /** First logical extent of this segment within the LV. */
  segStartPe: number;
  pv: string;
  /** First physical extent of this segment on the PV. */
  pvStartPe: number;
}

/** Environment for the LVM tools: no device-mapper here, no fd-leak chatter. */
const LVM_ENV = { ...process.env, LVM_SUPPRESS_FD_WARNINGS: '1' };

export const lvsArgv = (vg: string): string[] => [
  'lvs', '--noheadings', '--nosuffix', '--units', 'b', '--separator', '|',
  '-o', 'lv_name,lv_size,seg_start_pe,devices,vg_extent_size', vg,
];
export const pvsArgv = (): string[] => [
  'pvs', '--noheadings', '--nosuffix', '--units', 'b', '--separator', '|', '-o', 'pv_name,pe_start',
];

function runLvm(argv: string[]): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { env: LVM_ENV, encoding: 'utf8' });
  if (r.error) throw new VhdError(2, `${argv[0]}: ${r.error.message}`);
  if (r.status !== 0) throw new VhdError(EINVAL, `${argv.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Parse `lvs` output (see lvsArgv): one line per segment. */
export function parseLvs(out: string): { segments: LvSegment[]; extentSize: number } {
  const segments: LvSegment[] = [];
  let extentSize = 0;
  for (const line of out.split('\n')) {
    const f = line.trim().split('|');
    if (f.length < 5 || f[0] === '') continue;
    const m = /^([^,(]+)\((\d+)\)/.exec(f[3]!);
    if (!m) continue; // segments without a PV (virtual, thin) cannot be read
    extentSize = Number(f[4]);
    segments.push({ lv: f[0]!, size: Number(f[1]), segStartPe: Number(f[2]), pv: m[1]!, pvStartPe: Number(m[2]) });
  }
  return { segments, extentSize };
}

export function parsePvs(out: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of out.split('\n')) {
    const f = line.trim().split('|');
    if (f.length >= 2 && f[0]) m.set(f[0], Number(f[1]));
  }
  return m;
}

/** Scan the LVs of `vg` whose names match one of `patterns` (fnmatch). */
export function scanVolumeGroup(vg: string, patterns: string[], opts: ScanOptions, stopOnError: boolean): ScanResult[] {
  const { segments, extentSize } = parseLvs(runLvm(lvsArgv(vg)));
  const peStart = parsePvs(runLvm(pvsArgv()));
  const res = patterns.map((p) => segmentRegex(p));
  const byLv = new Map<string, LvSegment[]>();
  for (const s of segments) {
    if (!res.some((re) => re.test(s.lv))) continue;
    const list = byLv.get(s.lv) ?? [];
    list.push(s);
    byLv.set(s.lv, list);
  }
  const results: ScanResult[] = [];
  for (const [lv, segs] of byLv) {
    segs.sort((a, b) => a.segStartPe - b.segStartPe);
    const fds = new Map<string, number>();
    try {
      const read = (buf: Buffer, off: number) => {
        // map each extent-sized piece of [off, off+len) to its PV position
        let done = 0;
        while (done < buf.length) {
          const pos = off + done;
          const le = Math.floor(pos / extentSize);
          const seg = [...segs].reverse().find((s) => s.segStartPe <= le);
          if (!seg) throw new VhdError(EINVAL, `offset ${pos} outside ${lv}`);
          const base = peStart.get(seg.pv);
          if (base === undefined) throw new VhdError(EINVAL, `unknown PV ${seg.pv}`);
          const n = Math.min(buf.length - done, (le + 1) * extentSize - pos);
          let fd = fds.get(seg.pv);
          if (fd === undefined) {
            fd = openSync(seg.pv, 'r');
            fds.set(seg.pv, fd);
          }
          readFully(fd, buf.subarray(done, done + n), base + (seg.pvStartPe + le - seg.segStartPe) * extentSize + (pos % extentSize));
          done += n;
        }
      };
      const name = opts.verbose ? `/dev/${vg}/${lv}` : lv;
      let r: ScanResult;
      try {
        r = scanHeaders(name, segs[0]!.size, opts, read);
      } catch {
        r = fail(name, EINVAL, 'opening file');
      }
      results.push(r);
      if (!r.ok && stopOnError) break;
    } finally {
      for (const fd of fds.values()) closeSync(fd);
    }
  }
  return results;
}
