// Which capability promises which command: the one table both directions of
// the capability/handler check read. A driver that declares a capability must
// implement its commands; a driver that implements a gated command must declare
// the capability (else xapi never sends it, or sends it to a driver that did not say so).
import { capabilityNames, CAPABILITIES, type CapabilityName, type DriverInfo } from '../driver-info.js';
import type { HandlerCommand } from './protocol/commands.js';

export interface CapabilityRule {
  /** Commands the capability promises: each needs a handler when the capability is declared. */
  commands: readonly HandlerCommand[];
  /** True when a handler for one of `commands` requires the capability to be declared. */
  gates: boolean;
  /** Why, for capabilities that are not simply "this command exists". */
  why?: string;
}

export const CAPABILITY_RULES: Readonly<Record<CapabilityName, CapabilityRule>> = {
  SR_PROBE: { commands: ['sr_probe'], gates: true },
  SR_UPDATE: { commands: ['sr_update'], gates: true },
  // xapi always allows SR lifecycle operations: drivers implement them without declaring these.
  SR_CREATE: { commands: ['sr_create'], gates: false, why: 'SR operations are always allowed by xapi; sm drivers do not declare it' },
  SR_DELETE: { commands: ['sr_delete'], gates: false, why: 'as SR_CREATE' },
  SR_ATTACH: { commands: ['sr_attach'], gates: false, why: 'as SR_CREATE' },
  SR_DETACH: { commands: ['sr_detach'], gates: false, why: 'as SR_CREATE' },
  SR_SCAN: { commands: ['sr_scan'], gates: false, why: 'as SR_CREATE' },
  SR_SUPPORTS_LOCAL_CACHING: { commands: [], gates: false, why: 'host-level: the SR may be chosen as the IntelliCache SR; no command of its own' },
  SR_CACHING: { commands: [], gates: false, why: 'tapdisk-level read caching on the local cache SR; no command of its own' },
  SR_TRIM: { commands: [], gates: false, why: 'served by the trim host plugin, not by a driver command' },
  SR_METADATA: { commands: [], gates: false, why: 'the SR can hold pool-metadata VDIs for DR; uses ordinary VDI commands' },
  SR_STATS: { commands: [], gates: false, why: 'statistics are read by xapi, no driver command' },
  SR_MULTIPATH: { commands: [], gates: false, why: 'multipath is host configuration, no driver command' },
  VDI_CREATE: { commands: ['vdi_create'], gates: true },
  VDI_DELETE: { commands: ['vdi_delete'], gates: true },
  VDI_ATTACH: { commands: ['vdi_attach'], gates: true },
  VDI_DETACH: { commands: ['vdi_detach'], gates: true },
  VDI_ACTIVATE: { commands: ['vdi_activate'], gates: true },
  VDI_DEACTIVATE: { commands: ['vdi_deactivate'], gates: true },
  VDI_ACTIVATE_READONLY: { commands: ['vdi_activate'], gates: false, why: 'a mode of vdi_activate (writable=false), no command of its own' },
  VDI_UPDATE: { commands: ['vdi_update'], gates: true },
  VDI_INTRODUCE: { commands: ['vdi_introduce'], gates: true },
  VDI_RESIZE: { commands: ['vdi_resize'], gates: true },
  VDI_RESIZE_ONLINE: { commands: ['vdi_resize_online'], gates: true },
  VDI_SNAPSHOT: { commands: ['vdi_snapshot'], gates: true },
  VDI_CLONE: { commands: ['vdi_clone'], gates: true },
  // The generated config is replayed by static-vdis without xapi: both halves are needed.
  VDI_GENERATE_CONFIG: { commands: ['vdi_generate_config', 'vdi_attach_from_config', 'vdi_detach_from_config'], gates: true },
  VDI_MIRROR: { commands: ['vdi_snapshot', 'vdi_attach', 'vdi_activate'], gates: false, why: 'storage migration is built by xapi from snapshot + attach/activate of the mirror' },
  VDI_MIRROR_IN: { commands: ['vdi_create', 'vdi_attach', 'vdi_activate'], gates: false, why: 'receiving a mirror means creating and attaching the destination VDI' },
  VDI_RESET_ON_BOOT: { commands: ['vdi_epoch_begin'], gates: true, why: 'vdi_epoch_begin with vdi_on_boot=reset empties the leaf; sm requires the /2 form' },
  VDI_CONFIG_CBT: { commands: ['vdi_enable_cbt', 'vdi_disable_cbt', 'vdi_data_destroy', 'vdi_list_changed_blocks'], gates: true },
  VDI_COMPOSE: { commands: ['vdi_compose'], gates: true },
  VDI_REVERT: { commands: [], gates: false, why: "sm's SRCommand never dispatches vdi_revert; xapi reverts through VDI_CLONE" },
  VDI_ATTACH_OFFLINE: { commands: ['vdi_attach'], gates: false, why: 'a mode of vdi_attach for offline use' },
  VDI_READ_CACHING: { commands: [], gates: false, why: 'informational; the real state is o_direct in the attach result' },
  LARGE_VDI: { commands: [], gates: false, why: 'informational: VDIs over 2 TiB are accepted by vdi_create' },
  THIN_PROVISIONING: { commands: [], gates: false, why: 'informational: allocation is on demand' },
  ATOMIC_PAUSE: {
    commands: ['vdi_activate', 'vdi_deactivate'],
    gates: false,
    why: 'sm-internal: attach becomes cheap and the work moves to activate; VDI_ACTIVATE/DEACTIVATE are advertised with it',
  },
};

// Every capability has a rule: a capability added to the closed set without one fails here.
for (const c of CAPABILITIES) if (!(c in CAPABILITY_RULES)) throw new Error(`capability ${c} has no rule in CAPABILITY_RULES`);

/**
 * Problems between declared capabilities and implemented commands; empty when
 * consistent. Built-in answers (vdi_epoch_end, vdi_epoch_begin without reset)
 * are not handlers and need no capability.
 */
export function capabilityProblems(info: DriverInfo, implemented: Iterable<HandlerCommand>): string[] {
  const have = new Set(implemented);
  const declared = capabilityNames(info.capabilities);
  const problems: string[] = [];
  for (const cap of declared) {
    for (const cmd of CAPABILITY_RULES[cap].commands)
      if (!have.has(cmd)) problems.push(`capability ${cap} is declared but command ${cmd} has no handler`);
  }
  for (const cmd of have) {
    const gating = (Object.entries(CAPABILITY_RULES) as Array<[CapabilityName, CapabilityRule]>).filter(
      ([, r]) => r.gates && r.commands.includes(cmd),
    );
    if (gating.length > 0 && !gating.some(([c]) => declared.has(c)))
      problems.push(`command ${cmd} has a handler but capability ${gating.map(([c]) => c).join(' or ')} is not declared`);
  }
  if (declared.has('VDI_RESET_ON_BOOT') && !info.capabilities.includes('VDI_RESET_ON_BOOT/2'))
    problems.push('VDI_RESET_ON_BOOT must be declared as VDI_RESET_ON_BOOT/2 (sm and xapi only reset with version 2)');
  return problems;
}
