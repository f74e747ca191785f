// The qcow2 header extension against real qemu-img 7.2 and qemu-io: every
// in-place operation keeps it (and `qemu-img check` stays clean), `convert`
// drops it and our re-application restores it, the fullest header we allow
// still opens and leaves QEMU room, and QEMU's own image locks keep us and a
// QEMU writer apart.
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  clearOwn, ImageMetaError, lockArgv, readEffective, readOwn, readQcow2MetaState, reapplyAfterCopy, setOwn, slotCapFor,
  withQemuWriteLock, EXT_IMAGE_META,
} from '../../src/sdk/image-meta/index.js';
import { readQcow2Header } from '../../src/sdk/formats/qcow2-header.js';
import { checkClean, fingerprint, holdOpen, qemuImg, qemuIo, tmpDir } from './helpers.js';

const V1 = '{"qemu.machine-types":["q35","i440fx"],"qemu.min-ram-MB":1024}';
const V2 = '{"qemu.machine-types":["q35"],"qemu.min-ram-MB":2048,"com.example.build":7}';

let t: ReturnType<typeof tmpDir> | undefined;
afterEach(() => {
  t?.cleanup();
  t = undefined;
});

const q = (path: string) => ({ path, format: 'qcow2' as const });

async function fresh(name = 'disk.qcow2', opts: string[] = []): Promise<string> {
  t ??= tmpDir();
  const p = join(t.dir, name);
  await qemuImg(['create', '-q', '-f', 'qcow2', ...opts, p, '64M']);
  return p;
}

describe('qcow2 header extension through qemu-img operations', () => {
  const ops: [string, (p: string) => Promise<void>][] = [
    ['check -r all', async (p) => void (await qemuImg(['check', '-r', 'all', '-f', 'qcow2', p]))],
    ['info', async (p) => void (await qemuImg(['info', '-f', 'qcow2', p]))],
    ['resize +1G', async (p) => void (await qemuImg(['resize', '-q', '-f', 'qcow2', p, '+1G']))],
    ['resize --shrink', async (p) => void (await qemuImg(['resize', '-q', '-f', 'qcow2', '--shrink', p, '32M']))],
    ['amend compat=0.10 then 1.1', async (p) => {
      await qemuImg(['amend', '-f', 'qcow2', '-o', 'compat=0.10', p]);
      await qemuImg(['amend', '-f', 'qcow2', '-o', 'compat=1.1', p]);
    }],
    ['amend lazy_refcounts=on + qemu-io writes', async (p) => {
      await qemuImg(['amend', '-f', 'qcow2', '-o', 'lazy_refcounts=on', p]);
      await qemuIo(p, ['write -P 0x5a 0 1M', 'discard 0 64k', 'write 8M 64k']);
    }],
    ['snapshot -c / -l / -a / -d', async (p) => {
      await qemuImg(['snapshot', '-c', 's1', p]);
      await qemuIo(p, ['write -P 0x11 0 64k']);
      await qemuImg(['snapshot', '-l', p]);
      await qemuImg(['snapshot', '-a', 's1', p]);
      await qemuImg(['snapshot', '-d', 's1', p]);
    }],
    ['bitmap --add / --remove', async (p) => {
      await qemuImg(['bitmap', '--add', p, 'b0']);
      await qemuIo(p, ['write 0 64k']);
      await qemuImg(['bitmap', '--remove', p, 'b0']);
    }],
    ['qemu-io guest writes', async (p) => qemuIo(p, ['write -P 0xab 0 2M', 'write -z 4M 1M', 'flush'])],
  ];

  it.each(ops)('%s keeps the value; check stays clean; updates still work afterwards', async (_name, op) => {
    const p = await fresh();
    await qemuIo(p, ['write -P 0x33 0 256k']);
    await setOwn(q(p), V1);
    await checkClean(p);
    await op(p);
    expect(await readOwn(q(p))).toBe(V1);
    await checkClean(p);
    await setOwn(q(p), V2);
    expect(await readOwn(q(p))).toBe(V2);
    await checkClean(p);
  });

  it('rebase (unsafe and safe) and commit keep both images\' values; a new overlay inherits', async () => {
    const base = await fresh('base.qcow2');
    const other = await fresh('other.qcow2');
    await qemuIo(base, ['write -P 0x01 0 1M']);
    await setOwn(q(base), V1);
    const top = join(t!.dir, 'top.qcow2');
    await qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', top]);
    // A new overlay has no extension of its own: it inherits.
    expect(await readOwn(q(top))).toBeNull();
    expect((await readEffective(q(top))).text).toBe(V1);
    await setOwn(q(top), V2); // adds the extension and moves the backing name after it
    await checkClean(top);
    expect((await qemuImg(['info', '--backing-chain', top])).match(/^image:/gm)).toHaveLength(2);
    await qemuImg(['rebase', '-u', '-b', 'other.qcow2', '-F', 'qcow2', top]);
    expect(await readOwn(q(top))).toBe(V2);
    await qemuImg(['rebase', '-b', 'base.qcow2', '-F', 'qcow2', top]);
    expect(await readOwn(q(top))).toBe(V2);
    expect(readQcow2Header(top).backingFile).toBe('base.qcow2');
    await qemuIo(top, ['write -P 0x02 1M 1M']);
    await qemuImg(['commit', '-q', '-f', 'qcow2', top]);
    expect(await readOwn(q(top))).toBe(V2);
    expect(await readOwn(q(base))).toBe(V1);
    await checkClean(top);
    await checkClean(base);
    await qemuImg(['rebase', '-b', '', top]); // flatten
    expect(await readOwn(q(top))).toBe(V2);
    await checkClean(top);
    expect(await readOwn(q(other))).toBeNull();
  });

  it('convert drops the value; re-applying the source\'s effective value restores it', async () => {
    const base = await fresh('base.qcow2');
    await setOwn(q(base), V1);
    const top = join(t!.dir, 'top.qcow2');
    await qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', top]);
    const copy = join(t!.dir, 'copy.qcow2');
    await qemuImg(['convert', '-f', 'qcow2', '-O', 'qcow2', top, copy]);
    expect(await readOwn(q(copy))).toBeNull();
    expect(await reapplyAfterCopy(q(top), q(copy))).toBe(V1);
    expect(await readOwn(q(copy))).toBe(V1);
    await checkClean(copy);
  });

  it('clearing keeps the extension but removes the own value (inherit again); {} is a value', async () => {
    const base = await fresh('base.qcow2');
    await setOwn(q(base), V1);
    const top = join(t!.dir, 'top.qcow2');
    await qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', top]);
    await setOwn(q(top), '{}');
    expect((await readEffective(q(top))).text).toBe('{}');
    await clearOwn(q(top));
    expect(await readOwn(q(top))).toBeNull();
    expect((await readEffective(q(top))).text).toBe(V1);
    expect(readQcow2Header(top).extensions.some((e) => e.type === EXT_IMAGE_META)).toBe(true);
    await checkClean(top);
  });
});

describe('the fullest header we allow', () => {
  // A backing name of exactly 1023 bytes (qcow2's maximum) made of "./" steps.
  const longName = (file: string) => `${'./'.repeat(Math.floor((1023 - file.length) / 2))}${(1023 - file.length) % 2 ? '/' : ''}${file}`;

  it.each([4096, 65536])('%i-byte clusters, 1023-byte backing name, a full slot: opens, checks, rebases, adds a bitmap, resizes', async (cluster) => {
    const base = await fresh('base.qcow2');
    await fresh('other.qcowX', []); // a second backing candidate
    const name = longName('base.qcow2');
    expect(name.length).toBe(1023);
    const top = join(t!.dir, 'top.qcow2');
    await qemuImg(['create', '-q', '-f', 'qcow2', '-o', `cluster_size=${cluster}`, '-b', name, '-F', 'qcow2', top]);
    const cap = slotCapFor(cluster);
    const full = `{"com.example.pad":"${'x'.repeat(cap - 22)}"}`;
    expect(Buffer.byteLength(full)).toBe(cap);
    await setOwn(q(top), full);
    await checkClean(top);
    expect(await qemuImg(['info', '--backing-chain', top])).toContain('base.qcow2');
    await qemuImg(['rebase', '-u', '-b', longName('other.qcowX'), '-F', 'qcow2', top]);
    await qemuImg(['bitmap', '--add', top, 'b0']);
    expect(JSON.parse(await qemuImg(['info', '--output=json', top]))['format-specific'].data.bitmaps).toHaveLength(1);
    await qemuImg(['resize', '-q', top, '+64M']);
    await checkClean(top);
    expect(await readOwn(q(top))).toBe(full);
    const one = `{"com.example.pad":"${'x'.repeat(cap - 21)}"}`;
    const before = fingerprint(top);
    await expect(setOwn(q(top), one)).rejects.toThrow(new RegExp(`at most ${cap}`));
    expect(fingerprint(top)).toBe(before);
    expect(base).toBeTruthy();
  });

  it('512-byte clusters are refused with a clear error; the image is unchanged', async () => {
    const p = await fresh('small.qcow2', ['-o', 'cluster_size=512']);
    const before = fingerprint(p);
    const e = await setOwn(q(p), V1).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ImageMetaError);
    expect((e as ImageMetaError).message).toMatch(/512-byte clusters.*at least 4096/);
    expect(fingerprint(p)).toBe(before);
  });
});

describe('QEMU image locks', () => {
  it('refuses to write while a QEMU process has the image open for writing; the image is unchanged', async () => {
    const p = await fresh();
    await setOwn(q(p), V1);
    const holder = await holdOpen(p);
    try {
      const before = fingerprint(p);
      const e = await setOwn(q(p), V2).catch((x: unknown) => x);
      expect((e as ImageMetaError).reason).toBe('busy');
      expect((e as Error).message).toMatch(/open for writing \(QEMU lock byte 101\)/);
      expect(fingerprint(p)).toBe(before);
      // Reading needs no lock.
      expect(await readOwn(q(p))).toBe(V1);
    } finally {
      await holder.stop();
    }
    await setOwn(q(p), V2);
    expect(await readOwn(q(p))).toBe(V2);
  });

  it('while we update, QEMU cannot open the image for writing', async () => {
    const p = await fresh();
    const r = await withQemuWriteLock(p, async () => execa('qemu-io', ['-f', 'qcow2', '-c', 'write 0 512', p], { reject: false }));
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/Failed to get "write" lock/);
    // And afterwards it can.
    await qemuIo(p, ['write 0 512']);
  });

  it('golden argv of the lock helper', () => {
    const fixture = parseYaml(readFileSync(join(import.meta.dirname, 'fixtures', 'golden-argv.yaml'), 'utf8')) as { lock: string[] };
    expect(lockArgv('/srv/images/disk.qcow2')).toEqual(fixture.lock);
  });
});

describe('slots', () => {
  it('updates alternate between the two slots with rising generations', async () => {
    const p = await fresh();
    await setOwn(q(p), V1);
    await setOwn(q(p), V2);
    await setOwn(q(p), '{}');
    const s = readQcow2MetaState(p)!;
    expect(s.slotCap).toBe(4096);
    expect(s.slots.map((x) => [x.index, x.slot.gen, x.slot.value])).toEqual([[0, 3n, '{}'], [1, 2n, V2]]);
  });
});
