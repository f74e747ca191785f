// The `lvm` driver (LVMSR). Commands without a handler answer Unimplemented (38),
// as sm's base classes do, until the driver's issue adds them.
import { defineDriver } from '../../src/sdk/driver.js';
import { DRIVER_INFO } from './info.js';

export const driver = defineDriver({
  info: DRIVER_INFO,
  // Run with the SR lock held (LVHDSR.OPS_EXCLUSIVE in sm).
  exclusive: [
    'sr_create',
    'sr_delete',
    'sr_attach',
    'sr_detach',
    'sr_scan',
    'sr_update',
    'vdi_create',
    'vdi_delete',
    'vdi_resize',
    'vdi_snapshot',
    'vdi_clone',
  ],
  handlers: {},
});
