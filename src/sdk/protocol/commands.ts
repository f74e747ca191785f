// The SMAPIv1 commands xapi sends (spec §3.1) and, for each, the members its
// request must carry. Plain data with no imports, so the start-up path can use it.

/** Every command sm's SRCommand dispatches; anything else is answered BadRequest. */
export const COMMANDS = [
  'sr_get_driver_info',
  'sr_create',
  'sr_delete',
  'sr_attach',
  'sr_detach',
  'sr_probe',
  'sr_scan',
  'sr_update',
  'sr_content_type',
  'vdi_create',
  'vdi_update',
  'vdi_introduce',
  'vdi_delete',
  'vdi_attach',
  'vdi_detach',
  'vdi_activate',
  'vdi_deactivate',
  'vdi_snapshot',
  'vdi_clone',
  'vdi_resize',
  'vdi_resize_online',
  'vdi_generate_config',
  'vdi_attach_from_config',
  'vdi_detach_from_config',
  'vdi_compose',
  'vdi_epoch_begin',
  'vdi_epoch_end',
  'vdi_enable_cbt',
  'vdi_disable_cbt',
  'vdi_data_destroy',
  'vdi_list_changed_blocks',
] as const;
export type CommandName = (typeof COMMANDS)[number];
/** Commands a driver implements with a handler (everything except the static driver-info answer). */
export type HandlerCommand = Exclude<CommandName, 'sr_get_driver_info'>;

const COMMAND_SET: ReadonlySet<string> = new Set(COMMANDS);
export function isCommand(s: string): s is CommandName {
  return COMMAND_SET.has(s);
}

/** What one positional argument in `args` holds, and how it is checked. */
export type ArgKind = 'uint' | 'bool' | 'string' | 'ref';

export interface CommandSpec {
  /** Members that must be present (spec §1.3, DummySR's _assertValues, plus what the command cannot work without). */
  required: readonly string[];
  /** The `args` array: one entry per position (name, kind). */
  args: ReadonlyArray<readonly [string, ArgKind]>;
}

const BASE = ['host_ref', 'command', 'args', 'device_config'] as const;
const SR_SCOPED = [...BASE, 'session_ref', 'sr_ref', 'sr_uuid'] as const;
const VDI_SCOPED = [...BASE, 'sr_ref', 'sr_uuid', 'vdi_ref', 'vdi_location', 'vdi_uuid'] as const;

export const COMMAND_SPECS: Readonly<Record<CommandName, CommandSpec>> = {
  // Answered before anything else; sm only needs device_config (may be empty).
  sr_get_driver_info: { required: ['device_config'], args: [] },
  sr_create: { required: SR_SCOPED, args: [['size', 'uint']] },
  sr_delete: { required: SR_SCOPED, args: [] },
  sr_attach: { required: SR_SCOPED, args: [] },
  sr_detach: { required: SR_SCOPED, args: [] },
  sr_scan: { required: SR_SCOPED, args: [] },
  sr_update: { required: SR_SCOPED, args: [] },
  sr_content_type: { required: [...BASE, 'sr_ref', 'sr_uuid'], args: [] },
  // No SR yet: no sr_ref / sr_uuid.
  sr_probe: { required: [...BASE, 'session_ref'], args: [] },
  vdi_create: {
    required: [...BASE, 'sr_ref', 'sr_uuid', 'vdi_sm_config'],
    args: [
      ['size', 'uint'],
      ['name_label', 'string'],
      ['name_description', 'string'],
      ['metadata_of_pool', 'string'],
      ['is_a_snapshot', 'bool'],
      ['snapshot_time', 'string'],
      ['snapshot_of', 'string'],
      ['read_only', 'bool'],
    ],
  },
  vdi_introduce: { required: [...BASE, 'sr_ref', 'sr_uuid', 'vdi_sm_config', 'new_uuid', 'vdi_location'], args: [] },
  vdi_update: { required: VDI_SCOPED, args: [] },
  vdi_delete: { required: VDI_SCOPED, args: [] },
  vdi_attach: { required: VDI_SCOPED, args: [['writable', 'bool']] },
  vdi_detach: { required: VDI_SCOPED, args: [] },
  vdi_activate: { required: VDI_SCOPED, args: [['writable', 'bool']] },
  vdi_deactivate: { required: VDI_SCOPED, args: [] },
  // DummySR asserts only the SR members; the VDI ones are needed to know what to snapshot.
  vdi_snapshot: { required: VDI_SCOPED, args: [] },
  vdi_clone: { required: VDI_SCOPED, args: [] },
  vdi_resize: { required: VDI_SCOPED, args: [['new_size', 'uint']] },
  vdi_resize_online: { required: VDI_SCOPED, args: [['new_size', 'uint']] },
  vdi_generate_config: { required: VDI_SCOPED, args: [] },
  // Built by vdi_generate_config, replayed without xapi: no refs, no session, no args.
  vdi_attach_from_config: { required: ['command', 'device_config', 'sr_uuid', 'vdi_uuid'], args: [] },
  vdi_detach_from_config: { required: ['command', 'device_config', 'sr_uuid', 'vdi_uuid'], args: [] },
  vdi_compose: { required: VDI_SCOPED, args: [['vdi1_ref', 'ref']] },
  vdi_epoch_begin: { required: VDI_SCOPED, args: [] },
  vdi_epoch_end: { required: VDI_SCOPED, args: [] },
  vdi_enable_cbt: { required: VDI_SCOPED, args: [] },
  vdi_disable_cbt: { required: VDI_SCOPED, args: [] },
  vdi_data_destroy: { required: VDI_SCOPED, args: [] },
  vdi_list_changed_blocks: { required: VDI_SCOPED, args: [['vdi_to_ref', 'ref']] },
};

/** Commands whose request names one VDI (sm's NEEDS_VDI_OBJECT). */
export function isVdiCommand(c: CommandName): boolean {
  return c.startsWith('vdi_') && c !== 'vdi_create' && c !== 'vdi_introduce';
}
