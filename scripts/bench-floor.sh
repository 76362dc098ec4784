#!/usr/bin/env bash
# bench-floor.sh [LAMINA] [CORPUS]: how far a verified load of each image can go on this machine: the
# CPU time of the work no verified unpack can skip, measured with the standard tools, against
# lamina's own wall and CPU time. Per image and round, on a fresh journaled ext4 on a loop device:
#   lamina   `lamina --root R load archives/IMG.oci.tar` in a fresh store: wall, user and sys seconds
#   decode   per layer blob, `igzip -dc` (ISA-L, the inflater lamina uses) or `zstd -dc` to /dev/null
#   sha256   `openssl dgst -sha256` (SHA-NI) of each blob and of each decompressed tar: the blob digest
#            and the diffID, which every engine that verifies an image computes
#   extract  `tar -x` of each decompressed tar (creating the files, copying their data into the page
#            cache; no verification, no whiteouts, no records); its CPU only, the decoder's is above
#   syncfs   the wall time of one `sync -f` after the extraction: the flush lamina waits for before it
#            records a layer
# and prints, with medians of N rounds, "floor = (decode + sha256 + extract) / cores": the wall time a
# perfectly parallel verified load would need before waiting for any flush. All CPU figures are
# user + sys of the one process, from /usr/bin/time.
# Environment: IMAGES (default the four big-layer images), N rounds (3).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
LAMINA=${1:-$REPO/target/release/lamina}
CORPUS=${2:-/var/cache/lamina/corpus}
N=${N:-3}
IMAGES=${IMAGES:-"debian:gzip debian:zstd big:gzip big:zstd"}
MNT=/var/tmp/lamina-floor
IMG=/var/tmp/lamina-floor.img

fail() { echo "bench-floor: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "must run as root (loop device)"
[ -x "$LAMINA" ] || fail "$LAMINA not built (cargo build --release)"
for t in igzip zstd tar jq openssl python3 mkfs.ext4 /usr/bin/time; do
  command -v "$t" > /dev/null || fail "missing $t (apt-get install isal zstd jq openssl time)"
done

. "$REPO/scripts/loopfs.sh"
RESULTS=$MNT.results.$$
. "$REPO/scripts/bench-lib.sh"
trap 'loopfs_down "$MNT" "$IMG"; rm -f "$RESULTS"' EXIT
trap 'exit 130' INT TERM
loopfs_up "$MNT" "$IMG" 16G
: > "$RESULTS"

# cpu FILE: the user + sys seconds /usr/bin/time wrote to FILE
cpu() { awk '{ printf "%.3f", $1 + $2 }' "$1"; }
# add A B
add() { python3 -c "import sys; print(f'{float(sys.argv[1]) + float(sys.argv[2]):.3f}')" "$1" "$2"; }
# decode_cmd BLOB: the decompressor, ISA-L for gzip as in lamina
decode_cmd() { case $(decompressor "$1") in pigz*) echo "igzip -dc" ;; *) decompressor "$1" ;; esac; }

floor_round() { # IMAGE
  local img=$1 R=$MNT/store D=$MNT/tar T=$MNT/time.txt l dec=0 sha=0 ext=0 t0 t1
  local -a blobs cmd
  /usr/bin/time -f "%e %U %S" -o "$T" "$LAMINA" --root "$R" load "$(archive "$img")" > "$MNT/log" 2>&1 ||
    die_with "$MNT/log" "lamina load of $img failed"
  read -r wall user sys < "$T"
  record floor "$img" lamina-wall "$wall"
  record floor "$img" lamina-cpu "$(add "$user" "$sys")"
  settle "$R"
  mapfile -t blobs < <(layers "$img")
  mkdir -p "$D"
  for l in "${blobs[@]}"; do
    read -ra cmd <<< "$(decode_cmd "$l")"
    /usr/bin/time -f "%U %S" -o "$T" "${cmd[@]}" "$l" > /dev/null
    dec=$(add "$dec" "$(cpu "$T")")
    /usr/bin/time -f "%U %S" -o "$T" openssl dgst -sha256 "$l" > /dev/null
    sha=$(add "$sha" "$(cpu "$T")")
    "${cmd[@]}" "$l" | /usr/bin/time -f "%U %S" -o "$T" openssl dgst -sha256 > /dev/null
    sha=$(add "$sha" "$(cpu "$T")")
    "${cmd[@]}" "$l" | /usr/bin/time -f "%U %S" -o "$T" tar -x --warning=no-timestamp -C "$D"
    ext=$(add "$ext" "$(cpu "$T")")
  done
  t0=$(now)
  sync -f "$D"
  t1=$(now)
  [ -e "$D/$(probe "$img")" ] || fail "tar's tree of $img lacks $(probe "$img")"
  settle "$D"
  record floor "$img" decode "$dec"
  record floor "$img" sha256 "$sha"
  record floor "$img" extract "$ext"
  record floor "$img" syncfs "$(elapsed "$t0" "$t1")"
}

for img in $IMAGES; do
  [ -f "$(archive "$img")" ] || fail "no archive of $img in $CORPUS/archives"
  for l in $(layers "$img"); do cat "$l" > /dev/null; done
  cat "$(archive "$img")" > /dev/null
done
for round in $(seq 1 "$N"); do
  for img in $IMAGES; do
    echo "bench-floor: round $round/$N, $img" >&2
    floor_round "$img"
  done
done

python3 - "$RESULTS" "$(nproc)" << 'EOF'
import statistics, sys
from collections import defaultdict
rows = defaultdict(lambda: defaultdict(list))
for line in open(sys.argv[1]):
    _, img, what, value = line.split()
    rows[img][what].append(float(value))
cores = int(sys.argv[2])
print(f"Medians of the rounds, seconds; {cores} cores.\n")
print("| image | lamina wall | lamina CPU | decode CPU | sha256 CPU | extract CPU | sum | floor = sum / cores | syncfs after tar |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for img, r in rows.items():
    m = {k: statistics.median(v) for k, v in r.items()}
    total = m["decode"] + m["sha256"] + m["extract"]
    print(f"| {img} | {m['lamina-wall']:.2f} | {m['lamina-cpu']:.2f} | {m['decode']:.2f} | "
          f"{m['sha256']:.2f} | {m['extract']:.2f} | {total:.2f} | {total / cores:.2f} | {m['syncfs']:.2f} |")
print("\nAll rounds:")
for img, r in rows.items():
    for k, v in sorted(r.items()):
        print(f"- {img} {k}: " + " ".join(f"{x:.2f}" for x in v))
EOF
