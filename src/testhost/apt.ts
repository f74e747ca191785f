// Fetching Debian packages without installing them: the guest kernel and
// busybox are unpacked into the test-host cache, never onto the host.
import { execa } from 'execa';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

const APT_LISTS = '/var/lib/apt/lists';

/** argv that names the kernel image package linux-image-amd64 currently points to. */
export const KERNEL_META_PACKAGE = 'linux-image-amd64';
export const kernelDependsArgv = (): string[] => ['apt-cache', 'depends', KERNEL_META_PACKAGE];
export const downloadArgv = (packages: readonly string[]): string[] => ['apt-get', 'download', '-q', ...packages];
export const aptUpdateArgv = (): string[] => ['apt-get', 'update', '-q'];

/** The versioned image package (linux-image-6.1.0-56-amd64) in `apt-cache depends` output, if any. */
export function parseKernelDepends(output: string): string | undefined {
  const m = /^\s*Depends:\s*(linux-image-[0-9][^\s]*)\s*$/m.exec(output);
  return m?.[1];
}

/** Newest mtime (ms) of apt's package lists: when it moves, a new kernel may be out. */
export async function aptListsStamp(): Promise<number> {
  let newest = 0;
  let names: string[];
  try {
    names = await readdir(APT_LISTS);
  } catch {
    return 0;
  }
  for (const n of names) {
    if (!n.includes('Packages')) continue;
    const st = await stat(join(APT_LISTS, n)).catch(() => undefined);
    if (st && st.mtimeMs > newest) newest = st.mtimeMs;
  }
  return newest;
}

async function run(argv: string[], cwd?: string): Promise<{ ok: boolean; out: string }> {
  const [file, ...args] = argv as [string, ...string[]];
  const r = await execa(file, args, { cwd, reject: false, all: true, stdin: 'ignore' });
  return { ok: r.exitCode === 0, out: r.all ?? '' };
}

let updatedOnce = false;

/** Runs `apt-get update` at most once per process: stale or missing lists are the usual cause of a failed look-up. */
async function updateOnce(why: string): Promise<void> {
  if (updatedOnce) throw new Error(why);
  updatedOnce = true;
  const r = await run(aptUpdateArgv());
  if (!r.ok) throw new Error(`${why}; apt-get update failed too:\n${r.out}`);
}

/** The kernel image package to boot (e.g. linux-image-6.1.0-56-amd64). */
export async function resolveKernelPackage(): Promise<string> {
  for (;;) {
    const r = await run(kernelDependsArgv());
    const pkg = r.ok ? parseKernelDepends(r.out) : undefined;
    if (pkg !== undefined) return pkg;
    await updateOnce(`cannot find the kernel package: \`${kernelDependsArgv().join(' ')}\` printed:\n${r.out}`);
  }
}

/** The candidate version apt would download for `pkg` (for user-mode-linux, which has no versioned name). */
export async function candidateVersion(pkg: string): Promise<string> {
  for (;;) {
    const r = await run(['apt-cache', 'policy', pkg]);
    const m = /^\s*Candidate:\s*(\S+)\s*$/m.exec(r.out);
    if (r.ok && m?.[1] !== undefined && m[1] !== '(none)') return m[1];
    await updateOnce(`apt has no candidate for ${pkg}:\n${r.out}`);
  }
}

/** Downloads the .deb files of `packages` into `dir`; returns their paths in the same order. */
export async function downloadDebs(packages: readonly string[], dir: string): Promise<string[]> {
  for (;;) {
    const r = await run(downloadArgv(packages), dir);
    if (r.ok) break;
    await updateOnce(`\`${downloadArgv(packages).join(' ')}\` failed:\n${r.out}`);
  }
  const files = await readdir(dir);
  return packages.map((p) => {
    const f = files.find((n) => n.startsWith(`${p}_`) && n.endsWith('.deb'));
    if (f === undefined) throw new Error(`apt-get download reported success but no ${p}_*.deb is in ${dir}`);
    return join(dir, f);
  });
}

/** A field of a .deb's control file (Package, Version). */
export async function debField(deb: string, field: string): Promise<string> {
  const r = await execa('dpkg-deb', ['-f', deb, field]);
  return r.stdout.trim();
}
