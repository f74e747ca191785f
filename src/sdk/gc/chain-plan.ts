// What GC does next to a tree of VDIs (spec §5.7), the same on every SR kind:
// the file SRs (file-sr/gc.ts) and the LVM SR (lvm-sr/gc.ts) differ in how a
// step is carried out and journalled, not in which step comes next.
//   * garbage: hidden VDIs whose whole subtree is hidden;
//   * coalesce: a hidden node N with one child X whose parent P has only N;
//   * leaf-coalesce: a visible leaf A that is the only child of a hidden base B.
import type { ImageFormat } from '../../driver-info.js';

export interface ChainNode {
  uuid: string;
  format: ImageFormat;
  hidden: boolean;
  parent: string | null;
  children: string[];
}

export type GcStep<T extends ChainNode> =
  | { kind: 'garbage'; nodes: T[] }
  | { kind: 'coalesce'; node: T; parent: T; child: T }
  | { kind: 'leaf'; leaf: T; base: T };

export interface GcPlanOptions<T extends ChainNode> {
  /** Attached, active or named by a journal: never rewritten now. */
  busy: (n: T) => boolean;
  /** VDIs whose step failed in this run: not tried again until the next run. */
  failed: ReadonlySet<string>;
  /** Merge hidden single-child nodes into their parents (default true). */
  coalesce?: boolean;
  /** Merge visible leaves into their only-child bases (default true). */
  leafCoalesce?: boolean;
  /** Whether `from`'s data can be merged into `into` (default: always). */
  canMerge?: (from: T, into: T) => boolean;
}

export interface GcReport<I> {
  removed: string[];
  coalesced: { node: string; into: string }[];
  leafCoalesced: { leaf: string; base: string }[];
  errors: string[];
  /**
   * The inventory GC read last, when it stopped because nothing more was to be
   * done: it describes the SR as GC left it, so a scan right after can use it
   * instead of reading every header again. Absent when GC stopped at maxActions.
   */
  finalInventory?: I;
}

export const emptyGcReport = <I>(): GcReport<I> => ({ removed: [], coalesced: [], leafCoalesced: [], errors: [] });

export function gcChanged(r: GcReport<unknown>): boolean {
  return r.removed.length + r.coalesced.length + r.leafCoalesced.length > 0;
}

/** Hidden VDIs whose whole subtree is hidden, leaves first. A child missing from `vdis` counts as visible. */
export function prunable<T extends ChainNode>(vdis: ReadonlyMap<string, T>): T[] {
  const memo = new Map<string, boolean>();
  const allHidden = (v: T): boolean => {
    const known = memo.get(v.uuid);
    if (known !== undefined) return known;
    memo.set(v.uuid, false); // loop guard
    const r = v.hidden && v.children.every((c) => {
      const n = vdis.get(c);
      return n !== undefined && allHidden(n);
    });
    memo.set(v.uuid, r);
    return r;
  };
  const out: T[] = [];
  const visit = (v: T): void => {
    for (const c of v.children) visit(vdis.get(c)!);
    out.push(v);
  };
  for (const v of vdis.values()) {
    const p = v.parent === null ? undefined : vdis.get(v.parent);
    if ((p === undefined || !allHidden(p)) && allHidden(v)) visit(v);
  }
  return out;
}

/** The next GC step on `vdis`, garbage first, then coalesce, then leaf-coalesce; null when there is none. */
export function nextGcStep<T extends ChainNode>(vdis: ReadonlyMap<string, T>, o: GcPlanOptions<T>): GcStep<T> | null {
  const canMerge = o.canMerge ?? (() => true);
  const garbage = prunable(vdis).filter((v) => !o.busy(v) && !o.failed.has(v.uuid));
  if (garbage.length > 0) return { kind: 'garbage', nodes: garbage };
  if (o.coalesce === false) return null;
  for (const n of vdis.values()) {
    if (!n.hidden || n.children.length !== 1 || n.parent === null || o.failed.has(n.uuid)) continue;
    const p = vdis.get(n.parent);
    const x = vdis.get(n.children[0]!);
    if (p === undefined || x === undefined || p.children.length !== 1 || !canMerge(n, p)) continue;
    if (o.busy(n) || o.busy(p) || o.busy(x)) continue;
    return { kind: 'coalesce', node: n, parent: p, child: x };
  }
  if (o.leafCoalesce === false) return null;
  for (const a of vdis.values()) {
    if (a.hidden || a.children.length !== 0 || a.parent === null || o.failed.has(a.uuid)) continue;
    const b = vdis.get(a.parent);
    if (b === undefined || !b.hidden || b.children.length !== 1 || !canMerge(a, b)) continue;
    if (o.busy(a) || o.busy(b)) continue;
    return { kind: 'leaf', leaf: a, base: b };
  }
  return null;
}
