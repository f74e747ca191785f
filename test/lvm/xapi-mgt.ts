// xapi's MGT records (srmetadata 1.2) read and written the way xapi's own code
// does it, independently of src/: the header's length decides what is read;
// sector 1 is read from just past the XML declaration; every 1 KiB after the
// first 2 KiB is a VDI record; sectors are padded with spaces. The writer adds
// what xapi leaves there too: records marked deleted and its `offset` tag.

const SECTOR = 512;
const DECL = '<?xml version="1.0" ?>';

const unescape = (s: string): string => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Elements `<name>text</name>` of an XML fragment, unescaped; throws on text that is not well-formed there. */
function elements(xml: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of xml.matchAll(/<(\w+)>([^<]*)<\/\1>/g)) {
    if (/&(?!(amp|lt|gt|quot|apos);)/.test(m[2]!)) throw new Error(`broken entity in <${m[1]}>: ${m[2]}`);
    out[m[1]!] = unescape(m[2]!.trim());
  }
  return out;
}

export interface AsXapiReadsIt {
  header: { length: number; major: number; minor: number };
  sr: Record<string, string>;
  vdis: Record<string, string>[];
}

export function readAsXapi(mgt: Buffer): AsXapiReadsIt {
  const [magic, len, major, minor] = mgt.subarray(0, SECTOR).toString('latin1').trim().split(':');
  if (magic !== 'XSSM') throw new Error(`no XSSM header: ${mgt.subarray(0, 40).toString('latin1')}`);
  const length = Number(len!.trim());
  const sectorText = (from: number, to: number): string => mgt.subarray(from, to).toString('utf8').replace(/\0/g, '');
  if (!sectorText(SECTOR, 2 * SECTOR).startsWith(DECL)) throw new Error('sector 1 does not start with the XML declaration');
  const sr = elements(sectorText(SECTOR + DECL.length, 4 * SECTOR));
  const vdis: Record<string, string>[] = [];
  for (let off = 4 * SECTOR; off < length; off += 2 * SECTOR) {
    const rec = sectorText(off, off + 2 * SECTOR);
    if (!rec.trimStart().startsWith('<vdi>') || !rec.trimEnd().endsWith('</vdi>')) throw new Error(`VDI record at ${off} is not one <vdi> element`);
    vdis.push(elements(rec));
  }
  return { header: { length, major: Number(major), minor: Number(minor) }, sr, vdis };
}

const pad = (s: string): Buffer => {
  const b = Buffer.from(s, 'utf8');
  if (b.length > SECTOR) throw new Error(`sector overflow: ${s}`);
  return Buffer.concat([b, Buffer.alloc(SECTOR - b.length, 0x20)]);
};

/** MGT bytes (4 MiB) as xapi leaves them: records in slot order, `deleted: '1'` ones included. */
export function writeAsXapi(sr: { uuid: string; allocation: string; name_label: string; name_description: string }, vdis: Record<string, string>[]): Buffer {
  const t = (k: string, v: string): string => `<${k}>${v}</${k}>`;
  const length = 4 * SECTOR + 2 * SECTOR * vdis.length;
  const parts = [
    pad(`XSSM:${String(length).padEnd(10)}:1:2`),
    pad(`${DECL}${t('uuid', sr.uuid)}${t('allocation', sr.allocation)}`),
    pad(t('name_label', escape(sr.name_label))),
    pad(t('name_description', escape(sr.name_description))),
  ];
  vdis.forEach((v, i) => {
    parts.push(pad(`<vdi>${t('name_label', escape(v['name_label'] ?? ''))}${t('name_description', escape(v['name_description'] ?? ''))}`));
    const rest = Object.entries({ deleted: '0', ...v, offset: String(4 * SECTOR + 2 * SECTOR * i) })
      .filter(([k]) => k !== 'name_label' && k !== 'name_description')
      .map(([k, val]) => t(k, val))
      .join('');
    parts.push(pad(`${rest}</vdi>`));
  });
  const bytes = Buffer.concat(parts);
  return Buffer.concat([bytes, Buffer.alloc(4 * 1024 * 1024 - bytes.length)]);
}
