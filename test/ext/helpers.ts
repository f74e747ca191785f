// Set-up shared by the ext tests: loop devices over sparse files (detached
// afterwards, with any LVM left on them), the LVM global options this kernel
// needs, and a Scratch whose VDI files live in the mounted SR.
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { deviceMapperAvailable } from '../../src/sdk/tools/lvm.js';
import type { Scratch } from '../file-sr/helpers.js';

export interface Loop {
  device: string;
  cleanup(): Promise<void>;
}

const tmpRoot = (): string => (process.env['SM_TESTHOST_GUEST'] === '1' ? '/run' : (process.env['SMAPI_TEST_TMP'] ?? '/var/tmp'));

/** A loop device over a fresh sparse file of `mib` MiB. */
export async function loopDevice(mib: number): Promise<Loop> {
  const dir = mkdtempSync(join(tmpRoot(), 'ext-loop-'));
  const img = join(dir, 'disk.img');
  await execa('truncate', ['-s', `${mib}M`, img]);
  const { stdout } = await execa('losetup', ['-f', '--show', img]);
  const device = stdout.trim();
  return {
    device,
    cleanup: async () => {
      // Whatever a failed test left: VGs on the device, then the device itself.
      const dm = dmArgs();
      const pvs = await execa('pvs', ['--devices', device, ...dm, '--noheadings', '-o', 'vg_name', device], { reject: false });
      for (const vg of String(pvs.stdout).split('\n').map((l) => l.trim()).filter(Boolean)) {
        await execa('vgchange', ['--devices', device, ...dm, '-an', vg], { reject: false });
        await execa('vgremove', ['--devices', device, ...dm, '-f', vg], { reject: false });
      }
      await execa('pvremove', ['--devices', device, ...dm, '-ff', '-y', device], { reject: false });
      await execa('losetup', ['-d', device], { reject: false });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `--driverloaded n` where this kernel has no device-mapper (what the LVM wrappers add). */
export function dmArgs(): string[] {
  return deviceMapperAvailable() ? [] : ['--driverloaded', 'n'];
}

/** The Scratch of an ext SR: VDI files are read where the SR is mounted. */
export function inMountedSr(s: Scratch, sr: string): Scratch {
  return { ...s, location: join(s.mountRoot, sr) };
}
