// Shared by the SDK and driver tests: Python's xmlrpc.client as an independent
// encoder/decoder, the compiled build the executables run, and request builders.
import { execa } from 'execa';
import { existsSync, statSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');

export const DRIVERS = [
  { type: 'file', exe: join(ROOT, 'drivers/file/FileSR') },
  { type: 'ext', exe: join(ROOT, 'drivers/ext/EXTSR') },
  { type: 'lvm', exe: join(ROOT, 'drivers/lvm/LVMSR') },
  { type: 'nfs', exe: join(ROOT, 'drivers/nfs/NFSSR') },
] as const;

function newestMtime(dir: string, recurse = true): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = recurse ? Math.max(newest, newestMtime(p)) : newest;
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * The executables import dist/: rebuild when a source of this area is newer
 * than its output. tsc's exit status is ignored (other areas may be mid-edit);
 * what matters is that our outputs exist afterwards.
 */
export async function ensureBuilt(): Promise<void> {
  const outputs = ['dist/src/sdk/run.js', 'dist/src/sdk/dispatch.js', 'dist/src/cli/sm-install/main.js', ...DRIVERS.map((d) => `dist/drivers/${d.type}/main.js`)].map((p) => join(ROOT, p));
  const oldest = Math.min(...outputs.map((p) => (existsSync(p) ? statSync(p).mtimeMs : 0)));
  // The sources the executables load: the SDK core (not the tools or formats other areas edit) and the drivers.
  const newestSource = Math.max(
    newestMtime(join(ROOT, 'src/sdk'), false),
    ...['errors', 'protocol', 'xenapi'].map((d) => newestMtime(join(ROOT, 'src/sdk', d))),
    newestMtime(join(ROOT, 'drivers')),
    newestMtime(join(ROOT, 'src/cli/sm-install')),
    statSync(join(ROOT, 'src/driver-info.ts')).mtimeMs,
  );
  if (oldest >= newestSource) return;
  await execa('npx', ['--no-install', 'tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, reject: false });
  for (const p of outputs) if (!existsSync(p)) throw new Error(`build did not produce ${p}`);
}

// Python: dumps/loads with the standard library, values passed as JSON.
const PY_DUMPS = `
import sys, json, xmlrpc.client
spec = json.load(sys.stdin)
sys.stdout.write(xmlrpc.client.dumps(tuple(spec["params"]), spec["method"]))
`;
const PY_DUMPS_MANY = `
import sys, json, xmlrpc.client
specs = json.load(sys.stdin)
print(json.dumps([xmlrpc.client.dumps(tuple(s["params"]), s["method"]) for s in specs]))
`;
const PY_LOADS_MANY = `
import sys, json, xmlrpc.client
out = []
for data in json.load(sys.stdin):
    try:
        params, method = xmlrpc.client.loads(data)
        out.append({"params": list(params), "method": method})
    except xmlrpc.client.Fault as f:
        out.append({"fault": {"faultCode": f.faultCode, "faultString": f.faultString}})
print(json.dumps(out))
`;
const PY_LOADS = `
import sys, json, xmlrpc.client
data = sys.stdin.read()
try:
    params, method = xmlrpc.client.loads(data)
    out = {"params": list(params), "method": method}
except xmlrpc.client.Fault as f:
    out = {"fault": {"faultCode": f.faultCode, "faultString": f.faultString}}
print(json.dumps(out))
`;

/** A methodCall document written by Python's xmlrpc.client.dumps. */
export async function pythonDumps(method: string, params: unknown[]): Promise<string> {
  const r = await execa('python3', ['-c', PY_DUMPS], { input: JSON.stringify({ method, params }) });
  return r.stdout;
}

/** Many documents at once (one Python start). */
export async function pythonDumpsMany(specs: Array<{ method: string; params: unknown[] }>): Promise<string[]> {
  const r = await execa('python3', ['-c', PY_DUMPS_MANY], { input: JSON.stringify(specs) });
  return JSON.parse(r.stdout) as string[];
}

export async function pythonLoadsMany(docs: string[]): Promise<PyDecoded[]> {
  const r = await execa('python3', ['-c', PY_LOADS_MANY], { input: JSON.stringify(docs) });
  return JSON.parse(r.stdout) as PyDecoded[];
}

export type PyDecoded = { params: unknown[]; method: string | null } | { fault: { faultCode: number; faultString: string } };

/** A document decoded by Python's xmlrpc.client.loads (a fault comes back as {fault}). */
export async function pythonLoads(xml: string): Promise<PyDecoded> {
  const r = await execa('python3', ['-c', PY_LOADS], { input: xml });
  return JSON.parse(r.stdout) as PyDecoded;
}

export const SR_UUID = '13c4384e-897b-e745-6b3e-9a89c06537be';
export const VDI_UUID = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
export const NEW_UUID = 'f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9';

const common = {
  host_ref: 'OpaqueRef:133c7c46-f4d9-3695-83c4-bf8574b89fb9',
  device_config: { SRmaster: 'true', device: '/dev/disk/by-id/scsi-3600508b1001c25e9eea8ead175fd83fb-part3' },
  session_ref: 'OpaqueRef:c2c628b6-93c3-5e29-00cf-4f15a34e1555',
  subtask_of: 'DummyRef:|0c533c65-d321-59c2-f540c-e66efbe3b1b7|SR.op',
};
const sr = { sr_ref: 'OpaqueRef:c523a79a-8a60-121c-832e-d507586cb117', sr_uuid: SR_UUID };
const vdi = { vdi_ref: 'OpaqueRef:6b0c4b4c-3c8e-4b8f-9a3e-1f1d2c3b4a59', vdi_location: VDI_UUID, vdi_uuid: VDI_UUID, vdi_on_boot: 'persist', vdi_allow_caching: 'false' };

/** The params struct xapi sends for each command (sm_exec.ml make_call; spec §1.3, §3.1). */
export function xapiParams(command: string): Record<string, unknown> {
  const base = { ...common, command, args: [] as string[] };
  switch (command) {
    case 'sr_get_driver_info':
      return { host_ref: 'OpaqueRef:NULL', command, args: [], device_config: {} };
    case 'sr_create':
      return { ...base, ...sr, args: ['0'] };
    case 'sr_probe':
      return { ...base, sr_sm_config: {} };
    case 'vdi_create':
      return {
        ...base,
        ...sr,
        vdi_type: 'system',
        vdi_sm_config: {},
        args: ['10737418240', '\u4e2d\u6587\u673a\u5668 0', 'Created by template provisioner', '', 'false', '19700101T00:00:00Z', '', 'false'],
      };
    case 'vdi_introduce':
      return { ...base, ...sr, new_uuid: NEW_UUID, vdi_location: NEW_UUID, vdi_sm_config: {} };
    case 'vdi_attach':
    case 'vdi_activate':
      return { ...base, ...sr, ...vdi, args: ['true'] };
    case 'vdi_resize':
    case 'vdi_resize_online':
      return { ...base, ...sr, ...vdi, args: ['21474836480'] };
    case 'vdi_snapshot':
    case 'vdi_clone':
      return { ...base, ...sr, ...vdi, driver_params: {} };
    case 'vdi_compose':
    case 'vdi_list_changed_blocks':
      return { ...base, ...sr, ...vdi, args: ['OpaqueRef:0e0e0e0e-1111-2222-3333-444444444444'] };
    case 'vdi_attach_from_config':
    case 'vdi_detach_from_config':
      return { command, device_config: common.device_config, sr_uuid: SR_UUID, vdi_uuid: VDI_UUID };
    default:
      return command.startsWith('sr_') ? { ...base, ...sr } : { ...base, ...sr, ...vdi };
  }
}
