// vdi-copy, vdi-pool-migrate and vdis-migrate: check everything, then per VDI
// create the destination (sm-config:image-format), attach both, copy, verify,
// and only when every VDI is done switch over (one database commit) and, for a
// migration, delete the sources.
//
// Half-made destinations never show: while it is being filled a destination
// image file is marked hidden in its own header (the file SRs' "deleted,
// awaiting GC" state: a scan does not report a hidden leaf and its GC removes
// it; an LV is left visible, see canHide), the
// database changes are one transaction that a killed smctl never commits, and a
// journal (journal.ts) lets the next smctl detach what the dead one attached
// and remove the destination (recoverInterruptedCopies).
import { randomUUID } from 'node:crypto';
import { rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { env } from '../../sdk/env.js';
import { opsFor } from '../../sdk/formats/index.js';
import { type DbRecord, NULL_REF } from '../db/schema.js';
import { lockSr, type SrLock } from '../sr-lock.js';
import type { Toolstack } from '../toolstack.js';
import { attachVdi, createVdi, deleteVdi, detachVdi, handleOf, scanSr, type DataPath, type VdiHandle } from './calls.js';
import { checkMigration, type MigrationPlan, type MoveMode, type MoveRequest, type PlannedCopy } from './check.js';
import { copyImage, type ProgressFn } from './engine.js';
import { type CopyJournal, processAlive, readJournals, removeJournal, writeJournal } from './journal.js';

export interface MovedVdi {
  /** The source VDI's uuid. */
  source: string;
  /** The new VDI on the destination SR. */
  dest: string;
  destSr: string;
  /** For a snapshot moved with its VDI: the source uuid of that VDI. */
  snapshotOf?: string;
}

export interface MoveOptions {
  /** Called with one status line per step and progress while copying. */
  progress?: (vdiUuid: string, phase: 'copy' | 'stage' | 'verify', done: number, total: number) => void;
}

async function lockAll(ts: Toolstack, srUuids: Iterable<string>): Promise<SrLock[]> {
  const locks: SrLock[] = [];
  try {
    // Sorted, so two commands locking overlapping SR sets cannot deadlock.
    for (const u of [...new Set(srUuids)].sort()) locks.push(await lockSr(ts.lockDir, u));
    return locks;
  } catch (e) {
    for (const l of locks) l.release();
    throw e;
  }
}

function srUuidsOf(ts: Toolstack, requests: readonly MoveRequest[]): string[] {
  const out: string[] = [];
  for (const r of requests) {
    out.push(r.srUuid);
    const v = ts.db.getByUuid('VDI', r.vdiUuid);
    const sr = v ? ts.db.get('SR', String(v['SR'])) : undefined;
    if (sr) out.push(String(sr['uuid']));
  }
  return out.filter((u) => ts.db.getByUuid('SR', u) !== undefined);
}

/** assert-can-migrate: the checks alone (nothing is created). */
export async function assertCanMigrate(ts: Toolstack, requests: readonly MoveRequest[], mode: MoveMode = 'migrate'): Promise<MigrationPlan> {
  return checkMigration(ts, requests, mode);
}

interface Made {
  plan: PlannedCopy;
  dest: DbRecord;
  destHandle: VdiHandle;
  destPath?: DataPath;
  destAttached: boolean;
  srcAttached: boolean;
  hidden: boolean;
  staging?: string;
}

/**
 * Copies (mode copy) or moves (mode migrate: with their snapshots, then the
 * sources are deleted) the requested VDIs. Throws MigrationRefused before
 * anything is created when any check fails.
 */
export async function moveVdis(ts: Toolstack, requests: readonly MoveRequest[], mode: MoveMode, o: MoveOptions = {}): Promise<MovedVdi[]> {
  await checkMigration(ts, requests, mode); // refuse early, before taking locks
  await recoverInterruptedCopies(ts);
  const locks = await lockAll(ts, srUuidsOf(ts, requests));
  const journal: CopyJournal = { id: randomUUID(), pid: process.pid, mode, state: 'copying', sources: [], items: [] };
  let moved: MovedVdi[];
  try {
    moved = await ts.db.transaction(async () => {
      const plan = await checkMigration(ts, requests, mode); // again, under the locks
      return copyAll(ts, plan, journal, o);
    });
    if (journal.items.length === 0) return moved;
    journal.state = 'switched';
    if (mode === 'migrate') journal.sources = moved.map((m) => ({ sr: String(ts.db.getByUuid('SR', srOfSource(ts, m.source))!['uuid']), uuid: m.source }));
    writeJournal(ts.lockDir, journal);
  } catch (e) {
    removeJournalIfClean(ts, journal);
    throw e;
  } finally {
    for (const l of locks) l.release();
  }
  await finish(ts, journal);
  return moved;
}

function srOfSource(ts: Toolstack, vdiUuid: string): string {
  const v = ts.db.getByUuid('VDI', vdiUuid)!;
  return String(ts.db.get('SR', String(v['SR']))!['uuid']);
}

/** After a failure that undid everything, the journal has nothing left to recover. */
function removeJournalIfClean(ts: Toolstack, j: CopyJournal): void {
  if (j.items.every((i) => !i.srcAttached && !i.destAttached && i.destUuid === '')) removeJournal(ts.lockDir, j.id);
}

async function copyAll(ts: Toolstack, plan: MigrationPlan, journal: CopyJournal, o: MoveOptions): Promise<MovedVdi[]> {
  const made: Made[] = [];
  try {
    for (const pc of plan.copies) made.push(await copyOne(ts, pc, journal, made, o));
  } catch (e) {
    await undo(ts, journal, made);
    throw e;
  }
  // Switch over: the records the destinations get (xapi copies these on migrate).
  const byOldRef = new Map(made.map((m) => [m.plan.vdi.ref, m.dest.ref]));
  for (const m of made) {
    const src = m.plan.vdi;
    const ref = m.dest.ref;
    ts.db.set('VDI', ref, 'name_label', src['name_label']);
    ts.db.set('VDI', ref, 'name_description', src['name_description']);
    ts.db.set('VDI', ref, 'other_config', { ...(src['other_config'] as object) });
    ts.db.set('VDI', ref, 'sharable', Boolean(src['sharable']));
    if (plan.mode === 'migrate' && src['is_a_snapshot']) {
      ts.db.set('VDI', ref, 'is_a_snapshot', true);
      ts.db.set('VDI', ref, 'snapshot_of', byOldRef.get(String(src['snapshot_of'])) ?? NULL_REF);
      ts.db.set('VDI', ref, 'snapshot_time', src['snapshot_time']);
    }
  }
  return made.map((m) => ({
    source: String(m.plan.vdi['uuid']),
    dest: String(m.dest['uuid']),
    destSr: String(m.plan.destSr['uuid']),
    ...(m.plan.snapshotOf !== undefined ? { snapshotOf: m.plan.snapshotOf } : {}),
  }));
}

async function copyOne(ts: Toolstack, pc: PlannedCopy, journal: CopyJournal, made: Made[], o: MoveOptions): Promise<Made> {
  const src = pc.vdi;
  const size = Number(src['virtual_size']);
  const item = {
    srcSr: String(pc.srcSr['uuid']), srcUuid: String(src['uuid']), srcLocation: String(src['location']), srcAttached: false,
    destSr: String(pc.destSr['uuid']), destUuid: '', destLocation: '', destAttached: false,
  } as CopyJournal['items'][number];
  journal.items.push(item);
  writeJournal(ts.lockDir, journal);
  const dest = await createVdi(ts, pc.destSr, {
    virtualSize: size,
    nameLabel: String(src['name_label']),
    nameDescription: String(src['name_description']),
    type: String(src['type'] || 'user'),
    format: pc.format,
    imageMeta: carriedImageMeta(src),
  });
  const m: Made = { plan: pc, dest, destHandle: handleOf(dest), destAttached: false, srcAttached: false, hidden: false };
  made.push(m);
  item.destUuid = m.destHandle.uuid;
  item.destLocation = m.destHandle.location;
  writeJournal(ts.lockDir, journal);

  item.destAttached = item.srcAttached = true; // journalled before the calls: a kill mid-call still gets undone
  writeJournal(ts.lockDir, journal);
  const srcPath = await attachVdi(ts, pc.srcSr, handleOf(src), false, src['sm_config'] as Record<string, string>);
  m.srcAttached = true;
  const destPath = await attachVdi(ts, pc.destSr, m.destHandle, true, dest['sm_config'] as Record<string, string>);
  m.destAttached = true;
  m.destPath = destPath;
  if (canHide(destPath)) {
    await opsFor(destPath.format).setHidden(destPath.path, true);
    m.hidden = true;
  }
  const staging = join(stagingDir(srcPath, destPath), `.${m.destHandle.uuid}.copy-staging`);
  m.staging = item.staging = staging;
  writeJournal(ts.lockDir, journal);

  const progress: ProgressFn | undefined = o.progress ? (phase, done, total) => o.progress!(String(src['uuid']), phase, done, total) : undefined;
  try {
    await copyImage(srcPath, destPath, size, { stagingPath: staging, ...(progress ? { progress } : {}) });
  } finally {
    rmSync(staging, { force: true });
  }
  if (m.hidden) {
    await opsFor(destPath.format).setHidden(destPath.path, false);
    m.hidden = false;
  }
  await detachVdi(ts, pc.destSr, m.destHandle);
  m.destAttached = false;
  await detachVdi(ts, pc.srcSr, handleOf(src));
  m.srcAttached = false;
  made.pop();
  return m;
}

/**
 * The machine data (docs/image-meta.md) a copy must keep: what a reader of the
 * source sees, as its driver last reported it (sm_config image-meta, with
 * image-meta-from naming the image it comes from, maybe an ancestor). The copy
 * is flat, so the destination gets it as its own value, at vdi_create: the
 * destination driver checks it before anything exists. A bare image-meta
 * without image-meta-from is a toolstack's note, not the image's data.
 */
function carriedImageMeta(src: DbRecord): string | undefined {
  const sm = (src['sm_config'] ?? {}) as Record<string, unknown>;
  const text = sm['image-meta'];
  return typeof text === 'string' && typeof sm['image-meta-from'] === 'string' ? text : undefined;
}

function isRegularFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Whether to hide the destination while it is filled: only an image file. The
 * file SRs' scan skips a hidden leaf and their GC removes it, so a killed copy
 * leaves nothing visible even before the journal is replayed. On a block device
 * the lvm driver keeps hidden leaves forever (vdi_delete and a writable attach
 * refuse them, no GC collects them), so a hidden half-made LV could never be
 * removed; left visible, the journal's recovery (run before any smctl sr-scan)
 * attaches it, sees it is writable and deletes it. (A raw image's hidden flag is
 * a sidecar file, which means nothing beside /dev/<vg>/LV-<uuid> anyway.)
 */
function canHide(dest: DataPath): boolean {
  return isRegularFile(dest.path);
}

/**
 * Where a staging raw file goes (vhd <-> qcow2 only): beside the destination
 * image when it is a file (same file system, and the SR's own space), else
 * beside the source, else SM_COPY_STAGING_DIR. Never next to a block device:
 * /dev/<vg>/ is a RAM file system.
 */
function stagingDir(src: DataPath, dest: DataPath): string {
  if (isRegularFile(dest.path)) return dirname(dest.path);
  if (isRegularFile(src.path)) return dirname(src.path);
  return env.copyStagingDir();
}

/** Undoes the copies made so far: detach both sides, delete the destinations. */
async function undo(ts: Toolstack, journal: CopyJournal, made: Made[]): Promise<void> {
  for (const m of made.reverse()) {
    if (m.staging) rmSync(m.staging, { force: true });
    // Unhidden while still attached: an LV's image is only reachable while it is attached.
    if (m.hidden && m.destPath) await opsFor(m.destPath.format).setHidden(m.destPath.path, false).catch(() => undefined);
    if (m.destAttached) await detachVdi(ts, m.plan.destSr, m.destHandle).catch(() => undefined);
    if (m.srcAttached) await detachVdi(ts, m.plan.srcSr, handleOf(m.plan.vdi)).catch(() => undefined);
    await deleteVdi(ts, m.plan.destSr, m.destHandle);
  }
  for (const i of journal.items) {
    i.srcAttached = i.destAttached = false;
    i.destUuid = '';
  }
}

/** After the switch-over: delete the sources (migrate), then drop the journal. */
async function finish(ts: Toolstack, j: CopyJournal): Promise<void> {
  for (const s of j.sources) {
    const sr = ts.db.getByUuid('SR', s.sr);
    if (!sr) continue;
    await ts.mutate(s.sr, async () => {
      const vdi = ts.db.getByUuid('VDI', s.uuid);
      if (vdi) await deleteVdi(ts, sr, handleOf(vdi));
    });
  }
  removeJournal(ts.lockDir, j.id);
}

/**
 * Finishes or undoes the copies of smctl processes that died (SIGKILL, power
 * loss). A copy that never switched over is undone: both sides detached, the
 * hidden half-made destination removed (the destination SR's scan collects
 * it). One that switched over gets its sources deleted. Returns what it did.
 */
export async function recoverInterruptedCopies(ts: Toolstack): Promise<string[]> {
  const { journals, errors } = readJournals(ts.lockDir);
  for (const e of errors) ts.warnings.push(e);
  const done: string[] = [];
  for (const j of journals) {
    if (processAlive(j.pid)) continue;
    // The switch-over commits the destination records: if they are there, it happened.
    const committed = j.state === 'switched' || (j.items.length > 0 && j.items.every((i) => i.destUuid !== '' && ts.db.getByUuid('VDI', i.destUuid)));
    if (committed) {
      if (j.mode === 'migrate' && j.sources.length === 0) j.sources = j.items.filter((i) => ts.db.getByUuid('VDI', i.destUuid)).map((i) => ({ sr: i.srcSr, uuid: i.srcUuid }));
      await finish(ts, j);
      done.push(`finished interrupted ${j.mode} ${j.id}`);
      continue;
    }
    for (const i of j.items) {
      if (i.staging) rmSync(i.staging, { force: true });
      const srcSr = ts.db.getByUuid('SR', i.srcSr);
      if (i.srcAttached && srcSr)
        await ts.mutate(i.srcSr, () => detachVdi(ts, srcSr, { ref: '', uuid: i.srcUuid, location: i.srcLocation })).catch((e: Error) => ts.warnings.push(`recovery: detaching source ${i.srcUuid}: ${e.message}`));
      const destSr = ts.db.getByUuid('SR', i.destSr);
      if (i.destUuid === '' || !destSr) continue;
      const h: VdiHandle = { ref: '', uuid: i.destUuid, location: i.destLocation };
      await ts.mutate(i.destSr, async () => {
        if (i.destAttached) await detachVdi(ts, destSr, h).catch(() => undefined);
        // A destination that was never hidden can be attached read-write: delete it; a hidden one is the scan's GC's.
        let visible = false;
        try {
          await attachVdi(ts, destSr, h, true);
          visible = true;
        } catch {
          /* hidden (the driver refuses a writable attach) or gone */
        }
        if (visible) {
          await detachVdi(ts, destSr, h);
          await deleteVdi(ts, destSr, h);
        }
        await scanSr(ts, destSr);
      }).catch((e: Error) => ts.warnings.push(`recovery: removing half-made ${i.destUuid}: ${e.message}`));
    }
    removeJournal(ts.lockDir, j.id);
    done.push(`undid interrupted ${j.mode} ${j.id}`);
  }
  return done;
}
