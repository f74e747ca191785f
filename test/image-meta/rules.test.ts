// Layers 1–2 on their own: the JSON reader that sees duplicate keys, the key
// rules, the registry file, and the Layer-0 length bound.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import {
  defaultRegistry, ImageMetaError, MAX_VALUE_BYTES, parseRegistry, parseStrictJson, REGISTRY_FILE, validateMetaText,
} from '../../src/sdk/image-meta/index.js';

function refusal(text: string): ImageMetaError {
  try {
    validateMetaText(text);
  } catch (e) {
    expect(e).toBeInstanceOf(ImageMetaError);
    return e as ImageMetaError;
  }
  throw new Error(`${text} was accepted`);
}

describe('Layer 1: a JSON object with non-empty unique keys', () => {
  it('accepts the proposal\'s example and an empty object', () => {
    const v = validateMetaText('{ "qemu.machine-types": [ "q35", "i440fx" ], "qemu.min-ram-MB": 1024 }');
    expect(v.object).toEqual({ 'qemu.machine-types': ['q35', 'i440fx'], 'qemu.min-ram-MB': 1024 });
    expect(validateMetaText('{}').object).toEqual({});
  });

  it.each([
    ['', 'invalid-json'],
    ['{', 'invalid-json'],
    ['{"a":1,}', 'invalid-json'],
    ["{'a':1}", 'invalid-json'],
    ['{"com.example.a":1} x', 'invalid-json'],
    ['[]', 'not-an-object'],
    ['"text"', 'not-an-object'],
    ['null', 'not-an-object'],
  ])('%j is refused (%s)', (text, reason) => {
    expect(refusal(text).reason).toBe(reason);
  });

  it('finds duplicate keys that JSON.parse would silently collapse, at any depth', () => {
    expect(JSON.parse('{"com.example.a":1,"com.example.a":2}')).toEqual({ 'com.example.a': 2 });
    const top = refusal('{"com.example.a":1,"com.example.a":2}');
    expect([top.reason, top.key]).toEqual(['duplicate-key', 'com.example.a']);
    expect(top.message).toMatch(/duplicate key "com\.example\.a" at the top level.*unique/);
    // An escaped spelling of the same key is the same key.
    expect(refusal('{"com.example.a":1,"com.example.\\u0061":2}').reason).toBe('duplicate-key');
    const deep = refusal('{"com.example.cfg":{"x":1,"x":2}}');
    expect(deep.message).toMatch(/duplicate key "x" inside "com\.example\.cfg"/);
  });

  it('refuses empty keys, also nested ones', () => {
    expect(refusal('{"":1}').reason).toBe('empty-key');
    expect(refusal('{"com.example.cfg":{"":1}}').message).toMatch(/empty key inside "com\.example\.cfg"/);
  });

  it('keeps a "__proto__" key as an ordinary own key', () => {
    expect(Object.keys(parseStrictJson('{"__proto__":1}') as object)).toEqual(['__proto__']);
  });
});

describe('Layer 2: dotted keys, the qemu. registry, vendor prefixes', () => {
  it('refuses an unregistered qemu. key, naming it and the registry', () => {
    const e = refusal('{"qemu.colour":"red"}');
    expect([e.reason, e.key]).toEqual(['unregistered-key', 'qemu.colour']);
    expect(e.message).toMatch(/image-meta-keys\.yaml/);
  });

  it('checks registered values against their type', () => {
    expect(refusal('{"qemu.min-ram-MB":"1G"}').message).toMatch(/"qemu\.min-ram-MB".*an integer >= 1, got string "1G"/);
    expect(refusal('{"qemu.min-ram-MB":0}').reason).toBe('bad-value');
    expect(refusal('{"qemu.machine-types":"q35"}').reason).toBe('bad-value');
    expect(refusal('{"qemu.machine-types":["q35","q35"]}').reason).toBe('bad-value');
    expect(refusal('{"qemu.firmware":["bios","coreboot"]}').message).toMatch(/bios, uefi/);
    expect(refusal('{"qemu.secure-boot":"maybe"}').message).toMatch(/required, optional, disabled/);
    expect(validateMetaText('{"qemu.firmware":["uefi"],"qemu.secure-boot":"required","qemu.arch":"x86_64"}').object['qemu.arch']).toBe('x86_64');
  });

  it.each(['machine', 'example.key', 'Com.Example.key', '-com.example.key', 'com..example.key', 'com.example.', '.com.example.a', 'qemu'])(
    'refuses key %j (neither qemu.<registered> nor a reverse-dotted vendor prefix, or an empty level)',
    (key) => {
      const e = refusal(JSON.stringify({ [key]: 1 }));
      expect(['bad-key', 'unregistered-key']).toContain(e.reason);
      expect(e.key).toBe(key);
    },
  );

  it('accepts vendor keys with any JSON value', () => {
    const v = validateMetaText('{"com.example.tool.version":"1.2","org.xen-project.vm.boot":{"order":["disk"]},"io.k8s.ready":true}');
    expect(Object.keys(v.object)).toHaveLength(3);
  });

  it('refuses a key that is both a value and a level of another key', () => {
    const e = refusal('{"com.example.a":1,"com.example.a.b":2}');
    expect(e.message).toMatch(/"com\.example\.a" holds a value but is also a level of key "com\.example\.a\.b"/);
  });
});

describe('Layer 0 bound', () => {
  it(`allows ${MAX_VALUE_BYTES} bytes and refuses one more, saying the bound`, () => {
    const pad = (n: number) => `{"com.example.pad":"${'x'.repeat(n - 22)}"}`;
    expect(Buffer.byteLength(pad(MAX_VALUE_BYTES))).toBe(MAX_VALUE_BYTES);
    expect(() => validateMetaText(pad(MAX_VALUE_BYTES))).not.toThrow();
    const e = refusal(pad(MAX_VALUE_BYTES + 1));
    expect(e.reason).toBe('too-long');
    expect(e.message).toContain(`${MAX_VALUE_BYTES + 1} bytes`);
    expect(e.message).toContain(`at most ${MAX_VALUE_BYTES}`);
  });

  it('counts UTF-8 bytes, not characters', () => {
    const s = `{"com.example.name":"${'é'.repeat(2040)}"}`;
    expect(s.length).toBeLessThan(MAX_VALUE_BYTES);
    expect(refusal(s).reason).toBe('too-long');
  });
});

describe('the registry file', () => {
  it('holds the proposal\'s keys and the Glance equivalents, each with a type and a meaning', () => {
    const r = defaultRegistry();
    expect(r.entries.get('qemu.machine-types')).toMatchObject({ type: 'string-list', glance: 'hw_machine_type' });
    expect(r.entries.get('qemu.min-ram-MB')).toMatchObject({ type: 'integer', glance: 'min_ram' });
    for (const g of ['hw_firmware_type', 'hw_disk_bus', 'hw_vif_model', 'os_distro', 'architecture', 'min_disk']) {
      expect([...r.entries.values()].some((e) => e.glance === g), g).toBe(true);
    }
    for (const e of r.entries.values()) expect(e.meaning.length).toBeGreaterThan(10);
  });

  it('is validated: a duplicate or malformed entry is an error naming the problem', () => {
    const text = readFileSync(REGISTRY_FILE, 'utf8');
    expect(() => parseRegistry(`${text}\n  - name: qemu.arch\n    type: string\n    meaning: again\n`, 'x')).toThrow(/qemu\.arch is listed twice/);
    expect(() => parseRegistry('version: 1\nkeys:\n  - name: qemu.x\n    type: enum\n    meaning: m\n', 'x')).toThrow(/need `values`/);
    expect(() => parseRegistry('version: 1\nkeys:\n  - name: vendor.x\n    type: string\n    meaning: m\n', 'x')).toThrow(/qemu\./);
  });
});
