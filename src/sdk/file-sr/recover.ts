// Finishing operations a crash interrupted: every journal in the SR is rolled
// forward or back before a command touches the SR (called under the SR lock).
// A journal that cannot be finished is left in place and reported; the VDIs it
// names are then treated as busy by GC.
import { coalesceNode, leafCoalesce } from './gc.js';
import { listJournals } from './journal.js';
import { recoverResize } from './resize.js';
import { recoverSnapshot } from './snapshot.js';

export interface RecoveryReport {
  finished: string[];
  failed: string[];
}

export async function recoverJournals(srDir: string, log: (m: string) => void = () => undefined): Promise<RecoveryReport> {
  const report: RecoveryReport = { finished: [], failed: [] };
  for (const f of listJournals(srDir)) {
    if (f.journal === null) {
      report.failed.push(`${f.path}: unreadable journal (${f.problem}); left in place`);
      continue;
    }
    const j = f.journal;
    try {
      let what: string;
      switch (j.op) {
        case 'snapshot':
          what = `snapshot of ${j.vdi} ${await recoverSnapshot(srDir, j)}`;
          break;
        case 'resize':
          what = `resize of ${j.vdi}: ${await recoverResize(srDir, j)}`;
          break;
        case 'coalesce':
          await coalesceNode(srDir, j);
          what = `coalesce of ${j.node} into ${j.parent} rolled forward`;
          break;
        case 'leaf-coalesce':
          await leafCoalesce(srDir, j);
          what = `leaf-coalesce of ${j.leaf} into ${j.base} rolled forward`;
          break;
      }
      report.finished.push(what);
      log(`recovery: ${what}`);
    } catch (e) {
      const msg = `${f.path}: ${(e as Error).message}`;
      report.failed.push(msg);
      log(`recovery failed, journal left in place: ${msg}`);
    }
  }
  return report;
}
