// The harness's parts that need no boot (module closure, initramfs writer, exact
// command lines, settings), plus the guard: a test host that cannot boot fails loudly.
import { execa } from 'execa';
import { mkdtemp, readFile, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { aptUpdateArgv, downloadArgv, kernelDependsArgv, parseKernelDepends, resolveKernelPackage } from '../../src/testhost/apt.js';
import { qemuArgv, umlArgv } from '../../src/testhost/backend.js';
import { testHostConfig } from '../../src/testhost/config.js';
import { PACKAGE_ROOT } from '../../src/sdk/env.js';
import { cpioNewc } from '../../src/testhost/cpio.js';
import { moduleClosure, moduleName, parseModulesDep } from '../../src/testhost/modules-dep.js';
import { hasPvhNote, type PreparedTestHost } from '../../src/testhost/prepare.js';
import {
  assertStepPassed,
  loopPvScript,
  nfsServerScript,
  runInTestHost,
  runStepsInTestHost,
  TestHostError,
} from '../../src/testhost/index.js';

const fixture = (name: string): Promise<string> => readFile(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
const tmpDirs: string[] = [];
afterEach(async () => {
  for (const d of tmpDirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('module closure from modules.dep', () => {
  it('orders each module after everything it needs', async () => {
    const dep = parseModulesDep(await fixture('modules.dep'));
    const order = moduleClosure(dep, ['9pnet_virtio', '9p', 'dm_thin_pool']);
    expect(order).toEqual([
      'kernel/net/9p/9pnet.ko',
      'kernel/drivers/virtio/virtio_ring.ko',
      'kernel/drivers/virtio/virtio.ko',
      'kernel/net/9p/9pnet_virtio.ko',
      'kernel/fs/netfs/netfs.ko',
      'kernel/fs/fscache/fscache.ko',
      'kernel/fs/9p/9p.ko',
      'kernel/drivers/md/dm-bufio.ko',
      'kernel/lib/libcrc32c.ko',
      'kernel/drivers/md/persistent-data/dm-persistent-data.ko',
      'kernel/drivers/md/dm-bio-prison.ko',
      'kernel/drivers/md/dm-mod.ko',
      'kernel/drivers/md/dm-thin-pool.ko',
    ]);
  });

  it('names modules the kernel does not have', async () => {
    const dep = parseModulesDep(await fixture('modules.dep'));
    expect(() => moduleClosure(dep, ['dm_mod', 'nfsd', 'zfs'])).toThrow('kernel modules not found in modules.dep: nfsd, zfs');
  });

  it('spells names as the kernel does', () => {
    expect(moduleName('kernel/drivers/md/dm-thin-pool.ko')).toBe('dm_thin_pool');
    expect(moduleName('kernel/fs/nfs/nfsv4.ko.xz')).toBe('nfsv4');
  });
});

describe('uncompressed kernel', () => {
  it('recognises the PVH entry note QEMU needs to boot a vmlinux', () => {
    const note = (type: number): Buffer => {
      const b = Buffer.alloc(24);
      b.writeUInt32LE(4, 0); // namesz
      b.writeUInt32LE(4, 4); // descsz
      b.writeUInt32LE(type, 8);
      b.write('Xen\0', 12, 'latin1');
      return Buffer.concat([Buffer.from('\x7fELF padding'), b]);
    };
    expect(hasPvhNote(note(18))).toBe(true);
    expect(hasPvhNote(note(6))).toBe(false);
    expect(hasPvhNote(Buffer.from('\x7fELF no notes at all'))).toBe(false);
  });
});

describe('initramfs (cpio newc) writer', () => {
  it('writes an archive busybox cpio extracts with contents, modes and links intact', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'th-cpio-'));
    tmpDirs.push(dir);
    const archive = cpioNewc([
      { type: 'dir', path: 'bin' },
      { type: 'file', path: 'bin/tool', data: Buffer.from('#!/bin/sh\necho hi\n'), mode: 0o755 },
      { type: 'file', path: 'odd-length', data: Buffer.from('abcde') },
      { type: 'symlink', path: 'bin/alias', target: 'tool' },
      { type: 'chardev', path: 'console', major: 5, minor: 1 },
    ]);
    const listing = await execa('busybox', ['cpio', '-t'], { input: archive });
    expect(listing.stdout.split('\n')).toEqual(['bin', 'bin/tool', 'odd-length', 'bin/alias', 'console']);
    await execa('busybox', ['cpio', '-i', '-d', 'bin', 'bin/tool', 'odd-length', 'bin/alias'], { input: archive, cwd: dir });
    expect(await readFile(join(dir, 'bin/tool'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
    expect((await stat(join(dir, 'bin/tool'))).mode & 0o777).toBe(0o755);
    expect(await readFile(join(dir, 'odd-length'), 'utf8')).toBe('abcde');
    expect(await readlink(join(dir, 'bin/alias'))).toBe('tool');
  });
});

describe('command lines (golden argv)', () => {
  const host = (kernel: string): PreparedTestHost => ({
    backend: 'qemu',
    dir: '/var/tmp/th',
    kernel,
    initrd: '/var/tmp/th/initrd.cpio',
    manifest: {} as PreparedTestHost['manifest'],
  });
  const cfg = testHostConfig({ memMiB: 3072, cpus: 2, rwSize: '1g' }, {});

  it('boots QEMU/TCG with the host root read-only and the job directory writable', async () => {
    const argv = qemuArgv(host('/var/tmp/th/vmlinux'), cfg, { ioDir: '/tmp/run,1/io', consoleLog: '/tmp/run,1/console.log' });
    expect(argv).toEqual(JSON.parse(await fixture('qemu-argv.json')));
  });

  it('boots user-mode-linux with the job directory as a parameter', async () => {
    const argv = umlArgv(host('/var/tmp/th/linux.uml'), { ...cfg, backend: 'uml' }, { ioDir: '/tmp/run1/io', consoleLog: '/tmp/run1/console.log' });
    expect(argv).toEqual(JSON.parse(await fixture('uml-argv.json')));
  });

  it('refuses paths QEMU or the kernel command line would split', () => {
    expect(() => qemuArgv(host('/var/tmp/th/vmlinux'), cfg, { ioDir: '/tmp/a b', consoleLog: '/tmp/c' })).toThrow(
      'test-host path must not contain white space: "/tmp/a b"',
    );
  });

  it('asks apt for the kernel and downloads without installing', () => {
    expect(kernelDependsArgv()).toEqual(['apt-cache', 'depends', 'linux-image-amd64']);
    expect(downloadArgv(['linux-image-6.1.0-56-amd64', 'busybox-static'])).toEqual([
      'apt-get', 'download', '-q', 'linux-image-6.1.0-56-amd64', 'busybox-static',
    ]);
    expect(aptUpdateArgv()).toEqual(['apt-get', 'update', '-q']);
  });

  it('finds the versioned kernel package in apt-cache output, and apt names one here', async () => {
    expect(parseKernelDepends('linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n')).toBe('linux-image-6.1.0-56-amd64');
    expect(parseKernelDepends('linux-image-amd64\n')).toBeUndefined();
    expect(await resolveKernelPackage()).toMatch(/^linux-image-\d+\.\d+\.\d+-\d+-amd64$/);
  });
});

describe('settings from the environment', () => {
  it('defaults to user-mode-linux with a per-backend cache', () => {
    expect(testHostConfig({}, {})).toEqual({
      backend: 'uml',
      cacheDir: '/var/tmp/smapi-testhost/uml',
      memMiB: 2048,
      cpus: 2,
      timeoutMs: 600_000,
      rwSize: '4g',
      keepRunDir: false,
    });
    expect(testHostConfig({}, { SM_TESTHOST_BACKEND: 'qemu' }).cacheDir).toBe('/var/tmp/smapi-testhost/qemu');
    expect(testHostConfig({}, { SM_TESTHOST_DIR: '/srv/cache', SM_TESTHOST_TIMEOUT: '30' })).toMatchObject({
      cacheDir: '/srv/cache',
      timeoutMs: 30_000,
    });
  });

  it('names a bad value and what is allowed', () => {
    expect(() => testHostConfig({}, { SM_TESTHOST_BACKEND: 'kvm' })).toThrow('SM_TESTHOST_BACKEND=kvm is not one of: qemu, uml');
    expect(() => testHostConfig({}, { SM_TESTHOST_MEM: 'lots' })).toThrow('SM_TESTHOST_MEM (MiB) must be a whole number');
    expect(() => testHostConfig({}, { SM_TESTHOST_RWSIZE: '4 gigs' })).toThrow('SM_TESTHOST_RWSIZE must be a tmpfs size');
  });
});

describe('inputs checked before booting', () => {
  it('rejects duplicate step names and helper arguments that would need quoting', async () => {
    await expect(runStepsInTestHost([{ name: 'a', script: 'true' }, { name: 'a', script: 'true' }])).rejects.toThrow(
      'step name "a" is used twice',
    );
    expect(() => nfsServerScript(['/srv/my export'])).toThrow('guest paths must be absolute');
    expect(() => loopPvScript('pv;reboot', 64)).toThrow('PV names use letters, digits');
    expect(loopPvScript('pv0', 64)).toBe('th_loop_pv pv0 64');
    expect(nfsServerScript(['/srv/a', '/srv/b'])).toBe('th_nfs_server_start /srv/a /srv/b');
  });

  it('rejects a relative working directory and environment names bash cannot export', async () => {
    await expect(runInTestHost(['true'], { cwd: 'rel/dir' })).rejects.toThrow('cwd must be an absolute path, got "rel/dir"');
    await expect(runInTestHost(['true'], { env: { 'A-B': '1' } })).rejects.toThrow(
      'test-host job: environment variable names are letters, digits and _',
    );
  });
});

describe('step options (one boot)', () => {
  it('kills a step at stepTimeoutMs (124) and skips the rest after a failure with stopOnFailure', async () => {
    const run = await runStepsInTestHost(
      [
        { name: 'quick', script: 'echo quick' },
        { name: 'hangs', script: 'echo started; sleep 600' },
        { name: 'after', script: 'echo after' },
      ],
      { stopOnFailure: true, stepTimeoutMs: 3000 },
    );
    expect(run.step('quick')).toMatchObject({ ran: true, exitCode: 0, stdout: 'quick\n' });
    const hung = run.step('hangs');
    expect(hung).toMatchObject({ ran: true, exitCode: 124, stdout: 'started\n' });
    expect(hung.durationMs).toBeGreaterThanOrEqual(3000);
    expect(hung.durationMs).toBeLessThan(60_000);
    expect(run.step('after')).toMatchObject({ ran: false, exitCode: undefined, stdout: '' });
    expect(() => assertStepPassed(run, 'after')).toThrow('did not run (an earlier step failed and stopOnFailure is set)');
    expect(() => run.step('missing')).toThrow('no step named "missing"; steps: quick, hangs, after');
  }, 900_000);
});

describe('guard: a test host that cannot boot fails the test', () => {
  it('reports a guest killed at its timeout, with the console, instead of an exit status', async () => {
    const err = await runInTestHost(['true'], { config: { timeoutMs: 2000 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TestHostError);
    expect((err as Error).message).toMatch(/did not finish within 2 s \(SM_TESTHOST_TIMEOUT\) and was killed/);
  });

  it('a caller stopped with SIGTERM takes its guest down with it: no emulator process outlives it', async () => {
    // A process that boots a guest running `sleep 600` (the compiled harness, as bin/ and CI use it).
    const runner = execa(process.execPath, ['--input-type=module', '-e', `
      const m = await import(${JSON.stringify(join(PACKAGE_ROOT, 'dist', 'src', 'testhost', 'index.js'))});
      await m.runInTestHost(['sleep', '600'], { config: { timeoutMs: 600000 } });
    `], { reject: false });
    const groupOfGuest = async (): Promise<number | undefined> => {
      const ps = (await execa('ps', ['-eo', 'pid=,ppid=,pgid=,comm='])).stdout;
      for (const line of ps.split('\n')) {
        const [pid, ppid, pgid] = line.trim().split(/\s+/).map(Number);
        if (ppid === runner.pid && pid === pgid) return pgid;
      }
      return undefined;
    };
    // Live members only: killed ones stay zombies until init reaps them.
    const inGroup = async (pgid: number): Promise<number> =>
      (await execa('ps', ['-eo', 'pgid=,stat='])).stdout
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter(([g, st]) => Number(g) === pgid && !String(st).startsWith('Z')).length;
    let pgid: number | undefined;
    for (let i = 0; i < 300 && pgid === undefined; i++) {
      await new Promise((r) => setTimeout(r, 200));
      pgid = await groupOfGuest();
    }
    expect(pgid, 'the guest was started in its own process group').toBeDefined();
    await new Promise((r) => setTimeout(r, 2000));
    expect(await inGroup(pgid!)).toBeGreaterThan(0);
    runner.kill('SIGTERM');
    const r = await runner;
    expect(r.signal).toBe('SIGTERM');
    let left = await inGroup(pgid!);
    for (let i = 0; i < 50 && left > 0; i++) {
      await new Promise((res) => setTimeout(res, 200));
      left = await inGroup(pgid!);
    }
    expect(left).toBe(0);
  }, 120_000);

  it('reports a cache directory it cannot create', async () => {
    const err = await runInTestHost(['true'], { config: { cacheDir: '/dev/null/testhost' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TestHostError);
    expect((err as Error).message).toMatch(/^test host: cannot boot: .*\/dev\/null\/testhost/);
  });
});
