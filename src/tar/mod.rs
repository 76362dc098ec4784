//! Tar, once: the header and PAX parsing, the streaming member reader with its tap for
//! observers, the writer's header emission, tar-split records and content sums.
//!
//! ```text
//! plain tar ─► reader (header, pax) ─► members ─► the unpacker applies them
//!                  └─► Tap: every raw byte, in order, as header/padding or file content
//!                          └─► split::Recorder writes the layer's tar-split record
//! ```
//!
//! Invariants this module keeps:
//! - One parser: every numeric field, checksum, ustar name and PAX record in the crate is read by
//!   `header` and `pax`; nothing else frames tar headers. The tar crate is only the field layout
//!   `writer` fills in.
//! - The tap sees each byte of the archive exactly once and in order, so a recorder built on it
//!   gives back the stream byte for byte; observing costs no second decode and no copy.
//! - Memory stays flat: only extension members (capped at 1 MiB) are held.
//!
//! This module sits below `source` and `unpack`; it uses only `digest` and crates.

pub mod content_sum;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub(crate) mod header;
pub(crate) mod pax;
pub(crate) mod reader;
pub mod reassemble;
pub mod split;
pub(crate) mod writer;

pub use reader::Tap;
