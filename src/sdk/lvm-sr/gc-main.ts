// `sm-gc <sr-uuid>` for an LVM SR (the file-SR entry point, file-sr/gc-main.ts,
// hands over here when the SR is an attached lvm SR): under the SR lock,
// finish interrupted GC journals, then remove garbage, coalesce and
// leaf-coalesce (gc.ts). Records in the toolstack are brought up to date by
// the next sr_scan. Journals of other operations (snapshot, resize) are left
// to the driver's next command; the VDIs they name are not touched.
import { withSrLock } from '../lock.js';
import { attachedDevices } from './attached-devices.js';
import { collectLvmGarbage, recoverGcJournal } from './gc.js';
import { readInventory } from './inventory.js';
import { openMetadata } from './metadata.js';
import { errText, openLvmSr } from './sr.js';

export interface LvmGcRun {
  srUuid: string;
  /** PVs given on the command line (--device); else the ones recorded at sr_attach. */
  devices: string[] | null;
  leafCoalesce: boolean;
  out: (line: string) => void;
  err: (line: string) => void;
}

export async function lvmGcMain(o: LvmGcRun): Promise<number> {
  const devices = o.devices ?? attachedDevices(o.srUuid);
  if (devices === null) {
    o.err(`sm-gc: lvm SR ${o.srUuid}: its devices are not recorded here (attached by an older driver?); re-plug its PBD or pass --device=/dev/...`);
    return 2;
  }
  const sr = openLvmSr(o.srUuid, { device: devices.join(',') });
  return withSrLock(sr.uuid, async () => {
    const inv = await readInventory(sr);
    const meta = await openMetadata(sr, o.out, inv.mgtExtents);
    const failed: string[] = [];
    for (const j of [...meta.journals()]) {
      if (j.op !== 'coalesce' && j.op !== 'leaf-coalesce') continue;
      try {
        o.out(`recovery: ${await recoverGcJournal(sr, meta, j)}`);
      } catch (e) {
        failed.push(`${j.op} journal of ${j.vdi} not finished: ${errText(e)}`);
      }
    }
    const report = await collectLvmGarbage(sr, meta, { leafCoalesce: o.leafCoalesce, log: o.out });
    for (const e of [...failed, ...report.errors]) o.err(`sm-gc: ${e}`);
    o.out(`sm-gc: removed ${report.removed.length}, coalesced ${report.coalesced.length}, leaf-coalesced ${report.leafCoalesced.length}`);
    return failed.length + report.errors.length > 0 ? 1 : 0;
  });
}
