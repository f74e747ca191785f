// The `lvm` driver (LVMSR): VDIs as logical volumes in VG_XenStorage-<sr>,
// laid out as xapi's LVHDSR (see docs/lvm.md). Handlers are loaded on demand
// so sr_get_driver_info stays fast.
import { defineDriver } from '../../src/sdk/driver.js';
import { DRIVER_INFO } from './info.js';

export const driver = defineDriver({
  info: DRIVER_INFO,
  // Run with the SR lock held (LVHDSR.OPS_EXCLUSIVE in sm, plus the commands
  // that finish journals, write MGT or change activation refcounts).
  exclusive: [
    'sr_create',
    'sr_delete',
    'sr_attach',
    'sr_detach',
    'sr_scan',
    'sr_update',
    'sr_probe',
    'vdi_create',
    'vdi_delete',
    'vdi_resize',
    'vdi_snapshot',
    'vdi_clone',
    'vdi_introduce',
    'vdi_update',
    'vdi_attach',
    'vdi_detach',
    'vdi_activate',
    'vdi_attach_from_config',
    'vdi_detach_from_config',
  ],
  handlers: async () => (await import('./handlers.js')).handlers,
});
