use super::*;

#[test]
fn errnos_map_to_causes_and_kinds() {
    let at = Path::new("/");
    let cases = [
        (libc::EDQUOT, Some(FsCause::Quota), ErrorKind::NoSpace),
        (libc::EROFS, Some(FsCause::ReadOnly), ErrorKind::ReadOnly),
        (
            libc::EACCES,
            Some(FsCause::Denied),
            ErrorKind::PermissionDenied,
        ),
        (
            libc::EPERM,
            Some(FsCause::Denied),
            ErrorKind::PermissionDenied,
        ),
    ];
    for (errno, cause, kind) in cases {
        assert_eq!(FsCause::from_errno(errno, at), cause, "errno {errno}");
        assert_eq!(cause.unwrap().kind(), kind);
    }
    let enospc = FsCause::from_errno(libc::ENOSPC, at).unwrap();
    assert_eq!(enospc.kind(), ErrorKind::NoSpace);
    assert_eq!(FsCause::from_errno(libc::EIO, at), None);
}

#[test]
fn no_space_names_the_device_and_what_was_done() {
    let e = io::Error::from_raw_os_error(libc::EDQUOT);
    let f = FsError::from_io(&e, Path::new("/no/such/dir/file"), |_| "writing x".into()).unwrap();
    let text = f.to_string();
    assert!(text.starts_with("no space left on "), "{text}");
    assert!(text.contains("(mounted at /)"), "{text}");
    assert!(
        text.contains("while writing x (disk quota exceeded)"),
        "{text}"
    );
}

#[test]
fn other_errors_are_not_refusals() {
    let e = io::Error::other("boom");
    assert!(FsError::from_io(&e, Path::new("/"), |_| "x".into()).is_none());
}
