// The toolstack's record of a copy in flight, so a copy killed half-way is
// undone by the next smctl that touches the SRs (migrate commands, sr-scan).
// One JSON file per operation next to the SR lock files, written atomically
// (temp + fsync + rename) before each step it describes.
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { journalDir } from './journal-dir.js';

const ItemSchema = z.object({
  srcSr: z.string(),
  srcUuid: z.string(),
  srcLocation: z.string(),
  srcAttached: z.boolean(),
  destSr: z.string(),
  destUuid: z.string(),
  destLocation: z.string(),
  destAttached: z.boolean(),
  staging: z.string().optional(),
});

const JournalSchema = z.object({
  id: z.string(),
  pid: z.number().int(),
  mode: z.enum(['copy', 'migrate']),
  /** copying: nothing is committed, undo; switched: the database shows the copies, finish. */
  state: z.enum(['copying', 'switched']),
  /** Source VDIs to delete once switched (migrate only). */
  sources: z.array(z.object({ sr: z.string(), uuid: z.string() })),
  items: z.array(ItemSchema),
});

export type CopyJournal = z.infer<typeof JournalSchema>;
export type JournalItem = z.infer<typeof ItemSchema>;

export { journalDir };

function pathOf(lockDir: string, id: string): string {
  return join(journalDir(lockDir), `${id}.json`);
}

export function writeJournal(lockDir: string, j: CopyJournal): void {
  const dir = journalDir(lockDir);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${j.id}.tmp`);
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify(j));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, pathOf(lockDir, j.id));
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

export function removeJournal(lockDir: string, id: string): void {
  rmSync(pathOf(lockDir, id), { force: true });
}

/** Every journal on disk; unreadable ones are reported as errors, not dropped. */
export function readJournals(lockDir: string): { journals: CopyJournal[]; errors: string[] } {
  const dir = journalDir(lockDir);
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json') && !n.startsWith('.'));
  } catch {
    return { journals: [], errors: [] };
  }
  const journals: CopyJournal[] = [];
  const errors: string[] = [];
  for (const n of names.sort()) {
    try {
      journals.push(JournalSchema.parse(JSON.parse(readFileSync(join(dir, n), 'utf8'))));
    } catch (e) {
      errors.push(`copy journal ${join(dir, n)} is unreadable: ${(e as Error).message}`);
    }
  }
  return { journals, errors };
}

export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
