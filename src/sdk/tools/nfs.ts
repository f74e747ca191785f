// NFS client commands exactly as sm's nfs.py builds them (spec/sm-spec.md §5.4):
//   mount.nfs <server>:<path> <mountpoint> -o soft,proto=<t>,vers=<v>,acdirmin=0,acdirmax=0,timeo=<n>,retrans=<n>[,<options>]
//   showmount --no-headers -e <server>
//   rpcinfo -s <server>
import { isIP } from 'node:net';
import { intArg, pathArg } from './args.js';
import { outputError, runTool, type RunOptions, type ToolOutput } from './run.js';

export type NfsTransport = 'tcp' | 'tcp6' | 'udp' | 'udp6';
const TRANSPORTS: readonly NfsTransport[] = ['tcp', 'tcp6', 'udp', 'udp6'];

export const NFS_DEFAULT_TIMEO = 200;
export const NFS_DEFAULT_RETRANS = 4;

/** sm's rule: empty → '3'; otherwise '3' or anything starting with '4' ('4', '4.1', …). */
export function normalizeNfsVersion(v: string | undefined): string {
  if (v === undefined || v === '') return '3';
  if (v === '3' || /^4(\.\d+)?$/.test(v)) return v;
  throw new TypeError(`NFS version ${JSON.stringify(v)} is not allowed: use 3, 4, or 4.<minor>`);
}

/** tcp6/udp6 for an IPv6 literal, else tcp/udp (sm also resolves names; callers that did so pass transport). */
export function nfsTransportFor(server: string, useUdp = false): NfsTransport {
  const v6 = isIP(server.replace(/^\[|\]$/g, '')) === 6;
  return `${useUdp ? 'udp' : 'tcp'}${v6 ? '6' : ''}` as NfsTransport;
}

export interface NfsMountOptions {
  server: string;
  /** Export path on the server (absolute). */
  remotePath: string;
  mountPoint: string;
  /** Default: from the server address (nfsTransportFor). */
  transport?: NfsTransport;
  /** Default '3'. */
  version?: string;
  /** Deciseconds; default 200. */
  timeo?: number;
  /** Default 4. */
  retrans?: number;
  /** Extra options appended verbatim (device-config `options`), comma-separated. */
  options?: string;
}

function serverArg(server: string): string {
  const bare = server.replace(/^\[|\]$/g, '');
  if (bare === '' || bare.startsWith('-') || /[\s/,]/.test(bare)) throw new TypeError(`NFS server ${JSON.stringify(server)} is not a host name or address`);
  return isIP(bare) === 6 ? `[${bare}]` : bare;
}

export function nfsMountOptionString(o: NfsMountOptions): string {
  const transport = o.transport ?? nfsTransportFor(o.server);
  if (!TRANSPORTS.includes(transport)) throw new TypeError(`NFS transport ${JSON.stringify(transport)} is not one of ${TRANSPORTS.join(', ')}`);
  let s = `soft,proto=${transport},vers=${normalizeNfsVersion(o.version)},acdirmin=0,acdirmax=0`;
  s += `,timeo=${intArg('NFS timeo (deciseconds)', o.timeo ?? NFS_DEFAULT_TIMEO, { min: 1 })}`;
  s += `,retrans=${intArg('NFS retrans', o.retrans ?? NFS_DEFAULT_RETRANS)}`;
  if (o.options !== undefined && o.options !== '') {
    if (/\s/.test(o.options)) throw new TypeError(`NFS mount options ${JSON.stringify(o.options)} must not contain spaces`);
    s += `,${o.options}`;
  }
  return s;
}

export function nfsMountArgv(o: NfsMountOptions): string[] {
  if (!o.remotePath.startsWith('/')) throw new TypeError(`NFS remote path ${JSON.stringify(o.remotePath)} must be absolute`);
  return ['mount.nfs', `${serverArg(o.server)}:${o.remotePath}`, pathArg('NFS mount point', o.mountPoint), '-o', nfsMountOptionString(o)];
}

export async function nfsMount(o: NfsMountOptions, run?: RunOptions): Promise<void> {
  await runTool(nfsMountArgv(o), run);
}

// ---------------------------------------------------------------- showmount

export interface NfsExport {
  path: string;
  /** Access list, e.g. ['(everyone)'] or ['10.0.0.0/8', 'host1']. */
  clients: string[];
}

export function showmountArgv(o: { server: string }): string[] {
  return ['showmount', '--no-headers', '-e', serverArg(o.server).replace(/^\[|\]$/g, '')];
}

/** `showmount --no-headers -e` lines: `<path> <client>[,<client>...]` (columns padded with spaces). */
export function parseShowmount(out: ToolOutput): NfsExport[] {
  const exports: NfsExport[] = [];
  for (const line of out.stdout.split('\n')) {
    const t = line.trim();
    if (t === '') continue;
    const [path, ...rest] = t.split(/\s+/);
    if (!path || !path.startsWith('/')) throw outputError(out, `export line ${JSON.stringify(line)}`);
    exports.push({ path, clients: rest.join('').split(',').filter(Boolean) });
  }
  return exports;
}

export async function showmount(o: { server: string }, run?: RunOptions): Promise<NfsExport[]> {
  return parseShowmount(await runTool(showmountArgv(o), run));
}

// ---------------------------------------------------------------- rpcinfo

export interface RpcService {
  program: number;
  versions: number[];
  netids: string[];
  /** '-' when rpcbind does not know the name. */
  service: string;
  owner: string;
}

export function rpcinfoArgv(o: { server: string }): string[] {
  return ['rpcinfo', '-s', serverArg(o.server).replace(/^\[|\]$/g, '')];
}

export function parseRpcinfo(out: ToolOutput): RpcService[] {
  const services: RpcService[] = [];
  for (const line of out.stdout.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('program')) continue;
    const m = /^(\d+)\s+([\d,]+)\s+(\S+)\s+(\S+)\s+(\S+)$/.exec(t);
    if (!m) throw outputError(out, `rpcinfo line ${JSON.stringify(line)}`);
    services.push({
      program: Number(m[1]),
      versions: m[2]!.split(',').filter(Boolean).map(Number),
      netids: m[3]!.split(','),
      service: m[4]!,
      owner: m[5]!,
    });
  }
  return services;
}

/** NFS versions the server registered (program 100003), ascending. */
export function nfsVersionsOf(services: readonly RpcService[]): number[] {
  const v = new Set<number>();
  for (const s of services) if (s.program === 100003 || s.service === 'nfs') for (const n of s.versions) v.add(n);
  return [...v].sort((a, b) => a - b);
}

export async function rpcinfo(o: { server: string }, run?: RunOptions): Promise<RpcService[]> {
  return parseRpcinfo(await runTool(rpcinfoArgv(o), run));
}
