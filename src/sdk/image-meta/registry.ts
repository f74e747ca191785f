// The key registry (Layer 2): which `qemu.` keys exist, their type and meaning,
// read from data/image-meta-keys.yaml (a data file, so adding a key is a
// reviewed one-line change, as the proposal's "file in the source tree").
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { z } from 'zod';
import { PACKAGE_ROOT } from '../env.js';

// Every driver process imports this module (vdi_create validates sm_config
// image-meta), but few need the registry: the YAML parser (about 80 modules)
// is loaded on first use, synchronously, through its CommonJS build.
const requireLazily = createRequire(import.meta.url);
function parseYaml(text: string): unknown {
  return (requireLazily('yaml') as typeof import('yaml')).parse(text);
}

export const REGISTRY_FILE = join(PACKAGE_ROOT, 'data', 'image-meta-keys.yaml');

const KeyType = z.enum(['string', 'integer', 'boolean', 'string-list', 'enum', 'enum-list']);
export type KeyType = z.infer<typeof KeyType>;

const Entry = z
  .object({
    name: z.string().regex(/^qemu(\.[a-z0-9][A-Za-z0-9-]*)+$/, 'a registry name is qemu.<segment>[.<segment>...]'),
    type: KeyType,
    meaning: z.string().min(1),
    values: z.array(z.string().min(1)).min(1).optional(),
    min: z.number().int().optional(),
    glance: z.string().optional(),
  })
  .strict()
  .refine((e) => (e.type === 'enum' || e.type === 'enum-list') === (e.values !== undefined), {
    message: 'enum and enum-list keys need `values`; other types must not have them',
  });
export type RegistryEntry = z.infer<typeof Entry>;

const RegistryFile = z.object({ version: z.literal(1), keys: z.array(Entry) }).strict();

export interface Registry {
  entries: ReadonlyMap<string, RegistryEntry>;
}

export function parseRegistry(text: string, source = 'registry'): Registry {
  const r = RegistryFile.safeParse(parseYaml(text));
  if (!r.success) throw new Error(`${source}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const entries = new Map<string, RegistryEntry>();
  for (const e of r.data.keys) {
    if (entries.has(e.name)) throw new Error(`${source}: key ${e.name} is listed twice`);
    entries.set(e.name, e);
  }
  return { entries };
}

let cached: Registry | undefined;

/** The project's registry (data/image-meta-keys.yaml), read once per process. */
export function defaultRegistry(): Registry {
  cached ??= parseRegistry(readFileSync(REGISTRY_FILE, 'utf8'), REGISTRY_FILE);
  return cached;
}
