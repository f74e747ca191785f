// What every file-based SR type (file, ext, nfs) declares, because the shared
// core implements it: one list of capabilities and one of exclusive commands.
// No imports: each driver's info.ts loads this on the sr_get_driver_info path.

/** Capabilities backed by the file-SR core's handlers (checked by checkDriver). */
export const FILE_SR_CAPABILITIES = [
  'SR_PROBE',
  'SR_UPDATE',
  'VDI_CREATE',
  'VDI_DELETE',
  'VDI_ATTACH',
  'VDI_DETACH',
  'VDI_ACTIVATE',
  'VDI_DEACTIVATE',
  'VDI_CLONE',
  'VDI_SNAPSHOT',
  'VDI_RESIZE',
  'VDI_INTRODUCE',
  'VDI_UPDATE',
  'VDI_GENERATE_CONFIG',
  'THIN_PROVISIONING',
] as const;

/**
 * Commands run with the SR lock held: sm's FileSR.OPS_EXCLUSIVE, plus the
 * commands that finish interrupted journals or write the SR (resize,
 * introduce, update).
 */
export const FILE_SR_EXCLUSIVE = [
  'sr_create',
  'sr_delete',
  'sr_probe',
  'sr_attach',
  'sr_detach',
  'sr_scan',
  'sr_update',
  'vdi_create',
  'vdi_delete',
  'vdi_attach',
  'vdi_detach',
  'vdi_resize',
  'vdi_resize_online',
  'vdi_snapshot',
  'vdi_clone',
  'vdi_introduce',
] as const;
