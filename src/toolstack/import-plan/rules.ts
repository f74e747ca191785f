// How the machine data of several disks combines into one VM's settings: one
// rule per registry key, all in this table so a reviewer sees every policy at
// once (a test fails when a key of data/image-meta-keys.yaml has no rule here).
//
// The policies follow docs/import-plan.md:
//   * intersection — ordered lists of what the guest can use (machine types,
//     firmware): only the entries every disk accepts, in the first disk's
//     preference order; an empty intersection blocks the plan;
//   * maximum      — lower bounds for the whole VM (RAM): the largest one wins;
//   * per-disk     — facts about one disk (its own minimum size): never merged,
//     each disk keeps its own;
//   * must-agree   — single-valued facts (architecture, buses, OS, CPU
//     topology): every disk that states one must state the same, otherwise no
//     value is proposed and the plan is blocked (a disagreement is never
//     resolved silently).

export type CombineRule = 'intersection' | 'maximum' | 'per-disk' | 'must-agree';

export interface KeyRule {
  rule: CombineRule;
  /** The VM setting the key proposes, as a toolstack operator calls it. */
  setting: string;
}

export const RULE_TEXT: Readonly<Record<CombineRule, string>> = {
  intersection: 'intersection over the disks, in the first disk\'s preference order; empty = conflict',
  maximum: 'maximum over the disks',
  'per-disk': 'per disk, not merged (each disk keeps its own)',
  'must-agree': 'every disk that has the key must give the same value',
};

/** Registry key -> rule. Keys missing here are reported as `no-rule` (and fail test/import-plan). */
export const COMBINE_RULES: Readonly<Record<string, KeyRule>> = {
  'qemu.machine-types': { rule: 'intersection', setting: 'machine type' },
  'qemu.min-ram-MB': { rule: 'maximum', setting: 'minimum RAM (MiB)' },
  'qemu.min-disk-GB': { rule: 'per-disk', setting: 'minimum disk size (GiB)' },
  'qemu.firmware': { rule: 'intersection', setting: 'firmware' },
  'qemu.secure-boot': { rule: 'must-agree', setting: 'Secure Boot' },
  'qemu.arch': { rule: 'must-agree', setting: 'CPU architecture' },
  'qemu.disk-bus': { rule: 'must-agree', setting: 'disk bus' },
  'qemu.cdrom-bus': { rule: 'must-agree', setting: 'CD-ROM bus' },
  'qemu.scsi-model': { rule: 'must-agree', setting: 'SCSI controller model' },
  'qemu.nic-model': { rule: 'must-agree', setting: 'network card model' },
  'qemu.video-model': { rule: 'must-agree', setting: 'video model' },
  'qemu.rng-model': { rule: 'must-agree', setting: 'random number generator model' },
  'qemu.os.osinfo-id': { rule: 'must-agree', setting: 'guest OS (libosinfo id)' },
  'qemu.os.type': { rule: 'must-agree', setting: 'guest OS family' },
  'qemu.cpu.sockets': { rule: 'must-agree', setting: 'CPU sockets' },
  'qemu.cpu.cores': { rule: 'must-agree', setting: 'cores per socket' },
  'qemu.cpu.threads': { rule: 'must-agree', setting: 'threads per core' },
};

export function ruleFor(key: string): KeyRule | undefined {
  return Object.hasOwn(COMBINE_RULES, key) ? COMBINE_RULES[key] : undefined;
}
