// Plug-in discovery as xapi does it (sm_exec.ml get_supported, sm.ml register):
// executables named <Name>SR; the SR type is the lower-cased <Name>.
import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { env, PACKAGE_ROOT } from '../sdk/env.js';
import { XenApiError } from './errors.js';

export interface Plugin {
  /** SR type: lower-cased file name without the SR suffix (`EXTSR` -> `ext`). */
  type: string;
  /** Driver name as xapi calls it (`EXT`). */
  name: string;
  /** Absolute path of the executable. */
  path: string;
}

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function scanFlat(dir: string): Plugin[] {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return [];
  }
  const out: Plugin[] = [];
  for (const file of names) {
    if (!file.endsWith('SR') || file.length <= 2) continue;
    const path = join(dir, file);
    if (!isExecutableFile(path)) continue;
    const name = file.slice(0, -2);
    out.push({ type: name.toLowerCase(), name, path });
  }
  return out;
}

/** Where plug-ins are looked for: an explicit flat directory, $SM_DIR, or our drivers/ tree. */
export function pluginSearch(smDir?: string): { kind: 'flat'; dir: string } | { kind: 'tree'; dir: string } {
  if (smDir) return { kind: 'flat', dir: smDir };
  if (process.env['SM_DIR']) return { kind: 'flat', dir: env.smDir() };
  return { kind: 'tree', dir: join(PACKAGE_ROOT, 'drivers') };
}

/** Every plug-in found; the first one of a type wins (xapi keeps one SM per type). */
export function discoverPlugins(smDir?: string): Plugin[] {
  const where = pluginSearch(smDir);
  let found: Plugin[];
  if (where.kind === 'flat') {
    found = scanFlat(where.dir);
  } else {
    let subdirs: string[] = [];
    try {
      subdirs = readdirSync(where.dir).sort().filter((d) => statSync(join(where.dir, d)).isDirectory());
    } catch {
      subdirs = [];
    }
    found = subdirs.flatMap((d) => scanFlat(join(where.dir, d)));
  }
  const seen = new Set<string>();
  return found.filter((p) => (seen.has(p.type) ? false : (seen.add(p.type), true)));
}

export function findPlugin(type: string, smDir?: string): Plugin {
  const all = discoverPlugins(smDir);
  const p = all.find((x) => x.type === type);
  if (!p) {
    const where = pluginSearch(smDir);
    throw new XenApiError(
      'SR_UNKNOWN_DRIVER',
      [type],
      `no SM plug-in for SR type '${type}' in ${where.dir} (found: ${all.map((x) => x.type).join(', ') || 'none'})`,
    );
  }
  return p;
}
