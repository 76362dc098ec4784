use super::*;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::{Duration, Instant};

fn eventually(what: &str, check: impl Fn() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(5), "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One test for the whole process-wide story, so that no other test's signals interfere: a
/// stopping signal before there is a target is remembered; afterwards signals go to the target,
/// and the third SIGINT/SIGTERM kills it.
#[test]
fn signals_are_remembered_then_forwarded_then_escalated() {
    let forwarder = SignalForwarder::install().expect("install");
    assert_eq!(forwarder.early_stop(), None);
    let me = rustix::process::getpid();
    rustix::process::kill_process(me, Signal::TERM).expect("raise");
    eventually("SIGTERM remembered", || {
        forwarder.early_stop() == Some(SIGTERM)
    });

    // a child that handles SIGTERM by exiting 7: forwarded, it ends the child
    let mut child = Command::new("sh")
        .args(["-c", "trap 'exit 7' TERM; while :; do sleep 0.05; done"])
        .spawn()
        .expect("sh");
    std::thread::sleep(Duration::from_millis(200)); // the trap is set
    let pid = Pid::from_raw(child.id() as i32).expect("pid");
    forwarder.forward_to(pid);
    rustix::process::kill_process(me, Signal::TERM).expect("raise");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(7), "SIGTERM reached the child");
    forwarder.target_exited();

    // one that ignores SIGINT: the third one is followed by SIGKILL
    let mut child = Command::new("sh")
        .args(["-c", "trap '' INT; while :; do sleep 0.05; done"])
        .spawn()
        .expect("sh");
    std::thread::sleep(Duration::from_millis(200));
    let pid = Pid::from_raw(child.id() as i32).expect("pid");
    forwarder.forward_to(pid);
    for _ in 0..2 {
        rustix::process::kill_process(me, Signal::INT).expect("raise");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "two are ignored"
    );
    rustix::process::kill_process(me, Signal::INT).expect("raise");
    let status = child.wait().expect("wait");
    assert_eq!(status.signal(), Some(9), "the third interrupt kills it");
}
