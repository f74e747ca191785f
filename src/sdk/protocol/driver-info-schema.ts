// zod views of DRIVER_INFO: the author's declaration (same rules as
// defineDriverInfo, which it calls) and the sr_get_driver_info answer as xapi's
// parser reads it (parse_sr_get_driver_info) — for tests and for checking
// another driver's answer. Kept apart from src/driver-info.ts so a driver's
// start does not load zod.
import { z } from 'zod';
import { defineDriverInfo, DriverInfoError, type DriverInfo, type DriverInfoInput } from '../../driver-info.js';

const configurationKey = z.object({ key: z.string().min(1), description: z.string() });

/** A DRIVER_INFO declaration; parses to the normalised DriverInfo. */
export const DriverInfoSchema = z
  .object({
    name: z.string().min(1),
    description: z.string().min(1),
    vendor: z.string().min(1),
    copyright: z.string().min(1),
    driver_version: z.string().min(1),
    required_api_version: z.string().min(1),
    capabilities: z.array(z.string()),
    configuration: z.array(configurationKey),
    supported_image_formats: z.array(z.string()).optional(),
    default_image_format: z.string().optional(),
  })
  .transform((input, ctx): DriverInfo => {
    try {
      return defineDriverInfo(input as DriverInfoInput);
    } catch (e) {
      if (!(e instanceof DriverInfoError)) throw e;
      ctx.addIssue({ code: 'custom', message: e.message });
      return z.NEVER;
    }
  });

/** The sr_get_driver_info result struct: six strings, capabilities, configuration, optional formats. */
export const DriverInfoResponseSchema = z.looseObject({
  name: z.string(),
  description: z.string(),
  vendor: z.string(),
  copyright: z.string(),
  driver_version: z.string(),
  required_api_version: z.string(),
  capabilities: z.array(z.string()),
  configuration: z.array(configurationKey),
  supported_image_formats: z.array(z.enum(['vhd', 'raw', 'qcow2'])).optional(),
});
