// vhd-util read: metadata dump (-p), BAT/bitmap/batmap inspection and
// chain-resolved sector reads (-r/-R).
import { Chain } from '../../../sdk/vhd/chain.js';
import { dumpFooter, dumpVhd } from '../../../sdk/vhd/dump.js';
import { errnoOf } from '../../../sdk/vhd/errors.js';
import { BAT_UNUSED, SECTOR, SECTORS_PER_BLOCK, BLOCK_SIZE } from '../../../sdk/vhd/format.js';
import { VhdFile, testBit } from '../../../sdk/vhd/vhd-file.js';
import { EINVAL, cNumber, err, has, last, out, parseArgs } from '../common.js';

const USAGE = `options:
-h          help
-n          name
-p          print VHD headers
-t sec      translate logical sector to VHD location
-b blk      print bat entry
-B          print entire bat as a bitmap
-m blk      print bitmap
-i sec      test bitmap for logical sector
-e sec      output extent list of allocated logical sectors
-a          print batmap
-j blk      test batmap for block
-d blk      print data
-c num      num units
-r sec      read num sectors at sec
-R byte     read num bytes at byte
-x          print in hex
`;

export function run(argv: string[]): number {
  const p = parseArgs({ name: 'read', optstring: 'n:pt:b:Bm:i:e:aj:d:c:r:R:xh', usage: USAGE, helpExit: EINVAL }, argv);
  if (typeof p === 'number') return p;
  const name = last(p, 'n');
  if (!name) {
    out(USAGE);
    return EINVAL;
  }
  let v: VhdFile;
  try {
    v = VhdFile.open(name, { allowBackupFallback: true });
  } catch (e) {
    const n = errnoOf(e);
    out(`Failed to open ${name}: -${n}\n`);
    return n;
  }
  const hex = has(p, 'x');
  const num = (n: number) => (hex ? `0x${n.toString(16)}` : String(n));
  const countArg = last(p, 'c');
  const count = countArg === undefined ? 1 : cNumber(countArg);
  try {
    if (has(p, 'p')) {
      if (v.isFixed) {
        out(dumpFooter(v.footer));
      } else out(dumpVhd(v));
    }
    if (v.isFixed && p.opts.some((o) => 'tbBmiejadrR'.includes(o.flag))) {
      out(`Failed to get bat for ${name}: -22\n`);
      return EINVAL;
    }
    for (const o of p.opts) {
      switch (o.flag) {
        case 'b': {
          const first = cNumber(o.value);
          for (let b = first; b < Math.min(first + count, v.maxBat); b++) {
            const s = v.blockSector(b);
            out(`block: ${num(b)}: offset: ${s === null ? 'not allocated' : num(s * SECTOR)}\n`);
          }
          break;
        }
        case 'B': {
          const bits = Buffer.alloc(Math.ceil(v.maxBat / 8));
          const bat = v.bat();
          for (let b = 0; b < v.maxBat; b++) {
            if (bat[b] !== BAT_UNUSED) bits[b >> 3] = bits[b >> 3]! | (0x80 >> (b & 7));
          }
          out(bits);
          break;
        }
        case 't': {
          const sec = cNumber(o.value);
          const blk = Math.floor(sec / SECTORS_PER_BLOCK);
          const off = sec % SECTORS_PER_BLOCK;
          const s = blk < v.maxBat ? v.blockSector(blk) : null;
          out(
            `logical sector ${num(sec)}: block number: ${num(blk)}, sector offset: ${num(off)}, file offset: ${
              s === null ? 'not allocated' : num((s + 1 + off) * SECTOR)
            }\n`,
          );
          break;
        }
        case 'm': {
          const blk = cNumber(o.value);
          if (v.blockSector(blk) === null) out(`block ${blk} not allocated\n`);
          else out(v.readBitmap(blk));
          break;
        }
        case 'i': {
          const sec = cNumber(o.value);
          const blk = Math.floor(sec / SECTORS_PER_BLOCK);
          const set = v.blockSector(blk) !== null && testBit(v.readBitmap(blk), sec % SECTORS_PER_BLOCK);
          out(`block ${num(blk)}: sec: ${num(sec)}: ${set ? 1 : 0}\n`);
          break;
        }
        case 'e':
          printExtents(v, cNumber(o.value), countArg === undefined ? v.sectors : count, num);
          break;
        case 'a': {
          const m = v.batmap();
          if (m) out(m);
          break;
        }
        case 'j': {
          const blk = cNumber(o.value);
          err(`batmap for block ${num(blk)}: ${v.batmapTest(blk) ? 1 : 0}\n`);
          break;
        }
        case 'd': {
          const blk = cNumber(o.value);
          const s = v.blockSector(blk);
          if (s === null) out(`block ${blk} not allocated\n`);
          else {
            const buf = Buffer.alloc(BLOCK_SIZE);
            v.readAt(buf, (s + 1) * SECTOR);
            out(buf);
          }
          break;
        }
        case 'r':
          readChain(name, cNumber(o.value) * SECTOR, count * SECTOR);
          break;
        case 'R':
          readChain(name, cNumber(o.value), count);
          break;
      }
    }
    return 0;
  } catch (e) {
    const n = errnoOf(e);
    out(`error reading ${name}: ${(e as Error).message}: -${n}\n`);
    return n;
  } finally {
    v.close();
  }
}

/** Allocated extents (this image's bitmaps) as `start length` in sectors. */
function printExtents(v: VhdFile, start: number, count: number, num: (n: number) => string): void {
  const end = Math.min(v.sectors, start + count);
  let runStart = -1;
  let lines = '';
  const flush = (e: number) => {
    if (runStart >= 0) lines += `${num(runStart)} ${num(e - runStart)}\n`;
    runStart = -1;
  };
  let s = start;
  while (s < end) {
    const blk = Math.floor(s / SECTORS_PER_BLOCK);
    const blkEnd = Math.min(end, (blk + 1) * SECTORS_PER_BLOCK);
    if (v.blockSector(blk) === null) {
      flush(s);
      s = blkEnd;
      continue;
    }
    const full = v.blockFull(blk);
    const bm = full ? null : v.readBitmap(blk);
    for (; s < blkEnd; s++) {
      const set = bm === null || testBit(bm, s % SECTORS_PER_BLOCK);
      if (set && runStart < 0) runStart = s;
      else if (!set) flush(s);
    }
    if (lines.length > 65536) {
      out(lines);
      lines = '';
    }
  }
  flush(s);
  out(lines);
}

/** Stream `len` bytes of chain-resolved content at byte `pos` to stdout. */
function readChain(name: string, pos: number, len: number): void {
  const chain = Chain.open(name);
  try {
    const size = chain.top.currSize;
    let p = pos;
    const end = Math.min(pos + len, size);
    while (p < end) {
      const firstSec = Math.floor(p / SECTOR);
      const chunkEnd = Math.min(end, (Math.floor(p / BLOCK_SIZE) + 1) * BLOCK_SIZE);
      const lastSec = Math.ceil(chunkEnd / SECTOR);
      const buf = Buffer.alloc((lastSec - firstSec) * SECTOR);
      chain.read(firstSec, buf);
      out(buf.subarray(p - firstSec * SECTOR, chunkEnd - firstSec * SECTOR));
      p = chunkEnd;
    }
  } finally {
    chain.close();
  }
}
