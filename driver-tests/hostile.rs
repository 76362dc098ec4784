//! Bad input: every case is refused with exit code 1, a message naming the blob and the reason,
//! the store exactly as it was, and nothing written outside the store.

use crate::common::{self, Store};
use crate::load::marker_layer;
use lamina_testkit::docker::write_docker_archive;
use lamina_testkit::oci::{gzip, hex_of, sha256, zstd, Compression, Image, Layer, OciBuilder};
use lamina_testkit::tarw::{Header, TarWriter, REG};
use std::fs;
use std::path::{Path, PathBuf};

/// What one hostile load must be refused for.
struct Hostile {
    source: PathBuf,
    /// the message must contain one of these (digests are matched by their first 12 hex)
    names: Vec<String>,
    /// ...and one of these, case-insensitively
    reasons: Vec<&'static str>,
    /// paths a careless unpacker would have written
    outside: Vec<PathBuf>,
}

/// Everything under ROOT (but the DB and lock files) and the image IDs `lamina images` lists.
pub(crate) fn snapshot(s: &Store) -> (Vec<String>, String) {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            // the DB is rewritten in place; lock files are not content
            if (rel.is_empty() && name.starts_with("meta.db")) || name.ends_with(".lock") {
                continue;
            }
            let path = format!("{rel}/{name}");
            let (kind, len) = match e.metadata() {
                Ok(md) if md.is_dir() => ("dir", 0),
                Ok(md) if md.is_file() => ("file", md.len()),
                Ok(md) if md.is_symlink() => ("symlink", 0),
                Ok(_) => ("other", 0),
                Err(_) => ("gone", 0),
            };
            out.push(format!("{path} {kind} {len}"));
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(&e.path(), &path, out);
            }
        }
    }
    let mut files = Vec::new();
    walk(&s.root, "", &mut files);
    files.sort();
    (files, s.ok(&["images", "-q", "--no-trunc"]).stdout)
}

fn short(digest: &str) -> String {
    hex_of(digest)[..12].to_string()
}

/// Loads a good image, then `build` the hostile one, and checks the refusal.
fn refused(tag: &str, build: impl FnOnce(&Store, &Layer) -> Hostile) {
    if !common::require_root() {
        return;
    }
    let s = Store::new(&format!("hostile-{tag}"));
    let base = marker_layer("hostile-base");
    let good = s.scratch("good");
    OciBuilder::new()
        .image(
            Some("latest"),
            Image::new(vec![base.clone(), marker_layer("good-top")]),
        )
        .write_layout(&good);
    s.load(&good, &[]);
    // `build` may load legal images first (a lower layer to attack through): the store is compared
    // from after that point.
    let h = build(&s, &base);
    let before = snapshot(&s);
    let around_before = common::list_dir(&s.base);
    let r = s.lamina(&[std::ffi::OsStr::new("load"), h.source.as_os_str()]);
    let mut problems = Vec::new();
    if r.status != Some(1) {
        problems.push(format!("exit code {:?}, expected 1", r.status));
    }
    if !h.names.iter().any(|n| r.stderr.contains(n.as_str())) {
        problems.push(format!("message names none of {:?}", h.names));
    }
    let lower = r.stderr.to_lowercase();
    if !h.reasons.iter().any(|w| lower.contains(w)) {
        problems.push(format!("message gives none of the reasons {:?}", h.reasons));
    }
    if r.stderr.contains("panicked") {
        problems.push("lamina panicked".into());
    }
    for p in &h.outside {
        if fs::symlink_metadata(p).is_ok() {
            problems.push(format!("{} was written outside the store", p.display()));
            let _ = fs::remove_file(p);
        }
    }
    let after = snapshot(&s);
    if after != before {
        let new: Vec<_> = after
            .0
            .iter()
            .filter(|l| !before.0.contains(l))
            .take(10)
            .collect();
        let gone: Vec<_> = before
            .0
            .iter()
            .filter(|l| !after.0.contains(l))
            .take(10)
            .collect();
        problems.push(format!(
            "store changed: new {new:?}, gone {gone:?}, images equal: {}",
            after.1 == before.1
        ));
    }
    // the hostile source lives in the scratch dir it was built in; nothing else may appear beside the root
    let around_after = common::list_dir(&s.base);
    if around_after != around_before {
        let h_name = h
            .source
            .strip_prefix(&s.base)
            .ok()
            .and_then(|p| p.iter().next())
            .map(|n| n.to_string_lossy().into_owned());
        let extra: Vec<_> = around_after
            .iter()
            .filter(|n| !around_before.contains(n) && Some(*n) != h_name.as_ref())
            .collect();
        if !extra.is_empty() {
            problems.push(format!("new files beside the store: {extra:?}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{tag}: {}\n{}",
        problems.join("; "),
        r.describe()
    );
    // and the store still works
    let m = s.mount("good:latest", &["--read-only"]);
    assert!(m.join("etc/good-top").is_file());
    s.umount(&m);
}

/// A layout holding [base, top] under ref `latest`, written into a scratch dir named `bad`.
fn layout_with(
    s: &Store,
    base: &Layer,
    top: Layer,
    edit: impl FnOnce(&mut Image),
) -> (PathBuf, Image) {
    let mut img = Image::new(vec![base.clone(), top]);
    edit(&mut img);
    let dir = s.scratch("bad");
    OciBuilder::new()
        .image(Some("latest"), img.clone())
        .write_layout(&dir);
    (dir, img)
}

fn tar_with(f: impl FnOnce(&mut TarWriter)) -> Vec<u8> {
    let mut w = TarWriter::new();
    f(&mut w);
    w.finish()
}

/// Some bytes that do not compress to nothing, so that truncation and corruption hit data.
fn noise(n: usize) -> Vec<u8> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    (0..n).map(|_| rng.gen::<u8>()).collect()
}

fn blob_names(l: &Layer) -> Vec<String> {
    vec![short(&l.digest), short(&l.diff_id)]
}

const DIGEST: &[&str] = &["digest", "sha256", "mismatch", "verif"];
const ESCAPE: &[&str] = &[
    "..", "escape", "outside", "travers", "beneath", "unsafe", "absolute", "symlink", "link",
];

#[test]
fn wrong_blob_digest() {
    refused("digest", |s, base| {
        let mut top = marker_layer("evil");
        top.digest = sha256(b"not these bytes");
        let (source, _) = layout_with(s, base, top.clone(), |_| {});
        Hostile {
            source,
            names: vec![short(&top.digest)],
            reasons: DIGEST.to_vec(),
            outside: vec![],
        }
    });
}

#[test]
fn wrong_blob_size() {
    refused("size", |s, base| {
        let mut top = marker_layer("evil");
        top.size += 1;
        let (source, _) = layout_with(s, base, top.clone(), |_| {});
        Hostile {
            source,
            names: vec![short(&top.digest)],
            reasons: vec!["size", "length", "bytes"],
            outside: vec![],
        }
    });
}

#[test]
fn wrong_diff_id() {
    refused("diffid", |s, base| {
        let mut top = marker_layer("evil");
        top.diff_id = sha256(b"another tar");
        let (source, _) = layout_with(s, base, top.clone(), |_| {});
        Hostile {
            source,
            names: blob_names(&top),
            reasons: vec!["diff"],
            outside: vec![],
        }
    });
}

#[test]
fn docker_archive_wrong_diff_id() {
    refused("docker-diffid", |s, base| {
        let mut top = Layer::new(
            &tar_with(|w| {
                w.file("etc/x", 0o644, b"x");
            }),
            Compression::None,
        );
        top.diff_id = sha256(b"another tar");
        let img = Image::new(vec![base.clone(), top.clone()]);
        let source = s.scratch("bad").join("bad.tar");
        write_docker_archive(&img, &["bad:latest"], &source);
        Hostile {
            source,
            names: blob_names(&top),
            reasons: vec!["diff", "digest"],
            outside: vec![],
        }
    });
}

#[test]
fn truncated_gzip() {
    refused("truncated-gzip", |s, base| {
        let tar = tar_with(|w| {
            w.file("etc/noise", 0o644, &noise(200_000));
        });
        let gz = gzip(&tar);
        let top = Layer::from_blob(
            gz[..gz.len() / 2].to_vec(),
            "application/vnd.oci.image.layer.v1.tar+gzip",
            sha256(&tar),
        );
        let (source, _) = layout_with(s, base, top.clone(), |_| {});
        Hostile {
            source,
            names: blob_names(&top),
            reasons: vec!["gzip", "truncat", "eof", "end of", "unexpected", "corrupt"],
            outside: vec![],
        }
    });
}

#[test]
fn corrupt_zstd() {
    refused("corrupt-zstd", |s, base| {
        let tar = tar_with(|w| {
            w.file("etc/noise", 0o644, &noise(200_000)).file(
                "etc/text",
                0o644,
                &vec![b'a'; 100_000],
            );
        });
        let mut z = zstd(&tar);
        let mid = z.len() / 2;
        for b in &mut z[mid..mid + 64] {
            *b ^= 0x5a;
        }
        let top = Layer::from_blob(
            z,
            "application/vnd.oci.image.layer.v1.tar+zstd",
            sha256(&tar),
        );
        let (source, _) = layout_with(s, base, top.clone(), |_| {});
        Hostile {
            source,
            names: blob_names(&top),
            reasons: vec!["zstd", "corrupt", "decompress", "checksum"],
            outside: vec![],
        }
    });
}

#[test]
fn bad_tar_header() {
    refused("tar-header", |s, base| {
        let tar = tar_with(|w| {
            w.dir("etc/", 0o755).entry(
                Header {
                    checksum_skew: 3,
                    ..Header::new("etc/bad", REG)
                },
                b"bad header\n",
            );
        });
        let top = Layer::new(&tar, Compression::Gzip);
        let (source, _) = layout_with(s, base, top.clone(), |_| {});
        Hostile {
            source,
            names: blob_names(&top),
            reasons: vec!["tar", "header", "checksum"],
            outside: vec![],
        }
    });
}

#[test]
fn missing_blob() {
    refused("missing", |s, base| {
        let mut top = marker_layer("evil");
        top.omit = true;
        let (source, _) = layout_with(s, base, top.clone(), |_| {});
        Hostile {
            source,
            names: vec![short(&top.digest)],
            reasons: vec!["missing", "not found", "no such"],
            outside: vec![],
        }
    });
}

#[test]
fn malformed_config_json() {
    refused("config-json", |s, base| {
        let (source, img) = layout_with(s, base, marker_layer("evil"), |img| {
            img.raw_config =
                Some(br#"{"architecture": "amd64", "os": "linux", "rootfs": "#.to_vec());
        });
        Hostile {
            source,
            names: vec![short(&img.config_digest())],
            reasons: vec!["json", "parse", "eof", "invalid", "expected"],
            outside: vec![],
        }
    });
}

#[test]
fn malformed_manifest_json() {
    refused("manifest-json", |s, base| {
        let (source, img) = layout_with(s, base, marker_layer("evil"), |img| {
            img.raw_manifest = Some(b"{not json".to_vec())
        });
        Hostile {
            source,
            names: vec![short(&img.manifest_digest())],
            reasons: vec!["json", "parse", "invalid", "expected", "key"],
            outside: vec![],
        }
    });
}

#[test]
fn malformed_index_json() {
    refused("index-json", |s, base| {
        let dir = s.scratch("bad");
        let mut b = OciBuilder::new();
        b.image(
            Some("latest"),
            Image::new(vec![base.clone(), marker_layer("evil")]),
        );
        b.raw_index = Some(b"[{\"manifests\": ".to_vec());
        b.write_layout(&dir);
        Hostile {
            source: dir,
            names: vec!["index.json".into()],
            reasons: vec!["json", "parse", "eof", "invalid", "expected"],
            outside: vec![],
        }
    });
}

fn escape_target(tag: &str) -> PathBuf {
    PathBuf::from(format!(
        "/tmp/{}",
        common::unique(&format!("lamina-escape-{tag}-"))
    ))
}

fn up(levels: usize) -> String {
    "../".repeat(levels)
}

#[test]
fn dotdot_traversal() {
    refused("dotdot", |s, base| {
        let out = escape_target("dotdot");
        let out2 = escape_target("dotdot-mid");
        let name = format!(
            "{}{}",
            up(16),
            out.to_string_lossy().trim_start_matches('/')
        );
        let name2 = format!(
            "etc/{}{}",
            up(16),
            out2.to_string_lossy().trim_start_matches('/')
        );
        let tar = tar_with(|w| {
            w.file(&name, 0o644, b"escaped\n")
                .file(&name2, 0o644, b"escaped\n");
        });
        let top = Layer::new(&tar, Compression::Gzip);
        let (source, _) = layout_with(s, base, top.clone(), |_| {});
        Hostile {
            source,
            names: blob_names(&top),
            reasons: ESCAPE.to_vec(),
            outside: vec![out, out2],
        }
    });
}

#[test]
fn absolute_name() {
    refused("absolute", |s, base| {
        let out = escape_target("abs");
        let tar = tar_with(|w| {
            w.file(out.to_string_lossy().as_bytes(), 0o644, b"absolute\n");
        });
        let top = Layer::new(&tar, Compression::Gzip);
        let (source, _) = layout_with(s, base, top.clone(), |_| {});
        Hostile {
            source,
            names: blob_names(&top),
            reasons: ESCAPE.to_vec(),
            outside: vec![out],
        }
    });
}

#[test]
fn symlink_escape_in_the_same_layer() {
    if !common::require_root() {
        return;
    }
    let (abs_dir, rel_dir) = (escape_target("symabs"), escape_target("symrel"));
    fs::create_dir_all(&abs_dir).expect("mkdir");
    fs::create_dir_all(&rel_dir).expect("mkdir");
    let rel_target = format!(
        "{}{}",
        up(16),
        rel_dir.to_string_lossy().trim_start_matches('/')
    );
    refused("symlink", |s, base| {
        let tar = tar_with(|w| {
            w.symlink("evil-abs", abs_dir.to_string_lossy().as_bytes())
                .file("evil-abs/pwned", 0o644, b"through an absolute symlink\n")
                .symlink("evil-rel", &rel_target)
                .file("evil-rel/pwned", 0o644, b"through a relative symlink\n");
        });
        let top = Layer::new(&tar, Compression::Gzip);
        let (source, _) = layout_with(s, base, top.clone(), |_| {});
        let outside = vec![abs_dir.join("pwned"), rel_dir.join("pwned")];
        Hostile {
            source,
            names: blob_names(&top),
            reasons: ESCAPE.to_vec(),
            outside,
        }
    });
    let _ = fs::remove_dir_all(&abs_dir);
    let _ = fs::remove_dir_all(&rel_dir);
}

#[test]
fn hardlink_escape() {
    if !common::require_root() {
        return;
    }
    let victim = escape_target("hl-victim");
    fs::write(&victim, b"outside file\n").expect("write victim");
    let target = format!(
        "{}{}",
        up(16),
        victim.to_string_lossy().trim_start_matches('/')
    );
    refused("hardlink", |s, base| {
        let tar = tar_with(|w| {
            w.dir("etc/", 0o755)
                .hardlink("etc/rel-link", &target)
                .hardlink("etc/abs-link", victim.to_string_lossy().as_bytes());
        });
        let top = Layer::new(&tar, Compression::Gzip);
        let (source, _) = layout_with(s, base, top.clone(), |_| {});
        Hostile {
            source,
            names: blob_names(&top),
            reasons: ESCAPE.to_vec(),
            outside: vec![],
        }
    });
    let nlink = std::os::unix::fs::MetadataExt::nlink(&fs::metadata(&victim).expect("victim"));
    let _ = fs::remove_file(&victim);
    assert_eq!(nlink, 1, "a link to the outside file was made");
}

/// A symlink planted by a lower layer (legal on its own), then a file through it above.
#[test]
fn symlink_escape_through_a_lower_layer() {
    if !common::require_root() {
        return;
    }
    let outside_dir = escape_target("lower");
    fs::create_dir_all(&outside_dir).expect("mkdir");
    let planted = Layer::new(
        &tar_with(|w| {
            w.symlink("lnk", outside_dir.to_string_lossy().as_bytes());
        }),
        Compression::Gzip,
    );
    refused("lower-symlink", |s, base| {
        // the lower layer alone is a fine image: load it first so the store already has it
        let legal = s.scratch("legal");
        OciBuilder::new()
            .image(
                Some("latest"),
                Image::new(vec![base.clone(), planted.clone()]),
            )
            .write_layout(&legal);
        s.load(&legal, &[]);
        let through = Layer::new(
            &tar_with(|w| {
                w.file("lnk/pwned", 0o644, b"through the lower symlink\n");
            }),
            Compression::Gzip,
        );
        let mut img = Image::new(vec![base.clone(), planted.clone(), through.clone()]);
        img.runtime = serde_json::json!({"Cmd": ["/bin/true"]});
        let dir = s.scratch("bad");
        OciBuilder::new()
            .image(Some("latest"), img)
            .write_layout(&dir);
        Hostile {
            source: dir,
            names: blob_names(&through),
            reasons: ESCAPE.to_vec(),
            outside: vec![outside_dir.join("pwned")],
        }
    });
    let _ = fs::remove_dir_all(&outside_dir);
}

#[test]
fn bad_whiteout_names() {
    for (tag, name) in [
        ("wh-bare", "etc/.wh."),
        ("wh-dotdot", "etc/.wh.."),
        ("wh-up", "etc/.wh.../../x"),
    ] {
        refused(tag, |s, base| {
            let top = Layer::new(
                &tar_with(|w| {
                    w.dir("etc/", 0o755).file(name, 0o644, b"");
                }),
                Compression::Gzip,
            );
            let (source, _) = layout_with(s, base, top.clone(), |_| {});
            let mut reasons = vec!["whiteout", ".wh."];
            reasons.extend_from_slice(ESCAPE);
            Hostile {
                source,
                names: blob_names(&top),
                reasons,
                outside: vec![],
            }
        });
    }
}

/// Overlay-private xattrs in a layer must never take effect: lamina refuses the layer, or drops
/// (escapes) them, in which case the directory is not opaque and the lower file shows.
#[test]
fn overlay_xattrs_in_a_layer() {
    if !common::require_root() {
        return;
    }
    let s = Store::new("hostile-overlay-xattr");
    let lower = Layer::new(
        &tar_with(|w| {
            w.dir("d/", 0o755).file("d/lower", 0o644, b"lower\n");
        }),
        Compression::Gzip,
    );
    let upper = Layer::new(
        &tar_with(|w| {
            w.pax(&[
                ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
                ("SCHILY.xattr.user.overlay.opaque", b"y"),
            ])
            .dir("d/", 0o755)
            .pax(&[("SCHILY.xattr.trusted.overlay.redirect", b"/elsewhere")])
            .file("d/upper", 0o644, b"upper\n");
        }),
        Compression::Gzip,
    );
    let dir = s.scratch("ovx");
    OciBuilder::new()
        .image(Some("latest"), Image::new(vec![lower, upper.clone()]))
        .write_layout(&dir);
    let r = s.lamina(&[std::ffi::OsStr::new("load"), dir.as_os_str()]);
    if r.success() {
        for driver in ["overlay", "copy"] {
            let m = s.mount("ovx:latest", &["--read-only", "--driver", driver]);
            assert_eq!(
                common::list_dir(&m.join("d")),
                ["lower", "upper"],
                "{driver}: the xattr from the layer made d/ opaque"
            );
            s.umount(&m);
        }
    } else {
        assert_eq!(r.status, Some(1), "{}", r.describe());
        assert!(
            blob_names(&upper)
                .iter()
                .any(|n| r.stderr.contains(n.as_str())),
            "names the blob: {}",
            r.describe()
        );
        assert!(r.stderr.contains("overlay"), "says why: {}", r.describe());
        assert!(
            common::list_dir(&s.root.join("layers")).len() <= 1,
            "nothing of the refused layer stays"
        );
    }
}
