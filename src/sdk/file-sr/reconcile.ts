// sr_scan's reconciliation with the toolstack's database (spec §5.1, sm's
// ScanRecord): matched by location; on-disk-only VDIs are introduced (hidden
// leaves never: they are deleted VDIs awaiting GC; hidden parents as
// managed=false, read_only=true), DB-only records are forgotten, and changed
// ones updated. Only the sm-config keys the file SR owns are written; xapi's
// own keys (host_*, paused, activating, relinking, vhd-blocks, key_hash, ...)
// are left alone.
import { statfsSync } from 'node:fs';
import type { ImageFormat } from '../../driver-info.js';
import type { XenAPISession, XenRecord } from '../xenapi/session.js';
import { imageMetaSmConfig, syncImageMetaKeys, type ImageMetaReport } from '../image-meta/sm-config.js';
import type { Inventory } from './inventory.js';

/** sm-config keys this SR type writes and removes; every other key belongs to someone else. */
export const OWNED_SM_CONFIG_KEYS = ['image-format', 'vhd-parent'] as const;

export interface ReportedVdi {
  uuid: string;
  location: string;
  format: ImageFormat;
  virtualSize: number;
  physicalSize: number;
  hidden: boolean;
  readOnly: boolean;
  managed: boolean;
  /** Values of OWNED_SM_CONFIG_KEYS; a missing key is removed from the record. */
  smConfig: Record<string, string>;
  /** Machine data the driver read (sm_config image-meta/image-meta-from); undefined: not read, keys left alone. */
  imageMeta?: ImageMetaReport;
}

export function ownedSmConfig(format: ImageFormat, parent: string | null): Record<string, string> {
  return { 'image-format': format, ...(parent !== null ? { 'vhd-parent': parent } : {}) };
}

/** The VDIs a scan reports: every image except hidden leaves. */
export function reportedVdis(inv: Inventory): ReportedVdi[] {
  const out: ReportedVdi[] = [];
  for (const v of inv.vdis.values()) {
    if (v.hidden && v.children.length === 0) continue;
    out.push({
      uuid: v.uuid,
      location: v.uuid,
      format: v.format,
      virtualSize: v.virtualSize,
      physicalSize: v.physicalSize,
      hidden: v.hidden,
      readOnly: v.hidden || v.children.length > 0,
      managed: !v.hidden,
      smConfig: ownedSmConfig(v.format, v.parent),
    });
  }
  return out;
}

export interface SyncReport {
  introduced: string[];
  forgotten: string[];
  updated: string[];
}

const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));
const num = (v: unknown): number => Number(str(v) || '0');
const asMap = (v: unknown): Record<string, string> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, str(x)])) : {};

/** The record fields xapi's vdi_create request carries, as every driver introduces the new VDI with them. */
export function createdVdiFields(req: {
  name_label: string;
  name_description: string;
  vdi_type?: string;
  read_only: boolean;
  metadata_of_pool: string;
  is_a_snapshot: boolean;
  snapshot_time: string;
  snapshot_of: string;
  vdi_sm_config: Record<string, string>;
}) {
  return {
    name_label: req.name_label,
    name_description: req.name_description,
    type: req.vdi_type ?? 'user',
    read_only: req.read_only,
    metadata_of_pool: req.metadata_of_pool || 'OpaqueRef:NULL',
    is_a_snapshot: req.is_a_snapshot,
    snapshot_time: req.snapshot_time || '19700101T00:00:00Z',
    snapshot_of: req.snapshot_of || 'OpaqueRef:NULL',
    sm_config: req.vdi_sm_config,
  };
}

export async function introduceVdi(
  xapi: XenAPISession,
  srRef: string,
  r: ReportedVdi,
  extra: Partial<{ name_label: string; name_description: string; type: string; read_only: boolean; managed: boolean; metadata_of_pool: string; is_a_snapshot: boolean; snapshot_time: string; snapshot_of: string; sharable: boolean; other_config: Record<string, string>; sm_config: Record<string, string> }> = {},
): Promise<string> {
  return xapi.VDI.db_introduce({
    uuid: r.uuid,
    name_label: extra.name_label ?? (r.hidden ? 'base copy' : ''),
    name_description: extra.name_description ?? '',
    SR: srRef,
    type: extra.type ?? 'user',
    sharable: extra.sharable ?? false,
    read_only: extra.read_only ?? r.readOnly,
    other_config: extra.other_config ?? {},
    location: r.location,
    xenstore_data: {},
    sm_config: { ...(extra.sm_config ?? {}), ...r.smConfig, ...imageMetaSmConfig(r.imageMeta) },
    managed: extra.managed ?? r.managed,
    virtual_size: r.virtualSize,
    physical_utilisation: r.physicalSize,
    metadata_of_pool: extra.metadata_of_pool ?? 'OpaqueRef:NULL',
    is_a_snapshot: extra.is_a_snapshot ?? false,
    snapshot_time: extra.snapshot_time ?? '19700101T00:00:00Z',
    snapshot_of: extra.snapshot_of ?? 'OpaqueRef:NULL',
    cbt_enabled: false,
  });
}

/** Bring one existing record in line with what the files say; returns whether anything changed. */
export async function updateVdiRecord(xapi: XenAPISession, ref: string, rec: XenRecord, r: ReportedVdi): Promise<boolean> {
  let changed = false;
  if (num(rec['virtual_size']) !== r.virtualSize) {
    await xapi.VDI.set_virtual_size(ref, r.virtualSize);
    changed = true;
  }
  if (num(rec['physical_utilisation']) !== r.physicalSize) {
    await xapi.VDI.set_physical_utilisation(ref, r.physicalSize);
    changed = true;
  }
  if (Boolean(rec['read_only']) !== r.readOnly) {
    await xapi.VDI.set_read_only(ref, r.readOnly);
    changed = true;
  }
  if (r.hidden && Boolean(rec['managed'])) {
    await xapi.VDI.set_managed(ref, false);
    changed = true;
  }
  const sm = asMap(rec['sm_config']);
  for (const k of OWNED_SM_CONFIG_KEYS) {
    const want = r.smConfig[k];
    if (sm[k] === want) continue;
    if (sm[k] !== undefined) await xapi.VDI.remove_from_sm_config(ref, k);
    if (want !== undefined) await xapi.VDI.add_to_sm_config(ref, k, want);
    changed = true;
  }
  if (await syncImageMetaKeys(xapi, ref, sm, r.imageMeta)) changed = true;
  return changed;
}

export async function dbRecordsOfSr(xapi: XenAPISession, srRef: string): Promise<Record<string, XenRecord>> {
  return xapi.VDI.get_all_records_where(`field "SR" = "${srRef.replace(/["\\]/g, '\\$&')}"`);
}

/**
 * Calls in flight at once while reconciling. xapi serves concurrent calls of one
 * session; overlapping them hides the round trip, which dominates a scan that
 * introduces or forgets hundreds of records. Each record's own calls stay in order.
 */
const IN_FLIGHT = 8;

/** Runs `fn` on every item, at most `width` at a time; rethrows the first failure once all have settled. */
async function eachLimited<T>(items: readonly T[], width: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { e: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length && failure === undefined) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        failure ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  if (failure !== undefined) throw failure.e;
}

export async function synchronise(xapi: XenAPISession, srRef: string, reported: readonly ReportedVdi[]): Promise<SyncReport> {
  const db = await dbRecordsOfSr(xapi, srRef);
  const byLocation = new Map<string, [string, XenRecord]>();
  for (const [ref, rec] of Object.entries(db)) byLocation.set(str(rec['location']).toLowerCase(), [ref, rec]);
  const seen = new Set<string>(reported.map((r) => r.location));
  // Outcomes by position, so the report keeps the scan's order whatever order the calls finish in.
  const outcome: ('introduced' | 'updated' | 'same')[] = new Array<'same'>(reported.length).fill('same');
  await eachLimited(
    reported.map((r, i) => ({ r, i })),
    IN_FLIGHT,
    async ({ r, i }) => {
      const hit = byLocation.get(r.location);
      if (hit === undefined) {
        await introduceVdi(xapi, srRef, r);
        outcome[i] = 'introduced';
      } else if (await updateVdiRecord(xapi, hit[0], hit[1], r)) {
        outcome[i] = 'updated';
      }
    },
  );
  const report: SyncReport = {
    introduced: reported.filter((_, i) => outcome[i] === 'introduced').map((r) => r.uuid),
    forgotten: [],
    updated: reported.filter((_, i) => outcome[i] === 'updated').map((r) => r.uuid),
  };
  const gone = [...byLocation].filter(([loc]) => !seen.has(loc));
  const forgotten = new Set<string>();
  await eachLimited(gone, IN_FLIGHT, async ([loc, [ref]]) => {
    try {
      await xapi.VDI.db_forget(ref);
      forgotten.add(loc);
    } catch (e) {
      // xapi answers HANDLE_INVALID for a record already gone: sm ignores it too.
      if (!/HANDLE_INVALID|UUID_INVALID/.test((e as Error).message)) throw e;
    }
  });
  report.forgotten = gone.map(([loc]) => loc).filter((loc) => forgotten.has(loc));
  return report;
}

export interface SrStats {
  physicalSize: number;
  physicalUtilisation: number;
}

/** statvfs of the SR's file system, as FileSR: size = f_blocks*f_frsize, used = (f_blocks - f_bfree)*f_frsize. */
export function srStats(srDir: string): SrStats {
  const s = statfsSync(srDir);
  return { physicalSize: s.blocks * s.bsize, physicalUtilisation: (s.blocks - s.bfree) * s.bsize };
}

/** Sum of the virtual sizes of the VDIs users see (non-hidden). */
export function virtualAllocation(reported: readonly ReportedVdi[]): number {
  return reported.filter((r) => !r.hidden).reduce((a, r) => a + r.virtualSize, 0);
}

export async function writeSrStats(xapi: XenAPISession, srRef: string, srDir: string, allocation: number | null): Promise<void> {
  const s = srStats(srDir);
  await xapi.SR.set_physical_size(srRef, s.physicalSize);
  await xapi.SR.set_physical_utilisation(srRef, s.physicalUtilisation);
  if (allocation !== null) await xapi.SR.set_virtual_allocation(srRef, allocation);
}

/** SR.virtual_allocation += delta (create/delete/snapshot/resize), as FileSR does between scans. */
export async function adjustVirtualAllocation(xapi: XenAPISession, srRef: string, delta: number): Promise<void> {
  if (delta === 0) return;
  const rec = await xapi.SR.get_record(srRef);
  await xapi.SR.set_virtual_allocation(srRef, Math.max(0, num(rec['virtual_allocation']) + delta));
}
