// LVM wrappers against real LVM metadata on sparse loop devices. Every command is
// scoped with --devices to the test's own loop devices, so the host's other
// volume groups are never seen or touched. On a kernel without device-mapper the
// wrappers add --driverloaded n by themselves (auto-detect).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as lvm from '../../src/sdk/tools/lvm.js';
import { ToolError, recordToolCalls } from '../../src/sdk/tools/run.js';
import { createLoopDevice, type LoopDevice } from '../helpers/loop.js';

const MiB = 1024 * 1024;
const VG = `smapits_t${process.pid}`;
const VG_OTHER = `smapits_o${process.pid}`;
let disk: LoopDevice;
let other: LoopDevice;
let scope: lvm.LvmScope;
let otherScope: lvm.LvmScope;

async function seqno(): Promise<number> {
  const [vg] = await lvm.vgs({ vg: VG }, scope);
  if (!vg) throw new Error(`VG ${VG} not found`);
  return vg.seqno;
}

async function lvByName(name: string): Promise<lvm.LvRecord | undefined> {
  return (await lvm.lvs({ vg: VG }, scope)).find((l) => l.lvName === name);
}

beforeAll(async () => {
  disk = await createLoopDevice(256 * MiB);
  other = await createLoopDevice(64 * MiB);
  scope = { devices: [disk.device] };
  otherScope = { devices: [other.device] };
});

afterAll(async () => {
  // Best effort: remove whatever a failed test left, then detach.
  for (const [vg, s, d] of [[VG, scope, disk], [VG_OTHER, otherScope, other]] as const) {
    if (!d) continue;
    await lvm.vgremove({ vg, force: true }, s).catch(() => undefined);
    await lvm.pvremove({ devices: [d.device] }, s).catch(() => undefined);
    await d.detach();
  }
});

describe('lvm (real, loop devices)', () => {
  it('pvcreate + vgcreate: pvs and vgs report the new PV and VG', async () => {
    const rec = recordToolCalls();
    try {
      await lvm.pvcreate({ devices: [disk.device] }, scope);
      await lvm.vgcreate({ vg: VG, devices: [disk.device] }, scope);
    } finally {
      rec.stop();
    }
    for (const argv of rec.argvs()) expect(argv.slice(1, 3)).toEqual(['--devices', disk.device]);

    const [pv] = await lvm.pvs({ devices: [disk.device] }, scope);
    expect(pv).toMatchObject({ pvName: disk.device, vgName: VG });
    expect(pv!.peStart).toBeGreaterThanOrEqual(10 * MiB); // --metadatasize 10M
    const [vg] = await lvm.vgs({ vg: VG }, scope);
    expect(vg).toMatchObject({ vgName: VG, pvCount: 1, lvCount: 0, extentSize: 4 * MiB, tags: [] });
    expect(vg!.vgSize).toBeGreaterThan(200 * MiB);
    expect(vg!.vgFree).toBe(vg!.vgSize);
  });

  it('--devices scoping: a VG on another device is invisible', async () => {
    await lvm.pvcreate({ devices: [other.device] }, otherScope);
    await lvm.vgcreate({ vg: VG_OTHER, devices: [other.device] }, otherScope);
    expect((await lvm.vgs({}, scope)).map((v) => v.vgName)).toEqual([VG]);
    expect((await lvm.vgs({}, otherScope)).map((v) => v.vgName)).toEqual([VG_OTHER]);
    await expect(lvm.lvs({ vg: VG_OTHER }, scope)).rejects.toBeInstanceOf(ToolError);
    await lvm.vgremove({ vg: VG_OTHER }, otherScope);
    await lvm.pvremove({ devices: [other.device] }, otherScope);
  });

  it('lvcreate with tags: lvs shows names, sizes (rounded to extents) and tags', async () => {
    await lvm.lvcreate({ vg: VG, name: 'VHD-one', sizeBytes: 8 * MiB, tags: ['a', 'b'] }, scope);
    await lvm.lvcreate({ vg: VG, name: 'journal_x', sizeBytes: 5 * MiB, tags: ['journaler'], activate: false }, scope);
    const lvs = await lvm.lvs({ vg: VG }, scope);
    expect(lvs.map((l) => [l.lvName, l.vgName, l.lvSize, l.tags])).toEqual([
      ['VHD-one', VG, 8 * MiB, ['a', 'b']],
      ['journal_x', VG, 8 * MiB, ['journaler']],
    ]);
    for (const l of lvs) {
      expect(l.attr.raw).toMatch(/^-w/);
      expect(l.attr.readOnly).toBe(false);
      expect(l.lvUuid).toMatch(/^[\w-]{38}$/);
    }
    if (!lvm.deviceMapperAvailable()) expect(lvs[0]!.attr.active).toBeNull(); // 'X': unknown without dm
  });

  it('lvchange adds and deletes tags in ONE metadata commit (vg_seqno +1)', async () => {
    const before = await seqno();
    const rec = recordToolCalls();
    try {
      await lvm.lvchange({ vg: VG, name: 'VHD-one', addTags: ['hidden'], delTags: ['a'] }, scope);
    } finally {
      rec.stop();
    }
    expect(rec.argvs().filter((a) => a[0] === 'lvchange')).toHaveLength(1);
    expect(await seqno()).toBe(before + 1);
    expect((await lvByName('VHD-one'))?.tags).toEqual(['b', 'hidden']);
  });

  it('lvchange -p r makes the LV read-only (lv_attr char 2)', async () => {
    await lvm.lvchange({ vg: VG, name: 'VHD-one', permission: 'r' }, scope);
    expect((await lvByName('VHD-one'))?.attr.readOnly).toBe(true);
    await lvm.lvchange({ vg: VG, name: 'VHD-one', permission: 'rw' }, scope);
    expect((await lvByName('VHD-one'))?.attr.readOnly).toBe(false);
  });

  it('lvrename', async () => {
    await lvm.lvrename({ vg: VG, from: 'VHD-one', to: 'VHD-two' }, scope);
    expect((await lvm.lvs({ vg: VG }, scope)).map((l) => l.lvName).sort()).toEqual(['VHD-two', 'journal_x']);
  });

  it('lvresize / lvextend grow the LV; segments give the PV extent ranges', async () => {
    await lvm.lvresize({ vg: VG, name: 'VHD-two', sizeBytes: 16 * MiB }, scope);
    expect((await lvByName('VHD-two'))?.lvSize).toBe(16 * MiB);
    await lvm.lvextend({ vg: VG, name: 'VHD-two', sizeBytes: 24 * MiB }, scope);
    const [lv] = await lvm.lvs({ vg: VG, name: 'VHD-two', segments: true }, scope);
    expect(lv?.lvSize).toBe(24 * MiB);
    // VHD-two got extents 0-1, journal_x 2-3, then the growth: two segments.
    expect(lv?.segments).toEqual([
      { startExtent: 0, peRanges: [`${disk.device}:0-1`] },
      { startExtent: 2, peRanges: [`${disk.device}:4-7`] },
    ]);
    await expect(lvm.lvresize({ vg: VG, name: 'VHD-two', sizeBytes: 8 * MiB }, scope)).rejects.toThrow(
      /smaller than the current 25165824 bytes; pass allowShrink/,
    );
    expect((await lvByName('VHD-two'))?.lvSize).toBe(24 * MiB);
    await lvm.lvresize({ vg: VG, name: 'VHD-two', sizeBytes: 8 * MiB, allowShrink: true }, scope);
    expect((await lvByName('VHD-two'))?.lvSize).toBe(8 * MiB);
  });

  it('lvremove, vgremove, pvremove leave nothing behind', async () => {
    await lvm.lvremove({ vg: VG, name: 'VHD-two' }, scope);
    await lvm.lvremove({ vg: VG, name: 'journal_x' }, scope);
    expect(await lvm.lvs({ vg: VG }, scope)).toEqual([]);
    await lvm.vgremove({ vg: VG }, scope);
    const err = (await lvm.vgs({ vg: VG }, scope).catch((e: unknown) => e)) as ToolError;
    expect(err).toBeInstanceOf(ToolError);
    expect(err.exitCode).toBe(5);
    expect(err.message).toContain(`Volume group "${VG}" not found`);
    await lvm.pvremove({ devices: [disk.device] }, scope);
    expect(await lvm.pvs({}, scope)).toEqual([]);
  });
});
