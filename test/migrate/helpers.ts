// Two (or more) file SRs on this host under one scratch smctl database, with
// VDIs filled with known content through the real tools.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageFormat } from '../../src/driver-info.js';
import { contentSha256, writeRange } from '../../src/sdk/formats/content.js';
import { ok, ROOT, type Scratch, scratch, smctl, withDb } from '../toolstack/helpers.js';

export { ok, smctl, withDb, type Scratch };

export interface Host {
  s: Scratch;
  env: Record<string, string>;
  /** Run smctl with this host's environment. */
  run(args: string[]): ReturnType<typeof smctl>;
  ok(args: string[]): Promise<string>;
  newFileSr(name: string): Promise<string>;
  /** The directory holding an SR's images. */
  srDir(sr: string): string;
  cleanup(): void;
}

/**
 * A scratch toolstack whose plug-in directory holds our FileSR and the Python
 * test driver PySR (its SM record lists only raw and qcow2: a real driver that
 * does not take VHDs).
 */
export function host(): Host {
  const s = scratch({ smDir: null });
  const smDir = join(s.dir, 'sm');
  mkdirSync(smDir);
  symlinkSync(join(ROOT, 'drivers', 'file', 'FileSR'), join(smDir, 'FileSR'));
  symlinkSync(join(ROOT, 'test', 'fixtures', 'python-driver', 'PySR'), join(smDir, 'PySR'));
  const env = { ...s.env, SM_DIR: smDir, SM_SR_MOUNT_ROOT: join(s.dir, 'mnt') };
  s.env = env;
  const mnt = join(s.dir, 'mnt');
  return {
    s,
    env,
    run: (args) => smctl(s, args),
    ok: (args) => ok(s, args),
    async newFileSr(name) {
      return ok(s, ['sr-create', 'type=file', `name-label=${name}`, `device-config:location=${join(s.dir, name)}`]);
    },
    srDir: (sr) => join(mnt, sr),
    cleanup() {
      const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '');
      for (const m of mounts.filter((m) => m.startsWith(mnt))) spawnSync('umount', ['-l', m]);
      s.cleanup();
    },
  };
}

/** A VDI of `format` holding `pieces` (offset -> bytes); returns its uuid. */
export async function filledVdi(h: Host, sr: string, format: ImageFormat, size: number, pieces: [number, Buffer][]): Promise<string> {
  const uuid = await h.ok(['vdi-create', `sr-uuid=${sr}`, `name-label=${format}-src`, `virtual-size=${size}`, `sm-config:image-format=${format}`]);
  const path = imagePath(h, sr, uuid);
  for (const [off, data] of pieces) await writeRange({ path, format }, off, data);
  return uuid;
}

/** The image file of a VDI on a file SR (<uuid>.<format>), and its format. */
export function imageOf(h: Host, sr: string, uuid: string): { path: string; format: ImageFormat } {
  const f = readdirSync(h.srDir(sr)).find((n) => n.startsWith(`${uuid}.`) && /\.(vhd|qcow2|raw)$/.test(n));
  if (!f) throw new Error(`no image of VDI ${uuid} in ${h.srDir(sr)}`);
  return { path: join(h.srDir(sr), f), format: f.slice(uuid.length + 1) as ImageFormat };
}

export function imagePath(h: Host, sr: string, uuid: string): string {
  return imageOf(h, sr, uuid).path;
}

export async function sha(h: Host, sr: string, uuid: string, length: number): Promise<string> {
  return contentSha256(imageOf(h, sr, uuid), length);
}

export function vdiUuids(h: Host, sr?: string): string[] {
  return withDb(h.s, (db) =>
    db
      .all('VDI')
      .filter((v) => sr === undefined || String(db.get('SR', String(v['SR']))?.['uuid']) === sr)
      .map((v) => String(v['uuid']))
      .sort(),
  );
}

/** Every file in an SR directory, dot-files included. */
export function listing(h: Host, sr: string): string[] {
  return readdirSync(h.srDir(sr)).sort();
}
