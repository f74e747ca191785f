// A XenAPI session as drivers use it: the session_ref xapi passed in the
// request, and typed helpers for the calls sm's base classes make (spec §1.8).
import { env } from '../env.js';
import type { XmlRpcValue } from '../protocol/xmlrpc.js';
import { isStruct } from '../protocol/xmlrpc.js';
import { xenapiCall, XenAPIProtocolError, type XenAPIEndpoint } from './client.js';

export type Ref = string;
export type StringMap = Record<string, string>;
export type XenRecord = Record<string, XmlRpcValue>;

/** VDI.db_introduce's 19 positional arguments, by name. */
export interface VdiIntroduceArgs {
  uuid: string;
  name_label: string;
  name_description: string;
  SR: Ref;
  /** XenAPI vdi_type: user, system, suspend, ... */
  type: string;
  sharable: boolean;
  read_only: boolean;
  other_config: StringMap;
  location: string;
  xenstore_data: StringMap;
  sm_config: StringMap;
  managed: boolean;
  virtual_size: number | bigint;
  physical_utilisation: number | bigint;
  metadata_of_pool: Ref;
  is_a_snapshot: boolean;
  /** A Date, or xapi's wire form such as 19700101T00:00:00Z. */
  snapshot_time: Date | string;
  snapshot_of: Ref;
  cbt_enabled: boolean;
}

function int64(n: number | bigint): string {
  if (typeof n === 'number' && !Number.isSafeInteger(n)) throw new RangeError(`${n} is not an exact integer`);
  return String(n);
}

function toDate(t: Date | string): Date {
  if (t instanceof Date) return t;
  const m = /^(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):(\d{2}):(\d{2})/.exec(t);
  if (!m) return new Date(0);
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

function asString(method: string, v: XmlRpcValue): string {
  if (typeof v !== 'string') throw new XenAPIProtocolError(method, `expected a string result, got ${JSON.stringify(v)}`);
  return v;
}

function asRecord(method: string, v: XmlRpcValue): XenRecord {
  if (!isStruct(v)) throw new XenAPIProtocolError(method, 'expected a struct result');
  return v;
}

function asStringMap(method: string, v: XmlRpcValue): StringMap {
  const r = asRecord(method, v);
  return Object.fromEntries(Object.entries(r).map(([k, x]) => [k, String(x)]));
}

export class XenAPISession {
  readonly endpoint: XenAPIEndpoint;

  constructor(
    readonly sessionRef: string,
    endpoint?: Partial<XenAPIEndpoint>,
  ) {
    this.endpoint = { url: endpoint?.url ?? env.xapiUrl(), ...(endpoint?.subtaskOf ? { subtaskOf: endpoint.subtaskOf } : {}), ...(endpoint?.timeoutMs ? { timeoutMs: endpoint.timeoutMs } : {}) };
  }

  /** Any XenAPI method, e.g. call('VDI.get_uuid', ref); the session ref goes first. */
  call(method: string, ...args: XmlRpcValue[]): Promise<XmlRpcValue> {
    return xenapiCall(this.endpoint, method, [this.sessionRef, ...args]);
  }

  private async unit(method: string, ...args: XmlRpcValue[]): Promise<void> {
    await this.call(method, ...args);
  }

  readonly VDI = {
    db_introduce: async (a: VdiIntroduceArgs): Promise<Ref> =>
      asString(
        'VDI.db_introduce',
        await this.call(
          'VDI.db_introduce',
          a.uuid,
          a.name_label,
          a.name_description,
          a.SR,
          a.type,
          a.sharable,
          a.read_only,
          a.other_config,
          a.location,
          a.xenstore_data,
          a.sm_config,
          a.managed,
          int64(a.virtual_size),
          int64(a.physical_utilisation),
          a.metadata_of_pool,
          a.is_a_snapshot,
          toDate(a.snapshot_time),
          a.snapshot_of,
          a.cbt_enabled,
        ),
      ),
    db_forget: (vdi: Ref) => this.unit('VDI.db_forget', vdi),
    get_by_uuid: async (uuid: string): Promise<Ref> => asString('VDI.get_by_uuid', await this.call('VDI.get_by_uuid', uuid)),
    get_record: async (vdi: Ref): Promise<XenRecord> => asRecord('VDI.get_record', await this.call('VDI.get_record', vdi)),
    get_all_records_where: async (expr: string): Promise<Record<Ref, XenRecord>> => {
      const r = asRecord('VDI.get_all_records_where', await this.call('VDI.get_all_records_where', expr));
      // Checked in place: the answer for a large SR holds thousands of records, no need for a copy.
      for (const v of Object.values(r)) asRecord('VDI.get_all_records_where', v);
      return r as Record<Ref, XenRecord>;
    },
    set_virtual_size: (vdi: Ref, size: number | bigint) => this.unit('VDI.set_virtual_size', vdi, int64(size)),
    set_physical_utilisation: (vdi: Ref, bytes: number | bigint) => this.unit('VDI.set_physical_utilisation', vdi, int64(bytes)),
    set_read_only: (vdi: Ref, value: boolean) => this.unit('VDI.set_read_only', vdi, value),
    set_managed: (vdi: Ref, value: boolean) => this.unit('VDI.set_managed', vdi, value),
    set_sm_config: (vdi: Ref, config: StringMap) => this.unit('VDI.set_sm_config', vdi, config),
    add_to_sm_config: (vdi: Ref, key: string, value: string) => this.unit('VDI.add_to_sm_config', vdi, key, value),
    remove_from_sm_config: (vdi: Ref, key: string) => this.unit('VDI.remove_from_sm_config', vdi, key),
  };

  readonly SR = {
    get_record: async (sr: Ref): Promise<XenRecord> => asRecord('SR.get_record', await this.call('SR.get_record', sr)),
    set_physical_size: (sr: Ref, bytes: number | bigint) => this.unit('SR.set_physical_size', sr, int64(bytes)),
    set_physical_utilisation: (sr: Ref, bytes: number | bigint) => this.unit('SR.set_physical_utilisation', sr, int64(bytes)),
    set_virtual_allocation: (sr: Ref, bytes: number | bigint) => this.unit('SR.set_virtual_allocation', sr, int64(bytes)),
    get_sm_config: async (sr: Ref): Promise<StringMap> => asStringMap('SR.get_sm_config', await this.call('SR.get_sm_config', sr)),
    add_to_sm_config: (sr: Ref, key: string, value: string) => this.unit('SR.add_to_sm_config', sr, key, value),
  };
}
