// convert: every pair of vhd / qcow2 / raw keeps the content, chains included.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SRError } from '../../src/sdk/errors/sr-error.js';
import { contentSha256, convert, opsFor, readRange, writeRange } from '../../src/sdk/formats/index.js';
import type { ImageRef } from '../../src/sdk/formats/index.js';
import type { ImageFormat } from '../../src/driver-info.js';
import { FORMATS, MiB, freshDir, pattern, requireVhdUtil, useTempRoot } from './helpers.js';

const root = useTempRoot();
requireVhdUtil();

const SIZE = 24 * MiB; // a multiple of every format's granularity, so sizes match exactly

/** A source image with data in several places; for vhd/qcow2 a two-level chain, so the whole chain must be flattened. */
async function makeSource(dir: string, format: ImageFormat): Promise<ImageRef> {
  const ops = opsFor(format);
  const base = { path: join(dir, `src-base.${format}`), format };
  await ops.create(base.path, SIZE);
  await writeRange(base, 0, pattern(3 * MiB + 100, 11));
  await writeRange(base, 20 * MiB, pattern(MiB, 12));
  if (format === 'raw') return base;
  const leaf = { path: join(dir, `src-leaf.${format}`), format };
  await ops.snapshot(base, leaf.path);
  await writeRange(leaf, 2 * MiB + 7, pattern(4096, 13));
  await writeRange(leaf, SIZE - 512, pattern(512, 14));
  return leaf;
}

describe.each(FORMATS.flatMap((s) => FORMATS.map((d) => [s, d] as const)))('convert %s → %s', (srcFormat, dstFormat) => {
  it('keeps the chain-resolved content and the size, sparsely', async () => {
    const dir = freshDir(root());
    const src = await makeSource(dir, srcFormat);
    const want = await contentSha256(src);
    const dst = { path: join(dir, `dst.${dstFormat}`), format: dstFormat };
    const size = await convert(src, dst);
    expect(size).toBe(SIZE);
    expect((await opsFor(dstFormat).info(dst.path)).virtualSize).toBe(SIZE);
    expect((await opsFor(dstFormat).info(dst.path)).parent).toBeNull();
    expect(await contentSha256(dst)).toBe(want);
    expect((await readRange(dst, 2 * MiB + 7, 4096)).equals(await readRange(src, 2 * MiB + 7, 4096))).toBe(true);
    // Sparse: the 24 MiB disk holds ~5 MiB of data.
    expect(statSync(dst.path).blocks * 512).toBeLessThan(16 * MiB);
    // No staging files left behind.
    expect(readdirSync(dir).filter((n) => n.startsWith('.'))).toEqual([]);
  });
});

describe('convert refusals', () => {
  it('refuses to overwrite an existing destination', async () => {
    const dir = freshDir(root());
    await opsFor('raw').create(join(dir, 'a.raw'), MiB);
    await opsFor('qcow2').create(join(dir, 'b.qcow2'), MiB);
    const e = await convert({ path: join(dir, 'a.raw'), format: 'raw' }, { path: join(dir, 'b.qcow2'), format: 'qcow2' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SRError);
    expect((e as SRError).key).toBe('VDIExists');
  });

  it('a failed conversion leaves no destination file', async () => {
    const dir = freshDir(root());
    const e = await convert({ path: join(dir, 'missing.vhd'), format: 'vhd' }, { path: join(dir, 'out.qcow2'), format: 'qcow2' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SRError);
    expect((e as SRError).key).toBe('VDICreate');
    expect((e as SRError).message).toContain('missing.vhd');
    expect(existsSync(join(dir, 'out.qcow2'))).toBe(false);
  });
});

describe('convert to a format with a coarser granularity', () => {
  it('raw of 3 MiB + 512 → vhd: rounded up to 4 MiB, the data identical, the added tail zeros', async () => {
    const dir = freshDir(root());
    const src = { path: join(dir, 'odd.raw'), format: 'raw' as const };
    await opsFor('raw').create(src.path, 3 * MiB + 512);
    const data = pattern(3 * MiB + 512, 61);
    await writeRange(src, 0, data);
    const dst = { path: join(dir, 'odd.vhd'), format: 'vhd' as const };
    expect(await convert(src, dst)).toBe(4 * MiB);
    expect((await readRange(dst, 0, data.length)).equals(data)).toBe(true);
    expect((await readRange(dst, data.length, 4 * MiB - data.length)).equals(Buffer.alloc(4 * MiB - data.length))).toBe(true);
    // And back: the round trip keeps the first 3 MiB + 512 bytes.
    const back = { path: join(dir, 'back.qcow2'), format: 'qcow2' as const };
    await convert(dst, back);
    expect(await contentSha256(back, data.length)).toBe(await contentSha256(src));
  });
});
