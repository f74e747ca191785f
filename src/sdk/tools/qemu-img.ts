// qemu-img: create / info / check / measure / convert / rebase / commit / resize.
// Rule: qemu-img never guesses a format. Every builder takes the image format
// (`-f`), and a backing file always comes with its format (`-F`).
import { z } from 'zod';
import { intArg, oneOf, pathArg } from './args.js';
import { outputError, runTool, type RunOptions, type ToolOutput } from './run.js';

export const QEMU_IMG = 'qemu-img';

export const QEMU_FORMATS = ['raw', 'qcow2', 'vpc', 'vhdx', 'vmdk', 'qed', 'vdi', 'luks'] as const;
export type QemuFormat = (typeof QEMU_FORMATS)[number];

/** An image file together with the format it must be opened as. */
export interface QemuImage {
  path: string;
  format: QemuFormat;
}

export type QemuPreallocation = 'off' | 'metadata' | 'falloc' | 'full';
const PREALLOCATIONS: readonly QemuPreallocation[] = ['off', 'metadata', 'falloc', 'full'];

/** Values for `-o`; booleans become on/off. */
export type QemuOptionValues = Record<string, string | number | boolean>;

function fmt(what: string, f: QemuFormat): string {
  return oneOf(what, f, QEMU_FORMATS);
}

/** Render `-o` options; a comma inside a value is doubled, as qemu's option parser requires. */
export function encodeQemuOptions(opts: QemuOptionValues): string {
  return Object.entries(opts)
    .map(([k, v]) => {
      if (!/^[a-z][a-z0-9_.-]*$/.test(k)) throw new TypeError(`qemu-img -o: bad option name ${JSON.stringify(k)}`);
      const s = typeof v === 'boolean' ? (v ? 'on' : 'off') : String(v);
      return `${k}=${s.replace(/,/g, ',,')}`;
    })
    .join(',');
}

function optionArgs(opts: QemuOptionValues): string[] {
  return Object.keys(opts).length > 0 ? ['-o', encodeQemuOptions(opts)] : [];
}

// ---------------------------------------------------------------- create

export interface QemuCreateOptions extends QemuImage {
  /** Virtual size in bytes; may be omitted only with a backing file (then the backing size is used). */
  sizeBytes?: number;
  backing?: QemuImage;
  /** `-u`: do not open the backing file (it may not exist yet). Needs sizeBytes. */
  unsafe?: boolean;
  clusterSize?: number;
  preallocation?: QemuPreallocation;
  /** Further `-o` options (e.g. { compat: '1.1', lazy_refcounts: true }). */
  options?: QemuOptionValues;
}

export function createArgv(o: QemuCreateOptions): string[] {
  const argv = [QEMU_IMG, 'create', '-f', fmt('create format', o.format)];
  if (o.backing) {
    argv.push('-b', pathArg('create backing', o.backing.path), '-F', fmt('create backing format', o.backing.format));
  } else if (o.sizeBytes === undefined) {
    throw new TypeError('qemu-img create: sizeBytes is required without a backing file');
  }
  if (o.unsafe) {
    if (o.sizeBytes === undefined) throw new TypeError('qemu-img create: unsafe (-u) needs sizeBytes');
    argv.push('-u');
  }
  const opts: QemuOptionValues = {};
  if (o.clusterSize !== undefined) opts['cluster_size'] = intArg('cluster size', o.clusterSize, { min: 512 });
  if (o.preallocation !== undefined) opts['preallocation'] = oneOf('preallocation', o.preallocation, PREALLOCATIONS);
  Object.assign(opts, o.options);
  argv.push(...optionArgs(opts), pathArg('create path', o.path));
  if (o.sizeBytes !== undefined) argv.push(intArg('create size (bytes)', o.sizeBytes));
  return argv;
}

export async function create(o: QemuCreateOptions, run?: RunOptions): Promise<void> {
  await runTool(createArgv(o), run);
}

// ---------------------------------------------------------------- info

const formatSpecificSchema = z
  .object({ type: z.string(), data: z.record(z.string(), z.unknown()).optional() })
  .loose();

const infoSchema = z
  .object({
    filename: z.string(),
    format: z.string(),
    'virtual-size': z.number().int().nonnegative(),
    'actual-size': z.number().int().nonnegative().optional(),
    'cluster-size': z.number().int().positive().optional(),
    'dirty-flag': z.boolean().optional(),
    'backing-filename': z.string().optional(),
    'full-backing-filename': z.string().optional(),
    'backing-filename-format': z.string().optional(),
    'format-specific': formatSpecificSchema.optional(),
  })
  .loose();

export interface QemuImageInfo {
  filename: string;
  format: string;
  virtualSize: number;
  /** Bytes allocated on the host file system. */
  actualSize?: number;
  clusterSize?: number;
  dirty: boolean;
  /** The backing file name as stored in the image. */
  backingFilename?: string;
  /** The backing file name resolved against the image's directory. */
  fullBackingFilename?: string;
  backingFormat?: string;
  /** qcow2 external data file (`data-file`), when the image has one. */
  dataFile?: string;
  /** `format-specific` as qemu-img printed it (type + data). */
  formatSpecific?: { type: string; data: Record<string, unknown> };
}

function toInfo(raw: z.infer<typeof infoSchema>): QemuImageInfo {
  const fs = raw['format-specific'];
  const data = fs?.data ?? {};
  const dataFile = fs?.type === 'qcow2' && typeof data['data-file'] === 'string' ? data['data-file'] : undefined;
  const info: QemuImageInfo = {
    filename: raw.filename,
    format: raw.format,
    virtualSize: raw['virtual-size'],
    dirty: raw['dirty-flag'] ?? false,
  };
  if (raw['actual-size'] !== undefined) info.actualSize = raw['actual-size'];
  if (raw['cluster-size'] !== undefined) info.clusterSize = raw['cluster-size'];
  if (raw['backing-filename'] !== undefined) info.backingFilename = raw['backing-filename'];
  if (raw['full-backing-filename'] !== undefined) info.fullBackingFilename = raw['full-backing-filename'];
  if (raw['backing-filename-format'] !== undefined) info.backingFormat = raw['backing-filename-format'];
  if (dataFile !== undefined) info.dataFile = dataFile;
  if (fs) info.formatSpecific = { type: fs.type, data };
  return info;
}

export interface QemuInfoOptions extends QemuImage {
  /** `-U`: read an image another process holds open (results may be stale). */
  forceShare?: boolean;
}

export function infoArgv(o: QemuInfoOptions & { backingChain?: boolean }): string[] {
  return [
    QEMU_IMG, 'info', '-f', fmt('info format', o.format), '--output=json',
    ...(o.backingChain ? ['--backing-chain'] : []),
    ...(o.forceShare ? ['-U'] : []),
    pathArg('info path', o.path),
  ];
}

function parseJson(out: ToolOutput): unknown {
  try {
    return JSON.parse(out.stdout);
  } catch {
    throw outputError(out, 'not JSON');
  }
}

function parseWith<S extends z.ZodType>(out: ToolOutput, schema: S, what: string): z.infer<S> {
  const r = schema.safeParse(parseJson(out));
  if (!r.success) throw outputError(out, `${what}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}

export function parseInfo(out: ToolOutput): QemuImageInfo {
  return toInfo(parseWith(out, infoSchema, 'qemu-img info'));
}

export function parseInfoChain(out: ToolOutput): QemuImageInfo[] {
  return parseWith(out, z.array(infoSchema).min(1), 'qemu-img info --backing-chain').map(toInfo);
}

export async function info(o: QemuInfoOptions, run?: RunOptions): Promise<QemuImageInfo> {
  return parseInfo(await runTool(infoArgv(o), run));
}

/** The image followed by each backing file, top first. */
export async function infoChain(o: QemuInfoOptions, run?: RunOptions): Promise<QemuImageInfo[]> {
  return parseInfoChain(await runTool(infoArgv({ ...o, backingChain: true }), run));
}

// ---------------------------------------------------------------- check

export interface QemuCheckOptions extends QemuImage {
  /** `-r`: repair leaks only, or everything. */
  repair?: 'leaks' | 'all';
  forceShare?: boolean;
}

export function checkArgv(o: QemuCheckOptions): string[] {
  return [
    QEMU_IMG, 'check', '-f', fmt('check format', o.format), '--output=json',
    ...(o.repair ? ['-r', oneOf('check repair', o.repair, ['leaks', 'all'])] : []),
    ...(o.forceShare ? ['-U'] : []),
    pathArg('check path', o.path),
  ];
}

/**
 * Exit codes of `qemu-img check`: 0 consistent, 2 corrupted, 3 leaks only,
 * 63 the format has no checks; 1 (check could not complete) is a ToolError.
 */
export type QemuCheckStatus = 'clean' | 'corrupt' | 'leaks' | 'unsupported';

export interface QemuCheckResult {
  status: QemuCheckStatus;
  exitCode: number;
  /** Internal errors while checking ("check-errors"). */
  checkErrors: number;
  corruptions: number;
  leaks: number;
  corruptionsFixed: number;
  leaksFixed: number;
  imageEndOffset?: number;
  totalClusters?: number;
  allocatedClusters?: number;
  fragmentedClusters?: number;
}

const count = z.number().int().nonnegative();
const checkSchema = z
  .object({
    'check-errors': count,
    corruptions: count.optional(),
    leaks: count.optional(),
    'corruptions-fixed': count.optional(),
    'leaks-fixed': count.optional(),
    'image-end-offset': count.optional(),
    'total-clusters': count.optional(),
    'allocated-clusters': count.optional(),
    'fragmented-clusters': count.optional(),
  })
  .loose();

const CHECK_STATUS: Record<number, QemuCheckStatus> = { 0: 'clean', 2: 'corrupt', 3: 'leaks', 63: 'unsupported' };

export function parseCheck(out: ToolOutput): QemuCheckResult {
  const status = CHECK_STATUS[out.exitCode];
  if (status === undefined) throw outputError(out, `exit code ${out.exitCode}`);
  if (status === 'unsupported') {
    return { status, exitCode: out.exitCode, checkErrors: 0, corruptions: 0, leaks: 0, corruptionsFixed: 0, leaksFixed: 0 };
  }
  const raw = parseWith(out, checkSchema, 'qemu-img check');
  const r: QemuCheckResult = {
    status,
    exitCode: out.exitCode,
    checkErrors: raw['check-errors'],
    corruptions: raw.corruptions ?? 0,
    leaks: raw.leaks ?? 0,
    corruptionsFixed: raw['corruptions-fixed'] ?? 0,
    leaksFixed: raw['leaks-fixed'] ?? 0,
  };
  if (raw['image-end-offset'] !== undefined) r.imageEndOffset = raw['image-end-offset'];
  if (raw['total-clusters'] !== undefined) r.totalClusters = raw['total-clusters'];
  if (raw['allocated-clusters'] !== undefined) r.allocatedClusters = raw['allocated-clusters'];
  if (raw['fragmented-clusters'] !== undefined) r.fragmentedClusters = raw['fragmented-clusters'];
  return r;
}

export async function check(o: QemuCheckOptions, run?: RunOptions): Promise<QemuCheckResult> {
  return parseCheck(await runTool(checkArgv(o), { ...run, okExitCodes: [0, 2, 3, 63] }));
}

// ---------------------------------------------------------------- measure

export type QemuMeasureOptions = {
  /** Output format to size for (`-O`). */
  targetFormat: QemuFormat;
  options?: QemuOptionValues;
} & ({ source: QemuImage } | { sizeBytes: number });

export interface QemuMeasureResult {
  /** Bytes needed for the image as it is now. */
  required: number;
  /** Bytes needed when every cluster is allocated. */
  fullyAllocated: number;
}

export function measureArgv(o: QemuMeasureOptions): string[] {
  const argv = [QEMU_IMG, 'measure', '--output=json', '-O', fmt('measure target format', o.targetFormat)];
  argv.push(...optionArgs(o.options ?? {}));
  if ('source' in o) argv.push('-f', fmt('measure source format', o.source.format), pathArg('measure path', o.source.path));
  else argv.push('--size', intArg('measure size (bytes)', o.sizeBytes));
  return argv;
}

export function parseMeasure(out: ToolOutput): QemuMeasureResult {
  const raw = parseWith(out, z.object({ required: count, 'fully-allocated': count }).loose(), 'qemu-img measure');
  return { required: raw.required, fullyAllocated: raw['fully-allocated'] };
}

export async function measure(o: QemuMeasureOptions, run?: RunOptions): Promise<QemuMeasureResult> {
  return parseMeasure(await runTool(measureArgv(o), run));
}

// ---------------------------------------------------------------- convert

export interface QemuConvertOptions {
  source: QemuImage;
  target: QemuImage;
  /** `-p`: print progress (to stdout). */
  progress?: boolean;
  /** `-S`: minimum run of zero bytes written as a hole; 0 = fully allocate. */
  sparseSize?: number;
  /** `-n`: the target exists already; do not create it. */
  skipCreate?: boolean;
  /** `-B`/`-F`: make the target a child of this image (only data differing from it is written). */
  backing?: QemuImage;
  options?: QemuOptionValues;
}

export function convertArgv(o: QemuConvertOptions): string[] {
  const argv = [QEMU_IMG, 'convert', '-f', fmt('convert source format', o.source.format), '-O', fmt('convert target format', o.target.format)];
  if (o.progress) argv.push('-p');
  if (o.skipCreate) argv.push('-n');
  if (o.sparseSize !== undefined) argv.push('-S', intArg('convert sparse size', o.sparseSize));
  if (o.backing) argv.push('-B', pathArg('convert backing', o.backing.path), '-F', fmt('convert backing format', o.backing.format));
  argv.push(...optionArgs(o.options ?? {}), pathArg('convert source', o.source.path), pathArg('convert target', o.target.path));
  return argv;
}

export async function convert(o: QemuConvertOptions, run?: RunOptions): Promise<void> {
  await runTool(convertArgv(o), run);
}

// ---------------------------------------------------------------- rebase

export interface QemuRebaseOptions extends QemuImage {
  /** The new backing file, or null to make the image standalone. */
  backing: QemuImage | null;
  /** `-u`: only rewrite the backing-file name; data is not compared or copied. */
  unsafe?: boolean;
  progress?: boolean;
}

export function rebaseArgv(o: QemuRebaseOptions): string[] {
  const argv = [QEMU_IMG, 'rebase', '-f', fmt('rebase format', o.format)];
  if (o.unsafe) argv.push('-u');
  if (o.progress) argv.push('-p');
  if (o.backing) argv.push('-b', pathArg('rebase backing', o.backing.path), '-F', fmt('rebase backing format', o.backing.format));
  else argv.push('-b', '');
  argv.push(pathArg('rebase path', o.path));
  return argv;
}

export async function rebase(o: QemuRebaseOptions, run?: RunOptions): Promise<void> {
  await runTool(rebaseArgv(o), run);
}

// ---------------------------------------------------------------- commit

export interface QemuCommitOptions extends QemuImage {
  /** `-d`: keep the committed image's data (do not empty it). */
  drop?: boolean;
  /** `-b`: commit down to this backing file instead of the immediate one. */
  base?: string;
  progress?: boolean;
}

export function commitArgv(o: QemuCommitOptions): string[] {
  const argv = [QEMU_IMG, 'commit', '-f', fmt('commit format', o.format)];
  if (o.drop) argv.push('-d');
  if (o.base !== undefined) argv.push('-b', pathArg('commit base', o.base));
  if (o.progress) argv.push('-p');
  argv.push(pathArg('commit path', o.path));
  return argv;
}

export async function commit(o: QemuCommitOptions, run?: RunOptions): Promise<void> {
  await runTool(commitArgv(o), run);
}

// ---------------------------------------------------------------- resize

export interface QemuResizeOptions extends QemuImage {
  /** New virtual size, in bytes (absolute, never relative). */
  sizeBytes: number;
  /** `--shrink`: allow data loss when the new size is smaller. Never on by default. */
  shrink?: boolean;
  preallocation?: QemuPreallocation;
}

export function resizeArgv(o: QemuResizeOptions): string[] {
  const argv = [QEMU_IMG, 'resize', '-f', fmt('resize format', o.format)];
  if (o.shrink === true) argv.push('--shrink');
  if (o.preallocation !== undefined) argv.push(`--preallocation=${oneOf('preallocation', o.preallocation, PREALLOCATIONS)}`);
  argv.push(pathArg('resize path', o.path), intArg('resize size (bytes)', o.sizeBytes));
  return argv;
}

export async function resize(o: QemuResizeOptions, run?: RunOptions): Promise<void> {
  await runTool(resizeArgv(o), run);
}
