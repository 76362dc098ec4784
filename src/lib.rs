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
#[cfg(feature = "snapshotter")]
pub mod snapshotter;
pub mod source;
pub mod store;
pub mod sys;
pub mod tar;
pub mod unpack;

#[cfg(test)]
mod layering_tests;
