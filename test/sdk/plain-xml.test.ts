// The fast plain-XML reader against saxes, the full parser: on every document
// it accepts, it must report exactly the elements and text saxes reports; every
// document saxes refuses, it must refuse too (the codec then lets saxes say
// why). Documents from Python's xmlrpc.client, xapi-style calls, our encoder,
// hand-made odd ones, and many mutations of them.
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { readPlainXml, type XmlEvents } from '../../src/sdk/protocol/plain-xml.js';
import {
  encodeMethodCall,
  encodeMethodCallXapiStyle,
  encodeResponse,
  parseMethodResponse,
  readXmlWithSaxes,
  type XmlRpcValue,
} from '../../src/sdk/protocol/xmlrpc.js';

/**
 * The events as a list, adjacent text merged (parsers may split text
 * differently) and the white space around the root element left out (it is not
 * content; saxes reports it, plain does not).
 */
function recorder(): XmlEvents & { events: string[] } {
  const events: string[] = [];
  let depth = 0;
  return {
    events,
    open: (name) => {
      depth++;
      events.push(`<${name}`);
    },
    close: () => {
      depth--;
      events.push('>');
    },
    text: (t) => {
      if (t === '' || depth === 0) return;
      const last = events.length - 1;
      if (last >= 0 && events[last]!.startsWith('"')) events[last] += t;
      else events.push(`"${t}`);
    },
  };
}

type Verdict = { plain: string[] | 'refused'; saxes: string[] | 'refused' };

function both(doc: string): Verdict {
  const p = recorder();
  const plain = readPlainXml(doc, p) ? p.events : 'refused';
  const s = recorder();
  let saxes: Verdict['saxes'];
  try {
    readXmlWithSaxes(doc, s);
    saxes = s.events;
  } catch {
    saxes = 'refused';
  }
  return { plain, saxes };
}

/** The contract: plain accepts only what saxes accepts, with the same events. */
function expectAgrees(doc: string): Verdict {
  const v = both(doc);
  if (v.plain !== 'refused') expect(v.plain, `plain accepted ${JSON.stringify(doc)}`).toEqual(v.saxes);
  return v;
}

// A little deterministic PRNG, so a failure names a reproducible case.
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const AWKWARD = ['&', '<', '>', '"', "'", ']]>', '\r\n', '\r', '\t', ' ', '\u00e9', '\u4e2d', '\u{1F600}', '&amp;', '--', '<!--', '?>', 'x', '0'];

function randomString(r: () => number): string {
  let s = '';
  const n = Math.floor(r() * 6);
  for (let i = 0; i < n; i++) s += AWKWARD[Math.floor(r() * AWKWARD.length)];
  return s;
}

function randomValue(r: () => number, depth = 0): XmlRpcValue {
  const k = Math.floor(r() * (depth > 2 ? 5 : 7));
  switch (k) {
    case 0:
      return randomString(r);
    case 1:
      return Math.floor(r() * 2000) - 1000;
    case 2:
      return r() < 0.5;
    case 3:
      return r() * 100;
    case 4:
      return null;
    case 5:
      return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
    default:
      return Object.fromEntries(Array.from({ length: Math.floor(r() * 4) }, (_, i) => [`${randomString(r)}${i}`, randomValue(r, depth + 1)]));
  }
}

const HAND_MADE = [
  "<?xml version='1.0'?>\r\n<!-- hi --><methodCall><methodName>m</methodName><params><param><value><![CDATA[<raw>\r\n]]>&#65;&#x42;&quot;&apos;</value></param></params></methodCall>\r\n",
  '<?xml version="1.0" encoding="UTF-8" standalone="yes" ?>\n<a >x</a >',
  '<a><b/><b /><c>t<!-- c -->u</c></a>',
  '<a>&#x1F600;&#128512;&#9;&#13;</a>',
  // saxes refuses all of these; plain must too
  '',
  'garbage',
  '<a>',
  '<a></b>',
  '<a/><b/>',
  '<!DOCTYPE a [<!ENTITY x "y">]><a/>',
  '<a>&unknown;</a>',
  '<a>&#0;</a>',
  '<a>&#xD800;</a>',
  '<a>&#x110000;</a>',
  '<a>&</a>',
  '<a>\u0001</a>',
  '<a>\uD800</a>',
  '<a>\uDC00\uD800</a>',
  '<a><!-- x -- y --></a>',
  '<a><!-- x ---></a>',
  '<a>]]></a>',
  '<a/>trailing',
  'x<a/>',
  '<![CDATA[x]]><a/>',
  '<?xml version="2.0"?><a/>',
  ' <?xml version="1.0"?><a/>',
  '<a/ >',
  '</a>',
  '<a><?pi x?></a>',
  '<1a/>',
  '<a b="1"/>',
];

describe('the plain-XML reader agrees with saxes', () => {
  it('on hand-made documents, accepting the usual ones and refusing whatever saxes refuses', () => {
    for (const doc of HAND_MADE) {
      const v = expectAgrees(doc);
      if (v.saxes === 'refused') expect(v.plain, JSON.stringify(doc)).toBe('refused');
    }
    // The common shapes take the fast path.
    for (const doc of HAND_MADE.slice(0, 4)) expect(both(doc).plain, doc).not.toBe('refused');
  });

  it('on what Python xmlrpc.client writes (every type, awkward strings)', async () => {
    const py = `
import xmlrpc.client
v = {"s": "a & b < c > d ]]> \\r\\n \\u4e2d\\U0001F600 ' \\"", "empty": "", "i": 42, "t": True, "d": 1.5, "none": None,
     "arr": [1, "x", [], {}], "when": xmlrpc.client.DateTime("19700101T00:00:00"), "bin": xmlrpc.client.Binary(b"\\x00\\xff")}
print(xmlrpc.client.dumps((v,), "m", allow_none=True))
print("\\0")
print(xmlrpc.client.dumps((v,), methodresponse=True, allow_none=True))
print("\\0")
print(xmlrpc.client.dumps(xmlrpc.client.Fault(22, "x <&> y")))
`;
    const docs = (await execa('python3', ['-c', py])).stdout.split('\n\0\n');
    expect(docs).toHaveLength(3);
    for (const doc of docs) expect(expectAgrees(doc).plain, doc).not.toBe('refused');
  });

  it('on 300 random values, encoded as Python and as xapi write them, and on 3000 mutations of those documents', () => {
    const r = rng(20261122);
    let plainRefusedValid = 0;
    let mutations = 0;
    for (let i = 0; i < 300; i++) {
      const v = randomValue(r);
      for (const doc of [encodeResponse(v), encodeMethodCall('m', [v]), encodeMethodCallXapiStyle('m', [v])]) {
        const verdict = expectAgrees(doc);
        expect(verdict.saxes, doc).not.toBe('refused');
        if (verdict.plain === 'refused') plainRefusedValid++;
        if (i % 3 !== 0) continue;
        // Mutations: drop, duplicate or insert a character; many of them are no longer well-formed.
        for (let m = 0; m < 10; m++) {
          const at = Math.floor(r() * doc.length);
          const op = Math.floor(r() * 3);
          const ins = ['<', '>', '&', '/', '!', '-', ']', '\u0001', ' ', 'a'][Math.floor(r() * 10)]!;
          const mutated = op === 0 ? doc.slice(0, at) + doc.slice(at + 1) : op === 1 ? doc.slice(0, at) + doc[at] + doc.slice(at) : doc.slice(0, at) + ins + doc.slice(at);
          const mv = expectAgrees(mutated);
          if (mv.saxes === 'refused') expect(mv.plain, JSON.stringify(mutated)).toBe('refused');
          mutations++;
        }
      }
    }
    expect(mutations).toBe(3000);
    // Our own encoders' output is always plain XML: the fast path is the one taken.
    expect(plainRefusedValid).toBe(0);
  });

  it('a 1000-record answer decodes to the same value through either reader', () => {
    const records: Record<string, XmlRpcValue> = {};
    for (let i = 0; i < 1000; i++)
      records[`OpaqueRef:${i}`] = { uuid: `u-${i}`, name_label: `disk <${i}> & co`, virtual_size: String(i * 4096), sm_config: { 'image-format': 'vhd' }, managed: true, other_config: {} };
    const doc = encodeResponse(records);
    const v = both(doc);
    expect(v.plain).not.toBe('refused');
    expect(v.plain).toEqual(v.saxes);
    expect(parseMethodResponse(doc)).toEqual({ kind: 'result', value: records });
  });
});
