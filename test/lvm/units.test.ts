// The LVM SR core's pure parts: LV sizing (xapi's lvhdutil formulas), names,
// the MGT encoding (two slots, torn writes), the VHD parent fix-up, and the
// argv of the commands the core builds itself (losetup).
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { emptyVhdLvSize, qcow2LvSize, rawLvSize, thickVhdLvSize, vhdOverheadEmpty } from '../../src/sdk/formats/lv-size.js';
import { readVhdHeader } from '../../src/sdk/formats/vhd-header.js';
import type { LvExtents } from '../../src/sdk/lvm-sr/layout.js';
import { extentsOf, PvReader } from '../../src/sdk/lvm-sr/layout.js';
import * as losetup from '../../src/sdk/lvm-sr/losetup.js';
import { checkUuid, lvNameOf, parseLvName, srUuidOfVg, vgNameOf } from '../../src/sdk/lvm-sr/naming.js';
import { setLvParentName } from '../../src/sdk/lvm-sr/vhd-parent.js';
import { SRError } from '../../src/sdk/errors/sr-error.js';
import type { LvRecord } from '../../src/sdk/tools/lvm.js';
import { vhdUtilPath } from '../../src/sdk/env.js';
import { fileLv } from './helpers.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const U = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(process.env['SMAPI_TEST_TMP'] ?? '/var/tmp', 'lvm-unit-'));
  dirs.push(d);
  return d;
}

describe('LV sizing (lvhdutil)', () => {
  it('a thick 10 GiB VHD LV is 10,766,778,368 bytes (spec §5.5), with the BAT preallocated for 2 TiB', () => {
    expect(thickVhdLvSize(10 * GiB)).toBe(10_766_778_368);
    expect(vhdOverheadEmpty(2 * 1024 * GiB)).toBe(4_329_472);
  });
  it('an empty (thin) VHD LV is 8 MiB; raw and qcow2 LVs are whole 4 MiB extents', () => {
    expect(emptyVhdLvSize()).toBe(8 * MiB);
    expect(rawLvSize(20 * MiB + 1)).toBe(24 * MiB);
    expect(rawLvSize(20 * MiB)).toBe(20 * MiB);
    expect(qcow2LvSize(20 * MiB + 327680)).toBe(24 * MiB);
  });
});

describe('names (xapi LVHD layout)', () => {
  it('VHD-/LV-/QCOW2-<uuid>, VG_XenStorage-<sr>; anything else is not a VDI', () => {
    expect(lvNameOf(U, 'vhd')).toBe(`VHD-${U}`);
    expect(lvNameOf(U, 'raw')).toBe(`LV-${U}`);
    expect(lvNameOf(U, 'qcow2')).toBe(`QCOW2-${U}`);
    expect(parseLvName(`VHD-${U}`)).toEqual({ uuid: U, format: 'vhd' });
    expect(parseLvName(`LV-${U}`)).toEqual({ uuid: U, format: 'raw' });
    expect(parseLvName('MGT')).toBeNull();
    expect(parseLvName(`inflate_${U}_4194304`)).toBeNull();
    expect(parseLvName('VHD-not-a-uuid')).toBeNull();
    expect(vgNameOf(U)).toBe(`VG_XenStorage-${U}`);
    expect(srUuidOfVg(`VG_XenStorage-${U}`)).toBe(U);
    expect(srUuidOfVg(`XSLocalEXT-${U}`)).toBeNull();
  });
  it('a uuid from a request that is not a UUID is BadRequest naming the member and value', () => {
    let err: unknown;
    try {
      checkUuid('vdi_location', '../etc/passwd');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SRError);
    expect((err as SRError).message).toContain('vdi_location "../etc/passwd"');
  });
});

describe('LV extents', () => {
  it('maps LV offsets onto the PVs from lvs segments and pvs pe_start (several segments)', () => {
    const lv = {
      lvName: 'VHD-x', vgName: 'vg', lvUuid: 'u', lvSize: 3 * 4 * MiB, tags: [],
      attr: { raw: '-wi-------', readOnly: false, active: false, open: false },
      segments: [{ startExtent: 0, peRanges: ['/dev/a:10-10'] }, { startExtent: 1, peRanges: ['/dev/b:0-1'] }],
    } as LvRecord;
    const ext = extentsOf(lv, new Map([['/dev/a', MiB], ['/dev/b', 2 * MiB]]));
    expect(ext.pieces).toEqual([
      { lvOffset: 0, pv: '/dev/a', pvOffset: MiB + 40 * MiB, length: 4 * MiB },
      { lvOffset: 4 * MiB, pv: '/dev/b', pvOffset: 2 * MiB, length: 8 * MiB },
    ]);
  });
});

describe('PvReader', () => {
  it('PvReader reads across pieces in LV order', () => {
    const { ext, pv } = fileLv(tmp(), 8 * MiB);
    const split: LvExtents = { lv: ext.lv, pieces: [{ lvOffset: 0, pv, pvOffset: 4 * MiB + 512 * 1024, length: 4 * MiB }, { lvOffset: 4 * MiB, pv, pvOffset: 512 * 1024, length: 4 * MiB }] };
    const w = new PvReader('r+');
    w.write(split, 4 * MiB - 3, Buffer.from('abcdef'));
    w.close();
    const raw = readFileSync(pv);
    expect(raw.subarray(8 * MiB + 512 * 1024 - 3, 8 * MiB + 512 * 1024).toString()).toBe('abc');
    expect(raw.subarray(512 * 1024, 512 * 1024 + 3).toString()).toBe('def');
    const r = new PvReader();
    expect(r.read(split, 4 * MiB - 3, 6).toString()).toBe('abcdef');
    r.close();
  });
});

describe('VHD parent reference on an LV', () => {
  it('rewrites the parent name and the three locators to VHD-<uuid> / ./VHD-<uuid>; the image stays valid', async () => {
    const d = tmp();
    await execa(vhdUtilPath(), ['create', '-n', join(d, 'p.vhd'), '-s', '8']);
    await execa(vhdUtilPath(), ['snapshot', '-n', join(d, 'c.vhd'), '-p', join(d, 'p.vhd'), '-e']);
    setLvParentName(join(d, 'c.vhd'), `VHD-${U}`);
    const h = readVhdHeader(join(d, 'c.vhd'));
    expect(h.parentName).toBe(`VHD-${U}`);
    expect(h.locators.map((l) => [l.code, l.stored])).toEqual([
      ['MacX', `./VHD-${U}`],
      ['W2ku', `./VHD-${U}`],
      ['W2ru', `./VHD-${U}`],
    ]);
    // The header checksum was recomputed: vhd-util check accepts it once the parent exists under that name.
    writeFileSync(join(d, `VHD-${U}`), readFileSync(join(d, 'p.vhd')));
    const r = await execa(vhdUtilPath(), ['check', '-n', join(d, 'c.vhd')], { reject: false });
    expect(r.stdout + r.stderr).toMatch(/is valid/);
    expect(r.exitCode).toBe(0);
  });
});

describe('losetup argv (golden)', () => {
  it('attach a byte range, detach', () => {
    expect(losetup.attachArgv({ backing: '/dev/loop7', offset: 11534336, length: 29360128 })).toEqual([
      'losetup', '--find', '--show', '--offset', '11534336', '--sizelimit', '29360128', '/dev/loop7',
    ]);
    expect(losetup.detachArgv('/dev/loop9')).toEqual(['losetup', '--detach', '/dev/loop9']);
    expect(() => losetup.attachArgv({ backing: '/dev/loop7', offset: 100, length: 512 })).toThrow(/not a multiple of 512/);
    expect(() => losetup.detachArgv('-d')).toThrow(/must not start with '-'/);
  });
});
