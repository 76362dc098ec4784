use super::*;

#[test]
fn overlay_private_xattrs() {
    let cases: &[(&str, bool)] = &[
        ("trusted.overlay.opaque", true),
        ("user.overlay.redirect", true),
        ("trusted.overlay.overlay.x", true),
        ("trusted.overlayfoo", false),
        ("user.mime", false),
        ("security.capability", false),
    ];
    for (name, want) in cases {
        assert_eq!(is_overlay_xattr(name.as_bytes()), *want, "{name}");
    }
}
