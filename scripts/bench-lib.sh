# shellcheck shell=bash
# bench-lib.sh: sourced by bench.sh. One function per engine and section; each times one run of one
# image into a fresh store under $MNT (the loop-fs bench dir), checks that the run really produced the
# image, then removes everything it wrote and syncs, outside the timing, and records the time.
# Expects from bench.sh: MNT, CORPUS, LAMINA, RECIPES, RESULTS; PORT for the pull section.
# A tool that fails ends the bench with its output (die_with); a failed run's time is never recorded.

now() { echo "$EPOCHREALTIME"; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$1" "$2"; }
record() { # SECTION IMAGE TOOL VALUE
  echo "$1 $2 $3 $4" >> "$RESULTS"
  echo "bench:   $1 $2 $3 $4" >&2
}
settle() { rm -rf "$@"; sync; }
die_with() { # LOG MESSAGE
  echo "bench: $2; its output:" >&2
  tail -30 "$1" >&2
  exit 1
}
# quiet CMD...: runs CMD with its output in $MNT/log (shown if it fails)
quiet() { "$@" > "$MNT/log" 2>&1 || die_with "$MNT/log" "'$*' failed"; }

archive() { echo "$CORPUS/archives/${1%%:*}-${1#*:}.oci.tar"; }
layout() { echo "$CORPUS/oci/$1"; }
# umoci 0.4 reads no zstd: it unpacks the gzip copy of the same layers
gzip_twin() { case $1 in *:zstd) echo "${1%:zstd}:gzip" ;; *) echo "$1" ;; esac; }
layers() { # IMAGE -> its layer blobs, in order
  local dir=$CORPUS/oci/${1%%:*} m
  m=$(jq -r --arg t "${1#*:}" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]==$t) | .digest' "$dir/index.json")
  jq -r '.layers[].digest' "$dir/blobs/sha256/${m#sha256:}" | sed "s#^sha256:#$dir/blobs/sha256/#"
}
decompressor() { # BLOB -> the command that decompresses it (by its magic number; an image's layers are alike)
  case $(head -c 4 "$1" | od -An -tx1 | tr -d ' ') in
    1f8b*) echo "pigz -dc" ;;
    28b52ffd) echo "zstd -dcq" ;;
    *) echo "cat" ;;
  esac
}
# a path the image's top layer adds: what every engine's result is checked for
probe() {
  case $1 in
    debian:*) echo etc/debian_version ;;
    big:*) echo big/blob-1024MiB.bin ;;
    many-layers:*) printf 'layers/l%04d/a.txt' "${1#*:}" ;;
  esac
}

# --- lamina -------------------------------------------------------------------------------------
# lamina_load IMAGE [BINARY NAME]: load the oci-archive + mount read-only; peak RSS of the load
lamina_load() {
  local img=$1 bin=${2:-$LAMINA} name=${3:-lamina} R=$MNT/store t0 t1 m
  t0=$(now)
  /usr/bin/time -v -o "$MNT/time.txt" "$bin" --root "$R" load "$(archive "$img")" > "$MNT/log" 2>&1 ||
    die_with "$MNT/log" "$name load of $img failed"
  m=$("$bin" --root "$R" mount "$img" --read-only 2> "$MNT/log") || die_with "$MNT/log" "$name mount of $img failed"
  t1=$(now)
  [ -e "$m/$(probe "$img")" ] || { echo "bench: $name's mount of $img lacks $(probe "$img")" >&2; exit 1; }
  quiet "$bin" --root "$R" umount "$m"
  settle "$R"
  record load "$img" "$name" "$(elapsed "$t0" "$t1")"
  record load "$img" "$name-rss" "$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$MNT/time.txt")"
}

lamina_pull() { # IMAGE
  local img=$1 R=$MNT/store t0 t1 m ref=127.0.0.1:$PORT/$1
  t0=$(now)
  "$LAMINA" --root "$R" pull -q --insecure "$ref" > "$MNT/log" 2>&1 || die_with "$MNT/log" "lamina pull of $ref failed"
  t1=$(now)
  m=$("$LAMINA" --root "$R" mount "$ref" --read-only 2> "$MNT/log") || die_with "$MNT/log" "lamina mount of $ref failed"
  [ -e "$m/$(probe "$img")" ] || { echo "bench: lamina's pull of $img lacks $(probe "$img")" >&2; exit 1; }
  quiet "$LAMINA" --root "$R" umount "$m"
  settle "$R"
  record pull "$img" lamina "$(elapsed "$t0" "$t1")"
}

# --- containerd 1.6: a private daemon (own root, state, sockets under $MNT/ctd; no CRI) per run --
CTD=$MNT/ctd
ctd_up() { quiet "$RECIPES/containerd-up.sh" "$CTD"; }
ctd_down() { [ -d "$CTD" ] || return 0; "$RECIPES/containerd-down.sh" "$CTD" --purge > /dev/null 2>&1; sync; }
ctr_() { ctr --address "$CTD/containerd.sock" -n bench "$@"; }
ctd_check() { # IMAGE: every layer unpacked into a committed overlayfs snapshot, the top one has the probe
  local want have
  want=$(layers "$1" | wc -l)
  have=$(ctr_ snapshots --snapshotter overlayfs ls | grep -c ' Committed')
  [ "$have" = "$want" ] || { echo "bench: containerd unpacked $have snapshots of $1, not $want" >&2; exit 1; }
  compgen -G "$CTD/root/io.containerd.snapshotter.v1.overlayfs/snapshots/*/fs/$(probe "$1")" > /dev/null ||
    { echo "bench: containerd's snapshots of $1 lack $(probe "$1")" >&2; exit 1; }
}
ctd_import() { # IMAGE
  local img=$1 t0 t1
  ctd_up
  t0=$(now)
  ctr_ images import --snapshotter overlayfs "$(archive "$img")" > "$MNT/log" 2>&1 || die_with "$MNT/log" "ctr import of $img failed"
  t1=$(now)
  ctd_check "$img"
  ctd_down
  record load "$img" containerd "$(elapsed "$t0" "$t1")"
}
ctd_pull() { # IMAGE
  local img=$1 t0 t1
  ctd_up
  t0=$(now)
  ctr_ images pull --plain-http --snapshotter overlayfs "127.0.0.1:$PORT/$img" > "$MNT/log" 2>&1 ||
    die_with "$MNT/log" "ctr pull of $img failed"
  t1=$(now)
  ctd_check "$img"
  ctd_down
  record pull "$img" containerd "$(elapsed "$t0" "$t1")"
}

# --- podman 4.3: its own store, config and temp dirs under $MNT/podman, per run ------------------
# podman (and skopeo) write a blob-info cache to /var/lib/containers/cache and a lock to /dev/shm
# whatever their flags say: they run in a mount namespace of their own where both are private dirs.
PM=$MNT/podman
private_ns() { # CMD...: CMD with /var/lib/containers and /dev/shm private to it
  mkdir -p "$MNT/varlib" /var/lib/containers
  # shellcheck disable=SC2016 # expanded by the inner sh
  unshare -m --propagation private sh -c \
    'mount --bind "$0" /var/lib/containers && mount -t tmpfs tmpfs /dev/shm && exec "$@"' "$MNT/varlib" "$@"
}
pm_up() {
  mkdir -p "$PM/tmp"
  printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' "$PM/root" "$PM/runroot" > "$PM/storage.conf"
  cat > "$PM/containers.conf" <<EOF
[engine]
image_copy_tmp_dir = "$PM/tmp"
events_logger = "file"
events_logfile_path = "$PM/events.log"
cgroup_manager = "cgroupfs"
EOF
}
podman_() {
  CONTAINERS_STORAGE_CONF=$PM/storage.conf CONTAINERS_CONF=$PM/containers.conf TMPDIR=$PM/tmp private_ns \
    podman --root "$PM/root" --runroot "$PM/runroot" --tmpdir "$PM/tmp/libpod" --storage-driver overlay "$@"
}
pm_check() { # IMAGE: every layer in the overlay store
  local want have
  want=$(layers "$1" | wc -l)
  have=$(jq length "$PM/root/overlay-layers/layers.json")
  [ "$have" = "$want" ] || { echo "bench: podman stored $have layers of $1, not $want" >&2; exit 1; }
  compgen -G "$PM/root/overlay/*/diff/$(probe "$1")" > /dev/null ||
    { echo "bench: podman's store lacks $(probe "$1") of $1" >&2; exit 1; }
}
pm_down() { [ -d "$PM" ] || return 0; settle "$PM" "$MNT/varlib"; }
pm_load() { # IMAGE
  local img=$1 t0 t1
  pm_up
  t0=$(now)
  podman_ load -q -i "$(archive "$img")" > "$MNT/log" 2>&1 || die_with "$MNT/log" "podman load of $img failed"
  t1=$(now)
  pm_check "$img"
  pm_down
  record load "$img" podman "$(elapsed "$t0" "$t1")"
}
pm_pull() { # IMAGE
  local img=$1 t0 t1
  pm_up
  t0=$(now)
  podman_ pull -q --tls-verify=false "127.0.0.1:$PORT/$img" > "$MNT/log" 2>&1 || die_with "$MNT/log" "podman pull of $img failed"
  t1=$(now)
  pm_check "$img"
  pm_down
  record pull "$img" podman "$(elapsed "$t0" "$t1")"
}

# --- umoci, GNU tar, the decompressors alone ------------------------------------------------------
umoci_unpack() { # IMAGE
  local img=$1 B=$MNT/umoci t0 t1
  t0=$(now)
  umoci unpack --image "$(layout "$(gzip_twin "$img")")" "$B" > "$MNT/log" 2>&1 || die_with "$MNT/log" "umoci unpack of $img failed"
  t1=$(now)
  [ -e "$B/rootfs/$(probe "$img")" ] || { echo "bench: umoci's bundle of $img lacks $(probe "$img")" >&2; exit 1; }
  settle "$B"
  record load "$img" umoci "$(elapsed "$t0" "$t1")"
}
skopeo_umoci_pull() { # IMAGE (gzip only)
  local img=$1 B=$MNT/skopeo t0 t1
  mkdir -p "$B"
  t0=$(now)
  private_ns skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$PORT/$img" "oci:$B/layout:${img#*:}" > "$MNT/log" 2>&1 ||
    die_with "$MNT/log" "skopeo copy of $img failed"
  umoci unpack --image "$B/layout:${img#*:}" "$B/bundle" > "$MNT/log" 2>&1 || die_with "$MNT/log" "umoci unpack of $img failed"
  t1=$(now)
  [ -e "$B/bundle/rootfs/$(probe "$img")" ] || { echo "bench: skopeo+umoci's bundle of $img lacks $(probe "$img")" >&2; exit 1; }
  settle "$B" "$MNT/varlib"
  record pull "$img" skopeo+umoci "$(elapsed "$t0" "$t1")"
}

# tar_x IMAGE [sha]: per layer `DECOMPRESS | tar -x` (no verification, no whiteouts), recorded as "tar"
# and, after one `sync -f` (the syncfs lamina does before recording a layer), as "tar+syncfs"; with
# "sha" the blob and the tar stream also go through `openssl dgst -sha256` (the checks lamina makes)
tar_x() {
  local img=$1 D=$MNT/tar t0 t1 t2 l
  local -a blobs dec
  mkdir -p "$D"
  mapfile -t blobs < <(layers "$img")
  read -ra dec <<< "$(decompressor "${blobs[0]}")"
  t0=$(now)
  for l in "${blobs[@]}"; do
    if [ "${2:-}" = sha ]; then
      tee >(openssl dgst -sha256 > /dev/null) < "$l" | "${dec[@]}" |
        tee >(openssl dgst -sha256 > /dev/null) | tar -x --warning=no-timestamp -C "$D"
    else
      "${dec[@]}" "$l" | tar -x --warning=no-timestamp -C "$D"
    fi
  done
  t1=$(now)
  [ -e "$D/$(probe "$img")" ] || { echo "bench: tar's tree of $img lacks $(probe "$img")" >&2; exit 1; }
  if [ "${2:-}" = sha ]; then
    settle "$D"
    record load "$img" tar+sha "$(elapsed "$t0" "$t1")"
    return
  fi
  sync -f "$D"
  t2=$(now)
  settle "$D"
  record load "$img" tar "$(elapsed "$t0" "$t1")"
  record load "$img" tar+syncfs "$(elapsed "$t0" "$t2")"
}

decompress_only() { # IMAGE: `pigz -dc` or `zstd -dc` of its layer blobs to /dev/null
  local img=$1 t0 t1 l
  local -a blobs dec
  mapfile -t blobs < <(layers "$img")
  read -ra dec <<< "$(decompressor "${blobs[0]}")"
  t0=$(now)
  for l in "${blobs[@]}"; do
    "${dec[@]}" "$l" > /dev/null
  done
  t1=$(now)
  record load "$img" decompress "$(elapsed "$t0" "$t1")"
}
