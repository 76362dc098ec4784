use super::*;
use std::collections::BTreeSet;

/// Makes `depth` nested dirs named `d` under `root` (deeper than `PATH_MAX` allows by path), with
/// a file `f` at every level; holds one fd at a time, as a container could.
fn deep_tree(root: &Path, depth: usize) {
    let mut cur = open_root(root, DirAccess::Read).unwrap();
    for _ in 0..depth {
        fs::mkdirat(&cur, "d", Mode::from_raw_mode(0o755)).unwrap();
        let f = fs::openat(
            &cur,
            "f",
            OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .unwrap();
        drop(f);
        cur = open_child_dir(&cur, "d", DirAccess::Read).unwrap();
    }
}

/// Counts what it meets, and checks the walk holds a bounded number of descriptors.
#[derive(Default)]
struct Count {
    dirs: usize,
    files: usize,
    left: usize,
    deepest: usize,
    order: Vec<Vec<u8>>,
    keep_order: bool,
    /// Most descriptors this process had open, sampled every 500 names.
    max_fds: usize,
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

impl Visitor for Count {
    type Error = io::Error;
    fn entry(&mut self, e: &Entry<'_>) -> io::Result<bool> {
        match file_type(e.stat) {
            FileType::Directory => self.dirs += 1,
            _ => self.files += 1,
        }
        self.deepest = self.deepest.max(e.path.len());
        if (self.dirs + self.files).is_multiple_of(500) {
            self.max_fds = self.max_fds.max(open_fds());
        }
        if self.keep_order {
            self.order.push(e.path.to_vec());
        }
        Ok(true)
    }
    fn leave(
        &mut self,
        _dir: BorrowedFd<'_>,
        _parent: BorrowedFd<'_>,
        _name: &[u8],
        _path: &[u8],
    ) -> io::Result<()> {
        self.left += 1;
        Ok(())
    }
    fn io_error(&self, _path: &[u8], e: io::Error) -> io::Error {
        e
    }
}

/// 5000 levels: ten thousand bytes of path (past `PATH_MAX`), five times the usual fd limit of
/// 1024; the walk's descriptors do not grow with depth (other tests running beside it may hold
/// a few, never thousands).
#[test]
fn walks_a_tree_deeper_than_path_max_with_few_fds() {
    let t = tempfile::tempdir().unwrap();
    deep_tree(t.path(), 5000);
    let root = open_root(t.path(), DirAccess::Read).unwrap();
    let before = open_fds();
    let mut c = Count::default();
    walk(root.as_fd(), &mut c).unwrap();
    assert!(
        c.max_fds < before + 100,
        "{} fds open at depth, {before} before",
        c.max_fds
    );
    assert_eq!((c.dirs, c.files, c.left), (5000, 5000, 5000));
    assert_eq!(c.deepest, 5000 * 2 - 1);
}

#[test]
fn removes_a_tree_deeper_than_path_max() {
    let t = tempfile::tempdir().unwrap();
    let top = t.path().join("top");
    std::fs::create_dir(&top).unwrap();
    deep_tree(&top, 5000);
    remove_tree(&top).unwrap();
    assert!(!top.exists());
    assert!(t.path().exists());
    // A second removal of what is gone is no error.
    remove_tree(&top).unwrap();
}

/// Pre-order, names sorted within a dir, a dir's entries before its next sibling.
#[test]
fn visits_in_sorted_depth_first_order() {
    let t = tempfile::tempdir().unwrap();
    for d in ["b/y", "a", "b/x/z"] {
        std::fs::create_dir_all(t.path().join(d)).unwrap();
    }
    std::fs::write(t.path().join("b/c"), b"").unwrap();
    std::os::unix::fs::symlink("/", t.path().join("b/ln")).unwrap();
    let root = open_root(t.path(), DirAccess::Read).unwrap();
    let mut c = Count {
        keep_order: true,
        ..Count::default()
    };
    walk(root.as_fd(), &mut c).unwrap();
    let got: Vec<String> = c
        .order
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    assert_eq!(got, ["a", "b", "b/c", "b/ln", "b/x", "b/x/z", "b/y"]);
}

/// Symlinks are removed, never followed; read-only dirs are emptied; the rest stays.
#[test]
fn remove_never_follows_and_handles_read_only_dirs() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let canary = t.path().join("canary");
    std::fs::create_dir(&canary).unwrap();
    std::fs::write(canary.join("keep"), b"x").unwrap();
    let top = t.path().join("top");
    std::fs::create_dir_all(top.join("ro/sub")).unwrap();
    std::fs::write(top.join("ro/sub/f"), b"x").unwrap();
    std::os::unix::fs::symlink(&canary, top.join("ro/link")).unwrap();
    std::fs::set_permissions(top.join("ro/sub"), std::fs::Permissions::from_mode(0o555)).unwrap();
    std::fs::set_permissions(top.join("ro"), std::fs::Permissions::from_mode(0o555)).unwrap();
    remove_tree(&top).unwrap();
    assert!(!top.exists());
    let left: BTreeSet<_> = std::fs::read_dir(&canary)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1);
    // A symlink given as the tree itself is removed as a link.
    std::os::unix::fs::symlink(&canary, t.path().join("l")).unwrap();
    remove_tree(&t.path().join("l")).unwrap();
    assert!(canary.join("keep").exists());
}

/// A dir moved elsewhere during the walk stops it rather than letting `..` lead astray.
#[test]
fn climb_refuses_a_parent_that_is_not_the_one_entered_from() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("a/b")).unwrap();
    std::fs::create_dir_all(t.path().join("other")).unwrap();
    let a = open_root(t.path().join("a"), DirAccess::Read).unwrap();
    let a_id = dir_id(&fs::fstat(&a).unwrap());
    let b = open_child_dir(&a, "b", DirAccess::Read).unwrap();
    assert!(climb(b.as_fd(), a_id).is_ok());
    std::fs::rename(t.path().join("a/b"), t.path().join("other/b")).unwrap();
    assert!(climb(b.as_fd(), a_id).is_err());
}
