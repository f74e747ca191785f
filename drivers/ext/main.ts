// The `ext` driver (EXTSR): an ext4 file system on LVM over local device(s),
// holding <uuid>.vhd|.qcow2|.raw files. Handlers are loaded on demand so
// sr_get_driver_info stays fast.
import { defineDriver } from '../../src/sdk/driver.js';
import { FILE_SR_EXCLUSIVE } from '../../src/sdk/file-sr/declaration.js';
import { DRIVER_INFO } from './info.js';

export const driver = defineDriver({
  info: DRIVER_INFO,
  exclusive: FILE_SR_EXCLUSIVE,
  handlers: async () => (await import('./handlers.js')).handlers,
});
