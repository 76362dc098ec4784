#!/bin/bash
# run-bundle.sh RUNTIME BUNDLE ID
#   Runs the OCI bundle BUNDLE (config.json + rootfs) in the foreground with RUNTIME (crun or runc) as
#   container ID, and exits with the container's exit status. The container's stdout/stderr are this
#   script's; its stdin is /dev/null.
#
#   Runtime state goes to a private --root dir ($RUN_BUNDLE_STATE, else a fresh dir under /tmp that is
#   removed afterwards), never to the runtime's shared default (/run/runc, /run/crun).
#
#   crun 1.8 refuses hosts with hybrid cgroups (v1 controllers plus a cgroup2 at /sys/fs/cgroup/unified
#   that still lists a controller): "cgroups in hybrid mode not supported, drop all controllers from
#   cgroupv2", whatever --cgroup-manager says. There crun runs in a private mount namespace in which
#   /sys/fs/cgroup/unified is unmounted, so it sees plain cgroup v1; the host is not changed. runc needs
#   nothing. The bundle's config.json is used as it is (lamina writes process.terminal=false).
set -euo pipefail
if [ $# -ne 3 ]; then
  echo "usage: $0 crun|runc BUNDLE ID" >&2
  exit 2
fi
RUNTIME=$1 BUNDLE=$2 ID=$3
case "$RUNTIME" in
  crun|runc) ;;
  *) echo "$0: unknown runtime '$RUNTIME' (want crun or runc)" >&2; exit 2 ;;
esac
[ -f "$BUNDLE/config.json" ] || { echo "$0: $BUNDLE/config.json: no such file" >&2; exit 1; }
BUNDLE=$(cd "$BUNDLE" && pwd)

if [ -n "${RUN_BUNDLE_STATE:-}" ]; then
  STATE=$RUN_BUNDLE_STATE
  mkdir -p "$STATE"
else
  STATE=$(mktemp -d /tmp/lamina-run-state.XXXXXX)
fi
hybrid_cgroups() {
  [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = tmpfs ] &&
    [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]
}

# runtime ARGS...: the runtime with our state dir, inside the cgroup workaround where crun needs it.
runtime() {
  if [ "$RUNTIME" = crun ] && hybrid_cgroups; then
    unshare -m --propagation private -- /bin/sh -c '
      umount /sys/fs/cgroup/unified || exit 125
      exec "$@"' sh crun --root "$STATE" "$@"
  else
    "$RUNTIME" --root "$STATE" "$@"
  fi
}

cleanup() {
  # A container left behind by a runtime error or a signal; harmless when it is already gone.
  runtime delete -f "$ID" >/dev/null 2>&1 || true
  if [ -z "${RUN_BUNDLE_STATE:-}" ]; then rm -rf "$STATE"; fi
}
trap cleanup EXIT

rc=0
runtime run --bundle "$BUNDLE" "$ID" </dev/null || rc=$?
exit $rc
