#!/usr/bin/env bash
# Installs everything the project needs on a Debian 12 host (run as root) and builds it.
# Safe to run any number of times: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: the storage tools the drivers shell out to, the independent VHD
# reader used by the tests, and what the throw-away test host boots with.
APT_PACKAGES=(
  qemu-utils lvm2 e2fsprogs util-linux python3 libvhdi-utils
  qemu-system-x86 busybox-static nfs-kernel-server hyperfine time
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "setup: run as root to install packages" >&2; exit 1; fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# npm dependencies, reinstalled only when the lockfile changed since the last install.
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f node_modules/.setup-lock-sum ] || [ "$(cat node_modules/.setup-lock-sum)" != "$lock_sum" ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
  echo "$lock_sum" > node_modules/.setup-lock-sum
fi

# Driver executables run compiled JavaScript, never a transpile at call time.
npx --no-install tsc -p tsconfig.build.json
