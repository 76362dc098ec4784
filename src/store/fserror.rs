//! When the store's filesystem itself refuses: full (blocks, inodes or quota), mounted read-only, or
//! not ours to write. These are told apart from other I/O errors so that a person reads "no space left
//! on /dev/loop3 (mounted at /var/lib/lamina) while unpacking layer …", never SQLite's "disk I/O
//! error", and a caller can branch on [`FsCause`] (through [`ErrorKind`]).

use super::error::ErrorKind;
use crate::sys::fsinfo;
use std::fmt;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Why the filesystem refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsCause {
    /// ENOSPC with free inodes left: no free blocks.
    NoSpace,
    /// ENOSPC with no free inode.
    NoInodes,
    /// EDQUOT: the user's quota is used up.
    Quota,
    /// EROFS.
    ReadOnly,
    /// EACCES or EPERM.
    Denied,
}

impl FsCause {
    /// The cause behind an errno, or None when it is not one of these; `at` (a path on the
    /// filesystem, existing or not) tells blocks from inodes for ENOSPC.
    pub fn from_errno(errno: i32, at: &Path) -> Option<FsCause> {
        match errno {
            libc::ENOSPC if fsinfo::inodes_used_up(at) => Some(FsCause::NoInodes),
            libc::ENOSPC => Some(FsCause::NoSpace),
            libc::EDQUOT => Some(FsCause::Quota),
            libc::EROFS => Some(FsCause::ReadOnly),
            libc::EACCES | libc::EPERM => Some(FsCause::Denied),
            _ => None,
        }
    }

    pub fn kind(self) -> ErrorKind {
        match self {
            FsCause::NoSpace | FsCause::NoInodes | FsCause::Quota => ErrorKind::NoSpace,
            FsCause::ReadOnly => ErrorKind::ReadOnly,
            FsCause::Denied => ErrorKind::PermissionDenied,
        }
    }
}

/// A refusal of the store's filesystem: what it was, on which device, and what lamina was doing.
#[derive(Debug, Clone)]
pub struct FsError {
    pub cause: FsCause,
    /// `/dev/loop3 (mounted at /var/lib/lamina)`, or the path when mountinfo does not say.
    pub device: String,
    /// What lamina was doing, worded to follow "while".
    pub doing: String,
    /// For [`FsCause::Denied`]: who owns what was refused, and who lamina runs as.
    owner: Option<(u32, u32)>,
}

impl FsError {
    /// The refusal behind `e`, if it is one, on the filesystem of `at`; `doing` words what lamina
    /// was doing, knowing the cause (a refused read is not a write).
    pub fn from_io(
        e: &io::Error,
        at: &Path,
        doing: impl FnOnce(FsCause) -> String,
    ) -> Option<FsError> {
        let cause = FsCause::from_errno(e.raw_os_error()?, at)?;
        Some(FsError::new(cause, at, doing(cause)))
    }

    pub fn new(cause: FsCause, at: &Path, doing: String) -> FsError {
        let existing = fsinfo::existing_ancestor(at);
        let device = existing
            .and_then(|p| fsinfo::mount_source(p).ok())
            .map(|m| format!("{} (mounted at {})", m.source, m.mountpoint.display()))
            .unwrap_or_else(|| at.display().to_string());
        let owner = match cause {
            FsCause::Denied => existing
                .and_then(|p| std::fs::symlink_metadata(p).ok())
                .map(|m| (m.uid(), rustix::process::geteuid().as_raw())),
            _ => None,
        };
        FsError {
            cause,
            device,
            doing,
            owner,
        }
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (device, doing) = (&self.device, &self.doing);
        match self.cause {
            FsCause::NoSpace => write!(f, "no space left on {device} while {doing}"),
            FsCause::NoInodes => write!(
                f,
                "no space left on {device} while {doing} (no free inodes)"
            ),
            FsCause::Quota => write!(
                f,
                "no space left on {device} while {doing} (disk quota exceeded)"
            ),
            FsCause::ReadOnly => write!(
                f,
                "read-only filesystem: {device} is mounted read-only, and lamina must write to the \
                 store while {doing}"
            ),
            FsCause::Denied => {
                write!(f, "permission denied while {doing}")?;
                match self.owner {
                    Some((owner, me)) if owner != me => write!(
                        f,
                        ": it belongs to uid {owner} and lamina runs as uid {me} (run lamina as \
                         the store's owner, or use a store of your own with --root)"
                    ),
                    _ => Ok(()),
                }
            }
        }
    }
}

impl std::error::Error for FsError {}

#[cfg(test)]
#[path = "fserror_tests.rs"]
mod tests;
