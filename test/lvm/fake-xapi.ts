// A small in-memory stand-in for the toolstack's XenAPI, for tests that call
// the lvm handlers in-process (golden argv, xapi-made layouts): it keeps VDI
// records the way xapi would after the driver's callbacks.
import type { HandlerContext } from '../../src/sdk/driver.js';
import type { XenRecord } from '../../src/sdk/xenapi/session.js';
import type { Logger } from '../../src/sdk/log.js';

export interface FakeXapi {
  ctx: HandlerContext;
  vdis: Map<string, XenRecord>;
  sr: XenRecord;
  srRef: string;
}

export function fakeXapi(): FakeXapi {
  const vdis = new Map<string, XenRecord>();
  const sr: XenRecord = { name_label: 'fake', name_description: '', virtual_allocation: '0', sm_config: {} };
  let n = 0;
  const rec = (ref: string): XenRecord => {
    const r = vdis.get(ref);
    if (!r) throw new Error(`HANDLE_INVALID VDI ${ref}`);
    return r;
  };
  const set = (k: string) => async (ref: string, v: unknown) => void (rec(ref)[k] = v as XenRecord[string]);
  const xapi = {
    SR: {
      get_record: async () => sr,
      set_physical_size: async (_: string, v: number) => void (sr['physical_size'] = String(v)),
      set_physical_utilisation: async (_: string, v: number) => void (sr['physical_utilisation'] = String(v)),
      set_virtual_allocation: async (_: string, v: number) => void (sr['virtual_allocation'] = String(v)),
      add_to_sm_config: async (_: string, k: string, v: string) => void ((sr['sm_config'] as Record<string, string>)[k] = v),
    },
    VDI: {
      db_introduce: async (a: Record<string, unknown>) => {
        const ref = `OpaqueRef:vdi-${++n}`;
        vdis.set(ref, { ...(a as XenRecord), virtual_size: String(a['virtual_size']), physical_utilisation: String(a['physical_utilisation']) });
        return ref;
      },
      get_all_records_where: async () => Object.fromEntries(vdis),
      get_record: async (ref: string) => rec(ref),
      get_by_uuid: async (u: string) => {
        for (const [ref, r] of vdis) if (r['uuid'] === u) return ref;
        throw new Error('UUID_INVALID');
      },
      db_forget: async (ref: string) => {
        rec(ref);
        vdis.delete(ref);
      },
      set_virtual_size: async (ref: string, v: number) => void (rec(ref)['virtual_size'] = String(v)),
      set_physical_utilisation: async (ref: string, v: number) => void (rec(ref)['physical_utilisation'] = String(v)),
      set_read_only: set('read_only'),
      set_managed: set('managed'),
      add_to_sm_config: async (ref: string, k: string, v: string) => void ((rec(ref)['sm_config'] as Record<string, string>)[k] = v),
      remove_from_sm_config: async (ref: string, k: string) => void delete (rec(ref)['sm_config'] as Record<string, string>)[k],
    },
  };
  const quiet = () => undefined;
  const log = { info: quiet, error: quiet, warn: quiet, debug: quiet } as unknown as Logger;
  const ctx = { log, info: {} as HandlerContext['info'], xapi, lock: undefined } as unknown as HandlerContext;
  return { ctx, vdis, sr, srRef: 'OpaqueRef:sr-1' };
}

/** The record of the VDI with this uuid. */
export function byUuid(f: FakeXapi, uuid: string): [string, XenRecord] | undefined {
  for (const e of f.vdis) if (e[1]['uuid'] === uuid) return e;
  return undefined;
}
