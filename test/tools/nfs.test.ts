// NFS client wrappers. The kernel here cannot mount NFS, so mount.nfs is covered by
// golden argv (golden-argv.test.ts); the parsers by captured outputs; and rpcinfo /
// showmount also run for real against a local rpcbind.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as nfs from '../../src/sdk/tools/nfs.js';
import { ToolError, type ToolOutput } from '../../src/sdk/tools/run.js';

const dir = join(import.meta.dirname, '..', 'fixtures', 'tools', 'nfs');
const captured = (name: string): ToolOutput => ({ command: ['captured', name], exitCode: 0, stdout: readFileSync(join(dir, name), 'utf8'), stderr: '' });

describe('nfs option rules (sm nfs.py)', () => {
  it('normalizes the NFS version like sm: empty → 3; 3, 4, 4.x allowed', () => {
    expect(['', '3', '4', '4.1'].map((v) => nfs.normalizeNfsVersion(v))).toEqual(['3', '3', '4', '4.1']);
    expect(nfs.normalizeNfsVersion(undefined)).toBe('3');
    for (const bad of ['2', '5', '4.x', 'v3']) expect(() => nfs.normalizeNfsVersion(bad)).toThrow(`NFS version "${bad}" is not allowed`);
  });

  it('picks tcp6/udp6 for IPv6 literals, tcp/udp otherwise', () => {
    expect(nfs.nfsTransportFor('10.0.0.1')).toBe('tcp');
    expect(nfs.nfsTransportFor('fd00::1')).toBe('tcp6');
    expect(nfs.nfsTransportFor('[fd00::1]', true)).toBe('udp6');
    expect(nfs.nfsTransportFor('filer.example.com', true)).toBe('udp');
  });

  it('refuses server names that would change the meaning of the argv', () => {
    for (const s of ['', '-o', 'a b', 'srv/x', 'a,b']) {
      expect(() => nfs.nfsMountArgv({ server: s, remotePath: '/e', mountPoint: '/m' })).toThrow(/is not a host name or address/);
    }
  });
});

describe('showmount / rpcinfo parsers', () => {
  it('parses showmount export lines with access lists', () => {
    expect(nfs.parseShowmount(captured('showmount-knfsd.txt'))).toEqual([
      { path: '/export/sr', clients: ['10.0.0.0/8', '192.168.1.5'] },
      { path: '/export/iso', clients: ['*'] },
      { path: '/srv/with-acl', clients: ['host-a', 'host-b', '10.1.1.0/24'] },
    ]);
    expect(nfs.parseShowmount(captured('showmount-ganesha.txt'))).toEqual([{ path: '/var/tmp/ganesha/export', clients: ['(everyone)'] }]);
  });

  it('parses rpcinfo -s and finds the NFS versions', () => {
    const services = nfs.parseRpcinfo(captured('rpcinfo-s-nfs-server.txt'));
    expect(services).toHaveLength(6);
    expect(services[2]).toEqual({ program: 100003, versions: [4, 3], netids: ['tcp6', 'tcp'], service: 'nfs', owner: 'superuser' });
    expect(nfs.nfsVersionsOf(services)).toEqual([3, 4]);
    expect(nfs.nfsVersionsOf(nfs.parseRpcinfo(captured('rpcinfo-s-rpcbind-only.txt')))).toEqual([]);
  });

  it('refuses lines it does not understand', () => {
    const out = { command: ['x'], exitCode: 0, stdout: 'program 1 2\nnot a line\n', stderr: '' };
    expect(() => nfs.parseRpcinfo(out)).toThrow(/rpcinfo line "not a line"/);
    expect(() => nfs.parseShowmount({ ...out, stdout: 'Export list for x:\n' })).toThrow(ToolError);
  });
});

describe('rpcinfo / showmount (real, local rpcbind)', () => {
  let rpcbind: ResultPromise | undefined;

  beforeAll(async () => {
    // Start our own rpcbind only when none is listening; stop only the one we started.
    const probe = await execa('rpcinfo', ['-s', '127.0.0.1'], { reject: false });
    if (probe.exitCode !== 0) {
      rpcbind = execa('rpcbind', ['-f'], { reject: false, stdio: 'ignore' });
      for (let i = 0; i < 50; i++) {
        if ((await execa('rpcinfo', ['-s', '127.0.0.1'], { reject: false })).exitCode === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });

  afterAll(async () => {
    if (rpcbind?.pid !== undefined) {
      rpcbind.kill('SIGTERM');
      await rpcbind;
    }
  });

  it('rpcinfo lists the portmapper of a local rpcbind', async () => {
    const services = await nfs.rpcinfo({ server: '127.0.0.1' });
    expect(services.find((s) => s.program === 100000)).toMatchObject({ service: 'portmapper', versions: [2, 3, 4] });
  });

  it('showmount against a host without mountd raises ToolError naming the command', async () => {
    // Only meaningful when no NFS server registered mountd here.
    const services = await nfs.rpcinfo({ server: '127.0.0.1' });
    expect(services.some((s) => s.program === 100005)).toBe(false);
    const err = (await nfs.showmount({ server: '127.0.0.1' }).catch((e: unknown) => e)) as ToolError;
    expect(err).toBeInstanceOf(ToolError);
    expect(err.command).toEqual(['showmount', '--no-headers', '-e', '127.0.0.1']);
    expect(err.exitCode).toBe(1);
    expect(err.stderr).toContain('Program not registered');
  });
});
