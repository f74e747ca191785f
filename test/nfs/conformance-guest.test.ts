// sm-conformance against drivers/nfs/NFSSR inside the test host (one boot): an
// SR on the guest kernel NFS server (127.0.0.1), mounted by the driver. The main
// job (npm start) runs every scenario in every declared format; CI runs the
// subset below (see docs/conformance.md, "In the test host", for why and the timings).
import { beforeAll, describe, expect, it } from 'vitest';
import { CI_GUEST_ARGS, CI_GUEST_MUST_PASS, CI_GUEST_SKIPS } from '../conformance/guest-subset.js';
import { conformanceInTestHost, expectConforms, type GuestSuiteRun } from '../conformance/in-test-host.js';

const BOOT_AND_SUITE_MS = 3_600_000;

describe('sm-conformance against NFSSR in the test host', () => {
  let run: GuestSuiteRun;
  beforeAll(async () => {
    run = await conformanceInTestHost('nfs', CI_GUEST_ARGS);
    // The table and where the time went, for whoever reads the CI log.
    console.log(`boot ${run.bootSeconds ?? '?'} s, wall ${(run.wallMs / 1000).toFixed(0)} s\n${run.log}`);
  }, BOOT_AND_SUITE_MS);

  it('passes: no failure, every chosen scenario passed, only the known skips (with their reasons)', () => {
    expectConforms(run, CI_GUEST_MUST_PASS, CI_GUEST_SKIPS);
  });

  it('ran against the nfs driver on the guest NFS server', () => {
    expect(run.report.type).toBe('nfs');
    expect(run.log).toContain('sm-conformance: drivers/nfs/NFSSR');
    expect(run.report.calls?.count ?? 0).toBeGreaterThan(20);
  });
});
