//! lamina: a container storage engine.
#[cfg(feature = "cli")]
pub mod cli;
pub mod copier;
pub mod digest;
pub mod engine;
pub mod image;
pub mod layerfs;
pub mod mount;
pub mod runtime;
pub mod source;
pub mod store;
pub mod sys;
pub mod tar;
pub mod unpack;

#[cfg(test)]
#[path = "layering_tests.rs"]
mod layering_tests;

/// What the unit tests share.
#[cfg(test)]
pub(crate) mod test_support {
    use std::path::PathBuf;

    /// ../shared beside the checkout (or `LAMINA_SHARED`, which the Makefile sets), when it is there.
    pub fn shared_dir() -> Option<PathBuf> {
        let dir = std::env::var_os("LAMINA_SHARED")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
        dir.is_dir().then_some(dir)
    }
}
