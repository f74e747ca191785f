// Shared by test/lvm/gc.test.ts and test/lvm/crash-gc.test.ts: a chain GC can
// merge, built through smctl, and checks of its data through the real tools.
import { execa } from 'execa';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { ImageFormat } from '../../src/driver-info.js';
import { readRange } from '../../src/sdk/formats/index.js';
import * as qemuImg from '../../src/sdk/tools/qemu-img.js';
import * as vhdUtil from '../../src/sdk/tools/vhd-util.js';
import { MiB, ok, pattern, ROOT, smConfig, vdiRecord } from '../file-sr/helpers.js';
import { attach, detach, write, type LvmScratch } from './helpers.js';

export const A = pattern(0x5a, MiB);
export const B = pattern(0xa5, MiB);
export const LV_PREFIX: Record<ImageFormat, string> = { vhd: 'VHD-', qcow2: 'QCOW2-', raw: 'LV-' };


/** Reads A at 0 and B at 1 MiB through the attached chain, and runs the format's own check on the leaf (with its parents). */
export async function expectData(s: LvmScratch, uuid: string, format: ImageFormat): Promise<void> {
  const p = await attach(s, uuid);
  try {
    expect((await readRange({ path: p, format }, 0, MiB)).equals(A), `${uuid}: data written before the snapshots`).toBe(true);
    expect((await readRange({ path: p, format }, MiB, MiB)).equals(B), `${uuid}: data written after the first snapshot`).toBe(true);
    if (format === 'vhd') {
      const c = await vhdUtil.check({ path: p, parents: true });
      expect(c.status, c.output).toBe('valid');
    } else {
      const c = await qemuImg.check({ path: p, format: 'qcow2' });
      expect(c.status).toBe('clean');
    }
  } finally {
    await detach(s, uuid);
  }
}

export const parentOf = (s: LvmScratch, u: string): string | undefined => smConfig(vdiRecord(s, u))['vhd-parent'];

/**
 * V → B2 → B1 with snapshots S1 (on B1) and S2 (on B2); A written before the
 * first snapshot, B after it. Destroying S2 leaves B2 with one child whose
 * parent still has S1; destroying S1 makes B2 coalescable into B1.
 */
export async function twoSnapshotChain(s: LvmScratch, sr: string, format: ImageFormat) {
  const v = await ok(s, ['vdi-create', `sr-uuid=${sr}`, 'virtual-size=20MiB', 'name-label=gc-disk', `sm-config:image-format=${format}`]);
  await write(s, v, format, 0, A);
  const s1 = await ok(s, ['vdi-snapshot', `uuid=${v}`]);
  const b1 = parentOf(s, v)!;
  await write(s, v, format, MiB, B);
  const s2 = await ok(s, ['vdi-snapshot', `uuid=${v}`]);
  const b2 = parentOf(s, v)!;
  return { v, s1, s2, b1, b2 };
}

export async function smGc(s: LvmScratch, args: string[], extraEnv: Record<string, string> = {}) {
  const env: Record<string, string | undefined> = { ...process.env, ...s.env, ...extraEnv };
  if (!('SM_FIST' in extraEnv)) delete env['SM_FIST'];
  const r = await execa(join(ROOT, 'bin', 'sm-gc'), args, { env, extendEnv: false, reject: false, timeout: 200_000 });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

