#!/usr/bin/env bash
# The main job: set up, put real storage under the drivers (a loop-backed ext4
# filesystem for the file driver), run the conformance suite against them and
# print the report. Safe to run again: it cleans up what a previous run left.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

WORK=${SM_MAIN_WORK:-/var/tmp/smapi-main}
MNT=$WORK/mnt
cleanup() {
  if mountpoint -q "$MNT" 2>/dev/null; then umount "$MNT" || umount -l "$MNT" || true; fi
  if [ -f "$WORK/loopdev" ]; then losetup -d "$(cat "$WORK/loopdev")" 2>/dev/null || true; rm -f "$WORK/loopdev"; fi
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

export SMCTL_DB=$WORK/state.db SM_LOCK_DIR=$WORK/lock SM_SR_MOUNT_ROOT=$WORK/sr-mount SM_RUN_DIR=$WORK/run SM_LOG_FILE=$WORK/SMlog
status=0
# The file driver on real storage, in every format it declares.
echo "== file driver (FileSR) on $LOOP (ext4), every declared format"
bin/sm-conformance --driver drivers/file/FileSR --device-config "location=$MNT/file-sr" \
  --junit "$WORK/file.junit.xml" --json "$WORK/file.json" || status=1

# ext and nfs need device-mapper and an NFS client, which this kernel lacks: their
# SR/VDI behaviour is tested in the test host (npm test: test/ext, test/nfs).
# lvm's SR and VDI commands are not implemented yet. For these three, what this
# job can check on the host is their DRIVER_INFO, as xapi registers it.
for d in drivers/ext/EXTSR drivers/nfs/NFSSR drivers/lvm/LVMSR; do
  echo "== $d: driver-info on this host"
  bin/sm-conformance --driver "$d" --only driver-info --json "$WORK/$(basename "$d").json" || status=1
done
echo "reports: $WORK/*.junit.xml, $WORK/*.json"
exit $status
