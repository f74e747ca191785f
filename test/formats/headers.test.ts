// The in-process header readers (qcow2 first cluster, VHD footer/header) and the
// qcow2 hidden extension, checked against what qemu-img itself reads and keeps.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SRError } from '../../src/sdk/errors/sr-error.js';
import { contentSha256, opsFor, readRange, scanDirectory, writeRange } from '../../src/sdk/formats/index.js';
import { EXT_HIDDEN, Qcow2HeaderError, parseQcow2Header, readQcow2Header } from '../../src/sdk/formats/qcow2-header.js';
import { readVhdHeader } from '../../src/sdk/formats/vhd-header.js';
import * as qemuImg from '../../src/sdk/tools/qemu-img.js';
import { recordToolCalls } from '../../src/sdk/tools/run.js';
import { MiB, freshDir, pattern, requireVhdUtil, useTempRoot } from './helpers.js';

const root = useTempRoot();
requireVhdUtil();

describe('qcow2 header reader', () => {
  it('reads what qemu-img info reports: size, cluster size, backing file and format', async () => {
    const dir = freshDir(root());
    await qemuImg.create({ path: join(dir, 'b.qcow2'), format: 'qcow2', sizeBytes: 5 * MiB, clusterSize: 131072 });
    await opsFor('qcow2').snapshot({ path: join(dir, 'b.qcow2'), format: 'qcow2' }, join(dir, 'c.qcow2'));
    const h = readQcow2Header(join(dir, 'c.qcow2'));
    const q = await qemuImg.info({ path: join(dir, 'c.qcow2'), format: 'qcow2' });
    expect(h.virtualSize).toBe(q.virtualSize);
    expect(h.clusterSize).toBe(131072); // the child took its parent's cluster size
    expect(h.clusterSize).toBe(q.clusterSize);
    expect(h.backingFile).toBe(q.backingFilename);
    expect(h.backingFormat).toBe(q.backingFormat);
    expect(h.hidden).toBe(false);
  });

  it.each([
    ['junk', Buffer.alloc(4096, 0x41), 'bad magic'],
    ['truncated', Buffer.from([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]), 'at least 72'],
    ['version 4', (() => { const b = Buffer.alloc(512); b.writeUInt32BE(0x514649fb, 0); b.writeUInt32BE(4, 4); return b; })(), 'version 4'],
  ])('refuses a %s header, naming the image and the reason', (_name, buf, why) => {
    expect(() => parseQcow2Header(buf, '/sr/x.qcow2')).toThrow(Qcow2HeaderError);
    expect(() => parseQcow2Header(buf, '/sr/x.qcow2')).toThrow(new RegExp(`/sr/x\\.qcow2.*${why}`));
  });

  it('a snapshot of a corrupt qcow2 parent is VDISnapshot naming it', async () => {
    const dir = freshDir(root());
    writeFileSync(join(dir, 'bad.qcow2'), Buffer.alloc(4096, 0x41));
    const e = await opsFor('qcow2').snapshot({ path: join(dir, 'bad.qcow2'), format: 'qcow2' }, join(dir, 'c.qcow2')).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SRError);
    expect((e as SRError).key).toBe('VDISnapshot');
    expect((e as SRError).message).toContain(join(dir, 'bad.qcow2'));
  });
});

describe('qcow2 hidden extension (XCP-ng 0x76617465)', () => {
  it('on an image with a backing file: qemu-img still sees the backing file, check is clean, and the flag survives resize, rebase and commit', async () => {
    const dir = freshDir(root());
    const qcow2 = opsFor('qcow2');
    const base = { path: join(dir, 'base.qcow2'), format: 'qcow2' as const };
    const mid = { path: join(dir, 'mid.qcow2'), format: 'qcow2' as const };
    const leaf = { path: join(dir, 'leaf.qcow2'), format: 'qcow2' as const };
    await qcow2.create(base.path, 8 * MiB);
    await qcow2.snapshot(base, mid.path);
    await writeRange(mid, MiB, pattern(MiB, 41));
    await qcow2.snapshot(mid, leaf.path);
    const before = await contentSha256(leaf);

    await qcow2.setHidden(mid.path, true);
    const h = readQcow2Header(mid.path);
    expect(h.extensions.filter((e) => e.type === EXT_HIDDEN)).toHaveLength(1);
    expect(h.extensions.find((e) => e.type === EXT_HIDDEN)!.data).toEqual(Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]));
    const info = await qemuImg.info({ path: mid.path, format: 'qcow2' });
    expect(info.backingFilename).toBe('base.qcow2');
    expect(info.backingFormat).toBe('qcow2');
    expect((await qemuImg.check({ path: mid.path, format: 'qcow2' })).status).toBe('clean');
    expect(await contentSha256(leaf)).toBe(before);

    // qemu rewrites the header on each of these; unknown extensions must be kept.
    await qemuImg.resize({ path: mid.path, format: 'qcow2', sizeBytes: 10 * MiB });
    expect(readQcow2Header(mid.path).hidden).toBe(true);
    await qemuImg.rebase({ path: mid.path, format: 'qcow2', unsafe: true, backing: { path: 'base.qcow2', format: 'qcow2' } });
    expect(readQcow2Header(mid.path).hidden).toBe(true);
    await qcow2.setHidden(base.path, true);
    await qcow2.coalesce(mid.path);
    expect(readQcow2Header(base.path).hidden).toBe(true);
    expect(readQcow2Header(mid.path).hidden).toBe(true);

    // Setting it twice or clearing it keeps exactly one extension.
    await qcow2.setHidden(mid.path, true);
    await qcow2.setHidden(mid.path, false);
    expect(readQcow2Header(mid.path).extensions.filter((e) => e.type === EXT_HIDDEN)).toHaveLength(1);
    expect(await qcow2.getHidden(mid.path)).toBe(false);
    expect((await qemuImg.check({ path: mid.path, format: 'qcow2' })).status).toBe('clean');
  });
});

describe('VHD header reader', () => {
  it('reads exact size, type, raw-parent flag and every locator', async () => {
    const dir = freshDir(root());
    const vhd = opsFor('vhd');
    await vhd.create(join(dir, 'b.vhd'), 6 * MiB);
    await vhd.snapshot({ path: join(dir, 'b.vhd'), format: 'vhd' }, join(dir, 'c.vhd'));
    await opsFor('raw').create(join(dir, 'r.raw'), 4 * MiB);
    await vhd.snapshot({ path: join(dir, 'r.raw'), format: 'raw' }, join(dir, 'onraw.vhd'));
    expect(readVhdHeader(join(dir, 'b.vhd'))).toMatchObject({ diskType: 'dynamic', currentSize: 6 * MiB, parentIsRaw: false, locators: [] });
    const c = readVhdHeader(join(dir, 'c.vhd'));
    expect(c).toMatchObject({ diskType: 'differencing', currentSize: 6 * MiB, parentName: 'b.vhd', parentIsRaw: false });
    expect(c.locators.map((l) => [l.code, l.stored, l.resolved])).toEqual([
      ['MacX', './b.vhd', join(dir, 'b.vhd')],
      ['W2ku', './b.vhd', join(dir, 'b.vhd')],
      ['W2ru', './b.vhd', join(dir, 'b.vhd')],
    ]);
    expect(readVhdHeader(join(dir, 'onraw.vhd'))).toMatchObject({ parentIsRaw: true, parentName: 'r.raw' });
  });
});

describe('edge cases', () => {
  it('scans a directory whose name has glob characters (file list, still one process)', async () => {
    const dir = join(freshDir(root()), 'sr[1]');
    mkdirSync(dir);
    await opsFor('vhd').create(join(dir, 'a.vhd'), 2 * MiB);
    await opsFor('qcow2').create(join(dir, 'b.qcow2'), 2 * MiB);
    const rec = recordToolCalls();
    const records = await scanDirectory(dir);
    rec.stop();
    expect(records.map((r) => (r.kind === 'image' ? r.info.path : `error ${r.path}`))).toEqual([join(dir, 'a.vhd'), join(dir, 'b.qcow2')]);
    expect(rec.argvs().map((a) => a.slice(1))).toEqual([['scan', '-f', '-c', join(dir, 'a.vhd')]]);
  });

  it('reads a VHD range larger than one 32 MiB piece', async () => {
    const dir = freshDir(root());
    const ref = { path: join(dir, 'big.vhd'), format: 'vhd' as const };
    await opsFor('vhd').create(ref.path, 48 * MiB);
    const data = pattern(40 * MiB, 51);
    await writeRange(ref, 2 * MiB, data);
    expect((await readRange(ref, 2 * MiB, data.length)).equals(data)).toBe(true);
  });

  it('refuses a read past the virtual size, naming it', async () => {
    const dir = freshDir(root());
    const ref = { path: join(dir, 'x.qcow2'), format: 'qcow2' as const };
    await opsFor('qcow2').create(ref.path, MiB);
    await expect(readRange(ref, MiB - 10, 20)).rejects.toThrow(/outside .*x\.qcow2 \(virtual size 1048576 bytes\)/);
  });
});
