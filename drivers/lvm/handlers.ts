// The lvm driver's handlers: the LVM SR core (src/sdk/lvm-sr) with this driver's DRIVER_INFO.
import { lvmSrHandlers } from '../../src/sdk/lvm-sr/handlers.js';
import { DRIVER_INFO } from './info.js';

export const handlers = lvmSrHandlers(DRIVER_INFO);
