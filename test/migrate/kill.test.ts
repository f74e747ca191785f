// A copy killed half-way (SIGKILL of smctl in the middle of writing the
// destination) leaves the source intact and, after a scan of the destination
// SR, no VDI and no file there; the source is not left attached.
import { execa } from 'execa';
import { closeSync, existsSync, openSync, readdirSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sha256File } from '../../src/sdk/formats/content.js';
import { assertBuilt, SMCTL } from '../toolstack/helpers.js';
import { host, type Host, imagePath, listing, vdiUuids } from './helpers.js';

const MiB = 1024 * 1024;
const SIZE = 1024 * MiB;
let h: Host;
let A: string;
let B: string;

beforeAll(async () => {
  assertBuilt();
  h = host();
  A = await h.newFileSr('a');
  B = await h.newFileSr('b');
}, 120_000);

afterAll(() => h?.cleanup());

it('SIGKILL mid-copy: source intact, nothing visible on the destination after sr-scan', async () => {
  const src = await h.ok(['vdi-create', `sr-uuid=${A}`, 'name-label=big', `virtual-size=${SIZE}`, 'sm-config:image-format=raw']);
  const path = imagePath(h, A, src);
  // Every other MiB holds data: 512 MiB allocated in a 1 GiB sparse disk.
  const fd = openSync(path, 'r+');
  const buf = Buffer.alloc(MiB);
  for (let i = 0; i < SIZE / MiB; i += 2) {
    buf.fill(i & 0xff).writeUInt32LE(i, 0);
    writeSync(fd, buf, 0, MiB, i * MiB);
  }
  closeSync(fd);
  const srcSha = sha256File(path);
  const vdisB = vdiUuids(h, B);
  const filesB = listing(h, B);

  const child = execa(process.execPath, [SMCTL, 'vdi-copy', `uuid=${src}`, `sr-uuid=${B}`, 'dest-img-format=vhd'], {
    env: { ...process.env, ...h.env },
    reject: false,
  });
  // Wait until the destination image has some data in it, then kill.
  let killedMidCopy = false;
  const deadline = Date.now() + 400_000;
  while (Date.now() < deadline && child.exitCode === null) {
    const dest = readdirSync(h.srDir(B)).find((n) => n.endsWith('.vhd') && !filesB.includes(n));
    if (dest && statSync(join(h.srDir(B), dest)).size > 32 * MiB) {
      child.kill('SIGKILL');
      killedMidCopy = true;
      break;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  if (!killedMidCopy) child.kill('SIGKILL'); // never leave it writing into the scratch directory
  const r = await child;
  expect(killedMidCopy, `smctl finished before it could be killed: ${r.stderr}`).toBe(true);
  expect(r.signal).toBe('SIGKILL');

  // The half-made destination is on disk but neither in the database nor reported by a scan.
  expect(vdiUuids(h, B)).toEqual(vdisB);
  expect(sha256File(path)).toBe(srcSha);
  await h.ok(['sr-scan', `uuid=${B}`]);
  expect(vdiUuids(h, B)).toEqual(vdisB);
  expect(listing(h, B)).toEqual(filesB);
  expect(existsSync(join(h.s.env['SM_RUN_DIR']!, 'file-sr', A, 'attached', src))).toBe(false);
  expect(sha256File(path)).toBe(srcSha);
  // The source is usable: not held attached by the dead copy.
  await h.ok(['vdi-destroy', `uuid=${src}`]);
}, 600_000); // generous: on a loaded machine the copy's driver calls alone take tens of seconds
