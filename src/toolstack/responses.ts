// Shapes of what drivers return, as xapi's decoders accept them (sm_exec.ml):
// validated with zod at the edge, so a malformed result is reported with the
// member that is wrong.
import { z } from 'zod';

const stringMap = z.record(z.string(), z.string());

/** sr_get_driver_info (parse_sr_get_driver_info): six strings, capabilities, configuration; formats optional. */
export const DriverInfoWire = z.object({
  name: z.string(),
  description: z.string(),
  vendor: z.string(),
  copyright: z.string(),
  driver_version: z.string(),
  required_api_version: z.string(),
  capabilities: z.array(z.string()),
  configuration: z.array(z.object({ key: z.string(), description: z.string() })),
  supported_image_formats: z.array(z.string()).optional(),
});

/** create / snapshot / clone / resize / introduce: {uuid, location}. */
export const VdiInfoWire = z.object({ uuid: z.string(), location: z.string() });

/** vdi_attach (parse_attach_result): params_nbd required; o_direct defaults true. */
export const AttachWire = z.object({
  params: z.string().optional(),
  params_nbd: z.string(),
  o_direct: z.union([z.boolean(), z.literal('true'), z.literal('false')]).optional(),
  o_direct_reason: z.string().optional(),
  xenstore_data: stringMap.optional(),
});

/** The first problem zod found, as `member: message`. */
export function firstIssue(e: z.ZodError): string {
  const i = e.issues[0];
  if (!i) return 'invalid value';
  return i.path.length ? `member '${i.path.join('.')}': ${i.message}` : i.message;
}
