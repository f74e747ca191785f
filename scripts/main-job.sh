#!/usr/bin/env bash
# The main job: set up, put real storage under the drivers (a loop-backed ext4
# filesystem for the file driver, a loop-device PV for the lvm driver, and the
# test host's own for ext and nfs), run the conformance suite against them and
# print the report. Safe to run again: it cleans up what a previous run left.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

WORK=${SM_MAIN_WORK:-/var/tmp/smapi-main}
MNT=$WORK/mnt
guest_pids=()
cleanup() {
  # Test-host guests still running (the job was interrupted): vmtest takes its guest down on SIGTERM.
  for pid in "${guest_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if mountpoint -q "$MNT" 2>/dev/null; then umount "$MNT" || umount -l "$MNT" || true; fi
  if [ -f "$WORK/loopdev" ]; then losetup -d "$(cat "$WORK/loopdev")" 2>/dev/null || true; rm -f "$WORK/loopdev"; fi
  if [ -f "$WORK/lvm-pv" ]; then
    pv=$(cat "$WORK/lvm-pv")
    # Whatever a failed suite left on the PV: its VGs, and loop devices over LV extents.
    for vg in $(pvs --devices "$pv" --driverloaded n --noheadings -o vg_name "$pv" 2>/dev/null); do
      vgremove --devices "$pv" --driverloaded n -f "$vg" >/dev/null 2>&1 || true
    done
    for l in $(losetup -j "$pv" -O NAME -n 2>/dev/null); do [ "$l" != "$pv" ] && losetup -d "$l" 2>/dev/null || true; done
    losetup -d "$pv" 2>/dev/null || true
    rm -f "$WORK/lvm-pv"
  fi
}
cleanup
rm -rf "$WORK"; mkdir -p "$MNT"
trap cleanup EXIT

# Real storage: a 4 GiB sparse file on this machine's disk, as an ext4 loop device.
truncate -s 4G "$WORK/disk.img"
losetup -f --show "$WORK/disk.img" > "$WORK/loopdev"
LOOP=$(cat "$WORK/loopdev")
mkfs.ext4 -q -F "$LOOP"
mount "$LOOP" "$MNT"
mkdir -p "$MNT/file-sr"

# Extra sm-conformance options for every suite, e.g. "--only sr-lifecycle --format vhd"
# for a quick run (the full suites take about half an hour each in the test host).
read -r -a SUITE_ARGS <<< "${SM_MAIN_CONFORMANCE_ARGS-}"

export SMCTL_DB=$WORK/state.db SM_LOCK_DIR=$WORK/lock SM_SR_MOUNT_ROOT=$WORK/sr-mount SM_RUN_DIR=$WORK/run SM_LOG_FILE=$WORK/SMlog
status=0
# The file driver on real storage, in every format it declares.
echo "== file driver (FileSR) on $LOOP (ext4), every declared format"
bin/sm-conformance --driver drivers/file/FileSR --device-config "location=$MNT/file-sr" "${SUITE_ARGS[@]}" \
  --junit "$WORK/file.junit.xml" --json "$WORK/file.json" || status=1
reports=("$WORK/file.json")

# The lvm driver on a 4 GiB loop-device PV. This kernel has no device-mapper: LVM
# runs with --driverloaded n and the driver reaches an LV's bytes through a loop
# device over its extents (docs/lvm.md), so VDI data really lands on the PV.
truncate -s 4G "$WORK/lvm.img"
losetup -f --show "$WORK/lvm.img" > "$WORK/lvm-pv"
echo "== lvm driver (LVMSR) on $(cat "$WORK/lvm-pv") (LVM without device-mapper), every declared format"
bin/sm-conformance --driver drivers/lvm/LVMSR --device-config "device=$(cat "$WORK/lvm-pv")" "${SUITE_ARGS[@]}" \
  --junit "$WORK/lvm.junit.xml" --json "$WORK/lvm.json" || status=1
reports+=("$WORK/lvm.json")

# ext and nfs need device-mapper and an NFS server and client, which this kernel
# lacks, and lvm is run again with device-mapper (LVs activated as on a real
# host): these suites run in the test host, every declared format, on storage
# made there (a loop device for ext and lvm, the guest's kernel NFS server on
# 127.0.0.1 for nfs). Under emulation every driver call costs seconds: they take
# about half an hour (docs/conformance.md has the timings). SM_MAIN_GUEST_TYPES
# chooses them: comma-separated groups, each group one guest whose suites run
# side by side, the guests at the same time (each user-mode-linux guest keeps
# about one core busy). Default: ext and nfs in one guest, lvm in another. ""
# skips the test host.
IFS=, read -r -a GUEST_GROUPS <<< "${SM_MAIN_GUEST_TYPES-ext nfs,lvm}"
# Drivers whose SR/VDI commands are not ready: their DRIVER_INFO, as xapi registers it.
INFO_ONLY_TYPES=()

guest_types=()
for i in "${!GUEST_GROUPS[@]}"; do
  read -r -a types <<< "${GUEST_GROUPS[$i]}"
  [ "${#types[@]}" -gt 0 ] || continue
  echo "== ${types[*]}: in the test host (${SM_TESTHOST_BACKEND:-uml}, guest $((i + 1))), every declared format"
  testhost/vmtest run --timeout "${SM_MAIN_GUEST_TIMEOUT:-14400}" --out "$WORK/guest-$i" -- \
    testhost/conformance-suites.sh "${types[@]}" -- "${SUITE_ARGS[@]}" &
  guest_pids+=($!)
  for t in "${types[@]}"; do guest_types+=("$i:$t"); done
done
if [ "${#guest_pids[@]}" -eq 0 ]; then
  echo "== test host suites skipped (SM_MAIN_GUEST_TYPES is empty)"
fi
for pid in "${guest_pids[@]}"; do wait "$pid" || status=1; done
guest_pids=()
for it in "${guest_types[@]}"; do
  i=${it%%:*} t=${it#*:}
  # lvm also ran on this host above: the guest's reports keep their own name.
  name=$t; [ "$t" = lvm ] && name=lvm-guest
  for f in json junit.xml log; do cp "$WORK/guest-$i/$t.$f" "$WORK/$name.$f" 2>/dev/null || true; done
  reports+=("$WORK/$name.json")
done

for t in "${INFO_ONLY_TYPES[@]}"; do
  d=$(ls drivers/"$t"/*SR | head -n 1)
  echo "== $d: driver-info on this host"
  bin/sm-conformance --driver "$d" --only driver-info --json "$WORK/$t.json" --junit "$WORK/$t.junit.xml" || status=1
  reports+=("$WORK/$t.json")
done

echo
echo "== every suite"
bin/sm-conformance "${reports[@]/#/--report=}" || status=1
echo "reports: $WORK/*.junit.xml, $WORK/*.json"
exit $status
