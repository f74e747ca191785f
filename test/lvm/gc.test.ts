// GC and coalesce on an lvm SR (src/sdk/lvm-sr/gc.ts), through the real smctl,
// LVMSR and bin/sm-gc, with real LVM (--driverloaded n), loop devices over the
// LVs' extents and the real vhd-util / qemu-img. Data is proven by content:
// patterns written before and after snapshots read back the same after the
// merge, the tools' own checks accept the merged images, and the LVs go.
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { readVhdHeader } from '../../src/sdk/formats/vhd-header.js';
import { readRange } from '../../src/sdk/formats/index.js';
import { thickVhdLvSize } from '../../src/sdk/formats/lv-size.js';
import { readQcow2Header } from '../../src/sdk/formats/qcow2-header.js';
import { assertBuilt, MiB, ok, smctl, vdiRecord, vdisOfSr } from '../file-sr/helpers.js';
import { A, expectData, LV_PREFIX, parentOf, smGc, twoSnapshotChain } from './gc-helpers.js';
import { attach, createLvmSr, detach, write, lvNames, lvPath, lvsOf, lvmScratch, type LvmScratch } from './helpers.js';

vi.setConfig({ testTimeout: 400_000 });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
beforeAll(() => assertBuilt());

async function gcScratch(): Promise<LvmScratch> {
  const s = await lvmScratch([320]);
  cleanups.push(s.cleanup);
  return s;
}

describe.each(['vhd', 'qcow2'] as const)('lvm GC of a %s chain', (format) => {
  const P = LV_PREFIX[format];

  it('vdi-destroy coalesces a hidden single-child node into its parent: data intact, tool check clean, one LV fewer', async () => {
    const s = await gcScratch();
    const sr = await createLvmSr(s);
    const { v, s1, s2, b1, b2 } = await twoSnapshotChain(s, sr, format);
    await ok(s, ['vdi-destroy', `uuid=${s2}`]);
    // B2's parent B1 still has S1: nothing to merge yet.
    expect(await lvNames(s, sr)).toEqual(['MGT', `${P}${b1}`, `${P}${b2}`, `${P}${s1}`, `${P}${v}`].sort());
    await ok(s, ['vdi-destroy', `uuid=${s1}`]);
    expect(await lvNames(s, sr)).toEqual(['MGT', `${P}${b1}`, `${P}${v}`].sort());
    // V now reads from B1 directly, named as snapshot names parents.
    const pv = await attach(s, v);
    if (format === 'vhd') {
      const h = readVhdHeader(pv);
      expect(h.parentName).toBe(`VHD-${b1}`);
      expect(h.locators.map((l) => l.stored)).toEqual([`./VHD-${b1}`, `./VHD-${b1}`, `./VHD-${b1}`]);
    } else {
      expect(readQcow2Header(pv).backingFile).toBe(lvPath(sr, `QCOW2-${b1}`));
    }
    await detach(s, v);
    await expectData(s, v, format);
    // The base stays a read-only hidden base; the records follow without a scan.
    const base = (await lvsOf(s, sr)).find((l) => l.lvName === `${P}${b1}`)!;
    expect(base.attr.readOnly).toBe(true);
    expect(parentOf(s, v)).toBe(b1);
    expect(vdiRecord(s, b2)).toBeUndefined();
    await ok(s, ['sr-scan', `uuid=${sr}`]);
    expect(vdisOfSr(s, sr).map((r) => String(r['uuid'])).sort()).toEqual([b1, v].sort());
    // The SR keeps working: a snapshot of the merged chain.
    await ok(s, ['vdi-snapshot', `uuid=${v}`]);
  });

  it('bin/sm-gc leaf-coalesces a detached leaf into its only-child base: the base LV takes the leaf\'s name, visible and writable', async () => {
    const s = await gcScratch();
    const sr = await createLvmSr(s);
    const { v, s1, s2, b1 } = await twoSnapshotChain(s, sr, format);
    await ok(s, ['vdi-destroy', `uuid=${s2}`]);
    await ok(s, ['vdi-destroy', `uuid=${s1}`]);
    const r = await smGc(s, [sr]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('removed 0, coalesced 0, leaf-coalesced 1');
    expect(await lvNames(s, sr)).toEqual(['MGT', `${P}${v}`]);
    const lv = (await lvsOf(s, sr)).find((l) => l.lvName === `${P}${v}`)!;
    expect(lv.attr.readOnly).toBe(false);
    const p = await attach(s, v);
    if (format === 'vhd') expect(readVhdHeader(p)).toMatchObject({ hidden: false, diskType: 'dynamic' });
    else expect(readQcow2Header(p)).toMatchObject({ hidden: false, backingFile: null });
    await detach(s, v);
    await expectData(s, v, format);
    await ok(s, ['sr-scan', `uuid=${sr}`]);
    expect(vdisOfSr(s, sr).map((x) => String(x['uuid']))).toEqual([v]);
    expect(parentOf(s, v)).toBeUndefined();
    expect(vdiRecord(s, b1)).toBeUndefined();
    // Nothing left to do: a second run changes nothing.
    const again = await smGc(s, [sr]);
    expect(again.stdout).toContain('removed 0, coalesced 0, leaf-coalesced 0');
    // The leaf is an ordinary VDI: writable, resizable, snapshottable.
    await write(s, v, format, 2 * MiB, A);
    await ok(s, ['vdi-snapshot', `uuid=${v}`]);
  });
});

describe('lvm GC leaves VDIs in use alone', () => {
  it('an attached leaf keeps its chain unmerged; after detach, sm-gc --no-leaf-coalesce merges it and leaves the leaf', async () => {
    const s = await gcScratch();
    const sr = await createLvmSr(s);
    const { v, s1, s2, b1, b2 } = await twoSnapshotChain(s, sr, 'vhd');
    await ok(s, ['vdi-destroy', `uuid=${s2}`]);
    await attach(s, v);
    await ok(s, ['vdi-destroy', `uuid=${s1}`]);
    // B2 would be coalescable, but V (which holds B2 and B1 active) is attached.
    expect(await lvNames(s, sr)).toEqual(['MGT', `VHD-${b1}`, `VHD-${b2}`, `VHD-${v}`].sort());
    const busy = await smGc(s, [sr]);
    expect(busy.exitCode, busy.stderr).toBe(0);
    expect(busy.stdout).toContain('removed 0, coalesced 0, leaf-coalesced 0');
    await detach(s, v);
    const r = await smGc(s, [sr, '--no-leaf-coalesce']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('removed 0, coalesced 1, leaf-coalesced 0');
    expect(await lvNames(s, sr)).toEqual(['MGT', `VHD-${b1}`, `VHD-${v}`].sort());
    await expectData(s, v, 'vhd');
  });

  it('a leaf grown past its base: the base LV is grown to the thick size of the bigger image (moved to one contiguous LV here) before the merge', async () => {
    const s = await gcScratch();
    const sr = await createLvmSr(s);
    const { v, s1, s2 } = await twoSnapshotChain(s, sr, 'vhd');
    await ok(s, ['vdi-destroy', `uuid=${s2}`]);
    await ok(s, ['vdi-destroy', `uuid=${s1}`]);
    await ok(s, ['vdi-resize', `uuid=${v}`, 'disk-size=60MiB']);
    const r = await smGc(s, [sr]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('leaf-coalesced 1');
    const lvs = await lvsOf(s, sr);
    expect(lvs.map((l) => l.lvName).sort()).toEqual(['MGT', `VHD-${v}`]);
    expect(lvs.find((l) => l.lvName === `VHD-${v}`)!.lvSize).toBe(thickVhdLvSize(60 * MiB));
    const p = await attach(s, v);
    expect(readVhdHeader(p).currentSize).toBe(60 * MiB);
    await detach(s, v);
    await expectData(s, v, 'vhd');
    // The grown range is usable: data written at its end reads back.
    await write(s, v, 'vhd', 59 * MiB, A);
    const p2 = await attach(s, v);
    try {
      expect((await readRange({ path: p2, format: 'vhd' }, 59 * MiB, MiB)).equals(A)).toBe(true);
    } finally {
      await detach(s, v);
    }
  });
});

describe('bin/sm-gc', () => {
  it('--help describes both SR kinds; an SR not attached here is refused, naming where it looked', async () => {
    const s = await gcScratch();
    const h = await smGc(s, ['--help']);
    expect(h.exitCode).toBe(0);
    expect(h.stderr).toContain('file SRs (file, ext, nfs)');
    expect(h.stderr).toContain('lvm SRs: the VG VG_XenStorage-<sr-uuid>');
    const r = await smGc(s, ['11111111-2222-4333-8444-555555555555']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('is not attached here');
    expect(r.stderr).toContain('lvm-sr/11111111-2222-4333-8444-555555555555/attached');
    const bad = await smctl(s, ['sr-list']);
    expect(bad.exitCode).toBe(0);
  });
});
