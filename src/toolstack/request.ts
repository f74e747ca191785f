// The request struct xapi sends a plug-in (sm_exec.ml make_call / xmlrpc_of_call):
// same members, same order, args as strings, device_config with SRmaster.
import type { XmlRpcValue } from '../sdk/protocol/xmlrpc.js';

export interface SmCall {
  command: string;
  args?: string[];
  hostRef: string;
  /** PBD device-config; SRmaster is added. Absent for sr_get_driver_info ({}). */
  deviceConfig?: Record<string, string>;
  /** Absent only for sr_get_driver_info. */
  sessionRef?: string;
  /** sr_probe only. */
  srSmConfig?: Record<string, string>;
  sr?: { ref: string; uuid: string };
  /** vdi_create only. */
  vdiType?: string;
  vdi?: { ref: string; location: string; uuid: string; onBoot: string; allowCaching: boolean };
  /** vdi_introduce passes the location without a VDI ref. */
  vdiLocation?: string;
  /** vdi_create only, when the caller picks the uuid. */
  vdiUuid?: string;
  /** vdi_snapshot / vdi_clone. */
  driverParams?: Record<string, string>;
  /** vdi_create / vdi_introduce. */
  vdiSmConfig?: Record<string, string>;
  /** vdi_introduce. */
  newUuid?: string;
  /** This toolstack is always the pool master. */
  srMaster?: boolean;
}

/** The single struct parameter, members in xapi's emission order. */
export function buildRequest(c: SmCall): Record<string, XmlRpcValue> {
  const r: Record<string, XmlRpcValue> = {};
  r['host_ref'] = c.hostRef;
  r['command'] = c.command;
  r['args'] = [...(c.args ?? [])];
  r['device_config'] =
    c.command === 'sr_get_driver_info'
      ? {}
      : // sm.ml prepends SRmaster to the PBD's device-config.
        { SRmaster: c.srMaster === false ? 'false' : 'true', ...withoutSrMaster(c.deviceConfig ?? {}) };
  if (c.sessionRef !== undefined) r['session_ref'] = c.sessionRef;
  if (c.srSmConfig !== undefined) r['sr_sm_config'] = { ...c.srSmConfig };
  if (c.sr) r['sr_ref'] = c.sr.ref;
  if (c.vdiType !== undefined) r['vdi_type'] = c.vdiType;
  if (c.sr) r['sr_uuid'] = c.sr.uuid;
  if (c.vdi) {
    r['vdi_ref'] = c.vdi.ref;
    r['vdi_location'] = c.vdi.location;
    r['vdi_uuid'] = c.vdi.uuid;
  } else {
    if (c.vdiLocation !== undefined) r['vdi_location'] = c.vdiLocation;
    if (c.vdiUuid !== undefined) r['vdi_uuid'] = c.vdiUuid;
  }
  if (c.driverParams !== undefined) r['driver_params'] = { ...c.driverParams };
  if (c.vdiSmConfig !== undefined) r['vdi_sm_config'] = { ...c.vdiSmConfig };
  if (c.newUuid !== undefined) r['new_uuid'] = c.newUuid;
  if (c.vdi) {
    r['vdi_on_boot'] = c.vdi.onBoot;
    r['vdi_allow_caching'] = c.vdi.allowCaching ? 'true' : 'false';
  }
  return r;
}

function withoutSrMaster(dc: Record<string, string>): Record<string, string> {
  const { SRmaster: _ignored, ...rest } = dc;
  return rest;
}
