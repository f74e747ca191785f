// vdi-create meta: on an SR whose driver does not implement the image-meta
// contract: the test Python driver (test/fixtures/python-driver/PySR) copies
// vdi_sm_config into its records but never reports image-meta-from, so smctl
// cannot confirm the value was stored and says so.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, ok, scratch, smctl, type Scratch } from '../toolstack/helpers.js';

// The host may be loaded (parallel suites): each smctl call spawns node and a driver.
const SLOW = 180_000;

let s: Scratch | undefined;
beforeAll(() => assertBuilt());
afterEach(() => {
  s?.cleanup();
  s = undefined;
});

describe('vdi-create meta: with a driver without image-meta support', () => {
  it('creates the VDI and warns that the driver did not confirm the machine data', async () => {
    s = scratch();
    const sr = await ok(s, ['sr-create', 'type=py', 'name-label=py', `device-config:location=${s.srDir}`]);
    const r = await smctl(s, ['vdi-create', `sr-uuid=${sr}`, 'name-label=os', 'virtual-size=4MiB', 'meta:qemu.min-ram-MB=1024']);
    expect(r.exitCode, r.stderr).toBe(0);
    const uuid = r.stdout.trim();
    expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.stderr).toBe(
      `Warning: VDI ${uuid} was created, but its driver (type py) reports no image-meta-from (it copied sm-config, nothing shows it stored the value) after vdi_update; it may not support sm-config:image-meta`,
    );
  }, SLOW);
});
