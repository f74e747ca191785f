// vdi_resize on a file SR: grow only, journalled. VHDs additionally carry
// vhd-util's own block-move journal (`.journal-<uuid>`, as sm's FileSR); a
// crash mid-resize is undone from it on the next call (vhd-util revert), so
// the VDI comes back at its old size with its data, or at the new one.
import { existsSync, rmSync } from 'node:fs';
import { SRError } from '../errors/sr-error.js';
import { defaultResizeJournal, opsFor } from '../formats/index.js';
import * as vhdUtil from '../tools/vhd-util.js';
import { fistPoint } from './fist.js';
import { removeJournal, writeJournal, type ResizeJournal } from './journal.js';
import { findVdiFile } from './paths.js';

export interface ResizeOutcome {
  from: number;
  to: number;
}

export async function resizeFile(srDir: string, uuid: string, newSize: number): Promise<ResizeOutcome> {
  const f = findVdiFile(srDir, uuid);
  if (f === null) throw new SRError('VDIUnavailable', `VDI ${uuid} has no image file in ${srDir}`);
  const ops = opsFor(f.format);
  const info = await ops.info(f.path);
  if (info.hidden) throw new SRError('VDIUnavailable', `VDI ${uuid} is a hidden base copy and cannot be resized`);
  if (newSize < info.virtualSize) {
    throw new SRError('VDISize', `shrinking is not allowed: VDI ${uuid} is ${info.virtualSize} bytes, requested ${newSize} bytes`);
  }
  if (newSize === info.virtualSize) return { from: info.virtualSize, to: info.virtualSize };
  const j: ResizeJournal = { op: 'resize', vdi: uuid, format: f.format, from: info.virtualSize, to: newSize };
  writeJournal(srDir, j);
  fistPoint('resize-journal');
  const to = await ops.resize(f.path, newSize);
  fistPoint('resize-done');
  removeJournal(srDir, j);
  return { from: info.virtualSize, to };
}

export async function recoverResize(srDir: string, j: ResizeJournal): Promise<string> {
  const f = findVdiFile(srDir, j.vdi);
  let what = 'nothing to undo';
  if (f !== null && f.format === 'vhd') {
    const vj = defaultResizeJournal(f.path);
    if (existsSync(vj)) {
      await vhdUtil.revert({ path: f.path, journal: vj });
      rmSync(vj, { force: true });
      what = 'reverted from the vhd-util journal';
    }
  }
  removeJournal(srDir, j);
  return what;
}
