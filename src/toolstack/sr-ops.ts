// SR and PBD operations, following xapi's flows (Xapi_sr, Xapi_pbd, sm.ml).
import { randomUUID } from 'node:crypto';
import type { DbRecord } from './db/schema.js';
import { XenApiError } from './errors.js';
import type { Toolstack } from './toolstack.js';
import { existsSync, readdirSync } from 'node:fs';
import { journalDir } from './migrate/journal-dir.js';

export interface SrCreateArgs {
  type: string;
  nameLabel: string;
  nameDescription?: string;
  shared?: boolean;
  contentType?: string;
  deviceConfig: Record<string, string>;
  smConfig?: Record<string, string>;
  /** Sent as sr_create's only arg; xapi sends "0" unless physical-size is given. */
  physicalSize?: bigint;
}

/** The SR's post-attach scan (sm's after_master_attach); a failure is a message, not an error. */
async function scanAfterAttach(ts: Toolstack, sr: DbRecord): Promise<void> {
  try {
    await ts.db.transaction(async () => {
      // A savepoint so a failed scan's partial callbacks do not survive.
      ts.db.sql.exec('SAVEPOINT post_attach_scan');
      try {
        await ts.call(ts.plugin(String(sr['type'])), { command: 'sr_scan', ...ts.srCallPart(sr) });
        ts.db.sql.exec('RELEASE post_attach_scan');
      } catch (e) {
        ts.db.sql.exec('ROLLBACK TO post_attach_scan');
        ts.db.sql.exec('RELEASE post_attach_scan');
        throw e;
      }
    });
  } catch (e) {
    const body = `Post-attach scan of SR ${String(sr['uuid'])} failed: ${(e as Error).message}`;
    ts.message('POST_ATTACH_SCAN_FAILED', 3, 'SR', String(sr['uuid']), body);
    ts.warnings.push(body);
  }
}

/** sr-create: new SR + PBD records, sr_create [size], sr_attach, then a scan. Returns the SR. */
export async function srCreate(ts: Toolstack, a: SrCreateArgs): Promise<DbRecord> {
  const plugin = ts.plugin(a.type);
  const uuid = randomUUID();
  return ts.mutate(uuid, async () => {
    const sr = ts.db.create('SR', {
      uuid,
      name_label: a.nameLabel,
      name_description: a.nameDescription ?? '',
      type: a.type,
      content_type: a.contentType ?? '',
      shared: a.shared ?? false,
      sm_config: a.smConfig ?? {},
    });
    const pbd = ts.db.create('PBD', { host: ts.db.localHost().ref, SR: sr.ref, device_config: a.deviceConfig });
    await ts.call(plugin, { command: 'sr_create', args: [String(a.physicalSize ?? 0n)], ...ts.srCallPart(sr, pbd) });
    await ts.call(plugin, { command: 'sr_attach', ...ts.srCallPart(sr, pbd) });
    ts.db.set('PBD', pbd.ref, 'currently_attached', true);
    await scanAfterAttach(ts, sr);
    return ts.db.get('SR', sr.ref)!;
  });
}

/** sr-probe: returns the driver's XML text. No SR records are touched. */
export async function srProbe(
  ts: Toolstack,
  a: { type: string; deviceConfig: Record<string, string>; smConfig?: Record<string, string> },
): Promise<string> {
  const plugin = ts.plugin(a.type);
  const sm = await ts.db.transaction(() => ts.smFor(a.type));
  if (!ts.hasFeature(sm, 'SR_PROBE'))
    throw new XenApiError('SR_BACKEND_FAILURE', ['', `The ${a.type} SR driver does not support probe (no SR_PROBE capability)`, '']);
  const r = await ts.db.transaction(() =>
    ts.call(plugin, { command: 'sr_probe', deviceConfig: a.deviceConfig, srSmConfig: a.smConfig ?? {} }),
  );
  if (typeof r.value !== 'string')
    throw new XenApiError('SR_BACKEND_FAILURE', ['', 'sr_probe did not return a string', r.stderr]);
  return r.value;
}

export async function srScan(ts: Toolstack, srUuid: string): Promise<void> {
  const sr0 = ts.srByUuid(srUuid);
  // A copy an earlier smctl was killed in the middle of is undone first, so the
  // scan never shows its half-made destination (migrate/move.ts).
  const copies = journalDir(ts.lockDir);
  if (existsSync(copies) && readdirSync(copies).length > 0) await (await import('./migrate/move.js')).recoverInterruptedCopies(ts);
  await ts.mutate(srUuid, async () => {
    const sr = ts.db.get('SR', sr0.ref)!;
    const pbd = ts.requireAttached(sr);
    await ts.call(ts.plugin(String(sr['type'])), { command: 'sr_scan', ...ts.srCallPart(sr, pbd) });
  });
}

export async function srUpdate(ts: Toolstack, srUuid: string): Promise<void> {
  const sr0 = ts.srByUuid(srUuid);
  await ts.mutate(srUuid, async () => {
    const sr = ts.db.get('SR', sr0.ref)!;
    await ts.requireFeature(sr, 'SR_UPDATE');
    const pbd = ts.requireAttached(sr);
    await ts.call(ts.plugin(String(sr['type'])), { command: 'sr_update', ...ts.srCallPart(sr, pbd) });
  });
}

function srOfPbd(ts: Toolstack, pbd: DbRecord): DbRecord {
  const sr = ts.db.get('SR', String(pbd['SR']));
  if (!sr) throw new XenApiError('HANDLE_INVALID', ['SR', String(pbd['SR'])]);
  return sr;
}

/** pbd-plug: sr_attach, mark the PBD attached, then the post-attach scan. */
export async function pbdPlug(ts: Toolstack, pbdUuid: string): Promise<void> {
  const pbd0 = ts.pbdByUuid(pbdUuid);
  const sr0 = srOfPbd(ts, pbd0);
  await ts.mutate(String(sr0['uuid']), async () => {
    const pbd = ts.db.get('PBD', pbd0.ref)!;
    const sr = srOfPbd(ts, pbd);
    if (pbd['currently_attached']) return; // xapi: plugging a plugged PBD is a no-op
    await ts.call(ts.plugin(String(sr['type'])), { command: 'sr_attach', ...ts.srCallPart(sr, pbd) });
    ts.db.set('PBD', pbd.ref, 'currently_attached', true);
    await scanAfterAttach(ts, sr);
  });
}

/** pbd-unplug: refused while VDIs of the SR are attached here; sr_detach. */
export async function pbdUnplug(ts: Toolstack, pbdUuid: string): Promise<void> {
  const pbd0 = ts.pbdByUuid(pbdUuid);
  const sr0 = srOfPbd(ts, pbd0);
  await ts.mutate(String(sr0['uuid']), async () => {
    const pbd = ts.db.get('PBD', pbd0.ref)!;
    const sr = srOfPbd(ts, pbd);
    if (!pbd['currently_attached']) return;
    const inUse = ts.db.attachmentsOfSr(sr.ref);
    if (inUse.length > 0) {
      const uuids = inUse.map((ref) => String(ts.db.get('VDI', ref)?.['uuid'] ?? ref));
      throw new XenApiError('VDI_IN_USE', [inUse[0]!, 'unplug'], `cannot unplug: VDI(s) ${uuids.join(', ')} still attached (run vdi-detach)`);
    }
    await ts.call(ts.plugin(String(sr['type'])), { command: 'sr_detach', ...ts.srCallPart(sr, pbd) });
    ts.db.set('PBD', pbd.ref, 'currently_attached', false);
  });
}

function assertUnplugged(ts: Toolstack, sr: DbRecord): void {
  const plugged = ts.db.where('PBD', 'SR', sr.ref).filter((p) => p['currently_attached']);
  if (plugged.length > 0)
    throw new XenApiError(
      'SR_HAS_PBD',
      [sr.ref],
      `SR ${String(sr['uuid'])} is still attached; run pbd-unplug uuid=${String(plugged[0]!['uuid'])} first`,
    );
}

function forgetRecords(ts: Toolstack, sr: DbRecord): void {
  for (const v of ts.db.where('VDI', 'SR', sr.ref)) ts.db.destroy('VDI', v.ref);
  for (const p of ts.db.where('PBD', 'SR', sr.ref)) ts.db.destroy('PBD', p.ref);
  ts.db.destroy('SR', sr.ref);
}

/** sr-forget: database only; the SR must be unplugged (xapi's SR.forget). */
export async function srForget(ts: Toolstack, srUuid: string): Promise<void> {
  const sr0 = ts.srByUuid(srUuid);
  await ts.mutate(srUuid, async () => {
    const sr = ts.db.get('SR', sr0.ref)!;
    assertUnplugged(ts, sr);
    forgetRecords(ts, sr);
  });
}

/**
 * sr-destroy: as xe, the PBDs must be unplugged first; sr_delete goes to the
 * driver with the PBD's device-config (drivers attach internally if they need
 * to), then the SR, its PBDs and VDIs are forgotten.
 */
export async function srDestroy(ts: Toolstack, srUuid: string): Promise<void> {
  const sr0 = ts.srByUuid(srUuid);
  await ts.mutate(srUuid, async () => {
    const sr = ts.db.get('SR', sr0.ref)!;
    assertUnplugged(ts, sr);
    await ts.call(ts.plugin(String(sr['type'])), { command: 'sr_delete', ...ts.srCallPart(sr) });
    forgetRecords(ts, sr);
  });
}
