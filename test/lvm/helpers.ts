// Set-up shared by the lvm tests: a scratch toolstack (database, logs, run dir)
// plus loop devices, all removed afterwards even when a test fails (VGs on the
// devices, activations made without device-mapper: /dev/VG_XenStorage-* and
// their loop devices).
import { execa } from 'execa';
import { closeSync, existsSync, ftruncateSync, openSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageFormat } from '../../src/driver-info.js';
import { writeRange } from '../../src/sdk/formats/index.js';
import type { LvExtents } from '../../src/sdk/lvm-sr/layout.js';
import { lvs, type LvRecord } from '../../src/sdk/tools/lvm.js';
import { loopDevice, type Loop } from '../ext/helpers.js';
import { ok, scratch, type Scratch } from '../file-sr/helpers.js';

export interface LvmScratch extends Scratch {
  loops: Loop[];
}

/** Every loop device whose backing file lives under `dir` (the ones activation made without device-mapper). */
async function loopsBackedUnder(devices: readonly string[]): Promise<string[]> {
  const { stdout } = await execa('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE'], { reject: false });
  return String(stdout)
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 2 && devices.includes(f[1]!))
    .map((f) => f[0]!);
}

export async function lvmScratch(mibs: number[] = [256]): Promise<LvmScratch> {
  const s = scratch();
  const loops: Loop[] = [];
  for (const m of mibs) loops.push(await loopDevice(m));
  return {
    ...s,
    loops,
    cleanup: async () => {
      const devs = loops.map((l) => l.device);
      const ours = await loopsBackedUnder(devs);
      // Activations made without device-mapper: /dev/VG_XenStorage-<sr>/<lv> → one of OUR loop
      // devices. Only those links go (other tests may have their own SRs active meanwhile).
      for (const d of readdirSync('/dev').filter((n) => n.startsWith('VG_XenStorage-'))) {
        const dir = join('/dev', d);
        for (const e of existsSync(dir) ? readdirSync(dir) : []) if (ours.includes(readlinkSafe(join(dir, e)))) rmSync(join(dir, e), { force: true });
        try {
          if (readdirSync(dir).length === 0) rmSync(dir, { recursive: true, force: true });
        } catch {
          /* gone meanwhile */
        }
      }
      for (const l of ours) await execa('losetup', ['-d', l], { reject: false });
      for (const l of loops) await l.cleanup();
      await s.cleanup();
    },
  };
}

export const deviceOf = (s: LvmScratch, i = 0): string => s.loops[i]!.device;

export async function createLvmSr(s: LvmScratch, devices = [deviceOf(s)], extra: string[] = []): Promise<string> {
  return ok(s, ['sr-create', 'type=lvm', `device-config:device=${devices.join(',')}`, 'name-label=lvm test', ...extra]);
}

export async function lvsOf(s: LvmScratch, sr: string, devices = s.loops.map((l) => l.device)): Promise<LvRecord[]> {
  return lvs({ vg: `VG_XenStorage-${sr}` }, { devices });
}

export async function lvNames(s: LvmScratch, sr: string): Promise<string[]> {
  return (await lvsOf(s, sr)).map((l) => l.lvName).sort();
}

/** The size `lvs` reports for LV `lv` of SR `sr`. */
export async function lvSize(s: LvmScratch, sr: string, lv: string): Promise<number> {
  const rec = (await lvsOf(s, sr)).find((l) => l.lvName === lv);
  if (rec === undefined) throw new Error(`no LV ${lv}`);
  return rec.lvSize;
}

export const lvPath = (sr: string, lv: string): string => `/dev/VG_XenStorage-${sr}/${lv}`;

/** vdi-attach (smctl's default mode is RW); returns the data path the driver reported. */
export async function attach(s: LvmScratch, uuid: string, mode?: 'RW' | 'RO'): Promise<string> {
  const out = await ok(s, ['vdi-attach', `uuid=${uuid}`, ...(mode === undefined ? [] : [`mode=${mode}`])]);
  const m = /params \( RO\)\s*: (\S+)/.exec(out);
  if (!m) throw new Error(`no params in ${out}`);
  return m[1]!;
}

export async function detach(s: LvmScratch, uuid: string): Promise<void> {
  await ok(s, ['vdi-detach', `uuid=${uuid}`]);
}

/** Writes `data` at `offset` through a RW attach, then detaches (the data as a guest would leave it). */
export async function write(s: LvmScratch, uuid: string, format: ImageFormat, offset: number, data: Buffer): Promise<void> {
  const p = await attach(s, uuid);
  try {
    await writeRange({ path: p, format }, offset, data);
  } finally {
    await detach(s, uuid);
  }
}

function readlinkSafe(p: string): string {
  try {
    return readlinkSync(p);
  } catch {
    return '';
  }
}

/**
 * Puts `env` into this process's environment (for handlers called in-process,
 * which read SM_* variables) and returns what puts the old one back.
 */
export function useProcessEnv(env: Record<string, string>): () => void {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  return () => {
    for (const k of Object.keys(env)) delete process.env[k];
    Object.assign(process.env, saved);
  };
}

/** An "LV" that is bytes [offset, offset+size) of a plain file in `dir`: what PvReader reads on a real PV. */
export function fileLv(dir: string, size: number, offset = 512 * 1024): { ext: LvExtents; pv: string } {
  const pv = join(dir, 'pv');
  writeFileSync(pv, '');
  const fd = openSync(pv, 'r+');
  ftruncateSync(fd, offset + size + 1024 * 1024);
  closeSync(fd);
  const lv = { lvName: 'MGT', vgName: 'vg', lvUuid: 'u', lvSize: size, tags: [], attr: { raw: '-wi-------', readOnly: false, active: false, open: false } } as LvRecord;
  return { pv, ext: { lv, pieces: [{ lvOffset: 0, pv, pvOffset: offset, length: size }] } };
}
