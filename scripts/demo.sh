#!/usr/bin/env bash
# The main job, as a demo of what cairn does end to end, all on this machine (127.0.0.1 only):
#   vendor: commit OS v1 → sign → summary → serve over HTTP
#   host:   sysroot → pull (signature enforced) → deploy with boot counting → admin edits /etc
#   vendor: commit v2 → static delta v1→v2 → host pulls the delta → deploy v2 (/etc merged)
#   host:   boot tries, bless, rollback — and the real ostree reads everything cairn wrote.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v ostree >/dev/null || [ ! -d node_modules ]; then
  command -v ostree >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ostree attr xz-utils e2fsprogs >/dev/null; }
  npm ci --no-audit --no-fund >/dev/null
fi
[ -f dist/bundle/cairn.js ] || npm run build >/dev/null
CAIRN=$PWD/bin/cairn
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
cairn() { echo "\$ cairn $*" >&2; "$CAIRN" "$@"; }

work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  chattr -R -i "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
VENDOR=$work/vendor
HOST=$work/host
REF=pine/x86_64/stable

make_os() { # dir version
  local d=$1 v=$2
  mkdir -p "$d/usr/bin" "$d/usr/etc/app" "$d/usr/lib/modules/6.1.0-pine" "$d/var" "$d/etc"
  printf 'NAME=Pine\nID=pine\nVERSION_ID=%s\nPRETTY_NAME="Pine %s"\n' "$v" "$v" > "$d/usr/lib/os-release"
  printf 'KERNEL 6.1.0-pine\n' > "$d/usr/lib/modules/6.1.0-pine/vmlinuz"
  printf 'INITRAMFS %s\n' "$v" > "$d/usr/lib/modules/6.1.0-pine/initramfs.img"
  printf '#!/bin/sh\necho "app version %s"\n' "$v" > "$d/usr/bin/app" && chmod 755 "$d/usr/bin/app"
  printf 'listen=8080\nworkers=%s\n' "$v" > "$d/usr/etc/app/app.conf"
  printf 'pine\n' > "$d/usr/etc/hostname"
  ln -sfn usr/bin "$d/bin"
}

step "vendor: key pair, OS v1 committed and signed, summary, served on 127.0.0.1"
read -r SECRET PUBLIC < <(node -e '
  const c = require("node:crypto");
  const { privateKey, publicKey } = c.generateKeyPairSync("ed25519");
  const d = Buffer.from(privateKey.export({ format: "jwk" }).d, "base64url");
  const x = Buffer.from(publicKey.export({ format: "jwk" }).x, "base64url");
  console.log(Buffer.concat([d, x]).toString("base64"), x.toString("base64"));')
make_os "$work/os-v1" 1.0
cairn init --repo="$VENDOR" --mode=archive
V1=$(cairn commit --repo="$VENDOR" -b $REF -s "Pine 1.0" --add-metadata-string=version=1.0 --tree=dir="$work/os-v1")
cairn sign --repo="$VENDOR" "$V1" "$SECRET"
cairn summary --repo="$VENDOR" -u
"$CAIRN" serve --repo="$VENDOR" --port=0 > "$work/serve.out" &
server=$!
for _ in $(seq 50); do [ -s "$work/serve.out" ] && break; sleep 0.1; done
URL=$(head -1 "$work/serve.out")
echo "serving $URL" >&2

step "host: a fresh sysroot pulls v1 (ed25519 signature required) and deploys it"
cairn admin init-fs "$HOST"
cairn admin os-init --sysroot="$HOST" pine
cairn remote add --repo="$HOST/ostree/repo" --no-gpg-verify --sign-verify=ed25519=inline:"$PUBLIC" origin "$URL"
cairn pull --repo="$HOST/ostree/repo" origin $REF
cairn admin deploy --sysroot="$HOST" --os=pine --karg=root=LABEL=root --karg=quiet origin:$REF
cairn admin status --sysroot="$HOST"

step "host: v1 boots and passes its health checks -> bless; the admin edits /etc"
DEPLOY=$(ls -d "$HOST"/ostree/deploy/pine/deploy/*.0 | head -1)
cairn admin bless --sysroot="$HOST" --booted-root="$DEPLOY"
printf 'listen=9090\nworkers=1.0\n' > "$DEPLOY/etc/app/app.conf"
printf 'local setting\n' > "$DEPLOY/etc/app/local.conf"
echo "edited $DEPLOY/etc/app/app.conf, added etc/app/local.conf" >&2

step "an unsigned commit is refused by the host (one clear line, nothing stored)"
cairn commit --repo="$VENDOR" -b pine/x86_64/unsigned -s "not signed" --tree=dir="$work/os-v1" >/dev/null
cairn summary --repo="$VENDOR" -u
cairn pull --repo="$HOST/ostree/repo" origin pine/x86_64/unsigned && exit 1 || echo "(refused, as it must be)" >&2

step "vendor: OS v2, signed, with a static delta v1 -> v2"
make_os "$work/os-v2" 2.0
V2=$(cairn commit --repo="$VENDOR" -b $REF -s "Pine 2.0" --add-metadata-string=version=2.0 --tree=dir="$work/os-v2")
cairn sign --repo="$VENDOR" "$V2" "$SECRET"
cairn static-delta generate --repo="$VENDOR" --from="$V1" --to="$V2"
cairn summary --repo="$VENDOR" -u
cairn diff --repo="$VENDOR" "$V1" "$V2"

step "host: update through the static delta, deploy v2 (booted into v1), /etc merged"
cairn pull --repo="$HOST/ostree/repo" --require-static-deltas origin $REF
cairn admin deploy --sysroot="$HOST" --booted-root="$DEPLOY" --os=pine origin:$REF
cairn admin status --sysroot="$HOST" --booted-root="$DEPLOY"
NEW=$(ls -d "$HOST"/ostree/deploy/pine/deploy/"$V2".0)
echo "--- $NEW/etc/app/app.conf (admin's edit kept):" >&2; cat "$NEW/etc/app/app.conf"
echo "--- $NEW/etc/app/local.conf (admin's file kept):" >&2; cat "$NEW/etc/app/local.conf"
echo "--- boot entries (new one on probation: +TRIES in the name):" >&2; ls "$HOST/boot/loader/entries"

step "host: v2 boots and passes its health checks -> bless; then roll back to v1"
cairn admin bless --sysroot="$HOST" --booted-root="$NEW"
ls "$HOST/boot/loader/entries"
cairn admin rollback --sysroot="$HOST" --booted-root="$NEW"
cairn admin status --sysroot="$HOST" --booted-root="$NEW"

step "the real ostree reads what cairn wrote"
echo "\$ ostree fsck --repo=vendor && ostree admin --sysroot=host status" >&2
ostree fsck --repo="$VENDOR" | tail -1
ostree admin --sysroot="$HOST" status
cairn fsck --repo="$HOST/ostree/repo"
