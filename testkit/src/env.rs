//! Where the tests' fixtures are and what the machine offers: `../shared` beside the checkout,
//! the images scripts/build-test-images.sh makes, the shared corpus, root, tools on PATH.
//!
//! Every path can be overridden by the variable the Makefile sets (`LAMINA_SHARED`,
//! `LAMINA_TEST_IMAGES`, `LAMINA_CORPUS`). A test whose fixture is missing prints a `SKIP:` line
//! (see [`skip`]) and passes, so a fresh clone without fixtures still has a green fast lane.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Prints `SKIP: why` where `make test` sees it (the harness captures print!, not raw stderr).
pub fn skip(why: &str) {
    let _ = write!(std::io::stderr().lock(), "\nSKIP: {why}\n");
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// true when the test may go on; prints SKIP otherwise
pub fn require_root() -> bool {
    if !is_root() {
        skip("driver tests need root (mounts, device nodes, trusted.* xattrs)");
    }
    is_root()
}

/// Whether `name` is on PATH, silently.
pub fn on_path(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Whether `name` is on PATH; prints SKIP when it is not.
pub fn have_tool(name: &str) -> bool {
    let ok = on_path(name);
    if !ok {
        skip(&format!(
            "{name} is not installed (scripts/install-deps.sh)"
        ));
    }
    ok
}

/// The lamina checkout: the testkit lives in its `testkit/` directory.
pub fn repo_dir() -> PathBuf {
    let testkit = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    testkit.parent().map(PathBuf::from).unwrap_or(testkit)
}

/// ../shared beside the checkout (or `LAMINA_SHARED`, which the Makefile sets), when it is there.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("LAMINA_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_dir().join("../shared"));
    dir.is_dir().then_some(dir)
}

/// `shared_dir()/rel`, when that file is there (e.g. `tools/treemanifest.py`).
pub fn shared_file(rel: &str) -> Option<PathBuf> {
    shared_dir().filter(|d| d.join(rel).is_file())
}

/// The images scripts/build-test-images.sh made, or None (with a SKIP line) when it has not run.
pub fn test_images() -> Option<PathBuf> {
    let dir = std::env::var_os("LAMINA_TEST_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/lamina/images"));
    if dir.join("stamps/debian").exists() && dir.join("stamps/busybox").exists() {
        Some(dir)
    } else {
        skip(&format!(
            "test images not built in {} (run scripts/build-test-images.sh)",
            dir.display()
        ));
        None
    }
}

/// Where the shared corpus is (or would be), built or not.
pub fn corpus_dir() -> PathBuf {
    std::env::var_os("LAMINA_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/lamina/corpus"))
}

/// The shared corpus, or None (with a SKIP line) when it is not (completely) built.
pub fn corpus() -> Option<PathBuf> {
    let dir = corpus_dir();
    if dir.join("stamps/archives").exists() {
        Some(dir)
    } else {
        skip("../shared corpus not built");
        None
    }
}
