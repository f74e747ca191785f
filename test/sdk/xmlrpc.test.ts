// The XML-RPC codec against Python's xmlrpc.client, both ways, and the XML
// reader's well-formedness checks.
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import {
  XmlRpcParseError,
  encodeFault,
  encodeMethodCallXapiStyle,
  encodeResponse,
  parseMethodCall,
  parseMethodResponse,
} from '../../src/sdk/protocol/xmlrpc.js';
import { readPlainXml } from '../../src/sdk/protocol/plain-xml.js';
import { pythonLoadsMany } from './helpers.js';

describe('Python encodes, we decode', () => {
  it('every XML-RPC type xmlrpc.client writes', async () => {
    const py = `
import xmlrpc.client, datetime
v = {"s": "a & b < c > d \\u4e2d\\U0001F600", "empty": "", "i": 42, "neg": -7, "big": 2**31 - 1, "t": True, "f": False,
     "d": 1.5, "none": None, "arr": [1, "x", [], {}], "nested": {"k": {"k2": ["v"]}},
     "when": xmlrpc.client.DateTime("19700101T00:00:00"), "bin": xmlrpc.client.Binary(b"\\x00\\x01\\xff")}
print(xmlrpc.client.dumps((v,), "m", allow_none=True))
`;
    const doc = (await execa('python3', ['-c', py])).stdout;
    expect(parseMethodCall(doc)).toEqual({
      methodName: 'm',
      params: [
        {
          s: 'a & b < c > d \u4e2d\u{1F600}',
          empty: '',
          i: 42,
          neg: -7,
          big: 2147483647,
          t: true,
          f: false,
          d: 1.5,
          none: null,
          arr: [1, 'x', [], {}],
          nested: { k: { k2: ['v'] } },
          when: new Date(Date.UTC(1970, 0, 1)),
          bin: new Uint8Array([0, 1, 255]),
        },
      ],
    });
  });

  it('xapi-style bare strings, <value/>, CRLF, comments, CDATA and character references', () => {
    const doc = encodeMethodCallXapiStyle('sr_scan', [{ a: 'x', b: '', c: ['y', ''] }]);
    expect(parseMethodCall(doc).params).toEqual([{ a: 'x', b: '', c: ['y', ''] }]);
    const odd =
      "<?xml version='1.0'?>\r\n<!-- hi --><methodCall><methodName>m</methodName><params><param><value><![CDATA[<raw>]]>&#65;&#x42;&quot;&apos;</value></param></params></methodCall>\r\n";
    expect(parseMethodCall(odd).params).toEqual(['<raw>AB"\'']);
  });

  it('well-formed XML outside the plain subset (attributes, a processing instruction) is decoded through saxes, to the same value', () => {
    const plain = encodeMethodCallXapiStyle('vdi_create', [{ a: 'x & y', n: ['1', ''] }]);
    expect(readPlainXml(plain, { open() {}, close() {}, text() {} })).toBe(true);
    const unusual = plain.replace('<methodCall>', '<methodCall xmlns:x="urn:x"><?keep going?>').replace('<struct>', '<struct x:note="ignored">');
    expect(readPlainXml(unusual, { open() {}, close() {}, text() {} })).toBe(false);
    expect(parseMethodCall(unusual)).toEqual(parseMethodCall(plain));
    expect(parseMethodCall(unusual).params).toEqual([{ a: 'x & y', n: ['1', ''] }]);
  });
});

describe('we encode, Python decodes', () => {
  it('responses and faults', async () => {
    const value = { uuid: 'u', location: 'a&b<c>', n: [1, -2, 2.5, true, null], m: { '': '', k: '\u00e9\u{1F600}' } };
    const [r, f] = await pythonLoadsMany([
      encodeResponse(value),
      encodeFault({ faultCode: 143, faultString: 'Failed to parse the request [opterr=<&>]' }),
    ]);
    expect(r).toEqual({ params: [value], method: null });
    expect(f).toEqual({ fault: { faultCode: 143, faultString: 'Failed to parse the request [opterr=<&>]' } });
  });

  it('a fault is byte-identical to sm test_SRCommand (code 22)', () => {
    expect(encodeFault({ faultCode: 22, faultString: '[UnitTest] SRException thrown' }) + '\n').toBe(
      "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n" +
        '<value><struct>\n<member>\n<name>faultCode</name>\n' +
        '<value><int>22</int></value>\n</member>\n<member>\n' +
        '<name>faultString</name>\n<value><string>[UnitTest] ' +
        'SRException thrown</string></value>\n</member>\n' +
        '</struct></value>\n</fault>\n</methodResponse>\n\n',
    );
  });
});

describe('the XML reader refuses what is not well-formed XML', () => {
  // Each is refused by the XML parser itself, before any XML-RPC rule runs.
  const bad: string[] = [
    '',
    'garbage',
    '<methodCall>',
    '<a></b>',
    '<a/><b/>',
    '<!DOCTYPE a [<!ENTITY x "y">]><a/>',
    '<a>&unknown;</a>',
    '<a>&#0;</a>',
    '<a>\u0001</a>',
    '<a>\uD800</a>',
    '<a b="1" b="2"/>',
    '<a b=1/>',
    '<a><!-- x -- y --></a>',
    '<a>]]></a>',
    '<a/>trailing',
  ];
  for (const doc of bad) {
    it(JSON.stringify(doc), () => {
      expect(() => parseMethodCall(doc)).toThrow(XmlRpcParseError);
      expect(() => parseMethodCall(doc)).toThrow(/not well-formed XML/);
    });
  }

  it('is linear on large input', () => {
    const t0 = Date.now();
    expect(() => parseMethodCall(`<methodCall><methodName>m</methodName><params><param><value>${'x'.repeat(8 << 20)}</value></param></params></methodCall>`)).not.toThrow();
    expect(() => parseMethodCall('<'.repeat(1 << 20))).toThrow(XmlRpcParseError);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('XML-RPC structure errors', () => {
    expect(() => parseMethodCall('<methodCall><params/></methodCall>')).toThrow(/exactly one <methodName>/);
    expect(() => parseMethodCall('<methodCall><methodName>m</methodName><params><param><value><int>x</int></value></param></params></methodCall>')).toThrow(/not an integer/);
    expect(() => parseMethodResponse('<methodCall/>')).toThrow(/not <methodResponse>/);
  });
});
