// In-process tests of the lvm handlers with a stand-in XenAPI:
//  * layout compatibility: a VG laid out exactly as xapi's LVHDSR lays it out
//    (names, tags, read-only bases, a journal LV, an MGT in xapi's own
//    encoding) attaches and scans with ours, takes names from xapi's MGT
//    records, finishes the journals xapi left (inflate undone, clones rolled
//    back or completed), and keeps the records readable to xapi after our own changes;
//  * golden argv: the exact LVM / vhd-util / qemu-img command lines of each
//    command, against test/lvm/fixtures/golden-argv.yaml.
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DRIVER_INFO } from '../../drivers/lvm/info.js';
import { vhdUtilPath } from '../../src/sdk/env.js';
import { useProcessEnv } from './helpers.js';
import { thickVhdLvSize } from '../../src/sdk/formats/lv-size.js';
import { lvmSrHandlers } from '../../src/sdk/lvm-sr/handlers.js';
import type { RequestMap } from '../../src/sdk/protocol/requests.js';
import { deviceMapperAvailable, lvs, pvs, scopeArgs } from '../../src/sdk/tools/lvm.js';
import { scratch } from '../file-sr/helpers.js';
import { loopDevice, type Loop } from '../ext/helpers.js';
import { byUuid, startXapi } from './xapi.js';
import { argvNormaliser, recordSteps, type GoldenCase } from './golden.js';
import { readAsXapi, writeAsXapi } from './xapi-mgt.js';

const MiB = 1024 * 1024;
const SR = '3c1f9d2a-5b6e-4c7d-8e9f-0a1b2c3d4e5f';
const VG = `VG_XenStorage-${SR}`;
const U = {
  plain: '11111111-2222-4333-8444-555555555555',
  raw: '22222222-3333-4444-8555-666666666666',
  base: '33333333-4444-4555-8666-777777777777',
  leaf: '44444444-5555-4666-8777-888888888888',
  gone: '55555555-6666-4777-8888-999999999999',
  // An xapi clone interrupted after the rename and the leaf, before the second leaf: undone.
  cut: '88888888-9999-4aaa-8bbb-cccccccccccc',
  cutBase: '99999999-aaaa-4bbb-8ccc-dddddddddddd',
  cutClone: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee',
};

const XAPI_JOURNALS_GOLDEN = join(import.meta.dirname, 'fixtures', 'golden-argv-xapi-journals.yaml');

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(mib = 160): Promise<{ dev: string; lvm: (...a: string[]) => Promise<string> }> {
  const loop: Loop = await loopDevice(mib);
  cleanups.push(loop.cleanup);
  const s = scratch();
  cleanups.push(s.cleanup);
  cleanups.push(useProcessEnv(s.env));
  const dev = loop.device;
  const lvm = async (...a: string[]) =>
    String((await execa(a[0]!, ['--devices', dev, ...scopeArgs({}), ...a.slice(1)], { env: { LVM_SUPPRESS_FD_WARNINGS: '1' } })).stdout);
  return { dev, lvm };
}

/** Copy `file` into the LV's bytes (its one extent range on the PV) — what writing /dev/<vg>/<lv> does. */
async function writeIntoLv(dev: string, lv: string, file: string): Promise<void> {
  const [rec] = await lvs({ vg: VG, name: lv, segments: true }, { devices: [dev] });
  const [pv] = await pvs({ devices: [dev] }, { devices: [dev] });
  const m = /:(\d+)-(\d+)$/.exec(rec!.segments![0]!.peRanges[0]!)!;
  const extent = rec!.lvSize / (Number(m[2]) - Number(m[1]) + 1);
  const offset = pv!.peStart + Number(m[1]) * extent;
  await execa('dd', [`if=${file}`, `of=${dev}`, 'bs=512', `seek=${offset / 512}`, 'conv=notrunc,fsync', 'status=none']);
}

describe('lvm: a VG laid out by xapi LVHDSR attaches and scans with ours', () => {
  it('introduces VHD, raw, base (managed=false) and leaf with vhd-parent and their names from xapi\'s MGT; skips the hidden leaf and MGT; finishes xapi\'s inflate and clone journals as xapi does; our new VDI, machine data and snapshot join xapi\'s records, which xapi still reads', async () => {
    const { dev, lvm } = await setup(256);
    const d = mkdtempSync(join('/var/tmp', 'lvhd-layout-'));
    cleanups.push(() => rmSync(d, { recursive: true, force: true }));
    // Images as blktap writes them: parent name VHD-<uuid>, locators ./VHD-<uuid>.
    const vhd = (n: string) => join(d, n);
    await execa(vhdUtilPath(), ['create', '-n', vhd(`VHD-${U.plain}`), '-s', '20', '-S', '2097152']);
    await execa(vhdUtilPath(), ['create', '-n', vhd(`VHD-${U.base}`), '-s', '20', '-S', '2097152']);
    await execa(vhdUtilPath(), ['snapshot', '-n', vhd(`VHD-${U.leaf}`), '-p', vhd(`VHD-${U.base}`), '-S', '2097152']);
    await execa(vhdUtilPath(), ['set', '-n', vhd(`VHD-${U.base}`), '-f', 'hidden', '-v', '1']);
    await execa(vhdUtilPath(), ['create', '-n', vhd(`VHD-${U.gone}`), '-s', '20', '-S', '2097152']);
    await execa(vhdUtilPath(), ['create', '-n', vhd(`VHD-${U.cutBase}`), '-s', '20', '-S', '2097152']);
    await execa(vhdUtilPath(), ['snapshot', '-n', vhd(`VHD-${U.cut}`), '-p', vhd(`VHD-${U.cutBase}`), '-S', '2097152']);
    await execa(vhdUtilPath(), ['set', '-n', vhd(`VHD-${U.cutBase}`), '-f', 'hidden', '-v', '1']);
    await execa(vhdUtilPath(), ['set', '-n', vhd(`VHD-${U.gone}`), '-f', 'hidden', '-v', '1']);
    const size = String(thickVhdLvSize(20 * MiB) / MiB);
    // blktap keeps a leaf's primary footer at the end of its LV (test/vhd/blockdev.test.ts).
    await execa(vhdUtilPath(), ['modify', '-n', vhd(`VHD-${U.leaf}`), '-s', String(thickVhdLvSize(20 * MiB))]);

    await lvm('pvcreate', '-ff', '-y', '--metadatasize', '10M', dev);
    await lvm('vgcreate', '--metadatasize', '10M', VG, dev);
    await lvm('lvcreate', '-n', 'MGT', '-L', '4M', VG, '--zero', 'n', '--activate', 'n');
    for (const u of [U.plain, U.base, U.leaf, U.gone, U.cutBase, U.cut]) await lvm('lvcreate', '-n', `VHD-${u}`, '-L', `${size}M`, VG, '--zero', 'n', '--activate', 'n');
    await lvm('lvcreate', '-n', `LV-${U.raw}`, '-L', '8M', VG, '--zero', 'n', '--activate', 'n');
    await lvm('lvcreate', '-n', `inflate_${U.plain}_8388608`, '-L', '4M', VG, '--addtag', 'journaler', '--zero', 'n', '--activate', 'n');
    // A clone journal's value is too long for an LV name: xapi writes it inside, the name ends in _1.
    await lvm('lvcreate', '-n', `clone_${U.cut}_1`, '-L', '4M', VG, '--addtag', 'journaler', '--zero', 'n', '--activate', 'n');
    writeFileSync(join(d, 'jval'), Buffer.concat([Buffer.from(`${U.cutBase}_${U.cutClone}`), Buffer.alloc(512 - 73)]));
    await writeIntoLv(dev, `clone_${U.cut}_1`, join(d, 'jval'));
    // And a single snapshot of the leaf interrupted after its last step: completed, the chain kept.
    await lvm('lvcreate', '-n', `clone_${U.leaf}_1`, '-L', '4M', VG, '--addtag', 'journaler', '--zero', 'n', '--activate', 'n');
    writeFileSync(join(d, 'jval2'), Buffer.concat([Buffer.from(`${U.base}_`), Buffer.alloc(512 - 37)]));
    await writeIntoLv(dev, `clone_${U.leaf}_1`, join(d, 'jval2'));
    // A GC journal of xapi's: not one this driver finishes; left for xapi.
    await lvm('lvcreate', '-n', `leaf_${U.plain}_1`, '-L', '4M', VG, '--addtag', 'journaler', '--zero', 'n', '--activate', 'n');
    await lvm('lvchange', '-p', 'r', `${VG}/VHD-${U.base}`);
    await lvm('lvchange', '-p', 'r', `${VG}/VHD-${U.cutBase}`);
    for (const u of [U.plain, U.base, U.leaf, U.gone, U.cutBase, U.cut]) await writeIntoLv(dev, `VHD-${u}`, vhd(`VHD-${u}`));
    // xapi's MGT records (srmetadata 1.2), a deleted record among them, as xapi leaves it.
    const rec = (uuid: string, name: string, o: Record<string, string> = {}) => ({ uuid, name_label: name, name_description: `${name} (xapi)`, is_a_snapshot: '0', snapshot_of: '', snapshot_time: '', type: 'user', vdi_type: 'vhd', read_only: '0', managed: '1', metadata_of_pool: '', ...o });
    const mgt = join(d, 'mgt');
    writeFileSync(mgt, writeAsXapi({ uuid: SR, allocation: 'thick', name_label: 'xapi SR', name_description: '' }, [
      rec(U.plain, 'plain & simple'),
      rec(U.gone, 'deleted long ago', { deleted: '1' }),
      rec(U.raw, 'raw disk', { vdi_type: 'aio' }),
      rec(U.base, 'base copy', { read_only: '1', managed: '0' }),
      rec(U.leaf, 'leaf disk'),
    ]));
    await writeIntoLv(dev, 'MGT', mgt);

    const f = await startXapi();
    cleanups.push(() => f.close());
    const h = lvmSrHandlers(DRIVER_INFO);
    const base = { sr_uuid: SR, sr_ref: f.srRef, device_config: { device: dev }, host_ref: 'OpaqueRef:h', args: [], raw: {} };
    // sr_attach finishes xapi's journals: its command lines are golden (without device-mapper).
    const attach = await recordSteps([["sr_attach of an SR with xapi's inflate and clone journals", () => h.sr_attach!({ ...base, command: 'sr_attach' } as unknown as RequestMap['sr_attach'], f.ctx)]], argvNormaliser(dev, SR));
    if (!deviceMapperAvailable()) {
      if (process.env['LVM_GOLDEN_WRITE'] === '1') writeFileSync(XAPI_JOURNALS_GOLDEN.replace(/\.yaml$/, '.actual.json'), JSON.stringify(attach, null, 1));
      expect(attach).toEqual(parse(readFileSync(XAPI_JOURNALS_GOLDEN, 'utf8')) as GoldenCase[]);
    }
    await h.sr_scan!({ ...base, command: 'sr_scan' } as unknown as RequestMap['sr_scan'], f.ctx);

    const uuids = [...f.vdis().values()].map((r) => r['uuid']).sort();
    expect(uuids).toEqual([U.plain, U.raw, U.base, U.leaf, U.cut].sort());
    // xapi's journals, finished as xapi finishes them: the inflate undone (LV back to 8 MiB,
    // the VHD's footer at its end), the interrupted clone rolled back (its base is the VDI again,
    // visible and writable, with the base's data); no journal LV left.
    const lvsNow = (await lvm('lvs', '--noheadings', '--units', 'b', '--nosuffix', '-o', 'lv_name,lv_size,lv_attr', VG)).trim().split('\n').map((l) => l.trim().split(/\s+/));
    const lvNow = (n: string) => lvsNow.find((l) => l[0] === n);
    expect(lvsNow.filter((l) => l[0]!.startsWith('inflate_') || l[0]!.startsWith('clone_'))).toEqual([]);
    expect(lvNow(`leaf_${U.plain}_1`)).toBeDefined();
    expect(lvNow(`VHD-${U.plain}`)?.[1]).toBe(String(8 * MiB));
    expect((await lvmBytes(dev, `VHD-${U.plain}`)).subarray(8 * MiB - 512, 8 * MiB - 504).toString()).toBe('conectix');
    expect(lvNow(`VHD-${U.cutBase}`)).toBeUndefined();
    expect(lvNow(`VHD-${U.cut}`)?.[2]?.[1]).toBe('w');
    expect(byUuid(f, U.cut)![1]).toMatchObject({ managed: true, read_only: false, virtual_size: String(20 * MiB) });
    expect(byUuid(f, U.cut)![1]['sm_config']).not.toHaveProperty('vhd-parent');
    expect(byUuid(f, U.plain)![1]).toMatchObject({ managed: true, read_only: false, virtual_size: String(20 * MiB), sm_config: { vdi_type: 'vhd' } });
    expect(byUuid(f, U.raw)![1]).toMatchObject({ virtual_size: String(8 * MiB), sm_config: { vdi_type: 'aio' } });
    expect(byUuid(f, U.base)![1]).toMatchObject({ managed: false, read_only: true });
    expect(byUuid(f, U.leaf)![1]).toMatchObject({ managed: true, read_only: false, sm_config: { 'vhd-parent': U.base } });
    expect(byUuid(f, U.plain)![1]).toMatchObject({ name_label: 'plain & simple', name_description: 'plain & simple (xapi)' });
    expect(byUuid(f, U.raw)![1]).toMatchObject({ name_label: 'raw disk' });
    expect(byUuid(f, U.leaf)![1]).toMatchObject({ name_label: 'leaf disk' });

    // Our own changes on such an SR: a new VDI with machine data too long for LV tags
    // (held in MGT), and a journalled snapshot of xapi's VDI.
    const ours = '66666666-7777-4888-8999-000000000000';
    const long = JSON.stringify({ 'com.example.blob': 'x'.repeat(3000) });
    await h.vdi_create!({ ...base, command: 'vdi_create', vdi_uuid: ours, vdi_sm_config: { 'image-meta': long }, size: 8 * MiB, name_label: 'ours', name_description: '', metadata_of_pool: '', is_a_snapshot: false, snapshot_time: '', snapshot_of: '', read_only: false } as unknown as RequestMap['vdi_create'], f.ctx);
    const snap = await h.vdi_snapshot!({ ...base, command: 'vdi_snapshot', vdi_uuid: U.plain, vdi_location: U.plain, vdi_ref: byUuid(f, U.plain)![0], driver_params: {}, vdi_sm_config: {} } as unknown as RequestMap['vdi_snapshot'], f.ctx);
    const snapUuid = String((snap as { uuid: string }).uuid);

    // xapi reads its records as before, with ours added: the deleted one is gone, names kept.
    const x = readAsXapi(await lvmBytes(dev, 'MGT'));
    expect(x.header).toMatchObject({ major: 1, minor: 2 });
    expect(x.sr).toMatchObject({ uuid: SR, name_label: 'xapi SR', allocation: 'thick' });
    const names = Object.fromEntries(x.vdis.map((r) => [r['uuid'], r['name_label']]));
    expect(names[U.plain]).toBe('plain & simple');
    expect(names[U.raw]).toBe('raw disk');
    expect(names[U.leaf]).toBe('leaf disk');
    expect(names[ours]).toBe('ours');
    expect(names[snapUuid]).toBe('plain & simple');
    expect(U.gone in names).toBe(false);
    expect(x.vdis.every((r) => r['deleted'] === '0')).toBe(true);
    // The snapshot's record as the driver writes it (xapi marks it a snapshot with vdi_update), and its hidden base copy.
    expect(x.vdis.find((r) => r['uuid'] === snapUuid)).toMatchObject({ managed: '1', read_only: '0', vdi_type: 'vhd' });
    expect(x.vdis.filter((r) => r['name_label'] === 'base copy' && r['managed'] === '0' && r['read_only'] === '1').length).toBe(2);
    // The machine data reads back through the driver.
    await h.sr_scan!({ ...base, command: 'sr_scan' } as unknown as RequestMap['sr_scan'], f.ctx);
    expect(byUuid(f, ours)![1]['sm_config']).toMatchObject({ 'image-meta': long });
    await lvm('vgremove', '-f', VG);
  });
});

async function lvmBytes(dev: string, lv: string): Promise<Buffer> {
  const [rec] = await lvs({ vg: VG, name: lv, segments: true }, { devices: [dev] });
  const [pv] = await pvs({ devices: [dev] }, { devices: [dev] });
  const m = /:(\d+)-(\d+)$/.exec(rec!.segments![0]!.peRanges[0]!)!;
  const extent = rec!.lvSize / (Number(m[2]) - Number(m[1]) + 1);
  const { stdout } = await execa('dd', [`if=${dev}`, 'bs=512', `skip=${(pv!.peStart + Number(m[1]) * extent) / 512}`, `count=${rec!.lvSize / 512}`, 'status=none'], { encoding: 'buffer' });
  return Buffer.from(stdout);
}

// ---------------------------------------------------------------- golden argv


describe('lvm: golden argv of every command the driver runs', () => {
  // The fixture is the no-device-mapper command set (LVM --driverloaded n, LVs reached
  // through losetup); with device-mapper the activations are lvchange -ay/-an (guest test).
  it.skipIf(deviceMapperAvailable())('matches test/lvm/fixtures/golden-argv.yaml (this host has no device-mapper)', async () => {
    const { dev } = await setup(320);
    const golden = parse(readFileSync(join(import.meta.dirname, 'fixtures', 'golden-argv.yaml'), 'utf8')) as GoldenCase[];
    const f = await startXapi();
    cleanups.push(() => f.close());
    const h = lvmSrHandlers(DRIVER_INFO);
    const base = { sr_uuid: SR, sr_ref: f.srRef, device_config: { device: dev }, host_ref: 'OpaqueRef:h', args: [], raw: {}, session_ref: 'OpaqueRef:s' };
    const norm = argvNormaliser(dev, SR);
    const V = { vhd: 'aaaaaaaa-0000-4000-8000-000000000001', qcow2: 'aaaaaaaa-0000-4000-8000-000000000002', raw: 'aaaaaaaa-0000-4000-8000-000000000003' };
    const create = (u: string, format: string) => ({ ...base, command: 'vdi_create', vdi_uuid: u, vdi_sm_config: { 'image-format': format }, size: 20 * MiB, name_label: format, name_description: '', metadata_of_pool: '', is_a_snapshot: false, snapshot_time: '', snapshot_of: '', read_only: false });
    const vdiReq = (command: string, u: string, extra: object = {}) => ({ ...base, command, vdi_uuid: u, vdi_location: u, vdi_ref: byUuid(f, u)?.[0] ?? '', ...extra });
    const steps: [string, () => unknown][] = [
      ['sr_create', () => h.sr_create!({ ...base, command: 'sr_create', size: 0 } as never, f.ctx)],
      ['sr_attach', () => h.sr_attach!({ ...base, command: 'sr_attach' } as never, f.ctx)],
      ['vdi_create vhd', () => h.vdi_create!(create(V.vhd, 'vhd') as never, f.ctx)],
      // Grown while its LV is the last one: the extension is contiguous (loop access without device-mapper needs that).
      ['vdi_resize vhd', () => h.vdi_resize!(vdiReq('vdi_resize', V.vhd, { new_size: 40 * MiB }) as never, f.ctx)],
      ['vdi_create qcow2', () => h.vdi_create!(create(V.qcow2, 'qcow2') as never, f.ctx)],
      ['vdi_create raw', () => h.vdi_create!(create(V.raw, 'raw') as never, f.ctx)],
      ['vdi_attach vhd', () => h.vdi_attach!(vdiReq('vdi_attach', V.vhd, { writable: true }) as never, f.ctx)],
      ['vdi_detach vhd', () => h.vdi_detach!(vdiReq('vdi_detach', V.vhd) as never, f.ctx)],
      ['vdi_snapshot vhd', () => h.vdi_snapshot!(vdiReq('vdi_snapshot', V.vhd, { driver_params: {} }) as never, f.ctx)],
      ['vdi_clone qcow2', () => h.vdi_clone!(vdiReq('vdi_clone', V.qcow2, { driver_params: {} }) as never, f.ctx)],
      ['vdi_snapshot raw', () => h.vdi_snapshot!(vdiReq('vdi_snapshot', V.raw, { driver_params: { type: 'single' } }) as never, f.ctx)],
      ['sr_scan', () => h.sr_scan!({ ...base, command: 'sr_scan' } as never, f.ctx)],
      ['vdi_delete raw', () => h.vdi_delete!(vdiReq('vdi_delete', V.raw) as never, f.ctx)],
    ];
    const actual = await recordSteps(steps, norm);
    if (process.env['LVM_GOLDEN_WRITE'] === '1') writeFileSync(join(import.meta.dirname, 'fixtures', 'golden-argv.actual.json'), JSON.stringify(actual, null, 1));
    expect(actual).toEqual(golden);
  });
});
