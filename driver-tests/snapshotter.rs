//! `lamina snapshotter` under containerd's own snapshotter conformance suite (containerd 1.6's
//! snapshots/testsuite, built offline by ../shared/recipes/containerd-conformance/run.sh; its build
//! cache lives in /var/cache/lamina/conformance): all 20 runnable tests pass raw and behind
//! containerd's metadata layer.

use crate::common;
use std::process::Command;

fn conformance(wrap_metadata: bool) {
    if !common::require_root() {
        return;
    }
    let rel = "recipes/containerd-conformance/run.sh";
    let Some(run) = lamina_testkit::env::shared_file(rel).map(|d| d.join(rel)) else {
        common::skip("no ../shared/recipes/containerd-conformance");
        return;
    };
    let server = format!(
        "{} snapshotter --root {{root}} --address {{sock}}",
        common::lamina_bin().display()
    );
    let mut cmd = Command::new(run);
    cmd.arg(server).env_remove("LAMINA_WRAP_METADATA");
    if wrap_metadata {
        cmd.env("LAMINA_WRAP_METADATA", "1");
    }
    let r = common::run(&mut cmd, common::LIMIT);
    let out = format!("{}{}", r.stdout, r.stderr);
    let passed = out.matches("--- PASS: TestProxySnapshotter/").count();
    let failed = out.matches("--- FAIL").count();
    assert_eq!((passed, failed), (20, 0), "{}", r.describe());
}

#[test]
fn conformance_suite_raw() {
    conformance(false);
}

#[test]
fn conformance_suite_behind_containerds_metadata() {
    conformance(true);
}
