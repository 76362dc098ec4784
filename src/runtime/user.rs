//! Resolution of an image's `User` string to numeric ids, as docker does it.
//!
//! docker (moby's `getUser`, runc's `libcontainer/user.GetExecUser`) reads the image's own /etc/passwd and
//! /etc/group. Those files belong to the image, so they are hostile input: a symlink `/etc/passwd ->
//! /host/etc/shadow` or `../../..` must resolve inside the image, never on the host. Every file here is opened
//! with openat2 `RESOLVE_IN_ROOT` under a descriptor of the rootfs, must be a regular file (a FIFO would block,
//! `/dev/zero` would never end), and is read up to a size cap.

use std::io::Read;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};

use super::RuntimeError;

/// The largest passwd or group file we read; real ones are a few KiB.
const MAX_ID_FILE_BYTES: u64 = 16 << 20;
/// runc's `minID..=maxID`: ids are non-negative and fit in an int32.
const MAX_ID: u64 = i32::MAX as u64;

/// The process identity a runtime should use, in OCI terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Docker's order: the primary gid first, then the groups listing the user by name.
    pub additional_gids: Vec<u32>,
}

#[derive(Debug)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

#[derive(Debug)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolves `spec` ("", "uid", "name", "uid:gid", "name:group", ...) against the image mounted at `rootfs`.
///
/// Rules (runc's GetExecUser with docker's defaults): an empty user is uid 0; a numeric user is always a
/// uid, whether or not passwd has it (gid then comes from passwd, else 0); a name must exist in passwd. An
/// explicit group replaces the primary gid and adds no supplementary groups; without one, every group whose
/// member list names the matched user is added.
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<ResolvedUser, RuntimeError> {
    let root = open_root(rootfs)?;
    let passwd = match read_in_root(&root, rootfs, "etc/passwd")? {
        Some(text) => parse_passwd(&text),
        None => Vec::new(),
    };
    let groups = match read_in_root(&root, rootfs, "etc/group")? {
        Some(text) => parse_group(&text),
        None => Vec::new(),
    };
    resolve_with(spec, &passwd, &groups)
}

fn resolve_with(
    spec: &str,
    passwd: &[PasswdEntry],
    groups: &[GroupEntry],
) -> Result<ResolvedUser, RuntimeError> {
    let mut fields = spec.splitn(3, ':');
    let user_arg = fields.next().unwrap_or("");
    let group_arg = fields.next().unwrap_or("");
    let user_num = parse_id(user_arg);
    let group_num = parse_id(group_arg);

    let matched = passwd.iter().find(|entry| match (user_arg, user_num) {
        ("", _) => entry.uid == 0,
        (_, Some(uid)) => entry.uid as u64 == uid,
        (name, None) => entry.name == name,
    });
    let (uid, mut gid) = match (matched, user_arg, user_num) {
        (Some(entry), _, _) => (entry.uid, entry.gid),
        (None, "", _) => (0, 0),
        (None, _, Some(uid)) => (checked_id(uid, spec)?, 0),
        (None, name, None) => {
            return Err(RuntimeError::UnknownUser {
                user: name.to_string(),
            })
        }
    };

    let mut supplementary = Vec::new();
    if !group_arg.is_empty() {
        let found = groups.iter().find(|g| match group_num {
            Some(n) => g.gid as u64 == n,
            None => g.name == group_arg,
        });
        gid = match (found, group_num) {
            (Some(g), _) => g.gid,
            (None, Some(n)) => checked_id(n, spec)?,
            (None, None) => {
                return Err(RuntimeError::UnknownGroup {
                    group: group_arg.to_string(),
                })
            }
        };
    } else if let Some(entry) = matched {
        supplementary = groups
            .iter()
            .filter(|g| g.members.contains(&entry.name))
            .map(|g| g.gid)
            .collect();
    }

    let mut additional_gids = vec![gid];
    additional_gids.extend(supplementary);
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
    })
}

/// A decimal id as runc's `strconv.Atoi` accepts it (digits only here: a sign is never a valid id).
fn parse_id(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Too many digits to be an id: still numeric, so it must fail the range check rather than be a name.
    Some(text.parse::<u64>().unwrap_or(u64::MAX))
}

fn checked_id(id: u64, spec: &str) -> Result<u32, RuntimeError> {
    if id > MAX_ID {
        return Err(RuntimeError::IdOutOfRange {
            spec: spec.to_string(),
        });
    }
    Ok(id as u32)
}

/// `name:password:uid:gid:gecos:home:shell`; malformed lines are skipped, first match wins.
fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let f: Vec<&str> = line.split(':').collect();
            let uid = parse_id(f.get(2)?).filter(|n| *n <= MAX_ID)?;
            let gid = parse_id(f.get(3)?).filter(|n| *n <= MAX_ID)?;
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: uid as u32,
                gid: gid as u32,
            })
        })
        .collect()
}

/// `name:password:gid:member,member`.
fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let f: Vec<&str> = line.split(':').collect();
            let gid = parse_id(f.get(2)?).filter(|n| *n <= MAX_ID)?;
            let members = f
                .get(3)
                .map(|list| {
                    list.split(',')
                        .filter(|m| !m.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: gid as u32,
                members,
            })
        })
        .collect()
}

fn open_root(rootfs: &Path) -> Result<rustix::fd::OwnedFd, RuntimeError> {
    crate::sys::open::open_root(rootfs, crate::sys::open::DirAccess::Read).map_err(|e| {
        RuntimeError::RootfsFile {
            path: rootfs.to_path_buf(),
            source: e.into(),
        }
    })
}

/// Reads `rel` as if `root` were `/`. `None` when the file (or a directory on its way) does not exist,
/// which docker treats as an empty database.
fn read_in_root(
    root: &rustix::fd::OwnedFd,
    rootfs: &Path,
    rel: &str,
) -> Result<Option<String>, RuntimeError> {
    let shown = rootfs.join(rel);
    let fail = |e: std::io::Error| RuntimeError::RootfsFile {
        path: shown.clone(),
        source: e,
    };
    // NONBLOCK: opening a FIFO planted at /etc/passwd must not hang; NOCTTY for a planted tty device.
    let fd = match rustix::fs::openat2(
        root,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => return Ok(None),
        Err(e) => return Err(fail(e.into())),
    };
    let stat = rustix::fs::fstat(&fd).map_err(|e| fail(e.into()))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(RuntimeError::NotRegularFile { path: shown });
    }
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_ID_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(fail)?;
    if bytes.len() as u64 > MAX_ID_FILE_BYTES {
        return Err(RuntimeError::FileTooLarge {
            path: shown,
            limit: MAX_ID_FILE_BYTES,
        });
    }
    // Non-UTF-8 names cannot match a UTF-8 User string anyway; keep the rest of the file usable.
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

#[cfg(test)]
#[path = "user_tests.rs"]
mod tests;
