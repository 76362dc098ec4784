use super::*;
use std::os::unix::fs::{symlink, PermissionsExt};

#[test]
fn create_exclusive_refuses_a_planted_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"keep").unwrap();
    symlink(&victim, dir.path().join("out")).unwrap();
    let d = fs::open(dir.path(), OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
    let err = create_exclusive(&d, OsStr::new("out"), Mode::from_raw_mode(0o600)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
}

#[test]
fn create_temp_sets_the_mode_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = fs::open(dir.path(), OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
    let (f, name) = create_temp(&d, "x", Mode::from_raw_mode(0o600)).unwrap();
    set_mode(&f, Mode::from_raw_mode(0o600)).unwrap();
    assert!(name.to_string_lossy().starts_with(".x."));
    assert_eq!(f.metadata().unwrap().permissions().mode() & 0o7777, 0o600);
}

#[test]
fn open_dir_nofollow_refuses_symlinks_and_dotdot() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    symlink(&real, dir.path().join("link")).unwrap();
    let err = open_dir_nofollow(&dir.path().join("link/sub"), Some(Mode::RWXU)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
    assert!(!real.join("sub").exists());
    let err = open_dir_nofollow(&dir.path().join("real/../real"), None).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    open_dir_nofollow(
        &dir.path().join("real/a/b"),
        Some(Mode::from_raw_mode(0o700)),
    )
    .unwrap();
    let mode = std::fs::metadata(real.join("a/b"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o700);
}
