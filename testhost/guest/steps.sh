# Runs the named steps of one test-host job in order, each in its own bash with
# `set -e -o pipefail` and the helpers of lib.sh, and records per step:
#   steps/NNN.out, steps/NNN.err      its stdout and stderr
#   steps/results                     one line "NNN RC START END" (START/END: guest epoch seconds)
# Options come from steps/options: STOP_ON_FAILURE=0|1, STEP_TIMEOUT=<seconds, 0 = none>.
set -u
dir=/.testhost/io/steps
STOP_ON_FAILURE=0 STEP_TIMEOUT=0
# shellcheck source=/dev/null
[ -f "$dir/options" ] && . "$dir/options"
for script in "$dir"/[0-9][0-9][0-9].sh; do
  [ -e "$script" ] || continue
  n=${script##*/}; n=${n%.sh}
  start=$EPOCHREALTIME
  if [ "$STEP_TIMEOUT" != 0 ]; then
    timeout -k 5 "$STEP_TIMEOUT" bash "$script" < /dev/null > "$dir/$n.out" 2> "$dir/$n.err"
  else
    bash "$script" < /dev/null > "$dir/$n.out" 2> "$dir/$n.err"
  fi
  rc=$?
  echo "$n $rc $start $EPOCHREALTIME" >> "$dir/results"
  if [ "$rc" != 0 ] && [ "$STOP_ON_FAILURE" = 1 ]; then break; fi
done
exit 0
