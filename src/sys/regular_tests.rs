use super::*;
use std::io::Read;

#[test]
fn a_regular_file_opens_and_reads_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    std::fs::write(&p, b"hello").unwrap();
    let mut f = open_regular(&p).unwrap();
    let flags = rustix::fs::fcntl_getfl(&f).unwrap();
    assert!(!flags.contains(OFlags::NONBLOCK));
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "hello");
}

#[test]
fn a_fifo_a_symlink_and_a_directory_are_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, Mode::from_raw_mode(0o600)).unwrap();
    let link = dir.path().join("link");
    std::fs::write(dir.path().join("target"), b"x").unwrap();
    std::os::unix::fs::symlink("target", &link).unwrap();
    for (path, what) in [
        (fifo, "a FIFO"),
        (link, "a symbolic link"),
        (dir.path().to_path_buf(), "a directory"),
        ("/dev/null".into(), "a character device"),
    ] {
        let e = open_regular(&path).expect_err(what);
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{what}: {e}");
        assert!(e.to_string().contains(what), "{what}: {e}");
    }
}

#[test]
fn a_named_archive_may_be_a_symlink_to_a_regular_file_but_not_to_a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("target"), b"x").unwrap();
    std::os::unix::fs::symlink("target", dir.path().join("link")).unwrap();
    assert!(open_regular_following(dir.path().join("link")).is_ok());
    let fifo = dir.path().join("fifo");
    rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, Mode::from_raw_mode(0o600)).unwrap();
    std::os::unix::fs::symlink("fifo", dir.path().join("to-fifo")).unwrap();
    let e = open_regular_following(dir.path().join("to-fifo")).unwrap_err();
    assert!(e.to_string().contains("a FIFO"), "{e}");
}
