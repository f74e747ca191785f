// Builds (once) and checks (every run) the test-host cache: a Debian kernel and a
// busybox initramfs that loads the modules this host's kernel lacks.
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { PACKAGE_ROOT } from '../sdk/env.js';
import {
  aptListsStamp,
  candidateVersion,
  debField,
  downloadDebs,
  resolveKernelPackage,
} from './apt.js';
import type { Backend, TestHostConfig } from './config.js';
import { cpioEntriesFromDir, cpioNewc } from './cpio.js';
import { moduleClosure, parseModulesDep } from './modules-dep.js';

/** What the tests need from the guest kernel: LVM activation, snapshots, thin pools, NFS client and server. */
export const FEATURE_MODULES = [
  'overlay', 'loop', 'ext4',
  'dm_mod', 'dm_snapshot', 'dm_thin_pool', 'dm_zero',
  'nfs', 'nfsv3', 'nfsv4', 'nfsd',
] as const;
/** What the QEMU guest needs to reach the host: virtio PCI, 9p, an entropy source, crc32c for ext4. */
export const QEMU_MODULES = ['virtio_pci', 'virtio_rng', '9p', '9pnet_virtio', 'crc32c_generic', 'crc32c_intel'] as const;

/** Bumped whenever the cache layout or the initramfs recipe changes in a way the hash below cannot see. */
const FORMAT = 2;
const UML_PACKAGE = 'user-mode-linux';
const BUSYBOX_PACKAGE = 'busybox-static';

const manifestSchema = z.object({
  format: z.literal(FORMAT),
  backend: z.enum(['qemu', 'uml']),
  recipe: z.string(),
  kernelPackage: z.string(),
  kernelVersion: z.string(),
  kernelRelease: z.string(),
  busyboxVersion: z.string(),
  modules: z.array(z.string()),
  aptListsStamp: z.number(),
  preparedAt: z.string(),
  prepareMs: z.number(),
});
export type Manifest = z.infer<typeof manifestSchema>;

export interface PreparedTestHost {
  backend: Backend;
  dir: string;
  /** vmlinux, the uncompressed ELF kernel (qemu), or linux.uml (uml). */
  kernel: string;
  initrd: string;
  manifest: Manifest;
}

const kernelFile = (b: Backend): string => (b === 'qemu' ? 'vmlinux' : 'linux.uml');
const guestDir = (): string => join(PACKAGE_ROOT, 'testhost', 'guest');

function wantedModules(b: Backend): string[] {
  return b === 'qemu' ? [...QEMU_MODULES, ...FEATURE_MODULES] : [...FEATURE_MODULES];
}

/** Identifies everything baked into the initramfs; a different value means rebuild. */
async function recipeHash(b: Backend): Promise<string> {
  const h = createHash('sha256');
  h.update(`format ${FORMAT}\nbackend ${b}\nmodules ${wantedModules(b).join(' ')}\n`);
  h.update(await readFile(join(guestDir(), 'init')));
  return h.digest('hex').slice(0, 16);
}

async function readManifest(dir: string): Promise<Manifest | undefined> {
  try {
    return manifestSchema.parse(JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')));
  } catch {
    return undefined;
  }
}

function prepared(cfg: TestHostConfig, manifest: Manifest): PreparedTestHost {
  return {
    backend: cfg.backend,
    dir: cfg.cacheDir,
    kernel: join(cfg.cacheDir, kernelFile(cfg.backend)),
    initrd: join(cfg.cacheDir, 'initrd.cpio'),
    manifest,
  };
}

/** The kernel apt would give now, as "package version" for UML (unversioned name) or the image package name. */
async function currentKernelId(b: Backend): Promise<string> {
  return b === 'qemu' ? resolveKernelPackage() : `${UML_PACKAGE} ${await candidateVersion(UML_PACKAGE)}`;
}

export type Log = (line: string) => void;

/** The cache if it is complete and current; undefined if it must be prepared. */
async function freshCache(cfg: TestHostConfig, log: Log): Promise<PreparedTestHost | undefined> {
  const m = await readManifest(cfg.cacheDir);
  if (m === undefined || m.backend !== cfg.backend || m.recipe !== (await recipeHash(cfg.backend))) return undefined;
  const p = prepared(cfg, m);
  if (!existsSync(p.kernel) || !existsSync(p.initrd)) return undefined;
  const stamp = await aptListsStamp();
  if (stamp === m.aptListsStamp) return p;
  const id = await currentKernelId(cfg.backend);
  const have = cfg.backend === 'qemu' ? m.kernelPackage : `${m.kernelPackage} ${m.kernelVersion}`;
  if (id !== have) {
    log(`test host: apt now offers ${id} (cache has ${have}); preparing again`);
    return undefined;
  }
  const updated = { ...m, aptListsStamp: stamp };
  await writeFile(join(cfg.cacheDir, 'manifest.json'), JSON.stringify(updated, null, 2));
  return prepared(cfg, updated);
}

/**
 * Runs `fn` holding the cache's prepare lock (a file with the holder's pid), so
 * that test files starting together on an empty cache prepare it once. A lock
 * left by a dead process is taken over.
 */
async function withPrepareLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(dir, { recursive: true });
  const lock = join(dir, '.prepare.lock');
  for (;;) {
    try {
      await writeFile(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
      let alive = false;
      try {
        alive = Number.isInteger(holder) && holder > 0 && process.kill(holder, 0);
      } catch {
        alive = false;
      }
      if (!alive) await rm(lock, { force: true });
      else await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}

/**
 * The cache, prepared if it is missing, built by another recipe, or older than
 * the kernel apt now offers. Cheap when fresh: apt is only asked again after its
 * package lists changed.
 */
export async function ensureTestHost(cfg: TestHostConfig, log: Log = () => {}): Promise<PreparedTestHost> {
  return (
    (await freshCache(cfg, log)) ??
    withPrepareLock(cfg.cacheDir, async () => (await freshCache(cfg, () => {})) ?? prepareTestHost(cfg, log))
  );
}

/**
 * The ELF vmlinux inside a bzImage. QEMU boots it through its PVH entry point,
 * which skips the kernel's own xz decompressor: under TCG that decompressor
 * costs 5-15 s of every boot, before the guest clock even starts.
 */
export async function uncompressedKernel(bzImage: string): Promise<Buffer> {
  const image = await readFile(bzImage);
  const at = image.indexOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]));
  if (at < 0) throw new Error(`${bzImage}: no xz-compressed payload found (is it a Debian amd64 kernel?)`);
  const { stdout } = await execa('xz', ['-dc', '--single-stream'], {
    input: image.subarray(at),
    encoding: 'buffer',
    maxBuffer: 512 * 1024 * 1024,
  });
  const elf = Buffer.from(stdout);
  if (!elf.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) throw new Error(`${bzImage}: the payload is not an ELF kernel`);
  if (!hasPvhNote(elf)) throw new Error(`${bzImage}: the kernel has no PVH entry point (CONFIG_PVH), QEMU cannot boot it uncompressed`);
  return elf;
}

/** Whether an ELF image has the Xen PVH entry note (name "Xen", type 18 = XEN_ELFNOTE_PHYS32_ENTRY). */
export function hasPvhNote(elf: Buffer): boolean {
  const name = Buffer.from('Xen\0');
  for (let i = elf.indexOf(name); i >= 12; i = elf.indexOf(name, i + 1)) {
    if (elf.readUInt32LE(i - 12) === 4 && elf.readUInt32LE(i - 4) === 18) return true;
  }
  return false;
}

async function sh(file: string, args: string[], cwd?: string): Promise<void> {
  await execa(file, args, { cwd, stdin: 'ignore' });
}

/** Downloads the kernel and busybox and builds the initramfs into cfg.cacheDir (always, even if fresh). */
export async function prepareTestHost(cfg: TestHostConfig, log: Log = () => {}): Promise<PreparedTestHost> {
  const t0 = Date.now();
  await mkdir(cfg.cacheDir, { recursive: true });
  // Built beside the cache and renamed into place, so a concurrent run never sees half a cache.
  const work = await mkdtemp(join(cfg.cacheDir, '.build-'));
  try {
    const stamp = await aptListsStamp();
    const kernelPkg = cfg.backend === 'qemu' ? await resolveKernelPackage() : UML_PACKAGE;
    log(`test host: downloading ${kernelPkg} and ${BUSYBOX_PACKAGE}`);
    const debDir = join(work, 'debs');
    await mkdir(debDir);
    const [kernelDeb, busyboxDeb] = (await downloadDebs([kernelPkg, BUSYBOX_PACKAGE], debDir)) as [string, string];

    const root = join(work, 'root');
    await mkdir(root);
    let modulesBase: string; // directory holding <release>/modules.dep
    let kernelRelease: string;
    let kernelImage: string;
    if (cfg.backend === 'qemu') {
      kernelRelease = kernelPkg.replace(/^linux-image-/, '');
      // 400 MB of tar stream: piped straight into tar, never buffered.
      await execa('dpkg-deb', ['--fsys-tarfile', kernelDeb], { buffer: false, stdin: 'ignore' }).pipe(
        'tar', ['-x', '-C', root, '--wildcards', `./boot/vmlinuz-${kernelRelease}`, './lib/modules/*'],
      );
      modulesBase = join(root, 'lib', 'modules');
      kernelImage = join(root, 'boot', `vmlinuz-${kernelRelease}`);
    } else {
      await sh('dpkg-deb', ['-x', kernelDeb, root]);
      modulesBase = join(root, 'usr', 'lib', 'uml', 'modules');
      const releases = await readdir(modulesBase);
      if (releases.length !== 1) throw new Error(`expected one kernel release in ${UML_PACKAGE}, found: ${releases.join(', ')}`);
      kernelRelease = releases[0]!;
      kernelImage = join(root, 'usr', 'bin', 'linux.uml');
    }
    const bbRoot = join(work, 'busybox');
    await sh('dpkg-deb', ['-x', busyboxDeb, bbRoot]);
    const busybox = join(bbRoot, 'bin', 'busybox');

    // Debian's image package ships no modules.dep; busybox's depmod makes one.
    const modDir = join(modulesBase, kernelRelease);
    if (!existsSync(join(modDir, 'modules.dep'))) {
      await sh(busybox, ['depmod', '-b', modulesBase.replace(/\/lib\/modules$/, ''), kernelRelease]);
    }
    const depText = await readFile(join(modDir, 'modules.dep'), 'utf8');
    const builtin = new Set(
      (await readFile(join(modDir, 'modules.builtin'), 'utf8').catch(() => ''))
        .split('\n').filter((l) => l !== '').map((l) => l.replace(/^.*\//, '').replace(/\.ko.*$/, '').replace(/-/g, '_')),
    );
    const wanted = wantedModules(cfg.backend).filter((m) => !builtin.has(m));
    const load = moduleClosure(parseModulesDep(depText), wanted);

    // The initramfs tree: busybox, /init, the modules in load order and their own modules.dep.
    const initrd = join(work, 'initrd');
    for (const d of ['bin', 'dev', 'proc', 'sys']) await mkdir(join(initrd, d), { recursive: true });
    await copyFile(busybox, join(initrd, 'bin', 'busybox'));
    await chmod(join(initrd, 'bin', 'busybox'), 0o755);
    // The applet links are made here rather than by `busybox --install` at boot: every exec costs in TCG.
    const applets = (await execa(busybox, ['--list'])).stdout.split('\n').filter((a) => /^[a-z0-9_.[-]+$/.test(a) && a !== 'busybox');
    for (const a of applets) await symlink('busybox', join(initrd, 'bin', a));
    await copyFile(join(guestDir(), 'init'), join(initrd, 'init'));
    await chmod(join(initrd, 'init'), 0o755);
    await writeFile(join(initrd, 'modules.load'), load.map((p) => `${p}\n`).join(''));
    const initrdMods = join(initrd, 'lib', 'modules', kernelRelease);
    for (const p of load) {
      await mkdir(join(initrdMods, p, '..'), { recursive: true });
      await copyFile(join(modDir, p), join(initrdMods, p));
    }
    await sh(busybox, ['depmod', '-b', initrd, kernelRelease]);
    const entries = await cpioEntriesFromDir(initrd);
    entries.push({ type: 'chardev', path: 'dev/console', major: 5, minor: 1 });

    await writeFile(join(work, 'initrd.cpio'), cpioNewc(entries));
    if (cfg.backend === 'qemu') await writeFile(join(work, kernelFile(cfg.backend)), await uncompressedKernel(kernelImage));
    else await copyFile(kernelImage, join(work, kernelFile(cfg.backend)));
    await chmod(join(work, kernelFile(cfg.backend)), 0o755);
    const manifest: Manifest = {
      format: FORMAT,
      backend: cfg.backend,
      recipe: await recipeHash(cfg.backend),
      kernelPackage: await debField(kernelDeb, 'Package'),
      kernelVersion: await debField(kernelDeb, 'Version'),
      kernelRelease,
      busyboxVersion: await debField(busyboxDeb, 'Version'),
      modules: load,
      aptListsStamp: stamp,
      preparedAt: new Date().toISOString(),
      prepareMs: 0,
    };
    manifest.prepareMs = Date.now() - t0;
    await rename(join(work, kernelFile(cfg.backend)), join(cfg.cacheDir, kernelFile(cfg.backend)));
    await rename(join(work, 'initrd.cpio'), join(cfg.cacheDir, 'initrd.cpio'));
    await writeFile(join(work, 'manifest.json'), JSON.stringify(manifest, null, 2));
    await rename(join(work, 'manifest.json'), join(cfg.cacheDir, 'manifest.json'));
    await rm(join(cfg.cacheDir, 'vmlinuz'), { force: true }); // the compressed kernel of cache format 1
    log(`test host: prepared ${cfg.cacheDir} (${manifest.kernelPackage} ${manifest.kernelVersion}, ` +
        `${load.length} modules) in ${(manifest.prepareMs / 1000).toFixed(1)} s`);
    return prepared(cfg, manifest);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
