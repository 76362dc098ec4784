#!/bin/sh
# Runs every fuzz target (or those named) for SECONDS each (default 60), one after the other, with
# the committed seeds. Works on the stable toolchain: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its
# -Z flags, and `-s none` needs no sanitizer runtime (lamina's unsafe code is a few syscall
# wrappers; a panic or failed assertion is what these targets find). Each target starts from its
# committed corpus, fuzz/corpus/<target> (what earlier runs found, minimised with
# `cargo fuzz cmin`), and adds what it finds there; crashes go to fuzz/artifacts/<target>.
# Needs: cargo install cargo-fuzz; run as root (unpack_layer creates device nodes and owners).
set -eu
cd "$(dirname "$0")"
secs=${SECONDS_EACH:-60}
seeds_of() {
    case $1 in
        tar_reader | split_recorder | unpack_layer) echo seeds/tar ;;
        pax) echo seeds/pax ;;
        split_reader) echo seeds/record ;;
        manifest) echo seeds/json ;;
        reference_platform) echo seeds/refs ;;
    esac
}
targets=${*:-"tar_reader pax split_recorder split_reader manifest reference_platform unpack_layer"}
for t in $targets; do
    mkdir -p "corpus/$t"
    echo "== $t (${secs}s)"
    RUSTC_BOOTSTRAP=1 cargo fuzz run -s none "$t" "corpus/$t" "$(seeds_of "$t")" -- \
        -max_total_time="$secs" -rss_limit_mb=1024 -timeout=10
done
