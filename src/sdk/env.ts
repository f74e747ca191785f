// Every place the framework reads its environment, in one module, so that the
// defaults match xapi's hosts and tests can move each one aside.
import { existsSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Root of this package (the directory holding package.json), from src/ or dist/src/. */
export const PACKAGE_ROOT: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package root not found');
    dir = up;
  }
  return dir;
})();

function fromEnv(name: string, fallback: string): string {
  const v = process.env[name];
  return v !== undefined && v !== '' ? v : fallback;
}

export const env = {
  /** Driver log file; xapi's drivers log to /var/log/SMlog. */
  logFile: () => fromEnv('SM_LOG_FILE', '/var/log/SMlog'),
  /** Per-SR lock files: /var/lock/sm/<sr_uuid>/sr, as sm's Lock("sr", uuid). */
  lockDir: () => fromEnv('SM_LOCK_DIR', '/var/lock/sm'),
  /** Mount points of file-based SRs: <root>/<sr_uuid>. */
  srMountRoot: () => fromEnv('SM_SR_MOUNT_ROOT', '/run/sr-mount'),
  /** Runtime state (refcounts, journals in flight): /run/sm. */
  runDir: () => fromEnv('SM_RUN_DIR', '/run/sm'),
  /**
   * XenAPI endpoint for driver callbacks. Default: xapi's local Unix socket.
   * `http://127.0.0.1:PORT/` or `unix:/path/to/socket` override it.
   */
  xapiUrl: () => fromEnv('SM_XAPI_URL', 'unix:/var/lib/xcp/xapi'),
  /** Where smctl keeps its SR/PBD/VDI database. */
  stateDb: () => fromEnv('SMCTL_DB', '/var/lib/smapi-ts/state.db'),
  /**
   * Where the copy engine writes a staging raw file (vhd <-> qcow2) when neither
   * end of the copy is a file (both VDIs on block devices, e.g. LVM to LVM).
   */
  copyStagingDir: () => fromEnv('SM_COPY_STAGING_DIR', '/var/tmp'),
  /** Plug-in directory a toolstack scans; ours install there by default. */
  smDir: () => fromEnv('SM_DIR', '/opt/xensource/sm'),
  /**
   * LVM without device-mapper: `1` adds `--driverloaded n` to every LVM command
   * (metadata only, nothing is activated), `0` never adds it, unset = auto-detect
   * (no usable /dev/mapper/control → add it). See src/sdk/tools/lvm.ts.
   */
  lvmNoDeviceMapper: (): 'auto' | 'yes' | 'no' => {
    const v = fromEnv('SM_LVM_NO_DM', '');
    if (v === '1') return 'yes';
    if (v === '0') return 'no';
    if (v === '') return 'auto';
    throw new Error(`SM_LVM_NO_DM=${JSON.stringify(v)} is not allowed: use 1, 0, or leave it unset (auto-detect)`);
  },
};

/**
 * The vhd-util a driver runs: $SM_VHD_UTIL, else blktap's on PATH, else the one
 * this package ships (bin/vhd-util). A real blktap install therefore always wins.
 */
export function vhdUtilPath(): string {
  const explicit = process.env['SM_VHD_UTIL'];
  if (explicit) return explicit;
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'vhd-util');
    if (existsSync(candidate)) return candidate;
  }
  return resolve(PACKAGE_ROOT, 'bin', 'vhd-util');
}

/**
 * The vhd-util with smapi-ts's extensions (`export`, `write`), which blktap's
 * lacks: $SM_VHD_UTIL_EXT, else this package's bin/vhd-util. Used only for those
 * extension commands, so a host with real blktap still runs blktap for the rest.
 */
export function vhdUtilExtensionsPath(): string {
  const explicit = process.env['SM_VHD_UTIL_EXT'];
  if (explicit) return explicit;
  return resolve(PACKAGE_ROOT, 'bin', 'vhd-util');
}
