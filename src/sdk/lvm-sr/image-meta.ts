// Machine data (docs/image-meta.md) of VDIs on an LVM SR: each LV's own
// string lives in LV tags, changed with ONE `lvchange --addtag … --deltag …`
// (one VG metadata commit: a reader sees the old tags or the new ones, never
// a mix). The tag charset is [A-Za-z0-9_+.-/=!:&#], so the UTF-8 string is
// stored as standard base64 (its alphabet A-Za-z0-9+/= is a subset):
//   image-meta:<gen>:<i>:<n>:<chunk>   chunk i of n (0-based), <= CHUNK chars
//   image-meta:<gen>:mgt:<ref>         the string is MGT's image_meta[<ref>]
// A value whose base64 is longer than TAG_BUDGET goes to the SR's MGT volume
// (written atomically, A/B slots; mgt.ts) and the tags hold the marker. Why a
// budget: every LVM command rewrites the whole VG metadata text, so large tags
// on many LVs slow every command and fill the 10 MiB metadata area.
// Readers take the highest <gen> that is complete; anything else (a torn set a
// person made by hand, bad base64 or UTF-8) is "no value", never a guess.
// Tags move with the LV: the snapshot rename (A's LV becomes base B) carries
// A's value to B, and the new leaf and clone inherit it through the chain.
import { randomBytes } from 'node:crypto';
import { ImageMetaError } from '../image-meta/errors.js';
import * as lvm from '../tools/lvm.js';
import { fistPoint } from './fist.js';
import { chainOf, type Inventory } from './inventory.js';
import type { SrMetadata } from './metadata.js';
import type { MgtContent } from './mgt.js';
import type { LvmSr } from './sr.js';

export const TAG_PREFIX = 'image-meta:';
/** LVM documents 1024 characters as the longest tag (lvm(8) "Tags"); 2.03.16 does not enforce it, we do. */
export const LVM_TAG_MAX = 1024;
/** base64 characters per tag: the longest tag is `image-meta:<gen>:<i>:<n>:` (<= 40) + CHUNK. */
export const CHUNK = 960;
/** base64 characters kept in tags (3 tags, 2160 bytes of UTF-8); longer values go to MGT. */
export const TAG_BUDGET = 3 * CHUNK;

const VALUE_TAG = /^image-meta:(\d{1,15}):(\d{1,3}):(\d{1,3}):([A-Za-z0-9+/=]+)$/;
const MGT_TAG = /^image-meta:(\d{1,15}):mgt:([0-9a-f]{16})$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export const isImageMetaTag = (t: string): boolean => t.startsWith(TAG_PREFIX);

/** Where an LV's own string is, from its tags: in them, in MGT (by reference), or nowhere. */
export type TagState = { kind: 'none'; gen: number } | { kind: 'tags'; gen: number; text: string } | { kind: 'mgt'; gen: number; ref: string };

function decodeUtf8(b64: string): string | null {
  if (!BASE64.test(b64)) return null;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(b64, 'base64'));
  } catch {
    return null;
  }
}

/** Decode an LV's tags (other tags, e.g. `hidden`, are ignored). */
export function decodeTags(tags: readonly string[]): TagState {
  interface Gen { mgt?: string; n?: number; chunks: Map<number, string>; bad: boolean }
  const gens = new Map<number, Gen>();
  let maxGen = 0;
  for (const t of tags) {
    if (!isImageMetaTag(t)) continue;
    const v = VALUE_TAG.exec(t);
    const m = v === null ? MGT_TAG.exec(t) : null;
    if (v === null && m === null) continue;
    const gen = Number((v ?? m)![1]);
    maxGen = Math.max(maxGen, gen);
    const g: Gen = gens.get(gen) ?? { chunks: new Map<number, string>(), bad: false };
    gens.set(gen, g);
    if (m !== null) {
      if (g.mgt !== undefined && g.mgt !== m[2]) g.bad = true;
      g.mgt = m[2]!;
      continue;
    }
    const [i, n] = [Number(v![2]), Number(v![3])];
    if (n < 1 || i >= n || (g.n !== undefined && g.n !== n) || g.chunks.has(i)) g.bad = true;
    g.n = n;
    g.chunks.set(i, v![4]!);
  }
  for (const gen of [...gens.keys()].sort((a, b) => b - a)) {
    const g = gens.get(gen)!;
    if (g.bad) continue;
    if (g.mgt !== undefined) {
      if (g.n === undefined) return { kind: 'mgt', gen, ref: g.mgt };
      continue;
    }
    if (g.n === undefined || g.chunks.size !== g.n) continue;
    const text = decodeUtf8(Array.from({ length: g.n }, (_, i) => g.chunks.get(i)!).join(''));
    if (text !== null) return { kind: 'tags', gen, text };
  }
  return { kind: 'none', gen: maxGen };
}

/** The tags that hold `text` at generation `gen`, or null when it is over TAG_BUDGET (it goes to MGT). */
export function encodeTags(text: string, gen: number): string[] | null {
  const b64 = Buffer.from(text, 'utf8').toString('base64');
  if (b64.length > TAG_BUDGET) return null;
  if (b64.length === 0) throw new ImageMetaError('invalid-json', 'an empty string is not a value (the value is a JSON object)');
  const n = Math.ceil(b64.length / CHUNK);
  return Array.from({ length: n }, (_, i) => `${TAG_PREFIX}${gen}:${i}:${n}:${b64.slice(i * CHUNK, (i + 1) * CHUNK)}`);
}

/** An LV's own string: from its tags, or from MGT when the tags point there. A dangling reference is no value. */
export function ownValue(tags: readonly string[], content: MgtContent): string | null {
  const s = decodeTags(tags);
  if (s.kind === 'tags') return s.text;
  if (s.kind === 'mgt') return content.image_meta[s.ref] ?? null;
  return null;
}

export interface LvmEffective {
  /** The string a reader of this VDI sees, or null. */
  text: string | null;
  /** The VDI whose own string it is (this one, or an ancestor), or null. */
  from: string | null;
  /** Where that string is stored: 'lv-tags' or 'mgt'. */
  store: 'lv-tags' | 'mgt' | null;
  /** The VDI and its ancestors, leaf first, with their own strings. */
  chain: { uuid: string; lv: string; own: string | null; store: 'lv-tags' | 'mgt' | null }[];
}

/** Effective value of `uuid` from one inventory (one `lvs`) and the MGT content: no process per VDI. */
export function effectiveValue(inv: Inventory, content: MgtContent, uuid: string, o: { full?: boolean } = {}): LvmEffective {
  const out: LvmEffective = { text: null, from: null, store: null, chain: [] };
  for (const n of chainOf(inv, uuid)) {
    const s = decodeTags(n.tags);
    const own = ownValue(n.tags, content);
    const store = own === null ? null : s.kind === 'mgt' ? 'mgt' : 'lv-tags';
    out.chain.push({ uuid: n.uuid, lv: n.lvName, own, store });
    if (own !== null && out.from === null) {
      Object.assign(out, { text: own, from: n.uuid, store });
      if (!o.full) break;
    }
  }
  return out;
}

/** A fresh MGT reference (the MGT schema's key pattern). */
export const newMgtRef = (): string => randomBytes(8).toString('hex');

export interface PreparedValue {
  /** Tags the new LV gets (`lvcreate --addtag`). */
  tags: string[];
  /** MGT reference written for a long value (to drop again if the create fails). */
  mgtRef: string | null;
}

function requireWritableMgt(meta: SrMetadata, sr: LvmSr, n: number): void {
  if (!meta.writable) {
    throw new ImageMetaError('no-room', `the value is ${n} characters of base64, over the ${TAG_BUDGET} kept in LV tags, and the MGT volume of SR ${sr.uuid} is in neither xapi's encoding nor ours, so it cannot hold it; use a value of at most ${(TAG_BUDGET / 4) * 3} bytes`);
  }
}

/**
 * Tags for a new LV that should own `text` from its first moment: the value
 * tags, or (long value) an MGT entry written now and the marker tag.
 */
export function prepareForCreate(sr: LvmSr, meta: SrMetadata, text: string): PreparedValue {
  const tags = encodeTags(text, 1);
  if (tags !== null) return { tags, mgtRef: null };
  requireWritableMgt(meta, sr, Buffer.byteLength(text, 'utf8'));
  const ref = newMgtRef();
  meta.update((c) => void (c.image_meta[ref] = text));
  return { tags: [`${TAG_PREFIX}1:mgt:${ref}`], mgtRef: ref };
}

/** MGT references an LV's tags hold (to drop with the LV). */
export function mgtRefsOf(tags: readonly string[]): string[] {
  return tags.map((t) => MGT_TAG.exec(t)?.[2]).filter((r): r is string => r !== undefined);
}

/**
 * Replace the own string of `lv` (tags `current`, as one `lvs` reported them)
 * with `text`, or drop it (null: the LV inherits again). Crash-safe order:
 *   long value: MGT entry added (old tags still rule: old value) →
 *   one lvchange switches the tags (new value) → the old MGT entry dropped
 *   (until then it is an unreferenced entry, which sr_scan removes).
 * Returns the LV's tags now (no second `lvs`).
 */
export async function writeOwnValue(sr: LvmSr, meta: SrMetadata, lv: string, current: readonly string[], text: string | null): Promise<string[]> {
  const old = current.filter(isImageMetaTag);
  const gen = decodeTags(current).gen + 1;
  let add: string[] = [];
  if (text !== null) {
    const tags = encodeTags(text, gen);
    if (tags !== null) add = tags;
    else {
      requireWritableMgt(meta, sr, Buffer.byteLength(text, 'utf8'));
      const ref = newMgtRef();
      meta.update((c) => void (c.image_meta[ref] = text));
      fistPoint('lvm-image-meta-mgt-put');
      add = [`${TAG_PREFIX}${gen}:mgt:${ref}`];
    }
  }
  if (add.length === 0 && old.length === 0) return [...current];
  await lvm.lvchange({ vg: sr.vg, name: lv, addTags: add, delTags: old }, sr.scope);
  fistPoint('lvm-image-meta-tags');
  const drop = mgtRefsOf(old);
  if (drop.length > 0) meta.update((c) => drop.forEach((r) => delete c.image_meta[r]));
  return [...current.filter((t) => !isImageMetaTag(t)), ...add];
}

/** MGT entries no LV points at (left by a writer killed mid-way, or LVs removed by hand). */
export function unreferencedMgtRefs(inv: Inventory, content: MgtContent): string[] {
  const used = new Set<string>();
  for (const ext of inv.layout.lvs.values()) for (const r of mgtRefsOf(ext.lv.tags)) used.add(r);
  return Object.keys(content.image_meta).filter((r) => !used.has(r));
}
