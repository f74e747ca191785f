// vdi_snapshot / vdi_clone: flags, sizes kept, a new location, and data
// isolation proven by content: pattern A written through the attached path,
// snapshot (or clone), pattern B written to the source, then the copy must
// read A and the source B.
import type { ImageFormat } from '../../src/driver-info.js';
import type { DbRecord } from '../../src/toolstack/index.js';
import { bigOf, type ScenarioContext } from '../context.js';
import { detectFormat, digest, imagePathOf, isBlockOrFile, pattern, readAt, writeAt } from '../content.js';
import type { Scenario } from '../scenario.js';

const MiB = 1024 * 1024;
const SIZE = 8n * BigInt(MiB);
const CHUNK = 64 * 1024;
/** Two places: the first block and one well inside the disk (another VHD/qcow2 block). */
const OFFSETS = [0, 5 * MiB];

/** Attaches, finds the image path and its format (checked against sm_config), runs `fn`, detaches. */
async function withImage<T>(ctx: ScenarioContext, vdi: DbRecord, mode: 'RW' | 'RO', fn: (path: string, format: ImageFormat) => Promise<T>): Promise<T> {
  const attached = await ctx.attach(vdi, mode);
  const path = imagePathOf(attached.params);
  if (path === undefined || !isBlockOrFile(path))
    ctx.fail('attach result has no local image path', 'params naming a file or block device', `params=${JSON.stringify(attached.params)}`, ctx.calls(2));
  const fresh = ctx.reload(vdi) ?? vdi;
  const declared = (fresh['sm_config'] as Record<string, string>)['image-format'] as ImageFormat | undefined;
  const onDisk = detectFormat(path);
  const format = declared ?? onDisk;
  ctx.check(onDisk === format, `VDI ${String(vdi['uuid'])} records image-format ${format} but ${path} holds ${onDisk}`, `a ${format} image at ${path}`, `a ${onDisk} image`);
  try {
    return await fn(path, format);
  } finally {
    await ctx.detach(vdi);
  }
}

async function writePattern(ctx: ScenarioContext, vdi: DbRecord, seed: string): Promise<void> {
  await withImage(ctx, vdi, 'RW', async (path, format) => {
    for (const off of OFFSETS) await ctx.step(`write ${seed} at ${off} through ${path}`, () => writeAt(path, format, off, pattern(`${seed}@${off}`, CHUNK)));
  });
}

async function expectPattern(ctx: ScenarioContext, vdi: DbRecord, seed: string, role: string): Promise<void> {
  await withImage(ctx, vdi, 'RO', async (path, format) => {
    for (const off of OFFSETS) {
      const want = pattern(`${seed}@${off}`, CHUNK);
      const got = await ctx.step(`read at ${off} through ${path}`, () => readAt(path, format, off, CHUNK));
      ctx.check(
        got.equals(want),
        `the ${role} does not hold its own data at offset ${off}: the copies share data`,
        `${role} reads pattern ${seed} (sha256 ${digest(want)}) at ${off}`,
        `read sha256 ${digest(got)}${got.equals(pattern(`${seed === 'A' ? 'B' : 'A'}@${off}`, CHUNK)) ? ` = pattern ${seed === 'A' ? 'B' : 'A'}` : ''} from ${path}`,
      );
    }
  });
}

function parseXapiTime(s: string): number {
  const m = /^(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):(\d{2}):(\d{2})/.exec(s);
  return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : NaN;
}

function copyScenario(kind: 'snapshot' | 'clone'): Scenario {
  return {
    id: kind,
    title: `vdi_${kind}: flags, size kept, new location, data isolated from the source (by content)`,
    requires: ['VDI_CREATE', 'VDI_DELETE', 'VDI_ATTACH', 'VDI_DETACH', kind === 'snapshot' ? 'VDI_SNAPSHOT' : 'VDI_CLONE'],
    perFormat: true,
    usesSr: true,
    async run(ctx) {
      const src = await ctx.createVdi(SIZE, `${kind} source`);
      await writePattern(ctx, src, 'A');
      const srcNow = ctx.reload(src) ?? src;
      const t0 = Date.now();
      const copy = kind === 'snapshot' ? await ctx.snapshot(srcNow) : await ctx.clone(srcNow);
      const t1 = Date.now();
      ctx.check(String(copy['uuid']) !== String(src['uuid']), `vdi_${kind} returned the source VDI`, 'a new uuid', String(copy['uuid']));
      ctx.check(String(copy['location']) !== String(srcNow['location']), `vdi_${kind} returned the source's location`, `a location other than ${String(srcNow['location'])}`, String(copy['location']));
      const vs = bigOf(copy['virtual_size']);
      ctx.check(vs === bigOf(srcNow['virtual_size']), `vdi_${kind} changed the virtual size`, `virtual_size ${String(srcNow['virtual_size'])}`, `virtual_size ${vs}`);
      if (kind === 'snapshot') {
        ctx.check(copy['is_a_snapshot'] === true, 'snapshot is not flagged is_a_snapshot', 'is_a_snapshot = true', String(copy['is_a_snapshot']));
        ctx.check(copy['snapshot_of'] === src.ref, 'snapshot_of does not name the source', `snapshot_of = ${src.ref}`, String(copy['snapshot_of']));
        const t = parseXapiTime(String(copy['snapshot_time']));
        // xapi's datetimes have one-second resolution.
        ctx.check(t >= Math.floor(t0 / 1000) * 1000 && t <= t1 + 1000, 'snapshot_time is outside the call window', `between ${new Date(t0).toISOString()} and ${new Date(t1).toISOString()}`, String(copy['snapshot_time']));
      } else {
        ctx.check(copy['is_a_snapshot'] === false, 'clone is flagged is_a_snapshot', 'is_a_snapshot = false', String(copy['is_a_snapshot']));
      }
      await writePattern(ctx, ctx.reload(src) ?? src, 'B');
      await expectPattern(ctx, ctx.reload(copy) ?? copy, 'A', kind);
      await expectPattern(ctx, ctx.reload(src) ?? src, 'B', 'source');
    },
  };
}

export const snapshot = copyScenario('snapshot');
export const clone = copyScenario('clone');
