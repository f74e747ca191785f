// Step snippets for common guest set-ups. They call the bash helpers of
// testhost/guest/lib.sh; arguments are checked against a strict alphabet so that
// the snippets need no quoting.
import { z } from 'zod';
import { checked } from './checked.js';

const guestPath = z
  .string()
  .regex(/^\/[A-Za-z0-9_./-]*$/, 'guest paths must be absolute and use only letters, digits, _ . / -')
  .refine((p) => !p.split('/').includes('..'), 'guest paths must not contain ..');
const pvName = z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'PV names use letters, digits, _ and - (at most 32)');
const sizeMiB = z.number().int().min(8, 'a PV needs at least 8 MiB').max(65536);

/**
 * Starts the kernel NFS server (rpcbind, rpc.statd, rpc.mountd, nfsd; v3 and
 * v4.x; 10 s lease and grace) exporting each directory to 127.0.0.1 with
 * rw,no_root_squash. A directory that is not a mount point gets its own tmpfs
 * (with an fsid). Mount with `th_nfs_mount 3|4.1|4.2 <dir> <mountpoint>`.
 */
export function nfsServerScript(exportDirs: readonly string[]): string {
  const dirs = checked(z.array(guestPath).min(1, 'export at least one directory'), exportDirs, 'nfsServerScript');
  return `th_nfs_server_start ${dirs.join(' ')}`;
}

/**
 * Makes an LVM PV on a fresh loop device over a sparse file on the guest's tmpfs
 * and prints the device. A later step finds it again with `$(th_pv NAME)`.
 */
export function loopPvScript(name: string, mib: number): string {
  return `th_loop_pv ${checked(pvName, name, 'loopPvScript name')} ${checked(sizeMiB, mib, 'loopPvScript size')}`;
}
