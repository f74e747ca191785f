#!/usr/bin/env bash
# npm run bench: every benchmark in bench/, each printing its figures as ratios
# against a baseline it measures in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
status=0
for b in bench/*.bench.ts; do
  [ -e "$b" ] || continue
  echo "== $b"
  npx --no-install tsx "$b" || status=1
done
exit $status
