// Journals of multi-step operations: `.journal-<op>-<uuid>.json` in the SR
// directory, written atomically (temp, fsync, rename, fsync dir) before the
// first step and rewritten as steps complete. A journal left behind by a
// crash is finished (forward or back) by recover.ts on the next call.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../formats/atomic.js';
import { UUID_RE } from './paths.js';

const uuid = z.string().regex(UUID_RE);
const format = z.enum(['vhd', 'qcow2', 'raw']);

export const SnapshotJournal = z.object({
  op: z.literal('snapshot'),
  /** The source leaf A: keeps its uuid and becomes a fresh child of the base. */
  vdi: uuid,
  /** The new hidden base B (A's data). */
  base: uuid,
  /** The new leaf C, or null for single/internal snapshots. */
  clone: uuid.nullable(),
  srcFormat: format,
  leafFormat: format,
  /** started → linked (B exists) → leaf (A.new made) → committed (A is the new leaf). */
  step: z.enum(['started', 'linked', 'leaf', 'committed']),
});
export type SnapshotJournal = z.infer<typeof SnapshotJournal>;

export const ResizeJournal = z.object({
  op: z.literal('resize'),
  vdi: uuid,
  format,
  from: z.number().int().nonnegative(),
  to: z.number().int().nonnegative(),
});
export type ResizeJournal = z.infer<typeof ResizeJournal>;

export const CoalesceJournal = z.object({
  op: z.literal('coalesce'),
  /** The hidden node merged into its parent and then removed. */
  node: uuid,
  nodeFormat: format,
  parent: uuid,
  parentFormat: format,
  /** The node's only child, re-parented onto `parent`. */
  child: uuid,
  childFormat: format,
  step: z.enum(['started', 'merged', 'relinked']),
});
export type CoalesceJournal = z.infer<typeof CoalesceJournal>;

export const LeafCoalesceJournal = z.object({
  op: z.literal('leaf-coalesce'),
  /** The visible leaf whose data goes into its base; keeps its uuid. */
  leaf: uuid,
  leafFormat: format,
  /** The hidden base with this leaf as only child; its file becomes the leaf's. */
  base: uuid,
  baseFormat: format,
  step: z.enum(['started', 'merged', 'renamed']),
});
export type LeafCoalesceJournal = z.infer<typeof LeafCoalesceJournal>;

export const Journal = z.discriminatedUnion('op', [SnapshotJournal, ResizeJournal, CoalesceJournal, LeafCoalesceJournal]);
export type Journal = z.infer<typeof Journal>;

const NAME_RE = /^\.journal-(snapshot|resize|coalesce|leaf-coalesce)-([0-9a-f-]{36})\.json$/;

function keyOf(j: Journal): string {
  switch (j.op) {
    case 'snapshot':
    case 'resize':
      return j.vdi;
    case 'coalesce':
      return j.node;
    case 'leaf-coalesce':
      return j.leaf;
  }
}

export function journalPath(srDir: string, j: Journal): string {
  return join(srDir, `.journal-${j.op}-${keyOf(j)}.json`);
}

export function writeJournal(srDir: string, j: Journal): void {
  writeFileAtomic(journalPath(srDir, Journal.parse(j)), `${JSON.stringify(j)}\n`);
}

export function removeJournal(srDir: string, j: Journal): void {
  rmSync(journalPath(srDir, j), { force: true });
}

export interface JournalFile {
  path: string;
  journal: Journal | null;
  /** Why the file could not be read as a journal (journal is null then). */
  problem?: string;
}

/** Every journal in the SR directory (unreadable ones reported with the reason). */
export function listJournals(srDir: string): JournalFile[] {
  const out: JournalFile[] = [];
  for (const name of readdirSync(srDir).sort()) {
    if (!NAME_RE.test(name)) continue;
    const path = join(srDir, name);
    try {
      out.push({ path, journal: Journal.parse(JSON.parse(readFileSync(path, 'utf8'))) });
    } catch (e) {
      out.push({ path, journal: null, problem: (e as Error).message });
    }
  }
  return out;
}

/** Does a journal in flight mention `uuid`? (Used to refuse touching a VDI mid-operation.) */
export function journalsMentioning(srDir: string, uuid: string): Journal[] {
  return listJournals(srDir)
    .map((f) => f.journal)
    .filter((j): j is Journal => j !== null && JSON.stringify(j).includes(uuid));
}
