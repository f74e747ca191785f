// In-process tests of the lvm handlers with a stand-in XenAPI:
//  * layout compatibility: a VG laid out exactly as xapi's LVHDSR lays it out
//    (names, tags, read-only bases, a journal LV, an MGT in xapi's own
//    encoding) attaches and scans with ours, and the foreign MGT is untouched;
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

const MiB = 1024 * 1024;
const SR = '3c1f9d2a-5b6e-4c7d-8e9f-0a1b2c3d4e5f';
const VG = `VG_XenStorage-${SR}`;
const U = {
  plain: '11111111-2222-4333-8444-555555555555',
  raw: '22222222-3333-4444-8555-666666666666',
  base: '33333333-4444-4555-8666-777777777777',
  leaf: '44444444-5555-4666-8777-888888888888',
  gone: '55555555-6666-4777-8888-999999999999',
};

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
  it('introduces VHD, raw, base (managed=false) and leaf with vhd-parent; skips the hidden leaf, the journal LV and MGT; leaves xapi MGT untouched, and refuses machine data only MGT could hold', async () => {
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
    await execa(vhdUtilPath(), ['set', '-n', vhd(`VHD-${U.gone}`), '-f', 'hidden', '-v', '1']);
    const size = String(thickVhdLvSize(20 * MiB) / MiB);

    await lvm('pvcreate', '-ff', '-y', '--metadatasize', '10M', dev);
    await lvm('vgcreate', '--metadatasize', '10M', VG, dev);
    await lvm('lvcreate', '-n', 'MGT', '-L', '4M', VG, '--zero', 'n', '--activate', 'n');
    for (const u of [U.plain, U.base, U.leaf, U.gone]) await lvm('lvcreate', '-n', `VHD-${u}`, '-L', `${size}M`, VG, '--zero', 'n', '--activate', 'n');
    await lvm('lvcreate', '-n', `LV-${U.raw}`, '-L', '8M', VG, '--zero', 'n', '--activate', 'n');
    await lvm('lvcreate', '-n', `inflate_${U.plain}_8388608`, '-L', '4M', VG, '--addtag', 'journaler', '--zero', 'n', '--activate', 'n');
    await lvm('lvchange', '-p', 'r', `${VG}/VHD-${U.base}`);
    for (const u of [U.plain, U.base, U.leaf, U.gone]) await writeIntoLv(dev, `VHD-${u}`, vhd(`VHD-${u}`));
    const xml = join(d, 'mgt');
    writeFileSync(xml, Buffer.concat([Buffer.from('<?xml version="1.0" ?>\n<header><version>1.0</version><length>1024</length></header>'), Buffer.alloc(4 * MiB - 84)]));
    await writeIntoLv(dev, 'MGT', xml);
    const mgtBefore = await lvmBytes(dev, 'MGT');

    const f = await startXapi();
    cleanups.push(() => f.close());
    const h = lvmSrHandlers(DRIVER_INFO);
    const base = { sr_uuid: SR, sr_ref: f.srRef, device_config: { device: dev }, host_ref: 'OpaqueRef:h', args: [], raw: {} };
    await h.sr_attach!({ ...base, command: 'sr_attach' } as unknown as RequestMap['sr_attach'], f.ctx);
    await h.sr_scan!({ ...base, command: 'sr_scan' } as unknown as RequestMap['sr_scan'], f.ctx);

    const uuids = [...f.vdis().values()].map((r) => r['uuid']).sort();
    expect(uuids).toEqual([U.plain, U.raw, U.base, U.leaf].sort());
    expect(byUuid(f, U.plain)![1]).toMatchObject({ managed: true, read_only: false, virtual_size: String(20 * MiB), sm_config: { vdi_type: 'vhd' } });
    expect(byUuid(f, U.raw)![1]).toMatchObject({ virtual_size: String(8 * MiB), sm_config: { vdi_type: 'aio' } });
    expect(byUuid(f, U.base)![1]).toMatchObject({ managed: false, read_only: true });
    expect(byUuid(f, U.leaf)![1]).toMatchObject({ managed: true, read_only: false, sm_config: { 'vhd-parent': U.base } });

    // Our own change (a new VDI) works on such an SR; xapi's MGT stays as xapi wrote it.
    await h.vdi_create!({ ...base, command: 'vdi_create', vdi_uuid: '66666666-7777-4888-8999-000000000000', vdi_sm_config: {}, size: 8 * MiB, name_label: 'ours', name_description: '', metadata_of_pool: '', is_a_snapshot: false, snapshot_time: '', snapshot_of: '', read_only: false } as unknown as RequestMap['vdi_create'], f.ctx);
    expect((await lvmBytes(dev, 'MGT')).equals(mgtBefore)).toBe(true);
    // Machine data too long for LV tags would need MGT: refused by name, nothing made.
    const long = JSON.stringify({ 'com.example.blob': 'x'.repeat(3000) });
    const lvsBefore = (await lvm('lvs', '--noheadings', '-o', 'lv_name', VG)).trim();
    await expect(
      h.vdi_create!({ ...base, command: 'vdi_create', vdi_uuid: '77777777-8888-4999-8aaa-bbbbbbbbbbbb', vdi_sm_config: { 'image-meta': long }, size: 8 * MiB, name_label: 'long', name_description: '', metadata_of_pool: '', is_a_snapshot: false, snapshot_time: '', snapshot_of: '', read_only: false } as unknown as RequestMap['vdi_create'], f.ctx),
    ).rejects.toThrow(/MGT volume of SR .* is in another driver's encoding, so it cannot hold it/);
    expect((await lvm('lvs', '--noheadings', '-o', 'lv_name', VG)).trim()).toBe(lvsBefore);
    expect((await lvmBytes(dev, 'MGT')).equals(mgtBefore)).toBe(true);
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
