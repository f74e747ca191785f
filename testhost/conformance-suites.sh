#!/usr/bin/env bash
# Runs bin/sm-conformance inside the test host (run it there: testhost/vmtest run,
# or a step) against the drivers whose SR types are named, each on storage made
# here for it, all at once (the guest has 2 vCPUs and each suite makes one driver
# call at a time):
#   ext  drivers/ext/EXTSR  on a loop device (device-config:device)
#   nfs  drivers/nfs/NFSSR  on the guest's kernel NFS server at 127.0.0.1
#   lvm  drivers/lvm/LVMSR  on a loop device (device-config:device)
#
# usage: testhost/conformance-suites.sh TYPE... [-- SM-CONFORMANCE-OPTION...]
# Writes $TESTHOST_OUT/TYPE.json, TYPE.junit.xml and TYPE.log (the table) --
# `vmtest run --out DIR` copies them to DIR on the host; without it they go to
# /run/conformance/out. Prints each suite's lines as they come, prefixed with
# [TYPE]. Exit status 0 only if every suite passed (else the worst
# sm-conformance status: 1 failures, 2 bad usage).
set -euo pipefail
[ -n "${SM_TESTHOST_GUEST:-}" ] || { echo "conformance-suites.sh: run this inside the test host (testhost/vmtest run -- $0 ...)" >&2; exit 2; }
[ $# -ge 1 ] && [ "$1" != "--" ] || { echo "usage: $0 TYPE... [-- SM-CONFORMANCE-OPTION...]" >&2; exit 2; }
cd "$(dirname "$0")/.."
source /.testhost/lib.sh
mkdir -p "$TH_STATE"

out=${TESTHOST_OUT:-/run/conformance/out}
types=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do types+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
extra=("$@")
mkdir -p "$out"

# The device-config of TYPE's SR, one KEY=VALUE per line, on storage made now.
storage_for() {
  case "$1" in
    ext | lvm) echo "device=$(th_loop_file "/run/conformance/$1.img" 4096)" ;;
    nfs)
      th_nfs_server_start /srv/conformance-nfs >&2
      printf '%s\n' server=127.0.0.1 serverpath=/srv/conformance-nfs ;;
    *) echo "conformance-suites.sh: unknown SR type $1 (known: ext, nfs, lvm)" >&2; return 2 ;;
  esac
}

pids=()
for t in "${types[@]}"; do
  driver=$(ls drivers/"$t"/*SR 2>/dev/null | head -n 1)
  [ -x "$driver" ] || { echo "conformance-suites.sh: no driver executable under drivers/$t/" >&2; exit 2; }
  args=(--driver "$driver" --json "$out/$t.json" --junit "$out/$t.junit.xml")
  dc=$(storage_for "$t")
  while IFS= read -r kv; do args+=(--device-config "$kv"); done <<< "$dc"
  echo "[$t] bin/sm-conformance ${args[*]} ${extra[*]}"
  # Each suite its own lock and log directories: they run side by side.
  ( export SM_LOCK_DIR=/run/conformance/$t/lock SM_LOG_FILE=/run/conformance/$t/SMlog
    mkdir -p "$SM_LOCK_DIR"
    bin/sm-conformance "${args[@]}" "${extra[@]}" > "$out/$t.log" 2>&1 ) &
  pids+=($!)
  : >> "$out/$t.log"
  tail -n +1 -f --pid="$!" "$out/$t.log" | sed -u "s/^/[$t] /" &
done

status=0
for i in "${!pids[@]}"; do
  rc=0; wait "${pids[$i]}" || rc=$?
  [ "$rc" -gt "$status" ] && status=$rc
  echo "[${types[$i]}] sm-conformance exit status $rc"
done
wait # the tails end with their suites
exit $status
