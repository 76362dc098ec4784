#!/usr/bin/env bash
# bench.sh [LAMINA] [CORPUS]: lamina against containerd 1.6, podman 4.3, umoci, GNU tar and the bare
# decompressors, loading (and pulling) the corpus's images, on a fresh journaled ext4 (a sparse file on a
# loop device) that holds every store, daemon root, socket and temporary file.
#
# load section, per round, per image, the tools alternating (their order turns every round), each timed
# alone on the same input where it can read it:
#   lamina      `lamina --root R load archives/IMG.oci.tar` + `lamina mount --read-only`, fresh store;
#               its peak RSS (/usr/bin/time -v on the load) in the same runs
#   containerd  `ctr images import` of the same oci-archive into a private containerd (own root, state and
#               sockets; no CRI; overlayfs snapshotter), a fresh daemon per run, started outside the
#               timing; import unpacks every layer (checked: one committed snapshot per layer)
#   podman      `podman load -i` of the same oci-archive into a fresh store (--root/--runroot, its own
#               storage.conf and containers.conf, native overlay), in a private mount namespace so that
#               it does not touch /var/lib/containers or /dev/shm
#   umoci       `umoci unpack` of the OCI layout (umoci 0.4 reads no zstd: zstd images use the gzip copy)
#   tar         per layer `pigz -dc | tar -x` (or zstd): no verification, no whiteouts; for debian also
#               "tar+syncfs" (one `sync -f` after it, which lamina does before recording a layer) and
#               "tar+sha" (the blob and the tar stream through `openssl dgst -sha256`, lamina's checks)
#   decompress  `pigz -dc` (gzip) or `zstd -dc` (zstd) of the same blobs to /dev/null: decompression alone
#   BASELINE=/path/to/another/lamina: that binary too, same runs: how a change compares with before it
# pull section: the images pushed once (skopeo, outside the timing) to a local distribution registry on
# 127.0.0.1 over plain HTTP, then alternating: `lamina pull --insecure` (fresh store), `ctr images pull
# --plain-http` (fresh private daemon; unpacks), `podman pull --tls-verify=false` (fresh store), and
# `skopeo copy docker://... oci:DIR` + `umoci unpack` (gzip images only: umoci reads no zstd).
# Every run is checked (each engine's result holds a file of the image's top layer); a tool that fails
# ends the bench with its output. Inputs are read once into the page cache first (warm; every tool reads
# the same bytes); outputs are removed and synced between runs, outside the timing.
# Environment: IMAGES (default all six below), N rounds (3), SECTIONS ("load pull"), CRITERION=1 also
# runs the criterion micro-benchmarks of benches/unpack.rs on the same ext4 (default 1), BASELINE.
# Prints the medians of N rounds and the ratios as markdown tables (scripts/bench_summary.py), then
# every round's figures. One round of all six images, both sections, took 18 min on the 2 shared cores
# (load 11, pull 7.5; podman's load of many-layers:500 alone 90 s).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
LAMINA=${1:-$REPO/target/release/lamina}
CORPUS=${2:-/var/cache/lamina/corpus}
N=${N:-3}
IMAGES=${IMAGES:-"debian:gzip debian:zstd big:gzip big:zstd many-layers:130 many-layers:500"}
SECTIONS=${SECTIONS:-"load pull"}
BASELINE=${BASELINE:-}
RECIPES=${LAMINA_SHARED:-$REPO/../shared}/recipes
MNT=/var/tmp/lamina-bench
IMG=/var/tmp/lamina-bench.img

fail() { echo "bench: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "must run as root (loop device, mounts, daemons)"
[ -x "$LAMINA" ] || fail "$LAMINA not built (cargo build --release)"
[ -z "$BASELINE" ] || [ -x "$BASELINE" ] || fail "BASELINE=$BASELINE is not a program"
[ -e "$CORPUS/stamps/archives" ] || fail "corpus not built in $CORPUS (scripts/build-corpus.sh)"
{ [ -x "$RECIPES/containerd-up.sh" ] && [ -x "$RECIPES/registry-up.sh" ]; } || fail "no $RECIPES (set LAMINA_SHARED)"
for t in containerd ctr podman skopeo umoci docker-registry pigz zstd tar jq openssl python3 curl unshare \
  mkfs.ext4 /usr/bin/time; do
  command -v "$t" > /dev/null || fail "missing $t (scripts/install-deps.sh)"
done
for img in $IMAGES; do
  [ -f "$CORPUS/archives/${img%%:*}-${img#*:}.oci.tar" ] || fail "no archive of $img in $CORPUS/archives"
done
for s in $SECTIONS; do case $s in load | pull) ;; *) fail "unknown section $s (load, pull)" ;; esac; done

. "$REPO/scripts/loopfs.sh"
RESULTS=$MNT.results.$$
. "$REPO/scripts/bench-lib.sh"
REG=$MNT/registry
cleanup() {
  set +e
  ctd_down
  [ -f "$REG/registry.pid" ] && "$RECIPES/registry-down.sh" "$REG" > /dev/null
  loopfs_down "$MNT" "$IMG"
  rm -f "$RESULTS"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
loopfs_up "$MNT" "$IMG" 16G
: > "$RESULTS"
echo "bench: fresh ext4 on $(findmnt -no SOURCE "$MNT") at $MNT; N=$N rounds; $SECTIONS; $IMAGES" >&2

# run_rotated ROUND CMD...: the commands (one word each, the image appended), in an order that turns
# every round, so that no tool always runs first (after another tool's deletes) or last
run_rotated() {
  local round=$1 img=$2 i n; shift 2
  n=$#
  local -a tools=("$@")
  for i in $(seq 0 $((n - 1))); do
    ${tools[$(((i + round) % n))]} "$img"
  done
}
tar_sha() { tar_x "$1" sha; }
baseline_load() { lamina_load "$1" "$BASELINE" baseline; }

warm() { # read every input once, so that every tool finds it in the page cache
  local img
  for img in $IMAGES; do cat "$(archive "$img")" "$(layout "${img%%:*}")"/blobs/sha256/* > /dev/null; done
}

if [[ " $SECTIONS " == *" load "* ]]; then
  warm
  for round in $(seq 1 "$N"); do
    for img in $IMAGES; do
      tools=(lamina_load ctd_import pm_load umoci_unpack tar_x decompress_only)
      [ -z "$BASELINE" ] || tools+=(baseline_load)
      [[ $img == debian:* ]] && tools+=(tar_sha)
      run_rotated "$round" "$img" "${tools[@]}"
      echo "bench: load round $round: $img done" >&2
    done
  done
fi

if [[ " $SECTIONS " == *" pull "* ]]; then
  quiet "$RECIPES/registry-up.sh" "$REG"
  PORT=$(sed -n 's/^PORT=//p' "$REG/env")
  for img in $IMAGES; do
    private_ns skopeo copy -q --dest-tls-verify=false "oci:$(layout "$img")" "docker://127.0.0.1:$PORT/$img" > "$MNT/log" 2>&1 ||
      die_with "$MNT/log" "skopeo could not push $img"
  done
  rm -rf "$MNT/varlib"
  sync
  # the registry may still be tidying its upload dirs: a vanishing file is no error here
  { tar -cf - -C "$REG" data 2> /dev/null || true; } | cat > /dev/null
  for round in $(seq 1 "$N"); do
    for img in $IMAGES; do
      tools=(lamina_pull ctd_pull pm_pull)
      [[ $img == *:zstd ]] || tools+=(skopeo_umoci_pull)
      run_rotated "$round" "$img" "${tools[@]}"
      echo "bench: pull round $round: $img done" >&2
    done
  done
fi

python3 "$REPO/scripts/bench_summary.py" "$RESULTS" --rounds "$N" --images "$IMAGES" \
  --env "$(nproc) cores, kernel $(uname -r), containerd $(containerd --version | awk '{print $3}'), podman $(podman --version | awk '{print $3}'), umoci $(umoci --version | awk '{print $3}'), fresh ext4 on a loop device"

# the criterion micro-benchmarks (stages and decoders), unpacking on the same fresh ext4 (CRITERION=0 skips them)
if [ "${CRITERION:-1}" = 1 ] && command -v cargo > /dev/null; then
  mkdir -p "$MNT/criterion"
  echo
  echo "Criterion (cargo bench --bench unpack and --bench decode, unpacking on the fresh ext4): median time, throughput"
  echo
  for b in unpack decode; do
    echo >&2 "bench: cargo bench --bench $b (LAMINA_BENCH_DIR=$MNT/criterion)"
    (cd "$REPO" && LAMINA_BENCH_DIR="$MNT/criterion" cargo bench -q --bench "$b" -- --noplot 2> /dev/null) |
      awk 'NF == 1 {name=($1 == "change:" ? "" : $1)} $1 == "time:" {t=$4" "$5} $2 == "time:" {name=$1; t=$5" "$6}
        $1 == "thrpt:" && name {print "- " name ": " t ", " $4 " " $5; name=""}'
  done
fi
