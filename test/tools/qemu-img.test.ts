// qemu-img wrappers against the real qemu-img on real files in a temp dir.
import { createHash } from 'node:crypto';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as qemuImg from '../../src/sdk/tools/qemu-img.js';
import { ToolError, recordToolCalls } from '../../src/sdk/tools/run.js';

const MiB = 1024 * 1024;
let dir: string;
const p = (name: string) => join(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'smapi-ts-qemu-img-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A sparse raw image of `size` bytes with `chunks` written at the given offsets. */
async function rawWith(name: string, size: number, chunks: Array<[number, string]>): Promise<string> {
  const fh = await open(p(name), 'w');
  try {
    await fh.truncate(size);
    for (const [off, text] of chunks) await fh.write(Buffer.from(text.repeat(4096 / text.length)), 0, 4096, off);
  } finally {
    await fh.close();
  }
  return p(name);
}

async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** The logical content of an image, via a conversion to raw. */
async function contentOf(image: qemuImg.QemuImage): Promise<string> {
  const out = `${image.path}.content.raw`;
  await qemuImg.convert({ source: image, target: { path: out, format: 'raw' } });
  try {
    return await sha256(out);
  } finally {
    await rm(out, { force: true });
  }
}

describe('qemu-img (real)', () => {
  it('creates a qcow2 child with -b/-F and info shows the backing file and its format', async () => {
    const rec = recordToolCalls();
    try {
      await qemuImg.create({ format: 'qcow2', path: p('base.qcow2'), sizeBytes: 64 * MiB, clusterSize: 65536 });
      await qemuImg.create({ format: 'qcow2', path: p('child.qcow2'), backing: { path: p('base.qcow2'), format: 'qcow2' } });
    } finally {
      rec.stop();
    }
    expect(rec.argvs()[1]).toEqual(['qemu-img', 'create', '-f', 'qcow2', '-b', p('base.qcow2'), '-F', 'qcow2', p('child.qcow2')]);

    const info = await qemuImg.info({ format: 'qcow2', path: p('child.qcow2') });
    expect(info).toMatchObject({
      format: 'qcow2',
      virtualSize: 64 * MiB,
      clusterSize: 65536,
      backingFilename: p('base.qcow2'),
      fullBackingFilename: p('base.qcow2'),
      backingFormat: 'qcow2',
      dirty: false,
    });
    expect(info.actualSize).toBeGreaterThan(0);
    expect(info.formatSpecific?.type).toBe('qcow2');
    expect(info.dataFile).toBeUndefined();
  });

  it('info --backing-chain returns every image, top first', async () => {
    const chain = await qemuImg.infoChain({ format: 'qcow2', path: p('child.qcow2') });
    expect(chain.map((i) => i.filename)).toEqual([p('child.qcow2'), p('base.qcow2')]);
    expect(chain[1]?.backingFilename).toBeUndefined();
  });

  it('info reports a qcow2 external data file', async () => {
    await qemuImg.create({ format: 'qcow2', path: p('ext.qcow2'), sizeBytes: 16 * MiB, options: { data_file: p('ext.data') } });
    const info = await qemuImg.info({ format: 'qcow2', path: p('ext.qcow2') });
    expect(info.dataFile).toBe(p('ext.data'));
  });

  it('opens the image in the format it is told, never a guessed one', async () => {
    const info = await qemuImg.info({ format: 'raw', path: p('base.qcow2') });
    expect(info.format).toBe('raw');
    expect(info.backingFilename).toBeUndefined();
  });

  it('check: a fresh image is clean; a leaked cluster gives status leaks (exit 3); a lost refcount gives corrupt (exit 2)', async () => {
    await rawWith('data.raw', 8 * MiB, [[0, 'A'], [4 * MiB, 'B']]);
    await qemuImg.convert({ source: { path: p('data.raw'), format: 'raw' }, target: { path: p('chk.qcow2'), format: 'qcow2' } });
    const clean = await qemuImg.check({ format: 'qcow2', path: p('chk.qcow2') });
    expect(clean).toMatchObject({ status: 'clean', exitCode: 0, checkErrors: 0, corruptions: 0, leaks: 0 });
    expect(clean.imageEndOffset).toBeGreaterThan(0);

    // Edit the first refcount block: entries are 16-bit big-endian, one per 64 KiB cluster.
    const img = await readFile(p('chk.qcow2'));
    const rtOffset = Number(img.readBigUInt64BE(48));
    const rbOffset = Number(img.readBigUInt64BE(rtOffset));
    const clusters = Math.ceil(img.length / 65536);

    // Append one cluster nobody references and mark it in use: a leak.
    const leaky = Buffer.concat([img, Buffer.alloc(clusters * 65536 - img.length + 65536)]);
    leaky.writeUInt16BE(1, rbOffset + 2 * clusters);
    await writeFile(p('leak.qcow2'), leaky);
    const leaks = await qemuImg.check({ format: 'qcow2', path: p('leak.qcow2') });
    expect(leaks).toMatchObject({ status: 'leaks', exitCode: 3, corruptions: 0, leaks: 1 });

    const fixed = await qemuImg.check({ format: 'qcow2', path: p('leak.qcow2'), repair: 'leaks' });
    expect(fixed).toMatchObject({ status: 'clean', exitCode: 0, leaksFixed: 1 });

    const corrupt = Buffer.from(img);
    corrupt.writeUInt16BE(0, rbOffset + 2 * (clusters - 1)); // last data cluster "free"
    await writeFile(p('corrupt.qcow2'), corrupt);
    const bad = await qemuImg.check({ format: 'qcow2', path: p('corrupt.qcow2') });
    expect(bad.status).toBe('corrupt');
    expect(bad.exitCode).toBe(2);
    expect(bad.corruptions).toBeGreaterThan(0);
  });

  it('check of a format without checks (vpc) reports unsupported', async () => {
    await qemuImg.create({ format: 'vpc', path: p('v.vhd'), sizeBytes: 10 * MiB });
    expect((await qemuImg.check({ format: 'vpc', path: p('v.vhd') })).status).toBe('unsupported');
  });

  it('measure: required covers the data, fully-allocated covers the whole disk', async () => {
    const m = await qemuImg.measure({ targetFormat: 'qcow2', source: { path: p('data.raw'), format: 'raw' } });
    expect(m.fullyAllocated).toBeGreaterThanOrEqual(8 * MiB);
    expect(m.required).toBeGreaterThanOrEqual(2 * 4096);
    expect(m.required).toBeLessThan(m.fullyAllocated);
    const bySize = await qemuImg.measure({ targetFormat: 'qcow2', sizeBytes: 1024 * MiB });
    expect(bySize.fullyAllocated).toBeGreaterThan(1024 * MiB);
  });

  it('convert raw → qcow2 → raw preserves content, sparse', async () => {
    const src = await rawWith('conv.raw', 32 * MiB, [[0, 'x'], [17 * MiB, 'yz'], [32 * MiB - 4096, 'end!']]);
    await qemuImg.convert({ source: { path: src, format: 'raw' }, target: { path: p('conv.qcow2'), format: 'qcow2' }, sparseSize: 4096 });
    await qemuImg.convert({ source: { path: p('conv.qcow2'), format: 'qcow2' }, target: { path: p('back.raw'), format: 'raw' }, progress: true });
    expect(await sha256(p('back.raw'))).toBe(await sha256(src));
    const q = await qemuImg.info({ format: 'qcow2', path: p('conv.qcow2') });
    expect(q.virtualSize).toBe(32 * MiB);
    expect(q.actualSize).toBeLessThan(4 * MiB);
  });

  it('convert -B writes only the difference; commit merges it down; rebase -u re-points a child', async () => {
    const baseRaw = await rawWith('cb-base.raw', 8 * MiB, [[0, 'a'], [MiB, 'b']]);
    const topRaw = await rawWith('cb-top.raw', 8 * MiB, [[0, 'a'], [MiB, 'c'], [6 * MiB, 'd']]);
    await qemuImg.convert({ source: { path: baseRaw, format: 'raw' }, target: { path: p('cb-base.qcow2'), format: 'qcow2' } });
    const base: qemuImg.QemuImage = { path: p('cb-base.qcow2'), format: 'qcow2' };
    const top: qemuImg.QemuImage = { path: p('cb-top.qcow2'), format: 'qcow2' };
    await qemuImg.convert({ source: { path: topRaw, format: 'raw' }, target: top, backing: base });

    expect((await qemuImg.info(top)).backingFilename).toBe(base.path);
    expect(await contentOf(top)).toBe(await sha256(topRaw));
    expect(await contentOf(base)).toBe(await sha256(baseRaw));

    // rebase -u: make a copy of base and point top at it; content is unchanged since the copy is identical.
    await qemuImg.convert({ source: base, target: { path: p('cb-copy.qcow2'), format: 'qcow2' } });
    await qemuImg.rebase({ ...top, unsafe: true, backing: { path: p('cb-copy.qcow2'), format: 'qcow2' } });
    const rebased = await qemuImg.info(top);
    expect(rebased.backingFilename).toBe(p('cb-copy.qcow2'));
    expect(rebased.backingFormat).toBe('qcow2');
    expect(await contentOf(top)).toBe(await sha256(topRaw));

    await qemuImg.commit(top);
    expect(await contentOf({ path: p('cb-copy.qcow2'), format: 'qcow2' })).toBe(await sha256(topRaw));

    // rebase to standalone keeps content by copying the backing data into the image.
    await qemuImg.rebase({ ...top, backing: null });
    expect((await qemuImg.info(top)).backingFilename).toBeUndefined();
    expect(await contentOf(top)).toBe(await sha256(topRaw));
  });

  it('resize grows a qcow2 image; shrinking without shrink: true fails', async () => {
    await qemuImg.create({ format: 'qcow2', path: p('rs.qcow2'), sizeBytes: 64 * MiB });
    await qemuImg.resize({ format: 'qcow2', path: p('rs.qcow2'), sizeBytes: 128 * MiB });
    expect((await qemuImg.info({ format: 'qcow2', path: p('rs.qcow2') })).virtualSize).toBe(128 * MiB);

    await qemuImg.create({ format: 'raw', path: p('rs.raw'), sizeBytes: 8 * MiB });
    await expect(qemuImg.resize({ format: 'raw', path: p('rs.raw'), sizeBytes: 4 * MiB })).rejects.toThrow(/--shrink/);
    await qemuImg.resize({ format: 'raw', path: p('rs.raw'), sizeBytes: 4 * MiB, shrink: true });
    expect((await qemuImg.info({ format: 'raw', path: p('rs.raw') })).virtualSize).toBe(4 * MiB);
  });

  it('a failing call raises ToolError naming the command line, exit code and stderr', async () => {
    const missing = p('missing.qcow2');
    const err = (await qemuImg.info({ format: 'qcow2', path: missing }).catch((e: unknown) => e)) as ToolError;
    expect(err).toBeInstanceOf(ToolError);
    expect(err.command).toEqual(['qemu-img', 'info', '-f', 'qcow2', '--output=json', missing]);
    expect(err.exitCode).toBe(1);
    expect(err.stderr).toContain('Could not open');
    expect(err.message).toContain(`qemu-img info -f qcow2 --output=json ${missing}: exited with code 1: qemu-img: Could not open`);
  });
});
