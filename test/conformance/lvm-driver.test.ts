// Our own `lvm` driver on this host, every image format it declares, through the
// same suite third-party drivers get. The PV is a loop device; LVM runs with
// --driverloaded n (no device-mapper here) and the driver reaches each LV's bytes
// through a loop device over its extents, so VDI data is really written to the
// PV. The device-mapper path (lvchange -ay) is tested in the test host
// (test/lvm/guest.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SuiteReport } from '../../conformance/types.js';
import { loopDevice, type Loop } from '../ext/helpers.js';
import { failures, LVMSR, result, runAgainst } from './helpers.js';

const LONG = 1_800_000;
const FORMATS = ['vhd', 'qcow2', 'raw'] as const;

describe('against drivers/lvm/LVMSR on a loop device (vhd, qcow2, raw)', () => {
  let report: SuiteReport;
  let pv: Loop;
  beforeAll(async () => {
    pv = await loopDevice(3072);
    report = await runAgainst(LVMSR, { deviceConfig: { device: pv.device } });
  }, LONG);
  afterAll(async () => {
    await pv?.cleanup();
  });

  it('nothing fails', () => {
    expect(failures(report)).toBe('');
  });

  it.each(['driver-info', 'sr-lifecycle', 'vdi-create-unsupported-format', 'attach-20', 'introduce-duplicate', 'idempotency', 'concurrency'])('%s passes', (id) => {
    expect(result(report, id).status).toBe('pass');
  });

  it.each(FORMATS.flatMap((f) => ['vdi-create', 'snapshot', 'clone', 'resize', 'vdi-delete'].map((s) => `${s}[${f}]`)))('%s passes', (id) => {
    expect(result(report, id).status).toBe('pass');
  });

  it('refuses oversize vhd and qcow2; raw has no maximum', () => {
    expect(result(report, 'vdi-create-oversize[vhd]').status).toBe('pass');
    expect(result(report, 'vdi-create-oversize[qcow2]').status).toBe('pass');
    expect(result(report, 'vdi-create-oversize[raw]')).toMatchObject({ status: 'skip', reason: 'raw images have no format maximum' });
  });
});
