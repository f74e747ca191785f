// The suite's own pieces: configuration validation, DRIVER_INFO rules, LIFO
// clean-up, content helpers and the reports.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../conformance/config.js';
import { detectFormat, imagePathOf, pattern } from '../../conformance/content.js';
import { jsonReport, junitXml, progressLine, summaryText } from '../../conformance/report.js';
import { Resources } from '../../conformance/resources.js';
import { pluginFor } from '../../conformance/runner.js';
import { driverInfoProblems } from '../../conformance/scenarios/driver-info.js';
import { type SuiteReport, summarize } from '../../conformance/types.js';
import { PYSR } from './helpers.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('SR configuration', () => {
  it('reads type, device-config, sizes (bytes or xe sizes) and formats', () => {
    const c = parseConfigText('type: file\ndevice-config:\n  location: /srv/x\n  port: 3260\nsizes: [1, 1MiB, "2 MiB"]\nformats: [vhd, raw]\n', 'x.yaml');
    expect(c).toEqual({ type: 'file', deviceConfig: { location: '/srv/x', port: '3260' }, sizes: [1n, 1048576n, 2097152n], formats: ['vhd', 'raw'] });
  });

  it('defaults to the awkward quicktest sizes', () => {
    expect(parseConfigText('device-config: {location: /x}', 'x').sizes).toEqual([1n, 1048577n, 2097153n, 2098688n]);
  });

  it('names a bad format and what is allowed', () => {
    expect(() => parseConfigText('formats: [vmdk]', 'sr.yaml')).toThrow(/sr\.yaml: formats\.0: .*allowed keys: type, device-config, sizes, formats; formats from vhd, raw, qcow2/);
  });

  it('refuses unknown keys and bad sizes', () => {
    expect(() => parseConfigText('device_config: {}', 'sr.yaml')).toThrow(/device_config/);
    expect(() => parseConfigText('sizes: [12 parsecs]', 'sr.yaml')).toThrow(/sizes\.0/);
    expect(() => parseConfigText('sizes: [0]', 'sr.yaml')).toThrow(/sizes\.0/);
  });
});

describe('driver file name', () => {
  it('gives the SR type as xapi does', () => {
    expect(pluginFor(PYSR)).toMatchObject({ type: 'py', name: 'Py' });
  });
  it('refuses a name without SR', () => {
    const d = mkdtempSync(join(tmpdir(), 'conf-unit-'));
    dirs.push(d);
    writeFileSync(join(d, 'mydriver'), '#!/bin/sh\n', { mode: 0o755 });
    expect(() => pluginFor(join(d, 'mydriver'))).toThrow(/"mydriver" must end in SR/);
  });
});

describe('DRIVER_INFO rules (spec §1.7, §2.2)', () => {
  const good = {
    name: 'n', description: 'd', vendor: 'v', copyright: 'c', driver_version: '1', required_api_version: '1.0',
    capabilities: ['VDI_CREATE', 'VDI_RESET_ON_BOOT/2', 'ATOMIC_PAUSE'], configuration: [{ key: 'location', description: 'dir' }],
    supported_image_formats: ['vhd', 'qcow2'],
  };
  it('accepts a complete struct', () => {
    expect(driverInfoProblems(good)).toEqual([]);
  });
  it('names each missing member, bad capability and bad format', () => {
    const { vendor: _v, ...noVendor } = good;
    expect(driverInfoProblems({ ...noVendor, capabilities: ['VDI_FLY', 'VDI_CREATE/x'], supported_image_formats: ['vhd', 'vhd', 'vmdk'] })).toEqual([
      'member vendor is missing or not a string',
      expect.stringMatching(/^capability "VDI_FLY" is not a known name/),
      'capability "VDI_CREATE/x" is not NAME or NAME/<version>',
      'supported_image_formats lists "vhd" more than once',
      'supported_image_formats has unknown format "vmdk" (allowed: vhd, raw, qcow2)',
    ]);
  });
  it('treats supported_image_formats as optional and configuration as {key, description}', () => {
    const { supported_image_formats: _f, ...old } = good;
    expect(driverInfoProblems(old)).toEqual([]);
    expect(driverInfoProblems({ ...good, configuration: [['location', 'dir']] })).toEqual([expect.stringMatching(/is not a \{key, description\} struct/)]);
  });
});

describe('Resources', () => {
  it('undoes in reverse order, runs every undo, and returns the failures', async () => {
    const r = new Resources();
    const order: string[] = [];
    r.add('a', async () => void order.push('a'));
    r.add('b', async () => {
      order.push('b');
      throw new Error('b broke');
    });
    r.add('c', async () => void order.push('c'));
    const failed = await r.cleanup();
    expect(order).toEqual(['c', 'b', 'a']);
    expect(failed.map((f) => [f.what, f.error.message])).toEqual([['b', 'b broke']]);
    expect(r.size).toBe(0);
  });
});

describe('content helpers', () => {
  it('finds the image path in params', () => {
    expect(imagePathOf('/srv/a.vhd')).toBe('/srv/a.vhd');
    expect(imagePathOf('vhd:/srv/a.vhd')).toBe('/srv/a.vhd');
    expect(imagePathOf('nbd:unix:/x')).toBeUndefined();
    expect(imagePathOf(undefined)).toBeUndefined();
  });
  it('patterns differ by seed and are repeatable', () => {
    expect(pattern('A', 100).equals(pattern('A', 100))).toBe(true);
    expect(pattern('A', 100).equals(pattern('B', 100))).toBe(false);
  });
  it('detects formats by magic', () => {
    const d = mkdtempSync(join(tmpdir(), 'conf-unit-'));
    dirs.push(d);
    writeFileSync(join(d, 'q'), Buffer.concat([Buffer.from([0x51, 0x46, 0x49, 0xfb]), Buffer.alloc(100)]));
    writeFileSync(join(d, 'v'), Buffer.concat([Buffer.from('conectix'), Buffer.alloc(100)]));
    writeFileSync(join(d, 'r'), Buffer.alloc(512));
    expect([detectFormat(join(d, 'q')), detectFormat(join(d, 'v')), detectFormat(join(d, 'r'))]).toEqual(['qcow2', 'vhd', 'raw']);
  });
});

describe('reports', () => {
  const report: SuiteReport = {
    driver: '/x/PySR',
    type: 'py',
    startedAt: '2026-11-21T06:00:00.000Z',
    durationMs: 1500,
    results: [
      { id: 'driver-info', title: 't', status: 'pass', durationMs: 10 },
      {
        id: 'snapshot[raw]', title: 't', format: 'raw', status: 'fail', durationMs: 1200, reason: 'copies <share> data',
        evidence: { expected: 'A', actual: 'B', calls: [{ command: 'vdi_snapshot', requestXml: '<methodCall/>', ok: false, fault: { faultCode: 82, faultName: 'VDISnapshot', faultString: 'no & way' }, durationMs: 5 }] },
      },
      { id: 'resize[raw]', title: 't', format: 'raw', status: 'skip', durationMs: 0, reason: 'driver does not declare VDI_RESIZE' },
    ],
    summary: { passed: 1, failed: 1, skipped: 1 },
  };
  it('summarises skips apart from passes', () => {
    expect(summarize(report.results)).toEqual({ passed: 1, failed: 1, skipped: 1 });
  });
  it('prints one progress line per scenario and the exact closing line', () => {
    expect(progressLine(report.results[2]!, false)).toBe(`SKIP  ${'resize[raw]'.padEnd(34)}    0.00s  driver does not declare VDI_RESIZE`);
    const text = summaryText(report);
    expect(text.split('\n').at(-1)).toBe('1 passed, 1 failed, 1 skipped');
    expect(text).toContain('fault: 82 (VDISnapshot): no & way');
  });
  it('writes JUnit with failures, skips and escaped evidence', () => {
    const x = junitXml(report);
    expect(x).toContain('<testsuites name="sm-conformance" tests="3" failures="1" skipped="1"');
    expect(x).toContain('<testcase classname="sm-conformance.py" name="driver-info" time="0.010"/>');
    expect(x).toContain('<skipped message="driver does not declare VDI_RESIZE"/>');
    expect(x).toContain('<failure message="copies &lt;share&gt; data" type="ConformanceFailure">expected: A');
    expect(x).toContain('no &amp; way');
  });
  it('writes JSON with the evidence', () => {
    expect(JSON.parse(jsonReport(report))).toEqual(report);
  });
});
