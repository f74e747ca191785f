// Layers 1 and 2: what a stored string may be. The string is a JSON object;
// keys are non-empty and unique (checked on the raw text); dots separate
// hierarchy levels; a key is either `qemu.<registered name>` with a value of
// the registered type, or starts with a reverse-dotted vendor prefix
// (`com.example.`). Every refusal names the key and the rule.
import { ImageMetaError } from './errors.js';
import { parseStrictJson, type JsonValue } from './json-text.js';
import { defaultRegistry, type Registry, type RegistryEntry } from './registry.js';

/** Layer-0 bound on one image's string, in UTF-8 bytes (fits every backend: qcow2 slots, sidecars, LV tags). */
export const MAX_VALUE_BYTES = 4096;

export type MetaObject = { [key: string]: JsonValue };

const LABEL = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const TLD = /^[a-z]([a-z0-9-]*[a-z0-9])?$/;
const SEGMENT = /^[A-Za-z0-9_-]+$/;

export function checkLength(text: string): void {
  const n = Buffer.byteLength(text, 'utf8');
  if (n > MAX_VALUE_BYTES) {
    throw new ImageMetaError('too-long', `the value is ${n} bytes of UTF-8; an image holds at most ${MAX_VALUE_BYTES} bytes`);
  }
}

function describe(v: JsonValue): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

function checkValue(key: string, e: RegistryEntry, v: JsonValue): void {
  const bad = (want: string): never => {
    throw new ImageMetaError('bad-value', `key ${JSON.stringify(key)}: the registry says its value is ${want}, got ${describe(v)}`, { key });
  };
  switch (e.type) {
    case 'string':
      if (typeof v !== 'string' || v === '') bad('a non-empty string');
      return;
    case 'boolean':
      if (typeof v !== 'boolean') bad('true or false');
      return;
    case 'integer':
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || (e.min !== undefined && v < e.min)) bad(`an integer${e.min !== undefined ? ` >= ${e.min}` : ''}`);
      return;
    case 'enum':
      if (typeof v !== 'string' || !e.values!.includes(v)) bad(`one of ${e.values!.join(', ')}`);
      return;
    case 'string-list':
    case 'enum-list': {
      const what = e.type === 'string-list' ? 'a non-empty list of distinct non-empty strings' : `a non-empty list of distinct values from ${e.values!.join(', ')}`;
      if (!Array.isArray(v) || v.length === 0) return bad(what);
      const seen = new Set<string>();
      for (const x of v) {
        if (typeof x !== 'string' || x === '' || seen.has(x)) bad(what);
        if (e.type === 'enum-list' && !e.values!.includes(x as string)) bad(what);
        seen.add(x as string);
      }
      return;
    }
  }
}

/** Layer 2 for one top-level key and its value. */
export function checkKey(key: string, value: JsonValue, registry: Registry = defaultRegistry()): void {
  const q = JSON.stringify(key);
  if (key === '') throw new ImageMetaError('empty-key', 'empty key at the top level: keys must be non-empty', { key });
  const segments = key.split('.');
  if (segments.some((s) => s === '')) {
    throw new ImageMetaError('bad-key', `key ${q} has an empty level: dots separate hierarchy levels, so a key may not start or end with a dot or hold two in a row`, { key });
  }
  if (segments[0] === 'qemu') {
    const e = registry.entries.get(key);
    if (e === undefined) {
      throw new ImageMetaError('unregistered-key', `key ${q} starts with "qemu." but is not in the key registry (data/image-meta-keys.yaml); registered: ${[...registry.entries.keys()].join(', ')}; use a vendor prefix (e.g. com.example.${segments.slice(1).join('.') || 'name'}) for other keys`, { key });
    }
    checkValue(key, e, value);
    return;
  }
  if (segments.length < 3 || !TLD.test(segments[0]!) || !LABEL.test(segments[1]!) || !segments.slice(2).every((s) => SEGMENT.test(s))) {
    throw new ImageMetaError('bad-key', `key ${q} is neither a registered "qemu." key nor starts with a reverse-dotted vendor prefix: use e.g. "com.example.${segments.at(-1)}" (lower-case domain labels, then one or more name levels of letters, digits, "_" or "-")`, { key });
  }
}

export interface ValidatedMeta {
  /** The string exactly as given (it is what gets stored). */
  text: string;
  object: MetaObject;
}

/**
 * Layers 1 and 2 for a whole string: bounded length, a JSON object with
 * non-empty unique keys, every key allowed, no key both a value and a level
 * of another key ("com.x.a" and "com.x.a.b").
 */
export function validateMetaText(text: string, registry: Registry = defaultRegistry()): ValidatedMeta {
  checkLength(text);
  const v = parseStrictJson(text);
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new ImageMetaError('not-an-object', `the value must be a JSON object ({"key": value, ...}), got ${describe(v)}`);
  }
  const keys = Object.keys(v);
  for (const k of keys) checkKey(k, v[k]!, registry);
  const set = new Set(keys);
  for (const k of keys) {
    const parts = k.split('.');
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('.');
      if (set.has(prefix)) throw new ImageMetaError('bad-key', `key ${JSON.stringify(prefix)} holds a value but is also a level of key ${JSON.stringify(k)}: dots mean hierarchy, so one of them must go`, { key: prefix });
    }
  }
  return { text, object: v };
}

/** The value a reader sees: a stored string that no longer passes the rules is still shown, never "repaired". */
export function parseStored(text: string): MetaObject | null {
  try {
    const v = parseStrictJson(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}
