//! `lamina run`'s stdio and signals: stdin with `-i`, a terminal with `-t`, SIGTERM forwarded, and
//! `--rm` cleaning up after SIGINT.

use super::{assert_no_leftovers, busybox_store};
use crate::common::{self, Run, Store};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// `lamina run ARGS...` started with stdin piped and stdout/stderr read on threads.
fn spawn(s: &Store, args: &[&str], stdin: Stdio) -> Child {
    s.command()
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lamina")
}

#[test]
fn run_passes_stdin_only_with_i() {
    let Some((s, rts)) = busybox_store("run-stdin") else {
        return;
    };
    for rt in rts {
        for (flag, expected) in [(Some("-i"), "hi\nthere\n"), (None, "")] {
            let mut args = vec!["run", "--runtime", rt, "--rm"];
            args.extend(flag);
            args.extend(["busybox", "cat"]);
            let mut child = spawn(&s, &args, Stdio::piped());
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(b"hi\nthere\n").expect("write");
            drop(stdin);
            let out = wait_limited(child, Duration::from_secs(120));
            let r = Run::from_output(format!("{rt} run {flag:?} busybox cat"), out).expect_ok();
            assert_eq!(r.stdout, expected, "{}", r.describe());
        }
        assert_no_leftovers(&s, rt, "stdin runs");
    }
}

fn wait_limited(child: Child, limit: Duration) -> std::process::Output {
    let id = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &id.to_string()])
                .status();
            panic!("lamina (pid {id}) did not finish within {limit:?}");
        }
    }
}

#[test]
fn run_t_gives_the_container_a_terminal() {
    let Some((s, rts)) = busybox_store("run-tty") else {
        return;
    };
    if !common::have_tool("script") {
        common::skip("script (util-linux) is missing");
        return;
    }
    let lamina = common::lamina_bin();
    for rt in rts {
        let line = |tty: &str| {
            format!(
                "{} --root {} run --runtime {rt} --rm {tty} busybox sh -c 'tty; test -t 0 && echo stdin-is-a-tty; exit 4'",
                lamina.display(),
                s.root.display()
            )
        };
        let r = common::run(
            Command::new("script").args(["-qec", &line("-t"), "/dev/null"]),
            common::LIMIT,
        );
        let r = r.expect_code(4);
        assert!(
            r.stdout.contains("/dev/pts/") && r.stdout.contains("stdin-is-a-tty"),
            "{rt}: {}",
            r.describe()
        );
        // without -t the container has no terminal, even under one
        let r = common::run(
            Command::new("script").args(["-qec", &line(""), "/dev/null"]),
            common::LIMIT,
        );
        let r = r.expect_code(4);
        assert!(
            r.stdout.contains("not a tty") && !r.stdout.contains("stdin-is-a-tty"),
            "{rt}: {}",
            r.describe()
        );

        // -it: what is typed reaches the container's shell through the pty
        let line = format!(
            "{} --root {} run --runtime {rt} --rm -it busybox sh",
            lamina.display(),
            s.root.display()
        );
        let mut child = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("script");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(b"echo typed $(( 6 * 7 )) on $(tty)\nexit 5\n")
            .expect("type");
        let out = wait_limited(child, Duration::from_secs(120));
        drop(stdin);
        let r = Run::from_output(format!("{rt} run -it"), out).expect_code(5);
        assert!(
            r.stdout.contains("typed 42 on /dev/pts/"),
            "{}",
            r.describe()
        );
        assert_no_leftovers(&s, rt, "tty runs");
    }
}

/// Starts a `--rm` run of `script` (which must print `ready` first), waits for `ready`, sends
/// `signals` to lamina (a pause between them), and returns how it ended.
fn signal_run(s: &Store, rt: &str, script: &str, signals: &[&str]) -> Run {
    let args = [
        "run",
        "--runtime",
        rt,
        "--rm",
        "busybox",
        "sh",
        "-c",
        script,
    ];
    let mut child = spawn(s, &args, Stdio::null());
    let pid = child.id().to_string();
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap_or_default();
            if line == "ready" {
                let _ = tx.send(());
            }
            lines.push(line);
        }
        lines
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("the container printed ready");
    // "ready" is printed before the shell runs (or execs) its next command: on a loaded machine a
    // signal sent at once could reach the shell in between (CI once saw 130, the shell killed by
    // the first INT, where `sleep` as pid 1 ignores it). Let the container settle first.
    std::thread::sleep(Duration::from_millis(500));
    for sig in signals {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status();
        assert!(ok.is_ok_and(|s| s.success()), "kill -{sig} {pid}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut stderr = String::new();
    let mut err = child.stderr.take().expect("stderr");
    let status = wait_limited(child, Duration::from_secs(120)).status;
    let _ = err.read_to_string(&mut stderr);
    let lines = reader.join().expect("reader");
    Run {
        cmd: format!("{rt} run {script:?}, then kill {signals:?}"),
        status: status.code(),
        stdout: lines.join("\n") + "\n",
        stderr,
    }
}

const TRAPS: &str = "trap 'echo got TERM; exit 7' TERM; trap 'echo got INT; exit 8' INT; \
                     echo ready; while :; do sleep 0.1; done";

#[test]
fn run_forwards_sigterm_to_the_container() {
    let Some((s, rts)) = busybox_store("run-sigterm") else {
        return;
    };
    for rt in rts {
        let r = signal_run(&s, rt, TRAPS, &["TERM"]).expect_code(7);
        assert_eq!(r.stdout, "ready\ngot TERM\n", "{}", r.describe());
        assert_no_leftovers(&s, rt, "SIGTERM");
    }
}

#[test]
fn run_rm_cleans_up_after_an_interrupt() {
    let Some((s, rts)) = busybox_store("run-sigint") else {
        return;
    };
    for rt in rts {
        let r = signal_run(&s, rt, TRAPS, &["INT"]).expect_code(8);
        assert_eq!(r.stdout, "ready\ngot INT\n", "{}", r.describe());
        assert_no_leftovers(&s, rt, "SIGINT to a container that handles it");
        // pid 1 without a handler ignores SIGINT; the third one kills it (137 = 128 + SIGKILL)
        let r = signal_run(&s, rt, "echo ready; sleep 600", &["INT", "INT", "INT"]);
        r.expect_code(137);
        assert_no_leftovers(&s, rt, "SIGINT x3 to a container that ignores it");
    }
}
