// The SR configuration a run uses: from a YAML file and/or command-line flags,
// validated with zod so a bad value is named with what was allowed.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { IMAGE_FORMATS, type ImageFormat } from '../src/driver-info.js';
import { parseSize } from '../src/toolstack/index.js';

const MiB = 1024 * 1024;

/** quicktest-style awkward sizes: 1 byte, 1 MiB + 1, 2 MiB + 1, an odd number of sectors. */
export const DEFAULT_SIZES: readonly bigint[] = [1n, BigInt(MiB + 1), BigInt(2 * MiB + 1), 4099n * 512n];

const sizeValue = z.union([z.number().int().positive(), z.string().min(1)]).transform((v, ctx) => {
  try {
    const n = typeof v === 'number' ? BigInt(v) : parseSize('sizes', v);
    if (n <= 0n) throw new RangeError(`size ${String(v)} must be positive`);
    return n;
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

export const ConfigFileSchema = z.strictObject({
  type: z.string().regex(/^[a-z0-9_]+$/, 'an SR type is lower-case letters, digits and _').optional(),
  'device-config': z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String)).default({}),
  sizes: z.array(sizeValue).min(1).optional(),
  formats: z.array(z.enum(IMAGE_FORMATS)).min(1).optional(),
});

export interface SuiteConfig {
  /** SR type expected of the driver (checked against its file name). */
  type?: string;
  deviceConfig: Record<string, string>;
  sizes: bigint[];
  /** Restrict format-specific scenarios to these (default: every format the driver declares). */
  formats?: ImageFormat[];
}

function issues(e: z.ZodError): string {
  return e.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ');
}

export function parseConfigText(text: string, where: string): SuiteConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (e) {
    throw new Error(`${where}: not valid YAML: ${(e as Error).message}`);
  }
  const r = ConfigFileSchema.safeParse(raw);
  if (!r.success) throw new Error(`${where}: ${issues(r.error)} (allowed keys: type, device-config, sizes, formats; formats from ${IMAGE_FORMATS.join(', ')})`);
  return {
    ...(r.data.type !== undefined ? { type: r.data.type } : {}),
    deviceConfig: r.data['device-config'],
    sizes: r.data.sizes ?? [...DEFAULT_SIZES],
    ...(r.data.formats !== undefined ? { formats: [...new Set(r.data.formats)] } : {}),
  };
}

export function loadConfigFile(path: string): SuiteConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read the SR configuration ${path}: ${(e as Error).message}`);
  }
  return parseConfigText(text, path);
}
