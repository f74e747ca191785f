// A sparse file under /var/tmp attached to a loop device, for tests that need a
// real block device (LVM, mkfs, mount). detach() is idempotent and also deletes
// the file; call it from afterAll/finally so nothing is left behind on failure.
import { mkdtemp, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

export interface LoopDevice {
  /** e.g. /dev/loop3 */
  device: string;
  /** The backing sparse file. */
  file: string;
  sizeBytes: number;
  detach(): Promise<void>;
}

export async function createLoopDevice(sizeBytes: number, opts: { dir?: string } = {}): Promise<LoopDevice> {
  const dir = await mkdtemp(join(opts.dir ?? '/var/tmp', 'smapi-ts-loop-'));
  const file = join(dir, 'disk.img');
  const fh = await open(file, 'wx');
  try {
    await fh.truncate(sizeBytes); // sparse: no blocks allocated
  } finally {
    await fh.close();
  }
  let device: string;
  try {
    device = (await execa('losetup', ['-f', '--show', file])).stdout.trim();
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  let detached = false;
  return {
    device,
    file,
    sizeBytes,
    async detach() {
      if (detached) return;
      detached = true;
      // losetup -d can race with a just-closed opener (udev, mkfs): retry briefly.
      for (let i = 0; ; i++) {
        const r = await execa('losetup', ['-d', device], { reject: false });
        if (r.exitCode === 0) break;
        const gone = await execa('losetup', ['-j', file], { reject: false });
        if (gone.stdout.trim() === '') break;
        if (i >= 10) throw new Error(`losetup -d ${device} failed: ${r.stderr}`);
        await new Promise((res) => setTimeout(res, 200));
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
