// The metadata dump of `vhd-util read -p` (also printed by a failing `check`),
// in blktap's wording and layout. sm parses `Disk type : X hard disk` and the
// `decoded name :` lines.
import { DISK_DIFF, DISK_DYNAMIC, DISK_FIXED, VHD_EPOCH_OFFSET, byteChecksum, decodeParentName, encodeFooter, encodeHeader, type Footer, type Header } from './format.js';
import { decodeLocator, locatorCodeName } from './locators.js';
import type { VhdFile } from './vhd-file.js';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number) => String(n).padStart(2, '0');

/** ctime(3) in local time, without the newline: `Sat Jan  1 00:00:00 2000`. */
export function ctime(vhdSeconds: number): string {
  const d = new Date((vhdSeconds + VHD_EPOCH_OFFSET) * 1000);
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${d.getFullYear()}`;
}

const hex8 = (n: number) => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
const typeName = (t: number) =>
  t === DISK_FIXED ? 'Fixed' : t === DISK_DYNAMIC ? 'Dynamic' : t === DISK_DIFF ? 'Differencing' : 'Unknown';

function osName(os: number): string {
  if (os === 0x5769326b) return 'Windows';
  if (os === 0x4d616320) return 'Macintosh';
  return 'Unknown!';
}

function uuid(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function dumpFooter(f: Footer): string {
  const computed = byteChecksum(encodeFooterRaw(f), 64);
  const feats: string[] = [];
  if (f.features & 1) feats.push('<TEMP>');
  if (f.features & 2) feats.push('<RESV>');
  const geoBytes = f.geometry.cyl * f.geometry.heads * f.geometry.spt * 512;
  const mb = (n: bigint | number) => `${BigInt(n) >> 20n} MB (${n} Bytes)`;
  return [
    'VHD Footer Summary:',
    '-------------------',
    `Cookie              : ${f.cookie}`,
    `Features            : (${hex8(f.features)}) ${feats.join('|')}`,
    `File format version : Major: ${f.version >>> 16}, Minor: ${f.version & 0xffff}`,
    `Data offset         : ${f.dataOffset}`,
    `Timestamp           : ${ctime(f.timestamp)}`,
    `Creator Application : '${f.creatorApp.replace(/\0+$/, '')}'`,
    `Creator version     : Major: ${f.creatorVersion >>> 16}, Minor: ${f.creatorVersion & 0xffff}`,
    `Creator OS          : ${osName(f.creatorOs)}`,
    `Original disk size  : ${mb(f.origSize)}`,
    `Current disk size   : ${mb(f.currSize)}`,
    `Geometry            : Cyl: ${f.geometry.cyl}, Hds: ${f.geometry.heads}, Sctrs: ${f.geometry.spt}`,
    `                    : = ${Math.floor(geoBytes / 1048576)} MB (${geoBytes} Bytes)`,
    `Disk type           : ${typeName(f.type)} hard disk`,
    `Checksum            : ${hex8(f.checksum)}|${hex8(computed)} (${f.checksum === computed ? 'Good!' : 'Bad!'})`,
    `UUID                : ${uuid(f.uuid)}`,
    `Saved state         : ${f.savedState ? 'Yes' : 'No'}`,
    `Hidden              : ${f.hidden}`,
    '',
    '',
  ].join('\n');
}

/** Encode without disturbing the caller's checksum field. */
function encodeFooterRaw(f: Footer): Buffer {
  const saved = f.checksum;
  const b = encodeFooter(f);
  f.checksum = saved;
  return b;
}

export function dumpHeader(h: Header): string {
  const saved = h.checksum;
  const computed = byteChecksum(encodeHeader(h), 36);
  h.checksum = saved;
  return [
    'VHD Header Summary:',
    '-------------------',
    `Cookie              : ${h.cookie}`,
    `Data offset (unusd) : ${h.dataOffset}`,
    `Table offset        : ${h.tableOffset}`,
    `Header version      : ${hex8(h.version)}`,
    `Max BAT size        : ${h.maxBat}`,
    `Block size          : ${h.blockSize} (${h.blockSize >> 20} MB)`,
    `Parent name         : ${decodeParentName(h.prtName)}`,
    `Parent UUID         : ${uuid(h.prtUuid)}`,
    `Parent timestamp    : ${ctime(h.prtTimestamp)}`,
    `Checksum            : ${hex8(h.checksum)}|${hex8(computed)} (${h.checksum === computed ? 'Good!' : 'Bad!'})`,
    '',
    '',
  ].join('\n');
}

export function dumpVhd(v: VhdFile): string {
  let s = dumpFooter(v.footer);
  if (!v.header) return s;
  const h = v.header;
  s += dumpHeader(h);
  if (v.isDiff) {
    s += 'VHD Parent Locators:\n--------------------\n';
    h.locators.forEach((l, i) => {
      if (l.code === 0) return;
      s += `locator:            : ${i}\n`;
      s += `       code         : ${locatorCodeName(l.code)}\n`;
      s += `       data_space   : ${l.dataSpace}\n`;
      s += `       data_length  : ${l.dataLen}\n`;
      s += `       data_offset  : ${l.dataOffset}\n`;
      s += `       decoded name : ${decodeLocator(v, l) ?? ''}\n\n`;
    });
  }
  if (v.hasBatmap) {
    const bh = v.loadBatmap();
    const map = v.batmap();
    if (bh && map) {
      const computed = byteChecksum(map);
      s += 'VHD Batmap Summary:\n-------------------\n';
      s += `Batmap offset       : ${bh.offset}\n`;
      s += `Batmap size (secs)  : ${bh.sizeSectors}\n`;
      s += `Batmap version      : ${hex8(bh.version)}\n`;
      s += `Checksum            : ${hex8(bh.checksum)}|${hex8(computed)} (${bh.checksum === computed ? 'Good!' : 'Bad!'})\n`;
      if (bh.keyhash.cookie) {
        s += `Batmap keyhash nonce: ${bh.keyhash.nonce.toString('hex')}\n`;
        s += `Batmap keyhash hash : ${bh.keyhash.hash.toString('hex')}\n`;
      }
      s += '\n';
    }
  }
  return s;
}
