use super::*;

#[test]
fn parses_a_mountinfo_line_with_escapes() {
    let line = "36 35 7:3 / /var/tmp/a\\040b rw,relatime shared:1 - ext4 /dev/loop3 rw";
    let (dev, mp, src) = parse_line(line).unwrap();
    assert_eq!(dev, "7:3");
    assert_eq!(mp, PathBuf::from("/var/tmp/a b"));
    assert_eq!(src, "/dev/loop3");
}

#[test]
fn a_line_without_separator_is_skipped() {
    assert!(parse_line("36 35 7:3 / /x rw").is_none());
}

#[test]
fn finds_the_mount_of_the_root() {
    let m = mount_source(Path::new("/")).unwrap();
    assert_eq!(m.mountpoint, PathBuf::from("/"));
}
