// The toolstack as a library (what the conformance suite builds on), used
// in-process against the Python plug-in.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Toolstack, srCreate, vdiAttach, vdiCreate, vdiDetach, vdiResize, XenApiError } from '../../src/toolstack/index.js';
import { PY_DRIVER_DIR, type Scratch, scratch } from './helpers.js';

let s: Scratch;
let ts: Toolstack;
beforeAll(() => {
  s = scratch();
  ts = Toolstack.open({ dbPath: s.db, smDir: PY_DRIVER_DIR, timeoutMs: 60_000 });
});
afterAll(() => {
  ts?.close();
  s?.cleanup();
});

it('srCreate / vdiCreate / vdiResize / vdiAttach / vdiDetach, records through ts.db', async () => {
  const sr = await srCreate(ts, { type: 'py', nameLabel: 'lib', deviceConfig: { location: s.srDir } });
  const v = await vdiCreate(ts, { srUuid: String(sr['uuid']), nameLabel: 'd', virtualSize: 4n << 20n, smConfig: { 'image-format': 'qcow2' } });
  expect(v['virtual_size']).toBe(4 << 20);
  expect(v['SR']).toBe(sr.ref);
  const resized = await vdiResize(ts, String(v['uuid']), 8n << 20n);
  expect(resized['virtual_size']).toBe(8 << 20);
  const a = await vdiAttach(ts, String(v['uuid']), 'RO');
  expect(a.params).toBe(`${s.srDir}/${String(v['uuid'])}.img`);
  expect(a.o_direct).toBe(true);
  expect(ts.db.attachment(v.ref)?.mode).toBe('RO');
  await vdiDetach(ts, String(v['uuid']));
  expect(ts.db.attachment(v.ref)).toBeUndefined();
  const e = await vdiResize(ts, String(v['uuid']), 1n << 20n).catch((x: unknown) => x);
  expect(e).toBeInstanceOf(XenApiError);
  expect((e as XenApiError).code).toBe('SR_BACKEND_FAILURE_79');
  expect(ts.db.getByUuid('VDI', String(v['uuid']))!['virtual_size']).toBe(8 << 20);
});
