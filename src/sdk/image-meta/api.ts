// The library's front door: read, set, change and carry one image's machine
// data. Every write is validated first (Layers 1–2, the image's capacity), so
// a refused change leaves the image exactly as it was.
import type { ImageRef } from '../formats/types.js';
import { ImageMetaError } from './errors.js';
import type { JsonValue } from './json-text.js';
import { parseStrictJson } from './json-text.js';
import type { Registry } from './registry.js';
import { readEffective, readOwn } from './resolve.js';
import { checkLength, validateMetaText, type MetaObject } from './rules.js';
import { storeFor } from './store.js';

async function checkCapacity(image: ImageRef, text: string): Promise<void> {
  const cap = await storeFor(image).capacity(image);
  const n = Buffer.byteLength(text, 'utf8');
  if (n > cap) throw new ImageMetaError('too-long', `the value is ${n} bytes; ${image.path} can hold at most ${cap}`);
}

/** Replace the image's own string with `text` (validated; `{}` is a value too and stops inheritance). */
export async function setOwn(image: ImageRef, text: string, registry?: Registry): Promise<void> {
  validateMetaText(text, registry);
  await checkCapacity(image, text);
  await storeFor(image).write(image, text);
}

/** Remove the image's own string: it inherits from its backing file again. */
export async function clearOwn(image: ImageRef): Promise<void> {
  await storeFor(image).write(image, null);
}

/**
 * Set keys: the new own string is the effective object (own or inherited)
 * with `changes` applied (`undefined` removes a key). An inheriting image
 * therefore gets its own copy and stops following its parent.
 */
export async function changeKeys(image: ImageRef, changes: Record<string, JsonValue | undefined>, registry?: Registry): Promise<string> {
  const eff = await readEffective(image);
  if (eff.text !== null && eff.object === null) {
    throw new ImageMetaError('corrupt', `the stored value (from ${eff.from!.path}) is not a JSON object; replace it whole with \`set --json\``);
  }
  const next: MetaObject = {};
  for (const [k, v] of Object.entries(eff.object ?? {})) Object.defineProperty(next, k, { value: v, enumerable: true, writable: true, configurable: true });
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete next[k];
    else Object.defineProperty(next, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  const text = JSON.stringify(next);
  await setOwn(image, text, registry);
  return text;
}

/** A command-line value: JSON when it parses as JSON, otherwise the plain string. */
export function parseCliValue(raw: string): JsonValue {
  try {
    return parseStrictJson(raw);
  } catch {
    return raw;
  }
}

/**
 * After a copy or conversion (`qemu-img convert`, vhd-util export, ...), which
 * drop the value: give `dst` the effective value `src` has, as its own.
 * Returns the string applied, or null when `src` has none.
 */
export async function reapplyAfterCopy(src: ImageRef, dst: ImageRef): Promise<string | null> {
  const eff = await readEffective(src);
  if (eff.text === null) return null;
  checkLength(eff.text);
  await checkCapacity(dst, eff.text);
  await storeFor(dst).write(dst, eff.text);
  return eff.text;
}

/**
 * Chain edits (commit/coalesce of `from` into `to`): when `from` has its own
 * string, `to` gets it, so the merged image reads what `from` read. Idempotent.
 */
export async function carryOwn(from: ImageRef, to: ImageRef): Promise<boolean> {
  const own = await readOwn(from);
  if (own === null) return false;
  if ((await readOwn(to)) === own) return true;
  await storeFor(to).write(to, own);
  return true;
}

export { readEffective, readOwn } from './resolve.js';
