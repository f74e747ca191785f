// XML-RPC codec: the mapping between XML-RPC documents and JavaScript values.
//
// Parsing accepts everything xapi and Python's xmlrpc.client send: bare
// `<value>text</value>` strings, `<value/>`, every scalar type, arrays, structs
// and any Unicode. Encoding writes what Python's xmlrpc.client.dumps writes,
// because that is what sm's drivers print and what xapi has always parsed.
import { parseXml, XmlElement, XmlText } from '@rgrove/parse-xml';

export type XmlRpcValue =
  | string
  | number
  | boolean
  | null
  | Date
  | Uint8Array
  | XmlRpcValue[]
  | { [key: string]: XmlRpcValue };


export interface MethodCall {
  methodName: string;
  params: XmlRpcValue[];
}

export interface Fault {
  faultCode: number;
  faultString: string;
}

export type MethodResponse = { kind: 'result'; value: XmlRpcValue } | { kind: 'fault'; fault: Fault };

export class XmlRpcParseError extends Error {
  override name = 'XmlRpcParseError';
}

// ---------------------------------------------------------------------------
// Parsing: @rgrove/parse-xml (a maintained, strict, dependency-free XML parser)
// checks well-formedness and builds the document; this module only maps its
// elements to XML-RPC values. DOCTYPE is refused: XML-RPC has none, and an
// entity declaration is the classic way to blow up a parser.

interface Elem {
  name: string;
  children: Elem[];
  text: string;
}

function toElem(node: XmlElement): Elem {
  const el: Elem = { name: node.name, children: [], text: '' };
  for (const child of node.children) {
    if (child instanceof XmlElement) el.children.push(toElem(child));
    else if (child instanceof XmlText) el.text += child.text;
  }
  return el;
}

function parseTree(xml: string): Elem {
  if (/<!DOCTYPE/i.test(xml)) throw new XmlRpcParseError('not well-formed XML-RPC: DOCTYPE declarations are not allowed');
  let doc;
  try {
    doc = parseXml(xml);
  } catch (e) {
    // The parser's message quotes the offending line with a caret; keep its first line.
    const msg = e instanceof Error ? (e.message.split('\n')[0] ?? e.message) : String(e);
    throw new XmlRpcParseError(`not well-formed XML: ${msg}`);
  }
  if (!doc.root) throw new XmlRpcParseError('not well-formed XML: no root element');
  return toElem(doc.root);
}

function only(el: Elem, name: string, what: string): Elem {
  const matches = el.children.filter((c) => c.name === name);
  if (matches.length !== 1) throw new XmlRpcParseError(`${what}: expected exactly one <${name}>`);
  return matches[0]!;
}

function decodeInt(text: string, tag: string): number {
  const t = text.trim();
  if (!/^[+-]?\d+$/.test(t)) throw new XmlRpcParseError(`<${tag}> holds '${text}', not an integer`);
  const n = Number(t);
  if (!Number.isSafeInteger(n)) throw new XmlRpcParseError(`<${tag}> value ${t} is outside the exact integer range`);
  return n;
}

// dateTime.iso8601 as xapi and Python write it: 19700101T00:00:00Z or 20240102T03:04:05
function decodeDate(text: string): Date {
  const m = /^(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/.exec(text.trim());
  if (!m) throw new XmlRpcParseError(`<dateTime.iso8601> holds '${text}', not an ISO 8601 date`);
  const [, y, mo, d, h, mi, s, tz] = m;
  let iso = `${y}-${mo}-${d}T${h}:${mi}:${s}`;
  iso += !tz || tz === 'Z' ? 'Z' : tz.length === 5 ? `${tz.slice(0, 3)}:${tz.slice(3)}` : tz;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) throw new XmlRpcParseError(`<dateTime.iso8601> holds '${text}', not a valid date`);
  return date;
}

function decodeValue(valueEl: Elem): XmlRpcValue {
  if (valueEl.children.length === 0) return valueEl.text; // bare string, or <value/> = ''
  if (valueEl.children.length > 1) throw new XmlRpcParseError('<value> must hold exactly one type element');
  const t = valueEl.children[0]!;
  switch (t.name) {
    case 'string':
      return t.text;
    case 'i4':
    case 'int':
    case 'i8':
      return decodeInt(t.text, t.name);
    case 'boolean': {
      const b = t.text.trim();
      if (b !== '0' && b !== '1') throw new XmlRpcParseError(`<boolean> holds '${t.text}', not 0 or 1`);
      return b === '1';
    }
    case 'double': {
      const n = Number(t.text.trim());
      if (t.text.trim() === '' || Number.isNaN(n)) throw new XmlRpcParseError(`<double> holds '${t.text}', not a number`);
      return n;
    }
    case 'dateTime.iso8601':
      return decodeDate(t.text);
    case 'base64':
      return new Uint8Array(Buffer.from(t.text.replace(/\s+/g, ''), 'base64'));
    case 'nil':
      return null;
    case 'array': {
      const data = only(t, 'data', '<array>');
      return data.children.map((v) => {
        if (v.name !== 'value') throw new XmlRpcParseError(`<data> may only hold <value>, found <${v.name}>`);
        return decodeValue(v);
      });
    }
    case 'struct': {
      const out: Record<string, XmlRpcValue> = Object.create(null);
      for (const m of t.children) {
        if (m.name !== 'member') throw new XmlRpcParseError(`<struct> may only hold <member>, found <${m.name}>`);
        const name = only(m, 'name', '<member>').text;
        out[name] = decodeValue(only(m, 'value', `<member> '${name}'`));
      }
      return out;
    }
    default:
      throw new XmlRpcParseError(`unknown XML-RPC type <${t.name}>`);
  }
}

export function parseMethodCall(xml: string): MethodCall {
  const root = parseTree(xml);
  if (root.name !== 'methodCall') throw new XmlRpcParseError(`root element is <${root.name}>, not <methodCall>`);
  const methodName = only(root, 'methodName', '<methodCall>').text.trim();
  if (methodName === '') throw new XmlRpcParseError('<methodName> is empty');
  const paramsEl = root.children.find((c) => c.name === 'params');
  const params = paramsEl
    ? paramsEl.children.map((p) => {
        if (p.name !== 'param') throw new XmlRpcParseError(`<params> may only hold <param>, found <${p.name}>`);
        return decodeValue(only(p, 'value', '<param>'));
      })
    : [];
  return { methodName, params };
}

export function parseMethodResponse(xml: string): MethodResponse {
  const root = parseTree(xml);
  if (root.name !== 'methodResponse') throw new XmlRpcParseError(`root element is <${root.name}>, not <methodResponse>`);
  const faultEl = root.children.find((c) => c.name === 'fault');
  if (faultEl) {
    const v = decodeValue(only(faultEl, 'value', '<fault>'));
    if (!isStruct(v)) throw new XmlRpcParseError('<fault> value is not a struct');
    const code = v['faultCode'];
    const text = v['faultString'];
    return {
      kind: 'fault',
      fault: {
        faultCode: typeof code === 'number' ? code : Number(code),
        faultString: typeof text === 'string' ? text : String(text ?? ''),
      },
    };
  }
  const params = only(root, 'params', '<methodResponse>');
  const param = only(params, 'param', '<params>');
  return { kind: 'result', value: decodeValue(only(param, 'value', '<param>')) };
}

export function isStruct(v: XmlRpcValue | undefined): v is { [key: string]: XmlRpcValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) && !(v instanceof Uint8Array);
}

// ---------------------------------------------------------------------------
// Encoding, byte-compatible with Python's xmlrpc.client.dumps.

const NEEDS_ESCAPE = /[&<>]/;

export function escapeXml(s: string): string {
  // most strings (refs, uuids, sizes) need no escaping: skip the three passes
  if (!NEEDS_ESCAPE.test(s)) return s;
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

function encodeInto(v: XmlRpcValue, out: string[]): void {
  if (v === null) {
    out.push('<value><nil/></value>');
  } else if (typeof v === 'string') {
    out.push('<value><string>', escapeXml(v), '</string></value>\n');
  } else if (typeof v === 'boolean') {
    out.push('<value><boolean>', v ? '1' : '0', '</boolean></value>\n');
  } else if (typeof v === 'number') {
    if (Number.isInteger(v) && Math.abs(v) <= 0x7fffffff) out.push('<value><int>', String(v), '</int></value>\n');
    else if (Number.isFinite(v)) out.push('<value><double>', repr(v), '</double></value>\n');
    else throw new TypeError(`cannot encode ${v} in XML-RPC`);
  } else if (v instanceof Date) {
    const s = `${pad(v.getUTCFullYear(), 4)}${pad(v.getUTCMonth() + 1)}${pad(v.getUTCDate())}T${pad(v.getUTCHours())}:${pad(v.getUTCMinutes())}:${pad(v.getUTCSeconds())}`;
    out.push('<value><dateTime.iso8601>', s, '</dateTime.iso8601></value>\n');
  } else if (v instanceof Uint8Array) {
    out.push('<value><base64>\n', Buffer.from(v).toString('base64'), '\n</base64></value>\n');
  } else if (Array.isArray(v)) {
    out.push('<value><array><data>\n');
    for (const item of v) encodeInto(item, out);
    out.push('</data></array></value>\n');
  } else {
    out.push('<value><struct>\n');
    for (const [k, item] of Object.entries(v)) {
      out.push('<member>\n<name>', escapeXml(k), '</name>\n');
      encodeInto(item, out);
      out.push('</member>\n');
    }
    out.push('</struct></value>\n');
  }
}

// Python prints floats with repr(): integral doubles keep a '.0'.
function repr(n: number): string {
  return Number.isInteger(n) && Math.abs(n) < 1e16 ? `${n}.0` : String(n);
}

export function encodeValue(v: XmlRpcValue): string {
  const out: string[] = [];
  encodeInto(v, out);
  return out.join('');
}

const DECLARATION = "<?xml version='1.0'?>\n";

/** The methodResponse for a successful call, as xmlrpc.client.dumps((v,), methodresponse=True) writes it. */
export function encodeResponse(v: XmlRpcValue): string {
  return `${DECLARATION}<methodResponse>\n<params>\n<param>\n${encodeValue(v)}</param>\n</params>\n</methodResponse>\n`;
}

/** A fault response, as xmlrpc.client.dumps(Fault(code, text)) writes it. */
export function encodeFault(fault: Fault): string {
  return `${DECLARATION}<methodResponse>\n<fault>\n${encodeValue({ faultCode: fault.faultCode, faultString: fault.faultString })}</fault>\n</methodResponse>\n`;
}

/** A methodCall document, as xmlrpc.client.dumps(params, methodname) writes it. */
export function encodeMethodCall(methodName: string, params: XmlRpcValue[]): string {
  const ps = params.map((p) => `<param>\n${encodeValue(p)}</param>\n`).join('');
  return `${DECLARATION}<methodCall>\n<methodName>${escapeXml(methodName)}</methodName>\n<params>\n${ps}</params>\n</methodCall>\n`;
}

/**
 * A methodCall the way xapi writes it (ocaml/libs/http-lib/xMLRPC.ml): strings as
 * bare `<value>text</value>` and the empty string as `<value/>`, no whitespace.
 */
export function encodeMethodCallXapiStyle(methodName: string, params: XmlRpcValue[]): string {
  const enc = (v: XmlRpcValue): string => {
    if (typeof v === 'string') return v === '' ? '<value/>' : `<value>${escapeXml(v)}</value>`;
    if (Array.isArray(v)) return `<value><array><data>${v.map(enc).join('')}</data></array></value>`;
    if (isStruct(v))
      return `<value><struct>${Object.entries(v)
        .map(([k, x]) => `<member><name>${escapeXml(k)}</name>${enc(x)}</member>`)
        .join('')}</struct></value>`;
    return encodeValue(v).replace(/\n/g, '');
  };
  return `<?xml version="1.0"?><methodCall><methodName>${escapeXml(methodName)}</methodName><params>${params
    .map((p) => `<param>${enc(p)}</param>`)
    .join('')}</params></methodCall>`;
}
