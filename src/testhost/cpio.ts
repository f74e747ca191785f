// A writer for the cpio "newc" format the kernel unpacks as an initramfs, so that
// building one needs no cpio binary on the host (Debian 12 does not install it).
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Buffer; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'chardev'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

const hex8 = (n: number): string => n.toString(16).padStart(8, '0');
const pad4 = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);

function record(ino: number, name: string, mode: number, data: Buffer, rdev: [number, number] = [0, 0]): Buffer[] {
  const nameBuf = Buffer.from(`${name}\0`);
  const header =
    '070701' +
    [ino, mode, 0, 0, mode & S_IFDIR ? 2 : 1, 0, data.length, 0, 0, rdev[0], rdev[1], nameBuf.length, 0]
      .map(hex8)
      .join('');
  const head = Buffer.concat([Buffer.from(header, 'ascii'), nameBuf]);
  return [head, pad4(head.length), data, pad4(data.length)];
}

/** The archive bytes (uncompressed) for `entries`, in the order given, plus the trailer. */
export function cpioNewc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, '');
    if (name === '') throw new Error('cpio entry with an empty path');
    switch (e.type) {
      case 'dir':
        parts.push(...record(ino++, name, S_IFDIR | (e.mode ?? 0o755), Buffer.alloc(0)));
        break;
      case 'file':
        parts.push(...record(ino++, name, S_IFREG | (e.mode ?? 0o644), e.data));
        break;
      case 'symlink':
        parts.push(...record(ino++, name, S_IFLNK | 0o777, Buffer.from(e.target)));
        break;
      case 'chardev':
        parts.push(...record(ino++, name, S_IFCHR | (e.mode ?? 0o600), Buffer.alloc(0), [e.major, e.minor]));
        break;
    }
  }
  parts.push(...record(0, 'TRAILER!!!', 0, Buffer.alloc(0)));
  return Buffer.concat(parts);
}

/** Entries for everything under `root` (directories before their contents, sorted). */
export async function cpioEntriesFromDir(root: string, prefix = ''): Promise<CpioEntry[]> {
  const out: CpioEntry[] = [];
  const names = (await readdir(root)).sort();
  for (const n of names) {
    const full = join(root, n);
    const path = prefix === '' ? n : `${prefix}/${n}`;
    const st = await lstat(full);
    if (st.isSymbolicLink()) out.push({ type: 'symlink', path, target: await readlink(full) });
    else if (st.isDirectory()) {
      out.push({ type: 'dir', path, mode: st.mode & 0o7777 });
      out.push(...(await cpioEntriesFromDir(full, path)));
    } else if (st.isFile()) out.push({ type: 'file', path, data: await readFile(full), mode: st.mode & 0o7777 });
    else throw new Error(`cannot put ${full} in an initramfs: not a file, directory or symlink`);
  }
  return out;
}
