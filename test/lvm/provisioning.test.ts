// Thick/thin provisioning of the `lvm` driver (src/sdk/lvm-sr/provisioning.ts,
// xapi's LVHD, spec §5.5): the SR's allocation mode, thin leaves inflated on RW
// attach and deflated on detach, snapshot bases deflated in both modes. Real
// smctl → LVMSR → LVM (--driverloaded n) on loop devices; LV sizes are what
// `lvs` reports; data read back by content; images checked by vhd-util / qemu-img.
import { execa } from 'execa';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { DRIVER_INFO } from '../../drivers/lvm/info.js';
import { lvmSrHandlers } from '../../src/sdk/lvm-sr/handlers.js';
import { deviceMapperAvailable } from '../../src/sdk/tools/lvm.js';
import { loopDevice } from '../ext/helpers.js';
import { scratch } from '../file-sr/helpers.js';
import { byUuid, startXapi } from './xapi.js';
import { argvNormaliser, recordSteps, type GoldenCase } from './golden.js';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { emptyVhdLvSize, thickVhdLvSize } from '../../src/sdk/formats/lv-size.js';
import { readRange, writeRange } from '../../src/sdk/formats/index.js';
import { vhdUtilPath } from '../../src/sdk/env.js';
import { measure } from '../../src/sdk/tools/qemu-img.js';
import { assertBuilt, MiB, ok, pattern, smConfig, smctl, srRecord, vdiRecord } from '../file-sr/helpers.js';
import { attach, createLvmSr, lvPath, lvSize, lvmScratch, useProcessEnv, write, type LvmScratch } from './helpers.js';

vi.setConfig({ testTimeout: 400_000 });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
beforeAll(() => assertBuilt());

const EXTENT = 4 * MiB;
const roundUp = (n: number): number => Math.ceil(n / EXTENT) * EXTENT;

async function scr(mibs?: number[]): Promise<LvmScratch> {
  const s = await lvmScratch(mibs);
  cleanups.push(s.cleanup);
  return s;
}

async function vdi(s: LvmScratch, sr: string, format: string, size = '20MiB'): Promise<string> {
  return ok(s, ['vdi-create', `sr-uuid=${sr}`, `virtual-size=${size}`, `name-label=${format}-disk`, `sm-config:image-format=${format}`]);
}

/** `vhd-util check` / `qemu-img check` on the image, through an RO attach. */
async function checkImage(s: LvmScratch, sr: string, uuid: string, format: 'vhd' | 'qcow2'): Promise<void> {
  const p = await attach(s, uuid, 'RO');
  try {
    const r = format === 'vhd' ? await execa(vhdUtilPath(), ['check', '-n', p], { reject: false }) : await execa('qemu-img', ['check', '-f', 'qcow2', p], { reject: false });
    expect(r.exitCode, `${format} check of ${p}: ${r.stdout}${r.stderr}`).toBe(0);
  } finally {
    await ok(s, ['vdi-detach', `uuid=${uuid}`]);
  }
  void sr;
}

async function physVhd(path: string): Promise<number> {
  return Number((await execa(vhdUtilPath(), ['query', '-s', '-n', path])).stdout.trim());
}

async function qcow2End(path: string): Promise<number> {
  const r = await execa('qemu-img', ['check', '-f', 'qcow2', '--output=json', path], { reject: false });
  return Number((JSON.parse(r.stdout) as Record<string, unknown>)['image-end-offset']);
}

describe('lvm provisioning: the SR allocation mode', () => {
  it('sm-config:allocation=thin is kept in the SR sm-config; default is thick (stored too); device-config:allocation works', async () => {
    const s = await scr([256, 64]);
    const thin = await createLvmSr(s, [s.loops[0]!.device], ['sm-config:allocation=thin']);
    expect(smConfig(srRecord(s, thin))['allocation']).toBe('thin');
    const v = await vdi(s, thin, 'vhd');
    expect(await lvSize(s, thin, `VHD-${v}`)).toBe(emptyVhdLvSize());
    const thick = await createLvmSr(s, [s.loops[1]!.device]);
    expect(smConfig(srRecord(s, thick))['allocation']).toBe('thick');
    const w = await vdi(s, thick, 'vhd', '8MiB');
    expect(await lvSize(s, thick, `VHD-${w}`)).toBe(thickVhdLvSize(8 * MiB));
  });

  it('a bad allocation is refused (InvalidArg naming the value and the allowed ones) before the device is touched', async () => {
    const s = await scr();
    let r = await smctl(s, ['sr-create', 'type=lvm', `device-config:device=${s.loops[0]!.device}`, 'name-label=x', 'sm-config:allocation=thinn']);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/sm-config:allocation="thinn" is not a provisioning mode; allowed: thick, thin/);
    r = await smctl(s, ['sr-create', 'type=lvm', `device-config:device=${s.loops[0]!.device}`, 'device-config:allocation=lazy', 'name-label=x']);
    expect(r.stderr).toMatch(/device-config:allocation="lazy" is not a provisioning mode; allowed: thick, thin/);
    const pv = await execa('pvs', ['--devices', s.loops[0]!.device, '--driverloaded', 'n', '--noheadings', '-o', 'pv_name'], { reject: false, env: { LVM_SUPPRESS_FD_WARNINGS: '1' } });
    expect(String(pv.stdout).trim(), 'no PV was created').toBe('');
  });
});

describe('lvm provisioning: thin SR', () => {
  it('a VHD leaf starts at 8 MiB, is inflated to the thick size on RW attach and deflated to its data on detach; scan reports the LV size', async () => {
    const s = await scr();
    const sr = await createLvmSr(s, undefined, ['sm-config:allocation=thin']);
    const v = await vdi(s, sr, 'vhd');
    const raw = await vdi(s, sr, 'raw', '8MiB');
    const lv = `VHD-${v}`;
    expect(await lvSize(s, sr, lv)).toBe(8 * MiB);
    expect(await lvSize(s, sr, `LV-${raw}`)).toBe(8 * MiB);
    await ok(s, ['sr-scan', `uuid=${sr}`]);
    expect(Number(vdiRecord(s, v)!['physical_utilisation'])).toBe(8 * MiB);
    // Inflate (v was created before raw: move raw out of the way so v's extension is contiguous, docs/lvm.md)
    await ok(s, ['vdi-destroy', `uuid=${raw}`]);
    const p = await attach(s, v);
    expect(await lvSize(s, sr, lv)).toBe(thickVhdLvSize(20 * MiB));
    await writeRange({ path: p, format: 'vhd' }, 6 * MiB, pattern(0x5a, 5 * MiB));
    await ok(s, ['vdi-detach', `uuid=${v}`]);
    // Deflated: the end of the last block + footer, in whole extents (3 blocks written).
    const after = await lvSize(s, sr, lv);
    expect(after).toBeLessThan(thickVhdLvSize(20 * MiB));
    const ro = await attach(s, v, 'RO');
    expect(after).toBe(roundUp(await physVhd(ro)));
    expect(await lvSize(s, sr, lv), 'a read-only attach does not inflate').toBe(after);
    expect((await readRange({ path: ro, format: 'vhd' }, 6 * MiB, 5 * MiB)).equals(pattern(0x5a, 5 * MiB))).toBe(true);
    await ok(s, ['vdi-detach', `uuid=${v}`]);
    await checkImage(s, sr, v, 'vhd');
    await ok(s, ['sr-scan', `uuid=${sr}`]);
    expect(Number(vdiRecord(s, v)!['physical_utilisation'])).toBe(after);
    // Attached again: inflated again, the data still there, writable past the old end.
    const p2 = await attach(s, v);
    expect(await lvSize(s, sr, lv)).toBe(thickVhdLvSize(20 * MiB));
    expect((await readRange({ path: p2, format: 'vhd' }, 6 * MiB, 5 * MiB)).equals(pattern(0x5a, 5 * MiB))).toBe(true);
    await writeRange({ path: p2, format: 'vhd' }, 18 * MiB, pattern(0x6b, 2 * MiB));
    await ok(s, ['vdi-detach', `uuid=${v}`]);
    expect(await lvSize(s, sr, lv)).toBeGreaterThan(after);
    await checkImage(s, sr, v, 'vhd');
    const p3 = await attach(s, v, 'RO');
    expect((await readRange({ path: p3, format: 'vhd' }, 18 * MiB, 2 * MiB)).equals(pattern(0x6b, 2 * MiB))).toBe(true);
    await ok(s, ['vdi-detach', `uuid=${v}`]);
  });

  it('a qcow2 leaf starts at its metadata (qemu-img measure required), inflated to the thick size on attach, deflated to qemu-img check image-end-offset on detach; raw is full size', async () => {
    const s = await scr();
    const sr = await createLvmSr(s, undefined, ['sm-config:allocation=thin']);
    const q = await vdi(s, sr, 'qcow2');
    const lv = `QCOW2-${q}`;
    const m = await measure({ targetFormat: 'qcow2', sizeBytes: 20 * MiB, options: { cluster_size: 65536 } });
    expect(await lvSize(s, sr, lv)).toBe(roundUp(m.required));
    const p = await attach(s, q);
    expect(await lvSize(s, sr, lv)).toBe(roundUp(m.fullyAllocated));
    await writeRange({ path: p, format: 'qcow2' }, 2 * MiB, pattern(0x3c, 6 * MiB));
    await ok(s, ['vdi-detach', `uuid=${q}`]);
    const after = await lvSize(s, sr, lv);
    expect(after).toBeLessThan(roundUp(m.fullyAllocated));
    const ro = await attach(s, q, 'RO');
    expect(after).toBe(roundUp(await qcow2End(ro)));
    expect((await readRange({ path: ro, format: 'qcow2' }, 2 * MiB, 6 * MiB)).equals(pattern(0x3c, 6 * MiB))).toBe(true);
    await ok(s, ['vdi-detach', `uuid=${q}`]);
    await checkImage(s, sr, q, 'qcow2');
    const r = await vdi(s, sr, 'raw', '12MiB');
    expect(await lvSize(s, sr, `LV-${r}`)).toBe(12 * MiB);
  });

  it('vdi-resize on a thin SR keeps the LV deflated (VHD: as it was; qcow2: room for a grown L1 table) beyond the VG, data intact; RW attach then inflates to the new thick size, or fails with LVMProvisionAttach when the VG is short', async () => {
    const s = await scr();
    const sr = await createLvmSr(s, undefined, ['sm-config:allocation=thin']);
    const vgBytes = Number(srRecord(s, sr)['physical_size']);
    const big = 100 * 1024 * MiB;
    // qcow2 first, alone: if its LV grows, the extension is contiguous (docs/lvm.md).
    const q = await vdi(s, sr, 'qcow2');
    await write(s, q, 'qcow2', 3 * MiB, pattern(0x47, 4 * MiB));
    const qBefore = await lvSize(s, sr, `QCOW2-${q}`);
    await ok(s, ['vdi-resize', `uuid=${q}`, `disk-size=${big}`]);
    const qAfter = await lvSize(s, sr, `QCOW2-${q}`);
    expect(qAfter).toBeLessThanOrEqual(qBefore + EXTENT);
    expect(Number(vdiRecord(s, q)!['virtual_size'])).toBe(big);
    expect(Number(vdiRecord(s, q)!['physical_utilisation'])).toBe(qAfter);
    await checkImage(s, sr, q, 'qcow2');
    const ro = await attach(s, q, 'RO');
    expect(qAfter).toBeGreaterThanOrEqual(await qcow2End(ro));
    const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', '-f', 'qcow2', ro])).stdout) as { 'virtual-size': number };
    expect(info['virtual-size']).toBe(big);
    expect((await readRange({ path: ro, format: 'qcow2' }, 3 * MiB, 4 * MiB)).equals(pattern(0x47, 4 * MiB))).toBe(true);
    await ok(s, ['vdi-detach', `uuid=${q}`]);
    // Over-provisioned: the SR's virtual allocation is beyond its size; a RW attach cannot inflate.
    await ok(s, ['sr-scan', `uuid=${sr}`]);
    expect(Number(srRecord(s, sr)['virtual_allocation'])).toBeGreaterThan(vgBytes);
    const refused = await smctl(s, ['vdi-attach', `uuid=${q}`, 'mode=RW']);
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toMatch(/LVMProvisionAttach/);
    expect(refused.stderr).toMatch(new RegExp(`QCOW2-${q}`));
    expect(await lvSize(s, sr, `QCOW2-${q}`), 'a refused inflate leaves the LV as it was').toBe(qAfter);
    await checkImage(s, sr, q, 'qcow2');
    // VHD: the BAT is preallocated for 2 TiB; only header and footer change.
    const v = await vdi(s, sr, 'vhd');
    await write(s, v, 'vhd', 12 * MiB, pattern(0x58, 4 * MiB));
    const vBefore = await lvSize(s, sr, `VHD-${v}`);
    await ok(s, ['vdi-resize', `uuid=${v}`, `disk-size=${big}`]);
    expect(await lvSize(s, sr, `VHD-${v}`)).toBe(vBefore);
    expect(Number(vdiRecord(s, v)!['virtual_size'])).toBe(big);
    await checkImage(s, sr, v, 'vhd');
    const rv = await attach(s, v, 'RO');
    expect(Number((await execa(vhdUtilPath(), ['query', '-v', '-n', rv])).stdout.trim())).toBe(big / MiB);
    expect((await readRange({ path: rv, format: 'vhd' }, 12 * MiB, 4 * MiB)).equals(pattern(0x58, 4 * MiB))).toBe(true);
    await ok(s, ['vdi-detach', `uuid=${v}`]);
    // Grown within the VG: the next RW attach inflates to the new thick size; writable at the new end.
    await ok(s, ['vdi-destroy', `uuid=${v}`]);
    const w = await vdi(s, sr, 'vhd');
    await ok(s, ['vdi-resize', `uuid=${w}`, `disk-size=${48 * MiB}`]);
    expect(await lvSize(s, sr, `VHD-${w}`)).toBe(emptyVhdLvSize());
    const pw = await attach(s, w);
    expect(await lvSize(s, sr, `VHD-${w}`)).toBe(thickVhdLvSize(48 * MiB));
    await writeRange({ path: pw, format: 'vhd' }, 46 * MiB, pattern(0x77, 2 * MiB));
    await ok(s, ['vdi-detach', `uuid=${w}`]);
    const rw = await attach(s, w, 'RO');
    expect((await readRange({ path: rw, format: 'vhd' }, 46 * MiB, 2 * MiB)).equals(pattern(0x77, 2 * MiB))).toBe(true);
    await ok(s, ['vdi-detach', `uuid=${w}`]);
    await checkImage(s, sr, w, 'vhd');
  });

  it('snapshot on a thin SR: base deflated, both leaves thin; the clone inflates on attach and reads the base data', async () => {
    const s = await scr();
    const sr = await createLvmSr(s, undefined, ['sm-config:allocation=thin']);
    const a = await vdi(s, sr, 'vhd');
    const pa = await attach(s, a);
    await writeRange({ path: pa, format: 'vhd' }, 0, pattern(0x11, 3 * MiB));
    await ok(s, ['vdi-detach', `uuid=${a}`]);
    const deflated = await lvSize(s, sr, `VHD-${a}`);
    const c = await ok(s, ['vdi-clone', `uuid=${a}`]);
    const base = String(smConfig(vdiRecord(s, a))['vhd-parent']);
    expect(await lvSize(s, sr, `VHD-${base}`)).toBe(deflated);
    expect(await lvSize(s, sr, `VHD-${a}`)).toBe(8 * MiB);
    expect(await lvSize(s, sr, `VHD-${c}`)).toBe(8 * MiB);
    const pc = await attach(s, c);
    expect(await lvSize(s, sr, `VHD-${c}`)).toBe(thickVhdLvSize(20 * MiB));
    expect((await readRange({ path: pc, format: 'vhd' }, 0, 3 * MiB)).equals(pattern(0x11, 3 * MiB))).toBe(true);
    await ok(s, ['vdi-detach', `uuid=${c}`]);
    expect(await lvSize(s, sr, `VHD-${c}`)).toBe(8 * MiB);
  });
});

describe('lvm provisioning: thick SR', () => {
  it('VHD snapshot: the base is deflated to its data (content intact, vhd-util check), the source leaf stays thick, the snapshot leaf is thin and deflated again after a RW attach', async () => {
    const s = await scr();
    const sr = await createLvmSr(s);
    const a = await vdi(s, sr, 'vhd');
    const pa = await attach(s, a);
    await writeRange({ path: pa, format: 'vhd' }, 4 * MiB, pattern(0x42, 2 * MiB));
    await ok(s, ['vdi-detach', `uuid=${a}`]);
    expect(await lvSize(s, sr, `VHD-${a}`), 'thick: no deflate on detach of a VDI that is not a snapshot').toBe(thickVhdLvSize(20 * MiB));
    const snap = await ok(s, ['vdi-snapshot', `uuid=${a}`]);
    const base = String(smConfig(vdiRecord(s, a))['vhd-parent']);
    const baseSize = await lvSize(s, sr, `VHD-${base}`);
    expect(baseSize).toBeLessThan(thickVhdLvSize(20 * MiB));
    expect(await lvSize(s, sr, `VHD-${a}`)).toBe(thickVhdLvSize(20 * MiB));
    expect(await lvSize(s, sr, `VHD-${snap}`)).toBe(8 * MiB);
    await ok(s, ['sr-scan', `uuid=${sr}`]);
    expect(Number(vdiRecord(s, base)!['physical_utilisation'])).toBe(baseSize);
    // The base's data through the leaf; the base itself checked by vhd-util.
    const pl = await attach(s, a, 'RO');
    expect(baseSize).toBe(roundUp(await physVhd(lvPath(sr, `VHD-${base}`))));
    const chk = await execa(vhdUtilPath(), ['check', '-n', lvPath(sr, `VHD-${base}`)], { reject: false });
    expect(chk.exitCode, chk.stdout + chk.stderr).toBe(0);
    expect((await readRange({ path: pl, format: 'vhd' }, 4 * MiB, 2 * MiB)).equals(pattern(0x42, 2 * MiB))).toBe(true);
    await ok(s, ['vdi-detach', `uuid=${a}`]);
    expect(vdiRecord(s, snap)!['is_a_snapshot']).toBeTruthy();
    const ps = await attach(s, snap);
    expect(await lvSize(s, sr, `VHD-${snap}`)).toBe(thickVhdLvSize(20 * MiB));
    expect((await readRange({ path: ps, format: 'vhd' }, 4 * MiB, 2 * MiB)).equals(pattern(0x42, 2 * MiB))).toBe(true);
    await ok(s, ['vdi-detach', `uuid=${snap}`]);
    expect(await lvSize(s, sr, `VHD-${snap}`), 'a snapshot is deflated on detach even on a thick SR').toBe(8 * MiB);
  });

  it('qcow2 clone: the base is deflated to qemu-img check image-end-offset (content intact, qemu-img check), both leaves thick', async () => {
    const s = await scr();
    const sr = await createLvmSr(s);
    const a = await vdi(s, sr, 'qcow2');
    const full = await lvSize(s, sr, `QCOW2-${a}`);
    const pa = await attach(s, a);
    await writeRange({ path: pa, format: 'qcow2' }, 0, pattern(0x24, 4 * MiB));
    await ok(s, ['vdi-detach', `uuid=${a}`]);
    const c = await ok(s, ['vdi-clone', `uuid=${a}`]);
    const base = String(smConfig(vdiRecord(s, a))['vhd-parent']);
    const baseSize = await lvSize(s, sr, `QCOW2-${base}`);
    expect(baseSize).toBeLessThan(full);
    expect(await lvSize(s, sr, `QCOW2-${a}`)).toBe(full);
    expect(await lvSize(s, sr, `QCOW2-${c}`)).toBe(full);
    const pc = await attach(s, c, 'RO');
    expect(baseSize).toBe(roundUp(await qcow2End(lvPath(sr, `QCOW2-${base}`))));
    const chk = await execa('qemu-img', ['check', '-f', 'qcow2', lvPath(sr, `QCOW2-${base}`)], { reject: false });
    expect(chk.exitCode, chk.stdout + chk.stderr).toBe(0);
    expect((await readRange({ path: pc, format: 'qcow2' }, 0, 4 * MiB)).equals(pattern(0x24, 4 * MiB))).toBe(true);
    await ok(s, ['vdi-detach', `uuid=${c}`]);
  });
});

// ---------------------------------------------------------------- golden argv

const GOLDEN = join(import.meta.dirname, 'fixtures', 'golden-argv-provisioning.yaml');
const SR = '7d1f9d2a-5b6e-4c7d-8e9f-0a1b2c3d4e5f';

describe('lvm provisioning: golden argv (thin SR: create, inflate on attach, deflate on detach, resize)', () => {
  it.skipIf(deviceMapperAvailable())('matches test/lvm/fixtures/golden-argv-provisioning.yaml (this host has no device-mapper)', async () => {
    const loop = await loopDevice(160);
    cleanups.push(loop.cleanup);
    const sc = scratch();
    cleanups.push(sc.cleanup);
    const restore = useProcessEnv(sc.env);
    cleanups.push(async () => restore());
    const dev = loop.device;
    const f = await startXapi();
    cleanups.push(() => f.close());
    const h = lvmSrHandlers(DRIVER_INFO);
    const base = { sr_uuid: SR, sr_ref: f.srRef, device_config: { device: dev, allocation: 'thin' }, host_ref: 'OpaqueRef:h', args: [], raw: {}, session_ref: 'OpaqueRef:s' };
    const norm = argvNormaliser(dev, SR);
    const V = { vhd: 'bbbbbbbb-0000-4000-8000-000000000001', qcow2: 'bbbbbbbb-0000-4000-8000-000000000002' };
    const create = (u: string, format: string) => ({ ...base, command: 'vdi_create', vdi_uuid: u, vdi_sm_config: { 'image-format': format }, size: 20 * MiB, name_label: format, name_description: '', metadata_of_pool: '', is_a_snapshot: false, snapshot_time: '', snapshot_of: '', read_only: false });
    const vdiReq = (command: string, u: string, extra: object = {}) => ({ ...base, command, vdi_uuid: u, vdi_location: u, vdi_ref: byUuid(f, u)?.[0] ?? '', ...extra });
    const steps: [string, () => unknown][] = [
      ['sr_create thin', () => h.sr_create!({ ...base, command: 'sr_create', size: 0 } as never, f.ctx)],
      ['sr_attach', () => h.sr_attach!({ ...base, command: 'sr_attach' } as never, f.ctx)],
      ['vdi_create vhd (thin)', () => h.vdi_create!(create(V.vhd, 'vhd') as never, f.ctx)],
      ['vdi_attach vhd RW (inflate)', () => h.vdi_attach!(vdiReq('vdi_attach', V.vhd, { writable: true }) as never, f.ctx)],
      ['vdi_detach vhd (deflate)', () => h.vdi_detach!(vdiReq('vdi_detach', V.vhd) as never, f.ctx)],
      ['vdi_create qcow2 (thin)', () => h.vdi_create!(create(V.qcow2, 'qcow2') as never, f.ctx)],
      ['vdi_attach qcow2 RW (inflate)', () => h.vdi_attach!(vdiReq('vdi_attach', V.qcow2, { writable: true }) as never, f.ctx)],
      ['vdi_detach qcow2 (deflate)', () => h.vdi_detach!(vdiReq('vdi_detach', V.qcow2) as never, f.ctx)],
      ['vdi_attach qcow2 RO (no inflate)', () => h.vdi_attach!(vdiReq('vdi_attach', V.qcow2, { writable: false }) as never, f.ctx)],
      ['vdi_detach qcow2 (not marked: nothing to deflate)', () => h.vdi_detach!(vdiReq('vdi_detach', V.qcow2) as never, f.ctx)],
      ['vdi_resize qcow2 (thin: room past image-end-offset for the L1 table)', () => h.vdi_resize!(vdiReq('vdi_resize', V.qcow2, { new_size: 64 * MiB }) as never, f.ctx)],
      ['vdi_resize vhd (thin: the LV kept)', () => h.vdi_resize!(vdiReq('vdi_resize', V.vhd, { new_size: 64 * MiB }) as never, f.ctx)],
    ];
    const actual = await recordSteps(steps, norm);
    if (process.env['LVM_GOLDEN_WRITE'] === '1') writeFileSync(GOLDEN.replace(/\.yaml$/, '.actual.json'), JSON.stringify(actual, null, 1));
    expect(actual).toEqual(parse(readFileSync(GOLDEN, 'utf8')) as GoldenCase[]);
  });
});
