// The `file` SR type: the SR is a local directory (device-config:location),
// bind-mounted at <SM_SR_MOUNT_ROOT>/<sr_uuid> as xapi's FileSR does. Only how
// the SR is made, attached and detached lives here; the VDI side is the
// shared file-SR core (src/sdk/file-sr/).
import { mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { SRError } from '../../src/sdk/errors/sr-error.js';
import { escapeXml } from '../../src/sdk/protocol/xmlrpc.js';
import type { StringMap } from '../../src/sdk/protocol/requests.js';
import { bindMount } from '../../src/sdk/tools/mount.js';
import { fileSrHandlers, type FileSrType } from '../../src/sdk/file-sr/handlers.js';
import { readInventory } from '../../src/sdk/file-sr/inventory.js';
import { releaseMountPoint } from '../../src/sdk/file-sr/mount-point.js';
import { srStats } from '../../src/sdk/file-sr/reconcile.js';
import { DRIVER_INFO } from './info.js';

/** device-config:location, checked: present, absolute, no NUL byte. */
export function locationOf(dc: StringMap): string {
  const loc = dc['location'];
  if (loc === undefined || loc === '') {
    throw new SRError('ConfigLocationMissing', 'device-config:location is required: the local directory that holds the SR');
  }
  if (loc.includes('\0')) throw new SRError('BadRequest', `device-config:location ${JSON.stringify(loc)} contains a NUL byte`);
  if (!isAbsolute(loc)) throw new SRError('BadRequest', `device-config:location ${JSON.stringify(loc)} must be an absolute path`);
  return loc;
}

type Kind = 'missing' | 'dir' | 'other';
function kindOf(path: string): Kind {
  try {
    return statSync(path).isDirectory() ? 'dir' : 'other';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw e;
  }
}

function notADirectory(key: string, loc: string): SRError {
  return new SRError(key, `device-config:location ${loc} is not a directory (it is a file or another non-directory); give a directory path`);
}

export const FILE_SR: FileSrType = {
  srType: 'file',
  storageType: 'ext',
  info: DRIVER_INFO,

  async create(req) {
    const loc = locationOf(req.device_config);
    const kind = kindOf(loc);
    if (kind === 'other') throw notADirectory('FileSRCreate', loc);
    if (kind === 'dir') {
      const entries = readdirSync(loc);
      if (entries.length > 0) {
        throw new SRError('SRExists', `device-config:location ${loc} is not empty (${entries.length} entries, e.g. ${entries.slice(0, 3).join(', ')}); a new file SR needs an empty or missing directory`);
      }
      return;
    }
    try {
      mkdirSync(loc, { recursive: true, mode: 0o755 });
    } catch (e) {
      throw new SRError('FileSRCreate', `cannot create device-config:location ${loc}: ${(e as Error).message}`, { cause: e });
    }
  },

  async attach(req, srDir) {
    const loc = locationOf(req.device_config);
    const kind = kindOf(loc);
    if (kind === 'missing') throw new SRError('SRUnavailable', `device-config:location ${loc} does not exist`);
    if (kind === 'other') throw notADirectory('SRUnavailable', loc);
    mkdirSync(srDir, { recursive: true, mode: 0o700 });
    try {
      await bindMount({ source: loc, target: srDir });
    } catch (e) {
      try {
        rmdirSync(srDir);
      } catch {
        /* keep the original error */
      }
      throw new SRError('SRUnavailable', `bind-mounting ${loc} at ${srDir}: ${(e as Error).message}`, { cause: e });
    }
  },

  async detach(_req, srDir) {
    await releaseMountPoint(srDir);
  },

  async probe(req) {
    // A file SR has no label on disk: probing a location reports what is there.
    const loc = locationOf(req.device_config);
    const kind = kindOf(loc);
    if (kind === 'other') throw notADirectory('SRUnavailable', loc);
    if (kind === 'missing') return '<?xml version="1.0" ?>\n<SRlist/>\n';
    const inv = await readInventory(loc);
    const s = srStats(loc);
    return [
      '<?xml version="1.0" ?>',
      '<SRlist>',
      '\t<SR>',
      `\t\t<Location>${escapeXml(loc)}</Location>`,
      `\t\t<size>${s.physicalSize}</size>`,
      `\t\t<utilisation>${s.physicalUtilisation}</utilisation>`,
      `\t\t<VDIs>${inv.vdis.size}</VDIs>`,
      '\t</SR>',
      '</SRlist>',
      '',
    ].join('\n');
  },
};

export const handlers = fileSrHandlers(FILE_SR);
