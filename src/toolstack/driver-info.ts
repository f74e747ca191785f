// sr_get_driver_info -> SM record, with xapi's parsing rules (sm_exec.ml
// parse_sr_get_driver_info, smint.ml Feature): six mandatory strings plus
// capabilities and configuration; capabilities are NAME or NAME/<version>;
// names xapi does not know are dropped; supported_image_formats is optional.
import type { XmlRpcValue } from '../sdk/protocol/xmlrpc.js';
import { XenApiError } from './errors.js';
import type { Plugin } from './plugins.js';
import { DriverInfoWire, firstIssue } from './responses.js';

/** Every capability xapi's smint.ml knows. */
export const KNOWN_FEATURES: ReadonlySet<string> = new Set([
  'SR_PROBE', 'SR_UPDATE', 'SR_SUPPORTS_LOCAL_CACHING', 'SR_CACHING', 'SR_TRIM', 'SR_METADATA', 'SR_STATS',
  'SR_MULTIPATH', 'SR_CREATE', 'SR_DELETE', 'SR_ATTACH', 'SR_DETACH', 'SR_SCAN', 'VDI_CREATE', 'VDI_DELETE',
  'VDI_RESIZE', 'VDI_INTRODUCE', 'VDI_ATTACH', 'VDI_DETACH', 'VDI_ACTIVATE', 'VDI_DEACTIVATE',
  'VDI_ACTIVATE_READONLY', 'VDI_SNAPSHOT', 'VDI_CLONE', 'VDI_UPDATE', 'VDI_RESIZE_ONLINE',
  'VDI_GENERATE_CONFIG', 'VDI_MIRROR', 'VDI_MIRROR_IN', 'VDI_RESET_ON_BOOT', 'VDI_CONFIG_CBT', 'VDI_COMPOSE',
  'VDI_REVERT', 'VDI_ATTACH_OFFLINE', 'LARGE_VDI', 'THIN_PROVISIONING', 'VDI_READ_CACHING',
]);

/** The enum of xapi's SM.supported_image_formats. */
export const IMAGE_FORMATS: ReadonlySet<string> = new Set(['raw', 'vhd', 'qcow2']);

export interface DriverInfo {
  name_label: string;
  name_description: string;
  vendor: string;
  copyright: string;
  version: string;
  required_api_version: string;
  capabilities: string[];
  features: Record<string, number>;
  configuration: Record<string, string>;
  supported_image_formats: string[];
  /** Capabilities dropped because xapi does not know them (e.g. ATOMIC_PAUSE). */
  ignored: string[];
}

function reject(plugin: Plugin, why: string): never {
  throw new XenApiError('SR_BACKEND_FAILURE', ['Rejecting SM plugin', plugin.path, why], `rejecting SM plug-in ${plugin.path}: ${why}`);
}

export function parseDriverInfo(plugin: Plugin, v: XmlRpcValue): DriverInfo {
  const parsed = DriverInfoWire.safeParse(v);
  if (!parsed.success) return reject(plugin, `bad sr_get_driver_info result: ${firstIssue(parsed.error)}`);
  const d = parsed.data;
  const configuration: Record<string, string> = {};
  for (const c of d.configuration) configuration[c.key] = c.description;
  const features: Record<string, number> = {};
  const ignored: string[] = [];
  for (const c of d.capabilities) {
    const [name, ver] = c.split('/', 2) as [string, string | undefined];
    if (!KNOWN_FEATURES.has(name)) {
      ignored.push(c);
      continue;
    }
    features[name] = ver !== undefined && /^\d+$/.test(ver) ? Number(ver) : 1; // smint.ml: a bad version reads as 1
  }
  const formats: string[] = [];
  for (const f of d.supported_image_formats ?? []) {
    if (!IMAGE_FORMATS.has(f)) return reject(plugin, `unknown image format '${f}' in supported_image_formats (allowed: raw, vhd, qcow2)`);
    if (!formats.includes(f)) formats.push(f);
  }
  const names = Object.keys(features).sort();
  return {
    name_label: d.name,
    name_description: d.description,
    vendor: d.vendor,
    copyright: d.copyright,
    version: d.driver_version,
    required_api_version: d.required_api_version,
    capabilities: names,
    features: Object.fromEntries(names.map((n) => [n, features[n]!])),
    configuration,
    supported_image_formats: formats,
    ignored,
  };
}
