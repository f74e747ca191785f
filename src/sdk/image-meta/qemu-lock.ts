// QEMU's image locking, from outside QEMU: QEMU takes shared OFD locks on
// byte 100+bit for each permission it holds (101 = WRITE) and on 200+bit for
// each permission it refuses to share (201 = it does not share WRITE), and
// tests the other side with F_OFD_GETLK before opening. We do what a QEMU
// writer does: hold read locks on 100, 101 and 201 (so no QEMU can start
// writing meanwhile; `qemu-img info` without -U is refused too), then make
// sure nobody else holds 101 or 201. Node has no fcntl(), so a small python3
// process owns the locks for the duration of the update; they go with its
// file description when it exits (also when we are killed: its stdin closes).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ImageMetaError } from './errors.js';

export const PYTHON = 'python3';

/** The helper: lock, test, print one line, wait for stdin to close. */
export const LOCK_HELPER = [
  'import fcntl, os, struct, sys',
  'fd = os.open(sys.argv[1], os.O_RDONLY)',
  'def lk(cmd, typ, off):',
  "    return struct.unpack('hhqqi4x', fcntl.fcntl(fd, cmd, struct.pack('hhqqi4x', typ, 0, off, 1, 0)))",
  'for off in (100, 101, 201):',
  '    try:',
  '        lk(fcntl.F_OFD_SETLK, fcntl.F_RDLCK, off)',
  '    except OSError:',
  "        print('busy', off, flush=True)",
  '        sys.exit(3)',
  'for off in (101, 201):',
  '    if lk(fcntl.F_OFD_GETLK, fcntl.F_WRLCK, off)[0] != fcntl.F_UNLCK:',
  "        print('busy', off, flush=True)",
  '        sys.exit(3)',
  "print('locked', flush=True)",
  'sys.stdin.read()',
].join('\n');

export function lockArgv(path: string): string[] {
  return [PYTHON, '-c', LOCK_HELPER, path];
}

const WHO: Record<string, string> = {
  '101': 'a QEMU process (a running VM, qemu-io, qemu-img commit/resize/...) has it open for writing',
  '201': 'a QEMU process has it open and does not allow writers (e.g. `qemu-img info` without -U)',
  '100': 'another process holds a conflicting lock',
};

/**
 * Run `fn` while holding QEMU's write-side locks on `path`. Refused (reason
 * `busy`) while any QEMU holds the image for writing: QEMU keeps a copy of
 * the header and would write it back over ours.
 */
export async function withQemuWriteLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const argv = lockArgv(path);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
  const spawnFailed = new Promise<never>((_, rej) => child.on('error', (e) => rej(new ImageMetaError('io', `cannot run ${PYTHON} to take QEMU's image locks on ${path}: ${e.message}`, { cause: e }))));
  const lines = createInterface({ input: child.stdout });
  const first = new Promise<string | null>((res) => {
    lines.once('line', (l) => res(l));
    lines.once('close', () => res(null));
  });
  const line = await Promise.race([first, spawnFailed]);
  if (line !== 'locked') {
    child.stdin.end();
    const code = await exited;
    const m = /^busy (\d+)/.exec(line ?? '');
    if (m) throw new ImageMetaError('busy', `${path} is in use: ${WHO[m[1]!] ?? 'locked'} (QEMU lock byte ${m[1]}); change its machine data when no QEMU process has it open`);
    throw new ImageMetaError('io', `taking QEMU's image locks on ${path} failed (exit ${code}): ${stderr.trim() || 'no output'}`);
  }
  try {
    return await fn();
  } finally {
    child.stdin.end();
    await exited;
  }
}
