// VDI operations, following xapi's flows (Xapi_vdi, storage_smapiv1.ml, sm.ml):
// the driver writes the VDI records through the XenAPI endpoint; the toolstack
// reads them back by uuid (create/introduce) or by (SR, location) (snapshot,
// clone, resize) and then sets what xapi sets itself.
import { randomUUID } from 'node:crypto';
import type { XmlRpcValue } from '../sdk/protocol/xmlrpc.js';
import { type DbRecord, NULL_REF } from './db/schema.js';
import { XenApiError } from './errors.js';
import { AttachWire, firstIssue, VdiInfoWire } from './responses.js';
import type { Toolstack } from './toolstack.js';
import { datetimeFromDate } from './xenapi/marshal.js';

/** XenAPI vdi_type enum values (Storage_utils.string_of_vdi_type). */
export const VDI_TYPES = [
  'user', 'system', 'ephemeral', 'suspend', 'crashdump', 'ha_statefile', 'metadata', 'redo_log', 'rrd',
  'pvs_cache', 'cbt_metadata',
] as const;

/** A create/snapshot/clone/resize/introduce result: {uuid, location}. */
function vdiInfo(command: string, v: XmlRpcValue, stderr: string): { uuid: string; location: string } {
  const r = VdiInfoWire.safeParse(v);
  if (!r.success)
    throw new XenApiError('SR_BACKEND_FAILURE', [`${command} result: ${firstIssue(r.error)}`, JSON.stringify(v), stderr]);
  return r.data;
}

function readBackByUuid(ts: Toolstack, command: string, uuid: string): DbRecord {
  const vdi = ts.db.getByUuid('VDI', uuid);
  if (!vdi)
    throw new XenApiError('UUID_INVALID', ['VDI', uuid], `${command} returned VDI ${uuid} but the driver did not introduce it (VDI.db_introduce)`);
  return vdi;
}

/** storage_utils.ml find_vdi: the VDI of this SR with this location. */
function readBackByLocation(ts: Toolstack, command: string, sr: DbRecord, location: string): DbRecord {
  const hits = ts.db.where('VDI', 'SR', sr.ref).filter((v) => v['location'] === location);
  if (hits.length === 0)
    throw new XenApiError('VDI_LOCATION_MISSING', [sr.ref, location], `${command} returned location ${location} but no VDI of SR ${String(sr['uuid'])} has it`);
  if (hits.length > 1) throw new XenApiError('LOCATION_NOT_UNIQUE', [sr.ref, location]);
  return hits[0]!;
}

function srOfVdi(ts: Toolstack, vdi: DbRecord): DbRecord {
  const sr = ts.db.get('SR', String(vdi['SR']));
  if (!sr) throw new XenApiError('HANDLE_INVALID', ['SR', String(vdi['SR'])]);
  return sr;
}

/** Locks the VDI's SR, re-reads both inside the transaction, and runs `fn`. */
async function onVdi<T>(ts: Toolstack, vdiUuid: string, fn: (vdi: DbRecord, sr: DbRecord) => Promise<T>): Promise<T> {
  const vdi0 = ts.vdiByUuid(vdiUuid);
  const sr0 = srOfVdi(ts, vdi0);
  return ts.mutate(String(sr0['uuid']), async () => {
    const vdi = ts.vdiByUuid(vdiUuid);
    return fn(vdi, srOfVdi(ts, vdi));
  });
}

export interface VdiCreateArgs {
  srUuid: string;
  nameLabel: string;
  nameDescription?: string;
  virtualSize: bigint;
  type?: string;
  smConfig?: Record<string, string>;
  readOnly?: boolean;
  sharable?: boolean;
  otherConfig?: Record<string, string>;
}

/** vdi-create: vdi_create with xapi's 8 args, then the VDI read back by the returned uuid. */
export async function vdiCreate(ts: Toolstack, a: VdiCreateArgs): Promise<DbRecord> {
  const sr0 = ts.srByUuid(a.srUuid);
  return ts.mutate(a.srUuid, async () => {
    const sr = ts.db.get('SR', sr0.ref)!;
    await ts.requireFeature(sr, 'VDI_CREATE');
    const pbd = ts.requireAttached(sr);
    const args = [
      String(a.virtualSize),
      a.nameLabel,
      a.nameDescription ?? '',
      '', // metadata_of_pool
      'false', // is_a_snapshot
      '19700101T00:00:00Z', // snapshot_time
      '', // snapshot_of
      a.readOnly ? 'true' : 'false',
    ];
    const r = await ts.call(ts.plugin(String(sr['type'])), {
      command: 'vdi_create',
      args,
      ...ts.srCallPart(sr, pbd),
      vdiType: a.type ?? 'user',
      vdiSmConfig: a.smConfig ?? {},
    });
    const info = vdiInfo('vdi_create', r.value, r.stderr);
    const vdi = readBackByUuid(ts, 'vdi_create', info.uuid);
    if (a.sharable !== undefined) ts.db.set('VDI', vdi.ref, 'sharable', a.sharable);
    if (a.otherConfig) ts.db.set('VDI', vdi.ref, 'other_config', { ...(vdi['other_config'] as object), ...a.otherConfig });
    return ts.db.get('VDI', vdi.ref)!;
  });
}

async function snapshotOrClone(
  ts: Toolstack,
  command: 'vdi_snapshot' | 'vdi_clone',
  uuid: string,
  o: { driverParams?: Record<string, string>; newNameLabel?: string; newNameDescription?: string },
): Promise<DbRecord> {
  return onVdi(ts, uuid, async (src, sr) => {
    const sm = await ts.requireFeature(sr, command === 'vdi_snapshot' ? 'VDI_SNAPSHOT' : 'VDI_CLONE');
    const pbd = ts.requireAttached(sr);
    const plugin = ts.plugin(String(sr['type']));
    const r = await ts.call(plugin, {
      command,
      ...ts.srCallPart(sr, pbd),
      ...ts.vdiCallPart(src),
      driverParams: o.driverParams ?? {},
    });
    const info = vdiInfo(command, r.value, r.stderr);
    const made = readBackByLocation(ts, command, sr, info.location);
    // What xapi sets itself once the backend returns (storage_smapiv1.ml snapshot_and_clone, xapi_vdi.ml).
    const snapshot = command === 'vdi_snapshot';
    ts.db.set('VDI', made.ref, 'name_label', o.newNameLabel ?? src['name_label']);
    ts.db.set('VDI', made.ref, 'name_description', o.newNameDescription ?? src['name_description']);
    ts.db.set('VDI', made.ref, 'is_a_snapshot', snapshot);
    ts.db.set('VDI', made.ref, 'snapshot_of', snapshot ? src.ref : NULL_REF);
    ts.db.set('VDI', made.ref, 'snapshot_time', datetimeFromDate(new Date()));
    if (snapshot) ts.db.set('VDI', made.ref, 'cbt_enabled', Boolean(src['cbt_enabled'])); // xapi_vdi.ml: inherited
    const srcSm = src['sm_config'] as Record<string, string>;
    if (srcSm['base_mirror'] !== undefined) {
      const madeSm = { ...(ts.db.get('VDI', made.ref)!['sm_config'] as Record<string, string>), base_mirror: srcSm['base_mirror'] };
      ts.db.set('VDI', made.ref, 'sm_config', madeSm);
    }
    if (ts.hasFeature(sm, 'VDI_UPDATE')) {
      const fresh = ts.db.get('VDI', made.ref)!;
      await ts.call(plugin, { command: 'vdi_update', ...ts.srCallPart(sr, pbd), ...ts.vdiCallPart(fresh) });
    }
    return ts.db.get('VDI', made.ref)!;
  });
}

export function vdiSnapshot(ts: Toolstack, uuid: string, driverParams: Record<string, string> = {}): Promise<DbRecord> {
  return snapshotOrClone(ts, 'vdi_snapshot', uuid, { driverParams });
}

export function vdiClone(
  ts: Toolstack,
  uuid: string,
  o: { driverParams?: Record<string, string>; newNameLabel?: string; newNameDescription?: string } = {},
): Promise<DbRecord> {
  return snapshotOrClone(ts, 'vdi_clone', uuid, o);
}

/** vdi-resize: vdi_resize [new size]; the VDI is read back by location. */
export async function vdiResize(ts: Toolstack, uuid: string, size: bigint): Promise<DbRecord> {
  return onVdi(ts, uuid, async (vdi, sr) => {
    await ts.requireFeature(sr, 'VDI_RESIZE');
    const pbd = ts.requireAttached(sr);
    const r = await ts.call(ts.plugin(String(sr['type'])), {
      command: 'vdi_resize',
      args: [String(size)],
      ...ts.srCallPart(sr, pbd),
      ...ts.vdiCallPart(vdi),
    });
    const info = vdiInfo('vdi_resize', r.value, r.stderr);
    return readBackByLocation(ts, 'vdi_resize', sr, info.location);
  });
}

function assertNotAttached(ts: Toolstack, vdi: DbRecord, op: string): void {
  if (ts.db.attachment(vdi.ref))
    throw new XenApiError('VDI_IN_USE', [vdi.ref, op], `VDI ${String(vdi['uuid'])} is attached on this host (run vdi-detach first)`);
}

/** vdi-destroy: refused while attached or unmanaged; vdi_delete; the record is gone afterwards. */
export async function vdiDestroy(ts: Toolstack, uuid: string): Promise<void> {
  await onVdi(ts, uuid, async (vdi, sr) => {
    assertNotAttached(ts, vdi, 'destroy');
    if (!vdi['managed']) throw new XenApiError('VDI_NOT_MANAGED', [vdi.ref]);
    await ts.requireFeature(sr, 'VDI_DELETE');
    const pbd = ts.requireAttached(sr);
    await ts.call(ts.plugin(String(sr['type'])), { command: 'vdi_delete', ...ts.srCallPart(sr, pbd), ...ts.vdiCallPart(vdi) });
    if (ts.db.get('VDI', vdi.ref)) ts.db.destroy('VDI', vdi.ref);
  });
}

/** vdi-forget: database only, as xapi's VDI.forget. */
export async function vdiForget(ts: Toolstack, uuid: string): Promise<void> {
  await onVdi(ts, uuid, async (vdi) => {
    assertNotAttached(ts, vdi, 'forget');
    ts.db.destroy('VDI', vdi.ref);
  });
}

export interface VdiIntroduceArgs {
  srUuid: string;
  uuid?: string;
  location: string;
  smConfig?: Record<string, string>;
  nameLabel?: string;
  nameDescription?: string;
  type?: string;
  sharable?: boolean;
  readOnly?: boolean;
}

/** vdi-introduce: vdi_introduce with new_uuid/vdi_location/vdi_sm_config; read back by uuid. */
export async function vdiIntroduce(ts: Toolstack, a: VdiIntroduceArgs): Promise<DbRecord> {
  const sr0 = ts.srByUuid(a.srUuid);
  const newUuid = a.uuid ?? randomUUID();
  if (ts.db.getByUuid('VDI', newUuid))
    throw new XenApiError('DB_UNIQUENESS_CONSTRAINT_VIOLATION', ['VDI', 'uuid', newUuid], `a VDI with uuid ${newUuid} already exists`);
  return ts.mutate(a.srUuid, async () => {
    const sr = ts.db.get('SR', sr0.ref)!;
    await ts.requireFeature(sr, 'VDI_INTRODUCE');
    const pbd = ts.requireAttached(sr);
    const r = await ts.call(ts.plugin(String(sr['type'])), {
      command: 'vdi_introduce',
      ...ts.srCallPart(sr, pbd),
      vdiLocation: a.location,
      vdiSmConfig: a.smConfig ?? {},
      newUuid,
    });
    const info = vdiInfo('vdi_introduce', r.value, r.stderr);
    const vdi = readBackByUuid(ts, 'vdi_introduce', info.uuid);
    if (a.nameLabel !== undefined) ts.db.set('VDI', vdi.ref, 'name_label', a.nameLabel);
    if (a.nameDescription !== undefined) ts.db.set('VDI', vdi.ref, 'name_description', a.nameDescription);
    if (a.type !== undefined) ts.db.set('VDI', vdi.ref, 'type', a.type);
    if (a.sharable !== undefined) ts.db.set('VDI', vdi.ref, 'sharable', a.sharable);
    if (a.readOnly !== undefined) ts.db.set('VDI', vdi.ref, 'read_only', a.readOnly);
    return ts.db.get('VDI', vdi.ref)!;
  });
}

export async function vdiUpdate(ts: Toolstack, uuid: string): Promise<void> {
  await onVdi(ts, uuid, async (vdi, sr) => {
    await ts.requireFeature(sr, 'VDI_UPDATE');
    const pbd = ts.requireAttached(sr);
    await ts.call(ts.plugin(String(sr['type'])), { command: 'vdi_update', ...ts.srCallPart(sr, pbd), ...ts.vdiCallPart(vdi) });
  });
}

/** The attach result as xapi decodes it (sm_exec.ml parse_attach_result). */
export interface AttachResult {
  params?: string;
  params_nbd: string;
  o_direct: boolean;
  o_direct_reason: string;
  xenstore_data: Record<string, string>;
}

function parseAttach(v: XmlRpcValue, stderr: string): AttachResult {
  const r = AttachWire.safeParse(v);
  if (!r.success) throw new XenApiError('SR_BACKEND_FAILURE', [`vdi_attach result: ${firstIssue(r.error)}`, JSON.stringify(v), stderr]);
  const a = r.data;
  return {
    ...(a.params !== undefined ? { params: a.params } : {}),
    params_nbd: a.params_nbd,
    o_direct: a.o_direct === undefined ? true : a.o_direct === true || a.o_direct === 'true',
    o_direct_reason: a.o_direct_reason ?? '',
    xenstore_data: a.xenstore_data ?? {},
  };
}

/** vdi-attach: vdi_attach then vdi_activate (if declared), recorded as a local attachment. */
export async function vdiAttach(ts: Toolstack, uuid: string, mode: 'RW' | 'RO' = 'RW'): Promise<AttachResult> {
  return onVdi(ts, uuid, async (vdi, sr) => {
    if (ts.db.attachment(vdi.ref)) throw new XenApiError('DEVICE_ALREADY_ATTACHED', [vdi.ref], `VDI ${uuid} is already attached on this host`);
    if (mode === 'RW' && vdi['read_only']) throw new XenApiError('VDI_READONLY', [vdi.ref], `VDI ${uuid} is read-only; attach it with mode=RO`);
    const sm = await ts.smFor(String(sr['type']));
    const pbd = ts.requireAttached(sr);
    const plugin = ts.plugin(String(sr['type']));
    const writable = mode === 'RW' ? 'true' : 'false';
    const r = await ts.call(plugin, { command: 'vdi_attach', args: [writable], ...ts.srCallPart(sr, pbd), ...ts.vdiCallPart(vdi) });
    const result = parseAttach(r.value, r.stderr);
    if (ts.hasFeature(sm, 'VDI_ACTIVATE')) {
      try {
        await ts.call(plugin, {
          command: 'vdi_activate',
          args: [writable],
          ...ts.srCallPart(sr, pbd),
          ...ts.vdiCallPart(ts.db.get('VDI', vdi.ref) ?? vdi),
        });
      } catch (e) {
        // Undo the attach so the driver is not left holding it.
        await ts.call(plugin, { command: 'vdi_detach', ...ts.srCallPart(sr, pbd), ...ts.vdiCallPart(vdi) }).catch(() => undefined);
        throw e;
      }
    }
    ts.db.addAttachment(vdi.ref, sr.ref, ts.db.localHost().ref, mode, result);
    return result;
  });
}

/** vdi-detach: vdi_deactivate (if declared) then vdi_detach; drops the local attachment. */
export async function vdiDetach(ts: Toolstack, uuid: string): Promise<void> {
  await onVdi(ts, uuid, async (vdi, sr) => {
    if (!ts.db.attachment(vdi.ref)) throw new XenApiError('DEVICE_NOT_ATTACHED', [vdi.ref], `VDI ${uuid} is not attached on this host`);
    const sm = await ts.smFor(String(sr['type']));
    const pbd = ts.requireAttached(sr);
    const plugin = ts.plugin(String(sr['type']));
    if (ts.hasFeature(sm, 'VDI_DEACTIVATE'))
      await ts.call(plugin, { command: 'vdi_deactivate', ...ts.srCallPart(sr, pbd), ...ts.vdiCallPart(vdi) });
    await ts.call(plugin, { command: 'vdi_detach', ...ts.srCallPart(sr, pbd), ...ts.vdiCallPart(ts.db.get('VDI', vdi.ref) ?? vdi) });
    ts.db.removeAttachment(vdi.ref);
  });
}
