// The `ext` driver (EXTSR): an ext4 file system on LVM over local device(s),
// holding <uuid>.vhd|.qcow2|.raw files. Handlers are loaded on demand so
// sr_get_driver_info stays fast.
import { defineDriver } from '../../src/sdk/driver.js';
import { DRIVER_INFO } from './info.js';

export const driver = defineDriver({
  info: DRIVER_INFO,
  // Run with the SR lock held (FileSR.OPS_EXCLUSIVE in sm, plus the commands
  // that finish interrupted journals or write the SR: resize, introduce, update).
  exclusive: [
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
  ],
  handlers: async () => (await import('./handlers.js')).handlers,
});
