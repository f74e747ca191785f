// Snapshot and clone of a file-SR VDI (spec §5.6), journalled so a crash at
// any step leaves every VDI's data intact and no half-made VDI visible.
//
// Source leaf A (`A.<f>`), new base B, new leaf C:
//   1. journal (started)
//   2. B.<f> = hard link of A.<f>                      → journal linked
//   3. A.<g>.new = empty child of B (g = f, or for a raw source the first
//      preferred copy-on-write format that holds its size) → journal leaf
//   4. rename A.<g>.new → A.<g> (and unlink A.raw when g ≠ f) → journal committed
//   5. (double) C.<g> = empty child of B
//   6. hide B
//   7. the caller writes the DB, then removes the journal.
// Before "committed" a crash is rolled back (A untouched: drop B's extra link,
// A.new, C); after it, rolled forward (A is already the new leaf: finish the
// unlink, hide B, drop C, whose creation the toolstack never saw succeed).
import { existsSync, linkSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import type { ImageFormat } from '../../driver-info.js';
import { SRError } from '../errors/sr-error.js';
import { checkSafe, opsFor } from '../formats/index.js';
import { checkChainDepth, rulesOf } from '../formats/rules.js';
import { chooseRawSnapshotFormat, type FormatChoiceContext } from '../formats/select.js';
import { hiddenSidecar } from '../formats/raw.js';
import { linkSidecar, removeSidecar, renameSidecar } from '../image-meta/sidecar.js';
import { fistPoint } from './fist.js';
import { removeJournal, writeJournal, type SnapshotJournal } from './journal.js';
import { findVdiFile, vdiPath } from './paths.js';

export type SnapshotMode = 'double' | 'single' | 'internal';

/** driver_params:type → mode (sm's SNAPSHOT_DOUBLE / SINGLE / INTERNAL). */
export function snapshotMode(driverParams: Readonly<Record<string, string>>, op: 'vdi_snapshot' | 'vdi_clone'): SnapshotMode {
  const t = driverParams['type'];
  if (t === undefined || t === '' || t === 'double') return 'double';
  if (t === 'single' || t === 'internal') return t;
  throw new SRError(op === 'vdi_snapshot' ? 'VDISnapshot' : 'VDIClone', `driver_params:type=${JSON.stringify(t)} is not allowed; use single, internal, or leave it unset (double)`);
}

export interface SnapshotOutcome {
  journal: SnapshotJournal;
  virtualSize: number;
  /** A's grandparent before the snapshot (B's parent now), or null. */
  baseParent: string | null;
}

function errKey(op: 'vdi_snapshot' | 'vdi_clone'): string {
  return op === 'vdi_snapshot' ? 'VDISnapshot' : 'VDIClone';
}

function sameFile(a: string, b: string): boolean {
  try {
    const sa = statSync(a);
    const sb = statSync(b);
    return sa.ino === sb.ino && sa.dev === sb.dev;
  } catch {
    return false;
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

function removeImage(path: string, format: ImageFormat): void {
  unlinkQuietly(path);
  if (format === 'raw') unlinkQuietly(hiddenSidecar(path));
  removeSidecar(path);
}

export interface SnapshotOptions {
  op: 'vdi_snapshot' | 'vdi_clone';
  mode: SnapshotMode;
  formats: FormatChoiceContext;
  /** uuid generator (tests make it deterministic). */
  newUuid?: () => string;
}

/** Steps 1–6; the journal stays until the caller has written the DB and calls finishSnapshot. */
export async function snapshotFiles(srDir: string, uuid: string, o: SnapshotOptions): Promise<SnapshotOutcome> {
  const key = errKey(o.op);
  const src = findVdiFile(srDir, uuid);
  if (src === null) throw new SRError('VDIUnavailable', `VDI ${uuid} has no image file in ${srDir}`);
  const srcOps = opsFor(src.format);
  const info = await srcOps.info(src.path);
  if (info.hidden) throw new SRError(key, `VDI ${uuid} is a hidden base copy; only visible leaves can be snapshotted`);
  checkSafe({ path: src.path, format: src.format }, srDir);
  const leafFormat: ImageFormat = rulesOf(src.format).copyOnWrite ? src.format : chooseRawSnapshotFormat(info.virtualSize, o.formats);
  const chain = await srcOps.chain(src.path);
  checkChainDepth(leafFormat, chain.length + 1);
  const baseParentPath = chain[1]?.path ?? null;
  const gen = o.newUuid ?? randomUUID;
  const base = gen();
  const clone = o.mode === 'double' ? gen() : null;
  const j: SnapshotJournal = { op: 'snapshot', vdi: uuid, base, clone, srcFormat: src.format, leafFormat, step: 'started' };
  const basePath = vdiPath(srDir, base, src.format);
  const leafPath = vdiPath(srDir, uuid, leafFormat);
  const tmpPath = `${leafPath}.new`;

  writeJournal(srDir, j);
  fistPoint('snapshot-journal');
  try {
    linkSync(src.path, basePath);
    // Machine data kept out of band (vhd, raw) goes with the data to B; the
    // new leaf and the clone inherit it from B, as a qcow2 leaf does from B's header.
    linkSidecar(src.path, basePath);
    writeJournal(srDir, (j.step = 'linked', j));
    fistPoint('snapshot-link');
    await opsFor(leafFormat).snapshot({ path: basePath, format: src.format }, tmpPath);
    writeJournal(srDir, (j.step = 'leaf', j));
    fistPoint('snapshot-leaf');
  } catch (e) {
    await rollBackSnapshot(srDir, j);
    throw e instanceof SRError ? e : new SRError(key, `snapshot of ${uuid}: ${(e as Error).message}`, { cause: e });
  }
  // Commit: from here the original uuid names the new empty leaf on top of B.
  renameSync(tmpPath, leafPath);
  if (leafFormat !== src.format) unlinkSync(src.path);
  // A's old own value now belongs to B (linked above); the new leaf inherits it.
  removeSidecar(src.path);
  writeJournal(srDir, (j.step = 'committed', j));
  fistPoint('snapshot-rename');
  if (clone !== null) {
    try {
      await opsFor(leafFormat).snapshot({ path: basePath, format: src.format }, vdiPath(srDir, clone, leafFormat));
    } catch (e) {
      await rollForwardSnapshot(srDir, j);
      throw e instanceof SRError ? e : new SRError(key, `creating the new leaf ${clone}: ${(e as Error).message}`, { cause: e });
    }
    fistPoint('snapshot-clone');
  }
  await opsFor(src.format).setHidden(basePath, true);
  fistPoint('snapshot-hide');
  const baseParent = baseParentPath === null ? null : (/([0-9a-f-]{36})\.(vhd|qcow2|raw)$/.exec(baseParentPath)?.[1] ?? null);
  return { journal: j, virtualSize: info.virtualSize, baseParent };
}

/** Step 7: the DB is written; the operation is complete. */
export function finishSnapshot(srDir: string, j: SnapshotJournal): void {
  fistPoint('snapshot-db');
  removeJournal(srDir, j);
}

async function rollBackSnapshot(srDir: string, j: SnapshotJournal): Promise<void> {
  const srcPath = vdiPath(srDir, j.vdi, j.srcFormat);
  const basePath = vdiPath(srDir, j.base, j.srcFormat);
  unlinkQuietly(`${vdiPath(srDir, j.vdi, j.leafFormat)}.new`);
  if (j.clone !== null) removeImage(vdiPath(srDir, j.clone, j.leafFormat), j.leafFormat);
  // B is only dropped while it is still the same file as A: then A holds the data.
  if (existsSync(basePath) && sameFile(srcPath, basePath)) {
    unlinkQuietly(basePath);
    removeSidecar(basePath);
  } else if (existsSync(basePath) && !existsSync(srcPath)) {
    renameSync(basePath, srcPath);
    renameSidecar(basePath, srcPath);
  } else if (!existsSync(basePath)) removeSidecar(basePath);
  removeJournal(srDir, j);
}

async function rollForwardSnapshot(srDir: string, j: SnapshotJournal): Promise<void> {
  const basePath = vdiPath(srDir, j.base, j.srcFormat);
  if (j.leafFormat !== j.srcFormat) unlinkQuietly(vdiPath(srDir, j.vdi, j.srcFormat));
  // B holds A's old own value (linked before the commit); the leaf inherits it.
  if (existsSync(vdiPath(srDir, j.base, j.srcFormat))) removeSidecar(vdiPath(srDir, j.vdi, j.srcFormat));
  unlinkQuietly(`${vdiPath(srDir, j.vdi, j.leafFormat)}.new`);
  if (j.clone !== null) removeImage(vdiPath(srDir, j.clone, j.leafFormat), j.leafFormat);
  await opsFor(j.srcFormat).setHidden(basePath, true);
  removeJournal(srDir, j);
}

/** Whether step 4 (A renamed onto the new leaf) happened, even if the journal was not updated after it. */
function committed(srDir: string, j: SnapshotJournal): boolean {
  if (j.step === 'committed') return true;
  if (j.step !== 'leaf') return false;
  const tmp = `${vdiPath(srDir, j.vdi, j.leafFormat)}.new`;
  const leaf = vdiPath(srDir, j.vdi, j.leafFormat);
  if (existsSync(tmp) || !existsSync(leaf)) return false;
  return j.leafFormat !== j.srcFormat || !sameFile(leaf, vdiPath(srDir, j.base, j.srcFormat));
}

/** Finish a snapshot interrupted by a crash: back before the commit point, forward after it. */
export async function recoverSnapshot(srDir: string, j: SnapshotJournal): Promise<'rolled back' | 'rolled forward'> {
  if (committed(srDir, j)) {
    await rollForwardSnapshot(srDir, j);
    return 'rolled forward';
  }
  await rollBackSnapshot(srDir, j);
  return 'rolled back';
}
