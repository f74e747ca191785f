// The `nfs` driver on this host (no NFS in this kernel): device-config checks
// through smctl, servers that refuse or drop connections failing in bounded
// time, and the exact mount.nfs / showmount argv (mount.nfs runs for real and
// fails here; the NFS round-trip itself is in guest.test.ts).
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkServerReachable, exportsXml, NFS_SR, nfsNullCall, probesVersion, srListXml, srSettingsOf, targetOf } from '../../drivers/nfs/handlers.js';
import type { HandlerContext } from '../../src/sdk/driver.js';
import { SRError } from '../../src/sdk/errors/sr-error.js';
import type { RequestMap } from '../../src/sdk/protocol/requests.js';
import { recordToolCalls } from '../../src/sdk/tools/run.js';
import { assertBuilt, scratch, smctl, type Scratch } from '../file-sr/helpers.js';
import { droppingServer, rpcNullServer } from './helpers.js';

const SR = '3f2e1d0c-9b8a-4c7d-8e6f-5a4b3c2d1e0f';
const ctx = { log: { info: () => undefined, error: () => undefined, warn: () => undefined, debug: () => undefined } } as unknown as HandlerContext;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
beforeAll(() => assertBuilt());

function scr(): Scratch {
  const s = scratch();
  cleanups.push(s.cleanup);
  return s;
}

async function fails(p: Promise<unknown>): Promise<SRError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  if (!(e instanceof SRError)) throw new Error(`expected an SRError, got ${String(e)}`);
  return e;
}

/** A listener on host:2049 that answers NFS NULL calls (the reachability check) and nothing else. */
async function silentServer(host: string): Promise<void> {
  cleanups.push(await rpcNullServer(host));
}

describe('nfs: device-config checks through smctl', () => {
  it('missing server → ConfigServerMissing (102); missing serverpath → ConfigServerPathMissing (101); both name the key', async () => {
    const s = scr();
    const a = await smctl(s, ['sr-create', 'type=nfs', 'name-label=x', 'shared=true', 'device-config:serverpath=/export']);
    expect(a.exitCode).not.toBe(0);
    expect(a.stderr).toContain('SR_BACKEND_FAILURE_102');
    expect(a.stderr).toContain('device-config:server is required');
    const b = await smctl(s, ['sr-create', 'type=nfs', 'name-label=x', 'shared=true', 'device-config:server=127.0.0.1']);
    expect(b.stderr).toContain('SR_BACKEND_FAILURE_101');
    expect(b.stderr).toContain('device-config:serverpath is required');
    const p = await smctl(s, ['sr-probe', 'type=nfs']);
    expect(p.stderr).toContain('SR_BACKEND_FAILURE_102');
  });

  it('nfsversion 5 is refused with NFSVersion (72) naming the value and what is allowed; 3, 4, 4.1, 4.2 are accepted', async () => {
    const s = scr();
    const r = await smctl(s, ['sr-create', 'type=nfs', 'name-label=x', 'device-config:server=127.0.0.1', 'device-config:serverpath=/e', 'device-config:nfsversion=5']);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('SR_BACKEND_FAILURE_72');
    expect(r.stderr).toContain('nfsversion "5" is not supported: use 3, 4, 4.0, 4.1 or 4.2');
    for (const v of ['3', '4', '4.1', '4.2']) expect(targetOf({ server: 's', serverpath: '/e', nfsversion: v }).version).toBe(v);
    expect(targetOf({ server: 's', serverpath: '/e' }).version).toBe('3');
    for (const v of ['2', '5', '4.x', 'v3']) expect((await fails(Promise.resolve().then(() => targetOf({ server: 's', serverpath: '/e', nfsversion: v })))).code).toBe(72);
  });

  it('refuses a relative serverpath, ".." in it, and a server with spaces', () => {
    expect(() => targetOf({ server: 's', serverpath: 'export' })).toThrow(/must be an absolute path/);
    expect(() => targetOf({ server: 's', serverpath: '/a/../b' })).toThrow(/without '\.\.'/);
    expect(() => targetOf({ server: 'a b', serverpath: '/e' })).toThrow(/is not a host name/);
    expect(targetOf({ server: 'fd00::1', serverpath: '/e/' })).toMatchObject({ transport: 'tcp6', serverpath: '/e' });
  });
});

describe('nfs: a server that does not answer fails in bounded time', () => {
  it('nothing listening (connection refused): sr-create fails with NFSTarget (108) at once', async () => {
    const s = scr();
    const t0 = Date.now();
    const r = await smctl(s, ['sr-create', 'type=nfs', 'name-label=x', 'device-config:server=127.0.0.1', 'device-config:serverpath=/export']);
    expect(r.stderr).toContain('SR_BACKEND_FAILURE_108');
    expect(r.stderr).toContain('127.0.0.1 does not answer on TCP port 2049');
    expect(Date.now() - t0).toBeLessThan(15_000);
    // No record and no mount point is left behind.
    expect((await smctl(s, ['sr-list', '--minimal'])).stdout.trim()).toBe('');
    expect(existsSync(s.mountRoot) ? readdirSync(s.mountRoot) : []).toEqual([]);
  });

  it('a server that drops packets: the reachability check gives up after its timeout with NFSTarget', async () => {
    cleanups.push(await droppingServer('127.0.0.3', 20490));
    const t0 = Date.now();
    const e = await fails(checkServerReachable('127.0.0.3', 1500, 20490));
    const took = Date.now() - t0;
    expect(e.code).toBe(108);
    expect(e.detail).toContain('no answer within 1.5 s');
    expect(took).toBeGreaterThanOrEqual(1400);
    expect(took).toBeLessThan(5000);
  });

  it('a server that accepts connections but never answers (hung): NFSTarget once the NULL call goes unanswered; one that answers passes', async () => {
    cleanups.push(await rpcNullServer('127.0.0.6', 20490, false));
    const t0 = Date.now();
    const e = await fails(checkServerReachable('127.0.0.6', 1500, 20490, 3, 1500));
    const took = Date.now() - t0;
    expect(e.code).toBe(108);
    expect(e.detail).toContain('NFS server 127.0.0.6 accepts TCP connections on port 20490 but does not answer NFS calls: no reply to a NULL call within 1.5 s');
    expect(took).toBeGreaterThanOrEqual(1400);
    expect(took).toBeLessThan(5000);
    // The call on the wire (RFC 5531): record mark, xid, CALL, RPC 2, program 100003, version, NULL, AUTH_NONE x2.
    expect(nfsNullCall(0x01020304, 4).toString('hex')).toBe(`80000028 01020304 00000000 00000002 000186a3 00000004 ${'00000000 '.repeat(5)}`.replace(/ /g, ''));
    cleanups.push(await rpcNullServer('127.0.0.6', 20491));
    await checkServerReachable('127.0.0.6', 1500, 20491, 4, 1500);
  });

  it('a server that drops packets on port 2049: sr-create and sr-probe fail with NFSTarget within ~5 s each', async () => {
    cleanups.push(await droppingServer('127.0.0.5'));
    const s = scr();
    for (const args of [
      ['sr-create', 'name-label=x', 'device-config:serverpath=/export'],
      ['sr-probe'],
      ['sr-probe', 'device-config:serverpath=/export'],
    ]) {
      const t0 = Date.now();
      const r = await smctl(s, [...args, 'type=nfs', 'device-config:server=127.0.0.5']);
      const took = Date.now() - t0;
      expect(r.stderr, args.join(' ')).toContain('SR_BACKEND_FAILURE_108');
      expect(r.stderr).toContain('no answer within 5 s');
      expect(took).toBeLessThan(20_000);
    }
  }, 90_000);
});

describe('nfs: exact commands (golden argv)', () => {
  it('create mounts <serverpath> with sm\'s option string; a failed mount is NFSMount (73) and leaves no mount point', async () => {
    await silentServer('127.0.0.4');
    const s = scr();
    process.env['SM_SR_MOUNT_ROOT'] = s.mountRoot;
    mkdirSync(s.mountRoot, { recursive: true });
    const rec = recordToolCalls();
    try {
      const e = await fails(
        NFS_SR.create(
          { sr_uuid: SR, device_config: { server: '127.0.0.4', serverpath: '/export/srs/', nfsversion: '4.1', options: 'nconnect=2' } } as unknown as RequestMap['sr_create'],
          ctx,
        ),
      );
      expect(e.code).toBe(73);
      const argvs = rec.argvs();
      expect(argvs).toHaveLength(1);
      const [argv] = argvs;
      expect(argv!.slice(0, 2)).toEqual(['mount.nfs', '127.0.0.4:/export/srs']);
      expect(argv![2]).toMatch(new RegExp(`^${s.mountRoot}/\\.nfs-create-\\w+$`));
      expect(argv!.slice(3)).toEqual(['-o', 'soft,proto=tcp,vers=4.1,acdirmin=0,acdirmax=0,timeo=200,retrans=4,nconnect=2']);
      expect(readdirSync(s.mountRoot)).toEqual([]);

      rec.calls.length = 0;
      await fails(NFS_SR.attach({ sr_uuid: SR, device_config: { server: '127.0.0.4', serverpath: '/export/srs' } }, `${s.mountRoot}/${SR}`, ctx));
      expect(rec.argvs()).toEqual([
        ['mount.nfs', `127.0.0.4:/export/srs/${SR}`, `${s.mountRoot}/${SR}`, '-o', 'soft,proto=tcp,vers=3,acdirmin=0,acdirmax=0,timeo=200,retrans=4'],
      ]);
      expect(readdirSync(s.mountRoot)).toEqual([]);

      rec.calls.length = 0;
      const p = await fails(NFS_SR.probe({ device_config: { server: '127.0.0.4' } } as unknown as RequestMap['sr_probe'], ctx));
      expect(p.code).toBe(108);
      expect(rec.argvs()).toEqual([['showmount', '--no-headers', '-e', '127.0.0.4']]);

      // The SR's other-config:nfs-timeout / nfs-retrans replace sm's defaults in the option string.
      rec.calls.length = 0;
      await fails(
        NFS_SR.attach(
          { sr_uuid: SR, device_config: { server: '127.0.0.4', serverpath: '/export/srs' }, raw: { sr_other_config: { 'nfs-timeout': '600', 'nfs-retrans': '2' } } } as never,
          `${s.mountRoot}/${SR}`,
          ctx,
        ),
      );
      expect(rec.argvs()).toEqual([
        ['mount.nfs', `127.0.0.4:/export/srs/${SR}`, `${s.mountRoot}/${SR}`, '-o', 'soft,proto=tcp,vers=3,acdirmin=0,acdirmax=0,timeo=600,retrans=2'],
      ]);

      // probeversion: the version comes from the server's rpcbind before anything is mounted.
      rec.calls.length = 0;
      const v = await fails(NFS_SR.attach({ sr_uuid: SR, device_config: { server: '127.0.0.4', serverpath: '/export/srs', probeversion: 'true' } }, `${s.mountRoot}/${SR}`, ctx));
      expect(v.code).toBe(72);
      expect(v.message).toContain('127.0.0.4');
      expect(rec.argvs()).toEqual([['rpcinfo', '-s', '127.0.0.4']]);
      expect(readdirSync(s.mountRoot)).toEqual([]);
    } finally {
      rec.stop();
      delete process.env['SM_SR_MOUNT_ROOT'];
    }
  });

  it('probe output: the export list and the SR list in sm\'s XML', () => {
    expect(exportsXml('srv', [{ path: '/a', clients: ['(everyone)'] }, { path: '/b&c', clients: ['10.0.0.0/8', 'h1'] }])).toBe(
      [
        '<?xml version="1.0" ?>',
        '<nfs-exports>',
        '\t<Export>', '\t\t<Target>srv</Target>', '\t\t<Path>/a</Path>', '\t\t<Accesslist>(everyone)</Accesslist>', '\t</Export>',
        '\t<Export>', '\t\t<Target>srv</Target>', '\t\t<Path>/b&amp;c</Path>', '\t\t<Accesslist>10.0.0.0/8,h1</Accesslist>', '\t</Export>',
        '</nfs-exports>',
        '',
      ].join('\n'),
    );
    expect(srListXml([])).toBe('<?xml version="1.0" ?>\n<SRlist/>\n');
    expect(srListXml([SR])).toBe(`<?xml version="1.0" ?>\n<SRlist>\n\t<SR>\n\t\t<UUID>${SR}</UUID>\n\t</SR>\n</SRlist>\n`);
  });

  it('probe with probeversion: the versions the server serves follow the SR list, as sm\'s scan_srlist writes them', () => {
    expect(srListXml([SR], ['3', '4'])).toBe(
      `<?xml version="1.0" ?>\n<SRlist>\n\t<SR>\n\t\t<UUID>${SR}</UUID>\n\t</SR>\n\t<SupportedVersions>\n\t\t<Version>3</Version>\n\t\t<Version>4</Version>\n\t</SupportedVersions>\n</SRlist>\n`,
    );
    expect(srListXml([], [])).toBe('<?xml version="1.0" ?>\n<SRlist>\n\t<SupportedVersions/>\n</SRlist>\n');
    expect(probesVersion({ server: 's', probeversion: '' })).toBe(true);
    expect(probesVersion({ server: 's' })).toBe(false);
  });

  it('nosubdir and nfs-timeout/nfs-retrans come from the SR record, or from sr_sm_config/sr_other_config without one', async () => {
    const noCtx = {} as never;
    expect(await srSettingsOf({ raw: { sr_sm_config: { nosubdir: 'true' } } }, noCtx)).toEqual({ noSubdir: true });
    expect(await srSettingsOf({ raw: { sr_sm_config: { nosubdir: 'false' } } }, noCtx)).toEqual({ noSubdir: false });
    expect(await srSettingsOf({ raw: {} }, noCtx)).toEqual({ noSubdir: false });
    const warned: string[] = [];
    const asked: string[] = [];
    const record = { sm_config: { nosubdir: 'true' }, other_config: { 'nfs-timeout': '600', 'nfs-retrans': '2' } };
    const ctx = { log: { warn: (m: string) => warned.push(m) }, xapi: { SR: { get_record: async (ref: string) => (asked.push(ref), record) } } } as never;
    expect(await srSettingsOf({ sr_ref: 'OpaqueRef:sr1', session_ref: 'OpaqueRef:s', raw: {} }, ctx)).toEqual({ noSubdir: true, timeo: 600, retrans: 2 });
    expect(asked).toEqual(['OpaqueRef:sr1']);
    // As sm: a timeout below 1 or a negative retrans is logged and the default kept.
    const bad = { log: { warn: (m: string) => warned.push(m) } } as never;
    expect(await srSettingsOf({ raw: { sr_other_config: { 'nfs-timeout': '0', 'nfs-retrans': '-1' } } }, bad)).toEqual({ noSubdir: false });
    expect(warned.join('\n')).toMatch(/nfs-timeout="0" ignored[\s\S]*nfs-retrans="-1" ignored/);
  });
});
