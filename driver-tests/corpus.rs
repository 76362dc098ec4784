//! Every image of ../shared's corpus, from its OCI layout, oci-archive and docker-archive, mounted
//! with both drivers, against `umoci unpack` of the same image. Each source is loaded into a fresh
//! store (so each reader really unpacks); both drivers are checked on that one store.
//! One test per image family so the two test threads share the work; all take `heavy()`.

use crate::common::{self, loaded_images, Store};
use crate::oracle;
use lamina_testkit::tree;
use std::path::Path;

/// (source relative to the corpus, extra load args, name it loads as, oracle layout, oracle tag)
type Case = (
    &'static str,
    &'static [&'static str],
    &'static str,
    &'static str,
    &'static str,
);

fn check_family(family: &str, cases: &[Case]) {
    if !common::require_root() || !common::have_tool("umoci") {
        return;
    }
    let Some(corpus) = common::corpus() else {
        return;
    };
    let _heavy = common::heavy();
    for (source, extra, name, layout, tag) in cases {
        let expected = oracle::oracle(&corpus.join(layout), tag);
        let s = Store::new(&format!("corpus-{family}"));
        let r = s.load(&corpus.join(source), extra);
        assert!(
            loaded_images(&r).iter().any(|n| n == name),
            "{source} loads as {name}: {}",
            r.describe()
        );
        for driver in ["overlay", "copy"] {
            oracle::check_mount(&s, name, driver, &expected);
        }
        assert!(
            s.staging_leftovers().is_empty(),
            "{source}: staging left: {:?}",
            s.staging_leftovers()
        );
    }
}

#[test]
fn corpus_debian() {
    check_family(
        "debian",
        &[
            ("oci/debian:gzip", &[], "debian:gzip", "oci/debian", "gzip"),
            ("oci/debian:zstd", &[], "debian:zstd", "oci/debian", "gzip"),
            (
                "oci/debian:plain",
                &[],
                "debian:plain",
                "oci/debian",
                "plain",
            ),
            (
                "archives/debian-gzip.oci.tar",
                &[],
                "debian:gzip",
                "oci/debian",
                "gzip",
            ),
            (
                "archives/debian-gzip.docker.tar",
                &[],
                "debian:gzip",
                "oci/debian",
                "gzip",
            ),
            (
                "archives/debian-zstd.oci.tar",
                &[],
                "debian:zstd",
                "oci/debian",
                "gzip",
            ),
            (
                "archives/debian-plain.oci.tar",
                &[],
                "debian:plain",
                "oci/debian",
                "plain",
            ),
        ],
    );
}

#[test]
fn corpus_many_layers() {
    check_family(
        "many",
        &[
            (
                "oci/many-layers:500",
                &[],
                "many-layers:500",
                "oci/many-layers",
                "500",
            ),
            (
                "oci/many-layers:130",
                &[],
                "many-layers:130",
                "oci/many-layers",
                "130",
            ),
            (
                "archives/many-layers-500.oci.tar",
                &[],
                "many-layers:500",
                "oci/many-layers",
                "500",
            ),
            (
                "archives/many-layers-500.docker.tar",
                &[],
                "many-layers:500",
                "oci/many-layers",
                "500",
            ),
            (
                "archives/many-layers-130.oci.tar",
                &[],
                "many-layers:130",
                "oci/many-layers",
                "130",
            ),
            (
                "archives/many-layers-130.docker.tar",
                &[],
                "many-layers:130",
                "oci/many-layers",
                "130",
            ),
        ],
    );
}

#[test]
fn corpus_big() {
    check_family(
        "big",
        &[
            ("oci/big:gzip", &[], "big:gzip", "oci/big", "gzip"),
            ("oci/big:zstd", &[], "big:zstd", "oci/big", "gzip"),
            (
                "archives/big-gzip.oci.tar",
                &[],
                "big:gzip",
                "oci/big",
                "gzip",
            ),
            (
                "archives/big-gzip.docker.tar",
                &[],
                "big:gzip",
                "oci/big",
                "gzip",
            ),
            (
                "archives/big-zstd.oci.tar",
                &[],
                "big:zstd",
                "oci/big",
                "gzip",
            ),
        ],
    );
}

#[test]
fn corpus_multiarch() {
    check_family(
        "multiarch",
        &[
            (
                "oci/multiarch:latest",
                &[],
                "multiarch:latest",
                "oci/multiarch",
                "latest-amd64",
            ),
            (
                "oci/multiarch:latest-amd64",
                &[],
                "multiarch:latest-amd64",
                "oci/multiarch",
                "latest-amd64",
            ),
            (
                "oci/multiarch:latest",
                &["--platform", "linux/arm64", "--tag", "multiarch:arm"],
                "multiarch:arm",
                "oci/multiarch",
                "latest-arm64",
            ),
            (
                "archives/multiarch-latest.oci.tar",
                &[],
                "multiarch:latest",
                "oci/multiarch",
                "latest-amd64",
            ),
            (
                "archives/multiarch-latest-amd64.docker.tar",
                &[],
                "multiarch:latest",
                "oci/multiarch",
                "latest-amd64",
            ),
        ],
    );
}

/// The corpus's own reference tree for debian (umoci's bundle at build time) agrees with our
/// oracle, but for mtimes (the corpus's later repacks touched the bundle).
#[test]
fn corpus_oracle_is_sane() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    if !common::require_root() || !common::have_tool("umoci") {
        return;
    }
    let reference = corpus.join("work/debian-bundle/rootfs");
    if !Path::new(&reference).is_dir() {
        common::skip("corpus work/debian-bundle missing");
        return;
    }
    let _heavy = common::heavy();
    let ours = oracle::oracle(&corpus.join("oci/debian"), "gzip");
    let theirs = tree::treemanifest(&reference);
    tree::assert_same(
        "umoci unpack now vs the corpus's bundle",
        &theirs,
        &ours,
        tree::NO_MTIMES,
    );
}
