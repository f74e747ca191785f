#!/usr/bin/env bash
# The test command: set up (packages, npm ci, build), then run the whole suite,
# host tests and test-host tests alike.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec npx --no-install vitest run "$@"
