// scan -l VG: VHDs inside LVs of a real volume group on a loop device, read from
// the PV at each LV's extents (no device-mapper on this host: LVs stay inactive).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { lvsArgv, parseLvs, parsePvs, pvsArgv } from '../../src/sdk/vhd/lvm-scan.js';
import { MiB, filled, ok, tempDir, vhdUtil } from './helpers.js';

const env = { ...process.env, LVM_SUPPRESS_FD_WARNINGS: '1' };
const lvm = (args: string[]) => execFileSync(args[0]!, args.slice(1), { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const VG = `vhdtest${process.pid}`;
let t: ReturnType<typeof tempDir>;
let loop = '';

beforeAll(() => {
  t = tempDir('lvm');
  const img = join(t.dir, 'pv.img');
  writeFileSync(img, '');
  truncateSync(img, 128 * MiB);
  loop = execFileSync('losetup', ['-f', '--show', img], { encoding: 'utf8' }).trim();
  lvm(['pvcreate', '-q', loop]);
  lvm(['vgcreate', '-q', VG, loop]);
  lvm(['lvcreate', '-q', '--driverloaded', 'n', '-an', '-Zn', '-L', '16M', '-n', 'VHD-base', VG]);
  lvm(['lvcreate', '-q', '--driverloaded', 'n', '-an', '-Zn', '-L', '8M', '-n', 'VHD-child', VG]);
  lvm(['lvcreate', '-q', '--driverloaded', 'n', '-an', '-Zn', '-L', '4M', '-n', 'other', VG]);
});

afterAll(() => {
  try {
    if (loop) {
      try {
        lvm(['vgremove', '-q', '-f', VG]);
        lvm(['pvremove', '-q', loop]);
      } finally {
        execFileSync('losetup', ['-d', loop]);
      }
    }
  } finally {
    t.cleanup();
  }
});

/** Copy a VHD file into an LV by writing it to the PV at the LV's first extent. */
function putInLv(vhd: string, lv: string) {
  const { segments, extentSize } = parseLvs(lvm(lvsArgv(VG)));
  const seg = segments.find((s) => s.lv === lv)!;
  const peStart = parsePvs(lvm(pvsArgv())).get(seg.pv)!;
  const fd = openSync(loop, 'r+');
  const data = readFileSync(vhd);
  writeSync(fd, data, 0, data.length, peStart + seg.pvStartPe * extentSize);
  closeSync(fd);
}

describe('scan -l', () => {
  it('runs lvs/pvs with these exact argument vectors', () => {
    expect(lvsArgv('VG_XenStorage-1')).toEqual([
      'lvs', '--noheadings', '--nosuffix', '--units', 'b', '--separator', '|',
      '-o', 'lv_name,lv_size,seg_start_pe,devices,vg_extent_size', 'VG_XenStorage-1',
    ]);
    expect(pvsArgv()).toEqual(['pvs', '--noheadings', '--nosuffix', '--units', 'b', '--separator', '|', '-o', 'pv_name,pe_start']);
  });

  it('lists the VHDs of matching LVs with LV sizes and header parent names', () => {
    const base = join(t.dir, 'VHD-base');
    const child = join(t.dir, 'VHD-child');
    ok(['create', '-n', base, '-s', '8']);
    ok(['write', '-n', base, '-o', '0'], { input: filled(0x42, MiB) });
    ok(['set', '-n', base, '-f', 'hidden', '-v', '1']);
    ok(['snapshot', '-n', child, '-p', base]);
    putInLv(base, 'VHD-base');
    putInLv(child, 'VHD-child');
    expect(ok(['scan', '--debug', '-f', '-c', '-l', VG, '-m', 'VHD-*'])).toBe(
      `vhd=VHD-base capacity=${8 * MiB} size=${16 * MiB} hidden=1 parent=none\n` +
        `vhd=VHD-child capacity=${8 * MiB} size=${8 * MiB} hidden=0 parent=VHD-base\n`,
    );
    expect(ok(['scan', '-f', '-M', '-l', VG, '-m', 'VHD-child'])).toBe(
      `vhd=VHD-child capacity=${8 * MiB} size=${8 * MiB} hidden=0 marker=0 keyhash= parent=VHD-base\n`,
    );
  });

  it('an LV without a VHD is a scan error (exit 22); a missing VG is reported', () => {
    const r = vhdUtil(['scan', '-f', '-l', VG, '-m', 'other']);
    expect(r.status).toBe(22);
    expect(r.stdout).toBe("vhd=other scan-error=-22 error-message='opening file'\n");
    const missing = vhdUtil(['scan', '-f', '-l', `${VG}-missing`, '-m', '*']);
    expect(missing.status).toBe(22);
    expect(missing.stdout).toMatch(/volume group .*-missing/);
  });
});
