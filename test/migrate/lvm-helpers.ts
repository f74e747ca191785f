// A file SR and an LVM SR (LVMSR on a loop device, metadata-only LVM on this
// host: an attached LV is a loop device over its extents) under one scratch
// smctl database, for copies and migrations between the two.
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageFormat } from '../../src/driver-info.js';
import { contentSha256, writeRange } from '../../src/sdk/formats/content.js';
import { lvs } from '../../src/sdk/tools/lvm.js';
import { loopDevice, type Loop } from '../ext/helpers.js';
import { ROOT } from '../toolstack/helpers.js';
import { host, type Host, withDb } from './helpers.js';

export interface LvmHost extends Host {
  loops: Loop[];
  /** An LVM SR on loop device `i`. */
  newLvmSr(name: string, i?: number): Promise<string>;
  /** The LV names of an LVM SR (MGT included), sorted. */
  lvNames(sr: string): Promise<string[]>;
  /** vdi-attach through smctl; returns the data path the driver reported (/dev/<vg>/<lv>). */
  attach(uuid: string): Promise<string>;
  detach(uuid: string): Promise<void>;
  cleanupAll(): Promise<void>;
}

export async function lvmHost(loopMiBs: number[]): Promise<LvmHost> {
  const h = host();
  symlinkSync(join(ROOT, 'drivers', 'lvm', 'LVMSR'), join(h.env['SM_DIR']!, 'LVMSR'));
  // Staging files of LVM -> LVM copies go into the scratch area, not /var/tmp.
  h.env['SM_COPY_STAGING_DIR'] = h.s.dir;
  const loops: Loop[] = [];
  const release = async () => {
    try {
      for (const l of loops) {
        await releaseActivations(l.device);
        await l.cleanup();
      }
    } finally {
      h.cleanup();
    }
  };
  try {
    for (const m of loopMiBs) loops.push(await loopDevice(m));
  } catch (e) {
    await release();
    throw e;
  }
  const devices = loops.map((l) => l.device);
  return {
    ...h,
    loops,
    newLvmSr: (name, i = 0) => h.ok(['sr-create', 'type=lvm', `name-label=${name}`, `device-config:device=${devices[i]!}`]),
    async lvNames(sr) {
      return (await lvs({ vg: `VG_XenStorage-${sr}` }, { devices })).map((l) => l.lvName).sort();
    },
    async attach(uuid) {
      const out = await h.ok(['vdi-attach', `uuid=${uuid}`]);
      const m = /params \( RO\)\s*: (\S+)/.exec(out);
      if (!m) throw new Error(`vdi-attach ${uuid}: no params in ${out}`);
      return m[1]!;
    },
    async detach(uuid) {
      await h.ok(['vdi-detach', `uuid=${uuid}`]);
    },
    cleanupAll: release,
  };
}

/** Activations a failed test left (no device-mapper: /dev/VG_XenStorage-<sr>/<lv> links to loop devices over OUR device). */
async function releaseActivations(device: string): Promise<void> {
  const { stdout } = await execa('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE'], { reject: false });
  const ours = String(stdout)
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 2 && f[1] === device)
    .map((f) => f[0]!);
  for (const d of readdirSync('/dev').filter((n) => n.startsWith('VG_XenStorage-'))) {
    const dir = join('/dev', d);
    for (const e of existsSync(dir) ? readdirSync(dir) : []) {
      let target = '';
      try {
        target = readlinkSync(join(dir, e));
      } catch {
        /* not a link */
      }
      if (ours.includes(target)) rmSync(join(dir, e), { force: true });
    }
    try {
      if (readdirSync(dir).length === 0) rmSync(dir, { recursive: true, force: true });
    } catch {
      /* gone meanwhile */
    }
  }
  for (const l of ours) await execa('losetup', ['-d', l], { reject: false });
}

/** sha256 of a disk of `size` bytes holding `pieces` (offset -> bytes) and zeros elsewhere. */
export function expectedSha(size: number, pieces: readonly [number, Buffer][]): string {
  const disk = Buffer.alloc(size);
  for (const [off, data] of pieces) data.copy(disk, off);
  return createHash('sha256').update(disk).digest('hex');
}

/** A VDI on an LVM SR holding `pieces`, written through its attached LV with the real tools. */
export async function filledLvmVdi(h: LvmHost, sr: string, format: ImageFormat, size: number, pieces: readonly [number, Buffer][]): Promise<string> {
  const uuid = await h.ok(['vdi-create', `sr-uuid=${sr}`, `name-label=${format}-lvm-src`, `virtual-size=${size}`, `sm-config:image-format=${format}`]);
  const path = await h.attach(uuid);
  try {
    for (const [off, data] of pieces) await writeRange({ path, format }, off, data);
  } finally {
    await h.detach(uuid);
  }
  return uuid;
}

/** The format the database records for a VDI (sm-config:image-format). */
export function formatOf(h: Host, uuid: string): string | undefined {
  return withDb(h.s, (db) => (db.getByUuid('VDI', uuid)?.['sm_config'] as Record<string, string> | undefined)?.['image-format']);
}

/** sha256 of the first `length` bytes of an LVM VDI's chain-resolved content (attached for the read). */
export async function lvmSha(h: LvmHost, uuid: string, length: number): Promise<{ sha: string; path: string }> {
  const path = await h.attach(uuid);
  try {
    const format = formatOf(h, uuid) as ImageFormat;
    return { sha: await contentSha256({ path, format }, length), path };
  } finally {
    await h.detach(uuid);
  }
}
