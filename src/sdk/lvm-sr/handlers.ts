// The SMAPIv1 handlers of the `lvm` SR type (xapi's LVHDSR layout, spec §5.5):
// VG VG_XenStorage-<sr> over device-config:device, one LV per VDI
// (VHD-/QCOW2-/LV-<uuid>), the MGT metadata volume, journals in MGT.
// Format rules and format selection are the file drivers' (src/sdk/formats).
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DriverInfo, ImageFormat } from '../../driver-info.js';
import type { HandlerContext, Handlers } from '../driver.js';
import { env } from '../env.js';
import { SRError } from '../errors/sr-error.js';
import { roundVirtualSize } from '../formats/rules.js';
import { chooseCreateFormat, type FormatChoiceContext } from '../formats/select.js';
import { createdVdiFields, introduceVdi, updateVdiRecord, dbRecordsOfSr, type ReportedVdi } from '../file-sr/reconcile.js';
import { snapshotMode } from '../file-sr/snapshot.js';
import type { AttachResult } from '../protocol/responses.js';
import type { RequestMap, StringMap } from '../protocol/requests.js';
import { encodeMethodCall, escapeXml } from '../protocol/xmlrpc.js';
import { refuseRootDevices } from '../pv-devices.js';
import { zeroOut } from '../tools/blkdiscard.js';
import * as lvm from '../tools/lvm.js';
import { ToolError } from '../tools/run.js';
import type { XenRecord } from '../xenapi/session.js';
import { fistPoint } from './fist.js';
import { moveVhdFooterToEnd } from './vhd-parent.js';
import { lvSizeFor, setHiddenFlag, writeEmptyImage } from './images.js';
import { chainOf, lvsToOpen, readInventory, type Inventory, type VdiNode } from './inventory.js';
import { effectiveValue, mgtRefsOf, prepareForCreate, unreferencedMgtRefs, writeOwnValue } from './image-meta.js';
import { ImageMetaError } from '../image-meta/errors.js';
import { validateMetaText } from '../image-meta/rules.js';
import type { ImageMetaReport } from '../image-meta/sm-config.js';
import type { MgtContent } from './mgt.js';
import { replayXapiJournals, xapiJournals } from './xapi-journals.js';
import { openMetadata, type SrMetadata } from './metadata.js';
import type { ResizeJournal, VdiMeta } from './mgt.js';
import { checkUuid, lvDevicePath, lvNameOf, MGT_LV, parseLvName, srUuidOfVg, VDI_TYPE, VG_PREFIX } from './naming.js';
import { allHeld, clearRefcounts, holdersOf } from './refcount.js';
import { recoverSnapshot, snapshotLv } from './snapshot.js';
import { ALLOCATION_KEY, allocationForCreate, allocationOf, deflate, inflate, newLvSize, recoverProvision, resizedLvSize, shrinkBack } from './provisioning.js';
import { clearDeflateMark, deflateMarked, markDeflate } from './provision-marks.js';
import { gcChanged } from '../gc/chain-plan.js';
import { collectLvmGarbage, recoverGcJournal } from './gc.js';
import { recordAttachedDevices } from './attached-devices.js';
import * as vhdUtil from '../tools/vhd-util.js';
import * as qemuImg from '../tools/qemu-img.js';
import { errText, holdLv, openLvmSr, releaseLv, wipeStart, withLvPath, withLvPaths, type LvmSr } from './sr.js';

const NULL_REF = 'OpaqueRef:NULL';
const MiB = 1024 * 1024;

const ignoreGone = (e: unknown): void => {
  if (!/HANDLE_INVALID|UUID_INVALID/.test((e as Error).message)) throw e;
};

/** Runtime marker: the SR is attached (plugged) on this host. */
function attachedMarker(srUuid: string): string {
  return join(env.runDir(), 'lvm-sr', checkUuid('sr_uuid', srUuid), 'attached');
}

function formatContext(info: DriverInfo, deviceConfig: StringMap): FormatChoiceContext {
  return { srType: 'lvm', supported: info.supported_image_formats, defaultFormat: info.default_image_format ?? 'vhd', deviceConfig };
}

/** The VDI a request names: vdi_location when sent, else vdi_uuid (both are the uuid on an lvm SR). */
function vdiName(req: { vdi_uuid: string; vdi_location?: string }): string {
  if (req.vdi_location !== undefined && req.vdi_location !== '') return checkUuid('vdi_location', req.vdi_location);
  return checkUuid('vdi_uuid', req.vdi_uuid);
}

function smConfigOf(node: { format: ImageFormat; parent: string | null }): Record<string, string> {
  return { 'image-format': node.format, vdi_type: VDI_TYPE[node.format], ...(node.parent !== null ? { 'vhd-parent': node.parent } : {}) };
}

/** sm_config keys of machine-data requests (as the file SRs: src/sdk/file-sr/image-meta.ts). */
const SM_IMAGE_META = 'image-meta';
const SM_IMAGE_META_SET = 'image-meta-set';
const IMAGE_META_INHERIT = 'inherit';

/** What a record shows for `uuid`: its effective machine data and the VDI it comes from. */
function imageMetaOf(inv: Inventory, content: MgtContent, uuid: string): ImageMetaReport {
  const e = effectiveValue(inv, content, uuid);
  return { text: e.text, from: e.from };
}

function reported(node: VdiNode, imageMeta?: ImageMetaReport): ReportedVdi {
  return {
    ...(imageMeta !== undefined ? { imageMeta } : {}),
    uuid: node.uuid,
    location: node.uuid,
    format: node.format,
    virtualSize: node.virtualSize,
    // LVHD reports the LV size as the VDI's physical utilisation.
    physicalSize: node.lvSize,
    hidden: node.hidden,
    readOnly: node.hidden || node.children.length > 0,
    managed: !node.hidden,
    smConfig: smConfigOf(node),
  };
}

/** What a scan reports: every VDI LV except hidden leaves (deleted VDIs awaiting GC). */
function reportedVdis(inv: Inventory, content?: MgtContent): ReportedVdi[] {
  return [...inv.vdis.values()].filter((v) => !(v.hidden && v.children.length === 0)).map((v) => reported(v, content === undefined ? undefined : imageMetaOf(inv, content, v.uuid)));
}

function metaFromRequest(req: RequestMap['vdi_create'], format: ImageFormat): VdiMeta {
  return {
    name_label: req.name_label,
    name_description: req.name_description,
    is_a_snapshot: req.is_a_snapshot,
    snapshot_of: req.snapshot_of || NULL_REF,
    snapshot_time: req.snapshot_time || '19700101T00:00:00Z',
    type: req.vdi_type ?? 'user',
    vdi_type: VDI_TYPE[format],
    read_only: req.read_only,
    managed: true,
    metadata_of_pool: req.metadata_of_pool || NULL_REF,
  };
}

function metaFromRecord(rec: XenRecord, vdiType: string, over: Partial<VdiMeta> = {}): VdiMeta {
  const s = (k: string, d = ''): string => (rec[k] === undefined || rec[k] === null ? d : String(rec[k]));
  return {
    name_label: s('name_label'),
    name_description: s('name_description'),
    is_a_snapshot: Boolean(rec['is_a_snapshot']),
    snapshot_of: s('snapshot_of', NULL_REF),
    snapshot_time: s('snapshot_time', '19700101T00:00:00Z'),
    type: s('type', 'user') || 'user',
    vdi_type: vdiType,
    read_only: Boolean(rec['read_only']),
    managed: rec['managed'] === undefined ? true : Boolean(rec['managed']),
    metadata_of_pool: s('metadata_of_pool', NULL_REF),
    ...over,
  };
}

/**
 * updateVdiRecord (shared with the file SRs) owns image-format and vhd-parent;
 * on an lvm SR `vdi_type` is ours too (a raw VDI snapshotted into VHD changes it).
 */
async function updateRecord(ctx: HandlerContext, ref: string, rec: XenRecord, r: ReportedVdi): Promise<boolean> {
  let changed = await updateVdiRecord(ctx.xapi, ref, rec, r);
  const sm = (typeof rec['sm_config'] === 'object' && rec['sm_config'] !== null ? rec['sm_config'] : {}) as Record<string, unknown>;
  const want = r.smConfig['vdi_type'];
  if (want !== undefined && sm['vdi_type'] !== want) {
    if (sm['vdi_type'] !== undefined) await ctx.xapi.VDI.remove_from_sm_config(ref, 'vdi_type');
    await ctx.xapi.VDI.add_to_sm_config(ref, 'vdi_type', want);
    changed = true;
  }
  return changed;
}

export function attachResult(sr: LvmSr, node: { uuid: string; format: ImageFormat; lvName: string }): AttachResult {
  const path = lvDevicePath(sr.uuid, node.lvName);
  return {
    params: path,
    params_nbd: '',
    o_direct: true,
    o_direct_reason: '',
    xenstore_data: {
      'storage-type': 'lvm',
      'vdi-type': VDI_TYPE[node.format],
      'vdi-uuid': node.uuid,
      'sm-datapath-path': path,
      'sm-datapath-format': node.format,
    },
  };
}

export function lvmSrHandlers(info: DriverInfo): Handlers {
  /** The SR of a request; `requireAttached` refuses an SR not plugged here (SRUnavailable). */
  async function openSr(req: { sr_uuid: string; device_config: StringMap }, ctx: HandlerContext, o: { requireAttached?: boolean; recover?: boolean } = {}) {
    const sr = openLvmSr(req.sr_uuid, req.device_config);
    if ((o.requireAttached ?? true) && !existsSync(attachedMarker(sr.uuid))) {
      throw new SRError('SRUnavailable', `SR ${sr.uuid} is not attached on this host; plug its PBD first`);
    }
    let inv = await readInventoryOr(sr);
    const meta = await openMetadata(sr, (m) => ctx.log.info(m), inv.mgtExtents);
    if (o.recover ?? true) {
      if (meta.journals().length > 0) {
        await recoverJournals(sr, meta, ctx);
        inv = await readInventoryOr(sr);
      }
      const left = xapiJournals(inv);
      if (left.length > 0 && (await replayXapiJournals(sr, left, ctx.log)) > 0) inv = await readInventoryOr(sr);
    }
    return { sr, inv, meta };
  }

  async function readInventoryOr(sr: LvmSr): Promise<Inventory> {
    try {
      return await readInventory(sr);
    } catch (e) {
      if (e instanceof ToolError && /not found|Cannot process volume group|does not exist/i.test(e.stderr)) {
        throw new SRError('SRUnavailable', `volume group ${sr.vg} is not on ${sr.devices.join(', ')}`, { cause: e });
      }
      throw e;
    }
  }

  async function recoverJournals(sr: LvmSr, meta: SrMetadata, ctx: HandlerContext): Promise<void> {
    for (const j of [...meta.journals()]) {
      try {
        if (j.op === 'snapshot') ctx.log.info(`journal: snapshot of ${j.vdi} ${await recoverSnapshot(sr, meta, j)}`);
        else if (j.op === 'resize') ctx.log.info(`journal: resize of ${j.vdi} ${await recoverResize(sr, meta, j)}`);
        else if (j.op === 'provision') ctx.log.info(`journal: ${await recoverProvision(sr, meta, j)}`);
        else ctx.log.info(`journal: ${await recoverGcJournal(sr, meta, j)}`);
      } catch (e) {
        ctx.log.error(`journal not finished: ${JSON.stringify(j)}: ${errText(e)}`);
      }
    }
  }

  async function recoverResize(sr: LvmSr, meta: SrMetadata, j: ResizeJournal): Promise<string> {
    const inv = await readInventory(sr);
    const node = inv.vdis.get(j.vdi);
    if (node !== undefined && node.virtualSize !== j.to && node.lvSize > j.fromLvSize) {
      // The image was not grown: give back the extents added for it.
      await lvm.lvresize({ vg: sr.vg, name: node.lvName, sizeBytes: j.fromLvSize, allowShrink: true }, sr.scope);
      meta.dropJournal(j);
      return 'rolled back';
    }
    meta.dropJournal(j);
    return node !== undefined && node.virtualSize === j.to ? 'rolled forward' : 'dropped';
  }

  async function writeSrStats(ctx: HandlerContext, srRef: string, inv: Inventory): Promise<void> {
    const size = inv.layout.pvs.reduce((a, p) => a + p.pvSize, 0);
    const free = inv.layout.pvs.reduce((a, p) => a + p.pvFree, 0);
    await ctx.xapi.SR.set_physical_size(srRef, size);
    await ctx.xapi.SR.set_physical_utilisation(srRef, size - free);
    await ctx.xapi.SR.set_virtual_allocation(srRef, reportedVdis(inv).filter((r) => !r.hidden).reduce((a, r) => a + r.virtualSize, 0));
  }

  /** sr_scan's reconciliation (spec §5.1), with names from MGT for VDIs the toolstack does not know. */
  async function synchronise(ctx: HandlerContext, srRef: string, inv: Inventory, meta: SrMetadata) {
    const out = { introduced: [] as string[], forgotten: [] as string[], updated: [] as string[] };
    const db = await dbRecordsOfSr(ctx.xapi, srRef);
    const byLocation = new Map<string, [string, XenRecord]>();
    for (const [ref, rec] of Object.entries(db)) byLocation.set(String(rec['location'] ?? '').toLowerCase(), [ref, rec]);
    const seen = new Set<string>();
    for (const r of reportedVdis(inv, meta.content)) {
      seen.add(r.location);
      const hit = byLocation.get(r.location);
      if (hit === undefined) {
        const m = meta.content.vdis[r.uuid];
        await introduceVdi(ctx.xapi, srRef, r, m === undefined ? {} : {
          name_label: m.name_label, name_description: m.name_description, type: m.type, is_a_snapshot: m.is_a_snapshot,
          snapshot_time: m.snapshot_time, ...(r.hidden ? {} : { read_only: m.read_only || r.readOnly }),
        });
        out.introduced.push(r.uuid);
      } else if (await updateRecord(ctx, hit[0], hit[1], r)) {
        out.updated.push(r.uuid);
      }
    }
    for (const [loc, [ref]] of byLocation) {
      if (seen.has(loc)) continue;
      await ctx.xapi.VDI.db_forget(ref).then(() => out.forgotten.push(loc), ignoreGone);
    }
    return out;
  }

  async function adjustAllocation(ctx: HandlerContext, srRef: string, delta: number): Promise<void> {
    if (delta === 0 || srRef === '') return;
    const rec = await ctx.xapi.SR.get_record(srRef);
    await ctx.xapi.SR.set_virtual_allocation(srRef, Math.max(0, Number(rec['virtual_allocation'] ?? 0) + delta));
  }

  async function vdiRecord(ctx: HandlerContext, ref: string): Promise<XenRecord> {
    if (ref === '' || ref === NULL_REF) return {};
    return ctx.xapi.VDI.get_record(ref);
  }

  function requireNode(inv: Inventory, sr: LvmSr, uuid: string): VdiNode {
    const n = inv.vdis.get(uuid);
    if (n === undefined) {
      const bad = inv.errors.find((e) => parseLvName(e.lv)?.uuid === uuid);
      throw new SRError('VDIUnavailable', bad ? `VDI ${uuid}: LV ${bad.lv} cannot be read: ${bad.message}` : `VDI ${uuid} has no LV (VHD-, QCOW2- or LV-${uuid}) in ${sr.vg}`);
    }
    return n;
  }

  /** LVs held on this host for any leaf, by VDI uuid. */
  function attachedHere(sr: LvmSr, node: VdiNode): boolean {
    return holdersOf(sr.uuid, node.lvName).length > 0;
  }

  async function activateChain(sr: LvmSr, inv: Inventory, uuid: string): Promise<VdiNode> {
    const chain = chainOf(inv, uuid);
    const leaf = chain[0]!;
    const done: VdiNode[] = [];
    try {
      // Ancestors first: a leaf is never reachable without its parents.
      for (const n of [...chain].reverse()) {
        await holdLv(sr, n.lvName, uuid);
        done.push(n);
      }
    } catch (e) {
      for (const n of done.reverse()) await releaseLv(sr, n.lvName, uuid).catch(() => undefined);
      throw e;
    }
    return leaf;
  }

  async function releaseChain(sr: LvmSr, uuid: string): Promise<void> {
    // Every LV this leaf holds (its chain may have changed since it was attached).
    for (const [lv, holders] of allHeld(sr.uuid)) if (holders.includes(uuid)) await releaseLv(sr, lv, uuid);
  }

  const handlers: Handlers = {
    sr_create: async (req, ctx) => {
      const sr = openLvmSr(req.sr_uuid, req.device_config);
      // The provisioning mode is checked before anything is written (InvalidArg names the value).
      const srSmConfig: Record<string, unknown> = req.session_ref !== undefined && req.sr_ref !== '' && req.sr_ref !== NULL_REF
        ? await ctx.xapi.SR.get_record(req.sr_ref).then((r) => (typeof r['sm_config'] === 'object' && r['sm_config'] !== null ? r['sm_config'] : {}) as Record<string, unknown>, () => ({}))
        : {};
      const allocation = allocationForCreate(req.device_config, srSmConfig);
      for (const pv of await lvm.pvs({ devices: sr.devices }, sr.scope).catch(() => [])) {
        if (pv.vgName === sr.vg) throw new SRError('SRExists', `device ${pv.pvName} already holds VG ${pv.vgName} of SR ${sr.uuid}`);
      }
      refuseRootDevices(sr.devices);
      for (const d of sr.devices) wipeStart(d);
      try {
        await lvm.pvcreate({ devices: sr.devices }, sr.scope);
        await lvm.vgcreate({ vg: sr.vg, devices: sr.devices }, sr.scope);
      } catch (e) {
        await lvm.pvremove({ devices: sr.devices }, sr.scope).catch(() => undefined);
        throw new SRError('LVMGroupCreate', `VG ${sr.vg} on ${sr.devices.join(', ')}: ${errText(e)}`, { cause: e });
      }
      try {
        let name = '';
        let description = '';
        if (req.session_ref !== undefined && req.sr_ref !== '' && req.sr_ref !== NULL_REF) {
          const rec = await ctx.xapi.SR.get_record(req.sr_ref).catch(() => ({}) as XenRecord);
          name = String(rec['name_label'] ?? '');
          description = String(rec['name_description'] ?? '');
          // xapi's LVHDSR marks a non-legacy (VHD) SR this way.
          await ctx.xapi.SR.add_to_sm_config(req.sr_ref, 'use_vhd', 'true').catch(() => undefined);
        }
        const meta = await openMetadata(sr, (m) => ctx.log.info(m), null, { name, description });
        // Kept where xapi keeps it: the SR's sm-config and the SR record in MGT.
        if (allocationOf(meta) !== allocation) meta.update((c) => void (c.sr.allocation = allocation));
        if (req.sr_ref !== '' && req.sr_ref !== NULL_REF && srSmConfig[ALLOCATION_KEY] !== allocation) {
          await ctx.xapi.SR.add_to_sm_config(req.sr_ref, ALLOCATION_KEY, allocation).catch(() => undefined);
        }
      } catch (e) {
        await lvm.vgremove({ vg: sr.vg, force: true }, sr.scope).catch(() => undefined);
        await lvm.pvremove({ devices: sr.devices }, sr.scope).catch(() => undefined);
        throw e;
      }
    },

    sr_attach: async (req, ctx) => {
      const sr = openLvmSr(req.sr_uuid, req.device_config);
      const vg = await lvm.vgs({ vg: sr.vg }, sr.scope).catch(() => []);
      if (vg.length === 0) throw new SRError('SRUnavailable', `volume group ${sr.vg} is not on ${sr.devices.join(', ')}`);
      await openSr(req, ctx, { requireAttached: false });
      mkdirSync(join(env.runDir(), 'lvm-sr', sr.uuid), { recursive: true, mode: 0o700 });
      writeFileSync(attachedMarker(sr.uuid), `${new Date().toISOString()}\n`);
      recordAttachedDevices(sr.uuid, sr.devices);
    },

    sr_detach: async (req) => {
      const sr = openLvmSr(req.sr_uuid, req.device_config);
      const held = [...allHeld(sr.uuid)].filter(([, h]) => h.length > 0);
      if (held.length > 0) {
        throw new SRError('SRInUse', `SR ${sr.uuid} still has active LVs on this host: ${held.map(([lv, h]) => `${lv} (for ${h.join(', ')})`).join('; ')}; detach those VDIs first`);
      }
      clearRefcounts(sr.uuid);
      rmSync(attachedMarker(sr.uuid), { force: true });
    },

    sr_delete: async (req, ctx) => {
      const { sr, inv } = await openSr(req, ctx, { requireAttached: false });
      const left = [...inv.layout.lvs.keys()].filter((n) => n !== MGT_LV);
      if (left.length > 0) {
        throw new SRError('SRNotEmpty', `SR ${sr.uuid} still holds ${left.length} LV(s): ${left.slice(0, 10).join(', ')}${left.length > 10 ? ', ...' : ''}; destroy its VDIs first`);
      }
      try {
        await lvm.lvremove({ vg: sr.vg, name: MGT_LV }, sr.scope);
        await lvm.vgremove({ vg: sr.vg }, sr.scope);
        await lvm.pvremove({ devices: sr.devices }, sr.scope);
      } catch (e) {
        throw new SRError('LVMDelete', `removing ${sr.vg} from ${sr.devices.join(', ')}: ${errText(e)}`, { cause: e });
      }
      clearRefcounts(sr.uuid);
      rmSync(join(env.runDir(), 'lvm-sr', sr.uuid), { recursive: true, force: true });
    },

    sr_probe: async (req) => {
      const sr = openLvmSr('00000000-0000-0000-0000-000000000000', req.device_config);
      // One pvs per device, as sm: a device that is not a PV holds no SR (not an error).
      const pvs: lvm.PvRecord[] = [];
      for (const d of sr.devices) {
        try {
          pvs.push(...(await lvm.pvs({ devices: [d] }, { devices: [d] })));
        } catch (e) {
          if (e instanceof ToolError && /Failed to find physical volume|No device found|not found/i.test(e.stderr)) continue;
          throw new SRError('PVSfailed', `pvs on ${d}: ${errText(e)}`, { cause: e });
        }
      }
      const byVg = new Map<string, { devs: string[]; size: number }>();
      for (const p of pvs) {
        if (srUuidOfVg(p.vgName) === null) continue;
        const e = byVg.get(p.vgName) ?? { devs: [], size: 0 };
        e.devs.push(p.pvName);
        e.size += p.pvSize;
        byVg.set(p.vgName, e);
      }
      if (byVg.size === 0) return '<?xml version="1.0" ?>\n<SRlist/>\n';
      const lines = ['<?xml version="1.0" ?>', '<SRlist>'];
      for (const [vg, e] of byVg) {
        lines.push('\t<SR>', `\t\t<UUID>${escapeXml(vg.slice(VG_PREFIX.length))}</UUID>`, `\t\t<Devlist>${escapeXml(e.devs.join(','))}</Devlist>`, `\t\t<size>${e.size}</size>`, '\t</SR>');
      }
      lines.push('</SRlist>', '');
      return lines.join('\n');
    },

    sr_scan: async (req, ctx) => {
      const { inv, meta } = await openSr(req, ctx);
      for (const e of inv.errors) ctx.log.error(`sr_scan: skipping LV ${e.lv}: ${e.message}`);
      // Long machine-data values whose LV is gone, or whose writer was killed before its lvchange.
      const orphans = meta.writable ? unreferencedMgtRefs(inv, meta.content) : [];
      if (orphans.length > 0) {
        meta.update((c) => orphans.forEach((r) => delete c.image_meta[r]));
        ctx.log.info(`sr_scan: dropped ${orphans.length} MGT machine-data entries no LV refers to`);
      }
      const sync = await synchronise(ctx, req.sr_ref, inv, meta);
      ctx.log.info(`sr_scan: ${inv.vdis.size} VDI LVs; introduced ${sync.introduced.length}, forgot ${sync.forgotten.length}, updated ${sync.updated.length}`);
      await writeSrStats(ctx, req.sr_ref, inv);
    },

    sr_update: async (req, ctx) => {
      const { inv } = await openSr(req, ctx, { recover: false });
      await writeSrStats(ctx, req.sr_ref, inv);
    },

    vdi_create: async (req, ctx) => {
      const uuid = checkUuid('vdi_uuid', req.vdi_uuid);
      // Format and size first: a bad request fails before anything exists.
      const format = chooseCreateFormat(req.vdi_sm_config, formatContext(info, req.device_config));
      const virtualSize = roundVirtualSize(format, req.size);
      // Machine data too (same rules as every SR type: Layers 1-2, at most 4096 bytes).
      const metaText = req.vdi_sm_config[SM_IMAGE_META];
      if (metaText !== undefined) {
        try {
          validateMetaText(metaText);
        } catch (e) {
          throw new SRError('VDICreate', `sm_config:${SM_IMAGE_META} is refused: ${errText(e)}`, { cause: e });
        }
      }
      const { sr, inv, meta } = await openSr(req, ctx);
      const existing = [...inv.layout.lvs.keys()].find((n) => parseLvName(n)?.uuid === uuid);
      if (existing !== undefined) throw new SRError('VDIExists', `VDI ${uuid} already has an LV: ${sr.vg}/${existing}`);
      // Thin SRs: metadata only (inflated at RW attach); raw is always full size.
      const lvSize = await newLvSize(format, virtualSize, allocationOf(meta));
      const free = inv.layout.pvs.reduce((a, p) => a + p.pvFree, 0);
      if (free < lvSize) throw new SRError('SRNoSpace', `a ${format} VDI of ${virtualSize} bytes needs an LV of ${lvSize} bytes; ${sr.vg} has ${free} bytes free`);
      const lv = lvNameOf(uuid, format);
      // The LV is created with its machine-data tags: it never exists without its value.
      let prepared: { tags: string[]; mgtRef: string | null } = { tags: [], mgtRef: null };
      if (metaText !== undefined) {
        try {
          prepared = prepareForCreate(sr, meta, metaText);
        } catch (e) {
          throw new SRError('VDICreate', `sm_config:${SM_IMAGE_META}: ${errText(e)}`, { cause: e });
        }
      }
      const dropRef = (): void => {
        const r = prepared.mgtRef;
        if (r !== null && meta.content.image_meta[r] !== undefined) meta.update((c) => void delete c.image_meta[r]);
      };
      try {
        await lvm.lvcreate({ vg: sr.vg, name: lv, sizeBytes: lvSize, activate: false, tags: prepared.tags }, sr.scope);
      } catch (e) {
        dropRef();
        throw new SRError('LVMCreate', `creating LV ${sr.vg}/${lv} of ${lvSize} bytes: ${errText(e)}`, { cause: e });
      }
      try {
        await withLvPath(sr, lv, (path) => writeEmptyImage(format, path, virtualSize));
        meta.update((c) => {
          c.vdis[uuid] = metaFromRequest(req, format);
        });
        const node: VdiNode = { uuid, format, lvName: lv, lvSize, virtualSize, hidden: false, parent: null, children: [], lvReadOnly: false, tags: prepared.tags };
        const im: ImageMetaReport = metaText === undefined ? { text: null, from: null } : { text: metaText, from: uuid };
        await introduceVdi(ctx.xapi, req.sr_ref, reported(node, im), createdVdiFields(req));
        await adjustAllocation(ctx, req.sr_ref, virtualSize);
      } catch (e) {
        // Not introduced: the LV must not outlive the failed call.
        await lvm.lvremove({ vg: sr.vg, name: lv }, sr.scope).catch(() => undefined);
        if (meta.content.vdis[uuid] !== undefined) meta.update((c) => void delete c.vdis[uuid]);
        dropRef();
        throw e;
      }
      return { uuid, location: uuid };
    },

    vdi_delete: async (req, ctx) => {
      const uuid = vdiName(req);
      const { sr, inv, meta } = await openSr(req, ctx);
      const node = inv.vdis.get(uuid);
      if (node === undefined) {
        if (inv.errors.some((e) => parseLvName(e.lv)?.uuid === uuid)) requireNode(inv, sr, uuid);
        // Idempotent, as LVHDSR: already gone is success; the records go too.
        if (meta.content.vdis[uuid] !== undefined) meta.update((c) => void delete c.vdis[uuid]);
        if (req.vdi_ref !== '') await ctx.xapi.VDI.db_forget(req.vdi_ref).catch(ignoreGone);
        return;
      }
      if (attachedHere(sr, node)) throw new SRError('VDIInUse', `VDI ${uuid} is attached on this host (LV ${node.lvName} active); detach it first`);
      if (node.hidden) throw new SRError('VDIDelete', `VDI ${uuid} is a hidden base copy; deleting a non-leaf node is not permitted (bases go when nothing uses them)`);
      if (node.children.length > 0) {
        await setHiddenFlag(sr, node.lvName, node.format, (fn) => withLvPath(sr, node.lvName, fn));
      } else {
        await lvm.lvremove({ vg: sr.vg, name: node.lvName }, sr.scope);
        inv.vdis.delete(uuid);
        // A base left with no child at all is garbage now (hidden, nothing above it).
        await removeOrphanBases(sr, inv, node.parent, meta, ctx);
      }
      // The LV's tags went with it; a long value's MGT entry goes in the same MGT write as the record.
      const refs = node.children.length > 0 ? [] : mgtRefsOf(node.tags);
      meta.update((c) => {
        delete c.vdis[uuid];
        for (const r of refs) delete c.image_meta[r];
      });
      if (req.vdi_ref !== '') await ctx.xapi.VDI.db_forget(req.vdi_ref).catch(ignoreGone);
      await adjustAllocation(ctx, req.sr_ref, -node.virtualSize);
      // GC under the same lock, as sm kicks it after a delete: garbage and coalesce (leaf-coalesce: bin/sm-gc).
      if (node.children.length > 0) node.hidden = true;
      try {
        const gc = await collectLvmGarbage(sr, meta, { initial: inv, leafCoalesce: false, log: (m) => ctx.log.info(m) });
        for (const e of gc.errors) ctx.log.error(`GC: ${e}`);
        if (gcChanged(gc) && req.sr_ref !== '') await synchronise(ctx, req.sr_ref, gc.finalInventory ?? (await readInventory(sr)), meta);
      } catch (e) {
        ctx.log.error(`GC after vdi_delete of ${uuid} stopped (the delete itself is done): ${errText(e)}`);
      }
    },

    vdi_snapshot: (req, ctx) => snapshotOrClone(req, ctx),
    vdi_clone: (req, ctx) => snapshotOrClone(req, ctx),

    vdi_resize: async (req, ctx) => {
      const uuid = vdiName(req);
      const { sr, inv, meta } = await openSr(req, ctx);
      const node = requireNode(inv, sr, uuid);
      if (node.hidden) throw new SRError('VDIUnavailable', `VDI ${uuid} is a hidden base copy; it cannot be resized`);
      if (attachedHere(sr, node)) throw new SRError('VDIInUse', `VDI ${uuid} is attached; lvm SRs resize offline only`);
      const to = roundVirtualSize(node.format, req.new_size);
      if (to < node.virtualSize) throw new SRError('VDISize', `shrinking not allowed: VDI ${uuid} is ${node.virtualSize} bytes, asked for ${req.new_size}`);
      if (to > node.virtualSize) {
        const reach = lvsToOpen(inv, node);
        const lvSize = await resizedLvSize(sr, node, to, allocationOf(meta), reach);
        const j: ResizeJournal = { op: 'resize', vdi: uuid, format: node.format, fromLvSize: node.lvSize, fromVirtual: node.virtualSize, to };
        meta.putJournal(j);
        fistPoint('lvm-resize-journal');
        try {
          if (lvSize > node.lvSize) await lvm.lvextend({ vg: sr.vg, name: node.lvName, sizeBytes: lvSize }, sr.scope);
          fistPoint('lvm-resize-extend');
          if (node.format === 'vhd') {
            await withLvPath(sr, node.lvName, async (path) => {
              moveVhdFooterToEnd(path);
              await vhdUtil.resize({ path, sizeMiB: to / MiB, fast: true });
            });
          }
          // qemu-img resize opens the backing chain too: every LV of it must be reachable.
          else if (node.format === 'qcow2') await withLvPaths(sr, reach, () => qemuImg.resize({ format: 'qcow2', path: lvDevicePath(sr.uuid, node.lvName), sizeBytes: to }));
          // A raw VDI's new extents read as zeros, not as what they held before.
          else if (lvSize > node.lvSize) await withLvPath(sr, node.lvName, (path) => zeroOut({ device: path, offset: node.lvSize, length: lvSize - node.lvSize }));
          fistPoint('lvm-resize-image');
        } catch (e) {
          await recoverResize(sr, meta, j).catch(() => undefined);
          throw e instanceof SRError ? e : new SRError('VDIResize', `resizing VDI ${uuid} to ${to} bytes: ${errText(e)}`, { cause: e });
        }
        meta.dropJournal(j);
        if (req.vdi_ref !== '') {
          await ctx.xapi.VDI.set_virtual_size(req.vdi_ref, to);
          await ctx.xapi.VDI.set_physical_utilisation(req.vdi_ref, Math.max(lvSize, node.lvSize));
        }
        await adjustAllocation(ctx, req.sr_ref, to - node.virtualSize);
      }
      return { uuid, location: uuid };
    },

    vdi_attach: async (req, ctx) => {
      const uuid = vdiName(req);
      const { sr, inv, meta } = await openSr(req, ctx, { recover: false });
      const node = requireNode(inv, sr, uuid);
      if (meta.journalNames(uuid)) {
        throw new SRError('VDIUnavailable', `VDI ${uuid}: an interrupted operation is recorded for it; run sr-scan to finish it first`);
      }
      if (node.hidden && req.writable) throw new SRError('VDIUnavailable', `VDI ${uuid} is a read-only base copy; attach it read-only`);
      const inflatedFrom = req.writable ? await provisionForAttach(ctx, sr, inv, meta, node, req.vdi_ref) : null;
      try {
        await activateChain(sr, inv, uuid);
      } catch (e) {
        if (inflatedFrom !== null) await shrinkBack(sr, meta, node, inflatedFrom).catch(() => undefined);
        clearDeflateMark(sr.uuid, uuid);
        throw e;
      }
      return attachResult(sr, node);
    },

    vdi_detach: async (req, ctx) => {
      const sr = openLvmSr(req.sr_uuid, req.device_config);
      const uuid = vdiName(req);
      await releaseChain(sr, uuid);
      if (deflateMarked(sr.uuid, uuid)) await deflateAfterDetach(ctx, req, uuid);
    },

    vdi_activate: async (req, ctx) => {
      // Attach already activated the chain; activation again is a no-op (holders are a set).
      const uuid = vdiName(req);
      const { sr, inv } = await openSr(req, ctx, { recover: false });
      requireNode(inv, sr, uuid);
      await activateChain(sr, inv, uuid);
    },

    vdi_deactivate: async (req) => {
      // The LVs stay active until vdi_detach, as the attach made them.
      vdiName(req);
    },

    vdi_introduce: async (req, ctx) => {
      const uuid = checkUuid('new_uuid', req.new_uuid);
      const location = checkUuid('vdi_location', req.vdi_location);
      if (location !== uuid) throw new SRError('BadRequest', `vdi_location ${location} differs from new_uuid ${uuid}; on an lvm SR the location is the VDI uuid (LV VHD-/QCOW2-/LV-<uuid>)`);
      const { sr, inv, meta } = await openSr(req, ctx);
      const db = await dbRecordsOfSr(ctx.xapi, req.sr_ref);
      for (const rec of Object.values(db)) {
        if (String(rec['uuid']).toLowerCase() === uuid || String(rec['location']).toLowerCase() === location) {
          throw new SRError('VDIExists', `SR ${sr.uuid} already has a VDI with uuid or location ${uuid}`);
        }
      }
      const node = requireNode(inv, sr, uuid);
      const m = meta.content.vdis[uuid];
      await introduceVdi(ctx.xapi, req.sr_ref, reported(node, imageMetaOf(inv, meta.content, uuid)), { sm_config: req.vdi_sm_config, ...(m ? { name_label: m.name_label, name_description: m.name_description, type: m.type } : {}) });
      return { uuid, location };
    },

    vdi_update: async (req, ctx) => {
      const uuid = vdiName(req);
      const { sr, inv, meta } = await openSr(req, ctx, { recover: false });
      const node = requireNode(inv, sr, uuid);
      if (req.vdi_ref === '') return;
      const rec = await vdiRecord(ctx, req.vdi_ref);
      const tags = await applyImageMetaRequest(ctx, sr, meta, node, req.vdi_ref, rec);
      if (tags !== null) node.tags = tags;
      await updateRecord(ctx, req.vdi_ref, rec, reported(node, imageMetaOf(inv, meta.content, uuid)));
      // xapi calls vdi_update after setting names/snapshot fields: keep MGT in step.
      meta.update((c) => {
        c.vdis[uuid] = metaFromRecord(rec, VDI_TYPE[node.format], node.hidden ? { managed: false } : {});
      });
    },

    vdi_generate_config: async (req, ctx) => {
      const uuid = vdiName(req);
      const { sr, inv } = await openSr(req, ctx, { recover: false });
      requireNode(inv, sr, uuid);
      return encodeMethodCall('vdi_attach_from_config', [{ device_config: req.device_config, sr_uuid: req.sr_uuid, vdi_uuid: uuid, command: 'vdi_attach_from_config' }]);
    },

    vdi_attach_from_config: async (req, ctx) => {
      const uuid = checkUuid('vdi_uuid', req.vdi_uuid);
      const { sr, inv } = await openSr(req, ctx, { requireAttached: false, recover: false });
      const node = requireNode(inv, sr, uuid);
      await activateChain(sr, inv, uuid);
      return attachResult(sr, node);
    },

    vdi_detach_from_config: async (req) => {
      const sr = openLvmSr(req.sr_uuid, req.device_config);
      await releaseChain(sr, checkUuid('vdi_uuid', req.vdi_uuid));
    },
  };

  /**
   * vdi_update: a request left in sm_config `image-meta-set` (a JSON object
   * string → the VDI's own value; `inherit` → drop it) is applied and removed,
   * as on the file SRs. A refused request changes nothing. Returns the LV's new tags, or null (no request).
   */
  async function applyImageMetaRequest(ctx: HandlerContext, sr: LvmSr, meta: SrMetadata, node: VdiNode, ref: string, rec: XenRecord): Promise<string[] | null> {
    const sm = (typeof rec['sm_config'] === 'object' && rec['sm_config'] !== null ? rec['sm_config'] : {}) as Record<string, unknown>;
    const want = sm[SM_IMAGE_META_SET];
    if (typeof want !== 'string') return null;
    await ctx.xapi.VDI.remove_from_sm_config(ref, SM_IMAGE_META_SET);
    try {
      if (want !== IMAGE_META_INHERIT) validateMetaText(want);
      return await writeOwnValue(sr, meta, node.lvName, node.tags, want === IMAGE_META_INHERIT ? null : want);
    } catch (e) {
      if (e instanceof ImageMetaError) {
        throw new SRError('VDIUnavailable', `VDI ${node.uuid}: sm_config:${SM_IMAGE_META_SET} is refused (nothing changed; the request was removed): ${e.message}`, { cause: e });
      }
      throw e;
    }
  }

  /**
   * RW attach of a VHD/qcow2 VDI not yet attached here (provisioning.ts): inflated to
   * its thick size when below it (both modes, as LVHD), and marked for deflate at detach
   * on a thin SR, or when it is a snapshot on a thick one. Returns the LV size before an inflate.
   */
  async function provisionForAttach(ctx: HandlerContext, sr: LvmSr, inv: Inventory, meta: SrMetadata, node: VdiNode, vdiRef: string): Promise<number | null> {
    if (node.format === 'raw' || attachedHere(sr, node)) return null;
    let from: number | null = null;
    const thick = await lvSizeFor(node.format, node.virtualSize);
    if (node.lvSize < thick) {
      await inflate(sr, meta, node, thick, inv.layout.pvs.reduce((a, p) => a + p.pvFree, 0));
      from = node.lvSize;
      node.lvSize = thick;
    }
    const rec = await vdiRecord(ctx, vdiRef).catch((): XenRecord => ({}));
    const snapshot = rec['is_a_snapshot'] !== undefined ? Boolean(rec['is_a_snapshot']) : (meta.content.vdis[node.uuid]?.is_a_snapshot ?? false);
    if (allocationOf(meta) === 'thin' || snapshot) markDeflate(sr.uuid, node.uuid);
    return from;
  }

  /** vdi_detach of a VDI marked at attach: its LV shrunk to what the image occupies. */
  async function deflateAfterDetach(ctx: HandlerContext, req: { sr_uuid: string; device_config: StringMap }, uuid: string): Promise<void> {
    const { sr, inv, meta } = await openSr(req, ctx, { requireAttached: false, recover: false });
    const node = inv.vdis.get(uuid);
    if (node !== undefined && !attachedHere(sr, node)) {
      if (meta.journalNames(uuid)) {
        ctx.log.error(`vdi_detach: VDI ${uuid} not deflated: an interrupted operation is recorded for it (sr-scan finishes it)`);
        return;
      }
      // qemu-img check opens the backing chain; vhd-util query -s reads the leaf only.
      const reach = lvsToOpen(inv, node);
      const size = await deflate(sr, meta, node, reach);
      ctx.log.info(`vdi_detach: LV ${node.lvName} deflated from ${node.lvSize} to ${size} bytes`);
    }
    clearDeflateMark(sr.uuid, uuid);
  }

  /** After a leaf went: hidden ancestors with no child left are removed (GC of the simplest kind). */
  async function removeOrphanBases(sr: LvmSr, inv: Inventory, parent: string | null, meta: SrMetadata, ctx: HandlerContext): Promise<void> {
    let p = parent;
    while (p !== null) {
      const n = inv.vdis.get(p);
      if (n === undefined || !n.hidden) return;
      if (n.children.some((c) => inv.vdis.has(c)) || attachedHere(sr, n)) return;
      await lvm.lvremove({ vg: sr.vg, name: n.lvName }, sr.scope);
      ctx.log.info(`vdi_delete: removed base ${n.uuid}, no VDI is built on it any more`);
      meta.update((c) => {
        delete c.vdis[n.uuid];
        for (const r of mgtRefsOf(n.tags)) delete c.image_meta[r];
      });
      inv.vdis.delete(n.uuid);
      p = n.parent;
    }
  }

  async function snapshotOrClone(req: RequestMap['vdi_snapshot'] | RequestMap['vdi_clone'], ctx: HandlerContext) {
    const uuid = vdiName(req);
    const mode = snapshotMode(req.driver_params, req.command);
    const { sr, inv, meta } = await openSr(req, ctx);
    const node = requireNode(inv, sr, uuid);
    for (const n of chainOf(inv, uuid)) {
      if (attachedHere(sr, n) && n.uuid === uuid) {
        throw new SRError('VDIInUse', `VDI ${uuid} is attached on this host; snapshot of an attached VDI is not supported by this lvm driver yet (detach it first)`);
      }
    }
    // The source's machine data before: its LV (and tags) become base B, so its own value is B's now.
    const srcIm = imageMetaOf(inv, meta.content, uuid);
    const out = await snapshotLv(sr, inv, meta, uuid, { op: req.command, mode, formats: formatContext(info, req.device_config) });
    const j = out.journal;
    const src = await vdiRecord(ctx, req.vdi_ref);
    const srcMeta = meta.content.vdis[uuid] ?? metaFromRecord(src, VDI_TYPE[j.srcFormat]);
    // MGT first (records + journal dropped, one atomic write): a crash after it
    // leaves a self-describing SR that the next scan introduces from MGT.
    fistPoint('lvm-snapshot-mgt');
    meta.dropJournal(j, (c) => {
      c.vdis[j.base] = { ...srcMeta, name_label: 'base copy', name_description: '', read_only: true, managed: false, vdi_type: VDI_TYPE[j.srcFormat] };
      c.vdis[uuid] = { ...srcMeta, vdi_type: VDI_TYPE[j.leafFormat] };
      if (j.clone !== null) c.vdis[j.clone] = { ...srcMeta, read_only: false, vdi_type: VDI_TYPE[j.leafFormat] };
    });
    const im: ImageMetaReport = { text: srcIm.text, from: srcIm.from === uuid ? j.base : srcIm.from };
    const base: VdiNode = { uuid: j.base, format: j.srcFormat, lvName: lvNameOf(j.base, j.srcFormat), lvSize: out.baseLvSize, virtualSize: out.virtualSize, hidden: true, parent: out.baseParent, children: [uuid], lvReadOnly: true, tags: [] };
    await introduceVdi(ctx.xapi, req.sr_ref, reported(base, im), { name_label: 'base copy', type: String(src['type'] ?? 'user') || 'user' });
    const leaf: VdiNode = { uuid, format: j.leafFormat, lvName: lvNameOf(uuid, j.leafFormat), lvSize: out.leafLvSize, virtualSize: out.virtualSize, hidden: false, parent: j.base, children: [], lvReadOnly: false, tags: [] };
    if (req.vdi_ref !== '') await updateRecord(ctx, req.vdi_ref, src, reported(leaf, im));
    let result = { uuid: j.base, location: j.base };
    if (j.clone !== null) {
      const c: VdiNode = { ...leaf, uuid: j.clone, lvName: lvNameOf(j.clone, j.leafFormat), lvSize: out.cloneLvSize };
      await introduceVdi(ctx.xapi, req.sr_ref, reported(c, im), {
        name_label: String(src['name_label'] ?? ''),
        name_description: String(src['name_description'] ?? ''),
        type: String(src['type'] ?? 'user') || 'user',
        read_only: false,
      });
      result = { uuid: j.clone, location: j.clone };
    }
    if (mode !== 'internal') await adjustAllocation(ctx, req.sr_ref, out.virtualSize);
    void node;
    return result;
  }

  return handlers;
}
