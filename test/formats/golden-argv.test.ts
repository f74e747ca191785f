// Golden command lines: the exact argv every format operation runs, recorded
// from real runs (tools/run.ts recorder) and compared with
// test/formats/fixtures/golden-argv.yaml. Paths are normalised: the test
// directory → $DIR, content.ts's temp directories → $TMP, vhd-util → $VHD_UTIL
// (or $VHD_UTIL_EXT for our extension commands, which must use our build).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { vhdUtilExtensionsPath, vhdUtilPath } from '../../src/sdk/env.js';
import { convert, opsFor, readRange, scanDirectory, writeRange } from '../../src/sdk/formats/index.js';
import { dataRuns } from '../../src/sdk/formats/convert.js';
import { qemuIoWriteFileArgv } from '../../src/sdk/formats/tool-extras.js';
import { recordToolCalls } from '../../src/sdk/tools/run.js';
import type { ImageFormat } from '../../src/driver-info.js';
import { MiB, freshDir, pattern, requireVhdUtil, useTempRoot } from './helpers.js';

const root = useTempRoot();
requireVhdUtil();

const FIXTURE = join(import.meta.dirname, 'fixtures', 'golden-argv.yaml');

function normalise(argv: readonly string[], dir: string): string[] {
  const [prog, ...rest] = argv;
  let head = prog!;
  if (rest[0] === 'export' || rest[0] === 'write') {
    expect(prog).toBe(vhdUtilExtensionsPath());
    head = '$VHD_UTIL_EXT';
  } else if (prog === vhdUtilPath()) head = '$VHD_UTIL';
  return [head, ...rest].map((a) =>
    a
      .split(dir).join('$DIR')
      .replace(/\/[^\s]*\/smapi-fmt-[A-Za-z0-9]+/g, '$TMP')
      .replace(/\.(flat|run\d+)-[0-9a-f]{8}/g, '.$1-XXXXXXXX'),
  );
}

/** Run `fn`, returning the normalised argv of every tool call it made. */
async function argvOf(dir: string, fn: () => Promise<unknown>): Promise<string[][]> {
  const rec = recordToolCalls();
  try {
    await fn();
  } finally {
    rec.stop();
  }
  return rec.argvs().map((a) => normalise(a, dir));
}

async function scenario(format: ImageFormat): Promise<Record<string, string[][]>> {
  const dir = freshDir(root());
  const ops = opsFor(format);
  const p = (n: string) => join(dir, `${n}.${format}`);
  const out: Record<string, string[][]> = {};
  out['create'] = await argvOf(dir, () => ops.create(p('base'), 2 * MiB + 1));
  out['writeRange'] = await argvOf(dir, () => writeRange({ path: p('base'), format }, 4096, pattern(8192, 1)));
  out['readRange'] = await argvOf(dir, () => readRange({ path: p('base'), format }, 4096, 8192));
  out['info'] = await argvOf(dir, () => ops.info(p('base')));
  out['setHidden'] = await argvOf(dir, () => ops.setHidden(p('base'), true));
  out['getHidden'] = await argvOf(dir, () => ops.getHidden(p('base')));
  out['resize'] = await argvOf(dir, () => ops.resize(p('base'), 8 * MiB));
  if (format !== 'raw') {
    out['snapshot'] = await argvOf(dir, () => ops.snapshot({ path: p('base'), format }, p('mid')));
    out['snapshotOfRaw'] = await argvOf(dir, async () => {
      await opsFor('raw').create(join(dir, 'r.raw'), 4 * MiB);
      await ops.snapshot({ path: join(dir, 'r.raw'), format: 'raw' }, p('onraw'));
    });
    await ops.snapshot({ path: p('mid'), format }, p('leaf'));
    out['coalesce'] = await argvOf(dir, () => ops.coalesce(p('mid')));
    out['setParent'] = await argvOf(dir, () => ops.setParent(p('leaf'), { path: p('base'), format }));
    out['chain'] = await argvOf(dir, () => ops.chain(p('leaf')));
  }
  out['scan'] = await argvOf(dir, () => ops.scan(dir));
  for (const to of ['vhd', 'qcow2', 'raw'] as const) {
    out[`convertTo_${to}`] = await argvOf(dir, () => convert({ path: p('base'), format }, { path: join(dir, `conv.${to}`), format: to }));
  }
  return out;
}

describe('golden argv per format operation', () => {
  it('matches test/formats/fixtures/golden-argv.yaml', async () => {
    const got: Record<string, Record<string, string[][]>> = {};
    for (const f of ['vhd', 'qcow2', 'raw'] as const) got[f] = await scenario(f);
    got['scanDirectory'] = { all: await argvOf(root(), () => scanDirectory(root())) };
    if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(FIXTURE, stringify(got));
    const want = parse(readFileSync(FIXTURE, 'utf8')) as unknown;
    expect(got).toEqual(want);
  });
});

describe('argv builders refuse what cannot be passed safely', () => {
  it('qemu-io never writes into a VHD', () => {
    expect(() => qemuIoWriteFileArgv({ path: '/x.vhd', format: 'vpc', offset: 0, length: 1, input: '/tmp/d' })).toThrow(/corrupts blktap/);
  });
  it('qemu-io input paths with spaces are refused (qemu-io splits its -c string)', () => {
    expect(() => qemuIoWriteFileArgv({ path: '/x.qcow2', format: 'qcow2', offset: 0, length: 1, input: '/tmp/a b' })).toThrow(/spaces/);
  });
});

describe('dataRuns (which parts of a flattened disk convert writes into a VHD)', () => {
  it('finds the runs of non-zero 2 MiB blocks and caps their number by closing the smallest gaps', () => {
    const dir = freshDir(root());
    const f = join(dir, 'flat.raw');
    const buf = Buffer.alloc(40 * MiB);
    for (const blk of [0, 1, 5, 9, 10, 19]) buf[blk * 2 * MiB + 100] = 1;
    writeFileSync(f, buf);
    expect(dataRuns(f)).toEqual([[0, 2], [5, 6], [9, 11], [19, 20]]);
    // gaps: 3 (2→5), 3 (6→9), 8 (11→19): two runs means closing both 3-block gaps.
    expect(dataRuns(f, 2)).toEqual([[0, 11], [19, 20]]);
    expect(dataRuns(f, 1)).toEqual([[0, 20]]);
  });
});
