// The DRIVER_INFO contract: what a driver declares about itself once, and what
// sr_get_driver_info sends to the toolstack.
//
// This module deliberately imports nothing (no zod): every driver start loads it,
// and sr_get_driver_info must answer in a few milliseconds. The same rules are
// exposed as a zod schema in src/sdk/protocol/driver-info-schema.ts for tests
// and for checking other drivers' answers.

/** Capabilities xapi knows (ocaml/xapi/smint.ml), plus sm's internal ATOMIC_PAUSE. */
export const CAPABILITIES = [
  'SR_PROBE',
  'SR_UPDATE',
  'SR_CREATE',
  'SR_DELETE',
  'SR_ATTACH',
  'SR_DETACH',
  'SR_SCAN',
  'SR_SUPPORTS_LOCAL_CACHING',
  'SR_CACHING',
  'SR_TRIM',
  'SR_METADATA',
  'SR_STATS',
  'SR_MULTIPATH',
  'VDI_CREATE',
  'VDI_DELETE',
  'VDI_ATTACH',
  'VDI_DETACH',
  'VDI_ACTIVATE',
  'VDI_DEACTIVATE',
  'VDI_ACTIVATE_READONLY',
  'VDI_UPDATE',
  'VDI_INTRODUCE',
  'VDI_RESIZE',
  'VDI_RESIZE_ONLINE',
  'VDI_SNAPSHOT',
  'VDI_CLONE',
  'VDI_GENERATE_CONFIG',
  'VDI_MIRROR',
  'VDI_MIRROR_IN',
  'VDI_RESET_ON_BOOT',
  'VDI_CONFIG_CBT',
  'VDI_COMPOSE',
  'VDI_REVERT',
  'VDI_ATTACH_OFFLINE',
  'VDI_READ_CACHING',
  'LARGE_VDI',
  'THIN_PROVISIONING',
  'ATOMIC_PAUSE',
] as const;
export type CapabilityName = (typeof CAPABILITIES)[number];
/** A capability as declared: `NAME` or `NAME/<version>` (e.g. `VDI_RESET_ON_BOOT/2`). */
export type Capability = CapabilityName | `${CapabilityName}/${number}`;

/** Image formats xapi's SM.supported_image_formats enum knows. */
export const IMAGE_FORMATS = ['vhd', 'raw', 'qcow2'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];
/** A driver's supported formats, in preference order, without duplicates. */
export type ImageFormatList = readonly ImageFormat[];

export interface ConfigurationKey {
  key: string;
  description: string;
}

/** XCP-ng's device-config key: a comma-separated preference list of image formats for new VDIs. */
export const PREFERRED_IMAGE_FORMATS_KEY: Readonly<ConfigurationKey> = Object.freeze({
  key: 'preferred-image-formats',
  description: 'comma-separated list of preferred image formats for new VDIs, from vhd, qcow2, raw (default: the driver default, vhd)',
});

/** What a driver author writes. */
export interface DriverInfoInput {
  name: string;
  description: string;
  vendor: string;
  copyright: string;
  driver_version: string;
  required_api_version: string;
  capabilities: readonly string[];
  /** device-config keys the driver reads, with a description for users. */
  configuration: readonly ConfigurationKey[];
  /** Empty (the default) keeps upstream's meaning: the driver chooses, the toolstack does not check. */
  supported_image_formats?: readonly string[];
  /** Must be one of supported_image_formats when that list is non-empty; defaults to its first entry. */
  default_image_format?: string;
}

/** A checked, normalised DRIVER_INFO. */
export interface DriverInfo {
  readonly name: string;
  readonly description: string;
  readonly vendor: string;
  readonly copyright: string;
  readonly driver_version: string;
  readonly required_api_version: string;
  readonly capabilities: readonly Capability[];
  readonly configuration: readonly Readonly<ConfigurationKey>[];
  readonly supported_image_formats: ImageFormatList;
  readonly default_image_format: ImageFormat | undefined;
}

export class DriverInfoError extends Error {
  override name = 'DriverInfoError';
}

const CAPABILITY_SET: ReadonlySet<string> = new Set(CAPABILITIES);
const FORMAT_SET: ReadonlySet<string> = new Set(IMAGE_FORMATS);

export function isCapabilityName(s: string): s is CapabilityName {
  return CAPABILITY_SET.has(s);
}

export function isImageFormat(s: string): s is ImageFormat {
  return FORMAT_SET.has(s);
}

/** `NAME` or `NAME/N` → {name, version}; version 1 when absent. Throws naming the bad value and the allowed set. */
export function parseCapability(s: string): { name: CapabilityName; version: number } {
  const m = /^([A-Z_]+)(?:\/([1-9][0-9]*))?$/.exec(s);
  const name = m?.[1];
  if (!m || name === undefined || !isCapabilityName(name)) {
    if (m === null && /^[A-Z_]+\//.test(s) && isCapabilityName(s.slice(0, s.indexOf('/'))))
      throw new DriverInfoError(`capability '${s}': the version after '/' must be a positive integer`);
    throw new DriverInfoError(`unknown capability '${s}'; allowed: ${CAPABILITIES.join(', ')} (each optionally NAME/<version>)`);
  }
  return { name, version: m[2] ? Number(m[2]) : 1 };
}

/** Capability names without versions, e.g. for a `has VDI_RESET_ON_BOOT` check. */
export function capabilityNames(caps: readonly string[]): Set<CapabilityName> {
  return new Set(caps.map((c) => parseCapability(c).name));
}

/**
 * Closed set, treated as a set: a duplicate is kept once, at its first
 * position. Throws naming the bad value and the allowed formats.
 */
export function normaliseImageFormats(formats: readonly string[]): ImageFormat[] {
  const out: ImageFormat[] = [];
  for (const f of formats) {
    if (typeof f !== 'string' || !isImageFormat(f))
      throw new DriverInfoError(`unknown image format ${JSON.stringify(f)}; allowed: ${IMAGE_FORMATS.join(', ')}`);
    if (!out.includes(f)) out.push(f);
  }
  return out;
}

const STRING_FIELDS = ['name', 'description', 'vendor', 'copyright', 'driver_version', 'required_api_version'] as const;

/**
 * Checks and normalises a driver's declaration; throws DriverInfoError naming
 * the bad value and what is allowed. Every driver's info.ts calls it, so a bad
 * definition fails as soon as the module is loaded (and in its tests).
 */
export function defineDriverInfo(input: DriverInfoInput): DriverInfo {
  if (typeof input !== 'object' || input === null) throw new DriverInfoError('DRIVER_INFO must be an object');
  for (const f of STRING_FIELDS) {
    const v = (input as unknown as Record<string, unknown>)[f];
    if (typeof v !== 'string' || v.trim() === '') throw new DriverInfoError(`DRIVER_INFO.${f} must be a non-empty string, got ${JSON.stringify(v)}`);
  }
  if (!Array.isArray(input.capabilities)) throw new DriverInfoError('DRIVER_INFO.capabilities must be an array of strings');
  const capabilities: Capability[] = [];
  const seenCaps = new Set<string>();
  for (const c of input.capabilities) {
    if (typeof c !== 'string') throw new DriverInfoError(`capability ${JSON.stringify(c)} is not a string`);
    const { name } = parseCapability(c);
    if (seenCaps.has(name)) {
      if (!capabilities.includes(c as Capability))
        throw new DriverInfoError(`capability ${name} is declared twice with different versions`);
      continue;
    }
    seenCaps.add(name);
    capabilities.push(c as Capability);
  }
  if (!Array.isArray(input.configuration)) throw new DriverInfoError('DRIVER_INFO.configuration must be an array of {key, description}');
  const keys = new Set<string>();
  const configuration = input.configuration.map((entry) => {
    const key = (entry as Partial<ConfigurationKey> | null)?.key;
    const description = (entry as Partial<ConfigurationKey> | null)?.description;
    if (typeof key !== 'string' || key === '' || typeof description !== 'string')
      throw new DriverInfoError(`configuration entry ${JSON.stringify(entry)} must be {key: non-empty string, description: string}`);
    if (keys.has(key)) throw new DriverInfoError(`configuration key '${key}' is declared twice`);
    keys.add(key);
    return Object.freeze({ key, description });
  });
  const rawFormats = input.supported_image_formats ?? [];
  if (!Array.isArray(rawFormats)) throw new DriverInfoError('DRIVER_INFO.supported_image_formats must be an array');
  const formats = normaliseImageFormats(rawFormats);
  let defaultFormat: ImageFormat | undefined;
  if (input.default_image_format !== undefined) {
    const d = input.default_image_format;
    if (!isImageFormat(d)) throw new DriverInfoError(`unknown default image format ${JSON.stringify(d)}; allowed: ${IMAGE_FORMATS.join(', ')}`);
    if (formats.length > 0 && !formats.includes(d))
      throw new DriverInfoError(`default image format '${d}' is not one of the supported formats: ${formats.join(', ')}`);
    defaultFormat = d;
  } else {
    defaultFormat = formats[0];
  }
  return Object.freeze({
    name: input.name,
    description: input.description,
    vendor: input.vendor,
    copyright: input.copyright,
    driver_version: input.driver_version,
    required_api_version: input.required_api_version,
    capabilities: Object.freeze(capabilities),
    configuration: Object.freeze(configuration),
    supported_image_formats: Object.freeze(formats),
    default_image_format: defaultFormat,
  });
}

/** The capability list as sent: with ATOMIC_PAUSE, VDI_ACTIVATE and VDI_DEACTIVATE are appended if missing (as sm does). */
export function advertisedCapabilities(info: DriverInfo): string[] {
  const caps: string[] = [...info.capabilities];
  const names = capabilityNames(caps);
  if (names.has('ATOMIC_PAUSE')) {
    if (!names.has('VDI_ACTIVATE')) caps.push('VDI_ACTIVATE');
    if (!names.has('VDI_DEACTIVATE')) caps.push('VDI_DEACTIVATE');
  }
  return caps;
}

/** The sr_get_driver_info result struct (spec §1.7, plus supported_image_formats). */
export interface DriverInfoResponse {
  [key: string]: string | string[] | Array<{ key: string; description: string }>;
  name: string;
  description: string;
  vendor: string;
  copyright: string;
  driver_version: string;
  required_api_version: string;
  capabilities: string[];
  configuration: Array<{ key: string; description: string }>;
  supported_image_formats: string[];
}

export function driverInfoResponse(info: DriverInfo): DriverInfoResponse {
  return {
    name: info.name,
    description: info.description,
    vendor: info.vendor,
    copyright: info.copyright,
    driver_version: info.driver_version,
    required_api_version: info.required_api_version,
    capabilities: advertisedCapabilities(info),
    configuration: info.configuration.map((c) => ({ key: c.key, description: c.description })),
    supported_image_formats: [...info.supported_image_formats],
  };
}
