#!/usr/bin/env bash
# install-deps.sh: make sure the host has what lamina's build, tests, demo and bench use.
# Idempotent and fast when everything is there: it asks dpkg first and only runs
# `apt-get update` + `apt-get install` for packages that are missing. Needs root for installs.
set -euo pipefail

PACKAGES=(
  umoci skopeo crun runc docker-registry debootstrap pigz zstd busybox-static
  libcap2-bin python3 jq attr e2fsprogs apache2-utils openssl ca-certificates time
  # protoc for containerd-snapshots' build; Go and containerd's sources for its conformance suite
  protobuf-compiler golang-go golang-github-containerd-containerd-dev
  # a real containerd (1.6) for driver-tests/containerd.rs: lamina as its proxy snapshotter
  containerd
  # podman 4.3 for bench.sh (its own store under the bench dir; native overlay as root)
  podman
  # ISA-L's inflate for gzip layers (the default 'isal' cargo feature links libisal); its igzip
  # for bench-floor.sh
  libisal-dev isal
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages (${missing[*]}); run as root to install them" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Rust: we do not install a toolchain behind the user's back, we say how.
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    echo "install-deps: cargo is in ~/.cargo/bin but not on PATH: export PATH=\$HOME/.cargo/bin:\$PATH" >&2
  else
    echo "install-deps: cargo not found; install Rust with rustup (https://rustup.rs) and retry" >&2
  fi
  exit 1
fi
