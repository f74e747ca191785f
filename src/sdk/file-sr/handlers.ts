// The SMAPIv1 handlers every file-based SR type shares (file, ext, nfs): VDIs
// are `<uuid>.<vhd|qcow2|raw>` files directly in <SM_SR_MOUNT_ROOT>/<sr_uuid>.
// An SR type only says how that directory comes to exist and goes away
// (FileSrType: create / attach / detach / destroy / probe); everything else —
// scan and reconciliation, VDI create/delete/snapshot/clone/resize, attach
// results, journals and crash recovery, GC — is here.
import { existsSync, rmSync, statSync } from 'node:fs';
import type { DriverInfo } from '../../driver-info.js';
import type { HandlerContext, Handlers } from '../driver.js';
import { SRError } from '../errors/sr-error.js';
import { checkSafe, opsFor, virtualSizeOf } from '../formats/index.js';
import { chooseCreateFormat, type FormatChoiceContext } from '../formats/select.js';
import { encodeMethodCall } from '../protocol/xmlrpc.js';
import type { AttachResult } from '../protocol/responses.js';
import type { RequestMap, StringMap } from '../protocol/requests.js';
import { isMountPoint } from '../tools/mount.js';
import type { XenRecord } from '../xenapi/session.js';
import { clearAttached, isAttached, markAttached, markDetached } from './attach-state.js';
import { gcChanged } from '../gc/chain-plan.js';
import { collectGarbage } from './gc.js';
import { readInventory, type Inventory } from './inventory.js';
import { checkVdiName, findVdiFile, srDirFor, vdiPath, type VdiFile } from './paths.js';
import {
  adjustVirtualAllocation,
  createdVdiFields,
  dbRecordsOfSr,
  introduceVdi,
  ownedSmConfig,
  reportedVdis,
  synchronise,
  updateVdiRecord,
  virtualAllocation,
  writeSrStats,
  type ReportedVdi,
} from './reconcile.js';
import { recoverJournals } from './recover.js';
import { applyImageMetaRequest, attachImageMeta, IMAGE_META_SM_CONFIG_KEY, imageMetaOnCreate, reportImageMeta } from './image-meta.js';
import { removeSidecar } from '../image-meta/sidecar.js';
import { resizeFile } from './resize.js';
import { finishSnapshot, snapshotFiles, snapshotMode } from './snapshot.js';

/** What the SR is made of, for the SR-level commands. */
export interface SrCall {
  sr_uuid: string;
  device_config: StringMap;
}

/** What an SR type adds to the shared file-SR core. */
export interface FileSrType {
  /** The SR type as the toolstack knows it ('file', 'ext', 'nfs'). */
  srType: string;
  /** xenstore `storage-type` of attached VDIs (`ext` for file and ext SRs, `nfs`). */
  storageType: string;
  info: DriverInfo;
  /** sr_create: make the storage (directory, file system, export subdirectory). */
  create(req: RequestMap['sr_create'], ctx: HandlerContext): Promise<void>;
  /** Make `srDir` show the SR's files. Called only when it is not attached yet. */
  attach(req: SrCall, srDir: string, ctx: HandlerContext): Promise<void>;
  /** Undo attach: afterwards `srDir` no longer exists. */
  detach(req: SrCall, srDir: string, ctx: HandlerContext): Promise<void>;
  /** Whether `srDir` currently shows the SR (default: it is a mount point). */
  isAttached?(req: SrCall, srDir: string): Promise<boolean>;
  /** sr_delete, after the SR was found empty and detached: remove what create made. */
  destroy?(req: RequestMap['sr_delete'], ctx: HandlerContext): Promise<void>;
  probe(req: RequestMap['sr_probe'], ctx: HandlerContext): Promise<string>;
}

const NULL_REF = 'OpaqueRef:NULL';

function formatContext(t: FileSrType, deviceConfig: StringMap): FormatChoiceContext {
  return {
    srType: t.srType,
    supported: t.info.supported_image_formats,
    defaultFormat: t.info.default_image_format ?? t.info.supported_image_formats[0] ?? 'vhd',
    deviceConfig,
  };
}

const ignoreGone = (e: unknown): void => {
  if (!/HANDLE_INVALID|UUID_INVALID/.test((e as Error).message)) throw e;
};

/** The VDI a request names: vdi_location when sent (xapi's key on file SRs), else vdi_uuid. */
function vdiName(req: { vdi_uuid: string; vdi_location?: string }): string {
  if (req.vdi_location !== undefined && req.vdi_location !== '') return checkVdiName('vdi_location', req.vdi_location);
  return checkVdiName('vdi_uuid', req.vdi_uuid);
}

function reported(file: VdiFile, info: { virtualSize: number; physicalSize: number; hidden: boolean }, parent: string | null, hasChildren: boolean): ReportedVdi {
  return {
    uuid: file.uuid,
    location: file.uuid,
    format: file.format,
    virtualSize: info.virtualSize,
    physicalSize: info.physicalSize,
    hidden: info.hidden,
    readOnly: info.hidden || hasChildren,
    managed: !info.hidden,
    smConfig: ownedSmConfig(file.format, parent),
  };
}

/** Sizes from the header and the file (no process), for images whose hidden flag and parent the caller knows. */
function quickInfo(file: VdiFile, hidden: boolean): { virtualSize: number; physicalSize: number; hidden: boolean } {
  const st = statSync(file.path);
  const physicalSize = file.format === 'raw' ? Math.min(st.size, st.blocks * 512) : st.size;
  return { virtualSize: virtualSizeOf(file), physicalSize, hidden };
}

function parentUuid(parentPath: string | null): string | null {
  return parentPath === null ? null : (/([0-9a-fA-F-]{36})\.(vhd|qcow2|raw)$/.exec(parentPath)?.[1]?.toLowerCase() ?? null);
}

export function attachResult(t: FileSrType, file: VdiFile): AttachResult {
  return {
    params: file.path,
    // No tapdisk on this host: xapi requires the member and takes '' as "none".
    params_nbd: '',
    o_direct: true,
    o_direct_reason: '',
    xenstore_data: {
      'storage-type': t.storageType,
      'vdi-uuid': file.uuid,
      // Our typed datapath description (docs/file-sr.md): the image and its format,
      // so a consumer never has to guess the format from the file name.
      'sm-datapath-path': file.path,
      'sm-datapath-format': file.format,
    },
  };
}

export function fileSrHandlers(t: FileSrType): Handlers {
  const attached = async (req: SrCall, srDir: string) =>
    t.isAttached ? t.isAttached(req, srDir) : existsSync(srDir) && (await isMountPoint(srDir));

  /** The SR directory of an attached SR, with interrupted operations finished. */
  async function openSr(req: SrCall, ctx: HandlerContext, recover = true): Promise<string> {
    const srDir = srDirFor(req.sr_uuid);
    if (!(await attached(req, srDir))) {
      throw new SRError('SRUnavailable', `SR ${req.sr_uuid} is not attached on this host (${srDir} is not mounted); plug its PBD first`);
    }
    if (recover) {
      const r = await recoverJournals(srDir, (m) => ctx.log.info(m));
      for (const f of r.failed) ctx.log.error(`journal not finished: ${f}`);
    }
    return srDir;
  }

  async function runGc(req: SrCall, srDir: string, ctx: HandlerContext, coalesce = true) {
    const report = await collectGarbage(srDir, { inUse: (u) => isAttached(req.sr_uuid, u), log: (m) => ctx.log.info(m), coalesce });
    for (const e of report.errors) ctx.log.error(`GC: ${e}`);
    return report;
  }

  /** Scan + reconcile + SR numbers: sr_scan, and after a GC that changed the tree. */
  async function scanAndSync(req: SrCall & { sr_ref: string }, srDir: string, ctx: HandlerContext, current?: Inventory): Promise<void> {
    const inv = current ?? (await readInventory(srDir));
    for (const e of inv.errors) ctx.log.error(`sr_scan: skipping ${e.path}: ${e.message}`);
    const vdis = reportedVdis(inv);
    await attachImageMeta(inv, vdis, (m) => ctx.log.error(m));
    const sync = await synchronise(ctx.xapi, req.sr_ref, vdis);
    ctx.log.info(`sr_scan: ${vdis.length} VDIs; introduced ${sync.introduced.length}, forgot ${sync.forgotten.length}, updated ${sync.updated.length}`);
    await writeSrStats(ctx.xapi, req.sr_ref, srDir, virtualAllocation(vdis));
  }

  function requireFile(srDir: string, uuid: string): VdiFile {
    const f = findVdiFile(srDir, uuid);
    if (f === null) throw new SRError('VDIUnavailable', `VDI ${uuid} has no image file (<uuid>.vhd, .qcow2 or .raw) in ${srDir}`);
    return f;
  }

  async function vdiRecord(ctx: HandlerContext, ref: string): Promise<XenRecord> {
    if (ref === '' || ref === NULL_REF) return {};
    return ctx.xapi.VDI.get_record(ref);
  }

  const handlers: Handlers = {
    sr_create: async (req, ctx) => {
      await t.create(req, ctx);
    },

    sr_attach: async (req, ctx) => {
      const srDir = srDirFor(req.sr_uuid);
      if (!(await attached(req, srDir))) await t.attach(req, srDir, ctx);
      await recoverJournals(srDir, (m) => ctx.log.info(m));
    },

    sr_detach: async (req, ctx) => {
      const srDir = srDirFor(req.sr_uuid);
      await t.detach(req, srDir, ctx);
      clearAttached(req.sr_uuid);
    },

    sr_probe: async (req, ctx) => t.probe(req, ctx),

    sr_scan: async (req, ctx) => {
      const srDir = await openSr(req, ctx);
      // Only garbage here: a scan must stay quick on a large SR, so the data-moving
      // coalesces run after vdi_delete and on demand (bin/sm-gc), as sm runs them
      // outside the scan (SMGC@<sr>).
      const gc = await runGc(req, srDir, ctx, false);
      // GC's last read of the headers is the SR as it is now: one header pass, not two.
      await scanAndSync(req, srDir, ctx, gc.finalInventory);
    },

    sr_update: async (req, ctx) => {
      const srDir = await openSr(req, ctx);
      const inv = await readInventory(srDir);
      await writeSrStats(ctx.xapi, req.sr_ref, srDir, virtualAllocation(reportedVdis(inv)));
    },

    sr_delete: async (req, ctx) => {
      const srDir = srDirFor(req.sr_uuid);
      const wasAttached = await attached(req, srDir);
      if (!wasAttached) await t.attach(req, srDir, ctx);
      try {
        await recoverJournals(srDir, (m) => ctx.log.info(m));
        await runGc(req, srDir, ctx);
        const inv = await readInventory(srDir);
        const left = [...inv.vdis.keys(), ...inv.errors.map((e) => e.path)];
        if (left.length > 0) {
          throw new SRError('SRNotEmpty', `SR ${req.sr_uuid} still holds ${left.length} VDI(s): ${left.slice(0, 10).join(', ')}${left.length > 10 ? ', ...' : ''}; destroy them first`);
        }
      } catch (e) {
        if (!wasAttached) await t.detach(req, srDir, ctx).catch((d: unknown) => ctx.log.error(`detach after failed delete: ${(d as Error).message}`));
        throw e;
      }
      await t.detach(req, srDir, ctx);
      clearAttached(req.sr_uuid);
      await t.destroy?.(req, ctx);
    },

    vdi_create: async (req, ctx) => {
      const uuid = checkVdiName('vdi_uuid', req.vdi_uuid);
      // Format first: an unsupported one fails before anything exists.
      const format = chooseCreateFormat(req.vdi_sm_config, formatContext(t, req.device_config));
      // Machine data (sm_config:image-meta) is checked before anything exists, too.
      const applyMeta = imageMetaOnCreate(req.vdi_sm_config);
      const srDir = await openSr(req, ctx);
      const existing = findVdiFile(srDir, uuid);
      if (existing !== null) throw new SRError('VDIExists', `VDI ${uuid} already has an image file: ${existing.path}`);
      const file: VdiFile = { uuid, format, path: vdiPath(srDir, uuid, format) };
      const ops = opsFor(format);
      await ops.create(file.path, req.size);
      try {
        await applyMeta(file);
        const info = quickInfo(file, false);
        const text = req.vdi_sm_config[IMAGE_META_SM_CONFIG_KEY];
        // The record says the value is the image's own, as every later report will.
        const r = { ...reported(file, info, null, false), ...(text !== undefined ? { imageMeta: { text, from: uuid } } : {}) };
        await introduceVdi(ctx.xapi, req.sr_ref, r, createdVdiFields(req));
        await adjustVirtualAllocation(ctx.xapi, req.sr_ref, info.virtualSize);
      } catch (e) {
        // Not introduced: the file must not outlive the failed call.
        rmSync(file.path, { force: true });
        removeSidecar(file.path);
        throw e;
      }
      return { uuid, location: uuid };
    },

    vdi_delete: async (req, ctx) => {
      const uuid = vdiName(req);
      const srDir = await openSr(req, ctx);
      const file = findVdiFile(srDir, uuid);
      if (file === null) {
        // Idempotent, as FileSR: already gone is success; the record goes too.
        if (req.vdi_ref !== '') await ctx.xapi.VDI.db_forget(req.vdi_ref).catch(ignoreGone);
        return;
      }
      if (isAttached(req.sr_uuid, uuid)) throw new SRError('VDIInUse', `VDI ${uuid} is attached on this host; detach it first`);
      const inv = await readInventory(srDir);
      const node = inv.vdis.get(uuid);
      const ops = opsFor(file.format);
      const info = node ?? (await ops.info(file.path));
      if (info.hidden) throw new SRError('VDIDelete', `VDI ${uuid} is a hidden base copy; base copies are removed by GC once nothing uses them`);
      if (node !== undefined && node.children.length > 0) {
        // Others are built on it: hide it now, GC removes it with its last child.
        await ops.setHidden(file.path, true);
      } else {
        rmSync(file.path, { force: true });
        removeSidecar(file.path);
      }
      if (req.vdi_ref !== '') await ctx.xapi.VDI.db_forget(req.vdi_ref).catch(ignoreGone);
      await adjustVirtualAllocation(ctx.xapi, req.sr_ref, -info.virtualSize);
      const gc = await runGc(req, srDir, ctx);
      if (gcChanged(gc)) await scanAndSync(req, srDir, ctx);
    },

    vdi_snapshot: (req, ctx) => snapshotOrClone(req, ctx),
    vdi_clone: (req, ctx) => snapshotOrClone(req, ctx),

    vdi_resize: async (req, ctx) => {
      const uuid = vdiName(req);
      const srDir = await openSr(req, ctx);
      if (isAttached(req.sr_uuid, uuid)) throw new SRError('VDIInUse', `VDI ${uuid} is attached; file SRs resize offline only`);
      const out = await resizeFile(srDir, uuid, req.new_size);
      const file = requireFile(srDir, uuid);
      const info = quickInfo(file, false);
      if (req.vdi_ref !== '') {
        await ctx.xapi.VDI.set_virtual_size(req.vdi_ref, info.virtualSize);
        await ctx.xapi.VDI.set_physical_utilisation(req.vdi_ref, info.physicalSize);
      }
      await adjustVirtualAllocation(ctx.xapi, req.sr_ref, out.to - out.from);
      return { uuid, location: uuid };
    },

    vdi_attach: async (req, ctx) => {
      const uuid = vdiName(req);
      const srDir = await openSr(req, ctx);
      const file = requireFile(srDir, uuid);
      const info = await opsFor(file.format).info(file.path);
      if (info.hidden && req.writable) throw new SRError('VDIUnavailable', `VDI ${uuid} is a read-only base copy; attach it read-only`);
      checkSafe({ path: file.path, format: file.format }, srDir);
      markAttached(req.sr_uuid, uuid, req.writable);
      return attachResult(t, file);
    },

    vdi_detach: async (req) => {
      markDetached(req.sr_uuid, vdiName(req));
    },

    vdi_activate: async (req, ctx) => {
      const uuid = vdiName(req);
      const srDir = await openSr(req, ctx, false);
      const file = requireFile(srDir, uuid);
      checkSafe({ path: file.path, format: file.format }, srDir);
      markAttached(req.sr_uuid, uuid, req.writable);
    },

    vdi_deactivate: async (req) => {
      // Nothing runs between activate and deactivate here (no tapdisk); the
      // attach marker stays until vdi_detach.
      vdiName(req);
    },

    vdi_introduce: async (req, ctx) => {
      const uuid = checkVdiName('new_uuid', req.new_uuid);
      const location = checkVdiName('vdi_location', req.vdi_location);
      if (location !== uuid) {
        throw new SRError('BadRequest', `vdi_location ${location} differs from new_uuid ${uuid}; on a ${t.srType} SR the location is the VDI uuid (file <uuid>.<ext>)`);
      }
      const srDir = await openSr(req, ctx);
      const db = await dbRecordsOfSr(ctx.xapi, req.sr_ref);
      for (const rec of Object.values(db)) {
        if (String(rec['uuid']).toLowerCase() === uuid || String(rec['location']).toLowerCase() === location) {
          throw new SRError('VDIExists', `SR ${req.sr_uuid} already has a VDI with uuid or location ${uuid}`);
        }
      }
      const exists = await ctx.xapi.VDI.get_by_uuid(uuid).then(() => true, () => false);
      if (exists) throw new SRError('VDIExists', `a VDI with uuid ${uuid} already exists`);
      const file = requireFile(srDir, location);
      checkSafe({ path: file.path, format: file.format }, srDir);
      const info = await opsFor(file.format).info(file.path);
      const inv = await readInventory(srDir);
      const r = reported(file, info, parentUuid(info.parent), (inv.vdis.get(uuid)?.children.length ?? 0) > 0);
      await introduceVdi(ctx.xapi, req.sr_ref, r, { sm_config: req.vdi_sm_config });
      return { uuid, location };
    },

    vdi_update: async (req, ctx) => {
      const uuid = vdiName(req);
      const srDir = await openSr(req, ctx, false);
      requireFile(srDir, uuid);
      if (req.vdi_ref === '') return;
      // One scan gives the image's size, flag and parent, and whether others build on it.
      const node = (await readInventory(srDir)).vdis.get(uuid);
      if (node === undefined) throw new SRError('VDIUnavailable', `VDI ${uuid}: its image could not be read (see the log)`);
      const file: VdiFile = { uuid, format: node.format, path: node.path };
      const rec = await vdiRecord(ctx, req.vdi_ref);
      await updateVdiRecord(ctx.xapi, req.vdi_ref, rec, reported(file, node, node.parent, node.children.length > 0));
      await applyImageMetaRequest(ctx.xapi, req.vdi_ref, rec, file);
      await reportImageMeta(ctx.xapi, req.vdi_ref, rec, file);
    },

    vdi_generate_config: async (req, ctx) => {
      const uuid = vdiName(req);
      const srDir = await openSr(req, ctx, false);
      requireFile(srDir, uuid);
      // As FileSR: a methodCall for vdi_attach_from_config, replayed by static-vdis without xapi.
      return encodeMethodCall('vdi_attach_from_config', [
        { device_config: req.device_config, sr_uuid: req.sr_uuid, vdi_uuid: uuid, command: 'vdi_attach_from_config' },
      ]);
    },

    vdi_attach_from_config: async (req, ctx) => {
      const uuid = checkVdiName('vdi_uuid', req.vdi_uuid);
      const srDir = srDirFor(req.sr_uuid);
      if (!(await attached(req, srDir))) await t.attach(req, srDir, ctx);
      const file = requireFile(srDir, uuid);
      checkSafe({ path: file.path, format: file.format }, srDir);
      markAttached(req.sr_uuid, uuid, true);
      return attachResult(t, file);
    },

    vdi_detach_from_config: async (req) => {
      markDetached(req.sr_uuid, checkVdiName('vdi_uuid', req.vdi_uuid));
    },
  };

  async function snapshotOrClone(req: RequestMap['vdi_snapshot'] | RequestMap['vdi_clone'], ctx: HandlerContext) {
    const uuid = vdiName(req);
    const mode = snapshotMode(req.driver_params, req.command);
    const srDir = await openSr(req, ctx);
    const out = await snapshotFiles(srDir, uuid, { op: req.command, mode, formats: formatContext(t, req.device_config) });
    const j = out.journal;
    const src = await vdiRecord(ctx, req.vdi_ref);
    const baseFile: VdiFile = { uuid: j.base, format: j.srcFormat, path: vdiPath(srDir, j.base, j.srcFormat) };
    const baseInfo = quickInfo(baseFile, true);
    await introduceVdi(ctx.xapi, req.sr_ref, reported(baseFile, baseInfo, out.baseParent, true), { name_label: 'base copy', type: String(src['type'] ?? 'user') || 'user' });
    const leafFile: VdiFile = { uuid, format: j.leafFormat, path: vdiPath(srDir, uuid, j.leafFormat) };
    const leafInfo = quickInfo(leafFile, false);
    if (req.vdi_ref !== '') await updateVdiRecord(ctx.xapi, req.vdi_ref, src, reported(leafFile, leafInfo, j.base, false));
    let result = { uuid: j.base, location: j.base };
    if (j.clone !== null) {
      const cloneFile: VdiFile = { uuid: j.clone, format: j.leafFormat, path: vdiPath(srDir, j.clone, j.leafFormat) };
      const cloneInfo = quickInfo(cloneFile, false);
      await introduceVdi(ctx.xapi, req.sr_ref, reported(cloneFile, cloneInfo, j.base, false), {
        name_label: String(src['name_label'] ?? ''),
        name_description: String(src['name_description'] ?? ''),
        type: String(src['type'] ?? 'user') || 'user',
        read_only: false,
      });
      result = { uuid: j.clone, location: j.clone };
    }
    if (mode !== 'internal') await adjustVirtualAllocation(ctx.xapi, req.sr_ref, out.virtualSize);
    finishSnapshot(srDir, j);
    return result;
  }

  return handlers;
}
