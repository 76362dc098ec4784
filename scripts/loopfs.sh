# loopfs.sh: sourced by the benchmark scripts. A fresh journaled ext4 on a loop device (a sparse
# file), because this VM's root ext4 has no journal and creates files ~10x slower right after a
# mass delete, which would swamp what the benches measure.
#
#   loopfs_up MNT IMG SIZE   make IMG (SIZE, sparse), mkfs.ext4 with a journal, mount it at MNT
#   loopfs_down MNT IMG      unmount whatever is under MNT, then MNT, and delete IMG

loopfs_down() {
  local mnt=$1 img=$2
  if mountpoint -q "$mnt"; then
    { grep -o " $mnt/[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r m; do umount -l "$m"; done
    umount "$mnt" || umount -l "$mnt"
  fi
  rmdir "$mnt" 2>/dev/null || true
  rm -f "$img"
}

loopfs_up() {
  local mnt=$1 img=$2 size=$3
  loopfs_down "$mnt" "$img"
  mkdir -p "$mnt"
  truncate -s "$size" "$img"
  mkfs.ext4 -q -F -O has_journal "$img"
  mount -o loop "$img" "$mnt"
}
