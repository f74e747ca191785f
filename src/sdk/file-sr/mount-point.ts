// Taking an SR's mount point away on detach, shared by the SR types that mount
// a local filesystem there (file: bind mount, ext: the LV's ext4). A mount
// point that is still busy is SRInUse, as in xapi's FileSR.detach.
import { rmdirSync } from 'node:fs';
import { SRError } from '../errors/sr-error.js';
import { isMountPoint, umount } from '../tools/mount.js';

export async function releaseMountPoint(srDir: string): Promise<void> {
  if (await isMountPoint(srDir)) {
    try {
      await umount({ target: srDir });
    } catch (e) {
      throw new SRError('SRInUse', `unmounting ${srDir}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
  try {
    rmdirSync(srDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new SRError('SRInUse', `removing the mount point ${srDir}: ${(e as Error).message}`, { cause: e });
  }
}
