// The toolstack's real XenAPI endpoint and state database, in-process, for
// tests that call the lvm handlers directly (golden argv, xapi-made layouts):
// the driver's callbacks land in the same records smctl would keep.
import type { HandlerContext } from '../../src/sdk/driver.js';
import type { Logger } from '../../src/sdk/log.js';
import { XenAPISession, type XenRecord } from '../../src/sdk/xenapi/index.js';
import { VDI } from '../../src/toolstack/db/schema.js';
import { StateDb } from '../../src/toolstack/db/state-db.js';
import { XenApiEndpoint } from '../../src/toolstack/xenapi/endpoint.js';
import { recordToWire } from '../../src/toolstack/xenapi/marshal.js';

export interface TestXapi {
  ctx: HandlerContext;
  srRef: string;
  /** The SR's VDI records by ref, as XenAPI returns them (int64 fields as strings). */
  vdis(): Map<string, XenRecord>;
  close(): Promise<void>;
}

export async function startXapi(): Promise<TestXapi> {
  const db = StateDb.open(':memory:');
  const srRef = db.create('SR', { name_label: 'lvm test SR', type: 'lvm' }).ref;
  const endpoint = await XenApiEndpoint.start(db);
  const xapi = new XenAPISession(endpoint.newSession(), { url: endpoint.url });
  const quiet = () => undefined;
  const log = { info: quiet, error: quiet, warn: quiet, debug: quiet } as unknown as Logger;
  const ctx = { log, info: {} as HandlerContext['info'], xapi, lock: undefined } as unknown as HandlerContext;
  return {
    ctx,
    srRef,
    vdis: () => new Map(db.where('VDI', 'SR', srRef).map((r) => [r.ref, recordToWire(VDI, r) as XenRecord])),
    close: async () => {
      await endpoint.close();
      db.close();
    },
  };
}

/** The record of the VDI with this uuid. */
export function byUuid(x: TestXapi, uuid: string): [string, XenRecord] | undefined {
  for (const e of x.vdis()) if (e[1]['uuid'] === uuid) return e;
  return undefined;
}
