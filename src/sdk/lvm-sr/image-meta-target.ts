// One VDI of an LVM SR as bin/image-meta sees it (--sr-path <PV> --vdi UUID):
// read from ONE `lvs` (tags) and the MGT volume, with no LV activated;
// changed under the SR lock (the driver's own), with the same rules and the
// same tag/MGT writer the driver uses (image-meta.ts). Also the LV-tag store
// for the generic library (registerLvmStore): an image named by its device
// node /dev/VG_XenStorage-<sr>/<LV> (an attached VDI's path), whose backing
// chain the library then walks through the active LVs' nodes.
import type { ImageRef } from '../formats/types.js';
import { withSrLock } from '../lock.js';
import { ImageMetaError } from '../image-meta/errors.js';
import type { JsonValue } from '../image-meta/json-text.js';
import type { ChainLink, EffectiveMeta } from '../image-meta/resolve.js';
import { MAX_VALUE_BYTES, parseStored, validateMetaText, type MetaObject } from '../image-meta/rules.js';
import { registerStore, type ImageMetaStore } from '../image-meta/store.js';
import * as lvm from '../tools/lvm.js';
import { effectiveValue, ownValue, writeOwnValue } from './image-meta.js';
import { readInventory, type Inventory, type VdiNode } from './inventory.js';
import { openMetadata } from './metadata.js';
import { emptyContent, type MgtContent } from './mgt.js';
import { lvDevicePath, parseLvName, srUuidOfVg, VG_PREFIX } from './naming.js';
import { openLvmSr, type LvmSr } from './sr.js';

export interface LvmImageMeta {
  /** /dev/<vg>/<lv>: how messages name the image (the LV need not be active). */
  readonly path: string;
  readOwn(): Promise<string | null>;
  readEffective(o?: { full?: boolean }): Promise<EffectiveMeta>;
  setOwn(text: string): Promise<void>;
  clearOwn(): Promise<void>;
  changeKeys(changes: Record<string, JsonValue | undefined>): Promise<string>;
}

/** The SR of VG `vg`, with every PV of it in its scope. */
async function srOfVg(vg: string, fallback: string[] = []): Promise<LvmSr> {
  const srUuid = srUuidOfVg(vg);
  if (srUuid === null) throw new ImageMetaError('not-an-image', `volume group ${vg} is not an LVM SR (VG_XenStorage-<sr uuid>)`);
  const all = (await lvm.pvs({}, {})).filter((p) => p.vgName === vg).map((p) => p.pvName);
  if (all.length === 0 && fallback.length === 0) throw new ImageMetaError('not-an-image', `volume group ${vg} has no physical volume on this host`);
  return openLvmSr(srUuid, { device: (all.length > 0 ? all : fallback).join(',') });
}

/** The SR whose VG has a PV on `device` (all of that VG's PVs in its scope), or a clear refusal. */
async function srOnDevice(device: string): Promise<LvmSr> {
  let vg: string;
  try {
    vg = (await lvm.pvs({ devices: [device] }, { devices: [device] }))[0]?.vgName ?? '';
  } catch (e) {
    throw new ImageMetaError('not-an-image', `${device} is not an LVM physical volume: ${(e as Error).message.split('\n')[0]}`, { cause: e });
  }
  if (srUuidOfVg(vg) === null) throw new ImageMetaError('not-an-image', `${device} holds ${vg === '' ? 'no volume group' : `volume group ${vg}`}, not an LVM SR (VG_XenStorage-<sr uuid>)`);
  // Every PV of that VG (an SR may span several devices).
  return srOfVg(vg, [device]);
}

function nodeOf(inv: Inventory, sr: LvmSr, vdi: string): VdiNode {
  const n = inv.vdis.get(vdi);
  if (n === undefined) {
    const bad = inv.errors.find((e) => e.lv.endsWith(vdi));
    throw new ImageMetaError('not-an-image', bad ? `VDI ${vdi}: LV ${bad.lv} cannot be read: ${bad.message}` : `VDI ${vdi} has no LV (VHD-, QCOW2- or LV-${vdi}) in ${sr.vg}`);
  }
  return n;
}

export async function openLvmImageMeta(device: string, vdi: string): Promise<LvmImageMeta> {
  return lvmImageMeta(await srOnDevice(device), vdi);
}

async function lvmImageMeta(sr: LvmSr, vdi: string): Promise<LvmImageMeta> {
  const load = async () => {
    const inv = await readInventory(sr);
    const content: MgtContent = inv.mgt?.content ?? emptyContent(sr.uuid);
    return { inv, content, node: nodeOf(inv, sr, vdi) };
  };
  const first = await load();
  const ref = (n: VdiNode): ImageRef => ({ path: lvDevicePath(sr.uuid, n.lvName), format: n.format });

  const readEffective = async (o: { full?: boolean } = {}): Promise<EffectiveMeta> => {
    const { inv, content, node } = await load();
    const e = effectiveValue(inv, content, node.uuid, { full: o.full ?? false });
    const links: ChainLink[] = e.chain.map((l) => ({ image: ref(inv.vdis.get(l.uuid)!), store: l.store ?? 'lv-tags', own: l.own }));
    const depth = e.from === null ? null : e.chain.findIndex((l) => l.uuid === e.from);
    const from = depth === null ? null : links[depth]!.image;
    const object = e.text === null ? null : parseStored(e.text);
    const sources: Record<string, string> = {};
    if (object !== null && from !== null) for (const k of Object.keys(object)) sources[k] = from.path;
    return { image: ref(node), text: e.text, object, from, depth, sources, chain: links };
  };

  /** Write under the SR lock, from a fresh read (another writer may have run meanwhile). */
  const write = (text: string | null): Promise<void> =>
    withSrLock(sr.uuid, async () => {
      const { inv, node } = await load();
      const meta = await openMetadata(sr, () => undefined, inv.mgtExtents);
      await writeOwnValue(sr, meta, node.lvName, node.tags, text);
    });

  return {
    path: ref(first.node).path,
    readOwn: async () => {
      const { content, node } = await load();
      return ownValue(node.tags, content);
    },
    readEffective,
    setOwn: async (text) => {
      validateMetaText(text);
      await write(text);
    },
    clearOwn: () => write(null),
    changeKeys: async (changes) => {
      const eff = await readEffective();
      if (eff.text !== null && eff.object === null) {
        throw new ImageMetaError('corrupt', `the stored value (from ${eff.from!.path}) is not a JSON object; replace it whole with \`set --json\``);
      }
      const next: MetaObject = {};
      const put = (k: string, v: JsonValue) => Object.defineProperty(next, k, { value: v, enumerable: true, writable: true, configurable: true });
      for (const [k, v] of Object.entries(eff.object ?? {})) put(k, v);
      for (const [k, v] of Object.entries(changes)) {
        if (v === undefined) delete next[k];
        else put(k, v);
      }
      const text = JSON.stringify(next);
      validateMetaText(text);
      await write(text);
      return text;
    },
  };
}

/** /dev/VG_XenStorage-<sr>/<VHD-|QCOW2-|LV-><uuid> → VG and VDI uuid, or null. */
export function parseLvPath(path: string): { vg: string; vdi: string } | null {
  const m = /^\/dev\/([^/]+)\/([^/]+)$/.exec(path);
  if (m === null || !m[1]!.startsWith(VG_PREFIX) || srUuidOfVg(m[1]!) === null) return null;
  const id = parseLvName(m[2]!);
  return id === null ? null : { vg: m[1]!, vdi: id.uuid };
}

async function byPath(path: string): Promise<LvmImageMeta> {
  const p = parseLvPath(path)!;
  return lvmImageMeta(await srOfVg(p.vg), p.vdi);
}

/** The generic library's store for LV device nodes ('lv-tags'; long values in MGT). */
export const lvTagStore: ImageMetaStore = {
  kind: 'lv-tags',
  read: async (image) => (await byPath(image.path)).readOwn(),
  write: async (image, value) => {
    const h = await byPath(image.path);
    if (value === null) await h.clearOwn();
    else await h.setOwn(value);
  },
  // Values over the tag budget go to MGT, which holds the full Layer-0 bound.
  capacity: async () => MAX_VALUE_BYTES,
};

let registered = false;

/** Make readEffective/setOwn/... of the library handle LV device nodes (/dev/VG_XenStorage-<sr>/<LV>). Idempotent. */
export function registerLvmStore(): void {
  if (registered) return;
  registered = true;
  registerStore({ matches: (image) => parseLvPath(image.path) !== null, store: lvTagStore });
}
