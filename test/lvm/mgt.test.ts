// The MGT volume's encoding on a file standing in for the PV: our two slots
// (atomic copies), xapi's srmetadata records beside them (read back the way
// xapi's code reads them, test/lvm/xapi-mgt.ts), an SR xapi made, xapi's
// changes after ours, a crash between the two writes, and version 1.
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { LvExtents } from '../../src/sdk/lvm-sr/layout.js';
import { emptyContent, readMgt, writeMgt, type MgtContent, type VdiMeta } from '../../src/sdk/lvm-sr/mgt.js';
import { MGT_SIZE } from '../../src/sdk/lvm-sr/naming.js';
import { fileLv } from './helpers.js';
import { readAsXapi, writeAsXapi } from './xapi-mgt.js';

const MiB = 1024 * 1024;
const SR = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const A = '11111111-2222-4333-8444-555555555555';
const B = '22222222-3333-4444-8555-666666666666';
const C = '33333333-4444-4555-8666-777777777777';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function volume(): { ext: LvExtents; pv: string } {
  const d = mkdtempSync(join(process.env['SMAPI_TEST_TMP'] ?? '/var/tmp', 'lvm-mgt-'));
  dirs.push(d);
  return fileLv(d, MGT_SIZE);
}
function bytes(v: { ext: LvExtents; pv: string }, from = 0, length = MGT_SIZE): Buffer {
  const b = Buffer.alloc(length);
  const fd = openSync(v.pv, 'r');
  readSync(fd, b, 0, length, v.ext.pieces[0]!.pvOffset + from);
  closeSync(fd);
  return b;
}
function put(v: { ext: LvExtents; pv: string }, from: number, data: Buffer): void {
  const fd = openSync(v.pv, 'r+');
  writeSync(fd, data, 0, data.length, v.ext.pieces[0]!.pvOffset + from);
  closeSync(fd);
}
const vdi = (name: string, extra: Partial<VdiMeta> = {}): VdiMeta => ({
  name_label: name,
  name_description: '',
  is_a_snapshot: false,
  snapshot_of: '',
  snapshot_time: '',
  type: 'user',
  vdi_type: 'vhd',
  read_only: false,
  managed: true,
  metadata_of_pool: '',
  ...extra,
});
const journal = { op: 'resize' as const, vdi: A, format: 'vhd' as const, fromLvSize: 8 * MiB, fromVirtual: 4 * MiB, to: 8 * MiB };

describe('MGT: our copies', () => {
  it('a zeroed volume is empty; writes alternate slots and the newest valid copy wins', () => {
    const v = volume();
    let st = readMgt(v.ext);
    expect(st.kind).toBe('empty');
    const c = emptyContent(SR, 'my sr');
    st = writeMgt(v.ext, st, c);
    expect(readMgt(v.ext)).toMatchObject({ kind: 'ours', seq: 1, slot: 1 });
    c.sr.name_label = 'renamed';
    st = writeMgt(v.ext, st, c);
    const back = readMgt(v.ext);
    expect(back).toMatchObject({ kind: 'ours', seq: 2, slot: 0 });
    expect(back.content?.sr.name_label).toBe('renamed');
  });

  it('a torn write (body written, header not) leaves the previous copy in force', () => {
    const v = volume();
    let st = writeMgt(v.ext, readMgt(v.ext), emptyContent(SR, 'first'));
    const xapiRecords = bytes(v, 0, 2 * MiB);
    st = writeMgt(v.ext, st, emptyContent(SR, 'second'));
    expect(st.slot).toBe(0);
    // The body of slot 0 (the newest, at 2 MiB) damaged as a crash mid-write would,
    // before xapi's records (written after it) were touched.
    put(v, 2 * MiB + 512, Buffer.from('garbage'));
    put(v, 0, xapiRecords);
    const back = readMgt(v.ext);
    expect(back.kind).toBe('ours');
    expect(back.content?.sr.name_label).toBe('first');
  });

  it('neither encoding: foreign, read as no records, never overwritten', () => {
    const v = volume();
    put(v, 0, Buffer.from('<?xml version="1.0" ?><header>...'));
    const st = readMgt(v.ext);
    expect(st.kind).toBe('foreign');
    const before = readFileSync(v.pv);
    expect(() => writeMgt(v.ext, st, emptyContent(SR))).toThrow(/MGT volume vg\/MGT is in neither xapi's encoding nor ours/);
    expect(readFileSync(v.pv).equals(before)).toBe(true);
  });

  it('version 1 (two 2 MiB slots from offset 0) is read, and moved to the current layout at the next write', () => {
    const v = volume();
    const old: MgtContent = { ...emptyContent(SR, 'v1 sr'), vdis: { [A]: vdi('kept') }, journals: [journal] };
    const body = Buffer.from(JSON.stringify(old));
    const head = Buffer.alloc(512);
    head.write(JSON.stringify({ magic: 'smapi-ts-mgt', version: 1, seq: 7, length: body.length, sha256: createHash('sha256').update(body).digest('hex') }));
    put(v, 512, body);
    put(v, 0, head);
    const st = readMgt(v.ext);
    expect(st).toMatchObject({ kind: 'ours', seq: 7 });
    expect(st.content).toEqual(old);
    const c = structuredClone(st.content!);
    c.vdis[B] = vdi('added');
    writeMgt(v.ext, st, c);
    const back = readMgt(v.ext);
    expect(back).toMatchObject({ kind: 'ours', seq: 8 });
    expect(back.content?.vdis[A]?.name_label).toBe('kept');
    expect(back.content?.journals).toEqual([journal]);
    expect(readAsXapi(bytes(v)).vdis.map((r) => r['name_label'])).toEqual(['kept', 'added']);
  });
});

describe("MGT: xapi's records (srmetadata), read as xapi reads them", () => {
  it('an SR we wrote: header XSSM 1.2 with the length in use, the SR, one record per VDI; names cut to xapi\'s sector, ours kept whole', () => {
    const v = volume();
    const c = emptyContent(SR, 'SR <one> & "two"', 'described');
    c.sr.allocation = 'thin';
    const long = 'é&'.repeat(150);
    c.vdis[A] = vdi("disk 'a' & <b>", { name_description: 'first disk' });
    c.vdis[B] = vdi('base copy', { managed: false, read_only: true, is_a_snapshot: true, snapshot_of: A, snapshot_time: '20261122T10:00:00Z', vdi_type: 'aio' });
    c.vdis[C] = vdi(long, { name_description: long, vdi_type: 'qcow2' });
    writeMgt(v.ext, readMgt(v.ext), c);

    const x = readAsXapi(bytes(v));
    expect(x.header).toEqual({ length: 2048 + 3 * 1024, major: 1, minor: 2 });
    expect(x.sr).toEqual({ uuid: SR, allocation: 'thin', name_label: 'SR <one> & "two"', name_description: 'described' });
    expect(x.vdis[0]).toEqual({ uuid: A, name_label: "disk 'a' & <b>", name_description: 'first disk', is_a_snapshot: '0', snapshot_of: '', snapshot_time: '', type: 'user', vdi_type: 'vhd', read_only: '0', managed: '1', metadata_of_pool: '', deleted: '0' });
    expect(x.vdis[1]).toMatchObject({ uuid: B, is_a_snapshot: '1', snapshot_of: A, snapshot_time: '20261122T10:00:00Z', read_only: '1', managed: '0', vdi_type: 'aio' });
    // Both names over half of the one sector they share: each cut to half of it, at a whole character.
    const cut = x.vdis[2]!;
    expect(cut['uuid']).toBe(C);
    expect(long.startsWith(cut['name_label']!) && long.startsWith(cut['name_description']!)).toBe(true);
    expect(cut['name_label']!.length).toBeLessThan(long.length);
    expect(cut['name_label']!.length).toBeGreaterThan(60);
    const back = readMgt(v.ext);
    expect(back.tookOverXapi).toBeUndefined();
    expect(back.content?.vdis[C]?.name_label).toBe(long);
  });

  it('an SR xapi made: its live records are ours to read (deleted ones left out); the first write keeps them for xapi and adds our copy', () => {
    const v = volume();
    const xapiMade = writeAsXapi({ uuid: SR, allocation: 'thick', name_label: 'xapi & co', name_description: '' }, [
      { uuid: A, name_label: 'vm disk', name_description: 'a <b>', is_a_snapshot: '0', snapshot_of: '', snapshot_time: '', type: 'user', vdi_type: 'vhd', read_only: '0', managed: '1', metadata_of_pool: '' },
      { uuid: B, name_label: 'gone', name_description: '', is_a_snapshot: '0', snapshot_of: '', snapshot_time: '', type: 'user', vdi_type: 'vhd', read_only: '0', managed: '1', metadata_of_pool: '', deleted: '1' },
      { uuid: C, name_label: 'base copy', name_description: '', is_a_snapshot: '0', snapshot_of: '', snapshot_time: '', type: 'user', vdi_type: 'vhd', read_only: '1', managed: '0', metadata_of_pool: '' },
    ]);
    put(v, 0, xapiMade);
    const st = readMgt(v.ext);
    expect(st.kind).toBe('xapi');
    expect(st.content?.sr).toMatchObject({ uuid: SR, name_label: 'xapi & co', allocation: 'thick' });
    expect(Object.keys(st.content!.vdis).sort()).toEqual([A, C]);
    expect(st.content?.vdis[A]).toEqual(vdi('vm disk', { name_description: 'a <b>' }));
    expect(st.content?.vdis[C]).toMatchObject({ managed: false, read_only: true });

    const c = structuredClone(st.content!);
    c.journals.push(journal);
    writeMgt(v.ext, st, c);
    const x = readAsXapi(bytes(v));
    expect(x.sr['name_label']).toBe('xapi & co');
    expect(x.vdis.map((r) => [r['uuid'], r['name_label'], r['deleted']])).toEqual([
      [A, 'vm disk', '0'],
      [C, 'base copy', '0'],
    ]);
    const back = readMgt(v.ext);
    expect(back.kind).toBe('ours');
    expect(back.content?.journals).toEqual([journal]);
  });

  it("xapi changed its records after our write: its renames, flags and deletions are taken over; our journals and whole names stay", () => {
    const v = volume();
    const c = emptyContent(SR, 'sr');
    const long = 'x'.repeat(400);
    c.vdis[A] = vdi(long);
    c.vdis[B] = vdi('old name');
    c.vdis[C] = vdi('to be deleted');
    c.journals.push(journal);
    writeMgt(v.ext, readMgt(v.ext), c);

    // xapi, attached in between: renames B, makes it read-only, deletes C (marks it, as xapi does), renames the SR.
    const x = readAsXapi(bytes(v));
    const recs = x.vdis.map((r) => (r['uuid'] === B ? { ...r, name_label: 'new name', read_only: '1' } : r['uuid'] === C ? { ...r, deleted: '1' } : r));
    put(v, 0, writeAsXapi({ uuid: SR, allocation: 'thick', name_label: 'renamed by xapi', name_description: '' }, recs).subarray(0, 2 * MiB));

    const back = readMgt(v.ext);
    expect(back.tookOverXapi).toBe(true);
    expect(back.content?.sr.name_label).toBe('renamed by xapi');
    expect(back.content?.vdis[A]?.name_label).toBe(long);
    expect(back.content?.vdis[B]).toMatchObject({ name_label: 'new name', read_only: true });
    expect(back.content?.vdis[C]).toBeUndefined();
    expect(back.content?.journals).toEqual([journal]);
    // Our next write settles it: read again, nothing left to take over.
    writeMgt(v.ext, back, back.content!);
    const settled = readMgt(v.ext);
    expect(settled.tookOverXapi).toBeUndefined();
    expect(settled.content?.vdis[B]?.name_label).toBe('new name');
    expect(readAsXapi(bytes(v)).vdis.map((r) => r['uuid'])).toEqual([A, B]);
  });

  it('a crash after our copy, before xapi\'s records were rewritten: our copy wins, and the next write brings xapi\'s records up to date', () => {
    const v = volume();
    const c = emptyContent(SR, 'sr');
    c.vdis[A] = vdi('one');
    const st = writeMgt(v.ext, readMgt(v.ext), c);
    const xapiBefore = bytes(v, 0, 2 * MiB);
    c.vdis[A] = vdi('two');
    c.vdis[B] = vdi('new');
    writeMgt(v.ext, st, c);
    put(v, 0, xapiBefore);

    const back = readMgt(v.ext);
    expect(back.tookOverXapi).toBeUndefined();
    expect(back.content?.vdis[A]?.name_label).toBe('two');
    expect(back.content?.vdis[B]?.name_label).toBe('new');
    expect(readAsXapi(bytes(v)).vdis.map((r) => r['name_label'])).toEqual(['one']);
    writeMgt(v.ext, back, back.content!);
    expect(readAsXapi(bytes(v)).vdis.map((r) => r['name_label'])).toEqual(['two', 'new']);
  });

  it('a VDI record too long for its sector: MetadataError naming the VDI, nothing written', () => {
    const v = volume();
    const st = writeMgt(v.ext, readMgt(v.ext), emptyContent(SR, 'sr'));
    const before = readFileSync(v.pv);
    const c = emptyContent(SR, 'sr');
    c.vdis[A] = vdi('fine', { metadata_of_pool: `OpaqueRef:${'x'.repeat(400)}` });
    expect(() => writeMgt(v.ext, st, c)).toThrow(new RegExp(`the record of VDI ${A} takes \\d+ bytes in xapi's MGT encoding; a sector holds 512`));
    expect(readFileSync(v.pv).equals(before)).toBe(true);
  });

  it('an XSSM header over a record that does not parse: foreign, read as no records, never overwritten', () => {
    const v = volume();
    const good = writeAsXapi({ uuid: SR, allocation: 'thick', name_label: 'xapi', name_description: '' }, [{ uuid: A, name_label: 'disk', name_description: '' }]);
    // The VDI record's second sector torn: its closing tags are gone.
    good.write(' '.repeat(512), 2048 + 512, 'latin1');
    put(v, 0, good);
    const st = readMgt(v.ext);
    expect(st.kind).toBe('foreign');
    const before = readFileSync(v.pv);
    expect(() => writeMgt(v.ext, st, emptyContent(SR))).toThrow(/in neither xapi's encoding nor ours/);
    expect(readFileSync(v.pv).equals(before)).toBe(true);
  });

  it("more VDIs than xapi's half of the volume holds: MetadataError naming both numbers, nothing written", () => {
    const v = volume();
    const st = writeMgt(v.ext, readMgt(v.ext), emptyContent(SR, 'sr'));
    const before = readFileSync(v.pv);
    const c = emptyContent(SR, 'sr');
    for (let i = 0; i < 2047; i++) c.vdis[`${i.toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`] = vdi(`d${i}`);
    expect(() => writeMgt(v.ext, st, c)).toThrow(/the SR has 2047 VDI records; xapi's MGT encoding holds at most 2046/);
    expect(readFileSync(v.pv).equals(before)).toBe(true);
  });
});
