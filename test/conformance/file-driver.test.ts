// Our own `file` driver, every image format it declares, through the same
// suite third-party drivers get.
import { beforeAll, describe, expect, it } from 'vitest';
import type { SuiteReport } from '../../conformance/types.js';
import { FILESR, failures, result, runAgainst } from './helpers.js';

const LONG = 1_800_000;
const FORMATS = ['vhd', 'qcow2', 'raw'] as const;

describe('against drivers/file/FileSR (vhd, qcow2, raw)', () => {
  let report: SuiteReport;
  beforeAll(async () => {
    report = await runAgainst(FILESR);
  }, LONG);

  it('nothing fails', () => {
    expect(failures(report)).toBe('');
  });

  it('runs the format-specific scenarios once per declared format', () => {
    for (const f of FORMATS) for (const s of ['vdi-create', 'snapshot', 'clone', 'resize', 'vdi-delete', 'vdi-create-oversize']) expect(result(report, `${s}[${f}]`)).toBeDefined();
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
