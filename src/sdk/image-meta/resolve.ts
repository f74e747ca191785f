// Inheritance: an image without its own string sees its backing file's
// (qcow2 backing files, VHD parents; raw has none), walking the chain top
// down; the first own value found (even `{}`) is the effective one and stops
// the walk. Values are whole strings, never merged key by key.
import { resolve as resolvePath } from 'node:path';
import { ChainError, walkChain } from '../formats/chain.js';
import type { ImageRef } from '../formats/types.js';
import { ImageMetaError } from './errors.js';
import { parseStored, type MetaObject } from './rules.js';
import { storeFor } from './store.js';

export interface ChainLink {
  image: ImageRef;
  /** Where this image's own string lives ('qcow2-header', 'sidecar', ...). */
  store: string;
  /** The image's own string, or null (it inherits). */
  own: string | null;
}

export interface EffectiveMeta {
  image: ImageRef;
  /** The string a reader sees, or null when no image in the chain has one. */
  text: string | null;
  /** `text` as an object (null when there is no value, or the stored text is not a JSON object). */
  object: MetaObject | null;
  /** The image whose own string is effective, or null. */
  from: ImageRef | null;
  /** Depth of `from` in the chain (0 = the image itself), or null. */
  depth: number | null;
  /** Each top-level key → the image path it comes from. */
  sources: Record<string, string>;
  /** The image and its ancestors, top first, with their own strings. */
  chain: ChainLink[];
}

/** The image and its ancestors, top first (from metadata, no process). */
export function chainOf(image: ImageRef): ImageRef[] {
  try {
    return walkChain({ path: resolvePath(image.path), format: image.format });
  } catch (e) {
    if (e instanceof ChainError) throw new ImageMetaError('corrupt', `cannot follow the backing chain: ${e.message}`, { cause: e });
    throw new ImageMetaError('not-an-image', `${image.path}: ${(e as Error).message}`, { cause: e });
  }
}

export async function readOwn(image: ImageRef): Promise<string | null> {
  return storeFor(image).read(image);
}

/**
 * The effective value of `image` and where it comes from. With `full`, every
 * link's own string is read (for dumps); otherwise the walk stops at the first.
 */
export async function readEffective(image: ImageRef, opts: { full?: boolean } = {}): Promise<EffectiveMeta> {
  const chain: ChainLink[] = [];
  let found: number | null = null;
  for (const ref of chainOf(image)) {
    const store = storeFor(ref);
    const own = await store.read(ref);
    chain.push({ image: ref, store: store.kind, own });
    if (own !== null && found === null) {
      found = chain.length - 1;
      if (!opts.full) break;
    }
  }
  const from = found === null ? null : chain[found]!;
  const text = from?.own ?? null;
  const object = text === null ? null : parseStored(text);
  const sources: Record<string, string> = {};
  if (object !== null && from !== null) for (const k of Object.keys(object)) sources[k] = from.image.path;
  return { image: chain[0]!.image, text, object, from: from?.image ?? null, depth: found, sources, chain };
}
