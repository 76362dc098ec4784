#!/usr/bin/env bash
# bench-cri.sh [LAMINA] [CORPUS]: an image pull and first container start through containerd 1.6's CRI plugin
# (kubelet's path: PullImage, then CreateContainer + StartContainer), with the lamina snapshotter (proxy
# plugin, `lamina snapshotter`) vs containerd's own overlayfs snapshotter, of the corpus's debian:gzip and
# big:gzip from a local distribution registry, everything (registry storage, containerd's root, lamina's
# store) on a fresh journaled ext4 (a sparse file on a loop device).
#
# Once, outside the timing: the registry is started and the images pushed to it (skopeo), the pod sandbox
# image (`docker.io/library/pause:local`: the test images' busybox with Cmd `sleep 100000`) is built.
# Per round, per image, the two snapshotters alternating (the order turns every round), each timed alone:
# a fresh containerd root (and for lamina a fresh store and snapshotter), the sandbox image imported,
# RunPodSandbox, then timed by scripts/cri_bench.py:
#   pull    PullImage of 127.0.0.1:PORT/IMG:TAG (plain HTTP): containerd fetches each blob into its content
#           store and unpacks it through the snapshotter; with lamina, CRI's snapshot labels make the
#           snapshotter fetch and unpack every layer itself, in parallel, and answer AlreadyExists (the
#           fast pull), so containerd fetches and applies no layer
#   start   CreateContainer + StartContainer of a container that prints a fact of the image (checked)
# then everything is stopped and removed, and the filesystem synced, outside the timing. The registry's
# blobs stay warm in the page cache (both sides read the same). Prints the medians of N rounds (N=3, env N)
# and the ratios lamina / overlayfs as a markdown table for BENCHMARKS.md.
# CRI_CLIENT=DIR: the Python CRI client of ../shared/recipes/cri-pod/cri-client-setup.sh (made there if
# missing; default /var/cache/lamina/cri-client). IMAGES="debian:gzip" for a quicker run.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
LAMINA=${1:-$REPO/target/release/lamina}
CORPUS=${2:-/var/cache/lamina/corpus}
N=${N:-3}
RECIPES=${LAMINA_SHARED:-$REPO/../shared}/recipes
CRI_CLIENT=${CRI_CLIENT:-/var/cache/lamina/cri-client}
MNT=/var/tmp/lamina-bench-cri
IMG=/var/tmp/lamina-bench-cri.img
IMAGES=${IMAGES:-"debian:gzip big:gzip"}
BUSYBOX=${BUSYBOX:-/var/cache/lamina/images/busybox/oci}

[ "$(id -u)" = 0 ] || { echo "bench-cri: must run as root (loop device, mounts, containerd)" >&2; exit 1; }
[ -x "$LAMINA" ] || { echo "bench-cri: $LAMINA not built (cargo build --release)" >&2; exit 1; }
[ -e "$CORPUS/stamps/big" ] && [ -e "$CORPUS/stamps/debian-variants" ] ||
  { echo "bench-cri: corpus not built in $CORPUS (scripts/build-corpus.sh)" >&2; exit 1; }
[ -x "$RECIPES/registry-up.sh" ] && [ -x "$RECIPES/containerd-down.sh" ] ||
  { echo "bench-cri: no $RECIPES (set LAMINA_SHARED)" >&2; exit 1; }
[ -f "$BUSYBOX/index.json" ] || { echo "bench-cri: no busybox layout $BUSYBOX (scripts/build-test-images.sh)" >&2; exit 1; }
for t in containerd ctr runc skopeo umoci docker-registry python3 mkfs.ext4 /bin/busybox; do
  command -v "$t" >/dev/null || { echo "bench-cri: missing $t (scripts/install-deps.sh)" >&2; exit 1; }
done
[ -f "$CRI_CLIENT/api_pb2_grpc.py" ] || "$RECIPES/cri-pod/cri-client-setup.sh" "$CRI_CLIENT" >/dev/null
PY=$CRI_CLIENT/venv/bin/python

REG=$MNT/registry
RUN=$MNT/run
. "$REPO/scripts/loopfs.sh"
# alive = exists and is not a zombie
alive() { [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
side_down() {
  [ -d "$RUN" ] || return 0
  "$RECIPES/containerd-down.sh" "$RUN" >/dev/null 2>&1 || true
  if [ -f "$RUN/lamina.pid" ]; then
    local pid; pid=$(cat "$RUN/lamina.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.05; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null
  fi
  { grep -o " $RUN/[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$RUN"
  sync
}
cleanup() {
  set +e
  side_down
  [ -d "$REG" ] && "$RECIPES/registry-down.sh" "$REG" >/dev/null
  loopfs_down "$MNT" "$IMG"
}
trap cleanup EXIT
loopfs_up "$MNT" "$IMG" 16G
echo "bench-cri: fresh ext4 on $(findmnt -no SOURCE "$MNT") at $MNT; N=$N rounds" >&2

"$RECIPES/registry-up.sh" "$REG" >/dev/null
PORT=$(sed -n 's/^PORT=//p' "$REG/env")
for img in $IMAGES; do
  skopeo copy -q --dest-tls-verify=false "oci:$CORPUS/oci/$img" "docker://127.0.0.1:$PORT/$img" >/dev/null
done
# the pod sandbox's image: busybox whose Cmd stays alive (CRI keeps a sandbox's process running)
cp -a "$BUSYBOX" "$MNT/pause-layout"
umoci config --image "$MNT/pause-layout:latest" --tag pause --config.cmd sleep --config.cmd 100000
skopeo copy -q "oci:$MNT/pause-layout:pause" "oci-archive:$MNT/pause.tar:docker.io/library/pause:local"

# As ../shared/recipes/cri-pod/cri-up.sh, with the snapshotter a parameter and the local registry over
# plain HTTP.
write_config() { # SNAPSHOTTER
  cat > "$RUN/config.toml" <<EOT
version = 2
root = "$RUN/root"
state = "$RUN/state"
temp = "$RUN/tmp"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$RUN/containerd.sock"
[ttrpc]
  address = "$RUN/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$RUN/opt"
[proxy_plugins.lamina]
  type = "snapshot"
  address = "$RUN/lamina.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/library/pause:local"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_cdi = false
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "$1"
    disable_snapshot_annotations = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$RUN/cni/bin"
    conf_dir = "$RUN/cni/conf"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."127.0.0.1:$PORT"]
    endpoint = ["http://127.0.0.1:$PORT"]
EOT
}

# A fresh containerd (and for lamina a fresh store and snapshotter) with the sandbox image.
side_up() { # SNAPSHOTTER
  mkdir -p "$RUN"/{root,state,tmp,opt,log,cni/bin,cni/conf}
  if [ "$1" = lamina ]; then
    setsid "$LAMINA" --root "$RUN/store" snapshotter --address "$RUN/lamina.sock" \
      >"$RUN/lamina.log" 2>&1 </dev/null &
    echo $! > "$RUN/lamina.pid"
    for _ in $(seq 200); do [ -S "$RUN/lamina.sock" ] && break; sleep 0.05; done
    [ -S "$RUN/lamina.sock" ] || { cat "$RUN/lamina.log" >&2; exit 1; }
  fi
  write_config "$1"
  setsid containerd --config "$RUN/config.toml" >"$RUN/containerd.log" 2>&1 </dev/null &
  echo $! > "$RUN/containerd.pid"
  for _ in $(seq 200); do ctr --address "$RUN/containerd.sock" version >/dev/null 2>&1 && break; sleep 0.05; done
  ctr --address "$RUN/containerd.sock" -n k8s.io images import --snapshotter "$1" "$MNT/pause.tar" >/dev/null
  sync
}

RESULTS=$MNT/results
: > "$RESULTS"
run() { # IMAGE SNAPSHOTTER
  local img=$1 snap=$2 times
  side_up "$snap"
  case $img in
    debian:*) times=$(PYTHONPATH=$CRI_CLIENT "$PY" "$REPO/scripts/cri_bench.py" "$RUN" \
      "127.0.0.1:$PORT/$img" '[0-9a-z./]+\n' cat /etc/debian_version) ;;
    # big has no binaries: the host's static busybox, and the size of its 1 GiB file
    big:*) times=$(BIND=/bin/busybox PYTHONPATH=$CRI_CLIENT "$PY" "$REPO/scripts/cri_bench.py" "$RUN" \
      "127.0.0.1:$PORT/$img" '1073741824\n' /bin/busybox stat -c %s /big/blob-1024MiB.bin) ;;
  esac || { echo "bench-cri: $img with $snap failed; containerd log:" >&2; tail -20 "$RUN/containerd.log" >&2; exit 1; }
  side_down
  echo "$img $snap $times" >> "$RESULTS"
}

# warm the page cache with the registry's blobs, which every pull reads
# (the registry may still be tidying its upload dirs: tar's "file changed/removed as we read it"
# must not end the bench, which set -e silently did)
{ tar -cf - -C "$REG" data 2>/dev/null || true; } | cat > /dev/null
SNAPSHOTTERS=(overlayfs lamina)
for round in $(seq 1 "$N"); do
  for img in $IMAGES; do
    for i in 0 1; do
      run "$img" "${SNAPSHOTTERS[$(( (i + round) % 2 ))]}"
    done
  done
  echo "bench-cri: round $round done" >&2
done

python3 - "$RESULTS" "$N" "$(nproc)" "$(uname -r)" "$(containerd --version | awk '{print $3}')" "$IMAGES" <<'PY'
import statistics, sys
path, n, cpus, kernel, containerd, images = sys.argv[1:]
t = {}
for line in open(path):
    img, snap, *times = line.split()
    times = dict(kv.split("=") for kv in times)
    for k in ("pull", "start"):
        t.setdefault((img, snap, k), []).append(float(times[k]))
    t.setdefault((img, snap, "total"), []).append(float(times["pull"]) + float(times["start"]))
med = {k: statistics.median(v) for k, v in t.items()}
print(f"Median of {n} rounds, wall seconds; {cpus} cores, kernel {kernel}, containerd {containerd} (CRI), "
      f"local distribution registry over plain HTTP, fresh ext4 on a loop device.")
print()
print("| image | overlayfs pull | overlayfs start | lamina pull | lamina start "
      "| lamina / overlayfs (pull) | lamina / overlayfs (pull + start) |")
print("|---|---:|---:|---:|---:|---:|---:|")
for img in images.split():
    o = {k: med[(img, "overlayfs", k)] for k in ("pull", "start", "total")}
    l = {k: med[(img, "lamina", k)] for k in ("pull", "start", "total")}
    print(f"| {img} | {o['pull']:.2f} | {o['start']:.2f} | {l['pull']:.2f} | {l['start']:.2f} "
          f"| {l['pull']/o['pull']:.2f}x | {l['total']/o['total']:.2f}x |")
print()
print("All rounds (pull+start):", "; ".join(
    f"{img}/{snap}: " + " ".join(f"{p:.2f}+{s:.2f}" for p, s in zip(t[(img, snap, 'pull')], t[(img, snap, 'start')]))
    for (img, snap) in sorted({(i, s) for i, s, _ in t})))
PY
