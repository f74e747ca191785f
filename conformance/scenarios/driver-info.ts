// sr_get_driver_info: every member xapi's parser requires (spec §1.7), known
// capability names (NAME or NAME/N), a duplicate-free, known format list.
import { CAPABILITIES, IMAGE_FORMATS } from '../../src/driver-info.js';
import type { Scenario } from '../scenario.js';

const REQUIRED_STRINGS = ['name', 'description', 'vendor', 'copyright', 'driver_version', 'required_api_version'] as const;
const KNOWN_CAPS: ReadonlySet<string> = new Set(CAPABILITIES);
const KNOWN_FORMATS: ReadonlySet<string> = new Set(IMAGE_FORMATS);

export function driverInfoProblems(raw: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const k of REQUIRED_STRINGS) if (typeof raw[k] !== 'string') problems.push(`member ${k} is missing or not a string`);
  const caps = raw['capabilities'];
  if (!Array.isArray(caps)) problems.push('member capabilities is missing or not an array');
  else
    for (const c of caps) {
      const m = typeof c === 'string' ? /^([A-Z0-9_]+)(?:\/(\d+))?$/.exec(c) : null;
      if (!m) problems.push(`capability ${JSON.stringify(c)} is not NAME or NAME/<version>`);
      else if (!KNOWN_CAPS.has(m[1]!)) problems.push(`capability ${JSON.stringify(c)} is not a known name (known: ${[...KNOWN_CAPS].join(', ')})`);
    }
  const conf = raw['configuration'];
  if (!Array.isArray(conf)) problems.push('member configuration is missing or not an array');
  else
    for (const c of conf) {
      const ok = c !== null && typeof c === 'object' && typeof (c as Record<string, unknown>)['key'] === 'string' && typeof (c as Record<string, unknown>)['description'] === 'string';
      if (!ok) problems.push(`configuration entry ${JSON.stringify(c)} is not a {key, description} struct of strings`);
    }
  const formats = raw['supported_image_formats'];
  if (formats !== undefined) {
    if (!Array.isArray(formats)) problems.push('supported_image_formats is not an array');
    else {
      const seen = new Set<string>();
      for (const f of formats) {
        if (typeof f !== 'string' || !KNOWN_FORMATS.has(f)) problems.push(`supported_image_formats has unknown format ${JSON.stringify(f)} (allowed: ${IMAGE_FORMATS.join(', ')})`);
        else if (seen.has(f)) problems.push(`supported_image_formats lists ${JSON.stringify(f)} more than once`);
        else seen.add(f);
      }
    }
  }
  return problems;
}

export const driverInfo: Scenario = {
  id: 'driver-info',
  title: 'sr_get_driver_info has every member xapi requires, known capabilities and formats',
  usesSr: false,
  async run(ctx) {
    const d = ctx.env.declared;
    const infoCall = ctx.env.driverInfoCall ? [ctx.env.driverInfoCall] : [];
    if (!d) return ctx.fail('sr_get_driver_info failed', 'a driver-info struct', infoCall[0]?.error ?? infoCall[0]?.fault?.faultString ?? 'no answer', infoCall);
    const problems = driverInfoProblems(d.raw);
    if (problems.length > 0)
      ctx.fail(`driver info: ${problems.join('; ')}`, 'a DRIVER_INFO struct xapi accepts (spec §1.7, §2.2)', problems.join('\n'), infoCall);
  },
};
