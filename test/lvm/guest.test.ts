// The `lvm` driver with device-mapper: inside the test host (one boot for the
// whole file). LVs are activated with lvchange -ay (reference counted), data is
// written and read back through /dev/<vg>/<lv>, and activation state is checked
// with lvs. The second case inflates a thin LV where it must be split across
// the PV (no loop-device stand-in), and deflates it, with data read back; the
// third runs qcow2 GC where LV permissions are enforced (a loop device over the
// PV ignores them). On this host it is one test that boots the guest and reports
// every guest case.
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readRange, writeRange } from '../../src/sdk/formats/index.js';
import { readVhdHeader } from '../../src/sdk/formats/vhd-header.js';
import { deviceMapperAvailable } from '../../src/sdk/tools/lvm.js';
import { describeInTestHost } from '../../src/testhost/vitest.js';
import { assertBuilt, MiB, ok, pattern, smConfig, smctl, vdiRecord } from '../file-sr/helpers.js';
import { thickVhdLvSize } from '../../src/sdk/formats/lv-size.js';
import * as vhdUtil from '../../src/sdk/tools/vhd-util.js';
import { A, expectData, smGc, twoSnapshotChain } from './gc-helpers.js';
import { attach as attachLv, createLvmSr, lvNames, lvSize, lvsOf, lvmScratch, type LvmScratch } from './helpers.js';

const GUEST_CASE_MS = 900_000;

describeInTestHost('lvm SR in the test host (device-mapper)', import.meta.url, () => {
  const scratches: LvmScratch[] = [];
  beforeAll(() => assertBuilt());
  afterAll(async () => {
    for (const s of scratches) await s.cleanup();
  });

  async function attach(s: LvmScratch, uuid: string): Promise<string> {
    const out = await ok(s, ['vdi-attach', `uuid=${uuid}`]);
    return /params \( RO\)\s*: (\S+)/.exec(out)![1]!;
  }
  async function active(s: LvmScratch, sr: string, lv: string): Promise<boolean> {
    const rec = (await lvsOf(s, sr)).find((l) => l.lvName === lv);
    return rec?.attr.active === true;
  }

  it('vhd, qcow2 and raw VDIs: data through /dev/<vg>/<lv>, snapshot and clone keep it, shared bases stay active while a leaf needs them', { timeout: GUEST_CASE_MS }, async () => {
    expect(deviceMapperAvailable()).toBe(true);
    // Thick provisioning: every LV below (bases included) keeps its full size.
    const s = await lvmScratch([512]);
    scratches.push(s);
    const sr = await createLvmSr(s);
    const vg = `VG_XenStorage-${sr}`;
    const ids: Record<string, string> = {};
    for (const f of ['vhd', 'qcow2', 'raw'] as const) {
      ids[f] = await ok(s, ['vdi-create', `sr-uuid=${sr}`, 'virtual-size=20MiB', `name-label=${f}`, `sm-config:image-format=${f}`]);
      // Created, written and left inactive.
      expect(await active(s, sr, `${f === 'vhd' ? 'VHD' : f === 'qcow2' ? 'QCOW2' : 'LV'}-${ids[f]}`)).toBe(false);
    }
    for (const f of ['vhd', 'qcow2', 'raw'] as const) {
      const p = await attach(s, ids[f]!);
      expect(p.startsWith(`/dev/${vg}/`)).toBe(true);
      await writeRange({ path: p, format: f }, MiB, pattern(f.length, MiB));
      await ok(s, ['vdi-detach', `uuid=${ids[f]}`]);
      expect(existsSync(p)).toBe(false);
    }
    // qcow2 clone: both leaves read the data through the shared base.
    const clone = await ok(s, ['vdi-clone', `uuid=${ids['qcow2']}`]);
    const base = String(smConfig(vdiRecord(s, clone))['vhd-parent']);
    const pa = await attach(s, ids['qcow2']!);
    const pc = await attach(s, clone);
    for (const p of [pa, pc]) expect((await readRange({ path: p, format: 'qcow2' }, MiB, MiB)).equals(pattern(5, MiB))).toBe(true);
    await ok(s, ['vdi-detach', `uuid=${clone}`]);
    expect(await active(s, sr, `QCOW2-${base}`), 'base stays active for the other leaf').toBe(true);
    expect((await readRange({ path: pa, format: 'qcow2' }, MiB, MiB)).equals(pattern(5, MiB))).toBe(true);
    await ok(s, ['vdi-detach', `uuid=${ids['qcow2']}`]);
    expect(await active(s, sr, `QCOW2-${base}`)).toBe(false);

    // vhd snapshot: the base holds the data, the leaf names VHD-<base> as its parent.
    await ok(s, ['vdi-snapshot', `uuid=${ids['vhd']}`]);
    const vbase = String(smConfig(vdiRecord(s, ids['vhd']!))['vhd-parent']);
    const pl = await attach(s, ids['vhd']!);
    expect(readVhdHeader(pl)).toMatchObject({ parentName: `VHD-${vbase}`, diskType: 'differencing' });
    const pb = `/dev/${vg}/VHD-${vbase}`;
    expect(readVhdHeader(pb).hidden).toBe(true);
    expect((await readRange({ path: pb, format: 'vhd' }, MiB, MiB)).equals(pattern(3, MiB))).toBe(true);
    await ok(s, ['vdi-detach', `uuid=${ids['vhd']}`]);

    // raw snapshot into vhd over a hidden raw base that keeps the data.
    await ok(s, ['vdi-snapshot', `uuid=${ids['raw']}`]);
    const rbase = String(smConfig(vdiRecord(s, ids['raw']!))['vhd-parent']);
    await attach(s, ids['raw']!);
    expect((await readRange({ path: `/dev/${vg}/LV-${rbase}`, format: 'raw' }, MiB, MiB)).equals(pattern(3, MiB))).toBe(true);
    await ok(s, ['vdi-detach', `uuid=${ids['raw']}`]);

    // Resize of the offline vhd leaf, then a clean scan; nothing is left active.
    await ok(s, ['vdi-resize', `uuid=${ids['vhd']}`, 'disk-size=40MiB']);
    await ok(s, ['sr-scan', `uuid=${sr}`]);
    expect((await lvsOf(s, sr)).filter((l) => l.attr.active === true).map((l) => l.lvName)).toEqual([]);
    const pbd = (await ok(s, ['pbd-list', `sr-uuid=${sr}`, 'params=uuid', '--minimal'])).trim();
    await ok(s, ['pbd-unplug', `uuid=${pbd}`]);
    const r = await smctl(s, ['sr-destroy', `uuid=${sr}`]);
    expect(r.stderr).toContain('SRNotEmpty');
  });

  it('thin SR: an inflate split across the PV works (the LV in two segments, data at both ends), deflate gives it back; nothing is left active', { timeout: GUEST_CASE_MS }, async () => {
    expect(deviceMapperAvailable()).toBe(true);
    const s = await lvmScratch([512]);
    scratches.push(s);
    const sr = await createLvmSr(s, undefined, ['sm-config:allocation=thin']);
    const vg = `VG_XenStorage-${sr}`;
    // X is created right after V, so V's inflate cannot be contiguous.
    const v = await ok(s, ['vdi-create', `sr-uuid=${sr}`, 'virtual-size=40MiB', 'name-label=split', 'sm-config:image-format=vhd']);
    const x = await ok(s, ['vdi-create', `sr-uuid=${sr}`, 'virtual-size=20MiB', 'name-label=after', 'sm-config:image-format=vhd']);
    expect(await lvSize(s, sr, `VHD-${v}`)).toBe(8 * MiB);
    const p = await attachLv(s, v);
    expect(await lvSize(s, sr, `VHD-${v}`)).toBe(thickVhdLvSize(40 * MiB));
    const split = (await execa('lvs', ['--devices', s.loops[0]!.device, '--noheadings', '-o', 'seg_start_pe', `${vg}/VHD-${v}`])).stdout.trim().split(/\s+/);
    expect(split.length, 'the inflated LV is in more than one segment').toBeGreaterThan(1);
    await writeRange({ path: p, format: 'vhd' }, 0, A);
    await writeRange({ path: p, format: 'vhd' }, 38 * MiB, A);
    await ok(s, ['vdi-detach', `uuid=${v}`]);
    const deflated = await lvSize(s, sr, `VHD-${v}`);
    expect(deflated).toBeLessThan(thickVhdLvSize(40 * MiB));
    const ro = await attachLv(s, v, 'RO');
    for (const off of [0, 38 * MiB]) expect((await readRange({ path: ro, format: 'vhd' }, off, MiB)).equals(A)).toBe(true);
    expect((await vhdUtil.check({ path: ro })).status).toBe('valid');
    await ok(s, ['vdi-detach', `uuid=${v}`]);
    await ok(s, ['vdi-destroy', `uuid=${x}`]);
    await ok(s, ['sr-scan', `uuid=${sr}`]);
    expect((await lvsOf(s, sr)).filter((l) => l.attr.active === true).map((l) => l.lvName)).toEqual([]);
  });

  it('qcow2 GC on a thin SR: vdi-destroy coalesces (qemu-img commit needs the read-only hidden LV writable), sm-gc leaf-coalesces a leaf grown past its base in place; data read back, qemu-img check clean', { timeout: GUEST_CASE_MS }, async () => {
    const s = await lvmScratch([512]);
    scratches.push(s);
    const sr = await createLvmSr(s, undefined, ['sm-config:allocation=thin']);
    const c = await twoSnapshotChain(s, sr, 'qcow2');
    await ok(s, ['vdi-destroy', `uuid=${c.s2}`]);
    await ok(s, ['vdi-destroy', `uuid=${c.s1}`]);
    expect(await lvNames(s, sr), 'vdi-destroy merged B2 into B1').toEqual(['MGT', `QCOW2-${c.b1}`, `QCOW2-${c.v}`].sort());
    await expectData(s, c.v, 'qcow2');
    await ok(s, ['vdi-resize', `uuid=${c.v}`, 'disk-size=60MiB']);
    const baseLv = (await lvsOf(s, sr)).find((l) => l.lvName === `QCOW2-${c.b1}`)!;
    const r = await smGc(s, [sr]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('leaf-coalesced 1');
    // The base LV itself (same lv_uuid) grew and took the leaf's name: not copied to a new LV.
    const merged = (await lvsOf(s, sr)).filter((l) => l.lvName !== 'MGT');
    expect(merged.map((l) => [l.lvName, l.lvUuid])).toEqual([[`QCOW2-${c.v}`, baseLv.lvUuid]]);
    expect(merged[0]!.lvSize).toBeGreaterThan(baseLv.lvSize);
    await expectData(s, c.v, 'qcow2');
    const p = await attachLv(s, c.v);
    await writeRange({ path: p, format: 'qcow2' }, 59 * MiB, A);
    expect((await readRange({ path: p, format: 'qcow2' }, 59 * MiB, MiB)).equals(A)).toBe(true);
    await ok(s, ['vdi-detach', `uuid=${c.v}`]);
    await ok(s, ['sr-scan', `uuid=${sr}`]);
    expect((await lvsOf(s, sr)).filter((l) => l.attr.active === true).map((l) => l.lvName)).toEqual([]);
  });
}, 1_800_000);
