// sm-install: puts the driver executables where a toolstack looks for plug-ins
// (xapi scans its sm_dir for executables named <Name>SR). Idempotent; an
// existing plug-in that is not ours is only replaced with --force, and then
// kept aside as <Name>.smapi-ts-orig and restored by --uninstall.
import { parseArgs } from 'node:util';
import { chmodSync, existsSync, lstatSync, readFileSync, readlinkSync, renameSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { env, PACKAGE_ROOT } from '../../sdk/env.js';
import { ensureDir } from '../../sdk/fs-util.js';

export const PLUGINS = [
  { name: 'FileSR', type: 'file' },
  { name: 'EXTSR', type: 'ext' },
  { name: 'LVMSR', type: 'lvm' },
  { name: 'NFSSR', type: 'nfs' },
] as const;

const LAUNCHER_MARK = '// smapi-ts sm-install launcher';
const BACKUP_SUFFIX = '.smapi-ts-orig';

export const USAGE = `Usage: sm-install [--dir DIR] [--launcher] [--force] [--uninstall]

Installs the smapi-ts storage drivers (${PLUGINS.map((p) => p.name).join(', ')})
into a toolstack's plug-in directory.

  --dir DIR     plug-in directory (default: $SM_DIR, else /opt/xensource/sm)
  --launcher    write small launcher files instead of symlinks
  --force       replace plug-ins that are not ours (kept as <Name>${BACKUP_SUFFIX})
  --uninstall   remove our plug-ins and restore any kept originals
  -h, --help    show this help

Running it again changes nothing that is already in place.`;

export class UsageError extends Error {
  override name = 'UsageError';
}

type Entry = { kind: 'absent' } | { kind: 'ours'; how: 'symlink' | 'launcher'; target: string } | { kind: 'foreign'; what: string };

function executable(type: string, name: string): string {
  return join(PACKAGE_ROOT, 'drivers', type, name);
}

function launcherText(type: string): string {
  const run = pathToFileURL(join(PACKAGE_ROOT, 'dist/src/sdk/run.js')).href;
  const info = pathToFileURL(join(PACKAGE_ROOT, 'dist/drivers', type, 'info.js')).href;
  const main = pathToFileURL(join(PACKAGE_ROOT, 'dist/drivers', type, 'main.js')).href;
  // CommonJS-compatible (no package.json next to it): dynamic import only. The
  // driver module loads only for commands other than sr_get_driver_info.
  return (
    `#!/usr/bin/env node\n${LAUNCHER_MARK} (${type})\n` +
    `Promise.all([import(${JSON.stringify(run)}), import(${JSON.stringify(info)})]).then(([r, i]) =>\n` +
    `  r.runDriver({ info: i.DRIVER_INFO, load: () => import(${JSON.stringify(main)}).then((m) => m.driver) }));\n`
  );
}

function inspect(path: string): Entry {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return { kind: 'absent' };
  }
  if (st.isSymbolicLink()) {
    const target = readlinkSync(path);
    const ours = PLUGINS.some((p) => resolve(target) === executable(p.type, p.name));
    return ours ? { kind: 'ours', how: 'symlink', target } : { kind: 'foreign', what: `a symlink to ${target}` };
  }
  if (st.isFile() && st.size < 4096) {
    const text = readFileSync(path, 'utf8');
    if (text.includes(LAUNCHER_MARK)) return { kind: 'ours', how: 'launcher', target: text };
  }
  return { kind: 'foreign', what: st.isFile() ? 'a file' : 'not a regular file' };
}

export interface InstallOptions {
  dir: string;
  launcher: boolean;
  force: boolean;
}

/** Installs every plug-in; returns one line per plug-in saying what happened. */
export function install(o: InstallOptions): string[] {
  ensureDir(o.dir);
  const report: string[] = [];
  for (const p of PLUGINS) {
    const path = join(o.dir, p.name);
    const exe = executable(p.type, p.name);
    if (!existsSync(exe)) throw new Error(`${exe} is missing: is this a complete smapi-ts checkout?`);
    const wanted = o.launcher ? launcherText(p.type) : exe;
    const now = inspect(path);
    if (now.kind === 'ours' && (o.launcher ? now.how === 'launcher' && now.target === wanted : now.how === 'symlink' && resolve(now.target) === exe)) {
      report.push(`unchanged ${path}`);
      continue;
    }
    if (now.kind === 'foreign') {
      if (!o.force) throw new Error(`${path} exists and is ${now.what}, not an smapi-ts plug-in; use --force to replace it (it is kept as ${p.name}${BACKUP_SUFFIX})`);
      renameSync(path, path + BACKUP_SUFFIX);
    } else if (now.kind === 'ours') {
      unlinkSync(path);
    }
    // Write beside, then rename: the toolstack never sees a half-written plug-in.
    const tmp = `${path}.smapi-ts-tmp`;
    if (existsSync(tmp) || lstatExists(tmp)) unlinkSync(tmp);
    if (o.launcher) {
      writeFileSync(tmp, wanted);
      chmodSync(tmp, 0o755);
    } else symlinkSync(exe, tmp);
    renameSync(tmp, path);
    report.push(`installed ${path} -> ${o.launcher ? `launcher for ${exe}` : exe}${now.kind === 'foreign' ? ` (previous kept as ${p.name}${BACKUP_SUFFIX})` : ''}`);
  }
  return report;
}

function lstatExists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Removes our plug-ins (never anyone else's) and restores kept originals. */
export function uninstall(dir: string): string[] {
  const report: string[] = [];
  for (const p of PLUGINS) {
    const path = join(dir, p.name);
    const now = inspect(path);
    if (now.kind === 'ours') {
      unlinkSync(path);
      report.push(`removed ${path}`);
    } else if (now.kind === 'foreign') {
      report.push(`left ${path} (not an smapi-ts plug-in)`);
      continue;
    } else report.push(`absent ${path}`);
    if (lstatExists(path + BACKUP_SUFFIX)) {
      renameSync(path + BACKUP_SUFFIX, path);
      report.push(`restored ${path}`);
    }
  }
  return report;
}

export function main(argv: string[]): number {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        dir: { type: 'string' },
        launcher: { type: 'boolean', default: false },
        force: { type: 'boolean', default: false },
        uninstall: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    process.stderr.write(`sm-install: ${(e as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const dir = resolve(values.dir ?? env.smDir());
  try {
    const lines = values.uninstall ? uninstall(dir) : install({ dir, launcher: values.launcher, force: values.force });
    process.stdout.write(lines.map((l) => `${l}\n`).join(''));
    return 0;
  } catch (e) {
    process.stderr.write(`sm-install: ${(e as Error).message}\n`);
    return 1;
  }
}
