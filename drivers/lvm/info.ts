// DRIVER_INFO of the `lvm` SR type (LVMSR). Capabilities list only what this
// driver implements (checked against its handlers by checkDriver).
import { defineDriverInfo, PREFERRED_IMAGE_FORMATS_KEY } from '../../src/driver-info.js';

export const DRIVER_INFO = defineDriverInfo({
  name: 'Local VHD, QCOW2 and raw on LVM',
  description: 'smapi-ts SR driver that stores disks as VHD, QCOW2 or raw images on Logical Volumes within a locally-attached Volume Group',
  vendor: 'smapi-ts project',
  copyright: '(C) 2026 smapi-ts contributors',
  driver_version: '0.2.0',
  required_api_version: '1.0',
  capabilities: [
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
  ],
  configuration: [
    { key: 'device', description: 'local device path(s), comma-separated (required) (e.g. /dev/sda3 or /dev/sdb,/dev/sdc)' },
    PREFERRED_IMAGE_FORMATS_KEY,
  ],
  supported_image_formats: ['vhd', 'qcow2', 'raw'],
  default_image_format: 'vhd',
});
