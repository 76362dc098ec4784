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

/// go-units' own table for HumanDuration (duration_test.go).
#[test]
fn durations_read_like_docker() {
    let (min, hour, day) = (60, 3600, 86400);
    let (week, month, year) = (7 * day, 30 * day, 365 * day);
    for (secs, want) in [
        (0, "Less than a second"),
        (1, "1 second"),
        (30, "30 seconds"),
        (59, "59 seconds"),
        (90, "About a minute"),
        (35 * min + 40, "35 minutes"),
        (59 * min, "59 minutes"),
        (hour, "About an hour"),
        (hour + 29 * min, "About an hour"),
        (90 * min, "2 hours"),
        (hour + 31 * min, "2 hours"),
        (3 * hour + 29 * min, "3 hours"),
        (3 * hour + 31 * min, "4 hours"),
        (day + 12 * hour, "36 hours"),
        (2 * day, "2 days"),
        (13 * day + 5 * hour, "13 days"),
        (2 * week + 4 * day, "2 weeks"),
        (month, "4 weeks"),
        (month + 2 * week, "6 weeks"),
        (2 * month, "2 months"),
        (24 * month, "24 months"),
        (24 * month + 2 * week, "2 years"),
        (3 * year + 2 * month, "3 years"),
    ] {
        assert_eq!(human_duration(secs), want, "{secs}s");
    }
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
