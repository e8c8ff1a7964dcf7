#!/usr/bin/env bash
# The main job, as a short demo: commit a sample tree, inspect it, verify it, check it out.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v ostree >/dev/null || [ ! -d node_modules ]; then
  (command -v ostree >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ostree attr >/dev/null; })
  npm ci --no-audit --no-fund >/dev/null
fi
[ -f dist/cli/main.js ] || npm run build >/dev/null
cairn() { echo "\$ cairn $*" >&2; bin/cairn "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tree/usr/bin" "$work/tree/usr/etc" "$work/tree/usr/lib/os-release.d"
printf 'NAME=cairn demo\nVERSION_ID=1\n' > "$work/tree/usr/lib/os-release"
printf '#!/bin/sh\necho hello from cairn\n' > "$work/tree/usr/bin/hello" && chmod 755 "$work/tree/usr/bin/hello"
printf 'greeting=hello\n' > "$work/tree/usr/etc/demo.conf"
ln -s usr/bin "$work/tree/bin"
cairn init --repo="$work/repo" --mode=archive
c1=$(cairn commit --repo="$work/repo" -b demo/stable -s "Demo v1" --add-metadata-string=version=1 --tree=dir="$work/tree")
printf 'greeting=bonjour\n' > "$work/tree/usr/etc/demo.conf"
c2=$(cairn commit --repo="$work/repo" -b demo/stable -s "Demo v2" --add-metadata-string=version=2 --tree=dir="$work/tree")
cairn refs --repo="$work/repo"
cairn log --repo="$work/repo" demo/stable
cairn ls --repo="$work/repo" -R demo/stable
cairn diff --repo="$work/repo" "$c1" "$c2"
cairn cat --repo="$work/repo" demo/stable /usr/etc/demo.conf
cairn fsck --repo="$work/repo"
cairn checkout --repo="$work/repo" demo/stable "$work/checkout"
echo "\$ ls -lR checkout" >&2; ls -lR "$work/checkout"
echo "\$ ostree fsck --repo=repo   # the real ostree reads what cairn wrote" >&2
ostree fsck --repo="$work/repo"
