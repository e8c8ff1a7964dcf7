#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine (as root), builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
need=(ostree attr xz-utils e2fsprogs python3-gi strace tar util-linux openssl)
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
npm ci --no-audit --no-fund
npm test
