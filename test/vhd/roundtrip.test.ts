// Random patterns at random offsets through a chain of depth 4, snapshots,
// coalesce and export, checked against an in-test model of the virtual disk.
// Seeded: a failure names its seed and replays identically.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { MiB, ok, prng, randomBuffer, tempDir, vhdUtil } from './helpers.js';

const SIZE = 24 * MiB;
let t: ReturnType<typeof tempDir>;
beforeAll(() => {
  t = tempDir('rt');
});
afterAll(() => t.cleanup());

class Model {
  readonly bytes = Buffer.alloc(SIZE);
  write(off: number, data: Buffer) {
    data.copy(this.bytes, off);
  }
}

/** A handful of writes: odd offsets and lengths, some crossing block boundaries, some whole blocks. */
function randomWrites(rand: () => number, vhd: string, model: Model, n: number) {
  for (let i = 0; i < n; i++) {
    const kind = rand();
    let off: number;
    let len: number;
    if (kind < 0.15) {
      off = Math.floor(rand() * (SIZE / (2 * MiB))) * 2 * MiB;
      len = 2 * MiB; // a whole block: batmap bit
    } else if (kind < 0.4) {
      off = 2 * MiB * (1 + Math.floor(rand() * 10)) - Math.floor(rand() * 8192);
      len = 1 + Math.floor(rand() * 16384); // straddles a block boundary
    } else {
      off = Math.floor(rand() * (SIZE - 70000));
      len = 1 + Math.floor(rand() * 65536);
    }
    len = Math.min(len, SIZE - off);
    const data = randomBuffer(rand, len);
    ok(['write', '-n', vhd, '-o', String(off)], { input: data });
    model.write(off, data);
  }
}

function exported(vhd: string): Buffer {
  const out = `${vhd}.raw`;
  ok(['export', '-n', vhd, '-o', out]);
  expect(statSync(out).size).toBe(SIZE);
  return readFileSync(out);
}

function expectSame(actual: Buffer, model: Model, what: string) {
  if (actual.equals(model.bytes)) return;
  let i = 0;
  while (actual[i] === model.bytes[i]) i++;
  expect.fail(`${what}: first difference at byte ${i} (got ${actual[i]}, want ${model.bytes[i]})`);
}

describe.each([1, 2, 3])('seed %i', (seed) => {
  it('chain of depth 4: write, snapshot, write, coalesce, export', () => {
    const rand = prng(seed * 7919);
    const d = t.dir;
    const model = new Model();
    const names = [0, 1, 2, 3].map((i) => join(d, `s${seed}-l${i}.vhd`));
    ok(['create', '-n', names[0]!, '-s', String(SIZE / MiB)]);
    randomWrites(rand, names[0]!, model, 6);
    for (let i = 1; i < 4; i++) {
      ok(['snapshot', '-n', names[i]!, '-p', names[i - 1]!]);
      const snapModel = Buffer.from(model.bytes);
      randomWrites(rand, names[i]!, model, 6);
      // the parent still reads as it was when snapshotted
      expectSame(exported(names[i - 1]!), { bytes: snapModel } as Model, `parent ${i - 1} after child writes`);
    }
    expect(ok(['query', '-n', names[3]!, '-d'])).toBe('chain depth: 4\n');
    expectSame(exported(names[3]!), model, 'top of chain');
    const viaRead = vhdUtil(['read', '-n', names[3]!, '-r', '0', '-c', String(SIZE / 512)]).raw;
    expectSame(viaRead, model, 'read -r of the chain');
    for (const n of names) expect(vhdUtil(['check', '-n', n]).status).toBe(0);

    // coalesce the top into its parent: the parent now holds the whole chain view
    const r = vhdUtil(['coalesce', '-n', names[3]!]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Coalesced \d+ sectors$/);
    expectSame(exported(names[2]!), model, 'parent after coalesce');
    // and again down the chain
    ok(['coalesce', '-n', names[2]!]);
    ok(['coalesce', '-n', names[1]!]);
    expectSame(exported(names[0]!), model, 'base after coalescing everything');
    expect(ok(['check', '-n', names[0]!])).toBe(`${names[0]} is valid\n`);
    // more writes after the coalesce still work on the base
    randomWrites(rand, names[0]!, model, 4);
    expectSame(exported(names[0]!), model, 'base after more writes');
  });
});

describe('raw parents and sparse export', () => {
  it('a child of a raw file reads through to it; coalesce writes into the raw file', () => {
    const rand = prng(99);
    const raw = join(t.dir, 'parent.raw');
    const base = randomBuffer(rand, 8 * MiB);
    writeFileSync(raw, base);
    const child = join(t.dir, 'rawchild.vhd');
    ok(['snapshot', '-n', child, '-p', raw, '-m']);
    expect(ok(['query', '-n', child, '-v', '-d'])).toBe('8\nchain depth: 2\n');
    const model = new Model();
    base.copy(model.bytes);
    const patchData = randomBuffer(rand, 5000);
    ok(['write', '-n', child, '-o', '123456'], { input: patchData });
    patchData.copy(model.bytes, 123456);
    const outFile = `${child}.raw`;
    ok(['export', '-n', child, '-o', outFile]);
    expect(readFileSync(outFile).equals(model.bytes.subarray(0, 8 * MiB))).toBe(true);
    expect(ok(['coalesce', '-n', child])).toBe('Coalesced 10 sectors');
    expect(readFileSync(raw).equals(model.bytes.subarray(0, 8 * MiB))).toBe(true);
  });

  it('export to a file leaves holes where nothing is allocated', () => {
    const v = join(t.dir, 'sparse.vhd');
    ok(['create', '-n', v, '-s', '1024']);
    ok(['write', '-n', v, '-o', String(512 * MiB)], { input: Buffer.alloc(4096, 1) });
    const out = join(t.dir, 'sparse.raw');
    ok(['export', '-n', v, '-o', out]);
    const st = statSync(out);
    expect(st.size).toBe(1024 * MiB);
    expect(st.blocks * 512).toBeLessThan(8 * MiB);
  });
});

describe('coalesce options', () => {
  it('-p prints progress per BAT entry, then the Coalesced line', () => {
    const base = join(t.dir, 'pb.vhd');
    const child = join(t.dir, 'pc.vhd');
    ok(['create', '-n', base, '-s', '100']);
    ok(['snapshot', '-n', child, '-p', base]);
    ok(['write', '-n', child, '-o', String(3 * MiB)], { input: Buffer.alloc(4096, 9) });
    const out = ok(['coalesce', '-p', '-n', child]);
    const steps = Array.from({ length: 50 }, (_, i) => `\r${(i * 2).toFixed(2).padStart(6)}%`).join('');
    expect(out).toBe(`${steps}\r100.00%\nCoalesced 8 sectors`);
  });
  it('-s announces sparse writes and leaves new parent blocks unfilled', () => {
    const base = join(t.dir, 'sb.vhd');
    const child = join(t.dir, 'sc.vhd');
    ok(['create', '-n', base, '-s', '100']);
    ok(['snapshot', '-n', child, '-p', base]);
    ok(['write', '-n', child, '-o', String(3 * MiB)], { input: Buffer.alloc(4096, 9) });
    expect(ok(['coalesce', '-s', '-n', child])).toBe('opening for sparse writes\nCoalesced 8 sectors');
    expect(statSync(base).blocks * 512).toBeLessThan(64 * 1024);
    const r = vhdUtil(['read', '-n', base, '-R', String(3 * MiB - 1), '-c', '2']).raw;
    expect([...r]).toEqual([0, 9]);
    expect(ok(['check', '-n', base])).toBe(`${base} is valid\n`);
  });
});
