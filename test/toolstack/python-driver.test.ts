// smctl driving a third-party-style Python plug-in (test/fixtures/python-driver/PySR)
// through a whole SR/VDI life cycle. PySR faults on any request that is not
// exactly what xapi sends, and writes its records through the XenAPI endpoint;
// every step checks the records in the database.
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, ok, type Scratch, scratch, smctl, withDb } from './helpers.js';

let s: Scratch;
let sr: string;

const vdiRec = (uuid: string) => withDb(s, (db) => db.getByUuid('VDI', uuid));

beforeAll(() => {
  assertBuilt();
  s = scratch();
});
afterAll(() => s?.cleanup());

describe('smctl with a Python SMAPIv1 plug-in', () => {
  it('sm-list shows the driver info, with supported-image-formats, and --json is SM.get_all_records', async () => {
    const text = await ok(s, ['sm-list', 'params=all']);
    expect(text).toMatch(/^type \( RO\)\s+: py$/m);
    expect(text).toMatch(/^supported-image-formats \( RO\)\s+: raw, qcow2$/m);
    expect(text).toMatch(/^features \(MRO\)\s+: .*VDI_RESET_ON_BOOT: 2/m);
    expect(text).toMatch(/^capabilities \( RO\) \[DEPRECATED\]\s*: SR_PROBE; SR_UPDATE; VDI_ACTIVATE/m);
    expect(text).not.toMatch(/ATOMIC_PAUSE/); // unknown to xapi: dropped
    const json = JSON.parse(await ok(s, ['sm-list', '--json'])) as Record<string, Record<string, unknown>>;
    const [ref, rec] = Object.entries(json)[0]!;
    expect(ref).toMatch(/^OpaqueRef:/);
    expect(rec['type']).toBe('py');
    expect(rec['supported_image_formats']).toEqual(['raw', 'qcow2']);
    expect((rec['features'] as Record<string, string>)['VDI_RESET_ON_BOOT']).toBe('2');
    expect(rec['driver_filename']).toMatch(/PySR$/);
    // --sm-dir selects a flat plug-in directory like /opt/xensource/sm, over $SM_DIR.
    const elsewhere = await smctl(s, ['--sm-dir', join(s.dir, 'empty'), 'sm-list', '--minimal'], {});
    expect(elsewhere.exitCode).toBe(0);
    expect(elsewhere.stdout.trim()).toBe('');
    expect(await ok(s, ['sm-list', '--minimal'])).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('sr-create runs sr_create, sr_attach and a scan; the records are in the database', async () => {
    sr = await ok(s, ['sr-create', 'type=py', 'name-label=py sr', `device-config:location=${s.srDir}`]);
    expect(sr).toMatch(/^[0-9a-f-]{36}$/);
    withDb(s, (db) => {
      const rec = db.getByUuid('SR', sr)!;
      expect(rec['type']).toBe('py');
      expect(rec['name_label']).toBe('py sr');
      expect(rec['sm_config']).toEqual({ 'pysr-created': 'true' }); // written by the driver via SR.add_to_sm_config
      expect(rec['physical_size']).toBeGreaterThan(0); // the post-attach scan set it
      const pbds = db.where('PBD', 'SR', rec.ref);
      expect(pbds).toHaveLength(1);
      expect(pbds[0]!['currently_attached']).toBe(true);
      expect(pbds[0]!['device_config']).toEqual({ location: s.srDir });
    });
    expect(existsSync(join(s.srDir, `.sr-${sr}`))).toBe(true);
  });

  let disk: string;
  it('vdi-create sends the 8 args and vdi_sm_config, and reads the VDI back', async () => {
    disk = await ok(s, ['vdi-create', `sr-uuid=${sr}`, 'name-label=disk', 'virtual-size=10MiB', 'sm-config:image-format=qcow2']);
    const rec = vdiRec(disk)!;
    expect(rec['virtual_size']).toBe(10 * 1024 * 1024);
    expect(rec['sm_config']).toEqual({ 'image-format': 'qcow2' });
    expect(rec['managed']).toBe(true);
    expect(rec['read_only']).toBe(false);
    expect(rec['type']).toBe('user');
    expect(rec['location']).toBe(disk);
    expect(statSync(join(s.srDir, `${disk}.img`)).size).toBe(10 * 1024 * 1024);
    expect(withDb(s, (db) => db.getByUuid('SR', sr)!['virtual_allocation'])).toBe(10 * 1024 * 1024);
  });

  it('vdi-create passes read-only and the VDI type', async () => {
    const u = await ok(s, ['vdi-create', `sr-uuid=${sr}`, 'name-label=ro', 'virtual-size=1M', 'read-only=true', 'type=system']);
    const rec = vdiRec(u)!;
    expect(rec['read_only']).toBe(true);
    expect(rec['type']).toBe('system');
    expect(rec['sm_config']).toEqual({ 'image-format': 'raw' });
    await ok(s, ['vdi-destroy', `uuid=${u}`]);
    expect(vdiRec(u)).toBeUndefined();
    expect(existsSync(join(s.srDir, `${u}.img`))).toBe(false);
  });

  it('vdi-snapshot: the new VDI is a snapshot of the source; base copy unmanaged; vdi_update called', async () => {
    const snap = await ok(s, ['vdi-snapshot', `uuid=${disk}`]);
    withDb(s, (db) => {
      const src = db.getByUuid('VDI', disk)!;
      const rec = db.getByUuid('VDI', snap)!;
      expect(rec['is_a_snapshot']).toBe(true);
      expect(rec['snapshot_of']).toBe(src.ref);
      expect(rec['name_label']).toBe('disk');
      expect(rec['snapshot_time']).not.toBe('19700101T00:00:00Z');
      expect(rec['virtual_size']).toBe(10 * 1024 * 1024);
      const parent = (src['sm_config'] as Record<string, string>)['vhd-parent']!;
      expect((rec['sm_config'] as Record<string, string>)['vhd-parent']).toBe(parent);
      expect((rec['sm_config'] as Record<string, string>)['pysr-updated']).toBe(snap); // toolstack's vdi_update
      const base = db.getByUuid('VDI', parent)!;
      expect(base['managed']).toBe(false);
      expect(base['read_only']).toBe(true);
      expect(base['name_label']).toBe('base copy');
    });
    const list = await ok(s, ['vdi-param-list', `uuid=${snap}`]);
    expect(list).toMatch(new RegExp(`^snapshot-of \\( RO\\)\\s+: ${disk}$`, 'm'));
    expect(list).toMatch(/^is-a-snapshot \( RO\)\s+: true$/m);
  });

  it('vdi-clone: new name, not a snapshot', async () => {
    const clone = await ok(s, ['vdi-clone', `uuid=${disk}`, 'new-name-label=the clone', 'driver-params:type=double']);
    const rec = vdiRec(clone)!;
    expect(rec['name_label']).toBe('the clone');
    expect(rec['is_a_snapshot']).toBe(false);
    expect(rec['snapshot_of']).toBe('OpaqueRef:NULL');
  });

  it('vdi-resize changes the size on disk and in the record', async () => {
    await ok(s, ['vdi-resize', `uuid=${disk}`, 'disk-size=20M']);
    expect(vdiRec(disk)!['virtual_size']).toBe(20 * 1024 * 1024);
    expect(statSync(join(s.srDir, `${disk}.img`)).size).toBe(20 * 1024 * 1024);
  });

  it('vdi-attach / vdi-detach: attach struct printed, activation recorded, destroy refused meanwhile', async () => {
    const out = await ok(s, ['vdi-attach', `uuid=${disk}`]);
    expect(out).toContain(`params ( RO)`);
    expect(out).toContain(join(s.srDir, `${disk}.img`));
    expect(out).toMatch(/^params-nbd \( RO\)\s+: nbd:unix:/m);
    expect(out).toMatch(/^xenstore-data \(MRO\)\s+: storage-type: pysr; vdi-uuid: /m);
    const hostRef = withDb(s, (db) => db.localHost().ref);
    withDb(s, (db) => {
      const rec = db.getByUuid('VDI', disk)!;
      expect((rec['sm_config'] as Record<string, string>)[`host_${hostRef}`]).toBe('RW');
      expect(db.attachment(rec.ref)?.mode).toBe('RW');
    });
    const d = await smctl(s, ['vdi-destroy', `uuid=${disk}`]);
    expect(d.exitCode).not.toBe(0);
    expect(d.stderr).toContain('VDI_IN_USE');
    const again = await smctl(s, ['vdi-attach', `uuid=${disk}`]);
    expect(again.stderr).toContain('DEVICE_ALREADY_ATTACHED');
    await ok(s, ['vdi-detach', `uuid=${disk}`]);
    withDb(s, (db) => {
      const rec = db.getByUuid('VDI', disk)!;
      expect(Object.keys(rec['sm_config'] as object)).not.toContain(`host_${hostRef}`);
      expect(db.attachment(rec.ref)).toBeUndefined();
    });
  });

  it('vdi-introduce: new_uuid + vdi_location + vdi_sm_config, then fields set', async () => {
    const u = '0c6c5d8e-52ab-4e39-9d1b-6a8e8e7a0001';
    writeFileSync(join(s.srDir, `${u}.img`), Buffer.alloc(4096));
    const got = await ok(s, ['vdi-introduce', `sr-uuid=${sr}`, `uuid=${u}`, `location=${u}`, 'name-label=found', 'sm-config:image-format=raw']);
    expect(got).toBe(u);
    const rec = vdiRec(u)!;
    expect(rec['name_label']).toBe('found');
    expect(rec['virtual_size']).toBe(4096);
    expect(rec['sm_config']).toEqual({ 'image-format': 'raw' });
    await ok(s, ['vdi-forget', `uuid=${u}`]);
    expect(vdiRec(u)).toBeUndefined();
  });

  it('sr-scan reconciles: files without records are introduced, records without files forgotten', async () => {
    const gone = await ok(s, ['vdi-create', `sr-uuid=${sr}`, 'name-label=gone', 'virtual-size=1M']);
    const { rmSync } = await import('node:fs');
    rmSync(join(s.srDir, `${gone}.img`));
    rmSync(join(s.srDir, `${gone}.json`));
    const fresh = '0c6c5d8e-52ab-4e39-9d1b-6a8e8e7a0002';
    writeFileSync(join(s.srDir, `${fresh}.img`), Buffer.alloc(0));
    writeFileSync(join(s.srDir, `${fresh}.json`), JSON.stringify({ virtual_size: 2097152, sm_config: { 'image-format': 'raw' }, name: 'fresh' }));
    await ok(s, ['sr-scan', `uuid=${sr}`]);
    expect(vdiRec(gone)).toBeUndefined();
    expect(vdiRec(fresh)!['virtual_size']).toBe(2097152);
    expect(vdiRec(fresh)!['name_label']).toBe('fresh');
    await ok(s, ['sr-update', `uuid=${sr}`]);
  });

  it('sr-probe prints the XML the driver returns', async () => {
    const xml = await ok(s, ['sr-probe', 'type=py', `device-config:location=${s.srDir}`]);
    expect(xml).toBe(`<?xml version="1.0" ?><SRlist><SR><UUID>${sr}</UUID></SR></SRlist>`);
  });

  it('pbd-unplug / pbd-plug toggle currently_attached; VDI operations need the SR attached', async () => {
    const pbd = await ok(s, ['pbd-list', `sr-uuid=${sr}`, '--minimal']);
    await ok(s, ['pbd-unplug', `uuid=${pbd}`]);
    expect(withDb(s, (db) => db.getByUuid('PBD', pbd)!['currently_attached'])).toBe(false);
    const r = await smctl(s, ['vdi-create', `sr-uuid=${sr}`, 'name-label=x', 'virtual-size=1M']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('SR_NOT_ATTACHED');
    await ok(s, ['pbd-plug', `uuid=${pbd}`]);
    expect(withDb(s, (db) => db.getByUuid('PBD', pbd)!['currently_attached'])).toBe(true);
  });

  it('sr-destroy needs the PBD unplugged, then faults SR_NOT_EMPTY while VDIs remain; an empty SR goes', async () => {
    const r = await smctl(s, ['sr-destroy', `uuid=${sr}`]);
    expect(r.stderr).toContain('SR_HAS_PBD');
    const pbd = await ok(s, ['pbd-list', `sr-uuid=${sr}`, '--minimal']);
    await ok(s, ['pbd-unplug', `uuid=${pbd}`]);
    const r2 = await smctl(s, ['sr-destroy', `uuid=${sr}`]);
    expect(r2.exitCode).toBe(1);
    expect(r2.stderr).toContain('Error code: SR_NOT_EMPTY');
    expect(withDb(s, (db) => db.getByUuid('SR', sr))).toBeDefined();

    const empty = await ok(s, ['sr-create', 'type=py', 'name-label=empty', `device-config:location=${join(s.dir, 'sr2')}`]);
    const pbd2 = await ok(s, ['pbd-list', `sr-uuid=${empty}`, '--minimal']);
    await ok(s, ['pbd-unplug', `uuid=${pbd2}`]);
    await ok(s, ['sr-destroy', `uuid=${empty}`]);
    withDb(s, (db) => {
      expect(db.getByUuid('SR', empty)).toBeUndefined();
      expect(db.getByUuid('PBD', pbd2)).toBeUndefined();
    });
    expect(existsSync(join(s.dir, 'sr2', `.sr-${empty}`))).toBe(false);

    await ok(s, ['sr-forget', `uuid=${sr}`]);
    withDb(s, (db) => {
      expect(db.all('SR')).toHaveLength(0);
      expect(db.all('PBD')).toHaveLength(0);
      expect(db.all('VDI')).toHaveLength(0);
    });
  });
});
