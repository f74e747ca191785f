// At VDI creation for a VM (`smctl vdi-create ... meta:<key>=<value>`): turn
// the xe-style map into the JSON object string the driver stores, checked
// with the image-meta rules first so a bad key is refused before any driver
// call. A value is JSON when it parses as JSON, else a plain string; for list
// keys of the registry a plain `a,b` is the list ["a","b"].
import { ImageMetaError } from '../../sdk/image-meta/errors.js';
import { parseCliValue } from '../../sdk/image-meta/api.js';
import type { JsonValue } from '../../sdk/image-meta/json-text.js';
import { defaultRegistry, type Registry } from '../../sdk/image-meta/registry.js';
import { validateMetaText } from '../../sdk/image-meta/rules.js';

function valueFor(key: string, raw: string, registry: Registry): JsonValue {
  const v = parseCliValue(raw);
  const type = registry.entries.get(key)?.type;
  if (typeof v === 'string' && (type === 'string-list' || type === 'enum-list')) return v.split(',');
  return v;
}

/**
 * The validated JSON text for `meta` (key -> raw value), or throws
 * ImageMetaError naming the key and the rule (message prefixed `meta:<key>`).
 */
export function metaMapToText(meta: Readonly<Record<string, string>>, registry: Registry = defaultRegistry()): string {
  const obj: Record<string, JsonValue> = {};
  for (const [k, raw] of Object.entries(meta)) {
    Object.defineProperty(obj, k, { value: valueFor(k, raw, registry), enumerable: true, writable: true, configurable: true });
  }
  const text = JSON.stringify(obj);
  try {
    validateMetaText(text, registry);
  } catch (e) {
    if (e instanceof ImageMetaError && e.key !== undefined) {
      throw new ImageMetaError(e.reason, `meta:${e.key}=${meta[e.key] ?? ''} is refused: ${e.message}`, { key: e.key, cause: e });
    }
    throw e;
  }
  return text;
}
