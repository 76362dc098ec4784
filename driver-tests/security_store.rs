//! The store and its edges against a local attacker, a hostile registry and a hostile image
//! (issue 15, points 1, 2, 3 and 7): an unprivileged user can read and run nothing in the store,
//! planted symlinks redirect no mount and no write, and tags a registry or layout makes up are
//! refused before they reach a URL, the store or the terminal. Each test builds its own hostile
//! setup and checks that a canary outside the store is untouched.

use crate::common::{self, Run, Store};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("stat {}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn chmod(p: &Path, m: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(m))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

/// `sh -c SCRIPT` as uid/gid 65534 with no groups.
fn as_nobody(script: &str) -> Run {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args(["sh", "-c", script]);
    common::run(&mut cmd, std::time::Duration::from_secs(30))
}

/// A rootfs with a setuid-root copy of `id` and a file only an image's users should read; imported
/// as `name` (with umask 000, which must not widen the store).
fn import_suid_image(s: &Store, name: &str) -> PathBuf {
    let rootfs = s.scratch("rootfs");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::copy("/usr/bin/id", rootfs.join("bin/suid-id")).unwrap();
    chmod(&rootfs.join("bin/suid-id"), 0o4755);
    fs::write(rootfs.join("secret.txt"), "image data\n").unwrap();
    let script = format!(
        "umask 000; exec \"$0\" --root '{}' import '{}' {name}",
        s.root.display(),
        rootfs.display()
    );
    let mut sh = Command::new("sh");
    sh.args(["-c", &script]).arg(common::lamina_bin());
    common::run(&mut sh, std::time::Duration::from_secs(60)).expect_ok();
    rootfs
}

/// The one layer dir of the store (the tests import one-layer images).
fn layer_diff(s: &Store) -> PathBuf {
    let layers = s.root.join("layers");
    let entry = fs::read_dir(&layers)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| !e.file_name().to_string_lossy().starts_with("flat-"))
        .expect("a layer dir");
    entry.path().join("diff")
}

/// What an unprivileged user gets from the store: every probe must fail.
fn nobody_probes(s: &Store, merged: &Path) -> Vec<(String, Run)> {
    let diff = layer_diff(s);
    let root = s.root.display();
    [
        format!("cat '{root}/meta.db' > /dev/null"),
        format!("ls '{root}/layers'"),
        format!("cat '{}/secret.txt'", diff.display()),
        format!("'{}/bin/suid-id' -u", diff.display()),
        format!("cat '{}/secret.txt'", merged.display()),
        format!("'{}/bin/suid-id' -u", merged.display()),
    ]
    .into_iter()
    .map(|script| {
        let r = as_nobody(&script);
        (script, r)
    })
    .collect()
}

#[test]
fn unprivileged_user_reads_and_runs_nothing_in_the_store() {
    if !common::require_root() || !common::have_tool("setpriv") {
        return;
    }
    let s = Store::new("sec-perms");
    // The store's parents let everyone through, so only the store's own modes can stop them.
    chmod(&s.base, 0o755);
    let parent_ok = as_nobody(&format!("test -x '{}'", s.base.display())).success();
    if !parent_ok {
        common::skip("/var/tmp/lamina-tests is not traversable by nobody");
        return;
    }
    import_suid_image(&s, "sec:suid");
    let merged = s.mount("sec:suid", &[]);

    // The control: a setuid binary this user can reach runs as root here (no nosuid mount).
    let control = s.base.join("suid-control");
    fs::copy("/usr/bin/id", &control).unwrap();
    chmod(&control, 0o4755);
    let c = as_nobody(&format!("'{}' -u", control.display()));
    if c.stdout.trim() != "0" {
        common::skip("setuid binaries do not run as root on /var/tmp (nosuid?)");
        return;
    }

    assert_eq!(mode(&s.root), 0o700);
    for dir in ["layers", "mounts", "blobs", "blobs/sha256", "tmp", "locks"] {
        assert_eq!(mode(&s.root.join(dir)), 0o700, "{dir}");
    }
    assert_eq!(mode(&s.root.join("meta.db")), 0o600);
    let layer_dir = layer_diff(&s).parent().unwrap().to_path_buf();
    assert_eq!(mode(&layer_dir), 0o700);
    assert_eq!(mode(&layer_dir.join("layer.json")), 0o600);
    for (script, r) in nobody_probes(&s, &merged) {
        assert!(!r.success(), "nobody could: {script}\n{}", r.describe());
        assert_ne!(r.stdout.trim(), "0", "{script} ran as root");
    }

    // A store an older lamina made: 0755 dirs and 0644 files. The probes succeed on it (so they
    // can fail), fsck reports it, and --repair closes it again.
    let mount_dir = merged.parent().unwrap().to_path_buf();
    for d in [
        &s.root,
        &s.root.join("layers"),
        &layer_dir,
        &s.root.join("mounts"),
        &mount_dir,
    ] {
        chmod(d, 0o755);
    }
    chmod(&s.root.join("meta.db"), 0o644);
    let open: Vec<String> = nobody_probes(&s, &merged)
        .into_iter()
        .filter(|(_, r)| r.success())
        .map(|(script, _)| script)
        .collect();
    assert!(
        open.iter().any(|p| p.contains("merged/bin/suid-id")),
        "the old modes should let nobody run the image's setuid binary: {open:?}"
    );
    let report = s.exits(1, &["fsck"]);
    assert!(
        report.stdout.contains("meta.db: mode 0644"),
        "{}",
        report.describe()
    );
    assert!(
        report.stdout.contains("layers: mode 0755"),
        "{}",
        report.describe()
    );
    s.ok(&["fsck", "--repair"]);
    s.ok(&["fsck"]);
    for (script, r) in nobody_probes(&s, &merged) {
        assert!(
            !r.success(),
            "after repair nobody could: {script}\n{}",
            r.describe()
        );
    }
    // Any other command tightens the paths in on open.
    chmod(&s.root, 0o755);
    chmod(&s.root.join("layers"), 0o755);
    s.ok(&["images"]);
    assert_eq!(mode(&s.root), 0o700);
    assert_eq!(mode(&s.root.join("layers")), 0o700);
    s.umount(&merged);
}

/// A canary dir with one file, and what it held.
fn canary(s: &Store) -> (PathBuf, Vec<String>) {
    let dir = s.scratch("canary");
    fs::write(dir.join("keep"), "canary\n").unwrap();
    (dir.clone(), common::list_dir(&dir))
}

fn assert_untouched(dir: &Path, before: &[String]) {
    assert!(
        !common::is_mountpoint(dir),
        "{} was mounted over",
        dir.display()
    );
    assert_eq!(common::list_dir(dir), before, "{} changed", dir.display());
    assert_eq!(fs::read_to_string(dir.join("keep")).unwrap(), "canary\n");
}

#[test]
fn planted_symlinks_redirect_no_mount_and_no_bundle_file() {
    if !common::require_root() {
        return;
    }
    let s = Store::new("sec-target");
    let rootfs = s.scratch("img");
    fs::write(rootfs.join("hello"), "hi\n").unwrap();
    s.ok(&["import", rootfs.to_str().unwrap(), "sec:target"]);
    let (canary, before) = canary(&s);

    // --bundle B with B/rootfs planted as a symlink to the canary.
    let bundle = s.scratch("bundle");
    symlink(&canary, bundle.join("rootfs")).unwrap();
    let b = bundle.to_str().unwrap();
    let r = s.fails(&["mount", "sec:target", "--bundle", b, "--", "/hello"]);
    assert!(r.stderr.contains("symlink"), "{}", r.describe());
    assert!(!bundle.join("config.json").exists());
    // --target through a symlinked dir, and onto a symlink.
    let link = s.base.join("link");
    symlink(&canary, &link).unwrap();
    for target in [link.clone(), link.join("sub")] {
        let r = s.fails(&["mount", "sec:target", "--target", target.to_str().unwrap()]);
        assert!(r.stderr.contains("symlink"), "{}", r.describe());
    }
    assert_untouched(&canary, &before);
    assert_eq!(
        s.ok(&["mounts", "-q"]).stdout.trim(),
        "",
        "failed mounts left rows"
    );

    // A real rootfs, but config.json planted as a symlink to a canary file: replaced, not followed.
    let bundle2 = s.scratch("bundle2");
    symlink(canary.join("keep"), bundle2.join("config.json")).unwrap();
    let mounted = s.mount(
        "sec:target",
        &["--bundle", bundle2.to_str().unwrap(), "--", "/x"],
    );
    assert!(fs::symlink_metadata(bundle2.join("config.json"))
        .unwrap()
        .is_file());
    assert_eq!(fs::read_to_string(mounted.join("hello")).unwrap(), "hi\n");
    s.umount(&mounted);
    assert_untouched(&canary, &before);
}

#[test]
fn save_writes_through_no_planted_temp_name() {
    if !common::require_root() {
        return;
    }
    let s = Store::new("sec-save");
    let rootfs = s.scratch("img");
    fs::write(rootfs.join("hello"), "hi\n").unwrap();
    s.ok(&["import", rootfs.to_str().unwrap(), "sec:save"]);
    let (canary, before) = canary(&s);
    let out_dir = s.scratch("out");
    // The old name was `.out.tar.lamina-<pid>`: plant it for the next few hundred pids, all
    // pointing at the canary file, and out.tar itself too.
    let last: u32 = fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    for pid in last..last + 400 {
        symlink(
            canary.join("keep"),
            out_dir.join(format!(".out.tar.lamina-{pid}")),
        )
        .unwrap();
    }
    symlink(canary.join("keep"), out_dir.join("out.tar")).unwrap();
    s.ok(&[
        "save",
        "sec:save",
        "-o",
        out_dir.join("out.tar").to_str().unwrap(),
    ]);
    assert_untouched(&canary, &before);
    assert!(fs::symlink_metadata(out_dir.join("out.tar"))
        .unwrap()
        .is_file());
    let stray: Vec<String> = common::list_dir(&out_dir)
        .into_iter()
        .filter(|n| !n.starts_with(".out.tar.lamina-") && n != "out.tar")
        .collect();
    assert!(stray.is_empty(), "temp files left: {stray:?}");
    // What was saved loads back as the same image.
    let s2 = Store::new("sec-save-back");
    s2.load(&out_dir.join("out.tar"), &[]);
    assert_eq!(
        s2.ok(&["images", "-q", "--no-trunc"]).stdout,
        s.ok(&["images", "-q", "--no-trunc"]).stdout
    );
}

/// A registry that lists hostile tags and answers a manifest request with an error body full of
/// terminal escapes; it records every path it was asked for.
struct HostileRegistry {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

const EVIL_BODY: &str = "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"\u{1b}]0;pwned\u{7}\u{1b}[2Jgone\u{9b}31m\\nlamina: fake line\"}]}";

impl HostileRegistry {
    fn start(tags: Vec<String>) -> HostileRegistry {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let list = serde_json::json!({"name": "evil", "tags": tags}).to_string();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut buf = [0u8; 8192];
                let n = conn.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                // (The client tries TLS first on a local registry: not a request to log.)
                if !head.starts_with("GET ") && !head.starts_with("HEAD ") {
                    continue;
                }
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                log.lock().unwrap().push(path.clone());
                let (status, body) = if path == "/v2/" {
                    ("200 OK", "{}".to_string())
                } else if path.starts_with("/v2/evil/tags/list") {
                    ("200 OK", list.clone())
                } else {
                    ("404 Not Found", EVIL_BODY.to_string())
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                     Docker-Distribution-Api-Version: registry/2.0\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        HostileRegistry { port, requests }
    }
}

#[test]
fn hostile_tags_from_a_registry_are_skipped_and_nothing_raw_reaches_the_terminal() {
    let s = Store::new("sec-tags");
    let bad = vec![
        "../../../v2/other/manifests/x".to_string(),
        "-rf".to_string(),
        ".hidden".to_string(),
        "a".repeat(300),
        "nl\nfake".to_string(),
        "esc\u{1b}[31mred".to_string(),
    ];
    let mut tags = bad.clone();
    tags.push("good".to_string());
    let reg = HostileRegistry::start(tags);
    let repo = format!("127.0.0.1:{}/evil", reg.port);
    let r = s.fails(&["pull", "-a", &repo]);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        !all.contains('\u{1b}') && !all.contains('\u{7}') && !all.contains('\u{9b}'),
        "raw control characters reached the terminal: {}",
        r.describe()
    );
    assert!(!all.contains("\nlamina: fake line"), "{}", r.describe());
    assert_eq!(
        r.stderr.matches("skipping").count(),
        bad.len(),
        "{}",
        r.describe()
    );
    assert!(r.stderr.contains("pull 127.0.0.1"), "{}", r.describe());
    let asked = reg.requests.lock().unwrap().clone();
    assert!(
        asked.iter().any(|p| p == "/v2/evil/manifests/good"),
        "{asked:?}"
    );
    for p in &asked {
        assert!(
            p == "/v2/" || p.starts_with("/v2/evil/tags/list") || p == "/v2/evil/manifests/good",
            "a hostile tag reached the registry as {p:?}"
        );
    }
    assert_eq!(s.ok(&["images", "-q"]).stdout.trim(), "");

    // Only hostile tags: nothing to pull, said plainly.
    let reg = HostileRegistry::start(bad.clone());
    let r = s.fails(&["pull", "-a", &format!("127.0.0.1:{}/evil", reg.port)]);
    assert!(
        r.stderr.contains("no tags (6 invalid ones skipped)"),
        "{}",
        r.describe()
    );
}

#[test]
fn hostile_ref_names_in_a_layout_or_archive_are_refused() {
    if !common::require_root() {
        return;
    }
    use lamina_testkit::oci::{Image, OciBuilder};
    let s = Store::new("sec-refname");
    for name in ["-rf", ".hidden", "x\u{1b}]0;pwned\u{7}", "../../etc"] {
        let dir = s.base.join(format!("layout-{}", name.len()));
        let mut b = OciBuilder::new();
        b.image(Some(name), Image::new(vec![crate::load::marker_layer("x")]));
        b.write_layout(&dir);
        let r = s.fails(&["load", dir.to_str().unwrap()]);
        assert!(!r.stderr.contains('\u{1b}'), "{}", r.describe());
        assert!(r.stderr.contains("invalid"), "{}", r.describe());
        let r = s.fails(&["load", dir.to_str().unwrap(), &format!("--tag={name}")]);
        assert!(r.stderr.contains("invalid"), "{}", r.describe());
        // The same name as a docker-archive RepoTag.
        let archive = s.base.join(format!("docker-{}.tar", name.len()));
        let image = Image::new(vec![crate::load::marker_layer("x")]);
        lamina_testkit::docker::write_docker_archive(&image, &[&format!("evil:{name}")], &archive);
        let r = s.fails(&["load", archive.to_str().unwrap()]);
        assert!(!r.stderr.contains('\u{1b}'), "{}", r.describe());
        assert!(r.stderr.contains("invalid"), "{}", r.describe());
    }
    assert_eq!(s.ok(&["images", "-q"]).stdout.trim(), "");
    assert!(common::list_dir(&s.root.join("layers")).is_empty());
}
