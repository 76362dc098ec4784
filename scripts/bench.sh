#!/usr/bin/env bash
# bench.sh [LAMINA] [CORPUS]: lamina vs umoci vs GNU tar on the corpus's debian:gzip and debian:zstd,
# on a fresh journaled ext4 (a 6 GiB sparse file on a loop device), and lamina's peak memory on big:gzip.
#
# Per round, alternating, each timed alone (wall clock):
#   lamina  `lamina --root R load oci/debian:TAG` + `lamina mount --read-only` (then umount, store removed)
#   umoci   `umoci unpack --image oci/debian:TAG` (umoci 0.4 reads no zstd: the zstd row compares
#           against umoci on the gzip copy of the same layers)
#   tar     for each layer: `pigz -dc | tar -x` (gzip) or `zstd -dc | tar -x`: no verification, no whiteouts;
#           also reported with one `sync -f` (syncfs) after it, which lamina does before recording a layer
#   tar+sha the same tar, with the two checks lamina must make: the blob and the tar stream each go
#           through `openssl dgst -sha256` (SHA-NI, as fast as lamina's sha2) by `tee`; no syncfs
# Caches: the inputs stay in the page cache (warm; every tool reads the same blobs), outputs are synced
# and removed between runs outside the timing. Nothing forces a tool to fsync; lamina's own fsyncs count.
# BASELINE=/path/to/another/lamina adds that binary to every round (alternating with LAMINA) and prints
# the ratio of the two: how a change compares with the code before it, measured in one run.
# Prints medians of N rounds (N=5, env N) as a markdown table for BENCHMARKS.md, then (CRITERION=1, the
# default) the criterion micro-benchmarks of benches/unpack.rs with their unpack dir on the same ext4.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
LAMINA=${1:-$REPO/target/release/lamina}
CORPUS=${2:-/var/cache/lamina/corpus}
N=${N:-5}
BASELINE=${BASELINE:-}
MNT=/var/tmp/lamina-bench
IMG=/var/tmp/lamina-bench.img

[ "$(id -u)" = 0 ] || { echo "bench: must run as root (loop device, mounts)" >&2; exit 1; }
[ -x "$LAMINA" ] || { echo "bench: $LAMINA not built (cargo build --release)" >&2; exit 1; }
[ -z "$BASELINE" ] || [ -x "$BASELINE" ] || { echo "bench: BASELINE=$BASELINE is not a program" >&2; exit 1; }
[ -e "$CORPUS/stamps/debian-variants" ] || { echo "bench: corpus not built in $CORPUS (scripts/build-corpus.sh)" >&2; exit 1; }
for t in umoci pigz zstd tar jq openssl python3 mkfs.ext4 /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "bench: missing $t (scripts/install-deps.sh)" >&2; exit 1; }
done

. "$REPO/scripts/loopfs.sh"
cleanup() {
  set +e
  loopfs_down "$MNT" "$IMG"
}
trap cleanup EXIT
loopfs_up "$MNT" "$IMG" 6G
echo "bench: fresh ext4 on $(findmnt -no SOURCE "$MNT") at $MNT; N=$N rounds" >&2

now() { echo "$EPOCHREALTIME"; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$1" "$2"; }
settle() { rm -rf "$@"; sync; }

blobs() { # LAYOUT TAG -> layer blob paths, in order
  local layout=$1 tag=$2 m
  m=$(jq -r --arg t "$tag" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]==$t) | .digest' "$layout/index.json")
  jq -r '.layers[].digest' "$layout/blobs/sha256/${m#sha256:}" | sed "s#^sha256:#$layout/blobs/sha256/#"
}

RESULTS=$MNT/../lamina-bench-results.$$
: > "$RESULTS"
record() { echo "$1 $2 $3" >> "$RESULTS"; } # tag tool seconds

run_lamina() { # TAG [BINARY NAME]
  local R=$MNT/store t0 t1 m bin=${2:-$LAMINA} name=${3:-lamina}
  t0=$(now)
  "$bin" --root "$R" load "$CORPUS/oci/debian:$1" >/dev/null 2>&1
  m=$("$bin" --root "$R" mount "debian:$1" --read-only)
  t1=$(now)
  [ -f "$m/etc/debian_version" ] || { echo "bench: $name mount of debian:$1 is wrong" >&2; exit 1; }
  "$bin" --root "$R" umount "$m" >/dev/null
  settle "$R"
  record "$1" "$name" "$(elapsed "$t0" "$t1")"
}

run_umoci() { # TAG
  local B=$MNT/umoci t0 t1 tag=$1
  [ "$tag" = zstd ] && tag=gzip
  t0=$(now)
  umoci unpack --image "$CORPUS/oci/debian:$tag" "$B" >/dev/null 2>&1
  t1=$(now)
  settle "$B"
  record "$1" umoci "$(elapsed "$t0" "$t1")"
}

run_tar() { # TAG [sha]: plain, then timed again with one syncfs; with "sha", the checked variant
  local D=$MNT/tar t0 t1 t2 l dec=(pigz -dc)
  [ "$1" = zstd ] && dec=(zstd -dcq)
  mkdir -p "$D"
  mapfile -t layers < <(blobs "$CORPUS/oci/debian" "$1")
  t0=$(now)
  for l in "${layers[@]}"; do
    if [ "${2:-}" = sha ]; then
      tee >(openssl dgst -sha256 >/dev/null) < "$l" | "${dec[@]}" |
        tee >(openssl dgst -sha256 >/dev/null) | tar -x --warning=no-timestamp -C "$D"
    else
      "${dec[@]}" "$l" | tar -x --warning=no-timestamp -C "$D"
    fi
  done
  t1=$(now)
  if [ "${2:-}" = sha ]; then
    settle "$D"
    record "$1" tar+sha "$(elapsed "$t0" "$t1")"
    return
  fi
  sync -f "$D"   # what it takes to make tar's result as durable as lamina's (one syncfs)
  t2=$(now)
  settle "$D"
  record "$1" tar "$(elapsed "$t0" "$t1")"
  record "$1" tar+syncfs "$(elapsed "$t0" "$t2")"
}

# warm the page cache with every input once
cat "$CORPUS"/oci/debian/blobs/sha256/* > /dev/null
for round in $(seq 1 "$N"); do
  for tag in gzip zstd; do
    run_lamina "$tag"; [ -z "$BASELINE" ] || run_lamina "$tag" "$BASELINE" baseline
    run_umoci "$tag"; run_tar "$tag"; run_tar "$tag" sha
  done
  echo "bench: round $round done" >&2
done

# peak memory of a load with a 1 GiB layer
RSS=n/a
if [ -e "$CORPUS/oci/big/index.json" ]; then
  cat "$CORPUS"/oci/big/blobs/sha256/* > /dev/null
  /usr/bin/time -v "$LAMINA" --root "$MNT/store" load "$CORPUS/oci/big:gzip" >/dev/null 2>"$MNT/time.txt"
  RSS=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$MNT/time.txt")
  settle "$MNT/store"
fi

python3 - "$RESULTS" "$N" "$RSS" "$(nproc)" "$(uname -r)" "$(umoci --version | awk '{print $3}')" <<'PY'
import statistics, sys
path, n, rss, cpus, kernel, umoci = sys.argv[1:]
t = {}
for line in open(path):
    tag, tool, sec = line.split()
    t.setdefault((tag, tool), []).append(float(sec))
med = {k: statistics.median(v) for k, v in t.items()}
print(f"Median of {n} rounds, wall seconds; {cpus} cores, kernel {kernel}, umoci {umoci}, fresh ext4 on a loop device.")
print()
print("| image | lamina load + mount | umoci unpack | GNU tar | GNU tar + syncfs | GNU tar + sha256 | lamina / umoci | lamina / tar | lamina / (tar + syncfs) | lamina / (tar + sha256) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for tag in ("gzip", "zstd"):
    l, u, g, gs, gv = (med[(tag, k)] for k in ("lamina", "umoci", "tar", "tar+syncfs", "tar+sha"))
    note = " (gzip)" if tag == "zstd" else ""
    print(f"| debian:{tag} | {l:.2f} | {u:.2f}{note} | {g:.2f} | {gs:.2f} | {gv:.2f} | {l/u:.2f}x | {l/g:.2f}x | {l/gs:.2f}x | {l/gv:.2f}x |")
if ("gzip", "baseline") in med:
    print()
    print("| image | lamina | baseline lamina | lamina / baseline |")
    print("|---|---:|---:|---:|")
    for tag in ("gzip", "zstd"):
        l, b = med[(tag, "lamina")], med[(tag, "baseline")]
        print(f"| debian:{tag} | {l:.2f} | {b:.2f} | {l/b:.2f}x |")
print()
print(f"Peak RSS of `lamina load` of big:gzip (1 GiB layer): {rss} MiB")
print()
print("All rounds:", "; ".join(f"{tag}/{tool}: " + " ".join(f"{s:.2f}" for s in v) for (tag, tool), v in sorted(t.items())))
PY
rm -f "$RESULTS"

# the criterion micro-benchmarks, unpacking on the same fresh ext4 (CRITERION=0 skips them)
if [ "${CRITERION:-1}" = 1 ] && command -v cargo >/dev/null; then
  echo >&2 "bench: cargo bench --bench unpack (LAMINA_BENCH_DIR=$MNT/criterion)"
  mkdir -p "$MNT/criterion"
  echo
  echo "Criterion (cargo bench --bench unpack, unpacking on the fresh ext4): median time, throughput"
  echo
  (cd "$REPO" && LAMINA_BENCH_DIR="$MNT/criterion" cargo bench -q --bench unpack -- --noplot 2>/dev/null) |
    awk '$2 == "time:" {name=$1; t=$5" "$6} $1 == "thrpt:" && name {print "- " name ": " t ", " $4 " " $5; name=""}'
fi
