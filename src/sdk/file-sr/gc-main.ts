// `sm-gc <sr-uuid>`: garbage collection and coalesce of an attached SR on
// demand (what sm runs as the SMGC@<sr> unit). Takes the SR lock, finishes
// interrupted journals, removes unused hidden bases and coalesces single-child
// chains. The toolstack's records are brought up to date by the next sr_scan
// (the drivers also run GC themselves after vdi_delete).
//   * file SRs (file, ext, nfs): the SR mounted at $SM_SR_MOUNT_ROOT/<sr-uuid>;
//   * lvm SRs: the VG VG_XenStorage-<sr-uuid> on the devices recorded at
//     sr_attach (or --device=...), handled by lvm-sr/gc-main.ts.
import { existsSync } from 'node:fs';
import { withSrLock } from '../lock.js';
import { attachedVdis } from './attach-state.js';
import { collectGarbage } from './gc.js';
import { checkSrUuid, srDirFor } from './paths.js';
import { recoverJournals } from './recover.js';

const USAGE = `Usage: sm-gc <sr-uuid> [--no-leaf-coalesce] [--device=/dev/X[,/dev/Y]]

Garbage-collects and coalesces an SR attached on this host, under its SR lock:
removes hidden base copies nothing uses, merges hidden single-child nodes into
their parents, and (unless --no-leaf-coalesce) merges detached leaves into
their only-child bases. Interrupted GC journals are finished first. VDIs that
are attached, or named by an unfinished operation, are left alone.

  file SRs (file, ext, nfs): the SR mounted at $SM_SR_MOUNT_ROOT/<sr-uuid>
    (default /run/sr-mount); images are files, merged with vhd-util coalesce /
    qemu-img commit.
  lvm SRs: the VG VG_XenStorage-<sr-uuid> on the devices recorded when it was
    attached (--device overrides them). Merges are journalled in the MGT volume;
    the parent LV is grown (lvextend) to the size the merged image needs first;
    a merged node's LV is removed (lvremove), a leaf-coalesced base's LV takes
    the leaf's name (lvrename).

Run sr-scan afterwards to update the toolstack's VDI records.
`;

const LVM_MARKER = (runDir: string, sr: string) => `${runDir}/lvm-sr/${sr}/attached`;

export async function main(argv: readonly string[]): Promise<number> {
  const deviceArg = argv.find((a) => a.startsWith('--device='));
  const args = argv.filter((a) => a !== '--no-leaf-coalesce' && !a.startsWith('--device='));
  if (args.length !== 1 || args[0] === '-h' || args[0] === '--help') {
    process.stderr.write(USAGE);
    return args[0] === '-h' || args[0] === '--help' ? 0 : 2;
  }
  let srUuid: string;
  try {
    srUuid = checkSrUuid(args[0]!);
  } catch (e) {
    process.stderr.write(`sm-gc: ${(e as Error).message}\n`);
    return 2;
  }
  const leafCoalesce = !argv.includes('--no-leaf-coalesce');
  const srDir = srDirFor(srUuid);
  if (!existsSync(srDir)) {
    const { env } = await import('../env.js');
    if (deviceArg !== undefined || existsSync(LVM_MARKER(env.runDir(), srUuid.toLowerCase()))) {
      const { lvmGcMain } = await import('../lvm-sr/gc-main.js');
      const devices = deviceArg === undefined ? null : deviceArg.slice('--device='.length).split(',').filter((d) => d !== '');
      return lvmGcMain({
        srUuid: srUuid.toLowerCase(),
        devices,
        leafCoalesce,
        out: (m) => process.stdout.write(`${m}\n`),
        err: (m) => process.stderr.write(`${m}\n`),
      });
    }
    process.stderr.write(`sm-gc: SR ${srUuid} is not attached here: no file SR at ${srDir} and no attached lvm SR (${LVM_MARKER(env.runDir(), srUuid)})\n`);
    return 2;
  }
  return withSrLock(srUuid, async () => {
    const log = (m: string) => process.stdout.write(`${m}\n`);
    const rec = await recoverJournals(srDir, log);
    const busy = new Set(attachedVdis(srUuid));
    const report = await collectGarbage(srDir, { inUse: (u) => busy.has(u), leafCoalesce, log });
    for (const e of [...rec.failed, ...report.errors]) process.stderr.write(`sm-gc: ${e}\n`);
    log(`sm-gc: removed ${report.removed.length}, coalesced ${report.coalesced.length}, leaf-coalesced ${report.leafCoalesced.length}`);
    return rec.failed.length + report.errors.length > 0 ? 1 : 0;
  });
}
