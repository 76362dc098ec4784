//! `lamina load` and `lamina import`: sources, ref naming, output lines, platforms, compressions,
//! every tar entry type (checked against umoci), layer sharing.

use crate::common::{self, layer_lines, loaded_images, Store};
use crate::oracle;
use lamina_testkit::docker::write_docker_archive;
use lamina_testkit::oci::{gzip, hex_of, sha256, zstd, Compression, Image, Layer, OciBuilder};
use lamina_testkit::tarw::{self, Header, TarWriter};
use lamina_testkit::tree::{self, treemanifest};
use std::fs;

/// A one-file layer, distinct per `tag`.
pub fn marker_layer(tag: &str) -> Layer {
    let mut w = TarWriter::new();
    w.dir("etc/", 0o755)
        .file(format!("etc/{tag}"), 0o644, format!("{tag}\n").as_bytes());
    Layer::new(&w.finish(), Compression::Gzip)
}

pub fn marker_image(tag: &str) -> Image {
    Image::new(vec![
        marker_layer(&format!("{tag}-base")),
        marker_layer(tag),
    ])
}

fn assert_layer_lines(r: &common::Run, img: &Image, what: &str) {
    let lines = layer_lines(r);
    assert_eq!(
        lines.len(),
        img.layers.len(),
        "one layer line per layer: {}",
        r.describe()
    );
    for ((id, kind), layer) in lines.iter().zip(&img.layers) {
        let ok_id = [hex_of(&layer.diff_id), hex_of(&layer.digest)]
            .iter()
            .any(|h| h.starts_with(id.as_str()));
        assert!(
            ok_id,
            "{id} is neither the diffID nor the digest of the layer: {}",
            r.describe()
        );
        assert_eq!(kind, what, "{}", r.describe());
    }
}

#[test]
fn layout_refs_are_named_as_docker_would() {
    if !common::require_root() {
        return;
    }
    let s = Store::new("load-names");
    let (a, b, c) = (marker_image("a"), marker_image("b"), marker_image("c"));
    let mut oci = OciBuilder::new();
    oci.image(Some("gzip"), a.clone())
        .image(Some("example.com/x/y:1"), b.clone())
        .image(Some("other:2"), c);
    let layout = s.scratch("myrepo");
    oci.write_layout(&layout);
    let r = s.load(&layout, &[]);
    let mut names = loaded_images(&r);
    names.sort();
    assert_eq!(
        names,
        ["example.com/x/y:1", "myrepo:gzip", "other:2"],
        "{}",
        r.describe()
    );
    for name in &names {
        s.ok(&["inspect", name]);
    }
    assert_eq!(
        layer_lines(&r)
            .iter()
            .filter(|(_, k)| k == "Loading layer")
            .count(),
        6,
        "{}",
        r.describe()
    );

    // the same again: nothing to unpack
    let again = s.load(&layout, &[]);
    assert!(
        layer_lines(&again)
            .iter()
            .all(|(_, k)| k == "Already exists"),
        "{}",
        again.describe()
    );
    assert_eq!(loaded_images(&again).len(), 3, "{}", again.describe());
}

#[test]
fn path_ref_loads_one_ref_and_tag_renames_it() {
    if !common::require_root() {
        return;
    }
    let s = Store::new("load-pathref");
    let (a, b) = (marker_image("pa"), marker_image("pb"));
    let mut oci = OciBuilder::new();
    oci.image(Some("one"), a.clone()).image(Some("two"), b);
    let layout = s.scratch("repo");
    oci.write_layout(&layout);

    let source = format!("{}:one", layout.display());
    let r = s.ok(&["load", &source]);
    assert_eq!(loaded_images(&r), ["repo:one"], "{}", r.describe());
    assert_layer_lines(&r, &a, "Loading layer");
    s.ok(&["inspect", "repo:one"]);
    assert_eq!(
        s.lamina(&["inspect", "repo:two"]).status,
        Some(1),
        "repo:two must not have been loaded"
    );

    let r = s.ok(&["load", &source, "--tag", "renamed"]);
    assert_eq!(loaded_images(&r), ["renamed:latest"], "{}", r.describe());
    let r = s.ok(&[
        "load",
        &format!("{}:two", layout.display()),
        "--tag",
        "renamed:v2",
    ]);
    assert_eq!(loaded_images(&r), ["renamed:v2"], "{}", r.describe());
    s.ok(&["inspect", "renamed:latest"]);
    s.ok(&["inspect", "renamed:v2"]);
}

#[test]
fn archives_load_with_their_names() {
    if !common::require_root() {
        return;
    }
    let s = Store::new("load-archives");
    let dir = s.scratch("in");
    let (a, b, c) = (marker_image("oa"), marker_image("da"), marker_image("bare"));
    let mut oci = OciBuilder::new();
    oci.image(Some("arch/oci:1"), a.clone());
    oci.write_oci_archive(&dir.join("o.tar"));
    let r = s.load(&dir.join("o.tar"), &[]);
    assert_eq!(loaded_images(&r), ["arch/oci:1"], "{}", r.describe());
    assert_layer_lines(&r, &a, "Loading layer");

    write_docker_archive(&b, &["docker.io/library/arch-docker:1"], &dir.join("d.tar"));
    let r = s.load(&dir.join("d.tar"), &[]);
    assert_eq!(
        loaded_images(&r),
        ["arch-docker:1"],
        "docker.io/library/ is the default: {}",
        r.describe()
    );
    assert_layer_lines(&r, &b, "Loading layer");

    // a bare ref in an archive is a tag of the repository named after the file
    let mut oci = OciBuilder::new();
    oci.image(Some("gz"), c);
    oci.write_oci_archive(&dir.join("plainname.tar"));
    let r = s.load(&dir.join("plainname.tar"), &[]);
    let names = loaded_images(&r);
    assert!(
        names.len() == 1 && names[0].starts_with("plainname") && names[0].ends_with(":gz"),
        "{}",
        r.describe()
    );

    for name in [
        "arch/oci:1",
        "arch-docker:1",
        "docker.io/library/arch-docker:1",
    ] {
        s.ok(&["inspect", name]);
    }
}

#[test]
fn shared_layers_already_exist() {
    if !common::require_root() {
        return;
    }
    let s = Store::new("load-shared");
    let base = marker_layer("shared-base");
    let a = Image::new(vec![base.clone(), marker_layer("top-a")]);
    let b = Image::new(vec![base.clone(), marker_layer("top-b")]);
    let (la, lb) = (s.scratch("a"), s.scratch("b"));
    OciBuilder::new()
        .image(Some("latest"), a.clone())
        .write_layout(&la);
    OciBuilder::new()
        .image(Some("latest"), b.clone())
        .write_layout(&lb);
    s.load(&la, &[]);
    let r = s.load(&lb, &[]);
    assert_eq!(layer_lines(&r).len(), 2, "{}", r.describe());
    assert_eq!(
        line_for(&r, &base).as_deref(),
        Some("Already exists"),
        "{}",
        r.describe()
    );
    assert_eq!(
        line_for(&r, &b.layers[1]).as_deref(),
        Some("Loading layer"),
        "{}",
        r.describe()
    );

    // the same tar compressed otherwise has the same diffID: nothing new to unpack
    let mut w = TarWriter::new();
    w.dir("etc/", 0o755)
        .file("etc/shared-base", 0o644, b"shared-base\n");
    let zbase = Layer::new(&w.finish(), Compression::Zstd);
    assert_eq!(
        zbase.diff_id, base.diff_id,
        "marker_layer and this tar must agree"
    );
    let lc = s.scratch("c");
    let c = Image::new(vec![zbase.clone(), marker_layer("top-a")]);
    OciBuilder::new().image(Some("latest"), c).write_layout(&lc);
    let r = s.load(&lc, &[]);
    assert!(
        layer_lines(&r).iter().all(|(_, k)| k == "Already exists"),
        "zstd copy of stored layers: {}",
        r.describe()
    );

    let dirs = common::list_dir(&s.root.join("layers"));
    assert_eq!(dirs.len(), 3, "shared base stored once: {dirs:?}");
    assert!(
        dirs.iter().any(|d| d == hex_of(&base.diff_id)),
        "layer dirs are keyed by diffID: {dirs:?}"
    );
}

/// What the load said about this layer (matched by diffID or blob digest prefix).
fn line_for(r: &common::Run, layer: &Layer) -> Option<String> {
    layer_lines(r)
        .into_iter()
        .find(|(id, _)| {
            hex_of(&layer.diff_id).starts_with(id.as_str())
                || hex_of(&layer.digest).starts_with(id.as_str())
        })
        .map(|(_, kind)| kind)
}

/// Whiteouts hide only lower layers; an opaque marker applies wherever it stands in the archive.
#[test]
fn whiteout_rules() {
    if !common::require_root() {
        return;
    }
    let s = Store::new("load-whiteouts");
    let mut lower = TarWriter::new();
    lower
        .dir("w/", 0o755)
        .file("w/a", 0o644, b"a\n")
        .file("w/b", 0o644, b"b\n");
    lower
        .file("zz", 0o644, b"lower zz\n")
        .dir("keep/", 0o755)
        .file("keep/k", 0o644, b"k\n");
    let mut upper = TarWriter::new();
    upper
        .dir("w/", 0o755)
        .file("w/new1", 0o644, b"1\n")
        .file("w/.wh..wh..opq", 0o644, b"");
    upper.file("w/new2", 0o644, b"2\n");
    upper
        .file(".wh.zz", 0o644, b"")
        .file("zz", 0o644, b"upper zz\n");
    upper
        .dir("keep/", 0o755)
        .file("keep/.wh.k", 0o644, b"")
        .file("keep/k2", 0o644, b"k2\n");
    let img = Image::new(vec![
        Layer::new(&lower.finish(), Compression::Gzip),
        Layer::new(&upper.finish(), Compression::Gzip),
    ]);
    let layout = s.scratch("wh");
    OciBuilder::new()
        .image(Some("t"), img)
        .write_layout(&layout);
    s.load(&layout, &[]);
    for driver in ["overlay", "copy"] {
        let m = s.mount("wh:t", &["--read-only", "--driver", driver]);
        assert_eq!(
            common::list_dir(&m.join("w")),
            ["new1", "new2"],
            "{driver}: opaque w/"
        );
        assert_eq!(
            fs::read(m.join("zz")).expect("zz"),
            b"upper zz\n",
            "{driver}"
        );
        assert_eq!(common::list_dir(&m.join("keep")), ["k2"], "{driver}");
        s.umount(&m);
    }
}

#[test]
fn index_picks_the_platform() {
    if !common::require_root() {
        return;
    }
    let s = Store::new("load-platform");
    let amd = Image::new(vec![marker_layer("is-amd64")]);
    let mut arm = Image::new(vec![marker_layer("is-arm64")]);
    arm.architecture = "arm64".into();
    arm.variant = Some("v8".into());
    let layout = s.scratch("multi");
    OciBuilder::new()
        .index(Some("latest"), vec![arm, amd])
        .write_layout(&layout);

    let r = s.load(&layout, &[]);
    assert_eq!(loaded_images(&r), ["multi:latest"], "{}", r.describe());
    let m = s.mount("multi:latest", &["--read-only"]);
    assert!(
        m.join("etc/is-amd64").exists(),
        "the host platform (linux/amd64) must be chosen"
    );
    s.umount(&m);

    s.load(
        &layout,
        &["--platform", "linux/arm64", "--tag", "multi:arm"],
    );
    let m = s.mount("multi:arm", &["--read-only"]);
    assert!(
        m.join("etc/is-arm64").exists(),
        "linux/arm64 matches arm64/v8 (containerd's normalisation)"
    );
    s.umount(&m);

    let r = s
        .lamina(&[
            "load",
            &layout.to_string_lossy(),
            "--platform",
            "linux/s390x",
        ])
        .expect_code(1);
    assert!(
        r.stderr.contains("linux/amd64") && r.stderr.contains("linux/arm64"),
        "the error lists what is there: {}",
        r.describe()
    );
}

/// gzip with two members (pigz), zstd after a skippable frame, plain: same tree.
#[test]
fn every_compression_unpacks() {
    if !common::require_root() {
        return;
    }
    let mut w = TarWriter::new();
    w.dir("data/", 0o755)
        .file("data/one", 0o644, &vec![b'1'; 300_000])
        .file("data/two", 0o600, b"two\n");
    let tar = w.finish();
    let half = tar.len() / 2 / 512 * 512;
    let mut two_members = gzip(&tar[..half]);
    two_members.extend(gzip(&tar[half..]));
    let mut skippable = vec![0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4];
    skippable.extend(zstd(&tar));
    let layers = [
        (
            "gzip2",
            Layer::from_blob(
                two_members,
                "application/vnd.oci.image.layer.v1.tar+gzip",
                sha256(&tar),
            ),
        ),
        (
            "zstdskip",
            Layer::from_blob(
                skippable,
                "application/vnd.oci.image.layer.v1.tar+zstd",
                sha256(&tar),
            ),
        ),
        ("plain", Layer::new(&tar, Compression::None)),
    ];
    for (tag, layer) in layers {
        let s = Store::new(&format!("load-{tag}"));
        let layout = s.scratch(tag);
        OciBuilder::new()
            .image(Some("latest"), Image::new(vec![layer]))
            .write_layout(&layout);
        s.load(&layout, &[]);
        let m = s.mount(&format!("{tag}:latest"), &["--read-only"]);
        assert_eq!(
            fs::read(m.join("data/one")).expect("data/one"),
            vec![b'1'; 300_000],
            "{tag}"
        );
        assert_eq!(
            fs::read(m.join("data/two")).expect("data/two"),
            b"two\n",
            "{tag}"
        );
        s.umount(&m);
    }
}

/// A layer with every entry type and the awkward cases, over a base layer; compared with umoci.
pub fn every_entry_type_image() -> Image {
    let mut base = TarWriter::new();
    base.dir("etc/", 0o755)
        .file("etc/base-file", 0o644, b"from the base layer\n")
        .dir("tmp/", 0o1777)
        .dir("opq/", 0o755)
        .file("opq/hidden", 0o644, b"hidden by the opaque marker\n")
        .file("opq/also-hidden", 0o644, b"x")
        .dir("gone/", 0o700)
        .file("gone/file", 0o644, b"x")
        .file("etc/deleted", 0o644, b"deleted above\n");
    let mut w = TarWriter::new();
    let long = format!("long/{}/{}", "n".repeat(120), "f".repeat(120));
    w.dir("edge/", 0o755)
        .file("edge/file", 0o640, b"plain file\n")
        .entry(
            Header {
                uid: 1000,
                gid: 1000,
                ..Header::new("edge/owned", tarw::REG)
            },
            b"owned by 1000\n",
        )
        .symlink("edge/rel-link", "../etc/base-file")
        .symlink("edge/abs-link", "/etc/base-file")
        .symlink("edge/dangling", "/nowhere")
        .hardlink("edge/hard", "edge/file")
        .entry(
            Header {
                dev: (1, 3),
                mode: 0o666,
                ..Header::new("edge/null", tarw::CHAR)
            },
            b"",
        )
        .entry(
            Header {
                dev: (7, 0),
                mode: 0o660,
                ..Header::new("edge/loop0", tarw::BLOCK)
            },
            b"",
        )
        .entry(
            Header {
                mode: 0o644,
                ..Header::new("edge/fifo", tarw::FIFO)
            },
            b"",
        )
        .file("edge/setuid", 0o4755, b"#!/bin/sh\n")
        .file("edge/setgid", 0o2755, b"#!/bin/sh\n")
        .dir("edge/sticky/", 0o1777)
        .file("edge/mode000", 0o000, b"nobody reads me\n")
        .entry(
            Header {
                mtime: 4_102_444_800,
                ..Header::new("edge/future", tarw::REG)
            },
            b"2100\n",
        )
        .pax(&[
            ("SCHILY.xattr.user.comment", b"a comment"),
            ("SCHILY.xattr.user.binary", b"\x00\x01\xff"),
        ])
        .file("edge/xattrs", 0o644, b"xattrs\n")
        .pax(&[("uid", b"3000000"), ("gid", b"3000001")])
        .file("edge/big-ids", 0o644, b"big ids\n")
        .pax(&[("path", long.as_bytes())])
        .file("placeholder-name", 0o644, b"pax path\n")
        .entry(
            Header {
                size: 0,
                ..Header::new("././@LongLink", b'L')
            },
            format!("gnu/{}\0", "g".repeat(150)).as_bytes(),
        )
        .file("gnu-placeholder", 0o644, b"gnu long name\n")
        .file(b"edge/non-utf8-\xff\xfe", 0o644, b"bytes\n")
        .file("edge/with space", 0o644, b"space\n")
        .dir("edge/ro-dir/", 0o555)
        .file("edge/ro-dir/inside", 0o644, b"in a read-only dir\n")
        // implied parents: tmp/ and etc/ are not listed in this layer
        .file("tmp/implied", 0o644, b"tmp stays 1777\n")
        .file("etc/.wh.deleted", 0o644, b"")
        .file(".wh.gone", 0o644, b"")
        .dir("opq/", 0o755)
        .file("opq/.wh..wh..opq", 0o644, b"")
        .file("opq/new", 0o644, b"new in the opaque dir\n");
    // directories get their mtime after their children: give some one to check
    w.entry(
        Header {
            mtime: 1_234_567_890,
            ..Header::new("edge/dated-dir/", tarw::DIR)
        },
        b"",
    );
    w.file("edge/dated-dir/child", 0o644, b"child\n");
    Image::new(vec![
        Layer::new(&base.finish(), Compression::Gzip),
        Layer::new(&w.finish(), Compression::Zstd),
    ])
}

#[test]
fn every_entry_type_matches_umoci() {
    if !common::require_root() || !common::have_tool("umoci") {
        return;
    }
    let s = Store::new("load-entries");
    let img = every_entry_type_image();
    // umoci 0.4 reads no zstd: the oracle gets the same tars gzip-compressed
    let oracle_layout = s.scratch("oracle-oci");
    let mut gz = img.clone();
    for l in &mut gz.layers {
        if l.media_type.ends_with("zstd") {
            let tar = zstd::decode_all(&l.blob[..]).expect("our own zstd");
            *l = Layer::new(&tar, Compression::Gzip);
        }
    }
    OciBuilder::new()
        .image(Some("t"), gz)
        .write_layout(&oracle_layout);
    let expected = oracle::oracle(&oracle_layout, "t");
    assert!(
        expected.contains_key("/edge/null"),
        "oracle must hold the device"
    );

    let layout = s.scratch("entries");
    OciBuilder::new()
        .image(Some("t"), img)
        .write_layout(&layout);
    s.load(&layout, &[]);
    for driver in ["overlay", "copy"] {
        oracle::check_mount(&s, "entries:t", driver, &expected);
    }
    // the mtime of a directory is set after its children were written
    let m = s.mount("entries:t", &["--read-only"]);
    let md = fs::metadata(m.join("edge/dated-dir")).expect("dated-dir");
    assert_eq!(std::os::unix::fs::MetadataExt::mtime(&md), 1_234_567_890);
    let tmp = fs::metadata(m.join("tmp")).expect("tmp");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&tmp.permissions()) & 0o7777,
        0o1777,
        "implied tmp/ keeps 1777"
    );
    s.umount(&m);
}

/// A hardlink in an upper layer to a file of a lower layer shows that file's content.
#[test]
fn hardlink_into_lower_layer() {
    if !common::require_root() {
        return;
    }
    let s = Store::new("load-hardlink-lower");
    let mut base = TarWriter::new();
    base.dir("etc/", 0o755)
        .file("etc/target", 0o640, b"lower content\n");
    let mut top = TarWriter::new();
    top.hardlink("etc/link-to-lower", "etc/target");
    let img = Image::new(vec![
        Layer::new(&base.finish(), Compression::Gzip),
        Layer::new(&top.finish(), Compression::Gzip),
    ]);
    let layout = s.scratch("hl");
    OciBuilder::new()
        .image(Some("t"), img)
        .write_layout(&layout);
    s.load(&layout, &[]);
    for driver in ["overlay", "copy"] {
        let m = s.mount("hl:t", &["--read-only", "--driver", driver]);
        assert_eq!(
            fs::read(m.join("etc/link-to-lower")).expect("link"),
            b"lower content\n",
            "{driver}"
        );
        let md = fs::metadata(m.join("etc/link-to-lower")).expect("stat");
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o7777,
            0o640,
            "{driver}"
        );
        s.umount(&m);
    }
}

/// `lamina import DIR|TAR NAME:TAG` makes a one-layer image of that tree.
#[test]
fn import_dir_and_tar() {
    if !common::require_root() {
        return;
    }
    let s = Store::new("import");
    let src = s.scratch("rootfs");
    fs::create_dir_all(src.join("bin")).expect("mkdir");
    fs::write(src.join("bin/tool"), b"#!/bin/sh\necho tool\n").expect("write");
    std::os::unix::fs::symlink("tool", src.join("bin/alias")).expect("symlink");
    fs::hard_link(src.join("bin/tool"), src.join("bin/tool2")).expect("link");
    fs::create_dir(src.join("empty")).expect("mkdir");
    let expected = treemanifest(&src);

    s.ok(&["import", &src.to_string_lossy(), "imported:dir"]);
    let m = s.mount("imported:dir", &["--read-only"]);
    let how = tree::ORACLE;
    tree::assert_same("import of a directory", &expected, &treemanifest(&m), how);
    s.umount(&m);

    let tarfile = s.base.join("rootfs.tar");
    common::run(
        std::process::Command::new("tar")
            .arg("-C")
            .arg(&src)
            .arg("-cf")
            .arg(&tarfile)
            .arg("."),
        common::LIMIT,
    )
    .expect_ok();
    s.ok(&["import", &tarfile.to_string_lossy(), "imported:tar"]);
    let m = s.mount("imported:tar", &["--read-only"]);
    tree::assert_same("import of a tar", &expected, &treemanifest(&m), how);
    s.umount(&m);
}
