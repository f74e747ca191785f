// glob(3) as vhd-util scan uses it for `-m PATTERN`: *, ?, [...] per path segment,
// {a,b} brace expansion, no match on a leading dot, results as spelled.
import { readdirSync, lstatSync } from 'node:fs';

export function expandBraces(p: string): string[] {
  let depth = 0;
  let open = -1;
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '{') {
      if (depth++ === 0) open = i;
    } else if (c === '}' && depth > 0 && --depth === 0) {
      const inner = p.slice(open + 1, i);
      const parts: string[] = [];
      let d = 0;
      let start = 0;
      for (let j = 0; j < inner.length; j++) {
        if (inner[j] === '{') d++;
        else if (inner[j] === '}') d--;
        else if (inner[j] === ',' && d === 0) {
          parts.push(inner.slice(start, j));
          start = j + 1;
        }
      }
      parts.push(inner.slice(start));
      if (parts.length < 2) continue;
      const pre = p.slice(0, open);
      const post = p.slice(i + 1);
      return parts.flatMap((x) => expandBraces(pre + x + post));
    }
  }
  return [p];
}

const hasMagic = (s: string) => /[*?[]/.test(s);

export function segmentRegex(seg: string): RegExp {
  let re = '^';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = seg.indexOf(']', i + 2);
      if (close < 0) re += '\\[';
      else {
        let body = seg.slice(i + 1, close);
        if (body.startsWith('!')) body = '^' + body.slice(1);
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = close;
      }
    } else if (c === '\\' && i + 1 < seg.length) {
      re += seg[++i]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(re + '$');
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Paths matching `pattern`; `sort` as glob(3) does by default (scan -f passes GLOB_NOSORT). */
export function glob(pattern: string, sort: boolean): string[] {
  const results: string[] = [];
  for (const pat of expandBraces(pattern)) {
    const abs = pat.startsWith('/');
    const segs = pat.split('/').filter((s, i) => s !== '' || i === 0);
    let bases: string[] = [abs ? '/' : ''];
    const startIdx = abs ? 1 : 0;
    for (let i = startIdx; i < segs.length; i++) {
      const seg = segs[i]!;
      const last = i === segs.length - 1;
      const next: string[] = [];
      for (const b of bases) {
        const join = (n: string) => (b === '' ? n : b.endsWith('/') ? b + n : `${b}/${n}`);
        if (!hasMagic(seg)) {
          const cand = join(seg.replace(/\\(.)/g, '$1'));
          if (!last || exists(cand)) next.push(cand);
          continue;
        }
        let names: string[];
        try {
          names = readdirSync(b === '' ? '.' : b);
        } catch {
          continue;
        }
        const re = segmentRegex(seg);
        const dotOk = seg.startsWith('.');
        const matched = names.filter((n) => (dotOk || !n.startsWith('.')) && re.test(n));
        if (sort) matched.sort();
        for (const n of matched) next.push(join(n));
      }
      bases = next;
    }
    results.push(...(sort ? bases.sort() : bases));
  }
  return results;
}
