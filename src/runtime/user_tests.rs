use super::*;
use std::fs;
use std::os::unix::fs::symlink;

const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
# a comment line
alice:x:1000:1000:Alice:/home/alice:/bin/sh
carol:x:1002:1002::/home/carol:/bin/sh
broken:x:notanumber:1:::
";
const GROUP: &str = "\
root:x:0:
wheel:x:10:root,alice
alice:x:1000:
staff:x:50:alice,carol
audio:x:29:carol
";

fn rootfs_with(passwd: &str, group: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("etc")).expect("mkdir etc");
    fs::write(dir.path().join("etc/passwd"), passwd).expect("write passwd");
    fs::write(dir.path().join("etc/group"), group).expect("write group");
    dir
}

#[test]
fn resolves_user_strings_as_docker_does() {
    let root = rootfs_with(PASSWD, GROUP);
    // (User, uid, gid, additionalGids)
    let cases: &[(&str, u32, u32, &[u32])] = &[
        ("", 0, 0, &[0, 10]),
        ("root", 0, 0, &[0, 10]),
        ("0", 0, 0, &[0, 10]),
        ("1000", 1000, 1000, &[1000, 10, 50]),
        ("1000:1000", 1000, 1000, &[1000]),
        ("alice", 1000, 1000, &[1000, 10, 50]),
        ("alice:staff", 1000, 50, &[50]),
        ("alice:4242", 1000, 4242, &[4242]),
        ("1000:staff", 1000, 50, &[50]),
        ("carol", 1002, 1002, &[1002, 50, 29]),
        // A numeric uid without a passwd entry is fine: gid defaults to 0, no groups.
        ("4000", 4000, 0, &[0]),
        ("4000:4001", 4000, 4001, &[4001]),
        ("4000:audio", 4000, 29, &[29]),
    ];
    for (spec, uid, gid, gids) in cases {
        let got = resolve_user(root.path(), spec).unwrap_or_else(|e| panic!("{spec:?}: {e}"));
        assert_eq!(
            got,
            ResolvedUser {
                uid: *uid,
                gid: *gid,
                additional_gids: gids.to_vec()
            },
            "User {spec:?}"
        );
    }
}

#[test]
fn unknown_names_and_bad_ids_are_errors_naming_them() {
    let root = rootfs_with(PASSWD, GROUP);
    let cases: &[(&str, &str)] = &[
        ("bob", "unable to find user bob"),
        ("bob:staff", "unable to find user bob"),
        ("alice:nogroup", "unable to find group nogroup"),
        ("4294967296", "out of range"),
        ("2147483648", "out of range"),
        ("1:99999999999999999999999", "out of range"),
    ];
    for (spec, want) in cases {
        let err = resolve_user(root.path(), spec).expect_err(spec);
        assert!(err.to_string().contains(want), "User {spec:?}: got {err}");
    }
}

#[test]
fn missing_passwd_and_group_files_mean_empty_databases() {
    let root = tempfile::tempdir().expect("tempdir");
    let got = resolve_user(root.path(), "").expect("empty user");
    assert_eq!((got.uid, got.gid, got.additional_gids), (0, 0, vec![0]));
    let got = resolve_user(root.path(), "33:33").expect("numeric");
    assert_eq!((got.uid, got.gid), (33, 33));
    let err = resolve_user(root.path(), "www-data").expect_err("name without passwd");
    assert!(err.to_string().contains("www-data"), "{err}");
}

#[test]
fn absolute_symlinks_resolve_inside_the_image_not_the_host() {
    // The host's /etc/passwd has root but never "imageuser"; the image's copy of it lives under a path
    // that only exists inside the rootfs. A symlink /etc/passwd -> /host/etc/passwd must find the copy.
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path();
    fs::create_dir_all(r.join("etc")).expect("mkdir");
    fs::create_dir_all(r.join("host/etc")).expect("mkdir");
    fs::write(
        r.join("host/etc/passwd"),
        "imageuser:x:777:778::/:/bin/sh\n",
    )
    .expect("write");
    symlink("/host/etc/passwd", r.join("etc/passwd")).expect("symlink");
    // ../../.. climbs to the rootfs's own root, never above it.
    symlink("../../../../../../etc/nothing-here", r.join("etc/group")).expect("symlink");
    let got = resolve_user(r, "imageuser").expect("resolved inside the root");
    assert_eq!((got.uid, got.gid), (777, 778));

    // Pointing at the host's real passwd by absolute path finds nothing inside the root.
    fs::remove_file(r.join("etc/passwd")).expect("rm");
    symlink(
        "/etc/hostpasswd-that-only-the-host-has",
        r.join("etc/passwd"),
    )
    .expect("symlink");
    fs::write(
        r.join("etc/hostpasswd-that-only-the-host-has"),
        "x:x:5:5::/:/\n",
    )
    .expect("write");
    let got = resolve_user(r, "x").expect("resolved inside the root");
    assert_eq!(got.uid, 5);
    // Climbing out with `..` would reach the host's /etc/passwd (which has "daemon"); in the root it
    // lands on the link itself (a loop), so "daemon" is never found.
    fs::remove_file(r.join("etc/passwd")).expect("rm");
    symlink("../../../../../../../../etc/passwd", r.join("etc/passwd")).expect("symlink");
    assert!(fs::read_to_string("/etc/passwd").is_ok_and(|t| t.contains("daemon:")));
    assert!(resolve_user(r, "daemon").is_err());
}

#[test]
fn non_regular_files_are_refused_without_blocking() {
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path();
    fs::create_dir_all(r.join("etc")).expect("mkdir");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        r.join("etc/passwd"),
        FileType::Fifo,
        Mode::from_raw_mode(0o644),
        0,
    )
    .expect("mkfifo");
    let err = resolve_user(r, "alice").expect_err("fifo");
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

#[test]
fn oversized_passwd_files_are_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(root.path().join("etc")).expect("mkdir");
    let file = fs::File::create(root.path().join("etc/passwd")).expect("create");
    file.set_len(MAX_ID_FILE_BYTES + 1).expect("sparse file");
    let err = resolve_user(root.path(), "alice").expect_err("too large");
    assert!(err.to_string().contains("larger than"), "{err}");
}
