// The suite needs nothing from our SDK: it runs against the Python stand-in
// plug-in (xmlrpc.client only) and everything it declares passes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SuiteReport } from '../../conformance/types.js';
import { failures, PYSR, result, runAgainst } from './helpers.js';

const LONG = 1_200_000;

describe('against the Python stand-in (raw)', () => {
  let report: SuiteReport;
  beforeAll(async () => {
    report = await runAgainst(PYSR, { formats: ['raw'] });
  }, LONG);
  afterAll(() => undefined);

  it('nothing fails', () => {
    expect(failures(report)).toBe('');
    expect(report.summary.failed).toBe(0);
  });

  it.each([
    'driver-info', 'sr-lifecycle', 'vdi-create[raw]', 'vdi-create-unsupported-format', 'snapshot[raw]', 'clone[raw]', 'resize[raw]',
    'vdi-delete[raw]', 'attach-20', 'introduce-duplicate', 'idempotency', 'concurrency',
  ])('%s passes', (id) => {
    expect(result(report, id).status).toBe('pass');
  });

  it('skips what does not apply, with the reason, and does not count it as passed', () => {
    expect(result(report, 'vdi-create-oversize[raw]')).toMatchObject({ status: 'skip', reason: 'raw images have no format maximum' });
    expect(report.summary).toEqual({ passed: 12, failed: 0, skipped: 1 });
  });
});

describe('against the Python stand-in (qcow2)', () => {
  it('catches that its "qcow2" VDIs are raw files', async () => {
    const report = await runAgainst(PYSR, { formats: ['qcow2'], only: ['snapshot'] });
    const r = result(report, 'snapshot[qcow2]');
    expect(r.status).toBe('fail');
    expect(r.reason).toMatch(/^VDI [0-9a-f-]{36} records image-format qcow2 but \/.*\.img holds raw$/);
  }, LONG);
});
