// The suite is itself tested: each deliberately broken copy of the stand-in
// must be caught by the scenario written for its defect, with evidence (the
// request sent and what came back) in the JSON-shaped report.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BROKEN, result, runAgainst } from './helpers.js';

const LONG = 600_000;

describe('broken drivers are caught by the scenario meant for them', () => {
  it('a duplicate format in supported_image_formats fails driver-info', async () => {
    const report = await runAgainst(join(BROKEN, 'DupformatSR'), { only: ['driver-info'] });
    const r = result(report, 'driver-info');
    expect(r.status).toBe('fail');
    expect(r.reason).toContain('supported_image_formats lists "raw" more than once');
    expect(r.evidence!.calls[0]!.command).toBe('sr_get_driver_info');
    expect(r.evidence!.calls[0]!.requestXml).toContain('<methodName>sr_get_driver_info</methodName>');
    expect(JSON.stringify(r.evidence!.calls[0]!.response)).toContain('"raw","qcow2","raw"');
    expect(report.summary.failed).toBe(1);
  }, LONG);

  it('a smaller virtual size than asked fails vdi-create, naming the size', async () => {
    const report = await runAgainst(join(BROKEN, 'ShrinkSR'), { only: ['vdi-create'], formats: ['raw'] });
    const r = result(report, 'vdi-create[raw]');
    expect(r.status).toBe('fail');
    expect(r.reason).toBe('vdi_create of 1 bytes gave a smaller VDI');
    expect(r.evidence!.expected).toBe('virtual_size >= 1');
    expect(r.evidence!.actual).toBe('virtual_size = 0');
    const create = r.evidence!.calls.find((c) => c.command === 'vdi_create')!;
    expect(create.requestXml).toContain('<methodName>vdi_create</methodName>');
    expect(create.ok).toBe(true);
  }, LONG);

  it('an unsupported format silently accepted fails vdi-create-unsupported-format', async () => {
    const report = await runAgainst(join(BROKEN, 'LaxSR'), { only: ['vdi-create-unsupported-format'] });
    const r = result(report, 'vdi-create-unsupported-format');
    expect(r.status).toBe('fail');
    expect(r.reason).toBe('vdi_create with image-format=vhd was accepted');
    expect(r.evidence!.expected).toBe('vdi_create refused with an error');
    const create = r.evidence!.calls.at(-1)!;
    expect(create.command).toBe('vdi_create');
    expect(create.requestXml).toContain('<name>image-format</name><value>vhd</value>');
    // The VDI it made anyway was cleaned up: the SR could be deleted.
    expect(report.results.find((x) => x.id === 'sr-teardown')).toBeUndefined();
  }, LONG);

  it('a leaked VDI (delete leaves the disk) fails vdi-delete', async () => {
    const report = await runAgainst(join(BROKEN, 'LeakySR'), { only: ['vdi-delete'], formats: ['raw'] });
    const r = result(report, 'vdi-delete[raw]');
    expect(r.status).toBe('fail');
    expect(r.reason).toBe('the deleted VDI is back after sr_scan (its data was not removed)');
    expect(r.evidence!.calls.some((c) => c.command === 'sr_scan' && c.requestXml.includes('<methodName>sr_scan</methodName>'))).toBe(true);
  }, LONG);

  it('a leaked VDI is also caught by the leak check of other scenarios', async () => {
    const report = await runAgainst(join(BROKEN, 'LeakySR'), { only: ['resize'], formats: ['raw'] });
    const r = result(report, 'resize[raw]');
    expect(r.status).toBe('fail');
    expect(r.reason).toMatch(/^leak: \d+ VDIs before the scenario, \d+ after its clean-up and an sr_scan$/);
    expect(r.evidence!.actual).toMatch(/new: [0-9a-f-]{36} \(location/);
  }, LONG);

  it('a snapshot sharing data with its source fails snapshot by content', async () => {
    const report = await runAgainst(join(BROKEN, 'SharedsnapSR'), { only: ['snapshot'], formats: ['raw'] });
    const r = result(report, 'snapshot[raw]');
    expect(r.status).toBe('fail');
    expect(r.reason).toBe('the snapshot does not hold its own data at offset 0: the copies share data');
    expect(r.evidence!.actual).toContain('= pattern B');
  }, LONG);

  it('a VDI that cannot be removed fails the scenario at clean-up, and the SR teardown', async () => {
    const report = await runAgainst(join(BROKEN, 'StuckSR'), { only: ['vdi-create'], formats: ['raw'], sizes: [1n] });
    const r = result(report, 'vdi-create[raw]');
    expect(r.status).toBe('fail');
    expect(r.reason).toMatch(/^clean-up failed: VDI [0-9a-f-]{36}: fault 80 \(VDIDelete\): VDI Deletion failed \[opterr=stuck on purpose\]$/);
    expect(r.evidence!.calls.map((c) => [c.command, c.fault?.faultCode])).toContainEqual(['vdi_delete', 80]);
    expect(result(report, 'sr-teardown').status).toBe('fail');
    // vdi-create-unsupported-format creates nothing, so it still passes; oversize is skipped for raw.
    expect(report.summary).toEqual({ passed: 1, failed: 2, skipped: 1 });
  }, LONG);
});
