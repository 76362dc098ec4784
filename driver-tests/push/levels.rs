//! `--compression-level`: a level out of buildx's range is refused before the registry is asked;
//! a level-1 push gives layers that are each one gzip member (the parallel compressor's blocks
//! joined into one stream), which GNU gzip reads back to the diffID, Go's readers (skopeo, then
//! umoci) unpack to lamina's tree, and a pull into a fresh store verifies to the same image.

use super::{image_id, layer_lines, load_debian, skopeo_to_layout, state, store};
use crate::oracle;
use crate::registry::fixture::{self, Registry};
use std::io::Read;
use std::process::{Command, Stdio};

#[test]
fn level_one_push_is_one_gzip_member_per_layer_that_go_and_gzip_read() {
    let Some(env) = fixture::env() else { return };
    let _heavy = crate::common::heavy();
    let reg = Registry::start(&env, &[]);
    let s = store();
    let name = format!("{}/levels:1", reg.host());
    load_debian(&env, &s, &name);

    let before = state(&s);
    for (format, level) in [("gzip", "10"), ("zstd", "23"), ("gzip", "-1")] {
        let r = s.fails(&[
            "push",
            "--compression-format",
            format,
            &format!("--compression-level={level}"),
            &name,
        ]);
        assert!(
            r.stderr
                .contains(&format!("compression level {level} is out of range"))
                && r.stderr.lines().count() == 1,
            "{}",
            r.describe()
        );
    }
    assert_eq!(state(&s), before);

    let r = s.ok(&["push", "--compression-level", "1", &name]);
    assert_eq!(layer_lines(&r).len(), 4, "{}", r.describe());

    let (_dir, layout) = skopeo_to_layout(&name);

    // every layer blob: one gzip member whose content hashes to one of the image's diffIDs
    let diff_ids = s
        .ok(&[
            "image",
            "inspect",
            "--format",
            "{{range .RootFS.Layers}}{{println .}}{{end}}",
            &name,
        ])
        .stdout;
    let mut layers = 0;
    for entry in std::fs::read_dir(layout.join("blobs/sha256")).expect("blobs") {
        let path = entry.expect("entry").path();
        let blob = std::fs::read(&path).expect("blob");
        if !blob.starts_with(&[0x1f, 0x8b]) {
            continue;
        }
        layers += 1;
        let mut one = flate2::read::GzDecoder::new(&blob[..]);
        let mut tar = Vec::new();
        one.read_to_end(&mut tar).expect("gunzip");
        let mut rest = Vec::new();
        one.into_inner().read_to_end(&mut rest).expect("rest");
        assert!(rest.is_empty(), "{}: more than one member", path.display());
        let by_gzip = gunzip_sha256(&path);
        assert!(
            diff_ids.contains(&by_gzip),
            "{}: gzip -dc gives {by_gzip}, not a diffID of {diff_ids}",
            path.display()
        );
    }
    assert_eq!(layers, 4);

    if lamina_testkit::env::on_path("umoci") {
        let umoci = oracle::oracle(&layout, "copied");
        oracle::check_mount(&s, &name, "overlay", &umoci);
    }
    let fresh = store();
    fresh.ok(&["pull", &name]);
    assert_eq!(image_id(&fresh, &name), image_id(&s, &name));
}

/// `gzip -dc FILE | sha256sum` as a digest.
fn gunzip_sha256(path: &std::path::Path) -> String {
    let mut gz = Command::new("gzip")
        .arg("-dc")
        .arg(path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    let out = Command::new("sha256sum")
        .stdin(gz.stdout.take().expect("stdout"))
        .output()
        .expect("sha256sum");
    assert!(
        gz.wait().expect("wait gzip").success(),
        "gzip -dc {}",
        path.display()
    );
    assert!(out.status.success());
    let hex = String::from_utf8_lossy(&out.stdout);
    format!("sha256:{}", hex.split_whitespace().next().unwrap_or(""))
}
