// Garbage collection and coalesce of a file SR (spec §5.7), run in-process on
// demand (bin/sm-gc) and after vdi_delete under the SR lock (sr_scan: garbage only):
//   * garbage: hidden VDIs whose whole subtree is hidden are deleted;
//   * coalesce: a hidden node N with one child X whose parent P has only N is
//     merged into P, X is re-parented onto P, N is deleted;
//   * leaf-coalesce: a visible leaf A that is the only child of a hidden base
//     B (and is not attached) is merged into B, and B's file becomes A's.
// Which step comes next is ../gc/chain-plan.ts, shared with the LVM SR.
// Each merge is journalled and rolled forward after a crash: re-running a
// merge writes the same blocks again, and nothing but the merged child reads
// the parent while it is being written.
import { existsSync, renameSync, unlinkSync } from 'node:fs';
import { opsFor } from '../formats/index.js';
import { hiddenSidecar } from '../formats/raw.js';
import { carryOwn } from '../image-meta/api.js';
import { linkSidecar, removeSidecar } from '../image-meta/sidecar.js';
import { emptyGcReport, nextGcStep, type GcReport as ChainGcReport } from '../gc/chain-plan.js';
import { fistPoint } from './fist.js';
import { readInventory, type Inventory, type VdiNode } from './inventory.js';
import { journalsMentioning, removeJournal, writeJournal, type CoalesceJournal, type LeafCoalesceJournal } from './journal.js';
import { vdiPath } from './paths.js';

export interface GcOptions {
  /** VDIs that must not be rewritten now (attached or active somewhere). */
  inUse?: (uuid: string) => boolean;
  log?: (message: string) => void;
  /** Stop after this many actions (default 1000). */
  maxActions?: number;
  /** Merge hidden single-child nodes into their parents (default true); false = only remove garbage. */
  coalesce?: boolean;
  /** Also merge visible leaves into their only-child bases (default true). */
  leafCoalesce?: boolean;
}

export type GcReport = ChainGcReport<Inventory>;

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

function removeNode(v: Pick<VdiNode, 'path' | 'format'>): void {
  unlinkQuietly(v.path);
  if (v.format === 'raw') unlinkQuietly(hiddenSidecar(v.path));
  removeSidecar(v.path);
}

export async function coalesceNode(srDir: string, j: CoalesceJournal): Promise<void> {
  const nodePath = vdiPath(srDir, j.node, j.nodeFormat);
  const parentPath = vdiPath(srDir, j.parent, j.parentFormat);
  const childPath = vdiPath(srDir, j.child, j.childFormat);
  if (j.step === 'started' && existsSync(nodePath)) {
    // N's own machine data goes to P first (P's only child is N): X reads the
    // same value through N now and through P after the re-link. Idempotent.
    await carryOwn({ path: nodePath, format: j.nodeFormat }, { path: parentPath, format: j.parentFormat });
    await opsFor(j.nodeFormat).coalesce(nodePath);
    writeJournal(srDir, (j.step = 'merged', j));
  }
  fistPoint('coalesce-merged');
  if (j.step === 'merged') {
    await opsFor(j.childFormat).setParent(childPath, { path: parentPath, format: j.parentFormat });
    writeJournal(srDir, (j.step = 'relinked', j));
  }
  fistPoint('coalesce-relinked');
  removeNode({ path: nodePath, format: j.nodeFormat });
  fistPoint('coalesce-removed');
  removeJournal(srDir, j);
}

export async function leafCoalesce(srDir: string, j: LeafCoalesceJournal): Promise<void> {
  const leafPath = vdiPath(srDir, j.leaf, j.leafFormat);
  const basePath = vdiPath(srDir, j.base, j.baseFormat);
  const finalPath = vdiPath(srDir, j.leaf, j.baseFormat);
  if (existsSync(basePath)) {
    if (j.step === 'started') {
      // A's own machine data goes to B, which becomes A; without one, A read B's already.
      await carryOwn({ path: leafPath, format: j.leafFormat }, { path: basePath, format: j.baseFormat });
      await opsFor(j.leafFormat).coalesce(leafPath);
      writeJournal(srDir, (j.step = 'merged', j));
    }
    fistPoint('leaf-coalesce-merged');
    // Unhide before the rename: a raw base keeps its flag in <name>.hidden.
    await opsFor(j.baseFormat).setHidden(basePath, false);
    // B's out-of-band machine data follows its file (linked first, so no moment without it).
    linkSidecar(basePath, finalPath);
    renameSync(basePath, finalPath);
    writeJournal(srDir, (j.step = 'renamed', j));
  }
  fistPoint('leaf-coalesce-renamed');
  removeSidecar(basePath); // B's file is A's now; its sidecar was linked there
  if (j.leafFormat !== j.baseFormat) removeNode({ path: leafPath, format: j.leafFormat });
  if (await opsFor(j.baseFormat).getHidden(finalPath)) await opsFor(j.baseFormat).setHidden(finalPath, false);
  removeJournal(srDir, j);
}

export async function collectGarbage(srDir: string, o: GcOptions = {}): Promise<GcReport> {
  const report = emptyGcReport<Inventory>();
  const log = o.log ?? (() => undefined);
  const inUse = o.inUse ?? (() => false);
  const busy = (n: VdiNode) => inUse(n.uuid) || journalsMentioning(srDir, n.uuid).length > 0;
  const failed = new Set<string>();
  const max = o.maxActions ?? 1000;
  for (let actions = 0; actions < max; actions++) {
    const inv = await readInventory(srDir);
    const next = nextGcStep(inv.vdis, { busy, failed, coalesce: o.coalesce, leafCoalesce: o.leafCoalesce });
    if (next === null) {
      report.finalInventory = inv;
      break;
    }
    if (next.kind === 'garbage') {
      for (const v of next.nodes) {
        removeNode(v);
        report.removed.push(v.uuid);
        log(`GC: removed hidden ${v.format} VDI ${v.uuid} (no visible descendant)`);
      }
    } else if (next.kind === 'coalesce') {
      const { node, parent: p, child: x } = next;
      const j: CoalesceJournal = {
        op: 'coalesce', node: node.uuid, nodeFormat: node.format, parent: p.uuid, parentFormat: p.format,
        child: x.uuid, childFormat: x.format, step: 'started',
      };
      try {
        writeJournal(srDir, j);
        fistPoint('coalesce-journal');
        await coalesceNode(srDir, j);
        report.coalesced.push({ node: node.uuid, into: p.uuid });
        log(`GC: coalesced ${node.uuid} into ${p.uuid}; ${x.uuid} re-parented`);
      } catch (e) {
        failed.add(node.uuid);
        report.errors.push(`coalesce of ${node.uuid} into ${p.uuid}: ${(e as Error).message}`);
        log(`GC: coalesce of ${node.uuid} failed (journal kept, retried on the next call): ${(e as Error).message}`);
      }
    } else {
      const { leaf, base: b } = next;
      const j: LeafCoalesceJournal = { op: 'leaf-coalesce', leaf: leaf.uuid, leafFormat: leaf.format, base: b.uuid, baseFormat: b.format, step: 'started' };
      try {
        writeJournal(srDir, j);
        fistPoint('leaf-coalesce-journal');
        await leafCoalesce(srDir, j);
        report.leafCoalesced.push({ leaf: leaf.uuid, base: b.uuid });
        log(`GC: leaf ${leaf.uuid} merged into its base ${b.uuid}, which now holds it`);
      } catch (e) {
        failed.add(leaf.uuid);
        report.errors.push(`leaf-coalesce of ${leaf.uuid} into ${b.uuid}: ${(e as Error).message}`);
        log(`GC: leaf-coalesce of ${leaf.uuid} failed (journal kept): ${(e as Error).message}`);
      }
    }
  }
  return report;
}
