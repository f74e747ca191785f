// A process killed (SM_FIST) at each step of an inflate (RW vdi_attach on a thin
// SR), a deflate (vdi_detach on a thin SR) and the deflate of a snapshot base
// (vdi_snapshot on a thick SR): the next sr-scan finishes or undoes it from the
// MGT journal, the LV is at a size that holds the image (`lvs`), the image is
// accepted by vhd-util / qemu-img check, and the data reads back by content.
import { execa } from 'execa';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { thickVhdLvSize } from '../../src/sdk/formats/lv-size.js';
import { readRange, writeRange } from '../../src/sdk/formats/index.js';
import { vhdUtilPath } from '../../src/sdk/env.js';
import { assertBuilt, MiB, ok, pattern, smConfig, smctl, vdiRecord } from '../file-sr/helpers.js';
import { attach, createLvmSr, lvSize, lvsOf, lvmScratch, type LvmScratch } from './helpers.js';

vi.setConfig({ testTimeout: 400_000 });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
beforeAll(() => assertBuilt());

async function scr(): Promise<LvmScratch> {
  const s = await lvmScratch();
  cleanups.push(s.cleanup);
  return s;
}

async function crashed(s: LvmScratch, args: string[], point: string): Promise<void> {
  const r = await smctl(s, args, { SM_FIST: point });
  expect(r.exitCode, `${args.join(' ')} with SM_FIST=${point} should have crashed`).not.toBe(0);
}

/** RO attach: content and `check` of the VDI's image. */
async function expectIntact(s: LvmScratch, uuid: string, format: 'vhd' | 'qcow2', at: number, data: Buffer): Promise<void> {
  const p = await attach(s, uuid, 'RO');
  try {
    expect((await readRange({ path: p, format }, at, data.length)).equals(data), 'data reads back').toBe(true);
    const r = format === 'vhd' ? await execa(vhdUtilPath(), ['check', '-n', p], { reject: false }) : await execa('qemu-img', ['check', '-f', 'qcow2', p], { reject: false });
    expect(r.exitCode, `${format} check: ${r.stdout}${r.stderr}`).toBe(0);
  } finally {
    await ok(s, ['vdi-detach', `uuid=${uuid}`]);
  }
}

/** A thin SR with one VDI holding `data` at 2 MiB, deflated (attached RW, written, detached). */
async function thinVdi(s: LvmScratch, format: 'vhd' | 'qcow2', data: Buffer): Promise<{ sr: string; v: string; lv: string; deflated: number }> {
  const sr = await createLvmSr(s, undefined, ['sm-config:allocation=thin']);
  const v = await ok(s, ['vdi-create', `sr-uuid=${sr}`, 'virtual-size=20MiB', 'name-label=d', `sm-config:image-format=${format}`]);
  const p = await attach(s, v);
  await writeRange({ path: p, format }, 2 * MiB, data);
  await ok(s, ['vdi-detach', `uuid=${v}`]);
  const lv = `${format === 'vhd' ? 'VHD' : 'QCOW2'}-${v}`;
  return { sr, v, lv, deflated: await lvSize(s, sr, lv) };
}

const DATA = pattern(0x9d, 3 * MiB);

describe('lvm provisioning: crash during inflate (RW attach on a thin SR)', () => {
  for (const format of ['vhd', 'qcow2'] as const) {
    for (const point of ['lvm-inflate-journal', 'lvm-inflate-extend', 'lvm-inflate-footer']) {
      // qcow2 has no footer to move: its inflate is journal + lvextend (one kill point after the lvextend).
      if (format === 'qcow2' && point !== 'lvm-inflate-extend') continue;
      it(`${format}: vdi-attach killed at ${point}: attach refused until sr-scan undoes it; then the VDI attaches, inflated, with its data`, async () => {
        const s = await scr();
        const { sr, v, lv, deflated } = await thinVdi(s, format, DATA);
        await crashed(s, ['vdi-attach', `uuid=${v}`], point);
        const r = await smctl(s, ['vdi-attach', `uuid=${v}`]);
        expect(r.exitCode, 'attach is refused while the journal names the VDI').not.toBe(0);
        expect(r.stderr).toMatch(/interrupted operation/);
        await ok(s, ['sr-scan', `uuid=${sr}`]);
        expect(await lvSize(s, sr, lv), 'the inflate was undone').toBe(deflated);
        await expectIntact(s, v, format, 2 * MiB, DATA);
        const p = await attach(s, v);
        expect(await lvSize(s, sr, lv)).toBeGreaterThan(deflated);
        expect((await readRange({ path: p, format }, 2 * MiB, DATA.length)).equals(DATA)).toBe(true);
        await ok(s, ['vdi-detach', `uuid=${v}`]);
        expect(await lvSize(s, sr, lv)).toBe(deflated);
      });
    }
  }
});

describe('lvm provisioning: crash during deflate (detach on a thin SR)', () => {
  for (const format of ['vhd', 'qcow2'] as const) {
    for (const point of ['lvm-deflate-journal', 'lvm-deflate-footer', 'lvm-deflate-reduce']) {
      // qcow2: journal + lvreduce; the VHD cases cover every point of the shared code.
      if (format === 'qcow2' && point !== 'lvm-deflate-reduce') continue;
      it(`${format}: vdi-detach killed at ${point}: sr-scan finishes the deflate; the data is intact`, async () => {
        const s = await scr();
        const { sr, v, lv, deflated } = await thinVdi(s, format, DATA);
        const p = await attach(s, v);
        expect(await lvSize(s, sr, lv)).toBeGreaterThan(deflated);
        expect((await readRange({ path: p, format }, 2 * MiB, DATA.length)).equals(DATA)).toBe(true);
        await crashed(s, ['vdi-detach', `uuid=${v}`], point);
        await ok(s, ['sr-scan', `uuid=${sr}`]);
        expect(await lvSize(s, sr, lv), 'the deflate was finished').toBe(deflated);
        // The toolstack may still think it attached: a second detach is harmless.
        await smctl(s, ['vdi-detach', `uuid=${v}`]);
        await expectIntact(s, v, format, 2 * MiB, DATA);
      });
    }
  }
});

describe('lvm provisioning: crash while a snapshot deflates its base (thick SR)', () => {
  for (const point of ['lvm-deflate-footer', 'lvm-deflate-reduce']) {
    it(`vhd vdi-snapshot killed at ${point}: after sr-scan the source's data is intact and a new snapshot works`, async () => {
      const s = await scr();
      const sr = await createLvmSr(s);
      const a = await ok(s, ['vdi-create', `sr-uuid=${sr}`, 'virtual-size=20MiB', 'name-label=a', 'sm-config:image-format=vhd']);
      const p = await attach(s, a);
      await writeRange({ path: p, format: 'vhd' }, 2 * MiB, DATA);
      await ok(s, ['vdi-detach', `uuid=${a}`]);
      await crashed(s, ['vdi-snapshot', `uuid=${a}`], point);
      await ok(s, ['sr-scan', `uuid=${sr}`]);
      // Before the snapshot's commit point: rolled back to the one source LV.
      const names = (await lvsOf(s, sr)).map((l) => l.lvName).sort();
      expect(names).toEqual(['MGT', `VHD-${a}`]);
      expect(await lvSize(s, sr, `VHD-${a}`)).toBeLessThanOrEqual(thickVhdLvSize(20 * MiB));
      await expectIntact(s, a, 'vhd', 2 * MiB, DATA);
      const snap = await ok(s, ['vdi-snapshot', `uuid=${a}`]);
      const base = String(smConfig(vdiRecord(s, a))['vhd-parent']);
      expect(await lvSize(s, sr, `VHD-${base}`)).toBeLessThan(thickVhdLvSize(20 * MiB));
      await expectIntact(s, snap, 'vhd', 2 * MiB, DATA);
    });
  }
});
