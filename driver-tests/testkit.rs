//! The testkit's writers and walker checked against independent readers: the `tar` crate reads
//! what `tarw` writes, umoci unpacks what `oci` writes, `tree`'s walker agrees with
//! ../shared/tools/treemanifest.py and sees `layerdir`'s entries as meant. (Driver-tests, so
//! that `make test` runs them; the testkit crate itself is not a test target.)

use crate::common;
use lamina_testkit::docker::write_docker_archive;
use lamina_testkit::env;
use lamina_testkit::layerdir::{LayerDir, OPAQUE_XATTR};
use lamina_testkit::oci::{hex_of, sha256, Compression, Image, Layer, OciBuilder, REF_NAME};
use lamina_testkit::tarw::{Header, TarWriter, GNU_MAGIC, REG, SYMLINK};
use lamina_testkit::tree::{self, differences, parse, walk_lines, ALL, ORACLE};
use serde_json::Value;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

// ---- tarw

/// One member as the tar crate, an independent reader, sees it.
#[derive(Debug)]
struct ReadBack {
    path: String,
    kind: tar::EntryType,
    uid: u64,
    mode: u32,
    link: Option<String>,
    pax_keys: Vec<String>,
    body: String,
}

/// Every member of `bytes`, read by the tar crate.
fn read_back(bytes: &[u8]) -> Vec<ReadBack> {
    let mut ar = tar::Archive::new(bytes);
    let mut seen = Vec::new();
    for entry in ar.entries().expect("entries") {
        let mut e = entry.expect("entry");
        let pax_keys = e
            .pax_extensions()
            .expect("pax")
            .map(|exts| {
                exts.filter_map(|x| x.ok())
                    .filter_map(|x| x.key().ok().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let mut body = String::new();
        e.read_to_string(&mut body).expect("body");
        seen.push(ReadBack {
            path: e.path().expect("path").to_string_lossy().into_owned(),
            kind: e.header().entry_type(),
            uid: e.header().uid().expect("uid"),
            mode: e.header().mode().expect("mode"),
            link: e
                .link_name()
                .expect("link")
                .map(|l| l.to_string_lossy().into_owned()),
            pax_keys,
            body,
        });
    }
    seen
}

// the tar crate, as an independent reader, must see what we meant to write
#[test]
fn tar_crate_reads_what_we_write() {
    let long = "d/".repeat(80) + "file";
    let mut w = TarWriter::new();
    w.dir("etc/", 0o755)
        .file("etc/hosts", 0o600, b"127.0.0.1 localhost\n")
        .symlink("etc/link", "hosts")
        .hardlink("etc/hard", "etc/hosts")
        .pax(&[
            ("path", long.as_bytes()),
            ("SCHILY.xattr.user.note", b"hi"),
            ("uid", b"3000000"),
        ])
        .file("placeholder", 0o644, b"x");
    let bytes = w.finish();
    let seen = read_back(&bytes);
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(seen[1].path, "etc/hosts");
    assert_eq!(seen[1].mode, 0o600);
    assert_eq!(seen[1].body, "127.0.0.1 localhost\n");
    assert!(seen[2].kind.is_symlink() && seen[2].link.as_deref() == Some("hosts"));
    assert!(seen[3].kind.is_hard_link() && seen[3].link.as_deref() == Some("etc/hosts"));
    assert_eq!(seen[4].path, long, "PAX path must override the header name");
    assert_eq!(seen[4].uid, 3_000_000, "PAX uid");
    assert!(
        seen[4]
            .pax_keys
            .iter()
            .any(|k| k == "SCHILY.xattr.user.note"),
        "PAX xattr record"
    );
}

#[test]
fn hostile_names_and_bad_checksums_are_written_verbatim() {
    let mut w = TarWriter::new();
    w.file("../../escape", 0o644, b"x");
    let bytes = w.finish();
    assert_eq!(&bytes[..12], b"../../escape");
    // the tar crate refuses to unpack it, which is what makes it a useful case
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ar = tar::Archive::new(&bytes[..]);
    let mut e = ar
        .entries()
        .expect("entries")
        .next()
        .expect("one")
        .expect("entry");
    assert!(!e
        .unpack_in(dir.path())
        .expect("unpack_in reports refusal as Ok(false)"));

    let mut h = Header::new("file", REG);
    h.checksum_skew = 1;
    let mut w = TarWriter::new();
    w.entry(h, b"data");
    let bytes = w.finish();
    let mut ar = tar::Archive::new(&bytes[..]);
    let first = ar.entries().expect("entries").next().expect("one entry");
    assert!(first.is_err(), "a skewed checksum must not parse");
}

// ---- oci

fn small_image() -> Image {
    let mut base = TarWriter::new();
    base.dir("etc/", 0o755).file("etc/hello", 0o644, b"hello\n");
    let mut top = TarWriter::new();
    top.dir("etc/", 0o755)
        .file("etc/.wh.hello", 0o644, b"")
        .file("etc/top", 0o600, b"top\n");
    Image::new(vec![
        Layer::new(&base.finish(), Compression::Gzip),
        Layer::new(&top.finish(), Compression::None),
    ])
}

#[test]
fn layout_is_self_consistent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = small_image();
    let mut b = OciBuilder::new();
    b.image(Some("t1"), img.clone());
    b.write_layout(dir.path());
    let index: Value =
        serde_json::from_slice(&fs::read(dir.path().join("index.json")).expect("index"))
            .expect("json");
    let desc = &index["manifests"][0];
    assert_eq!(desc["annotations"][REF_NAME], "t1");
    let mdigest = desc["digest"].as_str().expect("digest");
    let mbytes =
        fs::read(dir.path().join("blobs/sha256").join(hex_of(mdigest))).expect("manifest blob");
    assert_eq!(sha256(&mbytes), mdigest);
    let manifest: Value = serde_json::from_slice(&mbytes).expect("json");
    for l in manifest["layers"].as_array().expect("layers") {
        let d = l["digest"].as_str().expect("digest");
        let bytes = fs::read(dir.path().join("blobs/sha256").join(hex_of(d))).expect("layer blob");
        assert_eq!(sha256(&bytes), d);
        assert_eq!(bytes.len() as u64, l["size"].as_u64().expect("size"));
    }
    let config = fs::read(
        dir.path()
            .join("blobs/sha256")
            .join(hex_of(&img.config_digest())),
    )
    .expect("config");
    let config: Value = serde_json::from_slice(&config).expect("json");
    assert_eq!(
        config["rootfs"]["diff_ids"][0].as_str(),
        Some(img.layers[0].diff_id.as_str())
    );
}

/// umoci, an independent implementation, unpacks what the builder writes.
#[test]
fn umoci_reads_builder_layouts() {
    if !common::require_root() || !common::have_tool("umoci") {
        return;
    }
    let dir = tempfile::tempdir_in("/var/tmp").expect("tempdir");
    let mut b = OciBuilder::new();
    b.image(Some("t1"), small_image());
    b.write_layout(&dir.path().join("oci"));
    let rootfs =
        crate::oracle::umoci_unpack(&dir.path().join("oci"), "t1", &dir.path().join("bundle"));
    assert_eq!(fs::read(rootfs.join("etc/top")).expect("etc/top"), b"top\n");
    assert!(
        !rootfs.join("etc/hello").exists(),
        "whiteout of the lower file must apply"
    );
}

#[test]
fn archives_list_the_blobs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = small_image();
    let mut b = OciBuilder::new();
    b.image(Some("x:1"), img.clone());
    b.write_oci_archive(&dir.path().join("a.tar"));
    write_docker_archive(&img, &["x:1"], &dir.path().join("d.tar"));
    let names = |p: &Path| -> Vec<String> {
        let bytes = fs::read(p).expect("archive");
        let mut ar = tar::Archive::new(&bytes[..]);
        ar.entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    };
    let oci = names(&dir.path().join("a.tar"));
    assert!(oci.contains(&"index.json".to_string()) && oci.contains(&"oci-layout".to_string()));
    assert!(oci.contains(&format!("blobs/sha256/{}", hex_of(&img.layers[0].digest))));
    let docker = names(&dir.path().join("d.tar"));
    assert!(docker.contains(&"manifest.json".to_string()));
    assert!(docker.contains(&format!("{}.json", hex_of(&img.config_digest()))));
}

// ---- tree

/// The python tool and our walker agree on a tree with every kind of entry we can make.
#[test]
fn walker_matches_treemanifest_py() {
    let Some(shared) = env::shared_file(tree::TREEMANIFEST_PY) else {
        common::skip("../shared missing: walker_matches_treemanifest_py");
        return;
    };
    let dir = tempfile::tempdir_in("/var/tmp").expect("tempdir");
    let d = dir.path();
    std::fs::create_dir(d.join("sub")).expect("mkdir");
    std::fs::write(d.join("sub/a b"), b"hello").expect("write");
    std::fs::hard_link(d.join("sub/a b"), d.join("hard")).expect("link");
    std::os::unix::fs::symlink("../x\u{e9}", d.join("sub/link")).expect("symlink");
    std::fs::write(d.join(std::ffi::OsStr::from_bytes(b"bad-\xff")), b"").expect("write");
    let _ = rustix::fs::lsetxattr(
        d.join("hard"),
        "user.k=1",
        b"v\x00",
        rustix::fs::XattrFlags::empty(),
    );
    let py = tree::run_treemanifest_py(&shared, d);
    let ours = walk_lines(d).join("\n");
    let (a, b) = (parse(&py), parse(&ours));
    tree::assert_same("walker vs treemanifest.py", &a, &b, ALL);
    assert_eq!(a.len(), 6);
}

#[test]
fn comparison_ignores_overlay_xattrs_and_dir_mtimes_only() {
    let a = parse("/ dir mode=0755 uid=0 gid=0 mtime=1\n/d dir mode=0755 uid=0 gid=0 mtime=5\n/f file mode=0644 uid=0 gid=0 size=1 sha256=aa mtime=7");
    let b = parse("/ dir mode=0755 uid=0 gid=0 mtime=2\n/d dir mode=0755 uid=0 gid=0 xattr=trusted.overlay.opaque=79 mtime=6\n/f file mode=0644 uid=0 gid=0 size=1 sha256=aa mtime=7");
    assert!(differences(&a, &b, ORACLE).is_empty());
    let c = parse("/ dir mode=0755 uid=0 gid=0 mtime=1\n/d dir mode=0755 uid=0 gid=0 mtime=5\n/f file mode=0644 uid=0 gid=0 size=1 sha256=aa mtime=8");
    assert_eq!(differences(&a, &c, ORACLE).len(), 1, "file mtimes count");
}

/// What the unit tests' archives need besides plain entries: GNU long names, PAX names, GNU
/// headers and ids too big for octal, read back the same by the tar crate.
#[test]
fn tar_crate_reads_long_names_and_big_ids() {
    let long = "l/".repeat(70) + "name";
    let target = "t/".repeat(60) + "target";
    let mut link = Header::new(long.as_bytes(), SYMLINK);
    link.link = target.clone().into_bytes();
    let mut big = Header::new("big", REG);
    big.uid = 5_000_000;
    big.magic = GNU_MAGIC;
    let mut w = TarWriter::new();
    w.gnu_long(Header::new(long.as_bytes(), REG), b"gnu")
        .entry_with_pax(link, &[("SCHILY.xattr.user.a", b"1")], b"")
        .entry(big, b"x");
    let bytes = w.finish();
    let seen = read_back(&bytes);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(
        (seen[0].path.as_str(), seen[0].body.as_str()),
        (long.as_str(), "gnu")
    );
    assert_eq!(seen[1].path, long);
    assert_eq!(seen[1].link.as_deref(), Some(target.as_str()));
    assert_eq!((seen[2].uid, seen[2].body.as_str()), (5_000_000, "x"));
}

/// A layer dir built by the testkit, as the tree walker sees it: overlay whiteouts and opaque
/// dirs, owners, hardlinks, and mtimes to the nanosecond when asked.
#[test]
fn layer_dirs_are_described_in_the_manifest_format() {
    if !common::require_root() {
        return;
    }
    let dir = tempfile::tempdir_in("/var/tmp").expect("tempdir");
    let l = LayerDir::new(dir.path().join("layer"));
    l.dir("etc", 0o755)
        .file("etc/a", b"hi", 0o600)
        .hardlink("etc/b", "etc/a")
        .symlink("etc/c", "a")
        .whiteout("etc/gone")
        .dir("opq", 0o700)
        .opaque("opq")
        .owner("etc/a", 7, 8)
        .mtime("etc/a", 1_600_000_000, 5);
    let m = tree::describe_ns(l.path());
    let field = |path: &str, k: &str| m[path].fields.get(k).cloned().unwrap_or_default();
    assert_eq!(m["/etc/gone"].kind, "char");
    assert_eq!(field("/etc/gone", "dev"), "0:0");
    assert_eq!(field("/etc/gone", "mode"), "0000");
    assert_eq!(
        m["/opq"].xattrs.get(OPAQUE_XATTR).map(String::as_str),
        Some("79")
    );
    assert_eq!(
        (field("/etc/a", "uid"), field("/etc/a", "gid")),
        ("7".into(), "8".into())
    );
    assert_eq!(field("/etc/a", "mtime"), "1600000000.000000005");
    assert_eq!(field("/etc/b", "hardlink"), "/etc/a");
    assert_eq!(field("/etc/c", "target"), "a");
    assert_eq!(
        tree::describe(l.path())["/etc/a"].fields["mtime"],
        "1600000000"
    );
}
