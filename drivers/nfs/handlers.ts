// The `nfs` SR type, laid out exactly as xapi's NFSSR (spec/sm-spec.md §5.4):
// the SR is the directory <serverpath>/<sr_uuid> of an NFS export, soft-mounted
// at <SM_SR_MOUNT_ROOT>/<sr_uuid> with sm's option string. Only how that mount
// comes to exist and goes away lives here; the VDI side is the file-SR core.
//
// A dead or hung server must never hang a call: the server's NFS port is
// checked first with a short TCP connect and an NFS NULL call (NFSTarget), mounts are soft with
// timeo/retrans, and every mount/umount runs under a time limit. Calls for other
// SRs are never blocked: the lock is per SR.
import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { mkdirSync, mkdtempSync, readdirSync, rmdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { isIP, Socket } from 'node:net';
import { join } from 'node:path';
import { env } from '../../src/sdk/env.js';
import { SRError } from '../../src/sdk/errors/sr-error.js';
import { fileSrHandlers, type FileSrType, type SrCall } from '../../src/sdk/file-sr/handlers.js';
import { srDirFor, UUID_RE } from '../../src/sdk/file-sr/paths.js';
import type { StringMap } from '../../src/sdk/protocol/requests.js';
import { escapeXml } from '../../src/sdk/protocol/xmlrpc.js';
import { isMountPoint, umount } from '../../src/sdk/tools/mount.js';
import type { HandlerContext } from '../../src/sdk/driver.js';
import { nfsMount, nfsTransportFor, nfsVersionsOf, normalizeNfsVersion, rpcinfo, showmount, type NfsExport, type NfsMountOptions } from '../../src/sdk/tools/nfs.js';
import { DRIVER_INFO } from './info.js';

export const NFS_PORT = 2049;
/** sm's socket timeout for the reachability check. */
export const CONNECT_TIMEOUT_MS = 5_000;
/** Upper bound for one mount.nfs / umount / showmount run (a hung server must not hang the call). */
export const NFS_TOOL_TIMEOUT_MS = 60_000;

/** The NFS location an SR call names, validated. */
export interface NfsTarget {
  server: string;
  serverpath: string;
  version: string;
  transport: NfsMountOptions['transport'];
  options: string | undefined;
  /** From the SR's other-config; sm's defaults when absent. */
  timeo?: number;
  retrans?: number;
}

/** device-config:server, required (ConfigServerMissing, 102). */
export function serverOf(dc: StringMap): string {
  const s = dc['server']?.trim();
  if (s === undefined || s === '') throw new SRError('ConfigServerMissing', 'device-config:server is required: the NFS server host name or IP address');
  if (s.startsWith('-') || /[\s/,\0]/.test(s)) throw new SRError('ConfigServerMissing', `device-config:server ${JSON.stringify(s)} is not a host name or IP address`);
  return s;
}

/** device-config:nfsversion: empty → 3; 3, 4 or 4.<minor> (NFSVersion, 72). */
export function versionOf(dc: StringMap): string {
  try {
    return normalizeNfsVersion(dc['nfsversion']?.trim());
  } catch {
    throw new SRError('NFSVersion', `device-config:nfsversion ${JSON.stringify(dc['nfsversion'])} is not supported: use 3, 4, 4.0, 4.1 or 4.2`);
  }
}

/** All of device-config checked, serverpath required (ConfigServerPathMissing, 101). */
export function targetOf(dc: StringMap): NfsTarget {
  const server = serverOf(dc);
  const serverpath = dc['serverpath']?.trim();
  if (serverpath === undefined || serverpath === '') {
    throw new SRError('ConfigServerPathMissing', 'device-config:serverpath is required: the exported directory on the NFS server (e.g. /export/sr)');
  }
  if (!serverpath.startsWith('/') || serverpath.includes('\0') || serverpath.split('/').includes('..')) {
    throw new SRError('ConfigServerPathMissing', `device-config:serverpath ${JSON.stringify(serverpath)} must be an absolute path without '..'`);
  }
  const options = dc['options']?.trim();
  if (options !== undefined && /\s/.test(options)) throw new SRError('NFSMount', `device-config:options ${JSON.stringify(options)} must not contain spaces`);
  return {
    server,
    serverpath: serverpath.length > 1 ? serverpath.replace(/\/+$/, '') : serverpath,
    version: versionOf(dc),
    transport: nfsTransportFor(server, dc['useUDP'] === 'true'),
    options: options === '' ? undefined : options,
  };
}

/** device-config:probeversion (any value, as sm tests only for the key): ask the server which versions it serves. */
export const probesVersion = (dc: StringMap): boolean => 'probeversion' in dc;

/** NFS versions the server registered with rpcbind (`rpcinfo -s`), as sm reports them: 3 and 4 only. */
export async function serverNfsVersions(server: string): Promise<string[]> {
  let services;
  try {
    services = await rpcinfo({ server }, { timeoutMs: NFS_TOOL_TIMEOUT_MS });
  } catch (e) {
    throw new SRError('NFSVersion', `asking ${server} which NFS versions it serves (rpcinfo): ${(e as Error).message}`, { cause: e });
  }
  return nfsVersionsOf(services).filter((v) => v === 3 || v === 4).map(String);
}

/**
 * The version to mount with: device-config:nfsversion, unless probeversion is
 * set, in which case sm uses the first version the server serves (lowest first
 * here, so a server with 3 and 4 keeps sm's default of 3).
 */
async function resolveVersion(t: NfsTarget, dc: StringMap): Promise<NfsTarget> {
  if (!probesVersion(dc)) return t;
  const served = await serverNfsVersions(t.server);
  const first = served[0];
  if (first === undefined) throw new SRError('NFSVersion', `${t.server} registers no NFS version 3 or 4 with rpcbind`);
  return { ...t, version: first };
}

/** What the SR record contributes to the mount: nosubdir (sm-config), timeo/retrans (other-config). */
export interface NfsSrSettings {
  /** SR sm-config:nosubdir=true: the SR is the export itself, not <serverpath>/<sr_uuid>. */
  noSubdir: boolean;
  /** SR other-config:nfs-timeout, deciseconds (sm: values below 1 are ignored). */
  timeo?: number;
  /** SR other-config:nfs-retrans (sm: negative values are ignored). */
  retrans?: number;
}

function stringMapOf(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function intSetting(map: Record<string, unknown>, key: string, min: number, ctx: HandlerContext): number | undefined {
  const raw = map[key];
  if (raw === undefined) return undefined;
  const n = typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    ctx.log?.warn(`SR other-config:${key}=${JSON.stringify(raw)} ignored: an integer >= ${min} is expected`);
    return undefined;
  }
  return n;
}

/**
 * The SR's sm-config and other-config as sm reads them: from xapi's SR record when
 * the call names an SR, else from sr_sm_config / sr_other_config in the request.
 */
export async function srSettingsOf(req: { sr_ref?: string; session_ref?: string; raw?: Record<string, unknown> }, ctx: HandlerContext): Promise<NfsSrSettings> {
  const ref = req.sr_ref;
  let smConfig: Record<string, unknown>;
  let otherConfig: Record<string, unknown>;
  if (ref !== undefined && ref !== '' && ref !== 'OpaqueRef:NULL' && req.session_ref !== undefined) {
    const rec = await ctx.xapi.SR.get_record(ref);
    smConfig = stringMapOf(rec['sm_config']);
    otherConfig = stringMapOf(rec['other_config']);
  } else {
    smConfig = stringMapOf(req.raw?.['sr_sm_config']);
    otherConfig = stringMapOf(req.raw?.['sr_other_config']);
  }
  const timeo = intSetting(otherConfig, 'nfs-timeout', 1, ctx);
  const retrans = intSetting(otherConfig, 'nfs-retrans', 0, ctx);
  return {
    noSubdir: smConfig['nosubdir'] === 'true',
    ...(timeo !== undefined ? { timeo } : {}),
    ...(retrans !== undefined ? { retrans } : {}),
  };
}

/** How long a server that accepted the connection may take to answer an NFS NULL call. */
export const NULL_REPLY_TIMEOUT_MS = 10_000;

const NFS_PROGRAM = 100003;

/** An ONC RPC call of procedure 0 (NULL) of the NFS program, AUTH_NONE, in one TCP record (RFC 5531). */
export function nfsNullCall(xid: number, version: number): Buffer {
  const b = Buffer.alloc(44);
  b.writeUInt32BE(0x80000000 + 40, 0); // last fragment, 40 bytes
  b.writeUInt32BE(xid >>> 0, 4);
  b.writeUInt32BE(0, 8); // CALL
  b.writeUInt32BE(2, 12); // RPC version 2
  b.writeUInt32BE(NFS_PROGRAM, 16);
  b.writeUInt32BE(version, 20);
  // procedure 0, credential and verifier AUTH_NONE with empty bodies: all zero
  return b;
}

/** The NFS program version to ping for a mount version ('3', '4', '4.1' ...). */
export const rpcVersionOf = (version: string): number => (version.startsWith('4') ? 4 : 3);

/**
 * sm's check_server_tcp, and one step further: a TCP connection to port 2049
 * within `timeoutMs`, else NFSTarget (108); then an NFS NULL call that must be
 * answered within `replyTimeoutMs`, else NFSTarget too. The connect alone passes
 * for a hung server (its kernel still accepts connections while its NFS service
 * does not answer), which would leave mount.nfs waiting until its own time limit.
 * Any reply counts (a PROG_MISMATCH from a server without that version is still
 * a server that answers). A name that does not resolve → DNSError (140).
 */
export async function checkServerReachable(
  server: string,
  timeoutMs = CONNECT_TIMEOUT_MS,
  port = NFS_PORT,
  rpcVersion = 3,
  replyTimeoutMs = NULL_REPLY_TIMEOUT_MS,
): Promise<void> {
  const bare = server.replace(/^\[|\]$/g, '');
  let address = bare;
  if (isIP(bare) === 0) {
    try {
      address = (await lookup(bare)).address;
    } catch (e) {
      throw new SRError('DNSError', `NFS server name ${bare} does not resolve: ${(e as Error).message}`);
    }
  }
  const xid = randomBytes(4).readUInt32BE(0);
  await new Promise<void>((resolve, reject) => {
    const sock = new Socket();
    let connected = false;
    let timer: NodeJS.Timeout | undefined;
    const settle = (err?: SRError) => {
      if (timer !== undefined) clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve();
    };
    const fail = (why: string) =>
      settle(
        new SRError(
          'NFSTarget',
          connected
            ? `NFS server ${bare} accepts TCP connections on port ${port} but does not answer NFS calls: ${why}`
            : `NFS server ${bare} does not answer on TCP port ${port}: ${why}`,
        ),
      );
    timer = setTimeout(() => fail(`no answer within ${timeoutMs / 1000} s`), timeoutMs);
    sock.once('error', (e) => fail(e.message));
    let got = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      // record mark, xid, msg_type REPLY (1)
      if (got.length < 12) return;
      if (got.readUInt32BE(4) === xid && got.readUInt32BE(8) === 1) settle();
      else fail('the reply to the NULL call is not an RPC reply to it');
    });
    sock.once('end', () => fail('it closed the connection without answering a NULL call'));
    sock.connect({ host: address, port }, () => {
      connected = true;
      clearTimeout(timer);
      timer = setTimeout(() => fail(`no reply to a NULL call within ${replyTimeoutMs / 1000} s (a hung server?)`), replyTimeoutMs);
      sock.write(nfsNullCall(xid, rpcVersion));
    });
  });
}

function mountOptions(t: NfsTarget, remotePath: string, mountPoint: string): NfsMountOptions {
  return {
    server: t.server,
    remotePath,
    mountPoint,
    version: t.version,
    ...(t.transport !== undefined ? { transport: t.transport } : {}),
    ...(t.options !== undefined ? { options: t.options } : {}),
    ...(t.timeo !== undefined ? { timeo: t.timeo } : {}),
    ...(t.retrans !== undefined ? { retrans: t.retrans } : {}),
  };
}

/** Mount `remotePath` of the target at `mountPoint` (made if missing); NFSMount (73) on failure. */
async function mountAt(t: NfsTarget, remotePath: string, mountPoint: string): Promise<void> {
  await checkServerReachable(t.server, CONNECT_TIMEOUT_MS, NFS_PORT, rpcVersionOf(t.version));
  mkdirSync(mountPoint, { recursive: true, mode: 0o755 });
  try {
    await nfsMount(mountOptions(t, remotePath, mountPoint), { timeoutMs: NFS_TOOL_TIMEOUT_MS });
  } catch (e) {
    try {
      rmdirSync(mountPoint);
    } catch {
      /* keep the mount error */
    }
    throw new SRError('NFSMount', `mounting ${t.server}:${remotePath} at ${mountPoint}: ${(e as Error).message}`, { cause: e });
  }
}

/** Unmount and remove the mount point; a hung server gets a forced lazy unmount. NFSUnMount (74). */
async function unmountAt(mountPoint: string): Promise<void> {
  if (await isMountPoint(mountPoint)) {
    try {
      await umount({ target: mountPoint }, { timeoutMs: NFS_TOOL_TIMEOUT_MS });
    } catch (e) {
      const msg = (e as Error).message;
      // Busy means in use: report it. Anything else (server gone): detach it anyway.
      if (/busy/i.test(msg)) throw new SRError('SRInUse', `unmounting ${mountPoint}: ${msg}`, { cause: e });
      try {
        await umount({ target: mountPoint, force: true, lazy: true }, { timeoutMs: NFS_TOOL_TIMEOUT_MS });
      } catch (e2) {
        throw new SRError('NFSUnMount', `unmounting ${mountPoint}: ${(e2 as Error).message}`, { cause: e2 });
      }
    }
  }
  try {
    rmdirSync(mountPoint);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new SRError('NFSUnMount', `removing the mount point ${mountPoint}: ${(e as Error).message}`, { cause: e });
  }
}

/** A scratch mount point for the export itself (create, delete, probe). */
function scratchMountPoint(what: string): string {
  const root = env.srMountRoot();
  mkdirSync(root, { recursive: true });
  return mkdtempSync(join(root, `.nfs-${what}-`));
}

async function withExportMounted<T>(t: NfsTarget, what: string, fn: (dir: string) => T | Promise<T>): Promise<T> {
  const mp = scratchMountPoint(what);
  try {
    await mountAt(t, t.serverpath, mp);
  } catch (e) {
    try {
      rmdirSync(mp);
    } catch {
      /* already gone */
    }
    throw e;
  }
  try {
    return await fn(mp);
  } finally {
    await unmountAt(mp);
  }
}

const subdirOf = (t: NfsTarget, srUuid: string) => `${t.serverpath === '/' ? '' : t.serverpath}/${srUuid}`;
/** Where the SR's files are on the server: the per-SR subdirectory, or the export itself with nosubdir. */
const srPathOf = (t: NfsTarget, srUuid: string, noSubdir: boolean) => (noSubdir ? t.serverpath : subdirOf(t, srUuid));

/** The target of a call on an existing SR: device-config, the probed version, the SR record's settings. */
async function srTargetOf(req: SrCall & { sr_ref?: string; session_ref?: string; raw?: Record<string, unknown> }, ctx: HandlerContext): Promise<{ t: NfsTarget; noSubdir: boolean }> {
  const base = targetOf(req.device_config);
  const { noSubdir, timeo, retrans } = await srSettingsOf(req, ctx);
  const t = await resolveVersion({ ...base, ...(timeo !== undefined ? { timeo } : {}), ...(retrans !== undefined ? { retrans } : {}) }, req.device_config);
  return { t, noSubdir };
}

/** Create and remove a file: the SR must be writable (SharedFileSystemNoWrite, 461). */
function writeTest(dir: string): void {
  const probe = join(dir, `.sm-write-test-${randomBytes(8).toString('hex')}`);
  try {
    writeFileSync(probe, 'x');
    unlinkSync(probe);
  } catch (e) {
    throw new SRError('SharedFileSystemNoWrite', `${dir} is not writable: ${(e as Error).message}`, { cause: e });
  }
}

/** `<nfs-exports>` as sm writes it to stderr when probing without serverpath. */
export function exportsXml(server: string, exports: readonly NfsExport[]): string {
  const lines = ['<?xml version="1.0" ?>', '<nfs-exports>'];
  for (const e of exports) {
    lines.push(
      '\t<Export>',
      `\t\t<Target>${escapeXml(server)}</Target>`,
      `\t\t<Path>${escapeXml(e.path)}</Path>`,
      `\t\t<Accesslist>${escapeXml(e.clients.join(','))}</Accesslist>`,
      '\t</Export>',
    );
  }
  lines.push('</nfs-exports>', '');
  return lines.join('\n');
}

/** sm's scan_srlist: one <SR> per UUID-named directory, then <SupportedVersions> when probeversion was asked for. */
export function srListXml(uuids: readonly string[], supportedVersions?: readonly string[]): string {
  const body = uuids.flatMap((u) => ['\t<SR>', `\t\t<UUID>${escapeXml(u)}</UUID>`, '\t</SR>']);
  if (supportedVersions !== undefined) {
    body.push(
      supportedVersions.length === 0 ? '\t<SupportedVersions/>' : '\t<SupportedVersions>',
      ...supportedVersions.map((v) => `\t\t<Version>${escapeXml(v)}</Version>`),
      ...(supportedVersions.length === 0 ? [] : ['\t</SupportedVersions>']),
    );
  }
  if (body.length === 0) return '<?xml version="1.0" ?>\n<SRlist/>\n';
  return ['<?xml version="1.0" ?>', '<SRlist>', ...body, '</SRlist>', ''].join('\n');
}

export const NFS_SR: FileSrType = {
  srType: 'nfs',
  storageType: 'nfs',
  info: DRIVER_INFO,

  async create(req, ctx) {
    const { t, noSubdir } = await srTargetOf(req, ctx);
    const srDir = srDirFor(req.sr_uuid);
    if (await isMountPoint(srDir)) throw new SRError('NFSAttached', `SR ${req.sr_uuid} is already mounted at ${srDir}`);
    // nosubdir: the export itself is the SR; there is nothing to make, only to check it is writable.
    if (noSubdir) return withExportMounted(t, 'create', (dir) => writeTest(dir));
    await withExportMounted(t, 'create', (dir) => {
      const sub = join(dir, req.sr_uuid);
      try {
        mkdirSync(sub, { mode: 0o755 });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') {
          if (!statSync(sub).isDirectory()) throw new SRError('SRExists', `${t.server}:${subdirOf(t, req.sr_uuid)} exists and is not a directory`);
          const entries = readdirSync(sub);
          if (entries.length > 0) throw new SRError('SRExists', `${t.server}:${subdirOf(t, req.sr_uuid)} already exists and holds ${entries.length} entries`);
          return;
        }
        if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM') {
          throw new SRError('SharedFileSystemNoWrite', `cannot create ${t.server}:${subdirOf(t, req.sr_uuid)}: ${(e as Error).message}`, { cause: e });
        }
        throw new SRError('NFSCreate', `cannot create ${t.server}:${subdirOf(t, req.sr_uuid)}: ${(e as Error).message}`, { cause: e });
      }
    });
  },

  async attach(req: SrCall, srDir: string, ctx) {
    const { t, noSubdir } = await srTargetOf(req, ctx);
    await mountAt(t, srPathOf(t, req.sr_uuid, noSubdir), srDir);
    try {
      writeTest(srDir);
    } catch (e) {
      await unmountAt(srDir).catch(() => undefined);
      throw e;
    }
  },

  async detach(_req: SrCall, srDir: string) {
    await unmountAt(srDir);
  },

  async destroy(req, ctx) {
    const { t, noSubdir } = await srTargetOf(req, ctx);
    // nosubdir: the export is the SR and stays; the core already removed the SR's files.
    if (noSubdir) return;
    await withExportMounted(t, 'delete', (dir) => {
      try {
        rmdirSync(join(dir, req.sr_uuid));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw new SRError('NFSDelete', `removing ${t.server}:${subdirOf(t, req.sr_uuid)}: ${(e as Error).message}`, { cause: e });
        }
      }
    });
  },

  async probe(req, ctx) {
    const server = serverOf(req.device_config);
    versionOf(req.device_config);
    if ((req.device_config['serverpath'] ?? '').trim() === '') {
      await checkServerReachable(server);
      let exports: NfsExport[];
      try {
        exports = await showmount({ server }, { timeoutMs: NFS_TOOL_TIMEOUT_MS });
      } catch (e) {
        throw new SRError('NFSTarget', `listing the exports of ${server}: ${(e as Error).message}`, { cause: e });
      }
      // As sm: the export list goes to stderr, which xapi returns inside the error.
      const xml = exportsXml(server, exports);
      process.stderr.write(xml);
      ctx.log.info(`sr_probe: exports of ${server}:\n${xml}`);
      throw new SRError('ConfigServerPathMissing', `device-config:serverpath is required to probe for SRs; exports of ${server}: ${exports.map((e) => e.path).join(', ') || '(none)'}`);
    }
    const t = await resolveVersion(targetOf(req.device_config), req.device_config);
    const uuids = await withExportMounted(t, 'probe', (dir) =>
      readdirSync(dir, { withFileTypes: true })
        .filter((d) => d.isDirectory() && UUID_RE.test(d.name))
        .map((d) => d.name)
        .sort(),
    );
    return srListXml(uuids, probesVersion(req.device_config) ? await serverNfsVersions(t.server) : undefined);
  },
};

export const handlers = fileSrHandlers(NFS_SR);
