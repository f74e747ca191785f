// Shared set-up for the file-SR tests: a scratch area per test (database,
// SR location, mount root, locks, logs) driven through the real smctl and the
// real FileSR executable; every bind mount made under it is unmounted and the
// directory removed afterwards, even when the test fails.
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect } from 'vitest';
import { StateDb } from '../../src/toolstack/db/state-db.js';
import type { DbRecord } from '../../src/toolstack/db/schema.js';
import type { ImageFormat } from '../../src/driver-info.js';
import { readRange, writeRange } from '../../src/sdk/formats/index.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const SMCTL = join(ROOT, 'bin', 'smctl');
export const KiB = 1024;
export const MiB = 1024 * KiB;

export function assertBuilt(): void {
  for (const f of ['dist/src/cli/smctl/main.js', 'dist/drivers/file/handlers.js', 'dist/src/sdk/file-sr/handlers.js'])
    if (!existsSync(join(ROOT, f))) throw new Error(`${f} is not built: run \`npx tsc -p tsconfig.build.json\` first`);
}

export interface Scratch {
  dir: string;
  /** device-config:location of the SR. */
  location: string;
  mountRoot: string;
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

export function scratch(): Scratch {
  const dir = mkdtempSync(join(process.env['SMAPI_TEST_TMP'] ?? '/var/tmp', 'file-sr-test-'));
  const env: Record<string, string> = {
    SMCTL_DB: join(dir, 'state.db'),
    SM_LOG_FILE: join(dir, 'SMlog'),
    SM_LOCK_DIR: join(dir, 'lock'),
    SM_RUN_DIR: join(dir, 'run'),
    SM_SR_MOUNT_ROOT: join(dir, 'mnt'),
  };
  return {
    dir,
    location: join(dir, 'sr'),
    mountRoot: env['SM_SR_MOUNT_ROOT']!,
    env,
    cleanup: async () => {
      await unmountUnder(dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Unmount everything mounted under `dir`, deepest first. */
export async function unmountUnder(dir: string): Promise<void> {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await execa('umount', [m], { reject: false });
}

export interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function smctl(s: Scratch, args: string[], extraEnv: Record<string, string> = {}): Promise<Run> {
  const env: Record<string, string | undefined> = { ...process.env, ...s.env, ...extraEnv };
  delete env['SM_DIR'];
  if (!('SM_FIST' in extraEnv)) delete env['SM_FIST'];
  const r = await execa(process.execPath, [SMCTL, ...args], { env, extendEnv: false, reject: false, timeout: 110_000 });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

export async function ok(s: Scratch, args: string[], extraEnv: Record<string, string> = {}): Promise<string> {
  const r = await smctl(s, args, extraEnv);
  if (r.exitCode !== 0) throw new Error(`smctl ${args.join(' ')} failed (${r.exitCode}):\n${r.stderr}${r.stdout}`);
  return r.stdout.trim();
}

export function withDb<T>(s: Scratch, fn: (db: StateDb) => T): T {
  const db = StateDb.open(s.env['SMCTL_DB']!);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

export function vdiRecord(s: Scratch, uuid: string): DbRecord | undefined {
  return withDb(s, (db) => db.getByUuid('VDI', uuid) ?? undefined);
}

export function vdisOfSr(s: Scratch, srUuid: string): DbRecord[] {
  return withDb(s, (db) => {
    const sr = db.getByUuid('SR', srUuid);
    if (!sr) throw new Error(`no SR ${srUuid}`);
    return db.where('VDI', 'SR', sr.ref);
  });
}

export function srRecord(s: Scratch, srUuid: string): DbRecord {
  return withDb(s, (db) => db.getByUuid('SR', srUuid)!);
}

export async function createSr(s: Scratch, extra: string[] = []): Promise<string> {
  return ok(s, ['sr-create', 'type=file', `device-config:location=${s.location}`, 'name-label=test', ...extra]);
}

export async function createVdi(s: Scratch, sr: string, format: ImageFormat, size = '8MiB', label = `${format}-disk`): Promise<string> {
  return ok(s, ['vdi-create', `sr-uuid=${sr}`, `virtual-size=${size}`, `name-label=${label}`, `sm-config:image-format=${format}`]);
}

/** The image file of VDI `uuid` in the SR location, and its format (by extension). */
export function imageOf(s: Scratch, uuid: string): { path: string; format: ImageFormat } {
  for (const format of ['vhd', 'qcow2', 'raw'] as const) {
    const path = join(s.location, `${uuid}.${format}`);
    if (existsSync(path)) return { path, format };
  }
  throw new Error(`VDI ${uuid} has no image file in ${s.location}: ${readdirSync(s.location).join(', ')}`);
}

export function pattern(byte: number, length = 64 * KiB): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (byte + (i % 251)) & 0xff;
  return b;
}

export async function writeVdi(s: Scratch, uuid: string, offset: number, data: Buffer): Promise<void> {
  await writeRange(imageOf(s, uuid), offset, data);
}

export async function readVdi(s: Scratch, uuid: string, offset: number, length: number): Promise<Buffer> {
  return readRange(imageOf(s, uuid), offset, length);
}

/** Every file in the SR location (names only), sorted. */
export function filesIn(s: Scratch): string[] {
  return readdirSync(s.location).sort();
}

export function smConfig(r: DbRecord | undefined): Record<string, string> {
  return (r?.['sm_config'] ?? {}) as Record<string, string>;
}

/** Runs an smctl command with the SM_FIST point set; the driver must die there (the command fails). */
export async function crash(s: Scratch, args: string[], point: string): Promise<void> {
  const r = await smctl(s, args, { SM_FIST: point });
  expect(r.exitCode, `${args.join(' ')} with SM_FIST=${point} should have crashed`).not.toBe(0);
}

/** The SR after recovery: DB and files agree, nothing temporary is left, every visible VDI's file exists. */
export async function expectConsistent(s: Scratch, sr: string): Promise<void> {
  await ok(s, ['sr-scan', `uuid=${sr}`]);
  const files = filesIn(s);
  expect(files.filter((f) => f.startsWith('.journal') || f.endsWith('.new') || f.includes('.tmp-'))).toEqual([]);
  const images = new Set(files.filter((f) => /\.(vhd|qcow2|raw)$/.test(f)).map((f) => f.replace(/\.(vhd|qcow2|raw)$/, '')));
  const db = vdisOfSr(s, sr);
  for (const r of db) expect(images.has(String(r['uuid'])), `DB VDI ${String(r['uuid'])} has a file`).toBe(true);
  // A second scan changes nothing: the state is stable.
  await ok(s, ['sr-scan', `uuid=${sr}`]);
  expect(vdisOfSr(s, sr)).toEqual(db);
}
