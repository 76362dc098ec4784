use super::*;

#[test]
fn overlay_names_as_the_mount_shows_them() {
    let rootfs = CopyOptions {
        keep_whiteouts: false,
    };
    let layer = CopyOptions {
        keep_whiteouts: true,
    };
    let cases: &[(&str, CopyOptions, Option<&str>)] = &[
        ("user.mime", rootfs, Some("user.mime")),
        ("security.capability", rootfs, Some("security.capability")),
        ("trusted.overlay.opaque", rootfs, None),
        ("trusted.overlay.opaque", layer, None),
        (
            "trusted.overlay.overlay.opaque",
            rootfs,
            Some("trusted.overlay.opaque"),
        ),
        (
            "trusted.overlay.overlay.opaque",
            layer,
            Some("trusted.overlay.overlay.opaque"),
        ),
        ("user.overlay.opaque", rootfs, Some("user.overlay.opaque")),
        ("trusted.overlayfoo", rootfs, Some("trusted.overlayfoo")),
    ];
    for (name, opts, want) in cases {
        let got = shown_name(name.as_bytes(), opts);
        assert_eq!(
            got.as_deref(),
            want.map(str::as_bytes),
            "{name} with {opts:?}"
        );
    }
}
