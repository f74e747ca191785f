// The import planner (Layer 4): given the effective machine data of the disks
// of one VM, propose the VM's settings key by key with the rule from rules.ts,
// and list every disagreement between the disks with the values and the
// images they come from. Pure: no I/O, so a toolstack can call it with data
// read however it likes (files, driver records) — see sources.ts for both.
import { checkKey, parseStored, type MetaObject } from '../../sdk/image-meta/rules.js';
import { defaultRegistry, type Registry } from '../../sdk/image-meta/registry.js';
import { ImageMetaError } from '../../sdk/image-meta/errors.js';
import type { JsonValue } from '../../sdk/image-meta/json-text.js';
import { RULE_TEXT, ruleFor, type CombineRule } from './rules.js';

export interface ImageMetaInput {
  /** How the operator named the image: a file path or a VDI uuid. Unique within one plan. */
  label: string;
  /** The effective string (own or inherited), or null when no image in its chain has one. */
  text: string | null;
  /** The image in the chain the string comes from (path or VDI uuid); null when `text` is null. */
  from: string | null;
  /** Per top-level key, the image it comes from; keys not listed come from `from`. */
  sources?: Readonly<Record<string, string>>;
  /** Virtual size in bytes when known: checked against the disk's own qemu.min-disk-GB. */
  virtualSize?: number;
  /** A human name shown next to the label (a VDI's name-label). */
  name?: string;
}

/** One disk's value for a key. */
export interface ValueSource {
  image: string;
  value: JsonValue;
  /** The image in `image`'s chain the value comes from (== image when it is its own). */
  source: string;
}

export type SettingStatus = 'agreed' | 'combined' | 'per-disk' | 'conflict' | 'no-rule';

export interface PlannedSetting {
  key: string;
  setting: string;
  rule: CombineRule | 'none';
  ruleText: string;
  status: SettingStatus;
  /** The proposed value; null on a conflict, a missing rule, or for per-disk keys (see `values`). */
  value: JsonValue | null;
  /** What to configure: `value`, or for an intersection its first (most preferred) entry. */
  choice: JsonValue | null;
  /** Every disk's (valid) value, in input order. */
  values: ValueSource[];
  /** Disks that do not state the key (they do not constrain it). */
  without: string[];
}

export type DisagreementKind =
  /** Values differ, the rule combined them (maximum, non-empty intersection): listed, not blocking. */
  | 'differs'
  /** A must-agree key with different values: no value proposed. */
  | 'conflict'
  /** An intersection key whose lists share nothing. */
  | 'empty-intersection'
  /** A registry key with no combine rule (rules.ts is behind the registry). */
  | 'no-rule'
  /** A stored value the registry refuses (wrong type, unknown enum value): not used. */
  | 'invalid-value'
  /** A `qemu.` key the registry does not list, or a key without a vendor prefix: ignored. */
  | 'unknown-key'
  /** An image whose stored string is not a JSON object. */
  | 'unreadable'
  /** A disk smaller than its own qemu.min-disk-GB. */
  | 'too-small';

export interface Disagreement {
  key: string | null;
  kind: DisagreementKind;
  /** True when the plan cannot give this key (or image) a value the disks agree on. */
  blocking: boolean;
  message: string;
  values: ValueSource[];
}

export interface PlannedImage {
  label: string;
  name?: string;
  /** Where its machine data comes from, or null (no machine data: e.g. a data disk). */
  from: string | null;
  keys: string[];
}

export interface VendorValue extends ValueSource {
  key: string;
}

export interface ImportPlan {
  images: PlannedImage[];
  /** One per registry key some disk states, in registry order. */
  settings: PlannedSetting[];
  /** Reverse-dotted vendor keys, per image, never merged. */
  vendor: VendorValue[];
  disagreements: Disagreement[];
  /** True when any disagreement is blocking: the VM cannot be configured from the disks alone. */
  blocked: boolean;
}

const GiB = 1024 ** 3;

function named(im: ImageMetaInput): { name?: string } {
  return im.name !== undefined ? { name: im.name } : {};
}

/** Structural equality of JSON values, key order ignored. */
function canonical(v: JsonValue): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k]!)}`).join(',')}}`;
}

function show(v: JsonValue): string {
  return JSON.stringify(v);
}

function distinct(values: ValueSource[]): number {
  return new Set(values.map((x) => canonical(x.value))).size;
}

interface Combined {
  status: SettingStatus;
  value: JsonValue | null;
  disagreement?: Omit<Disagreement, 'key' | 'values'>;
}

function combine(rule: CombineRule, key: string, values: ValueSource[]): Combined {
  const same = distinct(values) === 1;
  switch (rule) {
    case 'per-disk':
      return { status: 'per-disk', value: null };
    case 'must-agree':
      if (same) return { status: 'agreed', value: values[0]!.value };
      return {
        status: 'conflict',
        value: null,
        disagreement: { kind: 'conflict', blocking: true, message: `the disks give ${distinct(values)} different values for ${key}, which must agree; no value is proposed` },
      };
    case 'maximum': {
      const max = Math.max(...values.map((x) => x.value as number));
      if (same) return { status: 'agreed', value: max };
      return {
        status: 'combined',
        value: max,
        disagreement: { kind: 'differs', blocking: false, message: `the disks give different values for ${key}; the plan takes the maximum, ${max}` },
      };
    }
    case 'intersection': {
      const lists = values.map((x) => x.value as string[]);
      const common = lists[0]!.filter((e) => lists.every((l) => l.includes(e)));
      if (same) return { status: 'agreed', value: common };
      if (common.length === 0) {
        return {
          status: 'conflict',
          value: null,
          disagreement: { kind: 'empty-intersection', blocking: true, message: `no value of ${key} is accepted by every disk (empty intersection); no value is proposed` },
        };
      }
      return {
        status: 'combined',
        value: common,
        disagreement: { kind: 'differs', blocking: false, message: `the disks give different lists for ${key}; the plan keeps the ones all accept, ${show(common)}` },
      };
    }
  }
}

/**
 * Plan one VM from its disks' machine data. `images` are in the operator's
 * order (the first one's preference order wins for intersections).
 */
export function planImport(images: readonly ImageMetaInput[], registry: Registry = defaultRegistry()): ImportPlan {
  const seen = new Set<string>();
  for (const im of images) {
    if (seen.has(im.label)) throw new Error(`image ${im.label} is given twice`);
    seen.add(im.label);
  }
  const disagreements: Disagreement[] = [];
  const planned: PlannedImage[] = [];
  const vendor: VendorValue[] = [];
  // registry key -> valid values, in input order
  const byKey = new Map<string, ValueSource[]>();
  const objects: { im: ImageMetaInput; obj: MetaObject }[] = [];

  for (const im of images) {
    if (im.text === null) {
      planned.push({ label: im.label, ...named(im), from: null, keys: [] });
      continue;
    }
    const source = im.from ?? im.label;
    const obj = parseStored(im.text);
    if (obj === null) {
      planned.push({ label: im.label, ...named(im), from: source, keys: [] });
      disagreements.push({
        key: null,
        kind: 'unreadable',
        blocking: true,
        message: `the machine data of ${im.label} (stored on ${source}) is not a JSON object; fix it with \`image-meta set\``,
        values: [{ image: im.label, value: im.text, source }],
      });
      continue;
    }
    planned.push({ label: im.label, ...named(im), from: source, keys: Object.keys(obj) });
    objects.push({ im, obj });
  }

  for (const { im, obj } of objects) {
    for (const [key, value] of Object.entries(obj)) {
      const vs: ValueSource = { image: im.label, value, source: im.sources?.[key] ?? im.from ?? im.label };
      const isQemu = key.split('.')[0] === 'qemu';
      try {
        checkKey(key, value, registry);
      } catch (e) {
        if (!(e instanceof ImageMetaError)) throw e;
        const kind: DisagreementKind = e.reason === 'bad-value' ? 'invalid-value' : 'unknown-key';
        disagreements.push({
          key,
          kind,
          blocking: kind === 'invalid-value',
          message: kind === 'invalid-value' ? `${im.label}: ${e.message}; the value is not used` : `${im.label}: ${e.message}; the key is ignored`,
          values: [vs],
        });
        continue;
      }
      if (!isQemu) {
        vendor.push({ key, ...vs });
        continue;
      }
      const list = byKey.get(key) ?? [];
      list.push(vs);
      byKey.set(key, list);
    }
  }

  const settings: PlannedSetting[] = [];
  for (const key of registry.entries.keys()) {
    const values = byKey.get(key);
    if (values === undefined) continue;
    const without = images.filter((im) => !values.some((v) => v.image === im.label)).map((im) => im.label);
    const rule = ruleFor(key);
    if (rule === undefined) {
      settings.push({ key, setting: key, rule: 'none', ruleText: 'no combine rule', status: 'no-rule', value: null, choice: null, values, without });
      disagreements.push({ key, kind: 'no-rule', blocking: true, message: `${key} is in the key registry but the planner has no rule to combine it (src/toolstack/import-plan/rules.ts)`, values });
      continue;
    }
    const c = combine(rule.rule, key, values);
    const choice = rule.rule === 'intersection' && Array.isArray(c.value) ? (c.value[0] ?? null) : c.value;
    settings.push({ key, setting: rule.setting, rule: rule.rule, ruleText: RULE_TEXT[rule.rule], status: c.status, value: c.value, choice, values, without });
    if (c.disagreement) disagreements.push({ key, ...c.disagreement, values });
  }

  // A disk smaller than its own stated minimum: the VM would get a disk the guest says is too small.
  for (const { im } of objects) {
    const v = byKey.get('qemu.min-disk-GB')?.find((x) => x.image === im.label);
    if (v === undefined || im.virtualSize === undefined) continue;
    const want = (v.value as number) * GiB;
    if (im.virtualSize < want) {
      disagreements.push({
        key: 'qemu.min-disk-GB',
        kind: 'too-small',
        blocking: false,
        message: `${im.label} is ${im.virtualSize} bytes but its machine data asks for at least ${v.value as number} GiB (${want} bytes); resize it before booting`,
        values: [v],
      });
    }
  }

  return { images: planned, settings, vendor, disagreements, blocked: disagreements.some((d) => d.blocking) };
}
