//! Issue 12: `lamina run` with each installed runtime (crun and runc): output, docker's exit codes,
//! the process options, binds, the network, and cleanup (no mount, no bundle, no runtime state after
//! `--rm`); then `container ls|diff|commit|rm` on a container run without `--rm`. Stdio and signals
//! are in `run/io.rs`, pulling a missing image in `run/pull.rs`.

mod io;
mod pull;

use crate::common::{self, Run, Store};
use std::path::Path;
use std::process::Command;

/// The runtimes installed here; each test runs with every one of them.
fn runtimes() -> Vec<&'static str> {
    let found: Vec<&'static str> = ["crun", "runc"]
        .into_iter()
        .filter(|rt| {
            let there = common::have_tool(rt);
            if !there {
                common::skip(&format!("{rt} is not installed: run tests use the others"));
            }
            there
        })
        .collect();
    if found.is_empty() {
        common::skip("neither crun nor runc is installed");
    }
    found
}

/// A store with the project's busybox image loaded (as `busybox:latest`), and the runtimes.
fn busybox_store(tag: &str) -> Option<(Store, Vec<&'static str>)> {
    if !common::require_root() {
        return None;
    }
    let rts = runtimes();
    let images = common::test_images()?;
    if rts.is_empty() {
        return None;
    }
    let s = Store::new(tag);
    s.load(&images.join("busybox/busybox-oci.tar"), &[]);
    Some((s, rts))
}

/// `lamina run --runtime RT ARGS...`
fn run(s: &Store, rt: &str, args: &[&str]) -> Run {
    let mut all = vec!["run", "--runtime", rt];
    all.extend_from_slice(args);
    s.lamina(&all)
}

/// Nothing of a `--rm` run is left: no mount row, no dir under mounts/ (the bundle lives there), no
/// container in the runtime's state dir (`RT --root STATE list` empty).
fn assert_no_leftovers(s: &Store, rt: &str, after: &str) {
    let mounts = s.ok(&["mounts", "-q"]);
    assert_eq!(mounts.stdout, "", "{rt}: {after}: mounts left");
    let dirs = common::list_dir(&s.root.join("mounts"));
    assert!(dirs.is_empty(), "{rt}: {after}: mount dirs left: {dirs:?}");
    let state = s.root.join("runtime").join(rt);
    let left = common::list_dir(&state);
    assert!(
        left.is_empty(),
        "{rt}: {after}: runtime state left: {left:?}"
    );
    if state.is_dir() {
        let list = common::run(
            Command::new(rt)
                .arg("--root")
                .arg(&state)
                .args(["list", "-q"]),
            common::LIMIT,
        )
        .expect_ok();
        assert_eq!(list.stdout.trim(), "", "{rt}: {after}: {}", list.describe());
    }
}

#[test]
fn run_rm_of_debian_prints_its_version_and_leaves_nothing() {
    if !common::require_root() {
        return;
    }
    let rts = runtimes();
    if rts.is_empty() {
        return;
    }
    // the corpus's debian image, else the project's own
    let (source, image) = match common::corpus() {
        Some(c) => (c.join("archives/debian-gzip.oci.tar"), "debian:gzip"),
        None => match common::test_images() {
            Some(t) => (t.join("debian-oci.tar"), ""),
            None => return,
        },
    };
    let s = Store::new("run-debian");
    let loaded = s.load(&source, &[]);
    let image = match image {
        "" => common::loaded_images(&loaded)
            .into_iter()
            .next()
            .expect("a loaded image"),
        name => name.to_string(),
    };
    // what the file says, read from a read-only mount of the same image
    let view = s.mount(&image, &["--read-only"]);
    let expected = std::fs::read_to_string(view.join("etc/debian_version")).expect("version");
    s.umount(&view);
    assert!(!expected.trim().is_empty());
    for rt in rts {
        let r = run(&s, rt, &["--rm", &image, "cat", "/etc/debian_version"]).expect_ok();
        assert_eq!(r.stdout, expected, "{rt}: {}", r.describe());
        assert_eq!(r.stderr, "", "{rt}: nothing but the container's output");
        assert_no_leftovers(&s, rt, "run --rm");
    }
}

#[test]
fn run_exits_with_the_containers_code_or_dockers() {
    let Some((s, rts)) = busybox_store("run-codes") else {
        return;
    };
    for rt in rts {
        run(&s, rt, &["--rm", "busybox", "true"]).expect_code(0);
        run(&s, rt, &["--rm", "busybox", "sh", "-c", "exit 3"]).expect_code(3);
        // lamina's own errors: 125, as docker's daemon errors are
        let r = run(
            &s,
            rt,
            &["--rm", "--pull", "never", "no-such-image", "true"],
        )
        .expect_code(125);
        assert!(r.stderr.contains("no-such-image"), "{}", r.describe());
        let r = run(&s, "/no/such/runtime", &["--rm", "busybox", "true"]).expect_code(125);
        assert!(r.stderr.contains("/no/such/runtime"), "{}", r.describe());
        assert_no_leftovers(&s, rt, "a runtime that is not there");
        // a runtime given by path
        let path = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|d| d.join(rt))
            .find(|p| p.is_file())
            .expect("the runtime is on PATH");
        let by_path = path.to_string_lossy().into_owned();
        run(&s, &by_path, &["--rm", "busybox", "sh", "-c", "exit 4"]).expect_code(4);
        let r = run(&s, rt, &["--rm", "-u", "nobody-here", "busybox", "true"]).expect_code(125);
        assert!(r.stderr.contains("nobody-here"), "{}", r.describe());
        // a command that cannot be invoked: 126; one that is not there: 127; each said once
        for (cmd, code) in [
            ("/etc/passwd", 126),
            ("/etc", 126),
            ("nope", 127),
            ("/bin/nope", 127),
        ] {
            let r = run(&s, rt, &["--rm", "busybox", cmd]).expect_code(code);
            assert_eq!(r.stdout, "", "{rt} {cmd}");
            let lines: Vec<&str> = r.stderr.lines().collect();
            assert_eq!(lines.len(), 1, "{rt} {cmd}: one line: {}", r.describe());
            assert!(
                lines[0].starts_with("lamina: run busybox: ") && lines[0].contains(cmd),
                "{rt} {cmd}: {}",
                r.describe()
            );
        }
        assert_no_leftovers(&s, rt, "failed runs");
    }
}

#[test]
fn run_applies_env_workdir_user_and_entrypoint() {
    let Some((s, rts)) = busybox_store("run-options") else {
        return;
    };
    let env_file = s.scratch("env").join("list");
    std::fs::write(&env_file, "# comment\nFROM_FILE=file\nBOTH=file\n").expect("env file");
    let env_file = env_file.to_string_lossy().into_owned();
    for rt in rts {
        let r = s
            .command()
            .env("LAMINA_TEST_PASSED", "from-lamina")
            .args(["run", "--runtime", rt, "--rm", "-e", "FOO=bar baz"])
            .args([
                "-e",
                "LAMINA_TEST_PASSED",
                "--env-file",
                &env_file,
                "-e",
                "BOTH=flag",
            ])
            .args(["busybox", "sh", "-c"])
            .arg("echo \"$FOO|$LAMINA_TEST_PASSED|$FROM_FILE|$BOTH|$PATH\"")
            .output()
            .expect("run");
        let r = Run::from_output(format!("{rt} run -e"), r).expect_ok();
        assert_eq!(
            r.stdout, "bar baz|from-lamina|file|flag|/bin:/sbin:/usr/bin:/usr/sbin\n",
            "{rt}: -e, a bare -e from lamina's env, --env-file before -e, the image's PATH"
        );
        let r = run(&s, rt, &["--rm", "-w", "/var/made/here", "busybox", "pwd"]).expect_ok();
        assert_eq!(r.stdout, "/var/made/here\n", "{rt}: -w (made when missing)");
        let r = run(&s, rt, &["--rm", "-w", "relative", "busybox", "pwd"]).expect_code(125);
        assert!(r.stderr.contains("absolute"), "{}", r.describe());
        let r = run(&s, rt, &["--rm", "-u", "nobody", "busybox", "id"]).expect_ok();
        assert_eq!(
            r.stdout, "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n",
            "{rt}: -u NAME from the image's passwd"
        );
        let r = run(&s, rt, &["--rm", "-u", "1234:4321", "busybox", "id", "-u"]).expect_ok();
        assert_eq!(r.stdout, "1234\n", "{rt}: -u UID:GID");
        let r = run(&s, rt, &["--rm", "-u", "1234:4321", "busybox", "id", "-g"]).expect_ok();
        assert_eq!(r.stdout, "4321\n", "{rt}: -u UID:GID");
        // --entrypoint replaces the image's ["/bin/sh", "-c", "echo hello"] entirely
        let r = run(&s, rt, &["--rm", "--entrypoint", "/bin/echo", "busybox"]).expect_ok();
        assert_eq!(r.stdout, "\n", "{rt}: --entrypoint drops the image's Cmd");
        let r = run(
            &s,
            rt,
            &["--rm", "--entrypoint", "echo", "busybox", "a", "b"],
        )
        .expect_ok();
        assert_eq!(r.stdout, "a b\n", "{rt}: --entrypoint with arguments");
        let r = run(&s, rt, &["--rm", "busybox"]).expect_ok();
        assert_eq!(r.stdout, "hello\n", "{rt}: the image's Cmd");
        assert_no_leftovers(&s, rt, "option runs");
    }
}

#[test]
fn run_binds_volumes_and_honours_read_only() {
    let Some((s, rts)) = busybox_store("run-volumes") else {
        return;
    };
    let host = s.scratch("host-data");
    std::fs::write(host.join("given"), "from the host\n").expect("write");
    let rw = format!("{}:/data", host.display());
    let ro = format!("{}:/data:ro", host.display());
    for rt in rts {
        let write = "cat /data/given; echo written > /data/out";
        let r = run(&s, rt, &["--rm", "-v", &rw, "busybox", "sh", "-c", write]).expect_ok();
        assert_eq!(r.stdout, "from the host\n", "{rt}: -v");
        let out = host.join("out");
        assert_eq!(std::fs::read_to_string(&out).expect("out"), "written\n");
        std::fs::remove_file(&out).expect("rm out");

        let r = run(
            &s,
            rt,
            &[
                "--rm",
                "-v",
                &ro,
                "busybox",
                "sh",
                "-c",
                "cat /data/given; echo x > /data/out",
            ],
        );
        let r = r.expect_code(1);
        assert_eq!(r.stdout, "from the host\n", "{rt}: -v :ro reads");
        assert!(
            r.stderr.contains("Read-only file system"),
            "{}",
            r.describe()
        );
        assert!(!out.exists(), "{rt}: a :ro bind refused the write");

        let r = run(
            &s,
            rt,
            &["--rm", "--read-only", "busybox", "sh", "-c", "echo x > /x"],
        );
        let r = r.expect_code(1);
        assert!(
            r.stderr.contains("Read-only file system"),
            "{}",
            r.describe()
        );
        let r = run(
            &s,
            rt,
            &["--rm", "busybox", "sh", "-c", "echo x > /x && cat /x"],
        );
        assert_eq!(
            r.expect_ok().stdout,
            "x\n",
            "{rt}: writable without --read-only"
        );
        assert_no_leftovers(&s, rt, "volume runs");
    }
}

fn container_ids(s: &Store) -> Vec<String> {
    s.ok(&["container", "ls", "-q"])
        .stdout
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_run_without_rm_is_a_container_to_diff_commit_and_remove() {
    let Some((s, rts)) = busybox_store("run-keep") else {
        return;
    };
    // a read-only mount is not a container
    let view = s.mount("busybox", &["--read-only"]);
    for rt in rts {
        let name = format!("keep-{rt}");
        let r = run(
            &s,
            rt,
            &[
                "--name",
                &name,
                "busybox",
                "sh",
                "-c",
                "echo made > /made; rm /etc/group",
            ],
        );
        r.expect_ok();
        assert_eq!(container_ids(&s), vec![name.clone()], "{rt}: container ls");
        let all = s.ok(&["mounts", "-q"]).stdout;
        assert_eq!(all.lines().count(), 2, "mounts lists it too: {all}");
        let state = common::list_dir(&s.root.join("runtime").join(rt));
        assert!(state.is_empty(), "{rt}: runtime state left: {state:?}");

        let diff = s.ok(&["container", "diff", &name]).stdout;
        let top: Vec<&str> = diff.lines().collect();
        assert_eq!(
            top,
            ["C /etc", "D /etc/group", "A /made"],
            "{rt}: container diff"
        );
        let tag = format!("made:{rt}");
        s.ok(&["container", "commit", &name, &tag]);
        let r = run(
            &s,
            rt,
            &[
                "--rm",
                &tag,
                "sh",
                "-c",
                "cat /made; test -e /etc/group || echo gone",
            ],
        );
        assert_eq!(
            r.expect_ok().stdout,
            "made\ngone\n",
            "{rt}: the committed image"
        );

        let r = s.ok(&["container", "rm", &name]);
        assert_eq!(r.stdout.trim(), name, "{rt}: container rm prints the id");
        assert!(container_ids(&s).is_empty(), "{rt}: removed");
        assert!(
            !s.root.join("mounts").join(&name).exists(),
            "{rt}: its dir is gone"
        );
    }
    s.umount(&view);
    for rt in runtimes() {
        assert_no_leftovers(&s, rt, "container rm");
    }
}

/// The host's network with `--network host`; a namespace with only loopback by default.
#[test]
fn run_network_host_or_none() {
    let Some((s, rts)) = busybox_store("run-network") else {
        return;
    };
    let host_ifaces = count_interfaces(Path::new("/proc/net/dev"));
    for rt in rts {
        let r = run(&s, rt, &["--rm", "busybox", "cat", "/proc/net/dev"]).expect_ok();
        assert_eq!(
            count_text_interfaces(&r.stdout),
            1,
            "{rt}: only lo: {}",
            r.stdout
        );
        let r = run(
            &s,
            rt,
            &[
                "--rm",
                "--network",
                "host",
                "busybox",
                "cat",
                "/proc/net/dev",
            ],
        );
        let r = r.expect_ok();
        assert_eq!(
            count_text_interfaces(&r.stdout),
            host_ifaces,
            "{rt}: the host's"
        );
        let r = run(
            &s,
            rt,
            &["--rm", "--hostname", "box1", "busybox", "hostname"],
        )
        .expect_ok();
        assert_eq!(r.stdout, "box1\n", "{rt}: --hostname");
    }
}

fn count_interfaces(path: &Path) -> usize {
    count_text_interfaces(&std::fs::read_to_string(path).expect("/proc/net/dev"))
}

/// /proc/net/dev has two header lines, then one line per interface.
fn count_text_interfaces(text: &str) -> usize {
    text.lines().skip(2).filter(|l| l.contains(':')).count()
}
