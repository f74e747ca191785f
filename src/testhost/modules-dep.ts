// Kernel module dependency closure from a modules.dep file, so that the
// initramfs can insmod (busybox, no kmod) each module after the ones it needs.

export interface ModuleEntry {
  /** Path relative to /lib/modules/<release>, e.g. kernel/fs/9p/9p.ko */
  path: string;
  /** Paths of the modules it needs, as listed by depmod. */
  deps: string[];
}

/** Module name as the kernel spells it: basename without .ko[.xz|.zst|.gz], '-' → '_'. */
export function moduleName(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  return base.replace(/\.ko(\.[a-z0-9]+)?$/, '').replace(/-/g, '_');
}

/** Parses modules.dep ("path: dep dep ..." per line) into a map keyed by module name. */
export function parseModulesDep(text: string): Map<string, ModuleEntry> {
  const byName = new Map<string, ModuleEntry>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const path = line.slice(0, colon).trim();
    const deps = line.slice(colon + 1).trim().split(/\s+/).filter((d) => d !== '');
    byName.set(moduleName(path), { path, deps });
  }
  return byName;
}

/**
 * The paths of `wanted` and everything they depend on, each after its
 * dependencies (the order insmod needs). Names not in modules.dep are an error:
 * the guest would otherwise boot without a feature a test relies on.
 */
export function moduleClosure(byName: Map<string, ModuleEntry>, wanted: readonly string[]): string[] {
  const byPath = new Map<string, ModuleEntry>();
  for (const m of byName.values()) byPath.set(m.path, m);
  const missing = wanted.filter((w) => !byName.has(w.replace(/-/g, '_')));
  if (missing.length > 0) {
    throw new Error(`kernel modules not found in modules.dep: ${missing.join(', ')}`);
  }
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (path: string, chain: string[]): void => {
    if (seen.has(path)) return;
    if (chain.includes(path)) throw new Error(`module dependency cycle: ${[...chain, path].join(' -> ')}`);
    const entry = byPath.get(path);
    if (entry === undefined) throw new Error(`modules.dep lists ${path} as a dependency but has no line for it`);
    for (const d of entry.deps) visit(d, [...chain, path]);
    seen.add(path);
    order.push(path);
  };
  for (const w of wanted) visit(byName.get(w.replace(/-/g, '_'))!.path, []);
  return order;
}

