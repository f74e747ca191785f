// Request validation: the params struct of a methodCall, checked for the
// command it names, turned into the typed request a handler receives.
// Every failure is an SRError('BadRequest') (143) whose detail names the member.
import { z } from 'zod';
import { randomUUID } from 'node:crypto';
import { SRError } from '../errors/sr-error.js';
import type { XmlRpcValue } from './xmlrpc.js';
import { checkMethodCall } from './envelope.js';
import { COMMAND_SPECS, isCommand, type ArgKind, type CommandName, type HandlerCommand } from './commands.js';

export type StringMap = Record<string, string>;

// ---------------------------------------------------------------------------
// The typed requests handlers receive. Member names are the wire names.

export interface BaseRequest {
  command: HandlerCommand;
  host_ref: string;
  device_config: StringMap;
  args: string[];
  session_ref?: string;
  subtask_of?: string;
  /** Every member as sent, including ones this SDK does not interpret. */
  raw: Record<string, XmlRpcValue>;
}
export interface SrRequest extends BaseRequest {
  sr_ref: string;
  sr_uuid: string;
}
export interface VdiRequest extends SrRequest {
  vdi_ref: string;
  vdi_location: string;
  vdi_uuid: string;
  /** `persist` or `reset`, with vdi_ref. */
  vdi_on_boot?: string;
  vdi_allow_caching?: boolean;
  local_cache_sr?: string;
}
export interface SrCreateRequest extends SrRequest {
  command: 'sr_create';
  /** args[0]; xapi normally sends 0. */
  size: number;
}
export interface SrProbeRequest extends BaseRequest {
  command: 'sr_probe';
  sr_sm_config: StringMap;
}
export interface VdiCreateRequest extends SrRequest {
  command: 'vdi_create';
  /** Chosen by xapi when present in the request, else generated here (as sm does with uuidgen -r). */
  vdi_uuid: string;
  vdi_type?: string;
  vdi_sm_config: StringMap;
  size: number;
  name_label: string;
  name_description: string;
  metadata_of_pool: string;
  is_a_snapshot: boolean;
  snapshot_time: string;
  snapshot_of: string;
  read_only: boolean;
}
export interface VdiIntroduceRequest extends SrRequest {
  command: 'vdi_introduce';
  new_uuid: string;
  vdi_location: string;
  vdi_sm_config: StringMap;
}
export interface VdiAttachRequest extends VdiRequest {
  command: 'vdi_attach' | 'vdi_activate';
  writable: boolean;
}
export interface VdiResizeRequest extends VdiRequest {
  command: 'vdi_resize' | 'vdi_resize_online';
  new_size: number;
}
export interface VdiSnapshotRequest extends VdiRequest {
  command: 'vdi_snapshot' | 'vdi_clone';
  driver_params: StringMap;
}
export interface VdiComposeRequest extends VdiRequest {
  command: 'vdi_compose';
  vdi1_ref: string;
}
export interface VdiListChangedBlocksRequest extends VdiRequest {
  command: 'vdi_list_changed_blocks';
  vdi_to_ref: string;
}
export interface VdiFromConfigRequest {
  command: 'vdi_attach_from_config' | 'vdi_detach_from_config';
  device_config: StringMap;
  sr_uuid: string;
  vdi_uuid: string;
  args: string[];
  host_ref?: string;
  session_ref?: string;
  raw: Record<string, XmlRpcValue>;
}

/** The request type for each command. */
export interface RequestMap {
  sr_create: SrCreateRequest;
  sr_delete: SrRequest & { command: 'sr_delete' };
  sr_attach: SrRequest & { command: 'sr_attach' };
  sr_detach: SrRequest & { command: 'sr_detach' };
  sr_scan: SrRequest & { command: 'sr_scan' };
  sr_update: SrRequest & { command: 'sr_update' };
  sr_content_type: SrRequest & { command: 'sr_content_type' };
  sr_probe: SrProbeRequest;
  vdi_create: VdiCreateRequest;
  vdi_introduce: VdiIntroduceRequest;
  vdi_update: VdiRequest & { command: 'vdi_update' };
  vdi_delete: VdiRequest & { command: 'vdi_delete' };
  vdi_attach: VdiAttachRequest & { command: 'vdi_attach' };
  vdi_detach: VdiRequest & { command: 'vdi_detach' };
  vdi_activate: VdiAttachRequest & { command: 'vdi_activate' };
  vdi_deactivate: VdiRequest & { command: 'vdi_deactivate' };
  vdi_snapshot: VdiSnapshotRequest & { command: 'vdi_snapshot' };
  vdi_clone: VdiSnapshotRequest & { command: 'vdi_clone' };
  vdi_resize: VdiResizeRequest & { command: 'vdi_resize' };
  vdi_resize_online: VdiResizeRequest & { command: 'vdi_resize_online' };
  vdi_generate_config: VdiRequest & { command: 'vdi_generate_config' };
  vdi_attach_from_config: VdiFromConfigRequest & { command: 'vdi_attach_from_config' };
  vdi_detach_from_config: VdiFromConfigRequest & { command: 'vdi_detach_from_config' };
  vdi_compose: VdiComposeRequest;
  vdi_epoch_begin: VdiRequest & { command: 'vdi_epoch_begin' };
  vdi_epoch_end: VdiRequest & { command: 'vdi_epoch_end' };
  vdi_enable_cbt: VdiRequest & { command: 'vdi_enable_cbt' };
  vdi_disable_cbt: VdiRequest & { command: 'vdi_disable_cbt' };
  vdi_data_destroy: VdiRequest & { command: 'vdi_data_destroy' };
  vdi_list_changed_blocks: VdiListChangedBlocksRequest;
}
export type AnyRequest = RequestMap[HandlerCommand];

// ---------------------------------------------------------------------------
// Member schemas.

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const str = z.string();
const uuid = z.string().regex(UUID_RE, { message: 'must be a UUID (8-4-4-4-12 hexadecimal digits)' });
const stringMap = z.record(z.string(), z.string());

/** The type of every member this SDK interprets; others pass through untouched in `raw`. */
const MEMBER_SCHEMAS: Record<string, z.ZodType> = {
  host_ref: str,
  command: str,
  args: z.array(z.string()),
  device_config: stringMap,
  session_ref: str,
  subtask_of: str,
  sr_ref: str,
  sr_uuid: uuid,
  vdi_ref: str,
  vdi_location: str,
  vdi_uuid: uuid,
  new_uuid: uuid,
  vdi_type: str,
  vdi_sm_config: stringMap,
  sr_sm_config: stringMap,
  driver_params: stringMap,
  vdi_on_boot: z.enum(['persist', 'reset']),
  vdi_allow_caching: z.enum(['true', 'false']),
  local_cache_sr: str,
};

/** checkMethodCall, throwing SRError BadRequest (143) with the reason. */
export function readMethodCall(args: readonly string[]): import('./xmlrpc.js').MethodCall {
  const r = checkMethodCall(args);
  if (typeof r === 'string') throw new SRError('BadRequest', r);
  return r;
}

function badRequest(detail: string): SRError {
  return new SRError('BadRequest', detail);
}

function pathText(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

function checkMember(name: string, value: XmlRpcValue): void {
  const schema = MEMBER_SCHEMAS[name];
  if (!schema) return;
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw badRequest(`member '${pathText([name, ...issue.path])}' ${issue.message}`);
  }
}

function checkArg(command: string, index: number, name: string, kind: ArgKind, v: string): void {
  const where = `member 'args[${index}]' (${name}) of ${command}`;
  if (kind === 'uint' && !/^[0-9]+$/.test(v)) throw badRequest(`${where} must be a non-negative decimal integer, got ${JSON.stringify(v)}`);
  if (kind === 'uint' && !Number.isSafeInteger(Number(v))) throw badRequest(`${where} is too large: ${v}`);
  if (kind === 'bool' && v !== 'true' && v !== 'false') throw badRequest(`${where} must be "true" or "false", got ${JSON.stringify(v)}`);
  if (kind === 'ref' && v === '') throw badRequest(`${where} must be a non-empty reference`);
}

const optionalString = (p: Record<string, XmlRpcValue>, k: string): string | undefined => (typeof p[k] === 'string' ? (p[k] as string) : undefined);

/**
 * Validates the params of `methodName` and returns the typed request.
 * `params` is the methodCall's params array: it must hold exactly one struct.
 */
export function parseRequest(methodName: string, params: XmlRpcValue[]): AnyRequest {
  if (!isCommand(methodName) || methodName === 'sr_get_driver_info') {
    if (methodName === 'sr_get_driver_info') throw new Error('sr_get_driver_info is answered statically');
    throw badRequest(`unknown command ${JSON.stringify(methodName)}`);
  }
  const command: CommandName = methodName;
  if (params.length !== 1) throw badRequest(`expected exactly one param (a struct), got ${params.length}`);
  const p = params[0];
  if (typeof p !== 'object' || p === null || Array.isArray(p) || p instanceof Date || p instanceof Uint8Array)
    throw badRequest('the param must be a struct');
  const spec = COMMAND_SPECS[command];
  for (const m of spec.required) {
    if (!(m in p)) throw badRequest(`missing member '${m}' (required for ${command})`);
  }
  for (const [k, v] of Object.entries(p)) checkMember(k, v);
  if ('command' in p && p['command'] !== command)
    throw badRequest(`member 'command' is ${JSON.stringify(p['command'])} but the method is ${command}`);
  const args = (p['args'] as string[] | undefined) ?? [];
  if (args.length !== spec.args.length)
    throw badRequest(`member 'args' of ${command} must hold ${spec.args.length} string(s), got ${args.length}`);
  spec.args.forEach(([name, kind], i) => checkArg(command, i, name, kind, args[i]!));

  const base = {
    command,
    host_ref: optionalString(p, 'host_ref') ?? '',
    device_config: p['device_config'] as StringMap,
    args,
    ...(typeof p['session_ref'] === 'string' ? { session_ref: p['session_ref'] } : {}),
    ...(typeof p['subtask_of'] === 'string' ? { subtask_of: p['subtask_of'] } : {}),
    raw: p,
  };
  const sr = { ...base, sr_ref: optionalString(p, 'sr_ref') ?? '', sr_uuid: optionalString(p, 'sr_uuid') ?? '' };
  const vdi = {
    ...sr,
    vdi_ref: optionalString(p, 'vdi_ref') ?? '',
    vdi_location: optionalString(p, 'vdi_location') ?? '',
    vdi_uuid: optionalString(p, 'vdi_uuid') ?? '',
    ...(typeof p['vdi_on_boot'] === 'string' ? { vdi_on_boot: p['vdi_on_boot'] } : {}),
    ...(typeof p['vdi_allow_caching'] === 'string' ? { vdi_allow_caching: p['vdi_allow_caching'] === 'true' } : {}),
    ...(typeof p['local_cache_sr'] === 'string' ? { local_cache_sr: p['local_cache_sr'] } : {}),
  };
  switch (command) {
    case 'sr_create':
      return { ...sr, command, size: Number(args[0]) };
    case 'sr_probe':
      return { ...base, command, sr_sm_config: (p['sr_sm_config'] as StringMap | undefined) ?? {} };
    case 'sr_delete':
    case 'sr_attach':
    case 'sr_detach':
    case 'sr_scan':
    case 'sr_update':
    case 'sr_content_type':
      return { ...sr, command } as AnyRequest;
    case 'vdi_create':
      return {
        ...sr,
        command,
        vdi_uuid: optionalString(p, 'vdi_uuid') ?? randomUUID(),
        ...(typeof p['vdi_type'] === 'string' ? { vdi_type: p['vdi_type'] } : {}),
        vdi_sm_config: p['vdi_sm_config'] as StringMap,
        size: Number(args[0]),
        name_label: args[1]!,
        name_description: args[2]!,
        metadata_of_pool: args[3]!,
        is_a_snapshot: args[4] === 'true',
        snapshot_time: args[5]!,
        snapshot_of: args[6]!,
        read_only: args[7] === 'true',
      };
    case 'vdi_introduce':
      return {
        ...sr,
        command,
        new_uuid: p['new_uuid'] as string,
        vdi_location: p['vdi_location'] as string,
        vdi_sm_config: p['vdi_sm_config'] as StringMap,
      };
    case 'vdi_attach':
    case 'vdi_activate':
      return { ...vdi, command, writable: args[0] === 'true' } as AnyRequest;
    case 'vdi_resize':
    case 'vdi_resize_online':
      return { ...vdi, command, new_size: Number(args[0]) } as AnyRequest;
    case 'vdi_snapshot':
    case 'vdi_clone':
      return { ...vdi, command, driver_params: (p['driver_params'] as StringMap | undefined) ?? {} } as AnyRequest;
    case 'vdi_compose':
      return { ...vdi, command, vdi1_ref: args[0]! };
    case 'vdi_list_changed_blocks':
      return { ...vdi, command, vdi_to_ref: args[0]! };
    case 'vdi_attach_from_config':
    case 'vdi_detach_from_config':
      return {
        command,
        device_config: p['device_config'] as StringMap,
        sr_uuid: p['sr_uuid'] as string,
        vdi_uuid: p['vdi_uuid'] as string,
        args,
        ...(typeof p['host_ref'] === 'string' ? { host_ref: p['host_ref'] } : {}),
        ...(typeof p['session_ref'] === 'string' ? { session_ref: p['session_ref'] } : {}),
        raw: p,
      } as AnyRequest;
    default:
      return { ...vdi, command } as AnyRequest;
  }
}
