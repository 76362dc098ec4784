//! Issue 3: bundles that crun and runc run, writable containers, diff, commit, pinning, and
//! many mounts of one image.

use crate::common::{self, Run, Store};
use lamina_testkit::oci::{Compression, Image, Layer, OciBuilder};
use lamina_testkit::tarw::TarWriter;
use lamina_testkit::tree::{self, treemanifest};
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const RUNTIMES: [&str; 2] = ["crun", "runc"];

fn run_bundle_script() -> Option<PathBuf> {
    let p = common::repo_dir().join("scripts/run-bundle.sh");
    if p.is_file() {
        Some(p)
    } else {
        common::skip("scripts/run-bundle.sh is missing");
        None
    }
}

fn can_run_containers() -> bool {
    common::require_root()
        && common::have_tool("crun")
        && common::have_tool("runc")
        && run_bundle_script().is_some()
}

/// Runs the bundle with RUNTIME; `args` replaces process.args in its config.json first.
fn run_container(runtime: &str, bundle: &Path, args: Option<&[&str]>) -> Run {
    let _long = common::long_mountinfo();
    if let Some(args) = args {
        let path = bundle.join("config.json");
        let mut config: Value = serde_json::from_slice(&fs::read(&path).expect("config.json"))
            .expect("config.json is JSON");
        config["process"]["args"] = json!(args);
        fs::write(&path, serde_json::to_vec_pretty(&config).expect("json"))
            .expect("write config.json");
    }
    let id = common::unique(&format!("lamina-test-{runtime}-"));
    let script = run_bundle_script().expect("checked by can_run_containers");
    common::run(
        Command::new(script).arg(runtime).arg(bundle).arg(&id),
        common::LIMIT,
    )
}

fn mount_bundle(s: &Store, image: &str, extra: &[&str]) -> PathBuf {
    let bundle = s.base.join(common::unique("bundle-"));
    let mut args = vec!["mount", image, "--bundle"];
    let b = bundle.to_string_lossy().into_owned();
    args.push(&b);
    args.extend_from_slice(extra);
    s.ok(&args);
    let copy_rw = extra.contains(&"copy") && !extra.contains(&"--read-only");
    assert!(
        copy_rw || common::is_mountpoint(&bundle.join("rootfs")),
        "the image is mounted at BUNDLE/rootfs"
    );
    let config: Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).expect("config.json"))
            .expect("json");
    assert_eq!(
        config["process"]["terminal"],
        json!(false),
        "no tty here: terminal must be false"
    );
    bundle
}

#[test]
fn busybox_runs_with_crun_and_runc() {
    if !can_run_containers() {
        return;
    }
    let Some(images) = common::test_images() else {
        return;
    };
    let s = Store::new("rt-busybox");
    s.load(&images.join("busybox/busybox-oci.tar"), &[]);
    for rt in RUNTIMES {
        let bundle = mount_bundle(&s, "busybox:latest", &[]);
        let r = run_container(rt, &bundle, None).expect_ok();
        assert_eq!(
            r.stdout,
            "hello\n",
            "{rt}: the image's Cmd: {}",
            r.describe()
        );
        let r = run_container(rt, &bundle, Some(&["/bin/sh", "-c", "echo given; exit 3"]))
            .expect_code(3);
        assert_eq!(r.stdout, "given\n", "{rt}: {}", r.describe());
        let r = run_container(rt, &bundle, Some(&["/bin/false"])).expect_code(1);
        assert!(r.stdout.is_empty(), "{rt}: {}", r.describe());
        s.umount(&bundle.join("rootfs"));
    }
}

/// A busybox root filesystem made here, for configs no fixture has.
fn busybox_layer(passwd: &str, group: &str) -> Option<Layer> {
    let busybox = fs::read("/bin/busybox").ok()?;
    let mut w = TarWriter::new();
    w.dir("bin/", 0o755).file("bin/busybox", 0o755, &busybox);
    for applet in ["sh", "id", "pwd", "echo", "cat", "ls", "stat", "true"] {
        w.symlink(format!("bin/{applet}"), "busybox");
    }
    w.dir("etc/", 0o755)
        .file("etc/passwd", 0o644, passwd.as_bytes())
        .file("etc/group", 0o644, group.as_bytes());
    w.dir("home/", 0o755)
        .dir("home/app/", 0o755)
        .dir("tmp/", 0o1777);
    for d in ["proc/", "sys/", "dev/"] {
        w.dir(d, 0o755);
    }
    Some(Layer::new(&w.finish(), Compression::Gzip))
}

#[test]
fn bundle_follows_the_image_config() {
    if !can_run_containers() {
        return;
    }
    let Some(layer) = busybox_layer(
        "root:x:0:0::/root:/bin/sh\napp:x:1234:2345::/home/app:/bin/sh\n",
        "root:x:0:\napps:x:2345:\nextra:x:777:app\n",
    ) else {
        common::skip("/bin/busybox missing");
        return;
    };
    let s = Store::new("rt-config");
    let mut img = Image::new(vec![layer]);
    img.runtime = json!({
        "User": "app",
        "WorkingDir": "/home/app",
        "Env": ["PATH=/bin", "FOO=bar baz"],
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": ["id -u; id -g; id -G; pwd; echo \"$FOO\""],
    });
    let mut numeric = img.clone();
    numeric.runtime["User"] = json!("1234:777");
    let layout = s.scratch("cfg");
    OciBuilder::new()
        .image(Some("named"), img)
        .image(Some("numeric"), numeric)
        .write_layout(&layout);
    s.load(&layout, &[]);
    for rt in RUNTIMES {
        let bundle = mount_bundle(&s, "cfg:named", &[]);
        let r = run_container(rt, &bundle, None).expect_ok();
        let lines: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(
            lines.first(),
            Some(&"1234"),
            "{rt}: uid of user app: {}",
            r.describe()
        );
        assert_eq!(
            lines.get(1),
            Some(&"2345"),
            "{rt}: its primary group: {}",
            r.describe()
        );
        assert!(
            lines
                .get(2)
                .is_some_and(|g| g.split(' ').any(|g| g == "777")),
            "{rt}: supplementary groups from /etc/group: {}",
            r.describe()
        );
        assert_eq!(
            lines.get(3),
            Some(&"/home/app"),
            "{rt}: WorkingDir: {}",
            r.describe()
        );
        assert_eq!(
            lines.get(4),
            Some(&"bar baz"),
            "{rt}: Env: {}",
            r.describe()
        );
        s.umount(&bundle.join("rootfs"));

        let bundle = mount_bundle(&s, "cfg:numeric", &[]);
        let r = run_container(rt, &bundle, None).expect_ok();
        let lines: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(
            &lines[..2],
            ["1234", "777"],
            "{rt}: uid:gid as given: {}",
            r.describe()
        );
        s.umount(&bundle.join("rootfs"));
    }
}

fn debian_commands(s: &Store, image: &str, checks: &[(&[&str], &str)]) {
    for rt in RUNTIMES {
        let bundle = mount_bundle(s, image, &[]);
        let want_default =
            fs::read_to_string(bundle.join("rootfs/etc/debian_version")).expect("debian_version");
        let r = run_container(rt, &bundle, None).expect_ok();
        assert_eq!(
            r.stdout,
            want_default,
            "{rt}: default command cat /etc/debian_version: {}",
            r.describe()
        );
        for (args, want) in checks {
            let r = run_container(rt, &bundle, Some(args)).expect_ok();
            assert_eq!(
                r.stdout.trim_end(),
                *want,
                "{rt} {args:?}: {}",
                r.describe()
            );
        }
        let r = run_container(rt, &bundle, Some(&["/bin/sh", "-c", "exit 42"])).expect_code(42);
        drop(r);
        s.umount(&bundle.join("rootfs"));
    }
}

#[test]
fn debian_test_image_runs() {
    if !can_run_containers() {
        return;
    }
    let Some(images) = common::test_images() else {
        return;
    };
    let s = Store::new("rt-debian");
    s.load(&images.join("debian"), &[]);
    let checks: &[(&[&str], &str)] = &[
        (
            &["/bin/cat", "/opt/lamina/hello.txt"],
            "hello from the second layer",
        ),
        (&["/usr/bin/stat", "-c", "%a", "/tmp"], "1777"),
        (
            &[
                "/bin/sh",
                "-c",
                "cat /tmp/implied.txt; ls /usr/share/doc | wc -l",
            ],
            "tmp/ is not in this layer\n0",
        ),
    ];
    debian_commands(&s, "debian:test", checks);
}

#[test]
fn corpus_debian_runs() {
    if !can_run_containers() {
        return;
    }
    let Some(corpus) = common::corpus() else {
        return;
    };
    let s = Store::new("rt-corpus-debian");
    s.load(&corpus.join("oci/debian:gzip"), &[]);
    let checks: &[(&[&str], &str)] = &[(
        &[
            "/usr/bin/perl",
            "-MPOSIX",
            "-MText::Balanced",
            "-e",
            "print qq(ok\\n)",
        ],
        "ok",
    )];
    // the corpus image has no Cmd of its own that prints debian_version: give it one
    for rt in RUNTIMES {
        let bundle = mount_bundle(&s, "debian:gzip", &[]);
        let want =
            fs::read_to_string(bundle.join("rootfs/etc/debian_version")).expect("debian_version");
        let r = run_container(rt, &bundle, Some(&["/bin/cat", "/etc/debian_version"])).expect_ok();
        assert_eq!(r.stdout, want, "{rt}: {}", r.describe());
        for (args, want) in checks {
            let r = run_container(rt, &bundle, Some(args)).expect_ok();
            assert_eq!(
                r.stdout.trim_end(),
                *want,
                "{rt} {args:?}: {}",
                r.describe()
            );
        }
        s.umount(&bundle.join("rootfs"));
    }
}

const SCENARIO: &str = "set -e
echo data > /root/new.txt
mkdir /srv/newdir && echo x > /srv/newdir/f
rm /etc/issue.net
rm -rf /usr/share/common-licenses
rm -rf /var/log && mkdir /var/log && echo fresh > /var/log/new.log
mv /etc/issue /etc/issue.renamed
chmod 0600 /etc/debian_version
chmod 0700 /opt/lamina
rm /etc/host.conf && mkdir /etc/host.conf && echo in > /etc/host.conf/file
echo done";

fn writable_scenario(driver: &str) {
    if !can_run_containers() || !common::have_tool("skopeo") || !common::have_tool("umoci") {
        return;
    }
    let Some(images) = common::test_images() else {
        return;
    };
    let _heavy = common::heavy();
    let s = Store::new(&format!("rt-write-{driver}"));
    s.load(&images.join("debian"), &[]);
    let layers_before = treemanifest(&s.root.join("layers"));
    let id = common::unique("w");
    let bundle = mount_bundle(&s, "debian:test", &["--name", &id, "--driver", driver]);
    let r = run_container("crun", &bundle, Some(&["/bin/sh", "-c", SCENARIO])).expect_ok();
    assert_eq!(r.stdout, "done\n", "{}", r.describe());

    let rootfs = bundle.join("rootfs");
    assert!(rootfs.join("root/new.txt").is_file() && !rootfs.join("etc/issue.net").exists());
    assert!(
        !rootfs.join("usr/share/common-licenses").exists()
            && rootfs.join("etc/host.conf/file").is_file()
    );
    assert_eq!(
        common::list_dir(&rootfs.join("var/log")),
        ["new.log"],
        "deleted and recreated dir shows only new content"
    );
    let view = treemanifest(&rootfs);
    let all = tree::ALL;
    tree::assert_same(
        &format!("{driver}: stored layers after the container wrote"),
        &layers_before,
        &treemanifest(&s.root.join("layers")),
        all,
    );

    let diff = s.ok(&["diff", &id]);
    let lines: Vec<&str> = diff.stdout.lines().collect();
    for want in [
        "A /root/new.txt",
        "A /srv/newdir",
        "A /srv/newdir/f",
        "D /etc/issue.net",
        "D /usr/share/common-licenses",
        "A /etc/issue.renamed",
        "D /etc/issue",
        "C /etc/debian_version",
        "C /opt/lamina",
        "A /var/log/new.log",
        "A /etc/host.conf/file",
    ] {
        assert!(
            lines.contains(&want),
            "{driver}: diff lacks {want:?}: {}",
            diff.describe()
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| *l == "C /etc/host.conf" || *l == "A /etc/host.conf"),
        "{driver}: file replaced by dir: {}",
        diff.describe()
    );
    assert!(
        lines
            .iter()
            .all(|l| ["A /", "C /", "D /"].iter().any(|p| l.starts_with(p))),
        "{driver}: docker diff format: {}",
        diff.describe()
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("/etc/passwd") || l.contains("/usr/bin")),
        "{driver}: untouched paths listed: {}",
        diff.describe()
    );

    let name = format!("committed-{driver}:1");
    s.ok(&["commit", &id, &name]);
    let after = treemanifest(&s.root.join("layers"));
    let changed: Vec<String> = tree::differences(&layers_before, &after, all)
        .into_iter()
        .filter(|d| !d.starts_with("unexpected:"))
        // layers/ itself gains the new layer's dir, so its own mtime moves
        .filter(|d| !d.starts_with("differs: /\n"))
        .collect();
    assert!(
        changed.is_empty(),
        "{driver}: commit changed stored layers: {changed:?}"
    );
    let dirs_before = common::list_dir(&s.root.join("layers")).len();
    s.umount(&rootfs);

    let m = s.mount(&name, &["--read-only"]);
    tree::assert_same(
        &format!("{driver}: committed image vs the container's view"),
        &view,
        &treemanifest(&m),
        tree::ORACLE,
    );
    s.umount(&m);
    assert!(
        dirs_before >= 4,
        "the committed layer is stored beside the 3 it shares"
    );

    // the committed image, exported, is what umoci sees too (when `save` exists)
    let archive = s.base.join("committed.tar");
    let saved = s.lamina(&[
        std::ffi::OsStr::new("save"),
        name.as_ref(),
        "-o".as_ref(),
        archive.as_os_str(),
        "--format".as_ref(),
        "oci-archive".as_ref(),
    ]);
    if saved.status == Some(2) {
        common::skip("lamina save not there yet: umoci check of the committed image");
        return;
    }
    let saved = saved.expect_ok();
    let layout = s.base.join("committed-oci");
    let src = format!("oci-archive:{}", archive.display());
    let dst = format!("oci:{}:c", layout.display());
    common::run(
        Command::new("skopeo").args(["copy", "-q", &src, &dst]),
        common::LIMIT,
    )
    .expect_ok();
    drop(saved);
    let oracle = crate::oracle::umoci_unpack(&layout, "c", &s.base.join("committed-bundle"));
    tree::assert_same(
        &format!("{driver}: umoci unpack of the committed image vs the container's view"),
        &view,
        &treemanifest(&oracle),
        tree::ORACLE,
    );
}

#[test]
fn writable_overlay_container_diff_commit() {
    writable_scenario("overlay");
}

#[test]
fn writable_copy_container_diff_commit() {
    writable_scenario("copy");
}

#[test]
fn mounted_image_is_pinned() {
    if !common::require_root() {
        return;
    }
    let s = Store::new("rt-pin");
    let layout = s.scratch("pinned");
    OciBuilder::new()
        .image(Some("latest"), crate::load::marker_image("pin"))
        .write_layout(&layout);
    s.load(&layout, &[]);
    let id = common::unique("pin");
    let m = s.mount("pinned:latest", &["--name", &id]);
    let r = s.lamina(&["rmi", "pinned:latest"]).expect_code(1);
    assert!(
        r.stderr.contains(&id) || r.stderr.contains(&*m.to_string_lossy()),
        "the refusal names the mount: {}",
        r.describe()
    );
    s.ok(&["inspect", "pinned:latest"]);
    s.umount(&m);
    s.ok(&["rmi", "pinned:latest"]);
    assert_eq!(s.lamina(&["inspect", "pinned:latest"]).status, Some(1));
}

#[test]
fn fifty_concurrent_mounts() {
    if !common::require_root() {
        return;
    }
    let s = Store::new("rt-fifty");
    let layout = s.scratch("fifty");
    OciBuilder::new()
        .image(Some("latest"), crate::load::marker_image("fifty"))
        .write_layout(&layout);
    s.load(&layout, &[]);
    let layer_dirs = common::list_dir(&s.root.join("layers"));
    let ids: Vec<String> = (0..50).map(|i| common::unique(&format!("c{i}-"))).collect();
    let handles: Vec<_> = ids
        .iter()
        .map(|id| {
            let mut cmd = s.command();
            cmd.args(["mount", "fifty:latest", "--name", id]);
            std::thread::spawn(move || common::run(&mut cmd, common::LIMIT))
        })
        .collect();
    let mut points = Vec::new();
    for h in handles {
        let r = h.join().expect("thread").expect_ok();
        points.push(PathBuf::from(r.stdout.trim()));
    }
    points.sort();
    points.dedup();
    assert_eq!(points.len(), 50, "50 distinct mountpoints");
    for p in &points {
        assert!(
            common::is_mountpoint(p) && p.join("etc/fifty").is_file(),
            "{}",
            p.display()
        );
    }
    let listed = s.ok(&["mounts"]);
    assert!(
        ids.iter().all(|id| listed.stdout.contains(id.as_str())),
        "{}",
        listed.describe()
    );
    assert_eq!(
        common::list_dir(&s.root.join("layers")),
        layer_dirs,
        "mounts share the image's layers"
    );
    let handles: Vec<_> = ids
        .iter()
        .map(|id| {
            let mut cmd = s.command();
            cmd.args(["umount", id]);
            std::thread::spawn(move || common::run(&mut cmd, common::LIMIT))
        })
        .collect();
    for h in handles {
        h.join().expect("thread").expect_ok();
    }
    assert!(
        points.iter().all(|p| !common::is_mountpoint(p)),
        "all unmounted"
    );
    let listed = s.ok(&["mounts"]);
    assert!(
        !ids.iter().any(|id| listed.stdout.contains(id.as_str())),
        "{}",
        listed.describe()
    );
}

/// `make demo` on this machine: scripts/demo.sh imports, mounts and runs its busybox image with crun.
#[test]
fn demo_script_prints_the_container_output() {
    if !can_run_containers() {
        return;
    }
    if !Path::new("/bin/busybox").exists() {
        common::skip(
            "demo: /bin/busybox missing (scripts/install-deps.sh installs busybox-static)",
        );
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo.sh");
    let _long = common::long_mountinfo();
    let r = common::run(
        Command::new(&script).arg(common::lamina_bin()),
        common::LIMIT,
    )
    .expect_ok();
    let output = r
        .stdout
        .split("---- container output ----\n")
        .nth(1)
        .and_then(|rest| rest.split("----------").next())
        .unwrap_or_default();
    assert!(
        output.starts_with("hello from lamina\nLinux ")
            && output.contains("I am root in /, ")
            && r.stdout.ends_with("demo done\n"),
        "{}",
        r.describe()
    );
}
