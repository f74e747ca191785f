// The `lvm` driver on this host, through the real smctl and LVMSR, on loop
// devices with real LVM. This kernel has no device-mapper: LVM runs
// metadata-only (--driverloaded n) and an LV is reached through a loop device
// over its extents (/dev/<vg>/<lv> → /dev/loopN), so data really goes to the
// LV's bytes on the PV. test/lvm/guest.test.ts repeats the data path with
// device-mapper in the test host.
import { execa } from 'execa';
import { existsSync, readlinkSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { thickVhdLvSize } from '../../src/sdk/formats/lv-size.js';
import { readRange, writeRange } from '../../src/sdk/formats/index.js';
import { readVhdHeader } from '../../src/sdk/formats/vhd-header.js';
import { readQcow2Header } from '../../src/sdk/formats/qcow2-header.js';
import { measure } from '../../src/sdk/tools/qemu-img.js';
import { pvs } from '../../src/sdk/tools/lvm.js';
import { assertBuilt, MiB, ok, pattern, smConfig, smctl, srRecord, vdiRecord, vdisOfSr } from '../file-sr/helpers.js';
import { attach, createLvmSr, deviceOf, lvNames, lvPath, lvsOf, lvmScratch, write, type LvmScratch } from './helpers.js';

// Each case runs a dozen smctl → LVMSR round trips with real LVM; on a loaded 2-core host
// that takes well over vitest's default 120 s.
vi.setConfig({ testTimeout: 400_000 });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
beforeAll(() => assertBuilt());

async function scr(mibs?: number[]): Promise<LvmScratch> {
  const s = await lvmScratch(mibs);
  cleanups.push(s.cleanup);
  return s;
}

async function vdi(s: LvmScratch, sr: string, format: string, size = '20MiB', label = `${format}-disk`): Promise<string> {
  return ok(s, ['vdi-create', `sr-uuid=${sr}`, `virtual-size=${size}`, `name-label=${label}`, `sm-config:image-format=${format}`]);
}

describe('lvm: SR commands', () => {
  it('sr-create lays out VG_XenStorage-<sr> with a 4 MiB MGT volume; probe lists it; destroy removes VG and PV', async () => {
    const s = await scr();
    const dev = deviceOf(s);
    const sr = await createLvmSr(s);
    expect(await lvNames(s, sr)).toEqual(['MGT']);
    expect((await lvsOf(s, sr))[0]!.lvSize).toBe(4 * MiB);
    const pv = await pvs({ devices: [dev] }, { devices: [dev] });
    expect(pv.map((p) => p.vgName)).toEqual([`VG_XenStorage-${sr}`]);
    // The SR numbers come from the PVs: size and used space (MGT only).
    const rec = srRecord(s, sr);
    expect(Number(rec['physical_size'])).toBe(pv[0]!.pvSize);
    expect(Number(rec['physical_utilisation'])).toBe(4 * MiB);

    const probe = await ok(s, ['sr-probe', 'type=lvm', `device-config:device=${dev}`]);
    expect(probe).toContain(`<UUID>${sr}</UUID>`);
    expect(probe).toContain(`<Devlist>${dev}</Devlist>`);

    const pbd = (await ok(s, ['pbd-list', `sr-uuid=${sr}`, 'params=uuid', '--minimal'])).trim();
    await ok(s, ['pbd-unplug', `uuid=${pbd}`]);
    await ok(s, ['sr-destroy', `uuid=${sr}`]);
    expect((await pvs({ devices: [dev] }, { devices: [dev] }).catch(() => [])).filter((p) => p.vgName !== '')).toEqual([]);
    expect(await ok(s, ['sr-probe', 'type=lvm', `device-config:device=${dev}`])).toContain('<SRlist/>');
  });

  it('sr-create over two devices makes one VG on both PVs', async () => {
    const s = await scr([128, 128]);
    const devs = [deviceOf(s, 0), deviceOf(s, 1)];
    const sr = await createLvmSr(s, devs);
    const pv = await pvs({ devices: devs }, { devices: devs });
    expect(pv.map((p) => p.vgName)).toEqual([`VG_XenStorage-${sr}`, `VG_XenStorage-${sr}`]);
    const probe = await ok(s, ['sr-probe', 'type=lvm', `device-config:device=${devs.join(',')}`]);
    expect(probe).toContain(`<Devlist>${devs.join(',')}</Devlist>`);
  });

  it('bad device-config: missing device → ConfigDeviceMissing (90); not a block device → InvalidDev (19); nothing is written', async () => {
    const s = await scr();
    let r = await smctl(s, ['sr-create', 'type=lvm', 'name-label=x']);
    expect(r.stderr).toContain('SR_BACKEND_FAILURE_90');
    r = await smctl(s, ['sr-create', 'type=lvm', 'device-config:device=/etc/hostname', 'name-label=x']);
    expect(r.stderr).toContain('SR_BACKEND_FAILURE_19');
    expect(r.stderr).toContain('/etc/hostname is not a block device');
  });

  it('sr-destroy refuses while VDIs remain (SRNotEmpty, naming the LV)', async () => {
    const s = await scr();
    const sr = await createLvmSr(s);
    const v = await vdi(s, sr, 'raw');
    const pbd = (await ok(s, ['pbd-list', `sr-uuid=${sr}`, 'params=uuid', '--minimal'])).trim();
    await ok(s, ['pbd-unplug', `uuid=${pbd}`]);
    const r = await smctl(s, ['sr-destroy', `uuid=${sr}`]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('fault 39 (SRNotEmpty)');
    expect(r.stderr).toContain(`LV-${v}`);
    expect(await lvNames(s, sr)).toEqual([`LV-${v}`, 'MGT']);
  });
});

describe('lvm: VDI create / delete', () => {
  it('vdi-create makes VHD-/QCOW2-/LV-<uuid> LVs sized as xapi sizes them, with the image written into the LV', async () => {
    const s = await scr();
    const sr = await createLvmSr(s);
    const vh = await vdi(s, sr, 'vhd');
    const qc = await vdi(s, sr, 'qcow2');
    const rw = await vdi(s, sr, 'raw');
    const lvs = new Map((await lvsOf(s, sr)).map((l) => [l.lvName, l]));
    expect(lvs.get(`VHD-${vh}`)!.lvSize).toBe(thickVhdLvSize(20 * MiB));
    const m = await measure({ targetFormat: 'qcow2', sizeBytes: 20 * MiB, options: { cluster_size: 65536 } });
    expect(lvs.get(`QCOW2-${qc}`)!.lvSize).toBe(Math.ceil(m.fullyAllocated / (4 * MiB)) * 4 * MiB);
    expect(lvs.get(`LV-${rw}`)!.lvSize).toBe(20 * MiB);
    expect(smConfig(vdiRecord(s, vh))).toMatchObject({ vdi_type: 'vhd', 'image-format': 'vhd' });
    expect(smConfig(vdiRecord(s, rw))).toMatchObject({ vdi_type: 'aio', 'image-format': 'raw' });
    expect(Number(vdiRecord(s, vh)!['virtual_size'])).toBe(20 * MiB);
    // The images are really in the LVs: read their headers through the attached paths.
    const p = await attach(s, vh);
    expect(p).toBe(lvPath(sr, `VHD-${vh}`));
    const h = readVhdHeader(p);
    expect(h).toMatchObject({ diskType: 'dynamic', currentSize: 20 * MiB, hidden: false });
    const q = await attach(s, qc);
    expect(readQcow2Header(q).virtualSize).toBe(20 * MiB);
    await ok(s, ['vdi-detach', `uuid=${vh}`]);
    await ok(s, ['vdi-detach', `uuid=${qc}`]);
  });

  it('an unsupported format is refused before anything exists (VDIType naming the value and the allowed ones); an oversize VHD is VDISize', async () => {
    const s = await scr();
    const sr = await createLvmSr(s);
    let r = await smctl(s, ['vdi-create', `sr-uuid=${sr}`, 'virtual-size=8MiB', 'name-label=x', 'sm-config:image-format=vmdk']);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/image format 'vmdk' .* supported formats: vhd, qcow2, raw/);
    r = await smctl(s, ['vdi-create', `sr-uuid=${sr}`, 'virtual-size=3TiB', 'name-label=x', 'sm-config:image-format=vhd']);
    expect(r.stderr).toMatch(/exceeds the vhd maximum of 2040 GiB/);
    r = await smctl(s, ['vdi-create', `sr-uuid=${sr}`, 'virtual-size=1GiB', 'name-label=x', 'sm-config:image-format=raw']);
    expect(r.stderr).toContain('fault 44 (SRNoSpace)');
    expect(await lvNames(s, sr)).toEqual(['MGT']);
    expect(vdisOfSr(s, sr)).toEqual([]);
  });

  it('vdi-destroy removes the LV, and is idempotent when the LV is already gone', async () => {
    const s = await scr();
    const sr = await createLvmSr(s);
    const v = await vdi(s, sr, 'vhd');
    const w = await vdi(s, sr, 'raw');
    await ok(s, ['vdi-destroy', `uuid=${v}`]);
    expect(await lvNames(s, sr)).toEqual([`LV-${w}`, 'MGT']);
    // Gone behind the driver's back: destroy still succeeds and the record goes.
    const dev = deviceOf(s);
    await execa('lvremove', ['--devices', dev, '--driverloaded', 'n', '-f', `VG_XenStorage-${sr}/LV-${w}`], { env: { LVM_SUPPRESS_FD_WARNINGS: '1' } });
    await ok(s, ['vdi-destroy', `uuid=${w}`]);
    expect(vdisOfSr(s, sr)).toEqual([]);
  });
});

describe('lvm: attach and activation refcounts', () => {
  it('attach activates the whole chain; a shared base stays active while any leaf needs it; detach deactivates', async () => {
    const s = await scr();
    const sr = await createLvmSr(s);
    const a = await vdi(s, sr, 'qcow2');
    const pa = await attach(s, a);
    await writeRange({ path: pa, format: 'qcow2' }, 0, pattern(0x31, MiB));
    await ok(s, ['vdi-detach', `uuid=${a}`]);
    expect(existsSync(pa)).toBe(false);
    const c = await ok(s, ['vdi-clone', `uuid=${a}`]);
    const base = String(smConfig(vdiRecord(s, a))['vhd-parent']);
    expect(smConfig(vdiRecord(s, c))['vhd-parent']).toBe(base);
    const baseLv = lvPath(sr, `QCOW2-${base}`);

    const pc = await attach(s, c);
    expect(existsSync(baseLv)).toBe(true);
    await attach(s, a);
    await ok(s, ['vdi-detach', `uuid=${c}`]);
    expect(existsSync(baseLv), 'base stays active while the other leaf is attached').toBe(true);
    expect(existsSync(pc)).toBe(false);
    // Both leaves see the data written before the clone, through the base.
    expect((await readRange({ path: pa, format: 'qcow2' }, 0, MiB)).equals(pattern(0x31, MiB))).toBe(true);
    await ok(s, ['vdi-detach', `uuid=${a}`]);
    expect(existsSync(baseLv)).toBe(false);
    expect(existsSync(`/dev/VG_XenStorage-${sr}`)).toBe(false);
  });

  it('pbd-unplug is refused while a VDI is attached; a hidden base cannot be attached writable', async () => {
    const s = await scr();
    const sr = await createLvmSr(s);
    const a = await vdi(s, sr, 'vhd');
    await attach(s, a);
    const pbd = (await ok(s, ['pbd-list', `sr-uuid=${sr}`, 'params=uuid', '--minimal'])).trim();
    const r = await smctl(s, ['pbd-unplug', `uuid=${pbd}`]);
    expect(r.exitCode).not.toBe(0);
    await ok(s, ['vdi-detach', `uuid=${a}`]);
    await ok(s, ['pbd-unplug', `uuid=${pbd}`]);
    expect(existsSync(`/dev/VG_XenStorage-${sr}`)).toBe(false);
  });
});

describe('lvm: snapshot, clone, resize', () => {
  it('vhd snapshot: the source LV becomes the hidden read-only base VHD-<B> (data intact), the leaf a child named VHD-<B>', async () => {
    const s = await scr();
    const sr = await createLvmSr(s);
    const a = await vdi(s, sr, 'vhd');
    await write(s, a, 'vhd', 2 * MiB, pattern(0x41, MiB));
    const snap = await ok(s, ['vdi-snapshot', `uuid=${a}`]);
    const base = String(smConfig(vdiRecord(s, a))['vhd-parent']);
    const lvs = new Map((await lvsOf(s, sr)).map((l) => [l.lvName, l]));
    expect([...lvs.keys()].sort()).toEqual([`VHD-${a}`, `VHD-${base}`, `VHD-${snap}`, 'MGT'].sort());
    expect(lvs.get(`VHD-${base}`)!.attr.readOnly).toBe(true);
    expect(vdiRecord(s, base)).toMatchObject({ managed: false, read_only: true, name_label: 'base copy' });
    expect(smConfig(vdiRecord(s, snap))['vhd-parent']).toBe(base);
    const pl = await attach(s, a);
    const leaf = readVhdHeader(pl);
    expect(leaf).toMatchObject({ diskType: 'differencing', parentName: `VHD-${base}`, currentSize: 20 * MiB });
    expect(leaf.locators.map((l) => l.stored)).toEqual([`./VHD-${base}`, `./VHD-${base}`, `./VHD-${base}`]);
    const pb = lvPath(sr, `VHD-${base}`);
    expect(readVhdHeader(pb).hidden).toBe(true);
    expect((await readRange({ path: pb, format: 'vhd' }, 2 * MiB, MiB)).equals(pattern(0x41, MiB))).toBe(true);
    await ok(s, ['vdi-detach', `uuid=${a}`]);
  });

  it('a raw VDI snapshots into the first preferred copy-on-write format over a hidden raw base (tag hidden, LV read-only)', async () => {
    const s = await scr();
    const sr = await createLvmSr(s);
    const a = await vdi(s, sr, 'raw');
    await write(s, a, 'raw', 0, pattern(0x52, MiB));
    await ok(s, ['vdi-snapshot', `uuid=${a}`]);
    const base = String(smConfig(vdiRecord(s, a))['vhd-parent']);
    const lvs = new Map((await lvsOf(s, sr)).map((l) => [l.lvName, l]));
    expect(lvs.has(`VHD-${a}`)).toBe(true);
    expect(lvs.has(`LV-${a}`)).toBe(false);
    expect(lvs.get(`LV-${base}`)!.tags).toEqual(['hidden']);
    expect(lvs.get(`LV-${base}`)!.attr.readOnly).toBe(true);
    expect(smConfig(vdiRecord(s, a))).toMatchObject({ vdi_type: 'vhd', 'image-format': 'vhd' });
    const pl = await attach(s, a);
    expect(readVhdHeader(pl)).toMatchObject({ parentName: `LV-${base}`, parentIsRaw: true });
    expect((await readRange({ path: lvPath(sr, `LV-${base}`), format: 'raw' }, 0, MiB)).equals(pattern(0x52, MiB))).toBe(true);
    await ok(s, ['vdi-detach', `uuid=${a}`]);
  });

  it('deleting the last leaf over a base removes the base too; deleting a leaf with a sibling keeps it', async () => {
    const s = await scr();
    const sr = await createLvmSr(s);
    const a = await vdi(s, sr, 'qcow2');
    const c = await ok(s, ['vdi-clone', `uuid=${a}`]);
    const base = String(smConfig(vdiRecord(s, a))['vhd-parent']);
    await ok(s, ['vdi-destroy', `uuid=${c}`]);
    expect(await lvNames(s, sr)).toEqual(['MGT', `QCOW2-${a}`, `QCOW2-${base}`].sort());
    await ok(s, ['vdi-destroy', `uuid=${a}`]);
    expect(await lvNames(s, sr)).toEqual(['MGT']);
    await ok(s, ['sr-scan', `uuid=${sr}`]);
    expect(vdisOfSr(s, sr)).toEqual([]);
  });

  it('vdi-resize grows the LV and the image; shrinking is VDISize; the hidden base cannot be resized', async () => {
    const s = await scr();
    const sr = await createLvmSr(s);
    // Each grown while its LV is the last one: without device-mapper an LV is reached
    // through one loop device, so its extension has to be contiguous (docs/lvm.md).
    const v = await vdi(s, sr, 'vhd');
    await ok(s, ['vdi-resize', `uuid=${v}`, 'disk-size=40MiB']);
    const q = await vdi(s, sr, 'qcow2');
    await ok(s, ['vdi-resize', `uuid=${q}`, 'disk-size=40MiB']);
    const lvs = new Map((await lvsOf(s, sr)).map((l) => [l.lvName, l]));
    expect(lvs.get(`VHD-${v}`)!.lvSize).toBe(thickVhdLvSize(40 * MiB));
    expect(Number(vdiRecord(s, v)!['virtual_size'])).toBe(40 * MiB);
    expect(readVhdHeader(await attach(s, v)).currentSize).toBe(40 * MiB);
    expect(readQcow2Header(await attach(s, q)).virtualSize).toBe(40 * MiB);
    await ok(s, ['vdi-detach', `uuid=${v}`]);
    await ok(s, ['vdi-detach', `uuid=${q}`]);
    const r = await smctl(s, ['vdi-resize', `uuid=${v}`, 'disk-size=10MiB']);
    expect(r.stderr).toContain('fault 79 (VDISize)');
    expect(r.stderr).toMatch(/shrinking not allowed/);
  });

  it('vdi-resize of a qcow2 leaf over a snapshot base (qemu-img resize opens the backing chain): the data read through the chain, the new size in the image', async () => {
    const s = await scr();
    const sr = await createLvmSr(s);
    const q = await vdi(s, sr, 'qcow2');
    await write(s, q, 'qcow2', 0, pattern(0x2e, MiB));
    await ok(s, ['vdi-snapshot', `uuid=${q}`]);
    // 22 MiB fits the leaf's thick LV (measured for 20 MiB, in 4 MiB extents): no lvextend here.
    await ok(s, ['vdi-resize', `uuid=${q}`, 'disk-size=22MiB']);
    expect(Number(vdiRecord(s, q)!['virtual_size'])).toBe(22 * MiB);
    const pl = await attach(s, q, 'RO');
    expect(readQcow2Header(pl).virtualSize).toBe(22 * MiB);
    expect((await readRange({ path: pl, format: 'qcow2' }, 0, MiB)).equals(pattern(0x2e, MiB))).toBe(true);
    await ok(s, ['vdi-detach', `uuid=${q}`]);
  });
});

describe('lvm: sr-scan and the MGT volume', () => {
  it('a VDI the toolstack forgot is re-introduced by sr-scan with its name from MGT; an LV removed by hand is forgotten', async () => {
    const s = await scr();
    const sr = await createLvmSr(s);
    const v = await vdi(s, sr, 'vhd', '20MiB', 'precious data');
    const w = await vdi(s, sr, 'raw', '8MiB', 'gone');
    await ok(s, ['vdi-forget', `uuid=${v}`]);
    await execa('lvremove', ['--devices', deviceOf(s), '--driverloaded', 'n', '-f', `VG_XenStorage-${sr}/LV-${w}`], { env: { LVM_SUPPRESS_FD_WARNINGS: '1' } });
    await ok(s, ['sr-scan', `uuid=${sr}`]);
    const recs = vdisOfSr(s, sr);
    expect(recs.map((r) => r['uuid'])).toEqual([v]);
    expect(recs[0]).toMatchObject({ name_label: 'precious data', virtual_size: 20 * MiB });
  });
});

describe('lvm: crash at every step of snapshot and resize leaves a consistent SR', () => {
  const SNAP_POINTS = ['lvm-snapshot-journal', 'lvm-snapshot-rename', 'lvm-snapshot-leaf', 'lvm-snapshot-clone', 'lvm-snapshot-hide', 'lvm-snapshot-mgt'];
  for (const point of SNAP_POINTS) {
    it(`vdi-clone killed at ${point}: after sr-scan the source's data is intact and every record has its LV`, async () => {
      const s = await scr();
      const sr = await createLvmSr(s);
      const a = await vdi(s, sr, 'qcow2');
      await write(s, a, 'qcow2', 0, pattern(0x77, MiB));
      const r = await smctl(s, ['vdi-clone', `uuid=${a}`], { SM_FIST: point });
      expect(r.exitCode, `vdi-clone with SM_FIST=${point} should have crashed`).not.toBe(0);
      await ok(s, ['sr-scan', `uuid=${sr}`]);
      const names = await lvNames(s, sr);
      const recs = vdisOfSr(s, sr);
      for (const rec of recs) expect(names.some((n) => n.endsWith(String(rec['uuid']))), `record ${String(rec['uuid'])} has an LV`).toBe(true);
      // Before the commit point: rolled back to the single original LV; after: one base + the source leaf.
      const rolledBack = ['lvm-snapshot-journal', 'lvm-snapshot-rename'].includes(point);
      expect(names.length).toBe(rolledBack ? 2 : 3);
      expect(names).toContain(`QCOW2-${a}`);
      const pl = await attach(s, a);
      expect((await readRange({ path: pl, format: 'qcow2' }, 0, MiB)).equals(pattern(0x77, MiB))).toBe(true);
      await ok(s, ['vdi-detach', `uuid=${a}`]);
      // The SR works afterwards: a new clone succeeds.
      await ok(s, ['vdi-clone', `uuid=${a}`]);
    });
  }

  for (const point of ['lvm-resize-journal', 'lvm-resize-extend', 'lvm-resize-image']) {
    it(`vdi-resize killed at ${point}: the next command finishes or undoes it`, async () => {
      const s = await scr();
      const sr = await createLvmSr(s);
      const v = await vdi(s, sr, 'vhd');
      const r = await smctl(s, ['vdi-resize', `uuid=${v}`, 'disk-size=40MiB'], { SM_FIST: point });
      expect(r.exitCode).not.toBe(0);
      await ok(s, ['sr-scan', `uuid=${sr}`]);
      const lv = (await lvsOf(s, sr)).find((l) => l.lvName === `VHD-${v}`)!;
      const size = readVhdHeader(await attach(s, v)).currentSize;
      await ok(s, ['vdi-detach', `uuid=${v}`]);
      if (point === 'lvm-resize-image') {
        expect(size).toBe(40 * MiB);
      } else {
        expect(size).toBe(20 * MiB);
        expect(lv.lvSize).toBe(thickVhdLvSize(20 * MiB));
      }
      expect(Number(vdiRecord(s, v)!['virtual_size'])).toBe(size);
      await ok(s, ['vdi-resize', `uuid=${v}`, 'disk-size=60MiB']);
    });
  }
});

describe('lvm: no activation leaks', () => {
  it('every attach/detach pair leaves no loop device and no /dev node behind', async () => {
    const s = await scr();
    const sr = await createLvmSr(s);
    const v = await vdi(s, sr, 'vhd');
    const p = await attach(s, v);
    const loop = readlinkSync(p);
    await ok(s, ['vdi-detach', `uuid=${v}`]);
    const { stdout } = await execa('losetup', ['--list', '--noheadings', '--output', 'NAME']);
    expect(String(stdout).split('\n').map((l) => l.trim())).not.toContain(loop);
  });
});
