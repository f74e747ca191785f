// What each command returns (spec §1.5, §3.3) and its XML-RPC encoding.
import type { HandlerCommand } from './commands.js';
import type { XmlRpcValue } from './xmlrpc.js';

/** {uuid, location}: xapi finds the VDI by uuid (create/introduce) or by (SR, location) (snapshot/clone/resize). */
export interface VdiInfo {
  uuid: string;
  location: string;
}

/** The attach struct xapi's parse_attach_result reads; only params_nbd is required. */
export interface AttachResult {
  params_nbd: string;
  /** The block device or file path (XCP-ng 8.3 still sends it; upstream removed it). */
  params?: string;
  /** Default true. */
  o_direct?: boolean;
  /** LICENSE_RESTRICTION, SR_NOT_SUPPORTED, RO_WITH_NO_PARENT, SR_OVERRIDE or '' (default). */
  o_direct_reason?: string;
  xenstore_data?: Record<string, string>;
}

export interface ResultMap {
  sr_create: void;
  sr_delete: void;
  sr_attach: void;
  sr_detach: void;
  sr_scan: void;
  sr_update: void;
  /** The SR's content type, e.g. 'vhd'. */
  sr_content_type: string;
  /** An XML document describing what was found. */
  sr_probe: string;
  vdi_create: VdiInfo;
  vdi_introduce: VdiInfo;
  vdi_update: void;
  vdi_delete: void;
  vdi_attach: AttachResult;
  vdi_detach: void;
  vdi_activate: void;
  vdi_deactivate: void;
  vdi_snapshot: VdiInfo;
  vdi_clone: VdiInfo;
  vdi_resize: VdiInfo;
  vdi_resize_online: VdiInfo;
  /** An encoded XML-RPC methodCall for vdi_attach_from_config. */
  vdi_generate_config: string;
  vdi_attach_from_config: AttachResult;
  vdi_detach_from_config: void;
  vdi_compose: void;
  vdi_epoch_begin: void;
  vdi_epoch_end: void;
  vdi_enable_cbt: void;
  vdi_disable_cbt: void;
  vdi_data_destroy: void;
  /** Base64 bitmap of changed 64 KiB blocks. */
  vdi_list_changed_blocks: string;
}

type Shape = 'nil' | 'string' | 'vdi' | 'attach';

const SHAPES: Record<HandlerCommand, Shape> = {
  sr_create: 'nil',
  sr_delete: 'nil',
  sr_attach: 'nil',
  sr_detach: 'nil',
  sr_scan: 'nil',
  sr_update: 'nil',
  sr_content_type: 'string',
  sr_probe: 'string',
  vdi_create: 'vdi',
  vdi_introduce: 'vdi',
  vdi_update: 'nil',
  vdi_delete: 'nil',
  vdi_attach: 'attach',
  vdi_detach: 'nil',
  vdi_activate: 'nil',
  vdi_deactivate: 'nil',
  vdi_snapshot: 'vdi',
  vdi_clone: 'vdi',
  vdi_resize: 'vdi',
  vdi_resize_online: 'vdi',
  vdi_generate_config: 'string',
  vdi_attach_from_config: 'attach',
  vdi_detach_from_config: 'nil',
  vdi_compose: 'nil',
  vdi_epoch_begin: 'nil',
  vdi_epoch_end: 'nil',
  vdi_enable_cbt: 'nil',
  vdi_disable_cbt: 'nil',
  vdi_data_destroy: 'nil',
  vdi_list_changed_blocks: 'string',
};

/** A handler returned something the toolstack could not decode: a driver bug, reported as such. */
export class ResultShapeError extends Error {
  override name = 'ResultShapeError';
}

const isStringMap = (v: unknown): v is Record<string, string> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');

/** The XML-RPC value to send for `command`'s result; unit commands always send nil. */
export function resultValue(command: HandlerCommand, result: unknown): XmlRpcValue {
  const shape = SHAPES[command];
  const bad = (expected: string) =>
    new ResultShapeError(`driver bug: ${command} returned ${JSON.stringify(result) ?? String(result)}; expected ${expected}`);
  switch (shape) {
    case 'nil':
      return null;
    case 'string':
      if (typeof result !== 'string') throw bad('a string');
      return result;
    case 'vdi': {
      const r = result as Partial<VdiInfo> | null;
      if (typeof r?.uuid !== 'string' || typeof r.location !== 'string') throw bad('{uuid, location}');
      return { uuid: r.uuid, location: r.location };
    }
    case 'attach': {
      const r = result as Partial<AttachResult> | null;
      if (typeof r?.params_nbd !== 'string') throw bad('{params_nbd, ...}');
      if (r.xenstore_data !== undefined && !isStringMap(r.xenstore_data)) throw bad('xenstore_data as a string map');
      const out: Record<string, XmlRpcValue> = {};
      if (typeof r.params === 'string') out['params'] = r.params;
      out['params_nbd'] = r.params_nbd;
      out['o_direct'] = r.o_direct ?? true;
      out['o_direct_reason'] = r.o_direct_reason ?? '';
      out['xenstore_data'] = r.xenstore_data ?? {};
      return out;
    }
  }
}
