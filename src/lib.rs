//! lamina: a container storage engine.
pub mod cli;
pub mod copier;
pub mod digest;
pub mod image;
pub mod mount;
pub mod runtime;
pub mod source;
pub mod store;
pub mod unpack;
