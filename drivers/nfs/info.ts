// DRIVER_INFO of the `nfs` SR type (NFSSR). Capabilities list only what this
// driver implements today; each one is added together with its handlers.
import { FILE_SR_CAPABILITIES } from '../../src/sdk/file-sr/declaration.js';
import { defineDriverInfo, PREFERRED_IMAGE_FORMATS_KEY } from '../../src/driver-info.js';

export const DRIVER_INFO = defineDriverInfo({
  name: 'NFS VHD, QCOW2 and raw',
  description: 'smapi-ts SR driver that stores disks as VHD, QCOW2 or raw image files on a remote NFS filesystem',
  vendor: 'smapi-ts project',
  copyright: '(C) 2026 smapi-ts contributors',
  driver_version: '0.1.0',
  required_api_version: '1.0',
  capabilities: FILE_SR_CAPABILITIES,
  configuration: [
    { key: 'server', description: 'hostname or IP address of NFS server (required)' },
    { key: 'serverpath', description: 'path on remote server (required)' },
    { key: 'nfsversion', description: 'NFS protocol version - 3, 4, 4.0, 4.1' },
    PREFERRED_IMAGE_FORMATS_KEY,
  ],
  supported_image_formats: ['vhd', 'qcow2', 'raw'],
  default_image_format: 'vhd',
});
