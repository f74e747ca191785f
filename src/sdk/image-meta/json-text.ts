// A strict JSON reader for the Layer-1 string. JSON.parse silently keeps the
// last of two equal keys, and Layer 1 says keys are unique, so the raw text is
// read here: every object (at any depth) is checked for empty and duplicate
// keys, and errors say where (key path and character offset).
import { ImageMetaError } from './errors.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

class Reader {
  pos = 0;
  constructor(readonly text: string) {}

  fail(what: string): never {
    const near = this.text.slice(this.pos, this.pos + 20);
    throw new ImageMetaError('invalid-json', `invalid JSON at character ${this.pos}: ${what}${near ? ` (near ${JSON.stringify(near)})` : ' (at the end of the text)'}`);
  }

  ws(): void {
    while (this.pos < this.text.length && ' \t\n\r'.includes(this.text[this.pos]!)) this.pos++;
  }

  value(path: string): JsonValue {
    this.ws();
    const c = this.text[this.pos];
    if (c === '{') return this.object(path);
    if (c === '[') return this.array(path);
    if (c === '"') return this.string();
    if (c === 't' || c === 'f' || c === 'n') return this.literal();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
    return this.fail(c === undefined ? 'expected a value' : `unexpected ${JSON.stringify(c)}`);
  }

  object(path: string): JsonValue {
    this.pos++; // {
    const out: { [key: string]: JsonValue } = {};
    const seen = new Set<string>();
    this.ws();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.text[this.pos] !== '"') this.fail('expected a string key');
      const keyAt = this.pos;
      const key = this.string();
      const where = path === '' ? 'at the top level' : `inside ${JSON.stringify(path)}`;
      if (key === '') throw new ImageMetaError('empty-key', `empty key ${where} (character ${keyAt}): keys must be non-empty`, { key });
      if (seen.has(key)) throw new ImageMetaError('duplicate-key', `duplicate key ${JSON.stringify(key)} ${where} (second one at character ${keyAt}): keys must be unique`, { key });
      seen.add(key);
      this.ws();
      if (this.text[this.pos] !== ':') this.fail('expected ":" after a key');
      this.pos++;
      const v = this.value(path === '' ? key : `${path}/${key}`);
      // defineProperty, not assignment: a key "__proto__" must stay an own key.
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      this.ws();
      const c = this.text[this.pos];
      if (c === ',') {
        this.pos++;
        continue;
      }
      if (c === '}') {
        this.pos++;
        return out;
      }
      this.fail('expected "," or "}"');
    }
  }

  array(path: string): JsonValue {
    this.pos++; // [
    const out: JsonValue[] = [];
    this.ws();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value(`${path}[${out.length}]`));
      this.ws();
      const c = this.text[this.pos];
      if (c === ',') {
        this.pos++;
        continue;
      }
      if (c === ']') {
        this.pos++;
        return out;
      }
      this.fail('expected "," or "]"');
    }
  }

  string(): string {
    const start = this.pos;
    this.pos++; // "
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined) this.fail('unterminated string');
      if (c === '"') break;
      if (c === '\\') {
        const e = this.text[this.pos + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(this.text.slice(this.pos + 2, this.pos + 6))) this.fail('bad \\u escape');
          this.pos += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) this.pos += 2;
        else this.fail('bad escape in a string');
        continue;
      }
      if (c < ' ') this.fail('control character in a string');
      this.pos++;
    }
    this.pos++;
    // The token is well-formed JSON now; JSON.parse decodes its escapes.
    return JSON.parse(this.text.slice(start, this.pos)) as string;
  }

  literal(): JsonValue {
    for (const [word, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    return this.fail('unknown literal');
  }

  number(): number {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(this.text.slice(this.pos));
    if (m === null) this.fail('bad number');
    this.pos += m[0].length;
    return Number(m[0]);
  }
}

/** Parse `text` as one JSON value; empty or duplicate object keys (any depth) are refused. */
export function parseStrictJson(text: string): JsonValue {
  const r = new Reader(text);
  const v = r.value('');
  r.ws();
  if (r.pos !== text.length) r.fail('text after the JSON value');
  return v;
}
