//! Driver tests: the real `lamina` binary, as root, against real mounts, real runtimes and an
//! independent oracle (`umoci unpack`). Every test makes its own store under
//! /var/tmp/lamina-tests and removes it (mounts included) when it ends; tests that need root,
//! fixtures or tools that are missing print `SKIP: ...` and pass.
//!
//! Fixtures: scripts/build-test-images.sh (the project's Debian and busybox images, env
//! LAMINA_TEST_IMAGES), ../shared's corpus (env LAMINA_CORPUS), ../shared itself (LAMINA_SHARED).
//! Inputs no tool would make (hostile tars, broken layouts) are built with the testkit crate
//! (testkit/: `tarw`, `oci`; trees are compared with its `tree`), checked in testkit.rs.

mod common;
mod compat;
mod concurrency;
mod containerd;
mod corpus;
mod crash;
mod credentials;
mod format;
mod full_disk;
mod hostile;
mod kills;
mod load;
mod manage;
mod manifest_list;
mod mount;
mod oracle;
mod power_loss;
mod push;
mod registry;
mod run;
mod runtime;
mod search;
mod security_input;
mod security_store;
mod security_tree;
mod snapshotter;
mod testkit;
