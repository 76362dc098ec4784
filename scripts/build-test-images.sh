#!/usr/bin/env bash
# build-test-images.sh [CACHE]: the project's own test images, built once and cached outside the repo.
#
#   CACHE/debian               OCI layout, tag `test`: real Debian bookworm (debootstrap minbase) in 3 layers
#   CACHE/debian-oci.tar       oci-archive of it, ref name debian:test
#   CACHE/debian-docker.tar    docker-archive of it, RepoTags debian:test
#   CACHE/busybox/oci          busybox fixtures (tags latest, and with ../shared also layered, multi, ...)
#   CACHE/busybox/*.tar        their archives
#
# Layers of debian:test:
#   1  the debootstrap tree (apt lists, .debs and logs dropped)
#   2  umoci repack of changes: new files with a hardlink pair, a symlink, user.* xattrs and a
#      security.capability; a file in /tmp (tmp/ stays 1777); docs and man pages deleted (whiteouts);
#      a file replaced by a directory
#   3  hand-made tar with entries whose parent directories are NOT listed (tmp/implied.txt,
#      etc/lamina-implied.conf): an unpacker must take those directories from the lower layers.
#
# Each stage writes CACHE/stamps/<stage> and is skipped when it exists (FORCE=1 rebuilds).
# Outputs are built beside their final name and renamed into place, so a killed run leaves no
# half image behind. Needs root (debootstrap, chroot ownership, setcap).
set -euo pipefail

CACHE=${1:-/var/cache/lamina/images}
REPO=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${LAMINA_SHARED:-$REPO/../shared}
SUITE=bookworm

[ "$(id -u)" = 0 ] || { echo "build-test-images: must run as root" >&2; exit 1; }
for t in debootstrap umoci skopeo python3 setfattr setcap; do
  command -v "$t" >/dev/null || { echo "build-test-images: missing tool $t (run scripts/install-deps.sh)" >&2; exit 1; }
done

mkdir -p "$CACHE/stamps" "$CACHE/work"
CACHE=$(cd "$CACHE" && pwd)
STAMPS=$CACHE/stamps
log() { printf '[build-test-images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
done_p() { [ -z "${FORCE:-}" ] && [ -e "$STAMPS/$1" ]; }
stamp() { date +%s > "$STAMPS/$1"; }

# The Debian mirror apt is configured with (deb822 .sources first, then sources.list).
mirror_uri() {
  local uri=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    uri=$(awk -v suite="$SUITE" 'BEGIN{RS="";FS="\n"} {
        u=""; ok=0
        for (i=1;i<=NF;i++) {
          if ($i ~ /^URIs:/)   { split($i,a,/[ \t]+/); u=a[2] }
          if ($i ~ /^Suites:/) { n=split($i,s,/[ \t]+/); for (j=2;j<=n;j++) if (s[j]==suite) ok=1 }
        }
        if (ok && u != "") { print u; exit } }' "$f")
    [ -n "$uri" ] && break
  done
  if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
    uri=$(awk -v suite="$SUITE" '$1=="deb" && $3==suite {print $2; exit}' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || uri=http://deb.debian.org/debian
  printf '%s\n' "$uri"
}

stage_debootstrap() {
  local root=$CACHE/work/rootfs
  rm -rf "$root" "$root.tmp"
  log "debootstrap --variant=minbase $SUITE (about a minute)"
  debootstrap --variant=minbase "$SUITE" "$root.tmp" "$(mirror_uri)" >"$CACHE/work/debootstrap.log" 2>&1 ||
    { tail -20 "$CACHE/work/debootstrap.log" >&2; exit 1; }
  printf '# apt sources removed by lamina build-test-images.sh\n' > "$root.tmp/etc/apt/sources.list"
  rm -rf "$root.tmp"/var/cache/apt/archives/*.deb "$root.tmp"/var/lib/apt/lists/* \
         "$root.tmp"/var/log/*.log "$root.tmp"/var/cache/ldconfig/aux-cache
  mv "$root.tmp" "$root"
}

# layer 3: entries without their parent directories, written with python's tarfile so
# that nothing adds the parents for us
write_implied_layer() {
  python3 - "$1" <<'PY'
import io, sys, tarfile, time
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    for name, body, mode in (("tmp/implied.txt", b"tmp/ is not in this layer\n", 0o644),
                             ("etc/lamina-implied.conf", b"etc/ is not in this layer\n", 0o600)):
        ti = tarfile.TarInfo(name)
        ti.size, ti.mode, ti.mtime = len(body), mode, 1700000000
        t.addfile(ti, io.BytesIO(body))
PY
}

stage_debian() {
  local L=$CACHE/debian.tmp B=$CACHE/work/debian-bundle R
  rm -rf "$L" "$B"
  log "debian: umoci layers"
  umoci init --layout "$L"
  umoci new --image "$L:test"
  umoci unpack --image "$L:test" "$B"
  R=$B/rootfs
  cp -a "$CACHE/work/rootfs/." "$R/"
  umoci repack --refresh-bundle --image "$L:test" --history.created_by "debootstrap --variant=minbase $SUITE" "$B"

  # layer 2
  mkdir -p "$R/opt/lamina/sub"
  echo "hello from the second layer" > "$R/opt/lamina/hello.txt"
  ln "$R/opt/lamina/hello.txt" "$R/opt/lamina/sub/hello-hardlink.txt"
  ln -s ../hello.txt "$R/opt/lamina/sub/hello-symlink"
  ln -s /etc/debian_version "$R/opt/lamina/abs-symlink"
  echo xattrs > "$R/opt/lamina/xattr-file"
  setfattr -n user.lamina.comment -v "a comment" "$R/opt/lamina/xattr-file"
  setfattr -n user.lamina.dir -v dir-note "$R/opt/lamina/sub"
  cp "$R/bin/sleep" "$R/opt/lamina/cap-sleep"
  setcap cap_net_raw+ep "$R/opt/lamina/cap-sleep"
  install -m 4755 "$R/bin/true" "$R/opt/lamina/setuid-true"
  install -d -m 2775 -o 1000 -g 1000 "$R/opt/lamina/setgid-dir"
  echo "in tmp" > "$R/tmp/layer2.txt"
  chmod 1777 "$R/tmp"
  rm -rf "$R"/usr/share/doc/* "$R"/usr/share/man/*
  rm -f "$R/etc/motd" && mkdir "$R/etc/motd" && echo "motd is a directory now" > "$R/etc/motd/readme"
  umoci repack --image "$L:test" --history.created_by "lamina test changes" "$B"

  # layer 3
  write_implied_layer "$CACHE/work/implied.tar"
  umoci raw add-layer --image "$L:test" --history.created_by "entries without parents" "$CACHE/work/implied.tar"
  umoci config --image "$L:test" --config.cmd /bin/cat --config.cmd /etc/debian_version \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.workingdir / --os linux --architecture amd64 --history.created_by "umoci config (Cmd)"
  umoci gc --layout "$L"
  rm -rf "$CACHE/debian" "$B"
  mv "$L" "$CACHE/debian"

  log "debian: archives"
  rm -f "$CACHE"/debian-oci.tar* "$CACHE"/debian-docker.tar*
  skopeo copy -q "oci:$CACHE/debian:test" "oci-archive:$CACHE/debian-oci.tar.tmp:debian:test"
  skopeo copy -q "oci:$CACHE/debian:test" "docker-archive:$CACHE/debian-docker.tar.tmp:debian:test"
  mv "$CACHE/debian-oci.tar.tmp" "$CACHE/debian-oci.tar"
  mv "$CACHE/debian-docker.tar.tmp" "$CACHE/debian-docker.tar"
}

# Without ../shared: a one-layer busybox image (tag latest) and its archives, like the shared recipe's.
own_busybox_image() {
  local out=$1 W R
  W=$(mktemp -d /tmp/lamina-bb.XXXXXX)
  mkdir -p "$out"
  umoci init --layout "$out/oci"
  umoci new --image "$out/oci:latest"
  umoci unpack --image "$out/oci:latest" "$W/b"
  R=$W/b/rootfs
  mkdir -p "$R"/{bin,etc,tmp,proc,sys,dev,root}
  chmod 1777 "$R/tmp"
  install -m 0755 /bin/busybox "$R/bin/busybox"
  chroot "$R" /bin/busybox --install -s /bin
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$R/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$R/etc/group"
  umoci repack --image "$out/oci:latest" --history.created_by "busybox --install -s" "$W/b"
  umoci config --image "$out/oci:latest" --config.env PATH=/bin:/sbin:/usr/bin:/usr/sbin \
    --config.workingdir / --config.cmd /bin/sh --config.cmd -c --config.cmd 'echo hello' \
    --architecture amd64 --os linux --history.created_by "umoci config (Cmd)"
  umoci gc --layout "$out/oci"
  skopeo copy -q "oci:$out/oci:latest" "oci-archive:$out/busybox-oci.tar:busybox:latest"
  skopeo copy -q "oci:$out/oci:latest" "docker-archive:$out/busybox-docker.tar:busybox:latest"
  rm -rf "$W"
}

stage_busybox() {
  local out=$CACHE/busybox
  rm -rf "$out" "$out.tmp"
  if [ -x "$SHARED/recipes/make-busybox-image.sh" ]; then
    log "busybox: $SHARED/recipes/make-busybox-image.sh"
    "$SHARED/recipes/make-busybox-image.sh" "$out.tmp" >"$CACHE/work/busybox.log" 2>&1 ||
      { tail -20 "$CACHE/work/busybox.log" >&2; exit 1; }
  else
    log "busybox: no $SHARED, building a one-layer image with umoci"
    own_busybox_image "$out.tmp"
  fi
  mv "$out.tmp" "$out"
}

run_stage() {
  if done_p "$1"; then log "$1: cached"; return; fi
  local t0=$SECONDS
  "stage_$1"
  stamp "$1"
  log "$1: done in $((SECONDS - t0)) s"
}

run_stage busybox
run_stage debootstrap
run_stage debian
