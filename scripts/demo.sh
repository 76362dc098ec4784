#!/usr/bin/env bash
# demo.sh [LAMINA]: an image from Debian's busybox-static becomes a running container.
#   1. a root filesystem dir with /bin/busybox, its applet symlinks and /etc/passwd
#   2. `lamina import` makes it a one-layer image in a throwaway store
#   3. `lamina mount --bundle` mounts it and writes an OCI runtime bundle
#   4. crun runs a shell command in it (scripts/run-bundle.sh), we print what it printed
#   5. umount, remove the store
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
LAMINA=${1:-$REPO/target/release/lamina}
RUNTIME=${RUNTIME:-crun}

[ "$(id -u)" = 0 ] || { echo "demo: must run as root (mounts)" >&2; exit 1; }
[ -x "$LAMINA" ] || { echo "demo: $LAMINA not built (cargo build --release)" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "demo: /bin/busybox missing (apt-get install busybox-static)" >&2; exit 1; }

WORK=$(mktemp -d /var/tmp/lamina-demo.XXXXXX)
ROOT=$WORK/store
BUNDLE=$WORK/bundle
ID=lamina-demo-$$
mounted=""
cleanup() {
  set +e  # a cleanup step that finds nothing to do must not turn a good run into a failure
  [ -z "$mounted" ] || "$LAMINA" --root "$ROOT" umount "$BUNDLE/rootfs" >/dev/null 2>&1 || true
  # whatever is still mounted below WORK (deepest first), then the files
  grep -o " $WORK[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
lamina() { "$LAMINA" --root "$ROOT" "$@"; }

echo "== 1. a busybox root filesystem"
RFS=$WORK/rootfs
mkdir -p "$RFS"/{bin,etc,tmp,root,proc,sys,dev}
chmod 1777 "$RFS/tmp"
install -m 0755 /bin/busybox "$RFS/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$RFS/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$RFS/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$RFS/etc/group"
echo "$(ls "$RFS/bin" | wc -l) entries in /bin"

echo "== 2. lamina import"
lamina import "$RFS" lamina-demo:busybox --change 'CMD ["/bin/sh"]'
lamina images

echo "== 3. lamina mount --bundle"
# the command after -- replaces the image's Cmd in the bundle's config.json, as with docker run
CMD='echo hello from lamina; uname -sr; echo "I am $(id -un) in $(pwd), $(ls /bin | wc -l) programs in /bin"'
lamina mount lamina-demo:busybox --bundle "$BUNDLE" -- /bin/sh -c "$CMD"
mounted=yes
lamina mounts

echo "== 4. $RUNTIME runs it"
echo "---- container output ----"
"$REPO/scripts/run-bundle.sh" "$RUNTIME" "$BUNDLE" "$ID"
echo "--------------------------"

echo "== 5. clean up"
lamina umount "$BUNDLE/rootfs"
mounted=""
lamina mounts
echo "demo done"
