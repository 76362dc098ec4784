//! What lamina's tests build their inputs with, written once and shared by the unit tests
//! (`src/**/*_tests.rs`), the driver-tests and the benches.
//!
//! - [`env`]: where the fixtures are (`../shared`, the test images, the corpus), root, tools, SKIP.
//! - [`compress`]: gzip, zstd and sha256 of in-memory bytes.
//! - [`tarw`]: a raw tar writer that writes exactly what it is told, hostile headers included.
//! - [`oci`]: OCI image layouts and oci-archives, valid or spoiled on purpose.
//! - [`docker`]: the same images as `docker save` archives.
//! - [`layerdir`]: a layer dir built entry by entry (whiteouts, opaque dirs, xattrs, owners, times).
//! - [`messages`]: checks on the one-line messages (nothing said twice).
//! - [`tree`]: a tree described in `../shared/tools/treemanifest.py`'s format, and compared.
//!
//! It does not depend on lamina: every input is made from bytes and JSON, so lamina's readers are
//! checked against an independent writer, never against themselves.

pub mod compress;
pub mod docker;
pub mod env;
pub mod layerdir;
pub mod messages;
pub mod oci;
pub mod tarw;
pub mod tree;
