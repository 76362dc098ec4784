use super::*;
use crate::digest::Digest;

fn p(s: &str) -> Platform {
    Platform::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn raw(os: &str, arch: &str, variant: Option<&str>) -> Platform {
    Platform::new(os, arch, variant)
}

#[test]
fn parse_and_display() {
    // (input, shown as)
    let cases = [
        ("linux/amd64", "linux/amd64"),
        ("linux/arm64/v8", "linux/arm64/v8"),
        ("linux/arm64", "linux/arm64"),
        ("linux/aarch64", "linux/arm64"),
        ("linux/aarch64/8", "linux/arm64/v8"),
        ("linux/arm64/v8.2", "linux/arm64/v8.2"),
        ("linux/arm", "linux/arm"),
        ("linux/arm/7", "linux/arm/v7"),
        ("linux/arm/v6", "linux/arm/v6"),
        ("linux/armhf", "linux/arm"),
        ("linux/armel", "linux/arm/v6"),
        ("linux/x86_64", "linux/amd64"),
        ("linux/x86-64", "linux/amd64"),
        ("linux/amd64/v1", "linux/amd64"),
        ("linux/amd64/v3", "linux/amd64/v3"),
        ("linux/i386", "linux/386"),
        ("Linux/AMD64", "linux/amd64"),
        ("macos/arm64/v8", "darwin/arm64/v8"),
        ("linux/s390x", "linux/s390x"),
        ("windows(10.0.17763)/amd64", "windows/amd64"),
        ("arm64", "linux/arm64"),
        ("riscv64", "linux/riscv64"),
    ];
    for (input, shown) in cases {
        assert_eq!(p(input).to_string(), shown, "{input}");
    }
    assert_eq!(
        p("windows(10.0.17763)/amd64").os_version.as_deref(),
        Some("10.0.17763")
    );
    // A lone OS takes the host's architecture.
    let host = Platform::host();
    assert_eq!(p("linux").architecture, host.architecture);
}

#[test]
fn parse_refuses_bad_specifiers() {
    for bad in [
        "",
        "linux/",
        "linux/amd64/v1/x",
        "linux/*",
        "linux/am d64",
        "nonsense",
        "linux(/amd64",
        "/amd64",
    ] {
        let e = Platform::parse(bad).expect_err(bad).to_string();
        assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
    }
}

#[test]
fn normalisation_matches_containerd() {
    // (os, arch, variant) -> normalised (os, arch, variant)
    type Triple<'a> = (&'a str, &'a str, Option<&'a str>);
    let cases: &[(Triple, Triple)] = &[
        (("linux", "aarch64", None), ("linux", "arm64", None)),
        (("linux", "arm64", Some("v8")), ("linux", "arm64", None)),
        (("linux", "arm64", Some("8")), ("linux", "arm64", None)),
        (("linux", "arm64", Some("v8.0")), ("linux", "arm64", None)),
        (
            ("linux", "arm64", Some("9")),
            ("linux", "arm64", Some("v9")),
        ),
        (
            ("linux", "arm64", Some("v8.1")),
            ("linux", "arm64", Some("v8.1")),
        ),
        (("linux", "armhf", None), ("linux", "arm", Some("v7"))),
        (("linux", "armel", None), ("linux", "arm", Some("v6"))),
        (("linux", "arm", None), ("linux", "arm", Some("v7"))),
        (("linux", "arm", Some("7")), ("linux", "arm", Some("v7"))),
        (("linux", "arm", Some("5")), ("linux", "arm", Some("v5"))),
        (("linux", "arm", Some("8")), ("linux", "arm", Some("v8"))),
        (("linux", "x86_64", None), ("linux", "amd64", None)),
        (("linux", "x86-64", Some("v1")), ("linux", "amd64", None)),
        (
            ("linux", "AMD64", Some("V2")),
            ("linux", "amd64", Some("v2")),
        ),
        (("linux", "i386", Some("x")), ("linux", "386", None)),
        (("MacOS", "ppc64le", None), ("darwin", "ppc64le", None)),
    ];
    for ((os, arch, variant), (nos, narch, nvariant)) in cases {
        let n = raw(os, arch, *variant).normalize();
        assert_eq!(
            (n.os.as_str(), n.architecture.as_str(), n.variant.as_deref()),
            (*nos, *narch, *nvariant),
            "{os}/{arch}/{variant:?}"
        );
    }
}

#[test]
fn matching_table() {
    // (wanted, candidate, runs?)
    let cases = [
        ("linux/amd64", "linux/amd64", true),
        ("linux/amd64", "linux/x86_64", true),
        ("linux/amd64", "linux/amd64/v1", true),
        ("linux/amd64", "linux/amd64/v2", false),
        ("linux/amd64", "linux/386", false),
        ("linux/amd64", "linux/arm64", false),
        ("linux/amd64", "windows/amd64", false),
        ("linux/amd64/v3", "linux/amd64/v2", true),
        ("linux/amd64/v3", "linux/amd64", true),
        ("linux/amd64/v2", "linux/amd64/v3", false),
        ("linux/arm64/v8", "linux/arm64", true),
        ("linux/arm64", "linux/arm64/v8", true),
        ("linux/arm64/v8", "linux/aarch64", true),
        ("linux/arm64/v8", "linux/arm64/v8.1", false),
        ("linux/arm64/v8.2", "linux/arm64/v8.1", true),
        ("linux/arm64/v9", "linux/arm64/v8.5", true),
        ("linux/arm64/v9", "linux/arm64/v8.6", false),
        ("linux/arm64/v8", "linux/arm/v7", true),
        ("linux/arm64/v8", "linux/arm/v8", true),
        ("linux/arm64/v8", "linux/amd64", false),
        ("linux/arm/v7", "linux/arm/v7", true),
        ("linux/arm/v7", "linux/arm", true),
        ("linux/arm/v7", "linux/armhf", true),
        ("linux/arm/v7", "linux/arm/v6", true),
        ("linux/arm/v7", "linux/arm/v5", true),
        ("linux/arm/v7", "linux/arm/v8", false),
        ("linux/arm/v6", "linux/arm/v7", false),
        ("linux/arm/v6", "linux/armel", true),
        ("linux/s390x", "linux/s390x", true),
    ];
    for (want, cand, ok) in cases {
        assert_eq!(p(want).matches(&p(cand)), ok, "{want} runs {cand}?");
    }
}

fn desc(n: u8, platform: Option<&str>) -> Descriptor {
    let mut d = Descriptor::new(
        crate::image::media_types::OCI_MANIFEST,
        Digest::of_bytes(&[n]),
        1,
    );
    d.platform = platform.map(p);
    d
}

#[test]
fn select_prefers_the_closest_platform() {
    let list = vec![
        desc(0, None),
        desc(1, Some("linux/arm/v5")),
        desc(2, Some("linux/arm/v7")),
        desc(3, Some("linux/arm64/v8")),
        desc(4, Some("linux/amd64")),
        desc(5, Some("linux/amd64/v2")),
        desc(6, Some("linux/arm/v6")),
        desc(7, Some("linux/amd64")), // a tie: the first one wins
        desc(8, Some("windows/amd64")),
    ];
    // (wanted, index of the chosen entry)
    let cases = [
        ("linux/amd64", Some(4)),
        ("linux/amd64/v3", Some(5)),
        ("linux/arm64/v8", Some(3)),
        ("linux/arm/v7", Some(2)),
        ("linux/arm/v6", Some(6)),
        ("linux/arm/v5", Some(1)),
        ("linux/ppc64le", None),
        ("windows/amd64", Some(8)),
    ];
    for (want, idx) in cases {
        let got = p(want).select(&list).map(|d| d.digest.clone());
        assert_eq!(got, idx.map(|i| list[i].digest.clone()), "{want}");
    }
    // Without arm64 the arm64 host takes 32-bit arm, best variant first.
    let no_arm64: Vec<_> = list
        .iter()
        .filter(|d| d.digest != list[3].digest)
        .cloned()
        .collect();
    assert_eq!(p("linux/arm64").select(&no_arm64), Some(&list[2]));
}

#[test]
fn host_is_normalised_go_names() {
    let h = Platform::host();
    assert_eq!(h.os, std::env::consts::OS);
    assert!(!h.architecture.contains('_'), "{h}");
    if cfg!(target_arch = "x86_64") {
        assert_eq!(h.to_string(), "linux/amd64");
    }
    if cfg!(target_arch = "aarch64") {
        assert_eq!(h.to_string(), "linux/arm64/v8");
    }
    assert!(h.matches(&h));
}

#[test]
fn serde_uses_oci_field_names() {
    let json = r#"{"architecture":"arm64","os":"linux","variant":"v8","os.version":"1","os.features":null}"#;
    let pl: Platform = serde_json::from_str(json).unwrap();
    assert_eq!(pl.to_string(), "linux/arm64/v8");
    assert_eq!(pl.os_version.as_deref(), Some("1"));
    let back = serde_json::to_string(&pl).unwrap();
    assert!(back.contains("\"os.version\":\"1\""), "{back}");
    assert!(!back.contains("os.features"), "{back}");
}
