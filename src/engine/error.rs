//! The engine's errors: the lower modules' errors, passed through unchanged, and the engine's own
//! refusals. [`EngineError::kind`] sorts them into the store's [`ErrorKind`]s.

use crate::copier::CopyError;
use crate::mount::MountError;
use crate::runtime::RuntimeError;
use crate::source::SourceError;
use crate::store::{ErrorKind, FsCause, FsError, StoreError};
use crate::unpack::UnpackError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Unpack(UnpackError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    Copy(#[from] CopyError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// `import` or `commit` could not make the new image's config or manifest.
    #[error("image {image}: {reason}")]
    Build { image: String, reason: String },
    /// `save` could not write an image, or a layer's tar did not come back as it was loaded.
    #[error("image {image}: {reason}")]
    Archive { image: String, reason: String },
    /// `diff` or `commit` on a mount that has no changes to give.
    #[error("image {mount}: {reason}")]
    NoChanges { mount: String, reason: String },
    #[error("image {image}: unable to delete (must be forced): image is referenced in multiple repositories")]
    MultipleRepositories { image: String },
    #[error("image {image}: unable to remove (must force): image is being used by mount {mount} at {target}")]
    ImageInUse {
        image: String,
        mount: String,
        target: String,
    },
    #[error("image {image}: a layer worker stopped without a result")]
    WorkerLost { image: String },
    /// The mount was made, but its runtime bundle could not be written (the mount is undone).
    #[error("bundle {dir}: {source}")]
    Bundle {
        dir: PathBuf,
        source: Box<EngineError>,
    },
    /// A request the engine refuses as given (the message says why).
    #[error("{0}")]
    Invalid(String),
    /// What the request names is not there (the message says what).
    #[error("{0}")]
    NotFound(String),
}

/// An unpack that the store's filesystem refused (full, read-only, not ours) is the store's
/// [`StoreError::Filesystem`], so that it reads and sorts as one whatever wrote the file.
impl From<UnpackError> for EngineError {
    fn from(e: UnpackError) -> Self {
        if let UnpackError::Io { blob, path, .. } = &e {
            let doing = match blob {
                Some(b) => format!("unpacking layer {b} (writing {})", path.display()),
                None => format!("writing {}", path.display()),
            };
            if let Some(f) = refusal(&e, path, || doing.clone()) {
                return EngineError::Store(StoreError::Filesystem(f));
            }
        }
        EngineError::Unpack(e)
    }
}

/// The store filesystem's refusal behind an unpack's I/O error at `at`, if it was one. An ENOSPC
/// is for want of inodes or of blocks as the unpack saw it when it failed (not asked again now).
fn refusal(e: &UnpackError, at: &std::path::Path, doing: impl Fn() -> String) -> Option<FsError> {
    let UnpackError::Io {
        source, inodes_out, ..
    } = e
    else {
        return None;
    };
    if source.raw_os_error() == Some(libc::ENOSPC) {
        let cause = if *inodes_out {
            FsCause::NoInodes
        } else {
            FsCause::NoSpace
        };
        return Some(FsError::new(cause, at, doing()));
    }
    FsError::from_io(source, at, |_| doing())
}

impl EngineError {
    /// `e`, from writing to `at` while `doing` something: the store's filesystem refusal when it
    /// was one (an error a tree walk reports with the path it read from, not the one it wrote).
    pub(crate) fn writing(
        e: UnpackError,
        at: &std::path::Path,
        doing: impl Fn() -> String,
    ) -> Self {
        match refusal(&e, at, doing) {
            Some(f) => EngineError::Store(StoreError::Filesystem(f)),
            None => EngineError::from(e),
        }
    }

    /// What kind of failure this is, for callers that act on it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Store(e) => e.kind(),
            EngineError::Source(SourceError::NotFound { .. } | SourceError::MissingBlob { .. }) => {
                ErrorKind::NotFound
            }
            EngineError::Source(
                SourceError::DigestMismatch { .. } | SourceError::SizeMismatch { .. },
            )
            | EngineError::Unpack(
                UnpackError::DigestMismatch { .. }
                | UnpackError::DiffIdMismatch { .. }
                | UnpackError::SizeMismatch { .. },
            )
            | EngineError::Archive { .. } => ErrorKind::Corrupt,
            EngineError::Mount(MountError::Busy { .. }) => ErrorKind::InUse,
            EngineError::Mount(MountError::NotMounted { .. }) => ErrorKind::NotFound,
            EngineError::MultipleRepositories { .. } | EngineError::ImageInUse { .. } => {
                ErrorKind::InUse
            }
            EngineError::Build { .. } | EngineError::NoChanges { .. } | EngineError::Invalid(_) => {
                ErrorKind::Invalid
            }
            EngineError::NotFound(_) => ErrorKind::NotFound,
            EngineError::Bundle { source, .. } => source.kind(),
            _ => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
