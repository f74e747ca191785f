// Moves between SR types in the test host (one boot): a VDI travels
// file -> ext -> nfs -> file through vdi-pool-migrate (each SR type once as
// source and once as destination), changing its image format at every hop,
// with its content compared after each.
// LVM pairs are not here yet (the lvm driver is being written).
import { execa } from 'execa';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ImageFormat } from '../../src/driver-info.js';
import { contentSha256, writeRange } from '../../src/sdk/formats/index.js';
import { describeInTestHost } from '../../src/testhost/vitest.js';
import { loopDevice, type Loop } from '../ext/helpers.js';
import { assertBuilt, MiB, SMCTL, scratch, withDb, type Scratch } from '../file-sr/helpers.js';

const EXPORT = '/srv/smapi-migrate-export';
const SIZE = 24 * MiB;
const GUEST_CASE_MS = 2_700_000;

/** smctl with a long per-call limit: under emulation on a loaded machine one call can take minutes. */
async function ok(s: Scratch, args: string[]): Promise<string> {
  const env: Record<string, string | undefined> = { ...process.env, ...s.env };
  delete env['SM_DIR'];
  const r = await execa(process.execPath, [SMCTL, ...args], { env, extendEnv: false, reject: false, timeout: 900_000 });
  if (r.exitCode !== 0) throw new Error(`smctl ${args.join(' ')} failed (${String(r.exitCode)}):\n${String(r.stderr)}${String(r.stdout)}`);
  return String(r.stdout).trim();
}

function imageIn(s: Scratch, sr: string, uuid: string, format: ImageFormat): { path: string; format: ImageFormat } {
  return { path: join(s.mountRoot, sr, `${uuid}.${format}`), format };
}

describeInTestHost('moves between file, ext and nfs SRs in the test host', import.meta.url, () => {
  let s: Scratch;
  let loop: Loop | undefined;

  beforeAll(async () => {
    assertBuilt();
    await execa('bash', ['-c', `source /.testhost/lib.sh && th_nfs_server_start ${EXPORT}`]);
    s = scratch();
  });
  afterAll(async () => {
    await s?.cleanup();
    await loop?.cleanup();
  });

  it('file -> ext -> nfs -> file, a new format at every hop, content kept', { timeout: GUEST_CASE_MS }, async () => {
    loop = await loopDevice(256);
    const srs = {
      file: await ok(s, ['sr-create', 'type=file', 'name-label=file', `device-config:location=${s.location}`]),
      ext: await ok(s, ['sr-create', 'type=ext', 'name-label=ext', `device-config:device=${loop.device}`]),
      nfs: await ok(s, ['sr-create', 'type=nfs', 'name-label=nfs', 'device-config:server=127.0.0.1', `device-config:serverpath=${EXPORT}`]),
    };
    let vdi = await ok(s, ['vdi-create', `sr-uuid=${srs.file}`, 'name-label=traveller', `virtual-size=${SIZE}`, 'sm-config:image-format=vhd']);
    await writeRange(imageIn(s, srs.file, vdi, 'vhd'), 0, Buffer.alloc(65536, 0x11));
    await writeRange(imageIn(s, srs.file, vdi, 'vhd'), 5 * MiB + 123, Buffer.alloc(70000, 0x22));
    await writeRange(imageIn(s, srs.file, vdi, 'vhd'), SIZE - 4096, Buffer.alloc(4096, 0x33));
    const want = await contentSha256(imageIn(s, srs.file, vdi, 'vhd'), SIZE);

    const hops: [keyof typeof srs, ImageFormat][] = [
      ['ext', 'qcow2'], ['nfs', 'raw'], ['file', 'vhd'],
    ];
    for (const [to, format] of hops) {
      const moved = await ok(s, ['vdi-pool-migrate', `uuid=${vdi}`, `sr-uuid=${srs[to]}`, `dest-img-format=${format}`]);
      expect(await contentSha256(imageIn(s, srs[to], moved, format), SIZE), `after the move to ${to} as ${format}`).toBe(want);
      withDb(s, (db) => {
        expect(db.getByUuid('VDI', vdi)).toBeUndefined();
        const rec = db.getByUuid('VDI', moved)!;
        expect(String(db.get('SR', String(rec['SR']))!['uuid'])).toBe(srs[to]);
        expect(rec['name_label']).toBe('traveller');
      });
      vdi = moved;
    }
    // Every SR holds only what it should: the traveller on file, nothing elsewhere.
    withDb(s, (db) => {
      const counts = Object.fromEntries(Object.entries(srs).map(([k, sr]) => [k, db.where('VDI', 'SR', db.getByUuid('SR', sr)!.ref).length]));
      expect(counts).toEqual({ file: 1, ext: 0, nfs: 0 });
    });
  });
}, 3_000_000);
