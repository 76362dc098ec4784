//! Thin, typed wrappers over the system calls lamina needs beyond rustix's plain ones: opening
//! directories beneath a root without following symlinks, listing xattrs, writeback hints, the
//! mount API calls rustix lacks, the reflink probe, and ISA-L's inflate (`isal`, the one C library
//! called directly).
//!
//! One function per call, in rustix's style: typed flags, `AsFd` where a descriptor is taken,
//! `io::Result` (or `rustix::io::Result`) back. Every `unsafe` block of the crate's non-test code
//! lives here, once per call, with a SAFETY comment saying why it is sound.
//!
//! Invariants: nothing here follows a symlink unless its name says the path comes from the store
//! (`open_root`); `open_beneath` never leaves the directory it starts from.

pub mod create;
pub mod fsinfo;
#[cfg(feature = "isal")]
pub mod isal;
pub mod mount_api;
pub mod open;
pub mod reflink;
pub mod regular;
pub mod sparse;
pub mod spawn;
pub mod sqlite;
pub mod walk;
pub mod writeback;
pub mod xattr;
