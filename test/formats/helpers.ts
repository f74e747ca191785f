// Shared set-up for the format-layer tests: temp directories that are always
// removed, a vhd-util that must actually run (a missing one fails, never skips),
// and small content helpers.
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { vhdUtilExtensionsPath, vhdUtilPath } from '../../src/sdk/env.js';
import { runTool } from '../../src/sdk/tools/run.js';
import type { ImageFormat } from '../../src/driver-info.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const FORMATS: readonly ImageFormat[] = ['vhd', 'qcow2', 'raw'];

/** A fresh directory per test file (under /var/tmp: real disk, not tmpfs), removed afterwards. */
export function useTempRoot(): () => string {
  let root = '';
  beforeAll(() => {
    root = mkdtempSync(join(process.env['SMAPI_TEST_TMP'] ?? '/var/tmp', 'smapi-formats-'));
  });
  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });
  return () => root;
}

let n = 0;
/** A new empty sub-directory of the test root (one per test, so tests never see each other's files). */
export function freshDir(root: string): string {
  const d = mkdtempSync(join(root, `t${n++}-`));
  return d;
}

/** vhd-util with no arguments prints its usage and exits 0 (blktap and ours); anything else means it cannot run. */
export function requireVhdUtil(): void {
  beforeAll(async () => {
    for (const path of new Set([vhdUtilPath(), vhdUtilExtensionsPath()])) {
      try {
        await runTool([path]);
      } catch (e) {
        throw new Error(`vhd-util at ${path} does not run (build dist/ with npx tsc -p tsconfig.build.json, or set SM_VHD_UTIL / SM_VHD_UTIL_EXT): ${(e as Error).message}`);
      }
    }
  });
}

/** A deterministic, position-dependent pattern, so shifted or misplaced data never compares equal. */
export function pattern(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}
