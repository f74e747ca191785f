// The driver calls of a copy, made inside the caller's lock and transaction
// (vdi-ops.ts takes its own, which would nest): vdi_create with
// sm-config:image-format, attach/activate and where the data is, detach, delete.
import type { ImageFormat } from '../../driver-info.js';
import type { XmlRpcValue } from '../../sdk/protocol/xmlrpc.js';
import type { DbRecord } from '../db/schema.js';
import { IMAGE_FORMATS } from '../driver-info.js';
import { XenApiError } from '../errors.js';
import type { SmCall } from '../request.js';
import { AttachWire, firstIssue, VdiInfoWire } from '../responses.js';
import type { Toolstack } from '../toolstack.js';

/** The VDI part of a request for a VDI that may have no record (recovery). */
export interface VdiHandle {
  ref: string;
  uuid: string;
  location: string;
}

function vdiPart(v: VdiHandle): Pick<SmCall, 'vdi'> {
  return { vdi: { ref: v.ref, uuid: v.uuid, location: v.location, onBoot: 'persist', allowCaching: false } };
}

function srPart(ts: Toolstack, sr: DbRecord): Pick<SmCall, 'deviceConfig' | 'sr'> {
  return ts.srCallPart(sr, ts.requireAttached(sr));
}

export function handleOf(vdi: DbRecord): VdiHandle {
  return { ref: vdi.ref, uuid: String(vdi['uuid']), location: String(vdi['location']) };
}

/** vdi_create on `sr` with xapi's 8 args; `format` goes in sm-config:image-format. */
export async function createVdi(
  ts: Toolstack,
  sr: DbRecord,
  o: { virtualSize: number; nameLabel: string; nameDescription: string; type: string; format: ImageFormat | undefined; imageMeta?: string | undefined },
): Promise<DbRecord> {
  const args = [String(o.virtualSize), o.nameLabel, o.nameDescription, '', 'false', '19700101T00:00:00Z', '', 'false'];
  const r = await ts.call(ts.plugin(String(sr['type'])), {
    command: 'vdi_create',
    args,
    ...srPart(ts, sr),
    vdiType: o.type,
    vdiSmConfig: { ...(o.format ? { 'image-format': o.format } : {}), ...(o.imageMeta !== undefined ? { 'image-meta': o.imageMeta } : {}) },
  });
  const info = VdiInfoWire.safeParse(r.value);
  if (!info.success) throw new XenApiError('SR_BACKEND_FAILURE', [`vdi_create result: ${firstIssue(info.error)}`, JSON.stringify(r.value), r.stderr]);
  const vdi = ts.db.getByUuid('VDI', info.data.uuid);
  if (!vdi) throw new XenApiError('UUID_INVALID', ['VDI', info.data.uuid], `vdi_create returned VDI ${info.data.uuid} but the driver did not introduce it`);
  return vdi;
}

/** Where an attached VDI's data is, as the driver described it. */
export interface DataPath {
  path: string;
  format: ImageFormat;
}

function dataPathOf(v: XmlRpcValue, stderr: string, vdi: VdiHandle, smConfig: Record<string, string>): DataPath {
  const r = AttachWire.safeParse(v);
  if (!r.success) throw new XenApiError('SR_BACKEND_FAILURE', [`vdi_attach result: ${firstIssue(r.error)}`, JSON.stringify(v), stderr]);
  const xs = r.data.xenstore_data ?? {};
  // Our drivers describe the datapath (sm-datapath-*); otherwise params + the recorded image-format.
  const path = xs['sm-datapath-path'] ?? r.data.params;
  const format = xs['sm-datapath-format'] ?? smConfig['image-format'];
  if (!path || !format || !IMAGE_FORMATS.has(format))
    throw new XenApiError(
      'SR_BACKEND_FAILURE',
      ['vdi_attach', `VDI ${vdi.uuid}: the driver's attach result names no image path and format (sm-datapath-path/-format or params + sm-config:image-format); got path ${JSON.stringify(path)}, format ${JSON.stringify(format)}`],
    );
  return { path, format: format as ImageFormat };
}

/** vdi_attach then vdi_activate (when declared); undone if activate fails. */
export async function attachVdi(ts: Toolstack, sr: DbRecord, vdi: VdiHandle, writable: boolean, smConfig: Record<string, string> = {}): Promise<DataPath> {
  const plugin = ts.plugin(String(sr['type']));
  const sm = await ts.smFor(String(sr['type']));
  const w = writable ? 'true' : 'false';
  const r = await ts.call(plugin, { command: 'vdi_attach', args: [w], ...srPart(ts, sr), ...vdiPart(vdi) });
  const dp = dataPathOf(r.value, r.stderr, vdi, smConfig);
  if (ts.hasFeature(sm, 'VDI_ACTIVATE')) {
    try {
      await ts.call(plugin, { command: 'vdi_activate', args: [w], ...srPart(ts, sr), ...vdiPart(vdi) });
    } catch (e) {
      await ts.call(plugin, { command: 'vdi_detach', ...srPart(ts, sr), ...vdiPart(vdi) }).catch(() => undefined);
      throw e;
    }
  }
  return dp;
}

/** vdi_deactivate (when declared) then vdi_detach. */
export async function detachVdi(ts: Toolstack, sr: DbRecord, vdi: VdiHandle): Promise<void> {
  const plugin = ts.plugin(String(sr['type']));
  const sm = await ts.smFor(String(sr['type']));
  if (ts.hasFeature(sm, 'VDI_DEACTIVATE')) await ts.call(plugin, { command: 'vdi_deactivate', ...srPart(ts, sr), ...vdiPart(vdi) });
  await ts.call(plugin, { command: 'vdi_detach', ...srPart(ts, sr), ...vdiPart(vdi) });
}

/** vdi_delete; the record goes too. */
export async function deleteVdi(ts: Toolstack, sr: DbRecord, vdi: VdiHandle): Promise<void> {
  await ts.call(ts.plugin(String(sr['type'])), { command: 'vdi_delete', ...srPart(ts, sr), ...vdiPart(vdi) });
  if (vdi.ref !== '' && ts.db.get('VDI', vdi.ref)) ts.db.destroy('VDI', vdi.ref);
}

export async function scanSr(ts: Toolstack, sr: DbRecord): Promise<void> {
  await ts.call(ts.plugin(String(sr['type'])), { command: 'sr_scan', ...srPart(ts, sr) });
}
