// Crash safety of a value update, on every format: bin/image-meta is killed
// (SIGKILL via SM_FIST=<point>) after each step of the update, with the real
// writes done before that point (for qcow2 also a torn half-written slot).
// Afterwards a reader sees exactly the old or the new value, the image is
// still valid (qemu-img check; the backing chain still resolves), QEMU can
// open it for writing again (our lock went with the killed process), and
// the next update works.
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { join } from 'node:path';
import { opsFor } from '../../src/sdk/formats/index.js';
import { readEffective, readOwn, setOwn } from '../../src/sdk/image-meta/index.js';
import { IMAGE_META_FIST_POINTS } from '../../src/sdk/image-meta/fist.js';
import { checkClean, qemuImg, qemuIo, runBin, tmpDir } from './helpers.js';

const OLD = '{"qemu.machine-types":["pc"],"qemu.min-ram-MB":512}';
const NEW = '{"qemu.machine-types":["q35"],"qemu.min-ram-MB":4096,"com.example.release":"2026.11"}';
const NEXT = '{"com.example.after":true}';

let t: ReturnType<typeof tmpDir> | undefined;
afterEach(() => {
  t?.cleanup();
  t = undefined;
});

async function killedSet(path: string, value: string, point: string): Promise<void> {
  const r = await runBin(['set', path, '--json', value], { SM_FIST: point });
  expect(r.signal, `image-meta set with SM_FIST=${point} should have been killed (${r.stderr})`).toBe('SIGKILL');
}

/** QEMU's locks were held by our helper; it exits when the killed writer's pipe closes. */
async function lockReleased(path: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const r = await execa('qemu-img', ['info', path], { reject: false });
    if (r.exitCode === 0) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`${path} is still locked 5 s after the writer was killed`);
}

const points = (prefix: string) => IMAGE_META_FIST_POINTS.filter((p) => p.startsWith(prefix));

describe('qcow2: killed during an update of an existing value', () => {
  const expected: Record<string, string> = {
    'image-meta-qcow2-locked': OLD,
    'image-meta-qcow2-slot-torn': OLD,
    'image-meta-qcow2-slot-written': NEW,
  };
  it.each(Object.keys(expected))('killed at %s', async (point) => {
    t = tmpDir();
    const p = join(t.dir, 'disk.qcow2');
    await qemuImg(['create', '-q', '-f', 'qcow2', p, '64M']);
    await setOwn({ path: p, format: 'qcow2' }, OLD);
    await setOwn({ path: p, format: 'qcow2' }, OLD.replace('512', '768')); // both slots valid now
    await setOwn({ path: p, format: 'qcow2' }, OLD);
    await killedSet(p, NEW, point);
    expect(await readOwn({ path: p, format: 'qcow2' })).toBe(expected[point]);
    await lockReleased(p);
    await checkClean(p);
    await qemuIo(p, ['write 0 64k']);
    await setOwn({ path: p, format: 'qcow2' }, NEXT);
    expect(await readOwn({ path: p, format: 'qcow2' })).toBe(NEXT);
    await checkClean(p);
  });
});

describe('qcow2: killed while the extension is first added (the image inherits until then)', () => {
  it.each(points('image-meta-qcow2-create-'))('killed at %s', async (point) => {
    t = tmpDir();
    const base = join(t.dir, 'base.qcow2');
    const top = join(t.dir, 'top.qcow2');
    await qemuImg(['create', '-q', '-f', 'qcow2', base, '64M']);
    await setOwn({ path: base, format: 'qcow2' }, OLD);
    await qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', top]);
    await qemuIo(top, ['write -P 0x42 0 64k']);
    await killedSet(top, NEW, point);
    const eff = await readEffective({ path: top, format: 'qcow2' }, { full: true });
    expect(eff.text).toBe(point === 'image-meta-qcow2-create-linked' ? NEW : OLD);
    expect(eff.chain.map((l) => l.image.path)).toEqual([top, base]);
    await lockReleased(top);
    await checkClean(top);
    expect(await qemuImg(['info', '--backing-chain', top])).toMatch(/backing file: base\.qcow2/);
    await qemuIo(top, ['read -P 0x42 0 64k']);
    await setOwn({ path: top, format: 'qcow2' }, NEXT);
    expect((await readEffective({ path: top, format: 'qcow2' })).text).toBe(NEXT);
    await checkClean(top);
  });
});

describe.each(['vhd', 'raw'] as const)('%s sidecar: killed during an update', (format) => {
  const expected: Record<string, string> = {
    'image-meta-sidecar-written': OLD,
    'image-meta-sidecar-synced': OLD,
    'image-meta-sidecar-renamed': NEW,
  };
  it.each(Object.keys(expected))('killed at %s (with and without an old value)', async (point) => {
    t = tmpDir();
    for (const hadOld of [true, false]) {
      const p = join(t.dir, `disk-${hadOld}.${format}`);
      await opsFor(format).create(p, 8 * 1024 * 1024);
      if (hadOld) await setOwn({ path: p, format }, OLD);
      await killedSet(p, NEW, point);
      const want = expected[point] === OLD ? (hadOld ? OLD : null) : NEW;
      expect(await readOwn({ path: p, format })).toBe(want);
      expect((await opsFor(format).info(p)).virtualSize).toBe(8 * 1024 * 1024);
      await setOwn({ path: p, format }, NEXT);
      expect(await readOwn({ path: p, format })).toBe(NEXT);
    }
  });
});
