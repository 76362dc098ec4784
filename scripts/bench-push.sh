#!/usr/bin/env bash
# bench-push.sh [LAMINA] [CORPUS]: `lamina push` vs `skopeo copy oci:... docker://...` of the corpus's
# debian and big images (tags gzip and zstd) to a local distribution registry, on a fresh journaled ext4
# (a sparse file on a loop device) that holds lamina's store and the registry's storage.
#
# Once, outside the timing: lamina loads the four images into its store with --keep-blobs (each layer's
# compressed blob kept beside it, as containerd's content store keeps them).
# Per round, per image, alternating (the order of the tools turns every round), each timed alone:
#   skopeo       `skopeo copy --dest-tls-verify=false oci:CORPUS/oci/IMG:TAG docker://127.0.0.1:PORT/REPO:TAG`
#                (copies the layout's compressed blobs as they are: no compression at all)
#   lamina       `lamina push 127.0.0.1:PORT/REPO:TAG` (zstd tags with `--compression-format zstd`):
#                the kept blobs, sent as they are (their digests checked as they stream)
#   recompress   the same with `--compression-level 6` (gzip) or `3` (zstd), the default levels: asking
#                for a level makes push compress again, as it does without kept blobs: each layer's tar
#                reassembled from the store, checked against its diffID, compressed on every core
#   recompress -l1  the same with `--compression-level 1`
# Every run gets a registry of its own (fresh storage dir, started and stopped outside the timing) and a
# repository name of its own, so no layer "already exists". Inputs stay warm in the page cache (the
# layouts and the store are read once first). Prints the medians of N rounds (N=3, env N) and the ratios
# as a markdown table for BENCHMARKS.md.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
LAMINA=${1:-$REPO/target/release/lamina}
CORPUS=${2:-/var/cache/lamina/corpus}
N=${N:-3}
RECIPES=${LAMINA_SHARED:-$REPO/../shared}/recipes
MNT=/var/tmp/lamina-bench-push
IMG=/var/tmp/lamina-bench-push.img
IMAGES=${IMAGES:-"debian:gzip debian:zstd big:gzip big:zstd"}

[ "$(id -u)" = 0 ] || { echo "bench-push: must run as root (loop device, mounts)" >&2; exit 1; }
[ -x "$LAMINA" ] || { echo "bench-push: $LAMINA not built (cargo build --release)" >&2; exit 1; }
[ -e "$CORPUS/stamps/big" ] && [ -e "$CORPUS/stamps/debian-variants" ] ||
  { echo "bench-push: corpus not built in $CORPUS (scripts/build-corpus.sh)" >&2; exit 1; }
[ -x "$RECIPES/registry-up.sh" ] || { echo "bench-push: no $RECIPES/registry-up.sh (set LAMINA_SHARED)" >&2; exit 1; }
for t in skopeo docker-registry curl python3 mkfs.ext4; do
  command -v "$t" >/dev/null || { echo "bench-push: missing $t (scripts/install-deps.sh)" >&2; exit 1; }
done

REG=$MNT/registry
. "$REPO/scripts/loopfs.sh"
cleanup() {
  set +e
  [ -d "$REG" ] && "$RECIPES/registry-down.sh" "$REG" >/dev/null
  loopfs_down "$MNT" "$IMG"
}
trap cleanup EXIT
loopfs_up "$MNT" "$IMG" 12G
echo "bench-push: fresh ext4 on $(findmnt -no SOURCE "$MNT") at $MNT; N=$N rounds" >&2

STORE=$MNT/store
L() { "$LAMINA" --root "$STORE" "$@"; }
for img in $IMAGES; do
  L load --keep-blobs "$CORPUS/oci/$img" >/dev/null
done
sync

now() { echo "$EPOCHREALTIME"; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$1" "$2"; }
RESULTS=$MNT/results
: > "$RESULTS"

# Starts a registry with empty storage; sets PORT.
registry_up() {
  rm -rf "$REG"
  "$RECIPES/registry-up.sh" "$REG" > /dev/null
  PORT=$(sed -n 's/^PORT=//p' "$REG/env")
}
registry_down() {
  "$RECIPES/registry-down.sh" "$REG" > /dev/null
  rm -rf "$REG"
  sync
}

run() { # IMAGE TOOL ROUND
  local img=$1 tool=$2 round=$3 name=${1%%:*} tag=${1#*:} t0 t1 dest fmt=() level=6
  registry_up
  dest=127.0.0.1:$PORT/$tool-$round-$name:$tag
  [ "$tag" = zstd ] && fmt=(--compression-format zstd) && level=3
  case $tool in
    skopeo)
      t0=$(now)
      skopeo copy -q --dest-tls-verify=false "oci:$CORPUS/oci/$img" "docker://$dest" >/dev/null
      t1=$(now) ;;
    lamina)
      L tag "$img" "$dest"
      t0=$(now)
      L push -q "${fmt[@]}" "$dest" >/dev/null
      t1=$(now)
      L rmi "$dest" >/dev/null ;;
    recompress)
      L tag "$img" "$dest"
      t0=$(now)
      L push -q "${fmt[@]}" --compression-level "$level" "$dest" >/dev/null
      t1=$(now)
      L rmi "$dest" >/dev/null ;;
    recompress-l1)
      L tag "$img" "$dest"
      t0=$(now)
      L push -q "${fmt[@]}" --compression-level 1 "$dest" >/dev/null
      t1=$(now)
      L rmi "$dest" >/dev/null ;;
  esac
  # the pushed image is really there: its manifest answers
  curl -sf -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://127.0.0.1:$PORT/v2/$tool-$round-$name/manifests/$tag" ||
    { echo "bench-push: $tool did not push $img" >&2; exit 1; }
  registry_down
  echo "$img $tool $(elapsed "$t0" "$t1")" >> "$RESULTS"
}

# warm the page cache with every input once: the layouts skopeo reads, the store lamina reads
for img in $IMAGES; do cat "$CORPUS/oci/${img%%:*}"/blobs/sha256/* > /dev/null; done
tar -cf - -C "$STORE" layers | cat > /dev/null
TOOLS=(skopeo lamina recompress recompress-l1)
for round in $(seq 1 "$N"); do
  for img in $IMAGES; do
    # turn the order every round, so no tool always runs first
    for i in 0 1 2 3; do
      run "$img" "${TOOLS[$(( (i + round) % 4 ))]}" "$round"
    done
  done
  echo "bench-push: round $round done" >&2
done

python3 - "$RESULTS" "$N" "$(nproc)" "$(uname -r)" "$(skopeo --version | awk '{print $3}')" \
  "$(docker-registry --version 2>/dev/null | awk '{print $3}')" "$IMAGES" <<'PY'
import statistics, sys
path, n, cpus, kernel, skopeo, registry, images = sys.argv[1:]
t = {}
for line in open(path):
    img, tool, sec = line.split()
    t.setdefault((img, tool), []).append(float(sec))
med = {k: statistics.median(v) for k, v in t.items()}
print(f"Median of {n} rounds, wall seconds; {cpus} cores, kernel {kernel}, skopeo {skopeo}, "
      f"distribution registry {registry or '?'}, fresh ext4 on a loop device.")
print()
print("| image | skopeo copy | lamina push (kept blobs) | lamina / skopeo | recompress (default level) | recompress, level 1 |")
print("|---|---:|---:|---:|---:|---:|")
for img in images.split():
    s, l, r, r1 = (med[(img, k)] for k in ("skopeo", "lamina", "recompress", "recompress-l1"))
    print(f"| {img} | {s:.2f} | {l:.2f} | {l/s:.2f}x | {r:.2f} | {r1:.2f} |")
print()
print("All rounds:", "; ".join(f"{img}/{tool}: " + " ".join(f"{s:.2f}" for s in v) for (img, tool), v in sorted(t.items())))
PY
