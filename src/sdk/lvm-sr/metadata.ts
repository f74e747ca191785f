// The MGT volume as the handlers use it: read once per command (from the
// inventory), changed through `update`, which writes the next copy atomically
// (mgt.ts), xapi's records included. An MGT in neither xapi's encoding nor ours
// is never overwritten: record changes are skipped with a log line, and
// journalled operations are refused.
import { SRError } from '../errors/sr-error.js';
import * as lvm from '../tools/lvm.js';
import { PvReader, readVgLayout, type LvExtents } from './layout.js';
import { emptyContent, readMgt, writeMgt, type Journal, type MgtContent, type MgtState } from './mgt.js';
import { MGT_LV, MGT_SIZE } from './naming.js';
import type { LvmSr } from './sr.js';

export class SrMetadata {
  constructor(
    private readonly sr: LvmSr,
    private ext: LvExtents,
    private state: MgtState,
    private readonly log: (m: string) => void,
  ) {}

  get kind(): MgtState['kind'] {
    return this.state.kind;
  }

  get content(): MgtContent {
    return this.state.content ?? emptyContent(this.sr.uuid);
  }

  get writable(): boolean {
    return this.state.kind !== 'foreign';
  }

  /** Apply `change` to a copy of the content and write it as the next copy. */
  update(change: (c: MgtContent) => void): void {
    if (!this.writable) {
      this.log(`MGT of SR ${this.sr.uuid} is in neither xapi's encoding nor ours; record change not written`);
      return;
    }
    const next = structuredClone(this.content);
    change(next);
    this.state = writeMgt(this.ext, this.state, next);
  }

  journals(): Journal[] {
    return this.content.journals;
  }

  /** Whether an operation in flight names VDI `uuid` in any role (source, base, parent, child...). */
  journalNames(uuid: string): boolean {
    return this.content.journals.some((j) => JSON.stringify(j).includes(uuid));
  }

  /** Record (or replace) the journal of an operation in flight; refuses when MGT cannot be written. */
  putJournal(j: Journal): void {
    if (!this.writable) throw new SRError('MetadataError', `SR ${this.sr.uuid}: the MGT volume is in neither xapi's encoding nor ours, so this operation cannot be journalled; refusing it`);
    this.update((c) => {
      c.journals = c.journals.filter((x) => !(x.op === j.op && x.vdi === j.vdi));
      c.journals.push(j);
    });
  }

  dropJournal(j: Journal, also?: (c: MgtContent) => void): void {
    this.update((c) => {
      c.journals = c.journals.filter((x) => !(x.op === j.op && x.vdi === j.vdi));
      also?.(c);
    });
  }
}

/** Open the SR's MGT volume, creating it (4 MiB, as xapi) when the VG has none. */
export async function openMetadata(sr: LvmSr, log: (m: string) => void, known?: LvExtents | null, init?: { name: string; description: string }): Promise<SrMetadata> {
  let ext = known ?? (await readVgLayout(sr.vg, sr.scope)).lvs.get(MGT_LV) ?? null;
  if (ext === null) {
    try {
      await lvm.lvcreate({ vg: sr.vg, name: MGT_LV, sizeBytes: MGT_SIZE, activate: false }, sr.scope);
    } catch (e) {
      throw new SRError('MetadataError', `creating the MGT volume ${sr.vg}/${MGT_LV}: ${(e as Error).message}`, { cause: e });
    }
    ext = (await readVgLayout(sr.vg, sr.scope)).lvs.get(MGT_LV) ?? null;
    if (ext === null) throw new SRError('MetadataError', `MGT volume ${sr.vg}/${MGT_LV} was created but LVM does not report it`);
    // Whatever the extents held before must not read as a (foreign) MGT.
    const w = new PvReader('r+');
    try {
      w.write(ext, 0, Buffer.alloc(MGT_SIZE));
    } finally {
      w.close();
    }
  }
  let state = readMgt(ext);
  if (state.tookOverXapi) log(`MGT of SR ${sr.uuid}: xapi changed its records since our last write; its names, flags and deletions are taken over`);
  if (state.kind === 'xapi') log(`MGT of SR ${sr.uuid} holds xapi's records only (an SR xapi made); ours are added at the next change`);
  if (state.kind === 'empty') state = writeMgt(ext, state, emptyContent(sr.uuid, init?.name ?? '', init?.description ?? ''));
  return new SrMetadata(sr, ext, state, log);
}
