// What CI runs of the conformance suite inside the test host (ext, nfs), and why.
// Under TCG emulation one driver call costs 20-50 s on a loaded 2-core machine
// (3-10 s idle): most of it is node loading the driver and our JS tools
// (vhd-util), not the storage commands (docs/conformance.md has the timings).
// The full suite in every format (hundreds of driver calls per driver) is the
// main job's (npm start); CI runs, in format vhd (the default, and the one with
// the most tool calls), what exercises what only the guest has:
//   * sr-lifecycle: create (LVM VG/LV + mkfs + mount for ext; NFS mount for nfs),
//     attach, scan, update, probe, delete refused while a VDI remains, detach,
//     re-attach, delete;
//   * vdi-create with one awkward size (2 MiB + 1 byte), an unsupported format
//     and an oversize request refused without trace;
//   * snapshot: flags, sizes, and data isolation checked by content through the
//     attached path (activation on the guest's device-mapper / over NFS).
// Left to the main job: qcow2 and raw (the same SR plumbing; the format layer is
// covered on this host by the FileSR suite), the other sizes, clone (snapshot's
// code path), resize, vdi-delete, attach-20 (80 calls), introduce-duplicate,
// idempotency and concurrency (the shared file-SR core and local locks, as on
// the host).
export const CI_GUEST_SCENARIOS = ['driver-info', 'sr-lifecycle', 'vdi-create', 'snapshot'] as const;

export const CI_GUEST_ARGS: readonly string[] = ['--format', 'vhd', '--size', '2097153', ...CI_GUEST_SCENARIOS.flatMap((s) => ['--only', s])];

/** The scenario results that must pass (ids as reported). */
export const CI_GUEST_MUST_PASS: readonly string[] = [
  'driver-info',
  'sr-lifecycle',
  'vdi-create[vhd]',
  'vdi-create-unsupported-format',
  'vdi-create-oversize[vhd]',
  'snapshot[vhd]',
];

/** Skips expected with --format vhd: none (a skip here fails the test). */
export const CI_GUEST_SKIPS: Readonly<Record<string, string>> = {};
