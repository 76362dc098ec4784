use super::*;
use crate::runtime::{stage_changes, tree_changes};
use lamina_testkit::tree;
use rustix::fs::Mode;
use std::fs;
use std::path::Path;
use std::process::Command;

/// An overlay mounted for one test, unmounted even when an assertion fails.
struct OverlayMount {
    target: PathBuf,
}

impl OverlayMount {
    fn mount(lowers: &[&Path], upper: &Path, work: &Path, target: &Path) -> Self {
        let lowerdir: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
        let options = format!(
            "lowerdir={},upperdir={},workdir={},index=off,metacopy=off,redirect_dir=off",
            lowerdir.join(":"),
            upper.display(),
            work.display()
        );
        let status = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &options])
            .arg(target)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -t overlay -o {options} failed");
        OverlayMount {
            target: target.to_path_buf(),
        }
    }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        if rustix::mount::unmount(&self.target, rustix::mount::UnmountFlags::empty()).is_err() {
            let _ = rustix::mount::unmount(&self.target, rustix::mount::UnmountFlags::DETACH);
        }
    }
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir -p");
    }
    fs::write(path, text).expect("write");
}

fn whiteout(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        FileType::CharacterDevice,
        Mode::empty(),
        0,
    )
    .expect("mknod whiteout");
}

fn set_opaque(path: &Path) {
    let flags = rustix::fs::XattrFlags::empty();
    rustix::fs::lsetxattr(path, crate::layerfs::OPAQUE_XATTR, b"y", flags).expect("setxattr");
}

/// Two layers; the top one hides /var/log/gone with a whiteout and /srv/{keep,old} with an opaque dir.
fn make_layers(base: &Path) -> (PathBuf, PathBuf) {
    let l1 = base.join("l1");
    let l2 = base.join("l2");
    for file in [
        "etc/passwd",
        "etc/hosts",
        "etc/old.conf",
        "etc/dirA/child",
        "bin/sh",
        "usr/share/doc/a",
        "usr/share/doc/b",
        "data/f1",
        "data/sub/g",
        "opt/x",
        "var/log/gone",
        "srv/keep",
        "srv/old",
        "lib/m",
    ] {
        write(&l1.join(file), file);
    }
    fs::create_dir_all(l1.join("tmp")).expect("mkdir");
    write(&l2.join("etc/motd"), "motd");
    write(&l2.join("srv/new"), "new");
    set_opaque(&l2.join("srv"));
    fs::create_dir_all(l2.join("var/log")).expect("mkdir");
    whiteout(&l2.join("var/log/gone"));
    (l1, l2)
}

/// Every kind of change a container makes, through the real overlay mount.
const CHANGES_SCRIPT: &str = "
set -e
echo new > etc/newfile
echo more >> etc/hosts
rm etc/old.conf
rm -rf usr/share/doc
mv bin/sh bin/busybox-sh
mv etc/dirA etc/dirB
chmod 600 lib/m
rm opt/x && mkdir opt/x && echo y > opt/x/y
rm -rf data && mkdir -p data/sub && echo h > data/sub/h
echo back > var/log/gone
rm srv/new
touch tmp/t && rm tmp/t
ln -s /etc hostlink
";

/// Runs [`CHANGES_SCRIPT`] in `root`, as a container would.
fn make_changes(root: &Path) {
    let status = Command::new("sh")
        .args(["-c", CHANGES_SCRIPT])
        .current_dir(root)
        .status()
        .expect("run sh");
    assert!(status.success(), "the changes in {} failed", root.display());
}

const EXPECTED: &str = "\
C /bin
A /bin/busybox-sh
D /bin/sh
C /data
D /data/f1
C /data/sub
D /data/sub/g
A /data/sub/h
C /etc
D /etc/dirA
A /etc/dirB
A /etc/dirB/child
C /etc/hosts
A /etc/newfile
D /etc/old.conf
A /hostlink
C /lib
C /lib/m
C /opt
C /opt/x
A /opt/x/y
C /srv
D /srv/new
C /tmp
C /usr
C /usr/share
D /usr/share/doc
C /var
C /var/log
A /var/log/gone
";

#[test]
fn docker_diff_of_an_overlay_upper() {
    let base = tempfile::tempdir().expect("tempdir");
    let (l1, l2) = make_layers(base.path());
    let (upper, work, merged) = (
        base.path().join("upper"),
        base.path().join("work"),
        base.path().join("merged"),
    );
    for dir in [&upper, &work, &merged] {
        fs::create_dir(dir).expect("mkdir");
    }
    {
        let _mount = OverlayMount::mount(&[&l2, &l1], &upper, &work, &merged);
        make_changes(&merged);
    }
    let changes = upper_changes(&upper, &[l2, l1]).expect("upper_changes");
    assert_eq!(format_changes(&changes), EXPECTED);
}

#[test]
fn whiteouts_and_opaque_dirs_of_the_lowers_decide_what_existed() {
    let base = tempfile::tempdir().expect("tempdir");
    let (l1, l2) = make_layers(base.path());
    let upper = base.path().join("upper");
    // Hand-made upper: recreate a name the top layer whited out, delete one the opaque dir hid, and
    // delete one that the opaque dir shows.
    write(&upper.join("var/log/gone"), "again");
    fs::create_dir_all(upper.join("srv")).expect("mkdir");
    whiteout(&upper.join("srv/keep"));
    whiteout(&upper.join("srv/new"));
    // A whiteout of a name no layer has deletes nothing; an unrelated xattr changes nothing.
    whiteout(&upper.join("never-existed"));
    rustix::fs::lsetxattr(
        upper.join("srv"),
        "trusted.overlay.impure",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .expect("setxattr");
    let changes = upper_changes(&upper, &[l2, l1]).expect("changes");
    assert_eq!(
        format_changes(&changes),
        "C /srv\nD /srv/new\nC /var\nC /var/log\nA /var/log/gone\n"
    );
}

#[test]
fn the_walk_never_leaves_the_upper_dir() {
    let base = tempfile::tempdir().expect("tempdir");
    let lower = base.path().join("lower");
    write(&lower.join("etc/hosts"), "h");
    let upper = base.path().join("upper");
    fs::create_dir_all(&upper).expect("mkdir");
    // A symlinked directory is one change; its target (the host's /etc) is never listed.
    std::os::unix::fs::symlink("/etc", upper.join("etc")).expect("symlink");
    let changes = upper_changes(&upper, &[lower]).expect("changes");
    assert_eq!(format_changes(&changes), "C /etc\n");
}

#[test]
fn format_matches_docker_diff() {
    let changes = [
        Change {
            kind: ChangeKind::Changed,
            path: "/etc".into(),
        },
        Change {
            kind: ChangeKind::Added,
            path: "/etc/x".into(),
        },
        Change {
            kind: ChangeKind::Deleted,
            path: "/old".into(),
        },
    ];
    assert_eq!(format_changes(&changes), "C /etc\nA /etc/x\nD /old\n");
    assert_eq!(format_changes(&[]), "");
}

/// What a test compares of a tree: the testkit's description of every path below the root with its
/// type, mode, owner and content or link target (not mtimes, xattrs or hardlink groups).
fn describe_tree(root: &Path) -> tree::Manifest {
    let mut m = tree::describe(root);
    m.remove("/");
    for e in m.values_mut() {
        e.fields.retain(|k, _| k != "mtime" && k != "hardlink");
        e.xattrs.clear();
    }
    m
}

#[test]
fn copy_tree_changes_match_the_overlay_rules_and_stage_back_to_the_same_tree() {
    let base = tempfile::tempdir().expect("tempdir");
    let (l1, l2) = make_layers(base.path());
    let lowers = [l2, l1];
    let tree = base.path().join("tree");
    fs::create_dir(&tree).expect("mkdir");
    crate::copier::materialize(&lowers, &tree, &Default::default()).expect("materialize");
    assert_eq!(
        format_changes(&tree_changes(&tree, &lowers).expect("changes")),
        "",
        "a fresh copy has no changes"
    );

    make_changes(&tree);
    let changes = tree_changes(&tree, &lowers).expect("changes");
    // The same as through overlay, but for /tmp: a file made and removed there leaves only the
    // directory's mtime changed, which overlay records by copying the dir up and a tree compare
    // does not count.
    assert_eq!(format_changes(&changes), EXPECTED.replace("C /tmp\n", ""),);

    let staged = base.path().join("staged");
    fs::create_dir(&staged).expect("mkdir");
    stage_changes(&tree, &changes, &staged).expect("stage");
    let again = base.path().join("again");
    fs::create_dir(&again).expect("mkdir");
    let stack = [staged, lowers[0].clone(), lowers[1].clone()];
    crate::copier::materialize(&stack, &again, &Default::default()).expect("materialize");
    assert_eq!(describe_tree(&again), describe_tree(&tree));
}
