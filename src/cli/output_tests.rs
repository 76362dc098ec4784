use super::*;

#[test]
fn sizes_read_like_docker() {
    for (n, want) in [
        (0, "0B"),
        (999, "999B"),
        (1000, "1kB"),
        (1_234_567, "1.23MB"),
        (74_800_000, "74.8MB"),
        (121_400_000, "121MB"),
    ] {
        assert_eq!(human_size(n), want, "{n}");
    }
}

#[test]
fn durations_read_like_docker() {
    assert_eq!(human_duration(30), "30 seconds");
    assert_eq!(human_duration(90), "About a minute");
    assert_eq!(human_duration(3 * 3600), "3 hours");
    assert_eq!(human_duration(15 * 86400), "2 weeks");
}

#[test]
fn rfc3339_parses() {
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_rfc3339("2000-03-01T00:00:00Z"), Some(951868800));
    assert_eq!(
        parse_rfc3339("2000-03-01T01:00:00.5+01:00"),
        Some(951868800)
    );
    assert_eq!(parse_rfc3339("nope"), None);
}

#[test]
fn control_characters_are_escaped() {
    for (input, want) in [
        ("debian:latest", "debian:latest"),
        ("a\x1b]0;pwned\x07b", "a\\x1b]0;pwned\\x07b"),
        ("line\nfake: ok", "line\\nfake: ok"),
        ("tab\there", "tab\\there"),
        ("csi\u{9b}31m", "csi\\x9b31m"),
        ("rtl\u{202e}gnp.exe", "rtl\\u{202e}gnp.exe"),
        ("del\x7f", "del\\x7f"),
        ("back\\slash\n", "back\\\\slash\\n"),
        ("just a \\ backslash", "just a \\ backslash"),
    ] {
        assert_eq!(escape_controls(input), want, "{input:?}");
    }
    assert!(matches!(escape_controls("plain"), Cow::Borrowed(_)));
}
