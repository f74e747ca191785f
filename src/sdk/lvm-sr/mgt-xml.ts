// xapi's own MGT encoding (srmetadata, version 1.2), which xapi's LVHDSR reads
// on attach and scan. We write it at the start of MGT so that an SR made by us
// is self-describing to xapi, and read it so that an SR made by xapi is to us.
//
// Layout, in 512-byte sectors padded with spaces:
//   0      "XSSM:<length, left-justified in 10>:1:2" (length = bytes in use)
//   1      <?xml version="1.0" ?><uuid>SR</uuid><allocation>thick|thin</allocation>
//   2      <name_label>SR name</name_label>
//   3      <name_description>SR description</name_description>
//   4+2k   <vdi><name_label>…</name_label><name_description>…</name_description>
//   5+2k   <uuid>…</uuid><is_a_snapshot>0|1</is_a_snapshot>…<deleted>0|1</deleted></vdi>
// xapi marks a removed VDI `deleted` and reuses its slot; we write live records only.
import { SRError } from '../errors/sr-error.js';
// xapi escapes with xml.sax.saxutils.escape: & < > only, as Python's xmlrpc does; so
// our cuts (cutToFit) land where xapi's do.
import { escapeXml, readXml } from '../protocol/xmlrpc.js';
import { UUID_RE } from './naming.js';

export const SECTOR = 512;
const SR_INFO_SECTORS = 4;
const VDI_SECTORS = 2;
const XML_DECL = '<?xml version="1.0" ?>';
const MAGIC = 'XSSM';
const MAJOR = 1;
const MINOR = 2;
/** Room for name_label + name_description in a VDI's first sector, as xapi computes it. */
const VDI_NAMES_ROOM = SECTOR - 2 * 'name_label'.length - 2 * 'name_description'.length - 'vdi'.length - 12;

export interface XapiSrInfo {
  uuid: string;
  allocation: string;
  name_label: string;
  name_description: string;
}

/** One VDI record: xapi's tags (uuid, name_label, is_a_snapshot, …, deleted) as strings. */
export type XapiVdiRecord = Record<string, string>;

export interface XapiMetadata {
  sr: XapiSrInfo;
  /** Every record in use, deleted ones included (`deleted` = "1"), in slot order. */
  vdis: XapiVdiRecord[];
}


/**
 * The longest start of `value` (whole characters) whose escaped form takes at
 * most `room` bytes. xapi cuts the escaped bytes, which can split an entity or a
 * UTF-8 sequence; we cut before escaping and keep the record parseable.
 */
export function cutToFit(value: string, room: number): string {
  if (Buffer.byteLength(escapeXml(value), 'utf8') <= room) return value;
  let used = 0;
  let end = 0;
  for (const ch of value) {
    const n = Buffer.byteLength(escapeXml(ch), 'utf8');
    if (used + n > room) break;
    used += n;
    end += ch.length;
  }
  return value.slice(0, end);
}

const SR_NAME_ROOM = { name_label: SECTOR - 2 * 'name_label'.length - 5, name_description: SECTOR - 2 * 'name_description'.length - 5 };

/** The SR's name and description as xapi's records hold them (cut to fit their sectors). */
export function xapiSrNames(label: string, description: string): { label: string; description: string } {
  return { label: cutToFit(label, SR_NAME_ROOM.name_label), description: cutToFit(description, SR_NAME_ROOM.name_description) };
}

/** A VDI's name and description as xapi's records hold them: both share one sector; when they do not fit, each over half the room is cut to half, as xapi does. */
export function xapiVdiNames(label: string, description: string): { label: string; description: string } {
  let l = cutToFit(label, VDI_NAMES_ROOM);
  let d = cutToFit(description, VDI_NAMES_ROOM);
  const bytes = (s: string): number => Buffer.byteLength(escapeXml(s), 'utf8');
  if (bytes(l) + bytes(d) > VDI_NAMES_ROOM) {
    const half = Math.floor(VDI_NAMES_ROOM / 2);
    if (bytes(l) > half) l = cutToFit(label, half);
    if (bytes(d) > half) d = cutToFit(description, half);
  }
  return { label: l, description: d };
}

/** Write `text` as sector `index` of `out` (already space-filled). */
function putSector(out: Buffer, index: number, text: string, what: string): void {
  const n = Buffer.byteLength(text, 'utf8');
  if (n > SECTOR) throw new SRError('MetadataError', `${what} takes ${n} bytes in xapi's MGT encoding; a sector holds ${SECTOR}`);
  out.write(text, index * SECTOR, 'utf8');
}

const tag = (name: string, value: string): string => `<${name}>${value}</${name}>`;

/** The bytes xapi would hold for this SR and these VDI records (all live), `length` long. */
export function encodeXapiMetadata(sr: XapiSrInfo, vdis: XapiVdiRecord[], room: number): Buffer {
  const length = (SR_INFO_SECTORS + VDI_SECTORS * vdis.length) * SECTOR;
  if (length > room) {
    const most = Math.floor((room / SECTOR - SR_INFO_SECTORS) / VDI_SECTORS);
    throw new SRError('MetadataError', `the SR has ${vdis.length} VDI records; xapi's MGT encoding holds at most ${most} in the ${room} bytes it has on this SR`);
  }
  const out = Buffer.alloc(length, 0x20);
  const srNames = xapiSrNames(sr.name_label, sr.name_description);
  putSector(out, 0, `${MAGIC}:${String(length).padEnd(10)}:${MAJOR}:${MINOR}`, 'the MGT header');
  putSector(out, 1, `${XML_DECL}${tag('uuid', escapeXml(sr.uuid))}${tag('allocation', escapeXml(sr.allocation))}`, 'the SR uuid and allocation');
  putSector(out, 2, tag('name_label', escapeXml(srNames.label)), 'the SR name');
  putSector(out, 3, tag('name_description', escapeXml(srNames.description)), 'the SR description');
  vdis.forEach((v, i) => {
    const at = SR_INFO_SECTORS + VDI_SECTORS * i;
    const names = xapiVdiNames(v['name_label'] ?? '', v['name_description'] ?? '');
    putSector(out, at, `<vdi>${tag('name_label', escapeXml(names.label))}${tag('name_description', escapeXml(names.description))}`, `the names of VDI ${v['uuid']}`);
    let rest = '';
    for (const [k, val] of Object.entries(v)) if (k !== 'name_label' && k !== 'name_description' && k !== 'deleted') rest += tag(k, escapeXml(val));
    putSector(out, at + 1, `${rest}${tag('deleted', v['deleted'] ?? '0')}</vdi>`, `the record of VDI ${v['uuid']}`);
  });
  return out;
}

/** Parse `<root>…</root>` into its child elements' trimmed texts (nested elements become records). */
function parseFlat(xml: string): Record<string, string | Record<string, string>> {
  return readXml(xml, flatReceiver).top;
}

function flatReceiver() {
  const stack: { name: string; text: string; children: Record<string, string> | null }[] = [];
  const top: Record<string, string | Record<string, string>> = {};
  return {
    top,
    open(name: string): void {
      const parent = stack.at(-1);
      if (parent && parent.children === null) parent.children = {};
      stack.push({ name, text: '', children: null });
    },
    text(t: string): void {
      const cur = stack.at(-1);
      if (cur) cur.text += t;
    },
    close(): void {
      const done = stack.pop()!;
      const parent = stack.at(-1);
      if (!parent) return;
      const value = done.children ?? done.text.trim();
      if (stack.length === 1) top[done.name] = value;
      else if (parent.children !== null && typeof value === 'string') parent.children[done.name] = value;
    },
  };
}

const text = (buf: Buffer, from: number, to: number): string => buf.subarray(from, to).toString('utf8').replace(/\0/g, '');

/**
 * Read xapi's encoding from the start of an MGT volume's bytes, or null when
 * the volume does not hold it (no XSSM header, a newer version, records that
 * do not parse).
 */
/** The length in use from xapi's header sector, or null when it is not one we read (no XSSM, a newer version). */
export function decodeXapiLength(head: Buffer): number | null {
  const fields = text(head, 0, SECTOR).trim().split(':');
  if (fields.length !== 4 || fields[0] !== MAGIC) return null;
  const [length, major, minor] = fields.slice(1).map((f) => (/^\s*\d+\s*$/.test(f) ? Number(f) : NaN)) as [number, number, number];
  if (!Number.isInteger(length) || !Number.isInteger(major) || !Number.isInteger(minor)) return null;
  if (major > MAJOR || (major === MAJOR && minor > MINOR)) return null;
  if (length < SR_INFO_SECTORS * SECTOR) return null;
  return length;
}

export function decodeXapiMetadata(buf: Buffer): XapiMetadata | null {
  const length = decodeXapiLength(buf.subarray(0, SECTOR));
  if (length === null || length > buf.length) return null;
  try {
    const srXml = text(buf, SECTOR + XML_DECL.length, SR_INFO_SECTORS * SECTOR);
    const sr = parseFlat(`<SRMetadata>${srXml}</SRMetadata>`);
    const str = (v: unknown): string => (typeof v === 'string' ? v : '');
    const info: XapiSrInfo = { uuid: str(sr['uuid']), allocation: str(sr['allocation']), name_label: str(sr['name_label']), name_description: str(sr['name_description']) };
    if (!UUID_RE.test(info.uuid)) return null;
    const vdis: XapiVdiRecord[] = [];
    for (let off = SR_INFO_SECTORS * SECTOR; off < length; off += VDI_SECTORS * SECTOR) {
      const rec = parseFlat(`<SRMetadata>${text(buf, off, off + VDI_SECTORS * SECTOR)}</SRMetadata>`)['vdi'];
      if (typeof rec !== 'object' || !UUID_RE.test(rec['uuid'] ?? '')) return null;
      vdis.push(rec);
    }
    return { sr: info, vdis };
  } catch {
    return null;
  }
}
