// VHD images through vhd-util (blktap's, or ours in bin/vhd-util). Sizes go to
// vhd-util in MiB after rules.ts has rounded them to 2 MiB, so what we pass is
// exactly what the image gets.
import { readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { SRError } from '../errors/sr-error.js';
import * as vhdUtil from '../tools/vhd-util.js';
import { ToolError } from '../tools/run.js';
import { vhdRefs, walkChain } from './chain.js';
import { asSRError, refuseExisting, refuseShrink, removeQuietly } from './common.js';
import { roundVirtualSize, rulesOf } from './rules.js';
import type { CoalesceResult, ImageFormatOps, ImageInfo, ImageRef, ResizeOptions, ScanRecord } from './types.js';
import { readVhdHeader } from './vhd-header.js';

const MiB = 1024 * 1024;
/** blktap exits with ENOSPC when `snapshot -l` would exceed the depth limit. */
const ENOSPC = 28;

/** sm's FileSR journal for `vhd-util resize -j`: `.journal-<uuid>` next to `<uuid>.vhd`. */
export function defaultResizeJournal(path: string): string {
  return join(dirname(path), `.journal-${basename(path, '.vhd')}`);
}

/**
 * What `vhd-util scan` is given: the pattern `DIR/*.vhd` (expanded by vhd-util,
 * as sm does), or, when the directory name itself has glob characters, the
 * file names listed here. Either way one process.
 */
export function scanTargets(dir: string): { pattern: string } | { files: string[] } | null {
  const abs = resolve(dir);
  if (!/[*?[\]{}\\]/.test(abs)) return { pattern: join(abs, '*.vhd') };
  const files = readdirSync(abs).filter((n) => n.endsWith('.vhd')).sort().map((n) => join(abs, n));
  return files.length > 0 ? { files } : null;
}

export const vhdOps: ImageFormatOps = {
  format: 'vhd',

  async create(path, virtualSize) {
    const size = roundVirtualSize('vhd', virtualSize);
    refuseExisting(path, 'vhd');
    try {
      await vhdUtil.create({ path, sizeMiB: size / MiB });
    } catch (e) {
      removeQuietly(path);
      throw asSRError('VDICreate', `creating VHD ${path} of ${size} bytes`, e);
    }
    return size;
  },

  async info(path) {
    const abs = resolve(path);
    const q = await vhdUtil.query({ path: abs, fields: ['virtualSize', 'physicalSize', 'hidden', 'parent'] });
    // query -v is floor(MiB); the footer has the exact byte count and tells a raw parent apart.
    const h = readVhdHeader(abs);
    const parent = q.parent ?? null;
    return {
      path: abs,
      format: 'vhd',
      virtualSize: h.currentSize,
      physicalSize: q.physicalSize ?? statSync(abs).size,
      parent,
      parentFormat: parent === null ? null : h.parentIsRaw ? 'raw' : 'vhd',
      hidden: (q.hidden ?? 0) !== 0,
    };
  },

  async scan(dir) {
    const abs = resolve(dir);
    const targets = scanTargets(abs);
    if (targets === null) return [];
    const entries = await vhdUtil.scan({ ...targets, fast: true, continueOnError: true });
    return entries.map((e): ScanRecord => {
      if (e.kind === 'error') {
        const path = e.name.startsWith('/') ? e.name : join(abs, e.name);
        return { kind: 'error', path, format: 'vhd', message: `vhd-util scan: ${e.message} (${e.error})` };
      }
      const path = join(abs, e.name);
      let parentFormat: ImageInfo['parentFormat'] = null;
      if (e.parent !== null) {
        // Fast scan prints the header's parent name only; whether that parent is raw is in the child's header.
        try {
          parentFormat = readVhdHeader(path).parentIsRaw ? 'raw' : 'vhd';
        } catch (err) {
          return { kind: 'error', path, format: 'vhd', message: (err as Error).message };
        }
      }
      const info: ImageInfo = {
        path,
        format: 'vhd',
        virtualSize: e.capacity,
        physicalSize: e.size,
        parent: e.parent === null ? null : join(abs, e.parent),
        parentFormat,
        hidden: e.hidden !== 0,
      };
      return { kind: 'image', info };
    });
  },

  async snapshot(parent, childPath) {
    if (parent.format !== 'vhd' && parent.format !== 'raw') {
      throw new SRError('VDISnapshot', `a VHD child cannot have a ${parent.format} parent (${parent.path}); use vhd or raw`);
    }
    refuseExisting(childPath, 'vhd');
    const parentRaw = parent.format === 'raw';
    if (parentRaw && statSync(parent.path).size > rulesOf('vhd').maxSize) {
      throw new SRError('VDISnapshot', `raw parent ${parent.path} is larger than the VHD maximum`);
    }
    // `-e`: link to exactly this parent even when it is empty. blktap's default
    // would silently skip an empty differencing parent and link to an ancestor,
    // so the chain on disk would differ from the one the caller records (and
    // from qcow2, which never skips). Dropping empty bases is the SR core's
    // choice, made explicitly (sm's FileSR unlinks B when no child uses it).
    // `-l`: the tool enforces the chain depth limit in the same process.
    try {
      await vhdUtil.snapshot({
        path: childPath,
        parent: parent.path,
        parentRaw,
        linkEmptyParent: !parentRaw,
        ...(parentRaw ? {} : { depthLimit: rulesOf('vhd').maxChainDepth }),
      });
    } catch (e) {
      removeQuietly(childPath);
      // Exit 28 is also a full disk: only the depth message means the chain is too long.
      if (e instanceof ToolError && e.exitCode === ENOSPC && /snapshot depth exceeded/.test(e.stdout + e.stderr)) {
        throw new SRError('SnapshotChainTooLong', `a vhd chain may be at most ${rulesOf('vhd').maxChainDepth} deep; ${parent.path} is already that deep`, { cause: e });
      }
      throw asSRError('VDISnapshot', `snapshot of ${parent.path} into ${childPath}`, e);
    }
  },

  async resize(path, newSize, opts: ResizeOptions = {}) {
    const current = readVhdHeader(path).currentSize;
    refuseShrink(path, current, newSize);
    const size = roundVirtualSize('vhd', newSize);
    if (size <= current) return current;
    const journal = opts.journal ?? defaultResizeJournal(path);
    try {
      await vhdUtil.resize({ path, sizeMiB: size / MiB, journal });
    } catch (e) {
      // A failed journaled resize may have moved blocks: roll it back from the journal.
      let reverted = 'reverted from the journal';
      try {
        await vhdUtil.revert({ path, journal });
      } catch (re) {
        reverted = `revert failed too: ${(re as Error).message}`;
      }
      throw asSRError('VDIResize', `resizing ${path} to ${size} bytes (${reverted})`, e);
    }
    return size;
  },

  async coalesce(childPath): Promise<CoalesceResult> {
    // A child grown after the snapshot holds data past the parent's end, which
    // vhd-util refuses to coalesce: grow the parent first, as sm's GC does
    // (_increaseSizeVirt). qemu-img commit does this by itself for qcow2.
    const parent = vhdRefs(childPath).parent;
    if (parent !== null && parent.format === 'vhd') {
      const childSize = readVhdHeader(childPath).currentSize;
      if (childSize > readVhdHeader(parent.path).currentSize) await vhdOps.resize(parent.path, childSize);
    }
    const r = await vhdUtil.coalesce({ path: childPath });
    return { bytes: r.bytes };
  },

  async setParent(childPath, newParent: ImageRef) {
    if (newParent.format !== 'vhd' && newParent.format !== 'raw') {
      throw new SRError('VDIUnavailable', `a VHD cannot have a ${newParent.format} parent (${newParent.path})`);
    }
    await vhdUtil.modify({ path: childPath, parent: newParent.path, parentRaw: newParent.format === 'raw' });
  },

  async getHidden(path) {
    const q = await vhdUtil.query({ path, fields: ['hidden'] });
    return (q.hidden ?? 0) !== 0;
  },

  async setHidden(path, hidden) {
    await vhdUtil.set({ path, field: 'hidden', value: hidden ? 1 : 0 });
  },

  async chain(path) {
    return walkChain({ path, format: 'vhd' });
  },
};
