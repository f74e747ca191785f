// scanDirectory over a mixed directory with corrupt images, and checkSafe
// refusing images whose metadata points outside the SR.
import { mkdirSync, openSync, closeSync, readFileSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SRError } from '../../src/sdk/errors/sr-error.js';
import { checkSafe, opsFor, scanDirectory, writeRange } from '../../src/sdk/formats/index.js';
import { EXT_BACKING_FORMAT } from '../../src/sdk/formats/qcow2-header.js';
import * as qemuImg from '../../src/sdk/tools/qemu-img.js';
import * as vhdUtil from '../../src/sdk/tools/vhd-util.js';
import { recordToolCalls } from '../../src/sdk/tools/run.js';
import { MiB, freshDir, pattern, requireVhdUtil, useTempRoot } from './helpers.js';

const root = useTempRoot();
requireVhdUtil();

function refusal(fn: () => void): SRError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(SRError);
  const e = err as SRError;
  expect(e.key).toBe('VDIUnavailable');
  return e;
}

describe('scanDirectory', () => {
  it('reports every image of a mixed directory, and the corrupt ones as errors', async () => {
    const dir = freshDir(root());
    const vhd = opsFor('vhd');
    const qcow2 = opsFor('qcow2');
    await vhd.create(join(dir, 'a.vhd'), 4 * MiB);
    await writeRange({ path: join(dir, 'a.vhd'), format: 'vhd' }, 0, pattern(MiB, 1));
    await vhd.snapshot({ path: join(dir, 'a.vhd'), format: 'vhd' }, join(dir, 'b.vhd'));
    await vhd.setHidden(join(dir, 'a.vhd'), true);
    await qcow2.create(join(dir, 'c.qcow2'), 6 * MiB);
    await qcow2.snapshot({ path: join(dir, 'c.qcow2'), format: 'qcow2' }, join(dir, 'd.qcow2'));
    await opsFor('raw').create(join(dir, 'e.raw'), 3 * MiB);
    await vhd.snapshot({ path: join(dir, 'e.raw'), format: 'raw' }, join(dir, 'f.vhd'));
    writeFileSync(join(dir, 'junk.vhd'), Buffer.alloc(4096, 0x5a));
    writeFileSync(join(dir, 'junk.qcow2'), Buffer.alloc(4096, 0x5a));
    writeFileSync(join(dir, 'notes.txt'), 'not an image');

    const rec = recordToolCalls();
    const records = await scanDirectory(dir);
    rec.stop();
    // One pass: a single vhd-util scan, no per-file processes.
    expect(rec.argvs()).toHaveLength(1);
    expect(rec.argvs()[0]!.slice(1)).toEqual(['scan', '-f', '-c', '-m', join(dir, '*.vhd')]);

    const images = Object.fromEntries(records.flatMap((r) => (r.kind === 'image' ? [[r.info.path.slice(dir.length + 1), r.info]] : [])));
    const errors = records.flatMap((r) => (r.kind === 'error' ? [r] : []));
    expect(Object.keys(images).sort()).toEqual(['a.vhd', 'b.vhd', 'c.qcow2', 'd.qcow2', 'e.raw', 'f.vhd']);
    expect(images['a.vhd']).toMatchObject({ format: 'vhd', virtualSize: 4 * MiB, hidden: true, parent: null });
    expect(images['b.vhd']).toMatchObject({ format: 'vhd', hidden: false, parent: join(dir, 'a.vhd'), parentFormat: 'vhd' });
    expect(images['c.qcow2']).toMatchObject({ format: 'qcow2', virtualSize: 6 * MiB, parent: null });
    expect(images['d.qcow2']).toMatchObject({ format: 'qcow2', parent: join(dir, 'c.qcow2'), parentFormat: 'qcow2' });
    expect(images['e.raw']).toMatchObject({ format: 'raw', virtualSize: 3 * MiB });
    expect(images['f.vhd']).toMatchObject({ parent: join(dir, 'e.raw'), parentFormat: 'raw' });
    expect(errors.map((e) => [e.path, e.format])).toEqual([
      [join(dir, 'junk.qcow2'), 'qcow2'],
      [join(dir, 'junk.vhd'), 'vhd'],
    ]);
    for (const e of errors) expect(e.message.length).toBeGreaterThan(0);
    expect(errors[0]!.message).toContain('bad magic');
  });

  it('an empty directory scans to nothing', async () => {
    expect(await scanDirectory(freshDir(root()))).toEqual([]);
  });
});

describe('checkSafe', () => {
  function srWithOutside(): { sr: string; outside: string } {
    const top = freshDir(root());
    const sr = join(top, 'sr');
    mkdirSync(sr);
    return { sr, outside: top };
  }

  it('accepts a chain that stays inside the SR', async () => {
    const { sr } = srWithOutside();
    await opsFor('qcow2').create(join(sr, 'a.qcow2'), 4 * MiB);
    await opsFor('qcow2').snapshot({ path: join(sr, 'a.qcow2'), format: 'qcow2' }, join(sr, 'b.qcow2'));
    await opsFor('vhd').create(join(sr, 'a.vhd'), 4 * MiB);
    await opsFor('vhd').snapshot({ path: join(sr, 'a.vhd'), format: 'vhd' }, join(sr, 'b.vhd'));
    expect(() => checkSafe({ path: join(sr, 'b.qcow2'), format: 'qcow2' }, sr)).not.toThrow();
    expect(() => checkSafe({ path: join(sr, 'b.vhd'), format: 'vhd' }, sr)).not.toThrow();
  });

  it('refuses a qcow2 whose backing file is ../outside.qcow2', async () => {
    const { sr, outside } = srWithOutside();
    await opsFor('qcow2').create(join(outside, 'outside.qcow2'), 4 * MiB);
    await qemuImg.create({ path: join(sr, 'evil.qcow2'), format: 'qcow2', backing: { path: '../outside.qcow2', format: 'qcow2' } });
    const e = refusal(() => checkSafe({ path: join(sr, 'evil.qcow2'), format: 'qcow2' }, sr));
    expect(e.message).toContain(join(sr, 'evil.qcow2'));
    expect(e.message).toContain('../outside.qcow2');
    expect(e.message).toContain('outside the SR');
  });

  it('refuses an absolute backing file outside the SR, also deeper in the chain', async () => {
    const { sr, outside } = srWithOutside();
    await opsFor('qcow2').create(join(outside, 'outside.qcow2'), 4 * MiB);
    await qemuImg.create({ path: join(sr, 'mid.qcow2'), format: 'qcow2', backing: { path: join(outside, 'outside.qcow2'), format: 'qcow2' } });
    await opsFor('qcow2').snapshot({ path: join(sr, 'mid.qcow2'), format: 'qcow2' }, join(sr, 'leaf.qcow2'));
    const e = refusal(() => checkSafe({ path: join(sr, 'leaf.qcow2'), format: 'qcow2' }, sr));
    expect(e.message).toContain(join(outside, 'outside.qcow2'));
    expect(e.message).toContain(join(sr, 'mid.qcow2'));
  });

  it('refuses a qcow2 with a data-file, even one inside the SR', async () => {
    const { sr } = srWithOutside();
    await qemuImg.create({ path: join(sr, 'd.qcow2'), format: 'qcow2', sizeBytes: 4 * MiB, options: { data_file: join(sr, 'd.data') } });
    const e = refusal(() => checkSafe({ path: join(sr, 'd.qcow2'), format: 'qcow2' }, sr));
    expect(e.message).toContain('data file');
    expect(e.message).toContain(join(sr, 'd.data'));
  });

  it('refuses protocol backing names (json:, nbd:)', async () => {
    const { sr } = srWithOutside();
    await qemuImg.create({ path: join(sr, 'j.qcow2'), format: 'qcow2', sizeBytes: MiB, unsafe: true, backing: { path: 'json:{"file":{"driver":"file","filename":"/etc/passwd"}}', format: 'raw' } });
    await qemuImg.create({ path: join(sr, 'n.qcow2'), format: 'qcow2', sizeBytes: MiB, unsafe: true, backing: { path: 'nbd://localhost:10809/x', format: 'raw' } });
    expect(refusal(() => checkSafe({ path: join(sr, 'j.qcow2'), format: 'qcow2' }, sr)).message).toContain('not a file path');
    expect(refusal(() => checkSafe({ path: join(sr, 'n.qcow2'), format: 'qcow2' }, sr)).message).toContain('nbd://');
  });

  it('refuses a backing file that is a symlink inside the SR pointing outside', async () => {
    const { sr, outside } = srWithOutside();
    await opsFor('raw').create(join(outside, 'secret.raw'), MiB);
    symlinkSync(join(outside, 'secret.raw'), join(sr, 'link.raw'));
    await opsFor('qcow2').snapshot({ path: join(sr, 'link.raw'), format: 'raw' }, join(sr, 's.qcow2'));
    const e = refusal(() => checkSafe({ path: join(sr, 's.qcow2'), format: 'qcow2' }, sr));
    expect(e.message).toContain(`resolves to ${join(outside, 'secret.raw')}`);
  });

  it('refuses a qcow2 whose backing format is not recorded (qemu would probe it)', async () => {
    const { sr } = srWithOutside();
    await opsFor('qcow2').create(join(sr, 'a.qcow2'), MiB);
    await opsFor('qcow2').snapshot({ path: join(sr, 'a.qcow2'), format: 'qcow2' }, join(sr, 'b.qcow2'));
    // Rename the backing-format extension to an unknown type: the name stays, the format is gone.
    const path = join(sr, 'b.qcow2');
    const head = readFileSync(path).subarray(0, 65536);
    const magic = Buffer.alloc(4);
    magic.writeUInt32BE(EXT_BACKING_FORMAT);
    const at = head.indexOf(magic);
    expect(at).toBeGreaterThan(0);
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from([0x12, 0x34, 0x56, 0x78]), 0, 4, at);
    closeSync(fd);
    expect(refusal(() => checkSafe({ path, format: 'qcow2' }, sr)).message).toContain('refusing to guess');
  });

  it('refuses a VHD whose parent is outside the SR', async () => {
    const { sr, outside } = srWithOutside();
    await opsFor('vhd').create(join(outside, 'base.vhd'), 4 * MiB);
    await vhdUtil.snapshot({ path: join(sr, 'child.vhd'), parent: join(outside, 'base.vhd') });
    const e = refusal(() => checkSafe({ path: join(sr, 'child.vhd'), format: 'vhd' }, sr));
    expect(e.message).toContain(join(sr, 'child.vhd'));
    expect(e.message).toContain('../base.vhd');
  });

  it('refuses an image that is itself outside the SR', async () => {
    const { sr, outside } = srWithOutside();
    await opsFor('raw').create(join(outside, 'x.raw'), MiB);
    expect(refusal(() => checkSafe({ path: join(outside, 'x.raw'), format: 'raw' }, sr)).message).toContain('outside the SR directory');
    expect(dirname(join(outside, 'x.raw'))).not.toBe(sr);
  });
});
