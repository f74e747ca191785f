// vhd-util (blktap's CLI, or ours in bin/vhd-util): the command lines sm's
// vhdutil.py runs, and its output parsed the way sm parses it
// (spec/sm-spec.md §6, spec/vhd-util.md §3–§4).
//
// `--debug`: sm passes it on nearly every call; it only turns on the tool's
// syslog logging and never changes stdout. We pass it exactly where sm does
// (builders take `debug?: boolean`, default = sm's choice), so our command lines
// are the ones an operator sees from sm, and blktap hosts get the same syslog trail.
import { vhdUtilPath } from '../env.js';
import { intArg, oneOf, pathArg } from './args.js';
import { outputError, runTool, runToolBinary, type RetryPolicy, type RunOptions, type ToolOutput } from './run.js';

export const VHD_BLOCK_SIZE = 2 * 1024 * 1024;

/**
 * sm wraps vhd-util calls in util.ioretry: up to 20 runs, 1 s apart, while the
 * error is EIO (5) or EAGAIN (11) — transient on LVM and NFS. Every runner here
 * does the same unless the caller passes its own `retry`.
 */
export const VHD_UTIL_RETRY: RetryPolicy = { attempts: 20, delayMs: 1000, exitCodes: [5, 11] };

function withRetry(run: RunOptions | undefined): RunOptions {
  return { retry: VHD_UTIL_RETRY, ...run };
}

interface Common {
  /** The VHD file or LV device (`-n`). */
  path: string;
  /** Pass `--debug` (syslog logging only). Default: as sm does for this command. */
  debug?: boolean;
}

function head(cmd: string, debug: boolean | undefined, smDefault: boolean): string[] {
  return [vhdUtilPath(), cmd, ...((debug ?? smDefault) ? ['--debug'] : [])];
}

function mib(what: string, v: number): string {
  return intArg(`${what} (MiB)`, v);
}

// ---------------------------------------------------------------- create / snapshot

export interface VhdCreateOptions extends Common {
  /** Virtual size in MiB (vhd-util rounds it up to 2 MiB). */
  sizeMiB: number;
  /** `-r`: fixed (fully allocated) VHD. */
  reserve?: boolean;
  /** `-S`: preallocate metadata for growing online up to this many MiB (>= sizeMiB). */
  maxSizeMiB?: number;
}

export function createArgv(o: VhdCreateOptions): string[] {
  const argv = [...head('create', o.debug, true), '-n', pathArg('create path', o.path), '-s', mib('create size', o.sizeMiB)];
  if (o.reserve) argv.push('-r');
  if (o.maxSizeMiB !== undefined) {
    if (o.maxSizeMiB < o.sizeMiB) throw new RangeError(`vhd-util create: maxSizeMiB ${o.maxSizeMiB} must be >= sizeMiB ${o.sizeMiB}`);
    argv.push('-S', mib('create metadata size', o.maxSizeMiB));
  }
  return argv;
}

export async function create(o: VhdCreateOptions, run?: RunOptions): Promise<void> {
  await runTool(createArgv(o), withRetry(run));
}

export interface VhdSnapshotOptions extends Common {
  parent: string;
  /** `-m`: the parent is a raw file or device. */
  parentRaw?: boolean;
  /** `-S`: metadata preallocation in MiB. */
  maxSizeMiB?: number;
  /** `-e`: link to exactly this parent even when it is empty. */
  linkEmptyParent?: boolean;
  /** `-l`: fail when the new chain would be deeper than this. */
  depthLimit?: number;
}

export function snapshotArgv(o: VhdSnapshotOptions): string[] {
  const argv = [...head('snapshot', o.debug, true), '-n', pathArg('snapshot path', o.path), '-p', pathArg('snapshot parent', o.parent)];
  if (o.parentRaw) argv.push('-m');
  if (o.maxSizeMiB !== undefined) argv.push('-S', mib('snapshot metadata size', o.maxSizeMiB));
  if (o.linkEmptyParent) argv.push('-e');
  if (o.depthLimit !== undefined) argv.push('-l', intArg('snapshot depth limit', o.depthLimit, { min: 1 }));
  return argv;
}

export async function snapshot(o: VhdSnapshotOptions, run?: RunOptions): Promise<void> {
  await runTool(snapshotArgv(o), withRetry(run));
}

// ---------------------------------------------------------------- query

/** One `query` item; the flag letters are vhd-util's. */
export const QUERY_FLAGS = {
  virtualSize: 'v',
  physicalSize: 's',
  parent: 'p',
  hidden: 'f',
  marker: 'm',
  depth: 'd',
  allocatedBlocks: 'a',
  maxResizeSize: 'S',
} as const;
export type VhdQueryField = keyof typeof QUERY_FLAGS;

/** vhd-util prints the requested items in this order, whatever the order of the flags. */
const QUERY_OUTPUT_ORDER: readonly VhdQueryField[] = [
  'virtualSize', 'physicalSize', 'parent', 'hidden', 'marker', 'depth', 'allocatedBlocks', 'maxResizeSize',
];

export interface VhdQueryOptions extends Common {
  /** Items to print; the flags are bundled in this order (sm: ['virtualSize','physicalSize','allocatedBlocks','hidden','parent'] → `-vsafp`). */
  fields: readonly VhdQueryField[];
  /** `-u`: print the parent locator as stored, without resolving it. */
  noResolveParent?: boolean;
}

export interface VhdQueryResult {
  /** `-v`: virtual size in MiB (floor). */
  virtualSizeMiB?: number;
  /** `-s`: physical size in bytes, computed from the metadata. */
  physicalSize?: number;
  /** `-p`: parent path, or null for `... has no parent`. */
  parent?: string | null;
  /** `-f`: hidden byte. */
  hidden?: number;
  /** `-m`: batmap marker byte. */
  marker?: number;
  /** `-d`: chain depth (1 for a disk without parent). */
  depth?: number;
  /** `-a`: allocated 2 MiB blocks. */
  allocatedBlocks?: number;
  /** `-S`: largest size (MiB) `resize -f` can reach. */
  maxResizeSizeMiB?: number;
}

export function queryArgv(o: VhdQueryOptions): string[] {
  if (o.fields.length === 0) throw new TypeError('vhd-util query: fields must name at least one of ' + Object.keys(QUERY_FLAGS).join(', '));
  const seen = new Set<VhdQueryField>();
  let flags = '';
  for (const f of o.fields) {
    oneOf('vhd-util query field', f, Object.keys(QUERY_FLAGS) as VhdQueryField[]);
    if (seen.has(f)) throw new TypeError(`vhd-util query: field ${f} given twice`);
    seen.add(f);
    flags += QUERY_FLAGS[f];
  }
  if (o.noResolveParent) flags += 'u';
  return [...head('query', o.debug, true), `-${flags}`, '-n', pathArg('query path', o.path)];
}

const UINT = /^\d+$/;

/** Parse `query` stdout for the requested fields (vhd-util.md §3 query). */
export function parseQuery(out: ToolOutput, fields: readonly VhdQueryField[]): VhdQueryResult {
  const lines = out.stdout.replace(/\n$/, '').split('\n');
  const wanted = QUERY_OUTPUT_ORDER.filter((f) => fields.includes(f));
  if (lines.length !== wanted.length) throw outputError(out, `expected ${wanted.length} line(s) for ${wanted.join(',')}`);
  const r: VhdQueryResult = {};
  wanted.forEach((field, i) => {
    const line = (lines[i] ?? '').trim();
    const num = (text: string): number => {
      if (!UINT.test(text)) throw outputError(out, `${field}: ${JSON.stringify(line)} is not a number`);
      return Number(text);
    };
    const after = (prefix: string): string => {
      if (!line.startsWith(prefix)) throw outputError(out, `${field}: expected "${prefix}…", got ${JSON.stringify(line)}`);
      return line.slice(prefix.length).trim();
    };
    switch (field) {
      case 'virtualSize': r.virtualSizeMiB = num(line); break;
      case 'physicalSize': r.physicalSize = num(line); break;
      case 'parent':
        if (line === 'query failed' || line.startsWith('Failed opening')) throw outputError(out, `parent: ${line}`);
        r.parent = line.endsWith(' has no parent') ? null : line;
        break;
      case 'hidden': r.hidden = num(after('hidden:')); break;
      case 'marker': r.marker = num(after('marker:')); break;
      case 'depth': r.depth = num(after('chain depth:')); break;
      case 'allocatedBlocks': r.allocatedBlocks = num(line); break;
      case 'maxResizeSize': r.maxResizeSizeMiB = num(line); break;
    }
  });
  return r;
}

export async function query(o: VhdQueryOptions, run?: RunOptions): Promise<VhdQueryResult> {
  return parseQuery(await runTool(queryArgv(o), withRetry(run)), o.fields);
}

// ---------------------------------------------------------------- scan

export interface VhdScanOptions {
  /** `-m`: glob expanded by vhd-util itself (or an LV-name pattern with `vg`). */
  pattern?: string;
  /** Extra targets after the pattern. */
  files?: readonly string[];
  /** `-f`: read only footer copy + header (parent = header name). sm always passes it. */
  fast?: boolean;
  /** `-c`: keep going after a per-image error, exit 0. */
  continueOnError?: boolean;
  /** `-l`: scan the LVs of this volume group. */
  vg?: string;
  /** `-a`: also scan each image's parent. */
  scanParents?: boolean;
  /** `-v`: full paths instead of basenames. */
  verbose?: boolean;
  /** `-M`: include marker and keyhash. */
  markers?: boolean;
}

export interface VhdScanImage {
  kind: 'vhd';
  name: string;
  /** Virtual size in bytes. */
  capacity: number;
  /** File (or LV) size in bytes. */
  size: number;
  hidden: number;
  /** Parent name, or null for `parent=none`. */
  parent: string | null;
  marker?: number;
  /** 64 hex digits, or '' when none is set (with markers). */
  keyhash?: string;
}

export interface VhdScanError {
  kind: 'error';
  name: string;
  /** Negative errno, e.g. -22. */
  error: number;
  message: string;
}

export type VhdScanEntry = VhdScanImage | VhdScanError;

export function scanArgv(o: VhdScanOptions): string[] {
  if (o.pattern === undefined && (o.files ?? []).length === 0) throw new TypeError('vhd-util scan: give a pattern or files');
  const argv = [vhdUtilPath(), 'scan'];
  if (o.fast) argv.push('-f');
  if (o.continueOnError) argv.push('-c');
  if (o.pattern !== undefined) argv.push('-m', pathArg('scan pattern', o.pattern));
  if (o.vg !== undefined) argv.push('-l', pathArg('scan volume group', o.vg));
  if (o.scanParents) argv.push('-a');
  if (o.verbose) argv.push('-v');
  if (o.markers) argv.push('-M');
  for (const f of o.files ?? []) argv.push(pathArg('scan file', f));
  return argv;
}

const SCAN_IMAGE =
  /^vhd=(.+?) capacity=(\d+) size=(\d+) hidden=(\d+)(?: marker=(\d+) keyhash=([0-9a-fA-F]*))? parent=(.+)$/;
const SCAN_ERROR = /^vhd=(.+?) scan-error=(-?\d+) error-message='(.*)'$/;

/** One `scan` line into a typed entry; null for a line that is neither (pretty mode is not supported). */
export function parseScanLine(line: string): VhdScanEntry | null {
  const e = SCAN_ERROR.exec(line);
  if (e) return { kind: 'error', name: e[1]!, error: Number(e[2]), message: e[3]! };
  const m = SCAN_IMAGE.exec(line);
  if (!m) return null;
  const img: VhdScanImage = {
    kind: 'vhd',
    name: m[1]!,
    capacity: Number(m[2]),
    size: Number(m[3]),
    hidden: Number(m[4]),
    parent: m[7] === 'none' ? null : m[7]!,
  };
  if (m[5] !== undefined) {
    img.marker = Number(m[5]);
    img.keyhash = m[6] ?? '';
  }
  return img;
}

export function parseScan(out: ToolOutput): VhdScanEntry[] {
  const entries: VhdScanEntry[] = [];
  for (const line of out.stdout.split('\n')) {
    if (line.trim() === '') continue;
    const e = parseScanLine(line);
    if (!e) throw outputError(out, `scan line ${JSON.stringify(line)}`);
    entries.push(e);
  }
  return entries;
}

/** Without continueOnError, a failing image makes vhd-util exit non-zero: that is a ToolError (stdout holds the scan-error line). */
export async function scan(o: VhdScanOptions, run?: RunOptions): Promise<VhdScanEntry[]> {
  return parseScan(await runTool(scanArgv(o), withRetry(run)));
}

// ---------------------------------------------------------------- set / modify

export interface VhdSetOptions extends Common {
  field: 'hidden' | 'marker';
  /** 0–255. */
  value: number;
}

export function setArgv(o: VhdSetOptions): string[] {
  if (!Number.isInteger(o.value) || o.value < 0 || o.value > 255) throw new RangeError(`vhd-util set: value ${o.value} is not in 0..255`);
  return [...head('set', o.debug, true), '-n', pathArg('set path', o.path), '-f', oneOf('vhd-util set field', o.field, ['hidden', 'marker']), '-v', String(o.value)];
}

export async function set(o: VhdSetOptions, run?: RunOptions): Promise<void> {
  await runTool(setArgv(o), withRetry(run));
}

/** `modify`: exactly one change per call, as sm uses it. */
export type VhdModifyOptions = Common &
  (
    | { /** `-p`: re-point to this parent. */ parent: string; /** `-m`: parent is raw. */ parentRaw?: boolean }
    | { /** `-s`: write the footer at this byte size (≥ physical size, 512-aligned). */ physicalSize: number }
    | { /** `-z`: unallocate every block. */ killData: true }
  );

export function modifyArgv(o: VhdModifyOptions): string[] {
  const argv = head('modify', o.debug, true);
  if ('parent' in o) {
    argv.push('-p', pathArg('modify parent', o.parent), '-n', pathArg('modify path', o.path));
    if (o.parentRaw) argv.push('-m');
  } else if ('physicalSize' in o) {
    argv.push('-s', intArg('modify physical size (bytes)', o.physicalSize, { multipleOf: 512 }), '-n', pathArg('modify path', o.path));
  } else {
    argv.push('-z', '-n', pathArg('modify path', o.path));
  }
  return argv;
}

export async function modify(o: VhdModifyOptions, run?: RunOptions): Promise<void> {
  await runTool(modifyArgv(o), withRetry(run));
}

// ---------------------------------------------------------------- coalesce / resize / revert / repair

export interface VhdCoalesceOptions extends Common {
  sparse?: boolean;
}

export interface VhdCoalesceResult {
  /** 512-byte sectors copied into the parent. */
  sectors: number;
  bytes: number;
}

export function coalesceArgv(o: VhdCoalesceOptions): string[] {
  return [...head('coalesce', o.debug, true), '-n', pathArg('coalesce path', o.path), ...(o.sparse ? ['-s'] : [])];
}

export function parseCoalesce(out: ToolOutput): VhdCoalesceResult {
  // sm: re.match('^Coalesced (\d+) sectors', ...) on the last line; progress (-p) or
  // "opening for sparse writes" (-s) may precede it.
  const m = /(?:^|[\r\n])Coalesced (\d+) sectors\s*$/.exec(out.stdout);
  if (!m) throw outputError(out, 'no "Coalesced N sectors" line');
  const sectors = Number(m[1]);
  return { sectors, bytes: sectors * 512 };
}

export async function coalesce(o: VhdCoalesceOptions, run?: RunOptions): Promise<VhdCoalesceResult> {
  return parseCoalesce(await runTool(coalesceArgv(o), withRetry(run)));
}

export type VhdResizeOptions = Common & { sizeMiB: number } & (
  | { /** Offline, journaled resize (`-j`). */ journal: string }
  | { /** Online, within the `-S` preallocation (`-f`). */ fast: true }
);

export function resizeArgv(o: VhdResizeOptions): string[] {
  const argv = [...head('resize', o.debug, true), '-s', mib('resize size', o.sizeMiB), '-n', pathArg('resize path', o.path)];
  if ('journal' in o) argv.push('-j', pathArg('resize journal', o.journal));
  else argv.push('-f');
  return argv;
}

export async function resize(o: VhdResizeOptions, run?: RunOptions): Promise<void> {
  await runTool(resizeArgv(o), withRetry(run));
}

export interface VhdRevertOptions extends Common {
  journal: string;
}

export function revertArgv(o: VhdRevertOptions): string[] {
  return [...head('revert', o.debug, true), '-n', pathArg('revert path', o.path), '-j', pathArg('revert journal', o.journal)];
}

export async function revert(o: VhdRevertOptions, run?: RunOptions): Promise<void> {
  await runTool(revertArgv(o), withRetry(run));
}

export interface VhdRepairOptions extends Common {
  /** `-b`: use the backup footer (the copy at offset 0). */
  backupFooter?: boolean;
}

export function repairArgv(o: VhdRepairOptions): string[] {
  return [...head('repair', o.debug, false), '-n', pathArg('repair path', o.path), ...(o.backupFooter ? ['-b'] : [])];
}

export async function repair(o: VhdRepairOptions, run?: RunOptions): Promise<void> {
  await runTool(repairArgv(o), withRetry(run));
}

// ---------------------------------------------------------------- check

export interface VhdCheckOptions extends Common {
  /** `-i`: tolerate a missing/bad primary footer (LV being resized). */
  ignoreMissingFooter?: boolean;
  /** `-B`: skip the O(n²) BAT overlap check. */
  skipBatOverlap?: boolean;
  /** `-p`: check every ancestor too. */
  parents?: boolean;
  /** `-t`: ignore timestamps in the future. */
  ignoreTimestamps?: boolean;
}

/**
 * `valid` exit 0; `unavailable` the file is missing or unreadable (2 ENOENT,
 * 30 EROFS, 124 timeout — as XCP-ng's sm classes them); anything else `invalid`.
 */
export type VhdCheckStatus = 'valid' | 'invalid' | 'unavailable';

export interface VhdCheckResult {
  status: VhdCheckStatus;
  exitCode: number;
  /** What vhd-util printed (the reason when invalid). */
  output: string;
}

export function checkArgv(o: VhdCheckOptions): string[] {
  const argv = [...head('check', o.debug, true), '-n', pathArg('check path', o.path)];
  if (o.ignoreMissingFooter) argv.push('-i');
  if (o.skipBatOverlap) argv.push('-B');
  if (o.parents) argv.push('-p');
  if (o.ignoreTimestamps) argv.push('-t');
  return argv;
}

const UNAVAILABLE = new Set([2, 30, 124]);

export function checkStatus(exitCode: number): VhdCheckStatus {
  return exitCode === 0 ? 'valid' : UNAVAILABLE.has(exitCode) ? 'unavailable' : 'invalid';
}

/** Never throws for a bad image (that is a result); throws ToolError only if vhd-util cannot run. */
export async function check(o: VhdCheckOptions, run?: RunOptions): Promise<VhdCheckResult> {
  const opts = withRetry(run);
  // Every exit status is an answer, except the transient ones we retry (and then raise).
  const answers = Array.from({ length: 256 }, (_, i) => i).filter((c) => !(opts.retry?.exitCodes ?? []).includes(c));
  const out = await runTool(checkArgv(o), { ...opts, okExitCodes: answers });
  return { status: checkStatus(out.exitCode), exitCode: out.exitCode, output: out.stdout + out.stderr };
}

// ---------------------------------------------------------------- read

export interface VhdReadHeadersOptions extends Common {}

export type VhdDiskType = 'Fixed' | 'Dynamic' | 'Differencing';

export interface VhdHeaders {
  /** From `Disk type : <X> hard disk`. */
  diskType: VhdDiskType;
  /** Footer UUID. */
  uuid?: string;
  hidden?: number;
  currentSize?: number;
  /** Header `Parent name` (empty string when none). */
  parentName?: string;
  parentUuid?: string;
  /** First `decoded name :` locator line (sm's _getVHDParentNoCheck), or null when there are none. */
  decodedName: string | null;
}

/** `read -p`; sm passes `--debug` when it only wants the disk type, not for the parent name. */
export function readHeadersArgv(o: VhdReadHeadersOptions): string[] {
  return [...head('read', o.debug, true), '-p', '-n', pathArg('read path', o.path)];
}

export function parseReadHeaders(out: ToolOutput): VhdHeaders {
  const text = out.stdout;
  const type = /Disk type\s+: (\S+) hard disk/.exec(text);
  if (!type) throw outputError(out, 'no "Disk type" line');
  const t = type[1];
  if (t !== 'Fixed' && t !== 'Dynamic' && t !== 'Differencing') throw outputError(out, `disk type ${JSON.stringify(t)}`);
  const field = (label: string): string | undefined => {
    const m = new RegExp(`^${label}\\s*: ?(.*)$`, 'm').exec(text);
    return m ? m[1]!.trim() : undefined;
  };
  const decoded = /decoded name : ?(.*)$/m.exec(text);
  const h: VhdHeaders = { diskType: t, decodedName: decoded ? decoded[1]!.trim() : null };
  const uuid = field('UUID');
  if (uuid !== undefined) h.uuid = uuid;
  const hidden = field('Hidden');
  if (hidden !== undefined && UINT.test(hidden)) h.hidden = Number(hidden);
  const size = /^Current disk size\s*:.*\((\d+) Bytes\)/m.exec(text);
  if (size) h.currentSize = Number(size[1]);
  const pname = field('Parent name');
  if (pname !== undefined) h.parentName = pname;
  const puuid = field('Parent UUID');
  if (puuid !== undefined) h.parentUuid = puuid;
  return h;
}

export async function readHeaders(o: VhdReadHeadersOptions, run?: RunOptions): Promise<VhdHeaders> {
  return parseReadHeaders(await runTool(readHeadersArgv(o), withRetry(run)));
}

/**
 * sm's LV-name decoding of `decoded name`: device-mapper paths double each '-',
 * and the LV name is the last 40 characters (`VHD-<uuid>`), or 39 for a raw
 * parent (`LV-<uuid>`), as in sm's vhdutil._getVHDParentNoCheck.
 */
export function lvNameFromDecodedName(decoded: string): string {
  const name = decoded.replace(/--/g, '-').slice(-40);
  return name.slice(1).startsWith('LV-') ? name.slice(1) : name;
}

export function readBitmapArgv(o: Common): string[] {
  return [...head('read', o.debug, true), '-B', '-n', pathArg('read path', o.path)];
}

/** `read -B`: one bit per block, MSB first (raw bytes). */
export async function readBitmap(o: Common, run?: RunOptions): Promise<Buffer> {
  return (await runToolBinary(readBitmapArgv(o), withRetry(run))).stdout;
}

// ---------------------------------------------------------------- key (XCP-ng)

export function keyPrintArgv(o: Common): string[] {
  return [...head('key', o.debug, false), '-p', '-n', pathArg('key path', o.path)];
}

export interface VhdKeyHash {
  nonce: string;
  hash: string;
}

export function parseKeyPrint(out: ToolOutput): VhdKeyHash | null {
  const s = out.stdout.trim();
  if (s === 'none') return null;
  const m = /^([0-9a-fA-F]{64}) ([0-9a-fA-F]{64})$/.exec(s);
  if (!m) throw outputError(out, 'expected "none" or "<nonce> <hash>"');
  return { nonce: m[1]!, hash: m[2]! };
}

export async function keyPrint(o: Common, run?: RunOptions): Promise<VhdKeyHash | null> {
  return parseKeyPrint(await runTool(keyPrintArgv(o), withRetry(run)));
}
