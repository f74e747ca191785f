// LVM: pvs/vgs/lvs as typed records (JSON report), and the metadata commands
// sm's lvutil.py runs. Every command gets the same global options (LvmScope):
//  * `--devices DEV...` so a command only ever sees the SR's own PVs, never the
//    host's other volume groups;
//  * `--driverloaded n` where the kernel has no device-mapper: LVM then edits
//    metadata only and activates nothing (spec/test-hosts.md §4(i)).
//    Default: $SM_LVM_NO_DM (1 = add it, 0 = never), else auto-detected by
//    opening /dev/mapper/control (missing or ENODEV → no device-mapper).
import { closeSync, openSync } from 'node:fs';
import { z } from 'zod';
import { env } from '../env.js';
import { intArg, nameArg, pathArg } from './args.js';
import { outputError, runTool, type RunOptions, type ToolOutput } from './run.js';

export interface LvmScope {
  /** `--devices`: the only block devices the command may look at. */
  devices?: readonly string[];
  /** false adds `--driverloaded n`. Default: SM_LVM_NO_DM, else auto-detect. */
  deviceMapper?: boolean;
}

let dmDetected: boolean | undefined;

/** Whether the kernel's device-mapper can be used (cached for the process). */
export function deviceMapperAvailable(): boolean {
  if (dmDetected === undefined) {
    try {
      closeSync(openSync('/dev/mapper/control', 'r'));
      dmDetected = true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // ENODEV: the node exists but the dm module is not in this kernel.
      dmDetected = !(code === 'ENOENT' || code === 'ENODEV' || code === 'ENXIO');
    }
  }
  return dmDetected;
}

function useDeviceMapper(scope: LvmScope | undefined): boolean {
  if (scope?.deviceMapper !== undefined) return scope.deviceMapper;
  switch (env.lvmNoDeviceMapper()) {
    case 'yes': return false; // SM_LVM_NO_DM=1
    case 'no': return true; // SM_LVM_NO_DM=0
    case 'auto': return deviceMapperAvailable();
  }
}

/** The global options every LVM command gets for this scope. */
export function scopeArgs(scope?: LvmScope): string[] {
  const args: string[] = [];
  for (const d of scope?.devices ?? []) args.push('--devices', pathArg('LVM scope device', d));
  if (!useDeviceMapper(scope)) args.push('--driverloaded', 'n');
  return args;
}

function cmd(program: string, scope: LvmScope | undefined, ...rest: string[]): string[] {
  return [program, ...scopeArgs(scope), ...rest];
}

// LVM's own name rules: letters, digits, + _ . - ; not starting with '-'.
const vgName = (v: string) => nameArg('volume group name', v);
const lvName = (v: string) => nameArg('logical volume name', v);
const tagName = (v: string) => nameArg('LVM tag', v, /^[A-Za-z0-9_+.\/=!:&#][A-Za-z0-9_+.\-\/=!:&#]*$/);
const lvRef = (vg: string, lv: string) => `${vgName(vg)}/${lvName(lv)}`;

/** LVM size argument in bytes (`<n>b`); LVM rounds up to whole extents. */
function bytes(what: string, n: number): string {
  return `${intArg(what, n, { min: 512, multipleOf: 512 })}b`;
}

function metadataSize(mib: number | undefined): string[] {
  return ['--metadatasize', `${intArg('metadata size (MiB)', mib ?? 10, { min: 1 })}M`];
}

function devList(what: string, devices: readonly string[]): string[] {
  if (devices.length === 0) throw new TypeError(`${what}: at least one device is required`);
  return devices.map((d) => pathArg(what, d));
}

// ---------------------------------------------------------------- PV / VG

export interface PvCreateOptions {
  devices: readonly string[];
  /** `-ff -y`: overwrite whatever is on the device (sm does). Default true. */
  force?: boolean;
  /** Default 10 MiB, as sm. */
  metadataSizeMiB?: number;
}

export function pvcreateArgv(o: PvCreateOptions, scope?: LvmScope): string[] {
  return cmd('pvcreate', scope, ...((o.force ?? true) ? ['-ff', '-y'] : []), ...metadataSize(o.metadataSizeMiB), ...devList('pvcreate device', o.devices));
}

export interface PvRemoveOptions {
  devices: readonly string[];
}

export function pvremoveArgv(o: PvRemoveOptions, scope?: LvmScope): string[] {
  return cmd('pvremove', scope, ...devList('pvremove device', o.devices));
}

export function pvresizeArgv(o: { device: string }, scope?: LvmScope): string[] {
  return cmd('pvresize', scope, pathArg('pvresize device', o.device));
}

export interface VgCreateOptions {
  vg: string;
  devices: readonly string[];
  /** Default 10 MiB, as sm. */
  metadataSizeMiB?: number;
}

export function vgcreateArgv(o: VgCreateOptions, scope?: LvmScope): string[] {
  return cmd('vgcreate', scope, ...metadataSize(o.metadataSizeMiB), vgName(o.vg), ...devList('vgcreate device', o.devices));
}

export interface VgExtendOptions {
  vg: string;
  devices: readonly string[];
}

export function vgextendArgv(o: VgExtendOptions, scope?: LvmScope): string[] {
  return cmd('vgextend', scope, vgName(o.vg), ...devList('vgextend device', o.devices));
}

export interface VgRemoveOptions {
  vg: string;
  /** `-f`: also remove the LVs still in it. */
  force?: boolean;
}

export function vgremoveArgv(o: VgRemoveOptions, scope?: LvmScope): string[] {
  return cmd('vgremove', scope, ...(o.force ? ['-f'] : []), vgName(o.vg));
}

export interface VgChangeOptions {
  vg: string;
  activate: boolean;
}

export function vgchangeArgv(o: VgChangeOptions, scope?: LvmScope): string[] {
  return cmd('vgchange', scope, o.activate ? '-ay' : '-an', vgName(o.vg));
}

// ---------------------------------------------------------------- LV

export interface LvCreateOptions {
  vg: string;
  name: string;
  /** Rounded up by LVM to whole extents (4 MiB by default). */
  sizeBytes: number;
  tags?: readonly string[];
  /** false: `--activate n --zero n` (create inactive, as sm's `activate=False`). Default true. */
  activate?: boolean;
  /** `-W y --yes`: wipe old signatures without asking (sm). Default true. */
  wipeSignatures?: boolean;
  /** `-i N -I 2048` striping over N PVs (EXT SR over several devices). */
  stripes?: number;
}

export function lvcreateArgv(o: LvCreateOptions, scope?: LvmScope): string[] {
  const argv = cmd('lvcreate', scope, '-n', lvName(o.name));
  if (o.stripes !== undefined && o.stripes > 1) argv.push('-i', intArg('stripes', o.stripes, { min: 2 }), '-I', '2048');
  argv.push('-L', bytes('lvcreate size (bytes)', o.sizeBytes), vgName(o.vg));
  for (const t of o.tags ?? []) argv.push('--addtag', tagName(t));
  if (o.activate === false) argv.push('--activate', 'n', '--zero', 'n');
  if (o.wipeSignatures ?? true) argv.push('-W', 'y', '--yes');
  return argv;
}

export interface LvRef {
  vg: string;
  name: string;
}

export function lvremoveArgv(o: LvRef, scope?: LvmScope): string[] {
  return cmd('lvremove', scope, '-f', lvRef(o.vg, o.name));
}

export interface LvRenameOptions {
  vg: string;
  from: string;
  to: string;
}

export function lvrenameArgv(o: LvRenameOptions, scope?: LvmScope): string[] {
  return cmd('lvrename', scope, vgName(o.vg), lvName(o.from), lvName(o.to));
}

/** Several changes in ONE lvchange, so they land in a single metadata commit. */
export interface LvChangeOptions extends LvRef {
  activate?: boolean;
  permission?: 'r' | 'rw';
  addTags?: readonly string[];
  delTags?: readonly string[];
}

export function lvchangeArgv(o: LvChangeOptions, scope?: LvmScope): string[] {
  const rest: string[] = [];
  if (o.activate !== undefined) rest.push(o.activate ? '-ay' : '-an');
  if (o.permission !== undefined) {
    if (o.permission !== 'r' && o.permission !== 'rw') throw new TypeError(`lvchange permission ${JSON.stringify(o.permission)} is not one of "r", "rw"`);
    rest.push('-p', o.permission);
  }
  for (const t of o.addTags ?? []) rest.push('--addtag', tagName(t));
  for (const t of o.delTags ?? []) rest.push('--deltag', tagName(t));
  if (rest.length === 0) throw new TypeError('lvchange: nothing to change (give activate, permission, addTags or delTags)');
  return cmd('lvchange', scope, ...rest, lvRef(o.vg, o.name));
}

export interface LvResizeOptions extends LvRef {
  sizeBytes: number;
  /**
   * Allow shrinking (data past the new end is lost); adds `-f` (no prompt). Never on by
   * default: LVM itself only asks before shrinking an *active* LV, so `lvresize()` reads
   * the current size first and refuses a shrink unless this is set.
   */
  allowShrink?: boolean;
}

export function lvresizeArgv(o: LvResizeOptions, scope?: LvmScope): string[] {
  return cmd('lvresize', scope, ...(o.allowShrink ? ['-f'] : []), '-L', bytes('lvresize size (bytes)', o.sizeBytes), lvRef(o.vg, o.name));
}

export interface LvExtendOptions extends LvRef {
  sizeBytes: number;
}

export function lvextendArgv(o: LvExtendOptions, scope?: LvmScope): string[] {
  return cmd('lvextend', scope, '-L', bytes('lvextend size (bytes)', o.sizeBytes), lvRef(o.vg, o.name));
}

// ---------------------------------------------------------------- reports

const REPORT = ['--reportformat', 'json', '--units', 'b', '--nosuffix'];
const num = z.string().regex(/^\d+$/, 'expected a decimal number').transform(Number);
const tags = z.string().transform((s) => (s === '' ? [] : s.split(',')));

function reportRows<S extends z.ZodType>(out: ToolOutput, key: 'pv' | 'vg' | 'lv', row: S): z.infer<S>[] {
  let json: unknown;
  try {
    json = JSON.parse(out.stdout);
  } catch {
    throw outputError(out, 'not JSON');
  }
  const schema = z.object({ report: z.array(z.object({ [key]: z.array(row) })) });
  const r = schema.safeParse(json);
  if (!r.success) throw outputError(out, r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return r.data.report.flatMap((section) => section[key] as z.infer<S>[]);
}

export interface PvRecord {
  pvName: string;
  /** '' for a PV that belongs to no VG. */
  vgName: string;
  pvUuid: string;
  pvSize: number;
  pvFree: number;
  /** Byte offset of the first extent on the PV. */
  peStart: number;
}

const PV_FIELDS = 'pv_name,vg_name,pv_uuid,pv_size,pv_free,pe_start';
const pvRow = z.object({ pv_name: z.string(), vg_name: z.string(), pv_uuid: z.string(), pv_size: num, pv_free: num, pe_start: num });

export function pvsArgv(o: { devices?: readonly string[] } = {}, scope?: LvmScope): string[] {
  return cmd('pvs', scope, ...REPORT, '-o', PV_FIELDS, ...(o.devices ?? []).map((d) => pathArg('pvs device', d)));
}

export function parsePvs(out: ToolOutput): PvRecord[] {
  return reportRows(out, 'pv', pvRow).map((r) => ({
    pvName: r.pv_name, vgName: r.vg_name, pvUuid: r.pv_uuid, pvSize: r.pv_size, pvFree: r.pv_free, peStart: r.pe_start,
  }));
}

export interface VgRecord {
  vgName: string;
  vgUuid: string;
  vgSize: number;
  vgFree: number;
  extentSize: number;
  /** Metadata sequence number: +1 per committed metadata change. */
  seqno: number;
  pvCount: number;
  lvCount: number;
  tags: string[];
}

const VG_FIELDS = 'vg_name,vg_uuid,vg_size,vg_free,vg_extent_size,vg_seqno,pv_count,lv_count,vg_tags';
const vgRow = z.object({
  vg_name: z.string(), vg_uuid: z.string(), vg_size: num, vg_free: num, vg_extent_size: num,
  vg_seqno: num, pv_count: num, lv_count: num, vg_tags: tags,
});

export function vgsArgv(o: { vg?: string } = {}, scope?: LvmScope): string[] {
  return cmd('vgs', scope, ...REPORT, '-o', VG_FIELDS, ...(o.vg !== undefined ? [vgName(o.vg)] : []));
}

export function parseVgs(out: ToolOutput): VgRecord[] {
  return reportRows(out, 'vg', vgRow).map((r) => ({
    vgName: r.vg_name, vgUuid: r.vg_uuid, vgSize: r.vg_size, vgFree: r.vg_free, extentSize: r.vg_extent_size,
    seqno: r.vg_seqno, pvCount: r.pv_count, lvCount: r.lv_count, tags: r.vg_tags,
  }));
}

/** lv_attr, decoded (lvs(8) "lv_attr bits"). */
export interface LvAttr {
  raw: string;
  /** Char 2 is `r` or `R`. */
  readOnly: boolean;
  /** Char 5 `a`; null when LVM cannot tell (`X`, e.g. without device-mapper). */
  active: boolean | null;
  /** Char 6 `o`; null when unknown. */
  open: boolean | null;
}

export function decodeLvAttr(raw: string): LvAttr {
  if (raw.length < 6) throw new TypeError(`lv_attr ${JSON.stringify(raw)} is shorter than 6 characters`);
  const tri = (c: string, yes: string) => (c === 'X' ? null : c === yes);
  return { raw, readOnly: raw[1] === 'r' || raw[1] === 'R', active: tri(raw[4]!, 'a'), open: tri(raw[5]!, 'o') };
}

export interface LvSegment {
  /** First logical extent of the segment. */
  startExtent: number;
  /** `PV:first-last` physical extent ranges, e.g. ['/dev/loop1:25-39']. */
  peRanges: string[];
}

export interface LvRecord {
  lvName: string;
  vgName: string;
  lvUuid: string;
  lvSize: number;
  attr: LvAttr;
  tags: string[];
  /** Only with `segments: true`, in logical order. */
  segments?: LvSegment[];
}

const LV_FIELDS = 'lv_name,vg_name,lv_uuid,lv_size,lv_attr,lv_tags';
const lvRow = z.object({
  lv_name: z.string(), vg_name: z.string(), lv_uuid: z.string(), lv_size: num, lv_attr: z.string(), lv_tags: tags,
  seg_start_pe: num.optional(), seg_pe_ranges: z.string().optional(),
});

export interface LvsOptions {
  /** Restrict to one VG, or to one LV of it (`vg` + `name`). */
  vg?: string;
  name?: string;
  /** Also report the segments (seg_start_pe, seg_pe_ranges). */
  segments?: boolean;
}

export function lvsArgv(o: LvsOptions = {}, scope?: LvmScope): string[] {
  if (o.name !== undefined && o.vg === undefined) throw new TypeError('lvs: name needs vg');
  const fields = o.segments ? `${LV_FIELDS},seg_start_pe,seg_pe_ranges` : LV_FIELDS;
  const target = o.vg === undefined ? [] : [o.name === undefined ? vgName(o.vg) : lvRef(o.vg, o.name)];
  return cmd('lvs', scope, ...REPORT, '-o', fields, ...target);
}

/** Rows (one per segment when segments were asked for) grouped into one record per LV. */
export function parseLvs(out: ToolOutput, o: { segments?: boolean } = {}): LvRecord[] {
  const byLv = new Map<string, LvRecord>();
  for (const r of reportRows(out, 'lv', lvRow)) {
    const key = r.lv_uuid;
    let lv = byLv.get(key);
    if (!lv) {
      lv = { lvName: r.lv_name, vgName: r.vg_name, lvUuid: r.lv_uuid, lvSize: r.lv_size, attr: decodeLvAttr(r.lv_attr), tags: r.lv_tags };
      if (o.segments) lv.segments = [];
      byLv.set(key, lv);
    }
    if (o.segments) {
      if (r.seg_start_pe === undefined || r.seg_pe_ranges === undefined) throw outputError(out, 'segment fields missing');
      lv.segments!.push({ startExtent: r.seg_start_pe, peRanges: r.seg_pe_ranges.split(/\s+/).filter(Boolean) });
    }
  }
  for (const lv of byLv.values()) lv.segments?.sort((a, b) => a.startExtent - b.startExtent);
  return [...byLv.values()];
}

// ---------------------------------------------------------------- runners

export async function pvs(o: { devices?: readonly string[] } = {}, scope?: LvmScope, run?: RunOptions): Promise<PvRecord[]> {
  return parsePvs(await runTool(pvsArgv(o, scope), run));
}
export async function vgs(o: { vg?: string } = {}, scope?: LvmScope, run?: RunOptions): Promise<VgRecord[]> {
  return parseVgs(await runTool(vgsArgv(o, scope), run));
}
export async function lvs(o: LvsOptions = {}, scope?: LvmScope, run?: RunOptions): Promise<LvRecord[]> {
  return parseLvs(await runTool(lvsArgv(o, scope), run), o);
}
export async function pvcreate(o: PvCreateOptions, scope?: LvmScope, run?: RunOptions): Promise<void> {
  await runTool(pvcreateArgv(o, scope), run);
}
export async function pvremove(o: PvRemoveOptions, scope?: LvmScope, run?: RunOptions): Promise<void> {
  await runTool(pvremoveArgv(o, scope), run);
}
export async function pvresize(o: { device: string }, scope?: LvmScope, run?: RunOptions): Promise<void> {
  await runTool(pvresizeArgv(o, scope), run);
}
export async function vgcreate(o: VgCreateOptions, scope?: LvmScope, run?: RunOptions): Promise<void> {
  await runTool(vgcreateArgv(o, scope), run);
}
export async function vgextend(o: VgExtendOptions, scope?: LvmScope, run?: RunOptions): Promise<void> {
  await runTool(vgextendArgv(o, scope), run);
}
export async function vgremove(o: VgRemoveOptions, scope?: LvmScope, run?: RunOptions): Promise<void> {
  await runTool(vgremoveArgv(o, scope), run);
}
export async function vgchange(o: VgChangeOptions, scope?: LvmScope, run?: RunOptions): Promise<void> {
  await runTool(vgchangeArgv(o, scope), run);
}
export async function lvcreate(o: LvCreateOptions, scope?: LvmScope, run?: RunOptions): Promise<void> {
  await runTool(lvcreateArgv(o, scope), run);
}
export async function lvremove(o: LvRef, scope?: LvmScope, run?: RunOptions): Promise<void> {
  await runTool(lvremoveArgv(o, scope), run);
}
export async function lvrename(o: LvRenameOptions, scope?: LvmScope, run?: RunOptions): Promise<void> {
  await runTool(lvrenameArgv(o, scope), run);
}
export async function lvchange(o: LvChangeOptions, scope?: LvmScope, run?: RunOptions): Promise<void> {
  await runTool(lvchangeArgv(o, scope), run);
}
export async function lvresize(o: LvResizeOptions, scope?: LvmScope, run?: RunOptions): Promise<void> {
  const argv = lvresizeArgv(o, scope);
  if (!o.allowShrink) {
    const [lv] = await lvs({ vg: o.vg, name: o.name }, scope, run);
    if (lv && o.sizeBytes < lv.lvSize) {
      throw new RangeError(`lvresize ${o.vg}/${o.name}: ${o.sizeBytes} bytes is smaller than the current ${lv.lvSize} bytes; pass allowShrink to shrink`);
    }
  }
  await runTool(argv, run);
}
export async function lvextend(o: LvExtendOptions, scope?: LvmScope, run?: RunOptions): Promise<void> {
  await runTool(lvextendArgv(o, scope), run);
}
