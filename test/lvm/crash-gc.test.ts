// Crash safety of GC on an lvm SR: the process running a coalesce (LVMSR in
// vdi_delete) or a leaf-coalesce (bin/sm-gc) is SIGKILLed at each step
// (SM_FIST=<point>), with the real tools doing the real work. The next
// sr-scan must finish the journal from MGT; then every VDI reads back its
// data, the tools' checks accept the images, no journal is left, every record
// has its LV, only the expected LVs remain, and the VDI can be snapshotted again.
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ImageFormat } from '../../src/driver-info.js';
import { readVgLayout } from '../../src/sdk/lvm-sr/layout.js';
import { LVM_FIST_POINTS } from '../../src/sdk/lvm-sr/fist.js';
import { readMgt } from '../../src/sdk/lvm-sr/mgt.js';
import { readRange } from '../../src/sdk/formats/index.js';
import { thickVhdLvSize } from '../../src/sdk/formats/lv-size.js';
import { deviceMapperAvailable } from '../../src/sdk/tools/lvm.js';
import { assertBuilt, MiB, ok, smctl, vdiRecord, vdisOfSr } from '../file-sr/helpers.js';
import { A, expectData, LV_PREFIX, parentOf, smGc, twoSnapshotChain } from './gc-helpers.js';
import { attach, createLvmSr, write, deviceOf, lvNames, lvSize, lvmScratch, type LvmScratch } from './helpers.js';

vi.setConfig({ testTimeout: 600_000 });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
beforeAll(() => assertBuilt());

async function scr(): Promise<LvmScratch> {
  const s = await lvmScratch([320]);
  cleanups.push(s.cleanup);
  return s;
}

async function mgtOf(s: LvmScratch, sr: string) {
  const layout = await readVgLayout(`VG_XenStorage-${sr}`, { devices: [deviceOf(s)] });
  const state = readMgt(layout.lvs.get('MGT')!);
  expect(state.kind).toBe('ours');
  return state.content!;
}

/** After recovery: no journal, DB and LVs agree, MGT records only for VDIs with LVs, and a second scan changes nothing. */
async function expectConsistent(s: LvmScratch, sr: string, lvs: string[]): Promise<void> {
  await ok(s, ['sr-scan', `uuid=${sr}`]);
  const mgt = await mgtOf(s, sr);
  expect(mgt.journals).toEqual([]);
  const names = await lvNames(s, sr);
  expect(names).toEqual(['MGT', ...lvs].sort());
  const db = vdisOfSr(s, sr);
  for (const r of db) expect(names.some((n) => n.endsWith(String(r['uuid']))), `record ${String(r['uuid'])} has an LV`).toBe(true);
  for (const u of Object.keys(mgt.vdis)) expect(names.some((n) => n.endsWith(u)), `MGT record ${u} has an LV`).toBe(true);
  await ok(s, ['sr-scan', `uuid=${sr}`]);
  expect(vdisOfSr(s, sr)).toEqual(db);
}

const points = (prefix: string) => LVM_FIST_POINTS.filter((p) => p.startsWith(prefix));

describe.each(['vhd', 'qcow2'] as const)('crash during GC coalesce of a %s chain (vdi-destroy)', (format: ImageFormat) => {
  const P = LV_PREFIX[format];
  it.each(points('lvm-coalesce-'))('killed at %s: rolled forward, data intact', async (point) => {
    const s = await scr();
    const sr = await createLvmSr(s);
    const { v, s1, s2, b1, b2 } = await twoSnapshotChain(s, sr, format);
    await ok(s, ['vdi-destroy', `uuid=${s2}`]);
    const r = await smctl(s, ['vdi-destroy', `uuid=${s1}`], { SM_FIST: point });
    expect(r.exitCode, `vdi-destroy with SM_FIST=${point} should have crashed`).not.toBe(0);
    await expectConsistent(s, sr, [`${P}${b1}`, `${P}${v}`]);
    expect(parentOf(s, v)).toBe(b1);
    expect(vdiRecord(s, b2)).toBeUndefined();
    expect(vdiRecord(s, s1)).toBeUndefined();
    await expectData(s, v, format);
    await ok(s, ['vdi-snapshot', `uuid=${v}`]);
  });
});

describe.each(['vhd', 'qcow2'] as const)('crash during leaf-coalesce of a %s leaf (bin/sm-gc)', (format: ImageFormat) => {
  const P = LV_PREFIX[format];
  it.each(points('lvm-leaf-coalesce-'))('killed at %s: rolled forward, data intact', async (point) => {
    const s = await scr();
    const sr = await createLvmSr(s);
    const { v, s1, s2, b1 } = await twoSnapshotChain(s, sr, format);
    await ok(s, ['vdi-destroy', `uuid=${s2}`]);
    await ok(s, ['vdi-destroy', `uuid=${s1}`]);
    const r = await smGc(s, [sr], { SM_FIST: point });
    expect(r.exitCode, `sm-gc with SM_FIST=${point} should have crashed`).not.toBe(0);
    await expectConsistent(s, sr, [`${P}${v}`]);
    expect(parentOf(s, v)).toBeUndefined();
    expect(vdiRecord(s, b1)).toBeUndefined();
    await expectData(s, v, format);
    await ok(s, ['vdi-snapshot', `uuid=${v}`]);
  });
});

// A leaf resized past its base: GC must grow the base. Without device-mapper the
// base cannot take a split extension, so it is moved to a new contiguous LV
// (GCNEW_/GCOLD_ names while the move runs). Killed at each step, the next
// sr-scan finishes the leaf-coalesce with the base moved or back in place.
describe.skipIf(deviceMapperAvailable())('crash while GC grows a base into a new contiguous LV (no device-mapper)', () => {
  it.each(points('lvm-gc-'))('killed at %s: rolled forward, no GCNEW_/GCOLD_ LV left, data intact, the grown range usable', async (point) => {
    const s = await scr();
    const sr = await createLvmSr(s);
    const { v, s1, s2, b1 } = await twoSnapshotChain(s, sr, 'vhd');
    await ok(s, ['vdi-destroy', `uuid=${s2}`]);
    await ok(s, ['vdi-destroy', `uuid=${s1}`]);
    await ok(s, ['vdi-resize', `uuid=${v}`, 'disk-size=60MiB']);
    const r = await smGc(s, [sr], { SM_FIST: point });
    expect(r.exitCode, `sm-gc with SM_FIST=${point} should have crashed`).not.toBe(0);
    await expectConsistent(s, sr, [`VHD-${v}`]);
    expect(parentOf(s, v)).toBeUndefined();
    expect(vdiRecord(s, b1)).toBeUndefined();
    expect(await lvSize(s, sr, `VHD-${v}`)).toBe(thickVhdLvSize(60 * MiB));
    await expectData(s, v, 'vhd');
    await write(s, v, 'vhd', 59 * MiB, A);
    const p = await attach(s, v, 'RO');
    try {
      expect((await readRange({ path: p, format: 'vhd' }, 59 * MiB, MiB)).equals(A)).toBe(true);
    } finally {
      await ok(s, ['vdi-detach', `uuid=${v}`]);
    }
  });
});
