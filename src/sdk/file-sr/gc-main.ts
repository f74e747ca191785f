// `sm-gc <sr-uuid>`: garbage collection and coalesce of an attached file SR on
// demand (what sm runs as the SMGC@<sr> unit). Takes the SR lock, finishes
// interrupted journals, removes unused hidden bases and coalesces single-child
// chains. The toolstack's records are brought up to date by the next sr_scan
// (the driver also runs GC itself after vdi_delete and sr_scan).
import { existsSync } from 'node:fs';
import { withSrLock } from '../lock.js';
import { attachedVdis } from './attach-state.js';
import { collectGarbage } from './gc.js';
import { checkSrUuid, srDirFor } from './paths.js';
import { recoverJournals } from './recover.js';

const USAGE = `Usage: sm-gc <sr-uuid> [--no-leaf-coalesce]

Garbage-collects and coalesces the file SR mounted at $SM_SR_MOUNT_ROOT/<sr-uuid>
(default /run/sr-mount): removes hidden base copies nothing uses, merges hidden
single-child nodes into their parents, and (unless --no-leaf-coalesce) merges
detached leaves into their only-child bases. Run sr-scan afterwards to update the
toolstack's VDI records.
`;

export async function main(argv: readonly string[]): Promise<number> {
  const args = argv.filter((a) => a !== '--no-leaf-coalesce');
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
  const srDir = srDirFor(srUuid);
  if (!existsSync(srDir)) {
    process.stderr.write(`sm-gc: SR ${srUuid} is not attached here (${srDir} does not exist)\n`);
    return 2;
  }
  return withSrLock(srUuid, async () => {
    const log = (m: string) => process.stdout.write(`${m}\n`);
    const rec = await recoverJournals(srDir, log);
    const busy = new Set(attachedVdis(srUuid));
    const report = await collectGarbage(srDir, { inUse: (u) => busy.has(u), leafCoalesce: !argv.includes('--no-leaf-coalesce'), log });
    for (const e of [...rec.failed, ...report.errors]) process.stderr.write(`sm-gc: ${e}\n`);
    log(`sm-gc: removed ${report.removed.length}, coalesced ${report.coalesced.length}, leaf-coalesced ${report.leafCoalesced.length}`);
    return rec.failed.length + report.errors.length > 0 ? 1 : 0;
  });
}
