//! `lamina run` of an image that is not stored yet: pulled first, as `docker run` does.

use super::{assert_no_leftovers, run, runtimes};
use crate::common::{self, Store};

/// A missing image is pulled first, with docker's words on stderr (stdout is the container's);
/// `--pull never` refuses, `--pull always` pulls again.
#[test]
fn run_pulls_a_missing_image_first() {
    let Some(env) = crate::registry::fixture::env() else {
        return;
    };
    let Some(images) = common::test_images() else {
        return;
    };
    let rts = runtimes();
    let Some(rt) = rts.first() else {
        return;
    };
    let reg = crate::registry::fixture::Registry::start(&env, &[]);
    let source = format!("oci:{}:latest", images.join("busybox/oci").display());
    reg.push(&source, "tools/box:1", &[]);
    let name = format!("{}/tools/box:1", reg.host());
    let s = Store::new("run-pull").with_docker_config();

    let r = run(&s, rt, &["--rm", "--pull", "never", &name, "true"]).expect_code(125);
    assert!(r.stderr.contains(&name), "{}", r.describe());

    let r = run(&s, rt, &["--rm", &name, "echo", "ran"]).expect_ok();
    assert_eq!(
        r.stdout,
        "ran\n",
        "only the container's output: {}",
        r.describe()
    );
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(format!("Unable to find image '{name}' locally").as_str()),
        "{}",
        r.describe()
    );
    assert_eq!(lines.get(1).copied(), Some("1: Pulling from tools/box"));
    assert!(
        lines.iter().any(|l| l.ends_with(": Pull complete")),
        "{}",
        r.describe()
    );
    assert!(lines.iter().any(|l| l.starts_with("Digest: sha256:")));
    assert_eq!(
        lines.last().copied(),
        Some(format!("Status: Downloaded newer image for {name}").as_str()),
        "docker run's pull ends at the status line: {}",
        r.describe()
    );

    // present now: no pull
    let r = run(&s, rt, &["--rm", &name, "echo", "again"]).expect_ok();
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("again\n", ""));
    // --pull always asks the registry even so
    let r = run(&s, rt, &["--rm", "--pull", "always", &name, "true"]).expect_ok();
    assert!(
        r.stderr
            .contains(&format!("Status: Image is up to date for {name}")),
        "{}",
        r.describe()
    );
    assert_no_leftovers(&s, rt, "pulled runs");
}
