// sr_scan's reconciliation against the toolstack's real XenAPI endpoint and
// database: many records at once (the calls overlap), the report in scan order,
// the DB holding exactly what the files say, and listings with derived fields.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { synchronise, type ReportedVdi } from '../../src/sdk/file-sr/reconcile.js';
import { XenAPISession } from '../../src/sdk/xenapi/index.js';
import { StateDb } from '../../src/toolstack/db/state-db.js';
import { XenApiEndpoint } from '../../src/toolstack/xenapi/endpoint.js';

function vdi(i: number, over: Partial<ReportedVdi> = {}): ReportedVdi {
  const uuid = randomUUID();
  return {
    uuid,
    location: uuid,
    format: i % 2 ? 'qcow2' : 'vhd',
    virtualSize: (i + 1) * 2 * 1024 * 1024,
    physicalSize: 4096 * (i + 1),
    hidden: false,
    readOnly: false,
    managed: true,
    smConfig: { 'image-format': i % 2 ? 'qcow2' : 'vhd' },
    ...over,
  };
}

describe('synchronise against the XenAPI endpoint', () => {
  let db: StateDb;
  let endpoint: XenApiEndpoint;
  let xapi: XenAPISession;
  let srRef: string;

  beforeEach(async () => {
    db = StateDb.open(':memory:');
    srRef = db.create('SR', { name_label: 'sr', type: 'file' }).ref;
    endpoint = await XenApiEndpoint.start(db);
    xapi = new XenAPISession(endpoint.newSession(), { url: endpoint.url });
  });
  afterEach(async () => {
    await endpoint.close();
    db.close();
  });

  const inDb = () =>
    new Map(
      db
        .where('VDI', 'SR', srRef)
        .map((r) => [String(r['location']), { size: Number(r['virtual_size']), sm: r['sm_config'] as Record<string, string>, ro: r['read_only'] }]),
    );

  it('introduces, updates and forgets many records; the report keeps the scan order', async () => {
    const first = Array.from({ length: 60 }, (_, i) => vdi(i));
    const r1 = await synchronise(xapi, srRef, first);
    expect(r1.introduced).toEqual(first.map((v) => v.uuid));
    expect(r1.updated).toEqual([]);
    expect(r1.forgotten).toEqual([]);
    expect(inDb().size).toBe(60);
    for (const v of first) expect(inDb().get(v.location)).toEqual({ size: v.virtualSize, sm: v.smConfig, ro: false });

    // the same files again: nothing to do, and not one write call
    const before = endpoint.calls.length;
    const r2 = await synchronise(xapi, srRef, first);
    expect(r2).toEqual({ introduced: [], updated: [], forgotten: [] });
    expect(endpoint.calls.slice(before).map((c) => c.method)).toEqual(['VDI.get_all_records_where']);

    // 10 files gone, 5 grown, 1 become a read-only parent with vhd-parent, 3 new
    const grown = new Set([3, 17, 29, 41, 58]);
    const next = first.slice(10).map((v, k) =>
      grown.has(k + 10)
        ? { ...v, virtualSize: v.virtualSize * 2 }
        : k === 0
          ? { ...v, readOnly: true, smConfig: { ...v.smConfig, 'vhd-parent': first[11]!.uuid } }
          : v,
    );
    const added = [vdi(100), vdi(101), vdi(102)];
    const r3 = await synchronise(xapi, srRef, [...next, ...added]);
    expect(r3.introduced).toEqual(added.map((v) => v.uuid));
    expect(r3.updated).toEqual([first[10]!.uuid, ...[17, 29, 41, 58].map((i) => first[i]!.uuid)]);
    // forgotten in the database's order (creation order, which overlapping introduces do not fix)
    expect([...r3.forgotten].sort()).toEqual(first.slice(0, 10).map((v) => v.location).sort());
    const rows = inDb();
    expect(rows.size).toBe(53);
    for (const v of [...next, ...added]) expect(rows.get(v.location)).toEqual({ size: v.virtualSize, sm: v.smConfig, ro: v.readOnly });
  });

  it('a failed call fails the reconciliation', async () => {
    const dup = vdi(1);
    db.create('VDI', { uuid: dup.uuid, SR: srRef, location: 'elsewhere' }); // same uuid, other location
    const batch = [vdi(0), dup, vdi(2), vdi(3)];
    await expect(synchronise(xapi, srRef, batch)).rejects.toThrow(/DB_UNIQUENESS_CONSTRAINT_VIOLATION/);
  });

  it('VDI.get_all_records_where lists 1000 records, each with its snapshots', async () => {
    const base = db.create('VDI', { SR: srRef, location: 'base' });
    for (let i = 0; i < 999; i++) db.create('VDI', { SR: srRef, location: `v${i}`, ...(i < 3 ? { snapshot_of: base.ref, is_a_snapshot: true } : {}) });
    const all = await xapi.VDI.get_all_records_where(`field "SR" = "${srRef}"`);
    expect(Object.keys(all)).toHaveLength(1000);
    expect((all[base.ref]!['snapshots'] as string[]).length).toBe(3);
    expect(Object.values(all).filter((r) => (r['snapshots'] as string[]).length > 0)).toHaveLength(1);
    // the listing and the single-record call agree
    expect(await xapi.VDI.get_record(base.ref)).toEqual(all[base.ref]);
  });
});
